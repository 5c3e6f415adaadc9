/*
 * mta/smtp/smtpc.c -- the SMTP client session; see smtpc.h for how it is driven.
 *
 * Replies are taken one at a time from the front of the input with
 * smtp_reply_parse() and handed to the handler of the current state
 * (state_table below).  In SMTPC_S_TXN the commands MAIL, RCPT..., DATA are
 * numbered; with PIPELINING (RFC 2920) they go out together as the output
 * has room, without it one at a time, and replies are matched to them in
 * order either way.
 */
#include "mta/smtp/smtpc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "policy/dsnparam.h"

/* Input is not taken unless this much output room is left: any reply makes
 * at most one command (the longest is a RCPT with NOTIFY and ORCPT, about
 * 870 octets, or an AUTH PLAIN line). */
#define OUT_RESERVE 1200

/* Append a command and its CRLF.  Callers only format text that cannot
 * hold CR or LF (checked addresses, fixed words, base64). */
static void cmd(struct smtpc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void cmd(struct smtpc *c, const char *fmt, ...)
{
	va_list ap;
	size_t room = sizeof c->out - c->outlen;
	int n;

	if (room < 3)
		return;             /* cannot happen: OUT_RESERVE keeps room */
	va_start(ap, fmt);
	n = vsnprintf(c->out + c->outlen, room - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room - 2)
		return;             /* never a partial command on the wire */
	c->outlen += (size_t)n;
	c->out[c->outlen++] = '\r';
	c->out[c->outlen++] = '\n';
}

/* An address we may put between < >: no control bytes at all. */
static int path_ok(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

static void set_result(struct smtpc_result *r, enum smtpc_status st, int code, const char *text)
{
	r->status = (uint8_t)st;
	r->code = code;
	snprintf(r->text, sizeof r->text, "%s", text);
}

static void reply_result(struct smtpc_result *r, enum smtpc_status st,
                         const struct smtp_reply *rep)
{
	r->status = (uint8_t)st;
	r->code = rep->code;
	smtp_reply_text(rep, r->text, sizeof r->text);
}

static enum smtpc_status by_code(int code)
{
	return code >= 200 && code < 400 ? SMTPC_R_OK : code >= 500 ? SMTPC_R_PERM : SMTPC_R_TEMP;
}

/* The end: undecided recipients take st and the session's error; QUIT goes
 * out if the connection is still in step (polite, not waited for). */
static int in_step(const struct smtpc *c);

static void finish(struct smtpc *c, enum smtpc_status st, int quit)
{
	for (size_t i = 0; i < c->p.nrcpts; i++)
		if (c->res[i].status == SMTPC_R_NONE)
			set_result(&c->res[i], st, 0, c->error);
	if (quit && c->p.keep_open && !c->broken && in_step(c)) {
		c->state = SMTPC_S_IDLE;   /* the driver keeps it, or smtpc_quit() */
		return;
	}
	if (quit && c->state != SMTPC_S_DONE)
		cmd(c, "QUIT");
	c->state = SMTPC_S_DONE;
}

/* The session failed as a whole; try_next: nothing was decided by this
 * server, another address of the destination may do better. */
static void fail(struct smtpc *c, enum smtpc_status st, int try_next, int quit,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void fail(struct smtpc *c, enum smtpc_status st, int try_next, int quit,
                 const char *fmt, ...)
{
	va_list ap;

	if (c->state == SMTPC_S_DONE)
		return;
	va_start(ap, fmt);
	vsnprintf(c->error, sizeof c->error, fmt, ap);
	va_end(ap);
	c->failed = 1;
	c->try_next = try_next;
	/* A session that failed as a whole is not reused: it may be out of
	 * step (a 421, a reply we did not understand, a lost connection). */
	c->broken = 1;
	finish(c, st, quit);
}

static void fail_reply(struct smtpc *c, const struct smtp_reply *r, int try_next,
                       const char *when)
{
	char text[SMTPC_TEXT_MAX - 32];

	smtp_reply_text(r, text, sizeof text);
	fail(c, by_code(r->code) == SMTPC_R_PERM && !try_next ? SMTPC_R_PERM : SMTPC_R_TEMP,
	     try_next, 1, "%s (in reply to %s)", text, when);
}

/* ---- base64, for AUTH ---- */

static size_t b64(const unsigned char *in, size_t len, char *out, size_t cap)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;

	if (cap < (len + 2) / 3 * 4 + 1)
		return 0;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = i + 1 < len ? tab[v >> 6 & 63] : '=';
		out[o++] = i + 2 < len ? tab[v & 63] : '=';
	}
	out[o] = '\0';
	return o;
}

/* ---- the transaction ---- */

/* RFC 3461 parameters for MAIL (k == 0) or recipient k - 1, into buf
 * (" RET=HDRS ENVID=..."): "" unless the server offers DSN. */
static const char *dsn_params(struct smtpc *c, size_t k, char *buf, size_t cap)
{
	const struct smtpc_dsn *d = c->p.dsn;
	char notify[32];
	size_t n = 0;

	buf[0] = '\0';
	if (d == NULL || !(c->ext & SMTPC_EXT_DSN))
		return buf;
	if (k == 0) {
		if (d->ret != DSN_RET_NONE)
			n += (size_t)snprintf(buf, cap, " RET=%s", d->ret == DSN_RET_FULL ? "FULL" : "HDRS");
		if (d->envid && d->envid[0] && dsnparam_envid_ok(d->envid, strlen(d->envid)) && n < cap)
			snprintf(buf + n, cap - n, " ENVID=%s", d->envid);
		return buf;
	}
	c->res[k - 1].dsn_passed = 1;
	if (d->notify && d->notify[k - 1] && dsnparam_notify_valid(d->notify[k - 1]) &&
	    dsnparam_notify_text(d->notify[k - 1], notify) > 0)
		n += (size_t)snprintf(buf, cap, " NOTIFY=%s", notify);
	if (d->orcpt && d->orcpt[k - 1] && d->orcpt[k - 1][0] &&
	    dsnparam_orcpt_ok(d->orcpt[k - 1], strlen(d->orcpt[k - 1])) && n < cap)
		snprintf(buf + n, cap - n, " ORCPT=%s", d->orcpt[k - 1]);
	return buf;
}

static size_t txn_total(const struct smtpc *c)
{
	return 1 + c->p.nrcpts + (c->p.probe ? 0 : 1);
}

/* Every command sent was answered: another transaction may follow. */
static int in_step(const struct smtpc *c)
{
	if (c->rset_wait)
		return 0;
	return c->state == SMTPC_S_DOT || c->state == SMTPC_S_RSET ||
	       (c->state == SMTPC_S_TXN && c->answered == c->sent && c->sent == txn_total(c));
}

/* Send what may go now: everything that fits with PIPELINING, else the
 * next command once the previous one is answered. */
static void txn_send(struct smtpc *c)
{
	while (c->state == SMTPC_S_TXN && c->sent < txn_total(c) &&
	       sizeof c->out - c->outlen >= OUT_RESERVE &&
	       ((c->ext & SMTPC_EXT_PIPELINING) || c->sent == c->answered)) {
		size_t k = c->sent;
		char dsn[DSN_ORCPT_MAX + 48];
		if (k == 0) {
			char size[40] = "";
			if (c->ext & SMTPC_EXT_SIZE)
				snprintf(size, sizeof size, " SIZE=%llu", (unsigned long long)c->p.size);
			cmd(c, "MAIL FROM:<%s>%s%s%s%s", c->p.sender, size,
			    (c->p.flags & SMTPC_F_8BITMIME) && (c->ext & SMTPC_EXT_8BITMIME)
			    ? " BODY=8BITMIME" : "",
			    (c->p.flags & SMTPC_F_SMTPUTF8) ? " SMTPUTF8" : "",
			    dsn_params(c, 0, dsn, sizeof dsn));
		} else if (k <= c->p.nrcpts) {
			/* A recipient refused here keeps its place in the numbering
			 * with a NOOP, whose reply is ignored. */
			if (c->res[k - 1].status != SMTPC_R_NONE)
				cmd(c, "NOOP");
			else
				cmd(c, "RCPT TO:<%s>%s", c->p.rcpts[k - 1],
				    dsn_params(c, k, dsn, sizeof dsn));
		} else {
			/* Without PIPELINING, DATA only if a recipient was taken. */
			if (!(c->ext & SMTPC_EXT_PIPELINING) && c->accepted == 0) {
				finish(c, SMTPC_R_TEMP, 1);
				return;
			}
			cmd(c, "DATA");
		}
		c->sent++;
	}
}

static void txn_start(struct smtpc *c)
{
	if (!path_ok(c->p.sender)) {
		fail(c, SMTPC_R_PERM, 0, 1, "5.1.7 sender address holds control characters");
		return;
	}
	for (size_t i = 0; i < c->p.nrcpts; i++)
		if (!path_ok(c->p.rcpts[i]))
			set_result(&c->res[i], SMTPC_R_PERM, 0, "recipient address holds control characters");
	if ((c->p.flags & SMTPC_F_SMTPUTF8) && !(c->ext & SMTPC_EXT_SMTPUTF8)) {
		fail(c, SMTPC_R_PERM, 0, 1, "5.6.7 the server does not offer SMTPUTF8, "
		     "which this message needs");
		return;
	}
	if ((c->ext & SMTPC_EXT_SIZE) && c->max_size > 0 && c->p.size > c->max_size) {
		fail(c, SMTPC_R_PERM, 0, 1, "5.3.4 message of %llu bytes is over the server's "
		     "limit of %llu", (unsigned long long)c->p.size, (unsigned long long)c->max_size);
		return;
	}
	c->state = SMTPC_S_TXN;
	c->sent = c->answered = c->accepted = 0;
	txn_send(c);
}

/* Queued commands for recipients refused before sending (control bytes)
 * still go out, so the numbering holds; their replies are ignored. */
static void txn_reply(struct smtpc *c, const struct smtp_reply *r)
{
	size_t k;

	if (c->rset_wait) {
		/* The RSET sent ahead of this transaction (smtpc_next): refused,
		 * nothing was decided; the transaction goes on a fresh
		 * connection (the replies to the rest are not read). */
		c->rset_wait = 0;
		if (r->code < 200 || r->code >= 300)
			fail_reply(c, r, 1, "RSET");
		return;
	}
	k = c->answered++;

	if (k == 0) {
		c->mail_code = r->code;
		if (r->code < 200 || r->code >= 300) {
			char text[SMTPC_TEXT_MAX - 32];
			smtp_reply_text(r, text, sizeof text);
			snprintf(c->error, sizeof c->error, "%s (in reply to MAIL FROM)", text);
			c->failed = 1;
			/* 4xx to MAIL: nothing decided, another server may take it. */
			c->try_next = r->code < 500;
			for (size_t i = 0; i < c->p.nrcpts; i++)
				if (c->res[i].status == SMTPC_R_NONE)
					set_result(&c->res[i], by_code(r->code), r->code, c->error);
		}
	} else if (k <= c->p.nrcpts) {
		struct smtpc_result *res = &c->res[k - 1];
		if (c->failed || res->status != SMTPC_R_NONE)
			;                        /* decided already */
		else if (r->code >= 200 && r->code < 300) {
			c->accepted++;
			if (c->p.probe)
				reply_result(res, SMTPC_R_OK, r);
			else
				res->code = r->code;  /* decided by the end of DATA */
		} else {
			reply_result(res, by_code(r->code), r);
		}
	} else {
		/* DATA */
		if (r->code == 354) {
			if (c->failed || c->accepted == 0) {
				/* Nobody to deliver to, yet the server wants data
				 * (RFC 2920 3.1): end it at once. */
				cmd(c, ".");
				c->state = SMTPC_S_DOT;
				return;
			}
			c->state = SMTPC_S_BODY;
			stuff_init(&c->stuff);
			return;
		}
		if (!c->failed) {
			for (size_t i = 0; i < c->p.nrcpts; i++)
				if (c->res[i].status == SMTPC_R_NONE)
					reply_result(&c->res[i], by_code(r->code) == SMTPC_R_OK
					             ? SMTPC_R_TEMP : by_code(r->code), r);
		}
	}
	if (c->answered == txn_total(c)) {
		if (c->accepted == 0 && !c->failed)
			snprintf(c->error, sizeof c->error, "no recipient was accepted");
		finish(c, SMTPC_R_TEMP, 1);
		return;
	}
	/* Non-pipelined: a failed MAIL ends it; else the next command. */
	if (c->failed && !(c->ext & SMTPC_EXT_PIPELINING)) {
		finish(c, SMTPC_R_TEMP, 1);
		return;
	}
	txn_send(c);
}

/* ---- the states ---- */

static void send_ehlo(struct smtpc *c)
{
	cmd(c, "EHLO %s", c->p.helo);
	c->state = SMTPC_S_EHLO;
	c->ext = 0;
	c->max_size = 0;
}

static int word_is(const char *t, size_t len, const char *w)
{
	size_t n = strlen(w), i;

	if (len < n || (len > n && t[n] != ' ' && t[n] != '='))
		return 0;
	for (i = 0; i < n; i++) {
		char ch = t[i] >= 'a' && t[i] <= 'z' ? (char)(t[i] - 32) : t[i];
		if (ch != w[i])
			return 0;
	}
	return 1;
}

/* The AUTH mechanisms on an EHLO line "AUTH PLAIN LOGIN" (or "AUTH=..."). */
static unsigned auth_mechs(const char *t, size_t len)
{
	unsigned m = 0;
	size_t i = 5;

	while (i < len) {
		size_t start = i;
		while (i < len && t[i] != ' ')
			i++;
		if (word_is(t + start, i - start, "PLAIN"))
			m |= SMTPC_EXT_AUTH_PLAIN;
		if (word_is(t + start, i - start, "LOGIN"))
			m |= SMTPC_EXT_AUTH_LOGIN;
		i++;
	}
	return m;
}

static void parse_ehlo(struct smtpc *c, const struct smtp_reply *r)
{
	for (size_t i = 1; i < r->nlines; i++) {
		const char *t = r->line[i].text;
		size_t len = r->line[i].len;
		if (word_is(t, len, "PIPELINING"))
			c->ext |= SMTPC_EXT_PIPELINING;
		else if (word_is(t, len, "STARTTLS"))
			c->ext |= SMTPC_EXT_STARTTLS;
		else if (word_is(t, len, "8BITMIME"))
			c->ext |= SMTPC_EXT_8BITMIME;
		else if (word_is(t, len, "SMTPUTF8"))
			c->ext |= SMTPC_EXT_SMTPUTF8;
		else if (word_is(t, len, "DSN"))
			c->ext |= SMTPC_EXT_DSN;
		else if (word_is(t, len, "AUTH"))
			c->ext |= auth_mechs(t, len);
		else if (word_is(t, len, "SIZE")) {
			uint64_t v = 0;
			c->ext |= SMTPC_EXT_SIZE;
			for (size_t k = 5; k < len && t[k] >= '0' && t[k] <= '9'; k++)
				v = v > UINT64_MAX / 10 - 1 ? UINT64_MAX : v * 10 + (uint64_t)(t[k] - '0');
			c->max_size = v;
		}
	}
}

/* After EHLO/HELO (and TLS): STARTTLS, AUTH, or the transaction. */
static void after_hello(struct smtpc *c)
{
	if (!c->in_tls && c->p.tls != SMTPC_TLS_NONE && (c->ext & SMTPC_EXT_STARTTLS)) {
		cmd(c, "STARTTLS");
		c->state = SMTPC_S_STARTTLS;
		return;
	}
	if (!c->in_tls && !(c->ext & SMTPC_EXT_STARTTLS))
		c->no_starttls = 1;
	if (!c->in_tls && c->p.tls == SMTPC_TLS_REQUIRE) {
		fail(c, SMTPC_R_TEMP, 1, 1, "4.7.5 TLS is required, but the server does not offer STARTTLS");
		return;
	}
	if (c->p.auth_user != NULL) {
		char line[1024];
		unsigned char plain[2 * 256 + 2];
		size_t ul = strlen(c->p.auth_user), pl = strlen(c->p.auth_pass);
		if (!c->in_tls) {
			fail(c, SMTPC_R_TEMP, 1, 1, "4.7.0 will not send a password without TLS");
			return;
		}
		if (ul > 255 || pl > 255) {
			fail(c, SMTPC_R_TEMP, 1, 1, "4.3.5 AUTH user or password too long");
			return;
		}
		c->state = SMTPC_S_AUTH;
		c->auth_step = 0;
		if (c->ext & SMTPC_EXT_AUTH_PLAIN) {
			plain[0] = 0;
			memcpy(plain + 1, c->p.auth_user, ul);
			plain[1 + ul] = 0;
			memcpy(plain + 2 + ul, c->p.auth_pass, pl);
			b64(plain, 2 + ul + pl, line, sizeof line);
			c->auth_plain = 1;
			cmd(c, "AUTH PLAIN %s", line);
		} else if (c->ext & SMTPC_EXT_AUTH_LOGIN) {
			c->auth_plain = 0;
			cmd(c, "AUTH LOGIN");
		} else {
			fail(c, SMTPC_R_TEMP, 1, 1, "4.7.0 the server offers no AUTH PLAIN or LOGIN");
		}
		return;
	}
	txn_start(c);
}

/* The first word of r's first line, its length in *n: the name the server
 * gives itself in its greeting or its EHLO/HELO reply (RFC 5321 4.2). */
static const char *first_word(const struct smtp_reply *r, size_t *n)
{
	const char *t = r->nlines ? r->line[0].text : "";
	size_t len = r->nlines ? r->line[0].len : 0;

	for (*n = 0; *n < len && t[*n] != ' '; (*n)++)
		;
	return t;
}

/* The server calls itself by our name: the mail loops.  1 if so (failed). */
static int loops(struct smtpc *c, const struct smtp_reply *r)
{
	size_t n, hl;
	const char *t = first_word(r, &n);

	if (c->p.loop_name == NULL || c->p.helo == NULL || r->nlines == 0)
		return 0;
	hl = strlen(c->p.helo);
	if (n != hl || hl == 0 || strncasecmp(t, c->p.helo, n) != 0)
		return 0;
	c->looped = 1;
	fail(c, SMTPC_R_PERM, 0, 1, "5.4.6 mail for %s loops back to myself", c->p.loop_name);
	return 1;
}

/* The first word of r as the server's name (peer_name), if it is one: a
 * host name's or an address literal's characters only, at most
 * SMTPC_NAME_MAX of them.  Anything else leaves the name as it was. */
static void note_name(struct smtpc *c, const struct smtp_reply *r)
{
	size_t n;
	const char *t = first_word(r, &n);

	if (n == 0 || n > SMTPC_NAME_MAX)
		return;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)t[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '-' || ch == '.' || ch == '_' || ch == '[' || ch == ']' || ch == ':'))
			return;
	}
	memcpy(c->peer_name, t, n);
	c->peer_name[n] = '\0';
}

