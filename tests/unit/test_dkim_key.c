/* tests/unit/test_dkim_key.c -- mta/ops/dkim_key.c and policy/spki.c: DKIM
 * keys from PEM, the checks at load, signing; the SPKI encoder and readers.
 * Keys come from BearSSL's generator with a fixed seed (reproducible);
 * keys from openssl are tested by tests/dkim/test_dkim.py. */
#include <stdlib.h>
#include <string.h>

#include <bearssl.h>

#include "t.h"
#include "mta/ops/dkim_key.h"
#include "policy/spki.h"

struct pair {
	br_rsa_private_key sk;
	br_rsa_public_key  pk;
	unsigned char      priv[BR_RSA_KBUF_PRIV_SIZE(4096)];
	unsigned char      pub[BR_RSA_KBUF_PUB_SIZE(4096)];
	unsigned char      d[512];
	size_t             dlen;
};

static int make_pair(struct pair *p, unsigned bits, const char *seed)
{
	br_hmac_drbg_context rng;

	br_hmac_drbg_init(&rng, &br_sha256_vtable, seed, strlen(seed));
	if (!br_rsa_keygen_get_default()(&rng.vtable, &p->sk, p->priv, &p->pk, p->pub, bits, 65537))
		return -1;
	p->dlen = br_rsa_compute_privexp_get_default()(p->d, &p->sk, 65537);
	return p->dlen > 0 ? 0 : -1;
}

/* The pair as PEM (PKCS#8, or PKCS#1), malloc'd. */
static char *pem_of(const struct pair *p, int pkcs1, size_t *len)
{
	unsigned char der[4096];
	size_t n = pkcs1 ? br_encode_rsa_raw_der(der, &p->sk, &p->pk, p->d, p->dlen)
	                 : br_encode_rsa_pkcs8_der(der, &p->sk, &p->pk, p->d, p->dlen);
	const char *banner = pkcs1 ? BR_ENCODE_PEM_RSA_RAW : BR_ENCODE_PEM_PKCS8;
	char *pem;

	*len = br_pem_encode(NULL, der, n, banner, BR_PEM_LINE64);
	pem = malloc(*len + 1);
	br_pem_encode(pem, der, n, banner, BR_PEM_LINE64);
	return pem;
}

static struct pair k2048, k1024, k4096;

