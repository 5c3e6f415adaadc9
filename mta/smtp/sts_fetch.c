/*
 * mta/smtp/sts_fetch.c -- the HTTPS fetch of an MTA-STS policy; see
 * sts_fetch.h.
 *
 * Phases: RESOLVE (AAAA and A of mta-sts.DOMAIN) -> CONNECT (addrs[cur],
 * port 443) -> SESSION (TLS handshake, the request out, the response read)
 * -> the next address after a failure, or DONE.  The outcome is handed
 * over from a zero-delay timer, never from inside an I/O callback.
 */
#include "mta/smtp/sts_fetch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mta/net/conn.h"
#include "mta/net/log.h"
#include "mta/net/sockaddr.h"
#include "policy/mtasts_fetch.h"

#define IN_MAX 16384

enum phase { PH_RESOLVE, PH_CONNECT, PH_SESSION, PH_DONE };

struct sts_fetch {
	struct ev_loop           *loop;
	struct dns_resolver      *dns;
	const struct tls_anchors *anchors;
	unsigned                  connect_ms;
	sts_fetch_cb             *cb;
	void                     *arg;
	enum phase                phase;
	char                      host[DNS_NAME_MAX + 1];   /* mta-sts.DOMAIN */
	char                      req[MTASTS_FETCH_REQ_MAX];
	size_t                    reqlen, reqsent;
	struct dns_query         *q[2];                     /* AAAA, A */
	struct ipaddr             addrs[STS_FETCH_ADDRS];
	size_t                    naddrs, cur;
	struct conn               cn;
	char                      in[IN_MAX];
	struct mtasts_fetch       rd;
	char                     *body;                     /* MTASTS_POLICY_MAX */
	struct ev_timer           deadline;                 /* the whole fetch */
	struct ev_timer           step;                     /* one connection */
	struct ev_timer           done;
	enum sts_fetch_rc         rc;
	char                      why[320];
};

static void io_cb(struct ev_loop *l, struct ev_io *io, unsigned events);
static void connect_next(struct sts_fetch *f);

static void done_cb(struct ev_loop *l, struct ev_timer *t)
{
	struct sts_fetch *f = t->arg;

	(void)l;
	f->cb(f->arg, f->rc, f->rc == STS_FETCH_OK ? f->body : NULL,
	      f->rc == STS_FETCH_OK ? f->rd.bodylen : 0, f->why);
}

/* The end: rc and why (a printf format), handed over from the timer. */
static void finish(struct sts_fetch *f, enum sts_fetch_rc rc, const char *why)
{
	conn_close(&f->cn);
	ev_timer_stop(f->loop, &f->step);
	ev_timer_stop(f->loop, &f->deadline);
	for (int i = 0; i < 2; i++) {
		dns_cancel(f->q[i]);
		f->q[i] = NULL;
	}
	f->rc = rc;
	if (why != NULL)
		snprintf(f->why, sizeof f->why, "%s", why);
	f->phase = PH_DONE;
	ev_timer_start(f->loop, &f->done, 0);
}

/* This address failed: remember why (the last one is told), try the next. */
static void addr_failed(struct sts_fetch *f, enum sts_fetch_rc rc, const char *what,
                        const char *detail)
{
	char ip[IP_TEXT_MAX];

	ip_format(&f->addrs[f->cur], ip, sizeof ip);
	snprintf(f->why, sizeof f->why, "%s [%s]:%u: %.80s", what, ip, STS_FETCH_PORT, detail);
	f->rc = rc;
	log_debug("msg=\"MTA-STS fetch from %s: %s\"", f->host, f->why);
	conn_close(&f->cn);
	ev_timer_stop(f->loop, &f->step);
	f->cur++;
	connect_next(f);
}

static void deadline_cb(struct ev_loop *l, struct ev_timer *t)
{
	struct sts_fetch *f = t->arg;

	(void)l;
	finish(f, STS_FETCH_FAILED, "timed out (RFC 8461 3.3: the fetch is bounded)");
}

static void step_cb(struct ev_loop *l, struct ev_timer *t)
{
	struct sts_fetch *f = t->arg;

	(void)l;
	addr_failed(f, STS_FETCH_FAILED, f->phase == PH_CONNECT ? "connect to" : "no answer from",
	            "timed out");
}

/* ---- RESOLVE ---- */

