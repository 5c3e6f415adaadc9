/* policy/syslog.c -- remote syslog messages, framing, destination; see syslog.h */
#include "policy/syslog.h"

#include <stdio.h>
#include <string.h>

/* Append s[0..n) to buf[*o], stopping one byte short of cap. */
static void put(char *buf, size_t cap, size_t *o, const char *s, size_t n)
{
	size_t room = cap - 1 - *o;

	if (n > room)
		n = room;
	memcpy(buf + *o, s, n);
	*o += n;
}

/* A header field: printable ASCII without space, 1..max bytes (longer is
 * cut), or "-" (RFC 5424 6: NILVALUE). */
static void field(char *buf, size_t cap, size_t *o, const char *s, size_t max)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n > max)
		n = max;
	for (size_t k = 0; k < n; k++)
		if ((unsigned char)s[k] < 33 || (unsigned char)s[k] > 126)
			n = 0;
	if (n == 0)
		put(buf, cap, o, "-", 1);
	else
		put(buf, cap, o, s, n);
	put(buf, cap, o, " ", 1);
}

size_t syslog_format(char *buf, size_t cap, unsigned pri, const struct syslog_time *t,
                     const char *host, const char *app, long procid, const char *msgid,
                     const char *msg, size_t len)
{
	char head[64], pid[24];
	size_t o = 0;
	int n;

	if (cap == 0)
		return 0;
	if (cap > SYSLOG_MSG_MAX + 1)
		cap = SYSLOG_MSG_MAX + 1;
	n = snprintf(head, sizeof head, "<%u>1 %04d-%02d-%02dT%02d:%02d:%02d.%06ldZ ", pri > 191 ? 191 : pri,
	             t->year, t->month, t->day, t->hour, t->minute, t->second, t->usec);
	put(buf, cap, &o, head, n > 0 && (size_t)n < sizeof head ? (size_t)n : 0);
	field(buf, cap, &o, host, 255);
	field(buf, cap, &o, app, 48);
	snprintf(pid, sizeof pid, "%ld", procid);
	field(buf, cap, &o, procid > 0 ? pid : NULL, 128);
	field(buf, cap, &o, msgid, 32);
	put(buf, cap, &o, "- ", 2);   /* no structured data */
	put(buf, cap, &o, msg, len);
	buf[o] = '\0';
	return o;
}

size_t syslog_frame(char *buf, size_t cap, const char *msg, size_t len)
{
	int n = snprintf(buf, cap, "%zu ", len);

	if (n < 0 || (size_t)n + len > cap || len > SYSLOG_MSG_MAX)
		return 0;
	memcpy(buf + n, msg, len);
	return (size_t)n + len;
}

long syslog_unframe(const char *buf, size_t len, const char **msg, size_t *mlen)
{
	size_t k = 0, n = 0;

	while (k < len && buf[k] >= '0' && buf[k] <= '9') {
		if (k == 0 && buf[k] == '0')
			return -1;
		n = n * 10 + (size_t)(buf[k] - '0');
		if (n > SYSLOG_MSG_MAX)
			return -1;
		k++;
	}
	if (k == len)
		return k > 0 || len == 0 ? -2 : -1;
	if (k == 0 || buf[k] != ' ')
		return -1;
	if (len - k - 1 < n)
		return -2;
	*msg = buf + k + 1;
	*mlen = n;
	return (long)(k + 1 + n);
}

/* ---------------------------------------------------------------- destination */

static const char *const schemes[] = { NULL, "udp", "tcp", "tls" };

uint16_t syslog_default_port(enum syslog_transport t)
{
	return t == SYSLOG_TLS ? 6514 : 514;
}

enum syslog_transport syslog_transport_parse(const char *s, size_t len)
{
	for (int k = SYSLOG_UDP; k <= SYSLOG_TLS; k++)
		if (len == 3 && memcmp(s, schemes[k], 3) == 0)
			return (enum syslog_transport)k;
	return 0;
}

const char *syslog_transport_name(enum syslog_transport t)
{
	return t >= SYSLOG_UDP && t <= SYSLOG_TLS ? schemes[t] : "?";
}

int syslog_dest_is_remote(const char *s, size_t len)
{
	return len >= 6 && syslog_transport_parse(s, 3) != 0 && memcmp(s + 3, "://", 3) == 0;
}

static int word_ok(const char *s)
{
	return *s != '\0' && strpbrk(s, " \t\n\r") == NULL;
}

