/*
 * tests/unit/test_smtpc.c -- the SMTP client session (mta/smtp/smtpc.c) against
 * scripted servers: what it sends, in what order, with and without
 * PIPELINING, STARTTLS, AUTH, and every way a server can fail it.  Each
 * script runs three times: replies fed whole, byte by byte, and split at
 * every offset of each reply; the transcript must be the same each time,
 * and never hold a bare CR or LF.
 */
#include <stdarg.h>
#include <stdlib.h>

#include "mta/smtp/smtpc.h"
#include "policy/dsnparam.h"
#include "tests/unit/t.h"

#define MAXR 4

struct run {
	struct smtpc c;
	struct smtpc_result res[MAXR];
	char wire[16384];        /* everything the client sent */
	size_t wlen;
	int tls_events, done_events;
	int tls_ok;              /* answer to a STARTTLS event */
};

static void drain(struct run *r)
{
	size_t n;
	const char *o = smtpc_output(&r->c, &n);
	if (r->wlen + n < sizeof r->wire) {
		memcpy(r->wire + r->wlen, o, n);
		r->wlen += n;
	}
	smtpc_output_ack(&r->c, n);
}

static void events(struct run *r, const char *body)
{
	enum smtpc_event_type ev;
	static size_t boff;

	for (int again = 1; again; ) {
		again = 0;
		drain(r);
		while (smtpc_event(&r->c, &ev)) {
			drain(r);
			if (ev == SMTPC_EV_STARTTLS) {
				r->tls_events++;
				smtpc_tls_done(&r->c, r->tls_ok);
				again = 1;
			} else if (ev == SMTPC_EV_DONE) {
				r->done_events++;
			}
		}
		if (smtpc_body_wanted(&r->c)) {
			/* Body in pieces of 3 bytes, to cross every boundary. */
			size_t blen = strlen(body);
			if (r->c.outlen == 0 && boff == 0)
				boff = 0;
			while (smtpc_body_wanted(&r->c)) {
				size_t take = blen - boff > 3 ? 3 : blen - boff;
				size_t n = smtpc_body(&r->c, body + boff, take, boff + take == blen);
				boff += n;
				drain(r);
			}
			boff = 0;
			again = 1;
		}
	}
}

/* Feed the server's script with a split mode: 0 whole, 1 byte by byte,
 * k>1: cut each reply at offset k-2. */
static void feed(struct run *r, const char *script, size_t len, int mode, const char *body)
{
	size_t pos = 0;
	char buf[8192];
	size_t have = 0;

	events(r, body);
	while (pos < len || have > 0) {
		size_t take;
		if (mode == 0)
			take = len - pos;
		else if (mode == 1)
			take = pos < len ? 1 : 0;
		else
			take = len - pos < (size_t)(mode - 1) ? len - pos : (size_t)(mode - 1);
		memcpy(buf + have, script + pos, take);
		have += take;
		pos += take;
		size_t used = smtpc_feed(&r->c, buf, have);
		memmove(buf, buf + used, have - used);
		have -= used;
		events(r, body);
		if (take == 0 && used == 0)
			break;
		if (smtpc_done(&r->c))
			break;
	}
}

static int wire_clean(const char *w, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (w[i] == '\r' && (i + 1 == n || w[i + 1] != '\n'))
			return 0;
		if (w[i] == '\n' && (i == 0 || w[i - 1] != '\r'))
			return 0;
	}
	return 1;
}

struct expect {
	const char *name;
	struct smtpc_params p;
	const char *script;       /* what the server says; "|TLS|" where the handshake is */
	const char *body;
	const char *wire;         /* what the client must send */
	uint8_t status[MAXR];
	int try_next;
	int tls_events;
};

static const char *const two[] = { "bob@example.test", "carol@example.test" };
static const char *const one[] = { "bob@example.test" };

#define P(rcpts, n) { "mx.test", "alice@example.org", rcpts, n, 10, 0, SMTPC_TLS_MAY, 0, 0, NULL, NULL, 0, NULL, NULL }

