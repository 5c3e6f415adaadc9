/*
 * tests/unit/test_mtasts_fetch.c -- the MTA-STS policy fetch as bytes
 * (policy/mtasts_fetch.c): the request, and the response reader fed each
 * response whole, byte by byte, and split in two at every offset, which
 * must all give the same verdict, body and reason.  Responses follow what
 * real servers send (nginx, python's http.server, chunked from a proxy)
 * and what an attacker or a broken server might: redirects, HTML, huge
 * and endless bodies, smuggling-style double lengths, bare CRs, NULs.
 */
#include <stdlib.h>

#include "policy/mtasts_fetch.h"
#include "tests/unit/t.h"

struct result {
	enum mtasts_fetch_rc rc;
	const char *why;
	int status;
	size_t bodylen;
	char body[MTASTS_POLICY_MAX];
};

/* Feed r[0..n) in pieces: split 0 = whole, SIZE_MAX = byte by byte, else
 * two pieces at that offset; then eof if asked and still MORE.  Each piece
 * from a heap copy of exactly its size. */
static void run(const char *r, size_t n, size_t split, int eof, struct result *out)
{
	static struct mtasts_fetch f;
	size_t pos = 0;
	enum mtasts_fetch_rc rc = MTASTS_FETCH_MORE;

	mtasts_fetch_init(&f, out->body, sizeof out->body);
	while (pos < n && rc == MTASTS_FETCH_MORE) {
		size_t k = split == 0 ? n - pos : split == SIZE_MAX ? 1 : pos == 0 ? split : n - pos;
		char *b;
		if (k > n - pos)
			k = n - pos;
		b = malloc(k ? k : 1);
		memcpy(b, r + pos, k);
		rc = mtasts_fetch_feed(&f, b, k);
		free(b);
		pos += k;
	}
	if (eof && rc == MTASTS_FETCH_MORE)
		rc = mtasts_fetch_eof(&f);
	out->rc = rc;
	out->why = f.why;
	out->status = f.status;
	out->bodylen = f.bodylen;
	/* Once finished, more bytes change nothing. */
	if (rc != MTASTS_FETCH_MORE)
		CHECK(mtasts_fetch_feed(&f, "x", 1) == rc && f.bodylen == out->bodylen);
}

/* The verdict on r, the same whichever way it is cut; returns it and
 * leaves the body in *out. */
static enum mtasts_fetch_rc verdict(const char *r, size_t n, int eof, struct result *out)
{
	static struct result other;

	run(r, n, 0, eof, out);
	run(r, n, SIZE_MAX, eof, &other);
	CHECKF(other.rc == out->rc && other.why == out->why && other.bodylen == out->bodylen &&
	       memcmp(other.body, out->body, out->bodylen) == 0, "byte by byte: %.40s", r);
	for (size_t k = 1; k < n; k++) {
		run(r, n, k, eof, &other);
		CHECKF(other.rc == out->rc && other.why == out->why &&
		       other.bodylen == out->bodylen &&
		       memcmp(other.body, out->body, out->bodylen) == 0, "split at %zu: %.40s", k, r);
	}
	return out->rc;
}

static enum mtasts_fetch_rc v(const char *r, int eof, struct result *out)
{
	return verdict(r, strlen(r), eof, out);
}

