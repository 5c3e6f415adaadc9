/*
 * mta/smtp/queue_runner.c -- the queue runner and recipient verification; see
 * deliver.h.
 *
 * Data:
 *   jobs     every transaction, waiting or running (d->jobs), each on its
 *            destination's wait list until it starts;
 *   dests    one per destination key with waiting or running jobs;
 *   verifies probes in flight and cached answers.
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
#include "mta/net/resolver.h"
#include "mta/net/log.h"
#include "mta/net/tls.h"
#include "policy/dsn.h"
#include "policy/retry.h"
#include "policy/route.h"

#define SCAN_BATCH    64      /* messages read per scan */
#define JOBS_PER_SLOT 8       /* waiting jobs allowed per concurrency slot */
#define RESCAN_MAX_MS (5 * 60 * 1000)
#define VERIFY_MAX    4096    /* cached answers kept */
#define PROBES_MAX    64      /* probes in flight: past it, 451 at once */

struct dest {
	struct dest *next;
	char         key[ROUTE_KEY_MAX];
	unsigned     active;
	struct job  *wait_head, *wait_tail;
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
	size_t               n;
	uint32_t            *idx;             /* recipient indexes in the envelope */
	uint16_t            *attempts;        /* their attempts before this one */
	char               (*addr)[QUEUE_ADDR_MAX + 1];
	const char         **rcpts;
	struct smtpc_result *res;
};

struct verify {
	struct deliver *d;
	struct verify  *next;                 /* d->verifies */
	struct verify  *owner;                /* a waiter: the probe it joined */
	char            addr[QUEUE_ADDR_MAX + 1];
	int             state;                /* 0 probing, 1 answered (cached) */
	enum verify_verdict verdict;
	int64_t         expires;              /* monotonic ms */
	verify_cb      *cb;
	void           *arg;                  /* a waiter's asker */
	struct client  *cl;                   /* a probe's transaction */
	struct ev_timer timer;                /* probe: the deadline; waiter: the answer */
	const char     *rcpt1[1];
	struct smtpc_result res[1];
	unsigned        nwaiting;
};

struct deliver {
	struct ev_loop      *loop;
	struct rq           *q;       /* the queue role (mta/net/queue_client.h) */
	const struct conf   *conf;
	struct dns_resolver *dns;
	struct retry_policy  retry;
	struct ev_timer      scan_timer;
	struct job          *jobs;
	unsigned             njobs, active;
	int                  no_runner;     /* verification and admin only (the smtp role) */
	struct dest         *dests;
	struct verify       *verifies;
	unsigned             nverifies;
	unsigned             nprobes;         /* probes in flight */
	struct queue_rcpt   *rcpts;           /* for queue_get */
	size_t               rcpt_cap;
	int                  stopping;
	char                 auth_user[256], auth_pass[256];
	int                  have_auth;
	struct tls_anchors  *anchors;         /* tls-ca-file, when `tls verify` is used */
};

static void dispatch(struct deliver *d);

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

