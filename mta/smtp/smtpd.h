/*
 * mta/smtp/smtpd.h -- the SMTP server session, as a state machine that does no
 * I/O (like BearSSL's engine).
 *
 * The code that owns the socket (mta/roles/smtp_role.c, a test, a fuzzer, later the
 * TLS pump) drives it:
 *
 *   smtpd_init()            once, with the client and the config
 *   smtpd_greet()           when the greeting may go out (after greet-delay)
 *   loop:
 *     n = smtpd_feed(s, in, len)     consumes n <= len input bytes; it takes
 *                                    fewer while an event or a reply waits
 *     while (smtpd_event(s, &ev))    act on each event and answer it:
 *        SMTPD_EV_QUOTA      -> smtpd_quota_done(s, quota_check(...))
 *        SMTPD_EV_MSG_BEGIN  -> smtpd_msg_begun(s, ok, id, now)
 *        SMTPD_EV_MSG_DATA   -> smtpd_data_done(s, queue_err)
 *        SMTPD_EV_MSG_END    -> later: smtpd_msg_committed(s, queue_err),
 *                               or smtpd_msg_refused(s, reply, reason)
 *        SMTPD_EV_MSG_ABORT  -> throw the draft away (no answer)
 *        SMTPD_EV_RCPT_VERIFY -> ask the next hop about data (the recipient,
 *                               NUL-terminated); later: smtpd_rcpt_verified()
 *        SMTPD_EV_STARTTLS   -> write the pending output (the 220) in
 *                               plaintext, DISCARD every input byte already
 *                               buffered (CVE-2011-0411), handshake, then
 *                               smtpd_tls_started(s, SMTPD_F_TLS)
 *        SMTPD_EV_AUTH       -> check ev.creds (unless ev.refuse says why
 *                               not), count failures per address, wait the
 *                               failure delay, then smtpd_auth_done()
 *        SMTPD_EV_DELAY      -> after ev.ms milliseconds: smtpd_delay_done(s)
 *        SMTPD_EV_DNSBL      -> smtpd_dnsbl_done(s, lists) once the lists answered
 *        SMTPD_EV_CLOSE      -> close once the output is written
 *     out = smtpd_output(s, &len); write it; smtpd_output_ack(s, written)
 *   smtpd_timeout(s)        when smtpd_timeout_secs() seconds passed idle,
 *                           or smtpd_deadline_secs() since the state began
 *   smtpd_session_expired(s) when smtpd_session_secs() passed since the
 *                           connection (max-session-time), whatever the state
 *
 * Quotas: the session asks before it says 250 to MAIL (ev.size = SIZE=,
 * or 0) and again when the message's terminator is read (ev.size = the
 * body as it would be stored), before SMTPD_EV_MSG_END.  The driver
 * gathers the queue's usage and free space and answers with the verdict
 * of quota_check() (policy/quota.h); anything but QUOTA_OK is 452 4.3.1.
 *
 * Edge defenses (policy/edge.h): the session judges HELO and MAIL FROM
 * itself and counts each decision in s->counters (set by the driver, may
 * be NULL).  The tarpit holds replies back without blocking: past
 * tarpit-after errors the reply to an error is not handed out by
 * smtpd_output() until the driver, having waited ev.ms, calls
 * smtpd_delay_done(); input stalls meanwhile.  DNS blocklists are the
 * driver's (it owns the resolver), which tells the session with
 * smtpd_dnsbl_done(), asked or not, as soon as it knows.  At dnsbl-stage
 * connect the driver waits for the verdict before smtpd_greet(), which
 * then greets a listed outsider with 554; at the rcpt stage the session
 * asks at MAIL (SMTPD_EV_DNSBL, for outsiders only) and refuses each
 * RCPT of a listed client.
 *
 * The session never knows whether it runs over TLS except through
 * SMTPD_F_TLS (an implicit-TLS driver passes it to smtpd_init() and greets
 * after the handshake).  It owns no descriptor and allocates only the body buffer
 * (during DATA) and the recipient array (bounded by max-recipients); both
 * are freed by smtpd_free().  Logging goes through mta/net/log.h.
 */
#ifndef MOAT_MTA_SMTP_SMTPD_H
#define MOAT_MTA_SMTP_SMTPD_H

#include <stddef.h>
#include <stdint.h>
#include "policy/conf.h"
#include "policy/data.h"
#include "policy/edge.h"
#include "policy/net.h"
#include "policy/rcptdb.h"
#include "policy/sasl.h"
#include "policy/users.h"
#include "queue/queue.h"

#define SMTPD_OUT_MAX   4096          /* reply buffer; input stalls when near full */
#define SMTPD_BODY_BUF  (32 * 1024)   /* unstuffed body bytes handed out per event */

