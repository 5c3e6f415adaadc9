/* mta/smtp/dsn_dkim.c -- DKIM signatures on the DSNs moat makes; see dsn_dkim.h */
#include "mta/smtp/dsn_dkim.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mta/net/log.h"
#include "mta/smtp/dkim_signer.h"

static struct dkc *dsn_link;

void dsn_dkim_use(struct dkc *link)
{
	dsn_link = link;
}

struct dsn_sig {
	struct dks   *d;
	struct dkc   *link;     /* the link it was asked on */
	queue_id      id;
	const char   *name;     /* the name asked for now, in domain */
	char          domain[ADDR_DOMAIN_MAX + 1];
	uint64_t      ticket;   /* the DKIM_KEY_REQ on its way, 0 none */
	dsn_dkim_fn  *cb;
	void         *arg;
};

static void log_fail(queue_id id, const struct dks *d, const char *why)
{
	char idtext[QUEUE_ID_TEXT], text[256];

	queue_id_format(id, idtext);
	log_text(why, strlen(why), text, sizeof text);
	log_event("dkim-fail", "kind=dsn id=%s d=%s s=%s why=\"%s\" action=unsigned", idtext,
	          d->domain[0] ? d->domain : "none", d->selector[0] ? d->selector : "none", text);
}

/* The end: the header (or none) to the caller, then the state goes. */
static void finish(struct dsn_sig *s, int signed_ok)
{
	if (signed_ok) {
		char idtext[QUEUE_ID_TEXT];
		queue_id_format(s->id, idtext);
		log_event("dkim-dsn", "id=%s d=%s s=%s", idtext, s->d->domain, s->d->selector);
	}
	s->cb(s->arg, signed_ok ? s->d->out : NULL, signed_ok ? s->d->outlen : 0);
	dks_free(s->d);
	free(s);
}

static void sign_cb(void *arg, struct dks *d, int ok)
{
	struct dsn_sig *s = arg;

	if (!ok)
		log_fail(s->id, d, d->why);
	finish(s, ok);
}

static void ask_key(struct dsn_sig *s);

/*
 * The key for a DSN from its domain: the one covering it, else the one of
 * its nearest parent (at least two labels), asked one name at a time.
 */
static void key_cb(void *arg, const struct keymsg *rep, const char *why)
{
	struct dsn_sig *s = arg;
	const char *dot;

	s->ticket = 0;
	if (rep != NULL && rep->ok == 1) {
		/* Found: the key goes into the state now (rep dies with the callback). */
		if (dks_use_rep(s->d, rep) != 0 || dks_prepare(s->d, (uint64_t)time(NULL)) != 0) {
			log_fail(s->id, s->d, s->d->why);
			finish(s, 0);
		} else {
			(void)dks_ask(s->d, s->link, sign_cb, s);
		}
		return;
	}
	if (why != NULL) {     /* no answer, or a key it cannot name */
		log_fail(s->id, s->d, why);
		finish(s, 0);
		return;
	}
	dot = strchr(s->name, '.');
	if (dot == NULL || strchr(dot + 1, '.') == NULL) {
		finish(s, 0);  /* no key covers it: unsigned, without a word */
		return;
	}
	s->name = dot + 1;
	ask_key(s);
}

static void ask_key(struct dsn_sig *s)
{
	s->ticket = dkc_key(s->link, s->name, key_cb, s);
}

struct dsn_sig *dsn_dkim_start(queue_id id, const char *a, size_t alen, const char *b,
                               size_t blen, dsn_dkim_fn *cb, void *arg)
{
	struct dsn_sig *s;

	if (dsn_link == NULL || !dkc_linked(dsn_link))
		return NULL;
	if ((s = calloc(1, sizeof *s)) == NULL || (s->d = dks_new()) == NULL) {
		free(s);
		log_warn("msg=\"out of memory: a DSN goes unsigned\"");
		return NULL;
	}
	s->link = dsn_link;
	s->id = id;
	s->cb = cb;
	s->arg = arg;
	dks_feed(s->d, a, alen);
	dks_feed(s->d, b, blen);
	if (dks_end(s->d, s->domain) != 0) {
		log_fail(id, s->d, s->d->why);
		dks_free(s->d);
		free(s);
		return NULL;
	}
	s->name = s->domain;
	ask_key(s);
	return s;
}

void dsn_dkim_cancel(struct dsn_sig *s)
{
	if (s == NULL)
		return;
	if (s->ticket != 0)
		dkc_cancel(s->link, s->ticket);
	dks_free(s->d);       /* (cancels a signature on its way) */
	free(s);
}
