/*
 * tests/unit/test_dkim_client.c -- the DKIM link (mta/net/dkim_client.h),
 * the key role's DKIM side (mta/roles/key_role.h) and one message's steps
 * to a signature (mta/smtp/dkim_signer.h), with real parts: a key role
 * process forked on a SOCK_SEQPACKET socketpair serving a real key
 * (tests/unit/testkeys.h's RSA-2048), the event loop, signatures checked
 * with the key's public half.  Then a stopped, a killed and lying key
 * roles: every request is answered once, on time, and a signature that
 * does not verify never makes a header.
 */
#include "t.h"
#include "testkeys.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mta/net/dkim_client.h"
#include "mta/net/ev.h"
#include "mta/net/keymsg.h"
#include "mta/ops/dkim_key.h"
#include "mta/roles/key_role.h"
#include "mta/smtp/dkim_signer.h"
#include "policy/conf.h"
#include "policy/dkim.h"

static struct conf cf;
static struct dkim_key *keys[CONF_MAX_DKIM];
static struct ev_loop loop;

/* ---- a key role, real or lying ---- */

/* Fork a key role serving cf's keys on a DKIM link; *fd: the client's end. */
static pid_t spawn_key_role(int *fd)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		return -1;
	if ((pid = fork()) == 0) {
		struct key_role_links k = { -1, NULL, sv[1], &cf, keys };

		close(sv[0]);
		_exit(key_role_serve_links(&k));
	}
	close(sv[1]);
	*fd = sv[0];
	return pid;
}

/* waitpid with a bound: the exit code, 128 + signal, or -1. */
static int reap(pid_t pid)
{
	int st;

	for (int i = 0; i < 500; i++) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (r < 0 && errno != EINTR)
			return -1;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

/* How a lying key role answers the first request it reads. */
enum lie { LIE_ID, LIE_TYPE, LIE_TLS_TYPE, LIE_GARBAGE, LIE_BAD_SIGNATURE, LIE_UNASKED };

static pid_t spawn_liar(enum lie how, int *fd)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		return -1;
	if ((pid = fork()) == 0) {
		unsigned char in[KEYMSG_MAX], out[KEYMSG_MAX], sig[256];
		struct keymsg q, r;
		const char *why;
		ssize_t n;
		size_t len;

		close(sv[0]);
		if (how == LIE_UNASKED) {
			memset(&r, 0, sizeof r);
			r.type = KEYMSG_DKIM_SIGN_REP;
			r.id = 1;
			len = keymsg_encode(out, sizeof out, 0, &r);
			keymsg_send(sv[1], out, len, &why);
		}
		n = keymsg_recv(sv[1], in, &why);
		if (n == 0)
			_exit(0);   /* the client hung up first */
		if (n < 0 || keymsg_decode(in, (size_t)n, 0, &q, &why) != 0)
			_exit(1);
		memset(&r, 0, sizeof r);
		memset(sig, 0x5a, sizeof sig);
		r.type = how == LIE_TYPE ? KEYMSG_DKIM_KEY_REP
		       : how == LIE_TLS_TYPE ? KEYMSG_SIGN_REP : KEYMSG_DKIM_SIGN_REP;
		r.id = how == LIE_ID ? q.id + 1 : q.id;
		r.ok = how != LIE_TYPE;
		r.data = r.ok ? sig : NULL;
		r.len = r.ok ? sizeof sig : 0;
		len = keymsg_encode(out, sizeof out, 0, &r);
		if (how == LIE_GARBAGE)
			len = (size_t)snprintf((char *)out, sizeof out, "250 OK");
		keymsg_send(sv[1], out, len, &why);
		/* Stay until the client hangs up. */
		while (keymsg_recv(sv[1], in, &why) > 0)
			;
		_exit(0);
	}
	close(sv[1]);
	*fd = sv[0];
	return pid;
}

/* ---- what the callbacks saw ---- */

struct rec {
	int           done;
	int           order;        /* callbacks before this one */
	int           rep;          /* a reply came */
	unsigned      ok;
	const char   *why;
	unsigned char data[KEYMSG_MOD_MAX];
	size_t        len;
	char          domain[KEYMSG_DOMAIN_MAX + 1], selector[KEYMSG_SEL_MAX + 1];
	char          headers[KEYMSG_HLIST_MAX + 1];
	size_t        explen;
};

static int ncalls, want_calls;

/* memcpy, but a field that is absent (NULL, 0) copies nothing. */
static void copy(void *dst, const void *src, size_t len)
{
	if (len > 0)
		memcpy(dst, src, len);
}

