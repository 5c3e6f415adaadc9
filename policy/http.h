/*
 * policy/http.h -- the HTTP the metrics endpoint speaks (docs/operations.md "Metrics
 * and health"): a parser for one request head, and the response head.
 * Pure: bytes in, a verdict out; nothing here reads a socket.
 *
 * Accepted: "GET" or "HEAD", an origin-form target ("/metrics",
 * "/health?x" -- the query is ignored), "HTTP/1.0" or "HTTP/1.1", header
 * lines "Name: value", then an empty line.  Lines end in CRLF or LF.  The
 * server answers one request per connection, in HTTP/1.0, and closes; a
 * request body is never read.  Every limit is fixed: the head is at most
 * HTTP_HEAD_MAX bytes, the target HTTP_TARGET_MAX, HTTP_HEADERS_MAX lines.
 */
#ifndef MOAT_POLICY_HTTP_H
#define MOAT_POLICY_HTTP_H

#include <stddef.h>

#define HTTP_HEAD_MAX    4096
#define HTTP_TARGET_MAX  256
#define HTTP_HEADERS_MAX 64

enum http_method { HTTP_NONE = 0, HTTP_GET, HTTP_HEAD };

struct http_req {
	enum http_method method;
	const char *path;                 /* into buf: the target up to '?' */
	size_t      pathlen;
	unsigned    minor;                /* HTTP/1.minor */
	unsigned    openmetrics : 1;      /* Accept: names application/openmetrics-text */
	int         status;               /* after -1: the status to answer */
};

/*
 * Parse the request head at buf[0..len).  Returns the length of the head
 * (through its empty line) when it is complete and good; -2 when more
 * bytes are needed; -1 when it is bad, with out->status set: 400 (syntax,
 * NUL, bare CR, a folded header, an absolute target), 405 (a method other
 * than GET or HEAD), 414 (target over HTTP_TARGET_MAX), 431 (head over
 * HTTP_HEAD_MAX or headers over HTTP_HEADERS_MAX), 505 (HTTP other than
 * 1.0 and 1.1).  Checks go left to right, so a prefix of a request gives
 * -2 or the same answer as the whole.  Pointers in *out point into buf.
 */
int http_req_parse(const char *buf, size_t len, struct http_req *out);

/* "OK", "Not Found", ...; "Error" for a status not listed. */
const char *http_reason(int status);

/* The response head, HTTP/1.0, "Connection: close", into buf; returns its
 * length (like snprintf: what it needs). */
size_t http_response_head(int status, const char *content_type, size_t body_len, char *buf,
                          size_t cap);

#endif
