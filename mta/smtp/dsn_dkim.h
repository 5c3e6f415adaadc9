/*
 * mta/smtp/dsn_dkim.h -- DKIM signatures on the DSNs moat makes (bounces
 * and delay notices: mta/smtp/queue_runner.c make_dsn()).
 *
 * A DSN says "From: Mail Delivery System <MAILER-DAEMON@HOSTNAME>"; it is
 * signed with the key that covers HOSTNAME (a dkim-sign line for it, or a
 * "*.NAME" line above it) or else the one of its nearest parent domain
 * with a line of its own (mx.example.org: example.org), which DMARC's
 * relaxed alignment accepts.  The delivery role has no keys and no key
 * choice of its own: it asks its key role, which holds the current
 * config's keys (renewed at each reload), which key covers each of those
 * names (DKIM_KEY_REQ), then for the signature, and checks it with the
 * public half the key role named.  It waits for both answers (dkc_wait():
 * it serves no client), at most DKC_TIMEOUT_MS each.
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

/*
 * Sign the DSN whose message is a[0..alen) then b[0..blen), about to be
 * written into the draft id (on q), when a key covers its From: domain:
 * the DKIM-Signature header is written into the draft now
 * (qc_draft_write()), so that it comes first, and event=dkim-dsn logged.
 * Called before the message's own bytes are written.  Blocks this process
 * (the delivery role) at most a few DKC_TIMEOUT_MS.  The DSN goes either
 * way: nothing is returned (a write that fails fails the draft, and the
 * caller's own writes say so).
 */
void dsn_dkim_sign(struct qc *q, queue_id id, const char *a, size_t alen, const char *b,
                   size_t blen);

#endif