static void st_greeting(struct smtpc *c, const struct smtp_reply *r)
{
	if (r->code != 220) {
		fail_reply(c, r, 1, "the greeting");
		return;
	}
	note_name(c, r);
	if (!loops(c, r))
		send_ehlo(c);
}

static void st_ehlo(struct smtpc *c, const struct smtp_reply *r)
{
	if (r->code >= 200 && r->code < 300) {
		if (loops(c, r))
			return;
		note_name(c, r);
		c->esmtp = 1;
		parse_ehlo(c, r);
		after_hello(c);
	} else if (r->code >= 500 && !c->in_tls) {
		cmd(c, "HELO %s", c->p.helo);
		c->state = SMTPC_S_HELO;
	} else {
		fail_reply(c, r, 1, "EHLO");
	}
}

static void st_helo(struct smtpc *c, const struct smtp_reply *r)
{
	if (r->code >= 200 && r->code < 300) {
		if (loops(c, r))
			return;
		note_name(c, r);
		c->esmtp = 0;
		c->ext = 0;
		after_hello(c);
	} else {
		fail_reply(c, r, 1, "HELO");
	}
}

static void st_starttls(struct smtpc *c, const struct smtp_reply *r)
{
	if (r->code == 220) {
		c->state = SMTPC_S_TLS_WAIT;
		return;
	}
	c->no_starttls = 1;
	if (c->p.tls == SMTPC_TLS_REQUIRE) {
		fail_reply(c, r, 1, "STARTTLS");
		return;
	}
	/* Opportunistic: go on in plaintext, as the server did not switch. */
	c->ext &= ~SMTPC_EXT_STARTTLS;
	c->p.tls = SMTPC_TLS_NONE;
	after_hello(c);
}

