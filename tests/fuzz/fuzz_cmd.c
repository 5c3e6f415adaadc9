/*
 * tests/fuzz/fuzz_cmd.c -- smtp_line_scan() and smtp_cmd_parse().
 *
 * The input is a client's byte stream: it is framed into lines as the
 * session does, each clean line is parsed, and the results are checked
 * against what policy/cmd.h promises.  Every buffer handed to the parser
 * is a heap copy of exactly its length so ASan sees any over-read.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/cmd.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

static int inside(const char *p, size_t n, const char *buf, size_t len)
{
	return p >= buf && n <= len && (size_t)(p - buf) <= len - n;
}

static void check_cmd(const char *line, size_t len)
{
	char *b = malloc(len ? len : 1);
	struct smtp_cmd c;
	memcpy(b, line, len);
	enum smtp_cmd_result r = smtp_cmd_parse(b, len, &c);
	REQUIRE(r == SMTP_CMD_OK || r == SMTP_CMD_EUNKNOWN || r == SMTP_CMD_ESYNTAX
	        || r == SMTP_CMD_EPARAMS);
	REQUIRE((unsigned)c.verb < SMTP_VERB__COUNT);
	REQUIRE(smtp_verb_name(c.verb) != NULL);
	REQUIRE((r == SMTP_CMD_EUNKNOWN) == (c.verb == SMTP_VERB_UNKNOWN));
	if (r == SMTP_CMD_OK) {
		if (c.arg != NULL)
			REQUIRE(inside(c.arg, c.arglen, b, len));
		if (c.verb == SMTP_VERB_MAIL || c.verb == SMTP_VERB_RCPT) {
			REQUIRE(inside(c.path, c.pathlen, b, len));
			REQUIRE(c.pathlen >= 2 && c.path[0] == '<' && c.path[c.pathlen - 1] == '>');
		} else {
			REQUIRE(c.path == NULL && c.nparams == 0);
		}
		REQUIRE(c.nparams <= SMTP_CMD_MAXPARAMS);
		for (size_t i = 0; i < c.nparams; i++) {
			const struct smtp_param *p = &c.params[i];
			REQUIRE(p->keylen > 0 && inside(p->key, p->keylen, b, len));
			REQUIRE(p->val == NULL || (p->vallen > 0 && inside(p->val, p->vallen, b, len)));
			for (size_t j = 0; p->val && j < p->vallen; j++)
				REQUIRE(p->val[j] > 32 && p->val[j] < 127 && p->val[j] != '=');
		}
		/* Deterministic: the same line parses the same way again. */
		struct smtp_cmd again;
		REQUIRE(smtp_cmd_parse(b, len, &again) == r && again.verb == c.verb
		        && again.arglen == c.arglen && again.nparams == c.nparams);
	}
	free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The first byte picks the line limit: small limits reach the -1 path. */
	if (size == 0)
		return 0;
	size_t max = data[0] < 128 ? SMTP_LINE_MAX : (size_t)(data[0] - 127);
	const char *in = (const char *)data + 1;
	size_t len = size - 1, pos = 0;

	while (pos < len) {
		size_t left = len - pos;
		char *b = malloc(left);
		struct smtp_line ln;
		memcpy(b, in + pos, left);
		ssize_t n = smtp_line_scan(b, left, max, &ln);
		if (n == -2) {
			REQUIRE(left < max && memchr(b, '\n', left) == NULL);
			free(b);
			break;
		}
		if (n == -1) {
			REQUIRE(left >= max && memchr(b, '\n', max) == NULL);
			/* The session skips to the next LF and goes on. */
			const char *lf = memchr(b, '\n', left);
			free(b);
			if (lf == NULL)
				break;
			pos += (size_t)(lf - b) + 1;
			continue;
		}
		REQUIRE(n > 0 && (size_t)n <= left && (size_t)n <= max && b[n - 1] == '\n');
		REQUIRE(memchr(b, '\n', (size_t)n - 1) == NULL);
		REQUIRE(ln.len == (size_t)n - 1 || (ln.len == (size_t)n - 2 && b[n - 2] == '\r'));
		REQUIRE(((ln.flags & SMTP_LINE_BARE_LF) != 0) == (ln.len == (size_t)n - 1));
		REQUIRE(((ln.flags & SMTP_LINE_NUL) != 0) == (memchr(b, 0, ln.len) != NULL));
		REQUIRE(((ln.flags & SMTP_LINE_BARE_CR) != 0) == (memchr(b, '\r', ln.len) != NULL));
		/* Any shorter prefix holding the LF gives the same line; one
		 * without it asks for more. */
		struct smtp_line l2;
		REQUIRE(smtp_line_scan(b, (size_t)n - 1, max, &l2) == ((size_t)n - 1 < max ? -2 : -1));
		check_cmd(b, ln.len);
		free(b);
		pos += (size_t)n;
	}
	return 0;
}
