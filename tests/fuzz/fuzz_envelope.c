/*
 * tests/fuzz/fuzz_envelope.c -- envelope_decode() on arbitrary bytes.
 * Invariants: decode never reads past the input (ASan), and a record that
 * decodes encodes back to exactly the same bytes, which decode again to
 * the same envelope.  Recipients are sized the way queue/store.c does it:
 * count with rcpts == NULL, then allocate.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(const struct queue_envelope *a, const struct queue_envelope *b)
{
	if (a->id != b->id || a->received != b->received || a->flags != b->flags
	    || a->size != b->size || a->nrcpts != b->nrcpts
	    || strcmp(a->sender, b->sender) != 0 || strcmp(a->helo, b->helo) != 0
	    || strcmp(a->client, b->client) != 0 || strcmp(a->auth_user, b->auth_user) != 0)
		return 0;
	for (size_t i = 0; i < a->nrcpts; i++) {
		const struct queue_rcpt *x = &a->rcpts[i], *y = &b->rcpts[i];
		if (strcmp(x->addr, y->addr) != 0 || x->state != y->state
		    || x->attempts != y->attempts || x->next_try != y->next_try
		    || strcmp(x->last_error, y->last_error) != 0)
			return 0;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct queue_envelope a, b;
	unsigned char *out;
	size_t n, len;
	int rc;

	a.rcpts = NULL;
	rc = envelope_decode(data, size, &a);
	if (rc != QUEUE_OK) {
		if (rc != QUEUE_ECORRUPT)
			abort();
		return 0;
	}
	/* The count is bounded by the input, so this allocation is too. */
	if (a.nrcpts > size / ENVELOPE_RCPT_MIN)
		abort();
	n = a.nrcpts;
	a.rcpts = calloc(n ? n : 1, sizeof *a.rcpts);
	b.rcpts = calloc(n ? n : 1, sizeof *b.rcpts);
	a.rcpt_cap = b.rcpt_cap = n;
	if (envelope_decode(data, size, &a) != QUEUE_OK || a.nrcpts != n)
		abort();
	if (n > 0) {
		/* One slot short: EINVAL with the count. */
		b.rcpt_cap = n - 1;
		if (envelope_decode(data, size, &b) != QUEUE_EINVAL || b.nrcpts != n)
			abort();
		b.rcpt_cap = n;
	}

	len = envelope_size(&a);
	if (len != size)
		abort();
	out = malloc(len);
	if (envelope_encode(&a, out, len) != len || memcmp(out, data, len) != 0)
		abort();
	if (envelope_decode(out, len, &b) != QUEUE_OK || !same(&a, &b))
		abort();
	free(out);
	free(a.rcpts);
	free(b.rcpts);
	return 0;
}
