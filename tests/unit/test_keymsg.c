/* tests/unit/test_keymsg.c -- the key role's messages (mta/net/keymsg.h) */
#include "t.h"

#include <stdint.h>

#include "mta/net/keymsg.h"

/* A message by its first six fields (the DKIM ones zero). */
#define KM(t, i, h, o, d, l) { .type = (t), .id = (i), .hash_id = (h), .ok = (o), .data = (d), .len = (l) }

static unsigned char big[2 * KEYMSG_MAX];

/* A header and plen payload bytes (filled with 0x41, first byte flag). */
static size_t raw(unsigned char *b, uint32_t type, uint32_t id, uint32_t hdrlen, size_t plen,
                  unsigned char first)
{
	uint32_t v[3] = { type, id, hdrlen };

	for (int k = 0; k < 3; k++) {
		b[4 * k] = (unsigned char)(v[k] >> 24);
		b[4 * k + 1] = (unsigned char)(v[k] >> 16);
		b[4 * k + 2] = (unsigned char)(v[k] >> 8);
		b[4 * k + 3] = (unsigned char)v[k];
	}
	memset(b + KEYMSG_HDR, 0x41, plen);
	if (plen > 0)
		b[KEYMSG_HDR] = first;
	return KEYMSG_HDR + plen;
}

/* Decode buf[0..len), expecting failure. */
static int bad(const unsigned char *b, size_t len, size_t modlen)
{
	struct keymsg m;
	const char *why = NULL;

	return keymsg_decode(b, len, modlen, &m, &why) == -1 && why != NULL;
}

/* One valid message of each type, and its bytes. */
struct sample {
	struct keymsg m;
	size_t modlen;
};

static unsigned char payload[KEYMSG_MAX];
static char longest[KEYMSG_HLIST_MAX + 1];

/* The DKIM link's messages: shortest and longest fields. */
static size_t dkim_samples(struct sample *s)
{
	size_t n = 0;
	struct keymsg m;

	memset(longest, 'a', sizeof longest - 1);
	m = (struct keymsg)KM(KEYMSG_DKIM_SIGN_REQ, 20, 0, 0, payload, KEYMSG_DKIM_HASH);
	m.domain = "example.org";
	m.domainlen = 11;
	m.selector = "sel";
	m.selectorlen = 3;
	s[n++] = (struct sample){ m, 0 };
	m.domain = longest;
	m.domainlen = KEYMSG_DOMAIN_MAX;
	m.selector = longest;
	m.selectorlen = KEYMSG_SEL_MAX;
	s[n++] = (struct sample){ m, 256 };
	s[n++] = (struct sample){ KM(KEYMSG_DKIM_SIGN_REP, 21, 0, 1, payload, 256), 0 };
	s[n++] = (struct sample){ KM(KEYMSG_DKIM_SIGN_REP, 22, 0, 0, NULL, 0), 0 };
	m = (struct keymsg)KM(KEYMSG_DKIM_KEY_REQ, 23, 0, 0, NULL, 0);
	m.domain = "m";
	m.domainlen = 1;
	s[n++] = (struct sample){ m, 0 };
	s[n++] = (struct sample){ KM(KEYMSG_DKIM_KEY_REP, 24, 0, 0, NULL, 0), 0 };
	m = (struct keymsg)KM(KEYMSG_DKIM_KEY_REP, 25, 0, 1, payload, 256);
	m.domain = "*.example.net";
	m.domainlen = 13;
	m.selector = "s1";
	m.selectorlen = 2;
	m.headers = "";
	m.exp = payload;
	m.explen = 3;
	s[n++] = (struct sample){ m, 0 };
	m.domain = longest;
	m.domainlen = KEYMSG_DOMAIN_MAX;
	m.selector = longest;
	m.selectorlen = KEYMSG_SEL_MAX;
	m.headers = longest;
	m.headerslen = KEYMSG_HLIST_MAX;
	m.len = KEYMSG_MOD_MAX;
	m.explen = KEYMSG_EXP_MAX;
	s[n++] = (struct sample){ m, 0 };
	return n;
}

