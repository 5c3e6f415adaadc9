/*
 * tests/unit/test_queue_ext.c -- a message's DSN parameters (queue/ext.h):
 * the record at every truncation and with bytes changed, then real LMDB
 * in a fresh directory: stored with the message (queue_commit, also from
 * an envelope that came encoded, and the bounce of queue_update), read by
 * queue_get and queue_list, kept over a restart, removed with the message;
 * the envelope record's bytes unchanged (what the previous moat reads); a
 * queue whose "ext" database is missing (read as no parameters, made by
 * the writer); the records an older moat leaves behind, removed at open;
 * a corrupt record written by mdb_load (lmdb-utils).
 *
 * LMDB forbids opening one environment twice in one process, so a second
 * opener runs in a forked child.
 */
#include "tests/unit/t.h"

#include <ftw.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "queue/envelope.h"
#include "queue/ext.h"
#include "queue/queue.h"

#define MB (1024u * 1024u)

static char base[] = "/tmp/moat-ext-XXXXXX";
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

static void new_dir(char dir[256])
{
	snprintf(dir, 256, "%s/q%d", base, ndir++);
}

/* Three recipients: the first with NOTIFY and ORCPT, the second with
 * nothing, the third NEVER; RET=HDRS and an ENVID when dsn is set. */
static void fill(struct queue_envelope *env, struct queue_rcpt r[3], int dsn)
{
	memset(env, 0, sizeof *env);
	memset(r, 0, 3 * sizeof *r);
	snprintf(env->sender, sizeof env->sender, "s@example.com");
	snprintf(env->helo, sizeof env->helo, "client.example");
	snprintf(env->client, sizeof env->client, "192.0.2.7");
	for (int i = 0; i < 3; i++)
		snprintf(r[i].addr, sizeof r[i].addr, "r%d@example.org", i);
	if (dsn) {
		env->dsn_ret = DSN_RET_HDRS;
		snprintf(env->dsn_envid, sizeof env->dsn_envid, "QQ314159+2Bx");
		r[0].notify = DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE;
		snprintf(r[0].orcpt, sizeof r[0].orcpt, "rfc822;orig+2Bone@example.net");
		r[2].notify = DSN_NOTIFY_NEVER;
		snprintf(r[2].orcpt, sizeof r[2].orcpt, "utf-8;caf\\x{E9}@example.net");
	}
	env->rcpts = r;
	env->nrcpts = env->rcpt_cap = 3;
}

static int same_dsn(const struct queue_envelope *a, const struct queue_envelope *b)
{
	if (a->dsn_ret != b->dsn_ret || strcmp(a->dsn_envid, b->dsn_envid) != 0 ||
	    a->nrcpts != b->nrcpts)
		return 0;
	for (size_t i = 0; i < a->nrcpts; i++)
		if (a->rcpts[i].notify != b->rcpts[i].notify ||
		    strcmp(a->rcpts[i].orcpt, b->rcpts[i].orcpt) != 0)
			return 0;
	return 1;
}

