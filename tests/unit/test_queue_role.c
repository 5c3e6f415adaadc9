/*
 * tests/unit/test_qrole.c -- a real queue role (queue_role_main(), mta/roles/roles.h)
 * on a real LMDB queue, forked from this process as the supervisor forks
 * it (sandboxed: the run uid when root, Landlock on the queue directory),
 * fed its client links over a real plink (SOCK_SEQPACKET, SCM_RIGHTS).
 *
 * Link A is an smtp client through mta/net/queue_client.h and commits a message.  Every
 * other link is handed over fresh and sent one kind of garbage -- an
 * unknown type, a wrong length, a byte left over, a request its kind may
 * not send, a head with a nonzero pad, a length over QW_MAX: the queue
 * role must close that link (EOF within 2 s), keep serving link A with
 * the queue unchanged, and stay alive.  Drafts die with their link (the
 * spool file goes) and are no other link's to commit.  Closing the plink
 * ends the role with status 0; the queue on disk then holds exactly what
 * was acknowledged.
 */
#include "t.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mta/ops/loaded_config.h"
#include "mta/net/log.h"
#include "mta/net/plink.h"
#include "mta/net/qwire.h"
#include "mta/roles/queue_role.h"
#include "mta/net/queue_client.h"
#include "queue/envelope.h"
#include "queue/queue.h"

static char dir[PATH_MAX], qdir[PATH_MAX + 16];
static struct config *cfg;
static pid_t qpid = -1;
static int plink_fd = -1;
static struct ev_loop loop;       /* the links' (qc_wait() runs them) */
static struct qc *A;
static uint64_t expect_msgs;      /* what link A's usage must say */
static queue_id committed[2];

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The queue role's status within ms: its exit code, 128 + signal, or -1. */
static int reap(pid_t pid, int ms)
{
	int st;

	for (int i = 0; i < ms / 10; i++) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (r < 0 && errno != EINTR)
			return -1;
		usleep(10000);
	}
	return -1;
}

static int alive(void)
{
	int st;

	return qpid > 0 && waitpid(qpid, &st, WNOHANG) == 0;
}

/* A new client link of kind, handed to the queue role; our end. */
static int give_link(unsigned kind)
{
	struct plink_msg m;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return -1;
	memset(&m, 0, sizeof m);
	m.type = PLINK_FD;
	m.kind = kind;
	if (plink_send(plink_fd, &m, sv[1]) != 0) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	close(sv[1]);
	return sv[0];
}

/* Wait up to ms for fd to be closed by the queue role: 0 at EOF with
 * nothing read before it, 1 if bytes came first, -1 not closed in time
 * (or a read error). */
static int closed_within(int fd, int ms)
{
	double end = now_s() + ms / 1000.0;
	int got = 0;

	for (;;) {
		struct pollfd pf = { fd, POLLIN, 0 };
		int left = (int)((end - now_s()) * 1000);
		char b[256];
		ssize_t n;

		if (left <= 0 || poll(&pf, 1, left) <= 0)
			return -1;
		n = recv(fd, b, sizeof b, MSG_DONTWAIT);
		if (n == 0)
			return got;
		if (n > 0)
			got = 1;
		else if (errno != EAGAIN && errno != EINTR)
			return -1;
	}
}

/* ---- the client side, one answer at a time (qc_wait) ---- */

struct answer {
	int rc;
	struct qw_rep rep;     /* the scalars; data is not kept */
	uint64_t id, size;     /* COMMIT: the first message's */
	int64_t received;
};

static void answer_cb(void *arg, const struct qw_rep *rep)
{
	struct answer *a = arg;

	a->rc = rep != NULL ? rep->rc : QUEUE_EIO;
	if (rep == NULL)
		return;
	a->rep = *rep;
	a->rep.data = NULL;
	if (rep->type == (QW_COMMIT | QW_REPLY) && rep->n == 1)
		qw_commit_result(rep, 0, &a->rc, &a->id, &a->received, &a->size);
}

