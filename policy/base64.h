/*
 * policy/base64.h -- RFC 4648 base64 (the standard alphabet), as SASL
 * (RFC 4954) and PEM (RFC 7468) carry it.
 *
 * Pure: no I/O, no allocation.  The caller supplies the output buffer.
 */
#ifndef MOAT_POLICY_BASE64_H
#define MOAT_POLICY_BASE64_H

#include <stddef.h>

/* Bytes base64_decode() may write for len input characters. */
#define BASE64_DECODED_MAX(len) ((len) / 4 * 3 + 3)
/* Characters base64_encode() writes for len bytes, without the NUL. */
#define BASE64_ENCODED_LEN(len) (((len) + 2) / 3 * 4)

/*
 * Decode text[0..len) into out (cap bytes).  Strict, as a SASL response
 * must be: only A-Z a-z 0-9 + /, length a multiple of 4, '=' padding only
 * at the end (at most two), and the unused bits of the last group zero
 * (so each byte string has one encoding).  When skip_space is set, SP, TAB,
 * CR and LF anywhere are ignored (PEM bodies are broken into lines).
 * Returns 0 with *outlen set, or -1 (malformed, or does not fit in cap).
 */
int base64_decode(const char *text, size_t len, int skip_space, unsigned char *out, size_t cap,
                  size_t *outlen);

/* Encode in[0..len) with padding into out (cap bytes) and NUL-terminate
 * when it fits.  Returns BASE64_ENCODED_LEN(len), like snprintf. */
size_t base64_encode(const unsigned char *in, size_t len, char *out, size_t cap);

#endif
