/*
 * tests/fuzz/fuzz_hosts.c -- the hosts file (policy/hosts.h).
 *
 * The input is "NAME\0FILE".  Each address found must be on a line, before
 * any '#', whose first field is that address and whose other fields name
 * NAME (checked here by a second reading, line by line with strtok_r);
 * none twice; at most max; and every such line's address is found (when
 * there is room).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/hosts.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

static int same(const char *a, const char *b)
{
	size_t al = strlen(a), bl = strlen(b);

	if (al && a[al - 1] == '.')
		al--;
	if (bl && b[bl - 1] == '.')
		bl--;
	return al == bl && al > 0 && strncasecmp(a, b, al) == 0;
}

/* The addresses of name, the slow way. */
static size_t model(const char *text, size_t len, const char *name, struct ipaddr *out,
                    size_t max)
{
	char *copy = malloc(len + 1), *save = NULL, *line;
	size_t n = 0;

	memcpy(copy, text, len);
	copy[len] = '\0';
	/* a NUL ends nothing for the parser: make it a field of its own */
	for (size_t i = 0; i < len; i++)
		if (copy[i] == '\0')
			copy[i] = '\x01';
	for (line = strtok_r(copy, "\n", &save); line && n < max; line = strtok_r(NULL, "\n", &save)) {
		char *hash = strchr(line, '#'), *s2 = NULL, *f;
		struct ipaddr ip;
		int hit = 0;

		if (hash)
			*hash = '\0';
		f = strtok_r(line, " \t\r\v\f", &s2);
		if (f == NULL || ip_parse(f, strlen(f), &ip) != 0)
			continue;
		while (!hit && (f = strtok_r(NULL, " \t\r\v\f", &s2)) != NULL)
			hit = same(f, name);
		if (!hit)
			continue;
		size_t i = 0;
		while (i < n && !ip_equal(&out[i], &ip))
			i++;
		if (i == n)
			out[n++] = ip;
	}
	free(copy);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nul = memchr(data, 0, size);
	struct ipaddr got[8], want[8];
	size_t max, n, m;
	char name[300];

	if (nul == NULL || (size_t)(nul - (const char *)data) >= sizeof name || size < 1)
		return 0;
	memcpy(name, data, (size_t)(nul - (const char *)data) + 1);
	if (strchr(name, '\x01') != NULL)
		return 0;       /* (the model's stand-in for NUL) */
	const char *text = nul + 1;
	size_t len = size - (size_t)(text - (const char *)data);
	max = 1 + data[0] % 8;
	n = hosts_lookup(text, len, name, got, max);
	m = model(text, len, name, want, max);
	REQUIRE(n <= max);
	REQUIRE(n == m);
	for (size_t i = 0; i < n; i++) {
		REQUIRE(ip_equal(&got[i], &want[i]));
		for (size_t j = 0; j < i; j++)
			REQUIRE(!ip_equal(&got[i], &got[j]));
	}
	return 0;
}
