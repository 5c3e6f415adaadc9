/*
 * mta/smtp/smtpc.h -- the SMTP client session, as a state machine that does no
 * I/O: the mirror of mta/smtp/smtpd.h.  One session is one connection to one
 * address, carrying one transaction (one message, the recipients of one
 * destination) or, in probe mode, only the RCPTs (recipient verification);
 * with keep_open, a session whose transaction ended cleanly stays open
 * (SMTPC_S_IDLE) and smtpc_next() carries the next one on it, after RSET.
 *
 * The code that owns the socket (mta/smtp/delivery_attempt.c, a test, a fuzzer) drives it:
 *
 *   smtpc_init()                         once, with the transaction
 *   loop:
 *     n = smtpc_feed(c, in, len)         server bytes in; consumes n <= len
 *                                        (it stops at a STARTTLS answer and
 *                                        when the session is done)
 *     while (smtpc_event(c, &ev))        SMTPC_EV_STARTTLS: write all output,
 *                                          run the TLS handshake, then
 *                                          smtpc_tls_done(c, ok)
 *                                        SMTPC_EV_DONE: write all output
 *                                          (a QUIT, maybe), then close
 *     while (smtpc_body_wanted(c))       body bytes as stored, in order:
 *        n = smtpc_body(c, buf, len, last)   stops when output is full
 *     out = smtpc_output(c, &len); write it; smtpc_output_ack(c, written)
 *   smtpc_abort(c, why)                  EOF, an I/O error, a timeout
 *
 * Reuse: with p.keep_open, DONE comes with smtpc_idle() true when the
 * connection is in step for another transaction (every reply read, no
 * 421, no protocol error): the driver may keep it; smtpc_next() starts the
 * next transaction with RSET (a server that closed meanwhile fails it
 * with try_next set: nothing was decided, go on a fresh connection), and
 * smtpc_quit() queues QUIT when the driver lets it go.
 *
 * What it guarantees on the wire: commands end in CRLF; nothing it sends
 * holds a bare CR or LF (an address that would is refused, body bytes are
 * normalised and dot-stuffed by policy/data.h stuff_feed); after STARTTLS
 * it takes no byte the server sent before the handshake (such bytes are a
 * command injection, CVE-2011-0411 class, and end the session).  Replies
 * are read by policy/reply.h, which refuses hostile ones.
 *
 * The session allocates nothing: the caller owns the recipient list and
 * the results array, and they must outlive it.
 */
#ifndef MOAT_MTA_SMTP_SMTPC_H
#define MOAT_MTA_SMTP_SMTPC_H

#include <stddef.h>
#include <stdint.h>

#include "policy/data.h"
#include "policy/reply.h"

#define SMTPC_OUT_MAX   (16 * 1024)
#define SMTPC_TEXT_MAX  512         /* a reply kept for a result */

#define SMTPC_F_8BITMIME 0x01u   /* the message is 8-bit: BODY=8BITMIME if offered */
#define SMTPC_F_SMTPUTF8 0x02u   /* needs SMTPUTF8: fail if not offered */

enum smtpc_tls {
	SMTPC_TLS_NONE = 0,     /* never STARTTLS */
	SMTPC_TLS_MAY,          /* STARTTLS when offered */
	SMTPC_TLS_REQUIRE       /* STARTTLS or fail this server */
};

/* The transaction's DSN parameters (RFC 3461), passed on to a server that
 * offers DSN and never to one that does not.  Values as the client gave
 * them (policy/dsnparam.h); one the session would not have taken is left
 * out rather than sent. */
struct smtpc_dsn {
	uint8_t            ret;       /* DSN_RET_*; DSN_RET_NONE: no RET= */
	const char        *envid;     /* xtext; "" or NULL: no ENVID= */
	const uint8_t     *notify;    /* per recipient, DSN_NOTIFY_* bits (0: no NOTIFY=) */
	const char *const *orcpt;     /* per recipient, "type;xtext" ("": no ORCPT=) */
};

