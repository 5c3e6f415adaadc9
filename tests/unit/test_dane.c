/*
 * tests/unit/test_dane.c -- DANE (mta/net/dane.c) with real certificates
 * and real TLS.
 *
 * openssl makes a fresh PKI for each run in a temporary directory: a root
 * CA (RSA), an intermediate CA (EC) and a leaf for mx.example.test (EC),
 * and an unrelated self-signed certificate.  openssl also computes the
 * TLSA data (the DER, the SubjectPublicKeyInfo, their SHA-256 and
 * SHA-512), so the records are made by another program than the one
 * checking them.  Then:
 *   - dane_spki() finds exactly the bytes openssl calls the key, and reads
 *     every truncated or changed certificate without going out of bounds;
 *   - dane_check() on the chain: DANE-EE and DANE-TA, every selector and
 *     matching type, dates (DANE-EE ignores them, DANE-TA does not),
 *     names, unusable and oversized records;
 *   - real handshakes in memory between tls_server_new() and
 *     tls_client_new_dane(): a match opens, a mismatch fails with the
 *     reason in tls_dane_status().
 */
#include "t.h"

#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "mta/net/dane.h"
#include "mta/net/tls.h"
#include "policy/pem.h"

static char dir[] = "/tmp/moat-dane-XXXXXX";

static const char mkpki[] =
	"set -e; cd '%s'\n"
	"exec 2>openssl.log\n"
	"printf 'basicConstraints=critical,CA:TRUE\\nkeyUsage=critical,keyCertSign,cRLSign\\n' >ca.ext\n"
	"printf 'subjectAltName=DNS:mx.example.test\\nbasicConstraints=CA:FALSE\\n"
	"keyUsage=critical,digitalSignature\\nextendedKeyUsage=serverAuth\\n' >leaf.ext\n"
	"openssl req -x509 -newkey rsa:2048 -nodes -keyout root.key -out root.pem -days 3650 "
	"  -subj '/CN=moat DANE test root' -addext 'basicConstraints=critical,CA:TRUE' "
	"  -addext 'keyUsage=critical,keyCertSign,cRLSign'\n"
	"openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout inter.key "
	"  -out inter.csr -subj '/CN=moat DANE test intermediate'\n"
	"openssl x509 -req -in inter.csr -CA root.pem -CAkey root.key -CAcreateserial "
	"  -out inter.pem -days 3650 -extfile ca.ext\n"
	"openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf.key "
	"  -out leaf.csr -subj '/CN=mx.example.test'\n"
	"openssl x509 -req -in leaf.csr -CA inter.pem -CAkey inter.key -CAcreateserial "
	"  -out leaf.pem -days 825 -extfile leaf.ext\n"
	"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other.key "
	"  -out other.pem -days 30 -subj '/CN=other.example.test'\n"
	"cat leaf.pem inter.pem >chain2.pem\n"
	"cat leaf.pem inter.pem root.pem >chain3.pem\n"
	"cat leaf.pem other.pem >chain_other.pem\n"
	"for c in leaf inter root other; do\n"
	"  openssl x509 -in $c.pem -outform DER -out $c.der\n"
	"  openssl x509 -in $c.pem -pubkey -noout | openssl pkey -pubin -outform DER -out $c.spki\n"
	"  for f in der spki; do\n"
	"    openssl dgst -sha256 -binary $c.$f >$c.$f.256\n"
	"    openssl dgst -sha512 -binary $c.$f >$c.$f.512\n"
	"  done\n"
	"done\n";

static int pki_ok;

