/*
 * queue/envelope.h -- struct queue_envelope <-> bytes, the record stored
 * under the "env" database.  Pure: no I/O, no allocation, no clock.  The
 * byte layout, version 1, is written down in queue/FORMAT.md.
 *
 * Every multi-byte integer is big-endian (like the LMDB keys, so a record
 * reads the same way in a hex dump).  Strings are a 16-bit length then the
 * bytes, without NUL; a string longer than its field in struct
 * queue_envelope, or holding a NUL byte, does not decode.  Decoding is
 * strict, so that encode(decode(bytes)) gives back the same bytes.
 */
#ifndef MOAT_QUEUE_ENVELOPE_H
#define MOAT_QUEUE_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "queue/queue.h"

#define ENVELOPE_VERSION 1

/* Fixed part: version(1) id(8) received(8) flags(4) size(8). */
#define ENVELOPE_HEAD 29
/* Smallest encoded recipient: empty strings, state, attempts, next_try. */
#define ENVELOPE_RCPT_MIN (2 + 1 + 2 + 8 + 2)

/*
 * The exact length of env's encoding, or 0 if env cannot be encoded (a
 * string not NUL-terminated within its field, a state beyond
 * QUEUE_RCPT_BOUNCED, nrcpts > rcpt_cap or beyond 2^32-1).
 */
size_t envelope_size(const struct queue_envelope *env);

/*
 * Write env into buf[0..cap).  Returns the number of bytes written, or 0
 * if env cannot be encoded (see envelope_size) or cap is too small.
 */
size_t envelope_encode(const struct queue_envelope *env, unsigned char *buf, size_t cap);

/*
 * Read a record.  Scalars and strings land in env; recipients in
 * env->rcpts[0..env->rcpt_cap), which the caller owns; nothing points into
 * buf afterwards.  Returns:
 *   QUEUE_OK        decoded; env->nrcpts recipients stored.
 *   QUEUE_ECORRUPT  unknown version, a read past the end, a bad length,
 *                   a NUL in a string, a bad state, or bytes left over.
 *   QUEUE_EINVAL    the record is sound but has more recipients than
 *                   env->rcpt_cap; env->nrcpts says how many it has.
 * With env->rcpts == NULL the recipients are checked and counted but not
 * stored, and the result is QUEUE_OK: the way to size the array (the count
 * can be no more than len / ENVELOPE_RCPT_MIN).  On error env's scalar
 * and string fields are unspecified.
 */
int envelope_decode(const unsigned char *buf, size_t len, struct queue_envelope *env);

/* The length of the record that starts buf[0..len), bytes may follow it
 * (the queue link sends other bytes after it: mta/net/qwire.h); 0 if no
 * record starts there. */
size_t envelope_span(const unsigned char *buf, size_t len);

/* Set id, received and size in an encoded record in place (they sit at
 * fixed offsets: FORMAT.md).  0, or -1 if buf is too short to be one. */
int envelope_patch(unsigned char *buf, size_t len, queue_id id, int64_t received, uint64_t size);

#endif