static size_t samples(struct sample *s)
{
	size_t n = 0;

	for (size_t i = 0; i < sizeof payload; i++)
		payload[i] = (unsigned char)(i * 7 + 3);
	s[n++] = (struct sample){ KM(KEYMSG_SIGN_REQ, 1, 4, 0, payload, 32), 0 };
	s[n++] = (struct sample){ KM(KEYMSG_SIGN_REQ, 2, 0, 0, payload, 36), 256 };
	s[n++] = (struct sample){ KM(KEYMSG_SIGN_REQ, 0xFFFFFFFFu, 6, 0, payload, 64), 0 };
	s[n++] = (struct sample){ KM(KEYMSG_SIGN_REP, 7, 0, 1, payload, 71), 0 };
	s[n++] = (struct sample){ KM(KEYMSG_SIGN_REP, 8, 0, 1, payload, KEYMSG_SIG_MAX), 0 };
	s[n++] = (struct sample){ KM(KEYMSG_SIGN_REP, 9, 0, 0, NULL, 0), 0 };
	s[n++] = (struct sample){ KM(KEYMSG_DECRYPT_REQ, 10, 0, 0, payload, 256), 256 };
	s[n++] = (struct sample){ KM(KEYMSG_DECRYPT_REQ, 11, 0, 0, payload, KEYMSG_MOD_MAX), KEYMSG_MOD_MAX };
	s[n++] = (struct sample){ KM(KEYMSG_DECRYPT_REP, 12, 0, 1, payload, KEYMSG_PMS), 256 };
	s[n++] = (struct sample){ KM(KEYMSG_DECRYPT_REP, 13, 0, 0, payload, KEYMSG_PMS), 0 };
	n += dkim_samples(s + n);
	return n;
}

