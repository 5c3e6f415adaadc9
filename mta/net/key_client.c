/* mta/net/key_client.c -- the smtp role's signer through the key role; see key_client.h */
#include "mta/net/key_client.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mta/net/keymsg.h"
#include "mta/net/log.h"
#include "mta/net/tls.h"

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
	if (keymsg_send(k->fd, buf, len, &why) != 0) {
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
	n = keymsg_recv(k->fd, buf, &why);
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

int key_client_broken(const struct tls_creds *creds)
{
	void *ctx;

	if (tls_creds_signer(creds, &ctx) != &remote_signer)
		return 0;
	return ((const struct keylink *)ctx)->broken;
}
