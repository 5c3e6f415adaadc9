/*
 * policy/idna.h -- a domain name with UTF-8 labels (SMTPUTF8 mail) to the
 * ASCII form DNS is asked in: each non-ASCII label becomes "xn--" and its
 * Punycode (RFC 3492).  Pure: no I/O, no allocation.
 *
 * What it does not do: Unicode normalisation or the IDNA2008 validity
 * rules (RFC 5891 5.4).  A name that was not already NFC and valid finds
 * no DNS records, and the mail bounces the way a misspelt domain does;
 * the conversion itself never produces anything but a checked host name.
 */
#ifndef MOAT_POLICY_IDNA_H
#define MOAT_POLICY_IDNA_H

#include <stddef.h>

/*
 * Convert name[0..len) (labels of UTF-8, '.' between them) into out
 * (cap bytes, NUL-terminated): ASCII labels lower-cased, the others as
 * A-labels.  Returns the length, or 0 if the UTF-8 is malformed, a label
 * is empty or over 63 octets once converted, or the result is not a host
 * name of at most 253 octets (policy/dns.h dns_name_ok).
 */
size_t idna_to_ascii(const char *name, size_t len, char *out, size_t cap);

#endif
