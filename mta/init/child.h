/*
 * mta/init/child.h -- other programs of process 1, which are moat itself
 * (/proc/self/exe: the image has no other program): `moat serve`, and
 * short commands whose output process 1 reads (`moat queue count`, `moat
 * check`, `moat upgrade`).  Process 1 never maps LMDB, never parses a
 * certificate, never writes a boot partition itself: a child does, and a
 * crash there is a child's exit status.
 */
#ifndef MOAT_MTA_INIT_CHILD_H
#define MOAT_MTA_INIT_CHILD_H

#include <stddef.h>

/* The server's user: not root, the same uid as in the container image.
 * It owns what is on /data; of root's powers it keeps only binding port
 * 25 (CAP_NET_BIND_SERVICE), so a compromised server cannot load kernel
 * modules, remount, or reconfigure the network. */
#define CHILD_SERVE_UID 65532

/* In a child before execve: become CHILD_SERVE_UID keeping
 * CAP_NET_BIND_SERVICE as an ambient capability (so it survives the
 * execve), nothing else.  0 or -1. */
int child_drop_to_server_user(void);

enum {
	CHILD_DROP = 1,     /* as the server's user (child_drop_to_server_user), else root */
	CHILD_STDERR = 2    /* its stderr into out too, else to process 1's log */
};

/*
 * Run /proc/self/exe with argv; its stdout (and stderr with CHILD_STDERR)
 * into out (cap bytes, NUL-terminated, the rest read and discarded), for
 * at most timeout_ms (then SIGKILL).  pump(), when not NULL, is called
 * while waiting (process 1 moves its log pipe to the consoles).  Returns
 * its exit status (0..255), or -1 (it could not run, or was killed).
 */
int child_run(char *const argv[], unsigned flags, char *out, size_t cap, unsigned timeout_ms,
              void (*pump)(void));

#endif
