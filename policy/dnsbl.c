/* policy/dnsbl.c -- DNS blocklist zones, names, scores and cache; see dnsbl.h */
#include <string.h>

#include "policy/text.h"

#include "addr.h"
#include "dnsbl.h"

#define WEIGHT_MAX 1000
#define TTL_MAX    86400u   /* a day: a listing can end, and we should notice */
#define PROBE      8        /* slots looked at for one key */

static char lower(char ch)
{
	return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

/* Decimal digits, at most max; returns the digits read (0 if none or over). */
static size_t parse_num(const char *s, size_t len, unsigned max, unsigned *out)
{
	unsigned v = 0;
	size_t k = 0;

	while (k < len && s[k] >= '0' && s[k] <= '9') {
		v = v * 10 + (unsigned)(s[k] - '0');
		if (v > max || ++k > 4)
			return 0;
	}
	*out = v;
	return k;
}

static void bit_set(uint8_t *bits, unsigned v)
{
	bits[v / 8] = (uint8_t)(bits[v / 8] | (1u << (v % 8)));
}

static int bit_get(const uint8_t *bits, unsigned v)
{
	return (bits[v / 8] >> (v % 8)) & 1;
}

/* One octet of a filter: "N", or "[" N or N..M, ';'-separated, "]". */
static int parse_octet(const char *s, size_t len, uint8_t bits[32])
{
	unsigned lo, hi;
	size_t k = 0, n;

	memset(bits, 0, 32);
	if (len > 0 && s[0] != '[') {
		if (parse_num(s, len, 255, &lo) != len)
			return -1;
		bit_set(bits, lo);
		return 0;
	}
	if (len < 3 || s[len - 1] != ']')
		return -1;
	s++;
	len -= 2;
	for (;;) {
		if ((n = parse_num(s + k, len - k, 255, &lo)) == 0)
			return -1;
		k += n;
		hi = lo;
		if (len - k >= 2 && s[k] == '.' && s[k + 1] == '.') {
			k += 2;
			if ((n = parse_num(s + k, len - k, 255, &hi)) == 0 || hi < lo)
				return -1;
			k += n;
		}
		for (unsigned v = lo; v <= hi; v++)
			bit_set(bits, v);
		if (k == len)
			return 0;
		if (s[k++] != ';')
			return -1;
	}
}

static int parse_filter(const char *s, size_t len, struct conf_dnsbl *out)
{
	size_t start = 0, k, depth = 0;
	unsigned octet = 0;

	for (k = 0; k <= len; k++) {
		if (k < len && s[k] == '[')
			depth++;
		else if (k < len && s[k] == ']')
			depth--;
		if (k < len && (s[k] != '.' || depth > 0))
			continue;
		/* a '.' outside brackets, or the end: one octet done */
		if (octet == 4 || parse_octet(s + start, k - start, out->octet[octet]) < 0)
			return -1;
		octet++;
		start = k + 1;
	}
	return octet == 4 && depth == 0 ? 0 : -1;
}

static int parse_weight(const char *s, size_t len, int *out)
{
	unsigned v;
	int neg = 0;

	if (len > 0 && (s[0] == '-' || s[0] == '+')) {
		neg = s[0] == '-';
		s++;
		len--;
	}
	if (len == 0 || parse_num(s, len, WEIGHT_MAX, &v) != len || v == 0)
		return -1;
	*out = neg ? -(int)v : (int)v;
	return 0;
}

int dnsbl_spec_parse(const char *s, size_t len, struct conf_dnsbl *out, const char **why)
{
	size_t zlen = 0, fstart = 0, flen = 0, wstart = 0;
	int has_filter = 0, has_weight = 0;

	memset(out, 0, sizeof *out);
	out->weight = 1;
	while (zlen < len && s[zlen] != '=' && s[zlen] != '*')
		zlen++;
	if (zlen < len && s[zlen] == '=') {
		has_filter = 1;
		fstart = zlen + 1;
		while (fstart + flen < len && s[fstart + flen] != '*')
			flen++;
		wstart = fstart + flen;
	} else {
		wstart = zlen;
	}
	if (wstart < len) {
		has_weight = 1;
		wstart++; /* the '*' */
	}
	/* the zone: a domain, one trailing dot dropped */
	size_t n = zlen;
	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0 || n > CONF_DNSBL_ZONE_MAX || s[0] == '[' || s[n - 1] == '.' ||
	    !addr_domain_valid(s, n, 0)) {
		*why = "bad zone";
		return -1;
	}
	for (size_t k = 0; k < n; k++)
		out->zone[k] = lower(s[k]);
	out->zone[n] = '\0';
	if (has_filter) {
		if (parse_filter(s + fstart, flen, out) < 0) {
			*why = "bad filter";
			return -1;
		}
		out->filtered = 1;
	}
	if (has_weight && parse_weight(s + wstart, len - wstart, &out->weight) < 0) {
		*why = "bad weight";
		return -1;
	}
	return 0;
}