static struct expect cases[] = {
	{ "plain", P(two, 2),
	  "220 mx ESMTP\r\n250-mx\r\n250 SIZE 1000\r\n250 ok\r\n250 ok\r\n550 5.1.1 no\r\n"
	  "354 go\r\n250 2.0.0 queued\r\n221 bye\r\n",
	  "Subject: x\r\n.dot\r\n..two\r\nlast",
	  "EHLO mx.test\r\nMAIL FROM:<alice@example.org> SIZE=10\r\nRCPT TO:<bob@example.test>\r\n"
	  "RCPT TO:<carol@example.test>\r\nDATA\r\nSubject: x\r\n..dot\r\n...two\r\nlast\r\n.\r\nQUIT\r\n",
	  { SMTPC_R_OK, SMTPC_R_PERM }, 0, 0 },
	{ "pipelined", P(two, 2),
	  "220 mx\r\n250-mx\r\n250-PIPELINING\r\n250 8BITMIME\r\n250 ok\r\n451 4.7.1 later\r\n250 ok\r\n"
	  "354 go\r\n250 ok\r\n",
	  "hi\r\n",
	  "EHLO mx.test\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.test>\r\n"
	  "RCPT TO:<carol@example.test>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n",
	  { SMTPC_R_TEMP, SMTPC_R_OK }, 0, 0 },
	{ "all-refused", P(two, 2),
	  "220 mx\r\n250 mx\r\n250 ok\r\n550 no\r\n450 later\r\n",
	  "x\r\n",
	  "EHLO mx.test\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.test>\r\n"
	  "RCPT TO:<carol@example.test>\r\nQUIT\r\n",
	  { SMTPC_R_PERM, SMTPC_R_TEMP }, 0, 0 },
	{ "all-refused-pipelined", P(two, 2),
	  "220 mx\r\n250-mx\r\n250 PIPELINING\r\n250 ok\r\n550 no\r\n550 no\r\n554 no valid recipients\r\n",
	  "x\r\n",
	  "EHLO mx.test\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.test>\r\n"
	  "RCPT TO:<carol@example.test>\r\nDATA\r\nQUIT\r\n",
	  { SMTPC_R_PERM, SMTPC_R_PERM }, 0, 0 },
	{ "354-with-nobody", P(one, 1),
	  "220 mx\r\n250-mx\r\n250 PIPELINING\r\n250 ok\r\n550 no\r\n354 go on\r\n250 ok?\r\n",
	  "x\r\n",
	  "EHLO mx.test\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.test>\r\n"
	  "DATA\r\n.\r\nQUIT\r\n",
	  { SMTPC_R_PERM }, 0, 0 },
	{ "greeting-421", P(one, 1), "421 4.3.2 busy\r\n", "",
	  "QUIT\r\n", { SMTPC_R_TEMP }, 1, 0 },
	{ "greeting-554", P(one, 1), "554 go away\r\n", "",
	  "QUIT\r\n", { SMTPC_R_TEMP }, 1, 0 },
	{ "helo-fallback", P(one, 1),
	  "220 mx\r\n502 no EHLO\r\n250 mx\r\n250 ok\r\n250 ok\r\n354 go\r\n250 ok\r\n",
	  "a\r\n",
	  "EHLO mx.test\r\nHELO mx.test\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.test>\r\n"
	  "DATA\r\na\r\n.\r\nQUIT\r\n",
	  { SMTPC_R_OK }, 0, 0 },
	{ "mail-452", P(two, 2),
	  "220 mx\r\n250 mx\r\n452 4.3.1 full\r\n", "",
	  "EHLO mx.test\r\nMAIL FROM:<alice@example.org>\r\nQUIT\r\n",
	  { SMTPC_R_TEMP, SMTPC_R_TEMP }, 1, 0 },
	{ "mail-550-pipelined", P(two, 2),
	  "220 mx\r\n250-mx\r\n250 PIPELINING\r\n550 5.7.1 sender refused\r\n503 no\r\n503 no\r\n503 no\r\n",
	  "",
	  "EHLO mx.test\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.test>\r\n"
	  "RCPT TO:<carol@example.test>\r\nDATA\r\nQUIT\r\n",
	  { SMTPC_R_PERM, SMTPC_R_PERM }, 0, 0 },
	{ "data-451", P(one, 1),
	  "220 mx\r\n250 mx\r\n250 ok\r\n250 ok\r\n451 4.3.0 later\r\n", "",
	  "EHLO mx.test\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nQUIT\r\n",
	  { SMTPC_R_TEMP }, 0, 0 },
	{ "final-552", P(one, 1),
	  "220 mx\r\n250 mx\r\n250 ok\r\n250 ok\r\n354 go\r\n552 5.3.4 too big\r\n", "b\r\n",
	  "EHLO mx.test\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
	  "b\r\n.\r\nQUIT\r\n",
	  { SMTPC_R_PERM }, 0, 0 },
	{ "size-over-limit", P(one, 1),
	  "220 mx\r\n250-mx\r\n250 SIZE 5\r\n", "",
	  "EHLO mx.test\r\nQUIT\r\n", { SMTPC_R_PERM }, 0, 0 },
	{ "malformed", P(one, 1),
	  "220 mx\r\n250-mx\r\n251 mixed codes\r\n", "",
	  "EHLO mx.test\r\n", { SMTPC_R_TEMP }, 1, 0 },
	{ "nul", P(one, 1), "220 mx\0\r\n", "", "", { SMTPC_R_TEMP }, 1, 0 },
	{ "starttls-offered", P(one, 1),
	  "220 mx\r\n250-mx\r\n250 STARTTLS\r\n220 go ahead\r\n|TLS|250-mx\r\n250 PIPELINING\r\n250 ok\r\n"
	  "250 ok\r\n354 go\r\n250 ok\r\n",
	  "t\r\n",
	  "EHLO mx.test\r\nSTARTTLS\r\nEHLO mx.test\r\nMAIL FROM:<alice@example.org>\r\n"
	  "RCPT TO:<bob@example.test>\r\nDATA\r\nt\r\n.\r\nQUIT\r\n",
	  { SMTPC_R_OK }, 0, 1 },
	{ "starttls-454-may", P(one, 1),
	  "220 mx\r\n250-mx\r\n250 STARTTLS\r\n454 not now\r\n250 ok\r\n250 ok\r\n354 go\r\n250 ok\r\n",
	  "t\r\n",
	  "EHLO mx.test\r\nSTARTTLS\r\nMAIL FROM:<alice@example.org>\r\n"
	  "RCPT TO:<bob@example.test>\r\nDATA\r\nt\r\n.\r\nQUIT\r\n",
	  { SMTPC_R_OK }, 0, 0 },
	{ "probe", { "mx.test", "", one, 1, 0, 0, SMTPC_TLS_NONE, 0, 1, NULL, NULL, 0, NULL, NULL },
	  "220 mx\r\n250-mx\r\n250 STARTTLS\r\n250 ok\r\n550 5.1.1 unknown user\r\n", "",
	  "EHLO mx.test\r\nMAIL FROM:<>\r\nRCPT TO:<bob@example.test>\r\nQUIT\r\n",
	  { SMTPC_R_PERM }, 0, 0 },
	{ "utf8-not-offered", { "mx.test", "a@b", one, 1, 1, SMTPC_F_SMTPUTF8, SMTPC_TLS_NONE, 0,
	  0, NULL, NULL, 0, NULL, NULL },
	  "220 mx\r\n250 mx\r\n", "", "EHLO mx.test\r\nQUIT\r\n", { SMTPC_R_PERM }, 0, 0 },
	{ "utf8-8bit", { "mx.test", "a@b", one, 1, 1, SMTPC_F_SMTPUTF8 | SMTPC_F_8BITMIME,
	  SMTPC_TLS_NONE, 0, 0, NULL, NULL, 0, NULL, NULL },
	  "220 mx\r\n250-mx\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n250 ok\r\n250 ok\r\n354 go\r\n250 ok\r\n",
	  "\xc3\xa9",
	  "EHLO mx.test\r\nMAIL FROM:<a@b> BODY=8BITMIME SMTPUTF8\r\nRCPT TO:<bob@example.test>\r\n"
	  "DATA\r\n\xc3\xa9\r\n.\r\nQUIT\r\n",
	  { SMTPC_R_OK }, 0, 0 },
	{ "auth-plain", { "mx.test", "a@b", one, 1, 1, 0, SMTPC_TLS_NONE, 1, 0, "alice", "secret", 0, NULL, NULL },
	  "220 mx\r\n250-mx\r\n250 AUTH LOGIN PLAIN\r\n235 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 ok\r\n",
	  "z",
	  "EHLO mx.test\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nMAIL FROM:<a@b>\r\n"
	  "RCPT TO:<bob@example.test>\r\nDATA\r\nz\r\n.\r\nQUIT\r\n",
	  { SMTPC_R_OK }, 0, 0 },
	{ "auth-login", { "mx.test", "a@b", one, 1, 1, 0, SMTPC_TLS_NONE, 1, 1, "alice", "secret", 0, NULL, NULL },
	  "220 mx\r\n250-mx\r\n250 AUTH=LOGIN\r\n334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 ok\r\n"
	  "250 ok\r\n250 ok\r\n",
	  "",
	  "EHLO mx.test\r\nAUTH LOGIN\r\nYWxpY2U=\r\nc2VjcmV0\r\nMAIL FROM:<a@b>\r\n"
	  "RCPT TO:<bob@example.test>\r\nQUIT\r\n",
	  { SMTPC_R_OK }, 0, 0 },
	{ "auth-refused", { "mx.test", "a@b", one, 1, 1, 0, SMTPC_TLS_NONE, 1, 0, "alice", "bad", 0, NULL, NULL },
	  "220 mx\r\n250-mx\r\n250 AUTH PLAIN\r\n535 5.7.8 bad credentials\r\n", "",
	  "EHLO mx.test\r\nAUTH PLAIN AGFsaWNlAGJhZA==\r\nQUIT\r\n", { SMTPC_R_TEMP }, 1, 0 },
	{ "auth-without-tls", { "mx.test", "a@b", one, 1, 1, 0, SMTPC_TLS_NONE, 0, 0, "alice", "x", 0, NULL, NULL },
	  "220 mx\r\n250-mx\r\n250 AUTH PLAIN\r\n", "",
	  "EHLO mx.test\r\nQUIT\r\n", { SMTPC_R_TEMP }, 1, 0 },
	{ "require-tls-missing", { "mx.test", "a@b", one, 1, 1, 0, SMTPC_TLS_REQUIRE, 0, 0, NULL, NULL, 0, NULL, NULL },
	  "220 mx\r\n250 mx\r\n", "",
	  "EHLO mx.test\r\nQUIT\r\n", { SMTPC_R_TEMP }, 1, 0 },
};

