/* mta/roles/queue_role.c -- the queue role; see queue_role.h */
#include "mta/roles/queue_role.h"
#include "mta/roles/roles.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mta/net/ev.h"
#include "mta/net/log.h"
#include "mta/net/plink.h"
#include "mta/net/qwire.h"
#include "queue/envelope.h"
#include "queue/queue.h"
#include "queue/sts.h"
#include "queue/tlsrec.h"

#define QROLE_SEND_MS    10000
#define QROLE_DRAFTS_MAX 8192    /* per link */
#define UPDATE_BATCH     128     /* outcomes in one transaction, at most */

struct qdraft {
	queue_id id;
	struct queue_draft *d;
	struct qdraft *next;
};

struct qrole;

struct qlink {
	struct ev_io io;
	struct qrole *qr;
	unsigned kind;               /* PLINK_SMTP_CLIENT or PLINK_DELIVERY_CLIENT */
	unsigned char *buf;          /* frames read, not yet handled */
	size_t len, cap;
	struct qdraft *drafts;
	size_t ndrafts;
	struct qlink *next;
	int dead;
};

struct qrole {
	struct ev_loop loop;
	struct queue *q;
	struct ev_io parent, sig;
	struct qlink *links;
	struct qlink *dead;          /* dropped in this batch: freed after it */
	struct wire_wr out;
};

static void link_drop(struct qrole *qr, struct qlink *k, const char *why)
{
	struct qlink **p;

	if (k->dead)
		return;
	k->dead = 1;
	if (why != NULL)
		log_warn("msg=\"queue role: dropped a %s link: %s\"",
		         k->kind == PLINK_SMTP_CLIENT ? "smtp" : "delivery", why);
	while (k->drafts) {
		struct qdraft *d = k->drafts;

		k->drafts = d->next;
		queue_draft_abort(d->d);
		free(d);
	}
	ev_io_del(&qr->loop, &k->io);
	close(k->io.fd);
	for (p = &qr->links; *p; p = &(*p)->next) {
		if (*p == k) {
			*p = k->next;
			break;
		}
	}
	/* Freed after the batch: the io may still be in this epoll batch. */
	k->next = qr->dead;
	qr->dead = k;
}

static void free_dead(struct ev_loop *l, void *arg)
{
	struct qrole *qr = arg;

	(void)l;
	while (qr->dead) {
		struct qlink *k = qr->dead;

		qr->dead = k->next;
		free(k->buf);
		free(k);
	}
}

/* Remove and return link k's draft id (NULL: not its own). */
static struct queue_draft *take_draft(struct qlink *k, queue_id id)
{
	struct qdraft **p, *d;
	struct queue_draft *qd;

	for (p = &k->drafts; (d = *p) != NULL; p = &d->next) {
		if (d->id == id) {
			*p = d->next;
			qd = d->d;
			free(d);
			k->ndrafts--;
			return qd;
		}
	}
	return NULL;
}

static struct queue_draft *find_draft(struct qlink *k, queue_id id)
{
	for (struct qdraft *d = k->drafts; d; d = d->next)
		if (d->id == id)
			return d->d;
	return NULL;
}

