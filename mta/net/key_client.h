/*
 * mta/net/key_client.h -- the smtp role's end of the key role's link: a
 * TLS signer (mta/net/tls.h struct tls_signer) that asks the key role
 * (mta/roles/key_role.h) over the link of mta/net/keymsg.h, so that the
 * smtp role never holds the private key.
 *
 * Synchronous: BearSSL's policy callbacks are, so a handshake waits for
 * the key role's reply, at most KEYROLE_TIMEOUT_MS.  The link breaks on a
 * reply whose type or id is not the one it waits for, on EOF, and when no
 * reply comes in time; every later request through it then fails at once
 * (the handshake fails with a BearSSL error) until
 * tls_creds_use_key_role() gives a new link.
 */
#ifndef MOAT_MTA_NET_KEY_CLIENT_H
#define MOAT_MTA_NET_KEY_CLIENT_H

struct tls_creds;

#define KEYROLE_TIMEOUT_MS 5000  /* the smtp role's wait for one reply */

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
int key_client_broken(const struct tls_creds *creds);

#endif
