/* policy/dhcp.c -- a DHCPv4 client without I/O; see dhcp.h */
#include "policy/dhcp.h"

#include <string.h>

#include "policy/wire.h"

#define OFF_OPS     240      /* options begin after the fixed part and the cookie */
#define OFF_SNAME   44
#define OFF_FILE    108
#define OFF_COOKIE  236
#define BOOTP_MIN   300


/* Options we read.  Values are gathered per code across every instance
 * and every region (RFC 3396 concatenation), up to a fixed size each. */
enum {
	OPT_PAD = 0, OPT_MASK = 1, OPT_ROUTER = 3, OPT_DNS = 6, OPT_HOSTNAME = 12, OPT_NTP = 42,
	OPT_REQUESTED = 50, OPT_LEASE = 51, OPT_OVERLOAD = 52, OPT_TYPE = 53, OPT_SERVER = 54,
	OPT_PARAMS = 55, OPT_MAXSIZE = 57, OPT_T1 = 58, OPT_T2 = 59, OPT_END = 255
};
static const uint8_t wanted[] = { OPT_MASK, OPT_ROUTER, OPT_DNS, OPT_NTP, OPT_LEASE,
                                  OPT_OVERLOAD, OPT_TYPE, OPT_SERVER, OPT_T1, OPT_T2 };
#define NWANTED (sizeof wanted / sizeof wanted[0])
#define ACC_MAX 64

struct acc {
	uint8_t  v[NWANTED][ACC_MAX];
	size_t   len[NWANTED];
	unsigned seen[NWANTED];
};

static void gather(struct acc *a, uint8_t code, const uint8_t *v, size_t n)
{
	for (size_t k = 0; k < NWANTED; k++) {
		if (wanted[k] != code)
			continue;
		size_t room = ACC_MAX - a->len[k];
		memcpy(a->v[k] + a->len[k], v, n < room ? n : room);
		a->len[k] += n < room ? n : room;
		a->seen[k] = 1;
	}
}

/* One option region: code, length, value ...; pad skipped, end stops.
 * 0, or -1 when an option runs past the region. */
static int walk(const uint8_t *p, size_t n, struct acc *a)
{
	size_t i = 0;

	while (i < n) {
		uint8_t code = p[i];
		if (code == OPT_PAD) {
			i++;
			continue;
		}
		if (code == OPT_END)
			return 0;
		if (i + 2 > n || i + 2 + (size_t)p[i + 1] > n)
			return -1;
		gather(a, code, p + i + 2, p[i + 1]);
		i += 2 + (size_t)p[i + 1];
	}
	return 0;
}

static const uint8_t *opt(const struct acc *a, uint8_t code, size_t *len)
{
	for (size_t k = 0; k < NWANTED; k++)
		if (wanted[k] == code && a->seen[k]) {
			*len = a->len[k];
			return a->v[k];
		}
	return NULL;
}

/* An option that must be exactly n bytes: 1 (copied), 0 absent, -1 bad. */
static int fixed(const struct acc *a, uint8_t code, void *out, size_t n)
{
	size_t len;
	const uint8_t *v = opt(a, code, &len);

	if (v == NULL)
		return 0;
	if (len != n)
		return -1;
	memcpy(out, v, n);
	return 1;
}

/* A list of addresses: the first max into out; -1 unless a multiple of 4. */
static int addrs(const struct acc *a, uint8_t code, uint8_t out[][4], size_t max, size_t *n)
{
	size_t len;
	const uint8_t *v = opt(a, code, &len);

	*n = 0;
	if (v == NULL)
		return 0;
	if (len == 0 || len % 4 != 0)
		return -1;
	for (size_t k = 0; k < len / 4 && *n < max; k++)
		memcpy(out[(*n)++], v + 4 * k, 4);
	return 1;
}