static void test_record(void)
{
	struct queue_envelope env, out;
	struct queue_rcpt r[3], o[3];
	unsigned char buf[4096], t[4096];
	size_t n;

	fill(&env, r, 1);
	n = ext_encode(&env, buf, sizeof buf);
	CHECK(n == ext_size(&env) && n == EXT_HEAD_MIN + 12 + 3 * EXT_RCPT_MIN + 29 + 27);
	CHECK(buf[0] == EXT_VERSION && ext_needed(&env));
	CHECK(ext_encode(&env, buf, n - 1) == 0);
	memset(&out, 0, sizeof out);
	out.rcpts = o;
	out.nrcpts = 3;
	out.rcpt_cap = 3;
	CHECK(ext_decode(buf, n, &out) == QUEUE_OK && same_dsn(&env, &out));
	/* Checked only, and into a short array. */
	out.rcpts = NULL;
	CHECK(ext_decode(buf, n, &out) == QUEUE_OK && strcmp(out.dsn_envid, env.dsn_envid) == 0);
	out.rcpts = o;
	out.rcpt_cap = 1;
	memset(o, 0, sizeof o);
	CHECK(ext_decode(buf, n, &out) == QUEUE_OK && o[0].notify == 3 && o[1].notify == 0);
	out.rcpt_cap = 3;
	/* Another count of recipients than the envelope's: corrupt. */
	out.nrcpts = 2;
	CHECK(ext_decode(buf, n, &out) == QUEUE_ECORRUPT && out.dsn_envid[0] == '\0');
	out.nrcpts = 3;
	/* Every truncation and a byte more. */
	for (size_t k = 0; k < n; k++) {
		unsigned char *h = malloc(k ? k : 1);
		memcpy(h, buf, k);
		CHECKF(ext_decode(h, k, &out) == QUEUE_ECORRUPT, "len %zu", k);
		free(h);
	}
	memcpy(t, buf, n);
	t[n] = 0;
	CHECK(ext_decode(t, n + 1, &out) == QUEUE_ECORRUPT);
	/* A changed byte: corrupt, or a record that encodes back the same. */
	for (size_t k = 0; k < n; k++) {
		static const unsigned char vals[] = { 0, 1, 2, 3, 7, 8, 9, 0x20, '+', '=', ';', 0xff };
		for (size_t v = 0; v < sizeof vals; v++) {
			memcpy(t, buf, n);
			t[k] = vals[v];
			if (ext_decode(t, n, &out) == QUEUE_OK) {
				unsigned char u[4096];
				CHECKF(ext_encode(&out, u, sizeof u) == n && memcmp(u, t, n) == 0,
				       "k=%zu v=%zu", k, v);
			}
		}
	}
	/* Values dsnparam refuses do not encode. */
	r[1].notify = DSN_NOTIFY_NEVER | DSN_NOTIFY_DELAY;
	CHECK(ext_size(&env) == 0);
	r[1].notify = 0;
	snprintf(r[1].orcpt, sizeof r[1].orcpt, "rfc822;a b");
	CHECK(ext_size(&env) == 0);
	r[1].orcpt[0] = 0;
	env.dsn_ret = 3;
	CHECK(ext_size(&env) == 0);
	env.dsn_ret = 0;
	snprintf(env.dsn_envid, sizeof env.dsn_envid, "a+0Db");
	CHECK(ext_size(&env) == 0);
	/* Nothing set: nothing needed, yet it encodes (the queue link). */
	fill(&env, r, 0);
	CHECK(!ext_needed(&env) && ext_size(&env) == EXT_HEAD_MIN + 3 * EXT_RCPT_MIN);
}

static queue_id commit(struct queue *q, struct queue_envelope *env, int raw)
{
	unsigned char rec[4096];
	struct queue_draft *d;
	queue_id id = 0;
	int res = 99;

	if ((d = queue_draft_begin(q, &id)) == NULL)
		return 0;
	CHECK(queue_draft_write(d, "Subject: x\r\n\r\nhi\r\n", 19) == QUEUE_OK);
	if (raw) {
		/* As the queue role does: the record that came over the link. */
		env->id = id;
		env->raw_len = envelope_encode(env, rec, sizeof rec);
		env->raw = rec;
	}
	CHECK(queue_commit(q, &d, &env, &res, 1) == 1 && res == QUEUE_OK);
	env->raw = NULL;
	return res == QUEUE_OK ? id : 0;
}

static int get(struct queue *q, queue_id id, struct queue_envelope *env, struct queue_rcpt r[3])
{
	memset(env, 0x55, sizeof *env);
	memset(r, 0x55, 3 * sizeof *r);
	env->rcpts = r;
	env->rcpt_cap = 3;
	return queue_get(q, id, env);
}

struct seen { size_t n, with; };

static int list_cb(void *arg, const struct queue_envelope *env)
{
	struct seen *s = arg;

	s->n++;
	if (env->dsn_envid[0] && env->rcpts[0].notify == 3 && env->rcpts[2].notify == 8 &&
	    strcmp(env->rcpts[2].orcpt, "utf-8;caf\\x{E9}@example.net") == 0)
		s->with++;
	return 0;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Run a shell command made like printf. */
static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	return system(cmd);
}

