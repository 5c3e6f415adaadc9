/*
 * mta/smtp/queue_runner.c -- the queue runner; see queue_runner.h.
 *
 * Data:
 *   jobs     every transaction, waiting or running (d->jobs), each on its
 *            destination's wait list until it starts;
 *   dests    one per destination key with waiting or running jobs.
 * Everything that frees runs in the loop's timer phase (the scan timer,
 * the client's done callback), never inside an I/O callback.
 */
#include "mta/smtp/queue_runner.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mta/smtp/delivery_attempt.h"
#include "mta/smtp/dsn_dkim.h"
#include "mta/smtp/sts_policy.h"
#include "mta/smtp/tls_report_mail.h"
#include "mta/smtp/tls_results.h"
#include "mta/net/listen.h"
#include "mta/net/resolver.h"
#include "mta/net/log.h"
#include "mta/net/tls.h"
#include "policy/dsn.h"
#include "policy/idna.h"
#include "policy/retry.h"
#include "policy/route.h"
#include "queue/envelope.h"

#define SCAN_BATCH    64      /* messages read per scan */
#define JOBS_PER_SLOT 8       /* waiting jobs allowed per concurrency slot */
#define RESCAN_MAX_MS (5 * 60 * 1000)
#define VERIFY_MAX    4096    /* cached answers kept */
#define PROBES_MAX    64      /* probes in flight: past it, 451 at once */
#define LOCAL_MAX     64      /* interface addresses known as ours */
#define FETCH_RCPTS_MAX 65536 /* recipients of one message, past any max-recipients */
#define AHEAD_MAX     (32u * 1024u)        /* a body read ahead: at most this big */
#define AHEAD_BUDGET  (4u * 1024u * 1024u) /* bodies read ahead, all together */

/*
 * A destination (a route's key: a domain, a route, the smarthost) and what
 * is known of it.  Throttled: a connection failed or a server said 421;
 * one connection at a time until a delivery succeeds again.  Down: it
 * failed again while throttled; until down_until its due mail is deferred
 * at once with the same error, without a connection attempt of its own
 * (Postfix's "delivery temporarily suspended").  rate: at most that many
 * messages a minute start toward it (destination-rate, a route's rate).
 */
struct dest {
	struct dest *next;
	char         key[ROUTE_KEY_MAX];
	unsigned     active;
	struct job  *wait_head, *wait_tail;
	unsigned     fails;          /* connection-level failures in a row */
	int64_t      down_until;     /* Unix s; 0: not down */
	char         error[SMTPC_TEXT_MAX];
	unsigned     rate;           /* messages a minute; 0: no limit */
	int64_t      next_start;     /* monotonic ms: the next message may start */
};

struct job {
	struct deliver      *d;
	struct job          *next, *prev;     /* d->jobs */
	struct job          *wait_next;       /* dest wait list */
	struct dest         *dest;
	struct client       *cl;
	struct ev_timer      later;           /* an outcome known without a client */
	queue_id             id;
	char                 sender[QUEUE_ADDR_MAX + 1];
	int64_t              received;
	uint32_t             flags;
	uint64_t             size;
	struct route         route;
	uint64_t             ticket;          /* its outcome's UPDATE, until answered */
	uint64_t             body_ticket;     /* a piece of its body asked for, until answered */
	uint64_t             body_off;
	size_t               body_cap;
	/* A small body read while the job waits for its connection (ahead),
	 * so that a kept connection sends it at once: no read behind the
	 * queue role's commits between one message and the next. */
	char                *ahead;           /* its bytes, ahead_len of them */
	size_t               ahead_len;
	uint64_t             ahead_ticket;    /* asked, until answered */
	unsigned             ahead_wanted : 1; /* the client asked for it meanwhile */
	struct ev_timer      give;            /* gives the client what was read ahead */
	struct report       *rep;             /* its outcome, while its report is made */
	/* MTA-STS (MX delivery): the domain's policy asked for, then what
	 * applies (NULL: none, or not MX delivery). */
	struct sts_policy_wait *stsw;
	struct mtasts_policy *sts;
	unsigned             recording : 1;   /* finished: the outcome is on its way */
	unsigned             suspended : 1;   /* deferred without a try: the destination is down */
	unsigned             bounce_kind : 2; /* 1 failed, 2 delayed, 3 relayed: a report goes with it */
	size_t               bounce_n;
	size_t               n;
	uint32_t            *idx;             /* recipient indexes in the envelope */
	uint16_t            *attempts;        /* their attempts before this one */
	char               (*addr)[QUEUE_ADDR_MAX + 1];
	const char         **rcpts;
	struct smtpc_result *res;
	/* RFC 3461: passed on, or what the reports follow (policy/dsn.h). */
	struct smtpc_dsn     dsn;
	char                 envid[QUEUE_ENVID_MAX + 1];
	uint8_t             *notify;
	char               (*orcpt)[QUEUE_ORCPT_MAX + 1];
	const char         **orcpts;
};

struct deliver {
	struct ev_loop      *loop;
	struct qc           *q;       /* the queue role (mta/net/queue_client.h) */
	const struct conf   *conf;
	struct dns_resolver *dns;
	struct retry_policy  retry;
	struct ev_timer      scan_timer;
	struct job          *jobs;
	unsigned             njobs, active;
	size_t               ahead_bytes;     /* the jobs' bodies read ahead */
	struct dest         *dests;
	struct client_pool  *pool;            /* kept connections, TLS sessions */
	struct sts_policy   *sts;             /* MTA-STS policies (`mta-sts on`), or NULL */
	struct tlsmail      *tlsmail;         /* `tls-report mailto`, or NULL */
	struct ev_timer      rate_timer;      /* a rate-limited destination may start again */
	int                  stopping;
	/* The scan (scan_cb): its due list asked for, then the envelopes. */
	uint64_t             scan_ticket;
	struct fetch        *fetching;
	size_t               scan_cap, scan_want;
	int64_t              scan_now, scan_next;
	int                  scan_more;
	const struct tables *tables;          /* the smarthost's credentials, the CA bundle */
	struct ipaddr        local[LOCAL_MAX]; /* this machine's addresses, for the loop check */
	size_t               nlocal;
};

static void dispatch(struct deliver *d);
struct fetch;
struct report;
static void report_free(struct job *j);

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

/* ---- the schedule ---- */

static void scan_at(struct deliver *d, int64_t ms)
{
	if (d->stopping || !d->conf->delivery)
		return;
	if (ms > RESCAN_MAX_MS)
		ms = RESCAN_MAX_MS;
	if (d->scan_timer.slot != 0 && d->scan_timer.when <= d->loop->now + ms)
		return;        /* already due sooner */
	ev_timer_start(d->loop, &d->scan_timer, ms < 0 ? 0 : ms);
}

void deliver_kick(struct deliver *d)
{
	scan_at(d, 0);
}

unsigned deliver_active(const struct deliver *d)
{
	return d->active;
}

static struct dest *dest_get(struct deliver *d, const char *key)
{
	struct dest *t;

	for (t = d->dests; t; t = t->next)
		if (strcmp(t->key, key) == 0)
			return t;
	if ((t = calloc(1, sizeof *t)) == NULL)
		return NULL;
	snprintf(t->key, sizeof t->key, "%s", key);
	t->next = d->dests;
	d->dests = t;
	return t;
}

/* Throttled or down, and until when. */
static int dest_down(const struct dest *t, int64_t now)
{
	return t->down_until > now;
}

