/*
 * policy/shacrypt.h -- SHA-crypt ($5$ SHA-256, $6$ SHA-512), Ulrich
 * Drepper's "Unix crypt using SHA-256 and SHA-512" (2008), the hashes
 * that `openssl passwd -5/-6` and `mkpasswd -m sha-512` write.  Computed
 * with BearSSL's SHA-2 (musl has no crypt()).  Pure: no I/O, no clock.
 *
 * A hash is "$5$" or "$6$", optionally "rounds=N$" (N clamped to
 * 1000..999999999, default 5000 and then not written), a salt of at most
 * 16 characters (any but '$' and ':' and NUL; longer is cut, as the spec
 * says), '$', and 43 ($5$) or 86 ($6$) characters of the digest.
 */
#ifndef MOAT_POLICY_SHACRYPT_H
#define MOAT_POLICY_SHACRYPT_H

#include <stddef.h>

#define SHACRYPT_MAX 128           /* longest hash text, with its NUL */
#define SHACRYPT_SALT_MAX 16
#define SHACRYPT_ROUNDS_DEFAULT 5000
#define SHACRYPT_ROUNDS_MIN 1000
#define SHACRYPT_ROUNDS_MAX 999999999ul

/*
 * Hash key[0..keylen) with the settings in setting[0..setlen) (the start of
 * a hash: "$6$salt" or "$6$rounds=N$salt", anything after the salt's '$'
 * ignored) into out (cap >= SHACRYPT_MAX), NUL-terminated.
 * Returns the length, or 0 if setting is not a $5$/$6$ setting.
 * Cost: rounds times one SHA-2 block or two; 5000 rounds of $6$ take a few
 * milliseconds, which the caller spends on its own thread.
 */
size_t shacrypt(const char *key, size_t keylen, const char *setting, size_t setlen, char *out,
                size_t cap);

/* 1 if hash is a well-formed $5$/$6$ hash, else 0. */
int shacrypt_valid(const char *hash, size_t len);

/* 1 if key hashes to hash; the final comparison takes the same time
 * wherever the first difference is.  0 for a mismatch or a bad hash. */
int shacrypt_verify(const char *key, size_t keylen, const char *hash, size_t hashlen);

/* Constant-time comparison of two equal-length byte strings: 1 if equal. */
int shacrypt_equal(const void *a, const void *b, size_t n);

#endif
