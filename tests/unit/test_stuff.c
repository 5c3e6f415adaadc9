/*
 * tests/unit/test_stuff.c -- the client's dot-stuffing (policy/data.h
 * stuff_feed/stuff_end), checked against the server's own unstuffer
 * (data_feed): a stored body sent through one and read back by the other
 * must come back the same, fed whole, byte by byte and split at every
 * offset, and the bytes on the wire must never hold a bare CR or LF.
 */
#include <stdint.h>
#include <stdlib.h>

#include "policy/data.h"
#include "tests/unit/t.h"

#define S(s) s, sizeof(s) - 1

/* Encode in[] in pieces of at most step bytes (0: whole) into out. */
static size_t encode(const char *in, size_t len, size_t step, char *out, size_t cap)
{
	struct stuff_state st;
	size_t pos = 0, o = 0;

	stuff_init(&st);
	while (pos < len) {
		size_t take = step && len - pos > step ? step : len - pos, used;
		/* a small output window too, to stop mid-piece */
		size_t room = cap - o < 7 ? cap - o : 7;
		o += stuff_feed(&st, in + pos, take, out + o, room, &used);
		pos += used;
	}
	o += stuff_end(&st, out + o);
	return o;
}

/* The wire has no bare CR or LF and ends in CRLF "." CRLF. */
static int wire_clean(const char *w, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (w[i] == '\r' && (i + 1 == n || w[i + 1] != '\n'))
			return 0;
		if (w[i] == '\n' && (i == 0 || w[i - 1] != '\r'))
			return 0;
	}
	return n >= 3 && memcmp(w + n - 3, ".\r\n", 3) == 0 &&
	       (n == 3 || (n >= 5 && memcmp(w + n - 5, "\r\n", 2) == 0));
}

/* What the server stores from the wire. */
static size_t decode(const char *w, size_t n, char *out, size_t cap, int *done)
{
	struct data_state ds;
	size_t outlen = 0, used = 0;

	data_init(&ds);
	*done = data_feed(&ds, w, n, out, cap, &outlen, &used);
	if (used != n)
		*done = 0;
	return outlen;
}

struct scase {
	const char *in; size_t inlen;
	const char *stored; size_t storedlen;   /* what comes back */
};

static const struct scase cases[] = {
	{ S("hello\r\n"), S("hello\r\n") },
	{ S(".\r\n"), S(".\r\n") },
	{ S("..\r\n.x\r\n"), S("..\r\n.x\r\n") },
	{ S("a\r\n.\r\n.\r\nb\r\n"), S("a\r\n.\r\n.\r\nb\r\n") },
	{ S("no final line end"), S("no final line end\r\n") },
	{ S(""), S("") },
	{ S("\r\n"), S("\r\n") },
	{ S("."), S(".\r\n") },
	/* Bare CR and LF become CRLF; a "." after them is at a line start. */
	{ S("a\nb\rc\r\n"), S("a\r\nb\r\nc\r\n") },
	{ S("a\n.\n"), S("a\r\n.\r\n") },
	{ S("a\r.\r"), S("a\r\n.\r\n") },
	{ S("\r\r\n\n"), S("\r\n\r\n\r\n") },
	{ S("x\r"), S("x\r\n") },
	{ S("nul\0byte\r\n"), S("nul\0byte\r\n") },
};

static void test_roundtrip(void)
{
	static char wire[1024], back[1024];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct scase *c = &cases[i];
		for (size_t step = 0; step <= c->inlen + 1; step++) {
			size_t n = encode(c->in, c->inlen, step, wire, sizeof wire);
			int done;
			size_t m;
			CHECKF(wire_clean(wire, n), "case %zu step %zu", i, step);
			m = decode(wire, n, back, sizeof back, &done);
			CHECKF(done && m == c->storedlen && memcmp(back, c->stored, m) == 0,
			       "case %zu step %zu: %zu bytes back", i, step, m);
		}
	}
}

/* Every split of a long body with dots everywhere, against a reference. */
static void test_splits(void)
{
	static char body[600], wire[2048], ref[2048], back[2048];
	uint64_t x = 42;
	size_t rn;

	for (size_t i = 0; i < sizeof body; i++) {
		x = x * 6364136223846793005u + 1442695040888963407u;
		static const char alphabet[] = ".\r\n.a\r\n..b";
		body[i] = alphabet[(size_t)(x >> 33) % (sizeof alphabet - 1)];
	}
	rn = encode(body, sizeof body, 0, ref, sizeof ref);
	CHECK(wire_clean(ref, rn));
	for (size_t cut = 0; cut <= sizeof body; cut++) {
		struct stuff_state st;
		size_t o = 0, used;
		stuff_init(&st);
		o += stuff_feed(&st, body, cut, wire, sizeof wire, &used);
		CHECK(used == cut);
		o += stuff_feed(&st, body + cut, sizeof body - cut, wire + o, sizeof wire - o, &used);
		CHECK(used == sizeof body - cut);
		o += stuff_end(&st, wire + o);
		CHECKF(o == rn && memcmp(wire, ref, rn) == 0, "cut %zu", cut);
	}
	{
		int done;
		size_t m = decode(ref, rn, back, sizeof back, &done);
		CHECK(done && m >= sizeof body);
	}
}

/* Output room: never writes past outcap, progresses with 3 bytes. */
static void test_room(void)
{
	char out[3];
	struct stuff_state st;
	size_t used;

	stuff_init(&st);
	CHECK(stuff_feed(&st, S(".x"), out, 2, &used) == 0 && used == 0);
	CHECK(stuff_feed(&st, S(".x"), out, 3, &used) == 2 && used == 1);
	CHECK(memcmp(out, "..", 2) == 0);
	CHECK(stuff_feed(&st, S("x"), out, 3, &used) == 1 && used == 1 && out[0] == 'x');
}

int main(void)
{
	RUN(test_roundtrip);
	RUN(test_splits);
	RUN(test_room);
	return t_main_end();
}