static void dest_put(struct deliver *d, struct dest *t)
{
	struct dest **p;

	/* (what is known of it is kept while it matters) */
	if (t->active > 0 || t->wait_head != NULL || t->fails > 0 || dest_down(t, now_s()) ||
	    t->next_start > d->loop->now)
		return;
	for (p = &d->dests; *p; p = &(*p)->next) {
		if (*p == t) {
			*p = t->next;
			free(t);
			return;
		}
	}
}

static void ahead_free(struct job *j);

static void job_free(struct job *j)
{
	struct deliver *d = j->d;

	if (j->prev)
		j->prev->next = j->next;
	else
		d->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	d->njobs--;
	ev_timer_stop(d->loop, &j->later);
	if (j->ticket != 0)
		qc_cancel(d->q, j->ticket);
	if (j->body_ticket != 0)
		qc_cancel(d->q, j->body_ticket);
	ahead_free(j);
	report_free(j);
	client_free(j->cl);
	sts_policy_cancel(j->stsw);
	free(j->sts);
	free(j->idx);
	free(j->attempts);
	free(j->addr);
	free(j->rcpts);
	free(j->res);
	free(j->notify);
	free(j->orcpt);
	free(j->orcpts);
	free(j);
}

static struct job *job_new(struct deliver *d, const struct queue_envelope *env,
                           const struct route *r, size_t cap)
{
	struct job *j = calloc(1, sizeof *j);

	if (j == NULL)
		return NULL;
	j->d = d;
	j->id = env->id;
	snprintf(j->sender, sizeof j->sender, "%s", env->sender);
	j->received = env->received;
	j->flags = env->flags;
	j->size = env->size;
	j->route = *r;
	j->idx = calloc(cap, sizeof *j->idx);
	j->attempts = calloc(cap, sizeof *j->attempts);
	j->addr = calloc(cap, sizeof *j->addr);
	j->rcpts = calloc(cap, sizeof *j->rcpts);
	j->res = calloc(cap, sizeof *j->res);
	j->notify = calloc(cap, sizeof *j->notify);
	j->orcpt = calloc(cap, sizeof *j->orcpt);
	j->orcpts = calloc(cap, sizeof *j->orcpts);
	snprintf(j->envid, sizeof j->envid, "%s", env->dsn_envid);
	j->dsn.ret = env->dsn_ret;
	j->dsn.envid = j->envid;
	j->dsn.notify = j->notify;
	j->dsn.orcpt = j->orcpts;
	j->next = d->jobs;
	if (d->jobs)
		d->jobs->prev = j;
	d->jobs = j;
	d->njobs++;
	if (!j->idx || !j->attempts || !j->addr || !j->rcpts || !j->res || !j->notify ||
	    !j->orcpt || !j->orcpts) {
		job_free(j);
		return NULL;
	}
	return j;
}

/* ---- outcomes ---- */

static const char *status_code(const struct smtpc_result *r, int expired, char buf[16])
{
	/* The enhanced code from the text when it starts with one. */
	const char *t = r->text;
	size_t i = 0;

	if (expired)
		return "4.4.7";
	/* (a reply's text starts with its code: "421 4.3.2 ..."; it was kept
	 * as the text of a failure that decided nothing, code 0) */
	if (strlen(t) > 4 && t[3] == ' ' && t[0] >= '2' && t[0] <= '5' &&
	    t[1] >= '0' && t[1] <= '9' && t[2] >= '0' && t[2] <= '9')
		t += 4;
	while (t[i] && t[i] != ' ' && i < 15)
		i++;
	if (i >= 5 && (t[0] == '2' || t[0] == '4' || t[0] == '5') && t[1] == '.') {
		memcpy(buf, t, i);
		buf[i] = '\0';
		return buf;
	}
	return r->status == SMTPC_R_PERM ? "5.0.0" : r->status == SMTPC_R_OK ? "2.0.0" : "4.0.0";
}

/* ---- the queue, waited for: the admin verbs only ----
 *
 * Deliveries never wait for the queue role: the scan, the envelopes, each
 * piece of a body, a report's draft and the outcomes are answered by
 * callback while every connection goes on.  An admin verb (moat queue
 * flush, hold, ...) is one request whose answer its caller waits for
 * (qc_wait, QC_WRITE_MS at most): rare, and the control socket's handler
 * answers in the same call. */

struct ask {
	int                    rc;
	struct qw_rep          rep;      /* the scalars; rep.data is not kept */
};

static void ask_cb(void *arg, const struct qw_rep *rep)
{
	struct ask *a = arg;

	a->rc = rep != NULL ? rep->rc : QUEUE_EIO;
	if (rep != NULL) {
		a->rep = *rep;
		a->rep.data = NULL;
	}
}

static int wait_for(struct deliver *d, uint64_t ticket, struct ask *a)
{
	qc_wait(d->q, ticket);
	return a->rc;
}

/* ---- bodies read ahead ---- */

static void ahead_free(struct job *j)
{
	if (j->ahead_ticket != 0)
		qc_cancel(j->d->q, j->ahead_ticket);
	j->ahead_ticket = 0;
	ev_timer_stop(j->d->loop, &j->give);
	if (j->ahead != NULL)
		j->d->ahead_bytes -= j->ahead_len;
	free(j->ahead);
	j->ahead = NULL;
	j->ahead_len = 0;
}

static int read_body(void *arg, uint64_t off, size_t cap);

/* What the client asked for (body_off, body_cap) from the bytes read ahead. */
static void ahead_give(struct job *j)
{
	size_t len = j->ahead_len - (size_t)j->body_off;

	if (j->cl != NULL)
		client_body_data(j->cl, j->body_off, j->ahead + j->body_off,
		                 len < j->body_cap ? len : j->body_cap);
}

static void give_cb(struct ev_loop *l, struct ev_timer *t)
{
	(void)l;
	ahead_give(t->arg);
}

static void ahead_cb(void *arg, const struct qw_rep *rep)
{
	struct job *j = arg;
	struct deliver *d = j->d;

	j->ahead_ticket = 0;
	if (rep != NULL && rep->rc == QUEUE_OK && rep->len == j->size &&
	    (j->ahead = malloc(rep->len)) != NULL) {
		memcpy(j->ahead, rep->data, rep->len);
		j->ahead_len = rep->len;
		d->ahead_bytes += rep->len;
	}
	if (!j->ahead_wanted)
		return;
	j->ahead_wanted = 0;
	if (j->ahead != NULL)
		ahead_give(j);
	else if (read_body(j, j->body_off, j->body_cap) != 0 && j->cl != NULL)
		client_body_data(j->cl, j->body_off, NULL, 0);   /* (fails the attempt) */
}

/* A job that will wait for its connection: its body, if small, read now
 * (within AHEAD_BUDGET for all of them). */
static void ahead_start(struct job *j)
{
	struct deliver *d = j->d;

	if (j->size == 0 || j->size > AHEAD_MAX || d->ahead_bytes + j->size > AHEAD_BUDGET)
		return;
	j->give.cb = give_cb;
	j->give.arg = j;
	j->ahead_ticket = qc_body_read(d->q, j->id, 0, (uint32_t)j->size, ahead_cb, j);
}

/* A piece of the body for the job's client: asked of the queue role, given
 * to the client when it comes (client_body_data), nothing waits. */
static void body_cb(void *arg, const struct qw_rep *rep)
{
	struct job *j = arg;
	int ok = rep != NULL && rep->rc == QUEUE_OK && rep->len > 0 && rep->len <= j->body_cap;

	j->body_ticket = 0;
	if (j->cl != NULL)
		client_body_data(j->cl, j->body_off, ok ? rep->data : NULL, ok ? rep->len : 0);
}

