/* policy/mtasts.c -- MTA-STS records, policies and decisions; see mtasts.h */
#include "policy/mtasts.h"

#include <string.h>

static int is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* RFC 8461 3.1 sts-ext-name: (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / "."). */
static int ext_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > 32 || !is_alnum((unsigned char)s[0]))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!is_alnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
			return 0;
	return 1;
}

/* RFC 8461 3.1 sts-ext-value: 1*(%x21-3A / %x3C / %x3E-7E). */
static int ext_value_ok(const char *s, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x21 || c > 0x7e || c == ';' || c == '=')
			return 0;
	}
	return 1;
}

int mtasts_ext_ok(const char *name, size_t nlen, const char *value, size_t vlen)
{
	return ext_name_ok(name, nlen) && ext_value_ok(value, vlen);
}

/* One field "name=value" of the TXT record: 0, 1 when it is the id (*id
 * filled), -1 when it is bad. */
static int txt_field(const char *s, size_t n, char id[MTASTS_ID_MAX + 1])
{
	const char *eq = memchr(s, '=', n);
	size_t kn, vn;

	if (eq == NULL)
		return -1;
	kn = (size_t)(eq - s);
	vn = n - kn - 1;
	if (!mtasts_ext_ok(s, kn, eq + 1, vn))
		return -1;
	if (kn != 2 || memcmp(s, "id", 2) != 0)
		return 0;
	/* Any value is an extension's value, but an "id" that is not 1*32
	 * (ALPHA / DIGIT) would leave the record without an id: refuse it. */
	if (vn > MTASTS_ID_MAX)
		return -1;
	for (size_t i = 0; i < vn; i++)
		if (!is_alnum((unsigned char)eq[1 + i]))
			return -1;
	memcpy(id, eq + 1, vn);
	id[vn] = '\0';
	return 1;
}

int mtasts_txt_parse(const char *text, size_t len, char id[MTASTS_ID_MAX + 1])
{
	static const char ver[] = "v=STSv1";
	char got[MTASTS_ID_MAX + 1] = "";
	size_t i = sizeof ver - 1, nfields = 0;
	int ids = 0;

	id[0] = '\0';
	if (len < i || memcmp(text, ver, i) != 0)
		return -1;
	while (i < len) {
		size_t start;
		int r;

		/* field-delim: *WSP ";" *WSP; a trailing delimiter is allowed. */
		while (i < len && is_wsp(text[i]))
			i++;
		if (i == len || text[i] != ';')
			return -1;
		i++;
		while (i < len && is_wsp(text[i]))
			i++;
		if (i == len)
			break;
		start = i;
		while (i < len && text[i] != ';' && !is_wsp(text[i]))
			i++;
		if ((r = txt_field(text + start, i - start, got)) < 0)
			return -1;
		ids += r;
		nfields++;
	}
	if (ids != 1 || nfields == 0)
		return -1;
	memcpy(id, got, sizeof got);
	return 0;
}

/* Does the record start as an STS record does ("v=STSv1" then a field
 * delimiter or the end)?  RFC 8461 3.1 discards the others. */
static int is_sts_record(const struct dns_txt *r)
{
	static const char ver[] = "v=STSv1";
	size_t n = sizeof ver - 1;

	if (r->len < n || memcmp(r->text, ver, n) != 0)
		return 0;
	return r->len == n || r->text[n] == ';' || is_wsp(r->text[n]);
}

enum mtasts_txt mtasts_txt_select(const struct dns_txt_set *set, char id[MTASTS_ID_MAX + 1])
{
	const struct dns_txt *found = NULL;

	id[0] = '\0';
	for (size_t i = 0; i < set->n; i++) {
		if (!is_sts_record(&set->r[i]))
			continue;
		if (found != NULL)
			return MTASTS_TXT_INVALID;
		found = &set->r[i];
	}
	if (found == NULL)
		return MTASTS_TXT_NONE;
	if (found->truncated || mtasts_txt_parse(found->text, found->len, id) != 0)
		return MTASTS_TXT_INVALID;
	return MTASTS_TXT_FOUND;
}

/* ---- the policy file ---- */

/* An mx pattern: a host name, or "*." and one.  Kept lower-case, without
 * a trailing dot.  0 or -1. */
static int mx_pattern(const char *v, size_t n, char out[MTASTS_MX_LEN + 1])
{
	size_t skip = n >= 2 && v[0] == '*' && v[1] == '.' ? 2 : 0;

	if (n > skip && v[n - 1] == '.')
		n--;
	/* dns_name_ok() takes one trailing dot itself: a second is refused here. */
	if (n <= skip || n > MTASTS_MX_LEN || v[n - 1] == '.' || !dns_name_ok(v + skip, n - skip))
		return -1;
	for (size_t i = 0; i < n; i++)
		out[i] = lower(v[i]);
	out[n] = '\0';
	return 0;
}

