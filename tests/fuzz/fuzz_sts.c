/*
 * tests/fuzz/fuzz_sts.c -- the MTA-STS cache record (queue/sts.h) on
 * hostile bytes, from a heap copy of exactly their length.  Invariants:
 * what decodes is a valid policy (sts_valid) that encodes back to the
 * same bytes; what does not decode leaves the policy cleared.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/queue.h"
#include "queue/sts.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mtasts_cached c;
static unsigned char out[STS_RECORD_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *b = malloc(size ? size : 1);
	int rc;

	memcpy(b, data, size);
	rc = sts_decode(b, size, &c);
	if (rc == QUEUE_OK) {
		REQUIRE(sts_valid(&c));
		REQUIRE(sts_encode(&c, out, sizeof out) == size && memcmp(out, b, size) == 0);
	} else {
		REQUIRE(rc == QUEUE_ECORRUPT && c.id[0] == '\0' && c.policy.nmx == 0);
	}
	free(b);
	return 0;
}
