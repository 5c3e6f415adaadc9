/*
 * tests/unit/test_edge.c -- policy/edge.c: the HELO verdict, the sender
 * verdict and the tarpit schedule as tables, on configurations made by the
 * real conf_parse(); and the decision names the log and counters use.
 */
#include "t.h"

#include <limits.h>
#include <stdint.h>

#include "policy/addr.h"
#include "policy/edge.h"

static const char conf_text[] =
	"hostname mx.example.org\n"
	"listen 192.0.2.25:25\n"
	"listen [2001:db8::25]:25\n"
	"listen 0.0.0.0:2525\n"
	"listen [::]:2525\n"
	"domain example.org\n"
	"domain *.example.net\n"
	"relay-network 10.0.0.0/8\n";

static struct conf conf;

static int load(struct conf *c, const char *text)
{
	char err[256];

	conf_defaults(c);
	if (conf_parse(text, strlen(text), "t.conf", c, err, sizeof err) < 0 ||
	    conf_finish(c, "t.conf", err, sizeof err) < 0) {
		fprintf(stderr, "conf: %s\n", err);
		return -1;
	}
	return 0;
}

static struct ipaddr ip(const char *text)
{
	struct ipaddr a;

	memset(&a, 0, sizeof a);
	if (text != NULL && ip_parse(text, strlen(text), &a) < 0)
		fprintf(stderr, "bad test address %s\n", text);
	return a;
}

struct helo_case {
	const char    *name;
	const char    *local;   /* the address the client connected to, or NULL */
	enum edge_helo want;
};

static const struct helo_case helo_cases[] = {
	/* fine */
	{ "client.example.com", NULL, EDGE_HELO_OK },
	{ "client.example.com.", NULL, EDGE_HELO_OK },
	{ "c", NULL, EDGE_HELO_OK },                       /* one label is a Domain */
	{ "host.example.org", NULL, EDGE_HELO_OK },        /* a host in our domain */
	{ "a.example.net", NULL, EDGE_HELO_OK },           /* inside *.example.net */
	{ "example.org.evil.test", NULL, EDGE_HELO_OK },
	{ "xexample.org", NULL, EDGE_HELO_OK },
	{ "[198.51.100.7]", NULL, EDGE_HELO_OK },
	{ "[198.51.100.7]", "192.0.2.99", EDGE_HELO_OK },
	{ "[0.0.0.0]", NULL, EDGE_HELO_OK },               /* a wildcard is not our address */
	{ "[IPv6:2001:db8::26]", NULL, EDGE_HELO_OK },
	{ "192.0.2.26", NULL, EDGE_HELO_OK },
	{ "caf\xc3\xa9.example", NULL, EDGE_HELO_OK },     /* a U-label (RFC 6531) */
	/* ours: the hostname, a domain, an address we listen on or were reached at */
	{ "mx.example.org", NULL, EDGE_HELO_OURS },
	{ "MX.Example.ORG.", NULL, EDGE_HELO_OURS },
	{ "example.org", NULL, EDGE_HELO_OURS },
	{ "example.net", NULL, EDGE_HELO_OURS },           /* the base of *.example.net */
	{ "[192.0.2.25]", NULL, EDGE_HELO_OURS },
	{ "192.0.2.25", NULL, EDGE_HELO_OURS },            /* bare, as bots write it */
	{ "192.0.2.25.", NULL, EDGE_HELO_OURS },
	{ "[IPv6:2001:db8::25]", NULL, EDGE_HELO_OURS },
	{ "[ipv6:2001:DB8:0::25]", NULL, EDGE_HELO_OURS },
	{ "[IPv6:::ffff:192.0.2.25]", NULL, EDGE_HELO_OURS },
	{ "2001:db8::25", NULL, EDGE_HELO_SYNTAX },        /* ':' is no Domain character */
	{ "[198.51.100.7]", "198.51.100.7", EDGE_HELO_OURS },
	{ "[IPv6:2001:db8:5::1]", "2001:db8:5::1", EDGE_HELO_OURS },
	{ "[203.0.113.5]", "::ffff:203.0.113.5", EDGE_HELO_OURS }, /* a mapped local end */
	/* syntax */
	{ "", NULL, EDGE_HELO_SYNTAX },
	{ "bad_name", NULL, EDGE_HELO_SYNTAX },
	{ "-lead.example", NULL, EDGE_HELO_SYNTAX },
	{ "trail-.example", NULL, EDGE_HELO_SYNTAX },
	{ "a..b", NULL, EDGE_HELO_SYNTAX },
	{ ".a", NULL, EDGE_HELO_SYNTAX },
	{ "a.b..", NULL, EDGE_HELO_SYNTAX },
	{ "[1.2.3]", NULL, EDGE_HELO_SYNTAX },
	{ "[192.0.2.25", NULL, EDGE_HELO_SYNTAX },
	{ "[IPv6:2001:db8::25::1]", NULL, EDGE_HELO_SYNTAX },
	{ "host/name", NULL, EDGE_HELO_SYNTAX },
	{ "\xff\xfe", NULL, EDGE_HELO_SYNTAX },
	{ "a\x01" "b", NULL, EDGE_HELO_SYNTAX },
};