static void test_lmdb(void)
{
	char dir[256];
	struct queue *q;
	struct queue_envelope env, e2;
	struct queue_rcpt r[3], r2[3];
	queue_id a, b, c;
	struct seen s = { 0, 0 };

	new_dir(dir);
	if ((q = open_q(dir, 0)) == NULL) {
		CHECK(0);
		return;
	}
	fill(&env, r, 1);
	a = commit(q, &env, 0);
	fill(&env, r, 1);
	b = commit(q, &env, 1);
	fill(&env, r, 0);
	c = commit(q, &env, 0);
	CHECK(a && b && c);
	fill(&env, r, 1);
	CHECK(get(q, a, &e2, r2) == QUEUE_OK && same_dsn(&env, &e2));
	CHECK(get(q, b, &e2, r2) == QUEUE_OK && same_dsn(&env, &e2));
	fill(&env, r, 0);
	CHECK(get(q, c, &e2, r2) == QUEUE_OK && same_dsn(&env, &e2));
	CHECK(queue_list(q, list_cb, &s) == QUEUE_OK && s.n == 3 && s.with == 2);
	queue_close(q);

	/* The envelope records are version 1 as before: no DSN byte in them;
	 * "ext" holds the two messages that have parameters. */
	CHECK(sh("mdb_dump -p -s env '%s' | grep -q QQ314159; test $? = 1", dir) == 0);
	CHECK(sh("test $(mdb_dump -p -s ext '%s' | grep -c QQ314159) = 2", dir) == 0);

	/* A restart keeps them; a reader in another process sees them. */
	pid_t pid = fork();
	if (pid == 0) {
		struct queue *rq = open_q(dir, QUEUE_RDONLY);
		struct queue_envelope x, want;
		struct queue_rcpt xr[3], wr[3];
		fill(&want, wr, 1);
		_exit(rq != NULL && get(rq, b, &x, xr) == QUEUE_OK && same_dsn(&want, &x) ? 0 : 1);
	}
	int st;
	CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	if ((q = open_q(dir, 0)) == NULL) {
		CHECK(0);
		return;
	}
	fill(&env, r, 1);
	CHECK(get(q, a, &e2, r2) == QUEUE_OK && same_dsn(&env, &e2));

	/* The last outcome removes a and its record; its bounce, with
	 * parameters of its own, is stored with them in the same commit. */
	{
		struct queue_result res[3] = {
			{ 0, QUEUE_RCPT_DELIVERED, 0, "250 ok" },
			{ 1, QUEUE_RCPT_BOUNCED, 0, "550 no" },
			{ 2, QUEUE_RCPT_DELIVERED, 0, "250 ok" },
		};
		struct queue_envelope denv;
		struct queue_rcpt dr[3];
		struct queue_draft *d;
		queue_id did = 0;
		int result = 99, gone = 0;

		d = queue_draft_begin(q, &did);
		CHECK(d != NULL && queue_draft_write(d, "x\r\n", 3) == QUEUE_OK);
		fill(&denv, dr, 1);
		queue_update(q, a, res, 3, 0, d, &denv, &result, &gone);
		CHECK(result == QUEUE_OK && gone == 1);
		CHECK(get(q, a, &e2, r2) == QUEUE_ENOTFOUND);
		fill(&env, r, 1);
		CHECK(get(q, did, &e2, r2) == QUEUE_OK && same_dsn(&env, &e2));
		CHECK(queue_delete(q, did) == QUEUE_OK);
	}
	CHECK(queue_delete(q, c) == QUEUE_OK);
	queue_close(q);
	CHECK(sh("test $(mdb_dump -p -s ext '%s' | grep -c QQ314159) = 1", dir) == 0);

	/* What an older moat leaves: the record of a message it removed
	 * (ID 7 here), not knowing "ext".  A record of an ID with no envelope
	 * is removed when the writer opens, b's stays; a reader touches
	 * neither. */
	CHECK(sh("printf '\\\\00\\\\00\\\\00\\\\00\\\\00\\\\00\\\\00\\\\07\\n"
	         "\\\\01\\\\00\\\\00\\\\00\\\\00\\\\00\\\\00\\\\00\\n' | mdb_load -T -s ext '%s'",
	         dir) == 0);
	CHECK(sh("test $(mdb_dump -p -s ext '%s' | grep -c '^ ') = 4", dir) == 0);
	pid = fork();
	if (pid == 0) {
		struct queue *rq = open_q(dir, QUEUE_RDONLY);
		_exit(rq != NULL ? 0 : 1);
	}
	CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(sh("test $(mdb_dump -p -s ext '%s' | grep -c '^ ') = 4", dir) == 0);
	if ((q = open_q(dir, 0)) == NULL) {
		CHECK(0);
		return;
	}
	fill(&env, r, 1);
	CHECK(get(q, b, &e2, r2) == QUEUE_OK && same_dsn(&env, &e2));
	queue_close(q);
	CHECK(sh("test $(mdb_dump -p -s ext '%s' | grep -c '^ ') = 2", dir) == 0);

	/* A corrupt record for b (written behind moat's back): queue_get
	 * says so rather than deliver without the parameters. */
	{
		char key[40];
		unsigned long long id = (unsigned long long)b;
		char *p = key;
		for (int i = 7; i >= 0; i--)
			p += sprintf(p, "\\\\%02llx", (id >> (8 * i)) & 0xff);
		CHECK(sh("printf '%s\\n\\\\02\\n' | mdb_load -T -s ext '%s'", key, dir) == 0);
	}
	if ((q = open_q(dir, 0)) == NULL) {
		CHECK(0);
		return;
	}
	CHECK(get(q, b, &e2, r2) == QUEUE_ECORRUPT);
	CHECK(queue_delete(q, b) == QUEUE_OK);
	queue_close(q);
	CHECK(sh("test $(mdb_dump -p -s ext '%s' | grep -c '^ ') = 0", dir) == 0);
}