size_t syslog_dest_format(const struct syslog_dest *d, char *buf, size_t cap)
{
	int v6 = strchr(d->host, ':') != NULL, n;

	if (d->transport < SYSLOG_UDP || d->transport > SYSLOG_TLS || !word_ok(d->host) ||
	    d->port == 0 || (d->transport == SYSLOG_TLS && !word_ok(d->ca)))
		return 0;
	n = snprintf(buf, cap, "%s://%s%s%s:%u", schemes[d->transport], v6 ? "[" : "", d->host,
	             v6 ? "]" : "", d->port);
	if (n > 0 && (size_t)n < cap && d->transport == SYSLOG_TLS)
		n += snprintf(buf + n, cap - (size_t)n, " ca=%s", d->ca);
	if (n > 0 && (size_t)n < cap && d->buffer != SYSLOG_BUFFER_DEFAULT)
		n += snprintf(buf + n, cap - (size_t)n, " buffer=%zu", d->buffer);
	if (n > 0 && (size_t)n < cap && d->uid >= 0 && d->gid >= 0)
		n += snprintf(buf + n, cap - (size_t)n, " uid=%ld gid=%ld", d->uid, d->gid);
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* Decimal s[0..len) into *v, at most max; 0 or -1. */
static int number(const char *s, size_t len, unsigned long long max, unsigned long long *v)
{
	*v = 0;
	if (len == 0 || len > 20)
		return -1;
	for (size_t k = 0; k < len; k++) {
		if (s[k] < '0' || s[k] > '9' || *v > (max - (unsigned)(s[k] - '0')) / 10)
			return -1;
		*v = *v * 10 + (unsigned)(s[k] - '0');
	}
	return 0;
}

/* Printable ASCII other than space (what a host name, an address or a
 * path in the config can be). */
static int printable(const char *s, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if ((unsigned char)s[k] < 33 || (unsigned char)s[k] > 126)
			return 0;
	return 1;
}

/* "HOST:PORT" or "[V6]:PORT" into d. */
static int hostport(const char *s, size_t len, struct syslog_dest *d)
{
	const char *host = s, *colon;
	size_t hl;
	unsigned long long port;

	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);
		if (close == NULL || close + 1 == s + len || close[1] != ':')
			return -1;
		host = s + 1;
		hl = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = memchr(s, ':', len);
		if (colon == NULL)
			return -1;
		hl = (size_t)(colon - s);
	}
	if (memchr(host, '[', hl) != NULL || memchr(host, ']', hl) != NULL)
		return -1;
	if (hl == 0 || hl > SYSLOG_HOST_MAX || !printable(host, hl) ||
	    number(colon + 1, (size_t)(s + len - colon - 1), 65535, &port) != 0 || port == 0)
		return -1;
	memcpy(d->host, host, hl);
	d->host[hl] = '\0';
	d->port = (uint16_t)port;
	return 0;
}

/* One "key=value" option word into d; 0 or -1. */
static int option(const char *w, size_t n, struct syslog_dest *d)
{
	const char *eq = memchr(w, '=', n);
	size_t kl = eq != NULL ? (size_t)(eq - w) : n, vl = eq != NULL ? n - kl - 1 : 0;
	unsigned long long v;

	if (eq == NULL || vl == 0)
		return -1;
	if (kl == 2 && memcmp(w, "ca", 2) == 0 && vl <= SYSLOG_PATH_MAX && printable(eq + 1, vl)) {
		memcpy(d->ca, eq + 1, vl);
		d->ca[vl] = '\0';
		return 0;
	}
	if (kl == 6 && memcmp(w, "buffer", 6) == 0 &&
	    number(eq + 1, vl, SYSLOG_BUFFER_MAX, &v) == 0 && v >= SYSLOG_BUFFER_MIN) {
		d->buffer = (size_t)v;
		return 0;
	}
	if (kl == 3 && (memcmp(w, "uid", 3) == 0 || memcmp(w, "gid", 3) == 0) &&
	    number(eq + 1, vl, 2147483647, &v) == 0) {
		*(w[0] == 'u' ? &d->uid : &d->gid) = (long)v;
		return 0;
	}
	return -1;
}

int syslog_dest_parse(const char *s, size_t len, struct syslog_dest *out)
{
	size_t k = 6;

	memset(out, 0, sizeof *out);
	out->buffer = SYSLOG_BUFFER_DEFAULT;
	out->uid = out->gid = -1;
	if (!syslog_dest_is_remote(s, len))
		return -1;
	out->transport = syslog_transport_parse(s, 3);
	for (int word = 0; k < len; word++) {
		size_t start = k;
		while (k < len && s[k] != ' ')
			k++;
		if (k == start || (word == 0 ? hostport(s + start, k - start, out)
		                             : option(s + start, k - start, out)) != 0)
			return -1;
		/* One space between words, and a word after it. */
		if (k < len && ++k == len)
			return -1;
	}
	if (out->port == 0 || (out->transport == SYSLOG_TLS) != (out->ca[0] != '\0') ||
	    (out->uid >= 0) != (out->gid >= 0))
		return -1;
	return 0;
}
