/* mta/cmd/dkim_keygen.c -- moat dkim-keygen; see dkim_keygen.h */
#include "mta/cmd/dkim_keygen.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bearssl.h>

#include "mta/net/tls.h"
#include "mta/ops/dkim_key.h"
#include "policy/dkim.h"
#include "policy/spki.h"

#define PUBEXP 65537

static int usage(void)
{
	fputs("usage: moat dkim-keygen [-o KEYFILE] [-pkcs1] SELECTOR DOMAIN [BITS]\n", stderr);
	return 100;
}

/* All the key material, wiped when done. */
struct keygen {
	br_hmac_drbg_context rng;
	br_rsa_private_key   sk;
	br_rsa_public_key    pk;
	unsigned char        priv[BR_RSA_KBUF_PRIV_SIZE(DKIM_KEY_BITS_MAX)];
	unsigned char        pub[BR_RSA_KBUF_PUB_SIZE(DKIM_KEY_BITS_MAX)];
	unsigned char        d[DKIM_KEY_BITS_MAX / 8];
	size_t               dlen;
};

/* The key pair, from a DRBG seeded by the kernel. */
static int generate(struct keygen *g, unsigned bits)
{
	unsigned char seed[48];

	if (tls_entropy(seed, sizeof seed) != 0) {
		fprintf(stderr, "moat dkim-keygen: getrandom: %s\n", strerror(errno));
		return -1;
	}
	br_hmac_drbg_init(&g->rng, &br_sha256_vtable, seed, sizeof seed);
	explicit_bzero(seed, sizeof seed);
	if (!br_rsa_keygen_get_default()(&g->rng.vtable, &g->sk, g->priv, &g->pk, g->pub, bits,
	                                 PUBEXP)) {
		fprintf(stderr, "moat dkim-keygen: key generation failed\n");
		return -1;
	}
	g->dlen = br_rsa_compute_privexp_get_default()(g->d, &g->sk, PUBEXP);
	if (g->dlen == 0) {
		fprintf(stderr, "moat dkim-keygen: cannot compute the private exponent\n");
		return -1;
	}
	return 0;
}

/* The private key in PEM, malloc'd (NUL-terminated), or NULL. */
static char *to_pem(const struct keygen *g, int pkcs1, size_t *len)
{
	size_t dn = pkcs1 ? br_encode_rsa_raw_der(NULL, &g->sk, &g->pk, g->d, g->dlen)
	                  : br_encode_rsa_pkcs8_der(NULL, &g->sk, &g->pk, g->d, g->dlen);
	const char *banner = pkcs1 ? BR_ENCODE_PEM_RSA_RAW : BR_ENCODE_PEM_PKCS8;
	unsigned char *der = malloc(dn);
	char *pem = NULL;

	if (der != NULL && dn > 0) {
		if (pkcs1)
			br_encode_rsa_raw_der(der, &g->sk, &g->pk, g->d, g->dlen);
		else
			br_encode_rsa_pkcs8_der(der, &g->sk, &g->pk, g->d, g->dlen);
		*len = br_pem_encode(NULL, der, dn, banner, BR_PEM_LINE64);
		if ((pem = malloc(*len + 1)) != NULL)
			br_pem_encode(pem, der, dn, banner, BR_PEM_LINE64);
		explicit_bzero(der, dn);
	}
	free(der);
	return pem;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The key to path (new file, 0600, synced) or stdout (path NULL). */
static int write_key(const char *path, const char *pem, size_t len)
{
	int fd = 1;

	if (path != NULL && (fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
		fprintf(stderr, "moat dkim-keygen: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (write_all(fd, pem, len) != 0 || (path != NULL && (fsync(fd) != 0 || close(fd) != 0))) {
		fprintf(stderr, "moat dkim-keygen: %s: %s\n", path ? path : "stdout", strerror(errno));
		if (path != NULL)
			unlink(path);
		return -1;
	}
	return 0;
}

/* Load the PEM back as `moat check` would, and make the DNS record from it. */
static char *record_of(const char *pem, size_t len, const char *selector, const char *domain)
{
	char err[300], *rec = NULL;
	unsigned char spki[SPKI_RSA_MAX];
	struct dkim_key *k = dkim_key_load(pem, len, "new key", err, sizeof err);
	size_t n, rn;

	if (k == NULL) {
		fprintf(stderr, "moat dkim-keygen: %s\n", err);
		return NULL;
	}
	n = dkim_key_spki(k, spki, sizeof spki);
	dkim_key_free(k);
	rn = dkim_dns_record(selector, domain, spki, n, NULL, 0);
	if (n == 0 || n > sizeof spki || rn == 0 || (rec = malloc(rn + 1)) == NULL)
		return NULL;
	dkim_dns_record(selector, domain, spki, n, rec, rn + 1);
	return rec;
}

int dkimkeygen_main(int argc, char **argv)
{
	const char *out = NULL, *pos[3], *why;
	char domain[DKIM_DOMAIN_MAX + 2], *pem = NULL, *rec = NULL;
	unsigned long bits = 2048;
	size_t npos = 0, pemlen = 0;
	int pkcs1 = 0, rc = 111;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
			out = argv[++i];
		else if (strcmp(argv[i], "-pkcs1") == 0)
			pkcs1 = 1;
		else if (argv[i][0] == '-' || npos == 3)
			return usage();
		else
			pos[npos++] = argv[i];
	}
	if (npos < 2)
		return usage();
	if (npos == 3) {
		char *end;
		bits = strtoul(pos[2], &end, 10);
		if (*end != '\0' || bits < DKIM_KEY_BITS_MIN || bits > DKIM_KEY_BITS_MAX) {
			fprintf(stderr, "moat dkim-keygen: BITS must be %d to %d\n", DKIM_KEY_BITS_MIN,
			        DKIM_KEY_BITS_MAX);
			return 100;
		}
	}
	/* The domain as DNS has it: lower case, no root dot. */
	size_t dn = strlen(pos[1]);
	if (dn > 0 && pos[1][dn - 1] == '.')
		dn--;
	if (dn >= sizeof domain)
		dn = sizeof domain - 1;
	for (size_t i = 0; i < dn; i++)
		domain[i] = (char)(pos[1][i] >= 'A' && pos[1][i] <= 'Z' ? pos[1][i] + 32 : pos[1][i]);
	domain[dn] = '\0';
	if (dkim_names_check(domain, pos[0], &why) != 0) {
		fprintf(stderr, "moat dkim-keygen: %s\n", why);
		return 100;
	}
	struct keygen *g = calloc(1, sizeof *g);
	if (g != NULL && generate(g, (unsigned)bits) == 0 && (pem = to_pem(g, pkcs1, &pemlen)) != NULL &&
	    (rec = record_of(pem, pemlen, pos[0], domain)) != NULL &&
	    write_key(out, pem, pemlen) == 0 && fputs(rec, stdout) >= 0 && fflush(stdout) == 0)
		rc = 0;
	if (g != NULL) {
		explicit_bzero(g, sizeof *g);
		free(g);
	}
	if (pem != NULL) {
		explicit_bzero(pem, pemlen);
		free(pem);
	}
	free(rec);
	return rc;
}
