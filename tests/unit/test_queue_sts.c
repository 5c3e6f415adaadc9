/*
 * tests/unit/test_queue_sts.c -- the MTA-STS policy cache (queue/sts.c):
 * the record at every truncation and with bytes changed, then real LMDB
 * in a fresh directory: put, get, replace, delete, expiry, a restart, a
 * read-only reader in another process, a queue that never cached a
 * policy, a corrupt record written by mdb_load (lmdb-utils), and the
 * queue's own mail functions going on beside the cache.
 *
 * LMDB forbids opening one environment twice in one process, so the
 * second opener (the reader) runs in a forked child.
 */
#include "tests/unit/t.h"

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "queue/queue.h"
#include "queue/sts.h"

#define MB (1024u * 1024u)
#define T0 1700000000

static char base[] = "/tmp/moat-sts-XXXXXX";

static struct mtasts_cached pol(const char *id, int64_t at, uint32_t age, unsigned mode,
                                const char *const *mx, size_t n)
{
	struct mtasts_cached c;

	memset(&c, 0, sizeof c);
	snprintf(c.id, sizeof c.id, "%s", id);
	c.fetched_at = at;
	c.policy.max_age = age;
	c.policy.mode = (uint8_t)mode;
	for (size_t i = 0; i < n; i++)
		snprintf(c.policy.mx[i], sizeof c.policy.mx[i], "%s", mx[i]);
	c.policy.nmx = n;
	return c;
}

static const char *const mx2[] = { "mail.example.com", "*.example.net" };

static void test_record(void)
{
	static struct mtasts_cached c, d;
	static unsigned char buf[STS_RECORD_MAX], t[STS_RECORD_MAX];
	size_t n;

	c = pol("20240101T0000Z", T0, 604800, MTASTS_MODE_ENFORCE, mx2, 2);
	n = sts_encode(&c, buf, sizeof buf);
	CHECK(n == 1 + 8 + 4 + 1 + 4 + 2 + 14 + 2 + 2 + 16 + 2 + 13);
	CHECK(buf[0] == STS_RECORD_VERSION);
	CHECK(sts_decode(buf, n, &d) == QUEUE_OK && memcmp(&c, &d, sizeof c) == 0);
	CHECK(sts_encode(&c, buf, STS_RECORD_MAX - 1) == 0);
	/* Every truncation and a byte more are corrupt. */
	for (size_t k = 0; k < n; k++) {
		unsigned char *h = malloc(k ? k : 1);
		memcpy(h, buf, k);
		CHECK(sts_decode(h, k, &d) == QUEUE_ECORRUPT && d.id[0] == '\0');
		free(h);
	}
	memcpy(t, buf, n);
	t[n] = 0;
	CHECK(sts_decode(t, n + 1, &d) == QUEUE_ECORRUPT);
	/* A changed byte is corrupt or a record that encodes back the same. */
	for (size_t k = 0; k < n; k++) {
		static const unsigned char vals[] = { 0x00, 0xff, 0x01, 0x02, 0x20, 'A', '*', '.' };
		for (size_t v = 0; v < sizeof vals; v++) {
			memcpy(t, buf, n);
			t[k] = vals[v];
			if (sts_decode(t, n, &d) == QUEUE_OK) {
				unsigned char u[STS_RECORD_MAX];
				CHECKF(sts_encode(&d, u, sizeof u) == n && memcmp(u, t, n) == 0, "k=%zu v=%zu enc=%zu", k, v, sts_encode(&d, u, sizeof u));
			}
		}
	}
	/* Specific refusals: version, mode, max_age, ids, patterns. */
	memcpy(t, buf, n);
	t[0] = 2;
	CHECK(sts_decode(t, n, &d) == QUEUE_ECORRUPT);
	memcpy(t, buf, n);
	t[13] = 3;
	CHECK(sts_decode(t, n, &d) == QUEUE_ECORRUPT);
	d = c;
	d.policy.max_age = MTASTS_MAX_AGE_MAX + 1;
	CHECK(!sts_valid(&d) && sts_encode(&d, t, sizeof t) == 0);
	d = c;
	d.id[0] = '\0';
	CHECK(!sts_valid(&d));
	d = c;
	memcpy(d.id, "a-b", 4);
	CHECK(!sts_valid(&d));
	d = c;
	memcpy(d.policy.mx[0], "Mail.example.com", 17);
	CHECK(!sts_valid(&d));
	d = c;
	memcpy(d.policy.mx[0], "mail.example.com.", 18);
	CHECK(!sts_valid(&d));
	d = c;
	d.policy.nmx = 0;
	CHECK(!sts_valid(&d));
	d.policy.mode = MTASTS_MODE_NONE;
	CHECK(sts_valid(&d));
	d = c;
	d.policy.mx_dropped = 1;
	CHECK(!sts_valid(&d));
	/* A full policy: 32 patterns of the longest names, and dropped ones. */
	memset(&d, 0, sizeof d);
	memcpy(d.id, "12345678901234567890123456789012", 33);
	d.policy.mode = MTASTS_MODE_TESTING;
	d.policy.max_age = MTASTS_MAX_AGE_MAX;
	d.fetched_at = -1;
	for (size_t i = 0; i < MTASTS_MX_MAX; i++) {
		d.policy.mx[i][0] = '*';
		d.policy.mx[i][1] = '.';
		for (size_t j = 0; j < DNS_NAME_MAX; j++)
			d.policy.mx[i][2 + j] = j % 2 ? '.' : (char)('a' + i % 26);
	}
	d.policy.nmx = MTASTS_MX_MAX;
	d.policy.mx_dropped = 7;
	n = sts_encode(&d, buf, sizeof buf);
	CHECK(n == STS_RECORD_MAX);
	CHECK(sts_decode(buf, n, &c) == QUEUE_OK && memcmp(&c, &d, sizeof c) == 0);
}

