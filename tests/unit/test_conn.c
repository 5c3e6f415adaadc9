/*
 * tests/unit/test_conn.c -- the connection pump (mta/net/conn.h) on real
 * sockets: a non-blocking socketpair, plaintext and real TLS handshakes
 * (tls_server_new / tls_client_new with the keys of testkeys.h), a full
 * input buffer, EOF, a peer that is gone, the STARTTLS discard and the
 * implicit-TLS keep of bytes read ahead.
 */
#include "t.h"
#include "testkeys.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mta/net/conn.h"
#include "mta/net/log.h"
#include "mta/net/tls.h"

static struct ev_loop loop;

static void no_cb(struct ev_loop *l, struct ev_io *io, unsigned events)
{
	(void)l;
	(void)io;
	(void)events;
}

/* A non-blocking stream socketpair. */
static void pair(int sv[2])
{
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
}

static void plain_fill_consume(void)
{
	int sv[2];
	char in[8];
	struct conn c;
	size_t len;
	const char *p;

	pair(sv);
	conn_init(&c, &loop, sv[0], no_cb, NULL, in, sizeof in);
	CHECK(conn_fill(&c) == CONN_AGAIN);
	CHECK(write(sv[1], "hello", 5) == 5);
	CHECK(conn_fill(&c) == CONN_MOVED);
	p = conn_in(&c, &len);
	CHECK(len == 5 && memcmp(p, "hello", 5) == 0);
	conn_consume(&c, 2);
	p = conn_in(&c, &len);
	CHECK(len == 3 && memcmp(p, "llo", 3) == 0);
	/* A full buffer stops reading (nothing is lost in the kernel). */
	CHECK(write(sv[1], "0123456789", 10) == 10);
	CHECK(conn_fill(&c) == CONN_MOVED);
	conn_in(&c, &len);
	CHECK(len == 8);
	CHECK(conn_fill(&c) == CONN_AGAIN);
	CHECK(conn_watch(&c, 0, 1) == 0 && c.io.events == 0);
	conn_consume(&c, 8);
	CHECK(conn_watch(&c, 0, 1) == 0 && c.io.events == EV_READ);
	CHECK(conn_watch(&c, 1, 0) == 0 && c.io.events == EV_WRITE);
	CHECK(conn_fill(&c) == CONN_MOVED);
	p = conn_in(&c, &len);
	CHECK(len == 5 && memcmp(p, "56789", 5) == 0);
	conn_consume(&c, 99);   /* more than there is: all of it */
	conn_in(&c, &len);
	CHECK(len == 0);
	CHECK(shutdown(sv[1], SHUT_WR) == 0);
	CHECK(conn_fill(&c) == CONN_EOF);
	conn_close(&c);
	CHECK(c.io.fd == -1);
	conn_close(&c);         /* twice is safe */
	close(sv[1]);
}

static void plain_write_and_broken_peer(void)
{
	int sv[2];
	char in[16], buf[16];
	struct conn c;
	ssize_t n;
	int i;

	pair(sv);
	conn_init(&c, &loop, sv[0], no_cb, NULL, in, sizeof in);
	CHECK(conn_write(&c, "abc", 3) == 3);
	CHECK(conn_flush(&c) == CONN_AGAIN);   /* plaintext: nothing held back */
	CHECK(conn_out_pending(&c) == 0);
	CHECK(read(sv[1], buf, sizeof buf) == 3 && memcmp(buf, "abc", 3) == 0);
	close(sv[1]);
	for (i = 0, n = 0; i < 4 && n >= 0; i++)
		n = conn_write(&c, "x", 1);
	CHECK(n == -1 && (c.err == EPIPE || c.err == ECONNRESET));
	conn_close(&c);
}

/* Drive both ends until neither moves; returns the rounds taken. */
static int pump_both(struct conn *a, struct conn *b)
{
	int rounds = 0, moved = 1;

	while (moved && rounds < 200) {
		moved = 0;
		rounds++;
		if (conn_flush(a) == CONN_MOVED)
			moved = 1;
		if (conn_flush(b) == CONN_MOVED)
			moved = 1;
		if (conn_fill(a) == CONN_MOVED)
			moved = 1;
		if (conn_fill(b) == CONN_MOVED)
			moved = 1;
		(void)conn_tls_check(a);
		(void)conn_tls_check(b);
	}
	return rounds;
}

static struct tls_creds *creds(void)
{
	char err[256] = "";
	struct tls_creds *cr = tls_creds_load(ec_cert, strlen(ec_cert), "cert", ec_key,
	                                      strlen(ec_key), "key", err, sizeof err);

	if (cr == NULL)
		fprintf(stderr, "tls_creds_load: %s\n", err);
	return cr;
}

