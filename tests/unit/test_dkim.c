/* tests/unit/test_dkim.c -- policy/dkim.c: canonicalisation, fields, tags,
 * the From: domain, key choice, h= selection and the signature header.
 * dkimpy checks the signatures themselves (tests/dkim/test_dkim.py). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <bearssl_hash.h>

#include "t.h"
#include "policy/base64.h"
#include "policy/conf.h"
#include "policy/dkim.h"

/* ---- a plain reference for the relaxed body (RFC 6376 3.4.4), written
 * the obvious way -- whole lines, then trailing ones dropped -- to hold
 * the streaming state machine against. */

/* Canonical body of in[0..len) into out (big enough: 2 * len + 2). */
static size_t ref_body(const unsigned char *in, size_t len, unsigned char *out)
{
	size_t o = 0, keep = 0, i = 0;

	while (i < len) {
		size_t s = i, e;
		while (i < len && in[i] != '\r' && in[i] != '\n')
			i++;
		e = i;
		if (i < len && in[i] == '\r' && i + 1 < len && in[i + 1] == '\n')
			i += 2;
		else if (i < len)
			i++;
		/* One line: WSP at its end dropped, runs made one SP. */
		while (e > s && (in[e - 1] == ' ' || in[e - 1] == '\t'))
			e--;
		for (size_t k = s; k < e; k++) {
			if (in[k] == ' ' || in[k] == '\t') {
				if (k == s || (in[k - 1] != ' ' && in[k - 1] != '\t'))
					out[o++] = ' ';
			} else {
				out[o++] = in[k];
			}
		}
		out[o++] = '\r';
		out[o++] = '\n';
		if (e > s)
			keep = o;       /* the end of the last line with content */
	}
	return keep;                    /* trailing empty lines dropped, "" if none */
}

static void sha(const void *p, size_t n, unsigned char h[32])
{
	br_sha256_context c;

	br_sha256_init(&c);
	br_sha256_update(&c, p, n);
	br_sha256_out(&c, h);
}

static void body_hash(const void *p, size_t n, size_t chunk, unsigned char h[32])
{
	struct dkim_body b;
	const unsigned char *s = p;

	dkim_body_init(&b);
	for (size_t k = 0; k < n; k += chunk)
		dkim_body_feed(&b, s + k, n - k < chunk ? n - k : chunk);
	dkim_body_end(&b, h);
}

static const struct { const char *in, *canon; } bodies[] = {
	{ " C \r\nD \t E\r\n\r\n\r\n", " C\r\nD E\r\n" },     /* RFC 6376 3.4.5 */
	{ "", "" },
	{ "\r\n", "" },
	{ "\r\n\r\n \r\n\t\r\n", "" },
	{ "abc", "abc\r\n" },
	{ "abc  ", "abc\r\n" },
	{ "a\r\n\r\nb\r\n\r\n", "a\r\n\r\nb\r\n" },
	{ "a \r\n \r\nb", "a\r\n\r\nb\r\n" },
	{ "a\nb\n\n", "a\r\nb\r\n" },                           /* bare LF: a line end */
	{ "a\rb\r\r", "a\r\nb\r\n" },                           /* bare CR too */
	{ "a\r\r\nb", "a\r\n\r\nb\r\n" },
	{ "\t x\t\ty \r\n", " x y\r\n" },
	{ "x\0y \r\n", "x\0y\r\n" },
};

static void test_body_cases(void)
{
	unsigned char want[32], got[32];

	for (size_t k = 0; k < sizeof bodies / sizeof bodies[0]; k++) {
		/* "x\0y" holds a NUL: lengths from the canon strings' known forms. */
		size_t n = k == 12 ? 6 : strlen(bodies[k].in), cn = k == 12 ? 5 : strlen(bodies[k].canon);
		unsigned char ref[64];

		CHECKF(ref_body((const unsigned char *)bodies[k].in, n, ref) == cn &&
		       memcmp(ref, bodies[k].canon, cn) == 0, "reference, case %zu", k);
		sha(bodies[k].canon, cn, want);
		body_hash(bodies[k].in, n, n ? n : 1, got);
		CHECKF(memcmp(want, got, 32) == 0, "whole, case %zu", k);
		body_hash(bodies[k].in, n, 1, got);
		CHECKF(memcmp(want, got, 32) == 0, "byte by byte, case %zu", k);
		for (size_t cut = 0; cut <= n; cut++) {
			struct dkim_body b;
			dkim_body_init(&b);
			dkim_body_feed(&b, bodies[k].in, cut);
			dkim_body_feed(&b, bodies[k].in + cut, n - cut);
			dkim_body_end(&b, got);
			CHECKF(memcmp(want, got, 32) == 0, "case %zu cut at %zu", k, cut);
		}
	}
}

