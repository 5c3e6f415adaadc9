/* mta/net/tls.c -- BearSSL credentials and pump; see tls.h */
#include "mta/net/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <bearssl.h>

#include "policy/pem.h"

#define KEY_DER_MAX   (16 * 1024)
#define CERT_DER_MAX  (16 * 1024)
/* Record buffers: a full input record (the peer chooses its size) and a
 * smaller output buffer (we choose ours: replies are short). */
#define IBUF_LEN BR_SSL_BUFSIZE_INPUT
#define OBUF_LEN (4096 + 85)

struct tls_creds {
	unsigned             refs;
	br_x509_certificate  chain[TLS_CHAIN_MAX];
	size_t               chain_len;
	int                  key_type;      /* BR_KEYTYPE_RSA or BR_KEYTYPE_EC */
	br_rsa_private_key   rsa;
	br_ec_private_key    ec;
	unsigned char       *keybuf;        /* the key's integers, owned; NULL once wiped */
	size_t               keybuf_len;
	size_t               modlen;        /* RSA modulus bytes, 0 for EC */
	const struct tls_signer *signer;
	void                *signer_ctx;
	void               (*signer_free)(void *);
	char                 desc[32];
};

/* The policy class BearSSL calls to choose a suite and use the key. */
struct tls_policy {
	const br_ssl_server_policy_class *vtable;
	struct tls_creds *creds;
};

/* The certificate check of `tls may`/`tls require`: the leaf's key is
 * taken as it is (encryption without authentication). */
struct x509_any {
	const br_x509_class    *vtable;
	br_x509_decoder_context dc;
	int                     leaf;       /* the first certificate is being read */
};

struct tls {
	br_ssl_engine_context *eng;         /* &server.eng or &client.eng */
	union {
		br_ssl_server_context server;
		struct {
			br_ssl_client_context   cc;
			br_x509_minimal_context xm;
			struct x509_any         any;
		} client;
	} ctx;
	struct tls_policy pol;
	struct tls_creds *creds;
	struct dane_x509 *dane;             /* tls_client_new_dane(): the chain's check */
	int               opened;           /* handshake completed once */
	unsigned char     offered[32];      /* client: the session ID offered to resume */
	size_t            offered_len;      /* 0: a full handshake was asked for */
	unsigned char     ibuf[IBUF_LEN];
	unsigned char     obuf[OBUF_LEN];
};

