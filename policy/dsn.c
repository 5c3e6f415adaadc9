/* policy/dsn.c -- delivery status notifications; see dsn.h */
#include "policy/dsn.h"

#include <string.h>

#include "policy/dsnparam.h"
#include "policy/text.h"

/* A field value built aside: an ORCPT or an address in RFC 6533 form. */
#define FIELD_MAX (8 * DSN_ORCPT_MAX + 64)


/* Network text: printable ASCII, anything else '?', at most max octets. */
static void put_safe(struct text *o, const char *s, size_t max)
{
	for (size_t k = 0; s[k] != '\0' && k < max; k++) {
		char c = s[k] >= 0x20 && s[k] < 0x7f ? s[k] : '?';
		text_put(o, &c, 1);
	}
}

#define put_safe_n put_safe     /* (s[0..n), or up to a NUL before) */

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

enum dsn_action dsn_decide(unsigned notify, enum dsn_outcome out, int passed)
{
	if (notify & DSN_NOTIFY_NEVER)
		return DSN_ACT_NONE;
	switch (out) {
	case DSN_OUT_FAILED:
		return notify == 0 || (notify & DSN_NOTIFY_FAILURE) ? DSN_ACT_FAILED : DSN_ACT_NONE;
	case DSN_OUT_DELAYED:
		return notify == 0 || (notify & DSN_NOTIFY_DELAY) ? DSN_ACT_DELAYED : DSN_ACT_NONE;
	case DSN_OUT_SENT:
	default:
		return (notify & DSN_NOTIFY_SUCCESS) && !passed ? DSN_ACT_RELAYED : DSN_ACT_NONE;
	}
}

int dsn_return_full(unsigned ret, int failure, uint64_t size)
{
	return ret == DSN_RET_FULL && failure && size <= DSN_FULL_MAX;
}

/* A recipient's action in d: its own, or the report's. */
static enum dsn_action action_of(const struct dsn *d, const struct dsn_rcpt *r)
{
	if (r->action != DSN_ACT_NONE)
		return (enum dsn_action)r->action;
	return d->delayed ? DSN_ACT_DELAYED : DSN_ACT_FAILED;
}

/* Does d hold a recipient with action a? */
static int any_action(const struct dsn *d, enum dsn_action a)
{
	for (size_t i = 0; i < d->nrcpts; i++)
		if (action_of(d, &d->rcpts[i]) == a)
			return 1;
	return 0;
}

/* Every field of the report a person reads or a program parses is there
 * in ASCII unless the report is global (SMTPUTF8 mail, or an address that
 * needs it). */
static int report_global(const struct dsn *d)
{
	if (d->utf8 || non_ascii(d->sender, strlen(d->sender)))
		return 1;
	for (size_t i = 0; i < d->nrcpts; i++)
		if (non_ascii(d->rcpts[i].addr, strlen(d->rcpts[i].addr)))
			return 1;
	return 0;
}

static size_t original_len(const struct dsn *d)
{
	size_t max = d->full ? DSN_FULL_MAX : DSN_HEADERS_MAX;
	return d->headers_len < max ? d->headers_len : max;
}

static void put_head(struct text *o, const struct dsn *d)
{
	text_puts(o, "From: Mail Delivery System <MAILER-DAEMON@");
	put_safe(o, d->reporting_mta, 255);
	text_puts(o, ">\r\nTo: <");
	put_addr(o, d->sender);
	text_puts(o, ">\r\nSubject: ");
	text_puts(o, any_action(d, DSN_ACT_FAILED) ? "Undelivered Mail Returned to Sender"
	          : any_action(d, DSN_ACT_DELAYED) ? "Delayed Mail (still being retried)"
	          : "Successful Mail Delivery Report");
	text_puts(o, "\r\nDate: ");
	put_date(o, d->now);
	text_puts(o, "\r\nMessage-ID: <");
	put_safe(o, d->queue_id, 64);
	text_puts(o, any_action(d, DSN_ACT_FAILED) ? ".dsn." : any_action(d, DSN_ACT_DELAYED)
	          ? ".delay." : ".relayed.");
	put_safe(o, d->boundary, 64);
	text_puts(o, "@");
	put_safe(o, d->reporting_mta, 255);
	text_puts(o, ">\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
	          "Content-Type: multipart/report; report-type=");
	text_puts(o, report_global(d) ? "global-delivery-status" : "delivery-status");
	text_puts(o, ";\r\n\tboundary=\"");
	put_safe(o, d->boundary, 64);
	text_puts(o, "\"\r\n\r\nThis is a MIME-encapsulated message.\r\n\r\n--");
}

