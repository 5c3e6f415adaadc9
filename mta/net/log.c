/* mta/net/log.c -- see log.h */
#include "mta/net/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

/* Syslog severities (RFC 5424 6.2.1). */
#define SEV_CRIT    2
#define SEV_WARNING 4
#define SEV_INFO    6
#define SEV_DEBUG   7

static const char *log_prog = "moat";
static enum log_level log_lvl = LOG_INFO;
static log_tap_fn *log_tap;
static void *log_tap_arg;

/* The syslog destination: fd -1 means stderr. */
static struct {
	int      fd;
	int      stream;           /* SOCK_STREAM: lines end with LF */
	unsigned facility;
	char     path[108];        /* sizeof sun_path */
	time_t   retry_after;      /* no reconnect before this (seconds) */
} sl = { -1, 0, 2, "", 0 };

void log_init(const char *prog, enum log_level level)
{
	log_prog = prog;
	log_lvl = level;
}

void log_set_level(enum log_level level)
{
	log_lvl = level;
}

void log_set_tap(log_tap_fn *fn, void *arg)
{
	log_tap = fn;
	log_tap_arg = arg;
}

/* A socket connected to path: datagram, or stream where the server only
 * speaks that (EPROTOTYPE).  -1 with errno set. */
static int syslog_connect(const char *path, int *stream)
{
	struct sockaddr_un sun;
	int type, fd;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	for (type = 0; type < 2; type++) {
		fd = socket(AF_UNIX, (type ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -1;
		if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0) {
			*stream = type;
			return fd;
		}
		{
			int e = errno;

			close(fd);
			errno = e;
			if (e != EPROTOTYPE)
				return -1;
		}
	}
	return -1;
}

int log_open_syslog(const char *path, unsigned facility, char *err, size_t errcap)
{
	int stream = 0;
	int fd = syslog_connect(path, &stream);

	if (fd < 0) {
		snprintf(err, errcap, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (sl.fd >= 0)
		close(sl.fd);
	sl.fd = fd;
	sl.stream = stream;
	sl.facility = facility;
	snprintf(sl.path, sizeof sl.path, "%s", path);
	sl.retry_after = 0;
	return 0;
}

int log_fd(void)
{
	return sl.fd;
}

void log_use_stderr(void)
{
	if (sl.fd >= 0)
		close(sl.fd);
	sl.fd = -1;
	sl.path[0] = 0;
}

/* Append s[0..len) to line[0..n) (cap bytes, one kept for a LF). */
static size_t put(char *line, size_t n, size_t cap, const char *s, size_t len)
{
	if (len > cap - 1 - n)
		len = cap - 1 - n;
	memcpy(line + n, s, len);
	return n + len;
}

/* "TIME moat[PID]: " after line[0..n): syslog's local time (RFC 3164),
 * or ISO 8601 UTC. */
static size_t stamp(char *line, size_t n, size_t cap, int rfc3164, const struct timespec *ts)
{
	char pid[32];
	int r = snprintf(pid, sizeof pid, "[%ld]: ", (long)getpid());
	struct tm tm;

	if (rfc3164)
		n += strftime(line + n, cap - n, "%b %e %H:%M:%S ", localtime_r(&ts->tv_sec, &tm));
	else
		n += strftime(line + n, cap - n, "%Y-%m-%dT%H:%M:%SZ ", gmtime_r(&ts->tv_sec, &tm));
	n = put(line, n, cap, log_prog, strlen(log_prog));
	return put(line, n, cap, pid, r > 0 ? (size_t)r : 0);
}

/* One datagram; 0 when the socket took it whole. */
static int syslog_send(const char *msg, size_t len, int severity)
{
	char line[LOG_LINE_MAX + 64], pri[16];
	struct timespec ts;
	size_t n;
	int r;

	clock_gettime(CLOCK_REALTIME, &ts);
	r = snprintf(pri, sizeof pri, "<%u>", sl.facility * 8 + (unsigned)severity);
	n = put(line, 0, sizeof line, pri, r > 0 ? (size_t)r : 0);
	n = stamp(line, n, sizeof line, 1, &ts);
	n = put(line, n, sizeof line, msg, len);
	if (sl.stream)
		line[n++] = '\n';
	for (int attempt = 0; attempt < 2; attempt++) {
		ssize_t w;

		if (sl.fd < 0) {
			/* Reconnect, at most once a second (the daemon restarted). */
			if (ts.tv_sec < sl.retry_after || sl.path[0] == 0)
				return -1;
			sl.retry_after = ts.tv_sec + 1;
			sl.fd = syslog_connect(sl.path, &sl.stream);
			if (sl.fd < 0)
				return -1;
		}
		w = send(sl.fd, line, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w == (ssize_t)n)
			return 0;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS))
			return -1; /* busy: this line to stderr, the socket stays */
		close(sl.fd);  /* gone, or a partial stream write: start over */
		sl.fd = -1;
	}
	return -1;
}

/* One write(2) per line, so lines from several processes never interleave. */
static void log_line(const char *kind, const char *name, int severity, const char *kv,
                     size_t kvlen)
{
	char line[LOG_LINE_MAX + 64];
	struct timespec ts;
	size_t n, head;

	clock_gettime(CLOCK_REALTIME, &ts);
	head = stamp(line, 0, sizeof line, 0, &ts);
	n = put(line, head, sizeof line, kind, strlen(kind));
	n = put(line, n, sizeof line, "=", 1);
	n = put(line, n, sizeof line, name, strlen(name));
	n = put(line, n, sizeof line, " ", 1);
	n = put(line, n, sizeof line, kv, kvlen);
	if ((sl.fd >= 0 || sl.path[0]) && syslog_send(line + head, n - head, severity) == 0)
		return;
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
}

/* Format fmt into buf (LOG_LINE_MAX); returns the length. */
static size_t format_kv(char *buf, const char *fmt, va_list ap)
{
	int r = vsnprintf(buf, LOG_LINE_MAX, fmt, ap);

	if (r < 0)
		return 0;
	return (size_t)r < LOG_LINE_MAX ? (size_t)r : LOG_LINE_MAX - 1;
}

void log_event(const char *name, const char *fmt, ...)
{
	char kv[LOG_LINE_MAX];
	va_list ap;
	size_t n;

	if (log_lvl < LOG_INFO && log_tap == NULL)
		return;
	va_start(ap, fmt);
	n = format_kv(kv, fmt, ap);
	va_end(ap);
	if (log_tap != NULL)
		log_tap(log_tap_arg, name, kv, n);
	if (log_lvl >= LOG_INFO)
		log_line("event", name, SEV_INFO, kv, n);
}

void log_warn(const char *fmt, ...)
{
	char kv[LOG_LINE_MAX];
	va_list ap;
	size_t n;

	if (log_lvl < LOG_WARN)
		return;
	va_start(ap, fmt);
	n = format_kv(kv, fmt, ap);
	va_end(ap);
	log_line("level", "warn", SEV_WARNING, kv, n);
}

void log_debug(const char *fmt, ...)
{
	char kv[LOG_LINE_MAX];
	va_list ap;
	size_t n;

	if (log_lvl < LOG_DEBUG)
		return;
	va_start(ap, fmt);
	n = format_kv(kv, fmt, ap);
	va_end(ap);
	log_line("level", "debug", SEV_DEBUG, kv, n);
}

void fatal(const char *fmt, ...)
{
	char kv[LOG_LINE_MAX];
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	n = format_kv(kv, fmt, ap);
	va_end(ap);
	log_line("level", "fatal", SEV_CRIT, kv, n);
	exit(111);
}

/* Escape all but the bytes plain() keeps as \xHH. */
static char *escape(const char *s, size_t len, char *buf, size_t cap, int spaces)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i;

	if (cap == 0)
		return buf;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		int plain = (c > 0x20 || (spaces && c == 0x20)) && c < 0x7f && c != '"' && c != '\\' &&
		            (spaces || c != '=');
		size_t need = plain ? 1 : 4;

		if (o + need + 4 > cap) { /* room for "..." and NUL */
			if (o + 4 <= cap) {
				memcpy(buf + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (plain) {
			buf[o++] = (char)c;
		} else {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		}
	}
	buf[o] = 0;
	return buf;
}

char *log_quote(const char *s, size_t len, char *buf, size_t cap)
{
	return escape(s, len, buf, cap, 0);
}

char *log_text(const char *s, size_t len, char *buf, size_t cap)
{
	return escape(s, len, buf, cap, 1);
}

char *log_quoted(const char *s, size_t len, char *buf, size_t cap)
{
	size_t n;

	if (cap < 6) { /* '"', '"', NUL and room for "..." */
		if (cap > 0)
			buf[0] = 0;
		return buf;
	}
	buf[0] = '"';
	escape(s, len, buf + 1, cap - 2, 1);
	n = strlen(buf);
	buf[n] = '"';
	buf[n + 1] = 0;
	return buf;
}
