/* mta/net/sockaddr.c -- struct ipaddr <-> sockaddr; see sockaddr.h */
#include "mta/net/sockaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

socklen_t sockaddr_from_ip(const struct ipaddr *ip, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	if (ip->family == IP_V4) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, ip->a, 4);
		return sizeof *sin;
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		memcpy(&sin6->sin6_addr, ip->a, 16);
		return sizeof *sin6;
	}
}

int sockaddr_to_ip(const struct sockaddr *sa, struct ipaddr *ip)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;

		memset(ip, 0, sizeof *ip);
		ip->family = IP_V4;
		memcpy(ip->a, &sin->sin_addr, 4);
		return ntohs(sin->sin_port);
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;

		memset(ip, 0, sizeof *ip);
		ip->family = IP_V6;
		memcpy(ip->a, &sin6->sin6_addr, 16);
		ip_unmap(ip);
		return ntohs(sin6->sin6_port);
	}
	return -1;
}
