/* mta/smtp/tls_report_mail.c -- mailing the day's TLS reports; see tls_report_mail.h */
#include "mta/smtp/tls_report_mail.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mta/net/log.h"
#include "policy/base64.h"
#include "policy/dsn.h"
#include "policy/tlsrpt.h"
#include "queue/tlsrec.h"

struct tlsmail {
	struct ev_loop       *loop;
	struct qc            *q;
	struct dns_resolver  *dns;
	const struct conf    *conf;
	struct ev_timer       tick;
	int                   busy;           /* a round is under way */
	uint64_t              ticket;         /* the queue role's answer awaited, or 0 */
	struct dns_query     *txq;
	queue_id              draft;          /* begun, not yet handed over */
	struct tlsrpt_report *r;              /* the record being mailed */
	char                  rcpt[TLSMAIL_RCPTS_MAX][QUEUE_ADDR_MAX + 1];
	size_t                nrcpt;
};

/* A message being put together (heap, grown as needed). */
struct text {
	char  *p;
	size_t n, cap;
	int    bad;
};

static void ask_next(struct tlsmail *m);
static void sent_cb(void *arg, const struct qw_rep *rep);

static void add(struct text *t, const char *s, size_t n)
{
	if (t->bad)
		return;
	if (t->n + n + 1 > t->cap) {
		size_t cap = (t->n + n + 1) * 2;
		char *p = realloc(t->p, cap);

		if (p == NULL) {
			t->bad = 1;
			return;
		}
		t->p = p;
		t->cap = cap;
	}
	memcpy(t->p + t->n, s, n);
	t->n += n;
	t->p[t->n] = '\0';
}

static void addf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void addf(struct text *t, const char *fmt, ...)
{
	char line[2048];           /* (a Subject of two 253-byte names and the ID fits) */
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);

	if (n < 0 || (size_t)n >= sizeof line)
		t->bad = 1;
	else
		add(t, line, (size_t)n);
}

/* The round is over: the next one in delay_ms. */
static void round_end(struct tlsmail *m, int64_t delay_ms)
{
	m->busy = 0;
	ev_timer_start(m->loop, &m->tick, delay_ms);
}

static void fail(struct tlsmail *m, const char *what)
{
	log_warn("msg=\"TLS report of %s not mailed now (tried again in an hour): %s\"",
	         m->r->domain[0] ? m->r->domain : "?", what);
	if (m->draft != 0)
		qc_draft_abort(m->q, m->draft);
	m->draft = 0;
	round_end(m, TLSMAIL_EVERY_MS);
}

/* The report's JSON, base64 in lines of 76, into t (RFC 2045 6.8). */
static void add_json(struct tlsmail *m, struct text *t, const char *report_id)
{
	char contact[DNS_NAME_MAX + 16], one[1];
	struct tlsrpt_meta meta = { m->conf->hostname, contact, report_id };
	size_t jn, bn;
	char *json, *b64;

	snprintf(contact, sizeof contact, "postmaster@%s", m->conf->hostname);
	jn = tlsrpt_json(m->r, &meta, one, sizeof one);
	json = malloc(jn + 1);
	b64 = malloc(jn / 3 * 4 + 8);
	if (json == NULL || b64 == NULL) {
		t->bad = 1;
	} else {
		tlsrpt_json(m->r, &meta, json, jn + 1);
		bn = base64_encode((const unsigned char *)json, jn, b64, jn / 3 * 4 + 8);
		for (size_t o = 0; o < bn; o += 76) {
			add(t, b64 + o, bn - o < 76 ? bn - o : 76);
			add(t, "\r\n", 2);
		}
	}
	free(json);
	free(b64);
}

/*
 * The message of RFC 8460 5.3 into t: the headers it asks for (Subject,
 * TLS-Report-Domain, TLS-Report-Submitter), a multipart/report with a
 * short text and the report as application/tlsrpt+json, its file name
 * "submitter!domain!begin!end.json".
 */