static void rec_cb(void *arg, const struct keymsg *rep, const char *why)
{
	struct rec *r = arg;

	CHECK(!r->done);   /* at most once */
	r->done = 1;
	r->order = ncalls++;
	r->why = why;
	r->rep = rep != NULL;
	CHECK((rep == NULL) == (why != NULL));
	if (rep != NULL) {
		r->ok = rep->ok;
		r->len = rep->len;
		copy(r->data, rep->data, rep->len);
		copy(r->domain, rep->domain, rep->domainlen);
		r->domain[rep->domainlen] = 0;
		copy(r->selector, rep->selector, rep->selectorlen);
		r->selector[rep->selectorlen] = 0;
		copy(r->headers, rep->headers, rep->headerslen);
		r->headers[rep->headerslen] = 0;
		r->explen = rep->explen;
	}
	if (ncalls >= want_calls)
		ev_stop(&loop);
}

static void guard_cb(struct ev_loop *l, struct ev_timer *t)
{
	(void)t;
	ev_stop(l);
}

/* Run the loop until n more callbacks ran, at most ms. */
static void run_for(int n, int64_t ms)
{
	struct ev_timer guard = { 0, 0, guard_cb, NULL };

	want_calls = ncalls + n;
	ev_timer_start(&loop, &guard, ms);
	loop.stop = 0;
	ev_run(&loop);
	ev_timer_stop(&loop, &guard);
}

static int64_t now_ms(void)
{
	return ev_monotonic_ms();
}

static const unsigned char hash[32] = "a SHA-256 this test signs......";

/* sig verifies with keys[0]'s public half? */
static int verifies(const unsigned char *sig, size_t len)
{
	const unsigned char *n, *e;
	size_t nlen, elen;

	dkim_key_public(keys[0], &n, &nlen, &e, &elen);
	return dkim_rsa_verify(n, nlen, e, elen, hash, sig, len);
}

/* ---- the cases ---- */

static void test_sign_and_key(void)
{
	int fd;
	pid_t pid = spawn_key_role(&fd);
	struct dkc *c = dkc_new(&loop, fd);
	struct rec a = { 0 }, b = { 0 }, k1 = { 0 }, k2 = { 0 }, k3 = { 0 };
	const unsigned char *n, *e;
	size_t nlen, elen;

	CHECK(c != NULL && dkc_linked(c));
	dkc_sign(c, "example.org", "sel", hash, rec_cb, &a);
	dkc_sign(c, "example.org", "nosuch", hash, rec_cb, &b);    /* refused, not fatal */
	dkc_key(c, "mail.sub.org", rec_cb, &k1);
	dkc_key(c, "other.org", rec_cb, &k2);
	dkc_key(c, "example.org", rec_cb, &k3);
	CHECK(!a.done && !b.done && !k1.done);   /* never from inside a call */
	run_for(5, 10000);
	CHECK(a.done && a.rep && a.ok == 1 && a.len == 256 && verifies(a.data, a.len));
	CHECK(b.done && b.rep && b.ok == 0 && b.len == 0);
	CHECK(k1.done && k1.ok == 1 && strcmp(k1.domain, "*.sub.org") == 0 &&
	      strcmp(k1.selector, "s2") == 0 && strcmp(k1.headers, "from:subject:from") == 0);
	dkim_key_public(keys[1], &n, &nlen, &e, &elen);
	CHECK(k1.len == nlen && memcmp(k1.data, n, nlen) == 0 && k1.explen == elen);
	CHECK(k2.done && k2.rep && k2.ok == 0);
	CHECK(k3.done && k3.ok == 1 && strcmp(k3.domain, "example.org") == 0 &&
	      strcmp(k3.selector, "sel") == 0 && k3.headers[0] == 0);
	CHECK(a.order == 0 && b.order == 1 && k1.order == 2 && k2.order == 3 && k3.order == 4);
	CHECK(dkc_linked(c));
	dkc_free(c);
	CHECK(reap(pid) == 0);   /* the link closed: the key role ends */
}

