/*
 * mta/smtp/sts_policy.c -- the MTA-STS policy of recipient domains; see
 * sts_policy.h.
 *
 * One entry per domain.  A lookup asks two things at once, the TXT record
 * (the resolver) and the cached policy (the queue role), then
 * mtasts_plan() says: no policy, the cached one, or a fetch
 * (mta/smtp/sts_fetch.h), whose policy is cached in turn.  The verdict
 * goes to every waiter from a zero-delay timer (the entry's notify), never
 * from inside a caller's call.
 */
#include "mta/smtp/sts_policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mta/net/log.h"
#include "mta/smtp/sts_fetch.h"
#include "queue/sts.h"

struct entry;

struct sts_policy_wait {
	struct entry           *e;
	struct sts_policy_wait *next;
	sts_policy_cb          *cb;
	void                   *arg;
};

struct entry {
	struct sts_policy      *s;
	struct entry           *next;          /* s->entries */
	char                    domain[DNS_NAME_MAX + 1];
	struct sts_policy_wait *waits;
	struct ev_timer         notify;
	int64_t                 ready_at;      /* monotonic ms of the verdict; 0: none */
	struct sts_verdict      v;
	/* The lookup, while busy. */
	int                     busy;
	struct dns_query       *txq;
	uint64_t                ticket;        /* STS_GET */
	int                     txt_done, cache_done;
	enum mtasts_lookup      txt;
	char                    id[MTASTS_ID_MAX + 1];
	struct mtasts_cached   *cached;        /* what the queue had, or NULL */
	struct sts_fetch       *fetch;
	uint64_t                put_ticket;    /* STS_PUT, until answered */
};

struct sts_policy {
	struct ev_loop           *loop;
	struct dns_resolver      *dns;
	struct qc                *q;
	const struct tls_anchors *anchors;
	unsigned                  connect_s;
	sts_policy_fail_fn       *fail;
	void                     *fail_arg;
	struct entry             *entries;
	size_t                    n;
};

static void lookup_start(struct entry *e);

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

/* ---- the verdict to the waiters ---- */

static void notify_cb(struct ev_loop *l, struct ev_timer *t)
{
	struct entry *e = t->arg;

	(void)l;
	/* One at a time from the head: a callback may cancel other waits. */
	while (e->waits != NULL) {
		struct sts_policy_wait *w = e->waits;

		e->waits = w->next;
		w->cb(w->arg, &e->v);
		free(w);
	}
}

static void verdict_of(struct entry *e, const struct mtasts_cached *c)
{
	memset(&e->v, 0, sizeof e->v);
	if (c == NULL)
		return;
	e->v.have = c->policy.mode != MTASTS_MODE_NONE;
	memcpy(e->v.id, c->id, sizeof e->v.id);
	e->v.policy = c->policy;
}

/* The lookup is over: c is what applies (NULL: no policy). */
static void lookup_done(struct entry *e, const struct mtasts_cached *c)
{
	verdict_of(e, c);
	e->busy = 0;
	e->ready_at = ev_monotonic_ms();
	free(e->cached);
	e->cached = NULL;
	ev_timer_start(e->s->loop, &e->notify, 0);
}

/* ---- the fetch ---- */

static void put_cb(void *arg, const struct qw_rep *rep)
{
	struct entry *e = arg;
	int rc = rep != NULL ? rep->rc : QUEUE_EIO;

	e->put_ticket = 0;
	if (rc != QUEUE_OK)
		log_warn("msg=\"cannot cache the MTA-STS policy of %s: %s\"", e->domain,
		         queue_strerror(rc));
}

/* A fetch or a parse failed: say so (one line, counted by the metrics),
 * tell the report, and apply the cached policy if it is still fresh. */
static void fetch_failed(struct entry *e, unsigned result, const char *why)
{
	struct sts_policy *s = e->s;
	int fresh = mtasts_fetch_failed(e->cached, now_s()) == MTASTS_USE_CACHED;
	char reason[400];

	log_quoted(why, strlen(why), reason, sizeof reason);
	log_event("tls-policy-fail", "domain=%s policy=mta-sts result=%s action=%s reason=%s",
	          e->domain, tlsrpt_result_name(result), fresh ? "cached-policy" : "no-policy",
	          reason);
	if (s->fail != NULL)
		s->fail(s->fail_arg, e->domain, result, why);
	lookup_done(e, fresh ? e->cached : NULL);
}

