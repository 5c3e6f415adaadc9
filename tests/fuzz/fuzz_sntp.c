/*
 * tests/fuzz/fuzz_sntp.c -- policy/sntp.c fed arbitrary bytes as a
 * server's reply (with the cookie taken from the bytes' originate field so
 * the checks past it are reached, and with another), and the time
 * conversions and offset arithmetic on values from the bytes.  Invariants:
 * no read past the input, OK only for a mode-4 reply of at least 48 bytes
 * carrying our cookie, a kiss code of printable ASCII, a delay never
 * negative.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/sntp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int k = 0; k < 8; k++)
		v = v << 8 | p[k];
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sntp_reply r;
	uint64_t cookie = size >= 32 ? get64(data + 24) : 1;
	enum sntp_status st = sntp_parse(data, size, cookie, &r);

	if (st == SNTP_OK && (size < 48 || (data[0] & 7) != 4 || r.stratum == 0 || r.stratum > 15))
		abort();
	if (st == SNTP_KISS)
		for (int k = 0; k < 4; k++)
			if (r.kiss[k] < 0x20 || r.kiss[k] >= 0x7f)
				abort();
	(void)sntp_parse(data, size, ~cookie, &r);
	if (size >= 32) {
		int64_t t[4], off, delay;
		for (int k = 0; k < 4; k++) {
			/* Unix ns from NTP times: always within a 136-year era pair. */
			t[k] = sntp_to_unix_ns(get64(data + 8 * k));
		}
		sntp_offset(t[0], t[1], t[2], t[3], &off, &delay);
		if (delay < 0)
			abort();
		int64_t back = sntp_to_unix_ns(sntp_from_unix_ns(t[0]));
		if (back - t[0] > 1 || t[0] - back > 1)
			abort();
	}
	return 0;
}
