/*
 * tests/unit/test_smtpd.c -- the SMTP session state machine, driven with
 * no sockets: the test is the driver.  Every script is fed whole, byte by
 * byte, and split at every offset; the replies and the stored message must
 * be the same every time.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "mta/net/log.h"
#include "mta/smtp/smtpd.h"
#include "policy/cmd.h"
#include "policy/conf.h"
#include "policy/quota.h"

static struct conf conf;

/* What the driver saw. */
struct run {
	char   out[65536];
	size_t outlen;
	char   body[65536];
	size_t bodylen;
	int    committed;
	int    aborted;
	int    closed;
	int    quota_asks;
	uint64_t quota_size[8];     /* ev.size of each QUOTA event */
	char   quota_client[64];    /* ev.env->client of the last one */
	/* The DSN parameters of the last message committed. */
	uint8_t dsn_ret;
	char   dsn_envid[QUEUE_ENVID_MAX + 1];
	uint8_t notify[4];
	char   orcpt[4][QUEUE_ORCPT_MAX + 1];
	/* What the driver answers (kept across runs): */
	int    commit_err;  /* to MSG_END */
	int    quota_mail;  /* to QUOTA at MAIL (enum quota_verdict) */
	int    quota_data;  /* to QUOTA at the end of DATA */
	const char *refuse; /* to MSG_END instead of a commit: smtpd_msg_refused() */
};

static void setup_conf(void)
{
	static const char text[] =
		"hostname mx.test\n"
		"listen 127.0.0.1:2525\n"
		"domain example.test\n"
		"relay-network 10.0.0.0/8\n"
		"queue /nonexistent\n"
		"max-message-size 1000\n"
		"max-recipients 100\n"
		"max-errors 6\n"
		"reject-early-pipelining off\n";
	char err[256];

	conf_defaults(&conf);
	if (conf_parse(text, sizeof text - 1, "test.conf", &conf, err, sizeof err) < 0 ||
	    conf_finish(&conf, "test.conf", err, sizeof err) < 0) {
		fprintf(stderr, "conf: %s\n", err);
		exit(1);
	}
}

static void drain(struct smtpd *s, struct run *r)
{
	struct smtpd_event ev;
	size_t len;
	const char *o;

	while (smtpd_event(s, &ev)) {
		switch (ev.type) {
		case SMTPD_EV_QUOTA:
			if (r->quota_asks < 8)
				r->quota_size[r->quota_asks] = ev.size;
			r->quota_asks++;
			snprintf(r->quota_client, sizeof r->quota_client, "%s", ev.env->client);
			smtpd_quota_done(s, s->pending == SMTPD_P_QUOTA_MAIL ? r->quota_mail
			                                                     : r->quota_data);
			break;
		case SMTPD_EV_MSG_BEGIN:
			smtpd_msg_begun(s, QUEUE_OK, 0x1234, 1700000000);
			break;
		case SMTPD_EV_MSG_DATA:
			if (r->bodylen + ev.len <= sizeof r->body) {
				memcpy(r->body + r->bodylen, ev.data, ev.len);
				r->bodylen += ev.len;
			}
			smtpd_data_done(s, QUEUE_OK);
			break;
		case SMTPD_EV_MSG_END:
			r->committed++;
			r->dsn_ret = ev.env->dsn_ret;
			snprintf(r->dsn_envid, sizeof r->dsn_envid, "%s", ev.env->dsn_envid);
			for (size_t i = 0; i < 4; i++) {
				const struct queue_rcpt *q = i < ev.env->nrcpts ? &ev.env->rcpts[i] : NULL;
				r->notify[i] = q ? q->notify : 0xff;
				snprintf(r->orcpt[i], sizeof r->orcpt[i], "%s", q ? q->orcpt : "-");
			}
			if (r->refuse != NULL)
				smtpd_msg_refused(s, r->refuse, "dkim-fail");
			else
				smtpd_msg_committed(s, r->commit_err);
			break;
		case SMTPD_EV_MSG_ABORT:
			r->aborted++;
			r->bodylen = 0;
			break;
		case SMTPD_EV_CLOSE:
			r->closed = 1;
			break;
		default:
			break;
		}
	}
	o = smtpd_output(s, &len);
	if (r->outlen + len <= sizeof r->out) {
		memcpy(r->out + r->outlen, o, len);
		r->outlen += len;
	}
	smtpd_output_ack(s, len);
}

/* Feed in pieces of at most `step` bytes (0: whole), or split once at
 * `split`; the driver keeps unconsumed bytes like mta/roles/smtp_role.c does. */
