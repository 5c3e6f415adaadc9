/* policy/sntp.c -- SNTP packets and arithmetic; see sntp.h */
#include "policy/sntp.h"

#include <string.h>

#include "policy/wire.h"

/* Seconds from 1900-01-01 to 1970-01-01. */
#define NTP_UNIX_DELTA 2208988800ll
#define NS 1000000000ll


sntp_ts sntp_from_unix_ns(int64_t ns)
{
	int64_t sec = ns / NS, rem = ns % NS;

	if (rem < 0) {
		rem += NS;
		sec--;
	}
	/* Era 0 and era 1 alike: the wire keeps the low 32 bits of the seconds. */
	uint64_t s = (uint64_t)(sec + NTP_UNIX_DELTA) & 0xffffffffu;
	uint64_t frac = ((uint64_t)rem << 32) / (uint64_t)NS;
	return s << 32 | frac;
}

int64_t sntp_to_unix_ns(sntp_ts t)
{
	uint64_t s = t >> 32, frac = t & 0xffffffffu;
	/* Top bit clear: era 1, 2036-2104 (RFC 4330 section 3). */
	int64_t sec = (int64_t)s + ((s & 0x80000000u) ? 0 : 0x100000000ll) - NTP_UNIX_DELTA;

	return sec * NS + (int64_t)((frac * (uint64_t)NS) >> 32);
}

size_t sntp_request(unsigned char *buf, size_t cap, sntp_ts cookie)
{
	if (cap < SNTP_PKT_LEN)
		return 0;
	memset(buf, 0, SNTP_PKT_LEN);
	buf[0] = 0 << 6 | 4 << 3 | 3;   /* LI 0, version 4, mode 3 (client) */
	wire_put_be32(buf + 40, (uint32_t)(cookie >> 32));
	wire_put_be32(buf + 44, (uint32_t)cookie);
	return SNTP_PKT_LEN;
}

enum sntp_status sntp_parse(const unsigned char *msg, size_t len, sntp_ts cookie,
                            struct sntp_reply *out)
{
	unsigned li, vn, mode;

	memset(out, 0, sizeof *out);
	if (len < SNTP_PKT_LEN)
		return SNTP_BAD;
	li = msg[0] >> 6;
	vn = msg[0] >> 3 & 7;
	mode = msg[0] & 7;
	if (mode != 4 || vn < 1 || vn > 4 || wire_be64(msg + 24) != cookie)
		return SNTP_BAD;
	out->stratum = msg[1];
	out->receive = wire_be64(msg + 32);
	out->transmit = wire_be64(msg + 40);
	if (out->stratum == 0) {
		/* The reference ID holds four ASCII letters: the kiss code. */
		for (size_t k = 0; k < 4; k++)
			out->kiss[k] = msg[12 + k] >= 0x20 && msg[12 + k] < 0x7f ? (char)msg[12 + k] : '?';
		return SNTP_KISS;
	}
	if (li == 3 || out->stratum > 15)
		return SNTP_UNSYNCED;
	if (out->receive == 0 || out->transmit == 0)
		return SNTP_BAD;
	return SNTP_OK;
}

void sntp_offset(int64_t t1, int64_t t2, int64_t t3, int64_t t4, int64_t *offset, int64_t *delay)
{
	/* Halve each difference before adding: a clock decades off must not
	 * overflow 64 bits. */
	*offset = (t2 - t1) / 2 + (t3 - t4) / 2;
	*delay = (t4 - t1) - (t3 - t2);
	if (*delay < 0)
		*delay = 0;
}
