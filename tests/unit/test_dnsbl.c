/*
 * tests/unit/test_dnsbl.c -- policy/dnsbl.c: the zone syntax (good and bad
 * specs, written back and parsed again), query names for IPv4 and IPv6,
 * the answer filter, scores and thresholds, the names in the 554, and the
 * cache (TTLs, expiry at the exact millisecond, eviction, never a wrong
 * answer).
 */
#include "t.h"

#include <stdint.h>

#include "policy/dnsbl.h"

static struct ipaddr ip(const char *text)
{
	struct ipaddr a;

	memset(&a, 0, sizeof a);
	if (ip_parse(text, strlen(text), &a) < 0)
		fprintf(stderr, "bad test address %s\n", text);
	return a;
}

struct spec_case {
	const char *spec;
	const char *zone;     /* NULL: refused */
	int         weight;
	const char *canon;    /* dnsbl_spec_format() */
};

static const struct spec_case spec_cases[] = {
	{ "zen.test", "zen.test", 1, "zen.test" },
	{ "Zen.TEST.", "zen.test", 1, "zen.test" },
	{ "zen.test*3", "zen.test", 3, "zen.test*3" },
	{ "zen.test*+3", "zen.test", 3, "zen.test*3" },
	{ "zen.test*1", "zen.test", 1, "zen.test" },
	{ "list.dnswl.test=127.0.[0..255].[1;2;3]*-2", "list.dnswl.test", -2,
	  "list.dnswl.test=127.0.[0..255].[1..3]*-2" },
	{ "b.test=127.0.0.2", "b.test", 1, "b.test=127.0.0.2" },
	{ "b.test=127.0.0.[2..11;20]*1000", "b.test", 1000, "b.test=127.0.0.[2..11;20]*1000" },
	{ "b.test=127.0.0.[20;2..11;5]", "b.test", 1, "b.test=127.0.0.[2..11;20]" },
	{ "b.test=[0..255].[0..255].[0..255].[0..255]*-1000", "b.test", -1000,
	  "b.test=[0..255].[0..255].[0..255].[0..255]*-1000" },
	{ "b.test=127.0.0.[7..7]", "b.test", 1, "b.test=127.0.0.7" },
	{ "b.test=0127.0.0.2", "b.test", 1, "b.test=127.0.0.2" },
	/* refused */
	{ "", NULL, 0, NULL },
	{ ".", NULL, 0, NULL },
	{ "*2", NULL, 0, NULL },
	{ "=127.0.0.2", NULL, 0, NULL },
	{ "zen..test", NULL, 0, NULL },
	{ "zen.test..", NULL, 0, NULL },
	{ "-zen.test", NULL, 0, NULL },
	{ "zen_x.test", NULL, 0, NULL },
	{ "[192.0.2.1]", NULL, 0, NULL },
	{ "zen.test=", NULL, 0, NULL },
	{ "zen.test=127.0.0", NULL, 0, NULL },
	{ "zen.test=127.0.0.2.1", NULL, 0, NULL },
	{ "zen.test=127.0.0.256", NULL, 0, NULL },
	{ "zen.test=127.0.0.00002", NULL, 0, NULL },
	{ "zen.test=127.0.0.-1", NULL, 0, NULL },
	{ "zen.test=127.0..2", NULL, 0, NULL },
	{ "zen.test=127.0.0.[3..2]", NULL, 0, NULL },
	{ "zen.test=127.0.0.[2", NULL, 0, NULL },
	{ "zen.test=127.0.0.2]", NULL, 0, NULL },
	{ "zen.test=127.0.0.[]", NULL, 0, NULL },
	{ "zen.test=127.0.0.[2;]", NULL, 0, NULL },
	{ "zen.test=127.0.0.[;2]", NULL, 0, NULL },
	{ "zen.test=127.0.0.[2...3]", NULL, 0, NULL },
	{ "zen.test=127.0.0.[2..]", NULL, 0, NULL },
	{ "zen.test=127.0.[0.0].2", NULL, 0, NULL },
	{ "zen.test=127.0.0.[[2]]", NULL, 0, NULL },
	{ "zen.test*", NULL, 0, NULL },
	{ "zen.test*-", NULL, 0, NULL },
	{ "zen.test*0", NULL, 0, NULL },
	{ "zen.test*1001", NULL, 0, NULL },
	{ "zen.test*-1001", NULL, 0, NULL },
	{ "zen.test*2x", NULL, 0, NULL },
	{ "zen.test*3*4", NULL, 0, NULL },
	{ "zen.test=127.0.0.2*3=4", NULL, 0, NULL },
};