int tls_entropy(void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- the in-process signer ---------------------------------------- */

static const br_hash_class *hash_class(unsigned id)
{
	switch (id) {
	case br_sha1_ID:   return &br_sha1_vtable;
	case br_sha224_ID: return &br_sha224_vtable;
	case br_sha256_ID: return &br_sha256_vtable;
	case br_sha384_ID: return &br_sha384_vtable;
	case br_sha512_ID: return &br_sha512_vtable;
	default:           return NULL;
	}
}

/* DER of the hash OIDs PKCS#1 v1.5 signatures name (BearSSL's form: length first). */
static const unsigned char *hash_oid(unsigned id)
{
	static const unsigned char sha1[] = { 0x05, 0x2B, 0x0E, 0x03, 0x02, 0x1A };
	static const unsigned char sha224[] = { 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04 };
	static const unsigned char sha256[] = { 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01 };
	static const unsigned char sha384[] = { 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02 };
	static const unsigned char sha512[] = { 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03 };

	switch (id) {
	case br_sha1_ID:   return sha1;
	case br_sha224_ID: return sha224;
	case br_sha256_ID: return sha256;
	case br_sha384_ID: return sha384;
	case br_sha512_ID: return sha512;
	default:           return NULL;
	}
}

static size_t local_sign(void *ctx, unsigned hash_id, const unsigned char *hv, size_t hv_len,
                         unsigned char *sig, size_t cap)
{
	struct tls_creds *c = ctx;

	if (c->key_type == BR_KEYTYPE_RSA) {
		size_t n = (c->rsa.n_bitlen + 7) >> 3;
		const unsigned char *oid = hash_id == 0 ? NULL : hash_oid(hash_id);

		if (cap < n || (hash_id != 0 && oid == NULL))
			return 0;
		return br_rsa_pkcs1_sign_get_default()(oid, hv, hv_len, &c->rsa, sig) ? n : 0;
	}
	const br_hash_class *hc = hash_class(hash_id);
	if (hc == NULL || cap < 139) /* 139: the longest DER ECDSA signature (P-521) */
		return 0;
	return br_ecdsa_sign_asn1_get_default()(br_ec_get_default(), hc, hv, &c->ec, sig);
}

static uint32_t local_rsa_decrypt(void *ctx, unsigned char *data, size_t len)
{
	struct tls_creds *c = ctx;

	return br_rsa_ssl_decrypt(br_rsa_private_get_default(), &c->rsa, data, len);
}

static const struct tls_signer local_signer = { local_sign, local_rsa_decrypt };

/* ---- loading credentials ------------------------------------------- */

/* The private key out of memory: explicit_bzero, as a plain memset
 * before free() may be optimised away. */
static void wipe_key(struct tls_creds *c)
{
	if (c->keybuf != NULL) {
		explicit_bzero(c->keybuf, c->keybuf_len);
		free(c->keybuf);
	}
	c->keybuf = NULL;
	c->keybuf_len = 0;
	explicit_bzero(&c->rsa, sizeof c->rsa);
	explicit_bzero(&c->ec, sizeof c->ec);
}

static void creds_free(struct tls_creds *c)
{
	if (c == NULL)
		return;
	for (size_t k = 0; k < c->chain_len; k++)
		free(c->chain[k].data);
	wipe_key(c);
	if (c->signer_free != NULL)
		c->signer_free(c->signer_ctx);
	explicit_bzero(c, sizeof *c);
	free(c);
}

const struct tls_signer *tls_creds_signer(const struct tls_creds *c, void **ctx)
{
	*ctx = c->signer_ctx;
	return c->signer;
}

size_t tls_creds_modlen(const struct tls_creds *c)
{
	return c->modlen;
}

void tls_creds_set_signer(struct tls_creds *c, const struct tls_signer *s, void *ctx,
                          void (*ctx_free)(void *))
{
	if (c->signer_free != NULL && c->signer_ctx != ctx)
		c->signer_free(c->signer_ctx);
	c->signer = s;
	c->signer_ctx = ctx;
	c->signer_free = ctx_free;
	wipe_key(c);
}

void tls_creds_ref(struct tls_creds *c)
{
	c->refs++;
}

void tls_creds_unref(struct tls_creds *c)
{
	if (c != NULL && --c->refs == 0)
		creds_free(c);
}

const char *tls_creds_describe(const struct tls_creds *c)
{
	return c->desc;
}

static int load_chain(struct tls_creds *c, const char *pem, size_t len, const char *name,
                      char *err, size_t errcap)
{
	unsigned char *der = malloc(CERT_DER_MAX);
	size_t pos = 0;
	struct pem_block b;
	const char *why;
	enum pem_result r;

	if (der == NULL) {
		snprintf(err, errcap, "%s: out of memory", name);
		return -1;
	}
	while ((r = pem_next(pem, len, &pos, &b, der, CERT_DER_MAX, &why)) == PEM_OK) {
		if (strcmp(b.label, "CERTIFICATE") != 0)
			continue;
		if (c->chain_len == TLS_CHAIN_MAX) {
			snprintf(err, errcap, "%s: more than %d certificates", name, TLS_CHAIN_MAX);
			free(der);
			return -1;
		}
		br_x509_certificate *x = &c->chain[c->chain_len];
		x->data = malloc(b.derlen);
		if (x->data == NULL) {
			snprintf(err, errcap, "%s: out of memory", name);
			free(der);
			return -1;
		}
		memcpy(x->data, der, b.derlen);
		x->data_len = b.derlen;
		c->chain_len++;
	}
	free(der);
	if (r != PEM_END) {
		snprintf(err, errcap, "%s: bad PEM: %s", name, why);
		return -1;
	}
	if (c->chain_len == 0) {
		snprintf(err, errcap, "%s: no CERTIFICATE block", name);
		return -1;
	}
	return 0;
}

/* Copy the decoded key's integers into one buffer the creds own. */
static int keep_key(struct tls_creds *c, const br_skey_decoder_context *kd)
{
	unsigned char *p;

	if (c->key_type == BR_KEYTYPE_RSA) {
		const br_rsa_private_key *k = br_skey_decoder_get_rsa(kd);

		if (k == NULL)
			return -1;
		c->keybuf_len = k->plen + k->qlen + k->dplen + k->dqlen + k->iqlen;
		if ((c->keybuf = p = malloc(c->keybuf_len)) == NULL)
			return -1;
		c->rsa.n_bitlen = k->n_bitlen;
#define TAKE(f) do { memcpy(p, k->f, k->f##len); c->rsa.f = p; c->rsa.f##len = k->f##len; \
		p += k->f##len; } while (0)
		TAKE(p);
		TAKE(q);
		TAKE(dp);
		TAKE(dq);
		TAKE(iq);
#undef TAKE
	} else {
		const br_ec_private_key *k = br_skey_decoder_get_ec(kd);

		if (k == NULL)
			return -1;
		c->keybuf_len = k->xlen;
		if ((c->keybuf = malloc(c->keybuf_len)) == NULL)
			return -1;
		memcpy(c->keybuf, k->x, k->xlen);
		c->ec.curve = k->curve;
		c->ec.x = c->keybuf;
		c->ec.xlen = k->xlen;
	}
	return 0;
}

static int load_key(struct tls_creds *c, const char *pem, size_t len, const char *name,
                    char *err, size_t errcap)
{
	unsigned char *der = malloc(KEY_DER_MAX);
	br_skey_decoder_context *kd = malloc(sizeof *kd);
	size_t pos = 0, nkeys = 0;
	struct pem_block b;
	const char *why;
	enum pem_result r;
	int rc = -1;

	if (der == NULL || kd == NULL) {
		snprintf(err, errcap, "%s: out of memory", name);
		goto out;
	}
	while ((r = pem_next(pem, len, &pos, &b, der, KEY_DER_MAX, &why)) == PEM_OK) {
		if (strcmp(b.label, "EC PARAMETERS") == 0)
			continue; /* openssl ecparam -genkey writes these first */
		if (strcmp(b.label, "RSA PRIVATE KEY") != 0 && strcmp(b.label, "EC PRIVATE KEY") != 0 &&
		    strcmp(b.label, "PRIVATE KEY") != 0) {
			snprintf(err, errcap, "%s: line %zu: unexpected %s block (want an unencrypted "
			         "private key)", name, b.line, b.label);
			goto out;
		}
		if (++nkeys > 1) {
			snprintf(err, errcap, "%s: more than one private key", name);
			goto out;
		}
		br_skey_decoder_init(kd);
		br_skey_decoder_push(kd, der, b.derlen);
		if (br_skey_decoder_last_error(kd) != 0) {
			snprintf(err, errcap, "%s: line %zu: cannot decode the key (error %d)", name,
			         b.line, br_skey_decoder_last_error(kd));
			goto out;
		}
		c->key_type = br_skey_decoder_key_type(kd);
		if (keep_key(c, kd) != 0) {
			snprintf(err, errcap, "%s: out of memory", name);
			goto out;
		}
	}
	if (r != PEM_END) {
		snprintf(err, errcap, "%s: bad PEM: %s", name, why);
		goto out;
	}
	if (nkeys == 0) {
		snprintf(err, errcap, "%s: no private key block", name);
		goto out;
	}
	rc = 0;
out:
	/* explicit_bzero: a memset before free() may be optimised away, and a
	 * fork of this process must not find key bytes in freed memory. */
	if (der != NULL) {
		explicit_bzero(der, KEY_DER_MAX);
		free(der);
	}
	if (kd != NULL) {
		explicit_bzero(kd, sizeof *kd);
		free(kd);
	}
	return rc;
}

static int same_uint(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen)
{
	while (alen > 0 && *a == 0) {
		a++;
		alen--;
	}
	while (blen > 0 && *b == 0) {
		b++;
		blen--;
	}
	return alen == blen && memcmp(a, b, alen) == 0;
}

static const char *curve_name(int curve)
{
	switch (curve) {
	case BR_EC_secp256r1: return "P256";
	case BR_EC_secp384r1: return "P384";
	case BR_EC_secp521r1: return "P521";
	default:              return "other";
	}
}

/* Does the leaf certificate carry the public half of our key? */
static int key_matches_leaf(struct tls_creds *c, const char *cert_name, const char *key_name,
                            char *err, size_t errcap)
{
	br_x509_decoder_context *dc = malloc(sizeof *dc);
	const br_x509_pkey *pk;
	int ok = 0;

	if (dc == NULL) {
		snprintf(err, errcap, "%s: out of memory", cert_name);
		return -1;
	}
	br_x509_decoder_init(dc, NULL, NULL);
	br_x509_decoder_push(dc, c->chain[0].data, c->chain[0].data_len);
	pk = br_x509_decoder_get_pkey(dc);
	if (pk == NULL) {
		snprintf(err, errcap, "%s: cannot decode the first certificate (error %d)", cert_name,
		         br_x509_decoder_last_error(dc));
		free(dc);
		return -1;
	}
	if (pk->key_type == BR_KEYTYPE_RSA && c->key_type == BR_KEYTYPE_RSA) {
		unsigned char n[512];
		size_t nlen = br_rsa_compute_modulus_get_default()(NULL, &c->rsa);

		/* The modulus p*q names the key (br_rsa_compute_pubexp() gives 0
		 * for some keys openssl makes, so e is not compared). */
		if (nlen > 0 && nlen <= sizeof n && br_rsa_compute_modulus_get_default()(n, &c->rsa) &&
		    same_uint(n, nlen, pk->key.rsa.n, pk->key.rsa.nlen))
			ok = 1;
		snprintf(c->desc, sizeof c->desc, "RSA-%u", (unsigned)c->rsa.n_bitlen);
	} else if (pk->key_type == BR_KEYTYPE_EC && c->key_type == BR_KEYTYPE_EC) {
		unsigned char q[BR_EC_KBUF_PUB_MAX_SIZE];
		br_ec_public_key pub;

		if (br_ec_compute_pub(br_ec_get_default(), &pub, q, &c->ec) > 0 &&
		    pub.curve == pk->key.ec.curve && pub.qlen == pk->key.ec.qlen &&
		    memcmp(pub.q, pk->key.ec.q, pub.qlen) == 0)
			ok = 1;
		snprintf(c->desc, sizeof c->desc, "EC-%s", curve_name(c->ec.curve));
	}
	free(dc);
	if (!ok) {
		snprintf(err, errcap, "%s: the key does not match the first certificate of %s",
		         key_name, cert_name);
		return -1;
	}
	return 0;
}

struct tls_creds *tls_creds_load(const char *cert, size_t certlen, const char *cert_name,
                                 const char *key, size_t keylen, const char *key_name,
                                 char *err, size_t errcap)
{
	struct tls_creds *c = calloc(1, sizeof *c);

	if (c == NULL) {
		snprintf(err, errcap, "%s: out of memory", cert_name);
		return NULL;
	}
	c->refs = 1;
	if (load_chain(c, cert, certlen, cert_name, err, errcap) != 0 ||
	    load_key(c, key, keylen, key_name, err, errcap) != 0 ||
	    key_matches_leaf(c, cert_name, key_name, err, errcap) != 0) {
		creds_free(c);
		return NULL;
	}
	if (c->key_type == BR_KEYTYPE_EC && c->ec.curve != BR_EC_secp256r1 &&
	    c->ec.curve != BR_EC_secp384r1 && c->ec.curve != BR_EC_secp521r1) {
		snprintf(err, errcap, "%s: unsupported curve (use P-256, P-384 or P-521)", key_name);
		creds_free(c);
		return NULL;
	}
	if (c->key_type == BR_KEYTYPE_RSA)
		c->modlen = (c->rsa.n_bitlen + 7) >> 3;
	c->signer = &local_signer;
	c->signer_ctx = c;
	return c;
}

/* ---- the policy class: choose a suite, use the key ------------------- */

/* Our preferred hash among those the client offers (bit i: hash id i). */
static unsigned pick_hash(unsigned bits)
{
	static const unsigned pref[] = { br_sha256_ID, br_sha384_ID, br_sha512_ID, br_sha224_ID,
	                                 br_sha1_ID };

	for (size_t k = 0; k < sizeof pref / sizeof pref[0]; k++)
		if (bits & (1u << pref[k]))
			return pref[k];
	return 0;
}

static int pol_choose(const br_ssl_server_policy_class **pctx, const br_ssl_server_context *cc,
                      br_ssl_server_choices *choices)
{
	const struct tls_policy *pol = (const struct tls_policy *)(const void *)pctx;
	const struct tls_creds *c = pol->creds;
	const br_suite_translated *st;
	size_t n;
	int tls12 = br_ssl_engine_get_version(&cc->eng) >= BR_TLS12;
	uint32_t hashes = br_ssl_server_get_client_hashes(cc);
	unsigned h;

	st = br_ssl_server_get_client_suites(cc, &n);
	choices->chain = c->chain;
	choices->chain_len = c->chain_len;
	/* With BR_OPT_ENFORCE_SERVER_PREFERENCES, st is in our order. */
	for (size_t k = 0; k < n; k++) {
		unsigned kx = st[k][1] >> 12;

		if (c->key_type == BR_KEYTYPE_RSA && kx == BR_SSLKEYX_ECDHE_RSA) {
			h = tls12 ? pick_hash(hashes & 0xFF) : 0;
			if (tls12 && h == 0)
				continue;
			choices->cipher_suite = st[k][0];
			choices->algo_id = 0xFF00 + h;
			return 1;
		}
		if (c->key_type == BR_KEYTYPE_RSA && kx == BR_SSLKEYX_RSA) {
			choices->cipher_suite = st[k][0];
			return 1;
		}
		if (c->key_type == BR_KEYTYPE_EC && kx == BR_SSLKEYX_ECDHE_ECDSA) {
			h = tls12 ? pick_hash((hashes >> 8) & 0xFF) : br_sha1_ID;
			if (h == 0)
				continue;
			choices->cipher_suite = st[k][0];
			choices->algo_id = 0xFF00 + h;
			return 1;
		}
	}
	return 0;
}

static uint32_t pol_do_keyx(const br_ssl_server_policy_class **pctx, unsigned char *data,
                            size_t *len)
{
	const struct tls_policy *pol = (const struct tls_policy *)(const void *)pctx;
	const struct tls_creds *c = pol->creds;

	if (c->signer->rsa_decrypt == NULL)
		return 0;
	return c->signer->rsa_decrypt(c->signer_ctx, data, *len);
}

static size_t pol_do_sign(const br_ssl_server_policy_class **pctx, unsigned algo_id,
                          unsigned char *data, size_t hv_len, size_t len)
{
	const struct tls_policy *pol = (const struct tls_policy *)(const void *)pctx;
	const struct tls_creds *c = pol->creds;
	unsigned char hv[64];

	if (hv_len > sizeof hv)
		return 0;
	memcpy(hv, data, hv_len);
	return c->signer->sign(c->signer_ctx, algo_id & 0xFF, hv, hv_len, data, len);
}

static const br_ssl_server_policy_class policy_class = {
	sizeof(struct tls_policy), pol_choose, pol_do_keyx, pol_do_sign
};

/* ---- connections ------------------------------------------------------ */

/* Server preference order; pol_choose() skips those our key cannot do.
 * The first SUITES_DEFAULT are the default policy (ECDHE + AEAD); a
 * tls-legacy listener takes them all. */
#define SUITES_DEFAULT 6
static const uint16_t suites[] = {
	BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	/* legacy only */
	BR_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
	BR_TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
	BR_TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384,
	BR_TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384,
	BR_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	BR_TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	BR_TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	BR_TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	BR_TLS_RSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_RSA_WITH_AES_256_GCM_SHA384,
	BR_TLS_RSA_WITH_AES_128_CBC_SHA256,
	BR_TLS_RSA_WITH_AES_256_CBC_SHA256,
	BR_TLS_RSA_WITH_AES_128_CBC_SHA,
	BR_TLS_RSA_WITH_AES_256_CBC_SHA,
};

static const br_ssl_session_cache_class **server_cache(void);

struct tls *tls_server_new(struct tls_creds *creds, unsigned flags)
{
	struct tls *t = calloc(1, sizeof *t);
	br_ssl_server_context *sc;
	br_ssl_engine_context *eng;
	unsigned char seed[32];
	int legacy = (flags & TLS_LEGACY) != 0;

	if (t == NULL)
		return NULL;
	sc = &t->ctx.server;
	eng = &sc->eng;
	t->eng = eng;
	br_ssl_server_zero(sc);
	br_ssl_engine_set_versions(eng, legacy ? BR_TLS10 : BR_TLS12, BR_TLS12);
	br_ssl_engine_set_suites(eng, suites, legacy ? sizeof suites / sizeof suites[0] : SUITES_DEFAULT);
	br_ssl_engine_set_default_ec(eng);
	br_ssl_engine_set_hash(eng, br_md5_ID, &br_md5_vtable);
	br_ssl_engine_set_hash(eng, br_sha1_ID, &br_sha1_vtable);
	br_ssl_engine_set_hash(eng, br_sha224_ID, &br_sha224_vtable);
	br_ssl_engine_set_hash(eng, br_sha256_ID, &br_sha256_vtable);
	br_ssl_engine_set_hash(eng, br_sha384_ID, &br_sha384_vtable);
	br_ssl_engine_set_hash(eng, br_sha512_ID, &br_sha512_vtable);
	br_ssl_engine_set_prf10(eng, &br_tls10_prf);
	br_ssl_engine_set_prf_sha256(eng, &br_tls12_sha256_prf);
	br_ssl_engine_set_prf_sha384(eng, &br_tls12_sha384_prf);
	br_ssl_engine_set_default_aes_gcm(eng);
	br_ssl_engine_set_default_chapol(eng);
	if (legacy)
		br_ssl_engine_set_default_aes_cbc(eng);
	br_ssl_engine_add_flags(eng, BR_OPT_ENFORCE_SERVER_PREFERENCES | BR_OPT_NO_RENEGOTIATION);
	t->pol.vtable = &policy_class;
	t->pol.creds = creds;
	br_ssl_server_set_policy(sc, &t->pol.vtable);
	br_ssl_engine_set_buffers_bidi(eng, t->ibuf, sizeof t->ibuf, t->obuf, sizeof t->obuf);
	/* Seed from the kernel ourselves: works in a chroot, with static musl. */
	if (tls_entropy(seed, sizeof seed) != 0) {
		free(t);
		return NULL;
	}
	br_ssl_engine_inject_entropy(eng, seed, sizeof seed);
	/* Seeded: BearSSL's own OS seeder would open /dev/urandom on a CPU
	 * without RDRAND (qemu's TCG), which the sandboxed roles may not. */
	eng->rng_os_rand_done = 1;
	explicit_bzero(seed, sizeof seed);
	if (!br_ssl_server_reset(sc)) {
		free(t);
		return NULL;
	}
	br_ssl_server_set_cache(sc, server_cache());
	tls_creds_ref(creds);
	t->creds = creds;
	return t;
}

/* ---- session resumption ---- */

/* The server side's cache of sessions to resume (RFC 5246 7.4.1.2), one
 * per process, least recently used first out: a client that comes back
 * skips the key exchange (and the key role's signature). */
#define SERVER_CACHE_BYTES (256 * 1024)   /* about 2,500 sessions */
static const br_ssl_session_cache_class **server_cache(void)
{
	static unsigned char store[SERVER_CACHE_BYTES];
	static br_ssl_session_cache_lru lru;
	static int ready;

	if (!ready) {
		br_ssl_session_cache_lru_init(&lru, store, sizeof store);
		ready = 1;
	}
	return &lru.vtable;
}

_Static_assert(sizeof(br_ssl_session_parameters) <= sizeof(struct tls_session),
               "struct tls_session holds BearSSL's session parameters");

int tls_session_get(const struct tls *t, struct tls_session *s)
{
	br_ssl_session_parameters p;

	memset(s, 0, sizeof *s);
	if (!t->opened)
		return 0;
	br_ssl_engine_get_session_parameters(t->eng, &p);
	if (p.session_id_len == 0)
		return 0;
	memcpy(s->b, &p, sizeof p);
	explicit_bzero(&p, sizeof p);
	return 1;
}

int tls_client_resume(struct tls *t, const char *server_name, const struct tls_session *s)
{
	br_ssl_session_parameters p;

	memcpy(&p, s->b, sizeof p);
	if (p.session_id_len == 0 || p.session_id_len > sizeof t->offered)
		return -1;
	br_ssl_engine_set_session_parameters(t->eng, &p);
	memcpy(t->offered, p.session_id, p.session_id_len);
	t->offered_len = p.session_id_len;
	explicit_bzero(&p, sizeof p);
	return br_ssl_client_reset(&t->ctx.client.cc,
	                           server_name && server_name[0] ? server_name : NULL, 1) ? 0 : -1;
}

int tls_resumed(const struct tls *t)
{
	br_ssl_session_parameters p;
	int same;

	if (!t->opened || t->offered_len == 0)
		return 0;
	br_ssl_engine_get_session_parameters(t->eng, &p);
	same = p.session_id_len == t->offered_len &&
	       memcmp(p.session_id, t->offered, t->offered_len) == 0;
	explicit_bzero(&p, sizeof p);
	return same;
}

/* ---- the client side ---- */

struct tls_anchors {
	br_x509_trust_anchor *ta;
	size_t                n;
};

static void any_start_chain(const br_x509_class **ctx, const char *server_name)
{
	struct x509_any *x = (struct x509_any *)(void *)ctx;

	(void)server_name;
	br_x509_decoder_init(&x->dc, NULL, NULL);
	x->leaf = 1;
}

static void any_start_cert(const br_x509_class **ctx, uint32_t length)
{
	(void)ctx;
	(void)length;
}

static void any_append(const br_x509_class **ctx, const unsigned char *buf, size_t len)
{
	struct x509_any *x = (struct x509_any *)(void *)ctx;

	if (x->leaf)
		br_x509_decoder_push(&x->dc, buf, len);
}

static void any_end_cert(const br_x509_class **ctx)
{
	((struct x509_any *)(void *)ctx)->leaf = 0;
}

static unsigned any_end_chain(const br_x509_class **ctx)
{
	struct x509_any *x = (struct x509_any *)(void *)ctx;

	if (br_x509_decoder_get_pkey(&x->dc) != NULL)
		return 0;
	return br_x509_decoder_last_error(&x->dc) ? (unsigned)br_x509_decoder_last_error(&x->dc)
	                                          : BR_ERR_X509_EMPTY_CHAIN;
}

static const br_x509_pkey *any_get_pkey(const br_x509_class *const *ctx, unsigned *usages)
{
	/* The class takes a const context; the decoder's getter does not. */
	struct x509_any *x = (struct x509_any *)(uintptr_t)ctx;

	if (usages != NULL)
		*usages = BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN;
	return br_x509_decoder_get_pkey(&x->dc);
}

static const br_x509_class any_class = {
	sizeof(struct x509_any), any_start_chain, any_start_cert, any_append, any_end_cert,
	any_end_chain, any_get_pkey
};

/* The DN of the certificate being decoded, collected into a buffer. */
struct dn_buf {
	unsigned char *p;
	size_t len, cap;
	int overflow;
};

static void dn_append(void *ctx, const void *buf, size_t len)
{
	struct dn_buf *d = ctx;

	if (d->len + len > d->cap) {
		d->overflow = 1;
		return;
	}
	memcpy(d->p + d->len, buf, len);
	d->len += len;
}

static void *dup_bytes(const void *p, size_t n)
{
	void *q = malloc(n ? n : 1);

	if (q != NULL)
		memcpy(q, p, n);
	return q;
}

static void anchor_free(br_x509_trust_anchor *ta)
{
	free(ta->dn.data);
	if (ta->pkey.key_type == BR_KEYTYPE_RSA) {
		free(ta->pkey.key.rsa.n);
		free(ta->pkey.key.rsa.e);
	} else {
		free(ta->pkey.key.ec.q);
	}
}

void tls_anchors_free(struct tls_anchors *a)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < a->n; i++)
		anchor_free(&a->ta[i]);
	free(a->ta);
	free(a);
}

