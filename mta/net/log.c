/* mta/net/log.c -- see log.h */
#include "mta/net/log.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "mta/net/tls.h"
#include "policy/syslog.h"

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

/* The syslog destination: fd -1 means stderr.  With remote set, fd is
 * this process's end of the link to the remote log process (see "remote"
 * below) and lines go to stderr as well. */
static struct {
	int      fd;
	int      stream;           /* SOCK_STREAM: lines end with LF */
	unsigned facility;
	char     path[108];        /* sizeof sun_path */
	time_t   retry_after;      /* no reconnect before this (seconds) */
	int      remote;
} sl = { -1, 0, 2, "", 0, 0 };

static int remote_open(const char *dest, unsigned facility, char *err, size_t errcap);
static void remote_send(const char *msgid, int severity, const struct timespec *ts,
                        const char *msg, size_t len);

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
	int fd;

	if (syslog_dest_is_remote(path, strlen(path)))
		return remote_open(path, facility, err, errcap);
	fd = syslog_connect(path, &stream);

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
	sl.remote = 0;
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
	sl.remote = 0;
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
	if (sl.remote) {
		/* MSGID: the event's name, or the level ("warn") of other lines. */
		remote_send(name, severity, &ts, line + head, n - head);
	} else if ((sl.fd >= 0 || sl.path[0]) && syslog_send(line + head, n - head, severity) == 0) {
		return;
	}
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

/* ---------------------------------------------------------------- remote
 *
 * log remote: a process of its own, started here by the process that
 * opens the destination (the supervisor), sends the lines on.  Every
 * process of moat logs as before (each line on stderr) and also hands the
 * line, formatted as RFC 5424, to that process over a SOCK_SEQPACKET
 * socketpair, never waiting: a line the link does not take at once is
 * counted as dropped and the count travels with the next line.  The
 * remote log process keeps up to the configured buffer of lines (oldest
 * dropped first, counted) while the server is unreachable, reconnects
 * with a growing delay (1 s to 30 s), and when it is back, sends
 * "event=log-dropped lines=N" before the rest and says it on stderr too.
 * UDP has no connection: lines are sent as they come, and an ICMP refusal
 * (the port is closed) makes the process wait and keep them, as for TCP.
 * It ends when every holder of the link has closed it (all of moat has
 * exited), after sending what it holds (at most 5 s more).  Started as
 * root, it becomes the destination's uid/gid after reading the CA file.
 */

#define REMOTE_MAGIC      0x6d6c   /* "ml": a line from log.c */
#define REMOTE_BACKOFF_MAX 30000
#define REMOTE_FLUSH_MS    5000

/* What a writer puts before each line on the link. */
struct remote_hdr {
	uint16_t magic;
	uint16_t severity;
	uint32_t dropped;   /* lines this writer could not hand over before this one */
};

static struct {
	char     dest[SYSLOG_DEST_MAX];   /* as opened: a new one restarts the process */
	char     host[256];               /* the HOSTNAME field: gethostname() at open */
	unsigned facility;
	uint32_t dropped;
} rl;

static void remote_send(const char *msgid, int severity, const struct timespec *ts,
                        const char *msg, size_t len)
{
	char buf[sizeof(struct remote_hdr) + SYSLOG_MSG_MAX + 1];
	struct remote_hdr h = { REMOTE_MAGIC, (uint16_t)severity, rl.dropped };
	struct syslog_time t;
	struct tm tm;
	size_t n;

	gmtime_r(&ts->tv_sec, &tm);
	t = (struct syslog_time){ tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	                          tm.tm_min, tm.tm_sec, ts->tv_nsec / 1000 };
	memcpy(buf, &h, sizeof h);
	n = syslog_format(buf + sizeof h, sizeof buf - sizeof h, rl.facility * 8 + (unsigned)severity,
	                  &t, rl.host, log_prog, (long)getpid(), msgid, msg, len);
	if (send(sl.fd, buf, sizeof h + n, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)(sizeof h + n))
		rl.dropped = 0;
	else
		rl.dropped++;
}

/* The lines kept while the server is away: a byte ring of entries, each a
 * 2-byte length and the message. */
struct ring {
	unsigned char *b;
	size_t cap, head, used, entries;
};

