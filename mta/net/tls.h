/*
 * mta/net/tls.h -- TLS with BearSSL: credentials (certificate chain and key)
 * and the engine pump for one connection.
 *
 * Like BearSSL's engine, a struct tls does no I/O.  The code that owns the
 * socket pumps it, in any order, until tls_state() says OPEN or worse:
 *
 *   buf = tls_net_in(t, &cap)    recv() ciphertext into buf, tls_net_in_done(t, n)
 *   buf = tls_net_out(t, &len)   send() ciphertext from buf, tls_net_out_done(t, n)
 *   buf = tls_app_in(t, &len)    plaintext the peer sent; tls_app_in_done(t, n)
 *   n = tls_app_write(t, p, len) plaintext to send; tls_app_flush(t) ends a batch
 *
 * The pump is role-neutral: tls_server_new() makes the server side,
 * tls_client_new() the client side (outbound delivery, mta/smtp/delivery_attempt.c), and
 * everything below works the same for both.
 *
 * Credentials are reference-counted: a connection holds a reference from
 * tls_server_new() to tls_free(), so a reload (SIGHUP) can swap the
 * server's credentials while sessions still use the old ones.  This code
 * is single-threaded (the event loop); references are not atomic.
 *
 * The private key is used only through struct tls_signer, so that it can
 * later live in a separate process that signs over a socketpair (as
 * OpenSMTPD's ca process does: mta/net/key_client.h); tls_creds_load() installs an
 * in-process signer.  Memory: a connection allocates about 21 KiB of record buffers
 * plus BearSSL's context (~4 KiB), freed by tls_free().
 */
#ifndef MOAT_MTA_NET_TLS_H
#define MOAT_MTA_NET_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "mta/net/dane.h"

#define TLS_CHAIN_MAX 8   /* certificates in a chain, leaf first */

/*
 * The private key operations.  Both run synchronously inside the pump.
 *   sign: hv[0..hv_len) is a hash with BearSSL id hash_id (br_sha256_ID
 *         ...; 0 means the MD5+SHA-1 pair of TLS 1.0/1.1 RSA signatures).
 *         Write the signature (RSA: PKCS#1 v1.5; EC: ECDSA, DER) to sig
 *         (cap bytes).  Returns its length, 0 on failure.
 *   rsa_decrypt: the RSA key exchange of legacy suites: decrypt the
 *         premaster secret in data[0..len) in place, in constant time;
 *         returns 1 on success, 0 on failure (br_rsa_ssl_decrypt()).
 *         NULL for an EC key.
 */
struct tls_signer {
	size_t   (*sign)(void *ctx, unsigned hash_id, const unsigned char *hv, size_t hv_len,
	                 unsigned char *sig, size_t cap);
	uint32_t (*rsa_decrypt)(void *ctx, unsigned char *data, size_t len);
};

struct tls_creds;
struct tls;

/*
 * Hooks for the key role (mta/net/key_client.h), which moves the key out of the
 * smtp role.  tls_creds_signer(): the signer creds use now and its
 * context (*ctx).  tls_creds_modlen(): the RSA modulus length in bytes, 0
 * for an EC key (kept after a wipe).  tls_creds_set_signer(): sign with s
 * and ctx from now on and wipe the private key (explicit_bzero, then
 * free): only s can use it afterwards.  ctx_free (or NULL) is called with
 * ctx when the creds are freed or the signer is replaced.
 */
const struct tls_signer *tls_creds_signer(const struct tls_creds *c, void **ctx);
size_t tls_creds_modlen(const struct tls_creds *c);
void tls_creds_set_signer(struct tls_creds *c, const struct tls_signer *s, void *ctx,
                          void (*ctx_free)(void *));

/*
 * Decode a PEM certificate chain (leaf first) and a PEM private key (RSA
 * or EC; PKCS#1, SEC 1 or unencrypted PKCS#8), check that the key belongs
 * to the leaf certificate, and return credentials with one reference.
 * cert_name / key_name name the inputs in errors: "NAME: what is wrong".
 * NULL on error, with err set.
 */
struct tls_creds *tls_creds_load(const char *cert, size_t certlen, const char *cert_name,
                                 const char *key, size_t keylen, const char *key_name,
                                 char *err, size_t errcap);
void tls_creds_ref(struct tls_creds *c);
void tls_creds_unref(struct tls_creds *c);     /* frees at zero */
/* "RSA-2048" or "EC-P256", for logs. */
const char *tls_creds_describe(const struct tls_creds *c);

#define TLS_LEGACY 0x1u   /* also TLS 1.0/1.1 and CBC / RSA key exchange suites */

/* A server-side connection using creds (a reference is taken).  Default:
 * TLS 1.2, ECDHE with AES-GCM or ChaCha20-Poly1305, server preference, no
 * renegotiation.  NULL when out of memory or the system gives no entropy. */
struct tls *tls_server_new(struct tls_creds *creds, unsigned flags);
void tls_free(struct tls *t);

