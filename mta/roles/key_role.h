/*
 * mta/roles/key_role.h -- the key role: the only process that holds the
 * private keys, the TLS key and the DKIM keys; it signs and RSA-decrypts
 * for the role it serves over socketpairs (OpenSMTPD's `ca` process is the
 * model).
 *
 * Owns: the private keys (loaded by the supervisor before the fork, with
 * the config of the role it serves).
 * Serves: one client role, over at most two SOCK_SEQPACKET socketpairs
 * carrying the messages of mta/net/keymsg.h, one request at a time:
 *   - an smtp role's key role: its TLS link (the TLS key; when the config
 *     has one) and its DKIM link (the DKIM keys; when it has dkim-sign
 *     lines);
 *   - the delivery role's key role: a DKIM link only (DSNs are signed
 *     with the key of moat's hostname's domain: mta/smtp/dsn_dkim.h).
 * A TLS request waiting is answered before a DKIM one: a handshake holds
 * the smtp role's whole loop, a DKIM signature only its own message.
 * Asks: nobody.  Never: opens a file or a network socket (sandbox: no
 * files, no network), or answers a request it cannot decode, or a request
 * of the other link's kind (the link is dropped and the role ends, so the
 * supervisor starts a new one with new links).
 */
#ifndef MOAT_MTA_ROLES_KEY_ROLE_H
#define MOAT_MTA_ROLES_KEY_ROLE_H

#include "mta/ops/loaded_config.h"

struct tls_creds;
struct dkim_key;

/* What one key role serves; a link it does not have is -1. */
struct key_role_links {
	int                     tls_fd;   /* TLS signer requests, with creds' key */
	struct tls_creds       *creds;
	int                     dkim_fd;  /* DKIM requests, with conf's dkim-sign lines */
	const struct conf      *conf;
	struct dkim_key *const *keys;     /* keys[i]: conf->dkim[i]'s key */
};

/*
 * Serve k's links until one of them ends (EOF, or the peer gone:
 * returns 0) or sends a malformed request or one of the other link's
 * kind, or another I/O error (logs, returns 111).  DKIM_SIGN_REQ names
 * its key by the line's DOMAIN and selector (dkim_line_find()); a key not
 * configured is refused (ok 0), never an error.  System calls: poll, and
 * those of key_role_serve() below.  The fds stay open.
 */
int key_role_serve_links(const struct key_role_links *k);

/*
 * The key role's loop with only a TLS link: answer sign / rsa-decrypt requests on fd (a
 * blocking SOCK_SEQPACKET socketpair end) with creds' private key until
 * EOF or the peer is gone (ECONNRESET, EPIPE: returns 0), or a malformed
 * request or another I/O error (logs, returns 111: the link is dropped,
 * never a crash).  System calls: recvmsg, sendto, and write(2) for a log
 * line on stderr; no randomness (ECDSA signatures are RFC 6979, RSA
 * PKCS#1 v1.5 and the SSL decryption are deterministic).  creds must still hold the
 * private key (loaded by tls_creds_load(), never passed to
 * tls_creds_use_key_role()).  fd stays open: the caller closes it.
 */
int key_role_serve(int fd, struct tls_creds *creds);

/* The role's main, run in the child after fork(): serve the TLS link kfd
 * (-1: none; ignored without a TLS key) and the DKIM link dfd (-1: none)
 * with cfg's keys until one ends.  Returns the process's exit status. */
int key_role_main(struct config *cfg, int kfd, int dfd);

#endif