static void test_scripts(void)
{
	static struct run r;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct expect *e = &cases[i];
		size_t slen = strlen(e->script);
		if (strcmp(e->name, "nul") == 0)
			slen = 10;
		for (int mode = 0; mode < 2 + 12; mode++) {
			memset(&r, 0, sizeof r);
			r.tls_ok = 1;
			smtpc_init(&r.c, &e->p, r.res);
			const char *tls = strstr(e->script, "|TLS|");
			if (tls != NULL) {
				feed(&r, e->script, (size_t)(tls - e->script), mode, e->body);
				feed(&r, tls + 5, strlen(tls + 5), mode, e->body);
			} else {
				feed(&r, e->script, slen, mode, e->body);
			}
			r.wire[r.wlen] = 0;
			CHECKF(r.wlen == strlen(e->wire) && memcmp(r.wire, e->wire, r.wlen) == 0,
			       "%s mode %d: sent\n%s", e->name, mode, r.wire);
			CHECKF(wire_clean(r.wire, r.wlen), "%s mode %d", e->name, mode);
			CHECKF(smtpc_done(&r.c) && r.done_events == 1, "%s mode %d: not done", e->name, mode);
			CHECKF(r.tls_events == e->tls_events, "%s: tls events %d", e->name, r.tls_events);
			CHECKF(r.c.try_next == e->try_next, "%s mode %d: try_next %d", e->name, mode,
			       r.c.try_next);
			for (size_t k = 0; k < e->p.nrcpts; k++)
				CHECKF(r.res[k].status == e->status[k], "%s mode %d: rcpt %zu status %u (%s)",
				       e->name, mode, k, r.res[k].status, r.res[k].text);
		}
	}
}

