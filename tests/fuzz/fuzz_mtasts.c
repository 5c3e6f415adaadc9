/*
 * tests/fuzz/fuzz_mtasts.c -- the MTA-STS TXT record and policy parsers
 * (policy/mtasts.h) on hostile texts.
 *
 * The input, from a heap copy of exactly its length, is read as a TXT
 * record and as a policy file.  Invariants: a TXT id is 1..32 letters or
 * digits; a policy is within its caps, its mx patterns are host names (or
 * "*." and one), mode none or at least one mx, and writing it out and
 * reading it back gives the same policy; each pattern matches a host made
 * from it, and a policy allows the hosts its patterns match.  Parses are
 * deterministic.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/mtasts.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mtasts_policy p, q;
static char text[MTASTS_POLICY_MAX + 1024];

static void check_policy(void)
{
	size_t n;

	REQUIRE(p.mode <= MTASTS_MODE_ENFORCE && p.max_age <= MTASTS_MAX_AGE_MAX);
	REQUIRE(p.nmx <= MTASTS_MX_MAX && (p.mx_dropped == 0 || p.nmx == MTASTS_MX_MAX));
	REQUIRE(p.mode == MTASTS_MODE_NONE || p.nmx > 0);
	for (size_t i = 0; i < p.nmx; i++) {
		const char *m = p.mx[i];
		size_t l = strnlen(m, sizeof p.mx[i]);
		char host[MTASTS_MX_LEN + 8];
		REQUIRE(l > 0 && l < sizeof p.mx[i]);
		if (m[0] == '*') {
			REQUIRE(l > 2 && m[1] == '.' && dns_name_ok(m + 2, l - 2));
			memcpy(host, "x1", 2);
			memcpy(host + 2, m + 1, l);   /* "x1.suffix" with the NUL */
		} else {
			REQUIRE(dns_name_ok(m, l));
			memcpy(host, m, l + 1);
		}
		REQUIRE(mtasts_mx_match(m, host));
		REQUIRE(mtasts_mx_allowed(&p, host));
	}
	n = mtasts_policy_format(&p, text, sizeof text);
	REQUIRE(n < sizeof text && strlen(text) == n);
	{
		const char *why;
		REQUIRE(mtasts_policy_parse(text, n, &q, &why) == 0);
		REQUIRE(memcmp(&p, &q, sizeof p) == 0 || p.mx_dropped > 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	char id[MTASTS_ID_MAX + 1], id2[MTASTS_ID_MAX + 1];
	const char *why;
	int r;

	memcpy(buf, data, size);
	r = mtasts_txt_parse(buf, size, id);
	REQUIRE(r == 0 || r == -1);
	if (r == 0) {
		size_t l = strlen(id);
		REQUIRE(l >= 1 && l <= MTASTS_ID_MAX);
		for (size_t i = 0; i < l; i++)
			REQUIRE((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'z') ||
			        (id[i] >= 'A' && id[i] <= 'Z'));
		REQUIRE(mtasts_txt_parse(buf, size, id2) == 0 && strcmp(id, id2) == 0);
	} else {
		REQUIRE(id[0] == '\0');
	}
	r = mtasts_policy_parse(buf, size, &p, &why);
	REQUIRE(r == 0 ? why == NULL : why != NULL);
	if (r == 0)
		check_policy();
	else
		REQUIRE(p.nmx == 0 && p.max_age == 0);
	free(buf);
	return 0;
}
