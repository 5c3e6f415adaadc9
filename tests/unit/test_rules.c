/* tests/unit/test_rules.c -- policy/rules.c: the relay matrix, cell by cell.
 *
 * Recipients go through the real addr_parse_path() and configurations
 * through the real conf_parse(), so the table tests what the server does. */
#include "t.h"
#include "policy/rcptdb.h"
#include "policy/rules.h"

/* Two configurations that differ only in whether subdomains are ours. */
static const char conf_plain_text[] =
	"domain example.org\n"
	"relay-network 10.0.0.0/8\n"
	"relay-network 2001:db8:1::/48\n";
static const char conf_wild_text[] =
	"domain *.example.org\n"
	"relay-network 10.0.0.0/8\n"
	"relay-network 2001:db8:1::/48\n";

static struct conf conf_plain, conf_wild;

static void load(struct conf *c, const char *text)
{
	char err[256];

	conf_defaults(c);
	CHECKF(conf_parse(text, strlen(text), "t.conf", c, err, sizeof err) == 0, "%s", err);
	CHECKF(conf_finish(c, "t.conf", err, sizeof err) == 0, "%s", err);
}

struct client_case {
	const char *name;
	const char *ip;        /* as the socket reports it */
	int         authenticated;
	int         may_relay; /* which verdict column applies */
};

/* The clients, each made as mta/ makes it: parse, then ip_unmap(). */
static const struct client_case clients[] = {
	{ "relay-net v4",       "10.1.2.3",            0, 1 },
	{ "relay-net v6",       "2001:db8:1::5",       0, 1 },
	{ "relay-net v4-mapped", "::ffff:10.1.2.3",    0, 1 },
	{ "outsider v4",        "192.0.2.9",           0, 0 },
	{ "outsider v6",        "2001:db8:2::5",       0, 0 },
	{ "outsider v4-mapped", "::ffff:192.0.2.9",    0, 0 },
	/* 10.x written as IPv4-compatible (not mapped) IPv6 is not 10.x. */
	{ "outsider v4-compat", "::10.1.2.3",          0, 0 },
	{ "outsider, authenticated", "192.0.2.9",      1, 1 },
};

#define LOC  RCPT_LOCAL
#define REL  RCPT_RELAY
#define DENY RCPT_DENY_RELAY
#define ROUT RCPT_DENY_ROUTING

struct rcpt_case {
	const char *path;
	/* verdicts: [0] config without subdomains, [1] with "*.example.org";
	 * in each, the relay client's and the outsider's */
	enum rcpt_verdict plain_relay, plain_out, wild_relay, wild_out;
};

static const struct rcpt_case rcpts[] = {
	/* our domain */
	{ "<user@example.org>",                   LOC, LOC,  LOC, LOC },
	{ "<user@EXAMPLE.ORG>",                   LOC, LOC,  LOC, LOC },
	{ "<user@Example.Org.>",                  LOC, LOC,  LOC, LOC },
	{ "<user@example.org.>",                  LOC, LOC,  LOC, LOC },
	/* a subdomain: ours only when configured */
	{ "<user@a.example.org>",                 REL, DENY, LOC, LOC },
	{ "<user@b.a.EXAMPLE.org.>",              REL, DENY, LOC, LOC },
	/* look-alikes are foreign in both */
	{ "<user@evilexample.org>",               REL, DENY, REL, DENY },
	{ "<user@example.org.evil.com>",          REL, DENY, REL, DENY },
	{ "<user@example.orgx>",                  REL, DENY, REL, DENY },
	{ "<user@xample.org>",                    REL, DENY, REL, DENY },
	{ "<user@org>",                           REL, DENY, REL, DENY },
	/* foreign */
	{ "<user@evil.com>",                      REL, DENY, REL, DENY },
	/* routing characters in a local part at our domain */
	{ "<user%evil.com@example.org>",          LOC, ROUT, LOC, ROUT },
	{ "<evil.com!user@example.org>",          LOC, ROUT, LOC, ROUT },
	{ "<\"user@evil.com\"@example.org>",      LOC, ROUT, LOC, ROUT },
	{ "<\"user%evil\"@example.org>",          LOC, ROUT, LOC, ROUT },
	{ "<\"user@evil.com\"@EXAMPLE.org.>",     LOC, ROUT, LOC, ROUT },
	{ "<user%evil.com@a.example.org>",        REL, DENY, LOC, ROUT },
	/* ... and at a foreign domain: foreign, whatever the local part */
	{ "<user%other.com@evil.com>",            REL, DENY, REL, DENY },
	/* a source route is dropped: the verdict is on the final domain */
	{ "<@example.org:user@evil.com>",         REL, DENY, REL, DENY },
	{ "<@example.org,@a.example.org:user@evil.com>", REL, DENY, REL, DENY },
	{ "<@evil.com:user@example.org>",         LOC, LOC,  LOC, LOC },
	/* an address literal is never one of our domains */
	{ "<user@[127.0.0.1]>",                   REL, DENY, REL, DENY },
	{ "<user@[10.1.2.3]>",                    REL, DENY, REL, DENY },
	{ "<user@[IPv6:::1]>",                    REL, DENY, REL, DENY },
	/* postmaster */
	{ "<postmaster>",                         LOC, LOC,  LOC, LOC },
	{ "<Postmaster>",                         LOC, LOC,  LOC, LOC },
	{ "<postmaster@example.org>",             LOC, LOC,  LOC, LOC },
	{ "<postmaster@evil.com>",                REL, DENY, REL, DENY },
};

