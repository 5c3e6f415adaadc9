/* tests/unit/test_conf.c -- policy/conf.c: good and bad files, in memory. */
#include <stdlib.h>

#include "t.h"
#include "policy/conf.h"

static struct conf cf;
static char err[512];

/* Parse text as file "t.conf" onto defaults, then finish if parsing worked. */
static int load(const char *text)
{
	conf_defaults(&cf);
	err[0] = 'X';
	if (conf_parse(text, strlen(text), "t.conf", &cf, err, sizeof err) != 0)
		return -1;
	if (err[0] != '\0')
		return -2; /* success must leave an empty message */
	return conf_finish(&cf, "t.conf", err, sizeof err);
}

static void test_defaults(void)
{
	conf_defaults(&cf);
	CHECK(cf.hostname[0] == '\0');
	CHECK(cf.nlisteners == 0 && cf.ndomains == 0 && cf.nrelay_nets == 0);
	CHECK(strcmp(cf.queue_path, "/var/lib/moat/queue") == 0);
	CHECK(cf.queue_map_size == 0);   /* conf_finish sizes it from the quotas */
	CHECK(cf.queue_max_bytes == 2ull << 30 && cf.queue_max_messages == 100000);
	CHECK(cf.queue_min_free == 64ull << 20 && cf.queue_min_free_percent == 5);
	CHECK(cf.queue_client_share == 25);
	CHECK(cf.max_connections_per_client == 50 && cf.max_messages_per_connection == 1000);
	CHECK(cf.max_junk_commands == 100 && cf.max_session_time == 3600);
	CHECK(cf.timeout_data_total == 1200);
	CHECK(cf.max_message_size == 35ull << 20);
	CHECK(cf.max_recipients == 1000);
	CHECK(cf.max_errors == 20);
	CHECK(cf.max_connections == 4000);
	CHECK(cf.timeout_command == 300);
	CHECK(cf.timeout_data == 180);
	CHECK(cf.greeting_delay_ms == 0);
}

static const char good_file[] =
	"# moat test configuration\n"
	"\n"
	"hostname mx1.Example.org.\n"
	"listen 192.0.2.1:25\n"
	"listen [2001:db8::1]:587   # submission, comment after whitespace\n"
	"  listen *:2525\n"
	"\tdomain Example.ORG\n"
	"domain *.example.net\n"
	"domain example.com.\n"
	"relay-network 10.0.0.0/8\n"
	"relay-network 2001:db8:1::/48\n"
	"relay-network 192.0.2.7\n"
	"queue /srv/moat/#queue\n"
	"queue-map-size 1G\n"
	"queue-max-bytes 256m\n"
	"queue-max-messages 10000\n"
	"queue-min-free 100M\n"
	"queue-min-free-percent 10\n"
	"queue-client-share 50\n"
	"max-message-size 10m\n"
	"max-recipients 100\n"
	"max-errors 5\n"
	"max-connections 100\n"
	"max-connections-per-client 10\n"
	"max-messages-per-connection 20\n"
	"max-junk-commands 0\n"
	"max-hops 100\n"
	"max-session-time 90m\n"
	"timeout-command 60\n"
	"timeout-data 120\n"
	"timeout-data-total 600\n"
	"greet-delay 1500\n";

static void test_good_file(void)
{
	struct ipaddr ip;

	CHECKF(load(good_file) == 0, "%s", err);
	CHECK(strcmp(cf.hostname, "mx1.Example.org") == 0);
	CHECK(cf.nlisteners == 3);
	CHECK(ip_parse("192.0.2.1", 9, &ip) == 0 && ip_equal(&cf.listeners[0].addr, &ip));
	CHECK(cf.listeners[0].port == 25 && !cf.listeners[0].any);
	CHECK(ip_parse("2001:db8::1", 11, &ip) == 0 && ip_equal(&cf.listeners[1].addr, &ip));
	CHECK(cf.listeners[1].port == 587);
	CHECK(cf.listeners[2].addr.family == IP_V4 && cf.listeners[2].any && cf.listeners[2].port == 2525);
	CHECK(cf.ndomains == 3);
	CHECK(strcmp(cf.domains[0].name, "example.org") == 0 && !cf.domains[0].subdomains);
	CHECK(strcmp(cf.domains[1].name, "example.net") == 0 && cf.domains[1].subdomains);
	CHECK(strcmp(cf.domains[2].name, "example.com") == 0);
	CHECK(cf.nrelay_nets == 3 && cf.relay_nets[0].prefix == 8 && cf.relay_nets[2].prefix == 32);
	CHECK(strcmp(cf.queue_path, "/srv/moat/#queue") == 0);
	CHECK(cf.queue_map_size == 1ull << 30);
	CHECK(cf.queue_max_bytes == 256ull << 20 && cf.queue_max_messages == 10000);
	CHECK(cf.queue_min_free == 100ull << 20 && cf.queue_min_free_percent == 10);
	CHECK(cf.queue_client_share == 50);
	CHECK(cf.max_connections_per_client == 10 && cf.max_messages_per_connection == 20);
	CHECK(cf.max_junk_commands == 0 && cf.max_session_time == 5400);
	CHECK(cf.timeout_data_total == 600);
	CHECK(cf.max_message_size == 10ull << 20);
	CHECK(cf.max_recipients == 100 && cf.max_errors == 5 && cf.max_connections == 100);
	CHECK(cf.timeout_command == 60 && cf.timeout_data == 120 && cf.greeting_delay_ms == 1500);
}

/* The same file with CRLF line ends and no line end at the end. */
static void test_crlf(void)
{
	char text[sizeof good_file * 2];
	size_t n = 0;

	for (const char *s = good_file; *s != '\0'; s++) {
		if (*s == '\n')
			text[n++] = '\r';
		text[n++] = *s;
	}
	text[n - 2] = '\0'; /* drop the last CRLF */
	CHECKF(load(text) == 0, "%s", err);
	CHECK(cf.greeting_delay_ms == 1500 && cf.nlisteners == 3);
	CHECK(strcmp(cf.hostname, "mx1.Example.org") == 0);
}

/* conf_format() of the delivery directives at their defaults. */
#define DELIVERY_DEFAULTS \
	"delivery on\n" \
	"# route: none\n" \
	"# smarthost: none (MX lookups)\n" \
	"outbound-tls may\n" \
	"tls-ca-file /etc/ssl/certs/ca-certificates.crt\n" \
	"mta-sts on\n" \
	"dane on\n" \
	"tls-report off\n" \
	"# dns-server: none, the nameservers of /etc/resolv.conf\n" \
	"dns-timeout 5s\n" \
	"dns-dnssec off\n" \
	"retry-min 5m\n" \
	"retry-max 1h\n" \
	"queue-lifetime 5d\n" \
	"delay-warning 0s\n" \
	"delivery-concurrency 20\n" \
	"destination-concurrency 5\n" \
	"destination-rate off\n" \
	"max-messages-per-delivery-connection 100\n" \
	"delivery-connection-idle 2s\n" \
	"timeout-connect 30s\n" \
	"timeout-reply 5m\n" \
	"verify-cache 10m\n" \
	"timeout-verify 20s\n"

