/*
 * tests/unit/test_smtpd_edge.c -- the session's edge defenses, driven with
 * no sockets: early pipelining, HELO and sender sanity, the tarpit's held
 * replies (the driver sees nothing until it answers the DELAY), the DNSBL
 * verdict at RCPT and the 554 greeting, and the counters.
 *
 * The driver here feeds each step separately (as a client that waits for
 * every reply does) unless a step says it is pipelined, and records what
 * smtpd_output() released after each step.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "mta/net/log.h"
#include "mta/smtp/smtpd.h"
#include "policy/conf.h"
#include "policy/quota.h"

static const char base_conf[] =
	"hostname mx.test\n"
	"listen 192.0.2.25:25\n"
	"domain example.test\n"
	"relay-network 10.0.0.0/8\n"
	"queue /nonexistent\n"
	"max-errors 6\n";

struct drv {
	struct conf          conf;
	struct smtpd         s;
	struct edge_counters ec;
	char                 out[16384];   /* released output, all of it */
	size_t               outlen;
	unsigned             delays[16];   /* ms of each DELAY handed out */
	unsigned             ndelays;
	int                  delay_due;    /* a DELAY not yet answered */
	int                  dnsbl_asks;
	const char          *dnsbl_answer; /* what to answer a DNSBL event */
	int                  closed;
};

static struct drv d;

static void setup(const char *extra, const char *client, int greet)
{
	char text[2048], err[256];
	struct smtpd_client cl;

	smtpd_free(&d.s);   /* the previous case's session (a zeroed one is fine) */
	memset(&d, 0, sizeof d);
	snprintf(text, sizeof text, "%s%s", base_conf, extra);
	conf_defaults(&d.conf);
	if (conf_parse(text, strlen(text), "t.conf", &d.conf, err, sizeof err) < 0 ||
	    conf_finish(&d.conf, "t.conf", err, sizeof err) < 0) {
		fprintf(stderr, "conf: %s\n", err);
		exit(1);
	}
	memset(&cl, 0, sizeof cl);
	ip_parse(client, strlen(client), &cl.addr);
	snprintf(cl.addr_text, sizeof cl.addr_text, "%s", client);
	ip_parse("192.0.2.99", 10, &cl.local);
	smtpd_init(&d.s, &d.conf, &cl, 0);
	d.s.counters = &d.ec;
	if (greet)
		smtpd_greet(&d.s);
}

static void drain(void);

/* setup(), and the greeting taken. */
static void setup_greeted(const char *extra, const char *client)
{
	setup(extra, client, 1);
	drain();
}

/* Answer events (but not a DELAY: the test does, with release()), then
 * take what the session lets out. */
static void drain(void)
{
	struct smtpd_event ev;
	const char *o;
	size_t len;

	while (smtpd_event(&d.s, &ev)) {
		switch (ev.type) {
		case SMTPD_EV_QUOTA:
			smtpd_quota_done(&d.s, QUOTA_OK);
			break;
		case SMTPD_EV_DELAY:
			if (d.ndelays < 16)
				d.delays[d.ndelays] = ev.ms;
			d.ndelays++;
			d.delay_due = 1;
			break;
		case SMTPD_EV_DNSBL:
			d.dnsbl_asks++;
			smtpd_dnsbl_done(&d.s, d.dnsbl_answer);
			break;
		case SMTPD_EV_CLOSE:
			d.closed = 1;
			break;
		default:
			break;
		}
	}
	o = smtpd_output(&d.s, &len);
	if (d.outlen + len < sizeof d.out) {
		memcpy(d.out + d.outlen, o, len);
		d.outlen += len;
		d.out[d.outlen] = 0;
	}
	smtpd_output_ack(&d.s, len);
}

/* Feed in as few calls as the session takes it; returns the bytes it did
 * not take (0: all). */
