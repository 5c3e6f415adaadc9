/* tests/unit/test_pem.c -- policy/pem.c: PEM blocks to DER. */
#include <string.h>

#include "t.h"
#include "policy/pem.h"

static const char two[] =
	"Bag Attributes: ignored text before a block\n"
	"-----BEGIN CERTIFICATE-----\r\n"
	"Zm9v\r\n"
	"YmFy\r\n"
	"-----END CERTIFICATE-----\r\n"
	"\n"
	"-----BEGIN EC PRIVATE KEY-----\n"
	"AAEC\n"
	"-----END EC PRIVATE KEY-----";

static void test_blocks(void)
{
	unsigned char der[64];
	struct pem_block b;
	size_t pos = 0;
	const char *why;

	CHECK(pem_next(two, sizeof two - 1, &pos, &b, der, sizeof der, &why) == PEM_OK);
	CHECK(strcmp(b.label, "CERTIFICATE") == 0 && b.derlen == 6 && memcmp(der, "foobar", 6) == 0);
	CHECK(b.line == 2);
	CHECK(pem_next(two, sizeof two - 1, &pos, &b, der, sizeof der, &why) == PEM_OK);
	CHECK(strcmp(b.label, "EC PRIVATE KEY") == 0 && b.derlen == 3 && der[2] == 2 && b.line == 7);
	CHECK(pem_next(two, sizeof two - 1, &pos, &b, der, sizeof der, &why) == PEM_END);
	/* Too small a buffer. */
	pos = 0;
	CHECK(pem_next(two, sizeof two - 1, &pos, &b, der, 2, &why) != PEM_OK);
	/* Nothing at all. */
	pos = 0;
	CHECK(pem_next("", 0, &pos, &b, der, sizeof der, &why) == PEM_END);
}

static void test_bad(void)
{
	static const struct { const char *text, *why; } cases[] = {
		{ "-----BEGIN X-----\nZm9v\n", "no END line" },
		{ "-----BEGIN X-----\nZm9v\n-----END Y-----\n", "END label does not match BEGIN" },
		{ "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nZm9v\n-----END RSA PRIVATE KEY-----\n",
		  "encrypted or with headers (use a key without a passphrase)" },
		{ "-----BEGIN X-----\nZm9v!\n-----END X-----\n", "bad base64" },
		{ "-----BEGIN X-----\n-----END X-----\n", "empty block" },
		{ "-----BEGIN X-----\n-----BEGIN X-----\n-----END X-----\n", "BEGIN inside a block" },
	};
	unsigned char der[64];
	struct pem_block b;

	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		size_t pos = 0;
		const char *why = NULL;
		enum pem_result r = pem_next(cases[k].text, strlen(cases[k].text), &pos, &b, der,
		                             sizeof der, &why);
		CHECKF(r == PEM_EBAD && strcmp(why, cases[k].why) == 0, "case %zu: %d %s", k, r, why);
	}
}

/* Every prefix of a good file: never a crash, never a block past the end. */
static void test_prefixes(void)
{
	unsigned char der[64];
	struct pem_block b;

	for (size_t n = 0; n <= sizeof two - 1; n++) {
		size_t pos = 0, blocks = 0;
		const char *why;
		enum pem_result r;

		while ((r = pem_next(two, n, &pos, &b, der, sizeof der, &why)) == PEM_OK) {
			CHECK(pos <= n);
			blocks++;
		}
		CHECK(blocks <= 2);
	}
}

int main(void)
{
	RUN(test_blocks);
	RUN(test_bad);
	RUN(test_prefixes);
	return t_main_end();
}
