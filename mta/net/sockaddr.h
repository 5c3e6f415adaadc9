/*
 * mta/net/sockaddr.h -- struct ipaddr (policy/net.h) to and from the
 * kernel's socket addresses, for bind, connect, sendto, accept and
 * getsockname.  Every place that talks to sockets converts here.
 */
#ifndef MOAT_MTA_NET_SOCKADDR_H
#define MOAT_MTA_NET_SOCKADDR_H

#include <stdint.h>
#include <sys/socket.h>

#include "policy/net.h"

/* ip and port as an AF_INET or AF_INET6 address in ss (zeroed first);
 * returns its length, for bind(), connect() and sendto(). */
socklen_t sockaddr_from_ip(const struct ipaddr *ip, uint16_t port, struct sockaddr_storage *ss);

/* The address of sa into ip (an IPv4-mapped IPv6 address as IPv4:
 * ip_unmap) and its port; -1 when sa is neither AF_INET nor AF_INET6
 * (ip untouched). */
int sockaddr_to_ip(const struct sockaddr *sa, struct ipaddr *ip);

#endif
