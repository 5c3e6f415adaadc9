/* tests/unit/test_connlimit.c -- mta/net/connlimit.c: counts per client
 * (IPv4 address, IPv6 /64) as connections come and go in any order, with
 * thousands in the table and many clients sharing a bucket. */
#include "t.h"

#include <stdlib.h>

#include "mta/net/connlimit.h"

static struct connlimit table;

static struct ipaddr ip(const char *text)
{
	struct ipaddr a;

	memset(&a, 0, sizeof a);
	CHECKF(ip_parse(text, strlen(text), &a) == 0, "%s", text);
	return a;
}

static unsigned count(const char *text)
{
	struct ipaddr a = ip(text);

	return connlimit_count(&table, &a);
}

static void test_basic(void)
{
	struct connlimit_node n[6];
	struct ipaddr a;

	memset(n, 0, sizeof n);
	connlimit_init(&table);
	CHECK(count("192.0.2.1") == 0);
	a = ip("192.0.2.1");
	connlimit_add(&table, &n[0], &a);
	connlimit_add(&table, &n[1], &a);
	a = ip("192.0.2.2");
	connlimit_add(&table, &n[2], &a);
	CHECK(count("192.0.2.1") == 2 && count("192.0.2.2") == 1 && count("192.0.2.3") == 0);
	/* IPv6: one /64 is one client */
	a = ip("2001:db8:1:2::1");
	connlimit_add(&table, &n[3], &a);
	a = ip("2001:db8:1:2:ffff:ffff:ffff:ffff");
	connlimit_add(&table, &n[4], &a);
	a = ip("2001:db8:1:3::1");
	connlimit_add(&table, &n[5], &a);
	CHECK(count("2001:db8:1:2::99") == 2 && count("2001:db8:1:3::") == 1);
	CHECK(count("2001:db8:1:4::1") == 0);
	/* 192.0.2.1 and ::ffff... are unmapped by the server; here the
	 * families differ, so an IPv6 address never counts as an IPv4 one */
	CHECK(count("::c000:201") == 0);
	connlimit_del(&n[0]);
	CHECK(count("192.0.2.1") == 1);
	connlimit_del(&n[0]);               /* twice: nothing happens */
	CHECK(count("192.0.2.1") == 1);
	connlimit_del(&n[4]);
	connlimit_del(&n[3]);
	CHECK(count("2001:db8:1:2::1") == 0 && count("2001:db8:1:3::1") == 1);
	connlimit_del(&n[1]);
	connlimit_del(&n[2]);
	connlimit_del(&n[5]);
	for (size_t b = 0; b < CONNLIMIT_BUCKETS; b++)
		CHECK(table.bucket[b] == NULL);
}

/* 5000 connections from 700 clients, removed in a scrambled order; the
 * counts are checked against a plain array after every step of 97. */
#define N 5000
#define CLIENTS 700
static void test_many(void)
{
	static struct connlimit_node n[N];
	static unsigned owner[N], want[CLIENTS];
	static int live[N];
	uint32_t x = 12345;
	struct ipaddr a;

	memset(n, 0, sizeof n);
	memset(want, 0, sizeof want);
	connlimit_init(&table);
	memset(&a, 0, sizeof a);
	a.family = IP_V4;
	for (size_t i = 0; i < N; i++) {
		x = x * 1103515245u + 12345u;
		owner[i] = (x >> 8) % CLIENTS;
		a.a[0] = 10;
		a.a[2] = (uint8_t)(owner[i] >> 8);
		a.a[3] = (uint8_t)owner[i];
		connlimit_add(&table, &n[i], &a);
		live[i] = 1;
		want[owner[i]]++;
	}
	for (size_t step = 0; step < N; step++) {
		size_t i = (step * 2311) % N;   /* 2311 is prime to 5000 */
		connlimit_del(&n[i]);
		if (live[i]) {
			live[i] = 0;
			want[owner[i]]--;
		}
		if (step % 97 == 0) {
			for (unsigned c = 0; c < CLIENTS; c++) {
				a.a[2] = (uint8_t)(c >> 8);
				a.a[3] = (uint8_t)c;
				CHECKF(connlimit_count(&table, &a) == want[c], "client %u step %zu", c, step);
			}
		}
	}
	for (unsigned c = 0; c < CLIENTS; c++)
		CHECK(want[c] == 0);
	for (size_t b = 0; b < CONNLIMIT_BUCKETS; b++)
		CHECK(table.bucket[b] == NULL);
}

int main(void)
{
	RUN(test_basic);
	RUN(test_many);
	return t_main_end();
}
