/* policy/conf.c -- the configuration file, text to struct; see conf.h */
#include <stddef.h>
#include <string.h>

#include "conf.h"
#include "syslog.h"
#include "dkim.h"
#include "dnsbl.h"
#include "quota.h"
#include "text.h"

#define KIB (UINT64_C(1) << 10)
#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)
#define TIB (UINT64_C(1) << 40)

/* Arguments kept per line; more is always "too many arguments". */
#define CONF_ARGS_MAX 8

/* Suffixes of a number: sizes (powers of 1024) and durations (seconds).
 * Printing uses the entries marked print, largest first. */
struct unit {
	char     suffix;
	uint64_t mult;
	int      print;
};
static const struct unit size_units[] = {
	{ 'G', GIB, 1 }, { 'M', MIB, 1 }, { 'K', KIB, 1 },
	{ 'g', GIB, 0 }, { 'm', MIB, 0 }, { 'k', KIB, 0 }, { 0, 0, 0 } };
static const struct unit time_units[] = {
	{ 'd', 86400, 1 }, { 'h', 3600, 1 }, { 'm', 60, 1 }, { 's', 1, 0 }, { 0, 0, 0 } };

/* v with the largest suffix that keeps it exact (35M, 4G, 5d), else
 * plain followed by bare (the number without a unit: "" or "s"). */
static void put_scaled(struct text *t, uint64_t v, const struct unit *u, const char *bare)
{
	for (; u->suffix != 0; u++) {
		if (u->print && v > 0 && v % u->mult == 0) {
			text_put_u64(t, v / u->mult);
			text_put(t, &u->suffix, 1);
			return;
		}
	}
	text_put_u64(t, v);
	text_puts(t, bare);
}

static void put_size(struct text *t, uint64_t v)
{
	put_scaled(t, v, size_units, "");
}

/* A value from the file, quoted, with anything but printable ASCII shown
 * as '?' so that an error message cannot carry control sequences. */
static void put_quoted(struct text *t, const char *s, size_t n)
{
	text_put(t, "'", 1);
	for (size_t k = 0; k < n; k++) {
		char ch = s[k] >= 0x20 && s[k] < 0x7f ? s[k] : '?';
		text_put(t, &ch, 1);
	}
	text_put(t, "'", 1);
}

static void put_ip(struct text *t, const struct ipaddr *ip)
{
	char buf[IP_TEXT_MAX];

	text_put(t, buf, ip_format(ip, buf, sizeof buf));
}

static void put_listener(struct text *t, const struct conf_listener *l)
{
	if (l->addr.family == IP_V6)
		text_puts(t, "[");
	put_ip(t, &l->addr);
	if (l->addr.family == IP_V6)
		text_puts(t, "]");
	text_puts(t, ":");
	text_put_u64(t, l->port);
}

static const char *const role_names[] = { "mx", "submission" };
static const char *const tls_names[] = { "none", "starttls", "implicit" };

/* The listener's options that differ from the defaults (mx, no TLS). */
static void put_listener_options(struct text *t, const struct conf_listener *l)
{
	if (l->role != CONF_ROLE_MX) {
		text_puts(t, " role=");
		text_puts(t, role_names[l->role]);
	}
	if (l->tls != CONF_TLS_NONE) {
		text_puts(t, " tls=");
		text_puts(t, tls_names[l->tls]);
	}
	if (l->tls_legacy)
		text_puts(t, " tls-legacy");
	if (l->auth_plaintext_loopback)
		text_puts(t, " auth-plaintext-loopback");
	if (l->internal)
		text_puts(t, " internal");
	if (l->proxy)
		text_puts(t, " proxy");
}

static void put_cidr(struct text *t, const struct cidr *c)
{
	char buf[IP_TEXT_MAX];

	text_put(t, buf, cidr_format(c, buf, sizeof buf));
}

void conf_defaults(struct conf *c)
{
	memset(c, 0, sizeof *c);
	memcpy(c->queue_path, "/var/lib/moat/queue", sizeof "/var/lib/moat/queue");
	c->queue_map_size = 0;   /* conf_finish: from the quotas */
	c->queue_max_bytes = 2 * GIB;
	c->queue_max_messages = 100000;
	c->queue_min_free = 64 * MIB;
	c->queue_min_free_percent = 5;
	c->queue_client_share = 25;
	c->max_message_size = 35 * MIB;
	c->max_recipients = 1000;
	c->max_errors = 20;
	c->max_connections = 4000;
	c->max_connections_per_client = 50;
	c->max_messages_per_connection = 1000;
	c->max_junk_commands = 100;
	c->max_hops = 100;
	c->max_session_time = 3600;
	c->timeout_command = 300;
	c->timeout_data = 180;
	c->timeout_data_total = 1200;
	c->greeting_delay_ms = 0;
	c->delivery = 1;
	c->outbound_tls = CONF_OTLS_MAY;
	memcpy(c->tls_ca_file, "/etc/ssl/certs/ca-certificates.crt",
	       sizeof "/etc/ssl/certs/ca-certificates.crt");
	c->dns_timeout = 5;
	c->mta_sts = 1;
	c->dane = 1;
	c->tls_report = CONF_TLS_REPORT_OFF;
	c->dns_dnssec = CONF_DNSSEC_OFF;
	c->retry_min = 300;
	c->retry_max = 3600;
	c->queue_lifetime = 5 * 86400;
	c->delay_warning = 0;
	c->delivery_concurrency = 20;
	c->destination_concurrency = 5;
	c->delivery_conn_messages = 100;
	c->delivery_conn_idle = 2;
	c->timeout_connect = 30;
	c->timeout_reply = 300;
	c->verify_cache = 600;
	c->timeout_verify = 20;
	c->auth_max_failures = 5;
	c->auth_block_seconds = 900;
	c->auth_fail_delay_ms = 1000;
	c->reject_early_pipelining = 1;
	c->reject_invalid_helo = 1;
	c->reject_forged_helo = 1;
	c->reject_forged_sender = 0;
	c->tarpit_after = 10;
	c->tarpit_delay_ms = 1000;
	c->tarpit_max_delay_ms = 10000;
	c->dnsbl_threshold = 1;
	c->dnsbl_stage = CONF_DNSBL_RCPT;
	c->dnsbl_timeout = 5;
	c->dnsbl_negative_ttl = 60;
	memcpy(c->log_socket, "/dev/log", sizeof "/dev/log");
	c->log_facility = 2; /* mail */
	c->shutdown_timeout = 8;
	c->run_uid = 65532;
	c->run_gid = 65532;
}

/* The parser's state for one conf_parse() call. */
#define SEEN_MAX 96
struct parse {
	struct conf *c;
	const char  *file;
	size_t       line;
	struct text  err;
	size_t       seen[SEEN_MAX]; /* per single-valued directive: its first line */
	/* Words after the first argument, for directives that take options. */
	const char  *more[CONF_ARGS_MAX];
	size_t       morelen[CONF_ARGS_MAX];
	size_t       nmore;
};

struct directive;
typedef int set_fn(struct parse *p, const struct directive *d, const char *arg, size_t len);
typedef void format_fn(struct text *t, const struct conf *c, const struct directive *d);

/* One row per directive: set() parses its argument, format() prints its
 * lines.  Numbers live at offset in struct conf, as unsigned (set_uint) or
 * uint64_t (set_size), and must lie in min..max. */
struct directive {
	const char *name;
	set_fn     *set;
	format_fn  *format;
	int         repeatable;
	size_t      offset;
	uint64_t    min, max;
	const char *why_min;  /* said when below min, or NULL */
};

/* Start an error "FILE:LINE: NAME: "; the caller appends and returns fail(). */
static struct text *error_at(struct parse *p, const struct directive *d)
{
	struct text *t = &p->err;

	t->len = 0;
	text_puts(t, p->file);
	if (p->line > 0) {
		text_puts(t, ":");
		text_put_u64(t, p->line);
	}
	text_puts(t, ": ");
	if (d != NULL) {
		text_puts(t, d->name);
		text_puts(t, ": ");
	}
	return t;
}

static int fail(struct parse *p)
{
	text_end(&p->err);
	return -1;
}

static int bad_value(struct parse *p, const struct directive *d, const char *what,
                     const char *arg, size_t len, const char *hint)
{
	struct text *t = error_at(p, d);

	text_puts(t, what);
	text_puts(t, " ");
	put_quoted(t, arg, len);
	text_puts(t, hint);
	return fail(p);
}

static int too_many(struct parse *p, const struct directive *d, const char *what, size_t max)
{
	struct text *t = error_at(p, d);

	text_puts(t, "too many ");
	text_puts(t, what);
	text_puts(t, " (at most ");
	text_put_u64(t, max);
	text_puts(t, ")");
	return fail(p);
}

