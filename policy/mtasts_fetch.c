/* policy/mtasts_fetch.c -- the policy fetch as bytes; see mtasts_fetch.h */
#include "policy/mtasts_fetch.h"

#include <string.h>

/* The reader's states; the line states collect one line in f->line. */
enum {
	S_STATUS = 0,   /* line: "HTTP/1.x 200 reason"                          */
	S_HEADER,       /* line: a header, or the empty line that ends the head */
	S_BODY_LEN,     /* bytes: f->length more of a Content-Length body       */
	S_BODY_EOF,     /* bytes: a body that ends when the peer closes         */
	S_CHUNK_SIZE,   /* line: hex size [; extensions]                        */
	S_CHUNK_DATA,   /* bytes: f->length more of this chunk                  */
	S_CHUNK_END,    /* line: the empty line after a chunk's data            */
	S_TRAILER,      /* line: a trailer field, or the empty line that ends   */
	S_DONE,
	S_FAIL
};

int mtasts_fetch_host(const char *domain, char host[DNS_NAME_MAX + 1])
{
	static const char pre[] = "mta-sts.";
	size_t n = strlen(domain), p = sizeof pre - 1;

	host[0] = '\0';
	if (n > 0 && domain[n - 1] == '.')
		n--;
	if (n == 0 || p + n > DNS_NAME_MAX)
		return -1;
	memcpy(host, pre, p);
	memcpy(host + p, domain, n);
	host[p + n] = '\0';
	if (!dns_name_ok(host, p + n) || host[p + n - 1] == '.') {
		host[0] = '\0';
		return -1;
	}
	return 0;
}

size_t mtasts_fetch_request(const char *domain, char *buf, size_t cap)
{
	static const char *const parts[] = {
		"GET " MTASTS_FETCH_PATH " HTTP/1.1\r\nHost: ", NULL,
		"\r\nUser-Agent: moat\r\nAccept: text/plain\r\nConnection: close\r\n\r\n",
	};
	char host[DNS_NAME_MAX + 1];
	size_t n = 0;

	if (mtasts_fetch_host(domain, host) != 0)
		return 0;
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		const char *s = parts[i] ? parts[i] : host;
		size_t l = strlen(s);
		if (n + l >= cap)
			return 0;
		memcpy(buf + n, s, l);
		n += l;
	}
	buf[n] = '\0';
	return n;
}

void mtasts_fetch_init(struct mtasts_fetch *f, char *body, size_t cap)
{
	memset(f, 0, sizeof *f);
	f->state = S_STATUS;
	f->body = body;
	f->bodycap = cap < MTASTS_POLICY_MAX ? cap : MTASTS_POLICY_MAX;
}

static enum mtasts_fetch_rc fail(struct mtasts_fetch *f, const char *why)
{
	f->state = S_FAIL;
	f->why = why;
	return MTASTS_FETCH_FAIL;
}

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Case-insensitive equality of s[0..n) and the lower-case lit. */
static int eq_ci(const char *s, size_t n, const char *lit)
{
	if (strlen(lit) != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)s[i]) != lit[i])
			return 0;
	return 1;
}

/* RFC 9110 5.6.2: tchar. */
static int tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int ows(char c)
{
	return c == ' ' || c == '\t';
}

/* "HTTP/1.x SP 3DIGIT [SP reason]". */
static enum mtasts_fetch_rc status_line(struct mtasts_fetch *f, const char *s, size_t n)
{
	if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || s[7] < '0' || s[7] > '9' || s[8] != ' ')
		return fail(f, "not an HTTP/1.x status line");
	for (int i = 9; i < 12; i++)
		if (s[i] < '0' || s[i] > '9')
			return fail(f, "not an HTTP/1.x status line");
	if (n > 12 && s[12] != ' ')
		return fail(f, "not an HTTP/1.x status line");
	f->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
	if (f->status >= 300 && f->status < 400)
		return fail(f, "a redirect (3xx): not followed (RFC 8461 3.3)");
	if (f->status != 200)
		return fail(f, "HTTP status other than 200");
	f->state = S_HEADER;
	return MTASTS_FETCH_MORE;
}

