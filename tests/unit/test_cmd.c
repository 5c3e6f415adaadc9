/*
 * tests/unit/test_cmd.c -- SMTP line framing and command parsing.
 *
 * Inputs sit in heap buffers of exactly their length (ASan sees a read past
 * them).  Line scanning is checked on every prefix of its input, which is
 * what a caller sees when bytes arrive one at a time or in any split; a
 * parsed command is checked against every proper prefix of its line, which
 * must be refused or mean something else.
 */
#include <stdlib.h>

#include "policy/cmd.h"
#include "tests/unit/t.h"

#define S(s) s, sizeof(s) - 1

static char *exact(const char *s, size_t len)
{
	char *b = malloc(len ? len : 1);
	memcpy(b, s, len);
	return b;
}

/* ---- smtp_line_scan -------------------------------------------------- */

struct line_case {
	const char *in; size_t inlen;
	size_t      max;
	ssize_t     ret;     /* on the whole input */
	size_t      len;     /* line content when ret > 0 */
	unsigned    flags;
};

static const struct line_case line_cases[] = {
	{ S("QUIT\r\n"),            64, 6,  4, 0 },
	{ S("QUIT\r\nNOOP\r\n"),    64, 6,  4, 0 },
	{ S("\r\n"),                64, 2,  0, 0 },
	{ S("QUIT\n"),              64, 5,  4, SMTP_LINE_BARE_LF },
	{ S("\n"),                  64, 1,  0, SMTP_LINE_BARE_LF },
	{ S("QU\rIT\r\n"),          64, 7,  5, SMTP_LINE_BARE_CR },
	{ S("QUIT\r\r\n"),          64, 7,  5, SMTP_LINE_BARE_CR },
	{ S("\rQUIT\n"),            64, 6,  5, SMTP_LINE_BARE_CR | SMTP_LINE_BARE_LF },
	{ S("QU\0IT\r\n"),          64, 7,  5, SMTP_LINE_NUL },
	{ S("\0\r\r\n"),            64, 4,  2, SMTP_LINE_NUL | SMTP_LINE_BARE_CR },
	{ S("QUIT\r"),              64, -2, 0, 0 },
	{ S("QUIT"),                64, -2, 0, 0 },
	{ S(""),                    64, -2, 0, 0 },
	/* The limit counts the whole line, terminator included. */
	{ S("1234567\r\n"),         9,  9,  7, 0 },
	{ S("12345678\r\n"),        9,  -1, 0, 0 },
	{ S("123456789"),           9,  -1, 0, 0 },
	{ S("12345678"),            9,  -2, 0, 0 },
	{ S("1234567\r\nx"),        9,  9,  7, 0 },
	{ S("12345678\n"),          9,  9,  8, SMTP_LINE_BARE_LF },
	{ S("\n"),                  1,  1,  0, SMTP_LINE_BARE_LF },
	{ S("x"),                   0,  -1, 0, 0 },
	{ S(""),                    0,  -1, 0, 0 },
};

/*
 * What smtp_line_scan() must say about the first k bytes, given what it
 * says about the whole input: the line once its LF is there, "need more"
 * before that while under max, "too long" from max on.
 */
static void check_line_prefixes(const struct line_case *c, size_t i)
{
	for (size_t k = 0; k <= c->inlen; k++) {
		char *b = exact(c->in, k);
		struct smtp_line ln = { 12345, 0xff };
		ssize_t want, got = smtp_line_scan(b, k, c->max, &ln);
		if (c->ret > 0 && k >= (size_t)c->ret)
			want = c->ret;
		else if (c->ret > 0 || k < c->max)
			want = -2;
		else
			want = -1;
		CHECKF(got == want, "line case %zu, first %zu bytes: got %zd, want %zd", i, k, got, want);
		if (got > 0)
			CHECKF(ln.len == c->len && ln.flags == c->flags, "line case %zu, first %zu: len %zu flags %#x",
			       i, k, ln.len, ln.flags);
		else
			CHECKF(ln.len == 12345 && ln.flags == 0xff, "line case %zu: out touched", i);
		free(b);
	}
}

