/*
 * mta/roles/supervisor.h -- the supervisor of `moat serve`.
 *
 * It keeps: the current config, the listening sockets (mta/net/listen.h), a
 * table of the role processes and its end of each one's plink.  It does:
 *   start   queue, delivery, then a key role and its smtp role (one pair
 *           per generation), the qwire socketpairs between them;
 *   SIGCHLD a role that died is logged (event=role-exit) and started
 *           again (event=role-start) -- at once, or after a pause that
 *           doubles while it keeps dying within a second of its start --
 *           and the others get new links to it (plink PLINK_FD);
 *   SIGHUP  and `moat reload` (an smtp role asks): read the config again;
 *           if it is good, a new key+smtp pair serves it and the old smtp
 *           role drains; if not, nothing changes (event=reload);
 *   SIGTERM stop the smtp roles and the runner, then the queue role (so
 *           every commit has finished), then exit 0.
 * The supervisor never reads the network; from a role it takes only
 * fixed-size plink messages, and a role that sends one that does not
 * decode is killed (and restarted).
 *
 * Owns: the current config and the files it names, the listening
 *   sockets, the role processes and every socketpair between them.
 * Asks: nothing of anyone; it tells roles (plink) and reaps them.
 * Never: reads the network, or anything a role says but a fixed-size
 *   plink message (mta/net/plink.h).
 */

#ifndef MOAT_MTA_ROLES_SUPERVISOR_H
#define MOAT_MTA_ROLES_SUPERVISOR_H

#include "mta/ops/loaded_config.h"

/* `moat serve`: the supervisor.  Returns the exit status. */
int supervisor_run(struct config *cfg);

#endif
