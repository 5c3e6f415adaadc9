/*
 * tests/unit/test_reply.c -- the SMTP client's reply parser against good
 * and hostile servers.  Every input sits in a heap buffer of exactly its
 * length (ASan sees a read past it) and is also checked on every proper
 * prefix, which is what the client sees when bytes come one at a time or
 * in any split: a prefix of a good reply must say "need more", never
 * succeed early or fail.
 */
#include <stdlib.h>

#include "policy/reply.h"
#include "tests/unit/t.h"

#define S(s) s, sizeof(s) - 1

static char *exact(const char *s, size_t len)
{
	char *b = malloc(len ? len : 1);
	memcpy(b, s, len);
	return b;
}

struct rcase {
	const char *in; size_t inlen;
	ssize_t ret;          /* on the whole input */
	int code;
	size_t nlines;
	const char *last;     /* text of the last line */
	unsigned esc[3];
};

static const struct rcase cases[] = {
	{ S("220 mx.example ESMTP\r\n"), 22, 220, 1, "mx.example ESMTP", { 0, 0, 0 } },
	{ S("250 2.1.0 Ok\r\n"), 14, 250, 1, "2.1.0 Ok", { 2, 1, 0 } },
	{ S("550 5.1.1 <a@b>: unknown\r\nxyz"), 26, 550, 1, "5.1.1 <a@b>: unknown", { 5, 1, 1 } },
	{ S("250-mx\r\n250-PIPELINING\r\n250 SIZE 100\r\n"), 38, 250, 3, "SIZE 100", { 0, 0, 0 } },
	{ S("250\r\n"), 5, 250, 1, "", { 0, 0, 0 } },
	{ S("250-\r\n250 \r\n"), 12, 250, 2, "", { 0, 0, 0 } },
	{ S("421 4.3.2 bye\n"), 14, 421, 1, "4.3.2 bye", { 4, 3, 2 } },       /* bare LF tolerated */
	{ S("451 4.7.1\r\n"), 11, 451, 1, "4.7.1", { 4, 7, 1 } },
	{ S("250 5.1.1 class mismatch\r\n"), 26, 250, 1, "5.1.1 class mismatch", { 0, 0, 0 } },
	{ S("250 2.1.1000 too long\r\n"), 23, 250, 1, "2.1.1000 too long", { 0, 0, 0 } },
	{ S("250 2.1.0x\r\n"), 12, 250, 1, "2.1.0x", { 0, 0, 0 } },
	{ S("599 odd\r\n"), 9, 599, 1, "odd", { 0, 0, 0 } },
	/* Hostile or broken. */
	{ S("250-a\r\n251 b\r\n"), SMTP_REPLY_BAD, 0, 0, NULL, { 0, 0, 0 } },   /* codes differ */
	{ S("25\r\n"), SMTP_REPLY_BAD, 0, 0, NULL, { 0, 0, 0 } },
	{ S("2500\r\n"), SMTP_REPLY_BAD, 0, 0, NULL, { 0, 0, 0 } },
	{ S("250_x\r\n"), SMTP_REPLY_BAD, 0, 0, NULL, { 0, 0, 0 } },
	{ S("150 x\r\n"), SMTP_REPLY_BAD, 0, 0, NULL, { 0, 0, 0 } },
	{ S("650 x\r\n"), SMTP_REPLY_BAD, 0, 0, NULL, { 0, 0, 0 } },
	{ S("abc x\r\n"), SMTP_REPLY_BAD, 0, 0, NULL, { 0, 0, 0 } },
	{ S("\r\n"), SMTP_REPLY_BAD, 0, 0, NULL, { 0, 0, 0 } },
	{ S("250 a\rb\r\n"), SMTP_REPLY_BAD, 0, 0, NULL, { 0, 0, 0 } },   /* bare CR */
	{ S("250 a\r\r\n"), SMTP_REPLY_BAD, 0, 0, NULL, { 0, 0, 0 } },
	{ S("250 a\0b\r\n"), SMTP_REPLY_BAD, 0, 0, NULL, { 0, 0, 0 } },   /* NUL */
	{ S("250-a\r\n250 b\0"), SMTP_REPLY_BAD, 0, 0, NULL, { 0, 0, 0 } },
	/* Missing line end: not yet a reply. */
	{ S("250 ok"), SMTP_REPLY_NEED, 0, 0, NULL, { 0, 0, 0 } },
	{ S("250-ok\r\n250 ok"), SMTP_REPLY_NEED, 0, 0, NULL, { 0, 0, 0 } },
	{ S("250-ok\r\n"), SMTP_REPLY_NEED, 0, 0, NULL, { 0, 0, 0 } },
	{ S(""), SMTP_REPLY_NEED, 0, 0, NULL, { 0, 0, 0 } },
};

