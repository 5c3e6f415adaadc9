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

static void wait_timer_cb(struct ev_loop *l, struct ev_timer *t);

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
	o->wait_timer.cb = wait_timer_cb;
	o->wait_timer.arg = o;
	if (shared == NULL)
		log_set_tap(ops_tap, o);
}

void ops_free(struct ops *o)
{
	struct ops_view v;

	o->view(o->view_arg, &v);
	if (v.q != NULL) {
		qc_cancel(v.q, o->t_usage);
		qc_cancel(v.q, o->t_oldest);
		qc_cancel(v.q, o->t_probe);
	}
	ev_timer_stop(o->loop, &o->wait_timer);
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

/* ---- the queue as last heard ---- */

/* Every question answered, or OPS_ANSWER_MS passed: the waiting scrapes
 * and status commands are answered with what is known. */
static void release(struct ops *o)
{
	ev_timer_stop(o->loop, &o->wait_timer);
	while (o->waiters != NULL) {
		struct ops_wait *w = o->waiters;

		ops_wait_leave(w);
		w->go(w);
	}
}

static void asked(struct ops *o)
{
	if (o->t_usage == 0 && o->t_oldest == 0 && o->t_probe == 0)
		release(o);
}

static void wait_timer_cb(struct ev_loop *l, struct ev_timer *t)
{
	(void)l;
	release(t->arg);
}

static void usage_cb(void *arg, const struct qw_rep *rep)
{
	struct ops *o = arg;

	o->t_usage = 0;
	o->usage_rc = rep != NULL ? rep->rc : QUEUE_EIO;
	if (o->usage_rc == QUEUE_OK) {
		o->qu = rep->usage;
		o->sp = rep->space;
		o->usage_known = 1;
	}
	asked(o);
}

static void oldest_cb(void *arg, const struct qw_rep *rep)
{
	struct ops *o = arg;

	o->t_oldest = 0;
	o->oldest_rc = rep != NULL ? rep->rc : QUEUE_EIO;
	o->oldest = o->oldest_rc == QUEUE_OK ? rep->id : 0;
	asked(o);
}

static void probe_cb(void *arg, const struct qw_rep *rep)
{
	struct ops *o = arg;
	int rc = rep != NULL ? rep->rc : QUEUE_EIO;

	o->t_probe = 0;
	if (rc == QUEUE_OK)
		o->commit_ok_at = o->loop->now;
	o->commit_err = rc;
	asked(o);
}

int ops_gate(void *arg, struct ops_wait *w)
{
	struct ops *o = arg;
	struct ops_view v;
	int64_t now = o->loop->now;

	o->view(o->view_arg, &v);
	if (v.stopping || qc_broken(v.q) || qc_stalled(v.q))
		return 1;   /* nothing to wait for: answer with what is known */
	if (o->t_usage == 0)
		o->t_usage = qc_usage(v.q, NULL, usage_cb, o);
	if (o->t_oldest == 0)
		o->t_oldest = qc_oldest(v.q, oldest_cb, o);
	/* Can the queue commit?  Yes if a message (or a probe) was committed
	 * lately; else a probe transaction decides, at most once per
	 * OPS_PROBE_MS. */
	if ((o->commit_err != QUEUE_OK || o->commit_ok_at == 0 ||
	     now - o->commit_ok_at >= OPS_PROBE_MS) &&
	    (o->probe_at == 0 || now - o->probe_at >= OPS_PROBE_MS) && o->t_probe == 0) {
		o->probe_at = now;
		o->t_probe = qc_probe(v.q, (int64_t)time(NULL), probe_cb, o);
	}
	ops_wait_join(&o->waiters, w);
	if (o->wait_timer.slot == 0)
		ev_timer_start(o->loop, &o->wait_timer, OPS_ANSWER_MS);
	return 0;
}

/* The queue's totals and room, as the quotas see them. */
static int read_usage(const struct ops *o, struct quota_usage *u)
{
	if (!o->usage_known)
		return o->usage_rc != QUEUE_OK ? o->usage_rc : QUEUE_EIO;
	memset(u, 0, sizeof *u);
	u->messages = o->qu.messages;
	u->bytes = o->qu.bytes;
	u->disk_free = o->sp.fs_avail > UINT64_MAX - o->sp.file_free ? UINT64_MAX
	                                                             : o->sp.fs_avail + o->sp.file_free;
	u->disk_total = o->sp.fs_total;
	u->map_free = o->sp.map_free;
	return o->usage_rc;
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
	if (qc_stalled(v.q) || o->t_usage != 0 || o->t_probe != 0) {
		snprintf(why, cap, "queue does not answer");
		return 0;
	}
	/* Not if a message failed to commit lately; else what the last
	 * commit or probe said. */
	if (o->fail_at != 0 && now - o->fail_at < OPS_FAIL_MS) {
		snprintf(why, cap, "queue cannot commit: %s (a message, %llds ago)",
		         queue_strerror(o->fail_err), (long long)((now - o->fail_at) / 1000));
		return 0;
	}
	if (qc_broken(v.q) || o->commit_err != QUEUE_OK) {
		snprintf(why, cap, "queue cannot commit: %s",
		         queue_strerror(qc_broken(v.q) ? QUEUE_EIO : o->commit_err));
		return 0;
	}
	/* Would it take one more (empty) message? */
	if ((rc = read_usage(o, &u)) != QUEUE_OK) {
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

/* The gauges, as last heard from the queue role. */
static void gauges(struct ops *o, const struct ops_view *v, int healthy, struct metrics_gauges *g)
{
	int64_t now = (int64_t)time(NULL);

	memset(g, 0, sizeof *g);
	g->sessions = v->sessions;
	g->healthy = healthy;
	g->start_time = o->start_wall;
	g->config_generation = v->generation;
	g->edge = v->edge;
	g->queue_max_bytes = v->conf->queue_max_bytes;
	g->queue_max_messages = v->conf->queue_max_messages;
	if (!o->usage_known)
		return;
	g->queue_read = 1;
	g->queue_messages = o->qu.messages;
	g->queue_bytes = o->qu.bytes;
	g->disk_free = o->sp.fs_avail > UINT64_MAX - o->sp.file_free ? UINT64_MAX
	                                                             : o->sp.fs_avail + o->sp.file_free;
	g->disk_keep = o->sp.fs_total / 100 * v->conf->queue_min_free_percent;
	if (g->disk_keep < v->conf->queue_min_free)
		g->disk_keep = v->conf->queue_min_free;
	/* IDs are microseconds since the epoch when the message began. */
	if (o->oldest_rc == QUEUE_OK && o->oldest != 0 && (int64_t)(o->oldest / 1000000) < now)
		g->oldest_age = (uint64_t)(now - (int64_t)(o->oldest / 1000000));
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
	*fresh = httpd_new(o->loop, &c->metrics, http_handler, ops_gate, o, err, errcap);
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