size_t tls_anchors_count(const struct tls_anchors *a)
{
	return a ? a->n : 0;
}

/* One certificate (DER) as a trust anchor appended to a; 0 or -1 (not a
 * certificate BearSSL can use: skipped). */
static int add_anchor(struct tls_anchors *a, const unsigned char *der, size_t len, size_t *cap)
{
	static unsigned char dnbuf[4096];
	struct dn_buf dn = { dnbuf, 0, sizeof dnbuf, 0 };
	br_x509_decoder_context dc;
	const br_x509_pkey *pk;
	br_x509_trust_anchor ta;

	br_x509_decoder_init(&dc, dn_append, &dn);
	br_x509_decoder_push(&dc, der, len);
	pk = br_x509_decoder_get_pkey(&dc);
	if (pk == NULL || dn.overflow)
		return -1;
	memset(&ta, 0, sizeof ta);
	ta.flags = br_x509_decoder_isCA(&dc) ? BR_X509_TA_CA : 0;
	ta.dn.data = dup_bytes(dn.p, dn.len);
	ta.dn.len = dn.len;
	ta.pkey.key_type = pk->key_type;
	if (pk->key_type == BR_KEYTYPE_RSA) {
		ta.pkey.key.rsa.n = dup_bytes(pk->key.rsa.n, pk->key.rsa.nlen);
		ta.pkey.key.rsa.nlen = pk->key.rsa.nlen;
		ta.pkey.key.rsa.e = dup_bytes(pk->key.rsa.e, pk->key.rsa.elen);
		ta.pkey.key.rsa.elen = pk->key.rsa.elen;
		if (ta.dn.data == NULL || ta.pkey.key.rsa.n == NULL || ta.pkey.key.rsa.e == NULL) {
			anchor_free(&ta);
			return -1;
		}
	} else {
		ta.pkey.key.ec.curve = pk->key.ec.curve;
		ta.pkey.key.ec.q = dup_bytes(pk->key.ec.q, pk->key.ec.qlen);
		ta.pkey.key.ec.qlen = pk->key.ec.qlen;
		if (ta.dn.data == NULL || ta.pkey.key.ec.q == NULL) {
			anchor_free(&ta);
			return -1;
		}
	}
	if (a->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		br_x509_trust_anchor *m = realloc(a->ta, ncap * sizeof *m);
		if (m == NULL) {
			anchor_free(&ta);
			return -1;
		}
		a->ta = m;
		*cap = ncap;
	}
	a->ta[a->n++] = ta;
	return 0;
}