/* xorshift: explicit seeds, reproducible. */
static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Random bodies made of the bytes that matter (SP, HTAB, CR, LF) and some
 * text: the machine, fed in random pieces, equals the reference. */
static void test_body_random(void)
{
	static const char alphabet[] = " \t\r\n\r\nab.\0";
	static unsigned char in[20000], ref[2 * sizeof in + 2];
	unsigned char want[32], got[32];

	for (uint32_t seed = 1; seed <= 200; seed++) {
		uint32_t s = seed * 2654435761u;
		size_t n = rnd(&s) % (seed < 150 ? 64 : sizeof in);

		for (size_t i = 0; i < n; i++)
			in[i] = (unsigned char)alphabet[rnd(&s) % (sizeof alphabet - 1)];
		sha(ref, ref_body(in, n, ref), want);
		body_hash(in, n, n ? n : 1, got);
		CHECKF(memcmp(want, got, 32) == 0, "seed %u whole", seed);
		struct dkim_body b;
		dkim_body_init(&b);
		for (size_t k = 0; k < n;) {
			size_t c = 1 + rnd(&s) % 700;
			if (c > n - k)
				c = n - k;
			dkim_body_feed(&b, in + k, c);
			k += c;
		}
		dkim_body_end(&b, got);
		CHECKF(memcmp(want, got, 32) == 0, "seed %u random pieces", seed);
		body_hash(in, n, 1, got);
		CHECKF(memcmp(want, got, 32) == 0, "seed %u byte by byte", seed);
	}
}

/* ---- the message splitter ---------------------------------------------- */

static int msg_split(const char *m, size_t n, size_t cut, char *hdr, size_t cap, size_t *hlen,
                     unsigned char bh[32])
{
	struct dkim_msg dm;
	int r;

	dkim_msg_init(&dm, hdr, cap);
	dkim_msg_feed(&dm, m, cut);
	dkim_msg_feed(&dm, m + cut, n - cut);
	r = dkim_msg_end(&dm, bh);
	*hlen = dm.hlen;
	return r;
}

static void test_msg(void)
{
	static const struct { const char *m, *hdr, *body; } cases[] = {
		{ "A: 1\r\nB: 2\r\n\r\nbody\r\n", "A: 1\r\nB: 2\r\n", "body\r\n" },
		{ "A: 1\r\n", "A: 1\r\n", "" },                          /* no body */
		{ "A: 1", "A: 1", "" },
		{ "\r\nbody\r\n", "", "body\r\n" },                       /* no header */
		{ "A: 1\r\n folded\r\n\r\n\r\n", "A: 1\r\n folded\r\n", "\r\n" },
		{ "A: 1\n\nbody", "A: 1\n", "body" },
		{ "A: 1\r\rbody", "A: 1\r", "body" },
		{ "A: 1\r\n\rbody", "A: 1\r\n", "body" },
	};
	char hdr[64];
	unsigned char want[32], got[32];
	size_t hlen;

	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		size_t n = strlen(cases[k].m);

		body_hash(cases[k].body, strlen(cases[k].body), 1, want);
		for (size_t cut = 0; cut <= n; cut++) {
			CHECKF(msg_split(cases[k].m, n, cut, hdr, sizeof hdr, &hlen, got) == 0, "%zu", k);
			CHECKF(hlen == strlen(cases[k].hdr) && memcmp(hdr, cases[k].hdr, hlen) == 0 &&
			       memcmp(got, want, 32) == 0, "case %zu cut %zu", k, cut);
		}
	}
	/* A header block over the cap: flagged, the body still hashed. */
	CHECK(msg_split(cases[0].m, strlen(cases[0].m), 3, hdr, 5, &hlen, got) == -1 && hlen == 5);
	body_hash("body\r\n", 6, 6, want);
	CHECK(memcmp(got, want, 32) == 0);
}

