/*
 * tests/unit/test_mtasts.c -- MTA-STS records, policies and decisions
 * (policy/mtasts.c).
 *
 * Texts are parsed from heap copies of exactly their length (ASan sees a
 * read past the end), whole, at every truncation (which must fail or give
 * what a shorter text says, never read beyond it) and with bytes
 * changed.  The policy texts follow RFC 8461's own examples.
 */
#include <stdlib.h>

#include "policy/mtasts.h"
#include "tests/unit/t.h"

static int txt(const char *s, char id[MTASTS_ID_MAX + 1])
{
	size_t n = strlen(s);
	char *b = malloc(n ? n : 1);
	int r;

	memcpy(b, s, n);
	r = mtasts_txt_parse(b, n, id);
	free(b);
	return r;
}

static int pol_n(const char *s, size_t n, struct mtasts_policy *p, const char **why)
{
	char *b = malloc(n ? n : 1);
	int r;

	memcpy(b, s, n);
	r = mtasts_policy_parse(b, n, p, why);
	free(b);
	return r;
}

static int pol(const char *s, struct mtasts_policy *p, const char **why)
{
	return pol_n(s, strlen(s), p, why);
}

static void test_txt_parse(void)
{
	char id[MTASTS_ID_MAX + 1];
	static const char *const good[][2] = {
		{ "v=STSv1; id=20160831085700Z;", "20160831085700Z" },  /* RFC 8461 3.1 */
		{ "v=STSv1;id=abc", "abc" },
		{ "v=STSv1 ; id=a1 ; ext=some.value-x ;  ", "a1" },
		{ "v=STSv1;\tfoo=bar;id=Z9", "Z9" },
		{ "v=STSv1; id=12345678901234567890123456789012", "12345678901234567890123456789012" },
	};
	static const char *const bad[] = {
		"", "v=STSv1", "v=STSv1;", "v=STSv1; ", "v=STSv2; id=a", "V=STSv1; id=a",
		"v=STSv1x; id=a", " v=STSv1; id=a", "v=STSv1; id=", "v=STSv1; id=a-b",
		"v=STSv1; id=123456789012345678901234567890123", "v=STSv1; id=a; id=b",
		"v=STSv1; id=a; x", "v=STSv1; id=a; =b", "v=STSv1; id=a b", "v=STSv1 id=a",
		"v=STSv1; id=a;; x=y", "v=STSv1; x=y", "v=STSv1; id=a; x=a=b", "v=STSv1; id=a; _x=y",
		"v=STSv1; id=a; x=\x7f",
	};

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		CHECKF(txt(good[i][0], id) == 0 && strcmp(id, good[i][1]) == 0, "%s", good[i][0]);
		/* Every shorter prefix is refused or reads the same id or a
		 * prefix of it (the id's own truncations are ids too). */
		for (size_t k = 0; k < strlen(good[i][0]); k++) {
			char pre[128];
			memcpy(pre, good[i][0], k);
			pre[k] = '\0';
			if (txt(pre, id) == 0)
				CHECKF(strncmp(good[i][1], id, strlen(id)) == 0, "%s at %zu", good[i][0], k);
		}
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECKF(txt(bad[i], id) == -1 && id[0] == '\0', "%s", bad[i]);
	/* A NUL inside is refused. */
	CHECK(mtasts_txt_parse("v=STSv1; id=a\0b", 15, id) == -1);
	CHECK(mtasts_txt_parse("v=STSv1; id=ab\0", 15, id) == -1);
}

static void set_add(struct dns_txt_set *s, const char *t)
{
	struct dns_txt *r = &s->r[s->n++];

	r->len = (uint16_t)strlen(t);
	memcpy(r->text, t, r->len + 1);
}

