/* tests/unit/test_dhcp.c -- policy/dhcp.c: the client's messages byte for
 * byte, servers' replies (well-formed, overloaded, split options, and cut
 * at every offset or broken in every field that is checked), and the
 * state machine from DISCOVER to a lease, its renewal, rebinding, expiry,
 * a NAK and the RELEASE, on a clock the test moves. */
#include <stdlib.h>

#include "t.h"
#include "policy/dhcp.h"

static const uint8_t MAC[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const uint8_t SERVER[4] = { 10, 0, 3, 1 };
static const uint8_t YOU[4] = { 10, 0, 3, 50 };

/* A server's reply: the fixed part, the cookie, then opts[0..n). */
static size_t reply(unsigned char *b, uint32_t xid, const uint8_t *opts, size_t n)
{
	memset(b, 0, 1024);
	b[0] = 2;
	b[1] = 1;
	b[2] = 6;
	b[4] = (uint8_t)(xid >> 24);
	b[5] = (uint8_t)(xid >> 16);
	b[6] = (uint8_t)(xid >> 8);
	b[7] = (uint8_t)xid;
	memcpy(b + 16, YOU, 4);
	memcpy(b + 28, MAC, 6);
	b[236] = 99;
	b[237] = 130;
	b[238] = 83;
	b[239] = 99;
	memcpy(b + 240, opts, n);
	return 240 + n;
}

/* An OFFER or ACK (type) with a 120 s lease, T1 10 s, T2 30 s. */
static size_t offer_like(unsigned char *b, uint32_t xid, uint8_t type)
{
	const uint8_t opts[] = {
		53, 1, type, 54, 4, 10, 0, 3, 1, 1, 4, 255, 255, 255, 0,
		3, 8, 10, 0, 3, 1, 10, 0, 3, 254, 6, 8, 10, 0, 3, 1, 9, 9, 9, 9,
		42, 4, 10, 0, 3, 1, 51, 4, 0, 0, 0, 120, 58, 4, 0, 0, 0, 10, 59, 4, 0, 0, 0, 30, 255,
	};
	return reply(b, xid, opts, sizeof opts);
}

static void test_build_discover(void)
{
	struct dhcp_msg m;
	unsigned char b[DHCP_PKT_MAX];
	size_t n;

	memset(&m, 0, sizeof m);
	m.type = DHCP_DISCOVER;
	m.xid = 0x01020304;
	m.secs = 3;
	m.broadcast = 1;
	memcpy(m.mac, MAC, 6);
	strcpy(m.hostname, "mx");
	n = dhcp_build(b, sizeof b, &m);
	CHECK(n == 300);
	CHECK(b[0] == 1 && b[1] == 1 && b[2] == 6 && b[3] == 0);
	CHECK(memcmp(b + 4, "\x01\x02\x03\x04", 4) == 0);
	CHECK(b[8] == 0 && b[9] == 3 && b[10] == 0x80 && b[11] == 0);
	CHECK(memcmp(b + 28, MAC, 6) == 0);
	CHECK(memcmp(b + 236, "\x63\x82\x53\x63", 4) == 0);
	static const uint8_t want[] = { 53, 1, 1, 12, 2, 'm', 'x', 57, 2, 2, 64,
	                                55, 7, 1, 3, 6, 42, 51, 58, 59, 255 };
	CHECK(memcmp(b + 240, want, sizeof want) == 0);
	CHECK(dhcp_build(b, DHCP_PKT_MAX - 1, &m) == 0);
}

static void test_build_request_release(void)
{
	struct dhcp_msg m;
	unsigned char b[DHCP_PKT_MAX];

	memset(&m, 0, sizeof m);
	m.type = DHCP_REQUEST;
	memcpy(m.requested, YOU, 4);
	memcpy(m.server, SERVER, 4);
	m.has_requested = m.has_server = 1;
	CHECK(dhcp_build(b, sizeof b, &m) == 300);
	static const uint8_t req[] = { 53, 1, 3, 50, 4, 10, 0, 3, 50, 54, 4, 10, 0, 3, 1, 57, 2, 2, 64 };
	CHECK(memcmp(b + 240, req, sizeof req) == 0);
	m.type = DHCP_RELEASE;
	m.has_requested = 0;
	memcpy(m.ciaddr, YOU, 4);
	CHECK(dhcp_build(b, sizeof b, &m) == 300);
	static const uint8_t rel[] = { 53, 1, 7, 54, 4, 10, 0, 3, 1, 255 };
	CHECK(memcmp(b + 240, rel, sizeof rel) == 0 && memcmp(b + 12, YOU, 4) == 0);
}

static void test_parse_offer(void)
{
	unsigned char b[1024];
	struct dhcp_reply r;
	size_t n = offer_like(b, 77, DHCP_OFFER);

	CHECK(dhcp_parse(b, n, 77, MAC, &r) == 0);
	CHECK(r.type == DHCP_OFFER && memcmp(r.yiaddr, YOU, 4) == 0);
	CHECK(r.has_server && memcmp(r.server, SERVER, 4) == 0);
	CHECK(r.has_mask && r.mask[2] == 255 && r.mask[3] == 0);
	CHECK(r.has_router && memcmp(r.router, SERVER, 4) == 0);
	CHECK(r.ndns == 2 && r.dns[1][0] == 9 && r.nntp == 1);
	CHECK(r.has_lease && r.lease_s == 120 && r.t1_s == 10 && r.t2_s == 30);
	/* Another transaction, another machine, a request, no cookie: not ours. */
	CHECK(dhcp_parse(b, n, 78, MAC, &r) == -1);
	uint8_t other[6] = { 1, 2, 3, 4, 5, 6 };
	CHECK(dhcp_parse(b, n, 77, other, &r) == -1);
	b[0] = 1;
	CHECK(dhcp_parse(b, n, 77, MAC, &r) == -1);
	b[0] = 2;
	b[239] = 0;
	CHECK(dhcp_parse(b, n, 77, MAC, &r) == -1);
}

/* Every cut of a reply parses or is refused, never read past; a cut in
 * the options is refused unless it falls between options. */
static void test_parse_every_cut(void)
{
	unsigned char b[1024];
	struct dhcp_reply r;
	size_t n = offer_like(b, 5, DHCP_ACK);

	for (size_t cut = 0; cut <= n; cut++) {
		unsigned char *piece = malloc(cut ? cut : 1);
		memcpy(piece, b, cut);
		int got = dhcp_parse(piece, cut, 5, MAC, &r);
		CHECKF(cut >= 240 || got == -1, "cut %zu", cut);
		free(piece);
	}
}

static void test_parse_bad_values(void)
{
	unsigned char b[1024];
	struct dhcp_reply r;
	static const uint8_t *cases[] = {
		(const uint8_t *)"\x35\x02\x05\x05\xff",        /* type of 2 bytes */
		(const uint8_t *)"\x36\x03\x0a\x00\x03\xff",    /* server of 3 bytes */
		(const uint8_t *)"\x03\x06\x0a\x00\x03\x01\x0a\x00\xff", /* router list of 6 */
		(const uint8_t *)"\x06\x00\xff",                /* no DNS server */
		(const uint8_t *)"\x33\x02\x00\x00\xff",        /* lease of 2 bytes */
		(const uint8_t *)"\x34\x01\x04\xff",            /* overload 4 */
		(const uint8_t *)"\x35\x01\x05\x06\x10\x01",    /* runs past the end */
	};
	static const size_t lens[] = { 5, 6, 9, 3, 5, 4, 6 };

	for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
		size_t n = reply(b, 9, cases[k], lens[k]);
		CHECKF(dhcp_parse(b, n, 9, MAC, &r) == -1, "case %zu", k);
	}
}

