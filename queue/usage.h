/*
 * queue/usage.h -- the queue's usage counters as bytes, and whom a message
 * is charged to.  Pure: no I/O, no allocation.  queue/store.c keeps the
 * records in the "usage" database (queue/FORMAT.md) and changes them in
 * the same write transaction that adds or removes a message, so they are
 * always exactly the sum over the queued envelopes.
 */
#ifndef MOAT_QUEUE_USAGE_H
#define MOAT_QUEUE_USAGE_H

#include <stddef.h>
#include <stdint.h>

#include "queue/queue.h"

/* The key of the queue's totals.  Client keys start "a:" or "u:", so no
 * client can be charged to it. */
#define USAGE_TOTAL_KEY  "total"
/* "u:" + an authenticated user, or "a:" + a client address. */
#define USAGE_KEY_MAX    (2 + QUEUE_NAME_MAX)
/* A record: messages u64, bytes u64, both big-endian. */
#define USAGE_RECORD     16

struct usage {
	uint64_t messages;
	uint64_t bytes;      /* body bytes */
};

/*
 * Whom env is charged to: "u:USER" when env->auth_user is set, else
 * "a:CLIENT".  IPv6 clients are charged by /64 (the client text as the
 * server writes it, with the last 64 bits zeroed), since one host holds a
 * whole /64.  Writes at most USAGE_KEY_MAX bytes (no NUL) and returns the
 * length, or 0 if env's strings are not terminated within their fields.
 */
size_t usage_key(const struct queue_envelope *env, char key[USAGE_KEY_MAX]);

void usage_encode(const struct usage *u, unsigned char out[USAGE_RECORD]);

/* QUEUE_OK, or QUEUE_ECORRUPT if len is not USAGE_RECORD. */
int usage_decode(const unsigned char *buf, size_t len, struct usage *u);

/*
 * Add (sign > 0) or take away (sign < 0) one message of size bytes.
 * Returns QUEUE_OK, or QUEUE_ECORRUPT (u unchanged) if a counter would go
 * below zero or past 2^64 - 1: the records no longer match the queue.
 */
int usage_apply(struct usage *u, int sign, uint64_t size);

#endif
