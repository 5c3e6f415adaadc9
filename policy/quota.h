/*
 * policy/quota.h -- may the queue take one more message of this size now?
 *
 * Pure: the caller (mta/roles/smtp_role.c) gathers the queue's usage and the free
 * space of its filesystem and passes them in; nothing here reads a file or
 * a clock.  The answer is a verdict, never an SMTP reply: every refusal is
 * temporary (452 4.3.1 in the session), because a queue that is full now
 * drains later.  Only max-message-size is permanent (552 5.3.4) and is not
 * decided here.
 *
 * The checks, in the order they are made (the first that fails is the
 * verdict, and its name is what the log says):
 *
 *   disk      the queue's filesystem keeps queue-min-free bytes and
 *             queue-min-free-percent of its size free after the message
 *   map       the LMDB map has room for the message
 *   messages  at most queue-max-messages messages are queued
 *   bytes     at most queue-max-bytes body bytes are queued
 *   client    one client (address, or authenticated user) holds at most
 *             queue-client-share percent of queue-max-bytes
 *
 * A message of n body bytes is taken to need quota_need(n) bytes of disk
 * and map (LMDB stores 64 KiB chunks in 17 pages of 4 KiB, plus the
 * envelope and the B-tree): see quota.c.
 */
#ifndef MOAT_POLICY_QUOTA_H
#define MOAT_POLICY_QUOTA_H

#include <stdint.h>

#include "conf.h"

enum quota_verdict {
	QUOTA_OK = 0,
	QUOTA_DISK,       /* the filesystem would fall below queue-min-free(-percent) */
	QUOTA_MAP,        /* the LMDB map is nearly full */
	QUOTA_MESSAGES,   /* queue-max-messages reached */
	QUOTA_BYTES,      /* queue-max-bytes would be passed */
	QUOTA_CLIENT      /* this client's share of queue-max-bytes would be passed */
};

/* What the queue holds and where it lives, as the caller saw it just now.
 * Messages being committed (accepted, not yet durable) count as queued. */
struct quota_usage {
	uint64_t messages;       /* queued messages */
	uint64_t bytes;          /* queued body bytes */
	uint64_t client_bytes;   /* body bytes queued by this client (or user) */
	uint64_t disk_free;      /* bytes the queue can still write: the filesystem's
	                            available bytes plus free pages inside data.mdb */
	uint64_t disk_total;     /* the filesystem's size in bytes */
	uint64_t map_free;       /* bytes left in the LMDB map */
};

/* Disk and map bytes one message of size body bytes is taken to need. */
uint64_t quota_need(uint64_t size);

/*
 * The verdict for one more message of size body bytes (at MAIL: SIZE=, or
 * 0 when not declared; at the end of DATA: the body as stored).  The
 * limits come from c (queue-max-bytes, queue-max-messages, queue-min-free,
 * queue-min-free-percent, queue-client-share).
 */
enum quota_verdict quota_check(const struct conf *c, const struct quota_usage *u,
                               uint64_t size);

/* "disk", "map", "messages", "bytes", "client" ("ok" for QUOTA_OK): the
 * name the log gives the quota that was hit. */
const char *quota_name(enum quota_verdict v);

/*
 * The LMDB map size the queue gets when queue-map-size is not set:
 *   2 x queue-max-bytes + 4 KiB x queue-max-messages + 64 MiB,
 * rounded up to a whole MiB.  Twice the bytes because LMDB copies pages on
 * write and reuses freed pages only once no reader holds them; 4 KiB a
 * message for its envelope, its last partial chunk and the B-tree; 64 MiB
 * of slack for the databases' own pages.
 */
uint64_t quota_map_size(uint64_t max_bytes, uint64_t max_messages);

#endif
