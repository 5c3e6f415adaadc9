/*
 * tests/unit/test_log.c -- what the log makes of words from the network:
 * log_quote() (a token: nothing but printable ASCII other than space, '"',
 * '\\' and '='), log_text() (the inside of "..."), log_quoted() (the same
 * with its quotes): never more than one line, never past the buffer, cut
 * with "..." and, quoted, still closed.
 */
#include <string.h>

#include "t.h"
#include "mta/net/log.h"

static const char reply[] = "250 2.0.0 Ok: queued as 4XzQ \"x\" a\\b=c\r\nMAIL FROM:<e@v>\x01\xc3\xa9";

static void test_quote(void)
{
	char buf[256];

	CHECK(strcmp(log_quote(reply, sizeof reply - 1, buf, sizeof buf),
	             "250\\x202.0.0\\x20Ok:\\x20queued\\x20as\\x204XzQ\\x20\\x22x\\x22\\x20a\\x5cb\\x3dc"
	             "\\x0d\\x0aMAIL\\x20FROM:<e@v>\\x01\\xc3\\xa9") == 0);
}

static void test_text(void)
{
	char buf[256];

	CHECK(strcmp(log_text(reply, sizeof reply - 1, buf, sizeof buf),
	             "250 2.0.0 Ok: queued as 4XzQ \\x22x\\x22 a\\x5cb=c\\x0d\\x0aMAIL FROM:<e@v>"
	             "\\x01\\xc3\\xa9") == 0);
}

static void test_quoted(void)
{
	char buf[256];

	CHECK(strcmp(log_quoted(reply, sizeof reply - 1, buf, sizeof buf),
	             "\"250 2.0.0 Ok: queued as 4XzQ \\x22x\\x22 a\\x5cb=c\\x0d\\x0aMAIL FROM:<e@v>"
	             "\\x01\\xc3\\xa9\"") == 0);
	CHECK(strcmp(log_quoted("", 0, buf, sizeof buf), "\"\"") == 0);
}

static void test_quoted_cut(void)
{
	/* Every size: within the buffer, one line, opened and closed by '"',
	 * and cut with "..." when the text does not fit. */
	char buf[64];
	size_t whole = strlen(log_quoted(reply, sizeof reply - 1, (char[256]){ 0 }, 256));

	for (size_t cap = 0; cap <= sizeof buf; cap++) {
		size_t n;

		memset(buf, 'Z', sizeof buf);
		log_quoted(reply, sizeof reply - 1, buf, cap);
		if (cap < 6) {
			CHECKF(cap == 0 || buf[0] == 0, "cap %zu", cap);
			continue;
		}
		n = strlen(buf);
		CHECKF(n < cap, "cap %zu: length %zu", cap, n);
		CHECKF(buf[0] == '"' && buf[n - 1] == '"' && n >= 2, "cap %zu: %s", cap, buf);
		CHECKF(strchr(buf, '\n') == NULL && strchr(buf, '\r') == NULL, "cap %zu", cap);
		CHECKF(memchr(buf + 1, '"', n - 2) == NULL, "cap %zu: a quote inside: %s", cap, buf);
		if (n < whole)
			CHECKF(n >= 5 && memcmp(buf + n - 4, "...\"", 4) == 0, "cap %zu: %s", cap, buf);
		for (size_t i = cap; i < sizeof buf; i++)
			CHECKF(buf[i] == 'Z', "cap %zu: wrote byte %zu", cap, i);
	}
}

int main(void)
{
	RUN(test_quote);
	RUN(test_text);
	RUN(test_quoted);
	RUN(test_quoted_cut);
	return t_main_end();
}
