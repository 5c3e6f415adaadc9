/*
 * tests/unit/test_queue.c -- the queue against real LMDB in a fresh
 * directory, the envelope codec at every truncation, crashes by SIGKILL,
 * a map too small, and `moat queue` on the result.
 *
 * LMDB forbids opening one environment twice in one process (closing one
 * breaks the other's fcntl locks), so every second opener -- a reader
 * beside the writer, a writer killed mid-draft, `moat queue` -- runs in a
 * forked child that opens the queue itself.
 */
#include "tests/unit/t.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mta/cmd/queue_cmd.h"
#include "queue/envelope.h"
#include "queue/queue.h"

#define MB (1024u * 1024u)

static char base[200];      /* the temp root of this run */
static int  ndir;

/* ---- helpers ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;   /* explicit seed */

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Deterministic body bytes: byte i of message seed s. */
static unsigned char body_byte(unsigned s, uint64_t i)
{
	uint64_t x = (i + 1) * 0x9e3779b97f4a7c15u ^ (uint64_t)s * 0xbf58476d1ce4e5b9u;
	return (unsigned char)(x >> 29 ^ x >> 47);
}

/* A new empty queue path under base (the directory is not created). */
static void new_dir(char *out, size_t cap)
{
	snprintf(out, cap, "%s/q%d", base, ndir++);
}

static struct queue *open_q(const char *dir, uint64_t map, unsigned flags)
{
	struct queue_options opt = { map, flags };
	char err[512];
	struct queue *q = queue_open(dir, &opt, err, sizeof err);
	if (q == NULL)
		fprintf(stderr, "queue_open: %s\n", err);
	return q;
}

/* Read a byte from fd, 0 on EOF or error. */
static char wait_byte(int fd)
{
	char c = 0;
	while (read(fd, &c, 1) < 0 && errno == EINTR)
		;
	return c;
}

