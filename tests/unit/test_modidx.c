/* tests/unit/test_modidx.c -- policy/modidx.c: the module index's records,
 * whole and cut at every offset, bad lines refused and skipped, and the
 * alias glob checked against the C library's fnmatch() (what kmod uses)
 * on fixed cases and on random patterns and aliases. */
#include <fnmatch.h>
#include <stdlib.h>

#include "t.h"
#include "policy/modidx.h"

static const char index_text[] =
	"# moat module index\n"
	"module virtio_ring\n"
	"module virtio_pci virtio_ring virtio\n"
	"\n"
	"   module   ext4  crc16 jbd2   \r\n"
	"alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci\n"
	"alias acpi*:PNP0C0C:* button";

/* Every record of buf as "M:name,dep,...;" or "A:pattern=name;". */
static void dump(const char *buf, size_t len, char *out, size_t cap, int *bad)
{
	struct modidx_line ln;
	size_t pos = 0, o = 0;
	int r;

	memset(&ln, 0, sizeof ln);
	out[0] = '\0';
	*bad = 0;
	while ((r = modidx_next(buf, len, &pos, &ln)) != 0) {
		CHECK(pos <= len);
		if (r < 0) {
			(*bad)++;
			continue;
		}
		o += (size_t)snprintf(out + o, cap - o, "%s", ln.kind == MODIDX_MODULE ? "M:" : "A:");
		for (size_t k = 0; k < ln.nwords && o < cap; k++) {
			CHECK(ln.word[k] >= buf && ln.word[k] + ln.wlen[k] <= buf + len);
			o += (size_t)snprintf(out + o, cap - o, "%s%.*s",
			                      k == 0 ? "" : ln.kind == MODIDX_ALIAS ? "=" : ",",
			                      (int)ln.wlen[k], ln.word[k]);
		}
		if (o < cap)
			o += (size_t)snprintf(out + o, cap - o, ";");
	}
	CHECK(pos == len);
}

static void test_records(void)
{
	char out[1024];
	int bad;

	dump(index_text, strlen(index_text), out, sizeof out, &bad);
	CHECKF(strcmp(out, "M:virtio_ring;M:virtio_pci,virtio_ring,virtio;M:ext4,crc16,jbd2;"
	                   "A:pci:v00001AF4d*sv*sd*bc*sc*i*=virtio_pci;A:acpi*:PNP0C0C:*=button;") == 0,
	       "got %s", out);
	CHECK(bad == 0);
}

static void test_line_numbers(void)
{
	struct modidx_line ln;
	size_t pos = 0;

	memset(&ln, 0, sizeof ln);
	CHECK(modidx_next(index_text, strlen(index_text), &pos, &ln) == 1 && ln.lineno == 2);
	CHECK(modidx_next(index_text, strlen(index_text), &pos, &ln) == 1 && ln.lineno == 3);
	CHECK(modidx_next(index_text, strlen(index_text), &pos, &ln) == 1 && ln.lineno == 5);
}

/* Each bad line is refused, and the record after it still read. */
static void test_bad_lines(void)
{
	static const char *const bad[] = {
		"modules x", "module", "alias onlypattern", "alias a b c", "module a/b",
		"module ok ../x", "alias p a/b",
		"module 01234567890123456789012345678901234567890123456789012345",
		"module m 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24",
	};
	char buf[512], out[512];
	int nbad;

	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		snprintf(buf, sizeof buf, "%s\nmodule after\n", bad[k]);
		dump(buf, strlen(buf), out, sizeof out, &nbad);
		CHECKF(nbad == 1 && strcmp(out, "M:after;") == 0, "%s: bad %d out %s", bad[k], nbad, out);
	}
	/* 23 dependencies is the most a line holds. */
	snprintf(buf, sizeof buf, "module m 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23\n");
	dump(buf, strlen(buf), out, sizeof out, &nbad);
	CHECK(nbad == 0 && strncmp(out, "M:m,1,2,", 8) == 0);
}