static void test_txt_select(void)
{
	static struct dns_txt_set s;
	char id[MTASTS_ID_MAX + 1];

	memset(&s, 0, sizeof s);
	CHECK(mtasts_txt_select(&s, id) == MTASTS_TXT_NONE);
	set_add(&s, "v=spf1 -all");
	set_add(&s, "v=STSv10; id=x");   /* not an STS record: discarded */
	CHECK(mtasts_txt_select(&s, id) == MTASTS_TXT_NONE);
	set_add(&s, "v=STSv1; id=abc;");
	CHECK(mtasts_txt_select(&s, id) == MTASTS_TXT_FOUND && strcmp(id, "abc") == 0);
	set_add(&s, "v=STSv1; id=def;");
	CHECK(mtasts_txt_select(&s, id) == MTASTS_TXT_INVALID && id[0] == '\0');
	memset(&s, 0, sizeof s);
	set_add(&s, "v=STSv1; id=a-b;");
	CHECK(mtasts_txt_select(&s, id) == MTASTS_TXT_INVALID);
	memset(&s, 0, sizeof s);
	set_add(&s, "v=STSv1");
	CHECK(mtasts_txt_select(&s, id) == MTASTS_TXT_INVALID);
	memset(&s, 0, sizeof s);
	set_add(&s, "v=STSv1; id=abc;");
	s.r[0].truncated = 1;
	CHECK(mtasts_txt_select(&s, id) == MTASTS_TXT_INVALID);
}

static const char rfc_policy[] =
	"version: STSv1\r\n"
	"mode: enforce\r\n"
	"mx: mail.example.com\r\n"
	"mx: *.example.net\r\n"
	"mx: backupmx.example.com\r\n"
	"max_age: 604800\r\n";

static void test_policy_good(void)
{
	struct mtasts_policy p;
	const char *why;
	char lf[sizeof rfc_policy];
	size_t n = 0;

	CHECK(pol(rfc_policy, &p, &why) == 0);
	CHECK(p.mode == MTASTS_MODE_ENFORCE && p.max_age == 604800 && p.nmx == 3);
	CHECK(strcmp(p.mx[0], "mail.example.com") == 0 && strcmp(p.mx[1], "*.example.net") == 0);
	CHECK(strcmp(p.mx[2], "backupmx.example.com") == 0 && p.mx_dropped == 0);
	/* The same with LF line ends, and without the last line end. */
	for (const char *s = rfc_policy; *s; s++)
		if (*s != '\r')
			lf[n++] = *s;
	CHECK(pol_n(lf, n, &p, &why) == 0 && p.nmx == 3 && p.max_age == 604800);
	CHECK(pol_n(lf, n - 1, &p, &why) == 0 && p.nmx == 3 && p.max_age == 604800);
	/* Any order, blanks, blank lines, unknown keys, upper-case mx. */
	CHECK(pol("\n  max_age :  86400  \n\nmx:MX1.Example.ORG.\nfoo.bar: anything: at all\n"
	          "mode:testing\t\nversion: STSv1\n\n", &p, &why) == 0);
	CHECK(p.mode == MTASTS_MODE_TESTING && p.max_age == 86400 && p.nmx == 1);
	CHECK(strcmp(p.mx[0], "mx1.example.org") == 0);
	/* mode none needs no mx; max_age 0 and the maximum. */
	CHECK(pol("version: STSv1\nmode: none\nmax_age: 0\n", &p, &why) == 0);
	CHECK(p.mode == MTASTS_MODE_NONE && p.nmx == 0 && p.max_age == 0);
	CHECK(pol("version: STSv1\nmode: none\nmax_age: 0031557600\n", &p, &why) == 0);
	CHECK(p.max_age == MTASTS_MAX_AGE_MAX);
	/* UTF-8 in an extension's value is fine. */
	CHECK(pol("version: STSv1\nmode: none\nmax_age: 1\nnote: caf\xc3\xa9\n", &p, &why) == 0);
}

