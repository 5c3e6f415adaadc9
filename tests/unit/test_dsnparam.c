/*
 * tests/unit/test_dsnparam.c -- RFC 3461 parameters (policy/dsnparam.h).
 * Each value is handed over in a heap copy of exactly its length, so an
 * over-read shows under ASan; every prefix of every case is parsed too.
 */
#include <stdlib.h>
#include <string.h>

#include "policy/dsnparam.h"
#include "tests/unit/t.h"

/* v in a buffer of exactly its length (NULL stays NULL). */
static char *exact(const char *v, size_t n)
{
	char *p;

	if (v == NULL)
		return NULL;
	p = malloc(n ? n : 1);
	memcpy(p, v, n);
	return p;
}

static int mail1(struct dsnparam_mail *m, const char *k, const char *v)
{
	size_t kl = strlen(k), vl = v ? strlen(v) : 0;
	char *kp = exact(k, kl), *vp = exact(v, vl);
	int rc = dsnparam_mail(m, kp, kl, vp, vl);

	if (rc == DSNP_OK && m->envid == vp && vp != NULL) {
		m->envid = v;        /* point at the caller's copy, which lives on */
	}
	free(kp);
	free(vp);
	return rc;
}

static int rcpt1(struct dsnparam_rcpt *r, const char *k, const char *v)
{
	size_t kl = strlen(k), vl = v ? strlen(v) : 0;
	char *kp = exact(k, kl), *vp = exact(v, vl);
	int rc = dsnparam_rcpt(r, kp, kl, vp, vl);

	if (rc == DSNP_OK && r->orcpt == vp && vp != NULL)
		r->orcpt = v;
	free(kp);
	free(vp);
	return rc;
}

static void test_notify(void)
{
	static const struct { const char *v; int rc; unsigned bits; } c[] = {
		{ "NEVER", DSNP_OK, DSN_NOTIFY_NEVER },
		{ "never", DSNP_OK, DSN_NOTIFY_NEVER },
		{ "SUCCESS", DSNP_OK, DSN_NOTIFY_SUCCESS },
		{ "FAILURE", DSNP_OK, DSN_NOTIFY_FAILURE },
		{ "Delay", DSNP_OK, DSN_NOTIFY_DELAY },
		{ "SUCCESS,FAILURE,DELAY", DSNP_OK, 7 },
		{ "delay,success", DSNP_OK, DSN_NOTIFY_DELAY | DSN_NOTIFY_SUCCESS },
		{ "DELAY,DELAY", DSNP_OK, DSN_NOTIFY_DELAY },
		{ "", DSNP_NOTIFY_BAD, 0 },
		{ ",", DSNP_NOTIFY_BAD, 0 },
		{ "SUCCESS,", DSNP_NOTIFY_BAD, 0 },
		{ ",SUCCESS", DSNP_NOTIFY_BAD, 0 },
		{ "SUCCESS,,DELAY", DSNP_NOTIFY_BAD, 0 },
		{ "SUCCES", DSNP_NOTIFY_BAD, 0 },
		{ "SUCCESSX", DSNP_NOTIFY_BAD, 0 },
		{ "NEVER,SUCCESS", DSNP_NOTIFY_CONFLICT, 0 },
		{ "FAILURE,NEVER", DSNP_NOTIFY_CONFLICT, 0 },
		{ "NEVER,NEVER", DSNP_OK, DSN_NOTIFY_NEVER },
		{ NULL, DSNP_NOTIFY_BAD, 0 },
	};

	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		struct dsnparam_rcpt r;
		int rc;

		memset(&r, 0, sizeof r);
		rc = rcpt1(&r, "NOTIFY", c[i].v);
		CHECKF(rc == c[i].rc, "NOTIFY=%s: %d", c[i].v ? c[i].v : "(none)", rc);
		if (rc == DSNP_OK) {
			CHECKF(r.notify == c[i].bits, "NOTIFY=%s: bits %u", c[i].v, r.notify);
			CHECK(dsnparam_notify_valid(r.notify));
			/* Given twice, even alike: refused. */
			CHECK(rcpt1(&r, "notify", c[i].v) == DSNP_NOTIFY_TWICE);
		}
	}
}

