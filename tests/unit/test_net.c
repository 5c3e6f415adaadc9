/* tests/unit/test_net.c -- policy/net.c: addresses, CIDR, host:port. */
#include <arpa/inet.h>
#include <stdint.h>

#include "t.h"
#include "policy/net.h"

static int parse(const char *s, struct ipaddr *ip)
{
	return ip_parse(s, strlen(s), ip);
}

/* Parse s and format it back; the text must be want (NULL: must fail). */
static void roundtrip(const char *s, const char *want)
{
	struct ipaddr ip;
	char buf[IP_TEXT_MAX];

	if (want == NULL) {
		CHECKF(parse(s, &ip) == -1, "accepted '%s'", s);
		return;
	}
	if (parse(s, &ip) != 0) {
		CHECKF(0, "rejected '%s'", s);
		return;
	}
	size_t n = ip_format(&ip, buf, sizeof buf);
	CHECKF(n == strlen(want) && strcmp(buf, want) == 0, "'%s' -> '%s', want '%s'", s, buf, want);
}

static void test_ipv4(void)
{
	roundtrip("0.0.0.0", "0.0.0.0");
	roundtrip("127.0.0.1", "127.0.0.1");
	roundtrip("255.255.255.255", "255.255.255.255");
	roundtrip("10.0.0.9", "10.0.0.9");
	roundtrip("192.168.100.200", "192.168.100.200");
	static const char *const bad[] = {
		"", ".", "1.2.3", "1.2.3.4.", "1.2.3.4.5", ".1.2.3.4", "1..2.3",
		"256.1.1.1", "1.1.1.256", "999.1.1.1", "1.2.3.1000",
		"010.1.1.1", "1.01.1.1", "1.1.1.00", "00.0.0.0", "0x7f.0.0.1",
		"1.2.3.4 ", " 1.2.3.4", "1.2.3.-4", "+1.2.3.4", "1.2.3.4/8",
		"127.1", "2130706433", "1.2.3.a",
	};
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
		roundtrip(bad[k], NULL);
}

static void test_ipv6(void)
{
	/* RFC 5952 canonical forms. */
	roundtrip("::", "::");
	roundtrip("::1", "::1");
	roundtrip("1::", "1::");
	roundtrip("0:0:0:0:0:0:0:0", "::");
	roundtrip("2001:DB8::1", "2001:db8::1");
	roundtrip("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1");
	roundtrip("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1");          /* first of equal runs */
	roundtrip("2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1");            /* longest run */
	roundtrip("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1");       /* one zero group stays */
	roundtrip("2001:db8::1:1:1:1:1", "2001:db8:0:1:1:1:1:1");
	roundtrip("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0");
	roundtrip("::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8");
	roundtrip("1:0:0:4:5:0:0:0", "1:0:0:4:5::");
	roundtrip("fe80::abcd:ef01", "fe80::abcd:ef01");
	roundtrip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	/* Embedded IPv4: mapped addresses keep the dotted quad (RFC 5952 5). */
	roundtrip("::ffff:192.0.2.1", "::ffff:192.0.2.1");
	roundtrip("::FFFF:c000:0201", "::ffff:192.0.2.1");
	roundtrip("0:0:0:0:0:ffff:10.1.2.3", "::ffff:10.1.2.3");
	roundtrip("::1.2.3.4", "::102:304");
	roundtrip("64:ff9b::192.0.2.33", "64:ff9b::c000:221");
	roundtrip("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304");
	static const char *const bad[] = {
		":", ":::", "1", "1:2", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9",
		"1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8", "1::2::3", "1:::2",
		":1:2:3:4:5:6:7", "1:2:3:4:5:6:7:", "12345::", "g::", "::1 ",
		"[::1]", "::1%eth0", "1:2:3:4:5:6:7:1.2.3.4", "::1.2.3", "::1.2.3.4:5",
		"::010.1.1.1", "::256.1.1.1", "1.2.3.4::", "::ffff:1.2.3.4.5", "-::",
		"1:2:3:4:5:6:7:8:", ":1::",
	};
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
		roundtrip(bad[k], NULL);
}

/* Every offset of a valid literal cut short must be rejected or parse to
 * something; this runs the parser on exact-length buffers (no NUL read). */
