/*
 * mta/ops/dkim_key.h -- the DKIM private keys and the one thing they do.
 *
 * A key is RSA, 2048 to 4096 bits, in PEM: PKCS#1 ("RSA PRIVATE KEY") or
 * unencrypted PKCS#8 ("PRIVATE KEY").  Loading checks it whole: decodable,
 * RSA (an EC key is refused: BearSSL has no Ed25519, and rsa-sha256 is the
 * algorithm every verifier takes), its size, its public half (the modulus
 * from the primes; the exponent from BearSSL when it can recompute it, else
 * from the file's own DER), and a sign-and-verify self test: a signature
 * made with the private key must verify with that public key, so a key
 * whose numbers do not belong together never signs mail.
 *
 * Loaded with the other files the config names (mta/ops/config_files.h),
 * so `moat check`, `moat serve` and every reload check every key, and a
 * bad key at a reload keeps the old configuration.  At run time the private
 * halves live only in the key role (mta/roles/key_role.h): every other
 * role wipes them right after the fork (dkim_key_forget_private(), through
 * tables_forget_dkim()) and keeps the public halves, with which the smtp
 * role checks each signature the key role sends back.  A struct dkim_key
 * is owned by its loader and freed (wiped first) by dkim_key_free().
 */
#ifndef MOAT_MTA_OPS_DKIM_KEY_H
#define MOAT_MTA_OPS_DKIM_KEY_H

#include <stddef.h>

#define DKIM_KEY_BITS_MIN 2048
#define DKIM_KEY_BITS_MAX 4096   /* BearSSL's largest RSA key */

struct dkim_key;

/*
 * Decode and check the PEM text pem[0..len); name names it in errors
 * ("NAME: what is wrong").  NULL on error, with err set.
 */
struct dkim_key *dkim_key_load(const char *pem, size_t len, const char *name, char *err,
                               size_t errcap);

/*
 * Sign: the RSASSA-PKCS1-v1_5 signature with SHA-256 (RFC 6376 3.3.1,
 * a=rsa-sha256) of the hash hv (32 bytes: dkim_prepare()'s), into sig (cap
 * bytes, at least the modulus length).  Returns its length (the modulus
 * length), or 0 on failure.  Deterministic, no randomness, no I/O.
 */
size_t dkim_key_sign(const struct dkim_key *k, const unsigned char hv[32], unsigned char *sig,
                     size_t cap);

/* Wipe the private half from this process's memory and keep the public
 * one: dkim_key_sign() then fails (returns 0); the rest works. */
void dkim_key_forget_private(struct dkim_key *k);

/* The public half: the modulus and the exponent, big-endian, pointing
 * into k (valid while k is). */
void dkim_key_public(const struct dkim_key *k, const unsigned char **n, size_t *nlen,
                     const unsigned char **e, size_t *elen);

/*
 * Does sig[0..siglen) verify, with the public key (n, e), as the
 * RSASSA-PKCS1-v1_5 SHA-256 signature of the hash hv?  1 or 0.  A
 * signature must be exactly as long as the modulus.  Pure computation:
 * any role may check what the key role signed.
 */
int dkim_rsa_verify(const unsigned char *n, size_t nlen, const unsigned char *e, size_t elen,
                    const unsigned char hv[32], const unsigned char *sig, size_t siglen);

/* The modulus size in bits. */
unsigned dkim_key_bits(const struct dkim_key *k);

/* The public key as a DER SubjectPublicKeyInfo (policy/spki.h), for the
 * DNS record: written into der when it fits (SPKI_RSA_MAX always does);
 * returns the length it needs. */
size_t dkim_key_spki(const struct dkim_key *k, unsigned char *der, size_t cap);

/* Wipe and free (NULL is fine). */
void dkim_key_free(struct dkim_key *k);

#endif