static void test_request(void)
{
	char buf[MTASTS_FETCH_REQ_MAX], host[DNS_NAME_MAX + 1];
	static const char want[] =
		"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.example.com\r\n"
		"User-Agent: moat\r\nAccept: text/plain\r\nConnection: close\r\n\r\n";
	char big[DNS_NAME_MAX + 1];

	CHECK(mtasts_fetch_request("example.com", buf, sizeof buf) == sizeof want - 1);
	CHECK(strcmp(buf, want) == 0);
	CHECK(mtasts_fetch_request("example.com.", buf, sizeof buf) == sizeof want - 1);
	CHECK(mtasts_fetch_request("example.com", buf, sizeof want) == sizeof want - 1);
	CHECK(mtasts_fetch_request("example.com", buf, sizeof want - 1) == 0);
	CHECK(mtasts_fetch_request("exa mple.com", buf, sizeof buf) == 0);
	CHECK(mtasts_fetch_request("", buf, sizeof buf) == 0);
	CHECK(mtasts_fetch_request("a\r\nX: y", buf, sizeof buf) == 0);
	CHECK(mtasts_fetch_host("Example.COM", host) == 0 && strcmp(host, "mta-sts.Example.COM") == 0);
	CHECK(mtasts_fetch_host("a..b", host) == -1 && host[0] == '\0');
	CHECK(mtasts_fetch_host("a.b..", host) == -1);
	/* The longest domain whose mta-sts name is still a host name. */
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = i % 2 ? '.' : 'a';
	big[DNS_NAME_MAX - 8] = '\0';
	CHECK(mtasts_fetch_host(big, host) == 0 && strlen(host) == DNS_NAME_MAX);
	CHECK(mtasts_fetch_request(big, buf, sizeof buf) > 0);
	big[DNS_NAME_MAX - 8] = 'a';
	big[DNS_NAME_MAX - 6] = '\0';
	CHECK(mtasts_fetch_host(big, host) == -1);
}

static const char policy[] =
	"version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\n";

static void test_good(void)
{
	static struct result r;
	static char resp[2048];
	struct mtasts_policy p;
	const char *why;

	/* Content-Length, CRLF, charset. */
	snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain; "
	         "charset=utf-8\r\nContent-Length: %zu\r\n\r\n%s", sizeof policy - 1, policy);
	CHECK(v(resp, 0, &r) == MTASTS_FETCH_DONE && r.status == 200);
	CHECK(r.bodylen == sizeof policy - 1 && memcmp(r.body, policy, r.bodylen) == 0);
	CHECK(mtasts_policy_parse(r.body, r.bodylen, &p, &why) == 0 && p.nmx == 1);
	/* Bytes after the body are not read. */
	strcat(resp, "GARBAGE");
	CHECK(v(resp, 0, &r) == MTASTS_FETCH_DONE && r.bodylen == sizeof policy - 1);
	/* Until the close (python's http.server with HTTP/1.0), LF only. */
	snprintf(resp, sizeof resp, "HTTP/1.0 200 OK\nContent-type: TEXT/PLAIN\n\n%s", policy);
	CHECK(v(resp, 0, &r) == MTASTS_FETCH_MORE);
	CHECK(v(resp, 1, &r) == MTASTS_FETCH_DONE && r.bodylen == sizeof policy - 1);
	CHECK(memcmp(r.body, policy, r.bodylen) == 0);
	/* Chunked, with an extension and a trailer. */
	CHECK(v("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\nContent-Type: text/plain\r\n\r\n"
	        "10;name=val\r\nversion: STSv1\nm\r\n"
	        "0031 ;x\r\node: enforce\nmx: mail.example.com\nmax_age: 86400\n\r\n"
	        "0\r\nX-Trailer: yes\r\n\r\n", 0, &r) == MTASTS_FETCH_DONE);
	CHECK(r.bodylen == sizeof policy - 1 && memcmp(r.body, policy, r.bodylen) == 0);
	/* Content-Length 0 and an empty chunked body: done, empty. */
	CHECK(v("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n", 0, &r)
	      == MTASTS_FETCH_DONE && r.bodylen == 0);
	CHECK(v("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
	        "0\r\n\r\n", 0, &r) == MTASTS_FETCH_DONE && r.bodylen == 0);
	/* The same length twice; a status line without a reason. */
	CHECK(v("HTTP/1.1 200\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
	        "Content-Length: 3\r\n\r\nabc", 0, &r) == MTASTS_FETCH_DONE && r.bodylen == 3);
	CHECK(v("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: identity\r\n"
	        "Content-Length: 1\r\n\r\nx", 0, &r) == MTASTS_FETCH_DONE);
}

