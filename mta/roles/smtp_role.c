/* mta/roles/smtp_role.c -- the smtp role; see smtp_role.h */
#include "mta/roles/smtp_role.h"

#include <arpa/inet.h>
#include <poll.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mta/ops/loaded_config.h"
#include "mta/net/conn.h"
#include "mta/net/connlimit.h"
#include "mta/smtp/blocklist_lookup.h"
#include "mta/ops/control.h"
#include "mta/smtp/verify.h"
#include "mta/net/ev.h"
#include "mta/net/listen.h"
#include "mta/net/log.h"
#include "mta/ops/ops.h"
#include "mta/smtp/smtpd.h"
#include "mta/ops/config_files.h"
#include "mta/net/sockaddr.h"
#include "mta/net/tls.h"
#include "mta/net/key_client.h"
#include "mta/net/dkim_client.h"
#include "mta/smtp/dkim_signer.h"
#include "mta/net/plink.h"
#include "mta/roles/roles.h"
#include "mta/net/queue_client.h"
#include "policy/authfail.h"
#include "policy/proxy.h"
#include "policy/quota.h"
#include "policy/rules.h"
#include "queue/queue.h"
#include "queue/usage.h"

#define SESSION_IN_MAX  4096   /* must exceed SMTP_LINE_MAX */
#define COMMIT_BATCH 256
#define SHUTDOWN_FLUSH_MS 1000   /* after the deadline's 421s, before closing */
/* Freed connections kept for the next accept: musl's allocator gives each
 * group of these ~10 KB structs its own mmap and unmaps it when empty, and
 * the page faults and munmaps of one connection per message showed in the
 * profile under make bench. */
#define SESSION_SPARE_MAX 64
/* A proxy listener's connection must bring its whole PROXY header within
 * this long from the accept, however it trickles in: a load balancer
 * sends it with the connection, so only a stalled or hostile peer waits
 * (docs/security.md "Behind a load balancer"). */
#define PROXY_HEADER_MS 5000
_Static_assert(PROXY_HDR_MAX < SESSION_IN_MAX, "a whole PROXY header fits in the input buffer");

struct server;

struct session {
	struct conn         cn;               /* the socket, TLS, the input (in[]) */
	struct ev_timer     timer;
	struct ev_timer     auth_timer;       /* holds back a 535 */
	struct config      *cfg;              /* the config it started with (a reference) */
	const struct conf_listener *lconf;    /* in cfg */
	int64_t             connected_at;     /* monotonic ms */
	enum smtpd_auth_result auth_result;   /* answered when auth_timer fires */
	unsigned            tls_pending : 1;  /* STARTTLS: start once the 220 is out */
	unsigned            implicit : 1;     /* TLS from the first byte, greet after */
	struct ev_timer     delay_timer;     /* the tarpit (SMTPD_EV_DELAY) */
	struct server      *sv;
	struct smtpd        s;
	queue_id            draft;            /* 0: none */
	uint64_t            qticket;          /* a draft or usage asked of the queue role */
	struct queue_envelope *quota_env;     /* the usage asked for: whose, */
	uint64_t            quota_size;       /* and for how many bytes */
	struct session     *drain_next;       /* waiting for the queue link to drain */
	struct queue_envelope *commit_env;
	struct verify      *verify;          /* a recipient probe in flight */
	struct session        *prev, *next;     /* all connections */
	struct session        *commit_next;     /* waiting for the group commit */
	struct session        *dead_next;       /* to be freed after the batch */
	struct connlimit_node client_node;   /* counted in sv->clients */
	struct dnsbl_check *dnsbl;           /* the client's lookups, until the verdict */
	struct dks         *dkim;            /* the message's DKIM state (insiders), or NULL */
	int64_t             state_since;     /* monotonic ms: when s.state began */
	unsigned            in_commit : 1;
	unsigned            wait_drain : 1;   /* a MSG_DATA answered when the link drains */
	unsigned            dead : 1;
	unsigned            greeted : 1;
	unsigned            greet_due : 1;   /* greet-delay is over */
	unsigned            dnsbl_wait : 1;  /* dnsbl-stage connect: greet after the verdict */
	unsigned            closing : 1;
	unsigned            proxy_wait : 1;  /* a proxy listener's: no session before the
	                                        PROXY header (proxy_read()); s.client is
	                                        the peer until then */
	unsigned            started : 1;     /* the session began: its connect line is out */
	unsigned            dkim_wait : 1;   /* the key role is signing the message */
	unsigned            dkim_oom : 1;    /* no memory for the DKIM state: cannot sign */
	unsigned            dkim_done : 2;   /* enum dkim_done: what the accept line says */
	char                in[SESSION_IN_MAX];
};

struct listener {
	struct ev_io io;
	struct server *sv;
	const struct conf_listener *cl;
};

/* The queue role's usage answer for one client, kept for USAGE_CACHE_MS and
 * advanced by every message this role commits meanwhile, so that a MAIL
 * costs no round trip to the queue role when the same client asked within
 * the last quarter second.  Only this role adds mail to the queue
 * (a draining generation aside, for its last seconds); what the runner
 * removes meanwhile only makes the cached figures err on the safe side. */
#define USAGE_CACHE    16
#define USAGE_CACHE_MS 250
#define QUOTA_CACHE_PAD_MESSAGES 1000
#define QUOTA_CACHE_PAD_BYTES    (256ull << 20)
struct usage_cache {
	char     key[USAGE_KEY_MAX];
	size_t   klen;
	int64_t  at;               /* monotonic ms; 0: empty */
	struct queue_usage qu;
	struct queue_space sp;
};

struct server {
	struct config     *cfg;              /* what new sessions get (a reference) */
	const struct conf *conf;             /* &cfg->conf */
	struct ops         ops;              /* metrics, health, status */
	struct authfail   *af;
	struct ev_loop     loop;
	struct qc         *q;                /* the queue role */
	struct verifier   *vf;               /* recipient verification */
	struct control    *ctl;              /* the control socket */
	struct listener    ls[CONF_MAX_LISTENERS];
	size_t             nls;
	struct ev_io       sigio;
	struct ev_timer    stop_timer;
	struct ev_timer    kill_timer;       /* SHUTDOWN_FLUSH_MS after stop_timer */
	struct session       *conns;
	unsigned           nconns;
	struct connlimit   clients;          /* open connections per client */
	struct session       *commit_head, **commit_tail;  /* finished, for the next commit */
	struct session       *flight[COMMIT_BATCH];        /* the commit in flight */
	size_t             nflight;
	struct session    *drain_head;       /* sessions waiting for the queue link to drain */
	struct session       *dead;
	int                stopping;
	unsigned long long commits, committed; /* group commits, messages in them */
	struct session       *spare;            /* freed, for reuse (next links them) */
	unsigned           nspare;
	struct edge_counters counters;       /* edge decisions since start */
	struct usage_cache uc[USAGE_CACHE];  /* the queue role's answers, kept up to date */
	struct ev_io       plink;            /* the supervisor */
	int                draining;         /* a newer generation took over */
	int                kfd;              /* the key role's TLS link, -1 none */
	struct dkc        *dk;               /* the key role's DKIM link */
	struct dnsbl      *dnsbl;            /* NULL without `dnsbl` zones */
};

static void session_pump(struct session *c);
static void dkim_drop(struct session *c);

/* " proxy=ADDR" for a log line when a load balancer's PROXY header named
 * cl, else "": buf, of PROXY_KV_MAX bytes. */
#define PROXY_KV_MAX (IP_TEXT_MAX + 8)
static const char *proxy_kv(const struct smtpd_client *cl, char *buf)
{
	if (cl->proxy_text[0] == 0)
		return "";
	snprintf(buf, PROXY_KV_MAX, " proxy=%s", cl->proxy_text);
	return buf;
}

/* event=reject for a proxy listener's connection that ends before its
 * header is in: why (proxy_refusal()'s word, or timeout, eof, ...), and
 * how many bytes had come.  Nothing was written to it. */
static void proxy_log_refusal(const struct session *c, const char *why)
{
	size_t len = 0;

	(void)conn_in(&c->cn, &len);
	log_event("reject", "addr=%s sid=%s port=%u code=none reason=proxy-header error=%s bytes=%zu",
	          c->s.client.addr_text, c->s.client.sid, c->s.client.port, why, len);
}

/* event=disconnect: how it ended, what it did, its TLS and its user. */
static void session_log_disconnect(const struct session *c, const char *reason)
{
	char user[QUEUE_NAME_MAX * 4 + 8] = "", tls[160] = "", via[PROXY_KV_MAX];
	int64_t ms = c->sv->loop.now - c->connected_at;

	if (c->s.user != NULL) {
		memcpy(user, " user=", 6);
		log_quote(c->s.user->name, strlen(c->s.user->name), user + 6, sizeof user - 6);
	}
	if (c->cn.tls != NULL && !c->cn.handshaking)
		snprintf(tls, sizeof tls, " tls=%s cipher=%s", tls_version_name(c->cn.tls),
		         tls_cipher_name(c->cn.tls));
	log_event("disconnect", "addr=%s sid=%s reason=%s messages=%u errors=%u seconds=%lld.%03lld%s%s%s",
	          c->s.client.addr_text, c->s.client.sid,
	          reason, c->s.messages, c->s.errors, (long long)(ms / 1000),
	          (long long)(ms % 1000), tls, user, proxy_kv(&c->s.client, via));
}