/* RFC 3396 split options, RFC 2132 overload of file and sname, pad. */
static void test_parse_overload_and_split(void)
{
	unsigned char b[1024];
	struct dhcp_reply r;
	const uint8_t opts[] = { 0, 0, 53, 1, 5, 52, 1, 3, 6, 4, 1, 1, 1, 1, 255 };
	size_t n = reply(b, 1, opts, sizeof opts);

	/* file: the second half of the DNS list and the lease; sname: the server. */
	const uint8_t file[] = { 6, 4, 2, 2, 2, 2, 51, 4, 0, 0, 1, 0, 255 };
	const uint8_t sname[] = { 54, 4, 10, 0, 3, 1, 255 };
	memcpy(b + 108, file, sizeof file);
	memcpy(b + 44, sname, sizeof sname);
	CHECK(dhcp_parse(b, n, 1, MAC, &r) == 0);
	CHECK(r.type == DHCP_ACK && r.ndns == 2 && r.dns[0][0] == 1 && r.dns[1][0] == 2);
	CHECK(r.lease_s == 256 && r.has_server && r.server[3] == 1);
	/* Without the overload option those fields are a file name: not read. */
	b[240 + 5] = 0;
	b[240 + 6] = 0;
	b[240 + 7] = 0;
	CHECK(dhcp_parse(b, n, 1, MAC, &r) == 0);
	CHECK(r.ndns == 1 && !r.has_lease && !r.has_server);
}

