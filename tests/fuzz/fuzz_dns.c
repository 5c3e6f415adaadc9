/*
 * tests/fuzz/fuzz_dns.c -- dns_response_parse() on hostile answers.
 *
 * The first bytes pick the question (type and one of a few names); the
 * rest is the answer, parsed from a heap copy of exactly its length (ASan
 * sees any read past it).  Invariants: what comes back is within the
 * limits, every kept name is a valid host name (or the root, for a null
 * MX), addresses carry their family, and a parse is deterministic.  Then
 * dns_mx_sort() must leave the MX list sorted and free of duplicates.
 * The same bytes are also read as a resolv.conf (dns_resolv_conf).
 *
 * Bits 4-5 of the first byte pick the reader: 0 the MX/A/AAAA one above,
 * 1 TLSA (dns_tlsa_parse), 2 TXT (dns_txt_parse), 3 all three.  For each:
 * the AD bit is 0 or 1, 0 unless the answer is ours and whole, and then
 * the header's bit; kept records stay within their caps; NODATA and
 * errors keep nothing.  A DNSSEC query for the name is the plain query
 * plus the OPT record.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/dns.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dns_answer a, b;
static struct dns_tlsa_set ta, tb;
static struct dns_txt_set xa, xb;

static void check_ad(enum dns_status st, unsigned ad, const unsigned char *msg)
{
	if (st == DNS_BAD || st == DNS_TRUNCATED)
		REQUIRE(ad == 0);
	else
		REQUIRE(ad == ((msg[3] & 0x20) != 0));
}

static void fuzz_tlsa(const unsigned char *msg, size_t size, uint16_t id, const char *q)
{
	enum dns_status st = dns_tlsa_parse(msg, size, id, q, &ta);

	REQUIRE(st >= DNS_OK && st <= DNS_BAD);
	REQUIRE(ta.n <= DNS_TLSA_MAX);
	REQUIRE(st == DNS_OK ? ta.n + ta.dropped > 0 : ta.n + ta.dropped == 0);
	REQUIRE(ta.dropped == 0 || ta.n == DNS_TLSA_MAX);
	check_ad(st, ta.ad, msg);
	for (size_t i = 0; i < ta.n; i++)
		REQUIRE(ta.r[i].toobig ? ta.r[i].len > DNS_TLSA_DATA_MAX
		                       : ta.r[i].len <= DNS_TLSA_DATA_MAX);
	REQUIRE(dns_tlsa_parse(msg, size, id, q, &tb) == st);
	REQUIRE(memcmp(&ta, &tb, sizeof ta) == 0);
}

static void fuzz_txt(const unsigned char *msg, size_t size, uint16_t id, const char *q)
{
	enum dns_status st = dns_txt_parse(msg, size, id, q, &xa);

	REQUIRE(st >= DNS_OK && st <= DNS_BAD);
	REQUIRE(xa.n <= DNS_TXT_MAX);
	REQUIRE(st == DNS_OK ? xa.n + xa.dropped > 0 : xa.n + xa.dropped == 0);
	check_ad(st, xa.ad, msg);
	for (size_t i = 0; i < xa.n; i++) {
		REQUIRE(xa.r[i].len <= DNS_TXT_LEN_MAX && xa.r[i].text[xa.r[i].len] == '\0');
		REQUIRE(!xa.r[i].truncated || xa.r[i].len == DNS_TXT_LEN_MAX);
	}
	REQUIRE(dns_txt_parse(msg, size, id, q, &xb) == st);
	REQUIRE(memcmp(&xa, &xb, sizeof xa) == 0);
}

static void fuzz_query(const char *q)
{
	unsigned char plain[DNS_QUERY_MAX], sec[DNS_QUERY_MAX];
	size_t n = dns_query_build(plain, sizeof plain, 7, q, DNS_T_TLSA);
	size_t m = dns_query_build_flags(sec, sizeof sec, 7, q, DNS_T_TLSA, DNS_Q_DNSSEC);

	REQUIRE(n > 0 && m == n + DNS_OPT_LEN);
	REQUIRE(memcmp(plain + 12, sec + 12, n - 12) == 0 && sec[11] == 1 && (sec[3] & 0x20));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "example.com", "a", "mx.example.org", "x.y.z" };
	static const uint16_t types[] = { DNS_T_MX, DNS_T_A, DNS_T_AAAA, DNS_T_MX };
	const char *q;
	uint16_t t, id;
	unsigned char *msg;
	enum dns_status st;
	unsigned mode;

	if (size < 1)
		return 0;
	q = names[data[0] & 3];
	t = types[(data[0] >> 2) & 3];
	mode = (data[0] >> 4) & 3;
	data++;
	size--;
	id = size >= 2 ? (uint16_t)(data[0] << 8 | data[1]) : 0;
	msg = malloc(size ? size : 1);
	memcpy(msg, data, size);
	fuzz_query(q);
	if (mode == 1 || mode == 3)
		fuzz_tlsa(msg, size, id, q);
	if (mode == 2 || mode == 3)
		fuzz_txt(msg, size, id, q);
	if (mode == 1 || mode == 2) {
		free(msg);
		return 0;
	}
	st = dns_response_parse(msg, size, id, q, t, &a);
	REQUIRE(st >= DNS_OK && st <= DNS_BAD);
	REQUIRE(a.nmx <= DNS_MX_MAX && a.naddr <= DNS_ADDR_MAX);
	REQUIRE(st == DNS_OK ? a.nmx + a.naddr > 0 : a.nmx + a.naddr == 0);
	check_ad(st, a.ad, msg);
	if (t == DNS_T_MX)
		REQUIRE(a.naddr == 0);
	else
		REQUIRE(a.nmx == 0);
	for (size_t i = 0; i < a.naddr; i++)
		REQUIRE(a.addr[i].family == (t == DNS_T_A ? IP_V4 : IP_V6));
	for (size_t i = 0; i < a.nmx; i++) {
		size_t l = strnlen(a.mx[i].host, sizeof a.mx[i].host);
		REQUIRE(l < sizeof a.mx[i].host);
		REQUIRE(l == 0 || dns_name_ok(a.mx[i].host, l));
	}
	REQUIRE(dns_response_parse(msg, size, id, q, t, &b) == st);
	REQUIRE(memcmp(&a, &b, sizeof a) == 0);
	dns_mx_sort(&a, size);
	for (size_t i = 1; i < a.nmx; i++) {
		REQUIRE(a.mx[i - 1].pref <= a.mx[i].pref);
		for (size_t j = 0; j < i; j++)
			REQUIRE(strcmp(a.mx[i].host, a.mx[j].host) != 0);
	}
	{
		struct ipaddr ns[3];
		REQUIRE(dns_resolv_conf((const char *)msg, size, ns, 3) <= 3);
	}
	free(msg);
	return 0;
}
