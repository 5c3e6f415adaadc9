/*
 * mta/cmd/queue_cmd.h -- `moat queue ...`: the administrator's look into the
 * queue.  Opens the queue QUEUE_RDONLY, so it is safe while the server runs.
 *
 *   moat queue list      one line per message:
 *                          ID RECEIVED SIZE <SENDER> [held]
 *                        then one indented line per recipient:
 *                          <ADDR> STATE attempts=N next=TIME [error="..."]
 *                        STATE is pending, delivered or bounced; TIME is
 *                        UTC ISO-8601, "now" (0) or "-" (not pending).
 *                        An empty queue: "Mail queue is empty".
 *   moat queue show ID   the envelope, "field: value" a line, then a blank
 *                        line, then the body bytes as stored.
 *   moat queue count     "messages N", "bytes N", "map_used N",
 *                        "map_size N", a line each.
 *   moat queue flush     every waiting message due now
 *   moat queue retry ID  that message's pending recipients due now
 *   moat queue hold ID   never due until released
 *   moat queue release ID
 *   moat queue delete ID gone, whatever its recipients' states
 *                        These five ask the running server through its
 *                        control socket (mta/ops/control.h) and print its
 *                        answer ("N waiting messages due now", "ID due
 *                        now", "ID held", "ID released", "ID deleted";
 *                        "ID: no such message" on stderr); with no server
 *                        running they act on the queue directly and say
 *                        the same, followed by " (no server running: done
 *                        on the queue directly)".
 *
 * Bytes outside printable ASCII and UTF-8 in addresses and errors (they
 * come from remote peers) are shown as \xNN, so a queue listing cannot
 * drive the terminal.  The body in `show` is written raw, as asked for.
 *
 * Exit codes (the s6 convention):
 *   0    done
 *   1    no such message (show, retry, hold, release, delete)
 *   100  usage: unknown subcommand, wrong arguments, a malformed ID
 *   111  system failure: the queue cannot be opened or read (including a
 *        corrupt record), stdout cannot be written, or the server does not
 *        answer on its control socket
 * Diagnostics go to stderr, prefixed "moat queue: ".
 */
#ifndef MOAT_MTA_CMD_QUEUE_CMD_H
#define MOAT_MTA_CMD_QUEUE_CMD_H

#include <stdint.h>

#define QUEUECMD_OK       0
#define QUEUECMD_NOTFOUND 1
#define QUEUECMD_USAGE    100
#define QUEUECMD_SYSTEM   111

/*
 * Run the subcommand argv[0] ("list", "show", "count", "flush", ...) with its arguments
 * argv[1..argc) on the queue at queue_path.  map_size is the configured
 * map size (a reader maps what the queue file records, so it only
 * matters as a hint).  Writes to stdout/stderr; returns the exit code.
 */
int queuecmd_main(const char *queue_path, uint64_t map_size, int argc, char **argv);

#endif