/* Write the answer in qr->out; 0, or -1 (the link is dropped). */
static int answer(struct qrole *qr, struct qlink *k)
{
	const unsigned char *p = qr->out.buf;
	size_t left = qr->out.len;
	int64_t deadline = ev_monotonic_ms() + QROLE_SEND_MS;

	if (qw_end(&qr->out) != 0) {
		link_drop(qr, k, "an answer too big to send");
		return -1;
	}
	while (left > 0) {
		ssize_t n = send(k->io.fd, p, left, MSG_NOSIGNAL | MSG_DONTWAIT);
		struct pollfd pf = { k->io.fd, POLLOUT, 0 };
		int64_t wait;

		if (n > 0) {
			p += n;
			left -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		wait = deadline - ev_monotonic_ms();
		if ((n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) || wait <= 0 ||
		    poll(&pf, 1, (int)wait) <= 0) {
			link_drop(qr, k, "the client does not read its answers");
			return -1;
		}
	}
	return 0;
}

/* Something became due: tell every delivery link (a hint; the runner
 * also scans on its own timer, so a kick that does not fit is dropped). */
static void kick(struct qrole *qr)
{
	unsigned char h[QW_HEAD];

	qw_head_encode(h, QW_KICK, 0);
	for (struct qlink *k = qr->links; k; k = k->next)
		if (k->kind == PLINK_DELIVERY_CLIENT && !k->dead)
			(void)send(k->io.fd, h, sizeof h, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* An envelope from a request (mta/net/qwire.h), with a recipients array
 * it allocates (*rcpts, to free); *envlen (may be NULL): the length of its
 * envelope record.  QUEUE_OK or QUEUE_ECORRUPT. */
static int env_in(const unsigned char *p, size_t len, struct queue_envelope *env,
                  struct queue_rcpt **rcpts, size_t *envlen)
{
	memset(env, 0, sizeof *env);
	*rcpts = NULL;
	if (qw_env_decode(p, len, env, NULL) != QUEUE_OK)
		return QUEUE_ECORRUPT;
	if (env->nrcpts > 0 && (*rcpts = calloc(env->nrcpts, sizeof **rcpts)) == NULL)
		return QUEUE_EIO;
	env->rcpts = *rcpts;
	env->rcpt_cap = env->nrcpts;
	return qw_env_decode(p, len, env, envlen);
}

static int do_commit(struct qrole *qr, struct qlink *k, const struct qw_req *rq)
{
	struct queue_draft *drafts[QW_BATCH_MAX];
	struct queue_envelope envs[QW_BATCH_MAX], *envp[QW_BATCH_MAX];
	struct queue_rcpt *rcpts[QW_BATCH_MAX];
	int results[QW_BATCH_MAX], pre[QW_BATCH_MAX], sub[QW_BATCH_MAX];
	size_t pos = 0, n = 0, m = 0, i;
	uint64_t did;
	const unsigned char *e;
	size_t el, rawlen = 0;

	while (n < rq->n && qw_commit_next(rq, &pos, &did, &e, &el)) {
		struct queue_draft *d = take_draft(k, did);

		pre[n] = QUEUE_OK;
		rcpts[n] = NULL;
		if (d == NULL)
			pre[n] = QUEUE_EIO;   /* not this link's draft (a restart lost it) */
		else if ((pre[n] = env_in(e, el, &envs[n], &rcpts[n], &rawlen)) != QUEUE_OK)
			queue_draft_abort(d);
		else if (envs[n].id != did || envs[n].nrcpts == 0)
			pre[n] = QUEUE_EINVAL, queue_draft_abort(d);
		if (pre[n] == QUEUE_OK) {
			envs[n].raw = e;         /* stored as it came: encoded once */
			envs[n].raw_len = rawlen;
			drafts[m] = d;
			envp[m] = &envs[n];
			m++;
		}
		n++;
	}
	if (m > 0 && queue_commit(qr->q, drafts, envp, sub, m) > 0)
		kick(qr);
	qw_begin(&qr->out, QW_COMMIT | QW_REPLY);
	wire_put_u32(&qr->out, (uint32_t)n);
	for (i = 0, m = 0; i < n; i++) {
		results[i] = pre[i] == QUEUE_OK ? sub[m++] : pre[i];
		wire_put_i32(&qr->out, results[i]);
		wire_put_u64(&qr->out, results[i] == QUEUE_OK ? envs[i].id : 0);
		wire_put_i64(&qr->out, results[i] == QUEUE_OK ? envs[i].received : 0);
		wire_put_u64(&qr->out, results[i] == QUEUE_OK ? envs[i].size : 0);
		free(rcpts[i]);
	}
	return answer(qr, k);
}

static int do_get(struct qrole *qr, struct qlink *k, const struct qw_req *rq)
{
	struct queue_envelope env;
	struct queue_rcpt *rc = NULL;
	size_t cap = 16;
	int err;

	for (;;) {
		struct queue_rcpt *r = realloc(rc, cap * sizeof *r);

		if (r == NULL) {
			err = QUEUE_EIO;
			break;
		}
		rc = r;
		memset(&env, 0, sizeof env);
		env.rcpts = rc;
		env.rcpt_cap = cap;
		err = queue_get(qr->q, rq->id, &env);
		if (err != QUEUE_EINVAL || env.nrcpts <= cap || env.nrcpts > UINT32_MAX)
			break;
		cap = env.nrcpts;
	}
	qw_begin(&qr->out, QW_GET | QW_REPLY);
	if (err == QUEUE_OK && env.nrcpts > rq->cap)
		err = QUEUE_EINVAL;   /* the client's array is too small: it asks again */
	wire_put_i32(&qr->out, err);
	wire_put_u32(&qr->out, err == QUEUE_OK || err == QUEUE_EINVAL ? (uint32_t)env.nrcpts : 0);
	if (err == QUEUE_OK)
		qw_env(&qr->out, &env);
	free(rc);
	return answer(qr, k);
}

/* An UPDATE decoded and waiting for its batch's transaction. */
struct pending_update {
	struct queue_update_req u;
	struct queue_result    *res;
	char                  (*errs)[QUEUE_ERR_MAX + 1];
	struct queue_envelope   denv;
	struct queue_rcpt      *drc;
	int                     refused;    /* answered QUEUE_EIO without a try */
};

/* Decode rq into p (its dsn draft taken from k): 0, or -1 when memory is
 * short (then p->refused). */
static void update_prepare(struct qlink *k, const struct qw_req *rq, struct pending_update *p)
{
	size_t pos = 0, n = 0;

	memset(p, 0, sizeof *p);
	p->res = calloc(rq->n, sizeof *p->res);
	p->errs = calloc(rq->n, sizeof *p->errs);
	if (rq->dsn != 0) {
		p->u.dsn = take_draft(k, rq->dsn);
		/* The bounce's id, size and received are the update's to set. */
		if (p->u.dsn != NULL && (env_in(rq->data, rq->len, &p->denv, &p->drc, NULL) != QUEUE_OK ||
		                         p->denv.nrcpts == 0)) {
			queue_draft_abort(p->u.dsn);
			p->u.dsn = NULL;
		}
	}
	if (p->res == NULL || p->errs == NULL || (rq->dsn != 0 && p->u.dsn == NULL)) {
		if (p->u.dsn != NULL)
			queue_draft_abort(p->u.dsn);
		p->u.dsn = NULL;
		p->refused = 1;
		return;
	}
	while (n < rq->n && qw_result_next(rq, &pos, &p->res[n], p->errs[n]))
		n++;
	p->u.id = rq->id;
	p->u.res = p->res;
	p->u.n = n;
	p->u.set_flags = rq->flags;
	p->u.dsn_env = p->u.dsn != NULL ? &p->denv : NULL;
}

/* Run the n updates waiting in one transaction (one fsync), answer each
 * in order. */
static int update_flush(struct qrole *qr, struct qlink *k, struct pending_update *p, size_t n)
{
	struct queue_update_req u[UPDATE_BATCH];
	size_t m = 0, i;
	int rc = 0, kicked = 0;

	for (i = 0; i < n; i++)
		if (!p[i].refused)
			u[m++] = p[i].u;
	if (m > 0)
		queue_update_many(qr->q, u, m);
	for (i = 0, m = 0; i < n; i++) {
		const struct queue_update_req *r = p[i].refused ? NULL : &u[m++];
		int result = r != NULL ? r->result : QUEUE_EIO;
		int with_dsn = r != NULL && r->dsn_env != NULL && result == QUEUE_OK;

		kicked |= with_dsn;
		qw_begin(&qr->out, QW_UPDATE | QW_REPLY);
		wire_put_i32(&qr->out, result);
		wire_put_u32(&qr->out, result == QUEUE_OK ? (uint32_t)r->changed : 0);
		wire_put_u8(&qr->out, result == QUEUE_OK && r->gone ? 1 : 0);
		wire_put_u64(&qr->out, with_dsn ? p[i].denv.id : 0);
		wire_put_i64(&qr->out, with_dsn ? p[i].denv.received : 0);
		wire_put_u64(&qr->out, with_dsn ? p[i].denv.size : 0);
		free(p[i].drc);
		free(p[i].res);
		free(p[i].errs);
		if (rc == 0 && answer(qr, k) != 0)
			rc = -1;
	}
	if (kicked)
		kick(qr);   /* a bounce was queued: due now */
	return rc;
}

static int do_update(struct qrole *qr, struct qlink *k, const struct qw_req *rq)
{
	struct pending_update p;

	update_prepare(k, rq, &p);
	return update_flush(qr, k, &p, 1);
}

static int do_draft_begin(struct qrole *qr, struct qlink *k, const struct qw_req *rq)
{
	struct queue_draft *d;
	struct qdraft *x = NULL;
	queue_id id = 0;
	int rc = QUEUE_OK;

	(void)rq;
	d = k->ndrafts < QROLE_DRAFTS_MAX ? queue_draft_begin(qr->q, &id) : NULL;
	if (d == NULL)
		rc = errno == ENOSPC || errno == EDQUOT ? QUEUE_EFULL : QUEUE_EIO;
	else if ((x = malloc(sizeof *x)) == NULL)
		queue_draft_abort(d), rc = QUEUE_EIO;
	if (x != NULL) {
		x->id = id;
		x->d = d;
		x->next = k->drafts;
		k->drafts = x;
		k->ndrafts++;
	}
	qw_begin(&qr->out, QW_DRAFT_BEGIN | QW_REPLY);
	wire_put_i32(&qr->out, rc);
	wire_put_u64(&qr->out, rc == QUEUE_OK ? id : 0);
	return answer(qr, k);
}

static int do_draft_write(struct qrole *qr, struct qlink *k, const struct qw_req *rq)
{
	struct queue_draft *d;

	(void)qr;
	/* An unknown draft: aborted already, or begun on a link lost since;
	 * nothing to write to, and its commit will fail.  No answer: an
	 * error sticks to the draft and comes back from the commit. */
	if ((d = find_draft(k, rq->id)) != NULL)
		(void)queue_draft_write(d, rq->data, rq->len);
	return 0;
}

static int do_draft_prepend(struct qrole *qr, struct qlink *k, const struct qw_req *rq)
{
	struct queue_draft *d;

	(void)qr;
	/* No answer either: a failure sticks to the draft. */
	if ((d = find_draft(k, rq->id)) != NULL)
		(void)queue_draft_prepend(d, rq->data, rq->len);
	return 0;
}

static int do_draft_abort(struct qrole *qr, struct qlink *k, const struct qw_req *rq)
{
	struct queue_draft *d;

	(void)qr;
	if ((d = take_draft(k, rq->id)) != NULL)
		queue_draft_abort(d);
	return 0;
}

static int do_usage(struct qrole *qr, struct qlink *k, const struct qw_req *rq)
{
	struct queue_envelope env;
	struct queue_usage u;
	struct queue_space sp;
	struct queue_rcpt *rcpts = NULL;
	int rc;

	memset(&u, 0, sizeof u);
	memset(&sp, 0, sizeof sp);
	rc = rq->len ? env_in(rq->data, rq->len, &env, &rcpts, NULL) : QUEUE_OK;
	if (rc == QUEUE_ECORRUPT) {
		free(rcpts);
		return -1;
	}
	if (rc == QUEUE_OK && (rc = queue_usage(qr->q, rq->len ? &env : NULL, &u)) == QUEUE_OK)
		rc = queue_space(qr->q, &sp);
	free(rcpts);
	qw_begin(&qr->out, QW_USAGE | QW_REPLY);
	wire_put_i32(&qr->out, rc);
	wire_put_u64(&qr->out, u.messages);
	wire_put_u64(&qr->out, u.bytes);
	wire_put_u64(&qr->out, u.client_messages);
	wire_put_u64(&qr->out, u.client_bytes);
	wire_put_u64(&qr->out, sp.fs_avail);
	wire_put_u64(&qr->out, sp.fs_total);
	wire_put_u64(&qr->out, sp.file_free);
	wire_put_u64(&qr->out, sp.map_free);
	return answer(qr, k);
}

/* PROBE, HOLD, DELETE: a call and its rc. */
static int do_simple(struct qrole *qr, struct qlink *k, const struct qw_req *rq)
{
	int rc = rq->type == QW_PROBE ? queue_probe(qr->q, rq->now)
	       : rq->type == QW_HOLD  ? queue_hold(qr->q, rq->id, (int)rq->flags)
	                              : queue_delete(qr->q, rq->id);

	qw_begin(&qr->out, (uint16_t)(rq->type | QW_REPLY));
	wire_put_i32(&qr->out, rc);
	return answer(qr, k);
}

static int do_oldest(struct qrole *qr, struct qlink *k, const struct qw_req *rq)
{
	queue_id id = 0;
	int rc = queue_oldest(qr->q, &id);

	(void)rq;
	qw_begin(&qr->out, QW_OLDEST | QW_REPLY);
	wire_put_i32(&qr->out, rc);
	wire_put_u64(&qr->out, rc == QUEUE_OK ? id : 0);
	return answer(qr, k);
}

static int do_retry(struct qrole *qr, struct qlink *k, const struct qw_req *rq)
{
	size_t count = 0;
	int rc = queue_retry(qr->q, rq->id, &count);

	if (rc == QUEUE_OK && count > 0)
		kick(qr);
	qw_begin(&qr->out, QW_RETRY | QW_REPLY);
	wire_put_i32(&qr->out, rc);
	wire_put_u64(&qr->out, count);
	return answer(qr, k);
}

static int do_due(struct qrole *qr, struct qlink *k, const struct qw_req *rq)
{
	queue_id *ids = calloc(rq->cap, sizeof *ids);
	size_t n = 0;
	int64_t next = INT64_MAX;
	int rc = ids ? queue_due(qr->q, rq->now, NULL, NULL, ids, rq->cap, &n, &next) : QUEUE_EIO;

	qw_begin(&qr->out, QW_DUE | QW_REPLY);
	wire_put_i32(&qr->out, rc);
	wire_put_i64(&qr->out, next);
	wire_put_u32(&qr->out, rc == QUEUE_OK ? (uint32_t)n : 0);
	for (size_t i = 0; rc == QUEUE_OK && i < n; i++)
		wire_put_u64(&qr->out, ids[i]);
	free(ids);
	return answer(qr, k);
}

static int do_body_read(struct qrole *qr, struct qlink *k, const struct qw_req *rq)
{
	unsigned char *buf = malloc(rq->cap);
	size_t got = 0;
	int rc = buf ? queue_body_read(qr->q, rq->id, rq->off, buf, rq->cap, &got) : QUEUE_EIO;

	qw_begin(&qr->out, QW_BODY_READ | QW_REPLY);
	wire_put_i32(&qr->out, rc);
	if (rc == QUEUE_OK)
		wire_put_bytes(&qr->out, buf, got);
	free(buf);
	return answer(qr, k);
}

/* ---- the MTA-STS cache and the TLS reports (the delivery role's) ---- */

static int do_sts_get(struct qrole *qr, struct qlink *k, const struct qw_req *rq)
{
	static struct mtasts_cached c;     /* 8 KiB: off the stack; one thread */
	unsigned char rec[STS_RECORD_MAX];
	size_t rl = 0;
	int rc = queue_sts_get(qr->q, rq->domain, &c);

	if (rc == QUEUE_OK && (rl = sts_encode(&c, rec, sizeof rec)) == 0)
		rc = QUEUE_ECORRUPT;
	qw_begin(&qr->out, QW_STS_GET | QW_REPLY);
	wire_put_i32(&qr->out, rc);
	if (rc == QUEUE_OK)
		wire_put_bytes(&qr->out, rec, rl);
	return answer(qr, k);
}

/* A record that does not decode is a malformed request: the link goes. */
static int do_sts_put(struct qrole *qr, struct qlink *k, const struct qw_req *rq)
{
	static struct mtasts_cached c;
	int rc;

	if (sts_decode(rq->data, rq->len, &c) != QUEUE_OK)
		return -1;
	rc = queue_sts_put(qr->q, rq->domain, &c);
	qw_begin(&qr->out, QW_STS_PUT | QW_REPLY);
	wire_put_i32(&qr->out, rc);
	return answer(qr, k);
}

static int do_tlsrpt_add(struct qrole *qr, struct qlink *k, const struct qw_req *rq)
{
	static struct tlsrpt_report r;     /* 40 KiB */
	unsigned flags;
	int rc;

	if (tlsrec_decode(rq->data, rq->len, &r, &flags) != QUEUE_OK || flags != 0)
		return -1;
	rc = queue_tlsrpt_add(qr->q, &r, (int64_t)time(NULL));
	qw_begin(&qr->out, QW_TLSRPT_ADD | QW_REPLY);
	wire_put_i32(&qr->out, rc);
	return answer(qr, k);
}

static int do_tlsrpt_next(struct qrole *qr, struct qlink *k, const struct qw_req *rq)
{
	static struct tlsrpt_report r;
	static unsigned char rec[TLSREC_MAX];
	size_t rl = 0;
	int rc = queue_tlsrpt_next(qr->q, rq->now, &r);

	if (rc == QUEUE_OK && (rl = tlsrec_encode(&r, 0, rec, sizeof rec)) == 0)
		rc = QUEUE_ECORRUPT;
	qw_begin(&qr->out, QW_TLSRPT_NEXT | QW_REPLY);
	wire_put_i32(&qr->out, rc);
	if (rc == QUEUE_OK)
		wire_put_bytes(&qr->out, rec, rl);
	return answer(qr, k);
}

/* A day's report mailed: its draft committed as a message (like a bounce),
 * then the record marked.  A crash between the two mails it again: a
 * duplicate, never a loss. */
static int do_tlsrpt_sent(struct qrole *qr, struct qlink *k, const struct qw_req *rq)
{
	struct queue_envelope env;
	struct queue_rcpt *rcpts = NULL;
	struct queue_draft *d = rq->id != 0 ? take_draft(k, rq->id) : NULL;
	struct queue_envelope *envp = &env;
	int rc = QUEUE_OK, result = QUEUE_OK;

	memset(&env, 0, sizeof env);
	if (rq->id != 0 && d == NULL)
		rc = QUEUE_EIO;          /* not this link's draft (a restart lost it) */
	else if (d != NULL && ((rc = env_in(rq->data, rq->len, &env, &rcpts, NULL)) != QUEUE_OK ||
	                       env.nrcpts == 0))
		rc = rc != QUEUE_OK ? rc : QUEUE_EINVAL, queue_draft_abort(d), d = NULL;
	if (d != NULL) {
		env.id = rq->id;
		if (queue_commit(qr->q, &d, &envp, &result, 1) == 1)
			kick(qr);
		rc = result;
	}
	if (rc == QUEUE_OK)
		rc = queue_tlsrpt_mark(qr->q, rq->now, rq->domain);
	qw_begin(&qr->out, QW_TLSRPT_SENT | QW_REPLY);
	wire_put_i32(&qr->out, rc);
	wire_put_u64(&qr->out, rc == QUEUE_OK && rq->id != 0 ? env.id : 0);
	free(rcpts);
	return answer(qr, k);
}

/*
 * What each link kind may ask, and who answers: one row per request type
 * (mta/net/qwire.h).  The smtp role adds mail and reads counters; the
 * delivery role reads due mail, records outcomes and runs the admin verbs
 * (its socket is QUEUE/admin): a row's links decide, so an smtp role that
 * asks to hold, retry or delete loses its link.
 */
#define FROM_SMTP     (1u << PLINK_SMTP_CLIENT)
#define FROM_DELIVERY (1u << PLINK_DELIVERY_CLIENT)
typedef int qrole_handler(struct qrole *qr, struct qlink *k, const struct qw_req *rq);
static const struct {
	unsigned       links;      /* FROM_* */
	qrole_handler *fn;         /* answers (or not), 0; -1 drops the link */
} handlers[QW_NTYPES] = {
	[QW_DRAFT_BEGIN] = { FROM_SMTP | FROM_DELIVERY, do_draft_begin },
	[QW_DRAFT_WRITE] = { FROM_SMTP | FROM_DELIVERY, do_draft_write },
	[QW_DRAFT_ABORT] = { FROM_SMTP | FROM_DELIVERY, do_draft_abort },
	[QW_COMMIT]      = { FROM_SMTP,                 do_commit },
	[QW_USAGE]       = { FROM_SMTP,                 do_usage },
	[QW_PROBE]       = { FROM_SMTP,                 do_simple },
	[QW_OLDEST]      = { FROM_SMTP,                 do_oldest },
	[QW_DUE]         = { FROM_DELIVERY,             do_due },
	[QW_GET]         = { FROM_DELIVERY,             do_get },
	[QW_BODY_READ]   = { FROM_DELIVERY,             do_body_read },
	[QW_UPDATE]      = { FROM_DELIVERY,             do_update },
	[QW_HOLD]        = { FROM_DELIVERY,             do_simple },
	[QW_RETRY]       = { FROM_DELIVERY,             do_retry },
	[QW_DELETE]      = { FROM_DELIVERY,             do_simple },
	[QW_DRAFT_PREPEND] = { FROM_SMTP,               do_draft_prepend },
	[QW_STS_GET]     = { FROM_DELIVERY,             do_sts_get },
	[QW_STS_PUT]     = { FROM_DELIVERY,             do_sts_put },
	[QW_TLSRPT_ADD]  = { FROM_DELIVERY,             do_tlsrpt_add },
	[QW_TLSRPT_NEXT] = { FROM_DELIVERY,             do_tlsrpt_next },
	[QW_TLSRPT_SENT] = { FROM_DELIVERY,             do_tlsrpt_sent },
};

/* One frame from k: a decoded request, answered.  -1 drops the link. */
static int handle(struct qrole *qr, struct qlink *k, uint16_t type, const unsigned char *p,
                  size_t len)
{
	struct qw_req rq;

	if (type == 0 || type >= QW_NTYPES || handlers[type].fn == NULL ||
	    !(handlers[type].links & (1u << k->kind)) || qw_req_decode(type, p, len, &rq) != 0)
		return -1;
	if (handlers[type].fn(qr, k, &rq) != 0 || k->dead)
		return -1;
	return 0;
}

/*
 * Read what k sent and handle every whole frame, in order.  UPDATEs that
 * come one after another are decoded first and run together, in one
 * transaction (queue_update_many): the outcomes of a delivery role that
 * finishes many deliveries at once share one fsync, as the smtp role's
 * messages share a commit.  Each still gets its own answer, in order.
 */
static void link_cb(struct ev_loop *l, struct ev_io *io, unsigned events)
{
	static struct pending_update pend[UPDATE_BATCH];
	struct qlink *k = io->arg;
	struct qrole *qr = k->qr;
	size_t off = 0, npend = 0;

	(void)l;
	(void)events;
	if (k->dead)
		return;
	if (k->cap - k->len < 65536) {
		size_t cap = k->cap ? k->cap * 2 : 131072;
		unsigned char *b;

		if (cap > 2 * (QW_HEAD + (size_t)QW_MAX) || (b = realloc(k->buf, cap)) == NULL) {
			link_drop(qr, k, "out of memory");
			return;
		}
		k->buf = b;
		k->cap = cap;
	}
	{
		ssize_t n = recv(io->fd, k->buf + k->len, k->cap - k->len, MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
			link_drop(qr, k, NULL);  /* the client exited: the supervisor logs it */
			return;
		}
		if (n < 0)
			return;
		k->len += (size_t)n;
	}
	while (!k->dead && k->len - off >= QW_HEAD) {
		uint16_t type;
		uint32_t plen;

		if (qw_head_decode(k->buf + off, &type, &plen) != 0) {
			link_drop(qr, k, "a frame head that does not decode");
			return;
		}
		if (k->len - off - QW_HEAD < plen)
			break;
		if (type == QW_UPDATE && (handlers[QW_UPDATE].links & (1u << k->kind))) {
			struct qw_req rq;

			if (qw_req_decode(type, k->buf + off + QW_HEAD, plen, &rq) != 0) {
				update_flush(qr, k, pend, npend);
				link_drop(qr, k, "a request that does not decode or is not allowed");
				return;
			}
			update_prepare(k, &rq, &pend[npend++]);
			off += QW_HEAD + plen;
			if (npend == UPDATE_BATCH && (update_flush(qr, k, pend, npend), npend = 0, k->dead))
				return;
			continue;
		}
		if (npend > 0 && (update_flush(qr, k, pend, npend), npend = 0, k->dead))
			return;
		if (handle(qr, k, type, k->buf + off + QW_HEAD, plen) != 0) {
			link_drop(qr, k, "a request that does not decode or is not allowed");
			return;
		}
		off += QW_HEAD + plen;
	}
	if (npend > 0 && !k->dead)
		update_flush(qr, k, pend, npend);
	if (k->dead)
		return;
	memmove(k->buf, k->buf + off, k->len - off);
	k->len -= off;
}

static void link_add(struct qrole *qr, int fd, unsigned kind)
{
	struct qlink *k = calloc(1, sizeof *k);

	if (k == NULL) {
		close(fd);
		return;
	}
	k->qr = qr;
	k->kind = kind;
	k->io.fd = fd;
	k->io.cb = link_cb;
	k->io.arg = k;
	if (ev_io_set(&qr->loop, &k->io, EV_READ) < 0) {
		close(fd);
		free(k);
		return;
	}
	k->next = qr->links;
	qr->links = k;
}

static void parent_cb(struct ev_loop *l, struct ev_io *io, unsigned events)
{
	struct qrole *qr = io->arg;
	struct plink_msg m;
	int fd, rc;

	(void)events;
	while ((rc = plink_recv(io->fd, &m, &fd)) == 1) {
		if (m.type == PLINK_FD &&
		    (m.kind == PLINK_SMTP_CLIENT || m.kind == PLINK_DELIVERY_CLIENT)) {
			link_add(qr, fd, m.kind);
			continue;
		}
		if (fd >= 0)
			close(fd);
		rc = -1;
		break;
	}
	if (rc < 0) {
		/* The supervisor is gone, or it sent nonsense: stop cleanly. */
		ev_io_del(l, io);
		ev_stop(l);
	}
}

static void sig_cb(struct ev_loop *l, struct ev_io *io, unsigned events)
{
	struct signalfd_siginfo si;

	(void)events;
	/* SIGTERM and SIGINT (a terminal's ^C reaches the whole process
	 * group) are not ours: the queue role stops when the supervisor
	 * closes its link, after the smtp roles' last commits. */
	(void)l;
	while (read(io->fd, &si, sizeof si) == (ssize_t)sizeof si)
		;
}

int queue_role_main(struct config *cfg, int plink)
{
	static struct qrole qr;
	const struct conf *conf = &cfg->conf;
	struct queue_options qo = { conf->queue_map_size, 0 };
	char err[1024];

	memset(&qr, 0, sizeof qr);
	/* The queue role of a server killed just before may hold the writer
	 * lock a moment longer (it dies with its supervisor): wait for it. */
	for (int tries = 0; tries < 40; tries++) {
		if ((qr.q = queue_open(conf->queue_path, &qo, err, sizeof err)) != NULL)
			break;
		usleep(50000);
	}
	if (qr.q == NULL) {
		log_warn("msg=\"%s\"", err);
		return 111;
	}
	if (role_own_dir(cfg) != 0 || ev_init(&qr.loop) < 0)
		return 111;
	qr.sig.fd = role_signals();
	qr.sig.cb = sig_cb;
	qr.parent.fd = plink;
	qr.parent.cb = parent_cb;
	qr.parent.arg = &qr;
	if (qr.sig.fd < 0 || role_enter(ROLE_QUEUE, cfg, conf->queue_path) != 0)
		return 111;
	ev_io_set(&qr.loop, &qr.sig, EV_READ);
	ev_io_set(&qr.loop, &qr.parent, EV_READ);
	ev_set_after_batch(&qr.loop, free_dead, &qr);
	if (ev_run(&qr.loop) < 0)
		log_warn("msg=\"epoll_wait: %s\"", strerror(errno));
	while (qr.links)
		link_drop(&qr, qr.links, NULL);
	free_dead(&qr.loop, &qr);
	queue_close(qr.q);
	qw_free(&qr.out);
	return 0;
}
