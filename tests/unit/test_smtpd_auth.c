/*
 * tests/unit/test_smtpd_auth.c -- STARTTLS and AUTH in the session state
 * machine, with the test as the driver: AUTH events are answered with the
 * real users file check, STARTTLS by discarding the buffered input (as
 * mta/roles/smtp_role.c must) and calling smtpd_tls_started().  AUTH scripts are
 * fed whole, byte by byte and split at every offset; the transcript must
 * be the same every time.
 */
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "mta/net/log.h"
#include "mta/smtp/smtpd.h"
#include "policy/conf.h"
#include "policy/quota.h"
#include "policy/users.h"

static struct conf conf;
static struct users *users;

static const char users_text[] =
	"alice:$6$rounds=1000$l7OIabb6WzyNKezM$Tg0eUJrjYXZiqZsJ9xS3yu6ZRmzkkJSGB.clsE8C1thRdMS9V9ui4IXEt"
	"/kwZy/m/Y4kN1wjgMftAzWCq/E8q0:alice@example.test\n";

static void setup(void)
{
	static const char text[] =
		"hostname mx.test\n"
		"domain example.test\n"
		"queue /nonexistent\n"
		"listen 127.0.0.1:587 role=submission auth-plaintext-loopback tls=starttls\n"
		"tls-cert /c\ntls-key /k\nusers /u\n"
		"reject-early-pipelining off\n"; /* scripts are fed whole and split */
	char err[256];

	log_init("test", LOG_OFF);
	conf_defaults(&conf);
	if (conf_parse(text, sizeof text - 1, "t.conf", &conf, err, sizeof err) < 0 ||
	    conf_finish(&conf, "t.conf", err, sizeof err) < 0 ||
	    (users = users_parse(users_text, sizeof users_text - 1, "users", err, sizeof err)) == NULL) {
		fprintf(stderr, "setup: %s\n", err);
		exit(1);
	}
}

struct transcript {
	char   out[16384];
	size_t outlen;
	int    starttls;   /* STARTTLS events seen */
	int    closed;
	char   quota_user[QUEUE_NAME_MAX + 1]; /* the envelope's auth_user at the last quota question */
};

/* Answer events; on STARTTLS throw away *have bytes of buffered input. */
static void answer(struct smtpd *s, struct transcript *t, size_t *have)
{
	struct smtpd_event ev;
	size_t len;
	const char *o;

	while (smtpd_event(s, &ev)) {
		if (ev.type == SMTPD_EV_AUTH) {
			const struct user *u = ev.refuse ? NULL
				: users_authenticate(users, ev.creds->authcid, ev.creds->authcidlen,
				                     ev.creds->passwd, ev.creds->passwdlen);
			smtpd_auth_done(s, u ? SMTPD_AUTH_OK : SMTPD_AUTH_FAIL, u);
		} else if (ev.type == SMTPD_EV_STARTTLS) {
			t->starttls++;
			*have = 0; /* CVE-2011-0411: nothing read before the handshake counts */
			smtpd_tls_started(s, SMTPD_F_TLS);
		} else if (ev.type == SMTPD_EV_QUOTA) {
			snprintf(t->quota_user, sizeof t->quota_user, "%s", ev.env->auth_user);
			smtpd_quota_done(s, QUOTA_OK);
		} else if (ev.type == SMTPD_EV_CLOSE) {
			t->closed = 1;
		}
	}
	o = smtpd_output(s, &len);
	if (t->outlen + len < sizeof t->out) {
		memcpy(t->out + t->outlen, o, len);
		t->outlen += len;
		t->out[t->outlen] = 0;
	}
	smtpd_output_ack(s, len);
}

