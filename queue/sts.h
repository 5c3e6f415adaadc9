/*
 * queue/sts.h -- a cached MTA-STS policy <-> bytes, the record stored under
 * the "sts" database, and the key it is stored under.  Pure: no I/O, no
 * allocation, no clock.  The layout, record version 1, is in
 * queue/FORMAT.md; queue/sts.c also holds the LMDB side (queue.h,
 * queue_sts_*).
 *
 * Decoding is strict, as for envelopes: a record is exactly its fields,
 * every field within the bounds policy/mtasts.h gives a parsed policy,
 * patterns in the form mtasts_policy_parse() leaves them; so
 * encode(decode(bytes)) gives back the same bytes, and a record a parse
 * could not have produced is QUEUE_ECORRUPT, never half-read.
 */
#ifndef MOAT_QUEUE_STS_H
#define MOAT_QUEUE_STS_H

#include <stddef.h>
#include <stdint.h>

#include "policy/mtasts.h"

#define STS_RECORD_VERSION 1
/* version, fetched_at, max_age, mode, mx_dropped, id, nmx, patterns. */
#define STS_RECORD_MAX (1 + 8 + 4 + 1 + 4 + 2 + MTASTS_ID_MAX + 2 + \
                        MTASTS_MX_MAX * (2 + MTASTS_MX_LEN))

/* The key for domain: lower-case, no trailing dot, a host name
 * (dns_name_ok).  Returns its length (a NUL follows it), or 0 if domain
 * is not one. */
size_t sts_key(const char *domain, char key[DNS_NAME_MAX + 1]);

/* Is c a policy a fetch and parse could have cached?  1 or 0. */
int sts_valid(const struct mtasts_cached *c);

/* c's record into buf[0..cap): its length, or 0 if !sts_valid(c) or cap
 * is too small (STS_RECORD_MAX always suffices). */
size_t sts_encode(const struct mtasts_cached *c, unsigned char *buf, size_t cap);

/* A record into *c (cleared first): QUEUE_OK or QUEUE_ECORRUPT. */
int sts_decode(const unsigned char *buf, size_t len, struct mtasts_cached *c);

#endif
