/*
 * mta/roles/smtp_role.h -- the smtp role: the only code that reads and
 * writes client sockets.
 *
 * One process, one epoll loop (mta/net/ev.h), non-blocking sockets.  Each
 * connection owns an input buffer and an smtpd session (mta/smtp/smtpd.h); the
 * pump feeds the session, answers its events and writes its replies.
 *
 * Group commit: a session that has read a message's terminator posts
 * SMTPD_EV_MSG_END and waits.  After each batch of ready descriptors the
 * loop's after-batch hook commits every waiting message in ONE LMDB write
 * transaction (one fsync), and only then do those sessions get their 250.
 * So a 250 is never sent before the message is durable, and a busy server
 * pays one fsync for many messages.
 *
 * Connections are freed only in the after-batch hook, never inside a
 * callback, so a pointer in the current epoll batch never dangles.
 *
 * TLS (mta/net/tls.h) sits between the socket and the session: with c->tls
 * set, recv() fills the engine, the engine's plaintext fills c->in, the
 * session's replies go into the engine and its records to send().  After
 * STARTTLS every plaintext byte already read is discarded before the
 * handshake starts (CVE-2011-0411).  AUTH failures are counted per client
 * address (policy/authfail.h); the 535 is held back by a timer, never by
 * sleeping, so the loop goes on serving everyone else.
 *
 * Limits: max-connections in all and max-connections-per-client
 * (mta/net/connlimit.h) at accept; the quotas (policy/quota.h) when a session
 * asks (SMTPD_EV_QUOTA), from the queue's counters and free space plus
 * the messages waiting for this batch's commit; the idle timer (restarted
 * by a reply in command states, by data in DATA, so a line dripped a byte
 * at a time never restarts it) and the DATA deadline (timeout-data-total).
 *
 * Reload (SIGHUP, `moat reload`): the config and the files it names are
 * read again into a new struct config (mta/ops/loaded_config.h), in the after-batch
 * hook.  Listeners are opened, kept or closed to match; new sessions get
 * the new config; each open session keeps a reference to the one it
 * started with.  If anything fails (the config, a file it names, a new
 * listener, the log socket), nothing changes and the old config stays.
 *
 * Stop (SIGTERM, SIGINT): listeners close; sessions between transactions
 * get 421 at once, the others when their transaction ends; at
 * shutdown-timeout the rest get 421, and a second later whatever is still
 * open is closed.  Every 250 was sent after its commit, so whatever was
 * acknowledged is on disk when the process exits.
 *
 * Edge defenses: the sessions judge and count (policy/edge.h) into the
 * server's counters; the tarpit's waits are a second timer per
 * connection (SMTPD_EV_DELAY), so a held reply never blocks the loop.
 * DNS blocklists (mta/smtp/blocklist_lookup.h) are looked up from accept on, for clients
 * outside the relay networks; the verdict goes to the session when it
 * comes, and at dnsbl-stage connect the greeting waits for it (and for
 * greet-delay, whichever is later).  The counters are logged at exit
 * (event=counters).
 *
 * Owns: the listening sockets it was given, every client connection and
 *   its session (mta/smtp/smtpd.h), TLS without the private key, the
 *   metrics endpoint, the control socket (status, reload), DNSBL lookups
 *   and recipient-verification probes.
 * Asks: the queue role (drafts, commits, usage; never hold/retry/delete),
 *   the key role (TLS signatures over one link, DKIM signatures over
 *   another: docs/dkim.md), the supervisor (reload).
 * Never: opens a file, holds a private key (TLS or DKIM), sends a 250
 *   before the queue role said the commit is durable, or queues a message
 *   it was asked to sign (see below) without a signature that verifies.
 *
 * DKIM: a message from a client that may relay whose From: domain has a
 * dkim-sign key, and that does not carry our signature for it already, is
 * signed before its commit: the session's bytes feed a struct dkim_msg as
 * they go to the queue; at the end of DATA the key role signs the hash
 * (asynchronously: the loop serves everyone else meanwhile, at most
 * DKC_TIMEOUT_MS), the signature is checked with the key's public half,
 * and the DKIM-Signature header is prepended to the draft
 * (qc_draft_prepend()).  A message that cannot be signed gets 451 4.3.0
 * and is not queued (docs/dkim.md "When signing fails").
 */

#ifndef MOAT_MTA_ROLES_SMTP_ROLE_H
#define MOAT_MTA_ROLES_SMTP_ROLE_H

#include "mta/ops/loaded_config.h"

/* The role's main, run in the child after fork(): plink is its end of the
 * supervisor's link, qfd its link to the queue role, kfd its TLS link and
 * dfd its DKIM link to its key role (-1: none).  Returns the process's
 * exit status. */
int smtp_role_main(struct config *cfg, int plink, int qfd, int kfd, int dfd);

#endif
