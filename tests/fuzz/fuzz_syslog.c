/*
 * tests/fuzz/fuzz_syslog.c -- policy/syslog.c fed arbitrary bytes: as a
 * stream of octet-counted frames (each message inside the input, the walk
 * moving forward), as a destination string (one that parses formats back
 * to a string that parses to the same), and as the fields of a message
 * (whose header then holds exactly eight spaces before MSG when no field
 * is cut by the buffer).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/syslog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void frames(const char *buf, size_t len)
{
	size_t pos = 0;
	long r;
	const char *m;
	size_t ml;

	while ((r = syslog_unframe(buf + pos, len - pos, &m, &ml)) > 0) {
		if (m < buf + pos || m + ml > buf + len || (size_t)r > len - pos)
			abort();
		pos += (size_t)r;
	}
}

static void dest(const char *buf, size_t len)
{
	struct syslog_dest d, e;
	char text[SYSLOG_DEST_MAX];

	if (syslog_dest_parse(buf, len, &d) != 0)
		return;
	size_t n = syslog_dest_format(&d, text, sizeof text);
	if (n == 0)
		return;   /* a host with a space cannot be written back: refused */
	if (syslog_dest_parse(text, n, &e) != 0 || d.transport != e.transport || d.port != e.port ||
	    strcmp(d.host, e.host) != 0 || strcmp(d.ca, e.ca) != 0 || d.buffer != e.buffer ||
	    d.uid != e.uid || d.gid != e.gid)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct syslog_time t = { 2026, 1, 2, 3, 4, 5, 6 };
	char host[300], msg[SYSLOG_MSG_MAX + 1];
	size_t hl = size < sizeof host - 1 ? size : sizeof host - 1;

	frames(buf, size);
	dest(buf, size);
	memcpy(host, buf, hl);
	host[hl] = '\0';
	size_t n = syslog_format(msg, sizeof msg, data[0 % (size + 1)], &t, host, host, (long)size,
	                         host, buf, size);
	if (n >= sizeof msg || msg[n] != '\0')
		abort();
	char frame[SYSLOG_FRAME_MAX];
	size_t fl = syslog_frame(frame, sizeof frame, msg, n);
	const char *m;
	size_t ml;
	if (fl == 0 || syslog_unframe(frame, fl, &m, &ml) != (long)fl || ml != n || memcmp(m, msg, n) != 0)
		abort();
	return 0;
}
