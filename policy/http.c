/* policy/http.c -- one HTTP request head; see http.h */
#include "http.h"

#include <stdio.h>
#include <string.h>

/* RFC 9110 5.6.2: tchar. */
static int tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Does v[0..n) contain lit, ignoring case? */
static int contains_ci(const char *v, size_t n, const char *lit)
{
	size_t k = strlen(lit);

	for (size_t i = 0; i + k <= n; i++) {
		size_t j = 0;

		while (j < k && lower((unsigned char)v[i + j]) == lit[j])
			j++;
		if (j == k)
			return 1;
	}
	return 0;
}

static int bad(struct http_req *out, int status)
{
	out->status = status;
	return -1;
}

/* The request line "METHOD SP TARGET SP HTTP/1.x", line[0..n) without its
 * end.  0 or -1 (out->status set). */
static int request_line(const char *line, size_t n, struct http_req *out)
{
	size_t i = 0, t0, tn;

	while (i < n && tchar((unsigned char)line[i]))
		i++;
	if (i == 0 || i == n || line[i] != ' ')
		return bad(out, 400);
	if (i == 3 && memcmp(line, "GET", 3) == 0)
		out->method = HTTP_GET;
	else if (i == 4 && memcmp(line, "HEAD", 4) == 0)
		out->method = HTTP_HEAD;
	else
		return bad(out, 405);
	t0 = ++i;
	while (i < n && line[i] != ' ') {
		unsigned char c = (unsigned char)line[i];

		if (c <= 0x20 || c >= 0x7f)
			return bad(out, 400);
		if (i - t0 >= HTTP_TARGET_MAX)
			return bad(out, 414);
		i++;
	}
	tn = i - t0;
	if (tn == 0 || line[t0] != '/')
		return bad(out, 400); /* absolute-form, "*", or nothing: not for us */
	out->path = line + t0;
	out->pathlen = tn;
	for (size_t k = 0; k < tn; k++) {
		if (line[t0 + k] == '?') {
			out->pathlen = k;
			break;
		}
	}
	if (i == n)
		return bad(out, 400); /* HTTP/0.9: no version */
	i++;
	if (n - i != 8 || memcmp(line + i, "HTTP/", 5) != 0 || line[i + 5] < '0' ||
	    line[i + 5] > '9' || line[i + 6] != '.' || line[i + 7] < '0' || line[i + 7] > '9')
		return bad(out, 400);
	if (line[i + 5] != '1' || line[i + 7] > '1')
		return bad(out, 505);
	out->minor = (unsigned)(line[i + 7] - '0');
	return 0;
}

/* One header line[0..n) (not empty).  0 or -1. */
static int header_line(const char *line, size_t n, struct http_req *out)
{
	size_t i = 0;

	while (i < n && tchar((unsigned char)line[i]))
		i++;
	if (i == 0 || i == n || line[i] != ':')
		return bad(out, 400); /* also a folded line (leading space) */
	for (size_t k = i + 1; k < n; k++) {
		unsigned char c = (unsigned char)line[k];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return bad(out, 400);
	}
	if (i == 6 && contains_ci(line, 6, "accept") &&
	    contains_ci(line + i + 1, n - i - 1, "application/openmetrics-text"))
		out->openmetrics = 1;
	return 0;
}

int http_req_parse(const char *buf, size_t len, struct http_req *out)
{
	size_t pos = 0, lines = 0;

	memset(out, 0, sizeof *out);
	for (;;) {
		size_t start = pos, end;
		const char *nl;
		size_t scan = len - pos;

		if (pos >= HTTP_HEAD_MAX)
			return bad(out, 431);
		if (scan > HTTP_HEAD_MAX - pos)
			scan = HTTP_HEAD_MAX - pos;
		/* NUL and bare CR are refused wherever they are, once seen. */
		nl = memchr(buf + pos, '\n', scan);
		end = nl != NULL ? (size_t)(nl - buf) : pos + scan;
		for (size_t k = start; k < end; k++) {
			if (buf[k] == 0)
				return bad(out, 400);
			if (buf[k] == '\r' && k + 1 < end)
				return bad(out, 400);
		}
		/* The method is a token: anything else (a TLS hello, say) is
		 * refused before its line ends. */
		for (size_t k = start; lines == 0 && k < end && buf[k] != ' '; k++)
			if (!tchar((unsigned char)buf[k]))
				return bad(out, 400);
		if (nl == NULL)
			return pos + scan >= HTTP_HEAD_MAX ? bad(out, 431) : -2;
		pos = end + 1;
		if (end > start && buf[end - 1] == '\r')
			end--;
		if (lines == 0) {
			if (request_line(buf + start, end - start, out) != 0)
				return -1;
		} else if (end == start) {
			return pos > HTTP_HEAD_MAX ? bad(out, 431) : (int)pos;
		} else if (lines > HTTP_HEADERS_MAX) {
			return bad(out, 431);
		} else if (header_line(buf + start, end - start, out) != 0) {
			return -1;
		}
		lines++;
	}
}

const char *http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default:  return "Error";
	}
}

size_t http_response_head(int status, const char *content_type, size_t body_len, char *buf,
                          size_t cap)
{
	int r = snprintf(buf, cap,
	                 "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	                 "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n",
	                 status, http_reason(status), content_type, body_len,
	                 status == 405 ? "Allow: GET, HEAD\r\n" : "");

	return r > 0 ? (size_t)r : 0;
}
