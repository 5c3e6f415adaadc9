/* mta/net/dane.c -- DANE for SMTP; see dane.h */
#include "mta/net/dane.h"

#include <stdlib.h>
#include <string.h>

#include <bearssl.h>

#define CHAIN_MAX 8
#define DN_MAX    4096
/* Days from 1 January of year 0 (BearSSL's epoch) to 1 January 1970. */
#define UNIX_EPOCH_DAYS 719528

const char *dane_status_name(enum dane_status st)
{
	switch (st) {
	case DANE_OK:           return "ok";
	case DANE_NO_USABLE:    return "no-usable-records";
	case DANE_NO_MATCH:     return "no-match";
	case DANE_TA_UNTRUSTED: return "ta-untrusted";
	case DANE_TA_NAME:      return "ta-name-mismatch";
	case DANE_TA_EXPIRED:   return "ta-expired";
	case DANE_BAD_CHAIN:    return "bad-chain";
	case DANE_PENDING:      return "pending";
	default:                return "?";
	}
}

int dane_usable(const struct dns_tlsa *r)
{
	if (r->usage != 2 && r->usage != 3)
		return 0;   /* PKIX-TA, PKIX-EE (RFC 7672 3.1.3), or unknown */
	if (r->selector > 1)
		return 0;
	switch (r->mtype) {
	case 0:  return r->len > 0;
	case 1:  return r->len == 32;   /* RFC 7671 4: a digest of the wrong size is unusable */
	case 2:  return r->len == 64;
	default: return 0;
	}
}

size_t dane_usable_count(const struct dns_tlsa_set *set)
{
	size_t n = set->dropped;

	for (size_t i = 0; i < set->n && i < DNS_TLSA_MAX; i++)
		n += (size_t)dane_usable(&set->r[i]);
	return n;
}

/* ---- the DER walk to the SubjectPublicKeyInfo ---- */

/*
 * One DER element at p[0..end): single-byte tag, definite length (short
 * form, or long form of 1 to 3 bytes: a certificate is far below 16 MiB).
 * *hdr receives the header's size and *clen the content's; -1 when it does
 * not fit.
 */
static int der_elem(const unsigned char *p, size_t end, unsigned *tag, size_t *hdr,
                    size_t *clen)
{
	size_t n, l = 0;

	if (end < 2 || (p[0] & 0x1f) == 0x1f)
		return -1;
	*tag = p[0];
	if (p[1] < 0x80) {
		n = 2;
		l = p[1];
	} else {
		size_t k = p[1] & 0x7fu;
		if (k == 0 || k > 3 || end < 2 + k)
			return -1;   /* indefinite, or absurdly long */
		for (size_t i = 0; i < k; i++)
			l = l << 8 | p[2 + i];
		n = 2 + k;
	}
	if (l > end - n)
		return -1;
	*hdr = n;
	*clen = l;
	return 0;
}

int dane_spki(const unsigned char *der, size_t len, const unsigned char **spki, size_t *spkilen)
{
	/* TBSCertificate's fields before the key: [0] version (optional),
	 * serialNumber, signature, issuer, validity, subject. */
	static const unsigned before[] = { 0x02, 0x30, 0x30, 0x30, 0x30 };
	unsigned tag;
	size_t hdr, clen, pos, end;

	if (der_elem(der, len, &tag, &hdr, &clen) != 0 || tag != 0x30 || hdr + clen != len)
		return -1;
	pos = hdr;                          /* into Certificate */
	if (der_elem(der + pos, len - pos, &tag, &hdr, &clen) != 0 || tag != 0x30)
		return -1;
	end = pos + hdr + clen;             /* the end of TBSCertificate */
	pos += hdr;
	if (der_elem(der + pos, end - pos, &tag, &hdr, &clen) != 0)
		return -1;
	if (tag == 0xa0)
		pos += hdr + clen;
	for (size_t i = 0; i < sizeof before / sizeof before[0]; i++) {
		if (der_elem(der + pos, end - pos, &tag, &hdr, &clen) != 0 || tag != before[i])
			return -1;
		pos += hdr + clen;
	}
	if (der_elem(der + pos, end - pos, &tag, &hdr, &clen) != 0 || tag != 0x30)
		return -1;
	*spki = der + pos;
	*spkilen = hdr + clen;
	return 0;
}

