/*
 * tests/unit/test_smtpd_verify.c -- recipient verification in the server
 * session: a RCPT for a `verify-recipients` route posts
 * SMTPD_EV_RCPT_VERIFY and waits (input stalls, pipelined commands after
 * it included) until the driver answers; the three answers give 250, 550
 * and 451.  Other domains are answered at once.  The script is fed whole
 * and byte by byte.
 */
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "mta/net/log.h"
#include "mta/smtp/smtpd.h"
#include "policy/conf.h"
#include "policy/quota.h"

static struct conf conf;

static void setup_conf(void)
{
	static const char text[] =
		"hostname mx.test\n"
		"domain example.test\n"
		"domain other.test\n"
		"queue /nonexistent\n"
		"route example.test [192.0.2.25] verify-recipients\n"
		"route other.test [192.0.2.26]\n"
		"reject-early-pipelining off\n"; /* scripts are fed whole and split */
	char err[256];

	conf_defaults(&conf);
	if (conf_parse(text, sizeof text - 1, "v.conf", &conf, err, sizeof err) < 0 ||
	    conf_finish(&conf, "v.conf", err, sizeof err) < 0) {
		fprintf(stderr, "conf: %s\n", err);
		exit(1);
	}
}

struct run {
	char out[8192];
	size_t outlen;
	char asked[8][64];
	int nasked;
	/* The recipients taken when the script ended, with their DSN parameters. */
	size_t nrcpts;
	uint8_t notify[4];
	char orcpt[4][QUEUE_ORCPT_MAX + 1];
};

/* The driver: answers each verification by the local part's first letter
 * (o ok, r reject, anything else temporary). */
static void drain(struct smtpd *s, struct run *r)
{
	struct smtpd_event ev;
	size_t len;
	const char *o;

	while (smtpd_event(s, &ev)) {
		if (ev.type == SMTPD_EV_RCPT_VERIFY) {
			if (r->nasked < 8)
				snprintf(r->asked[r->nasked], sizeof r->asked[0], "%s", ev.data);
			r->nasked++;
			smtpd_rcpt_verified(s, ev.data[0] == 'o' ? SMTPD_VERIFY_OK : ev.data[0] == 'r'
			                    ? SMTPD_VERIFY_REJECT : SMTPD_VERIFY_TEMP);
		} else if (ev.type == SMTPD_EV_QUOTA) {
			smtpd_quota_done(s, QUOTA_OK);
		}
	}
	o = smtpd_output(s, &len);
	if (r->outlen + len < sizeof r->out) {
		memcpy(r->out + r->outlen, o, len);
		r->outlen += len;
	}
	smtpd_output_ack(s, len);
}

static void run_script(const char *in, size_t step, struct run *r)
{
	struct smtpd s;
	struct smtpd_client cl;
	size_t len = strlen(in), pos = 0, have = 0;
	char buf[4096];

	memset(&cl, 0, sizeof cl);
	cl.addr.family = IP_V4;
	cl.addr.a[0] = 192;
	snprintf(cl.addr_text, sizeof cl.addr_text, "192.0.0.0");
	memset(r, 0, sizeof *r);
	smtpd_init(&s, &conf, &cl, 0);
	smtpd_greet(&s);
	drain(&s, r);
	while (pos < len || have > 0) {
		size_t take = step == 0 || len - pos < step ? len - pos : step, used;
		memcpy(buf + have, in + pos, take);
		have += take;
		pos += take;
		used = smtpd_feed(&s, buf, have);
		memmove(buf, buf + used, have - used);
		have -= used;
		drain(&s, r);
		if (take == 0 && used == 0)
			break;
	}
	r->nrcpts = s.env.nrcpts;
	for (size_t i = 0; i < s.env.nrcpts && i < 4; i++) {
		r->notify[i] = s.env.rcpts[i].notify;
		snprintf(r->orcpt[i], sizeof r->orcpt[i], "%s", s.env.rcpts[i].orcpt);
	}
	smtpd_free(&s);
	r->out[r->outlen] = '\0';
}

