/* mta/net/listen.c -- see listen.h */
#include "mta/net/listen.h"

#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mta/net/sockaddr.h"

/* The supervisor's sockets, inherited by the smtp role at fork. */
#define KEPT_MAX (CONF_MAX_LISTENERS * 2 + 2)
static struct {
	struct conf_listener cl;
	int fd;
	int used;        /* by the config being applied (listen_keep_only) */
} kept[KEPT_MAX];
static size_t nkept;

static int open_new(const struct conf_listener *cl, char *err, size_t errcap);

int listen_open(const struct conf_listener *cl, char *err, size_t errcap)
{
	for (size_t i = 0; i < nkept; i++) {
		if (listen_same(&kept[i].cl, cl)) {
			int fd = fcntl(kept[i].fd, F_DUPFD_CLOEXEC, 3);

			if (fd < 0)
				snprintf(err, errcap, "listen: %s", strerror(errno));
			return fd;
		}
	}
	return open_new(cl, err, errcap);
}

int listen_keep(const struct conf_listener *cl, char *err, size_t errcap)
{
	int fd;

	for (size_t i = 0; i < nkept; i++) {
		if (listen_same(&kept[i].cl, cl)) {
			kept[i].used = 1;
			return 0;
		}
	}
	if (nkept == KEPT_MAX) {
		snprintf(err, errcap, "listen: too many sockets");
		return -1;
	}
	if ((fd = open_new(cl, err, errcap)) < 0)
		return -1;
	kept[nkept].cl = *cl;
	kept[nkept].fd = fd;
	kept[nkept].used = 1;
	nkept++;
	return 0;
}

void listen_keep_begin(void)
{
	for (size_t i = 0; i < nkept; i++)
		kept[i].used = 0;
}

void listen_keep_end(int commit)
{
	size_t i = 0;

	while (i < nkept) {
		/* commit: close what the new config no longer has; else keep
		 * everything (what was opened for a refused config stays open
		 * until the next reload: harmless, it is never served). */
		if (commit && !kept[i].used) {
			close(kept[i].fd);
			kept[i] = kept[--nkept];
			continue;
		}
		i++;
	}
}

size_t listen_kept_fds(int *out, size_t cap)
{
	size_t i;

	for (i = 0; i < nkept && i < cap; i++)
		out[i] = kept[i].fd;
	return i;
}

void listen_forget_kept(void)
{
	nkept = 0;
}

void listen_close_kept(void)
{
	for (size_t i = 0; i < nkept; i++)
		close(kept[i].fd);
	nkept = 0;
}

static int open_new(const struct conf_listener *cl, char *err, size_t errcap)
{
	struct sockaddr_storage ss;
	socklen_t slen;
	char text[IP_TEXT_MAX];
	int fd, one = 1, e;

	slen = sockaddr_from_ip(&cl->addr, cl->port, &ss);
	ip_format(&cl->addr, text, sizeof text);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	/* IPv6 listeners take IPv6 only: list 0.0.0.0 and :: both for both. */
	if (ss.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&ss, slen) < 0 || listen(fd, 1024) < 0)
		goto fail;
	return fd;
fail:
	e = errno;
	snprintf(err, errcap, "listen %s%s%s:%u: %s", cl->addr.family == IP_V6 ? "[" : "", text,
	         cl->addr.family == IP_V6 ? "]" : "", cl->port, strerror(e));
	if (fd >= 0)
		close(fd);
	errno = e;   /* the caller may wait for EADDRINUSE to pass */
	return -1;
}

int listen_same(const struct conf_listener *a, const struct conf_listener *b)
{
	return a->port == b->port && ip_equal(&a->addr, &b->addr);
}

size_t listen_local_addrs(struct ipaddr *out, size_t max)
{
	struct ifaddrs *all, *i;
	size_t n = 0;

	if (getifaddrs(&all) != 0)
		return 0;
	for (i = all; i != NULL && n < max; i = i->ifa_next) {
		const struct sockaddr *sa = i->ifa_addr;

		if (sa == NULL)
			continue;
		if (sockaddr_to_ip(sa, &out[n]) >= 0)
			n++;
	}
	freeifaddrs(all);
	return n;
}
