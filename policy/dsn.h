/*
 * policy/dsn.h -- delivery status notifications (RFC 3464): the message
 * moat sends back to a sender whose mail failed (or is delayed).
 * Pure: a text builder; the caller passes the clock and a unique boundary.
 *
 * The message, CRLF line ends throughout, lines under 998 octets:
 *
 *   From: Mail Delivery System <MAILER-DAEMON@HOST>, To: <sender>,
 *   Subject, Date, Message-ID, Auto-Submitted: auto-replied (RFC 3834),
 *   MIME-Version, Content-Type: multipart/report; report-type=delivery-status
 *     1. text/plain: what happened, a line per recipient
 *     2. message/delivery-status: Reporting-MTA, Arrival-Date, then per
 *        recipient Final-Recipient, Action, Status, Remote-MTA,
 *        Diagnostic-Code, Last-Attempt-Date (and Will-Retry-Until if delayed)
 *     3. text/rfc822-headers: the original message's header block
 *
 * Text that came from the network (a remote reply, a host name) is made
 * printable ASCII ('?' for anything else) and cut, so it can neither break
 * a header line nor inject one.  Addresses keep UTF-8 (SMTPUTF8 mail);
 * then, and when the original headers hold 8-bit octets, the result says
 * so in *needs and the parts carry Content-Transfer-Encoding: 8bit.
 */
#ifndef MOAT_POLICY_DSN_H
#define MOAT_POLICY_DSN_H

#include <stddef.h>
#include <stdint.h>

#define DSN_HEADERS_MAX (32 * 1024)  /* original header bytes included at most */
#define DSN_DIAG_MAX    512           /* diagnostic text kept per recipient */

#define DSN_NEEDS_8BIT  0x01u   /* send with BODY=8BITMIME */
#define DSN_NEEDS_UTF8  0x02u   /* send with SMTPUTF8 (a non-ASCII address) */

struct dsn_rcpt {
	const char *addr;         /* the recipient, "local@domain" */
	const char *status;       /* RFC 3463 code, "5.1.1" or "4.4.7" */
	const char *diagnostic;   /* what failed, "" if nothing to say */
	int         remote;       /* 1: diagnostic is the next hop's reply */
	const char *remote_mta;   /* the host that answered, or "" */
};

struct dsn {
	const char *reporting_mta;  /* our host name */
	const char *sender;         /* the original envelope sender (the DSN's To:) */
	const char *queue_id;       /* the original's queue ID, as text */
	const char *boundary;       /* unique to this DSN: [0-9A-Za-z.] only */
	int64_t     arrival;        /* Unix seconds: when the original was queued */
	int64_t     now;            /* Unix seconds: this report */
	int         delayed;        /* 0: failed; 1: a delay warning */
	int64_t     retry_until;    /* delayed: when we give up */
	const struct dsn_rcpt *rcpts;
	size_t      nrcpts;
	const char *headers;        /* the original's header block (dsn_headers_len) */
	size_t      headers_len;
};

/*
 * Write the DSN into buf[0..cap) (NUL-terminated when cap > 0) and return
 * the length it needs, like snprintf: call with cap 0 to size the buffer.
 * *needs (may be NULL) receives DSN_NEEDS_* bits.
 */
size_t dsn_build(const struct dsn *d, char *buf, size_t cap, unsigned *needs);

/*
 * The length of the header block at the start of body[0..len): up to and
 * including the CRLF of the last header line (the empty line excluded),
 * cut at a line end to at most max bytes.
 */
size_t dsn_headers_len(const char *body, size_t len, size_t max);

/* RFC 5322 date of t in UTC, "Tue, 01 Dec 2026 10:00:00 +0000", into
 * out (32 bytes suffice).  Returns the length. */
size_t dsn_date(int64_t t, char out[32]);

#endif
