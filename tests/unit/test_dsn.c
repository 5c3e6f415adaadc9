/*
 * tests/unit/test_dsn.c -- delivery status notifications (policy/dsn.c):
 * the parts and fields RFC 3464 asks for, CRLF only, hostile remote text
 * kept on one printable line, the snprintf-style length contract, dates.
 */
#include <stdlib.h>

#include "policy/dsn.h"
#include "policy/dsnparam.h"
#include "tests/unit/t.h"

static char buf[64 * 1024];

static int has(const char *hay, const char *needle)
{
	return strstr(hay, needle) != NULL;
}

/* CRLF line ends only, no line over 998 octets, no NUL. */
static int clean(const char *s, size_t n)
{
	size_t line = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\0')
			return 0;
		if (s[i] == '\n') {
			if (i == 0 || s[i - 1] != '\r')
				return 0;
			line = 0;
			continue;
		}
		if (s[i] == '\r' && (i + 1 == n || s[i + 1] != '\n'))
			return 0;
		if (++line > 998)
			return 0;
	}
	return n >= 2 && s[n - 2] == '\r' && s[n - 1] == '\n';
}

static const char headers[] =
	"Received: from client.test ([192.0.2.1])\r\n\tby mx.test (moat) id 0001;\r\n"
	"From: Alice <alice@example.org>\r\nSubject: hello\r\n";

static void test_failed(void)
{
	struct dsn_rcpt r[2] = {
		{ "bob@example.test", "5.1.1", "550 5.1.1 <bob@example.test>: no such user", 1,
		  "mx1.example.test", 0, NULL },
		{ "carol@example.test", "4.4.7", "delivery time expired; last: 451 4.3.0 busy", 0, "",
		  0, NULL },
	};
	struct dsn d = {
		"mx.test", "alice@example.org", "00059a3f5c2b1e00", "B1a2b3.x", 86400, 86400 * 2,
		0, 0, r, 2, headers, sizeof headers - 1, NULL, 0, 0 };
	unsigned needs = 99;
	size_t n = dsn_build(&d, buf, sizeof buf, &needs);

	CHECK(n > 0 && n < sizeof buf && strlen(buf) == n);
	CHECK(needs == 0);
	CHECK(clean(buf, n));
	CHECK(has(buf, "From: Mail Delivery System <MAILER-DAEMON@mx.test>\r\n"));
	CHECK(has(buf, "\r\nTo: <alice@example.org>\r\n"));
	CHECK(has(buf, "\r\nSubject: Undelivered Mail Returned to Sender\r\n"));
	CHECK(has(buf, "\r\nDate: Sat, 03 Jan 1970 00:00:00 +0000\r\n"));
	CHECK(has(buf, "\r\nAuto-Submitted: auto-replied\r\n"));
	CHECK(has(buf, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	               "\tboundary=\"B1a2b3.x\"\r\n"));
	CHECK(has(buf, "\r\n--B1a2b3.x\r\nContent-Description: Notification\r\n"));
	CHECK(has(buf, "<bob@example.test>: host mx1.example.test said: 550 5.1.1"));
	CHECK(has(buf, "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.test\r\n"));
	CHECK(has(buf, "\r\nArrival-Date: Fri, 02 Jan 1970 00:00:00 +0000\r\n"));
	CHECK(has(buf, "\r\n\r\nFinal-Recipient: rfc822; bob@example.test\r\nAction: failed\r\n"
	               "Status: 5.1.1\r\nRemote-MTA: dns; mx1.example.test\r\n"
	               "Diagnostic-Code: smtp; 550 5.1.1 <bob@example.test>: no such user\r\n"));
	CHECK(has(buf, "\r\n\r\nFinal-Recipient: rfc822; carol@example.test\r\nAction: failed\r\n"
	               "Status: 4.4.7\r\nDiagnostic-Code: x-moat; delivery time expired"));
	CHECK(has(buf, "Content-Type: text/rfc822-headers\r\n\r\nReceived: from client.test"));
	CHECK(has(buf, "Subject: hello\r\n\r\n--B1a2b3.x--\r\n"));
	CHECK(!has(buf, "Will-Retry-Until"));
	/* snprintf contract: the length without a buffer, truncation. */
	CHECK(dsn_build(&d, NULL, 0, NULL) == n);
	memset(buf, 'Z', 100);
	CHECK(dsn_build(&d, buf, 50, NULL) == n && buf[49] == '\0' && strlen(buf) == 49);
}

