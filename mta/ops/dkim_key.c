/* mta/ops/dkim_key.c -- DKIM private keys; see dkim_key.h */
#include "mta/ops/dkim_key.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bearssl.h>

#include "policy/pem.h"
#include "policy/spki.h"

#define KEY_DER_MAX (16 * 1024)

struct dkim_key {
	br_rsa_private_key sk;    /* points into buf */
	br_rsa_public_key  pk;    /* n and e, point into buf */
	unsigned char     *buf;   /* p q dp dq iq n e, owned */
	size_t             buflen;
};

void dkim_key_free(struct dkim_key *k)
{
	if (k == NULL)
		return;
	if (k->buf != NULL) {
		/* explicit_bzero: a memset before free() may be optimised away. */
		explicit_bzero(k->buf, k->buflen);
		free(k->buf);
	}
	explicit_bzero(k, sizeof *k);
	free(k);
}

unsigned dkim_key_bits(const struct dkim_key *k)
{
	return k->sk.n_bitlen;
}

size_t dkim_key_sign(const struct dkim_key *k, const unsigned char hv[32], unsigned char *sig,
                     size_t cap)
{
	size_t n = (k->sk.n_bitlen + 7) >> 3;

	if (cap < n || k->sk.p == NULL)
		return 0;
	return br_rsa_pkcs1_sign_get_default()(BR_HASH_OID_SHA256, hv, 32, &k->sk, sig) ? n : 0;
}

void dkim_key_forget_private(struct dkim_key *k)
{
	uint32_t bits;
	size_t priv;

	if (k == NULL || k->sk.p == NULL)
		return;
	/* p q dp dq iq come first in buf (keep()), n and e after them. */
	priv = k->sk.plen + k->sk.qlen + k->sk.dplen + k->sk.dqlen + k->sk.iqlen;
	explicit_bzero(k->buf, priv);
	/* Only pointers into buf and lengths are left: forgotten too. */
	bits = k->sk.n_bitlen;
	k->sk = (br_rsa_private_key){ .n_bitlen = bits };   /* p NULL: dkim_key_sign() refuses */
}

void dkim_key_public(const struct dkim_key *k, const unsigned char **n, size_t *nlen,
                     const unsigned char **e, size_t *elen)
{
	*n = k->pk.n;
	*nlen = k->pk.nlen;
	*e = k->pk.e;
	*elen = k->pk.elen;
}

int dkim_rsa_verify(const unsigned char *n, size_t nlen, const unsigned char *e, size_t elen,
                    const unsigned char hv[32], const unsigned char *sig, size_t siglen)
{
	br_rsa_public_key pk;
	unsigned char out[32];

	/* BearSSL's verifier takes n without leading zeros; the signature is
	 * as long as that. */
	while (nlen > 0 && n[0] == 0) {
		n++;
		nlen--;
	}
	if (nlen == 0 || elen == 0 || siglen != nlen)
		return 0;
	pk.n = (unsigned char *)(uintptr_t)n;
	pk.nlen = nlen;
	pk.e = (unsigned char *)(uintptr_t)e;
	pk.elen = elen;
	return br_rsa_pkcs1_vrfy_get_default()(sig, siglen, BR_HASH_OID_SHA256, sizeof out, &pk, out) &&
	       memcmp(out, hv, sizeof out) == 0;
}

size_t dkim_key_spki(const struct dkim_key *k, unsigned char *der, size_t cap)
{
	return spki_rsa_encode(k->pk.n, k->pk.nlen, k->pk.e, k->pk.elen, der, cap);
}

/* The one private key block of the PEM text, as DER into der. */
static int key_der(const char *pem, size_t len, const char *name, unsigned char *der,
                   size_t *derlen, char *err, size_t errcap)
{
	struct pem_block b;
	size_t pos = 0, nkeys = 0;
	const char *why;
	enum pem_result r;

	while ((r = pem_next(pem, len, &pos, &b, der, KEY_DER_MAX, &why)) == PEM_OK) {
		if (strcmp(b.label, "EC PRIVATE KEY") == 0) {
			snprintf(err, errcap, "%s: an EC key: DKIM keys are RSA here (rsa-sha256; "
			         "BearSSL has no Ed25519)", name);
			return -1;
		}
		if (strcmp(b.label, "RSA PRIVATE KEY") != 0 && strcmp(b.label, "PRIVATE KEY") != 0) {
			snprintf(err, errcap, "%s: line %zu: unexpected %s block (want an unencrypted "
			         "RSA private key)", name, b.line, b.label);
			return -1;
		}
		if (++nkeys > 1) {
			snprintf(err, errcap, "%s: more than one private key", name);
			return -1;
		}
		/* Any other block is an error, so the key is the last block
		 * decoded into der. */
		*derlen = b.derlen;
	}
	if (r != PEM_END) {
		snprintf(err, errcap, "%s: bad PEM: %s", name, why);
		return -1;
	}
	if (nkeys == 0) {
		snprintf(err, errcap, "%s: no private key block", name);
		return -1;
	}
	return 0;
}

