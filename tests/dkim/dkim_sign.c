/*
 * tests/dkim/dkim_sign.c -- a test driver (not shipped): sign one message
 * the way the smtp role does (with the key in this process instead of the
 * key role: tests/dkim/test_dkim_serve.py runs the real one), with moat's own code from
 * end to end, so that tests/dkim/test_dkim.py can hand the result to an
 * independent verifier (dkimpy).
 *
 *   dkim-sign CONF [CHUNK [TIME]] < message > signed message
 *
 * CONF is read as `moat check` reads it (the keys loaded and self-tested);
 * the message (as queued: CRLF, unstuffed) is fed to a struct dkim_msg in
 * pieces of CHUNK bytes (default, or 0: whole); t= is TIME (default: now);
 * the key is chosen by the From:
 * domain; the DKIM-Signature header is written first, then the message
 * unchanged.  Exit: 0 signed; 2 already signed for that domain; 3 no key
 * for the From: domain; 4 cannot sign (why on stderr); 1 config error;
 * 100 usage; 111 I/O.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mta/ops/dkim_key.h"
#include "mta/ops/loaded_config.h"
#include "policy/dkim.h"

#define HDR_CAP (64 * 1024)

static char *read_stdin(size_t *len)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	ssize_t r;

	while (buf != NULL && (r = read(0, buf + n, cap - n)) > 0) {
		n += (size_t)r;
		if (n == cap) {
			char *nb = realloc(buf, cap *= 2);
			if (nb == NULL)
				free(buf);
			buf = nb;
		}
	}
	*len = n;
	return buf;
}

/* Sign msg[0..len) with cfg's keys; the exit status of main(). */
static int sign(struct config *cfg, const char *msg, size_t len, size_t chunk, uint64_t now)
{
	static char hdr[HDR_CAP], out[DKIM_SIGHDR_MAX];
	static struct dkim_msg m;
	static struct dkim_pending p;
	unsigned char bh[DKIM_HASH_LEN], sig[DKIM_SIG_MAX];
	char domain[ADDR_DOMAIN_MAX + 1];
	const char *why;

	dkim_msg_init(&m, hdr, sizeof hdr);
	for (size_t k = 0; k < len; k += chunk)
		dkim_msg_feed(&m, msg + k, len - k < chunk ? len - k : chunk);
	if (dkim_msg_end(&m, bh) != 0) {
		fprintf(stderr, "header block over %d bytes\n", HDR_CAP);
		return 4;
	}
	if (dkim_from_domain(m.hdr, m.hlen, domain, &why) != 0) {
		fprintf(stderr, "%s\n", why);
		return 4;
	}
	const struct conf_dkim *dk = dkim_key_find(&cfg->conf, domain, strlen(domain));
	if (dk == NULL)
		return 3;
	if (dkim_signed_by(m.hdr, m.hlen, dk->domain.name))
		return 2;
	struct dkim_spec spec = { dk->domain.name, dk->selector, dk->headers, now };
	if (dkim_prepare(m.hdr, m.hlen, bh, &spec, &p, &why) != 0) {
		fprintf(stderr, "%s\n", why);
		return 4;
	}
	size_t siglen = dkim_key_sign(cfg->tables.dkim[dk - cfg->conf.dkim], p.hash, sig, sizeof sig);
	size_t n = dkim_header_finish(&p, sig, siglen, out, sizeof out);
	if (siglen == 0 || n >= sizeof out) {
		fprintf(stderr, "signing failed\n");
		return 4;
	}
	if (fwrite(out, 1, n, stdout) != n || fwrite(msg, 1, len, stdout) != len || fflush(stdout) != 0)
		return 111;
	return 0;
}

int main(int argc, char **argv)
{
	char err[1024];
	size_t len, chunk;
	struct config *cfg;
	char *msg;
	int rc;

	if (argc < 2 || argc > 4)
		return 100;
	if ((cfg = config_load(argv[1], err, sizeof err)) == NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if ((msg = read_stdin(&len)) == NULL) {
		config_unref(cfg);
		return 111;
	}
	chunk = argc >= 3 ? strtoul(argv[2], NULL, 10) : 0;
	if (chunk == 0)
		chunk = len ? len : 1;
	rc = sign(cfg, msg, len, chunk, argc == 4 ? strtoull(argv[3], NULL, 10) : (uint64_t)time(NULL));
	free(msg);
	config_unref(cfg);
	return rc;
}