static const char expected_format[] =
	"hostname mx1.Example.org\n"
	"listen 192.0.2.1:25\n"
	"listen [2001:db8::1]:587\n"
	"listen 0.0.0.0:2525\n"
	"domain example.org\n"
	"domain *.example.net\n"
	"domain example.com\n"
	"relay-network 10.0.0.0/8\n"
	"relay-network 2001:db8:1::/48\n"
	"relay-network 192.0.2.7/32\n"
	"queue /srv/moat/#queue\n"
	"queue-map-size 1G\n"
	"queue-max-bytes 256M\n"
	"queue-max-messages 10000\n"
	"queue-min-free 100M\n"
	"queue-min-free-percent 10\n"
	"queue-client-share 50\n"
	"max-message-size 10M\n"
	"max-recipients 100\n"
	"max-errors 5\n"
	"max-connections 100\n"
	"max-connections-per-client 10\n"
	"max-messages-per-connection 20\n"
	"max-junk-commands 0\n"
	"max-hops 100\n"
	"max-session-time 90m\n"
	"timeout-command 60\n"
	"timeout-data 120\n"
	"timeout-data-total 600\n"
	"greet-delay 1500\n"
	"# tls-cert: none\n"
	"# tls-key: none\n"
	"# users: none\n"
	"auth-max-failures 5\n"
	"auth-block-seconds 900\n"
	"auth-fail-delay 1000\n"
	"# deny-network: none\n"
	DELIVERY_DEFAULTS
	"reject-early-pipelining on\n"
	"reject-invalid-helo on\n"
	"reject-forged-helo on\n"
	"reject-forged-sender off\n"
	"tarpit-after 10\n"
	"tarpit-delay 1000\n"
	"tarpit-max-delay 10000\n"
	"# dnsbl: none\n"
	"dnsbl-threshold 1\n"
	"dnsbl-stage rcpt\n"
	"dnsbl-timeout 5s\n"
	"dnsbl-negative-ttl 1m\n"
	"# dkim-sign: none\n"
	"log stderr\n"
	"log-facility mail\n"
	"# metrics-listen: none\n"
	"shutdown-timeout 8s\n"
	"user-id 65532\n"
	"group-id 65532\n";

static void test_format(void)
{
	static char buf[64 * 1024], again[64 * 1024];
	struct conf copy;

	CHECKF(load(good_file) == 0, "%s", err);
	size_t n = conf_format(&cf, buf, sizeof buf);
	CHECKF(n == strlen(expected_format) && strcmp(buf, expected_format) == 0, "got:\n%s", buf);
	/* The output is a config file that means the same. */
	copy = cf;
	CHECKF(load(buf) == 0, "%s", err);
	CHECK(memcmp(&copy, &cf, sizeof cf) == 0);
	CHECK(conf_format(&cf, again, sizeof again) == n && strcmp(buf, again) == 0);
	/* Too small a buffer: the length needed, a truncated NUL-terminated text. */
	memset(again, 'Z', sizeof again);
	CHECK(conf_format(&cf, again, 10) == n);
	CHECK(again[9] == '\0' && memcmp(again, buf, 9) == 0 && again[10] == 'Z');
	CHECK(conf_format(&cf, NULL, 0) == n);
}

static void test_tls_options(void)
{
	static char buf[8192];
	static const char text[] =
		"domain example.org\n"
		"domain *.example.net\n"
		"listen 127.0.0.1:25 tls=starttls internal\n"
		"listen [::1]:587 role=submission tls=starttls tls-legacy\n"
		"listen 0.0.0.0:465 tls=implicit role=submission\n"
		"listen 127.0.0.1:2587 role=submission auth-plaintext-loopback\n"
		"tls-cert /etc/moat/cert.pem\n"
		"\n"
		"tls-key /etc/moat/key.pem\n"
		"users /etc/moat/users\n"
		"deny-network 192.0.2.0/24 never-connect\n"
		"deny-network 2001:db8::/32\n"
		"recipients example.org /etc/moat/rcpt\n"
		"recipients *.example.net catch-all\n";

	CHECKF(load(text) == 0, "%s", err);
	CHECK(cf.nlisteners == 4);
	CHECK(cf.listeners[0].role == CONF_ROLE_MX && cf.listeners[0].tls == CONF_TLS_STARTTLS &&
	      cf.listeners[0].internal && !cf.listeners[0].tls_legacy);
	CHECK(cf.listeners[1].role == CONF_ROLE_SUBMISSION && cf.listeners[1].tls_legacy);
	CHECK(cf.listeners[2].tls == CONF_TLS_IMPLICIT && cf.listeners[2].role == CONF_ROLE_SUBMISSION);
	CHECK(cf.listeners[3].auth_plaintext_loopback && cf.listeners[3].tls == CONF_TLS_NONE);
	CHECK(strcmp(cf.tls_cert, "/etc/moat/cert.pem") == 0 && cf.tls_cert_line == 7);
	CHECK(strcmp(cf.tls_key, "/etc/moat/key.pem") == 0 && cf.tls_key_line == 9);
	CHECK(strcmp(cf.users, "/etc/moat/users") == 0 && cf.users_line == 10);
	CHECK(cf.ndeny_nets == 2 && cf.deny_nets[0].never_connect && !cf.deny_nets[1].never_connect);
	CHECK(cf.nrcpt_lists == 2 && cf.rcpt_lists[0].line == 13 && cf.rcpt_lists[1].path[0] == '\0');
	CHECK(conf_rcptlist_find(&cf, &cf.domains[0]) == &cf.rcpt_lists[0]);
	CHECK(conf_rcptlist_find(&cf, &cf.domains[1]) == &cf.rcpt_lists[1]);
	conf_format(&cf, buf, sizeof buf);
	CHECKF(strstr(buf, "listen 127.0.0.1:25 tls=starttls internal\n"
	                   "listen [::1]:587 role=submission tls=starttls tls-legacy\n"
	                   "listen 0.0.0.0:465 role=submission tls=implicit\n"
	                   "listen 127.0.0.1:2587 role=submission auth-plaintext-loopback\n") != NULL,
	       "got:\n%s", buf);
	CHECKF(strstr(buf, "deny-network 192.0.2.0/24 never-connect\ndeny-network 2001:db8::/32\n"
	                   "recipients example.org /etc/moat/rcpt\n"
	                   "recipients *.example.net catch-all\n") != NULL, "got:\n%s", buf);
	/* The printed form parses to the same struct (line numbers aside). */
	struct conf copy = cf;
	CHECKF(load(buf) == 0, "%s", err);
	CHECK(memcmp(copy.listeners, cf.listeners, sizeof cf.listeners) == 0);
	CHECK(memcmp(copy.deny_nets, cf.deny_nets, sizeof cf.deny_nets) == 0);
	CHECK(cf.nrcpt_lists == 2 && strcmp(cf.rcpt_lists[0].path, "/etc/moat/rcpt") == 0);
}

