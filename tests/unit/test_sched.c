/*
 * tests/unit/test_sched.c -- the queue's delivery side against real LMDB:
 * the schedule (queue_due), recording outcomes (queue_update) with a
 * bounce and the removal in the same transaction, reading bodies by
 * offset, hold/release/retry/delete, and the upgrade of a version 2 queue
 * (made with lmdb-utils' mdb_dump/mdb_load).  The usage counters must
 * stay the sums over the queue through all of it.
 */
#include "tests/unit/t.h"

#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "queue/queue.h"

#define MB (1024u * 1024u)

static char base[200];
static int ndir;

static struct queue *open_q(const char *dir, unsigned flags)
{
	struct queue_options opt = { 16 * MB, flags };
	char err[512];
	struct queue *q = queue_open(dir, &opt, err, sizeof err);
	if (q == NULL)
		fprintf(stderr, "queue_open: %s\n", err);
	return q;
}

static struct queue *fresh(char dir[256])
{
	snprintf(dir, 256, "%s/q%d", base, ndir++);
	struct queue *q = open_q(dir, 0);
	CHECK(q != NULL);
	return q;
}

static unsigned char byte_at(uint64_t i)
{
	return (unsigned char)('a' + (i * 7 + i / 65536) % 26);
}

/* Queue one message of size bytes with n recipients; returns its ID. */
static queue_id put(struct queue *q, size_t n, uint64_t size, const char *sender)
{
	struct queue_rcpt r[8];
	struct queue_envelope env, *ep = &env;
	struct queue_draft *d;
	queue_id id = 0;
	int res = -99;
	unsigned char buf[4096];

	memset(&env, 0, sizeof env);
	memset(r, 0, sizeof r);
	snprintf(env.sender, sizeof env.sender, "%s", sender);
	for (size_t i = 0; i < n; i++)
		snprintf(r[i].addr, sizeof r[i].addr, "r%zu@example.org", i);
	env.rcpts = r;
	env.nrcpts = env.rcpt_cap = n;
	d = queue_draft_begin(q, &id);
	CHECK(d != NULL);
	if (d == NULL)
		return 0;
	for (uint64_t off = 0; off < size; ) {
		size_t k = size - off < sizeof buf ? (size_t)(size - off) : sizeof buf;
		for (size_t i = 0; i < k; i++)
			buf[i] = byte_at(off + i);
		CHECK(queue_draft_write(d, buf, k) == QUEUE_OK);
		off += k;
	}
	CHECK(queue_commit(q, &d, &ep, &res, 1) == 1 && res == QUEUE_OK);
	return id;
}

static size_t due(struct queue *q, int64_t now, queue_id *ids, size_t cap, int64_t *next)
{
	size_t n = 99;
	CHECK(queue_due(q, now, NULL, NULL, ids, cap, &n, next) == QUEUE_OK);
	return n;
}

/* The usage counters equal what a walk of the queue counts. */
static int usage_matches(struct queue *q)
{
	struct queue_usage u;
	struct queue_stats st;

	return queue_usage(q, NULL, &u) == QUEUE_OK && queue_stats(q, &st) == QUEUE_OK &&
	       u.messages == st.messages && u.bytes == st.bytes;
}

static int get(struct queue *q, queue_id id, struct queue_envelope *env, struct queue_rcpt *r)
{
	memset(env, 0, sizeof *env);
	env->rcpts = r;
	env->rcpt_cap = 8;
	return queue_get(q, id, env);
}

static void test_due_order(void)
{
	char dir[256];
	struct queue *q = fresh(dir);
	queue_id a, b, c, ids[8];
	int64_t next = 0;

	if (q == NULL)
		return;
	CHECK(due(q, 1000, ids, 8, &next) == 0 && next == INT64_MAX);
	a = put(q, 1, 10, "s@x");
	b = put(q, 2, 10, "s@x");
	c = put(q, 1, 10, "s@x");
	/* New mail is due at once, in ID order. */
	CHECK(due(q, 1000, ids, 8, &next) == 3 && next == INT64_MAX);
	CHECK(ids[0] == a && ids[1] == b && ids[2] == c);
	CHECK(due(q, 1000, ids, 2, &next) == 2 && next == 1000);
	/* Defer a to 2000: due then, not before. */
	{
		struct queue_result r = { 0, QUEUE_RCPT_PENDING, 2000, "451 4.3.0 later" };
		int res = 99, gone = 9;
		CHECK(queue_update(q, a, &r, 1, 0, NULL, NULL, &res, &gone) == 1);
		CHECK(res == QUEUE_OK && gone == 0);
	}
	CHECK(due(q, 1000, ids, 8, &next) == 2 && ids[0] == b && ids[1] == c && next == 2000);
	CHECK(due(q, 2000, ids, 8, &next) == 3 && ids[2] == a);
	/* b: one recipient deferred, one not tried: due now still. */
	{
		struct queue_result r = { 1, QUEUE_RCPT_PENDING, 5000, "x" };
		int res, gone;
		queue_update(q, b, &r, 1, 0, NULL, NULL, &res, &gone);
		CHECK(res == QUEUE_OK);
	}
	CHECK(due(q, 1000, ids, 8, &next) == 2 && ids[0] == b);
	queue_close(q);
}

