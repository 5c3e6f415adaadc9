/*
 * mta/smtp/delivery_attempt.c -- one outbound transaction; see client.h.
 *
 * Phases: RESOLVE (DNS queries in flight) -> CONNECT (a non-blocking
 * connect to targets[cur]) -> SESSION (smtpc over the socket) -> back to
 * CONNECT for the next target if the session says so, else DONE.  The
 * outcome is handed over from a zero-delay timer, never from inside an
 * I/O callback, so the caller may free the client in its callback.
 */
#include "mta/smtp/delivery_attempt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mta/net/conn.h"
#include "mta/net/log.h"
#include "mta/net/sockaddr.h"
#include "mta/net/tls.h"
#include "policy/idna.h"
#include "queue/queue.h"

#define CLIENT_MX_MAX 10        /* MX hosts whose addresses are looked up */
#define IN_MAX (SMTP_REPLY_MAX + 1024)
#define BODY_PIECE (16 * 1024)

enum phase { PH_RESOLVE, PH_CONNECT, PH_SESSION, PH_DONE };

struct target {
	struct ipaddr addr;
	uint16_t      port;
	char          host[ADDR_DOMAIN_MAX + 1];   /* the name, or the address text */
	uint8_t       policy;                      /* enum client_tls_policy */
	size_t        h;                           /* its host in hosts[] (DANE: the TLSA) */
};

struct client;

/*
 * One connection to a server and its session.  An attempt owns the link it
 * connected (or took from the pool) while its transaction runs; a link
 * whose session ended cleanly goes to the pool, idle, for the next
 * transaction to the same destination (connection reuse, as Postfix's
 * connection cache), until max-messages-per-delivery-connection
 * transactions or delivery-connection-idle without one.
 */
struct link {
	struct conn          cn;                 /* the socket, TLS, the replies read (in[]) */
	struct smtpc         s;
	char                 in[IN_MAX];
	char                 key[ROUTE_KEY_MAX]; /* the destination it serves */
	char                 remote[CLIENT_HOST_MAX];
	char                 tls_info[80];       /* "TLSv1.2 SUITE" once open */
	char                 resume_key[CLIENT_HOST_MAX + 40];  /* host[addr]:port/policy */
	char                 host[DNS_NAME_MAX + 1];  /* the MX host it went to */
	uint8_t              policy;             /* enum client_tls_policy it was made under */
	int8_t               result;             /* its policy's result: -2 none, -1 ok, else
	                                            enum tlsrpt_result */
	int                  resumed;            /* the TLS session was resumed */
	unsigned             messages;           /* transactions it carried */
	struct client_pool  *pool;               /* when idle in it */
	struct link         *next;
	struct ev_timer      idle;
};

/* TLS sessions to offer again, by server (host[addr]:port): LRU. */
#define RESUME_MAX 64
struct resume {
	char               key[CLIENT_HOST_MAX + 40];
	int64_t            at;                   /* monotonic ms; 0: empty */
	struct tls_session s;
};

struct client_pool {
	struct ev_loop *loop;
	unsigned        max_messages;            /* per connection */
	unsigned        idle_ms;
	struct link    *idle;                    /* kept connections, newest first */
	unsigned        nidle;
	struct resume   resume[RESUME_MAX];
};

/* The context of one address (or TLSA) query: the client, the host, the
 * family. */
struct addr_ctx {
	struct client *cl;
	size_t         host;
	int            fam;       /* 0 AAAA, 1 A, 2 TLSA */
};

/* What DANE found for a host. */
enum host_dane {
	DANE_NONE = 0,    /* not validated, or no TLSA records: DANE does not apply */
	DANE_USABLE,      /* usable records (tlsa): DANE                           */
	DANE_UNUSABLE,    /* validated records, none usable: STARTTLS is mandatory */
	DANE_FAILED       /* the TLSA lookup failed: not tried now (RFC 7672 2.2)  */
};

struct host {
	char              name[DNS_NAME_MAX + 1];
	struct addr_ctx   ctx[3];
	struct dns_query *q[3];                    /* AAAA, A, TLSA */
	enum dns_status   st[2];
	unsigned          ad[2];                   /* the address answers were validated */
	struct ipaddr     addr[2][4];         /* [0] IPv6, [1] IPv4 */
	size_t            naddr[2];
	uint8_t           dane;                    /* enum host_dane */
	struct dns_tlsa_set *tlsa;                 /* DANE_USABLE: the records (malloc'd) */
	char              tlsa_text[640];          /* them as text, for the report */
};

struct client {
	struct ev_loop   *loop;
	struct client_req req;
	enum phase        phase;

	/* RESOLVE */
	char              domain[DNS_NAME_MAX + 1];   /* the MX domain, A-labels */
	struct dns_query *mxq;
	unsigned          mx_ad;             /* the MX answer (or its NODATA) was validated */
	struct host       hosts[CLIENT_MX_MAX];
	size_t            nhosts, pending;
	uint16_t          port;

	/* The addresses to try, in order. */
	struct target     targets[CLIENT_ADDR_MAX];
	size_t            ntargets, cur;

	/* CONNECT, SESSION */
	struct link      *lk;                /* the connection, while one is used */
	int               reused;            /* lk came from the pool */
	struct ev_timer   timer;
	struct ev_timer   done_timer;
	struct smtpc_params sp;
	int               session_ran;       /* res[] holds a session's results */
	char              body[BODY_PIECE];
	size_t            blen, boff;
	uint64_t          bodyoff;           /* message offset after body[blen] */
	int               body_wait;         /* a piece asked for, not yet given */
	char              remote[CLIENT_HOST_MAX];
	char              error[SMTPC_TEXT_MAX];

	/* TLS on the connection (STARTTLS, or smtps from the first byte). */
	int               tls_failed;        /* this connection's handshake failed */
	int               plain_retry;       /* `tls may`: this target again, no STARTTLS */
	char              tls_info[80];      /* the deciding connection's, for the log */
	int               tls_resumed;
	int               reached;           /* a session got as far as a reply to MAIL */
	int               unreachable;       /* no server of the destination took a transaction */

	/* The TLS policy (docs/tls-policy.md). */
	int               tls_tried;         /* this connection began a handshake */
	int               unverified_retry;  /* MTA-STS testing: this target again, any cert */
	int               tls_cert;          /* the failed handshake was the certificate's fault */
	uint8_t           policy;            /* of the deciding connection (enum client_tls_policy) */
	int8_t            policy_result;     /* -2 none, -1 ok, else enum tlsrpt_result */
	struct client_session sessions[CLIENT_SESSIONS_MAX];
	size_t            nsessions;
};

static void connect_next(struct client *cl);
static void pump(struct client *cl);
static void resolve_hosts(struct client *cl);
static void start_fresh(struct client *cl);
static void io_cb(struct ev_loop *l, struct ev_io *io, unsigned events);

/* ---- the TLS policy: names, ranks, what a kept connection may carry ---- */

const char *client_tls_policy_name(unsigned p)
{
	switch (p) {
	case CLIENT_TLS_ROUTE:        return "route";
	case CLIENT_TLS_STS_TESTING:  return "mta-sts-testing";
	case CLIENT_TLS_STS:          return "mta-sts";
	case CLIENT_TLS_DANE_ENCRYPT:
	case CLIENT_TLS_DANE:         return "dane";
	default:                      return "opportunistic";
	}
}

/* How much a policy checks: a connection made under a lower rank never
 * serves a host that now asks for a higher one. */
static int policy_rank(unsigned p)
{
	switch (p) {
	case CLIENT_TLS_STS_TESTING:
	case CLIENT_TLS_DANE_ENCRYPT: return 1;
	case CLIENT_TLS_STS:          return 2;
	case CLIENT_TLS_DANE:         return 3;
	default:                      return 0;
	}
}

