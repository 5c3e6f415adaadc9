/*
 * mta/smtp/dsn_dkim.h -- DKIM signatures on the DSNs moat makes (bounces
 * and delay notices: mta/smtp/queue_runner.c report_ready()).
 *
 * A DSN says "From: Mail Delivery System <MAILER-DAEMON@HOSTNAME>"; it is
 * signed with the key that covers HOSTNAME (a dkim-sign line for it, or a
 * "*.NAME" line above it) or else the one of its nearest parent domain
 * with a line of its own (mx.example.org: example.org), which DMARC's
 * relaxed alignment accepts.  The delivery role has no keys and no key
 * choice of its own: it asks its key role, which holds the current
 * config's keys (renewed at each reload), which key covers each of those
 * names (DKIM_KEY_REQ), then for the signature, and checks it with the
 * public half the key role named.  Nothing waits: the answers come back
 * through the delivery role's loop, at most DKC_TIMEOUT_MS each, and the
 * report is written when the signature is in (or known not to come).
 *
 * The rule when signing fails (no key role, no answer, a signature that
 * does not verify): the DSN goes unsigned, logged (event=dkim-fail
 * kind=dsn).  A DSN is the one message nobody sends again: a sender who
 * never hears that the mail bounced is worse off than one whose bounce
 * lands in a spam folder (docs/dkim.md "When signing fails").
 */
#ifndef MOAT_MTA_SMTP_DSN_DKIM_H
#define MOAT_MTA_SMTP_DSN_DKIM_H

#include <stddef.h>

#include "mta/net/dkim_client.h"
#include "mta/net/queue_client.h"

/* The delivery role's DKIM link (NULL, or one without a link: DSNs go
 * unsigned without a word, as they do when no key covers the hostname). */
void dsn_dkim_use(struct dkc *link);

/* One DSN's signature on its way. */
struct dsn_sig;

/* The signature is in (hdr[0..len): the DKIM-Signature header, to be
 * written first), or the DSN goes unsigned (hdr NULL: no key covers its
 * From: domain, or the failure is logged).  Called from the loop, once;
 * the dsn_sig is freed when it returns (never dsn_dkim_cancel() it). */
typedef void dsn_dkim_fn(void *arg, const char *hdr, size_t len);

/*
 * Start signing the DSN id whose message is a[0..alen) then b[0..blen)
 * (both copied into the hash now: the caller may free them).  Returns the
 * signature on its way, cb to come; or NULL when there is nothing to wait
 * for (no link, out of memory, a header block that cannot be signed: the
 * DSN goes unsigned now, cb is never called).  event=dkim-dsn or
 * event=dkim-fail kind=dsn is logged before cb.
 */
struct dsn_sig *dsn_dkim_start(queue_id id, const char *a, size_t alen, const char *b,
                               size_t blen, dsn_dkim_fn *cb, void *arg);

/* Forget a signature on its way (the job ends first): cb never runs. */
void dsn_dkim_cancel(struct dsn_sig *s);

#endif
