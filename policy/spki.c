/* policy/spki.c -- RSA public keys in DER; see spki.h */
#include "policy/spki.h"

#include <string.h>

#define TAG_INTEGER  0x02
#define TAG_BITSTR   0x03
#define TAG_OCTETSTR 0x04
#define TAG_NULL     0x05
#define TAG_OID      0x06
#define TAG_SEQUENCE 0x30

/* rsaEncryption, 1.2.840.113549.1.1.1 */
static const unsigned char rsa_oid[] = { 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01 };

/* ---- writing ------------------------------------------------------------- */

/* Bytes a DER length takes. */
static size_t len_size(size_t len)
{
	size_t n = 1;

	if (len < 0x80)
		return 1;
	for (; len > 0; len >>= 8)
		n++;
	return n;
}

/* A writer that counts what does not fit (the snprintf contract). */
struct der_out {
	unsigned char *buf;
	size_t         cap, len;
};

static void put(struct der_out *o, const unsigned char *p, size_t n)
{
	if (o->len + n <= o->cap)
		memcpy(o->buf + o->len, p, n);
	o->len += n;
}

static void put_byte(struct der_out *o, unsigned char b)
{
	put(o, &b, 1);
}

static void put_head(struct der_out *o, unsigned char tag, size_t len)
{
	unsigned char l[sizeof(size_t) + 1];
	size_t n = len_size(len);

	put_byte(o, tag);
	if (n == 1) {
		put_byte(o, (unsigned char)len);
		return;
	}
	l[0] = (unsigned char)(0x80 | (n - 1));
	for (size_t k = 1; k < n; k++)
		l[k] = (unsigned char)(len >> (8 * (n - 1 - k)));
	put(o, l, n);
}

/* An unsigned integer's content: its bytes, after a 0 when the top bit is set. */
static size_t uint_len(size_t n, const unsigned char *p)
{
	return n + (p[0] >= 0x80);
}

static size_t tlv_size(size_t content)
{
	return 1 + len_size(content) + content;
}

static void put_uint(struct der_out *o, const unsigned char *p, size_t n)
{
	put_head(o, TAG_INTEGER, uint_len(n, p));
	if (p[0] >= 0x80)
		put_byte(o, 0);
	put(o, p, n);
}

static void strip_zeros(const unsigned char **p, size_t *n)
{
	while (*n > 0 && **p == 0) {
		(*p)++;
		(*n)--;
	}
}

size_t spki_rsa_encode(const unsigned char *n, size_t nlen, const unsigned char *e, size_t elen,
                       unsigned char *out, size_t cap)
{
	struct der_out o = { out, cap, 0 };
	size_t key, bits, alg;

	strip_zeros(&n, &nlen);
	strip_zeros(&e, &elen);
	if (nlen == 0 || elen == 0)
		return 0;
	key = tlv_size(uint_len(nlen, n)) + tlv_size(uint_len(elen, e));   /* RSAPublicKey's content */
	bits = 1 + tlv_size(key);                                         /* no unused bits, then it */
	alg = tlv_size(sizeof rsa_oid) + tlv_size(0);
	put_head(&o, TAG_SEQUENCE, tlv_size(alg) + tlv_size(bits));
	put_head(&o, TAG_SEQUENCE, alg);
	put_head(&o, TAG_OID, sizeof rsa_oid);
	put(&o, rsa_oid, sizeof rsa_oid);
	put_head(&o, TAG_NULL, 0);
	put_head(&o, TAG_BITSTR, bits);
	put_byte(&o, 0);
	put_head(&o, TAG_SEQUENCE, key);
	put_uint(&o, n, nlen);
	put_uint(&o, e, elen);
	return o.len;
}

/* ---- reading ------------------------------------------------------------- */

/* A strict DER reader over in[0..len): each call takes one element. */
struct der_in {
	const unsigned char *p;
	size_t               len, pos;
};

/* The next element, which must have tag: its content in *c, *clen.
 * Lengths in the short form when they can be, no leading zero byte in
 * the long form (DER), and within what is left.  0 or -1. */
static int take(struct der_in *in, unsigned char tag, const unsigned char **c, size_t *clen)
{
	size_t left = in->len - in->pos, n, l = 0, i = in->pos;

	if (left < 2 || in->p[i] != tag)
		return -1;
	n = in->p[i + 1];
	i += 2;
	if (n >= 0x80) {
		n &= 0x7F;
		if (n == 0 || n > 3 || in->len - i < n || in->p[i] == 0)
			return -1;
		for (size_t k = 0; k < n; k++)
			l = (l << 8) | in->p[i + k];
		if (l < 0x80)
			return -1;
		i += n;
	} else {
		l = n;
	}
	if (in->len - i < l)
		return -1;
	*c = in->p + i;
	*clen = l;
	in->pos = i + l;
	return 0;
}

