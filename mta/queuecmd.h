/*
 * mta/queuecmd.h -- `moat queue ...`: the administrator's look into the
 * queue.  Opens the queue QUEUE_RDONLY, so it is safe while the server runs.
 *
 *   moat queue list      one line per message:
 *                          ID RECEIVED SIZE <SENDER>
 *                        then one indented line per recipient:
 *                          <ADDR> STATE attempts=N next=TIME [error="..."]
 *                        STATE is pending, delivered or bounced; TIME is
 *                        UTC ISO-8601, "now" (0) or "-" (not pending).
 *   moat queue show ID   the envelope, "field: value" a line, then a blank
 *                        line, then the body bytes as stored.
 *   moat queue count     "messages N", "bytes N", "map_used N",
 *                        "map_size N", a line each.
 *
 * Bytes outside printable ASCII and UTF-8 in addresses and errors (they
 * come from remote peers) are shown as \xNN, so a queue listing cannot
 * drive the terminal.  The body in `show` is written raw, as asked for.
 *
 * Exit codes (the s6 convention):
 *   0    done
 *   1    no such message (show)
 *   100  usage: unknown subcommand, wrong arguments, a malformed ID
 *   111  system failure: the queue cannot be opened or read (including a
 *        corrupt record), or stdout cannot be written
 * Diagnostics go to stderr, prefixed "moat queue: ".
 */
#ifndef MOAT_MTA_QUEUECMD_H
#define MOAT_MTA_QUEUECMD_H

#include <stdint.h>

#define QUEUECMD_OK       0
#define QUEUECMD_NOTFOUND 1
#define QUEUECMD_USAGE    100
#define QUEUECMD_SYSTEM   111

/*
 * Run the subcommand argv[0] ("list", "show", "count") with its arguments
 * argv[1..argc) on the queue at queue_path.  map_size is the configured
 * map size (a reader maps what the queue file records, so it only
 * matters as a hint).  Writes to stdout/stderr; returns the exit code.
 */
int queuecmd_main(const char *queue_path, uint64_t map_size, int argc, char **argv);

#endif