/* Copy the private values, and n and e, into one buffer the key owns. */
static int keep(struct dkim_key *k, const br_rsa_private_key *sk, const unsigned char *e,
                size_t elen)
{
	br_rsa_compute_modulus modulus = br_rsa_compute_modulus_get_default();
	size_t nlen = modulus(NULL, sk);
	unsigned char *p;

	/* BearSSL 0.6's i31 code (the default) has too small a scratch
	 * buffer for two 2048-bit primes and gives 0 for every 4096-bit key;
	 * the i15 code computes it. */
	if (nlen == 0) {
		modulus = br_rsa_i15_compute_modulus;
		nlen = modulus(NULL, sk);
	}
	if (nlen == 0)
		return -1;
	k->buflen = sk->plen + sk->qlen + sk->dplen + sk->dqlen + sk->iqlen + nlen + elen;
	if ((k->buf = p = malloc(k->buflen)) == NULL)
		return -1;
	k->sk.n_bitlen = sk->n_bitlen;
#define TAKE(f) do { memcpy(p, sk->f, sk->f##len); k->sk.f = p; k->sk.f##len = sk->f##len; \
	p += sk->f##len; } while (0)
	TAKE(p);
	TAKE(q);
	TAKE(dp);
	TAKE(dq);
	TAKE(iq);
#undef TAKE
	if (modulus(p, sk) != nlen)
		return -1;
	k->pk.n = p;
	k->pk.nlen = nlen;
	memcpy(p + nlen, e, elen);
	k->pk.e = p + nlen;
	k->pk.elen = elen;
	return 0;
}

/* The public exponent: BearSSL recomputes it from p and dp only when
 * both primes are 3 mod 4 (its own keys; openssl's mostly are not), so it
 * is otherwise read from the key's DER, whose modulus must then be ours. */
static int public_exponent(const br_rsa_private_key *sk, const unsigned char *der, size_t derlen,
                           unsigned char *ebuf, const unsigned char **e, size_t *elen)
{
	uint32_t x = br_rsa_compute_pubexp_get_default()(sk);
	struct spki_rsa pub;

	if (x != 0) {
		ebuf[0] = (unsigned char)(x >> 24);
		ebuf[1] = (unsigned char)(x >> 16);
		ebuf[2] = (unsigned char)(x >> 8);
		ebuf[3] = (unsigned char)x;
		*e = ebuf;
		*elen = 4;
		while (*elen > 1 && **e == 0) {
			(*e)++;
			(*elen)--;
		}
		return 0;
	}
	if (spki_rsa_from_private(der, derlen, &pub) != 0 || pub.elen > 64)
		return -1;
	*e = pub.e;
	*elen = pub.elen;
	return 0;
}

/* Sign a fixed hash, verify it with the public half: the key's numbers
 * belong together (a wrong dp or iq makes CRT signatures that fail). */
static int self_test(const struct dkim_key *k)
{
	static const unsigned char hv[32] = "moat dkim sign-and-verify test.";
	unsigned char sig[512];

	size_t n = dkim_key_sign(k, hv, sig, sizeof sig);
	return n > 0 && dkim_rsa_verify(k->pk.n, k->pk.nlen, k->pk.e, k->pk.elen, hv, sig, n) ? 0 : -1;
}

/* Decode der into k and check it (everything but the PEM). */
static int load_der(struct dkim_key *k, const unsigned char *der, size_t derlen, const char *name,
                    br_skey_decoder_context *kd, char *err, size_t errcap)
{
	const br_rsa_private_key *sk;
	unsigned char ebuf[4];
	const unsigned char *e;
	size_t elen;

	br_skey_decoder_init(kd);
	br_skey_decoder_push(kd, der, derlen);
	if (br_skey_decoder_last_error(kd) != 0) {
		snprintf(err, errcap, "%s: cannot decode the key (error %d)", name,
		         br_skey_decoder_last_error(kd));
		return -1;
	}
	if ((sk = br_skey_decoder_get_rsa(kd)) == NULL) {
		snprintf(err, errcap, "%s: not an RSA key: DKIM keys are RSA here (rsa-sha256; "
		         "BearSSL has no Ed25519)", name);
		return -1;
	}
	if (sk->n_bitlen < DKIM_KEY_BITS_MIN || sk->n_bitlen > DKIM_KEY_BITS_MAX) {
		snprintf(err, errcap, "%s: RSA-%u: DKIM keys must have %d to %d bits", name,
		         (unsigned)sk->n_bitlen, DKIM_KEY_BITS_MIN, DKIM_KEY_BITS_MAX);
		return -1;
	}
	if (public_exponent(sk, der, derlen, ebuf, &e, &elen) != 0) {
		snprintf(err, errcap, "%s: cannot find the public exponent", name);
		return -1;
	}
	if (keep(k, sk, e, elen) != 0) {
		snprintf(err, errcap, "%s: out of memory, or the modulus cannot be computed", name);
		return -1;
	}
	struct spki_rsa pub;
	if (spki_rsa_from_private(der, derlen, &pub) == 0 &&
	    (pub.nlen != k->pk.nlen || memcmp(pub.n, k->pk.n, pub.nlen) != 0)) {
		snprintf(err, errcap, "%s: the modulus in the file is not the product of its primes",
		         name);
		return -1;
	}
	if (self_test(k) != 0) {
		snprintf(err, errcap, "%s: the key fails the sign-and-verify self test (its numbers "
		         "do not belong together)", name);
		return -1;
	}
	return 0;
}

struct dkim_key *dkim_key_load(const char *pem, size_t len, const char *name, char *err,
                               size_t errcap)
{
	unsigned char *der = malloc(KEY_DER_MAX);
	br_skey_decoder_context *kd = malloc(sizeof *kd);
	struct dkim_key *k = calloc(1, sizeof *k);
	size_t derlen = 0;
	int failed = 1;

	if (der == NULL || kd == NULL || k == NULL)
		snprintf(err, errcap, "%s: out of memory", name);
	else if (key_der(pem, len, name, der, &derlen, err, errcap) == 0 &&
	         load_der(k, der, derlen, name, kd, err, errcap) == 0)
		failed = 0;
	/* The key's bytes must not stay in freed memory a fork could read. */
	if (der != NULL)
		explicit_bzero(der, KEY_DER_MAX);
	if (kd != NULL)
		explicit_bzero(kd, sizeof *kd);
	free(der);
	free(kd);
	if (failed) {
		dkim_key_free(k);
		return NULL;
	}
	return k;
}