static void test_format_defaults(void)
{
	static char buf[4096];

	CHECKF(load("relay-network 127.0.0.0/8\n") == 0, "%s", err);
	conf_format(&cf, buf, sizeof buf);
	CHECKF(strcmp(buf,
		"# hostname: not set, taken from uname at start\n"
		"listen 0.0.0.0:25\n"
		"# domain: none\n"
		"relay-network 127.0.0.0/8\n"
		"queue /var/lib/moat/queue\n"
		"queue-map-size 4551M\n"
		"queue-max-bytes 2G\n"
		"queue-max-messages 100000\n"
		"queue-min-free 64M\n"
		"queue-min-free-percent 5\n"
		"queue-client-share 25\n"
		"max-message-size 35M\n"
		"max-recipients 1000\n"
		"max-errors 20\n"
		"max-connections 4000\n"
		"max-connections-per-client 50\n"
		"max-messages-per-connection 1000\n"
		"max-junk-commands 100\n"
		"max-hops 100\n"
		"max-session-time 1h\n"
		"timeout-command 300\n"
		"timeout-data 180\n"
		"timeout-data-total 1200\n"
		"greet-delay 0\n"
		"# tls-cert: none\n"
		"# tls-key: none\n"
		"# users: none\n"
		"auth-max-failures 5\n"
		"auth-block-seconds 900\n"
		"auth-fail-delay 1000\n"
		"# deny-network: none\n"
		DELIVERY_DEFAULTS
		"reject-early-pipelining on\n"
		"reject-invalid-helo on\n"
		"reject-forged-helo on\n"
		"reject-forged-sender off\n"
		"tarpit-after 10\n"
		"tarpit-delay 1000\n"
		"tarpit-max-delay 10000\n"
		"# dnsbl: none\n"
		"dnsbl-threshold 1\n"
		"dnsbl-stage rcpt\n"
		"dnsbl-timeout 5s\n"
		"dnsbl-negative-ttl 1m\n"
		"# dkim-sign: none\n"
		"log stderr\n"
		"log-facility mail\n"
		"# metrics-listen: none\n"
		"shutdown-timeout 8s\n"
		"user-id 65532\n"
		"group-id 65532\n") == 0, "got:\n%s", buf);
}

struct bad_case {
	const char *text;
	const char *message;   /* the whole error, as conf_parse/conf_finish writes it */
};