struct tls_anchors *tls_anchors_load(const char *pem, size_t len, const char *name,
                                     char *err, size_t errcap)
{
	struct tls_anchors *a = calloc(1, sizeof *a);
	unsigned char *der = malloc(CERT_DER_MAX);
	size_t pos = 0, cap = 0;

	if (a == NULL || der == NULL) {
		snprintf(err, errcap, "%s: out of memory", name);
		free(der);
		free(a);
		return NULL;
	}
	for (;;) {
		struct pem_block b;
		const char *why = NULL;
		enum pem_result r = pem_next(pem, len, &pos, &b, der, CERT_DER_MAX, &why);
		if (r == PEM_END)
			break;
		if (r == PEM_EBAD) {
			snprintf(err, errcap, "%s:%zu: %s", name, b.line, why ? why : "bad PEM");
			tls_anchors_free(a);
			free(der);
			return NULL;
		}
		if (r == PEM_OK && strcmp(b.label, "CERTIFICATE") == 0)
			(void)add_anchor(a, der, b.derlen, &cap);
		/* PEM_EBIG: a block too big for a certificate; skip it. */
	}
	free(der);
	if (a->n == 0) {
		snprintf(err, errcap, "%s: no certificate that can serve as a trust anchor", name);
		tls_anchors_free(a);
		return NULL;
	}
	return a;
}

