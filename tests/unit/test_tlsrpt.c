/*
 * tests/unit/test_tlsrpt.c -- TLS reporting (policy/tlsrpt.c): the day's
 * aggregation, the JSON report, the _smtp._tls record and its mailto:
 * URIs.
 *
 * The JSON is checked by another parser: python's json module (strict:
 * no control characters in strings) loads each report written here and
 * asserts its fields, including strings full of quotes, backslashes,
 * control bytes and broken UTF-8, which must come back as the text they
 * were (U+FFFD for the bytes that are not UTF-8).
 */
#include "tests/unit/t.h"

#include <stdlib.h>
#include <unistd.h>

#include "policy/mtasts.h"
#include "policy/tlsrpt.h"

#define DAY0 1700006400     /* 2023-11-15 00:00:00 UTC */

static const char sts_policy[] =
	"version: STSv1\nmode: testing\nmx: *.mail.company-y.example\nmax_age: 86400\n";

/* Write json to a file and run python on it with the checks in py (a
 * script body where d is the loaded report).  1 if python says all is
 * well; quiet: python's complaints go to /dev/null (a failure expected). */
static int python_run(const char *json, const char *py, int quiet)
{
	char path[] = "/tmp/moat-tlsrpt-XXXXXX";
	char cmd[8192];
	int fd = mkstemp(path), ok;
	FILE *f;

	if (fd < 0 || (f = fdopen(fd, "w")) == NULL)
		return 0;
	fputs(json, f);
	fclose(f);
	snprintf(cmd, sizeof cmd,
	         "/usr/bin/python3 -c 'import json,sys\n"
	         "d = json.load(open(sys.argv[1], encoding=\"utf-8\", errors=\"strict\"))\n"
	         "%s\n' '%s'%s", py, path, quiet ? " 2>/dev/null" : "");
	ok = system(cmd) == 0;
	unlink(path);
	return ok;
}

static int python_checks(const char *json, const char *py)
{
	return python_run(json, py, 0);
}

static void test_day(void)
{
	CHECK(tlsrpt_day(0) == 0 && tlsrpt_day(86399) == 0 && tlsrpt_day(86400) == 86400);
	CHECK(tlsrpt_day(-1) == -86400 && tlsrpt_day(-86400) == -86400);
	CHECK(tlsrpt_day(DAY0 + 12345) == DAY0);
}

static void test_aggregate(void)
{
	static struct tlsrpt_report r;
	struct tlsrpt_policy_in sts = { TLSRPT_POLICY_STS, sts_policy, "*.mail.company-y.example" };
	struct tlsrpt_policy_in none = { TLSRPT_POLICY_NONE, "", "" };
	struct tlsrpt_failure_in exp = { TLSRPT_CERTIFICATE_EXPIRED, "2001:db8:abcd:0012::1", "",
	                                 "mx1.mail.company-y.example", "", "" };
	struct tlsrpt_failure_in f = exp;

	CHECK(tlsrpt_init(&r, "bad domain", DAY0) == -1);
	CHECK(tlsrpt_init(&r, "Company-Y.Example.", DAY0 + 5) == 0);
	CHECK(strcmp(r.domain, "company-y.example") == 0 && r.day == DAY0);
	for (int i = 0; i < 5; i++)
		CHECK(tlsrpt_add(&r, &sts, NULL, DAY0 + i) == 0);
	CHECK(tlsrpt_add(&r, &sts, &exp, DAY0 + 10) == 0);
	CHECK(tlsrpt_add(&r, &sts, &exp, DAY0 + 86399) == 0);
	f.result = TLSRPT_STARTTLS_NOT_SUPPORTED;
	CHECK(tlsrpt_add(&r, &sts, &f, DAY0 + 11) == 0);
	CHECK(tlsrpt_add(&r, &none, NULL, DAY0 + 12) == 0);
	CHECK(r.npolicies == 2 && r.policies[0].successes == 5 && r.policies[0].failures == 3);
	CHECK(r.policies[0].ndetails == 2 && r.policies[0].details[0].count == 2);
	CHECK(r.policies[0].details[1].count == 1 && r.policies[1].successes == 1);
	/* Another day, an unknown result or type: refused, nothing counted. */
	CHECK(tlsrpt_add(&r, &sts, NULL, DAY0 + 86400) == -1);
	CHECK(tlsrpt_add(&r, &sts, NULL, DAY0 - 1) == -1);
	f.result = TLSRPT_RESULT_COUNT;
	CHECK(tlsrpt_add(&r, &sts, &f, DAY0) == -1);
	none.type = 3;
	CHECK(tlsrpt_add(&r, &none, NULL, DAY0) == -1);
	CHECK(r.policies[0].successes == 5 && r.policies[0].failures == 3);
	/* Past the caps: counted in the totals, not itemized. */
	f = exp;
	for (int i = 0; i < TLSRPT_DETAILS_MAX + 3; i++) {
		char ip[32];
		snprintf(ip, sizeof ip, "192.0.2.%d", i);
		f.receiving_ip = ip;
		CHECK(tlsrpt_add(&r, &sts, &f, DAY0) == (i < TLSRPT_DETAILS_MAX - 2 ? 0 : 1));
	}
	CHECK(r.policies[0].ndetails == TLSRPT_DETAILS_MAX && r.policies[0].details_dropped == 5);
	CHECK(r.policies[0].failures == 3 + TLSRPT_DETAILS_MAX + 3);
	{
		struct tlsrpt_policy_in other = { TLSRPT_POLICY_TLSA, "3 1 1 00", "" };
		CHECK(tlsrpt_add(&r, &other, NULL, DAY0) == 0);
		other.strings = "3 1 1 01";
		CHECK(tlsrpt_add(&r, &other, NULL, DAY0) == 1 && r.sessions_dropped == 1);
		CHECK(r.npolicies == TLSRPT_POLICIES_MAX);
	}
}