#define SMTPD_F_TLS   0x01u  /* the connection is inside TLS */

enum smtpd_state {
	SMTPD_S_GREET_WAIT = 0, /* connected, greeting not yet sent: input is an early talker */
	SMTPD_S_INIT,           /* greeted; HELO/EHLO not yet given                  */
	SMTPD_S_READY,          /* HELO/EHLO given, no transaction open              */
	SMTPD_S_MAIL,           /* MAIL accepted; RCPTs may follow                   */
	SMTPD_S_WAIT_BEGIN,     /* DATA given; waiting for the draft (queue ID)      */
	SMTPD_S_DATA,           /* 354 sent; reading the message                      */
	SMTPD_S_WAIT_COMMIT,    /* terminator seen; waiting for the durable commit   */
	SMTPD_S_CLOSING,        /* 221/421/554 sent; the connection is to be closed  */
	SMTPD_S_AUTH,           /* AUTH exchange: 334 sent, a response line is due,
	                           or the driver is checking the credentials        */
	SMTPD_S_REFUSED         /* greeted with 554 (a listed client): only QUIT is taken,
	                           RFC 5321 3.1; anything else gets 503                */
};

enum smtpd_event_type {
	SMTPD_EV_NONE = 0,
	SMTPD_EV_QUOTA,       /* may env's client queue size more bytes? smtpd_quota_done() */
	SMTPD_EV_MSG_BEGIN,   /* start a draft; answer with smtpd_msg_begun()       */
	SMTPD_EV_MSG_DATA,    /* append data/len to the draft; smtpd_data_done()   */
	SMTPD_EV_MSG_END,     /* commit the draft with env; smtpd_msg_committed()  */
	SMTPD_EV_MSG_ABORT,   /* drop the draft                                       */
	SMTPD_EV_RCPT_VERIFY, /* probe data (a recipient); smtpd_rcpt_verified()    */
	SMTPD_EV_CLOSE,       /* close after the output is flushed                   */
	SMTPD_EV_STARTTLS,    /* flush, discard input, handshake; smtpd_tls_started() */
	SMTPD_EV_AUTH,        /* check creds; smtpd_auth_done()                       */
	SMTPD_EV_DELAY,       /* tarpit: wait ev.ms, then smtpd_delay_done()         */
	SMTPD_EV_DNSBL        /* the DNSBL verdict is needed: smtpd_dnsbl_done()     */
};

struct smtpd_event {
	enum smtpd_event_type type;
	const char *data;               /* MSG_DATA: owned by the session until answered */
	size_t len;
	struct queue_envelope *env;     /* MSG_END, QUOTA: owned by the session until answered */
	uint64_t size;                  /* QUOTA: body bytes to make room for */
	const struct sasl_creds *creds; /* AUTH: owned by the session until answered     */
	const char *refuse;             /* AUTH: refused without a check, and why (log)  */
	unsigned ms;                    /* DELAY: milliseconds to hold the reply */
};

/* The client every decision is about.  On a `proxy` listener the driver
 * fills it from the PROXY header (policy/proxy.h): addr and port are the
 * header's client, local the address it reached on the load balancer, and
 * proxy the load balancer itself (the TCP peer); without a header that
 * named a client (LOCAL, UNKNOWN) addr is the load balancer's. */
#define SMTPD_SID_LEN 16   /* hex digits of a session's id */

struct smtpd_client {
	char          sid[SMTPD_SID_LEN + 1];  /* the session's id: sid= on its log lines */
	struct ipaddr addr;             /* ip_unmap()ed */
	char          addr_text[IP_TEXT_MAX];
	uint16_t      port;
	struct conf_listener listener;  /* where it connected; zeroed = mx, no TLS */
	struct ipaddr local;            /* our end (getsockname); family 0: unknown */
	struct ipaddr proxy;            /* the load balancer that sent a PROXY header,
	                                   ip_unmap()ed; family 0: none */
	char          proxy_text[IP_TEXT_MAX];  /* "" when none */
};

enum smtpd_pending { /* which answer the session is waiting for */
	SMTPD_P_NONE = 0, SMTPD_P_BEGIN, SMTPD_P_DATA, SMTPD_P_COMMIT,
	SMTPD_P_QUOTA_MAIL,   /* MAIL is answered once the quota is */
	SMTPD_P_QUOTA_DATA,   /* the message goes to commit once the quota is */
	SMTPD_P_VERIFY,       /* RCPT is answered once the next hop is */
	SMTPD_P_TLS,          /* STARTTLS: smtpd_tls_started() */
	SMTPD_P_AUTH,         /* AUTH: smtpd_auth_done() */
	SMTPD_P_DELAY,        /* a reply is held until smtpd_delay_done() */
	SMTPD_P_DNSBL         /* MAIL goes on once the DNSBL verdict is known */
};

