/* policy/dsnparam.c -- RFC 3461 parameters and xtext; see dsnparam.h */
#include "policy/dsnparam.h"

#include <string.h>
#include <strings.h>

#include "policy/text.h"

static int word_is(const char *s, size_t n, const char *w)
{
	return strlen(w) == n && strncasecmp(s, w, n) == 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int upper_hex(char c)
{
	return c >= 'a' && c <= 'f' ? -1 : hexval(c);
}

/* ---- xtext (RFC 3461 4) ----
 *
 * xchar is any octet from '!' to '~' but '+' and '='; "+" and two
 * upper-case hex digits stand for any octet. */

size_t dsnparam_xtext_decode(const char *v, size_t n, char *out, size_t cap)
{
	struct text o = { out, cap, 0 };

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		char b;

		if (c == '+') {
			int h, l;
			/* RFC 3461: two upper-case hex digits. */
			if (n - i < 3 || (h = upper_hex(v[i + 1])) < 0 || (l = upper_hex(v[i + 2])) < 0)
				return (size_t)-1;
			b = (char)(h << 4 | l);
			i += 2;
		} else if (c < '!' || c > '~' || c == '=') {
			return (size_t)-1;
		} else {
			b = (char)c;
		}
		text_put(&o, &b, 1);
	}
	return text_end(&o);
}

/* Decoded, every octet printable ASCII (graphic or space). */
static int xtext_printable(const char *v, size_t n)
{
	char buf[DSN_ORCPT_MAX + 1];
	size_t len;

	if (n > DSN_ORCPT_MAX)
		return 0;
	len = dsnparam_xtext_decode(v, n, buf, sizeof buf);
	if (len == (size_t)-1)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			return 0;
	return 1;
}

/* ---- RFC 6533's utf-8-addr-xtext ---- */

/* QCHAR: printable ASCII but SP, '+', '=' and '\'. */
static int qchar(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e && c != '+' && c != '=' && c != '\\';
}

/* A code point \x{HEX} may stand for: what QCHAR leaves out, but NUL,
 * and every non-ASCII scalar value. */
static int embeddable(uint32_t cp)
{
	if (cp < 0x80)
		return cp != 0 && !qchar((unsigned char)cp);
	return cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff);
}

/* "\x{HEX}" at v[0..n): its length and *cp, or 0.  HEX is the shortest
 * form of at least two digits, as RFC 6533's HEXPOINT allows. */
static size_t embedded(const char *v, size_t n, uint32_t *cp)
{
	size_t i = 3, digits;
	uint32_t x = 0;

	if (n < 6 || v[0] != '\\' || v[1] != 'x' || v[2] != '{')
		return 0;
	while (i < n && hexval(v[i]) >= 0 && i - 3 < 7) {
		x = x << 4 | (uint32_t)hexval(v[i]);
		i++;
	}
	digits = i - 3;
	if (i >= n || v[i] != '}' || digits < 2 || digits > 6)
		return 0;
	if (!embeddable(x) || (digits > 2 && (x >> (4 * (digits - 1))) == 0))
		return 0;            /* a leading zero past two digits */
	*cp = x;
	return i + 1;
}

static int utf8_xtext_ok(const char *v, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; ) {
		uint32_t cp;
		size_t k;

		if (qchar((unsigned char)v[i])) {
			i++;
		} else if ((k = embedded(v + i, n - i, &cp)) > 0) {
			i += k;
		} else {
			return 0;
		}
	}
	return 1;
}

/* ---- the parameters ---- */

int dsnparam_notify_valid(unsigned bits)
{
	return bits == 0 || bits == DSN_NOTIFY_NEVER ||
	       (bits & ~(DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY)) == 0;
}

int dsnparam_notify_parse(const char *v, size_t n, uint8_t *bits)
{
	unsigned b = 0;
	size_t i = 0;

	if (v == NULL || n == 0)
		return -1;
	for (;;) {
		size_t start = i;
		while (i < n && v[i] != ',')
			i++;
		if (word_is(v + start, i - start, "SUCCESS"))
			b |= DSN_NOTIFY_SUCCESS;
		else if (word_is(v + start, i - start, "FAILURE"))
			b |= DSN_NOTIFY_FAILURE;
		else if (word_is(v + start, i - start, "DELAY"))
			b |= DSN_NOTIFY_DELAY;
		else if (word_is(v + start, i - start, "NEVER"))
			b |= DSN_NOTIFY_NEVER;
		else
			return -1;           /* an unknown word, or an empty one */
		if (i == n)
			break;
		i++;                     /* the comma */
	}
	if ((b & DSN_NOTIFY_NEVER) && b != DSN_NOTIFY_NEVER)
		return -2;
	*bits = (uint8_t)b;
	return 0;
}

