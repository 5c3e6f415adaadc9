/* mta/net/queue_client.c -- see rq.h */
#include "mta/net/queue_client.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mta/net/ev.h"
#include "mta/net/log.h"
#include "queue/envelope.h"

struct rq {
	int fd;
	struct wire_wr out;
	unsigned char *in;        /* the last reply's payload */
	size_t incap;
	void (*kick)(void *arg);
	void *kick_arg;
	int kicked;
	struct ev_loop *loop;     /* rq_watch(): the link is watched there */
	struct ev_io io;
	/* Drafts begun ahead (rq_prefetch): IDs the queue role gave, oldest
	 * first, and how many DRAFT_BEGIN answers are still on their way
	 * (they come before the answer to any later request). */
	queue_id pool[RQ_PREFETCH];
	int64_t  pool_at[RQ_PREFETCH];
	size_t   npool;
	unsigned begins_out;
	int      prefetch;
	int64_t  last_begin;
	/* The commit in flight (rq_commit_start): its envelopes, and once its
	 * answer is read, the results. */
	int      commit_out, commit_got;
	size_t   commit_n;
	struct queue_envelope *commit_env[QW_BATCH_MAX];
	int      commit_res[QW_BATCH_MAX];
};

struct rq_draft {
	struct rq *r;
	queue_id id;
	int err;                  /* sticky: QUEUE_OK or the link's failure */
};

static void close_link(struct rq *r);

struct rq *rq_new(int fd, void (*kick)(void *arg), void *arg)
{
	struct rq *r = calloc(1, sizeof *r);

	if (r == NULL)
		return NULL;
	r->fd = fd;
	r->kick = kick;
	r->kick_arg = arg;
	return r;
}

void rq_free(struct rq *r)
{
	if (r == NULL)
		return;
	close_link(r);
	qw_free(&r->out);
	free(r->in);
	free(r);
}

static void io_cb(struct ev_loop *l, struct ev_io *io, unsigned events)
{
	(void)l;
	(void)events;
	rq_poll(io->arg);   /* a broken link stops being watched (close_link) */
}

static void watch(struct rq *r)
{
	if (r->loop == NULL || r->fd < 0)
		return;
	r->io.fd = r->fd;
	r->io.cb = io_cb;
	r->io.arg = r;
	ev_io_set(r->loop, &r->io, EV_READ);
}

void rq_watch(struct rq *r, struct ev_loop *l)
{
	r->loop = l;
	watch(r);
}

static void close_link(struct rq *r)
{
	r->npool = 0;          /* drafts of a link die with it */
	r->begins_out = 0;
	if (r->commit_out && !r->commit_got) {
		/* No answer will come: not acknowledged (if the queue role did
		 * commit before it went, the client's retry is a duplicate). */
		for (size_t i = 0; i < r->commit_n; i++)
			r->commit_res[i] = QUEUE_EIO;
		r->commit_got = 1;
	}
	if (r->fd < 0)
		return;
	if (r->loop != NULL)
		ev_io_del(r->loop, &r->io);   /* before close: the number may come back */
	close(r->fd);
	r->fd = -1;
}

void rq_set_fd(struct rq *r, int fd)
{
	close_link(r);
	r->fd = fd;
	watch(r);
}

void rq_prefetch(struct rq *r, int on)
{
	r->prefetch = on;
}

int rq_fd(const struct rq *r)
{
	return r->fd;
}

static void broken(struct rq *r, const char *why)
{
	if (r->fd < 0)
		return;
	log_warn("msg=\"queue link lost: %s\"", why);
	close_link(r);
}

/* All of buf, waiting at most the call's deadline.  0 or -1. */
static int io_all(struct rq *r, int out, void *buf, size_t len, int64_t deadline)
{
	unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = out ? send(r->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT)
		                : recv(r->fd, p, len, MSG_DONTWAIT);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n == 0 && !out)
			return -1;  /* the queue role went away */
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -1;
		if (n < 0 && errno == EINTR)
			continue;
		{
			struct pollfd pf = { r->fd, out ? POLLOUT : POLLIN, 0 };
			int64_t left = deadline - ev_monotonic_ms();

			if (left <= 0 || poll(&pf, 1, (int)left) < 0)
				return -1;
		}
	}
	return 0;
}

