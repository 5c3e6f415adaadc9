/* policy/dns.c -- DNS queries and answers; see dns.h */
#include "policy/dns.h"

#include <string.h>

#include "policy/wire.h"

#define HDR 12
#define CLASS_IN 1
#define PTR_HOPS_MAX 64

static int host_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

int dns_name_ok(const char *name, size_t len)
{
	size_t label = 0;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (name[i] == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!host_char((unsigned char)name[i]) || ++label > 63)
			return 0;
	}
	return label > 0;
}

size_t dns_query_build(unsigned char *buf, size_t cap, uint16_t id, const char *name,
                       uint16_t qtype)
{
	size_t len = strlen(name), n = HDR;

	if (!dns_name_ok(name, len))
		return 0;
	if (name[len - 1] == '.')
		len--;
	if (cap < HDR + len + 2 + 4)
		return 0;
	memset(buf, 0, HDR);
	buf[0] = (unsigned char)(id >> 8);
	buf[1] = (unsigned char)id;
	buf[2] = 0x01;            /* RD */
	buf[5] = 1;               /* QDCOUNT */
	for (size_t start = 0; start < len; ) {
		const char *dot = memchr(name + start, '.', len - start);
		size_t l = dot ? (size_t)(dot - (name + start)) : len - start;
		buf[n++] = (unsigned char)l;
		memcpy(buf + n, name + start, l);
		n += l;
		start += l + 1;
	}
	buf[n++] = 0;
	buf[n++] = (unsigned char)(qtype >> 8);
	buf[n++] = (unsigned char)qtype;
	buf[n++] = 0;
	buf[n++] = CLASS_IN;
	return n;
}

/*
 * Read the name at *pos.  On success *pos is just past the name as it sits
 * there (past the first pointer if any), and out (if not NULL) holds the
 * lower-case text without a trailing dot ("" for the root) -- or, when a
 * label is not a host name, *usable is set to 0 and out is not to be used.
 * Returns 0, or -1 for a malformed name (out of bounds, bad pointer, too
 * long, reserved label type).
 */
static int read_name(const unsigned char *msg, size_t len, size_t *pos, char *out,
                     int *usable)
{
	size_t p = *pos, end = 0, wire = 0, n = 0, limit = *pos;
	int jumped = 0, hops = 0;

	*usable = 1;
	for (;;) {
		unsigned l;
		if (p >= len)
			return -1;
		l = msg[p];
		if ((l & 0xc0) == 0xc0) {
			size_t target;
			if (p + 1 >= len)
				return -1;
			target = (size_t)(l & 0x3f) << 8 | msg[p + 1];
			/* Strictly before the piece that holds this pointer: every
			 * jump goes back, so the walk ends. */
			if (target >= limit || ++hops > PTR_HOPS_MAX)
				return -1;
			if (!jumped)
				end = p + 2;
			jumped = 1;
			p = limit = target;
			continue;
		}
		if (l & 0xc0)
			return -1;      /* 0x40 and 0x80: extended/reserved label types */
		wire += l + 1;
		if (wire > 255)
			return -1;
		if (l == 0) {
			if (!jumped)
				end = p + 1;
			break;
		}
		if (p + 1 + l > len)
			return -1;
		for (unsigned i = 0; i < l; i++)
			if (!host_char(msg[p + 1 + i]))
				*usable = 0;
		if (out != NULL && *usable) {
			if (n > 0)
				out[n++] = '.';
			if (n + l > DNS_NAME_MAX) {
				*usable = 0;
			} else {
				for (unsigned i = 0; i < l; i++)
					out[n++] = lower((char)msg[p + 1 + i]);
			}
		}
		p += 1 + l;
	}
	if (out != NULL)
		out[*usable ? n : 0] = '\0';
	*pos = end;
	return 0;
}

/* Case-insensitive equality of two host names, one trailing dot ignored. */
static int name_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la > 0 && a[la - 1] == '.')
		la--;
	if (lb > 0 && b[lb - 1] == '.')
		lb--;
	if (la != lb)
		return 0;
	for (size_t i = 0; i < la; i++)
		if (lower(a[i]) != lower(b[i]))
			return 0;
	return 1;
}

