/*
 * tests/unit/test_auth.c -- the pure pieces of SMTP AUTH: base64, SASL
 * PLAIN/LOGIN messages, SHA-crypt, the users file, the failure table.
 * SHA-crypt vectors are those of Drepper's specification (the same that
 * glibc's crypt() gives); the Python tests cross-check `openssl passwd`.
 */
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "policy/authfail.h"
#include "policy/base64.h"
#include "policy/sasl.h"
#include "policy/shacrypt.h"
#include "policy/users.h"

static void test_base64(void)
{
	static const struct { const char *plain, *b64; } v[] = { /* RFC 4648 section 10 */
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
	};
	unsigned char out[64];
	char enc[64];
	size_t n;

	for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
		size_t pl = strlen(v[k].plain), bl = strlen(v[k].b64);
		CHECKF(base64_decode(v[k].b64, bl, 0, out, sizeof out, &n) == 0 && n == pl &&
		       memcmp(out, v[k].plain, pl) == 0, "%s", v[k].b64);
		CHECK(base64_encode((const unsigned char *)v[k].plain, pl, enc, sizeof enc) == bl);
		CHECK(strcmp(enc, v[k].b64) == 0);
		/* One byte short of room fails; exact room works. */
		if (pl > 0) {
			CHECK(base64_decode(v[k].b64, bl, 0, out, pl - 1, &n) == -1);
			CHECK(base64_decode(v[k].b64, bl, 0, out, pl, &n) == 0);
		}
	}
	static const char *const bad[] = {
		"Zg", "Zg=", "Z===", "=Zg=", "Zg==Zg==", "Zm9v!", "Zh==", "Zm9=", "Zg= =", "Zm 9v",
		"Zg==\n", "AB=C",
	};
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
		CHECKF(base64_decode(bad[k], strlen(bad[k]), 0, out, sizeof out, &n) == -1, "%s", bad[k]);
	/* PEM mode skips white space, but still wants whole groups. */
	CHECK(base64_decode(" Zm9v\r\nYmFy \n", 13, 1, out, sizeof out, &n) == 0 && n == 6);
	CHECK(base64_decode("Zm9\nv", 5, 1, out, sizeof out, &n) == 0 && n == 3);
	CHECK(base64_decode("Zg==\n", 5, 1, out, sizeof out, &n) == 0 && n == 1);
	CHECK(base64_decode("Zg==\nZg==", 9, 1, out, sizeof out, &n) == -1);
	/* Truncated output buffer: NUL-terminated, length needed returned. */
	CHECK(base64_encode((const unsigned char *)"foobar", 6, enc, 5) == 8 && strcmp(enc, "Zm9v") == 0);
}