static int ask(struct qc *c, uint64_t ticket, struct answer *a)
{
	qc_wait(c, ticket);
	return a->rc;
}

static struct qc *new_link(unsigned kind)
{
	return qc_new(&loop, give_link(kind), NULL, NULL, NULL, NULL);
}

/* A new draft's ID, or 0. */
static queue_id begin(struct qc *c)
{
	struct answer a = { 0 };

	return ask(c, qc_draft_begin(c, answer_cb, &a), &a) == QUEUE_OK ? a.rep.id : 0;
}

static int usage(struct qc *c, const struct queue_envelope *env, struct queue_usage *u,
                 struct queue_space *sp)
{
	struct answer a = { 0 };
	int rc = ask(c, qc_usage(c, env, answer_cb, &a), &a);

	*u = a.rep.usage;
	*sp = a.rep.space;
	return rc;
}

/* Commit the draft env->id names: its result; env's id, size and
 * received as the queue role set them. */
static int commit(struct qc *c, struct queue_envelope *env)
{
	struct answer a = { 0 };
	struct queue_envelope *envp = env;
	int rc = ask(c, qc_commit(c, &envp, 1, answer_cb, &a), &a);

	if (rc == QUEUE_OK) {
		env->id = a.id;
		env->size = a.size;
		env->received = a.received;
	}
	return rc;
}

/* Link A still answers, with the queue as it was; the role is alive. */
static void a_still_works(const char *after)
{
	struct queue_usage u;
	struct queue_space sp;

	CHECKF(usage(A, NULL, &u, &sp) == QUEUE_OK, "after %s", after);
	CHECKF(u.messages == expect_msgs, "after %s: %llu messages, want %llu", after,
	       (unsigned long long)u.messages, (unsigned long long)expect_msgs);
	CHECKF(alive(), "after %s", after);
}

static struct queue_rcpt env_rcpt;

static void make_env(struct queue_envelope *e, queue_id id)
{
	memset(e, 0, sizeof *e);
	memset(&env_rcpt, 0, sizeof env_rcpt);
	e->id = id;
	strcpy(e->sender, "alice@example.test");
	strcpy(e->helo, "client.example.test");
	strcpy(e->client, "192.0.2.1");
	strcpy(env_rcpt.addr, "bob@example.test");
	/* DSN parameters travel with the envelope and are stored apart. */
	env_rcpt.notify = DSN_NOTIFY_SUCCESS;
	strcpy(env_rcpt.orcpt, "rfc822;bob+2Bold@example.test");
	e->dsn_ret = DSN_RET_HDRS;
	strcpy(e->dsn_envid, "ID+2B42");
	e->rcpts = &env_rcpt;
	e->nrcpts = e->rcpt_cap = 1;
}

static const char body[] = "Subject: qrole\r\n\r\nhello over the wire\r\n";

/* ---- start ---- */

static void test_start(void)
{
	const char *build = getenv("BUILD");
	char path[PATH_MAX + 16], err[512];
	FILE *f;
	int sv[2];

	snprintf(dir, sizeof dir, "%s/t", build && *build ? build : "build");
	mkdir(dir, 0755);
	snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "/qrole-XXXXXX");
	if (mkdtemp(dir) == NULL) {
		snprintf(dir, sizeof dir, "/tmp/qrole-XXXXXX");
		CHECK(mkdtemp(dir) != NULL);
	}
	/* The run uid must reach its queue (as under /var/lib). */
	CHECK(chmod(dir, 0755) == 0);
	if (dir[0] != '/') {
		char abs[PATH_MAX];

		CHECK(realpath(dir, abs) != NULL);
		memcpy(dir, abs, sizeof dir);
	}
	snprintf(qdir, sizeof qdir, "%s/queue", dir);
	snprintf(path, sizeof path, "%s/moat.conf", dir);
	CHECK((f = fopen(path, "w")) != NULL);
	if (f == NULL)
		return;
	fprintf(f, "# written by tests/unit/test_qrole.c\n"
	           "hostname mx.test\nlisten 127.0.0.1:25\ndomain example.test\n"
	           "queue %s\ndelivery off\n", qdir);
	fclose(f);
	cfg = config_load(path, err, sizeof err);
	CHECKF(cfg != NULL, "%s", err);
	if (cfg == NULL)
		return;
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
	fflush(NULL);
	qpid = fork();
	if (qpid == 0) {
		close(sv[0]);
		_exit(queue_role_main(cfg, sv[1]));
	}
	close(sv[1]);
	plink_fd = sv[0];
	CHECK(qpid > 0);
}

