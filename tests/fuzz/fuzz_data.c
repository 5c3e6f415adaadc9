/*
 * tests/fuzz/fuzz_data.c -- the DATA state machine.
 *
 * The first two bytes choose how to cut the rest into pieces and how much
 * output room each call gets; the result must be the same as feeding the
 * whole input at once, and as feeding it byte by byte, and must keep the
 * promises of policy/data.h.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/data.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

struct run {
	char    *out;
	size_t   outlen, consumed;
	int      done;
	unsigned flags;
};

/* Feed in pieces of 1 + (seed-driven) bytes with outcap room per call. */
static void feed(const char *in, size_t len, unsigned piece, size_t outcap, struct run *r)
{
	struct data_state ds;
	size_t pos = 0;
	unsigned x = piece | 1;

	data_init(&ds);
	r->out = malloc(len + 2);
	r->outlen = 0;
	r->done = 0;
	while (pos < len && !r->done) {
		size_t n = piece == 0 ? len - pos : 1 + (x % piece);
		x = x * 1103515245u + 12345u;
		if (n > len - pos)
			n = len - pos;
		char *chunk = malloc(n);
		memcpy(chunk, in + pos, n);
		size_t used = 0;
		while (used < n && !r->done) {
			size_t cap = outcap ? outcap : n - used + 2;
			char *o = malloc(cap);
			size_t olen, cons;
			r->done = data_feed(&ds, chunk + used, n - used, o, cap, &olen, &cons);
			REQUIRE(olen <= cap && cons <= n - used);
			REQUIRE(r->done || olen > 0 || cons > 0);
			REQUIRE(r->outlen + olen <= len + 2);
			memcpy(r->out + r->outlen, o, olen);
			r->outlen += olen;
			used += cons;
			free(o);
		}
		free(chunk);
		pos += used;
	}
	r->consumed = pos;
	r->flags = ds.flags;
}

static void same(const struct run *a, const struct run *b)
{
	REQUIRE(a->done == b->done && a->consumed == b->consumed && a->flags == b->flags);
	REQUIRE(a->outlen == b->outlen && memcmp(a->out, b->out, a->outlen) == 0);
}

/* The Received: fields of the header section, counted another way: split
 * into lines at LF, up to the first empty one ("" or "\r"). */
static unsigned hops_model(const char *m, size_t len)
{
	unsigned n = 0;

	for (size_t i = 0; i < len; ) {
		const char *nl = memchr(m + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - m) : len, k = i;

		if (end == i || (end == i + 1 && m[i] == '\r' && nl))
			break;
		if (end - i >= 8 && strncasecmp(m + i, "received", 8) == 0) {
			k = i + 8;
			while (k < end && (m[k] == ' ' || m[k] == '\t'))
				k++;
			n += k < end && m[k] == ':';
		}
		i = end + 1;
	}
	return n;
}

static void hops_check(const char *m, size_t len, unsigned piece)
{
	struct hops_state h;
	unsigned x = piece | 1;

	hops_init(&h);
	for (size_t i = 0; i < len; ) {
		size_t n = 1 + x % (piece + 1);
		x = x * 1103515245u + 12345u;
		if (n > len - i)
			n = len - i;
		hops_feed(&h, m + i, n);
		i += n;
	}
	REQUIRE(h.count == hops_model(m, len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	unsigned piece = data[0];
	size_t outcap = data[1] % 8;
	const char *in = (const char *)data + 2;
	size_t len = size - 2;
	struct run whole, bytes, cut;

	feed(in, len, 0, 0, &whole);
	feed(in, len, 1, 1, &bytes);
	feed(in, len, piece, outcap, &cut);
	same(&whole, &bytes);
	same(&whole, &cut);

	/* The output is never longer than what was used, and the end is only
	 * ever CRLF "." CRLF (or "." CRLF right at the start). */
	REQUIRE(whole.outlen <= whole.consumed);
	if (whole.done) {
		size_t c = whole.consumed;
		REQUIRE(c >= 3 && memcmp(in + c - 3, ".\r\n", 3) == 0);
		REQUIRE(c == 3 || (c >= 5 && memcmp(in + c - 5, "\r\n", 2) == 0));
		REQUIRE(whole.outlen == 0 || (whole.outlen >= 2
		        && memcmp(whole.out + whole.outlen - 2, "\r\n", 2) == 0));
	} else {
		REQUIRE(whole.consumed == len);
	}
	if (!(whole.flags & DATA_F_BARE) && !whole.done) {
		/* Without bare CR/LF, no "\r\n.\r\n" can have passed unnoticed. */
		REQUIRE(len < 5 || memmem(in, len, "\r\n.\r\n", 5) == NULL);
	}
	hops_check(whole.out, whole.outlen, piece);
	hops_check(in, len, piece);
	if (memchr(in, 0, whole.consumed) != NULL)
		REQUIRE(whole.flags & DATA_F_NUL);
	free(whole.out);
	free(bytes.out);
	free(cut.out);
	return 0;
}