static void test_notify_text(void)
{
	for (unsigned b = 0; b < 32; b++) {
		char t[32];
		uint8_t back = 0;
		size_t n = dsnparam_notify_text(b, t);

		if (!dsnparam_notify_valid(b))
			continue;
		CHECK(n == strlen(t));
		if (b == 0) {
			CHECK(n == 0);
			continue;
		}
		CHECKF(dsnparam_notify_parse(t, n, &back) == 0 && back == b, "%u -> %s", b, t);
	}
	CHECK(!dsnparam_notify_valid(DSN_NOTIFY_NEVER | DSN_NOTIFY_DELAY));
	CHECK(!dsnparam_notify_valid(0x10));
	CHECK(dsnparam_notify_valid(7));
}

static void test_ret_envid(void)
{
	static const struct { const char *k, *v; int rc; } c[] = {
		{ "RET", "FULL", DSNP_OK },
		{ "ret", "hdrs", DSNP_OK },
		{ "RET", "", DSNP_RET_BAD },
		{ "RET", NULL, DSNP_RET_BAD },
		{ "RET", "FULLX", DSNP_RET_BAD },
		{ "RET", "HDR", DSNP_RET_BAD },
		{ "ENVID", "QQ314159", DSNP_OK },
		{ "envid", "a+2Bb+3Dc", DSNP_OK },
		{ "ENVID", "with+20space", DSNP_OK },
		{ "ENVID", "", DSNP_ENVID_BAD },
		{ "ENVID", NULL, DSNP_ENVID_BAD },
		{ "ENVID", "a+2bb", DSNP_ENVID_BAD },     /* lower-case hex */
		{ "ENVID", "a+2", DSNP_ENVID_BAD },
		{ "ENVID", "a+", DSNP_ENVID_BAD },
		{ "ENVID", "a=b", DSNP_ENVID_BAD },
		{ "ENVID", "a+0D+0Ab", DSNP_ENVID_BAD },  /* CR LF decoded */
		{ "ENVID", "+7F", DSNP_ENVID_BAD },
		{ "ENVID", "+E9", DSNP_ENVID_BAD },
		{ "ENVID", "+00", DSNP_ENVID_BAD },
		{ "SIZE", "10", DSNP_OTHER },
		{ "NOTIFY", "NEVER", DSNP_OTHER },        /* a RCPT parameter */
		{ "BODY", "8BITMIME", DSNP_OTHER },
	};

	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		struct dsnparam_mail m;
		int rc;

		memset(&m, 0, sizeof m);
		rc = mail1(&m, c[i].k, c[i].v);
		CHECKF(rc == c[i].rc, "%s=%s: %d", c[i].k, c[i].v ? c[i].v : "(none)", rc);
		if (rc == DSNP_OK && strcasecmp(c[i].k, "RET") == 0) {
			CHECK(m.ret == (c[i].v[0] == 'F' ? DSN_RET_FULL : DSN_RET_HDRS));
			CHECK(mail1(&m, "RET", "FULL") == DSNP_RET_TWICE);
		}
		if (rc == DSNP_OK && strcasecmp(c[i].k, "ENVID") == 0) {
			CHECK(m.envidlen == strlen(c[i].v));
			CHECK(mail1(&m, "ENVID", "x") == DSNP_ENVID_TWICE);
		}
	}
	{
		char v[DSN_ENVID_MAX + 2];
		struct dsnparam_mail m;

		memset(v, 'e', sizeof v);
		v[DSN_ENVID_MAX] = 0;
		memset(&m, 0, sizeof m);
		CHECK(mail1(&m, "ENVID", v) == DSNP_OK);
		v[DSN_ENVID_MAX] = 'e';
		v[DSN_ENVID_MAX + 1] = 0;
		memset(&m, 0, sizeof m);
		CHECK(mail1(&m, "ENVID", v) == DSNP_ENVID_BAD);
	}
}