static void test_sasl_plain(void)
{
	unsigned char msg[SASL_MSG_MAX + 3];
	struct sasl_creds c;
	size_t n;

	/* "\0alice\0secret" and "alice\0alice\0secret" */
	CHECK(sasl_response("AGFsaWNlAHNlY3JldA==", 20, 0, msg, sizeof msg, &n) == SASL_OK && n == 13);
	CHECK(sasl_plain(msg, n, &c) == SASL_OK);
	CHECK(c.authzidlen == 0 && strcmp(c.authcid, "alice") == 0 && strcmp(c.passwd, "secret") == 0);
	CHECK(sasl_response("YWxpY2UAYWxpY2UAc2VjcmV0", 24, 1, msg, sizeof msg, &n) == SASL_OK);
	CHECK(sasl_plain(msg, n, &c) == SASL_OK && strcmp(c.authzid, "alice") == 0);
	/* Cancel, empty initial response, garbage. */
	CHECK(sasl_response("*", 1, 0, msg, sizeof msg, &n) == SASL_ABORT);
	CHECK(sasl_response("=", 1, 1, msg, sizeof msg, &n) == SASL_OK && n == 0);
	CHECK(sasl_response("=", 1, 0, msg, sizeof msg, &n) == SASL_EBASE64);
	CHECK(sasl_response("not base64!", 11, 0, msg, sizeof msg, &n) == SASL_EBASE64);
	/* Wrong shapes of PLAIN: no NUL, one NUL, three, empty authcid or password. */
	CHECK(sasl_plain((const unsigned char *)"alice", 5, &c) == SASL_EFORMAT);
	CHECK(sasl_plain((const unsigned char *)"alice\0secret", 12, &c) == SASL_EFORMAT);
	CHECK(sasl_plain((const unsigned char *)"\0a\0b\0c", 6, &c) == SASL_EFORMAT);
	CHECK(sasl_plain((const unsigned char *)"\0\0secret", 8, &c) == SASL_EFORMAT);
	CHECK(sasl_plain((const unsigned char *)"\0alice\0", 7, &c) == SASL_EFORMAT);
	/* Field limits: 255 octets each. */
	{
		unsigned char big[SASL_MSG_MAX];
		memset(big, 'p', sizeof big);
		big[0] = 0;
		big[1] = 'u';
		big[2] = 0;
		CHECK(sasl_plain(big, 3 + 255, &c) == SASL_OK && c.passwdlen == 255);
		CHECK(sasl_plain(big, 3 + 256, &c) == SASL_ETOOLONG);
		CHECK(c.passwd[0] == 0); /* wiped */
	}
	/* A response longer than any message could be. */
	{
		static char line[4000];
		memset(line, 'A', sizeof line);
		CHECK(sasl_response(line, sizeof line, 0, msg, sizeof msg, &n) == SASL_ETOOLONG);
		CHECK(sasl_response(line, 1024, 0, msg, sizeof msg, &n) == SASL_OK && n == 768);
	}
	/* LOGIN fields: no NUL inside. */
	CHECK(sasl_login_field((const unsigned char *)"alice", 5, c.authcid, &c.authcidlen) == SASL_OK);
	CHECK(sasl_login_field((const unsigned char *)"al\0ce", 5, c.authcid, &c.authcidlen) == SASL_EFORMAT);
}

static const struct { const char *setting, *key, *hash; } crypt_vectors[] = {
	{ "$5$saltstring", "Hello world!",
	  "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5" },
	{ "$5$rounds=10000$saltstringsaltstring", "Hello world!",
	  "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA" },
	{ "$5$rounds=5000$toolongsaltstring", "This is just a test",
	  "$5$rounds=5000$toolongsaltstrin$Un/5jzAHMgOGZ5.mWJpuVolil07guHPvOW8mGRcvxa5" },
	{ "$5$rounds=123456$asaltof16chars..", "a short string",
	  "$5$rounds=123456$asaltof16chars..$gP3VQ/6X7UUEW3HkBn2w1/Ptq2jxPyzV/cZKmF/wJvD" },
	{ "$6$saltstring", "Hello world!",
	  "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1" },
	{ "$6$rounds=10000$saltstringsaltstring", "Hello world!",
	  "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v." },
	{ "$6$rounds=1400$anotherlongsaltstring",
	  "a very much longer text to encrypt.  This one even stretches over morethan one line.",
	  "$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1" },
	{ "$6$rounds=77777$short", "we have a short salt string but not a short password",
	  "$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0" },
	{ "$6$x", "", "$6$x$QSmr1Bx2g4O6BzKvdkgOcyU6H91X6I/XBv5pSalMhSPkwdH6Beo3F455xZJg0v//bxVK5F4OE5k1.0xuR26MK0" },
};