static void st_auth(struct smtpc *c, const struct smtp_reply *r)
{
	char line[700];

	if (r->code == 235) {
		txn_start(c);
		return;
	}
	if (r->code == 334 && !c->auth_plain && c->auth_step < 2) {
		const char *w = c->auth_step == 0 ? c->p.auth_user : c->p.auth_pass;
		b64((const unsigned char *)w, strlen(w), line, sizeof line);
		cmd(c, "%s", line);
		c->auth_step++;
		return;
	}
	if (r->code == 334)
		cmd(c, "*");        /* cancel an exchange we do not understand */
	fail_reply(c, r, 1, "AUTH");
}

static void st_dot(struct smtpc *c, const struct smtp_reply *r)
{
	if (!c->failed && c->accepted > 0) {
		for (size_t i = 0; i < c->p.nrcpts; i++)
			if (c->res[i].status == SMTPC_R_NONE)
				reply_result(&c->res[i], by_code(r->code), r);
	}
	finish(c, SMTPC_R_TEMP, 1);
}

/* RSET before a transaction on a kept connection. */
static void st_rset(struct smtpc *c, const struct smtp_reply *r)
{
	if (r->code >= 200 && r->code < 300) {
		txn_start(c);
		return;
	}
	/* Nothing decided: the transaction goes on a fresh connection. */
	fail_reply(c, r, 1, "RSET");
}

