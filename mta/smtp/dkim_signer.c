/* mta/smtp/dkim_signer.c -- a message on its way to a DKIM signature; see dkim_signer.h */
#include "mta/smtp/dkim_signer.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

struct dks *dks_new(void)
{
	struct dks *d = malloc(sizeof *d);

	if (d == NULL)
		return NULL;
	/* Everything but the header buffer, which dkim_msg fills. */
	memset(d, 0, offsetof(struct dks, hdr));
	dkim_msg_init(&d->msg, d->hdr, sizeof d->hdr);
	return d;
}

void dks_free(struct dks *d)
{
	if (d == NULL)
		return;
	if (d->ticket != 0 && d->link != NULL)
		dkc_cancel(d->link, d->ticket);
	free(d);
}

void dks_feed(struct dks *d, const void *p, size_t len)
{
	dkim_msg_feed(&d->msg, p, len);
}

int dks_end(struct dks *d, char domain[ADDR_DOMAIN_MAX + 1])
{
	d->big = dkim_msg_end(&d->msg, d->bh) != 0;
	if (dkim_from_domain(d->msg.hdr, d->msg.hlen, domain, &d->why) != 0)
		return -1;
	return 0;
}

/* Copy s[0..len) into out (cap bytes), NUL-terminated, in lower case
 * with lower; -1 when it does not fit. */
static int take_case(char *out, size_t cap, const char *s, size_t len, int lower)
{
	if (len >= cap)
		return -1;
	for (size_t i = 0; i < len; i++)
		out[i] = lower ? (char)tolower((unsigned char)s[i]) : s[i];
	out[len] = 0;
	return 0;
}

static int take(char *out, size_t cap, const char *s, size_t len)
{
	return take_case(out, cap, s, len, 0);
}

/* The public half into d; 0 or -1. */
static int take_public(struct dks *d, const unsigned char *n, size_t nlen, const unsigned char *e,
                       size_t elen)
{
	if (nlen == 0 || nlen > sizeof d->n || elen == 0 || elen > sizeof d->e)
		return -1;
	memcpy(d->n, n, nlen);
	d->nlen = nlen;
	memcpy(d->e, e, elen);
	d->elen = elen;
	return 0;
}

int dks_use_line(struct dks *d, const struct conf_dkim *line, const struct dkim_key *key)
{
	const unsigned char *n, *e;
	size_t nlen, elen;

	if (key == NULL) {
		d->why = "no key loaded for the line";
		return -1;
	}
	dkim_key_public(key, &n, &nlen, &e, &elen);
	if (dkim_line_domain(line, d->line, sizeof d->line) >= sizeof d->line ||
	    take_case(d->domain, sizeof d->domain, line->domain.name, strlen(line->domain.name), 1) ||
	    take(d->selector, sizeof d->selector, line->selector, strlen(line->selector)) != 0 ||
	    take(d->headers, sizeof d->headers, line->headers, strlen(line->headers)) != 0 ||
	    take_public(d, n, nlen, e, elen) != 0) {
		d->why = "a key the signature cannot name";
		return -1;
	}
	return 0;
}

int dks_use_rep(struct dks *d, const struct keymsg *rep)
{
	const char *name = rep->domain;
	size_t len = rep->domainlen;

	if (rep->type != KEYMSG_DKIM_KEY_REP || rep->ok != 1) {
		d->why = "no key covers the domain";
		return -1;
	}
	/* d= is the line's DOMAIN without its "*.". */
	if (len > 2 && name[0] == '*' && name[1] == '.') {
		name += 2;
		len -= 2;
	}
	if (take(d->line, sizeof d->line, rep->domain, rep->domainlen) != 0 ||
	    take_case(d->domain, sizeof d->domain, name, len, 1) != 0 ||
	    take(d->selector, sizeof d->selector, rep->selector, rep->selectorlen) != 0 ||
	    take(d->headers, sizeof d->headers, rep->headers, rep->headerslen) != 0 ||
	    take_public(d, rep->data, rep->len, rep->exp, rep->explen) != 0) {
		d->why = "a key the signature cannot name";
		return -1;
	}
	return 0;
}

int dks_present(const struct dks *d)
{
	return dkim_signed_by(d->msg.hdr, d->msg.hlen, d->domain);
}

int dks_prepare(struct dks *d, uint64_t now)
{
	struct dkim_spec spec = { d->domain, d->selector, d->headers[0] ? d->headers : NULL, now };

	if (d->big) {
		d->why = "the header block is too large to sign";
		return -1;
	}
	return dkim_prepare(d->msg.hdr, d->msg.hlen, d->bh, &spec, &d->pend, &d->why);
}

int dks_finish(struct dks *d, const struct keymsg *rep, const char *why)
{
	if (rep == NULL) {
		d->why = why != NULL ? why : "no answer";
		return -1;
	}
	if (rep->type != KEYMSG_DKIM_SIGN_REP || rep->ok != 1) {
		d->why = "the key role did not sign";
		return -1;
	}
	/* Never a signature that does not verify: whatever the key role
	 * says, it is checked here with the public half this role chose. */
	if (!dkim_rsa_verify(d->n, d->nlen, d->e, d->elen, d->pend.hash, rep->data, rep->len)) {
		d->why = "the signature does not verify";
		return -1;
	}
	d->outlen = dkim_header_finish(&d->pend, rep->data, rep->len, d->out, sizeof d->out);
	if (d->outlen >= sizeof d->out) {
		d->outlen = 0;
		d->why = "the signature header is too long";
		return -1;
	}
	return 0;
}

static void signed_cb(void *arg, const struct keymsg *rep, const char *why)
{
	struct dks *d = arg;
	int ok;

	d->ticket = 0;
	ok = dks_finish(d, rep, why) == 0;
	d->cb(d->arg, d, ok);
}

uint64_t dks_ask(struct dks *d, struct dkc *link, dks_fn *cb, void *arg)
{
	d->link = link;
	d->cb = cb;
	d->arg = arg;
	d->ticket = dkc_sign(link, d->line, d->selector, d->pend.hash, signed_cb, d);
	return d->ticket;
}