static char ascii_lower(char ch)
{
	return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

/* One trailing dot, the root, is dropped: "example.org." is "example.org".
 * Returns the new length; a name still ending in '.' then is invalid (and
 * addr_domain_valid() would take one more). */
static size_t strip_root(const char *name, size_t n)
{
	if (n > 0 && name[n - 1] == '.')
		n--;
	return n > 0 && name[n - 1] == '.' ? 0 : n;
}

static int set_hostname(struct parse *p, const struct directive *d, const char *arg, size_t len)
{
	size_t n = strip_root(arg, len);

	if (n == 0 || n > ADDR_DOMAIN_MAX || arg[0] == '[' || !addr_domain_valid(arg, n, 0))
		return bad_value(p, d, "bad host name", arg, len, "");
	memcpy(p->c->hostname, arg, n);
	p->c->hostname[n] = '\0';
	return 0;
}

/* Two listeners collide if they are the same, or if one is the wildcard of
 * the other's family on the same port: binding both fails with EADDRINUSE
 * once the wildcard listens.  The server sets IPV6_V6ONLY, so "[::]:25"
 * and "0.0.0.0:25" do not collide (docs/configuration.md: list both for both). */
static int listeners_overlap(const struct conf_listener *a, const struct conf_listener *b)
{
	return a->port == b->port && a->addr.family == b->addr.family &&
	       (a->any || b->any || ip_equal(&a->addr, &b->addr));
}

static int word_is(const char *w, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(w, lit, n) == 0;
}

/* "key=value" where value is one of names[0..n); returns its index or -1. */
static int option_value(const char *w, size_t n, const char *key, const char *const *names,
                        size_t count)
{
	size_t k = strlen(key);

	if (n <= k + 1 || memcmp(w, key, k) != 0 || w[k] != '=')
		return -2; /* not this key */
	for (size_t i = 0; i < count; i++)
		if (word_is(w + k + 1, n - k - 1, names[i]))
			return (int)i;
	return -1;
}

static int set_listen_options(struct parse *p, const struct directive *d, struct conf_listener *l)
{
	for (size_t i = 0; i < p->nmore; i++) {
		const char *w = p->more[i];
		size_t n = p->morelen[i];
		int v;

		if ((v = option_value(w, n, "role", role_names, 2)) >= 0)
			l->role = (unsigned)v & 3u;
		else if (v == -1)
			return bad_value(p, d, "bad role", w, n, " (role=mx or role=submission)");
		else if ((v = option_value(w, n, "tls", tls_names, 3)) >= 0)
			l->tls = (unsigned)v & 3u;
		else if (v == -1)
			return bad_value(p, d, "bad TLS mode", w, n,
			                 " (tls=none, tls=starttls or tls=implicit)");
		else if (word_is(w, n, "tls-legacy"))
			l->tls_legacy = 1;
		else if (word_is(w, n, "auth-plaintext-loopback"))
			l->auth_plaintext_loopback = 1;
		else if (word_is(w, n, "internal"))
			l->internal = 1;
		else if (word_is(w, n, "proxy"))
			l->proxy = 1;
		else
			return bad_value(p, d, "unknown option", w, n,
			                 " (role=, tls=, tls-legacy, auth-plaintext-loopback, internal,"
			                 " proxy)");
	}
	if (l->tls_legacy && l->tls == CONF_TLS_NONE) {
		text_puts(error_at(p, d), "tls-legacy needs tls=starttls or tls=implicit");
		return fail(p);
	}
	if (l->auth_plaintext_loopback && l->role != CONF_ROLE_SUBMISSION) {
		text_puts(error_at(p, d), "auth-plaintext-loopback needs role=submission");
		return fail(p);
	}
	return 0;
}

static int set_listen(struct parse *p, const struct directive *d, const char *arg, size_t len)
{
	struct conf *c = p->c;
	struct conf_listener l;
	static const uint8_t zero[16];

	memset(&l, 0, sizeof l);
	if (hostport_parse(arg, len, &l.addr, &l.port) != 0)
		return bad_value(p, d, "bad address:port", arg, len,
		                 " (use 192.0.2.1:25, [2001:db8::1]:25, *:25 or [::]:25)");
	if (set_listen_options(p, d, &l) != 0)
		return -1;
	if (l.proxy && c->proxy_listen_line == 0)
		c->proxy_listen_line = p->line;
	l.any = memcmp(l.addr.a, zero, sizeof zero) == 0;
	for (size_t k = 0; k < c->nlisteners; k++) {
		if (!listeners_overlap(&c->listeners[k], &l))
			continue;
		if (ip_equal(&c->listeners[k].addr, &l.addr))
			return bad_value(p, d, "duplicate listener", arg, len, "");
		struct text *t = error_at(p, d);
		put_quoted(t, arg, len);
		text_puts(t, " overlaps '");
		put_listener(t, &c->listeners[k]);
		text_puts(t, "' (one is a wildcard)");
		return fail(p);
	}
	if (c->nlisteners == CONF_MAX_LISTENERS)
		return too_many(p, d, "listeners", CONF_MAX_LISTENERS);
	c->listeners[c->nlisteners++] = l;
	return 0;
}

static int set_domain(struct parse *p, const struct directive *d, const char *arg, size_t len)
{
	struct conf *c = p->c;
	const char *name = arg;
	size_t n = len;
	int subdomains = 0;

	if (n >= 2 && name[0] == '*' && name[1] == '.') {
		subdomains = 1;
		name += 2;
		n -= 2;
	}
	n = strip_root(name, n);
	if (n > 0 && name[0] == '[')
		return bad_value(p, d, "an address literal is not a domain:", arg, len, "");
	if (n == 0 || n > ADDR_DOMAIN_MAX || !addr_domain_valid(name, n, 0))
		return bad_value(p, d, "bad domain", arg, len, "");
	for (size_t k = 0; k < c->ndomains; k++) {
		const char *have = c->domains[k].name;
		size_t i = 0;
		while (i < n && have[i] != '\0' && have[i] == ascii_lower(name[i]))
			i++;
		if (i == n && have[i] == '\0')
			return bad_value(p, d, "duplicate domain", arg, len, "");
	}
	if (c->ndomains == CONF_MAX_DOMAINS)
		return too_many(p, d, "domains", CONF_MAX_DOMAINS);
	struct conf_domain *dom = &c->domains[c->ndomains++];
	for (size_t i = 0; i < n; i++)
		dom->name[i] = ascii_lower(name[i]);
	dom->name[n] = '\0';
	dom->subdomains = subdomains ? 1u : 0u;
	return 0;
}

/* A CIDR argument; host bits set are an error that names the network. */
static int parse_net(struct parse *p, const struct directive *d, const char *arg, size_t len,
                     struct cidr *out)
{
	struct cidr net;

	switch (cidr_parse_masked(arg, len, &net)) {
	case 0:
		break;
	case 1: {
		struct text *t = error_at(p, d);
		text_puts(t, "host bits set in ");
		put_quoted(t, arg, len);
		text_puts(t, " (the network is ");
		put_cidr(t, &net);
		text_puts(t, ")");
		return fail(p);
	}
	default:
		return bad_value(p, d, "bad CIDR", arg, len, "");
	}
	*out = net;
	return 0;
}

/* A CIDR argument added to nets[0..*n), at most cap, none twice. */
static int add_net(struct parse *p, const struct directive *d, const char *arg, size_t len,
                   struct cidr *nets, size_t *n, size_t cap)
{
	struct cidr net;

	if (parse_net(p, d, arg, len, &net) != 0)
		return -1;
	for (size_t k = 0; k < *n; k++)
		if (nets[k].prefix == net.prefix && ip_equal(&nets[k].net, &net.net))
			return bad_value(p, d, "duplicate network", arg, len, "");
	if (*n == cap)
		return too_many(p, d, "networks", cap);
	nets[(*n)++] = net;
	return 0;
}

static int set_relay_net(struct parse *p, const struct directive *d, const char *arg, size_t len)
{
	return add_net(p, d, arg, len, p->c->relay_nets, &p->c->nrelay_nets, CONF_MAX_NETS);
}

/* "proxy-from CIDR": a load balancer whose PROXY header a proxy listener
 * believes (policy/proxy.h). */
static int set_proxy_from(struct parse *p, const struct directive *d, const char *arg, size_t len)
{
	struct conf *c = p->c;

	if (c->nproxy_from == 0)
		c->proxy_from_line = p->line;
	return add_net(p, d, arg, len, c->proxy_from, &c->nproxy_from, CONF_MAX_PROXY_FROM);
}

/* An absolute path into dst (CONF_PATH_MAX bytes). */
static int set_path_into(struct parse *p, const struct directive *d, const char *arg, size_t len,
                         char *dst)
{
	if (arg[0] != '/')
		return bad_value(p, d, "not an absolute path:", arg, len, "");
	if (len >= CONF_PATH_MAX) {
		struct text *t = error_at(p, d);
		text_puts(t, "path too long (at most ");
		text_put_u64(t, CONF_PATH_MAX - 1);
		text_puts(t, " bytes)");
		return fail(p);
	}
	memcpy(dst, arg, len);
	dst[len] = '\0';
	return 0;
}

static int set_queue(struct parse *p, const struct directive *d, const char *arg, size_t len)
{
	return set_path_into(p, d, arg, len, p->c->queue_path);
}

static int set_tls_cert(struct parse *p, const struct directive *d, const char *arg, size_t len)
{
	p->c->tls_cert_line = p->line;
	return set_path_into(p, d, arg, len, p->c->tls_cert);
}

static int set_tls_key(struct parse *p, const struct directive *d, const char *arg, size_t len)
{
	p->c->tls_key_line = p->line;
	return set_path_into(p, d, arg, len, p->c->tls_key);
}

static int set_users(struct parse *p, const struct directive *d, const char *arg, size_t len)
{
	p->c->users_line = p->line;
	return set_path_into(p, d, arg, len, p->c->users);
}

static int set_deny_net(struct parse *p, const struct directive *d, const char *arg, size_t len)
{
	struct conf *c = p->c;
	struct conf_deny dn;

	memset(&dn, 0, sizeof dn);
	if (parse_net(p, d, arg, len, &dn.net) != 0)
		return -1;
	if (p->nmore == 1 && word_is(p->more[0], p->morelen[0], "never-connect"))
		dn.never_connect = 1;
	else if (p->nmore > 0)
		return bad_value(p, d, "unknown option", p->more[0], p->morelen[0],
		                 " (the only option is never-connect)");
	for (size_t k = 0; k < c->ndeny_nets; k++)
		if (c->deny_nets[k].net.prefix == dn.net.prefix && ip_equal(&c->deny_nets[k].net.net, &dn.net.net))
			return bad_value(p, d, "duplicate network", arg, len, "");
	if (c->ndeny_nets == CONF_MAX_NETS)
		return too_many(p, d, "networks", CONF_MAX_NETS);
	c->deny_nets[c->ndeny_nets++] = dn;
	return 0;
}

/* "recipients DOMAIN PATH|catch-all".  That DOMAIN is one of ours is checked
 * by conf_finish(), so the two lines may come in either order. */
static int set_recipients(struct parse *p, const struct directive *d, const char *arg, size_t len)
{
	struct conf *c = p->c;
	struct conf_rcptlist *r;
	const char *v = p->more[0];
	size_t vlen = p->morelen[0];

	if (len > ADDR_DOMAIN_MAX + 2)
		return bad_value(p, d, "bad domain", arg, len, "");
	for (size_t k = 0; k < c->nrcpt_lists; k++) {
		const char *have = c->rcpt_lists[k].domain;
		size_t i = 0;
		while (i < len && have[i] != '\0' && have[i] == ascii_lower(arg[i]))
			i++;
		if (i == len && have[i] == '\0')
			return bad_value(p, d, "second list for domain", arg, len, "");
	}
	if (c->nrcpt_lists == CONF_MAX_RCPT_LISTS)
		return too_many(p, d, "recipient lists", CONF_MAX_RCPT_LISTS);
	r = &c->rcpt_lists[c->nrcpt_lists];
	memset(r, 0, sizeof *r);
	for (size_t i = 0; i < len; i++)
		r->domain[i] = ascii_lower(arg[i]);
	r->line = p->line;
	if (!word_is(v, vlen, "catch-all") && set_path_into(p, d, v, vlen, r->path) != 0)
		return -1;
	c->nrcpt_lists++;
	return 0;
}

const struct conf_rcptlist *conf_rcptlist_find(const struct conf *c, const struct conf_domain *dom)
{
	for (size_t k = 0; k < c->nrcpt_lists; k++) {
		const char *name = c->rcpt_lists[k].domain;
		if (dom->subdomains) {
			if (name[0] != '*' || name[1] != '.')
				continue;
			name += 2;
		}
		size_t n = strip_root(name, strlen(name));
		if (n == strlen(dom->name) && memcmp(name, dom->name, n) == 0)
			return &c->rcpt_lists[k];
	}
	return NULL;
}

static size_t parse_u64(const char *s, size_t len, uint64_t *out);

/* Syslog facilities by code (RFC 5424 6.2.1), those a relay may log to. */
static const struct {
	const char *name;
	unsigned    code;
} facilities[] = {
	{ "user", 1 },    { "mail", 2 },    { "daemon", 3 },  { "auth", 4 },
	{ "authpriv", 10 }, { "local0", 16 }, { "local1", 17 }, { "local2", 18 },
	{ "local3", 19 }, { "local4", 20 }, { "local5", 21 }, { "local6", 22 },
	{ "local7", 23 },
};

const char *conf_facility_name(unsigned code)
{
	for (size_t k = 0; k < sizeof facilities / sizeof facilities[0]; k++)
		if (facilities[k].code == code)
			return facilities[k].name;
	return NULL;
}

static int parse_nexthop(const char *s, size_t len, struct conf_nexthop *h, uint16_t defport);
static int parse_scaled(const char *arg, size_t len, const struct unit *u, uint64_t max,
                        uint64_t *out);

#define LOG_USAGE "stderr|syslog [SOCKET]|remote udp|tcp|tls HOST[:PORT] [buffer SIZE]"

/* "log remote udp|tcp|tls HOST[:PORT] [buffer SIZE]" */
static int set_log_remote(struct parse *p, const struct directive *d)
{
	struct conf *c = p->c;
	enum syslog_transport tr;
	uint64_t v;

	if (p->nmore < 2 || p->nmore == 3)
		return bad_value(p, d, "remote needs", "", 0, " udp|tcp|tls HOST[:PORT] [buffer SIZE]");
	tr = syslog_transport_parse(p->more[0], p->morelen[0]);
	if (tr == 0)
		return bad_value(p, d, "bad transport", p->more[0], p->morelen[0], " (udp, tcp or tls)");
	if (parse_nexthop(p->more[1], p->morelen[1], &c->log_remote_hop, syslog_default_port(tr)) != 0)
		return bad_value(p, d, "bad server", p->more[1], p->morelen[1],
		                 " (HOST, HOST:PORT, [IPv6] or [IPv6]:PORT)");
	c->log_remote_buffer = SYSLOG_BUFFER_DEFAULT;
	if (p->nmore == 4) {
		if (!word_is(p->more[2], p->morelen[2], "buffer"))
			return bad_value(p, d, "unknown option", p->more[2], p->morelen[2], " (buffer SIZE)");
		if (parse_scaled(p->more[3], p->morelen[3], size_units, UINT64_MAX, &v) != 0 ||
		    v < SYSLOG_BUFFER_MIN || v > SYSLOG_BUFFER_MAX)
			return bad_value(p, d, "bad buffer size", p->more[3], p->morelen[3],
			                 " (8K to 64M)");
		c->log_remote_buffer = v;
	}
	c->log_target = CONF_LOG_SYSLOG;
	c->log_remote = tr;
	c->log_line = p->line;
	return 0;
}

/* "log stderr", "log syslog [SOCKET]" or "log remote ...". */
static int set_log(struct parse *p, const struct directive *d, const char *arg, size_t len)
{
	p->c->log_remote = 0;
	if (word_is(arg, len, "remote"))
		return set_log_remote(p, d);
	if (word_is(arg, len, "stderr")) {
		if (p->nmore > 0)
			return bad_value(p, d, "stderr takes no socket:", p->more[0], p->morelen[0], "");
		p->c->log_target = CONF_LOG_STDERR;
		return 0;
	}
	if (!word_is(arg, len, "syslog"))
		return bad_value(p, d, "bad log target", arg, len,
		                 " (stderr, syslog [SOCKET], or remote udp|tcp|tls HOST[:PORT])");
	p->c->log_target = CONF_LOG_SYSLOG;
	if (p->nmore == 0)
		return 0;
	if (p->nmore > 1) {
		struct text *t = error_at(p, d);
		text_puts(t, "too many arguments (log " LOG_USAGE ")");
		return fail(p);
	}
	return set_path_into(p, d, p->more[0], p->morelen[0], p->c->log_socket);
}

static int set_log_facility(struct parse *p, const struct directive *d, const char *arg,
                            size_t len)
{
	for (size_t k = 0; k < sizeof facilities / sizeof facilities[0]; k++) {
		if (word_is(arg, len, facilities[k].name)) {
			p->c->log_facility = facilities[k].code;
			return 0;
		}
	}
	return bad_value(p, d, "unknown facility", arg, len,
	                 " (mail, daemon, user, auth, authpriv, local0 ... local7)");
}

/* "metrics-listen PORT" (on 127.0.0.1) or "ADDR:PORT". */
static int set_metrics(struct parse *p, const struct directive *d, const char *arg, size_t len)
{
	struct conf_listener l;
	uint64_t port;
	static const uint8_t zero[16];

	memset(&l, 0, sizeof l);
	if (parse_u64(arg, len, &port) == len) {
		if (port == 0 || port > 65535)
			return bad_value(p, d, "bad port", arg, len, "");
		l.addr.family = IP_V4;
		l.addr.a[0] = 127;
		l.addr.a[3] = 1;
		l.port = (uint16_t)port;
	} else if (hostport_parse(arg, len, &l.addr, &l.port) != 0) {
		return bad_value(p, d, "bad address:port", arg, len,
		                 " (use 9025 for 127.0.0.1:9025, 192.0.2.1:9025 or [::1]:9025)");
	}
	l.any = memcmp(l.addr.a, zero, sizeof zero) == 0;
	p->c->metrics = l;
	p->c->metrics_line = p->line;
	return 0;
}

/* Decimal digits only: no sign, no space, no base prefix.  Returns the
 * number of digits read, 0 if none or on overflow. */
static size_t parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t k = 0;

	for (; k < len && s[k] >= '0' && s[k] <= '9'; k++) {
		unsigned digit = (unsigned)(s[k] - '0');
		if (v > (UINT64_MAX - digit) / 10)
			return 0;
		v = v * 10 + digit;
	}
	*out = v;
	return k;
}

