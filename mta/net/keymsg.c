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
		return 0;
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
	if (m->type == KEYMSG_SIGN_REQ)
		wire_put_u8(&w, (uint8_t)m->hash_id);
	else if (m->type == KEYMSG_SIGN_REP || m->type == KEYMSG_DECRYPT_REP)
		wire_put_u8(&w, (uint8_t)m->ok);
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
