/* policy/authfail.c -- authentication failures per address; see authfail.h */
#include <string.h>
#include <stddef.h>

#include "authfail.h"

void authfail_init(struct authfail *t)
{
	memset(t, 0, sizeof *t);
}

/* The counting key: the address, or for IPv6 its /64. */
static struct ipaddr key_of(const struct ipaddr *addr)
{
	struct ipaddr k = *addr;

	ip_unmap(&k);
	if (k.family == IP_V6)
		memset(k.a + 8, 0, 8);
	else
		memset(k.a + 4, 0, 12);
	return k;
}

/* An address lives in one of PROBES slots from its hash, so a lookup
 * costs a few comparisons however full the table is. */
#define PROBES 16

static size_t home(const struct ipaddr *key)
{
	uint32_t h = 2166136261u;

	h = (h ^ key->family) * 16777619u;
	for (size_t i = 0; i < sizeof key->a; i++)
		h = (h ^ key->a[i]) * 16777619u;
	return h % AUTHFAIL_SLOTS;
}

/* The slot holding key, or AUTHFAIL_SLOTS. */
static size_t find(const struct authfail *t, const struct ipaddr *key)
{
	size_t h = home(key);

	for (size_t i = 0; i < PROBES; i++) {
		size_t x = (h + i) % AUTHFAIL_SLOTS;
		if (t->e[x].key.family != 0 && ip_equal(&t->e[x].key, key))
			return x;
	}
	return AUTHFAIL_SLOTS;
}

int64_t authfail_blocked(const struct authfail *t, const struct ipaddr *addr, int64_t now)
{
	struct ipaddr k = key_of(addr);
	size_t x = find(t, &k);

	return x < AUTHFAIL_SLOTS && t->e[x].blocked_until > now ? t->e[x].blocked_until - now : 0;
}

unsigned authfail_record(struct authfail *t, const struct ipaddr *addr, int64_t now, unsigned max,
                         unsigned window)
{
	struct ipaddr k = key_of(addr);
	size_t x = find(t, &k);
	struct authfail_entry *e = x < AUTHFAIL_SLOTS ? &t->e[x] : NULL;

	if (e == NULL) {
		/* A free slot among the probes, else the one idle longest (a
		 * blocked one only if all are blocked). */
		size_t h = home(&k);
		e = NULL;
		for (size_t i = 0; i < PROBES; i++) {
			struct authfail_entry *y = &t->e[(h + i) % AUTHFAIL_SLOTS];
			if (y->key.family == 0) {
				e = y;
				break;
			}
			if (e == NULL || (y->blocked_until <= now && e->blocked_until > now) ||
			    ((y->blocked_until <= now) == (e->blocked_until <= now) && y->last < e->last))
				e = y;
		}
		memset(e, 0, sizeof *e);
		e->key = k;
	}
	if (e->blocked_until != 0 && e->blocked_until <= now) {
		e->blocked_until = 0;
		e->failures = 0;
	}
	if (e->failures > 0 && now - e->last >= (int64_t)window)
		e->failures = 0;
	if (e->failures < UINT32_MAX)
		e->failures++;
	e->last = now;
	if (max > 0 && e->failures >= max && e->blocked_until == 0)
		e->blocked_until = now + window;
	return e->failures;
}

void authfail_clear(struct authfail *t, const struct ipaddr *addr)
{
	struct ipaddr k = key_of(addr);
	size_t x = find(t, &k);

	if (x < AUTHFAIL_SLOTS && t->e[x].blocked_until == 0)
		memset(&t->e[x], 0, sizeof t->e[x]);
}

unsigned authfail_delay_ms(unsigned failures, unsigned base_ms)
{
	if (failures > 10)
		failures = 10;
	return base_ms * failures;
}