/* The reply text of a result, and the session's own reasons. */
static void test_texts(void)
{
	static struct run r;
	static const struct smtpc_params p = P(two, 2);
	static const char s[] = "220 mx\r\n250 mx\r\n250 ok\r\n550-5.1.1 no\r\n550 5.1.1 such user\r\n"
	                        "250 ok\r\n354 go\r\n";

	memset(&r, 0, sizeof r);
	smtpc_init(&r.c, &p, r.res);
	feed(&r, s, sizeof s - 1, 0, "x\r\n");
	CHECK(r.res[0].status == SMTPC_R_PERM && r.res[0].code == 550);
	CHECK(strcmp(r.res[0].text, "550 5.1.1 no such user") == 0);
	CHECK(r.res[1].status == SMTPC_R_NONE && smtpc_body_wanted(&r.c) == 0);
	/* The connection drops after the body: the accepted one is deferred. */
	smtpc_abort(&r.c, "lost connection");
	CHECK(r.res[1].status == SMTPC_R_TEMP && !r.c.try_next);
	CHECK(strcmp(r.res[1].text, "lost connection after the end of the message") == 0);
	CHECK(r.res[0].status == SMTPC_R_PERM);

	memset(&r, 0, sizeof r);
	smtpc_init(&r.c, &p, r.res);
	smtpc_abort(&r.c, "timeout");
	CHECK(r.c.try_next && r.res[0].status == SMTPC_R_TEMP && r.res[1].status == SMTPC_R_TEMP);
	CHECK(strcmp(r.res[0].text, "timeout before the greeting") == 0);
}

