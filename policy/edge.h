/*
 * policy/edge.h -- the edge defenses' decisions (docs/security.md "Edge defenses"):
 * HELO and sender sanity, the tarpit's delay schedule, and the names and
 * counters of every decision.  Pure: the caller passes the client, its
 * words and the time; nothing here reads a socket or a clock.
 *
 * Who is an outsider: a client that may not relay (rules_relay_allowed():
 * not in a relay-network and not authenticated).  Insiders are never
 * refused by these checks.
 */
#ifndef MOAT_POLICY_EDGE_H
#define MOAT_POLICY_EDGE_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "net.h"

/*
 * Every edge decision has a name: the log line's reason= and the counter's
 * name are the same word.  X(enum, "name").
 */
#define EDGE_REASONS(X) \
	X(EDGE_EARLY_TALKER,     "early-talker")     /* talked before the greeting      */ \
	X(EDGE_EARLY_PIPELINING, "early-pipelining") /* a command after EHLO, unasked   */ \
	X(EDGE_NO_HELO,          "no-helo")          /* MAIL before HELO/EHLO           */ \
	X(EDGE_HELO_INVALID,     "helo-invalid")     /* not a domain nor a literal      */ \
	X(EDGE_HELO_FORGED,      "helo-forged")      /* an outsider claims to be us     */ \
	X(EDGE_SENDER_FORGED,    "sender-forged")    /* an outsider sends as our domain */ \
	X(EDGE_TARPIT,           "tarpit")           /* a reply held back               */ \
	X(EDGE_TOO_MANY_ERRORS,  "too-many-errors")  /* 421 at max-errors               */ \
	X(EDGE_DNSBL_LISTED,     "dnsbl-listed")     /* a client scored over threshold  */ \
	X(EDGE_DNSBL_REJECT,     "dnsbl")            /* a 554 for it (greeting or RCPT) */ \
	X(EDGE_DNSBL_ALLOWED,    "dnsbl-allowlisted")/* an allowlist (DNSWL) listed it  */ \
	X(EDGE_DNSBL_TIMEOUT,    "dnsbl-timeout")    /* a list did not answer in time   */ \
	X(EDGE_DNSBL_QUERY,      "dnsbl-query")      /* a DNS query sent                */ \
	X(EDGE_DNSBL_CACHED,     "dnsbl-cached")     /* a list answered from the cache  */

#define EDGE_ENUM(e, name) e,
enum edge_reason { EDGE_REASONS(EDGE_ENUM) EDGE_NREASONS };
#undef EDGE_ENUM

/* What the server has decided since it started, by reason (the metrics
 * export reads this).  The server owns it; sessions hold a pointer. */
struct edge_counters {
	uint64_t n[EDGE_NREASONS];
};

/* "early-talker", ...; "?" for a value out of range. */
const char *edge_reason_name(enum edge_reason r);

/* ++c->n[r]; c may be NULL (a session without a server: tests, fuzzers). */
void edge_count(struct edge_counters *c, enum edge_reason r);

/* ---- HELO/EHLO ---------------------------------------------------------- */

enum edge_helo {
	EDGE_HELO_OK = 0,
	EDGE_HELO_SYNTAX,   /* neither an RFC 5321 Domain nor an address literal */
	EDGE_HELO_OURS      /* our hostname, one of our domains, or our address  */
};

/*
 * Judge the HELO/EHLO argument name[0..len).  local is the address the
 * client connected to (family 0 if unknown); it and every listener
 * address count as ours.  "Ours" is: the hostname or a domain (exactly,
 * not a subdomain of a "*." domain: hosts inside are named so), one
 * trailing dot and case ignored; or an address literal ("[192.0.2.1]",
 * "[IPv6:2001:db8::1]") or bare address ("192.0.2.1") that is one of ours.
 * Syntax is checked first.  Which verdicts refuse is the caller's
 * business (reject-invalid-helo, reject-forged-helo, insiders).
 */
enum edge_helo edge_helo_check(const struct conf *c, const char *name, size_t len,
                               const struct ipaddr *local);

/* ---- MAIL FROM ---------------------------------------------------------- */

/*
 * Does a sender domain (lower-case, no trailing dot, as policy/addr.h
 * leaves it; "" for the null path) name one of our domains, so that an
 * outsider using it is forging us?  An address literal never is.
 * Returns 1 or 0.
 */
int edge_sender_ours(const struct conf *c, const char *domain, size_t len, unsigned addr_flags);

/* ---- tarpit ------------------------------------------------------------- */

/*
 * Milliseconds to hold back the reply to a client's errors-th error
 * (counting from 1): 0 below tarpit-after (and always with tarpit-after
 * 0), then tarpit-delay, twice that, three times ... up to
 * tarpit-max-delay:
 *
 *   delay(e) = min(tarpit-delay x (e - tarpit-after + 1), tarpit-max-delay)
 *
 * With the defaults (10, 1000, 10000) and max-errors 20 a client spends
 * 55 s in held replies before the 421.
 */
unsigned edge_tarpit_delay(const struct conf *c, unsigned errors);

#endif