static void test_spec(void)
{
	for (size_t k = 0; k < sizeof spec_cases / sizeof spec_cases[0]; k++) {
		const struct spec_case *sc = &spec_cases[k];
		struct conf_dnsbl z, again;
		const char *why = NULL;
		char buf[DNSBL_SPEC_TEXT_MAX];
		int rc = dnsbl_spec_parse(sc->spec, strlen(sc->spec), &z, &why);

		if (sc->zone == NULL) {
			CHECKF(rc < 0 && why != NULL && why[0] != '\0', "accepted '%s'", sc->spec);
			continue;
		}
		CHECKF(rc == 0, "refused '%s': %s", sc->spec, why);
		if (rc != 0)
			continue;
		CHECKF(strcmp(z.zone, sc->zone) == 0 && z.weight == sc->weight, "'%s': %s %d",
		       sc->spec, z.zone, z.weight);
		size_t n = dnsbl_spec_format(&z, buf, sizeof buf);
		CHECKF(n == strlen(sc->canon) && strcmp(buf, sc->canon) == 0, "'%s' written '%s'",
		       sc->spec, buf);
		CHECK(dnsbl_spec_parse(buf, n, &again, &why) == 0);
		CHECKF(memcmp(&again, &z, sizeof z) == 0, "'%s' does not parse back", buf);
	}
}

static void test_spec_limits(void)
{
	char zone[CONF_DNSBL_ZONE_MAX + 8], small[8];
	struct conf_dnsbl z;
	const char *why;

	/* 160 octets of zone are fine, 161 are not */
	memset(zone, 'a', sizeof zone);
	for (size_t k = 50; k < sizeof zone; k += 51)
		zone[k] = '.';
	CHECK(dnsbl_spec_parse(zone, CONF_DNSBL_ZONE_MAX, &z, &why) == 0);
	CHECK(strlen(z.zone) == CONF_DNSBL_ZONE_MAX);
	CHECK(dnsbl_spec_parse(zone, CONF_DNSBL_ZONE_MAX + 1, &z, &why) < 0);
	/* a trailing dot does not count */
	zone[CONF_DNSBL_ZONE_MAX] = '.';
	CHECK(dnsbl_spec_parse(zone, CONF_DNSBL_ZONE_MAX + 1, &z, &why) == 0);
	/* short buffers: the length needed, a NUL-terminated cut */
	CHECK(dnsbl_spec_parse("zen.test*3", 10, &z, &why) == 0);
	memset(small, 'Z', sizeof small);
	CHECK(dnsbl_spec_format(&z, small, 5) == 10 && strcmp(small, "zen.") == 0 && small[5] == 'Z');
	CHECK(dnsbl_spec_format(&z, NULL, 0) == 10);
	/* the spec is bytes, not a string: only len counts */
	CHECK(dnsbl_spec_parse("zen.test*3*", 10, &z, &why) == 0 && z.weight == 3);
}

struct name_case {
	const char *ip;
	const char *zone;
	const char *want;
};

static const struct name_case name_cases[] = {
	{ "192.0.2.1", "zen.test", "1.2.0.192.zen.test" },
	{ "127.0.0.2", "zen.test", "2.0.0.127.zen.test" },
	{ "0.0.0.0", "z", "0.0.0.0.z" },
	{ "255.255.255.255", "z", "255.255.255.255.z" },
	{ "2001:db8::1", "zen.test",
	  "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.test" },
	{ "::1", "zen.test",
	  "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.zen.test" },
	{ "fe80::abcd:ef12:3456:789a", "x.test",
	  "a.9.8.7.6.5.4.3.2.1.f.e.d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.8.e.f.x.test" },
};

static void test_query_name(void)
{
	char buf[DNSBL_NAME_MAX];

	for (size_t k = 0; k < sizeof name_cases / sizeof name_cases[0]; k++) {
		const struct name_case *nc = &name_cases[k];
		struct ipaddr a = ip(nc->ip);
		size_t n = dnsbl_query_name(&a, nc->zone, buf, sizeof buf);

		CHECKF(n == strlen(nc->want) && strcmp(buf, nc->want) == 0, "%s: '%s'", nc->ip, buf);
		/* one byte short of the name and its NUL: refused, "" */
		CHECK(dnsbl_query_name(&a, nc->zone, buf, n) == 0 && buf[0] == '\0');
		CHECK(dnsbl_query_name(&a, nc->zone, buf, n + 1) == n);
	}
	{
		/* the longest zone still fits DNSBL_NAME_MAX with IPv6 */
		char zone[CONF_DNSBL_ZONE_MAX + 1];
		struct ipaddr a = ip("2001:db8::1");

		memset(zone, 'a', CONF_DNSBL_ZONE_MAX);
		zone[CONF_DNSBL_ZONE_MAX] = '\0';
		CHECK(dnsbl_query_name(&a, zone, buf, sizeof buf) == 64 + CONF_DNSBL_ZONE_MAX);
		CHECK(64 + CONF_DNSBL_ZONE_MAX <= 253);   /* a DNS name's most */
	}
}

