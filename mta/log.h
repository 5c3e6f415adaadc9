/*
 * mta/log.h -- one line per event, "key=value" pairs, to stderr.
 *
 *   log_event("accept", "id=%s from=<%s> size=%llu", ...)
 *   -> "2026-11-29T02:09:00Z moat[123]: event=accept id=... from=<...> size=..."
 *
 * Values that come from the network are written with log_quote(), which
 * escapes spaces, quotes, control bytes and non-ASCII, so a client cannot
 * forge a log line or a key.  fatal() logs and exits 111.
 */
#ifndef MOAT_MTA_LOG_H
#define MOAT_MTA_LOG_H

#include <stddef.h>

enum log_level { LOG_OFF = 0, LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_init(const char *prog, enum log_level level);
void log_set_level(enum log_level level);

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

#endif
