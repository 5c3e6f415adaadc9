/*
 * mta/net/keyrole.h -- the key role: the only process that holds the TLS
 * private key; it signs and RSA-decrypts for the smtp role over a
 * socketpair (OpenSMTPD's `ca` process is the model).
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
#ifndef MOAT_MTA_NET_KEYROLE_H
#define MOAT_MTA_NET_KEYROLE_H

#include <stddef.h>
#include <stdint.h>

struct tls_creds;

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

/* ---- the two ends of the link ----------------------------------------- */

#define KEYROLE_TIMEOUT_MS 5000  /* the smtp role's wait for one reply */

/*
 * The key role's loop: answer sign / rsa-decrypt requests on fd (a
 * blocking SOCK_SEQPACKET socketpair end) with creds' private key until
 * EOF or the peer is gone (ECONNRESET, EPIPE: returns 0), or a malformed
 * request or another I/O error (logs, returns 111: the link is dropped,
 * never a crash).  System calls: recvmsg, sendto, and write(2) for a log
 * line on stderr; no randomness (ECDSA signatures are RFC 6979, RSA
 * PKCS#1 v1.5 and the SSL decryption are deterministic).  creds must still hold the
 * private key (loaded by tls_creds_load(), never passed to
 * tls_creds_use_key_role()).  fd stays open: the caller closes it.
 */
int keyrole_serve(int fd, struct tls_creds *creds);

/*
 * In the smtp role: make creds sign through the key role at fd (a
 * SOCK_SEQPACKET socketpair end) and wipe the private key from this
 * process's memory (explicit_bzero, then free).  creds keep the
 * certificate chain and the public key; tls_creds_describe() still works.
 * The caller keeps ownership of fd (it must stay open while creds are in
 * use) and may call this again with a new fd after the key role was
 * restarted: that replaces the link and clears a broken state.  fd -1:
 * no key role (yet): the key is wiped all the same and every handshake
 * fails until a call with a real fd (a role that must not hold the key
 * forgets it this way).  Returns 0, or -1 when out of memory (the key is
 * wiped even then; handshakes fail).
 */
int tls_creds_use_key_role(struct tls_creds *creds, int fd);

/* 1 when creds sign through a key role link that is broken (every
 * handshake fails until tls_creds_use_key_role() gives a new fd), else 0.
 * The smtp role polls this to ask the supervisor for a new key role. */
int keyrole_link_broken(const struct tls_creds *creds);

#endif
