/* policy/tlsrpt.c -- TLS reporting: aggregation, JSON, the TXT record; see tlsrpt.h */
#include "policy/tlsrpt.h"

#include <string.h>

#include "policy/mtasts.h"

static const char *const result_names[TLSRPT_RESULT_COUNT] = {
	"starttls-not-supported", "certificate-host-mismatch", "certificate-expired",
	"certificate-not-trusted", "validation-failure", "tlsa-invalid", "dnssec-invalid",
	"dane-required", "sts-policy-fetch-error", "sts-policy-invalid", "sts-webpki-invalid",
};

const char *tlsrpt_result_name(unsigned result)
{
	return result < TLSRPT_RESULT_COUNT ? result_names[result] : "?";
}

const char *tlsrpt_policy_type_name(unsigned type)
{
	switch (type) {
	case TLSRPT_POLICY_STS:  return "sts";
	case TLSRPT_POLICY_TLSA: return "tlsa";
	case TLSRPT_POLICY_NONE: return "no-policy-found";
	default:                 return "?";
	}
}

int64_t tlsrpt_day(int64_t t)
{
	int64_t d = t / 86400;

	if (t % 86400 < 0)
		d--;
	return d * 86400;
}

int tlsrpt_init(struct tlsrpt_report *r, const char *domain, int64_t t)
{
	size_t n = strlen(domain);

	memset(r, 0, sizeof *r);
	if (n > 0 && domain[n - 1] == '.')
		n--;
	if (n == 0 || !dns_name_ok(domain, n) || domain[n - 1] == '.')
		return -1;
	for (size_t i = 0; i < n; i++)
		r->domain[i] = domain[i] >= 'A' && domain[i] <= 'Z' ? (char)(domain[i] + 32) : domain[i];
	r->day = tlsrpt_day(t);
	return 0;
}

/* Copy src into dst[0..cap), cut short at a UTF-8 character boundary:
 * a cut never leaves half a sequence behind. */
