/*
 * policy/ndp.h -- DNS servers from IPv6 router advertisements (RFC 8106
 * RDNSS), as the kernel hands them to userspace.  The kernel does SLAAC
 * itself; the options it does not use it passes on as RTM_NEWNDUSEROPT
 * messages to the RTNLGRP_ND_USEROPT netlink group: a struct
 * nduseroptmsg (linux/rtnetlink.h, in host byte order) followed by the
 * router advertisement's options.  mta/init/ reads the socket; this reads
 * the bytes.  Pure, bounds-checked, hostile input (any host on the link
 * can send a router advertisement).
 */
#ifndef MOAT_POLICY_NDP_H
#define MOAT_POLICY_NDP_H

#include <stddef.h>
#include <stdint.h>

#define NDP_RDNSS_MAX 3

struct ndp_rdnss {
	int      ifindex;
	size_t   n;
	uint8_t  addr[NDP_RDNSS_MAX][16];
	uint32_t lifetime[NDP_RDNSS_MAX];   /* seconds; 0: stop using it now */
};

/*
 * The payload of one RTM_NEWNDUSEROPT message (after its nlmsghdr),
 * msg[0..len).  Returns 1 with the RDNSS addresses of every RDNSS option
 * (type 25) in *out, the first NDP_RDNSS_MAX kept, 0 when the message
 * holds no RDNSS option or is not from a router advertisement (ICMPv6
 * type 134, family AF_INET6), -1 when it is malformed (an option of
 * length 0 or running past the options, an RDNSS option of even length).
 */
int ndp_useropt_rdnss(const unsigned char *msg, size_t len, struct ndp_rdnss *out);

#endif
