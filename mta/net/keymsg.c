/* mta/net/keymsg.c -- the key role's messages; see keymsg.h */
#include "mta/net/keymsg.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/wire.h"

/* ---- the messages ------------------------------------------------------ */

size_t keymsg_hash_len(unsigned hash_id)
{
	switch (hash_id) {
	case 0:  return 36;  /* MD5+SHA-1: RSA signatures of TLS 1.0/1.1 */
	case 2:  return 20;  /* br_sha1_ID */
	case 3:  return 28;  /* br_sha224_ID */
	case 4:  return 32;  /* br_sha256_ID */
	case 5:  return 48;  /* br_sha384_ID */
	case 6:  return 64;  /* br_sha512_ID */
	default: return 0;
	}
}

int keymsg_is_dkim(uint32_t type)
{
	return type >= KEYMSG_DKIM_SIGN_REQ && type <= KEYMSG_DKIM_KEY_REP;
}

/* Is s[0..len) a field keymsg.h allows: min..max bytes of %x21-7E? */
static int field_ok(const char *s, size_t len, size_t min, size_t max)
{
	if (len < min || len > max || (len > 0 && s == NULL))
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

/* The payload length of a DKIM_* message m, or 0 when m breaks the rules. */
static size_t dkim_payload_len(const struct keymsg *m)
{
	switch (m->type) {
	case KEYMSG_DKIM_SIGN_REQ:
		if (!field_ok(m->domain, m->domainlen, 1, KEYMSG_DOMAIN_MAX) ||
		    !field_ok(m->selector, m->selectorlen, 1, KEYMSG_SEL_MAX) ||
		    m->len != KEYMSG_DKIM_HASH || m->data == NULL)
			return 0;
		return 2 + m->domainlen + 2 + m->selectorlen + m->len;
	case KEYMSG_DKIM_SIGN_REP:
		if (m->ok > 1 || (m->ok == 0 && m->len != 0) ||
		    (m->ok == 1 && (m->len == 0 || m->len > KEYMSG_SIG_MAX)))
			return 0;
		return 1 + m->len;
	case KEYMSG_DKIM_KEY_REQ:
		if (!field_ok(m->domain, m->domainlen, 1, KEYMSG_DOMAIN_MAX))
			return 0;
		return 2 + m->domainlen;
	case KEYMSG_DKIM_KEY_REP:
		if (m->ok > 1)
			return 0;
		if (m->ok == 0)
			return m->len == 0 && m->domainlen == 0 && m->selectorlen == 0 &&
			       m->headerslen == 0 && m->explen == 0 ? 1 : 0;
		if (!field_ok(m->domain, m->domainlen, 1, KEYMSG_DOMAIN_MAX) ||
		    !field_ok(m->selector, m->selectorlen, 1, KEYMSG_SEL_MAX) ||
		    !field_ok(m->headers, m->headerslen, 0, KEYMSG_HLIST_MAX) ||
		    m->len == 0 || m->len > KEYMSG_MOD_MAX || m->data == NULL ||
		    m->explen == 0 || m->explen > KEYMSG_EXP_MAX || m->exp == NULL)
			return 0;
		return 1 + 2 + m->domainlen + 2 + m->selectorlen + 2 + m->headerslen + 2 + m->len +
		       2 + m->explen;
	default:
		return 0;
	}
}

/* The payload of m as the rules of keymsg.h allow it: its length (>= 1),
 * or 0 when m breaks them. */
static size_t payload_len(const struct keymsg *m, size_t modlen)
{
	switch (m->type) {
	case KEYMSG_SIGN_REQ:
		if (keymsg_hash_len(m->hash_id) == 0 || m->len != keymsg_hash_len(m->hash_id))
			return 0;
		return 1 + m->len;
	case KEYMSG_SIGN_REP:
		if (m->ok > 1 || (m->ok == 0 && m->len != 0) ||
		    (m->ok == 1 && (m->len == 0 || m->len > KEYMSG_SIG_MAX)))
			return 0;
		return 1 + m->len;
	case KEYMSG_DECRYPT_REQ:
		if (modlen < KEYMSG_MOD_MIN || modlen > KEYMSG_MOD_MAX || m->len != modlen)
			return 0;
		return m->len;
	case KEYMSG_DECRYPT_REP:
		if (m->ok > 1 || m->len != KEYMSG_PMS)
			return 0;
		return 1 + m->len;
	default:
		return keymsg_is_dkim(m->type) ? dkim_payload_len(m) : 0;
	}
}

/* A u16-counted field of r: its bytes (into r's buffer) and length. */
static const char *counted(struct wire_rd *r, size_t *len)
{
	*len = wire_u16(r);
	return (const char *)wire_bytes(r, *len);
}

/* The payload of a DKIM_* message (the header read): fields into m.  The
 * lengths and bytes are judged by dkim_payload_len() afterwards. */
static void dkim_decode(struct wire_rd *r, struct keymsg *m)
{
	switch (m->type) {
	case KEYMSG_DKIM_SIGN_REQ:
		m->domain = counted(r, &m->domainlen);
		m->selector = counted(r, &m->selectorlen);
		m->len = KEYMSG_DKIM_HASH;
		m->data = wire_bytes(r, m->len);
		break;
	case KEYMSG_DKIM_SIGN_REP:
		m->ok = wire_u8(r);
		m->data = wire_rest(r, &m->len);
		break;
	case KEYMSG_DKIM_KEY_REQ:
		m->domain = counted(r, &m->domainlen);
		break;
	default: /* KEYMSG_DKIM_KEY_REP */
		m->ok = wire_u8(r);
		if (m->ok != 1)
			break;
		m->domain = counted(r, &m->domainlen);
		m->selector = counted(r, &m->selectorlen);
		m->headers = counted(r, &m->headerslen);
		m->data = (const unsigned char *)counted(r, &m->len);
		m->exp = (const unsigned char *)counted(r, &m->explen);
		break;
	}
}

int keymsg_decode(const unsigned char *buf, size_t len, size_t modlen, struct keymsg *m,
                  const char **why)
{
	struct wire_rd r;
	size_t plen;

	memset(m, 0, sizeof *m);
	if (len < KEYMSG_HDR) {
		*why = "short header";
		return -1;
	}
	wire_rd_init(&r, buf, len);
	m->type = wire_u32(&r);
	m->id = wire_u32(&r);
	plen = wire_u32(&r);
	if (plen != r.left) {
		*why = plen < r.left ? "bytes left over" : "truncated";
		return -1;
	}
	if (keymsg_is_dkim(m->type)) {
		dkim_decode(&r, m);
		/* Bytes left over or missing, or a field out of range. */
		if (wire_end(&r) != 0 || dkim_payload_len(m) != plen) {
			*why = wire_ok(&r) != 0 ? "truncated" : wire_end(&r) != 0 ? "bytes left over"
			     : "a DKIM field out of its range";
			memset(m, 0, sizeof *m);
			return -1;
		}
		if (m->len == 0)
			m->data = NULL;
		return 0;
	}
	switch (m->type) {
	case KEYMSG_SIGN_REQ:
		m->hash_id = wire_u8(&r);
		break;
	case KEYMSG_SIGN_REP:
	case KEYMSG_DECRYPT_REP:
		m->ok = wire_u8(&r);
		break;
	case KEYMSG_DECRYPT_REQ:
		break;
	default:
		*why = "unknown type";
		return -1;
	}
	if (wire_ok(&r) != 0) {
		*why = m->type == KEYMSG_SIGN_REQ ? "empty sign request" : "empty reply";
		return -1;
	}
	m->data = wire_rest(&r, &m->len);
	if (payload_len(m, modlen) == 0 || payload_len(m, modlen) != plen) {
		*why = "wrong length or flag for the type";
		return -1;
	}
	if (m->len == 0)
		m->data = NULL;
	return 0;
}

static void put_counted(struct wire_wr *w, const void *p, size_t len)
{
	wire_put_u16(w, (uint16_t)len);
	wire_put_bytes(w, p, len);
}

/* The payload of a DKIM_* message (checked by dkim_payload_len()). */
static void dkim_encode(struct wire_wr *w, const struct keymsg *m)
{
	switch (m->type) {
	case KEYMSG_DKIM_SIGN_REQ:
		put_counted(w, m->domain, m->domainlen);
		put_counted(w, m->selector, m->selectorlen);
		wire_put_bytes(w, m->data, m->len);
		break;
	case KEYMSG_DKIM_SIGN_REP:
		wire_put_u8(w, (uint8_t)m->ok);
		wire_put_bytes(w, m->data, m->len);
		break;
	case KEYMSG_DKIM_KEY_REQ:
		put_counted(w, m->domain, m->domainlen);
		break;
	default: /* KEYMSG_DKIM_KEY_REP */
		wire_put_u8(w, (uint8_t)m->ok);
		if (m->ok != 1)
			break;
		put_counted(w, m->domain, m->domainlen);
		put_counted(w, m->selector, m->selectorlen);
		put_counted(w, m->headers, m->headerslen);
		put_counted(w, m->data, m->len);
		put_counted(w, m->exp, m->explen);
		break;
	}
}

size_t keymsg_encode(unsigned char *buf, size_t cap, size_t modlen, const struct keymsg *m)
{
	size_t plen = payload_len(m, modlen);
	struct wire_wr w;

	if (plen == 0 || cap < KEYMSG_HDR || plen > cap - KEYMSG_HDR)
		return 0;
	wire_wr_init(&w, buf, KEYMSG_HDR + plen);
	wire_put_u32(&w, m->type);
	wire_put_u32(&w, m->id);
	wire_put_u32(&w, (uint32_t)plen);
	if (keymsg_is_dkim(m->type))
		dkim_encode(&w, m);
	else if (m->type == KEYMSG_SIGN_REQ)
		wire_put_u8(&w, (uint8_t)m->hash_id);
	else if (m->type == KEYMSG_SIGN_REP || m->type == KEYMSG_DECRYPT_REP)
		wire_put_u8(&w, (uint8_t)m->ok);
	if (!keymsg_is_dkim(m->type))
		wire_put_bytes(&w, m->data, m->len);
	return wire_wr_end(&w);
}

/* ---- packets ------------------------------------------------------------ */

/* see keymsg.h */
ssize_t keymsg_recv(int fd, unsigned char *buf, const char **why)
{
	for (;;) {
		struct iovec iov = { buf, KEYMSG_MAX };
		struct msghdr mh;
		ssize_t n;

		memset(&mh, 0, sizeof mh);
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		n = recvmsg(fd, &mh, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ECONNRESET)
			return 0; /* the peer closed with our reply unread: an end */
		if (n < 0) {
			*why = strerror(errno);
			return -1;
		}
		if (mh.msg_flags & MSG_TRUNC) {
			*why = "packet too long";
			return -1;
		}
		return n;
	}
}

int keymsg_send(int fd, const unsigned char *buf, size_t len, const char **why)
{
	for (;;) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*why = strerror(errno);
			return -1;
		}
		if ((size_t)n != len) {
			*why = "short send";
			errno = EMSGSIZE;
			return -1;
		}
		return 0;
	}
}
