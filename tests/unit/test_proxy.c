/* tests/unit/test_proxy.c -- policy/proxy.h: the PROXY protocol header,
 * v1 and v2, fed whole, as a reader would (in chunks of every size), split
 * at every offset and cut at every length, each input in a heap buffer of
 * its exact length (ASan sees any over-read); one byte changed at every
 * position; hostile lengths; headers captured from a real HAProxy 2.6; the
 * trust decision and the config lines that name the proxies.
 *
 *   test_proxy                  run the tests
 *   test_proxy --parse FILE...  parse each file, one line of fields each
 *                               (tests/proxy/test_haproxy_headers.py feeds
 *                               it headers a live HAProxy just sent);
 *                               "result=N" alone when N is not > 0
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/conf.h"
#include "policy/proxy.h"
#include "t.h"

/* ------------------------------------------------------------ helpers */

/* Parse in[0..len) from a heap copy of exactly len bytes. */
static int parse(const void *in, size_t len, struct proxy_hdr *h)
{
	unsigned char *b = malloc(len ? len : 1);
	int got;

	memcpy(b, in, len);
	got = proxy_parse(b, len, h);
	free(b);
	return got;
}

static void fmt_ip(const struct ipaddr *ip, char *buf, size_t cap)
{
	ip_format(ip, buf, cap);
}

/* CRC-32C written apart from policy/proxy.c's (a table, not bit by bit),
 * checked against the standard check value below, so that a header the
 * builder signs is signed right whatever the parser does. */
static uint32_t test_crc32c(const unsigned char *b, size_t n)
{
	static uint32_t table[256];
	uint32_t crc = 0xffffffffu;

	if (table[1] == 0)
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;
			for (int k = 0; k < 8; k++)
				c = (c & 1u) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
			table[i] = c;
		}
	for (size_t k = 0; k < n; k++)
		crc = table[(crc ^ b[k]) & 0xffu] ^ (crc >> 8);
	return ~crc;
}

/* A v2 header under construction. */
struct v2 {
	unsigned char b[PROXY_HDR_MAX + 64];
	size_t        len;
};

static void v2_start(struct v2 *h, unsigned char ver_cmd, unsigned char fam)
{
	static const unsigned char sig[12] = {
		0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };

	memcpy(h->b, sig, 12);
	h->b[12] = ver_cmd;
	h->b[13] = fam;
	h->len = 16;
}

static void v2_add(struct v2 *h, const void *p, size_t n)
{
	memcpy(h->b + h->len, p, n);
	h->len += n;
}

static void v2_tlv(struct v2 *h, unsigned char type, const void *p, size_t n)
{
	unsigned char t[3] = { type, (unsigned char)(n >> 8), (unsigned char)n };

	v2_add(h, t, 3);
	v2_add(h, p, n);
}

/* Write the length field; with crc, append a CRC32C TLV signing it all. */
static void v2_end(struct v2 *h, int crc)
{
	size_t at = 0;

	if (crc) {
		static const unsigned char zero[4];
		v2_tlv(h, 0x03, zero, 4);
		at = h->len - 4;
	}
	h->b[14] = (unsigned char)((h->len - 16) >> 8);
	h->b[15] = (unsigned char)(h->len - 16);
	if (crc) {
		uint32_t c = test_crc32c(h->b, h->len);
		h->b[at] = (unsigned char)(c >> 24);
		h->b[at + 1] = (unsigned char)(c >> 16);
		h->b[at + 2] = (unsigned char)(c >> 8);
		h->b[at + 3] = (unsigned char)c;
	}
}

/* The addresses of a v2 INET header: 192.0.2.1:56324 -> 198.51.100.2:25. */
static const unsigned char inet_addrs[12] = {
	192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x00, 0x19 };
/* 2001:db8::1:56324 -> 2001:db8::2:25 */
static const unsigned char inet6_addrs[36] = {
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
	0xdc, 0x04, 0x00, 0x19 };

/* ------------------------------------------------------------ the cases */

/* One case: bytes, and what proxy_parse() must say of them whole. */
struct pcase {
	const char    *name;
	unsigned char  in[PROXY_HDR_MAX + 64];
	size_t         len;
	int            result;  /* consumed (> 0), -1 or -2 */
	int            version, kind;
	const char    *src, *dst;  /* as ip_format() writes them; FORWARDED only */
	unsigned       sport, dport;
	int            crc;     /* v2: a CRC32C TLV checked */
	int            ntlv;    /* v2: TLVs skipped; -1: not said */
};

#define MAX_CASES 160
static struct pcase cases[MAX_CASES];
static size_t ncases;

static struct pcase *add(const char *name, const void *in, size_t len, int result)
{
	struct pcase *c = &cases[ncases++];

	if (ncases > MAX_CASES) {
		fprintf(stderr, "too many cases\n");
		exit(2);
	}
	memset(c, 0, sizeof *c);
	c->name = name;
	memcpy(c->in, in, len);
	c->len = len;
	c->result = result;
	c->ntlv = -1;
	return c;
}

static void good(const char *name, const void *in, size_t len, int version, int kind,
                 const char *src, unsigned sport, const char *dst, unsigned dport)
{
	struct pcase *c = add(name, in, len, (int)len);

	c->version = version;
	c->kind = kind;
	c->src = src;
	c->dst = dst;
	c->sport = sport;
	c->dport = dport;
}

#define V1_GOOD(line, kind, src, sport, dst, dport) \
	good(line, line, sizeof(line) - 1, 1, kind, src, sport, dst, dport)
#define V1_BAD(line)  (void)add(line, line, sizeof(line) - 1, -1)
#define V1_MORE(line) (void)add(line, line, sizeof(line) - 1, -2)