/* A policy fetched and parsed: cached in the queue, applied. */
static void fetched(struct entry *e, const struct mtasts_policy *p)
{
	static struct mtasts_cached c;     /* 8 KiB: off the stack; one thread */
	unsigned char rec[STS_RECORD_MAX];
	size_t rl;

	memset(&c, 0, sizeof c);
	memcpy(c.id, e->id, sizeof c.id);
	c.fetched_at = now_s();
	c.policy = *p;
	log_event("mta-sts", "domain=%s id=%s mode=%s max_age=%u mx=%zu", e->domain, c.id,
	          mtasts_mode_name(p->mode), (unsigned)p->max_age, p->nmx);
	if ((rl = sts_encode(&c, rec, sizeof rec)) > 0 && e->put_ticket == 0)
		e->put_ticket = qc_sts_put(e->s->q, e->domain, rec, rl, put_cb, e);
	lookup_done(e, &c);
}

static void fetch_cb(void *arg, enum sts_fetch_rc rc, const char *body, size_t len,
                     const char *why)
{
	static struct mtasts_policy p;
	struct entry *e = arg;
	const char *perr = NULL;
	char text[400];
	int parsed = -1;

	/* why and body live in the fetch: read them before it goes. */
	if (rc != STS_FETCH_OK)
		snprintf(text, sizeof text, "https://mta-sts.%s/: %s", e->domain, why);
	else if ((parsed = mtasts_policy_parse(body, len, &p, &perr)) != 0)
		snprintf(text, sizeof text, "the policy file does not parse: %s", perr ? perr : "?");
	sts_fetch_free(e->fetch);
	e->fetch = NULL;
	if (rc != STS_FETCH_OK)
		fetch_failed(e, rc == STS_FETCH_WEBPKI ? TLSRPT_STS_WEBPKI_INVALID
		                                       : TLSRPT_STS_POLICY_FETCH_ERROR, text);
	else if (parsed != 0)
		fetch_failed(e, TLSRPT_STS_POLICY_INVALID, text);
	else
		fetched(e, &p);
}

/* ---- the lookup ---- */

/* Both answers in: what mtasts_plan() says. */
static void plan(struct entry *e)
{
	enum mtasts_action a;

	if (!e->txt_done || !e->cache_done)
		return;
	a = mtasts_plan(e->cached, e->txt, e->id, now_s());
	if (a == MTASTS_USE_CACHED) {
		lookup_done(e, e->cached);
	} else if (a == MTASTS_NO_POLICY) {
		lookup_done(e, NULL);
	} else {
		log_debug("msg=\"fetching the MTA-STS policy of %s (id %s)\"", e->domain, e->id);
		e->fetch = sts_fetch_start(e->s->loop, e->s->dns, e->s->anchors, e->domain,
		                           e->s->connect_s, fetch_cb, e);
		if (e->fetch == NULL)
			fetch_failed(e, TLSRPT_STS_POLICY_FETCH_ERROR, "out of memory");
	}
}

static void txt_cb(void *arg, enum dns_status st, const struct dns_txt_set *set)
{
	struct entry *e = arg;

	e->txq = NULL;
	e->txt_done = 1;
	if (st == DNS_TEMPFAIL)
		e->txt = MTASTS_LOOKUP_TEMPFAIL;
	else if (st != DNS_OK)
		e->txt = MTASTS_LOOKUP_NONE;
	else if (mtasts_txt_select(set, e->id) == MTASTS_TXT_FOUND)
		e->txt = MTASTS_LOOKUP_FOUND;
	else
		e->txt = MTASTS_LOOKUP_NONE;
	plan(e);
}

static void get_cb(void *arg, const struct qw_rep *rep)
{
	struct entry *e = arg;

	e->ticket = 0;
	e->cache_done = 1;
	if (rep != NULL && rep->rc == QUEUE_OK && (e->cached = malloc(sizeof *e->cached)) != NULL &&
	    sts_decode(rep->data, rep->len, e->cached) != QUEUE_OK) {
		free(e->cached);
		e->cached = NULL;
	}
	plan(e);
}

