/*
 * mta/cmd/status_cmd.h -- `moat status` and `moat reload`: ask the running server
 * over its control socket (mta/ops/control.h) in the queue directory.
 *
 *   moat status   "key value" lines: health, uptime (seconds), sessions,
 *                 config-generation, queue-messages and queue-bytes (each
 *                 "N of QUOTA"), queue-oldest-age (seconds), disk-free
 *                 ("BYTES, keeping BYTES"), accepted, rejected,
 *                 deliveries-ok, deliveries-deferred, deliveries-bounced
 *                 (since the start)
 *   moat reload   the same as kill -HUP, and says what came of it
 *
 * Exit codes: 0 done; 1 the reload was refused (the reason is printed:
 * FILE:LINE for the config); 111 no server answers (none running, or its
 * socket cannot be reached).
 */
#ifndef MOAT_MTA_CMD_STATUS_CMD_H
#define MOAT_MTA_CMD_STATUS_CMD_H

/* verb is "status" or "reload"; queue_path the config's queue. */
int opscmd_main(const char *verb, const char *queue_path);

#endif