/* 1. For people: a paragraph per kind of outcome, a line per recipient. */
static void put_notification(struct text *o, const struct dsn *d, int utf8)
{
	static const struct { enum dsn_action a; const char *say; } kinds[] = {
		{ DSN_ACT_FAILED, "Your message could not be delivered to the recipients below.\r\n"
		                  "This is a permanent error; delivery will not be tried again.\r\n" },
		{ DSN_ACT_DELAYED, "Your message has not been delivered yet to the recipients\r\n"
		                   "below.  It stays in the queue and delivery will be tried again\r\n"
		                   "until " },
		{ DSN_ACT_RELAYED, "Your message was relayed to the recipients below.  The next\r\n"
		                   "server does not offer delivery notifications, so you may get\r\n"
		                   "no further notice of them.\r\n" },
	};

	put_safe(o, d->boundary, 64);
	text_puts(o, "\r\nContent-Description: Notification\r\nContent-Type: text/plain; charset=");
	text_puts(o, utf8 ? "utf-8\r\nContent-Transfer-Encoding: 8bit" : "us-ascii");
	text_puts(o, "\r\n\r\nThis is the mail system at host ");
	put_safe(o, d->reporting_mta, 255);
	text_puts(o, ".\r\n");
	for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
		if (!any_action(d, kinds[k].a))
			continue;
		text_puts(o, "\r\n");
		text_puts(o, kinds[k].say);
		if (kinds[k].a == DSN_ACT_DELAYED) {
			put_date(o, d->retry_until);
			text_puts(o, ".\r\nYou do not need to send it again.\r\n");
		}
		text_puts(o, "\r\n");
		for (size_t i = 0; i < d->nrcpts; i++) {
			const struct dsn_rcpt *r = &d->rcpts[i];
			if (action_of(d, r) != kinds[k].a)
				continue;
			text_puts(o, "<");
			put_addr(o, r->addr);
			text_puts(o, ">: ");
			if (r->remote && r->remote_mta[0] != '\0') {
				text_puts(o, "host ");
				put_safe(o, r->remote_mta, 255);
				text_puts(o, " said: ");
			}
			put_safe(o, r->diagnostic[0] ? r->diagnostic : "(no details)", DSN_DIAG_MAX);
			text_puts(o, "\r\n");
		}
	}
	if (d->full == 0 && any_action(d, DSN_ACT_FAILED) && d->headers_len > 0)
		text_puts(o, "\r\nThe headers of your message follow.\r\n");
}

/* A Final-Recipient field's value (RFC 3464 2.3.2, RFC 6533 3). */
static void put_final_recipient(struct text *o, const char *addr, int global)
{
	char buf[FIELD_MAX];
	size_t n;

	if (!non_ascii(addr, strlen(addr))) {
		text_puts(o, "rfc822; ");
		put_addr(o, addr);
		return;
	}
	text_puts(o, "utf-8; ");
	n = dsnparam_utf8_addr(addr, global, buf, sizeof buf);
	text_put(o, buf, n < sizeof buf ? n : sizeof buf - 1);
}

/*
 * Remote-MTA (RFC 3464 2.3.5): "dns; NAME", from remote_mta "NAME[ADDR]"
 * as the delivery log writes it; a next hop known only by its address is
 * written as an address literal ("dns; [192.0.2.1]", "dns; [IPv6:...]").
 * The address goes in its own field, X-Remote-MTA-Address.
 */
static void put_remote_mta(struct text *o, const char *mta)
{
	const char *open = strchr(mta, '[');
	size_t hlen = open ? (size_t)(open - mta) : strlen(mta), alen = 0;
	const char *addr = NULL;

	if (open != NULL && strchr(open, ']') != NULL) {
		addr = open + 1;
		alen = (size_t)(strchr(open, ']') - addr);
	}
	text_puts(o, "\r\nRemote-MTA: dns; ");
	if (addr != NULL && hlen == alen && memcmp(mta, addr, alen) == 0) {
		text_puts(o, memchr(addr, ':', alen) ? "[IPv6:" : "[");
		put_safe_n(o, addr, alen);
		text_puts(o, "]");
	} else {
		put_safe_n(o, mta, hlen < 255 ? hlen : 255);
	}
	if (addr != NULL && alen > 0 && alen < 64) {
		text_puts(o, "\r\nX-Remote-MTA-Address: ");
		put_safe_n(o, addr, alen);
	}
}