static void test_policy_bad(void)
{
	static const char *const bad[] = {
		"",
		"mode: enforce\nmx: a.example\nmax_age: 1\n",                 /* no version */
		"version: STSv1\nmx: a.example\nmax_age: 1\n",                /* no mode */
		"version: STSv1\nmode: enforce\nmx: a.example\n",             /* no max_age */
		"version: STSv1\nmode: enforce\nmax_age: 1\n",                /* no mx */
		"version: STSv1\nversion: STSv1\nmode: none\nmax_age: 1\n",
		"version: STSv1\nmode: none\nmode: none\nmax_age: 1\n",
		"version: STSv1\nmode: none\nmax_age: 1\nmax_age: 1\n",
		"version: STSv2\nmode: none\nmax_age: 1\n",
		"version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 1\n",
		"version: STSv1\nmode: none\nmax_age: 31557601\n",
		"version: STSv1\nmode: none\nmax_age: 12345678901\n",
		"version: STSv1\nmode: none\nmax_age: -1\n",
		"version: STSv1\nmode: none\nmax_age: \n",
		"version: STSv1\nmode: none\nmax_age: 1 2\n",
		"version: STSv1\nmode: enforce\nmx: \nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: *\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: *.\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: a.*.example\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: **.example\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: a b.example\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: a..example\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: a.example..\nmax_age: 1\n",
		"version: STSv1\nmode: none\nmax_age: 1\nno colon here\n",
		"version: STSv1\nmode: none\nmax_age: 1\n: value\n",
		"version: STSv1\nmode: none\nmax_age: 1\nbad key: v\n",
		"version: STSv1\rmode: none\nmax_age: 1\n",                   /* bare CR */
		"version: STSv1\nmode: none\nmax_age: 1\r",
		"version: STSv1\nmode: none\nmax_age: 1\nx: \x01\n",
		"<html><body>hello</body></html>\n",
	};
	struct mtasts_policy p;
	const char *why;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CHECKF(pol(bad[i], &p, &why) == -1 && why != NULL, "%zu: %s", i, bad[i]);
		CHECK(p.nmx == 0 && p.mode == 0 && p.max_age == 0);
	}
	CHECK(pol_n("version: STSv1\nmode: none\nmax_age: 1\nx: a\0b\n", 44, &p, &why) == -1);
}

/* The 64 KiB bound, exactly; more mx patterns than are kept. */
static void test_policy_bounds(void)
{
	static char big[MTASTS_POLICY_MAX + 2];
	static const char head[] = "version: STSv1\nmode: enforce\nmax_age: 86400\n";
	struct mtasts_policy p;
	const char *why;
	size_t n = sizeof head - 1;

	memcpy(big, head, n);
	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(big + n, sizeof big - n, "mx: mx%d.example.com\n", i);
	while (n < MTASTS_POLICY_MAX - 1)
		big[n++] = '\n';
	big[n++] = '\n';
	CHECK(n == MTASTS_POLICY_MAX);
	CHECK(pol_n(big, n, &p, &why) == 0);
	CHECK(p.nmx == MTASTS_MX_MAX && p.mx_dropped == 40 - MTASTS_MX_MAX);
	CHECK(strcmp(p.mx[MTASTS_MX_MAX - 1], "mx31.example.com") == 0);
	/* Dropped patterns are refused hosts. */
	CHECK(mtasts_mx_allowed(&p, "mx31.example.com") && !mtasts_mx_allowed(&p, "mx32.example.com"));
	big[n++] = '\n';
	CHECK(pol_n(big, n, &p, &why) == -1 && strstr(why, "64 KiB") != NULL);
}

/* Every prefix and every changed byte of a good policy: no read out of
 * bounds, and a prefix that parses says no more than the whole. */
static void test_policy_torture(void)
{
	struct mtasts_policy p, whole;
	const char *why;
	size_t n = sizeof rfc_policy - 1;
	char t[sizeof rfc_policy];

	CHECK(pol(rfc_policy, &whole, &why) == 0);
	for (size_t k = 0; k < n; k++) {
		if (pol_n(rfc_policy, k, &p, &why) == 0) {
			CHECK(p.nmx <= whole.nmx);
			for (size_t i = 0; i < p.nmx; i++)
				CHECK(strncmp(whole.mx[i], p.mx[i], strlen(p.mx[i])) == 0);
		} else {
			CHECK(why != NULL);
		}
	}
	for (size_t k = 0; k < n; k++) {
		static const char vals[] = { 0, '\r', '\n', ':', ' ', '*', 'x', '9', (char)0xff };
		for (size_t v = 0; v < sizeof vals; v++) {
			memcpy(t, rfc_policy, n);
			t[k] = vals[v];
			if (pol_n(t, n, &p, &why) == 0)
				CHECK(p.nmx >= 1 && p.nmx <= 3);
		}
	}
}

