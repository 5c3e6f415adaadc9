/*
 * tests/unit/test_dns.c -- DNS queries and answers (policy/dns.c).
 *
 * Answers are built byte by byte here, good ones and hostile ones:
 * compression loops, pointers forward, into themselves and out of the
 * message, lengths past the end, answers to another question.  Every
 * answer is parsed from a heap buffer of exactly its length (ASan sees a
 * read past it), then at every truncation and with every byte flipped,
 * which must never read out of bounds.  The same for TLSA and TXT
 * answers (the DANE and MTA-STS lookups), with the AD bit and the EDNS0
 * query that asks for it.
 */
#include <stdlib.h>

#include "policy/dns.h"
#include "tests/unit/t.h"

struct msg {
	unsigned char b[8192];
	size_t n;
};

static void u8(struct msg *m, unsigned v)   { m->b[m->n++] = (unsigned char)v; }
static void u16(struct msg *m, unsigned v)  { u8(m, v >> 8 & 0xff); u8(m, v & 0xff); }
static void u32(struct msg *m, uint32_t v)  { u16(m, v >> 16); u16(m, v & 0xffff); }
static void raw(struct msg *m, const void *p, size_t n) { memcpy(m->b + m->n, p, n); m->n += n; }

/* A name as labels, uncompressed. */
static void name(struct msg *m, const char *s)
{
	while (*s) {
		const char *dot = strchr(s, '.');
		size_t l = dot ? (size_t)(dot - s) : strlen(s);
		u8(m, (unsigned)l);
		raw(m, s, l);
		s += l + (dot ? 1 : 0);
	}
	u8(m, 0);
}

static void ptr(struct msg *m, unsigned off) { u16(m, 0xc000 | off); }

/* Header and question; flags default: QR RD RA, RCODE rcode. */
static void head(struct msg *m, uint16_t id, unsigned flags, unsigned an, const char *q,
                 uint16_t qtype)
{
	m->n = 0;
	u16(m, id);
	u16(m, flags);
	u16(m, 1);
	u16(m, an);
	u16(m, 0);
	u16(m, 0);
	name(m, q);
	u16(m, qtype);
	u16(m, 1);
}

#define QNAME_OFF 12
#define OK_FLAGS 0x8180

static void rr_head(struct msg *m, uint16_t type, uint32_t ttl, unsigned rdlen)
{
	u16(m, type);
	u16(m, 1);
	u32(m, ttl);
	u16(m, rdlen);
}

static enum dns_status parse(const struct msg *m, uint16_t id, const char *q, uint16_t qtype,
                             struct dns_answer *a)
{
	unsigned char *b = malloc(m->n ? m->n : 1);
	enum dns_status st;

	memcpy(b, m->b, m->n);
	st = dns_response_parse(b, m->n, id, q, qtype, a);
	free(b);
	return st;
}

/* Every truncation and every single-byte change of a message must parse
 * without reading out of bounds; a truncation never yields more records. */
static void torture(const struct msg *m, uint16_t id, const char *q, uint16_t qtype)
{
	static struct dns_answer a;
	struct msg t;

	for (size_t k = 0; k < m->n; k++) {
		t = *m;
		t.n = k;
		(void)parse(&t, id, q, qtype, &a);
	}
	for (size_t k = 0; k < m->n; k++) {
		static const unsigned char vals[] = { 0x00, 0xff, 0xc0, 0x3f, 0x40, 0x01 };
		for (size_t v = 0; v < sizeof vals; v++) {
			t = *m;
			t.b[k] = vals[v];
			(void)parse(&t, id, q, qtype, &a);
		}
	}
}

static void test_name_ok(void)
{
	CHECK(dns_name_ok("example.com", 11));
	CHECK(dns_name_ok("example.com.", 12));
	CHECK(dns_name_ok("_dmarc.a-b.c0", 13));
	CHECK(!dns_name_ok("", 0));
	CHECK(!dns_name_ok(".", 1));
	CHECK(!dns_name_ok("a..b", 4));
	CHECK(!dns_name_ok(".a", 2));
	CHECK(!dns_name_ok("a b", 3));
	CHECK(!dns_name_ok("a\xc3\xa9", 3));
	CHECK(!dns_name_ok("[1.2.3.4]", 9));
	char l64[70];
	memset(l64, 'a', 64);
	CHECK(!dns_name_ok(l64, 64));
	CHECK(dns_name_ok(l64, 63));
	char big[300];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = i % 2 ? '.' : 'a';
	CHECK(dns_name_ok(big, 253));
	CHECK(!dns_name_ok(big, 255));
}

