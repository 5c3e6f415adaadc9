/*
 * queue/envelope.c -- the envelope record, version 1.  See envelope.h and
 * FORMAT.md.  A writer and a reader walk the same field list with
 * policy/wire.h, whose errors stick, so a short or lying record ends in
 * QUEUE_ECORRUPT and never in a read past the buffer.
 */
#include "queue/envelope.h"

#include <string.h>

#include "policy/wire.h"

/* The length of s if it is NUL-terminated within cap bytes, else cap. */
static size_t field_len(const char *s, size_t cap)
{
	const char *nul = memchr(s, 0, cap);
	return nul != NULL ? (size_t)(nul - s) : cap;
}

size_t envelope_size(const struct queue_envelope *env)
{
	const char *str[4] = { env->sender, env->helo, env->client, env->auth_user };
	const size_t cap[4] = { sizeof env->sender, sizeof env->helo,
	                        sizeof env->client, sizeof env->auth_user };
	size_t n = ENVELOPE_HEAD + 4;

	for (int i = 0; i < 4; i++) {
		size_t l = field_len(str[i], cap[i]);
		if (l == cap[i])
			return 0;
		n += 2 + l;
	}
	if (env->nrcpts > env->rcpt_cap || env->nrcpts > UINT32_MAX
	    || (env->nrcpts > 0 && env->rcpts == NULL))
		return 0;
	for (size_t i = 0; i < env->nrcpts; i++) {
		const struct queue_rcpt *r = &env->rcpts[i];
		size_t la = field_len(r->addr, sizeof r->addr);
		size_t le = field_len(r->last_error, sizeof r->last_error);
		if (la == sizeof r->addr || le == sizeof r->last_error
		    || r->state > QUEUE_RCPT_BOUNCED)
			return 0;
		n += ENVELOPE_RCPT_MIN + la + le;
	}
	return n;
}

size_t envelope_encode(const struct queue_envelope *env, unsigned char *buf, size_t cap)
{
	size_t n = envelope_size(env);
	struct wire_wr w;

	if (n == 0 || n > cap)
		return 0;
	wire_wr_init(&w, buf, n);
	wire_put_u8(&w, ENVELOPE_VERSION);
	wire_put_u64(&w, env->id);
	wire_put_i64(&w, env->received);
	wire_put_u32(&w, env->flags);
	wire_put_u64(&w, env->size);
	wire_put_str(&w, env->sender);
	wire_put_str(&w, env->helo);
	wire_put_str(&w, env->client);
	wire_put_str(&w, env->auth_user);
	wire_put_u32(&w, (uint32_t)env->nrcpts);
	for (size_t i = 0; i < env->nrcpts; i++) {
		const struct queue_rcpt *r = &env->rcpts[i];

		wire_put_str(&w, r->addr);
		wire_put_u8(&w, r->state);
		wire_put_u16(&w, r->attempts);
		wire_put_i64(&w, r->next_try);
		wire_put_str(&w, r->last_error);
	}
	return wire_wr_end(&w) == n ? n : 0;
}

int envelope_patch(unsigned char *buf, size_t len, queue_id id, int64_t received, uint64_t size)
{
	struct wire_wr w;

	if (len < ENVELOPE_HEAD)
		return -1;
	/* version(1) id(8) received(8) flags(4) size(8) */
	wire_wr_init(&w, buf + 1, ENVELOPE_HEAD - 1);
	wire_put_u64(&w, id);
	wire_put_i64(&w, received);
	if (wire_put_room(&w, 4) == NULL)
		return -1;
	wire_put_u64(&w, size);
	return wire_wr_end(&w) == ENVELOPE_HEAD - 1 ? 0 : -1;
}

/* The record's fields from r, without the check that nothing follows. */
static int decode_fields(struct wire_rd *r, struct queue_envelope *env)
{
	struct queue_rcpt skip;
	size_t count;

	if (wire_u8(r) != ENVELOPE_VERSION)
		return QUEUE_ECORRUPT;
	env->id = wire_u64(r);
	env->received = wire_i64(r);
	env->flags = wire_u32(r);
	env->size = wire_u64(r);
	wire_str(r, env->sender, QUEUE_ADDR_MAX);
	wire_str(r, env->helo, QUEUE_NAME_MAX);
	wire_str(r, env->client, sizeof env->client - 1);
	wire_str(r, env->auth_user, QUEUE_NAME_MAX);
	count = wire_u32(r);
	if (wire_ok(r) != 0 || count > r->left / ENVELOPE_RCPT_MIN)
		return QUEUE_ECORRUPT;
	for (size_t i = 0; i < count; i++) {
		/* Beyond the caller's array, decode into a scratch entry so the
		 * whole record is still checked. */
		struct queue_rcpt *rc = env->rcpts != NULL && i < env->rcpt_cap
		                        ? &env->rcpts[i] : &skip;

		wire_str(r, rc->addr, QUEUE_ADDR_MAX);
		rc->state = wire_u8(r);
		rc->attempts = wire_u16(r);
		rc->next_try = wire_i64(r);
		wire_str(r, rc->last_error, QUEUE_ERR_MAX);
		if (rc->state > QUEUE_RCPT_BOUNCED)
			wire_fail(r);
		if (wire_ok(r) != 0)
			return QUEUE_ECORRUPT;
	}
	env->nrcpts = count;
	return QUEUE_OK;
}

int envelope_decode(const unsigned char *buf, size_t len, struct queue_envelope *env)
{
	struct wire_rd r;

	wire_rd_init(&r, buf, len);
	if (decode_fields(&r, env) != QUEUE_OK || wire_end(&r) != 0)
		return QUEUE_ECORRUPT;
	if (env->rcpts != NULL && env->nrcpts > env->rcpt_cap)
		return QUEUE_EINVAL;
	return QUEUE_OK;
}

size_t envelope_span(const unsigned char *buf, size_t len)
{
	struct queue_envelope env;
	struct wire_rd r;

	env.rcpts = NULL;
	wire_rd_init(&r, buf, len);
	if (decode_fields(&r, &env) != QUEUE_OK)
		return 0;
	return len - r.left;
}
