/*
 * tests/unit/test_data.c -- the DATA terminator and dot-unstuffing.
 *
 * Every case is fed whole, byte by byte, split in two at every offset, with
 * tiny output buffers, and in random pieces (fixed seed); all must give the
 * same result.  A second, non-incremental model of the rules checks random
 * inputs over the alphabet that matters ("\r", "\n", ".", "a", NUL).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/data.h"
#include "tests/unit/t.h"

#define S(s) s, sizeof(s) - 1

struct data_case {
	const char *in;  size_t inlen;
	int         done;     /* data_feed's final result */
	size_t      rest;     /* bytes after the terminator: the next command's */
	const char *out; size_t outlen;
	unsigned    flags;
};

static const struct data_case cases[] = {
	/* The terminator, right after the 354 and after content. */
	{ S(".\r\n"),                     1, 0,  S(""),                0 },
	{ S(".\r\nQUIT\r\n"),             1, 6,  S(""),                0 },
	{ S("\r\n.\r\n"),                 1, 0,  S("\r\n"),            0 },
	{ S("hello\r\n.\r\nQUIT\r\n"),    1, 6,  S("hello\r\n"),       0 },
	{ S("\r\n\r\n.\r\n"),             1, 0,  S("\r\n\r\n"),        0 },
	{ S("a\r\n.\r\n.\r\n"),           1, 3,  S("a\r\n"),           0 },
	/* Dot-unstuffing: only the first dot of a line goes. */
	{ S("..\r\n.\r\n"),               1, 0,  S(".\r\n"),           0 },
	{ S("a\r\n..b\r\n.\r\n"),         1, 0,  S("a\r\n.b\r\n"),     0 },
	{ S("a\r\n.b\r\n.\r\n"),          1, 0,  S("a\r\nb\r\n"),      0 },
	{ S("a\r\n...\r\n.\r\n"),         1, 0,  S("a\r\n..\r\n"),     0 },
	{ S("x.\r\n.\r\n"),               1, 0,  S("x.\r\n"),          0 },
	{ S("a.b\r\n.\r\n"),              1, 0,  S("a.b\r\n"),         0 },
	/* Not terminators: bare LF / bare CR around the dot (smuggling). */
	{ S("a\n.\nMAIL FROM:<x>\r\n"),   0, 0,  S("a\n.\nMAIL FROM:<x>\r\n"), DATA_F_BARE },
	{ S("a\r\n.\nRCPT TO:<x>\r\n"),   0, 0,  S("a\r\n\nRCPT TO:<x>\r\n"),  DATA_F_BARE },
	{ S("a\n.\r\nDATA\r\n"),          0, 0,  S("a\n.\r\nDATA\r\n"),        DATA_F_BARE },
	{ S("a\r.\rb"),                   0, 0,  S("a\r.\rb"),                 DATA_F_BARE },
	{ S("a\r\n.\rb\r\n"),             0, 0,  S("a\r\n\rb\r\n"),            DATA_F_BARE },
	{ S("a\r\n.\r.\r\n"),             0, 0,  S("a\r\n\r.\r\n"),            DATA_F_BARE },
	{ S("\r\n.\r\r\n.\r\n"),          1, 0,  S("\r\n\r\r\n"),              DATA_F_BARE },
	{ S("\n.\r\n"),                   0, 0,  S("\n.\r\n"),                 DATA_F_BARE },
	{ S("\r.\r\n"),                   0, 0,  S("\r.\r\n"),                 DATA_F_BARE },
	{ S(".\n.\r\n"),                  0, 0,  S("\n.\r\n"),                 DATA_F_BARE },
	{ S("a\r\r\n.\r\n"),              1, 0,  S("a\r\r\n"),                 DATA_F_BARE },
	{ S("a\n\r\n.\r\n"),              1, 0,  S("a\n\r\n"),                 DATA_F_BARE },
	/* NUL is recorded and kept. */
	{ S("a\0b\r\n.\r\n"),             1, 0,  S("a\0b\r\n"),                DATA_F_NUL },
	{ S("\0\r\n.\r\n"),               1, 0,  S("\0\r\n"),                  DATA_F_NUL },
	/* Unfinished input: what is certain goes out, the rest is held. */
	{ S(""),                          0, 0,  S(""),                        0 },
	{ S("."),                         0, 0,  S(""),                        0 },
	{ S(".\r"),                       0, 0,  S(""),                        0 },
	{ S("\r\n."),                     0, 0,  S("\r\n"),                    0 },
	{ S("\r\n.\r"),                   0, 0,  S("\r\n"),                    0 },
	{ S(".."),                        0, 0,  S("."),                       0 },
	{ S("\r"),                        0, 0,  S("\r"),                      0 },
	{ S("abc\r\n"),                   0, 0,  S("abc\r\n"),                 0 },
};