static void test_load_sign(void)
{
	char err[300];
	unsigned char hv[32], sig[512], out[32], spki[SPKI_RSA_MAX];
	struct spki_rsa pub;

	for (int pkcs1 = 0; pkcs1 <= 1; pkcs1++) {
		size_t len;
		char *pem = pem_of(&k2048, pkcs1, &len);
		struct dkim_key *k = dkim_key_load(pem, len, "k.pem", err, sizeof err);

		CHECKF(k != NULL, "%s", err);
		if (k == NULL) {
			free(pem);
			continue;
		}
		CHECK(dkim_key_bits(k) == 2048);
		memset(hv, 0x5a, sizeof hv);
		CHECK(dkim_key_sign(k, hv, sig, 255) == 0);
		size_t n = dkim_key_sign(k, hv, sig, sizeof sig);
		CHECK(n == 256);
		/* It verifies with the generator's own public key. */
		CHECK(br_rsa_pkcs1_vrfy_get_default()(sig, n, BR_HASH_OID_SHA256, 32, &k2048.pk, out) &&
		      memcmp(out, hv, 32) == 0);
		/* The SPKI carries that public key. */
		size_t sn = dkim_key_spki(k, spki, sizeof spki);
		CHECK(sn > 0 && sn <= sizeof spki && spki_rsa_parse(spki, sn, &pub) == 0);
		CHECK(pub.nlen == k2048.pk.nlen && memcmp(pub.n, k2048.pk.n, pub.nlen) == 0);
		CHECK(pub.elen == 3 && memcmp(pub.e, "\x01\x00\x01", 3) == 0);
		/* The public half checks it; a changed bit, hash or length fails. */
		const unsigned char *pn, *pe;
		size_t pnlen, pelen;
		dkim_key_public(k, &pn, &pnlen, &pe, &pelen);
		CHECK(pnlen == 256 && memcmp(pn, k2048.pk.n, 256) == 0 && pelen == 3);
		CHECK(dkim_rsa_verify(pn, pnlen, pe, pelen, hv, sig, n));
		sig[100] ^= 1;
		CHECK(!dkim_rsa_verify(pn, pnlen, pe, pelen, hv, sig, n));
		sig[100] ^= 1;
		hv[0] ^= 1;
		CHECK(!dkim_rsa_verify(pn, pnlen, pe, pelen, hv, sig, n));
		hv[0] ^= 1;
		CHECK(!dkim_rsa_verify(pn, pnlen, pe, pelen, hv, sig, n - 1));
		CHECK(!dkim_rsa_verify(pn, pnlen, pe, pelen, hv, sig, 0));
		/* Without its private half: no signing, the public half stays. */
		dkim_key_forget_private(k);
		CHECK(dkim_key_sign(k, hv, sig, sizeof sig) == 0);
		CHECK(dkim_key_bits(k) == 2048);
		dkim_key_public(k, &pn, &pnlen, &pe, &pelen);
		CHECK(pnlen == 256 && memcmp(pn, k2048.pk.n, 256) == 0);
		CHECK(dkim_key_spki(k, spki, sizeof spki) == sn);
		dkim_key_forget_private(k);   /* twice: nothing more to do */
		dkim_key_free(k);
		free(pem);
	}
}

/* The largest key: BearSSL's default modulus code gives up on it. */
static void test_4096(void)
{
	char err[300];
	unsigned char hv[32] = { 1 }, sig[512], out[32];
	size_t len;
	char *pem = pem_of(&k4096, 0, &len);
	struct dkim_key *k = dkim_key_load(pem, len, "k.pem", err, sizeof err);

	CHECKF(k != NULL, "%s", err);
	if (k != NULL) {
		CHECK(dkim_key_bits(k) == 4096 && dkim_key_sign(k, hv, sig, sizeof sig) == 512);
		CHECK(br_rsa_pkcs1_vrfy_get_default()(sig, 512, BR_HASH_OID_SHA256, 32, &k4096.pk, out) &&
		      memcmp(out, hv, 32) == 0);
	}
	dkim_key_free(k);
	free(pem);
}

static void check_refused(const char *pem, size_t len, const char *want)
{
	char err[300] = "";
	struct dkim_key *k = dkim_key_load(pem, len ? len : strlen(pem), "k.pem", err, sizeof err);

	CHECKF(k == NULL && strstr(err, want) != NULL, "want '%s', got '%s'", want, err);
	dkim_key_free(k);
}

static void test_refused(void)
{
	size_t len;
	char *pem = pem_of(&k1024, 0, &len);

	check_refused(pem, len, "k.pem: RSA-1024: DKIM keys must have 2048 to 4096 bits");
	free(pem);
	check_refused("", 0, "k.pem: no private key block");
	check_refused("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", 0,
	              "unexpected CERTIFICATE block");
	check_refused("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n", 0,
	              "an EC key");
	check_refused("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", 0,
	              "cannot decode the key");
	/* Two keys in one file. */
	pem = pem_of(&k2048, 1, &len);
	char *two = malloc(2 * len);
	memcpy(two, pem, len);
	memcpy(two + len, pem, len);
	check_refused(two, 2 * len, "more than one private key");
	free(two);
	free(pem);

	/* A key whose numbers do not belong together: one bit of dp flipped
	 * (the CRT signature is then wrong), and iq likewise. */
	struct pair bad = k2048;
	unsigned char dp[512], iq[512];
	memcpy(dp, k2048.sk.dp, k2048.sk.dplen);
	dp[k2048.sk.dplen / 2] ^= 0x10;
	bad.sk.dp = dp;
	pem = pem_of(&bad, 0, &len);
	check_refused(pem, len, "fails the sign-and-verify self test");
	free(pem);
	bad = k2048;
	memcpy(iq, k2048.sk.iq, k2048.sk.iqlen);
	iq[3] ^= 0x01;
	bad.sk.iq = iq;
	pem = pem_of(&bad, 1, &len);
	check_refused(pem, len, "fails the sign-and-verify self test");
	free(pem);
}

