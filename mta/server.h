/*
 * mta/server.h -- the listening server: sockets, connections, the event
 * loop, and the group commit that turns finished messages into 250s.
 */
#ifndef MOAT_MTA_SERVER_H
#define MOAT_MTA_SERVER_H

#include "tables.h"
#include "policy/conf.h"

/* Run the server with conf and the files it names (both must outlive the
 * call) until SIGTERM or SIGINT; SIGHUP reloads the TLS certificate and
 * key into tables.  Returns a process exit status: 0, or 111 when it could
 * not start (socket, queue), after logging why. */
int server_run(const struct conf *conf, struct tables *tables);

#endif
