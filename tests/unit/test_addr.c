/*
 * tests/unit/test_addr.c -- RFC 5321 paths.
 *
 * Each input sits in a heap buffer of exactly its length, so ASan reports
 * any read past it.  Every proper prefix of an accepted path must be refused
 * or parse to something else, and an accepted address written out with
 * addr_format() and parsed again must come back the same.
 */
#include <stdlib.h>

#include "policy/addr.h"
#include "tests/unit/t.h"

#define S(s) s, sizeof(s) - 1

#define NUL ADDR_ALLOW_NULL
#define PM  ADDR_ALLOW_POSTMASTER
#define U8  ADDR_ALLOW_UTF8

struct addr_case {
	const char *path; size_t len;
	unsigned    allow;
	int         result;
	const char *local;  /* expected on ADDR_OK */
	const char *domain;
	unsigned    flags;
};

static const struct addr_case cases[] = {
	/* Plain mailboxes; the domain is lower-cased, the local part is not. */
	{ S("<user@example.com>"), 0, ADDR_OK, "user", "example.com", 0 },
	{ S("<User.Name+tag@Example.COM>"), 0, ADDR_OK, "User.Name+tag", "example.com", 0 },
	{ S("<a@b>"), 0, ADDR_OK, "a", "b", 0 },
	{ S("<a@b-c.d>"), 0, ADDR_OK, "a", "b-c.d", 0 },
	{ S("<a@b--c.d>"), 0, ADDR_OK, "a", "b--c.d", 0 },
	{ S("<a@1.2.3.4>"), 0, ADDR_OK, "a", "1.2.3.4", 0 },
	{ S("<a@xn--bcher-kva.de>"), 0, ADDR_OK, "a", "xn--bcher-kva.de", 0 },
	{ S("<!#$&'*+-/=?^_`{|}~@x>"), 0, ADDR_OK, "!#$&'*+-/=?^_`{|}~", "x", ADDR_F_BANG },
	{ S("<a@b>"), NUL | PM | U8, ADDR_OK, "a", "b", 0 },
	/* A trailing dot on the domain is removed, only one. */
	{ S("<a@b.c.>"), 0, ADDR_OK, "a", "b.c", ADDR_F_TRAILDOT },
	{ S("<a@B.>"), 0, ADDR_OK, "a", "b", ADDR_F_TRAILDOT },
	{ S("<a@b.c..>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@.>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@.b>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@b..c>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	/* Source routes: accepted and dropped. */
	{ S("<@a,@b:user@d>"), 0, ADDR_OK, "user", "d", ADDR_F_ROUTE },
	{ S("<@relay.example:user@D.example>"), 0, ADDR_OK, "user", "d.example", ADDR_F_ROUTE },
	{ S("<@a,b:user@d>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<@a;@b:user@d>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<@:user@d>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<@a.:user@d>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<@a,:user@d>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<@[1.2.3.4]:user@d>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<@a:>"), NUL, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<@a:postmaster>"), PM, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<@a@b:c@d>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	/* Routing characters: flagged, never interpreted. */
	{ S("<user%other@relay.example>"), 0, ADDR_OK, "user%other", "relay.example", ADDR_F_PERCENT },
	{ S("<host!user@example.com>"), 0, ADDR_OK, "host!user", "example.com", ADDR_F_BANG },
	{ S("<a!b%c@d>"), 0, ADDR_OK, "a!b%c", "d", ADDR_F_BANG | ADDR_F_PERCENT },
	/* Quoted local parts, kept with their quotes. */
	{ S("<\"a@b\"@c>"), 0, ADDR_OK, "\"a@b\"", "c", ADDR_F_QUOTED | ADDR_F_AT_IN_LOCAL },
	{ S("<\"a%b\"@c>"), 0, ADDR_OK, "\"a%b\"", "c", ADDR_F_QUOTED | ADDR_F_PERCENT },
	{ S("<\"a!b\"@c>"), 0, ADDR_OK, "\"a!b\"", "c", ADDR_F_QUOTED | ADDR_F_BANG },
	{ S("<\"a\\@b\"@c>"), 0, ADDR_OK, "\"a\\@b\"", "c", ADDR_F_QUOTED | ADDR_F_AT_IN_LOCAL },
	{ S("<\"a b\"@c>"), 0, ADDR_OK, "\"a b\"", "c", ADDR_F_QUOTED },
	{ S("<\"a\\\"b\"@c>"), 0, ADDR_OK, "\"a\\\"b\"", "c", ADDR_F_QUOTED },
	{ S("<\"a\\\\\"@c>"), 0, ADDR_OK, "\"a\\\\\"", "c", ADDR_F_QUOTED },
	{ S("<\"a>b\"@c>"), 0, ADDR_OK, "\"a>b\"", "c", ADDR_F_QUOTED },
	{ S("<\"\"@c>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<\"a\"b@c>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a\"b\"@c>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<\"a@c>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<\"a\\\"@c>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<\"a\\\x01\"@c>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<\"a\x01\"@c>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<\"a\x7f\"@c>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<\"a\tb\"@c>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<\"a\".b@c>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	/* Address literals, kept as sent. */
	{ S("<a@[1.2.3.4]>"), 0, ADDR_OK, "a", "[1.2.3.4]", ADDR_F_LITERAL },
	{ S("<a@[255.255.255.255]>"), 0, ADDR_OK, "a", "[255.255.255.255]", ADDR_F_LITERAL },
	{ S("<a@[01.2.3.4]>"), 0, ADDR_OK, "a", "[01.2.3.4]", ADDR_F_LITERAL },
	{ S("<a@[IPv6:::1]>"), 0, ADDR_OK, "a", "[IPv6:::1]", ADDR_F_LITERAL },
	{ S("<a@[IPv6:2001:DB8::1]>"), 0, ADDR_OK, "a", "[IPv6:2001:DB8::1]", ADDR_F_LITERAL },
	{ S("<a@[IPv6:1:2:3:4:5:6:7:8]>"), 0, ADDR_OK, "a", "[IPv6:1:2:3:4:5:6:7:8]", ADDR_F_LITERAL },
	{ S("<a@[ipv6:::ffff:1.2.3.4]>"), 0, ADDR_OK, "a", "[ipv6:::ffff:1.2.3.4]", ADDR_F_LITERAL },
	{ S("<a@[IPv6:1:2:3:4:5:6:1.2.3.4]>"), 0, ADDR_OK, "a", "[IPv6:1:2:3:4:5:6:1.2.3.4]", ADDR_F_LITERAL },
	{ S("<a@[IPv6:1::]>"), 0, ADDR_OK, "a", "[IPv6:1::]", ADDR_F_LITERAL },
	{ S("<a@[IPv6:::]>"), 0, ADDR_OK, "a", "[IPv6:::]", ADDR_F_LITERAL },
	{ S("<a@[x-tag:any+thing]>"), 0, ADDR_OK, "a", "[x-tag:any+thing]", ADDR_F_LITERAL },
	{ S("<a@[256.1.1.1]>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@[1.2.3]>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@[1.2.3.4.5]>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@[1.2.3.1234]>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@[1..2.3]>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@[IPv6:1:2:3:4:5:6:7:8:9]>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@[IPv6:1:2:3:4:5:6:7]>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@[IPv6:1:2:3:4:5:6:7::]>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@[IPv6:1::2::3]>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@[IPv6:12345::1]>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@[IPv6:1:]>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@[IPv6::1]>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@[IPv6:g::1]>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@[IPv6:1.2.3.4]>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@[IPv6:::1.2.3]>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@[IPv6:]>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@[tag:]>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@[:x]>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@[tag-:x]>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@[tag:a b]>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@[tag:a\\b]>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@[]>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@[1.2.3.4]x>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@[1.2.3.4].>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@[1.2.3.4>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@x.[1.2.3.4]>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	/* Postmaster, bare, only where allowed. */
	{ S("<postmaster>"), PM, ADDR_OK, "postmaster", "", ADDR_F_POSTMASTER },
	{ S("<PostMaster>"), PM, ADDR_OK, "PostMaster", "", ADDR_F_POSTMASTER },
	{ S("<postmaster>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<postmaster>"), NUL | U8, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<postmaste>"), PM, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<postmasters>"), PM, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<\"postmaster\">"), PM, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<postmaster@Example.com>"), 0, ADDR_OK, "postmaster", "example.com", 0 },
	/* The null path, only where allowed. */
	{ S("<>"), NUL, ADDR_OK, "", "", ADDR_F_NULL },
	{ S("<>"), PM | U8, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("< >"), NUL, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<<>>"), NUL, ADDR_ESYNTAX, 0, 0, 0 },
	/* UTF-8: only with SMTPUTF8, and only well-formed. */
	{ S("<\xc3\xbc@example.com>"), 0, ADDR_EUTF8, 0, 0, 0 },
	{ S("<\xc3\xbc@example.com>"), U8, ADDR_OK, "\xc3\xbc", "example.com", ADDR_F_UTF8 },
	{ S("<a@b\xc3\xbc" "cher.de>"), 0, ADDR_EUTF8, 0, 0, 0 },
	{ S("<a@B\xc3\x9c" "CHER.de>"), U8, ADDR_OK, "a", "b\xc3\x9c" "cher.de", ADDR_F_UTF8 },
	{ S("<\"\xc3\xbc x\"@b>"), U8, ADDR_OK, "\"\xc3\xbc x\"", "b", ADDR_F_UTF8 | ADDR_F_QUOTED },
	{ S("<\"\xc3\xbc x\"@b>"), 0, ADDR_EUTF8, 0, 0, 0 },
	{ S("<\xe2\x82\xac@b>"), U8, ADDR_OK, "\xe2\x82\xac", "b", ADDR_F_UTF8 },
	{ S("<\xf0\x9f\x98\x80@b>"), U8, ADDR_OK, "\xf0\x9f\x98\x80", "b", ADDR_F_UTF8 },
	/* UTF-8 only in the route: allowed with SMTPUTF8, dropped with it. */
	{ S("<@\xf0\x9f\x98\x80" "e:a@d>"), 0, ADDR_EUTF8, 0, 0, 0 },
	{ S("<@\xf0\x9f\x98\x80" "e:a@d>"), U8, ADDR_OK, "a", "d", ADDR_F_ROUTE },
	{ S("<\xef\xbf\xbd@b>"), U8, ADDR_OK, "\xef\xbf\xbd", "b", ADDR_F_UTF8 },
	{ S("<\xf4\x8f\xbf\xbf@b>"), U8, ADDR_OK, "\xf4\x8f\xbf\xbf", "b", ADDR_F_UTF8 },
	{ S("<\xc0\xaf@b>"), U8, ADDR_ESYNTAX, 0, 0, 0 },          /* overlong '/' */
	{ S("<\xc1\xbf@b>"), U8, ADDR_ESYNTAX, 0, 0, 0 },          /* overlong */
	{ S("<\xe0\x80\xaf@b>"), U8, ADDR_ESYNTAX, 0, 0, 0 },      /* overlong */
	{ S("<\xf0\x80\x80\xaf@b>"), U8, ADDR_ESYNTAX, 0, 0, 0 },  /* overlong */
	{ S("<\xed\xa0\x80@b>"), U8, ADDR_ESYNTAX, 0, 0, 0 },      /* surrogate */
	{ S("<\xf4\x90\x80\x80@b>"), U8, ADDR_ESYNTAX, 0, 0, 0 },  /* > U+10FFFF */
	{ S("<\xf5\x80\x80\x80@b>"), U8, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<\xff@b>"), U8, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<\x80@b>"), U8, ADDR_ESYNTAX, 0, 0, 0 },              /* lone continuation */
	{ S("<a\xc3@b>"), U8, ADDR_ESYNTAX, 0, 0, 0 },             /* truncated */
	{ S("<a\xe2\x82@b>"), U8, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@b\xc3>"), U8, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<\xc2\x85@b>"), U8, ADDR_ESYNTAX, 0, 0, 0 },          /* C1 control */
	{ S("<a@[1.2.3.\xc3\xbc]>"), U8, ADDR_ESYNTAX, 0, 0, 0 },
	/* Garbage. */
	{ S(""), NUL, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<"), NUL, ADDR_ESYNTAX, 0, 0, 0 },
	{ S(">"), NUL, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("><"), NUL, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("user@example.com"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<user@example.com"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("user@example.com>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("< user@example.com>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<user @example.com>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<user@ example.com>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<user@example.com >"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<user>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<@example.com>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<user@>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@b@c>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a..b@c>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<.a@c>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a.@c>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@-b.c>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@b-.c>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@b.-c>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@b.c->"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@->"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@b_c.d>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a\0b@c>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@c\0>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a\x01@c>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@b\x7f>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@b\r\n>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<<a@b>>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@b>>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@b><c@d>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a(b)@c>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a,b@c>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a:b@c>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a\\b@c>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<a@b;c>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
	{ S("<Name a@b>"), 0, ADDR_ESYNTAX, 0, 0, 0 },
};

/* A heap copy of exactly len bytes: ASan sees a read one past the end. */
static char *exact(const char *s, size_t len)
{
	char *b = malloc(len ? len : 1);
	memcpy(b, s, len);
	return b;
}

static int parse(const char *s, size_t len, unsigned allow, struct addr *a)
{
	char *b = exact(s, len);
	int r = addr_parse_path(b, len, allow, a);
	free(b);
	return r;
}

static int same_addr(const struct addr *a, const struct addr *b)
{
	return a->locallen == b->locallen && a->domainlen == b->domainlen && a->flags == b->flags
	       && memcmp(a->local, b->local, a->locallen) == 0
	       && memcmp(a->domain, b->domain, a->domainlen) == 0;
}

/* addr_format() then parse "<text>" again: the same address comes back. */
static void check_round_trip(const struct addr *a, unsigned allow, size_t i)
{
	char text[ADDR_TEXT_MAX], path[ADDR_TEXT_MAX + 2];
	size_t n = addr_format(a, text, sizeof text);
	struct addr b;

	path[0] = '<';
	memcpy(path + 1, text, n);
	path[n + 1] = '>';
	int r = parse(path, n + 2, allow, &b);
	/* The route and the trailing dot are gone from the text: no flag for them. */
	unsigned want = a->flags & ~(ADDR_F_ROUTE | ADDR_F_TRAILDOT);
	CHECKF(r == ADDR_OK && b.flags == want && b.locallen == a->locallen
	       && b.domainlen == a->domainlen && memcmp(b.local, a->local, a->locallen) == 0
	       && memcmp(b.domain, a->domain, a->domainlen) == 0,
	       "case %zu: round trip of \"%s\" gives %d", i, text, r);
}

static void test_addr_table(void)
{
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct addr_case *c = &cases[i];
		struct addr a;
		memset(&a, 0x5a, sizeof a);
		int r = parse(c->path, c->len, c->allow, &a);
		CHECKF(r == c->result, "case %zu \"%s\": got %d, want %d", i, c->path, r, c->result);
		if (r != ADDR_OK || c->result != ADDR_OK)
			continue;
		CHECKF(a.locallen == strlen(c->local) && strcmp(a.local, c->local) == 0,
		       "case %zu: local \"%s\"", i, a.local);
		CHECKF(a.domainlen == strlen(c->domain) && strcmp(a.domain, c->domain) == 0,
		       "case %zu: domain \"%s\"", i, a.domain);
		CHECKF(a.flags == c->flags, "case %zu: flags %#x, want %#x", i, a.flags, c->flags);
		check_round_trip(&a, c->allow, i);
	}
}

/* Every proper prefix of an accepted path is refused or means another address. */
static void test_addr_prefixes(void)
{
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct addr_case *c = &cases[i];
		struct addr full, part;
		if (c->result != ADDR_OK || parse(c->path, c->len, c->allow, &full) != ADDR_OK)
			continue;
		for (size_t k = 0; k < c->len; k++) {
			int r = parse(c->path, k, c->allow, &part);
			CHECKF(r != ADDR_OK || !same_addr(&full, &part), "case %zu, prefix %zu", i, k);
		}
	}
}

/* Build "<" local "@" label(.label)* ">" on the heap with the given sizes. */
static char *build(size_t local, size_t label, size_t nlabels, size_t *len)
{
	size_t dom = nlabels ? nlabels * (label + 1) - 1 : 0;
	*len = 1 + local + 1 + dom + 1;
	char *b = malloc(*len), *p = b;
	*p++ = '<';
	memset(p, 'l', local);
	p += local;
	*p++ = '@';
	for (size_t i = 0; i < nlabels; i++) {
		if (i > 0)
			*p++ = '.';
		memset(p, 'd', label);
		p += label;
	}
	*p = '>';
	return b;
}

static void test_addr_lengths(void)
{
	static const struct { size_t local, label, nlabels; int result; } t[] = {
		{ 64, 3, 1, ADDR_OK },
		{ 65, 3, 1, ADDR_ETOOLONG },
		{ 1, 63, 1, ADDR_OK },
		{ 1, 64, 1, ADDR_ETOOLONG },
		{ 64, 63, 2, ADDR_OK },
		/* 256 octets in all, with the brackets, is the most. */
		{ 61, 63, 3, ADDR_OK },   /* 1 + 61 + 1 + 191 + 1 = 255 */
		{ 62, 63, 3, ADDR_OK },   /* 256 */
		{ 63, 63, 3, ADDR_ETOOLONG },
		{ 1, 1, 126, ADDR_OK },   /* 1 + 1 + 1 + 251 + 1 = 255 */
		{ 1, 1, 200, ADDR_ETOOLONG },
		{ 2000, 3, 1, ADDR_ETOOLONG },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		size_t len;
		char *b = build(t[i].local, t[i].label, t[i].nlabels, &len);
		struct addr a;
		int r = addr_parse_path(b, len, 0, &a);
		CHECKF(r == t[i].result, "length case %zu (%zu octets): got %d", i, len, r);
		if (r == ADDR_OK)
			CHECK(a.locallen == t[i].local && a.domainlen == len - t[i].local - 3);
		free(b);
	}
	/* An over-long path is refused before it is read. */
	char big[ADDR_PATH_MAX + 1];
	memset(big, 'x', sizeof big);
	struct addr a;
	CHECK(addr_parse_path(big, sizeof big, 0, &a) == ADDR_ETOOLONG);
}

static void test_addr_format(void)
{
	struct addr a;
	char buf[ADDR_TEXT_MAX];

	CHECK(parse(S("<User@Example.COM.>"), 0, &a) == ADDR_OK);
	CHECK(addr_format(&a, buf, sizeof buf) == 16 && strcmp(buf, "User@example.com") == 0);
	CHECK(addr_format(&a, buf, 17) == 16 && strcmp(buf, "User@example.com") == 0);
	memset(buf, 'x', sizeof buf);
	CHECK(addr_format(&a, buf, 16) == 0 && buf[0] == 0);
	buf[0] = 'x';
	CHECK(addr_format(&a, buf, 0) == 0 && buf[0] == 'x');

	CHECK(parse(S("<>"), NUL, &a) == ADDR_OK);
	memset(buf, 'x', sizeof buf);
	CHECK(addr_format(&a, buf, sizeof buf) == 0 && buf[0] == 0);
	CHECK(addr_format(&a, buf, 1) == 0 && buf[0] == 0);

	CHECK(parse(S("<Postmaster>"), PM, &a) == ADDR_OK);
	CHECK(addr_format(&a, buf, sizeof buf) == 10 && strcmp(buf, "Postmaster") == 0);
	CHECK(addr_format(&a, buf, 10) == 0 && buf[0] == 0);

	CHECK(parse(S("<@x:\"a b\"@[IPv6:::1]>"), 0, &a) == ADDR_OK);
	CHECK(addr_format(&a, buf, sizeof buf) == 16 && strcmp(buf, "\"a b\"@[IPv6:::1]") == 0);

	/* The longest address fills ADDR_TEXT_MAX exactly. */
	memset(&a, 0, sizeof a);
	memset(a.local, 'l', ADDR_LOCAL_MAX);
	a.locallen = ADDR_LOCAL_MAX;
	memset(a.domain, 'd', ADDR_DOMAIN_MAX);
	a.domainlen = ADDR_DOMAIN_MAX;
	CHECK(addr_format(&a, buf, sizeof buf) == ADDR_TEXT_MAX - 1 && buf[ADDR_TEXT_MAX - 1] == 0);
}

static void test_addr_domain_valid(void)
{
	static const struct { const char *s; size_t len; int utf8; int ok; } t[] = {
		{ S("example.com"), 0, 1 },
		{ S("Example.COM"), 0, 1 },
		{ S("example.com."), 0, 1 },
		{ S("localhost"), 0, 1 },
		{ S("a-b.c"), 0, 1 },
		{ S("[1.2.3.4]"), 0, 1 },
		{ S("[IPv6:2001:db8::1]"), 0, 1 },
		{ S("b\xc3\xbc" "cher.de"), 1, 1 },
		{ S("b\xc3\xbc" "cher.de"), 0, 0 },
		{ S("b\xc3" "cher.de"), 1, 0 },
		{ S(""), 0, 0 },
		{ S("."), 0, 0 },
		{ S("example..com"), 0, 0 },
		{ S(".example.com"), 0, 0 },
		{ S("example.com.."), 0, 0 },
		{ S("exa mple.com"), 0, 0 },
		{ S("example.com "), 0, 0 },
		{ S("-a.b"), 0, 0 },
		{ S("a-.b"), 0, 0 },
		{ S("a_b.c"), 0, 0 },
		{ S("a\0b"), 0, 0 },
		{ S("[1.2.3.4"), 0, 0 },
		{ S("[1.2.3.4]."), 0, 0 },
		{ S("[300.1.1.1]"), 0, 0 },
		{ S("user@example.com"), 0, 0 },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		char *b = exact(t[i].s, t[i].len);
		CHECKF(addr_domain_valid(b, t[i].len, t[i].utf8) == t[i].ok, "domain case %zu", i);
		free(b);
	}
	/* Label and total lengths: 63 per label, 255 in all. */
	char d[300];
	memset(d, 'a', sizeof d);
	CHECK(addr_domain_valid(d, 63, 0) == 1);
	CHECK(addr_domain_valid(d, 64, 0) == 0);
	for (size_t i = 63; i < sizeof d; i += 64)
		d[i] = '.';
	CHECK(addr_domain_valid(d, 255, 0) == 1);
	CHECK(addr_domain_valid(d, 256, 0) == 1 && d[255] == '.'); /* trailing dot */
	CHECK(addr_domain_valid(d, 257, 0) == 0);
}

int main(void)
{
	RUN(test_addr_table);
	RUN(test_addr_prefixes);
	RUN(test_addr_lengths);
	RUN(test_addr_format);
	RUN(test_addr_domain_valid);
	return t_main_end();
}
