/* mta/log.c -- see log.h */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "moat";
static enum log_level log_lvl = LOG_INFO;

void log_init(const char *prog, enum log_level level)
{
	log_prog = prog;
	log_lvl = level;
}

void log_set_level(enum log_level level)
{
	log_lvl = level;
}

/* One write(2) per line, so lines from several processes never interleave. */
static void log_line(const char *kind, const char *name, const char *fmt, va_list ap)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int r;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%SZ ", &tm);
	r = snprintf(line + n, sizeof line - n, "%s[%ld]: %s=%s ", log_prog, (long)getpid(), kind, name);
	if (r > 0)
		n += (size_t)r < sizeof line - n ? (size_t)r : sizeof line - n - 1;
	r = vsnprintf(line + n, sizeof line - n, fmt, ap);
	if (r > 0)
		n += (size_t)r < sizeof line - n ? (size_t)r : sizeof line - n - 1;
	if (n >= sizeof line - 1)
		n = sizeof line - 2;
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
}

void log_event(const char *name, const char *fmt, ...)
{
	va_list ap;

	if (log_lvl < LOG_INFO)
		return;
	va_start(ap, fmt);
	log_line("event", name, fmt, ap);
	va_end(ap);
}

void log_warn(const char *fmt, ...)
{
	va_list ap;

	if (log_lvl < LOG_WARN)
		return;
	va_start(ap, fmt);
	log_line("level", "warn", fmt, ap);
	va_end(ap);
}

void log_debug(const char *fmt, ...)
{
	va_list ap;

	if (log_lvl < LOG_DEBUG)
		return;
	va_start(ap, fmt);
	log_line("level", "debug", fmt, ap);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line("level", "fatal", fmt, ap);
	va_end(ap);
	exit(111);
}

char *log_quote(const char *s, size_t len, char *buf, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i;

	if (cap == 0)
		return buf;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		int plain = c > 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '=';
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
