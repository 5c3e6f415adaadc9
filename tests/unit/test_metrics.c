/* tests/unit/test_metrics.c -- policy/metrics.h: counting log events, the
 * key=value reader, label bounds, and the scrape text in both formats. */
#include <stdlib.h>
#include <string.h>

#include "policy/metrics.h"
#include "t.h"

static struct metrics m;

static void see(const char *event, const char *kv)
{
	metrics_observe(&m, event, kv, strlen(kv));
}

static uint64_t fam(const struct metrics_family *f, const char *v)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->value[i], v) == 0)
			return f->count[i];
	return 999999;
}

static void test_kv(void)
{
	static const char kv[] = "id=0123 addr=::1 from=<a=b@c> error=\"x y=z \\\" status=bad\" "
	                         "status=ok empty= last=1";
	size_t n = sizeof kv - 1, vlen = 0;
	const char *v;

	v = metrics_kv(kv, n, "addr", &vlen);
	CHECK(v != NULL && vlen == 3 && memcmp(v, "::1", 3) == 0);
	v = metrics_kv(kv, n, "from", &vlen);
	CHECK(v != NULL && vlen == 7 && memcmp(v, "<a=b@c>", 7) == 0);
	/* A quoted value is skipped whole: its words are not keys. */
	v = metrics_kv(kv, n, "status", &vlen);
	CHECKF(v != NULL && vlen == 2 && memcmp(v, "ok", 2) == 0, "%.*s", (int)vlen, v);
	v = metrics_kv(kv, n, "y", &vlen);
	CHECK(v == NULL);
	v = metrics_kv(kv, n, "error", &vlen);
	CHECKF(v != NULL && vlen == 21 && v[0] == '"' && v[20] == '"', "%zu", vlen);
	v = metrics_kv(kv, n, "empty", &vlen);
	CHECK(v != NULL && vlen == 0);
	v = metrics_kv(kv, n, "last", &vlen);
	CHECK(v != NULL && vlen == 1 && *v == '1');
	CHECK(metrics_kv(kv, n, "i", &vlen) == NULL);
	CHECK(metrics_kv(kv, n, "d", &vlen) == NULL);
	CHECK(metrics_kv("", 0, "id", &vlen) == NULL);
	/* An unterminated quote runs to the end, never past it. */
	v = metrics_kv("a=\"x\\", 5, "a", &vlen);
	CHECK(v != NULL && vlen == 3);
}

