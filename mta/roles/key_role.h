/*
 * mta/roles/key_role.h -- the key role: the only process that holds the
 * TLS private key; it signs and RSA-decrypts for the smtp role over a
 * socketpair (OpenSMTPD's `ca` process is the model).
 *
 * Owns: the private key (loaded by the supervisor before the fork).
 * Serves: its one smtp role, over a SOCK_SEQPACKET socketpair carrying the
 * messages of mta/net/keymsg.h, one request at a time.
 * Asks: nobody.  Never: opens a file or a network socket (sandbox: no
 * files, no network), or answers a request it cannot decode (the link is
 * dropped).
 */
#ifndef MOAT_MTA_ROLES_KEY_ROLE_H
#define MOAT_MTA_ROLES_KEY_ROLE_H

#include "mta/ops/loaded_config.h"

struct tls_creds;

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
int key_role_serve(int fd, struct tls_creds *creds);

/* The role's main, run in the child after fork(): serve kfd until EOF.
 * Returns the process's exit status. */
int key_role_main(struct config *cfg, int kfd);

#endif
