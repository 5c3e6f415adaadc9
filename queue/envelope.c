/*
 * queue/envelope.c -- the envelope record, version 1.  See envelope.h and
 * FORMAT.md.  A writer and a reader walk the same field list; every read
 * checks the bytes left first, so a short or lying record ends in
 * QUEUE_ECORRUPT and never in a read past the buffer.
 */
#include "queue/envelope.h"

#include <string.h>

/* Writer: bounds were checked by envelope_size() before the first byte. */
struct wr {
	unsigned char *p;
};

static void put_be(struct wr *w, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		w->p[i] = (unsigned char)(v >> (8 * (n - 1 - i)));
	w->p += n;
}

static void put_str(struct wr *w, const char *s)
{
	size_t n = strlen(s);
	put_be(w, n, 2);
	memcpy(w->p, s, n);
	w->p += n;
}

/* Reader: fails sticky; after a failure every get returns zeros. */
struct rd {
	const unsigned char *p;
	size_t left;
	int bad;
};

static uint64_t get_be(struct rd *r, unsigned n)
{
	uint64_t v = 0;
	if (r->bad || r->left < n) {
		r->bad = 1;
		return 0;
	}
	for (unsigned i = 0; i < n; i++)
		v = v << 8 | r->p[i];
	r->p += n;
	r->left -= n;
	return v;
}

/* A string into out[0..max] (max bytes plus the NUL); out may be NULL to
 * check and skip. */
static void get_str(struct rd *r, char *out, size_t max)
{
	size_t n = (size_t)get_be(r, 2);
	if (r->bad || n > max || n > r->left || memchr(r->p, 0, n) != NULL) {
		r->bad = 1;
		return;
	}
	if (out != NULL) {
		memcpy(out, r->p, n);
		out[n] = '\0';
	}
	r->p += n;
	r->left -= n;
}

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
	struct wr w = { buf };

	if (n == 0 || n > cap)
		return 0;
	put_be(&w, ENVELOPE_VERSION, 1);
	put_be(&w, env->id, 8);
	put_be(&w, (uint64_t)env->received, 8);
	put_be(&w, env->flags, 4);
	put_be(&w, env->size, 8);
	put_str(&w, env->sender);
	put_str(&w, env->helo);
	put_str(&w, env->client);
	put_str(&w, env->auth_user);
	put_be(&w, env->nrcpts, 4);
	for (size_t i = 0; i < env->nrcpts; i++) {
		const struct queue_rcpt *r = &env->rcpts[i];
		put_str(&w, r->addr);
		put_be(&w, r->state, 1);
		put_be(&w, r->attempts, 2);
		put_be(&w, (uint64_t)r->next_try, 8);
		put_str(&w, r->last_error);
	}
	return n;
}

int envelope_decode(const unsigned char *buf, size_t len, struct queue_envelope *env)
{
	struct rd r = { buf, len, 0 };
	struct queue_rcpt skip;
	size_t count;

	if (get_be(&r, 1) != ENVELOPE_VERSION)
		return QUEUE_ECORRUPT;
	env->id = get_be(&r, 8);
	env->received = (int64_t)get_be(&r, 8);
	env->flags = (uint32_t)get_be(&r, 4);
	env->size = get_be(&r, 8);
	get_str(&r, env->sender, QUEUE_ADDR_MAX);
	get_str(&r, env->helo, QUEUE_NAME_MAX);
	get_str(&r, env->client, sizeof env->client - 1);
	get_str(&r, env->auth_user, QUEUE_NAME_MAX);
	count = (size_t)get_be(&r, 4);
	if (r.bad || count > r.left / ENVELOPE_RCPT_MIN)
		return QUEUE_ECORRUPT;
	for (size_t i = 0; i < count; i++) {
		/* Beyond the caller's array, decode into a scratch entry so the
		 * whole record is still checked. */
		struct queue_rcpt *rc = env->rcpts != NULL && i < env->rcpt_cap
		                        ? &env->rcpts[i] : &skip;
		get_str(&r, rc->addr, QUEUE_ADDR_MAX);
		rc->state = (uint8_t)get_be(&r, 1);
		rc->attempts = (uint16_t)get_be(&r, 2);
		rc->next_try = (int64_t)get_be(&r, 8);
		get_str(&r, rc->last_error, QUEUE_ERR_MAX);
		if (rc->state > QUEUE_RCPT_BOUNCED)
			r.bad = 1;
		if (r.bad)
			return QUEUE_ECORRUPT;
	}
	if (r.left != 0)
		return QUEUE_ECORRUPT;
	env->nrcpts = count;
	if (env->rcpts != NULL && count > env->rcpt_cap)
		return QUEUE_EINVAL;
	return QUEUE_OK;
}