static void make_client(const struct client_case *cc, struct rules_client *cl)
{
	memset(cl, 0, sizeof *cl);
	CHECKF(ip_parse(cc->ip, strlen(cc->ip), &cl->addr) == 0, "%s", cc->ip);
	ip_unmap(&cl->addr);
	cl->authenticated = cc->authenticated ? 1u : 0u;
}

static const char *verdict_name(enum rcpt_verdict v)
{
	switch (v) {
	case RCPT_LOCAL:        return "LOCAL";
	case RCPT_RELAY:        return "RELAY";
	case RCPT_DENY_RELAY:   return "DENY_RELAY";
	case RCPT_DENY_ROUTING: return "DENY_ROUTING";
	}
	return "?";
}

static void test_matrix(void)
{
	int cells = 0;

	load(&conf_plain, conf_plain_text);
	load(&conf_wild, conf_wild_text);
	for (size_t r = 0; r < sizeof rcpts / sizeof rcpts[0]; r++) {
		const struct rcpt_case *rc = &rcpts[r];
		struct addr a;
		enum addr_result ar = addr_parse_path(rc->path, strlen(rc->path),
		                                      ADDR_ALLOW_POSTMASTER, &a);
		CHECKF(ar == ADDR_OK, "%s: addr_parse_path %d", rc->path, ar);
		if (ar != ADDR_OK)
			continue;
		for (size_t k = 0; k < sizeof clients / sizeof clients[0]; k++) {
			const struct client_case *cc = &clients[k];
			struct rules_client cl;
			make_client(cc, &cl);
			for (int wild = 0; wild <= 1; wild++) {
				const struct conf *c = wild ? &conf_wild : &conf_plain;
				enum rcpt_verdict want = wild
					? (cc->may_relay ? rc->wild_relay : rc->wild_out)
					: (cc->may_relay ? rc->plain_relay : rc->plain_out);
				enum rcpt_verdict got = rules_rcpt(c, &cl, &a);
				CHECKF(got == want, "%s from %s (%s), %s: %s, want %s", rc->path,
				       cc->name, cc->ip, wild ? "*.example.org" : "example.org",
				       verdict_name(got), verdict_name(want));
				cells++;
			}
		}
	}
	CHECK(cells == (int)(sizeof rcpts / sizeof rcpts[0] * sizeof clients / sizeof clients[0] * 2));
}

/* The parser reports what the rules rely on. */
static void test_addr_flags(void)
{
	static const struct { const char *path; unsigned flags; } cases[] = {
		{ "<user%evil.com@example.org>", ADDR_F_PERCENT },
		{ "<evil.com!user@example.org>", ADDR_F_BANG },
		{ "<\"user@evil.com\"@example.org>", ADDR_F_AT_IN_LOCAL },
		{ "<@example.org:user@evil.com>", ADDR_F_ROUTE },
		{ "<user@[127.0.0.1]>", ADDR_F_LITERAL },
		{ "<postmaster>", ADDR_F_POSTMASTER },
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		struct addr a;
		CHECK(addr_parse_path(cases[k].path, strlen(cases[k].path), ADDR_ALLOW_POSTMASTER, &a) == ADDR_OK);
		CHECKF((a.flags & cases[k].flags) == cases[k].flags, "%s: flags %#x", cases[k].path, a.flags);
	}
}

static void test_domain_is_local(void)
{
	struct conf c;
	static const struct { const char *domain; int local; } cases[] = {
		{ "example.org", 1 },
		{ "EXAMPLE.ORG", 1 },
		{ "a.example.org", 0 },
		{ "sub.example.net", 1 },       /* "*.sub.example.net" covers itself */
		{ "a.sub.example.net", 1 },
		{ "a.b.SUB.example.net", 1 },
		{ "asub.example.net", 0 },
		{ "sub.example.net.evil", 0 },
		{ ".sub.example.net", 0 },      /* an empty label is no subdomain */
		{ "a..sub.example.net", 0 },
		{ "example.net", 0 },
		{ "", 0 },
		{ "org", 0 },
		{ "xexample.org", 0 },
	};

	load(&c, "domain example.org\ndomain *.sub.example.net\n");
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		const char *d = cases[k].domain;
		CHECKF(rules_domain_is_local(&c, d, strlen(d)) == cases[k].local, "'%s'", d);
	}
	/* The length is what counts, not a NUL. */
	CHECK(rules_domain_is_local(&c, "example.orgXYZ", 11) == 1);
	CHECK(rules_domain_is_local(&c, "example.or", 10) == 0);
}