static int read_body(void *arg, uint64_t off, size_t cap)
{
	struct job *j = arg;
	struct deliver *d = j->d;

	if (j->body_ticket != 0)
		qc_cancel(d->q, j->body_ticket);   /* (a session that started again) */
	j->body_ticket = 0;
	j->body_off = off;
	j->body_cap = cap < QW_CHUNK_MAX ? cap : QW_CHUNK_MAX;
	if (j->ahead_ticket != 0 && off == 0) {
		j->ahead_wanted = 1;                /* (given when it comes) */
		return 0;
	}
	if (j->ahead != NULL && off < j->ahead_len) {
		ev_timer_start(d->loop, &j->give, 0);   /* (never from inside this call) */
		return 0;
	}
	j->body_ticket = qc_body_read(d->q, j->id, off, (uint32_t)j->body_cap, body_cb, j);
	return j->body_ticket != 0 ? 0 : -1;
}

/*
 * A job's outcome while its report (a bounce, a delay notice, "relayed")
 * is made, without waiting: the draft and the original's first bytes (its
 * headers, or all of it for RET=FULL) are asked for at once; once both are
 * in, the report is written to the draft and the outcome goes to the queue
 * role with it (record()).  What the report names lives here until then:
 * the client, and the strings it held, are gone.
 */
struct report {
	struct queue_result *qr;
	char               (*errs)[QUEUE_ERR_MAX + 1];
	char               (*codes)[16];
	struct dsn_rcpt     *list;           /* the recipients the report tells of */
	size_t               n;
	int                  delayed;        /* a delay notice */
	char                 remote[CLIENT_HOST_MAX];
	uint64_t             draft_ticket, read_ticket;
	queue_id             draft;          /* 0 until begun */
	int                  draft_done, read_done, full;
	char                *orig;           /* the original's first bytes */
	size_t               have, max;
	struct dsn_sig      *sig;            /* its DKIM signature on its way */
	char                *text;           /* the report, while it is signed */
	size_t               textlen;
	char                 received[512];
	int                  rn;
	unsigned             needs;
};

static void report_free(struct job *j)
{
	struct report *r = j->rep;

	if (r == NULL)
		return;
	if (r->draft_ticket != 0)
		qc_cancel(j->d->q, r->draft_ticket);
	if (r->read_ticket != 0)
		qc_cancel(j->d->q, r->read_ticket);
	if (r->draft != 0)
		qc_draft_abort(j->d->q, r->draft);    /* (not handed over with the outcome) */
	dsn_dkim_cancel(r->sig);
	free(r->text);
	free(r->qr);
	free(r->errs);
	free(r->codes);
	free(r->list);
	free(r->orig);
	free(r);
	j->rep = NULL;
}

static struct report *report_new(size_t n, const char *remote)
{
	struct report *r = calloc(1, sizeof *r);

	if (r == NULL)
		return NULL;
	r->qr = calloc(n, sizeof *r->qr);
	r->errs = calloc(n, sizeof *r->errs);
	r->codes = calloc(n, sizeof *r->codes);
	r->list = calloc(n, sizeof *r->list);
	snprintf(r->remote, sizeof r->remote, "%s", remote);
	if (!r->qr || !r->errs || !r->codes || !r->list) {
		free(r->qr);
		free(r->errs);
		free(r->codes);
		free(r->list);
		free(r);
		return NULL;
	}
	return r;
}

/* The report's text (r->received, then r->text): 0, or -1. */
static int report_compose(struct deliver *d, struct job *j)
{
	struct report *r = j->rep;
	struct dsn ds;
	char idtext[QUEUE_ID_TEXT], orig[QUEUE_ID_TEXT], boundary[48], date[32];
	size_t hlen;
	int64_t now = now_s();

	if (r->full && r->have == j->size)
		hlen = r->have;
	else
		r->full = 0, hlen = dsn_headers_len(r->orig ? r->orig : "", r->have, DSN_HEADERS_MAX);
	queue_id_format(r->draft, idtext);
	queue_id_format(j->id, orig);
	snprintf(boundary, sizeof boundary, "%s.%lld", idtext, (long long)now);
	memset(&ds, 0, sizeof ds);
	ds.reporting_mta = d->conf->hostname;
	ds.sender = j->sender;
	ds.queue_id = orig;
	ds.boundary = boundary;
	ds.arrival = j->received;
	ds.now = now;
	ds.delayed = r->delayed;
	ds.retry_until = j->received + (int64_t)d->conf->queue_lifetime;
	ds.rcpts = r->list;
	ds.nrcpts = r->n;
	ds.headers = r->orig ? r->orig : "";
	ds.headers_len = r->orig ? hlen : 0;
	ds.envid = j->envid;
	ds.utf8 = (j->flags & QUEUE_ENV_SMTPUTF8) != 0;
	ds.full = r->full;
	r->textlen = dsn_build(&ds, NULL, 0, &r->needs);
	if ((r->text = malloc(r->textlen + 1)) == NULL)
		return -1;
	dsn_date(now, date);
	r->rn = snprintf(r->received, sizeof r->received, "Received: by %s (moat) id %s;\r\n\t%s\r\n",
	                 d->conf->hostname, idtext, date);
	if (r->rn <= 0 || (size_t)r->rn >= sizeof r->received)
		return -1;
	dsn_build(&ds, r->text, r->textlen + 1, NULL);
	return 0;
}

static void record(struct job *j, queue_id dsn, const struct queue_envelope *dsn_env);

/* No report after all: the outcome goes alone. */
static void report_none(struct job *j)
{
	struct report *r = j->rep;

	log_warn("msg=\"cannot make a bounce\" to=%s", "sender");
	if (r->draft != 0)
		qc_draft_abort(j->d->q, r->draft);
	r->draft = 0;
	j->bounce_kind = 0;
	record(j, 0, NULL);
}

/* The report signed (hdr first) or not (hdr NULL): into its draft, and the
 * outcome handed over with it. */
static void report_signed(void *arg, const char *hdr, size_t len)
{
	struct job *j = arg;
	struct deliver *d = j->d;
	struct report *r = j->rep;
	struct queue_envelope env;
	struct queue_rcpt rcpt;

	r->sig = NULL;
	if ((hdr != NULL && qc_draft_write(d->q, r->draft, hdr, len) != 0) ||
	    qc_draft_write(d->q, r->draft, r->received, (size_t)r->rn) != 0 ||
	    qc_draft_write(d->q, r->draft, r->text, r->textlen) != 0) {
		report_none(j);
		return;
	}
	memset(&env, 0, sizeof env);
	memset(&rcpt, 0, sizeof rcpt);
	snprintf(env.helo, sizeof env.helo, "%s", d->conf->hostname);
	snprintf(env.client, sizeof env.client, "127.0.0.1");
	env.flags = ((r->needs & DSN_NEEDS_8BIT) ? QUEUE_ENV_8BITMIME : 0u) |
	            ((r->needs & DSN_NEEDS_UTF8) ? QUEUE_ENV_SMTPUTF8 : 0u);
	snprintf(rcpt.addr, sizeof rcpt.addr, "%s", j->sender);
	env.rcpts = &rcpt;
	env.nrcpts = env.rcpt_cap = 1;
	record(j, r->draft, &env);
}

/* Both halves in: compose the report, have it signed (dsn_dkim.h: the
 * key role answers through the loop), then write it (report_signed). */
static void report_ready(struct job *j)
{
	struct report *r = j->rep;

	if (!r->draft_done || !r->read_done)
		return;
	if (r->draft == 0 || report_compose(j->d, j) != 0) {
		report_none(j);
		return;
	}
	r->sig = dsn_dkim_start(r->draft, r->received, (size_t)r->rn, r->text, r->textlen,
	                        report_signed, j);
	if (r->sig == NULL)
		report_signed(j, NULL, 0);
}

