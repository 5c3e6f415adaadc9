/*
 * tests/fuzz/fuzz_kv.c -- policy/kv.c fed arbitrary bytes, as a kernel
 * command line and as a uevent file.  Invariants: every key and value lies
 * inside the input, the position only moves forward and ends at the end,
 * and the walk ends (at most one item per input byte, plus one).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/kv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(int uevent, const char *buf, size_t len)
{
	struct kv kv;
	size_t pos = 0, items = 0, last = 0;

	while (uevent ? kv_uevent_next(buf, len, &pos, &kv) : kv_cmdline_next(buf, len, &pos, &kv)) {
		if (pos < last || pos > len || ++items > len + 1)
			abort();
		last = pos;
		if (kv.key < buf || kv.key + kv.keylen > buf + len)
			abort();
		if (kv.val != NULL && (kv.val < buf || kv.val + kv.vallen > buf + len))
			abort();
		if (uevent && (memchr(kv.key, '\n', kv.keylen) != NULL || memchr(kv.key, '=', kv.keylen) != NULL))
			abort();
		(void)kv_is(&kv, "PARTNAME");
	}
	if (pos != len)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	walk(0, (const char *)data, size);
	walk(1, (const char *)data, size);
	return 0;
}