/* A line of n octets of 'x' (plus prefix) then CRLF "." CRLF, on the heap. */
static char *long_line(const char *prefix, size_t n, size_t *len)
{
	size_t pl = strlen(prefix);
	char *b = malloc(pl + n + 5);
	memcpy(b, prefix, pl);
	memset(b + pl, 'x', n);
	memcpy(b + pl + n, "\r\n.\r\n", 5);
	*len = pl + n + 5;
	return b;
}

struct result {
	char    *out;
	size_t   outlen;
	size_t   consumed;
	int      done;
	unsigned flags;
};

/*
 * Feed in[0..len) in pieces: piece(i) gives the size of the next piece,
 * outcap the output room per call.  Each call gets exactly-sized heap
 * buffers so that ASan sees any access past them.
 */
typedef size_t (*piece_fn)(size_t nth, size_t left, void *arg);

static int run_feed(const char *in, size_t len, piece_fn piece, void *arg,
                    size_t outcap, struct result *r)
{
	struct data_state ds;
	size_t pos = 0, nth = 0;
	int ok = 1;

	data_init(&ds);
	r->out = malloc(len + 2);
	r->outlen = 0;
	r->done = 0;
	while (pos < len && !r->done) {
		size_t n = piece(nth++, len - pos, arg);
		char *chunk = malloc(n ? n : 1);
		memcpy(chunk, in + pos, n);
		size_t used = 0;
		/* The caller's loop: call again while input is left in this piece. */
		while (used < n && !r->done) {
			size_t cap = outcap ? outcap : n - used + 2;
			char *o = malloc(cap);
			size_t olen = 99999, cons = 99999;
			r->done = data_feed(&ds, chunk + used, n - used, o, cap, &olen, &cons);
			if (olen > cap || cons > n - used || (olen == 0 && cons == 0 && !r->done))
				ok = 0; /* no progress with outcap >= 1 is a bug */
			if (!ok) {
				free(o);
				break;
			}
			if (r->outlen + olen > len + 2)
				ok = 0;
			else
				memcpy(r->out + r->outlen, o, olen);
			r->outlen += olen;
			used += cons;
			free(o);
		}
		free(chunk);
		pos += used;
		if (!ok)
			break;
	}
	r->consumed = pos;
	r->flags = ds.flags;
	/* After the end, data_feed takes nothing more. */
	if (r->done) {
		char o[4];
		size_t olen = 9, cons = 9;
		if (data_feed(&ds, "x", 1, o, sizeof o, &olen, &cons) != 1 || olen || cons)
			ok = 0;
	}
	return ok;
}

static size_t piece_whole(size_t nth, size_t left, void *arg)
{
	(void)nth; (void)arg;
	return left;
}

static size_t piece_byte(size_t nth, size_t left, void *arg)
{
	(void)nth; (void)left; (void)arg;
	return 1;
}

/* First piece *(size_t *)arg bytes, then the rest. */
static size_t piece_split(size_t nth, size_t left, void *arg)
{
	size_t at = *(size_t *)arg;
	return nth == 0 && at < left ? at : left;
}

static uint64_t rng_state;
static uint32_t rng(void)
{
	/* xorshift64*: reproducible from the seed printed on failure. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 2685821657736338717ull) >> 32);
}

static size_t piece_random(size_t nth, size_t left, void *arg)
{
	(void)nth; (void)arg;
	size_t n = 1 + rng() % 7;
	return n < left ? n : left;
}

static int same(const struct result *a, const struct result *b)
{
	return a->done == b->done && a->consumed == b->consumed && a->flags == b->flags
	       && a->outlen == b->outlen && memcmp(a->out, b->out, a->outlen) == 0;
}

/* One way of feeding: report and count a mismatch. */
static int check_feed(const char *in, size_t len, piece_fn piece, void *arg, size_t outcap,
                      const struct result *want, const char *what, const char *how)
{
	struct result r;
	int ok = run_feed(in, len, piece, arg, outcap, &r) && same(&r, want);
	CHECKF(ok, "%s: %s, outcap %zu: done %d consumed %zu outlen %zu flags %#x",
	       what, how, outcap, r.done, r.consumed, r.outlen, r.flags);
	free(r.out);
	return !ok;
}

/* Every way of feeding in gives *want; stops at the first mismatch. */
static int check_all_feeds(const char *in, size_t len, const struct result *want,
                           const char *what)
{
	static const size_t caps[] = { 0, 1, 2, 3 };
	char how[32];

	for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
		if (check_feed(in, len, piece_whole, NULL, caps[c], want, what, "whole")
		    || check_feed(in, len, piece_byte, NULL, caps[c], want, what, "byte by byte"))
			return 1;
	}
	for (size_t at = 0; at <= len; at++) {
		snprintf(how, sizeof how, "split at %zu", at);
		if (check_feed(in, len, piece_split, &at, 0, want, what, how))
			return 1;
	}
	for (int k = 0; k < 8; k++) {
		snprintf(how, sizeof how, "random pieces %d", k);
		if (check_feed(in, len, piece_random, NULL, 1 + rng() % 4, want, what, how))
			return 1;
	}
	return 0;
}