/*
 * May lk (kept after a transaction to the same destination) carry req's?
 * Without an MTA-STS policy, any (DANE is the hosts', and a resolution
 * that finds a host stronger than its kept connections closes them:
 * pool_tighten).  Under `enforce`, only a connection authenticated under
 * DANE, or under MTA-STS to a host the policy (as it is now) allows.
 * Under `testing`, one the policy was checked on (or DANE).
 */
static int link_fits(const struct link *lk, const struct client_req *req)
{
	if (req->sts == NULL || req->sts->mode == MTASTS_MODE_NONE)
		return 1;
	if (lk->policy == CLIENT_TLS_DANE && lk->result == -1)
		return 1;
	if (req->sts->mode == MTASTS_MODE_ENFORCE)
		return lk->policy == CLIENT_TLS_STS && lk->result == -1 &&
		       mtasts_mx_allowed(req->sts, lk->host);
	return policy_rank(lk->policy) >= 1;
}

/* ---- links and the pool ---- */

static struct link *link_new(struct client *cl)
{
	struct link *lk = calloc(1, sizeof *lk);

	if (lk == NULL)
		return NULL;
	conn_init(&lk->cn, cl->loop, -1, io_cb, cl, lk->in, sizeof lk->in);
	return lk;
}

static void link_free(struct link *lk)
{
	if (lk == NULL)
		return;
	ev_timer_stop(lk->cn.loop, &lk->idle);
	conn_close(&lk->cn);
	free(lk);
}

/* Take lk out of its pool's idle list and free it. */
static void link_drop(struct link *lk)
{
	struct client_pool *p = lk->pool;
	struct link **pp;

	for (pp = &p->idle; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == lk) {
			*pp = lk->next;
			p->nidle--;
			break;
		}
	}
	link_free(lk);
}

/* Write what the session has for the socket, best effort, never waited
 * for (a QUIT). */
static void link_flush(struct link *lk)
{
	size_t n;
	const char *out = smtpc_output(&lk->s, &n);

	if (n > 0 && lk->cn.io.fd >= 0 && conn_tls_check(&lk->cn) != CONN_TLS_FAILED &&
	    conn_write(&lk->cn, out, n) > 0)
		(void)conn_flush(&lk->cn);
}

/* A kept connection spoke (a 421 before closing) or closed: gone. */
static void idle_io_cb(struct ev_loop *l, struct ev_io *io, unsigned events)
{
	(void)l;
	(void)events;
	link_drop(io->arg);
}

/* Kept long enough without a transaction: QUIT and close. */
static void idle_timer_cb(struct ev_loop *l, struct ev_timer *t)
{
	struct link *lk = t->arg;

	(void)l;
	smtpc_quit(&lk->s);
	link_flush(lk);
	link_drop(lk);
}

/* Keep lk for key's next transaction: 1, or 0 (not wanted: the caller
 * closes it). */
static int pool_keep(struct client_pool *p, struct link *lk, const char *key)
{
	if (p == NULL || key == NULL || ++lk->messages >= p->max_messages || p->idle_ms == 0 ||
	    strlen(key) >= sizeof lk->key)
		return 0;
	snprintf(lk->key, sizeof lk->key, "%s", key);
	lk->pool = p;
	lk->cn.io.cb = idle_io_cb;
	lk->cn.io.arg = lk;
	if (conn_watch(&lk->cn, 0, 1) < 0)
		return 0;
	lk->idle.cb = idle_timer_cb;
	lk->idle.arg = lk;
	ev_timer_start(p->loop, &lk->idle, p->idle_ms);
	lk->next = p->idle;
	p->idle = lk;
	p->nidle++;
	return 1;
}

/* A kept connection to key that may carry req's transaction (link_fits),
 * taken out of the pool; NULL if none. */
static struct link *pool_take(struct client_pool *p, const char *key,
                              const struct client_req *req)
{
	struct link **pp;

	for (pp = &p->idle; *pp != NULL; pp = &(*pp)->next) {
		struct link *lk = *pp;

		if (strcmp(lk->key, key) == 0 && link_fits(lk, req)) {
			*pp = lk->next;
			p->nidle--;
			ev_timer_stop(p->loop, &lk->idle);
			lk->pool = NULL;
			lk->next = NULL;
			return lk;
		}
	}
	return NULL;
}

/* A fresh resolution found that host (of destination key) asks for policy:
 * its kept connections made under a weaker one are closed (QUIT). */
static void pool_tighten(struct client_pool *p, const char *key, const char *host,
                         unsigned policy)
{
	struct link *lk, *next;

	for (lk = p != NULL ? p->idle : NULL; lk != NULL; lk = next) {
		next = lk->next;
		if (strcmp(lk->key, key) == 0 && strcmp(lk->host, host) == 0 &&
		    policy_rank(lk->policy) < policy_rank(policy)) {
			log_debug("msg=\"%s: a kept connection made under %s closed: %s now\"", lk->remote,
			          client_tls_policy_name(lk->policy), client_tls_policy_name(policy));
			smtpc_quit(&lk->s);
			link_flush(lk);
			link_drop(lk);
		}
	}
}

static int resume_get(struct client_pool *p, const char *key, struct tls_session *out)
{
	for (size_t i = 0; p != NULL && i < RESUME_MAX; i++) {
		if (p->resume[i].at != 0 && strcmp(p->resume[i].key, key) == 0) {
			*out = p->resume[i].s;
			return 1;
		}
	}
	return 0;
}

/* Remember key's session (in its slot, or the oldest). */
static void resume_put(struct client_pool *p, const char *key, const struct tls_session *s)
{
	size_t old = 0;

	if (p == NULL || strlen(key) >= sizeof p->resume[0].key)
		return;
	for (size_t i = 0; i < RESUME_MAX; i++) {
		if (p->resume[i].at != 0 && strcmp(p->resume[i].key, key) == 0) {
			old = i;
			break;
		}
		if (p->resume[i].at < p->resume[old].at)
			old = i;
	}
	snprintf(p->resume[old].key, sizeof p->resume[old].key, "%s", key);
	p->resume[old].s = *s;
	p->resume[old].at = p->loop->now ? p->loop->now : 1;
}

struct client_pool *client_pool_new(struct ev_loop *l, unsigned max_messages, unsigned idle_ms)
{
	struct client_pool *p = calloc(1, sizeof *p);

	if (p == NULL)
		return NULL;
	p->loop = l;
	p->max_messages = max_messages;
	p->idle_ms = idle_ms;
	return p;
}

void client_pool_free(struct client_pool *p)
{
	if (p == NULL)
		return;
	while (p->idle != NULL) {
		smtpc_quit(&p->idle->s);
		link_flush(p->idle);
		link_drop(p->idle);
	}
	explicit_bzero(p->resume, sizeof p->resume);
	free(p);
}

unsigned client_pool_count(const struct client_pool *p, const char *key)
{
	unsigned n = 0;

	for (const struct link *lk = p != NULL ? p->idle : NULL; lk != NULL; lk = lk->next)
		if (key == NULL || strcmp(lk->key, key) == 0)
			n++;
	return n;
}

/* ---- the end ---- */

static void done_cb(struct ev_loop *l, struct ev_timer *t)
{
	struct client *cl = t->arg;

	(void)l;
	cl->req.done(cl->req.arg, cl->remote);
}

/* The attempt's connection, not kept: closed and freed. */
static void close_conn(struct client *cl)
{
	link_free(cl->lk);
	cl->lk = NULL;
	ev_timer_stop(cl->loop, &cl->timer);
}

/* Every recipient without an outcome gets st and text; then DONE. */
static void finish(struct client *cl, enum smtpc_status st, const char *text)
{
	close_conn(cl);
	cl->unreachable = cl->ntargets > 0 && !cl->reached;
	for (size_t i = 0; i < cl->req.nrcpts; i++) {
		struct smtpc_result *r = &cl->req.res[i];
		if (r->status == SMTPC_R_NONE || !cl->session_ran) {
			r->status = (uint8_t)st;
			r->code = 0;
			snprintf(r->text, sizeof r->text, "%s", text);
		}
	}
	if (!cl->session_ran)
		cl->remote[0] = '\0';
	cl->phase = PH_DONE;
	ev_timer_start(cl->loop, &cl->done_timer, 0);
}

