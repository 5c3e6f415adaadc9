/*
 * policy/net.h -- IP addresses and CIDR networks as plain values.
 * Pure: no sockets, no I/O.  mta/ converts sockaddrs to struct ipaddr.
 */
#ifndef MOAT_POLICY_NET_H
#define MOAT_POLICY_NET_H

#include <stddef.h>
#include <stdint.h>

#define IP_V4 4
#define IP_V6 6
/* "[ffff:...:255.255.255.255]:65535" plus NUL fits */
#define IP_TEXT_MAX 64

struct ipaddr {
	uint8_t family;   /* IP_V4 or IP_V6 */
	uint8_t a[16];    /* network order; IPv4 in a[0..3] */
};

struct cidr {
	struct ipaddr net; /* host bits cleared */
	uint8_t prefix;    /* 0..32 or 0..128 */
};

/* Parse a literal IPv4 dotted quad or IPv6 text (no brackets, no zone).
 * Returns 0 or -1. */
int ip_parse(const char *s, size_t len, struct ipaddr *out);

/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d) becomes plain IPv4, so that
 * a dual-stack listener matches IPv4 relay networks. */
void ip_unmap(struct ipaddr *ip);

/* Write the canonical text (RFC 5952 for IPv6) into buf; returns length. */
size_t ip_format(const struct ipaddr *ip, char *buf, size_t cap);

int ip_equal(const struct ipaddr *a, const struct ipaddr *b);

/* "10.0.0.0/8", "2001:db8::/32", or a bare address (a /32 or /128).
 * Host bits set beyond the prefix are an error (a likely typo).
 * Returns 0 or -1. */
int cidr_parse(const char *s, size_t len, struct cidr *out);

/* Like cidr_parse(), but clears host bits instead of failing, so that an
 * error message can suggest the network meant.  Returns 0 (no host bits),
 * 1 (host bits set and cleared; *out holds the network) or -1 (not a CIDR).
 * Both functions store an IPv4-mapped network of prefix >= 96 as the IPv4
 * network it means ("::ffff:10.0.0.0/104" is 10.0.0.0/8), since clients
 * are matched after ip_unmap(). */
int cidr_parse_masked(const char *s, size_t len, struct cidr *out);

int cidr_match(const struct cidr *c, const struct ipaddr *ip);

size_t cidr_format(const struct cidr *c, char *buf, size_t cap);

/* "127.0.0.1:25", "[::1]:25", "*:25" (all IPv4), "[::]:25" (all IPv6: the
 * server sets IPV6_V6ONLY, so list both wildcards for both families).
 * Returns 0 or -1. */
int hostport_parse(const char *s, size_t len, struct ipaddr *ip, uint16_t *port);

#endif
