/*
 * tests/fuzz/fuzz_wire.c -- the binary reader (policy/wire.h): the first
 * bytes choose a list of reads, the rest is the record.  Whatever the
 * input, no read leaves the buffer (ASan), a reader that went bad reads
 * only zeros, and what is read is written back to the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_rd r;
	struct wire_wr w;
	unsigned char out[4096];
	size_t nops, i, start;
	char s[300];

	if (size < 1 || size > sizeof out)
		return 0;
	nops = data[0] % 32;
	if (size < 1 + nops)
		return 0;
	start = 1 + nops;
	wire_rd_init(&r, data + start, size - start);
	wire_wr_init(&w, out, sizeof out);
	for (i = 0; i < nops; i++) {
		int was_bad = r.bad;
		uint64_t v = 0;

		switch (data[1 + i] % 7) {
		case 0: v = wire_u8(&r); if (!r.bad) wire_put_u8(&w, (uint8_t)v); break;
		case 1: v = wire_u16(&r); if (!r.bad) wire_put_u16(&w, (uint16_t)v); break;
		case 2: v = wire_u32(&r); if (!r.bad) wire_put_u32(&w, (uint32_t)v); break;
		case 3: v = wire_u64(&r); if (!r.bad) wire_put_u64(&w, v); break;
		case 4:
			wire_str(&r, s, data[1 + i] % 2 ? 255 : 16);
			if (!r.bad)
				wire_put_str(&w, s);
			break;
		case 5: {
			size_t n = data[1 + i] / 7;
			const unsigned char *p = wire_bytes(&r, n);

			if (p != NULL)
				wire_put_bytes(&w, p, n);
			break;
		}
		default: {
			size_t n;
			const unsigned char *p = wire_rest(&r, &n);

			if (p != NULL)
				wire_put_bytes(&w, p, n);
			break;
		}
		}
		if (was_bad && v != 0)
			abort();      /* a bad reader reads zeros */
	}
	/* What was read, written again, is the bytes consumed. */
	if (!r.bad) {
		size_t used = size - start - r.left;

		if (wire_wr_end(&w) != used || memcmp(out, data + start, used) != 0)
			abort();
	}
	return 0;
}
