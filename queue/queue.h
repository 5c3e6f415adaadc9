/*
 * queue/queue.h -- the durable mail queue.  The only code that touches LMDB
 * lives behind this header (queue/store.c); nothing else includes lmdb.h.
 *
 * Caveats, first (as LMDB's own header does):
 *  - A struct queue belongs to the process that opened it: never use it
 *    after fork().  Open it again in the child.
 *  - One process writes (the server, later its queue role).  Others (moat
 *    queue list/show) may open it QUEUE_RDONLY at the same time.
 *  - Nothing here blocks on the network; queue_commit() blocks on fsync.
 *  - If queue_commit() reports QUEUE_EIO, LMDB may have marked the
 *    environment fatal (a failed meta-page write): every later transaction
 *    then fails too.  Close and reopen the queue, or exit 111 and let the
 *    supervisor restart the process.
 *
 * Message life (the states; the on-disk format is in queue/FORMAT.md):
 *
 *   draft ----------------> queued --------------> (gone)
 *   queue_draft_begin()     queue_commit()          queue_update(): every
 *   spool file incoming/ID  env+body in LMDB,       recipient delivered or
 *   invisible to readers    one durable txn         bounced; or queue_delete()
 *
 * A queued message is in the schedule (the "sched" database) at the
 * earliest next_try of its pending recipients, unless it is held.  The
 * runner takes what is due (queue_due), tries it, and records the outcome
 * of each recipient (queue_update) -- with the bounce it causes, and the
 * message's removal when nothing is left pending, in the same transaction.
 * Nothing about a delivery in progress is on disk: a crash before
 * queue_update means the recipients are tried again (a duplicate, never a
 * loss).
 *
 * A message's DSN parameters (RFC 3461: dsn_ret, dsn_envid, each
 * recipient's notify and orcpt) are stored in a database of their own,
 * "ext", written and removed with the envelope in the same transactions
 * and read back by queue_get() and queue_list(): the envelope record
 * keeps the bytes an older moat reads (queue/FORMAT.md).
 *
 * A draft is never visible to queue_list(): the envelope and body reach
 * LMDB together in one write transaction, committed with LMDB's durable
 * defaults (no MDB_NOSYNC, no MDB_NOMETASYNC), before the server says 250.
 * After a crash, incoming/ holds at most partial drafts; queue_open() in
 * write mode deletes them.
 */
#ifndef MOAT_QUEUE_QUEUE_H
#define MOAT_QUEUE_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "policy/dsnparam.h"
#include "policy/mtasts.h"

/* Queue IDs: 64-bit, strictly increasing, shown as 16 lower-case hex digits. */
typedef uint64_t queue_id;
#define QUEUE_ID_TEXT 17

#define QUEUE_ADDR_MAX   320   /* local@domain, generous (RFC 5321: 64+1+255) */
#define QUEUE_NAME_MAX   255
#define QUEUE_ERR_MAX    512   /* last remote reply kept per recipient */
#define QUEUE_ENVID_MAX  DSN_ENVID_MAX   /* RFC 3461 ENVID, as received */
#define QUEUE_ORCPT_MAX  DSN_ORCPT_MAX   /* RFC 3461 ORCPT, as received */

/* Per-recipient delivery state (the delivery issue drives these). */
enum queue_rcpt_state {
	QUEUE_RCPT_PENDING = 0,  /* not yet tried, or deferred (see attempts)  */
	QUEUE_RCPT_DELIVERED = 1,
	QUEUE_RCPT_BOUNCED = 2
};

struct queue_rcpt {
	char     addr[QUEUE_ADDR_MAX + 1];
	uint8_t  state;          /* enum queue_rcpt_state */
	uint16_t attempts;
	int64_t  next_try;       /* unix seconds; 0 = as soon as possible */
	char     last_error[QUEUE_ERR_MAX + 1];
	/* The recipient's DSN parameters (RFC 3461), stored apart from the
	 * envelope record, in the "ext" database (queue/ext.h). */
	uint8_t  notify;                     /* DSN_NOTIFY_* bits; 0: not given */
	char     orcpt[QUEUE_ORCPT_MAX + 1]; /* ORCPT as received, "type;xtext"; "" none */
};

#define QUEUE_ENV_8BITMIME  0x01u  /* BODY=8BITMIME */
#define QUEUE_ENV_SMTPUTF8  0x02u  /* SMTPUTF8 given */
#define QUEUE_ENV_HOLD      0x04u  /* held by the admin: in no schedule */
#define QUEUE_ENV_WARNED    0x08u  /* the sender was told of the delay */