static void test_pipelined_and_cancelled(void)
{
	int fd;
	pid_t pid = spawn_key_role(&fd);
	struct dkc *c = dkc_new(&loop, fd);
	static struct rec r[60];
	uint64_t t[60];

	memset(r, 0, sizeof r);
	for (int i = 0; i < 60; i++)
		t[i] = dkc_sign(c, "example.org", "sel", hash, rec_cb, &r[i]);
	dkc_cancel(c, t[5]);
	dkc_cancel(c, t[59]);
	dkc_cancel(c, 0);             /* no such ticket: nothing */
	run_for(58, 30000);
	for (int i = 0, prev = -1; i < 60; i++) {
		if (i == 5 || i == 59) {
			CHECK(!r[i].done);
			continue;
		}
		CHECKF(r[i].done && r[i].ok == 1 && verifies(r[i].data, r[i].len), "request %d", i);
		CHECKF(r[i].order > prev, "request %d out of order", i);
		prev = r[i].order;
	}
	/* The cancelled one's answer was read and dropped: the link goes on. */
	struct rec x = { 0 };
	dkc_sign(c, "example.org", "sel", hash, rec_cb, &x);
	run_for(1, 10000);
	CHECK(x.done && x.ok == 1);
	dkc_free(c);
	CHECK(reap(pid) == 0);
}

static void test_no_link(void)
{
	struct dkc *c = dkc_new(&loop, -1);
	struct rec a = { 0 }, b = { 0 };
	int64_t t0 = now_ms();

	CHECK(!dkc_linked(c) && dkc_fd(c) == -1);
	dkc_sign(c, "example.org", "sel", hash, rec_cb, &a);
	dkc_key(c, "example.org", rec_cb, &b);
	CHECK(!a.done && !b.done);
	run_for(2, 5000);
	CHECK(a.done && !a.rep && a.why != NULL && strcmp(a.why, "no link to the key role") == 0);
	CHECK(b.done && !b.rep);
	CHECK(now_ms() - t0 < 1000);   /* at once, not after the patience */
	/* A request the key role would not take: refused here. */
	int fd;
	pid_t pid = spawn_key_role(&fd);
	struct rec d = { 0 };
	dkc_set_fd(c, fd);
	dkc_sign(c, "exa mple.org", "sel", hash, rec_cb, &d);
	run_for(1, 5000);
	CHECK(d.done && !d.rep && strcmp(d.why, "not a request the key role takes") == 0);
	CHECK(dkc_linked(c));
	dkc_free(c);
	CHECK(reap(pid) == 0);
}

static void test_wait(void)
{
	int fd;
	pid_t pid = spawn_key_role(&fd);
	struct dkc *c = dkc_new(&loop, fd);
	struct rec a = { 0 }, b = { 0 };

	ncalls = 0;
	want_calls = 1000;
	dkc_wait(c, dkc_sign(c, "example.org", "sel", hash, rec_cb, &a));
	CHECK(a.done && a.ok == 1 && verifies(a.data, a.len));
	dkc_wait(c, dkc_key(c, "x.sub.org", rec_cb, &b));
	CHECK(b.done && b.ok == 1);
	dkc_wait(c, 12345);   /* nothing waiting: returns */
	dkc_free(c);
	CHECK(reap(pid) == 0);
	c = dkc_new(&loop, -1);
	memset(&a, 0, sizeof a);
	dkc_wait(c, dkc_sign(c, "example.org", "sel", hash, rec_cb, &a));
	CHECK(a.done && !a.rep);
	dkc_free(c);
}

/* SIGSTOP: one patience, then at once; SIGCONT: the late answer is
 * dropped and the link serves again. */
static void test_stopped(void)
{
	int fd;
	pid_t pid = spawn_key_role(&fd);
	struct dkc *c = dkc_new(&loop, fd);
	struct rec a = { 0 }, b = { 0 }, x = { 0 };
	int64_t t0;

	kill(pid, SIGSTOP);
	t0 = now_ms();
	dkc_sign(c, "example.org", "sel", hash, rec_cb, &a);
	run_for(1, DKC_TIMEOUT_MS + 3000);
	CHECK(a.done && !a.rep && strcmp(a.why, "no answer in time") == 0);
	CHECK(now_ms() - t0 >= DKC_TIMEOUT_MS - 50 && now_ms() - t0 < DKC_TIMEOUT_MS + 2000);
	t0 = now_ms();
	dkc_sign(c, "example.org", "sel", hash, rec_cb, &b);
	run_for(1, 2000);
	CHECK(b.done && !b.rep && strcmp(b.why, "the key role does not answer") == 0);
	CHECK(now_ms() - t0 < 1000 && dkc_linked(c));
	kill(pid, SIGCONT);
	/* The first may still be in its way: try until one is answered. */
	for (int i = 0; i < 50 && !(x.done && x.rep); i++) {
		memset(&x, 0, sizeof x);
		dkc_sign(c, "example.org", "sel", hash, rec_cb, &x);
		run_for(1, 5000);
		if (!x.rep)
			usleep(50000);
	}
	CHECK(x.done && x.rep && x.ok == 1 && verifies(x.data, x.len));
	dkc_free(c);
	CHECK(reap(pid) == 0);
}

