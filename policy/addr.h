/*
 * policy/addr.h -- RFC 5321 4.1.2 paths: "<", optional source route,
 * Mailbox, ">".  Pure: no I/O, no allocation.
 *
 * The parser normalises only what cannot change where mail goes: the domain
 * is lower-cased and one trailing dot is removed; a source route is dropped
 * (RFC 5321 C: "MUST accept and ignore"); the local part is kept byte for
 * byte, quoted form included, because only the final host may interpret it.
 * It never interprets '%', '!' or a quoted '@': it reports them in flags so
 * that the relay rules can refuse them (policy/rules.h).
 *
 * Details the grammar leaves open, decided here:
 *   - an address literal is kept as sent (not lower-cased); "IPv6:" is
 *     matched case-insensitively and must then hold an RFC 5321 IPv6-addr
 *     ("::" stands for at least two groups); any other tag is accepted as a
 *     General-address-literal by syntax alone;
 *   - an empty quoted local part ("") is refused, as is an empty local part;
 *   - under ADDR_ALLOW_UTF8 a U-label is any run of letters, digits, '-' and
 *     well-formed UTF-8 (RFC 3629: no overlongs, surrogates, or code points
 *     past U+10FFFF; C1 controls U+0080..U+009F are refused too); IDNA
 *     rules beyond that are not checked;
 *   - a non-ASCII octet without ADDR_ALLOW_UTF8 is ADDR_EUTF8 where UTF-8
 *     could stand (local part, domain) and ADDR_ESYNTAX elsewhere;
 *   - a label over 63 octets is ADDR_ETOOLONG, like the other limits;
 *   - a source route's domains must be Domains (no literals) and are checked
 *     like the mailbox's.
 */
#ifndef MOAT_POLICY_ADDR_H
#define MOAT_POLICY_ADDR_H

#include <stddef.h>

#define ADDR_LOCAL_MAX   64   /* RFC 5321 4.5.3.1.1 */
#define ADDR_DOMAIN_MAX  255  /* RFC 5321 4.5.3.1.2 */
#define ADDR_PATH_MAX    256  /* RFC 5321 4.5.3.1.3, including < > */
/* local "@" domain, NUL: the longest text addr_format() writes. */
#define ADDR_TEXT_MAX    (ADDR_LOCAL_MAX + 1 + ADDR_DOMAIN_MAX + 1)

/* addr_parse_path() flags in (what the caller permits) */
#define ADDR_ALLOW_NULL        0x01u /* "<>" is valid (MAIL FROM)                  */
#define ADDR_ALLOW_POSTMASTER  0x02u /* "<Postmaster>" without domain (RCPT)      */
#define ADDR_ALLOW_UTF8        0x04u /* SMTPUTF8 given: UTF-8 in local and domain  */

/* struct addr flags out (what the address holds) */
#define ADDR_F_NULL        0x001u /* the null path <>                              */
#define ADDR_F_POSTMASTER  0x002u /* bare <postmaster>, domain empty               */
#define ADDR_F_QUOTED      0x004u /* local part is a quoted-string                 */
#define ADDR_F_LITERAL     0x008u /* domain is an address literal [..]             */
#define ADDR_F_ROUTE       0x010u /* a source route was present and dropped        */
#define ADDR_F_PERCENT     0x020u /* '%' in the local part                         */
#define ADDR_F_BANG        0x040u /* '!' in the local part                         */
#define ADDR_F_AT_IN_LOCAL 0x080u /* '@' inside a quoted local part                */
#define ADDR_F_UTF8        0x100u /* non-ASCII octets present                      */
#define ADDR_F_TRAILDOT    0x200u /* domain had a trailing dot, removed            */

/* Any of these in a recipient means a host after us might re-route it. */
#define ADDR_F_ROUTING (ADDR_F_PERCENT | ADDR_F_BANG | ADDR_F_AT_IN_LOCAL)

struct addr {
	char     local[ADDR_LOCAL_MAX + 1];   /* as sent, NUL-terminated  */
	size_t   locallen;
	char     domain[ADDR_DOMAIN_MAX + 1]; /* lower-cased, no trailing dot; for a
	                                         literal the text with brackets */
	size_t   domainlen;
	unsigned flags;                        /* ADDR_F_* */
};

enum addr_result {
	ADDR_OK = 0,
	ADDR_ESYNTAX = -1,   /* 501 5.1.3 (RCPT) / 501 5.1.7 (MAIL) */
	ADDR_ETOOLONG = -2,  /* 501 5.1.3: a length limit above       */
	ADDR_EUTF8 = -3      /* non-ASCII without ADDR_ALLOW_UTF8: 553 5.6.7 */
};

/*
 * Parse path[0..len), which must start with '<' and end with '>'.
 * allow: ADDR_ALLOW_* bits.  Fills *out on ADDR_OK only.
 */
enum addr_result addr_parse_path(const char *path, size_t len, unsigned allow, struct addr *out);

/*
 * Write "local@domain" (or "" for the null path, "postmaster" for the bare
 * form) into buf of size cap, NUL-terminated.  Returns the length, or 0 and
 * buf[0] = 0 if cap is too small (ADDR_TEXT_MAX always suffices).
 * The bare postmaster is written as sent ("Postmaster" stays so); with
 * cap 0 nothing is written.  "<" text ">" parses back to the same address,
 * less ADDR_F_ROUTE and ADDR_F_TRAILDOT.
 */
size_t addr_format(const struct addr *a, char *buf, size_t cap);

/* Is name a syntactically valid domain (RFC 5321 Domain) or address literal?
 * Used for HELO/EHLO arguments.  utf8: allow U-labels.  One trailing dot
 * is accepted, as in a path; returns 1 if valid, 0 if not. */
int addr_domain_valid(const char *name, size_t len, int utf8);

#endif