static int interpret(const struct acc *a, struct dhcp_reply *out)
{
	uint8_t b4[4];
	uint8_t routers[1][4];
	size_t n;
	int r;

	if (fixed(a, OPT_TYPE, &out->type, 1) < 0)
		return -1;
	if ((r = fixed(a, OPT_SERVER, out->server, 4)) < 0)
		return -1;
	out->has_server = r == 1;
	if ((r = fixed(a, OPT_MASK, out->mask, 4)) < 0)
		return -1;
	out->has_mask = r == 1;
	if ((r = addrs(a, OPT_ROUTER, routers, 1, &n)) < 0)
		return -1;
	if (n == 1) {
		memcpy(out->router, routers[0], 4);
		out->has_router = 1;
	}
	if (addrs(a, OPT_DNS, out->dns, DHCP_DNS_MAX, &out->ndns) < 0 ||
	    addrs(a, OPT_NTP, out->ntp, DHCP_NTP_MAX, &out->nntp) < 0)
		return -1;
	if ((r = fixed(a, OPT_LEASE, b4, 4)) < 0)
		return -1;
	out->has_lease = r == 1;
	out->lease_s = r == 1 ? wire_be32(b4) : 0;
	if ((r = fixed(a, OPT_T1, b4, 4)) < 0)
		return -1;
	out->has_t1 = r == 1;
	out->t1_s = r == 1 ? wire_be32(b4) : 0;
	if ((r = fixed(a, OPT_T2, b4, 4)) < 0)
		return -1;
	out->has_t2 = r == 1;
	out->t2_s = r == 1 ? wire_be32(b4) : 0;
	return 0;
}

int dhcp_parse(const unsigned char *msg, size_t len, uint32_t xid, const uint8_t mac[6],
               struct dhcp_reply *out)
{
	static const uint8_t cookie[4] = { 99, 130, 83, 99 };
	struct acc a;
	uint8_t overload = 0;

	memset(out, 0, sizeof *out);
	if (len < OFF_OPS || msg[0] != 2 || msg[1] != 1 || msg[2] != 6 || wire_be32(msg + 4) != xid ||
	    memcmp(msg + 28, mac, 6) != 0 || memcmp(msg + OFF_COOKIE, cookie, 4) != 0)
		return -1;
	memset(&a, 0, sizeof a);
	if (walk(msg + OFF_OPS, len - OFF_OPS, &a) != 0)
		return -1;
	/* Option 52 may say that the file and sname fields hold options too
	 * (RFC 2132 9.3), read in that order after the options field. */
	if (fixed(&a, OPT_OVERLOAD, &overload, 1) < 0 || overload > 3)
		return -1;
	if ((overload & 1) && walk(msg + OFF_FILE, OFF_COOKIE - OFF_FILE, &a) != 0)
		return -1;
	if ((overload & 2) && walk(msg + OFF_SNAME, OFF_FILE - OFF_SNAME, &a) != 0)
		return -1;
	memcpy(out->yiaddr, msg + 16, 4);
	return interpret(&a, out);
}

/* Append option code with n bytes of v at buf[*o]; 0, or -1 when it does
 * not fit (one byte is always kept for the end option). */
static int put_opt(unsigned char *buf, size_t cap, size_t *o, uint8_t code, const void *v, size_t n)
{
	if (n > 255 || *o + 2 + n + 1 > cap)
		return -1;
	buf[(*o)++] = code;
	buf[(*o)++] = (uint8_t)n;
	memcpy(buf + *o, v, n);
	*o += n;
	return 0;
}

