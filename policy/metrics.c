/* policy/metrics.c -- counters from log events, and their text; see metrics.h */
#include "metrics.h"

#include <string.h>

#include "text.h"

/* ---- counting ----------------------------------------------------------- */

const char *metrics_kv(const char *kv, size_t len, const char *key, size_t *vlen)
{
	size_t klen = strlen(key), i = 0;

	while (i < len) {
		size_t start = i, eq = 0;

		/* One "key=value" or "key=\"...\"" (a quoted value may hold
		 * spaces and \-escapes, never a key of its own). */
		while (i < len && kv[i] != ' ') {
			if (kv[i] == '=' && eq == 0) {
				eq = i;
				if (i + 1 < len && kv[i + 1] == '"') {
					for (i += 2; i < len && kv[i] != '"'; i++)
						if (kv[i] == '\\')
							i++;
				}
			}
			i++;
		}
		if (eq == start + klen && memcmp(kv + start, key, klen) == 0) {
			*vlen = (i > len ? len : i) - eq - 1;
			return kv + eq + 1;
		}
		i++;
	}
	return NULL;
}

/* A label value we keep: [a-z0-9._-], 1..METRICS_LABEL_MAX bytes. */
static int label_ok(const char *v, size_t n)
{
	if (n == 0 || n > METRICS_LABEL_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = v[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
		      c == '_'))
			return 0;
	}
	return 1;
}

static void family_seed(struct metrics_family *f, const char *v)
{
	if (f->n < METRICS_LABELS_MAX) {
		memcpy(f->value[f->n], v, strlen(v) + 1);
		f->count[f->n++] = 0;
	}
}

static void family_count(struct metrics_family *f, const char *v, size_t n)
{
	size_t i;

	if (v == NULL || !label_ok(v, n)) {
		f->other++;
		return;
	}
	for (i = 0; i < f->n; i++) {
		if (strlen(f->value[i]) == n && memcmp(f->value[i], v, n) == 0) {
			f->count[i]++;
			return;
		}
	}
	if (f->n == METRICS_LABELS_MAX) {
		f->other++;
		return;
	}
	memcpy(f->value[f->n], v, n);
	f->value[f->n][n] = 0;
	f->count[f->n++] = 1;
}

/* Add count to label v[0..n) of f (a new label if there is room). */
static void family_add(struct metrics_family *f, const char *v, size_t n, uint64_t count)
{
	size_t i;

	if (!label_ok(v, n)) {
		f->other += count;
		return;
	}
	for (i = 0; i < f->n; i++) {
		if (strlen(f->value[i]) == n && memcmp(f->value[i], v, n) == 0) {
			f->count[i] += count;
			return;
		}
	}
	if (f->n == METRICS_LABELS_MAX) {
		f->other += count;
		return;
	}
	memcpy(f->value[f->n], v, n);
	f->value[f->n][n] = 0;
	f->count[f->n++] = count;
}

static void family_sum(struct metrics_family *dst, const struct metrics_family *src)
{
	size_t n = src->n < METRICS_LABELS_MAX ? src->n : METRICS_LABELS_MAX;

	dst->other += src->other;
	for (size_t i = 0; i < n; i++)
		family_add(dst, src->value[i], strnlen(src->value[i], METRICS_LABEL_MAX), src->count[i]);
}

void metrics_add(struct metrics *dst, const struct metrics *src)
{
	dst->connections += src->connections;
	dst->accepted += src->accepted;
	dst->accepted_bytes += src->accepted_bytes;
	dst->accepted_rcpts += src->accepted_rcpts;
	dst->relay_denied += src->relay_denied;
	dst->auth_ok += src->auth_ok;
	dst->auth_failures += src->auth_failures;
	dst->auth_blocks += src->auth_blocks;
	dst->tls_sessions += src->tls_sessions;
	dst->tls_failures += src->tls_failures;
	family_sum(&dst->rejections, &src->rejections);
	family_sum(&dst->quota, &src->quota);
	family_sum(&dst->deliveries, &src->deliveries);
	family_sum(&dst->bounces, &src->bounces);
	family_sum(&dst->reloads, &src->reloads);
	dst->dkim_signed += src->dkim_signed;
	family_sum(&dst->dkim_failures, &src->dkim_failures);
	family_sum(&dst->tls_policy, &src->tls_policy);
	family_sum(&dst->tls_policy_failures, &src->tls_policy_failures);
}