/* ---- RESOLVE ---- */

static void add_target(struct client *cl, const struct ipaddr *a, const char *host,
                       unsigned policy, size_t h)
{
	struct target *t;

	if (cl->ntargets == CLIENT_ADDR_MAX)
		return;
	for (size_t i = 0; i < cl->ntargets; i++)
		if (ip_equal(&cl->targets[i].addr, a))
			return;
	t = &cl->targets[cl->ntargets++];
	t->addr = *a;
	t->port = cl->port;
	t->policy = (uint8_t)policy;
	t->h = h;
	snprintf(t->host, sizeof t->host, "%s", host);
}

/* ---- the TLS policy of each host ---- */

/* Does policy p check anything a TLS report tells of? */
static int policy_reported(unsigned p)
{
	return p == CLIENT_TLS_STS || p == CLIENT_TLS_STS_TESTING || p == CLIENT_TLS_DANE ||
	       p == CLIENT_TLS_DANE_ENCRYPT;
}

/* Our end of the connection on fd, as text into buf ("" if unknown). */
static void local_address(int fd, char *buf, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	struct ipaddr ip;

	buf[0] = '\0';
	if (fd >= 0 && getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
	    sockaddr_to_ip((struct sockaddr *)&ss, &ip) >= 0)
		ip_format(&ip, buf, cap);
}

/*
 * A session under policy toward t's host (or, t NULL, the host named
 * mx): success (result -1) or a failure (an RFC 8460 result type) and
 * why, kept for the report and for the log line; a failure is logged
 * (event=tls-policy-fail, counted by the metrics).  action says what
 * came of it: next-host, reported (testing), encrypted-only.
 */
static void session_note(struct client *cl, const struct target *t, const char *mx,
                         unsigned policy, int result, const char *reason, const char *action)
{
	struct client_session *x = NULL;
	char ip[IP_TEXT_MAX] = "", why[sizeof x->reason * 4 + 8];

	cl->policy = (uint8_t)policy;
	cl->policy_result = (int8_t)result;
	if (t != NULL)
		ip_format(&t->addr, ip, sizeof ip);
	if (cl->nsessions < CLIENT_SESSIONS_MAX) {
		x = &cl->sessions[cl->nsessions++];
		memset(x, 0, sizeof *x);
		x->policy = (uint8_t)policy;
		x->result = (int8_t)result;
		snprintf(x->mx, sizeof x->mx, "%.253s", t != NULL ? t->host : mx);
		snprintf(x->ip, sizeof x->ip, "%s", ip);
		snprintf(x->reason, sizeof x->reason, "%s", reason);
		if (result >= 0 && t != NULL && cl->lk != NULL) {   /* the connection checked */
			local_address(cl->lk->cn.io.fd, x->local, sizeof x->local);
			snprintf(x->helo, sizeof x->helo, "%s", cl->lk->s.peer_name);
		}
		if (t != NULL && t->h < cl->nhosts && policy == CLIENT_TLS_DANE)
			memcpy(x->tlsa, cl->hosts[t->h].tlsa_text, sizeof x->tlsa);   /* (same size) */
	}
	if (result < 0)
		return;
	log_quoted(reason, strlen(reason), why, sizeof why);
	log_event("tls-policy-fail", "domain=%s mx=%s address=%s policy=%s result=%s action=%s reason=%s",
	          cl->req.route.domain, t != NULL ? t->host : mx, ip[0] ? ip : "none",
	          client_tls_policy_name(policy), tlsrpt_result_name((unsigned)result), action, why);
}

/* The policy for host h (docs/tls-policy.md "Which policy applies"). */
static unsigned host_policy(const struct client *cl, const struct host *h)
{
	const struct mtasts_policy *sts = cl->req.sts;

	if (cl->req.route.kind != ROUTE_MX)
		return cl->req.route.hop != NULL ? CLIENT_TLS_ROUTE : CLIENT_TLS_OPPORTUNISTIC;
	if (h != NULL && h->dane == DANE_USABLE)
		return CLIENT_TLS_DANE;
	if (sts != NULL && sts->mode == MTASTS_MODE_ENFORCE)
		return CLIENT_TLS_STS;
	if (sts != NULL && sts->mode == MTASTS_MODE_TESTING)
		return CLIENT_TLS_STS_TESTING;
	if (h != NULL && h->dane == DANE_UNUSABLE)
		return CLIENT_TLS_DANE_ENCRYPT;
	return CLIENT_TLS_OPPORTUNISTIC;
}

/* The TLSA records as the report shows them: "3 1 1 HEX" lines, whole
 * records only within the text's room. */
static void tlsa_format(const struct dns_tlsa_set *set, char *out, size_t cap)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < set->n; i++) {
		const struct dns_tlsa *r = &set->r[i];
		size_t need = 12 + (r->toobig ? 0 : 2u * r->len) + 1;
		int n;

		if (o + need >= cap)
			break;
		n = snprintf(out + o, cap - o, "%s%u %u %u ", o ? "\n" : "", r->usage, r->selector,
		             r->mtype);
		o += (size_t)n;
		for (size_t k = 0; !r->toobig && k < r->len; k++, o += 2)
			snprintf(out + o, cap - o, "%02x", r->data[k]);
	}
}

/* A host's address answers (records or none) all came validated. */
static int host_validated(const struct host *h)
{
	int any = 0;

	for (int f = 0; f < 2; f++) {
		if (h->st[f] == DNS_TEMPFAIL ||
		    ((h->st[f] == DNS_OK || h->st[f] == DNS_NODATA) && !h->ad[f]))
			return 0;
		any |= h->st[f] == DNS_OK;
	}
	return any;
}

/*
 * RFC 5321 5.1: a next hop that is ourselves (one of our listeners, by
 * address and port) is dropped with every one after it (the MX hosts of
 * lower preference); when none is left before it the mail would loop:
 * its recipients bounce at once, 5.4.6.  Returns 1 then (finished).
 */
static int drop_self(struct client *cl)
{
	char text[SMTPC_TEXT_MAX];
	size_t i = 0;

	while (i < cl->ntargets && !route_is_self(cl->req.conf, cl->req.local, cl->req.nlocal,
	                                          &cl->targets[i].addr, cl->targets[i].port))
		i++;
	if (i == cl->ntargets)
		return 0;
	if (i > 0) {
		log_debug("msg=\"%s: dropping %zu address(es) from ours on (RFC 5321 5.1)\"",
		          cl->req.route.domain, cl->ntargets - i);
		cl->ntargets = i;
		return 0;
	}
	snprintf(text, sizeof text, "5.4.6 mail for %s loops back to myself",
	         cl->req.route.domain);
	cl->reached = 1;     /* decided: not the destination's failure */
	finish(cl, SMTPC_R_PERM, text);
	return 1;
}

/* Hosts left out of the targets, and why (the error when none is left). */
struct left_out {
	size_t sts;             /* MX hosts MTA-STS enforce does not allow */
	size_t dane;            /* hosts whose TLSA lookup failed */
	char   dane_host[DNS_NAME_MAX + 1];
};