static void addr_cb(void *arg, enum dns_status st, const struct dns_answer *a)
{
	struct sts_fetch *f = arg;

	for (size_t i = 0; st == DNS_OK && i < a->naddr && f->naddrs < STS_FETCH_ADDRS; i++)
		f->addrs[f->naddrs++] = a->addr[i];
}

/* One callback per family, so that each knows which query it was. */
static void addr6_cb(void *arg, enum dns_status st, const struct dns_answer *a)
{
	struct sts_fetch *f = arg;

	f->q[0] = NULL;
	addr_cb(arg, st, a);
	if (f->q[1] == NULL)
		connect_next(f);
}

static void addr4_cb(void *arg, enum dns_status st, const struct dns_answer *a)
{
	struct sts_fetch *f = arg;

	f->q[1] = NULL;
	addr_cb(arg, st, a);
	if (f->q[0] == NULL)
		connect_next(f);
}

/* ---- CONNECT ---- */

static int sockaddr_of(const struct ipaddr *a, struct sockaddr_storage *ss, socklen_t *sl)
{
	*sl = sockaddr_from_ip(a, STS_FETCH_PORT, ss);
	return 0;
}

static void connect_next(struct sts_fetch *f)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd;

	if (f->cur >= f->naddrs) {
		if (f->naddrs == 0)
			snprintf(f->why, sizeof f->why, "%s has no address", f->host);
		finish(f, f->naddrs == 0 ? STS_FETCH_FAILED : f->rc, NULL);
		return;
	}
	sockaddr_of(&f->addrs[f->cur], &ss, &sl);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	conn_init(&f->cn, f->loop, fd, io_cb, f, f->in, sizeof f->in);
	if (fd < 0 || (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) ||
	    ev_io_set(f->loop, &f->cn.io, EV_WRITE) < 0) {
		addr_failed(f, STS_FETCH_FAILED, "connect to", strerror(errno));
		return;
	}
	f->phase = PH_CONNECT;
	ev_timer_start(f->loop, &f->step, f->connect_ms);
}

/* ---- SESSION ---- */

/* The connection is up: TLS toward mta-sts.DOMAIN, checked. */
static int session_start(struct sts_fetch *f)
{
	struct tls *t = tls_client_new(f->host, f->anchors);

	if (t == NULL)
		return -1;
	conn_tls_start(&f->cn, t, 0);
	mtasts_fetch_init(&f->rd, f->body, MTASTS_POLICY_MAX);
	f->reqsent = 0;
	f->phase = PH_SESSION;
	ev_timer_start(f->loop, &f->step, (int64_t)MTASTS_FETCH_TIMEOUT * 1000);
	return 0;
}

/* A failed handshake: the certificate (sts-webpki-invalid) or else. */
static void tls_failed(struct sts_fetch *f)
{
	int err = tls_error(f->cn.tls);
	int webpki = tls_cert_fault(err) != TLS_CERT_NONE;
	char d[96];

	snprintf(d, sizeof d, "TLS failed: %s", tls_error_name(err));
	addr_failed(f, webpki ? STS_FETCH_WEBPKI : STS_FETCH_FAILED, "https from", d);
}

/* What the reader said: go on, done (the body is in), or refused. */
static void read_result(struct sts_fetch *f, enum mtasts_fetch_rc rc)
{
	if (rc == MTASTS_FETCH_DONE) {
		snprintf(f->why, sizeof f->why, "HTTP %d, %zu bytes", f->rd.status, f->rd.bodylen);
		finish(f, STS_FETCH_OK, NULL);
	} else if (rc == MTASTS_FETCH_FAIL) {
		char d[96];
		snprintf(d, sizeof d, "HTTP response refused: %s", f->rd.why ? f->rd.why : "?");
		/* A server that answers wrongly answers the same at the next
		 * address: this one is the last tried (and named: cur stays
		 * within the addresses). */
		f->naddrs = f->cur + 1;
		addr_failed(f, STS_FETCH_FAILED, "https from", d);
	}
}