static void test_query_build(void)
{
	unsigned char buf[DNS_QUERY_MAX];
	static const unsigned char want[] = {
		0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
		7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0,
		0, 15, 0, 1 };
	size_t n = dns_query_build(buf, sizeof buf, 0x1234, "example.com", DNS_T_MX);

	CHECK(n == sizeof want && memcmp(buf, want, n) == 0);
	CHECK(dns_query_build(buf, sizeof buf, 0x1234, "example.com.", DNS_T_MX) == sizeof want);
	CHECK(memcmp(buf, want, sizeof want) == 0);
	CHECK(dns_query_build(buf, sizeof want - 1, 0x1234, "example.com", DNS_T_MX) == 0);
	CHECK(dns_query_build(buf, sizeof buf, 1, "bad name", DNS_T_A) == 0);
	CHECK(dns_query_build(buf, sizeof buf, 1, "", DNS_T_A) == 0);
}

static void test_mx_answer(void)
{
	struct msg m;
	struct dns_answer a;

	head(&m, 7, OK_FLAGS, 3, "example.com", DNS_T_MX);
	/* example.com MX 20 mx2.example.com (compressed to the question) */
	ptr(&m, QNAME_OFF);
	rr_head(&m, DNS_T_MX, 300, 2 + 4 + 2);
	u16(&m, 20);
	u8(&m, 3); raw(&m, "mx2", 3); ptr(&m, QNAME_OFF);
	/* example.com MX 10 MX1.Example.COM (uncompressed, upper case) */
	ptr(&m, QNAME_OFF);
	rr_head(&m, DNS_T_MX, 60, 2 + 17);
	u16(&m, 10);
	name(&m, "MX1.Example.COM");
	/* a record for another owner: ignored */
	name(&m, "other.com");
	rr_head(&m, DNS_T_MX, 60, 2 + 1);
	u16(&m, 5);
	u8(&m, 0);

	CHECK(parse(&m, 7, "example.com", DNS_T_MX, &a) == DNS_OK);
	CHECK(a.nmx == 2);
	CHECK(a.mx[0].pref == 20 && strcmp(a.mx[0].host, "mx2.example.com") == 0);
	CHECK(a.mx[1].pref == 10 && strcmp(a.mx[1].host, "mx1.example.com") == 0);
	CHECK(a.ttl == 60);
	CHECK(!dns_mx_is_null(&a));
	CHECK(parse(&m, 7, "EXAMPLE.com.", DNS_T_MX, &a) == DNS_OK);
	/* Not our question. */
	CHECK(parse(&m, 8, "example.com", DNS_T_MX, &a) == DNS_BAD);
	CHECK(parse(&m, 7, "example.org", DNS_T_MX, &a) == DNS_BAD);
	CHECK(parse(&m, 7, "example.com", DNS_T_A, &a) == DNS_BAD);
	torture(&m, 7, "example.com", DNS_T_MX);
}

static void test_status(void)
{
	struct msg m;
	struct dns_answer a;

	head(&m, 1, 0x8183, 0, "nx.example", DNS_T_MX);
	CHECK(parse(&m, 1, "nx.example", DNS_T_MX, &a) == DNS_NXDOMAIN);
	head(&m, 1, 0x8182, 0, "x.example", DNS_T_MX);
	CHECK(parse(&m, 1, "x.example", DNS_T_MX, &a) == DNS_TEMPFAIL);
	head(&m, 1, 0x8185, 0, "x.example", DNS_T_MX);
	CHECK(parse(&m, 1, "x.example", DNS_T_MX, &a) == DNS_TEMPFAIL);
	head(&m, 1, OK_FLAGS, 0, "x.example", DNS_T_MX);
	CHECK(parse(&m, 1, "x.example", DNS_T_MX, &a) == DNS_NODATA);
	head(&m, 1, OK_FLAGS | 0x0200, 0, "x.example", DNS_T_MX);
	CHECK(parse(&m, 1, "x.example", DNS_T_MX, &a) == DNS_TRUNCATED);
	/* A query, not a response; another opcode; two questions. */
	head(&m, 1, 0x0100, 0, "x.example", DNS_T_MX);
	CHECK(parse(&m, 1, "x.example", DNS_T_MX, &a) == DNS_BAD);
	head(&m, 1, OK_FLAGS | 0x1000, 0, "x.example", DNS_T_MX);
	CHECK(parse(&m, 1, "x.example", DNS_T_MX, &a) == DNS_BAD);
	head(&m, 1, OK_FLAGS, 0, "x.example", DNS_T_MX);
	m.b[5] = 2;
	CHECK(parse(&m, 1, "x.example", DNS_T_MX, &a) == DNS_BAD);
	/* Class CH in the question. */
	head(&m, 1, OK_FLAGS, 0, "x.example", DNS_T_MX);
	m.b[m.n - 1] = 3;
	CHECK(parse(&m, 1, "x.example", DNS_T_MX, &a) == DNS_BAD);
	/* Shorter than a header. */
	m.n = 11;
	CHECK(parse(&m, 1, "x.example", DNS_T_MX, &a) == DNS_BAD);
}

