/* tests/unit/test_idna.c -- UTF-8 domains to A-labels (policy/idna.c),
 * against RFC 3492's sample strings and hostile UTF-8. */
#include <stdlib.h>

#include "policy/idna.h"
#include "tests/unit/t.h"

static const struct { const char *in, *out; } good[] = {
	{ "example.com", "example.com" },
	{ "Example.COM.", "example.com" },
	{ "b\xc3\xbc" "cher.example", "xn--bcher-kva.example" },
	{ "m\xc3\xbcnchen.de", "xn--mnchen-3ya.de" },
	{ "Ma\xc3\xb1" "ana.com", "xn--maana-pta.com" },
	{ "\xe4\xbe\x8b\xe3\x81\x88.\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88", "xn--r8jz45g.xn--zckzah" },
	/* RFC 3492 7.1 (L): 3<nen>B<gumi><kinpachi><sensei> */
	{ "3\xe5\xb9\xb4" "B\xe7\xb5\x84\xe9\x87\x91\xe5\x85\xab\xe5\x85\x88\xe7\x94\x9f",
	  "xn--3b-ww4c5e180e575a65lsy2b" },
	/* RFC 3492 7.1 (A): Arabic (Egyptian) */
	{ "\xd9\x84\xd9\x8a\xd9\x87\xd9\x85\xd8\xa7\xd8\xa8\xd8\xaa\xd9\x83\xd9\x84\xd9\x85\xd9\x88"
	  "\xd8\xb4\xd8\xb9\xd8\xb1\xd8\xa8\xd9\x8a\xd8\x9f", "xn--egbpdaj6bu4bxfgehfvwxn" },
};

static const char *const bad[] = {
	"", ".", "a..b", ".a", "a..", "a b", "\xc3", "\xc0\xaf.com", "\xed\xa0\x80.com",
	"\xf4\x90\x80\x80.com", "\xff.com", "a\xe2\x82.com",
};

static void test_good(void)
{
	char out[300];

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		size_t n = idna_to_ascii(good[i].in, strlen(good[i].in), out, sizeof out);
		CHECKF(n == strlen(good[i].out) && strcmp(out, good[i].out) == 0, "case %zu: %s", i,
		       n ? out : "(failed)");
		/* Too small an output: refused, never overrun. */
		CHECK(idna_to_ascii(good[i].in, strlen(good[i].in), out, n) == 0);
	}
}

static void test_bad(void)
{
	char out[300];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECKF(idna_to_ascii(bad[i], strlen(bad[i]), out, sizeof out) == 0, "case %zu", i);
	/* A label whose A-label passes 63 octets: 30 different CJK
	 * characters (U+4E00 + 37 i) make 67; 10 of them make 25. */
	char big[200];
	size_t n = 0;
	for (unsigned i = 0; i < 30; i++) {
		unsigned c = 0x4e00 + i * 37;
		big[n++] = (char)(0xe0 | c >> 12);
		big[n++] = (char)(0x80 | (c >> 6 & 0x3f));
		big[n++] = (char)(0x80 | (c & 0x3f));
	}
	memcpy(big + n, ".com", 4);
	CHECK(idna_to_ascii(big, n + 4, out, sizeof out) == 0);
	CHECK(idna_to_ascii(big, 30, out, sizeof out) == 25 && strncmp(out, "xn--", 4) == 0);
}

int main(void)
{
	RUN(test_good);
	RUN(test_bad);
	return t_main_end();
}