static int check_range(struct parse *p, const struct directive *d, uint64_t v, int size)
{
	if (v >= d->min && v <= d->max)
		return 0;
	struct text *t = error_at(p, d);
	if (size)
		put_size(t, v);
	else
		text_put_u64(t, v);
	text_puts(t, v < d->min ? " is below the minimum " : " is above the maximum ");
	if (size)
		put_size(t, v < d->min ? d->min : d->max);
	else
		text_put_u64(t, v < d->min ? d->min : d->max);
	if (v < d->min && d->why_min != NULL) {
		text_puts(t, " (");
		text_puts(t, d->why_min);
		text_puts(t, ")");
	}
	return fail(p);
}

static int set_uint(struct parse *p, const struct directive *d, const char *arg, size_t len)
{
	uint64_t v;

	if (parse_u64(arg, len, &v) != len)
		return bad_value(p, d, "bad number", arg, len, "");
	if (check_range(p, d, v, 0) != 0)
		return -1;
	unsigned *field = (unsigned *)(void *)((char *)p->c + d->offset);
	*field = (unsigned)v;
	return 0;
}

/* A number with an optional suffix of units into *out; 0, or -1 if it is
 * not one or it is above max. */
static int parse_scaled(const char *arg, size_t len, const struct unit *u, uint64_t max,
                        uint64_t *out)
{
	uint64_t v, mult = 1;
	size_t n = parse_u64(arg, len, &v);

	if (n == 0 || n + 1 < len)
		return -1;
	if (n + 1 == len) {
		for (mult = 0; u->suffix != 0 && mult == 0; u++)
			if (u->suffix == arg[n])
				mult = u->mult;
	}
	if (mult == 0 || v > max / mult)
		return -1;
	*out = v * mult;
	return 0;
}

/* Bytes, or a number with K, M or G (powers of 1024). */
static int set_size(struct parse *p, const struct directive *d, const char *arg, size_t len)
{
	uint64_t v;

	if (parse_scaled(arg, len, size_units, UINT64_MAX, &v) != 0)
		return bad_value(p, d, "bad size", arg, len, " (bytes, or a number with K, M or G)");
	if (check_range(p, d, v, 1) != 0)
		return -1;
	uint64_t *field = (uint64_t *)(void *)((char *)p->c + d->offset);
	*field = v;
	return 0;
}

static int set_net_interface(struct parse *p, const struct directive *d, const char *arg, size_t len)
{
	if (len > CONF_IFNAME_MAX)
		return bad_value(p, d, "interface name too long:", arg, len, " (at most 15 bytes)");
	for (size_t k = 0; k < len; k++) {
		char ch = arg[k];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '-' || ch == '_' || ch == '.'))
			return bad_value(p, d, "bad interface name", arg, len, "");
	}
	memcpy(p->c->net_interface, arg, len);
	p->c->net_interface[len] = '\0';
	return 0;
}

/* "ADDR/PREFIX": the interface's own address, so host bits are kept. */
static int set_net_address(struct parse *p, const struct directive *d, const char *arg, size_t len)
{
	struct conf *c = p->c;
	struct conf_ifaddr a;
	const char *slash = memchr(arg, '/', len);
	size_t alen = slash != NULL ? (size_t)(slash - arg) : len;
	uint64_t prefix = 0;

	memset(&a, 0, sizeof a);
	if (slash == NULL || ip_parse(arg, alen, &a.addr) != 0 || len - alen < 2 || len - alen > 4 ||
	    parse_u64(slash + 1, len - alen - 1, &prefix) != len - alen - 1 || prefix == 0 ||
	    prefix > (a.addr.family == IP_V4 ? 32u : 128u))
		return bad_value(p, d, "bad interface address", arg, len,
		                 " (use 192.0.2.10/24 or 2001:db8::10/64)");
	a.prefix = (uint8_t)prefix;
	for (size_t k = 0; k < c->nnet_addrs; k++)
		if (ip_equal(&c->net_addrs[k].addr, &a.addr))
			return bad_value(p, d, "duplicate address", arg, len, "");
	if (c->nnet_addrs == CONF_MAX_NET_ADDRS)
		return too_many(p, d, "addresses", CONF_MAX_NET_ADDRS);
	c->net_addrs[c->nnet_addrs++] = a;
	return 0;
}