static void report_draft_cb(void *arg, const struct qw_rep *rep)
{
	struct job *j = arg;

	j->rep->draft_ticket = 0;
	j->rep->draft_done = 1;
	if (rep != NULL && rep->rc == QUEUE_OK)
		j->rep->draft = rep->id;
	report_ready(j);
}

static void report_read(struct job *j);

/* The original's first bytes, piece by piece, up to what the report shows. */
static void report_read_cb(void *arg, const struct qw_rep *rep)
{
	struct job *j = arg;
	struct report *r = j->rep;

	r->read_ticket = 0;
	if (rep != NULL && rep->rc == QUEUE_OK && rep->len > 0 && rep->len <= r->max - r->have) {
		memcpy(r->orig + r->have, rep->data, rep->len);
		r->have += rep->len;
		if (r->have < r->max && r->have < j->size) {
			report_read(j);
			return;
		}
	}
	r->read_done = 1;
	report_ready(j);
}

static void report_read(struct job *j)
{
	struct report *r = j->rep;
	size_t want = r->max - r->have < QW_CHUNK_MAX ? r->max - r->have : QW_CHUNK_MAX;

	r->read_ticket = qc_body_read(j->d->q, j->id, r->have, (uint32_t)want, report_read_cb, j);
}

/* Make the report for r->list[0..n): asked for now, written when both
 * halves are in (report_ready). */
static void report_start(struct job *j, size_t n, int delayed)
{
	struct report *r = j->rep;
	int failure = 0;

	r->n = n;
	r->delayed = delayed;
	for (size_t i = 0; i < n; i++)
		failure |= r->list[i].action == DSN_ACT_FAILED || (r->list[i].action == 0 && !delayed);
	r->full = dsn_return_full(j->dsn.ret, failure, j->size);
	r->max = r->full ? DSN_FULL_MAX : DSN_HEADERS_MAX;
	if ((r->orig = malloc(r->max + 1)) == NULL)
		r->read_done = 1;
	else
		report_read(j);
	r->draft_ticket = qc_draft_begin(j->d->q, report_draft_cb, j);
}

/* The TLS policy the transaction went under (docs/tls-policy.md); for
 * one that made no attempt of its own, its route's. */
static const char *job_tls_policy(const struct job *j)
{
	if (j->cl != NULL)
		return client_tls_policy_name(client_tls_policy(j->cl));
	if (j->route.kind != ROUTE_MX)
		return client_tls_policy_name(CLIENT_TLS_ROUTE);
	if (j->sts != NULL && j->sts->mode == MTASTS_MODE_ENFORCE)
		return client_tls_policy_name(CLIENT_TLS_STS);
	if (j->sts != NULL && j->sts->mode == MTASTS_MODE_TESTING)
		return client_tls_policy_name(CLIENT_TLS_STS_TESTING);
	return client_tls_policy_name(CLIENT_TLS_OPPORTUNISTIC);
}

static void log_result(const struct job *j, size_t i, const char *remote, const char *status,
                       const char *code, const char *text)
{
	char idtext[QUEUE_ID_TEXT], to[QUEUE_ADDR_MAX * 4 + 8], relay[CLIENT_HOST_MAX * 4 + 8];
	char why[SMTPC_TEXT_MAX * 4 + 8], tls[256];
	const char *t = j->cl ? client_tls(j->cl) : "";
	const char *resumed = !t[0] ? "" : client_tls_resumed(j->cl) ? " tls-resumed=yes"
	                                                            : " tls-resumed=no";

	queue_id_format(j->id, idtext);
	log_quote(j->addr[i], strlen(j->addr[i]), to, sizeof to);
	log_quote(remote[0] ? remote : "none", strlen(remote[0] ? remote : "none"), relay, sizeof relay);
	log_quoted(text, strlen(text), why, sizeof why);
	log_quote(t[0] ? t : "none", strlen(t[0] ? t : "none"), tls, sizeof tls);
	log_event("delivery", "id=%s to=<%s> relay=%s tls=%s status=%s dsn=%s attempts=%u reply=%s%s "
	          "tls-policy=%s tls-policy-result=%s",
	          idtext, to, relay, tls, status, code, (unsigned)j->attempts[i] + 1u, why, resumed,
	          job_tls_policy(j), j->cl != NULL ? client_tls_policy_result(j->cl) : "none");
}

/* What kind of report list[0..n) makes (struct job bounce_kind): 1 if it
 * tells of a failure, else 3 (relayed recipients only). */
static unsigned report_kind(const struct dsn_rcpt *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (list[i].action == DSN_ACT_FAILED)
			return 1u;
	return 3u;
}

/* What the transaction says of its destination: a server took it, it is
 * up; none did (none answered, or each refused before MAIL), or one said
 * 421, it is throttled, then down. */
static void dest_outcome(struct deliver *d, struct job *j, const char *remote)
{
	struct dest *t = j->dest;
	char key[ROUTE_KEY_MAX * 4 + 8], why[SMTPC_TEXT_MAX * 4 + 8];
	int said421 = 0;

	if (j->suspended || j->cl == NULL)
		return;               /* no attempt of its own: it says nothing */
	for (size_t i = 0; i < j->n; i++)
		said421 |= j->res[i].code == 421;
	log_quote(t->key, strlen(t->key), key, sizeof key);
	if (!said421 && !client_unreachable(j->cl)) {
		if (remote[0] == '\0')
			return;       /* DNS, our own failure: not the destination's state */
		if (t->fails > 0 || t->down_until != 0)
			log_event("destination", "key=%s state=up", key);
		t->fails = 0;
		t->down_until = 0;
		return;
	}
	snprintf(t->error, sizeof t->error, "%s", j->res[0].text);
	log_quote(t->error, strlen(t->error), why, sizeof why);
	if (t->fails++ == 0) {
		log_event("destination", "key=%s state=throttled concurrency=1 reason=%s", key, why);
		return;
	}
	if (dest_down(t, now_s()))
		return;               /* (one already in flight when it went down) */
	t->down_until = now_s() + (int64_t)d->retry.min;
	log_event("destination", "key=%s state=down seconds=%u reason=%s", key, d->retry.min, why);
}

/* Each recipient's outcome into qr (errs holds their texts), logged;
 * the bounced ones (and, for a delay notice, the deferred) into failed.
 * Returns the number of deferred recipients; *nfailed the bounced. */
