/*
 * tests/fuzz/fuzz_ctl.c -- ctl_parse() on arbitrary request lines, as the
 * control socket frames them (up to the first LF).  Invariants: words
 * point inside the line, are non-empty printable ASCII without spaces,
 * and joined by single spaces they give the line back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/ctl.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_word(const struct ctl_word *w, const char *b, size_t len)
{
	REQUIRE(w->len > 0 && w->p >= b && w->p + w->len <= b + len);
	for (size_t i = 0; i < w->len; i++)
		REQUIRE(w->p[i] > 0x20 && w->p[i] < 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *lf = memchr(data, '\n', size);
	size_t len = lf ? (size_t)(lf - data) : size;
	char *b = malloc(len ? len : 1), back[CTL_LINE_MAX + 1];
	struct ctl_req r;
	size_t n = 0;

	memcpy(b, data, len);
	if (ctl_parse(b, len, &r) == 0) {
		REQUIRE(r.nargs <= CTL_ARGS_MAX);
		check_word(&r.verb, b, len);
		memcpy(back, r.verb.p, r.verb.len);
		n = r.verb.len;
		for (size_t i = 0; i < r.nargs; i++) {
			check_word(&r.arg[i], b, len);
			back[n++] = ' ';
			memcpy(back + n, r.arg[i].p, r.arg[i].len);
			n += r.arg[i].len;
		}
		REQUIRE(n == len || (n + 1 == len && b[n] == '\r'));
		REQUIRE(memcmp(back, b, n) == 0);
	}
	free(b);
	return 0;
}