/* Long strings are cut at a character boundary, never in a sequence. */
static void test_cut(void)
{
	static struct tlsrpt_report r;
	struct tlsrpt_policy_in none = { TLSRPT_POLICY_NONE, "", "" };
	struct tlsrpt_failure_in f = { TLSRPT_VALIDATION_FAILURE, "", "", "", "", NULL };
	char reason[300];
	size_t n = 0;

	while (n + 3 < sizeof reason) {   /* "é" is 2 bytes, "€" 3 */
		memcpy(reason + n, n % 5 ? "\xc3\xa9" : "\xe2\x82\xac", n % 5 ? 2 : 3);
		n += n % 5 ? 2 : 3;
	}
	reason[n] = '\0';
	f.reason = reason;
	CHECK(tlsrpt_init(&r, "example.org", DAY0) == 0);
	CHECK(tlsrpt_add(&r, &none, &f, DAY0) == 0);
	n = strlen(r.policies[0].details[0].reason);
	CHECK(n <= TLSRPT_REASON_MAX - 1 && n >= TLSRPT_REASON_MAX - 3);
	CHECK(memcmp(r.policies[0].details[0].reason, reason, n) == 0 && (reason[n] & 0xc0) != 0x80);
}

static void test_json(void)
{
	static struct tlsrpt_report r;
	static char buf[65536];
	struct tlsrpt_policy_in sts = { TLSRPT_POLICY_STS, sts_policy, "*.mail.company-y.example" };
	struct tlsrpt_failure_in exp = { TLSRPT_CERTIFICATE_EXPIRED, "2001:db8:abcd:0012::1", "",
	                                 "mx1.mail.company-y.example", "", "" };
	struct tlsrpt_failure_in nosts = { TLSRPT_STARTTLS_NOT_SUPPORTED, "2001:db8:abcd:0013::1",
	                                   "203.0.113.56", "mx2.mail.company-y.example",
	                                   "mx2.example", "no STARTTLS in EHLO" };
	struct tlsrpt_meta m = { "Company-X", "sts-reporting@company-x.example",
	                         "5065427c-23d3-47ca-b6e0-946ea0e8c4be" };
	size_t n;

	/* The checker itself fails when it should. */
	CHECK(!python_run("{}", "assert d == 1", 1));
	CHECK(!python_run("{\"a\": \"\x01\"}", "pass", 1));
	CHECK(python_checks("{}", "assert d == {}"));
	CHECK(tlsrpt_init(&r, "company-y.example", DAY0) == 0);
	for (int i = 0; i < 5326; i++)
		tlsrpt_add(&r, &sts, NULL, DAY0);
	for (int i = 0; i < 100; i++)
		tlsrpt_add(&r, &sts, &exp, DAY0);
	for (int i = 0; i < 200; i++)
		tlsrpt_add(&r, &sts, &nosts, DAY0);
	n = tlsrpt_json(&r, &m, buf, sizeof buf);
	CHECK(n == strlen(buf) && n < sizeof buf);
	{
		static const char head[] = "{\"organization-name\": \"Company-X\", \"date-range\": "
			"{\"start-datetime\": \"2023-11-15T00:00:00Z\", \"end-datetime\": "
			"\"2023-11-15T23:59:59Z\"}, ";
		CHECK(strncmp(buf, head, sizeof head - 1) == 0);
	}
	CHECK(python_checks(buf,
		"assert d[\"organization-name\"] == \"Company-X\"\n"
		"assert d[\"contact-info\"] == \"sts-reporting@company-x.example\"\n"
		"assert d[\"report-id\"] == \"5065427c-23d3-47ca-b6e0-946ea0e8c4be\"\n"
		"assert d[\"date-range\"] == {\"start-datetime\": \"2023-11-15T00:00:00Z\", "
		"\"end-datetime\": \"2023-11-15T23:59:59Z\"}\n"
		"p = d[\"policies\"]\n"
		"assert len(p) == 1\n"
		"assert p[0][\"policy\"] == {\"policy-type\": \"sts\", \"policy-string\": "
		"[\"version: STSv1\", \"mode: testing\", \"mx: *.mail.company-y.example\", "
		"\"max_age: 86400\"], \"policy-domain\": \"company-y.example\", "
		"\"mx-host\": [\"*.mail.company-y.example\"]}\n"
		"assert p[0][\"summary\"] == {\"total-successful-session-count\": 5326, "
		"\"total-failure-session-count\": 300}\n"
		"f = p[0][\"failure-details\"]\n"
		"assert f[0] == {\"result-type\": \"certificate-expired\", \"sending-mta-ip\": "
		"\"2001:db8:abcd:0012::1\", \"receiving-mx-hostname\": \"mx1.mail.company-y.example\", "
		"\"failed-session-count\": 100}, f[0]\n"
		"assert f[1] == {\"result-type\": \"starttls-not-supported\", \"sending-mta-ip\": "
		"\"2001:db8:abcd:0013::1\", \"receiving-mx-hostname\": \"mx2.mail.company-y.example\", "
		"\"receiving-mx-helo\": \"mx2.example\", \"receiving-ip\": \"203.0.113.56\", "
		"\"failure-reason-code\": \"no STARTTLS in EHLO\", \"failed-session-count\": 200}, f[1]\n"));
	/* Cut short like snprintf: the same prefix, NUL-terminated. */
	{
		char small[50];
		CHECK(tlsrpt_json(&r, &m, small, sizeof small) == n);
		CHECK(strlen(small) == sizeof small - 1 && memcmp(small, buf, sizeof small - 1) == 0);
		CHECK(tlsrpt_json(&r, &m, small, 0) == n);
	}
	/* No sessions at all: an empty list of policies. */
	CHECK(tlsrpt_init(&r, "empty.example", 0) == 0);
	tlsrpt_json(&r, &m, buf, sizeof buf);
	CHECK(python_checks(buf, "assert d[\"policies\"] == []\n"
	                         "assert d[\"date-range\"][\"start-datetime\"] == \"1970-01-01T00:00:00Z\"\n"));
	CHECK(tlsrpt_init(&r, "leap.example", 951782400 + 3600) == 0);   /* 2000-02-29 */
	tlsrpt_json(&r, &m, buf, sizeof buf);
	CHECK(strstr(buf, "\"2000-02-29T00:00:00Z\"") && strstr(buf, "\"2000-02-29T23:59:59Z\""));
}