size_t dsnparam_notify_text(unsigned bits, char out[32])
{
	struct text o = { out, 32, 0 };

	if (bits & DSN_NOTIFY_NEVER)
		text_puts(&o, "NEVER");
	if (bits & DSN_NOTIFY_SUCCESS)
		text_puts(&o, "SUCCESS");
	if (bits & DSN_NOTIFY_FAILURE)
		text_puts(&o, o.len ? ",FAILURE" : "FAILURE");
	if (bits & DSN_NOTIFY_DELAY)
		text_puts(&o, o.len ? ",DELAY" : "DELAY");
	return text_end(&o);
}

int dsnparam_envid_ok(const char *v, size_t n)
{
	return v != NULL && n >= 1 && n <= DSN_ENVID_MAX && xtext_printable(v, n);
}

/* RFC 822 atom: printable ASCII but specials. */
static int atom_ok(const char *v, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c <= 0x20 || c >= 0x7f || strchr("()<>@,;:\\\".[]", c) != NULL)
			return 0;
	}
	return 1;
}

int dsnparam_orcpt_ok(const char *v, size_t n)
{
	const char *semi;
	size_t tl;

	if (v == NULL || n == 0 || n > DSN_ORCPT_MAX || (semi = memchr(v, ';', n)) == NULL)
		return 0;
	tl = (size_t)(semi - v);
	if (!atom_ok(v, tl) || tl + 1 == n)
		return 0;
	if (word_is(v, tl, "utf-8"))
		return utf8_xtext_ok(semi + 1, n - tl - 1);
	return xtext_printable(semi + 1, n - tl - 1);
}

int dsnparam_mail(struct dsnparam_mail *m, const char *key, size_t keylen,
                  const char *val, size_t vallen)
{
	if (word_is(key, keylen, "RET")) {
		if (m->ret != DSN_RET_NONE)
			return DSNP_RET_TWICE;
		if (val != NULL && word_is(val, vallen, "FULL"))
			m->ret = DSN_RET_FULL;
		else if (val != NULL && word_is(val, vallen, "HDRS"))
			m->ret = DSN_RET_HDRS;
		else
			return DSNP_RET_BAD;
		return DSNP_OK;
	}
	if (word_is(key, keylen, "ENVID")) {
		if (m->envid != NULL)
			return DSNP_ENVID_TWICE;
		if (!dsnparam_envid_ok(val, vallen))
			return DSNP_ENVID_BAD;
		m->envid = val;
		m->envidlen = vallen;
		return DSNP_OK;
	}
	return DSNP_OTHER;
}

int dsnparam_rcpt(struct dsnparam_rcpt *r, const char *key, size_t keylen,
                  const char *val, size_t vallen)
{
	if (word_is(key, keylen, "NOTIFY")) {
		uint8_t bits = 0;
		int rc;

		if (r->notify != 0)
			return DSNP_NOTIFY_TWICE;
		if ((rc = dsnparam_notify_parse(val, vallen, &bits)) != 0)
			return rc == -2 ? DSNP_NOTIFY_CONFLICT : DSNP_NOTIFY_BAD;
		r->notify = bits;
		return DSNP_OK;
	}
	if (word_is(key, keylen, "ORCPT")) {
		if (r->orcpt != NULL)
			return DSNP_ORCPT_TWICE;
		if (!dsnparam_orcpt_ok(val, vallen))
			return DSNP_ORCPT_BAD;
		r->orcpt = val;
		r->orcptlen = vallen;
		return DSNP_OK;
	}
	return DSNP_OTHER;
}

const char *dsnparam_reply(int result)
{
	switch (result) {
	case DSNP_NOTIFY_BAD:      return "501 5.5.4 Bad NOTIFY parameter";
	case DSNP_NOTIFY_CONFLICT: return "501 5.5.4 Bad NOTIFY parameter: NEVER with another value";
	case DSNP_ORCPT_BAD:       return "501 5.5.4 Bad ORCPT parameter";
	case DSNP_RET_BAD:         return "501 5.5.4 Bad RET parameter";
	case DSNP_ENVID_BAD:       return "501 5.5.4 Bad ENVID parameter";
	case DSNP_NOTIFY_TWICE:    return "501 5.5.4 Duplicate NOTIFY parameter";
	case DSNP_ORCPT_TWICE:     return "501 5.5.4 Duplicate ORCPT parameter";
	case DSNP_RET_TWICE:       return "501 5.5.4 Duplicate RET parameter";
	case DSNP_ENVID_TWICE:     return "501 5.5.4 Duplicate ENVID parameter";
	default:                   return NULL;
	}
}

