/*
 * policy/dns.h -- DNS messages for the delivery path: build a query, read
 * an answer (RFC 1035), and the MX ordering rules of RFC 5321 5.1 and
 * RFC 7505.  Pure: no I/O, no allocation, no clock, no randomness (the
 * caller passes the query ID and a seed).  mta/net/resolver.c sends and receives.
 *
 * For authenticated TLS toward MX hosts (docs/tls-policy.md) it also
 * reads TXT records (_mta-sts, _smtp._tls) and TLSA records (RFC 6698),
 * builds queries that ask a validating resolver for DNSSEC (EDNS0 with
 * the DO bit, RFC 3225 and RFC 6891), and reports the AD bit of every
 * answer.  The AD bit is the resolver's word that it validated the answer
 * (RFC 4035 3.2.3); it is worth only as much as the path to that resolver
 * (`dns-dnssec trusted`).
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
#define DNS_T_TXT   16
#define DNS_T_AAAA  28
#define DNS_T_OPT   41     /* EDNS0 pseudo-record (RFC 6891) */
#define DNS_T_TLSA  52     /* RFC 6698 */

#define DNS_NAME_MAX  253    /* text form, no trailing dot */
#define DNS_UDP_MAX   512    /* a plain query's UDP limit: larger answers come by TCP */
#define DNS_EDNS_UDP  1232   /* the UDP size a DNS_Q_DNSSEC query announces (the
                                2020 DNS flag day's value: no IP fragments) */
#define DNS_MSG_MAX   65535  /* a TCP answer */
#define DNS_OPT_LEN   11     /* the OPT record a DNS_Q_DNSSEC query carries */
#define DNS_QUERY_MAX (12 + 255 + 4 + DNS_OPT_LEN)
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
	unsigned      ad;                     /* 1: the AD bit was set (DNS_OK, DNS_NODATA,
	                                         DNS_NXDOMAIN); see the top of this file */
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
 * The same with flags.  DNS_Q_DNSSEC adds an EDNS0 OPT record (RFC 6891:
 * UDP size DNS_EDNS_UDP, version 0) with the DO bit (RFC 3225), and sets
 * the AD bit in the header (RFC 6840 5.7), so that a validating resolver
 * says in its answer's AD bit whether it validated it.  An answer may
 * then be larger than DNS_UDP_MAX.  flags 0 is dns_query_build().
 */
#define DNS_Q_DNSSEC 0x1u
size_t dns_query_build_flags(unsigned char *buf, size_t cap, uint16_t id, const char *name,
                             uint16_t qtype, unsigned flags);

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
 * TLSA records (RFC 6698 2.1): the certificate usage, selector and
 * matching type as published (any value: policy is mta/net/dane.h's), and
 * the certificate association data.  Data longer than DNS_TLSA_DATA_MAX
 * (only a full certificate or key, matching type 0, comes near) is not
 * kept: toobig is set and len holds its real length, so the record still
 * counts as published and simply matches nothing.
 */
#define DNS_TLSA_MAX      8
#define DNS_TLSA_DATA_MAX 2048
struct dns_tlsa {
	uint8_t       usage;      /* 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE */
	uint8_t       selector;   /* 0 full certificate, 1 SubjectPublicKeyInfo */
	uint8_t       mtype;      /* 0 exact, 1 SHA-256, 2 SHA-512 */
	uint8_t       toobig;     /* data over DNS_TLSA_DATA_MAX: not kept */
	uint16_t      len;        /* data bytes (0 .. 65532) */
	unsigned char data[DNS_TLSA_DATA_MAX];
};

struct dns_tlsa_set {
	size_t          n;
	struct dns_tlsa r[DNS_TLSA_MAX];
	size_t          dropped;  /* well-formed records past DNS_TLSA_MAX, not kept */
	uint32_t        ttl;      /* the least TTL among them */
	unsigned        ad;       /* the AD bit, as in struct dns_answer */
};

/*
 * Read the answer to the TLSA query (id, name), as dns_response_parse()
 * does (same checks, the same CNAME chain).  On DNS_OK, out->r[0..n)
 * holds the records in the order of the answer and out->dropped counts
 * those past DNS_TLSA_MAX.  A TLSA record shorter than its three
 * parameter octets makes the whole answer DNS_BAD: nothing of it is
 * kept.  out is cleared first in every case.
 */
enum dns_status dns_tlsa_parse(const unsigned char *msg, size_t len, uint16_t id,
                               const char *name, struct dns_tlsa_set *out);

/*
 * TXT records (RFC 1035 3.3.14): each record's character-strings joined
 * into one text (RFC 7208 3.3, RFC 8461 3.1, RFC 8460 3), NUL-terminated
 * for convenience, len its length (a NUL inside is kept: the readers of
 * the text refuse it).  A record whose text is over DNS_TXT_LEN_MAX keeps
 * the first DNS_TXT_LEN_MAX bytes and sets truncated.
 */
#define DNS_TXT_MAX     8
#define DNS_TXT_LEN_MAX 1024
struct dns_txt {
	uint16_t len;
	uint8_t  truncated;
	char     text[DNS_TXT_LEN_MAX + 1];
};

struct dns_txt_set {
	size_t         n;
	struct dns_txt r[DNS_TXT_MAX];
	size_t         dropped;   /* records past DNS_TXT_MAX, not kept */
	uint32_t       ttl;
	unsigned       ad;
};

/*
 * Read the answer to the TXT query (id, name), as dns_tlsa_parse() does.
 * A record whose character-strings do not exactly fill its RDATA makes
 * the answer DNS_BAD.
 */
enum dns_status dns_txt_parse(const unsigned char *msg, size_t len, uint16_t id,
                              const char *name, struct dns_txt_set *out);

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