static void test_line_scan(void)
{
	for (size_t i = 0; i < sizeof line_cases / sizeof line_cases[0]; i++) {
		const struct line_case *c = &line_cases[i];
		char *b = exact(c->in, c->inlen);
		struct smtp_line ln = { 0, 0 };
		ssize_t r = smtp_line_scan(b, c->inlen, c->max, &ln);
		CHECKF(r == c->ret, "line case %zu: got %zd", i, r);
		if (r > 0)
			CHECKF(ln.len == c->len && ln.flags == c->flags, "line case %zu: len %zu flags %#x",
			       i, ln.len, ln.flags);
		free(b);
		check_line_prefixes(c, i);
	}
}

/* A stream of lines, fed in pieces of every size: the same lines come out. */
static void test_line_stream(void)
{
	static const char stream[] = "EHLO x\r\nMAIL FROM:<a@b>\r\n\r\nbare\nQU\rIT\r\nRCPT TO:<c@d>\r\n";
	static const size_t want_len[] = { 6, 15, 0, 4, 5, 13 };
	static const unsigned want_flags[] = { 0, 0, 0, SMTP_LINE_BARE_LF, SMTP_LINE_BARE_CR, 0 };
	const size_t total = sizeof stream - 1;

	for (size_t piece = 1; piece <= total; piece++) {
		/* The caller's buffer: bytes arrive piece by piece, lines leave. */
		char buf[sizeof stream];
		size_t have = 0, fed = 0, nlines = 0;
		int ok = 1;
		while (ok && fed < total) {
			size_t n = total - fed < piece ? total - fed : piece;
			memcpy(buf + have, stream + fed, n);
			have += n;
			fed += n;
			for (;;) {
				char *b = exact(buf, have);
				struct smtp_line ln;
				ssize_t r = smtp_line_scan(b, have, SMTP_LINE_MAX, &ln);
				free(b);
				if (r == -2)
					break;
				if (r < 0 || nlines >= 6 || ln.len != want_len[nlines]
				    || ln.flags != want_flags[nlines]) {
					ok = 0;
					break;
				}
				nlines++;
				memmove(buf, buf + r, have - (size_t)r);
				have -= (size_t)r;
			}
		}
		CHECKF(ok && nlines == 6 && have == 0, "pieces of %zu: %zu lines", piece, nlines);
	}
}

/* ---- smtp_cmd_parse -------------------------------------------------- */

struct cmd_case {
	const char *line; size_t len;
	int         result;
	enum smtp_verb verb;
	const char *arg;    /* NULL: not checked; for MAIL/RCPT after the colon */
	const char *path;   /* NULL: no path */
	const char *params; /* "KEY=VAL KEY" as parsed, NULL: none */
};

#define OK SMTP_CMD_OK
#define ESYNTAX SMTP_CMD_ESYNTAX
#define EUNKNOWN SMTP_CMD_EUNKNOWN
#define EPARAMS SMTP_CMD_EPARAMS
#define V(x) SMTP_VERB_##x