static const struct bad_case bad_cases[] = {
	{ "domain a.org\nlog file\n",
	  "t.conf:2: log: bad log target 'file' (stderr, syslog [SOCKET], or remote udp|tcp|tls HOST[:PORT])" },
	{ "log stderr /dev/log\n", "t.conf:1: log: stderr takes no socket: '/dev/log'" },
	{ "log syslog dev/log\n", "t.conf:1: log: not an absolute path: 'dev/log'" },
	{ "log syslog /a /b\n",
	  "t.conf:1: log: too many arguments (log stderr|syslog [SOCKET]|remote udp|tcp|tls HOST[:PORT] "
	  "[buffer SIZE])" },
	{ "log-facility kern\n", "t.conf:1: log-facility: unknown facility 'kern' "
	  "(mail, daemon, user, auth, authpriv, local0 ... local7)" },
	{ "metrics-listen 0\n", "t.conf:1: metrics-listen: bad port '0'" },
	{ "metrics-listen 65536\n", "t.conf:1: metrics-listen: bad port '65536'" },
	{ "metrics-listen localhost:9100\n", "t.conf:1: metrics-listen: bad address:port "
	  "'localhost:9100' (use 9025 for 127.0.0.1:9025, 192.0.2.1:9025 or [::1]:9025)" },
	{ "metrics-listen 1\nmetrics-listen 2\n",
	  "t.conf:2: metrics-listen: given twice (first on line 1)" },
	{ "domain a.org\nlisten 127.0.0.1:2525\nmetrics-listen 2525\n",
	  "t.conf:3: metrics-listen 127.0.0.1:2525 is also an SMTP listener (127.0.0.1:2525)" },
	{ "domain a.org\nlisten [::]:2525\nmetrics-listen [::1]:2525\n",
	  "t.conf:3: metrics-listen [::1]:2525 is also an SMTP listener ([::]:2525)" },
	{ "shutdown-timeout 0\n", "t.conf:1: shutdown-timeout: 0 is below the minimum 1" },
	{ "shutdown-timeout 3601\n", "t.conf:1: shutdown-timeout: 3601 is above the maximum 3600" },
	{ "user-id 0\n", "t.conf:1: user-id: 0 is below the minimum 1 (not root)" },
	{ "group-id 0\n", "t.conf:1: group-id: 0 is below the minimum 1 (not root)" },
	{ "frobnicate yes\n", "t.conf:1: unknown directive 'frobnicate'" },
	{ "Domain example.org\n", "t.conf:1: unknown directive 'Domain'" },
	{ "domain example.org\n\n# x\nrelay-network 10.0.0.0/33\n",
	  "t.conf:4: relay-network: bad CIDR '10.0.0.0/33'" },
	{ "relay-network 2001:db8::/129\n", "t.conf:1: relay-network: bad CIDR '2001:db8::/129'" },
	{ "relay-network 2001:db8:::/32\n", "t.conf:1: relay-network: bad CIDR '2001:db8:::/32'" },
	{ "relay-network 010.0.0.0/8\n", "t.conf:1: relay-network: bad CIDR '010.0.0.0/8'" },
	{ "relay-network example.org\n", "t.conf:1: relay-network: bad CIDR 'example.org'" },
	{ "relay-network 10.1.2.3/8\n",
	  "t.conf:1: relay-network: host bits set in '10.1.2.3/8' (the network is 10.0.0.0/8)" },
	{ "relay-network 2001:db8::1/32\n",
	  "t.conf:1: relay-network: host bits set in '2001:db8::1/32' (the network is 2001:db8::/32)" },
	{ "relay-network 10.0.0.0/8\nrelay-network 10.0.0.0/8\n",
	  "t.conf:2: relay-network: duplicate network '10.0.0.0/8'" },
	{ "listen 127.0.0.1:25\nlisten 127.0.0.1:25\n",
	  "t.conf:2: listen: duplicate listener '127.0.0.1:25'" },
	{ "listen *:25\nlisten 0.0.0.0:25\n", "t.conf:2: listen: duplicate listener '0.0.0.0:25'" },
	{ "listen [::1]:25\nlisten [0::1]:25\n", "t.conf:2: listen: duplicate listener '[0::1]:25'" },
	{ "listen *:25\nlisten 127.0.0.1:25\n",
	  "t.conf:2: listen: '127.0.0.1:25' overlaps '0.0.0.0:25' (one is a wildcard)" },
	{ "listen 127.0.0.1:25\nlisten 0.0.0.0:25\n",
	  "t.conf:2: listen: '0.0.0.0:25' overlaps '127.0.0.1:25' (one is a wildcard)" },
	{ "listen [::]:25\nlisten [::1]:25\n",
	  "t.conf:2: listen: '[::1]:25' overlaps '[::]:25' (one is a wildcard)" },
	{ "listen 127.0.0.1:0\n",
	  "t.conf:1: listen: bad address:port '127.0.0.1:0' (use 192.0.2.1:25, [2001:db8::1]:25, *:25 or [::]:25)" },
	{ "listen 127.0.0.1:65536\n",
	  "t.conf:1: listen: bad address:port '127.0.0.1:65536' (use 192.0.2.1:25, [2001:db8::1]:25, *:25 or [::]:25)" },
	{ "listen ::1:25\n",
	  "t.conf:1: listen: bad address:port '::1:25' (use 192.0.2.1:25, [2001:db8::1]:25, *:25 or [::]:25)" },
	{ "listen localhost:25\n",
	  "t.conf:1: listen: bad address:port 'localhost:25' (use 192.0.2.1:25, [2001:db8::1]:25, *:25 or [::]:25)" },
	{ "domain example.org\ndomain EXAMPLE.org.\n",
	  "t.conf:2: domain: duplicate domain 'EXAMPLE.org.'" },
	{ "domain example.org\ndomain *.example.org\n",
	  "t.conf:2: domain: duplicate domain '*.example.org'" },
	{ "domain exa_mple.org\n", "t.conf:1: domain: bad domain 'exa_mple.org'" },
	{ "domain *.\n", "t.conf:1: domain: bad domain '*.'" },
	{ "domain *\n", "t.conf:1: domain: bad domain '*'" },
	{ "domain a.*.org\n", "t.conf:1: domain: bad domain 'a.*.org'" },
	{ "domain -a.org\n", "t.conf:1: domain: bad domain '-a.org'" },
	{ "domain a..org\n", "t.conf:1: domain: bad domain 'a..org'" },
	{ "domain a.org..\n", "t.conf:1: domain: bad domain 'a.org..'" },
	{ "domain .\n", "t.conf:1: domain: bad domain '.'" },
	{ "hostname a.org..\n", "t.conf:1: hostname: bad host name 'a.org..'" },
	{ "domain [127.0.0.1]\n",
	  "t.conf:1: domain: an address literal is not a domain: '[127.0.0.1]'" },
	{ "domain\n", "t.conf:1: domain: missing argument" },
	{ "domain   # a comment is no argument\n", "t.conf:1: domain: missing argument" },
	{ "domain a.org b.org\n", "t.conf:1: domain: too many arguments (it takes one)" },
	{ "domain a.org b c d e f g h\n", "t.conf:1: domain: too many arguments (it takes one)" },
	{ "hostname a.org\nhostname b.org\n", "t.conf:2: hostname: given twice (first on line 1)" },
	{ "hostname bad..name\n", "t.conf:1: hostname: bad host name 'bad..name'" },
	{ "hostname [192.0.2.1]\n", "t.conf:1: hostname: bad host name '[192.0.2.1]'" },
	{ "queue var/q\n", "t.conf:1: queue: not an absolute path: 'var/q'" },
	{ "max-recipients 50\n",
	  "t.conf:1: max-recipients: 50 is below the minimum 100 (RFC 5321 4.5.3.1.8)" },
	{ "max-recipients 10001\n", "t.conf:1: max-recipients: 10001 is above the maximum 10000" },
	{ "max-recipients -1\n", "t.conf:1: max-recipients: bad number '-1'" },
	{ "max-recipients +100\n", "t.conf:1: max-recipients: bad number '+100'" },
	{ "max-recipients 100x\n", "t.conf:1: max-recipients: bad number '100x'" },
	{ "max-recipients 0x100\n", "t.conf:1: max-recipients: bad number '0x100'" },
	{ "max-recipients 99999999999999999999999\n",
	  "t.conf:1: max-recipients: bad number '99999999999999999999999'" },
	{ "max-recipients 4294967396\n",
	  "t.conf:1: max-recipients: 4294967396 is above the maximum 10000" },
	{ "max-errors 0\n", "t.conf:1: max-errors: 0 is below the minimum 1" },
	{ "timeout-command 3601\n", "t.conf:1: timeout-command: 3601 is above the maximum 3600" },
	{ "greet-delay 60001\n", "t.conf:1: greet-delay: 60001 is above the maximum 60000" },
	{ "max-message-size 10X\n",
	  "t.conf:1: max-message-size: bad size '10X' (bytes, or a number with K, M or G)" },
	{ "max-message-size M\n",
	  "t.conf:1: max-message-size: bad size 'M' (bytes, or a number with K, M or G)" },
	{ "max-message-size 10MB\n",
	  "t.conf:1: max-message-size: bad size '10MB' (bytes, or a number with K, M or G)" },
	{ "max-message-size 1.5M\n",
	  "t.conf:1: max-message-size: bad size '1.5M' (bytes, or a number with K, M or G)" },
	{ "max-message-size 17179869184G\n",
	  "t.conf:1: max-message-size: bad size '17179869184G' (bytes, or a number with K, M or G)" },
	{ "max-message-size 2G\n", "t.conf:1: max-message-size: 2G is above the maximum 1G" },
	{ "max-message-size 0\n", "t.conf:1: max-message-size: 0 is below the minimum 1" },
	{ "queue-map-size 2048G\n", "t.conf:1: queue-map-size: 2048G is above the maximum 1024G" },
	{ "queue-map-size 1T\n",
	  "t.conf:1: queue-map-size: bad size '1T' (bytes, or a number with K, M or G)" },
	{ "domain a.org\nhostname x\001y\n", "t.conf:2: control character in line" },
	/* listener options, TLS, AUTH, deny networks, recipient lists */
	{ "listen 127.0.0.1:25 role=relay\n",
	  "t.conf:1: listen: bad role 'role=relay' (role=mx or role=submission)" },
	{ "listen 127.0.0.1:25 tls=yes\n",
	  "t.conf:1: listen: bad TLS mode 'tls=yes' (tls=none, tls=starttls or tls=implicit)" },
	{ "listen 127.0.0.1:25 starttls\n",
	  "t.conf:1: listen: unknown option 'starttls' (role=, tls=, tls-legacy, auth-plaintext-loopback, internal, proxy)" },
	{ "listen 127.0.0.1:25 tls-legacy\n",
	  "t.conf:1: listen: tls-legacy needs tls=starttls or tls=implicit" },
	{ "listen 127.0.0.1:25 auth-plaintext-loopback\n",
	  "t.conf:1: listen: auth-plaintext-loopback needs role=submission" },
	{ "listen 127.0.0.1:25 a b c d e f\n",
	  "t.conf:1: listen: too many arguments (listen ADDR:PORT [options])" },
	{ "deny-network 10.0.0.0/8 always\n",
	  "t.conf:1: deny-network: unknown option 'always' (the only option is never-connect)" },
	{ "deny-network 10.0.0.0/8 never-connect x\n",
	  "t.conf:1: deny-network: too many arguments (deny-network CIDR [never-connect])" },
	{ "deny-network 10.0.0.1/8\n",
	  "t.conf:1: deny-network: host bits set in '10.0.0.1/8' (the network is 10.0.0.0/8)" },
	{ "recipients example.org\n",
	  "t.conf:1: recipients: missing argument (recipients DOMAIN PATH|catch-all)" },
	{ "recipients example.org rel/path\n",
	  "t.conf:1: recipients: not an absolute path: 'rel/path'" },
	{ "domain a.org\nrecipients b.org /x\n",
	  "t.conf:2: recipients: 'b.org' is not one of our domains (list it in a domain line, in the same form)" },
	{ "domain a.org\nrecipients a.org /x\nrecipients A.org catch-all\n",
	  "t.conf:3: recipients: second list for domain 'A.org'" },
	{ "domain a.org\ntls-cert /c.pem\n", "t.conf:2: tls-cert without tls-key" },
	{ "domain a.org\n\ntls-key /k.pem\n", "t.conf:3: tls-key without tls-cert" },
	{ "domain a.org\nlisten 127.0.0.1:465 tls=implicit\n",
	  "t.conf: listen 127.0.0.1:465 has TLS but there is no tls-cert and tls-key" },
	{ "domain a.org\nlisten 127.0.0.1:587 role=submission tls=starttls\ntls-cert /c\ntls-key /k\n",
	  "t.conf: listen 127.0.0.1:587 is for submission but there is no users file" },
	{ "domain a.org\nlisten 127.0.0.1:587 role=submission\nusers /u\n",
	  "t.conf: listen 127.0.0.1:587 is for submission without TLS: AUTH would never be offered "
	  "(add tls=starttls, tls=implicit or auth-plaintext-loopback)" },
	{ "auth-max-failures 0\n", "t.conf:1: auth-max-failures: 0 is below the minimum 1" },
	{ "auth-fail-delay 10001\n", "t.conf:1: auth-fail-delay: 10001 is above the maximum 10000" },
	{ "domain a.org\nhostname a\rb\n", "t.conf:2: control character in line" },
	/* conf_finish */
	{ "", "t.conf: no domain and no relay-network: this relay would accept nothing" },
	{ "# only a comment\n\n   \n",
	  "t.conf: no domain and no relay-network: this relay would accept nothing" },
	{ "domain a.org\nqueue-map-size 1M\n",
	  "t.conf: queue-map-size 1M is below 4551M, what queue-max-bytes 2G and "
	  "queue-max-messages 100000 need (leave queue-map-size out to have it sized for them)" },
	{ "domain a.org\nqueue-max-bytes 20M\n",
	  "t.conf: max-message-size 35M must not exceed queue-max-bytes 20M" },
	{ "queue-max-bytes 257G\n", "t.conf:1: queue-max-bytes: 257G is above the maximum 256G" },
	{ "queue-max-bytes 1023K\n", "t.conf:1: queue-max-bytes: 1023K is below the minimum 1M" },
	{ "queue-max-messages 0\n", "t.conf:1: queue-max-messages: 0 is below the minimum 1" },
	{ "queue-max-messages 10000001\n",
	  "t.conf:1: queue-max-messages: 10000001 is above the maximum 10000000" },
	{ "queue-min-free 1025G\n", "t.conf:1: queue-min-free: 1025G is above the maximum 1024G" },
	{ "queue-min-free-percent 51\n",
	  "t.conf:1: queue-min-free-percent: 51 is above the maximum 50" },
	{ "queue-client-share 0\n", "t.conf:1: queue-client-share: 0 is below the minimum 1" },
	{ "queue-client-share 101\n", "t.conf:1: queue-client-share: 101 is above the maximum 100" },
	{ "max-connections-per-client 0\n",
	  "t.conf:1: max-connections-per-client: 0 is below the minimum 1" },
	{ "max-messages-per-connection 0\n",
	  "t.conf:1: max-messages-per-connection: 0 is below the minimum 1" },
	{ "max-junk-commands 1000001\n",
	  "t.conf:1: max-junk-commands: 1000001 is above the maximum 1000000" },
	{ "max-junk-commands -1\n", "t.conf:1: max-junk-commands: bad number '-1'" },
	{ "max-session-time 8d\n", "t.conf:1: max-session-time: 691200 is above the maximum 604800" },
	{ "max-session-time 1w\n",
	  "t.conf:1: max-session-time: bad duration '1w' (seconds, or a number with s, m, h or d)" },
	{ "timeout-data-total 0\n", "t.conf:1: timeout-data-total: 0 is below the minimum 1" },
	{ "timeout-data-total 86401\n",
	  "t.conf:1: timeout-data-total: 86401 is above the maximum 86400" },
};