struct queue_envelope {
	queue_id id;
	int64_t  received;                      /* unix seconds */
	uint32_t flags;                         /* QUEUE_ENV_* */
	uint64_t size;                          /* body bytes stored */
	char     sender[QUEUE_ADDR_MAX + 1];    /* "" is the null sender */
	char     helo[QUEUE_NAME_MAX + 1];
	char     client[64];                    /* client IP text */
	char     auth_user[QUEUE_NAME_MAX + 1]; /* "" if none */
	/* The message's DSN parameters (RFC 3461), in the "ext" database
	 * like the recipients' (queue/ext.h). */
	uint8_t  dsn_ret;                       /* DSN_RET_*; DSN_RET_NONE: not given */
	char     dsn_envid[QUEUE_ENVID_MAX + 1];/* ENVID as received (xtext); "" none */
	/* Recipients: caller-owned array of rcpt_cap entries. */
	struct queue_rcpt *rcpts;
	size_t   nrcpts;
	size_t   rcpt_cap;
	/* For queue_commit() only (NULL otherwise): this envelope already
	 * encoded (queue/envelope.h), as it came over the queue link: stored
	 * as it is, its id, received and size set in place, instead of being
	 * encoded again. */
	const unsigned char *raw;
	size_t               raw_len;
};

enum queue_err {
	QUEUE_OK = 0,
	QUEUE_EFULL = -1,     /* map full, ENOSPC, EDQUOT: 452 4.3.1, retry later */
	QUEUE_EIO = -2,       /* other I/O failure: 451 4.3.0 */
	QUEUE_ENOTFOUND = -3, /* no such message */
	QUEUE_EINVAL = -4,    /* bad argument or record */
	QUEUE_ECORRUPT = -5   /* a record that does not decode: never silently skipped */
};

#define QUEUE_RDONLY 0x01u

struct queue_options {
	uint64_t map_size;   /* LMDB map size in bytes: the queue's upper bound.
	                        Must not be 0 for the writer; a QUEUE_RDONLY
	                        reader ignores it and maps what the file says. */
	unsigned flags;      /* QUEUE_RDONLY */
};

struct queue;
struct queue_draft;

/*
 * Open (creating in write mode) the queue directory dir: dir/data.mdb,
 * dir/lock.mdb, dir/incoming/.  Returns NULL with a message in err,
 * "queue DIR: ...".  In write mode, deletes what incoming/ holds (drafts
 * of a crashed writer) and takes a write lock on dir/writer.lock: a second
 * writer, in this process or another, is refused.  A reader
 * (QUEUE_RDONLY) never creates anything and fails if there is no queue.
 */
struct queue *queue_open(const char *dir, const struct queue_options *opt,
                         char *err, size_t errcap);
void queue_close(struct queue *q);

/*
 * Start a message.  Assigns its queue ID (*id) now, so that the Received:
 * header written into the body can carry it.  Up to QUEUE_DRAFT_MEM bytes
 * are held in memory; beyond that the draft spills to incoming/ID.
 * Returns NULL on failure (errno set; EROFS on a QUEUE_RDONLY queue).
 */
#define QUEUE_DRAFT_MEM (64 * 1024)
struct queue_draft *queue_draft_begin(struct queue *q, queue_id *id);

/* Append body bytes.  Returns QUEUE_OK, QUEUE_EFULL or QUEUE_EIO; after an
 * error further writes are ignored and the error sticks to the draft. */
int queue_draft_write(struct queue_draft *d, const void *buf, size_t len);

/* Bytes that go before everything written, at commit: header lines made
 * once the whole message was read (a DKIM-Signature).  At most
 * QUEUE_PREFIX_MAX bytes; a second call replaces the first.  QUEUE_OK, or
 * QUEUE_EINVAL (too long: the draft's error, it sticks). */
#define QUEUE_PREFIX_MAX 4096
int queue_draft_prepend(struct queue_draft *d, const void *buf, size_t len);

/* Bytes written so far. */
uint64_t queue_draft_size(const struct queue_draft *d);

/* Throw the draft away (spool file removed).  d is freed. */
void queue_draft_abort(struct queue_draft *d);

/*
 * Group commit: make n drafts durable in ONE LMDB write transaction and one
 * fsync.  env[i] describes draft[i] (its id, size and received -- the time
 * of this commit -- are set here).  Each draft is consumed (freed) whatever the outcome.  result[i]
 * receives QUEUE_OK or the error for that message.  If one message does not
 * fit (map full), it alone fails with QUEUE_EFULL and the others are
 * retried in a fresh transaction, so one big message cannot fail its
 * neighbours; if the disk fills while the transaction is written, the
 * biggest message fails with QUEUE_EFULL and the others are retried.  Each
 * message stored is charged to the usage counters (queue_usage) in the
 * same transaction.  Returns the number committed.
 */
size_t queue_commit(struct queue *q, struct queue_draft **draft,
                    struct queue_envelope **env, int *result, size_t n);