static void compose(struct tlsmail *m, struct text *t)
{
	const char *host = m->conf->hostname, *dom = m->r->domain;
	char day[16], id[DNS_NAME_MAX * 2 + 32], date[32], boundary[64], draft[QUEUE_ID_TEXT];
	char span[48], to[TLSMAIL_RCPTS_MAX * (QUEUE_ADDR_MAX + 4)];
	time_t d = (time_t)m->r->day;
	struct tm tm;
	size_t o = 0;

	gmtime_r(&d, &tm);
	strftime(day, sizeof day, "%Y-%m-%d", &tm);
	/* (the same report-id as `moat tls-report` prints: mta/cmd/tls_report_cmd.c) */
	snprintf(id, sizeof id, "%s.%s@%s", day, dom, host);
	dsn_date((int64_t)time(NULL), date);
	queue_id_format(m->draft, draft);
	snprintf(boundary, sizeof boundary, "tlsrpt.%s", draft);
	snprintf(span, sizeof span, "%lld!%lld", (long long)m->r->day,
	         (long long)m->r->day + 86399);
	for (size_t i = 0; i < m->nrcpt; i++)
		o += (size_t)snprintf(to + o, sizeof to - o, "%s<%s>", i ? ", " : "", m->rcpt[i]);
	addf(t, "Received: by %s (moat) id %s;\r\n\t%s\r\n", host, draft, date);
	addf(t, "From: TLS reporting <postmaster@%s>\r\n", host);
	add(t, "To: ", 4);
	add(t, to, strlen(to));
	addf(t, "\r\nDate: %s\r\n", date);
	addf(t, "Subject: Report Domain: %s Submitter: %s Report-ID: <%s>\r\n", dom, host, id);
	addf(t, "Message-ID: <%s>\r\nTLS-Report-Domain: %s\r\nTLS-Report-Submitter: %s\r\n", id, dom,
	     host);
	addf(t, "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=\"tlsrpt\";"
	     "\r\n\tboundary=\"%s\"\r\n\r\nThis is a TLS report (RFC 8460) in MIME format.\r\n",
	     boundary);
	addf(t, "\r\n--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n", boundary);
	addf(t, "The TLS report of %s for the UTC day %s, from %s.\r\n", dom, day, host);
	addf(t, "\r\n--%s\r\nContent-Type: application/tlsrpt+json\r\n"
	     "Content-Transfer-Encoding: base64\r\n", boundary);
	addf(t, "Content-Disposition: attachment;\r\n\tfilename=\"%s!%s!%s.json\"\r\n\r\n", host,
	     dom, span);
	add_json(m, t, id);
	addf(t, "\r\n--%s--\r\n", boundary);
}

/* The report into its draft, then to the queue with its envelope and the
 * record marked sent. */
static void draft_cb(void *arg, const struct qw_rep *rep)
{
	struct tlsmail *m = arg;
	struct text t = { NULL, 0, 0, 0 };
	struct queue_envelope env;
	struct queue_rcpt rcpts[TLSMAIL_RCPTS_MAX];

	m->ticket = 0;
	if (rep == NULL || rep->rc != QUEUE_OK) {
		fail(m, "no draft");
		return;
	}
	m->draft = rep->id;
	compose(m, &t);
	if (t.bad || qc_draft_write(m->q, m->draft, t.p, t.n) != 0) {
		free(t.p);
		fail(m, "cannot write the report");
		return;
	}
	free(t.p);
	/* From the null sender: a report that cannot be delivered is dropped,
	 * as a DSN is, never bounced back to us. */
	memset(&env, 0, sizeof env);
	memset(rcpts, 0, sizeof rcpts);
	snprintf(env.helo, sizeof env.helo, "%s", m->conf->hostname);
	snprintf(env.client, sizeof env.client, "127.0.0.1");
	for (size_t i = 0; i < m->nrcpt; i++)
		snprintf(rcpts[i].addr, sizeof rcpts[i].addr, "%s", m->rcpt[i]);
	env.rcpts = rcpts;
	env.nrcpts = env.rcpt_cap = m->nrcpt;
	m->ticket = qc_tlsrpt_sent(m->q, m->r->day, m->r->domain, m->draft, &env, sent_cb, m);
	m->draft = 0;          /* (handed over: committed or dropped by the queue role) */
	if (m->ticket == 0)
		fail(m, "the queue link is down");
}