/* log, log-facility, metrics-listen, shutdown-timeout: values and the
 * effective text they print. */
static void test_ops_directives(void)
{
	static char buf[64 * 1024];
	char ip[IP_TEXT_MAX];

	CHECKF(load("domain a.org\nlog syslog\nlog-facility local3\nmetrics-listen 9025\n"
	            "shutdown-timeout 30\n") == 0, "%s", err);
	CHECK(cf.log_target == CONF_LOG_SYSLOG);
	CHECK(strcmp(cf.log_socket, "/dev/log") == 0);
	CHECK(cf.log_facility == 19);
	CHECK(cf.metrics.port == 9025 && cf.metrics.addr.family == IP_V4 && !cf.metrics.any);
	ip_format(&cf.metrics.addr, ip, sizeof ip);
	CHECKF(strcmp(ip, "127.0.0.1") == 0, "%s", ip);
	CHECK(cf.shutdown_timeout == 30);
	conf_format(&cf, buf, sizeof buf);
	CHECKF(strstr(buf, "\nlog syslog /dev/log\nlog-facility local3\nmetrics-listen "
	                   "127.0.0.1:9025\nshutdown-timeout 30s\n") != NULL, "%s", buf);

	CHECKF(load("domain a.org\nlog syslog /run/moat/log.sock\nlog-facility daemon\n"
	            "metrics-listen [::]:9100\nlisten [::1]:9100\n") == -1, "%s", err);
	CHECKF(strstr(err, "is also an SMTP listener") != NULL, "%s", err);
	CHECKF(load("domain a.org\nlog syslog /run/moat/log.sock\nlog-facility daemon\n"
	            "metrics-listen [::1]:9100\nlisten 127.0.0.1:9100\nlog stderr\n") == -1, "%s", err);
	CHECKF(strcmp(err, "t.conf:6: log: given twice (first on line 2)") == 0, "%s", err);
	CHECKF(load("domain a.org\nlog syslog /run/moat/log.sock\nlog-facility daemon\n"
	            "metrics-listen [::1]:9100\nlisten 127.0.0.1:9100\n") == 0, "%s", err);
	CHECK(strcmp(cf.log_socket, "/run/moat/log.sock") == 0 && cf.log_facility == 3);
	CHECK(cf.metrics.port == 9100 && cf.metrics.addr.family == IP_V6);
	CHECK(strcmp(conf_facility_name(3), "daemon") == 0 && conf_facility_name(0) == NULL);
}

