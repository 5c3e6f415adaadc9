/*
 * mta/net/queue_client.h -- the queue as the smtp and delivery roles see
 * it: each call of queue/queue.h they need is a typed request to the queue
 * role (mta/net/qwire.h) over a socketpair, and every answer comes back
 * by callback from the event loop.  Nothing here waits on the socket
 * (OpenSMTPD's mproc is the model): requests are queued in an output
 * buffer sent as the socket takes it, and answers are read as they come.
 *
 *   t = qc_usage(c, env, cb, arg)     send; cb(arg, rep) later, once
 *   qc_cancel(c, t)                   the caller went away: cb never runs
 *
 * The queue role answers in order, so the link keeps a FIFO of the
 * requests sent and matches each answer with the oldest; an answer of
 * another type breaks the link.  Every request has a patience: short for
 * questions (a draft, usage, a probe: QC_ASK_MS), long for what changes
 * the queue (a commit, an update: QC_WRITE_MS).  A request not answered
 * in time is called back with rep NULL (say QUEUE_EIO: 451 to a client,
 * a later try for the runner); its answer, if it comes after all, is read
 * and dropped.  The link stays: a slow queue role is not a dead one.
 *
 * While any request has waited more than QC_STALL_MS, qc_stalled() says
 * so: the smtp role then starts no new message (451 at DATA) and /health
 * says the queue does not answer, instead of waiting with every session.
 *
 * Callbacks run from the loop (the link's read and timer callbacks),
 * never from inside a qc_* call, at most once per request, never after
 * qc_cancel() or qc_free().  rep and what it points to are valid during
 * the callback only.  A callback may send new requests and cancel others.
 *
 * The link can break (the queue role died, an answer that does not
 * decode): every request waiting, and every later one, is called back
 * with NULL until qc_set_fd() gives a new link, which the supervisor
 * sends once it has restarted the queue role.  Drafts begun on the old
 * link are gone with it: committing them fails, so a message not yet
 * acknowledged is refused, never half stored.
 */
#ifndef MOAT_MTA_NET_QUEUE_CLIENT_H
#define MOAT_MTA_NET_QUEUE_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "mta/net/ev.h"
#include "mta/net/qwire.h"
#include "queue/queue.h"

#define QC_ASK_MS      5000     /* patience for a question */
#define QC_WRITE_MS    60000    /* patience for a commit or an update (fsync) */
#define QC_STALL_MS    2000     /* a request older than this: the queue is stalled */
#define QC_OUT_HIGH    (4u << 20)   /* unsent bytes: past this, writers wait (qc_busy) */
#define QC_OUT_MAX     (64u << 20)  /* never more unsent bytes than this */
#define QC_PREFETCH    8        /* drafts begun ahead, at most */
#define QC_PREFETCH_MS 1000     /* an unused one older than this is aborted */

struct qc;

/* The answer to a request: rep decoded (rep->rc the queue's result), or
 * NULL when none came (link lost, patience out): treat it as QUEUE_EIO. */
typedef void qc_reply_fn(void *arg, const struct qw_rep *rep);

/* A link on fd (a connected SOCK_STREAM end, taken over; -1: none yet),
 * watched in loop l.  kick(kick_arg) is called when the queue role says
 * something became due; drain(drain_arg) when the unsent bytes fell back
 * below QC_OUT_HIGH / 2 after passing QC_OUT_HIGH.  Either may be NULL. */
struct qc *qc_new(struct ev_loop *l, int fd, void (*kick)(void *), void *kick_arg,
                  void (*drain)(void *), void *drain_arg);
/* Close the link; no callback runs afterwards.  Before ev_free(l). */
void qc_free(struct qc *c);
/* A new link (the old one, if any, is closed and its requests fail). */
void qc_set_fd(struct qc *c, int fd);
int  qc_broken(const struct qc *c);      /* 1 when there is no link */
int  qc_fd(const struct qc *c);          /* the link's descriptor, -1 none (tests) */
int  qc_stalled(const struct qc *c);     /* see above */
/* 1 while more than QC_OUT_HIGH bytes wait to be sent: a writer should
 * hold back until the drain callback. */