struct rr {
	char     owner[DNS_NAME_MAX + 1];
	int      owner_ok;
	uint16_t type, class;
	uint32_t ttl;
	size_t   rdata, rdlen;   /* offset and length of the RDATA */
};

/* Read the resource record at *pos (bounds-checked). */
static int read_rr(const unsigned char *msg, size_t len, size_t *pos, struct rr *rr)
{
	size_t p = *pos;

	if (read_name(msg, len, &p, rr->owner, &rr->owner_ok) != 0)
		return -1;
	if (len - p < 10)
		return -1;
	rr->type = wire_be16(msg + p);
	rr->class = wire_be16(msg + p + 2);
	rr->ttl = wire_be32(msg + p + 4);
	rr->rdlen = wire_be16(msg + p + 8);
	rr->rdata = p + 10;
	if (rr->rdlen > len - rr->rdata)
		return -1;
	*pos = rr->rdata + rr->rdlen;
	return 0;
}

/* Keep one record of the type asked for; -1 if its RDATA is malformed. */
static int take_rr(const unsigned char *msg, size_t len, const struct rr *rr, uint16_t qtype,
                   struct dns_answer *out)
{
	if (qtype == DNS_T_MX) {
		struct dns_mx mx;
		size_t p = rr->rdata + 2;
		int ok;
		if (rr->rdlen < 3)
			return -1;
		memset(&mx, 0, sizeof mx);
		mx.pref = wire_be16(msg + rr->rdata);
		/* The exchange must end exactly where the RDATA does. */
		if (read_name(msg, rr->rdata + rr->rdlen, &p, mx.host, &ok) != 0 ||
		    p != rr->rdata + rr->rdlen)
			return -1;
		(void)len;
		if (!ok || out->nmx == DNS_MX_MAX)
			return 0;
		out->mx[out->nmx++] = mx;
	} else {
		size_t want = qtype == DNS_T_A ? 4 : 16;
		struct ipaddr ip;
		if (rr->rdlen != want)
			return -1;
		if (out->naddr == DNS_ADDR_MAX)
			return 0;
		memset(&ip, 0, sizeof ip);
		ip.family = qtype == DNS_T_A ? IP_V4 : IP_V6;
		memcpy(ip.a, msg + rr->rdata, want);
		out->addr[out->naddr++] = ip;
	}
	if (out->nmx + out->naddr == 1 || rr->ttl < out->ttl)
		out->ttl = rr->ttl;
	return 0;
}