static int set_net_gateway(struct parse *p, const struct directive *d, const char *arg, size_t len)
{
	struct conf *c = p->c;
	struct ipaddr gw;

	if (ip_parse(arg, len, &gw) != 0)
		return bad_value(p, d, "bad address", arg, len, "");
	for (size_t k = 0; k < c->nnet_gateways; k++)
		if (c->net_gateways[k].family == gw.family)
			return bad_value(p, d, "a second gateway of the same family:", arg, len,
			                 " (one IPv4 and one IPv6 at most)");
	c->net_gateways[c->nnet_gateways++] = gw;
	return 0;
}

/* ---- edge defenses ---- */

static int set_dnsbl(struct parse *p, const struct directive *d, const char *arg, size_t len)
{
	struct conf *c = p->c;
	struct conf_dnsbl z;
	const char *why = "";

	if (dnsbl_spec_parse(arg, len, &z, &why) < 0)
		return bad_value(p, d, why, arg, len,
		                 " (ZONE, ZONE=127.0.0.[2..11], ZONE*2 or ZONE=127.0.[0..255].2*-1)");
	for (size_t k = 0; k < c->ndnsbl; k++)
		if (strcmp(c->dnsbl[k].zone, z.zone) == 0)
			return bad_value(p, d, "duplicate zone", arg, len, "");
	if (c->ndnsbl == CONF_MAX_DNSBL)
		return too_many(p, d, "zones", CONF_MAX_DNSBL);
	c->dnsbl[c->ndnsbl++] = z;
	return 0;
}

#define FIELD(f) offsetof(struct conf, f)

/* "NAME " to start a line of conf_format() output. */
static void put_name(struct text *t, const struct directive *d)
{
	text_puts(t, d->name);
	text_puts(t, " ");
}

static void format_hostname(struct text *t, const struct conf *c, const struct directive *d)
{
	if (c->hostname[0] == '\0') {
		text_puts(t, "# hostname: not set, taken from uname at start\n");
		return;
	}
	put_name(t, d);
	text_puts(t, c->hostname);
	text_puts(t, "\n");
}

static void format_listen(struct text *t, const struct conf *c, const struct directive *d)
{
	for (size_t k = 0; k < c->nlisteners; k++) {
		put_name(t, d);
		put_listener(t, &c->listeners[k]);
		put_listener_options(t, &c->listeners[k]);
		text_puts(t, "\n");
	}
}

static void format_domain(struct text *t, const struct conf *c, const struct directive *d)
{
	if (c->ndomains == 0)
		text_puts(t, "# domain: none\n");
	for (size_t k = 0; k < c->ndomains; k++) {
		put_name(t, d);
		if (c->domains[k].subdomains)
			text_puts(t, "*.");
		text_puts(t, c->domains[k].name);
		text_puts(t, "\n");
	}
}

static void format_relay_net(struct text *t, const struct conf *c, const struct directive *d)
{
	if (c->nrelay_nets == 0)
		text_puts(t, "# relay-network: none\n");
	for (size_t k = 0; k < c->nrelay_nets; k++) {
		put_name(t, d);
		put_cidr(t, &c->relay_nets[k]);
		text_puts(t, "\n");
	}
}

/* Said only when given, like recipients: most relays have no proxy in
 * front, and their effective configuration need not mention one. */
static void format_proxy_from(struct text *t, const struct conf *c, const struct directive *d)
{
	for (size_t k = 0; k < c->nproxy_from; k++) {
		put_name(t, d);
		put_cidr(t, &c->proxy_from[k]);
		text_puts(t, "\n");
	}
}

static void format_queue(struct text *t, const struct conf *c, const struct directive *d)
{
	put_name(t, d);
	text_puts(t, c->queue_path);
	text_puts(t, "\n");
}

/* A path directive: its value, or a comment when it is not set. */
static void format_path(struct text *t, const struct directive *d, const char *path)
{
	if (path[0] == '\0') {
		text_puts(t, "# ");
		text_puts(t, d->name);
		text_puts(t, ": none\n");
		return;
	}
	put_name(t, d);
	text_puts(t, path);
	text_puts(t, "\n");
}

static void format_tls_cert(struct text *t, const struct conf *c, const struct directive *d)
{
	format_path(t, d, c->tls_cert);
}

static void format_tls_key(struct text *t, const struct conf *c, const struct directive *d)
{
	format_path(t, d, c->tls_key);
}

static void format_users(struct text *t, const struct conf *c, const struct directive *d)
{
	format_path(t, d, c->users);
}

static void format_deny_net(struct text *t, const struct conf *c, const struct directive *d)
{
	if (c->ndeny_nets == 0)
		text_puts(t, "# deny-network: none\n");
	for (size_t k = 0; k < c->ndeny_nets; k++) {
		put_name(t, d);
		put_cidr(t, &c->deny_nets[k].net);
		if (c->deny_nets[k].never_connect)
			text_puts(t, " never-connect");
		text_puts(t, "\n");
	}
}

/* Every domain's recipients, catch-all ones included, so the effective
 * configuration says which domains refuse unknown users. */
static void format_recipients(struct text *t, const struct conf *c, const struct directive *d)
{
	for (size_t k = 0; k < c->ndomains; k++) {
		const struct conf_domain *dom = &c->domains[k];
		const struct conf_rcptlist *r = conf_rcptlist_find(c, dom);

		if (r == NULL && c->nrcpt_lists == 0)
			continue; /* no lists at all: say nothing (the default) */
		put_name(t, d);
		if (dom->subdomains)
			text_puts(t, "*.");
		text_puts(t, dom->name);
		text_puts(t, " ");
		text_puts(t, r != NULL && r->path[0] != '\0' ? r->path : "catch-all");
		text_puts(t, "\n");
	}
}

static void format_log(struct text *t, const struct conf *c, const struct directive *d)
{
	put_name(t, d);
	if (c->log_remote != 0) {
		const struct conf_nexthop *h = &c->log_remote_hop;
		text_puts(t, "remote ");
		text_puts(t, syslog_transport_name(c->log_remote));
		text_puts(t, h->literal ? " [" : " ");
		text_puts(t, h->host);
		text_puts(t, h->literal ? "]:" : ":");
		text_put_u64(t, h->port);
		if (c->log_remote_buffer != SYSLOG_BUFFER_DEFAULT) {
			text_puts(t, " buffer ");
			put_size(t, c->log_remote_buffer);
		}
	} else if (c->log_target == CONF_LOG_SYSLOG) {
		text_puts(t, "syslog ");
		text_puts(t, c->log_socket);
	} else {
		text_puts(t, "stderr");
	}
	text_puts(t, "\n");
}

static void format_log_facility(struct text *t, const struct conf *c, const struct directive *d)
{
	const char *name = conf_facility_name(c->log_facility);

	put_name(t, d);
	text_puts(t, name != NULL ? name : "mail");
	text_puts(t, "\n");
}

static void format_metrics(struct text *t, const struct conf *c, const struct directive *d)
{
	if (c->metrics.port == 0) {
		text_puts(t, "# metrics-listen: none\n");
		return;
	}
	put_name(t, d);
	put_listener(t, &c->metrics);
	text_puts(t, "\n");
}

static void format_uint(struct text *t, const struct conf *c, const struct directive *d)
{
	unsigned v;

	memcpy(&v, (const char *)c + d->offset, sizeof v);
	put_name(t, d);
	text_put_u64(t, v);
	text_puts(t, "\n");
}

static void format_size(struct text *t, const struct conf *c, const struct directive *d)
{
	uint64_t v;

	memcpy(&v, (const char *)c + d->offset, sizeof v);
	put_name(t, d);
	put_size(t, v);
	text_puts(t, "\n");
}

static void format_dnsbl(struct text *t, const struct conf *c, const struct directive *d)
{
	char buf[DNSBL_SPEC_TEXT_MAX];

	if (c->ndnsbl == 0)
		text_puts(t, "# dnsbl: none\n");
	for (size_t k = 0; k < c->ndnsbl; k++) {
		size_t n = dnsbl_spec_format(&c->dnsbl[k], buf, sizeof buf);

		put_name(t, d);
		text_put(t, buf, n < sizeof buf ? n : sizeof buf - 1);
		text_puts(t, "\n");
	}
}

static void format_net_interface(struct text *t, const struct conf *c, const struct directive *d)
{
	if (c->net_interface[0] == '\0')
		return; /* appliance only: nothing said when unset */
	put_name(t, d);
	text_puts(t, c->net_interface);
	text_puts(t, "\n");
}

static void format_net_address(struct text *t, const struct conf *c, const struct directive *d)
{
	for (size_t k = 0; k < c->nnet_addrs; k++) {
		put_name(t, d);
		put_ip(t, &c->net_addrs[k].addr);
		text_puts(t, "/");
		text_put_u64(t, c->net_addrs[k].prefix);
		text_puts(t, "\n");
	}
}

static void format_net_gateway(struct text *t, const struct conf *c, const struct directive *d)
{
	for (size_t k = 0; k < c->nnet_gateways; k++) {
		put_name(t, d);
		put_ip(t, &c->net_gateways[k]);
		text_puts(t, "\n");
	}
}

#define FIELD(f) offsetof(struct conf, f)

/* ---- delivery ---- */

/* A directive that takes one of a few words: an unsigned field set to
 * the word's index (words[0] is the default, 0). */
struct word_choice {
	const char *want;         /* the refusal's text */
	const char *words[3];     /* NULL past the last */
};

static const struct word_choice ONOFF = { "want on or off, not", { "off", "on", NULL } };
static const struct word_choice DNSSEC = { "want trusted or off, not", { "off", "trusted", NULL } };
static const struct word_choice TLS_REPORT = { "want off or mailto, not",
                                               { "off", "mailto", NULL } };
static const struct word_choice DNSBL_STAGE = { "want rcpt or connect, not",
                                                { "rcpt", "connect", NULL } };

static int set_word(struct parse *p, const struct directive *d, const char *arg, size_t len,
                    const struct word_choice *w)
{
	unsigned *field = (unsigned *)(void *)((char *)p->c + d->offset);

	for (unsigned i = 0; i < 3 && w->words[i] != NULL; i++)
		if (word_is(arg, len, w->words[i])) {
			*field = i;
			return 0;
		}
	return bad_value(p, d, w->want, arg, len, "");
}

static void format_word(struct text *t, const struct conf *c, const struct directive *d,
                        const struct word_choice *w)
{
	unsigned v;

	memcpy(&v, (const char *)c + d->offset, sizeof v);
	put_name(t, d);
	text_puts(t, v < 3 && w->words[v] != NULL ? w->words[v] : w->words[0]);
	text_puts(t, "\n");
}

