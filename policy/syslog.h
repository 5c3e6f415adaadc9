/*
 * policy/syslog.h -- remote syslog, the pure part: the message (RFC 5424),
 * its framing on a stream (RFC 6587 octet counting, also what RFC 5425
 * sends over TLS), and the destination string that carries `log remote`
 * from the config to the log (mta/net/log.h).  No I/O, no clock: the
 * caller passes the time.
 *
 * A message:
 *   <22>1 2026-11-29T02:09:00.123456Z mx.example.com moat 123 accept - event=accept id=...
 *   PRI VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG
 * PRI = facility * 8 + severity; MSGID is the event's name (or "warn",
 * "fatal", "debug"); no structured data ("-"); MSG is the log line's
 * key=value text, which log_quote() keeps to printable ASCII.  A field
 * that would break the header (empty, too long, a space or a byte outside
 * 33..126) is written as "-" (the NILVALUE), or cut to its limit.
 *
 * On a stream each message is "LENGTH SP MESSAGE" (LENGTH in decimal,
 * the bytes of MESSAGE).
 */
#ifndef MOAT_POLICY_SYSLOG_H
#define MOAT_POLICY_SYSLOG_H

#include <stddef.h>
#include <stdint.h>

#define SYSLOG_HOST_MAX    253   /* a host name, or an address as text */
#define SYSLOG_PATH_MAX    511
#define SYSLOG_MSG_MAX     4096  /* a formatted message, header included */
#define SYSLOG_FRAME_MAX   (SYSLOG_MSG_MAX + 16)
#define SYSLOG_DEST_MAX    1024  /* the destination string */

/* When the message was logged: UTC, as the caller's gmtime_r() gives it. */
struct syslog_time {
	int year, month, day, hour, minute, second;  /* month 1..12 */
	long usec;
};

/*
 * The message into buf: pri (0..191), at t, from host/app/procid, msgid,
 * then msg[0..len).  Returns its length (cut at cap and at SYSLOG_MSG_MAX,
 * whichever is less; never more than cap - 1, and buf NUL-terminated),
 * 0 when cap is 0.
 */
size_t syslog_format(char *buf, size_t cap, unsigned pri, const struct syslog_time *t,
                     const char *host, const char *app, long procid, const char *msgid,
                     const char *msg, size_t len);

/* "LEN SP msg" into buf; returns its length, or 0 when it does not fit. */
size_t syslog_frame(char *buf, size_t cap, const char *msg, size_t len);

/*
 * One octet-counted frame at buf[0..len): *msg and *mlen point at its
 * message.  Returns the bytes the frame takes, -2 when more are needed,
 * -1 when it is not a frame (no digits, a leading zero, no space after
 * them, or a length over SYSLOG_MSG_MAX).
 */
long syslog_unframe(const char *buf, size_t len, const char **msg, size_t *mlen);

/* ---------------------------------------------------------------- destination */

enum syslog_transport { SYSLOG_UDP = 1, SYSLOG_TCP, SYSLOG_TLS };

/*
 * Where `log remote` sends, and how: what conf_finish() writes into the
 * config's log socket and mta/net/log.c reads back.  As text:
 *
 *     udp://HOST:PORT [buffer=BYTES] [uid=N gid=N]
 *     tls://HOST:PORT ca=PATH [buffer=BYTES] [uid=N gid=N]
 *
 * HOST an IPv6 address in brackets, an IPv4 address or a host name; PATH
 * the CA bundle the server's certificate must lead to; BYTES how much is
 * kept while the server is away (default SYSLOG_BUFFER_DEFAULT); uid and
 * gid the user the sending process becomes when started as root.
 */
#define SYSLOG_BUFFER_DEFAULT (256 * 1024)
#define SYSLOG_BUFFER_MIN     (8 * 1024)
#define SYSLOG_BUFFER_MAX     (64 * 1024 * 1024)

struct syslog_dest {
	enum syslog_transport transport;
	char     host[SYSLOG_HOST_MAX + 1];   /* without brackets */
	uint16_t port;
	char     ca[SYSLOG_PATH_MAX + 1];     /* TLS only; "" otherwise */
	size_t   buffer;
	long     uid, gid;                    /* -1: not given */
};

/* The default port of a transport: 514 (UDP, TCP), 6514 (TLS). */
uint16_t syslog_default_port(enum syslog_transport t);

/* "udp", "tcp", "tls" -> the transport, 0 for anything else. */
enum syslog_transport syslog_transport_parse(const char *s, size_t len);
const char *syslog_transport_name(enum syslog_transport t);

/* Is s[0..len) a remote destination (it begins with "udp://", "tcp://" or
 * "tls://"), as opposed to a syslog socket's path? */
int syslog_dest_is_remote(const char *s, size_t len);

/* d as its text into buf; returns the length, or 0 when it does not fit
 * (or d is not valid: TLS without ca, a host with a space). */
size_t syslog_dest_format(const struct syslog_dest *d, char *buf, size_t cap);

/* The text back into *out.  Returns 0, or -1 when it is not one (unknown
 * scheme or option, a port outside 1..65535, TLS without ca, a buffer
 * outside SYSLOG_BUFFER_MIN..MAX). */
int syslog_dest_parse(const char *s, size_t len, struct syslog_dest *out);

#endif
