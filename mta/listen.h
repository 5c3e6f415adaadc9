/*
 * mta/listen.h -- a listening TCP socket for a configured address (SMTP
 * listeners, the metrics endpoint).
 */
#ifndef MOAT_MTA_LISTEN_H
#define MOAT_MTA_LISTEN_H

#include <stddef.h>

#include "policy/conf.h"

/* Bind and listen on cl's address and port: non-blocking, close-on-exec,
 * SO_REUSEADDR, IPV6_V6ONLY for IPv6.  Returns the descriptor, or -1 with
 * "listen ADDR:PORT: why" in err. */
int listen_open(const struct conf_listener *cl, char *err, size_t errcap);

/* Same address and port (the options may differ). */
int listen_same(const struct conf_listener *a, const struct conf_listener *b);

#endif
