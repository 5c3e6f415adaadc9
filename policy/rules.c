/* policy/rules.c -- the accept and relay decision; see rules.h */
#include <string.h>

#include "rules.h"

/* ASCII case-insensitive, whatever the locale: domain names are ASCII
 * (A-labels) for this comparison. */
static int same_ci(const char *a, const char *b, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		unsigned char x = (unsigned char)a[k], y = (unsigned char)b[k];
		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x + ('a' - 'A'));
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y + ('a' - 'A'));
		if (x != y)
			return 0;
	}
	return 1;
}

int rules_domain_matches(const struct conf_domain *d, const char *domain, size_t len)
{
	size_t n = strlen(d->name);

	if (len == n && same_ci(domain, d->name, n))
		return 1;
	/* "*.example.org": whole labels only, so a.example.org matches and
	 * evilexample.org does not; an empty label (".example.org") is no
	 * subdomain either. */
	return d->subdomains && len > n + 1 && domain[len - n - 1] == '.' &&
	       domain[len - n - 2] != '.' && same_ci(domain + len - n, d->name, n);
}

int rules_domain_is_local(const struct conf *c, const char *domain, size_t len)
{
	for (size_t k = 0; k < c->ndomains; k++)
		if (rules_domain_matches(&c->domains[k], domain, len))
			return 1;
	return 0;
}

int rules_denied(const struct conf *c, const struct ipaddr *addr, int never_connect)
{
	struct ipaddr ip = *addr;

	ip_unmap(&ip);
	for (size_t k = 0; k < c->ndeny_nets; k++)
		if ((!never_connect || c->deny_nets[k].never_connect) &&
		    cidr_match(&c->deny_nets[k].net, &ip))
			return 1;
	return 0;
}

int rules_relay_allowed(const struct conf *c, const struct rules_client *cl)
{
	struct ipaddr ip = cl->addr;

	/* A deny network overrides every allow, authentication included. */
	if (rules_denied(c, &cl->addr, 0))
		return 0;
	if (cl->authenticated || cl->internal)
		return 1;
	ip_unmap(&ip); /* the caller should have; a mapped address must not slip by */
	for (size_t k = 0; k < c->nrelay_nets; k++)
		if (cidr_match(&c->relay_nets[k], &ip))
			return 1;
	return 0;
}

enum rcpt_verdict rules_rcpt(const struct conf *c, const struct rules_client *cl,
                             const struct addr *rcpt)
{
	/* RFC 5321 4.5.1: <postmaster> without a domain is always ours. */
	if (rcpt->flags & ADDR_F_POSTMASTER)
		return RCPT_LOCAL;
	/* No domain (the null path) is nowhere we could deliver or relay to. */
	if (rcpt->domainlen == 0 || (rcpt->flags & ADDR_F_NULL))
		return RCPT_DENY_RELAY;
	int relay = rules_relay_allowed(c, cl);
	if (!(rcpt->flags & ADDR_F_LITERAL) &&
	    rules_domain_is_local(c, rcpt->domain, rcpt->domainlen)) {
		if ((rcpt->flags & ADDR_F_ROUTING) && !relay)
			return RCPT_DENY_ROUTING;
		return RCPT_LOCAL;
	}
	return relay ? RCPT_RELAY : RCPT_DENY_RELAY;
}

/* Append-only text, like conf.c's: counts what did not fit. */
struct mtext {
	char  *buf;
	size_t cap, len;
};

static void mput(struct mtext *t, const char *s)
{
	for (; *s; s++, t->len++)
		if (t->len + 1 < t->cap)
			t->buf[t->len] = *s;
}

static void mput_listener(struct mtext *t, const struct conf_listener *l)
{
	char ip[IP_TEXT_MAX], port[8];
	unsigned p = l->port;
	size_t i = sizeof port - 1;

	ip_format(&l->addr, ip, sizeof ip);
	port[i] = '\0';
	do {
		port[--i] = (char)('0' + p % 10);
		p /= 10;
	} while (p > 0);
	mput(t, l->addr.family == IP_V6 ? "[" : "");
	mput(t, ip);
	mput(t, l->addr.family == IP_V6 ? "]:" : ":");
	mput(t, port + i);
}

