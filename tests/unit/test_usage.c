/*
 * tests/unit/test_usage.c -- the queue's usage counters and free space:
 * queue/usage.c (keys, records, arithmetic) and, against real LMDB,
 * that the counters always equal a walk of the queue -- after group
 * commits, a map that fills, a disk that fills inside a commit (a real
 * tmpfs, mounted here: run as root), and a reopen.
 */
#include "tests/unit/t.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue/queue.h"
#include "queue/usage.h"

#define KB (UINT64_C(1) << 10)
#define MB (UINT64_C(1) << 20)

static char base[200];
static int ndir;

/* ---- queue/usage.c, pure ---- */

static void env_for(struct queue_envelope *env, const char *client, const char *user)
{
	memset(env, 0, sizeof *env);
	snprintf(env->client, sizeof env->client, "%s", client);
	snprintf(env->auth_user, sizeof env->auth_user, "%s", user);
}

static int key_is(const char *client, const char *user, const char *want)
{
	struct queue_envelope env;
	char key[USAGE_KEY_MAX];
	size_t n;

	env_for(&env, client, user);
	n = usage_key(&env, key);
	if (n != strlen(want) || memcmp(key, want, n) != 0) {
		fprintf(stderr, "usage_key(%s, %s): got '%.*s'\n", client, user, (int)n, key);
		return 0;
	}
	return 1;
}

static void test_usage_key(void)
{
	struct queue_envelope env;
	char key[USAGE_KEY_MAX];

	CHECK(key_is("192.0.2.7", "", "a:192.0.2.7"));
	/* IPv6 by /64: two hosts of one /64 are one client, the next /64 not */
	CHECK(key_is("2001:db8:1:2:3:4:5:6", "", "a:2001:db8:1:2::"));
	CHECK(key_is("2001:db8:1:2::ffff", "", "a:2001:db8:1:2::"));
	CHECK(key_is("2001:db8:1:3::1", "", "a:2001:db8:1:3::"));
	CHECK(key_is("::1", "", "a:::"));
	/* an authenticated user is charged, wherever it connects from */
	CHECK(key_is("192.0.2.7", "alice", "u:alice"));
	CHECK(key_is("2001:db8::1", "alice", "u:alice"));
	/* text that is not an address is taken as it is */
	CHECK(key_is("unknown", "", "a:unknown"));
	CHECK(key_is("", "", "a:"));
	/* the longest user fits */
	memset(&env, 0, sizeof env);
	memset(env.auth_user, 'u', sizeof env.auth_user - 1);
	CHECK(usage_key(&env, key) == USAGE_KEY_MAX && memcmp(key, "u:uuu", 5) == 0);
	/* strings not terminated within their fields: no key */
	memset(env.auth_user, 'u', sizeof env.auth_user);
	CHECK(usage_key(&env, key) == 0);
	memset(&env, 0, sizeof env);
	memset(env.client, '1', sizeof env.client);
	CHECK(usage_key(&env, key) == 0);
}

static void test_usage_record(void)
{
	struct usage u = { 0, 0 }, v;
	unsigned char rec[USAGE_RECORD];

	CHECK(usage_apply(&u, +1, 100) == QUEUE_OK && u.messages == 1 && u.bytes == 100);
	CHECK(usage_apply(&u, +1, 0) == QUEUE_OK && u.messages == 2 && u.bytes == 100);
	CHECK(usage_apply(&u, -1, 0) == QUEUE_OK && u.messages == 1 && u.bytes == 100);
	/* taking away more than there is: corrupt, and nothing changes */
	CHECK(usage_apply(&u, -1, 101) == QUEUE_ECORRUPT && u.messages == 1 && u.bytes == 100);
	CHECK(usage_apply(&u, -1, 100) == QUEUE_OK && u.messages == 0 && u.bytes == 0);
	CHECK(usage_apply(&u, -1, 0) == QUEUE_ECORRUPT && u.messages == 0);
	u.bytes = UINT64_MAX - 5;
	CHECK(usage_apply(&u, +1, 6) == QUEUE_ECORRUPT && u.bytes == UINT64_MAX - 5);
	CHECK(usage_apply(&u, +1, 5) == QUEUE_OK && u.bytes == UINT64_MAX);
	u.messages = UINT64_MAX;
	CHECK(usage_apply(&u, +1, 0) == QUEUE_ECORRUPT);

	u.messages = 0x0102030405060708u;
	u.bytes = 0x1112131415161718u;
	usage_encode(&u, rec);
	CHECK(rec[0] == 1 && rec[7] == 8 && rec[8] == 0x11 && rec[15] == 0x18);   /* big-endian */
	CHECK(usage_decode(rec, sizeof rec, &v) == QUEUE_OK);
	CHECK(v.messages == u.messages && v.bytes == u.bytes);
	CHECK(usage_decode(rec, sizeof rec - 1, &v) == QUEUE_ECORRUPT);
	CHECK(usage_decode(rec, 0, &v) == QUEUE_ECORRUPT);
}

