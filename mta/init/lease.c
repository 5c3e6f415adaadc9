/* mta/init/lease.c -- DHCPv4, RDNSS and resolv.conf for process 1; see lease.h */
#include "mta/init/lease.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "mta/init/devices.h"
#include "mta/init/rtnetlink.h"
#include "mta/net/log.h"
#include "policy/dhcp.h"
#include "policy/ndp.h"

#define RESOLV_CONF   "/etc/resolv.conf"
#define RDNSS_MAX     3
#define DNS_LINES_MAX 3      /* resolv.conf: the C library reads three */

static struct {
	char     ifname[IF_NAMESIZE + 1];
	unsigned ifindex;
	int      dhcp_fd;             /* UDP, 0.0.0.0:68 on the interface; -1 without DHCP */
	int      nd_fd;               /* RTNLGRP_ND_USEROPT; -1 */
	int      nl;                  /* rtnetlink requests */
	struct dhcp_client dhcp;
	struct dhcp_lease applied;    /* what is configured now */
	int      have_applied;
	int      static_gateway4;     /* net-gateway has an IPv4 router: ours is not used */
	int      conf_dns;            /* dns-server given: resolv.conf is the config's */
	uint8_t  rdnss[RDNSS_MAX][16];
	int64_t  rdnss_until[RDNSS_MAX];
	size_t   nrdnss;
	char     resolv[512];         /* what resolv.conf holds now */
} ls = { .dhcp_fd = -1, .nd_fd = -1, .nl = -1 };

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t rnd32(void)
{
	uint32_t r = 0;

	if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
		r = (uint32_t)mono_ms() * 2654435761u;
	return r;
}

/* Replace resolv.conf with text when it differs (write, then rename).
 * Returns 1 when it changed. */
static int write_resolv(const char *text)
{
	char tmp[] = RESOLV_CONF ".new";
	size_t len = strlen(text);
	int fd;

	if (strcmp(text, ls.resolv) == 0)
		return 0;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len || close(fd) != 0 || rename(tmp, RESOLV_CONF) != 0) {
		log_warn("msg=\"cannot write " RESOLV_CONF ": %s\"", strerror(errno));
		return 0;
	}
	snprintf(ls.resolv, sizeof ls.resolv, "%s", text);
	return 1;
}

/* resolv.conf from the lease's DNS servers, then the routers' (RDNSS);
 * logs event=dns.  Returns LEASE_DNS_CHANGED or 0. */
static unsigned dns_update(void)
{
	char text[512], list[256], a[INET6_ADDRSTRLEN];
	size_t o = 0, lo = 0, lines = 0;

	if (ls.conf_dns)
		return 0;
	text[0] = list[0] = '\0';
	for (size_t k = 0; ls.have_applied && k < ls.applied.ndns && lines < DNS_LINES_MAX; k++, lines++) {
		inet_ntop(AF_INET, ls.applied.dns[k], a, sizeof a);
		o += (size_t)snprintf(text + o, sizeof text - o, "nameserver %s\n", a);
		lo += (size_t)snprintf(list + lo, sizeof list - lo, "%s%s", lo ? "," : "", a);
	}
	for (size_t k = 0; k < ls.nrdnss && lines < DNS_LINES_MAX; k++, lines++) {
		inet_ntop(AF_INET6, ls.rdnss[k], a, sizeof a);
		o += (size_t)snprintf(text + o, sizeof text - o, "nameserver %s\n", a);
		lo += (size_t)snprintf(list + lo, sizeof list - lo, "%s%s", lo ? "," : "", a);
	}
	if (!write_resolv(text))
		return 0;
	log_event("dns", "servers=%s from=%s", lines ? list : "none",
	          ls.have_applied && ls.applied.ndns ? (ls.nrdnss ? "dhcp,rdnss" : "dhcp")
	                                             : (ls.nrdnss ? "rdnss" : "none"));
	return LEASE_DNS_CHANGED;
}

/* resolv.conf from the config's dns-server lines (those on port 53: the
 * file has no ports), for what in process 1 and the server resolves
 * through the C library (the remote log's server, NTP servers). */
static void dns_from_conf(const struct conf *c)
{
	char text[512], a[INET6_ADDRSTRLEN];
	size_t o = 0;

	text[0] = '\0';
	for (size_t k = 0; k < c->ndns_servers; k++) {
		if (c->dns_servers[k].port != 53)
			continue;
		ip_format(&c->dns_servers[k].addr, a, sizeof a);
		o += (size_t)snprintf(text + o, sizeof text - o, "nameserver %s\n", a);
	}
	(void)write_resolv(text);
}