static void v1_cases(void)
{
	V1_GOOD("PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\n", PROXY_FORWARDED,
	        "192.0.2.1", 56324, "198.51.100.2", 25);
	V1_GOOD("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n", PROXY_FORWARDED,
	        "0.0.0.0", 0, "255.255.255.255", 65535);
	V1_GOOD("PROXY TCP6 2001:db8::1 2001:db8::2 56324 25\r\n", PROXY_FORWARDED,
	        "2001:db8::1", 56324, "2001:db8::2", 25);
	V1_GOOD("PROXY TCP6 2001:DB8:0:0:0:0:0:A 2001:0db8::b 1 2\r\n", PROXY_FORWARDED,
	        "2001:db8::a", 1, "2001:db8::b", 2);
	V1_GOOD("PROXY TCP6 ::ffff:192.0.2.1 ::ffff:198.51.100.2 1 65535\r\n", PROXY_FORWARDED,
	        "::ffff:192.0.2.1", 1, "::ffff:198.51.100.2", 65535);
	V1_GOOD("PROXY TCP6 :: :: 0 0\r\n", PROXY_FORWARDED, "::", 0, "::", 0);
	V1_GOOD("PROXY UNKNOWN\r\n", PROXY_UNKNOWN, NULL, 0, NULL, 0);
	V1_GOOD("PROXY UNKNOWN ignored text, even  two spaces\r\n", PROXY_UNKNOWN, NULL, 0, NULL, 0);
	/* The spec's worst case: exactly PROXY_V1_MAX bytes. */
	V1_GOOD("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n", PROXY_UNKNOWN,
	        NULL, 0, NULL, 0);
	V1_GOOD("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n", PROXY_FORWARDED,
	        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535,
	        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
	/* Too long by one. */
	V1_BAD("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	       "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 655355\r\n");
	V1_BAD("PROXY UNKNOWN xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	/* Leading zeros, out of range, signs, other bases. */
	V1_BAD("PROXY TCP4 192.0.2.01 198.51.100.2 56324 25\r\n");
	V1_BAD("PROXY TCP4 010.0.0.1 198.51.100.2 56324 25\r\n");
	V1_BAD("PROXY TCP4 192.0.2.256 198.51.100.2 56324 25\r\n");
	V1_BAD("PROXY TCP4 192.0.2 198.51.100.2 56324 25\r\n");
	V1_BAD("PROXY TCP4 192.0.2.1.5 198.51.100.2 56324 25\r\n");
	V1_BAD("PROXY TCP4 0x7f.0.0.1 198.51.100.2 56324 25\r\n");
	V1_BAD("PROXY TCP4 2130706433 198.51.100.2 56324 25\r\n");
	V1_BAD("PROXY TCP4 192.0.2.1 198.51.100.2 056324 25\r\n");
	V1_BAD("PROXY TCP4 192.0.2.1 198.51.100.2 00 25\r\n");
	V1_BAD("PROXY TCP4 192.0.2.1 198.51.100.2 65536 25\r\n");
	V1_BAD("PROXY TCP4 192.0.2.1 198.51.100.2 123456 25\r\n");
	V1_BAD("PROXY TCP4 192.0.2.1 198.51.100.2 +1 25\r\n");
	V1_BAD("PROXY TCP4 192.0.2.1 198.51.100.2 -1 25\r\n");
	V1_BAD("PROXY TCP4 192.0.2.1 198.51.100.2 0x19 25\r\n");
	V1_BAD("PROXY TCP4 192.0.2.1 198.51.100.2 25 99999\r\n");
	/* The family must match the addresses, both of them. */
	V1_BAD("PROXY TCP4 2001:db8::1 2001:db8::2 56324 25\r\n");
	V1_BAD("PROXY TCP6 192.0.2.1 198.51.100.2 56324 25\r\n");
	V1_BAD("PROXY TCP4 192.0.2.1 2001:db8::2 56324 25\r\n");
	V1_BAD("PROXY TCP6 2001:db8::1 198.51.100.2 56324 25\r\n");
	V1_BAD("PROXY TCP6 [2001:db8::1] 2001:db8::2 56324 25\r\n");
	V1_BAD("PROXY TCP6 fe80::1%eth0 2001:db8::2 56324 25\r\n");
	V1_BAD("PROXY TCP6 2001:db8::1::2 2001:db8::2 56324 25\r\n");
	V1_BAD("PROXY TCP6 12345::1 2001:db8::2 56324 25\r\n");
	V1_BAD("PROXY TCP6 ::ffff:192.0.2.01 2001:db8::2 56324 25\r\n");
	/* Fields: exactly one space apart, four of them, nothing else. */
	V1_BAD("PROXY  TCP4 192.0.2.1 198.51.100.2 56324 25\r\n");
	V1_BAD("PROXY TCP4  192.0.2.1 198.51.100.2 56324 25\r\n");
	V1_BAD("PROXY TCP4 192.0.2.1  198.51.100.2 56324 25\r\n");
	V1_BAD("PROXY TCP4 192.0.2.1 198.51.100.2 56324 25 \r\n");
	V1_BAD("PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n");
	V1_BAD("PROXY TCP4 192.0.2.1 198.51.100.2 56324 25 26\r\n");
	V1_BAD("PROXY TCP4 192.0.2.1\t198.51.100.2 56324 25\r\n");
	V1_BAD("PROXY TCP4\r\n");
	V1_BAD("PROXY TCP4 \r\n");
	V1_BAD("PROXY TCP5 192.0.2.1 198.51.100.2 56324 25\r\n");
	V1_BAD("PROXY tcp4 192.0.2.1 198.51.100.2 56324 25\r\n");
	V1_BAD("PROXY UDP4 192.0.2.1 198.51.100.2 56324 25\r\n");
	V1_BAD("PROXY UNKNOWNX\r\n");
	V1_BAD("PROXY UNKNOWN\t\r\n");
	V1_BAD("PROXY \r\n");
	V1_BAD("PROXY\r\n");
	V1_BAD("proxy TCP4 192.0.2.1 198.51.100.2 56324 25\r\n");
	/* Line ends: CRLF and nothing else. */
	V1_BAD("PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\n");
	V1_BAD("PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\r\n");
	V1_BAD("PROXY TCP4 192.0.2.1\r198.51.100.2 56324 25\r\n");
	V1_BAD("PROXY UNKNOWN \x80\r\n");
	V1_BAD("PROXY UNKNOWN \x7f\r\n");
	/* Whatever is not a header, at once. */
	V1_BAD("EHLO client.example\r\n");
	V1_BAD("\r\nEHLO client.example\r\n");
	V1_BAD("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03");
	V1_BAD("GET / HTTP/1.0\r\n\r\n");
	V1_BAD("PRX");
	V1_MORE("");
	V1_MORE("P");
	V1_MORE("PROXY");
	V1_MORE("PROXY TCP4 192.0.2.1");
	V1_MORE("PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r");
	V1_MORE("\r\n\r\n");
	(void)add("v1 with a NUL", "PROXY UNKNOWN \0\r\n", 17, -1);
}

static void v2_cases(void)
{
	struct v2 h;
	unsigned char blk[PROXY_HDR_MAX];

	memset(blk, 'x', sizeof blk);
	v2_start(&h, 0x21, 0x11); v2_add(&h, inet_addrs, 12); v2_end(&h, 0);
	good("v2 proxy inet", h.b, h.len, 2, PROXY_FORWARDED, "192.0.2.1", 56324, "198.51.100.2", 25);
	v2_start(&h, 0x21, 0x21); v2_add(&h, inet6_addrs, 36); v2_end(&h, 0);
	good("v2 proxy inet6", h.b, h.len, 2, PROXY_FORWARDED, "2001:db8::1", 56324, "2001:db8::2",
	     25);
	v2_start(&h, 0x21, 0x11); v2_add(&h, inet_addrs, 12); v2_end(&h, 1);
	good("v2 proxy inet crc", h.b, h.len, 2, PROXY_FORWARDED, "192.0.2.1", 56324,
	     "198.51.100.2", 25);
	cases[ncases - 1].crc = 1;
	v2_start(&h, 0x21, 0x21); v2_add(&h, inet6_addrs, 36);
	v2_tlv(&h, 0x01, "smtp", 4); v2_tlv(&h, 0x02, "mx.example.test", 15);
	v2_tlv(&h, 0x04, "", 0); v2_tlv(&h, 0x20, "\x07\0\0\0\0\x21\0\x07TLSv1.2", 15);
	v2_tlv(&h, 0xee, blk, 300); v2_end(&h, 1);
	good("v2 proxy inet6 tlvs crc", h.b, h.len, 2, PROXY_FORWARDED, "2001:db8::1", 56324,
	     "2001:db8::2", 25);
	cases[ncases - 1].crc = 1;
	/* LOCAL: the proxy's own connection, with or without addresses. */
	v2_start(&h, 0x20, 0x00); v2_end(&h, 0);
	good("v2 local", h.b, h.len, 2, PROXY_LOCAL, NULL, 0, NULL, 0);
	v2_start(&h, 0x20, 0x11); v2_add(&h, inet_addrs, 12); v2_end(&h, 0);
	good("v2 local inet", h.b, h.len, 2, PROXY_LOCAL, NULL, 0, NULL, 0);
	v2_start(&h, 0x20, 0x12); v2_add(&h, inet_addrs, 12); v2_end(&h, 0);
	good("v2 local inet dgram", h.b, h.len, 2, PROXY_LOCAL, NULL, 0, NULL, 0);
	v2_start(&h, 0x20, 0x00); v2_end(&h, 1);
	good("v2 local crc", h.b, h.len, 2, PROXY_LOCAL, NULL, 0, NULL, 0);
	cases[ncases - 1].crc = 1;
	/* PROXY for what has no address here: the real peer, as for LOCAL. */
	v2_start(&h, 0x21, 0x00); v2_end(&h, 0);
	good("v2 proxy unspec", h.b, h.len, 2, PROXY_UNKNOWN, NULL, 0, NULL, 0);
	v2_start(&h, 0x21, 0x31); v2_add(&h, blk, 216); v2_end(&h, 0);
	good("v2 proxy unix", h.b, h.len, 2, PROXY_UNKNOWN, NULL, 0, NULL, 0);
	v2_start(&h, 0x21, 0x10); v2_add(&h, inet_addrs, 12); v2_end(&h, 0);
	good("v2 proxy inet unspec transport", h.b, h.len, 2, PROXY_UNKNOWN, NULL, 0, NULL, 0);
	/* The largest header taken: PROXY_HDR_MAX bytes; one more is refused. */
	v2_start(&h, 0x21, 0x11); v2_add(&h, inet_addrs, 12);
	v2_tlv(&h, 0x04, blk, PROXY_HDR_MAX - 16 - 12 - 3); v2_end(&h, 0);
	good("v2 at PROXY_HDR_MAX", h.b, h.len, 2, PROXY_FORWARDED, "192.0.2.1", 56324,
	     "198.51.100.2", 25);
	v2_start(&h, 0x21, 0x11); v2_add(&h, inet_addrs, 12);
	v2_tlv(&h, 0x04, blk, PROXY_HDR_MAX - 16 - 12 - 2); v2_end(&h, 0);
	(void)add("v2 over PROXY_HDR_MAX", h.b, h.len, -1);

	/* Values the spec leaves unassigned. */
	static const unsigned char bad_vc[] = { 0x11, 0x31, 0xf1, 0x01, 0x22, 0x2f };
	for (size_t k = 0; k < sizeof bad_vc; k++) {
		v2_start(&h, bad_vc[k], 0x11); v2_add(&h, inet_addrs, 12); v2_end(&h, 0);
		(void)add("v2 bad version/command", h.b, h.len, -1);
	}
	static const unsigned char bad_fam[] = { 0x41, 0xf1, 0x13, 0x1f, 0x12, 0x22, 0x32 };
	for (size_t k = 0; k < sizeof bad_fam; k++) {
		v2_start(&h, 0x21, bad_fam[k]); v2_add(&h, blk, 216); v2_end(&h, 0);
		(void)add("v2 bad family/transport", h.b, h.len, -1);
	}
	/* Lengths too short for the family's addresses. */
	v2_start(&h, 0x21, 0x11); v2_add(&h, inet_addrs, 11); v2_end(&h, 0);
	(void)add("v2 inet short", h.b, h.len, -1);
	v2_start(&h, 0x21, 0x21); v2_add(&h, inet6_addrs, 35); v2_end(&h, 0);
	(void)add("v2 inet6 short", h.b, h.len, -1);
	v2_start(&h, 0x21, 0x31); v2_add(&h, blk, 215); v2_end(&h, 0);
	(void)add("v2 unix short", h.b, h.len, -1);
	v2_start(&h, 0x20, 0x21); v2_add(&h, inet_addrs, 12); v2_end(&h, 0);
	(void)add("v2 local inet6 short", h.b, h.len, -1);
	/* TLVs that do not fit the declared length. */
	v2_start(&h, 0x21, 0x11); v2_add(&h, inet_addrs, 12); v2_add(&h, "\x04", 1); v2_end(&h, 0);
	(void)add("v2 tlv 1 byte", h.b, h.len, -1);
	v2_start(&h, 0x21, 0x11); v2_add(&h, inet_addrs, 12); v2_add(&h, "\x04\0", 2); v2_end(&h, 0);
	(void)add("v2 tlv 2 bytes", h.b, h.len, -1);
	v2_start(&h, 0x21, 0x11); v2_add(&h, inet_addrs, 12); v2_add(&h, "\x04\0\x05" "abcd", 7);
	v2_end(&h, 0);
	(void)add("v2 tlv overruns by one", h.b, h.len, -1);
	v2_start(&h, 0x21, 0x11); v2_add(&h, inet_addrs, 12); v2_add(&h, "\x04\xff\xff", 3);
	v2_end(&h, 0);
	(void)add("v2 tlv length 65535", h.b, h.len, -1);
	/* CRC32C: wrong, the wrong size, twice. */
	v2_start(&h, 0x21, 0x11); v2_add(&h, inet_addrs, 12); v2_end(&h, 1);
	h.b[h.len - 1] ^= 1;
	(void)add("v2 crc wrong", h.b, h.len, -1);
	v2_start(&h, 0x21, 0x11); v2_add(&h, inet_addrs, 12); v2_tlv(&h, 0x03, "abc", 3);
	v2_end(&h, 0);
	(void)add("v2 crc 3 bytes", h.b, h.len, -1);
	v2_start(&h, 0x21, 0x11); v2_add(&h, inet_addrs, 12); v2_tlv(&h, 0x03, "abcde", 5);
	v2_end(&h, 0);
	(void)add("v2 crc 5 bytes", h.b, h.len, -1);
	v2_start(&h, 0x21, 0x11); v2_add(&h, inet_addrs, 12); v2_tlv(&h, 0x03, "abcd", 4);
	v2_end(&h, 1);
	(void)add("v2 crc twice", h.b, h.len, -1);
	/* Hostile lengths, refused on the 16th byte without waiting for them. */
	v2_start(&h, 0x21, 0x11); h.b[14] = 0xff; h.b[15] = 0xff;
	(void)add("v2 length 65535", h.b, 16, -1);
	v2_start(&h, 0x21, 0x11); h.b[14] = (PROXY_HDR_MAX - 15) >> 8;
	h.b[15] = (unsigned char)(PROXY_HDR_MAX - 15);
	(void)add("v2 length PROXY_HDR_MAX-15", h.b, 16, -1);
	v2_start(&h, 0x21, 0x11); h.b[14] = 0; h.b[15] = 12;
	(void)add("v2 truncated addresses", h.b, 20, -2);
	(void)add("v2 signature off by one bit", "\r\n\r\n\0\r\nQUIT\x0b", 12, -1);
	(void)add("v2 signature, then SMTP", "\r\n\r\n\0\r\nEHLO x\r\n", 15, -1);
}

/* Headers a real HAProxy 2.6.12 (Debian 12) sent to a Python socket
 * (tests/proxy/test_haproxy_headers.py), each followed by the client's
 * first line: the address is the one the client bound, the port the one
 * the kernel gave it.  len is the header's, without that line. */
static const struct {
	const char *name, *in;
	size_t len;
	int version, crc;
	unsigned ntlv;
	const char *src, *dst;
	unsigned sport, dport;
} captured[] = {
	{ "haproxy send-proxy",
	  "PROXY TCP4 127.0.0.7 127.0.0.1 56583 38411\r\nEHLO probe\r\n", 44, 1, 0, 0,
	  "127.0.0.7", "127.0.0.1", 56583, 38411 },
	{ "haproxy send-proxy, IPv6 client",
	  "PROXY TCP6 ::1 ::1 32840 36241\r\nEHLO probe\r\n", 32, 1, 0, 0,
	  "::1", "::1", 32840, 36241 },
	{ "haproxy send-proxy-v2",
	  "\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a\x21\x11\x00\x0c\x7f\x00\x00\x07\x7f"
	  "\x00\x00\x01\xd1\x0b\xa2\xe1\x45\x48\x4c\x4f\x20\x70\x72\x6f\x62\x65\x0d\x0a", 28, 2, 0,
	  0, "127.0.0.7", "127.0.0.1", 53515, 41697 },
	{ "haproxy send-proxy-v2 crc32c,unique-id",
	  "\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a\x21\x11\x00\x44\x7f\x00\x00\x07\x7f"
	  "\x00\x00\x01\x8e\xf5\xa5\x63\x03\x00\x04\x1f\x3f\x46\xda\x05\x00\x2e\x37\x46\x30\x30"
	  "\x30\x30\x30\x37\x3a\x38\x45\x46\x35\x5f\x37\x46\x30\x30\x30\x30\x30\x31\x3a\x41\x35"
	  "\x36\x33\x5f\x36\x42\x31\x36\x45\x38\x32\x44\x5f\x30\x30\x30\x32\x3a\x34\x44\x43\x30"
	  "\x45\x48\x4c\x4f\x20\x70\x72\x6f\x62\x65\x0d\x0a", 84, 2, 1, 2,
	  "127.0.0.7", "127.0.0.1", 36597, 42339 },
	{ "haproxy send-proxy-v2 over TLS: ssl,cert-cn,ssl-cipher,cert-sig,cert-key,authority,crc32c",
	  "\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a\x21\x11\x00\x73\x7f\x00\x00\x08\x7f"
	  "\x00\x00\x01\xae\x2f\xb5\xd9\x03\x00\x04\xb3\x35\xea\xd4\x01\x00\x04\x73\x6d\x74\x70"
	  "\x02\x00\x0f\x6d\x78\x2e\x65\x78\x61\x6d\x70\x6c\x65\x2e\x74\x65\x73\x74\x20\x00\x44"
	  "\x01\x00\x00\x00\x00\x21\x00\x07\x54\x4c\x53\x76\x31\x2e\x33\x25\x00\x05\x45\x43\x32"
	  "\x35\x36\x24\x00\x11\x65\x63\x64\x73\x61\x2d\x77\x69\x74\x68\x2d\x53\x48\x41\x32\x35"
	  "\x36\x23\x00\x16\x54\x4c\x53\x5f\x41\x45\x53\x5f\x32\x35\x36\x5f\x47\x43\x4d\x5f\x53"
	  "\x48\x41\x33\x38\x34\x45\x48\x4c\x4f\x20\x70\x72\x6f\x62\x65\x0d\x0a", 131, 2, 1, 4,
	  "127.0.0.8", "127.0.0.1", 44591, 46553 },
	{ "haproxy send-proxy-v2, IPv4 client of a dual-stack bind",
	  "\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a\x21\x21\x00\x24\x00\x00\x00\x00"
	  "\x00\x00\x00\x00\x00\x00\xff\xff\x7f\x00\x00\x09\x00\x00\x00\x00\x00\x00\x00\x00"
	  "\x00\x00\xff\xff\x7f\x00\x00\x01\xa3\x83\xb6\x17\x45\x48\x4c\x4f\x20\x63\x6c\x69"
	  "\x65\x6e\x74\x2e\x65\x78\x61\x6d\x70\x6c\x65\x0d\x0a", 52, 2, 0, 0,
	  "::ffff:127.0.0.9", "::ffff:127.0.0.1", 41859, 46615 },
};

static void captured_cases(void)
{
	for (size_t k = 0; k < sizeof captured / sizeof captured[0]; k++) {
		good(captured[k].name, captured[k].in, captured[k].len, captured[k].version,
		     PROXY_FORWARDED, captured[k].src, captured[k].sport, captured[k].dst,
		     captured[k].dport);
		cases[ncases - 1].crc = captured[k].crc;
		cases[ncases - 1].ntlv = (int)captured[k].ntlv;
	}
}

/* ------------------------------------------------------------ the tests */

/* Does h say what c wants? */
static int matches(const struct pcase *c, const struct proxy_hdr *h)
{
	char a[IP_TEXT_MAX], b[IP_TEXT_MAX];

	if (h->version != c->version || h->kind != c->kind || h->crc32c != (unsigned)c->crc ||
	    (c->ntlv >= 0 && h->ntlv != c->ntlv))
		return 0;
	if (c->kind != PROXY_FORWARDED)
		return h->src.family == 0 && h->dst.family == 0 && h->src_port == 0 &&
		       h->dst_port == 0;
	fmt_ip(&h->src, a, sizeof a);
	fmt_ip(&h->dst, b, sizeof b);
	return strcmp(a, c->src) == 0 && strcmp(b, c->dst) == 0 && h->src_port == c->sport &&
	       h->dst_port == c->dport;
}

static void test_whole(void)
{
	for (size_t k = 0; k < ncases; k++) {
		const struct pcase *c = &cases[k];
		struct proxy_hdr h;
		int got = parse(c->in, c->len, &h);

		CHECKF(got == c->result, "%s: got %d, want %d", c->name, got, c->result);
		if (got > 0 && c->result > 0)
			CHECKF(matches(c, &h), "%s: fields", c->name);
	}
}

/* Every prefix says "need more" or, for a bad header, already "bad"; a
 * good header is never answered before its last byte is in. */
static void test_truncated(void)
{
	for (size_t k = 0; k < ncases; k++) {
		const struct pcase *c = &cases[k];

		for (size_t cut = 0; cut < c->len; cut++) {
			struct proxy_hdr h;
			int got = parse(c->in, cut, &h);

			CHECKF(got == -2 || (got == -1 && c->result == -1), "%s cut at %zu: %d", c->name,
			       cut, got);
		}
	}
}

/* As a reader gets them: the bytes arrive in chunks of n, the header is
 * parsed after each, and the client's first line is behind it in the
 * same stream.  The first answer that is not -2 is the whole's, and a
 * good header's length never takes a byte of the client's line. */
static void test_chunks(void)
{
	static const char after[] = "EHLO client.example\r\n";

	for (size_t k = 0; k < ncases; k++) {
		const struct pcase *c = &cases[k];
		size_t total = c->len + sizeof after - 1;
		unsigned char *stream = malloc(total);

		memcpy(stream, c->in, c->len);
		memcpy(stream + c->len, after, sizeof after - 1);
		for (size_t n = 1; n <= total; n++) {
			size_t have = 0;
			int got = -2;
			struct proxy_hdr h;

			while (got == -2 && have < total) {
				have += n < total - have ? n : total - have;
				got = parse(stream, have, &h);
			}
			/* After a partial header, the line may be bad or (a v2 address
			 * block) be read as the rest: either way, as the whole stream. */
			int want = c->result == -2 ? parse(stream, total, &h) : c->result;
			CHECKF(got == want, "%s in chunks of %zu: %d, want %d", c->name, n, got, want);
			if (got > 0 && c->result > 0)
				CHECKF(matches(c, &h), "%s in chunks of %zu: fields", c->name, n);
		}
		free(stream);
	}
}

/* In two pieces at every offset: after the first, -2 or the whole's -1;
 * after both, the whole's answer. */
static void test_split(void)
{
	for (size_t k = 0; k < ncases; k++) {
		const struct pcase *c = &cases[k];
		struct proxy_hdr h;

		for (size_t at = 0; at <= c->len; at++) {
			int first = parse(c->in, at, &h);
			CHECKF(first == -2 || (first == -1 && c->result == -1) ||
			       (at == c->len && first == c->result), "%s split at %zu: %d", c->name, at,
			       first);
			if (first != -2)
				continue;
			int got = parse(c->in, c->len, &h);
			CHECKF(got == c->result && (got < 0 || matches(c, &h)), "%s split at %zu: then %d",
			       c->name, at, got);
		}
	}
}

/* One byte changed at every position of every good header, to every
 * value: the answer is still one the header promises and nothing is read
 * past the input (ASan).  The signature is never anything else, nor v1's
 * CRLF.  A header signed with CRC32C is never taken as signed after a
 * change (a CRC finds every one-byte error), and a change in its
 * addresses is refused; a change in the TLVs' framing may unsign it (the
 * CRC TLV swallowed or cut off), which is the protocol's, not ours. */
static void test_garbage(void)
{
	for (size_t k = 0; k < ncases; k++) {
		const struct pcase *c = &cases[k];

		if (c->result <= 0)
			continue;
		size_t alen = c->version == 2 ? (size_t[]){ 0, 12, 36, 216 }[c->in[13] >> 4 & 3] : 0;
		unsigned char *b = malloc(c->len);
		for (size_t i = 0; i < c->len; i++) {
			for (unsigned v = 0; v < 256; v++) {
				struct proxy_hdr h;

				if (v == c->in[i])
					continue;
				memcpy(b, c->in, c->len);
				b[i] = (unsigned char)v;
				int got = proxy_parse(b, c->len, &h);
				CHECKF(got == -1 || got == -2 || (got > 0 && (size_t)got <= c->len),
				       "%s: byte %zu = %u: %d", c->name, i, v, got);
				if (got > 0)
					CHECKF(h.version == c->version && h.kind <= PROXY_UNKNOWN,
					       "%s: byte %zu = %u: version %u kind %u", c->name, i, v,
					       h.version, h.kind);
				if (c->crc && got > 0)
					CHECKF(!h.crc32c, "%s: byte %zu = %u passed the CRC", c->name, i, v);
				if (c->crc && i >= 16 && i < 16 + alen)
					CHECKF(got == -1, "%s: address byte %zu = %u: %d", c->name, i, v, got);
				if ((c->version == 1 && (i < 6 || i >= c->len - 2)) ||
				    (c->version == 2 && i < 12))
					CHECKF(got == -1, "%s: byte %zu = %u: %d", c->name, i, v, got);
			}
		}
		free(b);
	}
}

/* A client that speaks first (SMTP, TLS, HTTP) is refused on its first
 * byte: only 'P' (v1) and CR (v2) can start a header. */
static void test_first_byte(void)
{
	for (unsigned v = 0; v < 256; v++) {
		unsigned char b = (unsigned char)v;
		struct proxy_hdr h;
		int got = proxy_parse(&b, 1, &h);

		CHECKF(got == (v == 'P' || v == '\r' ? -2 : -1), "first byte %u: %d", v, got);
	}
	struct proxy_hdr h;
	CHECK(proxy_parse((const unsigned char *)"", 0, &h) == -2);
}

/* v1 without its CRLF: "need more" up to PROXY_V1_MAX bytes, then bad. */
static void test_v1_limit(void)
{
	unsigned char b[PROXY_V1_MAX + 10];
	struct proxy_hdr h;

	memcpy(b, "PROXY UNKNOWN ", 14);
	memset(b + 14, 'a', sizeof b - 14);
	for (size_t n = 14; n <= sizeof b; n++)
		CHECKF(parse(b, n, &h) == (n < PROXY_V1_MAX ? -2 : -1), "%zu bytes without CRLF", n);
	/* The CRLF at the very end of PROXY_V1_MAX bytes, and one later. */
	b[PROXY_V1_MAX - 2] = '\r';
	b[PROXY_V1_MAX - 1] = '\n';
	CHECK(parse(b, PROXY_V1_MAX, &h) == PROXY_V1_MAX && h.kind == PROXY_UNKNOWN);
	b[PROXY_V1_MAX - 2] = 'a';
	b[PROXY_V1_MAX - 1] = '\r';
	b[PROXY_V1_MAX] = '\n';
	CHECK(parse(b, PROXY_V1_MAX, &h) == -1);
	CHECK(parse(b, PROXY_V1_MAX + 1, &h) == -1);
}

/* v2: every declared length from 0 to 65535 on an INET header: refused on
 * its 16th byte when it could not hold the addresses or would pass
 * PROXY_HDR_MAX; else "need more" until the bytes are in. */
static void test_v2_lengths(void)
{
	struct v2 h;
	struct proxy_hdr out;

	for (unsigned len = 0; len <= 0xffff; len++) {
		v2_start(&h, 0x21, 0x11);
		h.b[14] = (unsigned char)(len >> 8);
		h.b[15] = (unsigned char)len;
		int got = parse(h.b, 16, &out);
		int fits = len >= 12 && 16 + len <= PROXY_HDR_MAX;
		CHECKF(got == (fits ? -2 : -1), "length %u: %d", len, got);
	}
}

/* proxy_refusal() names why a refused header was refused, for the log. */
static void test_refusal(void)
{
#define R(in, why) { in, sizeof(in) - 1, why }
	static const struct {
		const char *in;
		size_t len;
		const char *why;
	} t[] = {
		R("EHLO client.example\r\n", "missing"),
		R("\x16\x03\x01\x02\x00\x01", "missing"),
		R("", "missing"),
		R("PROXY TCP4 127.0.0.05 127.0.0.1 4000 25\r\n", "malformed"),
		R("PROXY TCP4 127.0.0.5 127.0.0.1 4000 25\n", "malformed"),
		R("PROXY TCP6 127.0.0.5 127.0.0.1 4000 25\r\n", "malformed"),
		R("PROXY UDP4 127.0.0.5 127.0.0.1 4000 25\r\n", "malformed"),
		R("\r\n\r\n\0\r\nQUIT\n\x21\x11\xff\xff", "too-long"),
		R("\r\n\r\n\0\r\nQUIT\n\x21\x11\x07\xf1", "too-long"),
		R("\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0b", "malformed"),
		R("\r\n\r\n\0\r\nQUIT\n\x31\x11\x00\x0c", "malformed"),
		R("\r\n\r\n\0\r\nQUIT\n\x22", "malformed"),
	};
	unsigned char b[PROXY_V1_MAX + 10];
	struct proxy_hdr h;

#undef R
	for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
		CHECKF(t[k].len == 0 || parse(t[k].in, t[k].len, &h) == -1, "case %zu parses", k);
		CHECKF(strcmp(proxy_refusal((const unsigned char *)t[k].in, t[k].len), t[k].why) == 0,
		       "case %zu: %s", k, proxy_refusal((const unsigned char *)t[k].in, t[k].len));
	}
	/* A v1 line refused for its length, at every length that refuses it;
	 * a bad byte inside it instead is malformed. */
	memcpy(b, "PROXY UNKNOWN ", 14);
	memset(b + 14, 'a', sizeof b - 14);
	for (size_t n = PROXY_V1_MAX; n <= sizeof b; n++)
		CHECKF(parse(b, n, &h) == -1 && strcmp(proxy_refusal(b, n), "too-long") == 0, "%zu", n);
	b[PROXY_V1_MAX - 3] = '\t';
	CHECK(parse(b, PROXY_V1_MAX, &h) == -1 && strcmp(proxy_refusal(b, PROXY_V1_MAX), "malformed") == 0);
	/* Every refused case of the tables gets a word. */
	for (size_t k = 0; k < ncases; k++) {
		const char *why = proxy_refusal(cases[k].in, cases[k].len);

		if (cases[k].result == -1)
			CHECKF(strcmp(why, "missing") == 0 || strcmp(why, "too-long") == 0 ||
			       strcmp(why, "malformed") == 0, "%s: %s", cases[k].name, why);
	}
}

static void test_crc_check_value(void)
{
	/* The CRC-32C check value (RFC 3720 B.4, and every CRC catalogue). */
	CHECK(test_crc32c((const unsigned char *)"123456789", 9) == 0xe3069283u);
}

static void test_client(void)
{
	struct proxy_hdr h;
	struct ipaddr peer, got;
	char buf[IP_TEXT_MAX];

	ip_parse("10.0.0.5", 8, &peer);
	static const char v4[] = "PROXY TCP4 192.0.2.1 198.51.100.2 1 25\r\n";
	CHECK(parse(v4, sizeof v4 - 1, &h) == (int)sizeof v4 - 1);
	proxy_client(&h, &peer, &got);
	fmt_ip(&got, buf, sizeof buf);
	CHECKF(strcmp(buf, "192.0.2.1") == 0, "%s", buf);
	/* A TCP6 header of IPv4-mapped addresses is the IPv4 client. */
	static const char mapped[] = "PROXY TCP6 ::ffff:192.0.2.1 ::ffff:198.51.100.2 1 25\r\n";
	CHECK(parse(mapped, sizeof mapped - 1, &h) == (int)sizeof mapped - 1);
	proxy_client(&h, &peer, &got);
	fmt_ip(&got, buf, sizeof buf);
	CHECKF(strcmp(buf, "192.0.2.1") == 0 && got.family == IP_V4, "%s", buf);
	/* UNKNOWN and LOCAL: the peer, unmapped. */
	CHECK(parse("PROXY UNKNOWN\r\n", 15, &h) == 15);
	ip_parse("::ffff:10.0.0.5", 15, &peer);
	proxy_client(&h, &peer, &got);
	fmt_ip(&got, buf, sizeof buf);
	CHECKF(strcmp(buf, "10.0.0.5") == 0, "%s", buf);
	CHECK(parse("\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00", 16, &h) == 16 && h.kind == PROXY_LOCAL);
	proxy_client(&h, &peer, &got);
	fmt_ip(&got, buf, sizeof buf);
	CHECKF(strcmp(buf, "10.0.0.5") == 0, "%s", buf);
	CHECK(strcmp(proxy_kind_name(PROXY_FORWARDED), "forwarded") == 0);
	CHECK(strcmp(proxy_kind_name(PROXY_LOCAL), "local") == 0);
	CHECK(strcmp(proxy_kind_name(PROXY_UNKNOWN), "unknown") == 0);
	CHECK(strcmp(proxy_kind_name(9), "?") == 0);
}

/* conf text -> conf_parse + conf_finish; returns 0 or -1 with err. */
static int load(const char *text, struct conf *c, char *err, size_t cap)
{
	conf_defaults(c);
	if (conf_parse(text, strlen(text), "t.conf", c, err, cap) != 0)
		return -1;
	return conf_finish(c, "t.conf", err, cap);
}

static void test_trusted(void)
{
	static struct conf c;
	char err[512];
	struct ipaddr ip;

	CHECKF(load("domain example.org\nlisten 127.0.0.1:25\nlisten 0.0.0.0:2525 proxy\n"
	            "proxy-from 10.1.0.0/16\nproxy-from 2001:db8::5\n", &c, err, sizeof err) == 0,
	       "%s", err);
	CHECK(c.nlisteners == 2 && !c.listeners[0].proxy && c.listeners[1].proxy);
	CHECK(c.proxy_listen_line == 3 && c.nproxy_from == 2 && c.proxy_from_line == 4);
	static const struct { const char *ip; int want; } peers[] = {
		{ "10.1.0.1", 1 }, { "10.1.255.255", 1 }, { "10.2.0.1", 0 }, { "10.0.255.255", 0 },
		{ "::ffff:10.1.2.3", 1 }, { "::ffff:10.2.2.3", 0 }, { "2001:db8::5", 1 },
		{ "2001:db8::6", 0 }, { "127.0.0.1", 0 }, { "::", 0 },
	};
	for (size_t k = 0; k < sizeof peers / sizeof peers[0]; k++) {
		CHECK(ip_parse(peers[k].ip, strlen(peers[k].ip), &ip) == 0);
		CHECKF(proxy_trusted(&c, &ip) == peers[k].want, "%s", peers[k].ip);
	}
	/* Nobody is trusted by a config without proxy-from. */
	CHECK(load("domain example.org\n", &c, err, sizeof err) == 0);
	CHECK(ip_parse("10.1.0.1", 8, &ip) == 0 && proxy_trusted(&c, &ip) == 0);
}

static void test_conf(void)
{
	static struct conf c;
	static char out[65536];
	char err[512];

	/* Each without the other, with the line at fault. */
	CHECK(load("domain example.org\n\nlisten 127.0.0.1:25 proxy tls=none\n", &c, err,
	           sizeof err) == -1);
	CHECKF(strncmp(err, "t.conf:3: listen 127.0.0.1:25 proxy: no proxy-from", 50) == 0, "%s",
	       err);
	CHECK(load("domain example.org\nproxy-from 10.0.0.0/8\nproxy-from 10.0.0.1\n", &c, err,
	           sizeof err) == -1);
	CHECKF(strcmp(err, "t.conf:2: proxy-from: no listener has the proxy option"
	                   " (listen ADDR:PORT proxy)") == 0, "%s", err);
	CHECK(load("domain example.org\nlisten 127.0.0.1:25 proxy\nproxy-from 10.0.0.1/8\n", &c, err,
	           sizeof err) == -1);
	CHECKF(strstr(err, "t.conf:3: proxy-from: host bits set in '10.0.0.1/8'") == err, "%s", err);
	CHECK(load("domain example.org\nlisten 127.0.0.1:25 proxy\nproxy-from 10.0.0.0/8\n"
	           "proxy-from 10.0.0.0/8\n", &c, err, sizeof err) == -1);
	CHECKF(strstr(err, "t.conf:4: proxy-from: duplicate network") == err, "%s", err);
	CHECK(load("domain example.org\nlisten 127.0.0.1:25 proxy=yes\n", &c, err, sizeof err) == -1);
	CHECKF(strstr(err, "unknown option 'proxy=yes'") != NULL, "%s", err);
	/* The effective configuration says both, and reads back the same. */
	CHECKF(load("domain example.org\nlisten 127.0.0.1:25 proxy internal\n"
	            "proxy-from 192.0.2.0/24\n", &c, err, sizeof err) == 0, "%s", err);
	conf_format(&c, out, sizeof out);
	CHECKF(strstr(out, "\nlisten 127.0.0.1:25 internal proxy\n") != NULL, "%s", out);
	CHECKF(strstr(out, "\nproxy-from 192.0.2.0/24\n") != NULL, "%s", out);
	static struct conf again;
	CHECKF(load(out, &again, err, sizeof err) == 0, "%s", err);
	CHECK(again.listeners[0].proxy && again.nproxy_from == 1);
	/* Too many. */
	static char many[CONF_MAX_PROXY_FROM * 32 + 128];
	size_t n = (size_t)snprintf(many, sizeof many, "domain example.org\nlisten 127.0.0.1:25 proxy\n");
	for (unsigned k = 0; k <= CONF_MAX_PROXY_FROM; k++)
		n += (size_t)snprintf(many + n, sizeof many - n, "proxy-from 10.0.%u.0/24\n", k);
	CHECK(load(many, &c, err, sizeof err) == -1);
	CHECKF(strstr(err, "too many networks (at most 64)") != NULL, "%s", err);
}

/* --parse FILE...: one line per file, for tests/proxy/. */
static int parse_files(int argc, char **argv)
{
	static unsigned char buf[1 << 16];
	int rc = 0;

	for (int k = 0; k < argc; k++) {
		FILE *f = fopen(argv[k], "rb");
		struct proxy_hdr h;
		char a[IP_TEXT_MAX] = "-", b[IP_TEXT_MAX] = "-";

		if (f == NULL) {
			perror(argv[k]);
			rc = 111;
			continue;
		}
		size_t n = fread(buf, 1, sizeof buf, f);
		fclose(f);
		int got = proxy_parse(buf, n, &h);
		if (got <= 0) {
			printf("%s result=%d\n", argv[k], got);
			continue;
		}
		if (h.kind == PROXY_FORWARDED) {
			fmt_ip(&h.src, a, sizeof a);
			fmt_ip(&h.dst, b, sizeof b);
		}
		/* The session's address, were the peer 203.0.113.254. */
		struct ipaddr peer = { IP_V4, { 203, 0, 113, 254 } }, client;
		char cl[IP_TEXT_MAX];
		proxy_client(&h, &peer, &client);
		fmt_ip(&client, cl, sizeof cl);
		printf("%s result=%d version=%u kind=%s src=%s sport=%u dst=%s dport=%u ntlv=%u "
		       "crc32c=%u client=%s\n", argv[k], got, h.version, proxy_kind_name(h.kind), a,
		       h.src_port, b, h.dst_port, h.ntlv, h.crc32c, cl);
	}
	return rc;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--parse") == 0)
		return parse_files(argc - 2, argv + 2);
	v1_cases();
	v2_cases();
	captured_cases();
	RUN(test_crc_check_value);
	RUN(test_whole);
	RUN(test_truncated);
	RUN(test_chunks);
	RUN(test_split);
	RUN(test_garbage);
	RUN(test_first_byte);
	RUN(test_v1_limit);
	RUN(test_v2_lengths);
	RUN(test_refusal);
	RUN(test_client);
	RUN(test_trusted);
	RUN(test_conf);
	return t_main_end();
}
