/* mta/ops/httpd.c -- the metrics endpoint's socket; see httpd.h */
#include "mta/ops/httpd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mta/net/listen.h"

struct hconn {
	struct ev_io    io;
	struct ev_timer timer;
	struct ops_wait wait;         /* for the owner's data (its gate) */
	struct httpd   *h;
	struct hconn   *prev, *next;
	char           *out;          /* head + body, once answered */
	size_t          outlen, outoff;
	size_t          inlen;
	char            in[HTTP_HEAD_MAX];
};

struct httpd {
	struct ev_loop      *loop;
	struct ev_io         io;
	struct conf_listener addr;
	httpd_fn            *fn;
	ops_gate_fn         *gate;
	void                *arg;
	struct hconn        *conns;
	unsigned             nconns;
};

/* Connections are freed inside their own callbacks: each descriptor shows
 * up at most once in an epoll batch, and its timer is stopped first. */
static void hconn_free(struct hconn *c)
{
	struct httpd *h = c->h;

	ops_wait_leave(&c->wait);
	ev_io_del(h->loop, &c->io);
	ev_timer_stop(h->loop, &c->timer);
	close(c->io.fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	h->nconns--;
	free(c->out);
	free(c);
}

/* Build the whole answer and start writing it. */
static void hconn_answer(struct hconn *c, const struct http_req *req, int status)
{
	struct httpd_reply rep = { status, "text/plain; charset=utf-8", NULL, 0 };
	char head[512], text[64];
	size_t hlen, blen;
	const char *body;

	if (status == 200)
		c->h->fn(c->h->arg, req, &rep);
	body = rep.body;
	blen = rep.len;
	if (body == NULL) {
		int n = snprintf(text, sizeof text, "%d %s\n", rep.status, http_reason(rep.status));

		body = text;
		blen = n > 0 ? (size_t)n : 0;
	}
	hlen = http_response_head(rep.status, rep.content_type, blen, head, sizeof head);
	if (hlen >= sizeof head)
		hlen = sizeof head - 1;
	if (req != NULL && req->method == HTTP_HEAD)
		blen = 0;
	c->out = malloc(hlen + blen);
	if (c->out != NULL) {
		memcpy(c->out, head, hlen);
		memcpy(c->out + hlen, body, blen);
		c->outlen = hlen + blen;
	}
	free(rep.body);
	if (c->out == NULL) {
		hconn_free(c);
		return;
	}
	if (ev_io_set(c->h->loop, &c->io, EV_WRITE) < 0)
		hconn_free(c);
}

static void hconn_write(struct hconn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n = send(c->io.fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0)
			break;
		c->outoff += (size_t)n;
	}
	(void)shutdown(c->io.fd, SHUT_WR);
	hconn_free(c);
}

/* The owner's data came: answer the request read (it parses again). */
static void hconn_go(struct ops_wait *w)
{
	struct hconn *c = (struct hconn *)((char *)w - offsetof(struct hconn, wait));
	struct http_req req;

	if (http_req_parse(c->in, c->inlen, &req) >= 0)
		hconn_answer(c, &req, 200);
	else
		hconn_free(c);
}

static void hconn_read(struct hconn *c)
{
	struct http_req req;
	ssize_t n = recv(c->io.fd, c->in + c->inlen, sizeof c->in - c->inlen, 0);
	int r;

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		hconn_free(c); /* gone before asking */
		return;
	}
	c->inlen += (size_t)n;
	r = http_req_parse(c->in, c->inlen, &req);
	if (r == -2)
		return; /* the buffer is HTTP_HEAD_MAX: a full one is 431, never -2 */
	if (r >= 0 && c->h->gate != NULL) {
		c->wait.go = hconn_go;
		if (!c->h->gate(c->h->arg, &c->wait)) {
			(void)ev_io_set(c->h->loop, &c->io, 0);   /* nothing more is read */
			return;
		}
	}
	hconn_answer(c, r >= 0 ? &req : NULL, r >= 0 ? 200 : req.status);
}

static void hconn_cb(struct ev_loop *l, struct ev_io *io, unsigned events)
{
	struct hconn *c = io->arg;

	(void)l;
	if (c->out != NULL) {
		if (events & EV_WRITE)
			hconn_write(c);
	} else if (events & EV_READ) {
		hconn_read(c);
	}
}

static void hconn_timer_cb(struct ev_loop *l, struct ev_timer *t)
{
	struct hconn *c = t->arg;

	if (c->out != NULL) {
		hconn_free(c); /* the client does not read its answer */
		return;
	}
	ops_wait_leave(&c->wait);
	hconn_answer(c, NULL, 408);
	if (c->out != NULL)
		ev_timer_start(l, &c->timer, HTTPD_TIMEOUT_MS);
}

static void httpd_accept_cb(struct ev_loop *l, struct ev_io *io, unsigned events)
{
	struct httpd *h = io->arg;

	(void)events;
	for (int i = 0; i < HTTPD_CONNS_MAX; i++) {
		struct hconn *c;
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		if (h->nconns >= HTTPD_CONNS_MAX || (c = calloc(1, sizeof *c)) == NULL) {
			close(fd);
			continue;
		}
		c->h = h;
		c->io.fd = fd;
		c->io.cb = hconn_cb;
		c->io.arg = c;
		c->timer.cb = hconn_timer_cb;
		c->timer.arg = c;
		c->next = h->conns;
		if (h->conns)
			h->conns->prev = c;
		h->conns = c;
		h->nconns++;
		if (ev_io_set(l, &c->io, EV_READ) < 0) {
			hconn_free(c);
			continue;
		}
		ev_timer_start(l, &c->timer, HTTPD_TIMEOUT_MS);
	}
}

struct httpd *httpd_new(struct ev_loop *l, const struct conf_listener *addr, httpd_fn *fn,
                        ops_gate_fn *gate, void *arg, char *err, size_t errcap)
{
	struct httpd *h = calloc(1, sizeof *h);
	int fd;

	if (h == NULL) {
		snprintf(err, errcap, "metrics: out of memory");
		return NULL;
	}
	fd = listen_open(addr, err, errcap);
	if (fd < 0) {
		free(h);
		return NULL;
	}
	h->loop = l;
	h->addr = *addr;
	h->fn = fn;
	h->gate = gate;
	h->arg = arg;
	h->io.fd = fd;
	h->io.cb = httpd_accept_cb;
	h->io.arg = h;
	if (ev_io_set(l, &h->io, EV_READ) < 0) {
		snprintf(err, errcap, "metrics: epoll: %s", strerror(errno));
		close(fd);
		free(h);
		return NULL;
	}
	return h;
}

int httpd_is_at(const struct httpd *h, const struct conf_listener *addr)
{
	return h != NULL && listen_same(&h->addr, addr);
}

/* Connections are closed here but freed only by httpd_free(): an event of
 * the current batch may still name one (the loop skips it: not added). */
void httpd_stop(struct httpd *h)
{
	if (h == NULL || h->io.fd < 0)
		return;
	for (struct hconn *c = h->conns; c != NULL; c = c->next) {
		ev_io_del(h->loop, &c->io);
		ev_timer_stop(h->loop, &c->timer);
		close(c->io.fd);
		c->io.fd = -1;
	}
	ev_io_del(h->loop, &h->io);
	close(h->io.fd);
	h->io.fd = -1;
}

void httpd_free(struct httpd *h)
{
	if (h == NULL)
		return;
	httpd_stop(h);
	while (h->conns) {
		struct hconn *c = h->conns;

		h->conns = c->next;
		free(c->out);
		free(c);
	}
	free(h);
}