static size_t feed(const char *in)
{
	size_t len = strlen(in), used = 0, n;

	drain();
	do {
		n = smtpd_feed(&d.s, in + used, len - used);
		used += n;
		drain();
	} while (n > 0 && used < len);
	return len - used;
}

static void release(void)
{
	d.delay_due = 0;
	smtpd_delay_done(&d.s);
	drain();
}

/* The output released since mark, as a string. */
static const char *since(size_t mark)
{
	return d.out + mark;
}

/* With extra config, from client: is "EHLO helo" then "MAIL FROM:sender"
 * answered 250? */
static int mail_accepted(const char *extra, const char *client, const char *helo,
                         const char *sender)
{
	char line[300];
	size_t m;

	setup_greeted(extra, client);
	snprintf(line, sizeof line, "EHLO %s\r\n", helo);
	feed(line);
	m = d.outlen;
	snprintf(line, sizeof line, "MAIL FROM:%s\r\n", sender);
	feed(line);
	return strcmp(since(m), "250 2.1.0 Sender OK\r\n") == 0;
}

static void test_early_pipelining(void)
{
	size_t m;

	/* EHLO and MAIL in one packet, before the EHLO reply: 554, closed */
	setup_greeted("", "192.0.2.1");
	m = d.outlen;
	CHECK(feed("EHLO c.test\r\nMAIL FROM:<a@b.test>\r\n") == 0);
	CHECKF(strcmp(since(m), "554 5.5.0 mx.test protocol error: pipelining before EHLO\r\n") == 0,
	       "%s", since(m));
	CHECK(d.closed && smtpd_closing(&d.s));
	CHECK(d.ec.n[EDGE_EARLY_PIPELINING] == 1);
	/* a NOOP with anything behind it, before EHLO: the same */
	setup_greeted("", "192.0.2.1");
	m = d.outlen;
	feed("NOOP\r\nN");
	CHECK(strncmp(since(m), "554 5.5.0 ", 10) == 0 && d.closed);
	/* the same lines one at a time: a normal session */
	setup_greeted("", "192.0.2.1");
	m = d.outlen;
	feed("EHLO c.test\r\n");
	feed("MAIL FROM:<a@b.test>\r\n");
	CHECK(strstr(since(m), "250 SMTPUTF8\r\n250 2.1.0 Sender OK\r\n") != NULL && !d.closed);
	/* after the EHLO reply, pipelining is what PIPELINING allows */
	feed("RSET\r\nNOOP\r\nMAIL FROM:<a@b.test>\r\n");
	CHECK(strstr(since(m), "250 2.0.0 OK\r\n250 2.0.0 OK\r\n250 2.1.0 Sender OK\r\n") != NULL);
	CHECK(d.ec.n[EDGE_EARLY_PIPELINING] == 0);
	/* a relay-network client may, and so may anyone when it is off */
	setup_greeted("", "10.1.2.3");
	feed("EHLO c.test\r\nMAIL FROM:<a@b.test>\r\n");
	CHECK(strstr(d.out, "250 2.1.0 Sender OK\r\n") != NULL && !d.closed);
	setup_greeted("reject-early-pipelining off\n", "192.0.2.1");
	feed("EHLO c.test\r\nMAIL FROM:<a@b.test>\r\n");
	CHECK(strstr(d.out, "250 2.1.0 Sender OK\r\n") != NULL && !d.closed);
	/* inside TLS it is not checked (the flag an implicit-TLS driver gives) */
	setup_greeted("", "192.0.2.1");
	d.s.flags |= SMTPD_F_TLS;
	feed("EHLO c.test\r\nMAIL FROM:<a@b.test>\r\n");
	CHECK(strstr(d.out, "250 2.1.0 Sender OK\r\n") != NULL && !d.closed);
	/* before the greeting it is an early talker, as before */
	setup("", "192.0.2.1", 0);
	feed("EHLO c.test\r\n");
	CHECK(strcmp(d.out, "554 5.5.0 mx.test protocol error: talked before the greeting\r\n") == 0);
	CHECK(d.ec.n[EDGE_EARLY_TALKER] == 1 && d.closed);
}