/* spki_rsa_from_private() on what BearSSL's encoders write; the SPKI
 * encoder's lengths at the DER length-form boundaries. */
static void test_spki(void)
{
	unsigned char der[4096], out[SPKI_RSA_MAX + 100];
	struct spki_rsa pub;

	for (int pkcs1 = 0; pkcs1 <= 1; pkcs1++) {
		size_t n = pkcs1 ? br_encode_rsa_raw_der(der, &k2048.sk, &k2048.pk, k2048.d, k2048.dlen)
		                 : br_encode_rsa_pkcs8_der(der, &k2048.sk, &k2048.pk, k2048.d, k2048.dlen);

		CHECK(spki_rsa_from_private(der, n, &pub) == 0);
		CHECK(pub.nlen == k2048.pk.nlen && memcmp(pub.n, k2048.pk.n, pub.nlen) == 0 &&
		      pub.elen == k2048.pk.elen && memcmp(pub.e, k2048.pk.e, pub.elen) == 0);
		/* Every truncation and a trailing byte are refused. */
		for (size_t cut = 0; cut < n; cut += 7)
			CHECKF(spki_rsa_from_private(der, cut, &pub) == -1, "cut %zu", cut);
		der[n] = 0;
		CHECK(spki_rsa_from_private(der, n + 1, &pub) == -1);
	}
	/* Moduli of 1 to 600 bytes, top bit set or not: parse(encode) is the
	 * identity, and the length is what was written. */
	unsigned char nbuf[600];
	for (size_t k = 0; k < sizeof nbuf; k++)
		nbuf[k] = (unsigned char)(k * 37 + 11);
	for (size_t nl = 1; nl <= sizeof nbuf; nl++) {
		for (int top = 0; top <= 1; top++) {
			nbuf[0] = top ? 0xC5 : 0x45;
			size_t need = spki_rsa_encode(nbuf, nl, (const unsigned char *)"\x01\x00\x01", 3,
			                              out, sizeof out);
			CHECKF(need <= sizeof out && spki_rsa_parse(out, need, &pub) == 0 &&
			       pub.nlen == nl && memcmp(pub.n, nbuf, nl) == 0, "nlen %zu", nl);
			/* Too small a buffer: the same length, nothing past cap. */
			memset(out, 0xEE, 8);
			CHECK(spki_rsa_encode(nbuf, nl, (const unsigned char *)"\x01\x00\x01", 3, out, 2) ==
			      need && out[2] == 0xEE);
		}
	}
	CHECK(spki_rsa_encode((const unsigned char *)"\0\0", 2, (const unsigned char *)"\x03", 1,
	                      out, sizeof out) == 0);
	/* A 4096-bit modulus fits SPKI_RSA_MAX. */
	unsigned char big[512];
	memset(big, 0xff, sizeof big);
	CHECK(spki_rsa_encode(big, sizeof big, big, 8, NULL, 0) <= SPKI_RSA_MAX);
}

int main(void)
{
	if (make_pair(&k2048, 2048, "moat test key 2048") != 0 ||
	    make_pair(&k1024, 1024, "moat test key 1024") != 0 ||
	    make_pair(&k4096, 4096, "moat test key 4096") != 0) {
		printf("FAIL: keygen\n");
		return 1;
	}
	RUN(test_load_sign);
	RUN(test_4096);
	RUN(test_refused);
	RUN(test_spki);
	return t_main_end();
}
