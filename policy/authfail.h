/*
 * policy/authfail.h -- authentication failures per client address, for the
 * growing delay and the temporary block (auth-max-failures,
 * auth-block-seconds, auth-fail-delay).
 *
 * Pure: the caller passes now (seconds, any monotonic clock).  A fixed
 * table: when full, the entry idle longest is forgotten, so memory stays
 * bounded under an attack from many addresses.  An IPv6 client is counted
 * by its /64, since one host usually holds a whole /64.
 */
#ifndef MOAT_POLICY_AUTHFAIL_H
#define MOAT_POLICY_AUTHFAIL_H

#include <stdint.h>

#include "net.h"

#define AUTHFAIL_SLOTS 4096

struct authfail_entry {
	struct ipaddr key;           /* family 0: free */
	unsigned      failures;      /* since the last success or block end */
	int64_t       last;          /* time of the last failure */
	int64_t       blocked_until; /* 0: not blocked */
};

struct authfail {
	struct authfail_entry e[AUTHFAIL_SLOTS];
};

void authfail_init(struct authfail *t);

/* Seconds the address stays blocked, 0 when it is not. */
int64_t authfail_blocked(const struct authfail *t, const struct ipaddr *addr, int64_t now);

/* Count a failure.  Failures older than window seconds are forgotten
 * first.  When the count reaches max, the address is blocked for window
 * seconds.  Returns the count (>= 1; == max when this failure blocks). */
unsigned authfail_record(struct authfail *t, const struct ipaddr *addr, int64_t now, unsigned max,
                         unsigned window);

/* A success clears the address's count. */
void authfail_clear(struct authfail *t, const struct ipaddr *addr);

/* The delay before a failure's 535: base_ms times the failure count,
 * at most 10 times base_ms. */
unsigned authfail_delay_ms(unsigned failures, unsigned base_ms);

#endif
