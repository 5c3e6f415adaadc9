/*
 * tests/fuzz/fuzz_tlsrec.c -- the TLS report record (queue/tlsrec.h), as
 * the queue link brings it (TLSRPT_ADD) and LMDB keeps it, on hostile
 * bytes from a heap copy of exactly their length.  Invariants: what
 * decodes encodes back to the same bytes with the same flags, and merges
 * into a copy of itself (same domain and day) without error; what does
 * not decode is QUEUE_ECORRUPT.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/queue.h"
#include "queue/tlsrec.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tlsrpt_report r, twice;
static unsigned char out[TLSREC_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *b = malloc(size ? size : 1);
	unsigned flags = 0;
	int rc;

	memcpy(b, data, size);
	rc = tlsrec_decode(b, size, &r, &flags);
	if (rc == QUEUE_OK) {
		REQUIRE(flags <= TLSREC_SENT);
		REQUIRE(tlsrec_encode(&r, flags, out, sizeof out) == size &&
		        memcmp(out, b, size) == 0);
		twice = r;
		REQUIRE(tlsrpt_merge(&twice, &r) >= 0);
	} else {
		REQUIRE(rc == QUEUE_ECORRUPT);
	}
	free(b);
	return 0;
}
