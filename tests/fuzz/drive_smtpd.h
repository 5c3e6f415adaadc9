/*
 * tests/fuzz/drive_smtpd.h -- driving an smtpd session (mta/smtp/smtpd.h)
 * from fuzz input, for the session fuzzers: the input from off on, cut
 * into pieces of 1 to 64 bytes whose sizes the bytes themselves choose;
 * every event handed to the fuzzer's on_event (which answers it), then its
 * after_step (may be NULL), then the output checked (never over its
 * buffer) and taken; until the session closes, the input ends, or 100000
 * steps.  Invariant checked here: the session never consumes more than it
 * was given.  The session must be set up (smtpd_init, ...) by the caller.
 */
#ifndef MOAT_TESTS_FUZZ_DRIVE_SMTPD_H
#define MOAT_TESTS_FUZZ_DRIVE_SMTPD_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mta/smtp/smtpd.h"

struct drive {
	struct smtpd *s;
	size_t        have;     /* input bytes given but not yet consumed */
	size_t        steps;
	char          buf[8192];
};

typedef void drive_event_fn(struct drive *dr, const struct smtpd_event *ev, void *arg);
typedef void drive_step_fn(struct drive *dr, void *arg);

static inline void drive_smtpd(struct smtpd *s, const uint8_t *data, size_t size, size_t off,
                               drive_event_fn *on_event, drive_step_fn *after_step, void *arg)
{
	static struct drive dr;
	struct smtpd_event ev;
	size_t len;

	memset(&dr, 0, offsetof(struct drive, buf));
	dr.s = s;
	while (off < size && dr.steps++ < 100000) {
		size_t chunk = (size_t)(data[off] % 64) + 1, n;

		if (chunk > size - off)
			chunk = size - off;
		if (chunk > sizeof dr.buf - dr.have)
			chunk = sizeof dr.buf - dr.have;
		memcpy(dr.buf + dr.have, data + off, chunk);
		dr.have += chunk;
		off += chunk;
		n = smtpd_feed(s, dr.buf, dr.have);
		if (n > dr.have)
			abort();
		memmove(dr.buf, dr.buf + n, dr.have - n);
		dr.have -= n;
		while (smtpd_event(s, &ev))
			on_event(&dr, &ev, arg);
		if (after_step != NULL)
			after_step(&dr, arg);
		smtpd_output(s, &len);
		if (len > SMTPD_OUT_MAX)
			abort();
		smtpd_output_ack(s, len);
		if (smtpd_closing(s))
			break;
	}
}

#endif