static void test_observe(void)
{
	metrics_init(&m);
	see("start", "hostname=mx.test listeners=2");
	see("connect", "addr=127.0.0.1 port=40000");
	see("connect", "addr=::1 port=40001");
	see("accept", "id=0001 addr=127.0.0.1 from=<a@b> size=1000 nrcpt=2 to=<x@y>,<z@y>");
	see("accept", "id=0002 addr=127.0.0.1 from=<> size=24 nrcpt=1 to=<x@y> user=alice");
	see("reject", "addr=::1 code=554 reason=relay-denied to=<q@elsewhere>");
	see("reject", "addr=::1 code=554 reason=relay-routing to=<q%r@y>");
	see("reject", "id=0003 addr=::1 code=452 reason=quota-disk stage=data size=5");
	see("reject", "addr=::1 code=452 reason=quota-client stage=mail size=0");
	see("reject", "addr=::1 code=452 reason=queue-full id=0004");
	see("reject", "addr=::1 code=550 reason=unknown-user to=<u@y>");
	see("reject", "addr=::1 code=550 reason=Unknown-User");   /* not a kept label */
	see("reject", "addr=::1 code=550");                       /* no reason */
	see("auth", "addr=::1 user=alice mech=PLAIN");
	see("auth-fail", "addr=::1 user=alice mech=PLAIN reason=bad-credentials failures=1");
	see("auth-fail", "addr=::1 user=alice mech=PLAIN reason=blocked");
	see("auth-block", "addr=::1 seconds=900");
	see("tls", "addr=::1 version=TLSv1.2 cipher=X key=EC-P256");
	see("tls-fail", "addr=::1 error=BR_ERR_BAD_VERSION stage=handshake");
	see("delivery", "id=0001 to=<x@y> relay=mx.y status=sent dsn=2.0.0 attempts=1 reply=ok");
	see("delivery", "id=0001 to=<z@y> relay=mx.y status=deferred dsn=4.0.0 attempts=1 reply=x");
	see("delivery", "id=0001 to=<z@y> relay=mx.y status=bounced dsn=5.0.0 attempts=2 reply=x");
	see("delivery", "id=0001 to=<w@y> relay=none tls=none status=expired dsn=4.4.7 attempts=9 reply=x");
	see("bounce", "id=0005 orig=0001 kind=failed nrcpt=2");
	see("reload", "status=refused generation=1 error=\"t.conf:3: status=ok\"");
	see("reload", "status=ok generation=2 listeners=1 sessions=0");
	see("disconnect", "addr=::1 reason=quit messages=0 errors=0 seconds=0.001");
	see("accept", "id=0002 addr=::1 from=<a@b> size=10 nrcpt=1 to=<c@d> dkim=signed d=b s=s1");
	see("accept", "id=0003 addr=::1 from=<a@b> size=10 nrcpt=1 to=<c@d> dkim=present d=b");
	see("accept", "id=0004 addr=::1 from=<a@b> size=10 nrcpt=1 to=<dkim=signed@d>");
	see("dkim-dsn", "id=0006 d=b s=s1");
	see("dkim-fail", "kind=message id=0007 addr=::1 d=b s=s1 why=\"no answer in time\" code=451");
	see("dkim-fail", "kind=dsn id=0008 d=b s=s1 why=\"x\" action=unsigned");
	see("dkim-fail", "kind=message id=0009 addr=::1 d=b s=s1 why=\"x\" code=554");
	CHECK(m.dkim_signed == 2);
	CHECK(fam(&m.dkim_failures, "message") == 2 && fam(&m.dkim_failures, "dsn") == 1);
	m.accepted -= 3;
	m.accepted_bytes -= 30;
	m.accepted_rcpts -= 3;
	CHECK(m.connections == 2);
	CHECK(m.accepted == 2 && m.accepted_bytes == 1024 && m.accepted_rcpts == 3);
	CHECK(m.relay_denied == 2);
	CHECK(fam(&m.rejections, "relay-denied") == 1 && fam(&m.rejections, "relay-routing") == 1);
	CHECK(fam(&m.rejections, "quota-disk") == 1 && fam(&m.rejections, "unknown-user") == 1);
	CHECK(m.rejections.other == 2);
	CHECK(fam(&m.quota, "disk") == 1 && fam(&m.quota, "client") == 1 &&
	      fam(&m.quota, "queue-full") == 1 && fam(&m.quota, "bytes") == 0);
	CHECK(m.auth_ok == 1 && m.auth_failures == 2 && m.auth_blocks == 1);
	CHECK(m.tls_sessions == 1 && m.tls_failures == 1);
	CHECK(fam(&m.deliveries, "sent") == 1 && fam(&m.deliveries, "deferred") == 1 &&
	      fam(&m.deliveries, "bounced") == 1 && fam(&m.deliveries, "expired") == 1);
	CHECK(fam(&m.bounces, "failed") == 1 && fam(&m.bounces, "delayed") == 0);
	CHECK(fam(&m.reloads, "ok") == 1 && fam(&m.reloads, "refused") == 1);
	/* TLS policies: a delivery line's tls-policy= (not tls-policy-result=),
	 * failures by their result= whatever their policy. */
	see("delivery", "id=0006 to=<a@b.test> status=sent tls-policy=dane tls-policy-result=ok");
	see("delivery", "id=0007 to=<a@c.test> status=deferred tls-policy-result=ok "
	    "tls-policy=mta-sts");
	see("tls-policy-fail", "domain=c.test mx=mx.c.test address=192.0.2.1 policy=mta-sts "
	    "result=certificate-host-mismatch action=next-host reason=BR_ERR_X509_BAD_SERVER_NAME");
	see("tls-policy-fail", "domain=d.test policy=mta-sts result=sts-policy-invalid "
	    "action=no-policy reason=\"line 2: no result=here \\x22mode\\x22\"");
	see("tls-policy-fail", "domain=d.test policy=dane result=Bad!");
	CHECK(fam(&m.tls_policy, "dane") == 1 && fam(&m.tls_policy, "mta-sts") == 1 &&
	      fam(&m.tls_policy, "opportunistic") == 0);
	CHECK(fam(&m.tls_policy_failures, "certificate-host-mismatch") == 1 &&
	      fam(&m.tls_policy_failures, "sts-policy-invalid") == 1 &&
	      fam(&m.tls_policy_failures, "tlsa-invalid") == 0 && m.tls_policy_failures.other == 1);
}

