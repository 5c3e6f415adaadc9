/*
 * mta/init/ntpc.h -- the appliance's clock: an SNTP client (RFC 4330,
 * policy/sntp.h) run in a child of process 1, so that name lookups and
 * slow servers never hold process 1 up.  The child asks each server in
 * turn (its first address, two tries of 1 s), takes the answer with the
 * shortest round trip, and sets the clock: a step (clock_settime) at boot
 * or when it is 0.5 s off or more, else a slew (adjtime).  It logs
 * event=clock with the server, the offset and what it did, or a warning
 * when no server answered, and exits 0 (set) or 1 (not).
 */
#ifndef MOAT_MTA_INIT_NTPC_H
#define MOAT_MTA_INIT_NTPC_H

#include <stddef.h>
#include <sys/types.h>

#define NTPC_SERVERS_MAX 6
#define NTPC_NAME_MAX    253

/* Fork the child for servers[0..n) (names or addresses); step: always
 * step the clock (the boot).  Returns its pid, or -1 (logged). */
pid_t ntpc_spawn(const char servers[][NTPC_NAME_MAX + 1], size_t n, int step);

#endif
