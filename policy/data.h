/*
 * policy/data.h -- the DATA terminator and dot-unstuffing (RFC 5321 4.1.1.4,
 * 4.5.2), as a byte state machine in the spirit of qmail-smtpd's blast().
 *
 * Pure: no I/O, no allocation.  The message ends only on CRLF "." CRLF.
 * A bare LF (LF not preceded by CR) or a bare CR (CR not followed by LF)
 * anywhere in the data is recorded in DATA_F_BARE and never ends the data:
 * "\n.\n", "\r.\r" and "\n.\r\n" are message content, not terminators, so
 * commands smuggled behind them are swallowed as data (CVE-2023-51764 class)
 * and the caller rejects the whole message.
 * The output is the unstuffed message with its line breaks as CRLF exactly
 * as received; the final CRLF before "." belongs to the message.
 */
#ifndef MOAT_POLICY_DATA_H
#define MOAT_POLICY_DATA_H

#include <stddef.h>

#define DATA_F_BARE  0x01u /* bare CR or bare LF seen               */
#define DATA_F_NUL   0x02u /* a NUL octet seen (recorded, allowed)  */
#define DATA_F_LONG  0x04u /* a line over 998 octets + CRLF seen, counted
                              as received (a stuffing dot counts) */

struct data_state {
	int      st;       /* internal; 0 after data_init() */
	unsigned flags;    /* DATA_F_*, sticky */
	size_t   linelen;  /* length of the current line so far */
};

void data_init(struct data_state *ds);

/*
 * Feed in[0..inlen).  Unstuffed message bytes are appended to out (at most
 * outcap; in the worst case each input byte yields at most one output byte,
 * plus up to 2 held bytes released -- outcap >= inlen + 2 always suffices).
 * *consumed is set to how many input bytes were used.
 * Returns 1 when the terminator has been consumed (the bytes after it in in
 * are not touched and belong to the next command), 0 otherwise.
 * *outlen receives the number of bytes written.
 * Each step writes at most one byte and data_feed stops before a step that
 * would overflow out: then *consumed < inlen and the caller, having drained
 * out, calls again with the rest.  With outcap >= 1 every call makes
 * progress (*consumed > 0 or *outlen > 0); outcap 0 is allowed and takes
 * only the steps that write nothing.  Only a "." at the start of a line and
 * the CR after it are ever held back (never written until the next byte
 * says whether they are a terminator or stuffing and a bare CR).
 * After the terminator, further calls return 1 and use nothing.
 */
int data_feed(struct data_state *ds, const char *in, size_t inlen,
              char *out, size_t outcap, size_t *outlen, size_t *consumed);

/*
 * The other direction, for the SMTP client: message bytes as stored to
 * DATA bytes.  A "." at the start of a line is doubled; a bare CR or a bare
 * LF becomes CRLF, so the client never sends either (stored bodies are
 * CRLF already; this is the guarantee, not the common case).
 */
struct stuff_state {
	int bol;   /* at the start of a line (initially 1) */
	int cr;    /* the last byte written was a CR whose LF is still due */
};

void stuff_init(struct stuff_state *st);

/*
 * Encode in[0..inlen) into out[0..outcap).  Each input byte writes at most
 * three output bytes; the function stops before a byte that might not fit,
 * so *consumed may be < inlen (call again after draining out).  Returns
 * the bytes written.  With outcap >= 3 every call makes progress.
 */
size_t stuff_feed(struct stuff_state *st, const char *in, size_t inlen,
                  char *out, size_t outcap, size_t *consumed);

/*
 * Counting hops: the "Received:" fields of a message's header section (RFC
 * 5321 6.3: a relay refuses mail that has passed through too many, the sign
 * of a loop).  Fed the message bytes in order, in pieces of any size (the
 * unstuffed output of data_feed).  A field name matches whatever its case,
 * with spaces or tabs allowed before the colon (RFC 5322 4.5.3); a line
 * that starts with anything else, a continuation line included, is not
 * counted; the header section ends at the first empty line.  The count
 * stops at UINT_MAX.
 */
struct hops_state {
	unsigned count;   /* Received: fields so far */
	unsigned col;     /* letters of "received" matched on this line */
	int      st;      /* internal; 0 after hops_init() */
};

void hops_init(struct hops_state *h);
void hops_feed(struct hops_state *h, const char *in, size_t len);

/* The end of the data: CRLF if the message did not end with one, then
 * ".\r\n".  out must hold STUFF_END_MAX bytes.  Returns the bytes written. */
#define STUFF_END_MAX 5
size_t stuff_end(struct stuff_state *st, char *out);

#endif
