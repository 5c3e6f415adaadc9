/*
 * mta/cmd/dkim_keygen.h -- `moat dkim-keygen [-o KEYFILE] [-pkcs1]
 * SELECTOR DOMAIN [BITS]`: make a DKIM key pair and say what to publish.
 *
 * An RSA key of BITS bits (2048 by default, 2048 to 4096; exponent 65537)
 * from BearSSL's key generator, driven by an HMAC-DRBG seeded from
 * getrandom().  The private key is written in PEM, PKCS#8 ("PRIVATE KEY")
 * or with -pkcs1 PKCS#1 ("RSA PRIVATE KEY"): to KEYFILE (created with mode
 * 0600, never over an existing file) or else to stdout.  Then the DNS
 * record, on stdout, as one zone-file line:
 *
 *   SELECTOR._domainkey.DOMAIN. IN TXT "v=DKIM1; k=rsa; p=..." "..."
 *
 * (strings of at most 255 bytes, which a resolver joins).  The key is
 * loaded back and self-tested (mta/ops/dkim_key.h) before anything is
 * written, so the output is a key `moat check` takes.
 * Exit: 0, 100 (usage), 111 (no entropy, cannot write KEYFILE).
 */
#ifndef MOAT_MTA_CMD_DKIM_KEYGEN_H
#define MOAT_MTA_CMD_DKIM_KEYGEN_H

int dkimkeygen_main(int argc, char **argv);

#endif
