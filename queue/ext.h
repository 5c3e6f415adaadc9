/*
 * queue/ext.h -- a message's DSN parameters (RFC 3461) <-> bytes: the
 * record stored under the "ext" database, keyed by the queue ID like the
 * envelope.  Pure: no I/O, no allocation, no clock.  The layout, record
 * version 1, is in queue/FORMAT.md.
 *
 * Why a record of its own and not envelope version 2: the previous moat
 * must still read a queue this one wrote (an appliance upgrade can roll
 * back with the queue intact), and it refuses an envelope record it does
 * not know.  A database it never opens costs it nothing.
 *
 * The record belongs to one envelope: it holds one entry per recipient,
 * in the envelope's order, and does not decode against an envelope with
 * another count.  Decoding is strict as the envelope's: every value is
 * one policy/dsnparam.h would have taken from a client, and nothing is
 * left over; so encode(decode(bytes)) gives back the same bytes.
 */
#ifndef MOAT_QUEUE_EXT_H
#define MOAT_QUEUE_EXT_H

#include <stddef.h>
#include <stdint.h>

#include "queue/queue.h"

#define EXT_VERSION 1
/* version, ret, envid (empty), nrcpts. */
#define EXT_HEAD_MIN (1 + 1 + 2 + 4)
/* Per recipient at least: notify, orcpt (empty). */
#define EXT_RCPT_MIN (1 + 2)

/* 1 when env carries a DSN parameter (then a record is stored), else 0. */
int ext_needed(const struct queue_envelope *env);

/* No DSN parameters: what a message without a record has (the
 * recipients' fields for those in rcpts[0..min(nrcpts, rcpt_cap))). */
void ext_clear(struct queue_envelope *env);

/* The exact length of env's record, or 0 if it cannot be encoded (a
 * value dsnparam would refuse, a string not NUL-terminated in its field,
 * nrcpts > rcpt_cap). */
size_t ext_size(const struct queue_envelope *env);

/* env's record into buf[0..cap): its length, or 0 (see ext_size, or cap
 * too small). */
size_t ext_encode(const struct queue_envelope *env, unsigned char *buf, size_t cap);

/*
 * Read a record into env, whose nrcpts (from its envelope record) the
 * record must match.  The recipients' fields land in
 * env->rcpts[0..min(nrcpts, rcpt_cap)); with env->rcpts NULL the record
 * is only checked.  QUEUE_OK, or QUEUE_ECORRUPT (then env's DSN fields
 * are cleared).
 */
int ext_decode(const unsigned char *buf, size_t len, struct queue_envelope *env);

#endif