static void test_cases(void)
{
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct rcase *c = &cases[i];
		char *b = exact(c->in, c->inlen);
		struct smtp_reply r;
		ssize_t n = smtp_reply_parse(b, c->inlen, &r);

		CHECKF(n == c->ret, "case %zu: got %zd want %zd", i, n, c->ret);
		if (n > 0 && n == c->ret) {
			CHECKF(r.code == c->code, "case %zu code %d", i, r.code);
			CHECKF(r.nlines == c->nlines, "case %zu nlines %zu", i, r.nlines);
			CHECKF(r.line[r.nlines - 1].len == strlen(c->last) &&
			       memcmp(r.line[r.nlines - 1].text, c->last, strlen(c->last)) == 0,
			       "case %zu last line", i);
			CHECKF(r.esc_class == c->esc[0] && r.esc_subject == c->esc[1] &&
			       r.esc_detail == c->esc[2], "case %zu esc %u.%u.%u", i,
			       r.esc_class, r.esc_subject, r.esc_detail);
		}
		/* Every proper prefix of a good reply needs more; of a bad one it
		 * needs more or is already bad, never good. */
		size_t upto = n > 0 ? (size_t)n : c->inlen;
		for (size_t k = 0; k < upto; k++) {
			char *p = exact(c->in, k);
			ssize_t m = smtp_reply_parse(p, k, &r);
			if (n > 0)
				CHECKF(m == SMTP_REPLY_NEED, "case %zu prefix %zu: %zd", i, k, m);
			else
				CHECKF(m == SMTP_REPLY_NEED || m == SMTP_REPLY_BAD, "case %zu prefix %zu: %zd",
				       i, k, m);
			free(p);
		}
		free(b);
	}
}

/* A line of exactly the limit is fine; one more octet is refused, as soon
 * as the limit is passed without a line end (no waiting for more). */
static void test_line_limit(void)
{
	char *line = malloc(SMTP_REPLY_LINE_MAX + 8);
	struct smtp_reply r;

	memset(line, 'x', SMTP_REPLY_LINE_MAX + 8);
	memcpy(line, "250 ", 4);
	line[SMTP_REPLY_LINE_MAX - 2] = '\r';
	line[SMTP_REPLY_LINE_MAX - 1] = '\n';
	CHECK(smtp_reply_parse(line, SMTP_REPLY_LINE_MAX, &r) == SMTP_REPLY_LINE_MAX);
	CHECK(r.line[0].len == SMTP_REPLY_LINE_MAX - 6);

	memset(line, 'x', SMTP_REPLY_LINE_MAX + 8);
	memcpy(line, "250 ", 4);
	line[SMTP_REPLY_LINE_MAX - 1] = '\r';
	line[SMTP_REPLY_LINE_MAX] = '\n';
	CHECK(smtp_reply_parse(line, SMTP_REPLY_LINE_MAX + 1, &r) == SMTP_REPLY_BAD);
	CHECK(smtp_reply_parse(line, SMTP_REPLY_LINE_MAX, &r) == SMTP_REPLY_BAD);
	CHECK(smtp_reply_parse(line, SMTP_REPLY_LINE_MAX - 1, &r) == SMTP_REPLY_NEED);
	free(line);
}