static void play(const char *in, size_t inlen, size_t step, size_t split, struct run *r,
                 unsigned flags)
{
	static struct smtpd s;
	struct smtpd_client cl;
	char buf[8192];
	size_t have = 0, off = 0;
	int guard = 0;

	memset(r, 0, offsetof(struct run, commit_err));
	memset(&cl, 0, sizeof cl);
	cl.addr.family = IP_V4;
	cl.addr.a[0] = (flags & 1) ? 10 : 192;
	cl.addr.a[3] = 1;
	strcpy(cl.addr_text, (flags & 1) ? "10.0.0.1" : "192.0.0.1");
	smtpd_init(&s, &conf, &cl, 0);
	smtpd_greet(&s);
	drain(&s, r);
	while ((off < inlen || have > 0) && !r->closed && guard++ < 1000000) {
		size_t chunk = inlen - off, n;

		if (step && chunk > step)
			chunk = step;
		if (split && off < split && off + chunk > split)
			chunk = split - off;
		if (chunk > sizeof buf - have)
			chunk = sizeof buf - have;
		memcpy(buf + have, in + off, chunk);
		have += chunk;
		off += chunk;
		do {
			n = smtpd_feed(&s, buf, have);
			memmove(buf, buf + n, have - n);
			have -= n;
			drain(&s, r);
		} while (n > 0 && have > 0);
		if (off >= inlen && have > 0 && n == 0)
			break; /* a partial line at the end */
	}
	smtpd_free(&s);
}

static int contains(const struct run *r, const char *needle)
{
	size_t n = strlen(needle), i;

	for (i = 0; i + n <= r->outlen; i++)
		if (memcmp(r->out + i, needle, n) == 0)
			return 1;
	return 0;
}

/* Play a script every way and require identical results. */
static void play_all(const char *in, struct run *ref, unsigned flags)
{
	static struct run r;
	size_t len = strlen(in), i;

	r.commit_err = ref->commit_err;
	r.quota_mail = ref->quota_mail;
	r.quota_data = ref->quota_data;
	r.refuse = ref->refuse;
	play(in, len, 0, 0, ref, flags);
	play(in, len, 1, 0, &r, flags);
	CHECKF(r.outlen == ref->outlen && memcmp(r.out, ref->out, r.outlen) == 0,
	       "byte by byte differs for %.40s", in);
	CHECK(r.bodylen == ref->bodylen && memcmp(r.body, ref->body, r.bodylen) == 0);
	for (i = 1; i < len; i++) {
		play(in, len, 0, i, &r, flags);
		CHECKF(r.outlen == ref->outlen && memcmp(r.out, ref->out, r.outlen) == 0,
		       "split at %zu differs", i);
		CHECKF(r.bodylen == ref->bodylen && memcmp(r.body, ref->body, r.bodylen) == 0,
		       "body split at %zu differs", i);
		CHECK(r.committed == ref->committed);
	}
}

static struct run ref;

static void test_full_transaction(void)
{
	play_all("EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nDATA\r\n"
	         "Subject: hi\r\n\r\n..dot\r\nbody\r\n.\r\nQUIT\r\n", &ref, 0);
	CHECK(contains(&ref, "220 mx.test ESMTP moat\r\n"));
	CHECK(contains(&ref, "250-mx.test Hello [192.0.0.1]\r\n"));
	CHECK(contains(&ref, "250-PIPELINING\r\n"));
	CHECK(contains(&ref, "250-SIZE 1000\r\n"));
	CHECK(contains(&ref, "250 SMTPUTF8\r\n"));
	CHECK(contains(&ref, "250 2.1.0 Sender OK\r\n"));
	CHECK(contains(&ref, "250 2.1.5 Recipient OK\r\n"));
	CHECK(contains(&ref, "354 "));
	CHECK(contains(&ref, "250 2.0.0 OK: queued as 0000000000001234\r\n"));
	CHECK(contains(&ref, "221 2.0.0 mx.test closing connection\r\n"));
	CHECK(ref.committed == 1);
	CHECK(ref.closed);
	CHECKF(ref.bodylen > 0 && memcmp(ref.body, "Received: from c.test ([192.0.0.1])", 35) == 0,
	       "%.*s", (int)ref.bodylen, ref.body);
	CHECK(strstr(ref.body, "id 0000000000001234") != NULL);
	CHECK(strstr(ref.body, "\r\n\r\n.dot\r\nbody\r\n") != NULL);
	CHECK(ref.bodylen >= 6 && memcmp(ref.body + ref.bodylen - 6, "body\r\n", 6) == 0);
}

static void test_sequence_errors(void)
{
	play_all("MAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nHELO c\r\nDATA\r\n"
	         "RCPT TO:<x@example.test>\r\nMAIL FROM:<a@b.test>\r\nMAIL FROM:<a@b.test>\r\nQUIT\r\n",
	         &ref, 0);
	CHECK(contains(&ref, "503 5.5.1 Send HELO/EHLO first\r\n"));
	CHECK(contains(&ref, "503 5.5.1 Need MAIL before RCPT\r\n"));
	CHECK(contains(&ref, "503 5.5.1 Need RCPT before DATA\r\n"));
	CHECK(contains(&ref, "503 5.5.1 Sender already specified\r\n"));
	CHECK(ref.committed == 0);
}

static void test_relay_denied_and_no_valid_rcpt(void)
{
	play_all("EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@foreign.test>\r\n"
	         "RCPT TO:<user%foreign.test@example.test>\r\nDATA\r\nQUIT\r\n", &ref, 0);
	CHECK(contains(&ref, "554 5.7.1 <x@foreign.test>: Relay access denied\r\n"));
	CHECK(contains(&ref, "(routing characters in local part)\r\n"));
	CHECK(contains(&ref, "554 5.5.1 No valid recipients\r\n"));
	/* From a relay network the same recipient is fine. */
	play_all("EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@foreign.test>\r\nQUIT\r\n", &ref, 1);
	CHECK(contains(&ref, "250 2.1.5 Recipient OK\r\n"));
}

