/*
 * policy/route.h -- where a recipient's mail goes next (docs/delivery.md "Delivery").
 * Pure: the caller passes the config and the address.
 *
 * In this order:
 *   1. a `route` for the recipient's domain: the exact name first, then
 *      the `*.name` route with the longest name;
 *   2. the `smarthost`, if there is one;
 *   3. an address literal (user@[192.0.2.1], user@[IPv6:2001:db8::1]):
 *      that address, port 25;
 *   4. the domain's MX hosts (RFC 5321 5.1).
 * A bare <postmaster> (no domain) is routed as postmaster at our hostname.
 * A general address literal ([tag:...]) cannot be routed: ROUTE_NONE.
 */
#ifndef MOAT_POLICY_ROUTE_H
#define MOAT_POLICY_ROUTE_H

#include "conf.h"

enum route_kind {
	ROUTE_NEXTHOP = 0,  /* a configured route                    */
	ROUTE_SMARTHOST,    /* the smarthost                          */
	ROUTE_LITERAL,      /* an address literal: addr, port 25      */
	ROUTE_MX,           /* MX lookup of domain                    */
	ROUTE_NONE          /* nowhere: bounce                        */
};

/* "relay:" host ":" port ":" tls flags, or "mx:" domain, or "ip:" address */
#define ROUTE_KEY_MAX (ADDR_DOMAIN_MAX + 32)

struct route {
	enum route_kind kind;
	const struct conf_nexthop *hop;    /* NEXTHOP, SMARTHOST: points into conf */
	struct ipaddr addr;                /* LITERAL */
	char domain[ADDR_DOMAIN_MAX + 1];  /* the recipient's domain, lower-case */
	/* Recipients whose key is the same go to the same place the same way:
	 * one transaction may carry them all; concurrency is counted per key. */
	char key[ROUTE_KEY_MAX];
};

/*
 * Route the recipient rcpt ("local@domain", as queued) under c.  Fills out
 * (out->hop points into c, which must outlive it) and returns its kind.
 */
enum route_kind route_select(const struct conf *c, const char *rcpt, struct route *out);

/* The route for domain[0..len) if one is configured, else NULL. */
const struct conf_route *route_find(const struct conf *c, const char *domain, size_t len);

/*
 * A next hop that is this machine's own listener: addr:port is one of c's
 * listeners, by its address, or (a wildcard listener) by an address of
 * this machine: a loopback or unspecified address, or one of local[0..n)
 * (the interfaces', read by the caller).  Delivering there would loop.
 */
int route_is_self(const struct conf *c, const struct ipaddr *local, size_t nlocal,
                  const struct ipaddr *addr, unsigned port);

#endif