/* /proc/PID/status field name's first number, or -1. */
static long status_field(pid_t pid, const char *name)
{
	char path[64], line[256];
	size_t n = strlen(name);
	long v = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, name, n) == 0 && line[n] == ':')
			v = strtol(line + n + 1, NULL, 10);
	fclose(f);
	return v;
}

/* ---- a message through link A ---- */

static void test_commit(void)
{
	struct queue_envelope env;
	struct queue_usage u;
	struct queue_space sp;
	queue_id id = 0;
	int result = -99;

	if (qpid <= 0) {
		CHECK(0);
		return;
	}
	A = new_link(PLINK_SMTP_CLIENT);
	CHECK(A != NULL && !qc_broken(A));
	if (A == NULL)
		return;
	CHECK((id = begin(A)) != 0);
	if (id == 0)
		return;
	CHECK(qc_draft_write(A, id, body, sizeof body - 1) == 0);
	make_env(&env, id);
	result = commit(A, &env);
	CHECKF(result == QUEUE_OK, "%d", result);
	CHECK(env.id == id && env.size == sizeof body - 1 && env.received > 0);
	committed[0] = id;
	expect_msgs = 1;
	/* It answered: it is in its sandbox (the run uid when we are root). */
	CHECK(status_field(qpid, "Uid") ==
	      (geteuid() == 0 ? (long)cfg->conf.run_uid : (long)geteuid()));
	CHECK(status_field(qpid, "NoNewPrivs") == 1);
	CHECK(usage(A, NULL, &u, &sp) == QUEUE_OK);
	CHECK(u.messages == 1 && u.bytes == sizeof body - 1);
	CHECK(sp.map_free > 0);
	/* The envelope named in a usage request: charged to its client. */
	CHECK(usage(A, &env, &u, &sp) == QUEUE_OK);
	CHECK(u.client_messages == 1);
	a_still_works("the commit");
}

/* ---- garbage, one kind per fresh link ---- */

struct garbage {
	const char *what;
	unsigned kind;              /* the link's */
	unsigned char b[64];
	size_t len;
};

static size_t frame(unsigned char *b, uint16_t type, uint32_t len, const void *p, size_t n)
{
	qw_head_encode(b, type, len);
	if (n)
		memcpy(b + QW_HEAD, p, n);
	return QW_HEAD + n;
}