/*
 * Read access.  queue_list() calls fn for each queued message in ID order
 * with an envelope whose rcpts array it owns for the duration of the call
 * (copy what you keep).  fn returns 0 to go on, non-zero to stop.
 * No LMDB transaction is open while fn runs.  Returns QUEUE_OK or an error;
 * a record that does not decode stops the walk with QUEUE_ECORRUPT.
 */
int queue_list(struct queue *q, int (*fn)(void *arg, const struct queue_envelope *env),
               void *arg);

/* Fetch one message's envelope (rcpts sized by the caller: env->rcpt_cap;
 * if too small, QUEUE_EINVAL with env->nrcpts set to the count needed). */
int queue_get(struct queue *q, queue_id id, struct queue_envelope *env);

/* Stream the body to fn in chunks of at most 64 KiB, in order.  No LMDB
 * transaction is open while fn runs, so fn may be slow.  fn returns 0 to go
 * on; non-zero stops, and queue_body returns QUEUE_EIO.  Returns QUEUE_OK,
 * QUEUE_ENOTFOUND, or QUEUE_ECORRUPT if the chunks do not add up to the
 * envelope's size. */
int queue_body(struct queue *q, queue_id id,
               int (*fn)(void *arg, const void *buf, size_t len), void *arg);

/* Totals found by walking every envelope (moat queue count): slow on a big
 * queue, and a check on the counters queue_usage() keeps. */
struct queue_stats {
	uint64_t messages;
	uint64_t bytes;        /* body bytes */
	uint64_t map_size;     /* configured map size */
	uint64_t map_used;     /* bytes of map in use (pages * page size) */
};
int queue_stats(struct queue *q, struct queue_stats *st);

/*
 * Usage, for quotas: the queue's totals and, if env is not NULL, what is
 * charged to env's client -- "u:" auth_user if set, else "a:" client,
 * IPv6 clients by /64 (queue/usage.h).  Kept as counters that change in
 * the same transaction as the messages (queue/FORMAT.md): a few lookups,
 * not a walk of the queue.  Returns QUEUE_OK or an error.
 */
struct queue_usage {
	uint64_t messages;         /* queued messages */
	uint64_t bytes;            /* their body bytes */
	uint64_t client_messages;  /* of those, charged to env's client */
	uint64_t client_bytes;
};
int queue_usage(struct queue *q, const struct queue_envelope *env, struct queue_usage *u);

/*
 * Room for more: the queue's filesystem (statvfs) and its LMDB file.
 * Pages freed inside data.mdb (by removed messages) are reused before the
 * file grows, so the bytes the queue can still write are fs_avail +
 * file_free.  Free pages count only in runs a 64 KiB chunk fits in
 * (queue/FORMAT.md, "Free space").  Reads LMDB's freelist once per commit.
 */
struct queue_space {
	uint64_t fs_avail;    /* bytes available to unprivileged users (f_bavail) */
	uint64_t fs_total;    /* the filesystem's size (f_blocks) */
	uint64_t file_free;   /* bytes of data.mdb free for new mail: runs of free
	                         pages, and the file's tail past the last page */
	uint64_t map_free;    /* bytes of the map free for new mail: past the last
	                         page, and the same runs */
};
int queue_space(struct queue *q, struct queue_space *sp);

/*
 * Health (docs/operations.md "Metrics and health"): one small durable write
 * transaction -- meta/"probe" := now, fsync'd like a commit -- to learn
 * whether the queue can commit at all.  QUEUE_OK, or the error a
 * queue_commit() would meet (QUEUE_EFULL, QUEUE_EIO).  Writer only.
 */
int queue_probe(struct queue *q, int64_t now);

/* The lowest queued ID, i.e. the oldest message (IDs are microseconds
 * since the epoch when the message began: FORMAT.md).  QUEUE_ENOTFOUND
 * when the queue is empty. */
int queue_oldest(struct queue *q, queue_id *id);
/* ---- delivery: the runner's side ---- */

/*
 * Messages due at now: up to cap IDs into ids[0..*n), earliest first,
 * leaving out those skip(arg, id) says to (messages already in flight; skip
 * runs inside a read transaction: it must be quick and must not call the
 * queue).  *next receives when the next one is due: now if more are due
 * than cap, INT64_MAX if nothing waits.  Held messages are never due.
 */
int queue_due(struct queue *q, int64_t now, int (*skip)(void *arg, queue_id id), void *arg,
              queue_id *ids, size_t cap, size_t *n, int64_t *next);

/* The outcome of one delivery attempt for one recipient. */
struct queue_result {
	uint32_t    rcpt;       /* index in the envelope's recipients */
	uint8_t     state;      /* PENDING (deferred: next_try), DELIVERED, BOUNCED */
	int64_t     next_try;   /* deferred: when to try again */
	const char *error;      /* the reply or reason to keep as last_error */
};