static void put_octet(struct text *o, const uint8_t bits[32])
{
	unsigned v = 0, count = 0, first = 1;

	for (unsigned k = 0; k < 256; k++)
		count += (unsigned)bit_get(bits, k);
	if (count == 1) {
		while (!bit_get(bits, v))
			v++;
		text_put_i64(o, v);
		return;
	}
	text_put(o, "[", 1);
	while (v < 256) {
		unsigned lo;

		if (!bit_get(bits, v)) {
			v++;
			continue;
		}
		lo = v;
		while (v + 1 < 256 && bit_get(bits, v + 1))
			v++;
		if (!first)
			text_put(o, ";", 1);
		first = 0;
		text_put_i64(o, lo);
		if (v > lo) {
			text_put(o, "..", 2);
			text_put_i64(o, v);
		}
		v++;
	}
	text_put(o, "]", 1);
}

size_t dnsbl_spec_format(const struct conf_dnsbl *z, char *buf, size_t cap)
{
	struct text o = { buf, cap, 0 };

	text_put(&o, z->zone, strlen(z->zone));
	if (z->filtered) {
		text_put(&o, "=", 1);
		for (unsigned k = 0; k < 4; k++) {
			if (k > 0)
				text_put(&o, ".", 1);
			put_octet(&o, z->octet[k]);
		}
	}
	if (z->weight != 1) {
		text_put(&o, "*", 1);
		text_put_i64(&o, z->weight);
	}
	return text_end(&o);
}

size_t dnsbl_query_name(const struct ipaddr *ip, const char *zone, char *buf, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	struct text o = { buf, cap, 0 };

	if (ip->family == IP_V4) {
		for (int k = 3; k >= 0; k--) {
			text_put_i64(&o, ip->a[k]);
			text_put(&o, ".", 1);
		}
	} else {
		for (int k = 15; k >= 0; k--) {
			char nib[4] = { hex[ip->a[k] & 15], '.', hex[ip->a[k] >> 4], '.' };
			text_put(&o, nib, 4);
		}
	}
	text_put(&o, zone, strlen(zone));
	if (text_end(&o) >= cap) {
		if (cap > 0)
			buf[0] = '\0';
		return 0;
	}
	return o.len;
}

int dnsbl_answer_counts(const struct conf_dnsbl *z, const struct ipaddr *a)
{
	if (a->family != IP_V4)
		return 0;
	if (!z->filtered)
		return a->a[0] == 127 && !(a->a[1] == 255 && a->a[2] == 255);
	for (unsigned k = 0; k < 4; k++)
		if (!bit_get(z->octet[k], a->a[k]))
			return 0;
	return 1;
}

int dnsbl_score(const struct conf *c, uint32_t listed)
{
	int score = 0;

	for (size_t k = 0; k < c->ndnsbl && k < 32; k++)
		if (listed & (UINT32_C(1) << k))
			score += c->dnsbl[k].weight;
	return score;
}

