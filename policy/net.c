/* policy/net.c -- IP addresses and CIDR networks; see net.h */
#include <string.h>

#include "net.h"

static int is_digit(char ch) { return ch >= '0' && ch <= '9'; }

static int hex_value(char ch)
{
	if (ch >= '0' && ch <= '9') return ch - '0';
	if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
	return -1;
}

/* Strict dotted quad: four decimal octets 0..255, and no leading zero,
 * because inet_aton() and many resolvers read "010" as octal 8: a config
 * or a peer must not mean one network to us and another to them. */
static int ipv4_parse(const char *s, size_t len, uint8_t out[4])
{
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		if (part > 0) {
			if (i >= len || s[i] != '.')
				return -1;
			i++;
		}
		size_t start = i;
		unsigned v = 0;
		while (i < len && is_digit(s[i]) && i - start < 3)
			v = v * 10 + (unsigned)(s[i++] - '0');
		if (i == start || v > 255)
			return -1;
		if (s[start] == '0' && i - start > 1)
			return -1;
		out[part] = (uint8_t)v;
	}
	return i == len ? 0 : -1;
}

/* RFC 4291 2.2: groups of 1-4 hex digits, at most one "::" standing for
 * one or more zero groups, and optionally a dotted quad as the last 32 bits. */
static int ipv6_parse(const char *s, size_t len, uint8_t out[16])
{
	uint8_t b[16];
	size_t nb = 0;      /* bytes filled in b */
	size_t gap = 0;     /* where "::" stood, in bytes */
	int compressed = 0; /* a "::" was seen */
	size_t i = 0;

	if (len >= 2 && s[0] == ':' && s[1] == ':') {
		compressed = 1;
		i = 2;
	} else if (len == 0 || s[0] == ':') {
		return -1;
	}
	while (i < len) {
		size_t end = i;
		int dotted = 0;
		while (end < len && s[end] != ':') {
			if (s[end] == '.')
				dotted = 1;
			end++;
		}
		if (dotted) {
			/* The IPv4 tail must end the text. */
			if (end != len || nb > 12 || ipv4_parse(s + i, end - i, b + nb) != 0)
				return -1;
			nb += 4;
			i = end;
			break;
		}
		if (end == i || end - i > 4 || nb > 14)
			return -1;
		unsigned v = 0;
		for (size_t k = i; k < end; k++) {
			int h = hex_value(s[k]);
			if (h < 0)
				return -1;
			v = v << 4 | (unsigned)h;
		}
		b[nb++] = (uint8_t)(v >> 8);
		b[nb++] = (uint8_t)v;
		i = end;
		if (i == len)
			break;
		i++; /* the ':' */
		if (i < len && s[i] == ':') {
			if (compressed)
				return -1;
			compressed = 1;
			gap = nb;
			i++;
		} else if (i == len) {
			return -1; /* a single trailing ':' */
		}
	}
	if (!compressed) {
		if (nb != 16)
			return -1;
		memcpy(out, b, 16);
		return 0;
	}
	if (nb > 14)
		return -1; /* "::" must stand for at least one group */
	memset(out, 0, 16);
	memcpy(out, b, gap);
	memcpy(out + 16 - (nb - gap), b + gap, nb - gap);
	return 0;
}

int ip_parse(const char *s, size_t len, struct ipaddr *out)
{
	struct ipaddr ip;

	memset(&ip, 0, sizeof ip);
	if (memchr(s, ':', len) != NULL) {
		ip.family = IP_V6;
		if (ipv6_parse(s, len, ip.a) != 0)
			return -1;
	} else {
		ip.family = IP_V4;
		if (ipv4_parse(s, len, ip.a) != 0)
			return -1;
	}
	*out = ip;
	return 0;
}

static const uint8_t v4mapped_prefix[12] = { 0,0,0,0, 0,0,0,0, 0,0,0xff,0xff };

static int is_v4mapped(const struct ipaddr *ip)
{
	return ip->family == IP_V6 && memcmp(ip->a, v4mapped_prefix, 12) == 0;
}

void ip_unmap(struct ipaddr *ip)
{
	if (!is_v4mapped(ip))
		return;
	ip->family = IP_V4;
	memmove(ip->a, ip->a + 12, 4);
	memset(ip->a + 4, 0, 12);
}

/* A tiny append-only text buffer: it counts what it could not store, so
 * the callers return the length they need, like snprintf(). */
struct text {
	char  *buf;
	size_t cap;
	size_t len;
};

static void text_ch(struct text *t, char ch)
{
	if (t->len + 1 < t->cap)
		t->buf[t->len] = ch;
	t->len++;
}