static void lookup_start(struct entry *e)
{
	char name[DNS_NAME_MAX + 16];

	e->busy = 1;
	e->txt_done = e->cache_done = 0;
	e->id[0] = '\0';
	snprintf(name, sizeof name, "_mta-sts.%s", e->domain);
	if ((e->txq = dns_lookup_txt(e->s->dns, name, txt_cb, e)) == NULL) {
		e->txt_done = 1;              /* (too long a name: nothing published there) */
		e->txt = MTASTS_LOOKUP_NONE;
	}
	e->ticket = qc_sts_get(e->s->q, e->domain, get_cb, e);
}

/* ---- entries ---- */

static void entry_free(struct entry *e)
{
	while (e->waits != NULL) {
		struct sts_policy_wait *w = e->waits;
		e->waits = w->next;
		free(w);
	}
	ev_timer_stop(e->s->loop, &e->notify);
	dns_cancel(e->txq);
	if (e->ticket != 0)
		qc_cancel(e->s->q, e->ticket);
	if (e->put_ticket != 0)
		qc_cancel(e->s->q, e->put_ticket);
	sts_fetch_free(e->fetch);
	free(e->cached);
	free(e);
}

/* Room for one more entry: the oldest idle one goes.  0, or -1. */
static int make_room(struct sts_policy *s)
{
	struct entry **old = NULL;

	if (s->n < STS_MEMO_MAX)
		return 0;
	for (struct entry **p = &s->entries; *p != NULL; p = &(*p)->next)
		if (!(*p)->busy && (*p)->waits == NULL && (*p)->put_ticket == 0 &&
		    (old == NULL || (*p)->ready_at < (*old)->ready_at))
			old = p;
	if (old == NULL)
		return -1;
	{
		struct entry *e = *old;
		*old = e->next;
		entry_free(e);
		s->n--;
	}
	return 0;
}

static struct entry *entry_get(struct sts_policy *s, const char *domain)
{
	struct entry *e;
	size_t n = strlen(domain);

	for (e = s->entries; e != NULL; e = e->next)
		if (strcmp(e->domain, domain) == 0)
			return e;
	if (n == 0 || n > DNS_NAME_MAX || !dns_name_ok(domain, n) || make_room(s) != 0 ||
	    (e = calloc(1, sizeof *e)) == NULL)
		return NULL;
	e->s = s;
	memcpy(e->domain, domain, n + 1);
	e->notify.cb = notify_cb;
	e->notify.arg = e;
	e->next = s->entries;
	s->entries = e;
	s->n++;
	return e;
}

struct sts_policy_wait *sts_policy_lookup(struct sts_policy *s, const char *domain,
                                          sts_policy_cb *cb, void *arg)
{
	struct entry *e = entry_get(s, domain);
	struct sts_policy_wait *w;

	if (e == NULL || (w = calloc(1, sizeof *w)) == NULL)
		return NULL;
	w->e = e;
	w->cb = cb;
	w->arg = arg;
	w->next = e->waits;
	e->waits = w;
	if (e->busy)
		return w;
	if (e->ready_at != 0 && ev_monotonic_ms() - e->ready_at < STS_MEMO_MS)
		ev_timer_start(s->loop, &e->notify, 0);
	else
		lookup_start(e);
	return w;
}

void sts_policy_cancel(struct sts_policy_wait *w)
{
	struct sts_policy_wait **p;

	if (w == NULL)
		return;
	for (p = &w->e->waits; *p != NULL; p = &(*p)->next) {
		if (*p == w) {
			*p = w->next;
			break;
		}
	}
	free(w);
}

struct sts_policy *sts_policy_new(struct ev_loop *l, struct dns_resolver *dns, struct qc *q,
                                  const struct tls_anchors *anchors, unsigned connect_s,
                                  sts_policy_fail_fn *fail, void *fail_arg)
{
	struct sts_policy *s = calloc(1, sizeof *s);

	if (s == NULL)
		return NULL;
	s->loop = l;
	s->dns = dns;
	s->q = q;
	s->anchors = anchors;
	s->connect_s = connect_s;
	s->fail = fail;
	s->fail_arg = fail_arg;
	return s;
}

void sts_policy_free(struct sts_policy *s)
{
	if (s == NULL)
		return;
	while (s->entries != NULL) {
		struct entry *e = s->entries;
		s->entries = e->next;
		entry_free(e);
	}
	free(s);
}