static int child_status(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 200 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* A fresh queue in a new directory (its path in dir), opened for writing;
 * NULL (and the test failed) if it does not open. */
static struct queue *fresh_q(char dir[256], uint64_t map)
{
	struct queue *q;
	new_dir(dir, 256);
	q = open_q(dir, map, 0);
	CHECK(q != NULL);
	return q;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st; (void)flag; (void)f;
	return remove(p);
}

static int count_incoming(const char *dir)
{
	char p[512];
	DIR *d;
	struct dirent *e;
	int n = 0;
	snprintf(p, sizeof p, "%s/incoming", dir);
	if ((d = opendir(p)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void fill_env(struct queue_envelope *env, struct queue_rcpt *r, size_t n,
                     const char *sender)
{
	memset(env, 0, sizeof *env);
	memset(r, 0, n * sizeof *r);
	snprintf(env->sender, sizeof env->sender, "%s", sender);
	snprintf(env->helo, sizeof env->helo, "client.example");
	snprintf(env->client, sizeof env->client, "192.0.2.7");
	env->flags = QUEUE_ENV_8BITMIME;
	for (size_t i = 0; i < n; i++) {
		snprintf(r[i].addr, sizeof r[i].addr, "rcpt%zu@example.org", i);
		r[i].state = (uint8_t)(i % 3);
		r[i].attempts = (uint16_t)i;
		r[i].next_try = i ? 1700000000 + (int64_t)i : 0;
		if (i % 2)
			snprintf(r[i].last_error, sizeof r[i].last_error, "451 4.3.0 try %zu", i);
	}
	env->rcpts = r;
	env->nrcpts = n;
	env->rcpt_cap = n;
}

/* Write size bytes of message seed s into d in uneven pieces. */
static int write_body(struct queue_draft *d, unsigned s, uint64_t size)
{
	static unsigned char buf[20000];
	uint64_t off = 0;
	while (off < size) {
		size_t n = (size_t)(rng() % sizeof buf) + 1;
		if (n > size - off)
			n = (size_t)(size - off);
		for (size_t i = 0; i < n; i++)
			buf[i] = body_byte(s, off + i);
		int rc = queue_draft_write(d, buf, n);
		if (rc != QUEUE_OK)
			return rc;
		off += n;
	}
	return QUEUE_OK;
}

/* Draft, write and commit one message alone; returns its result. */
static int put_one(struct queue *q, unsigned s, uint64_t size, queue_id *id)
{
	struct queue_rcpt r[2];
	struct queue_envelope env, *ep = &env;
	struct queue_draft *d = queue_draft_begin(q, id);
	int res = 99;
	fill_env(&env, r, 2, "sender@example.com");
	if (d == NULL)
		return QUEUE_EIO;
	CHECK(write_body(d, s, size) == QUEUE_OK);
	CHECK(queue_draft_size(d) == size);
	CHECK(queue_commit(q, &d, &ep, &res, 1) == (res == QUEUE_OK ? 1u : 0u));
	return res;
}

struct body_check {
	unsigned seed;
	uint64_t off;
	int bad;
	int calls;
};

static int body_cb(void *arg, const void *buf, size_t len)
{
	struct body_check *b = arg;
	const unsigned char *p = buf;
	b->calls++;
	if (len == 0 || len > 64 * 1024)
		b->bad = 1;
	for (size_t i = 0; i < len; i++)
		if (p[i] != body_byte(b->seed, b->off + i)) {
			b->bad = 1;
			break;
		}
	b->off += len;
	return 0;
}

/* Is message id present with body seed s and the given size? */
static int body_ok(struct queue *q, queue_id id, unsigned s, uint64_t size)
{
	struct body_check b = { s, 0, 0, 0 };
	int rc = queue_body(q, id, body_cb, &b);
	if (rc != QUEUE_OK || b.bad || b.off != size) {
		fprintf(stderr, "body %016llx: rc %d bad %d got %llu want %llu\n",
		        (unsigned long long)id, rc, b.bad,
		        (unsigned long long)b.off, (unsigned long long)size);
		return 0;
	}
	return 1;
}

struct list_acc {
	queue_id ids[64];
	uint64_t sizes[64];
	size_t n;
	size_t nrcpts;
};

static int list_cb(void *arg, const struct queue_envelope *env)
{
	struct list_acc *a = arg;
	if (a->n < 64) {
		a->ids[a->n] = env->id;
		a->sizes[a->n] = env->size;
	}
	a->n++;
	a->nrcpts += env->nrcpts;
	return 0;
}

static size_t list_count(struct queue *q, struct list_acc *a)
{
	memset(a, 0, sizeof *a);
	CHECK(queue_list(q, list_cb, a) == QUEUE_OK);
	return a->n;
}

/* ---- envelope codec ---- */

static size_t sample_record(unsigned char *buf, size_t cap, struct queue_rcpt *r, size_t n)
{
	struct queue_envelope env;
	fill_env(&env, r, n, "s@example.com");
	env.id = 0x0123456789abcdefu;
	env.received = -5;            /* signed fields survive */
	env.size = 123456789;
	snprintf(env.auth_user, sizeof env.auth_user, "alice");
	return envelope_encode(&env, buf, cap);
}

static void test_envelope_roundtrip(void)
{
	unsigned char buf[4096], buf2[4096];
	struct queue_rcpt r[3], r2[3];
	struct queue_envelope env, out;
	size_t n, n2;

	fill_env(&env, r, 3, "s@example.com");
	env.id = 0x0123456789abcdefu;
	env.received = -5;
	env.size = 123456789;
	n = envelope_encode(&env, buf, sizeof buf);
	CHECK(n == envelope_size(&env));
	CHECK(n > ENVELOPE_HEAD && buf[0] == ENVELOPE_VERSION);
	CHECK(envelope_encode(&env, buf2, n - 1) == 0);   /* cap too small */

	memset(&out, 0xff, sizeof out);
	out.rcpts = r2;
	out.rcpt_cap = 3;
	CHECK(envelope_decode(buf, n, &out) == QUEUE_OK);
	CHECK(out.id == env.id && out.received == -5 && out.size == env.size);
	CHECK(out.flags == env.flags && out.nrcpts == 3);
	CHECK(strcmp(out.sender, env.sender) == 0 && strcmp(out.helo, env.helo) == 0);
	CHECK(strcmp(out.client, env.client) == 0 && out.auth_user[0] == '\0');
	for (int i = 0; i < 3; i++) {
		CHECK(strcmp(r2[i].addr, r[i].addr) == 0);
		CHECK(r2[i].state == r[i].state && r2[i].attempts == r[i].attempts);
		CHECK(r2[i].next_try == r[i].next_try);
		CHECK(strcmp(r2[i].last_error, r[i].last_error) == 0);
	}
	/* Canonical: re-encoding gives the same bytes. */
	n2 = envelope_encode(&out, buf2, sizeof buf2);
	CHECK(n2 == n && memcmp(buf, buf2, n) == 0);

	/* Too few slots: EINVAL with the count; NULL: counted, OK. */
	out.rcpt_cap = 2;
	CHECK(envelope_decode(buf, n, &out) == QUEUE_EINVAL && out.nrcpts == 3);
	out.rcpts = NULL;
	out.rcpt_cap = 0;
	CHECK(envelope_decode(buf, n, &out) == QUEUE_OK && out.nrcpts == 3);

	/* Full-length strings round-trip; unterminated ones do not encode. */
	memset(env.sender, 'a', QUEUE_ADDR_MAX);
	env.sender[QUEUE_ADDR_MAX] = '\0';
	memset(r[0].last_error, 'e', QUEUE_ERR_MAX);
	r[0].last_error[QUEUE_ERR_MAX] = '\0';
	n = envelope_encode(&env, buf, sizeof buf);
	out.rcpts = r2;
	out.rcpt_cap = 3;
	CHECK(n > 0 && envelope_decode(buf, n, &out) == QUEUE_OK);
	CHECK(strlen(out.sender) == QUEUE_ADDR_MAX && strlen(r2[0].last_error) == QUEUE_ERR_MAX);
	env.sender[QUEUE_ADDR_MAX] = 'a';
	CHECK(envelope_size(&env) == 0 && envelope_encode(&env, buf, sizeof buf) == 0);
	env.sender[0] = '\0';
	r[1].state = 3;
	CHECK(envelope_size(&env) == 0);
	r[1].state = 0;
	env.nrcpts = 4;                     /* more than rcpt_cap */
	CHECK(envelope_size(&env) == 0);
}

static void test_envelope_corrupt(void)
{
	unsigned char buf[4096], bad[4097];
	struct queue_rcpt r[3], r2[3];
	struct queue_envelope out;
	size_t n = sample_record(buf, sizeof buf, r, 3);

	CHECK(n > 0);
	out.rcpts = r2;
	out.rcpt_cap = 3;
	/* Every truncation, decoded from an exact-size heap copy so ASan sees
	 * any read past the end. */
	for (size_t len = 0; len < n; len++) {
		unsigned char *p = malloc(len ? len : 1);
		memcpy(p, buf, len);
		CHECKF(envelope_decode(p, len, &out) == QUEUE_ECORRUPT, "len %zu", len);
		free(p);
	}
	/* Trailing byte, unknown versions. */
	memcpy(bad, buf, n);
	bad[n] = 0;
	CHECK(envelope_decode(bad, n + 1, &out) == QUEUE_ECORRUPT);
	bad[0] = 0;
	CHECK(envelope_decode(bad, n, &out) == QUEUE_ECORRUPT);
	bad[0] = 2;
	CHECK(envelope_decode(bad, n, &out) == QUEUE_ECORRUPT);
	/* A NUL inside the sender ("s@example.com" starts at byte 31). */
	memcpy(bad, buf, n);
	bad[ENVELOPE_HEAD + 2 + 1] = 0;
	CHECK(envelope_decode(bad, n, &out) == QUEUE_ECORRUPT);
	/* A sender length beyond QUEUE_ADDR_MAX. */
	memcpy(bad, buf, n);
	bad[ENVELOPE_HEAD] = 0x01;
	bad[ENVELOPE_HEAD + 1] = 0x41;      /* 321 */
	CHECK(envelope_decode(bad, n, &out) == QUEUE_ECORRUPT);
	/* A recipient count that the bytes cannot hold. */
	{
		struct queue_envelope e;
		size_t at;
		memcpy(bad, buf, n);
		e.rcpts = NULL;
		CHECK(envelope_decode(bad, n, &e) == QUEUE_OK);
		at = ENVELOPE_HEAD + 2 + strlen(e.sender) + 2 + strlen(e.helo)
		     + 2 + strlen(e.client) + 2 + strlen(e.auth_user);
		CHECK(bad[at + 3] == 3);
		bad[at] = 0xff;
		CHECK(envelope_decode(bad, n, &out) == QUEUE_ECORRUPT);
		bad[at] = 0;
		bad[at + 3] = 2;                /* fewer: leftover bytes */
		CHECK(envelope_decode(bad, n, &out) == QUEUE_ECORRUPT);
		bad[at + 3] = 3;
		/* A bad state in the first recipient. */
		at += 4 + 2 + strlen(r[0].addr);
		CHECK(bad[at] == r[0].state);
		bad[at] = 3;
		CHECK(envelope_decode(bad, n, &out) == QUEUE_ECORRUPT);
	}
	/* Every single-byte change either decodes or is refused; none crash. */
	for (size_t i = 0; i < n; i++) {
		for (unsigned v = 0; v < 256; v += 17) {
			int rc;
			memcpy(bad, buf, n);
			bad[i] = (unsigned char)v;
			rc = envelope_decode(bad, n, &out);
			CHECKF(rc == QUEUE_OK || rc == QUEUE_ECORRUPT || rc == QUEUE_EINVAL,
			       "byte %zu = %u: %d", i, v, rc);
		}
	}
}

static void test_id_text(void)
{
	char t[QUEUE_ID_TEXT];
	queue_id id = 0;
	queue_id_format(0x00060f1e2d3c4b5au, t);
	CHECK(strcmp(t, "00060f1e2d3c4b5a") == 0);
	CHECK(queue_id_parse(t, &id) == 0 && id == 0x00060f1e2d3c4b5au);
	CHECK(queue_id_parse("00060F1E2D3C4B5A", &id) == 0 && id == 0x00060f1e2d3c4b5au);
	CHECK(queue_id_parse("00060f1e2d3c4b5", &id) == -1);
	CHECK(queue_id_parse("00060f1e2d3c4b5a0", &id) == -1);
	CHECK(queue_id_parse("00060f1e2d3c4b5g", &id) == -1);
	CHECK(queue_id_parse("", &id) == -1);
	queue_id_format(UINT64_MAX, t);
	CHECK(strcmp(t, "ffffffffffffffff") == 0);
}

/* ---- the store ---- */

static void test_small_and_sizes(void)
{
	char dir[256];
	static const uint64_t sizes[] = { 0, 1, 5, 65535, 65536, 65537, 131072, 200000 };
	queue_id ids[8];
	struct queue *q;
	struct list_acc a;

	if ((q = fresh_q(dir, 64 * MB)) == NULL)
		return;
	for (unsigned i = 0; i < 8; i++) {
		CHECKF(put_one(q, i, sizes[i], &ids[i]) == QUEUE_OK, "size %llu",
		       (unsigned long long)sizes[i]);
		CHECK(count_incoming(dir) == 0);
	}
	for (unsigned i = 0; i < 8; i++)
		CHECKF(body_ok(q, ids[i], i, sizes[i]), "size %llu", (unsigned long long)sizes[i]);
	CHECK(list_count(q, &a) == 8);
	for (unsigned i = 0; i < 8; i++)
		CHECK(a.ids[i] == ids[i] && a.sizes[i] == sizes[i]);
	CHECK(a.nrcpts == 16);

	{
		struct queue_rcpt r[2];
		struct queue_envelope env;
		time_t now = time(NULL);
		memset(&env, 0, sizeof env);
		env.rcpts = r;
		env.rcpt_cap = 2;
		CHECK(queue_get(q, ids[2], &env) == QUEUE_OK);
		CHECK(env.id == ids[2] && env.size == 5 && env.nrcpts == 2);
		CHECK(env.received <= now && env.received >= now - 60);
		CHECK(strcmp(env.sender, "sender@example.com") == 0);
		CHECK(strcmp(r[1].last_error, "451 4.3.0 try 1") == 0);
		env.rcpt_cap = 1;
		CHECK(queue_get(q, ids[2], &env) == QUEUE_EINVAL && env.nrcpts == 2);
		env.rcpt_cap = 2;
		CHECK(queue_get(q, ids[7] + 1, &env) == QUEUE_ENOTFOUND);
		CHECK(queue_get(q, 0, &env) == QUEUE_ENOTFOUND);
	}
	{
		struct body_check b = { 0, 0, 0, 0 };
		CHECK(queue_body(q, ids[0] - 1, body_cb, &b) == QUEUE_ENOTFOUND);
		CHECK(b.calls == 0);
		CHECK(queue_body(q, ids[0], body_cb, &b) == QUEUE_OK && b.calls == 0);
	}
	{
		struct queue_stats st;
		uint64_t total = 0;
		for (unsigned i = 0; i < 8; i++)
			total += sizes[i];
		CHECK(queue_stats(q, &st) == QUEUE_OK);
		CHECK(st.messages == 8 && st.bytes == total);
		CHECK(st.map_size == 64 * MB && st.map_used > total && st.map_used < st.map_size);
	}
	queue_close(q);
}

static void test_big_spill(void)
{
	char dir[256];
	const uint64_t size = 5 * MB + 12345;
	struct queue_rcpt r[1];
	struct queue_envelope env, *ep = &env;
	struct queue_draft *d;
	struct queue *q;
	queue_id id;
	int res = 99;

	if ((q = fresh_q(dir, 64 * MB)) == NULL)
		return;
	d = queue_draft_begin(q, &id);
	CHECK(d != NULL);
	if (d == NULL) {
		queue_close(q);
		return;
	}
	CHECK(queue_draft_write(d, "x", 0) == QUEUE_OK);
	{
		/* Up to QUEUE_DRAFT_MEM stays in memory... */
		unsigned char b[QUEUE_DRAFT_MEM];
		for (size_t i = 0; i < sizeof b; i++)
			b[i] = body_byte(9, i);
		CHECK(queue_draft_write(d, b, sizeof b) == QUEUE_OK);
		CHECK(count_incoming(dir) == 0);
	}
	{
		/* ...one byte more spills to incoming/ID. */
		unsigned char one = body_byte(9, QUEUE_DRAFT_MEM);
		char path[512], text[QUEUE_ID_TEXT];
		struct stat st;
		CHECK(queue_draft_write(d, &one, 1) == QUEUE_OK);
		queue_id_format(id, text);
		snprintf(path, sizeof path, "%s/incoming/%s", dir, text);
		CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
		CHECK(st.st_size == QUEUE_DRAFT_MEM);
	}
	{
		/* The rest, in uneven pieces. */
		static unsigned char b[7001];
		uint64_t off = QUEUE_DRAFT_MEM + 1;
		while (off < size) {
			size_t n = sizeof b < size - off ? sizeof b : (size_t)(size - off);
			for (size_t i = 0; i < n; i++)
				b[i] = body_byte(9, off + i);
			CHECK(queue_draft_write(d, b, n) == QUEUE_OK);
			off += n;
		}
	}
	CHECK(queue_draft_size(d) == size);
	{
		struct list_acc a;
		CHECK(list_count(q, &a) == 0);     /* a draft is invisible */
	}
	fill_env(&env, r, 1, "");
	CHECK(queue_commit(q, &d, &ep, &res, 1) == 1 && res == QUEUE_OK);
	CHECK(env.id == id && env.size == size);
	CHECK(count_incoming(dir) == 0);
	CHECK(body_ok(q, id, 9, size));
	queue_close(q);

	/* And after reopening, read-only. */
	if ((q = open_q(dir, 0, QUEUE_RDONLY)) != NULL) {
		struct body_check b = { 9, 0, 0, 0 };
		CHECK(queue_body(q, id, body_cb, &b) == QUEUE_OK && !b.bad && b.off == size);
		CHECK(b.calls == (int)((size + 65535) / 65536));
		queue_close(q);
	} else {
		CHECK(0);
	}
}

/* A prefix (queue_draft_prepend) is the body's first bytes, before a
 * spilled draft's too; a raw record is stored as given, with its id,
 * received and size set in place. */
struct prefix_check {
	const char *prefix;
	size_t plen;
	unsigned seed;
	uint64_t off;
	int bad;
};

static int prefix_cb(void *arg, const void *buf, size_t len)
{
	struct prefix_check *b = arg;
	const unsigned char *p = buf;

	for (size_t i = 0; i < len; i++, b->off++) {
		unsigned char want = b->off < b->plen ? (unsigned char)b->prefix[b->off]
		                                      : body_byte(b->seed, b->off - b->plen);
		if (p[i] != want)
			b->bad = 1;
	}
	return 0;
}

static void test_prefix_and_raw(void)
{
	static const char pfx[] = "DKIM-Signature: v=1; a=rsa-sha256; d=example.org;\r\n\tb=xyz\r\n";
	static const uint64_t sizes[] = { 0, 100, 3 * QUEUE_DRAFT_MEM + 7 };
	static unsigned char raw[4096], big[QUEUE_PREFIX_MAX + 1];
	char dir[256];
	struct queue *q = fresh_q(dir, 64u << 20);

	if (q == NULL)
		return;
	for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		struct queue_rcpt r[2], got_r[2];
		struct queue_envelope env, *ep = &env, got;
		struct prefix_check b = { pfx, sizeof pfx - 1, (unsigned)k + 40, 0, 0 };
		queue_id id = 0;
		struct queue_draft *d = queue_draft_begin(q, &id);
		int res = 99;
		size_t rl;

		CHECK(d != NULL);
		if (d == NULL)
			break;
		CHECK(write_body(d, (unsigned)k + 40, sizes[k]) == QUEUE_OK);
		CHECK(queue_draft_prepend(d, "first", 5) == QUEUE_OK);   /* replaced below */
		CHECK(queue_draft_prepend(d, pfx, sizeof pfx - 1) == QUEUE_OK);
		CHECK(queue_draft_size(d) == sizes[k] + sizeof pfx - 1);
		fill_env(&env, r, 2, "s@example.com");
		env.id = id;
		rl = envelope_encode(&env, raw, sizeof raw);
		CHECK(rl > 0);
		env.raw = raw;
		env.raw_len = rl;
		CHECK(queue_commit(q, &d, &ep, &res, 1) == 1 && res == QUEUE_OK);
		CHECK(env.size == sizes[k] + sizeof pfx - 1);
		CHECK(queue_body(q, id, prefix_cb, &b) == QUEUE_OK && !b.bad && b.off == env.size);
		memset(&got, 0, sizeof got);
		got.rcpts = got_r;
		got.rcpt_cap = 2;
		CHECK(queue_get(q, id, &got) == QUEUE_OK && got.id == id && got.size == env.size &&
		      got.received == env.received && got.nrcpts == 2 &&
		      strcmp(got.sender, "s@example.com") == 0);
	}
	{
		queue_id id = 0;
		struct queue_draft *d = queue_draft_begin(q, &id);

		CHECK(d != NULL && queue_draft_prepend(d, big, sizeof big) == QUEUE_EINVAL);
		queue_draft_abort(d);
	}
	queue_close(q);
}

static void test_group_commit(void)
{
	enum { N = 6 };
	static const uint64_t sizes[N] = { 10, 70000, 0, 300000, 65536, 999 };
	char dir[256];
	struct queue_rcpt r[N][3];
	struct queue_envelope env[N], *ep[N];
	struct queue_draft *d[N];
	queue_id ids[N];
	int res[N];
	struct queue *q;
	struct list_acc a;

	if ((q = fresh_q(dir, 64 * MB)) == NULL)
		return;
	/* Interleaved writes, as concurrent sessions would do. */
	for (int i = 0; i < N; i++) {
		d[i] = queue_draft_begin(q, &ids[i]);
		CHECK(d[i] != NULL);
		fill_env(&env[i], r[i], (size_t)(i % 3) + 1, "grp@example.com");
		ep[i] = &env[i];
		res[i] = 99;
	}
	for (int i = N - 1; i >= 0; i--)
		CHECK(write_body(d[i], 100u + (unsigned)i, sizes[i]) == QUEUE_OK);
	CHECK(queue_commit(q, d, ep, res, N) == N);
	for (int i = 0; i < N; i++) {
		CHECK(res[i] == QUEUE_OK && env[i].id == ids[i] && env[i].size == sizes[i]);
		CHECK(body_ok(q, ids[i], 100u + (unsigned)i, sizes[i]));
	}
	CHECK(list_count(q, &a) == N && a.nrcpts == 1 + 2 + 3 + 1 + 2 + 3);
	for (int i = 0; i < N; i++)
		CHECK(a.ids[i] == ids[i]);
	CHECK(count_incoming(dir) == 0);
	CHECK(queue_commit(q, NULL, NULL, NULL, 0) == 0);
	queue_close(q);
}

static void test_ids_across_reopen(void)
{
	char dir[256];
	queue_id prev = 0, id;
	struct queue *q;

	new_dir(dir, sizeof dir);
	for (int round = 0; round < 3; round++) {
		if ((q = open_q(dir, 16 * MB, 0)) == NULL) {
			CHECK(0);
			return;
		}
		/* Many in a row: faster than the microsecond clock. */
		for (int i = 0; i < 1000; i++) {
			struct queue_draft *d = queue_draft_begin(q, &id);
			CHECKF(id > prev, "round %d i %d", round, i);
			prev = id;
			queue_draft_abort(d);
		}
		CHECK(put_one(q, 1, 10, &id) == QUEUE_OK && id > prev);
		prev = id;
		queue_close(q);
	}
	if ((q = open_q(dir, 16 * MB, 0)) != NULL) {
		struct list_acc a;
		CHECK(list_count(q, &a) == 3);
		CHECK(a.ids[0] < a.ids[1] && a.ids[1] < a.ids[2]);
		queue_close(q);
	}
}

static void test_abort_and_leftover(void)
{
	char dir[256], path[512];
	struct queue *q;
	struct queue_draft *d;
	struct list_acc a;
	queue_id id;
	int fd;

	if ((q = fresh_q(dir, 16 * MB)) == NULL)
		return;
	d = queue_draft_begin(q, &id);
	CHECK(d != NULL && write_body(d, 3, 300000) == QUEUE_OK);
	CHECK(count_incoming(dir) == 1);
	queue_draft_abort(d);
	CHECK(count_incoming(dir) == 0);
	CHECK(list_count(q, &a) == 0);
	{
		struct queue_stats st;
		CHECK(queue_stats(q, &st) == QUEUE_OK && st.messages == 0 && st.bytes == 0);
	}
	queue_draft_abort(NULL);
	/* A second writer is refused while this one holds the queue. */
	{
		struct queue_options opt = { 16 * MB, 0 };
		char err[512] = "";
		pid_t pid;
		int st;
		d = queue_draft_begin(q, &id);    /* a draft the intruder must not remove */
		CHECK(d != NULL && write_body(d, 3, 100000) == QUEUE_OK);
		CHECK(queue_open(dir, &opt, err, sizeof err) == NULL);
		CHECKF(strstr(err, "already open for writing in this process") != NULL, "%s", err);
		fflush(NULL);
		if ((pid = fork()) == 0) {
			struct queue *q2 = queue_open(dir, &opt, err, sizeof err);
			_exit(q2 == NULL && strstr(err, "another process has it open for writing")
			      ? 0 : 1);
		}
		st = child_status(pid);
		CHECKF(st == 0, "second writer child %d", st);
		CHECK(count_incoming(dir) == 1);
		queue_draft_abort(d);
	}
	queue_close(q);

	/* A partial draft left by a crash is removed at the next open. */
	snprintf(path, sizeof path, "%s/incoming/00060f1e2d3c4b5a", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0 && write(fd, "partial", 7) == 7);
	if (fd >= 0)
		close(fd);
	CHECK(count_incoming(dir) == 1);
	/* A reader leaves incoming/ alone. */
	if ((q = open_q(dir, 0, QUEUE_RDONLY)) != NULL) {
		CHECK(count_incoming(dir) == 1);
		CHECK(queue_draft_begin(q, &id) == NULL);
		queue_close(q);
	}
	if ((q = open_q(dir, 16 * MB, 0)) != NULL) {
		CHECK(count_incoming(dir) == 0);
		CHECK(list_count(q, &a) == 0);
		queue_close(q);
	} else {
		CHECK(0);
	}
}

static void test_map_full(void)
{
	char dir[256];
	struct queue *q;
	queue_id before[3], ids[3];
	struct queue_rcpt r[3][1];
	struct queue_envelope env[3], *ep[3];
	struct queue_draft *d[3];
	static const uint64_t sizes[3] = { 3000, 1 * MB, 4000 };
	int res[3];
	struct list_acc a;

	if ((q = fresh_q(dir, 256 * 1024)) == NULL)
		return;
	for (unsigned i = 0; i < 3; i++)
		CHECK(put_one(q, 200 + i, 2000 + i, &before[i]) == QUEUE_OK);

	/* small, big, small in one batch: only the big one fails. */
	for (int i = 0; i < 3; i++) {
		d[i] = queue_draft_begin(q, &ids[i]);
		CHECK(d[i] != NULL && write_body(d[i], 300u + (unsigned)i, sizes[i]) == QUEUE_OK);
		fill_env(&env[i], r[i], 1, "full@example.com");
		ep[i] = &env[i];
	}
	CHECK(count_incoming(dir) == 1);
	CHECK(queue_commit(q, d, ep, res, 3) == 2);
	CHECK(res[0] == QUEUE_OK && res[1] == QUEUE_EFULL && res[2] == QUEUE_OK);
	CHECK(env[1].id == ids[1] && env[1].size == sizes[1]);   /* for the log */
	CHECK(count_incoming(dir) == 0);
	CHECK(body_ok(q, ids[0], 300, sizes[0]) && body_ok(q, ids[2], 302, sizes[2]));
	CHECK(queue_body(q, ids[1], body_cb, &(struct body_check){ 0, 0, 0, 0 })
	      == QUEUE_ENOTFOUND);
	for (unsigned i = 0; i < 3; i++)
		CHECK(body_ok(q, before[i], 200 + i, 2000 + i));
	/* The big one alone fails too, and nothing half-written remains. */
	CHECK(put_one(q, 400, 1 * MB, &ids[1]) == QUEUE_EFULL);
	CHECK(list_count(q, &a) == 5);
	{
		struct queue_stats st;
		CHECK(queue_stats(q, &st) == QUEUE_OK && st.messages == 5);
		CHECK(st.map_used <= st.map_size);
	}
	queue_close(q);

	if ((q = open_q(dir, 256 * 1024, 0)) != NULL) {
		CHECK(list_count(q, &a) == 5);
		for (unsigned i = 0; i < 3; i++)
			CHECK(body_ok(q, before[i], 200 + i, 2000 + i));
		CHECK(body_ok(q, ids[2], 302, sizes[2]));
		queue_close(q);
	} else {
		CHECK(0);
	}
}

/* Child: open read-only beside the writer; expects 1 message, tells the
 * parent, waits, then expects 2, the second of size2. */
static int reader_child(const char *dir, int to_parent, int from_parent, uint64_t size2)
{
	struct queue *q = open_q(dir, 0, QUEUE_RDONLY);
	struct list_acc a;
	if (q == NULL)
		return 10;
	memset(&a, 0, sizeof a);
	if (queue_list(q, list_cb, &a) != QUEUE_OK || a.n != 1)
		return 11;
	if (!body_ok(q, a.ids[0], 500, 1000))
		return 12;
	if (write(to_parent, "r", 1) != 1 || wait_byte(from_parent) != 'w')
		return 13;
	memset(&a, 0, sizeof a);
	if (queue_list(q, list_cb, &a) != QUEUE_OK || a.n != 2)
		return 14;
	if (!body_ok(q, a.ids[1], 501, size2))
		return 15;
	queue_close(q);
	return 0;
}

/* A writer with map size map1 and a reader (another process); while the
 * reader has the queue open, the writer commits size2 bytes, after
 * reopening with map2 if that differs (the reader then meets
 * MDB_MAP_RESIZED and must map again). */
static void reader_case(uint64_t map1, uint64_t map2, uint64_t size2)
{
	char dir[256];
	struct queue *q;
	queue_id id;
	int up[2], down[2], st;
	pid_t pid;

	if ((q = fresh_q(dir, map1)) == NULL || pipe(up) != 0 || pipe(down) != 0) {
		CHECK(0);
		return;
	}
	CHECK(put_one(q, 500, 1000, &id) == QUEUE_OK);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		/* Never touch the parent's queue here: LMDB forbids it. */
		close(up[0]);
		close(down[1]);
		_exit(reader_child(dir, up[1], down[0], size2));
	}
	close(up[1]);
	close(down[0]);
	CHECK(wait_byte(up[0]) == 'r');
	if (map2 != map1) {
		queue_close(q);
		q = open_q(dir, map2, 0);
		CHECK(q != NULL);
	}
	if (q != NULL)
		CHECK(put_one(q, 501, size2, &id) == QUEUE_OK);
	CHECK(write(down[1], "w", 1) == 1);
	st = child_status(pid);
	CHECKF(st == 0, "reader child %d", st);
	close(up[0]);
	close(down[1]);
	queue_close(q);
}

static void test_reader_beside_writer(void)
{
	reader_case(64 * MB, 64 * MB, 300000);
}

static void test_reader_map_resized(void)
{
	reader_case(1 * MB, 32 * MB, 3 * MB);
}

static void test_killed_mid_draft(void)
{
	char dir[256];
	int up[2];
	pid_t pid;
	struct queue *q;

	/* The queue exists with one message before the crash. */
	if ((q = fresh_q(dir, 16 * MB)) == NULL || pipe(up) != 0) {
		CHECK(0);
		return;
	}
	{
		queue_id id;
		CHECK(put_one(q, 600, 5000, &id) == QUEUE_OK);
	}
	queue_close(q);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		struct queue *cq = open_q(dir, 16 * MB, 0);
		struct queue_draft *d;
		queue_id id;
		close(up[0]);
		if (cq == NULL || (d = queue_draft_begin(cq, &id)) == NULL
		    || write_body(d, 601, 500000) != QUEUE_OK)
			_exit(1);
		if (write(up[1], "d", 1) != 1)
			_exit(2);
		for (;;)
			pause();
	}
	close(up[1]);
	CHECK(wait_byte(up[0]) == 'd');
	CHECK(count_incoming(dir) == 1);
	kill(pid, SIGKILL);
	CHECK(child_status(pid) == 200 + SIGKILL);
	close(up[0]);

	if ((q = open_q(dir, 16 * MB, 0)) != NULL) {
		struct list_acc a;
		CHECK(count_incoming(dir) == 0);
		CHECK(list_count(q, &a) == 1 && a.sizes[0] == 5000);
		CHECK(body_ok(q, a.ids[0], 600, 5000));
		queue_close(q);
	} else {
		CHECK(0);
	}
}

static void test_open_errors(void)
{
	char dir[256], err[512] = "";
	struct queue_options ro = { 0, QUEUE_RDONLY }, rw = { 0, 0 };

	new_dir(dir, sizeof dir);
	CHECK(queue_open(dir, &ro, err, sizeof err) == NULL);
	CHECKF(strncmp(err, "queue ", 6) == 0 && strstr(err, dir) != NULL
	       && strstr(err, "No such file") != NULL, "%s", err);
	CHECK(queue_open(dir, &rw, err, sizeof err) == NULL);   /* map size 0 */
	CHECK(strstr(err, "map size") != NULL);
	{
		/* Permission: another user runs `moat queue list` on a queue
		 * (0700) that is not theirs.  As root, the child becomes nobody. */
		struct queue *q = fresh_q(dir, MB);
		int root = geteuid() == 0;
		pid_t pid;
		queue_close(q);
		fflush(NULL);
		if ((pid = fork()) == 0) {
			if (root && (setgid(65534) != 0 || setuid(65534) != 0))
				_exit(2);
			if (!root && chmod(dir, 0) != 0)
				_exit(3);
			q = queue_open(dir, &ro, err, sizeof err);
			if (q != NULL || strstr(err, "Permission denied") == NULL)
				fprintf(stderr, "open as another user: %s\n", q ? "opened" : err);
			_exit(q == NULL && strstr(err, "Permission denied") != NULL
			      && strstr(err, "owner") != NULL ? 0 : 1);
		}
		{
			int st = child_status(pid);
			CHECKF(st == 0, "child exit %d", st);
		}
		chmod(dir, 0700);
	}
	{
		/* A directory with some other file but no queue: read-only
		 * open says so instead of creating one. */
		new_dir(dir, sizeof dir);
		CHECK(mkdir(dir, 0700) == 0);
		CHECK(queue_open(dir, &ro, err, sizeof err) == NULL);
		CHECKF(strstr(err, dir) != NULL, "%s", err);
	}
}

/* ---- moat queue ---- */

/* Run queuecmd_main on up to two arguments (NULL ends them) in a child
 * with stdout to out; returns its exit code. */
static int run_cmd(const char *dir, const char *out, const char *a0, const char *a1)
{
	char s0[64] = "", s1[64] = "";
	char *argv[3] = { s0, s1, NULL };
	int argc = a0 == NULL ? 0 : a1 == NULL ? 1 : 2;
	pid_t pid;

	snprintf(s0, sizeof s0, "%s", a0 ? a0 : "");
	snprintf(s1, sizeof s1, "%s", a1 ? a1 : "");
	argv[argc] = NULL;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int devnull = open("/dev/null", O_WRONLY);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(devnull, 2) < 0)
			_exit(99);
		_exit(queuecmd_main(dir, 0, argc, argv));
	}
	return child_status(pid);
}

