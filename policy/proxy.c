/* policy/proxy.c -- the PROXY protocol header; see proxy.h */
#include <string.h>

#include "proxy.h"
#include "conf.h"
#include "wire.h"

static const unsigned char v1_sig[6] = { 'P', 'R', 'O', 'X', 'Y', ' ' };
static const unsigned char v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };

/* v2 fields (proxy-protocol.txt 2.2). */
#define V2_VERSION    0x2
#define V2_CMD_LOCAL  0x0
#define V2_CMD_PROXY  0x1
#define V2_AF_UNSPEC  0x0
#define V2_AF_INET    0x1
#define V2_AF_INET6   0x2
#define V2_AF_UNIX    0x3
#define V2_TR_UNSPEC  0x0
#define V2_TR_STREAM  0x1
#define V2_TR_DGRAM   0x2
#define V2_TLV_CRC32C 0x03
/* The address block's size for each family: UNSPEC has none. */
static const size_t v2_addr_len[4] = { 0, 12, 36, 216 };

/* Does buf[0..len) begin as sig does, as far as either goes? */
static int starts_as(const unsigned char *buf, size_t len, const unsigned char *sig, size_t n)
{
	return memcmp(buf, sig, len < n ? len : n) == 0;
}

/* ---------------------------------------------------------------- v1 */

/* The line's length without its CRLF, -2 or -1.  Only printable ASCII may
 * come before the CR, and the CRLF must end the line within PROXY_V1_MAX
 * bytes; each byte is judged as it comes, so a prefix answers the same. */
static int v1_line(const unsigned char *b, size_t len)
{
	for (size_t k = 0; k < len && k < PROXY_V1_MAX; k++) {
		if (b[k] == '\r') {
			if (k + 2 > PROXY_V1_MAX)
				return -1;
			if (k + 1 == len)
				return -2;
			return b[k + 1] == '\n' ? (int)k : -1;
		}
		if (b[k] < 0x20 || b[k] > 0x7e)
			return -1;
	}
	return len >= PROXY_V1_MAX ? -1 : -2;
}