static void fmt4(const uint8_t a[4], char *out, size_t cap)
{
	inet_ntop(AF_INET, a, out, (socklen_t)cap);
}

static void gateway(const uint8_t r[4], int add)
{
	struct ipaddr gw;
	char text[16];
	int e;

	memset(&gw, 0, sizeof gw);
	gw.family = IP_V4;
	memcpy(gw.a, r, 4);
	fmt4(r, text, sizeof text);
	e = add ? netcfg_gateway_add(ls.nl, ls.ifindex, &gw) : netcfg_gateway_del(ls.nl, ls.ifindex, &gw);
	if (e != 0 && e != -EEXIST && e != -ESRCH)
		log_warn("msg=\"cannot %s the default route via %s: %s\"", add ? "add" : "remove", text,
		         strerror(-e));
	else if (add)
		log_event("route", "default=via gateway=%s interface=%s from=dhcp", text, ls.ifname);
}

/* Take the address and router off the interface. */
static void unapply(void)
{
	struct ipaddr a;

	if (!ls.have_applied)
		return;
	if (ls.applied.has_router && !ls.static_gateway4)
		gateway(ls.applied.router, 0);
	memset(&a, 0, sizeof a);
	a.family = IP_V4;
	memcpy(a.a, ls.applied.addr, 4);
	(void)netcfg_addr_del(ls.nl, ls.ifindex, &a, ls.applied.prefix);
	ls.have_applied = 0;
}

/* The lease in ls.dhcp.lease onto the interface. */
static unsigned apply(void)
{
	const struct dhcp_lease *l = &ls.dhcp.lease;
	char addr[16], server[16], router[16] = "none";
	unsigned changed = LEASE_BOUND;
	int renewal = ls.have_applied && memcmp(ls.applied.addr, l->addr, 4) == 0 &&
	              ls.applied.prefix == l->prefix;
	int e;

	if (ls.have_applied && !renewal)
		unapply();
	e = netcfg_lease_addr(ls.nl, ls.ifindex, l->addr, l->prefix, l->lease_s);
	fmt4(l->addr, addr, sizeof addr);
	fmt4(l->server, server, sizeof server);
	if (e != 0)
		log_warn("msg=\"cannot add the leased address %s/%u: %s\"", addr, l->prefix, strerror(-e));
	else if (!renewal)
		initdev_arp_announce(ls.ifname, ls.ifindex, l->addr);
	if (l->has_router)
		fmt4(l->router, router, sizeof router);
	if (!ls.static_gateway4 && l->has_router &&
	    (!renewal || !ls.applied.has_router || memcmp(ls.applied.router, l->router, 4) != 0)) {
		if (renewal && ls.applied.has_router)
			gateway(ls.applied.router, 0);
		gateway(l->router, 1);
	}
	if (!ls.have_applied || ls.applied.nntp != l->nntp ||
	    memcmp(ls.applied.ntp, l->ntp, sizeof l->ntp) != 0)
		changed |= LEASE_NTP_CHANGED;
	log_event("dhcp", "state=%s interface=%s address=%s/%u server=%s router=%s lease=%us renew=%us",
	          renewal ? "renewed" : "bound", ls.ifname, addr, l->prefix, server, router,
	          l->lease_s, l->t1_s);
	ls.applied = *l;
	ls.have_applied = 1;
	return changed | dns_update();
}

static void dhcp_send(const struct dhcp_result *r, const unsigned char *pkt)
{
	struct sockaddr_in to;

	memset(&to, 0, sizeof to);
	to.sin_family = AF_INET;
	to.sin_port = htons(67);
	if (r->unicast)
		memcpy(&to.sin_addr, ls.dhcp.lease.server, 4);
	else
		to.sin_addr.s_addr = htonl(INADDR_BROADCAST);
	if (sendto(ls.dhcp_fd, pkt, r->len, 0, (struct sockaddr *)&to, sizeof to) < 0)
		log_debug("msg=\"dhcp send: %s\"", strerror(errno));
}