/*
 * Trust anchors for checking a server (outbound `tls verify`): the
 * certificates of a PEM bundle such as Debian's ca-certificates.crt.
 * pem[0..len) is the file's text, name names it in errors.  A block that
 * is not a certificate BearSSL can decode is skipped (bundles hold a few);
 * none at all is an error.  NULL with err set on failure.
 */
struct tls_anchors;
struct tls_anchors *tls_anchors_load(const char *pem, size_t len, const char *name,
                                     char *err, size_t errcap);
void tls_anchors_free(struct tls_anchors *a);
size_t tls_anchors_count(const struct tls_anchors *a);

/*
 * A client-side connection to server_name (sent as SNI; NULL or "" for an
 * address).  With anchors, the server's chain must lead to one of them
 * and, when server_name is given, its certificate must name it; without
 * (NULL), any certificate is taken: the connection is encrypted but the
 * server not authenticated (`tls may` and `tls require`).  Versions TLS
 * 1.0 to 1.2 and BearSSL's full suite list, for the oldest MX hosts.
 * anchors must outlive the connection.  NULL when out of memory or the
 * system gives no entropy.
 */
struct tls *tls_client_new(const char *server_name, const struct tls_anchors *anchors);

/*
 * A client-side connection to an MX host whose TLSA records (a validated
 * answer: see mta/net/dane.h) are in tlsa; server_name is the host (SNI,
 * and the name a DANE-TA chain must carry).  The handshake goes on only
 * if dane_check() says DANE_OK for the chain the server sends; the
 * records are copied.  Otherwise as tls_client_new(server_name, NULL).
 * NULL when out of memory or the system gives no entropy.
 */
struct tls *tls_client_new_dane(const char *server_name, const struct dns_tlsa_set *tlsa);

/* A DANE connection's verdict on the server's chain: DANE_PENDING until
 * the chain arrived, then dane_check()'s; DANE_NO_USABLE for a
 * connection made without records. */
enum dane_status tls_dane_status(const struct tls *t);
/* Check DANE-TA dates against now (Unix seconds), not the clock: tests. */
void tls_dane_set_time(struct tls *t, int64_t now);

enum tls_state {
	TLS_HANDSHAKE = 0,  /* keys not yet agreed: no application data */
	TLS_OPEN,           /* application data flows */
	TLS_CLOSED,         /* closed cleanly (close_notify) */
	TLS_FAILED          /* error: tls_error() says which */
};
enum tls_state tls_state(const struct tls *t);
int tls_error(const struct tls *t);            /* BearSSL BR_ERR_*, 0 if none */
const char *tls_error_name(int err);           /* "BR_ERR_BAD_VERSION"-like, short */

/* Ciphertext in: a buffer to fill, NULL (cap 0) when the engine takes no
 * input now. */
unsigned char *tls_net_in(struct tls *t, size_t *cap);
void tls_net_in_done(struct tls *t, size_t n);
/* Ciphertext out: bytes to send, NULL (len 0) when there are none. */
const unsigned char *tls_net_out(struct tls *t, size_t *len);
void tls_net_out_done(struct tls *t, size_t n);

/* Plaintext received: NULL (len 0) when none. */
const unsigned char *tls_app_in(struct tls *t, size_t *len);
void tls_app_in_done(struct tls *t, size_t n);
/* Queue plaintext to send; returns how much was taken (0 while the engine
 * cannot take more: send ciphertext first). */
size_t tls_app_write(struct tls *t, const void *p, size_t len);
void tls_app_flush(struct tls *t);

/* Start a clean close (close_notify); keep pumping tls_net_out(). */
void tls_close(struct tls *t);

/* After the handshake: "TLSv1.2" and the IANA-style suite name. */
const char *tls_version_name(const struct tls *t);
const char *tls_cipher_name(const struct tls *t);
/* tls_creds_describe() of the credentials this connection uses. */
const char *tls_key_name(const struct tls *t);

/*
 * Session resumption (RFC 5246: a session ID).  The server side keeps a
 * process-wide cache of recent sessions (LRU) and resumes them for clients
 * that offer one.  A client keeps what tls_session_get() gives after a
 * handshake and offers it on its next connection to the same server with
 * tls_client_resume() (before any I/O on the new connection); whether the
 * server took it, tls_resumed() says after the handshake.  A struct
 * tls_session holds the session's master secret: keep it in memory only.
 */
struct tls_session {
	unsigned char b[128];
};
/* The connection's session once open: 1 (*s set) or 0 (none to resume). */
int tls_session_get(const struct tls *t, struct tls_session *s);
/* Offer s to the server (a client connection not yet started): 0, or -1
 * (s holds no session; the connection then does a full handshake). */
int tls_client_resume(struct tls *t, const char *server_name, const struct tls_session *s);
/* After the handshake: 1 when the session offered was resumed. */
int tls_resumed(const struct tls *t);

/* Fill buf with len bytes from the kernel (getrandom); 0 or -1. */
int tls_entropy(void *buf, size_t len);

#endif