static int send_frame(struct rq *r)
{
	if (r->fd < 0)
		return -1;
	if (qw_end(&r->out) != 0)
		return -2;  /* too big or no memory: this call fails, the link stays */
	if (io_all(r, 1, r->out.buf, r->out.len, ev_monotonic_ms() + RQ_TIMEOUT_MS) != 0) {
		broken(r, "cannot send");
		return -1;
	}
	return 0;
}

/* One frame in: *type and the payload in r->in[0..*len).  0 or -1. */
static int recv_frame(struct rq *r, uint16_t *type, uint32_t *len, int64_t deadline)
{
	unsigned char h[QW_HEAD];

	if (io_all(r, 0, h, sizeof h, deadline) != 0 || qw_head_decode(h, type, len) != 0)
		return -1;
	if (*len > r->incap) {
		unsigned char *b = realloc(r->in, *len);

		if (b == NULL)
			return -1;
		r->in = b;
		r->incap = *len;
	}
	return io_all(r, 0, r->in, *len, deadline);
}

static void run_kick(struct rq *r)
{
	if (r->kicked) {
		r->kicked = 0;
		if (r->kick)
			r->kick(r->kick_arg);
	}
}

/* The answer to the commit in flight: keep its results.  0 or -1. */
static int take_commit(struct rq *r, const struct qw_rep *rep)
{
	if (rep->n != r->commit_n)
		return -1;
	for (size_t i = 0; i < r->commit_n; i++) {
		uint64_t id, size;
		int64_t received;

		qw_commit_result(rep, i, &r->commit_res[i], &id, &received, &size);
		if (r->commit_res[i] == QUEUE_OK) {
			r->commit_env[i]->id = id;
			r->commit_env[i]->received = received;
			r->commit_env[i]->size = size;
		}
	}
	r->commit_got = 1;
	return 0;
}

/* A frame that answers an earlier request sent ahead -- a draft begun
 * ahead, the commit in flight -- or a kick: taken in (1), not one (0),
 * or one that does not decode (-1). */
static int take_ahead(struct rq *r, uint16_t type, uint32_t len)
{
	struct qw_rep rep;

	if (type == QW_KICK && len == 0) {
		r->kicked = 1;
		return 1;
	}
	if (r->begins_out > 0 && type == (QW_DRAFT_BEGIN | QW_REPLY)) {
		if (qw_rep_decode(type, r->in, len, &rep) != 0)
			return -1;
		r->begins_out--;
		if (rep.rc == QUEUE_OK && rep.id != 0 && r->npool < RQ_PREFETCH) {
			r->pool[r->npool] = rep.id;
			r->pool_at[r->npool++] = ev_monotonic_ms();
		}
		return 1;
	}
	if (r->commit_out && !r->commit_got && type == (QW_COMMIT | QW_REPLY)) {
		if (qw_rep_decode(type, r->in, len, &rep) != 0 || take_commit(r, &rep) != 0)
			return -1;
		return 1;
	}
	return 0;
}

/* Send the frame built in r->out, wait for its reply and decode it into
 * *rep.  QUEUE_OK or QUEUE_EIO (nothing sent, or the link broke). */
static int call(struct rq *r, struct qw_rep *rep)
{
	uint16_t want = (uint16_t)((unsigned)r->out.buf[0] << 8 | r->out.buf[1]) | QW_REPLY;
	int64_t deadline = ev_monotonic_ms() + RQ_TIMEOUT_MS;
	uint16_t type;
	uint32_t len;

	if (send_frame(r) != 0)
		return QUEUE_EIO;
	for (;;) {
		int t;

		if (recv_frame(r, &type, &len, deadline) != 0) {
			broken(r, "no answer");
			return QUEUE_EIO;
		}
		if ((t = take_ahead(r, type, len)) > 0)
			continue;
		if (t < 0 || type != want || qw_rep_decode(type, r->in, len, rep) != 0) {
			broken(r, "an answer that does not decode");
			return QUEUE_EIO;
		}
		return QUEUE_OK;
	}
}

int rq_poll(struct rq *r)
{
	for (;;) {
		unsigned char h[QW_HEAD];
		uint16_t type;
		uint32_t len;
		ssize_t n;

		if (r->fd < 0)
			return -1;
		n = recv(r->fd, h, sizeof h, MSG_DONTWAIT | MSG_PEEK);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			break;
		if (n == 0 || n < 0) {
			broken(r, n == 0 ? "closed" : "read error");
			return -1;
		}
		/* A frame has begun: the queue role writes each whole, so the
		 * rest is on its way. */
		if (recv_frame(r, &type, &len, ev_monotonic_ms() + RQ_TIMEOUT_MS) != 0 ||
		    take_ahead(r, type, len) <= 0) {
			broken(r, "a frame nobody asked for");
			return -1;
		}
	}
	run_kick(r);
	return 0;
}

