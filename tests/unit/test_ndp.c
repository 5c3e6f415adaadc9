/* tests/unit/test_ndp.c -- policy/ndp.c: RDNSS addresses out of the
 * RTM_NEWNDUSEROPT messages the kernel sends, with other options around
 * them, several RDNSS options, too many addresses, and malformed options
 * (length 0, past the end, even length), cut at every length. */
#include <stdlib.h>

#include "t.h"
#include "policy/ndp.h"

/* nduseroptmsg (host order) + opts. */
static size_t msg(unsigned char *b, const unsigned char *opts, uint16_t n, unsigned char type)
{
	int ifindex = 2;

	memset(b, 0, 16);
	b[0] = 10;
	memcpy(b + 2, &n, 2);
	memcpy(b + 4, &ifindex, 4);
	b[8] = type;
	memcpy(b + 16, opts, n);
	return 16 + (size_t)n;
}

static const unsigned char rdnss2[] = {
	/* a source link-layer option first (type 1, 8 octets) */
	1, 1, 0x52, 0x54, 0, 0, 0, 1,
	25, 5, 0, 0, 0, 0, 0x0e, 0x10,
	0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
	0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
};

static void test_rdnss(void)
{
	unsigned char b[256];
	struct ndp_rdnss r;
	size_t n = msg(b, rdnss2, sizeof rdnss2, 134);

	CHECK(ndp_useropt_rdnss(b, n, &r) == 1);
	CHECK(r.ifindex == 2 && r.n == 2 && r.lifetime[0] == 3600 && r.addr[1][15] == 2 &&
	      r.addr[0][0] == 0xfd);
	/* Not a router advertisement, not IPv6: nothing. */
	n = msg(b, rdnss2, sizeof rdnss2, 133);
	CHECK(ndp_useropt_rdnss(b, n, &r) == 0);
	n = msg(b, rdnss2, 8, 134);
	CHECK(ndp_useropt_rdnss(b, n, &r) == 0);
	/* Cut anywhere: refused or read within the cut. */
	n = msg(b, rdnss2, sizeof rdnss2, 134);
	for (size_t cut = 0; cut < n; cut++) {
		unsigned char *p = malloc(cut ? cut : 1);
		memcpy(p, b, cut);
		CHECKF(ndp_useropt_rdnss(p, cut, &r) == -1, "cut %zu", cut);
		free(p);
	}
}

static void test_many(void)
{
	unsigned char opts[200], b[256];
	struct ndp_rdnss r;

	/* Two options of two addresses: three kept. */
	memcpy(opts, rdnss2 + 8, 40);
	memcpy(opts + 40, rdnss2 + 8, 40);
	opts[40 + 6] = 0;
	opts[40 + 7] = 60;
	size_t n = msg(b, opts, 80, 134);
	CHECK(ndp_useropt_rdnss(b, n, &r) == 1 && r.n == 3 && r.lifetime[2] == 60);
}

static void test_malformed(void)
{
	unsigned char opts[64], b[128];
	struct ndp_rdnss r;
	size_t n;

	memcpy(opts, rdnss2 + 8, 40);
	opts[1] = 0;            /* length 0 */
	n = msg(b, opts, 40, 134);
	CHECK(ndp_useropt_rdnss(b, n, &r) == -1);
	opts[1] = 6;            /* past the end */
	n = msg(b, opts, 40, 134);
	CHECK(ndp_useropt_rdnss(b, n, &r) == -1);
	opts[1] = 4;            /* even: half an address */
	n = msg(b, opts, 32, 134);
	CHECK(ndp_useropt_rdnss(b, n, &r) == -1);
	opts[1] = 1;            /* an RDNSS option without an address */
	n = msg(b, opts, 8, 134);
	CHECK(ndp_useropt_rdnss(b, n, &r) == -1);
	/* opts_len larger than the message */
	n = msg(b, rdnss2, sizeof rdnss2, 134);
	uint16_t big = 200;
	memcpy(b + 2, &big, 2);
	CHECK(ndp_useropt_rdnss(b, n, &r) == -1);
}

int main(void)
{
	RUN(test_rdnss);
	RUN(test_many);
	RUN(test_malformed);
	return t_main_end();
}