struct tls *tls_client_new(const char *server_name, const struct tls_anchors *anchors)
{
	struct tls *t = calloc(1, sizeof *t);
	br_ssl_client_context *cc;
	unsigned char seed[32];

	if (t == NULL)
		return NULL;
	cc = &t->ctx.client.cc;
	t->eng = &cc->eng;
	br_ssl_client_init_full(cc, &t->ctx.client.xm, anchors ? anchors->ta : NULL,
	                        anchors ? anchors->n : 0);
	if (anchors == NULL) {
		t->ctx.client.any.vtable = &any_class;
		br_ssl_engine_set_x509(t->eng, &t->ctx.client.any.vtable);
	}
	br_ssl_engine_set_versions(t->eng, BR_TLS10, BR_TLS12);
	br_ssl_engine_add_flags(t->eng, BR_OPT_NO_RENEGOTIATION);
	br_ssl_engine_set_buffers_bidi(t->eng, t->ibuf, sizeof t->ibuf, t->obuf, sizeof t->obuf);
	if (tls_entropy(seed, sizeof seed) != 0) {
		free(t);
		return NULL;
	}
	br_ssl_engine_inject_entropy(t->eng, seed, sizeof seed);
	t->eng->rng_os_rand_done = 1;   /* as in tls_server_new() */
	explicit_bzero(seed, sizeof seed);
	if (!br_ssl_client_reset(cc, server_name && server_name[0] ? server_name : NULL, 0)) {
		free(t);
		return NULL;
	}
	return t;
}