static void test_shacrypt(void)
{
	char out[SHACRYPT_MAX], out2[SHACRYPT_MAX];

	for (size_t k = 0; k < sizeof crypt_vectors / sizeof crypt_vectors[0]; k++) {
		const char *h = crypt_vectors[k].hash, *key = crypt_vectors[k].key;
		size_t n = shacrypt(key, strlen(key), crypt_vectors[k].setting,
		                    strlen(crypt_vectors[k].setting), out, sizeof out);
		CHECKF(n == strlen(h) && strcmp(out, h) == 0, "vector %zu: %s", k, out);
		/* The hash is its own setting; verify accepts it, not a near miss. */
		CHECK(shacrypt(key, strlen(key), h, strlen(h), out2, sizeof out2) == n && strcmp(out2, h) == 0);
		CHECK(shacrypt_valid(h, strlen(h)));
		CHECK(shacrypt_verify(key, strlen(key), h, strlen(h)));
		CHECK(!shacrypt_verify("x", 1, h, strlen(h)));
		CHECK(!shacrypt_verify(key, strlen(key), h, strlen(h) - 1));
	}
	/* Rounds below the minimum count as the minimum (the spec's rule). */
	CHECK(shacrypt("pw", 2, "$6$rounds=10$roundstoolow", 25, out, sizeof out) > 0);
	CHECK(shacrypt("pw", 2, "$6$rounds=1000$roundstoolow", 27, out2, sizeof out2) > 0);
	CHECK(strncmp(out, "$6$rounds=1000$", 15) == 0 && strcmp(out, out2) == 0);
	/* Not SHA-crypt. */
	static const char *const bad[] = {
		"$1$salt$abc", "$7$x", "$5", "", "$6$rounds=$x", "$6$rounds=abc$x",
		"$6$rounds=99999999999$x", "$6$sa:lt", "6$salt",
	};
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
		CHECKF(shacrypt("pw", 2, bad[k], strlen(bad[k]), out, sizeof out) == 0, "%s", bad[k]);
	CHECK(!shacrypt_valid("$6$salt$short", 13));
	CHECK(!shacrypt_valid("$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc!", 57));
	CHECK(shacrypt_equal("abc", "abc", 3) && !shacrypt_equal("abc", "abd", 3));
}

static const char users_text[] =
	"# users\n"
	"\n"
	"bob:$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5\r\n"
	"alice:$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1:alice@example.org,@Example.NET\n";

static void test_users(void)
{
	char err[256];
	struct users *u = users_parse(users_text, sizeof users_text - 1, "users", err, sizeof err);
	const struct user *a, *b;

	CHECKF(u != NULL, "%s", err);
	if (u == NULL)
		return;
	CHECK(u->n == 2);
	a = users_find(u, "alice", 5);
	b = users_find(u, "bob", 3);
	CHECK(a != NULL && b != NULL && a->line == 4 && b->line == 3);
	CHECK(users_find(u, "alic", 4) == NULL && users_find(u, "alicex", 6) == NULL);
	CHECK(users_find(u, "", 0) == NULL);
	CHECK(users_authenticate(u, "alice", 5, "Hello world!", 12) == a);
	CHECK(users_authenticate(u, "bob", 3, "Hello world!", 12) == b);
	CHECK(users_authenticate(u, "alice", 5, "hello world!", 12) == NULL);
	CHECK(users_authenticate(u, "carol", 5, "Hello world!", 12) == NULL);
	/* Senders: bob has no list; alice has one address and one domain. */
	CHECK(users_sender_allowed(b, "anyone@anywhere.test") && users_sender_allowed(b, ""));
	CHECK(users_sender_allowed(a, "alice@example.org") && users_sender_allowed(a, "ALICE@example.org"));
	CHECK(users_sender_allowed(a, "x@example.net") && users_sender_allowed(a, "y@EXAMPLE.net"));
	CHECK(!users_sender_allowed(a, "bob@example.org") && !users_sender_allowed(a, ""));
	CHECK(!users_sender_allowed(a, "x@sub.example.net") && !users_sender_allowed(a, "x@example.network"));
	users_free(u);

	static const struct { const char *text, *err; } bad[] = {
		{ "alice\n", "u:1: want name:hash[:senders]" },
		{ ":$6$x$y\n", "u:1: user name empty or over 255 octets" },
		{ "al ice:$6$x\n", "u:1: space or control character in user name" },
		{ "alice:secret\n", "u:1: not a $6$ or $5$ hash (make one with: moat passwd)" },
		{ "alice:$1$abc$def\n", "u:1: not a $6$ or $5$ hash (make one with: moat passwd)" },
		{ "bob:$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5:\n",
		  "u:1: bad sender (want local@domain or @domain, comma-separated)" },
		{ "bob:$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5:a@b,,c@d\n",
		  "u:1: bad sender (want local@domain or @domain, comma-separated)" },
		{ "bob:$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5:@[1.2.3.4]\n",
		  "u:1: bad sender (want local@domain or @domain, comma-separated)" },
		{ "bob:$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5\n\n"
		  "bob:$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5\n",
		  "u:3: user given twice (first on line 1)" },
	};
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		u = users_parse(bad[k].text, strlen(bad[k].text), "u", err, sizeof err);
		CHECKF(u == NULL && strcmp(err, bad[k].err) == 0, "case %zu: %s", k, err);
		users_free(u);
	}
	u = users_parse("a:$5$x\0y", 8, "u", err, sizeof err);
	CHECK(u == NULL && strcmp(err, "u:1: NUL byte in line") == 0);
	u = users_parse("", 0, "u", err, sizeof err);
	CHECK(u != NULL && u->n == 0 && users_authenticate(u, "a", 1, "b", 1) == NULL);
	users_free(u);
}

