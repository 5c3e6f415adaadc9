/* mta/net/conn.c -- a connection's socket, TLS and input; see conn.h */
#include "mta/net/conn.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void conn_init(struct conn *c, struct ev_loop *l, int fd, ev_io_cb *cb, void *arg, char *in,
               size_t incap)
{
	memset(c, 0, sizeof *c);
	c->loop = l;
	c->io.fd = fd;
	c->io.cb = cb;
	c->io.arg = arg;
	c->in = in;
	c->incap = incap;
}

/* recv() with EINTR retried: bytes, 0 at EOF, -1 with errno (EAGAIN too). */
static ssize_t recv_some(int fd, void *buf, size_t cap)
{
	for (;;) {
		ssize_t n = recv(fd, buf, cap, 0);

		if (n >= 0 || errno != EINTR)
			return n;
	}
}

/* send() with EINTR retried: bytes, 0 when the socket is full, -1 on an
 * error (errno). */
static ssize_t send_some(int fd, const void *buf, size_t len)
{
	for (;;) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n >= 0)
			return n;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

int conn_fill(struct conn *c)
{
	unsigned char *buf;
	size_t cap;
	ssize_t n;

	if (c->tls != NULL) {
		buf = tls_net_in(c->tls, &cap);
	} else {
		buf = (unsigned char *)c->in + c->inlen;
		cap = c->incap - c->inlen;
	}
	if (buf == NULL || cap == 0)
		return CONN_AGAIN;
	n = recv_some(c->io.fd, buf, cap);
	if (n == 0)
		return CONN_EOF;
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return CONN_AGAIN;
		c->err = errno;
		return CONN_ERROR;
	}
	if (c->tls != NULL) {
		tls_net_in_done(c->tls, (size_t)n);
		conn_pull(c);
	} else {
		c->inlen += (size_t)n;
	}
	return CONN_MOVED;
}

int conn_pull(struct conn *c)
{
	int moved = 0;

	if (c->tls == NULL || c->handshaking)
		return 0;
	while (c->inlen < c->incap) {
		size_t len;
		const unsigned char *p = tls_app_in(c->tls, &len);

		if (p == NULL || len == 0)
			break;
		if (len > c->incap - c->inlen)
			len = c->incap - c->inlen;
		memcpy(c->in + c->inlen, p, len);
		c->inlen += len;
		tls_app_in_done(c->tls, len);
		moved = 1;
	}
	return moved;
}

const char *conn_in(const struct conn *c, size_t *len)
{
	if (c->handshaking) {
		*len = 0;
		return NULL;
	}
	*len = c->inlen;
	return c->in;
}

void conn_consume(struct conn *c, size_t n)
{
	if (n > c->inlen)
		n = c->inlen;
	memmove(c->in, c->in + n, c->inlen - n);
	c->inlen -= n;
}

ssize_t conn_write(struct conn *c, const void *p, size_t len)
{
	ssize_t n;

	if (len == 0)
		return 0;
	if (c->tls != NULL) {
		if (c->handshaking || c->closing)
			return 0;
		return (ssize_t)tls_app_write(c->tls, p, len);
	}
	n = send_some(c->io.fd, p, len);
	if (n < 0)
		c->err = errno;
	return n;
}

int conn_flush(struct conn *c)
{
	int moved = CONN_AGAIN;

	if (c->tls == NULL)
		return CONN_AGAIN;
	/* Whatever the session wrote goes out as records now, not when the
	 * engine's buffer happens to fill. */
	if (!c->handshaking && !c->closing)
		tls_app_flush(c->tls);
	for (;;) {
		size_t len;
		const unsigned char *rec = tls_net_out(c->tls, &len);
		ssize_t n;

		if (rec == NULL || len == 0)
			return moved;
		n = send_some(c->io.fd, rec, len);
		if (n < 0) {
			c->err = errno;
			return CONN_ERROR;
		}
		if (n == 0)
			return moved;
		tls_net_out_done(c->tls, (size_t)n);
		moved = CONN_MOVED;
	}
}

int conn_out_pending(const struct conn *c)
{
	size_t len = 0;

	if (c->tls != NULL)
		tls_net_out(c->tls, &len);
	return len > 0;
}

int conn_watch(struct conn *c, int out_pending, int want_in)
{
	unsigned want = 0;

	/* (During a handshake the session's output waits for the keys, not
	 * for the socket.) */
	if ((out_pending && !c->handshaking) || conn_out_pending(c))
		want |= EV_WRITE;
	if (want_in && c->inlen < c->incap) {
		size_t cap = 1;

		/* The engine takes no records while its plaintext waits for
		 * room in ours: reading would only fill the kernel's buffer. */
		if (c->tls != NULL)
			tls_net_in(c->tls, &cap);
		if (cap > 0)
			want |= EV_READ;
	}
	return ev_io_set(c->loop, &c->io, want);
}

size_t conn_tls_start(struct conn *c, struct tls *t, int keep_buffered)
{
	size_t dropped = 0;

	c->tls = t;
	c->handshaking = 1;
	if (!keep_buffered) {
		dropped = c->inlen;
	} else {
		size_t off = 0;

		while (off < c->inlen) {
			size_t cap;
			unsigned char *buf = tls_net_in(t, &cap);

			if (buf == NULL || cap == 0)
				break;  /* more than a record's worth ahead: the rest is dropped */
			if (cap > c->inlen - off)
				cap = c->inlen - off;
			memcpy(buf, c->in + off, cap);
			tls_net_in_done(t, cap);
			off += cap;
		}
		dropped = c->inlen - off;
	}
	c->inlen = 0;
	return keep_buffered ? 0 : dropped;
}

enum conn_tls conn_tls_check(struct conn *c)
{
	enum tls_state st;

	if (c->tls == NULL)
		return CONN_TLS_NONE;
	st = tls_state(c->tls);
	if (st == TLS_FAILED || (st == TLS_CLOSED && c->handshaking))
		return CONN_TLS_FAILED;
	if (st == TLS_CLOSED)
		return CONN_TLS_CLOSED;
	if (!c->handshaking)
		return CONN_TLS_OPEN;
	if (st != TLS_OPEN)
		return CONN_TLS_HANDSHAKE;
	c->handshaking = 0;
	conn_pull(c);
	return CONN_TLS_READY;
}

void conn_tls_close(struct conn *c)
{
	if (c->tls == NULL || c->closing)
		return;
	c->closing = 1;
	tls_close(c->tls);
}

void conn_close(struct conn *c)
{
	if (c->io.fd >= 0) {
		ev_io_del(c->loop, &c->io);
		close(c->io.fd);
		c->io.fd = -1;
	}
	tls_free(c->tls);
	c->tls = NULL;
	c->handshaking = 0;
	c->closing = 0;
	c->inlen = 0;
}