static int in_flight(void *arg, queue_id id)
{
	struct deliver *d = arg;

	for (struct job *j = d->jobs; j; j = j->next)
		if (j->id == id)
			return 1;
	return 0;
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

static void dest_put(struct deliver *d, struct dest *t)
{
	struct dest **p;

	if (t->active > 0 || t->wait_head != NULL)
		return;
	for (p = &d->dests; *p; p = &(*p)->next) {
		if (*p == t) {
			*p = t->next;
			free(t);
			return;
		}
	}
}

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
	client_free(j->cl);
	free(j->idx);
	free(j->attempts);
	free(j->addr);
	free(j->rcpts);
	free(j->res);
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
	j->next = d->jobs;
	if (d->jobs)
		d->jobs->prev = j;
	d->jobs = j;
	d->njobs++;
	if (!j->idx || !j->attempts || !j->addr || !j->rcpts || !j->res) {
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
	if (r->code >= 200 && strlen(t) > 4 && t[3] == ' ')
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

static int read_body(void *arg, uint64_t off, void *buf, size_t cap, size_t *got)
{
	struct job *j = arg;

	return rq_body_read(j->d->q, j->id, off, buf, cap, got) == QUEUE_OK ? 0 : -1;
}

/* The original's header block, for a bounce; *len 0 if unreadable. */
static char *original_headers(struct deliver *d, queue_id id, size_t *len)
{
	char *buf = malloc(DSN_HEADERS_MAX + 1);
	size_t have = 0;

	*len = 0;
	if (buf == NULL)
		return NULL;
	while (have < DSN_HEADERS_MAX) {
		size_t got = 0;
		if (rq_body_read(d->q, id, have, buf + have, DSN_HEADERS_MAX - have, &got) != QUEUE_OK
		    || got == 0)
			break;
		have += got;
	}
	*len = dsn_headers_len(buf, have, DSN_HEADERS_MAX);
	return buf;
}

/* Build and draft a bounce or delay notice for the recipients in list.
 * Returns the draft (or NULL), with its envelope in env/rcpt. */
static struct rq_draft *make_dsn(struct deliver *d, const struct job *j,
                                    const struct dsn_rcpt *list, size_t n, int delayed,
                                    struct queue_envelope *env, struct queue_rcpt *rcpt)
{
	struct dsn ds;
	struct rq_draft *draft;
	queue_id id = 0;
	char idtext[QUEUE_ID_TEXT], orig[QUEUE_ID_TEXT], boundary[48], date[32], *text, *hdr;
	size_t hlen, need;
	unsigned needs = 0;
	int64_t now = now_s();
	char received[512];
	int rn;

	if ((draft = rq_draft_begin(d->q, &id)) == NULL)
		return NULL;
	queue_id_format(id, idtext);
	queue_id_format(j->id, orig);
	snprintf(boundary, sizeof boundary, "%s.%lld", idtext, (long long)now);
	hdr = original_headers(d, j->id, &hlen);
	memset(&ds, 0, sizeof ds);
	ds.reporting_mta = d->conf->hostname;
	ds.sender = j->sender;
	ds.queue_id = orig;
	ds.boundary = boundary;
	ds.arrival = j->received;
	ds.now = now;
	ds.delayed = delayed;
	ds.retry_until = j->received + (int64_t)d->conf->queue_lifetime;
	ds.rcpts = list;
	ds.nrcpts = n;
	ds.headers = hdr ? hdr : "";
	ds.headers_len = hdr ? hlen : 0;
	need = dsn_build(&ds, NULL, 0, &needs);
	text = malloc(need + 1);
	dsn_date(now, date);
	rn = snprintf(received, sizeof received, "Received: by %s (moat) id %s;\r\n\t%s\r\n",
	              d->conf->hostname, idtext, date);
	if (text == NULL || rn <= 0 || (size_t)rn >= sizeof received) {
		free(text);
		free(hdr);
		rq_draft_abort(draft);
		return NULL;
	}
	dsn_build(&ds, text, need + 1, NULL);
	if (rq_draft_write(draft, received, (size_t)rn) != QUEUE_OK ||
	    rq_draft_write(draft, text, need) != QUEUE_OK) {
		free(text);
		free(hdr);
		rq_draft_abort(draft);
		return NULL;
	}
	free(text);
	free(hdr);
	memset(env, 0, sizeof *env);
	memset(rcpt, 0, sizeof *rcpt);
	snprintf(env->helo, sizeof env->helo, "%s", d->conf->hostname);
	snprintf(env->client, sizeof env->client, "127.0.0.1");
	env->flags = ((needs & DSN_NEEDS_8BIT) ? QUEUE_ENV_8BITMIME : 0u) |
	             ((needs & DSN_NEEDS_UTF8) ? QUEUE_ENV_SMTPUTF8 : 0u);
	snprintf(rcpt->addr, sizeof rcpt->addr, "%s", j->sender);
	env->rcpts = rcpt;
	env->nrcpts = env->rcpt_cap = 1;
	return draft;
}

static void log_result(const struct job *j, size_t i, const char *remote, const char *status,
                       const char *code, const char *text)
{
	char idtext[QUEUE_ID_TEXT], to[QUEUE_ADDR_MAX * 4 + 8], relay[CLIENT_HOST_MAX * 4 + 8];
	char why[SMTPC_TEXT_MAX * 4 + 8], tls[256];
	const char *t = j->cl ? client_tls(j->cl) : "";

	queue_id_format(j->id, idtext);
	log_quote(j->addr[i], strlen(j->addr[i]), to, sizeof to);
	log_quote(remote[0] ? remote : "none", strlen(remote[0] ? remote : "none"), relay, sizeof relay);
	log_quote(text, strlen(text), why, sizeof why);
	log_quote(t[0] ? t : "none", strlen(t[0] ? t : "none"), tls, sizeof tls);
	log_event("delivery", "id=%s to=<%s> relay=%s tls=%s status=%s dsn=%s attempts=%u reply=%s",
	          idtext, to, relay, tls, status, code, (unsigned)j->attempts[i] + 1u, why);
}

/* The client is done (timer phase): record every recipient in one update. */
static void job_done(void *arg, const char *remote)
{
	struct job *j = arg;
	struct deliver *d = j->d;
	struct queue_result *qr = calloc(j->n, sizeof *qr);
	char (*errs)[QUEUE_ERR_MAX + 1] = calloc(j->n, sizeof *errs);
	struct dsn_rcpt *failed = calloc(j->n, sizeof *failed);
	char (*codes)[16] = calloc(j->n, sizeof *codes);
	size_t nfailed = 0, ndeferred = 0;
	int64_t now = now_s();
	struct rq_draft *dsn = NULL;
	struct queue_envelope dsn_env;
	struct queue_rcpt dsn_rcpt;
	uint32_t set_flags = 0;
	int result = QUEUE_OK, gone = 0;

	if (qr == NULL || errs == NULL || failed == NULL || codes == NULL) {
		log_warn("msg=\"out of memory recording a delivery: it will be tried again\"");
		goto out;
	}
	for (size_t i = 0; i < j->n; i++) {
		const struct smtpc_result *r = &j->res[i];
		int64_t next = 0;
		int expired = 0;
		const char *what;

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
			qr[i].next_try = next;
			what = "deferred";
			ndeferred++;
		}
		log_result(j, i, remote, what, status_code(r, expired, codes[i]), errs[i]);
		if (qr[i].state == QUEUE_RCPT_BOUNCED) {
			failed[nfailed].addr = j->addr[i];
			failed[nfailed].status = expired ? "4.4.7" : codes[i];
			failed[nfailed].diagnostic = expired ? errs[i] : r->text;
			failed[nfailed].remote = !expired && r->code != 0;
			failed[nfailed].remote_mta = remote;
			nfailed++;
		}
	}
	/* Never to <>: a bounce is never bounced. */
	if (j->sender[0] != '\0' && nfailed > 0) {
		dsn = make_dsn(d, j, failed, nfailed, 0, &dsn_env, &dsn_rcpt);
		if (dsn == NULL)
			log_warn("msg=\"cannot make a bounce\" to=%s", "sender");
	} else if (j->sender[0] != '\0' && ndeferred > 0 && !(j->flags & QUEUE_ENV_WARNED) &&
	           retry_warn_due(&d->retry, j->received, now)) {
		size_t k = 0;
		for (size_t i = 0; i < j->n; i++) {
			if (qr[i].state != QUEUE_RCPT_PENDING)
				continue;
			failed[k].addr = j->addr[i];
			failed[k].status = status_code(&j->res[i], 0, codes[i]);
			failed[k].diagnostic = j->res[i].text;
			failed[k].remote = j->res[i].code != 0;
			failed[k].remote_mta = remote;
			k++;
		}
		dsn = make_dsn(d, j, failed, k, 1, &dsn_env, &dsn_rcpt);
		if (dsn != NULL)
			set_flags = QUEUE_ENV_WARNED;
	}
	rq_update(d->q, j->id, qr, j->n, set_flags, dsn, &dsn_env, &result, &gone);
	if (result != QUEUE_OK && result != QUEUE_ENOTFOUND) {
		char idtext[QUEUE_ID_TEXT];
		queue_id_format(j->id, idtext);
		log_warn("msg=\"cannot record a delivery: it will be tried again\" id=%s error=\"%s\"",
		         idtext, queue_strerror(result));
	} else if (dsn != NULL && result == QUEUE_OK) {
		char idtext[QUEUE_ID_TEXT], orig[QUEUE_ID_TEXT];
		queue_id_format(dsn_env.id, idtext);
		queue_id_format(j->id, orig);
		log_event("bounce", "id=%s orig=%s kind=%s nrcpt=%zu", idtext, orig,
		          set_flags ? "delayed" : "failed", set_flags ? ndeferred : nfailed);
	}
	if (gone) {
		char idtext[QUEUE_ID_TEXT];
		queue_id_format(j->id, idtext);
		log_event("removed", "id=%s reason=done", idtext);
	}
out:
	free(qr);
	free(errs);
	free(failed);
	free(codes);
	{
		struct dest *t = j->dest;
		t->active--;
		d->active--;
		job_free(j);
		dest_put(d, t);
	}
	dispatch(d);
	scan_at(d, 0);     /* a slot is free, and a bounce may be due */
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

static void job_start(struct job *j)
{
	struct deliver *d = j->d;
	struct client_req req;

	memset(&req, 0, sizeof req);
	req.conf = d->conf;
	req.dns = d->dns;
	req.anchors = d->anchors;
	req.route = j->route;
	req.sender = j->sender;
	req.rcpts = j->rcpts;
	req.nrcpts = j->n;
	req.res = j->res;
	req.size = j->size;
	req.flags = ((j->flags & QUEUE_ENV_8BITMIME) ? SMTPC_F_8BITMIME : 0u) |
	            ((j->flags & QUEUE_ENV_SMTPUTF8) ? SMTPC_F_SMTPUTF8 : 0u);
	if (j->route.kind == ROUTE_SMARTHOST && d->have_auth) {
		req.auth_user = d->auth_user;
		req.auth_pass = d->auth_pass;
	}
	req.body = read_body;
	req.body_arg = j;
	req.done = job_done;
	req.arg = j;
	j->dest->active++;
	d->active++;
	j->cl = client_start(d->loop, &req);
	if (j->cl == NULL)
		job_fail_later(j, SMTPC_R_TEMP, "4.3.0 out of memory");
}

static void dispatch(struct deliver *d)
{
	if (d->stopping)
		return;
	for (struct dest *t = d->dests; t && d->active < d->conf->delivery_concurrency; ) {
		struct dest *next = t->next;
		while (t->wait_head && t->active < d->conf->destination_concurrency &&
		       d->active < d->conf->delivery_concurrency) {
			struct job *j = t->wait_head;
			t->wait_head = j->wait_next;
			if (t->wait_head == NULL)
				t->wait_tail = NULL;
			job_start(j);
		}
		t = next;
	}
}

static int load_env(struct deliver *d, queue_id id, struct queue_envelope *env)
{
	if (d->rcpts == NULL) {
		/* queue_get with no array only counts the recipients. */
		if ((d->rcpts = calloc(64, sizeof *d->rcpts)) == NULL)
			return QUEUE_EIO;
		d->rcpt_cap = 64;
	}
	for (;;) {
		int rc;
		memset(env, 0, sizeof *env);
		env->rcpts = d->rcpts;
		env->rcpt_cap = d->rcpt_cap;
		rc = rq_get(d->q, id, env);
		if (rc != QUEUE_EINVAL || env->nrcpts <= d->rcpt_cap)
			return rc;
		struct queue_rcpt *r = realloc(d->rcpts, env->nrcpts * sizeof *r);
		if (r == NULL)
			return QUEUE_EIO;
		d->rcpts = r;
		d->rcpt_cap = env->nrcpts;
	}
}

/* Jobs for the due recipients of one message, one per destination. */
static void plan_message(struct deliver *d, queue_id id, int64_t now)
{
	struct queue_envelope env;
	struct job *mine[16];
	size_t nmine = 0;
	int rc = load_env(d, id, &env);

	if (rc != QUEUE_OK) {
		char idtext[QUEUE_ID_TEXT];
		queue_id_format(id, idtext);
		if (rc != QUEUE_ENOTFOUND)
			log_warn("msg=\"cannot read a queued message\" id=%s error=\"%s\"", idtext,
			         queue_strerror(rc));
		return;
	}
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
		if (j->dest->wait_tail)
			j->dest->wait_tail->wait_next = j;
		else
			j->dest->wait_head = j;
		j->dest->wait_tail = j;
	}
}

static void scan_cb(struct ev_loop *l, struct ev_timer *t)
{
	struct deliver *d = t->arg;
	unsigned room_max = d->conf->delivery_concurrency * JOBS_PER_SLOT;
	queue_id ids[SCAN_BATCH];
	size_t n = 0, cap;
	int64_t now = now_s(), next = INT64_MAX;
	int rc;

	(void)l;
	if (d->stopping || !d->conf->delivery || d->no_runner)
		return;
	if (d->njobs >= room_max)
		return;              /* a job's end scans again */
	cap = room_max - d->njobs < SCAN_BATCH ? room_max - d->njobs : SCAN_BATCH;
	rc = rq_due(d->q, now, in_flight, d, d->njobs, ids, cap, &n, &next);
	if (rc != QUEUE_OK) {
		log_warn("msg=\"cannot read the schedule\" error=\"%s\"", queue_strerror(rc));
		scan_at(d, 10000);
		return;
	}
	for (size_t i = 0; i < n; i++)
		plan_message(d, ids[i], now);
	dispatch(d);
	if (next == INT64_MAX)
		scan_at(d, RESCAN_MAX_MS);
	else if (next <= now)
		scan_at(d, n == cap && d->njobs < room_max ? 0 : 1000);
	else
		scan_at(d, (next - now) * 1000 + 50);
}

/* ---- recipient verification ---- */

static void verify_unlink(struct deliver *d, struct verify *v)
{
	struct verify **p;

	for (p = &d->verifies; *p; p = &(*p)->next) {
		if (*p == v) {
			*p = v->next;
			d->nverifies--;
			return;
		}
	}
}

static void verify_free(struct verify *v)
{
	if (v->cb == NULL && v->state == 0)
		v->d->nprobes--;
	ev_timer_stop(v->d->loop, &v->timer);
	client_free(v->cl);
	free(v);
}

/* A waiter's answer, from its zero timer. */
static void waiter_cb(struct ev_loop *l, struct ev_timer *t)
{
	struct verify *w = t->arg;
	struct deliver *d = w->d;

	(void)l;
	verify_unlink(d, w);
	w->cb(w->arg, w->verdict);
	verify_free(w);
}

/* The probe for v ended with verdict: cache it (unless temporary) and
 * answer everyone who waits for it. */
static void probe_answer(struct verify *v, enum verify_verdict verdict)
{
	struct deliver *d = v->d;
	char to[QUEUE_ADDR_MAX * 4 + 8], why[SMTPC_TEXT_MAX * 4 + 8];

	client_free(v->cl);
	v->cl = NULL;
	ev_timer_stop(d->loop, &v->timer);
	log_quote(v->addr, strlen(v->addr), to, sizeof to);
	log_quote(v->res[0].text, strlen(v->res[0].text), why, sizeof why);
	log_event("verify", "to=<%s> result=%s reply=%s", to,
	          verdict == VERIFY_OK ? "ok" : verdict == VERIFY_REJECT ? "reject" : "temp", why);
	for (struct verify *w = d->verifies; w; w = w->next) {
		if (w->owner != v)
			continue;
		w->owner = NULL;
		w->verdict = verdict;
		ev_timer_start(d->loop, &w->timer, 0);
	}
	v->nwaiting = 0;
	if (verdict == VERIFY_TEMP || d->conf->verify_cache == 0) {
		verify_unlink(d, v);
		verify_free(v);
		return;
	}
	d->nprobes--;
	v->state = 1;
	v->verdict = verdict;
	v->expires = d->loop->now + (int64_t)d->conf->verify_cache * 1000;
}

static void probe_done(void *arg, const char *remote)
{
	struct verify *v = arg;
	uint8_t st = v->res[0].status;

	(void)remote;
	probe_answer(v, st == SMTPC_R_OK ? VERIFY_OK : st == SMTPC_R_PERM ? VERIFY_REJECT : VERIFY_TEMP);
}

static void probe_deadline(struct ev_loop *l, struct ev_timer *t)
{
	struct verify *v = t->arg;

	(void)l;
	snprintf(v->res[0].text, sizeof v->res[0].text, "no answer in time");
	probe_answer(v, VERIFY_TEMP);
}

/* Drop expired answers, and the oldest if there are too many. */
static void verify_prune(struct deliver *d)
{
	struct verify **p = &d->verifies;

	while (*p) {
		struct verify *v = *p;
		if (v->state == 1 && (v->expires <= d->loop->now || d->nverifies > VERIFY_MAX)) {
			*p = v->next;
			d->nverifies--;
			verify_free(v);
			continue;
		}
		p = &v->next;
	}
}

struct verify *deliver_verify(struct deliver *d, const char *rcpt, verify_cb *cb, void *arg)
{
	struct verify *w, *probe = NULL;

	verify_prune(d);
	for (struct verify *v = d->verifies; v; v = v->next)
		if (v->cb == NULL && strcmp(v->addr, rcpt) == 0)
			probe = v;
	if ((w = calloc(1, sizeof *w)) == NULL)
		return NULL;
	w->d = d;
	w->cb = cb;
	w->arg = arg;
	w->timer.cb = waiter_cb;
	w->timer.arg = w;
	snprintf(w->addr, sizeof w->addr, "%s", rcpt);
	w->next = d->verifies;
	d->verifies = w;
	d->nverifies++;
	if (probe != NULL && probe->state == 1) {
		w->verdict = probe->verdict;          /* cached */
		ev_timer_start(d->loop, &w->timer, 0);
		return w;
	}
	if (probe == NULL) {
		struct client_req req;
		/* A client sending RCPT after RCPT must not make us open
		 * connection after connection to the internal server. */
		if (d->nprobes >= PROBES_MAX || (probe = calloc(1, sizeof *probe)) == NULL) {
			w->verdict = VERIFY_TEMP;
			ev_timer_start(d->loop, &w->timer, 0);
			return w;
		}
		probe->d = d;
		d->nprobes++;
		snprintf(probe->addr, sizeof probe->addr, "%s", rcpt);
		probe->rcpt1[0] = probe->addr;
		probe->timer.cb = probe_deadline;
		probe->timer.arg = probe;
		probe->next = d->verifies;
		d->verifies = probe;
		d->nverifies++;
		memset(&req, 0, sizeof req);
		req.conf = d->conf;
		req.dns = d->dns;
		req.anchors = d->anchors;
		route_select(d->conf, rcpt, &req.route);
		req.sender = "";
		req.rcpts = probe->rcpt1;
		req.nrcpts = 1;
		req.res = probe->res;
		req.probe = 1;
		req.done = probe_done;
		req.arg = probe;
		w->owner = probe;
		probe->nwaiting = 1;
		ev_timer_start(d->loop, &probe->timer, (int64_t)d->conf->timeout_verify * 1000);
		probe->cl = client_start(d->loop, &req);
		if (probe->cl == NULL) {
			snprintf(probe->res[0].text, sizeof probe->res[0].text, "out of memory");
			ev_timer_start(d->loop, &probe->timer, 0);   /* answers TEMP */
		}
		return w;
	}
	w->owner = probe;
	probe->nwaiting++;
	return w;
}

void deliver_verify_cancel(struct verify *w)
{
	if (w == NULL)
		return;
	if (w->owner != NULL)
		w->owner->nwaiting--;   /* the probe goes on: its answer is cached */
	verify_unlink(w->d, w);
	verify_free(w);
}

/* ---- admin ---- */

int deliver_admin(struct deliver *d, const char *verb, queue_id id, char *msg, size_t cap)
{
	char idtext[QUEUE_ID_TEXT];
	size_t count = 0;
	int rc;

	queue_id_format(id, idtext);
	if (strcmp(verb, "flush") == 0) {
		rc = rq_retry(d->q, 0, &count);
		if (rc == QUEUE_OK)
			snprintf(msg, cap, "%zu waiting message%s due now", count, count == 1 ? "" : "s");
	} else if (strcmp(verb, "retry") == 0) {
		rc = rq_retry(d->q, id, &count);
		if (rc == QUEUE_OK)
			snprintf(msg, cap, count ? "%s due now" : "%s is held: release it first", idtext);
	} else if (strcmp(verb, "hold") == 0 || strcmp(verb, "release") == 0) {
		int hold = verb[0] == 'h';
		rc = rq_hold(d->q, id, hold);
		if (rc == QUEUE_OK)
			snprintf(msg, cap, "%s %s", idtext, hold ? "held" : "released");
	} else if (strcmp(verb, "delete") == 0) {
		rc = rq_delete(d->q, id);
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

/* The smarthost's "user:password" (the first line of the file). */
static int load_auth(struct deliver *d, const char *path, char *err, size_t errcap)
{
	char buf[600];
	ssize_t n;
	char *colon, *end;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errcap, "smarthost auth %s: %s", path, strerror(errno));
		return -1;
	}
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n < 0) {
		snprintf(err, errcap, "smarthost auth %s: %s", path, strerror(errno));
		return -1;
	}
	buf[n] = '\0';
	end = buf + strcspn(buf, "\r\n");
	*end = '\0';
	colon = strchr(buf, ':');
	if (colon == NULL || colon == buf || (size_t)(colon - buf) >= sizeof d->auth_user ||
	    strlen(colon + 1) >= sizeof d->auth_pass) {
		snprintf(err, errcap, "smarthost auth %s: want one line user:password", path);
		return -1;
	}
	*colon = '\0';
	snprintf(d->auth_user, sizeof d->auth_user, "%.255s", buf);
	snprintf(d->auth_pass, sizeof d->auth_pass, "%.255s", colon + 1);
	memset(buf, 0, sizeof buf);
	d->have_auth = 1;
	return 0;
}

