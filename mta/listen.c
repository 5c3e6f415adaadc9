/* mta/listen.c -- see listen.h */
#include "listen.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int listen_open(const struct conf_listener *cl, char *err, size_t errcap)
{
	struct sockaddr_storage ss;
	socklen_t slen;
	char text[IP_TEXT_MAX];
	int fd, one = 1;

	memset(&ss, 0, sizeof ss);
	if (cl->addr.family == IP_V4) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(cl->port);
		memcpy(&sin->sin_addr, cl->addr.a, 4);
		slen = sizeof *sin;
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(cl->port);
		memcpy(&sin6->sin6_addr, cl->addr.a, 16);
		slen = sizeof *sin6;
	}
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
	snprintf(err, errcap, "listen %s%s%s:%u: %s", cl->addr.family == IP_V6 ? "[" : "", text,
	         cl->addr.family == IP_V6 ? "]" : "", cl->port, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

int listen_same(const struct conf_listener *a, const struct conf_listener *b)
{
	return a->port == b->port && ip_equal(&a->addr, &b->addr);
}