static const struct cmd_case cmd_cases[] = {
	/* HELO / EHLO need an argument; its syntax is the caller's to judge. */
	{ S("HELO example.com"), OK, V(HELO), "example.com", NULL, NULL },
	{ S("helo example.com"), OK, V(HELO), "example.com", NULL, NULL },
	{ S("EHLO [192.0.2.1]"), OK, V(EHLO), "[192.0.2.1]", NULL, NULL },
	{ S("eHlO x"), OK, V(EHLO), "x", NULL, NULL },
	{ S("EHLO x y"), OK, V(EHLO), "x y", NULL, NULL },
	{ S("EHLO x  "), OK, V(EHLO), "x", NULL, NULL },
	{ S("HELO"), ESYNTAX, V(HELO), NULL, NULL, NULL },
	{ S("EHLO "), ESYNTAX, V(EHLO), NULL, NULL, NULL },
	/* MAIL */
	{ S("MAIL FROM:<a@b>"), OK, V(MAIL), "<a@b>", "<a@b>", NULL },
	{ S("mail from:<a@b>"), OK, V(MAIL), "<a@b>", "<a@b>", NULL },
	{ S("Mail From:<>"), OK, V(MAIL), "<>", "<>", NULL },
	{ S("MAIL FROM: <a@b>"), OK, V(MAIL), " <a@b>", "<a@b>", NULL },
	{ S("MAIL FROM:   <a@b>"), OK, V(MAIL), "   <a@b>", "<a@b>", NULL },
	{ S("MAIL FROM:<a@b> SIZE=10 BODY=8BITMIME"), OK, V(MAIL),
	  "<a@b> SIZE=10 BODY=8BITMIME", "<a@b>", "SIZE=10 BODY=8BITMIME" },
	{ S("MAIL FROM:<> SMTPUTF8"), OK, V(MAIL), NULL, "<>", "SMTPUTF8" },
	{ S("MAIL FROM:<a@b>  SIZE=10"), OK, V(MAIL), NULL, "<a@b>", "SIZE=10" },
	{ S("MAIL FROM:<a@b> SIZE=10 "), OK, V(MAIL), NULL, "<a@b>", "SIZE=10" },
	{ S("MAIL FROM:<a@b> AUTH=<> RET=HDRS ENVID=x+2Bz"), OK, V(MAIL), NULL, "<a@b>",
	  "AUTH=<> RET=HDRS ENVID=x+2Bz" },
	{ S("MAIL FROM:<a@b> X-Y-1=v 8=9"), OK, V(MAIL), NULL, "<a@b>", "X-Y-1=v 8=9" },
	{ S("MAIL FROM:<\"a>b\"@c>"), OK, V(MAIL), NULL, "<\"a>b\"@c>", NULL },
	{ S("MAIL FROM:<\"a\\\">\"@c> X=1"), OK, V(MAIL), NULL, "<\"a\\\">\"@c>", "X=1" },
	{ S("MAIL FROM:<\"a b\"@c>"), OK, V(MAIL), NULL, "<\"a b\"@c>", NULL },
	{ S("MAIL FROM:<garbage but bracketed>"), OK, V(MAIL), NULL, "<garbage but bracketed>", NULL },
	{ S("MAIL FROM <a@b>"), ESYNTAX, V(MAIL), NULL, NULL, NULL },
	{ S("MAIL FROM<a@b>"), ESYNTAX, V(MAIL), NULL, NULL, NULL },
	{ S("MAIL FROM :<a@b>"), ESYNTAX, V(MAIL), NULL, NULL, NULL },
	{ S("MAIL  FROM:<a@b>"), ESYNTAX, V(MAIL), NULL, NULL, NULL },
	{ S("MAIL TO:<a@b>"), ESYNTAX, V(MAIL), NULL, NULL, NULL },
	{ S("MAIL FROM:a@b"), ESYNTAX, V(MAIL), NULL, NULL, NULL },
	{ S("MAIL FROM:<a@b"), ESYNTAX, V(MAIL), NULL, NULL, NULL },
	{ S("MAIL FROM:<\"a>@b"), ESYNTAX, V(MAIL), NULL, NULL, NULL },
	{ S("MAIL FROM:<a@b>x"), ESYNTAX, V(MAIL), NULL, NULL, NULL },
	{ S("MAIL FROM:<a@b><c@d>"), ESYNTAX, V(MAIL), NULL, NULL, NULL },
	{ S("MAIL FROM:"), ESYNTAX, V(MAIL), NULL, NULL, NULL },
	{ S("MAIL FROM"), ESYNTAX, V(MAIL), NULL, NULL, NULL },
	{ S("MAIL"), ESYNTAX, V(MAIL), NULL, NULL, NULL },
	/* ESMTP parameter syntax. */
	{ S("MAIL FROM:<a@b> SIZE="), ESYNTAX, V(MAIL), NULL, NULL, NULL },
	{ S("MAIL FROM:<a@b> =10"), ESYNTAX, V(MAIL), NULL, NULL, NULL },
	{ S("MAIL FROM:<a@b> -X=1"), ESYNTAX, V(MAIL), NULL, NULL, NULL },
	{ S("MAIL FROM:<a@b> X_Y=1"), ESYNTAX, V(MAIL), NULL, NULL, NULL },
	{ S("MAIL FROM:<a@b> X.Y"), ESYNTAX, V(MAIL), NULL, NULL, NULL },
	{ S("MAIL FROM:<a@b> X=a=b"), ESYNTAX, V(MAIL), NULL, NULL, NULL },
	{ S("MAIL FROM:<a@b> X=\x7f"), ESYNTAX, V(MAIL), NULL, NULL, NULL },
	{ S("MAIL FROM:<a@b> X=\x01"), ESYNTAX, V(MAIL), NULL, NULL, NULL },
	{ S("MAIL FROM:<a@b> X=a\tb"), ESYNTAX, V(MAIL), NULL, NULL, NULL },
	{ S("MAIL FROM:<a@b> X=\xc3\xa9"), ESYNTAX, V(MAIL), NULL, NULL, NULL },
	{ S("MAIL FROM:<a@b> X\xc3\xa9"), ESYNTAX, V(MAIL), NULL, NULL, NULL },
	{ S("MAIL FROM:<a@b>\tSIZE=1"), ESYNTAX, V(MAIL), NULL, NULL, NULL },
	{ S("MAIL FROM:<a@b> A B C D E F G H I J K L M N O P"), OK, V(MAIL), NULL, "<a@b>",
	  "A B C D E F G H I J K L M N O P" },
	{ S("MAIL FROM:<a@b> A B C D E F G H I J K L M N O P Q"), EPARAMS, V(MAIL), NULL, NULL, NULL },
	/* RCPT */
	{ S("RCPT TO:<a@b>"), OK, V(RCPT), "<a@b>", "<a@b>", NULL },
	{ S("rcpt to:<Postmaster>"), OK, V(RCPT), NULL, "<Postmaster>", NULL },
	{ S("RCPT TO: <a@b>"), OK, V(RCPT), NULL, "<a@b>", NULL },
	{ S("RCPT TO:<a@b> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+40b"), OK, V(RCPT), NULL, "<a@b>",
	  "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+40b" },
	{ S("RCPT TO:<@r1,@r2:a@b>"), OK, V(RCPT), NULL, "<@r1,@r2:a@b>", NULL },
	{ S("RCPT FROM:<a@b>"), ESYNTAX, V(RCPT), NULL, NULL, NULL },
	{ S("RCPT TO:"), ESYNTAX, V(RCPT), NULL, NULL, NULL },
	{ S("RCPT TO:a@b"), ESYNTAX, V(RCPT), NULL, NULL, NULL },
	{ S("RCPT"), ESYNTAX, V(RCPT), NULL, NULL, NULL },
	/* No argument at all. */
	{ S("DATA"), OK, V(DATA), NULL, NULL, NULL },
	{ S("data"), OK, V(DATA), NULL, NULL, NULL },
	{ S("DATA "), OK, V(DATA), NULL, NULL, NULL },
	{ S("DATA x"), ESYNTAX, V(DATA), NULL, NULL, NULL },
	{ S("RSET"), OK, V(RSET), NULL, NULL, NULL },
	{ S("RSET now"), ESYNTAX, V(RSET), NULL, NULL, NULL },
	{ S("QUIT"), OK, V(QUIT), NULL, NULL, NULL },
	{ S("quit"), OK, V(QUIT), NULL, NULL, NULL },
	{ S("QUIT now"), ESYNTAX, V(QUIT), NULL, NULL, NULL },
	{ S("STARTTLS"), OK, V(STARTTLS), NULL, NULL, NULL },
	{ S("StartTLS"), OK, V(STARTTLS), NULL, NULL, NULL },
	{ S("STARTTLS x"), ESYNTAX, V(STARTTLS), NULL, NULL, NULL },
	/* An optional argument. */
	{ S("NOOP"), OK, V(NOOP), "", NULL, NULL },
	{ S("NOOP hello there"), OK, V(NOOP), "hello there", NULL, NULL },
	{ S("HELP"), OK, V(HELP), "", NULL, NULL },
	{ S("HELP MAIL"), OK, V(HELP), "MAIL", NULL, NULL },
	{ S("VRFY"), OK, V(VRFY), "", NULL, NULL },
	{ S("VRFY postmaster"), OK, V(VRFY), "postmaster", NULL, NULL },
	{ S("EXPN"), OK, V(EXPN), "", NULL, NULL },
	{ S("EXPN list"), OK, V(EXPN), "list", NULL, NULL },
	/* A required argument. */
	{ S("AUTH PLAIN dGVzdAB0ZXN0AHRlc3Q="), OK, V(AUTH), "PLAIN dGVzdAB0ZXN0AHRlc3Q=", NULL, NULL },
	{ S("auth login"), OK, V(AUTH), "login", NULL, NULL },
	{ S("AUTH"), ESYNTAX, V(AUTH), NULL, NULL, NULL },
	/* BDAT chunk-size [ SP "LAST" ] */
	{ S("BDAT 100"), OK, V(BDAT), "100", NULL, NULL },
	{ S("BDAT 0 LAST"), OK, V(BDAT), "0 LAST", NULL, NULL },
	{ S("bdat 5 last"), OK, V(BDAT), "5 last", NULL, NULL },
	{ S("BDAT"), ESYNTAX, V(BDAT), NULL, NULL, NULL },
	{ S("BDAT x"), ESYNTAX, V(BDAT), NULL, NULL, NULL },
	{ S("BDAT -1"), ESYNTAX, V(BDAT), NULL, NULL, NULL },
	{ S("BDAT 100 FIRST"), ESYNTAX, V(BDAT), NULL, NULL, NULL },
	{ S("BDAT 100  LAST"), ESYNTAX, V(BDAT), NULL, NULL, NULL },
	{ S("BDAT 100 LASTX"), ESYNTAX, V(BDAT), NULL, NULL, NULL },
	{ S("BDAT 1x"), ESYNTAX, V(BDAT), NULL, NULL, NULL },
	/* Empty lines and unknown verbs. */
	{ S(""), OK, V(NONE), NULL, NULL, NULL },
	{ S("   "), OK, V(NONE), NULL, NULL, NULL },
	{ S("FOO"), EUNKNOWN, V(UNKNOWN), NULL, NULL, NULL },
	{ S("FOO bar"), EUNKNOWN, V(UNKNOWN), NULL, NULL, NULL },
	{ S("MAILX FROM:<a@b>"), EUNKNOWN, V(UNKNOWN), NULL, NULL, NULL },
	{ S("MAIL:<a@b>"), EUNKNOWN, V(UNKNOWN), NULL, NULL, NULL },
	{ S("MAI"), EUNKNOWN, V(UNKNOWN), NULL, NULL, NULL },
	{ S(" QUIT"), EUNKNOWN, V(UNKNOWN), NULL, NULL, NULL },
	{ S("QUIT\t"), EUNKNOWN, V(UNKNOWN), NULL, NULL, NULL },
	{ S("QU\0T"), EUNKNOWN, V(UNKNOWN), NULL, NULL, NULL },
	{ S("GET / HTTP/1.1"), EUNKNOWN, V(UNKNOWN), NULL, NULL, NULL },
	{ S("\xc3\x89HLO x"), EUNKNOWN, V(UNKNOWN), NULL, NULL, NULL },
};

