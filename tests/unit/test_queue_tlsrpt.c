/*
 * tests/unit/test_queue_tlsrpt.c -- the TLS report records (queue/tlsrec.c):
 * the record at every truncation, a byte more and bytes changed, the key,
 * then real LMDB in a fresh directory: adds merged per (day, domain), the
 * day's list in domain order, the oldest unsent day (next) and its mark,
 * old days removed by a later add, a restart, and a corrupt record
 * written behind moat's back by mdb_load (lmdb-utils).
 */
#include "tests/unit/t.h"

#include <stdlib.h>
#include <unistd.h>

#include "queue/queue.h"
#include "queue/tlsrec.h"

#define MB  (1024u * 1024u)
#define DAY 86400
#define T0  1700006400          /* 2023-11-15 00:00 UTC: a day's start */

static char base[] = "/tmp/moat-tlsrpt-XXXXXX";

/* A report of domain on t's day: ok successes and one failure kind, n
 * times, under an MTA-STS policy. */
static void report(struct tlsrpt_report *r, const char *domain, int64_t t, unsigned ok,
                   unsigned n)
{
	struct tlsrpt_policy_in pol = { TLSRPT_POLICY_STS, "version: STSv1\nmode: enforce",
	                                "mx.example.com" };
	struct tlsrpt_failure_in f = { TLSRPT_CERTIFICATE_HOST_MISMATCH, "", "192.0.2.1",
	                               "mx.example.com", "", "BR_ERR_X509_BAD_SERVER_NAME" };

	CHECK(tlsrpt_init(r, domain, t) == 0);
	for (unsigned i = 0; i < ok; i++)
		CHECK(tlsrpt_add(r, &pol, NULL, t) == 0);
	for (unsigned i = 0; i < n; i++)
		CHECK(tlsrpt_add(r, &pol, &f, t) == 0);
}

static void test_record(void)
{
	static struct tlsrpt_report r, d;
	static unsigned char buf[TLSREC_MAX], t[TLSREC_MAX + 1], u[TLSREC_MAX];
	unsigned flags = 99;
	size_t n;

	report(&r, "Example.COM", T0 + 5, 3, 2);
	n = tlsrec_encode(&r, 0, buf, sizeof buf);
	CHECK(n > 0 && buf[0] == TLSREC_VERSION);
	CHECK(tlsrec_decode(buf, n, &d, &flags) == QUEUE_OK && flags == 0);
	CHECK(strcmp(d.domain, "example.com") == 0 && d.day == T0 && d.npolicies == 1);
	CHECK(d.policies[0].successes == 3 && d.policies[0].failures == 2 &&
	      d.policies[0].ndetails == 1 && d.policies[0].details[0].count == 2);
	CHECK(tlsrec_encode(&d, 0, u, sizeof u) == n && memcmp(u, buf, n) == 0);
	CHECK(tlsrec_encode(&r, TLSREC_SENT, u, sizeof u) == n && u[1] == TLSREC_SENT);
	CHECK(tlsrec_encode(&r, 2, u, sizeof u) == 0);          /* an unknown flag */
	CHECK(tlsrec_encode(&r, 0, u, n - 1) == 0);             /* no room */
	/* Every truncation and a byte more are corrupt. */
	for (size_t k = 0; k < n; k++) {
		unsigned char *h = malloc(k ? k : 1);

		memcpy(h, buf, k);
		CHECKF(tlsrec_decode(h, k, &d, NULL) == QUEUE_ECORRUPT, "k=%zu", k);
		free(h);
	}
	memcpy(t, buf, n);
	t[n] = 0;
	CHECK(tlsrec_decode(t, n + 1, &d, NULL) == QUEUE_ECORRUPT);
	/* A changed byte is corrupt, or a record that encodes back the same. */
	for (size_t k = 0; k < n; k++) {
		static const unsigned char vals[] = { 0x00, 0xff, 0x01, 0x02, 0x7f, 'A', '\n', 0x80 };

		for (size_t v = 0; v < sizeof vals; v++) {
			memcpy(t, buf, n);
			t[k] = vals[v];
			if (tlsrec_decode(t, n, &d, &flags) == QUEUE_OK)
				CHECKF(tlsrec_encode(&d, flags, u, sizeof u) == n && memcmp(u, t, n) == 0,
				       "k=%zu v=%zu", k, v);
		}
	}
	/* A version of its own. */
	memcpy(t, buf, n);
	t[0] = TLSREC_VERSION + 1;
	CHECK(tlsrec_decode(t, n, &d, NULL) == QUEUE_ECORRUPT);
}