static void test_answer_filter(void)
{
	struct conf_dnsbl plain, filt;
	const char *why;
	struct ipaddr v6 = ip("::1");

	CHECK(dnsbl_spec_parse("a.test", 6, &plain, &why) == 0);
	CHECK(dnsbl_spec_parse("b.test=127.0.0.[2..11]", 22, &filt, &why) == 0);
	/* default: 127/8 but not 127.255.255/24 */
	CHECK(dnsbl_answer_counts(&plain, &(struct ipaddr){ 0 }) == 0);
	{
		static const struct { const char *a; int plain, filt; } t[] = {
			{ "127.0.0.2", 1, 1 },   { "127.0.0.11", 1, 1 }, { "127.0.0.12", 1, 0 },
			{ "127.0.0.1", 1, 0 },   { "127.0.1.2", 1, 0 },  { "127.1.0.2", 1, 0 },
			{ "127.255.255.254", 0, 0 }, { "127.255.255.0", 0, 0 },
			{ "127.255.254.1", 1, 0 }, { "127.254.255.1", 1, 0 },
			{ "10.0.0.2", 0, 0 },    { "128.0.0.2", 0, 0 },
		};
		for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
			struct ipaddr a = ip(t[k].a);

			CHECKF(dnsbl_answer_counts(&plain, &a) == t[k].plain, "plain %s", t[k].a);
			CHECKF(dnsbl_answer_counts(&filt, &a) == t[k].filt, "filtered %s", t[k].a);
		}
	}
	CHECK(dnsbl_answer_counts(&plain, &v6) == 0 && dnsbl_answer_counts(&filt, &v6) == 0);
}

static void load(struct conf *c, const char *text)
{
	char err[256];

	conf_defaults(c);
	CHECKF(conf_parse(text, strlen(text), "t.conf", c, err, sizeof err) == 0, "%s", err);
	CHECKF(conf_finish(c, "t.conf", err, sizeof err) == 0, "%s", err);
}

static void test_score(void)
{
	struct conf c;
	char buf[64];

	/* postscreen's example: two blocklists, an allowlist, threshold 2 */
	load(&c, "domain example.org\ndnsbl zen.test*2\ndnsbl b.test\n"
	         "dnsbl wl.test=127.0.[0..255].[1..3]*-3\ndnsbl c.test\ndnsbl-threshold 2\n");
	CHECK(dnsbl_score(&c, 0) == 0 && !dnsbl_refused(&c, 0));
	CHECK(dnsbl_score(&c, 1) == 2 && dnsbl_refused(&c, 2));         /* zen alone */
	CHECK(dnsbl_score(&c, 2) == 1 && !dnsbl_refused(&c, 1));        /* b alone */
	CHECK(dnsbl_score(&c, 2 | 8) == 2 && dnsbl_refused(&c, 2));     /* b and c */
	CHECK(dnsbl_score(&c, 1 | 4) == -1 && !dnsbl_refused(&c, -1));  /* allowlisted */
	CHECK(dnsbl_score(&c, 1 | 2 | 4 | 8) == 1);
	CHECK(dnsbl_score(&c, 0xfffffff0u) == 0);                        /* no such zones */
	/* what a client surely scores when some zones did not answer: as if
	 * each allowlist among them had listed it, no blocklist had */
	CHECK(dnsbl_score_sure(&c, 1, 0) == 2);
	CHECK(dnsbl_score_sure(&c, 1, 4) == -1 && !dnsbl_refused(&c, -1)); /* the allowlist was late */
	CHECK(dnsbl_score_sure(&c, 1 | 2, 2) == 2);                       /* b late: not counted */
	CHECK(dnsbl_score_sure(&c, 1 | 8, 2 | 4) == 0);
	CHECK(dnsbl_score_sure(&c, 0, 0xffffffffu) == -3);
	CHECK(strcmp(dnsbl_names(&c, 1 | 2 | 4 | 8, buf, sizeof buf), "zen.test, b.test, c.test") == 0);
	CHECK(strcmp(dnsbl_names(&c, 4, buf, sizeof buf), "") == 0);    /* the allowlist is no name */
	CHECK(strcmp(dnsbl_names(&c, 1 | 2 | 8, buf, 14), "zen.test, ...") == 0);
	CHECK(strcmp(dnsbl_names(&c, 1 | 2 | 8, buf, 4), "...") == 0);
	/* no zones: nothing is refused, whatever the score */
	load(&c, "domain example.org\n");
	CHECK(!dnsbl_refused(&c, 1000));
}

