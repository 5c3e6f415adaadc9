/*
 * policy/proxy.h -- the PROXY protocol header (HAProxy's proxy-protocol.txt,
 * versions 1 and 2), which a TCP load balancer writes before the client's
 * first byte to say who the client is.  Pure: bytes in, a verdict out.
 *
 * Trust: the header is believed only on a listener marked `proxy`, and only
 * from a peer in a `proxy-from` network (proxy_trusted()).  Anyone else who
 * sends one is lying about their address; the caller closes such a
 * connection before it reads a byte (docs/security.md "Behind a load balancer").
 *
 * The two versions are told apart by their signatures, so that no byte is
 * ever read both as a header and as SMTP:
 *
 *   v1  "PROXY TCP4 SRC DST SPORT DPORT\r\n" (or TCP6, or "PROXY UNKNOWN...\r\n"),
 *       one line of at most PROXY_V1_MAX bytes, CRLF included.  Exactly one
 *       space between fields; addresses in the family the protocol names,
 *       IPv4 as four decimal octets without leading zeros, IPv6 as RFC 4291
 *       text (no zone, no brackets); ports decimal 0..65535 without leading
 *       zeros.  After UNKNOWN any printable text may follow up to the CRLF.
 *       Only printable ASCII before the CRLF; a bare CR or LF is bad.
 *   v2  the 12-byte signature "\r\n\r\n\0\r\nQUIT\n", then version/command
 *       (0x20 LOCAL, 0x21 PROXY), family/transport, a 16-bit length of what
 *       follows (big-endian), the addresses (INET 12 bytes, INET6 36, UNIX
 *       216) and TLVs (type, 16-bit length, value) filling the rest of the
 *       length exactly.  TLVs are skipped, but each must fit; a CRC32C TLV
 *       (type 0x03, 4 bytes) must match the header, as the spec requires
 *       of a receiver that checks it.
 *
 * What the session's address becomes (proxy_client()):
 *   PROXY_FORWARDED  a client's TCP connection: the header's source address.
 *   PROXY_LOCAL      v2 LOCAL: the proxy's own connection (its health check);
 *                    the connection's real peer, the proxy, as the spec says.
 *   PROXY_UNKNOWN    v1 UNKNOWN, or v2 PROXY for a family the header does
 *                    not name (UNSPEC, or a UNIX socket, or an unspecified
 *                    transport): the spec lets the receiver use the real
 *                    peer, the proxy, or refuse; we take the real peer, as
 *                    for LOCAL, so an admin must not list a proxy's address
 *                    in a relay-network unless that is meant
 *                    (`moat check` warns).
 * A v2 PROXY over datagrams (transport DGRAM) is bad: the connection
 * carrying it is a TCP stream.  Every other value the spec leaves
 * unassigned (a version other than 2, a command other than LOCAL and PROXY,
 * a family above UNIX, a transport above DGRAM) is bad, as the spec says.
 */
#ifndef MOAT_POLICY_PROXY_H
#define MOAT_POLICY_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include "net.h"

struct conf;

/* The longest v1 line, CRLF included ("PROXY UNKNOWN" with two full IPv6
 * addresses and ports). */
#define PROXY_V1_MAX 107
/* The longest header accepted, of either version, and so the most a caller
 * ever buffers before proxy_parse() answers other than -2.  The protocol
 * allows 16 + 65535 bytes; HAProxy with every TLV it can send (ALPN, SNI,
 * unique ID, the SSL block with the client certificate's CN, CRC32C) stays
 * far below 1 KiB, and Postfix takes at most 258.  A longer v2 length is
 * refused as soon as its 16 bytes are in. */
#define PROXY_HDR_MAX 2048
#define PROXY_V2_HEAD 16

enum proxy_kind {
	PROXY_FORWARDED = 0,  /* src/dst hold the client's connection */
	PROXY_LOCAL,          /* v2 LOCAL: the proxy's own (health check) */
	PROXY_UNKNOWN         /* v1 UNKNOWN, v2 PROXY of UNSPEC or UNIX */
};

struct proxy_hdr {
	uint8_t       version;   /* 1 or 2 */
	uint8_t       kind;      /* enum proxy_kind */
	/* PROXY_FORWARDED only (zeroed otherwise): the client (src) and the
	 * address it connected to on the proxy (dst), as the header gave them:
	 * a TCP6 header may hold IPv4-mapped addresses (proxy_client() unmaps). */
	struct ipaddr src, dst;
	uint16_t      src_port, dst_port;
	/* v2 only: the TLVs skipped, and whether one was a CRC32C that matched. */
	uint16_t      ntlv;
	unsigned      crc32c : 1;
};

/*
 * Parse a PROXY header at the start of buf[0..len).  Returns the header's
 * length (the bytes to drop before the client's own, which may follow in
 * buf) when it is complete and good; -2 when more bytes are needed (never
 * once len >= PROXY_HDR_MAX); -1 when it is bad.  Checks go left to right
 * as the bytes come, so a prefix gives -2 or the whole's answer, and a
 * first byte that can start neither signature ('P' for v1, CR for v2) is
 * -1 at once: a client that speaks SMTP first is refused without a wait.
 * *out is written only on success; nothing in it points into buf.
 */
int proxy_parse(const unsigned char *buf, size_t len, struct proxy_hdr *out);

/* Why proxy_parse() answered -1 for buf[0..len), in one word for the log:
 *   "missing"   the bytes begin as neither signature: the peer spoke first
 *               without a header (SMTP, a TLS ClientHello), a load balancer
 *               not set to send one, or a client that reached the node
 *               from inside proxy-from;
 *   "too-long"  the header would run past its cap: a v1 line with no CRLF
 *               within PROXY_V1_MAX bytes, a v2 length over PROXY_HDR_MAX;
 *   "malformed" anything else the parser refused.
 * Pure, like proxy_parse(); its answer means nothing for bytes that parse. */
const char *proxy_refusal(const unsigned char *buf, size_t len);

/* May this peer (the address the TCP connection came from) send a PROXY
 * header?  It must lie in one of c's proxy-from networks; an IPv4-mapped
 * peer is unmapped first.  1 or 0. */
int proxy_trusted(const struct conf *c, const struct ipaddr *peer);

/* The address the session uses after header h arrived from peer: the
 * header's source for PROXY_FORWARDED, else peer; IPv4-mapped unmapped. */
void proxy_client(const struct proxy_hdr *h, const struct ipaddr *peer, struct ipaddr *client);

/* "forwarded", "local" or "unknown" (enum proxy_kind), for log lines. */
const char *proxy_kind_name(unsigned kind);

#endif
