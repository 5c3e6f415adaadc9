/* mta/net/dkim_client.c -- the DKIM link to a key role; see dkim_client.h */
#include "mta/net/dkim_client.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mta/net/log.h"

/* The longest request: a DKIM_SIGN_REQ with the longest names. */
#define DKC_REQ_MAX (KEYMSG_HDR + 2 + KEYMSG_DOMAIN_MAX + 2 + KEYMSG_SEL_MAX + KEYMSG_DKIM_HASH)

/* A request on the link: sent (the first nsent of the ring) or waiting for
 * the socket to take it.  cb NULL: nobody waits for the answer any more
 * (cancelled, or out of patience); it is still read when it comes. */
struct slot {
	uint64_t      ticket;
	uint32_t      id;
	uint32_t      want;          /* the reply's type */
	int64_t       sent;          /* monotonic ms: asked (patience counts from here) */
	dkc_fn       *cb;
	void         *arg;
	size_t        len;
	unsigned char pkt[DKC_REQ_MAX];
};

/* A request that will never be answered: called back from the timer. */
struct lost {
	uint64_t    ticket;
	dkc_fn     *cb;
	void       *arg;
	const char *why;
};

struct dkc {
	struct ev_loop *loop;
	struct ev_io    io;          /* io.fd: the link, -1 none */
	struct ev_timer timer;       /* the oldest patience; 0 ms for the lost */
	struct slot    *ring;        /* oldest first */
	size_t          head, count, nsent, cap;
	struct lost    *lost;
	size_t          nlost, caplost;
	uint64_t        tickets;
	uint32_t        next_id;
};

static struct slot *ring_at(const struct dkc *c, size_t i)
{
	return &c->ring[(c->head + i) % c->cap];
}

/* Room for one more request: 0, or -1 (DKC_PENDING_MAX, or no memory). */
static int ring_room(struct dkc *c)
{
	size_t cap;
	struct slot *r;

	if (c->count < c->cap)
		return 0;
	if (c->cap >= DKC_PENDING_MAX)
		return -1;
	cap = c->cap ? c->cap * 2 : 16;
	if ((r = malloc(cap * sizeof *r)) == NULL)
		return -1;
	for (size_t i = 0; i < c->count; i++)
		r[i] = *ring_at(c, i);
	free(c->ring);
	c->ring = r;
	c->cap = cap;
	c->head = 0;
	return 0;
}

/* When the timer must fire: at once for the lost, else at the patience
 * of the oldest request someone waits for. */
static void arm(struct dkc *c)
{
	int64_t now = ev_monotonic_ms();

	if (c->nlost > 0) {
		ev_timer_start(c->loop, &c->timer, 0);
		return;
	}
	for (size_t i = 0; i < c->count; i++) {
		const struct slot *s = ring_at(c, i);

		if (s->cb != NULL) {
			int64_t left = s->sent + DKC_TIMEOUT_MS - now;

			ev_timer_start(c->loop, &c->timer, left > 0 ? left : 0);
			return;
		}
	}
	ev_timer_stop(c->loop, &c->timer);
}

static void lose(struct dkc *c, uint64_t ticket, dkc_fn *cb, void *arg, const char *why)
{
	if (cb == NULL)
		return;
	if (c->nlost == c->caplost) {
		size_t cap = c->caplost ? c->caplost * 2 : 16;
		struct lost *l = realloc(c->lost, cap * sizeof *l);

		if (l == NULL) {
			/* No memory even to say so later: the waiter hears at once. */
			cb(arg, NULL, why);
			return;
		}
		c->lost = l;
		c->caplost = cap;
	}
	c->lost[c->nlost++] = (struct lost){ ticket, cb, arg, why };
	arm(c);
}

static void close_link(struct dkc *c, const char *why)
{
	if (c->io.fd >= 0) {
		log_warn("msg=\"DKIM link to the key role lost: %s\"", why);
		ev_io_del(c->loop, &c->io);
		close(c->io.fd);
		c->io.fd = -1;
	}
	/* Nothing sent will be answered, nothing unsent will go. */
	while (c->count > 0) {
		struct slot *s = ring_at(c, 0);

		lose(c, s->ticket, s->cb, s->arg, why);
		c->head = (c->head + 1) % c->cap;
		c->count--;
	}
	c->nsent = 0;
	arm(c);
}

