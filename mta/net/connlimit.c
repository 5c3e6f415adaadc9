/* mta/net/connlimit.c -- open connections per client; see connlimit.h */
#include "mta/net/connlimit.h"

#include <string.h>

static void client_of(const struct ipaddr *addr, struct ipaddr *out)
{
	memset(out, 0, sizeof *out);
	out->family = addr->family;
	memcpy(out->a, addr->a, addr->family == IP_V6 ? 8 : 4);
}

/* FNV-1a over the family and the address bytes. */
static size_t bucket_of(const struct ipaddr *c)
{
	uint32_t h = 2166136261u;

	h = (h ^ c->family) * 16777619u;
	for (size_t i = 0; i < sizeof c->a; i++)
		h = (h ^ c->a[i]) * 16777619u;
	return h & (CONNLIMIT_BUCKETS - 1);
}

static int same_client(const struct ipaddr *a, const struct ipaddr *b)
{
	return a->family == b->family && memcmp(a->a, b->a, sizeof a->a) == 0;
}

void connlimit_init(struct connlimit *t)
{
	memset(t, 0, sizeof *t);
}

unsigned connlimit_count(const struct connlimit *t, const struct ipaddr *addr)
{
	struct ipaddr c;
	const struct connlimit_node *n;
	unsigned count = 0;

	client_of(addr, &c);
	for (n = t->bucket[bucket_of(&c)]; n != NULL; n = n->next)
		if (same_client(&n->client, &c))
			count++;
	return count;
}

void connlimit_add(struct connlimit *t, struct connlimit_node *n, const struct ipaddr *addr)
{
	struct connlimit_node **head;

	client_of(addr, &n->client);
	head = &t->bucket[bucket_of(&n->client)];
	n->next = *head;
	if (*head != NULL)
		(*head)->pprev = &n->next;
	n->pprev = head;
	*head = n;
}

void connlimit_del(struct connlimit_node *n)
{
	if (n->pprev == NULL)
		return;
	*n->pprev = n->next;
	if (n->next != NULL)
		n->next->pprev = n->pprev;
	n->next = NULL;
	n->pprev = NULL;
}
