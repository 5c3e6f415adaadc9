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
	return dns_query_build_flags(buf, cap, id, name, qtype, 0);
}

size_t dns_query_build_flags(unsigned char *buf, size_t cap, uint16_t id, const char *name,
                             uint16_t qtype, unsigned flags)
{
	size_t len = strlen(name), n = HDR;
	int dnssec = (flags & DNS_Q_DNSSEC) != 0;

	if (!dns_name_ok(name, len))
		return 0;
	if (name[len - 1] == '.')
		len--;
	if (cap < HDR + len + 2 + 4 + (dnssec ? DNS_OPT_LEN : 0))
		return 0;
	memset(buf, 0, HDR);
	buf[0] = (unsigned char)(id >> 8);
	buf[1] = (unsigned char)id;
	buf[2] = 0x01;            /* RD */
	if (dnssec)
		buf[3] = 0x20;    /* AD: "tell me whether you validated" (RFC 6840 5.7) */
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
	if (dnssec) {
		/* OPT (RFC 6891 6.1.2): root owner, our UDP size in the class,
		 * extended RCODE 0 and version 0, then the DO bit (RFC 3225),
		 * no options. */
		buf[11] = 1;      /* ARCOUNT */
		buf[n++] = 0;
		buf[n++] = 0;
		buf[n++] = DNS_T_OPT;
		buf[n++] = (unsigned char)(DNS_EDNS_UDP >> 8);
		buf[n++] = (unsigned char)(DNS_EDNS_UDP & 0xff);
		buf[n++] = 0;
		buf[n++] = 0;
		buf[n++] = 0x80;  /* DO */
		buf[n++] = 0;
		buf[n++] = 0;
		buf[n++] = 0;
	}
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

/* Keep one record of the type asked for; 0, or -1 if its RDATA is
 * malformed (the answer is then DNS_BAD). */
typedef int take_fn(void *arg, const unsigned char *msg, size_t len, const struct rr *rr);

/*
 * The part every answer shares: check that msg answers our question
 * (id, name, qtype), follow the CNAME chain from name, and hand each
 * record of type qtype owned by the chain's end to take().  Returns
 * DNS_OK when every record was read (the caller tells OK from NODATA by
 * what it kept), or the answer's status.  *ad is the AD bit, set for
 * every status but DNS_BAD and DNS_TRUNCATED.
 */
static enum dns_status walk_answer(const unsigned char *msg, size_t len, uint16_t id,
                                   const char *name, uint16_t qtype, unsigned *ad,
                                   take_fn *take, void *arg)
{
	char qname[DNS_NAME_MAX + 1], cur[DNS_NAME_MAX + 1];
	size_t pos = HDR, answers;
	unsigned rcode;
	int ok;

	*ad = 0;
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
	*ad = (msg[3] & 0x20) != 0;
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
			return DNS_BAD;
		if (rr.type != qtype || rr.class != CLASS_IN || !rr.owner_ok || !name_eq(rr.owner, cur))
			continue;
		if (take(arg, msg, len, &rr) != 0)
			return DNS_BAD;
	}
	return DNS_OK;
}

struct take_answer {
	struct dns_answer *out;
	uint16_t qtype;
};

static int take_answer(void *arg, const unsigned char *msg, size_t len, const struct rr *rr)
{
	struct take_answer *t = arg;

	return take_rr(msg, len, rr, t->qtype, t->out);
}

enum dns_status dns_response_parse(const unsigned char *msg, size_t len, uint16_t id,
                                   const char *name, uint16_t qtype, struct dns_answer *out)
{
	struct take_answer t = { out, qtype };
	unsigned ad;
	enum dns_status st;

	memset(out, 0, sizeof *out);
	st = walk_answer(msg, len, id, name, qtype, &ad, take_answer, &t);
	if (st == DNS_BAD) {
		memset(out, 0, sizeof *out);   /* nothing of a malformed answer is kept */
		return DNS_BAD;
	}
	out->ad = ad;
	if (st != DNS_OK)
		return st;
	return out->nmx + out->naddr > 0 ? DNS_OK : DNS_NODATA;
}

/* The least TTL of the records kept so far (n of them, this one included). */
static void least_ttl(uint32_t *ttl, size_t n, uint32_t t)
{
	if (n == 1 || t < *ttl)
		*ttl = t;
}

static int take_tlsa(void *arg, const unsigned char *msg, size_t len, const struct rr *rr)
{
	struct dns_tlsa_set *out = arg;
	struct dns_tlsa *r;

	(void)len;
	if (rr->rdlen < 3)
		return -1;
	if (out->n == DNS_TLSA_MAX) {
		out->dropped++;
		return 0;
	}
	r = &out->r[out->n++];
	r->usage = msg[rr->rdata];
	r->selector = msg[rr->rdata + 1];
	r->mtype = msg[rr->rdata + 2];
	r->len = (uint16_t)(rr->rdlen - 3);
	if (r->len > DNS_TLSA_DATA_MAX)
		r->toobig = 1;
	else
		memcpy(r->data, msg + rr->rdata + 3, r->len);
	least_ttl(&out->ttl, out->n, rr->ttl);
	return 0;
}

/*
 * A TLSA or TXT answer into out (size bytes, cleared first and again if
 * the answer is bad); *ad, *n and *dropped are out's fields.
 */
static enum dns_status parse_set(const unsigned char *msg, size_t len, uint16_t id,
                                 const char *name, uint16_t qtype, take_fn *take, void *out,
                                 size_t size, unsigned *ad, const size_t *n,
                                 const size_t *dropped)
{
	enum dns_status st;

	memset(out, 0, size);
	st = walk_answer(msg, len, id, name, qtype, ad, take, out);
	if (st == DNS_BAD) {
		memset(out, 0, size);
		return DNS_BAD;
	}
	if (st != DNS_OK)
		return st;
	return *n + *dropped > 0 ? DNS_OK : DNS_NODATA;
}

enum dns_status dns_tlsa_parse(const unsigned char *msg, size_t len, uint16_t id,
                               const char *name, struct dns_tlsa_set *out)
{
	return parse_set(msg, len, id, name, DNS_T_TLSA, take_tlsa, out, sizeof *out, &out->ad,
	                 &out->n, &out->dropped);
}

static int take_txt(void *arg, const unsigned char *msg, size_t len, const struct rr *rr)
{
	struct dns_txt_set *out = arg;
	struct dns_txt *r = NULL;
	size_t p = rr->rdata, end = rr->rdata + rr->rdlen;

	(void)len;
	if (rr->rdlen == 0)
		return -1;      /* RFC 1035 3.3.14: one or more character-strings */
	if (out->n < DNS_TXT_MAX)
		r = &out->r[out->n];
	while (p < end) {
		size_t l = msg[p++];
		if (l > end - p)
			return -1;
		if (r != NULL) {
			size_t room = DNS_TXT_LEN_MAX - r->len, take = l < room ? l : room;
			memcpy(r->text + r->len, msg + p, take);
			r->len = (uint16_t)(r->len + take);
			if (take < l)
				r->truncated = 1;
		}
		p += l;
	}
	if (r == NULL) {
		out->dropped++;
		return 0;
	}
	r->text[r->len] = '\0';
	out->n++;
	least_ttl(&out->ttl, out->n, rr->ttl);
	return 0;
}

enum dns_status dns_txt_parse(const unsigned char *msg, size_t len, uint16_t id,
                              const char *name, struct dns_txt_set *out)
{
	return parse_set(msg, len, id, name, DNS_T_TXT, take_txt, out, sizeof *out, &out->ad,
	                 &out->n, &out->dropped);
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
