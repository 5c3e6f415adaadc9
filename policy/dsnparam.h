/*
 * policy/dsnparam.h -- the parameters of the SMTP Delivery Status
 * Notification extension (RFC 3461): RET= and ENVID= on MAIL, NOTIFY= and
 * ORCPT= on RCPT, and the xtext they are written in (RFC 3461 section 4,
 * with RFC 6533's "utf-8" address type for ORCPT).
 *
 * Pure functions on bytes: no I/O, no allocation.  The session hands each
 * MAIL or RCPT parameter to dsnparam_mail() / dsnparam_rcpt(), which take
 * the DSN ones (DSNP_OK), leave the others to the caller (DSNP_OTHER), and
 * refuse a bad value or a parameter given twice with a code whose exact
 * reply dsnparam_reply() gives (docs/smtp-replies.md).  What they keep
 * points into the caller's command line: the values are kept as they came
 * (xtext), because RFC 3461 asks a relay to pass them on unchanged; they
 * are decoded only for a report (dsnparam_xtext_decode, dsnparam_orcpt_text).
 *
 * What is accepted, decided here:
 *   - keywords and values are case-insensitive (NOTIFY=never); a list
 *     element given twice (NOTIFY=DELAY,DELAY) is taken once;
 *   - NOTIFY=NEVER with any other value is a conflict (RFC 3461 4.1);
 *   - ENVID is xtext of 1..100 octets (as sent) whose decoded value is
 *     printable US-ASCII (graphic or space, RFC 3461 4.4);
 *   - ORCPT is addr-type ";" value, 1..500 octets in all (RFC 3461 4.2);
 *     addr-type is an atom; for "utf-8" (any case) the value is RFC 6533's
 *     utf-8-addr-xtext (printable ASCII but '+', '=', '\' and SP, and
 *     \x{HEX} for the rest, in its shortest form, never a surrogate or
 *     NUL); for any other type it is xtext whose decoded value is
 *     printable US-ASCII;
 *   - a parameter given twice in one command is refused (RFC 3461 4.1:
 *     "MUST NOT appear more than once"), even with the same value.
 */
#ifndef MOAT_POLICY_DSNPARAM_H
#define MOAT_POLICY_DSNPARAM_H

#include <stddef.h>
#include <stdint.h>

/* NOTIFY, as bits; 0 means the parameter was not given (the default
 * applies: a failure is reported, and a delay). */
#define DSN_NOTIFY_SUCCESS 0x01u
#define DSN_NOTIFY_FAILURE 0x02u
#define DSN_NOTIFY_DELAY   0x04u
#define DSN_NOTIFY_NEVER   0x08u

/* RET. */
#define DSN_RET_NONE 0u   /* not given: headers only, as for HDRS */
#define DSN_RET_FULL 1u
#define DSN_RET_HDRS 2u

#define DSN_ENVID_MAX 100   /* octets of the ENVID value, as sent */
#define DSN_ORCPT_MAX 500   /* octets of the ORCPT value (type;address), as sent */

enum dsnparam_result {
	DSNP_OK = 0,              /* a DSN parameter, taken */
	DSNP_OTHER = 1,           /* not a DSN parameter of this verb: the caller's */
	DSNP_NOTIFY_BAD = -1,
	DSNP_NOTIFY_CONFLICT = -2,/* NEVER with another value */
	DSNP_ORCPT_BAD = -3,
	DSNP_RET_BAD = -4,
	DSNP_ENVID_BAD = -5,
	DSNP_NOTIFY_TWICE = -6,
	DSNP_ORCPT_TWICE = -7,
	DSNP_RET_TWICE = -8,
	DSNP_ENVID_TWICE = -9
};

/* MAIL's DSN parameters; zero it before the first parameter. */
struct dsnparam_mail {
	uint8_t     ret;          /* DSN_RET_* */
	const char *envid;        /* into the caller's line; NULL: not given */
	size_t      envidlen;
};

/* RCPT's; zero it before the first parameter. */
struct dsnparam_rcpt {
	uint8_t     notify;       /* DSN_NOTIFY_* bits, 0: not given */
	const char *orcpt;        /* into the caller's line; NULL: not given */
	size_t      orcptlen;
};

/* One ESMTP parameter key[0..keylen) with its value val[0..vallen) (val
 * NULL when there was no '='): DSNP_OK, DSNP_OTHER or an error. */
int dsnparam_mail(struct dsnparam_mail *m, const char *key, size_t keylen,
                  const char *val, size_t vallen);
int dsnparam_rcpt(struct dsnparam_rcpt *r, const char *key, size_t keylen,
                  const char *val, size_t vallen);

/* The whole reply line for an error result, without CRLF
 * ("501 5.5.4 Bad NOTIFY parameter"); NULL for DSNP_OK and DSNP_OTHER. */
const char *dsnparam_reply(int result);

/* ---- building blocks, for the queue's decoder, the client, reports ---- */

/* NOTIFY's value: 0 with *bits, -1 bad, -2 NEVER with another value. */
int dsnparam_notify_parse(const char *v, size_t n, uint8_t *bits);
/* 1 when bits is a value NOTIFY can leave (0 included), else 0. */
int dsnparam_notify_valid(unsigned bits);
/* bits as NOTIFY's value, "SUCCESS,FAILURE,DELAY" or "NEVER", into out
 * (NUL-terminated; 32 bytes suffice); "" for 0.  Returns the length. */
size_t dsnparam_notify_text(unsigned bits, char out[32]);

/* 1 when v[0..n) is a valid ENVID / ORCPT value, else 0. */
int dsnparam_envid_ok(const char *v, size_t n);
int dsnparam_orcpt_ok(const char *v, size_t n);

/* Decode xtext v[0..n) ("+2B" is '+') into out[0..cap) (NUL-terminated,
 * cut to fit).  Returns the decoded length (before any cut), or
 * (size_t)-1 if v is not xtext. */
size_t dsnparam_xtext_decode(const char *v, size_t n, char *out, size_t cap);

/*
 * An ORCPT value as it goes in a report's Original-Recipient field
 * (RFC 3464 2.3.1, RFC 6533 3): "type;address" with the address decoded
 * from xtext; a "utf-8" address stays in its 7-bit form unless unicode is
 * set (a message/global-delivery-status), when \x{HEX} of a non-ASCII
 * character becomes the character in UTF-8.  v must be valid
 * (dsnparam_orcpt_ok).  Writes out[0..cap) NUL-terminated and returns the
 * length it needs, like snprintf.
 */
size_t dsnparam_orcpt_text(const char *v, size_t n, int unicode, char *out, size_t cap);

/*
 * A recipient address for a "utf-8" address-type field (RFC 6533 3):
 * utf-8-addr-unitext when unicode is set (UTF-8 kept, '\', '+', '=', SP
 * and controls as \x{HEX}), else utf-8-addr-xtext (every octet sequence
 * outside QCHAR as \x{HEX} of its code point; a byte that is not UTF-8 as
 * \x{FFFD}).  Writes out[0..cap) NUL-terminated, returns the length it
 * needs.
 */
size_t dsnparam_utf8_addr(const char *addr, int unicode, char *out, size_t cap);

#endif