static void test_helo(void)
{
	for (size_t k = 0; k < sizeof helo_cases / sizeof helo_cases[0]; k++) {
		const struct helo_case *hc = &helo_cases[k];
		struct ipaddr local = ip(hc->local);
		enum edge_helo got = edge_helo_check(&conf, hc->name, strlen(hc->name), &local);

		CHECKF(got == hc->want, "'%s' local %s: got %d, want %d", hc->name,
		       hc->local ? hc->local : "-", got, hc->want);
	}
}

static void test_helo_limits(void)
{
	char name[300];
	struct ipaddr none = ip(NULL);

	/* 255 octets is the most a Domain has; 256 is too long. */
	memset(name, 'a', sizeof name);
	for (size_t k = 63; k < sizeof name; k += 64)
		name[k] = '.';
	name[255] = '\0';
	CHECK(edge_helo_check(&conf, name, 255, &none) == EDGE_HELO_OK);
	CHECK(edge_helo_check(&conf, name, 256, &none) == EDGE_HELO_SYNTAX);
	/* NULL local: only the listeners are ours */
	CHECK(edge_helo_check(&conf, "[192.0.2.25]", 12, NULL) == EDGE_HELO_OURS);
	CHECK(edge_helo_check(&conf, "[192.0.2.26]", 12, NULL) == EDGE_HELO_OK);
	/* the name is not NUL-terminated inside a buffer: only len counts */
	CHECK(edge_helo_check(&conf, "example.orgX", 11, &none) == EDGE_HELO_OURS);
}

struct sender_case {
	const char *path;
	int         ours;
};

static const struct sender_case sender_cases[] = {
	{ "<alice@example.org>", 1 },
	{ "<alice@EXAMPLE.org.>", 1 },
	{ "<alice@host.example.net>", 1 },   /* *.example.net */
	{ "<alice@example.net>", 1 },        /* "*.example.net" also takes example.net */
	{ "<alice@host.example.org>", 0 },
	{ "<alice@example.org.evil.test>", 0 },
	{ "<alice@[192.0.2.25]>", 0 },       /* a literal is never one of our domains */
	{ "<>", 0 },
	{ "<@relay.test:alice@example.org>", 1 },
};

static void test_sender(void)
{
	for (size_t k = 0; k < sizeof sender_cases / sizeof sender_cases[0]; k++) {
		const struct sender_case *sc = &sender_cases[k];
		struct addr a;

		CHECKF(addr_parse_path(sc->path, strlen(sc->path), ADDR_ALLOW_NULL, &a) == ADDR_OK,
		       "%s", sc->path);
		CHECKF(edge_sender_ours(&conf, a.domain, a.domainlen, a.flags) == sc->ours, "%s",
		       sc->path);
	}
	CHECK(edge_sender_ours(&conf, "", 0, 0) == 0);
}

struct tarpit_case {
	const char *conf;   /* extra lines */
	unsigned    errors;
	unsigned    want_ms;
};

static const struct tarpit_case tarpit_cases[] = {
	/* defaults: after 10, 1000 ms a step, at most 10000 */
	{ "", 0, 0 },
	{ "", 9, 0 },
	{ "", 10, 1000 },
	{ "", 11, 2000 },
	{ "", 19, 10000 },
	{ "", 20, 10000 },
	{ "", UINT_MAX, 10000 },
	{ "tarpit-after 0\n", 100, 0 },                  /* off */
	{ "tarpit-after 1\ntarpit-delay 500\ntarpit-max-delay 1200\n", 1, 500 },
	{ "tarpit-after 1\ntarpit-delay 500\ntarpit-max-delay 1200\n", 2, 1000 },
	{ "tarpit-after 1\ntarpit-delay 500\ntarpit-max-delay 1200\n", 3, 1200 },
	{ "tarpit-after 1\ntarpit-delay 60000\ntarpit-max-delay 60000\n", UINT_MAX, 60000 },
	/* a max below the step: the max */
	{ "tarpit-after 2\ntarpit-delay 5000\ntarpit-max-delay 300\n", 2, 300 },
	{ "tarpit-after 2\ntarpit-delay 5000\ntarpit-max-delay 300\n", 1, 0 },
};