/* "KEY=VAL KEY" from the parsed parameters. */
static void params_text(const struct smtp_cmd *c, char *buf, size_t cap)
{
	size_t n = 0;
	buf[0] = 0;
	for (size_t i = 0; i < c->nparams; i++) {
		const struct smtp_param *p = &c->params[i];
		n += (size_t)snprintf(buf + n, cap - n, "%s%.*s", i ? " " : "", (int)p->keylen, p->key);
		if (p->val != NULL)
			n += (size_t)snprintf(buf + n, cap - n, "=%.*s", (int)p->vallen, p->val);
		if (n >= cap)
			return;
	}
}

static int parse(const char *s, size_t len, struct smtp_cmd *c)
{
	char *b = exact(s, len);
	int r = smtp_cmd_parse(b, len, c);
	/* Pointers into b are compared by offset below, before b goes. */
	if (r == SMTP_CMD_OK) {
		if (c->arg)
			c->arg = s + (c->arg - b);
		if (c->path)
			c->path = s + (c->path - b);
		for (size_t i = 0; i < c->nparams; i++) {
			c->params[i].key = s + (c->params[i].key - b);
			if (c->params[i].val)
				c->params[i].val = s + (c->params[i].val - b);
		}
	}
	free(b);
	return r;
}

static int same_cmd(const struct smtp_cmd *a, const struct smtp_cmd *b)
{
	if (a->verb != b->verb || a->arglen != b->arglen || a->pathlen != b->pathlen
	    || a->nparams != b->nparams)
		return 0;
	if (a->arglen && memcmp(a->arg, b->arg, a->arglen))
		return 0;
	if (a->pathlen && memcmp(a->path, b->path, a->pathlen))
		return 0;
	for (size_t i = 0; i < a->nparams; i++) {
		const struct smtp_param *p = &a->params[i], *q = &b->params[i];
		if (p->keylen != q->keylen || memcmp(p->key, q->key, p->keylen)
		    || (p->val == NULL) != (q->val == NULL) || p->vallen != q->vallen
		    || (p->val && memcmp(p->val, q->val, p->vallen)))
			return 0;
	}
	return 1;
}