static int word_eq(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/* What the parser has seen of the single-valued keys. */
struct seen {
	unsigned version : 1, mode : 1, max_age : 1;
};

/* One "key: value" line, blanks trimmed.  0, or -1 with *why. */
static int policy_line(const char *k, size_t kn, const char *v, size_t vn,
                       struct mtasts_policy *out, struct seen *seen, const char **why)
{
	if (word_eq(k, kn, "version")) {
		if (seen->version) { *why = "version given twice"; return -1; }
		seen->version = 1;
		if (!word_eq(v, vn, "STSv1")) { *why = "version is not STSv1"; return -1; }
	} else if (word_eq(k, kn, "mode")) {
		if (seen->mode) { *why = "mode given twice"; return -1; }
		seen->mode = 1;
		if (word_eq(v, vn, "enforce"))
			out->mode = MTASTS_MODE_ENFORCE;
		else if (word_eq(v, vn, "testing"))
			out->mode = MTASTS_MODE_TESTING;
		else if (word_eq(v, vn, "none"))
			out->mode = MTASTS_MODE_NONE;
		else { *why = "mode is not enforce, testing or none"; return -1; }
	} else if (word_eq(k, kn, "max_age")) {
		uint64_t a = 0;
		if (seen->max_age) { *why = "max_age given twice"; return -1; }
		seen->max_age = 1;
		if (vn == 0 || vn > 10) { *why = "max_age is not 1 to 10 digits"; return -1; }
		for (size_t i = 0; i < vn; i++) {
			if (v[i] < '0' || v[i] > '9') { *why = "max_age is not a number"; return -1; }
			a = a * 10 + (uint64_t)(v[i] - '0');
		}
		if (a > MTASTS_MAX_AGE_MAX) { *why = "max_age over 31557600"; return -1; }
		out->max_age = (uint32_t)a;
	} else if (word_eq(k, kn, "mx")) {
		char pat[MTASTS_MX_LEN + 1] = "";   /* zeroed: a policy's bytes are its text's */
		if (mx_pattern(v, vn, pat) != 0) { *why = "mx is not a host name pattern"; return -1; }
		if (out->nmx == MTASTS_MX_MAX)
			out->mx_dropped++;
		else
			memcpy(out->mx[out->nmx++], pat, sizeof pat);
	} else if (!ext_name_ok(k, kn)) {
		*why = "a key that is not a name";
		return -1;
	}
	/* Other keys: RFC 8461 3.2, extensions are ignored. */
	return 0;
}

/* Split one line (no line end) into key and value at the first ':',
 * blanks trimmed, and take it.  A blank line is skipped. */
static int policy_split(const char *s, size_t n, struct mtasts_policy *out, struct seen *seen,
                        const char **why)
{
	const char *colon;
	size_t a = 0, b, c, d = n;

	while (a < n && is_wsp(s[a]))
		a++;
	if (a == n)
		return 0;
	if ((colon = memchr(s, ':', n)) == NULL) {
		*why = "a line without ':'";
		return -1;
	}
	b = (size_t)(colon - s);
	c = b + 1;
	while (b > a && is_wsp(s[b - 1]))
		b--;
	while (c < d && is_wsp(s[c]))
		c++;
	while (d > c && is_wsp(s[d - 1]))
		d--;
	return policy_line(s + a, b - a, s + c, d - c, out, seen, why);
}

int mtasts_policy_parse(const char *buf, size_t len, struct mtasts_policy *out,
                        const char **why)
{
	struct seen seen = { 0, 0, 0 };
	size_t pos = 0;

	memset(out, 0, sizeof *out);
	*why = NULL;
	if (len > MTASTS_POLICY_MAX) {
		*why = "policy over 64 KiB";
		return -1;
	}
	while (pos < len) {
		size_t end = pos, next;
		while (end < len && buf[end] != '\n') {
			unsigned char ch = (unsigned char)buf[end];
			/* A CR only before LF; no NUL or other control byte but tab. */
			if ((ch < 0x20 && ch != '\t' && ch != '\r') || ch == 0x7f ||
			    (ch == '\r' && (end + 1 == len || buf[end + 1] != '\n'))) {
				*why = ch == '\r' ? "a bare CR" : "a control byte";
				goto bad;
			}
			end++;
		}
		next = end + 1;
		if (end > pos && buf[end - 1] == '\r')
			end--;
		if (policy_split(buf + pos, end - pos, out, &seen, why) != 0)
			goto bad;
		pos = next;
	}
	if (!seen.version)
		*why = "no version";
	else if (!seen.mode)
		*why = "no mode";
	else if (!seen.max_age)
		*why = "no max_age";
	else if (out->mode != MTASTS_MODE_NONE && out->nmx == 0)
		*why = "no mx";
	else
		return 0;
bad:
	memset(out, 0, sizeof *out);
	return -1;
}

const char *mtasts_mode_name(unsigned mode)
{
	switch (mode) {
	case MTASTS_MODE_NONE:    return "none";
	case MTASTS_MODE_TESTING: return "testing";
	case MTASTS_MODE_ENFORCE: return "enforce";
	default:                  return "?";
	}
}

/* Append s to buf[0..cap) at *n (counting what does not fit). */
static void put(char *buf, size_t cap, size_t *n, const char *s)
{
	size_t l = strlen(s);

	if (*n < cap) {
		size_t k = cap - *n < l ? cap - *n : l;
		memcpy(buf + *n, s, k);
	}
	*n += l;
}

size_t mtasts_policy_format(const struct mtasts_policy *p, char *buf, size_t cap)
{
	char age[11];
	size_t n = 0, k = sizeof age - 1;
	uint32_t a = p->max_age;

	age[k] = '\0';
	do {
		age[--k] = (char)('0' + a % 10);
		a /= 10;
	} while (a > 0);
	put(buf, cap, &n, "version: STSv1\nmode: ");
	put(buf, cap, &n, mtasts_mode_name(p->mode));
	put(buf, cap, &n, "\n");
	for (size_t i = 0; i < p->nmx && i < MTASTS_MX_MAX; i++) {
		put(buf, cap, &n, "mx: ");
		put(buf, cap, &n, p->mx[i]);
		put(buf, cap, &n, "\n");
	}
	put(buf, cap, &n, "max_age: ");
	put(buf, cap, &n, age + k);
	put(buf, cap, &n, "\n");
	if (cap > 0)
		buf[n < cap ? n : cap - 1] = '\0';
	return n;
}

/* ---- decisions ---- */

/* Case-insensitive equality of a[0..an) and b[0..bn). */
static int eq_ci(const char *a, size_t an, const char *b, size_t bn)
{
	if (an != bn)
		return 0;
	for (size_t i = 0; i < an; i++)
		if (lower(a[i]) != lower(b[i]))
			return 0;
	return 1;
}

int mtasts_mx_match(const char *pattern, const char *host)
{
	size_t pn = strlen(pattern), hn = strlen(host);
	const char *dot;

	if (hn > 0 && host[hn - 1] == '.')
		hn--;
	if (pn > 0 && pattern[pn - 1] == '.')
		pn--;
	if (hn == 0 || pn == 0)
		return 0;
	if (pn < 2 || pattern[0] != '*' || pattern[1] != '.')
		return eq_ci(pattern, pn, host, hn);
	/* "*.suffix": the host is exactly one non-empty label, a dot, then suffix. */
	dot = memchr(host, '.', hn);
	if (dot == NULL || dot == host)
		return 0;
	return eq_ci(pattern + 2, pn - 2, dot + 1, hn - (size_t)(dot + 1 - host));
}

int mtasts_mx_allowed(const struct mtasts_policy *p, const char *host)
{
	if (p->mode == MTASTS_MODE_NONE)
		return 1;
	for (size_t i = 0; i < p->nmx && i < MTASTS_MX_MAX; i++)
		if (mtasts_mx_match(p->mx[i], host))
			return 1;
	return 0;
}

enum mtasts_verdict mtasts_verdict(const struct mtasts_policy *p, enum mtasts_failure f)
{
	if (f == MTASTS_OK || p->mode == MTASTS_MODE_NONE)
		return MTASTS_DELIVER;
	return p->mode == MTASTS_MODE_ENFORCE ? MTASTS_DEFER : MTASTS_REPORT;
}

/* Times outside [0, 2^62) are not Unix times we meet; refusing them keeps
 * the sums below from overflowing. */
#define TIME_OK(t) ((t) >= 0 && (t) < ((int64_t)1 << 62))

int mtasts_cache_fresh(const struct mtasts_cached *c, int64_t now)
{
	if (c == NULL || c->policy.max_age > MTASTS_MAX_AGE_MAX || !TIME_OK(now) ||
	    !TIME_OK(c->fetched_at))
		return 0;
	/* A policy fetched "in the future" means the clock went back: trust
	 * it for a day's slack, not for ever. */
	if (c->fetched_at > now + 86400)
		return 0;
	return now < c->fetched_at + (int64_t)c->policy.max_age;
}

enum mtasts_action mtasts_plan(const struct mtasts_cached *c, enum mtasts_lookup txt,
                               const char *id, int64_t now)
{
	if (!mtasts_cache_fresh(c, now))
		return txt == MTASTS_LOOKUP_FOUND ? MTASTS_FETCH : MTASTS_NO_POLICY;
	if (txt != MTASTS_LOOKUP_FOUND)
		return MTASTS_USE_CACHED;
	if (id == NULL || strcmp(id, c->id) != 0)
		return MTASTS_FETCH;
	return now - c->fetched_at >= MTASTS_REFRESH ? MTASTS_FETCH : MTASTS_USE_CACHED;
}

enum mtasts_action mtasts_fetch_failed(const struct mtasts_cached *c, int64_t now)
{
	return mtasts_cache_fresh(c, now) ? MTASTS_USE_CACHED : MTASTS_NO_POLICY;
}