/* ---- fields and relaxed headers ----------------------------------------- */

static void test_fields(void)
{
	static const char h[] = "A: X\r\nB : Y\t\r\n\tZ  \r\nno colon here\r\n\tcont\r\nC:\r\nD: 1\rE:2\nF";
	static const struct { size_t len, namelen; const char *relaxed; } want[] = {
		{ 6, 1, "a:X\r\n" },
		{ 14, 1, "b:Y Z\r\n" },                                  /* RFC 6376 3.4.5 */
		{ 22, 0, NULL },
		{ 4, 1, "c:\r\n" },
		{ 5, 1, "d:1\r\n" },
		{ 4, 1, "e:2\r\n" },
		{ 1, 0, NULL },
	};
	struct dkim_field f;
	size_t pos = 0, k = 0;
	char out[64];

	while (dkim_field_next(h, sizeof h - 1, &pos, &f)) {
		if (k >= sizeof want / sizeof want[0]) {
			CHECK(0);
			break;
		}
		CHECKF(f.len == want[k].len && f.namelen == want[k].namelen, "field %zu: %zu %zu", k,
		       f.len, f.namelen);
		if (want[k].relaxed != NULL) {
			size_t n = dkim_header_relaxed(h + f.off, f.len, f.namelen, out, sizeof out);
			CHECKF(n == strlen(want[k].relaxed) && strcmp(out, want[k].relaxed) == 0,
			       "field %zu: %s", k, out);
			CHECK(n <= f.len + 2);
		}
		k++;
	}
	CHECK(k == sizeof want / sizeof want[0] && pos == sizeof h - 1);
	/* A too-small buffer: the length needed, never an overrun. */
	CHECK(dkim_header_relaxed("Subject: hello", 14, 7, out, 4) == 15 && strlen(out) == 3);
	/* Continuation lines at the top of a block: one nameless field. */
	pos = 0;
	CHECK(dkim_field_next(" x\r\n y\r\nA: 1", 12, &pos, &f) == 1 && f.len == 8 && f.namelen == 0);
}

/* ---- tags and existing signatures -------------------------------------- */

static void test_tags(void)
{
	static const char v[] = " v=1; a=rsa-sha256;\r\n\td = Example.ORG. ; h=from\r\n\t:to; b=ab\r\n cd;";
	struct dkim_tag t;
	size_t pos = 0;
	static const char *const names[] = { "v", "a", "d", "h", "b" };
	static const char *const vals[] = { "1", "rsa-sha256", "Example.ORG.", "from\r\n\t:to",
	                                    "ab\r\n cd" };

	for (size_t k = 0; k < 5; k++) {
		CHECKF(dkim_tag_next(v, sizeof v - 1, &pos, &t) == 1, "tag %zu", k);
		CHECKF(t.namelen == strlen(names[k]) && memcmp(t.name, names[k], t.namelen) == 0 &&
		       t.valuelen == strlen(vals[k]) && memcmp(t.value, vals[k], t.valuelen) == 0,
		       "tag %zu", k);
	}
	CHECK(dkim_tag_next(v, sizeof v - 1, &pos, &t) == 0);
	static const char *const bad[] = { "1=x", "a", "a b=1", "a=1;;b=2", "a=\x01", "=1" };
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		int r;
		pos = 0;
		while ((r = dkim_tag_next(bad[k], strlen(bad[k]), &pos, &t)) == 1)
			;
		CHECKF(r == -1, "bad %zu", k);
	}
}

static int sig_domain(const char *field, char *d)
{
	struct dkim_field f;
	size_t pos = 0;

	dkim_field_next(field, strlen(field), &pos, &f);
	return dkim_sig_domain(field + f.off, f.len, f.namelen, d);
}

