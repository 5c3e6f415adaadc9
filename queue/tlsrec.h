/*
 * queue/tlsrec.h -- one policy domain's TLS results of one UTC day (a
 * struct tlsrpt_report, policy/tlsrpt.h) <-> bytes: the record stored in
 * the "tlsrpt" database, and the key it is stored under.  Pure: no I/O,
 * no allocation, no clock.  The layout, record version 1, is in
 * queue/FORMAT.md; queue/tlsrec.c also holds the LMDB side (queue.h,
 * queue_tlsrpt_*).
 *
 * Decoding is strict, as for envelopes: a record is exactly its fields,
 * each within the caps of struct tlsrpt_report, every string without a
 * NUL, every result and policy type one policy/tlsrpt.h knows; so
 * encode(decode(bytes)) gives back the same bytes, and a record that
 * could not have been encoded is QUEUE_ECORRUPT, never half-read.  The
 * same record travels on the queue link (mta/net/qwire.h TLSRPT_ADD,
 * TLSRPT_NEXT): a hostile one is refused there the same way.
 */
#ifndef MOAT_QUEUE_TLSREC_H
#define MOAT_QUEUE_TLSREC_H

#include <stddef.h>
#include <stdint.h>

#include "policy/tlsrpt.h"

#define TLSREC_VERSION 1
#define TLSREC_SENT    0x01u     /* flags: the report was mailed (or there was nowhere to) */
#define TLSREC_KEY_MAX (8 + DNS_NAME_MAX)
/* The largest record: every field at its cap. */
#define TLSREC_DETAIL_MAX (1 + 2 * (2 + IP_TEXT_MAX) + 2 * (2 + DNS_NAME_MAX) + \
                           (2 + TLSRPT_REASON_MAX) + 8)
#define TLSREC_POLICY_MAX (1 + (2 + TLSRPT_STRINGS_MAX) + (2 + TLSRPT_MXHOSTS_MAX) + 3 * 8 + \
                           1 + TLSRPT_DETAILS_MAX * TLSREC_DETAIL_MAX)
#define TLSREC_MAX (1 + 1 + 8 + (2 + DNS_NAME_MAX) + 8 + 1 + \
                    TLSRPT_POLICIES_MAX * TLSREC_POLICY_MAX)

/* The key for (day, domain): the day (Unix seconds of its 00:00 UTC) as a
 * u64 big-endian, then the domain (a host name: lower-cased here, no
 * trailing dot), so that keys sort by day.  Returns its length, or 0 if
 * domain is not a host name. */
size_t tlsrec_key(int64_t day, const char *domain, unsigned char key[TLSREC_KEY_MAX]);

/* r's record, with flags (TLSREC_*), into buf[0..cap): its length, or 0
 * if r holds a value out of its range (a count past a cap, a string
 * without its NUL) or cap is too small (TLSREC_MAX always suffices). */
size_t tlsrec_encode(const struct tlsrpt_report *r, unsigned flags, unsigned char *buf,
                     size_t cap);

/* A record into *r (cleared first) and *flags (may be NULL): QUEUE_OK or
 * QUEUE_ECORRUPT. */
int tlsrec_decode(const unsigned char *buf, size_t len, struct tlsrpt_report *r,
                  unsigned *flags);

#endif