/* SIGKILL with requests on their way: each fails once; then a new link. */
static void test_killed(void)
{
	int fd;
	pid_t pid = spawn_key_role(&fd);
	struct dkc *c = dkc_new(&loop, fd);
	struct rec r[3], after = { 0 }, again = { 0 };

	memset(r, 0, sizeof r);
	kill(pid, SIGSTOP);
	for (int i = 0; i < 3; i++)
		dkc_sign(c, "example.org", "sel", hash, rec_cb, &r[i]);
	kill(pid, SIGKILL);
	CHECK(reap(pid) == 128 + SIGKILL);
	run_for(3, 5000);
	for (int i = 0; i < 3; i++)
		CHECKF(r[i].done && !r[i].rep && strcmp(r[i].why, "the key role closed the link") == 0,
		       "request %d: %s", i, r[i].why ? r[i].why : "");
	CHECK(!dkc_linked(c));
	dkc_sign(c, "example.org", "sel", hash, rec_cb, &after);
	run_for(1, 5000);
	CHECK(after.done && strcmp(after.why, "no link to the key role") == 0);
	pid = spawn_key_role(&fd);
	dkc_set_fd(c, fd);
	dkc_sign(c, "example.org", "sel", hash, rec_cb, &again);
	run_for(1, 5000);
	CHECK(again.done && again.ok == 1);
	dkc_free(c);
	CHECK(reap(pid) == 0);
}

/* A key role that answers wrongly breaks the link (every waiter hears
 * once); one that signs wrongly makes no header. */
static void test_lying(void)
{
	static const struct { enum lie how; const char *why; } lies[] = {
		{ LIE_ID, "an answer to another request" },
		{ LIE_TYPE, "an answer of the wrong type" },
		{ LIE_TLS_TYPE, "an answer of the wrong type" },
		{ LIE_GARBAGE, "short header" },
		{ LIE_UNASKED, "no link to the key role" },
	};

	for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
		int fd = -1;
		pid_t pid = spawn_liar(lies[i].how, &fd);
		struct dkc *c = dkc_new(&loop, fd);
		struct rec a = { 0 }, b = { 0 };

		if (lies[i].how == LIE_UNASKED) {
			/* Its answer comes before any question: read, the link
			 * breaks ("an answer nobody asked for"). */
			usleep(100000);
			run_for(0, 300);
			CHECK(!dkc_linked(c));
		}
		dkc_sign(c, "example.org", "sel", hash, rec_cb, &a);
		dkc_sign(c, "example.org", "sel", hash, rec_cb, &b);
		run_for(2, 5000);
		CHECKF(a.done && !a.rep && strcmp(a.why, lies[i].why) == 0, "lie %zu: %s", i,
		       a.why ? a.why : "(a reply)");
		CHECKF(b.done && !b.rep, "lie %zu: the second request", i);
		CHECK(!dkc_linked(c));
		dkc_free(c);
		CHECK(reap(pid) == 0);
	}
}

/* Feed msg to a new state, end it, choose the key of line li. */
static struct dks *begin(const char *msg, size_t li)
{
	struct dks *d = dks_new();
	char domain[ADDR_DOMAIN_MAX + 1];

	CHECK(d != NULL);
	for (size_t k = 0; msg[k]; k++)   /* byte by byte: any split */
		dks_feed(d, msg + k, 1);
	CHECK(dks_end(d, domain) == 0 && strcmp(domain, li == 0 ? "example.org" : "a.sub.org") == 0);
	CHECK(dks_use_line(d, &cf.dkim[li], keys[li]) == 0);
	CHECK(dks_prepare(d, 1765000000) == 0);
	return d;
}

static int signed_ok;
static void signed_cb(void *arg, struct dks *d, int ok)
{
	(void)arg;
	(void)d;
	signed_ok = ok;
	ev_stop(&loop);
}

