/* tests/unit/test_hosts.c -- the hosts file (policy/hosts.c). */
#include <stdlib.h>
#include <string.h>

#include "policy/hosts.h"
#include "tests/unit/t.h"

static size_t look(const char *text, const char *name, char out[][IP_TEXT_MAX], size_t max)
{
	struct ipaddr a[8];
	size_t n = hosts_lookup(text, strlen(text), name, a, max < 8 ? max : 8);

	for (size_t i = 0; i < n; i++)
		ip_format(&a[i], out[i], IP_TEXT_MAX);
	return n;
}

static void test_hosts(void)
{
	static const char file[] =
		"# /etc/hosts\n"
		"127.0.0.1\tlocalhost\n"
		"::1     localhost ip6-localhost ip6-loopback\n"
		"192.0.2.10 relay.example.net relay   # the smarthost\n"
		"192.0.2.11 RELAY.example.NET.\r\n"
		"192.0.2.10 relay.example.net\n"
		"not-an-address relay.example.net\n"
		"fe80::1%eth0 relay.example.net\n"
		"   \t\n"
		"#192.0.2.99 relay.example.net\n"
		"192.0.2.12 other.example.net#relay.example.net\n"
		"192.0.2.13";
	char got[8][IP_TEXT_MAX];

	CHECK(look(file, "localhost", got, 8) == 2);
	CHECK(strcmp(got[0], "127.0.0.1") == 0 && strcmp(got[1], "::1") == 0);
	CHECK(look(file, "relay.example.net", got, 8) == 2);
	CHECK(strcmp(got[0], "192.0.2.10") == 0 && strcmp(got[1], "192.0.2.11") == 0);
	CHECK(look(file, "Relay.Example.Net.", got, 8) == 2);
	CHECK(look(file, "relay.example.net", got, 1) == 1);
	CHECK(look(file, "relay", got, 8) == 1 && strcmp(got[0], "192.0.2.10") == 0);
	CHECK(look(file, "ip6-loopback", got, 8) == 1 && strcmp(got[0], "::1") == 0);
	CHECK(look(file, "other.example.net", got, 8) == 1);
	CHECK(look(file, "relay.example", got, 8) == 0);
	CHECK(look(file, "example.net", got, 8) == 0);
	CHECK(look(file, "192.0.2.13", got, 8) == 0);
	CHECK(look(file, "", got, 8) == 0);
	CHECK(look(file, ".", got, 8) == 0);
	CHECK(look("", "localhost", got, 8) == 0);
	CHECK(look("127.0.0.1 localhost", "localhost", got, 8) == 1);   /* no final LF */
}

int main(void)
{
	RUN(test_hosts);
	return t_main_end();
}
