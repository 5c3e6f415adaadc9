/*
 * mta/smtp/queue_runner.h -- the queue runner: takes what is due from the queue,
 * delivers it through mta/smtp/delivery_attempt.h, records each recipient's outcome,
 * retries with backoff (policy/retry.h), and bounces (policy/dsn.h).
 * It runs in the delivery role's event loop.
 *
 * Its whole interface to the queue is the queue role's link
 * (mta/net/queue_client.h): DUE, GET, BODY_READ, UPDATE, and a draft for a
 * bounce, each answered by callback: no delivery ever waits for the queue
 * role (a scan's envelopes are asked for all at once, a body a piece at a
 * time as the connection takes it, a report's draft and the original's
 * headers together).  Only an admin verb waits for its one answer.
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
 *   - MX delivery first asks for the recipient domain's MTA-STS policy
 *     (mta/smtp/sts_policy.h, `mta-sts on`) and hands it, and whether DANE
 *     is looked for (`dane on`, `dns-dnssec trusted`), to the attempt; each
 *     delivery line says the TLS policy (tls-policy=, tls-policy-result=),
 *     and the sessions under DANE or MTA-STS go to the day's TLS report
 *     (mta/smtp/tls_results.h; mailed with `tls-report mailto`:
 *     mta/smtp/tls_report_mail.h).  docs/tls-policy.md.
 */
#ifndef MOAT_MTA_SMTP_QUEUE_RUNNER_H
#define MOAT_MTA_SMTP_QUEUE_RUNNER_H

#include <stddef.h>

#include "mta/net/ev.h"
#include "policy/conf.h"
#include "policy/ctl.h"
#include "mta/net/queue_client.h"
#include "mta/ops/config_files.h"
#include "queue/queue.h"

struct deliver;

/* Set up (the resolver, the smarthost's credentials).  The runner runs
 * only when conf->delivery is on; the admin calls work either way.
 * NULL with a message in err on failure. */
struct deliver *deliver_new(struct ev_loop *l, struct qc *q, const struct conf *c,
                            const struct tables *t, char *err, size_t errcap);
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

/* A control handler too: the destinations throttled or down now, a line
 * each, "KEY throttled: ERROR" or "KEY down NS: ERROR" (N: the seconds
 * left), or "none". */
int deliver_destinations(void *arg, const struct ctl_req *req, char *text, size_t cap);

#endif
