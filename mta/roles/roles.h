/*
 * mta/roles/roles.h -- `moat serve` as five processes (docs/security.md "Process
 * roles and sandbox"), and what every role does on entering its sandbox.
 *
 *   process      file (contract in its .h)     owns
 *   supervisor   mta/roles/supervisor.c        the config, the listening
 *                                              sockets, the processes
 *   queue        mta/roles/queue_role.c        the LMDB queue (only it)
 *   smtp         mta/roles/smtp_role.c         client sessions, TLS without
 *                                              the key, metrics, control
 *   delivery     mta/roles/delivery_role.c     the queue runner, the SMTP
 *                                              client, DNS, the admin socket
 *   key          mta/roles/key_role.c          the TLS private key
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
 *   smtp        sessions, TLS without the private key, the metrics
 *               endpoint, the control socket.  No files.
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
 *   supervisor <-> each role   plink (SOCK_SEQPACKET), mta/net/plink.h:
 *                              descriptors for new links, drain, reload
 *   smtp, delivery <-> queue   qwire (SOCK_STREAM), mta/net/qwire.h; the
 *                              clients' side is mta/net/queue_client.h
 *   smtp <-> key               key messages (SOCK_SEQPACKET),
 *                              mta/net/keymsg.h; the smtp side is
 *                              mta/net/key_client.h
 * When a role dies its links close; the supervisor restarts it and hands
 * the others new links.  Nothing acknowledged is lost: a 250 is sent only
 * after the queue role's commit (fsync) answered.
 *
 * The rest of mta/, one wing a folder, each using only the ones below it
 * (make layout-check):
 *   mta/main.c   the subcommands
 *   mta/roles/   the processes above, the sandbox
 *   mta/smtp/    the protocol engines: the server session (smtpd), the
 *                client session (smtpc), the queue runner, one delivery
 *                attempt, the DNSBL lookups
 *   mta/cmd/     the admin commands: queue, status/reload, passwd,
 *                relay-test
 *   mta/init/    the appliance's process 1: boot, devices, rtnetlink
 *   mta/ops/     the loaded config and the files it names, metrics and
 *                health, the HTTP endpoint, the control sockets
 *   mta/net/     what every process shares: the event loop, the log, TLS,
 *                the resolver, listeners, the links and their framings
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

/* The signals a role takes through its event loop: SIGTERM, SIGINT and
 * SIGHUP blocked and read from the descriptor returned (non-blocking,
 * close-on-exec), SIGPIPE ignored (a peer gone is an error to handle, not
 * the role's end).  The descriptor, or -1 (logged). */
int role_signals(void);

/* When root: give the queue directory and what it holds to the run
 * uid/gid, so the queue role can write it after dropping root.  0 or -1
 * (logged). */
int role_own_dir(const struct config *cfg);

#endif
