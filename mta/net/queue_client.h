/*
 * mta/net/queue_client.h -- the queue as the smtp and delivery roles see it: the calls
 * of queue/queue.h they need, each a typed request to the queue role
 * (mta/net/qwire.h) over a socketpair, answered before the call returns.
 *
 * Blocking by design: a call waits for the queue role's answer (at most
 * RQ_TIMEOUT_MS), as a queue_commit() in process waited for its fsync.
 * Body bytes (rq_draft_write) are sent without waiting; an error in them
 * sticks to the draft in the queue role and comes back from the commit.
 *
 * The link can break (the queue role died; an answer that does not
 * decode): every call then returns QUEUE_EIO (the smtp role says 451, the
 * runner tries later) until rq_set_fd() gives a new link, which the
 * supervisor sends once it has restarted the queue role.  Drafts begun on
 * the old link are gone with it: committing them fails (QUEUE_EIO), so a
 * message not yet acknowledged is refused, never half stored.
 */
#ifndef MOAT_MTA_NET_QUEUE_CLIENT_H
#define MOAT_MTA_NET_QUEUE_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "mta/net/ev.h"
#include "mta/net/qwire.h"
#include "queue/queue.h"

#define RQ_TIMEOUT_MS 60000
#define RQ_PREFETCH    8      /* drafts begun ahead, at most */
#define RQ_PREFETCH_MS 1000   /* an unused one older than this is aborted */

struct rq;
struct rq_draft;

/* fd: a connected SOCK_STREAM end (taken over; -1: none yet).  kick: called
 * (from rq_poll() or after a call) when the queue role says something
 * became due; NULL to ignore. */
struct rq *rq_new(int fd, void (*kick)(void *arg), void *arg);
void rq_free(struct rq *r);
/* A new link (the old one, if any, is closed). */
void rq_set_fd(struct rq *r, int fd);
int  rq_fd(const struct rq *r);     /* -1 when broken */
/* Watch the link in loop l (this one and every later one): whatever the
 * queue role sends ahead or unasked is read (rq_poll) as it comes; the
 * descriptor leaves the loop before it is closed.  rq_free() before
 * ev_free(l). */
void rq_watch(struct rq *r, struct ev_loop *l);
/* The link is readable outside a call: read what the queue role sent
 * unasked (kicks) or ahead (drafts begun ahead, a commit's answer).
 * Returns 0, or -1 if the link broke. */
int  rq_poll(struct rq *r);

/* Begin drafts ahead while busy (a draft begun within RQ_PREFETCH_MS/10 of
 * the last), so that rq_draft_begin() finds one ready instead of waiting
 * for the queue role: their answers are read with the next call's.  An
 * unused one is aborted after RQ_PREFETCH_MS (its ID tells when the
 * message began).  Off by default. */
void rq_prefetch(struct rq *r, int on);

struct rq_draft *rq_draft_begin(struct rq *r, queue_id *id);
int  rq_draft_write(struct rq_draft *d, const void *buf, size_t len);
void rq_draft_abort(struct rq_draft *d);

size_t rq_commit(struct rq *r, struct rq_draft **draft, struct queue_envelope **env, int *result,
                 size_t n);
/*
 * Group commit without waiting (the smtp role): rq_commit_start() sends
 * the batch (drafts consumed; env[i] must stay valid until the answer is
 * taken) and returns at once -- 0, or -1 if a commit is already in flight;
 * rq_commit_done() gives its results (result[i], and each committed
 * env's id, size and received) once the answer has come: 1, or 0 not yet.
 * With block it waits for it.  The answer is read by rq_poll() when the
 * link is readable, or by any later call, whichever comes first.  A link
 * that breaks meanwhile fails the batch (QUEUE_EIO: never acknowledged).
 */
int rq_commit_start(struct rq *r, struct rq_draft **draft, struct queue_envelope **env, size_t n);
int rq_commit_done(struct rq *r, int *result, int block);
int rq_commit_pending(const struct rq *r);

/* queue_usage() and queue_space() in one request (env may be NULL). */
int rq_usage(struct rq *r, const struct queue_envelope *env, struct queue_usage *u,
             struct queue_space *sp);
int rq_probe(struct rq *r, int64_t now);
int rq_oldest(struct rq *r, queue_id *id);

/* queue_due(), with skip applied here: asks for cap + extra IDs (extra:
 * how many skip may refuse, e.g. the runner's jobs in flight). */
int rq_due(struct rq *r, int64_t now, int (*skip)(void *arg, queue_id id), void *arg, size_t extra,
           queue_id *ids, size_t cap, size_t *n, int64_t *next);
int rq_get(struct rq *r, queue_id id, struct queue_envelope *env);
int rq_body_read(struct rq *r, queue_id id, uint64_t off, void *buf, size_t cap, size_t *got);
size_t rq_update(struct rq *r, queue_id id, const struct queue_result *res, size_t n,
                 uint32_t set_flags, struct rq_draft *dsn, struct queue_envelope *dsn_env,
                 int *result, int *gone);
int rq_hold(struct rq *r, queue_id id, int hold);
int rq_retry(struct rq *r, queue_id id, size_t *count);
int rq_delete(struct rq *r, queue_id id);

#endif