/* A queue made before "ext" existed: a copy without that database. */
static void test_no_ext_db(void)
{
	char dir[256], old[300];
	struct queue *q;
	struct queue_envelope env, e2;
	struct queue_rcpt r[3], r2[3];
	queue_id a;

	new_dir(dir);
	if ((q = open_q(dir, 0)) == NULL) {
		CHECK(0);
		return;
	}
	fill(&env, r, 0);
	a = commit(q, &env, 0);
	queue_close(q);
	snprintf(old, sizeof old, "%s.old", dir);
	CHECK(mkdir(old, 0700) == 0);
	CHECK(sh("mdb_dump -a '%s' | awk '/^database=ext$/ { skip = 1 } "
	         "/^VERSION=/ { if (hold != \"\") printf \"%%s\", hold; hold = $0 \"\\n\"; skip = 0; next } "
	         "skip || /^db_pagesize=/ { next } { hold = hold $0 \"\\n\" } "
	         "END { if (!skip) printf \"%%s\", hold }' | mdb_load '%s'", dir, old) == 0);
	CHECK(sh("! mdb_dump -s ext '%s' >/dev/null 2>&1", old) == 0);
	/* A reader takes it for a queue without parameters. */
	pid_t pid = fork();
	if (pid == 0) {
		struct queue *rq = open_q(old, QUEUE_RDONLY);
		struct queue_envelope x;
		struct queue_rcpt xr[3];
		_exit(rq != NULL && get(rq, a, &x, xr) == QUEUE_OK && x.dsn_ret == 0 &&
		      x.dsn_envid[0] == 0 && xr[0].notify == 0 && xr[2].orcpt[0] == 0 ? 0 : 1);
	}
	int st;
	CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* The writer makes it, and stores parameters from then on. */
	if ((q = open_q(old, 0)) == NULL) {
		CHECK(0);
		return;
	}
	CHECK(get(q, a, &e2, r2) == QUEUE_OK && e2.dsn_ret == 0 && r2[0].notify == 0);
	fill(&env, r, 1);
	a = commit(q, &env, 0);
	CHECK(get(q, a, &e2, r2) == QUEUE_OK && same_dsn(&env, &e2));
	queue_close(q);
}

static int rm_one(const char *p, const struct stat *s, int flag, struct FTW *f)
{
	(void)s; (void)flag; (void)f;
	return remove(p);
}

int main(void)
{
	if (mkdtemp(base) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_record);
	RUN(test_lmdb);
	RUN(test_no_ext_db);
	if (!t_total_failed)
		nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return t_main_end();
}