/* (the enums these set count from 0 in the words' order: conf.h) */
#define WORD_DIRECTIVE(NAME, CHOICE)                                                        \
	static int set_##NAME(struct parse *p, const struct directive *d, const char *arg,  \
	                      size_t len)                                                   \
	{                                                                                   \
		return set_word(p, d, arg, len, &CHOICE);                                   \
	}                                                                                   \
	static void format_##NAME(struct text *t, const struct conf *c,                     \
	                          const struct directive *d)                                \
	{                                                                                   \
		format_word(t, c, d, &CHOICE);                                              \
	}
WORD_DIRECTIVE(onoff, ONOFF)
WORD_DIRECTIVE(dns_dnssec, DNSSEC)
WORD_DIRECTIVE(tls_report, TLS_REPORT)
WORD_DIRECTIVE(dnsbl_stage, DNSBL_STAGE)

/* A duration: seconds, or a number with s, m, h or d. */
static int set_duration(struct parse *p, const struct directive *d, const char *arg, size_t len)
{
	uint64_t v;

	if (parse_scaled(arg, len, time_units, UINT32_MAX, &v) != 0)
		return bad_value(p, d, "bad duration", arg, len, " (seconds, or a number with s, m, h or d)");
	if (check_range(p, d, v, 0) != 0)
		return -1;
	unsigned *field = (unsigned *)(void *)((char *)p->c + d->offset);
	*field = (unsigned)v;
	return 0;
}

static void put_duration(struct text *t, uint64_t v)
{
	put_scaled(t, v, time_units, "s");
}

static void format_duration(struct text *t, const struct conf *c, const struct directive *d)
{
	unsigned v;

	memcpy(&v, (const char *)c + d->offset, sizeof v);
	put_name(t, d);
	put_duration(t, v);
	text_puts(t, "\n");
}

static const char *const otls_names[] = { "none", "may", "require", "verify" };

static int parse_tls(const char *w, size_t n)
{
	for (int k = 0; k < 4; k++)
		if (word_is(w, n, otls_names[k]))
			return k;
	return -1;
}

/* "[ADDR]", "[ADDR]:PORT", "HOST", "HOST:PORT" (HOST a name or an IPv4
 * address).  Returns 0 or -1. */
static int parse_nexthop(const char *s, size_t len, struct conf_nexthop *h, uint16_t defport)
{
	size_t hostlen = len, k;
	const char *host = s;
	uint64_t port = defport;

	memset(h, 0, sizeof *h);
	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);
		if (close == NULL)
			return -1;
		host = s + 1;
		hostlen = (size_t)(close - host);
		k = (size_t)(close - s) + 1;
		if (ip_parse(host, hostlen, &h->addr) != 0)
			return -1;
		h->literal = 1;
	} else {
		const char *colon = memchr(s, ':', len);
		hostlen = colon ? (size_t)(colon - s) : len;
		k = hostlen;
		if (ip_parse(host, hostlen, &h->addr) == 0) {
			if (h->addr.family != IP_V4)
				return -1;
			h->literal = 1;
		} else {
			hostlen = strip_root(host, hostlen);
			if (hostlen == 0 || hostlen > ADDR_DOMAIN_MAX || !addr_domain_valid(host, hostlen, 0))
				return -1;
		}
	}
	if (k < len) {
		if (s[k] != ':' || parse_u64(s + k + 1, len - k - 1, &port) != len - k - 1 ||
		    port == 0 || port > 65535)
			return -1;
	}
	h->port = (uint16_t)port;
	if (h->literal) {
		char text[IP_TEXT_MAX];
		size_t tl = ip_format(&h->addr, text, sizeof text);
		memcpy(h->host, text, tl);
		h->host[tl] = '\0';
	} else {
		for (size_t i = 0; i < hostlen; i++)
			h->host[i] = ascii_lower(host[i]);
		h->host[hostlen] = '\0';
	}
	return 0;
}

/* "N/minute" (also N/min, N/m): messages a minute, 1..100000; 0 or -1. */
static int parse_rate(const char *s, size_t len, unsigned *out)
{
	static const char *const units[] = { "/minute", "/min", "/m" };
	uint64_t v = 0;
	size_t i = 0;

	while (i < len && s[i] >= '0' && s[i] <= '9' && v <= 100000)
		v = v * 10 + (uint64_t)(s[i++] - '0');
	if (i == 0 || v == 0 || v > 100000)
		return -1;
	for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
		size_t ul = strlen(units[u]);

		if (len - i == ul && strncmp(s + i, units[u], ul) == 0) {
			*out = (unsigned)v;
			return 0;
		}
	}
	return -1;
}

/* destination-rate N/minute: the default for MX destinations; off: none. */
static int set_destination_rate(struct parse *p, const struct directive *d, const char *arg,
                                size_t len)
{
	if (word_is(arg, len, "off")) {
		p->c->destination_rate = 0;
		return 0;
	}
	if (parse_rate(arg, len, &p->c->destination_rate) != 0)
		return bad_value(p, d, "bad rate", arg, len, " (N/minute, or off)");
	return 0;
}

static void format_destination_rate(struct text *t, const struct conf *c,
                                    const struct directive *d)
{
	put_name(t, d);
	if (c->destination_rate == 0) {
		text_puts(t, "off\n");
		return;
	}
	text_put_u64(t, c->destination_rate);
	text_puts(t, "/minute\n");
}

/* NEXTHOP (the word hop) then the options in p->more from index first:
 * "tls MODE", "smtps", "rate N/minute", and where allowed
 * "verify-recipients" (routes) and "auth FILE" (the smarthost). */
static int parse_hop_args(struct parse *p, const struct directive *d, const char *hop,
                          size_t hoplen, size_t first, struct conf_nexthop *h, int route)
{
	const char *const *a = p->more;
	const size_t *al = p->morelen;
	size_t n = p->nmore;
	int smtps = 0;

	for (size_t k = first; k < n; k++)
		if (word_is(a[k], al[k], "smtps"))
			smtps = 1;
	if (parse_nexthop(hop, hoplen, h, smtps ? 465 : 25) != 0)
		return bad_value(p, d, "bad next hop", hop, hoplen,
		                 " (use host, host:port, [192.0.2.1]:25 or [2001:db8::1]:25)");
	h->tls = CONF_OTLS_MAY;
	for (size_t k = first; k < n; k++) {
		if (word_is(a[k], al[k], "smtps")) {
			h->smtps = 1;
		} else if (word_is(a[k], al[k], "tls") && k + 1 < n) {
			int m = parse_tls(a[k + 1], al[k + 1]);
			if (m < 0)
				return bad_value(p, d, "bad tls mode", a[k + 1], al[k + 1],
				                 " (none, may, require or verify)");
			h->tls = (uint8_t)m;
			k++;
		} else if (route && word_is(a[k], al[k], "verify-recipients")) {
			h->verify_rcpt = 1;
		} else if (word_is(a[k], al[k], "rate") && k + 1 < n) {
			if (parse_rate(a[k + 1], al[k + 1], &h->rate) != 0)
				return bad_value(p, d, "bad rate", a[k + 1], al[k + 1], " (N/minute)");
			k++;
		} else if (!route && word_is(a[k], al[k], "auth") && k + 1 < n) {
			if (a[k + 1][0] != '/' || al[k + 1] >= CONF_PATH_MAX)
				return bad_value(p, d, "auth: not an absolute path:", a[k + 1], al[k + 1], "");
			memcpy(p->c->smarthost_auth, a[k + 1], al[k + 1]);
			p->c->smarthost_auth[al[k + 1]] = '\0';
			p->c->smarthost_line = p->line;
			k++;
		} else {
			return bad_value(p, d, "unknown option", a[k], al[k], route
			                 ? " (tls MODE, smtps, rate N/minute, verify-recipients)"
			                 : " (tls MODE, smtps, rate N/minute, auth FILE)");
		}
	}
	if (h->smtps && h->tls == CONF_OTLS_NONE)
		return bad_value(p, d, "smtps is TLS: it cannot go with", "tls none", 8, "");
	return 0;
}

static int set_route(struct parse *p, const struct directive *d, const char *arg, size_t len)
{
	struct conf *c = p->c;
	struct conf_route r;
	const char *name = arg;
	size_t n = len;

	memset(&r, 0, sizeof r);
	if (n >= 2 && name[0] == '*' && name[1] == '.') {
		r.domain.subdomains = 1;
		name += 2;
		n -= 2;
	}
	n = strip_root(name, n);
	if (n == 0 || n > ADDR_DOMAIN_MAX || name[0] == '[' || !addr_domain_valid(name, n, 0))
		return bad_value(p, d, "bad domain", arg, len, "");
	for (size_t i = 0; i < n; i++)
		r.domain.name[i] = ascii_lower(name[i]);
	r.domain.name[n] = '\0';
	for (size_t k = 0; k < c->nroutes; k++)
		if (strcmp(c->routes[k].domain.name, r.domain.name) == 0 &&
		    c->routes[k].domain.subdomains == r.domain.subdomains)
			return bad_value(p, d, "duplicate route for", arg, len, "");
	if (c->nroutes == CONF_MAX_ROUTES)
		return too_many(p, d, "routes", CONF_MAX_ROUTES);
	if (parse_hop_args(p, d, p->more[0], p->morelen[0], 1, &r.hop, 1) != 0)
		return -1;
	c->routes[c->nroutes++] = r;
	return 0;
}

static int set_smarthost(struct parse *p, const struct directive *d, const char *arg, size_t len)
{
	return parse_hop_args(p, d, arg, len, 0, &p->c->smarthost, 0);
}

static void put_nexthop(struct text *t, const struct conf_nexthop *h)
{
	if (h->literal)
		text_puts(t, "[");
	text_puts(t, h->host);
	if (h->literal)
		text_puts(t, "]");
	text_puts(t, ":");
	text_put_u64(t, h->port);
	if (h->tls != CONF_OTLS_MAY) {
		text_puts(t, " tls ");
		text_puts(t, otls_names[h->tls & 3]);
	}
	if (h->smtps)
		text_puts(t, " smtps");
	if (h->rate) {
		text_puts(t, " rate ");
		text_put_u64(t, h->rate);
		text_puts(t, "/minute");
	}
	if (h->verify_rcpt)
		text_puts(t, " verify-recipients");
}