static void test_helo_invalid(void)
{
	size_t m;

	setup_greeted("", "192.0.2.1");
	m = d.outlen;
	feed("EHLO bad_name\r\n");
	CHECKF(strcmp(since(m), "501 5.5.2 <bad_name>: Helo command rejected: invalid name\r\n") == 0,
	       "%s", since(m));
	m = d.outlen;
	feed("HELO a..b\r\n");
	CHECK(strcmp(since(m), "501 5.5.2 <a..b>: Helo command rejected: invalid name\r\n") == 0);
	/* the client's bytes are not echoed raw */
	m = d.outlen;
	feed("EHLO a\x01" "b\x7f\r\n");
	CHECKF(strcmp(since(m), "501 5.5.2 <a\\x01b\\x7f>: Helo command rejected: invalid name\r\n")
	       == 0, "%s", since(m));
	/* still in INIT: MAIL is out of sequence, and counted as no-helo */
	m = d.outlen;
	feed("MAIL FROM:<a@b.test>\r\n");
	CHECK(strcmp(since(m), "503 5.5.1 Send HELO/EHLO first\r\n") == 0);
	feed("EHLO good.test\r\n");
	CHECK(d.s.state == SMTPD_S_READY);
	CHECK(d.ec.n[EDGE_HELO_INVALID] == 3 && d.ec.n[EDGE_NO_HELO] == 1 && d.s.errors == 4);
	/* insiders, and everyone when it is off */
	setup_greeted("", "10.0.0.1");
	feed("EHLO bad_name\r\n");
	CHECK(d.s.state == SMTPD_S_READY && d.ec.n[EDGE_HELO_INVALID] == 0);
	setup_greeted("reject-invalid-helo off\n", "192.0.2.1");
	feed("HELO bad_name\r\n");
	CHECK(strstr(d.out, "250 mx.test\r\n") != NULL);
}

static void test_helo_forged(void)
{
	static const char *const ours[] = {
		"mx.test", "MX.TEST.", "example.test", "[192.0.2.25]", "[192.0.2.99]", "192.0.2.99",
	};
	size_t m;

	for (size_t k = 0; k < sizeof ours / sizeof ours[0]; k++) {
		char line[64], want[128];

		setup_greeted("", "192.0.2.1");
		snprintf(line, sizeof line, "EHLO %s\r\n", ours[k]);
		feed(line);
		CHECKF(d.s.state == SMTPD_S_READY, "%s", ours[k]); /* judged at MAIL */
		m = d.outlen;
		feed("MAIL FROM:<a@b.test>\r\n");
		snprintf(want, sizeof want,
		         "550 5.7.1 <%s>: Helo command rejected: our own name or address\r\n", ours[k]);
		CHECKF(strcmp(since(m), want) == 0, "%s: %s", ours[k], since(m));
		CHECK(d.ec.n[EDGE_HELO_FORGED] == 1 && d.s.state == SMTPD_S_READY);
		/* a second EHLO with an honest name clears it */
		feed("EHLO client.test\r\n");
		m = d.outlen;
		feed("MAIL FROM:<a@b.test>\r\n");
		CHECK(strcmp(since(m), "250 2.1.0 Sender OK\r\n") == 0);
	}
	/* an insider may call itself anything; off, anyone may */
	CHECK(mail_accepted("", "10.0.0.1", "mx.test", "<a@b.test>"));
	CHECK(mail_accepted("reject-forged-helo off\n", "192.0.2.1", "mx.test", "<a@b.test>"));
	CHECK(d.ec.n[EDGE_HELO_FORGED] == 0);
}

