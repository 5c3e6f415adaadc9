/*
 * mta/server.h -- the listening server: sockets, connections, the event
 * loop, and the group commit that turns finished messages into 250s.
 */
#ifndef MOAT_MTA_SERVER_H
#define MOAT_MTA_SERVER_H

#include "policy/conf.h"

/* Run the server with conf (which must outlive the call) until SIGTERM or
 * SIGINT.  Returns a process exit status: 0, or 111 when it could not
 * start (socket, queue), after logging why. */
int server_run(const struct conf *conf);

#endif
