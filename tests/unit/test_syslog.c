/* tests/unit/test_syslog.c -- policy/syslog.c: RFC 5424 messages (fields
 * that would break the header become "-" or are cut), RFC 6587 frames
 * whole, in pieces and malformed, and the destination string both ways. */
#include <stdlib.h>

#include "t.h"
#include "policy/syslog.h"

static const struct syslog_time T = { 2026, 11, 29, 2, 9, 0, 123456 };

static void test_format(void)
{
	char b[512];
	const char *msg = "event=accept id=0123 from=<a@b>";
	size_t n = syslog_format(b, sizeof b, 2 * 8 + 6, &T, "mx.example.com", "moat", 123, "accept",
	                         msg, strlen(msg));

	CHECKF(strcmp(b, "<22>1 2026-11-29T02:09:00.123456Z mx.example.com moat 123 accept - "
	                 "event=accept id=0123 from=<a@b>") == 0, "got %s", b);
	CHECK(n == strlen(b));
	/* Empty, spaced, non-ASCII and over-long fields. */
	char longid[64];
	memset(longid, 'x', sizeof longid - 1);
	longid[63] = '\0';
	syslog_format(b, sizeof b, 4, &T, "", "mo at", 0, longid, "m", 1);
	CHECKF(strcmp(b, "<4>1 2026-11-29T02:09:00.123456Z - - - xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx - m") == 0,
	       "got %s", b);
	syslog_format(b, sizeof b, 999, &T, "h\xc3\xa9", NULL, -5, "w\n", "", 0);
	CHECKF(strcmp(b, "<191>1 2026-11-29T02:09:00.123456Z - - - - - ") == 0, "got %s", b);
	/* Cut at cap, always terminated. */
	for (size_t cap = 1; cap < 80; cap++) {
		memset(b, 'Z', sizeof b);
		n = syslog_format(b, cap, 22, &T, "h", "moat", 1, "e", "0123456789", 10);
		CHECKF(n == (cap - 1 < 57 ? cap - 1 : 57) && b[n] == '\0', "cap %zu: %zu", cap, n);
	}
	CHECK(syslog_format(b, 0, 22, &T, "h", "a", 1, "e", "x", 1) == 0);
}

static void test_frames(void)
{
	char b[64];
	const char *m;
	size_t ml;

	CHECK(syslog_frame(b, sizeof b, "hello", 5) == 7 && memcmp(b, "5 hello", 7) == 0);
	CHECK(syslog_frame(b, 6, "hello", 5) == 0);
	CHECK(syslog_unframe("5 hello12 x", 11, &m, &ml) == 7 && ml == 5 && memcmp(m, "hello", 5) == 0);
	/* Every prefix of a frame needs more; whole, it is taken. */
	const char *f = "11 hello world";
	for (size_t cut = 0; cut < strlen(f); cut++)
		CHECKF(syslog_unframe(f, cut, &m, &ml) == -2, "cut %zu", cut);
	CHECK(syslog_unframe(f, strlen(f), &m, &ml) == 14 && ml == 11);
	CHECK(syslog_unframe("x 1", 3, &m, &ml) == -1);
	CHECK(syslog_unframe("05 hello", 8, &m, &ml) == -1);
	CHECK(syslog_unframe("0 ", 2, &m, &ml) == -1);
	CHECK(syslog_unframe("5:hello", 7, &m, &ml) == -1);
	CHECK(syslog_unframe(" 5 hello", 8, &m, &ml) == -1);
	CHECK(syslog_unframe("99999 ", 6, &m, &ml) == -1);
	CHECK(syslog_unframe("4096 ", 5, &m, &ml) == -2);
}

static void roundtrip(const char *text)
{
	struct syslog_dest d;
	char b[SYSLOG_DEST_MAX];

	CHECKF(syslog_dest_parse(text, strlen(text), &d) == 0, "%s", text);
	size_t n = syslog_dest_format(&d, b, sizeof b);
	CHECKF(n == strlen(text) && strcmp(b, text) == 0, "%s -> %s", text, b);
}

static void test_dest(void)
{
	struct syslog_dest d;
	char b[SYSLOG_DEST_MAX];

	roundtrip("udp://192.0.2.1:514");
	roundtrip("tcp://logs.example.com:601 buffer=16384");
	roundtrip("tls://[2001:db8::1]:6514 ca=/data/ca.pem uid=65532 gid=65532");
	CHECK(syslog_dest_parse("tls://h:1 ca=/x", 15, &d) == 0 && d.transport == SYSLOG_TLS &&
	      d.port == 1 && strcmp(d.host, "h") == 0 && strcmp(d.ca, "/x") == 0 &&
	      d.buffer == SYSLOG_BUFFER_DEFAULT && d.uid == -1);
	static const char *const bad[] = {
		"/dev/log", "udp:/h:1", "ftp://h:1", "udp://h", "udp://h:0", "udp://h:65536",
		"udp://:1", "tls://h:1", "udp://h:1 ca=/x", "udp://h:1 buffer=10", "udp://h:1 uid=1",
		"udp://h:1  buffer=9000", "udp://h:1 color=red", "udp://[::1:1", "udp://h:1 ",
		"udp://[::1]", "udp://a[b:1", "udp://h:1 buffer=99999999999999999999999",
		"udp://a\x01b:1", "tls://h:1 ca=/a\x7f" "b",
	};
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
		CHECKF(syslog_dest_parse(bad[k], strlen(bad[k]), &d) == -1, "%s", bad[k]);
	CHECK(syslog_dest_is_remote("tls://x", 7) && !syslog_dest_is_remote("/dev/log", 8));
	/* Nothing written for an invalid destination, or one that does not fit. */
	memset(&d, 0, sizeof d);
	d.transport = SYSLOG_TLS;
	strcpy(d.host, "h");
	d.port = 6514;
	d.buffer = SYSLOG_BUFFER_DEFAULT;
	d.uid = d.gid = -1;
	CHECK(syslog_dest_format(&d, b, sizeof b) == 0);
	strcpy(d.ca, "/ca.pem");
	CHECK(syslog_dest_format(&d, b, sizeof b) == 23);
	CHECK(syslog_dest_format(&d, b, 23) == 0);
	CHECK(syslog_default_port(SYSLOG_UDP) == 514 && syslog_default_port(SYSLOG_TLS) == 6514);
	CHECK(syslog_transport_parse("tcp", 3) == SYSLOG_TCP && syslog_transport_parse("tc", 2) == 0);
}

int main(void)
{
	RUN(test_format);
	RUN(test_frames);
	RUN(test_dest);
	return t_main_end();
}
