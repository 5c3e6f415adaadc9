/*
 * tests/fuzz/fuzz_fslabel.c -- policy/fslabel.c on arbitrary bytes (the
 * first bytes of any disk): the label, when one is found, is printable
 * ASCII of at most FSLABEL_MAX bytes and NUL-terminated, and nothing is
 * read past the input.  Inputs shorter than an ISO volume descriptor are
 * also placed at 32 KiB so the ISO path is reached.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/fslabel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const unsigned char *buf, size_t len)
{
	char l[FSLABEL_MAX + 1];

	if (fslabel_read(buf, len, l, sizeof l) != FSLABEL_NONE) {
		size_t n = strnlen(l, sizeof l);
		if (n == 0 || n > FSLABEL_MAX)
			abort();
		for (size_t k = 0; k < n; k++)
			if ((unsigned char)l[k] < 0x20 || (unsigned char)l[k] >= 0x7f)
				abort();
		(void)fslabel_is_seed(l);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check(data, size);
	if (size <= 2048) {
		unsigned char *b = calloc(1, 32768 + size);
		if (b == NULL)
			return 0;
		memcpy(b + 32768, data, size);
		check(b, 32768 + size);
		free(b);
	}
	return 0;
}