static void st_ignore(struct smtpc *c, const struct smtp_reply *r)
{
	(void)c;
	(void)r;
}

typedef void state_fn(struct smtpc *c, const struct smtp_reply *r);

/* What a reply means in each state (TLS_WAIT, BODY and DONE take none:
 * smtpc_feed does not read in them). */
static state_fn *const state_table[] = {
	[SMTPC_S_GREETING] = st_greeting,
	[SMTPC_S_EHLO]     = st_ehlo,
	[SMTPC_S_HELO]     = st_helo,
	[SMTPC_S_STARTTLS] = st_starttls,
	[SMTPC_S_TLS_WAIT] = st_ignore,
	[SMTPC_S_AUTH]     = st_auth,
	[SMTPC_S_TXN]      = txn_reply,
	[SMTPC_S_BODY]     = st_ignore,
	[SMTPC_S_DOT]      = st_dot,
	[SMTPC_S_DONE]     = st_ignore,
	[SMTPC_S_IDLE]     = st_ignore,
	[SMTPC_S_RSET]     = st_rset,
};

/* ---- the driver's interface ---- */

void smtpc_init(struct smtpc *c, const struct smtpc_params *p, struct smtpc_result *res)
{
	memset(c, 0, sizeof *c);
	c->p = *p;
	c->res = res;
	c->in_tls = p->in_tls ? 1u : 0u;
	memset(res, 0, p->nrcpts * sizeof *res);
	c->state = SMTPC_S_GREETING;
}

