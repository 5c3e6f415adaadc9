/*
 * tests/fuzz/fuzz_proxy.c -- proxy_parse() and proxy_refusal(), the PROXY
 * protocol header (policy/proxy.h), v1 and v2.
 *
 * The input is what a load balancer (or anyone who reaches a proxy
 * listener) sends first.  It is parsed from a heap copy of exactly its
 * length (ASan sees any over-read); the answer must be one the header
 * promises, every prefix must give "need more" or the whole's answer (the
 * server parses again as bytes arrive), and a v1 header that parsed must
 * parse to the same fields once written back in canonical form.  A refused
 * header gets one of proxy_refusal()'s three words, read without over-read.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/proxy.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

static int parse(const uint8_t *data, size_t len, struct proxy_hdr *h)
{
	unsigned char *b = malloc(len ? len : 1);
	int got;

	memcpy(b, data, len);
	got = proxy_parse(b, len, h);
	free(b);
	return got;
}

static int same(const struct proxy_hdr *a, const struct proxy_hdr *b)
{
	return a->version == b->version && a->kind == b->kind && ip_equal(&a->src, &b->src) &&
	       ip_equal(&a->dst, &b->dst) && a->src_port == b->src_port &&
	       a->dst_port == b->dst_port && a->ntlv == b->ntlv && a->crc32c == b->crc32c;
}

/* What the header promises of a good answer. */
static void check_good(const uint8_t *data, int got, const struct proxy_hdr *h)
{
	REQUIRE(got <= PROXY_HDR_MAX);
	REQUIRE(h->kind <= PROXY_UNKNOWN);
	if (h->version == 1) {
		REQUIRE(got <= PROXY_V1_MAX && data[got - 2] == '\r' && data[got - 1] == '\n');
		REQUIRE(h->kind != PROXY_LOCAL && h->ntlv == 0 && !h->crc32c);
	} else {
		REQUIRE(h->version == 2);
		REQUIRE((size_t)got == PROXY_V2_HEAD + ((size_t)data[14] << 8 | data[15]));
	}
	if (h->kind == PROXY_FORWARDED)
		REQUIRE((h->src.family == IP_V4 || h->src.family == IP_V6) &&
		        h->src.family == h->dst.family);
	else
		REQUIRE(h->src.family == 0 && h->dst.family == 0 && h->src_port == 0 &&
		        h->dst_port == 0);
	struct ipaddr peer = { IP_V4, { 10, 0, 0, 1 } }, client;
	proxy_client(h, &peer, &client);
	REQUIRE(client.family == IP_V4 || client.family == IP_V6);
}

/* A v1 FORWARDED header written back canonically reads the same. */
static void check_v1_roundtrip(const struct proxy_hdr *h)
{
	char line[PROXY_V1_MAX + 64], a[IP_TEXT_MAX], b[IP_TEXT_MAX];
	struct proxy_hdr again;

	ip_format(&h->src, a, sizeof a);
	ip_format(&h->dst, b, sizeof b);
	int n = snprintf(line, sizeof line, "PROXY TCP%c %s %s %u %u\r\n",
	                 h->src.family == IP_V4 ? '4' : '6', a, b, h->src_port, h->dst_port);
	REQUIRE(n > 0 && (size_t)n < sizeof line);
	REQUIRE(parse((const uint8_t *)line, (size_t)n, &again) == n && same(h, &again));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_hdr h, p;
	int got = parse(data, size, &h);

	REQUIRE(got == -2 || got == -1 || (got > 0 && (size_t)got <= size));
	if (got == -2)
		REQUIRE(size < PROXY_HDR_MAX);
	if (got == -1) {
		/* The log's word for it, read from the same bytes. */
		unsigned char *b = malloc(size ? size : 1);
		const char *why;

		memcpy(b, data, size);
		why = proxy_refusal(b, size);
		free(b);
		REQUIRE(strcmp(why, "missing") == 0 || strcmp(why, "too-long") == 0 ||
		        strcmp(why, "malformed") == 0);
	}
	if (got > 0) {
		check_good(data, got, &h);
		if (h.version == 1 && h.kind == PROXY_FORWARDED)
			check_v1_roundtrip(&h);
	}
	/* Prefixes: all of them for short inputs, a few for long ones. */
	for (size_t cut = 0; cut < size; cut += size < 160 ? 1 : size / 32 + 1) {
		int pr = parse(data, cut, &p);

		REQUIRE(pr == -2 || (pr == -1 && got == -1) || (pr > 0 && pr == got && same(&p, &h)));
	}
	return 0;
}