static void test_signer(void)
{
	static const char msg[] = "From: A <a@example.org>\r\nSubject: hi\r\n\r\nbody\r\n";
	static const char msg2[] = "From: a@a.sub.org\r\nSubject: hi\r\n\r\nbody\r\n";
	int fd;
	pid_t pid = spawn_key_role(&fd);
	struct dkc *c = dkc_new(&loop, fd);
	struct dks *d = begin(msg, 0);
	struct ev_timer guard = { 0, 0, guard_cb, NULL };

	CHECK(!dks_present(d));
	signed_ok = -1;
	dks_ask(d, c, signed_cb, NULL);
	ev_timer_start(&loop, &guard, 10000);
	loop.stop = 0;
	ev_run(&loop);
	ev_timer_stop(&loop, &guard);
	CHECK(signed_ok == 1 && d->outlen > 0 && d->outlen < sizeof d->out);
	CHECK(strncmp(d->out, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; "
	              "s=sel;", 70) == 0);
	/* The signed message carries our signature: a loop-back. */
	struct dks *again = dks_new();
	char domain[ADDR_DOMAIN_MAX + 1];
	dks_feed(again, d->out, d->outlen);
	dks_feed(again, msg, strlen(msg));
	CHECK(dks_end(again, domain) == 0 && dks_use_line(again, &cf.dkim[0], keys[0]) == 0);
	CHECK(dks_present(again));
	dks_free(again);
	dks_free(d);

	/* The key the key role names (the delivery role's way). */
	struct rec k = { 0 };
	dkc_wait(c, dkc_key(c, "a.sub.org", rec_cb, &k));
	CHECK(k.ok == 1);
	d = dks_new();
	dks_feed(d, msg2, strlen(msg2));
	CHECK(dks_end(d, domain) == 0);
	struct keymsg rep;
	memset(&rep, 0, sizeof rep);
	rep.type = KEYMSG_DKIM_KEY_REP;
	rep.ok = 1;
	rep.domain = k.domain;
	rep.domainlen = strlen(k.domain);
	rep.selector = k.selector;
	rep.selectorlen = strlen(k.selector);
	rep.headers = k.headers;
	rep.headerslen = strlen(k.headers);
	rep.data = k.data;
	rep.len = k.len;
	const unsigned char *n, *e;
	size_t nlen, elen;
	dkim_key_public(keys[1], &n, &nlen, &e, &elen);
	rep.exp = e;
	rep.explen = elen;
	CHECK(dks_use_rep(d, &rep) == 0);
	CHECK(strcmp(d->domain, "sub.org") == 0 && strcmp(d->line, "*.sub.org") == 0 &&
	      strcmp(d->selector, "s2") == 0);
	CHECK(dks_prepare(d, 1765000000) == 0);
	signed_ok = -1;
	dkc_wait(c, dks_ask(d, c, signed_cb, NULL));
	CHECKF(signed_ok == 1 && strstr(d->out, " d=sub.org; s=s2;") != NULL &&
	       strstr(d->out, "h=from:from:subject;") != NULL, "%d %s", signed_ok, d->out);
	dks_free(d);
	rep.ok = 0;
	d = dks_new();
	CHECK(dks_use_rep(d, &rep) == -1 && d->why != NULL);
	dks_free(d);
	dkc_free(c);
	CHECK(reap(pid) == 0);
}

/* What dks_finish() makes of each answer: only a signature that verifies
 * with the chosen public half makes a header. */