/* ---- the counters against real LMDB ---- */

static struct queue *open_at(const char *dir, uint64_t map)
{
	struct queue_options opt = { map, 0 };
	char err[512];
	struct queue *q = queue_open(dir, &opt, err, sizeof err);

	if (q == NULL)
		fprintf(stderr, "queue_open: %s\n", err);
	CHECK(q != NULL);
	return q;
}

static void fresh_dir(char *dir, size_t cap)
{
	snprintf(dir, cap, "%s/q%d", base, ndir++);
}

/* A message: draft size bytes (byte i is i*seed mod 251) from client. */
struct msg {
	struct queue_draft *d;
	struct queue_envelope env;
	struct queue_rcpt rcpt;
	queue_id id;
	unsigned seed;
	uint64_t size;
};

static int msg_draft(struct queue *q, struct msg *m, const char *client, const char *user,
                     unsigned seed, uint64_t size)
{
	static unsigned char buf[32 * 1024];
	uint64_t off = 0;
	int rc = QUEUE_OK;

	env_for(&m->env, client, user);
	memset(&m->rcpt, 0, sizeof m->rcpt);
	snprintf(m->rcpt.addr, sizeof m->rcpt.addr, "r@example.org");
	snprintf(m->env.sender, sizeof m->env.sender, "s%u@example.com", seed);
	m->env.rcpts = &m->rcpt;
	m->env.nrcpts = m->env.rcpt_cap = 1;
	m->seed = seed;
	m->size = size;
	if ((m->d = queue_draft_begin(q, &m->id)) == NULL)
		return QUEUE_EIO;
	while (off < size && rc == QUEUE_OK) {
		size_t n = size - off < sizeof buf ? (size_t)(size - off) : sizeof buf;
		for (size_t i = 0; i < n; i++)
			buf[i] = (unsigned char)((off + i) * seed % 251);
		rc = queue_draft_write(m->d, buf, n);
		off += n;
	}
	return rc;
}

/* Commit n drafted messages together; results into res. */
static size_t msg_commit(struct queue *q, struct msg *m, size_t n, int *res)
{
	struct queue_draft *d[8];
	struct queue_envelope *e[8];

	for (size_t i = 0; i < n && i < 8; i++) {
		d[i] = m[i].d;
		e[i] = &m[i].env;
		m[i].d = NULL;
	}
	return queue_commit(q, d, e, res, n);
}

static int one(struct queue *q, const char *client, const char *user, unsigned seed,
               uint64_t size)
{
	struct msg m;
	int res = 99, rc = msg_draft(q, &m, client, user, seed, size);

	if (rc != QUEUE_OK) {
		queue_draft_abort(m.d);
		return rc;
	}
	msg_commit(q, &m, 1, &res);
	return res;
}

struct sum {
	unsigned seed;
	uint64_t off;
	int bad;
};

static int sum_cb(void *arg, const void *buf, size_t len)
{
	struct sum *s = arg;
	const unsigned char *p = buf;

	for (size_t i = 0; i < len; i++)
		if (p[i] != (unsigned char)((s->off + i) * s->seed % 251))
			s->bad = 1;
	s->off += len;
	return 0;
}

static int intact(struct queue *q, const struct msg *m)
{
	struct sum s = { m->seed, 0, 0 };

	return queue_body(q, m->id, sum_cb, &s) == QUEUE_OK && !s.bad && s.off == m->size;
}

/* The counters equal a walk of every envelope (queue_stats). */
static int counters_match(struct queue *q)
{
	struct queue_usage u;
	struct queue_stats st;

	if (queue_usage(q, NULL, &u) != QUEUE_OK || queue_stats(q, &st) != QUEUE_OK)
		return 0;
	if (u.messages != st.messages || u.bytes != st.bytes) {
		fprintf(stderr, "counters %llu msgs %llu bytes, walk %llu msgs %llu bytes\n",
		        (unsigned long long)u.messages, (unsigned long long)u.bytes,
		        (unsigned long long)st.messages, (unsigned long long)st.bytes);
		return 0;
	}
	return 1;
}

static int client_has(struct queue *q, const char *client, const char *user, uint64_t msgs,
                      uint64_t bytes)
{
	struct queue_envelope env;
	struct queue_usage u;

	env_for(&env, client, user);
	if (queue_usage(q, &env, &u) != QUEUE_OK)
		return 0;
	if (u.client_messages != msgs || u.client_bytes != bytes) {
		fprintf(stderr, "client %s/%s: %llu msgs %llu bytes, want %llu %llu\n", client, user,
		        (unsigned long long)u.client_messages, (unsigned long long)u.client_bytes,
		        (unsigned long long)msgs, (unsigned long long)bytes);
		return 0;
	}
	return 1;
}