/* Move bytes: the handshake, the request out, the response in. */
static void pump(struct sts_fetch *f, int eof)
{
	enum conn_tls st = conn_tls_check(&f->cn);
	const char *in;
	size_t len;

	if (st == CONN_TLS_FAILED || (eof && st == CONN_TLS_HANDSHAKE)) {
		tls_failed(f);
		return;
	}
	if (st == CONN_TLS_READY || st == CONN_TLS_OPEN) {
		f->cn.handshaking = 0;
		while (f->reqsent < f->reqlen) {
			ssize_t w = conn_write(&f->cn, f->req + f->reqsent, f->reqlen - f->reqsent);
			if (w <= 0)
				break;
			f->reqsent += (size_t)w;
		}
		tls_app_flush(f->cn.tls);
	}
	conn_pull(&f->cn);
	if ((in = conn_in(&f->cn, &len)) != NULL && len > 0) {
		enum mtasts_fetch_rc rc = mtasts_fetch_feed(&f->rd, in, len);
		conn_consume(&f->cn, len);
		if (rc != MTASTS_FETCH_MORE) {
			read_result(f, rc);
			return;
		}
	}
	if (eof || st == CONN_TLS_CLOSED) {
		read_result(f, mtasts_fetch_eof(&f->rd));
		return;
	}
	if (conn_flush(&f->cn) == CONN_ERROR || conn_watch(&f->cn, 0, 1) < 0)
		addr_failed(f, STS_FETCH_FAILED, "https from", strerror(f->cn.err));
}

static void io_cb(struct ev_loop *l, struct ev_io *io, unsigned events)
{
	struct sts_fetch *f = io->arg;
	int eof = 0;

	(void)l;
	if (f->phase == PH_CONNECT) {
		int err = 0;
		socklen_t len = sizeof err;

		if (getsockopt(f->cn.io.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err != 0) {
			addr_failed(f, STS_FETCH_FAILED, "connect to", strerror(err));
			return;
		}
		if (session_start(f) != 0) {
			finish(f, STS_FETCH_FAILED, "out of memory");
			return;
		}
	} else if (f->phase != PH_SESSION) {
		return;
	} else if (events & EV_READ) {
		int r = conn_fill(&f->cn);

		if (r == CONN_ERROR) {
			addr_failed(f, STS_FETCH_FAILED, "https from", strerror(f->cn.err));
			return;
		}
		eof = r == CONN_EOF;
	}
	pump(f, eof);
}

/* ---- start and stop ---- */

struct sts_fetch *sts_fetch_start(struct ev_loop *l, struct dns_resolver *dns,
                                  const struct tls_anchors *anchors, const char *domain,
                                  unsigned connect_s, sts_fetch_cb *cb, void *arg)
{
	struct sts_fetch *f = calloc(1, sizeof *f);

	if (f == NULL || (f->body = malloc(MTASTS_POLICY_MAX)) == NULL ||
	    mtasts_fetch_host(domain, f->host) != 0 ||
	    (f->reqlen = mtasts_fetch_request(domain, f->req, sizeof f->req)) == 0) {
		if (f != NULL)
			free(f->body);
		free(f);
		return NULL;
	}
	f->loop = l;
	f->dns = dns;
	f->anchors = anchors;
	f->connect_ms = connect_s * 1000u;
	f->cb = cb;
	f->arg = arg;
	f->rc = STS_FETCH_FAILED;
	conn_init(&f->cn, l, -1, io_cb, f, f->in, sizeof f->in);
	f->done.cb = done_cb;
	f->done.arg = f;
	f->step.cb = step_cb;
	f->step.arg = f;
	f->deadline.cb = deadline_cb;
	f->deadline.arg = f;
	if (anchors == NULL) {
		finish(f, STS_FETCH_WEBPKI, "no CA bundle to check mta-sts.DOMAIN with (tls-ca-file)");
		return f;
	}
	ev_timer_start(l, &f->deadline, (int64_t)MTASTS_FETCH_TIMEOUT * 1000);
	f->phase = PH_RESOLVE;
	f->q[0] = dns_lookup(dns, f->host, DNS_T_AAAA, addr6_cb, f);
	f->q[1] = dns_lookup(dns, f->host, DNS_T_A, addr4_cb, f);
	if (f->q[0] == NULL && f->q[1] == NULL)
		finish(f, STS_FETCH_FAILED, "cannot look up mta-sts.DOMAIN");
	return f;
}

void sts_fetch_free(struct sts_fetch *f)
{
	if (f == NULL)
		return;
	conn_close(&f->cn);
	ev_timer_stop(f->loop, &f->done);
	ev_timer_stop(f->loop, &f->step);
	ev_timer_stop(f->loop, &f->deadline);
	for (int i = 0; i < 2; i++)
		dns_cancel(f->q[i]);
	free(f->body);
	free(f);
}