static void test_finish_checks(void)
{
	struct dks *d = begin("From: a@example.org\r\n\r\nx\r\n", 0);
	unsigned char sig[512];
	size_t len = dkim_key_sign(keys[0], d->pend.hash, sig, sizeof sig);
	struct keymsg rep;

	CHECK(len == 256);
	memset(&rep, 0, sizeof rep);
	rep.type = KEYMSG_DKIM_SIGN_REP;
	rep.ok = 1;
	rep.data = sig;
	rep.len = len;
	CHECK(dks_finish(d, NULL, "no answer in time") == -1 && strcmp(d->why, "no answer in time") == 0);
	rep.ok = 0;
	CHECK(dks_finish(d, &rep, NULL) == -1 && strcmp(d->why, "the key role did not sign") == 0);
	rep.ok = 1;
	sig[17] ^= 0x40;
	CHECK(dks_finish(d, &rep, NULL) == -1 && strcmp(d->why, "the signature does not verify") == 0);
	CHECK(d->outlen == 0);
	sig[17] ^= 0x40;
	rep.len = len - 1;
	CHECK(dks_finish(d, &rep, NULL) == -1);
	rep.len = len;
	rep.type = KEYMSG_DKIM_KEY_REP;
	CHECK(dks_finish(d, &rep, NULL) == -1);
	rep.type = KEYMSG_DKIM_SIGN_REP;
	/* Another public half than the key that signed: refused. */
	d->n[40] ^= 1;
	CHECK(dks_finish(d, &rep, NULL) == -1 && strcmp(d->why, "the signature does not verify") == 0);
	d->n[40] ^= 1;
	CHECK(dks_finish(d, &rep, NULL) == 0 && d->outlen > 0);
	dks_free(d);
	/* A header block over the cap: its From: is read, it cannot be signed. */
	d = dks_new();
	char domain[ADDR_DOMAIN_MAX + 1];
	static char big[DKS_HDR_CAP + 100];
	memset(big, 0, sizeof big);
	strcpy(big, "From: a@example.org\r\nX-Big: ");
	memset(big + strlen(big), 'x', DKS_HDR_CAP);
	dks_feed(d, big, strlen(big));
	dks_feed(d, "\r\n\r\nbody\r\n", 10);
	CHECK(dks_end(d, domain) == 0 && d->big && strcmp(domain, "example.org") == 0);
	CHECK(dks_use_line(d, &cf.dkim[0], keys[0]) == 0);
	CHECK(dks_prepare(d, 1) == -1 && strcmp(d->why, "the header block is too large to sign") == 0);
	dks_free(d);
	/* No From: no key can be chosen. */
	d = dks_new();
	dks_feed(d, "Subject: x\r\n\r\n", 14);
	CHECK(dks_end(d, domain) == -1 && d->why != NULL);
	CHECK(dks_use_line(d, &cf.dkim[0], NULL) == -1);
	dks_free(d);
}

/* A key role that sends back a signature that is not one: no header. */
static void test_lying_signature(void)
{
	int fd = -1;
	pid_t pid = spawn_liar(LIE_BAD_SIGNATURE, &fd);
	struct dkc *c = dkc_new(&loop, fd);
	struct dks *d = begin("From: a@example.org\r\n\r\nx\r\n", 0);

	signed_ok = -1;
	dkc_wait(c, dks_ask(d, c, signed_cb, NULL));
	CHECK(signed_ok == 0 && strcmp(d->why, "the signature does not verify") == 0 &&
	      d->outlen == 0);
	CHECK(dkc_linked(c));   /* well-formed: the link stays, the message is refused */
	dks_free(d);
	dkc_free(c);
	CHECK(reap(pid) == 0);
}

/* The key role drops a link that sends it a TLS request, or garbage. */
static void test_key_role_refuses(void)
{
	static const unsigned char tls_req[] = { 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 33, 4,
		1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
		25, 26, 27, 28, 29, 30, 31, 32 };
	static const unsigned char garbage[] = "EHLO key role\r\n";
	const unsigned char *pkts[] = { tls_req, garbage };
	size_t lens[] = { sizeof tls_req, sizeof garbage - 1 };

	for (size_t i = 0; i < 2; i++) {
		int fd;
		pid_t pid = spawn_key_role(&fd);
		const char *why;

		CHECK(keymsg_send(fd, pkts[i], lens[i], &why) == 0);
		CHECKF(reap(pid) == 111, "packet %zu", i);
		close(fd);
	}
}

int main(void)
{
	static const char text[] = "dkim-sign example.org sel /k1\n"
	                           "dkim-sign *.sub.org s2 /k2 headers From:Subject:From\n";
	char err[300] = "";

	signal(SIGPIPE, SIG_IGN);
	conf_defaults(&cf);
	if (conf_parse(text, strlen(text), "t.conf", &cf, err, sizeof err) != 0 ||
	    ev_init(&loop) != 0) {
		fprintf(stderr, "setup: %s\n", err);
		return 1;
	}
	for (size_t i = 0; i < 2; i++)
		keys[i] = dkim_key_load(rsa_key, strlen(rsa_key), "rsa_key", err, sizeof err);
	if (keys[0] == NULL || keys[1] == NULL) {
		fprintf(stderr, "key: %s\n", err);
		return 1;
	}
	RUN(test_sign_and_key);
	RUN(test_pipelined_and_cancelled);
	RUN(test_no_link);
	RUN(test_wait);
	RUN(test_stopped);
	RUN(test_killed);
	RUN(test_lying);
	RUN(test_signer);
	RUN(test_finish_checks);
	RUN(test_lying_signature);
	RUN(test_key_role_refuses);
	for (size_t i = 0; i < 2; i++)
		dkim_key_free(keys[i]);
	ev_free(&loop);
	return t_main_end();
}