static void test_counters(void)
{
	char dir[256];
	struct queue *q;
	struct queue_usage u;
	struct msg m[3];
	int res[3];

	fresh_dir(dir, sizeof dir);
	if ((q = open_at(dir, 4 * MB)) == NULL)
		return;
	CHECK(queue_usage(q, NULL, &u) == QUEUE_OK && u.messages == 0 && u.bytes == 0);
	CHECK(client_has(q, "192.0.2.7", "", 0, 0));
	CHECK(one(q, "192.0.2.7", "", 1, 1000) == QUEUE_OK);
	CHECK(one(q, "192.0.2.7", "", 2, 0) == QUEUE_OK);
	CHECK(one(q, "2001:db8::1", "", 3, 70 * KB) == QUEUE_OK);
	CHECK(one(q, "2001:db8::2", "", 4, 5) == QUEUE_OK);
	CHECK(one(q, "192.0.2.7", "bob", 5, 300) == QUEUE_OK);
	CHECK(client_has(q, "192.0.2.7", "", 2, 1000));
	CHECK(client_has(q, "2001:db8::ffff", "", 2, 70 * KB + 5));   /* the same /64 */
	CHECK(client_has(q, "2001:db8:0:1::1", "", 0, 0));
	CHECK(client_has(q, "198.51.100.1", "bob", 1, 300));
	CHECK(queue_usage(q, NULL, &u) == QUEUE_OK && u.messages == 5);
	CHECK(u.bytes == 1000 + 70 * KB + 5 + 300 && u.client_bytes == 0);
	CHECK(counters_match(q));

	/* A group commit where the middle one does not fit the map: the
	 * counters take the two that were stored, and only them. */
	CHECK(msg_draft(q, &m[0], "192.0.2.7", "", 6, 2000) == QUEUE_OK);
	CHECK(msg_draft(q, &m[1], "192.0.2.7", "", 7, 8 * MB) == QUEUE_OK);
	CHECK(msg_draft(q, &m[2], "192.0.2.8", "", 8, 3000) == QUEUE_OK);
	CHECK(msg_commit(q, m, 3, res) == 2);
	CHECK(res[0] == QUEUE_OK && res[1] == QUEUE_EFULL && res[2] == QUEUE_OK);
	CHECK(client_has(q, "192.0.2.7", "", 3, 3000));
	CHECK(client_has(q, "192.0.2.8", "", 1, 3000));
	CHECK(counters_match(q));
	queue_close(q);

	/* What is on disk, not what the process remembered. */
	if ((q = open_at(dir, 4 * MB)) == NULL)
		return;
	CHECK(counters_match(q));
	CHECK(client_has(q, "192.0.2.7", "", 3, 3000));
	CHECK(queue_usage(q, NULL, &u) == QUEUE_OK && u.messages == 7);
	CHECK(intact(q, &m[0]) && intact(q, &m[2]));
	queue_close(q);
	/* A reader sees the same counters. */
	{
		struct queue_options ro = { 0, QUEUE_RDONLY };
		char err[256];
		if ((q = queue_open(dir, &ro, err, sizeof err)) != NULL) {
			CHECK(counters_match(q) && client_has(q, "192.0.2.8", "", 1, 3000));
			queue_close(q);
		} else {
			CHECKF(0, "%s", err);
		}
	}
}

static void test_space(void)
{
	char dir[256];
	struct queue *q;
	struct queue_space a, b;

	fresh_dir(dir, sizeof dir);
	if ((q = open_at(dir, 64 * MB)) == NULL)
		return;
	CHECK(queue_space(q, &a) == QUEUE_OK);
	CHECK(a.fs_total > 0 && a.fs_avail <= a.fs_total);
	CHECK(a.map_free <= 64 * MB && a.map_free > 63 * MB);
	CHECK(one(q, "192.0.2.1", "", 9, 2 * MB) == QUEUE_OK);
	CHECK(queue_space(q, &b) == QUEUE_OK);
	/* 2 MiB of body takes 2 MiB and a sixteenth (17 pages a chunk). */
	CHECK(a.map_free - b.map_free >= 2 * MB + 2 * MB / 16);
	CHECK(a.map_free - b.map_free < 2 * MB + 2 * MB / 16 + 64 * KB);
	queue_close(q);
}

/* ---- a disk that fills inside a commit: a real tmpfs ---- */