static void test_garbage(void)
{
	static const unsigned char zeros[16];
	static struct garbage g[16];
	size_t n = 0;

	if (A == NULL || !alive()) {
		CHECK(0);
		return;
	}
	g[n] = (struct garbage){ "an unknown type", PLINK_SMTP_CLIENT, {0}, 0 };
	g[n].len = frame(g[n].b, 0x0777, 0, NULL, 0), n++;
	g[n] = (struct garbage){ "type 0", PLINK_SMTP_CLIENT, {0}, 0 };
	g[n].len = frame(g[n].b, 0, 0, NULL, 0), n++;
	g[n] = (struct garbage){ "type QW_NTYPES", PLINK_DELIVERY_CLIENT, {0}, 0 };
	g[n].len = frame(g[n].b, QW_NTYPES, 8, zeros, 8), n++;
	g[n] = (struct garbage){ "a reply from a client", PLINK_SMTP_CLIENT, {0}, 0 };
	g[n].len = frame(g[n].b, QW_PROBE | QW_REPLY, 4, zeros, 4), n++;
	g[n] = (struct garbage){ "a kick from a client", PLINK_DELIVERY_CLIENT, {0}, 0 };
	g[n].len = frame(g[n].b, QW_KICK, 0, NULL, 0), n++;
	g[n] = (struct garbage){ "PROBE of 7 bytes", PLINK_SMTP_CLIENT, {0}, 0 };
	g[n].len = frame(g[n].b, QW_PROBE, 7, zeros, 7), n++;
	g[n] = (struct garbage){ "OLDEST with a byte", PLINK_SMTP_CLIENT, {0}, 0 };
	g[n].len = frame(g[n].b, QW_OLDEST, 1, zeros, 1), n++;
	g[n] = (struct garbage){ "PROBE with a byte left over", PLINK_SMTP_CLIENT, {0}, 0 };
	g[n].len = frame(g[n].b, QW_PROBE, 9, zeros, 9), n++;
	g[n] = (struct garbage){ "DUE with a byte left over", PLINK_DELIVERY_CLIENT, {0}, 0 };
	g[n].len = frame(g[n].b, QW_DUE, 13, "\0\0\0\0\0\0\0\0\0\0\0\x01\0", 13), n++;
	g[n] = (struct garbage){ "DUE from an smtp link", PLINK_SMTP_CLIENT, {0}, 0 };
	g[n].len = frame(g[n].b, QW_DUE, 12, "\0\0\0\0\0\0\0\0\0\0\0\x01", 12), n++;
	g[n] = (struct garbage){ "HOLD from an smtp link", PLINK_SMTP_CLIENT, {0}, 0 };
	g[n].len = frame(g[n].b, QW_HOLD, 9, "\0\0\0\0\0\0\0\x01\x01", 9), n++;
	g[n] = (struct garbage){ "DELETE from an smtp link", PLINK_SMTP_CLIENT, {0}, 0 };
	g[n].len = frame(g[n].b, QW_DELETE, 8, "\0\0\0\0\0\0\0\x01", 8), n++;
	g[n] = (struct garbage){ "a head with a nonzero pad", PLINK_SMTP_CLIENT, {0}, 0 };
	g[n].len = frame(g[n].b, QW_OLDEST, 0, NULL, 0);
	g[n].b[3] = 1, n++;
	g[n] = (struct garbage){ "a frame of QW_MAX+1 bytes", PLINK_SMTP_CLIENT, {0}, 0 };
	g[n].len = frame(g[n].b, QW_DRAFT_WRITE, QW_MAX + 1, NULL, 0), n++;

	for (size_t i = 0; i < n; i++) {
		int fd = give_link(g[i].kind), rc;
		double t0 = now_s();

		CHECKF(fd >= 0, "%s", g[i].what);
		if (fd < 0)
			continue;
		CHECKF(send(fd, g[i].b, g[i].len, MSG_NOSIGNAL) == (ssize_t)g[i].len, "%s", g[i].what);
		rc = closed_within(fd, 2000);
		CHECKF(rc == 0, "%s: %d after %.2f s", g[i].what, rc, now_s() - t0);
		close(fd);
		a_still_works(g[i].what);
	}
}

/* A valid COMMIT -- of link A's own draft -- sent on a delivery link,
 * which may not commit: the link is closed, nothing is stored, and the
 * draft stays link A's (it commits there). */