/* Host h's addresses into the targets, under its policy; or left out. */
static void host_targets(struct client *cl, size_t hi, struct left_out *lo)
{
	struct host *h = &cl->hosts[hi];
	unsigned policy = host_policy(cl, h);

	if (h->dane == DANE_FAILED) {
		lo->dane++;
		snprintf(lo->dane_host, sizeof lo->dane_host, "%s", h->name);
		return;
	}
	if ((policy == CLIENT_TLS_STS || policy == CLIENT_TLS_STS_TESTING) &&
	    !mtasts_mx_allowed(cl->req.sts, h->name)) {
		int enforce = policy == CLIENT_TLS_STS;
		session_note(cl, NULL, h->name, policy, TLSRPT_VALIDATION_FAILURE,
		             "mx host not in the MTA-STS policy", enforce ? "not-used" : "reported");
		if (enforce) {
			lo->sts++;
			return;
		}
	}
	pool_tighten(cl->req.pool, cl->req.key, h->name, policy);
	for (int f = 0; f < 2; f++)
		for (size_t i = 0; i < h->naddr[f]; i++)
			add_target(cl, &h->addr[f][i], h->name, policy, hi);
}

/* Every lookup answered: targets in MX order, IPv6 first, each under its
 * host's policy. */
static void targets_done(struct client *cl)
{
	struct left_out lo = { 0, 0, "" };
	int temp = 0;

	for (size_t h = 0; h < cl->nhosts; h++) {
		host_targets(cl, h, &lo);
		for (int f = 0; f < 2; f++)
			temp |= cl->hosts[h].st[f] == DNS_TEMPFAIL;
	}
	if (cl->ntargets == 0) {
		char text[SMTPC_TEXT_MAX];
		int route = cl->req.route.kind != ROUTE_MX;
		if (lo.sts > 0 && lo.dane == 0) {
			snprintf(text, sizeof text, "4.7.5 no MX host of %s is allowed by its MTA-STS "
			         "policy", cl->req.route.domain);
		} else if (lo.dane > 0) {
			snprintf(text, sizeof text, "4.4.3 temporary DNS failure looking up the TLSA "
			         "records of %s (RFC 7672 2.2: not tried without them)", lo.dane_host);
			temp = 1;
		} else {
			/* A next hop of our own configuration that does not
			 * resolve is our error: the mail waits for the fix (4.4.3,
			 * not 5.1.2). */
			snprintf(text, sizeof text, "%s looking up the address of %s%s",
			         temp ? "4.4.3 temporary DNS failure" : route ? "4.4.3 no address found"
			                                                      : "5.1.2 no address found",
			         cl->hosts[0].name, route ? " (the configured next hop)" : "");
		}
		finish(cl, temp || route || lo.sts > 0 ? SMTPC_R_TEMP : SMTPC_R_PERM, text);
		return;
	}
	if (drop_self(cl))
		return;
	cl->phase = PH_CONNECT;
	cl->cur = 0;
	connect_next(cl);
}

static void tlsa_cb(void *arg, enum dns_status st, const struct dns_tlsa_set *set)
{
	struct addr_ctx *x = arg;
	struct client *cl = x->cl;
	struct host *h = &cl->hosts[x->host];

	h->q[2] = NULL;
	if (st == DNS_TEMPFAIL) {
		h->dane = DANE_FAILED;
		log_warn("msg=\"TLSA lookup for _25._tcp.%s failed (a temporary DNS failure, or "
		         "records that do not parse): the host is not tried now (RFC 7672 2.2)\"",
		         h->name);
	} else if (st != DNS_OK) {
		h->dane = DANE_NONE;
	} else if (!set->ad) {
		h->dane = DANE_NONE;
		log_debug("msg=\"TLSA records of %s not validated (no AD bit): DANE not used\"",
		          h->name);
	} else if (dane_usable_count(set) == 0) {
		h->dane = DANE_UNUSABLE;
		log_warn("msg=\"the TLSA records of _25._tcp.%s are all unusable (usage, selector, "
		         "matching type or digest length): DANE cannot check %s, STARTTLS is still "
		         "required (RFC 7672 2.2)\"", h->name, h->name);
	} else if ((h->tlsa = malloc(sizeof *h->tlsa)) != NULL) {
		*h->tlsa = *set;
		h->dane = DANE_USABLE;
		tlsa_format(set, h->tlsa_text, sizeof h->tlsa_text);
	} else {
		h->dane = DANE_FAILED;
	}
	if (--cl->pending == 0)
		targets_done(cl);
}

/* DANE (RFC 7672 2.2): for an MX domain whose MX answer came validated,
 * the TLSA records of each host whose address answers did too. */
static void tlsa_lookups(struct client *cl)
{
	char name[DNS_NAME_MAX + 16];

	if (cl->req.dane && cl->req.route.kind == ROUTE_MX && cl->mx_ad) {
		for (size_t i = 0; i < cl->nhosts; i++) {
			struct host *h = &cl->hosts[i];

			if (!host_validated(h))
				continue;
			h->ctx[2].cl = cl;
			h->ctx[2].host = i;
			h->ctx[2].fam = 2;
			snprintf(name, sizeof name, "_25._tcp.%s", h->name);
			if ((h->q[2] = dns_lookup_tlsa(cl->req.dns, name, tlsa_cb, &h->ctx[2])) != NULL)
				cl->pending++;
		}
	}
	if (cl->pending == 0)
		targets_done(cl);
}

/* Every address query answered: DANE's TLSA lookups, then the targets. */
static void hosts_done(struct client *cl)
{
	tlsa_lookups(cl);
}

static void host_cb(void *arg, enum dns_status st, const struct dns_answer *a)
{
	struct addr_ctx *x = arg;
	struct client *cl = x->cl;
	struct host *h = &cl->hosts[x->host];
	int f = x->fam;

	h->q[f] = NULL;
	h->st[f] = st;
	h->ad[f] = a->ad;
	for (size_t i = 0; st == DNS_OK && i < a->naddr && h->naddr[f] < 4; i++)
		h->addr[f][h->naddr[f]++] = a->addr[i];
	if (--cl->pending == 0)
		hosts_done(cl);
}

/* A configured next hop's name in /etc/hosts: its addresses, no DNS
 * (the C library's "files dns").  1 if it was there. */
static int from_hosts_file(struct client *cl, struct host *hp)
{
	struct ipaddr a[8];
	size_t n = dns_hosts(cl->req.dns, hp->name, a, 8);

	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		int f = a[i].family == IP_V6 ? 0 : 1;     /* IPv6 first, as from DNS */
		if (hp->naddr[f] < 4)
			hp->addr[f][hp->naddr[f]++] = a[i];
	}
	hp->st[0] = hp->naddr[0] ? DNS_OK : DNS_NODATA;
	hp->st[1] = hp->naddr[1] ? DNS_OK : DNS_NODATA;
	return 1;
}

/* Ask for the AAAA and A records of every host in hosts[]. */
static void resolve_hosts(struct client *cl)
{
	static const uint16_t types[2] = { DNS_T_AAAA, DNS_T_A };

	for (size_t h = 0; h < cl->nhosts; h++) {
		if (cl->req.route.kind != ROUTE_MX && from_hosts_file(cl, &cl->hosts[h]))
			continue;
		for (int f = 0; f < 2; f++) {
			struct host *hp = &cl->hosts[h];
			hp->ctx[f].cl = cl;
			hp->ctx[f].host = h;
			hp->ctx[f].fam = f;
			hp->q[f] = dns_lookup(cl->req.dns, hp->name, types[f], host_cb, &hp->ctx[f]);
			if (hp->q[f] == NULL)
				hp->st[f] = DNS_NXDOMAIN;     /* not a host name: nothing there */
			else
				cl->pending++;
		}
	}
	if (cl->pending == 0)
		hosts_done(cl);
}

