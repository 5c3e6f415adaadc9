/* tests/unit/test_ctl.c -- the control protocol's request line (policy/ctl.c). */
#include <stdlib.h>

#include "policy/ctl.h"
#include "tests/unit/t.h"

#define S(s) s, sizeof(s) - 1

static int parse(const char *s, size_t len, struct ctl_req *r)
{
	char *b = malloc(len ? len : 1);
	int rc;

	memcpy(b, s, len);
	rc = ctl_parse(b, len, r);
	/* Outputs point into the buffer: compare before freeing. */
	if (rc == 0) {
		CHECK(r->verb.p >= b && r->verb.p + r->verb.len <= b + len);
		for (size_t i = 0; i < r->nargs; i++)
			CHECK(r->arg[i].p >= b && r->arg[i].p + r->arg[i].len <= b + len);
	}
	free(b);
	return rc;
}

static void test_good(void)
{
	struct ctl_req r;
	static char line[] = "hold 00059a3f5c2b1e00";

	CHECK(parse(S("flush"), &r) == 0 && r.verb.len == 5 && r.nargs == 0);
	CHECK(parse(S("flush\r"), &r) == 0 && r.verb.len == 5);
	CHECK(ctl_parse(line, sizeof line - 1, &r) == 0 && r.nargs == 1);
	CHECK(ctl_word_is(&r.verb, "hold") && !ctl_word_is(&r.verb, "hol"));
	CHECK(ctl_word_is(&r.arg[0], "00059a3f5c2b1e00"));
	CHECK(parse(S("a b c d e"), &r) == 0 && r.nargs == 4 && r.arg[3].len == 1);
}

static void test_bad(void)
{
	static const struct { const char *s; size_t len; } bad[] = {
		{ S("") }, { S("\r") }, { S(" flush") }, { S("flush ") }, { S("hold  x") },
		{ S("a b c d e f") }, { S("fl\tush") }, { S("fl\0sh") }, { S("h\xc3\xa9") },
		{ S("x\r\r") }, { S("a\x7f") },
	};
	struct ctl_req r;
	char *longline = malloc(CTL_LINE_MAX + 2);

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECKF(parse(bad[i].s, bad[i].len, &r) == -1, "case %zu", i);
	memset(longline, 'a', CTL_LINE_MAX + 1);
	CHECK(ctl_parse(longline, CTL_LINE_MAX, &r) == 0);
	CHECK(ctl_parse(longline, CTL_LINE_MAX + 1, &r) == -1);
	free(longline);
	/* Every proper prefix of a good line parses to something shorter or
	 * fails; none reads past its length (ASan). */
	static const char good[] = "release 00059a3f5c2b1e00";
	for (size_t k = 0; k <= sizeof good - 1; k++)
		(void)parse(good, k, &r);
}

int main(void)
{
	RUN(test_good);
	RUN(test_bad);
	return t_main_end();
}