static void format_route(struct text *t, const struct conf *c, const struct directive *d)
{
	if (c->nroutes == 0)
		text_puts(t, "# route: none\n");
	for (size_t k = 0; k < c->nroutes; k++) {
		put_name(t, d);
		if (c->routes[k].domain.subdomains)
			text_puts(t, "*.");
		text_puts(t, c->routes[k].domain.name);
		text_puts(t, " ");
		put_nexthop(t, &c->routes[k].hop);
		text_puts(t, "\n");
	}
}

static void format_smarthost(struct text *t, const struct conf *c, const struct directive *d)
{
	if (c->smarthost.host[0] == '\0') {
		text_puts(t, "# smarthost: none (MX lookups)\n");
		return;
	}
	put_name(t, d);
	put_nexthop(t, &c->smarthost);
	if (c->smarthost_auth[0] != '\0') {
		text_puts(t, " auth ");
		text_puts(t, c->smarthost_auth);
	}
	text_puts(t, "\n");
}

static int set_outbound_tls(struct parse *p, const struct directive *d, const char *arg, size_t len)
{
	int m = parse_tls(arg, len);

	if (m < 0)
		return bad_value(p, d, "bad tls mode", arg, len, " (none, may, require or verify)");
	p->c->outbound_tls = (uint8_t)m;
	return 0;
}

static void format_outbound_tls(struct text *t, const struct conf *c, const struct directive *d)
{
	put_name(t, d);
	text_puts(t, otls_names[c->outbound_tls & 3]);
	text_puts(t, "\n");
}

/* A path at offset in struct conf. */
static int set_field_path(struct parse *p, const struct directive *d, const char *arg, size_t len)
{
	return set_path_into(p, d, arg, len, (char *)p->c + d->offset);
}

static void format_field_path(struct text *t, const struct conf *c, const struct directive *d)
{
	format_path(t, d, (const char *)c + d->offset);
}

/* "ADDR", "ADDR:PORT", "[V6ADDR]" or "[V6ADDR]:PORT". */
static int set_dns_server(struct parse *p, const struct directive *d, const char *arg, size_t len)
{
	struct conf *c = p->c;
	struct conf_nexthop h;

	if (parse_nexthop(arg, len, &h, 53) != 0 || !h.literal)
		return bad_value(p, d, "bad address", arg, len,
		                 " (use 192.0.2.53, 127.0.0.1:5353 or [2001:db8::53]:53)");
	for (size_t k = 0; k < c->ndns_servers; k++)
		if (ip_equal(&c->dns_servers[k].addr, &h.addr) && c->dns_servers[k].port == h.port)
			return bad_value(p, d, "duplicate server", arg, len, "");
	if (c->ndns_servers == CONF_MAX_DNS)
		return too_many(p, d, "servers", CONF_MAX_DNS);
	c->dns_servers[c->ndns_servers].addr = h.addr;
	c->dns_servers[c->ndns_servers].port = h.port;
	c->ndns_servers++;
	return 0;
}

/* "ntp-server HOST": a name or an address, as text (mta/init resolves it). */
static int set_ntp_server(struct parse *p, const struct directive *d, const char *arg, size_t len)
{
	struct conf *c = p->c;
	struct ipaddr ip;
	size_t n = strip_root(arg, len);

	if (ip_parse(arg, len, &ip) != 0 &&
	    (n == 0 || n > ADDR_DOMAIN_MAX || !addr_domain_valid(arg, n, 0)))
		return bad_value(p, d, "bad server", arg, len, " (a host name or an IP address)");
	if (ip_parse(arg, len, &ip) == 0)
		n = len;
	for (size_t k = 0; k < c->nntp_servers; k++)
		if (strlen(c->ntp_servers[k]) == n && memcmp(c->ntp_servers[k], arg, n) == 0)
			return bad_value(p, d, "duplicate server", arg, len, "");
	if (c->nntp_servers == CONF_MAX_NTP)
		return too_many(p, d, "servers", CONF_MAX_NTP);
	memcpy(c->ntp_servers[c->nntp_servers], arg, n);
	c->ntp_servers[c->nntp_servers++][n] = '\0';
	return 0;
}

/* Like the other appliance-only directives, nothing when not set. */
static void format_ntp_server(struct text *t, const struct conf *c, const struct directive *d)
{
	for (size_t k = 0; k < c->nntp_servers; k++) {
		put_name(t, d);
		text_puts(t, c->ntp_servers[k]);
		text_puts(t, "\n");
	}
}

static void format_dns_server(struct text *t, const struct conf *c, const struct directive *d)
{
	if (c->ndns_servers == 0)
		text_puts(t, "# dns-server: none, the nameservers of /etc/resolv.conf\n");
	for (size_t k = 0; k < c->ndns_servers; k++) {
		put_name(t, d);
		text_puts(t, "[");
		put_ip(t, &c->dns_servers[k].addr);
		text_puts(t, "]:");
		text_put_u64(t, c->dns_servers[k].port);
		text_puts(t, "\n");
	}
}

/* "dkim-sign DOMAIN SELECTOR KEYFILE [headers H1:H2:...]" (docs/dkim.md).
 * The key file is read by mta/ (mta/ops/config_files.h). */
static int set_dkim_sign(struct parse *p, const struct directive *d, const char *arg, size_t len)
{
	struct conf *c = p->c;
	struct conf_dkim k;
	const char *name = arg, *sel = p->more[0], *why;
	size_t n = len, slen = p->morelen[0];

	memset(&k, 0, sizeof k);
	if (n >= 2 && name[0] == '*' && name[1] == '.') {
		k.domain.subdomains = 1;
		name += 2;
		n -= 2;
	}
	n = strip_root(name, n);
	if (n == 0 || n > ADDR_DOMAIN_MAX || name[0] == '[' || !addr_domain_valid(name, n, 0))
		return bad_value(p, d, "bad domain", arg, len, "");
	for (size_t i = 0; i < n; i++)
		k.domain.name[i] = ascii_lower(name[i]);
	/* The key's DNS name SELECTOR._domainkey.DOMAIN must fit in 253. */
	if (slen > CONF_DKIM_SELECTOR_MAX || sel[0] == '[' || !addr_domain_valid(sel, slen, 0) ||
	    sel[slen - 1] == '.' || slen + 12 + n > ADDR_DOMAIN_MAX - 2)
		return bad_value(p, d, "bad selector", sel, slen, "");
	memcpy(k.selector, sel, slen);
	if (set_path_into(p, d, p->more[1], p->morelen[1], k.keyfile) != 0)
		return -1;
	if (p->nmore == 3 && word_is(p->more[2], p->morelen[2], "headers")) {
		text_puts(error_at(p, d), "headers needs a list H1:H2:...");
		return fail(p);
	}
	if (p->nmore != 2 && (p->nmore != 4 || !word_is(p->more[2], p->morelen[2], "headers")))
		return bad_value(p, d, "unknown option", p->more[2], p->morelen[2],
		                 " (the only option is headers H1:H2:...)");
	if (p->nmore == 4 &&
	    dkim_hlist_check(p->more[3], p->morelen[3], k.headers, sizeof k.headers, &why) != 0) {
		struct text *t = error_at(p, d);
		text_puts(t, "bad headers list ");
		put_quoted(t, p->more[3], p->morelen[3]);
		text_puts(t, ": ");
		text_puts(t, why);
		return fail(p);
	}
	for (size_t i = 0; i < c->ndkim; i++)
		if (c->dkim[i].domain.subdomains == k.domain.subdomains &&
		    strcmp(c->dkim[i].domain.name, k.domain.name) == 0)
			return bad_value(p, d, "second key for domain", arg, len, "");
	if (c->ndkim == CONF_MAX_DKIM)
		return too_many(p, d, "keys", CONF_MAX_DKIM);
	k.line = p->line;
	c->dkim[c->ndkim++] = k;
	return 0;
}

/* Every key with its effective headers list, the default written out. */
static void format_dkim_sign(struct text *t, const struct conf *c, const struct directive *d)
{
	if (c->ndkim == 0)
		text_puts(t, "# dkim-sign: none\n");
	for (size_t k = 0; k < c->ndkim; k++) {
		const struct conf_dkim *dk = &c->dkim[k];

		put_name(t, d);
		if (dk->domain.subdomains)
			text_puts(t, "*.");
		text_puts(t, dk->domain.name);
		text_puts(t, " ");
		text_puts(t, dk->selector);
		text_puts(t, " ");
		text_puts(t, dk->keyfile);
		text_puts(t, " headers ");
		text_puts(t, dk->headers[0] != '\0' ? dk->headers : DKIM_DEFAULT_HEADERS);
		text_puts(t, "\n");
	}
}

