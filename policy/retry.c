/* policy/retry.c -- the retry schedule; see retry.h */
#include "policy/retry.h"

enum retry_verdict retry_next(const struct retry_policy *p, unsigned attempts,
                              int64_t received, int64_t now, int64_t *next)
{
	int64_t deadline = received + (int64_t)p->lifetime;
	int64_t wait = p->min ? p->min : 1;
	unsigned n = attempts ? attempts : 1;

	if (now >= deadline)
		return RETRY_EXPIRED;
	/* Double n-1 times, stopping at max (no shift can overflow). */
	for (unsigned i = 1; i < n && wait < (int64_t)p->max; i++)
		wait *= 2;
	if (wait > (int64_t)p->max)
		wait = p->max;
	*next = now + wait;
	if (*next > deadline)
		*next = deadline;
	return RETRY_LATER;
}

int retry_warn_due(const struct retry_policy *p, int64_t received, int64_t now)
{
	return p->warn > 0 && now - received >= (int64_t)p->warn &&
	       now - received < (int64_t)p->lifetime;
}
