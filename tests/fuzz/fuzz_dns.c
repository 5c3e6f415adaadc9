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
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/dns.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dns_answer a, b;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "example.com", "a", "mx.example.org", "x.y.z" };
	static const uint16_t types[] = { DNS_T_MX, DNS_T_A, DNS_T_AAAA, DNS_T_MX };
	const char *q;
	uint16_t t, id;
	unsigned char *msg;
	enum dns_status st;

	if (size < 1)
		return 0;
	q = names[data[0] & 3];
	t = types[(data[0] >> 2) & 3];
	data++;
	size--;
	id = size >= 2 ? (uint16_t)(data[0] << 8 | data[1]) : 0;
	msg = malloc(size ? size : 1);
	memcpy(msg, data, size);
	st = dns_response_parse(msg, size, id, q, t, &a);
	REQUIRE(st >= DNS_OK && st <= DNS_BAD);
	REQUIRE(a.nmx <= DNS_MX_MAX && a.naddr <= DNS_ADDR_MAX);
	REQUIRE(st == DNS_OK ? a.nmx + a.naddr > 0 : a.nmx + a.naddr == 0);
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
