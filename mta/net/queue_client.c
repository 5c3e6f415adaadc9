/* mta/net/queue_client.c -- the queue link, asynchronous; see queue_client.h */
#include "mta/net/queue_client.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mta/net/log.h"
#include "queue/envelope.h"

/* A request sent and not yet answered.  cb NULL: nobody waits for the
 * answer any more (cancelled, timed out, or an internal one with none). */
struct slot {
	uint64_t     ticket;
	uint16_t     want;         /* the reply's type */
	int64_t      sent;         /* monotonic ms */
	int64_t      deadline;     /* monotonic ms */
	qc_reply_fn *cb;
	void        *arg;
};

struct qc {
	struct ev_loop *loop;
	struct ev_io    io;           /* io.fd: the link, -1 none */
	struct ev_timer timer;        /* the earliest patience; 0 ms for failures */
	struct wire_wr  frame;        /* the request being built */
	/* Bytes to send, [outoff, outlen) of out. */
	unsigned char  *out;
	size_t          outoff, outlen, outcap;
	/* Bytes read, not yet a whole frame. */
	unsigned char  *in;
	size_t          inlen, incap;
	/* Requests waiting for an answer, oldest first: a ring. */
	struct slot    *ring;
	size_t          head, count, cap;
	/* Requests that will never be answered (the link broke, or it was
	 * never there): called back from the timer. */
	struct slot    *lost;
	size_t          nlost, caplost;
	uint64_t        tickets;
	void          (*kick)(void *);
	void           *kick_arg;
	void          (*drain)(void *);
	void           *drain_arg;
	int             high;         /* passed QC_OUT_HIGH; drain due below half */
	int             drain_due;    /* fell below: call drain from the timer */
	/* Drafts: every DRAFT_BEGIN is the link's own (begins_out in flight);
	 * its answer goes to the oldest waiter (qc_draft_begin), or to the
	 * pool of drafts begun ahead (qc_prefetch).  One order for all, so a
	 * draft handed out later never has a lower ID (a session's messages
	 * keep their order). */
	int             prefetch;
	queue_id        pool[QC_PREFETCH];
	int64_t         pool_at[QC_PREFETCH];
	size_t          npool;
	unsigned        begins_out;
	int64_t         last_begin;
	struct slot    *waitq;        /* waiting for a draft, oldest first */
	size_t          nwait, capwait;
};

static void arm(struct qc *c);

static int64_t now_ms(const struct qc *c)
{
	(void)c;
	return ev_monotonic_ms();
}

/* ---- the ring of requests waiting ---- */

static struct slot *ring_at(struct qc *c, size_t i)
{
	return &c->ring[(c->head + i) % c->cap];
}

static int ring_push(struct qc *c, const struct slot *s)
{
	if (c->count == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct slot *r = malloc(cap * sizeof *r);

		if (r == NULL)
			return -1;
		for (size_t i = 0; i < c->count; i++)
			r[i] = *ring_at(c, i);
		free(c->ring);
		c->ring = r;
		c->cap = cap;
		c->head = 0;
	}
	*ring_at(c, c->count++) = *s;
	return 0;
}

static void lose(struct qc *c, const struct slot *s)
{
	if (s->cb == NULL)
		return;
	if (c->nlost == c->caplost) {
		size_t cap = c->caplost ? c->caplost * 2 : 16;
		struct slot *l = realloc(c->lost, cap * sizeof *l);

		if (l == NULL) {
			/* No memory even to say so: the waiter hears at once. */
			s->cb(s->arg, NULL);
			return;
		}
		c->lost = l;
		c->caplost = cap;
	}
	c->lost[c->nlost++] = *s;
}

/* ---- the link ---- */

static void close_link(struct qc *c, const char *why)
{
	if (c->io.fd >= 0) {
		if (why != NULL)
			log_warn("msg=\"queue link lost: %s\"", why);
		ev_io_del(c->loop, &c->io);
		close(c->io.fd);
		c->io.fd = -1;
	}
	/* Nothing sent will be answered, nothing unsent will go. */
	while (c->count > 0) {
		lose(c, ring_at(c, 0));
		c->head = (c->head + 1) % c->cap;
		c->count--;
	}
	c->outoff = c->outlen = 0;
	c->inlen = 0;
	c->npool = 0;          /* drafts of a link die with it */
	c->begins_out = 0;
	for (size_t i = 0; i < c->nwait; i++)
		lose(c, &c->waitq[i]);
	c->nwait = 0;
	arm(c);
}