static void mx_cb(void *arg, enum dns_status st, const struct dns_answer *a)
{
	struct client *cl = arg;
	char text[SMTPC_TEXT_MAX];
	struct dns_answer *sorted;
	uint64_t seed = 0;

	cl->mxq = NULL;
	cl->mx_ad = a->ad;        /* (of the records, or of the NODATA: implicit MX) */
	switch (st) {
	case DNS_NXDOMAIN:
		snprintf(text, sizeof text, "5.1.2 domain %s not found", cl->req.route.domain);
		finish(cl, SMTPC_R_PERM, text);
		return;
	case DNS_TEMPFAIL:
		snprintf(text, sizeof text, "4.4.3 temporary DNS failure looking up MX for %s",
		         cl->req.route.domain);
		finish(cl, SMTPC_R_TEMP, text);
		return;
	case DNS_NODATA:
		/* No MX: the domain is its own mail host (RFC 5321 5.1). */
		snprintf(cl->hosts[0].name, sizeof cl->hosts[0].name, "%s", cl->domain);
		cl->nhosts = 1;
		resolve_hosts(cl);
		return;
	default:
		break;
	}
	if (dns_mx_is_null(a)) {
		snprintf(text, sizeof text, "5.1.10 domain %s accepts no mail (null MX)",
		         cl->req.route.domain);
		finish(cl, SMTPC_R_PERM, text);
		return;
	}
	if ((sorted = malloc(sizeof *sorted)) == NULL) {
		finish(cl, SMTPC_R_TEMP, "4.3.0 out of memory");
		return;
	}
	*sorted = *a;
	if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
		seed = (uint64_t)(uintptr_t)cl ^ (uint64_t)cl->loop->now;
	dns_mx_sort(sorted, seed);
	for (size_t i = 0; i < sorted->nmx && cl->nhosts < CLIENT_MX_MAX; i++)
		snprintf(cl->hosts[cl->nhosts++].name, DNS_NAME_MAX + 1, "%s", sorted->mx[i].host);
	free(sorted);
	resolve_hosts(cl);
}

/* ---- CONNECT ---- */

static void set_timer(struct client *cl, unsigned secs)
{
	ev_timer_start(cl->loop, &cl->timer, (int64_t)secs * 1000);
}

static void target_text(const struct target *t, char *buf, size_t cap)
{
	char ip[IP_TEXT_MAX];

	ip_format(&t->addr, ip, sizeof ip);
	snprintf(buf, cap, "%s[%s]", t->host, ip);
}

/* This target failed before a session could decide anything:
 * "WHAT HOST[ADDR]:PORT: DETAIL" is kept as the error. */
static void target_failed(struct client *cl, const char *what, const char *detail)
{
	char where[CLIENT_HOST_MAX];

	target_text(&cl->targets[cl->cur], where, sizeof where);
	snprintf(cl->error, sizeof cl->error, "%s %.300s:%u: %.120s", what, where,
	         cl->targets[cl->cur].port, detail);
	log_debug("msg=\"%s\"", cl->error);
	close_conn(cl);
	cl->cur++;
	cl->plain_retry = 0;
	cl->unverified_retry = 0;
	connect_next(cl);
}

/* The TLS mode for this destination (enum conf_otls). */
static int otls_mode(const struct client *cl)
{
	const struct conf_nexthop *hop = cl->req.route.hop;

	return hop ? hop->tls : cl->req.conf->outbound_tls;
}

static int is_smtps(const struct client *cl)
{
	return cl->req.route.hop != NULL && cl->req.route.hop->smtps;
}

/* The TLS engine for target t under its policy: DANE checks the chain
 * against the host's TLSA records; MTA-STS (enforce, and testing until a
 * failure) against tls-ca-file and the host's name; else as `tls` says
 * (verify: the CA bundle, and the name when we know the server by one). */
static struct tls *tls_engine(struct client *cl, const struct target *t, const char *name)
{
	const struct host *h = t->h < cl->nhosts ? &cl->hosts[t->h] : NULL;

	switch (t->policy) {
	case CLIENT_TLS_DANE:
		return h != NULL && h->tlsa != NULL ? tls_client_new_dane(t->host, h->tlsa) : NULL;
	case CLIENT_TLS_DANE_ENCRYPT:
		return tls_client_new(t->host, NULL);
	case CLIENT_TLS_STS:
		return tls_client_new(t->host, cl->req.anchors);
	case CLIENT_TLS_STS_TESTING:
		return tls_client_new(t->host, cl->unverified_retry ? NULL : cl->req.anchors);
	default:
		return tls_client_new(name, otls_mode(cl) == CONF_OTLS_VERIFY ? cl->req.anchors : NULL);
	}
}

/* Start TLS on the socket (STARTTLS, or smtps from the first byte). */
static int tls_begin(struct client *cl)
{
	const struct target *t = &cl->targets[cl->cur];
	struct ipaddr ip;
	const char *name = ip_parse(t->host, strlen(t->host), &ip) == 0 ? NULL : t->host;
	struct tls *e = tls_engine(cl, t, name);
	struct tls_session ts;

	if (e == NULL)
		return -1;
	cl->tls_tried = 1;
	/* The last session with this server under the same policy, offered
	 * again (a server that does not know it any more does a full
	 * handshake).  Never under DANE: a resumed session skips the chain
	 * the TLSA records must match. */
	if (t->policy != CLIENT_TLS_DANE && resume_get(cl->req.pool, cl->lk->resume_key, &ts)) {
		(void)tls_client_resume(e, name, &ts);
		explicit_bzero(&ts, sizeof ts);
	}
	/* Nothing the server sent after its 220 to STARTTLS is kept. */
	conn_tls_start(&cl->lk->cn, e, 0);
	return 0;
}

/* The session's parameters for this attempt's transaction, on a
 * connection under policy: DANE and MTA-STS enforce require STARTTLS. */
static void session_params(struct client *cl, struct smtpc_params *p, unsigned policy)
{
	int mode = otls_mode(cl);

	memset(p, 0, sizeof *p);
	p->helo = cl->req.conf->hostname;
	p->sender = cl->req.sender;
	p->rcpts = cl->req.rcpts;
	p->nrcpts = cl->req.nrcpts;
	p->size = cl->req.size;
	p->flags = cl->req.flags;
	p->probe = cl->req.probe;
	p->auth_user = cl->req.auth_user;
	p->auth_pass = cl->req.auth_pass;
	p->dsn = cl->req.dsn;
	p->in_tls = is_smtps(cl);
	p->tls = mode == CONF_OTLS_NONE ? SMTPC_TLS_NONE : mode == CONF_OTLS_MAY ? SMTPC_TLS_MAY
	                                                                       : SMTPC_TLS_REQUIRE;
	if (cl->plain_retry)
		p->tls = SMTPC_TLS_NONE;     /* `tls may`: the handshake failed, go without */
	if (policy == CLIENT_TLS_DANE || policy == CLIENT_TLS_DANE_ENCRYPT ||
	    policy == CLIENT_TLS_STS)
		p->tls = SMTPC_TLS_REQUIRE;
	p->loop_name = cl->req.route.domain;
	/* Kept open for the next message to this destination (not a probe). */
	p->keep_open = cl->req.pool != NULL && cl->req.key != NULL && !cl->req.probe;
}

static void start_session(struct client *cl)
{
	struct smtpc_params *p = &cl->sp;
	const struct target *t = &cl->targets[cl->cur];

	session_params(cl, p, t->policy);
	smtpc_init(&cl->lk->s, p, cl->req.res);
	cl->session_ran = 1;
	cl->tls_failed = 0;
	cl->tls_tried = 0;
	cl->tls_info[0] = '\0';
	cl->policy = t->policy;
	if (!cl->unverified_retry)
		cl->policy_result = -2;    /* (a testing retry keeps the failure it follows) */
	target_text(t, cl->remote, sizeof cl->remote);
	snprintf(cl->lk->remote, sizeof cl->lk->remote, "%s", cl->remote);
	snprintf(cl->lk->host, sizeof cl->lk->host, "%.253s", t->host);
	cl->lk->policy = t->policy;
	cl->lk->result = cl->policy_result;
	/* (TLS sessions are resumed only under the policy they were made
	 * under, and a testing-mode one only when it was verified) */
	snprintf(cl->lk->resume_key, sizeof cl->lk->resume_key, "%s:%u/%s%s", cl->remote, t->port,
	         client_tls_policy_name(t->policy), cl->unverified_retry ? "-any" : "");
	cl->phase = PH_SESSION;
	cl->blen = cl->boff = 0;
	cl->bodyoff = 0;
	cl->body_wait = 0;
	set_timer(cl, cl->req.conf->timeout_reply);
	if (p->in_tls && tls_begin(cl) != 0) {
		target_failed(cl, "4.3.0", "cannot set up TLS");
		return;
	}
	pump(cl);
}

