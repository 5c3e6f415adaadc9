/*
 * tests/fuzz/fuzz_ext.c -- the DSN parameter record (queue/ext.h) on
 * hostile bytes.  The first byte gives the envelope's recipient count
 * (0..15); the rest is the record, from a heap copy of exactly its
 * length.  Invariants: what decodes encodes back to the same bytes, holds
 * only values the SMTP parser would take, decodes the same when only
 * checked (no array) or into a short array; what does not decode leaves
 * the parameters cleared.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/dsnparam.h"
#include "queue/ext.h"
#include "queue/queue.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct queue_rcpt r[16], s[16];
static unsigned char out[16 * (3 + QUEUE_ORCPT_MAX) + EXT_HEAD_MIN + QUEUE_ENVID_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct queue_envelope env, chk;
	unsigned char *b;
	size_t n;
	int rc;

	if (size == 0)
		return 0;
	n = data[0] & 15u;
	b = malloc(size - 1 ? size - 1 : 1);
	memcpy(b, data + 1, size - 1);
	memset(&env, 0, sizeof env);
	memset(r, 0, sizeof r);
	env.rcpts = r;
	env.nrcpts = n;
	env.rcpt_cap = 16;
	rc = ext_decode(b, size - 1, &env);
	REQUIRE(rc == QUEUE_OK || rc == QUEUE_ECORRUPT);
	if (rc == QUEUE_OK) {
		REQUIRE(env.dsn_ret <= DSN_RET_HDRS);
		for (size_t i = 0; i < n; i++) {
			REQUIRE(dsnparam_notify_valid(r[i].notify));
			REQUIRE(r[i].orcpt[0] == 0 || dsnparam_orcpt_ok(r[i].orcpt, strlen(r[i].orcpt)));
		}
		REQUIRE(ext_size(&env) == size - 1);
		REQUIRE(ext_encode(&env, out, sizeof out) == size - 1 &&
		        memcmp(out, b, size - 1) == 0);
		chk = env;
		chk.rcpts = NULL;
		REQUIRE(ext_decode(b, size - 1, &chk) == QUEUE_OK);
		chk.rcpts = s;
		chk.rcpt_cap = n / 2;
		REQUIRE(ext_decode(b, size - 1, &chk) == QUEUE_OK);
		for (size_t i = 0; i < n / 2; i++)
			REQUIRE(s[i].notify == r[i].notify && strcmp(s[i].orcpt, r[i].orcpt) == 0);
	} else {
		REQUIRE(env.dsn_ret == 0 && env.dsn_envid[0] == 0);
		for (size_t i = 0; i < n; i++)
			REQUIRE(r[i].notify == 0 && r[i].orcpt[0] == 0);
	}
	free(b);
	return 0;
}
