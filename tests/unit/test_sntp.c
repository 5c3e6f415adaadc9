/* tests/unit/test_sntp.c -- policy/sntp.c: NTP time both ways across the
 * 2036 era change, the request byte for byte, replies good and bad (every
 * field that is checked, every cut), and the offset of a clock years off. */
#include <stdlib.h>

#include "t.h"
#include "policy/sntp.h"

#define NS 1000000000ll

static void test_time_conversions(void)
{
	/* 1970 is NTP second 2208988800. */
	CHECK(sntp_from_unix_ns(0) >> 32 == 2208988800u);
	CHECK(sntp_to_unix_ns(sntp_from_unix_ns(0)) == 0);
	/* Half a second is half of 2^32. */
	CHECK((sntp_from_unix_ns(NS / 2) & 0xffffffffu) == 0x80000000u);
	/* Round trips to within a nanosecond, before and after 2036-02-07. */
	static const int64_t secs[] = { 978307200, 1796663235, 2085978495, 2085978496,
	                                2085978497, 4102444800ll };
	for (size_t k = 0; k < sizeof secs / sizeof secs[0]; k++) {
		int64_t ns = secs[k] * NS + 123456789;
		int64_t back = sntp_to_unix_ns(sntp_from_unix_ns(ns));
		CHECKF(back - ns <= 1 && ns - back <= 1, "%lld -> %lld", (long long)ns, (long long)back);
	}
	/* The first second of era 1 is NTP second 0. */
	CHECK(sntp_from_unix_ns(2085978496ll * NS) >> 32 == 0);
}

static void test_request(void)
{
	unsigned char b[SNTP_PKT_LEN];

	CHECK(sntp_request(b, sizeof b, 0x0102030405060708ull) == 48);
	CHECK(b[0] == 0x23);
	for (size_t k = 1; k < 40; k++)
		CHECK(b[k] == 0);
	CHECK(memcmp(b + 40, "\x01\x02\x03\x04\x05\x06\x07\x08", 8) == 0);
	CHECK(sntp_request(b, 47, 1) == 0);
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int k = 0; k < 8; k++)
		p[k] = (unsigned char)(v >> (56 - 8 * k));
}

static size_t server_reply(unsigned char *b, uint64_t cookie)
{
	memset(b, 0, 48);
	b[0] = 0x24;        /* LI 0, version 4, mode 4 */
	b[1] = 2;
	memcpy(b + 12, "\x0a\x00\x03\x01", 4);
	put64(b + 24, cookie);
	put64(b + 32, sntp_from_unix_ns(1796663235ll * NS));
	put64(b + 40, sntp_from_unix_ns(1796663235ll * NS + 1000));
	return 48;
}

static void test_parse(void)
{
	unsigned char b[64];
	struct sntp_reply r;
	const uint64_t cookie = 0xfeedfacecafebeefull;
	size_t n = server_reply(b, cookie);

	CHECK(sntp_parse(b, n, cookie, &r) == SNTP_OK && r.stratum == 2);
	CHECK(sntp_to_unix_ns(r.receive) == 1796663235ll * NS);
	CHECK(sntp_parse(b, n, cookie + 1, &r) == SNTP_BAD);
	for (size_t cut = 0; cut < n; cut++)
		CHECKF(sntp_parse(b, cut, cookie, &r) == SNTP_BAD, "cut %zu", cut);
	b[0] = 0x23;        /* a client's request */
	CHECK(sntp_parse(b, n, cookie, &r) == SNTP_BAD);
	b[0] = 0x05 << 3 | 4;  /* version 5 */
	CHECK(sntp_parse(b, n, cookie, &r) == SNTP_BAD);
	b[0] = 0x1c;        /* version 3, mode 4: fine */
	CHECK(sntp_parse(b, n, cookie, &r) == SNTP_OK);
	b[0] = 0xe4;        /* LI 3: not synchronized */
	CHECK(sntp_parse(b, n, cookie, &r) == SNTP_UNSYNCED);
	b[0] = 0x24;
	b[1] = 16;
	CHECK(sntp_parse(b, n, cookie, &r) == SNTP_UNSYNCED);
	b[1] = 0;           /* kiss-o'-death */
	memcpy(b + 12, "RATE", 4);
	CHECK(sntp_parse(b, n, cookie, &r) == SNTP_KISS && strcmp(r.kiss, "RATE") == 0);
	memcpy(b + 12, "\x01\xff""AB", 4);
	CHECK(sntp_parse(b, n, cookie, &r) == SNTP_KISS && strcmp(r.kiss, "??AB") == 0);
	b[1] = 2;
	memset(b + 40, 0, 8); /* no transmit time */
	CHECK(sntp_parse(b, n, cookie, &r) == SNTP_BAD);
}

static void test_offset(void)
{
	int64_t off, delay;

	/* Our clock 100 s behind, 20 ms each way, 1 ms at the server. */
	int64_t t1 = 1000 * NS, t2 = t1 + 100 * NS + 20000000, t3 = t2 + 1000000,
	        t4 = t1 + 41000000;
	sntp_offset(t1, t2, t3, t4, &off, &delay);
	CHECK(off == 100 * NS);
	CHECK(delay == 40000000);
	/* A guest clock 25 years behind (the test's -rtc): no overflow. */
	int64_t far = 789000000ll * NS;
	sntp_offset(t1, t1 + far, t1 + far, t1 + 2, &off, &delay);
	CHECK(off == far - 1 && delay == 2);
	/* A server that claims to have spent longer than the round trip. */
	sntp_offset(0, 0, 10, 5, &off, &delay);
	CHECK(delay == 0);
}

int main(void)
{
	RUN(test_time_conversions);
	RUN(test_request);
	RUN(test_parse);
	RUN(test_offset);
	return t_main_end();
}