static void test_key(void)
{
	unsigned char a[TLSREC_KEY_MAX], b[TLSREC_KEY_MAX];
	size_t na = tlsrec_key(T0, "Example.com.", a), nb = tlsrec_key(T0 + DAY, "a.example", b);

	CHECK(na == 8 + 11 && memcmp(a + 8, "example.com", 11) == 0);
	CHECK(nb == 8 + 9);
	CHECK(memcmp(a, b, 8) < 0);                           /* keys sort by day */
	CHECK(tlsrec_key(T0, "bad domain", a) == 0);
	CHECK(tlsrec_key(T0, "", a) == 0);
}

static struct queue *open_q(const char *dir, unsigned flags)
{
	struct queue_options opt = { 64 * MB, flags };
	char err[512];
	struct queue *q = queue_open(dir, &opt, err, sizeof err);

	if (q == NULL)
		fprintf(stderr, "queue_open: %s\n", err);
	return q;
}

struct seen {
	char     domains[8][DNS_NAME_MAX + 1];
	unsigned flags[8];
	size_t   n;
};

static int collect(void *arg, const struct tlsrpt_report *r, unsigned flags)
{
	struct seen *s = arg;

	if (s->n < 8) {
		snprintf(s->domains[s->n], sizeof s->domains[0], "%s", r->domain);
		s->flags[s->n++] = flags;
	}
	return 0;
}

/* Adds merge per (day, domain); list, next and mark. */
static void lmdb_days(struct queue *q)
{
	static struct tlsrpt_report r, d;
	struct seen s;
	unsigned flags = 99;

	report(&r, "b.example", T0 + 10, 1, 1);
	CHECK(queue_tlsrpt_add(q, &r, T0 + 10) == QUEUE_OK);
	CHECK(queue_tlsrpt_add(q, &r, T0 + 20) == QUEUE_OK);      /* merged */
	report(&r, "a.example", T0 + 30, 4, 0);
	CHECK(queue_tlsrpt_add(q, &r, T0 + 30) == QUEUE_OK);
	report(&r, "a.example", T0 + DAY + 1, 0, 3);                /* the next day */
	CHECK(queue_tlsrpt_add(q, &r, T0 + DAY + 1) == QUEUE_OK);
	CHECK(queue_tlsrpt_get(q, T0, "b.example", &d, &flags) == QUEUE_OK && flags == 0);
	CHECK(d.policies[0].successes == 2 && d.policies[0].failures == 2 &&
	      d.policies[0].details[0].count == 2);
	CHECK(queue_tlsrpt_get(q, T0, "c.example", &d, NULL) == QUEUE_ENOTFOUND);
	memset(&s, 0, sizeof s);
	CHECK(queue_tlsrpt_list(q, T0, collect, &s) == QUEUE_OK && s.n == 2);
	CHECK(strcmp(s.domains[0], "a.example") == 0 && strcmp(s.domains[1], "b.example") == 0);
	/* next: the oldest unsent record of a day before `before`. */
	CHECK(queue_tlsrpt_next(q, T0, &d) == QUEUE_ENOTFOUND);
	CHECK(queue_tlsrpt_next(q, T0 + DAY, &d) == QUEUE_OK && strcmp(d.domain, "a.example") == 0);
	CHECK(queue_tlsrpt_mark(q, T0, "a.example") == QUEUE_OK);
	CHECK(queue_tlsrpt_next(q, T0 + DAY, &d) == QUEUE_OK && strcmp(d.domain, "b.example") == 0);
	CHECK(queue_tlsrpt_mark(q, T0, "b.example") == QUEUE_OK);
	CHECK(queue_tlsrpt_next(q, T0 + DAY, &d) == QUEUE_ENOTFOUND);
	CHECK(queue_tlsrpt_next(q, T0 + 2 * DAY, &d) == QUEUE_OK && d.day == T0 + DAY);
	CHECK(queue_tlsrpt_mark(q, T0, "none.example") == QUEUE_ENOTFOUND);
	CHECK(queue_tlsrpt_get(q, T0, "a.example", &d, &flags) == QUEUE_OK &&
	      flags == TLSREC_SENT && d.policies[0].successes == 4);
	/* A result added to a day already sent is kept (and the mark stays). */
	report(&r, "a.example", T0 + 40, 1, 0);
	CHECK(queue_tlsrpt_add(q, &r, T0 + 40) == QUEUE_OK);
	CHECK(queue_tlsrpt_get(q, T0, "a.example", &d, &flags) == QUEUE_OK &&
	      d.policies[0].successes == 5);
	/* Refused: a delta out of range. */
	r.npolicies = TLSRPT_POLICIES_MAX + 1;
	CHECK(queue_tlsrpt_add(q, &r, T0 + 40) == QUEUE_EINVAL);
}

