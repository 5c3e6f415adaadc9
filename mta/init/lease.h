/*
 * mta/init/lease.h -- the appliance's network beyond what moat.conf fixes:
 * a DHCPv4 lease (the client of policy/dhcp.h, driven here over a UDP
 * socket on port 68), the DNS servers of IPv6 router advertisements (RFC
 * 8106, policy/ndp.h; the kernel does SLAAC itself), and /etc/resolv.conf,
 * which the server's resolver reads when moat.conf names no dns-server.
 *
 * Process 1 polls the descriptors lease_fds() gives, with a timeout of at
 * most lease_next_ms(), and calls lease_step() after each poll.  Every
 * change is logged (event=dhcp, event=rdnss, event=dns) and applied with
 * rtnetlink: the lease's address with the lease's lifetime (the kernel
 * drops it if a renewal never comes), the router as the default route
 * unless net-gateway gives one.  Single instance, state in lease.c.
 */
#ifndef MOAT_MTA_INIT_LEASE_H
#define MOAT_MTA_INIT_LEASE_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/conf.h"

#define LEASE_NTP_MAX 3

/* What lease_step() found changed (a set of bits). */
enum {
	LEASE_BOUND = 1,        /* a lease was granted or renewed                 */
	LEASE_DNS_CHANGED = 2,  /* /etc/resolv.conf was rewritten with new servers */
	LEASE_NTP_CHANGED = 4   /* the lease's NTP servers changed                 */
};

/*
 * Begin on interface ifname (up, index ifindex): DHCP when c has no IPv4
 * net-address, the RDNSS listener always; writes /etc/resolv.conf from
 * c's dns-servers at once when it has some (then DHCP's and RDNSS's are
 * not used for it).  hostname goes to the DHCP server (option 12).
 * Returns 0, or -1 when nothing could be started (logged).
 */
int lease_start(const struct conf *c, const char *ifname, unsigned ifindex);

/* The descriptors to poll (POLLIN), at most 2; returns how many. */
size_t lease_fds(struct pollfd *pf, size_t cap);

/* Milliseconds (CLOCK_MONOTONIC) when lease_step() is next due even
 * without input, or -1. */
int64_t lease_next_ms(void);

/* Handle what the descriptors hold and the timers due at now; pf/n as
 * polled.  Returns LEASE_* bits. */
unsigned lease_step(const struct pollfd *pf, size_t n, int64_t now);

/* Is a DHCP lease held?  Is DHCP in use at all? */
int lease_bound(void);
int lease_dhcp_used(void);

/* The lease's NTP servers as dotted quads into out (at most max);
 * returns how many. */
size_t lease_ntp_servers(char out[][16], size_t max);

/* What /etc/resolv.conf holds now (written here), "" when nothing was. */
const char *lease_resolv(void);

/* At power-off: a DHCPRELEASE for the lease, and its address removed. */
void lease_release(void);

#endif
