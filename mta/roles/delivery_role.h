/*
 * mta/roles/delivery_role.h -- the delivery role: the queue runner, the
 * SMTP client and DNS (mta/smtp/queue_runner.h) in one event loop.
 *
 * The runner reads and records through the queue role (mta/net/queue_client.h).  The
 * queue link is watched by the loop for the queue role's kicks (a commit,
 * a flush); when the queue role is restarted the supervisor sends a new
 * link, and the jobs in flight record their outcomes there -- or, if
 * their message was read from the old one and the write fails, are tried
 * again later: a duplicate, never a loss.
 *
 * Owns: the queue runner, the SMTP client and its resolver, the admin
 *   socket (QUEUE/admin: moat queue flush|retry|hold|release|delete).
 * Asks: the queue role (read due mail, record outcomes, queue bounces),
 *   its key role (DKIM signatures of the DSNs it makes: mta/smtp/dsn_dkim.h;
 *   a key role of its own, with the current config's keys, renewed at
 *   each reload).
 * Never: accepts a connection from the network, or opens a file.
 */

#ifndef MOAT_MTA_ROLES_DELIVERY_ROLE_H
#define MOAT_MTA_ROLES_DELIVERY_ROLE_H

#include "mta/ops/loaded_config.h"

/* The role's main, run in the child after fork(); plink is its end of the
 * supervisor's link, qfd its link to the queue role, dfd its DKIM link to
 * its key role (-1: none yet).  Returns the process's exit status. */
int delivery_role_main(struct config *cfg, int plink, int qfd, int dfd);

#endif
