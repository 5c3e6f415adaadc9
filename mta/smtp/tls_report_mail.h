/*
 * mta/smtp/tls_report_mail.h -- `tls-report mailto`: each finished day's
 * TLS report (RFC 8460) mailed to the policy domain's `rua=mailto:`
 * addresses, in the delivery role's loop (docs/tls-policy.md).
 *
 * A round, TLSMAIL_FIRST_MS after the start and then every
 * TLSMAIL_EVERY_MS: the oldest record of a day before today not yet sent
 * (the queue role's TLSRPT_NEXT), the domain's `_smtp._tls` TXT record
 * (policy/tlsrpt.h tlsrpt_txt_select), then the report as a message (RFC
 * 8460 5.3: multipart/report; report-type="tlsrpt", the JSON as an
 * application/tlsrpt+json attachment in base64) committed to the queue
 * with the record marked sent (TLSRPT_SENT), like a bounce; the next
 * record at once, until none is left.  A domain without a record, or
 * without a mailto: address in it, is marked sent with nothing mailed.  A
 * temporary DNS failure or a queue error ends the round: the same record
 * is tried again at the next one.  A crash between the commit and the
 * mark mails it again: a duplicate, never a loss.
 *
 * Logs: event=tls-report domain day rcpts id (id: the report's queue ID;
 * rcpts=0 id=none when there was nowhere to mail it).
 */
#ifndef MOAT_MTA_SMTP_TLS_REPORT_MAIL_H
#define MOAT_MTA_SMTP_TLS_REPORT_MAIL_H

#include "mta/net/ev.h"
#include "mta/net/queue_client.h"
#include "mta/net/resolver.h"
#include "policy/conf.h"

#define TLSMAIL_FIRST_MS  5000
#define TLSMAIL_EVERY_MS  (3600 * 1000)
#define TLSMAIL_RCPTS_MAX 4      /* mailto: addresses a report goes to */

struct tlsmail;

/* Start the rounds; c (hostname: the submitter) must outlive it.  NULL
 * when memory is short. */
struct tlsmail *tlsmail_new(struct ev_loop *l, struct qc *q, struct dns_resolver *dns,
                            const struct conf *c);
/* Stop (a round under way is dropped: tried again after a restart). */
void tlsmail_free(struct tlsmail *m);

#endif