/* A decimal Content-Length; -1 if not digits or over the body's cap. */
static int64_t content_length(const char *v, size_t n, size_t cap)
{
	uint64_t x = 0;

	if (n == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (uint64_t)(v[i] - '0');
		if (x > cap)
			return -2;
	}
	return (int64_t)x;
}

/* One header field "name: value"; those we do not know are ignored. */
static enum mtasts_fetch_rc header_line(struct mtasts_fetch *f, const char *s, size_t n)
{
	size_t k = 0, v, e = n;

	if (ows(s[0]))
		return fail(f, "a folded header line");
	while (k < n && tchar((unsigned char)s[k]))
		k++;
	if (k == 0 || k == n || s[k] != ':')
		return fail(f, "a malformed header line");
	for (v = k + 1; v < n && ows(s[v]); v++)
		;
	while (e > v && ows(s[e - 1]))
		e--;
	if (eq_ci(s, k, "content-type")) {
		size_t m = v;
		if (f->have_ctype)
			return fail(f, "two Content-Type fields");
		f->have_ctype = 1;
		while (m < e && s[m] != ';' && !ows(s[m]))
			m++;
		f->text_plain = eq_ci(s + v, m - v, "text/plain") ? 1u : 0u;
	} else if (eq_ci(s, k, "content-length")) {
		int64_t l = content_length(s + v, e - v, f->bodycap);
		if (l == -2)
			return fail(f, "a body over 64 KiB");
		if (l < 0 || (f->have_length && (uint64_t)l != f->length))
			return fail(f, "a malformed Content-Length");
		f->have_length = 1;
		f->length = (uint64_t)l;
	} else if (eq_ci(s, k, "transfer-encoding")) {
		if (!eq_ci(s + v, e - v, "chunked") || f->chunked)
			return fail(f, "a transfer coding other than chunked");
		f->chunked = 1;
	} else if (eq_ci(s, k, "content-encoding")) {
		if (!eq_ci(s + v, e - v, "identity"))
			return fail(f, "a content coding (compressed body)");
	}
	if (f->chunked && f->have_length)
		return fail(f, "both Transfer-Encoding and Content-Length");
	return MTASTS_FETCH_MORE;
}

/* The empty line after the headers: how the body is delimited. */
static enum mtasts_fetch_rc head_end(struct mtasts_fetch *f)
{
	if (!f->have_ctype || !f->text_plain)
		return fail(f, "Content-Type is not text/plain");
	if (f->chunked) {
		f->state = S_CHUNK_SIZE;
	} else if (f->have_length) {
		f->state = f->length == 0 ? S_DONE : S_BODY_LEN;
	} else {
		f->state = S_BODY_EOF;
	}
	return f->state == S_DONE ? MTASTS_FETCH_DONE : MTASTS_FETCH_MORE;
}

/* "HEX [OWS ; extensions]": the next chunk's size. */
static enum mtasts_fetch_rc chunk_size(struct mtasts_fetch *f, const char *s, size_t n)
{
	uint64_t x = 0;
	size_t i = 0;