static void test_data_table(void)
{
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct data_case *c = &cases[i];
		struct result want = { (char *)(uintptr_t)c->out, c->outlen, c->inlen - c->rest,
		                       c->done, c->flags };
		char what[32];
		snprintf(what, sizeof what, "case %zu", i);
		check_all_feeds(c->in, c->inlen, &want, what);
	}
}

static void test_data_line_length(void)
{
	static const struct {
		const char *prefix; size_t n; unsigned flags; size_t outlen;
	} t[] = {
		{ "",   998, 0,           1000 },
		{ "",   999, DATA_F_LONG, 1001 },
		/* The stuffing dot counts: the limit is on the line as sent. */
		{ "..", 996, 0,           999 },
		{ "..", 997, DATA_F_LONG, 1000 },
		{ ".",  998, DATA_F_LONG, 1000 },
		{ "a\r\n", 998, 0,        1003 }, /* the count starts again after CRLF */
		{ "\r", 997, DATA_F_BARE, 1000 }, /* a bare CR is an octet of the line */
		{ "\r", 998, DATA_F_BARE | DATA_F_LONG, 1001 },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		size_t len;
		char *in = long_line(t[i].prefix, t[i].n, &len);
		struct result r;
		CHECKF(run_feed(in, len, piece_whole, NULL, 0, &r), "long %zu", i);
		CHECKF(r.done == 1 && r.consumed == len, "long %zu", i);
		CHECKF(r.flags == t[i].flags, "long %zu: flags %#x", i, r.flags);
		CHECKF(r.outlen == t[i].outlen, "long %zu: outlen %zu", i, r.outlen);
		char what[32];
		snprintf(what, sizeof what, "long %zu", i);
		check_all_feeds(in, len, &r, what);
		free(r.out);
		free(in);
	}
}

/* The state machine's public fields. */
static void test_data_state_fields(void)
{
	struct data_state ds;
	char out[16];
	size_t olen, cons;

	memset(&ds, 0xff, sizeof ds);
	data_init(&ds);
	CHECK(ds.st == 0 && ds.flags == 0 && ds.linelen == 0);
	CHECK(data_feed(&ds, "abc", 3, out, sizeof out, &olen, &cons) == 0);
	CHECK(ds.linelen == 3 && olen == 3 && cons == 3);
	CHECK(data_feed(&ds, "\r\nde", 4, out, sizeof out, &olen, &cons) == 0);
	CHECK(ds.linelen == 2 && olen == 4 && cons == 4);
	/* outcap 0: only steps that write nothing are taken. */
	CHECK(data_feed(&ds, "\r\n.\r\n", 5, out, 0, &olen, &cons) == 0);
	CHECK(olen == 0 && cons == 0);
	CHECK(data_feed(&ds, "\r\n.\r\n", 5, out, 2, &olen, &cons) == 1);
	CHECK(olen == 2 && cons == 5 && memcmp(out, "\r\n", 2) == 0);
	/* At the very start, "." CRLF needs no output room at all. */
	data_init(&ds);
	CHECK(data_feed(&ds, ".\r\nX", 4, out, 0, &olen, &cons) == 1);
	CHECK(olen == 0 && cons == 3);
}

/*
 * The model: the rules written over the whole input at once.  Lines are
 * what lies between "\r\n" (the start of DATA counts as one); a line "."
 * ends the message; a line starting with "." loses that dot.  In the last,
 * unfinished piece a lone "." or ".\r" is held, and a final CR is written
 * but not yet judged (nor counted).
 */
static void model(const char *in, size_t len, struct result *r)
{
	size_t pos = 0;
	r->out = malloc(len + 2);
	r->outlen = 0;
	r->flags = 0;
	r->done = 0;
	for (;;) {
		size_t e = pos;
		while (e + 1 < len && !(in[e] == '\r' && in[e + 1] == '\n'))
			e++;
		int complete = e + 1 < len;
		if (!complete)
			e = len;
		const char *l = in + pos;
		size_t n = e - pos, judged = n;
		if (!complete && n > 0 && l[n - 1] == '\r')
			judged = n - 1;
		if (complete && n == 1 && l[0] == '.') {
			r->done = 1;
			r->consumed = e + 2;
			return;
		}
		if (!complete && (n == 0 || (l[0] == '.' && n <= 2 && judged == 1))) {
			r->consumed = len; /* "", "." or ".\r": nothing certain yet */
			return;
		}
		for (size_t i = 0; i < judged; i++) {
			if (l[i] == '\r' || l[i] == '\n')
				r->flags |= DATA_F_BARE;
			if (l[i] == '\0')
				r->flags |= DATA_F_NUL;
		}
		if (judged > 998)
			r->flags |= DATA_F_LONG;
		size_t skip = l[0] == '.';
		memcpy(r->out + r->outlen, l + skip, n - skip);
		r->outlen += n - skip;
		if (!complete) {
			r->consumed = len;
			return;
		}
		memcpy(r->out + r->outlen, "\r\n", 2);
		r->outlen += 2;
		pos = e + 2;
	}
}

