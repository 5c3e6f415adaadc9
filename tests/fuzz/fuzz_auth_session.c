/*
 * tests/fuzz/fuzz_auth_session.c -- a session on a submission listener
 * (AUTH offered in plaintext from loopback, STARTTLS too) fed arbitrary
 * bytes in input-sized pieces.  The driver answers AUTH with the real
 * users check and STARTTLS by discarding buffered input.  Invariants: no
 * overrun, output within its buffer, MAIL accepted only once
 * authenticated, credentials wiped once answered.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mta/net/log.h"
#include "mta/smtp/smtpd.h"
#include "tests/fuzz/drive_smtpd.h"
#include "policy/conf.h"
#include "policy/quota.h"
#include "policy/users.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct users *users;

/* AUTH answered by the real users check, STARTTLS by dropping the input
 * read ahead, the queue always yes. */
static void on_event(struct drive *dr, const struct smtpd_event *ev, void *arg)
{
	struct smtpd *s = dr->s;

	(void)arg;
	if (ev->type == SMTPD_EV_AUTH) {
		const struct user *u = ev->refuse ? NULL
			: users_authenticate(users, ev->creds->authcid, ev->creds->authcidlen,
			                     ev->creds->passwd, ev->creds->passwdlen);
		smtpd_auth_done(s, u ? SMTPD_AUTH_OK : SMTPD_AUTH_FAIL, u);
		if (s->creds.passwdlen != 0 || s->creds.passwd[0] != 0)
			abort();
	} else if (ev->type == SMTPD_EV_STARTTLS) {
		dr->have = 0;
		smtpd_tls_started(s, SMTPD_F_TLS);
	} else if (ev->type == SMTPD_EV_QUOTA) {
		smtpd_quota_done(s, QUOTA_OK);
	} else if (ev->type == SMTPD_EV_MSG_BEGIN) {
		smtpd_msg_begun(s, QUEUE_OK, 1, 0);
	} else if (ev->type == SMTPD_EV_MSG_DATA) {
		smtpd_data_done(s, QUEUE_OK);
	} else if (ev->type == SMTPD_EV_MSG_END) {
		smtpd_msg_committed(s, QUEUE_OK);
	}
}

/* No transaction without AUTH. */
static void after_step(struct drive *dr, void *arg)
{
	(void)arg;
	if ((dr->s->state == SMTPD_S_MAIL || dr->s->state == SMTPD_S_DATA) && !dr->s->authenticated)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct conf conf;
	static struct smtpd s;
	struct smtpd_client cl;

	if (users == NULL) {
		static const char text[] = "hostname f.test\ndomain example.test\nqueue /x\n"
			"listen 127.0.0.1:587 role=submission tls=starttls auth-plaintext-loopback\n"
			"tls-cert /c\ntls-key /k\nusers /u\n";
		static const char u[] = "alice:$5$rounds=1000$s$"
			"1G5532wclKO2DGU0xcX3Rd6BmCQw9FWjZAp9VdiPyK3\n"; /* alice / secret */
		char err[256];

		log_init("fuzz", LOG_OFF);
		conf_defaults(&conf);
		if (conf_parse(text, sizeof text - 1, "f", &conf, err, sizeof err) < 0 ||
		    conf_finish(&conf, "f", err, sizeof err) < 0 ||
		    (users = users_parse(u, sizeof u - 1, "u", err, sizeof err)) == NULL)
			abort();
	}
	memset(&cl, 0, sizeof cl);
	cl.addr.family = IP_V4;
	cl.addr.a[0] = 127;
	cl.listener = conf.listeners[0];
	smtpd_init(&s, &conf, &cl, 0);
	smtpd_set_tables(&s, users, NULL);
	smtpd_greet(&s);
	drive_smtpd(&s, data, size, 0, on_event, after_step, NULL);
	smtpd_free(&s);
	return 0;
}
