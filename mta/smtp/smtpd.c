/*
 * mta/smtp/smtpd.c -- the SMTP server session; see smtpd.h for how it is driven.
 *
 * Input is framed by smtp_line_scan() (policy/cmd.h) in command states and
 * by data_feed() (policy/data.h) in DATA.  A command is looked up in
 * cmd_table, which says in which states it is allowed and what to answer
 * otherwise; the handler then runs.  Replies are appended to s->out; input
 * stalls while the output buffer is nearly full or an event is unanswered,
 * which is how PIPELINING keeps replies in order without unbounded memory.
 */
#include "mta/smtp/smtpd.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mta/net/log.h"
#include "policy/addr.h"
#include "policy/base64.h"
#include "policy/cmd.h"
#include "policy/dnsbl.h"
#include "policy/dsnparam.h"
#include "policy/quota.h"
#include "policy/route.h"
#include "policy/rules.h"

/* Input is not consumed unless this much output room is left, so a reply
 * (at most one EHLO block) always fits. */
#define OUT_RESERVE 1024

/* Body buffers (SMTPD_BODY_BUF) of finished transactions, kept for the next
 * DATA of any session: musl's malloc maps and unmaps a buffer this size on
 * each malloc/free, and that was a page-fault and munmap cost per message
 * in make bench's profile.  At most BODY_SPARE_MAX are kept (the server is
 * one thread); they stay reachable from here until the process ends. */
#define BODY_SPARE_MAX 16
static char  *body_spare[BODY_SPARE_MAX];
static size_t body_nspare;

static char *body_get(void)
{
	return body_nspare > 0 ? body_spare[--body_nspare] : malloc(SMTPD_BODY_BUF);
}

static void body_put(char *body)
{
	if (body != NULL && body_nspare < BODY_SPARE_MAX)
		body_spare[body_nspare++] = body;
	else
		free(body);
}