static void ring_copy_out(const struct ring *r, size_t at, void *dst, size_t n)
{
	size_t first = r->cap - at < n ? r->cap - at : n;

	memcpy(dst, r->b + at, first);
	memcpy((unsigned char *)dst + first, r->b, n - first);
}

static void ring_copy_in(struct ring *r, size_t at, const void *src, size_t n)
{
	size_t first = r->cap - at < n ? r->cap - at : n;

	memcpy(r->b + at, src, first);
	memcpy(r->b, (const unsigned char *)src + first, n - first);
}

/* The oldest message into out (SYSLOG_MSG_MAX bytes) and off the ring;
 * its length, or 0 when the ring is empty. */
static size_t ring_pop(struct ring *r, char *out)
{
	uint16_t n;

	if (r->entries == 0)
		return 0;
	ring_copy_out(r, r->head, &n, 2);
	ring_copy_out(r, (r->head + 2) % r->cap, out, n);
	r->head = (r->head + 2 + n) % r->cap;
	r->used -= 2 + (size_t)n;
	r->entries--;
	return n;
}

/* Keep msg, dropping the oldest until it fits; returns how many went. */
static uint32_t ring_push(struct ring *r, const char *msg, size_t n)
{
	char scratch[SYSLOG_MSG_MAX];
	uint16_t len = (uint16_t)n;
	uint32_t dropped = 0;

	if (n > SYSLOG_MSG_MAX || 2 + n > r->cap)
		return 1;
	while (r->cap - r->used < 2 + n) {
		(void)ring_pop(r, scratch);
		dropped++;
	}
	size_t tail = (r->head + r->used) % r->cap;
	ring_copy_in(r, tail, &len, 2);
	ring_copy_in(r, (tail + 2) % r->cap, msg, n);
	r->used += 2 + n;
	r->entries++;
	return dropped;
}

enum conn_state { C_DOWN = 0, C_CONNECTING, C_HANDSHAKE, C_UP };

/* The remote log process's state. */
struct shipper {
	struct syslog_dest d;
	struct tls_anchors *anchors;
	struct ring ring;
	int      in;              /* the link from the writers; -1 after EOF */
	int      fd;              /* the connection to the server, -1 none */
	enum conn_state state;
	struct tls *tls;
	int64_t  retry_at, backoff, flush_until;
	uint32_t dropped;         /* since the server was last reachable */
	char     cur[SYSLOG_FRAME_MAX];  /* what is being sent: a frame (TCP, TLS) or a datagram */
	size_t   cur_len, cur_off;
	char     notice[SYSLOG_MSG_MAX + 1]; /* event=log-dropped: sent before the ring */
	size_t   notice_len;
	int      said_down;       /* the server is said to be away */
	int      ever_up;
	int64_t  probe_until;     /* UDP: refusals of the first line are awaited until then */
	int      probed;          /* UDP: that line is sent */
	/* The server's addresses (its name resolved at the first try of a
	 * round), tried in turn before the round counts as a failure. */
	struct sockaddr_storage addr[4];
	socklen_t addrlen[4];
	int      naddr, next_addr;
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void conn_close(struct shipper *s, const char *why)
{
	if (s->tls != NULL)
		tls_free(s->tls);
	s->tls = NULL;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->state = C_DOWN;
	s->cur_off = 0;           /* a frame cut by the failure is sent again whole */
	if (s->next_addr < s->naddr) {
		s->retry_at = mono_ms();  /* the server's next address, at once */
		return;
	}
	s->naddr = s->next_addr = 0;
	s->retry_at = mono_ms() + s->backoff;
	s->backoff = s->backoff * 2 > REMOTE_BACKOFF_MAX ? REMOTE_BACKOFF_MAX : s->backoff * 2;
	if (!s->said_down && why != NULL)
		log_warn("msg=\"log server %s:%u: %s: keeping lines (up to %zu bytes)\"", s->d.host,
		         s->d.port, why, s->d.buffer);
	s->said_down = 1;
}

/* Resolve the server's name (blocking: only this process waits) into
 * s->addr.  0, or -1 with why set. */
static int resolve(struct shipper *s, int type, const char **why)
{
	struct addrinfo hints, *ai = NULL, *a;
	char port[8];
	int r;

	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = type;
	snprintf(port, sizeof port, "%u", s->d.port);
	if ((r = getaddrinfo(s->d.host, port, &hints, &ai)) != 0 || ai == NULL) {
		*why = r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r);
		return -1;
	}
	s->naddr = s->next_addr = 0;
	for (a = ai; a != NULL && s->naddr < 4; a = a->ai_next) {
		if (a->ai_addrlen > sizeof s->addr[0])
			continue;
		memcpy(&s->addr[s->naddr], a->ai_addr, a->ai_addrlen);
		s->addrlen[s->naddr++] = a->ai_addrlen;
	}
	freeaddrinfo(ai);
	return 0;
}