static void watch(struct dkc *c)
{
	if (c->io.fd >= 0 &&
	    ev_io_set(c->loop, &c->io, EV_READ | (c->nsent < c->count ? EV_WRITE : 0)) < 0)
		close_link(c, "epoll");
}

/* Send what waits, as much as the socket takes now. */
static void flush(struct dkc *c)
{
	while (c->io.fd >= 0 && c->nsent < c->count) {
		struct slot *s = ring_at(c, c->nsent);
		ssize_t n = send(c->io.fd, s->pkt, s->len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n == (ssize_t)s->len) {
			c->nsent++;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		close_link(c, n < 0 ? "cannot send" : "short send");
		return;
	}
	watch(c);
}

/* The oldest request, if r answers it: popped into *s.  Else the link
 * breaks (why): the key role answers in order, so this is not one. */
static int match(struct dkc *c, const struct keymsg *r, struct slot *s)
{
	const struct slot *h;

	if (c->nsent == 0) {
		close_link(c, "an answer nobody asked for");
		return -1;
	}
	h = ring_at(c, 0);
	if (r->type != h->want || r->id != h->id) {
		close_link(c, r->type != h->want ? "an answer of the wrong type"
		                                 : "an answer to another request");
		return -1;
	}
	*s = *h;
	c->head = (c->head + 1) % c->cap;
	c->count--;
	c->nsent--;
	return 0;
}

/* Read every answer there is and call back each one's waiter. */
static void read_answers(struct dkc *c)
{
	unsigned char buf[KEYMSG_MAX];

	while (c->io.fd >= 0) {
		struct iovec iov = { buf, sizeof buf };
		struct msghdr mh;
		struct keymsg r;
		struct slot s;
		const char *why = NULL;
		ssize_t n;

		memset(&mh, 0, sizeof mh);
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		n = recvmsg(c->io.fd, &mh, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			close_link(c, n == 0 || errno == ECONNRESET ? "the key role closed the link"
			                                            : "cannot read");
			return;
		}
		if (mh.msg_flags & MSG_TRUNC) {
			close_link(c, "packet too long");
			return;
		}
		if (keymsg_decode(buf, (size_t)n, 0, &r, &why) != 0) {
			close_link(c, why);
			return;
		}
		if (match(c, &r, &s) != 0)
			return;
		if (s.cb != NULL)
			s.cb(s.arg, &r, NULL);
	}
	arm(c);
}

static void io_cb(struct ev_loop *l, struct ev_io *io, unsigned events)
{
	struct dkc *c = io->arg;

	(void)l;
	if (events & EV_WRITE)
		flush(c);
	if (events & EV_READ)
		read_answers(c);
}

/* The lost, then the requests out of patience (their answers, if they
 * come, are still read). */
static void timer_cb(struct ev_loop *l, struct ev_timer *t)
{
	struct dkc *c = t->arg;
	int64_t now = ev_monotonic_ms();

	(void)l;
	while (c->nlost > 0) {
		struct lost x = c->lost[0];

		memmove(c->lost, c->lost + 1, --c->nlost * sizeof *c->lost);
		if (x.cb != NULL)
			x.cb(x.arg, NULL, x.why);
	}
	for (size_t i = 0; i < c->count; i++) {
		struct slot *s = ring_at(c, i);
		dkc_fn *cb = s->cb;

		if (cb == NULL)
			continue;
		if (s->sent + DKC_TIMEOUT_MS > now)
			break;   /* the later ones were asked later still */
		s->cb = NULL;
		cb(s->arg, NULL, "no answer in time");
	}
	arm(c);
}

struct dkc *dkc_new(struct ev_loop *l, int fd)
{
	struct dkc *c = calloc(1, sizeof *c);

	if (c == NULL)
		return NULL;
	c->loop = l;
	c->io.fd = -1;
	c->io.cb = io_cb;
	c->io.arg = c;
	c->timer.cb = timer_cb;
	c->timer.arg = c;
	c->next_id = 1;
	dkc_set_fd(c, fd);
	return c;
}

void dkc_free(struct dkc *c)
{
	if (c == NULL)
		return;
	if (c->io.fd >= 0) {
		ev_io_del(c->loop, &c->io);
		close(c->io.fd);
	}
	ev_timer_stop(c->loop, &c->timer);
	free(c->ring);
	free(c->lost);
	free(c);
}

void dkc_set_fd(struct dkc *c, int fd)
{
	if (c->io.fd >= 0)
		close_link(c, "a new link to the key role");
	c->io.fd = fd;
	watch(c);
}

int dkc_linked(const struct dkc *c)
{
	return c->io.fd >= 0;
}

int dkc_fd(const struct dkc *c)
{
	return c->io.fd;
}

/* Queue the request m (its id set here) for reply type want. */
static uint64_t request(struct dkc *c, struct keymsg *m, uint32_t want, dkc_fn *cb, void *arg)
{
	uint64_t ticket = ++c->tickets;
	int64_t now = ev_monotonic_ms();
	struct slot *s;

	if (c->io.fd < 0) {
		lose(c, ticket, cb, arg, "no link to the key role");
		return ticket;
	}
	if (c->nsent > 0 && now - ring_at(c, 0)->sent >= DKC_TIMEOUT_MS) {
		lose(c, ticket, cb, arg, "the key role does not answer");
		return ticket;
	}
	if (ring_room(c) != 0) {
		lose(c, ticket, cb, arg, "too many requests waiting");
		return ticket;
	}
	s = ring_at(c, c->count);
	m->id = c->next_id++;
	if ((s->len = keymsg_encode(s->pkt, sizeof s->pkt, 0, m)) == 0) {
		lose(c, ticket, cb, arg, "not a request the key role takes");
		return ticket;
	}
	s->ticket = ticket;
	s->id = m->id;
	s->want = want;
	s->sent = now;
	s->cb = cb;
	s->arg = arg;
	c->count++;
	flush(c);
	arm(c);
	return ticket;
}

uint64_t dkc_sign(struct dkc *c, const char *domain, const char *selector,
                  const unsigned char hash[KEYMSG_DKIM_HASH], dkc_fn *cb, void *arg)
{
	struct keymsg m;

	memset(&m, 0, sizeof m);
	m.type = KEYMSG_DKIM_SIGN_REQ;
	m.domain = domain;
	m.domainlen = strlen(domain);
	m.selector = selector;
	m.selectorlen = strlen(selector);
	m.data = hash;
	m.len = KEYMSG_DKIM_HASH;
	return request(c, &m, KEYMSG_DKIM_SIGN_REP, cb, arg);
}

uint64_t dkc_key(struct dkc *c, const char *domain, dkc_fn *cb, void *arg)
{
	struct keymsg m;

	memset(&m, 0, sizeof m);
	m.type = KEYMSG_DKIM_KEY_REQ;
	m.domain = domain;
	m.domainlen = strlen(domain);
	return request(c, &m, KEYMSG_DKIM_KEY_REP, cb, arg);
}

void dkc_cancel(struct dkc *c, uint64_t ticket)
{
	for (size_t i = 0; i < c->count; i++)
		if (ring_at(c, i)->ticket == ticket)
			ring_at(c, i)->cb = NULL;
	for (size_t i = 0; i < c->nlost; i++)
		if (c->lost[i].ticket == ticket)
			c->lost[i].cb = NULL;
}

/* Is ticket still waiting?  1 with the time its patience ends (0: now). */
static int waiting(const struct dkc *c, uint64_t ticket, int64_t *deadline)
{
	for (size_t i = 0; i < c->nlost; i++) {
		if (c->lost[i].ticket == ticket && c->lost[i].cb != NULL) {
			*deadline = 0;
			return 1;
		}
	}
	for (size_t i = 0; i < c->count; i++) {
		const struct slot *s = ring_at(c, i);

		if (s->ticket == ticket && s->cb != NULL) {
			*deadline = s->sent + DKC_TIMEOUT_MS;
			return 1;
		}
	}
	return 0;
}

void dkc_wait(struct dkc *c, uint64_t ticket)
{
	int64_t deadline;

	while (waiting(c, ticket, &deadline)) {
		int64_t left = deadline - ev_monotonic_ms();
		struct pollfd pf = { c->io.fd, POLLIN, 0 };

		if (c->nsent < c->count)
			pf.events |= POLLOUT;
		if (c->io.fd < 0 || left <= 0 || poll(&pf, 1, (int)left) <= 0) {
			timer_cb(c->loop, &c->timer);   /* lost or out of patience: called back */
			continue;
		}
		io_cb(c->loop, &c->io, (pf.revents & POLLOUT ? EV_WRITE : 0) |
		                       (pf.revents & (POLLIN | POLLHUP | POLLERR) ? EV_READ : 0));
	}
}