static void test_authfail(void)
{
	static struct authfail t;
	struct ipaddr a4 = { IP_V4, { 192, 0, 2, 1 } }, b4 = { IP_V4, { 192, 0, 2, 2 } };
	struct ipaddr a6 = { IP_V6, { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1 } };
	struct ipaddr a6b = a6, mapped = { IP_V6, { [10] = 0xff, [11] = 0xff, 192, 0, 2, 1 } };

	a6b.a[15] = 99; /* same /64 */
	authfail_init(&t);
	CHECK(authfail_blocked(&t, &a4, 100) == 0);
	CHECK(authfail_record(&t, &a4, 100, 3, 60) == 1);
	CHECK(authfail_record(&t, &mapped, 101, 3, 60) == 2); /* ::ffff:192.0.2.1 is 192.0.2.1 */
	CHECK(authfail_blocked(&t, &a4, 101) == 0);
	CHECK(authfail_record(&t, &b4, 101, 3, 60) == 1);
	CHECK(authfail_record(&t, &a4, 102, 3, 60) == 3);
	CHECK(authfail_blocked(&t, &a4, 102) == 60 && authfail_blocked(&t, &a4, 161) == 1);
	CHECK(authfail_blocked(&t, &a4, 162) == 0 && authfail_blocked(&t, &b4, 102) == 0);
	/* A success does not lift a block; after it, counting starts over. */
	authfail_clear(&t, &a4);
	CHECK(authfail_blocked(&t, &a4, 150) > 0);
	CHECK(authfail_record(&t, &a4, 170, 3, 60) == 1);
	/* Old failures are forgotten after the window. */
	CHECK(authfail_record(&t, &b4, 200, 3, 60) == 1);
	/* IPv6 counts per /64. */
	CHECK(authfail_record(&t, &a6, 300, 2, 60) == 1);
	CHECK(authfail_record(&t, &a6b, 300, 2, 60) == 2 && authfail_blocked(&t, &a6, 301) > 0);
	/* Thousands of addresses: the table stays bounded and still counts. */
	for (unsigned i = 0; i < 3 * AUTHFAIL_SLOTS; i++) {
		struct ipaddr x = { IP_V4, { 10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i } };
		authfail_record(&t, &x, 400 + i / 100, 5, 600);
	}
	CHECK(authfail_record(&t, &b4, 1000, 3, 60) >= 1);
	CHECK(authfail_delay_ms(1, 100) == 100 && authfail_delay_ms(3, 100) == 300);
	CHECK(authfail_delay_ms(50, 100) == 1000 && authfail_delay_ms(5, 0) == 0);
}

int main(void)
{
	RUN(test_base64);
	RUN(test_sasl_plain);
	RUN(test_shacrypt);
	RUN(test_users);
	RUN(test_authfail);
	return t_main_end();
}
