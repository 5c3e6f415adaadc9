/*
 * mta/net/qwire.h -- the typed messages between the queue role and its
 * clients (the smtp role, the delivery role): encoding and strict
 * decoding, pure functions on bytes (no I/O, no allocation).
 *
 * A frame is an 8-byte head -- type (u16), zero (u16), payload length
 * (u32), big-endian -- then the payload.  Requests go client -> queue;
 * each reply has its request's type with QW_REPLY set; QW_KICK goes
 * queue -> delivery unasked ("something became due").  Drafts are named
 * by the queue ID the queue role gave them; a client can name only its
 * own drafts (the queue role keeps them per link).
 *
 *   request          payload                                   reply payload
 *   DRAFT_BEGIN      -                                         rc i32, id u64
 *   DRAFT_WRITE      id u64, bytes (1..QW_CHUNK_MAX)           (none)
 *   DRAFT_ABORT      id u64                                    (none)
 *   COMMIT           n u32, n x (draft u64, len u32, envelope) n u32, n x (rc i32, id u64,
 *                                                                received i64, size u64)
 *   USAGE            envelope or nothing                       rc i32, 4 x u64 usage,
 *                                                                4 x u64 space
 *   PROBE            now i64                                   rc i32
 *   OLDEST           -                                         rc i32, id u64
 *   DUE              now i64, cap u32                          rc i32, next i64, n u32, n x id u64
 *   GET              id u64, cap u32                           rc i32, nrcpts u32, envelope (rc 0)
 *   BODY_READ        id u64, off u64, cap u32                  rc i32, bytes (<= cap)
 *   UPDATE           id u64, flags u32, dsn u64, len u32,      rc i32, changed u32, gone u8,
 *                    dsn envelope (len 0: none), n u32,          dsn id u64, received i64, size u64
 *                    n x (rcpt u32, state u8, next i64, len u16, error)
 *   HOLD             id u64, hold u8 (0 or 1)                  rc i32
 *   RETRY            id u64 (0: all)                           rc i32, count u64
 *   DELETE           id u64                                    rc i32
 *   DRAFT_PREPEND    id u64, bytes (1..QUEUE_PREFIX_MAX)       (none)
 *
 * An envelope is its queue/envelope.h record followed by its queue/ext.h
 * record (the DSN parameters), always both, each strict itself: the
 * queue stores the first as it came and the second apart (FORMAT.md).  A frame
 * of an unknown type, a payload of the wrong length for its type, a
 * field out of range or bytes left over does not decode: the receiver
 * drops the link (mta/roles/queue_role.c, mta/net/queue_client.c), it never guesses.
 */
#ifndef MOAT_MTA_NET_QWIRE_H
#define MOAT_MTA_NET_QWIRE_H

#include <stddef.h>
#include <stdint.h>

#include "policy/wire.h"
#include "queue/queue.h"

#define QW_HEAD      8
#define QW_MAX       (16u << 20)     /* largest payload */
#define QW_CHUNK_MAX (64u * 1024u)   /* body bytes in one frame */
#define QW_BATCH_MAX 256             /* messages in one COMMIT */
#define QW_DUE_MAX   4096            /* IDs in one DUE reply */

enum qw_type {
	QW_DRAFT_BEGIN = 1,
	QW_DRAFT_WRITE,
	QW_DRAFT_ABORT,
	QW_COMMIT,
	QW_USAGE,
	QW_PROBE,
	QW_OLDEST,
	QW_DUE,
	QW_GET,
	QW_BODY_READ,
	QW_UPDATE,
	QW_HOLD,
	QW_RETRY,
	QW_DELETE,
	QW_DRAFT_PREPEND,
	QW_NTYPES,
	QW_KICK = 0x4000,
	QW_REPLY = 0x8000
};

/* Frame head: returns 0 with *type and *len, or -1 (nonzero pad, a
 * payload over QW_MAX). */
int  qw_head_decode(const unsigned char h[QW_HEAD], uint16_t *type, uint32_t *len);
void qw_head_encode(unsigned char h[QW_HEAD], uint16_t type, uint32_t len);