static void test_smuggling(void)
{
	/* "\n.\n" is content; the smuggled MAIL must never run. */
	play_all("EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nDATA\r\n"
	         "hi\n.\nMAIL FROM:<evil@b.test>\r\nRCPT TO:<y@example.test>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n",
	         &ref, 0);
	CHECK(contains(&ref, "554 5.6.0 Bare CR or LF in message data; message rejected\r\n"));
	CHECK(ref.committed == 0);
	CHECK(ref.aborted == 1);
	CHECK(contains(&ref, "221 2.0.0"));
	/* exactly one 250 2.1.0 (the real MAIL) */
	CHECK(strstr(strstr(ref.out, "250 2.1.0") + 1, "250 2.1.0") == NULL);
}

static void test_bad_command_lines(void)
{
	play_all("EHLO c\r\nNOOP\nRSET\r\nNO\rOP\r\nFOO\r\nRSET x\r\nMAIL FROM:<a@b.test> FOO=1\r\n"
	         "MAIL FROM:<a b>\r\nQUIT\r\n", &ref, 0);
	/* NOOP\nRSET\r\n is one broken line: one 500, and RSET never runs. */
	CHECK(contains(&ref, "250 SMTPUTF8\r\n500 5.5.2 Bare CR or LF in command line\r\n"
	                     "500 5.5.2 Bare CR or LF in command line\r\n500 5.5.1 Command"));
	CHECK(contains(&ref, "500 5.5.1 Command unrecognized\r\n"));
	CHECK(contains(&ref, "501 5.5.4 Syntax error in parameters\r\n"));
	CHECK(contains(&ref, "555 5.5.4 Unsupported parameter FOO\r\n"));
	CHECK(contains(&ref, "501 5.1.7 Bad sender address syntax\r\n"));
	/* 6 errors = max-errors: 421 and close before the final QUIT runs */
	CHECK(contains(&ref, "421 4.7.0 mx.test Too many errors, closing connection\r\n"));
	CHECK(!contains(&ref, "221 "));
}

/* The replies after the EHLO block of a script (which starts with
 * "EHLO c\r\n") must be exactly want. */
static void after_ehlo(const struct run *r, const char *want)
{
	static const char ehlo_end[] = "250 SMTPUTF8\r\n";
	const char *p = NULL;

	for (size_t i = 0; i + sizeof ehlo_end - 1 <= r->outlen && p == NULL; i++)
		if (memcmp(r->out + i, ehlo_end, sizeof ehlo_end - 1) == 0)
			p = r->out + i + sizeof ehlo_end - 1;
	CHECKF(p != NULL && (size_t)(r->out + r->outlen - p) == strlen(want) &&
	       memcmp(p, want, strlen(want)) == 0, "want '%s', got '%.*s'", want, (int)r->outlen,
	       r->out);
}

static void test_bare_lf_discards_line(void)
{
	/* A bare LF breaks the line, which runs to the next CRLF: the MAIL
	 * behind it is part of it, never a command (else the second MAIL
	 * would get "Sender already specified"). */
	play_all("EHLO c\r\nNOOP\nMAIL FROM:<a@b.test>\r\nMAIL FROM:<a@b.test>\r\nQUIT\r\n", &ref, 0);
	after_ehlo(&ref, "500 5.5.2 Bare CR or LF in command line\r\n250 2.1.0 Sender OK\r\n"
	                 "221 2.0.0 mx.test closing connection\r\n");
	/* Several bare LFs in one line: still one line, one 500. */
	play_all("EHLO c\r\nNOOP\nRSET\nDATA\nMAIL FROM:<a@b.test>\r\nNOOP\r\nQUIT\r\n", &ref, 0);
	after_ehlo(&ref, "500 5.5.2 Bare CR or LF in command line\r\n250 2.0.0 OK\r\n"
	                 "221 2.0.0 mx.test closing connection\r\n");
	/* The same as a bare CR's line, answered once. */
	play_all("EHLO c\r\nNOOP\rMAIL FROM:<a@b.test>\r\nMAIL FROM:<a@b.test>\r\nQUIT\r\n", &ref, 0);
	after_ehlo(&ref, "500 5.5.2 Bare CR or LF in command line\r\n250 2.1.0 Sender OK\r\n"
	                 "221 2.0.0 mx.test closing connection\r\n");
	/* Inside a transaction: DATA after a bare LF does not start one. */
	play_all("EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nX\nDATA\r\n"
	         "RSET\r\nQUIT\r\n", &ref, 0);
	after_ehlo(&ref, "250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n"
	                 "500 5.5.2 Bare CR or LF in command line\r\n250 2.0.0 OK\r\n"
	                 "221 2.0.0 mx.test closing connection\r\n");
	CHECK(ref.committed == 0);
}

