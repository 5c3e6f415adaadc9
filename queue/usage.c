/* queue/usage.c -- usage records and keys; see usage.h */
#include "queue/usage.h"

#include <string.h>

#include "policy/net.h"
#include "policy/wire.h"

/* Copy the NUL-terminated s (at most cap - 1 bytes before its NUL) after
 * prefix; 0 if s is not terminated within cap. */
static size_t key_put(char *key, const char *prefix, const char *s, size_t cap)
{
	const char *nul = memchr(s, '\0', cap);
	size_t n;

	if (nul == NULL)
		return 0;
	n = (size_t)(nul - s);
	memcpy(key, prefix, 2);
	memcpy(key + 2, s, n);
	return 2 + n;
}

size_t usage_key(const struct queue_envelope *env, char key[USAGE_KEY_MAX])
{
	char net[IP_TEXT_MAX];
	struct ipaddr ip;
	size_t n;

	if (env->auth_user[0] != '\0')
		return key_put(key, "u:", env->auth_user, sizeof env->auth_user);
	n = key_put(key, "a:", env->client, sizeof env->client);
	if (n > 2 && ip_parse(key + 2, n - 2, &ip) == 0 && ip.family == IP_V6) {
		/* One IPv6 host has a /64 to pick addresses from. */
		memset(ip.a + 8, 0, 8);
		n = ip_format(&ip, net, sizeof net);
		if (n > 0 && n < sizeof net && 2 + n <= USAGE_KEY_MAX) {
			memcpy(key + 2, net, n);
			return 2 + n;
		}
		return 0;
	}
	return n;
}

void usage_encode(const struct usage *u, unsigned char out[USAGE_RECORD])
{
	struct wire_wr w;

	wire_wr_init(&w, out, USAGE_RECORD);
	wire_put_u64(&w, u->messages);
	wire_put_u64(&w, u->bytes);
}

int usage_decode(const unsigned char *buf, size_t len, struct usage *u)
{
	struct wire_rd r;

	wire_rd_init(&r, buf, len);
	u->messages = wire_u64(&r);
	u->bytes = wire_u64(&r);
	return wire_end(&r) == 0 ? QUEUE_OK : QUEUE_ECORRUPT;
}

int usage_apply(struct usage *u, int sign, uint64_t size)
{
	if (sign > 0) {
		if (u->messages == UINT64_MAX || u->bytes > UINT64_MAX - size)
			return QUEUE_ECORRUPT;
		u->messages++;
		u->bytes += size;
	} else {
		if (u->messages == 0 || u->bytes < size)
			return QUEUE_ECORRUPT;
		u->messages--;
		u->bytes -= size;
	}
	return QUEUE_OK;
}
