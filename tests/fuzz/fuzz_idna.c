/*
 * tests/fuzz/fuzz_idna.c -- idna_to_ascii() on arbitrary bytes.
 * Invariants: the result is a host name (dns_name_ok) within the buffer,
 * the same input gives the same output, and an output buffer one byte too
 * small is refused rather than overrun.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/dns.h"
#include "policy/idna.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size ? size : 1), out[300], again[300];
	size_t n, m;

	memcpy(in, data, size);
	n = idna_to_ascii(in, size, out, sizeof out);
	if (n > 0) {
		REQUIRE(n < sizeof out && strlen(out) == n && dns_name_ok(out, n));
		m = idna_to_ascii(in, size, again, sizeof again);
		REQUIRE(m == n && memcmp(out, again, n) == 0);
		REQUIRE(idna_to_ascii(in, size, again, n) == 0);
		/* An A-label form converts to itself. */
		m = idna_to_ascii(out, n, again, sizeof again);
		REQUIRE(m == n && memcmp(out, again, n) == 0);
	}
	free(in);
	return 0;
}
