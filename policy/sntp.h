/*
 * policy/sntp.h -- SNTP (RFC 4330) packets and arithmetic, no I/O: the
 * request a client sends, the checks on a server's reply, and the clock
 * offset and round-trip delay from the four timestamps.  mta/init/clock.c
 * sends, receives and sets the clock.
 *
 * Timestamps are 64-bit NTP times (seconds since 1900 and a binary
 * fraction).  RFC 4330 section 3: a seconds field with its top bit clear
 * is taken to be in era 1 (from 7 February 2036), so the arithmetic works
 * until 2104.  On our side, times are nanoseconds since 1970 (Unix time).
 *
 * The client's transmit timestamp is not its clock: it is 64 random bits
 * from the caller (as chrony sends), which the server must echo as its
 * originate timestamp; an off-path forger has to guess them, and the
 * request tells nobody what our clock says.
 */
#ifndef MOAT_POLICY_SNTP_H
#define MOAT_POLICY_SNTP_H

#include <stddef.h>
#include <stdint.h>

#define SNTP_PKT_LEN 48
#define SNTP_PORT    123

/* NTP time: the wire form, seconds << 32 | fraction. */
typedef uint64_t sntp_ts;

/* Unix nanoseconds <-> NTP time (era per RFC 4330 section 3). */
sntp_ts sntp_from_unix_ns(int64_t ns);
int64_t sntp_to_unix_ns(sntp_ts t);

/* A version 4 client request (mode 3) carrying cookie as its transmit
 * timestamp, into buf (SNTP_PKT_LEN bytes).  Returns SNTP_PKT_LEN, or 0
 * when cap is too small. */
size_t sntp_request(unsigned char *buf, size_t cap, sntp_ts cookie);

enum sntp_status {
	SNTP_OK = 0,     /* a usable answer                                       */
	SNTP_BAD,        /* not an answer to our request, or malformed: ignore it */
	SNTP_KISS,       /* kiss-o'-death (stratum 0): do not ask this server again
	                    soon; the code is in kiss ("RATE", "DENY", ...)      */
	SNTP_UNSYNCED    /* the server says its clock is not set (LI 3, or
	                    stratum 16): do not use it                           */
};

struct sntp_reply {
	unsigned stratum;        /* 1 (a reference clock) .. 15 */
	sntp_ts  receive;        /* T2: when the server received our request */
	sntp_ts  transmit;       /* T3: when it sent this reply */
	char     kiss[5];        /* the kiss code, NUL-terminated, on SNTP_KISS */
};

/* Check msg[0..len) as the answer to the request that carried cookie:
 * at least 48 bytes, mode 4 (server), version 1 to 4, our cookie as its
 * originate timestamp, a non-zero receive and transmit time. */
enum sntp_status sntp_parse(const unsigned char *msg, size_t len, sntp_ts cookie,
                            struct sntp_reply *out);

/* RFC 4330 section 5, in nanoseconds: t1 our send time, t2 and t3 the
 * server's (from the reply, as Unix ns), t4 our receive time.  *offset is
 * what to add to our clock; *delay the round trip less the server's time. */
void sntp_offset(int64_t t1, int64_t t2, int64_t t3, int64_t t4, int64_t *offset, int64_t *delay);

#endif