/* Ask the loop for what the link needs now. */
static void watch(struct qc *c)
{
	if (c->io.fd >= 0 &&
	    ev_io_set(c->loop, &c->io, EV_READ | (c->outlen > c->outoff ? EV_WRITE : 0)) < 0)
		close_link(c, "epoll");
}

/* Send what waits, as much as the socket takes now. */
static void flush(struct qc *c)
{
	while (c->io.fd >= 0 && c->outoff < c->outlen) {
		ssize_t n = send(c->io.fd, c->out + c->outoff, c->outlen - c->outoff,
		                 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			c->outoff += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		close_link(c, "cannot send");
		return;
	}
	if (c->outoff == c->outlen)
		c->outoff = c->outlen = 0;
	if (c->high && c->outlen - c->outoff < QC_OUT_HIGH / 2) {
		c->high = 0;
		c->drain_due = 1;   /* called back from the timer, never from a call */
		arm(c);
	}
	watch(c);
}

/* Queue the frame built in c->frame; 0, or -1 (not sent). */
static int enqueue(struct qc *c)
{
	size_t n;

	if (c->io.fd < 0 || qw_end(&c->frame) != 0)
		return -1;
	n = c->frame.len;
	if (c->outlen - c->outoff + n > QC_OUT_MAX)
		return -1;
	if (c->outoff > 0 && c->outlen + n > c->outcap) {
		memmove(c->out, c->out + c->outoff, c->outlen - c->outoff);
		c->outlen -= c->outoff;
		c->outoff = 0;
	}
	if (c->outlen + n > c->outcap) {
		size_t cap = c->outcap ? c->outcap : 64 * 1024;
		unsigned char *b;

		while (cap < c->outlen + n)
			cap *= 2;
		if ((b = realloc(c->out, cap)) == NULL)
			return -1;
		c->out = b;
		c->outcap = cap;
	}
	memcpy(c->out + c->outlen, c->frame.buf, n);
	c->outlen += n;
	if (c->outlen - c->outoff > QC_OUT_HIGH)
		c->high = 1;
	if (c->outoff == 0 && c->outlen == n)
		flush(c);         /* the common case: nothing waited, send now */
	else
		watch(c);
	return 0;
}

/* Send the frame built in c->frame as a request answered by cb (NULL:
 * an answer nobody waits for).  A request that cannot go is called back
 * with NULL from the loop.  Returns its ticket. */
static uint64_t request(struct qc *c, int64_t patience, qc_reply_fn *cb, void *arg)
{
	struct slot s;
	int64_t now = now_ms(c);

	s.ticket = ++c->tickets;
	s.want = (uint16_t)(wire_be16(c->frame.buf) | QW_REPLY);
	s.sent = now;
	s.deadline = now + patience;
	s.cb = cb;
	s.arg = arg;
	/* In the ring before it goes: an answer never arrives unexpected. */
	if (c->io.fd < 0 || ring_push(c, &s) != 0) {
		lose(c, &s);
	} else if (enqueue(c) != 0) {
		c->count--;   /* the last one: this request, not sent */
		lose(c, &s);
	}
	arm(c);
	return s.ticket;
}

/* ---- answers ---- */

/* A DRAFT_BEGIN answered (or not: rep NULL): to the oldest waiter, else
 * into the pool (or aborted when the pool is full). */
static void pool_cb(void *arg, const struct qw_rep *rep)
{
	struct qc *c = arg;
	int ok = rep != NULL && rep->rc == QUEUE_OK && rep->id != 0;

	if (c->begins_out > 0)
		c->begins_out--;
	if (c->nwait > 0) {
		struct slot w = c->waitq[0];

		memmove(c->waitq, c->waitq + 1, --c->nwait * sizeof c->waitq[0]);
		w.cb(w.arg, ok ? rep : NULL);
	} else if (ok && c->npool < QC_PREFETCH) {
		c->pool[c->npool] = rep->id;
		c->pool_at[c->npool++] = now_ms(c);
	} else if (ok) {
		qc_draft_abort(c, rep->id);
	}
}

/* Send DRAFT_BEGINs until one is on its way for each waiter and, while
 * busy, enough more to fill the pool. */
static void begin_more(struct qc *c, int busy)
{
	size_t want = c->nwait;

	if (c->prefetch && busy && c->npool < QC_PREFETCH)
		want += QC_PREFETCH - c->npool;
	while (c->io.fd >= 0 && c->begins_out < want) {
		qw_begin(&c->frame, QW_DRAFT_BEGIN);
		c->begins_out++;
		request(c, QC_ASK_MS, pool_cb, c);
	}
}

/* Busy: another draft was asked for within QC_PREFETCH_MS / 10. */
static int busy_now(struct qc *c, int64_t now)
{
	int busy = c->last_begin != 0 && now - c->last_begin < QC_PREFETCH_MS / 10;

	c->last_begin = now;
	return busy;
}

/* One whole frame from the queue role: a kick, or the oldest request's
 * answer.  0, or -1 (the link is broken). */
static int dispatch(struct qc *c, uint16_t type, const unsigned char *p, uint32_t len)
{
	struct qw_rep rep;
	struct slot s;

	if (type == QW_KICK && len == 0) {
		if (c->kick != NULL)
			c->kick(c->kick_arg);
		return 0;
	}
	if (c->count == 0 || ring_at(c, 0)->want != type || qw_rep_decode(type, p, len, &rep) != 0)
		return -1;
	s = *ring_at(c, 0);
	c->head = (c->head + 1) % c->cap;
	c->count--;
	if (s.cb != NULL)
		s.cb(s.arg, &rep);
	else if (type == (QW_DRAFT_BEGIN | QW_REPLY) && rep.rc == QUEUE_OK && rep.id != 0)
		qc_draft_abort(c, rep.id);   /* out of patience: nobody takes it */
	return 0;
}

/* Read what the link has and hand out every whole frame. */
static void read_link(struct qc *c)
{
	for (;;) {
		size_t off = 0;
		ssize_t n;

		if (c->incap - c->inlen < 64 * 1024) {
			size_t cap = c->incap ? c->incap * 2 : 128 * 1024;
			unsigned char *b;

			if (cap > QW_HEAD + (size_t)QW_MAX + 64 * 1024)
				cap = QW_HEAD + (size_t)QW_MAX + 64 * 1024;
			if (cap <= c->incap || (b = realloc(c->in, cap)) == NULL) {
				close_link(c, "out of memory");
				return;
			}
			c->in = b;
			c->incap = cap;
		}
		n = recv(c->io.fd, c->in + c->inlen, c->incap - c->inlen, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			close_link(c, n == 0 ? "closed" : "read error");
			return;
		}
		c->inlen += (size_t)n;
		while (c->inlen - off >= QW_HEAD) {
			uint16_t type;
			uint32_t len;

			if (qw_head_decode(c->in + off, &type, &len) != 0) {
				close_link(c, "a frame head that does not decode");
				return;
			}
			if (c->inlen - off - QW_HEAD < len)
				break;
			if (dispatch(c, type, c->in + off + QW_HEAD, len) != 0) {
				close_link(c, "an answer nobody asked for, or that does not decode");
				return;
			}
			off += QW_HEAD + len;
			if (c->io.fd < 0)
				return;   /* a callback gave a new link, or broke this one */
		}
		memmove(c->in, c->in + off, c->inlen - off);
		c->inlen -= off;
	}
}

static void io_cb(struct ev_loop *l, struct ev_io *io, unsigned events)
{
	struct qc *c = io->arg;

	(void)l;
	if (events & EV_WRITE)
		flush(c);
	if ((events & EV_READ) && c->io.fd >= 0)
		read_link(c);
	arm(c);
}

/* Abort drafts begun ahead and not used within QC_PREFETCH_MS. */
static void pool_expire(struct qc *c, int64_t now)
{
	while (c->npool > 0 && now - c->pool_at[0] > QC_PREFETCH_MS) {
		qc_draft_abort(c, c->pool[0]);
		memmove(c->pool, c->pool + 1, --c->npool * sizeof c->pool[0]);
		memmove(c->pool_at, c->pool_at + 1, c->npool * sizeof c->pool_at[0]);
	}
}

/* The patience ran out for some, or some were lost: call them back. */
static void timer_cb(struct ev_loop *l, struct ev_timer *t)
{
	struct qc *c = t->arg;
	int64_t now = now_ms(c);

	(void)l;
	if (c->drain_due) {
		c->drain_due = 0;
		if (c->drain != NULL)
			c->drain(c->drain_arg);
	}
	while (c->nlost > 0) {
		struct slot s = c->lost[0];

		memmove(c->lost, c->lost + 1, --c->nlost * sizeof c->lost[0]);
		s.cb(s.arg, NULL);
	}
	for (size_t i = 0; i < c->count; i++) {
		struct slot *s = ring_at(c, i);

		if (s->cb != NULL && s->deadline <= now) {
			qc_reply_fn *cb = s->cb;
			void *arg = s->arg;

			s->cb = NULL;   /* its answer, if it comes, is dropped */
			log_warn("msg=\"the queue role did not answer in time\" request=%u",
			         (unsigned)(s->want & ~QW_REPLY));
			cb(arg, NULL);
		}
	}
	pool_expire(c, now);
	arm(c);
}

/* The timer at the earliest deadline (0 ms with callbacks lost). */
static void arm(struct qc *c)
{
	int64_t now = now_ms(c), next = INT64_MAX;

	if (c->nlost > 0 || c->drain_due)
		next = now;
	for (size_t i = 0; i < c->count; i++) {
		const struct slot *s = ring_at(c, i);

		if (s->cb != NULL && s->deadline < next)
			next = s->deadline;
	}
	if (c->npool > 0 && c->pool_at[0] + QC_PREFETCH_MS + 1 < next)
		next = c->pool_at[0] + QC_PREFETCH_MS + 1;
	if (next == INT64_MAX)
		ev_timer_stop(c->loop, &c->timer);
	else
		ev_timer_start(c->loop, &c->timer, next > now ? next - now : 0);
}

/* ---- the link's life ---- */

struct qc *qc_new(struct ev_loop *l, int fd, void (*kick)(void *), void *kick_arg,
                  void (*drain)(void *), void *drain_arg)
{
	struct qc *c = calloc(1, sizeof *c);

	if (c == NULL)
		return NULL;
	c->loop = l;
	c->io.fd = -1;
	c->io.cb = io_cb;
	c->io.arg = c;
	c->timer.cb = timer_cb;
	c->timer.arg = c;
	c->kick = kick;
	c->kick_arg = kick_arg;
	c->drain = drain;
	c->drain_arg = drain_arg;
	qc_set_fd(c, fd);
	return c;
}

void qc_free(struct qc *c)
{
	if (c == NULL)
		return;
	if (c->io.fd >= 0) {
		ev_io_del(c->loop, &c->io);
		close(c->io.fd);
	}
	ev_timer_stop(c->loop, &c->timer);
	qw_free(&c->frame);
	free(c->out);
	free(c->in);
	free(c->ring);
	free(c->lost);
	free(c->waitq);
	free(c);
}

void qc_set_fd(struct qc *c, int fd)
{
	close_link(c, NULL);
	c->io.fd = fd;
	watch(c);
}

int qc_broken(const struct qc *c)
{
	return c->io.fd < 0;
}

int qc_fd(const struct qc *c)
{
	return c->io.fd;
}

int qc_stalled(const struct qc *c)
{
	return c->count > 0 && ev_monotonic_ms() - c->ring[c->head].sent > QC_STALL_MS;
}

int qc_busy(const struct qc *c)
{
	return c->high;
}

void qc_cancel(struct qc *c, uint64_t ticket)
{
	/* A draft's waiter: the draft, when it comes, goes to the pool. */
	for (size_t i = 0; i < c->nwait; i++) {
		if (c->waitq[i].ticket == ticket) {
			memmove(c->waitq + i, c->waitq + i + 1, (c->nwait - i - 1) * sizeof c->waitq[0]);
			c->nwait--;
			return;
		}
	}
	for (size_t i = 0; i < c->count; i++)
		if (ring_at(c, i)->ticket == ticket)
			ring_at(c, i)->cb = NULL;
	for (size_t i = 0; i < c->nlost; i++) {
		if (c->lost[i].ticket == ticket) {
			memmove(c->lost + i, c->lost + i + 1, (c->nlost - i - 1) * sizeof c->lost[0]);
			c->nlost--;
			break;
		}
	}
}

/* ---- drafts ---- */

void qc_prefetch(struct qc *c, int on)
{
	c->prefetch = on;
}

int qc_draft_take(struct qc *c, queue_id *id)
{
	int64_t now = now_ms(c);

	pool_expire(c, now);
	/* (the waiters first: drafts are handed out in order; a miss is
	 * counted by the qc_draft_begin() that follows it) */
	if (c->npool == 0 || c->nwait > 0 || qc_stalled(c))
		return 0;
	*id = c->pool[0];
	memmove(c->pool, c->pool + 1, --c->npool * sizeof c->pool[0]);
	memmove(c->pool_at, c->pool_at + 1, c->npool * sizeof c->pool_at[0]);
	begin_more(c, busy_now(c, now));
	arm(c);
	return 1;
}

uint64_t qc_draft_begin(struct qc *c, qc_reply_fn *cb, void *arg)
{
	int64_t now = now_ms(c);
	struct slot w = { ++c->tickets, QW_DRAFT_BEGIN | QW_REPLY, now, now + QC_ASK_MS, cb, arg };

	if (c->io.fd < 0) {
		lose(c, &w);
		arm(c);
		return w.ticket;
	}
	if (c->nwait == c->capwait) {
		size_t cap = c->capwait ? c->capwait * 2 : 16;
		struct slot *q = realloc(c->waitq, cap * sizeof *q);

		if (q == NULL) {
			lose(c, &w);
			arm(c);
			return w.ticket;
		}
		c->waitq = q;
		c->capwait = cap;
	}
	c->waitq[c->nwait++] = w;
	begin_more(c, busy_now(c, now));
	return w.ticket;
}

int qc_draft_write(struct qc *c, queue_id id, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	while (len > 0) {
		size_t n = len < QW_CHUNK_MAX ? len : QW_CHUNK_MAX;

		qw_begin(&c->frame, QW_DRAFT_WRITE);
		wire_put_u64(&c->frame, id);
		wire_put_bytes(&c->frame, p, n);
		if (enqueue(c) != 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

int qc_draft_prepend(struct qc *c, queue_id id, const void *buf, size_t len)
{
	qw_begin(&c->frame, QW_DRAFT_PREPEND);
	wire_put_u64(&c->frame, id);
	wire_put_bytes(&c->frame, buf, len);
	return enqueue(c);
}

void qc_draft_abort(struct qc *c, queue_id id)
{
	qw_begin(&c->frame, QW_DRAFT_ABORT);
	wire_put_u64(&c->frame, id);
	(void)enqueue(c);   /* a link gone took the draft with it */
}

/* ---- the smtp role's requests ---- */

uint64_t qc_commit(struct qc *c, struct queue_envelope *const *env, size_t n, qc_reply_fn *cb,
                   void *arg)
{
	qw_begin(&c->frame, QW_COMMIT);
	wire_put_u32(&c->frame, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		wire_put_u64(&c->frame, env[i]->id);
		wire_put_u32(&c->frame, (uint32_t)qw_env_size(env[i]));
		qw_env(&c->frame, env[i]);   /* the only time it is encoded */
	}
	return request(c, QC_WRITE_MS, cb, arg);
}

uint64_t qc_usage(struct qc *c, const struct queue_envelope *env, qc_reply_fn *cb, void *arg)
{
	qw_begin(&c->frame, QW_USAGE);
	if (env != NULL)
		qw_env(&c->frame, env);
	return request(c, QC_ASK_MS, cb, arg);
}

uint64_t qc_probe(struct qc *c, int64_t now, qc_reply_fn *cb, void *arg)
{
	qw_begin(&c->frame, QW_PROBE);
	wire_put_i64(&c->frame, now);
	return request(c, QC_ASK_MS, cb, arg);
}

uint64_t qc_oldest(struct qc *c, qc_reply_fn *cb, void *arg)
{
	qw_begin(&c->frame, QW_OLDEST);
	return request(c, QC_ASK_MS, cb, arg);
}

/* ---- the delivery role's requests ---- */

uint64_t qc_due(struct qc *c, int64_t now, uint32_t cap, qc_reply_fn *cb, void *arg)
{
	qw_begin(&c->frame, QW_DUE);
	wire_put_i64(&c->frame, now);
	wire_put_u32(&c->frame, cap);
	return request(c, QC_ASK_MS, cb, arg);
}

uint64_t qc_get(struct qc *c, queue_id id, uint32_t cap, qc_reply_fn *cb, void *arg)
{
	qw_begin(&c->frame, QW_GET);
	wire_put_u64(&c->frame, id);
	wire_put_u32(&c->frame, cap);
	return request(c, QC_ASK_MS, cb, arg);
}

uint64_t qc_body_read(struct qc *c, queue_id id, uint64_t off, uint32_t cap, qc_reply_fn *cb,
                      void *arg)
{
	qw_begin(&c->frame, QW_BODY_READ);
	wire_put_u64(&c->frame, id);
	wire_put_u64(&c->frame, off);
	wire_put_u32(&c->frame, cap);
	return request(c, QC_ASK_MS, cb, arg);
}

uint64_t qc_update(struct qc *c, queue_id id, const struct queue_result *res, size_t n,
                   uint32_t set_flags, queue_id dsn, const struct queue_envelope *dsn_env,
                   qc_reply_fn *cb, void *arg)
{
	qw_begin(&c->frame, QW_UPDATE);
	wire_put_u64(&c->frame, id);
	wire_put_u32(&c->frame, set_flags);
	wire_put_u64(&c->frame, dsn_env != NULL ? dsn : 0);
	wire_put_u32(&c->frame, dsn_env != NULL ? (uint32_t)qw_env_size(dsn_env) : 0);
	if (dsn_env != NULL)
		qw_env(&c->frame, dsn_env);
	wire_put_u32(&c->frame, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		size_t el = res[i].error ? strlen(res[i].error) : 0;

		if (el > QUEUE_ERR_MAX)
			el = QUEUE_ERR_MAX;
		wire_put_u32(&c->frame, res[i].rcpt);
		wire_put_u8(&c->frame, res[i].state);
		wire_put_i64(&c->frame, res[i].next_try);
		wire_put_u16(&c->frame, (uint16_t)el);
		wire_put_bytes(&c->frame, res[i].error, el);
	}
	return request(c, QC_WRITE_MS, cb, arg);
}

uint64_t qc_hold(struct qc *c, queue_id id, int hold, qc_reply_fn *cb, void *arg)
{
	qw_begin(&c->frame, QW_HOLD);
	wire_put_u64(&c->frame, id);
	wire_put_u8(&c->frame, hold ? 1 : 0);
	return request(c, QC_WRITE_MS, cb, arg);
}

uint64_t qc_retry(struct qc *c, queue_id id, qc_reply_fn *cb, void *arg)
{
	qw_begin(&c->frame, QW_RETRY);
	wire_put_u64(&c->frame, id);
	return request(c, QC_WRITE_MS, cb, arg);
}

uint64_t qc_delete(struct qc *c, queue_id id, qc_reply_fn *cb, void *arg)
{
	qw_begin(&c->frame, QW_DELETE);
	wire_put_u64(&c->frame, id);
	return request(c, QC_WRITE_MS, cb, arg);
}

/* ---- waiting, for the delivery role ---- */

/* Is ticket still waiting (sent, or lost and not yet called back)? */
static int waiting(const struct qc *c, uint64_t ticket, int64_t *deadline)
{
	for (size_t i = 0; i < c->count; i++) {
		const struct slot *s = &c->ring[(c->head + i) % c->cap];

		if (s->ticket == ticket && s->cb != NULL) {
			*deadline = s->deadline;
			return 1;
		}
	}
	for (size_t i = 0; i < c->nwait; i++)
		if (c->waitq[i].ticket == ticket) {
			*deadline = c->waitq[i].deadline;
			return 1;
		}
	for (size_t i = 0; i < c->nlost; i++)
		if (c->lost[i].ticket == ticket) {
			*deadline = 0;
			return 1;
		}
	return 0;
}

void qc_wait(struct qc *c, uint64_t ticket)
{
	int64_t deadline;

	while (waiting(c, ticket, &deadline)) {
		int64_t left = deadline - ev_monotonic_ms();
		struct pollfd pf = { c->io.fd, POLLIN, 0 };

		if (c->outlen > c->outoff)
			pf.events |= POLLOUT;
		if (c->io.fd < 0 || left <= 0 || poll(&pf, 1, (int)left) <= 0) {
			timer_cb(c->loop, &c->timer);   /* lost or out of patience: called back */
			continue;
		}
		io_cb(c->loop, &c->io, (pf.revents & POLLOUT ? EV_WRITE : 0) |
		                       (pf.revents & (POLLIN | POLLHUP | POLLERR) ? EV_READ : 0));
	}
}