static void test_cmd_table(void)
{
	for (size_t i = 0; i < sizeof cmd_cases / sizeof cmd_cases[0]; i++) {
		const struct cmd_case *t = &cmd_cases[i];
		struct smtp_cmd c;
		memset(&c, 0x5a, sizeof c);
		int r = parse(t->line, t->len, &c);
		CHECKF(r == t->result, "\"%s\": got %d, want %d", t->line, r, t->result);
		CHECKF(c.verb == t->verb, "\"%s\": verb %d, want %d", t->line, c.verb, t->verb);
		if (r != SMTP_CMD_OK)
			continue;
		if (t->arg)
			CHECKF(c.arglen == strlen(t->arg) && memcmp(c.arg, t->arg, c.arglen) == 0,
			       "\"%s\": arg \"%.*s\"", t->line, (int)c.arglen, c.arg);
		if (t->path)
			CHECKF(c.pathlen == strlen(t->path) && memcmp(c.path, t->path, c.pathlen) == 0,
			       "\"%s\": path \"%.*s\"", t->line, (int)c.pathlen, c.path);
		else
			CHECKF(c.path == NULL && c.pathlen == 0, "\"%s\": a path", t->line);
		char params[256];
		params_text(&c, params, sizeof params);
		CHECKF(strcmp(params, t->params ? t->params : "") == 0, "\"%s\": params \"%s\"",
		       t->line, params);
	}
}

