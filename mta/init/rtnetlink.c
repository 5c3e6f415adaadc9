/* mta/init/rtnetlink.c -- rtnetlink requests for the appliance; see netcfg.h */
#include "mta/init/rtnetlink.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#define NL_ALIGN(n) (((n) + 3u) & ~(size_t)3u)

/* One request: header, family message, attributes; 4-byte aligned. */
struct req {
	union {
		struct nlmsghdr h;
		unsigned char   b[512];
	} u;
	size_t len;
};

static uint32_t nl_seq;

static void req_init(struct req *r, uint16_t type, uint16_t flags, const void *body, size_t blen)
{
	memset(r, 0, sizeof *r);
	r->len = NL_ALIGN(sizeof(struct nlmsghdr));
	memcpy(r->u.b + r->len, body, blen);
	r->len += NL_ALIGN(blen);
	r->u.h.nlmsg_type = type;
	r->u.h.nlmsg_flags = (uint16_t)(NLM_F_REQUEST | NLM_F_ACK | flags);
	r->u.h.nlmsg_seq = ++nl_seq;
}

static void req_attr(struct req *r, uint16_t type, const void *data, size_t dlen)
{
	struct rtattr a;

	a.rta_type = type;
	a.rta_len = (unsigned short)(NL_ALIGN(sizeof a) + dlen);
	memcpy(r->u.b + r->len, &a, sizeof a);
	memcpy(r->u.b + r->len + NL_ALIGN(sizeof a), data, dlen);
	r->len += NL_ALIGN(a.rta_len);
}

