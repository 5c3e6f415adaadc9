/*
 * policy/dns.h -- DNS messages for the delivery path: build a query, read
 * an answer (RFC 1035), and the MX ordering rules of RFC 5321 5.1 and
 * RFC 7505.  Pure: no I/O, no allocation, no clock, no randomness (the
 * caller passes the query ID and a seed).  mta/net/resolver.c sends and receives.
 *
 * The answer comes from the network and is hostile until proven otherwise
 * (Exim CVE-2026-40684 was a musl-built MTA reading past a DNS answer):
 *   - every read is checked against the message length first;
 *   - a compression pointer must point before the start of the name piece
 *     that holds it (each jump goes strictly backwards, so no loop can
 *     form), and a name is at most 255 octets on the wire;
 *   - the answer must be for our question: same ID, QR set, opcode 0, one
 *     question equal to ours (name compared without case, type, class IN);
 *   - names we keep (MX hosts, CNAME targets) must be host names: letters,
 *     digits, '-' and '_' in labels of 1..63 octets.  A record whose name
 *     holds anything else is skipped, never passed on.
 */
#ifndef MOAT_POLICY_DNS_H
#define MOAT_POLICY_DNS_H

#include <stddef.h>
#include <stdint.h>
#include "net.h"

#define DNS_T_A     1
#define DNS_T_CNAME 5
#define DNS_T_MX    15
#define DNS_T_AAAA  28

#define DNS_NAME_MAX  253    /* text form, no trailing dot */
#define DNS_UDP_MAX   512    /* we send no EDNS0: larger answers come by TCP */
#define DNS_MSG_MAX   65535  /* a TCP answer */
#define DNS_QUERY_MAX (12 + 255 + 4)
#define DNS_MX_MAX    32     /* MX records kept; more are ignored */
#define DNS_ADDR_MAX  32     /* A/AAAA records kept */
#define DNS_CNAME_MAX 8      /* CNAME hops followed inside one answer */

enum dns_status {
	DNS_OK = 0,     /* records of the type asked: in mx[] or addr[]          */
	DNS_NODATA,     /* the name exists but has no such records               */
	DNS_NXDOMAIN,   /* the name does not exist (RCODE 3)                      */
	DNS_TEMPFAIL,   /* SERVFAIL, REFUSED, ...: ask another server, or later  */
	DNS_TRUNCATED,  /* TC set: ask again over TCP                            */
	DNS_BAD         /* not an answer to our question, or malformed: drop it  */
};

struct dns_mx {
	uint16_t pref;
	char     host[DNS_NAME_MAX + 1]; /* lower-case; "" is the root (null MX) */
};

struct dns_answer {
	size_t        nmx;
	struct dns_mx mx[DNS_MX_MAX];         /* DNS_T_MX */
	size_t        naddr;
	struct ipaddr addr[DNS_ADDR_MAX];     /* DNS_T_A, DNS_T_AAAA */
	uint32_t      ttl;                    /* the least TTL among them */
};

/*
 * Is name (text, no trailing dot; one trailing dot is accepted) a host name
 * we can ask for: labels of 1..63 octets of letters, digits, '-', '_',
 * at most DNS_NAME_MAX octets?  Returns 1 or 0.
 */
int dns_name_ok(const char *name, size_t len);

/*
 * Write a standard query (RD set, one question, class IN) for name/qtype
 * with the given ID into buf.  Returns its length, or 0 if the name is not
 * dns_name_ok() or cap is too small (DNS_QUERY_MAX always suffices).
 */
size_t dns_query_build(unsigned char *buf, size_t cap, uint16_t id, const char *name,
                       uint16_t qtype);

/*
 * Read the answer msg[0..len) to the query (id, name, qtype).  On DNS_OK,
 * out holds the records of type qtype owned by name or by the end of the
 * CNAME chain that starts at name (at most DNS_CNAME_MAX hops); out is
 * cleared first in every case.  DNS_TRUNCATED is returned only for an
 * answer to our question.
 */
enum dns_status dns_response_parse(const unsigned char *msg, size_t len, uint16_t id,
                                   const char *name, uint16_t qtype, struct dns_answer *out);

/*
 * RFC 5321 5.1: order a->mx[] by preference, lowest first, shuffled within
 * equal preference by a generator seeded with seed (the caller passes
 * random bits; a test passes a constant).  Duplicates are removed.
 */
void dns_mx_sort(struct dns_answer *a, uint64_t seed);

/* RFC 7505: does the answer hold a null MX ("." as the exchange)?  Such a
 * domain accepts no mail at all. */
int dns_mx_is_null(const struct dns_answer *a);

/*
 * The "nameserver ADDR" lines of a resolv.conf text (other lines ignored,
 * as are addresses with a %scope) into out[0..max).  Returns how many.
 */
size_t dns_resolv_conf(const char *text, size_t len, struct ipaddr *out, size_t max);

#endif
