/*
 * tests/fuzz/fuzz_pem.c -- PEM blocks from arbitrary text.  Invariants:
 * the position only moves forward and stays inside the input, decoded
 * blocks fit their buffer, and the loop ends.
 */
#include <stdint.h>
#include <stdlib.h>

#include "policy/pem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char der[4096];
	struct pem_block b;
	const char *why;
	size_t pos = 0, last = 0, blocks = 0;

	while (pem_next((const char *)data, size, &pos, &b, der, sizeof der, &why) == PEM_OK) {
		if (pos <= last && blocks > 0)
			abort();
		if (pos > size || b.derlen == 0 || b.derlen > sizeof der)
			abort();
		last = pos;
		if (++blocks > size)
			abort();
	}
	return 0;
}