static void test_key(void)
{
	char k[DNS_NAME_MAX + 1];

	CHECK(sts_key("Example.COM.", k) == 11 && strcmp(k, "example.com") == 0);
	CHECK(sts_key("", k) == 0);
	CHECK(sts_key("a..b", k) == 0);
	CHECK(sts_key("a.b..", k) == 0);
	CHECK(sts_key("exa mple.com", k) == 0);
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

/* A child process opens dir read-only and checks domain's policy id
 * (NULL: none).  Returns 1 if it saw what was expected. */
static int reader_sees(const char *dir, const char *domain, const char *id)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		struct mtasts_cached c;
		struct queue *q = open_q(dir, QUEUE_RDONLY);
		int rc, ok;
		if (q == NULL)
			_exit(2);
		rc = queue_sts_get(q, domain, &c);
		ok = id ? rc == QUEUE_OK && strcmp(c.id, id) == 0 : rc == QUEUE_ENOTFOUND;
		/* A write from a reader is refused. */
		ok = ok && queue_sts_put(q, domain, &c) != QUEUE_OK;
		queue_close(q);
		_exit(ok ? 0 : 1);
	}
	return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static int count_messages(void *arg, const struct queue_envelope *env)
{
	(void)env;
	(*(int *)arg)++;
	return 0;
}