static void test_bare_lf_long_rest(void)
{
	/* The rest of a broken line may be longer than a line may be: it is
	 * thrown away quietly all the same, up to its CRLF, wherever the
	 * input is split (the CR and LF may arrive apart). */
	static char in[8000];
	size_t n;

	strcpy(in, "EHLO c\r\nNOOP\n");
	n = strlen(in);
	memset(in + n, 'a', 5000);
	strcpy(in + n + 5000, "\r\nNOOP\r\nQUIT\r\n");
	play_all(in, &ref, 0);
	after_ehlo(&ref, "500 5.5.2 Bare CR or LF in command line\r\n250 2.0.0 OK\r\n"
	                 "221 2.0.0 mx.test closing connection\r\n");
	/* A broken line exactly one limit long after its LF. */
	strcpy(in, "EHLO c\r\nNOOP\n");
	n = strlen(in);
	memset(in + n, 'b', SMTP_LINE_MAX - 1);
	strcpy(in + n + SMTP_LINE_MAX - 1, "\r\nNOOP\r\nQUIT\r\n");
	play_all(in, &ref, 0);
	after_ehlo(&ref, "500 5.5.2 Bare CR or LF in command line\r\n250 2.0.0 OK\r\n"
	                 "221 2.0.0 mx.test closing connection\r\n");
}

static void test_long_line(void)
{
	static char in[8000];
	size_t n;

	strcpy(in, "EHLO c\r\nNOOP ");
	n = strlen(in);
	memset(in + n, 'a', 5000);
	strcpy(in + n + 5000, "QUIT\r\nNOOP\r\nQUIT\r\n");
	play_all(in, &ref, 0);
	CHECK(contains(&ref, "500 5.5.2 Line too long\r\n"));
	CHECK(contains(&ref, "250 2.0.0 OK\r\n")); /* the NOOP after it */
	CHECK(contains(&ref, "221 "));
}

static void test_size(void)
{
	static char in[4000];
	size_t n;

	play_all("EHLO c\r\nMAIL FROM:<a@b.test> SIZE=1001\r\nMAIL FROM:<a@b.test> SIZE=x\r\nQUIT\r\n",
	         &ref, 0);
	CHECK(contains(&ref, "552 5.3.4 Message size exceeds fixed maximum message size\r\n"));
	CHECK(contains(&ref, "501 5.5.4 Bad SIZE parameter\r\n"));
	strcpy(in, "EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nDATA\r\n");
	n = strlen(in);
	memset(in + n, 'b', 1500);
	strcpy(in + n + 1500, "\r\n.\r\nNOOP\r\nQUIT\r\n");
	play_all(in, &ref, 0);
	CHECK(contains(&ref, "552 5.3.4 Message size exceeds fixed maximum message size\r\n"));
	CHECK(ref.committed == 0);
	CHECK(contains(&ref, "250 2.0.0 OK\r\n"));
}

/* RFC 3461: the parameters reach the envelope (whole, byte by byte, split
 * anywhere); bad, repeated and conflicting ones get their 501; none
 * without EHLO; a new transaction starts without the last one's. */
static void test_dsn_params(void)
{
	play_all("EHLO c\r\nMAIL FROM:<a@b.test> RET=HDRS ENVID=QQ+2B314159 SIZE=10\r\n"
	         "RCPT TO:<x@example.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;old+2Bx@example.test\r\n"
	         "RCPT TO:<y@example.test>\r\n"
	         "RCPT TO:<z@example.test> orcpt=utf-8;caf\\x{E9}@example.test notify=never\r\n"
	         "DATA\r\nSubject: dsn\r\n\r\nhi\r\n.\r\n"
	         "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test> NOTIFY=FAILURE\r\n"
	         "DATA\r\nhi\r\n.\r\nQUIT\r\n", &ref, 0);
	CHECK(contains(&ref, "250-DSN\r\n"));
	CHECK(ref.committed == 2);
	/* The second message: its own parameters only. */
	CHECK(ref.dsn_ret == DSN_RET_NONE && ref.dsn_envid[0] == 0);
	CHECK(ref.notify[0] == DSN_NOTIFY_FAILURE && ref.orcpt[0][0] == 0 && ref.notify[1] == 0xff);
	play_all("EHLO c\r\nMAIL FROM:<a@b.test> RET=HDRS ENVID=QQ+2B314159 SIZE=10\r\n"
	         "RCPT TO:<x@example.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;old+2Bx@example.test\r\n"
	         "RCPT TO:<y@example.test>\r\n"
	         "RCPT TO:<z@example.test> orcpt=utf-8;caf\\x{E9}@example.test notify=never\r\n"
	         "DATA\r\nSubject: dsn\r\n\r\nhi\r\n.\r\nQUIT\r\n", &ref, 0);
	CHECK(ref.committed == 1 && ref.dsn_ret == DSN_RET_HDRS);
	CHECK(strcmp(ref.dsn_envid, "QQ+2B314159") == 0);
	CHECK(ref.notify[0] == (DSN_NOTIFY_SUCCESS | DSN_NOTIFY_DELAY));
	CHECK(strcmp(ref.orcpt[0], "rfc822;old+2Bx@example.test") == 0);
	CHECK(ref.notify[1] == 0 && ref.orcpt[1][0] == 0);
	CHECK(ref.notify[2] == DSN_NOTIFY_NEVER);
	CHECK(strcmp(ref.orcpt[2], "utf-8;caf\\x{E9}@example.test") == 0);

	play_all("EHLO c\r\nMAIL FROM:<a@b.test> RET=FULL RET=HDRS\r\n"
	         "MAIL FROM:<a@b.test> RET=ALL\r\n"
	         "MAIL FROM:<a@b.test> ENVID=a+0Db\r\n"
	         "MAIL FROM:<a@b.test> NOTIFY=NEVER\r\n"
	         "MAIL FROM:<a@b.test> ENVID=x\r\n"
	         "RCPT TO:<x@example.test> NOTIFY=NEVER,SUCCESS\r\n"
	         "QUIT\r\n", &ref, 0);
	after_ehlo(&ref, "501 5.5.4 Duplicate RET parameter\r\n"
	                 "501 5.5.4 Bad RET parameter\r\n"
	                 "501 5.5.4 Bad ENVID parameter\r\n"
	                 "555 5.5.4 Unsupported parameter NOTIFY\r\n"
	                 "250 2.1.0 Sender OK\r\n"
	                 "501 5.5.4 Bad NOTIFY parameter: NEVER with another value\r\n"
	                 "221 2.0.0 mx.test closing connection\r\n");
	play_all("EHLO c\r\nMAIL FROM:<a@b.test>\r\n"
	         "RCPT TO:<x@example.test> NOTIFY=DELAY NOTIFY=DELAY\r\n"
	         "RCPT TO:<x@example.test> ORCPT=rfc822;a ORCPT=rfc822;a\r\n"
	         "RCPT TO:<x@example.test> ORCPT=a@b\r\n"
	         "RCPT TO:<x@example.test> NOTIFY=SOMETIMES\r\n"
	         "RCPT TO:<x@example.test> RET=FULL\r\n"
	         "QUIT\r\n", &ref, 0);
	after_ehlo(&ref, "250 2.1.0 Sender OK\r\n"
	                 "501 5.5.4 Duplicate NOTIFY parameter\r\n"
	                 "501 5.5.4 Duplicate ORCPT parameter\r\n"
	                 "501 5.5.4 Bad ORCPT parameter\r\n"
	                 "501 5.5.4 Bad NOTIFY parameter\r\n"
	                 "555 5.5.4 Unsupported parameter RET\r\n"
	                 "221 2.0.0 mx.test closing connection\r\n");
	/* After HELO there are no ESMTP parameters at all. */
	play_all("HELO c\r\nMAIL FROM:<a@b.test> RET=FULL\r\nMAIL FROM:<a@b.test>\r\n"
	         "RCPT TO:<x@example.test> NOTIFY=NEVER\r\nQUIT\r\n", &ref, 0);
	CHECK(contains(&ref, "555 5.5.4 Unsupported parameter RET\r\n"));
	CHECK(contains(&ref, "555 5.5.4 Unsupported parameter NOTIFY\r\n"));
}

