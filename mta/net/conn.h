/*
 * mta/net/conn.h -- one connection's socket, optional TLS engine and input
 * buffer: the only code that moves a session's bytes between a socket and
 * TLS (the smtp role's sessions, the SMTP client, hence the recipient
 * probe, which is a client session).  BearSSL's br_sslio_* and OpenSMTPD's
 * io.c are the models: the pump is written once, every caller uses it.
 *
 * A struct conn knows no protocol.  Its owner drives a session that does
 * no I/O (mta/smtp/smtpd.h, mta/smtp/smtpc.h) with it:
 *
 *   events EV_READ:  conn_fill()          socket -> in (through TLS if on)
 *   the session:     conn_in()/conn_consume()  its input, as much as it takes
 *                    conn_write()         its output -> socket (or TLS)
 *                    conn_flush()         TLS records -> socket
 *   then:            conn_watch()         ask the loop for what is needed
 *
 * Memory: the caller owns the struct conn and the input buffer (given to
 * conn_init(), at most incap bytes are buffered: a full buffer stops
 * reading until the owner consumes); the TLS engine, once given to
 * conn_tls_start(), is the connection's and conn_close() frees it.
 * Nothing here allocates.
 *
 * Errors: a call that fails returns CONN_ERROR and leaves the errno in
 * c->err; EINTR is retried and EAGAIN is "nothing now", the same way in
 * every call.  A TLS failure is not an I/O error: conn_tls_check() says it.
 */
#ifndef MOAT_MTA_NET_CONN_H
#define MOAT_MTA_NET_CONN_H

#include <stddef.h>
#include <sys/types.h>

#include "mta/net/ev.h"
#include "mta/net/tls.h"

enum conn_rc {
	CONN_AGAIN = 0,     /* nothing moved now: wait for the socket */
	CONN_MOVED = 1,     /* bytes moved */
	CONN_EOF = -1,      /* the peer closed (conn_fill) */
	CONN_ERROR = -2     /* the socket failed: c->err */
};

/* What conn_tls_check() finds. */
enum conn_tls {
	CONN_TLS_NONE = 0,  /* plaintext: no engine */
	CONN_TLS_HANDSHAKE, /* keys not yet agreed: no application data flows */
	CONN_TLS_READY,     /* the handshake finished just now (said once) */
	CONN_TLS_OPEN,      /* application data flows */
	CONN_TLS_CLOSED,    /* closed cleanly (close_notify) after the handshake */
	CONN_TLS_FAILED     /* the handshake or a record failed: tls_error() */
};

struct conn {
	struct ev_io    io;          /* io.fd is the socket, -1 when closed */
	struct ev_loop *loop;
	struct tls     *tls;         /* NULL: plaintext */
	char           *in;          /* plaintext read, not yet consumed */
	size_t          inlen, incap;
	int             err;         /* errno of the last CONN_ERROR */
	unsigned        handshaking : 1;
	unsigned        closing : 1; /* close_notify queued */
};

/* Take over fd (non-blocking) in loop l; cb(l, &c->io, events) with arg
 * is called when it is ready.  in[0..incap) is the caller's buffer. */
void conn_init(struct conn *c, struct ev_loop *l, int fd, ev_io_cb *cb, void *arg, char *in,
               size_t incap);

/* Read once from the socket: plaintext into in, or ciphertext into the
 * engine (and what it decrypts into in).  CONN_MOVED, CONN_AGAIN (also
 * when there is no room: consume first), CONN_EOF or CONN_ERROR. */
int conn_fill(struct conn *c);

/* Plaintext the engine decrypted, into in: 1 if any moved, else 0. */
int conn_pull(struct conn *c);

/* The buffered input (NULL/0 while a handshake runs: nothing buffered
 * then belongs to the session). */
const char *conn_in(const struct conn *c, size_t *len);
/* The session used the first n bytes of conn_in(). */
void conn_consume(struct conn *c, size_t n);

/* Send plaintext: to the socket, or into the engine (then conn_flush()).
 * Returns the bytes taken (0: the socket or the engine is full, or a
 * handshake runs), or -1 (CONN_ERROR's case; c->err). */
ssize_t conn_write(struct conn *c, const void *p, size_t len);

/* Send what the engine has for the socket.  CONN_MOVED, CONN_AGAIN
 * (nothing to send, or the socket is full) or CONN_ERROR. */
int conn_flush(struct conn *c);

/* 1 while bytes wait to go out (TLS records not yet sent), else 0. */
int conn_out_pending(const struct conn *c);

/* Ask the loop for EV_WRITE when out_pending (the session's own output
 * waits) or TLS records wait, and for EV_READ when want_in and there is
 * room to read into (and the engine takes records).  0, or -1 (errno). */
int conn_watch(struct conn *c, int out_pending, int want_in);

/*
 * Start TLS with engine t (taken over).  After STARTTLS the plaintext the
 * peer sent ahead (pipelined after the command) must never reach the TLS
 * session (CVE-2011-0411): keep_buffered 0 discards it and returns how
 * many bytes went.  With keep_buffered 1 what is buffered is the
 * handshake's first bytes (implicit TLS after a PROXY header) and goes
 * into the engine; returns 0.
 */
size_t conn_tls_start(struct conn *c, struct tls *t, int keep_buffered);

/* Where TLS stands (see enum conn_tls); CONN_TLS_READY once, then OPEN. */
enum conn_tls conn_tls_check(struct conn *c);

/* Queue close_notify (TLS) once; keep flushing.  Plaintext: nothing. */
void conn_tls_close(struct conn *c);

/* Leave the loop, close the socket, free the engine.  Safe twice. */
void conn_close(struct conn *c);

#endif