/* Strings with everything JSON must escape, and bytes that are not UTF-8. */
static void test_json_hostile(void)
{
	static struct tlsrpt_report r;
	static char buf[65536];
	struct tlsrpt_policy_in tlsa = { TLSRPT_POLICY_TLSA, "3 1 1 \"quoted\"\\\nline\ttwo\x01",
	                                 "" };
	struct tlsrpt_failure_in f = { TLSRPT_TLSA_INVALID, "", "", "mx.example",
	                               "caf\xc3\xa9 \xf0\x9f\x93\xa7 \xff \xc0\x80 \xed\xa0\x80 \xe2\x82",
	                               "\x7f\x1f</script>" };
	struct tlsrpt_meta m = { "Org \"Q\" \\ \n", "a\x02" "b", "\xc3" };

	CHECK(tlsrpt_init(&r, "example.net", DAY0) == 0);
	CHECK(tlsrpt_add(&r, &tlsa, &f, DAY0) == 0);
	tlsrpt_json(&r, &m, buf, sizeof buf);
	CHECK(strchr(buf, '\x01') == NULL && strchr(buf, '\x7f') == NULL);
	CHECK(python_checks(buf,
		"assert d[\"organization-name\"] == \"Org \\\"Q\\\" \\\\ \\n\", d[\"organization-name\"]\n"
		"assert d[\"contact-info\"] == \"a\\x02b\"\n"
		"assert d[\"report-id\"] == \"\\ufffd\"\n"
		"p = d[\"policies\"][0]\n"
		"assert p[\"policy\"][\"policy-string\"] == [\"3 1 1 \\\"quoted\\\"\\\\\", "
		"\"line\\ttwo\\x01\"], p\n"
		"assert \"mx-host\" not in p[\"policy\"]\n"
		"x = p[\"failure-details\"][0]\n"
		"assert x[\"receiving-mx-helo\"] == \"caf\\u00e9 \\U0001f4e7 \\ufffd \\ufffd\\ufffd "
		"\\ufffd\\ufffd\\ufffd \\ufffd\\ufffd\", ascii(x[\"receiving-mx-helo\"])\n"
		"assert x[\"failure-reason-code\"] == \"\\x7f\\x1f</script>\"\n"
		"assert x[\"result-type\"] == \"tlsa-invalid\"\n"));
}

