/*
 * tests/fuzz/fuzz_http.c -- http_req_parse(), the metrics endpoint's
 * request parser (policy/http.h).
 *
 * The input is what a client sends.  It is parsed from a heap copy of
 * exactly its length (ASan sees any over-read); the answer must be one the
 * header promises, its pointers must lie in the input, and every prefix
 * must give "need more" or the whole input's own answer (so the server,
 * which parses again as bytes arrive, answers the same however the bytes
 * are split).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/http.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

static int parse(const uint8_t *data, size_t len, struct http_req *r)
{
	char *b = malloc(len ? len : 1);
	int got;

	memcpy(b, data, len);
	got = http_req_parse(b, len, r);
	if (got > 0)
		REQUIRE(r->path >= b && r->pathlen > 0 && r->path + r->pathlen <= b + len &&
		        r->path[0] == '/');
	free(b);
	return got;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_req r, p;
	int got = parse(data, size, &r);

	REQUIRE(got == -2 || got == -1 || (got > 0 && (size_t)got <= size && got <= HTTP_HEAD_MAX));
	if (got == -1)
		REQUIRE(r.status == 400 || r.status == 405 || r.status == 414 || r.status == 431 ||
		        r.status == 505);
	if (got > 0) {
		REQUIRE(r.method == HTTP_GET || r.method == HTTP_HEAD);
		REQUIRE(r.minor <= 1 && r.pathlen <= HTTP_TARGET_MAX);
		REQUIRE(data[got - 1] == '\n');
	}
	if (got == -2)
		REQUIRE(size < HTTP_HEAD_MAX);
	/* A few prefixes (all of them for short inputs). */
	for (size_t cut = 0; cut < size; cut += size < 64 ? 1 : size / 16 + 1) {
		int pr = parse(data, cut, &p);

		REQUIRE(pr == -2 || (pr == -1 && got == -1 && p.status == r.status) ||
		        (pr > 0 && pr == got));
	}
	return 0;
}