static int take_in(struct der_in *in, unsigned char tag, struct der_in *inner)
{
	const unsigned char *c;
	size_t clen;

	if (take(in, tag, &c, &clen) != 0)
		return -1;
	*inner = (struct der_in){ c, clen, 0 };
	return 0;
}

/* A positive INTEGER, without its leading zeros. */
static int take_uint(struct der_in *in, const unsigned char **v, size_t *vlen)
{
	if (take(in, TAG_INTEGER, v, vlen) != 0 || *vlen == 0 || (*v)[0] >= 0x80)
		return -1;
	strip_zeros(v, vlen);
	return *vlen > 0 ? 0 : -1;
}

/* Version 0 or 1 (two-prime, or PKCS#8 v2 with a public key). */
static int take_version(struct der_in *in)
{
	const unsigned char *v;
	size_t vlen;

	if (take(in, TAG_INTEGER, &v, &vlen) != 0 || vlen != 1 || v[0] > 1)
		return -1;
	return 0;
}

/* AlgorithmIdentifier: rsaEncryption with NULL or absent parameters. */
static int take_rsa_alg(struct der_in *in)
{
	struct der_in alg;
	const unsigned char *c;
	size_t clen;

	if (take_in(in, TAG_SEQUENCE, &alg) != 0 || take(&alg, TAG_OID, &c, &clen) != 0 ||
	    clen != sizeof rsa_oid || memcmp(c, rsa_oid, clen) != 0)
		return -1;
	if (alg.pos < alg.len && (take(&alg, TAG_NULL, &c, &clen) != 0 || clen != 0))
		return -1;
	return alg.pos == alg.len ? 0 : -1;
}

/* RSAPrivateKey (RFC 8017 A.1.2): version, n, e, then the rest unread. */
static int pkcs1_public(struct der_in *seq, struct spki_rsa *pub)
{
	if (take_version(seq) != 0 || take_uint(seq, &pub->n, &pub->nlen) != 0 ||
	    take_uint(seq, &pub->e, &pub->elen) != 0)
		return -1;
	return 0;
}

int spki_rsa_from_private(const unsigned char *der, size_t len, struct spki_rsa *pub)
{
	struct der_in top = { der, len, 0 }, seq, inner, key;
	const unsigned char *c;
	size_t clen;

	if (take_in(&top, TAG_SEQUENCE, &seq) != 0 || top.pos != top.len)
		return -1;
	/* PKCS#8 (RFC 5208 5): version, AlgorithmIdentifier, OCTET STRING. */
	if (seq.len - seq.pos > 3 && seq.p[seq.pos] == TAG_INTEGER && seq.p[seq.pos + 1] == 1 &&
	    seq.p[seq.pos + 3] == TAG_SEQUENCE) {
		if (take_version(&seq) != 0 || take_rsa_alg(&seq) != 0 ||
		    take(&seq, TAG_OCTETSTR, &c, &clen) != 0)
			return -1;
		inner = (struct der_in){ c, clen, 0 };
		if (take_in(&inner, TAG_SEQUENCE, &key) != 0 || inner.pos != inner.len)
			return -1;
		return pkcs1_public(&key, pub);
	}
	return pkcs1_public(&seq, pub);
}

int spki_rsa_parse(const unsigned char *der, size_t len, struct spki_rsa *pub)
{
	struct der_in top = { der, len, 0 }, seq, key;
	const unsigned char *c;
	size_t clen;

	if (take_in(&top, TAG_SEQUENCE, &seq) != 0 || top.pos != top.len || take_rsa_alg(&seq) != 0 ||
	    take(&seq, TAG_BITSTR, &c, &clen) != 0 || seq.pos != seq.len || clen < 1 || c[0] != 0)
		return -1;
	struct der_in bits = { c + 1, clen - 1, 0 };
	if (take_in(&bits, TAG_SEQUENCE, &key) != 0 || bits.pos != bits.len ||
	    take_uint(&key, &pub->n, &pub->nlen) != 0 || take_uint(&key, &pub->e, &pub->elen) != 0 ||
	    key.pos != key.len)
		return -1;
	return 0;
}
