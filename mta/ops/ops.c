/* mta/ops/ops.c -- metrics, health and status of the running server; see ops.h */
#include "mta/ops/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "mta/net/log.h"
#include "policy/quota.h"

/* The roles' counters: one struct metrics per slot in memory shared by
 * every process of the server (made by the supervisor before it forks),
 * each slot written by one process only; a scrape sums them. */
static struct metrics *shared;

int ops_shared_init(void)
{
	void *p = mmap(NULL, OPS_SLOTS * sizeof *shared, PROT_READ | PROT_WRITE,
	               MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return -1;
	shared = p;
	for (unsigned i = 0; i < OPS_SLOTS; i++)
		metrics_init(&shared[i]);
	return 0;
}

static void slot_tap(void *arg, const char *event, const char *kv, size_t len)
{
	metrics_observe(arg, event, kv, len);
}

void ops_count_slot(unsigned slot)
{
	if (shared != NULL && slot < OPS_SLOTS)
		log_set_tap(slot_tap, &shared[slot]);
}

static void ops_tap(void *arg, const char *event, const char *kv, size_t len)
{
	struct ops *o = arg;

	metrics_observe(&o->metrics, event, kv, len);
}

/* The counters to show: this process's, or every slot's summed. */
static const struct metrics *counters(struct ops *o)
{
	if (shared == NULL)
		return &o->metrics;
	memset(&o->metrics, 0, sizeof o->metrics);
	for (unsigned i = 0; i < OPS_SLOTS; i++)
		metrics_add(&o->metrics, &shared[i]);
	return &o->metrics;
}

void ops_init(struct ops *o, struct ev_loop *l, ops_view_fn *view, void *arg)
{
	memset(o, 0, sizeof *o);
	metrics_init(&o->metrics);
	o->loop = l;
	o->view = view;
	o->view_arg = arg;
	o->start_wall = (int64_t)time(NULL);
	o->start_mono = l->now;
	o->commit_err = QUEUE_OK;
	if (shared == NULL)
		log_set_tap(ops_tap, o);
}

void ops_free(struct ops *o)
{
	log_set_tap(NULL, NULL);
	httpd_free(o->httpd);
	httpd_free(o->retired);
	o->httpd = o->retired = NULL;
}

void ops_commit(struct ops *o, int err)
{
	/* A full disk or map fails that message, not the queue. */
	if (err == QUEUE_OK || err == QUEUE_EFULL) {
		o->commit_ok_at = o->loop->now;
		o->commit_err = QUEUE_OK;
		o->fail_at = 0;
	} else {
		o->fail_err = err;
		o->fail_at = o->loop->now;
	}
}

/* The queue's totals and room, as the quotas see them. */
static int read_usage(struct rq *q, struct quota_usage *u)
{
	struct queue_usage qu;
	struct queue_space sp;
	int rc;

	if ((rc = rq_usage(q, NULL, &qu, &sp)) != QUEUE_OK)
		return rc;
	memset(u, 0, sizeof *u);
	u->messages = qu.messages;
	u->bytes = qu.bytes;
	u->disk_free = sp.fs_avail > UINT64_MAX - sp.file_free ? UINT64_MAX
	                                                       : sp.fs_avail + sp.file_free;
	u->disk_total = sp.fs_total;
	u->map_free = sp.map_free;
	return QUEUE_OK;
}

int ops_health(struct ops *o, char *why, size_t cap)
{
	struct ops_view v;
	struct quota_usage u;
	enum quota_verdict qv;
	int64_t now = o->loop->now;
	int rc;

	o->view(o->view_arg, &v);
	if (v.stopping) {
		snprintf(why, cap, "stopping");
		return 0;
	}
	/* Can the queue commit?  Not if a message failed to lately; yes if
	 * one (or a probe) was committed lately; else a probe transaction
	 * decides, at most once per OPS_PROBE_MS. */
	if (o->fail_at != 0 && now - o->fail_at < OPS_FAIL_MS) {
		snprintf(why, cap, "queue cannot commit: %s (a message, %llds ago)",
		         queue_strerror(o->fail_err), (long long)((now - o->fail_at) / 1000));
		return 0;
	}
	if (o->commit_err != QUEUE_OK || o->commit_ok_at == 0 ||
	    now - o->commit_ok_at >= OPS_PROBE_MS) {
		if (o->probe_at == 0 || now - o->probe_at >= OPS_PROBE_MS) {
			o->probe_at = now;
			rc = rq_probe(v.q, (int64_t)time(NULL));
			if (rc == QUEUE_OK) {
				o->commit_ok_at = now;
				o->commit_err = QUEUE_OK;
			} else {
				o->commit_err = rc;
			}
		}
		if (o->commit_err != QUEUE_OK) {
			snprintf(why, cap, "queue cannot commit: %s", queue_strerror(o->commit_err));
			return 0;
		}
	}
	/* Would it take one more (empty) message? */
	if ((rc = read_usage(v.q, &u)) != QUEUE_OK) {
		snprintf(why, cap, "queue unreadable: %s", queue_strerror(rc));
		return 0;
	}
	qv = quota_check(v.conf, &u, 0);
	if (qv != QUOTA_OK) {
		snprintf(why, cap, "queue over quota: %s", quota_name(qv));
		return 0;
	}
	snprintf(why, cap, "ok");
	return 1;
}

/* The gauges, read now. */
static void gauges(struct ops *o, const struct ops_view *v, int healthy, struct metrics_gauges *g)
{
	struct queue_usage qu;
	struct queue_space sp;
	queue_id oldest;
	int64_t now = (int64_t)time(NULL);

	memset(g, 0, sizeof *g);
	g->sessions = v->sessions;
	g->healthy = healthy;
	g->start_time = o->start_wall;
	g->config_generation = v->generation;
	g->edge = v->edge;
	g->queue_max_bytes = v->conf->queue_max_bytes;
	g->queue_max_messages = v->conf->queue_max_messages;
	if (rq_usage(v->q, NULL, &qu, &sp) != QUEUE_OK)
		return;
	g->queue_read = 1;
	g->queue_messages = qu.messages;
	g->queue_bytes = qu.bytes;
	g->disk_free = sp.fs_avail > UINT64_MAX - sp.file_free ? UINT64_MAX : sp.fs_avail + sp.file_free;
	g->disk_keep = sp.fs_total / 100 * v->conf->queue_min_free_percent;
	if (g->disk_keep < v->conf->queue_min_free)
		g->disk_keep = v->conf->queue_min_free;
	/* IDs are microseconds since the epoch when the message began. */
	if (rq_oldest(v->q, &oldest) == QUEUE_OK && (int64_t)(oldest / 1000000) < now)
		g->oldest_age = (uint64_t)(now - (int64_t)(oldest / 1000000));
}

static uint64_t family_get(const struct metrics_family *f, const char *value)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->value[i], value) == 0)
			return f->count[i];
	return 0;
}

