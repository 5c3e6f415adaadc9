/*
 * tests/fuzz/fuzz_reply.c -- smtp_reply_parse() on a hostile server's
 * byte stream, the way the client reads it: reply after reply from the
 * front of its buffer.  Each call gets a heap copy of exactly the bytes
 * left (ASan sees an over-read).  Invariants: a reply takes at most
 * SMTP_REPLY_MAX bytes, every line points inside the input, all lines of
 * a reply carry the code, a shorter prefix is never a different reply,
 * and smtp_reply_text() stays within its buffer and printable.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/reply.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t pos = 0;

	while (pos < size) {
		size_t left = size - pos;
		char *b = malloc(left);
		struct smtp_reply r, r2;
		ssize_t n;

		memcpy(b, data + pos, left);
		n = smtp_reply_parse(b, left, &r);
		REQUIRE(n == SMTP_REPLY_NEED || n == SMTP_REPLY_BAD || (n > 0 && (size_t)n <= left));
		if (n == SMTP_REPLY_NEED)
			REQUIRE(left < SMTP_REPLY_MAX);
		if (n <= 0) {
			free(b);
			break;
		}
		REQUIRE((size_t)n <= SMTP_REPLY_MAX);
		REQUIRE(b[n - 1] == '\n');
		REQUIRE(r.code >= 200 && r.code <= 599);
		REQUIRE(r.nlines >= 1 && r.nlines <= SMTP_REPLY_LINES_MAX);
		REQUIRE(memchr(b, 0, (size_t)n) == NULL);
		for (size_t i = 0; i < r.nlines; i++) {
			const struct smtp_reply_line *l = &r.line[i];
			REQUIRE(l->text >= b + 3 && l->text + l->len <= b + n);
			REQUIRE(l->len < SMTP_REPLY_LINE_MAX);
			REQUIRE(memchr(l->text, '\n', l->len) == NULL);
			REQUIRE(memchr(l->text, '\r', l->len) == NULL);
			REQUIRE(l->text[-1] == '-' || l->text[-1] == ' ' || l->text == b + 3 ||
			        l->text[-1] == '\n' || (l->text[-3] >= '0' && l->text[-3] <= '9'));
		}
		if (r.esc_class != 0)
			REQUIRE(r.esc_class == (unsigned)r.code / 100);
		/* Deterministic, and no shorter prefix is a complete reply. */
		REQUIRE(smtp_reply_parse(b, left, &r2) == n && r2.code == r.code);
		REQUIRE(smtp_reply_parse(b, (size_t)n - 1, &r2) != (ssize_t)n - 1 ||
		        n - 1 == 0);
		{
			char text[700];
			size_t tl = smtp_reply_text(&r, text, sizeof text);
			REQUIRE(tl < sizeof text && text[tl] == 0 && strlen(text) == tl);
			for (size_t i = 0; i < tl; i++)
				REQUIRE(text[i] >= 0x20 && text[i] < 0x7f);
		}
		free(b);
		pos += (size_t)n;
	}
	return 0;
}