static void test_commit_from_delivery(void)
{
	static unsigned char env_bytes[1024];
	struct wire_wr o = { 0 };
	struct queue_envelope env;
	queue_id id = 0;
	size_t el;
	int fd;

	if (A == NULL || !alive()) {
		CHECK(0);
		return;
	}
	CHECK((id = begin(A)) != 0);
	if (id == 0)
		return;
	CHECK(qc_draft_write(A, id, body, sizeof body - 1) == 0);
	make_env(&env, id);
	{
		struct wire_wr w;
		wire_wr_init(&w, env_bytes, sizeof env_bytes);
		qw_env(&w, &env);
		el = wire_wr_end(&w);
	}
	CHECK(el > 0);
	qw_begin(&o, QW_COMMIT);
	wire_put_u32(&o, 1);
	wire_put_u64(&o, id);
	wire_put_u32(&o, (uint32_t)el);
	wire_put_bytes(&o, env_bytes, el);
	CHECK(qw_end(&o) == 0);
	fd = give_link(PLINK_DELIVERY_CLIENT);
	CHECK(fd >= 0 && send(fd, o.buf, o.len, MSG_NOSIGNAL) == (ssize_t)o.len);
	CHECK(closed_within(fd, 2000) == 0);
	close(fd);
	a_still_works("a COMMIT from a delivery link");
	/* The same frame from another smtp link: not its draft, refused. */
	fd = give_link(PLINK_SMTP_CLIENT);
	CHECK(fd >= 0 && send(fd, o.buf, o.len, MSG_NOSIGNAL) == (ssize_t)o.len);
	{
		unsigned char b[QW_HEAD + 4 + QW_COMMIT_RESULT];
		struct qw_rep rep;
		uint16_t t;
		uint32_t l;
		uint64_t rid, sz;
		int64_t rcv;
		int rc = 0;
		size_t got = 0;
		struct pollfd pf = { fd, POLLIN, 0 };

		while (got < sizeof b && poll(&pf, 1, 2000) == 1) {
			ssize_t k = recv(fd, b + got, sizeof b - got, 0);

			if (k <= 0)
				break;
			got += (size_t)k;
		}
		CHECK(got == sizeof b);
		CHECK(qw_head_decode(b, &t, &l) == 0 && t == (QW_COMMIT | QW_REPLY) &&
		      l == 4 + QW_COMMIT_RESULT);
		CHECK(qw_rep_decode(t, b + QW_HEAD, l, &rep) == 0 && rep.n == 1);
		if (rep.n == 1)
			qw_commit_result(&rep, 0, &rc, &rid, &rcv, &sz);
		CHECKF(rc == QUEUE_EIO && rid == 0, "%d", rc);
	}
	close(fd);
	a_still_works("a COMMIT of another link's draft");
	/* Its own link commits it. */
	CHECK(commit(A, &env) == QUEUE_OK && env.id == id);
	committed[1] = id;
	expect_msgs = 2;
	a_still_works("the second commit");
	qw_free(&o);
}

/* Drafts of a link the queue role drops, or whose client goes away, are
 * aborted: their spool files go, and committing them fails. */
static int spool_exists(queue_id id)
{
	char path[PATH_MAX + 48], name[QUEUE_ID_TEXT];
	struct stat st;

	queue_id_format(id, name);
	snprintf(path, sizeof path, "%s/incoming/%s", qdir, name);
	return stat(path, &st) == 0;
}

/* A draft of more than QUEUE_DRAFT_MEM bytes (so it is in a spool file)
 * on a new smtp link; NULL on failure. */
static struct qc *spilled_draft(queue_id *id)
{
	static unsigned char big[3 * QUEUE_DRAFT_MEM];
	struct qc *c = new_link(PLINK_SMTP_CLIENT);
	struct queue_usage u;
	struct queue_space sp;

	memset(big, 'x', sizeof big);
	if (c == NULL || (*id = begin(c)) == 0) {
		qc_free(c);
		return NULL;
	}
	CHECK(qc_draft_write(c, *id, big, sizeof big) == 0);
	/* A round trip: the writes before it are done. */
	CHECK(usage(c, NULL, &u, &sp) == QUEUE_OK);
	CHECK(spool_exists(*id));
	return c;
}