static void session_kill(struct session *c, const char *reason)
{
	struct server *sv = c->sv;

	if (c->dead)
		return;
	c->dead = 1;
	if (c->draft && !c->in_commit) {
		/* (a message waiting for its commit keeps its draft: it is
		 * committed all the same, the client just never hears) */
		qc_draft_abort(sv->q, c->draft);
		c->draft = 0;
	}
	if (c->qticket != 0)
		qc_cancel(sv->q, c->qticket);   /* a draft begun for us is aborted */
	c->qticket = 0;
	if (c->wait_drain) {
		struct session **p;

		for (p = &sv->drain_head; *p != c; p = &(*p)->drain_next)
			;
		*p = c->drain_next;
		c->wait_drain = 0;
	}
	verify_cancel(c->verify);
	c->verify = NULL;
	if (c->dkim_wait)
		dkim_drop(c);   /* (its draft was aborted above) */
	ev_timer_stop(&sv->loop, &c->timer);
	ev_timer_stop(&sv->loop, &c->auth_timer);
	ev_timer_stop(&sv->loop, &c->delay_timer);
	dnsbl_check_cancel(c->dnsbl);
	c->dnsbl = NULL;
	connlimit_del(&c->client_node);
	/* One line per connection: its disconnect once it began, else why
	 * its header failed; one refused at its start said why already. */
	if (c->started)
		session_log_disconnect(c, reason);
	else if (c->proxy_wait)
		proxy_log_refusal(c, reason);
	conn_close(&c->cn);
	c->dead_next = sv->dead;
	sv->dead = c;
}

static void session_free(struct session *c)
{
	struct server *sv = c->sv;

	if (c->prev)
		c->prev->next = c->next;
	else
		sv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	sv->nconns--;
	smtpd_free(&c->s);
	dkim_drop(c);
	conn_close(&c->cn);
	config_unref(c->cfg);
	c->cfg = NULL;
	if (sv->nspare < SESSION_SPARE_MAX) {
		c->next = sv->spare;
		sv->spare = c;
		sv->nspare++;
	} else {
		free(c);
	}
}

/* A zeroed connection: a spare one if there is, else a new one. */
static struct session *session_alloc(struct server *sv)
{
	struct session *c = sv->spare;

	if (c == NULL)
		return calloc(1, sizeof *c);
	sv->spare = c->next;
	sv->nspare--;
	memset(c, 0, sizeof *c);
	return c;
}

/* Greet once greet-delay is over and, at dnsbl-stage connect, the DNSBL
 * verdict is in (smtpd_greet() then says 220 or 554). */
static void session_try_greet(struct session *c)
{
	if (c->greeted || !c->greet_due || c->dnsbl_wait)
		return;
	c->greeted = 1;
	smtpd_greet(&c->s);
}

static void greet(struct session *c)
{
	if (c->cfg->conf.greeting_delay_ms) {
		/* Listen now, so an early talker is heard before the greeting. */
		ev_timer_start(&c->sv->loop, &c->timer, c->cfg->conf.greeting_delay_ms);
	} else {
		c->greet_due = 1;
		session_try_greet(c);
	}
}

static void session_timer_cb(struct ev_loop *l, struct ev_timer *t)
{
	struct session *c = t->arg;

	if (c->proxy_wait) {
		session_kill(c, "timeout");   /* PROXY_HEADER_MS since the accept */
		return;
	}
	if (c->cn.handshaking) {
		log_event("tls-fail", "addr=%s sid=%s error=timeout",
			  c->s.client.addr_text, c->s.client.sid);
		session_kill(c, "tls-timeout");
		return;
	}
	if (!c->greeted) {
		c->greet_due = 1;
		session_try_greet(c);
	} else if (smtpd_session_secs(&c->s) &&
	           l->now - c->connected_at >= (int64_t)smtpd_session_secs(&c->s) * 1000) {
		smtpd_session_expired(&c->s);
	} else {
		smtpd_timeout(&c->s);
	}
	session_pump(c);
}

/* The DNSBL verdict (the check frees itself after this). */
static void session_dnsbl_cb(void *arg, const struct dnsbl_verdict *v)
{
	struct session *c = arg;

	c->dnsbl = NULL;
	c->dnsbl_wait = 0;
	smtpd_dnsbl_done(&c->s, v->refused ? v->names : NULL);
	session_try_greet(c);
	session_pump(c);
}

/* The tarpit's wait is over: the held reply goes out. */
static void session_delay_cb(struct ev_loop *l, struct ev_timer *t)
{
	struct session *c = t->arg;

	(void)l;
	smtpd_delay_done(&c->s);
	session_pump(c);
}

static void auth_timer_cb(struct ev_loop *l, struct ev_timer *t)
{
	struct session *c = t->arg;

	(void)l;
	smtpd_auth_done(&c->s, c->auth_result, NULL);
	session_pump(c);
}

/* Replies out: to the socket, or into TLS records and those to the socket,
 * until neither moves. */
static void session_flush(struct session *c)
{
	for (;;) {
		size_t len;
		const char *out = smtpd_output(&c->s, &len);
		ssize_t n = conn_write(&c->cn, out, len);
		int f;

		if (n < 0) {
			session_kill(c, "write-error");
			return;
		}
		if (n > 0)
			smtpd_output_ack(&c->s, (size_t)n);
		if ((f = conn_flush(&c->cn)) == CONN_ERROR) {
			session_kill(c, "write-error");
			return;
		}
		if (n == 0 && f != CONN_MOVED)
			return;
	}
}

/* The next hop answered about a recipient (timer phase). */
static void verified(void *arg, enum verify_verdict v)
{
	struct session *c = arg;

	c->verify = NULL;
	smtpd_rcpt_verified(&c->s, v == VERIFY_OK ? SMTPD_VERIFY_OK : v == VERIFY_REJECT
	                    ? SMTPD_VERIFY_REJECT : SMTPD_VERIFY_TEMP);
	session_pump(c);
}

/* Check the credentials, count a failure, and answer now or after the
 * growing delay. */
static void session_auth(struct session *c, const struct smtpd_event *ev)
{
	struct server *sv = c->sv;
	const struct conf *cf = &c->cfg->conf;
	const struct sasl_creds *cr = ev->creds;
	const struct user *u = NULL;
	const char *reason = ev->refuse;
	const char *mech = c->s.auth_login ? "LOGIN" : "PLAIN";
	int64_t now = sv->loop.now / 1000;
	char who[SASL_FIELD_MAX * 4 + 8];
	unsigned n, delay;

	log_quote(cr->authcid, cr->authcidlen, who, sizeof who);
	if (authfail_blocked(sv->af, &c->s.client.addr, now)) {
		log_event("auth-fail", "addr=%s sid=%s user=%s mech=%s reason=blocked",
			  c->s.client.addr_text, c->s.client.sid, who,
		          mech);
		smtpd_auth_done(&c->s, SMTPD_AUTH_BLOCKED, NULL);
		return;
	}
	if (reason == NULL) {
		if (c->cfg->tables.users != NULL)
			u = users_authenticate(c->cfg->tables.users, cr->authcid, cr->authcidlen, cr->passwd,
			                       cr->passwdlen);
		if (u == NULL)
			reason = "bad-credentials";
	}
	if (u != NULL) {
		authfail_clear(sv->af, &c->s.client.addr);
		log_event("auth", "addr=%s sid=%s user=%s mech=%s",
			  c->s.client.addr_text, c->s.client.sid, who, mech);
		smtpd_auth_done(&c->s, SMTPD_AUTH_OK, u);
		return;
	}
	n = authfail_record(sv->af, &c->s.client.addr, now, cf->auth_max_failures,
	                    cf->auth_block_seconds);
	log_event("auth-fail", "addr=%s sid=%s user=%s mech=%s reason=%s failures=%u",
		  c->s.client.addr_text, c->s.client.sid,
	          who, mech, reason, n);
	if (n >= cf->auth_max_failures) {
		log_event("auth-block", "addr=%s sid=%s seconds=%u",
			  c->s.client.addr_text, c->s.client.sid, cf->auth_block_seconds);
		smtpd_auth_done(&c->s, SMTPD_AUTH_BLOCKED, NULL);
		return;
	}
	delay = authfail_delay_ms(n, cf->auth_fail_delay_ms);
	if (delay == 0) {
		smtpd_auth_done(&c->s, SMTPD_AUTH_FAIL, NULL);
		return;
	}
	c->auth_result = SMTPD_AUTH_FAIL;
	ev_timer_start(&sv->loop, &c->auth_timer, delay);
}

/* env's client's usage and the queue's room, asked less than
 * USAGE_CACHE_MS ago: 1 (*qu, *sp), or 0. */