size_t smtpc_feed(struct smtpc *c, const char *buf, size_t len)
{
	size_t used = 0;

	while (used < len && c->state != SMTPC_S_DONE && c->state != SMTPC_S_IDLE &&
	       c->state != SMTPC_S_TLS_WAIT && c->state != SMTPC_S_BODY &&
	       sizeof c->out - c->outlen >= OUT_RESERVE) {
		struct smtp_reply r;
		ssize_t n = smtp_reply_parse(buf + used, len - used, &r);
		enum smtpc_state before = c->state;

		if (n == SMTP_REPLY_NEED)
			break;
		if (n == SMTP_REPLY_BAD) {
			fail(c, SMTPC_R_TEMP, c->state < SMTPC_S_TXN || c->answered == 0, 0,
			     "4.5.0 protocol error: a malformed reply");
			return len;
		}
		used += (size_t)n;
		/* A 421 closes the connection (RFC 5321 3.8): whatever the
		 * state makes of it, this connection is not reused. */
		if (r.code == 421)
			c->broken = 1;
		state_table[c->state](c, &r);
		if (before == SMTPC_S_STARTTLS && c->state == SMTPC_S_TLS_WAIT && used < len) {
			/* Bytes after "220 ready for TLS" and before the handshake
			 * were injected in plaintext: never read them as if in TLS. */
			fail(c, SMTPC_R_TEMP, 1, 0, "4.5.0 protocol error: data after the STARTTLS reply");
			return len;
		}
	}
	if (c->state == SMTPC_S_DONE)
		return len;      /* nothing more is read */
	return used;         /* (idle: the driver watches what comes next) */
}