static void test_commit_failure(void)
{
	ref.commit_err = QUEUE_EFULL;
	play_all("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<x@example.test>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n", &ref, 0);
	ref.commit_err = 0;
	CHECK(contains(&ref, "452 4.3.1 Insufficient system storage\r\n"));
}

/* The driver refuses the message at its end (a DKIM signature it could
 * not make): the reply it gives, the transaction over, the session on. */
static void test_message_refused(void)
{
	static const char text[] = "451 4.3.0 Cannot sign the message (DKIM), try again later";
	static struct smtpd s;
	struct smtpd_client cl;

	ref.refuse = text;
	play_all("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<x@example.test>\r\nDATA\r\nx\r\n.\r\n"
	         "MAIL FROM:<>\r\nRCPT TO:<x@example.test>\r\nDATA\r\ny\r\n.\r\nQUIT\r\n", &ref, 0);
	ref.refuse = NULL;
	CHECK(ref.committed == 2 && !contains(&ref, "250 2.0.0 OK"));
	CHECK(contains(&ref, "354 End data with <CR><LF>.<CR><LF>\r\n451 4.3.0 Cannot sign the "
	               "message (DKIM), try again later\r\n250 2.1.0 Sender OK\r\n"));
	CHECK(contains(&ref, "451 4.3.0 Cannot sign the message (DKIM), try again later\r\n221 "));
	/* Not waiting for a message's end: nothing happens. */
	memset(&cl, 0, sizeof cl);
	cl.addr.family = IP_V4;
	smtpd_init(&s, &conf, &cl, 0);
	smtpd_greet(&s);
	smtpd_output_ack(&s, sizeof s.out);
	smtpd_msg_refused(&s, text, "dkim-fail");
	size_t len;
	smtpd_output(&s, &len);
	CHECK(len == 0 && s.state == SMTPD_S_INIT);
	smtpd_free(&s);
}

static const char two_messages[] =
	"EHLO c\r\nMAIL FROM:<a@b.test> SIZE=500\r\nRCPT TO:<x@example.test>\r\nDATA\r\n"
	"one\r\n.\r\n"
	"MAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nDATA\r\ntwo\r\n.\r\nQUIT\r\n";

static void test_quota_asked(void)
{
	/* The driver is asked at MAIL (SIZE= or 0) and at the end of DATA
	 * (the body as stored, Received: included), for this client. */
	play_all(two_messages, &ref, 0);
	CHECK(ref.committed == 2);
	CHECK(ref.quota_asks == 4);
	CHECK(ref.quota_size[0] == 500 && ref.quota_size[2] == 0);
	CHECK(ref.quota_size[1] > 5 && ref.quota_size[1] < 300);
	CHECK(ref.quota_size[3] == ref.quota_size[1]);   /* "one" and "two": as long */
	CHECK(strcmp(ref.quota_client, "192.0.0.1") == 0);
}

