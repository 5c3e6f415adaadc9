/*
 * policy/rules.h -- who may send to whom: the accept and relay decision.
 * Pure: the caller passes the client and the parsed recipient.
 *
 * The relay matrix (docs/security.md "Relay control"):
 *                                 our domain        foreign domain
 *   authenticated user             accept            relay
 *   relay network, internal lsnr   accept            relay
 *   anyone else                    accept            554 5.7.1 denied
 * A deny-network client never relays, authenticated or not, and with
 * never-connect is refused at connect.  (Submission listeners refuse MAIL
 * before AUTH, 530: mta/smtp/smtpd.c; unknown users at our domains get 550
 * 5.1.1 from the recipient lists: policy/rcptdb.h.)
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
	unsigned      internal : 1;  /* connected to a listener marked internal */
};

enum rcpt_verdict {
	RCPT_LOCAL = 0,      /* for one of our domains: 250 */
	RCPT_RELAY,          /* foreign, client may relay: 250 */
	RCPT_DENY_RELAY,     /* foreign, client may not: 554 5.7.1 */
	RCPT_DENY_ROUTING    /* routing characters from an outsider: 554 5.7.1 */
};

/* Is domain (lower-case, no trailing dot) one we accept mail for? */
int rules_domain_is_local(const struct conf *c, const char *domain, size_t len);
/* Does domain match this one "domain" line (its subdomains for "*.")? */
int rules_domain_matches(const struct conf_domain *d, const char *domain, size_t len);

/* Is this client in a deny-network (never_connect: one marked so)? */
int rules_denied(const struct conf *c, const struct ipaddr *addr, int never_connect);

/* May this client relay to foreign domains? */
int rules_relay_allowed(const struct conf *c, const struct rules_client *cl);

enum rcpt_verdict rules_rcpt(const struct conf *c, const struct rules_client *cl,
                             const struct addr *rcpt);

/* The relay matrix of c, per listener, as '#' comment lines for `moat
 * check`, into buf; returns the length it needs (like snprintf). */
size_t rules_matrix_format(const struct conf *c, char *buf, size_t cap);

#endif
