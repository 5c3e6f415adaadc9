/* policy/idna.c -- UTF-8 domain names to A-labels (RFC 3492); see idna.h */
#include "policy/idna.h"

#include <stdint.h>

#include "policy/dns.h"

#define BASE 36u
#define TMIN 1u
#define TMAX 26u
#define SKEW 38u
#define DAMP 700u
#define INITIAL_BIAS 72u
#define INITIAL_N 128u
#define LABEL_CP_MAX 63    /* code points in one label: its A-label is longer */

/* One code point from UTF-8 at s[0..len); its length in *n, 0 if bad
 * (overlong, surrogate, beyond U+10FFFF, truncated). */
static uint32_t utf8_next(const unsigned char *s, size_t len, size_t *n)
{
	uint32_t cp;
	size_t k;

	*n = 0;
	if (s[0] < 0x80) {
		*n = 1;
		return s[0];
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf)      { k = 2; cp = s[0] & 0x1fu; }
	else if (s[0] >= 0xe0 && s[0] <= 0xef) { k = 3; cp = s[0] & 0x0fu; }
	else if (s[0] >= 0xf0 && s[0] <= 0xf4) { k = 4; cp = s[0] & 0x07u; }
	else return 0;
	if (k > len)
		return 0;
	for (size_t i = 1; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	if ((k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*n = k;
	return cp;
}

static char digit(uint32_t d)
{
	return (char)(d < 26 ? 'a' + d : '0' + (d - 26));
}

static uint32_t adapt(uint32_t delta, uint32_t npoints, int first)
{
	uint32_t k = 0;

	delta = first ? delta / DAMP : delta / 2;
	delta += delta / npoints;
	while (delta > ((BASE - TMIN) * TMAX) / 2) {
		delta /= BASE - TMIN;
		k += BASE;
	}
	return k + (BASE - TMIN + 1) * delta / (delta + SKEW);
}

/* Punycode of cp[0..n) appended at out[*o..cap); 0 or -1. */
static int punycode(const uint32_t *cp, size_t n, char *out, size_t *o, size_t cap)
{
	uint32_t cpn = INITIAL_N, delta = 0, bias = INITIAL_BIAS;
	size_t h, b = 0;

	for (size_t i = 0; i < n; i++) {
		if (cp[i] < 0x80) {
			if (*o >= cap)
				return -1;
			char c = (char)cp[i];
			out[(*o)++] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
			b++;
		}
	}
	if (b > 0) {
		if (*o >= cap)
			return -1;
		out[(*o)++] = '-';
	}
	for (h = b; h < n; ) {
		uint32_t m = UINT32_MAX;
		for (size_t i = 0; i < n; i++)
			if (cp[i] >= cpn && cp[i] < m)
				m = cp[i];
		if ((m - cpn) > (UINT32_MAX - delta) / (uint32_t)(h + 1))
			return -1;
		delta += (m - cpn) * (uint32_t)(h + 1);
		cpn = m;
		for (size_t i = 0; i < n; i++) {
			if (cp[i] < cpn && ++delta == 0)
				return -1;
			if (cp[i] != cpn)
				continue;
			uint32_t q = delta;
			for (uint32_t k = BASE; ; k += BASE) {
				uint32_t t = k <= bias ? TMIN : k >= bias + TMAX ? TMAX : k - bias;
				if (q < t)
					break;
				if (*o >= cap)
					return -1;
				out[(*o)++] = digit(t + (q - t) % (BASE - t));
				q = (q - t) / (BASE - t);
			}
			if (*o >= cap)
				return -1;
			out[(*o)++] = digit(q);
			bias = adapt(delta, (uint32_t)(h + 1), h == b);
			delta = 0;
			h++;
		}
		delta++;
		cpn++;
	}
	return 0;
}

size_t idna_to_ascii(const char *name, size_t len, char *out, size_t cap)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t pos = 0, o = 0;

	if (cap == 0)
		return 0;
	if (len > 0 && name[len - 1] == '.')
		len--;
	while (pos < len) {
		uint32_t cp[LABEL_CP_MAX + 1];
		size_t n = 0, start = o;
		int ascii = 1;

		while (pos < len && s[pos] != '.') {
			size_t k;
			uint32_t c = utf8_next(s + pos, len - pos, &k);
			if (k == 0 || n == LABEL_CP_MAX)
				return 0;
			cp[n++] = c;
			ascii &= c < 0x80;
			pos += k;
		}
		if (n == 0)
			return 0;
		if (start > 0) {
			if (o + 1 >= cap)
				return 0;
			out[o++] = '.';
			start = o;
		}
		if (ascii) {
			for (size_t i = 0; i < n; i++) {
				char c = (char)cp[i];
				if (o + 1 >= cap)
					return 0;
				out[o++] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
			}
		} else {
			if (o + 5 >= cap)
				return 0;
			out[o++] = 'x'; out[o++] = 'n'; out[o++] = '-'; out[o++] = '-';
			if (punycode(cp, n, out, &o, cap - 1) != 0)
				return 0;
		}
		if (o - start > 63)
			return 0;
		if (pos < len)
			pos++;            /* the dot */
		if (pos == len && s[len - 1] == '.')
			return 0;         /* an empty last label ("a..") */
	}
	out[o] = '\0';
	return o > 0 && dns_name_ok(out, o) ? o : 0;
}
