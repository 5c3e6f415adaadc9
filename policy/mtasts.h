/*
 * policy/mtasts.h -- MTA-STS (RFC 8461): the `_mta-sts` TXT record, the
 * policy file, which MX hosts a policy allows, what a failure means under
 * it, and when to fetch a policy again.  Pure: no I/O, no clock (the
 * caller passes now), no allocation; the caller owns every struct.
 *
 * The flow for a recipient domain D (RFC 8461 3, 5; docs/tls-policy.md):
 *
 *   TXT _mta-sts.D --mtasts_txt_select()--> id, or no record
 *   cached policy (queue/queue.h queue_sts_get) + id --mtasts_plan()-->
 *       use the cached policy | fetch | no policy
 *   fetch https://mta-sts.D/.well-known/mta-sts.txt (policy/mtasts_fetch.h)
 *       --mtasts_policy_parse()--> policy, cached with the TXT's id
 *       (failed: mtasts_fetch_failed() says whether the cached one stands)
 *   each MX host: mtasts_mx_allowed(); after STARTTLS: mtasts_verdict()
 *
 * Texts come from the network and are hostile: every parser checks its
 * bounds, refuses NUL and control bytes, and takes all of its input or
 * refuses it (a policy either parses whole or is invalid, never half).
 */
#ifndef MOAT_POLICY_MTASTS_H
#define MOAT_POLICY_MTASTS_H

#include <stddef.h>
#include <stdint.h>

#include "policy/dns.h"

#define MTASTS_ID_MAX      32                /* RFC 8461 3.1: 1*32(ALPHA / DIGIT) */
#define MTASTS_POLICY_MAX  (64 * 1024)       /* RFC 8461 3.2: policy bodies at most 64 KiB */
#define MTASTS_MX_MAX      32                /* mx patterns kept; more: see mx_dropped */
#define MTASTS_MX_LEN      (2 + DNS_NAME_MAX) /* "*." and a host name */
#define MTASTS_MAX_AGE_MAX 31557600u         /* RFC 8461 3.2: about one year */
#define MTASTS_REFRESH     86400             /* a cached policy this old is fetched again */

enum mtasts_mode {
	MTASTS_MODE_NONE = 0,   /* "none": as if the domain had no policy          */
	MTASTS_MODE_TESTING,    /* "testing": failures are logged and reported only */
	MTASTS_MODE_ENFORCE     /* "enforce": failures stop the delivery (4.7.5)   */
};

struct mtasts_policy {
	uint8_t  mode;                               /* enum mtasts_mode */
	uint32_t max_age;                            /* seconds, <= MTASTS_MAX_AGE_MAX */
	size_t   nmx;
	char     mx[MTASTS_MX_MAX][MTASTS_MX_LEN + 1];  /* lower-case, no trailing dot;
	                                                  "*.example.com" for a wildcard */
	size_t   mx_dropped;                         /* patterns past MTASTS_MX_MAX: not
	                                                kept, so their hosts are refused */
};

/*
 * One TXT record's text (RFC 8461 3.1): "v=STSv1" first, then fields
 * separated by ";" with optional blanks, one of them "id=" and 1 to 32
 * letters or digits; other fields ("name=value") are ignored.  Returns 0
 * with the id (NUL-terminated) in id, or -1 (no id, two ids, bad syntax).
 */
int mtasts_txt_parse(const char *text, size_t len, char id[MTASTS_ID_MAX + 1]);

/* The extension field "name=value" of a TXT record, RFC 8461 3.1's
 * sts-extension (RFC 8460 3's tlsrpt-extension is the same): name a
 * letter or digit then up to 31 of letters, digits, '_', '-', '.'; value
 * one or more printable ASCII but ';' and '='.  1 or 0. */
int mtasts_ext_ok(const char *name, size_t nlen, const char *value, size_t vlen);

enum mtasts_txt {
	MTASTS_TXT_FOUND = 0,  /* one STS record, valid: its id is in id          */
	MTASTS_TXT_NONE,       /* no record starting "v=STSv1": no policy         */
	MTASTS_TXT_INVALID     /* several, or one that does not parse: no policy  */
};

/*
 * Choose among the TXT records of _mta-sts.DOMAIN (RFC 8461 3.1): those
 * not starting "v=STSv1" are discarded; exactly one must remain and parse.
 * A truncated record is invalid.  Records the DNS reader dropped past its
 * cap are not known, so they are not counted: moat then applies the one
 * it found rather than none (the stricter of the two readings).
 */
enum mtasts_txt mtasts_txt_select(const struct dns_txt_set *set, char id[MTASTS_ID_MAX + 1]);