size_t dhcp_build(unsigned char *buf, size_t cap, const struct dhcp_msg *m)
{
	static const uint8_t params[] = { OPT_MASK, OPT_ROUTER, OPT_DNS, OPT_NTP, OPT_LEASE,
	                                  OPT_T1, OPT_T2 };
	static const uint8_t cookie[4] = { 99, 130, 83, 99 };
	uint8_t maxsize[2] = { DHCP_PKT_MAX >> 8, DHCP_PKT_MAX & 0xff };
	size_t o = OFF_OPS, hl = strlen(m->hostname);
	int bad = 0;

	if (cap < DHCP_PKT_MAX)
		return 0;
	memset(buf, 0, DHCP_PKT_MAX);
	buf[0] = 1;                  /* BOOTREQUEST */
	buf[1] = 1;                  /* Ethernet */
	buf[2] = 6;
	wire_put_be32(buf + 4, m->xid);
	wire_put_be16(buf + 8, m->secs);
	wire_put_be16(buf + 10, m->broadcast ? 0x8000 : 0);
	memcpy(buf + 12, m->ciaddr, 4);
	memcpy(buf + 28, m->mac, 6);
	memcpy(buf + OFF_COOKIE, cookie, 4);
	bad |= put_opt(buf, cap, &o, OPT_TYPE, &m->type, 1);
	if (m->has_requested)
		bad |= put_opt(buf, cap, &o, OPT_REQUESTED, m->requested, 4);
	if (m->has_server)
		bad |= put_opt(buf, cap, &o, OPT_SERVER, m->server, 4);
	if (m->type != DHCP_RELEASE) {
		if (hl > 0)
			bad |= put_opt(buf, cap, &o, OPT_HOSTNAME, m->hostname, hl);
		bad |= put_opt(buf, cap, &o, OPT_MAXSIZE, maxsize, 2);
		bad |= put_opt(buf, cap, &o, OPT_PARAMS, params, sizeof params);
	}
	if (bad)
		return 0;
	buf[o++] = OPT_END;
	return o < BOOTP_MIN ? BOOTP_MIN : o;
}

/* ---------------------------------------------------------------- client */

#define RETRY_FIRST_MS  4000   /* RFC 2131 4.1: 4 s, doubling to 64 s, +-1 s */
#define RETRY_MAX_MS    64000
#define RENEW_MIN_MS    60000  /* RFC 2131 4.4.5: half the time left, at least 60 s */
#define REQUEST_TRIES   4      /* REQUESTs for one offer before starting over */
#define LEASE_MIN_S     20     /* shorter leases are taken as this: no renewal storm */
#define LEASE_DEFAULT_S 3600   /* an ACK without a lease time */

static int64_t retry_delay(unsigned tries, uint32_t rnd)
{
	int64_t d = RETRY_FIRST_MS;

	for (unsigned k = 1; k < tries && d < RETRY_MAX_MS; k++)
		d *= 2;
	if (d > RETRY_MAX_MS)
		d = RETRY_MAX_MS;
	return d + (int64_t)((rnd >> 8) % 2001) - 1000;
}

const char *dhcp_state_name(enum dhcp_state s)
{
	static const char *const names[] = { "init", "selecting", "requesting", "bound",
	                                     "renewing", "rebinding" };
	return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}

void dhcp_start(struct dhcp_client *c, const uint8_t mac[6], const char *hostname, int64_t now)
{
	memset(c, 0, sizeof *c);
	memcpy(c->mac, mac, 6);
	if (hostname != NULL) {
		size_t n = strlen(hostname);
		if (n > DHCP_HOST_MAX)
			n = DHCP_HOST_MAX;
		memcpy(c->hostname, hostname, n);
	}
	c->state = DHCP_S_INIT;
	c->next_ms = now;
}

int64_t dhcp_next(const struct dhcp_client *c)
{
	return c->next_ms;
}

static int64_t at(const struct dhcp_client *c, uint32_t s)
{
	return c->bound_ms + (int64_t)s * 1000;
}

/* The message of the current state into pkt. */
static struct dhcp_result send_now(struct dhcp_client *c, int64_t now, unsigned char *pkt,
                                   size_t cap)
{
	struct dhcp_result r = { 0, 0, 0 };
	struct dhcp_msg m;
	int64_t secs = (now - c->began_ms) / 1000;

	memset(&m, 0, sizeof m);
	m.xid = c->xid;
	m.secs = (uint16_t)(secs > 65535 ? 65535 : secs < 0 ? 0 : secs);
	memcpy(m.mac, c->mac, 6);
	memcpy(m.hostname, c->hostname, sizeof m.hostname);
	m.type = c->state == DHCP_S_SELECTING ? DHCP_DISCOVER : DHCP_REQUEST;
	m.broadcast = c->state != DHCP_S_RENEWING;
	if (c->state == DHCP_S_REQUESTING) {
		memcpy(m.requested, c->offered, 4);
		memcpy(m.server, c->offer_server, 4);
		m.has_requested = m.has_server = 1;
	} else if (c->state == DHCP_S_RENEWING || c->state == DHCP_S_REBINDING) {
		memcpy(m.ciaddr, c->lease.addr, 4);
	}
	r.len = dhcp_build(pkt, cap, &m);
	if (r.len > 0)
		r.actions = DHCP_DO_SEND;
	r.unicast = c->state == DHCP_S_RENEWING;
	c->tries++;
	c->sent_ms = now;
	return r;
}