static void test_orcpt(void)
{
	static const struct { const char *v; int ok; } c[] = {
		{ "rfc822;user@example.com", 1 },
		{ "RFC822;a+2Bb@example.com", 1 },
		{ "x-local;anything+20goes", 1 },
		{ "utf-8;caf\\x{E9}@example.com", 1 },
		{ "UTF-8;\\x{1F600}@example.com", 1 },
		{ "utf-8;a\\x{2B}b@example.com", 1 },
		{ "utf-8;a\\x{20}b", 1 },
		{ "utf-8;a\\x{10FFFF}", 1 },
		{ "utf-8;a\\x{41}", 0 },            /* a QCHAR needs no escape */
		{ "utf-8;a\\x{00E9}", 0 },          /* not the shortest form */
		{ "utf-8;a\\x{D800}", 0 },          /* a surrogate */
		{ "utf-8;a\\x{110000}", 0 },
		{ "utf-8;a\\x{00}", 0 },
		{ "utf-8;a\\x{0}", 0 },
		{ "utf-8;a\\x{E9", 0 },
		{ "utf-8;a\\X{E9}", 0 },
		{ "utf-8;a+2Bb", 0 },               /* '+' is not in utf-8-addr-xtext */
		{ "utf-8;a\\b", 0 },
		{ "utf-8;", 0 },
		{ ";a@b", 0 },
		{ "rfc822;", 0 },
		{ "rfc822", 0 },
		{ "a@b", 0 },
		{ "rfc 822;a@b", 0 },
		{ "rfc@822;a@b", 0 },
		{ "rfc822;a+0Ab@c", 0 },
		{ "rfc822;a=b@c", 0 },
		{ "rfc822;a+2bb@c", 0 },
		{ "", 0 },
		{ NULL, 0 },
	};

	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		struct dsnparam_rcpt r;
		int rc;

		memset(&r, 0, sizeof r);
		rc = rcpt1(&r, "ORCPT", c[i].v);
		CHECKF(rc == (c[i].ok ? DSNP_OK : DSNP_ORCPT_BAD), "ORCPT=%s: %d",
		       c[i].v ? c[i].v : "(none)", rc);
		if (rc == DSNP_OK) {
			CHECK(r.orcptlen == strlen(c[i].v));
			CHECK(rcpt1(&r, "orcpt", c[i].v) == DSNP_ORCPT_TWICE);
		}
	}
	{
		char v[DSN_ORCPT_MAX + 2];
		struct dsnparam_rcpt r;

		memcpy(v, "rfc822;", 7);
		memset(v + 7, 'o', sizeof v - 7);
		v[DSN_ORCPT_MAX] = 0;
		memset(&r, 0, sizeof r);
		CHECK(rcpt1(&r, "ORCPT", v) == DSNP_OK);
		v[DSN_ORCPT_MAX] = 'o';
		v[DSN_ORCPT_MAX + 1] = 0;
		memset(&r, 0, sizeof r);
		CHECK(rcpt1(&r, "ORCPT", v) == DSNP_ORCPT_BAD);
	}
	{
		struct dsnparam_rcpt r;

		memset(&r, 0, sizeof r);
		CHECK(rcpt1(&r, "RET", "FULL") == DSNP_OTHER);
		CHECK(rcpt1(&r, "ENVID", "x") == DSNP_OTHER);
	}
}

/* Every prefix of every value, in exact buffers: no over-read, and a
 * value taken is always one the validators take. */
static void test_prefixes(void)
{
	static const char *v[] = {
		"SUCCESS,FAILURE,DELAY", "NEVER", "rfc822;a+2Bb@example.com",
		"utf-8;caf\\x{E9}@ex\\x{1F600}.com", "a+2Bb+3Dc", "HDRS",
	};
	static const char *keys[] = { "NOTIFY", "ORCPT", "RET", "ENVID" };

	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		size_t n = strlen(v[i]);
		for (size_t len = 0; len <= n; len++) {
			char *p = exact(v[i], len);
			for (size_t k = 0; k < 4; k++) {
				struct dsnparam_mail m;
				struct dsnparam_rcpt r;
				int rc;

				memset(&m, 0, sizeof m);
				memset(&r, 0, sizeof r);
				rc = dsnparam_rcpt(&r, keys[k], strlen(keys[k]), p, len);
				if (rc == DSNP_OK && r.orcpt)
					CHECK(dsnparam_orcpt_ok(p, len));
				if (rc == DSNP_OK)
					CHECK(dsnparam_notify_valid(r.notify));
				rc = dsnparam_mail(&m, keys[k], strlen(keys[k]), p, len);
				if (rc == DSNP_OK && m.envid)
					CHECK(dsnparam_envid_ok(p, len));
			}
			free(p);
		}
	}
}