struct tls *tls_client_new_dane(const char *server_name, const struct dns_tlsa_set *tlsa)
{
	struct tls *t = tls_client_new(server_name, NULL);

	if (t == NULL)
		return NULL;
	if ((t->dane = dane_x509_new(tlsa->r, tlsa->n, tlsa->dropped)) == NULL) {
		tls_free(t);
		return NULL;
	}
	/* In place of the accept-any check tls_client_new() set: the
	 * ClientHello is out, the server's chain not yet in. */
	br_ssl_engine_set_x509(t->eng, (const br_x509_class **)dane_x509_class(t->dane));
	return t;
}

enum dane_status tls_dane_status(const struct tls *t)
{
	return t->dane ? dane_x509_status(t->dane) : DANE_NO_USABLE;
}

void tls_dane_set_time(struct tls *t, int64_t now)
{
	if (t->dane)
		dane_x509_set_time(t->dane, now);
}

void tls_free(struct tls *t)
{
	if (t == NULL)
		return;
	dane_x509_free(t->dane);
	tls_creds_unref(t->creds);
	memset(t, 0, sizeof *t); /* session keys */
	free(t);
}

enum tls_state tls_state(const struct tls *t)
{
	if (br_ssl_engine_current_state(t->eng) == BR_SSL_CLOSED)
		return br_ssl_engine_last_error(t->eng) == BR_ERR_OK ? TLS_CLOSED : TLS_FAILED;
	if (t->opened || (t->eng->application_data & 1))
		return TLS_OPEN;
	return TLS_HANDSHAKE;
}

int tls_error(const struct tls *t)
{
	return br_ssl_engine_last_error(t->eng);
}

/* BearSSL's error codes by name, for logs and DSNs: a TLS failure an
 * admin can act on ("certificate-expired", "name-mismatch"), not a number. */
