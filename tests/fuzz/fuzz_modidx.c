/*
 * tests/fuzz/fuzz_modidx.c -- policy/modidx.c fed arbitrary bytes: as a
 * module index (every word inside the input, the position only moving
 * forward and ending at the end, one record at most per line), and split
 * in two at its first NUL as a glob pattern and an alias for
 * modidx_match() (which must end: its work is bounded).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/modidx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct modidx_line ln;
	size_t pos = 0, last = 0, records = 0;
	int r;

	memset(&ln, 0, sizeof ln);
	while ((r = modidx_next(buf, size, &pos, &ln)) != 0) {
		if (pos <= last && size > 0)
			abort();
		if (pos > size || ++records > size + 1)
			abort();
		last = pos;
		if (r < 0)
			continue;
		if (ln.nwords == 0 || ln.nwords > MODIDX_WORDS_MAX)
			abort();
		if (ln.kind == MODIDX_ALIAS && ln.nwords != 2)
			abort();
		for (size_t k = 0; k < ln.nwords; k++)
			if (ln.word[k] < buf || ln.word[k] + ln.wlen[k] > buf + size || ln.wlen[k] == 0)
				abort();
	}
	if (pos != size)
		abort();
	const uint8_t *nul = memchr(data, 0, size);
	size_t plen = nul != NULL ? (size_t)(nul - data) : size / 2;
	size_t alen = size - plen - (nul != NULL);
	(void)modidx_match(buf, plen, buf + size - alen, alen);
	return 0;
}
