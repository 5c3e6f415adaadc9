/* mta/smtp/verify.c -- recipient verification; see verify.h */
#include "mta/smtp/verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mta/net/log.h"
#include "mta/net/resolver.h"
#include "mta/smtp/delivery_attempt.h"
#include "policy/route.h"
#include "queue/queue.h"

#define VERIFY_MAX    4096    /* cached answers kept */
#define PROBES_MAX    64      /* probes in flight: past it, 451 at once */

struct verifier {
	struct ev_loop           *loop;
	const struct conf        *conf;
	struct dns_resolver      *dns;
	const struct tls_anchors *anchors;   /* the config's (tls-ca-file), or NULL */
	struct verify            *verifies;  /* waiters, probes and cached answers */
	unsigned                  nverifies;
	unsigned                  nprobes;   /* probes in flight */
};

struct verify {
	struct verifier *d;
	struct verify  *next;                 /* d->verifies */
	struct verify  *owner;                /* a waiter: the probe it joined */
	char            addr[QUEUE_ADDR_MAX + 1];
	int             state;                /* 0 probing, 1 answered (cached) */
	enum verify_verdict verdict;
	int64_t         expires;              /* monotonic ms */
	verify_cb      *cb;
	void           *arg;                  /* a waiter's asker */
	struct client  *cl;                   /* a probe's transaction */
	struct ev_timer timer;                /* probe: the deadline; waiter: the answer */
	const char     *rcpt1[1];
	struct smtpc_result res[1];
	unsigned        nwaiting;
};

static void verify_unlink(struct verifier *d, struct verify *v)
{
	struct verify **p;

	for (p = &d->verifies; *p; p = &(*p)->next) {
		if (*p == v) {
			*p = v->next;
			d->nverifies--;
			return;
		}
	}
}

static void verify_free(struct verify *v)
{
	if (v->cb == NULL && v->state == 0)
		v->d->nprobes--;
	ev_timer_stop(v->d->loop, &v->timer);
	client_free(v->cl);
	free(v);
}

/* A waiter's answer, from its zero timer. */
static void waiter_cb(struct ev_loop *l, struct ev_timer *t)
{
	struct verify *w = t->arg;
	struct verifier *d = w->d;

	(void)l;
	verify_unlink(d, w);
	w->cb(w->arg, w->verdict);
	verify_free(w);
}

/* The probe for v ended with verdict: cache it (unless temporary) and
 * answer everyone who waits for it. */
static void probe_answer(struct verify *v, enum verify_verdict verdict)
{
	struct verifier *d = v->d;
	char to[QUEUE_ADDR_MAX * 4 + 8], why[SMTPC_TEXT_MAX * 4 + 8];

	client_free(v->cl);
	v->cl = NULL;
	ev_timer_stop(d->loop, &v->timer);
	log_quote(v->addr, strlen(v->addr), to, sizeof to);
	log_quoted(v->res[0].text, strlen(v->res[0].text), why, sizeof why);
	log_event("verify", "to=<%s> result=%s reply=%s", to,
	          verdict == VERIFY_OK ? "ok" : verdict == VERIFY_REJECT ? "reject" : "temp", why);
	for (struct verify *w = d->verifies; w; w = w->next) {
		if (w->owner != v)
			continue;
		w->owner = NULL;
		w->verdict = verdict;
		ev_timer_start(d->loop, &w->timer, 0);
	}
	v->nwaiting = 0;
	if (verdict == VERIFY_TEMP || d->conf->verify_cache == 0) {
		verify_unlink(d, v);
		verify_free(v);
		return;
	}
	d->nprobes--;
	v->state = 1;
	v->verdict = verdict;
	v->expires = d->loop->now + (int64_t)d->conf->verify_cache * 1000;
}

static void probe_done(void *arg, const char *remote)
{
	struct verify *v = arg;
	uint8_t st = v->res[0].status;

	(void)remote;
	probe_answer(v, st == SMTPC_R_OK ? VERIFY_OK : st == SMTPC_R_PERM ? VERIFY_REJECT : VERIFY_TEMP);
}

static void probe_deadline(struct ev_loop *l, struct ev_timer *t)
{
	struct verify *v = t->arg;

	(void)l;
	snprintf(v->res[0].text, sizeof v->res[0].text, "no answer in time");
	probe_answer(v, VERIFY_TEMP);
}