/* ---- matching ---- */

/* Does certificate der[0..len) match record r?  (r is usable.) */
static int cert_matches(const struct dns_tlsa *r, const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	size_t n = len;
	unsigned char h[64];

	if (r->toobig)
		return 0;
	if (r->selector == 1 && dane_spki(der, len, &p, &n) != 0)
		return 0;
	if (r->mtype == 0)
		return n == r->len && memcmp(p, r->data, n) == 0;
	if (r->mtype == 1) {
		br_sha256_context c;
		br_sha256_init(&c);
		br_sha256_update(&c, p, n);
		br_sha256_out(&c, h);
		return memcmp(h, r->data, 32) == 0;
	}
	br_sha512_context c;
	br_sha512_init(&c);
	br_sha512_update(&c, p, n);
	br_sha512_out(&c, h);
	return memcmp(h, r->data, 64) == 0;
}

/* The subject DN of the certificate being decoded. */
struct dn_buf {
	unsigned char p[DN_MAX];
	size_t len;
	int overflow;
};

static void dn_append(void *ctx, const void *buf, size_t len)
{
	struct dn_buf *d = ctx;

	if (len > sizeof d->p - d->len) {
		d->overflow = 1;
		return;
	}
	memcpy(d->p + d->len, buf, len);
	d->len += len;
}

/* The scratch space of one DANE-TA check (big: allocated). */
struct ta_work {
	br_x509_decoder_context dc;
	br_x509_minimal_context xm;
	struct dn_buf dn;
};

/* BearSSL's verdict to ours. */
static enum dane_status ta_error(unsigned err)
{
	switch (err) {
	case 0:                           return DANE_OK;
	case BR_ERR_X509_BAD_SERVER_NAME: return DANE_TA_NAME;
	case BR_ERR_X509_EXPIRED:         return DANE_TA_EXPIRED;
	default:                          return DANE_TA_UNTRUSTED;
	}
}

/*
 * The chain checked with certificate ta of it as the only trust anchor
 * (its subject and key, as a CA): the leaf must chain to it, be in its
 * dates and name host.  br_x509_minimal stops at the first certificate
 * the anchor issued, so the whole chain can be fed.
 */
static enum dane_status ta_check(struct ta_work *w, const struct dane_chain *chain, size_t ta,
                                 const char *host, int64_t now)
{
	const br_x509_pkey *pk;
	br_x509_trust_anchor anchor;
	const br_x509_class **xc = &w->xm.vtable;

	memset(&w->dn, 0, sizeof w->dn);
	br_x509_decoder_init(&w->dc, dn_append, &w->dn);
	br_x509_decoder_push(&w->dc, chain->der[ta], chain->len[ta]);
	if ((pk = br_x509_decoder_get_pkey(&w->dc)) == NULL || w->dn.overflow)
		return DANE_TA_UNTRUSTED;
	memset(&anchor, 0, sizeof anchor);
	anchor.dn.data = w->dn.p;
	anchor.dn.len = w->dn.len;
	anchor.flags = BR_X509_TA_CA;
	anchor.pkey = *pk;      /* points into w->dc, alive for this call */
	br_x509_minimal_init_full(&w->xm, &anchor, 1);
	if (now > 0)
		br_x509_minimal_set_time(&w->xm, (uint32_t)(now / 86400 + UNIX_EPOCH_DAYS),
		                         (uint32_t)(now % 86400));
	(*xc)->start_chain(xc, host);
	for (size_t i = 0; i < chain->n; i++) {
		(*xc)->start_cert(xc, (uint32_t)chain->len[i]);
		(*xc)->append(xc, chain->der[i], chain->len[i]);
		(*xc)->end_cert(xc);
	}
	return ta_error((*xc)->end_chain(xc));
}

/* Rank the failures, to report the most telling one: a DANE-TA record that
 * matched says more than one that did not. */