static void test_delayed_and_hostile(void)
{
	struct dsn_rcpt r = { "b\xc3\xa9@example.test", "4.0.0",
	                      "451 busy\r\nX-Injected: yes\x01\xff", 1, "evil\r\nhost", 0, NULL };
	struct dsn d = {
		"mx.test", "alice@example.org", "0001", "B", 0, 3600, 1, 86400, &r, 1,
		"Subject: caf\xc3\xa9\r\n", 16, NULL, 1, 0 };
	unsigned needs = 0;
	size_t n = dsn_build(&d, buf, sizeof buf, &needs);

	CHECKF(clean(buf, n), "%s", buf);
	/* The report's own envelope and header are ASCII: 8BITMIME is enough. */
	CHECK(needs == DSN_NEEDS_8BIT);
	CHECK(has(buf, "Subject: Delayed Mail (still being retried)\r\n"));
	CHECK(has(buf, "Content-Type: message/global-delivery-status\r\n"
	               "Content-Transfer-Encoding: 8bit\r\n"));
	CHECK(has(buf, "Content-Type: message/global-headers\r\n"));
	CHECK(has(buf, "report-type=global-delivery-status;"));
	CHECK(has(buf, "Action: delayed\r\nStatus: 4.0.0\r\n"));
	CHECK(has(buf, "Will-Retry-Until: Fri, 02 Jan 1970 00:00:00 +0000\r\n"));
	CHECK(has(buf, "Final-Recipient: utf-8; b\xc3\xa9@example.test\r\n"));
	/* The remote text cannot start a header line of its own. */
	CHECK(!has(buf, "\nX-Injected"));
	CHECK(has(buf, "Diagnostic-Code: smtp; 451 busy??X-Injected: yes??\r\n"));
	CHECK(has(buf, "Remote-MTA: dns; evil??host\r\n"));
	CHECK(has(buf, "Content-Transfer-Encoding: 8bit\r\n\r\nSubject: caf\xc3\xa9\r\n"));
}

