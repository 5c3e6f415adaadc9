/*
 * mta/roles/roles.h -- `moat serve` as five processes (README "Process roles").
 *
 *   supervisor  the process started (root, or the user it was started
 *               as).  Reads the config and the files it names (key and
 *               certificate included), opens the listening sockets and
 *               keeps them, forks the roles and the socketpairs between
 *               them, restarts a role that dies, forwards SIGTERM and
 *               turns SIGHUP / `moat reload` into a new smtp generation.
 *               It reads nothing from the network and nothing a role
 *               says but fixed-size plink messages (mta/net/plink.h).
 *   queue       the only process that opens LMDB; serves mta/net/qwire.h
 *               requests; never parses SMTP.  Landlock: the queue
 *               directory only.
 *   smtp        sessions (mta/roles/smtp_role.c), TLS without the private key,
 *               the metrics endpoint, the control socket.  No files.
 *   delivery    the queue runner, the SMTP client, DNS.  No files.
 *   key         the TLS private key; signs for its smtp role.  No files,
 *               no network.
 *
 * Each role starts as a child of the supervisor, opens what it needs
 * while it still may, then role_enter(): its name (/proc/PID/comm
 * "moat-ROLE"), then mta/roles/sandbox.h (the run uid/gid, no_new_privs, no
 * capabilities, Landlock, a check that a file open now fails, seccomp),
 * then one log line: event=role role=NAME pid=N uid=... seccomp=2 ...
 *
 * Links (all socketpairs made by the supervisor):
 *   supervisor <-> each role   plink (SOCK_SEQPACKET): descriptors for
 *                              new links, drain, reload
 *   smtp, delivery <-> queue   qwire (SOCK_STREAM), mta/net/queue_client.h client side
 *   smtp <-> key               keyrole (SOCK_SEQPACKET), mta/net/keyrole.h
 * When a role dies its links close; the supervisor restarts it and hands
 * the others new links.  Nothing acknowledged is lost: a 250 is sent only
 * after the queue role's commit (fsync) answered.
 */
#ifndef MOAT_MTA_ROLES_ROLES_H
#define MOAT_MTA_ROLES_ROLES_H

#include "mta/ops/loaded_config.h"

enum role { ROLE_SMTP = 0, ROLE_QUEUE, ROLE_DELIVERY, ROLE_KEY, ROLE_NROLES };

const char *role_name(enum role r);

/* Become role r for good: name, sandbox (rw_dir: the only directory it
 * may use, or NULL), then the event=role line.  0, or -1 (logged: the
 * caller exits 111). */
int role_enter(enum role r, const struct config *cfg, const char *rw_dir);

/* When root: give the queue directory and what it holds to the run
 * uid/gid, so the queue role can write it after dropping root.  0 or -1
 * (logged). */
int role_own_dir(const struct config *cfg);

/* The roles' mains, run in the child after fork(); each returns the
 * process's exit status.  plink is the role's end of its supervisor link. */
int qrole_main(struct config *cfg, int plink);
int smtp_role_main(struct config *cfg, int plink, int qfd, int kfd);
int delivery_role_main(struct config *cfg, int plink, int qfd);
int key_role_main(struct config *cfg, int kfd);

/* `moat serve`: the supervisor.  Returns the exit status. */
int supervisor_run(struct config *cfg);

#endif