/* A whole lease, on a clock the test moves. */
static void test_client_lease(void)
{
	struct dhcp_client c;
	struct dhcp_result res;
	unsigned char pkt[DHCP_PKT_MAX], b[1024];
	struct dhcp_reply seen;
	size_t n;

	dhcp_start(&c, MAC, "mx", 1000);
	CHECK(c.state == DHCP_S_INIT && dhcp_next(&c) == 1000);
	res = dhcp_timer(&c, 999, 1, pkt, sizeof pkt);
	CHECK(res.actions == 0);
	res = dhcp_timer(&c, 1000, 0xabcd0000, pkt, sizeof pkt);
	CHECK(res.actions == DHCP_DO_SEND && !res.unicast && pkt[242] == DHCP_DISCOVER);
	CHECK(c.state == DHCP_S_SELECTING && c.xid == 0xabcd0000);
	/* 4 s +- 1 s, then 8 s +- 1 s. */
	CHECK(dhcp_next(&c) >= 4000 && dhcp_next(&c) <= 6000);
	res = dhcp_timer(&c, dhcp_next(&c), 7, pkt, sizeof pkt);
	CHECK(res.actions == DHCP_DO_SEND && c.tries == 2);
	CHECK(dhcp_next(&c) - 1000 >= 8000);
	/* An offer for someone else's transaction is ignored. */
	n = offer_like(b, c.xid + 1, DHCP_OFFER);
	CHECK(dhcp_input(&c, 7000, 3, b, n, pkt, sizeof pkt).actions == 0);
	n = offer_like(b, c.xid, DHCP_OFFER);
	res = dhcp_input(&c, 7000, 3, b, n, pkt, sizeof pkt);
	CHECK(res.actions == DHCP_DO_SEND && c.state == DHCP_S_REQUESTING);
	CHECK(pkt[242] == DHCP_REQUEST && pkt[10] == 0x80);
	/* An ACK for another address than offered is not ours. */
	n = offer_like(b, c.xid, DHCP_ACK);
	b[19] = 51;
	CHECK(dhcp_input(&c, 7100, 3, b, n, pkt, sizeof pkt).actions == 0);
	n = offer_like(b, c.xid, DHCP_ACK);
	res = dhcp_input(&c, 7100, 3, b, n, pkt, sizeof pkt);
	CHECK(res.actions == DHCP_DO_BIND && c.state == DHCP_S_BOUND);
	CHECK(memcmp(c.lease.addr, YOU, 4) == 0 && c.lease.prefix == 24 && c.lease.has_router);
	CHECK(c.lease.lease_s == 120 && c.lease.t1_s == 10 && c.lease.t2_s == 30);
	/* The lease counts from when the REQUEST went out, 7000. */
	CHECK(dhcp_next(&c) == 7000 + 10000);
	/* T1: a REQUEST to the server, unicast, with ciaddr. */
	res = dhcp_timer(&c, 17000, 0x55, pkt, sizeof pkt);
	CHECK(res.actions == DHCP_DO_SEND && res.unicast && c.state == DHCP_S_RENEWING);
	CHECK(dhcp_parse(pkt, res.len, 0, MAC, &seen) == -1); /* a request, not a reply */
	CHECK(memcmp(pkt + 12, YOU, 4) == 0 && pkt[10] == 0);
	/* No answer: the next try is at T2 at the latest (60 s minimum, capped). */
	CHECK(dhcp_next(&c) == 7000 + 30000);
	res = dhcp_timer(&c, 37000, 0x66, pkt, sizeof pkt);
	CHECK(res.actions == DHCP_DO_SEND && !res.unicast && c.state == DHCP_S_REBINDING);
	CHECK(dhcp_next(&c) == 37000 + 60000);
	n = offer_like(b, c.xid, DHCP_ACK);
	res = dhcp_input(&c, 38000, 3, b, n, pkt, sizeof pkt);
	CHECK(res.actions == DHCP_DO_BIND && c.state == DHCP_S_BOUND);
	CHECK(dhcp_next(&c) == 37000 + 10000);
	/* Renewing again, nobody answers, the lease ends: UNBIND and start over. */
	dhcp_timer(&c, 47000, 1, pkt, sizeof pkt);
	dhcp_timer(&c, dhcp_next(&c), 2, pkt, sizeof pkt);
	CHECK(c.state == DHCP_S_REBINDING);
	res = dhcp_timer(&c, 47000 + 120000, 3, pkt, sizeof pkt);
	CHECK(res.actions == DHCP_DO_UNBIND && c.state == DHCP_S_INIT);
}