static void test_cache(void)
{
	static struct dnsbl_cache_slot slots[64];
	struct dnsbl_cache c;
	struct ipaddr a = ip("192.0.2.1"), b = ip("192.0.2.2"), v6 = ip("2001:db8::1");
	const int64_t t0 = 1000000;

	dnsbl_cache_init(&c, slots, 64);
	CHECK(dnsbl_cache_get(&c, 0, &a, t0) == -1);
	dnsbl_cache_put(&c, 0, &a, 1, t0, 10);
	dnsbl_cache_put(&c, 1, &a, 0, t0, 5);
	dnsbl_cache_put(&c, 0, &v6, 0, t0, 10);
	/* per zone and address */
	CHECK(dnsbl_cache_get(&c, 0, &a, t0) == 1);
	CHECK(dnsbl_cache_get(&c, 1, &a, t0) == 0);
	CHECK(dnsbl_cache_get(&c, 2, &a, t0) == -1);
	CHECK(dnsbl_cache_get(&c, 0, &b, t0) == -1);
	CHECK(dnsbl_cache_get(&c, 0, &v6, t0) == 0);
	/* expiry to the millisecond: valid while now < put + ttl */
	CHECK(dnsbl_cache_get(&c, 1, &a, t0 + 4999) == 0);
	CHECK(dnsbl_cache_get(&c, 1, &a, t0 + 5000) == -1);
	CHECK(dnsbl_cache_get(&c, 0, &a, t0 + 9999) == 1);
	CHECK(dnsbl_cache_get(&c, 0, &a, t0 + 10000) == -1);
	/* a new answer replaces the old */
	dnsbl_cache_put(&c, 0, &a, 0, t0 + 20000, 1);
	CHECK(dnsbl_cache_get(&c, 0, &a, t0 + 20000) == 0);
	/* TTL 0 is not cached (and does not erase) */
	dnsbl_cache_put(&c, 0, &b, 1, t0, 0);
	CHECK(dnsbl_cache_get(&c, 0, &b, t0) == -1);
	/* a TTL over a day is a day */
	dnsbl_cache_put(&c, 3, &b, 1, t0, UINT32_MAX);
	CHECK(dnsbl_cache_get(&c, 3, &b, t0 + 86399999) == 1);
	CHECK(dnsbl_cache_get(&c, 3, &b, t0 + 86400000) == -1);
	/* no slots: nothing cached, nothing breaks */
	dnsbl_cache_init(&c, NULL, 0);
	dnsbl_cache_put(&c, 0, &a, 1, t0, 10);
	CHECK(dnsbl_cache_get(&c, 0, &a, t0) == -1);
}

/* Many more keys than slots: a get says -1 or the truth, never a lie, and
 * the key just put is always there. */
static void test_cache_eviction(void)
{
	static struct dnsbl_cache_slot slots[13];
	struct dnsbl_cache c;
	int found = 0;

	dnsbl_cache_init(&c, slots, 13);
	for (unsigned k = 0; k < 2000; k++) {
		struct ipaddr a = { IP_V4, { 10, (uint8_t)(k >> 8), (uint8_t)k, 1 } };

		dnsbl_cache_put(&c, k % 3, &a, (int)(k & 1), 1000, 60 + k % 7);
		CHECKF(dnsbl_cache_get(&c, k % 3, &a, 1000) == (int)(k & 1), "key %u", k);
	}
	for (unsigned k = 0; k < 2000; k++) {
		struct ipaddr a = { IP_V4, { 10, (uint8_t)(k >> 8), (uint8_t)k, 1 } };
		int got = dnsbl_cache_get(&c, k % 3, &a, 1000);

		CHECKF(got == -1 || got == (int)(k & 1), "key %u: %d", k, got);
		found += got != -1;
	}
	CHECK(found > 0 && found <= 13);
	/* expired slots are taken before live ones */
	{
		struct ipaddr old = ip("198.51.100.1"), fresh = ip("198.51.100.2");

		dnsbl_cache_init(&c, slots, 1);
		dnsbl_cache_put(&c, 0, &old, 1, 0, 1);
		dnsbl_cache_put(&c, 0, &fresh, 1, 5000, 1);
		CHECK(dnsbl_cache_get(&c, 0, &fresh, 5000) == 1);
		CHECK(dnsbl_cache_get(&c, 0, &old, 500) == -1);
	}
}

int main(void)
{
	RUN(test_spec);
	RUN(test_spec_limits);
	RUN(test_query_name);
	RUN(test_answer_filter);
	RUN(test_score);
	RUN(test_cache);
	RUN(test_cache_eviction);
	return t_main_end();
}
