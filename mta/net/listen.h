/*
 * mta/net/listen.h -- a listening TCP socket for a configured address (SMTP
 * listeners, the metrics endpoint).
 */
#ifndef MOAT_MTA_NET_LISTEN_H
#define MOAT_MTA_NET_LISTEN_H

#include <stddef.h>

#include "policy/conf.h"

/* Bind and listen on cl's address and port: non-blocking, close-on-exec,
 * SO_REUSEADDR, IPV6_V6ONLY for IPv6.  Returns the descriptor, or -1 with
 * "listen ADDR:PORT: why" in err. */
int listen_open(const struct conf_listener *cl, char *err, size_t errcap);

/*
 * Sockets kept open by the supervisor (mta/roles/roles.h) across role restarts
 * and reloads: listen_open() in a child first looks here and returns a
 * duplicate of a kept socket at the same address.
 *   listen_keep_begin(); listen_keep(cl) for each wanted address (opens
 *   the missing ones: 0, or -1 with err); listen_keep_end(1) closes the
 *   kept sockets not asked for since begin (0: closes nothing).
 * listen_close_kept(): a child that has taken its duplicates (or needs
 * none) closes the inherited ones.
 */
int  listen_keep(const struct conf_listener *cl, char *err, size_t errcap);
void listen_keep_begin(void);
void listen_keep_end(int commit);
void listen_close_kept(void);
/* The kept descriptors into out (at most cap); forget them without
 * closing (a child that closed every descriptor it does not need). */
size_t listen_kept_fds(int *out, size_t cap);
void listen_forget_kept(void);

/* This machine's interface addresses (getifaddrs: IPv4 and IPv6, up or
 * not), at most max into out; 0 when they cannot be read.  For the loop
 * check of wildcard listeners (policy/route.h route_is_self). */
size_t listen_local_addrs(struct ipaddr *out, size_t max);

/* Same address and port (the options may differ). */
int listen_same(const struct conf_listener *a, const struct conf_listener *b);

#endif