/* A server with our name (greeting, EHLO or HELO reply): the mail loops,
 * every recipient fails 5.4.6, nothing more is said but QUIT. */
static void test_loop(void)
{
	static const char *const scripts[] = {
		"220 MX.test ESMTP moat\r\n",
		"220 other ESMTP\r\n250-mx.test greets you\r\n250 SIZE 1000\r\n",
		"220 other ESMTP\r\n500 what\r\n250 mx.test\r\n",
	};
	static struct run r;
	struct smtpc_params p = P(two, 2);

	p.loop_name = "example.test";
	for (size_t i = 0; i < sizeof scripts / sizeof scripts[0]; i++) {
		memset(&r, 0, sizeof r);
		smtpc_init(&r.c, &p, r.res);
		feed(&r, scripts[i], strlen(scripts[i]), 0, "");
		CHECKF(smtpc_done(&r.c) && r.c.looped && !r.c.try_next, "script %zu", i);
		CHECK(r.res[0].status == SMTPC_R_PERM && r.res[1].status == SMTPC_R_PERM);
		CHECKF(strcmp(r.res[0].text, "5.4.6 mail for example.test loops back to myself") == 0,
		       "%s", r.res[0].text);
		CHECK(r.wlen >= 6 && memcmp(r.wire + r.wlen - 6, "QUIT\r\n", 6) == 0);
		CHECK(strstr(r.wire, "MAIL") == NULL);
	}
	/* a name that only starts like ours, or no check asked */
	memset(&r, 0, sizeof r);
	smtpc_init(&r.c, &p, r.res);
	feed(&r, "220 mx.test.other ESMTP\r\n250 mx.tester\r\n",
	     strlen("220 mx.test.other ESMTP\r\n250 mx.tester\r\n"), 0, "");
	CHECK(!r.c.looped && !smtpc_done(&r.c));
	p.loop_name = NULL;
	memset(&r, 0, sizeof r);
	smtpc_init(&r.c, &p, r.res);
	feed(&r, "220 mx.test ESMTP\r\n", strlen("220 mx.test ESMTP\r\n"), 0, "");
	CHECK(!r.c.looped && !smtpc_done(&r.c));
}

/* The server's name for TLS reports: the greeting's first word, then the
 * EHLO/HELO reply's; never one with other characters or too long. */
