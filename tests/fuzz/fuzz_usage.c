/*
 * tests/fuzz/fuzz_usage.c -- queue/usage.c on arbitrary bytes: the usage
 * record decoder, the counter arithmetic, and the client key of arbitrary
 * client and user strings.  Invariants: a record that decodes encodes back
 * to the same bytes; adding then taking away a message gives back the same
 * counters, and a failed change leaves them alone; a key is never longer
 * than USAGE_KEY_MAX and starts "a:" or "u:".
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/usage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct usage u, v;
	unsigned char rec[USAGE_RECORD];
	struct queue_envelope env;
	char key[USAGE_KEY_MAX];
	uint64_t n = 0;
	size_t half, klen;

	if (usage_decode(data, size, &u) == QUEUE_OK) {
		if (size != USAGE_RECORD)
			abort();
		usage_encode(&u, rec);
		if (memcmp(rec, data, USAGE_RECORD) != 0)
			abort();
		for (size_t i = 0; i < 8; i++)
			n = n << 8 | data[i];
		v = u;
		if (usage_apply(&v, +1, n) == QUEUE_OK) {
			if (usage_apply(&v, -1, n) != QUEUE_OK || v.messages != u.messages
			    || v.bytes != u.bytes)
				abort();
		} else if (v.messages != u.messages || v.bytes != u.bytes) {
			abort();
		}
		v = u;
		if (usage_apply(&v, -1, n) != QUEUE_OK && (v.messages != u.messages
		                                            || v.bytes != u.bytes))
			abort();
	}
	/* The first half is the client, the rest the user (either may be
	 * unterminated within its field). */
	memset(&env, 0, sizeof env);
	half = size / 2;
	memcpy(env.client, data, half < sizeof env.client ? half : sizeof env.client);
	memcpy(env.auth_user, data + half,
	       size - half < sizeof env.auth_user ? size - half : sizeof env.auth_user);
	klen = usage_key(&env, key);
	if (klen > USAGE_KEY_MAX || (klen > 0 && (klen < 2 || key[1] != ':'
	                                          || (key[0] != 'a' && key[0] != 'u'))))
		abort();
	return 0;
}
