/* policy/edge.c -- HELO and sender sanity, the tarpit schedule, the names
 * of edge decisions; see edge.h */
#include <string.h>

#include "addr.h"
#include "edge.h"
#include "rules.h"

#define EDGE_NAME(e, name) name,
static const char *const reason_names[EDGE_NREASONS] = { EDGE_REASONS(EDGE_NAME) };
#undef EDGE_NAME

const char *edge_reason_name(enum edge_reason r)
{
	return (unsigned)r < EDGE_NREASONS ? reason_names[r] : "?";
}

void edge_count(struct edge_counters *c, enum edge_reason r)
{
	if (c != NULL && (unsigned)r < EDGE_NREASONS)
		c->n[r]++;
}

static int same_ci(const char *a, const char *b, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		char x = a[k], y = b[k];

		if (x >= 'A' && x <= 'Z')
			x = (char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (char)(y - 'A' + 'a');
		if (x != y)
			return 0;
	}
	return 1;
}

static int name_is(const char *name, size_t len, const char *ours)
{
	size_t n = strlen(ours);

	return n > 0 && len == n && same_ci(name, ours, n);
}

/* The address a HELO argument names, if it names one: "[192.0.2.1]",
 * "[IPv6:2001:db8::1]", or a bare "192.0.2.1" / "2001:db8::1". */
static int helo_address(const char *name, size_t len, struct ipaddr *ip)
{
	if (len >= 2 && name[0] == '[' && name[len - 1] == ']') {
		name++;
		len -= 2;
		if (len > 5 && same_ci(name, "ipv6:", 5)) {
			if (ip_parse(name + 5, len - 5, ip) < 0 || ip->family != IP_V6)
				return 0;
		} else if (ip_parse(name, len, ip) < 0 || ip->family != IP_V4) {
			return 0;
		}
	} else if (ip_parse(name, len, ip) < 0) {
		return 0;
	}
	ip_unmap(ip);
	return 1;
}

static int address_is_ours(const struct conf *c, const struct ipaddr *ip,
                           const struct ipaddr *local)
{
	if (local != NULL && local->family != 0) {
		struct ipaddr l = *local;

		ip_unmap(&l);
		if (ip_equal(ip, &l))
			return 1;
	}
	for (size_t k = 0; k < c->nlisteners; k++)
		if (!c->listeners[k].any && ip_equal(ip, &c->listeners[k].addr))
			return 1;
	return 0;
}

enum edge_helo edge_helo_check(const struct conf *c, const char *name, size_t len,
                               const struct ipaddr *local)
{
	struct ipaddr ip;

	if (len == 0 || len > ADDR_DOMAIN_MAX || !addr_domain_valid(name, len, 1))
		return EDGE_HELO_SYNTAX;
	if (name[len - 1] == '.')
		len--; /* the root: "mx.example.org." is "mx.example.org" */
	if (name_is(name, len, c->hostname))
		return EDGE_HELO_OURS;
	for (size_t k = 0; k < c->ndomains; k++)
		if (name_is(name, len, c->domains[k].name))
			return EDGE_HELO_OURS;
	if (helo_address(name, len, &ip) && address_is_ours(c, &ip, local))
		return EDGE_HELO_OURS;
	return EDGE_HELO_OK;
}

int edge_sender_ours(const struct conf *c, const char *domain, size_t len, unsigned addr_flags)
{
	if (len == 0 || (addr_flags & (ADDR_F_NULL | ADDR_F_POSTMASTER | ADDR_F_LITERAL)))
		return 0;
	return rules_domain_is_local(c, domain, len);
}

unsigned edge_tarpit_delay(const struct conf *c, unsigned errors)
{
	uint64_t d;

	if (c->tarpit_after == 0 || errors < c->tarpit_after)
		return 0;
	d = (uint64_t)c->tarpit_delay_ms * (errors - c->tarpit_after + 1);
	return d > c->tarpit_max_delay_ms ? c->tarpit_max_delay_ms : (unsigned)d;
}