static void test_peer_name(void)
{
	static const struct {
		const char *script, *want;
	} names[] = {
		{ "220 mx.example ESMTP hi\r\n", "mx.example" },
		{ "220 mx.example ESMTP\r\n250-Other.Example greets\r\n250 SIZE 10\r\n", "Other.Example" },
		{ "220 mx.example\r\n500 no\r\n250 [192.0.2.1]\r\n", "[192.0.2.1]" },
		{ "220 mx.example\r\n250-bad\"name\r\n250 SIZE 10\r\n", "mx.example" },
		{ "220 ESMTP\r\n", "ESMTP" },
		{ "220 \r\n250 a\x01b\r\n", "" },
		{ "421 mx.example busy\r\n", "" },
	};
	static struct run r;
	struct smtpc_params p = P(two, 2);
	char longname[SMTPC_NAME_MAX + 40];

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		memset(&r, 0, sizeof r);
		smtpc_init(&r.c, &p, r.res);
		feed(&r, names[i].script, strlen(names[i].script), 0, "");
		CHECKF(strcmp(r.c.peer_name, names[i].want) == 0, "case %zu: %s", i, r.c.peer_name);
	}
	/* 254 characters: not a name; 253: one */
	for (size_t n = SMTPC_NAME_MAX; n <= SMTPC_NAME_MAX + 1; n++) {
		memset(&r, 0, sizeof r);
		smtpc_init(&r.c, &p, r.res);
		memcpy(longname, "220 ", 4);
		memset(longname + 4, 'a', n);
		memcpy(longname + 4 + n, "\r\n", 3);
		feed(&r, longname, strlen(longname), 0, "");
		CHECKF(strlen(r.c.peer_name) == (n == SMTPC_NAME_MAX ? n : 0), "%zu: %zu", n,
		       strlen(r.c.peer_name));
	}
}

/* STARTTLS: plaintext after the 220 is an injection; a failed handshake
 * ends the session. */
static void test_starttls_injection(void)
{
	static struct run r;
	static const struct smtpc_params p = P(one, 1);
	static const char s[] = "220 mx\r\n250-mx\r\n250 STARTTLS\r\n220 go\r\n250 injected\r\n";
	size_t used;

	memset(&r, 0, sizeof r);
	smtpc_init(&r.c, &p, r.res);
	used = smtpc_feed(&r.c, s, sizeof s - 1);
	CHECK(used == sizeof s - 1 && smtpc_done(&r.c) && r.c.try_next);
	CHECK(strstr(r.c.error, "after the STARTTLS reply") != NULL);

	memset(&r, 0, sizeof r);
	r.tls_ok = 0;
	smtpc_init(&r.c, &p, r.res);
	feed(&r, s, sizeof s - 1 - strlen("250 injected\r\n"), 0, "");
	CHECK(smtpc_done(&r.c) && r.tls_events == 1 && r.c.try_next);
	CHECK(strcmp(r.res[0].text, "4.7.5 TLS handshake failed") == 0);
}

/* Many recipients with PIPELINING: more RCPTs than the output holds go
 * out as it drains; replies match in order. */
static void test_many_rcpts(void)
{
	static struct run r;
	static char addrs[300][80];
	static const char *list[300];
	static char script[300 * 12 + 200];
	static struct smtpc_result res[300];
	struct smtpc_params p = P(NULL, 0);
	size_t n = 0;

	for (int i = 0; i < 300; i++) {
		snprintf(addrs[i], sizeof addrs[i], "user%03d.with.a.rather.long.local.part@example.test", i);
		list[i] = addrs[i];
	}
	p.rcpts = list;
	p.nrcpts = 300;
	n += (size_t)snprintf(script + n, sizeof script - n, "220 mx\r\n250-mx\r\n250 PIPELINING\r\n250 ok\r\n");
	for (int i = 0; i < 300; i++)
		n += (size_t)snprintf(script + n, sizeof script - n, i % 7 ? "250 ok\r\n" : "550 no\r\n");
	n += (size_t)snprintf(script + n, sizeof script - n, "354 go\r\n250 done\r\n");
	memset(&r, 0, sizeof r);
	smtpc_init(&r.c, &p, res);
	/* The results array is larger than the struct's: use the static one. */
	feed(&r, script, n, 0, "x\r\n");
	CHECK(smtpc_done(&r.c));
	for (int i = 0; i < 300; i++)
		CHECKF(res[i].status == (i % 7 ? SMTPC_R_OK : SMTPC_R_PERM), "rcpt %d", i);
}

/* RFC 3461: the parameters go out only to a server that offers DSN, and
 * the results say which recipients went with them. */