static void text_uint(struct text *t, unsigned v, unsigned base)
{
	char digits[12];
	size_t n = 0;

	do {
		digits[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v > 0);
	while (n > 0)
		text_ch(t, digits[--n]);
}

static size_t text_end(struct text *t)
{
	if (t->cap > 0)
		t->buf[t->len < t->cap ? t->len : t->cap - 1] = '\0';
	return t->len;
}

static void format_v4(struct text *t, const uint8_t *a)
{
	for (int k = 0; k < 4; k++) {
		if (k > 0)
			text_ch(t, '.');
		text_uint(t, a[k], 10);
	}
}

/* RFC 5952: lower-case hex without leading zeros; the longest run of two or
 * more zero groups (the first of equal runs) becomes "::"; an IPv4-mapped
 * address ends in a dotted quad (section 5). */
static void format_v6(struct text *t, const uint8_t *a)
{
	unsigned g[8];
	int best = -1, bestlen = 1;
	int ngroups = memcmp(a, v4mapped_prefix, 12) == 0 ? 6 : 8;

	for (int k = 0; k < 8; k++)
		g[k] = (unsigned)a[2 * k] << 8 | a[2 * k + 1];
	for (int k = 0; k < ngroups; ) {
		int run = 0;
		while (k + run < ngroups && g[k + run] == 0)
			run++;
		if (run > bestlen) {
			best = k;
			bestlen = run;
		}
		k += run > 0 ? run : 1;
	}
	for (int k = 0; k < ngroups; k++) {
		if (k == best) {
			text_ch(t, ':');
			text_ch(t, ':');
			k += bestlen - 1;
			continue;
		}
		if (k > 0 && k != best + bestlen)
			text_ch(t, ':');
		text_uint(t, g[k], 16);
	}
	if (ngroups == 6) {
		if (best + bestlen != 6)
			text_ch(t, ':');
		format_v4(t, a + 12);
	}
}

static void format_ip(struct text *t, const struct ipaddr *ip)
{
	if (ip->family == IP_V4)
		format_v4(t, ip->a);
	else
		format_v6(t, ip->a);
}

size_t ip_format(const struct ipaddr *ip, char *buf, size_t cap)
{
	struct text t = { buf, cap, 0 };

	format_ip(&t, ip);
	return text_end(&t);
}

static size_t ip_bytes(const struct ipaddr *ip)
{
	return ip->family == IP_V4 ? 4 : 16;
}

int ip_equal(const struct ipaddr *a, const struct ipaddr *b)
{
	return a->family == b->family && memcmp(a->a, b->a, ip_bytes(a)) == 0;
}

/* Clear the bits after prefix; returns 1 if any was set. */
static int clear_host_bits(uint8_t *a, size_t nbytes, unsigned prefix)
{
	int was_set = 0;

	for (size_t k = 0; k < nbytes; k++) {
		unsigned keep = prefix >= 8 * (k + 1) ? 8 : prefix > 8 * k ? prefix - 8 * (unsigned)k : 0;
		uint8_t mask = (uint8_t)(0xff00u >> keep);
		if (a[k] & ~mask)
			was_set = 1;
		a[k] &= mask;
	}
	return was_set;
}

int cidr_parse_masked(const char *s, size_t len, struct cidr *out)
{
	const char *slash = memchr(s, '/', len);
	size_t alen = slash ? (size_t)(slash - s) : len;
	struct cidr c;
	unsigned prefix, max;

	memset(&c, 0, sizeof c);
	if (ip_parse(s, alen, &c.net) != 0)
		return -1;
	max = c.net.family == IP_V4 ? 32 : 128;
	prefix = max;
	if (slash != NULL) {
		const char *p = slash + 1, *end = s + len;
		if (p == end || end - p > 3 || (p[0] == '0' && end - p > 1))
			return -1;
		prefix = 0;
		for (; p < end; p++) {
			if (!is_digit(*p))
				return -1;
			prefix = prefix * 10 + (unsigned)(*p - '0');
		}
		if (prefix > max)
			return -1;
	}
	/* A relay network written as IPv4-mapped IPv6 would never match, as
	 * clients are unmapped: store it as the IPv4 network it means. */
	if (prefix >= 96 && is_v4mapped(&c.net)) {
		ip_unmap(&c.net);
		prefix -= 96;
	}
	c.prefix = (uint8_t)prefix;
	int cleared = clear_host_bits(c.net.a, ip_bytes(&c.net), prefix);
	*out = c;
	return cleared;
}

int cidr_parse(const char *s, size_t len, struct cidr *out)
{
	struct cidr c;

	if (cidr_parse_masked(s, len, &c) != 0)
		return -1;
	*out = c;
	return 0;
}

int cidr_match(const struct cidr *c, const struct ipaddr *ip)
{
	struct ipaddr masked = *ip;

	if (ip->family != c->net.family)
		return 0;
	clear_host_bits(masked.a, ip_bytes(&masked), c->prefix);
	return ip_equal(&masked, &c->net);
}

size_t cidr_format(const struct cidr *c, char *buf, size_t cap)
{
	struct text t = { buf, cap, 0 };

	format_ip(&t, &c->net);
	text_ch(&t, '/');
	text_uint(&t, c->prefix, 10);
	return text_end(&t);
}

/* Port 1..65535, decimal, no sign and no leading zero. */
static int port_parse(const char *s, size_t len, uint16_t *port)
{
	unsigned v = 0;

	if (len == 0 || len > 5 || s[0] == '0')
		return -1;
	for (size_t k = 0; k < len; k++) {
		if (!is_digit(s[k]))
			return -1;
		v = v * 10 + (unsigned)(s[k] - '0');
	}
	if (v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

int hostport_parse(const char *s, size_t len, struct ipaddr *ip, uint16_t *port)
{
	struct ipaddr a;
	const char *host, *colon;
	size_t hlen;

	memset(&a, 0, sizeof a);
	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);
		if (close == NULL || close + 1 == s + len || close[1] != ':')
			return -1;
		host = s + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
		/* Brackets are for IPv6 only, as in RFC 3986 and RFC 5321. */
		if (ip_parse(host, hlen, &a) != 0 || a.family != IP_V6)
			return -1;
	} else {
		colon = memchr(s, ':', len);
		if (colon == NULL)
			return -1;
		host = s;
		hlen = (size_t)(colon - s);
		if (hlen == 1 && host[0] == '*')
			a.family = IP_V4;
		else if (ip_parse(host, hlen, &a) != 0 || a.family != IP_V4)
			return -1;
	}
	if (port_parse(colon + 1, (size_t)(s + len - colon - 1), port) != 0)
		return -1;
	*ip = a;
	return 0;
}