enum smtpd_auth_result {
	SMTPD_AUTH_OK = 0,    /* 235 2.7.0 */
	SMTPD_AUTH_FAIL,      /* 535 5.7.8 */
	SMTPD_AUTH_BLOCKED    /* 421 4.7.0 and close: too many failures from this address */
};

enum smtpd_dnsbl { /* what the driver said of the client's DNSBL score */
	SMTPD_DNSBL_UNKNOWN = 0, SMTPD_DNSBL_PASS, SMTPD_DNSBL_LISTED
};

struct smtpd {
	const struct conf   *conf;
	struct smtpd_client  client;
	enum smtpd_state     state;
	unsigned             flags;          /* SMTPD_F_* */
	unsigned             esmtp : 1;      /* EHLO (not HELO) */
	unsigned             rcpt_tried : 1; /* a RCPT was given in this transaction */
	unsigned             overflow : 1;   /* discarding the rest of an over-long line */
	unsigned             too_big : 1;    /* body passed max-message-size */
	unsigned             too_many_hops : 1; /* more Received: fields than max-hops */
	unsigned             bare : 1;       /* bare CR/LF in the body */
	unsigned             close_after : 1;
	unsigned             stopping : 1;   /* the server is stopping (smtpd_shutdown) */
	unsigned             data_ended : 1; /* terminator seen, last MSG_DATA unanswered */
	unsigned             lf_skip : 1;    /* a bare LF broke a command line: the rest of it,
	                                        up to the next CRLF, is thrown away */
	unsigned             expired : 1;    /* max-session-time passed during a commit: 421
	                                        right after its answer */
	unsigned             errors;
	unsigned             junk;           /* NOOP, RSET, VRFY, HELP and errors since the
	                                        start or the last queued message */
	const char          *close_reason;   /* why the session closes (static), for the
	                                        driver's disconnect line; NULL: the client */
	unsigned             messages;
	char                 helo[ADDR_DOMAIN_MAX + 1];

	/* Files the config names (smtpd_set_tables()); NULL when absent. */
	const struct users  *users;
	const struct rcptdb *rcpts;
	/* AUTH (RFC 4954). */
	unsigned             authenticated : 1;
	unsigned             auth_login : 1;  /* mechanism LOGIN (else PLAIN) */
	unsigned             auth_step;       /* LOGIN: 1 user name due, 2 password due */
	struct sasl_creds    creds;           /* wiped once answered */
	const struct user   *user;            /* after 235 */

	/* Edge defenses. */
	struct edge_counters *counters;      /* the server's; NULL: not counted */
	unsigned             helo_ours : 1;  /* the HELO name is ours (judged at MAIL) */
	unsigned             hold_active : 1;/* output from `hold` on is held back */
	size_t               hold;
	size_t               reply_start;    /* where the last reply began in out */
	unsigned             delay_ms;       /* a DELAY to hand out */
	enum smtpd_dnsbl     dnsbl;
	char                 dnsbl_lists[256]; /* LISTED: the lists, for the 554 */

	/* The pending event and what the driver answered. */
	enum smtpd_pending   pending;
	struct smtpd_event   ev;             /* ev.type NONE when none pending */
	int                  draft_err;      /* sticky queue error while writing */

	char                 vrcpt[QUEUE_ADDR_MAX + 1]; /* the recipient being verified */
	uint8_t              vnotify;        /* its DSN parameters (RFC 3461) */
	char                 vorcpt[QUEUE_ORCPT_MAX + 1];

	/* The transaction. */
	struct queue_envelope env;
	uint64_t             declared_size;  /* SIZE= */
	uint64_t             body_size;      /* unstuffed bytes so far */
	queue_id             id;
	struct data_state    ds;
	struct hops_state    hops;           /* Received: fields in the header */
	char                *body;           /* SMTPD_BODY_BUF, during DATA only */
	size_t               bodylen;

	char                 out[SMTPD_OUT_MAX];
	size_t               outlen;
};

/* Set up a session for a connected client; conf must outlive it. */
void smtpd_init(struct smtpd *s, const struct conf *conf, const struct smtpd_client *cl,
                unsigned flags);
/* Free what the session allocated (body buffer, recipients). */
void smtpd_free(struct smtpd *s);

/* The users file (AUTH is offered only with one, on submission listeners)
 * and the recipient lists; both must outlive the session.  Either NULL. */
void smtpd_set_tables(struct smtpd *s, const struct users *users, const struct rcptdb *rcpts);