static int usage_cached(struct server *sv, const struct queue_envelope *env,
                        struct queue_usage *qu, struct queue_space *sp)
{
	char key[USAGE_KEY_MAX];
	size_t klen = usage_key(env, key);

	for (size_t i = 0; i < USAGE_CACHE; i++) {
		const struct usage_cache *u = &sv->uc[i];

		if (u->at != 0 && sv->loop.now - u->at < USAGE_CACHE_MS && u->klen == klen &&
		    memcmp(u->key, key, klen) == 0) {
			*qu = u->qu;
			*sp = u->sp;
			return 1;
		}
	}
	return 0;
}

/* The queue role's answer for env's client: kept, in its slot or the
 * oldest. */
static void usage_store(struct server *sv, const struct queue_envelope *env,
                        const struct queue_usage *qu, const struct queue_space *sp)
{
	char key[USAGE_KEY_MAX];
	size_t klen = usage_key(env, key), old = 0;

	for (size_t i = 0; i < USAGE_CACHE; i++) {
		if (sv->uc[i].klen == klen && memcmp(sv->uc[i].key, key, klen) == 0) {
			old = i;
			break;
		}
		if (sv->uc[i].at < sv->uc[old].at)
			old = i;
	}
	memcpy(sv->uc[old].key, key, klen);
	sv->uc[old].klen = klen;
	sv->uc[old].at = sv->loop.now ? sv->loop.now : 1;
	sv->uc[old].qu = *qu;
	sv->uc[old].sp = *sp;
}

/* A message of env committed: every cached answer counts it. */
static void usage_committed(struct server *sv, const struct queue_envelope *env)
{
	char key[USAGE_KEY_MAX];
	size_t klen = usage_key(env, key);
	uint64_t need = quota_need(env->size);

	for (size_t i = 0; i < USAGE_CACHE; i++) {
		struct usage_cache *u = &sv->uc[i];

		if (u->at == 0)
			continue;
		u->qu.messages++;
		u->qu.bytes += env->size;
		if (u->klen == klen && memcmp(u->key, key, klen) == 0) {
			u->qu.client_messages++;
			u->qu.client_bytes += env->size;
		}
		u->sp.fs_avail = u->sp.fs_avail > need ? u->sp.fs_avail - need : 0;
		u->sp.map_free = u->sp.map_free > need ? u->sp.map_free - need : 0;
	}
}

/* The quota verdict for one more message of size bytes from env's client
 * with the queue's counters and free space qu, sp, plus what waits to be
 * committed (answered "yes" already, not yet on disk).  From a cached
 * answer it decides only far from every limit (what others did to the
 * disk meanwhile is not in it): near one it returns -1, ask the queue. */
static int quota_verdict(struct server *sv, const struct queue_envelope *env, uint64_t size,
                         const struct queue_usage *qu, const struct queue_space *sp, int cached)
{
	struct quota_usage u;
	char key[USAGE_KEY_MAX], other[USAGE_KEY_MAX];
	size_t klen = usage_key(env, key);
	const struct session *p = NULL;

	u.messages = qu->messages;
	u.bytes = qu->bytes;
	u.client_bytes = qu->client_bytes;
	u.disk_free = sp->fs_avail > UINT64_MAX - sp->file_free ? UINT64_MAX
	                                                        : sp->fs_avail + sp->file_free;
	u.disk_total = sp->fs_total;
	u.map_free = sp->map_free;
	for (size_t i = 0; ; i++) {
		/* the commit in flight, then the messages waiting for the next */
		const struct queue_envelope *e;
		uint64_t need;

		if (i < sv->nflight) {
			e = sv->flight[i]->commit_env;
		} else {
			p = i == sv->nflight ? sv->commit_head : p->commit_next;
			if (p == NULL)
				break;
			e = p->commit_env;
		}
		need = quota_need(e->size);
		u.messages++;
		u.bytes += e->size;
		if (usage_key(e, other) == klen && memcmp(key, other, klen) == 0)
			u.client_bytes += e->size;
		u.disk_free = u.disk_free > need ? u.disk_free - need : 0;
		u.map_free = u.map_free > need ? u.map_free - need : 0;
	}
	if (cached) {
		struct quota_usage pad = u;

		pad.messages += QUOTA_CACHE_PAD_MESSAGES;
		pad.bytes += QUOTA_CACHE_PAD_BYTES;
		pad.client_bytes += QUOTA_CACHE_PAD_BYTES;
		pad.disk_free = pad.disk_free > QUOTA_CACHE_PAD_BYTES ? pad.disk_free - QUOTA_CACHE_PAD_BYTES : 0;
		pad.map_free = pad.map_free > QUOTA_CACHE_PAD_BYTES ? pad.map_free - QUOTA_CACHE_PAD_BYTES : 0;
		return quota_check(sv->conf, &pad, size) == QUOTA_OK ? QUOTA_OK : -1;
	}
	return quota_check(sv->conf, &u, size);
}

/* The queue role's usage answer for the quota asked. */
static void usage_cb(void *arg, const struct qw_rep *rep)
{
	struct session *c = arg;
	struct server *sv = c->sv;
	int rc = rep != NULL ? rep->rc : QUEUE_EIO;

	c->qticket = 0;
	if (rc != QUEUE_OK) {
		/* The commit still stops what does not fit. */
		log_warn("msg=\"quota not checked: %s\"", queue_strerror(rc));
		smtpd_quota_done(&c->s, QUOTA_OK);
	} else {
		usage_store(sv, c->quota_env, &rep->usage, &rep->space);
		smtpd_quota_done(&c->s, quota_verdict(sv, c->quota_env, c->quota_size, &rep->usage,
		                                      &rep->space, 0));
	}
	session_pump(c);
}

/* SMTPD_EV_QUOTA: from the cache when it decides, else ask the queue role
 * (answered in usage_cb), unless it is not answering now. */
static void session_quota(struct session *c, struct queue_envelope *env, uint64_t size)
{
	struct server *sv = c->sv;
	struct queue_usage qu;
	struct queue_space sp;
	int v;

	if (usage_cached(sv, env, &qu, &sp) && (v = quota_verdict(sv, env, size, &qu, &sp, 1)) >= 0) {
		smtpd_quota_done(&c->s, v);
		return;
	}
	if (qc_stalled(sv->q) || qc_broken(sv->q)) {
		log_warn("msg=\"quota not checked: %s\"", queue_strerror(QUEUE_EIO));
		smtpd_quota_done(&c->s, QUOTA_OK);
		return;
	}
	c->quota_env = env;
	c->quota_size = size;
	c->qticket = qc_usage(sv->q, env, usage_cb, c);
}

/* Finished, for the next group commit (after_batch()). */
static void commit_enqueue(struct session *c)
{
	struct server *sv = c->sv;

	c->in_commit = 1;
	c->commit_next = NULL;
	*sv->commit_tail = c;
	sv->commit_tail = &c->commit_next;
}

/* ---- DKIM: signed at acceptance, before the 250 (docs/dkim.md) ---------- */

/* What the accept line says of a message's signature. */
enum dkim_done { DKIM_NONE = 0, DKIM_SIGNED, DKIM_PRESENT, DKIM_UNSIGNED };

/* The failure rule: a message the admin asked us to sign is never queued
 * unsigned.  The key role gone, slow or lying: 451, the client tries
 * again.  A header that cannot be signed however often it is tried: 554. */
#define DKIM_REPLY_TEMP "451 4.3.0 Cannot sign the message (DKIM), try again later"
#define DKIM_REPLY_PERM "554 5.6.0 The message header cannot be signed (DKIM)"

/* May this session's client relay?  The relay rules' own decision: only
 * an insider's mail is signed, never an outsider's for our domains. */
static int dkim_insider(const struct session *c)
{
	struct rules_client rc = { .addr = c->s.client.addr,
	                           .authenticated = c->s.authenticated,
	                           .internal = c->s.client.listener.internal };

	return rules_relay_allowed(&c->cfg->conf, &rc);
}

static void dkim_drop(struct session *c)
{
	dks_free(c->dkim);   /* (cancels a signature on its way) */
	c->dkim = NULL;
	c->dkim_wait = 0;
}

/* SMTPD_EV_MSG_BEGIN: an insider's message may have to be signed: keep
 * its header block and hash its body as it streams. */
static void dkim_begin(struct session *c)
{
	dkim_drop(c);
	c->dkim_oom = 0;
	c->dkim_done = DKIM_NONE;
	if (c->cfg->conf.ndkim == 0 || !dkim_insider(c))
		return;
	if ((c->dkim = dks_new()) == NULL) {
		log_warn("msg=\"out of memory: cannot sign\" addr=%s", c->s.client.addr_text);
		c->dkim_oom = 1;
	}
}

/* SMTPD_EV_MSG_DATA: the same bytes as go to the queue. */
static void dkim_data(struct session *c, const void *p, size_t len)
{
	if (c->dkim != NULL)
		dks_feed(c->dkim, p, len);
}

