/*
 * mta/net/dkim_client.h -- a DKIM link to a key role, as the smtp and the
 * delivery roles see it: requests of mta/net/keymsg.h (DKIM_SIGN_REQ,
 * DKIM_KEY_REQ) sent over a SOCK_SEQPACKET socketpair of their own, the
 * answers coming back by callback from the event loop.  Nothing here
 * waits on the socket, but dkc_wait() (the unit tests').  The TLS link
 * (mta/net/key_client.h) is another socketpair: the two never see each
 * other's replies.
 *
 *   t = dkc_sign(c, domain, selector, hash, cb, arg)   send; cb later, once
 *   dkc_cancel(c, t)                                   cb never runs
 *
 * The key role answers a link's requests in order, so the link keeps a
 * FIFO of those sent and matches each answer with the oldest: an answer
 * with another id or of another type, a packet that does not decode, EOF
 * or an error break the link.  A broken link fails every request waiting
 * and every later one (why says so) until dkc_set_fd() gives a new one,
 * which the supervisor sends once it has restarted the key role (which
 * ends when its link closes).
 *
 * Patience: a request not answered within DKC_TIMEOUT_MS is called back
 * with a failure ("no answer in time"); its answer, if it comes after all,
 * is read and dropped: a slow key role is not a dead one, and the link
 * stays.  While the oldest request on the link has waited longer than
 * that, new requests fail at once ("the key role does not answer"), so a
 * stopped key role costs each message no more than one wait.  At most
 * DKC_PENDING_MAX requests are on their way; past that they fail at once.
 *
 * Callbacks run from the loop (the link's read and timer callbacks, or
 * dkc_wait()), never from inside dkc_sign(), dkc_key() or dkc_cancel(), at
 * most once per request, never after dkc_cancel() or dkc_free().  The
 * reply and what it points to are valid during the callback only.  A
 * callback may send new requests and cancel others.
 */
#ifndef MOAT_MTA_NET_DKIM_CLIENT_H
#define MOAT_MTA_NET_DKIM_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "mta/net/ev.h"
#include "mta/net/keymsg.h"

#define DKC_TIMEOUT_MS  3000   /* patience for one answer */
#define DKC_PENDING_MAX 1024   /* requests on their way at once */

struct dkc;

/*
 * The answer to a request: rep is the key role's (a DKIM_SIGN_REP or a
 * DKIM_KEY_REP, decoded; rep->ok 0: refused, no such key), or NULL when
 * none came, with why a short static reason.
 */
typedef void dkc_fn(void *arg, const struct keymsg *rep, const char *why);

/* A link on fd (a SOCK_SEQPACKET end, taken over; -1: none yet), watched
 * in loop l.  NULL when out of memory. */
struct dkc *dkc_new(struct ev_loop *l, int fd);
/* Close the link; no callback runs afterwards.  Before ev_free(l). */
void dkc_free(struct dkc *c);
/* A new link (the old one, if any, is closed and its requests fail). */
void dkc_set_fd(struct dkc *c, int fd);
/* 1 when there is a link, 0 when there is none (or it broke). */
int  dkc_linked(const struct dkc *c);
int  dkc_fd(const struct dkc *c);        /* the link's descriptor, -1 none (tests) */

/* Sign hash (32 bytes, dkim_prepare()'s) with the key of the dkim-sign
 * line whose DOMAIN as configured ("*.NAME" included) and selector are
 * these (NUL-terminated).  Returns the ticket. */
uint64_t dkc_sign(struct dkc *c, const char *domain, const char *selector,
                  const unsigned char hash[KEYMSG_DKIM_HASH], dkc_fn *cb, void *arg);
/* Which key covers the From: domain domain (NUL-terminated, lower case):
 * its line's DOMAIN, selector, headers list and public half. */
uint64_t dkc_key(struct dkc *c, const char *domain, dkc_fn *cb, void *arg);
void dkc_cancel(struct dkc *c, uint64_t ticket);

/*
 * Wait for one request's answer, blocking this process (at most
 * DKC_TIMEOUT_MS after it was sent); other answers are handled meanwhile.
 * For the unit tests only: no role waits (the delivery role's DSNs are
 * signed through its loop, mta/smtp/dsn_dkim.h).  Returns once ticket's
 * callback has run (or was cancelled).
 */
void dkc_wait(struct dkc *c, uint64_t ticket);

#endif
