/* policy/ndp.c -- RDNSS from router advertisements; see ndp.h */
#include "policy/ndp.h"

#include <string.h>

#include "policy/wire.h"

#define HDR_LEN      16   /* sizeof(struct nduseroptmsg) */
#define FAMILY_INET6 10   /* AF_INET6 on Linux */
#define ICMP6_RA     134
#define OPT_RDNSS    25

int ndp_useropt_rdnss(const unsigned char *msg, size_t len, struct ndp_rdnss *out)
{
	uint16_t optlen;
	size_t k = 0;
	const unsigned char *opts;
	int found = 0;

	memset(out, 0, sizeof *out);
	if (len < HDR_LEN)
		return -1;
	memcpy(&optlen, msg + 2, sizeof optlen);
	memcpy(&out->ifindex, msg + 4, sizeof out->ifindex);
	if (optlen > len - HDR_LEN)
		return -1;
	if (msg[0] != FAMILY_INET6 || msg[8] != ICMP6_RA)
		return 0;
	opts = msg + HDR_LEN;
	while (k < optlen) {
		/* type, length in units of 8 octets (0 is invalid: RFC 4861 4.6) */
		if (optlen - k < 2 || opts[k + 1] == 0 || (size_t)opts[k + 1] * 8 > optlen - k)
			goto bad;
		size_t ol = (size_t)opts[k + 1] * 8;
		if (opts[k] == OPT_RDNSS) {
			/* 8 octets of header, then 16 per address: an odd length >= 3. */
			if (opts[k + 1] < 3 || opts[k + 1] % 2 == 0)
				goto bad;
			uint32_t life = wire_be32(opts + k + 4);
			for (size_t a = 8; a < ol && out->n < NDP_RDNSS_MAX; a += 16) {
				memcpy(out->addr[out->n], opts + k + a, 16);
				out->lifetime[out->n++] = life;
			}
			found = 1;
		}
		k += ol;
	}
	return found;

bad:
	/* Nothing from a message that is malformed anywhere. */
	memset(out->addr, 0, sizeof out->addr);
	out->n = 0;
	return -1;
}