static void test_quota_full_at_mail(void)
{
	/* Pipelined: the RCPT after a refused MAIL has no transaction. */
	ref.quota_mail = QUOTA_DISK;
	play_all("EHLO c\r\nMAIL FROM:<a@b.test> SIZE=500\r\nRCPT TO:<x@example.test>\r\n"
	         "DATA\r\nNOOP\r\nQUIT\r\n", &ref, 0);
	ref.quota_mail = QUOTA_OK;
	CHECK(contains(&ref, "250 SMTPUTF8\r\n452 4.3.1 Insufficient system storage\r\n"
	                     "503 5.5.1 Need MAIL before RCPT\r\n"
	                     "503 5.5.1 Need RCPT before DATA\r\n"));
	CHECK(!contains(&ref, "250 2.1.0"));
	CHECK(contains(&ref, "250 2.0.0 OK\r\n221 "));
	CHECK(ref.committed == 0 && ref.quota_asks == 1);
}

static void test_quota_full_at_data(void)
{
	/* Room at MAIL, none once the body is in: 452 after the terminator,
	 * the draft dropped, and the session goes on. */
	ref.quota_data = QUOTA_BYTES;
	play_all(two_messages, &ref, 0);
	ref.quota_data = QUOTA_OK;
	CHECK(ref.committed == 0 && ref.aborted == 2 && ref.quota_asks == 4);
	CHECK(contains(&ref, "354 End data with <CR><LF>.<CR><LF>\r\n"
	                     "452 4.3.1 Insufficient system storage\r\n250 2.1.0 Sender OK\r\n"));
	CHECK(!contains(&ref, "queued as"));
	CHECK(contains(&ref, "221 2.0.0"));
}

static void test_messages_per_connection(void)
{
	unsigned saved = conf.max_messages_per_connection;

	conf.max_messages_per_connection = 1;
	play_all(two_messages, &ref, 0);
	conf.max_messages_per_connection = saved;
	CHECK(ref.committed == 1 && ref.closed);
	CHECK(contains(&ref, "queued as 0000000000001234\r\n"
	                     "421 4.7.0 mx.test Too many messages in one connection, closing\r\n"));
	CHECK(!contains(&ref, "221 "));
	/* A failed message does not count. */
	ref.commit_err = QUEUE_EFULL;
	conf.max_messages_per_connection = 1;
	play_all(two_messages, &ref, 0);
	conf.max_messages_per_connection = saved;
	ref.commit_err = QUEUE_OK;
	CHECK(ref.committed == 2 && !contains(&ref, "421 "));
}

#define JUNK_421 "421 4.7.0 mx.test Too many junk commands, closing connection\r\n"

static void test_junk_commands(void)
{
	unsigned saved = conf.max_junk_commands;

	conf.max_junk_commands = 3;
	/* NOOP, RSET, VRFY count; HELP is the fourth: 421, and QUIT never runs. */
	play_all("EHLO c\r\nNOOP\r\nRSET\r\nVRFY x\r\nHELP\r\nQUIT\r\n", &ref, 0);
	after_ehlo(&ref, "250 2.0.0 OK\r\n250 2.0.0 OK\r\n252 2.5.0 Cannot VRFY user; try RCPT\r\n"
	                 JUNK_421);
	CHECK(ref.closed);
	/* HELP counts as well, and so do failed commands: the fourth here is
	 * an unknown command, answered, then the 421. */
	play_all("EHLO c\r\nHELP\r\nFOO\r\nNOOP\r\nBAR\r\nQUIT\r\n", &ref, 0);
	after_ehlo(&ref, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\r\n"
	                 "500 5.5.1 Command unrecognized\r\n250 2.0.0 OK\r\n"
	                 "500 5.5.1 Command unrecognized\r\n" JUNK_421);
	/* A queued message forgives: three before it, three after it. */
	play_all("EHLO c\r\nNOOP\r\nNOOP\r\nRSET\r\nMAIL FROM:<a@b.test>\r\n"
	         "RCPT TO:<x@example.test>\r\nDATA\r\nx\r\n.\r\nNOOP\r\nNOOP\r\nNOOP\r\nQUIT\r\n",
	         &ref, 0);
	CHECK(ref.committed == 1 && !contains(&ref, "421 ") && contains(&ref, "221 2.0.0"));
	/* 0: no limit. */
	conf.max_junk_commands = 0;
	play_all("EHLO c\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nQUIT\r\n", &ref, 0);
	CHECK(!contains(&ref, "421 ") && contains(&ref, "221 2.0.0"));
	conf.max_junk_commands = saved;
}

static void test_junk_commands_default(void)
{
	/* The default, 100: the hundredth NOOP is answered, the 101st is not. */
	static char in[1024];
	static char want[2048];

	want[0] = 0;

	CHECK(conf.max_junk_commands == 100);
	strcpy(in, "EHLO c\r\n");
	for (int i = 0; i < 101; i++)
		strcat(in, "NOOP\r\n");
	strcat(in, "QUIT\r\n");
	for (int i = 0; i < 100; i++)
		strcat(want, "250 2.0.0 OK\r\n");
	strcat(want, JUNK_421);
	play_all(in, &ref, 0);
	after_ehlo(&ref, want);
	CHECK(ref.closed);
}

