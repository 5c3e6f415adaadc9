/*
 * mta/smtp/dkim_signer.h -- one message on its way to a DKIM signature:
 * the steps between the pure code (policy/dkim.h) and the key role's link
 * (mta/net/dkim_client.h), shared by the smtp role (a message it accepts)
 * and the delivery role (a DSN it makes: mta/smtp/dsn_dkim.h).
 *
 *   d = dks_new()                        a header buffer of DKS_HDR_CAP
 *   dks_feed(d, bytes, len) ...          the message as queued, any split
 *   dks_end(d, domain)                   body hash; the From: domain
 *   dks_use_line(d, line, key)           the key: from the config (smtp role)
 *     or dks_use_rep(d, rep)             or from the key role (DKIM_KEY_REP)
 *   dks_present(d)                       ours already?  (a loop-back)
 *   dks_prepare(d, now)                  the header without b=, the hash
 *   dks_ask(d, link, cb, arg)            the key role signs; cb(arg, d, ok)
 *                                        once the signature was checked with
 *                                        the key's public half and the
 *                                        header built: d->out[0..outlen)
 *   dks_free(d)                          (cancels a request on its way)
 *
 * A step that fails sets d->why (a short static reason, for the log) and
 * returns -1.  The public half d checks signatures with is the one
 * dks_use_line() or dks_use_rep() gave: a key role that sends back a
 * signature that does not verify with it gets nothing delivered.  No I/O
 * but the link's (through dkc_sign(); the caller's loop runs it).
 */
#ifndef MOAT_MTA_SMTP_DKIM_SIGNER_H
#define MOAT_MTA_SMTP_DKIM_SIGNER_H

#include <stddef.h>
#include <stdint.h>

#include "mta/net/dkim_client.h"
#include "mta/ops/dkim_key.h"
#include "policy/addr.h"
#include "policy/dkim.h"

/* The header block kept for signing: a longer one cannot be signed. */
#define DKS_HDR_CAP (64 * 1024)

struct dks;
typedef void dks_fn(void *arg, struct dks *d, int ok);

struct dks {
	struct dkim_msg     msg;
	unsigned char       bh[DKIM_HASH_LEN];
	int                 big;                          /* the header block did not fit */
	/* The key chosen: its line's DOMAIN as configured, d=, s=, h= list. */
	char                line[KEYMSG_DOMAIN_MAX + 1];
	char                domain[ADDR_DOMAIN_MAX + 1];
	char                selector[KEYMSG_SEL_MAX + 1];
	char                headers[KEYMSG_HLIST_MAX + 1];
	unsigned char       n[KEYMSG_MOD_MAX], e[KEYMSG_EXP_MAX];
	size_t              nlen, elen;
	struct dkim_pending pend;
	/* The request on its way. */
	struct dkc         *link;
	uint64_t            ticket;
	dks_fn             *cb;
	void               *arg;
	const char         *why;                          /* the last failure */
	char                out[DKIM_SIGHDR_MAX];         /* the finished header */
	size_t              outlen;
	char                hdr[DKS_HDR_CAP];
};

/* A zeroed state with its message begun; NULL when out of memory. */
struct dks *dks_new(void);
/* Free d (NULL is fine), cancelling its request if one is on its way. */
void dks_free(struct dks *d);

void dks_feed(struct dks *d, const void *p, size_t len);

/*
 * The end of the message: the body hash, and the domain of its From:
 * address (lower case) into domain.  0, or -1 with why when there is no
 * single From: address (the message is left unsigned: docs/dkim.md).  A
 * header block over DKS_HDR_CAP sets d->big: the From: of the part kept is
 * still read, so the caller can tell a message it cannot sign from one it
 * need not.
 */
int dks_end(struct dks *d, char domain[ADDR_DOMAIN_MAX + 1]);

/* The key: a dkim-sign line and its key's public half (the smtp role's
 * own copy, loaded by the supervisor); or the key role's DKIM_KEY_REP
 * (ok 1).  0, or -1 with why (names the signature cannot carry). */
int dks_use_line(struct dks *d, const struct conf_dkim *line, const struct dkim_key *key);
int dks_use_rep(struct dks *d, const struct keymsg *rep);

/* Does the message carry a DKIM-Signature with our d= already?  1 or 0. */
int dks_present(const struct dks *d);

/* The DKIM-Signature header without b=, and the hash to sign, with t=
 * now.  0, or -1 with why (the header block too big, too many fields). */
int dks_prepare(struct dks *d, uint64_t now);

/*
 * Ask the key role on link for the signature.  cb(arg, d, ok) runs from
 * the loop once: ok 1, the signature verified with the
 * key's public half and the header is in d->out[0..outlen); ok 0, why says
 * what failed (no answer, refused, a signature that does not verify).
 * Returns the link's ticket.
 */
uint64_t dks_ask(struct dks *d, struct dkc *link, dks_fn *cb, void *arg);

/* The step dks_ask()'s answer goes through: check rep's signature and
 * build the header.  0, or -1 with why.  (Exposed for tests.) */
int dks_finish(struct dks *d, const struct keymsg *rep, const char *why);

#endif
