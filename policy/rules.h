/*
 * policy/rules.h -- who may send to whom: the accept and relay decision.
 * Pure: the caller passes the client and the parsed recipient.
 *
 * The relay matrix (README "Relay control"):
 *                        our domain        foreign domain
 *   relay network         accept            relay
 *   anyone else           accept            554 5.7.1 denied
 * A recipient at our domain whose local part holds routing characters
 * ('%', '!', quoted '@') is refused for clients that may not relay: a host
 * behind us could otherwise turn it into a relay (the percent hack).
 * An address literal is never one of our domains.
 */
#ifndef MOAT_POLICY_RULES_H
#define MOAT_POLICY_RULES_H

#include "conf.h"
#include "addr.h"
#include "net.h"

struct rules_client {
	struct ipaddr addr;      /* already ip_unmap()ed */
	unsigned      authenticated : 1;
};

enum rcpt_verdict {
	RCPT_LOCAL = 0,      /* for one of our domains: 250 */
	RCPT_RELAY,          /* foreign, client may relay: 250 */
	RCPT_DENY_RELAY,     /* foreign, client may not: 554 5.7.1 */
	RCPT_DENY_ROUTING    /* routing characters from an outsider: 554 5.7.1 */
};

/* Does domain match d ("name" exactly, "*.name" also its subdomains),
 * without regard to case? */
int rules_domain_match(const struct conf_domain *d, const char *domain, size_t len);

/* Is domain (lower-case, no trailing dot) one we accept mail for? */
int rules_domain_is_local(const struct conf *c, const char *domain, size_t len);

/* May this client relay to foreign domains? */
int rules_relay_allowed(const struct conf *c, const struct rules_client *cl);

enum rcpt_verdict rules_rcpt(const struct conf *c, const struct rules_client *cl,
                             const struct addr *rcpt);

#endif
