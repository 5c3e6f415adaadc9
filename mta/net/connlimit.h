/*
 * mta/net/connlimit.h -- how many connections each client has open, for
 * max-connections-per-client.  A client is an IPv4 address, or an IPv6
 * /64: one IPv6 host has a whole /64 to connect from.
 *
 * A chained hash of the open connections.  The caller embeds a struct
 * connlimit_node in each connection and owns it and the table; nothing
 * here allocates.  Counting walks one chain: the connections of that
 * client and the few others that hash alike.
 */
#ifndef MOAT_MTA_NET_CONNLIMIT_H
#define MOAT_MTA_NET_CONNLIMIT_H

#include "policy/net.h"

#define CONNLIMIT_BUCKETS 4096   /* a power of two */

struct connlimit_node {
	struct ipaddr           client;   /* the address, IPv6 cut to its /64 */
	struct connlimit_node  *next;
	struct connlimit_node **pprev;    /* NULL when not in a table */
};

struct connlimit {
	struct connlimit_node *bucket[CONNLIMIT_BUCKETS];
};

/* An empty table (or memset it to zero). */
void connlimit_init(struct connlimit *t);

/* Open connections of addr's client. */
unsigned connlimit_count(const struct connlimit *t, const struct ipaddr *addr);

/* Count n, a new connection from addr; n must not be in a table. */
void connlimit_add(struct connlimit *t, struct connlimit_node *n, const struct ipaddr *addr);

/* Stop counting n; does nothing if n is in no table. */
void connlimit_del(struct connlimit_node *n);

#endif
