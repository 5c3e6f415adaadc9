/* policy/shacrypt.c -- SHA-crypt $5$ and $6$; see shacrypt.h */
#include <string.h>

#include <bearssl_hash.h>

#include "shacrypt.h"

static const char itoa64[] =
	"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* The two variants, through BearSSL's hash class vtables. */
struct variant {
	char               id;         /* '5' or '6' */
	const br_hash_class *hc;
	size_t             size;       /* digest bytes */
	const unsigned char (*order)[3]; /* byte triples of the final encoding */
	size_t             ngroups;
	unsigned char      last[3];    /* the final short group: bytes, chars */
};

static const unsigned char order256[][3] = {
	{ 0, 10, 20 }, { 21, 1, 11 }, { 12, 22, 2 }, { 3, 13, 23 }, { 24, 4, 14 },
	{ 15, 25, 5 }, { 6, 16, 26 }, { 27, 7, 17 }, { 18, 28, 8 }, { 9, 19, 29 },
};
static const unsigned char order512[][3] = {
	{ 0, 21, 42 }, { 22, 43, 1 }, { 44, 2, 23 }, { 3, 24, 45 }, { 25, 46, 4 },
	{ 47, 5, 26 }, { 6, 27, 48 }, { 28, 49, 7 }, { 50, 8, 29 }, { 9, 30, 51 },
	{ 31, 52, 10 }, { 53, 11, 32 }, { 12, 33, 54 }, { 34, 55, 13 }, { 56, 14, 35 },
	{ 15, 36, 57 }, { 37, 58, 16 }, { 59, 17, 38 }, { 18, 39, 60 }, { 40, 61, 19 },
	{ 62, 20, 41 },
};

static const struct variant v256 = {
	'5', &br_sha256_vtable, 32, order256, 10, { 31, 30, 3 } /* bytes 31,30 -> 3 chars */
};
static const struct variant v512 = {
	'6', &br_sha512_vtable, 64, order512, 21, { 63, 0, 2 } /* byte 63 -> 2 chars */
};

union hash_ctx {
	const br_hash_class *vt;
	br_sha256_context s256;
	br_sha512_context s512;
};

static void h_init(union hash_ctx *c, const struct variant *v)
{
	v->hc->init(&c->vt);
}

static void h_add(union hash_ctx *c, const void *p, size_t n)
{
	c->vt->update(&c->vt, p, n);
}

static void h_out(union hash_ctx *c, unsigned char *out)
{
	c->vt->out(&c->vt, out);
}

/* Add n bytes of the digest d (size bytes) repeated: the spec's "for each
 * block of 32/64 bytes ... and the remaining bytes". */
static void h_add_repeated(union hash_ctx *c, const unsigned char *d, size_t size, size_t n)
{
	for (; n > size; n -= size)
		h_add(c, d, size);
	h_add(c, d, n);
}

static void put_b64(char *out, size_t *o, unsigned w, size_t n)
{
	while (n-- > 0) {
		out[(*o)++] = itoa64[w & 0x3f];
		w >>= 6;
	}
}

/* Parse "$5$" / "$6$", optional "rounds=N$", the salt.  Returns the variant
 * or NULL; sets rounds, custom (rounds given), salt and its length. */
static const struct variant *parse_setting(const char *s, size_t len, unsigned long *rounds,
                                           int *custom, const char **salt, size_t *saltlen)
{
	const struct variant *v;
	size_t i = 3;

	if (len < 3 || s[0] != '$' || s[2] != '$')
		return NULL;
	if (s[1] == '5')
		v = &v256;
	else if (s[1] == '6')
		v = &v512;
	else
		return NULL;
	*rounds = SHACRYPT_ROUNDS_DEFAULT;
	*custom = 0;
	if (len - i > 7 && memcmp(s + i, "rounds=", 7) == 0) {
		unsigned long r = 0;
		size_t k = i + 7, start = k;

		for (; k < len && s[k] >= '0' && s[k] <= '9'; k++) {
			if (r > 999999999ul)
				return NULL; /* far too long: not a setting we made or read */
			r = r * 10 + (unsigned long)(s[k] - '0');
		}
		if (k == start || k >= len || s[k] != '$')
			return NULL;
		if (r < SHACRYPT_ROUNDS_MIN)
			r = SHACRYPT_ROUNDS_MIN;
		if (r > SHACRYPT_ROUNDS_MAX)
			r = SHACRYPT_ROUNDS_MAX;
		*rounds = r;
		*custom = 1;
		i = k + 1;
	}
	*salt = s + i;
	*saltlen = 0;
	while (i + *saltlen < len && s[i + *saltlen] != '$' && *saltlen < SHACRYPT_SALT_MAX) {
		char ch = s[i + *saltlen];
		if (ch == ':' || ch == '\0' || ch == '\n')
			return NULL;
		(*saltlen)++;
	}
	return v;
}