static void test_verify(void)
{
	static const char script[] =
		"EHLO c.test\r\n"
		"MAIL FROM:<a@b.test>\r\n"
		"RCPT TO:<ok-user@example.test>\r\n"
		"RCPT TO:<rejected@example.test>\r\n"
		"RCPT TO:<temp@example.test>\r\n"
		"RCPT TO:<anyone@other.test>\r\n"
		"RCPT TO:<postmaster>\r\n"
		"QUIT\r\n";
	static const char want[] =
		"250 2.1.5 Recipient OK\r\n"
		"550 5.1.1 <rejected@example.test>: Recipient address rejected: User unknown\r\n"
		"451 4.4.3 <temp@example.test>: Recipient address verification unavailable, "
		"try again later\r\n"
		"250 2.1.5 Recipient OK\r\n"
		"250 2.1.5 Recipient OK\r\n"
		"221 2.0.0 mx.test closing connection\r\n";
	static struct run r;

	for (size_t step = 0; step <= 1; step++) {
		run_script(script, step, &r);
		const char *p = strstr(r.out, "250 2.1.0 Sender OK\r\n");
		CHECKF(p != NULL && strcmp(p + strlen("250 2.1.0 Sender OK\r\n"), want) == 0,
		       "step %zu: %s", step, r.out);
		CHECK(r.nasked == 3);
		CHECK(strcmp(r.asked[0], "ok-user@example.test") == 0);
		CHECK(strcmp(r.asked[2], "temp@example.test") == 0);
	}
}

/* A recipient taken after its next hop was asked keeps its DSN
 * parameters (RFC 3461), and the next one's are its own. */
static void test_verify_dsn(void)
{
	static const char script[] =
		"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\n"
		"RCPT TO:<ok-one@example.test> NOTIFY=SUCCESS ORCPT=rfc822;first@x.test\r\n"
		"RCPT TO:<ok-two@example.test>\r\n"
		"RCPT TO:<anyone@other.test> NOTIFY=NEVER\r\n";
	static struct run r;

	for (size_t step = 0; step <= 1; step++) {
		run_script(script, step, &r);
		CHECKF(r.nrcpts == 3 && r.nasked == 2, "step %zu: %s", step, r.out);
		CHECK(r.notify[0] == DSN_NOTIFY_SUCCESS && strcmp(r.orcpt[0], "rfc822;first@x.test") == 0);
		CHECK(r.notify[1] == 0 && r.orcpt[1][0] == '\0');
		CHECK(r.notify[2] == DSN_NOTIFY_NEVER && r.orcpt[2][0] == '\0');
	}
}

/* Until the driver answers, nothing after the RCPT is read. */
static void test_stalls(void)
{
	static const char script[] = "EHLO c.test\r\nMAIL FROM:<a@b.test>\r\n"
	                             "RCPT TO:<ok@example.test>\r\nNOOP\r\n";
	struct smtpd s;
	struct smtpd_client cl;
	struct smtpd_event ev;
	size_t used, len;
	const char *o;

	memset(&cl, 0, sizeof cl);
	cl.addr.family = IP_V4;
	smtpd_init(&s, &conf, &cl, 0);
	smtpd_greet(&s);
	/* Feed, answering quota questions, until the verification is asked. */
	used = 0;
	ev.type = SMTPD_EV_NONE;
	for (int i = 0; i < 10 && ev.type != SMTPD_EV_RCPT_VERIFY; i++) {
		used += smtpd_feed(&s, script + used, sizeof script - 1 - used);
		while (smtpd_event(&s, &ev) && ev.type == SMTPD_EV_QUOTA)
			smtpd_quota_done(&s, QUOTA_OK);
	}
	CHECK(used == sizeof script - 1 - strlen("NOOP\r\n"));
	CHECK(ev.type == SMTPD_EV_RCPT_VERIFY);
	if (ev.type != SMTPD_EV_RCPT_VERIFY) {
		smtpd_free(&s);
		return;
	}
	CHECK(strcmp(ev.data, "ok@example.test") == 0 && s.pending == SMTPD_P_VERIFY);
	CHECK(smtpd_feed(&s, script + used, sizeof script - 1 - used) == 0);
	o = smtpd_output(&s, &len);
	CHECK(len > 0 && memmem(o, len, "Recipient", 9) == NULL);
	smtpd_rcpt_verified(&s, SMTPD_VERIFY_OK);
	CHECK(smtpd_feed(&s, script + used, sizeof script - 1 - used) == strlen("NOOP\r\n"));
	o = smtpd_output(&s, &len);
	{
		static const char want[] = "250 2.1.5 Recipient OK\r\n250 2.0.0 OK\r\n";
		CHECK(memmem(o, len, want, sizeof want - 1) != NULL);
	}
	/* A second answer for nothing pending is ignored. */
	smtpd_rcpt_verified(&s, SMTPD_VERIFY_REJECT);
	CHECK(smtpd_output(&s, &len) && memmem(o, len, "550", 3) == NULL);
	smtpd_free(&s);
}

int main(void)
{
	log_init("test", LOG_OFF);
	setup_conf();
	RUN(test_verify);
	RUN(test_verify_dsn);
	RUN(test_stalls);
	return t_main_end();
}