/* Remote-MTA: the host name, or an address literal; the address apart. */
static void test_remote_mta(void)
{
	static const struct {
		const char *mta, *want;
	} cases[] = {
		{ "mx1.example.test[192.0.2.1]",
		  "Remote-MTA: dns; mx1.example.test\r\nX-Remote-MTA-Address: 192.0.2.1\r\n" },
		{ "127.0.0.1[127.0.0.1]", "Remote-MTA: dns; [127.0.0.1]\r\nX-Remote-MTA-Address: 127.0.0.1\r\n" },
		{ "::1[::1]", "Remote-MTA: dns; [IPv6:::1]\r\nX-Remote-MTA-Address: ::1\r\n" },
		{ "mx.test", "Remote-MTA: dns; mx.test\r\nDiagnostic-Code" },
		{ "mx.test[broken", "Remote-MTA: dns; mx.test\r\nDiagnostic-Code" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct dsn_rcpt r = { "bob@example.test", "5.1.1", "550 no", 1, cases[i].mta, 0, NULL };
		struct dsn d = { "mx.test", "alice@example.org", "0001", "B", 0, 0, 0, 0, &r, 1,
		                 headers, sizeof headers - 1, NULL, 0, 0 };

		dsn_build(&d, buf, sizeof buf, NULL);
		CHECKF(has(buf, cases[i].want), "%s", cases[i].mta);
	}
}

/* RFC 3461: who is told of what. */
static void test_decide(void)
{
	static const struct { unsigned notify; enum dsn_outcome out; int passed; enum dsn_action a; } c[] = {
		{ 0, DSN_OUT_FAILED, 0, DSN_ACT_FAILED },
		{ 0, DSN_OUT_FAILED, 1, DSN_ACT_FAILED },
		{ 0, DSN_OUT_DELAYED, 0, DSN_ACT_DELAYED },
		{ 0, DSN_OUT_SENT, 0, DSN_ACT_NONE },
		{ DSN_NOTIFY_NEVER, DSN_OUT_FAILED, 0, DSN_ACT_NONE },
		{ DSN_NOTIFY_NEVER, DSN_OUT_DELAYED, 0, DSN_ACT_NONE },
		{ DSN_NOTIFY_NEVER, DSN_OUT_SENT, 0, DSN_ACT_NONE },
		{ DSN_NOTIFY_SUCCESS, DSN_OUT_SENT, 0, DSN_ACT_RELAYED },
		{ DSN_NOTIFY_SUCCESS, DSN_OUT_SENT, 1, DSN_ACT_NONE },
		{ DSN_NOTIFY_SUCCESS, DSN_OUT_FAILED, 0, DSN_ACT_NONE },
		{ DSN_NOTIFY_SUCCESS, DSN_OUT_DELAYED, 0, DSN_ACT_NONE },
		{ DSN_NOTIFY_FAILURE, DSN_OUT_FAILED, 1, DSN_ACT_FAILED },
		{ DSN_NOTIFY_FAILURE, DSN_OUT_DELAYED, 0, DSN_ACT_NONE },
		{ DSN_NOTIFY_FAILURE, DSN_OUT_SENT, 0, DSN_ACT_NONE },
		{ DSN_NOTIFY_DELAY, DSN_OUT_DELAYED, 0, DSN_ACT_DELAYED },
		{ DSN_NOTIFY_DELAY, DSN_OUT_FAILED, 0, DSN_ACT_NONE },
		{ 7, DSN_OUT_SENT, 0, DSN_ACT_RELAYED },
		{ 7, DSN_OUT_FAILED, 0, DSN_ACT_FAILED },
		{ 7, DSN_OUT_DELAYED, 1, DSN_ACT_DELAYED },
	};

	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
		CHECKF(dsn_decide(c[i].notify, c[i].out, c[i].passed) == c[i].a, "case %zu", i);
	CHECK(dsn_return_full(DSN_RET_FULL, 1, DSN_FULL_MAX));
	CHECK(!dsn_return_full(DSN_RET_FULL, 1, DSN_FULL_MAX + 1));
	CHECK(!dsn_return_full(DSN_RET_FULL, 0, 10));
	CHECK(!dsn_return_full(DSN_RET_HDRS, 1, 10));
	CHECK(!dsn_return_full(DSN_RET_NONE, 1, 10));
}

/* ENVID and ORCPT in the report, relayed and failed recipients together,
 * the whole message returned. */
static void test_dsn_fields(void)
{
	static const char msg[] = "Subject: whole\r\n\r\nthe body\r\n";
	struct dsn_rcpt r[2] = {
		{ "bob@example.test", "2.0.0", "250 2.0.0 queued", 1, "mx1.example.test",
		  DSN_ACT_RELAYED, "rfc822;old+2Bbob@example.test" },
		{ "carol@example.test", "5.1.1", "550 5.1.1 no", 1, "mx1.example.test",
		  DSN_ACT_FAILED, NULL },
	};
	struct dsn d = { "mx.test", "alice@example.org", "0002", "B2", 0, 60, 0, 0, r, 2,
	                 msg, sizeof msg - 1, "QQ+2B314", 0, 1 };
	unsigned needs = 9;
	size_t n = dsn_build(&d, buf, sizeof buf, &needs);

	CHECKF(clean(buf, n) && needs == 0, "%s", buf);
	CHECK(has(buf, "Subject: Undelivered Mail Returned to Sender\r\n"));
	CHECK(has(buf, "Content-Type: message/delivery-status\r\n\r\n"
	               "Original-Envelope-Id: QQ+314\r\nReporting-MTA: dns; mx.test\r\n"));
	CHECK(has(buf, "\r\n\r\nOriginal-Recipient: rfc822;old+bob@example.test\r\n"
	               "Final-Recipient: rfc822; bob@example.test\r\nAction: relayed\r\n"
	               "Status: 2.0.0\r\n"));
	CHECK(has(buf, "\r\n\r\nFinal-Recipient: rfc822; carol@example.test\r\nAction: failed\r\n"));
	CHECK(has(buf, "Your message was relayed to the recipients below."));
	CHECK(has(buf, "Content-Type: message/rfc822\r\n\r\nSubject: whole\r\n\r\nthe body\r\n"
	               "\r\n--B2--\r\n"));
	/* Only relayed: a success report; headers only. */
	d.nrcpts = 1;
	d.full = 0;
	d.headers_len = 16;
	n = dsn_build(&d, buf, sizeof buf, &needs);
	CHECK(clean(buf, n));
	CHECK(has(buf, "Subject: Successful Mail Delivery Report\r\n"));
	CHECK(!has(buf, "could not be delivered") && !has(buf, "Action: failed"));
	CHECK(has(buf, "Content-Type: text/rfc822-headers\r\n\r\nSubject: whole\r\n\r\n--B2--"));
	/* SMTPUTF8 mail: RFC 6533 types, UTF-8 kept in them. */
	{
		static const char h8[] = "Subject: caf\xc3\xa9\r\n";
		struct dsn_rcpt u = { "j\xc3\xb6rg@example.test", "5.1.1", "550 no", 1, "mx",
		                      DSN_ACT_FAILED, "utf-8;j\\x{F6}rg@example.test" };
		struct dsn g = { "mx.test", "s\xc3\xa9@example.org", "0003", "B3", 0, 60, 0, 0, &u, 1,
		                 h8, sizeof h8 - 1, NULL, 1, 0 };

		n = dsn_build(&g, buf, sizeof buf, &needs);
		CHECKF(clean(buf, n), "%s", buf);
		CHECK(needs == (DSN_NEEDS_UTF8 | DSN_NEEDS_8BIT));
		CHECK(has(buf, "Content-Type: message/global-delivery-status\r\n"));
		CHECK(has(buf, "Original-Recipient: utf-8;j\xc3\xb6rg@example.test\r\n"
		               "Final-Recipient: utf-8; j\xc3\xb6rg@example.test\r\n"));
		CHECK(has(buf, "Content-Type: message/global-headers\r\nContent-Transfer-Encoding: 8bit\r\n"));
		CHECK(!has(buf, "message/delivery-status") && !has(buf, "text/rfc822-headers"));
		/* The same, an ASCII sender: no SMTPUTF8 needed for the report. */
		g.sender = "s@example.org";
		n = dsn_build(&g, buf, sizeof buf, &needs);
		CHECK(needs == DSN_NEEDS_8BIT && has(buf, "To: <s@example.org>\r\n"));
		/* A utf-8 address outside a global report: RFC 6533's 7-bit form. */
		g.utf8 = 0;
		u.addr = "jorg@example.test";
		n = dsn_build(&g, buf, sizeof buf, &needs);
		CHECK(has(buf, "Original-Recipient: utf-8;j\\x{F6}rg@example.test\r\n"));
		CHECK(has(buf, "Content-Type: message/delivery-status\r\n\r\n"));
	}
}

static void test_headers_len(void)
{
	static const char body[] = "A: 1\r\nB: 2\r\n\tcont\r\n\r\nbody\r\n";
	CHECK(dsn_headers_len(body, sizeof body - 1, 1000) == 19);
	CHECK(dsn_headers_len(body, sizeof body - 1, 19) == 19);
	CHECK(dsn_headers_len(body, sizeof body - 1, 18) == 12);   /* cut at a line end */
	CHECK(dsn_headers_len(body, sizeof body - 1, 5) == 0);
	CHECK(dsn_headers_len("A: 1\r\nB", 7, 100) == 6);          /* an unfinished line */
	CHECK(dsn_headers_len("\r\nbody", 6, 100) == 0);
	CHECK(dsn_headers_len("", 0, 100) == 0);
}

static void test_date(void)
{
	char d[32];

	CHECK(dsn_date(0, d) == 31 && strcmp(d, "Thu, 01 Jan 1970 00:00:00 +0000") == 0);
	dsn_date(951782400, d);
	CHECK(strcmp(d, "Tue, 29 Feb 2000 00:00:00 +0000") == 0);
	dsn_date(4102444799, d);
	CHECK(strcmp(d, "Thu, 31 Dec 2099 23:59:59 +0000") == 0);
	dsn_date(1790000000, d);
	CHECK(strcmp(d, "Mon, 21 Sep 2026 14:13:20 +0000") == 0);
	dsn_date(-1, d);
	CHECK(strcmp(d, "Wed, 31 Dec 1969 23:59:59 +0000") == 0);
}

int main(void)
{
	RUN(test_failed);
	RUN(test_delayed_and_hostile);
	RUN(test_decide);
	RUN(test_remote_mta);
	RUN(test_dsn_fields);
	RUN(test_headers_len);
	RUN(test_date);
	return t_main_end();
}
