/*
 * mta/roles/queue_role.h -- the queue role: the only process that opens the LMDB
 * queue.  It serves typed requests (mta/net/qwire.h) from its clients -- the
 * smtp role(s) and the delivery role -- over socketpairs the supervisor
 * hands it (mta/net/plink.h), and never parses SMTP.
 *
 * Each link keeps its own drafts (by queue ID): a client can write,
 * commit or abort only the drafts it began, and when a link breaks its
 * drafts are aborted (their spool files removed).  A frame that does not
 * decode, or that the link's kind may not send (the delivery role does
 * not commit new mail; an smtp role neither records delivery outcomes nor
 * holds, retries or deletes queued mail),
 * ends that link, never the process: the supervisor notices the client
 * die and restarts it.  Answers are written before the next frame is
 * read, in order; a client that does not read its answers within
 * QROLE_SEND_MS loses its link.
 *
 * Owns: the LMDB queue (queue/queue.h), the only process that opens it.
 * Serves: the smtp role(s) and the delivery role, each over its own link.
 * Asks: nobody (it kicks the delivery role when mail becomes due).
 * Never: parses SMTP, touches the network, or keeps a draft of a link
 *   that broke.
 */

#ifndef MOAT_MTA_ROLES_QUEUE_ROLE_H
#define MOAT_MTA_ROLES_QUEUE_ROLE_H

#include "mta/ops/loaded_config.h"

/* The role's main, run in the child after fork(); plink is its end of the
 * supervisor's link.  Returns the process's exit status. */
int queue_role_main(struct config *cfg, int plink);

#endif
