/* mta/roles/key_role.c -- the key role; see key_role.h */
#include "mta/roles/key_role.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>

#include "mta/net/keymsg.h"
#include "mta/net/log.h"
#include "mta/net/tls.h"
#include "mta/roles/roles.h"
#include "policy/dkim.h"

/* What one request's answer is built in: wiped after each. */
struct work {
	unsigned char out[KEYMSG_MAX];
	unsigned char sig[KEYMSG_MAX];
	char          name[KEYMSG_DOMAIN_MAX + 1];
};

/* ---- the TLS link ------------------------------------------------------ */

/* The answer to one TLS request q into r (pointing into w); -1 when q is
 * not a TLS request this key can serve. */
static int tls_answer(const struct keymsg *q, struct keymsg *r, struct tls_creds *creds,
                      struct work *w)
{
	void *sctx;
	const struct tls_signer *s = tls_creds_signer(creds, &sctx);

	if (q->type == KEYMSG_SIGN_REQ) {
		size_t sl = s->sign(sctx, q->hash_id, q->data, q->len, w->sig, KEYMSG_SIG_MAX);

		r->type = KEYMSG_SIGN_REP;
		r->ok = sl > 0 && sl <= KEYMSG_SIG_MAX;
		r->data = w->sig;
		r->len = r->ok ? sl : 0;
		return 0;
	}
	if (q->type == KEYMSG_DECRYPT_REQ && s->rsa_decrypt != NULL) {
		memcpy(w->sig, q->data, q->len);
		r->type = KEYMSG_DECRYPT_REP;
		r->ok = s->rsa_decrypt(sctx, w->sig, q->len) & 1;
		r->data = w->sig;
		r->len = KEYMSG_PMS;
		return 0;
	}
	return -1;
}

/* ---- the DKIM link ----------------------------------------------------- */

/* DKIM_SIGN_REQ: the line the request names, its key, the signature. */
static void dkim_sign_answer(const struct keymsg *q, struct keymsg *r, const struct key_role_links *k,
                             struct work *w)
{
	const struct conf_dkim *d = k->conf == NULL ? NULL
	                          : dkim_line_find(k->conf, q->domain, q->domainlen, q->selector,
	                                           q->selectorlen);
	const struct dkim_key *key = d != NULL ? k->keys[d - k->conf->dkim] : NULL;
	size_t sl = key != NULL ? dkim_key_sign(key, q->data, w->sig, KEYMSG_SIG_MAX) : 0;

	r->type = KEYMSG_DKIM_SIGN_REP;
	r->ok = sl > 0;
	r->data = sl > 0 ? w->sig : NULL;
	r->len = sl;
	if (d == NULL)
		log_warn("role=key msg=\"a DKIM signature asked for a key not configured\"");
}

/* DKIM_KEY_REQ: the line that covers a From: domain (dkim_key_find()),
 * its names and its public half. */
static void dkim_key_answer(const struct keymsg *q, struct keymsg *r, const struct key_role_links *k,
                            struct work *w)
{
	const struct conf_dkim *d = NULL;
	const struct dkim_key *key = NULL;
	char domain[KEYMSG_DOMAIN_MAX + 1];

	memcpy(domain, q->domain, q->domainlen);
	domain[q->domainlen] = 0;
	if (k->conf != NULL && (d = dkim_key_find(k->conf, domain, q->domainlen)) != NULL)
		key = k->keys[d - k->conf->dkim];
	r->type = KEYMSG_DKIM_KEY_REP;
	r->ok = key != NULL;
	if (key == NULL)
		return;
	r->domain = w->name;
	r->domainlen = dkim_line_domain(d, w->name, sizeof w->name);
	r->selector = d->selector;
	r->selectorlen = strlen(d->selector);
	r->headers = d->headers;
	r->headerslen = strlen(d->headers);
	dkim_key_public(key, &r->data, &r->len, &r->exp, &r->explen);
}

/* ---- serving ----------------------------------------------------------- */

/* Read one request from fd and answer it.  1 served, 0 the peer is gone
 * (EOF, EPIPE, ECONNRESET), -1 a malformed request or another error
 * (*why set). */
static int serve_one(int fd, int dkim, const struct key_role_links *k, struct work *w,
                     const char **why)
{
	unsigned char in[KEYMSG_MAX];
	size_t modlen = !dkim && k->creds != NULL ? tls_creds_modlen(k->creds) : 0;
	struct keymsg q, r;
	ssize_t n = keymsg_recv(fd, in, why);
	size_t olen;
	int rc = -1;

	if (n <= 0)
		return n == 0 ? 0 : -1;
	if (keymsg_decode(in, (size_t)n, modlen, &q, why) != 0)
		goto out;
	memset(&r, 0, sizeof r);
	r.id = q.id;
	if (dkim && q.type == KEYMSG_DKIM_SIGN_REQ) {
		dkim_sign_answer(&q, &r, k, w);
	} else if (dkim && q.type == KEYMSG_DKIM_KEY_REQ) {
		dkim_key_answer(&q, &r, k, w);
	} else if (dkim || k->creds == NULL || tls_answer(&q, &r, k->creds, w) != 0) {
		*why = "unexpected type";
		goto out;
	}
	if ((olen = keymsg_encode(w->out, sizeof w->out, modlen, &r)) == 0) {
		*why = "cannot encode the reply";
		goto out;
	}
	if (keymsg_send(fd, w->out, olen, why) != 0)
		/* the client went away (or gave up waiting) */
		rc = errno == EPIPE || errno == ECONNRESET ? 0 : -1;
	else
		rc = 1;
out:
	explicit_bzero(in, sizeof in);
	explicit_bzero(w, sizeof *w);
	return rc;
}

int key_role_serve_links(const struct key_role_links *k)
{
	static struct work w;   /* (off the stack: a signature and a reply) */
	const char *why = NULL;
	int rc;

	for (;;) {
		struct pollfd pf[2] = { { k->tls_fd, POLLIN, 0 }, { k->dkim_fd, POLLIN, 0 } };

		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			why = strerror(errno);
			rc = -1;
			break;
		}
		/* The TLS link first: a handshake holds the smtp role's whole
		 * loop, a DKIM signature only its own message. */
		if (pf[0].revents != 0)
			rc = serve_one(k->tls_fd, 0, k, &w, &why);
		else if (pf[1].revents != 0)
			rc = serve_one(k->dkim_fd, 1, k, &w, &why);
		else
			continue;
		if (rc <= 0)
			break;
	}
	if (rc != 0) {
		log_warn("role=key key-link=broken why=\"%s\"", why ? why : "?");
		return 111;
	}
	return 0;
}

int key_role_serve(int fd, struct tls_creds *creds)
{
	struct key_role_links k = { fd, creds, -1, NULL, NULL };

	return key_role_serve_links(&k);
}

int key_role_main(struct config *cfg, int kfd, int dfd)
{
	struct key_role_links k = { -1, NULL, dfd, &cfg->conf, cfg->tables.dkim };
	sigset_t mask;

	/* SIGTERM ends it like EOF does; SIGHUP is the supervisor's. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (kfd >= 0 && cfg->tables.creds != NULL) {
		k.tls_fd = kfd;
		k.creds = cfg->tables.creds;
	}
	if ((k.tls_fd < 0 && k.dkim_fd < 0) || role_enter(ROLE_KEY, cfg, NULL) != 0)
		return 111;
	return key_role_serve_links(&k);
}
