/*
 * mta/smtp/queue_runner.h -- the queue runner: takes what is due from the queue,
 * delivers it through mta/smtp/delivery_attempt.h, records each recipient's outcome,
 * retries with backoff (policy/retry.h), and bounces (policy/dsn.h).
 * It runs in the server's event loop.
 *
 * Its whole interface to the queue is five calls -- queue_due, queue_get,
 * queue_body_read, queue_update, and queue_draft_begin/write for a bounce
 * -- so that the network side (client, resolver) can move to a process of
 * its own without the queue following it.
 *
 *   - Due messages are read in ID order of their due time; each message's
 *     due recipients are grouped by destination (policy/route.h key): one
 *     transaction per message and destination.
 *   - At most `delivery-concurrency` transactions run at once, at most
 *     `destination-concurrency` of them to one destination; the others
 *     wait in memory (a bounded number; the queue keeps the rest).
 *   - A transaction's outcome is recorded when it ends, all its
 *     recipients in one queue_update() -- with the bounce it causes and
 *     the message's removal if nothing is left pending.  Nothing is
 *     recorded for a transaction cut short by a crash or a shutdown: its
 *     recipients are tried again later (a duplicate, never a loss).
 *   - A bounce goes to the envelope sender, never to <> (so never a
 *     bounce of a bounce), with every recipient that failed in that
 *     transaction; a delay warning (`delay-warning`) likewise, once.
 */
#ifndef MOAT_MTA_SMTP_QUEUE_RUNNER_H
#define MOAT_MTA_SMTP_QUEUE_RUNNER_H

#include <stddef.h>

#include "mta/net/ev.h"
#include "policy/conf.h"
#include "policy/ctl.h"
#include "mta/net/queue_client.h"
#include "queue/queue.h"

struct deliver;

/* Set up (the resolver, the smarthost's credentials).  The runner runs
 * only when conf->delivery is on; the admin calls work either way.
 * NULL with a message in err on failure. */
struct deliver *deliver_new(struct ev_loop *l, struct rq *q, const struct conf *c,
                            char *err, size_t errcap);
/* No queue runner in this process: recipient verification and the admin
 * verbs only (the smtp role; the delivery role runs the runner). */
void deliver_runner_off(struct deliver *d);
/* Something became due (a message committed, a flush): scan soon. */
void deliver_kick(struct deliver *d);
/* Shutdown: stop every transaction now, recording nothing. */
void deliver_stop(struct deliver *d);
void deliver_free(struct deliver *d);

/* Transactions running now (for logs and tests). */
unsigned deliver_active(const struct deliver *d);

/*
 * The admin verbs, for the control socket: "flush" (id ignored), "retry",
 * "hold", "release", "delete".  Returns QUEUE_OK, QUEUE_ENOTFOUND or an
 * error; msg receives one line saying what was done.
 */
int deliver_admin(struct deliver *d, const char *verb, queue_id id, char *msg, size_t cap);

/* The same as a control socket handler (mta/ops/control.h control_fn; arg is
 * the struct deliver): the verb, and an ID for all but flush. */
int deliver_control(void *arg, const struct ctl_req *req, char *text, size_t cap);

/* ---- recipient verification ---- */

enum verify_verdict {
	VERIFY_OK = 0,     /* the next hop takes the recipient: 250            */
	VERIFY_REJECT,     /* it refused it (5xx): 550                          */
	VERIFY_TEMP        /* no answer in time, a 4xx, no connection: 451      */
};

struct verify;
typedef void verify_cb(void *arg, enum verify_verdict v);

/*
 * Ask the next hop of rcpt's route whether it takes rcpt (an RCPT probe:
 * MAIL FROM:<>, RCPT TO, QUIT).  Answers are cached for `verify-cache`
 * (refusals and acceptances; temporary failures are not cached), and a
 * probe for an address already being asked joins it.  The callback comes
 * from the loop's timer phase, never from inside deliver_verify(); no
 * later than `timeout-verify` it says VERIFY_TEMP.  Returns NULL if memory
 * is short (treat as VERIFY_TEMP).
 */
struct verify *deliver_verify(struct deliver *d, const char *rcpt, verify_cb *cb, void *arg);
/* The asker went away: no callback. */
void deliver_verify_cancel(struct verify *v);

#endif