enum dns_status dns_response_parse(const unsigned char *msg, size_t len, uint16_t id,
                                   const char *name, uint16_t qtype, struct dns_answer *out)
{
	char qname[DNS_NAME_MAX + 1], cur[DNS_NAME_MAX + 1];
	size_t pos = HDR, answers;
	unsigned rcode;
	int ok;

	memset(out, 0, sizeof *out);
	if (len < HDR || wire_be16(msg) != id)
		return DNS_BAD;
	if (!(msg[2] & 0x80) || (msg[2] & 0x78) != 0)    /* QR, opcode QUERY */
		return DNS_BAD;
	if (wire_be16(msg + 4) != 1)
		return DNS_BAD;
	if (read_name(msg, len, &pos, qname, &ok) != 0 || !ok || !name_eq(qname, name))
		return DNS_BAD;
	if (len - pos < 4 || wire_be16(msg + pos) != qtype || wire_be16(msg + pos + 2) != CLASS_IN)
		return DNS_BAD;
	pos += 4;
	if (msg[2] & 0x02)
		return DNS_TRUNCATED;
	rcode = msg[3] & 0x0f;
	if (rcode == 3)
		return DNS_NXDOMAIN;
	if (rcode != 0)
		return DNS_TEMPFAIL;
	answers = wire_be16(msg + 6);

	/* The CNAME chain from name: a pass over the answers per hop. */
	memcpy(cur, qname, sizeof cur);
	for (int hop = 0; hop < DNS_CNAME_MAX; hop++) {
		size_t p = pos;
		int moved = 0;
		for (size_t i = 0; i < answers; i++) {
			struct rr rr;
			char target[DNS_NAME_MAX + 1];
			size_t t;
			int tok;
			if (read_rr(msg, len, &p, &rr) != 0)
				return DNS_BAD;
			if (rr.type != DNS_T_CNAME || rr.class != CLASS_IN || !rr.owner_ok ||
			    !name_eq(rr.owner, cur))
				continue;
			t = rr.rdata;
			if (read_name(msg, rr.rdata + rr.rdlen, &t, target, &tok) != 0 ||
			    t != rr.rdata + rr.rdlen)
				return DNS_BAD;
			if (!tok || target[0] == '\0')
				return DNS_NODATA;   /* a chain into a name we will not follow */
			memcpy(cur, target, sizeof cur);
			moved = 1;
			break;
		}
		if (!moved || qtype == DNS_T_CNAME)
			break;
	}
	/* The records of our type owned by the end of the chain. */
	for (size_t i = 0, p = pos; i < answers; i++) {
		struct rr rr;
		if (read_rr(msg, len, &p, &rr) != 0)
			goto bad;
		if (rr.type != qtype || rr.class != CLASS_IN || !rr.owner_ok || !name_eq(rr.owner, cur))
			continue;
		if (take_rr(msg, len, &rr, qtype, out) != 0)
			goto bad;
	}
	return out->nmx + out->naddr > 0 ? DNS_OK : DNS_NODATA;
bad:
	memset(out, 0, sizeof *out);   /* nothing of a malformed answer is kept */
	return DNS_BAD;
}

/* splitmix64: a small, good generator for the shuffle. */
static uint64_t mix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

void dns_mx_sort(struct dns_answer *a, uint64_t seed)
{
	size_t n = 0;

	/* Drop duplicate exchanges (keep the better preference). */
	for (size_t i = 0; i < a->nmx; i++) {
		size_t j;
		for (j = 0; j < n; j++) {
			if (strcmp(a->mx[j].host, a->mx[i].host) == 0) {
				if (a->mx[i].pref < a->mx[j].pref)
					a->mx[j].pref = a->mx[i].pref;
				break;
			}
		}
		if (j == n)
			a->mx[n++] = a->mx[i];
	}
	a->nmx = n;
	/* Shuffle all, then a stable sort by preference keeps the shuffle
	 * within each preference. */
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)(mix(&seed) % i);
		struct dns_mx t = a->mx[i - 1];
		a->mx[i - 1] = a->mx[j];
		a->mx[j] = t;
	}
	for (size_t i = 1; i < n; i++) {
		struct dns_mx t = a->mx[i];
		size_t j = i;
		while (j > 0 && a->mx[j - 1].pref > t.pref) {
			a->mx[j] = a->mx[j - 1];
			j--;
		}
		a->mx[j] = t;
	}
}

int dns_mx_is_null(const struct dns_answer *a)
{
	for (size_t i = 0; i < a->nmx; i++)
		if (a->mx[i].host[0] == '\0')
			return 1;
	return 0;
}

size_t dns_resolv_conf(const char *text, size_t len, struct ipaddr *out, size_t max)
{
	size_t n = 0, pos = 0;

	while (pos < len && n < max) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - text) : len, k = pos, w;
		static const char kw[] = "nameserver";

		while (k < end && (text[k] == ' ' || text[k] == '\t'))
			k++;
		if (end - k > sizeof kw && memcmp(text + k, kw, sizeof kw - 1) == 0 &&
		    (text[k + sizeof kw - 1] == ' ' || text[k + sizeof kw - 1] == '\t')) {
			k += sizeof kw - 1;
			while (k < end && (text[k] == ' ' || text[k] == '\t'))
				k++;
			w = k;
			while (w < end && text[w] != ' ' && text[w] != '\t' && text[w] != '\r' &&
			       text[w] != '#' && text[w] != ';')
				w++;
			if (w > k && ip_parse(text + k, w - k, &out[n]) == 0)
				n++;
		}
		pos = end + 1;
	}
	return n;
}