void metrics_init(struct metrics *m)
{
	static const char *const statuses[] = { "sent", "deferred", "bounced", "expired" };
	static const char *const quotas[] = { "disk", "map", "messages", "bytes", "client",
	                                      "queue-full" };
	/* docs/tls-policy.md; RFC 8460 4.3 (as policy/tlsrpt.h names them) */
	static const char *const policies[] = { "dane", "mta-sts", "mta-sts-testing",
	                                        "opportunistic", "route" };
	static const char *const results[] = {
		"starttls-not-supported", "certificate-host-mismatch", "certificate-expired",
		"certificate-not-trusted", "validation-failure", "tlsa-invalid", "dnssec-invalid",
		"dane-required", "sts-policy-fetch-error", "sts-policy-invalid", "sts-webpki-invalid"
	};
	size_t i;

	memset(m, 0, sizeof *m);
	for (i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
		family_seed(&m->deliveries, statuses[i]);
	for (i = 0; i < sizeof quotas / sizeof quotas[0]; i++)
		family_seed(&m->quota, quotas[i]);
	family_seed(&m->bounces, "failed");
	family_seed(&m->bounces, "delayed");
	family_seed(&m->reloads, "ok");
	family_seed(&m->reloads, "refused");
	family_seed(&m->dkim_failures, "message");
	family_seed(&m->dkim_failures, "dsn");
	for (i = 0; i < sizeof policies / sizeof policies[0]; i++)
		family_seed(&m->tls_policy, policies[i]);
	for (i = 0; i < sizeof results / sizeof results[0]; i++)
		family_seed(&m->tls_policy_failures, results[i]);
}

/* A decimal value of key, 0 when absent or not a number. */
static uint64_t kv_number(const char *kv, size_t len, const char *key)
{
	size_t n = 0, i;
	const char *v = metrics_kv(kv, len, key, &n);
	uint64_t x = 0;

	if (v == NULL)
		return 0;
	for (i = 0; i < n && v[i] >= '0' && v[i] <= '9' && x < UINT64_MAX / 10 - 10; i++)
		x = x * 10 + (uint64_t)(v[i] - '0');
	return x;
}

static int is(const char *v, size_t n, const char *lit)
{
	return v != NULL && n == strlen(lit) && memcmp(v, lit, n) == 0;
}

static void observe_reject(struct metrics *m, const char *kv, size_t len)
{
	size_t n = 0;
	const char *reason = metrics_kv(kv, len, "reason", &n);

	family_count(&m->rejections, reason, n);
	if (is(reason, n, "relay-denied") || is(reason, n, "relay-routing"))
		m->relay_denied++;
	else if (reason != NULL && n > 6 && memcmp(reason, "quota-", 6) == 0)
		family_count(&m->quota, reason + 6, n - 6);
	else if (is(reason, n, "queue-full"))
		family_count(&m->quota, reason, n);
}

void metrics_observe(struct metrics *m, const char *event, const char *kv, size_t len)
{
	size_t n = 0;
	const char *v;

	if (strcmp(event, "connect") == 0) {
		m->connections++;
	} else if (strcmp(event, "accept") == 0) {
		m->accepted++;
		m->accepted_bytes += kv_number(kv, len, "size");
		m->accepted_rcpts += kv_number(kv, len, "nrcpt");
		v = metrics_kv(kv, len, "dkim", &n);
		if (is(v, n, "signed"))
			m->dkim_signed++;
	} else if (strcmp(event, "dkim-dsn") == 0) {
		m->dkim_signed++;
	} else if (strcmp(event, "dkim-fail") == 0) {
		v = metrics_kv(kv, len, "kind", &n);
		family_count(&m->dkim_failures, v, n);
	} else if (strcmp(event, "reject") == 0) {
		observe_reject(m, kv, len);
	} else if (strcmp(event, "auth") == 0) {
		m->auth_ok++;
	} else if (strcmp(event, "auth-fail") == 0) {
		m->auth_failures++;
	} else if (strcmp(event, "auth-block") == 0) {
		m->auth_blocks++;
	} else if (strcmp(event, "tls") == 0) {
		m->tls_sessions++;
	} else if (strcmp(event, "tls-fail") == 0) {
		m->tls_failures++;
	} else if (strcmp(event, "delivery") == 0) {
		v = metrics_kv(kv, len, "status", &n);
		family_count(&m->deliveries, v, n);
		if ((v = metrics_kv(kv, len, "tls-policy", &n)) != NULL)
			family_count(&m->tls_policy, v, n);
	} else if (strcmp(event, "tls-policy-fail") == 0) {
		v = metrics_kv(kv, len, "result", &n);
		family_count(&m->tls_policy_failures, v, n);
	} else if (strcmp(event, "bounce") == 0) {
		v = metrics_kv(kv, len, "kind", &n);
		family_count(&m->bounces, v, n);
	} else if (strcmp(event, "reload") == 0) {
		v = metrics_kv(kv, len, "status", &n);
		family_count(&m->reloads, v, n);
	}
}

/* ---- the text ----------------------------------------------------------- */

/* The TYPE and HELP lines of a family.  OpenMetrics names a counter family
 * without its _total suffix; the Prometheus format names the sample. */
static void head(struct text *t, unsigned flags, const char *name, const char *type,
                 const char *help)
{
	const char *suffix = !(flags & METRICS_OPENMETRICS) && strcmp(type, "counter") == 0
	                     ? "_total" : "";
	static const char *const kind[] = { "# TYPE moat_", "# HELP moat_" };

	for (int k = 0; k < 2; k++) {
		text_puts(t, kind[k]);
		text_puts(t, name);
		text_puts(t, suffix);
		text_puts(t, " ");
		text_puts(t, k == 0 ? type : help);
		text_puts(t, "\n");
	}
}

/* "moat_NAME[_total][{LABEL="VALUE"}] V\n" */
static void sample(struct text *t, const char *name, int total, const char *label,
                   const char *value, uint64_t v)
{
	text_puts(t, "moat_");
	text_puts(t, name);
	if (total)
		text_puts(t, "_total");
	if (label != NULL) {
		text_puts(t, "{");
		text_puts(t, label);
		text_puts(t, "=\"");
		text_puts(t, value);
		text_puts(t, "\"}");
	}
	text_puts(t, " ");
	text_put_u64(t, v);
	text_puts(t, "\n");
}

static void counter(struct text *t, unsigned flags, const char *name, const char *help,
                    uint64_t v)
{
	head(t, flags, name, "counter", help);
	sample(t, name, 1, NULL, NULL, v);
}

static void gauge(struct text *t, unsigned flags, const char *name, const char *help, uint64_t v)
{
	head(t, flags, name, "gauge", help);
	sample(t, name, 0, NULL, NULL, v);
}

static void family(struct text *t, unsigned flags, const char *name, const char *label,
                   const char *help, const struct metrics_family *f)
{
	head(t, flags, name, "counter", help);
	for (size_t i = 0; i < f->n; i++)
		sample(t, name, 1, label, f->value[i], f->count[i]);
	if (f->other > 0 || f->n == 0)
		sample(t, name, 1, label, "other", f->other);
}

size_t metrics_format(const struct metrics *m, const struct metrics_gauges *g, unsigned flags,
                      char *buf, size_t cap)
{
	struct text o = { buf, cap, 0 };

	counter(&o, flags, "connections", "SMTP sessions started (log: event=connect).", m->connections);
	counter(&o, flags, "messages_accepted", "Messages queued and answered 250 (event=accept).",
	        m->accepted);
	counter(&o, flags, "accepted_bytes", "Body bytes of the messages accepted.", m->accepted_bytes);
	counter(&o, flags, "accepted_recipients", "Recipients of the messages accepted.",
	        m->accepted_rcpts);
	family(&o, flags, "rejections", "reason", "Refusals, by reason (event=reject).", &m->rejections);
	counter(&o, flags, "relay_denied",
	        "RCPTs refused as relaying (reason=relay-denied, relay-routing).", m->relay_denied);
	counter(&o, flags, "auth_successes", "AUTH accepted (event=auth).", m->auth_ok);
	counter(&o, flags, "auth_failures", "AUTH refused (event=auth-fail).", m->auth_failures);
	counter(&o, flags, "auth_blocks",
	        "Client addresses blocked for AUTH failures (event=auth-block).",
	        m->auth_blocks);
	counter(&o, flags, "tls_sessions", "TLS handshakes completed (event=tls).", m->tls_sessions);
	counter(&o, flags, "tls_failures", "TLS handshakes or sessions failed (event=tls-fail).",
	        m->tls_failures);
	family(&o, flags, "deliveries", "status", "Delivery attempts, by outcome (event=delivery).",
	       &m->deliveries);
	family(&o, flags, "bounces", "kind", "DSNs queued to senders: failed, delayed, relayed (event=bounce).",
	       &m->bounces);
	family(&o, flags, "quota_refusals", "quota",
	       "Messages refused 452 for room: a quota, or a full disk or map at commit.", &m->quota);
	family(&o, flags, "reloads", "status", "Configuration reloads (event=reload).", &m->reloads);
	counter(&o, flags, "dkim_signed",
	        "Messages signed with DKIM: accepted (event=accept dkim=signed), DSNs (event=dkim-dsn).",
	        m->dkim_signed);
	family(&o, flags, "dkim_failures", "kind",
	       "DKIM signatures that failed: messages refused, DSNs sent unsigned (event=dkim-fail).",
	       &m->dkim_failures);
	family(&o, flags, "tls_policy_deliveries", "policy",
	       "Delivery attempts, by the TLS policy they went under (event=delivery tls-policy=).",
	       &m->tls_policy);
	family(&o, flags, "tls_policy_failures", "result",
	       "DANE and MTA-STS failures, by RFC 8460 result type (event=tls-policy-fail).",
	       &m->tls_policy_failures);
	if (g->edge != NULL) {
		head(&o, flags, "edge_decisions", "counter",
		     "Edge defense decisions, by name (policy/edge.h; event=counters at exit).");
		for (unsigned r = 0; r < EDGE_NREASONS; r++)
			sample(&o, "edge_decisions", 1, "decision", edge_reason_name((enum edge_reason)r),
			       g->edge->n[r]);
	}
	gauge(&o, flags, "sessions", "Open SMTP connections.", g->sessions);
	if (g->queue_read) {
		gauge(&o, flags, "queue_messages", "Messages in the queue.", g->queue_messages);
		gauge(&o, flags, "queue_bytes", "Body bytes in the queue.", g->queue_bytes);
		gauge(&o, flags, "queue_oldest_age_seconds", "Age of the oldest queued message (0: empty).",
		      g->oldest_age);
		gauge(&o, flags, "queue_disk_free_bytes", "Bytes the queue can still write.", g->disk_free);
		gauge(&o, flags, "queue_disk_keep_bytes",
		      "Of those, what queue-min-free and queue-min-free-percent keep free.", g->disk_keep);
	}
	gauge(&o, flags, "queue_max_bytes", "queue-max-bytes.", g->queue_max_bytes);
	gauge(&o, flags, "queue_max_messages", "queue-max-messages.", g->queue_max_messages);
	gauge(&o, flags, "healthy", "1 when GET /health answers 200.", g->healthy ? 1u : 0u);
	gauge(&o, flags, "start_time_seconds", "When the server started (Unix time).",
	      g->start_time > 0 ? (uint64_t)g->start_time : 0u);
	gauge(&o, flags, "config_generation", "Configurations loaded: 1 at start, one more per reload.",
	      g->config_generation);
	if (flags & METRICS_OPENMETRICS)
		text_puts(&o, "# EOF\n");
	return text_end(&o);
}

const char *metrics_content_type(unsigned flags)
{
	return (flags & METRICS_OPENMETRICS) ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
	                                     : "text/plain; version=0.0.4; charset=utf-8";
}