/* ---- for reports ---- */

/* One code point as UTF-8. */
static void put_utf8(struct text *o, uint32_t cp)
{
	char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | cp >> 6);
		b[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | cp >> 12);
		b[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (char)(0xf0 | cp >> 18);
		b[1] = (char)(0x80 | (cp >> 12 & 0x3f));
		b[2] = (char)(0x80 | (cp >> 6 & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	text_put(o, b, n);
}

static void put_embedded(struct text *o, uint32_t cp)
{
	static const char hex[] = "0123456789ABCDEF";
	char b[12];
	size_t n = 0, digits = cp > 0xfffff ? 6 : cp > 0xffff ? 5 : cp > 0xfff ? 4 : cp > 0xff ? 3 : 2;

	b[n++] = '\\';
	b[n++] = 'x';
	b[n++] = '{';
	for (size_t d = digits; d > 0; d--)
		b[n++] = hex[cp >> (4 * (d - 1)) & 0xf];
	b[n++] = '}';
	text_put(o, b, n);
}

size_t dsnparam_orcpt_text(const char *v, size_t n, int unicode, char *out, size_t cap)
{
	struct text o = { out, cap, 0 };
	const char *semi = memchr(v, ';', n);
	size_t tl = semi ? (size_t)(semi - v) : n;

	text_put(&o, v, tl);
	text_puts(&o, ";");
	if (semi == NULL)
		return text_end(&o);
	if (word_is(v, tl, "utf-8")) {
		for (size_t i = tl + 1; i < n; ) {
			uint32_t cp;
			size_t k = embedded(v + i, n - i, &cp);
			if (k > 0 && unicode && cp >= 0x80)
				put_utf8(&o, cp);
			else if (k > 0)
				text_put(&o, v + i, k);
			else
				text_put(&o, v + i, (k = 1));
			i += k;
		}
	} else {
		char buf[DSN_ORCPT_MAX + 1];
		size_t len = dsnparam_xtext_decode(semi + 1, n - tl - 1, buf, sizeof buf);
		if (len != (size_t)-1)
			text_put(&o, buf, len < sizeof buf ? len : sizeof buf - 1);
	}
	return text_end(&o);
}

/* The next UTF-8 character of s: its length (1 for a byte that starts
 * none) and *cp (0xFFFD for such a byte, an overlong form, a surrogate). */
static size_t utf8_next(const unsigned char *s, uint32_t *cp)
{
	size_t n = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc0 ? 2 : 1;
	uint32_t x = n == 4 ? s[0] & 0x07u : n == 3 ? s[0] & 0x0fu : s[0] & 0x1fu;
	static const uint32_t least[5] = { 0, 0, 0x80, 0x800, 0x10000 };

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] < 0xc2 || s[0] > 0xf4) {
		*cp = 0xfffd;
		return 1;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			*cp = 0xfffd;
			return 1;
		}
		x = x << 6 | (s[i] & 0x3fu);
	}
	if (x < least[n] || x > 0x10ffff || (x >= 0xd800 && x <= 0xdfff)) {
		*cp = 0xfffd;
		return 1;
	}
	*cp = x;
	return n;
}

size_t dsnparam_utf8_addr(const char *addr, int unicode, char *out, size_t cap)
{
	struct text o = { out, cap, 0 };
	const unsigned char *s = (const unsigned char *)addr;

	for (size_t i = 0; s[i] != '\0'; ) {
		uint32_t cp;
		size_t k = utf8_next(s + i, &cp);

		if (cp < 0x80 && qchar((unsigned char)cp))
			text_put(&o, (const char *)s + i, 1);
		else if (cp >= 0x80 && cp != 0xfffd && unicode)
			text_put(&o, (const char *)s + i, k);
		else if (cp == 0)
			put_embedded(&o, 0xfffd);
		else
			put_embedded(&o, cp);
		i += k;
	}
	return text_end(&o);
}
