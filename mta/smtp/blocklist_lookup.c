/* mta/smtp/blocklist_lookup.c -- a client's DNS blocklist lookups; see dnsbl.h */
#include "mta/smtp/blocklist_lookup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mta/net/resolver.h"
#include "mta/net/log.h"
#include "policy/dnsbl.h"

/* (zone, client) answers remembered: 8192 x 32 bytes. */
#define CACHE_SLOTS 8192

struct dnsbl {
	struct ev_loop          *loop;
	const struct conf       *conf;
	struct edge_counters    *ec;
	struct dns_resolver     *dns;
	struct dnsbl_cache       cache;
	struct dnsbl_cache_slot *slots;
};

/* One zone's query: its check and its index, as the resolver's argument. */
struct zone_query {
	struct dnsbl_check *k;
	unsigned            zone;
	struct dns_query   *q;      /* NULL once answered or cancelled */
};

struct dnsbl_check {
	struct dnsbl     *b;
	struct ipaddr     addr;
	char              addr_text[IP_TEXT_MAX];
	dnsbl_cb         *cb;
	void             *arg;
	struct ev_timer   timer;    /* dnsbl-timeout, or 0 ms when all was cached */
	uint32_t          pending;  /* bit k: zone k not answered yet */
	uint32_t          listed;
	uint32_t          unanswered; /* bit k: zone k failed, or was too late */
	struct zone_query zq[CONF_MAX_DNSBL];
};

struct dnsbl *dnsbl_new(struct ev_loop *l, const struct conf *c, struct edge_counters *ec,
                        char *err, size_t errcap)
{
	struct dnsbl *b = calloc(1, sizeof *b);

	if (b == NULL || (b->slots = calloc(CACHE_SLOTS, sizeof *b->slots)) == NULL) {
		free(b);
		snprintf(err, errcap, "dnsbl: out of memory");
		return NULL;
	}
	b->loop = l;
	b->conf = c;
	b->ec = ec;
	dnsbl_cache_init(&b->cache, b->slots, CACHE_SLOTS);
	b->dns = dns_resolver_new(l, c, err, errcap);
	if (b->dns == NULL) {
		free(b->slots);
		free(b);
		return NULL;
	}
	return b;
}

void dnsbl_free(struct dnsbl *b)
{
	if (b == NULL)
		return;
	dns_resolver_free(b->dns);
	free(b->slots);
	free(b);
}

static void cancel_queries(struct dnsbl_check *k)
{
	for (unsigned z = 0; z < CONF_MAX_DNSBL; z++) {
		if (k->zq[z].q != NULL) {
			dns_cancel(k->zq[z].q);
			k->zq[z].q = NULL;
		}
	}
}

void dnsbl_check_cancel(struct dnsbl_check *k)
{
	if (k == NULL)
		return;
	cancel_queries(k);
	ev_timer_stop(k->b->loop, &k->timer);
	free(k);
}

/* The zones in mask, by name, for the log. */
static void zone_list(const struct conf *c, uint32_t mask, char *buf, size_t cap)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t z = 0; z < c->ndnsbl && len < cap; z++) {
		if (!(mask & (UINT32_C(1) << z)))
			continue;
		int n = snprintf(buf + len, cap - len, "%s%s", len ? "," : "", c->dnsbl[z].zone);
		if (n < 0)
			break;
		len += (size_t)n;
	}
}

/* Every zone answered, or the time is up: the verdict, then free. */
static void finish(struct dnsbl_check *k)
{
	struct dnsbl *b = k->b;
	const struct conf *c = b->conf;
	struct dnsbl_verdict v;
	char zones[512], late[512];
	enum edge_reason why;
	int allowlisted = 0;   /* an allowlist (negative weight) lists the client */

	cancel_queries(k);
	ev_timer_stop(b->loop, &k->timer);
	memset(&v, 0, sizeof v);
	v.listed = k->listed;
	for (unsigned z = 0; z < CONF_MAX_DNSBL; z++)
		v.unanswered += (k->unanswered >> z) & 1;
	v.score = dnsbl_score(c, k->listed);
	/* refused only if no allowlist that did not answer could have saved it */
	v.refused = dnsbl_refused(c, dnsbl_score_sure(c, k->listed, k->unanswered));
	if (v.refused)
		dnsbl_names(c, k->listed, v.names, sizeof v.names);
	/* one line for a verdict that matters: refused, on an allowlist, or
	 * short of answers (the reason is the first of these that holds) */
	for (size_t z = 0; z < c->ndnsbl; z++)
		if ((k->listed & (UINT32_C(1) << z)) && c->dnsbl[z].weight < 0)
			allowlisted = 1;
	why = v.refused ? EDGE_DNSBL_LISTED : allowlisted ? EDGE_DNSBL_ALLOWED
	    : v.unanswered ? EDGE_DNSBL_TIMEOUT : EDGE_NREASONS;
	if (v.refused)
		edge_count(b->ec, EDGE_DNSBL_LISTED);
	if (allowlisted)
		edge_count(b->ec, EDGE_DNSBL_ALLOWED);
	if (why != EDGE_NREASONS) {
		zone_list(c, k->listed, zones, sizeof zones);
		zone_list(c, k->unanswered, late, sizeof late);
		log_event("dnsbl", "addr=%s reason=%s score=%d listed=%s unanswered=%u%s%s",
		          k->addr_text, edge_reason_name(why), v.score, zones[0] ? zones : "-",
		          v.unanswered, late[0] ? " unanswered_zones=" : "", late);
	}
	k->cb(k->arg, &v);
	free(k);
}