static void test_dropped_drafts(void)
{
	struct queue_envelope env;
	queue_id id = 0;
	struct qc *c;
	unsigned char h[QW_HEAD];
	int i;

	if (A == NULL || !alive()) {
		CHECK(0);
		return;
	}
	/* Dropped by the queue role for garbage. */
	CHECK((c = spilled_draft(&id)) != NULL);
	if (c == NULL)
		return;
	qw_head_encode(h, 0x0999, 0);
	CHECK(send(qc_fd(c), h, sizeof h, MSG_NOSIGNAL) == (ssize_t)sizeof h);
	CHECK(closed_within(qc_fd(c), 2000) == 0);
	CHECK(!spool_exists(id));
	make_env(&env, id);
	CHECK(commit(c, &env) == QUEUE_EIO);
	CHECK(qc_broken(c));
	qc_free(c);
	a_still_works("a dropped link's draft");

	/* The client goes away. */
	CHECK((c = spilled_draft(&id)) != NULL);
	if (c == NULL)
		return;
	qc_set_fd(c, -1);      /* closed: the abort below sends nothing */
	qc_draft_abort(c, id);
	qc_free(c);
	for (i = 0; i < 200 && spool_exists(id); i++)
		usleep(10000);
	CHECK(!spool_exists(id));
	a_still_works("a closed link's draft");
}

/* Closing the plink ends the queue role, status 0; the queue on disk
 * holds the two messages acknowledged, nothing else. */
static void test_stop(void)
{
	struct queue_options qo = { 0, QUEUE_RDONLY };
	struct queue_stats st;
	struct queue_envelope e;
	struct queue_rcpt r[2];
	struct queue *q;
	char err[512];
	double t0;

	if (qpid <= 0) {
		CHECK(0);
		return;
	}
	t0 = now_s();
	close(plink_fd);
	plink_fd = -1;
	CHECK(reap(qpid, 5000) == 0);
	CHECKF(now_s() - t0 < 5.0, "%.2f s", now_s() - t0);
	qpid = -1;
	/* Link A is closed with it. */
	CHECK(closed_within(qc_fd(A), 2000) == 0);
	qc_free(A);
	A = NULL;

	q = queue_open(qdir, &qo, err, sizeof err);
	CHECKF(q != NULL, "%s", err);
	if (q == NULL)
		return;
	CHECK(queue_stats(q, &st) == QUEUE_OK && st.messages == 2);
	for (int i = 0; i < 2; i++) {
		memset(&e, 0, sizeof e);
		e.rcpts = r;
		e.rcpt_cap = 2;
		CHECK(queue_get(q, committed[i], &e) == QUEUE_OK);
		CHECK(e.id == committed[i] && e.nrcpts == 1 && strcmp(e.sender, "alice@example.test") == 0 &&
		      strcmp(r[0].addr, "bob@example.test") == 0 && e.size == sizeof body - 1);
		CHECK(e.dsn_ret == DSN_RET_HDRS && strcmp(e.dsn_envid, "ID+2B42") == 0 &&
		      r[0].notify == DSN_NOTIFY_SUCCESS &&
		      strcmp(r[0].orcpt, "rfc822;bob+2Bold@example.test") == 0);
	}
	queue_close(q);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return (flag == FTW_DP ? rmdir(path) : unlink(path)) == 0 ? 0 : -1;
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	log_init("test_queue_role", LOG_WARN);
	if (ev_init(&loop) < 0)
		return 1;
	RUN(test_start);
	RUN(test_commit);
	RUN(test_garbage);
	RUN(test_commit_from_delivery);
	RUN(test_dropped_drafts);
	RUN(test_stop);
	if (qpid > 0) {
		kill(qpid, SIGKILL);
		reap(qpid, 2000);
	}
	config_unref(cfg);
	ev_free(&loop);
	/* Kept for a look when something failed. */
	if (t_total_failed == 0 && dir[0] == '/' && nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0) {
		printf("FAIL: cleanup of %s\n", dir);
		t_total_failed++;
	}
	return t_main_end();
}