/* ---- drafts ---- */

/* Abort draft id (no answer comes). */
static void abort_id(struct rq *r, queue_id id)
{
	if (r->fd < 0)
		return;
	qw_begin(&r->out, QW_DRAFT_ABORT);
	wire_put_u64(&r->out, id);
	send_frame(r);
}

/* Send one DRAFT_BEGIN whose answer is read later.  0 or -1. */
static int begin_ahead(struct rq *r)
{
	qw_begin(&r->out, QW_DRAFT_BEGIN);
	if (send_frame(r) != 0)
		return -1;
	r->begins_out++;
	return 0;
}

struct rq_draft *rq_draft_begin(struct rq *r, queue_id *id)
{
	struct qw_rep rep;
	struct rq_draft *d;
	int64_t now = ev_monotonic_ms();
	queue_id got = 0;
	int rc = QUEUE_OK;

	/* Drafts begun ahead but left unused for long carry a stale ID. */
	while (r->npool > 0 && now - r->pool_at[0] > RQ_PREFETCH_MS) {
		abort_id(r, r->pool[0]);
		memmove(r->pool, r->pool + 1, --r->npool * sizeof r->pool[0]);
		memmove(r->pool_at, r->pool_at + 1, r->npool * sizeof r->pool_at[0]);
	}
	if (r->npool == 0) {
		/* None ready: ask now (behind any already on the way). */
		qw_begin(&r->out, QW_DRAFT_BEGIN);
		if ((rc = call(r, &rep)) == QUEUE_OK)
			rc = rep.rc;
		if (rc == QUEUE_OK && rep.id == 0)
			rc = QUEUE_EIO;
		got = rep.id;
	} else {
		got = r->pool[0];
		memmove(r->pool, r->pool + 1, --r->npool * sizeof r->pool[0]);
		memmove(r->pool_at, r->pool_at + 1, r->npool * sizeof r->pool_at[0]);
	}
	/* Busy (another draft lately): have the next ones begun meanwhile. */
	if (rc == QUEUE_OK && r->prefetch && now - r->last_begin < RQ_PREFETCH_MS / 10)
		while (r->npool + r->begins_out < RQ_PREFETCH && begin_ahead(r) == 0)
			;
	r->last_begin = now;
	run_kick(r);
	if (rc != QUEUE_OK) {
		errno = rc == QUEUE_EFULL ? ENOSPC : EIO;
		return NULL;
	}
	if ((d = calloc(1, sizeof *d)) == NULL) {
		abort_id(r, got);
		errno = ENOMEM;
		return NULL;
	}
	d->r = r;
	d->id = *id = got;
	return d;
}

int rq_draft_write(struct rq_draft *d, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	while (d->err == QUEUE_OK && len > 0) {
		size_t n = len < QW_CHUNK_MAX ? len : QW_CHUNK_MAX;

		qw_begin(&d->r->out, QW_DRAFT_WRITE);
		wire_put_u64(&d->r->out, d->id);
		wire_put_bytes(&d->r->out, p, n);
		if (send_frame(d->r) != 0)
			d->err = QUEUE_EIO;
		p += n;
		len -= n;
	}
	return d->err;
}

void rq_draft_abort(struct rq_draft *d)
{
	if (d == NULL)
		return;
	if (d->r->fd >= 0) {
		qw_begin(&d->r->out, QW_DRAFT_ABORT);
		wire_put_u64(&d->r->out, d->id);
		send_frame(d->r);
	}
	free(d);
}

size_t rq_commit(struct rq *r, struct rq_draft **draft, struct queue_envelope **env, int *result,
                 size_t n)
{
	size_t i, ok = 0;

	if (rq_commit_start(r, draft, env, n) != 0) {
		for (i = 0; i < n; i++) {
			result[i] = QUEUE_EINVAL;
			free(draft[i]);
		}
		return 0;
	}
	rq_commit_done(r, result, 1);
	for (i = 0; i < n; i++)
		ok += result[i] == QUEUE_OK;
	return ok;
}