static void cut_copy(char *dst, size_t cap, const char *src)
{
	size_t n = src ? strlen(src) : 0;

	if (n >= cap) {
		n = cap - 1;
		while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
			n--;
	}
	if (n > 0)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

/* The policy entry for pol: found, made, or NULL past the cap. */
static struct tlsrpt_policy *policy_for(struct tlsrpt_report *r, const struct tlsrpt_policy_in *pol)
{
	static struct tlsrpt_policy want;   /* one thread; too big for a stack */

	memset(&want, 0, sizeof want);
	want.type = (uint8_t)pol->type;
	cut_copy(want.strings, sizeof want.strings, pol->strings);
	cut_copy(want.mx_hosts, sizeof want.mx_hosts, pol->mx_hosts);
	for (size_t i = 0; i < r->npolicies; i++) {
		struct tlsrpt_policy *p = &r->policies[i];
		if (p->type == want.type && strcmp(p->strings, want.strings) == 0 &&
		    strcmp(p->mx_hosts, want.mx_hosts) == 0)
			return p;
	}
	if (r->npolicies == TLSRPT_POLICIES_MAX)
		return NULL;
	r->policies[r->npolicies] = want;
	return &r->policies[r->npolicies++];
}

/* The failure-details entry for f in p: found, made, or NULL past the cap. */
static struct tlsrpt_detail *detail_for(struct tlsrpt_policy *p, const struct tlsrpt_failure_in *f)
{
	struct tlsrpt_detail want;

	memset(&want, 0, sizeof want);
	want.result = (uint8_t)f->result;
	cut_copy(want.sending_ip, sizeof want.sending_ip, f->sending_ip);
	cut_copy(want.receiving_ip, sizeof want.receiving_ip, f->receiving_ip);
	cut_copy(want.receiving_mx, sizeof want.receiving_mx, f->receiving_mx);
	cut_copy(want.receiving_helo, sizeof want.receiving_helo, f->receiving_helo);
	cut_copy(want.reason, sizeof want.reason, f->reason);
	for (size_t i = 0; i < p->ndetails; i++) {
		struct tlsrpt_detail *d = &p->details[i];
		if (d->result == want.result && strcmp(d->sending_ip, want.sending_ip) == 0 &&
		    strcmp(d->receiving_ip, want.receiving_ip) == 0 &&
		    strcmp(d->receiving_mx, want.receiving_mx) == 0 &&
		    strcmp(d->receiving_helo, want.receiving_helo) == 0 &&
		    strcmp(d->reason, want.reason) == 0)
			return d;
	}
	if (p->ndetails == TLSRPT_DETAILS_MAX)
		return NULL;
	p->details[p->ndetails] = want;
	return &p->details[p->ndetails++];
}

int tlsrpt_add(struct tlsrpt_report *r, const struct tlsrpt_policy_in *pol,
               const struct tlsrpt_failure_in *f, int64_t t)
{
	struct tlsrpt_policy *p;
	struct tlsrpt_detail *d;

	if (tlsrpt_day(t) != r->day || pol->type > TLSRPT_POLICY_NONE ||
	    (f != NULL && f->result >= TLSRPT_RESULT_COUNT))
		return -1;
	if ((p = policy_for(r, pol)) == NULL) {
		r->sessions_dropped++;
		return 1;
	}
	if (f == NULL) {
		p->successes++;
		return 0;
	}
	p->failures++;
	if ((d = detail_for(p, f)) == NULL) {
		p->details_dropped++;
		return 1;
	}
	d->count++;
	return 0;
}

/* ---- JSON ---- */

struct out {
	char  *buf;
	size_t cap, n;
};

static void put_n(struct out *o, const char *s, size_t l)
{
	if (o->n < o->cap) {
		size_t k = o->cap - o->n < l ? o->cap - o->n : l;
		memcpy(o->buf + o->n, s, k);
	}
	o->n += l;
}

static void put(struct out *o, const char *s)
{
	put_n(o, s, strlen(s));
}

static void put_u64(struct out *o, uint64_t v)
{
	char d[21];
	size_t k = sizeof d;

	do {
		d[--k] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	put_n(o, d + k, sizeof d - k);
}

/* The length of the valid UTF-8 sequence at s[0..n), or 0 (RFC 3629:
 * no overlong forms, no surrogates, nothing past U+10FFFF). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

/* s[0..n) as a JSON string, quotes included. */
static void put_str_n(struct out *o, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;

	put(o, "\"");
	for (size_t i = 0; i < n; ) {
		size_t l = utf8_len(u + i, n - i);
		if (l == 0) {
			put(o, "\\ufffd");
			i++;
		} else if (u[i] == '"' || u[i] == '\\') {
			char e[2] = { '\\', (char)u[i] };
			put_n(o, e, 2);
			i++;
		} else if (u[i] < 0x20 || u[i] == 0x7f) {
			char e[6] = { '\\', 'u', '0', '0', hex[u[i] >> 4], hex[u[i] & 15] };
			put_n(o, e, 6);
			i++;
		} else {
			put_n(o, s + i, l);
			i += l;
		}
	}
	put(o, "\"");
}

static void put_str(struct out *o, const char *s)
{
	put_str_n(o, s ? s : "", s ? strlen(s) : 0);
}

/* "key": "value", */
static void put_field(struct out *o, const char *key, const char *value, int comma)
{
	put_str(o, key);
	put(o, ": ");
	put_str(o, value);
	if (comma)
		put(o, ", ");
}

/* The '\n'-separated lines of s as a JSON array (empty lines left out). */
static void put_lines(struct out *o, const char *s)
{
	int first = 1;

	put(o, "[");
	while (*s) {
		const char *nl = strchr(s, '\n');
		size_t l = nl ? (size_t)(nl - s) : strlen(s);
		if (l > 0) {
			put(o, first ? "" : ", ");
			put_str_n(o, s, l);
			first = 0;
		}
		s += l + (nl ? 1 : 0);
	}
	put(o, "]");
}

/* "YYYY-MM-DDTHH:MM:SSZ" for Unix time t (proleptic Gregorian). */
static void put_datetime(struct out *o, int64_t t)
{
	int64_t z = tlsrpt_day(t) / 86400 + 719468, secs = t - tlsrpt_day(t);
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	int64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
	int64_t y = yoe + era * 400 + (m <= 2);
	const int64_t parts[6] = { y, m, d, secs / 3600, secs / 60 % 60, secs % 60 };
	static const char sep[6] = { '-', '-', 'T', ':', ':', 'Z' };
	char b[40];
	size_t n = 0;

	for (int i = 0; i < 6; i++) {
		int64_t v = parts[i];
		int w = i == 0 ? 4 : 2;
		char dig[20];
		int k = 0;
		if (v < 0)
			v = 0;   /* years before 0: not a report's */
		do {
			dig[k++] = (char)('0' + v % 10);
			v /= 10;
		} while (v > 0);
		while (k < w)
			dig[k++] = '0';
		while (k > 0)
			b[n++] = dig[--k];
		b[n++] = sep[i];
	}
	put(o, "\"");
	put_n(o, b, n);
	put(o, "\"");
}

static void put_detail(struct out *o, const struct tlsrpt_detail *d)
{
	put(o, "{");
	put_field(o, "result-type", tlsrpt_result_name(d->result), 1);
	if (d->sending_ip[0])
		put_field(o, "sending-mta-ip", d->sending_ip, 1);
	if (d->receiving_mx[0])
		put_field(o, "receiving-mx-hostname", d->receiving_mx, 1);
	if (d->receiving_helo[0])
		put_field(o, "receiving-mx-helo", d->receiving_helo, 1);
	if (d->receiving_ip[0])
		put_field(o, "receiving-ip", d->receiving_ip, 1);
	if (d->reason[0])
		put_field(o, "failure-reason-code", d->reason, 1);
	put(o, "\"failed-session-count\": ");
	put_u64(o, d->count);
	put(o, "}");
}

static void put_policy(struct out *o, const struct tlsrpt_report *r, const struct tlsrpt_policy *p)
{
	put(o, "{\"policy\": {");
	put_field(o, "policy-type", tlsrpt_policy_type_name(p->type), 1);
	put(o, "\"policy-string\": ");
	put_lines(o, p->strings);
	put(o, ", ");
	put_field(o, "policy-domain", r->domain, 0);
	if (p->mx_hosts[0]) {
		put(o, ", \"mx-host\": ");
		put_lines(o, p->mx_hosts);
	}
	put(o, "}, \"summary\": {\"total-successful-session-count\": ");
	put_u64(o, p->successes);
	put(o, ", \"total-failure-session-count\": ");
	put_u64(o, p->failures);
	put(o, "}");
	if (p->ndetails > 0) {
		put(o, ", \"failure-details\": [");
		for (size_t i = 0; i < p->ndetails && i < TLSRPT_DETAILS_MAX; i++) {
			put(o, i ? ", " : "");
			put_detail(o, &p->details[i]);
		}
		put(o, "]");
	}
	put(o, "}");
}

size_t tlsrpt_json(const struct tlsrpt_report *r, const struct tlsrpt_meta *m, char *buf,
                   size_t cap)
{
	struct out o = { buf, cap, 0 };

	put(&o, "{");
	put_field(&o, "organization-name", m->organization, 1);
	put(&o, "\"date-range\": {\"start-datetime\": ");
	put_datetime(&o, r->day);
	put(&o, ", \"end-datetime\": ");
	put_datetime(&o, r->day + 86399);
	put(&o, "}, ");
	put_field(&o, "contact-info", m->contact, 1);
	put_field(&o, "report-id", m->report_id, 1);
	put(&o, "\"policies\": [");
	for (size_t i = 0; i < r->npolicies && i < TLSRPT_POLICIES_MAX; i++) {
		put(&o, i ? ", " : "");
		put_policy(&o, r, &r->policies[i]);
	}
	put(&o, "]}\n");
	if (cap > 0)
		buf[o.n < cap ? o.n : cap - 1] = '\0';
	return o.n;
}

/* ---- the _smtp._tls TXT record ---- */

static int is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static int prefix_ci(const char *s, size_t n, const char *lit)
{
	size_t l = strlen(lit);

	if (n < l)
		return 0;
	for (size_t i = 0; i < l; i++) {
		char c = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + 32) : s[i];
		if (c != lit[i])
			return 0;
	}
	return 1;
}

/* The rua value v[0..n): URIs separated by *WSP "," *WSP.  0 or -1. */
static int rua_value(const char *v, size_t n, struct tlsrpt_rua *out)
{
	size_t i = 0;

	for (;;) {
		size_t s = i;
		while (i < n && v[i] != ',' && !is_wsp(v[i])) {
			unsigned char c = (unsigned char)v[i];
			if (c < 0x21 || c > 0x7e || c == ';')
				return -1;
			i++;
		}
		if (i == s)
			return -1;
		if (!prefix_ci(v + s, i - s, "mailto:") && !prefix_ci(v + s, i - s, "https:"))
			;   /* another scheme: not one we could send to */
		else if (out->n == TLSRPT_RUA_MAX || i - s > TLSRPT_URI_MAX)
			out->dropped++;
		else {
			memcpy(out->uri[out->n], v + s, i - s);
			out->uri[out->n++][i - s] = '\0';
		}
		while (i < n && is_wsp(v[i]))
			i++;
		if (i == n)
			return 0;
		if (v[i++] != ',')
			return -1;
		while (i < n && is_wsp(v[i]))
			i++;
	}
}

int tlsrpt_txt_parse(const char *text, size_t len, struct tlsrpt_rua *out)
{
	static const char ver[] = "v=TLSRPTv1";
	size_t i = sizeof ver - 1;
	int ruas = 0;

	memset(out, 0, sizeof *out);
	if (len < i || memcmp(text, ver, i) != 0)
		return -1;
	while (i < len) {
		size_t s, e, eq;
		while (i < len && is_wsp(text[i]))
			i++;
		if (i == len || text[i] != ';')
			goto bad;
		i++;
		while (i < len && is_wsp(text[i]))
			i++;
		if (i == len)
			break;
		/* A field runs to the next ';' (a rua value may hold blanks
		 * around its commas); trailing blanks belong to the delimiter. */
		s = i;
		while (i < len && text[i] != ';')
			i++;
		e = i;
		while (e > s && is_wsp(text[e - 1]))
			e--;
		for (eq = s; eq < e && text[eq] != '='; eq++)
			;
		if (eq == e)
			goto bad;
		if (eq - s == 3 && memcmp(text + s, "rua", 3) == 0) {
			if (ruas++ || rua_value(text + eq + 1, e - eq - 1, out) != 0)
				goto bad;
		} else if (!mtasts_ext_ok(text + s, eq - s, text + eq + 1, e - eq - 1)) {
			goto bad;
		}
		i = e;
	}
	if (ruas == 1)
		return 0;
bad:
	memset(out, 0, sizeof *out);
	return -1;
}

int tlsrpt_txt_select(const struct dns_txt_set *set, struct tlsrpt_rua *out)
{
	static const char ver[] = "v=TLSRPTv1";
	const size_t vn = sizeof ver - 1;
	const struct dns_txt *found = NULL;

	memset(out, 0, sizeof *out);
	for (size_t i = 0; i < set->n && i < DNS_TXT_MAX; i++) {
		const struct dns_txt *r = &set->r[i];
		if (r->len < vn || memcmp(r->text, ver, vn) != 0 ||
		    (r->len > vn && r->text[vn] != ';' && !is_wsp(r->text[vn])))
			continue;
		if (found != NULL)
			return -1;
		found = r;
	}
	if (found == NULL || found->truncated)
		return -1;
	return tlsrpt_txt_parse(found->text, found->len, out);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int tlsrpt_mailto(const char *uri, char *addr, size_t cap)
{
	size_t n = 0, at = 0, ats = 0;
	const char *p;

	if (cap == 0)
		return -1;
	addr[0] = '\0';
	if (!prefix_ci(uri, strlen(uri), "mailto:"))
		return -1;
	for (p = uri + 7; *p && *p != '?'; p++) {
		int c = (unsigned char)*p;
		if (c == '%') {
			int h = hexval(p[1]), l = h < 0 ? -1 : hexval(p[2]);
			if (l < 0)
				return -1;
			c = h << 4 | l;
			p += 2;
		}
		if (c <= 0x20 || c >= 0x7f || c == ',' || n + 1 >= cap)
			return -1;
		if (c == '@') {
			ats++;
			at = n;
		}
		addr[n++] = (char)c;
	}
	addr[n] = '\0';
	if (ats != 1 || at == 0 || !dns_name_ok(addr + at + 1, n - at - 1)) {
		addr[0] = '\0';
		return -1;
	}
	return 0;
}
