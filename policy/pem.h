/*
 * policy/pem.h -- PEM (RFC 7468) text to DER blocks.
 *
 * Pure: the caller reads the file and supplies the output buffer.  Only
 * the strict form is taken: "-----BEGIN LABEL-----", base64 lines,
 * "-----END LABEL-----" with the same label; text between blocks is
 * ignored (as openssl writes "Bag Attributes" before them).  Encrypted PEM
 * (a "Proc-Type:" header) is refused: moat reads keys without a passphrase.
 */
#ifndef MOAT_POLICY_PEM_H
#define MOAT_POLICY_PEM_H

#include <stddef.h>

#define PEM_LABEL_MAX 64

struct pem_block {
	char   label[PEM_LABEL_MAX + 1];  /* "CERTIFICATE", "PRIVATE KEY", ... */
	size_t derlen;                    /* bytes written to der */
	size_t line;                      /* line of its BEGIN, from 1 */
};

enum pem_result {
	PEM_OK = 0,       /* a block was decoded into der; *pos is past it */
	PEM_END = 1,      /* no more blocks */
	PEM_EBAD = -1,    /* malformed (what in *why) */
	PEM_EBIG = -2     /* the block does not fit in cap */
};

/*
 * Decode the next block at or after text[*pos] into der (cap bytes).
 * On PEM_OK *pos moves past the END line; on an error *why names it.
 * The base64 body may not exceed cap * 4 / 3 + 4 characters.
 */
enum pem_result pem_next(const char *text, size_t len, size_t *pos, struct pem_block *b,
                         unsigned char *der, size_t cap, const char **why);

#endif