int dnsbl_score_sure(const struct conf *c, uint32_t listed, uint32_t unanswered)
{
	int score = dnsbl_score(c, listed & ~unanswered);

	for (size_t k = 0; k < c->ndnsbl && k < 32; k++)
		if ((unanswered & (UINT32_C(1) << k)) && c->dnsbl[k].weight < 0)
			score += c->dnsbl[k].weight;
	return score;
}

int dnsbl_refused(const struct conf *c, int score)
{
	return c->ndnsbl > 0 && score >= (int)c->dnsbl_threshold;
}

char *dnsbl_names(const struct conf *c, uint32_t listed, char *buf, size_t cap)
{
	struct text o = { buf, cap, 0 };

	for (size_t k = 0; k < c->ndnsbl && k < 32; k++) {
		if (!(listed & (UINT32_C(1) << k)) || c->dnsbl[k].weight <= 0)
			continue;
		if (o.len > 0)
			text_put(&o, ", ", 2);
		text_put(&o, c->dnsbl[k].zone, strlen(c->dnsbl[k].zone));
	}
	if (text_end(&o) >= cap && cap >= 4)
		memcpy(buf + cap - 4, "...", 4);
	return buf;
}

/* ---- cache ---- */

void dnsbl_cache_init(struct dnsbl_cache *c, struct dnsbl_cache_slot *slots, size_t n)
{
	c->slot = slots;
	c->nslots = n;
	if (n > 0)
		memset(slots, 0, n * sizeof *slots);
}

static size_t cache_hash(unsigned zone, const struct ipaddr *addr)
{
	uint32_t h = 2166136261u;
	size_t n = addr->family == IP_V4 ? 4 : 16;

	h = (h ^ zone) * 16777619u;
	h = (h ^ addr->family) * 16777619u;
	for (size_t k = 0; k < n; k++)
		h = (h ^ addr->a[k]) * 16777619u;
	return h;
}

static int same_key(const struct dnsbl_cache_slot *s, unsigned zone, const struct ipaddr *addr)
{
	return s->expires != 0 && s->zone == zone && ip_equal(&s->addr, addr);
}

int dnsbl_cache_get(const struct dnsbl_cache *c, unsigned zone, const struct ipaddr *addr,
                    int64_t now_ms)
{
	if (c->nslots == 0)
		return -1;
	size_t h = cache_hash(zone, addr);
	for (size_t k = 0; k < PROBE && k < c->nslots; k++) {
		const struct dnsbl_cache_slot *s = &c->slot[(h + k) % c->nslots];

		if (same_key(s, zone, addr))
			return s->expires > now_ms ? s->listed : -1;
	}
	return -1;
}

void dnsbl_cache_put(struct dnsbl_cache *c, unsigned zone, const struct ipaddr *addr,
                     int listed, int64_t now_ms, uint32_t ttl)
{
	struct dnsbl_cache_slot *victim = NULL;

	if (c->nslots == 0 || ttl == 0)
		return;
	if (ttl > TTL_MAX)
		ttl = TTL_MAX;
	size_t h = cache_hash(zone, addr);
	for (size_t k = 0; k < PROBE && k < c->nslots; k++) {
		struct dnsbl_cache_slot *s = &c->slot[(h + k) % c->nslots];

		if (same_key(s, zone, addr)) {
			victim = s;
			break;
		}
		/* the first empty or expired slot, else the one that expires first */
		if (victim == NULL || (victim->expires > now_ms &&
		                       (s->expires <= now_ms || s->expires < victim->expires)))
			victim = s;
	}
	victim->expires = now_ms + (int64_t)ttl * 1000;
	if (victim->expires == 0)
		victim->expires = 1;
	victim->addr = *addr;
	victim->zone = (uint8_t)zone;
	victim->listed = listed ? 1 : 0;
}
