/* tests/unit/test_route.c -- where a recipient goes (policy/route.c). */
#include <stdlib.h>
#include <string.h>

#include "policy/route.h"
#include "tests/unit/t.h"

static struct conf cf;

static void load(const char *text)
{
	char err[256];

	conf_defaults(&cf);
	snprintf(cf.hostname, sizeof cf.hostname, "mx.example.org");
	CHECKF(conf_parse(text, strlen(text), "t.conf", &cf, err, sizeof err) == 0 &&
	       conf_finish(&cf, "t.conf", err, sizeof err) == 0, "%s", err);
}

static void test_routes(void)
{
	struct route r;

	load("domain example.org\n"
	     "route example.org [192.0.2.25]:2525\n"
	     "route *.example.net relay.example.net\n"
	     "route *.a.example.net [192.0.2.26] tls require\n"
	     "route b.a.example.net [192.0.2.27]\n");
	CHECK(route_select(&cf, "user@example.org", &r) == ROUTE_NEXTHOP);
	CHECK(r.hop == &cf.routes[0].hop && strcmp(r.key, "relay:192.0.2.25:2525:1-") == 0);
	CHECK(route_select(&cf, "user@EXAMPLE.Org", &r) == ROUTE_NEXTHOP);
	CHECK(strcmp(r.domain, "example.org") == 0);
	/* Wildcards: the name itself and subdomains; the longest wins; an
	 * exact route beats any wildcard. */
	CHECK(route_select(&cf, "u@example.net", &r) == ROUTE_NEXTHOP && r.hop == &cf.routes[1].hop);
	CHECK(route_select(&cf, "u@x.example.net", &r) == ROUTE_NEXTHOP && r.hop == &cf.routes[1].hop);
	CHECK(route_select(&cf, "u@c.a.example.net", &r) == ROUTE_NEXTHOP &&
	      r.hop == &cf.routes[2].hop);
	CHECK(strcmp(r.key, "relay:192.0.2.26:25:2-") == 0);
	CHECK(route_select(&cf, "u@b.a.example.net", &r) == ROUTE_NEXTHOP &&
	      r.hop == &cf.routes[3].hop);
	CHECK(route_select(&cf, "u@evilexample.net", &r) == ROUTE_MX);
	CHECK(strcmp(r.key, "mx:evilexample.net") == 0 && strcmp(r.domain, "evilexample.net") == 0);
	/* A quoted local part with '@': the domain is after the last one. */
	CHECK(route_select(&cf, "\"a@example.org\"@other.test", &r) == ROUTE_MX);
	CHECK(strcmp(r.domain, "other.test") == 0);
	/* Bare postmaster: ours. */
	CHECK(route_select(&cf, "postmaster", &r) == ROUTE_MX && strcmp(r.domain, "mx.example.org") == 0);
}

static void test_literals(void)
{
	struct route r;

	load("domain example.org\n");
	CHECK(route_select(&cf, "u@[192.0.2.9]", &r) == ROUTE_LITERAL);
	CHECK(r.addr.family == IP_V4 && r.addr.a[3] == 9 && strcmp(r.key, "ip:192.0.2.9") == 0);
	CHECK(route_select(&cf, "u@[IPv6:2001:db8::9]", &r) == ROUTE_LITERAL);
	CHECK(r.addr.family == IP_V6 && strcmp(r.key, "ip:2001:db8::9") == 0);
	CHECK(route_select(&cf, "u@[ipv6:2001:db8::9]", &r) == ROUTE_LITERAL);
	CHECK(route_select(&cf, "u@[2001:db8::9]", &r) == ROUTE_NONE);
	CHECK(route_select(&cf, "u@[IPv6:192.0.2.1]", &r) == ROUTE_NONE);
	CHECK(route_select(&cf, "u@[x-tag:abc]", &r) == ROUTE_NONE);
	CHECK(route_select(&cf, "u@[]", &r) == ROUTE_NONE);
	/* A route never matches a literal. */
	load("domain example.org\nroute example.org [192.0.2.25]\n");
	CHECK(route_select(&cf, "u@[192.0.2.9]", &r) == ROUTE_LITERAL);
}

static void test_smarthost(void)
{
	struct route r;

	load("domain example.org\n"
	     "route example.org [192.0.2.25]\n"
	     "smarthost relay.isp.test:587 tls require\n");
	CHECK(route_select(&cf, "u@example.org", &r) == ROUTE_NEXTHOP);
	CHECK(route_select(&cf, "u@gmail.test", &r) == ROUTE_SMARTHOST);
	CHECK(r.hop == &cf.smarthost && strcmp(r.key, "relay:relay.isp.test:587:2-") == 0);
	CHECK(route_select(&cf, "u@[192.0.2.9]", &r) == ROUTE_SMARTHOST);
	CHECK(route_find(&cf, "example.org", 11) == &cf.routes[0]);
	CHECK(route_find(&cf, "example.com", 11) == NULL);
}

static struct ipaddr ip(const char *text)
{
	struct ipaddr a;

	memset(&a, 0, sizeof a);
	CHECKF(ip_parse(text, strlen(text), &a) == 0, "%s", text);
	return a;
}

static int self(const char *addr, unsigned port, const struct ipaddr *local, size_t n)
{
	struct ipaddr a = ip(addr);

	return route_is_self(&cf, local, n, &a, port);
}

static void test_self(void)
{
	struct ipaddr local[2];

	local[0] = ip("192.0.2.7");
	local[1] = ip("2001:db8::7");
	load("domain example.org\n"
	     "listen 127.0.0.1:2525\n"
	     "listen 192.0.2.9:25\n"
	     "listen [::]:587\n"
	     "listen 0.0.0.0:26\n");
	/* a listener by its address and port */
	CHECK(self("127.0.0.1", 2525, local, 2));
	CHECK(!self("127.0.0.1", 2526, local, 2));
	CHECK(!self("127.0.0.2", 2525, local, 2));
	CHECK(self("192.0.2.9", 25, NULL, 0));
	CHECK(self("::ffff:192.0.2.9", 25, NULL, 0));
	CHECK(!self("192.0.2.7", 25, local, 2));     /* ours, but nothing listens there */
	/* a wildcard: any address of this machine */
	CHECK(self("192.0.2.7", 587, local, 2));
	CHECK(self("2001:db8::7", 587, local, 2));
	CHECK(self("::1", 587, NULL, 0));
	CHECK(self("127.3.4.5", 26, NULL, 0));
	CHECK(self("0.0.0.0", 26, NULL, 0));
	CHECK(self("::", 26, NULL, 0));
	CHECK(self("::ffff:127.0.0.1", 26, NULL, 0));
	CHECK(!self("192.0.2.7", 26, NULL, 0));       /* not known as ours */
	CHECK(!self("192.0.2.8", 587, local, 2));
	CHECK(!self("2001:db8::8", 26, local, 2));
}

int main(void)
{
	RUN(test_self);
	RUN(test_routes);
	RUN(test_literals);
	RUN(test_smarthost);
	return t_main_end();
}