/* Refuse the message (its draft dropped): 451 or, permanent, 554. */
static void dkim_refuse(struct session *c, int permanent, const char *why)
{
	char idtext[QUEUE_ID_TEXT], text[256];
	const struct dks *d = c->dkim;

	queue_id_format(c->s.id, idtext);
	log_text(why, strlen(why), text, sizeof text);
	log_event("dkim-fail", "kind=message id=%s addr=%s sid=%s d=%s s=%s why=\"%s\" code=%s",
		  idtext,
	          c->s.client.addr_text, c->s.client.sid,
	          d != NULL && d->domain[0] ? d->domain : "none",
	          d != NULL && d->selector[0] ? d->selector : "none", text, permanent ? "554" : "451");
	if (c->draft != 0) {
		qc_draft_abort(c->sv->q, c->draft);
		c->draft = 0;
	}
	dkim_drop(c);
	smtpd_msg_refused(&c->s, permanent ? DKIM_REPLY_PERM : DKIM_REPLY_TEMP, "dkim-fail");
}

/* The key role's signature came back (checked, the header built), or
 * none did: prepend the header and join the commit, or refuse. */
static void dkim_signed_cb(void *arg, struct dks *d, int ok)
{
	struct session *c = arg;

	c->dkim_wait = 0;
	if (!ok)
		dkim_refuse(c, 0, d->why);
	else if (qc_draft_prepend(c->sv->q, c->draft, d->out, d->outlen) != 0)
		dkim_refuse(c, 0, "cannot send the header to the queue role");
	else {
		c->dkim_done = DKIM_SIGNED;
		commit_enqueue(c);
		return;
	}
	session_pump(c);
}

/*
 * SMTPD_EV_MSG_END: 1 when the message goes to the commit now (nothing
 * to sign), 0 when its signature is on its way (dkim_signed_cb() goes on)
 * or it was refused.  A message without a single From: address is left
 * unsigned (docs/dkim.md); so is one whose From: domain has no key, or
 * that carries our signature for it already (a loop-back).
 */
static int dkim_end(struct session *c)
{
	const struct conf *cf = &c->cfg->conf;
	char domain[ADDR_DOMAIN_MAX + 1];
	const struct conf_dkim *line;
	struct dks *d = c->dkim;

	if (c->dkim_oom) {
		dkim_refuse(c, 0, "out of memory");
		return 0;
	}
	if (d == NULL || c->draft == 0)   /* (no draft: the commit fails as it would) */
		return 1;
	if (dks_end(d, domain) != 0) {
		c->dkim_done = DKIM_UNSIGNED;
		return 1;
	}
	if ((line = dkim_key_find(cf, domain, strlen(domain))) == NULL) {
		dkim_drop(c);
		return 1;
	}
	if (dks_use_line(d, line, c->cfg->tables.dkim[line - cf->dkim]) != 0) {
		dkim_refuse(c, 0, d->why);
		return 0;
	}
	if (dks_present(d)) {
		c->dkim_done = DKIM_PRESENT;
		return 1;
	}
	if (dks_prepare(d, (uint64_t)time(NULL)) != 0) {
		dkim_refuse(c, 1, d->why);
		return 0;
	}
	c->dkim_wait = 1;
	dks_ask(d, c->sv->dk, dkim_signed_cb, c);
	return 0;
}

/* The accept line's dkim= part (empty when nothing was to sign). */
static void dkim_log_part(const struct session *c, char *buf, size_t cap)
{
	const struct dks *d = c->dkim;
	char why[160];

	buf[0] = 0;
	if (d == NULL)
		return;
	if (c->dkim_done == DKIM_SIGNED)
		snprintf(buf, cap, " dkim=signed d=%s s=%s", d->domain, d->selector);
	else if (c->dkim_done == DKIM_PRESENT)
		snprintf(buf, cap, " dkim=present d=%s", d->domain);
	else if (c->dkim_done == DKIM_UNSIGNED && d->why != NULL)
		snprintf(buf, cap, " dkim=unsigned why=\"%s\"", log_text(d->why, strlen(d->why), why,
		                                                          sizeof why));
}

/* The queue role began a draft for us (or could not). */
static void begun_cb(void *arg, const struct qw_rep *rep)
{
	struct session *c = arg;
	int err = rep != NULL ? rep->rc : QUEUE_EIO;

	c->qticket = 0;
	if (err == QUEUE_OK)
		c->draft = rep->id;
	else
		log_warn("msg=\"cannot start a draft\" addr=%s error=\"%s\"", c->s.client.addr_text,
		         queue_strerror(err));
	smtpd_msg_begun(&c->s, err, c->draft, (int64_t)time(NULL));
	session_pump(c);
}

/* SMTPD_EV_MSG_BEGIN: a draft begun ahead, or ask for one; none at all
 * while the queue role does not answer (451 now, not a wait). */
static void session_begin(struct session *c)
{
	struct server *sv = c->sv;
	queue_id id;

	dkim_begin(c);
	if (qc_stalled(sv->q)) {
		log_warn("msg=\"cannot start a draft\" addr=%s error=\"the queue role does not answer\"",
		         c->s.client.addr_text);
		smtpd_msg_begun(&c->s, QUEUE_EIO, 0, (int64_t)time(NULL));
	} else if (qc_draft_take(sv->q, &id)) {
		c->draft = id;
		smtpd_msg_begun(&c->s, QUEUE_OK, id, (int64_t)time(NULL));
	} else {
		c->qticket = qc_draft_begin(sv->q, begun_cb, c);
	}
}

/* SMTPD_EV_MSG_DATA: the bytes go to the queue link's buffer at once; the
 * answer waits while that holds more than QC_OUT_HIGH (drain_cb), so a
 * slow disk slows the senders, not the memory. */
static void session_data(struct session *c, const struct smtpd_event *ev)
{
	struct server *sv = c->sv;

	dkim_data(c, ev->data, ev->len);
	if (c->draft == 0 || qc_draft_write(sv->q, c->draft, ev->data, ev->len) != 0) {
		smtpd_data_done(&c->s, QUEUE_EIO);
	} else if (qc_busy(sv->q)) {
		c->wait_drain = 1;
		c->drain_next = sv->drain_head;
		sv->drain_head = c;
	} else {
		smtpd_data_done(&c->s, QUEUE_OK);
	}
}

/* The queue link took its backlog: the sessions that waited go on. */
static void drain_cb(void *arg)
{
	struct server *sv = arg;

	while (sv->drain_head != NULL && !qc_busy(sv->q)) {
		struct session *c = sv->drain_head;

		sv->drain_head = c->drain_next;
		c->wait_drain = 0;
		smtpd_data_done(&c->s, QUEUE_OK);
		session_pump(c);
	}
}

static void handle_events(struct session *c, int *progress)
{
	struct server *sv = c->sv;
	struct smtpd_event ev;

	while (!c->dead && smtpd_event(&c->s, &ev)) {
		*progress = 1;
		switch (ev.type) {
		case SMTPD_EV_QUOTA:
			session_quota(c, ev.env, ev.size);
			break;
		case SMTPD_EV_MSG_BEGIN:
			session_begin(c);
			break;
		case SMTPD_EV_MSG_DATA:
			session_data(c, &ev);
			break;
		case SMTPD_EV_MSG_END:
			c->commit_env = ev.env;
			if (dkim_end(c))
				commit_enqueue(c);
			break;
		case SMTPD_EV_MSG_ABORT:
			if (c->draft)
				qc_draft_abort(sv->q, c->draft);
			c->draft = 0;
			dkim_drop(c);
			break;
		case SMTPD_EV_RCPT_VERIFY:
			c->verify = verify_ask(sv->vf, ev.data, verified, c);
			if (c->verify == NULL)
				smtpd_rcpt_verified(&c->s, SMTPD_VERIFY_TEMP);
			break;
		case SMTPD_EV_DELAY:
			ev_timer_start(&sv->loop, &c->delay_timer, ev.ms);
			break;
		case SMTPD_EV_DNSBL:
			/* still looking: session_dnsbl_cb answers; else nothing was
			 * looked up (no memory): not listed */
			if (c->dnsbl == NULL)
				smtpd_dnsbl_done(&c->s, NULL);
			break;
		case SMTPD_EV_CLOSE:
			c->closing = 1;
			break;
		case SMTPD_EV_STARTTLS:
			c->tls_pending = 1;  /* after the 220 is written */
			break;
		case SMTPD_EV_AUTH:
			session_auth(c, &ev);
			break;
		case SMTPD_EV_NONE:
		default:
			break;
		}
	}
}

/* The 220 is out: throw away what the client sent after STARTTLS and
 * start the handshake. */
static void start_tls(struct session *c)
{
	struct tls *t;
	size_t dropped;

	c->tls_pending = 0;
	t = tls_server_new(c->cfg->tables.creds, c->lconf->tls_legacy ? TLS_LEGACY : 0);
	if (t == NULL) {
		log_warn("msg=\"cannot start TLS (memory or entropy)\" addr=%s", c->s.client.addr_text);
		session_kill(c, "tls-error");
		return;
	}
	if ((dropped = conn_tls_start(&c->cn, t, 0)) > 0)
		log_event("tls-discard", "addr=%s sid=%s bytes=%zu reason=pipelined-after-starttls",
		          c->s.client.addr_text, c->s.client.sid, dropped);
}