static const struct {
	int         code;
	const char *name;
} tls_errors[] = {
	{ BR_ERR_OK, "none" },
	{ BR_ERR_BAD_PARAM, "bad-parameter" },
	{ BR_ERR_BAD_STATE, "bad-state" },
	{ BR_ERR_UNSUPPORTED_VERSION, "unsupported-version" },
	{ BR_ERR_BAD_VERSION, "bad-version" },
	{ BR_ERR_BAD_LENGTH, "bad-length" },
	{ BR_ERR_TOO_LARGE, "record-too-large" },
	{ BR_ERR_BAD_MAC, "bad-mac" },
	{ BR_ERR_NO_RANDOM, "no-random" },
	{ BR_ERR_UNKNOWN_TYPE, "unknown-record-type" },
	{ BR_ERR_UNEXPECTED, "unexpected-message" },
	{ BR_ERR_BAD_CCS, "bad-change-cipher-spec" },
	{ BR_ERR_BAD_ALERT, "bad-alert" },
	{ BR_ERR_BAD_HANDSHAKE, "bad-handshake" },
	{ BR_ERR_OVERSIZED_ID, "oversized-session-id" },
	{ BR_ERR_BAD_CIPHER_SUITE, "bad-cipher-suite" },
	{ BR_ERR_BAD_COMPRESSION, "bad-compression" },
	{ BR_ERR_BAD_FRAGLEN, "bad-fragment-length" },
	{ BR_ERR_BAD_SECRENEG, "bad-secure-renegotiation" },
	{ BR_ERR_EXTRA_EXTENSION, "unexpected-extension" },
	{ BR_ERR_BAD_SNI, "bad-sni" },
	{ BR_ERR_BAD_HELLO_DONE, "bad-hello-done" },
	{ BR_ERR_LIMIT_EXCEEDED, "limit-exceeded" },
	{ BR_ERR_BAD_FINISHED, "bad-finished" },
	{ BR_ERR_RESUME_MISMATCH, "resume-mismatch" },
	{ BR_ERR_INVALID_ALGORITHM, "invalid-algorithm" },
	{ BR_ERR_BAD_SIGNATURE, "bad-signature" },
	{ BR_ERR_WRONG_KEY_USAGE, "wrong-key-usage" },
	{ BR_ERR_NO_CLIENT_AUTH, "no-client-auth" },
	{ BR_ERR_IO, "io" },
	/* the certificate chain (bearssl_x509.h) */
	{ BR_ERR_X509_INVALID_VALUE, "bad-certificate-encoding" },
	{ BR_ERR_X509_TRUNCATED, "bad-certificate-encoding" },
	{ BR_ERR_X509_EMPTY_CHAIN, "empty-certificate-chain" },
	{ BR_ERR_X509_INNER_TRUNC, "bad-certificate-encoding" },
	{ BR_ERR_X509_BAD_TAG_CLASS, "bad-certificate-encoding" },
	{ BR_ERR_X509_BAD_TAG_VALUE, "bad-certificate-encoding" },
	{ BR_ERR_X509_INDEFINITE_LENGTH, "bad-certificate-encoding" },
	{ BR_ERR_X509_EXTRA_ELEMENT, "bad-certificate-encoding" },
	{ BR_ERR_X509_UNEXPECTED, "bad-certificate-encoding" },
	{ BR_ERR_X509_NOT_CONSTRUCTED, "bad-certificate-encoding" },
	{ BR_ERR_X509_NOT_PRIMITIVE, "bad-certificate-encoding" },
	{ BR_ERR_X509_PARTIAL_BYTE, "bad-certificate-encoding" },
	{ BR_ERR_X509_BAD_BOOLEAN, "bad-certificate-encoding" },
	{ BR_ERR_X509_OVERFLOW, "bad-certificate-encoding" },
	{ BR_ERR_X509_BAD_DN, "bad-certificate-encoding" },
	{ BR_ERR_X509_BAD_TIME, "bad-certificate-encoding" },
	{ BR_ERR_X509_UNSUPPORTED, "unsupported-certificate" },
	{ BR_ERR_X509_LIMIT_EXCEEDED, "certificate-limit-exceeded" },
	{ BR_ERR_X509_WRONG_KEY_TYPE, "wrong-key-type" },
	{ BR_ERR_X509_BAD_SIGNATURE, "bad-certificate-signature" },
	{ BR_ERR_X509_TIME_UNKNOWN, "certificate-time-unknown" },
	{ BR_ERR_X509_EXPIRED, "certificate-expired" },
	{ BR_ERR_X509_DN_MISMATCH, "bad-certificate-chain" },
	{ BR_ERR_X509_BAD_SERVER_NAME, "name-mismatch" },
	{ BR_ERR_X509_CRITICAL_EXTENSION, "unknown-critical-extension" },
	{ BR_ERR_X509_NOT_CA, "not-a-ca" },
	{ BR_ERR_X509_FORBIDDEN_KEY_USAGE, "forbidden-key-usage" },
	{ BR_ERR_X509_WEAK_PUBLIC_KEY, "weak-public-key" },
	{ BR_ERR_X509_NOT_TRUSTED, "bad-certificate-chain" },
};

/* TLS alerts (RFC 5246 7.2), sent or received */
static const struct {
	int         code;
	const char *name;
} tls_alerts[] = {
	{ BR_ALERT_CLOSE_NOTIFY, "close-notify" },
	{ BR_ALERT_UNEXPECTED_MESSAGE, "unexpected-message" },
	{ BR_ALERT_BAD_RECORD_MAC, "bad-record-mac" },
	{ BR_ALERT_RECORD_OVERFLOW, "record-overflow" },
	{ BR_ALERT_DECOMPRESSION_FAILURE, "decompression-failure" },
	{ BR_ALERT_HANDSHAKE_FAILURE, "handshake-failure" },
	{ BR_ALERT_BAD_CERTIFICATE, "bad-certificate" },
	{ BR_ALERT_UNSUPPORTED_CERTIFICATE, "unsupported-certificate" },
	{ BR_ALERT_CERTIFICATE_REVOKED, "certificate-revoked" },
	{ BR_ALERT_CERTIFICATE_EXPIRED, "certificate-expired" },
	{ BR_ALERT_CERTIFICATE_UNKNOWN, "certificate-unknown" },
	{ BR_ALERT_ILLEGAL_PARAMETER, "illegal-parameter" },
	{ BR_ALERT_UNKNOWN_CA, "unknown-ca" },
	{ BR_ALERT_ACCESS_DENIED, "access-denied" },
	{ BR_ALERT_DECODE_ERROR, "decode-error" },
	{ BR_ALERT_DECRYPT_ERROR, "decrypt-error" },
	{ BR_ALERT_PROTOCOL_VERSION, "protocol-version" },
	{ BR_ALERT_INSUFFICIENT_SECURITY, "insufficient-security" },
	{ BR_ALERT_INTERNAL_ERROR, "internal-error" },
	{ BR_ALERT_USER_CANCELED, "user-canceled" },
	{ BR_ALERT_NO_RENEGOTIATION, "no-renegotiation" },
	{ BR_ALERT_UNSUPPORTED_EXTENSION, "unsupported-extension" },
	{ BR_ALERT_NO_APPLICATION_PROTOCOL, "no-application-protocol" },
};

