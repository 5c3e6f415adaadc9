/*
 * policy/spki.h -- the public half of an RSA key, in DER.
 *
 * spki_rsa_encode() writes the SubjectPublicKeyInfo (RFC 5280 4.1, with
 * rsaEncryption, RFC 8017 A.1) that a DKIM key record publishes as p=
 * (RFC 6376 3.6.1), from the modulus and the public exponent.
 * spki_rsa_from_private() reads those two back out of a private key's DER
 * (PKCS#1 RSAPrivateKey, or the PKCS#8 PrivateKeyInfo around one): BearSSL's
 * key decoder keeps only the CRT values, and br_rsa_compute_pubexp() gives
 * 0 for keys whose primes are not 3 mod 4 (most keys openssl makes), so the
 * exponent is taken from the file.  spki_rsa_parse() reads an SPKI (tests).
 *
 * Pure: ASN.1 DER only, no arithmetic on the numbers; the caller owns the
 * buffers, and what the readers return points into their input.
 */
#ifndef MOAT_POLICY_SPKI_H
#define MOAT_POLICY_SPKI_H

#include <stddef.h>

/* An RSA public key: big-endian unsigned integers without leading zeros. */
struct spki_rsa {
	const unsigned char *n;
	size_t               nlen;
	const unsigned char *e;
	size_t               elen;
};

/* The largest SPKI spki_rsa_encode() writes for a 4096-bit modulus and an
 * exponent of up to 8 bytes. */
#define SPKI_RSA_MAX 560

/*
 * Write the SubjectPublicKeyInfo of (n, e) into out (cap bytes) when it
 * fits; returns the length it needs either way (like snprintf), or 0 when
 * n or e is zero or empty.  Leading zero bytes of n and e are ignored.
 */
size_t spki_rsa_encode(const unsigned char *n, size_t nlen, const unsigned char *e, size_t elen,
                       unsigned char *out, size_t cap);

/* The modulus and exponent of a PKCS#1 or PKCS#8 RSA private key's DER
 * der[0..len) (the whole input must be the one key).  0, or -1 when it is
 * not one (malformed DER, another algorithm, a negative or zero number). */
int spki_rsa_from_private(const unsigned char *der, size_t len, struct spki_rsa *pub);

/* The modulus and exponent of an RSA SubjectPublicKeyInfo; 0 or -1. */
int spki_rsa_parse(const unsigned char *der, size_t len, struct spki_rsa *pub);

#endif
