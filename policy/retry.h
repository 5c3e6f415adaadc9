/*
 * policy/retry.h -- when to try a deferred recipient again, and when to
 * give up.  Pure: the caller passes the clock (Unix seconds).
 *
 * After the n-th failed attempt the wait is min * 2^(n-1), at most max
 * (Postfix's default is the same shape: 5 min doubling to about an hour).
 * A message may wait at most lifetime after it was received: the next try
 * is never set past that deadline, so the last attempt happens at it, and
 * a temporary failure at or after the deadline ends the recipient
 * (bounced, "delivery time expired").
 */
#ifndef MOAT_POLICY_RETRY_H
#define MOAT_POLICY_RETRY_H

#include <stdint.h>

struct retry_policy {
	uint32_t min;        /* seconds, >= 1 */
	uint32_t max;        /* seconds, >= min */
	uint32_t lifetime;   /* seconds */
	uint32_t warn;       /* delay warning after this long; 0: never */
};

enum retry_verdict {
	RETRY_LATER = 0,     /* *next holds the time of the next attempt */
	RETRY_EXPIRED        /* past the lifetime: bounce */
};

/*
 * attempts: failed attempts so far, this one included (>= 1).
 * received: when the message was queued; now: the time of the failure.
 */
enum retry_verdict retry_next(const struct retry_policy *p, unsigned attempts,
                              int64_t received, int64_t now, int64_t *next);

/* Is a delay warning due for a message received at received (and not yet
 * warned about)?  Returns 1 or 0. */
int retry_warn_due(const struct retry_policy *p, int64_t received, int64_t now);

#endif