size_t ops_status(struct ops *o, char *buf, size_t cap)
{
	struct ops_view v;
	struct metrics_gauges g;
	char why[200];
	int healthy = ops_health(o, why, sizeof why);
	const struct metrics *m = counters(o);
	uint64_t rejected = m->rejections.other;
	int n;

	for (size_t i = 0; i < m->rejections.n; i++)
		rejected += m->rejections.count[i];
	o->view(o->view_arg, &v);
	gauges(o, &v, healthy, &g);
	n = snprintf(buf, cap,
	             "health %s\n"
	             "uptime %lld\n"
	             "sessions %u\n"
	             "config-generation %u\n"
	             "queue-messages %llu of %u\n"
	             "queue-bytes %llu of %llu\n"
	             "queue-oldest-age %llu\n"
	             "disk-free %llu, keeping %llu\n"
	             "accepted %llu\n"
	             "rejected %llu\n"
	             "deliveries-ok %llu\n"
	             "deliveries-deferred %llu\n"
	             "deliveries-bounced %llu",
	             why, (long long)((o->loop->now - o->start_mono) / 1000), v.sessions, v.generation,
	             (unsigned long long)g.queue_messages, v.conf->queue_max_messages,
	             (unsigned long long)g.queue_bytes, (unsigned long long)v.conf->queue_max_bytes,
	             (unsigned long long)g.oldest_age, (unsigned long long)g.disk_free,
	             (unsigned long long)g.disk_keep, (unsigned long long)m->accepted,
	             (unsigned long long)rejected,
	             (unsigned long long)family_get(&m->deliveries, "sent"),
	             (unsigned long long)family_get(&m->deliveries, "deferred"),
	             (unsigned long long)(family_get(&m->deliveries, "bounced") +
	                                  family_get(&m->deliveries, "expired")));
	return n > 0 ? (size_t)n : 0;
}

/* GET /metrics and GET /health. */
static void http_handler(void *arg, const struct http_req *req, struct httpd_reply *rep)
{
	struct ops *o = arg;
	struct ops_view v;
	struct metrics_gauges g;
	char why[200];
	int healthy;

	if (req->pathlen == 7 && memcmp(req->path, "/health", 7) == 0) {
		healthy = ops_health(o, why, sizeof why);
		rep->status = healthy ? 200 : 503;
		rep->body = malloc(strlen(why) + 2);
		if (rep->body != NULL)
			rep->len = (size_t)sprintf(rep->body, "%s\n", why);
		return;
	}
	if (req->pathlen == 8 && memcmp(req->path, "/metrics", 8) == 0) {
		unsigned flags = req->openmetrics ? METRICS_OPENMETRICS : 0;
		size_t need;

		healthy = ops_health(o, why, sizeof why);
		o->view(o->view_arg, &v);
		gauges(o, &v, healthy, &g);
		need = metrics_format(counters(o), &g, flags, NULL, 0);
		rep->body = malloc(need + 1);
		if (rep->body == NULL) {
			rep->status = 500;
			return;
		}
		rep->len = metrics_format(&o->metrics, &g, flags, rep->body, need + 1);
		rep->content_type = metrics_content_type(flags);
		return;
	}
	rep->status = 404;
}

int ops_listen_prepare(struct ops *o, const struct conf *c, struct httpd **fresh, char *err,
                       size_t errcap)
{
	*fresh = NULL;
	if (c->metrics.port == 0 || httpd_is_at(o->httpd, &c->metrics))
		return 0;
	*fresh = httpd_new(o->loop, &c->metrics, http_handler, o, err, errcap);
	return *fresh != NULL ? 0 : -1;
}

void ops_listen_apply(struct ops *o, const struct conf *c, struct httpd *fresh)
{
	if (fresh != NULL || c->metrics.port == 0) {
		httpd_free(o->retired); /* a second reload in one batch */
		o->retired = o->httpd;
		httpd_stop(o->retired);
		o->httpd = fresh;
	}
}

void ops_listen_close(struct ops *o)
{
	httpd_free(o->retired);
	o->retired = o->httpd;
	httpd_stop(o->retired);
	o->httpd = NULL;
}

void ops_tick(struct ops *o)
{
	httpd_free(o->retired);
	o->retired = NULL;
}