static void test_prefixes(void)
{
	static const char *const good[] = {
		"2001:db8:0:1:0:0:0:1", "::ffff:192.0.2.1", "255.255.255.255",
	};
	for (size_t k = 0; k < sizeof good / sizeof good[0]; k++) {
		size_t n = strlen(good[k]);
		for (size_t cut = 0; cut <= n; cut++) {
			char copy[64];
			struct ipaddr ip;
			memcpy(copy, good[k], cut);
			copy[cut] = 'X'; /* a non-NUL after the length */
			int r = ip_parse(copy, cut, &ip);
			CHECK(r == 0 || r == -1);
			if (cut == n)
				CHECK(r == 0);
		}
	}
}

static void test_unmap_equal(void)
{
	struct ipaddr a, b;
	char buf[IP_TEXT_MAX];

	CHECK(parse("::ffff:10.1.2.3", &a) == 0 && a.family == IP_V6);
	ip_unmap(&a);
	CHECK(a.family == IP_V4);
	CHECK(parse("10.1.2.3", &b) == 0);
	CHECK(ip_equal(&a, &b));
	CHECK(ip_format(&a, buf, sizeof buf) == 8 && strcmp(buf, "10.1.2.3") == 0);
	/* Not mapped: unchanged. */
	CHECK(parse("::10.1.2.3", &a) == 0);
	ip_unmap(&a);
	CHECK(a.family == IP_V6);
	CHECK(!ip_equal(&a, &b));
	CHECK(parse("10.1.2.3", &a) == 0);
	ip_unmap(&a);
	CHECK(a.family == IP_V4 && ip_equal(&a, &b));
	CHECK(parse("::1", &a) == 0 && parse("0::1", &b) == 0 && ip_equal(&a, &b));
	CHECK(parse("::2", &b) == 0 && !ip_equal(&a, &b));
	/* IPv4 0.0.0.1 is not IPv6 ::1, although the first bytes agree. */
	CHECK(parse("0.0.0.1", &b) == 0 && !ip_equal(&a, &b));
}