static void test_sender_forged(void)
{
	size_t m;

	setup_greeted("reject-forged-sender on\n", "192.0.2.1");
	feed("EHLO client.test\r\n");
	m = d.outlen;
	feed("MAIL FROM:<boss@Example.Test>\r\n");
	CHECKF(strcmp(since(m), "550 5.7.1 <boss@example.test>: Sender address rejected: our own "
	              "domain from an outside host\r\n") == 0, "%s", since(m));
	CHECK(d.ec.n[EDGE_SENDER_FORGED] == 1);
	m = d.outlen;
	feed("MAIL FROM:<>\r\n");
	CHECK(strcmp(since(m), "250 2.1.0 Sender OK\r\n") == 0);
	/* insiders may; the default is off */
	CHECK(mail_accepted("reject-forged-sender on\n", "10.0.0.1", "c.test", "<boss@example.test>"));
	CHECK(mail_accepted("", "192.0.2.1", "c.test", "<boss@example.test>"));
	CHECK(d.ec.n[EDGE_SENDER_FORGED] == 0);
}

static void test_tarpit(void)
{
	static const unsigned want[] = { 100, 200, 250, 250 };
	size_t m;

	setup_greeted("tarpit-after 2\ntarpit-delay 100\ntarpit-max-delay 250\n", "192.0.2.1");
	feed("EHLO client.test\r\n");
	m = d.outlen;
	feed("FOO\r\n"); /* error 1: at once */
	CHECK(strcmp(since(m), "500 5.5.1 Command unrecognized\r\n") == 0 && d.ndelays == 0);
	for (unsigned k = 0; k < 4; k++) {
		/* errors 2..5: the reply is held until the driver says */
		m = d.outlen;
		CHECK(feed("BAR\r\nNOOP\r\n") == 6);  /* the NOOP waits behind the held reply */
		CHECKF(d.outlen == m && d.ndelays == k + 1 && d.delays[k] == want[k],
		       "error %u: out '%s' delays %u ms %u", k + 2, since(m), d.ndelays, d.delays[k]);
		CHECK(d.s.hold_active && d.delay_due);
		/* nothing moves while held */
		CHECK(smtpd_feed(&d.s, "NOOP\r\n", 6) == 0);
		release();
		CHECK(strcmp(since(m), "500 5.5.1 Command unrecognized\r\n") == 0);
		CHECK(feed("NOOP\r\n") == 0);
		CHECK(strcmp(since(m), "500 5.5.1 Command unrecognized\r\n250 2.0.0 OK\r\n") == 0);
	}
	/* error 6 = max-errors: 421 at once, no wait */
	m = d.outlen;
	feed("BAZ\r\n");
	CHECK(strcmp(since(m), "500 5.5.1 Command unrecognized\r\n"
	                       "421 4.7.0 mx.test Too many errors, closing connection\r\n") == 0);
	CHECK(d.ndelays == 4 && d.closed);
	CHECK(d.ec.n[EDGE_TARPIT] == 4 && d.ec.n[EDGE_TOO_MANY_ERRORS] == 1);
	/* successes are never held: tarpit-after 1, but good commands go through */
	setup_greeted("tarpit-after 1\ntarpit-delay 100\n", "192.0.2.1");
	feed("EHLO client.test\r\n");
	feed("MAIL FROM:<a@b.test>\r\n");
	m = d.outlen;
	feed("RCPT TO:<x@evil.test>\r\n");
	CHECK(d.outlen == m && d.ndelays == 1);
	release();
	m = d.outlen;
	feed("RCPT TO:<x@example.test>\r\n");
	CHECK(strcmp(since(m), "250 2.1.5 Recipient OK\r\n") == 0 && d.ndelays == 1);
}