/* "$5$[rounds=N$]SALT$HASH" from the final digest a, into out; its length. */
static size_t put_result(char *out, const struct variant *v, int custom, unsigned long rounds,
                         const char *salt, size_t saltlen, const unsigned char *a)
{
	size_t o = 0;
	char num[24];

	out[o++] = '$';
	out[o++] = v->id;
	out[o++] = '$';
	if (custom) {
		size_t d = sizeof num;
		unsigned long x = rounds;

		memcpy(out + o, "rounds=", 7);
		o += 7;
		do {
			num[--d] = (char)('0' + x % 10);
			x /= 10;
		} while (x > 0);
		memcpy(out + o, num + d, sizeof num - d);
		o += sizeof num - d;
		out[o++] = '$';
	}
	memcpy(out + o, salt, saltlen);
	o += saltlen;
	out[o++] = '$';
	for (size_t g = 0; g < v->ngroups; g++)
		put_b64(out, &o, ((unsigned)a[v->order[g][0]] << 16) | ((unsigned)a[v->order[g][1]] << 8) |
		                 a[v->order[g][2]], 4);
	if (v->id == '5')
		put_b64(out, &o, ((unsigned)a[v->last[0]] << 8) | a[v->last[1]], v->last[2]);
	else
		put_b64(out, &o, a[v->last[0]], v->last[2]);
	out[o] = '\0';
	return o;
}

size_t shacrypt(const char *key, size_t keylen, const char *setting, size_t setlen, char *out,
                size_t cap)
{
	const struct variant *v;
	unsigned long rounds;
	int custom;
	const char *salt;
	size_t saltlen, o, n;
	union hash_ctx ctx, alt;
	unsigned char a[64], b[64], dp[64], ds[64];

	if (cap < SHACRYPT_MAX)
		return 0;
	v = parse_setting(setting, setlen, &rounds, &custom, &salt, &saltlen);
	if (v == NULL)
		return 0;

	/* B = H(key salt key) */
	h_init(&alt, v);
	h_add(&alt, key, keylen);
	h_add(&alt, salt, saltlen);
	h_add(&alt, key, keylen);
	h_out(&alt, b);

	/* A = H(key salt B-repeated-to-keylen, then per bit of keylen B or key) */
	h_init(&ctx, v);
	h_add(&ctx, key, keylen);
	h_add(&ctx, salt, saltlen);
	h_add_repeated(&ctx, b, v->size, keylen);
	for (n = keylen; n > 0; n >>= 1) {
		if (n & 1)
			h_add(&ctx, b, v->size);
		else
			h_add(&ctx, key, keylen);
	}
	h_out(&ctx, a);

	/* DP = H(key repeated keylen times); P is DP repeated to keylen. */
	h_init(&alt, v);
	for (n = 0; n < keylen; n++)
		h_add(&alt, key, keylen);
	h_out(&alt, dp);

	/* DS = H(salt repeated 16 + A[0] times); S is DS repeated to saltlen. */
	h_init(&alt, v);
	for (n = 0; n < 16u + a[0]; n++)
		h_add(&alt, salt, saltlen);
	h_out(&alt, ds);

	for (unsigned long r = 0; r < rounds; r++) {
		h_init(&ctx, v);
		if (r & 1)
			h_add_repeated(&ctx, dp, v->size, keylen);
		else
			h_add(&ctx, a, v->size);
		if (r % 3 != 0)
			h_add_repeated(&ctx, ds, v->size, saltlen);
		if (r % 7 != 0)
			h_add_repeated(&ctx, dp, v->size, keylen);
		if (r & 1)
			h_add(&ctx, a, v->size);
		else
			h_add_repeated(&ctx, dp, v->size, keylen);
		h_out(&ctx, a);
	}

	o = put_result(out, v, custom, rounds, salt, saltlen, a);
	/* Nothing secret stays on the stack longer than needed (explicit_bzero:
	 * a memset of locals about to die may be left out by the compiler). */
	explicit_bzero(a, sizeof a);
	explicit_bzero(b, sizeof b);
	explicit_bzero(dp, sizeof dp);
	explicit_bzero(ds, sizeof ds);
	explicit_bzero(&ctx, sizeof ctx);
	explicit_bzero(&alt, sizeof alt);
	return o;
}

int shacrypt_valid(const char *hash, size_t len)
{
	const struct variant *v;
	unsigned long rounds;
	int custom;
	const char *salt;
	size_t saltlen, i, want;

	v = parse_setting(hash, len, &rounds, &custom, &salt, &saltlen);
	if (v == NULL)
		return 0;
	i = (size_t)(salt - hash) + saltlen;
	if (i >= len || hash[i] != '$')
		return 0;
	want = v->id == '5' ? 43 : 86;
	if (len - i - 1 != want)
		return 0;
	for (i++; i < len; i++)
		if (memchr(itoa64, hash[i], sizeof itoa64 - 1) == NULL)
			return 0;
	return 1;
}

int shacrypt_equal(const void *a, const void *b, size_t n)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char d = 0;

	for (size_t k = 0; k < n; k++)
		d |= (unsigned char)(x[k] ^ y[k]);
	return d == 0;
}

int shacrypt_verify(const char *key, size_t keylen, const char *hash, size_t hashlen)
{
	char out[SHACRYPT_MAX];
	size_t n;
	int ok;

	if (!shacrypt_valid(hash, hashlen))
		return 0;
	n = shacrypt(key, keylen, hash, hashlen, out, sizeof out);
	ok = n == hashlen && shacrypt_equal(out, hash, n);
	memset(out, 0, sizeof out);
	return ok;
}