static size_t slurp(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	size_t n = 0;
	if (f != NULL) {
		n = fread(buf, 1, cap - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return n;
}

static void test_queuecmd(void)
{
	char dir[256], out[300], id[QUEUE_ID_TEXT], idx[QUEUE_ID_TEXT];
	static char buf[200000];
	struct queue *q;
	queue_id qid;
	size_t n;

	new_dir(dir, sizeof dir);
	snprintf(out, sizeof out, "%s/cmd.out", base);
	if ((q = open_q(dir, 16 * MB, 0)) == NULL) {
		CHECK(0);
		return;
	}
	{
		struct queue_rcpt r[2];
		struct queue_envelope env, *ep = &env;
		struct queue_draft *d = queue_draft_begin(q, &qid);
		static const char body[] = "Subject: hi\r\n\r\nhello\r\n";
		int res;
		fill_env(&env, r, 2, "");
		snprintf(r[1].last_error, sizeof r[1].last_error, "451 \x1b[31mred\n");
		CHECK(queue_draft_write(d, body, sizeof body - 1) == QUEUE_OK);
		CHECK(queue_commit(q, &d, &ep, &res, 1) == 1);
	}
	queue_id_format(qid, id);
	queue_id_format(qid + 1, idx);

	CHECK(run_cmd(dir, out, "list", NULL) == 0);
	n = slurp(out, buf, sizeof buf);
	CHECKF(strncmp(buf, id, 16) == 0 && strstr(buf, " 22 <>\n") != NULL, "%s", buf);
	CHECKF(strstr(buf, "Z 22 <>\n  <rcpt0@example.org> pending attempts=0 next=now\n")
	       != NULL, "%s", buf);
	CHECKF(strstr(buf, "  <rcpt1@example.org> delivered attempts=1 next=- "
	              "error=\"451 \\x1b[31mred\\x0a\"\n") != NULL, "%s", buf);
	CHECK(n > 0 && memchr(buf, 0x1b, n) == NULL);

	CHECK(run_cmd(dir, out, "show", id) == 0);
	slurp(out, buf, sizeof buf);
	CHECKF(strstr(buf, "sender: <>\nhelo: client.example\nclient: 192.0.2.7\nauth: -\n")
	       != NULL, "%s", buf);
	CHECKF(strstr(buf, "flags: 8bitmime\n") != NULL, "%s", buf);
	{
		const char *b = strstr(buf, "\n\n");
		CHECKF(b != NULL && strcmp(b + 2, "Subject: hi\r\n\r\nhello\r\n") == 0, "%s", buf);
	}
	CHECK(run_cmd(dir, out, "count", NULL) == 0);
	slurp(out, buf, sizeof buf);
	CHECKF(strncmp(buf, "messages 1\nbytes 22\n", 20) == 0, "%s", buf);

	/* While the writer still holds the queue: all of the above ran beside
	 * it.  Now the exit codes. */
	CHECK(run_cmd(dir, out, "show", idx) == 1);
	CHECK(run_cmd(dir, out, "show", "xyz") == 100);
	CHECK(run_cmd(dir, out, "show", NULL) == 100);
	CHECK(run_cmd(dir, out, "frobnicate", NULL) == 100);
	CHECK(run_cmd(dir, out, "list", "extra") == 100);
	CHECK(run_cmd(dir, out, NULL, NULL) == 100);
	queue_close(q);
	{
		char none[300];
		snprintf(none, sizeof none, "%s/does-not-exist", base);
		CHECK(run_cmd(none, out, "list", NULL) == 111);
	}
}

/* Replace every occurrence of old[0..n) in DIR/data.mdb by new.  LMDB
 * keeps no checksums, so this is how a record goes bad on disk.  Every:
 * copy-on-write leaves older copies of a record in freed pages. */
static int patch_data(const char *dir, const unsigned char *old,
                      const unsigned char *new, size_t n)
{
	char path[512];
	static unsigned char buf[4 * 1024 * 1024];
	FILE *f;
	size_t len;
	unsigned char *at;
	int ok = 0;

	snprintf(path, sizeof path, "%s/data.mdb", dir);
	if ((f = fopen(path, "r+b")) == NULL)
		return 0;
	len = fread(buf, 1, sizeof buf, f);
	for (unsigned char *p = buf; (at = memmem(p, len - (size_t)(p - buf), old, n)) != NULL;
	     p = at + n) {
		if (fseek(f, (long)(at - buf), SEEK_SET) != 0 || fwrite(new, 1, n, f) != n)
			break;
		ok = 1;
	}
	return fclose(f) == 0 && ok;
}

static void test_corrupt_records(void)
{
	char dir[256], out[300];
	struct queue *q;
	struct queue_rcpt r[2];
	struct queue_envelope env;
	unsigned char rec[2][2048], bad[2048];
	size_t len[2];
	queue_id ids[2];
	static const uint64_t sizes[2] = { 1000, 70000 };
	struct list_acc a;
	struct queue_stats st;
	struct body_check b = { 0, 0, 0, 0 };

	if ((q = fresh_q(dir, 16 * MB)) == NULL)
		return;
	snprintf(out, sizeof out, "%s/cmd.out", base);
	for (int i = 0; i < 2; i++) {
		CHECK(put_one(q, 700u + (unsigned)i, sizes[i], &ids[i]) == QUEUE_OK);
		memset(&env, 0, sizeof env);
		env.rcpts = r;
		env.rcpt_cap = 2;
		CHECK(queue_get(q, ids[i], &env) == QUEUE_OK);
		len[i] = envelope_encode(&env, rec[i], sizeof rec[i]);
		CHECK(len[i] > 0);
	}
	queue_close(q);

	/* A recipient state of 7 in the first record. */
	memcpy(bad, rec[0], len[0]);
	{
		unsigned char *addr = memmem(bad, len[0], r[0].addr, strlen(r[0].addr));
		CHECK(addr != NULL);
		if (addr == NULL)
			return;
		addr[strlen(r[0].addr)] = 7;    /* the state byte follows the address */
	}
	{
		struct queue_envelope e;
		e.rcpts = NULL;
		CHECK(envelope_decode(bad, len[0], &e) == QUEUE_ECORRUPT);
	}
	CHECK(patch_data(dir, rec[0], bad, len[0]));
	if ((q = open_q(dir, 16 * MB, 0)) == NULL) {
		CHECK(0);
		return;
	}
	memset(&a, 0, sizeof a);
	CHECK(queue_list(q, list_cb, &a) == QUEUE_ECORRUPT && a.n == 0);
	CHECK(queue_get(q, ids[0], &env) == QUEUE_ECORRUPT);
	CHECK(queue_get(q, ids[1], &env) == QUEUE_OK);
	CHECK(queue_stats(q, &st) == QUEUE_ECORRUPT);
	CHECK(queue_body(q, ids[0], body_cb, &b) == QUEUE_ECORRUPT);
	CHECK(run_cmd(dir, out, "list", NULL) == 111);
	queue_close(q);
	CHECK(patch_data(dir, bad, rec[0], len[0]));

	/* Sizes that do not match the chunks of the second message (70000
	 * bytes: chunks of 65536 and 4464). */
	{
		static const uint64_t lies[] = { 69999, 70001, 65536, 200000, 0 };
		for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
			memcpy(bad, rec[1], len[1]);
			for (int k = 0; k < 8; k++)
				bad[21 + k] = (unsigned char)(lies[i] >> (56 - 8 * k));
			CHECK(patch_data(dir, rec[1], bad, len[1]));
			if ((q = open_q(dir, 16 * MB, 0)) != NULL) {
				memset(&b, 0, sizeof b);
				CHECKF(queue_body(q, ids[1], body_cb, &b) == QUEUE_ECORRUPT,
				       "size %llu", (unsigned long long)lies[i]);
				CHECK(body_ok(q, ids[0], 700, sizes[0]));
				queue_close(q);
			}
			CHECK(patch_data(dir, bad, rec[1], len[1]));
		}
	}
	if ((q = open_q(dir, 16 * MB, 0)) != NULL) {
		CHECK(list_count(q, &a) == 2);
		CHECK(body_ok(q, ids[1], 701, sizes[1]));
		queue_close(q);
	}
}

int main(void)
{
	const char *b = getenv("BUILD");
	char tmpl[200];

	if (b != NULL && *b != '\0') {
		char t[150];
		snprintf(t, sizeof t, "%s/t", b);
		mkdir(b, 0755);
		mkdir(t, 0755);
		snprintf(tmpl, sizeof tmpl, "%s/queue.XXXXXX", t);
	} else {
		snprintf(tmpl, sizeof tmpl, "/tmp/moat-queue.XXXXXX");
	}
	if (mkdtemp(tmpl) == NULL) {
		perror(tmpl);
		return 1;
	}
	snprintf(base, sizeof base, "%s", tmpl);

	RUN(test_envelope_roundtrip);
	RUN(test_envelope_corrupt);
	RUN(test_id_text);
	RUN(test_small_and_sizes);
	RUN(test_big_spill);
	RUN(test_prefix_and_raw);
	RUN(test_group_commit);
	RUN(test_ids_across_reopen);
	RUN(test_abort_and_leftover);
	RUN(test_map_full);
	RUN(test_reader_beside_writer);
	RUN(test_reader_map_resized);
	RUN(test_killed_mid_draft);
	RUN(test_open_errors);
	RUN(test_queuecmd);
	RUN(test_corrupt_records);

	if (!t_total_failed)
		nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return t_main_end();
}
