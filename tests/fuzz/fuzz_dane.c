/*
 * tests/fuzz/fuzz_dane.c -- DANE's reading of hostile certificates and
 * records (mta/net/dane.h): dane_spki() and dane_check().
 *
 * The input: a count byte (0..7 records), each record as usage, selector,
 * matching type, a length byte and that many data bytes; then the chain,
 * certificates as a 2-byte big-endian length and the bytes, each from a
 * heap copy of its exact size.  Invariants: the key dane_spki() finds lies
 * inside its certificate; the verdict is one of dane_check()'s, the same
 * twice, DANE_NO_USABLE exactly when no record is usable, and DANE_OK
 * only if some usable record exists.  The clock is fixed (2030-01-01).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mta/net/dane.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dns_tlsa r[8];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dane_chain chain;
	unsigned char *copy[8] = { 0 };
	size_t n, pos = 1, usable = 0;
	enum dane_status st;

	if (size < 1)
		return 0;
	n = data[0] & 7;
	memset(r, 0, sizeof r);
	for (size_t i = 0; i < n; i++) {
		size_t l;
		if (size - pos < 4)
			return 0;
		r[i].usage = data[pos];
		r[i].selector = data[pos + 1];
		r[i].mtype = data[pos + 2];
		l = data[pos + 3];
		pos += 4;
		if (size - pos < l)
			return 0;
		memcpy(r[i].data, data + pos, l);
		r[i].len = (uint16_t)l;
		pos += l;
		usable += (size_t)dane_usable(&r[i]);
	}
	memset(&chain, 0, sizeof chain);
	while (chain.n < 8 && size - pos >= 2) {
		size_t l = (size_t)data[pos] << 8 | data[pos + 1];
		const unsigned char *k;
		size_t kl;
		pos += 2;
		if (l > size - pos)
			l = size - pos;
		copy[chain.n] = malloc(l ? l : 1);
		memcpy(copy[chain.n], data + pos, l);
		if (dane_spki(copy[chain.n], l, &k, &kl) == 0)
			REQUIRE(k >= copy[chain.n] && kl <= l && (size_t)(k - copy[chain.n]) <= l - kl);
		chain.der[chain.n] = copy[chain.n];
		chain.len[chain.n] = l;
		chain.n++;
		pos += l;
	}
	st = dane_check(r, n, 0, &chain, "mx.example.test", 1893456000);
	REQUIRE(st >= DANE_OK && st <= DANE_BAD_CHAIN);
	REQUIRE((st == DANE_NO_USABLE) == (usable == 0));
	REQUIRE(dane_check(r, n, 0, &chain, "mx.example.test", 1893456000) == st);
	for (size_t i = 0; i < chain.n; i++)
		free(copy[i]);
	return 0;
}