static void test_bad(void)
{
	for (size_t k = 0; k < sizeof bad_cases / sizeof bad_cases[0]; k++) {
		const struct bad_case *tc = &bad_cases[k];
		int r = load(tc->text);
		CHECKF(r == -1 && strcmp(err, tc->message) == 0, "case %zu: got %d '%s'\n    want '%s'",
		       k, r, err, tc->message);
	}
}

/* Things the table cannot hold: NUL bytes, long lines, caps. */
static void test_bad_bytes(void)
{
	static char text[8192];

	memcpy(text, "domain a.org\nhostname a\0b\n", 27);
	conf_defaults(&cf);
	CHECK(conf_parse(text, 27, "t.conf", &cf, err, sizeof err) == -1);
	CHECKF(strcmp(err, "t.conf:2: NUL byte in line") == 0, "%s", err);

	/* CONF_LINE_MAX bytes is fine, one more is not; a CR does not count. */
	memset(text, ' ', sizeof text);
	memcpy(text, "domain a.org", 12);
	text[CONF_LINE_MAX] = '\r';
	text[CONF_LINE_MAX + 1] = '\n';
	conf_defaults(&cf);
	CHECKF(conf_parse(text, CONF_LINE_MAX + 2, "t.conf", &cf, err, sizeof err) == 0, "%s", err);
	conf_defaults(&cf);
	CHECKF(conf_parse(text, CONF_LINE_MAX + 1, "t.conf", &cf, err, sizeof err) == 0, "%s", err);
	conf_defaults(&cf);
	CHECKF(conf_parse(text, CONF_LINE_MAX, "t.conf", &cf, err, sizeof err) == 0, "%s", err);
	text[CONF_LINE_MAX] = ' ';
	text[CONF_LINE_MAX + 1] = '\r';
	text[CONF_LINE_MAX + 2] = '\n';
	conf_defaults(&cf);
	CHECK(conf_parse(text, CONF_LINE_MAX + 3, "t.conf", &cf, err, sizeof err) == -1);
	CHECKF(strcmp(err, "t.conf:1: line too long (over 1024 bytes)") == 0, "%s", err);
	conf_defaults(&cf);
	CHECK(conf_parse(text, CONF_LINE_MAX + 1, "t.conf", &cf, err, sizeof err) == -1);
	CHECKF(strcmp(err, "t.conf:1: line too long (over 1024 bytes)") == 0, "%s", err);
}

/* "domain aaa.aaa..." with labels of the given lengths (0 ends). */
static int load_domain(char *text, const size_t *labels)
{
	size_t n = 7;

	memcpy(text, "domain ", 7);
	for (size_t k = 0; labels[k] != 0; k++) {
		if (k > 0)
			text[n++] = '.';
		memset(text + n, 'a', labels[k]);
		n += labels[k];
	}
	conf_defaults(&cf);
	return conf_parse(text, n, "t.conf", &cf, err, sizeof err);
}

static void test_caps(void)
{
	static char text[64 * 1024];
	size_t n = 0;

	for (int k = 0; k <= CONF_MAX_LISTENERS; k++) {
		memcpy(text + n, "listen 127.0.0.1:", 17);
		n += 17;
		text[n++] = (char)('1' + k / 10);
		text[n++] = (char)('0' + k % 10);
		text[n++] = '\n';
	}
	conf_defaults(&cf);
	CHECK(conf_parse(text, n, "t.conf", &cf, err, sizeof err) == -1);
	CHECKF(strcmp(err, "t.conf:17: listen: too many listeners (at most 16)") == 0, "%s", err);

	n = 0;
	for (int k = 0; k <= CONF_MAX_DOMAINS; k++) {
		memcpy(text + n, "domain d", 8);
		n += 8;
		for (int v = k; ; v /= 10) {
			text[n++] = (char)('0' + v % 10);
			if (v < 10)
				break;
		}
		memcpy(text + n, ".org\n", 5);
		n += 5;
	}
	conf_defaults(&cf);
	CHECK(conf_parse(text, n, "t.conf", &cf, err, sizeof err) == -1);
	CHECKF(strcmp(err, "t.conf:257: domain: too many domains (at most 256)") == 0, "%s", err);

	/* A 255-byte domain is the longest. */
	static const size_t ok_labels[] = { 63, 63, 63, 63, 0 };
	static const size_t long_labels[] = { 63, 63, 63, 62, 1, 0 };
	CHECKF(load_domain(text, ok_labels) == 0, "%s", err);
	CHECK(cf.ndomains == 1 && strlen(cf.domains[0].name) == 255);
	CHECK(load_domain(text, long_labels) == -1);
}