struct smtpc_params {
	const char *helo;             /* our name for EHLO/HELO */
	const char *sender;           /* "" is the null sender */
	const char *const *rcpts;     /* caller-owned, nrcpts of them */
	size_t      nrcpts;
	uint64_t    size;             /* body bytes, for SIZE= */
	unsigned    flags;            /* SMTPC_F_* */
	int         tls;              /* enum smtpc_tls (ignored when in_tls) */
	int         in_tls;           /* the connection is TLS from the start (smtps) */
	int         probe;            /* stop after the RCPTs: no DATA */
	const char *auth_user;        /* AUTH PLAIN/LOGIN with these; NULL: none */
	const char *auth_pass;
	int         keep_open;        /* no QUIT after a clean end: SMTPC_S_IDLE */
	/* The loop check: a server that names itself helo in its greeting or
	 * its EHLO/HELO reply is this machine (or one that takes our name):
	 * every recipient fails, 5.4.6 "mail for LOOP_NAME loops back to
	 * myself", and looped is set.  NULL: no check. */
	const char *loop_name;
	const struct smtpc_dsn *dsn;  /* caller-owned, arrays nrcpts long; NULL: none */
};

enum smtpc_status {
	SMTPC_R_NONE = 0,  /* not decided                                   */
	SMTPC_R_OK,        /* delivered (probe: the RCPT was accepted)       */
	SMTPC_R_TEMP,      /* 4xx or a failure of ours: defer                */
	SMTPC_R_PERM       /* 5xx: bounce                                    */
};

struct smtpc_result {
	uint8_t status;                 /* enum smtpc_status */
	int     code;                   /* the reply code that decided, 0 if none */
	char    text[SMTPC_TEXT_MAX];   /* that reply (smtp_reply_text), or why */
	uint8_t dsn_passed;             /* the server offers DSN: this RCPT went out with
	                                   the recipient's DSN parameters, and notifying
	                                   the sender is that server's task now */
};

enum smtpc_state {
	SMTPC_S_GREETING = 0,  /* connected: waiting for 220                   */
	SMTPC_S_EHLO,          /* EHLO sent                                     */
	SMTPC_S_HELO,          /* EHLO refused; HELO sent                       */
	SMTPC_S_STARTTLS,      /* STARTTLS sent                                  */
	SMTPC_S_TLS_WAIT,      /* 220 to STARTTLS: the driver runs the handshake */
	SMTPC_S_AUTH,          /* AUTH sent (LOGIN: one step per 334)            */
	SMTPC_S_TXN,           /* MAIL, RCPT..., DATA: sent and answered in order */
	SMTPC_S_BODY,          /* 354 received: body bytes go out               */
	SMTPC_S_DOT,           /* "." sent: waiting for the final reply         */
	SMTPC_S_DONE,          /* outcome final; QUIT queued if polite         */
	SMTPC_S_IDLE,          /* outcome final, connection kept (keep_open)    */
	SMTPC_S_RSET           /* smtpc_next(): RSET sent, then the transaction  */
};

enum smtpc_event_type {
	SMTPC_EV_NONE = 0,
	SMTPC_EV_STARTTLS,     /* flush, handshake, then smtpc_tls_done()       */
	SMTPC_EV_DONE          /* flush, then close                             */
};

#define SMTPC_EXT_PIPELINING 0x01u
#define SMTPC_EXT_STARTTLS   0x02u
#define SMTPC_EXT_8BITMIME   0x04u
#define SMTPC_EXT_SMTPUTF8   0x08u
#define SMTPC_EXT_SIZE       0x10u
#define SMTPC_EXT_AUTH_PLAIN 0x20u
#define SMTPC_EXT_AUTH_LOGIN 0x40u
#define SMTPC_EXT_DSN        0x80u

#define SMTPC_NAME_MAX 253   /* a host name's text (policy/dns.h DNS_NAME_MAX) */

