/* mta/ops/control.c -- the control socket; see control.h */
#include "mta/ops/control.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "mta/net/log.h"

#define VERBS_MAX 16

struct verb {
	char         name[32];
	size_t       nargs;
	control_fn  *fn;
	void        *arg;
	ops_gate_fn *gate;       /* NULL: answered at once */
	void        *gate_arg;
};

struct ctl_conn {
	struct control  *c;
	struct ctl_conn *next;
	struct ev_io     io;
	struct ev_timer  timer;
	struct ops_wait  wait;      /* for its verb's gate */
	const struct verb *verb;    /* the verb waiting */
	char             in[CTL_LINE_MAX + 2];
	size_t           inlen;
	int              dead;
};

struct control {
	struct ev_loop  *loop;
	struct ev_io     lio;
	struct ev_timer  reaper;
	char             path[sizeof ((struct sockaddr_un *)0)->sun_path];
	struct verb      verbs[VERBS_MAX];
	size_t           nverbs;
	struct ctl_conn *conns;
};

static int sun_path(const char *dir, const char *name, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	if ((size_t)snprintf(sa->sun_path, sizeof sa->sun_path, "%s/%s", dir, name)
	    >= sizeof sa->sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* Close a connection now; free it in the timer phase. */
static void conn_close(struct ctl_conn *k)
{
	if (k->dead)
		return;
	k->dead = 1;
	ops_wait_leave(&k->wait);
	ev_io_del(k->c->loop, &k->io);
	ev_timer_stop(k->c->loop, &k->timer);
	close(k->io.fd);
	ev_timer_start(k->c->loop, &k->c->reaper, 0);
}

static void reaper_cb(struct ev_loop *l, struct ev_timer *t)
{
	struct control *c = t->arg;
	struct ctl_conn **p = &c->conns;

	(void)l;
	while (*p) {
		struct ctl_conn *k = *p;
		if (k->dead) {
			*p = k->next;
			free(k);
		} else {
			p = &k->next;
		}
	}
}

/* Answer code and text ("a\nb" -> "CODE-a", "CODE b"), then close. */
static void answer(struct ctl_conn *k, int code, const char *text)
{
	char out[CONTROL_REPLY_MAX + 64];
	size_t n = 0;
	const char *p = text;

	do {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		int last = nl == NULL || nl[1] == '\0';
		int w = snprintf(out + n, sizeof out - n, "%03d%c%.*s\n", code, last ? ' ' : '-',
		                 (int)len, p);
		if (w < 0 || (size_t)w >= sizeof out - n)
			break;
		n += (size_t)w;
		if (last)
			break;
		p = nl + 1;
	} while (1);
	/* A few KiB into a fresh unix socket: it fits its buffer. */
	(void)!send(k->io.fd, out, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	conn_close(k);
}

/* Call the verb's handler and answer. */
static void call(struct ctl_conn *k, const struct verb *v, const struct ctl_req *req)
{
	char text[CONTROL_REPLY_MAX];
	int code;

	text[0] = '\0';
	code = v->fn(v->arg, req, text, sizeof text);
	answer(k, code, text[0] ? text : "done");
}

/* The gate let the waiting request go: parse it again, answer it. */
static void go(struct ops_wait *w)
{
	struct ctl_conn *k = (struct ctl_conn *)((char *)w - offsetof(struct ctl_conn, wait));
	char *lf = memchr(k->in, '\n', k->inlen);
	struct ctl_req req;

	if (lf != NULL && ctl_parse(k->in, (size_t)(lf - k->in), &req) == 0)
		call(k, k->verb, &req);
	else
		conn_close(k);
}

static void run(struct ctl_conn *k, const char *line, size_t len)
{
	struct control *c = k->c;
	struct ctl_req req;
	char text[CONTROL_REPLY_MAX];

	if (ctl_parse(line, len, &req) != 0) {
		answer(k, CTL_BAD, "bad request line");
		return;
	}
	for (size_t i = 0; i < c->nverbs; i++) {
		struct verb *v = &c->verbs[i];
		if (!ctl_word_is(&req.verb, v->name))
			continue;
		if (req.nargs != v->nargs) {
			snprintf(text, sizeof text, "%s takes %zu argument%s", v->name, v->nargs,
			         v->nargs == 1 ? "" : "s");
			answer(k, CTL_BAD, text);
			return;
		}
		if (v->gate != NULL) {
			k->verb = v;
			k->wait.go = go;
			if (!v->gate(v->gate_arg, &k->wait)) {
				(void)ev_io_set(c->loop, &k->io, 0);   /* nothing more is read */
				return;
			}
		}
		call(k, v, &req);
		return;
	}
	answer(k, CTL_BAD, "unknown verb");
}

static void conn_cb(struct ev_loop *l, struct ev_io *io, unsigned events)
{
	struct ctl_conn *k = io->arg;
	ssize_t n;
	char *lf;

	(void)l;
	(void)events;
	n = recv(io->fd, k->in + k->inlen, sizeof k->in - k->inlen, 0);
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		conn_close(k);
		return;
	}
	k->inlen += (size_t)n;
	lf = memchr(k->in, '\n', k->inlen);
	if (lf != NULL) {
		run(k, k->in, (size_t)(lf - k->in));
		return;
	}
	if (k->inlen == sizeof k->in)
		answer(k, CTL_BAD, "request line too long");
}

static void conn_timeout(struct ev_loop *l, struct ev_timer *t)
{
	(void)l;
	conn_close(t->arg);
}

static void accept_cb(struct ev_loop *l, struct ev_io *io, unsigned events)
{
	struct control *c = io->arg;

	(void)events;
	for (int i = 0; i < 16; i++) {
		struct ucred cred;
		socklen_t clen = sizeof cred;
		struct ctl_conn *k;
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 ||
		    (cred.uid != 0 && cred.uid != geteuid())) {
			log_warn("msg=\"control: refused a peer of another user\"");
			close(fd);
			continue;
		}
		if ((k = calloc(1, sizeof *k)) == NULL) {
			close(fd);
			continue;
		}
		k->c = c;
		k->io.fd = fd;
		k->io.cb = conn_cb;
		k->io.arg = k;
		k->timer.cb = conn_timeout;
		k->timer.arg = k;
		k->next = c->conns;
		c->conns = k;
		if (ev_io_set(l, &k->io, EV_READ) < 0) {
			conn_close(k);
			continue;
		}
		ev_timer_start(l, &k->timer, CONTROL_TIMEOUT_MS);
	}
}

struct control *control_new(struct ev_loop *l, const char *dir, const char *name, char *err,
                            size_t errcap)
{
	struct control *c = calloc(1, sizeof *c);
	struct sockaddr_un sa;
	mode_t old;
	int fd;

	if (c == NULL) {
		snprintf(err, errcap, "control: out of memory");
		return NULL;
	}
	c->loop = l;
	c->reaper.cb = reaper_cb;
	c->reaper.arg = c;
	c->lio.fd = -1;
	if (sun_path(dir, name, &sa) < 0) {
		snprintf(err, errcap, "control socket %s/%s: path too long for a unix socket", dir,
		         name);
		free(c);
		return NULL;
	}
	memcpy(c->path, sa.sun_path, sizeof c->path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	/* We hold the queue's writer lock: a socket left here is stale. */
	unlink(c->path);
	old = umask(0077);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		umask(old);
		goto fail;
	}
	umask(old);
	if (chmod(c->path, 0600) < 0 || listen(fd, 16) < 0)
		goto fail;
	c->lio.fd = fd;
	c->lio.cb = accept_cb;
	c->lio.arg = c;
	if (ev_io_set(l, &c->lio, EV_READ) < 0)
		goto fail;
	return c;
fail:
	snprintf(err, errcap, "control socket %s: %s", c->path, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(c);
	return NULL;
}

int control_register(struct control *c, const char *verb, size_t nargs, control_fn *fn,
                     void *arg)
{
	struct verb *v;

	if (c->nverbs == VERBS_MAX || strlen(verb) >= sizeof v->name)
		return -1;
	v = &c->verbs[c->nverbs++];
	snprintf(v->name, sizeof v->name, "%s", verb);
	v->nargs = nargs;
	v->fn = fn;
	v->arg = arg;
	v->gate = NULL;
	return 0;
}

int control_register_gated(struct control *c, const char *verb, size_t nargs, control_fn *fn,
                           void *arg, ops_gate_fn *gate, void *gate_arg)
{
	if (control_register(c, verb, nargs, fn, arg) != 0)
		return -1;
	c->verbs[c->nverbs - 1].gate = gate;
	c->verbs[c->nverbs - 1].gate_arg = gate_arg;
	return 0;
}

void control_remove(const char *dir, const char *name)
{
	struct sockaddr_un sa;

	if (sun_path(dir, name, &sa) == 0)
		unlink(sa.sun_path);
}

void control_keep_path(struct control *c)
{
	c->path[0] = 0;
}

void control_free(struct control *c)
{
	if (c == NULL)
		return;
	if (c->lio.fd >= 0) {
		ev_io_del(c->loop, &c->lio);
		close(c->lio.fd);
		if (c->path[0])
			unlink(c->path);
	}
	for (struct ctl_conn *k = c->conns; k; k = k->next)
		conn_close(k);
	ev_timer_stop(c->loop, &c->reaper);
	reaper_cb(c->loop, &c->reaper);
	free(c);
}

/* ---- the client ---- */

static int64_t ms_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int control_call(const char *dir, const char *name, const char *request, char *text, size_t cap,
                 int timeout_ms)
{
	struct sockaddr_un sa;
	char buf[CONTROL_REPLY_MAX + 64];
	size_t have = 0, tl = 0;
	int64_t deadline = ms_now() + timeout_ms;
	int fd, code = -1;
	size_t reqlen = strlen(request);

	if (cap > 0)
		text[0] = '\0';
	if (sun_path(dir, name, &sa) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	if (send(fd, request, reqlen, MSG_NOSIGNAL) != (ssize_t)reqlen ||
	    send(fd, "\n", 1, MSG_NOSIGNAL) != 1) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		int64_t left = deadline - ms_now();
		ssize_t n;
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) {
			close(fd);
			errno = ETIMEDOUT;
			return -1;
		}
		n = recv(fd, buf + have, sizeof buf - 1 - have, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
		if (have == sizeof buf - 1)
			break;
	}
	close(fd);
	buf[have] = '\0';
	/* Lines "CODE-text" ... "CODE text": the code of the last, the texts. */
	for (char *p = buf; *p; ) {
		char *nl = strchr(p, '\n');
		size_t len;
		if (nl == NULL || nl - p < 4 || (p[3] != ' ' && p[3] != '-') ||
		    p[0] < '1' || p[0] > '5' || p[1] < '0' || p[1] > '9' || p[2] < '0' || p[2] > '9')
			break;
		len = (size_t)(nl - p) - 4;
		if (tl > 0 && tl + 1 < cap)
			text[tl++] = '\n';
		for (size_t i = 0; i < len && tl + 1 < cap; i++)
			text[tl++] = p[4 + i];
		if (cap > 0)
			text[tl] = '\0';
		if (p[3] == ' ') {
			code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
			break;
		}
		p = nl + 1;
	}
	if (code < 0)
		errno = EPROTO;
	return code;
}