static int rank(enum dane_status st)
{
	return st == DANE_NO_MATCH ? 0 : st == DANE_TA_UNTRUSTED ? 1 : 2;
}

/* DANE-TA: each usable usage-2 record against each certificate. */
static enum dane_status ta_records(const struct dns_tlsa *r, size_t n,
                                   const struct dane_chain *chain, const char *host, int64_t now)
{
	enum dane_status best = DANE_NO_MATCH;
	struct ta_work *w = NULL;

	for (size_t i = 0; i < n; i++) {
		if (r[i].usage != 2 || !dane_usable(&r[i]))
			continue;
		for (size_t c = 0; c < chain->n; c++) {
			enum dane_status st;
			if (!cert_matches(&r[i], chain->der[c], chain->len[c]))
				continue;
			if (w == NULL && (w = malloc(sizeof *w)) == NULL)
				return DANE_TA_UNTRUSTED;  /* out of memory: fail closed */
			st = ta_check(w, chain, c, host, now);
			if (st == DANE_OK) {
				free(w);
				return DANE_OK;
			}
			if (rank(st) >= rank(best))
				best = st;
		}
	}
	free(w);
	return best;
}

enum dane_status dane_check(const struct dns_tlsa *r, size_t n, size_t dropped,
                            const struct dane_chain *chain, const char *host, int64_t now)
{
	size_t usable = dropped;

	if (n > DNS_TLSA_MAX)
		n = DNS_TLSA_MAX;
	for (size_t i = 0; i < n; i++)
		usable += (size_t)dane_usable(&r[i]);
	if (usable == 0)
		return DANE_NO_USABLE;
	if (chain->n == 0 || chain->n > CHAIN_MAX)
		return DANE_BAD_CHAIN;
	for (size_t i = 0; i < n; i++)
		if (r[i].usage == 3 && dane_usable(&r[i]) &&
		    cert_matches(&r[i], chain->der[0], chain->len[0]))
			return DANE_OK;     /* DANE-EE: nothing more to check (RFC 7672 3.1.1) */
	return ta_records(r, n, chain, host ? host : "", now);
}

/* ---- the BearSSL X.509 class ---- */

struct dane_x509 {
	const br_x509_class *vtable;       /* first: BearSSL's context pointer */
	struct dns_tlsa     *r;
	size_t               n, dropped;
	int64_t              now;
	char                 host[DNS_NAME_MAX + 1];
	unsigned char       *buf;          /* the chain's bytes, grown to DANE_CHAIN_BYTES */
	size_t               buflen, bufcap;
	size_t               off[CHAIN_MAX], len[CHAIN_MAX];
	size_t               ncerts;
	int                  overflow;     /* too many certificates or bytes */
	enum dane_status     status;
	br_x509_decoder_context leaf;      /* the leaf's key, for the handshake */
};

static struct dane_x509 *self(const br_x509_class **ctx)
{
	return (struct dane_x509 *)(void *)ctx;
}

static void x_start_chain(const br_x509_class **ctx, const char *server_name)
{
	struct dane_x509 *x = self(ctx);
	size_t l = server_name ? strlen(server_name) : 0;

	/* A renegotiation is refused (BR_OPT_NO_RENEGOTIATION), so one chain. */
	x->ncerts = x->buflen = 0;
	x->overflow = 0;
	x->status = DANE_PENDING;
	if (l > DNS_NAME_MAX)
		l = 0;
	memcpy(x->host, server_name ? server_name : "", l);
	x->host[l] = '\0';
}

static void x_start_cert(const br_x509_class **ctx, uint32_t length)
{
	struct dane_x509 *x = self(ctx);

	if (x->overflow || x->ncerts == CHAIN_MAX || length > DANE_CHAIN_BYTES - x->buflen) {
		x->overflow = 1;
		return;
	}
	if (x->buflen + length > x->bufcap) {
		size_t cap = x->bufcap ? x->bufcap : 8192;
		unsigned char *b;
		while (cap < x->buflen + length)
			cap *= 2;
		if (cap > DANE_CHAIN_BYTES)
			cap = DANE_CHAIN_BYTES;
		if ((b = realloc(x->buf, cap)) == NULL) {
			x->overflow = 1;
			return;
		}
		x->buf = b;
		x->bufcap = cap;
	}
	x->off[x->ncerts] = x->buflen;
	x->len[x->ncerts] = 0;
}