static void test_tarpit_cut_short(void)
{
	size_t m;

	/* a timeout while a reply is held: the reply, then the 421 */
	setup_greeted("tarpit-after 1\n", "192.0.2.1");
	feed("EHLO client.test\r\n");
	m = d.outlen;
	feed("FOO\r\n");
	CHECK(d.outlen == m && d.delay_due);
	smtpd_timeout(&d.s);
	drain();
	CHECK(strcmp(since(m), "500 5.5.1 Command unrecognized\r\n"
	                       "421 4.4.2 mx.test Timeout, closing connection\r\n") == 0 && d.closed);
	smtpd_delay_done(&d.s);   /* the driver's timer, late: nothing happens */
	drain();
	/* a shutdown while held: the same with 421 4.3.2 */
	setup_greeted("tarpit-after 1\n", "192.0.2.1");
	feed("EHLO client.test\r\n");
	m = d.outlen;
	feed("FOO\r\n");
	smtpd_shutdown(&d.s, 0);
	drain();
	CHECK(strcmp(since(m), "500 5.5.1 Command unrecognized\r\n"
	                       "421 4.3.2 mx.test Service shutting down\r\n") == 0 && d.closed);
}

static void test_dnsbl_rcpt(void)
{
	size_t m;

	/* listed: asked once at the first MAIL, each RCPT refused */
	setup_greeted("dnsbl zen.test\n", "192.0.2.1");
	d.dnsbl_answer = "zen.test";
	feed("EHLO client.test\r\n");
	feed("MAIL FROM:<a@b.test>\r\n");
	CHECK(d.dnsbl_asks == 1 && strstr(d.out, "250 2.1.0 Sender OK\r\n") != NULL);
	m = d.outlen;
	feed("RCPT TO:<x@example.test>\r\n");
	CHECKF(strcmp(since(m), "554 5.7.1 Service unavailable; client [192.0.2.1] blocked using "
	              "zen.test\r\n") == 0, "%s", since(m));
	feed("RSET\r\n");
	feed("MAIL FROM:<a@b.test>\r\n");
	CHECK(d.dnsbl_asks == 1 && d.ec.n[EDGE_DNSBL_REJECT] == 1);
	/* not listed, or the lists did not answer: mail flows */
	setup_greeted("dnsbl zen.test\n", "192.0.2.1");
	d.dnsbl_answer = NULL;
	feed("EHLO client.test\r\n");
	feed("MAIL FROM:<a@b.test>\r\n");
	m = d.outlen;
	feed("RCPT TO:<x@example.test>\r\n");
	CHECK(d.dnsbl_asks == 1 && strcmp(since(m), "250 2.1.5 Recipient OK\r\n") == 0);
	/* a relay-network client is never asked about */
	setup_greeted("dnsbl zen.test\n", "10.0.0.1");
	d.dnsbl_answer = "zen.test";
	feed("EHLO client.test\r\n");
	feed("MAIL FROM:<a@b.test>\r\n");
	feed("RCPT TO:<x@example.test>\r\n");
	CHECK(d.dnsbl_asks == 0 && strstr(d.out, "250 2.1.5 Recipient OK\r\n") != NULL);
	/* the verdict told before MAIL: no event */
	setup_greeted("dnsbl zen.test\n", "192.0.2.1");
	smtpd_dnsbl_done(&d.s, "zen.test, b.test");
	smtpd_dnsbl_done(&d.s, NULL);   /* later calls change nothing */
	feed("EHLO client.test\r\n");
	feed("MAIL FROM:<a@b.test>\r\n");
	m = d.outlen;
	feed("RCPT TO:<x@example.test>\r\n");
	CHECK(d.dnsbl_asks == 0 && strcmp(since(m), "554 5.7.1 Service unavailable; client "
	                                  "[192.0.2.1] blocked using zen.test, b.test\r\n") == 0);
	/* MAIL waits for the answer, and a pipelined RCPT behind it */
	setup_greeted("dnsbl zen.test\n", "192.0.2.1");
	feed("EHLO client.test\r\n");
	{
		struct smtpd_event ev;
		const char *in = "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\n";
		size_t n = smtpd_feed(&d.s, in, strlen(in));

		CHECK(n == 22 && smtpd_event(&d.s, &ev) == 1 && ev.type == SMTPD_EV_DNSBL);
		CHECK(smtpd_feed(&d.s, in + n, strlen(in) - n) == 0);
		m = d.outlen;
		drain();
		CHECK(d.outlen == m);   /* no answer yet, no 250 yet */
		smtpd_dnsbl_done(&d.s, "zen.test");
		drain();
		CHECK(smtpd_feed(&d.s, in + n, strlen(in) - n) == strlen(in) - n);
		drain();
		CHECK(strstr(since(m), "250 2.1.0 Sender OK\r\n554 5.7.1 ") == since(m));
	}
}