/* Start connecting, non-blocking, to the server's next address. */
static void conn_start(struct shipper *s)
{
	int type = s->d.transport == SYSLOG_UDP ? SOCK_DGRAM : SOCK_STREAM, k;
	const char *why = "no address";

	if (s->next_addr >= s->naddr && (resolve(s, type, &why) != 0 || s->naddr == 0)) {
		s->naddr = s->next_addr = 0;
		conn_close(s, why);
		return;
	}
	k = s->next_addr++;
	s->fd = socket(s->addr[k].ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0 || (connect(s->fd, (struct sockaddr *)&s->addr[k], s->addrlen[k]) != 0 &&
	                  errno != EINPROGRESS)) {
		conn_close(s, strerror(errno));
		return;
	}
	s->state = type == SOCK_DGRAM ? C_HANDSHAKE : C_CONNECTING;
	s->probe_until = mono_ms() + 250;
	s->probed = 0;
}

/* The connection is ready for lines: say what was lost while it was not. */
static void conn_ready(struct shipper *s)
{
	s->state = C_UP;
	s->backoff = 1000;
	s->naddr = s->next_addr = 0;   /* after a failure, resolve again */
	if (s->said_down || !s->ever_up)
		log_event("log-remote", "state=up server=%s:%u", s->d.host, s->d.port);
	s->said_down = 0;
	s->ever_up = 1;
	if (s->dropped > 0) {
		char kv[64], msg[SYSLOG_MSG_MAX + 1];
		struct timespec ts;
		struct tm tm;
		struct syslog_time t;
		int n = snprintf(kv, sizeof kv, "event=log-dropped lines=%u", s->dropped);

		log_event("log-dropped", "lines=%u server=%s:%u", s->dropped, s->d.host, s->d.port);
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		t = (struct syslog_time){ tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		                          tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000 };
		size_t len = syslog_format(msg, sizeof msg, rl.facility * 8 + 4, &t, rl.host, log_prog,
		                           (long)getpid(), "log-dropped", kv, n > 0 ? (size_t)n : 0);
		s->notice_len = len;
		memcpy(s->notice, msg, len);
		s->dropped = 0;
	}
}

static int pending(const struct shipper *s)
{
	return s->cur_len > 0 || s->notice_len > 0 || s->ring.entries > 0;
}

/* The next message into cur (framed on a stream): the notice first, then
 * the ring's oldest.  Returns 0 when there is nothing to send. */
static int next_frame(struct shipper *s)
{
	char msg[SYSLOG_MSG_MAX + 1];
	size_t n;

	if (s->cur_len > 0)
		return 1;
	if (s->notice_len > 0) {
		n = s->notice_len;
		memcpy(msg, s->notice, n);
		s->notice_len = 0;
	} else if ((n = ring_pop(&s->ring, msg)) == 0) {
		return 0;
	}
	if (s->d.transport == SYSLOG_UDP) {
		memcpy(s->cur, msg, n);
		s->cur_len = n;
	} else {
		s->cur_len = syslog_frame(s->cur, sizeof s->cur, msg, n);
	}
	s->cur_off = 0;
	return s->cur_len > 0;
}

/* Why a TLS connection to the server failed.  The certificate
 * checks' codes are named here (mta/net/tls.c names the handshake's): they are
 * what an operator of a log server will meet. */
