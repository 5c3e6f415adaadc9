/*
 * queue/ext.c -- the DSN parameter record, version 1.  See ext.h and
 * FORMAT.md.  Written and read with policy/wire.h, whose errors stick.
 */
#include "queue/ext.h"

#include <string.h>

#include "policy/dsnparam.h"
#include "policy/wire.h"

/* The length of s if NUL-terminated within cap bytes, else cap. */
static size_t field_len(const char *s, size_t cap)
{
	const char *nul = memchr(s, 0, cap);
	return nul != NULL ? (size_t)(nul - s) : cap;
}

int ext_needed(const struct queue_envelope *env)
{
	if (env->dsn_ret != DSN_RET_NONE || env->dsn_envid[0] != '\0')
		return 1;
	for (size_t i = 0; i < env->nrcpts && env->rcpts != NULL; i++)
		if (env->rcpts[i].notify != 0 || env->rcpts[i].orcpt[0] != '\0')
			return 1;
	return 0;
}

void ext_clear(struct queue_envelope *env)
{
	env->dsn_ret = DSN_RET_NONE;
	env->dsn_envid[0] = '\0';
	for (size_t i = 0; env->rcpts != NULL && i < env->nrcpts && i < env->rcpt_cap; i++) {
		env->rcpts[i].notify = 0;
		env->rcpts[i].orcpt[0] = '\0';
	}
}

size_t ext_size(const struct queue_envelope *env)
{
	size_t el = field_len(env->dsn_envid, sizeof env->dsn_envid);
	size_t n = EXT_HEAD_MIN + el;

	if (env->dsn_ret > DSN_RET_HDRS || el == sizeof env->dsn_envid ||
	    (el > 0 && !dsnparam_envid_ok(env->dsn_envid, el)))
		return 0;
	if (env->nrcpts > env->rcpt_cap || env->nrcpts > UINT32_MAX ||
	    (env->nrcpts > 0 && env->rcpts == NULL))
		return 0;
	for (size_t i = 0; i < env->nrcpts; i++) {
		const struct queue_rcpt *r = &env->rcpts[i];
		size_t ol = field_len(r->orcpt, sizeof r->orcpt);

		if (!dsnparam_notify_valid(r->notify) || ol == sizeof r->orcpt ||
		    (ol > 0 && !dsnparam_orcpt_ok(r->orcpt, ol)))
			return 0;
		n += EXT_RCPT_MIN + ol;
	}
	return n;
}

size_t ext_encode(const struct queue_envelope *env, unsigned char *buf, size_t cap)
{
	size_t n = ext_size(env);
	struct wire_wr w;

	if (n == 0 || n > cap)
		return 0;
	wire_wr_init(&w, buf, n);
	wire_put_u8(&w, EXT_VERSION);
	wire_put_u8(&w, env->dsn_ret);
	wire_put_str(&w, env->dsn_envid);
	wire_put_u32(&w, (uint32_t)env->nrcpts);
	for (size_t i = 0; i < env->nrcpts; i++) {
		wire_put_u8(&w, env->rcpts[i].notify);
		wire_put_str(&w, env->rcpts[i].orcpt);
	}
	return wire_wr_end(&w) == n ? n : 0;
}

int ext_decode(const unsigned char *buf, size_t len, struct queue_envelope *env)
{
	struct wire_rd r;
	char orcpt[QUEUE_ORCPT_MAX + 1];
	size_t count;

	wire_rd_init(&r, buf, len);
	if (wire_u8(&r) != EXT_VERSION)
		wire_fail(&r);
	env->dsn_ret = wire_u8(&r);
	wire_str(&r, env->dsn_envid, QUEUE_ENVID_MAX);
	count = wire_u32(&r);
	if (env->dsn_ret > DSN_RET_HDRS || count != env->nrcpts || count > r.left / EXT_RCPT_MIN ||
	    (env->dsn_envid[0] != '\0' && !dsnparam_envid_ok(env->dsn_envid, strlen(env->dsn_envid))))
		wire_fail(&r);
	for (size_t i = 0; i < count && wire_ok(&r) == 0; i++) {
		uint8_t notify = wire_u8(&r);

		wire_str(&r, orcpt, QUEUE_ORCPT_MAX);
		if (!dsnparam_notify_valid(notify) ||
		    (orcpt[0] != '\0' && !dsnparam_orcpt_ok(orcpt, strlen(orcpt))))
			wire_fail(&r);
		if (env->rcpts != NULL && i < env->rcpt_cap) {
			env->rcpts[i].notify = notify;
			memcpy(env->rcpts[i].orcpt, orcpt, strlen(orcpt) + 1);
		}
	}
	if (wire_end(&r) != 0) {
		ext_clear(env);
		return QUEUE_ECORRUPT;
	}
	return QUEUE_OK;
}
