/*
 * mta/net/log.h -- one line per event, "key=value" pairs, to stderr or syslog.
 *
 *   log_event("accept", "id=%s from=<%s> size=%llu", ...)
 *   stderr: "2026-11-29T02:09:00Z moat[123]: event=accept id=... from=<...> size=..."
 *   syslog: "<22>Nov 29 02:09:00 moat[123]: event=accept id=... from=<...> size=..."
 *
 * Values that come from the network are written with log_quote(), which
 * escapes spaces, quotes, control bytes and non-ASCII, so a client cannot
 * forge a log line or a key.  fatal() logs and exits 111.  Every event and
 * key is listed in docs/operations.md ("Logs").
 *
 * Syslog: log_open_syslog() connects a unix datagram socket (or a stream
 * socket, lines ended by LF, where only that is offered) such as /dev/log;
 * each line is one datagram, RFC 3164 framing as the C library's syslog()
 * writes it: "<PRI>Mmm dd hh:mm:ss moat[PID]: MESSAGE", PRI = facility * 8
 * + severity (events 6 info, warnings 4, fatal 2, debug 7), the time local.
 * A line the socket does not take at once (the daemon is gone or slow) is
 * never waited for: the socket is reconnected (at most once a second) and
 * the line goes to stderr meanwhile, so it is not lost and mail never waits
 * for the log.
 *
 * The tap sees every log_event(), whatever the level, with its name and its
 * key=value text: the metrics (policy/metrics.h) count the log's events, so
 * the two always agree.
 */
#ifndef MOAT_MTA_NET_LOG_H
#define MOAT_MTA_NET_LOG_H

#include <stddef.h>

enum log_level { LOG_OFF = 0, LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_init(const char *prog, enum log_level level);
void log_set_level(enum log_level level);

/* Send lines to the syslog socket at path with facility (a syslog code:
 * 2 mail, 3 daemon, ...).  Returns 0, or -1 with "PATH: why" in err and
 * the old destination kept. */
int log_open_syslog(const char *path, unsigned facility, char *err, size_t errcap);
/* Send lines to stderr (the default); closes a syslog socket. */
void log_use_stderr(void);
/* The syslog socket's descriptor, -1 when on stderr (a forked role keeps it). */
int log_fd(void);

/* Called with each event (name, "key=value ..." text of len bytes, not
 * NUL-terminated) before it is written; NULL removes it. */
typedef void log_tap_fn(void *arg, const char *event, const char *kv, size_t len);
void log_set_tap(log_tap_fn *fn, void *arg);

/* event=NAME followed by the formatted key=value pairs. */
void log_event(const char *name, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Copy s[0..len) into buf (cap bytes) as a log-safe token: printable ASCII
 * other than space, '"', '\\' and '=' kept, everything else as \xHH; cut
 * with "..." when too long.  Returns buf. */
char *log_quote(const char *s, size_t len, char *buf, size_t cap);

/* The same for a value written between double quotes (key="..."), such as
 * an error message: spaces are kept, '"' and '\\' become \x22 and \x5c. */
char *log_text(const char *s, size_t len, char *buf, size_t cap);

/* log_text() with the double quotes included, for a key=%s whose value is
 * text from the network that a reader wants to read as it was said: a
 * reply= value '"250 2.0.0 Ok: queued as 4Xz"' rather than
 * '250\x202.0.0\x20Ok:...'.  Always one line (CR, LF and controls are
 * \xHH), always closed by its '"' even when cut ("...").  Returns buf;
 * cap of at least 6. */
char *log_quoted(const char *s, size_t len, char *buf, size_t cap);

#endif