static void test_replies(void)
{
	CHECK(strcmp(dsnparam_reply(DSNP_NOTIFY_BAD), "501 5.5.4 Bad NOTIFY parameter") == 0);
	CHECK(strcmp(dsnparam_reply(DSNP_NOTIFY_CONFLICT),
	             "501 5.5.4 Bad NOTIFY parameter: NEVER with another value") == 0);
	CHECK(strcmp(dsnparam_reply(DSNP_ORCPT_BAD), "501 5.5.4 Bad ORCPT parameter") == 0);
	CHECK(strcmp(dsnparam_reply(DSNP_RET_BAD), "501 5.5.4 Bad RET parameter") == 0);
	CHECK(strcmp(dsnparam_reply(DSNP_ENVID_BAD), "501 5.5.4 Bad ENVID parameter") == 0);
	CHECK(strcmp(dsnparam_reply(DSNP_NOTIFY_TWICE), "501 5.5.4 Duplicate NOTIFY parameter") == 0);
	CHECK(strcmp(dsnparam_reply(DSNP_ORCPT_TWICE), "501 5.5.4 Duplicate ORCPT parameter") == 0);
	CHECK(strcmp(dsnparam_reply(DSNP_RET_TWICE), "501 5.5.4 Duplicate RET parameter") == 0);
	CHECK(strcmp(dsnparam_reply(DSNP_ENVID_TWICE), "501 5.5.4 Duplicate ENVID parameter") == 0);
	CHECK(dsnparam_reply(DSNP_OK) == NULL && dsnparam_reply(DSNP_OTHER) == NULL);
}

static void test_decode(void)
{
	char out[64];

	CHECK(dsnparam_xtext_decode("a+2Bb+3D", 8, out, sizeof out) == 4 && strcmp(out, "a+b=") == 0);
	CHECK(dsnparam_xtext_decode("abcdef", 6, out, 4) == 6 && strcmp(out, "abc") == 0);
	CHECK(dsnparam_xtext_decode("a+2", 3, out, sizeof out) == (size_t)-1);
	CHECK(dsnparam_xtext_decode("a b", 3, out, sizeof out) == (size_t)-1);

	CHECK(dsnparam_orcpt_text("rfc822;a+2Bb@c", 14, 0, out, sizeof out) == 12 &&
	      strcmp(out, "rfc822;a+b@c") == 0);
	{
		const char *u = "utf-8;caf\\x{E9}+\\x{2B}";
		size_t n = strlen(u);
		/* 7-bit as it came; unicode: the non-ASCII character decoded, the
		 * escaped '+' kept escaped (utf-8-addr-unitext). */
		CHECK(dsnparam_orcpt_text(u, n, 0, out, sizeof out) == n && strcmp(out, u) == 0);
	}
	{
		const char *u = "utf-8;caf\\x{E9}\\x{2B}";
		CHECK(dsnparam_orcpt_text(u, strlen(u), 1, out, sizeof out) == strlen("utf-8;caf\xc3\xa9\\x{2B}"));
		CHECK(strcmp(out, "utf-8;caf\xc3\xa9\\x{2B}") == 0);
	}
	CHECK(dsnparam_utf8_addr("caf\xc3\xa9@x", 1, out, sizeof out) == 7 &&
	      strcmp(out, "caf\xc3\xa9@x") == 0);
	CHECK(dsnparam_utf8_addr("caf\xc3\xa9@x", 0, out, sizeof out) == strlen("caf\\x{E9}@x") &&
	      strcmp(out, "caf\\x{E9}@x") == 0);
	CHECK(dsnparam_utf8_addr("a+b=c\\d e@\xf0\x9f\x98\x80", 0, out, sizeof out) > 0 &&
	      strcmp(out, "a\\x{2B}b\\x{3D}c\\x{5C}d\\x{20}e@\\x{1F600}") == 0);
	CHECK(dsnparam_utf8_addr("a\xff\xc3@x", 1, out, sizeof out) > 0 &&
	      strcmp(out, "a\\x{FFFD}\\x{FFFD}@x") == 0);
	/* What utf8_addr writes in 7 bits is a valid ORCPT address. */
	{
		char orcpt[80] = "utf-8;";
		dsnparam_utf8_addr("r\xc3\xa9+x@\xe4\xbe\x8b.\xe6\xb5\x8b", 0, orcpt + 6, sizeof orcpt - 6);
		CHECK(dsnparam_orcpt_ok(orcpt, strlen(orcpt)));
	}
}

int main(void)
{
	RUN(test_notify);
	RUN(test_notify_text);
	RUN(test_ret_envid);
	RUN(test_orcpt);
	RUN(test_prefixes);
	RUN(test_replies);
	RUN(test_decode);
	return t_main_end();
}