static int skip_first(void *arg, queue_id id)
{
	return id == *(queue_id *)arg;
}

static void test_skip_and_reader(void)
{
	char dir[256];
	struct queue *q = fresh(dir);
	queue_id a, b, ids[4];
	size_t n;
	int64_t next;

	if (q == NULL)
		return;
	a = put(q, 1, 1, "s@x");
	b = put(q, 1, 1, "s@x");
	CHECK(queue_due(q, 10, skip_first, &a, ids, 4, &n, &next) == QUEUE_OK && n == 1 &&
	      ids[0] == b);
	/* A reader in another process sees the schedule; it cannot change it. */
	queue_close(q);
	pid_t pid = fork();
	if (pid == 0) {
		struct queue *r = open_q(dir, QUEUE_RDONLY);
		size_t cnt;
		int ok = r != NULL && queue_due(r, 10, NULL, NULL, ids, 4, &n, &next) == QUEUE_OK &&
		         n == 2 && queue_hold(r, a, 1) == QUEUE_EINVAL &&
		         queue_retry(r, 0, &cnt) == QUEUE_EINVAL && queue_delete(r, a) == QUEUE_EINVAL;
		_exit(ok ? 0 : 1);
	}
	int st;
	CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_update_and_bounce(void)
{
	char dir[256];
	struct queue *q = fresh(dir);
	struct queue_envelope env, dsn_env;
	struct queue_rcpt r[8], dr[1];
	struct queue_stats st;
	queue_id a, ids[4], dsn_id = 0;
	int64_t next;
	int res, gone;

	if (q == NULL)
		return;
	a = put(q, 3, 200000, "alice@example.com");
	/* r0 delivered, r1 bounced (with a bounce to alice), r2 deferred. */
	{
		struct queue_result rs[3] = {
			{ 0, QUEUE_RCPT_DELIVERED, 0, "250 ok" },
			{ 1, QUEUE_RCPT_BOUNCED, 0, "550 5.1.1 no" },
			{ 2, QUEUE_RCPT_PENDING, 3000, "451 4.7.1 greylisted" },
		};
		struct queue_draft *d = queue_draft_begin(q, &dsn_id);
		CHECK(d != NULL && queue_draft_write(d, "Received: x\r\n\r\nbounce\r\n", 24) == QUEUE_OK);
		memset(&dsn_env, 0, sizeof dsn_env);
		memset(dr, 0, sizeof dr);
		snprintf(dr[0].addr, sizeof dr[0].addr, "alice@example.com");
		dsn_env.rcpts = dr;
		dsn_env.nrcpts = dsn_env.rcpt_cap = 1;
		CHECK(queue_update(q, a, rs, 3, QUEUE_ENV_WARNED, d, &dsn_env, &res, &gone) == 3);
		CHECK(res == QUEUE_OK && gone == 0 && dsn_env.id == dsn_id && dsn_env.size == 24);
	}
	CHECK(get(q, a, &env, r) == QUEUE_OK);
	CHECK(env.flags & QUEUE_ENV_WARNED);
	CHECK(r[0].state == QUEUE_RCPT_DELIVERED && r[0].attempts == 1 && r[0].next_try == 0);
	CHECK(r[1].state == QUEUE_RCPT_BOUNCED && strcmp(r[1].last_error, "550 5.1.1 no") == 0);
	CHECK(r[2].state == QUEUE_RCPT_PENDING && r[2].next_try == 3000 && r[2].attempts == 1);
	/* The bounce is queued and due now; the original at 3000. */
	CHECK(due(q, 100, ids, 4, &next) == 1 && ids[0] == dsn_id && next == 3000);
	CHECK(get(q, dsn_id, &env, r) == QUEUE_OK && env.nrcpts == 1 && env.sender[0] == 0);
	/* A result for a recipient already final changes nothing. */
	{
		struct queue_result rs = { 0, QUEUE_RCPT_BOUNCED, 0, "late" };
		CHECK(queue_update(q, a, &rs, 1, 0, NULL, NULL, &res, &gone) == 0 && res == QUEUE_OK);
		CHECK(get(q, a, &env, r) == QUEUE_OK && r[0].state == QUEUE_RCPT_DELIVERED);
	}
	/* The last one delivered: the message is gone, body chunks too. */
	{
		struct queue_result rs = { 2, QUEUE_RCPT_DELIVERED, 0, "" };
		CHECK(queue_update(q, a, &rs, 1, 0, NULL, NULL, &res, &gone) == 1);
		CHECK(res == QUEUE_OK && gone == 1);
	}
	CHECK(get(q, a, &env, r) == QUEUE_ENOTFOUND);
	{
		unsigned char b[16];
		size_t got = 9;
		CHECK(queue_body_read(q, a, 0, b, sizeof b, &got) == QUEUE_ENOTFOUND && got == 0);
		CHECK(queue_body_read(q, a, 70000, b, sizeof b, &got) == QUEUE_ENOTFOUND);
	}
	CHECK(queue_stats(q, &st) == QUEUE_OK && st.messages == 1 && st.bytes == 24);
	CHECK(usage_matches(q));
	CHECK(due(q, 1u << 30, ids, 4, &next) == 1 && ids[0] == dsn_id);
	/* An update for a message that is gone: not found, the bounce dropped. */
	{
		struct queue_result rs = { 0, QUEUE_RCPT_BOUNCED, 0, "x" };
		queue_id id2;
		struct queue_draft *d = queue_draft_begin(q, &id2);
		CHECK(queue_update(q, a, &rs, 1, 0, d, &dsn_env, &res, &gone) == 0);
		CHECK(res == QUEUE_ENOTFOUND && gone == 0);
		CHECK(get(q, id2, &env, r) == QUEUE_ENOTFOUND);
	}
	queue_close(q);
}

static void test_body_read(void)
{
	char dir[256];
	struct queue *q = fresh(dir);
	static unsigned char buf[70000];
	uint64_t sizes[] = { 0, 1, 65535, 65536, 65537, 150001 };

	if (q == NULL)
		return;
	for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
		queue_id id = put(q, 1, sizes[s], "s@x");
		uint64_t off = 0;
		int bad = 0;
		size_t got, step = 1000 + s * 777;
		for (;;) {
			CHECK(queue_body_read(q, id, off, buf, step, &got) == QUEUE_OK);
			if (got == 0)
				break;
			CHECK(got <= step && (off % 65536) + got <= 65536);
			for (size_t i = 0; i < got; i++)
				bad |= buf[i] != byte_at(off + i);
			off += got;
			if (off > sizes[s])
				break;
		}
		CHECKF(off == sizes[s] && !bad, "size %llu: read %llu", (unsigned long long)sizes[s],
		       (unsigned long long)off);
	}
	queue_close(q);
}