/* What the client asked for: send, bind, unbind. */
static unsigned dhcp_act(const struct dhcp_result *r, const unsigned char *pkt, enum dhcp_state before)
{
	unsigned changed = 0;

	if (r->actions & DHCP_DO_SEND)
		dhcp_send(r, pkt);
	if (r->actions & DHCP_DO_UNBIND) {
		log_warn("msg=\"dhcp: the lease on %s ended (%s): address removed, asking again\"",
		         ls.ifname, before == DHCP_S_REBINDING ? "expired" : "refused by the server");
		unapply();
		changed |= dns_update();
	}
	if (r->actions & DHCP_DO_BIND)
		changed |= apply();
	if (before != ls.dhcp.state && ls.dhcp.state == DHCP_S_SELECTING && before == DHCP_S_INIT)
		log_event("dhcp", "state=selecting interface=%s", ls.ifname);
	return changed;
}

static int dhcp_socket(void)
{
	struct sockaddr_in me;
	int one = 1, fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	memset(&me, 0, sizeof me);
	me.sin_family = AF_INET;
	me.sin_port = htons(68);
	/* Bound to the interface: broadcasts go out there, with source
	 * 0.0.0.0 while it has no address, and only its replies come in. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ls.ifname, (socklen_t)strlen(ls.ifname)) != 0 ||
	    bind(fd, (struct sockaddr *)&me, sizeof me) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int lease_start(const struct conf *c, const char *ifname, unsigned ifindex)
{
	uint8_t mac[6];
	int v4 = 0;

	snprintf(ls.ifname, sizeof ls.ifname, "%s", ifname);
	ls.ifindex = ifindex;
	for (size_t k = 0; k < c->nnet_addrs; k++)
		v4 |= c->net_addrs[k].addr.family == IP_V4;
	for (size_t k = 0; k < c->nnet_gateways; k++)
		ls.static_gateway4 |= c->net_gateways[k].family == IP_V4;
	ls.conf_dns = c->ndns_servers > 0;
	if (ls.conf_dns)
		dns_from_conf(c);
	if ((ls.nl = netcfg_open()) < 0) {
		log_warn("msg=\"rtnetlink: %s\"", strerror(errno));
		return -1;
	}
	if ((ls.nd_fd = netcfg_open_ndopts()) < 0)
		log_warn("msg=\"no RDNSS: %s\"", strerror(errno));
	if (v4)
		return 0;   /* a static IPv4 address wins: no DHCP */
	if (initdev_mac(ifname, mac) != 0) {
		log_warn("msg=\"dhcp: no hardware address for %s\"", ifname);
		return -1;
	}
	if ((ls.dhcp_fd = dhcp_socket()) < 0) {
		log_warn("msg=\"dhcp: socket on %s: %s\"", ifname, strerror(errno));
		return -1;
	}
	dhcp_start(&ls.dhcp, mac, c->hostname, mono_ms());
	return 0;
}

size_t lease_fds(struct pollfd *pf, size_t cap)
{
	size_t n = 0;

	if (ls.dhcp_fd >= 0 && n < cap)
		pf[n++] = (struct pollfd){ ls.dhcp_fd, POLLIN, 0 };
	if (ls.nd_fd >= 0 && n < cap)
		pf[n++] = (struct pollfd){ ls.nd_fd, POLLIN, 0 };
	return n;
}

int64_t lease_next_ms(void)
{
	int64_t next = ls.dhcp_fd >= 0 ? dhcp_next(&ls.dhcp) : -1;

	for (size_t k = 0; k < ls.nrdnss; k++)
		if (ls.rdnss_until[k] >= 0 && (next < 0 || ls.rdnss_until[k] < next))
			next = ls.rdnss_until[k];
	return next;
}

/* RDNSS servers from one router advertisement's options: added, their
 * lifetimes renewed, or (lifetime 0) removed. */
static unsigned rdnss_take(const struct ndp_rdnss *r, int64_t now)
{
	int changed = 0;

	for (size_t k = 0; k < r->n; k++) {
		size_t i;
		for (i = 0; i < ls.nrdnss; i++)
			if (memcmp(ls.rdnss[i], r->addr[k], 16) == 0)
				break;
		if (r->lifetime[k] == 0) {
			if (i < ls.nrdnss) {
				ls.rdnss_until[i] = now;   /* expires at the next step */
				changed = 1;
			}
			continue;
		}
		if (i == ls.nrdnss) {
			if (ls.nrdnss == RDNSS_MAX)
				continue;
			memcpy(ls.rdnss[ls.nrdnss++], r->addr[k], 16);
			changed = 1;
		}
		ls.rdnss_until[i] = r->lifetime[k] == 0xffffffffu ? -1 : now + (int64_t)r->lifetime[k] * 1000;
	}
	if (changed) {
		char a[INET6_ADDRSTRLEN];
		inet_ntop(AF_INET6, r->addr[0], a, sizeof a);
		log_event("rdnss", "interface=%s servers=%zu first=%s lifetime=%us", ls.ifname, r->n, a,
		          r->lifetime[0]);
	}
	return changed ? 1 : 0;
}

