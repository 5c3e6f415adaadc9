/* mta/net/keyrole.c -- the key role and its link; see keyrole.h */
#include "mta/net/keyrole.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "mta/net/log.h"
#include "mta/net/tls.h"
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

/* The payload of m as the rules of keyrole.h allow it: its length (>= 1),
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

/* One packet into buf (KEYMSG_MAX bytes): its length, 0 at EOF, -1 on an
 * error or a packet longer than any message (*why set). */
static ssize_t recv_packet(int fd, unsigned char *buf, const char **why)
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

static int send_packet(int fd, const unsigned char *buf, size_t len, const char **why)
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

/* ---- the key role --------------------------------------------------------- */

int keyrole_serve(int fd, struct tls_creds *creds)
{
	unsigned char in[KEYMSG_MAX], out[KEYMSG_MAX];
	unsigned char work[KEYMSG_MAX];
	void *sctx;
	const struct tls_signer *s = tls_creds_signer(creds, &sctx);
	size_t modlen = tls_creds_modlen(creds);
	const char *why = NULL;
	int rc = 111;

	for (;;) {
		struct keymsg q, r;
		ssize_t n = recv_packet(fd, in, &why);
		size_t olen;

		if (n == 0) {
			rc = 0;
			break;
		}
		if (n < 0)
			break;
		if (keymsg_decode(in, (size_t)n, modlen, &q, &why) != 0)
			break;
		memset(&r, 0, sizeof r);
		r.id = q.id;
		if (q.type == KEYMSG_SIGN_REQ) {
			size_t sl = s->sign(sctx, q.hash_id, q.data, q.len, work, KEYMSG_SIG_MAX);

			r.type = KEYMSG_SIGN_REP;
			r.ok = sl > 0 && sl <= KEYMSG_SIG_MAX;
			r.data = work;
			r.len = r.ok ? sl : 0;
		} else if (q.type == KEYMSG_DECRYPT_REQ && s->rsa_decrypt != NULL) {
			memcpy(work, q.data, q.len);
			r.type = KEYMSG_DECRYPT_REP;
			r.ok = s->rsa_decrypt(sctx, work, q.len) & 1;
			r.data = work;
			r.len = KEYMSG_PMS;
		} else {
			why = "unexpected type";
			break;
		}
		olen = keymsg_encode(out, sizeof out, modlen, &r);
		if (olen == 0) {
			why = "cannot encode the reply";
			break;
		}
		if (send_packet(fd, out, olen, &why) != 0) {
			if (errno == EPIPE || errno == ECONNRESET)
				rc = 0; /* the smtp role went away (or gave up waiting) */
			break;
		}
		explicit_bzero(work, sizeof work);
		explicit_bzero(out, sizeof out);
	}
	explicit_bzero(work, sizeof work);
	explicit_bzero(out, sizeof out);
	explicit_bzero(in, sizeof in);
	if (rc != 0)
		log_warn("role=key key-link=broken why=\"%s\"", why ? why : "?");
	return rc;
}

/* ---- the smtp role's end: a signer that asks the key role --------------- */

struct keylink {
	int      fd;
	int      broken;     /* no request goes out until a new fd */
	uint32_t next_id;
	size_t   modlen;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void link_broken(struct keylink *k, const char *why)
{
	k->broken = 1;
	log_warn("role=smtp key-link=broken why=\"%s\"", why);
}

/* Send q, wait for its reply into *r (pointing into buf): 0, or -1 with
 * the link broken. */
static int exchange(struct keylink *k, struct keymsg *q, uint32_t rep_type, unsigned char *buf,
                    struct keymsg *r)
{
	const char *why = NULL;
	int64_t deadline;
	ssize_t n;
	size_t len;