static void test_refused(void)
{
	static const struct { const char *resp; int eof; const char *why; } cases[] = {
		{ "HTTP/1.1 301 Moved Permanently\r\nLocation: https://evil.example/\r\n"
		  "Content-Type: text/plain\r\nContent-Length: 0\r\n\r\n", 0, "redirect" },
		{ "HTTP/1.1 302 Found\r\n", 0, "redirect" },
		{ "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\r\n", 1, "status" },
		{ "HTTP/1.1 100 Continue\r\n\r\n", 0, "status" },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1\r\n\r\nx", 0,
		  "text/plain" },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plainx\r\n\r\n", 0, "text/plain" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", 0, "text/plain" },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Type: text/plain\r\n\r\n",
		  0, "two Content-Type" },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 65537\r\n\r\n", 0,
		  "64 KiB" },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 99999999999999999999"
		  "\r\n\r\n", 0, "64 KiB" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 0,
		  "Content-Length" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, "Content-Length" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 1 1\r\n\r\n", 0, "Content-Length" },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 0, "transfer coding" },
		{ "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n", 0, "content coding" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 0,
		  "both" },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 0,
		  "both" },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n folded\r\n\r\n", 0, "folded" },
		{ "HTTP/1.1 200 OK\r\nContent Type: text/plain\r\n\r\n", 0, "malformed header" },
		{ "HTTP/1.1 200 OK\r\nContent-Type\r\n\r\n", 0, "malformed header" },
		{ "HTTP/1.1 200 OK\rContent-Type: text/plain\r\n\r\n", 0, "bare CR" },
		{ "HTTP/2 200\r\n\r\n", 0, "status line" },
		{ "HTTP/1.1 2000 OK\r\n\r\n", 0, "status line" },
		{ "HTTP/1.1 20x OK\r\n\r\n", 0, "status line" },
		{ "SSH-2.0-OpenSSH_9.6\r\n", 0, "status line" },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nabc", 1,
		  "before the body" },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n", 1, "head" },
		{ "", 1, "head" },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "3\r\nabc\r\n", 1, "before the body" },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "3\r\nabcd\r\n", 0, "longer than its size" },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "x\r\n", 0, "chunk size" },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "1 x\r\n", 0, "chunk size" },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "100000000\r\n", 0, "chunk size" },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "10001\r\n", 0, "64 KiB" },
	};
	static struct result r;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		CHECKF(v(cases[i].resp, cases[i].eof, &r) == MTASTS_FETCH_FAIL, "%zu", i);
		CHECKF(r.why != NULL && strstr(r.why, cases[i].why) != NULL, "%zu: %s", i,
		       r.why ? r.why : "(null)");
	}
	/* A NUL in the head. */
	CHECK(verdict("HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n", 27, 0, &r) == MTASTS_FETCH_FAIL);
	CHECK(strstr(r.why, "NUL") != NULL);
}

/* The bounds: 64 KiB of body exactly, by each framing, and one byte more;
 * a head of 8 KiB; a line of 1 KiB. */