/* A small error buffer gets a truncated, NUL-terminated message. */
static void test_err_truncated(void)
{
	char small[12];

	memset(small, 'Z', sizeof small);
	conf_defaults(&cf);
	CHECK(conf_parse("bogus x\n", 8, "t.conf", &cf, small, 8) == -1);
	CHECK(strcmp(small, "t.conf:") == 0 && small[8] == 'Z');
	CHECK(conf_parse("bogus x\n", 8, "t.conf", &cf, NULL, 0) == -1);
}

/* Every prefix of the good file, in a buffer of exactly that size (ASan
 * catches a read past it): parses or fails cleanly, never crashes. */
static void test_prefixes(void)
{
	size_t len = sizeof good_file - 1;

	for (size_t cut = 0; cut <= len; cut++) {
		char *copy = malloc(cut ? cut : 1);
		if (copy == NULL)
			return;
		memcpy(copy, good_file, cut);
		conf_defaults(&cf);
		int r = conf_parse(copy, cut, "t.conf", &cf, err, sizeof err);
		CHECK(r == 0 || r == -1);
		CHECK(memchr(err, '\0', sizeof err) != NULL);
		free(copy);
	}
}

/* Listeners that bind side by side: IPv4 and IPv6 wildcards (the server
 * sets IPV6_V6ONLY), and specific addresses on other ports. */
static void test_listeners_ok(void)
{
	static const char text[] =
		"domain a.org\n"
		"listen 0.0.0.0:25\n"
		"listen [::]:25\n"
		"listen 127.0.0.1:2525\n"
		"listen 127.0.0.2:2525\n"
		"listen [::1]:2525\n"
		"listen 0.0.0.0:587\n";

	CHECKF(load(text) == 0, "%s", err);
	CHECK(cf.nlisteners == 6);
	CHECK(cf.listeners[0].any && cf.listeners[1].any && !cf.listeners[2].any);
	CHECK(cf.listeners[1].addr.family == IP_V6);
}

/* A second file layered on a first: repeatable directives add up. */
static void test_layering(void)
{
	conf_defaults(&cf);
	CHECK(conf_parse("domain a.org\n", 13, "a.conf", &cf, err, sizeof err) == 0);
	CHECK(conf_parse("domain b.org\nmax-errors 3\n", 26, "b.conf", &cf, err, sizeof err) == 0);
	CHECK(cf.ndomains == 2 && cf.max_errors == 3);
	CHECK(conf_parse("domain A.org\n", 13, "c.conf", &cf, err, sizeof err) == -1);
	CHECKF(strcmp(err, "c.conf:1: domain: duplicate domain 'A.org'") == 0, "%s", err);
}

/* Delivery: routes, the smarthost, DNS servers, durations. */
static void test_delivery(void)
{
	struct ipaddr ip;

	conf_defaults(&cf);
	CHECK(cf.delivery == 1 && cf.nroutes == 0 && cf.smarthost.host[0] == 0);
	CHECK(cf.retry_min == 300 && cf.retry_max == 3600 && cf.queue_lifetime == 432000);
	CHECK(cf.delay_warning == 0 && cf.outbound_tls == CONF_OTLS_MAY);
	CHECK(strcmp(cf.tls_ca_file, "/etc/ssl/certs/ca-certificates.crt") == 0);
	CHECKF(load("domain example.org\n"
	            "delivery off\n"
	            "route Example.ORG. [192.0.2.25]:2525 verify-recipients tls require\n"
	            "route *.example.net MX.Example.net\n"
	            "route example.com 192.0.2.26\n"
	            "route example.info [2001:db8::1] smtps\n"
	            "smarthost relay.example:587 tls verify auth /etc/moat/a\n"
	            "dns-server 127.0.0.1:5353\n"
	            "dns-server [::1]\n"
	            "retry-min 90\n"
	            "retry-max 2h\n"
	            "queue-lifetime 1d\n"
	            "delay-warning 30m\n") == 0, "%s", err);
	CHECK(cf.delivery == 0);
	CHECK(cf.nroutes == 4);
	CHECK(strcmp(cf.routes[0].domain.name, "example.org") == 0 && !cf.routes[0].domain.subdomains);
	CHECK(cf.routes[0].hop.literal && cf.routes[0].hop.port == 2525);
	CHECK(ip_parse("192.0.2.25", 10, &ip) == 0 && ip_equal(&cf.routes[0].hop.addr, &ip));
	CHECK(cf.routes[0].hop.verify_rcpt && cf.routes[0].hop.tls == CONF_OTLS_REQUIRE);
	CHECK(cf.routes[1].domain.subdomains && strcmp(cf.routes[1].hop.host, "mx.example.net") == 0);
	CHECK(!cf.routes[1].hop.literal && cf.routes[1].hop.port == 25 &&
	      cf.routes[1].hop.tls == CONF_OTLS_MAY && !cf.routes[1].hop.verify_rcpt);
	CHECK(cf.routes[2].hop.literal && strcmp(cf.routes[2].hop.host, "192.0.2.26") == 0);
	CHECK(cf.routes[3].hop.literal && cf.routes[3].hop.addr.family == IP_V6 &&
	      cf.routes[3].hop.smtps && cf.routes[3].hop.port == 465);
	CHECK(strcmp(cf.smarthost.host, "relay.example") == 0 && cf.smarthost.port == 587);
	CHECK(cf.smarthost.tls == CONF_OTLS_VERIFY && strcmp(cf.smarthost_auth, "/etc/moat/a") == 0);
	CHECK(cf.ndns_servers == 2 && cf.dns_servers[0].port == 5353 && cf.dns_servers[1].port == 53);
	CHECK(cf.dns_servers[1].addr.family == IP_V6);
	CHECK(cf.retry_min == 90 && cf.retry_max == 7200 && cf.queue_lifetime == 86400);
	CHECK(cf.delay_warning == 1800);

	CHECK(load("domain example.org\nroute example.org [192.0.2.1]\nroute EXAMPLE.org x\n") == -1);
	CHECK(strstr(err, "t.conf:3: route: duplicate route") == err);
	CHECK(load("domain example.org\nroute example.org [x]:25\n") == -1);
	CHECK(load("domain example.org\nroute example.org [192.0.2.1]:99999\n") == -1);
	CHECK(load("domain example.org\nroute example.org host:\n") == -1);
	CHECK(load("domain example.org\nroute [192.0.2.1] x\n") == -1);
	CHECK(load("domain example.org\nroute example.org x tls\n") == -1);
	CHECK(load("domain example.org\nsmarthost x verify-recipients\n") == -1);
	CHECK(load("domain example.org\nsmarthost x\nsmarthost y\n") == -1);
	CHECK(load("domain example.org\ndns-server 1.2.3.4\ndns-server 1.2.3.5\n"
	           "dns-server 1.2.3.6\ndns-server 1.2.3.7\n") == -1);
	CHECK(strstr(err, "too many servers") != NULL);
	CHECK(load("domain example.org\nretry-min 0\n") == -1);
	CHECK(load("domain example.org\nretry-min 99999999999d\n") == -1);
	CHECK(load("domain example.org\nretry-min 5 m\n") == -1);
	CHECK(load("domain example.org\nhostname a b\n") == -1);
	CHECK(strstr(err, "too many arguments (it takes one)") != NULL);
}

