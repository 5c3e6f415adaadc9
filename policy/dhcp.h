/*
 * policy/dhcp.h -- a DHCPv4 client (RFC 2131, options RFC 2132): its
 * packets and its state machine, with no I/O.  mta/init/dhcp.c owns the
 * socket and the clock and drives it, as BearSSL's engine is driven:
 *
 *     dhcp_start(c, mac, now, rnd)           INIT: the first DISCOVER is due
 *     r = dhcp_timer(c, now, rnd, pkt, cap)   when dhcp_next() is reached
 *     r = dhcp_input(c, now, rnd, msg, len, pkt, cap)  a datagram came
 *     r = dhcp_release(c, pkt, cap)           at power-off
 *
 * Each returns a set of DHCP_DO_* bits: SEND (pkt holds r.len bytes for
 * r.dest, broadcast or the server), BIND (c->lease is new or renewed:
 * configure it), UNBIND (the address must go: the lease expired or a NAK
 * came).  Times are milliseconds on the caller's monotonic clock; rnd is
 * fresh random bits from the caller (transaction IDs, the +-1 s of
 * retransmission jitter RFC 2131 4.1 asks for).
 *
 * The client asks for its replies to be broadcast (the BROADCAST flag, RFC
 * 1542 3.1.1), so that a socket bound to 0.0.0.0:68 on an interface with
 * no address yet hears them; while bound it renews by unicast to the
 * server (RENEWING, from T1) and then by broadcast to any (REBINDING, from
 * T2), as RFC 2131 4.4.5 says.
 *
 * The parser reads hostile bytes: every read is bounds-checked, options in
 * the file and sname fields are read only when option 52 (overload) says
 * so, a repeated option's values are joined (RFC 3396), and a reply counts
 * only when it is a BOOTREPLY for our transaction ID and hardware address.
 */
#ifndef MOAT_POLICY_DHCP_H
#define MOAT_POLICY_DHCP_H

#include <stddef.h>
#include <stdint.h>

#define DHCP_PKT_MAX   576   /* what we send; also the most we ask a server for */
#define DHCP_MSG_MAX   1500  /* the most we read */
#define DHCP_DNS_MAX   3
#define DHCP_NTP_MAX   3
#define DHCP_HOST_MAX  63

/* Message types (option 53). */
enum dhcp_type {
	DHCP_DISCOVER = 1, DHCP_OFFER, DHCP_REQUEST, DHCP_DECLINE, DHCP_ACK, DHCP_NAK,
	DHCP_RELEASE, DHCP_INFORM
};

/* What a server's reply says (only the options we use). */
struct dhcp_reply {
	uint8_t  type;               /* enum dhcp_type; 0 when option 53 is absent */
	uint8_t  yiaddr[4];          /* "your" address */
	uint8_t  server[4];          /* option 54, server identifier */
	uint8_t  mask[4];            /* option 1 */
	uint8_t  router[4];          /* option 3, the first router */
	uint8_t  dns[DHCP_DNS_MAX][4];   /* option 6 */
	uint8_t  ntp[DHCP_NTP_MAX][4];   /* option 42 */
	size_t   ndns, nntp;
	uint32_t lease_s, t1_s, t2_s;    /* options 51, 58, 59 (seconds) */
	unsigned has_server : 1, has_mask : 1, has_router : 1, has_lease : 1,
	         has_t1 : 1, has_t2 : 1;
};

/*
 * Read a BOOTP/DHCP message msg[0..len) into *out (cleared first).
 * Returns 0 when it is a BOOTREPLY (op 2) on Ethernet (htype 1, hlen 6)
 * for transaction xid and hardware address mac, with the magic cookie and
 * well-formed options ending in an end option or at the end of the
 * space; -1 otherwise.  A value of the wrong length (a 3-byte address) is
 * a malformed message: -1.
 */
int dhcp_parse(const unsigned char *msg, size_t len, uint32_t xid, const uint8_t mac[6],
               struct dhcp_reply *out);

/* What a client's message carries (dhcp_build). */
struct dhcp_msg {
	uint8_t  type;               /* DHCP_DISCOVER, DHCP_REQUEST or DHCP_RELEASE */
	uint32_t xid;
	uint16_t secs;               /* seconds since the client began */
	uint8_t  mac[6];
	uint8_t  ciaddr[4];          /* our address when RENEWING/REBINDING/RELEASE */
	uint8_t  requested[4];       /* option 50, when SELECTING (REQUEST after an offer) */
	uint8_t  server[4];          /* option 54, REQUEST after an offer and RELEASE */
	char     hostname[DHCP_HOST_MAX + 1];  /* option 12 when not "" */
	unsigned broadcast : 1;      /* the BROADCAST flag */
	unsigned has_requested : 1, has_server : 1;
};