/* Drop expired answers, and the oldest if there are too many. */
static void verify_prune(struct verifier *d)
{
	struct verify **p = &d->verifies;

	while (*p) {
		struct verify *v = *p;
		if (v->state == 1 && (v->expires <= d->loop->now || d->nverifies > VERIFY_MAX)) {
			*p = v->next;
			d->nverifies--;
			verify_free(v);
			continue;
		}
		p = &v->next;
	}
}

/* A new probe for rcpt, which waiter w joins; w hears TEMP at once when
 * the probe cannot start (too many in flight, no memory). */
static void start_probe(struct verifier *d, const char *rcpt, struct verify *w)
{
	struct client_req req;
	struct verify *probe;

	/* A client sending RCPT after RCPT must not make us open connection
	 * after connection to the internal server. */
	if (d->nprobes >= PROBES_MAX || (probe = calloc(1, sizeof *probe)) == NULL) {
		w->verdict = VERIFY_TEMP;
		ev_timer_start(d->loop, &w->timer, 0);
		return;
	}
	probe->d = d;
	d->nprobes++;
	snprintf(probe->addr, sizeof probe->addr, "%s", rcpt);
	probe->rcpt1[0] = probe->addr;
	probe->timer.cb = probe_deadline;
	probe->timer.arg = probe;
	probe->next = d->verifies;
	d->verifies = probe;
	d->nverifies++;
	memset(&req, 0, sizeof req);
	req.conf = d->conf;
	req.dns = d->dns;
	req.anchors = d->anchors;
	route_select(d->conf, rcpt, &req.route);
	req.sender = "";
	req.rcpts = probe->rcpt1;
	req.nrcpts = 1;
	req.res = probe->res;
	req.probe = 1;
	req.done = probe_done;
	req.arg = probe;
	w->owner = probe;
	probe->nwaiting = 1;
	ev_timer_start(d->loop, &probe->timer, (int64_t)d->conf->timeout_verify * 1000);
	probe->cl = client_start(d->loop, &req);
	if (probe->cl == NULL) {
		snprintf(probe->res[0].text, sizeof probe->res[0].text, "out of memory");
		ev_timer_start(d->loop, &probe->timer, 0);   /* answers TEMP */
	}
}

struct verify *verify_ask(struct verifier *d, const char *rcpt, verify_cb *cb, void *arg)
{
	struct verify *w, *probe = NULL;

	verify_prune(d);
	for (struct verify *v = d->verifies; v; v = v->next)
		if (v->cb == NULL && strcmp(v->addr, rcpt) == 0)
			probe = v;
	if ((w = calloc(1, sizeof *w)) == NULL)
		return NULL;
	w->d = d;
	w->cb = cb;
	w->arg = arg;
	w->timer.cb = waiter_cb;
	w->timer.arg = w;
	snprintf(w->addr, sizeof w->addr, "%s", rcpt);
	w->next = d->verifies;
	d->verifies = w;
	d->nverifies++;
	if (probe != NULL && probe->state == 1) {
		w->verdict = probe->verdict;          /* cached */
		ev_timer_start(d->loop, &w->timer, 0);
		return w;
	}
	if (probe == NULL) {
		start_probe(d, rcpt, w);
		return w;
	}
	w->owner = probe;
	probe->nwaiting++;
	return w;
}

void verify_cancel(struct verify *w)
{
	if (w == NULL)
		return;
	if (w->owner != NULL)
		w->owner->nwaiting--;   /* the probe goes on: its answer is cached */
	verify_unlink(w->d, w);
	verify_free(w);
}

struct verifier *verifier_new(struct ev_loop *l, const struct conf *c,
                              const struct tls_anchors *anchors, char *err, size_t errcap)
{
	struct verifier *d = calloc(1, sizeof *d);

	if (d == NULL) {
		snprintf(err, errcap, "recipient verification: out of memory");
		return NULL;
	}
	d->loop = l;
	d->conf = c;
	d->anchors = anchors;
	if ((d->dns = dns_resolver_new(l, c, err, errcap)) == NULL) {
		free(d);
		return NULL;
	}
	return d;
}

void verifier_free(struct verifier *d)
{
	if (d == NULL)
		return;
	while (d->verifies) {
		struct verify *v = d->verifies;

		d->verifies = v->next;
		verify_free(v);
	}
	dns_resolver_free(d->dns);
	free(d);
}