/* Handshake progress or TLS failure; returns 1 when the handshake just
 * finished (the session has new work). */
static int tls_check(struct session *c)
{
	switch (conn_tls_check(&c->cn)) {
	case CONN_TLS_FAILED:
		log_event("tls-fail", "addr=%s sid=%s error=%s stage=%s",
			  c->s.client.addr_text, c->s.client.sid,
		          tls_error_name(tls_error(c->cn.tls)), c->cn.handshaking ? "handshake" : "session");
		session_kill(c, "tls-error");
		return 0;
	case CONN_TLS_CLOSED:
		session_kill(c, "tls-closed");
		return 0;
	case CONN_TLS_READY:
		break;
	case CONN_TLS_NONE:
	case CONN_TLS_HANDSHAKE:
	case CONN_TLS_OPEN:
	default:
		return 0;
	}
	log_event("tls", "addr=%s sid=%s version=%s cipher=%s key=%s",
		  c->s.client.addr_text, c->s.client.sid,
	          tls_version_name(c->cn.tls), tls_cipher_name(c->cn.tls), tls_key_name(c->cn.tls));
	if (c->implicit)
		greet(c);
	else
		smtpd_tls_started(&c->s, SMTPD_F_TLS);
	return 1;
}

/* Feed the session what is buffered and answer its events until neither
 * moves; returns 1 if input was consumed. */
static int session_feed(struct session *c)
{
	int progress = 1, consumed = 0;

	while (progress && !c->dead) {
		size_t len;
		const char *in;

		progress = conn_pull(&c->cn);
		if ((in = conn_in(&c->cn, &len)) != NULL && len > 0) {
			size_t n = smtpd_feed(&c->s, in, len);

			if (n > 0) {
				conn_consume(&c->cn, n);
				progress = consumed = 1;
			}
		}
		handle_events(c, &progress);
	}
	return consumed;
}

/* The timer's milliseconds ms (0: none), or fewer when a limit of total
 * seconds (0: none) counted from since ends sooner. */
static int64_t sooner(int64_t ms, int64_t since, unsigned total, int64_t now)
{
	int64_t left = since + (int64_t)total * 1000 - now;

	if (total == 0)
		return ms;
	if (left < 1)
		left = 1;
	return ms == 0 || left < ms ? left : ms;
}

/* The idle timer restarts when the state changed, or in DATA when data
 * came, or else when a command was answered: a partial line, or an
 * over-long one being thrown away, never keeps a session alive.  In DATA
 * it never runs past the deadline counted from DATA's start, nor ever past
 * max-session-time counted from the connection. */
static void session_rearm(struct session *c, unsigned before, int consumed, int replied)
{
	struct server *sv = c->sv;
	int64_t ms;

	if (before != c->s.state)
		c->state_since = sv->loop.now;
	if (!c->greeted || !(before != c->s.state || c->timer.slot == 0 ||
	                     (c->s.state == SMTPD_S_DATA ? consumed : replied)))
		return;
	ms = (int64_t)smtpd_timeout_secs(&c->s) * 1000;
	ms = sooner(ms, c->state_since, smtpd_deadline_secs(&c->s), sv->loop.now);
	ms = sooner(ms, c->connected_at, smtpd_session_secs(&c->s), sv->loop.now);
	if (ms)
		ev_timer_start(&sv->loop, &c->timer, ms);
	else
		ev_timer_stop(&sv->loop, &c->timer);
}

/* Feed input, answer events, write output, then ask for the right events. */
static void session_pump(struct session *c)
{
	unsigned before = c->s.state;
	size_t outlen, out_before;
	int consumed = 0, replied = 0, round;

	/* A round more when TLS starts or its handshake ends: the session
	 * then has new work (a reset, a greeting, buffered plaintext). */
	for (round = 0; round < 4 && !c->dead; round++) {
		smtpd_output(&c->s, &out_before);
		consumed |= session_feed(c);
		if (c->dead)
			return;
		smtpd_output(&c->s, &outlen);
		replied |= outlen > out_before;
		session_flush(c);
		if (c->dead)
			return;
		smtpd_output(&c->s, &outlen);
		if (c->tls_pending && c->cn.tls == NULL && outlen == 0) {
			start_tls(c); /* the 220 is out, in plaintext */
			continue;
		}
		if (c->cn.tls == NULL || !tls_check(c))
			break;
	}
	if (c->dead)
		return;
	smtpd_output(&c->s, &outlen);
	if (c->closing && outlen == 0) {
		if (c->cn.tls != NULL && !c->cn.closing) {
			conn_tls_close(&c->cn);   /* close_notify after the last reply */
			session_flush(c);
			if (c->dead)
				return;
		}
		if (!conn_out_pending(&c->cn)) {
			session_kill(c, c->s.close_reason ? c->s.close_reason : "closed");
			return;
		}
	}
	if (conn_watch(&c->cn, outlen > 0, !c->closing) < 0) {
		session_kill(c, "epoll-error");
		return;
	}
	session_rearm(c, before, consumed, replied);
}

static void proxy_read(struct session *c, unsigned events);

static void session_io_cb(struct ev_loop *l, struct ev_io *io, unsigned events)
{
	struct session *c = io->arg;

	(void)l;
	if (c->proxy_wait) {
		proxy_read(c, events);
		return;
	}
	if (events & EV_READ) {
		int r = conn_fill(&c->cn);

		if (r == CONN_EOF) {
			session_kill(c, c->cn.handshaking ? "tls-eof"
			                : c->s.state == SMTPD_S_DATA ? "eof-in-data" : "eof");
			return;
		}
		if (r == CONN_ERROR) {
			session_kill(c, "read-error");
			return;
		}
	}
	session_pump(c);
}

/* A session's id: 64 random bits (a counter and the time if the kernel
 * has none to give), so that the lines of one session can be found in
 * the log of many servers' and restarts'. */
static void session_id(char out[SMTPD_SID_LEN + 1])
{
	static uint64_t count;
	uint64_t v;

	if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v)
		v = ((uint64_t)time(NULL) << 32) ^ ((uint64_t)getpid() << 20) ^ ++count;
	snprintf(out, SMTPD_SID_LEN + 1, "%016llx", (unsigned long long)v);
}

/* The client's address, and ours: the address it connected to; and the
 * session's id. */
static void sockaddr_client(int fd, const struct sockaddr_storage *ss, struct smtpd_client *cl)
{
	struct sockaddr_storage local;
	socklen_t llen = sizeof local;

	memset(cl, 0, sizeof *cl);
	session_id(cl->sid);
	cl->port = (uint16_t)sockaddr_to_ip((const struct sockaddr *)ss, &cl->addr);
	ip_format(&cl->addr, cl->addr_text, sizeof cl->addr_text);
	if (getsockname(fd, (struct sockaddr *)&local, &llen) == 0)
		(void)sockaddr_to_ip((struct sockaddr *)&local, &cl->local);
}

/* Refuse client cl on fd before its session: "CODE HOSTNAME TEXT" (code
 * "421 4.7.0" and the like), unless quiet, and event=reject.  The caller
 * closes fd. */
static void refuse(struct server *sv, int fd, const struct smtpd_client *cl, const char *code,
                   const char *text, const char *reason, int quiet)
{
	char msg[ADDR_DOMAIN_MAX + 100], via[PROXY_KV_MAX];
	int n = snprintf(msg, sizeof msg, "%s %s %s\r\n", code, sv->conf->hostname, text);

	if (!quiet && n > 0 && (size_t)n < sizeof msg)
		(void)!send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	log_event("reject", "addr=%s sid=%s code=%.3s reason=%s%s",
		  cl->addr_text, cl->sid, code, reason,
	          proxy_kv(cl, via));
}

/* The refusals that depend on who the client is, made once that is known
 * (at the accept, or after a proxy listener's header): 421 while stopping
 * (a header that came after SIGTERM), 554 to a deny-network marked
 * never-connect, 421 to an address blocked for AUTH failures or with
 * max-connections-per-client open.  Nothing is written for the first two
 * on an implicit-TLS listener, whose client expects a handshake.  1 when
 * refused (the caller closes). */
static int refuse_client(struct server *sv, int fd, const struct smtpd_client *cl)
{
	int quiet = cl->listener.tls == CONF_TLS_IMPLICIT;

	if (sv->stopping)
		refuse(sv, fd, cl, "421 4.7.0", "Too many connections, try again later", "stopping", 0);
	else if (rules_denied(sv->conf, &cl->addr, 1))
		refuse(sv, fd, cl, "554 5.7.1", "Access denied", "deny-network", quiet);
	else if (authfail_blocked(sv->af, &cl->addr, sv->loop.now / 1000))
		refuse(sv, fd, cl, "421 4.7.0", "Too many authentication failures, try again later",
		       "auth-blocked", quiet);
	else if (connlimit_count(&sv->clients, &cl->addr) >= sv->conf->max_connections_per_client)
		refuse(sv, fd, cl, "421 4.7.0", "Too many connections from your address, try again later",
		       "max-connections-per-client", 0);
	else
		return 0;
	return 1;
}