/* RENEWING and REBINDING resend at half the time to the next boundary,
 * at least RENEW_MIN_MS, never past it. */
static int64_t halfway(int64_t now, int64_t until)
{
	int64_t d = (until - now) / 2;

	if (d < RENEW_MIN_MS)
		d = RENEW_MIN_MS;
	return now + d < until ? now + d : until;
}

static void restart(struct dhcp_client *c, int64_t now)
{
	c->state = DHCP_S_INIT;
	c->next_ms = now;
	c->tries = 0;
}

struct dhcp_result dhcp_timer(struct dhcp_client *c, int64_t now, uint32_t rnd,
                              unsigned char *pkt, size_t cap)
{
	struct dhcp_result none = { 0, 0, 0 }, r;
	const struct dhcp_lease *l = &c->lease;

	if (c->next_ms < 0 || now < c->next_ms)
		return none;
	switch (c->state) {
	case DHCP_S_INIT:
		c->state = DHCP_S_SELECTING;
		c->xid = rnd;
		c->began_ms = now;
		c->tries = 0;
		/* fall through */
	case DHCP_S_SELECTING:
		r = send_now(c, now, pkt, cap);
		c->next_ms = now + retry_delay(c->tries, rnd);
		return r;
	case DHCP_S_REQUESTING:
		if (c->tries >= REQUEST_TRIES) {
			restart(c, now);
			return dhcp_timer(c, now, rnd, pkt, cap);
		}
		r = send_now(c, now, pkt, cap);
		c->next_ms = now + retry_delay(c->tries, rnd);
		return r;
	case DHCP_S_BOUND:
		c->state = DHCP_S_RENEWING;
		c->xid = rnd;
		c->began_ms = now;
		c->tries = 0;
		/* fall through */
	case DHCP_S_RENEWING:
		if (now >= at(c, l->t2_s)) {
			c->state = DHCP_S_REBINDING;
			c->xid = rnd;
		}
		if (c->state == DHCP_S_RENEWING) {
			r = send_now(c, now, pkt, cap);
			c->next_ms = halfway(now, at(c, l->t2_s));
			return r;
		}
		/* fall through */
	case DHCP_S_REBINDING:
		if (now >= at(c, l->lease_s)) {
			restart(c, now);
			r.actions = DHCP_DO_UNBIND;
			r.len = 0;
			r.unicast = 0;
			return r;
		}
		r = send_now(c, now, pkt, cap);
		c->next_ms = halfway(now, at(c, l->lease_s));
		return r;
	}
	return none;
}

static uint8_t mask_prefix(const struct dhcp_reply *rp)
{
	uint32_t m = rp->has_mask ? wire_be32(rp->mask) : 0;
	uint8_t p = 0;

	while (p < 32 && (m & (0x80000000u >> p)))
		p++;
	/* Not contiguous, or /0 or /32: not a subnet we can live on. */
	if (!rp->has_mask || p == 0 || p > 30 || (p < 32 && (m << p) != 0))
		return 24;
	return p;
}