static void test_lmdb(void)
{
	static struct mtasts_cached c, d;
	char dir[256];
	struct queue *q;
	size_t rm = 99, bad = 99;

	snprintf(dir, sizeof dir, "%s/q1", base);
	CHECK((q = open_q(dir, 0)) != NULL);
	if (q == NULL)
		return;
	/* A queue that never cached a policy, as seen by a reader. */
	CHECK(reader_sees(dir, "example.com", NULL));
	CHECK(queue_sts_get(q, "example.com", &c) == QUEUE_ENOTFOUND);
	c = pol("abc", T0, 604800, MTASTS_MODE_ENFORCE, mx2, 2);
	CHECK(queue_sts_put(q, "Example.COM.", &c) == QUEUE_OK);
	CHECK(queue_sts_get(q, "example.com", &d) == QUEUE_OK && memcmp(&c, &d, sizeof c) == 0);
	CHECK(queue_sts_get(q, "EXAMPLE.com", &d) == QUEUE_OK && strcmp(d.id, "abc") == 0);
	CHECK(queue_sts_get(q, "example.org", &d) == QUEUE_ENOTFOUND && d.id[0] == '\0');
	CHECK(reader_sees(dir, "example.com", "abc"));
	/* Replace. */
	c = pol("def", T0 + 100, 86400, MTASTS_MODE_TESTING, mx2, 1);
	CHECK(queue_sts_put(q, "example.com", &c) == QUEUE_OK);
	CHECK(queue_sts_get(q, "example.com", &d) == QUEUE_OK && memcmp(&c, &d, sizeof c) == 0);
	/* Refused: a bad domain, a policy no parse gives. */
	CHECK(queue_sts_put(q, "bad domain", &c) == QUEUE_EINVAL);
	CHECK(queue_sts_get(q, "", &d) == QUEUE_EINVAL);
	d = c;
	d.policy.mode = 7;
	CHECK(queue_sts_put(q, "example.org", &d) == QUEUE_EINVAL);
	CHECK(queue_sts_get(q, "example.org", &d) == QUEUE_ENOTFOUND);
	/* The mail functions go on beside the cache. */
	{
		int n = 0;
		CHECK(queue_list(q, count_messages, &n) == QUEUE_OK && n == 0);
	}
	/* A restart keeps it. */
	queue_close(q);
	CHECK((q = open_q(dir, 0)) != NULL);
	if (q == NULL)
		return;
	CHECK(queue_sts_get(q, "example.com", &d) == QUEUE_OK && memcmp(&c, &d, sizeof c) == 0);
	/* Delete. */
	CHECK(queue_sts_delete(q, "example.com") == QUEUE_OK);
	CHECK(queue_sts_delete(q, "example.com") == QUEUE_ENOTFOUND);
	CHECK(queue_sts_get(q, "example.com", &d) == QUEUE_ENOTFOUND);
	/* Expiry: five domains, the 2nd, 3rd and 5th stale at T0 + 1000
	 * (neighbours, so deletions follow each other in the cursor walk). */
	{
		static const struct { const char *dom; int64_t at; uint32_t age; } e[] = {
			{ "a.example", T0, 5000 }, { "b.example", T0, 1000 }, { "c.example", T0 - 10, 500 },
			{ "d.example", T0 + 900, 101 }, { "e.example", T0, 0 },
		};
		for (size_t i = 0; i < 5; i++) {
			c = pol("x1", e[i].at, e[i].age, MTASTS_MODE_ENFORCE, mx2, 2);
			CHECK(queue_sts_put(q, e[i].dom, &c) == QUEUE_OK);
		}
		CHECK(queue_sts_expire(q, T0 + 1000, &rm, &bad) == QUEUE_OK && rm == 3 && bad == 0);
		CHECK(queue_sts_get(q, "a.example", &d) == QUEUE_OK);
		CHECK(queue_sts_get(q, "b.example", &d) == QUEUE_ENOTFOUND);
		CHECK(queue_sts_get(q, "c.example", &d) == QUEUE_ENOTFOUND);
		CHECK(queue_sts_get(q, "d.example", &d) == QUEUE_OK);
		CHECK(queue_sts_get(q, "e.example", &d) == QUEUE_ENOTFOUND);
		CHECK(queue_sts_expire(q, T0 + 1000, NULL, NULL) == QUEUE_OK);
		CHECK(queue_sts_expire(q, T0 + 1001, &rm, &bad) == QUEUE_OK && rm == 1 && bad == 0);
	}
	queue_close(q);

	/* A corrupt record, written behind moat's back by mdb_load: get
	 * says so, expire removes it and counts it. */
	{
		char cmd[512];
		snprintf(cmd, sizeof cmd, "printf 'z.example\\n\\\\02\\\\00\\n' | mdb_load -T -s sts '%s'",
		         dir);
		CHECK(system(cmd) == 0);
	}
	CHECK((q = open_q(dir, 0)) != NULL);
	if (q == NULL)
		return;
	CHECK(queue_sts_get(q, "z.example", &d) == QUEUE_ECORRUPT);
	CHECK(queue_sts_get(q, "a.example", &d) == QUEUE_OK);
	CHECK(queue_sts_expire(q, T0 + 1000, &rm, &bad) == QUEUE_OK && rm == 0 && bad == 1);
	CHECK(queue_sts_get(q, "z.example", &d) == QUEUE_ENOTFOUND);
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
