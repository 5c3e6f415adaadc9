/* tests/unit/test_kv.c -- policy/kv.c: the kernel command line and uevent
 * files, whole and cut at every offset (a word never runs past the end). */
#include <stdlib.h>

#include "t.h"
#include "policy/kv.h"

/* All items of buf as "key=value|" or "key|" into out. */
static void dump(int uevent, const char *buf, size_t len, char *out, size_t cap)
{
	struct kv kv;
	size_t pos = 0, o = 0;

	out[0] = '\0';
	while (uevent ? kv_uevent_next(buf, len, &pos, &kv) : kv_cmdline_next(buf, len, &pos, &kv)) {
		CHECK(pos <= len);
		CHECK(kv.key >= buf && kv.key + kv.keylen <= buf + len);
		CHECK(kv.val == NULL || (kv.val >= buf && kv.val + kv.vallen <= buf + len));
		o += (size_t)snprintf(out + o, cap - o, "%.*s%s%.*s|", (int)kv.keylen, kv.key,
		                      kv.val ? "=" : "", (int)kv.vallen, kv.val ? kv.val : "");
		if (o >= cap)
			break;
	}
	CHECK(pos == len);
}

static void cmdline(const char *in, const char *want)
{
	char out[1024];

	dump(0, in, strlen(in), out, sizeof out);
	CHECKF(strcmp(out, want) == 0, "in %s: got %s want %s", in, out, want);
}

static void test_cmdline(void)
{
	cmdline("", "");
	cmdline("   \n", "");
	cmdline("quiet", "quiet|");
	cmdline("console=tty0 console=ttyS0,115200 quiet panic=10\n",
	        "console=tty0|console=ttyS0,115200|quiet|panic=10|");
	cmdline("moat.net-address=10.0.2.15/24  moat.net-gateway=10.0.2.2",
	        "moat.net-address=10.0.2.15/24|moat.net-gateway=10.0.2.2|");
	cmdline("a=\"b c\" d", "a=b c|d|");
	cmdline("\"a=b c\" d", "a=b c|d|");
	cmdline("a=", "a=|");
	cmdline("=x", "=x|");
	cmdline("a=b=c", "a=b=c|");
	cmdline("a=\"unterminated rest", "a=unterminated rest|");
	cmdline("\"", "|");
	cmdline("a\tb\r\nc", "a|b|c|");
}

static void test_uevent(void)
{
	static const char ue[] = "MAJOR=254\nMINOR=2\nDEVNAME=vda2\nDEVTYPE=partition\n"
	                         "PARTN=2\nPARTNAME=moat-data\n";
	char out[1024];
	struct kv kv;
	size_t pos = 0;
	int found = 0;

	dump(1, ue, strlen(ue), out, sizeof out);
	CHECK(strcmp(out, "MAJOR=254|MINOR=2|DEVNAME=vda2|DEVTYPE=partition|PARTN=2|"
	                  "PARTNAME=moat-data|") == 0);
	while (kv_uevent_next(ue, strlen(ue), &pos, &kv))
		if (kv_is(&kv, "PARTNAME"))
			found = kv.vallen == 9 && memcmp(kv.val, "moat-data", 9) == 0;
	CHECK(found);
	/* A value with spaces is kept whole; blank lines and a missing final
	 * line end are fine; a line without '=' has no value. */
	dump(1, "\n\nPARTNAME=my data\nX\nY=1", 24, out, sizeof out);
	CHECK(strcmp(out, "PARTNAME=my data|X|Y=1|") == 0);
}

/* Cut at every offset: each prefix parses within its bounds (dump() checks
 * every pointer against the prefix length), under ASan on a heap copy of
 * exactly that size. */
static void test_prefixes(void)
{
	static const char *const inputs[] = {
		"console=ttyS0 \"moat.x=a b\" moat.y=\"c d\" quiet\n",
		"DEVNAME=vda2\nPARTNAME=moat-data\n",
	};
	char out[1024];

	for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
		size_t n = strlen(inputs[i]);
		for (size_t cut = 0; cut <= n; cut++) {
			char *copy = malloc(cut ? cut : 1);
			memcpy(copy, inputs[i], cut);
			dump(0, copy, cut, out, sizeof out);
			dump(1, copy, cut, out, sizeof out);
			free(copy);
		}
	}
}

static void test_kv_is(void)
{
	struct kv kv = { "moat.data", 9, "x", 1 };

	CHECK(kv_is(&kv, "moat.data"));
	CHECK(!kv_is(&kv, "moat.dat"));
	CHECK(!kv_is(&kv, "moat.data2"));
}

int main(void)
{
	RUN(test_cmdline);
	RUN(test_uevent);
	RUN(test_prefixes);
	RUN(test_kv_is);
	return t_main_end();
}