static int same_field(const void *a, size_t alen, const void *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static int same(const struct keymsg *a, const struct keymsg *b)
{
	return a->type == b->type && a->id == b->id && a->hash_id == b->hash_id && a->ok == b->ok &&
	       same_field(a->data, a->len, b->data, b->len) &&
	       same_field(a->domain, a->domainlen, b->domain, b->domainlen) &&
	       same_field(a->selector, a->selectorlen, b->selector, b->selectorlen) &&
	       same_field(a->headers, a->headerslen, b->headers, b->headerslen) &&
	       same_field(a->exp, a->explen, b->exp, b->explen);
}

/* Whole messages round-trip; the encoding is the documented layout. */
static void test_roundtrip(void)
{
	struct sample s[32];
	size_t n = samples(s);

	for (size_t i = 0; i < n; i++) {
		size_t len = keymsg_encode(big, sizeof big, s[i].modlen, &s[i].m);
		struct keymsg d;
		const char *why = NULL;

		CHECKF(len > KEYMSG_HDR && len <= KEYMSG_MAX, "sample %zu len %zu", i, len);
		CHECKF(keymsg_decode(big, len, s[i].modlen, &d, &why) == 0, "sample %zu: %s", i,
		       why ? why : "");
		CHECKF(same(&d, &s[i].m), "sample %zu", i);
		CHECK(big[0] == 0 && big[1] == 0 && big[2] == 0 && big[3] == s[i].m.type);
		CHECK(((size_t)big[8] << 24 | (size_t)big[9] << 16 | (size_t)big[10] << 8 | big[11]) ==
		      len - KEYMSG_HDR);
		/* Too small a buffer: nothing written. */
		CHECK(keymsg_encode(big, len - 1, s[i].modlen, &s[i].m) == 0);
		CHECK(keymsg_encode(big, len, s[i].modlen, &s[i].m) == len);
	}
	/* The layout, byte for byte: a SHA-256 sign request, id 0x01020304. */
	struct keymsg q = KM(KEYMSG_SIGN_REQ, 0x01020304, 4, 0, payload, 32);
	static const unsigned char hdr[] = { 0, 0, 0, 1, 1, 2, 3, 4, 0, 0, 0, 33, 4 };
	CHECK(keymsg_encode(big, sizeof big, 0, &q) == 45);
	CHECK(memcmp(big, hdr, sizeof hdr) == 0 && memcmp(big + 13, payload, 32) == 0);
}

/* Every proper prefix, and every message with one byte more, is refused. */
static void test_truncated_and_leftover(void)
{
	struct sample s[32];
	size_t n = samples(s);

	for (size_t i = 0; i < n; i++) {
		size_t len = keymsg_encode(big, sizeof big, s[i].modlen, &s[i].m);

		for (size_t k = 0; k < len; k++)
			CHECKF(bad(big, k, s[i].modlen), "sample %zu prefix %zu", i, k);
		big[len] = 0;
		CHECKF(bad(big, len + 1, s[i].modlen), "sample %zu leftover byte", i);
		/* The header counting the extra byte: a wrong length for the type
		 * (but for a signature, whose length varies). */
		big[11]++;
		if ((s[i].m.type != KEYMSG_SIGN_REP && s[i].m.type != KEYMSG_DKIM_SIGN_REP) ||
		    !s[i].m.ok || s[i].m.len == KEYMSG_SIG_MAX)
			CHECKF(bad(big, len + 1, s[i].modlen), "sample %zu one byte longer", i);
		big[11]--;
		/* ... or claiming one byte less than sent. */
		big[11]--;
		CHECKF(bad(big, len, s[i].modlen), "sample %zu header one less", i);
	}
}

/* Each type with every payload length 0..KEYMSG_MAX: only the exact ones pass. */
static void test_every_length(void)
{
	static const size_t mods[] = { 0, 58, 59, 128, 256, 512, 513 };

	for (size_t mi = 0; mi < sizeof mods / sizeof mods[0]; mi++) {
		size_t modlen = mods[mi];

		for (uint32_t type = KEYMSG_SIGN_REQ; type <= KEYMSG_DECRYPT_REP; type++) {
			for (size_t plen = 0; plen + KEYMSG_HDR <= sizeof big; plen++) {
				for (unsigned first = 0; first < 8; first++) {
					size_t len = raw(big, type, 5, (uint32_t)plen, plen,
					                 (unsigned char)first);
					struct keymsg m;
					const char *why = NULL;
					int ok = keymsg_decode(big, len, modlen, &m, &why) == 0;
					int want;

					switch (type) {
					case KEYMSG_SIGN_REQ:
						want = plen >= 1 && keymsg_hash_len(first) != 0 &&
						       plen == 1 + keymsg_hash_len(first);
						break;
					case KEYMSG_SIGN_REP:
						want = (first == 0 && plen == 1) ||
						       (first == 1 && plen >= 2 && plen <= 1 + KEYMSG_SIG_MAX);
						break;
					case KEYMSG_DECRYPT_REQ:
						want = modlen >= KEYMSG_MOD_MIN && modlen <= KEYMSG_MOD_MAX &&
						       plen == modlen;
						break;
					default:
						want = first <= 1 && plen == 1 + KEYMSG_PMS;
						break;
					}
					CHECKF(ok == want, "type %u plen %zu first %u modlen %zu: %d",
					       (unsigned)type, plen, first, modlen, ok);
					if (ok) {
						/* What decodes, encodes back to the same bytes. */
						CHECK(keymsg_encode(big + KEYMSG_MAX, KEYMSG_MAX, modlen, &m) ==
						      len);
						CHECK(memcmp(big, big + KEYMSG_MAX, len) == 0);
					}
				}
			}
		}
	}
}

/* Unknown types, a huge header length, and encode refusing bad messages. */
static void test_unknown_and_invalid(void)
{
	static const uint32_t types[] = { 0, 9, 10, 0x100, 0x01000001, 0xFFFFFFFFu };

	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
		for (size_t plen = 0; plen < 80; plen++) {
			size_t len = raw(big, types[i], 1, (uint32_t)plen, plen, 0);
			CHECKF(bad(big, len, 256), "type %u plen %zu", (unsigned)types[i], plen);
		}
	}
	CHECK(bad(big, raw(big, KEYMSG_SIGN_REQ, 1, 0xFFFFFFFFu, 33, 4), 0));
	CHECK(bad(big, raw(big, KEYMSG_SIGN_REQ, 1, 0x80000021u, 33, 4), 0));
	CHECK(bad(big, 0, 0));

	struct keymsg m = KM(KEYMSG_SIGN_REQ, 1, 1 /* md5 alone */, 0, payload, 16);
	CHECK(keymsg_encode(big, sizeof big, 0, &m) == 0);
	m = (struct keymsg)KM(KEYMSG_SIGN_REQ, 1, 4, 0, payload, 31);
	CHECK(keymsg_encode(big, sizeof big, 0, &m) == 0);
	m = (struct keymsg)KM(KEYMSG_SIGN_REP, 1, 0, 2, payload, 10);
	CHECK(keymsg_encode(big, sizeof big, 0, &m) == 0);
	m = (struct keymsg)KM(KEYMSG_SIGN_REP, 1, 0, 0, payload, 10);
	CHECK(keymsg_encode(big, sizeof big, 0, &m) == 0);
	m = (struct keymsg)KM(KEYMSG_SIGN_REP, 1, 0, 1, payload, KEYMSG_SIG_MAX + 1);
	CHECK(keymsg_encode(big, sizeof big, 0, &m) == 0);
	m = (struct keymsg)KM(KEYMSG_DECRYPT_REQ, 1, 0, 0, payload, 256);
	CHECK(keymsg_encode(big, sizeof big, 0, &m) == 0);     /* an EC key */
	CHECK(keymsg_encode(big, sizeof big, 128, &m) == 0);   /* another modulus */
	m = (struct keymsg)KM(KEYMSG_DECRYPT_REP, 1, 0, 1, payload, 47);
	CHECK(keymsg_encode(big, sizeof big, 0, &m) == 0);
	m = (struct keymsg)KM(9, 1, 0, 0, payload, 4);
	CHECK(keymsg_encode(big, sizeof big, 0, &m) == 0);
	CHECK(keymsg_encode(big, 11, 0, &m) == 0);
}