/*
 * The policy file (RFC 8461 3.2), buf[0..len): lines "key: value" ending
 * in LF or CRLF (the last line's end is optional), in any order:
 * "version: STSv1" once, "mode: enforce|testing|none" once, "max_age:"
 * 1 to 10 digits once (at most MTASTS_MAX_AGE_MAX), "mx: PATTERN" any
 * number of times (at least once unless the mode is none), other keys
 * ignored.  Blanks around keys and values and blank lines are allowed.
 * PATTERN is a host name, or "*." and one (RFC 8461 4.1).  Returns 0, or
 * -1 with a short reason in *why (static text) and out cleared: the body
 * is over MTASTS_POLICY_MAX, holds a NUL, a control byte or a bare CR, a
 * line without ':', a key twice, a value out of its syntax, or lacks a
 * required key.
 */
int mtasts_policy_parse(const char *buf, size_t len, struct mtasts_policy *out,
                        const char **why);

/*
 * The policy as text, in the form mtasts_policy_parse() reads (version,
 * mode, each mx, max_age; LF line ends).  Like snprintf: writes at most
 * cap bytes with a NUL, returns the length it needs.  TLSRPT reports it
 * as the policy-string (RFC 8460 4.3).
 */
size_t mtasts_policy_format(const struct mtasts_policy *p, char *buf, size_t cap);

/* "none", "testing", "enforce" ("?" for another value). */
const char *mtasts_mode_name(unsigned mode);

/*
 * RFC 8461 4.1: does host (an MX host name, any case, one trailing dot
 * allowed) match pattern?  An exact name matches itself, case aside;
 * "*.example.com" matches one more label on the left ("mx.example.com"),
 * never "example.com" nor "a.b.example.com".
 */
int mtasts_mx_match(const char *pattern, const char *host);

/* May the policy's MX host be used?  Under mode none, any host may. */
int mtasts_mx_allowed(const struct mtasts_policy *p, const char *host);

/* What went wrong with one MX host, as far as the policy is concerned. */
enum mtasts_failure {
	MTASTS_OK = 0,            /* verified TLS to an allowed host              */
	MTASTS_F_MX_MISMATCH,     /* the host matches no mx pattern               */
	MTASTS_F_STARTTLS,        /* no STARTTLS, or the handshake failed         */
	MTASTS_F_CERT_UNTRUSTED,  /* the chain does not lead to tls-ca-file       */
	MTASTS_F_CERT_HOST,       /* the certificate does not name the host       */
	MTASTS_F_CERT_EXPIRED     /* a certificate of the chain is out of date    */
};

enum mtasts_verdict {
	MTASTS_DELIVER = 0,   /* go on                                                */
	MTASTS_REPORT,        /* testing: go on, log and report the failure           */
	MTASTS_DEFER          /* enforce: not to this host (4.7.5), never in plaintext */
};

/* The verdict on failure f under policy p (RFC 8461 5): enforce defers,
 * testing reports, none and MTASTS_OK deliver. */
enum mtasts_verdict mtasts_verdict(const struct mtasts_policy *p, enum mtasts_failure f);

/* A policy as the queue caches it (queue/queue.h queue_sts_put). */
struct mtasts_cached {
	char    id[MTASTS_ID_MAX + 1];   /* the TXT record's id it was fetched for */
	int64_t fetched_at;              /* Unix seconds */
	struct mtasts_policy policy;
};

/* Is c still valid at now: fetched at most max_age seconds ago (RFC 8461
 * 3.2), and not in the future by more than a day (a clock set back)? */
int mtasts_cache_fresh(const struct mtasts_cached *c, int64_t now);

enum mtasts_action {
	MTASTS_NO_POLICY = 0, /* deliver as if the domain had no policy           */
	MTASTS_USE_CACHED,    /* apply the cached policy                          */
	MTASTS_FETCH          /* fetch it; if that fails, mtasts_fetch_failed()   */
};

/* What the TXT lookup gave: a valid record (id), none, or no answer. */
enum mtasts_lookup {
	MTASTS_LOOKUP_FOUND = 0,
	MTASTS_LOOKUP_NONE,       /* NXDOMAIN, no data, or mtasts_txt_select() said none/invalid */
	MTASTS_LOOKUP_TEMPFAIL    /* the DNS did not answer                           */
};

/*
 * RFC 8461 5.1, with c the cached policy (NULL if none) and id the TXT
 * record's (for MTASTS_LOOKUP_FOUND):
 *   - a fresh cached policy is applied when the record is absent or the
 *     DNS fails (an attacker who removes the record gains nothing until
 *     max_age runs out) and when the id is the same -- unless it was
 *     fetched MTASTS_REFRESH or more ago: then it is fetched again, so a
 *     domain that keeps its id keeps its policy alive instead of letting
 *     max_age run out;
 *   - a new id means a fetch;
 *   - without a fresh cached policy: fetch when the record is found,
 *     else no policy.
 */
enum mtasts_action mtasts_plan(const struct mtasts_cached *c, enum mtasts_lookup txt,
                               const char *id, int64_t now);

/* After a failed fetch: the cached policy if it is still fresh (RFC 8461
 * 3.3: "continue to use the cached policy"), else no policy. */
enum mtasts_action mtasts_fetch_failed(const struct mtasts_cached *c, int64_t now);

#endif