static void sent_cb(void *arg, const struct qw_rep *rep)
{
	struct tlsmail *m = arg;
	char day[16], id[QUEUE_ID_TEXT];
	time_t d = (time_t)m->r->day;
	struct tm tm;

	m->ticket = 0;
	if (rep == NULL || rep->rc != QUEUE_OK) {
		fail(m, rep == NULL ? "the queue link is down" : queue_strerror(rep->rc));
		return;
	}
	gmtime_r(&d, &tm);
	strftime(day, sizeof day, "%Y-%m-%d", &tm);
	if (rep->id != 0)
		queue_id_format(rep->id, id);
	log_event("tls-report", "domain=%s day=%s rcpts=%zu id=%s", m->r->domain, day, m->nrcpt,
	          rep->id != 0 ? id : "none");
	ask_next(m);
}

/* The domain's _smtp._tls record: its mailto: addresses, then the
 * report's draft; none: the record is marked sent, nothing mailed. */
static void txt_cb(void *arg, enum dns_status st, const struct dns_txt_set *set)
{
	struct tlsmail *m = arg;
	struct tlsrpt_rua rua;

	m->txq = NULL;
	if (st == DNS_TEMPFAIL) {
		fail(m, "a temporary DNS failure looking up its _smtp._tls record");
		return;
	}
	m->nrcpt = 0;
	if (st == DNS_OK && tlsrpt_txt_select(set, &rua) == 0)
		for (size_t i = 0; i < rua.n && m->nrcpt < TLSMAIL_RCPTS_MAX; i++)
			if (tlsrpt_mailto(rua.uri[i], m->rcpt[m->nrcpt], sizeof m->rcpt[0]) == 0)
				m->nrcpt++;
	if (m->nrcpt == 0)
		m->ticket = qc_tlsrpt_sent(m->q, m->r->day, m->r->domain, 0, NULL, sent_cb, m);
	else
		m->ticket = qc_draft_begin(m->q, draft_cb, m);
	if (m->ticket == 0)
		fail(m, "the queue link is down");
}

/* The oldest record of a finished day not yet sent, if any. */
static void next_cb(void *arg, const struct qw_rep *rep)
{
	struct tlsmail *m = arg;
	char name[DNS_NAME_MAX + 16];

	m->ticket = 0;
	m->r->domain[0] = '\0';
	if (rep != NULL && rep->rc == QUEUE_ENOTFOUND) {
		round_end(m, TLSMAIL_EVERY_MS);
		return;
	}
	if (rep == NULL || rep->rc != QUEUE_OK ||
	    tlsrec_decode(rep->data, rep->len, m->r, NULL) != QUEUE_OK) {
		fail(m, rep == NULL ? "the queue link is down" : rep->rc != QUEUE_OK
		        ? queue_strerror(rep->rc) : "a record that does not decode");
		return;
	}
	snprintf(name, sizeof name, "_smtp._tls.%s", m->r->domain);
	if ((m->txq = dns_lookup_txt(m->dns, name, txt_cb, m)) == NULL)
		fail(m, "cannot look up its _smtp._tls record");
}

static void ask_next(struct tlsmail *m)
{
	m->ticket = qc_tlsrpt_next(m->q, tlsrpt_day((int64_t)time(NULL)), next_cb, m);
	if (m->ticket == 0)
		round_end(m, TLSMAIL_EVERY_MS);
}

static void tick_cb(struct ev_loop *l, struct ev_timer *t)
{
	struct tlsmail *m = t->arg;

	(void)l;
	if (m->busy)
		return;
	m->busy = 1;
	ask_next(m);
}

struct tlsmail *tlsmail_new(struct ev_loop *l, struct qc *q, struct dns_resolver *dns,
                            const struct conf *c)
{
	struct tlsmail *m = calloc(1, sizeof *m);

	if (m == NULL || (m->r = calloc(1, sizeof *m->r)) == NULL) {
		free(m);
		return NULL;
	}
	m->loop = l;
	m->q = q;
	m->dns = dns;
	m->conf = c;
	m->tick.cb = tick_cb;
	m->tick.arg = m;
	ev_timer_start(l, &m->tick, TLSMAIL_FIRST_MS);
	return m;
}

void tlsmail_free(struct tlsmail *m)
{
	if (m == NULL)
		return;
	ev_timer_stop(m->loop, &m->tick);
	if (m->ticket != 0)
		qc_cancel(m->q, m->ticket);
	dns_cancel(m->txq);
	if (m->draft != 0)
		qc_draft_abort(m->q, m->draft);
	free(m->r);
	free(m);
}