static const char *tls_why(const struct tls *t)
{
	static const struct { int code; const char *name; } x509[] = {
		{ 48, "BR_ERR_X509_BAD_TIME" }, { 52, "BR_ERR_X509_BAD_SIGNATURE" },
		{ 53, "BR_ERR_X509_TIME_UNKNOWN" }, { 54, "BR_ERR_X509_EXPIRED" },
		{ 55, "BR_ERR_X509_DN_MISMATCH" }, { 56, "BR_ERR_X509_BAD_SERVER_NAME" },
		{ 58, "BR_ERR_X509_NOT_CA" }, { 60, "BR_ERR_X509_WEAK_PUBLIC_KEY" },
		{ 62, "BR_ERR_X509_NOT_TRUSTED" },
	};
	int e = t != NULL ? tls_error(t) : 0;

	if (e == 0)
		return "closed";
	for (size_t k = 0; k < sizeof x509 / sizeof x509[0]; k++)
		if (x509[k].code == e)
			return x509[k].name;
	return tls_error_name(e);
}

/* Move TLS records between the engine and the socket until neither can
 * move; 0, or -1 when the connection failed or closed. */
static int tls_pump(struct shipper *s)
{
	const unsigned char *out;
	unsigned char *in;
	size_t len;
	ssize_t r;

	for (;;) {
		if ((out = tls_net_out(s->tls, &len)) != NULL && len > 0) {
			r = send(s->fd, out, len, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (r > 0) {
				tls_net_out_done(s->tls, (size_t)r);
				continue;
			}
			if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
				return -1;
		}
		if ((in = tls_net_in(s->tls, &len)) != NULL && len > 0) {
			r = recv(s->fd, in, len, MSG_DONTWAIT);
			if (r > 0) {
				tls_net_in_done(s->tls, (size_t)r);
				continue;
			}
			if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
				return -1;
		}
		break;
	}
	while (tls_app_in(s->tls, &len) != NULL && len > 0)
		tls_app_in_done(s->tls, len);   /* a log server has nothing to say */
	if (tls_state(s->tls) == TLS_FAILED || tls_state(s->tls) == TLS_CLOSED)
		return -1;
	if (s->state == C_HANDSHAKE && tls_state(s->tls) == TLS_OPEN)
		conn_ready(s);
	return 0;
}

/* Send what waits, as far as the socket takes it. */
static void conn_write(struct shipper *s)
{
	while (s->state == C_UP && next_frame(s)) {
		const char *p = s->cur + s->cur_off;
		size_t left = s->cur_len - s->cur_off;
		ssize_t r;

		if (s->d.transport == SYSLOG_TLS) {
			size_t took = tls_app_write(s->tls, p, left);
			tls_app_flush(s->tls);
			if (tls_pump(s) != 0) {
				conn_close(s, tls_why(s->tls));
				return;
			}
			if (took == 0)
				return;   /* the engine is full: wait for the socket */
			r = (ssize_t)took;
		} else {
			r = send(s->fd, p, left, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (r < 0) {
				if (errno != EAGAIN && errno != EWOULDBLOCK)
					conn_close(s, strerror(errno));
				return;
			}
			/* A datagram goes whole or not at all. */
			if (s->d.transport == SYSLOG_UDP)
				r = (ssize_t)left;
		}
		s->cur_off += (size_t)r;
		if (s->cur_off == s->cur_len)
			s->cur_len = s->cur_off = 0;
	}
}

/* The socket is connected (or failed): on to TLS, or ready. */
static void conn_connected(struct shipper *s)
{
	int e = 0;
	socklen_t el = sizeof e;
	unsigned char probe[16];
	int literal = inet_pton(AF_INET, s->d.host, &probe) == 1 ||
	              inet_pton(AF_INET6, s->d.host, &probe) == 1;

	if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0 || e != 0) {
		conn_close(s, strerror(e ? e : errno));
		return;
	}
	if (s->d.transport != SYSLOG_TLS) {
		conn_ready(s);
		return;
	}
	/* An address has no name to check in the certificate (BearSSL does
	 * not match IP SANs): the chain is still checked against the CA. */
	s->tls = tls_client_new(literal ? NULL : s->d.host, s->anchors);
	if (s->tls == NULL) {
		conn_close(s, "TLS: out of memory");
		return;
	}
	s->state = C_HANDSHAKE;
	if (tls_pump(s) != 0)
		conn_close(s, tls_why(s->tls));
}

/* Lines from the writers: into the ring, their drops counted. */
static void take_lines(struct shipper *s)
{
	char buf[sizeof(struct remote_hdr) + SYSLOG_MSG_MAX + 1];
	struct remote_hdr h;

	for (;;) {
		ssize_t r = recv(s->in, buf, sizeof buf, MSG_DONTWAIT);
		if (r == 0) {
			close(s->in);
			s->in = -1;
			s->flush_until = mono_ms() + REMOTE_FLUSH_MS;
			return;
		}
		if (r < 0)
			return;
		if ((size_t)r < sizeof h)
			continue;
		memcpy(&h, buf, sizeof h);
		if (h.magic != REMOTE_MAGIC)
			continue;
		s->dropped += h.dropped + ring_push(&s->ring, buf + sizeof h, (size_t)r - sizeof h);
	}
}

static short conn_events(const struct shipper *s)
{
	size_t len;

	switch (s->state) {
	case C_CONNECTING:
		return POLLOUT;
	case C_HANDSHAKE:
		if (s->tls == NULL)
			return POLLIN;   /* UDP: a refusal of the probe */
		return (short)(POLLIN | (tls_net_out(s->tls, &len) != NULL && len > 0 ? POLLOUT : 0));
	case C_UP:
		if (s->tls != NULL && tls_net_out(s->tls, &len) != NULL && len > 0)
			return POLLIN | POLLOUT;
		return (short)(POLLIN | (pending(s) ? POLLOUT : 0));
	default:
		return 0;
	}
}

/* Readable while up: a TLS record, a refusal (UDP), or the server leaving. */
static void conn_readable(struct shipper *s)
{
	char scratch[512];
	ssize_t r;

	if (s->tls != NULL) {
		if (tls_pump(s) != 0)
			conn_close(s, tls_why(s->tls));
		return;
	}
	r = recv(s->fd, scratch, sizeof scratch, MSG_DONTWAIT);
	if (r == 0 && s->d.transport != SYSLOG_UDP) {
		conn_close(s, "closed by the server");
	} else if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
		/* UDP: the refusal is for a datagram already gone: count it. */
		if (s->d.transport == SYSLOG_UDP)
			s->dropped++;
		conn_close(s, strerror(errno));
	}
}

