/*
 * policy/reply.h -- SMTP replies as a client reads them (RFC 5321 4.2).
 *
 * Pure: no I/O, no allocation, no clock.  The reply comes from a remote
 * server we do not trust (OpenSMTPD CVE-2020-8794 was an out-of-bounds
 * read on a hostile multi-line reply), so the parser is strict where it
 * matters and never reads past len:
 *
 *   - a line ends at LF; a CR is allowed only right before that LF (a bare
 *     LF is tolerated as a line end, a bare CR is not);
 *   - each line starts with three digits, the first 2..5, then SP, '-' or
 *     the line end; every line of one reply carries the same code;
 *   - no NUL anywhere;
 *   - a line is at most SMTP_REPLY_LINE_MAX octets with its line end, a
 *     reply at most SMTP_REPLY_LINES_MAX lines: a server that goes on is
 *     broken or hostile, never a reason to buffer more.
 * Anything else is SMTP_REPLY_BAD: the caller drops the connection and
 * treats it as a temporary failure of that server.
 */
#ifndef MOAT_POLICY_REPLY_H
#define MOAT_POLICY_REPLY_H

#include <stddef.h>
#include <sys/types.h>

#define SMTP_REPLY_LINE_MAX  1000  /* RFC 5321 4.5.3.1.5 says 512 with CRLF */
#define SMTP_REPLY_LINES_MAX 32
/* The most one complete reply can take: a client input buffer this big
 * always holds a reply whole or sees it refused. */
#define SMTP_REPLY_MAX (SMTP_REPLY_LINE_MAX * SMTP_REPLY_LINES_MAX)

#define SMTP_REPLY_NEED (-2)   /* no complete reply yet */
#define SMTP_REPLY_BAD  (-1)   /* a protocol violation (see above) */

struct smtp_reply_line {
	const char *text;   /* after "ddd " / "ddd-", without the line end */
	size_t      len;
};

struct smtp_reply {
	int      code;                  /* 200..599 */
	/* RFC 3463 enhanced status code at the start of the first line's text,
	 * when there is one whose class matches the reply code: e.g. 5, 1, 1;
	 * all 0 otherwise. */
	unsigned esc_class, esc_subject, esc_detail;
	size_t   nlines;
	struct smtp_reply_line line[SMTP_REPLY_LINES_MAX];
};

/*
 * Parse the first complete reply in buf[0..len).  Returns the bytes it
 * takes (line ends included), SMTP_REPLY_NEED or SMTP_REPLY_BAD.  out is
 * filled only on success; its text pointers point into buf.
 */
ssize_t smtp_reply_parse(const char *buf, size_t len, struct smtp_reply *out);

/*
 * The reply as one line of printable ASCII for logs and the queue's
 * last_error: "550 5.1.1 text text2 ...", lines joined by a space, control
 * and non-ASCII bytes and '\\' as "\xNN" (so UTF-8 text can be read back),
 * cut to cap - 1 bytes, never inside an escape.  Returns the length.
 */
size_t smtp_reply_text(const struct smtp_reply *r, char *buf, size_t cap);

#endif