static void x_append(const br_x509_class **ctx, const unsigned char *buf, size_t len)
{
	struct dane_x509 *x = self(ctx);
	size_t *have;

	if (x->overflow)
		return;
	have = &x->len[x->ncerts];
	/* The engine sends no more than start_cert announced; check anyway. */
	if (len > x->bufcap - x->off[x->ncerts] - *have) {
		x->overflow = 1;
		return;
	}
	memcpy(x->buf + x->off[x->ncerts] + *have, buf, len);
	*have += len;
}

static void x_end_cert(const br_x509_class **ctx)
{
	struct dane_x509 *x = self(ctx);

	if (x->overflow)
		return;
	x->buflen += x->len[x->ncerts];
	x->ncerts++;
}

static unsigned x_end_chain(const br_x509_class **ctx)
{
	struct dane_x509 *x = self(ctx);
	struct dane_chain chain;

	memset(&chain, 0, sizeof chain);
	if (x->overflow || x->ncerts == 0) {
		x->status = DANE_BAD_CHAIN;
		return BR_ERR_X509_LIMIT_EXCEEDED;
	}
	for (size_t i = 0; i < x->ncerts; i++) {
		chain.der[i] = x->buf + x->off[i];
		chain.len[i] = x->len[i];
	}
	chain.n = x->ncerts;
	br_x509_decoder_init(&x->leaf, NULL, NULL);
	br_x509_decoder_push(&x->leaf, chain.der[0], chain.len[0]);
	if (br_x509_decoder_get_pkey(&x->leaf) == NULL) {
		x->status = DANE_BAD_CHAIN;
		return BR_ERR_X509_INVALID_VALUE;
	}
	x->status = dane_check(x->r, x->n, x->dropped, &chain, x->host, x->now);
	switch (x->status) {
	case DANE_OK:         return 0;
	case DANE_TA_NAME:    return BR_ERR_X509_BAD_SERVER_NAME;
	case DANE_TA_EXPIRED: return BR_ERR_X509_EXPIRED;
	default:              return BR_ERR_X509_NOT_TRUSTED;
	}
}

static const br_x509_pkey *x_get_pkey(const br_x509_class *const *ctx, unsigned *usages)
{
	/* The class takes a const context; the decoder's getter does not. */
	struct dane_x509 *x = (struct dane_x509 *)(uintptr_t)ctx;

	if (usages != NULL)
		*usages = BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN;
	return x->status == DANE_OK ? br_x509_decoder_get_pkey(&x->leaf) : NULL;
}

static const br_x509_class dane_class = {
	sizeof(struct dane_x509), x_start_chain, x_start_cert, x_append, x_end_cert,
	x_end_chain, x_get_pkey
};

struct dane_x509 *dane_x509_new(const struct dns_tlsa *r, size_t n, size_t dropped)
{
	struct dane_x509 *x = calloc(1, sizeof *x);

	if (x == NULL)
		return NULL;
	if (n > DNS_TLSA_MAX)
		n = DNS_TLSA_MAX;
	if (n > 0 && (x->r = malloc(n * sizeof *r)) == NULL) {
		free(x);
		return NULL;
	}
	if (n > 0)
		memcpy(x->r, r, n * sizeof *r);
	x->n = n;
	x->dropped = dropped;
	x->vtable = &dane_class;
	x->status = DANE_PENDING;
	return x;
}

void dane_x509_free(struct dane_x509 *x)
{
	if (x == NULL)
		return;
	free(x->r);
	free(x->buf);
	free(x);
}

void *dane_x509_class(struct dane_x509 *x)
{
	return &x->vtable;
}

void dane_x509_set_time(struct dane_x509 *x, int64_t now)
{
	x->now = now;
}

enum dane_status dane_x509_status(const struct dane_x509 *x)
{
	return x->status;
}
