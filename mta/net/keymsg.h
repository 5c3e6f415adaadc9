/*
 * mta/net/keymsg.h -- the messages between the key role (mta/roles/key_role.h)
 * and the smtp role's signer (mta/net/key_client.h): encoding and strict
 * decoding, pure functions on bytes, and the one-packet send and receive.
 *
 * Two kinds of link carry them, each a SOCK_SEQPACKET socketpair of its
 * own, so that neither can take the other's reply for its own:
 *
 *   TLS link   smtp role -> key role: SIGN_REQ, DECRYPT_REQ, answered by
 *              SIGN_REP, DECRYPT_REP.  Synchronous: the smtp role waits for
 *              each reply (BearSSL's policy callbacks are synchronous).
 *   DKIM link  smtp or delivery role -> key role: DKIM_SIGN_REQ,
 *              DKIM_KEY_REQ, answered by DKIM_SIGN_REP, DKIM_KEY_REP.
 *              Asynchronous: several requests may be on their way; the key
 *              role answers each link's requests in order
 *              (mta/net/dkim_client.h).
 *
 * A request of the other kind is malformed on a link.  One message per
 * packet.  Every message is a 12-byte header and a payload, all integers
 * big-endian, a string a u16 length and its bytes (policy/wire.h):
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
 *   DKIM_SIGN_REQ  str domain (the dkim-sign line's DOMAIN as configured,
 *                "*.NAME" included), str selector, then the 32-byte
 *                SHA-256 to sign (policy/dkim.h dkim_prepare())
 *   DKIM_SIGN_REP  u8 ok; ok 1: the RSASSA-PKCS1-v1_5 signature follows
 *                (1..KEYMSG_SIG_MAX bytes); ok 0 (no such key, or the key
 *                failed): nothing follows
 *   DKIM_KEY_REQ   str domain: a From: domain, which key covers it?
 *   DKIM_KEY_REP   u8 ok; ok 0: no key covers it, nothing follows; ok 1:
 *                str domain (the line's DOMAIN as configured), str
 *                selector, str headers (the headers list, lower case, ""
 *                for the default), u16 + the modulus (1..KEYMSG_MOD_MAX
 *                bytes), u16 + the public exponent (1..KEYMSG_EXP_MAX)
 *
 * A domain is 1..KEYMSG_DOMAIN_MAX bytes, a selector 1..KEYMSG_SEL_MAX, a
 * headers list 0..KEYMSG_HLIST_MAX, each of printable ASCII (%x21-7E):
 * whether it is a DNS name is for the user of the message to judge.
 *
 * A packet shorter or longer than 12 + len, an unknown type, a length not
 * exact for the type, a field out of its range, or a flag other than 0/1
 * is malformed: the link is broken, never resynchronised.  The smtp role's
 * TLS signer also breaks the link on a reply whose type or id is not the
 * one it waits for, on EOF, and when no reply comes within
 * KEYROLE_TIMEOUT_MS; every later request through that link fails at once
 * (the handshake fails with a BearSSL error) until tls_creds_use_key_role()
 * gives a new link.  The DKIM link's rules are in mta/net/dkim_client.h.
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
	KEYMSG_DECRYPT_REP = 4,
	KEYMSG_DKIM_SIGN_REQ = 5,
	KEYMSG_DKIM_SIGN_REP = 6,
	KEYMSG_DKIM_KEY_REQ  = 7,
	KEYMSG_DKIM_KEY_REP  = 8
};

#define KEYMSG_HDR      12
#define KEYMSG_HASH_MAX 64    /* SHA-512 */
#define KEYMSG_SIG_MAX  512   /* RSA-4096, BearSSL's largest */
#define KEYMSG_MOD_MAX  512   /* RSA modulus, bytes */
#define KEYMSG_MOD_MIN  59    /* br_rsa_ssl_decrypt() needs 11 + 48 */
#define KEYMSG_PMS      48    /* the TLS premaster secret */
#define KEYMSG_DKIM_HASH 32  /* a DKIM_SIGN_REQ's SHA-256 */
#define KEYMSG_DOMAIN_MAX 255 /* "*." and a 253-byte name */
#define KEYMSG_SEL_MAX   63
#define KEYMSG_HLIST_MAX 511  /* CONF_DKIM_HEADERS_MAX without its NUL */
#define KEYMSG_EXP_MAX   64   /* what mta/ops/dkim_key.h accepts */
/* The largest message: a DKIM_KEY_REP with every field at its longest. */
#define KEYMSG_MAX      (KEYMSG_HDR + 1 + 2 + KEYMSG_DOMAIN_MAX + 2 + KEYMSG_SEL_MAX + 2 + \
                         KEYMSG_HLIST_MAX + 2 + KEYMSG_MOD_MAX + 2 + KEYMSG_EXP_MAX)

struct keymsg {
	uint32_t type;               /* enum keymsg_type */
	uint32_t id;
	unsigned hash_id;            /* SIGN_REQ */
	unsigned ok;                 /* SIGN_REP, DECRYPT_REP: 1 done, 0 failed */
	const unsigned char *data;   /* SIGN_REQ: hash value; SIGN_REP, DKIM_SIGN_REP:
	                                signature (ok 1); DECRYPT_REQ: ciphertext;
	                                DECRYPT_REP: KEYMSG_PMS bytes; DKIM_SIGN_REQ:
	                                the hash; DKIM_KEY_REP: the modulus (ok 1) */
	size_t len;                  /* bytes at data */
	/* DKIM_SIGN_REQ, DKIM_KEY_REQ, DKIM_KEY_REP (ok 1): not NUL-terminated */
	const char *domain;
	size_t domainlen;
	const char *selector;        /* DKIM_SIGN_REQ, DKIM_KEY_REP */
	size_t selectorlen;
	const char *headers;         /* DKIM_KEY_REP */
	size_t headerslen;
	const unsigned char *exp;    /* DKIM_KEY_REP: the public exponent */
	size_t explen;
};

/* 1 for the types of a DKIM link (DKIM_*), 0 for those of a TLS link. */
int keymsg_is_dkim(uint32_t type);

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