/* The order here is the order conf_format() prints. */
static const struct directive directives[] = {
	{ "hostname",      set_hostname,  format_hostname,  0, 0, 0, 0, NULL },
	{ "listen",        set_listen,    format_listen,    1, 0, 0, 0, NULL },
	{ "domain",        set_domain,    format_domain,    1, 0, 0, 0, NULL },
	{ "relay-network", set_relay_net, format_relay_net, 1, 0, 0, 0, NULL },
	{ "proxy-from",    set_proxy_from, format_proxy_from, 1, 0, 0, 0, NULL },
	{ "queue",         set_queue,     format_queue,     0, 0, 0, 0, NULL },
	{ "queue-map-size",   set_size, format_size, 0, FIELD(queue_map_size), MIB, TIB, NULL },
	{ "queue-max-bytes",  set_size, format_size, 0, FIELD(queue_max_bytes), MIB, 256 * GIB, NULL },
	{ "queue-max-messages", set_uint, format_uint, 0, FIELD(queue_max_messages), 1, 10000000,
	  NULL },
	{ "queue-min-free",   set_size, format_size, 0, FIELD(queue_min_free), 0, TIB, NULL },
	{ "queue-min-free-percent", set_uint, format_uint, 0, FIELD(queue_min_free_percent), 0, 50,
	  NULL },
	{ "queue-client-share", set_uint, format_uint, 0, FIELD(queue_client_share), 1, 100, NULL },
	{ "max-message-size", set_size, format_size, 0, FIELD(max_message_size), 1, GIB, NULL },
	{ "max-recipients",   set_uint, format_uint, 0, FIELD(max_recipients), 100, 10000,
	  "RFC 5321 4.5.3.1.8" },
	{ "max-errors",       set_uint, format_uint, 0, FIELD(max_errors), 1, 1000, NULL },
	{ "max-connections",  set_uint, format_uint, 0, FIELD(max_connections), 1, 65535, NULL },
	{ "max-connections-per-client", set_uint, format_uint, 0,
	  FIELD(max_connections_per_client), 1, 65535, NULL },
	{ "max-messages-per-connection", set_uint, format_uint, 0,
	  FIELD(max_messages_per_connection), 1, 1000000, NULL },
	{ "max-junk-commands", set_uint, format_uint, 0, FIELD(max_junk_commands), 0, 1000000, NULL },
	{ "max-hops",         set_uint, format_uint, 0, FIELD(max_hops), 1, 1000000, NULL },
	{ "max-session-time", set_duration, format_duration, 0, FIELD(max_session_time), 0,
	  7 * 86400, NULL },
	{ "timeout-command",  set_uint, format_uint, 0, FIELD(timeout_command), 1, 3600, NULL },
	{ "timeout-data",     set_uint, format_uint, 0, FIELD(timeout_data), 1, 3600, NULL },
	{ "timeout-data-total", set_uint, format_uint, 0, FIELD(timeout_data_total), 1, 86400, NULL },
	{ "greet-delay",      set_uint, format_uint, 0, FIELD(greeting_delay_ms), 0, 60000, NULL },
	{ "tls-cert",      set_tls_cert,  format_tls_cert,  0, 0, 0, 0, NULL },
	{ "tls-key",       set_tls_key,   format_tls_key,   0, 0, 0, 0, NULL },
	{ "users",         set_users,     format_users,     0, 0, 0, 0, NULL },
	{ "auth-max-failures",  set_uint, format_uint, 0, FIELD(auth_max_failures), 1, 1000, NULL },
	{ "auth-block-seconds", set_uint, format_uint, 0, FIELD(auth_block_seconds), 1, 86400, NULL },
	{ "auth-fail-delay",    set_uint, format_uint, 0, FIELD(auth_fail_delay_ms), 0, 10000, NULL },
	{ "deny-network",  set_deny_net,  format_deny_net,  1, 0, 0, 0, NULL },
	{ "recipients",    set_recipients, format_recipients, 1, 0, 0, 0, NULL },
	{ "delivery",       set_onoff,     format_onoff,     0, FIELD(delivery), 0, 0, NULL },
	{ "route",          set_route,     format_route, 1, 0, 0, 0, NULL },
	{ "smarthost",      set_smarthost, format_smarthost, 0, 0, 0, 0, NULL },
	{ "outbound-tls",   set_outbound_tls, format_outbound_tls, 0, 0, 0, 0, NULL },
	{ "tls-ca-file",    set_field_path, format_field_path, 0, FIELD(tls_ca_file), 0, 0, NULL },
	{ "mta-sts",        set_onoff,     format_onoff,     0, FIELD(mta_sts), 0, 0, NULL },
	{ "dane",           set_onoff,     format_onoff,     0, FIELD(dane), 0, 0, NULL },
	{ "tls-report",     set_tls_report, format_tls_report, 0, FIELD(tls_report), 0, 0, NULL },
	{ "dns-server",     set_dns_server, format_dns_server, 1, 0, 0, 0, NULL },
	{ "dns-timeout",    set_duration, format_duration, 0, FIELD(dns_timeout), 1, 60, NULL },
	{ "dns-dnssec",     set_dns_dnssec, format_dns_dnssec, 0, FIELD(dns_dnssec), 0, 0, NULL },
	{ "retry-min",      set_duration, format_duration, 0, FIELD(retry_min), 1, 86400, NULL },
	{ "retry-max",      set_duration, format_duration, 0, FIELD(retry_max), 1, 7 * 86400, NULL },
	{ "queue-lifetime", set_duration, format_duration, 0, FIELD(queue_lifetime), 1, 100 * 86400,
	  NULL },
	{ "delay-warning",  set_duration, format_duration, 0, FIELD(delay_warning), 0, 100 * 86400,
	  NULL },
	{ "delivery-concurrency", set_uint, format_uint, 0, FIELD(delivery_concurrency), 1, 1000,
	  NULL },
	{ "destination-concurrency", set_uint, format_uint, 0, FIELD(destination_concurrency), 1,
	  1000, NULL },
	{ "destination-rate", set_destination_rate, format_destination_rate, 0, 0, 0, 0, NULL },
	{ "max-messages-per-delivery-connection", set_uint, format_uint, 0,
	  FIELD(delivery_conn_messages), 1, 100000, NULL },
	{ "delivery-connection-idle", set_duration, format_duration, 0, FIELD(delivery_conn_idle),
	  0, 300, NULL },
	{ "timeout-connect", set_duration, format_duration, 0, FIELD(timeout_connect), 1, 600, NULL },
	{ "timeout-reply",  set_duration, format_duration, 0, FIELD(timeout_reply), 1, 3600, NULL },
	{ "verify-cache",   set_duration, format_duration, 0, FIELD(verify_cache), 0, 86400, NULL },
	{ "timeout-verify", set_duration, format_duration, 0, FIELD(timeout_verify), 1, 600, NULL },
	{ "net-interface", set_net_interface, format_net_interface, 0, 0, 0, 0, NULL },
	{ "net-address",   set_net_address,   format_net_address,   1, 0, 0, 0, NULL },
	{ "net-gateway",   set_net_gateway,   format_net_gateway,   1, 0, 0, 0, NULL },
	{ "ntp-server",    set_ntp_server,    format_ntp_server,    1, 0, 0, 0, NULL },
	{ "reject-early-pipelining", set_onoff, format_onoff, 0, FIELD(reject_early_pipelining),
	  0, 0, NULL },
	{ "reject-invalid-helo", set_onoff, format_onoff, 0, FIELD(reject_invalid_helo), 0, 0, NULL },
	{ "reject-forged-helo", set_onoff, format_onoff, 0, FIELD(reject_forged_helo), 0, 0, NULL },
	{ "reject-forged-sender", set_onoff, format_onoff, 0, FIELD(reject_forged_sender), 0, 0,
	  NULL },
	{ "tarpit-after",     set_uint, format_uint, 0, FIELD(tarpit_after), 0, 1000, NULL },
	{ "tarpit-delay",     set_uint, format_uint, 0, FIELD(tarpit_delay_ms), 1, 60000, NULL },
	{ "tarpit-max-delay", set_uint, format_uint, 0, FIELD(tarpit_max_delay_ms), 1, 60000, NULL },
	{ "dnsbl",            set_dnsbl, format_dnsbl, 1, 0, 0, 0, NULL },
	{ "dnsbl-threshold",  set_uint, format_uint, 0, FIELD(dnsbl_threshold), 1, 1000, NULL },
	{ "dnsbl-stage",      set_dnsbl_stage, format_dnsbl_stage, 0, FIELD(dnsbl_stage), 0, 0, NULL },
	{ "dnsbl-timeout",    set_duration, format_duration, 0, FIELD(dnsbl_timeout), 1, 60, NULL },
	{ "dnsbl-negative-ttl", set_duration, format_duration, 0, FIELD(dnsbl_negative_ttl), 0,
	  86400, NULL },
	{ "dkim-sign",     set_dkim_sign, format_dkim_sign, 1, 0, 0, 0, NULL },
	{ "log",           set_log,       format_log,       0, 0, 0, 0, NULL },
	{ "log-facility",  set_log_facility, format_log_facility, 0, 0, 0, 0, NULL },
	{ "metrics-listen", set_metrics,  format_metrics,   0, 0, 0, 0, NULL },
	{ "shutdown-timeout", set_duration, format_duration, 0, FIELD(shutdown_timeout), 1, 3600,
	  NULL },
	{ "user-id",  set_uint, format_uint, 0, FIELD(run_uid), 1, 2147483646, "not root" },
	{ "group-id", set_uint, format_uint, 0, FIELD(run_gid), 1, 2147483646, "not root" },
};
#define NDIRECTIVES (sizeof directives / sizeof directives[0])

const char *conf_directive_name(size_t i)
{
	return i < NDIRECTIVES ? directives[i].name : NULL;
}

/* Directives that take more than one word: the words after the first
 * argument reach set() in p->more.  All others take exactly one. */
static const struct {
	set_fn *set;
	size_t  min, max;  /* words after the directive name */
	const char *usage;
} multi_word[] = {
	{ set_listen,     1, 6, "ADDR:PORT [options]" },
	{ set_deny_net,   1, 2, "CIDR [never-connect]" },
	{ set_recipients, 2, 2, "DOMAIN PATH|catch-all" },
	{ set_log,        1, 5, LOG_USAGE },
	{ set_route,      2, 6, "DOMAIN NEXTHOP [tls MODE] [smtps] [verify-recipients]" },
	{ set_smarthost,  1, 6, "NEXTHOP [tls MODE] [smtps] [auth FILE]" },
	{ set_dkim_sign,  3, 5, "DOMAIN SELECTOR KEYFILE [headers H1:H2:...]" },
};
_Static_assert(NDIRECTIVES <= SEEN_MAX, "struct parse: seen[] is too small");

size_t conf_words(const char *s, size_t len, const char **word, size_t *wlen, size_t max)
{
	size_t n = 0, k = 0;

	for (;;) {
		while (k < len && (s[k] == ' ' || s[k] == '\t'))
			k++;
		if (k == len || s[k] == '#')
			return n;
		size_t start = k;
		while (k < len && s[k] != ' ' && s[k] != '\t')
			k++;
		if (n < max) {
			word[n] = s + start;
			wlen[n] = k - start;
		}
		n++;
	}
}