/* conf_parse() refuses a literal as a domain; rules_rcpt() must not rely on
 * that, so put one in by hand. */
static void test_literal_never_local(void)
{
	struct conf c;
	struct rules_client cl;
	struct addr a;
	static const char path[] = "<user@[127.0.0.1]>";

	load(&c, "domain example.org\n");
	memcpy(c.domains[0].name, "[127.0.0.1]", sizeof "[127.0.0.1]");
	make_client(&clients[3], &cl);  /* an outsider */
	CHECK(addr_parse_path(path, strlen(path), 0, &a) == ADDR_OK);
	CHECK(strcmp(a.domain, "[127.0.0.1]") == 0);
	CHECK(rules_rcpt(&c, &cl, &a) == RCPT_DENY_RELAY);
}

/* The null path is no recipient; even a relay client gets no RELAY for it. */
static void test_null_path(void)
{
	struct conf c;
	struct rules_client cl;
	struct addr a;

	load(&c, "domain example.org\nrelay-network 10.0.0.0/8\n");
	make_client(&clients[0], &cl);
	CHECK(addr_parse_path("<>", 2, ADDR_ALLOW_NULL, &a) == ADDR_OK);
	CHECK(a.flags & ADDR_F_NULL);
	CHECK(rules_rcpt(&c, &cl, &a) == RCPT_DENY_RELAY);
}

static void test_relay_allowed(void)
{
	struct conf c;
	struct rules_client cl;

	load(&c, "domain example.org\n");
	for (size_t k = 0; k < sizeof clients / sizeof clients[0]; k++) {
		make_client(&clients[k], &cl);
		CHECKF(rules_relay_allowed(&c, &cl) == clients[k].authenticated, "%s", clients[k].name);
	}
	load(&c, "relay-network 0.0.0.0/0\n");
	make_client(&clients[1], &cl);  /* v6 */
	CHECK(!rules_relay_allowed(&c, &cl));
	make_client(&clients[3], &cl);  /* v4 */
	CHECK(rules_relay_allowed(&c, &cl));
	/* A caller that forgot ip_unmap() still gets the IPv4 answer. */
	memset(&cl, 0, sizeof cl);
	CHECK(ip_parse("::ffff:192.0.2.9", 16, &cl.addr) == 0 && cl.addr.family == IP_V6);
	CHECK(rules_relay_allowed(&c, &cl));
}

/* Deny networks override every allow; internal listeners relay. */
static void test_deny_internal(void)
{
	static struct conf c;
	static const struct { const char *ip; int auth, internal, relay, denied, never; } cases[] = {
		{ "10.1.2.3",        0, 0, 1, 0, 0 },   /* relay network */
		{ "10.66.0.1",       0, 0, 0, 1, 0 },   /* deny inside a relay network */
		{ "10.66.0.1",       1, 0, 0, 1, 0 },   /* ... authenticated too */
		{ "10.66.0.1",       0, 1, 0, 1, 0 },   /* ... on an internal listener too */
		{ "::ffff:10.66.0.1", 1, 1, 0, 1, 0 },  /* mapped is the same client */
		{ "192.0.2.9",       0, 0, 0, 0, 0 },   /* outsider */
		{ "192.0.2.9",       1, 0, 1, 0, 0 },   /* authenticated outsider */
		{ "192.0.2.9",       0, 1, 1, 0, 0 },   /* internal listener */
		{ "2001:db8:bad::1", 1, 0, 0, 1, 1 },   /* never-connect */
		{ "2001:db8:bad::1", 0, 0, 0, 1, 1 },
	};
	struct addr foreign, ours;

	load(&c, "domain example.org\nrelay-network 10.0.0.0/8\n"
	         "deny-network 10.66.0.0/16\ndeny-network 2001:db8:bad::/48 never-connect\n");
	CHECK(addr_parse_path("<u@evil.com>", 12, 0, &foreign) == ADDR_OK);
	CHECK(addr_parse_path("<u@example.org>", 15, 0, &ours) == ADDR_OK);
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		struct rules_client cl;
		memset(&cl, 0, sizeof cl);
		CHECK(ip_parse(cases[k].ip, strlen(cases[k].ip), &cl.addr) == 0);
		ip_unmap(&cl.addr);
		cl.authenticated = cases[k].auth ? 1u : 0u;
		cl.internal = cases[k].internal ? 1u : 0u;
		CHECKF(rules_relay_allowed(&c, &cl) == cases[k].relay, "case %zu", k);
		CHECKF(rules_rcpt(&c, &cl, &foreign) == (cases[k].relay ? RCPT_RELAY : RCPT_DENY_RELAY),
		       "case %zu", k);
		CHECKF(rules_rcpt(&c, &cl, &ours) == RCPT_LOCAL, "case %zu", k);
		CHECKF(rules_denied(&c, &cl.addr, 0) == cases[k].denied, "case %zu", k);
		CHECKF(rules_denied(&c, &cl.addr, 1) == cases[k].never, "case %zu", k);
	}
}

