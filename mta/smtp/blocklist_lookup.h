/*
 * mta/smtp/blocklist_lookup.h -- a client's DNS blocklist lookups, inside the event loop:
 * one A query per `dnsbl` zone through the resolver (mta/net/resolver.h), answered
 * from the cache (policy/dnsbl.h) when it can, all of it cut short at
 * dnsbl-timeout.  A zone that failed or did not answer in time lists
 * nobody: a DNS failure never refuses mail.
 *
 * The verdict comes by callback, never from inside dnsbl_check() (an
 * all-cached verdict comes from a timer of 0 ms), at most once, and not
 * after dnsbl_check_cancel().  The check frees itself after calling back;
 * the caller must forget its pointer then.  Each verdict that matters is
 * logged on one line (event=dnsbl addr= reason=) and counted.
 */
#ifndef MOAT_MTA_SMTP_BLOCKLIST_LOOKUP_H
#define MOAT_MTA_SMTP_BLOCKLIST_LOOKUP_H

#include <stddef.h>
#include <stdint.h>

#include "mta/net/ev.h"
#include "policy/conf.h"
#include "policy/edge.h"
#include "policy/net.h"

struct dnsbl;
struct dnsbl_check;

struct dnsbl_verdict {
	int      score;        /* the listing zones' weights, summed */
	uint32_t listed;       /* bit k: zone k lists the client */
	unsigned unanswered;   /* zones that failed or did not answer in time */
	int      refused;      /* score reached dnsbl-threshold */
	char     names[256];   /* refused: the blocklists, for the 554 */
};

/* v is valid during the call only. */
typedef void dnsbl_cb(void *arg, const struct dnsbl_verdict *v);

/* The lists of c (which must have at least one `dnsbl`), their resolver
 * and cache; decisions are counted in ec (may be NULL).  NULL with a
 * message in err on failure. */
struct dnsbl *dnsbl_new(struct ev_loop *l, const struct conf *c, struct edge_counters *ec,
                        char *err, size_t errcap);
/* Every check must have called back or been cancelled. */
void dnsbl_free(struct dnsbl *b);

/* Look the client up; NULL (no callback to come) when memory is short,
 * which the caller takes as "not listed". */
struct dnsbl_check *dnsbl_check(struct dnsbl *b, const struct ipaddr *client,
                                const char *addr_text, dnsbl_cb *cb, void *arg);
/* Forget a check (no callback, queries cancelled); NULL is fine. */
void dnsbl_check_cancel(struct dnsbl_check *k);

#endif