static void test_tarpit(void)
{
	for (size_t k = 0; k < sizeof tarpit_cases / sizeof tarpit_cases[0]; k++) {
		const struct tarpit_case *tc = &tarpit_cases[k];
		char text[512];
		struct conf c;

		snprintf(text, sizeof text, "domain example.org\n%s", tc->conf);
		CHECK(load(&c, text) == 0);
		CHECKF(edge_tarpit_delay(&c, tc->errors) == tc->want_ms, "case %zu: %u errors: %u ms",
		       k, tc->errors, edge_tarpit_delay(&c, tc->errors));
	}
}

static void test_reasons(void)
{
	struct edge_counters ec;

	for (unsigned a = 0; a < EDGE_NREASONS; a++) {
		const char *n = edge_reason_name((enum edge_reason)a);

		CHECK(n != NULL && n[0] != '\0' && strcmp(n, "?") != 0);
		for (const char *p = n; *p; p++)
			CHECKF((*p >= 'a' && *p <= 'z') || *p == '-', "name %s", n); /* a log token */
		for (unsigned b = 0; b < a; b++)
			CHECK(strcmp(n, edge_reason_name((enum edge_reason)b)) != 0);
	}
	CHECK(strcmp(edge_reason_name(EDGE_NREASONS), "?") == 0);
	CHECK(strcmp(edge_reason_name(EDGE_EARLY_TALKER), "early-talker") == 0);
	memset(&ec, 0, sizeof ec);
	edge_count(&ec, EDGE_TARPIT);
	edge_count(&ec, EDGE_TARPIT);
	edge_count(&ec, EDGE_NREASONS);  /* out of range: ignored */
	edge_count(NULL, EDGE_TARPIT);   /* no counters: ignored */
	CHECK(ec.n[EDGE_TARPIT] == 2 && ec.n[EDGE_EARLY_TALKER] == 0);
}

static void test_conf_directives(void)
{
	struct conf c;
	char err[256];
	static const char *const bad[] = {
		"reject-early-pipelining yes\n", "reject-invalid-helo 1\n",
		"reject-forged-helo On\n", "reject-forged-sender\n",
		"tarpit-after 1001\n", "tarpit-delay 0\n", "tarpit-max-delay 60001\n",
		"dnsbl-stage data\n", "dnsbl-threshold 0\n", "dnsbl-timeout 0\n",
		"dnsbl-negative-ttl 86401\n", "dnsbl zen.test\ndnsbl ZEN.test.\n",
		"dnsbl zen.test=127.0.0\n",
	};

	CHECK(load(&c, "domain example.org\nreject-early-pipelining off\nreject-invalid-helo off\n"
	               "reject-forged-helo off\nreject-forged-sender on\ntarpit-after 0\n"
	               "dnsbl-stage connect\ndnsbl a.test*2\ndnsbl b.test=127.0.0.[2..4]*-1\n"
	               "dnsbl-threshold 2\ndnsbl-timeout 1\ndnsbl-negative-ttl 0\n") == 0);
	CHECK(!c.reject_early_pipelining && !c.reject_invalid_helo && !c.reject_forged_helo);
	CHECK(c.reject_forged_sender && c.tarpit_after == 0 && c.dnsbl_stage == CONF_DNSBL_CONNECT);
	CHECK(c.ndnsbl == 2 && c.dnsbl[0].weight == 2 && c.dnsbl[1].weight == -1);
	CHECK(c.dnsbl_threshold == 2 && c.dnsbl_timeout == 1 && c.dnsbl_negative_ttl == 0);
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		char text[256];

		snprintf(text, sizeof text, "domain example.org\n%s", bad[k]);
		conf_defaults(&c);
		CHECKF(conf_parse(text, strlen(text), "t.conf", &c, err, sizeof err) < 0,
		       "accepted: %s", bad[k]);
	}
	/* seventeen zones are one too many */
	conf_defaults(&c);
	for (unsigned k = 0; k <= CONF_MAX_DNSBL; k++) {
		char text[64];
		int rc;

		snprintf(text, sizeof text, "dnsbl z%u.test\n", k);
		rc = conf_parse(text, strlen(text), "t.conf", &c, err, sizeof err);
		CHECKF(k < CONF_MAX_DNSBL ? rc == 0 : rc < 0, "zone %u", k);
	}
	CHECK(strstr(err, "too many zones") != NULL);
}

int main(void)
{
	if (load(&conf, conf_text) < 0)
		return 1;
	RUN(test_helo);
	RUN(test_helo_limits);
	RUN(test_sender);
	RUN(test_tarpit);
	RUN(test_reasons);
	RUN(test_conf_directives);
	return t_main_end();
}