static void test_format(void)
{
	struct mtasts_policy p, q;
	const char *why;
	char buf[1024], small[20];
	size_t n;

	CHECK(pol(rfc_policy, &p, &why) == 0);
	n = mtasts_policy_format(&p, buf, sizeof buf);
	CHECK(n == strlen(buf));
	CHECK(strcmp(buf, "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\n"
	                  "mx: backupmx.example.com\nmax_age: 604800\n") == 0);
	CHECK(pol(buf, &q, &why) == 0 && memcmp(&p, &q, sizeof p) == 0);
	CHECK(mtasts_policy_format(&p, small, sizeof small) == n);
	CHECK(strlen(small) == sizeof small - 1 && strncmp(small, buf, sizeof small - 1) == 0);
	CHECK(pol("version: STSv1\nmode: none\nmax_age: 0\n", &p, &why) == 0);
	CHECK(mtasts_policy_format(&p, buf, sizeof buf) == 37);
	CHECK(strcmp(buf, "version: STSv1\nmode: none\nmax_age: 0\n") == 0);
	CHECK(strcmp(mtasts_mode_name(9), "?") == 0);
}

static void test_mx_match(void)
{
	static const struct { const char *pat, *host; int want; } cases[] = {
		{ "mail.example.com", "mail.example.com", 1 },
		{ "mail.example.com", "MAIL.Example.COM.", 1 },
		{ "mail.example.com", "mail.example.co", 0 },
		{ "mail.example.com", "xmail.example.com", 0 },
		{ "*.example.net", "mx1.example.net", 1 },     /* RFC 8461 4.1 */
		{ "*.example.net", "MX1.EXAMPLE.NET.", 1 },
		{ "*.example.net", "example.net", 0 },
		{ "*.example.net", "a.mx1.example.net", 0 },
		{ "*.example.net", ".example.net", 0 },
		{ "*.example.net", "mx1.example.org", 0 },
		{ "*.example.net", "mx1example.net", 0 },
		{ "*.net", "example.net", 1 },
		{ "*.example.net", "", 0 },
		{ "", "a", 0 },
		{ "a.b.", "A.B", 1 },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		CHECKF(mtasts_mx_match(cases[i].pat, cases[i].host) == cases[i].want, "%s ~ %s",
		       cases[i].pat, cases[i].host);
}

static void test_verdict(void)
{
	struct mtasts_policy p;
	const char *why;

	CHECK(pol(rfc_policy, &p, &why) == 0);
	CHECK(mtasts_mx_allowed(&p, "mail.example.com"));
	CHECK(mtasts_mx_allowed(&p, "x.example.net"));
	CHECK(!mtasts_mx_allowed(&p, "evil.example.org"));
	CHECK(mtasts_verdict(&p, MTASTS_OK) == MTASTS_DELIVER);
	for (int f = MTASTS_F_MX_MISMATCH; f <= MTASTS_F_CERT_EXPIRED; f++)
		CHECK(mtasts_verdict(&p, (enum mtasts_failure)f) == MTASTS_DEFER);
	p.mode = MTASTS_MODE_TESTING;
	CHECK(!mtasts_mx_allowed(&p, "evil.example.org"));
	for (int f = MTASTS_F_MX_MISMATCH; f <= MTASTS_F_CERT_EXPIRED; f++)
		CHECK(mtasts_verdict(&p, (enum mtasts_failure)f) == MTASTS_REPORT);
	CHECK(mtasts_verdict(&p, MTASTS_OK) == MTASTS_DELIVER);
	p.mode = MTASTS_MODE_NONE;
	CHECK(mtasts_mx_allowed(&p, "evil.example.org"));
	for (int f = MTASTS_OK; f <= MTASTS_F_CERT_EXPIRED; f++)
		CHECK(mtasts_verdict(&p, (enum mtasts_failure)f) == MTASTS_DELIVER);
}

static void test_plan(void)
{
	struct mtasts_cached c;
	const int64_t t0 = 1700000000;

	memset(&c, 0, sizeof c);
	memcpy(c.id, "abc", 4);
	c.fetched_at = t0;
	c.policy.mode = MTASTS_MODE_ENFORCE;
	c.policy.max_age = 7 * 86400;

	/* Nothing cached. */
	CHECK(mtasts_plan(NULL, MTASTS_LOOKUP_FOUND, "abc", t0) == MTASTS_FETCH);
	CHECK(mtasts_plan(NULL, MTASTS_LOOKUP_NONE, NULL, t0) == MTASTS_NO_POLICY);
	CHECK(mtasts_plan(NULL, MTASTS_LOOKUP_TEMPFAIL, NULL, t0) == MTASTS_NO_POLICY);
	CHECK(mtasts_fetch_failed(NULL, t0) == MTASTS_NO_POLICY);
	/* Fresh and the same id: used; a day old: fetched again. */
	CHECK(mtasts_plan(&c, MTASTS_LOOKUP_FOUND, "abc", t0 + 10) == MTASTS_USE_CACHED);
	CHECK(mtasts_plan(&c, MTASTS_LOOKUP_FOUND, "abc", t0 + MTASTS_REFRESH - 1) ==
	      MTASTS_USE_CACHED);
	CHECK(mtasts_plan(&c, MTASTS_LOOKUP_FOUND, "abc", t0 + MTASTS_REFRESH) == MTASTS_FETCH);
	/* A new id: fetch; the fetch fails: the cached policy stands. */
	CHECK(mtasts_plan(&c, MTASTS_LOOKUP_FOUND, "abd", t0 + 10) == MTASTS_FETCH);
	CHECK(mtasts_fetch_failed(&c, t0 + 10) == MTASTS_USE_CACHED);
	/* The record is gone or the DNS fails: the cached policy stands. */
	CHECK(mtasts_plan(&c, MTASTS_LOOKUP_NONE, NULL, t0 + 10) == MTASTS_USE_CACHED);
	CHECK(mtasts_plan(&c, MTASTS_LOOKUP_TEMPFAIL, NULL, t0 + 10) == MTASTS_USE_CACHED);
	/* Expired at fetched_at + max_age exactly. */
	CHECK(mtasts_cache_fresh(&c, t0 + 7 * 86400 - 1));
	CHECK(!mtasts_cache_fresh(&c, t0 + 7 * 86400));
	CHECK(mtasts_plan(&c, MTASTS_LOOKUP_NONE, NULL, t0 + 7 * 86400) == MTASTS_NO_POLICY);
	CHECK(mtasts_plan(&c, MTASTS_LOOKUP_FOUND, "abc", t0 + 7 * 86400) == MTASTS_FETCH);
	CHECK(mtasts_fetch_failed(&c, t0 + 7 * 86400) == MTASTS_NO_POLICY);
	/* The clock went back a little: still fresh; far: not. */
	CHECK(mtasts_cache_fresh(&c, t0 - 3600));
	CHECK(!mtasts_cache_fresh(&c, t0 - 2 * 86400));
	/* Hostile records from disk: absurd times and ages are not fresh. */
	c.fetched_at = INT64_MAX;
	CHECK(!mtasts_cache_fresh(&c, t0));
	c.fetched_at = INT64_MIN;
	CHECK(!mtasts_cache_fresh(&c, t0));
	c.fetched_at = t0;
	CHECK(!mtasts_cache_fresh(&c, INT64_MAX) && !mtasts_cache_fresh(&c, -1));
	c.policy.max_age = MTASTS_MAX_AGE_MAX + 1;
	CHECK(!mtasts_cache_fresh(&c, t0));
}

int main(void)
{
	RUN(test_txt_parse);
	RUN(test_txt_select);
	RUN(test_policy_good);
	RUN(test_policy_bad);
	RUN(test_policy_bounds);
	RUN(test_policy_torture);
	RUN(test_format);
	RUN(test_mx_match);
	RUN(test_verdict);
	RUN(test_plan);
	return t_main_end();
}