static void test_dsn(void)
{
	static struct run r;
	static const uint8_t notify[2] = { DSN_NOTIFY_SUCCESS | DSN_NOTIFY_DELAY, 0 };
	static const char *const orcpt[2] = { "rfc822;bob+2Bold@example.test", "" };
	static const struct smtpc_dsn dsn = { DSN_RET_HDRS, "ID+2B1", notify, orcpt };
	static const char with[] = "220 mx\r\n250-mx\r\n250-PIPELINING\r\n250 DSN\r\n"
	                           "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 done\r\n";
	static const char without[] = "220 mx\r\n250-mx\r\n250 PIPELINING\r\n"
	                              "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 done\r\n";
	struct smtpc_params p = P(two, 2);

	p.dsn = &dsn;
	for (int mode = 0; mode < 14; mode++) {
		memset(&r, 0, sizeof r);
		smtpc_init(&r.c, &p, r.res);
		feed(&r, with, sizeof with - 1, mode, "x\r\n");
		r.wire[r.wlen] = 0;
		CHECKF(strstr(r.wire, "MAIL FROM:<alice@example.org> RET=HDRS ENVID=ID+2B1\r\n"
		                      "RCPT TO:<bob@example.test> NOTIFY=SUCCESS,DELAY "
		                      "ORCPT=rfc822;bob+2Bold@example.test\r\n"
		                      "RCPT TO:<carol@example.test>\r\nDATA\r\n") != NULL,
		       "mode %d: %s", mode, r.wire);
		CHECK(r.res[0].status == SMTPC_R_OK && r.res[0].dsn_passed && r.res[1].dsn_passed);
	}
	memset(&r, 0, sizeof r);
	smtpc_init(&r.c, &p, r.res);
	feed(&r, without, sizeof without - 1, 0, "x\r\n");
	r.wire[r.wlen] = 0;
	CHECKF(strstr(r.wire, "MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.test>\r\n"
	                      "RCPT TO:<carol@example.test>\r\n") != NULL, "%s", r.wire);
	CHECK(r.res[0].status == SMTPC_R_OK && !r.res[0].dsn_passed && !r.res[1].dsn_passed);
	/* A value the session would not have taken is left out, not sent. */
	{
		static const char *const bad[2] = { "rfc822;a b", "x" };
		static const uint8_t badn[2] = { DSN_NOTIFY_NEVER | DSN_NOTIFY_SUCCESS, 0 };
		static const struct smtpc_dsn d2 = { DSN_RET_FULL, "a=b", badn, bad };

		p.dsn = &d2;
		memset(&r, 0, sizeof r);
		smtpc_init(&r.c, &p, r.res);
		feed(&r, with, sizeof with - 1, 0, "x\r\n");
		r.wire[r.wlen] = 0;
		CHECKF(strstr(r.wire, "MAIL FROM:<alice@example.org> RET=FULL\r\n"
		                      "RCPT TO:<bob@example.test>\r\nRCPT TO:<carol@example.test>\r\n")
		       != NULL, "%s", r.wire);
	}
}

/* keep_open: a clean end leaves the session idle; smtpc_next() carries the
 * next transaction after RSET on the same connection, split every way;
 * a 421 or a refused RSET ends reuse; smtpc_quit() says QUIT. */
