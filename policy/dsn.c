/* policy/dsn.c -- delivery status notifications; see dsn.h */
#include "policy/dsn.h"

#include <string.h>

#include "policy/text.h"


/* Network text: printable ASCII, anything else '?', at most max octets. */
static void put_safe(struct text *o, const char *s, size_t max)
{
	for (size_t k = 0; s[k] != '\0' && k < max; k++) {
		char c = s[k] >= 0x20 && s[k] < 0x7f ? s[k] : '?';
		text_put(o, &c, 1);
	}
}

/* An address: UTF-8 kept, controls (and CR/LF) as '?'. */
static void put_addr(struct text *o, const char *s)
{
	for (size_t k = 0; s[k] != '\0' && k < 400; k++) {
		unsigned char c = (unsigned char)s[k];
		char ch = c < 0x20 || c == 0x7f ? '?' : (char)c;
		text_put(o, &ch, 1);
	}
}

static int non_ascii(const char *s, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if ((unsigned char)s[k] >= 0x80)
			return 1;
	return 0;
}

/* Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm). */
static void civil(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t z = days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;

	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static void two(char *p, unsigned v)
{
	p[0] = (char)('0' + v / 10 % 10);
	p[1] = (char)('0' + v % 10);
}

size_t dsn_date(int64_t t, char out[32])
{
	static const char wd[] = "ThuFriSatSunMonTueWed";   /* 1970-01-01 was a Thursday */
	static const char mon[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	int64_t days = (t >= 0 ? t : t - 86399) / 86400, y;
	int64_t secs = t - days * 86400;
	unsigned m, d, w = (unsigned)(((days % 7) + 7) % 7);
	char *p = out;

	civil(days, &y, &m, &d);
	if (y < 0 || y > 9999)
		y = 1970;
	memcpy(p, wd + 3 * w, 3);
	p += 3;
	*p++ = ',';
	*p++ = ' ';
	two(p, d);
	p += 2;
	*p++ = ' ';
	memcpy(p, mon + 3 * (m - 1), 3);
	p += 3;
	*p++ = ' ';
	two(p, (unsigned)(y / 100));
	two(p + 2, (unsigned)(y % 100));
	p += 4;
	*p++ = ' ';
	two(p, (unsigned)(secs / 3600));
	p[2] = ':';
	two(p + 3, (unsigned)(secs / 60 % 60));
	p[5] = ':';
	two(p + 6, (unsigned)(secs % 60));
	p += 8;
	memcpy(p, " +0000", 7);
	return (size_t)(p + 6 - out);
}

static void put_date(struct text *o, int64_t t)
{
	char date[32];
	text_put(o, date, dsn_date(t, date));
}

size_t dsn_headers_len(const char *body, size_t len, size_t max)
{
	size_t pos = 0, keep = 0;

	while (pos < len) {
		const char *lf = memchr(body + pos, '\n', len - pos);
		size_t end;
		if (lf == NULL)
			break;
		end = (size_t)(lf - body) + 1;
		if (end - pos <= 2 && (end - pos == 1 || body[pos] == '\r'))
			break;                  /* the empty line: end of the headers */
		if (end > max)
			break;
		keep = pos = end;
	}
	return keep;
}

size_t dsn_build(const struct dsn *d, char *buf, size_t cap, unsigned *needs)
{
	struct text o = { buf, cap, 0 };
	unsigned need = 0;
	size_t hlen = d->headers_len < DSN_HEADERS_MAX ? d->headers_len : DSN_HEADERS_MAX;

	if (non_ascii(d->sender, strlen(d->sender)))
		need |= DSN_NEEDS_UTF8 | DSN_NEEDS_8BIT;
	for (size_t i = 0; i < d->nrcpts; i++)
		if (non_ascii(d->rcpts[i].addr, strlen(d->rcpts[i].addr)))
			need |= DSN_NEEDS_UTF8 | DSN_NEEDS_8BIT;
	if (non_ascii(d->headers, hlen))
		need |= DSN_NEEDS_8BIT;

	text_puts(&o, "From: Mail Delivery System <MAILER-DAEMON@");
	put_safe(&o, d->reporting_mta, 255);
	text_puts(&o, ">\r\nTo: <");
	put_addr(&o, d->sender);
	text_puts(&o, ">\r\nSubject: ");
	text_puts(&o, d->delayed ? "Delayed Mail (still being retried)"
	                     : "Undelivered Mail Returned to Sender");
	text_puts(&o, "\r\nDate: ");
	put_date(&o, d->now);
	text_puts(&o, "\r\nMessage-ID: <");
	put_safe(&o, d->queue_id, 64);
	text_puts(&o, d->delayed ? ".delay." : ".dsn.");
	put_safe(&o, d->boundary, 64);
	text_puts(&o, "@");
	put_safe(&o, d->reporting_mta, 255);
	text_puts(&o, ">\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
	          "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	          "\tboundary=\"");
	put_safe(&o, d->boundary, 64);
	text_puts(&o, "\"\r\n\r\nThis is a MIME-encapsulated message.\r\n\r\n--");

	/* 1. For people. */
	put_safe(&o, d->boundary, 64);
	text_puts(&o, "\r\nContent-Description: Notification\r\n"
	          "Content-Type: text/plain; charset=");
	text_puts(&o, need & DSN_NEEDS_UTF8 ? "utf-8\r\nContent-Transfer-Encoding: 8bit"
	                                : "us-ascii");
	text_puts(&o, "\r\n\r\nThis is the mail system at host ");
	put_safe(&o, d->reporting_mta, 255);
	text_puts(&o, ".\r\n\r\n");
	if (d->delayed) {
		text_puts(&o, "Your message has not been delivered yet to the recipients\r\n"
		          "below.  It stays in the queue and delivery will be tried again\r\n"
		          "until ");
		put_date(&o, d->retry_until);
		text_puts(&o, ".\r\nYou do not need to send it again.\r\n\r\n");
	} else {
		text_puts(&o, "Your message could not be delivered to the recipients below.\r\n"
		          "This is a permanent error; delivery will not be tried again.\r\n\r\n");
	}
	for (size_t i = 0; i < d->nrcpts; i++) {
		const struct dsn_rcpt *r = &d->rcpts[i];
		text_puts(&o, "<");
		put_addr(&o, r->addr);
		text_puts(&o, ">: ");
		if (r->remote && r->remote_mta[0] != '\0') {
			text_puts(&o, "host ");
			put_safe(&o, r->remote_mta, 255);
			text_puts(&o, " said: ");
		}
		put_safe(&o, r->diagnostic[0] ? r->diagnostic : "(no details)", DSN_DIAG_MAX);
		text_puts(&o, "\r\n");
	}

	/* 2. For programs. */
	text_puts(&o, "\r\n--");
	put_safe(&o, d->boundary, 64);
	text_puts(&o, "\r\nContent-Description: Delivery report\r\n"
	          "Content-Type: message/delivery-status\r\n");
	if (need & DSN_NEEDS_UTF8)
		text_puts(&o, "Content-Transfer-Encoding: 8bit\r\n");
	text_puts(&o, "\r\nReporting-MTA: dns; ");
	put_safe(&o, d->reporting_mta, 255);
	text_puts(&o, "\r\nX-Moat-Queue-ID: ");
	put_safe(&o, d->queue_id, 64);
	text_puts(&o, "\r\nArrival-Date: ");
	put_date(&o, d->arrival);
	text_puts(&o, "\r\n");
	for (size_t i = 0; i < d->nrcpts; i++) {
		const struct dsn_rcpt *r = &d->rcpts[i];
		int utf8 = non_ascii(r->addr, strlen(r->addr));
		text_puts(&o, utf8 ? "\r\nFinal-Recipient: utf-8; " : "\r\nFinal-Recipient: rfc822; ");
		put_addr(&o, r->addr);
		text_puts(&o, d->delayed ? "\r\nAction: delayed\r\nStatus: " : "\r\nAction: failed\r\nStatus: ");
		put_safe(&o, r->status, 16);
		if (r->remote && r->remote_mta[0] != '\0') {
			text_puts(&o, "\r\nRemote-MTA: dns; ");
			put_safe(&o, r->remote_mta, 255);
		}
		if (r->diagnostic[0] != '\0') {
			text_puts(&o, r->remote ? "\r\nDiagnostic-Code: smtp; " : "\r\nDiagnostic-Code: x-moat; ");
			put_safe(&o, r->diagnostic, DSN_DIAG_MAX);
		}
		text_puts(&o, "\r\nLast-Attempt-Date: ");
		put_date(&o, d->now);
		if (d->delayed) {
			text_puts(&o, "\r\nWill-Retry-Until: ");
			put_date(&o, d->retry_until);
		}
		text_puts(&o, "\r\n");
	}

	/* 3. What was sent. */
	text_puts(&o, "\r\n--");
	put_safe(&o, d->boundary, 64);
	text_puts(&o, "\r\nContent-Description: Undelivered Message Headers\r\n"
	          "Content-Type: text/rfc822-headers\r\n");
	if (need & DSN_NEEDS_8BIT)
		text_puts(&o, "Content-Transfer-Encoding: 8bit\r\n");
	text_puts(&o, "\r\n");
	text_put(&o, d->headers, hlen);
	if (hlen > 0 && d->headers[hlen - 1] != '\n')
		text_puts(&o, "\r\n");
	text_puts(&o, "\r\n--");
	put_safe(&o, d->boundary, 64);
	text_puts(&o, "--\r\n");

	if (cap > 0)
		buf[o.len < cap ? o.len : cap - 1] = '\0';
	if (needs != NULL)
		*needs = need;
	return o.len;
}