	for (; i < n && i < 9; i++) {
		int c = lower((unsigned char)s[i]);
		if (c >= '0' && c <= '9')
			x = x * 16 + (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			x = x * 16 + (uint64_t)(c - 'a' + 10);
		else
			break;
	}
	if (i == 0 || i == 9)
		return fail(f, "a malformed chunk size");
	while (i < n && ows(s[i]))
		i++;
	if (i < n && s[i] != ';')
		return fail(f, "a malformed chunk size");
	if (x > f->bodycap - f->bodylen)
		return fail(f, "a body over 64 KiB");
	f->length = x;
	f->state = x == 0 ? S_TRAILER : S_CHUNK_DATA;
	return MTASTS_FETCH_MORE;
}

/* A complete line s[0..n) (its CRLF or LF removed) in a line state. */
static enum mtasts_fetch_rc line_done(struct mtasts_fetch *f, const char *s, size_t n)
{
	switch (f->state) {
	case S_STATUS:
		return status_line(f, s, n);
	case S_HEADER:
		return n == 0 ? head_end(f) : header_line(f, s, n);
	case S_CHUNK_SIZE:
		return chunk_size(f, s, n);
	case S_CHUNK_END:
		if (n != 0)
			return fail(f, "chunk data longer than its size");
		f->state = S_CHUNK_SIZE;
		return MTASTS_FETCH_MORE;
	default: /* S_TRAILER: fields are ignored, the empty line ends */
		if (n != 0)
			return MTASTS_FETCH_MORE;
		f->state = S_DONE;
		return MTASTS_FETCH_DONE;
	}
}

/* Take bytes of a line state; *used is how many were taken. */
static enum mtasts_fetch_rc feed_line(struct mtasts_fetch *f, const char *buf, size_t len,
                                      size_t *used)
{
	size_t i = 0;
	int head = f->state == S_STATUS || f->state == S_HEADER || f->state == S_TRAILER;

	while (i < len) {
		char c = buf[i++];
		if (head && ++f->headlen > MTASTS_FETCH_HEAD_MAX)
			return fail(f, "a response head over 8 KiB");
		if (c == '\n') {
			size_t n = f->linelen;
			if (n > 0 && f->line[n - 1] == '\r')
				n--;
			f->linelen = 0;
			if (n > MTASTS_FETCH_LINE_MAX)
				return fail(f, "a response line over 1 KiB");
			*used = i;
			return line_done(f, f->line, n);
		}
		if (c == '\0')
			return fail(f, "a NUL in the response head");
		if (f->linelen > 0 && f->line[f->linelen - 1] == '\r')
			return fail(f, "a bare CR in the response head");
		if (f->linelen == sizeof f->line)
			return fail(f, "a response line over 1 KiB");
		f->line[f->linelen++] = c;
	}
	*used = i;
	return MTASTS_FETCH_MORE;
}

/* Take body bytes: all of them (until the body's end, if it has one). */
static enum mtasts_fetch_rc feed_body(struct mtasts_fetch *f, const char *buf, size_t len,
                                      size_t *used)
{
	size_t n = len;

	if (f->state != S_BODY_EOF && n > f->length)
		n = (size_t)f->length;
	if (n > f->bodycap - f->bodylen)
		return fail(f, "a body over 64 KiB");
	memcpy(f->body + f->bodylen, buf, n);
	f->bodylen += n;
	*used = n;
	if (f->state == S_BODY_EOF)
		return MTASTS_FETCH_MORE;
	f->length -= n;
	if (f->length > 0)
		return MTASTS_FETCH_MORE;
	if (f->state == S_CHUNK_DATA) {
		f->state = S_CHUNK_END;
		return MTASTS_FETCH_MORE;
	}
	f->state = S_DONE;
	return MTASTS_FETCH_DONE;
}

enum mtasts_fetch_rc mtasts_fetch_feed(struct mtasts_fetch *f, const char *buf, size_t len)
{
	size_t pos = 0;

	while (pos < len || f->state == S_DONE || f->state == S_FAIL) {
		enum mtasts_fetch_rc rc;
		size_t used = 0;

		if (f->state == S_DONE)
			return MTASTS_FETCH_DONE;
		if (f->state == S_FAIL)
			return MTASTS_FETCH_FAIL;
		if (f->state == S_BODY_LEN || f->state == S_BODY_EOF || f->state == S_CHUNK_DATA)
			rc = feed_body(f, buf + pos, len - pos, &used);
		else
			rc = feed_line(f, buf + pos, len - pos, &used);
		pos += used;
		if (rc != MTASTS_FETCH_MORE)
			return rc;
	}
	return MTASTS_FETCH_MORE;
}

enum mtasts_fetch_rc mtasts_fetch_eof(struct mtasts_fetch *f)
{
	if (f->state == S_DONE)
		return MTASTS_FETCH_DONE;
	if (f->state == S_FAIL)
		return MTASTS_FETCH_FAIL;
	if (f->state == S_BODY_EOF) {
		f->state = S_DONE;
		return MTASTS_FETCH_DONE;
	}
	return fail(f, f->state <= S_HEADER ? "the connection closed in the response head"
	                                    : "the connection closed before the body's end");
}
