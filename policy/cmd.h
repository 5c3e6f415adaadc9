/*
 * policy/cmd.h -- SMTP command line framing and parsing (RFC 5321 4.1).
 *
 * Pure functions on bytes: no I/O, no allocation, no clock.  Outputs point
 * into the caller's buffer and live as long as it does.
 *
 * Two steps, kept apart so that a line is never split into two commands:
 *   1. smtp_line_scan() finds where a line ends and says whether it is clean
 *      (ends in CRLF, no bare CR, no bare LF, no NUL, not over the limit).
 *   2. smtp_cmd_parse() parses one clean line, without its CRLF.
 */
#ifndef MOAT_POLICY_CMD_H
#define MOAT_POLICY_CMD_H

#include <stddef.h>
#include <sys/types.h>

/* RFC 5321 4.5.3.1.4: 512 octets including CRLF; extensions may add. */
#define SMTP_LINE_MAX 2048

/* smtp_line_scan() flags for a line it found. */
#define SMTP_LINE_BARE_LF  0x01u /* line ended in LF not preceded by CR   */
#define SMTP_LINE_BARE_CR  0x02u /* a CR not followed by LF inside the line */
#define SMTP_LINE_NUL      0x04u /* a NUL octet inside the line            */

struct smtp_line {
	size_t   len;   /* length of the line content, without CRLF / LF */
	unsigned flags; /* SMTP_LINE_* above; 0 for a clean line          */
};

/*
 * Find the first line in buf[0..len).  A line ends at the first LF.
 * Returns the number of bytes the line takes including its terminator,
 * -2 if no LF is in buf yet and len < max (need more bytes),
 * -1 if no LF is within the first max bytes (line too long: the caller
 *    discards up to and including the next LF and answers 500 once).
 * out is filled only when a line is returned.
 */
ssize_t smtp_line_scan(const char *buf, size_t len, size_t max, struct smtp_line *out);

enum smtp_verb {
	SMTP_VERB_NONE = 0, /* empty line */
	SMTP_VERB_UNKNOWN,
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_HELP,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
	SMTP_VERB_BDAT,
	SMTP_VERB__COUNT
};

#define SMTP_CMD_MAXPARAMS 16

/* An ESMTP parameter "KEY" or "KEY=VALUE" (RFC 5321 4.1.2 esmtp-param). */
struct smtp_param {
	const char *key; size_t keylen;
	const char *val; size_t vallen; /* val NULL when no '=' */
};

struct smtp_cmd {
	enum smtp_verb verb;
	/* Everything after the verb and one SP (HELO/EHLO domain, VRFY/HELP/AUTH
	 * argument); for MAIL/RCPT the text after "FROM:" / "TO:". */
	const char *arg; size_t arglen;
	/* MAIL/RCPT only: the path including its angle brackets. */
	const char *path; size_t pathlen;
	struct smtp_param params[SMTP_CMD_MAXPARAMS];
	size_t nparams;
};

enum smtp_cmd_result {
	SMTP_CMD_OK = 0,
	SMTP_CMD_EUNKNOWN = -1, /* unknown verb: 500 5.5.1              */
	SMTP_CMD_ESYNTAX  = -2, /* bad arguments for a known verb: 501  */
	SMTP_CMD_EPARAMS  = -3  /* more than SMTP_CMD_MAXPARAMS: 501    */
};

/*
 * Parse one line (without CRLF).  Verbs are case-insensitive.
 * MAIL requires "FROM:" and RCPT "TO:" (case-insensitive); RFC 5321 allows
 * no space after the colon, and we tolerate spaces there as most MTAs do.
 * The path must be in angle brackets; parameters follow, separated by SP.
 * Commands that take no argument (DATA, RSET, QUIT, STARTTLS) with one are
 * SMTP_CMD_ESYNTAX; NOOP, HELP and VRFY take an optional argument.
 * Which parameters a verb understands is the caller's decision (555).
 *
 * Details, decided here:
 *   - trailing SPs are dropped first ("DATA " is DATA); a line that is empty
 *     or only SPs is SMTP_CMD_OK with verb SMTP_VERB_NONE;
 *   - the verb ends at the first SP; one SP separates it from the argument
 *     (so "HELO  x" has the argument " x": the caller judges HELO syntax);
 *   - EXPN takes an optional argument like VRFY; HELO, EHLO and AUTH need
 *     one; BDAT needs chunk-size [ SP "LAST" ] (RFC 3030, LAST in any case);
 *   - the path ends at the first '>' outside a quoted-string (a backslash
 *     inside quotes escapes the next octet); its contents are for
 *     addr_parse_path();
 *   - parameters are separated by one or more SP; esmtp-value is ASCII
 *     only (%d33-60 / %d62-126, no UTF-8 even under SMTPUTF8);
 *   - out is cleared first and out->verb is set for every known verb even
 *     when the result is an error, so the caller can name it in a reply;
 *     the other fields are meaningful only on SMTP_CMD_OK.
 */
enum smtp_cmd_result smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *out);

/* Upper-case verb name for logs ("MAIL"), "" for NONE/UNKNOWN. */
const char *smtp_verb_name(enum smtp_verb v);

#endif
