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
 *     2. message/delivery-status: [Original-Envelope-Id,] Reporting-MTA,
 *        Arrival-Date, then per recipient [Original-Recipient,]
 *        Final-Recipient, Action, Status, Remote-MTA, Diagnostic-Code,
 *        Last-Attempt-Date (and Will-Retry-Until if delayed)
 *     3. text/rfc822-headers: the original message's header block, or
 *        message/rfc822: the whole message (RET=FULL, a failure, small)
 *
 * Which outcomes are reported is the caller's, asked of dsn_decide() per
 * recipient (RFC 3461 NOTIFY); the report can mix failed, delayed and
 * relayed recipients.
 *
 * SMTPUTF8 mail (d->utf8) gets RFC 6533's types: message/global-delivery-
 * status, whose address fields keep UTF-8 ("utf-8;" type), message/global-
 * headers and message/global; other mail keeps every field of part 2 in
 * ASCII (a non-ASCII address in RFC 6533's 7-bit form).
 *
 * Text that came from the network (a remote reply, a host name) is made
 * printable ASCII ('?' for anything else) and cut, so it can neither break
 * a header line nor inject one.  8-bit octets (UTF-8 addresses, 8-bit
 * original headers or body) make the parts that hold them carry
 * Content-Transfer-Encoding: 8bit, and *needs says so: DSN_NEEDS_8BIT,
 * and DSN_NEEDS_UTF8 when the report's own envelope or header needs it (a
 * non-ASCII sender).
 */
#ifndef MOAT_POLICY_DSN_H
#define MOAT_POLICY_DSN_H

#include <stddef.h>
#include <stdint.h>

#define DSN_HEADERS_MAX (32 * 1024)  /* original header bytes included at most */
#define DSN_DIAG_MAX    512           /* diagnostic text kept per recipient */
#define DSN_FULL_MAX    (64 * 1024)   /* a message returned whole at most (RET=FULL) */

#define DSN_NEEDS_8BIT  0x01u   /* send with BODY=8BITMIME */
#define DSN_NEEDS_UTF8  0x02u   /* send with SMTPUTF8 (a non-ASCII address) */

/* What a report says of a recipient (RFC 3464 2.3.3). */
enum dsn_action {
	DSN_ACT_NONE = 0,      /* nothing to report (dsn_decide); in a report: failed,
	                          or delayed when the report is (struct dsn delayed) */
	DSN_ACT_FAILED,
	DSN_ACT_DELAYED,
	DSN_ACT_RELAYED        /* taken by a next hop that does not offer DSN */
};

/* What became of a recipient, for dsn_decide(). */
enum dsn_outcome {
	DSN_OUT_SENT = 0,      /* a next hop took it (2xx at the end of DATA) */
	DSN_OUT_FAILED,        /* bounced, or expired */
	DSN_OUT_DELAYED        /* still waiting when a delay notice is due */
};

struct dsn_rcpt {
	const char *addr;         /* the recipient, "local@domain" */
	const char *status;       /* RFC 3463 code, "5.1.1" or "4.4.7" */
	const char *diagnostic;   /* what failed, "" if nothing to say */
	int         remote;       /* 1: diagnostic is the next hop's reply */
	const char *remote_mta;   /* the host that answered, or "" */
	int         action;       /* enum dsn_action */
	const char *orcpt;        /* ORCPT as received (policy/dsnparam.h), NULL or "" none */
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
	const char *headers;        /* the original's header block (dsn_headers_len), or the
	                               whole message when full */
	size_t      headers_len;
	const char *envid;          /* ENVID as received (xtext), NULL or "" none */
	int         utf8;           /* the original was SMTPUTF8 mail: RFC 6533 types */
	int         full;           /* headers is the whole message (dsn_return_full) */
};

/*
 * Is the sender told of this outcome of a recipient, and how (RFC 3461)?
 * notify: its NOTIFY bits (0, not given: a failure and a delay are told,
 * as with FAILURE,DELAY); passed: the next hop took the DSN parameters
 * (smtpc_result.dsn_passed), so that success is that hop's to tell.  A
 * success is told ("relayed", RFC 3461 5.2.2) only with NOTIFY=SUCCESS to a
 * next hop that does not offer DSN; NEVER tells nothing.  A message from
 * <> is never told of: that is the caller's test.
 */
enum dsn_action dsn_decide(unsigned notify, enum dsn_outcome out, int passed);

/* Does a report return the whole message (RFC 3461 4.3)?  Only with
 * RET=FULL, only in a report of a failure, and only a message of at most
 * DSN_FULL_MAX bytes; else its headers. */
int dsn_return_full(unsigned ret, int failure, uint64_t size);

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