int smtpc_event(struct smtpc *c, enum smtpc_event_type *ev)
{
	if (c->state == SMTPC_S_TLS_WAIT && !c->tls_posted) {
		c->tls_posted = 1;
		*ev = SMTPC_EV_STARTTLS;
		return 1;
	}
	if ((c->state == SMTPC_S_DONE || c->state == SMTPC_S_IDLE) && !c->done_posted) {
		c->done_posted = 1;
		*ev = SMTPC_EV_DONE;
		return 1;
	}
	*ev = SMTPC_EV_NONE;
	return 0;
}

void smtpc_tls_done(struct smtpc *c, int ok)
{
	if (c->state != SMTPC_S_TLS_WAIT)
		return;
	c->tls_posted = 0;
	if (!ok) {
		fail(c, SMTPC_R_TEMP, 1, 0, "4.7.5 TLS handshake failed");
		return;
	}
	c->in_tls = 1;
	send_ehlo(c);     /* RFC 3207 4.2: forget what was learnt in plaintext */
}

int smtpc_body_wanted(const struct smtpc *c)
{
	return c->state == SMTPC_S_BODY && !c->body_last;
}

size_t smtpc_body(struct smtpc *c, const char *buf, size_t len, int last)
{
	size_t used = 0;

	if (!smtpc_body_wanted(c))
		return 0;
	if (sizeof c->out - c->outlen > STUFF_END_MAX + 3)
		c->outlen += stuff_feed(&c->stuff, buf, len, c->out + c->outlen,
		                        sizeof c->out - c->outlen - STUFF_END_MAX, &used);
	if (last && used == len && sizeof c->out - c->outlen >= STUFF_END_MAX) {
		c->outlen += stuff_end(&c->stuff, c->out + c->outlen);
		c->body_last = 1;
		c->state = SMTPC_S_DOT;
	}
	return used;
}