/* A family keeps METRICS_LABELS_MAX values; the rest count as "other". */
static void test_label_bound(void)
{
	char kv[64];

	metrics_init(&m);
	for (int i = 0; i < METRICS_LABELS_MAX + 10; i++) {
		snprintf(kv, sizeof kv, "reason=r%d", i);
		see("reject", kv);
		see("reject", kv);
	}
	CHECK(m.rejections.n == METRICS_LABELS_MAX);
	CHECK(m.rejections.other == 20);
	CHECK(fam(&m.rejections, "r0") == 2);
	/* Too long, or odd bytes: other. */
	see("reject", "reason=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	see("reject", "reason=a\"b");
	CHECK(m.rejections.other == 22);
}

static void test_format(void)
{
	struct metrics_gauges g;
	static char om[16384], prom[16384], small[64];
	size_t n;

	metrics_init(&m);
	see("connect", "addr=::1");
	see("reject", "addr=::1 code=554 reason=relay-denied");
	memset(&g, 0, sizeof g);
	g.sessions = 3;
	g.queue_read = 1;
	g.queue_messages = 7;
	g.queue_bytes = 7000;
	g.oldest_age = 65;
	g.disk_free = 1 << 30;
	g.disk_keep = 64 << 20;
	g.queue_max_bytes = 2147483648u;
	g.queue_max_messages = 100000;
	g.healthy = 1;
	g.start_time = 1790000000;
	g.config_generation = 2;
	static struct edge_counters ec;
	ec.n[EDGE_TARPIT] = 4;
	g.edge = &ec;
	n = metrics_format(&m, &g, METRICS_OPENMETRICS, om, sizeof om);
	CHECK(n == strlen(om) && n < sizeof om);
	CHECKF(strstr(om, "# TYPE moat_connections counter\n# HELP moat_connections ") == om, "%s", om);
	CHECK(strstr(om, "\nmoat_connections_total 1\n") != NULL);
	CHECK(strstr(om, "\nmoat_rejections_total{reason=\"relay-denied\"} 1\n") != NULL);
	CHECK(strstr(om, "\nmoat_deliveries_total{status=\"bounced\"} 0\n") != NULL);
	CHECK(strstr(om, "\n# TYPE moat_sessions gauge\n") != NULL);
	CHECK(strstr(om, "\nmoat_sessions 3\n") != NULL);
	CHECK(strstr(om, "\nmoat_queue_oldest_age_seconds 65\n") != NULL);
	CHECK(strstr(om, "\nmoat_config_generation 2\n# EOF\n") != NULL);
	CHECK(strstr(om, "\nmoat_edge_decisions_total{decision=\"tarpit\"} 4\n") != NULL);
	CHECK(strstr(om, "\nmoat_edge_decisions_total{decision=\"early-talker\"} 0\n") != NULL);
	CHECK(strcmp(om + n - 6, "# EOF\n") == 0);
	n = metrics_format(&m, &g, 0, prom, sizeof prom);
	CHECK(n == strlen(prom));
	CHECK(strstr(prom, "# TYPE moat_connections_total counter\n") == prom);
	CHECK(strstr(prom, "# EOF") == NULL);
	CHECK(strstr(prom, "\n# TYPE moat_sessions gauge\n") != NULL);
	/* Without queue values the queue gauges are left out, not zero. */
	g.queue_read = 0;
	metrics_format(&m, &g, 0, prom, sizeof prom);
	CHECK(strstr(prom, "moat_queue_messages") == NULL && strstr(prom, "moat_sessions 3") != NULL);
	/* Short buffers: the length it needs, the text cut, NUL-terminated. */
	CHECK(metrics_format(&m, &g, 0, NULL, 0) == strlen(prom));
	CHECK(metrics_format(&m, &g, 0, small, sizeof small) == strlen(prom));
	CHECK(strlen(small) == sizeof small - 1 && memcmp(small, prom, sizeof small - 1) == 0);
	CHECK(strncmp(metrics_content_type(METRICS_OPENMETRICS), "application/openmetrics-text", 28) == 0);
	CHECK(strncmp(metrics_content_type(0), "text/plain; version=0.0.4", 25) == 0);
}

int main(void)
{
	RUN(test_kv);
	RUN(test_observe);
	RUN(test_label_bound);
	RUN(test_format);
	return t_main_end();
}
