/*
 * mta/smtp/sts_fetch.h -- the HTTPS fetch of one domain's MTA-STS policy
 * (RFC 8461 3.3), in the delivery role's event loop: the addresses of
 * mta-sts.DOMAIN (AAAA and A, through the resolver), a non-blocking
 * connection to port 443 of each in turn, TLS with BearSSL checked
 * against tls-ca-file and the name mta-sts.DOMAIN (tls_client_new with
 * the anchors), the GET of policy/mtasts_fetch.h and its reader on what
 * comes back.  Nothing here waits: every step is a callback of the loop.
 *
 * Bounds (RFC 8461 3.3): the whole fetch within MTASTS_FETCH_TIMEOUT
 * seconds, each connection within `timeout-connect`; the head, the body
 * (MTASTS_POLICY_MAX) and the status (200 only, never a redirect) are the
 * reader's.  At most STS_FETCH_ADDRS addresses are tried.
 *
 * The callback is never called from inside sts_fetch_start(), at most
 * once, never after sts_fetch_free(); it may free the fetch.
 */
#ifndef MOAT_MTA_SMTP_STS_FETCH_H
#define MOAT_MTA_SMTP_STS_FETCH_H

#include <stddef.h>

#include "mta/net/ev.h"
#include "mta/net/resolver.h"
#include "mta/net/tls.h"

#define STS_FETCH_ADDRS 4
#define STS_FETCH_PORT  443

enum sts_fetch_rc {
	STS_FETCH_OK = 0,    /* body[0..len): the policy file as served (not yet parsed) */
	STS_FETCH_FAILED,    /* no address, no connection, an HTTP refusal, a timeout */
	STS_FETCH_WEBPKI     /* the server's certificate did not verify (RFC 8460
	                        sts-webpki-invalid) */
};

/* why: a short text for logs (valid during the call). */
typedef void sts_fetch_cb(void *arg, enum sts_fetch_rc rc, const char *body, size_t len,
                          const char *why);

struct sts_fetch;

/* Start fetching domain's policy (an A-label domain).  anchors NULL (no
 * tls-ca-file loaded) fails at once (from the loop).  connect_s: the
 * timeout of each connection.  NULL when memory is short or the domain is
 * not a host name. */
struct sts_fetch *sts_fetch_start(struct ev_loop *l, struct dns_resolver *dns,
                                  const struct tls_anchors *anchors, const char *domain,
                                  unsigned connect_s, sts_fetch_cb *cb, void *arg);

/* Stop (no callback) and free.  NULL is fine. */
void sts_fetch_free(struct sts_fetch *f);

#endif
