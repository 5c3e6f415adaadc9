/*
 * mta/net/keymsg.h -- the messages between the key role (mta/roles/key_role.h)
 * and the smtp role's signer (mta/net/key_client.h): encoding and strict
 * decoding, pure functions on bytes, and the one-packet send and receive.
 *
 * The link is a SOCK_SEQPACKET socketpair: one message per packet, one
 * request at a time (the smtp role waits for each reply: BearSSL's policy
 * callbacks are synchronous).  Every message is a 12-byte header and a
 * payload, all integers big-endian:
 *
 *   offset 0  u32 type     KEYMSG_*
 *   offset 4  u32 id       request id; a reply carries its request's id
 *   offset 8  u32 len      payload length: exact for the type, see below
 *   offset 12 payload
 *
 *   SIGN_REQ     u8 hash_id, then the hash value: len = 1 + the hash's
 *                length (hash_id 0: MD5+SHA-1, 36 bytes; br_sha1_ID 20,
 *                sha224 28, sha256 32, sha384 48, sha512 64; no other id)
 *   SIGN_REP     u8 ok (0 or 1); ok 0: len = 1; ok 1: the signature
 *                follows, len = 1 + 1..KEYMSG_SIG_MAX
 *   DECRYPT_REQ  the RSA-encrypted premaster secret: len = the modulus
 *                length in bytes (an EC key: never valid)
 *   DECRYPT_REP  u8 ok (0 or 1), then KEYMSG_PMS bytes (the premaster
 *                secret; whatever the decryption left when ok is 0, so
 *                that failure looks like success on the wire): len = 49
 *
 * A packet shorter or longer than 12 + len, an unknown type, a length not
 * exact for the type, or a flag other than 0/1 is malformed: the link is
 * broken, never resynchronised.  The smtp role also breaks the link on a
 * reply whose type or id is not the one it waits for, on EOF, and when no
 * reply comes within KEYROLE_TIMEOUT_MS; every later request through that
 * link fails at once (the handshake fails with a BearSSL error) until
 * tls_creds_use_key_role() gives a new link.
 */
#ifndef MOAT_MTA_NET_KEYMSG_H
#define MOAT_MTA_NET_KEYMSG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- the messages: pure functions, no I/O ---------------------------- */

enum keymsg_type {
	KEYMSG_SIGN_REQ    = 1,
	KEYMSG_SIGN_REP    = 2,
	KEYMSG_DECRYPT_REQ = 3,
	KEYMSG_DECRYPT_REP = 4
};

#define KEYMSG_HDR      12
#define KEYMSG_HASH_MAX 64    /* SHA-512 */
#define KEYMSG_SIG_MAX  512   /* RSA-4096, BearSSL's largest */
#define KEYMSG_MOD_MAX  512   /* RSA modulus, bytes */
#define KEYMSG_MOD_MIN  59    /* br_rsa_ssl_decrypt() needs 11 + 48 */
#define KEYMSG_PMS      48    /* the TLS premaster secret */
/* The largest message: a SIGN_REP with an RSA-4096 signature. */
#define KEYMSG_MAX      (KEYMSG_HDR + 1 + KEYMSG_SIG_MAX)

struct keymsg {
	uint32_t type;               /* enum keymsg_type */
	uint32_t id;
	unsigned hash_id;            /* SIGN_REQ */
	unsigned ok;                 /* SIGN_REP, DECRYPT_REP: 1 done, 0 failed */
	const unsigned char *data;   /* SIGN_REQ: hash value; SIGN_REP: signature
	                                (ok 1); DECRYPT_REQ: ciphertext;
	                                DECRYPT_REP: KEYMSG_PMS bytes */
	size_t len;                  /* bytes at data */
};

/* The length of the hash with BearSSL id hash_id (0: MD5+SHA-1) as a
 * SIGN_REQ carries it, 0 for an id that is not allowed. */
size_t keymsg_hash_len(unsigned hash_id);

/*
 * Decode one packet buf[0..len).  modlen is the RSA modulus length in
 * bytes of the key in use (0 for an EC key), which fixes a DECRYPT_REQ's
 * length.  On success fills *m (m->data points into buf) and returns 0;
 * on a malformed packet returns -1 with *why a short static reason.
 */
int keymsg_decode(const unsigned char *buf, size_t len, size_t modlen, struct keymsg *m,
                  const char **why);

/*
 * Encode *m into buf (cap bytes).  Returns the packet's length, or 0 when
 * m is not a message keymsg_decode() would accept with modlen, or when cap
 * is too small.  decode(encode(m)) == m, and encode(decode(p)) == p.
 */
size_t keymsg_encode(unsigned char *buf, size_t cap, size_t modlen, const struct keymsg *m);

/* ---- packets (blocking SOCK_SEQPACKET ends) ------------------------------ */

/* One packet into buf (KEYMSG_MAX bytes): its length, 0 at EOF (or a peer
 * that closed with our reply unread), -1 on an error or a packet longer
 * than any message (*why set). */
ssize_t keymsg_recv(int fd, unsigned char *buf, const char **why);
/* The whole packet, or -1 with *why set (errno kept: EPIPE, ECONNRESET). */
int keymsg_send(int fd, const unsigned char *buf, size_t len, const char **why);

#endif
