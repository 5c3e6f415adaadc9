/*
 * mta/ops/ops.h -- what an operator sees of the running server (docs/operations.md
 * "Metrics and health", "Status"): the counters (policy/metrics.h, fed
 * with every log event), the health verdict, the status text, and the
 * metrics endpoint (mta/ops/httpd.h) that serves them.
 *
 * The server owns one struct ops, tells it each commit's outcome, and
 * answers its view callback with what only the server knows (the queue,
 * the current config, the sessions) whenever ops needs it.  Everything
 * runs in the event loop.
 */
#ifndef MOAT_MTA_OPS_OPS_H
#define MOAT_MTA_OPS_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "mta/net/ev.h"
#include "mta/ops/httpd.h"
#include "policy/conf.h"
#include "policy/metrics.h"
#include "mta/net/queue_client.h"
#include "mta/ops/wait.h"
#include "queue/queue.h"

/* A commit or probe no older than this vouches for the queue; older, a
 * health check probes (queue_probe), at most this often. */
#define OPS_PROBE_MS 1000
/* A message's failed commit makes the health fail this long, unless a
 * message is committed since (a small probe may pass where mail fails). */
#define OPS_FAIL_MS 60000
/* A scrape or `moat status` waits at most this long for the queue role's
 * answers; then it is answered with what is known ("queue does not
 * answer"). */
#define OPS_ANSWER_MS 1000

struct ops_view {
	struct qc         *q;         /* the queue role */
	const struct conf *conf;        /* the configuration new sessions get */
	unsigned           sessions;
	unsigned           generation;  /* of that configuration */
	const struct edge_counters *edge; /* the server's edge decisions */
	int                stopping;
};
typedef void ops_view_fn(void *arg, struct ops_view *v);

struct ops {
	struct metrics  metrics;
	struct ev_loop *loop;
	struct httpd   *httpd;         /* NULL without metrics-listen */
	struct httpd   *retired;       /* replaced by a reload: freed after the batch */
	ops_view_fn    *view;
	void           *view_arg;
	int64_t         start_wall;    /* Unix seconds */
	int64_t         start_mono;    /* monotonic ms */
	int64_t         commit_ok_at;  /* monotonic ms of the last good commit or probe */
	int             commit_err;    /* the last probe's error, or QUEUE_OK */
	int             fail_err;      /* a message's failed commit ... */
	int64_t         fail_at;       /* ... at this monotonic ms; 0: none since a good one */
	int64_t         probe_at;      /* monotonic ms of the last probe; 0 none */
	/* The queue as last heard (the questions ops_gate() asks). */
	struct queue_usage qu;
	struct queue_space sp;
	int             usage_rc, usage_known;
	queue_id        oldest;
	int             oldest_rc;
	uint64_t        t_usage, t_oldest, t_probe;  /* asked, not yet answered */
	struct ops_wait *waiters;      /* scrapes and commands waiting for them */
	struct ev_timer wait_timer;    /* answer them anyway after OPS_ANSWER_MS */
};

/* Counters shared by the roles (mta/roles/roles.h): the supervisor calls
 * ops_shared_init() before forking (0 or -1); each process then counts
 * its own log events into its slot (ops_count_slot), and every scrape or
 * status shows all slots summed. */
#define OPS_SLOTS 8
int  ops_shared_init(void);
void ops_count_slot(unsigned slot);

/* Set up o and send every log event to its counters (log_set_tap). */
void ops_init(struct ops *o, struct ev_loop *l, ops_view_fn *view, void *arg);
/* Close the endpoint and stop counting. */
void ops_free(struct ops *o);

/*
 * The metrics endpoint for config c, in two steps so a reload can back
 * out: ops_listen_prepare() opens c's address when nothing listens there
 * yet (*fresh; NULL when nothing new is needed) and returns 0, or -1 with
 * err set; ops_listen_apply() then puts it in place (or closes the old
 * one when c has none).  A prepared endpoint not applied is httpd_free()d.
 * The old endpoint stops listening at once and is freed by ops_tick(), so
 * a reload may run inside a callback of the loop.
 */
int  ops_listen_prepare(struct ops *o, const struct conf *c, struct httpd **fresh, char *err,
                        size_t errcap);
void ops_listen_apply(struct ops *o, const struct conf *c, struct httpd *fresh);

/* Stop serving the endpoint (a drained smtp role); freed by ops_tick(). */
void ops_listen_close(struct ops *o);

/* After each batch of the loop: free what a reload retired. */
void ops_tick(struct ops *o);

/* One message's queue_commit() result (QUEUE_OK or its error). */
void ops_commit(struct ops *o, int err);

/*
 * The gate of the metrics endpoint and of `moat status` (mta/ops/wait.h):
 * asks the queue role for its usage, its oldest message and, when no
 * commit vouched for it lately, a probe, and lets w go once they are all
 * answered (or after OPS_ANSWER_MS).  Answers at once (1) while stopping
 * or while the queue role does not answer.  The loop never waits.
 */
int ops_gate(void *arg, struct ops_wait *w);

/* From what was last heard: 1 when healthy; 0 with the reason in why
 * ("stopping", "queue does not answer", "queue cannot commit: ...",
 * "queue over quota: NAME", "queue unreadable: ..."). */
int ops_health(struct ops *o, char *why, size_t cap);

/* `moat status`: "key value" lines into buf; returns the length needed. */
size_t ops_status(struct ops *o, char *buf, size_t cap);

#endif
