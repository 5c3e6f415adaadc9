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
#include "policy/conf.h"
#include "policy/quota.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct conf conf;
static int ready;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct smtpd s;
	struct smtpd_client cl;
	struct smtpd_event ev;
	char buf[8192];
	size_t have = 0, off = 1, len, steps = 0;
	int commit_err, expire, expired = 0;

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
	commit_err = data[0] & 1 ? QUEUE_OK : QUEUE_EFULL;
	expire = (data[0] & 32) != 0;
	memset(&cl, 0, sizeof cl);
	cl.addr.family = IP_V4;
	cl.addr.a[0] = data[0] & 2 ? 10 : 192;
	smtpd_init(&s, &conf, &cl, 0);
	if (data[0] & 16)
		smtpd_dnsbl_done(&s, "zen.test");
	if (!(data[0] & 4))
		smtpd_greet(&s);
	while (off < size && steps++ < 100000) {
		size_t chunk = (size_t)(data[off] % 64) + 1, n;

		if (chunk > size - off)
			chunk = size - off;
		if (chunk > sizeof buf - have)
			chunk = sizeof buf - have;
		memcpy(buf + have, data + off, chunk);
		have += chunk;
		off += chunk;
		n = smtpd_feed(&s, buf, have);
		if (n > have)
			abort();
		memmove(buf, buf + n, have - n);
		have -= n;
		while (smtpd_event(&s, &ev)) {
			if (ev.type == SMTPD_EV_QUOTA) {
				if (ev.env == NULL)
					abort();
				/* the second input byte picks the verdicts */
				smtpd_quota_done(&s, size > 1 && (data[1] >> (ev.size & 7) & 1)
				                         ? QUOTA_DISK : QUOTA_OK);
			} else if (ev.type == SMTPD_EV_MSG_BEGIN)
				smtpd_msg_begun(&s, QUEUE_OK, 1, 0);
			else if (ev.type == SMTPD_EV_MSG_DATA) {
				if (ev.len == 0 || ev.len > SMTPD_BODY_BUF)
					abort();
				smtpd_data_done(&s, QUEUE_OK);
			} else if (ev.type == SMTPD_EV_DELAY) {
				if (ev.ms == 0 || ev.ms > 60000)
					abort();
				smtpd_delay_done(&s);
			} else if (ev.type == SMTPD_EV_DNSBL) {
				smtpd_dnsbl_done(&s, data[0] & 8 ? "zen.test" : NULL);
			} else if (ev.type == SMTPD_EV_MSG_END) {
				if (ev.env == NULL || ev.env->nrcpts == 0)
					abort();
				if (expire && !expired) {
					smtpd_session_expired(&s);
					expired = 1;
				}
				smtpd_msg_committed(&s, commit_err);
			}
		}
		if (expire && !expired && size > 1 && steps == data[1]) {
			smtpd_session_expired(&s);
			expired = 1;
			if (!smtpd_closing(&s))
				abort(); /* only a commit defers the 421 */
		}
		smtpd_output(&s, &len);
		if (len > SMTPD_OUT_MAX)
			abort();
		smtpd_output_ack(&s, len);
		if (smtpd_closing(&s))
			break;
	}
	smtpd_free(&s);
	return 0;
}
