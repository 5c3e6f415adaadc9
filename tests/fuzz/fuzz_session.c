/*
 * tests/fuzz/fuzz_session.c -- a whole SMTP session fed arbitrary bytes, in
 * pieces whose sizes come from the input itself.  The driver answers every
 * event; the first input byte picks the commit outcome, the client (an
 * insider or not), the greeting (220, none, or the DNSBL 554) and the
 * DNSBL verdict, the second the quota verdicts.  Tarpit waits are
 * answered at once.  With bit 32 of the first byte the session's time runs
 * out (max-session-time) at the step the second byte names, or while a
 * commit is under way if that comes first.  Invariants: the
 * session never consumes more than it is given, output never exceeds its
 * buffer, and a body is never handed out outside a transaction.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mta/net/log.h"
#include "mta/smtp/smtpd.h"
#include "tests/fuzz/drive_smtpd.h"
#include "policy/conf.h"
#include "policy/quota.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct conf conf;
static int ready;

/* What the input chose for the driver's answers. */
struct choice {
	const uint8_t *data;
	size_t         size;
	int            commit_err, expire, expired;
};

static void on_event(struct drive *dr, const struct smtpd_event *ev, void *arg)
{
	struct choice *ch = arg;
	struct smtpd *s = dr->s;

	if (ev->type == SMTPD_EV_QUOTA) {
		if (ev->env == NULL)
			abort();
		/* the second input byte picks the verdicts */
		smtpd_quota_done(s, ch->size > 1 && (ch->data[1] >> (ev->size & 7) & 1)
		                        ? QUOTA_DISK : QUOTA_OK);
	} else if (ev->type == SMTPD_EV_MSG_BEGIN) {
		smtpd_msg_begun(s, QUEUE_OK, 1, 0);
	} else if (ev->type == SMTPD_EV_MSG_DATA) {
		if (ev->len == 0 || ev->len > SMTPD_BODY_BUF)
			abort();
		smtpd_data_done(s, QUEUE_OK);
	} else if (ev->type == SMTPD_EV_DELAY) {
		if (ev->ms == 0 || ev->ms > 60000)
			abort();
		smtpd_delay_done(s);
	} else if (ev->type == SMTPD_EV_DNSBL) {
		smtpd_dnsbl_done(s, ch->data[0] & 8 ? "zen.test" : NULL);
	} else if (ev->type == SMTPD_EV_MSG_END) {
		if (ev->env == NULL || ev->env->nrcpts == 0)
			abort();
		if (ch->expire && !ch->expired) {
			smtpd_session_expired(s);
			ch->expired = 1;
		}
		smtpd_msg_committed(s, ch->commit_err);
	}
}

/* The session's time runs out at the step the second byte names. */
static void after_step(struct drive *dr, void *arg)
{
	struct choice *ch = arg;

	if (ch->expire && !ch->expired && ch->size > 1 && dr->steps == ch->data[1]) {
		smtpd_session_expired(dr->s);
		ch->expired = 1;
		if (!smtpd_closing(dr->s))
			abort(); /* only a commit defers the 421 */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct smtpd s;
	struct smtpd_client cl;
	struct choice ch;

	if (!ready) {
		static const char text[] = "hostname fuzz.test\nlisten 127.0.0.1:25\ndomain example.test\n"
		                           "relay-network 10.0.0.0/8\nqueue /x\nmax-message-size 5000\n"
		                           "reject-early-pipelining off\nreject-forged-sender on\n"
		                           "tarpit-after 3\ndnsbl zen.test\ndnsbl-stage connect\n"
		                           "max-junk-commands 40\n";
		char err[256];

		log_init("fuzz", LOG_OFF);
		conf_defaults(&conf);
		if (conf_parse(text, sizeof text - 1, "f", &conf, err, sizeof err) < 0 ||
		    conf_finish(&conf, "f", err, sizeof err) < 0)
			abort();
		ready = 1;
	}
	if (size < 1)
		return 0;
	memset(&ch, 0, sizeof ch);
	ch.data = data;
	ch.size = size;
	ch.commit_err = data[0] & 1 ? QUEUE_OK : QUEUE_EFULL;
	ch.expire = (data[0] & 32) != 0;
	memset(&cl, 0, sizeof cl);
	cl.addr.family = IP_V4;
	cl.addr.a[0] = data[0] & 2 ? 10 : 192;
	smtpd_init(&s, &conf, &cl, 0);
	if (data[0] & 16)
		smtpd_dnsbl_done(&s, "zen.test");
	if (!(data[0] & 4))
		smtpd_greet(&s);
	drive_smtpd(&s, data, size, 1, on_event, after_step, &ch);
	smtpd_free(&s);
	return 0;
}