struct smtpc {
	struct smtpc_params   p;
	struct smtpc_result  *res;          /* caller-owned, p.nrcpts long */
	enum smtpc_state      state;
	unsigned              ext;          /* SMTPC_EXT_* from the last EHLO */
	uint64_t              max_size;     /* SIZE n, 0 if none or unlimited */
	unsigned              in_tls : 1;
	unsigned              esmtp : 1;
	unsigned              auth_step : 2;   /* LOGIN: 0 sent AUTH, 1 user, 2 pass */
	unsigned              auth_plain : 1;
	unsigned              done_posted : 1;
	unsigned              tls_posted : 1;
	unsigned              body_last : 1;   /* the caller gave the last body bytes */
	unsigned              broken : 1;      /* 421 or a protocol error: never reused */
	unsigned              no_starttls : 1; /* in plaintext, the server offered no STARTTLS
	                                          or refused it (for TLS reports) */
	/* The transaction's commands are numbered 0 MAIL, 1..n RCPT, n+1 DATA
	 * (no DATA in probe mode); sent/answered count them. */
	size_t                sent, answered;
	size_t                accepted;     /* RCPTs answered 2xx */
	int                   mail_code;    /* the reply to MAIL, 0 until then */
	int                   looped;       /* the server has our name (loop_name) */
	int                   rset_wait;    /* RSET sent ahead of MAIL, not yet answered */
	/* Why the session failed as a whole, and whether another address of
	 * the same destination may be tried (nothing was decided yet). */
	int                   failed;
	int                   try_next;
	char                  error[SMTPC_TEXT_MAX];
	/* The server's own name (RFC 8460's receiving-mx-helo): the first
	 * word of its EHLO/HELO reply, else of its greeting; "" until one
	 * looks like a host name or an address literal. */
	char                  peer_name[SMTPC_NAME_MAX + 1];
	struct stuff_state    stuff;
	char                  out[SMTPC_OUT_MAX];
	size_t                outlen;
};

/* Start a session: p (and the arrays it points to) and res (p->nrcpts
 * results, cleared here) must outlive it. */
void smtpc_init(struct smtpc *c, const struct smtpc_params *p, struct smtpc_result *res);

/* Server bytes in; returns how many were used. */
size_t smtpc_feed(struct smtpc *c, const char *buf, size_t len);

/* The next event, 0 if none.  Each is handed out once. */
int smtpc_event(struct smtpc *c, enum smtpc_event_type *ev);

/* The TLS handshake after STARTTLS ended: ok 1 (EHLO again) or 0. */
void smtpc_tls_done(struct smtpc *c, int ok);

/* Body: wanted while in SMTPC_S_BODY and not all given.  smtpc_body()
 * takes what fits in the output and returns it; last says these are the
 * final bytes (the session adds the end "." once they are all taken). */
int smtpc_body_wanted(const struct smtpc *c);
size_t smtpc_body(struct smtpc *c, const char *buf, size_t len, int last);

const char *smtpc_output(const struct smtpc *c, size_t *len);
void smtpc_output_ack(struct smtpc *c, size_t n);

/* The connection failed (why: "lost connection", "timeout", ...): every
 * undecided recipient becomes temporary; DONE is posted. */
void smtpc_abort(struct smtpc *c, const char *why);

int smtpc_done(const struct smtpc *c);

/* After DONE: 1 when the connection may carry another transaction. */
int smtpc_idle(const struct smtpc *c);
/* The next transaction on an idle session (p and res as for smtpc_init;
 * EHLO, TLS and AUTH as they were): RSET, then MAIL (in one group with
 * PIPELINING)...  The session's
 * extensions and TLS state are kept.  Returns 0, or -1 if not idle. */
int smtpc_next(struct smtpc *c, const struct smtpc_params *p, struct smtpc_result *res);
/* Let an idle session go: QUIT is queued (write it, then close). */
void smtpc_quit(struct smtpc *c);

#endif