/* Every DKIM field just past its range, or holding a byte outside
 * %x21-7E, is refused by the encoder and, written by hand, the decoder. */
static void test_dkim_fields(void)
{
	struct sample s[32];
	size_t n = samples(s);
	static const unsigned char badbytes[] = { 0x00, 0x20, 0x7f, 0x80, 0xff, '\n' };

	for (size_t i = 0; i < n; i++) {
		struct keymsg m = s[i].m;
		size_t len;
		char name[KEYMSG_HLIST_MAX + 2];

		if (m.domainlen == 0) /* the messages that carry a domain */
			continue;
		/* A bad byte in the domain, at its start and its end. */
		for (size_t b = 0; b < sizeof badbytes; b++) {
			for (int at = 0; at < 2; at++) {
				struct keymsg x = m;

				memcpy(name, m.domain, m.domainlen);
				name[at ? m.domainlen - 1 : 0] = (char)badbytes[b];
				x.domain = name;
				CHECKF(keymsg_encode(big, sizeof big, 0, &x) == 0, "sample %zu byte %u", i,
				       badbytes[b]);
				/* Encode a good one and put the bad byte into its bytes. */
				len = keymsg_encode(big, sizeof big, 0, &m);
				CHECK(len > 0);
				big[KEYMSG_HDR + (m.type == KEYMSG_DKIM_KEY_REP) + 2 +
				    (at ? m.domainlen - 1 : 0)] = badbytes[b];
				CHECKF(bad(big, len, 0), "sample %zu decoded byte %u", i, badbytes[b]);
			}
		}
		struct keymsg x = m;
		memset(name, 'b', sizeof name);
		x.domain = name;
		x.domainlen = 0;
		CHECK(keymsg_encode(big, sizeof big, 0, &x) == 0);
		x.domainlen = KEYMSG_DOMAIN_MAX + 1;
		CHECK(keymsg_encode(big, sizeof big, 0, &x) == 0);
		if (m.type == KEYMSG_DKIM_KEY_REQ)
			continue;
		x = m;
		x.selector = name;
		x.selectorlen = 0;
		CHECK(keymsg_encode(big, sizeof big, 0, &x) == 0);
		x.selectorlen = KEYMSG_SEL_MAX + 1;
		CHECK(keymsg_encode(big, sizeof big, 0, &x) == 0);
		x = m;
		x.len = m.type == KEYMSG_DKIM_SIGN_REQ ? 31 : 0;
		CHECK(keymsg_encode(big, sizeof big, 0, &x) == 0);
		x.len = m.type == KEYMSG_DKIM_SIGN_REQ ? 33 : KEYMSG_MOD_MAX + 1;
		CHECK(keymsg_encode(big, sizeof big, 0, &x) == 0);
		if (m.type != KEYMSG_DKIM_KEY_REP)
			continue;
		x = m;
		x.headers = name;
		x.headerslen = KEYMSG_HLIST_MAX + 1;
		CHECK(keymsg_encode(big, sizeof big, 0, &x) == 0);
		x = m;
		x.explen = 0;
		CHECK(keymsg_encode(big, sizeof big, 0, &x) == 0);
		x.explen = KEYMSG_EXP_MAX + 1;
		CHECK(keymsg_encode(big, sizeof big, 0, &x) == 0);
		x = m;
		x.ok = 2;
		CHECK(keymsg_encode(big, sizeof big, 0, &x) == 0);
	}
	/* A refusal carries nothing. */
	struct keymsg r = KM(KEYMSG_DKIM_KEY_REP, 1, 0, 0, NULL, 0);
	r.domain = "x";
	r.domainlen = 1;
	CHECK(keymsg_encode(big, sizeof big, 0, &r) == 0);
	r = (struct keymsg)KM(KEYMSG_DKIM_SIGN_REP, 1, 0, 0, payload, 1);
	CHECK(keymsg_encode(big, sizeof big, 0, &r) == 0);
	/* The layout, byte for byte: a DKIM_KEY_REQ for "ab", id 7. */
	r = (struct keymsg)KM(KEYMSG_DKIM_KEY_REQ, 7, 0, 0, NULL, 0);
	r.domain = "ab";
	r.domainlen = 2;
	static const unsigned char want[] = { 0, 0, 0, 7, 0, 0, 0, 7, 0, 0, 0, 4, 0, 2, 'a', 'b' };
	CHECK(keymsg_encode(big, sizeof big, 0, &r) == sizeof want);
	CHECK(memcmp(big, want, sizeof want) == 0);
	/* A string length past the end of the packet. */
	big[13] = 3;
	CHECK(bad(big, sizeof want, 0));
	CHECK(keymsg_is_dkim(KEYMSG_DKIM_SIGN_REQ) && keymsg_is_dkim(KEYMSG_DKIM_KEY_REP));
	CHECK(!keymsg_is_dkim(KEYMSG_SIGN_REQ) && !keymsg_is_dkim(KEYMSG_DECRYPT_REP) &&
	      !keymsg_is_dkim(9) && !keymsg_is_dkim(0));
}

int main(void)
{
	RUN(test_roundtrip);
	RUN(test_truncated_and_leftover);
	RUN(test_every_length);
	RUN(test_unknown_and_invalid);
	RUN(test_dkim_fields);
	return t_main_end();
}
