/*
 * mta/smtp/sts_policy.h -- the MTA-STS policy of each recipient domain,
 * for the delivery role (RFC 8461 3, 5; docs/tls-policy.md): the
 * `_mta-sts.DOMAIN` TXT record, the policy cached in the queue's LMDB
 * (asked of the queue role: STS_GET, STS_PUT), mtasts_plan()'s choice, and
 * the HTTPS fetch of a new policy (mta/smtp/sts_fetch.h).  All of it in the
 * loop: a lookup is answered by callback, nothing waits.
 *
 * What a domain's lookup found is kept in memory for STS_MEMO_MS (so that
 * a burst of mail to one domain asks once), and lookups of one domain
 * that overlap share one TXT query, one cache read and one fetch.  At
 * most STS_MEMO_MAX domains are kept; the oldest idle one makes room.
 *
 * Logs: event=mta-sts when a policy is fetched and cached (domain, id,
 * mode, max_age, mx patterns); a warning naming the domain and the reason
 * when a fetch fails or a policy file does not parse (then the cached
 * policy stands while it is fresh, RFC 8461 3.3, else there is none).
 */
#ifndef MOAT_MTA_SMTP_STS_POLICY_H
#define MOAT_MTA_SMTP_STS_POLICY_H

#include <stdint.h>

#include "mta/net/ev.h"
#include "mta/net/queue_client.h"
#include "mta/net/resolver.h"
#include "mta/net/tls.h"
#include "policy/mtasts.h"
#include "policy/tlsrpt.h"

#define STS_MEMO_MS  60000
#define STS_MEMO_MAX 256

/* What applies to a domain now. */
struct sts_verdict {
	int                  have;     /* a policy in testing or enforce mode applies */
	char                 id[MTASTS_ID_MAX + 1];
	struct mtasts_policy policy;   /* when have */
};

/* v is valid during the call only; NULL: the lookup could not be made
 * (memory): the caller defers, it does not deliver without the policy. */
typedef void sts_policy_cb(void *arg, const struct sts_verdict *v);

/* A fetch of domain's policy failed (result: TLSRPT_STS_POLICY_FETCH_ERROR,
 * _INVALID or _WEBPKI_INVALID, reason a short text): for the TLS report. */
typedef void sts_policy_fail_fn(void *arg, const char *domain, unsigned result,
                                const char *reason);

struct sts_policy;
struct sts_policy_wait;

/* anchors: tls-ca-file's (NULL: every fetch fails); connect_s: each
 * fetch connection's timeout; fail(fail_arg, ...) may be NULL.  NULL when
 * memory is short. */
struct sts_policy *sts_policy_new(struct ev_loop *l, struct dns_resolver *dns, struct qc *q,
                                  const struct tls_anchors *anchors, unsigned connect_s,
                                  sts_policy_fail_fn *fail, void *fail_arg);
/* Every lookup cancelled (no callback), everything freed. */
void sts_policy_free(struct sts_policy *s);

/* The policy of domain (A-labels, a host name: dns_name_ok).  cb is
 * called later from the loop, never from inside this call, once, and
 * never after sts_policy_cancel(w).  NULL (no callback) when memory is
 * short or domain is not a host name. */
struct sts_policy_wait *sts_policy_lookup(struct sts_policy *s, const char *domain,
                                          sts_policy_cb *cb, void *arg);
void sts_policy_cancel(struct sts_policy_wait *w);

#endif