/* Every proper prefix of an accepted line is refused or means something else
 * (a prefix that only drops trailing spaces means the same, by design). */
static void test_cmd_prefixes(void)
{
	for (size_t i = 0; i < sizeof cmd_cases / sizeof cmd_cases[0]; i++) {
		const struct cmd_case *t = &cmd_cases[i];
		struct smtp_cmd full, part;
		if (t->result != SMTP_CMD_OK)
			continue;
		parse(t->line, t->len, &full);
		for (size_t k = 0; k < t->len; k++) {
			size_t j = k;
			while (j < t->len && t->line[j] == ' ')
				j++;
			if (j == t->len)
				continue;
			int r = parse(t->line, k, &part);
			CHECKF(r != SMTP_CMD_OK || !same_cmd(&full, &part), "\"%s\", prefix %zu", t->line, k);
		}
	}
}

/* Every verb, in three cases, with and without an argument. */
static void test_cmd_every_verb(void)
{
	static const struct { const char *args; int needs; } rule[SMTP_VERB__COUNT] = {
		[V(HELO)] = { "x", 1 }, [V(EHLO)] = { "x", 1 },
		[V(MAIL)] = { "FROM:<a@b>", 1 }, [V(RCPT)] = { "TO:<a@b>", 1 },
		[V(DATA)] = { NULL, 0 }, [V(RSET)] = { NULL, 0 }, [V(QUIT)] = { NULL, 0 },
		[V(STARTTLS)] = { NULL, 0 },
		[V(NOOP)] = { "x", 0 }, [V(VRFY)] = { "x", 0 }, [V(EXPN)] = { "x", 0 },
		[V(HELP)] = { "x", 0 },
		[V(AUTH)] = { "PLAIN", 1 }, [V(BDAT)] = { "1", 1 },
	};
	for (int v = V(HELO); v < SMTP_VERB__COUNT; v++) {
		const char *name = smtp_verb_name((enum smtp_verb)v);
		CHECKF(strlen(name) >= 4, "verb %d has no name", v);
		for (int form = 0; form < 3; form++) {
			char line[64];
			size_t n = strlen(name);
			for (size_t j = 0; j < n; j++) {
				char ch = name[j];
				if (form == 1 || (form == 2 && j % 2))
					ch = (char)(ch | 0x20);
				line[j] = ch;
			}
			line[n] = 0;
			struct smtp_cmd c;
			int r = parse(line, n, &c);
			CHECKF((int)c.verb == v && r == (rule[v].needs ? SMTP_CMD_ESYNTAX : SMTP_CMD_OK),
			       "\"%s\": %d", line, r);
			snprintf(line + n, sizeof line - n, " %s", rule[v].args ? rule[v].args : "x");
			r = parse(line, strlen(line), &c);
			CHECKF((int)c.verb == v && r == (rule[v].args ? SMTP_CMD_OK : SMTP_CMD_ESYNTAX),
			       "\"%s\": %d", line, r);
		}
	}
}