static void test_client_nak_and_release(void)
{
	struct dhcp_client c;
	struct dhcp_result res;
	unsigned char pkt[DHCP_PKT_MAX], b[1024];
	size_t n;

	dhcp_start(&c, MAC, NULL, 0);
	dhcp_timer(&c, 0, 42, pkt, sizeof pkt);
	n = offer_like(b, 42, DHCP_OFFER);
	dhcp_input(&c, 10, 1, b, n, pkt, sizeof pkt);
	n = offer_like(b, 42, DHCP_ACK);
	CHECK(dhcp_input(&c, 20, 1, b, n, pkt, sizeof pkt).actions == DHCP_DO_BIND);
	dhcp_timer(&c, 10009, 43, pkt, sizeof pkt);
	CHECK(c.state == DHCP_S_BOUND);
	dhcp_timer(&c, 10010, 43, pkt, sizeof pkt);
	CHECK(c.state == DHCP_S_RENEWING);
	n = offer_like(b, 43, DHCP_NAK);
	res = dhcp_input(&c, 10010, 1, b, n, pkt, sizeof pkt);
	CHECK(res.actions == DHCP_DO_UNBIND && c.state == DHCP_S_INIT && dhcp_next(&c) == 10010);
	/* Bound again, then released at power-off. */
	dhcp_timer(&c, 10010, 44, pkt, sizeof pkt);
	n = offer_like(b, 44, DHCP_OFFER);
	dhcp_input(&c, 10020, 1, b, n, pkt, sizeof pkt);
	n = offer_like(b, 44, DHCP_ACK);
	dhcp_input(&c, 10030, 1, b, n, pkt, sizeof pkt);
	res = dhcp_release(&c, pkt, sizeof pkt);
	CHECK(res.actions == DHCP_DO_SEND && res.unicast && pkt[242] == DHCP_RELEASE);
	CHECK(c.state == DHCP_S_INIT && dhcp_next(&c) == -1);
	CHECK(dhcp_release(&c, pkt, sizeof pkt).actions == 0);
}

/* Hostile lease times: none, zero, T1 after T2, T2 after the lease. */
static void test_client_lease_times(void)
{
	struct dhcp_client c;
	unsigned char pkt[DHCP_PKT_MAX], b[1024];
	size_t n;
	const uint8_t opts[] = { 53, 1, 5, 54, 4, 10, 0, 3, 1, 51, 4, 0, 0, 0, 0,
	                         58, 4, 0, 0, 9, 0, 59, 4, 0, 0, 9, 0, 255 };

	dhcp_start(&c, MAC, NULL, 0);
	dhcp_timer(&c, 0, 42, pkt, sizeof pkt);
	n = offer_like(b, 42, DHCP_OFFER);
	dhcp_input(&c, 0, 1, b, n, pkt, sizeof pkt);
	n = reply(b, 42, opts, sizeof opts);
	CHECK(dhcp_input(&c, 0, 1, b, n, pkt, sizeof pkt).actions == DHCP_DO_BIND);
	CHECK(c.lease.lease_s == 20 && c.lease.t2_s < 20 && c.lease.t1_s < c.lease.t2_s &&
	      c.lease.t1_s > 0);
	CHECK(c.lease.prefix == 24);
}

int main(void)
{
	RUN(test_build_discover);
	RUN(test_build_request_release);
	RUN(test_parse_offer);
	RUN(test_parse_every_cut);
	RUN(test_parse_bad_values);
	RUN(test_parse_overload_and_split);
	RUN(test_client_lease);
	RUN(test_client_nak_and_release);
	RUN(test_client_lease_times);
	return t_main_end();
}