static void test_data_model_random(void)
{
	static const char alphabet[] = { '\r', '\n', '.', 'a', '\0', '\r', '.', '\n' };
	char in[48];
	int bad = 0;

	for (int iter = 0; iter < 3000 && bad < 5; iter++) {
		size_t len = rng() % sizeof in;
		for (size_t i = 0; i < len; i++)
			in[i] = alphabet[rng() % sizeof alphabet];
		struct result want;
		model(in, len, &want);
		char what[32];
		snprintf(what, sizeof what, "random %d", iter);
		bad += check_all_feeds(in, len, &want, what);
		free(want.out);
	}
}

/* Long runs of plain text between the specials, lines around the 998
 * limit: what the plain-text fast path in data_feed copies a run at a time. */
static void test_data_model_text_runs(void)
{
	static const char special[] = { '\r', '\n', '.', '\0' };
	char in[1100];
	int bad = 0;

	for (int iter = 0; iter < 60 && bad < 5; iter++) {
		size_t len = rng() % sizeof in;
		for (size_t i = 0; i < len; i++)
			in[i] = rng() % 97 == 0 ? special[rng() % sizeof special] : (char)('a' + rng() % 26);
		if (len > 4 && iter % 2) {    /* end some with the terminator */
			memcpy(in + len - 5, "\r\n.\r\n", 5);
		}
		struct result want;
		model(in, len, &want);
		char what[32];
		snprintf(what, sizeof what, "text runs %d", iter);
		bad += check_all_feeds(in, len, &want, what);
		free(want.out);
	}
}

/* ---- hops ---- */

static unsigned hops_of(const char *msg, size_t piece)
{
	struct hops_state h;
	size_t len = strlen(msg);

	hops_init(&h);
	for (size_t i = 0; i < len; i += piece)
		hops_feed(&h, msg + i, len - i < piece ? len - i : piece);
	return h.count;
}

static void test_hops(void)
{
	static const struct {
		const char *msg;
		unsigned    want;
	} hop_cases[] = {
		{ "", 0 },
		{ "Received: a\r\n\r\nbody\r\n", 1 },
		{ "Received: a\r\nreceived: b\r\nRECEIVED:c\r\nReceived \t: d\r\n\r\n", 4 },
		/* folded: the continuation is part of the field */
		{ "Received: from a\r\n\tby b;\r\n Received: x\r\nReceived: c\r\n\r\n", 2 },
		/* other names: a prefix, a longer name, no colon, a space first */
		{ "Receive: a\r\nReceivedX: b\r\nReceived a\r\n Received: c\r\n"
		  "X-Received: d\r\n\r\n", 0 },
		/* after the empty line it is the body */
		{ "Subject: s\r\n\r\nReceived: in the body\r\n", 0 },
		{ "\r\nReceived: body\r\n", 0 },
		/* a bare CR at the start of a line is not an empty line */
		{ "\rX: y\r\nReceived: a\r\n\r\n", 1 },
		/* no end of the header section: every field counts */
		{ "Received: a\r\nReceived: b\r\n", 2 },
		{ "Received:", 1 },
		{ "received\r\n: a\r\n", 0 },
	};

	for (size_t i = 0; i < sizeof hop_cases / sizeof hop_cases[0]; i++)
		for (size_t piece = 1; piece <= 4; piece++)
			CHECK(hops_of(hop_cases[i].msg, piece) == hop_cases[i].want);
	/* 150 hops */
	char big[150 * 16 + 8], *p = big;
	for (int i = 0; i < 150; i++)
		p += sprintf(p, "Received: %03d\r\n", i);
	strcpy(p, "\r\nx");
	CHECK(hops_of(big, 7) == 150);
}

int main(void)
{
	rng_state = 0x6d6f6174646174ull; /* "moatdat": fixed, so failures repeat */
	RUN(test_data_table);
	RUN(test_data_line_length);
	RUN(test_data_state_fields);
	RUN(test_data_model_random);
	RUN(test_data_model_text_runs);
	RUN(test_hops);
	return t_main_end();
}
