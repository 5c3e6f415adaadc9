/*
 * mta/net/resolver.h -- the resolver: asks a recursive DNS server (config
 * `dns-server`, else the nameserver lines of /etc/resolv.conf, else
 * 127.0.0.1) for MX, A and AAAA records, and for TLSA and TXT records
 * (authenticated TLS toward MX hosts: docs/tls-policy.md), inside the
 * event loop; and keeps /etc/hosts, read at the start, for the names of
 * configured next hops.
 *
 * DNSSEC (dns_resolver_dnssec): the delivery role, under `dns-dnssec
 * trusted`, asks with the EDNS0 DO bit and takes the AD bit of each answer
 * as the resolver's word that it validated it (policy/dns.h).  Without it
 * no DO bit is sent and every answer's ad is 0, whatever the server said:
 * an AD bit nobody asked for is never believed.
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

/* TLSA and TXT records (policy/dns.h dns_tlsa_parse, dns_txt_parse), as
 * dns_lookup(): st is DNS_OK (records in s), DNS_NODATA, DNS_NXDOMAIN or
 * DNS_TEMPFAIL; s (never NULL: empty but for ad unless DNS_OK) is valid
 * during the call only.  An answer to our question whose records do not
 * parse (a TLSA record shorter than its three parameter octets, a TXT
 * string that overruns its record) is refused like any bad answer: the
 * next server is asked, and in the end the lookup is DNS_TEMPFAIL. */
typedef void dns_tlsa_cb(void *arg, enum dns_status st, const struct dns_tlsa_set *s);
typedef void dns_txt_cb(void *arg, enum dns_status st, const struct dns_txt_set *s);
struct dns_query *dns_lookup_tlsa(struct dns_resolver *r, const char *name, dns_tlsa_cb *cb,
                                  void *arg);
struct dns_query *dns_lookup_txt(struct dns_resolver *r, const char *name, dns_txt_cb *cb,
                                 void *arg);

/* on 1: every later query asks for DNSSEC (EDNS0 DO) and answers keep the
 * AD bit; 0 (the default): no DO, ad always 0.  See above. */
void dns_resolver_dnssec(struct dns_resolver *r, int on);
void dns_cancel(struct dns_query *q);

/* The addresses /etc/hosts gives name (policy/hosts.h; the file as read by
 * dns_resolver_new), at most max: 0 when it names none. */
size_t dns_hosts(const struct dns_resolver *r, const char *name, struct ipaddr *out,
                 size_t max);

#endif
