/*
 * tests/fuzz/fuzz_ndp.c -- policy/ndp.c on arbitrary bytes as an
 * RTM_NEWNDUSEROPT payload; the bytes are also fed with the header fixed
 * to an IPv6 router advertisement whose option length is the rest, so
 * the option walk is reached.  Invariants: at most NDP_RDNSS_MAX
 * addresses, found only when 1 is returned, no read past the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/ndp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const unsigned char *b, size_t n)
{
	struct ndp_rdnss r;
	int got = ndp_useropt_rdnss(b, n, &r);

	if (r.n > NDP_RDNSS_MAX || (got != 1 && r.n != 0) || got < -1 || got > 1)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check(data, size);
	if (size <= 4096) {
		unsigned char *b = malloc(16 + size);
		uint16_t n = (uint16_t)size;
		if (b == NULL)
			return 0;
		memset(b, 0, 16);
		b[0] = 10;
		memcpy(b + 2, &n, 2);
		b[8] = 134;
		memcpy(b + 16, data, size);
		check(b, 16 + size);
		free(b);
	}
	return 0;
}