/* An ACK's lease into c->lease: T1 < T2 < lease, or RFC 2131's defaults. */
static void take_lease(struct dhcp_client *c, const struct dhcp_reply *rp)
{
	struct dhcp_lease *l = &c->lease;
	uint32_t lease = rp->has_lease ? rp->lease_s : LEASE_DEFAULT_S;

	if (!(c->state == DHCP_S_RENEWING || c->state == DHCP_S_REBINDING) || rp->has_server)
		memcpy(l->server, rp->has_server ? rp->server : c->offer_server, 4);
	memcpy(l->addr, rp->yiaddr, 4);
	l->prefix = mask_prefix(rp);
	memcpy(l->router, rp->router, 4);
	l->has_router = rp->has_router;
	memcpy(l->dns, rp->dns, sizeof l->dns);
	l->ndns = rp->ndns;
	memcpy(l->ntp, rp->ntp, sizeof l->ntp);
	l->nntp = rp->nntp;
	if (lease < LEASE_MIN_S)
		lease = LEASE_MIN_S;
	l->lease_s = lease;
	l->t1_s = rp->has_t1 ? rp->t1_s : lease / 2;
	l->t2_s = rp->has_t2 ? rp->t2_s : lease - lease / 8;
	if (l->t2_s >= lease || l->t2_s == 0)
		l->t2_s = lease - lease / 8;
	if (l->t1_s >= l->t2_s || l->t1_s == 0)
		l->t1_s = lease / 2 < l->t2_s ? lease / 2 : l->t2_s / 2;
}

struct dhcp_result dhcp_input(struct dhcp_client *c, int64_t now, uint32_t rnd,
                              const unsigned char *msg, size_t len,
                              unsigned char *pkt, size_t cap)
{
	struct dhcp_result r = { 0, 0, 0 };
	struct dhcp_reply rp;
	int held = c->state == DHCP_S_RENEWING || c->state == DHCP_S_REBINDING;
	static const uint8_t zero[4];

	if (c->state == DHCP_S_INIT || c->state == DHCP_S_BOUND ||
	    dhcp_parse(msg, len, c->xid, c->mac, &rp) != 0)
		return r;
	if (c->state == DHCP_S_SELECTING) {
		if (rp.type != DHCP_OFFER || !rp.has_server || memcmp(rp.yiaddr, zero, 4) == 0)
			return r;
		memcpy(c->offered, rp.yiaddr, 4);
		memcpy(c->offer_server, rp.server, 4);
		c->state = DHCP_S_REQUESTING;
		c->tries = 0;
		r = send_now(c, now, pkt, cap);
		c->next_ms = now + retry_delay(c->tries, rnd);
		return r;
	}
	if (rp.type == DHCP_NAK) {
		/* In REQUESTING only the server we asked may refuse. */
		if (c->state == DHCP_S_REQUESTING && rp.has_server &&
		    memcmp(rp.server, c->offer_server, 4) != 0)
			return r;
		restart(c, now);
		r.actions = held ? DHCP_DO_UNBIND : 0;
		return r;
	}
	if (rp.type != DHCP_ACK || memcmp(rp.yiaddr, zero, 4) == 0 ||
	    (c->state == DHCP_S_REQUESTING && memcmp(rp.yiaddr, c->offered, 4) != 0))
		return r;
	take_lease(c, &rp);
	/* The lease runs from when the request went out (RFC 2131 4.4.1). */
	c->bound_ms = c->sent_ms;
	c->state = DHCP_S_BOUND;
	c->tries = 0;
	c->next_ms = c->lease.lease_s == 0xffffffffu ? -1 : at(c, c->lease.t1_s);
	r.actions = DHCP_DO_BIND;
	return r;
}

struct dhcp_result dhcp_release(struct dhcp_client *c, unsigned char *pkt, size_t cap)
{
	struct dhcp_result r = { 0, 0, 1 };
	struct dhcp_msg m;

	if (c->state != DHCP_S_BOUND && c->state != DHCP_S_RENEWING && c->state != DHCP_S_REBINDING) {
		c->state = DHCP_S_INIT;
		c->next_ms = -1;
		return r;
	}
	memset(&m, 0, sizeof m);
	m.type = DHCP_RELEASE;
	m.xid = c->xid + 1;
	memcpy(m.mac, c->mac, 6);
	memcpy(m.ciaddr, c->lease.addr, 4);
	memcpy(m.server, c->lease.server, 4);
	m.has_server = 1;
	r.len = dhcp_build(pkt, cap, &m);
	r.actions = r.len > 0 ? DHCP_DO_SEND : 0;
	c->state = DHCP_S_INIT;
	c->next_ms = -1;
	return r;
}