static void put_recipient_fields(struct text *o, const struct dsn *d, const struct dsn_rcpt *r,
                                 int global)
{
	static const char *const act[] = { "failed", "failed", "delayed", "relayed" };
	enum dsn_action a = action_of(d, r);

	if (r->orcpt != NULL && r->orcpt[0] != '\0' && dsnparam_orcpt_ok(r->orcpt, strlen(r->orcpt))) {
		char buf[FIELD_MAX];
		size_t n = dsnparam_orcpt_text(r->orcpt, strlen(r->orcpt), global, buf, sizeof buf);
		text_puts(o, "\r\nOriginal-Recipient: ");
		text_put(o, buf, n < sizeof buf ? n : sizeof buf - 1);
	}
	text_puts(o, "\r\nFinal-Recipient: ");
	put_final_recipient(o, r->addr, global);
	text_puts(o, "\r\nAction: ");
	text_puts(o, act[a]);
	text_puts(o, "\r\nStatus: ");
	put_safe(o, r->status, 16);
	if (r->remote && r->remote_mta[0] != '\0')
		put_remote_mta(o, r->remote_mta);
	if (r->diagnostic[0] != '\0') {
		text_puts(o, r->remote ? "\r\nDiagnostic-Code: smtp; " : "\r\nDiagnostic-Code: x-moat; ");
		put_safe(o, r->diagnostic, DSN_DIAG_MAX);
	}
	text_puts(o, "\r\nLast-Attempt-Date: ");
	put_date(o, d->now);
	if (a == DSN_ACT_DELAYED) {
		text_puts(o, "\r\nWill-Retry-Until: ");
		put_date(o, d->retry_until);
	}
	text_puts(o, "\r\n");
}

/* 2. For programs. */
static void put_status(struct text *o, const struct dsn *d, int global, int eight)
{
	text_puts(o, "\r\n--");
	put_safe(o, d->boundary, 64);
	text_puts(o, "\r\nContent-Description: Delivery report\r\nContent-Type: message/");
	text_puts(o, global ? "global-delivery-status\r\n" : "delivery-status\r\n");
	if (eight)
		text_puts(o, "Content-Transfer-Encoding: 8bit\r\n");
	text_puts(o, "\r\n");
	if (d->envid != NULL && d->envid[0] != '\0') {
		char id[DSN_ENVID_MAX + 1];
		size_t n = dsnparam_xtext_decode(d->envid, strlen(d->envid), id, sizeof id);
		if (n != (size_t)-1) {
			text_puts(o, "Original-Envelope-Id: ");
			put_safe(o, id, DSN_ENVID_MAX);
			text_puts(o, "\r\n");
		}
	}
	text_puts(o, "Reporting-MTA: dns; ");
	put_safe(o, d->reporting_mta, 255);
	text_puts(o, "\r\nArrival-Date: ");
	put_date(o, d->arrival);
	text_puts(o, "\r\nX-Moat-Queue-ID: ");
	put_safe(o, d->queue_id, 64);
	text_puts(o, "\r\n");
	for (size_t i = 0; i < d->nrcpts; i++)
		put_recipient_fields(o, d, &d->rcpts[i], global);
}

/* 3. What was sent: its headers, or all of it. */
static void put_original(struct text *o, const struct dsn *d, int global, int eight)
{
	size_t hlen = original_len(d);

	text_puts(o, "\r\n--");
	put_safe(o, d->boundary, 64);
	if (d->full)
		text_puts(o, global ? "\r\nContent-Description: Undelivered Message\r\n"
		                      "Content-Type: message/global\r\n"
		                    : "\r\nContent-Description: Undelivered Message\r\n"
		                      "Content-Type: message/rfc822\r\n");
	else
		text_puts(o, global ? "\r\nContent-Description: Message Headers\r\n"
		                      "Content-Type: message/global-headers\r\n"
		                    : "\r\nContent-Description: Message Headers\r\n"
		                      "Content-Type: text/rfc822-headers\r\n");
	if (eight)
		text_puts(o, "Content-Transfer-Encoding: 8bit\r\n");
	text_puts(o, "\r\n");
	text_put(o, d->headers, hlen);
	if (hlen > 0 && d->headers[hlen - 1] != '\n')
		text_puts(o, "\r\n");
	text_puts(o, "\r\n--");
	put_safe(o, d->boundary, 64);
	text_puts(o, "--\r\n");
}

size_t dsn_build(const struct dsn *d, char *buf, size_t cap, unsigned *needs)
{
	struct text o = { buf, cap, 0 };
	int global = report_global(d), addr8 = 0, orig8 = non_ascii(d->headers, original_len(d));
	unsigned need = 0;

	for (size_t i = 0; i < d->nrcpts; i++)
		if (non_ascii(d->rcpts[i].addr, strlen(d->rcpts[i].addr)) ||
		    (global && d->rcpts[i].orcpt && non_ascii(d->rcpts[i].orcpt, strlen(d->rcpts[i].orcpt))))
			addr8 = 1;
	if (non_ascii(d->sender, strlen(d->sender)))
		need |= DSN_NEEDS_UTF8 | DSN_NEEDS_8BIT;
	if (addr8 || orig8)
		need |= DSN_NEEDS_8BIT;

	put_head(&o, d);
	put_notification(&o, d, addr8 || (need & DSN_NEEDS_UTF8));
	put_status(&o, d, global, global && addr8);
	put_original(&o, d, global, orig8);

	if (cap > 0)
		buf[o.len < cap ? o.len : cap - 1] = '\0';
	if (needs != NULL)
		*needs = need;
	return o.len;
}