/* UDP after (re)connecting: one line is sent alone and the rest wait
 * 250 ms for an ICMP refusal of it, so that a server still away costs one
 * line (counted), not the backlog, and the count of what was dropped is
 * sent only once lines get through. */
static void udp_probe(struct shipper *s, int64_t now)
{
	if (!s->probed && s->notice_len == 0 && next_frame(s)) {
		s->probed = 1;
		if (send(s->fd, s->cur, s->cur_len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
		    errno != EAGAIN && errno != EWOULDBLOCK) {
			conn_close(s, strerror(errno));
			return;
		}
		s->cur_len = s->cur_off = 0;
	}
	if (now >= s->probe_until)
		conn_ready(s);
}

static void ship(struct shipper *s)
{
	for (;;) {
		int64_t now = mono_ms();
		struct pollfd pf[2];
		nfds_t n = 0;
		int timeout = -1;

		if (s->in < 0 && (!pending(s) || now >= s->flush_until))
			return;
		if (s->state == C_DOWN && now >= s->retry_at)
			conn_start(s);
		if (s->state == C_HANDSHAKE && s->d.transport == SYSLOG_UDP) {
			udp_probe(s, now);
			if (s->state == C_HANDSHAKE)
				timeout = (int)(s->probe_until - now) + 1;
		}
		if (s->state == C_DOWN)
			timeout = (int)(s->retry_at - now);
		if (s->in < 0 && (timeout < 0 || s->flush_until - now < timeout))
			timeout = (int)(s->flush_until - now);
		pf[n++] = (struct pollfd){ s->in, POLLIN, 0 };
		if (s->fd >= 0)
			pf[n++] = (struct pollfd){ s->fd, conn_events(s), 0 };
		if (poll(pf, n, timeout < 0 ? -1 : timeout) < 0 && errno != EINTR)
			return;
		if (pf[0].revents)
			take_lines(s);
		if (n > 1 && pf[1].revents) {
			if (s->state == C_CONNECTING)
				conn_connected(s);
			else if (pf[1].revents & (POLLIN | POLLERR | POLLHUP))
				conn_readable(s);
			else if (s->tls != NULL && tls_pump(s) != 0)
				conn_close(s, tls_why(s->tls));
		}
		conn_write(s);
	}
}

/* Keep 0, 1, 2 and in (as 3); close the rest (listeners, links). */
static int close_all_but(int in)
{
	if (in != 3) {
		if (dup2(in, 3) < 0)
			return -1;
		close(in);
	}
	if (syscall(SYS_close_range, 4u, ~0u, 0u) != 0)
		for (int fd = 4; fd < 65536; fd++)
			close(fd);
	return 3;
}

static _Noreturn void remote_main(const struct syslog_dest *d, struct tls_anchors *anchors, int in)
{
	static struct shipper s;
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Only the writers' going away ends it: it sends their last lines. */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	(void)prctl(PR_SET_NAME, "moat-log", 0, 0, 0);
	sl.fd = -1;                  /* its own lines: stderr only */
	sl.remote = 0;
	log_tap = NULL;
	s.in = close_all_but(in);
	if (getuid() == 0 && d->uid >= 0 &&
	    (setgroups(0, NULL) != 0 || setresgid((gid_t)d->gid, (gid_t)d->gid, (gid_t)d->gid) != 0 ||
	     setresuid((uid_t)d->uid, (uid_t)d->uid, (uid_t)d->uid) != 0)) {
		log_warn("msg=\"remote log: cannot become uid %ld: %s\"", d->uid, strerror(errno));
		_exit(111);
	}
	(void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	s.d = *d;
	s.anchors = anchors;
	s.fd = -1;
	s.backoff = 1000;
	s.ring.cap = d->buffer;
	s.ring.b = malloc(s.ring.cap);
	if (s.ring.b == NULL || s.in < 0)
		_exit(111);
	ship(&s);
	_exit(0);
}

/* The CA bundle a TLS server must lead to, read by the opener (it may be
 * root's to read).  NULL with err set. */
static struct tls_anchors *remote_anchors(const char *path, char *err, size_t errcap)
{
	char e[256];
	size_t cap = 4u << 20, len = 0;
	char *text = malloc(cap);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r;
	struct tls_anchors *a = NULL;

	if (text == NULL || fd < 0) {
		snprintf(err, errcap, "%s: %s", path, text == NULL ? "out of memory" : strerror(errno));
		free(text);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	while (len < cap && (r = read(fd, text + len, cap - len)) > 0)
		len += (size_t)r;
	close(fd);
	a = tls_anchors_load(text, len, path, e, sizeof e);
	if (a == NULL)
		snprintf(err, errcap, "%s", e);
	free(text);
	return a;
}

static int remote_open(const char *dest, unsigned facility, char *err, size_t errcap)
{
	struct syslog_dest d;
	struct tls_anchors *anchors = NULL;
	int sp[2];
	pid_t pid;

	if (syslog_dest_parse(dest, strlen(dest), &d) != 0) {
		snprintf(err, errcap, "%s: not a remote log destination", dest);
		return -1;
	}
	if (sl.remote && sl.fd >= 0 && strcmp(rl.dest, dest) == 0 && rl.facility == facility)
		return 0;   /* the same: the running process keeps its lines */
	if (d.transport == SYSLOG_TLS && (anchors = remote_anchors(d.ca, err, errcap)) == NULL)
		return -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0 || (pid = fork()) < 0) {
		snprintf(err, errcap, "remote log: %s", strerror(errno));
		if (anchors != NULL)
			tls_anchors_free(anchors);
		return -1;
	}
	if (pid == 0) {
		close(sp[0]);
		remote_main(&d, anchors, sp[1]);
	}
	close(sp[1]);
	if (anchors != NULL)
		tls_anchors_free(anchors);
	if (sl.fd >= 0)
		close(sl.fd);   /* the old process sends what it holds and ends */
	sl.fd = sp[0];
	sl.remote = 1;
	sl.path[0] = 0;
	snprintf(rl.dest, sizeof rl.dest, "%s", dest);
	rl.facility = facility;
	rl.dropped = 0;
	if (gethostname(rl.host, sizeof rl.host - 1) != 0)
		rl.host[0] = '\0';
	return 0;
}