static void test_admin(void)
{
	char dir[256];
	struct queue *q = fresh(dir);
	struct queue_envelope env;
	struct queue_rcpt r[8];
	queue_id a, b, ids[4];
	int64_t next;
	size_t count;
	int res, gone;

	if (q == NULL)
		return;
	a = put(q, 2, 10, "s@x");
	b = put(q, 1, 70000, "s@x");
	CHECK(queue_hold(q, a, 1) == QUEUE_OK);
	CHECK(due(q, 100, ids, 4, &next) == 1 && ids[0] == b);
	CHECK(get(q, a, &env, r) == QUEUE_OK && (env.flags & QUEUE_ENV_HOLD));
	/* A held message stays held through retry, is not counted. */
	CHECK(queue_retry(q, a, &count) == QUEUE_OK && count == 0);
	CHECK(due(q, 100, ids, 4, &next) == 1);
	CHECK(queue_hold(q, a, 0) == QUEUE_OK);
	CHECK(due(q, 100, ids, 4, &next) == 2);
	/* Defer both far; retry one, then flush all. */
	{
		struct queue_result rs[2] = { { 0, QUEUE_RCPT_PENDING, 9000, "x" },
		                              { 1, QUEUE_RCPT_PENDING, 9500, "y" } };
		queue_update(q, a, rs, 2, 0, NULL, NULL, &res, &gone);
		queue_update(q, b, rs, 1, 0, NULL, NULL, &res, &gone);
	}
	CHECK(due(q, 100, ids, 4, &next) == 0 && next == 9000);
	/* A retry asked while held changes nothing: released, it waits on. */
	CHECK(queue_hold(q, a, 1) == QUEUE_OK);
	CHECK(queue_retry(q, a, &count) == QUEUE_OK && count == 0);
	CHECK(queue_hold(q, a, 0) == QUEUE_OK);
	CHECK(due(q, 100, ids, 4, &next) == 0 && next == 9000);
	CHECK(queue_retry(q, b, &count) == QUEUE_OK && count == 1);
	CHECK(due(q, 100, ids, 4, &next) == 1 && ids[0] == b && next == 9000);
	CHECK(queue_retry(q, 0, &count) == QUEUE_OK && count == 1);
	CHECK(due(q, 100, ids, 4, &next) == 2);
	CHECK(get(q, a, &env, r) == QUEUE_OK && r[0].next_try == 0 && r[1].next_try == 0);
	CHECK(r[0].attempts == 1 && strcmp(r[0].last_error, "x") == 0);
	/* Delete: gone with its body; a second time not found. */
	CHECK(queue_delete(q, b) == QUEUE_OK);
	CHECK(queue_delete(q, b) == QUEUE_ENOTFOUND);
	CHECK(queue_hold(q, b, 1) == QUEUE_ENOTFOUND);
	CHECK(queue_retry(q, b, &count) == QUEUE_ENOTFOUND);
	CHECK(due(q, 100, ids, 4, &next) == 1 && ids[0] == a);
	CHECK(usage_matches(q));
	{
		unsigned char x[8];
		size_t got;
		CHECK(queue_body_read(q, b, 0, x, 8, &got) == QUEUE_ENOTFOUND);
	}
	queue_close(q);
}

