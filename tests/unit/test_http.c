/* tests/unit/test_http.c -- policy/http.h: the metrics endpoint's request
 * parser, fed whole, byte by byte and split at every offset, each input in
 * a heap buffer of its exact length (ASan sees any over-read). */
#include <stdlib.h>
#include <string.h>

#include "policy/http.h"
#include "t.h"

struct req_case {
	const char *in;
	int         result;    /* >0: good, the head's length; -2; -1 with status */
	int         status;
	const char *path;      /* good: the path */
	int         method;
	unsigned    minor;
	unsigned    om;
};

#define GOOD(in, path, m, minor, om) { in, (int)sizeof(in) - 1, 0, path, m, minor, om }
#define BAD(in, st) { in, -1, st, NULL, 0, 0, 0 }
#define MORE(in) { in, -2, 0, NULL, 0, 0, 0 }

static const struct req_case cases[] = {
	GOOD("GET /metrics HTTP/1.0\r\n\r\n", "/metrics", HTTP_GET, 0, 0),
	GOOD("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9025\r\nUser-Agent: curl/7.88.1\r\n"
	     "Accept: */*\r\n\r\n", "/metrics", HTTP_GET, 1, 0),
	GOOD("GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text;version=1.0.0,"
	     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n\r\n", "/metrics", HTTP_GET, 1, 1),
	GOOD("GET /metrics HTTP/1.1\r\naccept: Application/OpenMetrics-Text\r\n\r\n", "/metrics",
	     HTTP_GET, 1, 1),
	GOOD("GET /metrics HTTP/1.1\r\nX-Accept: application/openmetrics-text\r\n\r\n", "/metrics",
	     HTTP_GET, 1, 0),
	GOOD("HEAD /health HTTP/1.1\n\n", "/health", HTTP_HEAD, 1, 0),
	GOOD("GET /health?verbose=1 HTTP/1.0\r\n\r\n", "/health", HTTP_GET, 0, 0),
	GOOD("GET / HTTP/1.0\r\nX-Empty:\r\nX-Tab:\tv\r\n\r\n", "/", HTTP_GET, 0, 0),
	GOOD("GET /%2e%2e/x HTTP/1.0\r\nX: \x80\xff\r\n\r\n", "/%2e%2e/x", HTTP_GET, 0, 0),
	MORE(""),
	MORE("GET /metrics HTTP/1.1\r\n"),
	MORE("GET /metrics HTTP/1.1\r\nHost: x\r\n\r"),
	BAD("POST /metrics HTTP/1.1\r\n\r\n", 405),
	BAD("get /metrics HTTP/1.1\r\n\r\n", 405),
	BAD("DELETE / HTTP/1.1\r\n", 405),
	BAD("GET  /metrics HTTP/1.1\r\n\r\n", 400),
	BAD("GET /metrics\r\n\r\n", 400),
	BAD("GET /metrics HTTP/1.1 \r\n\r\n", 400),
	BAD("GET /metrics HTTP/2.0\r\n\r\n", 505),
	BAD("GET /metrics HTTP/1.2\r\n\r\n", 505),
	BAD("GET /metrics HTTP/0.9\r\n\r\n", 505),
	BAD("GET /metrics HTTP/1.10\r\n\r\n", 400),
	BAD("GET /metrics http/1.1\r\n\r\n", 400),
	BAD("GET http://127.0.0.1/metrics HTTP/1.1\r\n\r\n", 400),
	BAD("GET * HTTP/1.1\r\n\r\n", 400),
	BAD("GET /met\x7frics HTTP/1.1\r\n\r\n", 400),
	BAD("GET /m\xc3\xa9 HTTP/1.1\r\n\r\n", 400),
	BAD("GET /metrics HTTP/1.1\r\n folded: x\r\n\r\n", 400),
	BAD("GET /metrics HTTP/1.1\r\nNo colon\r\n\r\n", 400),
	BAD("GET /metrics HTTP/1.1\r\nBad Name: x\r\n\r\n", 400),
	BAD("GET /metrics HTTP/1.1\r\n: x\r\n\r\n", 400),
	BAD("GET /metrics HTTP/1.1\r\nX: a\x01b\r\n\r\n", 400),
	BAD("GET /metrics HTTP/1.1\rX: y\r\n\r\n", 400),
	BAD("GET /metrics HTTP/1.1\r\nX: a\rb\r\n\r\n", 400),
	BAD("\r\nGET /metrics HTTP/1.1\r\n\r\n", 400),
	BAD("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400),
};

/* Parse in[0..len) from a heap copy of exactly len bytes. */
static int parse(const char *in, size_t len, struct http_req *r, char **copy)
{
	*copy = malloc(len ? len : 1);
	memcpy(*copy, in, len);
	return http_req_parse(*copy, len, r);
}

static void test_cases(void)
{
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		const struct req_case *tc = &cases[k];
		size_t len = strlen(tc->in);
		struct http_req r;
		char *b;
		int got;

		/* strlen stops at the first NUL: no case holds one. */
		got = parse(tc->in, len, &r, &b);
		CHECKF(got == tc->result, "case %zu: got %d, want %d", k, got, tc->result);
		if (got == -1)
			CHECKF(r.status == tc->status, "case %zu: status %d, want %d", k, r.status,
			       tc->status);
		if (got > 0 && tc->result > 0) {
			CHECKF(r.pathlen == strlen(tc->path) && memcmp(r.path, tc->path, r.pathlen) == 0,
			       "case %zu: path %.*s", k, (int)r.pathlen, r.path);
			CHECK(r.path >= b && r.path + r.pathlen <= b + len);
			CHECKF((int)r.method == tc->method && r.minor == tc->minor &&
			       r.openmetrics == tc->om, "case %zu", k);
		}
		free(b);
		/* Every prefix: "need more", or already the whole's answer. */
		for (size_t cut = 0; cut < len; cut++) {
			struct http_req p;
			int pr = parse(tc->in, cut, &p, &b);

			CHECKF(pr == -2 || (pr == -1 && got == -1 && p.status == r.status),
			       "case %zu cut %zu: got %d status %d", k, cut, pr, p.status);
			free(b);
		}
		/* Bytes after the head (a body, a second request) change nothing. */
		if (got > 0) {
			char *more = malloc(len + 5);
			struct http_req m;

			memcpy(more, tc->in, len);
			memcpy(more + len, "XYZ\r\n", 5);
			CHECKF(http_req_parse(more, len + 5, &m) == got, "case %zu + trailing bytes", k);
			free(more);
		}
	}
}

static void test_nul(void)
{
	static const char in[] = "GET /metrics HTTP/1.1\r\nX: a\0b\r\n\r\n";
	struct http_req r;
	char *b;

	CHECK(parse(in, sizeof in - 1, &r, &b) == -1 && r.status == 400);
	free(b);
	CHECK(parse("GET /\0", 6, &r, &b) == -1 && r.status == 400);
	free(b);
}

/* The limits: target length, head length, header count. */
static void test_limits(void)
{
	static char in[HTTP_HEAD_MAX + 512];
	struct http_req r;
	size_t n;
	char *b;

	/* A target of exactly HTTP_TARGET_MAX is fine, one more is 414. */
	for (int extra = 0; extra < 2; extra++) {
		n = 0;
		memcpy(in, "GET /", 5);
		n = 5;
		memset(in + n, 'a', HTTP_TARGET_MAX - 1 + (size_t)extra);
		n += HTTP_TARGET_MAX - 1 + (size_t)extra;
		memcpy(in + n, " HTTP/1.0\r\n\r\n", 13);
		n += 13;
		int got = parse(in, n, &r, &b);
		CHECKF(extra ? got == -1 && r.status == 414 : got == (int)n, "target +%d: %d", extra, got);
		free(b);
	}
	/* A head of exactly HTTP_HEAD_MAX bytes is fine; one more is 431, and
	 * so is a head that has not ended by then. */
	for (int extra = 0; extra < 2; extra++) {
		size_t pad = HTTP_HEAD_MAX - strlen("GET / HTTP/1.0\r\nX: \r\n\r\n") + (size_t)extra;

		n = 0;
		memcpy(in, "GET / HTTP/1.0\r\nX: ", 19);
		n = 19;
		memset(in + n, 'v', pad);
		n += pad;
		memcpy(in + n, "\r\n\r\n", 4);
		n += 4;
		int got = parse(in, n, &r, &b);
		CHECKF(extra ? got == -1 && r.status == 431 : got == HTTP_HEAD_MAX, "head +%d: %d", extra,
		       got);
		free(b);
		got = parse(in, HTTP_HEAD_MAX - 1 + (size_t)extra, &r, &b);
		CHECKF(extra ? got == -1 && r.status == 431 : got == -2, "open head +%d: %d", extra, got);
		free(b);
	}
	/* HTTP_HEADERS_MAX header lines are fine; more are 431. */
	for (int extra = 0; extra < 2; extra++) {
		n = 0;
		memcpy(in, "GET / HTTP/1.0\r\n", 16);
		n = 16;
		for (int h = 0; h < HTTP_HEADERS_MAX + extra; h++) {
			memcpy(in + n, "X: 1\r\n", 6);
			n += 6;
		}
		memcpy(in + n, "\r\n", 2);
		n += 2;
		int got = parse(in, n, &r, &b);
		CHECKF(extra ? got == -1 && r.status == 431 : got == (int)n, "headers +%d: %d", extra, got);
		free(b);
	}
}

static void test_response_head(void)
{
	char buf[512];
	size_t n = http_response_head(200, "text/plain", 42, buf, sizeof buf);

	CHECKF(strcmp(buf, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 42\r\n"
	                   "Cache-Control: no-store\r\nConnection: close\r\n\r\n") == 0, "%s", buf);
	CHECK(n == strlen(buf));
	n = http_response_head(405, "text/plain", 0, buf, sizeof buf);
	CHECKF(strstr(buf, "HTTP/1.0 405 Method Not Allowed\r\n") == buf &&
	       strstr(buf, "\r\nAllow: GET, HEAD\r\n\r\n") != NULL, "%s", buf);
	CHECK(http_response_head(503, "x", 1, buf, 8) > 8 && strlen(buf) == 7);
	CHECK(strcmp(http_reason(431), "Request Header Fields Too Large") == 0);
	CHECK(strcmp(http_reason(299), "Error") == 0);
}

int main(void)
{
	RUN(test_cases);
	RUN(test_nul);
	RUN(test_limits);
	RUN(test_response_head);
	return t_main_end();
}