/* Send r and wait for its ACK (an NLMSG_ERROR carrying 0 or -errno). */
static int req_send(int nl, struct req *r)
{
	struct sockaddr_nl kernel;
	unsigned char buf[4096];

	r->u.h.nlmsg_len = (uint32_t)r->len;
	memset(&kernel, 0, sizeof kernel);
	kernel.nl_family = AF_NETLINK;
	if (sendto(nl, r->u.b, r->len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0)
		return -errno;
	for (;;) {
		ssize_t n = recv(nl, buf, sizeof buf, 0);
		size_t off = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		while ((size_t)n - off >= sizeof(struct nlmsghdr)) {
			struct nlmsghdr h;
			struct nlmsgerr e;

			memcpy(&h, buf + off, sizeof h);
			if (h.nlmsg_len < sizeof h || h.nlmsg_len > (size_t)n - off)
				return -EPROTO;
			if (h.nlmsg_type == NLMSG_ERROR && h.nlmsg_seq == r->u.h.nlmsg_seq) {
				if (h.nlmsg_len < NL_ALIGN(sizeof h) + sizeof e)
					return -EPROTO;
				memcpy(&e, buf + off + NL_ALIGN(sizeof h), sizeof e);
				return e.error;
			}
			off += NL_ALIGN(h.nlmsg_len);
		}
	}
}

int netcfg_open(void)
{
	struct sockaddr_nl me;
	struct timeval tv = { 5, 0 };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);

	if (fd < 0)
		return -1;
	memset(&me, 0, sizeof me);
	me.nl_family = AF_NETLINK;
	if (bind(fd, (struct sockaddr *)&me, sizeof me) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int netcfg_link_up(int nl, unsigned ifindex)
{
	struct ifinfomsg ifi;
	struct req r;

	memset(&ifi, 0, sizeof ifi);
	ifi.ifi_family = AF_UNSPEC;
	ifi.ifi_index = (int)ifindex;
	ifi.ifi_flags = IFF_UP;
	ifi.ifi_change = IFF_UP;
	req_init(&r, RTM_NEWLINK, 0, &ifi, sizeof ifi);
	return req_send(nl, &r);
}

static size_t ip_len(const struct ipaddr *a)
{
	return a->family == IP_V4 ? 4 : 16;
}

static unsigned char ip_af(const struct ipaddr *a)
{
	return a->family == IP_V4 ? AF_INET : AF_INET6;
}

int netcfg_addr_add(int nl, unsigned ifindex, const struct ipaddr *addr, unsigned prefix)
{
	struct ifaddrmsg ifa;
	struct req r;
	uint32_t flags = addr->family == IP_V6 ? IFA_F_NODAD : 0;

	memset(&ifa, 0, sizeof ifa);
	ifa.ifa_family = ip_af(addr);
	ifa.ifa_prefixlen = (unsigned char)prefix;
	ifa.ifa_flags = (unsigned char)flags;
	ifa.ifa_scope = RT_SCOPE_UNIVERSE;
	ifa.ifa_index = ifindex;
	req_init(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof ifa);
	req_attr(&r, IFA_LOCAL, addr->a, ip_len(addr));
	req_attr(&r, IFA_ADDRESS, addr->a, ip_len(addr));
	if (addr->family == IP_V4 && prefix < 31) {
		/* The broadcast address, as ip(8) "brd +" computes it. */
		unsigned char brd[4];
		memcpy(brd, addr->a, 4);
		for (unsigned bit = prefix; bit < 32; bit++)
			brd[bit / 8] = (unsigned char)(brd[bit / 8] | (0x80u >> (bit % 8)));
		req_attr(&r, IFA_BROADCAST, brd, 4);
	}
	return req_send(nl, &r);
}

int netcfg_gateway_add(int nl, unsigned ifindex, const struct ipaddr *gw)
{
	struct rtmsg rt;
	struct req r;
	uint32_t oif = ifindex;

	memset(&rt, 0, sizeof rt);
	rt.rtm_family = ip_af(gw);
	rt.rtm_dst_len = 0;
	rt.rtm_table = RT_TABLE_MAIN;
	rt.rtm_protocol = RTPROT_STATIC;
	rt.rtm_scope = RT_SCOPE_UNIVERSE;
	rt.rtm_type = RTN_UNICAST;
	req_init(&r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &rt, sizeof rt);
	req_attr(&r, RTA_GATEWAY, gw->a, ip_len(gw));
	req_attr(&r, RTA_OIF, &oif, sizeof oif);
	return req_send(nl, &r);
}

int netcfg_lease_addr(int nl, unsigned ifindex, const uint8_t addr[4], unsigned prefix,
                      uint32_t valid_s)
{
	struct ifaddrmsg ifa;
	struct ifa_cacheinfo ci;
	struct ipaddr a;
	struct req r;

	memset(&a, 0, sizeof a);
	a.family = IP_V4;
	memcpy(a.a, addr, 4);
	memset(&ifa, 0, sizeof ifa);
	ifa.ifa_family = AF_INET;
	ifa.ifa_prefixlen = (unsigned char)prefix;
	ifa.ifa_scope = RT_SCOPE_UNIVERSE;
	ifa.ifa_index = ifindex;
	memset(&ci, 0, sizeof ci);
	ci.ifa_valid = valid_s;
	ci.ifa_prefered = valid_s;
	req_init(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, &ifa, sizeof ifa);
	req_attr(&r, IFA_LOCAL, a.a, 4);
	req_attr(&r, IFA_ADDRESS, a.a, 4);
	if (prefix < 31) {
		unsigned char brd[4];
		memcpy(brd, a.a, 4);
		for (unsigned bit = prefix; bit < 32; bit++)
			brd[bit / 8] = (unsigned char)(brd[bit / 8] | (0x80u >> (bit % 8)));
		req_attr(&r, IFA_BROADCAST, brd, 4);
	}
	req_attr(&r, IFA_CACHEINFO, &ci, sizeof ci);
	return req_send(nl, &r);
}

int netcfg_addr_del(int nl, unsigned ifindex, const struct ipaddr *addr, unsigned prefix)
{
	struct ifaddrmsg ifa;
	struct req r;

	memset(&ifa, 0, sizeof ifa);
	ifa.ifa_family = ip_af(addr);
	ifa.ifa_prefixlen = (unsigned char)prefix;
	ifa.ifa_index = ifindex;
	req_init(&r, RTM_DELADDR, 0, &ifa, sizeof ifa);
	req_attr(&r, IFA_LOCAL, addr->a, ip_len(addr));
	req_attr(&r, IFA_ADDRESS, addr->a, ip_len(addr));
	return req_send(nl, &r);
}

int netcfg_gateway_del(int nl, unsigned ifindex, const struct ipaddr *gw)
{
	struct rtmsg rt;
	struct req r;
	uint32_t oif = ifindex;

	memset(&rt, 0, sizeof rt);
	rt.rtm_family = ip_af(gw);
	rt.rtm_table = RT_TABLE_MAIN;
	rt.rtm_scope = RT_SCOPE_NOWHERE;
	req_init(&r, RTM_DELROUTE, 0, &rt, sizeof rt);
	req_attr(&r, RTA_GATEWAY, gw->a, ip_len(gw));
	req_attr(&r, RTA_OIF, &oif, sizeof oif);
	return req_send(nl, &r);
}

int netcfg_open_ndopts(void)
{
	struct sockaddr_nl me;
	int group = RTNLGRP_ND_USEROPT;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);

	if (fd < 0)
		return -1;
	memset(&me, 0, sizeof me);
	me.nl_family = AF_NETLINK;
	if (bind(fd, (struct sockaddr *)&me, sizeof me) < 0 ||
	    setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}