int rq_commit_start(struct rq *r, struct rq_draft **draft, struct queue_envelope **env, size_t n)
{
	size_t i;

	if (r->commit_out || n == 0 || n > QW_BATCH_MAX)
		return -1;
	qw_begin(&r->out, QW_COMMIT);
	wire_put_u32(&r->out, (uint32_t)n);
	for (i = 0; i < n; i++) {
		wire_put_u64(&r->out, draft[i]->id);
		wire_put_u32(&r->out, (uint32_t)envelope_size(env[i]));
		qw_env(&r->out, env[i]);
		r->commit_env[i] = env[i];
		free(draft[i]);
	}
	r->commit_n = n;
	r->commit_out = 1;
	r->commit_got = 0;
	if (send_frame(r) != 0) {
		/* Not sent (or the link broke): every message fails now. */
		for (i = 0; i < n; i++)
			r->commit_res[i] = QUEUE_EIO;
		r->commit_got = 1;
	}
	return 0;
}

int rq_commit_pending(const struct rq *r)
{
	return r->commit_out;
}

int rq_commit_done(struct rq *r, int *result, int block)
{
	while (r->commit_out && !r->commit_got && block) {
		uint16_t type;
		uint32_t len;
		int t;

		if (recv_frame(r, &type, &len, ev_monotonic_ms() + RQ_TIMEOUT_MS) != 0 ||
		    (t = take_ahead(r, type, len)) <= 0)
			broken(r, "no commit answer");
	}
	if (!r->commit_out || !r->commit_got)
		return 0;
	memcpy(result, r->commit_res, r->commit_n * sizeof *result);
	r->commit_out = 0;
	r->commit_got = 0;
	run_kick(r);
	return 1;
}

/* ---- queries ---- */

int rq_usage(struct rq *r, const struct queue_envelope *env, struct queue_usage *u,
             struct queue_space *sp)
{
	struct qw_rep rep;
	int rc;

	qw_begin(&r->out, QW_USAGE);
	if (env != NULL)
		qw_env(&r->out, env);
	if ((rc = call(r, &rep)) == QUEUE_OK && (rc = rep.rc) == QUEUE_OK) {
		*u = rep.usage;
		*sp = rep.space;
	}
	run_kick(r);
	return rc;
}

/* A request of one id (and maybe a second scalar) answered by rc alone. */
static int simple(struct rq *r, struct qw_rep *rep)
{
	int rc = call(r, rep);

	run_kick(r);
	return rc == QUEUE_OK ? rep->rc : rc;
}

int rq_probe(struct rq *r, int64_t now)
{
	struct qw_rep rep;

	qw_begin(&r->out, QW_PROBE);
	wire_put_u64(&r->out, (uint64_t)now);
	return simple(r, &rep);
}

int rq_oldest(struct rq *r, queue_id *id)
{
	struct qw_rep rep;
	int rc;

	qw_begin(&r->out, QW_OLDEST);
	if ((rc = simple(r, &rep)) == QUEUE_OK)
		*id = rep.id;
	return rc;
}

int rq_hold(struct rq *r, queue_id id, int hold)
{
	struct qw_rep rep;

	qw_begin(&r->out, QW_HOLD);
	wire_put_u64(&r->out, id);
	wire_put_u8(&r->out, hold ? 1 : 0);
	return simple(r, &rep);
}

int rq_retry(struct rq *r, queue_id id, size_t *count)
{
	struct qw_rep rep;
	int rc;

	qw_begin(&r->out, QW_RETRY);
	wire_put_u64(&r->out, id);
	if ((rc = simple(r, &rep)) == QUEUE_OK)
		*count = (size_t)rep.count;
	return rc;
}

int rq_delete(struct rq *r, queue_id id)
{
	struct qw_rep rep;

	qw_begin(&r->out, QW_DELETE);
	wire_put_u64(&r->out, id);
	return simple(r, &rep);
}

/* ---- the runner's side ---- */