static void test_addresses_and_cname(void)
{
	struct msg m;
	struct dns_answer a;
	size_t target;

	/* www.example CNAME web.example; web.example A 192.0.2.1, A 192.0.2.2 */
	head(&m, 9, OK_FLAGS, 3, "www.example", DNS_T_A);
	ptr(&m, QNAME_OFF);
	rr_head(&m, DNS_T_CNAME, 100, 6);
	target = m.n;
	u8(&m, 3); raw(&m, "web", 3); ptr(&m, QNAME_OFF + 4);
	ptr(&m, (unsigned)target);
	rr_head(&m, DNS_T_A, 50, 4);
	raw(&m, "\xc0\x00\x02\x01", 4);
	ptr(&m, (unsigned)target);
	rr_head(&m, DNS_T_A, 70, 4);
	raw(&m, "\xc0\x00\x02\x02", 4);
	CHECK(parse(&m, 9, "www.example", DNS_T_A, &a) == DNS_OK);
	CHECK(a.naddr == 2 && a.addr[0].family == IP_V4 && a.addr[0].a[3] == 1 &&
	      a.addr[1].a[3] == 2);
	CHECK(a.ttl == 50);
	torture(&m, 9, "www.example", DNS_T_A);

	/* An A record with 5 bytes of RDATA is malformed. */
	head(&m, 9, OK_FLAGS, 1, "h.example", DNS_T_A);
	ptr(&m, QNAME_OFF);
	rr_head(&m, DNS_T_A, 50, 5);
	raw(&m, "\x01\x02\x03\x04\x05", 5);
	CHECK(parse(&m, 9, "h.example", DNS_T_A, &a) == DNS_BAD);

	/* AAAA */
	head(&m, 9, OK_FLAGS, 1, "h.example", DNS_T_AAAA);
	ptr(&m, QNAME_OFF);
	rr_head(&m, DNS_T_AAAA, 50, 16);
	raw(&m, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
	CHECK(parse(&m, 9, "h.example", DNS_T_AAAA, &a) == DNS_OK);
	CHECK(a.naddr == 1 && a.addr[0].family == IP_V6 && a.addr[0].a[15] == 1);

	/* A CNAME loop a -> b -> a ends after DNS_CNAME_MAX hops: no data. */
	head(&m, 9, OK_FLAGS, 2, "a.example", DNS_T_A);
	name(&m, "a.example");
	rr_head(&m, DNS_T_CNAME, 5, 11);
	name(&m, "b.example");
	name(&m, "b.example");
	rr_head(&m, DNS_T_CNAME, 5, 11);
	name(&m, "a.example");
	CHECK(parse(&m, 9, "a.example", DNS_T_A, &a) == DNS_NODATA);
}

/* An answer whose second record's owner is a chain of pieces 63 octets
 * long, each pointing to the one before. */
static enum dns_status chain_owner(int pieces, struct dns_answer *a)
{
	struct msg m;
	size_t prev = 0, rdlen_at;

	head(&m, 2, OK_FLAGS, 2, "x.example", DNS_T_A);
	ptr(&m, QNAME_OFF);
	rr_head(&m, 16, 1, 0);
	rdlen_at = m.n - 2;
	for (int i = 0; i < pieces; i++) {
		size_t here = m.n;
		u8(&m, 63);
		for (int k = 0; k < 63; k++)
			u8(&m, 'a');
		if (prev)
			ptr(&m, (unsigned)prev);
		else
			u8(&m, 0);
		prev = here;
	}
	m.b[rdlen_at] = (unsigned char)((m.n - rdlen_at - 2) >> 8);
	m.b[rdlen_at + 1] = (unsigned char)(m.n - rdlen_at - 2);
	ptr(&m, (unsigned)prev);
	rr_head(&m, DNS_T_A, 1, 4);
	raw(&m, "\1\2\3\4", 4);
	return parse(&m, 2, "x.example", DNS_T_A, a);
}

static void test_hostile_names(void)
{
	struct msg m;
	struct dns_answer a;
	size_t at;

	/* A pointer to itself in the answer's owner. */
	head(&m, 2, OK_FLAGS, 1, "x.example", DNS_T_A);
	ptr(&m, (unsigned)m.n);
	rr_head(&m, DNS_T_A, 1, 4);
	raw(&m, "\1\2\3\4", 4);
	CHECK(parse(&m, 2, "x.example", DNS_T_A, &a) == DNS_BAD);

	/* A pointer forward. */
	head(&m, 2, OK_FLAGS, 1, "x.example", DNS_T_A);
	ptr(&m, (unsigned)m.n + 2);
	rr_head(&m, DNS_T_A, 1, 4);
	raw(&m, "\1\2\3\4", 4);
	CHECK(parse(&m, 2, "x.example", DNS_T_A, &a) == DNS_BAD);

	/* The loop that "strictly before the pointer" alone would miss:
	 * label "xy" then a pointer back to that label. */
	head(&m, 2, OK_FLAGS, 1, "x.example", DNS_T_A);
	at = m.n;
	u8(&m, 2); raw(&m, "xy", 2); ptr(&m, (unsigned)at);
	rr_head(&m, DNS_T_A, 1, 4);
	raw(&m, "\1\2\3\4", 4);
	CHECK(parse(&m, 2, "x.example", DNS_T_A, &a) == DNS_BAD);

	/* A pointer past the end, a pointer cut in half. */
	head(&m, 2, OK_FLAGS, 1, "x.example", DNS_T_A);
	ptr(&m, 0x3fff);
	CHECK(parse(&m, 2, "x.example", DNS_T_A, &a) == DNS_BAD);
	head(&m, 2, OK_FLAGS, 1, "x.example", DNS_T_A);
	u8(&m, 0xc0);
	CHECK(parse(&m, 2, "x.example", DNS_T_A, &a) == DNS_BAD);

	/* A label longer than what is left; an extended label type. */
	head(&m, 2, OK_FLAGS, 1, "x.example", DNS_T_A);
	u8(&m, 60); raw(&m, "abc", 3);
	CHECK(parse(&m, 2, "x.example", DNS_T_A, &a) == DNS_BAD);
	head(&m, 2, OK_FLAGS, 1, "x.example", DNS_T_A);
	u8(&m, 0x41); u8(&m, 0);
	CHECK(parse(&m, 2, "x.example", DNS_T_A, &a) == DNS_BAD);

	/* A name of more than 255 octets made of pointers to pointers: the
	 * pieces sit in the RDATA of a record of another type, the owner of
	 * the next record points at the last piece. */
	CHECK(chain_owner(10, &a) == DNS_BAD);
	CHECK(chain_owner(3, &a) == DNS_NODATA);   /* 195 octets: fine, not ours */

	/* An RDLENGTH past the end. */
	head(&m, 2, OK_FLAGS, 1, "x.example", DNS_T_A);
	ptr(&m, QNAME_OFF);
	rr_head(&m, DNS_T_A, 1, 40);
	raw(&m, "\1\2\3\4", 4);
	CHECK(parse(&m, 2, "x.example", DNS_T_A, &a) == DNS_BAD);

	/* More answers announced than present. */
	head(&m, 2, OK_FLAGS, 3, "x.example", DNS_T_A);
	ptr(&m, QNAME_OFF);
	rr_head(&m, DNS_T_A, 1, 4);
	raw(&m, "\1\2\3\4", 4);
	CHECK(parse(&m, 2, "x.example", DNS_T_A, &a) == DNS_BAD);

	/* An MX whose exchange runs past its RDATA; one that stops short. */
	head(&m, 2, OK_FLAGS, 1, "x.example", DNS_T_MX);
	ptr(&m, QNAME_OFF);
	rr_head(&m, DNS_T_MX, 1, 4);
	u16(&m, 1); u8(&m, 3); raw(&m, "abc", 3); u8(&m, 0);
	CHECK(parse(&m, 2, "x.example", DNS_T_MX, &a) == DNS_BAD);
	head(&m, 2, OK_FLAGS, 1, "x.example", DNS_T_MX);
	ptr(&m, QNAME_OFF);
	rr_head(&m, DNS_T_MX, 1, 8);
	u16(&m, 1); u8(&m, 0); raw(&m, "junk\0", 5);
	CHECK(parse(&m, 2, "x.example", DNS_T_MX, &a) == DNS_BAD);

	/* An MX exchange that is not a host name is skipped, not passed on. */
	head(&m, 2, OK_FLAGS, 2, "x.example", DNS_T_MX);
	ptr(&m, QNAME_OFF);
	rr_head(&m, DNS_T_MX, 1, 2 + 10);
	u16(&m, 1); u8(&m, 8); raw(&m, "a.b\nc d\0", 8); u8(&m, 0);
	ptr(&m, QNAME_OFF);
	rr_head(&m, DNS_T_MX, 1, 2 + 5);
	u16(&m, 2); u8(&m, 3); raw(&m, "mx1", 3); u8(&m, 0);
	CHECK(parse(&m, 2, "x.example", DNS_T_MX, &a) == DNS_OK);
	CHECK(a.nmx == 1 && strcmp(a.mx[0].host, "mx1") == 0);
}

static void test_null_mx(void)
{
	struct msg m;
	struct dns_answer a;

	head(&m, 3, OK_FLAGS, 1, "nomail.example", DNS_T_MX);
	ptr(&m, QNAME_OFF);
	rr_head(&m, DNS_T_MX, 1, 3);
	u16(&m, 0);
	u8(&m, 0);
	CHECK(parse(&m, 3, "nomail.example", DNS_T_MX, &a) == DNS_OK);
	CHECK(a.nmx == 1 && a.mx[0].host[0] == 0 && dns_mx_is_null(&a));
}

static void test_mx_sort(void)
{
	struct dns_answer a;
	int first_b = 0, first_c = 0;

	for (uint64_t seed = 0; seed < 64; seed++) {
		memset(&a, 0, sizeof a);
		a.nmx = 5;
		a.mx[0] = (struct dns_mx){ 20, "c" };
		a.mx[1] = (struct dns_mx){ 10, "a" };
		a.mx[2] = (struct dns_mx){ 20, "b" };
		a.mx[3] = (struct dns_mx){ 30, "a" };   /* duplicate: keeps 10 */
		a.mx[4] = (struct dns_mx){ 5, "z" };
		dns_mx_sort(&a, seed);
		CHECK(a.nmx == 4);
		CHECK(strcmp(a.mx[0].host, "z") == 0 && strcmp(a.mx[1].host, "a") == 0);
		CHECK(a.mx[1].pref == 10);
		CHECK(a.mx[2].pref == 20 && a.mx[3].pref == 20);
		first_b += strcmp(a.mx[2].host, "b") == 0;
		first_c += strcmp(a.mx[2].host, "c") == 0;
	}
	/* Equal preferences come in both orders over the seeds. */
	CHECK(first_b > 8 && first_c > 8 && first_b + first_c == 64);
}

static void test_resolv_conf(void)
{
	static const char text[] =
		"# comment\n"
		"search example.com\n"
		"nameserver 192.0.2.53\n"
		"  nameserver\t2001:db8::53  # v6\n"
		"nameserver fe80::1%eth0\n"
		"nameserverx 10.0.0.1\n"
		"nameserver\n"
		"nameserver 198.51.100.1\r\n"
		"nameserver 198.51.100.2\n"
		"nameserver 198.51.100.3";
	struct ipaddr ns[3];
	size_t n = dns_resolv_conf(text, sizeof text - 1, ns, 3);

	CHECK(n == 3);
	CHECK(ns[0].family == IP_V4 && ns[0].a[3] == 53);
	CHECK(ns[1].family == IP_V6 && ns[1].a[15] == 0x53);
	CHECK(ns[2].family == IP_V4 && ns[2].a[3] == 1);
	CHECK(dns_resolv_conf("", 0, ns, 3) == 0);
	CHECK(dns_resolv_conf(text, sizeof text - 1, ns, 0) == 0);
}

static enum dns_status parse_tlsa(const struct msg *m, uint16_t id, const char *q,
                                  struct dns_tlsa_set *t)
{
	unsigned char *b = malloc(m->n ? m->n : 1);
	enum dns_status st;

	memcpy(b, m->b, m->n);
	st = dns_tlsa_parse(b, m->n, id, q, t);
	free(b);
	return st;
}

static enum dns_status parse_txt(const struct msg *m, uint16_t id, const char *q,
                                 struct dns_txt_set *t)
{
	unsigned char *b = malloc(m->n ? m->n : 1);
	enum dns_status st;

	memcpy(b, m->b, m->n);
	st = dns_txt_parse(b, m->n, id, q, t);
	free(b);
	return st;
}

/* torture() for the TLSA and TXT readers: truncations and flipped bytes
 * never read out of bounds, and what is kept stays within its caps. */
static void torture_sets(const struct msg *m, uint16_t id, const char *q)
{
	static struct dns_tlsa_set ts;
	static struct dns_txt_set xs;
	static struct msg t;

	for (size_t k = 0; k <= m->n; k++) {
		t = *m;
		t.n = k;
		(void)parse_tlsa(&t, id, q, &ts);
		CHECK(ts.n <= DNS_TLSA_MAX);
		(void)parse_txt(&t, id, q, &xs);
		CHECK(xs.n <= DNS_TXT_MAX);
	}
	for (size_t k = 0; k < m->n; k++) {
		static const unsigned char vals[] = { 0x00, 0xff, 0xc0, 0x3f, 0x40, 0x01, 0x02 };
		for (size_t v = 0; v < sizeof vals; v++) {
			t = *m;
			t.b[k] = vals[v];
			(void)parse_tlsa(&t, id, q, &ts);
			(void)parse_txt(&t, id, q, &xs);
			for (size_t i = 0; i < xs.n; i++)
				CHECK(xs.r[i].len <= DNS_TXT_LEN_MAX && xs.r[i].text[xs.r[i].len] == '\0');
			for (size_t i = 0; i < ts.n; i++)
				CHECK(ts.r[i].toobig ? ts.r[i].len > DNS_TLSA_DATA_MAX
				                     : ts.r[i].len <= DNS_TLSA_DATA_MAX);
		}
	}
}

static void test_query_dnssec(void)
{
	unsigned char buf[DNS_QUERY_MAX], plain[DNS_QUERY_MAX];
	static const unsigned char want[] = {
		0xab, 0xcd, 0x01, 0x20, 0, 1, 0, 0, 0, 0, 0, 1,
		3, '_', '2', '5', 4, '_', 't', 'c', 'p', 2, 'm', 'x', 0,
		0, 52, 0, 1,
		0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0 };
	size_t n = dns_query_build_flags(buf, sizeof buf, 0xabcd, "_25._tcp.mx", DNS_T_TLSA,
	                                 DNS_Q_DNSSEC);

	CHECK(n == sizeof want && memcmp(buf, want, n) == 0);
	/* Exactly enough room, and one byte short. */
	CHECK(dns_query_build_flags(buf, sizeof want, 0xabcd, "_25._tcp.mx", DNS_T_TLSA,
	                            DNS_Q_DNSSEC) == sizeof want);
	CHECK(dns_query_build_flags(buf, sizeof want - 1, 0xabcd, "_25._tcp.mx", DNS_T_TLSA,
	                            DNS_Q_DNSSEC) == 0);
	/* Flags 0 is the plain query, byte for byte. */
	n = dns_query_build_flags(buf, sizeof buf, 9, "example.com", DNS_T_MX, 0);
	CHECK(n > 0 && n == dns_query_build(plain, sizeof plain, 9, "example.com", DNS_T_MX));
	CHECK(memcmp(buf, plain, n) == 0 && buf[11] == 0 && buf[3] == 0);
	/* The longest name still fits DNS_QUERY_MAX with the OPT record. */
	char big[254];
	for (size_t i = 0; i < 253; i++)
		big[i] = i % 2 ? '.' : 'a';
	big[253] = '\0';
	CHECK(dns_query_build_flags(buf, sizeof buf, 1, big, DNS_T_TLSA, DNS_Q_DNSSEC) ==
	      12 + 255 + 4 + DNS_OPT_LEN);
}

static void test_ad_bit(void)
{
	struct msg m;
	struct dns_answer a;
	static const unsigned char ip[4] = { 192, 0, 2, 1 };

	head(&m, 3, OK_FLAGS | 0x20, 1, "mx.example", DNS_T_A);
	ptr(&m, QNAME_OFF);
	rr_head(&m, DNS_T_A, 60, 4);
	raw(&m, ip, 4);
	CHECK(parse(&m, 3, "mx.example", DNS_T_A, &a) == DNS_OK && a.ad == 1 && a.naddr == 1);
	m.b[3] &= (unsigned char)~0x20;
	CHECK(parse(&m, 3, "mx.example", DNS_T_A, &a) == DNS_OK && a.ad == 0 && a.naddr == 1);
	/* Authenticated denial: NXDOMAIN and NODATA carry the bit too. */
	head(&m, 3, 0x81a3, 0, "nx.example", DNS_T_MX);
	CHECK(parse(&m, 3, "nx.example", DNS_T_MX, &a) == DNS_NXDOMAIN && a.ad == 1);
	head(&m, 3, OK_FLAGS | 0x20, 0, "x.example", DNS_T_MX);
	CHECK(parse(&m, 3, "x.example", DNS_T_MX, &a) == DNS_NODATA && a.ad == 1);
	/* Not our answer, or truncated: no verdict at all. */
	CHECK(parse(&m, 4, "x.example", DNS_T_MX, &a) == DNS_BAD && a.ad == 0);
	head(&m, 3, OK_FLAGS | 0x20 | 0x0200, 0, "x.example", DNS_T_MX);
	CHECK(parse(&m, 3, "x.example", DNS_T_MX, &a) == DNS_TRUNCATED && a.ad == 0);
}

/* One TLSA record: usage, selector, matching type, data. */
static void tlsa_rr(struct msg *m, unsigned owner, unsigned u, unsigned s, unsigned t,
                    const unsigned char *data, size_t n)
{
	ptr(m, owner);
	rr_head(m, DNS_T_TLSA, 3600, (unsigned)(3 + n));
	u8(m, u);
	u8(m, s);
	u8(m, t);
	raw(m, data, n);
}

static void test_tlsa(void)
{
	static struct msg m;
	static struct dns_tlsa_set ts;
	unsigned char h[64];
	size_t target;

	for (size_t i = 0; i < sizeof h; i++)
		h[i] = (unsigned char)(i * 7 + 1);
	/* _25._tcp.mx.example CNAME t.example; t.example has the TLSA
	 * records (RFC 7671 7: the chain is followed), and an RRSIG. */
	head(&m, 5, OK_FLAGS | 0x20, 5, "_25._tcp.mx.example", DNS_T_TLSA);
	ptr(&m, QNAME_OFF);
	rr_head(&m, DNS_T_CNAME, 600, 11);
	target = m.n;
	name(&m, "t.example");
	tlsa_rr(&m, (unsigned)target, 3, 1, 1, h, 32);
	ptr(&m, (unsigned)target);
	rr_head(&m, 46, 3600, 4);       /* RRSIG: not ours, skipped */
	u32(&m, 0);
	tlsa_rr(&m, (unsigned)target, 2, 0, 2, h, 64);
	tlsa_rr(&m, QNAME_OFF, 3, 1, 1, h + 1, 32);  /* owned by the alias: not ours */
	CHECK(parse_tlsa(&m, 5, "_25._tcp.mx.example", &ts) == DNS_OK);
	CHECK(ts.n == 2 && ts.dropped == 0 && ts.ad == 1 && ts.ttl == 3600);
	CHECK(ts.r[0].usage == 3 && ts.r[0].selector == 1 && ts.r[0].mtype == 1);
	CHECK(ts.r[0].len == 32 && memcmp(ts.r[0].data, h, 32) == 0 && !ts.r[0].toobig);
	CHECK(ts.r[1].usage == 2 && ts.r[1].selector == 0 && ts.r[1].mtype == 2);
	CHECK(ts.r[1].len == 64 && memcmp(ts.r[1].data, h, 64) == 0);
	torture_sets(&m, 5, "_25._tcp.mx.example");

	/* Unknown parameters are kept as published: DANE decides. */
	head(&m, 6, OK_FLAGS, 1, "_25._tcp.mx.example", DNS_T_TLSA);
	tlsa_rr(&m, QNAME_OFF, 255, 9, 77, h, 0);
	CHECK(parse_tlsa(&m, 6, "_25._tcp.mx.example", &ts) == DNS_OK);
	CHECK(ts.n == 1 && ts.r[0].usage == 255 && ts.r[0].selector == 9 && ts.r[0].mtype == 77);
	CHECK(ts.r[0].len == 0 && ts.ad == 0);

	/* Shorter than its three parameters: the whole answer is bad. */
	head(&m, 6, OK_FLAGS, 2, "_25._tcp.mx.example", DNS_T_TLSA);
	tlsa_rr(&m, QNAME_OFF, 3, 1, 1, h, 32);
	ptr(&m, QNAME_OFF);
	rr_head(&m, DNS_T_TLSA, 3600, 2);
	u8(&m, 3);
	u8(&m, 1);
	CHECK(parse_tlsa(&m, 6, "_25._tcp.mx.example", &ts) == DNS_BAD);
	CHECK(ts.n == 0 && ts.ad == 0);

	/* More than DNS_TLSA_MAX: counted, not kept. */
	head(&m, 6, OK_FLAGS, DNS_TLSA_MAX + 2, "_25._tcp.mx.example", DNS_T_TLSA);
	for (unsigned i = 0; i < DNS_TLSA_MAX + 2; i++)
		tlsa_rr(&m, QNAME_OFF, 3, 1, 1, h + i, 32);
	CHECK(parse_tlsa(&m, 6, "_25._tcp.mx.example", &ts) == DNS_OK);
	CHECK(ts.n == DNS_TLSA_MAX && ts.dropped == 2);
	CHECK(memcmp(ts.r[DNS_TLSA_MAX - 1].data, h + DNS_TLSA_MAX - 1, 32) == 0);

	/* Data over DNS_TLSA_DATA_MAX: the record stays, marked. */
	{
		static unsigned char big[DNS_TLSA_DATA_MAX + 1];
		head(&m, 6, OK_FLAGS, 1, "_25._tcp.mx.example", DNS_T_TLSA);
		tlsa_rr(&m, QNAME_OFF, 3, 0, 0, big, sizeof big);
		CHECK(parse_tlsa(&m, 6, "_25._tcp.mx.example", &ts) == DNS_OK);
		CHECK(ts.n == 1 && ts.r[0].toobig && ts.r[0].len == sizeof big);
		head(&m, 6, OK_FLAGS, 1, "_25._tcp.mx.example", DNS_T_TLSA);
		tlsa_rr(&m, QNAME_OFF, 3, 0, 0, big, DNS_TLSA_DATA_MAX);
		CHECK(parse_tlsa(&m, 6, "_25._tcp.mx.example", &ts) == DNS_OK);
		CHECK(ts.n == 1 && !ts.r[0].toobig && ts.r[0].len == DNS_TLSA_DATA_MAX);
	}

	/* No records, NXDOMAIN, with and without AD. */
	head(&m, 7, OK_FLAGS | 0x20, 0, "_25._tcp.mx.example", DNS_T_TLSA);
	CHECK(parse_tlsa(&m, 7, "_25._tcp.mx.example", &ts) == DNS_NODATA && ts.ad == 1);
	head(&m, 7, 0x8183, 0, "_25._tcp.mx.example", DNS_T_TLSA);
	CHECK(parse_tlsa(&m, 7, "_25._tcp.mx.example", &ts) == DNS_NXDOMAIN && ts.ad == 0);
	/* The question must be TLSA. */
	head(&m, 7, OK_FLAGS, 0, "_25._tcp.mx.example", DNS_T_A);
	CHECK(parse_tlsa(&m, 7, "_25._tcp.mx.example", &ts) == DNS_BAD);
}

/* A TXT record made of the given character-strings. */
static void txt_rr(struct msg *m, unsigned owner, const char *const *s, size_t n)
{
	size_t rdlen = 0;

	for (size_t i = 0; i < n; i++)
		rdlen += 1 + strlen(s[i]);
	ptr(m, owner);
	rr_head(m, DNS_T_TXT, 300, (unsigned)rdlen);
	for (size_t i = 0; i < n; i++) {
		u8(m, (unsigned)strlen(s[i]));
		raw(m, s[i], strlen(s[i]));
	}
}

static void test_txt(void)
{
	static struct msg m;
	static struct dns_txt_set xs;
	static const char *const sts[] = { "v=STSv1; ", "id=20240101T000000;" };
	static const char *const other[] = { "google-site-verification=abc" };
	static const char *const empty[] = { "" };

	head(&m, 9, OK_FLAGS | 0x20, 3, "_mta-sts.example.com", DNS_T_TXT);
	txt_rr(&m, QNAME_OFF, sts, 2);
	txt_rr(&m, QNAME_OFF, other, 1);
	txt_rr(&m, QNAME_OFF, empty, 1);
	CHECK(parse_txt(&m, 9, "_mta-sts.example.com", &xs) == DNS_OK);
	CHECK(xs.n == 3 && xs.ad == 1 && xs.dropped == 0 && xs.ttl == 300);
	CHECK(strcmp(xs.r[0].text, "v=STSv1; id=20240101T000000;") == 0 && xs.r[0].len == 28);
	CHECK(strcmp(xs.r[1].text, other[0]) == 0 && !xs.r[1].truncated);
	CHECK(xs.r[2].len == 0 && xs.r[2].text[0] == '\0');
	torture_sets(&m, 9, "_mta-sts.example.com");

	/* A string whose length runs past the RDATA; an empty RDATA. */
	head(&m, 9, OK_FLAGS, 1, "_mta-sts.example.com", DNS_T_TXT);
	ptr(&m, QNAME_OFF);
	rr_head(&m, DNS_T_TXT, 300, 4);
	u8(&m, 4);
	raw(&m, "abc", 3);
	CHECK(parse_txt(&m, 9, "_mta-sts.example.com", &xs) == DNS_BAD && xs.n == 0);
	head(&m, 9, OK_FLAGS, 1, "_mta-sts.example.com", DNS_T_TXT);
	ptr(&m, QNAME_OFF);
	rr_head(&m, DNS_T_TXT, 300, 0);
	CHECK(parse_txt(&m, 9, "_mta-sts.example.com", &xs) == DNS_BAD);

	/* Longer than DNS_TXT_LEN_MAX: the start kept, marked truncated. */
	{
		static char s255[256];
		const char *five[5] = { s255, s255, s255, s255, s255 };
		memset(s255, 'x', 255);
		head(&m, 9, OK_FLAGS, 1, "_mta-sts.example.com", DNS_T_TXT);
		txt_rr(&m, QNAME_OFF, five, 5);
		CHECK(parse_txt(&m, 9, "_mta-sts.example.com", &xs) == DNS_OK);
		CHECK(xs.n == 1 && xs.r[0].truncated && xs.r[0].len == DNS_TXT_LEN_MAX);
		CHECK(strlen(xs.r[0].text) == DNS_TXT_LEN_MAX);
		head(&m, 9, OK_FLAGS, 1, "_mta-sts.example.com", DNS_T_TXT);
		txt_rr(&m, QNAME_OFF, five, 4);
		CHECK(parse_txt(&m, 9, "_mta-sts.example.com", &xs) == DNS_OK);
		CHECK(xs.n == 1 && !xs.r[0].truncated && xs.r[0].len == 1020);
	}
	/* More than DNS_TXT_MAX records: counted. */
	head(&m, 9, OK_FLAGS, DNS_TXT_MAX + 1, "_mta-sts.example.com", DNS_T_TXT);
	for (int i = 0; i < DNS_TXT_MAX + 1; i++)
		txt_rr(&m, QNAME_OFF, other, 1);
	CHECK(parse_txt(&m, 9, "_mta-sts.example.com", &xs) == DNS_OK);
	CHECK(xs.n == DNS_TXT_MAX && xs.dropped == 1);
	/* NODATA. */
	head(&m, 9, OK_FLAGS, 0, "_mta-sts.example.com", DNS_T_TXT);
	CHECK(parse_txt(&m, 9, "_mta-sts.example.com", &xs) == DNS_NODATA);
}

int main(void)
{
	RUN(test_name_ok);
	RUN(test_query_build);
	RUN(test_mx_answer);
	RUN(test_status);
	RUN(test_addresses_and_cname);
	RUN(test_hostile_names);
	RUN(test_null_mx);
	RUN(test_mx_sort);
	RUN(test_resolv_conf);
	RUN(test_query_dnssec);
	RUN(test_ad_bit);
	RUN(test_tlsa);
	RUN(test_txt);
	return t_main_end();
}