static void test_verb_name(void)
{
	CHECK(strcmp(smtp_verb_name(SMTP_VERB_NONE), "") == 0);
	CHECK(strcmp(smtp_verb_name(SMTP_VERB_UNKNOWN), "") == 0);
	CHECK(strcmp(smtp_verb_name(SMTP_VERB_MAIL), "MAIL") == 0);
	CHECK(strcmp(smtp_verb_name(SMTP_VERB_STARTTLS), "STARTTLS") == 0);
	CHECK(strcmp(smtp_verb_name(SMTP_VERB__COUNT), "") == 0);
	CHECK(strcmp(smtp_verb_name((enum smtp_verb)-1), "") == 0);
}

/* A full-length line of garbage and long arguments: no crash, a verdict. */
static void test_cmd_long(void)
{
	char *b = malloc(SMTP_LINE_MAX);
	struct smtp_cmd c;

	memset(b, 'A', SMTP_LINE_MAX);
	CHECK(smtp_cmd_parse(b, SMTP_LINE_MAX, &c) == SMTP_CMD_EUNKNOWN);
	memcpy(b, "NOOP ", 5);
	CHECK(smtp_cmd_parse(b, SMTP_LINE_MAX, &c) == SMTP_CMD_OK && c.arglen == SMTP_LINE_MAX - 5);
	memcpy(b, "MAIL FROM:<", 11);
	CHECK(smtp_cmd_parse(b, SMTP_LINE_MAX, &c) == SMTP_CMD_ESYNTAX);
	b[SMTP_LINE_MAX - 1] = '>';
	CHECK(smtp_cmd_parse(b, SMTP_LINE_MAX, &c) == SMTP_CMD_OK && c.pathlen == SMTP_LINE_MAX - 10);
	free(b);
}

int main(void)
{
	RUN(test_line_scan);
	RUN(test_line_stream);
	RUN(test_cmd_table);
	RUN(test_cmd_prefixes);
	RUN(test_cmd_every_verb);
	RUN(test_verb_name);
	RUN(test_cmd_long);
	return t_main_end();
}