static void test_txt(void)
{
	struct tlsrpt_rua u;
	static const char *const bad[] = {
		"", "v=TLSRPTv1", "v=TLSRPTv1;", "v=TLSRPTv2; rua=mailto:a@b.c", "V=TLSRPTv1;rua=mailto:a@b.c",
		"v=TLSRPTv1; rua=", "v=TLSRPTv1; rua=mailto:a@b.c; rua=mailto:d@e.f",
		"v=TLSRPTv1; rua=mailto:a@b.c,", "v=TLSRPTv1; rua=mailto:a@b.c, ,mailto:d@e.f",
		"v=TLSRPTv1; rua=mailto:a@b.c; x", "v=TLSRPTv1; rua=mailto:a@b.c; _x=1",
		"v=TLSRPTv1 rua=mailto:a@b.c", "v=TLSRPTv1x; rua=mailto:a@b.c",
		"v=TLSRPTv1; rua=mailto:a@b.c mailto:d@e.f",
	};

	/* RFC 8460 3's examples. */
	CHECK(tlsrpt_txt_parse("v=TLSRPTv1;rua=mailto:reports@example.com", 41, &u) == 0);
	CHECK(u.n == 1 && strcmp(u.uri[0], "mailto:reports@example.com") == 0);
	CHECK(tlsrpt_txt_parse("v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt", 55, &u) == 0);
	CHECK(u.n == 1 && strcmp(u.uri[0], "https://reporting.example.com/v1/tlsrpt") == 0);
	{
		static const char t[] = "v=TLSRPTv1 ; x-ext=1;rua=MAILTO:a@example.com ,\thttps://r.example/"
		                        " , ftp://no.example/, mailto:b@example.com ; ";
		CHECK(tlsrpt_txt_parse(t, sizeof t - 1, &u) == 0 && u.n == 3 && u.dropped == 0);
		CHECK(strcmp(u.uri[0], "MAILTO:a@example.com") == 0);
		CHECK(strcmp(u.uri[1], "https://r.example/") == 0);
		CHECK(strcmp(u.uri[2], "mailto:b@example.com") == 0);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECKF(tlsrpt_txt_parse(bad[i], strlen(bad[i]), &u) == -1 && u.n == 0, "%s", bad[i]);
	CHECK(tlsrpt_txt_parse("v=TLSRPTv1; rua=mailto:a@b.c\0", 29, &u) == -1);
	/* More URIs than kept. */
	{
		static const char t[] = "v=TLSRPTv1; rua=mailto:a@x.example,mailto:b@x.example,"
		                        "mailto:c@x.example,mailto:d@x.example,mailto:e@x.example";
		CHECK(tlsrpt_txt_parse(t, sizeof t - 1, &u) == 0 && u.n == 4 && u.dropped == 1);
	}
	/* Choosing among records. */
	{
		static struct dns_txt_set s;
		memset(&s, 0, sizeof s);
		CHECK(tlsrpt_txt_select(&s, &u) == -1);
		strcpy(s.r[0].text, "v=spf1 -all");
		strcpy(s.r[1].text, "v=TLSRPTv1; rua=mailto:t@example.com");
		s.r[0].len = (uint16_t)strlen(s.r[0].text);
		s.r[1].len = (uint16_t)strlen(s.r[1].text);
		s.n = 2;
		CHECK(tlsrpt_txt_select(&s, &u) == 0 && u.n == 1);
		s.r[2] = s.r[1];
		s.n = 3;
		CHECK(tlsrpt_txt_select(&s, &u) == -1 && u.n == 0);
		s.n = 2;
		s.r[1].truncated = 1;
		CHECK(tlsrpt_txt_select(&s, &u) == -1);
	}
}

static void test_mailto(void)
{
	char a[64];

	CHECK(tlsrpt_mailto("mailto:tlsrpt@example.com", a, sizeof a) == 0);
	CHECK(strcmp(a, "tlsrpt@example.com") == 0);
	CHECK(tlsrpt_mailto("MailTo:rep%2Bx@example.com?subject=report", a, sizeof a) == 0);
	CHECK(strcmp(a, "rep+x@example.com") == 0);
	CHECK(tlsrpt_mailto("https://example.com/", a, sizeof a) == -1 && a[0] == '\0');
	CHECK(tlsrpt_mailto("mailto:@example.com", a, sizeof a) == -1);
	CHECK(tlsrpt_mailto("mailto:a%40b@example.com", a, sizeof a) == -1);
	CHECK(tlsrpt_mailto("mailto:a@example.com,b@example.com", a, sizeof a) == -1);
	CHECK(tlsrpt_mailto("mailto:a@exa mple.com", a, sizeof a) == -1);
	CHECK(tlsrpt_mailto("mailto:a@example.com%0d%0aBcc:x@y.z", a, sizeof a) == -1);
	CHECK(tlsrpt_mailto("mailto:a@example.com%4", a, sizeof a) == -1);
	CHECK(tlsrpt_mailto("mailto:a@example.com%", a, sizeof a) == -1);
	CHECK(tlsrpt_mailto("mailto:a", a, sizeof a) == -1);
	CHECK(tlsrpt_mailto("mailto:a@", a, sizeof a) == -1);
	CHECK(tlsrpt_mailto("mailto:abcdefgh@example.com", a, 20) == -1);
	CHECK(tlsrpt_mailto("mailto:abcdefg@example.com", a, 20) == 0);
}

static void test_names(void)
{
	CHECK(strcmp(tlsrpt_result_name(TLSRPT_STS_WEBPKI_INVALID), "sts-webpki-invalid") == 0);
	CHECK(strcmp(tlsrpt_result_name(TLSRPT_RESULT_COUNT), "?") == 0);
	CHECK(strcmp(tlsrpt_policy_type_name(TLSRPT_POLICY_NONE), "no-policy-found") == 0);
}

int main(void)
{
	RUN(test_day);
	RUN(test_aggregate);
	RUN(test_cut);
	RUN(test_json);
	RUN(test_json_hostile);
	RUN(test_txt);
	RUN(test_mailto);
	RUN(test_names);
	return t_main_end();
}