static int parse_line(struct parse *p, const char *s, size_t len)
{
	const char *word[1 + CONF_ARGS_MAX];
	size_t wlen[1 + CONF_ARGS_MAX];
	const struct directive *d = NULL;
	size_t i;

	if (len > 0 && s[len - 1] == '\r')
		len--;
	if (len > CONF_LINE_MAX) {
		struct text *t = error_at(p, NULL);
		text_puts(t, "line too long (over ");
		text_put_u64(t, CONF_LINE_MAX);
		text_puts(t, " bytes)");
		return fail(p);
	}
	for (size_t k = 0; k < len; k++) {
		if (s[k] == '\0') {
			text_puts(error_at(p, NULL), "NUL byte in line");
			return fail(p);
		}
		if ((s[k] < 0x20 && s[k] != '\t') || s[k] == 0x7f) {
			text_puts(error_at(p, NULL), "control character in line");
			return fail(p);
		}
	}
	size_t n = conf_words(s, len, word, wlen, 1 + CONF_ARGS_MAX);
	if (n == 0)
		return 0;
	for (i = 0; i < NDIRECTIVES; i++) {
		if (strlen(directives[i].name) == wlen[0] &&
		    memcmp(directives[i].name, word[0], wlen[0]) == 0) {
			d = &directives[i];
			break;
		}
	}
	if (d == NULL)
		return bad_value(p, NULL, "unknown directive", word[0], wlen[0], "");
	if (n < 2) {
		text_puts(error_at(p, d), "missing argument");
		return fail(p);
	}
	size_t min = 1, max = 1;
	const char *usage = NULL;
	for (size_t k = 0; k < sizeof multi_word / sizeof multi_word[0]; k++)
		if (multi_word[k].set == d->set) {
			min = multi_word[k].min;
			max = multi_word[k].max;
			usage = multi_word[k].usage;
		}
	if (n - 1 < min || n - 1 > max) {
		struct text *t = error_at(p, d);
		if (usage == NULL) {
			text_puts(t, "too many arguments (it takes one)");
		} else {
			text_puts(t, n - 1 < min ? "missing argument" : "too many arguments");
			text_puts(t, " (");
			text_puts(t, d->name);
			text_puts(t, " ");
			text_puts(t, usage);
			text_puts(t, ")");
		}
		return fail(p);
	}
	p->nmore = n - 2;
	for (size_t k = 0; k < p->nmore; k++) {
		p->more[k] = word[2 + k];
		p->morelen[k] = wlen[2 + k];
	}
	if (!d->repeatable) {
		if (p->seen[i] != 0) {
			struct text *t = error_at(p, d);
			text_puts(t, "given twice (first on line ");
			text_put_u64(t, p->seen[i]);
			text_puts(t, ")");
			return fail(p);
		}
		p->seen[i] = p->line;
	}
	return d->set(p, d, word[1], wlen[1]);
}

int conf_parse(const char *text, size_t len, const char *file, struct conf *c,
               char *err, size_t errcap)
{
	struct parse p;
	size_t pos = 0;

	memset(&p, 0, sizeof p);
	p.c = c;
	p.file = file;
	p.err = (struct text){ err, errcap, 0 };
	text_end(&p.err);
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl != NULL ? (size_t)(nl - text) : len;
		p.line++;
		if (parse_line(&p, text + pos, end - pos) != 0)
			return -1;
		pos = end + 1;
	}
	return 0;
}

/* A proxy listener believes a PROXY header only from proxy-from, so it
 * needs one (else it would close every connection); proxy-from without a
 * proxy listener is a listener that lost its "proxy", whose every client
 * would seem to be the load balancer. */
static int check_proxy(const struct conf *c, struct parse *p)
{
	const struct conf_listener *first = NULL;

	for (size_t k = 0; k < c->nlisteners && first == NULL; k++)
		if (c->listeners[k].proxy)
			first = &c->listeners[k];
	if (first != NULL && c->nproxy_from == 0) {
		p->line = c->proxy_listen_line;
		struct text *t = error_at(p, NULL);
		text_puts(t, "listen ");
		put_listener(t, first);
		text_puts(t, " proxy: no proxy-from (proxy-from CIDR names the load balancers"
		             " that may send the PROXY header; without one every connection"
		             " would be closed)");
		return fail(p);
	}
	if (c->nproxy_from > 0 && first == NULL) {
		p->line = c->proxy_from_line;
		text_puts(error_at(p, NULL), "proxy-from: no listener has the proxy option"
		                             " (listen ADDR:PORT proxy)");
		return fail(p);
	}
	return 0;
}

/* log remote: the destination string (policy/syslog.h) into log_socket,
 * where the log finds it; TLS takes its CA from tls-ca-file. */
static int finish_log_remote(struct parse *p)
{
	struct conf *c = p->c;
	struct syslog_dest dst;

	memset(&dst, 0, sizeof dst);
	dst.transport = c->log_remote;
	memcpy(dst.host, c->log_remote_hop.host, sizeof dst.host);
	dst.port = c->log_remote_hop.port;
	dst.buffer = (size_t)c->log_remote_buffer;
	dst.uid = (long)c->run_uid;
	dst.gid = (long)c->run_gid;
	p->line = c->log_line;
	if (dst.transport == SYSLOG_TLS) {
		if (c->tls_ca_file[0] == '\0') {
			text_puts(error_at(p, NULL), "log remote tls: the server's certificate is checked "
			          "against tls-ca-file, which is not set");
			return fail(p);
		}
		memcpy(dst.ca, c->tls_ca_file, strnlen(c->tls_ca_file, sizeof dst.ca - 1));
	}
	if (syslog_dest_format(&dst, c->log_socket, sizeof c->log_socket) == 0) {
		text_puts(error_at(p, NULL), "log remote: server and tls-ca-file too long together");
		return fail(p);
	}
	return 0;
}

/* The recipients lists name our domains; TLS files come in pairs. */
static int check_rcpt_lists_and_tls(const struct conf *c, struct parse *p)
{
	for (size_t k = 0; k < c->nrcpt_lists; k++) {
		const struct conf_rcptlist *r = &c->rcpt_lists[k];
		size_t i;
		for (i = 0; i < c->ndomains; i++)
			if (conf_rcptlist_find(c, &c->domains[i]) == r)
				break;
		if (i == c->ndomains) {
			p->line = r->line;
			struct text *t = error_at(p, NULL);
			text_puts(t, "recipients: ");
			put_quoted(t, r->domain, strlen(r->domain));
			text_puts(t, " is not one of our domains (list it in a domain line, in the same form)");
			return fail(p);
		}
	}
	if ((c->tls_cert[0] != '\0') != (c->tls_key[0] != '\0')) {
		p->line = c->tls_cert[0] ? c->tls_cert_line : c->tls_key_line;
		text_puts(error_at(p, NULL), c->tls_cert[0] ? "tls-cert without tls-key"
		                                          : "tls-key without tls-cert");
		return fail(p);
	}
	return 0;
}

/* Each listener has what its options need. */
static int check_listeners(const struct conf *c, struct parse *p)
{
	for (size_t k = 0; k < c->nlisteners; k++) {
		const struct conf_listener *l = &c->listeners[k];
		const char *why = NULL;

		if (l->tls != CONF_TLS_NONE && c->tls_cert[0] == '\0')
			why = " has TLS but there is no tls-cert and tls-key";
		else if (l->role == CONF_ROLE_SUBMISSION && c->users[0] == '\0')
			why = " is for submission but there is no users file";
		else if (l->role == CONF_ROLE_SUBMISSION && l->tls == CONF_TLS_NONE &&
		         !l->auth_plaintext_loopback)
			why = " is for submission without TLS: AUTH would never be offered "
			      "(add tls=starttls, tls=implicit or auth-plaintext-loopback)";
		if (why != NULL) {
			struct text *t = error_at(p, NULL);
			text_puts(t, "listen ");
			put_listener(t, l);
			text_puts(t, why);
			return fail(p);
		}
	}
	return 0;
}

/* The metrics' address is no SMTP listener's. */
static int check_metrics(const struct conf *c, struct parse *p)
{
	for (size_t k = 0; c->metrics.port != 0 && k < c->nlisteners; k++) {
		if (!listeners_overlap(&c->listeners[k], &c->metrics))
			continue;
		p->line = c->metrics_line;
		struct text *t = error_at(p, NULL);
		text_puts(t, "metrics-listen ");
		put_listener(t, &c->metrics);
		text_puts(t, " is also an SMTP listener (");
		put_listener(t, &c->listeners[k]);
		text_puts(t, ")");
		return fail(p);
	}
	return 0;
}

/* A message fits the queue. */
static int check_message_size(const struct conf *c, struct parse *p)
{
	if (c->max_message_size > c->queue_max_bytes) {
		struct text *t = error_at(p, NULL);
		text_puts(t, "max-message-size ");
		put_size(t, c->max_message_size);
		text_puts(t, " must not exceed queue-max-bytes ");
		put_size(t, c->queue_max_bytes);
		return fail(p);
	}
	return 0;
}

/* The map holds the quotas: sized from them unless set. */
static int check_map(struct conf *c, struct parse *p)
{
	uint64_t map = quota_map_size(c->queue_max_bytes, c->queue_max_messages);

	if (c->queue_map_size == 0) {
		c->queue_map_size = map;
	} else if (c->queue_map_size < map) {
		struct text *t = error_at(p, NULL);
		text_puts(t, "queue-map-size ");
		put_size(t, c->queue_map_size);
		text_puts(t, " is below ");
		put_size(t, map);
		text_puts(t, ", what queue-max-bytes ");
		put_size(t, c->queue_max_bytes);
		text_puts(t, " and queue-max-messages ");
		text_put_u64(t, c->queue_max_messages);
		text_puts(t, " need (leave queue-map-size out to have it sized for them)");
		return fail(p);
	}
	return 0;
}

int conf_finish(struct conf *c, const char *file, char *err, size_t errcap)
{
	struct parse p;

	memset(&p, 0, sizeof p);
	p.c = c;
	p.file = file;
	p.err = (struct text){ err, errcap, 0 };
	text_end(&p.err);
	if (c->nlisteners == 0) {
		struct conf_listener *l = &c->listeners[c->nlisteners++];
		memset(l, 0, sizeof *l);
		l->addr.family = IP_V4;
		l->port = 25;
		l->any = 1;
	}
	if (c->queue_path[0] == '\0') {
		text_puts(error_at(&p, NULL), "queue: no queue path");
		return fail(&p);
	}
	if (c->ndomains == 0 && c->nrelay_nets == 0) {
		text_puts(error_at(&p, NULL),
		        "no domain and no relay-network: this relay would accept nothing");
		return fail(&p);
	}
	if (c->retry_min > c->retry_max) {
		struct text *t = error_at(&p, NULL);
		text_puts(t, "retry-min ");
		put_duration(t, c->retry_min);
		text_puts(t, " is above retry-max ");
		put_duration(t, c->retry_max);
		return fail(&p);
	}
	if (c->smarthost_auth[0] != '\0' && !c->smarthost.smtps &&
	    c->smarthost.tls != CONF_OTLS_REQUIRE && c->smarthost.tls != CONF_OTLS_VERIFY) {
		text_puts(error_at(&p, NULL),
		        "smarthost: auth sends a password: it needs tls require, tls verify or smtps");
		return fail(&p);
	}
	if (check_rcpt_lists_and_tls(c, &p) != 0 || check_listeners(c, &p) != 0 ||
	    check_proxy(c, &p) != 0 || check_metrics(c, &p) != 0 || check_message_size(c, &p) != 0)
		return -1;
	if (c->log_remote != 0 && finish_log_remote(&p) != 0)
		return -1;
	return check_map(c, &p);
}

size_t conf_format(const struct conf *c, char *buf, size_t cap)
{
	struct text t = { buf, cap, 0 };

	for (size_t k = 0; k < NDIRECTIVES; k++)
		directives[k].format(&t, c, &directives[k]);
	return text_end(&t);
}
