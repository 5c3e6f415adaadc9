/*
 * tests/fuzz/fuzz_spki.c -- policy/spki.c: the DER readers on arbitrary
 * bytes.  What they return stays inside the input and has no leading
 * zero; a key read from a private key or an SPKI, written out again with
 * spki_rsa_encode(), reads back the same.  Inputs are exact-size heap
 * copies, for ASan.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/spki.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

static void inside(const struct spki_rsa *k, const unsigned char *p, size_t n)
{
	REQUIRE(k->nlen > 0 && k->elen > 0 && k->n[0] != 0 && k->e[0] != 0);
	REQUIRE(k->n >= p && k->n + k->nlen <= p + n && k->e >= p && k->e + k->elen <= p + n);
}

static void round_trip(const struct spki_rsa *k)
{
	size_t need = spki_rsa_encode(k->n, k->nlen, k->e, k->elen, NULL, 0);
	unsigned char *out = malloc(need);
	struct spki_rsa back;

	REQUIRE(need > 0 && spki_rsa_encode(k->n, k->nlen, k->e, k->elen, out, need) == need);
	REQUIRE(spki_rsa_parse(out, need, &back) == 0);
	REQUIRE(back.nlen == k->nlen && memcmp(back.n, k->n, k->nlen) == 0);
	REQUIRE(back.elen == k->elen && memcmp(back.e, k->e, k->elen) == 0);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *p = malloc(size ? size : 1);
	struct spki_rsa k;

	memcpy(p, data, size);
	if (spki_rsa_from_private(p, size, &k) == 0) {
		inside(&k, p, size);
		round_trip(&k);
	}
	if (spki_rsa_parse(p, size, &k) == 0) {
		inside(&k, p, size);
		round_trip(&k);
	}
	free(p);
	return 0;
}
