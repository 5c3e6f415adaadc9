/*
 * mta/net/dane.h -- DANE for SMTP (RFC 7672, RFC 7671): is the certificate
 * chain an MX host presents what its TLSA records (policy/dns.h) say?
 * BearSSL does the hashing (br_sha256, br_sha512), the decoding
 * (br_x509_decoder) and the chain building (br_x509_minimal); nothing
 * here is cryptography of its own.
 *
 * Which records count (RFC 7672 3.1):
 *   - usage 3, DANE-EE: the leaf certificate (selector 0) or its
 *     SubjectPublicKeyInfo (selector 1) matches the record's data exactly
 *     (matching type 0), by SHA-256 (1) or by SHA-512 (2).  Then nothing
 *     else is checked: no name, no dates, no issuer (RFC 7672 3.1.1).
 *   - usage 2, DANE-TA: some certificate of the chain the server sent
 *     matches the same way; it becomes the only trust anchor, and the
 *     leaf must chain to it, be within its dates, and name the host
 *     (RFC 7672 3.1.2, 3.2.2).  A trust anchor the server does not send
 *     is not found (publish "2 0 x" or "2 1 x" of a certificate the
 *     server sends, as RFC 7671 5.2.2 asks).
 *   - usages 0 and 1 (PKIX-TA, PKIX-EE), other selectors or matching
 *     types, and a digest of the wrong length are unusable (RFC 7672
 *     3.1.3, RFC 7671 4): they are ignored.
 * With no usable record DANE does not apply (DANE_NO_USABLE; the caller
 * falls back to MTA-STS or opportunistic TLS).  With usable records and
 * none that matches, the server fails (DANE_NO_MATCH).  Two kinds of
 * record fail closed, never open: data too long to keep
 * (dns_tlsa.toobig), which is usable and matches nothing, and records the
 * DNS reader dropped past its cap, which count as usable.
 *
 * The caller is trusted to pass only records from a validated answer (the
 * AD bit of a lookup through `dns-dnssec trusted`): this module cannot
 * tell.
 */
#ifndef MOAT_MTA_NET_DANE_H
#define MOAT_MTA_NET_DANE_H

#include <stddef.h>
#include <stdint.h>

#include "policy/dns.h"

#define DANE_CHAIN_BYTES (64 * 1024)   /* the chain a server may send, all certificates */

enum dane_status {
	DANE_OK = 0,          /* a usable record matched (DANE-TA: and chain, dates, name) */
	DANE_NO_USABLE,       /* no usable record: DANE does not apply                      */
	DANE_NO_MATCH,        /* usable records, none matches the chain                     */
	DANE_TA_UNTRUSTED,    /* a DANE-TA record matched, the leaf does not chain to it    */
	DANE_TA_NAME,         /* ... chains, but does not name the host                     */
	DANE_TA_EXPIRED,      /* ... chains, but a certificate is out of its dates          */
	DANE_BAD_CHAIN,       /* no certificate, one that does not decode, or too many bytes */
	DANE_PENDING          /* (tls_dane_status) the server's chain is not checked yet    */
};

/* "ok", "no-usable-records", "no-match", "ta-untrusted", "ta-name-mismatch",
 * "ta-expired", "bad-chain", "pending": for logs. */
const char *dane_status_name(enum dane_status st);

/* Is r usable by RFC 7672 (see above)? 1 or 0. */
int dane_usable(const struct dns_tlsa *r);

/* How many of set's records count as usable: the usable ones kept, plus
 * those the DNS reader dropped (not known, so counted: fail closed).
 * DANE applies when this is not 0. */
size_t dane_usable_count(const struct dns_tlsa_set *set);

/*
 * The SubjectPublicKeyInfo of the DER certificate der[0..len), as the
 * DER bytes of that element (its tag and length included): *spki points
 * into der.  0, or -1 if der is not a certificate this can walk
 * (Certificate, TBSCertificate, and the six fields before the key, each
 * a DER element inside its parent, definite lengths, the whole exactly
 * len bytes).
 */
int dane_spki(const unsigned char *der, size_t len, const unsigned char **spki, size_t *spkilen);

/* A chain as the server sent it: leaf first. */
struct dane_chain {
	const unsigned char *der[8];
	size_t               len[8];
	size_t               n;
};

/*
 * The decision for the records r[0..n) (and dropped, as in struct
 * dns_tlsa_set) on chain, for host (the name DANE-TA checks: the TLSA
 * base domain, RFC 7672 3.2.2).  now: Unix seconds for DANE-TA's date
 * checks, or 0 for the system clock.
 */
enum dane_status dane_check(const struct dns_tlsa *r, size_t n, size_t dropped,
                            const struct dane_chain *chain, const char *host, int64_t now);

/*
 * The BearSSL certificate check of a DANE connection (a br_x509_class):
 * it keeps the chain as it arrives (at most 8 certificates and
 * DANE_CHAIN_BYTES), then dane_check() decides and the handshake goes on
 * only on DANE_OK.  dane_x509_new() copies the records; NULL when memory
 * is short.  mta/net/tls.c's tls_client_new_dane() uses it.
 */
struct dane_x509;
struct dane_x509 *dane_x509_new(const struct dns_tlsa *r, size_t n, size_t dropped);
void dane_x509_free(struct dane_x509 *x);
/* The class to hand to br_ssl_engine_set_x509(): a const br_x509_class **. */
void *dane_x509_class(struct dane_x509 *x);
/* Check dates against now (Unix seconds) instead of the system clock. */
void dane_x509_set_time(struct dane_x509 *x, int64_t now);
/* DANE_PENDING until the server's chain is checked, then the verdict. */
enum dane_status dane_x509_status(const struct dane_x509 *x);

#endif
