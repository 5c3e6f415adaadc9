/*
 * tests/fuzz/fuzz_dkim.c -- policy/dkim.c on arbitrary messages.
 *
 * The input is a message as queued.  Invariants: the body hash does not
 * depend on how the bytes are split (whole, byte by byte, and pieces sized
 * by the input itself); the header block kept is a prefix of the input;
 * fields tile the block exactly; the relaxed form of a field is never
 * longer than the field + 2 and has exactly one line end, at its end;
 * the tag parser and the From: and d= readers end and stay inside their
 * input; when the From: domain has a key, the prepared header is
 * NUL-free, within its caps, and its finished form ends in CRLF.  Inputs
 * are exact-size heap copies, for ASan.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/dkim.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)
#define HDR_CAP 4096

static void body_split(const unsigned char *p, size_t n, size_t step, unsigned char bh[32])
{
	struct dkim_msg m;
	static char hdr[HDR_CAP];

	dkim_msg_init(&m, hdr, sizeof hdr);
	for (size_t k = 0; k < n; k += step)
		dkim_msg_feed(&m, p + k, n - k < step ? n - k : step);
	dkim_msg_end(&m, bh);
}

static void fields(const char *hdr, size_t hlen)
{
	static char out[HDR_CAP + 3];
	struct dkim_field f;
	size_t pos = 0, end = 0;
	char d[DKIM_DOMAIN_MAX + 1];

	while (dkim_field_next(hdr, hlen, &pos, &f)) {
		REQUIRE(f.off == end && f.len > 0 && f.off + f.len == pos && pos <= hlen);
		REQUIRE(f.namelen < f.len);
		end = pos;
		if (f.namelen == 0)
			continue;
		size_t n = dkim_header_relaxed(hdr + f.off, f.len, f.namelen, out, sizeof out);
		REQUIRE(n <= f.len + 2 && n < sizeof out && out[n - 2] == '\r' && out[n - 1] == '\n');
		REQUIRE(memchr(out, '\n', n - 1) == NULL);
		if (dkim_sig_domain(hdr + f.off, f.len, f.namelen, d) == 0)
			REQUIRE(strlen(d) > 0 && strlen(d) <= DKIM_DOMAIN_MAX);
		/* The tag parser on the value: it ends, inside the value. */
		struct dkim_tag t;
		size_t tp = 0, ntags = 0;
		while (dkim_tag_next(hdr + f.off, f.len, &tp, &t) == 1) {
			REQUIRE(tp <= f.len && t.namelen > 0 && ++ntags <= f.len);
			REQUIRE(t.value >= hdr + f.off && t.value + t.valuelen <= hdr + f.off + f.len);
		}
	}
	REQUIRE(end == hlen);
}

static void sign(const char *hdr, size_t hlen, const unsigned char bh[32])
{
	static struct dkim_pending p;
	static char out[DKIM_SIGHDR_MAX], data[3 * HDR_CAP];
	static const unsigned char sig[DKIM_SIG_MAX] = { 1, 2, 3 };
	char domain[ADDR_DOMAIN_MAX + 1];
	const char *why;

	if (dkim_from_domain(hdr, hlen, domain, &why) != 0)
		return;
	REQUIRE(strlen(domain) > 0);
	struct dkim_spec spec = { "example.org", "sel", NULL, 1234567890 };
	if (dkim_prepare(hdr, hlen, bh, &spec, &p, &why) != 0)
		return;
	REQUIRE(p.len < sizeof p.head && strlen(p.head) == p.len);
	size_t n = dkim_header_finish(&p, sig, sizeof sig, out, sizeof out);
	REQUIRE(n < sizeof out && out[n - 2] == '\r' && out[n - 1] == '\n');
	n = dkim_signed_data(hdr, hlen, bh, &spec, data, sizeof data);
	REQUIRE(n > 0 && n < sizeof data);
	(void)dkim_signed_by(hdr, hlen, domain);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *p = malloc(size ? size : 1);
	unsigned char a[32], b[32], c[32];
	static char hdr[HDR_CAP];
	struct dkim_msg m;

	memcpy(p, data, size);
	body_split(p, size, size ? size : 1, a);
	body_split(p, size, 1, b);
	body_split(p, size, 1 + (size ? p[0] % 97 : 0), c);
	REQUIRE(memcmp(a, b, 32) == 0 && memcmp(a, c, 32) == 0);

	dkim_msg_init(&m, hdr, sizeof hdr);
	dkim_msg_feed(&m, p, size);
	int r = dkim_msg_end(&m, a);
	REQUIRE(m.hlen <= size && memcmp(hdr, p, m.hlen) == 0);
	if (r == 0) {
		char *h = malloc(m.hlen ? m.hlen : 1);
		memcpy(h, hdr, m.hlen);
		fields(h, m.hlen);
		sign(h, m.hlen, a);
		free(h);
	}
	free(p);
	return 0;
}
