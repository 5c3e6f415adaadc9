/*
 * mta/net/resolver.h -- the resolver: asks a recursive DNS server (config
 * `dns-server`, else the nameserver lines of /etc/resolv.conf, else
 * 127.0.0.1) for MX, A and AAAA records, inside the event loop; and keeps
 * /etc/hosts, read at the start, for the names of configured next hops.
 *
 * Each query goes by UDP to one server with a fresh random ID from its own
 * socket (so a random source port too), waits `dns-timeout`, then asks the
 * next server; two rounds over the servers, then DNS_TEMPFAIL.  A
 * truncated answer is asked again over TCP from the same server.  A
 * SERVFAIL or REFUSED moves to the next server at once.  Answers are read
 * by policy/dns.h, which refuses what does not answer our question: such a
 * packet is dropped and the query keeps waiting.
 *
 * The callback is never called from inside dns_lookup(); it is called at
 * most once, and not after dns_cancel().  A query's memory stays valid
 * until the loop's next timer phase, so the callback may free its caller's
 * state (and cancel other queries) freely.
 */
#ifndef MOAT_MTA_NET_RESOLVER_H
#define MOAT_MTA_NET_RESOLVER_H

#include <stdint.h>

#include "mta/net/ev.h"
#include "policy/conf.h"
#include "policy/dns.h"

struct dns_resolver;
struct dns_query;

/* st is DNS_OK, DNS_NODATA, DNS_NXDOMAIN or DNS_TEMPFAIL; a is valid
 * during the call only (DNS_OK: the records; else empty). */
typedef void dns_cb(void *arg, enum dns_status st, const struct dns_answer *a);

/* Servers and timeout from c (read now: /etc/resolv.conf is read here).
 * NULL with a message in err on failure (out of memory). */
struct dns_resolver *dns_resolver_new(struct ev_loop *l, const struct conf *c,
                                      char *err, size_t errcap);
/* Cancel everything (no callbacks) and free. */
void dns_resolver_free(struct dns_resolver *r);

/* Ask for name/qtype (DNS_T_MX, DNS_T_A, DNS_T_AAAA).  Returns NULL, with
 * no callback to come, if name is not a host name (dns_name_ok) or memory
 * is short. */
struct dns_query *dns_lookup(struct dns_resolver *r, const char *name, uint16_t qtype,
                             dns_cb *cb, void *arg);
void dns_cancel(struct dns_query *q);

/* The addresses /etc/hosts gives name (policy/hosts.h; the file as read by
 * dns_resolver_new), at most max: 0 when it names none. */
size_t dns_hosts(const struct dns_resolver *r, const char *name, struct ipaddr *out,
                 size_t max);

#endif