static void io_cb(struct ev_loop *l, struct ev_io *io, unsigned events);

static void connect_next(struct client *cl)
{
	const struct target *t;
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd;

	if (cl->cur >= cl->ntargets) {
		/* Nobody decided: the last session's results stand if there
		 * was one, else the last connection error for everyone. */
		cl->session_ran = 0;
		finish(cl, SMTPC_R_TEMP, cl->error[0] ? cl->error : "4.4.1 no server reached");
		return;
	}
	t = &cl->targets[cl->cur];
	sl = sockaddr_from_ip(&t->addr, t->port, &ss);
	if ((otls_mode(cl) == CONF_OTLS_VERIFY && t->policy <= CLIENT_TLS_ROUTE) ||
	    t->policy == CLIENT_TLS_STS) {
		if (cl->req.anchors == NULL) {
			target_failed(cl, "4.7.5", t->policy == CLIENT_TLS_STS
			              ? "MTA-STS enforce, but no CA bundle was loaded (tls-ca-file)"
			              : "tls verify, but no CA bundle was loaded (tls-ca-file)");
			return;
		}
	}
	if ((cl->lk = link_new(cl)) == NULL) {
		target_failed(cl, "4.3.0", "out of memory");
		return;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		target_failed(cl, "4.4.1 connect to", strerror(errno));
		return;
	}
	/* The session writes whole groups (a pipelined MAIL, RCPT and DATA,
	 * body pieces, the final dot) and then waits for a reply: Nagle's
	 * hold-back would only add a delayed ACK's wait (40 ms) to each. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	conn_init(&cl->lk->cn, cl->loop, fd, io_cb, cl, cl->lk->in, sizeof cl->lk->in);
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
		target_failed(cl, "4.4.1 connect to", strerror(errno));
		return;
	}
	if (ev_io_set(cl->loop, &cl->lk->cn.io, EV_WRITE) < 0) {
		target_failed(cl, "4.4.1 connect to", strerror(errno));
		return;
	}
	cl->phase = PH_CONNECT;
	set_timer(cl, cl->req.conf->timeout_connect);
}

/* ---- SESSION ---- */

/* A fresh session under a policy that found no STARTTLS (none offered, or
 * refused) and so began no handshake: a failure for the report. */
static void starttls_note(struct client *cl, struct link *lk)
{
	const struct target *t = &cl->targets[cl->cur];

	if (cl->cur >= cl->ntargets || cl->tls_tried || !lk->s.no_starttls || lk->s.in_tls ||
	    !policy_reported(t->policy))
		return;
	session_note(cl, t, NULL, t->policy, TLSRPT_STARTTLS_NOT_SUPPORTED,
	             "the server offers no STARTTLS",
	             t->policy == CLIENT_TLS_STS_TESTING ? "reported" : "next-host");
	lk->result = cl->policy_result;
}

/* The same target again after a failed handshake: under MTA-STS testing
 * a certificate that did not verify is taken after all (delivered as
 * without the policy, the failure reported); with `tls may` (and no policy
 * that requires TLS) in plaintext.  1 if so. */
static int retry_same(struct client *cl, const char *error)
{
	const struct target *t = &cl->targets[cl->cur];
	unsigned pol = cl->cur < cl->ntargets ? t->policy : CLIENT_TLS_OPPORTUNISTIC;

	if (!cl->tls_failed || is_smtps(cl))
		return 0;
	if (pol == CLIENT_TLS_STS_TESTING && cl->tls_cert && !cl->unverified_retry) {
		log_debug("msg=\"%s: MTA-STS testing, the check failed (%s): delivering as without "
		          "the policy\"", cl->remote, error);
		cl->unverified_retry = 1;
		connect_next(cl);
		return 1;
	}
	if (otls_mode(cl) == CONF_OTLS_MAY && !cl->plain_retry &&
	    (pol == CLIENT_TLS_OPPORTUNISTIC || pol == CLIENT_TLS_STS_TESTING)) {
		log_debug("msg=\"%s: TLS failed (%s), trying again without\"", cl->remote, error);
		cl->plain_retry = 1;
		connect_next(cl);
		return 1;
	}
	return 0;
}

/* The session is over: keep its connection for the next message, go on
 * a fresh connection (a kept one was gone), try again in plaintext (`tls
 * may` after a failed handshake) or the next address, or hand over the
 * outcome. */
static void session_over(struct client *cl)
{
	struct link *lk = cl->lk;
	char error[SMTPC_TEXT_MAX];
	int try_next = lk->s.try_next;

	if (lk->s.mail_code != 0 || lk->s.looped)
		cl->reached = 1;     /* (a loop decides: not the destination's failure) */
	snprintf(error, sizeof error, "%s", lk->s.error);
	snprintf(cl->tls_info, sizeof cl->tls_info, "%s", lk->tls_info);
	cl->tls_resumed = lk->resumed;
	if (smtpc_idle(&lk->s) && pool_keep(cl->req.pool, lk, cl->req.key)) {
		cl->lk = NULL;     /* the pool's now */
		ev_timer_stop(cl->loop, &cl->timer);
		finish(cl, SMTPC_R_TEMP, error);
		return;
	}
	if (cl->reused && lk->s.try_next) {
		/* A kept connection the server had closed (or that refused
		 * RSET): nothing was decided; the same transaction goes on a
		 * fresh connection. */
		log_debug("msg=\"%s: kept connection lost (%s), connecting again\"", cl->remote, error);
		close_conn(cl);
		cl->reused = 0;
		start_fresh(cl);
		return;
	}
	if (!cl->reused)
		starttls_note(cl, lk);
	smtpc_quit(&lk->s);    /* (an idle session not kept) */
	link_flush(lk);        /* a last QUIT, best effort: never waited for */
	close_conn(cl);
	if (retry_same(cl, error))
		return;
	if (try_next && cl->cur + 1 < cl->ntargets) {
		snprintf(cl->error, sizeof cl->error, "%.200s said: %.300s", cl->remote, error);
		log_debug("msg=\"%s; trying the next address\"", cl->error);
		cl->cur++;
		cl->plain_retry = 0;
		cl->unverified_retry = 0;
		connect_next(cl);
		return;
	}
	finish(cl, SMTPC_R_TEMP, error);
}

/* The body to the session, a piece at a time: 1 when it has all it wants
 * for now, 0 when it waits (for the socket, or for the next piece, asked
 * of the caller and given by client_body_data). */
static int feed_body(struct client *cl)
{
	while (smtpc_body_wanted(&cl->lk->s)) {
		size_t n;
		int last;
		if (cl->boff == cl->blen && cl->bodyoff < cl->req.size) {
			if (cl->body_wait)
				return 0;
			if (cl->req.body(cl->req.body_arg, cl->bodyoff, sizeof cl->body) != 0) {
				smtpc_abort(&cl->lk->s, "4.3.0 the queued message cannot be read");
				return 1;
			}
			cl->body_wait = 1;
			return 0;
		}
		last = cl->bodyoff >= cl->req.size;
		n = smtpc_body(&cl->lk->s, cl->body + cl->boff, cl->blen - cl->boff, last);
		cl->boff += n;
		if (n == 0 && smtpc_body_wanted(&cl->lk->s))
			return 0;            /* output full: wait for the socket */
	}
	return 1;
}

/* Plaintext the session wrote: to the socket, or into TLS records and
 * those to the socket.  Returns 1 if anything moved, 0 if not, -1 on a
 * write error. */
static int write_out(struct client *cl)
{
	int moved = 0;

	for (;;) {
		size_t n;
		const char *out = smtpc_output(&cl->lk->s, &n);
		ssize_t w = conn_write(&cl->lk->cn, out, n);
		int f;

		if (w < 0)
			return -1;
		if (w > 0) {
			smtpc_output_ack(&cl->lk->s, (size_t)w);
			moved = 1;
		}
		if ((f = conn_flush(&cl->lk->cn)) == CONN_ERROR)
			return -1;
		if (f == CONN_MOVED)
			moved = 1;
		if (w == 0 && f != CONN_MOVED)
			return moved;
	}
}

/* The handshake under a policy went through: a success for the report
 * (DANE with no usable record: encrypted, not checked, tlsa-invalid). */
static void tls_ok_note(struct client *cl)
{
	const struct target *t = &cl->targets[cl->cur];

	if (cl->cur >= cl->ntargets || !policy_reported(t->policy) ||
	    (t->policy == CLIENT_TLS_STS_TESTING && cl->unverified_retry))
		return;
	if (t->policy == CLIENT_TLS_DANE_ENCRYPT)
		session_note(cl, t, NULL, t->policy, TLSRPT_TLSA_INVALID, "no usable TLSA records",
		             "encrypted-only");
	else
		session_note(cl, t, NULL, t->policy, -1, "", "");
	cl->lk->result = cl->policy_result;
}

/* The RFC 8460 result of a failed DANE handshake, from the TLSA check. */
static int dane_result(enum dane_status ds)
{
	switch (ds) {
	case DANE_NO_MATCH:     return TLSRPT_TLSA_INVALID;
	case DANE_TA_NAME:      return TLSRPT_CERTIFICATE_HOST_MISMATCH;
	case DANE_TA_EXPIRED:   return TLSRPT_CERTIFICATE_EXPIRED;
	case DANE_TA_UNTRUSTED: return TLSRPT_CERTIFICATE_NOT_TRUSTED;
	default:                return TLSRPT_VALIDATION_FAILURE;
	}
}

/*
 * The handshake failed: why, in the report's words and for the log; and
 * the recipients' error: under DANE or MTA-STS, 4.7.5 saying which check
 * failed (the next host is tried, never plaintext).
 */
static void tls_fail_note(struct client *cl)
{
	const struct target *t = &cl->targets[cl->cur];
	int err = tls_error(cl->lk->cn.tls), result;
	enum tls_cert_fault f = tls_cert_fault(err);
	enum dane_status ds = tls_dane_status(cl->lk->cn.tls);
	char reason[96];

	cl->tls_cert = f != TLS_CERT_NONE;
	snprintf(cl->lk->s.error, sizeof cl->lk->s.error, "4.7.5 TLS handshake failed: %s",
	         tls_error_name(err));
	if (cl->cur >= cl->ntargets || !policy_reported(t->policy) ||
	    (t->policy == CLIENT_TLS_STS_TESTING && cl->unverified_retry))
		return;
	if (t->policy == CLIENT_TLS_DANE) {
		result = dane_result(ds);
		snprintf(reason, sizeof reason, "dane-%s", dane_status_name(ds));
		snprintf(cl->lk->s.error, sizeof cl->lk->s.error, "4.7.5 DANE: the certificate of %.200s "
		         "does not match its TLSA records (%s)", t->host, dane_status_name(ds));
	} else {
		result = f == TLS_CERT_NAME ? TLSRPT_CERTIFICATE_HOST_MISMATCH
		       : f == TLS_CERT_EXPIRED ? TLSRPT_CERTIFICATE_EXPIRED
		       : f == TLS_CERT_UNTRUSTED ? TLSRPT_CERTIFICATE_NOT_TRUSTED
		       : TLSRPT_VALIDATION_FAILURE;
		snprintf(reason, sizeof reason, "%s", tls_error_name(err));
		if (t->policy == CLIENT_TLS_STS)
			snprintf(cl->lk->s.error, sizeof cl->lk->s.error, "4.7.5 MTA-STS: TLS to %.200s "
			         "failed the check: %s", t->host, tls_error_name(err));
	}
	session_note(cl, t, NULL, t->policy, result, reason,
	             t->policy == CLIENT_TLS_STS_TESTING ? "reported" : "next-host");
	cl->lk->result = cl->policy_result;
}

/* The handshake: done (go on), failed (say so), or still under way. */
static void handshake_check(struct client *cl)
{
	enum conn_tls st = conn_tls_check(&cl->lk->cn);

	if (st != CONN_TLS_READY && st != CONN_TLS_FAILED)
		return;
	/* Said once: a failed handshake is not looked at again. */
	cl->lk->cn.handshaking = 0;
	if (st == CONN_TLS_READY) {
		struct tls_session ts;

		snprintf(cl->lk->tls_info, sizeof cl->lk->tls_info, "%s %s",
		         tls_version_name(cl->lk->cn.tls), tls_cipher_name(cl->lk->cn.tls));
		cl->lk->resumed = tls_resumed(cl->lk->cn.tls);
		if (cl->req.pool != NULL && tls_session_get(cl->lk->cn.tls, &ts)) {
			resume_put(cl->req.pool, cl->lk->resume_key, &ts);
			explicit_bzero(&ts, sizeof ts);
		}
		tls_ok_note(cl);
		if (!is_smtps(cl))
			smtpc_tls_done(&cl->lk->s, 1);
		return;
	}
	cl->tls_failed = 1;
	if (is_smtps(cl)) {
		/* Nothing was said in the clear: this address failed. */
		char why[64];
		snprintf(why, sizeof why, "TLS handshake failed: %s",
		         tls_error_name(tls_error(cl->lk->cn.tls)));
		cl->session_ran = 0;
		target_failed(cl, "4.7.5 smtps", why);
		return;
	}
	smtpc_tls_done(&cl->lk->s, 0);
	tls_fail_note(cl);
	for (size_t i = 0; i < cl->req.nrcpts; i++)
		if (cl->req.res[i].code == 0)
			snprintf(cl->req.res[i].text, sizeof cl->req.res[i].text, "%s", cl->lk->s.error);
}

static void pump(struct client *cl)
{
	enum smtpc_event_type ev;
	size_t n;

	for (int progress = 1; progress && cl->phase == PH_SESSION; ) {
		const char *in;
		size_t len;
		int w;

		progress = 0;
		if (cl->lk->cn.handshaking) {
			handshake_check(cl);
			if (cl->phase != PH_SESSION)
				return;       /* smtps: that address failed, the next is tried */
			if (!cl->lk->cn.handshaking)
				progress = 1;
		}
		if (conn_pull(&cl->lk->cn))
			progress = 1;
		if ((in = conn_in(&cl->lk->cn, &len)) != NULL && len > 0) {
			size_t used = smtpc_feed(&cl->lk->s, in, len);

			if (used > 0) {
				conn_consume(&cl->lk->cn, used);
				progress = 1;
			}
		}
		while (smtpc_event(&cl->lk->s, &ev)) {
			if (ev == SMTPC_EV_DONE) {
				session_over(cl);
				return;
			}
			if (ev == SMTPC_EV_STARTTLS) {
				/* The STARTTLS command is out and answered; nothing the
				 * server sent after its 220 is kept (smtpc refuses it). */
				if (tls_begin(cl) != 0)
					smtpc_tls_done(&cl->lk->s, 0);
			}
			progress = 1;
		}
		feed_body(cl);
		w = write_out(cl);
		if (w < 0) {
			smtpc_abort(&cl->lk->s, "4.4.2 lost connection");
			progress = 1;
		} else if (w > 0) {
			progress = 1;
		}
	}
	if (cl->phase != PH_SESSION)
		return;
	smtpc_output(&cl->lk->s, &n);
	if (conn_watch(&cl->lk->cn, n > 0, 1) < 0) {
		smtpc_abort(&cl->lk->s, "4.4.2 event loop error");
		session_over(cl);
	}
}

void client_body_data(struct client *cl, uint64_t off, const void *data, size_t len)
{
	if (!cl->body_wait || off != cl->bodyoff || cl->phase != PH_SESSION || cl->lk == NULL)
		return;
	cl->body_wait = 0;
	if (data == NULL || len == 0 || len > sizeof cl->body) {
		smtpc_abort(&cl->lk->s, "4.3.0 the queued message cannot be read");
	} else {
		memcpy(cl->body, data, len);
		cl->blen = len;
		cl->boff = 0;
		cl->bodyoff += len;
	}
	pump(cl);
}

static void io_cb(struct ev_loop *l, struct ev_io *io, unsigned events)
{
	struct client *cl = io->arg;

	(void)l;
	if (cl->phase == PH_CONNECT) {
		int err = 0;
		socklen_t len = sizeof err;
		if (getsockopt(cl->lk->cn.io.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err != 0) {
			target_failed(cl, "4.4.1 connect to", strerror(err));
			return;
		}
		start_session(cl);
		return;
	}
	if (cl->phase != PH_SESSION)
		return;
	if (events & EV_READ) {
		int r = conn_fill(&cl->lk->cn);

		if (r == CONN_EOF || r == CONN_ERROR) {
			const char *in;
			size_t len;

			/* What was read still counts (a 421 before the close). */
			conn_pull(&cl->lk->cn);
			if ((in = conn_in(&cl->lk->cn, &len)) != NULL && len > 0)
				smtpc_feed(&cl->lk->s, in, len);
			if (cl->lk->cn.handshaking) {
				handshake_check(cl);
				if (cl->phase != PH_SESSION)
					return;
				if (cl->lk->cn.handshaking) {
					cl->tls_failed = 1;
					if (!is_smtps(cl)) {
						smtpc_tls_done(&cl->lk->s, 0);
						tls_fail_note(cl);
					}
				}
			}
			smtpc_abort(&cl->lk->s, "4.4.2 connection closed by the server");
			session_over(cl);
			return;
		}
		if (r == CONN_MOVED)
			set_timer(cl, cl->req.conf->timeout_reply);
	}
	if (events & EV_WRITE)
		set_timer(cl, cl->req.conf->timeout_reply);
	pump(cl);
}

static void timer_cb(struct ev_loop *l, struct ev_timer *t)
{
	struct client *cl = t->arg;

	(void)l;
	if (cl->phase == PH_CONNECT) {
		target_failed(cl, "4.4.1 connect to", "timed out");
	} else if (cl->phase == PH_SESSION) {
		if (cl->lk->cn.handshaking)
			cl->tls_failed = 1;
		smtpc_abort(&cl->lk->s, "4.4.2 timeout");
		session_over(cl);
	}
}

const char *client_tls(const struct client *cl)
{
	return cl->tls_info;
}

int client_tls_resumed(const struct client *cl)
{
	return cl->tls_resumed;
}

int client_unreachable(const struct client *cl)
{
	return cl->unreachable;
}

unsigned client_tls_policy(const struct client *cl)
{
	return cl->policy;
}

const char *client_tls_policy_result(const struct client *cl)
{
	return cl->policy_result == -1 ? "ok" : cl->policy_result < 0 ? "none"
	       : tlsrpt_result_name((unsigned)cl->policy_result);
}

size_t client_sessions(const struct client *cl, const struct client_session **out)
{
	*out = cl->sessions;
	return cl->nsessions;
}

/* ---- start and stop ---- */

/* The next transaction on a kept connection: 0, or -1 (lk freed). */
static int start_reused(struct client *cl, struct link *lk)
{
	session_params(cl, &cl->sp, lk->policy);
	lk->cn.io.cb = io_cb;
	lk->cn.io.arg = cl;
	if (smtpc_next(&lk->s, &cl->sp, cl->req.res) != 0) {
		link_free(lk);
		return -1;
	}
	cl->lk = lk;
	cl->reused = 1;
	cl->session_ran = 1;
	cl->tls_failed = 0;
	cl->policy = lk->policy;
	cl->policy_result = lk->result;
	snprintf(cl->remote, sizeof cl->remote, "%s", lk->remote);
	cl->phase = PH_SESSION;
	cl->blen = cl->boff = 0;
	cl->bodyoff = 0;
	cl->body_wait = 0;
	set_timer(cl, cl->req.conf->timeout_reply);
	pump(cl);
	return 0;
}

/* Find the destination's addresses and connect to the first. */
static void start_fresh(struct client *cl)
{
	const struct route *r = &cl->req.route;

	cl->phase = PH_RESOLVE;
	cl->port = r->hop ? r->hop->port : 25;
	memset(cl->req.res, 0, cl->req.nrcpts * sizeof *cl->req.res);
	if (r->kind == ROUTE_LITERAL) {
		char text[IP_TEXT_MAX];
		ip_format(&r->addr, text, sizeof text);
		add_target(cl, &r->addr, text, CLIENT_TLS_OPPORTUNISTIC, SIZE_MAX);
	} else if (r->hop != NULL && r->hop->literal) {
		add_target(cl, &r->hop->addr, r->hop->host, CLIENT_TLS_ROUTE, SIZE_MAX);
	} else if (r->hop != NULL) {
		snprintf(cl->hosts[0].name, sizeof cl->hosts[0].name, "%.253s", r->hop->host);
		cl->nhosts = 1;
		resolve_hosts(cl);
		return;
	} else if (r->kind == ROUTE_MX) {
		/* SMTPUTF8 mail may name a domain in UTF-8: DNS knows its
		 * A-labels. */
		if (idna_to_ascii(r->domain, strlen(r->domain), cl->domain, sizeof cl->domain) > 0)
			cl->mxq = dns_lookup(cl->req.dns, cl->domain, DNS_T_MX, mx_cb, cl);
		if (cl->mxq == NULL) {
			char text[SMTPC_TEXT_MAX];
			snprintf(text, sizeof text, "5.1.2 %s is not a domain we can look up", r->domain);
			finish(cl, SMTPC_R_PERM, text);
		}
		return;
	} else {
		finish(cl, SMTPC_R_PERM, "5.1.2 an address literal of a kind we cannot deliver to");
		return;
	}
	cl->phase = PH_CONNECT;
	connect_next(cl);
}

struct client *client_start(struct ev_loop *l, const struct client_req *req)
{
	struct client *cl = calloc(1, sizeof *cl);
	struct link *lk;

	if (cl == NULL)
		return NULL;
	cl->loop = l;
	cl->req = *req;
	cl->timer.cb = timer_cb;
	cl->timer.arg = cl;
	cl->done_timer.cb = done_cb;
	cl->done_timer.arg = cl;
	memset(req->res, 0, req->nrcpts * sizeof *req->res);
	/* The destination's policy until a connection has its own. */
	cl->policy = (uint8_t)host_policy(cl, NULL);
	cl->policy_result = -2;
	if (req->pool != NULL && req->key != NULL && !req->probe &&
	    (lk = pool_take(req->pool, req->key, req)) != NULL && start_reused(cl, lk) == 0)
		return cl;
	start_fresh(cl);
	return cl;
}

void client_free(struct client *cl)
{
	if (cl == NULL)
		return;
	close_conn(cl);
	ev_timer_stop(cl->loop, &cl->done_timer);
	dns_cancel(cl->mxq);
	for (size_t h = 0; h < cl->nhosts; h++) {
		for (int f = 0; f < 3; f++)
			dns_cancel(cl->hosts[h].q[f]);
		free(cl->hosts[h].tlsa);
	}
	free(cl);
}
