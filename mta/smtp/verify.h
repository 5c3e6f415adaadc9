/*
 * mta/smtp/verify.h -- recipient verification (`verify-recipients` on a
 * route): before the smtp role says 250 to RCPT for a domain it relays
 * to an internal server, it asks that server whether the recipient
 * exists, with an RCPT probe (a client session, mta/smtp/delivery_attempt.h,
 * that never sends DATA), and caches the answer.
 *
 * A struct verifier is the smtp role's: its own resolver, the config's
 * CA bundle for `tls verify` next hops, the cache and the probes in
 * flight.  Everything runs in the event loop.
 */
#ifndef MOAT_MTA_SMTP_VERIFY_H
#define MOAT_MTA_SMTP_VERIFY_H

#include <stddef.h>

#include "mta/net/ev.h"
#include "mta/net/tls.h"
#include "policy/conf.h"

struct verifier;

/* For config c (which must outlive it); anchors may be NULL.  NULL with
 * err set on failure. */
struct verifier *verifier_new(struct ev_loop *l, const struct conf *c,
                              const struct tls_anchors *anchors, char *err, size_t errcap);
/* Every probe stops and no callback comes. */
void verifier_free(struct verifier *vf);

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
 * from the loop's timer phase, never from inside verify_ask(); no
 * later than `timeout-verify` it says VERIFY_TEMP.  Returns NULL if memory
 * is short (treat as VERIFY_TEMP).
 */
struct verify *verify_ask(struct verifier *vf, const char *rcpt, verify_cb *cb, void *arg);
/* The asker went away: no callback. */
void verify_cancel(struct verify *v);

#endif