int rq_due(struct rq *r, int64_t now, int (*skip)(void *arg, queue_id id), void *arg, size_t extra,
           queue_id *ids, size_t cap, size_t *n, int64_t *next)
{
	struct qw_rep rep;
	size_t want = cap + extra, i;
	int rc;

	*n = 0;
	*next = INT64_MAX;
	if (want > QW_DUE_MAX)
		want = QW_DUE_MAX;
	qw_begin(&r->out, QW_DUE);
	wire_put_u64(&r->out, (uint64_t)now);
	wire_put_u32(&r->out, (uint32_t)want);
	if ((rc = simple(r, &rep)) != QUEUE_OK)
		return rc;
	if (rep.n > want) {
		broken(r, "too many due IDs");
		return QUEUE_EIO;
	}
	for (i = 0; i < rep.n && *n < cap; i++) {
		queue_id id = qw_due_id(&rep, i);

		if (!skip || !skip(arg, id))
			ids[(*n)++] = id;
	}
	/* More were due than we took: scan again now. */
	*next = i < rep.n || rep.n == want ? now : rep.next;
	return QUEUE_OK;
}

int rq_get(struct rq *r, queue_id id, struct queue_envelope *env)
{
	struct qw_rep rep;
	struct queue_rcpt *rcpts = env->rcpts;
	size_t cap = env->rcpt_cap;
	int rc;

	qw_begin(&r->out, QW_GET);
	wire_put_u64(&r->out, id);
	wire_put_u32(&r->out, (uint32_t)(rcpts ? cap : 0));
	if ((rc = simple(r, &rep)) == QUEUE_EINVAL) {
		env->nrcpts = rep.n;
		return rc;
	}
	if (rc != QUEUE_OK)
		return rc;
	if ((rc = envelope_decode(rep.data, rep.len, env)) != QUEUE_OK || env->id != id ||
	    env->nrcpts != rep.n) {
		broken(r, "an envelope that does not decode");
		return QUEUE_EIO;
	}
	env->rcpts = rcpts;
	env->rcpt_cap = cap;
	return QUEUE_OK;
}

int rq_body_read(struct rq *r, queue_id id, uint64_t off, void *buf, size_t cap, size_t *got)
{
	struct qw_rep rep;
	int rc;

	*got = 0;
	if (cap > QW_CHUNK_MAX)
		cap = QW_CHUNK_MAX;
	if (cap == 0)
		return QUEUE_OK;
	qw_begin(&r->out, QW_BODY_READ);
	wire_put_u64(&r->out, id);
	wire_put_u64(&r->out, off);
	wire_put_u32(&r->out, (uint32_t)cap);
	if ((rc = simple(r, &rep)) != QUEUE_OK)
		return rc;
	if (rep.len > cap) {
		broken(r, "more body than asked for");
		return QUEUE_EIO;
	}
	memcpy(buf, rep.data, rep.len);
	*got = rep.len;
	return QUEUE_OK;
}

size_t rq_update(struct rq *r, queue_id id, const struct queue_result *res, size_t n,
                 uint32_t set_flags, struct rq_draft *dsn, struct queue_envelope *dsn_env,
                 int *result, int *gone)
{
	struct qw_rep rep;
	size_t i;
	int rc, had_dsn = dsn != NULL;

	*gone = 0;
	qw_begin(&r->out, QW_UPDATE);
	wire_put_u64(&r->out, id);
	wire_put_u32(&r->out, set_flags);
	wire_put_u64(&r->out, dsn ? dsn->id : 0);
	if (dsn != NULL) {
		wire_put_u32(&r->out, (uint32_t)envelope_size(dsn_env));
		qw_env(&r->out, dsn_env);
	} else {
		wire_put_u32(&r->out, 0);
	}
	wire_put_u32(&r->out, (uint32_t)n);
	for (i = 0; i < n; i++) {
		size_t el = res[i].error ? strlen(res[i].error) : 0;

		if (el > QUEUE_ERR_MAX)
			el = QUEUE_ERR_MAX;
		wire_put_u32(&r->out, res[i].rcpt);
		wire_put_u8(&r->out, res[i].state);
		wire_put_u64(&r->out, (uint64_t)res[i].next_try);
		wire_put_u16(&r->out, (uint16_t)el);
		wire_put_bytes(&r->out, res[i].error, el);
	}
	free(dsn);
	if (n == 0) {
		*result = QUEUE_EINVAL;
		return 0;
	}
	rc = simple(r, &rep);
	*result = rc;
	if (rc != QUEUE_OK)
		return 0;
	*gone = rep.gone;
	if (dsn_env != NULL && had_dsn) {
		dsn_env->id = rep.id;
		dsn_env->received = rep.received;
		dsn_env->size = rep.size;
	}
	return rep.n;
}