/* Authenticated TLS toward MX hosts: mta-sts, dane, tls-report, dns-dnssec. */
static void test_tls_policy(void)
{
	static char buf[64 * 1024];

	conf_defaults(&cf);
	CHECK(cf.mta_sts == 1 && cf.dane == 1 && cf.tls_report == CONF_TLS_REPORT_OFF);
	CHECK(cf.dns_dnssec == CONF_DNSSEC_OFF);
	CHECKF(load("domain example.org\nmta-sts off\ndane off\ntls-report mailto\n"
	            "dns-dnssec trusted\n") == 0, "%s", err);
	CHECK(cf.mta_sts == 0 && cf.dane == 0 && cf.tls_report == CONF_TLS_REPORT_MAILTO);
	CHECK(cf.dns_dnssec == CONF_DNSSEC_TRUSTED);
	conf_format(&cf, buf, sizeof buf);
	CHECKF(strstr(buf, "\nmta-sts off\ndane off\ntls-report mailto\n") != NULL, "%s", buf);
	CHECKF(strstr(buf, "\ndns-dnssec trusted\n") != NULL, "%s", buf);
	/* What conf_format() prints reads back the same. */
	{
		struct conf copy = cf;
		CHECKF(load(buf) == 0, "%s", err);
		CHECK(cf.mta_sts == copy.mta_sts && cf.dane == copy.dane &&
		      cf.tls_report == copy.tls_report && cf.dns_dnssec == copy.dns_dnssec);
	}
	CHECKF(load("domain example.org\ndns-dnssec on\n") == -1, "%s", err);
	CHECKF(strcmp(err, "t.conf:2: dns-dnssec: want trusted or off, not 'on'") == 0, "%s", err);
	CHECKF(load("domain example.org\ntls-report https\n") == -1, "%s", err);
	CHECKF(strcmp(err, "t.conf:2: tls-report: want off or mailto, not 'https'") == 0, "%s", err);
	CHECKF(load("domain example.org\nmta-sts enforce\n") == -1, "%s", err);
	CHECKF(load("domain example.org\ndane on\ndane off\n") == -1, "%s", err);
	CHECKF(strstr(err, "given twice") != NULL, "%s", err);
	CHECKF(load("domain example.org\ndns-dnssec\n") == -1, "%s", err);
	CHECKF(load("domain example.org\ndns-dnssec trusted off\n") == -1, "%s", err);
}

/* The appliance's network directives (net-*): host bits kept, one
 * gateway per family, printed only when set. */
static void test_net(void)
{
	static const char base[] = "domain example.org\n";
	char text[1024], out[4096];
	struct ipaddr ip;

	snprintf(text, sizeof text, "%s%s", base,
	         "net-interface eth1\nnet-address 192.0.2.10/24\nnet-address 2001:DB8::10/64\n"
	         "net-gateway 192.0.2.1\nnet-gateway fe80::1\n");
	CHECKF(load(text) == 0, "%s", err);
	CHECK(strcmp(cf.net_interface, "eth1") == 0);
	CHECK(cf.nnet_addrs == 2 && cf.net_addrs[0].prefix == 24 && cf.net_addrs[1].prefix == 64);
	CHECK(ip_parse("192.0.2.10", 10, &ip) == 0 && ip_equal(&cf.net_addrs[0].addr, &ip));
	CHECK(cf.nnet_gateways == 2 && cf.net_gateways[1].family == IP_V6);
	conf_format(&cf, out, sizeof out);
	CHECK(strstr(out, "net-interface eth1\nnet-address 192.0.2.10/24\n"
	                  "net-address 2001:db8::10/64\nnet-gateway 192.0.2.1\n"
	                  "net-gateway fe80::1\n") != NULL);
	/* Unset: nothing printed (moat serve ignores them). */
	CHECK(load(base) == 0);
	conf_format(&cf, out, sizeof out);
	CHECK(strstr(out, "net-") == NULL);

	static const struct { const char *line, *msg; } bad[] = {
		{ "net-address 192.0.2.10", "t.conf:2: net-address: bad interface address '192.0.2.10'" },
		{ "net-address 192.0.2.10/33", "bad interface address" },
		{ "net-address 192.0.2.10/0", "bad interface address" },
		{ "net-address 2001:db8::1/129", "bad interface address" },
		{ "net-address 192.0.2.10/", "bad interface address" },
		{ "net-address 192.0.2.10/2x", "bad interface address" },
		{ "net-address 192.0.2.10/0024", "bad interface address" },
		{ "net-address host/24", "bad interface address" },
		{ "net-gateway 192.0.2.1/24", "net-gateway: bad address" },
		{ "net-gateway 192.0.2.1\nnet-gateway 192.0.2.2", "a second gateway of the same family" },
		{ "net-address 192.0.2.1/24\nnet-address 192.0.2.1/25", "duplicate address" },
		{ "net-interface eth0/1", "bad interface name" },
		{ "net-interface a23456789012345x", "interface name too long" },
		{ "net-interface eth0\nnet-interface eth1", "given twice" },
	};
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		snprintf(text, sizeof text, "%s%s\n", base, bad[k].line);
		CHECKF(load(text) == -1 && strstr(err, bad[k].msg) != NULL, "%s: %s", bad[k].line, err);
	}
	/* At most CONF_MAX_NET_ADDRS addresses. */
	size_t o = (size_t)snprintf(text, sizeof text, "%s", base);
	for (int k = 0; k <= CONF_MAX_NET_ADDRS; k++)
		o += (size_t)snprintf(text + o, sizeof text - o, "net-address 192.0.2.%d/24\n", k + 1);
	CHECK(load(text) == -1 && strstr(err, "too many addresses (at most 8)") != NULL);
}

int main(void)
{
	RUN(test_defaults);
	RUN(test_good_file);
	RUN(test_crlf);
	RUN(test_format);
	RUN(test_format_defaults);
	RUN(test_tls_options);
	RUN(test_ops_directives);
	RUN(test_bad);
	RUN(test_bad_bytes);
	RUN(test_caps);
	RUN(test_err_truncated);
	RUN(test_prefixes);
	RUN(test_listeners_ok);
	RUN(test_layering);
	RUN(test_delivery);
	RUN(test_net);
	RUN(test_tls_policy);
	return t_main_end();
}