static void test_bounds(void)
{
	static char resp[MTASTS_POLICY_MAX + 20000];
	static struct result r;
	size_t n;

	n = (size_t)snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	                     "Content-Length: %d\r\n\r\n", MTASTS_POLICY_MAX);
	memset(resp + n, 'a', MTASTS_POLICY_MAX);
	run(resp, n + MTASTS_POLICY_MAX, 0, 0, &r);
	CHECK(r.rc == MTASTS_FETCH_DONE && r.bodylen == MTASTS_POLICY_MAX);
	run(resp, n + MTASTS_POLICY_MAX, 4096, 0, &r);
	CHECK(r.rc == MTASTS_FETCH_DONE && r.bodylen == MTASTS_POLICY_MAX);

	n = (size_t)snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n");
	memset(resp + n, 'a', MTASTS_POLICY_MAX + 1);
	run(resp, n + MTASTS_POLICY_MAX, 0, 1, &r);
	CHECK(r.rc == MTASTS_FETCH_DONE && r.bodylen == MTASTS_POLICY_MAX);
	run(resp, n + MTASTS_POLICY_MAX + 1, 0, 1, &r);
	CHECK(r.rc == MTASTS_FETCH_FAIL && strstr(r.why, "64 KiB") != NULL);
	run(resp, n + MTASTS_POLICY_MAX + 1, SIZE_MAX, 1, &r);
	CHECK(r.rc == MTASTS_FETCH_FAIL && r.bodylen == MTASTS_POLICY_MAX);

	/* Chunked: 16 chunks of 4 KiB fill it; one byte more is refused. */
	n = (size_t)snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	                     "Transfer-Encoding: chunked\r\n\r\n");
	for (int i = 0; i < 16; i++) {
		n += (size_t)snprintf(resp + n, sizeof resp - n, "1000\r\n");
		memset(resp + n, 'b', 4096);
		n += 4096;
		n += (size_t)snprintf(resp + n, sizeof resp - n, "\r\n");
	}
	memcpy(resp + n, "0\r\n\r\n", 5);
	run(resp, n + 5, 0, 0, &r);
	CHECK(r.rc == MTASTS_FETCH_DONE && r.bodylen == MTASTS_POLICY_MAX);
	memcpy(resp + n, "1\r\nb\r\n0\r\n\r\n", 11);
	run(resp, n + 11, 0, 0, &r);
	CHECK(r.rc == MTASTS_FETCH_FAIL && strstr(r.why, "64 KiB") != NULL);

	/* Head of exactly 8 KiB (headers of filler), then one byte more. */
	n = (size_t)snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n");
	while (n + 1000 < MTASTS_FETCH_HEAD_MAX) {
		memcpy(resp + n, "X-Filler: ", 10);
		memset(resp + n + 10, 'f', 988);
		memcpy(resp + n + 998, "\r\n", 2);
		n += 1000;
	}
	{
		size_t pad = MTASTS_FETCH_HEAD_MAX - n - 2;   /* a last header, then CRLF */
		memcpy(resp + n, "X: ", 3);
		memset(resp + n + 3, 'g', pad - 5);
		memcpy(resp + n + pad - 2, "\r\n\r\n", 4);
		n += pad + 2;
	}
	CHECK(n == MTASTS_FETCH_HEAD_MAX);
	run(resp, n, 0, 1, &r);
	CHECK(r.rc == MTASTS_FETCH_DONE && r.bodylen == 0);
	memmove(resp + 61, resp + 60, n - 60);
	resp[60] = 'f';     /* the first filler header one byte longer */
	run(resp, n + 1, 0, 1, &r);
	CHECK(r.rc == MTASTS_FETCH_FAIL && strstr(r.why, "8 KiB") != NULL);

	/* A line of 1 KiB is taken, 1 KiB + 1 is not. */
	n = (size_t)snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nX: ");
	memset(resp + n, 'h', MTASTS_FETCH_LINE_MAX - 3);
	n += MTASTS_FETCH_LINE_MAX - 3;
	n += (size_t)snprintf(resp + n, sizeof resp - n, "\r\nContent-Type: text/plain\r\n\r\n");
	run(resp, n, 0, 1, &r);
	CHECK(r.rc == MTASTS_FETCH_DONE);
	n = (size_t)snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nX: ");
	memset(resp + n, 'h', MTASTS_FETCH_LINE_MAX - 2);
	n += MTASTS_FETCH_LINE_MAX - 2;
	n += (size_t)snprintf(resp + n, sizeof resp - n, "\r\nContent-Type: text/plain\r\n\r\n");
	run(resp, n, 0, 1, &r);
	CHECK(r.rc == MTASTS_FETCH_FAIL && strstr(r.why, "1 KiB") != NULL);
}

/* A caller's buffer smaller than 64 KiB is the bound. */
static void test_small_buffer(void)
{
	static struct mtasts_fetch f;
	char body[8];
	static const char r[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n123456789";

	mtasts_fetch_init(&f, body, sizeof body);
	CHECK(mtasts_fetch_feed(&f, r, sizeof r - 2) == MTASTS_FETCH_MORE && f.bodylen == 8);
	CHECK(mtasts_fetch_feed(&f, r + sizeof r - 2, 1) == MTASTS_FETCH_FAIL);
	CHECK(mtasts_fetch_eof(&f) == MTASTS_FETCH_FAIL);
}

int main(void)
{
	RUN(test_request);
	RUN(test_good);
	RUN(test_refused);
	RUN(test_bounds);
	RUN(test_small_buffer);
	return t_main_end();
}