	if (k->broken)
		return -1;
	q->id = k->next_id++;
	len = keymsg_encode(buf, KEYMSG_MAX, k->modlen, q);
	if (len == 0) /* not a request the key role would take: this handshake only */
		return -1;
	if (send_packet(k->fd, buf, len, &why) != 0) {
		link_broken(k, why);
		return -1;
	}
	deadline = now_ms() + KEYROLE_TIMEOUT_MS;
	for (;;) {
		struct pollfd pfd = { k->fd, POLLIN, 0 };
		int64_t left = deadline - now_ms();
		int pr;

		if (left <= 0) {
			link_broken(k, "no reply in time");
			return -1;
		}
		pr = poll(&pfd, 1, (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0) {
			link_broken(k, strerror(errno));
			return -1;
		}
		if (pr > 0)
			break;
	}
	n = recv_packet(k->fd, buf, &why);
	if (n == 0)
		why = "key role closed the link";
	if (n <= 0 || keymsg_decode(buf, (size_t)n, k->modlen, r, &why) != 0) {
		link_broken(k, why);
		return -1;
	}
	if (r->type != rep_type || r->id != q->id) {
		link_broken(k, r->type != rep_type ? "reply of the wrong type" : "reply to another request");
		return -1;
	}
	return 0;
}

static size_t remote_sign(void *ctx, unsigned hash_id, const unsigned char *hv, size_t hv_len,
                          unsigned char *sig, size_t cap)
{
	struct keylink *k = ctx;
	unsigned char buf[KEYMSG_MAX];
	struct keymsg q, r;
	size_t n = 0;

	memset(&q, 0, sizeof q);
	q.type = KEYMSG_SIGN_REQ;
	q.hash_id = hash_id;
	q.data = hv;
	q.len = hv_len;
	if (exchange(k, &q, KEYMSG_SIGN_REP, buf, &r) == 0 && r.ok) {
		if (r.len <= cap) {
			memcpy(sig, r.data, r.len);
			n = r.len;
		} else {
			log_warn("role=smtp key-link=ok why=\"signature of %zu bytes, room for %zu\"",
			         r.len, cap);
		}
	}
	return n;
}

static uint32_t remote_rsa_decrypt(void *ctx, unsigned char *data, size_t len)
{
	struct keylink *k = ctx;
	unsigned char buf[KEYMSG_MAX];
	struct keymsg q, r;
	uint32_t ok = 0;

	memset(&q, 0, sizeof q);
	q.type = KEYMSG_DECRYPT_REQ;
	q.data = data;
	q.len = len;
	if (len >= KEYMSG_PMS && exchange(k, &q, KEYMSG_DECRYPT_REP, buf, &r) == 0) {
		/* Copied whatever ok says, like br_rsa_ssl_decrypt(): BearSSL
		 * itself replaces a failed premaster secret in constant time. */
		memcpy(data, r.data, KEYMSG_PMS);
		ok = r.ok;
	}
	explicit_bzero(buf, sizeof buf);
	return ok;
}

static const struct tls_signer remote_signer = { remote_sign, remote_rsa_decrypt };

/* A link that never was: the key is wiped even when no memory is left. */
static struct keylink no_link = { -1, 1, 0, 0 };

int tls_creds_use_key_role(struct tls_creds *creds, int fd)
{
	void *ctx;
	struct keylink *k;

	if (tls_creds_signer(creds, &ctx) == &remote_signer && ctx != &no_link) {
		k = ctx;  /* a restarted key role: a new link */
		k->fd = fd;
		k->broken = fd < 0;
		return 0;
	}
	if ((k = calloc(1, sizeof *k)) == NULL) {
		tls_creds_set_signer(creds, &remote_signer, &no_link, NULL);
		return -1;
	}
	k->fd = fd;
	k->broken = fd < 0;
	k->next_id = 1;
	k->modlen = tls_creds_modlen(creds);
	tls_creds_set_signer(creds, &remote_signer, k, free);
	return 0;
}

int keyrole_link_broken(const struct tls_creds *creds)
{
	void *ctx;

	if (tls_creds_signer(creds, &ctx) != &remote_signer)
		return 0;
	return ((const struct keylink *)ctx)->broken;
}