static size_t outcomes(struct deliver *d, struct job *j, const char *remote,
                       struct queue_result *qr, char (*errs)[QUEUE_ERR_MAX + 1],
                       char (*codes)[16], struct dsn_rcpt *failed, size_t *nfailed)
{
	int64_t now = now_s();
	size_t ndeferred = 0;

	*nfailed = 0;
	for (size_t i = 0; i < j->n; i++) {
		const struct smtpc_result *r = &j->res[i];
		int64_t next = 0;
		int expired = 0;
		const char *what;
		enum dsn_action act;

		qr[i].rcpt = j->idx[i];
		if (r->code != 0 && remote[0])
			snprintf(errs[i], sizeof errs[i], "%.200s said: %.300s", remote, r->text);
		else
			snprintf(errs[i], sizeof errs[i], "%s", r->text);
		qr[i].error = errs[i];
		if (r->status == SMTPC_R_OK) {
			qr[i].state = QUEUE_RCPT_DELIVERED;
			what = "sent";
		} else if (r->status == SMTPC_R_PERM) {
			qr[i].state = QUEUE_RCPT_BOUNCED;
			what = "bounced";
		} else if (retry_next(&d->retry, (unsigned)j->attempts[i] + 1u, j->received, now, &next)
		           == RETRY_EXPIRED) {
			char last[QUEUE_ERR_MAX + 1];
			snprintf(last, sizeof last, "%s", errs[i]);
			snprintf(errs[i], sizeof errs[i], "4.4.7 delivery time expired; last error: %.400s",
			         last);
			qr[i].state = QUEUE_RCPT_BOUNCED;
			expired = 1;
			what = "expired";
		} else {
			qr[i].state = QUEUE_RCPT_PENDING;
			/* (a destination down: not before it may be tried again) */
			qr[i].next_try = j->suspended && j->dest->down_until > next ? j->dest->down_until
			                                                              : next;
			what = "deferred";
			ndeferred++;
		}
		log_result(j, i, remote, what, status_code(r, expired, codes[i]), errs[i]);
		/* What the sender is told of: RFC 3461 NOTIFY (policy/dsn.h). */
		act = qr[i].state == QUEUE_RCPT_PENDING ? DSN_ACT_NONE : dsn_decide(j->notify[i],
		      qr[i].state == QUEUE_RCPT_BOUNCED ? DSN_OUT_FAILED : DSN_OUT_SENT, r->dsn_passed);
		if (act != DSN_ACT_NONE) {
			failed[*nfailed].action = act;
			failed[*nfailed].addr = j->addr[i];
			failed[*nfailed].status = expired ? "4.4.7" : codes[i];
			failed[*nfailed].diagnostic = expired ? errs[i] : r->text;
			failed[*nfailed].remote = !expired && r->code != 0;
			failed[*nfailed].remote_mta = remote;
			failed[*nfailed].orcpt = j->orcpt[i];
			(*nfailed)++;
		}
	}
	return ndeferred;
}

/* The report the outcomes ask for (a bounce, or a delay notice, or
 * "relayed"): its recipients in r->list[0..*n) (list holds the bounced
 * ones already, nfailed of them); 0 when there is none to make. */
static int report_decide(struct deliver *d, struct job *j, size_t nfailed, size_t ndeferred,
                         size_t *n)
{
	struct report *r = j->rep;
	size_t k = 0;

	*n = 0;
	/* Never to <>: a bounce is never bounced. */
	if (j->sender[0] == '\0')
		return 0;
	if (nfailed > 0) {
		j->bounce_kind = report_kind(r->list, nfailed) & 3u;
		j->bounce_n = *n = nfailed;
		return 1;
	}
	if (ndeferred == 0 || (j->flags & QUEUE_ENV_WARNED) ||
	    !retry_warn_due(&d->retry, j->received, now_s()))
		return 0;
	for (size_t i = 0; i < j->n; i++) {
		if (r->qr[i].state != QUEUE_RCPT_PENDING ||
		    dsn_decide(j->notify[i], DSN_OUT_DELAYED, 0) == DSN_ACT_NONE)
			continue;
		r->list[k].action = DSN_ACT_DELAYED;
		r->list[k].orcpt = j->orcpt[i];
		r->list[k].addr = j->addr[i];
		r->list[k].status = status_code(&j->res[i], 0, r->codes[i]);
		r->list[k].diagnostic = j->res[i].text;
		r->list[k].remote = j->res[i].code != 0;
		r->list[k].remote_mta = r->remote;
		k++;
	}
	if (k == 0)
		return 0;          /* none of them to be told (NOTIFY) */
	j->bounce_kind = 2;
	j->bounce_n = *n = k;
	return 1;
}

/* The queue role recorded the outcome (rep NULL: it did not): the job is
 * gone for good. */
static void recorded(void *arg, const struct qw_rep *rep)
{
	struct job *j = arg;
	struct deliver *d = j->d;
	char idtext[QUEUE_ID_TEXT], orig[QUEUE_ID_TEXT];
	int result = rep != NULL ? rep->rc : QUEUE_EIO;

	j->ticket = 0;
	queue_id_format(j->id, orig);
	if (result != QUEUE_OK && result != QUEUE_ENOTFOUND) {
		log_warn("msg=\"cannot record a delivery: it will be tried again\" id=%s error=\"%s\"",
		         orig, queue_strerror(result));
	} else if (result == QUEUE_OK && j->bounce_kind != 0) {
		queue_id_format(rep->id, idtext);
		log_event("bounce", "id=%s orig=%s kind=%s nrcpt=%zu", idtext, orig,
		          j->bounce_kind == 2 ? "delayed" : j->bounce_kind == 3 ? "relayed" : "failed", j->bounce_n);
	}
	if (result == QUEUE_OK && rep->gone)
		log_event("removed", "id=%s reason=done", orig);
	job_free(j);
	scan_at(d, 0);     /* a bounce may be due, the message may be due again */
}

/* Every recipient's outcome to the queue role in one UPDATE, with the
 * report's draft (0: none), without waiting: outcomes that come together
 * share one transaction there (group commit).  The job stays in flight
 * until the answer (recorded()). */
static void record(struct job *j, queue_id dsn, const struct queue_envelope *dsn_env)
{
	struct report *r = j->rep;

	r->draft = 0;          /* (the update carries it now) */
	j->ticket = qc_update(j->d->q, j->id, r->qr, j->n, j->bounce_kind == 2 ? QUEUE_ENV_WARNED : 0,
	                      dsn, dsn ? dsn_env : NULL, recorded, j);
	report_free(j);
}

/* The transaction's sessions under DANE or MTA-STS, for the day's TLS
 * report of the recipient domain (its A-label form). */
static void tls_results(struct deliver *d, const struct job *j)
{
	const struct client_session *s;
	size_t n = j->cl != NULL ? client_sessions(j->cl, &s) : 0;
	char alabel[DNS_NAME_MAX + 1];

	if (n == 0 || j->route.kind != ROUTE_MX ||
	    idna_to_ascii(j->route.domain, strlen(j->route.domain), alabel, sizeof alabel) == 0)
		return;
	(void)tlsres_sessions(d->q, alabel, j->sts, s, n, now_s());
}

/*
 * The client is done (timer phase): the outcomes are logged and go to the
 * queue role (record), after the report they ask for is made; the job's
 * slot and its connection are free at once for the next message.
 */
static void job_done(void *arg, const char *remote)
{
	struct job *j = arg;
	struct deliver *d = j->d;
	struct dest *t = j->dest;
	size_t nfailed = 0, ndeferred, n;

	dest_outcome(d, j, remote);
	t->active--;
	d->active--;
	if ((j->rep = report_new(j->n, remote)) == NULL) {
		log_warn("msg=\"out of memory recording a delivery: it will be tried again\"");
		job_free(j);
	} else {
		ndeferred = outcomes(d, j, j->rep->remote, j->rep->qr, j->rep->errs, j->rep->codes,
		                     j->rep->list, &nfailed);
		tls_results(d, j);
		client_free(j->cl);   /* its connection is kept, or closed */
		j->cl = NULL;
		if (j->body_ticket != 0)
			qc_cancel(d->q, j->body_ticket);
		j->body_ticket = 0;
		ahead_free(j);
		j->recording = 1;
		j->dest = NULL;       /* (the destination may go before the answer comes) */
		if (report_decide(d, j, nfailed, ndeferred, &n))
			report_start(j, n, j->bounce_kind == 2);
		else
			record(j, 0, NULL);
	}
	dest_put(d, t);
	dispatch(d);
	scan_at(d, 0);     /* a slot is free */
}

/* ---- starting jobs ---- */