/* Does any destination ask for `tls verify`? */
static int uses_verify(const struct conf *c)
{
	if (c->outbound_tls == CONF_OTLS_VERIFY ||
	    (c->smarthost.host[0] != '\0' && c->smarthost.tls == CONF_OTLS_VERIFY))
		return 1;
	for (size_t k = 0; k < c->nroutes; k++)
		if (c->routes[k].hop.tls == CONF_OTLS_VERIFY)
			return 1;
	return 0;
}

/* The CA bundle, read whole (bounded). */
static int load_anchors(struct deliver *d, const char *path, char *err, size_t errcap)
{
	char *text = NULL;
	size_t len = 0, cap = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errcap, "tls-ca-file %s: %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		ssize_t n;
		if (len == cap) {
			char *m = cap < (8u << 20) ? realloc(text, cap = cap ? cap * 2 : 256 * 1024) : NULL;
			if (m == NULL) {
				snprintf(err, errcap, "tls-ca-file %s: too big or out of memory", path);
				free(text);
				close(fd);
				return -1;
			}
			text = m;
		}
		n = read(fd, text + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	d->anchors = tls_anchors_load(text ? text : "", len, path, err, errcap);
	free(text);
	if (d->anchors == NULL)
		return -1;
	log_event("tls-ca", "file=%s anchors=%zu", path, tls_anchors_count(d->anchors));
	return 0;
}

struct deliver *deliver_new(struct ev_loop *l, struct rq *q, const struct conf *c,
                            char *err, size_t errcap)
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
	if (c->smarthost_auth[0] != '\0' && load_auth(d, c->smarthost_auth, err, errcap) != 0) {
		free(d);
		return NULL;
	}
	if (uses_verify(c) && load_anchors(d, c->tls_ca_file, err, errcap) != 0) {
		free(d);
		return NULL;
	}
	if ((d->dns = dns_resolver_new(l, c, err, errcap)) == NULL) {
		tls_anchors_free(d->anchors);
		free(d);
		return NULL;
	}
	scan_at(d, 0);
	return d;
}

void deliver_runner_off(struct deliver *d)
{
	d->no_runner = 1;
	ev_timer_stop(d->loop, &d->scan_timer);
}

void deliver_stop(struct deliver *d)
{
	if (d == NULL || d->stopping)
		return;
	d->stopping = 1;
	ev_timer_stop(d->loop, &d->scan_timer);
	while (d->jobs)
		job_free(d->jobs);       /* nothing recorded: tried again later */
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
	while (d->verifies) {
		struct verify *v = d->verifies;
		d->verifies = v->next;
		verify_free(v);
	}
	dns_resolver_free(d->dns);
	tls_anchors_free(d->anchors);
	memset(d->auth_pass, 0, sizeof d->auth_pass);
	free(d->rcpts);
	free(d);
}
