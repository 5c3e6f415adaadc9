/*
 * mta/cmd/tls_report_cmd.h -- `moat tls-report DATE [DOMAIN]`: the TLS
 * reports (RFC 8460) of one UTC day, as the queue holds them
 * (docs/tls-policy.md, "TLS reporting").  Opens the queue QUEUE_RDONLY,
 * so it is safe while the server runs.
 *
 *   DATE     YYYY-MM-DD, a UTC day
 *   DOMAIN   only that policy domain's report (A-label form)
 *
 * Output: one JSON report (RFC 8460 section 4) per policy domain that
 * had sessions under DANE or MTA-STS that day (or a failed MTA-STS policy
 * fetch), in domain order, each on one line.  organization-name is the
 * configured hostname, contact-info postmaster@ it, report-id
 * "DATE.DOMAIN@HOSTNAME".  A day with no results prints nothing.
 *
 * Exit codes: 0 done (also when nothing was found), 1 DOMAIN given and
 * not found, 100 usage (a malformed DATE or DOMAIN), 111 the queue
 * cannot be opened or read, or stdout cannot be written.  Diagnostics go
 * to stderr, prefixed "moat tls-report: ".
 */
#ifndef MOAT_MTA_CMD_TLS_REPORT_CMD_H
#define MOAT_MTA_CMD_TLS_REPORT_CMD_H

#include <stdint.h>

/* Parse "YYYY-MM-DD" (a real date, 1970 on) into Unix seconds of its
 * 00:00 UTC: 0, or -1. */
int tlsreportcmd_date(const char *s, int64_t *day);

/* argv[0..argc): DATE [DOMAIN].  hostname names us in the report. */
int tlsreportcmd_main(const char *queue_path, uint64_t map_size, const char *hostname, int argc,
                      char **argv);

#endif
