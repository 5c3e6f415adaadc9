/*
 * tests/fuzz/fuzz_dhcp.c -- policy/dhcp.c fed arbitrary bytes as server
 * replies: parsed as they come (with the transaction ID and hardware
 * address taken from the bytes themselves, so the checks behind them are
 * reached), and fed to a client in each state (the bytes patched to its
 * transaction), with timers in between.  Invariants: nothing read outside
 * the input, what the client sends is a DHCP message of at most
 * DHCP_PKT_MAX bytes that parses as a request, a bound client holds a
 * lease with T1 < T2 < lease, and its state is always one of the six.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/dhcp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct dhcp_client *c, struct dhcp_result r, const unsigned char *pkt)
{
	if (c->state > DHCP_S_REBINDING)
		abort();
	if ((r.actions & DHCP_DO_SEND) && (r.len < 300 || r.len > DHCP_PKT_MAX || pkt[0] != 1))
		abort();
	if (c->state >= DHCP_S_BOUND) {
		const struct dhcp_lease *l = &c->lease;
		if (!(l->t1_s < l->t2_s && l->t2_s < l->lease_s) || l->prefix == 0 || l->prefix > 30)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0, 1, 2, 3 };
	unsigned char msg[DHCP_MSG_MAX], pkt[DHCP_PKT_MAX];
	struct dhcp_reply rp;
	struct dhcp_client c;
	struct dhcp_result r;
	size_t n = size < sizeof msg ? size : sizeof msg;
	int64_t now = 0;

	if (size >= 34) {
		uint32_t xid = (uint32_t)data[4] << 24 | (uint32_t)data[5] << 16 |
		               (uint32_t)data[6] << 8 | data[7];
		(void)dhcp_parse(data, size, xid, data + 28, &rp);
	}
	dhcp_start(&c, mac, "fuzz", now);
	for (int round = 0; round < 6; round++) {
		r = dhcp_timer(&c, now, (uint32_t)round * 2654435761u, pkt, sizeof pkt);
		check(&c, r, pkt);
		memcpy(msg, data, n);
		if (n >= 34) {
			msg[4] = (uint8_t)(c.xid >> 24);
			msg[5] = (uint8_t)(c.xid >> 16);
			msg[6] = (uint8_t)(c.xid >> 8);
			msg[7] = (uint8_t)c.xid;
			memcpy(msg + 28, mac, 6);
		}
		r = dhcp_input(&c, now + 1, 7, msg, n, pkt, sizeof pkt);
		check(&c, r, pkt);
		if (dhcp_next(&c) >= 0)
			now = dhcp_next(&c);
	}
	r = dhcp_release(&c, pkt, sizeof pkt);
	check(&c, r, pkt);
	return 0;
}
