/* mta/smtp/dsn_dkim.c -- DKIM signatures on the DSNs moat makes; see dsn_dkim.h */
#include "mta/smtp/dsn_dkim.h"

#include <string.h>
#include <time.h>

#include "mta/net/log.h"
#include "mta/smtp/dkim_signer.h"

static struct dkc *dsn_link;

void dsn_dkim_use(struct dkc *link)
{
	dsn_link = link;
}

/* An answer waited for with dkc_wait(): copied out of the callback. */
struct answer {
	int          done;
	int          ok;
	const char  *why;
	struct dks  *d;
};

static void key_cb(void *arg, const struct keymsg *rep, const char *why)
{
	struct answer *a = arg;

	a->done = 1;
	a->why = why;
	/* Found: the key goes into the state now (rep dies with the callback). */
	a->ok = rep != NULL && rep->ok == 1 && dks_use_rep(a->d, rep) == 0;
	if (rep != NULL && rep->ok == 1 && !a->ok)
		a->why = a->d->why;
}

static void sign_cb(void *arg, struct dks *d, int ok)
{
	struct answer *a = arg;

	(void)d;
	a->done = 1;
	a->ok = ok;
}

/*
 * The key for a DSN from domain: the one covering it, else the one of its
 * nearest parent (at least two labels).  1 found (in d), 0 none covers
 * any, -1 no answer (*why).
 */
static int choose_key(struct dks *d, const char *domain, const char **why)
{
	const char *name = domain;

	for (;;) {
		struct answer a = { 0, 0, NULL, d };
		const char *dot;

		dkc_wait(dsn_link, dkc_key(dsn_link, name, key_cb, &a));
		if (a.ok)
			return 1;
		if (a.why != NULL) {   /* no answer, or a key it cannot name */
			*why = a.why;
			return -1;
		}
		dot = strchr(name, '.');
		if (dot == NULL || strchr(dot + 1, '.') == NULL)
			return 0;
		name = dot + 1;
	}
}

static void log_fail(queue_id id, const struct dks *d, const char *why)
{
	char idtext[QUEUE_ID_TEXT], text[256];

	queue_id_format(id, idtext);
	log_text(why, strlen(why), text, sizeof text);
	log_event("dkim-fail", "kind=dsn id=%s d=%s s=%s why=\"%s\" action=unsigned", idtext,
	          d->domain[0] ? d->domain : "none", d->selector[0] ? d->selector : "none", text);
}

void dsn_dkim_sign(struct qc *q, queue_id id, const char *a, size_t alen, const char *b,
                   size_t blen)
{
	char domain[ADDR_DOMAIN_MAX + 1], idtext[QUEUE_ID_TEXT];
	const char *why = NULL;
	struct dks *d;
	int found;

	if (dsn_link == NULL || !dkc_linked(dsn_link))
		return;
	if ((d = dks_new()) == NULL) {
		log_warn("msg=\"out of memory: a DSN goes unsigned\"");
		return;
	}
	dks_feed(d, a, alen);
	dks_feed(d, b, blen);
	if (dks_end(d, domain) != 0 || (found = choose_key(d, domain, &why)) < 0) {
		log_fail(id, d, why != NULL ? why : d->why);
	} else if (found > 0) {
		struct answer ans = { 0, 0, NULL, d };

		if (dks_prepare(d, (uint64_t)time(NULL)) == 0)
			dkc_wait(dsn_link, dks_ask(d, dsn_link, sign_cb, &ans));
		if (!ans.ok) {
			log_fail(id, d, d->why);
		} else if (qc_draft_write(q, id, d->out, d->outlen) != 0) {
			log_fail(id, d, "cannot send the header to the queue role");
		} else {
			queue_id_format(id, idtext);
			log_event("dkim-dsn", "id=%s d=%s s=%s", idtext, d->domain, d->selector);
		}
	}
	dks_free(d);
}