static void test_sig_domain(void)
{
	char d[DKIM_DOMAIN_MAX + 1];
	static const char hdr[] =
		"Received: x\r\n"
		"dkim-signature: v=1; d=other.example; b=x\r\n"
		"DKIM-Signature: v=1; a=rsa-sha256; d=Example.ORG; s=sel;\r\n\tb=abc\r\n"
		"Subject: x\r\n";

	CHECK(sig_domain("DKIM-Signature: v=1; d=Example.ORG.; b=\r\n", d) == 0 &&
	      strcmp(d, "example.org") == 0);
	CHECK(sig_domain("DKIM-Signature: v=1; d=a.org; d=b.org\r\n", d) == -1);  /* repeated */
	CHECK(sig_domain("DKIM-Signature: v=1; s=x\r\n", d) == -1);               /* no d= */
	CHECK(sig_domain("DKIM-Signature: v=1; d=\r\n", d) == -1);
	CHECK(sig_domain("DKIM-Signature: v=1; d=a b.org\r\n", d) == -1);
	CHECK(sig_domain("DKIM-Signature: v=1; 1=2; d=a.org\r\n", d) == -1);
	CHECK(sig_domain("X-DKIM-Signature: d=a.org\r\n", d) == -1);
	CHECK(dkim_signed_by(hdr, sizeof hdr - 1, "example.org") == 1);
	CHECK(dkim_signed_by(hdr, sizeof hdr - 1, "EXAMPLE.org.") == 1);
	CHECK(dkim_signed_by(hdr, sizeof hdr - 1, "other.example") == 1);
	CHECK(dkim_signed_by(hdr, sizeof hdr - 1, "sub.example.org") == 0);
	CHECK(dkim_signed_by(hdr, sizeof hdr - 1, "org") == 0);
}

/* ---- From: -------------------------------------------------------------- */

static void test_from(void)
{
	static const struct { const char *hdr, *domain; } good[] = {
		{ "From: user@Example.ORG\r\n", "example.org" },
		{ "from: John Smith <john@example.org>\r\n", "example.org" },
		{ "FROM:\"Smith, John <x@evil.test>\" <john@example.org>\r\n", "example.org" },
		{ "From: john@example.org (John, <x@evil.test>)\r\n", "example.org" },
		{ "From: =?utf-8?q?J=C3=B6rg?=\r\n <joerg@example.org>\r\n", "example.org" },
		{ "From: \"a b\"@example.org\r\n", "example.org" },
		{ "From: john @ example.org.\r\n", "example.org" },
		{ "From: <@relay.test:john@example.org>\r\n", "example.org" },
		{ "From: j\xc3\xb6rg@b\xc3\xbc" "cher.example\r\n", "b\xc3\xbc" "cher.example" },
		{ "Subject: a\r\nFrom: a@example.org\r\nX-From: b@evil.test\r\n", "example.org" },
	};
	static const char *const bad[] = {
		"Subject: no from\r\n",
		"From: a@example.org\r\nFrom: b@example.org\r\n",
		"From: a@example.org, b@example.org\r\n",
		"From: friends: a@example.org, b@example.org;\r\n",
		"From: John Smith john@example.org\r\n",
		"From: <john@example.org> trailing\r\n",
		"From: <john@example.org\r\n",
		"From: john@[192.0.2.1]\r\n",
		"From: \r\n",
		"From: <>\r\n",
		"From: \"unterminated <a@example.org>\r\n",
		"From: a@example.org (unterminated\r\n",
		"From: <a@b.org> <c@d.org>\r\n",
	};
	char d[ADDR_DOMAIN_MAX + 1];
	const char *why;

	for (size_t k = 0; k < sizeof good / sizeof good[0]; k++) {
		int r = dkim_from_domain(good[k].hdr, strlen(good[k].hdr), d, &why);
		CHECKF(r == 0 && strcmp(d, good[k].domain) == 0, "good %zu: %s", k, r ? why : d);
	}
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		why = NULL;
		CHECKF(dkim_from_domain(bad[k], strlen(bad[k]), d, &why) == -1 && why != NULL,
		       "bad %zu", k);
	}
}

/* ---- the config: dkim-sign lines and the key each domain gets ------------ */

static struct conf cf;

static int parse(const char *text, char *err, size_t errcap)
{
	conf_defaults(&cf);
	return conf_parse(text, strlen(text), "t.conf", &cf, err, errcap);
}

