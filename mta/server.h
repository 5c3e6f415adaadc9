/*
 * mta/server.h -- the listening server: sockets, connections, the event
 * loop, and the group commit that turns finished messages into 250s.
 */
#ifndef MOAT_MTA_SERVER_H
#define MOAT_MTA_SERVER_H

#include "config.h"

/* Run the server with cfg (its reference is taken over; cfg->path is read
 * again on reload) until SIGTERM or SIGINT; SIGHUP reloads everything
 * (README "Reload and stop").  Returns a process exit status: 0, or 111
 * when it could not start (socket, queue, log socket), after logging why. */
int server_run(struct config *cfg);

#endif
