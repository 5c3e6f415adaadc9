/*
 * mta/init/rtnetlink.h -- configure the appliance's network with rtnetlink: bring
 * a link up, add an address, add a default route.  What ip(8) would do;
 * the image has no ip(8), no shell, nothing but moat.
 *
 * Each call sends one request with NLM_F_ACK and waits for the kernel's
 * answer (bounded by a 5 s receive timeout).  Returns 0, or a negative
 * errno (the kernel's, e.g. -EEXIST, or the socket's).
 */
#ifndef MOAT_MTA_INIT_RTNETLINK_H
#define MOAT_MTA_INIT_RTNETLINK_H

#include <stdint.h>

#include "policy/net.h"

/* A NETLINK_ROUTE socket (close-on-exec), or -1 with errno set. */
int netcfg_open(void);

/* Set IFF_UP on ifindex. */
int netcfg_link_up(int nl, unsigned ifindex);

/* Add addr/prefix on ifindex.  IPv6 addresses skip duplicate address
 * detection (IFA_F_NODAD): a static address is the administrator's
 * choice, and the server binds to it at once. */
int netcfg_addr_add(int nl, unsigned ifindex, const struct ipaddr *addr, unsigned prefix);

/* Add the default route of gw's family via gw on ifindex. */
int netcfg_gateway_add(int nl, unsigned ifindex, const struct ipaddr *gw);

/* A DHCP lease's IPv4 address: added, or replaced with new lifetimes when
 * it is there (a renewal), valid for valid_s seconds (the kernel removes
 * it then if no renewal came first; 0xffffffff: forever). */
int netcfg_lease_addr(int nl, unsigned ifindex, const uint8_t addr[4], unsigned prefix,
                      uint32_t valid_s);

/* Remove addr/prefix from ifindex. */
int netcfg_addr_del(int nl, unsigned ifindex, const struct ipaddr *addr, unsigned prefix);

/* Remove the default route of gw's family via gw. */
int netcfg_gateway_del(int nl, unsigned ifindex, const struct ipaddr *gw);

/* A second NETLINK_ROUTE socket (non-blocking, close-on-exec) joined to
 * the group of ND user options (RTNLGRP_ND_USEROPT): the kernel sends the
 * router advertisements' RDNSS options there (policy/ndp.h).  -1 with
 * errno set. */
int netcfg_open_ndopts(void);

#endif
