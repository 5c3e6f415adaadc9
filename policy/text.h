/*
 * policy/text.h -- append-only text into a caller's buffer that counts
 * what did not fit (the snprintf contract): the formatters in policy/
 * return the length they need and never overrun.  Pure, no allocation.
 */
#ifndef MOAT_POLICY_TEXT_H
#define MOAT_POLICY_TEXT_H

#include <stddef.h>
#include <stdint.h>

struct text {
	char  *buf;  /* the caller's; may be NULL when cap is 0 */
	size_t cap;
	size_t len;  /* what was appended, including what did not fit */
};

void text_put(struct text *t, const char *s, size_t n);
void text_puts(struct text *t, const char *s);
void text_put_u64(struct text *t, uint64_t v);
void text_put_i64(struct text *t, int64_t v);
/* NUL-terminate (truncating if needed) and return the length needed. */
size_t text_end(struct text *t);

#endif
