/*
 * policy/metrics.h -- the server's counters, and the text a scraper reads
 * (OpenMetrics 1.0, or the Prometheus text format 0.0.4).
 *
 * The counters count log events (mta/net/log.h): the server hands every
 * log_event() to metrics_observe(), which looks at the event's name and a
 * few of its keys.  So a counter is, by construction, the number of
 * matching lines the log has written since the server started, and docs/operations.md
 * ("Metrics and health") can say which lines each one counts.  Gauges
 * (sessions, queue size, ...) are read by the server at scrape time and
 * passed in.
 *
 * Pure: no I/O, no clock, no allocation.  Label values come from the
 * event text: only tokens of [a-z0-9._-], at most METRICS_LABEL_MAX bytes,
 * are kept, and at most METRICS_LABELS_MAX distinct ones per family; the
 * rest count under "other", so a family never grows without bound.
 */
#ifndef MOAT_POLICY_METRICS_H
#define MOAT_POLICY_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "edge.h"

#define METRICS_LABEL_MAX  32
#define METRICS_LABELS_MAX 48

/* A counter with one label (reason, status, ...). */
struct metrics_family {
	size_t   n;
	char     value[METRICS_LABELS_MAX][METRICS_LABEL_MAX + 1];
	uint64_t count[METRICS_LABELS_MAX];
	uint64_t other;            /* values that were not kept */
};

struct metrics {
	uint64_t connections;      /* event=connect */
	uint64_t accepted;         /* event=accept */
	uint64_t accepted_bytes;   /*   its size= */
	uint64_t accepted_rcpts;   /*   its nrcpt= */
	uint64_t relay_denied;     /* event=reject reason=relay-denied or relay-routing */
	uint64_t auth_ok;          /* event=auth */
	uint64_t auth_failures;    /* event=auth-fail */
	uint64_t auth_blocks;      /* event=auth-block */
	uint64_t tls_sessions;     /* event=tls */
	uint64_t tls_failures;     /* event=tls-fail */
	struct metrics_family rejections;  /* event=reject, by reason= */
	struct metrics_family quota;       /* event=reject reason=quota-NAME or queue-full */
	struct metrics_family deliveries;  /* event=delivery, by status= */
	struct metrics_family bounces;     /* event=bounce (a DSN queued), by kind= */
	struct metrics_family reloads;     /* event=reload, by status= */
	uint64_t dkim_signed;      /* event=accept with dkim=signed; event=dkim-dsn */
	struct metrics_family dkim_failures; /* event=dkim-fail, by kind= */
	struct metrics_family tls_policy;  /* event=delivery, by tls-policy= */
	struct metrics_family tls_policy_failures;  /* event=tls-policy-fail, by result= */
};

/* Values read at scrape time. */
struct metrics_gauges {
	uint64_t sessions;         /* open SMTP connections */
	int      queue_read;       /* 1 when the queue values below were read */
	uint64_t queue_messages;
	uint64_t queue_bytes;
	uint64_t oldest_age;       /* seconds since the oldest queued message arrived; 0 if none */
	uint64_t disk_free;        /* bytes the queue may still write (filesystem + reusable) */
	uint64_t disk_keep;        /* what queue-min-free and -percent keep free of them */
	uint64_t queue_max_bytes;  /* the quotas, so alerts can be ratios */
	uint64_t queue_max_messages;
	int      healthy;          /* what GET /health says: 1 or 0 */
	int64_t  start_time;       /* Unix seconds */
	uint64_t config_generation;
	const struct edge_counters *edge;  /* the edge defenses' decisions; NULL: none */
};

/* Zero every counter and list the label values known in advance (so a
 * rate over them starts at 0): deliveries sent, deferred, bounced,
 * expired; bounces failed, delayed; quota disk, map, messages, bytes,
 * client, queue-full; reloads ok, refused; dkim failures message, dsn;
 * TLS policies dane, mta-sts, mta-sts-testing, opportunistic, route;
 * policy failures by each RFC 8460 result type. */
void metrics_init(struct metrics *m);

/* Add src's counts to dst (labels matched by value; a label of src that
 * is not a valid one counts as other).  For counters kept per process
 * and shown summed. */
void metrics_add(struct metrics *dst, const struct metrics *src);

/* Count one event: name, and its "key=value ..." text kv[0..len). */
void metrics_observe(struct metrics *m, const char *event, const char *kv, size_t len);

/* The value of key in kv[0..len) ("key=value" at the start or after a
 * space, up to the next space): a pointer into kv and *vlen, or NULL. */
const char *metrics_kv(const char *kv, size_t len, const char *key, size_t *vlen);

#define METRICS_OPENMETRICS 0x1u  /* OpenMetrics 1.0 text, else Prometheus 0.0.4 */

/* The scrape text into buf (cap bytes, NUL-terminated when cap > 0);
 * returns the length it needs, like snprintf. */
size_t metrics_format(const struct metrics *m, const struct metrics_gauges *g, unsigned flags,
                      char *buf, size_t cap);

/* The Content-Type of that text. */
const char *metrics_content_type(unsigned flags);

#endif