static void test_rcptdb(void)
{
	static struct conf c;
	static struct rcptdb db;
	static const char list[] =
		"# valid recipients\n"
		"Alice\n"
		"  bob@sales.example.net \r\n"
		"\n"
		"carol\n";
	static const struct { const char *path; int known; } cases[] = {
		{ "<alice@example.org>", 1 }, { "<ALICE@Example.org>", 1 }, { "<carol@example.org>", 1 },
		{ "<dave@example.org>", 0 }, { "<alic@example.org>", 0 }, { "<alice+tag@example.org>", 0 },
		{ "<postmaster@example.org>", 1 }, { "<Postmaster@example.org>", 1 }, { "<postmaster>", 1 },
		{ "<bob@sales.example.net>", 1 }, { "<bob@example.net>", 0 }, { "<alice@x.example.net>", 1 }, /* "alice" covers every domain of the list */
		{ "<dave@example.com>", 1 },       /* catch-all */
		{ "<dave@other.test>", 1 },        /* not ours: relay rules decide */
		{ "<alice@[192.0.2.1]>", 1 },
	};
	char err[256];

	load(&c, "domain example.org\ndomain *.example.net\ndomain example.com\n"
	         "recipients example.org /lists/org\nrecipients *.example.net /lists/net\n"
	         "recipients example.com catch-all\n");
	rcptdb_init(&db);
	CHECKF(rcptdb_load(&db, 0, list, sizeof list - 1, "org", err, sizeof err) == 0, "%s", err);
	CHECKF(rcptdb_load(&db, 1, list, sizeof list - 1, "net", err, sizeof err) == 0, "%s", err);
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		struct addr a;
		CHECK(addr_parse_path(cases[k].path, strlen(cases[k].path), ADDR_ALLOW_POSTMASTER, &a) ==
		      ADDR_OK);
		CHECKF(rcptdb_known(&db, &c, &a) == cases[k].known, "%s", cases[k].path);
	}
	CHECK(rcptdb_load(&db, 0, "ok\nbad entry\n", 13, "f", err, sizeof err) == -1);
	CHECKF(strcmp(err, "f:2: space or control character in an entry") == 0, "%s", err);
	CHECK(rcptdb_load(&db, 0, "@example.org\n", 13, "f", err, sizeof err) == -1);
	CHECKF(strcmp(err, "f:1: bad entry (want local or local@domain)") == 0, "%s", err);
	rcptdb_free(&db);
}

/* moat check's matrix names every listener's role. */
static void test_matrix_format(void)
{
	static struct conf c;
	static char buf[4096];

	load(&c, "domain example.org\nrelay-network 10.0.0.0/8\nlisten 127.0.0.1:25\n"
	         "listen [::1]:587 role=submission auth-plaintext-loopback\nusers /u\n"
	         "listen 127.0.0.1:2525 internal\n");
	size_t n = rules_matrix_format(&c, buf, sizeof buf);
	CHECK(n == strlen(buf) && rules_matrix_format(&c, NULL, 0) == n);
	CHECKF(strstr(buf, "# listen 127.0.0.1:25 (mx)\n") && strstr(buf, "# listen [::1]:587 (submission)\n") &&
	       strstr(buf, "authenticated user          accept              relay\n") &&
	       strstr(buf, "not authenticated           530 5.7.0           530 5.7.0\n") &&
	       strstr(buf, "# listen 127.0.0.1:2525 (mx, internal)\n") &&
	       strstr(buf, "anyone else                 accept              554 5.7.1\n"), "%s", buf);
}

int main(void)
{
	RUN(test_deny_internal);
	RUN(test_rcptdb);
	RUN(test_matrix_format);
	RUN(test_matrix);
	RUN(test_addr_flags);
	RUN(test_domain_is_local);
	RUN(test_literal_never_local);
	RUN(test_null_path);
	RUN(test_relay_allowed);
	return t_main_end();
}