static void test_key_find(void)
{
	char err[300];
	const struct conf_dkim *k;

	CHECK(parse("dkim-sign example.org s1 /k1\n"
	            "dkim-sign *.example.org s2 /k2\n"
	            "dkim-sign *.a.example.org s3 /k3 headers From:Subject:FROM\n", err,
	            sizeof err) == 0);
	CHECK(cf.ndkim == 3 && strcmp(cf.dkim[2].headers, "from:subject:from") == 0);
	CHECK((k = dkim_key_find(&cf, "example.org", 11)) != NULL && strcmp(k->selector, "s1") == 0);
	CHECK((k = dkim_key_find(&cf, "EXAMPLE.ORG", 11)) != NULL && strcmp(k->selector, "s1") == 0);
	CHECK((k = dkim_key_find(&cf, "b.example.org", 13)) != NULL && strcmp(k->selector, "s2") == 0);
	CHECK((k = dkim_key_find(&cf, "a.example.org", 13)) != NULL && strcmp(k->selector, "s3") == 0);
	CHECK((k = dkim_key_find(&cf, "x.a.example.org", 15)) != NULL && strcmp(k->selector, "s3") == 0);
	CHECK(dkim_key_find(&cf, "badexample.org", 14) == NULL);
	CHECK(dkim_key_find(&cf, "org", 3) == NULL);

	static const struct { const char *line, *err; } bad[] = {
		{ "dkim-sign example.org s1\n", "t.conf:1: dkim-sign: missing argument (dkim-sign "
		  "DOMAIN SELECTOR KEYFILE [headers H1:H2:...])" },
		{ "dkim-sign example.org s1 k1\n", "t.conf:1: dkim-sign: not an absolute path: 'k1'" },
		{ "dkim-sign [192.0.2.1] s1 /k\n", "t.conf:1: dkim-sign: bad domain '[192.0.2.1]'" },
		{ "dkim-sign example.org s_1 /k\n", "t.conf:1: dkim-sign: bad selector 's_1'" },
		{ "dkim-sign example.org s1 /k headers to:subject\n", "t.conf:1: dkim-sign: bad "
		  "headers list 'to:subject': From is not in the list (RFC 6376 5.4: it must be signed)" },
		{ "dkim-sign example.org s1 /k headers from::to\n", "t.conf:1: dkim-sign: bad headers "
		  "list 'from::to': an empty header name" },
		{ "dkim-sign example.org s1 /k headers\n", "t.conf:1: dkim-sign: headers needs a list "
		  "H1:H2:..." },
		{ "dkim-sign example.org s1 /k sign from\n", "t.conf:1: dkim-sign: unknown option "
		  "'sign' (the only option is headers H1:H2:...)" },
		{ "dkim-sign example.org s1 /k\ndkim-sign Example.org. s2 /k\n", "t.conf:2: dkim-sign: "
		  "second key for domain 'Example.org.'" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = 0;
		CHECKF(parse(bad[i].line, err, sizeof err) == -1 && strcmp(err, bad[i].err) == 0,
		       "bad %zu: %s", i, err);
	}
	/* The effective config writes the default list out, and parses back. */
	char out[4096];
	CHECK(parse("dkim-sign *.Example.org sel /k\n", err, sizeof err) == 0);
	conf_format(&cf, out, sizeof out);
	CHECK(strstr(out, "dkim-sign *.example.org sel /k headers " DKIM_DEFAULT_HEADERS "\n") != NULL);
	CHECK(parse("hostname x\n", err, sizeof err) == 0);
	conf_format(&cf, out, sizeof out);
	CHECK(strstr(out, "# dkim-sign: none\n") != NULL);
}

/* A key named as the key role's messages name it: DOMAIN as configured. */
static void test_line_find(void)
{
	char err[300], name[CONF_DKIM_SELECTOR_MAX + ADDR_DOMAIN_MAX];
	const struct conf_dkim *k;

	CHECK(parse("dkim-sign example.org s1 /k1\n"
	            "dkim-sign *.example.org s2 /k2\n", err, sizeof err) == 0);
	CHECK(dkim_line_domain(&cf.dkim[0], name, sizeof name) == 11 && strcmp(name, "example.org") == 0);
	CHECK(dkim_line_domain(&cf.dkim[1], name, sizeof name) == 13 &&
	      strcmp(name, "*.example.org") == 0);
	/* Too small: the length it needs, nothing written. */
	name[0] = 'x';
	CHECK(dkim_line_domain(&cf.dkim[1], name, 13) == 13 && name[0] == 'x');
	CHECK((k = dkim_line_find(&cf, "example.org", 11, "s1", 2)) == &cf.dkim[0]);
	CHECK((k = dkim_line_find(&cf, "Example.ORG", 11, "s1", 2)) == &cf.dkim[0]);
	CHECK((k = dkim_line_find(&cf, "*.example.org", 13, "s2", 2)) == &cf.dkim[1]);
	/* The names must be the line's own: a From: domain, another selector,
	 * a prefix of either, find nothing. */
	CHECK(dkim_line_find(&cf, "example.org", 11, "s2", 2) == NULL);
	CHECK(dkim_line_find(&cf, "a.example.org", 13, "s2", 2) == NULL);
	CHECK(dkim_line_find(&cf, "example.org", 11, "s", 1) == NULL);
	CHECK(dkim_line_find(&cf, "example.or", 10, "s1", 2) == NULL);
	CHECK(dkim_line_find(&cf, "*.example.org", 13, "S2", 2) == NULL);
	CHECK(dkim_line_find(&cf, "", 0, "", 0) == NULL);
}

static void test_hlist(void)
{
	char out[CONF_DKIM_HEADERS_MAX], big[2000];
	const char *why;

	CHECK(dkim_hlist_check("From:X-Mailer:from", 18, out, sizeof out, &why) == 0 &&
	      strcmp(out, "from:x-mailer:from") == 0);
	CHECK(dkim_hlist_check("from", 4, out, 5, &why) == 0);
	CHECK(dkim_hlist_check("from", 4, out, 4, &why) == -1);
	CHECK(dkim_hlist_check("from:to", 7, out, 7, &why) == -1);
	CHECK(dkim_hlist_check("from:to", 7, out, 8, &why) == 0 && strcmp(out, "from:to") == 0);
	CHECK(dkim_hlist_check("from:", 5, out, sizeof out, &why) == -1);
	CHECK(dkim_hlist_check("from:a b", 8, out, sizeof out, &why) == -1);
	CHECK(dkim_hlist_check("", 0, out, sizeof out, &why) == -1);
	size_t n = 0;
	for (int k = 0; k < 33; k++)
		n += (size_t)snprintf(big + n, sizeof big - n, "%sfrom", k ? ":" : "");
	CHECK(dkim_hlist_check(big, n, out, sizeof out, &why) == -1 &&
	      strcmp(why, "too many header names") == 0);
	memset(big, 'x', DKIM_HNAME_MAX + 1);
	memcpy(big + DKIM_HNAME_MAX + 1, ":from", 5);
	CHECK(dkim_hlist_check(big, DKIM_HNAME_MAX + 6, out, sizeof out, &why) == -1);
}

/* ---- the signature ------------------------------------------------------ */

static const char msg_hdr[] =
	"Received: from a\r\n"
	"To: first@example.net\r\n"
	"From: Me <me@example.org>\r\n"
	"Subject:  Hello\r\n\t world \r\n"
	"to: second@example.net\r\n"
	"X-Other: x\r\n";

/* The value of tag name in a header, FWS removed. */
static size_t tag_value(const char *h, const char *name, char *out, size_t cap)
{
	const char *p = h;
	size_t o = 0;

	/* The tag, not the same letters inside another one ("b=" in "bh=..."). */
	while ((p = strstr(p, name)) != NULL && p > h && p[-1] != ' ' && p[-1] != '\t' && p[-1] != ';')
		p++;
	if (p == NULL || p == h)
		return 0;
	for (p += strlen(name); *p != '\0' && *p != ';' && o + 1 < cap; p++)
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			out[o++] = *p;
	out[o] = '\0';
	return o;
}

static void test_prepare(void)
{
	static const unsigned char bh[32] = "0123456789abcdef0123456789abcdef";
	struct dkim_spec spec = { "example.org", "sel", NULL, 1700000000 };
	struct dkim_pending p;
	const char *why;
	char data[4096], h[600], want[4096];
	unsigned char hv[32];

	CHECK(dkim_prepare(msg_hdr, sizeof msg_hdr - 1, bh, &spec, &p, &why) == 0);
	CHECK(p.len == strlen(p.head) && p.len > 2 && strcmp(p.head + p.len - 2, "b=") == 0);
	static const char start[] = "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org;";
	CHECK(strncmp(p.head, start, sizeof start - 1) == 0);
	/* Two To: fields, From and Subject once; From over-signed; the rest of
	 * the default list absent and left out. */
	CHECK(tag_value(p.head, "h=", h, sizeof h) > 0 && strcmp(h, "from:from:to:to:subject") == 0);
	CHECK(tag_value(p.head, "t=", h, sizeof h) > 0 && strcmp(h, "1700000000") == 0);
	CHECK(tag_value(p.head, "bh=", h, sizeof h) == 44);
	/* Lines folded within 78 columns (a TAB counted as 8). */
	for (const char *l = p.head; l != NULL;) {
		const char *e = strstr(l, "\r\n");
		size_t n = e ? (size_t)(e - l) : strlen(l);
		CHECKF(n + (*l == '\t' ? 7 : 0) <= 78, "line of %zu", n);
		l = e ? e + 2 : NULL;
	}
	/* The data: fields bottom-up per name in h= order, then this header
	 * relaxed without its CRLF (RFC 6376 3.7, 5.4.2). */
	size_t n = dkim_signed_data(msg_hdr, sizeof msg_hdr - 1, bh, &spec, data, sizeof data);
	char head_relaxed[2048];
	size_t hr = dkim_header_relaxed(p.head, p.len, 14, head_relaxed, sizeof head_relaxed);
	head_relaxed[hr - 2] = '\0';
	snprintf(want, sizeof want, "from:Me <me@example.org>\r\nto:second@example.net\r\n"
	         "to:first@example.net\r\nsubject:Hello world\r\n%s", head_relaxed);
	CHECKF(n == strlen(want) && strcmp(data, want) == 0, "%s", data);
	sha(data, n, hv);
	CHECK(memcmp(hv, p.hash, 32) == 0);

	/* A chosen list: x-other over-signed by listing it twice. */
	spec.headers = "x-other:from:x-other:cc";
	CHECK(dkim_prepare(msg_hdr, sizeof msg_hdr - 1, bh, &spec, &p, &why) == 0);
	CHECK(tag_value(p.head, "h=", h, sizeof h) > 0 && strcmp(h, "x-other:x-other:from") == 0);

	/* No From: nothing to sign. */
	spec.headers = NULL;
	CHECK(dkim_prepare("To: a@b.c\r\n", 11, bh, &spec, &p, &why) == -1);
	/* Bad names. */
	spec.domain = "exa mple.org";
	CHECK(dkim_prepare(msg_hdr, sizeof msg_hdr - 1, bh, &spec, &p, &why) == -1);
	spec.domain = "example.org";
	spec.selector = "";
	CHECK(dkim_prepare(msg_hdr, sizeof msg_hdr - 1, bh, &spec, &p, &why) == -1);
}

/* Many fields of one name: h= grows until its cap, then signing refuses. */
static void test_prepare_caps(void)
{
	static char hdr[40000];
	static const unsigned char bh[32];
	struct dkim_spec spec = { "example.org", "sel", "from:to", 1 };
	struct dkim_pending p;
	const char *why;
	size_t n = (size_t)snprintf(hdr, sizeof hdr, "From: a@example.org\r\n");

	for (int k = 0; k < 300; k++)
		n += (size_t)snprintf(hdr + n, sizeof hdr - n, "To: x%d@example.net\r\n", k);
	CHECK(dkim_prepare(hdr, n, bh, &spec, &p, &why) == -1);
	n = (size_t)snprintf(hdr, sizeof hdr, "From: a@example.org\r\n");
	for (int k = 0; k < 200; k++)
		n += (size_t)snprintf(hdr + n, sizeof hdr - n, "To: x%d@example.net\r\n", k);
	CHECK(dkim_prepare(hdr, n, bh, &spec, &p, &why) == 0 && p.len < sizeof p.head);
}

static void test_finish(void)
{
	static const unsigned char bh[32];
	struct dkim_spec spec = { "example.org", "a-rather-long-selector-name", NULL, 1 };
	struct dkim_pending p;
	unsigned char sig[DKIM_SIG_MAX], back[DKIM_SIG_MAX];
	char out[DKIM_SIGHDR_MAX], b[1000], r1[DKIM_SIGHDR_MAX], r2[DKIM_SIGHDR_MAX];
	const char *why;
	uint32_t s = 7;

	for (size_t k = 0; k < sizeof sig; k++)
		sig[k] = (unsigned char)rnd(&s);
	CHECK(dkim_prepare(msg_hdr, sizeof msg_hdr - 1, bh, &spec, &p, &why) == 0);
	for (size_t siglen = 256; siglen <= 512; siglen += 128) {
		size_t n = dkim_header_finish(&p, sig, siglen, out, sizeof out), blen, got;

		CHECK(n < sizeof out && n == strlen(out) && strcmp(out + n - 2, "\r\n") == 0);
		CHECK(strncmp(out, p.head, p.len) == 0);
		for (const char *l = out; *l != '\0';) {
			const char *e = strstr(l, "\r\n");
			CHECKF(e != NULL && (size_t)(e - l) + (*l == '\t' ? 7 : 0) <= 78, "siglen %zu", siglen);
			if (e == NULL)
				break;
			l = e + 2;
			CHECK(*l == '\0' || *l == '\t');
		}
		/* b= decodes back to the signature. */
		blen = tag_value(out, "b=", b, sizeof b);
		CHECK(base64_decode(b, blen, 0, back, sizeof back, &got) == 0 && got == siglen &&
		      memcmp(back, sig, siglen) == 0);
		/* With b='s value taken out, its relaxed form is the one signed. */
		dkim_header_relaxed(out, p.len, 14, r1, sizeof r1);
		dkim_header_relaxed(p.head, p.len, 14, r2, sizeof r2);
		CHECK(strcmp(r1, r2) == 0);
	}
	CHECK(dkim_header_finish(&p, sig, 10, out, 5) > 5 && strlen(out) == 4);
}

static void test_dns_record(void)
{
	unsigned char spki[600];
	char out[2000], joined[2000], b64[1000];
	uint32_t s = 3;
	size_t o = 0;

	for (size_t k = 0; k < sizeof spki; k++)
		spki[k] = (unsigned char)rnd(&s);
	size_t n = dkim_dns_record("sel", "example.org", spki, 550, out, sizeof out);
	CHECK(n == strlen(out) && strncmp(out, "sel._domainkey.example.org. IN TXT \"", 36) == 0);
	CHECK(out[n - 1] == '\n' && out[n - 2] == '"');
	/* Strings of at most 255 bytes that join into the record. */
	for (const char *q = strchr(out, '"'); q != NULL; q = strchr(q + 1, '"')) {
		const char *e = strchr(q + 1, '"');
		CHECK(e != NULL && e - q - 1 <= 255);
		memcpy(joined + o, q + 1, (size_t)(e - q - 1));
		o += (size_t)(e - q - 1);
		q = e;
	}
	joined[o] = '\0';
	base64_encode(spki, 550, b64, sizeof b64);
	CHECK(strncmp(joined, "v=DKIM1; k=rsa; p=", 18) == 0 && strcmp(joined + 18, b64) == 0);
	CHECK(dkim_dns_record("sel", "example.org", spki, 550, out, 10) == n);
}

int main(void)
{
	RUN(test_body_cases);
	RUN(test_body_random);
	RUN(test_msg);
	RUN(test_fields);
	RUN(test_tags);
	RUN(test_sig_domain);
	RUN(test_from);
	RUN(test_key_find);
	RUN(test_line_find);
	RUN(test_hlist);
	RUN(test_prepare);
	RUN(test_prepare_caps);
	RUN(test_finish);
	RUN(test_dns_record);
	return t_main_end();
}
