/*
 * tests/fuzz/fuzz_mtasts_fetch.c -- the MTA-STS policy fetch's response
 * reader (policy/mtasts_fetch.h) on hostile responses.
 *
 * The first two bytes choose a split point and whether the peer closes at
 * the end; the rest is the response.  It is fed whole, in two pieces at
 * the split point, and byte by byte, each piece from a heap copy of its
 * exact size: the three must agree on the verdict, the reason, the status
 * and the body, the body stays within 64 KiB, DONE means status 200, and
 * a body that is done goes on to the policy parser.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/mtasts_fetch.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mtasts_fetch f[3];
static char body[3][MTASTS_POLICY_MAX];

static enum mtasts_fetch_rc feed(struct mtasts_fetch *x, const uint8_t *p, size_t n)
{
	char *b = malloc(n ? n : 1);
	enum mtasts_fetch_rc rc;

	memcpy(b, p, n);
	rc = mtasts_fetch_feed(x, b, n);
	free(b);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum mtasts_fetch_rc rc[3];
	size_t split;
	int eof;

	if (size < 2)
		return 0;
	split = data[0];
	eof = data[1] & 1;
	data += 2;
	size -= 2;
	if (split > size)
		split = size;
	for (int i = 0; i < 3; i++)
		mtasts_fetch_init(&f[i], body[i], sizeof body[i]);
	rc[0] = feed(&f[0], data, size);
	rc[1] = feed(&f[1], data, split);
	if (rc[1] == MTASTS_FETCH_MORE)
		rc[1] = feed(&f[1], data + split, size - split);
	rc[2] = MTASTS_FETCH_MORE;
	for (size_t k = 0; k < size && rc[2] == MTASTS_FETCH_MORE; k++)
		rc[2] = feed(&f[2], data + k, 1);
	for (int i = 0; i < 3; i++) {
		if (eof && rc[i] == MTASTS_FETCH_MORE)
			rc[i] = mtasts_fetch_eof(&f[i]);
		REQUIRE(rc[i] == rc[0] && f[i].why == f[0].why && f[i].status == f[0].status);
		REQUIRE(f[i].bodylen == f[0].bodylen && f[i].bodylen <= MTASTS_POLICY_MAX);
		REQUIRE(memcmp(body[i], body[0], f[0].bodylen) == 0);
		REQUIRE((rc[i] == MTASTS_FETCH_FAIL) == (f[i].why != NULL));
	}
	if (rc[0] == MTASTS_FETCH_DONE) {
		struct mtasts_policy p;
		const char *why;
		REQUIRE(f[0].status == 200);
		(void)mtasts_policy_parse(body[0], f[0].bodylen, &p, &why);
	}
	return 0;
}