static void test_reuse(void)
{
	static const char first[] = "220 mx\r\n250-mx\r\n250 PIPELINING\r\n250 ok\r\n250 ok\r\n"
	                            "354 go\r\n250 2.0.0 one\r\n";
	static const char second[] = "250 2.0.0 reset\r\n250 ok\r\n250 ok\r\n354 go\r\n"
	                             "250 2.0.0 two\r\n";
	static const char want[] = "EHLO mx.test\r\nMAIL FROM:<alice@example.org>\r\n"
	                           "RCPT TO:<bob@example.test>\r\nDATA\r\nx\r\n.\r\n"
	                           "RSET\r\nMAIL FROM:<alice@example.org>\r\n"
	                           "RCPT TO:<bob@example.test>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n";

	for (int mode = 0; mode < 40; mode++) {
		static struct run r;
		struct smtpc_params p = P(one, 1);

		memset(&r, 0, sizeof r);
		p.keep_open = 1;
		smtpc_init(&r.c, &p, r.res);
		feed(&r, first, sizeof first - 1, mode, "x");
		CHECKF(smtpc_idle(&r.c) && r.res[0].status == SMTPC_R_OK && r.done_events == 1,
		       "mode %d", mode);
		CHECK(smtpc_next(&r.c, &p, r.res) == 0 && r.res[0].status == SMTPC_R_NONE);
		feed(&r, second, sizeof second - 1, mode, "x");
		CHECKF(smtpc_idle(&r.c) && r.res[0].status == SMTPC_R_OK && r.done_events == 2,
		       "mode %d", mode);
		smtpc_quit(&r.c);
		drain(&r);
		CHECKF(r.wlen == sizeof want - 1 && memcmp(r.wire, want, r.wlen) == 0,
		       "mode %d: %.*s", mode, (int)r.wlen, r.wire);
		CHECK(!smtpc_idle(&r.c) && smtpc_next(&r.c, &p, r.res) == -1);
	}
	{
		/* RSET goes ahead of MAIL in one group with PIPELINING, alone
		 * without it */
		static struct run r;
		struct smtpc_params p = P(one, 1);
		static const char plain[] = "220 mx\r\n250 mx\r\n250 ok\r\n250 ok\r\n354 go\r\n"
		                            "250 2.0.0 one\r\n";

		for (int pipe = 0; pipe < 2; pipe++) {
			memset(&r, 0, sizeof r);
			p.keep_open = 1;
			smtpc_init(&r.c, &p, r.res);
			if (pipe)
				feed(&r, first, sizeof first - 1, 0, "x");
			else
				feed(&r, plain, sizeof plain - 1, 0, "x");
			CHECK(smtpc_idle(&r.c));
			r.wlen = 0;
			CHECK(smtpc_next(&r.c, &p, r.res) == 0);
			drain(&r);
			r.wire[r.wlen] = '\0';
			CHECKF(pipe ? strcmp(r.wire, "RSET\r\nMAIL FROM:<alice@example.org>\r\n"
			                             "RCPT TO:<bob@example.test>\r\nDATA\r\n") == 0
			            : strcmp(r.wire, "RSET\r\n") == 0, "pipelining %d: %s", pipe, r.wire);
		}
		/* the RSET refused in the group: nothing decided, not reused */
		static const char refused[] = "421 4.3.2 bye\r\n354 go\r\n";
		feed(&r, refused, sizeof refused - 1, 0, "x");
		CHECK(smtpc_done(&r.c) && !smtpc_idle(&r.c) && r.c.try_next &&
		      r.res[0].status == SMTPC_R_TEMP);
	}
	{
		static struct run r;
		struct smtpc_params p = P(one, 1);
		static const char s421[] = "220 mx\r\n250 mx\r\n250 ok\r\n421 4.3.2 going away\r\n";

		memset(&r, 0, sizeof r);
		p.keep_open = 1;
		smtpc_init(&r.c, &p, r.res);
		feed(&r, s421, sizeof s421 - 1, 0, "x");
		CHECK(smtpc_done(&r.c) && !smtpc_idle(&r.c) && r.res[0].status == SMTPC_R_TEMP);
	}
	{
		static struct run r;
		struct smtpc_params p = P(one, 1);
		static const char bad_rset[] = "451 4.3.0 busy\r\n";

		memset(&r, 0, sizeof r);
		p.keep_open = 1;
		smtpc_init(&r.c, &p, r.res);
		feed(&r, first, sizeof first - 1, 0, "x");
		CHECK(smtpc_next(&r.c, &p, r.res) == 0);
		feed(&r, bad_rset, sizeof bad_rset - 1, 0, "x");
		CHECK(smtpc_done(&r.c) && !smtpc_idle(&r.c) && r.c.try_next &&
		      r.res[0].status == SMTPC_R_TEMP);
		/* gone while idle: smtpc_abort() ends it without a word */
		smtpc_init(&r.c, &p, r.res);
		feed(&r, first, sizeof first - 1, 0, "x");
		smtpc_abort(&r.c, "4.4.2 lost connection");
		CHECK(smtpc_done(&r.c) && !smtpc_idle(&r.c) && r.res[0].status == SMTPC_R_OK);
	}
}

int main(void)
{
	RUN(test_scripts);
	RUN(test_texts);
	RUN(test_starttls_injection);
	RUN(test_loop);
	RUN(test_peer_name);
	RUN(test_many_rcpts);
	RUN(test_dsn);
	RUN(test_reuse);
	return t_main_end();
}