static void test_lmdb(void)
{
	static struct tlsrpt_report r, d;
	char dir[256], cmd[512];
	struct queue *q;

	snprintf(dir, sizeof dir, "%s/q1", base);
	CHECK((q = open_q(dir, 0)) != NULL);
	if (q == NULL)
		return;
	CHECK(queue_tlsrpt_next(q, T0, &d) == QUEUE_ENOTFOUND);   /* never written */
	lmdb_days(q);
	queue_close(q);
	/* A restart keeps them; an add QUEUE_TLSRPT_DAYS later drops them. */
	CHECK((q = open_q(dir, 0)) != NULL);
	if (q == NULL)
		return;
	CHECK(queue_tlsrpt_get(q, T0, "b.example", &d, NULL) == QUEUE_OK);
	report(&r, "z.example", T0 + (QUEUE_TLSRPT_DAYS + 1) * (int64_t)DAY, 1, 0);
	CHECK(queue_tlsrpt_add(q, &r, T0 + (QUEUE_TLSRPT_DAYS + 1) * (int64_t)DAY) == QUEUE_OK);
	CHECK(queue_tlsrpt_get(q, T0, "b.example", &d, NULL) == QUEUE_ENOTFOUND);
	queue_close(q);
	/* A corrupt record of a day (key: the day big-endian, the domain). */
	snprintf(cmd, sizeof cmd, "printf '\\\\00\\\\00\\\\00\\\\00\\\\65\\\\54\\\\0a\\\\00c.example\\n"
	         "\\\\01\\\\00\\n' | mdb_load -T -s tlsrpt '%s'", dir);
	CHECK(system(cmd) == 0);
	CHECK((q = open_q(dir, 0)) != NULL);
	if (q == NULL)
		return;
	CHECK(queue_tlsrpt_get(q, T0, "c.example", &d, NULL) == QUEUE_ECORRUPT);
	CHECK(queue_tlsrpt_next(q, T0 + DAY, &d) == QUEUE_ECORRUPT);
	queue_close(q);
}

int main(void)
{
	char cmd[300];

	if (mkdtemp(base) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_record);
	RUN(test_key);
	RUN(test_lmdb);
	if (t_total_failed == 0) {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", base);
	}
	return t_main_end();
}