/*
 * Write m as a DHCP message into buf (at least DHCP_PKT_MAX bytes; padded
 * to 300, the BOOTP minimum some servers insist on).  Asks for options 1,
 * 3, 6, 42, 51, 58, 59 and a 576-byte reply (option 57).  Returns the
 * length, or 0 when cap is too small.
 */
size_t dhcp_build(unsigned char *buf, size_t cap, const struct dhcp_msg *m);

/* ---------------------------------------------------------------- client */

enum dhcp_state {
	DHCP_S_INIT = 0,   /* nothing: a DISCOVER is due at next_ms          */
	DHCP_S_SELECTING,  /* DISCOVER sent, waiting for an OFFER            */
	DHCP_S_REQUESTING, /* REQUEST sent for an offer, waiting for ACK/NAK */
	DHCP_S_BOUND,      /* the lease holds; renewing begins at T1         */
	DHCP_S_RENEWING,   /* REQUEST unicast to our server, from T1         */
	DHCP_S_REBINDING   /* REQUEST broadcast, from T2 until the lease ends */
};

/* The lease in force (valid from BOUND through REBINDING). */
struct dhcp_lease {
	uint8_t  addr[4];
	uint8_t  prefix;             /* from the mask; 24 when the server gave none */
	uint8_t  server[4];
	uint8_t  router[4];
	uint8_t  dns[DHCP_DNS_MAX][4];
	uint8_t  ntp[DHCP_NTP_MAX][4];
	size_t   ndns, nntp;
	unsigned has_router : 1;
	uint32_t lease_s, t1_s, t2_s;  /* as used: T1 < T2 < lease, defaults 1/2 and 7/8 */
};

struct dhcp_client {
	enum dhcp_state state;
	uint8_t  mac[6];
	char     hostname[DHCP_HOST_MAX + 1];
	uint32_t xid;
	unsigned tries;              /* sends of the current message */
	int64_t  next_ms;            /* when dhcp_timer() is due; -1 never */
	int64_t  began_ms;           /* the start of this exchange (secs field) */
	int64_t  sent_ms;            /* the last message sent */
	int64_t  bound_ms;           /* when the lease was granted */
	uint8_t  offered[4];         /* SELECTING -> REQUESTING */
	uint8_t  offer_server[4];
	struct dhcp_lease lease;
};

/* What the caller must do (a set of bits) and where the packet goes. */
enum { DHCP_DO_SEND = 1, DHCP_DO_BIND = 2, DHCP_DO_UNBIND = 4 };
struct dhcp_result {
	unsigned actions;            /* DHCP_DO_* */
	size_t   len;                /* bytes of the packet when SEND */
	int      unicast;            /* SEND to the lease's server, else broadcast */
};

/* Begin in INIT with the first DISCOVER due at now.  hostname (may be
 * NULL or "") is sent as option 12. */
void dhcp_start(struct dhcp_client *c, const uint8_t mac[6], const char *hostname, int64_t now);

/* The time dhcp_timer() is next due, or -1. */
int64_t dhcp_next(const struct dhcp_client *c);

/* The timer: send or resend, move to RENEWING/REBINDING at T1/T2, drop the
 * lease at its end.  pkt must hold DHCP_PKT_MAX bytes. */
struct dhcp_result dhcp_timer(struct dhcp_client *c, int64_t now, uint32_t rnd,
                              unsigned char *pkt, size_t cap);

/* A datagram from port 67: ignored unless it is a reply to our current
 * message (OFFER in SELECTING; ACK or NAK in REQUESTING, RENEWING,
 * REBINDING). */
struct dhcp_result dhcp_input(struct dhcp_client *c, int64_t now, uint32_t rnd,
                              const unsigned char *msg, size_t len,
                              unsigned char *pkt, size_t cap);

/* A RELEASE for the lease (unicast to its server) when one is held;
 * back to INIT with no timer.  actions is 0 when there was no lease. */
struct dhcp_result dhcp_release(struct dhcp_client *c, unsigned char *pkt, size_t cap);

/* "selecting", "bound", ... for logs. */
const char *dhcp_state_name(enum dhcp_state s);

#endif