static void timer_cb(struct ev_loop *l, struct ev_timer *t)
{
	struct dnsbl_check *k = t->arg;

	(void)l;
	/* zones still pending did not answer in time */
	for (unsigned z = 0; z < CONF_MAX_DNSBL; z++)
		if (k->pending & (UINT32_C(1) << z))
			edge_count(k->b->ec, EDGE_DNSBL_TIMEOUT);
	k->unanswered |= k->pending;
	finish(k);
}

static void answer_cb(void *arg, enum dns_status st, const struct dns_answer *a)
{
	struct zone_query *zq = arg;
	struct dnsbl_check *k = zq->k;
	struct dnsbl *b = k->b;
	const struct conf_dnsbl *zone = &b->conf->dnsbl[zq->zone];
	int listed = 0;

	zq->q = NULL;
	k->pending &= ~(UINT32_C(1) << zq->zone);
	switch (st) {
	case DNS_OK:
		for (size_t i = 0; i < a->naddr; i++)
			listed |= dnsbl_answer_counts(zone, &a->addr[i]);
		/* the TTL of what was found; an answer of no use counts as "no" */
		dnsbl_cache_put(&b->cache, zq->zone, &k->addr, listed, b->loop->now,
		                listed ? a->ttl : b->conf->dnsbl_negative_ttl);
		break;
	case DNS_NXDOMAIN:
	case DNS_NODATA:
		dnsbl_cache_put(&b->cache, zq->zone, &k->addr, 0, b->loop->now,
		                b->conf->dnsbl_negative_ttl);
		break;
	default:
		/* a failure is not cached: the next client asks again */
		k->unanswered |= UINT32_C(1) << zq->zone;
		edge_count(b->ec, EDGE_DNSBL_TIMEOUT);
		break;
	}
	if (listed)
		k->listed |= UINT32_C(1) << zq->zone;
	if (k->pending == 0)
		finish(k);
}

struct dnsbl_check *dnsbl_check(struct dnsbl *b, const struct ipaddr *client,
                                const char *addr_text, dnsbl_cb *cb, void *arg)
{
	const struct conf *c = b->conf;
	struct dnsbl_check *k = calloc(1, sizeof *k);
	char name[DNSBL_NAME_MAX];

	if (k == NULL)
		return NULL;
	k->b = b;
	k->addr = *client;
	snprintf(k->addr_text, sizeof k->addr_text, "%s", addr_text);
	k->cb = cb;
	k->arg = arg;
	k->timer.cb = timer_cb;
	k->timer.arg = k;
	for (unsigned z = 0; z < c->ndnsbl && z < CONF_MAX_DNSBL; z++) {
		int cached = dnsbl_cache_get(&b->cache, z, client, b->loop->now);

		k->zq[z].k = k;
		k->zq[z].zone = z;
		if (cached >= 0) {
			edge_count(b->ec, EDGE_DNSBL_CACHED);
			if (cached)
				k->listed |= UINT32_C(1) << z;
			continue;
		}
		k->pending |= UINT32_C(1) << z;
		if (dnsbl_query_name(client, c->dnsbl[z].zone, name, sizeof name) > 0)
			k->zq[z].q = dns_lookup(b->dns, name, DNS_T_A, answer_cb, &k->zq[z]);
		if (k->zq[z].q == NULL) {
			/* no query could be sent: as good as no answer */
			k->pending &= ~(UINT32_C(1) << z);
			k->unanswered |= UINT32_C(1) << z;
			edge_count(b->ec, EDGE_DNSBL_TIMEOUT);
			continue;
		}
		edge_count(b->ec, EDGE_DNSBL_QUERY);
	}
	/* all cached (or unaskable): the verdict comes at once, from the loop */
	ev_timer_start(b->loop, &k->timer, k->pending ? (int64_t)c->dnsbl_timeout * 1000 : 0);
	return k;
}