/* Two connected ends, s (the server's) and c, each with its buffer. */
static void two_ends(struct conn *s, char *sin, size_t sincap, struct conn *c, char *cin,
                     size_t cincap)
{
	int sv[2];

	pair(sv);
	conn_init(s, &loop, sv[0], no_cb, NULL, sin, sincap);
	conn_init(c, &loop, sv[1], no_cb, NULL, cin, cincap);
}

/* A handshake and a line each way, then close_notify. */
static void tls_round_trip(void)
{
	char sin[64], cin[64];
	struct conn s, c;
	struct tls_creds *cr = creds();
	const char *p;
	size_t len;

	CHECK(cr != NULL);
	if (cr == NULL)
		return;
	two_ends(&s, sin, sizeof sin, &c, cin, sizeof cin);
	conn_tls_start(&s, tls_server_new(cr, 0), 1);
	conn_tls_start(&c, tls_client_new("keyrole.test", NULL), 0);
	CHECK(conn_tls_check(&s) == CONN_TLS_HANDSHAKE);
	CHECK(conn_write(&c, "early", 5) == 0);   /* no application data before the keys */
	pump_both(&s, &c);
	CHECK(conn_tls_check(&s) == CONN_TLS_OPEN && conn_tls_check(&c) == CONN_TLS_OPEN);
	CHECK(conn_write(&c, "EHLO x\r\n", 8) == 8);
	CHECK(conn_write(&s, "250 ok\r\n", 8) == 8);
	pump_both(&s, &c);
	p = conn_in(&s, &len);
	CHECK(len == 8 && memcmp(p, "EHLO x\r\n", 8) == 0);
	p = conn_in(&c, &len);
	CHECK(len == 8 && memcmp(p, "250 ok\r\n", 8) == 0);
	conn_tls_close(&c);
	pump_both(&s, &c);
	CHECK(conn_tls_check(&s) == CONN_TLS_CLOSED);
	conn_close(&s);
	conn_close(&c);
	tls_creds_unref(cr);
}

/* STARTTLS: what the client pipelined after the command is dropped and
 * counted; implicit TLS after bytes read ahead: they are the handshake. */
static void tls_start_discard_and_keep(void)
{
	char sin[4096], cin[64];
	struct conn s, c;
	struct tls_creds *cr = creds();
	size_t len;

	CHECK(cr != NULL);
	if (cr == NULL)
		return;
	two_ends(&s, sin, sizeof sin, &c, cin, sizeof cin);
	CHECK(write(c.io.fd, "MAIL FROM:<a@b>\r\n", 17) == 17);
	CHECK(conn_fill(&s) == CONN_MOVED);
	CHECK(conn_tls_start(&s, tls_server_new(cr, 0), 0) == 17);
	conn_in(&s, &len);
	CHECK(len == 0);
	conn_close(&s);
	conn_close(&c);

	two_ends(&s, sin, sizeof sin, &c, cin, sizeof cin);
	conn_tls_start(&c, tls_client_new("keyrole.test", NULL), 0);
	CHECK(conn_flush(&c) == CONN_MOVED);       /* the ClientHello */
	CHECK(conn_fill(&s) == CONN_MOVED);        /* read as plaintext, ahead */
	conn_in(&s, &len);
	CHECK(len > 0);
	CHECK(conn_tls_start(&s, tls_server_new(cr, 0), 1) == 0);
	pump_both(&s, &c);
	CHECK(conn_tls_check(&s) == CONN_TLS_OPEN && conn_tls_check(&c) == CONN_TLS_OPEN);
	conn_close(&s);
	conn_close(&c);
	tls_creds_unref(cr);
}

/* A client that is not TLS at all: the handshake fails, said once. */
static void tls_garbage_fails(void)
{
	int sv[2];
	char sin[64];
	struct conn s;
	struct tls_creds *cr = creds();

	CHECK(cr != NULL);
	if (cr == NULL)
		return;
	pair(sv);
	conn_init(&s, &loop, sv[0], no_cb, NULL, sin, sizeof sin);
	conn_tls_start(&s, tls_server_new(cr, 0), 1);
	CHECK(write(sv[1], "EHLO plain\r\n\r\n\r\n", 16) == 16);
	CHECK(conn_fill(&s) == CONN_MOVED);
	CHECK(conn_tls_check(&s) == CONN_TLS_FAILED);
	CHECK(conn_write(&s, "x", 1) == 0);
	conn_close(&s);
	close(sv[1]);
	tls_creds_unref(cr);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	log_init("test_conn", LOG_WARN);
	if (ev_init(&loop) < 0)
		return 1;
	RUN(plain_fill_consume);
	RUN(plain_write_and_broken_peer);
	RUN(tls_round_trip);
	RUN(tls_start_discard_and_keep);
	RUN(tls_garbage_fails);
	ev_free(&loop);
	return t_main_end();
}