/* The session of client cl begins on c (c->s is made anew from cl): the
 * refusals that depend on the client, its DNSBL lookups, then the
 * greeting, or on an implicit-TLS listener the handshake first (RFC 8314).
 * kind is the PROXY header's (proxy_kind_name()), NULL without one. */
static void session_start(struct session *c, const struct smtpd_client *cl, const char *kind)
{
	struct server *sv = c->sv;
	struct ev_loop *l = &sv->loop;

	if (refuse_client(sv, c->cn.io.fd, cl)) {
		session_kill(c, "refused");   /* (not started: no other line) */
		return;
	}
	smtpd_init(&c->s, &c->cfg->conf, cl, c->implicit ? SMTPD_F_TLS : 0);
	smtpd_set_tables(&c->s, c->cfg->tables.users, &c->cfg->tables.rcpts);
	c->s.counters = &sv->counters;
	if (sv->dnsbl != NULL &&
	    !rules_relay_allowed(sv->conf, &(struct rules_client){ .addr = cl->addr,
	                                                           .internal = c->lconf->internal })) {
		c->dnsbl = dnsbl_check(sv->dnsbl, &cl->addr, cl->addr_text, session_dnsbl_cb, c);
		c->dnsbl_wait = c->dnsbl != NULL && sv->conf->dnsbl_stage == CONF_DNSBL_CONNECT;
	}
	connlimit_add(&sv->clients, &c->client_node, &cl->addr);
	c->started = 1;
	if (kind != NULL)
		log_event("connect", "addr=%s sid=%s port=%u proxy=%s proxy-kind=%s",
			  cl->addr_text, cl->sid, cl->port,
		          cl->proxy_text, kind);
	else
		log_event("connect", "addr=%s sid=%s port=%u", cl->addr_text, cl->sid, cl->port);
	if (c->implicit) {
		/* RFC 8314: the handshake first, the greeting inside TLS.  What
		 * came behind a PROXY header is the handshake's beginning. */
		struct tls *t = tls_server_new(c->cfg->tables.creds,
		                               c->lconf->tls_legacy ? TLS_LEGACY : 0);

		if (t == NULL) {
			log_warn("msg=\"cannot start TLS (memory or entropy)\" addr=%s", cl->addr_text);
			session_kill(c, "tls-error");
			return;
		}
		conn_tls_start(&c->cn, t, 1);
		ev_timer_start(l, &c->timer, (int64_t)c->cfg->conf.timeout_command * 1000);
	} else {
		greet(c);
	}
	session_pump(c);
}

/* The header h, its first n bytes of the input, is in: the client it
 * names is the session's address from now on, for everything, and the
 * session starts with what followed the header still buffered. */
static void proxy_start(struct session *c, const struct proxy_hdr *h, size_t n)
{
	struct smtpd_client cl = c->s.client;   /* the peer: the load balancer */

	conn_consume(&c->cn, n);
	ev_timer_stop(&c->sv->loop, &c->timer);
	c->proxy_wait = 0;
	cl.proxy = cl.addr;
	memcpy(cl.proxy_text, cl.addr_text, sizeof cl.proxy_text);
	proxy_client(h, &cl.proxy, &cl.addr);
	if (h->kind == PROXY_FORWARDED) {
		/* Its port, and the address it reached (the load balancer's,
		 * which a HELO must not claim either). */
		cl.port = h->src_port;
		cl.local = h->dst;
		ip_unmap(&cl.local);
	}
	ip_format(&cl.addr, cl.addr_text, sizeof cl.addr_text);
	session_start(c, &cl, proxy_kind_name(h->kind));
}

/* A proxy listener's connection before its header: read what came, and
 * start the session once proxy_parse() accepts it.  Nothing is read as
 * SMTP before: what follows the header in the same read stays buffered,
 * for the session or for the TLS handshake.  Bounded in size (the parser
 * refuses past PROXY_HDR_MAX, well inside the buffer) and in time
 * (PROXY_HEADER_MS, session_timer_cb); every failure closes without a
 * byte written, and session_kill() logs it. */
static void proxy_read(struct session *c, unsigned events)
{
	struct proxy_hdr h;
	const unsigned char *in;
	size_t len = 0;
	int r = CONN_AGAIN, n;

	if (events & EV_READ)
		r = conn_fill(&c->cn);
	in = (const unsigned char *)conn_in(&c->cn, &len);
	n = proxy_parse(in, len, &h);
	if (n == -1)
		session_kill(c, proxy_refusal(in, len));
	else if (n > 0)
		proxy_start(c, &h, (size_t)n);
	else if (r == CONN_EOF)
		session_kill(c, "eof");
	else if (r == CONN_ERROR)
		session_kill(c, "read-error");
	else if (conn_watch(&c->cn, 0, 1) < 0)
		session_kill(c, "epoll-error");
}

/* A new connection on fd, counted and linked; NULL when out of memory. */
static struct session *session_new(struct server *sv, const struct listener *li, int fd)
{
	struct session *c = session_alloc(sv);

	if (c == NULL)
		return NULL;
	c->sv = sv;
	conn_init(&c->cn, &sv->loop, fd, session_io_cb, c, c->in, sizeof c->in);
	c->timer.cb = session_timer_cb;
	c->timer.arg = c;
	c->auth_timer.cb = auth_timer_cb;
	c->auth_timer.arg = c;
	c->delay_timer.cb = session_delay_cb;
	c->delay_timer.arg = c;
	c->cfg = config_ref(sv->cfg);
	c->lconf = li->cl;
	c->implicit = li->cl->tls == CONF_TLS_IMPLICIT;
	c->state_since = sv->loop.now;
	c->connected_at = sv->loop.now;
	c->next = sv->conns;
	if (sv->conns)
		sv->conns->prev = c;
	sv->conns = c;
	sv->nconns++;
	return c;
}

/* The limits that count connections, not clients, come first; then on a
 * proxy listener only a proxy-from peer gets a connection, which waits
 * for its header (proxy_read()), and the rest waits for the client the
 * header names; elsewhere the session starts now. */
static void listener_cb(struct ev_loop *l, struct ev_io *io, unsigned events)
{
	struct listener *li = io->arg;
	struct server *sv = li->sv;
	int i;

	(void)events;
	/* Accept a bounded number per wake-up so one listener cannot starve
	 * the sessions already open. */
	for (i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t slen = sizeof ss;
		struct smtpd_client cl;
		struct session *c;
		int fd = accept4(io->fd, (struct sockaddr *)&ss, &slen, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("msg=\"accept failed\" error=\"%s\"", strerror(errno));
			return;
		}
		sockaddr_client(fd, &ss, &cl);
		cl.listener = *li->cl;
		if (li->cl->proxy && !proxy_trusted(sv->conf, &cl.addr)) {
			/* Not one of our load balancers: what it would say of its
			 * client is a lie, and it gets not a byte. */
			log_event("reject", "addr=%s sid=%s port=%u code=none reason=proxy-untrusted",
			          cl.addr_text, cl.sid, cl.port);
			close(fd);
			continue;
		}
		if (sv->stopping || (sv->conf->max_connections && sv->nconns >= sv->conf->max_connections)) {
			refuse(sv, fd, &cl, "421 4.7.0", "Too many connections, try again later",
			       sv->stopping ? "stopping" : "max-connections", 0);
			close(fd);
			continue;
		}
		if ((c = session_new(sv, li, fd)) == NULL) {
			close(fd);
			log_warn("msg=\"out of memory\" addr=%s", cl.addr_text);
			continue;
		}
		if (li->cl->proxy) {
			c->s.client = cl;   /* the peer, until its header names the client */
			c->proxy_wait = 1;
			ev_timer_start(l, &c->timer, PROXY_HEADER_MS);
			proxy_read(c, EV_READ);   /* a load balancer sends it at once */
		} else {
			session_start(c, &cl, NULL);
		}
	}
}

/* "to=<a>,<b>,..." for the accept line, cut with "..." when long. */
static void rcpt_list(const struct queue_envelope *env, char *buf, size_t cap)
{
	size_t o = 0;

	buf[0] = 0;
	for (size_t i = 0; i < env->nrcpts; i++) {
		char q[QUEUE_ADDR_MAX * 4 + 8];
		size_t n;

		log_quote(env->rcpts[i].addr, strlen(env->rcpts[i].addr), q, sizeof q);
		n = strlen(q);
		if (o + n + 8 > cap) {
			memcpy(buf + o, "...", 4);
			return;
		}
		o += (size_t)snprintf(buf + o, cap - o, "%s<%s>", i ? "," : "", q);
	}
}