/* The file dir/name, whole, in a buffer of its exact size (+1 for a NUL). */
static unsigned char *slurp(const char *name, size_t *len)
{
	char path[256];
	FILE *f;
	unsigned char *b;
	long n;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if ((f = fopen(path, "rb")) == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0) {
		if (f)
			fclose(f);
		fprintf(stderr, "cannot read %s\n", path);
		return NULL;
	}
	rewind(f);
	b = malloc((size_t)n + 1);
	if (b == NULL || fread(b, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		free(b);
		return NULL;
	}
	fclose(f);
	b[n] = '\0';
	*len = (size_t)n;
	return b;
}

/* A record whose data is the file dir/name. */
static struct dns_tlsa rec(unsigned u, unsigned s, unsigned m, const char *name)
{
	struct dns_tlsa r;
	size_t n = 0;
	unsigned char *b = slurp(name, &n);

	memset(&r, 0, sizeof r);
	r.usage = (uint8_t)u;
	r.selector = (uint8_t)s;
	r.mtype = (uint8_t)m;
	if (b != NULL && n <= sizeof r.data) {
		memcpy(r.data, b, n);
		r.len = (uint16_t)n;
	}
	free(b);
	return r;
}

static void make_pki(void)
{
	char cmd[sizeof mkpki + 64];

	CHECK(mkdtemp(dir) != NULL);
	snprintf(cmd, sizeof cmd, mkpki, dir);
	pki_ok = system(cmd) == 0;
	CHECKF(pki_ok, "openssl failed: see %s/openssl.log", dir);
}

static void test_spki(void)
{
	static const char *const certs[] = { "leaf", "inter", "root", "other" };

	for (size_t i = 0; i < 4 && pki_ok; i++) {
		char name[32];
		size_t dlen = 0, klen = 0, n;
		unsigned char *der, *key;
		const unsigned char *p;

		snprintf(name, sizeof name, "%s.der", certs[i]);
		der = slurp(name, &dlen);
		snprintf(name, sizeof name, "%s.spki", certs[i]);
		key = slurp(name, &klen);
		CHECK(der != NULL && key != NULL);
		if (der == NULL || key == NULL)
			continue;
		CHECKF(dane_spki(der, dlen, &p, &n) == 0 && n == klen && memcmp(p, key, n) == 0,
		       "%s", certs[i]);
		/* Truncations never read past the end, and never succeed
		 * with a key that runs past them. */
		for (size_t k = 0; k < dlen; k++) {
			unsigned char *t = malloc(k ? k : 1);
			memcpy(t, der, k);
			CHECK(dane_spki(t, k, &p, &n) == -1);
			free(t);
		}
		/* Changed bytes: any result stays inside the certificate. */
		for (size_t k = 0; k < dlen; k++) {
			static const unsigned char vals[] = { 0x00, 0xff, 0x80, 0x81, 0x83, 0x30, 0xa0 };
			for (size_t v = 0; v < sizeof vals; v++) {
				unsigned char *t = malloc(dlen);
				memcpy(t, der, dlen);
				t[k] = vals[v];
				if (dane_spki(t, dlen, &p, &n) == 0)
					CHECK(p >= t && n <= dlen && (size_t)(p - t) <= dlen - n);
				free(t);
			}
		}
		free(der);
		free(key);
	}
	CHECK(dane_spki((const unsigned char *)"\x30\x00", 2, &(const unsigned char *){ 0 },
	                &(size_t){ 0 }) == -1);
}

/* The chain in a files' DER, leaf first. */
struct chain_files {
	unsigned char *b[3];
	struct dane_chain c;
};

static void chain_load(struct chain_files *f, const char *const *names, size_t n)
{
	memset(f, 0, sizeof *f);
	for (size_t i = 0; i < n; i++) {
		f->b[i] = slurp(names[i], &f->c.len[i]);
		f->c.der[i] = f->b[i];
	}
	f->c.n = n;
}

static void chain_free(struct chain_files *f)
{
	for (size_t i = 0; i < 3; i++)
		free(f->b[i]);
}

/* dane_check() on records r[0..n) for chain3 (leaf, inter, root). */
static enum dane_status check(const struct dns_tlsa *r, size_t n, const char *host, int64_t now,
                              size_t nchain)
{
	static const char *const names[] = { "leaf.der", "inter.der", "root.der" };
	struct chain_files f;
	enum dane_status st;

	chain_load(&f, names, nchain);
	st = dane_check(r, n, 0, &f.c, host, now);
	chain_free(&f);
	return st;
}

#define Y2200 7258118400LL   /* 2200-01-01: every test certificate has expired */
#define Y1990 631152000LL    /* 1990-01-01: none is valid yet */

static void test_check(void)
{
	const char *h = "mx.example.test";
	int64_t now = (int64_t)time(NULL);
	struct dns_tlsa r[4];

	if (!pki_ok)
		return;
	/* DANE-EE: each selector and matching type; dates and name ignored. */
	r[0] = rec(3, 1, 1, "leaf.spki.256");
	CHECK(check(r, 1, h, now, 3) == DANE_OK);
	CHECK(check(r, 1, "wrong.example", Y2200, 1) == DANE_OK);
	r[0] = rec(3, 0, 1, "leaf.der.256");
	CHECK(check(r, 1, h, Y1990, 1) == DANE_OK);
	r[0] = rec(3, 1, 2, "leaf.spki.512");
	CHECK(check(r, 1, h, now, 2) == DANE_OK);
	r[0] = rec(3, 0, 2, "leaf.der.512");
	CHECK(check(r, 1, h, now, 2) == DANE_OK);
	r[0] = rec(3, 1, 0, "leaf.spki");
	CHECK(check(r, 1, h, now, 2) == DANE_OK);
	r[0] = rec(3, 0, 0, "leaf.der");
	CHECK(check(r, 1, h, now, 2) == DANE_OK);
	/* DANE-EE of another certificate, or of the intermediate: no. */
	r[0] = rec(3, 1, 1, "other.spki.256");
	CHECK(check(r, 1, h, now, 3) == DANE_NO_MATCH);
	r[0] = rec(3, 1, 1, "inter.spki.256");
	CHECK(check(r, 1, h, now, 3) == DANE_NO_MATCH);
	/* One of several records matching is enough. */
	r[0] = rec(3, 1, 1, "other.spki.256");
	r[1] = rec(3, 0, 1, "leaf.der.256");
	CHECK(check(r, 2, h, now, 3) == DANE_OK);

	/* DANE-TA on the intermediate and on the root, both selectors. */
	r[0] = rec(2, 0, 1, "inter.der.256");
	CHECK(check(r, 1, h, now, 2) == DANE_OK);
	CHECK(check(r, 1, "MX.Example.Test", now, 2) == DANE_OK);
	CHECK(check(r, 1, "other.example.test", now, 2) == DANE_TA_NAME);
	CHECK(check(r, 1, h, Y2200, 2) == DANE_TA_EXPIRED);
	CHECK(check(r, 1, h, Y1990, 2) == DANE_TA_EXPIRED);
	r[0] = rec(2, 1, 2, "root.spki.512");
	CHECK(check(r, 1, h, now, 3) == DANE_OK);
	r[0] = rec(2, 0, 0, "root.der");
	CHECK(check(r, 1, h, now, 3) == DANE_OK);
	/* A root the server does not send is not found. */
	CHECK(check(r, 1, h, now, 2) == DANE_NO_MATCH);
	/* DANE-TA naming the leaf: the leaf is not self-issued. */
	r[0] = rec(2, 0, 1, "leaf.der.256");
	CHECK(check(r, 1, h, now, 2) == DANE_TA_UNTRUSTED);
	/* A DANE-TA certificate the leaf does not chain to. */
	{
		static const char *const names[] = { "leaf.der", "other.der" };
		struct chain_files f;
		chain_load(&f, names, 2);
		r[0] = rec(2, 0, 1, "other.der.256");
		CHECK(dane_check(r, 1, 0, &f.c, h, now) == DANE_TA_UNTRUSTED);
		r[0] = rec(3, 1, 1, "leaf.spki.256");   /* DANE-EE does not care */
		CHECK(dane_check(r, 1, 0, &f.c, h, now) == DANE_OK);
		chain_free(&f);
	}

	/* PKIX usages, unknown parameters, wrong digest sizes: unusable. */
	r[0] = rec(0, 0, 1, "root.der.256");
	r[1] = rec(1, 1, 1, "leaf.spki.256");
	r[2] = rec(3, 2, 1, "leaf.spki.256");
	r[3] = rec(3, 1, 3, "leaf.spki.256");
	CHECK(check(r, 4, h, now, 3) == DANE_NO_USABLE);
	r[0] = rec(4, 1, 1, "leaf.spki.256");
	r[1] = rec(3, 1, 1, "leaf.spki.512");    /* 64 bytes for SHA-256 */
	r[2] = rec(3, 1, 2, "leaf.spki.256");    /* 32 bytes for SHA-512 */
	r[3] = rec(3, 1, 0, "leaf.spki");
	r[3].len = 0;
	CHECK(check(r, 4, h, now, 3) == DANE_NO_USABLE);
	for (int i = 0; i < 4; i++)
		CHECK(!dane_usable(&r[i]));
	/* Usable but not matching beside unusable but matching: fail. */
	r[0] = rec(1, 1, 1, "leaf.spki.256");
	r[1] = rec(3, 1, 1, "other.spki.256");
	CHECK(check(r, 2, h, now, 3) == DANE_NO_MATCH);
	/* Too big to keep: usable, matches nothing; dropped records count. */
	r[0] = rec(3, 0, 0, "leaf.der");
	r[0].toobig = 1;
	CHECK(dane_usable(&r[0]) && check(r, 1, h, now, 3) == DANE_NO_MATCH);
	{
		static const char *const names[] = { "leaf.der" };
		struct chain_files f;
		chain_load(&f, names, 1);
		r[0] = rec(0, 0, 1, "root.der.256");
		CHECK(dane_check(r, 1, 0, &f.c, h, now) == DANE_NO_USABLE);
		CHECK(dane_check(r, 1, 1, &f.c, h, now) == DANE_NO_MATCH);
		f.c.n = 0;
		r[0] = rec(3, 0, 1, "leaf.der.256");
		CHECK(dane_check(r, 1, 0, &f.c, h, now) == DANE_BAD_CHAIN);
		chain_free(&f);
	}
	{
		static struct dns_tlsa_set set;
		memset(&set, 0, sizeof set);
		set.r[0] = rec(1, 1, 1, "leaf.spki.256");
		set.r[1] = rec(2, 1, 1, "root.spki.256");
		set.n = 2;
		CHECK(dane_usable_count(&set) == 1);
		set.dropped = 3;
		CHECK(dane_usable_count(&set) == 4);
	}
}

/* ---- handshakes in memory ---- */

static size_t xfer(struct tls *from, struct tls *to)
{
	size_t len, cap;
	const unsigned char *o = tls_net_out(from, &len);
	unsigned char *i;

	if (len == 0 || (i = tls_net_in(to, &cap)) == NULL || cap == 0)
		return 0;
	if (len > cap)
		len = cap;
	memcpy(i, o, len);
	tls_net_in_done(to, len);
	tls_net_out_done(from, len);
	return len;
}

/* A handshake between a server sending chain (PEM file) and a DANE
 * client for host with records r[0..n); 1 if both opened and data went
 * through.  *st: the client's DANE verdict. */
static int handshake(const char *chain, const char *host, const struct dns_tlsa *r, size_t n,
                     enum dane_status *st)
{
	static struct dns_tlsa_set set;
	size_t clen = 0, klen = 0;
	unsigned char *cert = slurp(chain, &clen), *key = slurp("leaf.key", &klen);
	char err[256] = "";
	struct tls_creds *creds = NULL;
	struct tls *s = NULL, *c = NULL;
	int ok = 0;

	*st = DANE_PENDING;
	memset(&set, 0, sizeof set);
	memcpy(set.r, r, n * sizeof *r);
	set.n = n;
	if (cert && key)
		creds = tls_creds_load((char *)cert, clen, chain, (char *)key, klen, "leaf.key",
		                       err, sizeof err);
	if (creds == NULL) {
		fprintf(stderr, "creds: %s\n", err);
		goto out;
	}
	s = tls_server_new(creds, 0);
	c = tls_client_new_dane(host, &set);
	if (s == NULL || c == NULL)
		goto out;
	CHECK(tls_dane_status(c) == DANE_PENDING);
	for (int i = 0; i < 1000; i++) {
		size_t moved = xfer(s, c) + xfer(c, s);
		if (tls_state(s) >= TLS_CLOSED || tls_state(c) >= TLS_CLOSED)
			break;
		if (tls_state(s) == TLS_OPEN && tls_state(c) == TLS_OPEN)
			break;
		if (moved == 0)
			break;
	}
	*st = tls_dane_status(c);
	if (tls_state(s) == TLS_OPEN && tls_state(c) == TLS_OPEN &&
	    tls_app_write(s, "ping", 4) == 4) {
		size_t len = 0;
		const unsigned char *p = NULL;
		tls_app_flush(s);
		for (int i = 0; i < 10 && len == 0; i++) {
			xfer(s, c);
			xfer(c, s);
			p = tls_app_in(c, &len);
		}
		ok = len == 4 && memcmp(p, "ping", 4) == 0;
	}
	if (!ok && tls_state(c) == TLS_FAILED && *st != DANE_OK)
		CHECKF(tls_error(c) >= 32 && tls_error(c) < 64, "client error %d", tls_error(c));
out:
	tls_free(s);
	tls_free(c);
	tls_creds_unref(creds);
	free(cert);
	free(key);
	return ok;
}

static void test_handshake(void)
{
	const char *h = "mx.example.test";
	struct dns_tlsa r[2];
	enum dane_status st;

	if (!pki_ok)
		return;
	/* DANE-EE 3 1 1, 3 0 1, 3 1 2: open, whatever the name. */
	r[0] = rec(3, 1, 1, "leaf.spki.256");
	CHECK(handshake("chain2.pem", h, r, 1, &st) && st == DANE_OK);
	CHECK(handshake("chain2.pem", "some.other.name", r, 1, &st) && st == DANE_OK);
	r[0] = rec(3, 0, 1, "leaf.der.256");
	CHECK(handshake("chain2.pem", h, r, 1, &st) && st == DANE_OK);
	r[0] = rec(3, 1, 2, "leaf.spki.512");
	CHECK(handshake("chain3.pem", h, r, 1, &st) && st == DANE_OK);
	/* A mismatch fails the handshake. */
	r[0] = rec(3, 1, 1, "other.spki.256");
	CHECK(!handshake("chain2.pem", h, r, 1, &st) && st == DANE_NO_MATCH);
	/* DANE-TA 2 0 1 on the intermediate: the right name opens, a wrong
	 * one fails; on the root, when the server sends it. */
	r[0] = rec(2, 0, 1, "inter.der.256");
	CHECK(handshake("chain2.pem", h, r, 1, &st) && st == DANE_OK);
	CHECK(!handshake("chain2.pem", "wrong.example.test", r, 1, &st) && st == DANE_TA_NAME);
	r[0] = rec(2, 0, 1, "root.der.256");
	CHECK(handshake("chain3.pem", h, r, 1, &st) && st == DANE_OK);
	CHECK(!handshake("chain2.pem", h, r, 1, &st) && st == DANE_NO_MATCH);
	/* DANE-TA on a certificate the leaf does not chain to. */
	r[0] = rec(2, 0, 1, "other.der.256");
	CHECK(!handshake("chain_other.pem", h, r, 1, &st) && st == DANE_TA_UNTRUSTED);
	/* PKIX-only records are not usable: a DANE connection made anyway
	 * fails closed. */
	r[0] = rec(0, 0, 1, "root.der.256");
	r[1] = rec(1, 1, 1, "leaf.spki.256");
	CHECK(!handshake("chain3.pem", h, r, 2, &st) && st == DANE_NO_USABLE);
	/* An unusable record beside a matching usable one: fine. */
	r[1] = rec(3, 1, 1, "leaf.spki.256");
	CHECK(handshake("chain3.pem", h, r, 2, &st) && st == DANE_OK);
	/* tls_client_new() connections have no DANE verdict. */
	{
		struct tls *c = tls_client_new(h, NULL);
		CHECK(c != NULL && tls_dane_status(c) == DANE_NO_USABLE);
		tls_free(c);
	}
}

static void test_names(void)
{
	CHECK(strcmp(dane_status_name(DANE_OK), "ok") == 0);
	CHECK(strcmp(dane_status_name(DANE_TA_NAME), "ta-name-mismatch") == 0);
	CHECK(strcmp(dane_status_name((enum dane_status)99), "?") == 0);
}

int main(void)
{
	char cmd[64];

	RUN(make_pki);
	RUN(test_spki);
	RUN(test_check);
	RUN(test_handshake);
	RUN(test_names);
	if (t_total_failed == 0) {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
	return t_main_end();
}