/* SMTP_REPLY_LINES_MAX lines is a reply; one more is refused. */
static void test_lines_limit(void)
{
	size_t cap = (SMTP_REPLY_LINES_MAX + 2) * 8, n = 0;
	char *buf = malloc(cap);
	struct smtp_reply r;

	for (int i = 0; i < SMTP_REPLY_LINES_MAX - 1; i++) {
		memcpy(buf + n, "250-ab\r\n", 8);
		n += 8;
	}
	memcpy(buf + n, "250 ab\r\n", 8);
	CHECK(smtp_reply_parse(buf, n + 8, &r) == (ssize_t)(n + 8));
	CHECK(r.nlines == SMTP_REPLY_LINES_MAX);
	memcpy(buf + n, "250-ab\r\n250 ab\r\n", 16);
	CHECK(smtp_reply_parse(buf, n + 16, &r) == SMTP_REPLY_BAD);
	/* A reply that never ends: refused once the cap is passed, and the
	 * bytes a client must hold stay under SMTP_REPLY_MAX. */
	CHECK(smtp_reply_parse(buf, n + 8, &r) == SMTP_REPLY_NEED);
	CHECK(n + 16 <= SMTP_REPLY_MAX);
	free(buf);
}

static void test_text(void)
{
	static const char in[] = "550-5.1.1 first\r\n550-5.1.1 second\x01\xff\r\n550 third\r\n";
	struct smtp_reply r;
	char out[64];
	char *b = exact(in, sizeof in - 1);
	static const char utf[] = "550 5.1.1 caf\xc3\xa9 C:\\dir\r\n";

	CHECK(smtp_reply_parse(b, sizeof in - 1, &r) == (ssize_t)(sizeof in - 1));
	CHECK(smtp_reply_text(&r, out, sizeof out) ==
	      strlen("550 5.1.1 first second\\x01\\xff third"));
	CHECK(strcmp(out, "550 5.1.1 first second\\x01\\xff third") == 0);
	/* an escape is never cut */
	CHECK(smtp_reply_text(&r, out, 25) == 22 && strcmp(out, "550 5.1.1 first second") == 0);
	CHECK(smtp_reply_text(&r, out, 27) == 26 && strcmp(out, "550 5.1.1 first second\\x01") == 0);
	CHECK(smtp_reply_text(&r, out, 8) == 7 && strcmp(out, "550 5.1") == 0);
	CHECK(smtp_reply_text(&r, out, 1) == 0 && out[0] == 0);
	free(b);
	b = exact(utf, sizeof utf - 1);
	CHECK(smtp_reply_parse(b, sizeof utf - 1, &r) == (ssize_t)(sizeof utf - 1));
	smtp_reply_text(&r, out, sizeof out);
	CHECKF(strcmp(out, "550 5.1.1 caf\\xc3\\xa9 C:\\x5cdir") == 0, "%s", out);
	free(b);
}

/* Two replies back to back (pipelining): each is taken in turn. */
static void test_pipelined(void)
{
	static const char in[] = "250 2.1.0 Ok\r\n250-2.1.5 a\r\n250 2.1.5 b\r\n354 go\r\n";
	char *b = exact(in, sizeof in - 1);
	struct smtp_reply r;
	size_t pos = 0;
	int codes[3], k = 0;

	while (pos < sizeof in - 1 && k < 3) {
		ssize_t n = smtp_reply_parse(b + pos, sizeof in - 1 - pos, &r);
		CHECK(n > 0);
		if (n <= 0)
			break;
		codes[k++] = r.code;
		pos += (size_t)n;
	}
	CHECK(k == 3 && codes[0] == 250 && codes[1] == 250 && codes[2] == 354);
	CHECK(pos == sizeof in - 1);
	free(b);
}

int main(void)
{
	RUN(test_cases);
	RUN(test_line_limit);
	RUN(test_lines_limit);
	RUN(test_text);
	RUN(test_pipelined);
	return t_main_end();
}