/*
 * Record n results for message id in ONE write transaction: each named
 * recipient that is still pending takes its new state, next_try and
 * last_error, and one more attempt (a recipient already final is left
 * alone).  set_flags are or-ed into the envelope's flags.  If dsn is not
 * NULL, that draft (a bounce, with envelope dsn_env: its id, size and
 * received are set here) is queued in the same transaction.  If no
 * recipient is left pending, the message is removed, also in it (*gone
 * = 1).  The draft is consumed whatever the outcome.  *result receives
 * QUEUE_OK, QUEUE_ENOTFOUND (deleted meanwhile: nothing changed, the
 * bounce is dropped) or an error.  Returns the recipients changed.
 */
size_t queue_update(struct queue *q, queue_id id, const struct queue_result *res, size_t n,
                    uint32_t set_flags, struct queue_draft *dsn, struct queue_envelope *dsn_env,
                    int *result, int *gone);

/*
 * Group commit of outcomes: n updates (each as queue_update() above) in
 * ONE write transaction and one fsync -- a batch of finished deliveries,
 * their bounces and the removals of completed messages.  Each u[i].result
 * is its own (QUEUE_ENOTFOUND: deleted meanwhile, nothing changed); if
 * one spoils the transaction (an I/O error, a full map), each is done
 * alone, so it fails alone.  Every dsn draft is consumed.  Returns how
 * many succeeded.
 */
struct queue_update_req {
	queue_id                   id;
	const struct queue_result *res;
	size_t                     n;
	uint32_t                   set_flags;
	struct queue_draft        *dsn;       /* or NULL */
	struct queue_envelope     *dsn_env;   /* its id, size, received set here */
	int                        result;    /* out */
	int                        gone;      /* out: the message was removed */
	size_t                     changed;   /* out: recipients changed */
};
size_t queue_update_many(struct queue *q, struct queue_update_req *u, size_t n);

/*
 * Read body bytes of message id from offset off: at most cap bytes, never
 * across a chunk boundary, into buf; *got is 0 at the end of the body.  No
 * transaction stays open.  QUEUE_ENOTFOUND if the message is gone.
 */
int queue_body_read(struct queue *q, queue_id id, uint64_t off, void *buf, size_t cap,
                    size_t *got);

/* ---- administration (the writer only) ---- */

/* Hold (1) or release (0) a message: a held message is never due. */
int queue_hold(struct queue *q, queue_id id, int hold);

/* Make the pending recipients of message id due now, or with id 0 of
 * every waiting message (a flush).  *count: messages rescheduled (a held
 * message stays held and is not counted). */
int queue_retry(struct queue *q, queue_id id, size_t *count);

/* Remove a message, whatever its recipients' states. */
int queue_delete(struct queue *q, queue_id id);

/* ---- MTA-STS policies (queue/sts.c) ---- */

/*
 * The durable cache of MTA-STS policies (RFC 8461 5.1: a policy must
 * outlive a restart, so that an attacker who blocks the policy's fetch or
 * strips the DNS record gains nothing within max_age).  One record per
 * recipient domain in the "sts" database (queue/FORMAT.md), each written
 * in its own durable transaction.  domain: a host name, any case, one
 * trailing dot allowed (QUEUE_EINVAL otherwise).
 */

/* Store c for domain, replacing what was there.  QUEUE_EINVAL if c could
 * not have come from a parse (sts_valid); writer only. */
int queue_sts_put(struct queue *q, const char *domain, const struct mtasts_cached *c);

/* The policy cached for domain into *c: QUEUE_OK, QUEUE_ENOTFOUND (none,
 * fresh or not: mtasts_cache_fresh() tells), QUEUE_ECORRUPT. */
int queue_sts_get(struct queue *q, const char *domain, struct mtasts_cached *c);

/* Forget domain's policy: QUEUE_OK or QUEUE_ENOTFOUND.  Writer only. */
int queue_sts_delete(struct queue *q, const char *domain);

/* Remove every policy no longer fresh at now (mtasts_cache_fresh), and
 * every record that does not decode (a cache may lose a corrupt entry:
 * the policy is fetched again), in one transaction.  *removed and
 * *corrupt (either may be NULL) count them.  Writer only. */
int queue_sts_expire(struct queue *q, int64_t now, size_t *removed, size_t *corrupt);

/* ID <-> text. queue_id_parse takes exactly 16 hex digits (either case)
 * and returns 0 or -1. */
void queue_id_format(queue_id id, char out[QUEUE_ID_TEXT]);
int  queue_id_parse(const char *s, queue_id *id);

const char *queue_strerror(int err);

#endif
