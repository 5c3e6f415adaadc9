/* policy/text.c -- see text.h */
#include "policy/text.h"

#include <string.h>

void text_put(struct text *t, const char *s, size_t n)
{
	for (size_t k = 0; k < n; k++, t->len++)
		if (t->len + 1 < t->cap)
			t->buf[t->len] = s[k];
}

void text_puts(struct text *t, const char *s)
{
	text_put(t, s, strlen(s));
}

void text_put_u64(struct text *t, uint64_t v)
{
	char digits[24];
	size_t n = sizeof digits;

	do {
		digits[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	text_put(t, digits + n, sizeof digits - n);
}

void text_put_i64(struct text *t, int64_t v)
{
	if (v < 0) {
		text_put(t, "-", 1);
		text_put_u64(t, (uint64_t)0 - (uint64_t)v);
	} else {
		text_put_u64(t, (uint64_t)v);
	}
}

size_t text_end(struct text *t)
{
	if (t->cap > 0)
		t->buf[t->len < t->cap ? t->len : t->cap - 1] = '\0';
	return t->len;
}