static void later_cb(struct ev_loop *l, struct ev_timer *t)
{
	(void)l;
	job_done(t->arg, "");
}

/* Every recipient of j ends with st and text, recorded from the timer
 * phase like any outcome (j counts as running until then). */
static void job_fail_later(struct job *j, enum smtpc_status st, const char *text)
{
	for (size_t i = 0; i < j->n; i++) {
		j->res[i].status = (uint8_t)st;
		j->res[i].code = 0;
		snprintf(j->res[i].text, sizeof j->res[i].text, "%s", text);
	}
	j->later.cb = later_cb;
	j->later.arg = j;
	ev_timer_start(j->d->loop, &j->later, 0);
}

/* The transaction starts (its MTA-STS policy, if any, is known). */
static void job_connect(struct job *j)
{
	struct deliver *d = j->d;
	struct client_req req;

	memset(&req, 0, sizeof req);
	req.conf = d->conf;
	req.dns = d->dns;
	req.anchors = d->tables->anchors;
	req.route = j->route;
	req.sender = j->sender;
	req.rcpts = j->rcpts;
	req.nrcpts = j->n;
	req.res = j->res;
	req.size = j->size;
	req.flags = ((j->flags & QUEUE_ENV_8BITMIME) ? SMTPC_F_8BITMIME : 0u) |
	            ((j->flags & QUEUE_ENV_SMTPUTF8) ? SMTPC_F_SMTPUTF8 : 0u);
	if (j->route.kind == ROUTE_SMARTHOST && d->tables->have_auth) {
		req.auth_user = d->tables->auth_user;
		req.auth_pass = d->tables->auth_pass;
	}
	req.dsn = &j->dsn;
	req.body = read_body;
	req.body_arg = j;
	req.done = job_done;
	req.arg = j;
	req.pool = d->pool;
	req.key = j->dest->key;
	req.local = d->local;
	req.nlocal = d->nlocal;
	req.sts = j->sts;
	req.dane = d->conf->dane && d->conf->dns_dnssec == CONF_DNSSEC_TRUSTED;
	j->cl = client_start(d->loop, &req);
	if (j->cl == NULL)
		job_fail_later(j, SMTPC_R_TEMP, "4.3.0 out of memory");
}

/* The domain's MTA-STS policy is known (v NULL: it could not be looked
 * up, for want of memory: the mail waits rather than go without it). */
static void sts_known(void *arg, const struct sts_verdict *v)
{
	struct job *j = arg;

	j->stsw = NULL;
	if (v == NULL) {
		job_fail_later(j, SMTPC_R_TEMP, "4.3.0 out of memory looking up the MTA-STS policy");
		return;
	}
	if (v->have && (j->sts = malloc(sizeof *j->sts)) == NULL) {
		job_fail_later(j, SMTPC_R_TEMP, "4.3.0 out of memory");
		return;
	}
	if (v->have)
		*j->sts = v->policy;
	job_connect(j);
}

/* A fetch of a domain's MTA-STS policy failed: for its TLS report. */
static void sts_fetch_failed(void *arg, const char *domain, unsigned result, const char *reason)
{
	struct deliver *d = arg;

	(void)tlsres_fetch_failed(d->q, domain, result, reason, now_s());
}

/* The job counts as running from here: MX delivery asks for the
 * domain's MTA-STS policy first (docs/tls-policy.md), the rest connects
 * at once. */
static void job_start(struct job *j)
{
	struct deliver *d = j->d;
	char alabel[DNS_NAME_MAX + 1];

	j->dest->active++;
	d->active++;
	if (j->dest->rate > 0) {
		struct dest *t = j->dest;

		if (t->next_start < d->loop->now)
			t->next_start = d->loop->now;
		t->next_start += 60000 / (int64_t)t->rate;
	}
	if (d->sts == NULL || j->route.kind != ROUTE_MX ||
	    idna_to_ascii(j->route.domain, strlen(j->route.domain), alabel, sizeof alabel) == 0 ||
	    !dns_name_ok(alabel, strlen(alabel))) {
		job_connect(j);
		return;
	}
	if ((j->stsw = sts_policy_lookup(d->sts, alabel, sts_known, j)) == NULL)
		job_fail_later(j, SMTPC_R_TEMP, "4.3.0 out of memory looking up the MTA-STS policy");
}

/* The destination is down: deferred at once, with its error, no try. */
static void job_suspend(struct job *j)
{
	j->suspended = 1;
	j->dest->active++;
	j->d->active++;
	job_fail_later(j, SMTPC_R_TEMP, j->dest->error);
}

static struct job *wait_pop(struct dest *t)
{
	struct job *j = t->wait_head;

	t->wait_head = j->wait_next;
	if (t->wait_head == NULL)
		t->wait_tail = NULL;
	return j;
}

static void rate_cb(struct ev_loop *l, struct ev_timer *t)
{
	(void)l;
	dispatch(t->arg);
}

/* Start what may start: within delivery-concurrency, and per destination
 * its concurrency (1 while throttled) and its rate; a down destination's
 * jobs end at once (deferred). */
static void dispatch(struct deliver *d)
{
	int64_t now = now_s(), wake = INT64_MAX;

	if (d->stopping)
		return;
	for (struct dest *t = d->dests; t; ) {
		struct dest *next = t->next;
		unsigned conc = t->fails > 0 ? 1 : d->conf->destination_concurrency;

		while (t->wait_head && dest_down(t, now))
			job_suspend(wait_pop(t));
		while (t->wait_head && t->active < conc && d->active < d->conf->delivery_concurrency) {
			if (t->rate > 0 && t->next_start > d->loop->now) {
				if (t->next_start < wake)
					wake = t->next_start;
				break;
			}
			job_start(wait_pop(t));
		}
		t = next;
	}
	if (wake != INT64_MAX)
		ev_timer_start(d->loop, &d->rate_timer, wake - d->loop->now);
}

/* Jobs for the due recipients of one message, one per destination. */
static void plan_message(struct deliver *d, const struct queue_envelope *envp, int64_t now)
{
	const struct queue_envelope env = *envp;
	struct job *mine[16];
	size_t nmine = 0;

	for (size_t i = 0; i < env.nrcpts; i++) {
		const struct queue_rcpt *qr = &env.rcpts[i];
		struct route r;
		struct job *j = NULL;

		if (qr->state != QUEUE_RCPT_PENDING || qr->next_try > now)
			continue;
		route_select(d->conf, qr->addr, &r);
		for (size_t k = 0; k < nmine; k++)
			if (strcmp(mine[k]->route.key, r.key) == 0 && r.kind != ROUTE_NONE)
				j = mine[k];
		if (j == NULL) {
			if (nmine == sizeof mine / sizeof mine[0])
				continue;        /* the rest in a later scan */
			if ((j = job_new(d, &env, &r, env.nrcpts)) == NULL)
				continue;
			mine[nmine++] = j;
		}
		j->idx[j->n] = (uint32_t)i;
		j->attempts[j->n] = qr->attempts;
		snprintf(j->addr[j->n], sizeof j->addr[j->n], "%s", qr->addr);
		j->rcpts[j->n] = j->addr[j->n];
		j->notify[j->n] = qr->notify;
		snprintf(j->orcpt[j->n], sizeof j->orcpt[j->n], "%s", qr->orcpt);
		j->orcpts[j->n] = j->orcpt[j->n];
		j->n++;
	}
	for (size_t k = 0; k < nmine; k++) {
		struct job *j = mine[k];
		if (j->route.kind == ROUTE_NONE) {
			/* Nowhere to send it: a bounce, through the normal path. */
			j->dest = dest_get(d, "none");
			if (j->dest == NULL) {
				job_free(j);
				continue;
			}
			j->dest->active++;
			d->active++;
			job_fail_later(j, SMTPC_R_PERM, "5.1.2 no route to the recipient's domain");
			continue;
		}
		if ((j->dest = dest_get(d, j->route.key)) == NULL) {
			job_free(j);
			continue;
		}
		j->dest->rate = j->route.hop != NULL ? j->route.hop->rate
		              : j->route.kind == ROUTE_MX ? d->conf->destination_rate : 0;
		if (j->dest->wait_tail)
			j->dest->wait_tail->wait_next = j;
		else
			j->dest->wait_head = j;
		j->dest->wait_tail = j;
		if (!dest_down(j->dest, now))
			ahead_start(j);
	}
}