/* Feed in pieces of step bytes (0: whole) or split once at split. */
static void run(const char *ip, const char *in, size_t step, size_t split, struct transcript *t)
{
	static struct smtpd s;
	struct smtpd_client cl;
	char buf[8192];
	size_t inlen = strlen(in), have = 0, off = 0, n;
	int guard = 0;

	memset(t, 0, sizeof *t);
	memset(&cl, 0, sizeof cl);
	ip_parse(ip, strlen(ip), &cl.addr);
	snprintf(cl.addr_text, sizeof cl.addr_text, "%s", ip);
	cl.listener = conf.listeners[0];
	smtpd_init(&s, &conf, &cl, 0);
	smtpd_set_tables(&s, users, NULL);
	smtpd_greet(&s);
	answer(&s, t, &have);
	while (off < inlen && !t->closed && guard++ < 100000) {
		size_t chunk = inlen - off;

		if (step && chunk > step)
			chunk = step;
		if (split && off < split && off + chunk > split)
			chunk = split - off;
		memcpy(buf + have, in + off, chunk);
		have += chunk;
		off += chunk;
		do {
			n = smtpd_feed(&s, buf, have);
			memmove(buf, buf + n, have - n);
			have -= n;
			answer(&s, t, &have);
		} while (n > 0 && have > 0);
	}
	smtpd_free(&s);
}

static const char auth_script[] =
	"EHLO c.test\r\n"
	"MAIL FROM:<alice@example.test>\r\n"
	"AUTH PLAIN AGFsaWNlAHdyb25n\r\n"                 /* \0alice\0wrong */
	"AUTH PLAIN\r\n*\r\n"
	"AUTH PLAIN !!!!\r\n"
	"AUTH PLAIN Ym9iAGFsaWNlAHNlY3JldA==\r\n"         /* bob\0alice\0secret */
	"AUTH PLAIN\r\nAGFsaWNl\r\n"                       /* \0alice: one NUL */
	"AUTH CRAM-MD5\r\n"
	"AUTH LOGIN\r\nYWxpY2U=\r\nc2VjcmV0\r\n"          /* alice, secret */
	"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"
	"MAIL FROM:<bob@example.test>\r\n"
	"MAIL FROM:<alice@example.test>\r\n"
	"RCPT TO:<x@foreign.test>\r\n"
	"QUIT\r\n";

static const char auth_want[] =
	"220 mx.test ESMTP moat\r\n"
	"250-mx.test Hello [127.0.0.1]\r\n250-PIPELINING\r\n250-SIZE 36700160\r\n250-8BITMIME\r\n"
	"250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250 SMTPUTF8\r\n"
	"530 5.7.0 Authentication required\r\n"
	"535 5.7.8 Authentication credentials invalid\r\n"
	"334 \r\n501 5.7.0 Authentication aborted\r\n"
	"501 5.5.2 Cannot decode response\r\n"
	"535 5.7.8 Authentication credentials invalid\r\n"
	"334 \r\n501 5.5.2 Cannot decode response\r\n"
	"504 5.5.4 Unrecognized authentication type\r\n"
	"334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 2.7.0 Authentication successful\r\n"
	"503 5.5.1 Already authenticated\r\n"
	"553 5.7.1 <bob@example.test>: Sender address not owned by the authenticated user\r\n"
	"250 2.1.0 Sender OK\r\n"
	"250 2.1.5 Recipient OK\r\n"
	"221 2.0.0 mx.test closing connection\r\n";

static void test_auth_every_split(void)
{
	static struct transcript ref, t;
	size_t len = strlen(auth_script);

	run("127.0.0.1", auth_script, 0, 0, &ref);
	CHECKF(strcmp(ref.out, auth_want) == 0, "got:\n%s", ref.out);
	CHECK(ref.closed);
	/* The message is charged to, and stored as from, the user. */
	CHECKF(strcmp(ref.quota_user, "alice") == 0, "auth_user '%s'", ref.quota_user);
	run("127.0.0.1", auth_script, 1, 0, &t);
	CHECKF(strcmp(t.out, auth_want) == 0, "byte by byte:\n%s", t.out);
	for (size_t i = 1; i < len; i++) {
		run("127.0.0.1", auth_script, 0, i, &t);
		CHECKF(strcmp(t.out, auth_want) == 0, "split at %zu:\n%s", i, t.out);
	}
}

/* Not loopback: AUTH only inside TLS.  The NOOP pipelined behind STARTTLS
 * is discarded (never answered), and the session starts over. */