const char *tls_error_name(int err)
{
	static char other[48];
	const char *who = NULL;
	int alert = -1;

	for (size_t i = 0; i < sizeof tls_errors / sizeof tls_errors[0]; i++)
		if (tls_errors[i].code == err)
			return tls_errors[i].name;
	if (err >= BR_ERR_RECV_FATAL_ALERT && err < BR_ERR_RECV_FATAL_ALERT + 256) {
		who = "peer-alert";
		alert = err - BR_ERR_RECV_FATAL_ALERT;
	} else if (err >= BR_ERR_SEND_FATAL_ALERT && err < BR_ERR_SEND_FATAL_ALERT + 256) {
		who = "sent-alert";
		alert = err - BR_ERR_SEND_FATAL_ALERT;
	}
	if (who == NULL) {
		snprintf(other, sizeof other, "error-%d", err);
		return other;
	}
	for (size_t i = 0; i < sizeof tls_alerts / sizeof tls_alerts[0]; i++)
		if (tls_alerts[i].code == alert) {
			snprintf(other, sizeof other, "%s-%s", who, tls_alerts[i].name);
			return other;
		}
	snprintf(other, sizeof other, "%s-%d", who, alert);
	return other;
}

static void note_open(struct tls *t)
{
	if (!t->opened && (t->eng->application_data & 1))
		t->opened = 1;
}

unsigned char *tls_net_in(struct tls *t, size_t *cap)
{
	unsigned char *p = br_ssl_engine_recvrec_buf(t->eng, cap);

	if (p == NULL)
		*cap = 0;
	return p;
}

void tls_net_in_done(struct tls *t, size_t n)
{
	if (n > 0)
		br_ssl_engine_recvrec_ack(t->eng, n);
	note_open(t);
}

const unsigned char *tls_net_out(struct tls *t, size_t *len)
{
	unsigned char *p = br_ssl_engine_sendrec_buf(t->eng, len);

	if (p == NULL)
		*len = 0;
	return p;
}

void tls_net_out_done(struct tls *t, size_t n)
{
	if (n > 0)
		br_ssl_engine_sendrec_ack(t->eng, n);
	note_open(t);
}

const unsigned char *tls_app_in(struct tls *t, size_t *len)
{
	unsigned char *p = br_ssl_engine_recvapp_buf(t->eng, len);

	if (p == NULL)
		*len = 0;
	return p;
}

void tls_app_in_done(struct tls *t, size_t n)
{
	if (n > 0)
		br_ssl_engine_recvapp_ack(t->eng, n);
}

size_t tls_app_write(struct tls *t, const void *p, size_t len)
{
	size_t room;
	unsigned char *buf = br_ssl_engine_sendapp_buf(t->eng, &room);

	if (buf == NULL || room == 0)
		return 0;
	if (len > room)
		len = room;
	memcpy(buf, p, len);
	br_ssl_engine_sendapp_ack(t->eng, len);
	return len;
}

void tls_app_flush(struct tls *t)
{
	br_ssl_engine_flush(t->eng, 0);
}

void tls_close(struct tls *t)
{
	br_ssl_engine_close(t->eng);
}

const char *tls_version_name(const struct tls *t)
{
	switch (br_ssl_engine_get_version(t->eng)) {
	case BR_TLS10: return "TLSv1.0";
	case BR_TLS11: return "TLSv1.1";
	case BR_TLS12: return "TLSv1.2";
	default:       return "none";
	}
}

const char *tls_key_name(const struct tls *t)
{
	return t->creds ? tls_creds_describe(t->creds) : "none";
}

const char *tls_cipher_name(const struct tls *t)
{
	static const struct { uint16_t id; const char *name; } names[] = {
		{ BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, "ECDHE-ECDSA-AES128-GCM-SHA256" },
		{ BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, "ECDHE-RSA-AES128-GCM-SHA256" },
		{ BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, "ECDHE-ECDSA-AES256-GCM-SHA384" },
		{ BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, "ECDHE-RSA-AES256-GCM-SHA384" },
		{ BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, "ECDHE-ECDSA-CHACHA20-POLY1305" },
		{ BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, "ECDHE-RSA-CHACHA20-POLY1305" },
		{ BR_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, "ECDHE-ECDSA-AES128-SHA256" },
		{ BR_TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256, "ECDHE-RSA-AES128-SHA256" },
		{ BR_TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384, "ECDHE-ECDSA-AES256-SHA384" },
		{ BR_TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384, "ECDHE-RSA-AES256-SHA384" },
		{ BR_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, "ECDHE-ECDSA-AES128-SHA" },
		{ BR_TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, "ECDHE-RSA-AES128-SHA" },
		{ BR_TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, "ECDHE-ECDSA-AES256-SHA" },
		{ BR_TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA, "ECDHE-RSA-AES256-SHA" },
		{ BR_TLS_RSA_WITH_AES_128_GCM_SHA256, "AES128-GCM-SHA256" },
		{ BR_TLS_RSA_WITH_AES_256_GCM_SHA384, "AES256-GCM-SHA384" },
		{ BR_TLS_RSA_WITH_AES_128_CBC_SHA256, "AES128-SHA256" },
		{ BR_TLS_RSA_WITH_AES_256_CBC_SHA256, "AES256-SHA256" },
		{ BR_TLS_RSA_WITH_AES_128_CBC_SHA, "AES128-SHA" },
		{ BR_TLS_RSA_WITH_AES_256_CBC_SHA, "AES256-SHA" },
	};
	br_ssl_session_parameters sp;

	br_ssl_engine_get_session_parameters(t->eng, &sp);
	for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
		if (names[k].id == sp.cipher_suite)
			return names[k].name;
	return "unknown";
}
