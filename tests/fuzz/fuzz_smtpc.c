/*
 * tests/fuzz/fuzz_smtpc.c -- the SMTP client session against a hostile
 * server: the input is everything the server says.  The first byte picks
 * the session (probe, TLS mode, AUTH, SMTPUTF8) and how the TLS handshake
 * ends; the rest is fed in pieces whose sizes come from the input too.
 * Invariants: what the client sends never holds a bare CR or LF, the
 * output stays within its buffer, and once the session is done every
 * recipient has an outcome.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mta/smtp/smtpc.h"
#include "policy/dsnparam.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct smtpc c;
static struct smtpc_result res[3];
static char last_out;   /* the byte before the current output chunk */

static void check_out(void)
{
	size_t n;
	const char *o = smtpc_output(&c, &n);

	REQUIRE(n <= SMTPC_OUT_MAX);
	for (size_t i = 0; i < n; i++) {
		char prev = i ? o[i - 1] : last_out;
		if (o[i] == '\n')
			REQUIRE(prev == '\r');
		if (prev == '\r')
			REQUIRE(o[i] == '\n');
	}
	if (n)
		last_out = o[n - 1];
	smtpc_output_ack(&c, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const rcpts[] = { "a@example.test", "b@example.test", "c@example.test" };
	static const char body[] = ".x\r\n\n.\r.\r\nbare\rcr..\r\n.";
	struct smtpc_params p;
	size_t pos = 1, boff = 0;
	uint8_t sel;
	char *buf;
	size_t have = 0;
	enum smtpc_event_type ev;

	if (size < 1)
		return 0;
	sel = data[0];
	memset(&p, 0, sizeof p);
	p.helo = "mx.test";
	p.sender = sel & 0x01 ? "" : "s@example.org";
	p.rcpts = rcpts;
	p.nrcpts = 1 + (size_t)((sel >> 1) & 1) * 2;
	p.size = sizeof body - 1;
	p.probe = (sel >> 2) & 1;
	p.tls = (sel >> 3) & 3;
	if (p.tls > SMTPC_TLS_REQUIRE)
		p.tls = SMTPC_TLS_MAY;
	p.in_tls = (sel >> 5) & 1;
	if ((sel >> 6) & 1) {
		p.auth_user = "user";
		p.auth_pass = "pass";
	}
	p.flags = (sel >> 7) & 1 ? SMTPC_F_SMTPUTF8 | SMTPC_F_8BITMIME : 0;
	/* DSN parameters (the longest lines the client writes) with SMTPUTF8
	 * mail; they go out only if the hostile server offers DSN. */
	if (p.flags & SMTPC_F_SMTPUTF8) {
		static const uint8_t notify[3] = { 7, 8, 0 };
		static char orcpt[3][DSN_ORCPT_MAX + 1];
		static const char *const orcpts[3] = { orcpt[0], orcpt[1], "" };
		static const struct smtpc_dsn dsn = { DSN_RET_FULL, "QQ+2B1", notify, orcpts };

		memcpy(orcpt[0], "rfc822;", 7);
		memset(orcpt[0] + 7, 'o', DSN_ORCPT_MAX - 7);
		strcpy(orcpt[1], "utf-8;\\x{E9}@example.test");
		p.dsn = &dsn;
	}
	last_out = '\n';
	smtpc_init(&c, &p, res);
	buf = malloc(size);
	while (!smtpc_done(&c)) {
		size_t step, used;
		if (pos >= size && have == 0)
			break;
		step = pos < size ? (size_t)(data[pos] % 64) + 1 : 0;
		if (step > size - pos)
			step = size - pos;
		memcpy(buf + have, data + pos, step);
		have += step;
		pos += step;
		used = smtpc_feed(&c, buf, have);
		REQUIRE(used <= have);
		memmove(buf, buf + used, have - used);
		have -= used;
		check_out();
		while (smtpc_event(&c, &ev)) {
			check_out();
			if (ev == SMTPC_EV_STARTTLS)
				smtpc_tls_done(&c, (sel ^ (uint8_t)pos) & 1);
		}
		while (smtpc_body_wanted(&c)) {
			size_t take = sizeof body - 1 - boff > 5 ? 5 : sizeof body - 1 - boff;
			boff += smtpc_body(&c, body + boff, take, boff + take == sizeof body - 1);
			check_out();
		}
		if (step == 0 && used == 0)
			break;
	}
	if (!smtpc_done(&c))
		smtpc_abort(&c, "eof");
	check_out();
	REQUIRE(smtpc_done(&c));
	for (size_t i = 0; i < p.nrcpts; i++)
		REQUIRE(res[i].status != SMTPC_R_NONE && strlen(res[i].text) < SMTPC_TEXT_MAX);
	free(buf);
	return 0;
}
