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

int rules_domain_match(const struct conf_domain *d, const char *domain, size_t len)
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
		if (rules_domain_match(&c->domains[k], domain, len))
			return 1;
	return 0;
}

int rules_relay_allowed(const struct conf *c, const struct rules_client *cl)
{
	struct ipaddr ip = cl->addr;

	if (cl->authenticated)
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
