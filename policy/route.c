/* policy/route.c -- where a recipient's mail goes next; see route.h */
#include "policy/route.h"

#include <string.h>

#include "policy/rules.h"

const struct conf_route *route_find(const struct conf *c, const char *domain, size_t len)
{
	const struct conf_route *best = NULL;

	for (size_t k = 0; k < c->nroutes; k++) {
		const struct conf_route *r = &c->routes[k];
		if (!rules_domain_matches(&r->domain, domain, len))
			continue;
		if (!r->domain.subdomains)
			return r;                       /* an exact name wins */
		if (best == NULL || strlen(r->domain.name) > strlen(best->domain.name))
			best = r;
	}
	return best;
}

static void key_hop(struct route *out, const struct conf_nexthop *h)
{
	size_t n = strlen(h->host);
	char *k = out->key;

	memcpy(k, "relay:", 6);
	memcpy(k + 6, h->host, n);
	k += 6 + n;
	*k++ = ':';
	for (unsigned p = h->port, div = 10000; div > 0; div /= 10)
		if (p >= div || div == 1)
			*k++ = (char)('0' + p / div % 10);
	*k++ = ':';
	*k++ = (char)('0' + h->tls);
	*k++ = h->smtps ? 's' : '-';
	*k = '\0';
}

/* "[192.0.2.1]" or "[IPv6:2001:db8::1]" to an address; -1 if neither. */
static int literal_addr(const char *d, size_t len, struct ipaddr *ip)
{
	static const char tag[] = "ipv6:";

	if (len < 3 || d[0] != '[' || d[len - 1] != ']')
		return -1;
	d++;
	len -= 2;
	if (len > 5) {
		size_t i = 0;
		while (i < 5 && (d[i] == tag[i] || d[i] - 'A' + 'a' == tag[i]))
			i++;
		if (i == 5)
			return ip_parse(d + 5, len - 5, ip) == 0 && ip->family == IP_V6 ? 0 : -1;
	}
	/* Without the tag only IPv4; any other "tag:" is a general literal. */
	return ip_parse(d, len, ip) == 0 && ip->family == IP_V4 ? 0 : -1;
}

enum route_kind route_select(const struct conf *c, const char *rcpt, struct route *out)
{
	const char *at = strrchr(rcpt, '@');
	const char *dom = at ? at + 1 : c->hostname;
	size_t len = strlen(dom);
	const struct conf_route *r;

	memset(out, 0, sizeof *out);
	if (len > ADDR_DOMAIN_MAX)
		len = ADDR_DOMAIN_MAX;
	for (size_t i = 0; i < len; i++)
		out->domain[i] = dom[i] >= 'A' && dom[i] <= 'Z' ? (char)(dom[i] - 'A' + 'a') : dom[i];
	out->domain[len] = '\0';

	if (len > 0 && dom[0] != '[' && (r = route_find(c, out->domain, len)) != NULL) {
		out->kind = ROUTE_NEXTHOP;
		out->hop = &r->hop;
	} else if (c->smarthost.host[0] != '\0') {
		out->kind = ROUTE_SMARTHOST;
		out->hop = &c->smarthost;
	} else if (len > 0 && dom[0] == '[') {
		char text[IP_TEXT_MAX];
		if (literal_addr(dom, len, &out->addr) != 0)
			return out->kind = ROUTE_NONE;
		out->kind = ROUTE_LITERAL;
		memcpy(out->key, "ip:", 3);
		memcpy(out->key + 3, text, ip_format(&out->addr, text, sizeof text));
		return out->kind;
	} else if (len > 0) {
		out->kind = ROUTE_MX;
		memcpy(out->key, "mx:", 3);
		memcpy(out->key + 3, out->domain, len + 1);
		return out->kind;
	} else {
		return out->kind = ROUTE_NONE;
	}
	key_hop(out, out->hop);
	return out->kind;
}

/* 127.0.0.0/8, ::1, 0.0.0.0, ::, and ::ffff:127.x: this machine */
static int machine_itself(const struct ipaddr *a)
{
	static const uint8_t zero[16];
	struct ipaddr u = *a;

	ip_unmap(&u);
	if (u.family == IP_V4)
		return u.a[0] == 127 || memcmp(u.a, zero, 4) == 0;
	return memcmp(u.a, zero, 15) == 0 && (u.a[15] == 0 || u.a[15] == 1);
}

int route_is_self(const struct conf *c, const struct ipaddr *local, size_t nlocal,
                  const struct ipaddr *addr, unsigned port)
{
	struct ipaddr u = *addr;
	int mine = machine_itself(addr);

	ip_unmap(&u);
	for (size_t i = 0; !mine && i < nlocal; i++) {
		struct ipaddr l = local[i];
		ip_unmap(&l);
		mine = ip_equal(&l, &u);
	}
	for (size_t i = 0; i < c->nlisteners; i++) {
		const struct conf_listener *l = &c->listeners[i];
		struct ipaddr la = l->addr;

		if (l->port != port)
			continue;
		ip_unmap(&la);
		if (l->any ? mine : ip_equal(&la, &u))
			return 1;
	}
	return 0;
}