static void reply(struct smtpd *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void session_over(struct smtpd *s);

static void reply(struct smtpd *s, const char *fmt, ...)
{
	va_list ap;
	int n;
	size_t room = sizeof s->out - s->outlen;

	if (room < 3)
		return; /* cannot happen: OUT_RESERVE keeps room; never overflow */
	s->reply_start = s->outlen;
	va_start(ap, fmt);
	n = vsnprintf(s->out + s->outlen, room - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= room - 2)
		n = (int)(room - 3);
	s->outlen += (size_t)n;
	s->out[s->outlen++] = '\r';
	s->out[s->outlen++] = '\n';
}

/* Let every reply out and forget a tarpit wait (the session is ending). */
static void release_hold(struct smtpd *s)
{
	s->hold_active = 0;
	s->delay_ms = 0;
	if (s->pending == SMTPD_P_DELAY)
		s->pending = SMTPD_P_NONE;
}

/* End the session with "421 4.7.0 HOST <why>, closing connection": a
 * reply the tarpit holds goes out first.  reason names it in the
 * disconnect line. */
static void close_421(struct smtpd *s, const char *why, const char *reason)
{
	release_hold(s);
	reply(s, "421 4.7.0 %s %s, closing connection", s->conf->hostname, why);
	s->close_reason = reason;
	s->state = SMTPD_S_CLOSING;
}

/* One more junk command (NOOP, RSET, VRFY, HELP, or a failed command);
 * past max-junk-commands the session ends with 421.  Returns 1 then.  A
 * client that only ever says NOOP would otherwise hold its connection for
 * as long as it sends one every timeout-command (Postfix's
 * smtpd_junk_command_limit, which also forgives at each queued message). */
static int junk_command(struct smtpd *s)
{
	s->junk++;
	if (s->conf->max_junk_commands == 0 || s->junk <= s->conf->max_junk_commands ||
	    s->state == SMTPD_S_CLOSING)
		return 0;
	close_421(s, "Too many junk commands", "too-many-junk-commands");
	return 1;
}

/* Count an error; past max-errors (or max-junk-commands) the session ends
 * with 421.  Past tarpit-after, the reply just given to the error is held
 * back. */
static void client_error(struct smtpd *s)
{
	unsigned ms;

	s->errors++;
	if (s->state == SMTPD_S_CLOSING)
		return;
	if (s->conf->max_errors && s->errors >= s->conf->max_errors) {
		close_421(s, "Too many errors", "too-many-errors");
		edge_count(s->counters, EDGE_TOO_MANY_ERRORS);
		return;
	}
	if (junk_command(s))
		return;
	ms = edge_tarpit_delay(s->conf, s->errors);
	if (ms == 0 || s->hold_active)
		return;
	s->hold_active = 1;
	s->hold = s->reply_start;
	s->delay_ms = ms;
	log_event("tarpit", "addr=%s sid=%s reason=tarpit errors=%u delay_ms=%u",
		  s->client.addr_text, s->client.sid,
	          s->errors, ms);
	edge_count(s->counters, EDGE_TARPIT);
}

/* An edge check refused the command with the reply just given: log it on
 * one line with the client's address and the reason (and `more`, further
 * key=value pairs, or ""), count it, and count it as an error. */
static void edge_refused(struct smtpd *s, enum edge_reason r, int code, const char *more)
{
	log_event("reject", "addr=%s sid=%s code=%d reason=%s%s%s",
		  s->client.addr_text, s->client.sid, code,
	          edge_reason_name(r), more[0] ? " " : "", more);
	edge_count(s->counters, r);
	client_error(s);
}

/* The client as the relay rules see it. */
static struct rules_client rules_client_of(const struct smtpd *s)
{
	struct rules_client rc;

	memset(&rc, 0, sizeof rc);
	rc.addr = s->client.addr;
	rc.authenticated = s->authenticated;
	rc.internal = s->client.listener.internal;
	return rc;
}

/* An insider (one who may relay: relay-network, internal listener, or
 * authenticated) is never refused by the edge checks. */
static int insider(const struct smtpd *s)
{
	struct rules_client rc = rules_client_of(s);

	return rules_relay_allowed(s->conf, &rc);
}

/* No transaction open: where a stopping server says 421 (smtpd_shutdown). */
static int stop_idle(const struct smtpd *s)
{
	return s->state == SMTPD_S_GREET_WAIT || s->state == SMTPD_S_INIT ||
	       s->state == SMTPD_S_READY;
}

static void stop_now(struct smtpd *s)
{
	release_hold(s); /* a reply the tarpit holds goes out before the 421 */
	reply(s, "421 4.3.2 %s Service shutting down", s->conf->hostname);
	s->close_reason = "shutdown";
	s->state = SMTPD_S_CLOSING;
}

/* A stopping server ends a session as soon as no transaction is open. */
static void stop_if_idle(struct smtpd *s)
{
	if (s->stopping && stop_idle(s) && s->pending == SMTPD_P_NONE &&
	    s->ev.type == SMTPD_EV_NONE)
		stop_now(s);
}

static void post_event(struct smtpd *s, enum smtpd_event_type type, enum smtpd_pending p)
{
	s->ev.type = type;
	s->pending = p;
}

static void txn_reset(struct smtpd *s)
{
	s->env.sender[0] = 0;
	s->env.nrcpts = 0;
	s->env.flags = 0;
	s->env.size = 0;
	s->env.dsn_ret = DSN_RET_NONE;
	s->env.dsn_envid[0] = '\0';
	s->declared_size = 0;
	s->body_size = 0;
	s->bodylen = 0;
	s->data_ended = 0;
	s->rcpt_tried = 0;
	s->too_big = 0;
	s->too_many_hops = 0;
	s->bare = 0;
	s->draft_err = QUEUE_OK;
	s->id = 0;
	body_put(s->body);
	s->body = NULL;
}

void smtpd_init(struct smtpd *s, const struct conf *conf, const struct smtpd_client *cl,
                unsigned flags)
{
	memset(s, 0, sizeof *s);
	s->conf = conf;
	s->client = *cl;
	s->flags = flags;
	s->state = SMTPD_S_GREET_WAIT;
}

void smtpd_set_tables(struct smtpd *s, const struct users *users, const struct rcptdb *rcpts)
{
	s->users = users;
	s->rcpts = rcpts;
}

void smtpd_free(struct smtpd *s)
{
	sasl_wipe(&s->creds);
	body_put(s->body);
	s->body = NULL;
	free(s->env.rcpts);
	s->env.rcpts = NULL;
	s->env.rcpt_cap = 0;
}

void smtpd_greet(struct smtpd *s)
{
	if (s->state != SMTPD_S_GREET_WAIT)
		return;
	if (s->dnsbl == SMTPD_DNSBL_LISTED && s->conf->dnsbl_stage == CONF_DNSBL_CONNECT &&
	    !insider(s)) {
		/* RFC 5321 3.1: no service, said in the greeting; wait for QUIT */
		reply(s, "554 5.7.1 %s Service unavailable; client [%s] blocked using %s",
		      s->conf->hostname, s->client.addr_text, s->dnsbl_lists);
		log_event("reject", "addr=%s sid=%s code=554 reason=%s stage=connect lists=%s",
		          s->client.addr_text, s->client.sid,
		          edge_reason_name(EDGE_DNSBL_REJECT), s->dnsbl_lists);
		edge_count(s->counters, EDGE_DNSBL_REJECT);
		s->state = SMTPD_S_REFUSED;
		return;
	}
	reply(s, "220 %s ESMTP moat", s->conf->hostname);
	s->state = SMTPD_S_INIT;
}

/* ---- command handlers ------------------------------------------------ */

typedef void cmd_handler(struct smtpd *s, const struct smtp_cmd *c);

static int is_loopback(const struct ipaddr *ip)
{
	static const uint8_t v6[16] = { [15] = 1 };

	return (ip->family == IP_V4 && ip->a[0] == 127) ||
	       (ip->family == IP_V6 && memcmp(ip->a, v6, 16) == 0);
}

static int starttls_offered(const struct smtpd *s)
{
	return s->client.listener.tls == CONF_TLS_STARTTLS && !(s->flags & SMTPD_F_TLS);
}

/* AUTH on submission listeners, inside TLS (or in plaintext from loopback
 * where the listener says auth-plaintext-loopback). */
static int auth_offered(const struct smtpd *s)
{
	const struct conf_listener *l = &s->client.listener;

	return s->users != NULL && l->role == CONF_ROLE_SUBMISSION &&
	       ((s->flags & SMTPD_F_TLS) || (l->auth_plaintext_loopback && is_loopback(&s->client.addr)));
}

/* AUTH would be offered once TLS is on. */
static int auth_needs_tls(const struct smtpd *s)
{
	return s->users != NULL && s->client.listener.role == CONF_ROLE_SUBMISSION &&
	       starttls_offered(s) && !auth_offered(s);
}

static int helo_arg_ok(const struct smtp_cmd *c)
{
	size_t i;

	if (c->arglen == 0 || c->arglen > ADDR_DOMAIN_MAX)
		return 0;
	for (i = 0; i < c->arglen; i++)
		if (c->arg[i] == ' ')
			return 0;
	return 1;
}

/* Judge the name (policy/edge.h); returns 0 when it is refused now.  A
 * name of ours is remembered and refused at MAIL, when AUTH is known. */
static int helo_accepted(struct smtpd *s, const struct smtp_cmd *c)
{
	enum edge_helo v = edge_helo_check(s->conf, c->arg, c->arglen, &s->client.local);
	char q[ADDR_DOMAIN_MAX * 4 + 8], more[sizeof q + 8];

	if (v == EDGE_HELO_SYNTAX && s->conf->reject_invalid_helo && !insider(s)) {
		log_quote(c->arg, c->arglen, q, sizeof q);
		reply(s, "501 5.5.2 <%s>: Helo command rejected: invalid name", q);
		snprintf(more, sizeof more, "helo=%s", q);
		edge_refused(s, EDGE_HELO_INVALID, 501, more);
		return 0;
	}
	s->helo_ours = v == EDGE_HELO_OURS;
	return 1;
}

static void set_helo(struct smtpd *s, const struct smtp_cmd *c)
{
	memcpy(s->helo, c->arg, c->arglen);
	s->helo[c->arglen] = 0;
	txn_reset(s);
	s->state = SMTPD_S_READY;
}

/* EHLO or HELO's argument checked and taken: 1, or 0 with the refusal
 * given. */
static int hello(struct smtpd *s, const struct smtp_cmd *c, const char *verb)
{
	if (!helo_arg_ok(c)) {
		reply(s, "501 5.5.4 Syntax: %s domain", verb);
		client_error(s);
		return 0;
	}
	if (!helo_accepted(s, c))
		return 0;
	set_helo(s, c);
	return 1;
}

static void cmd_ehlo(struct smtpd *s, const struct smtp_cmd *c)
{
	if (!hello(s, c, "EHLO"))
		return;
	s->esmtp = 1;
	reply(s, "250-%s Hello [%s]", s->conf->hostname, s->client.addr_text);
	reply(s, "250-PIPELINING");
	reply(s, "250-SIZE %llu", (unsigned long long)s->conf->max_message_size);
	reply(s, "250-8BITMIME");
	reply(s, "250-ENHANCEDSTATUSCODES");
	reply(s, "250-DSN");
	if (starttls_offered(s))
		reply(s, "250-STARTTLS");
	if (auth_offered(s))
		reply(s, "250-AUTH PLAIN LOGIN");
	reply(s, "250 SMTPUTF8");
}

static void cmd_helo(struct smtpd *s, const struct smtp_cmd *c)
{
	if (!hello(s, c, "HELO"))
		return;
	s->esmtp = 0;
	reply(s, "250 %s", s->conf->hostname);
}

static int param_is(const struct smtp_param *p, const char *name)
{
	size_t n = strlen(name);

	return p->keylen == n && strncasecmp(p->key, name, n) == 0;
}

static int parse_u64(const char *p, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 64)
		return -1;
	for (i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		/* RFC 1870: a size too large to hold is simply too large. */
		if (v > (UINT64_MAX - 9) / 10)
			v = UINT64_MAX;
		else
			v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*out = v;
	return 0;
}

static void unsupported_param(struct smtpd *s, const struct smtp_param *p)
{
	char q[64];

	reply(s, "555 5.5.4 Unsupported parameter %s", log_quote(p->key, p->keylen, q, sizeof q));
	client_error(s);
}

/* The outsider checks at MAIL: a HELO name of ours, a sender of our
 * domains.  Returns 0 when MAIL is refused. */
static int sender_accepted(struct smtpd *s, const struct addr *a)
{
	char text[ADDR_TEXT_MAX], q[ADDR_TEXT_MAX * 4 + 8], more[sizeof q + 8];

	if (insider(s))
		return 1;
	if (s->helo_ours && s->conf->reject_forged_helo) {
		log_quote(s->helo, strlen(s->helo), q, sizeof q);
		reply(s, "550 5.7.1 <%s>: Helo command rejected: our own name or address", q);
		snprintf(more, sizeof more, "helo=%s", q);
		edge_refused(s, EDGE_HELO_FORGED, 550, more);
		return 0;
	}
	if (s->conf->reject_forged_sender &&
	    edge_sender_ours(s->conf, a->domain, a->domainlen, a->flags)) {
		addr_format(a, text, sizeof text);
		log_quote(text, strlen(text), q, sizeof q);
		reply(s, "550 5.7.1 <%s>: Sender address rejected: our own domain from an outside host",
		      text);
		snprintf(more, sizeof more, "from=<%s>", q);
		edge_refused(s, EDGE_SENDER_FORGED, 550, more);
		return 0;
	}
	return 1;
}

/* A DSN parameter refused (rc < 0, policy/dsnparam.h): its 501. */
static void dsn_refused(struct smtpd *s, int rc)
{
	reply(s, "%s", dsnparam_reply(rc));
	client_error(s);
}

/* MAIL's parameters (RFC 1870 SIZE, RFC 6152 BODY, RFC 6531 SMTPUTF8,
 * RFC 3461 RET and ENVID) into *flags, *size and *dsn.  0, or -1 when
 * one was refused (the reply is out). */
static int mail_params(struct smtpd *s, const struct smtp_cmd *c, unsigned *flags,
                       uint64_t *size, struct dsnparam_mail *dsn)
{
	for (size_t i = 0; i < c->nparams; i++) {
		const struct smtp_param *p = &c->params[i];
		int rc;

		if (!s->esmtp) {
			unsupported_param(s, p);
			return -1;
		}
		rc = dsnparam_mail(dsn, p->key, p->keylen, p->val, p->vallen);
		if (rc < 0) {
			dsn_refused(s, rc);
			return -1;
		} else if (rc == DSNP_OK) {
			continue;
		} else if (param_is(p, "SIZE")) {
			if (p->val == NULL || parse_u64(p->val, p->vallen, size) < 0) {
				reply(s, "501 5.5.4 Bad SIZE parameter");
				client_error(s);
				return -1;
			}
		} else if (param_is(p, "BODY")) {
			if (p->val && p->vallen == 8 && strncasecmp(p->val, "8BITMIME", 8) == 0)
				*flags |= QUEUE_ENV_8BITMIME;
			else if (!(p->val && p->vallen == 4 && strncasecmp(p->val, "7BIT", 4) == 0)) {
				reply(s, "501 5.5.4 Bad BODY parameter");
				client_error(s);
				return -1;
			}
		} else if (param_is(p, "SMTPUTF8") && p->val == NULL) {
			*flags |= QUEUE_ENV_SMTPUTF8;
		} else {
			unsupported_param(s, p);
			return -1;
		}
	}
	return 0;
}

/* MAIL refused before its path is read (a transaction going on, too many
 * messages, submission without AUTH): 1 when so, the reply given. */
static int mail_refused(struct smtpd *s)
{
	if (s->state == SMTPD_S_MAIL) {
		reply(s, "503 5.5.1 Sender already specified");
		client_error(s);
		return 1;
	}
	if (s->messages >= s->conf->max_messages_per_connection) {
		reply(s, "421 4.7.0 %s Too many messages in one connection, closing",
		      s->conf->hostname);
		s->close_reason = "max-messages";
		s->state = SMTPD_S_CLOSING;
		return 1;
	}
	if (s->client.listener.role == CONF_ROLE_SUBMISSION && !s->authenticated) {
		if (auth_needs_tls(s))
			reply(s, "530 5.7.0 Must issue a STARTTLS command first");
		else
			reply(s, "530 5.7.0 Authentication required");
		log_event("reject", "addr=%s sid=%s code=530 reason=auth-required",
			  s->client.addr_text, s->client.sid);
		client_error(s);
		return 1;
	}
	return 0;
}

/* An authenticated user sends only as the addresses it owns (users file):
 * 1 when a is one of them (or nobody authenticated), else 0, refused. */
static int sender_owned(struct smtpd *s, const struct addr *a)
{
	char text[ADDR_TEXT_MAX], q[ADDR_TEXT_MAX * 4 + 8], u[USERS_NAME_MAX * 4 + 8];

	if (s->user == NULL)
		return 1;
	addr_format(a, text, sizeof text);
	if (users_sender_allowed(s->user, text))
		return 1;
	reply(s, "553 5.7.1 <%s>: Sender address not owned by the authenticated user", text);
	log_event("reject", "addr=%s sid=%s code=553 reason=sender-not-owned user=%s from=<%s>",
	          s->client.addr_text, s->client.sid,
	          log_quote(s->user->name, strlen(s->user->name), u, sizeof u),
	          log_quote(text, strlen(text), q, sizeof q));
	client_error(s);
	return 0;
}

static void cmd_mail(struct smtpd *s, const struct smtp_cmd *c)
{
	struct addr a;
	struct dsnparam_mail dsn;
	unsigned allow = ADDR_ALLOW_NULL, flags = 0;
	uint64_t size = 0;
	enum addr_result r;

	if (mail_refused(s))
		return;
	/* Parameters first: SMTPUTF8 decides how the path is parsed. */
	memset(&dsn, 0, sizeof dsn);
	if (mail_params(s, c, &flags, &size, &dsn) != 0)
		return;
	if (flags & QUEUE_ENV_SMTPUTF8)
		allow |= ADDR_ALLOW_UTF8;
	r = addr_parse_path(c->path, c->pathlen, allow, &a);
	if (r == ADDR_EUTF8) {
		reply(s, "553 5.6.7 Non-ASCII address requires SMTPUTF8");
		client_error(s);
		return;
	}
	if (r != ADDR_OK) {
		reply(s, "501 5.1.7 Bad sender address syntax");
		client_error(s);
		return;
	}
	if (!sender_accepted(s, &a))
		return;
	if (s->conf->max_message_size && size > s->conf->max_message_size) {
		reply(s, "552 5.3.4 Message size exceeds fixed maximum message size");
		log_event("reject", "addr=%s sid=%s code=552 reason=declared-size size=%llu",
		          s->client.addr_text, s->client.sid, (unsigned long long)size);
		client_error(s);
		return;
	}
	if (!sender_owned(s, &a))
		return;
	txn_reset(s);
	addr_format(&a, s->env.sender, sizeof s->env.sender);
	s->env.flags = flags;
	s->env.dsn_ret = dsn.ret;
	if (dsn.envid != NULL) {    /* at most DSN_ENVID_MAX: dsnparam checked */
		memcpy(s->env.dsn_envid, dsn.envid, dsn.envidlen);
		s->env.dsn_envid[dsn.envidlen] = '\0';
	}
	snprintf(s->env.client, sizeof s->env.client, "%s", s->client.addr_text);
	/* An authenticated user is one client wherever it connects from
	 * (queue/usage.h), and the envelope says who it was. */
	snprintf(s->env.auth_user, sizeof s->env.auth_user, "%s",
	         s->authenticated && s->user ? s->user->name : "");
	s->declared_size = size;
	/* 250 (and the MAIL state) once the driver says the queue has room,
	 * and, for an outsider, once the DNS blocklists have answered. */
	s->ev.env = &s->env;
	s->ev.size = size;
	if (s->conf->ndnsbl > 0 && s->conf->dnsbl_stage == CONF_DNSBL_RCPT &&
	    s->dnsbl == SMTPD_DNSBL_UNKNOWN && !insider(s)) {
		post_event(s, SMTPD_EV_DNSBL, SMTPD_P_DNSBL);
		return;
	}
	post_event(s, SMTPD_EV_QUOTA, SMTPD_P_QUOTA_MAIL);
}

/* A recipient taken, with its DSN parameters (orcpt "" for none). */
static int add_rcpt(struct smtpd *s, const char *text, uint8_t notify, const char *orcpt)
{
	struct queue_rcpt *r;

	if (s->env.nrcpts == s->env.rcpt_cap) {
		size_t cap = s->env.rcpt_cap ? s->env.rcpt_cap * 2 : 4;

		if (cap > s->conf->max_recipients)
			cap = s->conf->max_recipients;
		r = realloc(s->env.rcpts, cap * sizeof *r);
		if (r == NULL)
			return -1;
		s->env.rcpts = r;
		s->env.rcpt_cap = cap;
	}
	r = &s->env.rcpts[s->env.nrcpts++];
	memset(r, 0, sizeof *r);
	snprintf(r->addr, sizeof r->addr, "%s", text);
	r->notify = notify;
	snprintf(r->orcpt, sizeof r->orcpt, "%s", orcpt);
	return 0;
}

/* RCPT's parameters: RFC 3461 NOTIFY and ORCPT, kept with the recipient
 * (in vnotify and vorcpt while its next hop is asked).  0, or -1 with the
 * reply given. */
static int rcpt_params(struct smtpd *s, const struct smtp_cmd *c)
{
	struct dsnparam_rcpt dsn;

	memset(&dsn, 0, sizeof dsn);
	for (size_t i = 0; i < c->nparams; i++) {
		const struct smtp_param *p = &c->params[i];
		int pr = s->esmtp ? dsnparam_rcpt(&dsn, p->key, p->keylen, p->val, p->vallen)
		                  : DSNP_OTHER;

		if (pr == DSNP_OTHER) {
			unsupported_param(s, p);
			return -1;
		}
		if (pr < 0) {
			dsn_refused(s, pr);
			return -1;
		}
	}
	s->vnotify = dsn.notify;
	s->vorcpt[0] = '\0';
	if (dsn.orcpt != NULL) {    /* at most DSN_ORCPT_MAX: dsnparam checked */
		memcpy(s->vorcpt, dsn.orcpt, dsn.orcptlen);
		s->vorcpt[dsn.orcptlen] = '\0';
	}
	return 0;
}

/* The envelope's sender as the log writes words from the network. */
static const char *sender_q(const struct smtpd *s, char *buf, size_t cap)
{
	return log_quote(s->env.sender, strlen(s->env.sender), buf, cap);
}

/* Where the recipient may go (policy/rules.h): 1, or 0 with the refusal
 * given (unknown user, relay denied). */
static int rcpt_allowed(struct smtpd *s, const struct addr *a, const char *text, const char *q)
{
	struct rules_client rc = rules_client_of(s);
	char fq[QUEUE_ADDR_MAX * 4 + 8];

	switch (rules_rcpt(s->conf, &rc, a)) {
	case RCPT_LOCAL:
		if (s->rcpts != NULL && !rcptdb_known(s->rcpts, s->conf, a)) {
			reply(s, "550 5.1.1 <%s>: User unknown", text);
			log_event("reject", "addr=%s sid=%s code=550 reason=unknown-user to=<%s> from=<%s>",
				  s->client.addr_text, s->client.sid, q, sender_q(s, fq, sizeof fq));
			client_error(s);
			return 0;
		}
		return 1;
	case RCPT_RELAY:
		return 1;
	case RCPT_DENY_ROUTING:
		reply(s, "554 5.7.1 <%s>: Relay access denied (routing characters in local part)", text);
		log_event("reject", "addr=%s sid=%s code=554 reason=relay-routing to=<%s> from=<%s>",
			  s->client.addr_text, s->client.sid, q, sender_q(s, fq, sizeof fq));
		client_error(s);
		return 0;
	case RCPT_DENY_RELAY:
	default:
		reply(s, "554 5.7.1 <%s>: Relay access denied", text);
		log_event("reject", "addr=%s sid=%s code=554 reason=relay-denied to=<%s> from=<%s>",
			  s->client.addr_text, s->client.sid, q, sender_q(s, fq, sizeof fq));
		client_error(s);
		return 0;
	}
}

static void cmd_rcpt(struct smtpd *s, const struct smtp_cmd *c)
{
	struct addr a;
	unsigned allow = ADDR_ALLOW_POSTMASTER;
	char text[ADDR_TEXT_MAX], q[ADDR_TEXT_MAX * 4 + 8];
	enum addr_result r;

	s->rcpt_tried = 1;
	if (rcpt_params(s, c) != 0)
		return;
	if (s->env.flags & QUEUE_ENV_SMTPUTF8)
		allow |= ADDR_ALLOW_UTF8;
	r = addr_parse_path(c->path, c->pathlen, allow, &a);
	if (r == ADDR_EUTF8) {
		reply(s, "553 5.6.7 Non-ASCII address requires SMTPUTF8");
		client_error(s);
		return;
	}
	if (r != ADDR_OK) {
		reply(s, "501 5.1.3 Bad recipient address syntax");
		client_error(s);
		return;
	}
	addr_format(&a, text, sizeof text);
	log_quote(text, strlen(text), q, sizeof q);
	if (s->dnsbl == SMTPD_DNSBL_LISTED && !insider(s)) {
		char more[sizeof s->dnsbl_lists + sizeof q + 32];

		reply(s, "554 5.7.1 Service unavailable; client [%s] blocked using %s",
		      s->client.addr_text, s->dnsbl_lists);
		snprintf(more, sizeof more, "stage=rcpt lists=%s to=<%s>", s->dnsbl_lists, q);
		edge_refused(s, EDGE_DNSBL_REJECT, 554, more);
		return;
	}
	if (s->env.nrcpts >= s->conf->max_recipients) {
		reply(s, "452 4.5.3 Too many recipients");
		return; /* RFC 5321 4.5.3.1.10: not an error, the client sends the rest later */
	}
	if (!rcpt_allowed(s, &a, text, q))
		return;
	if (!(a.flags & (ADDR_F_LITERAL | ADDR_F_POSTMASTER))) {
		const struct conf_route *route = route_find(s->conf, a.domain, a.domainlen);
		if (route != NULL && route->hop.verify_rcpt) {
			/* Ask the next hop first; input waits for the answer. */
			snprintf(s->vrcpt, sizeof s->vrcpt, "%s", text);
			s->ev.data = s->vrcpt;
			s->ev.len = strlen(s->vrcpt);
			post_event(s, SMTPD_EV_RCPT_VERIFY, SMTPD_P_VERIFY);
			return;
		}
	}
	if (add_rcpt(s, text, s->vnotify, s->vorcpt) < 0) {
		reply(s, "451 4.3.0 Local error in processing");
		return;
	}
	reply(s, "250 2.1.5 Recipient OK");
}

void smtpd_rcpt_verified(struct smtpd *s, int verdict)
{
	char q[QUEUE_ADDR_MAX * 4 + 8], fq[QUEUE_ADDR_MAX * 4 + 8];

	if (s->pending != SMTPD_P_VERIFY)
		return;
	s->pending = SMTPD_P_NONE;
	log_quote(s->vrcpt, strlen(s->vrcpt), q, sizeof q);
	if (verdict == SMTPD_VERIFY_OK) {
		if (add_rcpt(s, s->vrcpt, s->vnotify, s->vorcpt) < 0)
			reply(s, "451 4.3.0 Local error in processing");
		else
			reply(s, "250 2.1.5 Recipient OK");
	} else if (verdict == SMTPD_VERIFY_REJECT) {
		reply(s, "550 5.1.1 <%s>: Recipient address rejected: User unknown", s->vrcpt);
		log_event("reject", "addr=%s sid=%s code=550 reason=verify-failed to=<%s> from=<%s>",
			  s->client.addr_text, s->client.sid, q, sender_q(s, fq, sizeof fq));
		client_error(s);
	} else {
		reply(s, "451 4.4.3 <%s>: Recipient address verification unavailable, try again later",
		      s->vrcpt);
		log_event("reject", "addr=%s sid=%s code=451 reason=verify-unavailable to=<%s> from=<%s>",
		          s->client.addr_text, s->client.sid, q, sender_q(s, fq, sizeof fq));
	}
}

static void cmd_data(struct smtpd *s, const struct smtp_cmd *c)
{
	(void)c;
	if (s->env.nrcpts == 0) {
		if (s->rcpt_tried)
			reply(s, "554 5.5.1 No valid recipients");
		else
			reply(s, "503 5.5.1 Need RCPT before DATA");
		client_error(s);
		return;
	}
	s->state = SMTPD_S_WAIT_BEGIN;
	post_event(s, SMTPD_EV_MSG_BEGIN, SMTPD_P_BEGIN);
}

static void cmd_rset(struct smtpd *s, const struct smtp_cmd *c)
{
	(void)c;
	txn_reset(s);
	if (s->state == SMTPD_S_MAIL)
		s->state = SMTPD_S_READY;
	reply(s, "250 2.0.0 OK");
}

static void cmd_quit(struct smtpd *s, const struct smtp_cmd *c)
{
	(void)c;
	reply(s, "221 2.0.0 %s closing connection", s->conf->hostname);
	s->close_reason = "quit";
	s->state = SMTPD_S_CLOSING;
}

static void cmd_not_impl(struct smtpd *s, const struct smtp_cmd *c)
{
	(void)c;
	reply(s, "502 5.5.1 Command not implemented");
	client_error(s);
}

/* RFC 3207: the driver flushes the 220 in plaintext, throws away whatever
 * the client sent after STARTTLS, and handshakes. */
static void cmd_starttls(struct smtpd *s, const struct smtp_cmd *c)
{
	if (s->flags & SMTPD_F_TLS) {
		reply(s, "503 5.5.1 TLS already active");
		client_error(s);
		return;
	}
	if (!starttls_offered(s)) {
		cmd_not_impl(s, c);
		return;
	}
	if (s->state != SMTPD_S_READY) {
		reply(s, "503 5.5.1 Bad sequence of commands");
		client_error(s);
		return;
	}
	reply(s, "220 2.0.0 Ready to start TLS");
	post_event(s, SMTPD_EV_STARTTLS, SMTPD_P_TLS);
}

/* ---- AUTH (RFC 4954): PLAIN (RFC 4616) and LOGIN ----------------------- */

static void auth_end(struct smtpd *s)
{
	sasl_wipe(&s->creds);
	s->auth_step = 0;
	if (s->state == SMTPD_S_AUTH)
		s->state = SMTPD_S_READY;
}

/* A malformed or aborted response: 501, and the session goes on. */
static void auth_reject(struct smtpd *s, enum sasl_result r)
{
	if (r == SASL_ABORT) {
		reply(s, "501 5.7.0 Authentication aborted");
	} else {
		reply(s, r == SASL_ETOOLONG ? "501 5.5.2 Response too long"
		                            : "501 5.5.2 Cannot decode response");
		log_event("auth-fail", "addr=%s sid=%s reason=%s",
			  s->client.addr_text, s->client.sid,
		          r == SASL_ETOOLONG ? "response-too-long" : "bad-response");
		client_error(s);
	}
	auth_end(s);
}

/* The credentials are complete: hand them to the driver. */
static void auth_submit(struct smtpd *s)
{
	s->state = SMTPD_S_AUTH;
	s->auth_step = 0;
	s->ev.creds = &s->creds;
	/* RFC 4616: an authorization identity other than the login is acting
	 * as another user; we never allow it (maddy GHSA-4g76-w3xw-2x6w). */
	s->ev.refuse = s->creds.authzidlen > 0 &&
	               (s->creds.authzidlen != s->creds.authcidlen ||
	                memcmp(s->creds.authzid, s->creds.authcid, s->creds.authcidlen) != 0)
	               ? "authzid-mismatch" : NULL;
	post_event(s, SMTPD_EV_AUTH, SMTPD_P_AUTH);
}

/* One response (the initial one on the AUTH line, or a line after 334). */
static void auth_response(struct smtpd *s, const char *line, size_t len, int initial)
{
	unsigned char msg[SASL_MSG_MAX + 3];
	size_t n = 0;
	enum sasl_result r = sasl_response(line, len, initial, msg, sizeof msg, &n);

	if (r == SASL_OK) {
		if (!s->auth_login)
			r = sasl_plain(msg, n, &s->creds);
		else if (s->auth_step == 1)
			r = sasl_login_field(msg, n, s->creds.authcid, &s->creds.authcidlen);
		else
			r = sasl_login_field(msg, n, s->creds.passwd, &s->creds.passwdlen);
	}
	memset(msg, 0, sizeof msg);
	if (r != SASL_OK) {
		auth_reject(s, r);
		return;
	}
	if (s->auth_login && s->auth_step == 1) {
		s->auth_step = 2;
		s->state = SMTPD_S_AUTH;
		reply(s, "334 UGFzc3dvcmQ6"); /* "Password:" */
		return;
	}
	auth_submit(s);
}

static void cmd_auth(struct smtpd *s, const struct smtp_cmd *c)
{
	const char *sp = memchr(c->arg, ' ', c->arglen);
	size_t mlen = sp ? (size_t)(sp - c->arg) : c->arglen;

	if (!auth_offered(s)) {
		if (auth_needs_tls(s))
			reply(s, "538 5.7.11 Encryption required for requested authentication mechanism");
		else
			reply(s, "502 5.5.1 Command not implemented");
		client_error(s);
		return;
	}
	if (s->authenticated) {
		reply(s, "503 5.5.1 Already authenticated");
		client_error(s);
		return;
	}
	if (s->state != SMTPD_S_READY) {
		reply(s, "503 5.5.1 Bad sequence of commands");
		client_error(s);
		return;
	}
	if (mlen == 5 && strncasecmp(c->arg, "PLAIN", 5) == 0) {
		s->auth_login = 0;
	} else if (mlen == 5 && strncasecmp(c->arg, "LOGIN", 5) == 0) {
		s->auth_login = 1;
		s->auth_step = 1;
	} else {
		reply(s, "504 5.5.4 Unrecognized authentication type");
		client_error(s);
		return;
	}
	sasl_wipe(&s->creds);
	if (sp != NULL) {
		auth_response(s, sp + 1, c->arglen - mlen - 1, 1);
		return;
	}
	s->state = SMTPD_S_AUTH;
	reply(s, s->auth_login ? "334 VXNlcm5hbWU6" /* "Username:" */ : "334 ");
}

/* A line in SMTPD_S_AUTH, never run as a command. */
static void auth_line(struct smtpd *s, const char *line, size_t len, unsigned lflags)
{
	if (lflags != 0) {
		auth_reject(s, SASL_EBASE64);
		return;
	}
	auth_response(s, line, len, 0);
}

void smtpd_auth_done(struct smtpd *s, enum smtpd_auth_result r, const struct user *user)
{
	if (s->pending != SMTPD_P_AUTH)
		return;
	s->pending = SMTPD_P_NONE;
	auth_end(s);
	switch (r) {
	case SMTPD_AUTH_OK:
		s->authenticated = 1;
		s->user = user;
		reply(s, "235 2.7.0 Authentication successful");
		break;
	case SMTPD_AUTH_BLOCKED:
		reply(s, "421 4.7.0 %s Too many authentication failures, closing connection",
		      s->conf->hostname);
		s->close_reason = "auth-blocked";
		s->state = SMTPD_S_CLOSING;
		break;
	case SMTPD_AUTH_FAIL:
	default:
		reply(s, "535 5.7.8 Authentication credentials invalid");
		client_error(s);
		break;
	}
}

void smtpd_tls_started(struct smtpd *s, unsigned flags)
{
	if (s->pending != SMTPD_P_TLS)
		return;
	s->pending = SMTPD_P_NONE;
	s->flags |= flags;
	/* RFC 3207 4.2: forget everything the client said before. */
	txn_reset(s);
	s->helo[0] = 0;
	s->esmtp = 0;
	s->authenticated = 0;
	s->user = NULL;
	s->state = SMTPD_S_INIT;
}

/* Which commands each state takes.  Bits are (1u << enum smtpd_state). */
#define ST(x) (1u << SMTPD_S_##x)
#define ANY   (ST(INIT) | ST(READY) | ST(MAIL))

static const struct cmd_entry {
	enum smtp_verb verb;
	unsigned       states;  /* where the command is in sequence */
	const char    *bad_seq; /* the 503 text otherwise */
	cmd_handler   *fn;      /* NULL: answer `fixed` and nothing else */
	const char    *fixed;
	int            junk;    /* counts toward max-junk-commands */
} cmd_table[] = {
	{ SMTP_VERB_EHLO,     ANY,                 NULL,                            cmd_ehlo, NULL, 0 },
	{ SMTP_VERB_HELO,     ANY,                 NULL,                            cmd_helo, NULL, 0 },
	{ SMTP_VERB_MAIL,     ST(READY) | ST(MAIL), "503 5.5.1 Send HELO/EHLO first", cmd_mail, NULL, 0 },
	{ SMTP_VERB_RCPT,     ST(MAIL),            "503 5.5.1 Need MAIL before RCPT", cmd_rcpt, NULL, 0 },
	{ SMTP_VERB_DATA,     ST(MAIL),            "503 5.5.1 Need RCPT before DATA", cmd_data, NULL, 0 },
	{ SMTP_VERB_RSET,     ANY,                 NULL,                            cmd_rset, NULL, 1 },
	{ SMTP_VERB_NOOP,     ANY,                 NULL,                            NULL,
	  "250 2.0.0 OK", 1 },
	{ SMTP_VERB_VRFY,     ANY,                 NULL,                            NULL,
	  "252 2.5.0 Cannot VRFY user; try RCPT", 1 },
	{ SMTP_VERB_HELP,     ANY,                 NULL,                            NULL,
	  "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP", 1 },
	{ SMTP_VERB_QUIT,     ANY | ST(REFUSED),   NULL,                            cmd_quit, NULL, 0 },
	{ SMTP_VERB_EXPN,     ANY,                 NULL,                            cmd_not_impl, NULL, 0 },
	{ SMTP_VERB_BDAT,     ANY,                 NULL,                            cmd_not_impl, NULL, 0 },
	/* Allowed anywhere, so that "not offered" (502) comes before 503. */
	{ SMTP_VERB_STARTTLS, ANY,                 NULL,                            cmd_starttls, NULL, 0 },
	{ SMTP_VERB_AUTH,     ANY,                 NULL,                            cmd_auth, NULL, 0 },
};

/* One complete command line (without its line end). */
static void run_line(struct smtpd *s, const char *line, size_t len, unsigned lflags)
{
	struct smtp_cmd c;
	enum smtp_cmd_result r;
	size_t i;

	if (s->state == SMTPD_S_AUTH) {
		auth_line(s, line, len, lflags);
		return;
	}
	if (lflags & SMTP_LINE_NUL) {
		reply(s, "500 5.5.2 NUL in command line");
		client_error(s);
		return;
	}
	if (lflags & (SMTP_LINE_BARE_CR | SMTP_LINE_BARE_LF)) {
		reply(s, "500 5.5.2 Bare CR or LF in command line");
		log_event("reject", "addr=%s sid=%s code=500 reason=bare-newline-command",
			  s->client.addr_text, s->client.sid);
		client_error(s);
		return;
	}
	r = smtp_cmd_parse(line, len, &c);
	if (s->state == SMTPD_S_REFUSED && !(r == SMTP_CMD_OK && c.verb == SMTP_VERB_QUIT)) {
		reply(s, "503 5.5.1 Bad sequence of commands");
		client_error(s);
		return;
	}
	if (r == SMTP_CMD_EUNKNOWN || c.verb == SMTP_VERB_NONE || c.verb == SMTP_VERB_UNKNOWN) {
		reply(s, "500 5.5.1 Command unrecognized");
		client_error(s);
		return;
	}
	for (i = 0; i < sizeof cmd_table / sizeof cmd_table[0]; i++) {
		const struct cmd_entry *e = &cmd_table[i];

		if (e->verb != c.verb)
			continue;
		if (r != SMTP_CMD_OK && (c.verb == SMTP_VERB_EHLO || c.verb == SMTP_VERB_HELO)) {
			reply(s, "501 5.5.4 Syntax: %s domain", smtp_verb_name(c.verb));
			client_error(s);
			return;
		}
		if (r != SMTP_CMD_OK) {
			reply(s, "501 5.5.4 Syntax error in parameters");
			client_error(s);
			return;
		}
		if (!(e->states & (1u << s->state))) {
			reply(s, "%s", e->bad_seq ? e->bad_seq : "503 5.5.1 Bad sequence of commands");
			if (c.verb == SMTP_VERB_MAIL && s->state == SMTPD_S_INIT)
				edge_refused(s, EDGE_NO_HELO, 503, "");
			else
				client_error(s);
			return;
		}
		if (e->junk && junk_command(s))
			return;
		if (e->fn)
			e->fn(s, &c);
		else
			reply(s, "%s", e->fixed);
		return;
	}
	reply(s, "500 5.5.1 Command unrecognized");
	client_error(s);
}

/* A client that did not wait for our reply (the greeting, or the one to
 * its first command): 554, logged and counted, and the end. */
static void early_talker(struct smtpd *s, enum edge_reason r, const char *what)
{
	reply(s, "554 5.5.0 %s protocol error: %s", s->conf->hostname, what);
	log_event("reject", "addr=%s sid=%s code=554 reason=%s",
		  s->client.addr_text, s->client.sid, edge_reason_name(r));
	edge_count(s->counters, r);
	s->close_reason = edge_reason_name(r);
	s->state = SMTPD_S_CLOSING;
}

/* Command states: frame lines and run them. */
static size_t feed_commands(struct smtpd *s, const char *buf, size_t len)
{
	size_t used = 0;

	while (used < len && s->pending == SMTPD_P_NONE && s->ev.type == SMTPD_EV_NONE &&
	       !s->hold_active && s->state != SMTPD_S_CLOSING &&
	       s->state != SMTPD_S_DATA && sizeof s->out - s->outlen >= OUT_RESERVE) {
		struct smtp_line ln;
		ssize_t n;

		stop_if_idle(s);
		if (s->state == SMTPD_S_CLOSING)
			break;
		n = smtp_line_scan(buf + used, len - used, SMTP_LINE_MAX, &ln);

		if (s->overflow) {
			/* Discarding an over-long line: skip to its LF, then answer once. */
			const char *lf = memchr(buf + used, '\n', len - used);

			if (lf == NULL)
				return len;
			used = (size_t)(lf - buf) + 1;
			s->overflow = 0;
			if (s->state == SMTPD_S_AUTH) {
				auth_reject(s, SASL_ETOOLONG);
				continue;
			}
			reply(s, "500 5.5.2 Line too long");
			client_error(s);
			continue;
		}
		if (n == -2) {
			/* The caller keeps the partial line; its buffer is larger
			 * than SMTP_LINE_MAX, so it is either completed or too long. */
			break;
		}
		if (n == -1 && s->lf_skip) {
			/* Still inside the broken line: drop all but the last byte,
			 * which may be the CR of the CRLF that ends it. */
			used += SMTP_LINE_MAX - 1;
			continue;
		}
		if (n == -1) {
			s->overflow = 1;
			used += SMTP_LINE_MAX;
			log_event("reject", "addr=%s sid=%s code=500 reason=line-too-long",
				  s->client.addr_text, s->client.sid);
			continue;
		}
		if (s->lf_skip) {
			/* The rest of a line a bare LF broke, up to its CRLF: never a
			 * command, and answered already (as a bare CR's line is, whole). */
			s->lf_skip = (ln.flags & SMTP_LINE_BARE_LF) != 0;
			used += (size_t)n;
			continue;
		}
		if (s->state == SMTPD_S_INIT && (size_t)n < len - used &&
		    !(ln.flags & SMTP_LINE_BARE_LF) && s->conf->reject_early_pipelining &&
		    !(s->flags & SMTPD_F_TLS) && !insider(s)) {
			/* More behind the first command: the client did not wait for
			 * the reply, and PIPELINING is not offered before EHLO.  Not
			 * inside TLS: a client that did a handshake writes no blind
			 * script, and one that saw PIPELINING before STARTTLS may
			 * well pipeline its second EHLO. */
			early_talker(s, EDGE_EARLY_PIPELINING, "pipelining before EHLO");
			return len;
		}
		run_line(s, buf + used, ln.len, ln.flags);
		s->lf_skip = (ln.flags & SMTP_LINE_BARE_LF) != 0;
		used += (size_t)n;
	}
	return used;
}

/* ---- DATA ------------------------------------------------------------ */

static void body_end(struct smtpd *s)
{
	char idtext[QUEUE_ID_TEXT];

	queue_id_format(s->id, idtext);
	s->state = SMTPD_S_READY;
	if (s->bare) {
		reply(s, "554 5.6.0 Bare CR or LF in message data; message rejected");
		log_event("reject", "id=%s addr=%s sid=%s code=554 reason=bare-newline-data",
			  idtext,
		          s->client.addr_text, s->client.sid);
		client_error(s);
		txn_reset(s);
		return;
	}
	if (s->too_many_hops) {
		/* RFC 5321 6.3: refused in the session, never bounced */
		reply(s, "554 5.4.6 Too many hops");
		log_event("reject", "id=%s addr=%s sid=%s code=554 reason=too-many-hops hops=%u max=%u",
		          idtext, s->client.addr_text, s->client.sid, s->hops.count, s->conf->max_hops);
		txn_reset(s);
		return;
	}
	if (s->too_big) {
		reply(s, "552 5.3.4 Message size exceeds fixed maximum message size");
		log_event("reject", "id=%s addr=%s sid=%s code=552 reason=size max=%llu", idtext,
		          s->client.addr_text, s->client.sid,
		          (unsigned long long)s->conf->max_message_size);
		txn_reset(s);
		return;
	}
	if (s->draft_err != QUEUE_OK) {
		if (s->draft_err == QUEUE_EFULL)
			reply(s, "452 4.3.1 Insufficient system storage");
		else
			reply(s, "451 4.3.0 Local error in processing");
		log_event("reject", "id=%s addr=%s sid=%s code=%s reason=%s stage=data size=%llu",
			  idtext,
		          s->client.addr_text, s->client.sid,
		          s->draft_err == QUEUE_EFULL ? "452" : "451",
		          s->draft_err == QUEUE_EFULL ? "queue-full" : "queue-error",
		          (unsigned long long)s->body_size);
		txn_reset(s);
		return;
	}
	s->state = SMTPD_S_WAIT_COMMIT;
	s->env.size = s->body_size;
	/* Ask again with the real size; MSG_END follows if there is room. */
	s->ev.env = &s->env;
	s->ev.size = s->body_size;
	post_event(s, SMTPD_EV_QUOTA, SMTPD_P_QUOTA_DATA);
}

/* Stop storing: drop the draft, keep reading to the terminator. */
static void body_abort(struct smtpd *s)
{
	if (s->body == NULL)
		return;
	body_put(s->body);
	s->body = NULL;
	s->bodylen = 0;
	post_event(s, SMTPD_EV_MSG_ABORT, SMTPD_P_NONE);
}

static size_t feed_data(struct smtpd *s, const char *buf, size_t len)
{
	size_t used = 0;

	while (used < len && s->state == SMTPD_S_DATA && s->pending == SMTPD_P_NONE &&
	       s->ev.type == SMTPD_EV_NONE && !s->hold_active) {
		char scratch[4096];
		char *out = s->body ? s->body + s->bodylen : scratch;
		size_t cap = s->body ? SMTPD_BODY_BUF - s->bodylen : sizeof scratch;
		size_t take = len - used, outlen = 0, consumed = 0;
		int done;

		if (cap < 3)
			break; /* cannot happen: the buffer is handed out below */
		if (take > cap - 2)
			take = cap - 2;
		done = data_feed(&s->ds, buf + used, take, out, cap, &outlen, &consumed);
		used += consumed;
		s->body_size += outlen;
		if (s->body)
			s->bodylen += outlen;
		if ((s->ds.flags & DATA_F_BARE) && !s->bare) {
			s->bare = 1;
			body_abort(s);
		} else if (s->conf->max_message_size && s->body_size > s->conf->max_message_size &&
		           !s->too_big) {
			s->too_big = 1;
			body_abort(s);
		}
		hops_feed(&s->hops, out, outlen);
		if (s->hops.count > s->conf->max_hops && !s->too_many_hops) {
			s->too_many_hops = 1;   /* a loop: nothing more is stored */
			body_abort(s);
		}
		if (s->body && (done || s->bodylen >= SMTPD_BODY_BUF / 2) && s->bodylen > 0) {
			s->ev.data = s->body;
			s->ev.len = s->bodylen;
			post_event(s, SMTPD_EV_MSG_DATA, SMTPD_P_DATA);
			s->data_ended = done ? 1u : 0u; /* finish after the ack */
			return used;
		}
		if (done) {
			body_end(s);
			return used;
		}
	}
	return used;
}

size_t smtpd_feed(struct smtpd *s, const char *buf, size_t len)
{
	size_t used = 0, n;

	if (s->state == SMTPD_S_GREET_WAIT && len > 0) {
		/* An early talker: a real client waits for the greeting. */
		early_talker(s, EDGE_EARLY_TALKER, "talked before the greeting");
		return len;
	}
	do {
		n = 0;
		if (s->state == SMTPD_S_CLOSING)
			return len; /* nothing more is read from a closing session */
		if (s->state == SMTPD_S_DATA)
			n = feed_data(s, buf + used, len - used);
		else
			n = feed_commands(s, buf + used, len - used);
		used += n;
	} while (n > 0 && used < len);
	return used;
}

int smtpd_event(struct smtpd *s, struct smtpd_event *ev)
{
	stop_if_idle(s);
	if (s->ev.type == SMTPD_EV_NONE && s->pending == SMTPD_P_NONE && s->delay_ms > 0) {
		/* the tarpit: after any other event, so none is overwritten */
		memset(ev, 0, sizeof *ev);
		ev->type = SMTPD_EV_DELAY;
		ev->ms = s->delay_ms;
		s->delay_ms = 0;
		s->pending = SMTPD_P_DELAY;
		return 1;
	}
	if (s->ev.type == SMTPD_EV_NONE) {
		if (s->state == SMTPD_S_CLOSING && !s->close_after && s->pending == SMTPD_P_NONE) {
			s->close_after = 1;
			ev->type = SMTPD_EV_CLOSE;
			ev->data = NULL;
			ev->len = 0;
			ev->env = NULL;
			ev->size = 0;
			ev->ms = 0;
			return 1;
		}
		return 0;
	}
	/* Handed out once; s->pending stays until the matching answer. */
	*ev = s->ev;
	s->ev.type = SMTPD_EV_NONE;
	return 1;
}

static void received_header(struct smtpd *s, int64_t now)
{
	char date[64], idtext[QUEUE_ID_TEXT], helo[ADDR_DOMAIN_MAX * 4 + 8];
	char forclause[QUEUE_ADDR_MAX + 16] = "";
	struct tm tm;
	time_t t = (time_t)now;
	const char *proto;
	int n;

	gmtime_r(&t, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
	queue_id_format(s->id, idtext);
	if (s->env.flags & QUEUE_ENV_SMTPUTF8)
		proto = (s->flags & SMTPD_F_TLS) ? "UTF8SMTPS" : "UTF8SMTP";
	else if (s->esmtp)
		proto = (s->flags & SMTPD_F_TLS) ? "ESMTPS" : "ESMTP";
	else
		proto = "SMTP";
	if (s->env.nrcpts == 1)
		snprintf(forclause, sizeof forclause, "\r\n\tfor <%s>", s->env.rcpts[0].addr);
	/* The HELO name is the client's word: keep it printable. */
	log_quote(s->helo, strlen(s->helo), helo, sizeof helo);
	n = snprintf(s->body, SMTPD_BODY_BUF,
	             "Received: from %s ([%s])\r\n\tby %s (moat) with %s id %s%s;\r\n\t%s\r\n",
	             helo, s->client.addr_text, s->conf->hostname, proto, idtext, forclause, date);
	s->bodylen = n > 0 ? (size_t)n : 0;
	s->body_size = s->bodylen;
}

void smtpd_quota_done(struct smtpd *s, int verdict)
{
	enum smtpd_pending p = s->pending;
	char idtext[QUEUE_ID_TEXT + 4];

	if (p != SMTPD_P_QUOTA_MAIL && p != SMTPD_P_QUOTA_DATA)
		return;
	s->pending = SMTPD_P_NONE;
	if (verdict == QUOTA_OK) {
		if (p == SMTPD_P_QUOTA_MAIL) {
			s->state = SMTPD_S_MAIL;
			reply(s, "250 2.1.0 Sender OK");
		} else {
			s->ev.env = &s->env;
			post_event(s, SMTPD_EV_MSG_END, SMTPD_P_COMMIT);
		}
		return;
	}
	/* Full now, not for ever: 452, and the client tries again later. */
	reply(s, "452 4.3.1 Insufficient system storage");
	/* At the end of DATA the message has its queue ID. */
	idtext[0] = 0;
	if (p == SMTPD_P_QUOTA_DATA) {
		memcpy(idtext, "id=", 3);
		queue_id_format(s->id, idtext + 3);
		idtext[QUEUE_ID_TEXT + 2] = ' ';
		idtext[QUEUE_ID_TEXT + 3] = 0;
	}
	log_event("reject", "%saddr=%s sid=%s code=452 reason=quota-%s stage=%s size=%llu", idtext,
	          s->client.addr_text, s->client.sid, quota_name((enum quota_verdict)verdict),
	          p == SMTPD_P_QUOTA_MAIL ? "mail" : "data",
	          (unsigned long long)(p == SMTPD_P_QUOTA_MAIL ? s->declared_size : s->body_size));
	if (p == SMTPD_P_QUOTA_DATA) {
		s->state = SMTPD_S_READY;
		post_event(s, SMTPD_EV_MSG_ABORT, SMTPD_P_NONE);
	}
	txn_reset(s);
}

void smtpd_msg_begun(struct smtpd *s, int err, queue_id id, int64_t now)
{
	if (s->pending != SMTPD_P_BEGIN)
		return;
	s->pending = SMTPD_P_NONE;
	if (err != QUEUE_OK) {
		s->state = SMTPD_S_READY;
		if (err == QUEUE_EFULL)
			reply(s, "452 4.3.1 Insufficient system storage");
		else
			reply(s, "451 4.3.0 Local error in processing");
		txn_reset(s);
		return;
	}
	s->body = body_get();
	if (s->body == NULL) {
		s->state = SMTPD_S_READY;
		reply(s, "451 4.3.0 Local error in processing");
		post_event(s, SMTPD_EV_MSG_ABORT, SMTPD_P_NONE);
		txn_reset(s);
		return;
	}
	s->id = id;
	s->env.id = id;
	s->env.received = now;
	snprintf(s->env.helo, sizeof s->env.helo, "%s", s->helo);
	snprintf(s->env.client, sizeof s->env.client, "%s", s->client.addr_text);
	received_header(s, now);
	data_init(&s->ds);
	hops_init(&s->hops);
	s->state = SMTPD_S_DATA;
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

void smtpd_data_done(struct smtpd *s, int err)
{
	int ended = s->data_ended;

	if (s->pending != SMTPD_P_DATA)
		return;
	s->pending = SMTPD_P_NONE;
	s->bodylen = 0;
	if (err != QUEUE_OK && s->draft_err == QUEUE_OK) {
		s->draft_err = err;
		body_abort(s); /* keep reading to the terminator, answer then */
	}
	if (ended) {
		s->data_ended = 0;
		body_end(s);
	}
}

/* The message's answer, text, at its end (committed or not); a refusal
 * is logged with its reason (NULL: none, a 250). */
static void msg_answer(struct smtpd *s, const char *text, const char *reason)
{
	char idtext[QUEUE_ID_TEXT];

	s->pending = SMTPD_P_NONE;
	s->state = SMTPD_S_READY;
	reply(s, "%s", text);
	if (reason != NULL) {
		queue_id_format(s->id, idtext);
		log_event("reject", "id=%s addr=%s sid=%s code=%.3s reason=%s",
			  idtext, s->client.addr_text, s->client.sid,
		          text, reason);
	}
	txn_reset(s);
	if (s->expired)
		session_over(s);
}

void smtpd_msg_committed(struct smtpd *s, int err)
{
	char text[64], idtext[QUEUE_ID_TEXT];

	if (s->pending != SMTPD_P_COMMIT)
		return;
	if (err == QUEUE_OK) {
		s->messages++;
		s->junk = 0; /* a client that sends mail is forgiven its NOOPs */
		queue_id_format(s->id, idtext);
		snprintf(text, sizeof text, "250 2.0.0 OK: queued as %s", idtext);
		msg_answer(s, text, NULL);
	} else if (err == QUEUE_EFULL) {
		msg_answer(s, "452 4.3.1 Insufficient system storage", "queue-full");
	} else {
		msg_answer(s, "451 4.3.0 Local error in processing", "queue-error");
	}
}

void smtpd_msg_refused(struct smtpd *s, const char *text, const char *reason)
{
	if (s->pending == SMTPD_P_COMMIT)
		msg_answer(s, text, reason);
}

void smtpd_delay_done(struct smtpd *s)
{
	if (s->pending != SMTPD_P_DELAY)
		return;
	s->pending = SMTPD_P_NONE;
	s->hold_active = 0;
}

void smtpd_dnsbl_done(struct smtpd *s, const char *lists)
{
	if (s->dnsbl == SMTPD_DNSBL_UNKNOWN) {
		s->dnsbl = lists && *lists ? SMTPD_DNSBL_LISTED : SMTPD_DNSBL_PASS;
		if (s->dnsbl == SMTPD_DNSBL_LISTED)
			snprintf(s->dnsbl_lists, sizeof s->dnsbl_lists, "%s", lists);
	}
	if (s->pending == SMTPD_P_DNSBL) {
		s->ev.env = &s->env;
		s->ev.size = s->declared_size;
		post_event(s, SMTPD_EV_QUOTA, SMTPD_P_QUOTA_MAIL);
	}
}

const char *smtpd_output(const struct smtpd *s, size_t *len)
{
	*len = s->hold_active ? s->hold : s->outlen;
	return s->out;
}

void smtpd_output_ack(struct smtpd *s, size_t n)
{
	size_t ready = s->hold_active ? s->hold : s->outlen;

	if (n > ready)
		n = ready;
	memmove(s->out, s->out + n, s->outlen - n);
	s->outlen -= n;
	if (s->hold_active)
		s->hold -= n;
}

unsigned smtpd_timeout_secs(const struct smtpd *s)
{
	switch (s->state) {
	case SMTPD_S_DATA:
		return s->conf->timeout_data;
	case SMTPD_S_WAIT_BEGIN:
	case SMTPD_S_WAIT_COMMIT:
	case SMTPD_S_GREET_WAIT:
		return 0; /* waiting on us, not on the client */
	case SMTPD_S_AUTH:
		return s->pending == SMTPD_P_AUTH ? 0 : s->conf->timeout_command;
	default:
		return s->conf->timeout_command;
	}
}

unsigned smtpd_deadline_secs(const struct smtpd *s)
{
	return s->state == SMTPD_S_DATA ? s->conf->timeout_data_total : 0;
}

void smtpd_timeout(struct smtpd *s)
{
	if (s->state == SMTPD_S_CLOSING)
		return;
	s->close_reason = "timeout";
	release_hold(s);
	if (s->state == SMTPD_S_DATA && s->body)
		body_abort(s);
	reply(s, "421 4.4.2 %s Timeout, closing connection", s->conf->hostname);
	s->state = SMTPD_S_CLOSING;
}

unsigned smtpd_session_secs(const struct smtpd *s)
{
	/* Once it is over (or the 421 waits for a commit's answer) the limit
	 * has done its work: a timer at 0 would only fire again and again. */
	if (s->state == SMTPD_S_CLOSING || s->expired)
		return 0;
	return s->conf->max_session_time;
}

static void session_over(struct smtpd *s)
{
	s->expired = 0;
	if (s->state == SMTPD_S_DATA && s->body)
		body_abort(s);
	s->pending = SMTPD_P_NONE;
	release_hold(s);
	reply(s, "421 4.4.2 %s Session time limit reached, closing connection", s->conf->hostname);
	s->close_reason = "session-time";
	s->state = SMTPD_S_CLOSING;
}

void smtpd_session_expired(struct smtpd *s)
{
	if (s->state == SMTPD_S_CLOSING)
		return;
	if (s->pending == SMTPD_P_COMMIT)
		s->expired = 1; /* the commit's answer first (smtpd_msg_committed) */
	else
		session_over(s);
}

void smtpd_shutdown(struct smtpd *s, int force)
{
	s->stopping = 1;
	if (s->state == SMTPD_S_CLOSING || s->pending == SMTPD_P_COMMIT)
		return;
	/* Between transactions, a tarpit wait or a MAIL waiting for its DNSBL
	 * verdict ends now, with the 421 for an answer; the rest at the end
	 * of their transaction (stop_if_idle), or now with force. */
	if (!force && !(stop_idle(s) && (s->pending == SMTPD_P_NONE || s->pending == SMTPD_P_DELAY ||
	                                 s->pending == SMTPD_P_DNSBL)))
		return;
	if (s->state == SMTPD_S_DATA && s->body)
		body_abort(s);
	s->pending = SMTPD_P_NONE;
	stop_now(s);
}

int smtpd_closing(const struct smtpd *s)
{
	return s->state == SMTPD_S_CLOSING;
}
