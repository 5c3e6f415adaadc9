/*
 * tests/fuzz/fuzz_addr.c -- addr_parse_path(), addr_format() and
 * addr_domain_valid().
 *
 * The first byte is the ADDR_ALLOW_* set, the rest the path.  An accepted
 * address must keep its limits, and written out with addr_format() and
 * parsed again it must come back the same (less the dropped route and
 * trailing dot).  Inputs are exact-size heap copies, for ASan.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/addr.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

static enum addr_result parse(const char *s, size_t len, unsigned allow, struct addr *a)
{
	char *b = malloc(len ? len : 1);
	memcpy(b, s, len);
	enum addr_result r = addr_parse_path(b, len, allow, a);
	free(b);
	return r;
}

static int domain_valid(const char *s, size_t len, int utf8)
{
	char *b = malloc(len ? len : 1);
	memcpy(b, s, len);
	int ok = addr_domain_valid(b, len, utf8);
	free(b);
	return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	unsigned allow = data[0] & (ADDR_ALLOW_NULL | ADDR_ALLOW_POSTMASTER | ADDR_ALLOW_UTF8);
	const char *path = (const char *)data + 1;
	size_t len = size - 1;
	struct addr a;

	int ok = domain_valid(path, len, allow & ADDR_ALLOW_UTF8);
	REQUIRE(ok == 0 || ok == 1);

	enum addr_result r = parse(path, len, allow, &a);
	REQUIRE(r == ADDR_OK || r == ADDR_ESYNTAX || r == ADDR_ETOOLONG || r == ADDR_EUTF8);
	if (r == ADDR_EUTF8)
		REQUIRE(!(allow & ADDR_ALLOW_UTF8));
	if (r != ADDR_OK)
		return 0;

	REQUIRE(len <= ADDR_PATH_MAX);
	REQUIRE(a.locallen <= ADDR_LOCAL_MAX && a.local[a.locallen] == 0);
	REQUIRE(a.domainlen <= ADDR_DOMAIN_MAX && a.domain[a.domainlen] == 0);
	REQUIRE(strlen(a.local) == a.locallen && strlen(a.domain) == a.domainlen);
	if (a.flags & ADDR_F_NULL)
		REQUIRE((allow & ADDR_ALLOW_NULL) && a.locallen == 0 && a.domainlen == 0);
	else if (a.flags & ADDR_F_POSTMASTER)
		REQUIRE((allow & ADDR_ALLOW_POSTMASTER) && a.locallen == 10 && a.domainlen == 0);
	else
		REQUIRE(a.locallen > 0 && a.domainlen > 0);
	if (a.flags & ADDR_F_UTF8)
		REQUIRE(allow & ADDR_ALLOW_UTF8);
	if (!(a.flags & ADDR_F_LITERAL)) {
		for (size_t i = 0; i < a.domainlen; i++)
			REQUIRE(a.domain[i] < 'A' || a.domain[i] > 'Z');
	}
	if (a.domainlen > 0)
		REQUIRE(domain_valid(a.domain, a.domainlen, (allow & ADDR_ALLOW_UTF8) != 0));

	/* Format and parse again: the same address, route and dot gone. */
	char text[ADDR_TEXT_MAX], again[ADDR_TEXT_MAX + 2];
	size_t n = addr_format(&a, text, sizeof text);
	REQUIRE(n < sizeof text && text[n] == 0 && strlen(text) == n);
	again[0] = '<';
	memcpy(again + 1, text, n);
	again[n + 1] = '>';
	struct addr b;
	REQUIRE(parse(again, n + 2, allow, &b) == ADDR_OK);
	REQUIRE(b.flags == (a.flags & ~(ADDR_F_ROUTE | ADDR_F_TRAILDOT)));
	REQUIRE(b.locallen == a.locallen && memcmp(b.local, a.local, a.locallen) == 0);
	REQUIRE(b.domainlen == a.domainlen && memcmp(b.domain, a.domain, a.domainlen) == 0);

	/* Too small a buffer: 0 and an empty string, never an overflow. */
	if (n > 0) {
		char *small = malloc(n);
		REQUIRE(addr_format(&a, small, n) == 0 && small[0] == 0);
		free(small);
	}
	return 0;
}
