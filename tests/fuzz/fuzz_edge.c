/*
 * tests/fuzz/fuzz_edge.c -- the edge defenses' parsers and judges on
 * hostile bytes: dnsbl_spec_parse() (a parsed spec written back must parse
 * to the same struct, and its query names must fit), and
 * edge_helo_check() on any HELO argument.  The first byte picks which;
 * inputs are exact-size heap copies, for ASan.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/dnsbl.h"
#include "policy/edge.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct conf conf;
static int ready;

static void spec(const char *s, size_t len)
{
	struct conf_dnsbl z, again;
	const char *why = NULL;
	char text[DNSBL_SPEC_TEXT_MAX], name[DNSBL_NAME_MAX];
	struct ipaddr v4 = { IP_V4, { 192, 0, 2, 1 } }, v6 = { IP_V6, { 0x20, 1, 0xd, 0xb8 } };

	if (dnsbl_spec_parse(s, len, &z, &why) < 0) {
		REQUIRE(why != NULL && why[0] != '\0');
		return;
	}
	REQUIRE(z.zone[0] != '\0' && strlen(z.zone) <= CONF_DNSBL_ZONE_MAX);
	REQUIRE(z.weight != 0 && z.weight >= -1000 && z.weight <= 1000);
	size_t n = dnsbl_spec_format(&z, text, sizeof text);
	REQUIRE(n < sizeof text);
	REQUIRE(dnsbl_spec_parse(text, n, &again, &why) == 0);
	REQUIRE(memcmp(&z, &again, sizeof z) == 0);
	REQUIRE(dnsbl_query_name(&v4, z.zone, name, sizeof name) > 0);
	REQUIRE(dnsbl_query_name(&v6, z.zone, name, sizeof name) == 64 + strlen(z.zone));
	(void)dnsbl_answer_counts(&z, &v4);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ready) {
		static const char text[] = "hostname mx.example.org\nlisten 192.0.2.25:25\n"
		                           "domain example.org\ndomain *.example.net\n";
		char err[256];

		conf_defaults(&conf);
		if (conf_parse(text, sizeof text - 1, "f", &conf, err, sizeof err) < 0 ||
		    conf_finish(&conf, "f", err, sizeof err) < 0)
			abort();
		ready = 1;
	}
	if (size == 0)
		return 0;
	char *b = malloc(size - 1 ? size - 1 : 1);
	memcpy(b, data + 1, size - 1);
	if (data[0] & 1) {
		spec(b, size - 1);
	} else {
		struct ipaddr local = { IP_V4, { 192, 0, 2, 99 } };
		enum edge_helo v = edge_helo_check(&conf, b, size - 1, &local);

		REQUIRE(v == EDGE_HELO_OK || v == EDGE_HELO_SYNTAX || v == EDGE_HELO_OURS);
		REQUIRE(v == EDGE_HELO_SYNTAX || size - 1 > 0);
	}
	free(b);
	return 0;
}