static void test_format_small_buffer(void)
{
	struct ipaddr ip;
	char buf[8];

	CHECK(parse("2001:db8::1", &ip) == 0);
	memset(buf, 'Z', sizeof buf);
	CHECK(ip_format(&ip, buf, 5) == 11);
	CHECK(strcmp(buf, "2001") == 0 && buf[5] == 'Z');
	CHECK(ip_format(&ip, buf, 0) == 11 && buf[0] == '2');
	CHECK(ip_format(&ip, buf, 1) == 11 && buf[0] == '\0');
	/* The longest text fits IP_TEXT_MAX. */
	char big[IP_TEXT_MAX];
	CHECK(parse("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &ip) == 0);
	CHECK(ip_format(&ip, big, sizeof big) == 39);
	struct cidr c;
	CHECK(cidr_parse("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", 43, &c) == 0);
	CHECK(cidr_format(&c, big, sizeof big) == 43 && strcmp(big, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128") == 0);
}

/* xorshift32: a fixed seed, so a failure reproduces. */
static uint32_t rng_state = 20240229u;
static uint32_t rng(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state % n;
}

/* Random address-shaped text against the C library's inet_pton() and
 * inet_ntop(), which the BSDs, glibc and musl agree on for these forms.
 * The only intended difference: libc may print ::a.b.c.d (deprecated
 * IPv4-compatible) in dotted form; we print it as hex (RFC 5952 5). */
static void test_against_libc(void)
{
	static const char *const pieces[] = {
		"0", "1", "00", "ff", "FfFf", "0000", "12345", "db8", "g",
		":", ":", ":", "::", "::", ".", "255", "256", "010", "1.2.3.4",
	};
	int accepted = 0;

	for (int n = 0; n < 300000; n++) {
		char s[80];
		size_t len = 0;
		uint32_t count = 1 + rng(16);
		for (uint32_t k = 0; k < count; k++) {
			const char *p = pieces[rng(sizeof pieces / sizeof pieces[0])];
			size_t pl = strlen(p);
			if (len + pl >= sizeof s)
				break;
			memcpy(s + len, p, pl);
			len += pl;
		}
		s[len] = '\0';
		int family = memchr(s, ':', len) ? AF_INET6 : AF_INET;
		unsigned char bin[16];
		struct ipaddr ip;
		int libc_ok = inet_pton(family, s, bin) == 1;
		int ours_ok = ip_parse(s, len, &ip) == 0;
		CHECKF(libc_ok == ours_ok, "'%s': libc %d, ours %d", s, libc_ok, ours_ok);
		if (!libc_ok || !ours_ok)
			continue;
		accepted++;
		CHECKF(memcmp(bin, ip.a, family == AF_INET ? 4 : 16) == 0, "'%s'", s);
		static const unsigned char zero12[12];
		if (family == AF_INET6 && memcmp(bin, zero12, 12) == 0)
			continue;
		char want[INET6_ADDRSTRLEN], got[IP_TEXT_MAX];
		inet_ntop(family, bin, want, sizeof want);
		ip_format(&ip, got, sizeof got);
		CHECKF(strcmp(want, got) == 0, "'%s': libc '%s', ours '%s'", s, want, got);
	}
	CHECK(accepted > 1000); /* the generator does make valid addresses */
}

struct cidr_case {
	const char *text;
	int         result;   /* cidr_parse_masked(): 0, 1 (host bits), -1 */
	const char *canon;    /* cidr_format() of the result */
};

static void test_cidr_parse(void)
{
	static const struct cidr_case cases[] = {
		{ "10.0.0.0/8", 0, "10.0.0.0/8" },
		{ "10.0.0.1/8", 1, "10.0.0.0/8" },
		{ "0.0.0.0/0", 0, "0.0.0.0/0" },
		{ "1.2.3.4/0", 1, "0.0.0.0/0" },
		{ "192.168.1.128/25", 0, "192.168.1.128/25" },
		{ "192.168.1.129/25", 1, "192.168.1.128/25" },
		{ "192.168.1.7", 0, "192.168.1.7/32" },
		{ "192.168.1.7/32", 0, "192.168.1.7/32" },
		{ "172.16.0.0/12", 0, "172.16.0.0/12" },
		{ "172.17.0.0/12", 1, "172.16.0.0/12" },
		{ "2001:db8::/32", 0, "2001:db8::/32" },
		{ "2001:DB8:1::/32", 1, "2001:db8::/32" },
		{ "::/0", 0, "::/0" },
		{ "::1", 0, "::1/128" },
		{ "fe80::/10", 0, "fe80::/10" },
		{ "fec0::/10", 0, "fec0::/10" },
		{ "fe81::/10", 1, "fe80::/10" },
		{ "2001:db8::1/127", 1, "2001:db8::/127" },
		{ "::ffff:10.0.0.0/104", 0, "10.0.0.0/8" },
		{ "::ffff:10.1.2.3", 0, "10.1.2.3/32" },
		{ "::ffff:0:0/96", 0, "0.0.0.0/0" },
		{ "::ffff:0:0/95", 1, "::fffe:0:0/95" },
		{ "10.0.0.0/33", -1, NULL },
		{ "10.0.0.0/", -1, NULL },
		{ "10.0.0.0/08", -1, NULL },
		{ "10.0.0.0/-1", -1, NULL },
		{ "10.0.0.0/+8", -1, NULL },
		{ "10.0.0.0/8/8", -1, NULL },
		{ "10.0.0.0/ 8", -1, NULL },
		{ "10.0.0.0/1000", -1, NULL },
		{ "10/8", -1, NULL },
		{ "/8", -1, NULL },
		{ "", -1, NULL },
		{ "2001:db8::/129", -1, NULL },
		{ "2001:db8::/a", -1, NULL },
		{ "[::1]/128", -1, NULL },
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		const struct cidr_case *tc = &cases[k];
		struct cidr c, strict;
		char buf[IP_TEXT_MAX];
		int r = cidr_parse_masked(tc->text, strlen(tc->text), &c);
		CHECKF(r == tc->result, "'%s': %d, want %d", tc->text, r, tc->result);
		int rs = cidr_parse(tc->text, strlen(tc->text), &strict);
		CHECKF(rs == (tc->result == 0 ? 0 : -1), "strict '%s': %d", tc->text, rs);
		if (r < 0 || tc->canon == NULL)
			continue;
		cidr_format(&c, buf, sizeof buf);
		CHECKF(strcmp(buf, tc->canon) == 0, "'%s' -> '%s', want '%s'", tc->text, buf, tc->canon);
	}
}

struct match_case {
	const char *net;
	const char *ip;
	int         match;
};

static void test_cidr_match(void)
{
	static const struct match_case cases[] = {
		{ "10.0.0.0/8", "10.0.0.0", 1 },
		{ "10.0.0.0/8", "10.255.255.255", 1 },
		{ "10.0.0.0/8", "11.0.0.0", 0 },
		{ "10.0.0.0/8", "9.255.255.255", 0 },
		{ "192.168.1.128/25", "192.168.1.127", 0 },
		{ "192.168.1.128/25", "192.168.1.128", 1 },
		{ "192.168.1.128/25", "192.168.1.255", 1 },
		{ "192.168.1.7", "192.168.1.7", 1 },
		{ "192.168.1.7", "192.168.1.6", 0 },
		{ "0.0.0.0/0", "1.2.3.4", 1 },
		{ "0.0.0.0/0", "::1", 0 },           /* families never cross */
		{ "::/0", "1.2.3.4", 0 },
		{ "::/0", "2001:db8::1", 1 },
		{ "2001:db8::/32", "2001:db8:ffff::1", 1 },
		{ "2001:db8::/32", "2001:db9::1", 0 },
		{ "2001:db8::/33", "2001:db8:8000::", 0 },
		{ "2001:db8::/33", "2001:db8:7fff::", 1 },
		{ "::1", "::1", 1 },
		{ "::1", "::2", 0 },
		{ "::ffff:10.0.0.0/104", "10.9.8.7", 1 },
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		const struct match_case *tc = &cases[k];
		struct cidr c;
		struct ipaddr ip;
		CHECK(cidr_parse(tc->net, strlen(tc->net), &c) == 0);
		CHECK(parse(tc->ip, &ip) == 0);
		CHECKF(cidr_match(&c, &ip) == tc->match, "%s in %s", tc->ip, tc->net);
	}
}

struct hostport_case {
	const char *text;
	const char *ip;     /* NULL: must fail */
	unsigned    port;
};

static void test_hostport(void)
{
	static const struct hostport_case cases[] = {
		{ "127.0.0.1:25", "127.0.0.1", 25 },
		{ "0.0.0.0:2525", "0.0.0.0", 2525 },
		{ "*:25", "0.0.0.0", 25 },
		{ "[::1]:25", "::1", 25 },
		{ "[::]:587", "::", 587 },
		{ "[2001:db8::1]:65535", "2001:db8::1", 65535 },
		{ "1.2.3.4:1", "1.2.3.4", 1 },
		{ "1.2.3.4:0", NULL, 0 },
		{ "1.2.3.4:65536", NULL, 0 },
		{ "1.2.3.4:025", NULL, 0 },
		{ "1.2.3.4:", NULL, 0 },
		{ "1.2.3.4", NULL, 0 },
		{ "1.2.3.4:25:", NULL, 0 },
		{ "1.2.3.4:-25", NULL, 0 },
		{ "1.2.3.4:+25", NULL, 0 },
		{ "1.2.3.4:25 ", NULL, 0 },
		{ "1.2.3.4:999999", NULL, 0 },
		{ "::1:25", NULL, 0 },
		{ "[::1]", NULL, 0 },
		{ "[::1]25", NULL, 0 },
		{ "[::1]:", NULL, 0 },
		{ "[::1:25", NULL, 0 },
		{ "[1.2.3.4]:25", NULL, 0 },
		{ "[*]:25", NULL, 0 },
		{ "**:25", NULL, 0 },
		{ "localhost:25", NULL, 0 },
		{ ":25", NULL, 0 },
		{ "", NULL, 0 },
		{ "[]:25", NULL, 0 },
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		const struct hostport_case *tc = &cases[k];
		struct ipaddr ip, want;
		uint16_t port = 0;
		int r = hostport_parse(tc->text, strlen(tc->text), &ip, &port);
		if (tc->ip == NULL) {
			CHECKF(r == -1, "accepted '%s'", tc->text);
			continue;
		}
		CHECKF(r == 0, "rejected '%s'", tc->text);
		CHECK(parse(tc->ip, &want) == 0);
		CHECKF(r != 0 || (ip_equal(&ip, &want) && port == tc->port), "'%s'", tc->text);
	}
}

int main(void)
{
	RUN(test_ipv4);
	RUN(test_ipv6);
	RUN(test_prefixes);
	RUN(test_against_libc);
	RUN(test_unmap_equal);
	RUN(test_format_small_buffer);
	RUN(test_cidr_parse);
	RUN(test_cidr_match);
	RUN(test_hostport);
	return t_main_end();
}