static void log_accept(const struct session *c, const struct queue_envelope *env)
{
	char idtext[QUEUE_ID_TEXT], from[QUEUE_ADDR_MAX * 4 + 8], to[1024];
	char user[QUEUE_NAME_MAX * 4 + 8] = "", dkim[400];

	queue_id_format(env->id, idtext);
	dkim_log_part(c, dkim, sizeof dkim);
	log_quote(env->sender, strlen(env->sender), from, sizeof from);
	rcpt_list(env, to, sizeof to);
	if (env->auth_user[0]) {
		memcpy(user, " user=", 6);
		log_quote(env->auth_user, strlen(env->auth_user), user + 6, sizeof user - 6);
	}
	log_event("accept", "id=%s addr=%s sid=%s from=<%s> size=%llu nrcpt=%zu to=%s%s%s", idtext,
	          c->s.client.addr_text, c->s.client.sid,
	          from, (unsigned long long)env->size, env->nrcpts, to, user,
	          dkim);
}

/* The queue role's answer to the commit in flight (rep NULL: none came):
 * each message's 250 or 4xx at once, then the sessions go on. */
static void commit_cb(void *arg, const struct qw_rep *rep)
{
	struct server *sv = arg;
	size_t i, n = sv->nflight;

	sv->nflight = 0;
	if (rep != NULL && rep->n != n) {
		log_warn("msg=\"a commit answer for %u messages, %zu sent\"", rep->n, n);
		rep = NULL;
	}
	for (i = 0; i < n; i++) {
		struct session *c = sv->flight[i];
		struct queue_envelope *env = c->commit_env;
		char idtext[QUEUE_ID_TEXT];
		int result = QUEUE_EIO;

		if (rep != NULL) {
			uint64_t id, size;
			int64_t received;

			qw_commit_result(rep, i, &result, &id, &received, &size);
			if (result == QUEUE_OK) {
				env->id = id;
				env->received = received;
				env->size = size;
			}
		}
		c->in_commit = 0;
		ops_commit(&sv->ops, result);
		if (result == QUEUE_OK) {
			usage_committed(sv, env);
			log_accept(c, env);
		} else {
			queue_id_format(env->id, idtext);
			log_warn("msg=\"commit failed\" id=%s error=\"%s\"", idtext, queue_strerror(result));
		}
		dkim_drop(c);
		smtpd_msg_committed(&c->s, result);
		if (!c->dead)
			session_pump(c);
	}
}

/* Send every finished message to the queue role as one commit, unless one
 * is in flight already (they go with the next). */
static void commit_start(struct server *sv)
{
	struct queue_envelope *envs[COMMIT_BATCH];
	size_t n = 0;

	if (sv->nflight > 0 || !sv->commit_head)
		return;
	while (sv->commit_head && n < COMMIT_BATCH) {
		struct session *c = sv->commit_head;

		sv->commit_head = c->commit_next;
		sv->flight[n] = c;
		envs[n] = c->commit_env;   /* its id is the draft's */
		c->draft = 0;              /* the commit consumes it */
		n++;
	}
	if (!sv->commit_head)
		sv->commit_tail = &sv->commit_head;
	sv->nflight = n;
	/* The queue role kicks the runner itself. */
	qc_commit(sv->q, envs, n, commit_cb, sv);
	sv->commits++;
	sv->committed += n;
	log_debug("msg=\"group commit\" messages=%zu", n);
}

/* The after-batch hook.  Group commit, pipelined: the messages finished
 * in this batch go to the queue role in one commit while the loop goes on
 * serving everyone else; their sessions get their replies as soon as its
 * answer is read (commit_cb), and what finished meanwhile goes in the
 * next commit.  Then free the connections that died
 * in this batch (not one whose message is in a commit: when it is done). */
static void after_batch(struct ev_loop *l, void *arg)
{
	struct server *sv = arg;
	struct session *keep = NULL;

	commit_start(sv);
	while (sv->dead) {
		struct session *c = sv->dead;

		sv->dead = c->dead_next;
		if (c->in_commit) {
			c->dead_next = keep;
			keep = c;
		} else {
			session_free(c);
		}
	}
	sv->dead = keep;
	ops_tick(&sv->ops);
	if ((sv->stopping || sv->draining) && sv->nconns == 0)
		ev_stop(l);
}

static void kill_timer_cb(struct ev_loop *l, struct ev_timer *t)
{
	struct server *sv = t->arg;
	struct session *c;

	(void)l;
	/* The 421s had their second: close whatever is left. */
	for (c = sv->conns; c; c = c->next)
		session_kill(c, "shutdown");
}

static void stop_timer_cb(struct ev_loop *l, struct ev_timer *t)
{
	struct server *sv = t->arg;
	struct session *c;

	/* Past shutdown-timeout: 421 to every session still open (a commit
	 * under way finished already: it runs inside the loop, never across a
	 * wake-up), then a moment for the replies to go out. */
	log_event("stop-deadline", "sessions=%u", sv->nconns);
	for (c = sv->conns; c; c = c->next) {
		if (c->dead || c->proxy_wait)   /* (no session yet: the kill timer's) */
			continue;
		smtpd_shutdown(&c->s, 1);
		ev_timer_stop(l, &c->auth_timer);
		session_pump(c);
	}
	sv->kill_timer.cb = kill_timer_cb;
	sv->kill_timer.arg = sv;
	ev_timer_start(l, &sv->kill_timer, SHUTDOWN_FLUSH_MS);
}

static void begin_shutdown(struct server *sv)
{
	struct session *c;
	size_t i;

	if (sv->stopping)
		return;
	sv->stopping = 1;
	/* (deliveries are the delivery role's, which logs its own stop) */
	log_event("stop", "sessions=%u deliveries=0 timeout=%u", sv->nconns,
	          sv->conf->shutdown_timeout);
	for (i = 0; i < sv->nls; i++) {
		ev_io_del(&sv->loop, &sv->ls[i].io);
		close(sv->ls[i].io.fd);
	}
	sv->nls = 0;
	for (c = sv->conns; c; c = c->next) {
		/* A connection still waiting for its PROXY header has no session
		 * to tell: once the header is in, its client gets the 421 of a
		 * stopping server (refuse_client()). */
		if (c->dead || c->proxy_wait)
			continue;
		smtpd_shutdown(&c->s, 0);
		session_pump(c);
	}
	sv->stop_timer.cb = stop_timer_cb;
	sv->stop_timer.arg = sv;
	ev_timer_start(&sv->loop, &sv->stop_timer, (int64_t)sv->conf->shutdown_timeout * 1000);
}

static void plink_handle(struct server *sv, const struct plink_msg *m, int fd);

/* `moat reload` over the control socket: the supervisor reloads (it
 * reads the files; this role cannot) and says how it went. */
static int control_reload(void *arg, const struct ctl_req *req, char *text, size_t cap)
{
	struct server *sv = arg;
	struct plink_msg m;
	int64_t deadline = ev_monotonic_ms() + 30000;
	int fd;

	(void)req;
	memset(&m, 0, sizeof m);
	m.type = PLINK_RELOAD;
	if (sv->stopping || sv->draining) {
		snprintf(text, cap, "stopping: not reloaded");
		return CTL_FAILED;
	}
	if (plink_send(sv->plink.fd, &m, -1) != 0) {
		snprintf(text, cap, "the supervisor does not answer");
		return CTL_FAILED;
	}
	for (;;) {
		struct pollfd pf = { sv->plink.fd, POLLIN, 0 };
		int64_t left = deadline - ev_monotonic_ms();
		int rc;

		if (left <= 0 || poll(&pf, 1, (int)left) <= 0) {
			snprintf(text, cap, "the supervisor does not answer");
			return CTL_FAILED;
		}
		if ((rc = plink_recv(sv->plink.fd, &m, &fd)) < 0) {
			snprintf(text, cap, "the supervisor does not answer");
			return CTL_FAILED;
		}
		if (rc == 1 && m.type == PLINK_RELOADED) {
			if (m.status == 0)
				snprintf(text, cap, "%s, %u sessions open", m.text, sv->nconns);
			else
				snprintf(text, cap, "%s", m.text);
			return m.status == 0 ? CTL_OK : CTL_FAILED;
		}
		if (rc == 1)
			plink_handle(sv, &m, fd);
	}
}

/* `moat status` over the control socket. */
static int control_status(void *arg, const struct ctl_req *req, char *text, size_t cap)
{
	struct server *sv = arg;

	(void)req;
	ops_status(&sv->ops, text, cap);
	return CTL_OK;
}

static void signal_cb(struct ev_loop *l, struct ev_io *io, unsigned events)
{
	struct server *sv = io->arg;
	struct signalfd_siginfo si;

	(void)l;
	(void)events;
	while (read(io->fd, &si, sizeof si) == (ssize_t)sizeof si) {
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			begin_shutdown(sv);
		/* SIGHUP: the supervisor's to act on; ignored here */
	}
}

static void ops_view_cb(void *arg, struct ops_view *v)
{
	struct server *sv = arg;

	v->q = sv->q;
	v->conf = sv->conf;
	v->sessions = sv->nconns;
	v->generation = sv->cfg->generation;
	v->edge = &sv->counters;
	v->stopping = sv->stopping;
}