static void test_starttls(void)
{
	static struct transcript t;

	run("192.0.2.7",
	    "EHLO c.test\r\n"
	    "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"
	    "MAIL FROM:<alice@example.test>\r\n"
	    "STARTTLS now\r\n"
	    "STARTTLS\r\nNOOP\r\nMAIL FROM:<a@b.test>\r\n", 0, 0, &t);
	CHECKF(strcmp(t.out,
		"220 mx.test ESMTP moat\r\n"
		"250-mx.test Hello [192.0.2.7]\r\n250-PIPELINING\r\n250-SIZE 36700160\r\n250-8BITMIME\r\n"
		"250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n250-STARTTLS\r\n250 SMTPUTF8\r\n"
		"538 5.7.11 Encryption required for requested authentication mechanism\r\n"
		"530 5.7.0 Must issue a STARTTLS command first\r\n"
		"501 5.5.4 Syntax error in parameters\r\n"
		"220 2.0.0 Ready to start TLS\r\n") == 0, "got:\n%s", t.out);
	CHECK(t.starttls == 1);
}

/* After the handshake: EHLO again, AUTH offered, STARTTLS not, a second
 * STARTTLS refused. */
static void test_after_tls(void)
{
	static struct transcript t;

	run("192.0.2.7",
	    "EHLO c.test\r\nSTARTTLS\r\n", 0, 0, &t);
	CHECK(t.starttls == 1);
	/* A new session fed in two steps: the second after the handshake. */
	static struct smtpd s;
	struct smtpd_client cl;
	size_t have = 0, n;
	const char *a = "EHLO c.test\r\nSTARTTLS\r\n";
	const char *b = "MAIL FROM:<a@b.test>\r\nEHLO c.test\r\nSTARTTLS\r\n"
	                "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nQUIT\r\n";

	memset(&t, 0, sizeof t);
	memset(&cl, 0, sizeof cl);
	ip_parse("192.0.2.7", 9, &cl.addr);
	strcpy(cl.addr_text, "192.0.2.7");
	cl.listener = conf.listeners[0];
	smtpd_init(&s, &conf, &cl, 0);
	smtpd_set_tables(&s, users, NULL);
	smtpd_greet(&s);
	n = smtpd_feed(&s, a, strlen(a));
	CHECK(n == strlen(a));
	answer(&s, &t, &have);
	t.outlen = 0;
	n = smtpd_feed(&s, b, strlen(b));
	answer(&s, &t, &have);
	while (n < strlen(b) && !t.closed) {
		size_t m = smtpd_feed(&s, b + n, strlen(b) - n);
		answer(&s, &t, &have);
		if (m == 0)
			break;
		n += m;
	}
	CHECKF(strcmp(t.out,
		"503 5.5.1 Send HELO/EHLO first\r\n"
		"250-mx.test Hello [192.0.2.7]\r\n250-PIPELINING\r\n250-SIZE 36700160\r\n250-8BITMIME\r\n"
		"250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n250-AUTH PLAIN LOGIN\r\n250 SMTPUTF8\r\n"
		"503 5.5.1 TLS already active\r\n"
		"235 2.7.0 Authentication successful\r\n"
		"221 2.0.0 mx.test closing connection\r\n") == 0, "got:\n%s", t.out);
	CHECK(s.flags & SMTPD_F_TLS);
	smtpd_free(&s);
}

/* An AUTH response line over the line limit is a 501, not a command. */
static void test_long_response(void)
{
	static struct transcript t;
	static char script[8192];
	size_t n;

	strcpy(script, "EHLO c\r\nAUTH LOGIN\r\n");
	n = strlen(script);
	memset(script + n, 'A', 3000);
	strcpy(script + n + 3000, "\r\nNOOP\r\n");
	run("127.0.0.1", script, 0, 0, &t);
	CHECKF(strstr(t.out, "334 VXNlcm5hbWU6\r\n501 5.5.2 Response too long\r\n250 2.0.0 OK\r\n") != NULL,
	       "got:\n%s", t.out);
}

int main(void)
{
	setup();
	RUN(test_auth_every_split);
	RUN(test_starttls);
	RUN(test_after_tls);
	RUN(test_long_response);
	users_free(users);
	return t_main_end();
}