static int plant(const char *path, uint64_t size)
{
	static unsigned char buf[64 * 1024];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	uint64_t off = 0;

	if (fd < 0)
		return -1;
	while (off < size) {
		size_t n = size - off < sizeof buf ? (size_t)(size - off) : sizeof buf;
		ssize_t w = write(fd, buf, n);
		if (w <= 0)
			break;
		off += (uint64_t)w;
	}
	close(fd);
	return off == size ? 0 : -1;
}

static void test_disk_full_in_commit(void)
{
	char mnt[256], dir[300], filler[300], filler2[300];
	struct queue *q;
	struct queue_space sp;
	struct msg before[4], m[3];
	int res[3];

	snprintf(mnt, sizeof mnt, "%s/tmpfs", base);
	snprintf(dir, sizeof dir, "%s/queue", mnt);
	snprintf(filler, sizeof filler, "%s/filler", mnt);
	snprintf(filler2, sizeof filler2, "%s/filler2", mnt);
	CHECK(mkdir(mnt, 0700) == 0);
	if (mount("moat-test", mnt, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=0700") != 0) {
		CHECKF(0, "mount tmpfs on %s: %s (this test needs root)", mnt, strerror(errno));
		return;
	}
	if ((q = open_at(dir, 64 * MB)) == NULL)
		goto out;
	for (unsigned i = 0; i < 4; i++) {
		CHECK(msg_draft(q, &before[i], "192.0.2.1", "", 20 + i, 100 * KB) == QUEUE_OK);
		CHECK(msg_commit(q, &before[i], 1, res) == 1);
	}
	/* Leave about 900 KiB: room for the big draft's spool file (600 KiB),
	 * not then for its copy in LMDB too. */
	CHECK(queue_space(q, &sp) == QUEUE_OK);
	CHECK(sp.fs_avail > 1500 * KB && plant(filler, sp.fs_avail - 900 * KB) == 0);
	CHECK(msg_draft(q, &m[0], "192.0.2.2", "", 30, 10 * KB) == QUEUE_OK);
	CHECK(msg_draft(q, &m[1], "192.0.2.3", "", 31, 600 * KB) == QUEUE_OK);
	CHECK(msg_draft(q, &m[2], "192.0.2.2", "", 32, 20 * KB) == QUEUE_OK);
	/* ENOSPC comes from mdb_txn_commit: the big one gives way alone. */
	CHECK(msg_commit(q, m, 3, res) == 2);
	CHECKF(res[0] == QUEUE_OK && res[1] == QUEUE_EFULL && res[2] == QUEUE_OK,
	       "results %d %d %d", res[0], res[1], res[2]);
	CHECK(intact(q, &m[0]) && intact(q, &m[2]));
	for (unsigned i = 0; i < 4; i++)
		CHECK(intact(q, &before[i]));
	CHECK(client_has(q, "192.0.2.2", "", 2, 30 * KB));
	CHECK(client_has(q, "192.0.2.3", "", 0, 0));
	CHECK(counters_match(q));
	/* Fill it to the last byte: every commit fails, none breaks the queue. */
	CHECK(queue_space(q, &sp) == QUEUE_OK);
	CHECK(plant(filler2, sp.fs_avail + 4 * KB) == -1);   /* to ENOSPC */
	CHECK(queue_space(q, &sp) == QUEUE_OK && sp.fs_avail == 0);
	CHECK(one(q, "192.0.2.2", "", 33, 200 * KB) == QUEUE_EFULL);   /* its spool file */
	CHECK(counters_match(q));
	/* Space frees: the queue takes mail again, in the same process. */
	CHECK(unlink(filler) == 0 && unlink(filler2) == 0);
	CHECK(one(q, "192.0.2.3", "", 35, 600 * KB) == QUEUE_OK);
	CHECK(client_has(q, "192.0.2.3", "", 1, 600 * KB));
	CHECK(counters_match(q));
	queue_close(q);
	if ((q = open_at(dir, 64 * MB)) != NULL) {
		for (unsigned i = 0; i < 4; i++)
			CHECK(intact(q, &before[i]));
		CHECK(intact(q, &m[0]) && intact(q, &m[2]));
		CHECK(counters_match(q));
		queue_close(q);
	}
out:
	CHECK(umount2(mnt, 0) == 0);
	rmdir(mnt);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st; (void)flag; (void)f;
	return remove(p);
}

int main(void)
{
	const char *b = getenv("BUILD");
	char tmpl[200];

	snprintf(tmpl, sizeof tmpl, "%s/t/usage.XXXXXX", b != NULL && *b ? b : "build");
	if (mkdtemp(tmpl) == NULL) {
		perror(tmpl);
		return 1;
	}
	snprintf(base, sizeof base, "%s", tmpl);
	RUN(test_usage_key);
	RUN(test_usage_record);
	RUN(test_counters);
	RUN(test_space);
	RUN(test_disk_full_in_commit);
	if (!t_total_failed)
		nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return t_main_end();
}