/* A port: decimal 0..65535, no leading zero (which some read as octal). */
static int v1_port(const char *s, size_t n, uint16_t *out)
{
	unsigned v = 0;

	if (n == 0 || n > 5 || (s[0] == '0' && n > 1))
		return -1;
	for (size_t k = 0; k < n; k++) {
		if (s[k] < '0' || s[k] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[k] - '0');
	}
	if (v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

/* "SRC DST SPORT DPORT" at s[0..n): four non-empty fields, one space
 * apart, the addresses of the family the protocol named. */
static int v1_addrs(const char *s, size_t n, uint8_t family, struct proxy_hdr *h)
{
	const char *f[4];
	size_t flen[4], nf = 0, start = 0;

	for (size_t k = 0; k <= n; k++) {
		if (k < n && s[k] != ' ')
			continue;
		if (k == start || nf == 4)
			return -1; /* an empty field (two spaces, an edge) or a fifth */
		f[nf] = s + start;
		flen[nf++] = k - start;
		start = k + 1;
	}
	if (nf != 4)
		return -1;
	if (ip_parse(f[0], flen[0], &h->src) != 0 || h->src.family != family ||
	    ip_parse(f[1], flen[1], &h->dst) != 0 || h->dst.family != family ||
	    v1_port(f[2], flen[2], &h->src_port) != 0 || v1_port(f[3], flen[3], &h->dst_port) != 0)
		return -1;
	return 0;
}

static int v1_parse(const unsigned char *buf, size_t len, struct proxy_hdr *out)
{
	struct proxy_hdr h;
	int n = v1_line(buf, len);

	if (n < 0)
		return n;
	const char *s = (const char *)buf + sizeof v1_sig;
	size_t rest = (size_t)n - sizeof v1_sig;

	memset(&h, 0, sizeof h);
	h.version = 1;
	/* "UNKNOWN", alone or followed by anything (which the spec says to
	 * ignore): the proxy could not name the client. */
	if (rest >= 7 && memcmp(s, "UNKNOWN", 7) == 0 && (rest == 7 || s[7] == ' ')) {
		h.kind = PROXY_UNKNOWN;
	} else if (rest > 5 && memcmp(s, "TCP", 3) == 0 && (s[3] == '4' || s[3] == '6') &&
	           s[4] == ' ') {
		h.kind = PROXY_FORWARDED;
		if (v1_addrs(s + 5, rest - 5, s[3] == '4' ? IP_V4 : IP_V6, &h) != 0)
			return -1;
	} else {
		return -1;
	}
	*out = h;
	return n + 2;
}

/* ---------------------------------------------------------------- v2 */

/* CRC-32C (Castagnoli, reflected polynomial 0x82f63b78) of b[0..n) with
 * the four bytes at zero_at read as zeros, as the spec computes the
 * CRC32C TLV.  Bitwise: headers are short and this runs once per
 * connection. */
static uint32_t crc32c(const unsigned char *b, size_t n, size_t zero_at)
{
	uint32_t crc = 0xffffffffu;

	for (size_t k = 0; k < n; k++) {
		crc ^= k - zero_at < 4 ? 0u : b[k];
		for (int i = 0; i < 8; i++)
			crc = crc >> 1 ^ (0x82f63b78u & (0u - (crc & 1u)));
	}
	return ~crc;
}

/* The TLVs, the rest of r (whose bytes lie in the header b[0..total)):
 * each a type, a 16-bit length and that many bytes, the last ending
 * exactly at the end.  Skipped, but a CRC32C one is checked against the
 * whole header.  A TLV that does not fit leaves r bad. */
static void v2_tlvs(struct wire_rd *r, const unsigned char *b, size_t total,
                    struct proxy_hdr *h)
{
	const unsigned char *crc = NULL;

	while (wire_ok(r) == 0 && r->left > 0) {
		uint8_t type = wire_u8(r);
		uint16_t n = wire_u16(r);
		const unsigned char *v = wire_bytes(r, n);

		if (v == NULL)
			return;
		if (type == V2_TLV_CRC32C) {
			if (n != 4 || crc != NULL)
				wire_fail(r);
			crc = v;
		}
		h->ntlv++;
	}
	if (wire_ok(r) == 0 && crc != NULL) {
		if (crc32c(b, total, (size_t)(crc - b)) != wire_be32(crc))
			wire_fail(r);
		h->crc32c = 1;
	}
}

/* The fixed 16 bytes, judged as they come: the version and command, the
 * family and transport, the length against the cap and the family's
 * addresses.  Returns the header's whole length, -2 or -1. */
static int v2_head(const unsigned char *b, size_t len)
{
	if (len < sizeof v2_sig + 1)
		return -2;
	unsigned cmd = b[12] & 0x0fu;
	if (b[12] >> 4 != V2_VERSION || cmd > V2_CMD_PROXY)
		return -1;
	if (len < 14)
		return -2;
	unsigned af = b[13] >> 4, tr = b[13] & 0x0fu;
	if (af > V2_AF_UNIX || tr > V2_TR_DGRAM || (cmd == V2_CMD_PROXY && tr == V2_TR_DGRAM))
		return -1;
	if (len < PROXY_V2_HEAD)
		return -2;
	size_t body = wire_be16(b + 14);
	if (PROXY_V2_HEAD + body > PROXY_HDR_MAX || body < v2_addr_len[af])
		return -1;
	return (int)(PROXY_V2_HEAD + body);
}

/* Once the whole header is in: what follows the fixed 16 bytes is read
 * with policy/wire.h's reader, whose errors stick, so that no length in
 * the header can take a read past it. */
static int v2_parse(const unsigned char *b, size_t len, struct proxy_hdr *out)
{
	struct proxy_hdr h;
	struct wire_rd r;
	int total = v2_head(b, len);

	if (total < 0)
		return total;
	if (len < (size_t)total)
		return -2;
	unsigned af = b[13] >> 4, tr = b[13] & 0x0fu;

	memset(&h, 0, sizeof h);
	h.version = 2;
	if ((b[12] & 0x0fu) == V2_CMD_LOCAL)
		h.kind = PROXY_LOCAL;
	else if (tr != V2_TR_STREAM || (af != V2_AF_INET && af != V2_AF_INET6))
		h.kind = PROXY_UNKNOWN;
	else
		h.kind = PROXY_FORWARDED;
	wire_rd_init(&r, b + PROXY_V2_HEAD, (size_t)total - PROXY_V2_HEAD);
	if (h.kind == PROXY_FORWARDED) {
		size_t n = af == V2_AF_INET ? 4 : 16;
		const unsigned char *src = wire_bytes(&r, n), *dst = wire_bytes(&r, n);

		h.src_port = wire_u16(&r);
		h.dst_port = wire_u16(&r);
		if (src != NULL && dst != NULL) {
			h.src.family = h.dst.family = af == V2_AF_INET ? IP_V4 : IP_V6;
			memcpy(h.src.a, src, n);
			memcpy(h.dst.a, dst, n);
		}
	} else {
		(void)wire_bytes(&r, v2_addr_len[af]);  /* not used, as the spec says */
	}
	v2_tlvs(&r, b, (size_t)total, &h);
	if (wire_end(&r) != 0)
		return -1;
	*out = h;
	return total;
}

/* ---------------------------------------------------------------- API */

int proxy_parse(const unsigned char *buf, size_t len, struct proxy_hdr *out)
{
	if (len == 0)
		return -2;
	if (starts_as(buf, len, v1_sig, sizeof v1_sig))
		return len < sizeof v1_sig ? -2 : v1_parse(buf, len, out);
	if (starts_as(buf, len, v2_sig, sizeof v2_sig))
		return v2_parse(buf, len, out);
	return -1;
}

const char *proxy_refusal(const unsigned char *buf, size_t len)
{
	size_t k = 0;

	if (len == 0)
		return "missing";
	if (starts_as(buf, len, v2_sig, sizeof v2_sig)) {
		if (len >= PROXY_V2_HEAD && PROXY_V2_HEAD + wire_be16(buf + 14) > PROXY_HDR_MAX)
			return "too-long";
		return "malformed";
	}
	if (!starts_as(buf, len, v1_sig, sizeof v1_sig))
		return "missing";
	/* v1_line()'s rule: a CR that could end the line must come before
	 * byte PROXY_V1_MAX - 1; printable bytes up to there leave none. */
	while (k < len && k < PROXY_V1_MAX && buf[k] >= 0x20 && buf[k] <= 0x7e)
		k++;
	return k >= PROXY_V1_MAX - 1 ? "too-long" : "malformed";
}

int proxy_trusted(const struct conf *c, const struct ipaddr *peer)
{
	struct ipaddr ip = *peer;

	ip_unmap(&ip);
	for (size_t k = 0; k < c->nproxy_from; k++)
		if (cidr_match(&c->proxy_from[k], &ip))
			return 1;
	return 0;
}

void proxy_client(const struct proxy_hdr *h, const struct ipaddr *peer, struct ipaddr *client)
{
	*client = h->kind == PROXY_FORWARDED ? h->src : *peer;
	ip_unmap(client);
}

const char *proxy_kind_name(unsigned kind)
{
	static const char *const names[] = { "forwarded", "local", "unknown" };

	return kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}