/* A version 2 queue (format 3 minus "sched", meta/version 2): a reader
 * refuses it, the writer rebuilds the schedule and writes version 3. */
static void test_upgrade(void)
{
	char dir[256], v1[300], cmd[1200];
	struct queue *q = fresh(dir);
	queue_id a, b, ids[4];
	int64_t next;

	if (q == NULL)
		return;
	a = put(q, 1, 10, "s@x");
	b = put(q, 1, 10, "s@x");
	{
		struct queue_result rs = { 0, QUEUE_RCPT_PENDING, 7000, "x" };
		int res, gone;
		queue_update(q, a, &rs, 1, 0, NULL, NULL, &res, &gone);
	}
	queue_close(q);
	snprintf(v1, sizeof v1, "%s.v1", dir);
	CHECK(mkdir(v1, 0700) == 0);
	snprintf(cmd, sizeof cmd,
	         "mdb_dump -a '%s' | awk '/^database=sched$/ { skip = 1 } "
	         "/^VERSION=/ { if (hold != \"\") printf \"%%s\", hold; hold = $0 \"\\n\"; skip = 0; next } "
	         "skip || /^db_pagesize=/ { next } { if ($0 == \" 00000003\") $0 = \" 00000002\"; hold = hold $0 \"\\n\" } "
	         "END { if (!skip) printf \"%%s\", hold }' | mdb_load '%s'", dir, v1);
	CHECK(system(cmd) == 0);
	snprintf(cmd, sizeof cmd, "mdb_dump -s meta '%s' | grep -qx ' 00000002' && "
	         "! mdb_dump -s sched '%s' >/dev/null 2>&1", v1, v1);
	CHECK(system(cmd) == 0);
	/* A reader refuses an old queue: the writer upgrades it. */
	pid_t pid = fork();
	if (pid == 0) {
		struct queue_options opt = { 16 * MB, QUEUE_RDONLY };
		char err[512];
		struct queue *r = queue_open(v1, &opt, err, sizeof err);
		_exit(r == NULL && strstr(err, "start moat serve once to upgrade it") ? 0 : 1);
	}
	int st;
	CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	if ((q = open_q(v1, 0)) == NULL) {
		CHECK(0);
		return;
	}
	CHECK(due(q, 100, ids, 4, &next) == 1 && ids[0] == b && next == 7000);
	CHECK(due(q, 7000, ids, 4, &next) == 2);
	CHECK(usage_matches(q));
	queue_close(q);
	snprintf(cmd, sizeof cmd, "mdb_dump -s meta '%s' | grep -qx ' 00000003'", v1);
	CHECK(system(cmd) == 0);
}

static int rm_one(const char *p, const struct stat *s, int flag, struct FTW *f)
{
	(void)s; (void)flag; (void)f;
	return remove(p);
}

int main(void)
{
	const char *b = getenv("BUILD");
	char t[150];

	snprintf(t, sizeof t, "%s/t", b && *b ? b : "build");
	mkdir(b && *b ? b : "build", 0755);
	mkdir(t, 0755);
	snprintf(base, sizeof base, "%s/sched.XXXXXX", t);
	if (mkdtemp(base) == NULL) {
		perror(base);
		return 1;
	}
	RUN(test_due_order);
	RUN(test_skip_and_reader);
	RUN(test_update_and_bounce);
	RUN(test_body_read);
	RUN(test_admin);
	RUN(test_upgrade);
	if (!t_total_failed)
		nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return t_main_end();
}
