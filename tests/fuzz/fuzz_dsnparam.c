/*
 * tests/fuzz/fuzz_dsnparam.c -- RFC 3461 parameters (policy/dsnparam.h)
 * on hostile bytes.  The input is a run of parameters "KEY=VALUE" (or
 * "KEY") separated by NUL bytes, handed to dsnparam_mail() and
 * dsnparam_rcpt() as a session would, each from a heap copy of exactly
 * its length.  Invariants: a result is one of the enum's; an error has
 * its 501 reply; what is taken passes the validators, points into the
 * value, and decodes to printable ASCII (ENVID) or a report field of
 * bounded length; NOTIFY bits print back to themselves; a recipient
 * address in RFC 6533's 7-bit form is a valid utf-8 ORCPT.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/dsnparam.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_result(int rc)
{
	REQUIRE(rc >= DSNP_ENVID_TWICE && rc <= DSNP_OTHER);
	if (rc < 0) {
		const char *t = dsnparam_reply(rc);
		REQUIRE(t != NULL && strncmp(t, "501 5.5.4 ", 10) == 0);
	}
}

static void one(struct dsnparam_mail *m, struct dsnparam_rcpt *r, const char *p, size_t n)
{
	const char *eq = memchr(p, '=', n);
	size_t kl = eq ? (size_t)(eq - p) : n;
	char *k = malloc(kl ? kl : 1), *v = NULL;
	size_t vl = eq ? n - kl - 1 : 0;
	uint8_t notify = r->notify;
	const char *envid = m->envid, *orcpt = r->orcpt;
	int rc;

	memcpy(k, p, kl);
	if (eq) {
		v = malloc(vl ? vl : 1);
		memcpy(v, eq + 1, vl);
	}
	rc = dsnparam_mail(m, k, kl, v, vl);
	check_result(rc);
	if (rc != DSNP_OK)
		REQUIRE(m->envid == envid);
	if (m->envid != envid) {
		char dec[DSN_ENVID_MAX + 1];
		size_t dl;
		REQUIRE(m->envid == v && m->envidlen == vl && dsnparam_envid_ok(v, vl));
		dl = dsnparam_xtext_decode(v, vl, dec, sizeof dec);
		REQUIRE(dl <= vl && strlen(dec) == dl);
		for (size_t i = 0; i < dl; i++)
			REQUIRE(dec[i] >= 0x20 && dec[i] <= 0x7e);
		m->envid = "x";      /* v is freed below */
	}
	rc = dsnparam_rcpt(r, k, kl, v, vl);
	check_result(rc);
	if (rc == DSNP_OK && r->notify != notify) {
		char t[32];
		uint8_t back = 0;
		size_t tl = dsnparam_notify_text(r->notify, t);
		REQUIRE(dsnparam_notify_valid(r->notify) && r->notify != 0);
		REQUIRE(dsnparam_notify_parse(t, tl, &back) == 0 && back == r->notify);
	}
	if (r->orcpt != orcpt) {
		char out[4 * DSN_ORCPT_MAX + 16];
		size_t need0, need1;
		REQUIRE(r->orcpt == v && dsnparam_orcpt_ok(v, vl));
		need0 = dsnparam_orcpt_text(v, vl, 0, out, sizeof out);
		REQUIRE(need0 < sizeof out && strlen(out) == need0 && need0 <= vl);
		need1 = dsnparam_orcpt_text(v, vl, 1, out, sizeof out);
		REQUIRE(need1 < sizeof out && strlen(out) == need1);
		for (size_t i = 0; i < need1; i++)
			REQUIRE((unsigned char)out[i] >= 0x20 && out[i] != 0x7f);
		r->orcpt = "x";
	}
	/* The value as a recipient address in RFC 6533's forms. */
	if (v != NULL && vl > 0 && memchr(v, 0, vl) == NULL) {
		char *a = malloc(vl + 1), o[16 * 64 + 16];
		memcpy(a, v, vl);
		a[vl] = 0;
		if (vl <= 64) {
			size_t need = dsnparam_utf8_addr(a, 0, o + 6, sizeof o - 6);
			REQUIRE(need < sizeof o - 6);
			memcpy(o, "utf-8;", 6);
			REQUIRE(need + 6 > DSN_ORCPT_MAX || dsnparam_orcpt_ok(o, need + 6));
			need = dsnparam_utf8_addr(a, 1, o, sizeof o);
			REQUIRE(need < sizeof o && strlen(o) == need);
		}
		free(a);
	}
	free(k);
	free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dsnparam_mail m;
	struct dsnparam_rcpt r;
	const char *p = (const char *)data, *end = p + size;

	memset(&m, 0, sizeof m);
	memset(&r, 0, sizeof r);
	while (p < end) {
		const char *z = memchr(p, 0, (size_t)(end - p));
		size_t n = z ? (size_t)(z - p) : (size_t)(end - p);
		one(&m, &r, p, n);
		p += n + 1;
	}
	return 0;
}