/*
 * The scan, without waiting: the due list (qc_due), then each message's
 * envelope (qc_get), all asked at once; each answer plans its jobs as it
 * comes, and when the last one is in, what may start starts and the next
 * scan is set.  One scan at a time: one asked for meanwhile waits for
 * this one's end (scan_over).
 */
struct fetch {
	struct deliver       *d;
	struct fetch         *next;
	uint64_t              ticket;
	queue_id              id;
	struct queue_envelope env;
	struct queue_rcpt    *rcpts;
	size_t                cap;
};

static void fetch_free(struct fetch *f)
{
	struct fetch **p = &f->d->fetching;

	while (*p != f)
		p = &(*p)->next;
	*p = f->next;
	if (f->ticket != 0)
		qc_cancel(f->d->q, f->ticket);
	free(f->rcpts);
	free(f);
}

/* Every envelope of the scan is in: start what may start, set the next. */
static void scan_over(struct deliver *d)
{
	int64_t now = now_s();

	dispatch(d);
	if (d->scan_next == INT64_MAX)
		scan_at(d, RESCAN_MAX_MS);
	else if (d->scan_next <= now)
		scan_at(d, d->scan_more && d->njobs < d->conf->delivery_concurrency * JOBS_PER_SLOT
		           ? 0 : 1000);
	else
		scan_at(d, (d->scan_next - now) * 1000 + 50);
}

static void fetch_ask(struct fetch *f);

static void fetch_cb(void *arg, const struct qw_rep *rep)
{
	struct fetch *f = arg;
	struct deliver *d = f->d;
	int rc = rep != NULL ? rep->rc : QUEUE_EIO;
	char idtext[QUEUE_ID_TEXT];

	f->ticket = 0;
	if (rc == QUEUE_EINVAL && rep->n > f->cap && rep->n <= FETCH_RCPTS_MAX) {
		/* more recipients than room: ask again with room for them */
		struct queue_rcpt *r = realloc(f->rcpts, rep->n * sizeof *r);
		if (r != NULL) {
			f->rcpts = r;
			f->cap = rep->n;
			fetch_ask(f);
			return;
		}
	}
	if (rc == QUEUE_OK && (qw_env_decode(rep->data, rep->len, &f->env, NULL) != QUEUE_OK ||
	                       f->env.nrcpts != rep->n || f->env.id != f->id))
		rc = QUEUE_EIO;
	if (rc == QUEUE_OK && !d->stopping) {
		plan_message(d, &f->env, now_s());
	} else if (rc != QUEUE_OK && rc != QUEUE_ENOTFOUND) {
		queue_id_format(f->id, idtext);
		log_warn("msg=\"cannot read a queued message\" id=%s error=\"%s\"", idtext,
		         queue_strerror(rc));
	}
	fetch_free(f);
	if (d->fetching == NULL && !d->stopping)
		scan_over(d);
}

static void fetch_ask(struct fetch *f)
{
	memset(&f->env, 0, sizeof f->env);
	f->env.rcpts = f->rcpts;
	f->env.rcpt_cap = f->cap;
	f->ticket = qc_get(f->d->q, f->id, (uint32_t)f->cap, fetch_cb, f);
}

static int fetch_start(struct deliver *d, queue_id id)
{
	struct fetch *f = calloc(1, sizeof *f);

	if (f == NULL || (f->rcpts = calloc(16, sizeof *f->rcpts)) == NULL) {
		free(f);
		return -1;
	}
	f->d = d;
	f->id = id;
	f->cap = 16;
	f->next = d->fetching;
	d->fetching = f;
	fetch_ask(f);
	return 0;
}

/* In flight: a job has it, or its envelope is being read. */
static int in_flight(void *arg, queue_id id)
{
	struct deliver *d = arg;

	for (struct job *j = d->jobs; j; j = j->next)
		if (j->id == id)
			return 1;
	for (struct fetch *f = d->fetching; f; f = f->next)
		if (f->id == id)
			return 1;
	return 0;
}

/* The due list: the messages not in flight, up to the room there is;
 * scan_next is now when more were due than taken, else when the next one
 * is. */
static void due_cb(void *arg, const struct qw_rep *rep)
{
	struct deliver *d = arg;
	int rc = rep != NULL ? rep->rc : QUEUE_EIO;
	size_t got = 0;

	d->scan_ticket = 0;
	if (rc != QUEUE_OK) {
		log_warn("msg=\"cannot read the schedule\" error=\"%s\"", queue_strerror(rc));
		scan_at(d, 10000);
		return;
	}
	for (size_t i = 0; i < rep->n && got < d->scan_cap; i++) {
		queue_id id = qw_due_id(rep, i);

		if (!in_flight(d, id) && fetch_start(d, id) == 0)
			got++;
	}
	d->scan_more = rep->n == d->scan_want || got == d->scan_cap;
	d->scan_next = d->scan_more ? d->scan_now : rep->next;
	if (d->fetching == NULL)
		scan_over(d);
}

static void scan_cb(struct ev_loop *l, struct ev_timer *t)
{
	struct deliver *d = t->arg;
	unsigned room_max = d->conf->delivery_concurrency * JOBS_PER_SLOT;
	size_t want;

	(void)l;
	if (d->stopping || !d->conf->delivery)
		return;
	if (d->scan_ticket != 0 || d->fetching != NULL || d->njobs >= room_max)
		return;              /* the scan going on, or a job's end, scans again */
	d->scan_cap = room_max - d->njobs < SCAN_BATCH ? room_max - d->njobs : SCAN_BATCH;
	/* (asking for the jobs in flight more, which in_flight() refuses) */
	want = d->scan_cap + d->njobs;
	d->scan_want = want > QW_DUE_MAX ? QW_DUE_MAX : want;
	d->scan_now = now_s();
	d->scan_ticket = qc_due(d->q, d->scan_now, (uint32_t)d->scan_want, due_cb, d);
}

/* ---- admin ---- */

static void dest_forget(struct deliver *d)
{
	for (struct dest *t = d->dests; t; t = t->next) {
		t->fails = 0;
		t->down_until = 0;
	}
}