int  qc_busy(const struct qc *c);
void qc_cancel(struct qc *c, uint64_t ticket);

/* ---- drafts ---- */

/* Begin drafts ahead while busy (a draft begun within QC_PREFETCH_MS/10
 * of the last), so that qc_draft_take() finds one ready.  An unused one is
 * aborted after QC_PREFETCH_MS (its ID tells when the message began). */
void qc_prefetch(struct qc *c, int on);
/* A draft begun ahead: 1 with *id, or 0 (none ready, or stalled). */
int  qc_draft_take(struct qc *c, queue_id *id);
/* Begin a draft: rep->rc, rep->id.  Returns the ticket. */
uint64_t qc_draft_begin(struct qc *c, qc_reply_fn *cb, void *arg);
/* Body bytes for draft id, sent without an answer: an error sticks to
 * the draft in the queue role and comes back from its commit.  0, or -1
 * when they cannot be sent (no link; more than QC_OUT_MAX waiting). */
int  qc_draft_write(struct qc *c, queue_id id, const void *buf, size_t len);
/* Header bytes (1..QUEUE_PREFIX_MAX) the draft's message starts with,
 * before everything written (a DKIM-Signature): sent without an answer,
 * like body bytes.  0, or -1. */
int  qc_draft_prepend(struct qc *c, queue_id id, const void *buf, size_t len);
void qc_draft_abort(struct qc *c, queue_id id);

/* ---- the smtp role ---- */

/* Group commit: n drafts with their envelopes (env[i]->id is draft i's
 * id), one answer: qw_commit_result(rep, i, ...) for each. */
uint64_t qc_commit(struct qc *c, struct queue_envelope *const *env, size_t n, qc_reply_fn *cb,
                   void *arg);
/* queue_usage() and queue_space() in one request (env may be NULL):
 * rep->usage, rep->space. */
uint64_t qc_usage(struct qc *c, const struct queue_envelope *env, qc_reply_fn *cb, void *arg);
uint64_t qc_probe(struct qc *c, int64_t now, qc_reply_fn *cb, void *arg);
uint64_t qc_oldest(struct qc *c, qc_reply_fn *cb, void *arg);

/* ---- the delivery role ---- */

uint64_t qc_due(struct qc *c, int64_t now, uint32_t cap, qc_reply_fn *cb, void *arg);
uint64_t qc_get(struct qc *c, queue_id id, uint32_t cap, qc_reply_fn *cb, void *arg);
uint64_t qc_body_read(struct qc *c, queue_id id, uint64_t off, uint32_t cap, qc_reply_fn *cb,
                      void *arg);
/* queue_update(): dsn is a draft of this link (0: none) with envelope
 * dsn_env. */
uint64_t qc_update(struct qc *c, queue_id id, const struct queue_result *res, size_t n,
                   uint32_t set_flags, queue_id dsn, const struct queue_envelope *dsn_env,
                   qc_reply_fn *cb, void *arg);
uint64_t qc_hold(struct qc *c, queue_id id, int hold, qc_reply_fn *cb, void *arg);
uint64_t qc_retry(struct qc *c, queue_id id, qc_reply_fn *cb, void *arg);
uint64_t qc_delete(struct qc *c, queue_id id, qc_reply_fn *cb, void *arg);

/*
 * Wait for one request's answer, blocking this process (at most the
 * request's patience); other answers and kicks are handled meanwhile.
 * Only for an admin verb of the delivery role (moat queue flush, hold,
 * ...), whose control handler answers in the same call; never for a
 * delivery, never in the smtp role.  Returns once ticket's callback has
 * run (or was cancelled).
 */
void qc_wait(struct qc *c, uint64_t ticket);

#endif