static void mrow(struct mtext *t, const char *who, const char *ours, const char *foreign)
{
	char pad[32];
	size_t n = strlen(who), k = 0;

	mput(t, "#   ");
	mput(t, who);
	for (; n + k < 28 && k < sizeof pad - 1; k++)
		pad[k] = ' ';
	pad[k] = '\0';
	mput(t, pad);
	mput(t, ours);
	n = strlen(ours);
	for (k = 0; n + k < 20 && k < sizeof pad - 1; k++)
		pad[k] = ' ';
	pad[k] = '\0';
	mput(t, pad);
	mput(t, foreign);
	mput(t, "\n");
}

/* Do the two networks share an address?  Then one holds the other. */
static int nets_overlap(const struct cidr *a, const struct cidr *b)
{
	return a->prefix <= b->prefix ? cidr_match(a, &b->net) : cidr_match(b, &a->net);
}

/* Behind a proxy, the sessions that carry no client address (PROXY LOCAL,
 * the proxy's health check, and UNKNOWN) are the proxy's own: say so when
 * a relay network holds a proxy, so that it is meant. */
static void matrix_proxy_notes(struct mtext *t, const struct conf *c)
{
	for (size_t i = 0; i < c->nproxy_from; i++) {
		for (size_t k = 0; k < c->nrelay_nets; k++) {
			char a[IP_TEXT_MAX], b[IP_TEXT_MAX];

			if (!nets_overlap(&c->proxy_from[i], &c->relay_nets[k]))
				continue;
			cidr_format(&c->proxy_from[i], a, sizeof a);
			cidr_format(&c->relay_nets[k], b, sizeof b);
			mput(t, "#   (note: proxy-from ");
			mput(t, a);
			mput(t, " overlaps relay-network ");
			mput(t, b);
			mput(t, ":\n#    the proxy's own sessions, PROXY LOCAL or UNKNOWN, may relay)\n");
			break;
		}
	}
}

size_t rules_matrix_format(const struct conf *c, char *buf, size_t cap)
{
	struct mtext t = { buf, cap, 0 };
	int lists = 0;

	for (size_t k = 0; k < c->nrcpt_lists; k++)
		lists |= c->rcpt_lists[k].path[0] != '\0';
	const char *ours = lists ? "accept (listed)" : "accept";
	mput(&t, "# relay matrix (who may send where, per listener)\n");
	for (size_t k = 0; k < c->nlisteners; k++) {
		const struct conf_listener *l = &c->listeners[k];
		int sub = l->role == CONF_ROLE_SUBMISSION;

		mput(&t, "# listen ");
		mput_listener(&t, l);
		mput(&t, sub ? " (submission" : " (mx");
		mput(&t, l->internal ? ", internal" : "");
		mput(&t, l->proxy ? ", proxy)\n" : ")\n");
		if (l->proxy)
			mput(&t, "#   (the client is the address in the PROXY header; a peer outside\n"
			         "#    proxy-from is closed before the greeting)\n");
		mrow(&t, "client", "our domain", "foreign domain");
		if (sub)
			mrow(&t, "authenticated user", ours, "relay");
		if (sub)
			mrow(&t, "not authenticated", "530 5.7.0", "530 5.7.0");
		else if (l->internal)
			mrow(&t, "anyone (internal)", ours, "relay");
		else {
			if (c->nrelay_nets)
				mrow(&t, "relay network", ours, "relay");
			mrow(&t, "anyone else", ours, "554 5.7.1");
		}
		if (c->ndeny_nets)
			mrow(&t, "deny network", ours, "554 5.7.1");
		if (l->proxy)
			mrow(&t, "peer outside proxy-from", "closed", "closed");
	}
	matrix_proxy_notes(&t, c);
	if (c->ndeny_nets) {
		int nc = 0;
		for (size_t k = 0; k < c->ndeny_nets; k++)
			nc |= c->deny_nets[k].never_connect;
		if (nc)
			mput(&t, "#   (deny networks marked never-connect get 554 at connect)\n");
	}
	if (lists)
		mput(&t, "#   (listed: unknown users at domains with a recipients list get 550 5.1.1)\n");
	if (t.cap > 0)
		t.buf[t.len < t.cap ? t.len : t.cap - 1] = '\0';
	return t.len;
}
