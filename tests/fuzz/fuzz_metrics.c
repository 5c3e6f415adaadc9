/*
 * tests/fuzz/fuzz_metrics.c -- metrics_observe(), metrics_kv() and
 * metrics_format() (policy/metrics.h).
 *
 * The input is a run of log events, one a line: the first word is the
 * event's name, the rest its key=value text (which carries quoted client
 * words in real life).  After counting them all, the scrape text must be
 * what the header says: its length as returned, label values only of the
 * kept alphabet, families bounded, and the same text twice.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/metrics.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

static struct metrics m;

static void check_family(const struct metrics_family *f)
{
	REQUIRE(f->n <= METRICS_LABELS_MAX);
	for (size_t i = 0; i < f->n; i++) {
		size_t n = strlen(f->value[i]);

		REQUIRE(n > 0 && n <= METRICS_LABEL_MAX);
		for (size_t k = 0; k < n; k++) {
			char c = f->value[i][k];
			REQUIRE((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
			        c == '-' || c == '_');
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct metrics_gauges g;
	const char *p = (const char *)data, *end = p + size;
	char name[32];
	static char a[1 << 16], b[1 << 16];
	size_t na, nb;

	metrics_init(&m);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end, *sp = memchr(p, ' ', (size_t)(le - p));
		size_t nlen = (size_t)((sp ? sp : le) - p);
		char *kv;
		size_t kvlen = sp ? (size_t)(le - sp - 1) : 0;
		size_t vlen;
		const char *v;

		if (nlen >= sizeof name)
			nlen = sizeof name - 1;
		memcpy(name, p, nlen);
		name[nlen] = 0;
		kv = malloc(kvlen ? kvlen : 1); /* exact size: ASan sees over-reads */
		if (kvlen)
			memcpy(kv, sp + 1, kvlen);
		metrics_observe(&m, name, kv, kvlen);
		v = metrics_kv(kv, kvlen, "reason", &vlen);
		REQUIRE(v == NULL || (v >= kv && v + vlen <= kv + kvlen));
		free(kv);
		p = nl ? nl + 1 : end;
	}
	check_family(&m.rejections);
	check_family(&m.quota);
	check_family(&m.deliveries);
	check_family(&m.bounces);
	check_family(&m.reloads);
	memset(&g, 0, sizeof g);
	g.queue_read = size & 1;
	na = metrics_format(&m, &g, size & 2 ? METRICS_OPENMETRICS : 0, a, sizeof a);
	nb = metrics_format(&m, &g, size & 2 ? METRICS_OPENMETRICS : 0, b, sizeof b);
	REQUIRE(na == nb && na < sizeof a && strlen(a) == na && memcmp(a, b, na) == 0);
	REQUIRE(metrics_format(&m, &g, size & 2 ? METRICS_OPENMETRICS : 0, NULL, 0) == na);
	return 0;
}