int deliver_admin(struct deliver *d, const char *verb, queue_id id, char *msg, size_t cap)
{
	struct ask a = { 0 };
	char idtext[QUEUE_ID_TEXT];
	size_t count = 0;
	int rc;

	queue_id_format(id, idtext);
	/* The admin says "now": what is known of the destinations is
	 * forgotten, so a throttled or down one is tried at once. */
	if (strcmp(verb, "flush") == 0 || strcmp(verb, "retry") == 0 || strcmp(verb, "release") == 0)
		dest_forget(d);
	if (strcmp(verb, "flush") == 0) {
		rc = wait_for(d, qc_retry(d->q, 0, ask_cb, &a), &a);
		count = a.rep.count;
		if (rc == QUEUE_OK)
			snprintf(msg, cap, "%zu waiting message%s due now", count, count == 1 ? "" : "s");
	} else if (strcmp(verb, "retry") == 0) {
		rc = wait_for(d, qc_retry(d->q, id, ask_cb, &a), &a);
		count = a.rep.count;
		if (rc == QUEUE_OK)
			snprintf(msg, cap, count ? "%s due now" : "%s is held: release it first", idtext);
	} else if (strcmp(verb, "hold") == 0 || strcmp(verb, "release") == 0) {
		int hold = verb[0] == 'h';
		rc = wait_for(d, qc_hold(d->q, id, hold, ask_cb, &a), &a);
		if (rc == QUEUE_OK)
			snprintf(msg, cap, "%s %s", idtext, hold ? "held" : "released");
	} else if (strcmp(verb, "delete") == 0) {
		rc = wait_for(d, qc_delete(d->q, id, ask_cb, &a), &a);
		if (rc == QUEUE_OK) {
			snprintf(msg, cap, "%s deleted", idtext);
			log_event("removed", "id=%s reason=deleted", idtext);
		}
	} else {
		snprintf(msg, cap, "unknown verb");
		return QUEUE_EINVAL;
	}
	if (rc == QUEUE_ENOTFOUND)
		snprintf(msg, cap, "%s: no such message", idtext);
	else if (rc != QUEUE_OK)
		snprintf(msg, cap, "%s", queue_strerror(rc));
	else if (strcmp(verb, "hold") != 0 && strcmp(verb, "delete") != 0)
		deliver_kick(d);
	return rc;
}

int deliver_destinations(void *arg, const struct ctl_req *req, char *text, size_t cap)
{
	struct deliver *d = arg;
	int64_t now = now_s();
	size_t o = 0;

	(void)req;
	text[0] = '\0';
	for (const struct dest *t = d->dests; t != NULL && o + 64 < cap; t = t->next) {
		char why[120];
		int n;

		if (t->fails == 0 && !dest_down(t, now))
			continue;
		/* (the error comes from a peer: printable ASCII only) */
		snprintf(why, sizeof why, "%.119s", t->error);
		for (char *p = why; *p; p++)
			if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
				*p = '?';
		if (dest_down(t, now))
			n = snprintf(text + o, cap - o, "%s%s down %llds: %s", o ? "\n" : "", t->key,
			             (long long)(t->down_until - now), why);
		else
			n = snprintf(text + o, cap - o, "%s%s throttled: %s", o ? "\n" : "", t->key, why);
		if (n < 0 || (size_t)n >= cap - o) {
			text[o] = '\0';	/* (no half line) */
			break;
		}
		o += (size_t)n;
	}
	if (o == 0)
		snprintf(text, cap, "none");
	return CTL_OK;
}

int deliver_control(void *arg, const struct ctl_req *req, char *text, size_t cap)
{
	struct deliver *d = arg;
	char verb[16], idtext[QUEUE_ID_TEXT + 1];
	queue_id id = 0;
	int rc;

	if (req->verb.len >= sizeof verb)
		return CTL_BAD;
	memcpy(verb, req->verb.p, req->verb.len);
	verb[req->verb.len] = '\0';
	if (req->nargs > 0) {
		if (req->arg[0].len != QUEUE_ID_TEXT - 1) {
			snprintf(text, cap, "an ID is 16 hex digits");
			return CTL_BAD;
		}
		memcpy(idtext, req->arg[0].p, QUEUE_ID_TEXT - 1);
		idtext[QUEUE_ID_TEXT - 1] = '\0';
		if (queue_id_parse(idtext, &id) != 0) {
			snprintf(text, cap, "an ID is 16 hex digits");
			return CTL_BAD;
		}
	}
	rc = deliver_admin(d, verb, id, text, cap);
	return rc == QUEUE_OK ? CTL_OK : rc == QUEUE_ENOTFOUND ? CTL_NOTFOUND
	       : rc == QUEUE_EINVAL ? CTL_BAD : CTL_FAILED;
}

/* ---- life ---- */

struct deliver *deliver_new(struct ev_loop *l, struct qc *q, const struct conf *c,
                            const struct tables *t, char *err, size_t errcap)
{
	struct deliver *d = calloc(1, sizeof *d);

	if (d == NULL) {
		snprintf(err, errcap, "delivery: out of memory");
		return NULL;
	}
	d->loop = l;
	d->q = q;
	d->conf = c;
	d->retry.min = c->retry_min;
	d->retry.max = c->retry_max;
	d->retry.lifetime = c->queue_lifetime;
	d->retry.warn = c->delay_warning;
	d->scan_timer.cb = scan_cb;
	d->scan_timer.arg = d;
	d->rate_timer.cb = rate_cb;
	d->rate_timer.arg = d;
	/* Kept connections (none with one message per connection, or no idle
	 * time) and the TLS sessions to offer again. */
	if ((d->pool = client_pool_new(l, c->delivery_conn_messages,
	                               c->delivery_conn_idle * 1000)) == NULL) {
		snprintf(err, errcap, "delivery: out of memory");
		free(d);
		return NULL;
	}
	d->tables = t;
	if (t->anchors != NULL)
		log_event("tls-ca", "file=%s anchors=%zu", c->tls_ca_file, tls_anchors_count(t->anchors));
	if ((d->dns = dns_resolver_new(l, c, err, errcap)) == NULL) {
		free(d);
		return NULL;
	}
	/* DNSSEC asked for (the DO bit) and the AD bit believed only when the
	 * resolver is declared trusted (docs/tls-policy.md). */
	dns_resolver_dnssec(d->dns, c->dns_dnssec == CONF_DNSSEC_TRUSTED);
	if (c->mta_sts && (d->sts = sts_policy_new(l, d->dns, q, t->anchors, c->timeout_connect,
	                                           sts_fetch_failed, d)) == NULL) {
		snprintf(err, errcap, "delivery: out of memory");
		dns_resolver_free(d->dns);
		free(d);
		return NULL;
	}
	if (c->tls_report == CONF_TLS_REPORT_MAILTO &&
	    (d->tlsmail = tlsmail_new(l, q, d->dns, c)) == NULL) {
		snprintf(err, errcap, "delivery: out of memory");
		sts_policy_free(d->sts);
		dns_resolver_free(d->dns);
		free(d);
		return NULL;
	}
	/* (before the sandbox, as resolv.conf and /etc/hosts) */
	d->nlocal = listen_local_addrs(d->local, LOCAL_MAX);
	scan_at(d, 0);
	return d;
}

void deliver_stop(struct deliver *d)
{
	if (d == NULL || d->stopping)
		return;
	d->stopping = 1;
	tlsmail_free(d->tlsmail);
	d->tlsmail = NULL;
	ev_timer_stop(d->loop, &d->scan_timer);
	ev_timer_stop(d->loop, &d->rate_timer);
	if (d->scan_ticket != 0)
		qc_cancel(d->q, d->scan_ticket);
	d->scan_ticket = 0;
	while (d->fetching)
		fetch_free(d->fetching);
	while (d->jobs)
		job_free(d->jobs);       /* nothing recorded: tried again later */
	client_pool_free(d->pool);   /* QUIT to the kept connections */
	d->pool = NULL;
	while (d->dests) {
		struct dest *t = d->dests;
		d->dests = t->next;
		free(t);
	}
	d->active = 0;
}

void deliver_free(struct deliver *d)
{
	if (d == NULL)
		return;
	deliver_stop(d);
	sts_policy_free(d->sts);
	dns_resolver_free(d->dns);
	free(d);
}
