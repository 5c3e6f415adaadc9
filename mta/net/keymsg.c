/* mta/net/keymsg.c -- the key role's messages; see keymsg.h */
#include "mta/net/keymsg.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/be.h"

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
	const unsigned char *p = buf + KEYMSG_HDR;
	size_t plen;

	memset(m, 0, sizeof *m);
	if (len < KEYMSG_HDR) {
		*why = "short header";
		return -1;
	}
	m->type = be32_get(buf);
	m->id = be32_get(buf + 4);
	plen = be32_get(buf + 8);
	if (plen != len - KEYMSG_HDR) {
		*why = plen < len - KEYMSG_HDR ? "bytes left over" : "truncated";
		return -1;
	}
	switch (m->type) {
	case KEYMSG_SIGN_REQ:
		if (plen < 1) {
			*why = "empty sign request";
			return -1;
		}
		m->hash_id = p[0];
		m->data = p + 1;
		m->len = plen - 1;
		break;
	case KEYMSG_SIGN_REP:
	case KEYMSG_DECRYPT_REP:
		if (plen < 1) {
			*why = "empty reply";
			return -1;
		}
		m->ok = p[0];
		m->data = p + 1;
		m->len = plen - 1;
		break;
	case KEYMSG_DECRYPT_REQ:
		m->data = p;
		m->len = plen;
		break;
	default:
		*why = "unknown type";
		return -1;
	}
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
	unsigned char *p = buf + KEYMSG_HDR;

	if (plen == 0 || cap < KEYMSG_HDR || plen > cap - KEYMSG_HDR)
		return 0;
	be32_put(buf, m->type);
	be32_put(buf + 4, m->id);
	be32_put(buf + 8, (uint32_t)plen);
	switch (m->type) {
	case KEYMSG_SIGN_REQ:
		*p++ = (unsigned char)m->hash_id;
		break;
	case KEYMSG_SIGN_REP:
	case KEYMSG_DECRYPT_REP:
		*p++ = (unsigned char)m->ok;
		break;
	default:
		break;
	}
	if (m->len > 0)
		memcpy(p, m->data, m->len);
	return KEYMSG_HDR + plen;
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