/* One line, every edge counter: "event=counters early-talker=0 ...". */
static void log_counters(const struct edge_counters *ec)
{
	char line[EDGE_NREASONS * 40];
	size_t len = 0;

	line[0] = 0;
	for (unsigned r = 0; r < EDGE_NREASONS && len < sizeof line; r++) {
		int n = snprintf(line + len, sizeof line - len, "%s%s=%llu", r ? " " : "",
		                 edge_reason_name((enum edge_reason)r), (unsigned long long)ec->n[r]);

		if (n < 0)
			break;
		len += (size_t)n;
	}
	log_event("counters", "%s", line);
}

/* Thousands of sessions need thousands of descriptors: raise the soft
 * limit toward the hard one (1024 is a common soft default). */
static void raise_fd_limit(unsigned want)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)want + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ? need : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < need)
		log_warn("msg=\"descriptor limit %llu is below max-connections\"",
		         (unsigned long long)rl.rlim_cur);
}

/* A newer generation took over (a reload): stop listening, let every open
 * session finish with the config it started with, exit when none is left. */
static void drain(struct server *sv)
{
	struct plink_msg m;

	if (sv->draining || sv->stopping)
		return;
	sv->draining = 1;
	log_event("drain", "generation=%u sessions=%u", sv->cfg->generation, sv->nconns);
	for (size_t i = 0; i < sv->nls; i++) {
		ev_io_del(&sv->loop, &sv->ls[i].io);
		close(sv->ls[i].io.fd);
	}
	sv->nls = 0;
	ops_listen_close(&sv->ops);
	/* The control socket's path is the new generation's now; ours is
	 * unreachable and goes at exit (this may run inside its callback). */
	memset(&m, 0, sizeof m);
	m.type = PLINK_DRAIN;   /* said back: no connection is taken here any more */
	plink_send(sv->plink.fd, &m, -1);
	if (sv->nconns == 0)
		ev_stop(&sv->loop);
}

/* A message from the supervisor: a new link, or drain. */
static void plink_handle(struct server *sv, const struct plink_msg *m, int fd)
{
	if (m->type == PLINK_FD && m->kind == PLINK_QUEUE) {
		qc_set_fd(sv->q, fd);
		log_event("link", "role=smtp to=queue");
		return;
	}
	if (m->type == PLINK_FD && m->kind == PLINK_DKIM) {
		dkc_set_fd(sv->dk, fd);
		log_event("link", "role=smtp to=key link=dkim");
		return;
	}
	if (m->type == PLINK_FD && m->kind == PLINK_KEY && sv->cfg->tables.creds != NULL) {
		if (sv->kfd >= 0)
			close(sv->kfd);
		sv->kfd = fd;
		tls_creds_use_key_role(sv->cfg->tables.creds, fd);
		log_event("link", "role=smtp to=key");
		return;
	}
	if (fd >= 0)
		close(fd);
	if (m->type == PLINK_DRAIN)
		drain(sv);
}

static void plink_cb(struct ev_loop *l, struct ev_io *io, unsigned events)
{
	struct server *sv = io->arg;
	struct plink_msg m;
	int fd, rc;

	(void)events;
	while ((rc = plink_recv(io->fd, &m, &fd)) == 1)
		plink_handle(sv, &m, fd);
	if (rc < 0) {
		/* The supervisor is gone: nobody restarts us, stop. */
		ev_io_del(l, io);
		begin_shutdown(sv);
	}
}

/* The listeners the supervisor kept, opened for this generation: 0, or
 * -1 (logged). */
static int open_listeners(struct server *sv)
{
	char err[1024];

	for (size_t i = 0; i < sv->conf->nlisteners; i++) {
		int fd = listen_open(&sv->conf->listeners[i], err, sizeof err);

		if (fd < 0) {
			log_warn("msg=\"%s\"", err);
			return -1;
		}
		sv->ls[i].sv = sv;
		sv->ls[i].cl = &sv->conf->listeners[i];
		sv->ls[i].io.fd = fd;
		sv->ls[i].io.cb = listener_cb;
		sv->ls[i].io.arg = &sv->ls[i];
		sv->nls++;
	}
	return 0;
}

/* The parts beside the sessions: metrics, recipient verification, DNS
 * blocklists, the control socket.  0, or -1 (logged). */
static int open_services(struct server *sv)
{
	const struct conf *conf = sv->conf;
	struct httpd *metrics = NULL;
	char err[1024];

	ops_init(&sv->ops, &sv->loop, ops_view_cb, sv);
	if (ops_listen_prepare(&sv->ops, conf, &metrics, err, sizeof err) != 0) {
		log_warn("msg=\"metrics-listen: %s\"", err);
		return -1;
	}
	ops_listen_apply(&sv->ops, conf, metrics);
	listen_close_kept();
	/* Recipient verification (its resolver reads resolv.conf now). */
	sv->vf = verifier_new(&sv->loop, conf, sv->cfg->tables.anchors, err, sizeof err);
	if (sv->vf == NULL) {
		log_warn("msg=\"%s\"", err);
		return -1;
	}
	if (conf->ndnsbl > 0) {
		sv->dnsbl = dnsbl_new(&sv->loop, conf, &sv->counters, err, sizeof err);
		if (sv->dnsbl == NULL) {
			log_warn("msg=\"%s\"", err);
			return -1;
		}
	}
	/* Without the control socket the server still works; `moat queue`
	 * admin commands then say they cannot reach it. */
	sv->ctl = control_new(&sv->loop, conf->queue_path, CONTROL_NAME, err, sizeof err);
	if (sv->ctl == NULL) {
		log_warn("msg=\"%s\"", err);
	} else {
		/* status and reload; changing queued mail is the delivery
		 * role's (its admin socket), never this role's. */
		control_keep_path(sv->ctl);
		control_register_gated(sv->ctl, "status", 0, control_status, sv, ops_gate, &sv->ops);
		control_register(sv->ctl, "reload", 0, control_reload, sv);
	}
	return 0;
}

/* After the loop: the counters said, everything freed. */
static void smtp_role_end(struct server *sv, int sfd)
{
	/* (no commit is in flight: its sessions count until it is answered) */
	log_counters(&sv->counters);
	/* How well group commit batched: messages per fsync (make bench). */
	log_event("stats", "commits=%llu messages=%llu", sv->commits, sv->committed);
	ops_free(&sv->ops);   /* (before the queue link and the loop it uses) */
	dnsbl_free(sv->dnsbl);
	control_free(sv->ctl);
	verifier_free(sv->vf);
	dkc_free(sv->dk);
	qc_free(sv->q);
	close(sfd);
	ev_free(&sv->loop);
	while (sv->spare) {
		struct session *c = sv->spare;

		sv->spare = c->next;
		free(c);
	}
	free(sv->af);
}

int smtp_role_main(struct config *cfg, int plink, int qfd, int kfd, int dfd)
{
	static struct server sv; /* large (the counters): off the stack */
	const struct conf *conf = &cfg->conf;
	int sfd;

	memset(&sv, 0, sizeof sv);
	sv.cfg = cfg;
	sv.conf = conf;
	sv.kfd = kfd;
	sv.af = calloc(1, sizeof *sv.af);
	if (sv.af == NULL) {
		log_warn("msg=\"out of memory\"");
		return 111;
	}
	authfail_init(sv.af);
	raise_fd_limit(conf->max_connections);
	sv.commit_tail = &sv.commit_head;
	if (ev_init(&sv.loop) < 0) {
		log_warn("msg=\"epoll: %s\"", strerror(errno));
		return 111;
	}
	if (open_listeners(&sv) != 0)
		return 111;
	/* The private key is the key role's: sign through it, forget ours. */
	if (cfg->tables.creds != NULL && tls_creds_use_key_role(cfg->tables.creds, kfd) != 0) {
		log_warn("msg=\"cannot use the key role\"");
		return 111;
	}
	if ((sv.q = qc_new(&sv.loop, qfd, NULL, NULL, drain_cb, &sv)) == NULL)
		return 111;
	/* The DKIM keys' private halves are the key role's (the supervisor
	 * wiped ours after the fork); it signs over this link. */
	if ((sv.dk = dkc_new(&sv.loop, dfd)) == NULL)
		return 111;
	qc_prefetch(sv.q, 1);
	/* The smarthost's password is the delivery role's. */
	tables_forget_auth(&cfg->tables);
	if (open_services(&sv) != 0 || (sfd = role_signals()) < 0)
		return 111;
	if (role_enter(ROLE_SMTP, cfg, NULL) != 0)
		return 111;
	sv.sigio.fd = sfd;
	sv.sigio.cb = signal_cb;
	sv.sigio.arg = &sv;
	ev_io_set(&sv.loop, &sv.sigio, EV_READ);
	sv.plink.fd = plink;
	sv.plink.cb = plink_cb;
	sv.plink.arg = &sv;
	ev_io_set(&sv.loop, &sv.plink, EV_READ);
	for (size_t i = 0; i < sv.nls; i++)
		ev_io_set(&sv.loop, &sv.ls[i].io, EV_READ);
	ev_set_after_batch(&sv.loop, after_batch, &sv);
	if (ev_run(&sv.loop) < 0)
		log_warn("msg=\"epoll_wait: %s\"", strerror(errno));
	smtp_role_end(&sv, sfd);
	return 0;
}
