/*
 * policy/mtasts_fetch.h -- the HTTPS fetch of an MTA-STS policy (RFC 8461
 * 3.3) as bytes: the request to send and a reader for the response.  No
 * I/O: the caller connects to mtasts_fetch_host() port 443 with
 * tls_client_new(host, anchors of tls-ca-file) (mta/net/tls.h), which
 * checks the chain and that the certificate names the host, sends the
 * request, feeds what arrives to mtasts_fetch_feed() and, when the peer
 * closes, calls mtasts_fetch_eof().  It bounds the whole exchange by
 * MTASTS_FETCH_TIMEOUT.
 *
 * What the reader takes (RFC 8461 3.3, RFC 9112), and refuses otherwise:
 *   - status 200 only: a redirect (3xx) is never followed, it is a
 *     failure, as is any other status;
 *   - Content-Type text/plain (parameters such as charset allowed);
 *   - a body of at most MTASTS_POLICY_MAX bytes, sized by Content-Length,
 *     by chunked transfer coding, or by the end of the connection (the
 *     request says "Connection: close");
 *   - no Content-Encoding but identity (we ask for none), no transfer
 *     coding but chunked, never both Transfer-Encoding and Content-Length
 *     (RFC 9112 6.3: an ambiguous length is an error);
 *   - a head (status line and headers) of at most MTASTS_FETCH_HEAD_MAX
 *     bytes, lines ending in CRLF or LF, no folded header lines, no NUL.
 * Bytes after a complete body are ignored: the connection is done.
 */
#ifndef MOAT_POLICY_MTASTS_FETCH_H
#define MOAT_POLICY_MTASTS_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "policy/dns.h"
#include "policy/mtasts.h"

#define MTASTS_FETCH_HEAD_MAX  8192   /* status line and headers */
#define MTASTS_FETCH_LINE_MAX  1024   /* one header line or chunk-size line */
#define MTASTS_FETCH_TIMEOUT   60     /* seconds for the whole fetch (the driver's) */
#define MTASTS_FETCH_PATH      "/.well-known/mta-sts.txt"
#define MTASTS_FETCH_REQ_MAX   (160 + DNS_NAME_MAX)

/* "mta-sts." + domain (no trailing dot) into host; 0, or -1 if the
 * result is not a host name (dns_name_ok) of at most DNS_NAME_MAX. */
int mtasts_fetch_host(const char *domain, char host[DNS_NAME_MAX + 1]);

/* The GET request for domain's policy (HTTP/1.1, Host: mta-sts.DOMAIN,
 * Connection: close) into buf.  Returns its length, or 0 if the domain is
 * not usable (mtasts_fetch_host) or cap is too small (MTASTS_FETCH_REQ_MAX
 * always suffices). */
size_t mtasts_fetch_request(const char *domain, char *buf, size_t cap);

enum mtasts_fetch_rc {
	MTASTS_FETCH_MORE = -2,   /* feed more bytes (or call mtasts_fetch_eof) */
	MTASTS_FETCH_FAIL = -1,   /* refused: why says why; stop reading          */
	MTASTS_FETCH_DONE = 0     /* the body is complete: body[0..bodylen)      */
};

/* The reader's state.  The fields are the reader's own except those
 * marked "out". */
struct mtasts_fetch {
	unsigned    state;
	char        line[MTASTS_FETCH_LINE_MAX + 1];   /* and its CR */
	size_t      linelen;
	size_t      headlen;          /* head bytes so far */
	uint64_t    length;           /* Content-Length, or what is left of a chunk */
	unsigned    have_length : 1, chunked : 1, text_plain : 1, have_ctype : 1;
	char       *body;             /* out: the caller's buffer */
	size_t      bodycap;
	size_t      bodylen;          /* out: body bytes */
	int         status;           /* out: the HTTP status, 0 until read */
	const char *why;              /* out: after MTASTS_FETCH_FAIL, static text */
};

/* Start reading a response into body[0..cap) (cap: MTASTS_POLICY_MAX,
 * at most; the caller owns body and keeps it for as long as f). */
void mtasts_fetch_init(struct mtasts_fetch *f, char *body, size_t cap);

/*
 * Feed len received bytes.  Returns MORE (all taken), DONE or FAIL; once
 * DONE or FAIL, further calls return the same and take nothing.  Split
 * anywhere, the same bytes give the same result.
 */
enum mtasts_fetch_rc mtasts_fetch_feed(struct mtasts_fetch *f, const char *buf, size_t len);

/* The peer closed the connection: DONE if the body is delimited by the
 * close and complete, else FAIL (or the earlier DONE/FAIL). */
enum mtasts_fetch_rc mtasts_fetch_eof(struct mtasts_fetch *f);

#endif