/*
 * Frames are written with policy/wire.h into a struct wire_wr the caller
 * owns, zeroed before its first use: qw_begin() makes it a growing buffer
 * (realloc, at most QW_HEAD + QW_MAX bytes) and starts a frame of type;
 * the payload goes in with wire_put_*(); qw_end() writes the head: 0, or
 * -1 when the frame went bad (out of memory, over QW_MAX: do not send).
 * qw_free() releases the buffer.
 */
void qw_begin(struct wire_wr *o, uint16_t type);
int  qw_end(struct wire_wr *o);
/* An envelope (its record, then its DSN parameters' record), preceded by
 * nothing; qw_env_size() is its length, 0 if it cannot be encoded (then
 * qw_env() makes the frame bad). */
void   qw_env(struct wire_wr *o, const struct queue_envelope *env);
size_t qw_env_size(const struct queue_envelope *env);
/* Decode one into env, as envelope_decode() does (QUEUE_OK, QUEUE_EINVAL
 * with env->nrcpts when the recipients do not fit, QUEUE_ECORRUPT), the
 * DSN parameters too; *envlen (may be NULL) gets the length of the
 * envelope record at p, what queue_commit() may store as it is (raw). */
int    qw_env_decode(const unsigned char *p, size_t len, struct queue_envelope *env,
                     size_t *envlen);
void qw_free(struct wire_wr *o);

/* A decoded request: scalars, and pointers into the payload for the
 * variable parts (walk COMMIT and UPDATE items with the iterators). */
struct qw_req {
	uint16_t type;
	uint64_t id;          /* most; UPDATE's message */
	int64_t  now;         /* PROBE, DUE */
	uint64_t off;         /* BODY_READ */
	uint32_t cap;         /* DUE, GET, BODY_READ */
	uint32_t n;           /* COMMIT messages, UPDATE results */
	uint32_t flags;       /* UPDATE set_flags; HOLD: 1 hold, 0 release */
	uint64_t dsn;         /* UPDATE: the bounce draft, 0 none */
	const unsigned char *data;  /* DRAFT_WRITE bytes, USAGE and UPDATE envelope */
	size_t   len;
	const unsigned char *items; /* COMMIT entries, UPDATE results */
	size_t   items_len;
};
int qw_req_decode(uint16_t type, const unsigned char *p, size_t len, struct qw_req *q);

/* The next COMMIT entry at *pos (start at 0): 1 with the fields, 0 at
 * the end.  Only on a request qw_req_decode() accepted. */
int qw_commit_next(const struct qw_req *q, size_t *pos, uint64_t *draft,
                   const unsigned char **env, size_t *envlen);
/* The next UPDATE result at *pos; error points into the payload and is
 * copied into errbuf (QUEUE_ERR_MAX + 1) NUL-terminated. */
int qw_result_next(const struct qw_req *q, size_t *pos, struct queue_result *r,
                   char errbuf[QUEUE_ERR_MAX + 1]);

/* A decoded reply. */
struct qw_rep {
	uint16_t type;        /* the request's type | QW_REPLY */
	int32_t  rc;
	uint64_t id;          /* DRAFT_BEGIN, OLDEST; UPDATE: the bounce's */
	uint64_t count;       /* RETRY */
	int64_t  next;        /* DUE */
	int64_t  received;    /* UPDATE */
	uint64_t size;        /* UPDATE */
	uint32_t n;           /* COMMIT results, DUE ids, GET nrcpts, UPDATE changed */
	uint8_t  gone;        /* UPDATE */
	struct queue_usage usage;  /* USAGE */
	struct queue_space space;
	const unsigned char *data; /* COMMIT results, DUE ids, GET envelope, BODY_READ bytes */
	size_t   len;
};
int qw_rep_decode(uint16_t type, const unsigned char *p, size_t len, struct qw_rep *r);

/* Readers for the arrays in a reply qw_rep_decode() accepted. */
uint64_t qw_due_id(const struct qw_rep *r, size_t i);
void qw_commit_result(const struct qw_rep *r, size_t i, int *rc, uint64_t *id, int64_t *received,
                      uint64_t *size);
#define QW_COMMIT_RESULT 28

#endif
