/* policy/addr.c -- RFC 5321 4.1.2 paths; see policy/addr.h */
#include "policy/addr.h"

#include <string.h>

/*
 * The parser walks a cursor over [p, end).  Every helper returns ADDR_OK
 * and advances *pp, or an error and leaves nothing the caller relies on.
 */

static int is_alpha(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_letdig(unsigned char c) { return is_alpha(c) || is_digit(c); }
static int is_hex(unsigned char c)
{
	return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* atext (RFC 5322 3.2.3), ASCII part. */
static int is_atext(unsigned char c)
{
	return is_letdig(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/*
 * Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), 0 if there is none.  C1 controls
 * (U+0080..U+009F) are refused too: no address needs them.
 */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
	size_t avail = (size_t)(end - p);
	unsigned char c = p[0];
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		if (c == 0xc2)
			lo = 0xa0;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (avail < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/* A non-ASCII octet where UTF-8 may stand: step over its sequence. */
static enum addr_result utf8_step(const unsigned char **pp, const unsigned char *end,
                                  unsigned allow, unsigned *flags)
{
	if (!(allow & ADDR_ALLOW_UTF8))
		return ADDR_EUTF8;
	size_t n = utf8_len(*pp, end);
	if (n == 0)
		return ADDR_ESYNTAX;
	*flags |= ADDR_F_UTF8;
	*pp += n;
	return ADDR_OK;
}

/*
 * Domain = sub-domain *("." sub-domain)
 * sub-domain = Let-dig [Ldh-str]    (or a U-label with SMTPUTF8, RFC 6531)
 * Stops at the first octet that cannot continue the domain.  One trailing
 * dot is accepted when trail is given: *trail is then set.
 */
static enum addr_result domain_scan(const unsigned char **pp, const unsigned char *end,
                                    unsigned allow, unsigned *flags, int *trail)
{
	const unsigned char *p = *pp, *start = p;

	for (;;) {
		const unsigned char *label = p;
		unsigned char last = 0;
		while (p < end) {
			if (is_letdig(*p) || *p == '-') {
				last = *p++;
			} else if (*p >= 0x80) {
				enum addr_result r = utf8_step(&p, end, allow, flags);
				if (r != ADDR_OK)
					return r;
				last = 'x';
			} else {
				break;
			}
		}
		if (p == label) {
			/* An empty label is only the one after a trailing dot. */
			if (trail != NULL && p > start + 1 && p[-1] == '.' && p[-2] != '.') {
				*trail = 1;
				break;
			}
			return ADDR_ESYNTAX;
		}
		if (label[0] == '-' || last == '-')
			return ADDR_ESYNTAX;
		if (p - label > 63)
			return ADDR_ETOOLONG;
		if (p < end && *p == '.') {
			p++;
			continue;
		}
		break;
	}
	*pp = p;
	return ADDR_OK;
}

/* Snum = 1*3DIGIT, 0..255 */
static int snum(const unsigned char **pp, const unsigned char *end)
{
	const unsigned char *p = *pp;
	unsigned v = 0;
	size_t n = 0;
	while (p < end && is_digit(*p) && n < 3) {
		v = v * 10 + (unsigned)(*p++ - '0');
		n++;
	}
	if (n == 0 || v > 255 || (p < end && is_digit(*p)))
		return 0;
	*pp = p;
	return 1;
}

/* IPv4-address-literal = Snum 3("." Snum), all of [p, end). */
static int ipv4_ok(const unsigned char *p, const unsigned char *end)
{
	for (int i = 0; i < 4; i++) {
		if (i > 0 && (p == end || *p++ != '.'))
			return 0;
		if (!snum(&p, end))
			return 0;
	}
	return p == end;
}

/*
 * IPv6-addr (RFC 5321 4.1.3), all of [p, end): eight groups, or fewer with
 * one "::" standing for at least two (at most six groups beside it); the
 * last two groups may be an IPv4 address.
 */
static int ipv6_ok(const unsigned char *p, const unsigned char *end)
{
	int groups = 0, comp = 0;

	if (end - p >= 2 && p[0] == ':' && p[1] == ':') {
		comp = 1;
		p += 2;
		if (p == end)
			return 1;
	}
	for (;;) {
		const unsigned char *g = p;
		while (p < end && is_hex(*p) && p - g < 5)
			p++;
		if (p < end && *p == '.') {
			/* The IPv4 tail: counts as two groups, ends the address. */
			if (!ipv4_ok(g, end))
				return 0;
			groups += 2;
			break;
		}
		if (p == g || p - g > 4)
			return 0;
		groups++;
		if (p == end)
			break;
		if (*p != ':')
			return 0;
		p++;
		if (p < end && *p == ':') {
			if (comp)
				return 0;
			comp = 1;
			p++;
			if (p == end)
				break;
		} else if (p == end) {
			return 0; /* a single trailing ':' */
		}
	}
	return comp ? groups <= 6 : groups == 8;
}

/*
 * address-literal = "[" ( IPv4-address-literal / IPv6-address-literal /
 *                         General-address-literal ) "]"
 * General-address-literal = Standardized-tag ":" 1*dcontent
 */
static enum addr_result literal_scan(const unsigned char **pp, const unsigned char *end)
{
	const unsigned char *p = *pp + 1, *close = p;
	while (close < end && *close != ']')
		close++;
	if (close == end)
		return ADDR_ESYNTAX;

	const unsigned char *colon = memchr(p, ':', (size_t)(close - p));
	int ok;
	if (colon == NULL) {
		ok = ipv4_ok(p, close);
	} else if (colon - p == 4 && (p[0] | 0x20) == 'i' && (p[1] | 0x20) == 'p'
	           && (p[2] | 0x20) == 'v' && p[3] == '6') {
		ok = ipv6_ok(colon + 1, close);
	} else {
		/* Standardized-tag = Ldh-str: let-dig at the end, no other tag check. */
		ok = colon > p && is_letdig(colon[-1]) && colon + 1 < close;
		for (const unsigned char *q = p; ok && q < colon; q++)
			ok = is_letdig(*q) || *q == '-';
		for (const unsigned char *q = colon + 1; ok && q < close; q++)
			ok = (*q >= 33 && *q <= 90) || (*q >= 94 && *q <= 126);
	}
	if (!ok)
		return ADDR_ESYNTAX;
	*pp = close + 1;
	return ADDR_OK;
}

/* '%', '!' and '@' in a local part: routing for some host after us. */
static void local_char_flags(unsigned char c, unsigned *flags)
{
	if (c == '%')
		*flags |= ADDR_F_PERCENT;
	else if (c == '!')
		*flags |= ADDR_F_BANG;
	else if (c == '@')
		*flags |= ADDR_F_AT_IN_LOCAL;
}

/* Dot-string = Atom *("." Atom), atext with UTF-8 under SMTPUTF8. */
static enum addr_result dot_string_scan(const unsigned char **pp, const unsigned char *end,
                                        unsigned allow, unsigned *flags)
{
	const unsigned char *p = *pp;
	for (;;) {
		const unsigned char *atom = p;
		while (p < end) {
			if (is_atext(*p)) {
				local_char_flags(*p++, flags);
			} else if (*p >= 0x80) {
				enum addr_result r = utf8_step(&p, end, allow, flags);
				if (r != ADDR_OK)
					return r;
			} else {
				break;
			}
		}
		if (p == atom)
			return ADDR_ESYNTAX;
		if (p < end && *p == '.') {
			p++;
			continue;
		}
		break;
	}
	*pp = p;
	return ADDR_OK;
}

/* Quoted-string = DQUOTE *QcontentSMTP DQUOTE, not empty here. */
static enum addr_result quoted_scan(const unsigned char **pp, const unsigned char *end,
                                    unsigned allow, unsigned *flags)
{
	const unsigned char *p = *pp + 1;
	size_t content = 0;
	for (;;) {
		if (p == end)
			return ADDR_ESYNTAX;
		unsigned char c = *p;
		if (c == '"')
			break;
		if (c == '\\') {
			/* quoted-pairSMTP = %d92 %d32-126 */
			if (end - p < 2 || p[1] < 32 || p[1] > 126)
				return ADDR_ESYNTAX;
			c = p[1];
			p += 2;
		} else if (c >= 0x80) {
			enum addr_result r = utf8_step(&p, end, allow, flags);
			if (r != ADDR_OK)
				return r;
		} else if (c >= 32 && c <= 126) {
			p++; /* qtextSMTP: all printable but '"' and '\\', handled above */
		} else {
			return ADDR_ESYNTAX;
		}
		local_char_flags(c, flags);
		content++;
	}
	if (content == 0)
		return ADDR_ESYNTAX;
	*flags |= ADDR_F_QUOTED;
	*pp = p + 1;
	return ADDR_OK;
}

/* A-d-l = At-domain *( "," At-domain ) ":", At-domain = "@" Domain */
static enum addr_result route_scan(const unsigned char **pp, const unsigned char *end,
                                   unsigned allow, unsigned *flags)
{
	const unsigned char *p = *pp;
	for (;;) {
		if (p == end || *p != '@')
			return ADDR_ESYNTAX;
		p++;
		const unsigned char *d = p;
		/* The route is dropped: its UTF-8 (allowed only with SMTPUTF8)
		 * does not make the address a UTF-8 one (addr.h: format and
		 * parse give the same flags, less ROUTE and TRAILDOT). */
		unsigned rflags = 0;
		enum addr_result r = domain_scan(&p, end, allow, &rflags, NULL);
		if (r != ADDR_OK)
			return r;
		if (p - d > ADDR_DOMAIN_MAX)
			return ADDR_ETOOLONG;
		if (p < end && *p == ',') {
			p++;
			continue;
		}
		if (p < end && *p == ':')
			break;
		return ADDR_ESYNTAX;
	}
	*flags |= ADDR_F_ROUTE;
	*pp = p + 1;
	return ADDR_OK;
}

enum addr_result addr_parse_path(const char *path, size_t len, unsigned allow, struct addr *out)
{
	const unsigned char *p = (const unsigned char *)path, *end = p + len;
	unsigned flags = 0;
	enum addr_result r;

	if (len > ADDR_PATH_MAX)
		return ADDR_ETOOLONG;
	if (len < 2 || p[0] != '<' || end[-1] != '>')
		return ADDR_ESYNTAX;
	p++;
	end--;

	if (p == end) {
		if (!(allow & ADDR_ALLOW_NULL))
			return ADDR_ESYNTAX;
		memset(out, 0, sizeof *out);
		out->flags = ADDR_F_NULL;
		return ADDR_OK;
	}
	if ((size_t)(end - p) == 10 && (allow & ADDR_ALLOW_POSTMASTER)) {
		static const char pm[] = "postmaster";
		size_t i = 0;
		while (i < 10 && (p[i] | 0x20) == (unsigned char)pm[i])
			i++;
		if (i == 10) {
			memset(out, 0, sizeof *out);
			memcpy(out->local, p, 10);
			out->locallen = 10;
			out->flags = ADDR_F_POSTMASTER;
			return ADDR_OK;
		}
	}

	if (*p == '@' && (r = route_scan(&p, end, allow, &flags)) != ADDR_OK)
		return r;

	const unsigned char *local = p;
	if (p < end && *p == '"')
		r = quoted_scan(&p, end, allow, &flags);
	else
		r = dot_string_scan(&p, end, allow, &flags);
	if (r != ADDR_OK)
		return r;
	size_t locallen = (size_t)(p - local);
	if (locallen > ADDR_LOCAL_MAX)
		return ADDR_ETOOLONG;
	if (p == end || *p != '@')
		return ADDR_ESYNTAX;
	p++;

	const unsigned char *domain = p;
	int trail = 0;
	if (p < end && *p == '[') {
		r = literal_scan(&p, end);
		flags |= ADDR_F_LITERAL;
	} else {
		r = domain_scan(&p, end, allow, &flags, &trail);
	}
	if (r != ADDR_OK)
		return r;
	if (p != end)
		return ADDR_ESYNTAX;
	size_t domainlen = (size_t)(p - domain) - (trail ? 1 : 0);
	if (domainlen > ADDR_DOMAIN_MAX)
		return ADDR_ETOOLONG;
	if (trail)
		flags |= ADDR_F_TRAILDOT;

	memset(out, 0, sizeof *out);
	memcpy(out->local, local, locallen);
	out->locallen = locallen;
	for (size_t i = 0; i < domainlen; i++) {
		unsigned char c = domain[i];
		if (!(flags & ADDR_F_LITERAL) && c >= 'A' && c <= 'Z')
			c = (unsigned char)(c | 0x20);
		out->domain[i] = (char)c;
	}
	out->domainlen = domainlen;
	out->flags = flags;
	return ADDR_OK;
}

size_t addr_format(const struct addr *a, char *buf, size_t cap)
{
	size_t need;

	if (cap == 0)
		return 0;
	if (a->flags & (ADDR_F_NULL | ADDR_F_POSTMASTER))
		need = a->locallen;
	else
		need = a->locallen + 1 + a->domainlen;
	if (need + 1 > cap) {
		buf[0] = '\0';
		return 0;
	}
	memcpy(buf, a->local, a->locallen);
	if (need > a->locallen) {
		buf[a->locallen] = '@';
		memcpy(buf + a->locallen + 1, a->domain, a->domainlen);
	}
	buf[need] = '\0';
	return need;
}

int addr_domain_valid(const char *name, size_t len, int utf8)
{
	const unsigned char *p = (const unsigned char *)name, *end = p + len;
	unsigned flags = 0;
	int trail = 0;
	enum addr_result r;

	if (len == 0 || len > ADDR_DOMAIN_MAX + 1)
		return 0;
	if (*p == '[')
		r = literal_scan(&p, end);
	else
		r = domain_scan(&p, end, utf8 ? ADDR_ALLOW_UTF8 : 0, &flags, &trail);
	if (r != ADDR_OK || p != end)
		return 0;
	return len - (trail ? 1u : 0u) <= ADDR_DOMAIN_MAX;
}