static void test_deadline(void)
{
	static struct smtpd s;
	struct smtpd_client cl;
	struct smtpd_event ev;
	static const char in[] = "EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\n"
	                         "DATA\r\n";
	size_t len, off = 0;

	memset(&cl, 0, sizeof cl);
	cl.addr.family = IP_V4;
	smtpd_init(&s, &conf, &cl, 0);
	smtpd_greet(&s);
	CHECK(smtpd_deadline_secs(&s) == 0 && smtpd_timeout_secs(&s) == conf.timeout_command);
	for (int guard = 0; off < sizeof in - 1 && guard < 100; guard++) {
		off += smtpd_feed(&s, in + off, sizeof in - 1 - off);
		while (smtpd_event(&s, &ev)) {
			if (ev.type == SMTPD_EV_QUOTA)
				smtpd_quota_done(&s, QUOTA_OK);
			else if (ev.type == SMTPD_EV_MSG_BEGIN)
				smtpd_msg_begun(&s, QUEUE_OK, 7, 0);
		}
	}
	CHECK(s.state == SMTPD_S_DATA);
	CHECK(smtpd_deadline_secs(&s) == 1200 && smtpd_timeout_secs(&s) == conf.timeout_data);
	smtpd_timeout(&s);
	CHECK(strstr(smtpd_output(&s, &len), "421 4.4.2 mx.test Timeout, closing connection\r\n"));
	CHECK(smtpd_event(&s, &ev) && ev.type == SMTPD_EV_MSG_ABORT);
	smtpd_free(&s);
}

static void test_early_talker(void)
{
	static struct smtpd s;
	struct smtpd_client cl;
	struct smtpd_event ev;
	size_t len;

	memset(&cl, 0, sizeof cl);
	cl.addr.family = IP_V4;
	smtpd_init(&s, &conf, &cl, 0);
	CHECK(smtpd_feed(&s, "EHLO x\r\n", 8) == 8);
	CHECK(strncmp(smtpd_output(&s, &len), "554 5.5.0 ", 10) == 0);
	CHECK(smtpd_event(&s, &ev) && ev.type == SMTPD_EV_CLOSE);
	smtpd_free(&s);
}

/* The driver's input buffer: bytes are appended, the session takes whole
 * lines, the rest waits for more (as in mta/roles/smtp_role.c). */
static char held[8192];
static size_t nheld;

static void feed(struct smtpd *s, const char *in, size_t len, struct run *r)
{
	size_t n;
	int guard = 0;

	memcpy(held + nheld, in, len);
	nheld += len;
	do {
		n = smtpd_feed(s, held, nheld);
		memmove(held, held + n, nheld - n);
		nheld -= n;
		drain(s, r);
	} while (n > 0 && nheld > 0 && !r->closed && guard++ < 100000);
}

static void stop(struct smtpd *s, int force)
{
	smtpd_shutdown(s, force);
}

/* A session that ran `before` (NULL: not even greeted), then act(s, arg)
 * (the server stopping, the session's time over), then `after` fed whole
 * and split at every offset: the output after act must be `want` every
 * time, and the session closed. */
static void interrupt_case(const char *before, void (*act)(struct smtpd *, int), int arg,
                           const char *after, const char *want, int committed)
{
	static struct smtpd s;
	static struct run r;
	struct smtpd_client cl;
	size_t alen = strlen(after), mark;

	for (size_t split = 0; split <= alen; split++) {
		memset(&r, 0, sizeof r);
		nheld = 0;
		memset(&cl, 0, sizeof cl);
		cl.addr.family = IP_V4;
		smtpd_init(&s, &conf, &cl, 0);
		if (before != NULL) {
			smtpd_greet(&s);
			feed(&s, before, strlen(before), &r);
		}
		mark = r.outlen;
		act(&s, arg);
		drain(&s, &r);
		feed(&s, after, split, &r);
		feed(&s, after + split, alen - split, &r);
		CHECKF(r.outlen - mark == strlen(want) && memcmp(r.out + mark, want, strlen(want)) == 0,
		       "split %zu: got '%.*s'", split, (int)(r.outlen - mark), r.out + mark);
		CHECKF(r.closed && r.committed == committed, "split %zu: closed %d committed %d", split,
		       r.closed, r.committed);
		smtpd_free(&s);
		if (alen == 0)
			break;
	}
}

static void test_shutdown(void)
{
	static const char bye[] = "421 4.3.2 mx.test Service shutting down\r\n";
	static const char data[] = "EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\n"
	                           "DATA\r\nSubject: s\r\n\r\nfirst\r\n";

	/* Between transactions, before the greeting: 421 at once. */
	interrupt_case("EHLO c\r\n", stop, 0, "", bye, 0);
	interrupt_case(NULL, stop, 0, "", bye, 0);
	/* In DATA: the message ends and is acknowledged, then 421; the MAIL
	 * pipelined behind it starts nothing. */
	interrupt_case(data, stop, 0, "second\r\n.\r\nMAIL FROM:<c@b.test>\r\n",
	          "250 2.0.0 OK: queued as 0000000000001234\r\n421 4.3.2 mx.test Service shutting "
	          "down\r\n", 1);
	/* After MAIL: the transaction may go on; a RSET ends it, then 421. */
	interrupt_case("EHLO c\r\nMAIL FROM:<a@b.test>\r\n", stop, 0,
	          "RCPT TO:<x@example.test>\r\nRSET\r\nNOOP\r\n",
	          "250 2.1.5 Recipient OK\r\n250 2.0.0 OK\r\n421 4.3.2 mx.test Service shutting "
	          "down\r\n", 0);
	/* The deadline: 421 now, the unfinished message dropped. */
	interrupt_case(data, stop, 1, "second\r\n.\r\n", bye, 0);
}