const char *smtpc_output(const struct smtpc *c, size_t *len)
{
	*len = c->outlen;
	return c->out;
}

void smtpc_output_ack(struct smtpc *c, size_t n)
{
	if (n >= c->outlen) {
		c->outlen = 0;
	} else {
		memmove(c->out, c->out + n, c->outlen - n);
		c->outlen -= n;
	}
	txn_send(c);
}

void smtpc_abort(struct smtpc *c, const char *why)
{
	const char *when = c->state == SMTPC_S_GREETING ? "before the greeting" :
	                   c->state == SMTPC_S_BODY ? "while sending the message" :
	                   c->state == SMTPC_S_DOT ? "after the end of the message" :
	                   c->state == SMTPC_S_TXN ? "during the transaction" : "during the greeting";

	if (c->state == SMTPC_S_DONE)
		return;
	if (c->state == SMTPC_S_IDLE) {
		c->broken = 1;        /* gone while kept: not reused */
		c->state = SMTPC_S_DONE;
		return;
	}
	c->outlen = 0;
	fail(c, SMTPC_R_TEMP, c->state < SMTPC_S_TXN || c->state == SMTPC_S_RSET ||
	     (c->state == SMTPC_S_TXN && c->answered == 0), 0, "%s %s", why, when);
}

int smtpc_done(const struct smtpc *c)
{
	return c->state == SMTPC_S_DONE || c->state == SMTPC_S_IDLE;
}

int smtpc_idle(const struct smtpc *c)
{
	return c->state == SMTPC_S_IDLE && !c->broken;
}

int smtpc_next(struct smtpc *c, const struct smtpc_params *p, struct smtpc_result *res)
{
	if (!smtpc_idle(c))
		return -1;
	c->p = *p;
	c->res = res;
	memset(res, 0, p->nrcpts * sizeof *res);
	c->sent = c->answered = c->accepted = 0;
	c->mail_code = 0;
	c->failed = c->try_next = 0;
	c->error[0] = '\0';
	c->done_posted = 0;
	c->body_last = 0;
	cmd(c, "RSET");
	if (c->ext & SMTPC_EXT_PIPELINING) {
		/* RSET goes in the same group as MAIL, RCPT and DATA (RFC 2920
		 * 3.1): one round trip less for each message after the first. */
		c->rset_wait = 1;
		txn_start(c);
	} else {
		c->state = SMTPC_S_RSET;
	}
	return 0;
}

void smtpc_quit(struct smtpc *c)
{
	if (c->state != SMTPC_S_IDLE)
		return;
	cmd(c, "QUIT");
	c->state = SMTPC_S_DONE;
}