/* Send the 220 greeting (moves GREET_WAIT -> INIT); at dnsbl-stage connect,
 * a client the DNSBL verdict lists gets 554 5.7.1 naming the lists, and
 * then only QUIT is taken (GREET_WAIT -> REFUSED). */
void smtpd_greet(struct smtpd *s);

/* Consume input; returns the bytes used (the rest must be fed again). */
size_t smtpd_feed(struct smtpd *s, const char *buf, size_t len);

/* Take the next event into *ev; returns 0 when there is none.  The event
 * stays pending (and input stalls) until the matching answer below. */
int smtpd_event(struct smtpd *s, struct smtpd_event *ev);

/* Answers.  ok/err are QUEUE_OK or a queue error (enum queue_err);
 * verdict is an enum quota_verdict. */
void smtpd_quota_done(struct smtpd *s, int verdict);
void smtpd_msg_begun(struct smtpd *s, int err, queue_id id, int64_t now);
void smtpd_data_done(struct smtpd *s, int err);
void smtpd_msg_committed(struct smtpd *s, int err);
/* The answer to SMTPD_EV_MSG_END when the message is not committed after
 * all (the driver could not finish it: a DKIM signature it must carry,
 * docs/dkim.md): text is the whole reply without CRLF ("451 4.3.0 ..."),
 * reason the reject line's reason= (a static token).  The transaction
 * ends as after a failed commit; the driver drops the draft. */
void smtpd_msg_refused(struct smtpd *s, const char *text, const char *reason);
/* verdict: 0 the next hop takes the recipient (250), 1 it refused it
 * (550 5.1.1), 2 no answer (451 4.4.3: never a 550 on a timeout). */
#define SMTPD_VERIFY_OK     0
#define SMTPD_VERIFY_REJECT 1
#define SMTPD_VERIFY_TEMP   2
void smtpd_rcpt_verified(struct smtpd *s, int verdict);
/* The STARTTLS handshake succeeded: flags |= SMTPD_F_TLS, and the session
 * starts over (RFC 3207 4.2): EHLO is required again, AUTH is forgotten,
 * and a second STARTTLS gets 503. */
void smtpd_tls_started(struct smtpd *s, unsigned flags);
/* The AUTH answer; user (for OK) must outlive the session. */
void smtpd_auth_done(struct smtpd *s, enum smtpd_auth_result r, const struct user *user);

/* The tarpit's wait is over: release the held reply, take input again. */
void smtpd_delay_done(struct smtpd *s);
/* The DNSBL verdict: lists names the lists when the client is refused
 * (dnsbl_names()), else NULL or "" (not listed, or the lists did not
 * answer in time).  May come unasked; later calls change nothing. */
void smtpd_dnsbl_done(struct smtpd *s, const char *lists);

/* Pending output (up to a held reply). */
const char *smtpd_output(const struct smtpd *s, size_t *len);
void smtpd_output_ack(struct smtpd *s, size_t n);

/* Seconds of inactivity allowed in the current state (0: no timer). */
unsigned smtpd_timeout_secs(const struct smtpd *s);
/* Seconds the current state may last in all, however busy (0: no limit):
 * timeout-data-total in DATA, so a byte-a-second client cannot hold a
 * message open for ever.  The driver counts from when the state began. */
unsigned smtpd_deadline_secs(const struct smtpd *s);
/* The timer ran out: 421 and close (drops an open draft). */
void smtpd_timeout(struct smtpd *s);
/* Seconds the whole session may last (max-session-time; 0: no limit, or
 * no longer: the session is closing, or its 421 waits for a commit's
 * answer), however busy and in whatever state: the driver counts from the
 * connection, and when they have passed calls smtpd_session_expired(). */
unsigned smtpd_session_secs(const struct smtpd *s);
/* The session's time is over: "421 4.4.2 HOST Session time limit reached,
 * closing connection" and close, an open draft dropped and an answer
 * still awaited from the driver no longer wanted -- except a commit, which
 * gets its answer first and the 421 right after it. */
void smtpd_session_expired(struct smtpd *s);
/*
 * The server is stopping.  A session with no transaction open (greeting,
 * before or after one) gets "421 4.3.2" and closes now; one inside a
 * transaction (MAIL to the end of DATA, or an AUTH exchange) may finish
 * it, and gets the 421 right after its reply, and so does any command
 * that would start a new one.  With force (the server's deadline passed)
 * every session gets the 421 now: a message not yet answered is dropped
 * (it was never acknowledged) and an answer still awaited from the driver
 * is no longer wanted -- except a commit, which always gets its answer
 * first (it never spans a wake-up of the loop).
 */
void smtpd_shutdown(struct smtpd *s, int force);

/* True when the session wants the connection closed once output is flushed. */
int smtpd_closing(const struct smtpd *s);

#endif