static void expire(struct smtpd *s, int arg)
{
	(void)arg;
	CHECK(smtpd_session_secs(s) == 3600);
	smtpd_session_expired(s);
	CHECK(smtpd_session_secs(s) == 0);
	CHECK(strcmp(s->close_reason, "session-time") == 0);
}

#define LATE "421 4.4.2 mx.test Session time limit reached, closing connection\r\n"

static void test_session_time(void)
{
	static const char data[] = "EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\n"
	                           "DATA\r\nSubject: s\r\n\r\nfirst\r\n";

	/* Whatever the state: 421, nothing more is read, a message not yet
	 * answered is dropped. */
	interrupt_case("EHLO c\r\n", expire, 0, "NOOP\r\nQUIT\r\n", LATE, 0);
	interrupt_case("EHLO c\r\nMAIL FROM:<a@b.test>\r\n", expire, 0,
	               "RCPT TO:<x@example.test>\r\n", LATE, 0);
	interrupt_case(data, expire, 0, "second\r\n.\r\nQUIT\r\n", LATE, 0);
	interrupt_case("", expire, 0, "EHLO c\r\n", LATE, 0);
}

static void session_time_in_commit(int refuse)
{
	/* A message whose commit is under way gets its answer (a 250, or the
	 * driver's refusal), then the 421. */
	static struct smtpd s;
	static const char in[] = "EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\n"
	                         "DATA\r\nx\r\n.\r\n";
	struct smtpd_client cl;
	struct smtpd_event ev;
	size_t len, off = 0;
	int committing = 0;

	memset(&cl, 0, sizeof cl);
	cl.addr.family = IP_V4;
	smtpd_init(&s, &conf, &cl, 0);
	smtpd_greet(&s);
	for (int guard = 0; !committing && guard < 100; guard++) {
		off += smtpd_feed(&s, in + off, sizeof in - 1 - off);
		while (!committing && smtpd_event(&s, &ev)) {
			if (ev.type == SMTPD_EV_QUOTA)
				smtpd_quota_done(&s, QUOTA_OK);
			else if (ev.type == SMTPD_EV_MSG_BEGIN)
				smtpd_msg_begun(&s, QUEUE_OK, 7, 0);
			else if (ev.type == SMTPD_EV_MSG_DATA)
				smtpd_data_done(&s, QUEUE_OK);
			else if (ev.type == SMTPD_EV_MSG_END)
				committing = 1;
		}
	}
	CHECK(committing && s.state == SMTPD_S_WAIT_COMMIT);
	smtpd_output_ack(&s, sizeof s.out);
	smtpd_session_expired(&s);
	smtpd_output(&s, &len);
	CHECK(len == 0 && !smtpd_closing(&s) && smtpd_session_secs(&s) == 0);
	if (refuse)
		smtpd_msg_refused(&s, "554 5.6.0 The message header cannot be signed (DKIM)", "dkim-fail");
	else
		smtpd_msg_committed(&s, QUEUE_OK);
	{
		const char *want = refuse ? "554 5.6.0 The message header cannot be signed (DKIM)\r\n" LATE
		                          : "250 2.0.0 OK: queued as 0000000000000007\r\n" LATE;
		const char *out = smtpd_output(&s, &len);

		CHECKF(len == strlen(want) && memcmp(out, want, len) == 0, "got '%.*s'", (int)len, out);
	}
	CHECK(smtpd_closing(&s) && smtpd_event(&s, &ev) && ev.type == SMTPD_EV_CLOSE);
	smtpd_free(&s);
}

static void test_session_time_in_commit(void)
{
	session_time_in_commit(0);
	session_time_in_commit(1);
}

int main(void)
{
	log_init("test", LOG_OFF);
	setup_conf();
	RUN(test_full_transaction);
	RUN(test_sequence_errors);
	RUN(test_relay_denied_and_no_valid_rcpt);
	RUN(test_smuggling);
	RUN(test_bad_command_lines);
	RUN(test_long_line);
	RUN(test_size);
	RUN(test_dsn_params);
	RUN(test_commit_failure);
	RUN(test_message_refused);
	RUN(test_quota_asked);
	RUN(test_quota_full_at_mail);
	RUN(test_quota_full_at_data);
	RUN(test_messages_per_connection);
	RUN(test_bare_lf_discards_line);
	RUN(test_bare_lf_long_rest);
	RUN(test_junk_commands);
	RUN(test_junk_commands_default);
	RUN(test_deadline);
	RUN(test_session_time);
	RUN(test_session_time_in_commit);
	RUN(test_early_talker);
	RUN(test_shutdown);
	return t_main_end();
}