static unsigned nd_read(int64_t now)
{
	unsigned char buf[8192];
	unsigned changed = 0;
	ssize_t n;

	while ((n = recv(ls.nd_fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) {
		size_t off = 0;
		while ((size_t)n - off >= sizeof(struct nlmsghdr)) {
			struct nlmsghdr h;
			struct ndp_rdnss r;
			memcpy(&h, buf + off, sizeof h);
			if (h.nlmsg_len < sizeof h || h.nlmsg_len > (size_t)n - off)
				break;
			if (h.nlmsg_type == RTM_NEWNDUSEROPT &&
			    ndp_useropt_rdnss(buf + off + NLMSG_HDRLEN, h.nlmsg_len - NLMSG_HDRLEN, &r) == 1 &&
			    (unsigned)r.ifindex == ls.ifindex)
				changed |= rdnss_take(&r, now);
			off += NLMSG_ALIGN(h.nlmsg_len);
		}
	}
	return changed;
}

static unsigned rdnss_expire(int64_t now)
{
	unsigned changed = 0;

	for (size_t k = 0; k < ls.nrdnss;) {
		if (ls.rdnss_until[k] >= 0 && ls.rdnss_until[k] <= now) {
			memmove(ls.rdnss[k], ls.rdnss[k + 1], (ls.nrdnss - k - 1) * 16);
			memmove(&ls.rdnss_until[k], &ls.rdnss_until[k + 1],
			        (ls.nrdnss - k - 1) * sizeof ls.rdnss_until[0]);
			ls.nrdnss--;
			changed = 1;
			continue;
		}
		k++;
	}
	return changed;
}

unsigned lease_step(const struct pollfd *pf, size_t n, int64_t now)
{
	unsigned char pkt[DHCP_PKT_MAX], msg[DHCP_MSG_MAX];
	unsigned changed = 0, rd = 0;
	struct dhcp_result r;
	enum dhcp_state before;

	for (size_t k = 0; k < n; k++) {
		if (!(pf[k].revents & POLLIN))
			continue;
		if (pf[k].fd == ls.nd_fd) {
			rd |= nd_read(now);
		} else if (pf[k].fd == ls.dhcp_fd) {
			ssize_t got;
			while ((got = recv(ls.dhcp_fd, msg, sizeof msg, MSG_DONTWAIT)) > 0) {
				before = ls.dhcp.state;
				r = dhcp_input(&ls.dhcp, now, rnd32(), msg, (size_t)got, pkt, sizeof pkt);
				changed |= dhcp_act(&r, pkt, before);
			}
		}
	}
	if (ls.dhcp_fd >= 0 && dhcp_next(&ls.dhcp) >= 0 && now >= dhcp_next(&ls.dhcp)) {
		before = ls.dhcp.state;
		r = dhcp_timer(&ls.dhcp, now, rnd32(), pkt, sizeof pkt);
		changed |= dhcp_act(&r, pkt, before);
	}
	rd |= rdnss_expire(now);
	if (rd)
		changed |= dns_update();
	return changed;
}

int lease_bound(void)
{
	return ls.have_applied;
}

int lease_dhcp_used(void)
{
	return ls.dhcp_fd >= 0;
}

size_t lease_ntp_servers(char out[][16], size_t max)
{
	size_t n = 0;

	for (size_t k = 0; ls.have_applied && k < ls.applied.nntp && n < max; k++)
		fmt4(ls.applied.ntp[k], out[n++], 16);
	return n;
}

const char *lease_resolv(void)
{
	return ls.resolv;
}

void lease_release(void)
{
	unsigned char pkt[DHCP_PKT_MAX];
	struct dhcp_result r;

	if (ls.dhcp_fd < 0 || !ls.have_applied)
		return;
	r = dhcp_release(&ls.dhcp, pkt, sizeof pkt);
	if (r.actions & DHCP_DO_SEND)
		dhcp_send(&r, pkt);
	log_event("dhcp", "state=released interface=%s", ls.ifname);
	unapply();
}