static void test_dnsbl_connect(void)
{
	size_t m;

	setup("dnsbl zen.test\ndnsbl-stage connect\n", "192.0.2.1", 0);
	smtpd_dnsbl_done(&d.s, "zen.test");
	smtpd_greet(&d.s);
	drain();
	CHECKF(strcmp(d.out, "554 5.7.1 mx.test Service unavailable; client [192.0.2.1] blocked "
	              "using zen.test\r\n") == 0, "%s", d.out);
	CHECK(d.ec.n[EDGE_DNSBL_REJECT] == 1 && !d.closed);
	/* RFC 5321 3.1: wait for QUIT, 503 to anything else */
	m = d.outlen;
	feed("EHLO client.test\r\n");
	feed("MAIL FROM:<a@b.test>\r\n");
	CHECK(strcmp(since(m), "503 5.5.1 Bad sequence of commands\r\n"
	                       "503 5.5.1 Bad sequence of commands\r\n") == 0);
	m = d.outlen;
	feed("QUIT\r\n");
	CHECK(strcmp(since(m), "221 2.0.0 mx.test closing connection\r\n") == 0 && d.closed);
	/* a greeting once given cannot be taken back */
	setup_greeted("dnsbl zen.test\ndnsbl-stage connect\n", "192.0.2.1");
	smtpd_dnsbl_done(&d.s, "zen.test");
	smtpd_greet(&d.s);
	drain();
	CHECK(strcmp(d.out, "220 mx.test ESMTP moat\r\n") == 0);
	/* not listed, or an insider, or the rcpt stage: 220 */
	setup("dnsbl zen.test\ndnsbl-stage connect\n", "192.0.2.1", 0);
	smtpd_dnsbl_done(&d.s, NULL);
	smtpd_greet(&d.s);
	drain();
	CHECK(strcmp(d.out, "220 mx.test ESMTP moat\r\n") == 0);
	setup("dnsbl zen.test\ndnsbl-stage connect\n", "10.0.0.1", 0);
	smtpd_dnsbl_done(&d.s, "zen.test");
	smtpd_greet(&d.s);
	drain();
	CHECK(strcmp(d.out, "220 mx.test ESMTP moat\r\n") == 0);
	setup("dnsbl zen.test\n", "192.0.2.1", 0);
	smtpd_dnsbl_done(&d.s, "zen.test");
	smtpd_greet(&d.s);
	drain();
	CHECK(strcmp(d.out, "220 mx.test ESMTP moat\r\n") == 0);
	/* errors in the refused state end at max-errors like anywhere */
	setup("dnsbl zen.test\ndnsbl-stage connect\ntarpit-after 0\n", "192.0.2.1", 0);
	smtpd_dnsbl_done(&d.s, "zen.test");
	smtpd_greet(&d.s);
	for (int k = 0; k < 6; k++)
		feed("NOOP\r\n");
	CHECK(strstr(d.out, "421 4.7.0 mx.test Too many errors") != NULL && d.closed);
}

int main(void)
{
	log_init("test", LOG_OFF);
	RUN(test_early_pipelining);
	RUN(test_helo_invalid);
	RUN(test_helo_forged);
	RUN(test_sender_forged);
	RUN(test_tarpit);
	RUN(test_tarpit_cut_short);
	RUN(test_dnsbl_rcpt);
	RUN(test_dnsbl_connect);
	smtpd_free(&d.s);
	return t_main_end();
}