/* Cut at every offset: words stay inside the piece, the walk ends. */
static void test_every_cut(void)
{
	char out[1024];
	int bad;

	for (size_t cut = 0; cut <= strlen(index_text); cut++) {
		char *piece = malloc(cut + 1);
		memcpy(piece, index_text, cut);
		dump(piece, cut, out, sizeof out, &bad);
		free(piece);
	}
}

static void match(const char *pat, const char *alias, int want)
{
	int got = modidx_match(pat, strlen(pat), alias, strlen(alias));
	int ref = fnmatch(pat, alias, 0) == 0;

	CHECKF(got == want, "%s ~ %s: got %d want %d", pat, alias, got, want);
	CHECKF(ref == want, "%s ~ %s: fnmatch says %d", pat, alias, ref);
}

static void test_match(void)
{
	match("pci:v00001AF4d*sv*sd*bc*sc*i*", "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00", 1);
	match("pci:v00001AF4d*sv*sd*bc*sc*i*", "pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01", 0);
	match("pci:v*d*sv*sd*bc01sc06i01*", "pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01", 1);
	match("acpi*:PNP0C0C:*", "acpi:PNP0C0C:", 1);
	match("acpi*:LNXPWRBN:*", "acpi:LNXPWRBN:", 1);
	match("acpi*:LNXPWRBN:*", "acpi:LNXPWRBX:", 0);
	match("cpu:type:x86,ven*fam*mod*:feature:*0094*",
	      "cpu:type:x86,ven0000fam0006mod003F:feature:,0000,0001,0094,00E5", 1);
	match("cpu:type:x86,ven*fam*mod*:feature:*0094*",
	      "cpu:type:x86,ven0000fam0006mod003F:feature:,0000,0001,0095", 0);
	match("virtio:d00000002v*", "virtio:d00000002v00001AF4", 1);
	match("", "", 1);
	match("", "a", 0);
	match("*", "", 1);
	match("a?c", "abc", 1);
	match("a?c", "ac", 0);
	match("[ab]x", "bx", 1);
	match("[!ab]x", "bx", 0);
	match("[!ab]x", "cx", 1);
	match("[a-c]", "b", 1);
	match("[a-c]", "d", 0);
	match("[]]", "]", 1);
	match("[", "[", 1);
	match("a[bc", "a[bc", 1);
	match("**a*b*", "xxaxxb", 1);
	match("*a*b", "xxaxxbx", 0);
}

/* Random patterns over a small alphabet, against fnmatch(). */
static void test_match_random(void)
{
	static const char pa[] = "ab*?[]!-", aa[] = "ab-]";
	char pat[12], alias[12];
	unsigned seed = 12345;

	for (int n = 0; n < 200000; n++) {
		size_t pl = (seed = seed * 1103515245u + 12345u) >> 16 & 7;
		size_t al = (seed = seed * 1103515245u + 12345u) >> 16 & 7;
		for (size_t k = 0; k < pl; k++)
			pat[k] = pa[((seed = seed * 1103515245u + 12345u) >> 16) % (sizeof pa - 1)];
		for (size_t k = 0; k < al; k++)
			alias[k] = aa[((seed = seed * 1103515245u + 12345u) >> 16) % (sizeof aa - 1)];
		pat[pl] = alias[al] = '\0';
		/* fnmatch treats "[!]" and "[^...]" edge cases per POSIX; keep
		 * to sets that both define alike: no '^', '!' only first. */
		int got = modidx_match(pat, pl, alias, al);
		int ref = fnmatch(pat, alias, 0) == 0;
		CHECKF(got == ref, "%s ~ %s: got %d, fnmatch %d", pat, alias, got, ref);
		if (got != ref)
			break;
	}
}

int main(void)
{
	RUN(test_records);
	RUN(test_line_numbers);
	RUN(test_bad_lines);
	RUN(test_every_cut);
	RUN(test_match);
	RUN(test_match_random);
	return t_main_end();
}
