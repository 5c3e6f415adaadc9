/*
 * mta/smtp/tls_results.h -- the delivery role's side of TLS reporting
 * (RFC 8460, docs/tls-policy.md): what one transaction's sessions under
 * DANE or MTA-STS, or one failed MTA-STS policy fetch, add to the day's
 * report of a policy domain, sent to the queue role (TLSRPT_ADD), which
 * merges it into the stored record.  Nothing waits for the answer: a
 * result lost with the queue link is a count missing from a report, never
 * a delivery held up.
 *
 * Memory: each call builds its delta in one heap buffer of about 90 KiB
 * (struct tlsrpt_report and its encoded record) and frees it before
 * returning.
 */
#ifndef MOAT_MTA_SMTP_TLS_RESULTS_H
#define MOAT_MTA_SMTP_TLS_RESULTS_H

#include <stddef.h>
#include <stdint.h>

#include "mta/net/queue_client.h"
#include "mta/smtp/delivery_attempt.h"
#include "policy/mtasts.h"

/*
 * The sessions s[0..n) of one transaction to domain (the policy domain:
 * the recipient domain), at now (Unix seconds): each a success or a
 * failure under its policy (an MTA-STS one is described by sts, which may
 * be NULL when the domain has none; a DANE one by its TLSA records).
 * 0, or -1 when nothing could be sent (memory, a domain that is not a
 * host name).
 */
int tlsres_sessions(struct qc *q, const char *domain, const struct mtasts_policy *sts,
                    const struct client_session *s, size_t n, int64_t now);

/* A fetch of domain's MTA-STS policy failed: result (enum tlsrpt_result,
 * an sts-* one), reason a short text.  0 or -1 as above. */
int tlsres_fetch_failed(struct qc *q, const char *domain, unsigned result, const char *reason,
                        int64_t now);

#endif
