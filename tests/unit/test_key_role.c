/*
 * tests/unit/test_key_role.c -- the key role (mta/roles/key_role.h, mta/net/key_client.h) with real
 * parts: a key role process forked on a SOCK_SEQPACKET socketpair, real
 * TLS handshakes in memory between tls_server_new() on creds that sign
 * through it and a client (tls_client_new(), or BearSSL's own client to
 * choose RSA key exchange and TLS 1.0), a killed, a stopped and a lying
 * key role, and a scan of this process's memory for the private key.
 *
 * The keys are tests/unit/testkeys.h's.
 */
#include "t.h"
#include "testkeys.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bearssl.h>

#include "mta/net/keymsg.h"

/* A message by its first six fields (the DKIM ones zero). */
#define KM(t, i, h, o, d, l) { .type = (t), .id = (i), .hash_id = (h), .ok = (o), .data = (d), .len = (l) }
#include "mta/net/key_client.h"
#include "mta/roles/key_role.h"
#include "mta/net/log.h"
#include "mta/net/tls.h"
#include "policy/pem.h"

#if !defined(__SANITIZE_ADDRESS__)
/* The private halves as raw bytes: the EC scalar, the first 32 bytes of
 * the RSA prime p.  Read-only data: the memory scan never sees these. */
static const unsigned char ec_secret[] = {
	0x43, 0x5e, 0xee, 0x67, 0x89, 0x7e, 0x32, 0xc6, 0x21, 0xb5, 0x5e, 0xa4, 0x2c, 0x44, 0x1b,
	0xd1, 0x19, 0x78, 0xb0, 0xd7, 0x70, 0x23, 0x7f, 0x5b, 0xe9, 0x60, 0xcf, 0xd1, 0x17, 0x9b,
	0x1a, 0x34,
};
static const unsigned char rsa_secret[] = {
	0xf6, 0x4f, 0x08, 0xeb, 0x66, 0x5d, 0x42, 0xce, 0x0b, 0x07, 0xc4, 0x7c, 0x90, 0xfa, 0x8a,
	0xb6, 0xf6, 0x28, 0x23, 0x87, 0xe5, 0x76, 0x65, 0x18, 0x29, 0x98, 0x62, 0x07, 0x4b, 0xaf,
	0x41, 0xde,
};
#endif

static struct tls_creds *load(const char *cert, const char *key)
{
	char err[256] = "";
	struct tls_creds *c = tls_creds_load(cert, strlen(cert), "cert", key, strlen(key), "key",
	                                     err, sizeof err);
	if (c == NULL)
		fprintf(stderr, "tls_creds_load: %s\n", err);
	return c;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Fork a key role serving creds; *fd gets the smtp role's end. */
static pid_t spawn_key_role(struct tls_creds *creds, int *fd)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) != 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		_exit(key_role_serve(sv[1], creds));
	}
	close(sv[1]);
	*fd = sv[0];
	return pid;
}

/* waitpid with a bound: the exit code, 128 + signal, or -1. */
static int reap(pid_t pid)
{
	int st;

	for (int i = 0; i < 1000; i++) {
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

/* ---- a handshake in memory ---- */

/* One end: our struct tls, or a bare BearSSL engine. */
struct end {
	struct tls *t;
	br_ssl_engine_context *eng;
};

static const unsigned char *end_out(struct end *e, size_t *len)
{
	const unsigned char *p;

	if (e->t)
		return tls_net_out(e->t, len);
	if ((p = br_ssl_engine_sendrec_buf(e->eng, len)) == NULL)
		*len = 0;
	return p;
}

static void end_out_done(struct end *e, size_t n)
{
	if (e->t)
		tls_net_out_done(e->t, n);
	else
		br_ssl_engine_sendrec_ack(e->eng, n);
}

static unsigned char *end_in(struct end *e, size_t *cap)
{
	unsigned char *p;

	if (e->t)
		return tls_net_in(e->t, cap);
	if ((p = br_ssl_engine_recvrec_buf(e->eng, cap)) == NULL)
		*cap = 0;
	return p;
}

static void end_in_done(struct end *e, size_t n)
{
	if (e->t)
		tls_net_in_done(e->t, n);
	else
		br_ssl_engine_recvrec_ack(e->eng, n);
}

/* 0 handshake, 1 open, 2 closed or failed. */
static int end_state(struct end *e)
{
	if (e->t) {
		enum tls_state s = tls_state(e->t);
		return s == TLS_HANDSHAKE ? 0 : s == TLS_OPEN ? 1 : 2;
	}
	unsigned st = br_ssl_engine_current_state(e->eng);
	if (st == BR_SSL_CLOSED)
		return 2;
	return (st & BR_SSL_SENDAPP) ? 1 : 0;
}

static size_t xfer(struct end *from, struct end *to)
{
	size_t len, cap;
	const unsigned char *o = end_out(from, &len);
	unsigned char *i;

	if (len == 0)
		return 0;
	if ((i = end_in(to, &cap)) == NULL || cap == 0)
		return 0;
	if (len > cap)
		len = cap;
	memcpy(i, o, len);
	end_in_done(to, len);
	end_out_done(from, len);
	return len;
}

/* Pump until both ends are open (1) or one gives up (0); then check that
 * application data flows from the server to the client. */
static int handshake(struct end *srv, struct end *cli)
{
	for (int i = 0; i < 1000; i++) {
		size_t moved = xfer(srv, cli) + xfer(cli, srv);
		int ss = end_state(srv), cs = end_state(cli);

		if (ss == 2 || cs == 2)
			return 0;
		if (ss == 1 && cs == 1)
			break;
		if (moved == 0)
			return 0;
	}
	if (end_state(srv) != 1 || end_state(cli) != 1)
		return 0;
	if (tls_app_write(srv->t, "ping", 4) != 4)
		return 0;
	tls_app_flush(srv->t);
	/* TLS 1.0 CBC records come split 1/n-1: collect what arrives. */
	char got[8];
	size_t have = 0;
	for (int i = 0; i < 10 && have < 4; i++) {
		size_t len = 0;
		const unsigned char *p;

		xfer(srv, cli);
		if (cli->t)
			p = tls_app_in(cli->t, &len);
		else if ((p = br_ssl_engine_recvapp_buf(cli->eng, &len)) == NULL)
			len = 0;
		if (len > sizeof got - have)
			len = sizeof got - have;
		if (len > 0) {
			memcpy(got + have, p, len);
			have += len;
			if (cli->t)
				tls_app_in_done(cli->t, len);
			else
				br_ssl_engine_recvapp_ack(cli->eng, len);
		}
	}
	return have == 4 && memcmp(got, "ping", 4) == 0;
}

/* A handshake with tls_client_new() (no anchors); the server's error in *err. */
static int hs_tls_client(struct tls_creds *creds, unsigned flags, int *err)
{
	struct end s = { tls_server_new(creds, flags), NULL };
	struct end c = { tls_client_new("keyrole.test", NULL), NULL };
	int ok = 0;

	if (s.t != NULL && c.t != NULL) {
		ok = handshake(&s, &c);
		*err = tls_error(s.t);
	}
	tls_free(s.t);
	tls_free(c.t);
	return ok;
}

/* A handshake with BearSSL's client offering one suite at one version,
 * checking the server against the certificate's own key. */
static int hs_bearssl(struct tls_creds *creds, const char *cert, uint16_t suite, unsigned version)
{
	static unsigned char der[4096];
	static br_x509_decoder_context dc;
	static br_ssl_client_context cc;
	static br_x509_minimal_context xm;
	static br_x509_knownkey_context kk;
	static unsigned char iobuf[BR_SSL_BUFSIZE_BIDI];
	struct pem_block b;
	const char *why;
	size_t pos = 0;
	const br_x509_pkey *pk;

	if (pem_next(cert, strlen(cert), &pos, &b, der, sizeof der, &why) != PEM_OK)
		return 0;
	br_x509_decoder_init(&dc, NULL, NULL);
	br_x509_decoder_push(&dc, der, b.derlen);
	if ((pk = br_x509_decoder_get_pkey(&dc)) == NULL || pk->key_type != BR_KEYTYPE_RSA)
		return 0;
	br_ssl_client_init_full(&cc, &xm, NULL, 0);
	br_x509_knownkey_init_rsa(&kk, &pk->key.rsa, BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN);
	br_ssl_engine_set_x509(&cc.eng, &kk.vtable);
	br_ssl_engine_set_suites(&cc.eng, &suite, 1);
	br_ssl_engine_set_versions(&cc.eng, version, version);
	br_ssl_engine_set_buffer(&cc.eng, iobuf, sizeof iobuf, 1);
	if (!br_ssl_client_reset(&cc, "keyrole.test", 0))
		return 0;

	struct end s = { tls_server_new(creds, TLS_LEGACY), NULL };
	struct end c = { NULL, &cc.eng };
	int ok = s.t != NULL && handshake(&s, &c);
	br_ssl_session_parameters sp;

	br_ssl_engine_get_session_parameters(&cc.eng, &sp);
	if (ok && (sp.cipher_suite != suite || br_ssl_engine_get_version(&cc.eng) != version))
		ok = 0;
	if (!ok)
		fprintf(stderr, "hs_bearssl: client error %d, server error %d\n",
		        br_ssl_engine_last_error(&cc.eng), s.t ? tls_error(s.t) : -1);
	tls_free(s.t);
	return ok;
}

/* ---- the tests ---- */

/* The key role signs for an EC key; a killed one fails the next
 * handshake at once, a restarted one on a new link works again. */
static void test_ec_sign_kill_restart(void)
{
	struct tls_creds *sup = load(ec_cert, ec_key), *smtp = load(ec_cert, ec_key);
	int fd = -1, err = 0;
	pid_t pid;
	double t0;

	CHECK(sup != NULL && smtp != NULL);
	if (sup == NULL || smtp == NULL)
		return;
	/* No key role yet (fd -1): the key is gone, handshakes fail. */
	CHECK(tls_creds_use_key_role(smtp, -1) == 0);
	CHECK(key_client_broken(smtp) == 1);
	CHECK(hs_tls_client(smtp, 0, &err) == 0);
	CHECK((pid = spawn_key_role(sup, &fd)) > 0);
	CHECK(tls_creds_use_key_role(smtp, fd) == 0);
	CHECK(key_client_broken(smtp) == 0);
	CHECK(strcmp(tls_creds_describe(smtp), "EC-P256") == 0);
	CHECK(tls_creds_modlen(smtp) == 0);
	CHECK(hs_tls_client(smtp, 0, &err) == 1);
	CHECK(hs_tls_client(smtp, TLS_LEGACY, &err) == 1);
	CHECK(key_client_broken(smtp) == 0);
	CHECK(key_client_broken(sup) == 0);

	kill(pid, SIGKILL);
	CHECK(reap(pid) == 128 + SIGKILL);
	t0 = now_s();
	CHECK(hs_tls_client(smtp, 0, &err) == 0);
	CHECKF(err != 0, "err %d", err);
	CHECK(hs_tls_client(smtp, 0, &err) == 0);     /* the link stays broken */
	CHECKF(now_s() - t0 < 2.0, "%.2f s", now_s() - t0);
	CHECK(key_client_broken(smtp) == 1);
	close(fd);

	CHECK((pid = spawn_key_role(sup, &fd)) > 0);
	CHECK(tls_creds_use_key_role(smtp, fd) == 0);
	CHECK(key_client_broken(smtp) == 0);
	CHECK(hs_tls_client(smtp, 0, &err) == 1);
	CHECK(hs_tls_client(smtp, 0, &err) == 1);
	close(fd);
	CHECK(reap(pid) == 0);                      /* EOF: the key role ends cleanly */
	tls_creds_unref(sup);
	tls_creds_unref(smtp);
}

/* An RSA key: ECDHE_RSA signatures at TLS 1.2 (SHA-256) and TLS 1.0
 * (MD5+SHA-1), and the RSA key exchange (rsa_decrypt), all remote. */
static void test_rsa_sign_decrypt(void)
{
	struct tls_creds *sup = load(rsa_cert, rsa_key), *smtp = load(rsa_cert, rsa_key);
	int fd = -1, err = 0;
	pid_t pid;

	CHECK(sup != NULL && smtp != NULL);
	if (sup == NULL || smtp == NULL)
		return;
	CHECK((pid = spawn_key_role(sup, &fd)) > 0);
	CHECK(tls_creds_use_key_role(smtp, fd) == 0);
	CHECK(strcmp(tls_creds_describe(smtp), "RSA-2048") == 0);
	CHECK(tls_creds_modlen(smtp) == 256);
	CHECK(hs_tls_client(smtp, 0, &err) == 1);
	CHECK(hs_bearssl(smtp, rsa_cert, BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, BR_TLS12) == 1);
	CHECK(hs_bearssl(smtp, rsa_cert, BR_TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, BR_TLS10) == 1);
	CHECK(hs_bearssl(smtp, rsa_cert, BR_TLS_RSA_WITH_AES_128_GCM_SHA256, BR_TLS12) == 1);
	CHECK(hs_bearssl(smtp, rsa_cert, BR_TLS_RSA_WITH_AES_128_CBC_SHA, BR_TLS10) == 1);

	kill(pid, SIGKILL);
	CHECK(reap(pid) == 128 + SIGKILL);
	CHECK(hs_bearssl(smtp, rsa_cert, BR_TLS_RSA_WITH_AES_128_GCM_SHA256, BR_TLS12) == 0);
	close(fd);
	CHECK((pid = spawn_key_role(sup, &fd)) > 0);
	CHECK(tls_creds_use_key_role(smtp, fd) == 0);
	CHECK(hs_bearssl(smtp, rsa_cert, BR_TLS_RSA_WITH_AES_128_GCM_SHA256, BR_TLS12) == 1);
	close(fd);
	CHECK(reap(pid) == 0);
	tls_creds_unref(sup);
	tls_creds_unref(smtp);
}

/* A stopped key role: the handshake fails after the 5 s bound, not later. */
static void test_stopped_key_role(void)
{
	struct tls_creds *sup = load(ec_cert, ec_key), *smtp = load(ec_cert, ec_key);
	int fd = -1, err = 0;
	pid_t pid;
	double t0, dt;

	if (sup == NULL || smtp == NULL) {
		CHECK(0);
		return;
	}
	CHECK((pid = spawn_key_role(sup, &fd)) > 0);
	CHECK(tls_creds_use_key_role(smtp, fd) == 0);
	kill(pid, SIGSTOP);
	t0 = now_s();
	CHECK(hs_tls_client(smtp, 0, &err) == 0);
	dt = now_s() - t0;
	CHECKF(dt >= KEYROLE_TIMEOUT_MS / 1000.0 - 0.1 && dt < KEYROLE_TIMEOUT_MS / 1000.0 + 1.5,
	       "%.2f s", dt);
	/* Broken now: a late reply is never taken for a new request. */
	kill(pid, SIGCONT);
	t0 = now_s();
	CHECK(hs_tls_client(smtp, 0, &err) == 0);
	CHECKF(now_s() - t0 < 1.0, "%.2f s", now_s() - t0);
	close(fd);
	CHECK(reap(pid) == 0);   /* its reply unread, the link reset: an end, not an error */
	tls_creds_unref(sup);
	tls_creds_unref(smtp);
}

/* Send one packet to a fresh key role, which must drop the link (111).
 * With a valid request first, its reply is checked too. */
static int key_role_exit_after(struct tls_creds *sup, const unsigned char *pkt, size_t len)
{
	unsigned char buf[KEYMSG_MAX + 8];
	struct keymsg q = KM(KEYMSG_SIGN_REQ, 77, 4, 0, NULL, 32), r;
	unsigned char hv[32];
	const char *why;
	int fd = -1, rc;
	pid_t pid = spawn_key_role(sup, &fd);
	size_t n;
	ssize_t got;

	if (pid < 0)
		return -1;
	memset(hv, 0x5a, sizeof hv);
	q.data = hv;
	n = keymsg_encode(buf, sizeof buf, 0, &q);
	CHECK(send(fd, buf, n, 0) == (ssize_t)n);
	got = recv(fd, buf, sizeof buf, 0);
	CHECK(got > 0 && keymsg_decode(buf, (size_t)got, 0, &r, &why) == 0);
	CHECK(got > 0 && r.type == KEYMSG_SIGN_REP && r.id == 77 && r.ok == 1 && r.len > 64);
	CHECK(send(fd, pkt, len, 0) == (ssize_t)len);
	rc = reap(pid);
	close(fd);
	return rc;
}

static void test_malformed_request(void)
{
	struct tls_creds *sup = load(ec_cert, ec_key);
	unsigned char p[KEYMSG_MAX + 2];
	struct keymsg q = KM(KEYMSG_SIGN_REQ, 1, 4, 0, NULL, 32);
	size_t n;

	if (sup == NULL) {
		CHECK(0);
		return;
	}
	memset(p, 0, sizeof p);
	q.data = p + 100;
	n = keymsg_encode(p, sizeof p, 0, &q);
	p[n] = 0;
	CHECK(key_role_exit_after(sup, p, n + 1) == 111);        /* a byte left over */
	CHECK(key_role_exit_after(sup, p, n - 1) == 111);        /* truncated */
	p[3] = 9;
	CHECK(key_role_exit_after(sup, p, n) == 111);            /* unknown type */
	p[3] = KEYMSG_SIGN_REP;
	CHECK(key_role_exit_after(sup, p, n) == 111);            /* a reply as a request */
	p[3] = KEYMSG_SIGN_REQ;
	p[12] = 1;                                               /* MD5 alone */
	CHECK(key_role_exit_after(sup, p, n) == 111);
	p[12] = 4;
	p[11] = 40;                                              /* the header lies */
	CHECK(key_role_exit_after(sup, p, n) == 111);
	/* An RSA decryption asked of an EC key. */
	memset(p, 0, sizeof p);
	p[3] = KEYMSG_DECRYPT_REQ;
	p[10] = 1;                                               /* 256 bytes */
	CHECK(key_role_exit_after(sup, p, KEYMSG_HDR + 256) == 111);
	/* Longer than any message. */
	CHECK(key_role_exit_after(sup, p, sizeof p) == 111);
	CHECK(key_role_exit_after(sup, p, 3) == 111);
	tls_creds_unref(sup);
}

/* A key role that answers wrongly: the handshake fails cleanly, the link
 * is never used again (the fake counts the requests after its lie). */
enum lie { LIE_ID, LIE_TYPE, LIE_LEFTOVER, LIE_FLAG, LIE_HUGE_SIG, LIE_CLOSE };

static void fake_key_role(int fd, enum lie how)
{
	unsigned char buf[2 * KEYMSG_MAX];
	static unsigned char sig[KEYMSG_SIG_MAX];
	struct keymsg q, r;
	const char *why;
	ssize_t n = recv(fd, buf, sizeof buf, 0);
	size_t len;
	int later = 0;

	if (n <= 0 || keymsg_decode(buf, (size_t)n, 0, &q, &why) != 0)
		_exit(100);
	if (how == LIE_CLOSE)
		_exit(0);
	r = (struct keymsg)KM(KEYMSG_SIGN_REP, q.id, 0, 1, sig, 70);
	if (how == LIE_ID)
		r.id++;
	if (how == LIE_TYPE)
		r.type = KEYMSG_DECRYPT_REP, r.len = KEYMSG_PMS;
	if (how == LIE_HUGE_SIG)
		r.len = KEYMSG_SIG_MAX;
	len = keymsg_encode(buf, sizeof buf, 0, &r);
	if (how == LIE_LEFTOVER)
		buf[len++] = 0;
	if (how == LIE_FLAG)
		buf[KEYMSG_HDR] = 2;
	if (send(fd, buf, len, 0) != (ssize_t)len)
		_exit(101);
	while (recv(fd, buf, sizeof buf, 0) > 0)
		later++;
	_exit(later);
}

static void test_lying_key_role(void)
{
	struct tls_creds *smtp = load(ec_cert, ec_key);

	if (smtp == NULL) {
		CHECK(0);
		return;
	}
	for (int how = LIE_ID; how <= LIE_CLOSE; how++) {
		int sv[2], err = 0;
		pid_t pid;
		double t0;

		CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
		if ((pid = fork()) == 0) {
			close(sv[0]);
			fake_key_role(sv[1], (enum lie)how);
		}
		close(sv[1]);
		CHECK(tls_creds_use_key_role(smtp, sv[0]) == 0);
		t0 = now_s();
		CHECKF(hs_tls_client(smtp, 0, &err) == 0, "lie %d", how);
		/* LIE_HUGE_SIG is a well-formed reply with a wrong signature: the
		 * client rejects it; the link stays up (the fake answers once). */
		CHECKF(key_client_broken(smtp) == (how != LIE_HUGE_SIG), "lie %d", how);
		if (how != LIE_HUGE_SIG) {
			CHECKF(err != 0, "lie %d", how);
			CHECKF(hs_tls_client(smtp, 0, &err) == 0, "lie %d", how);
		}
		CHECKF(now_s() - t0 < 2.0, "lie %d: %.2f s", how, now_s() - t0);
		close(sv[0]);
		CHECKF(reap(pid) == 0, "lie %d", how);
	}
	tls_creds_unref(smtp);
}

#if !defined(__SANITIZE_ADDRESS__)
/* Does any writable mapping of this process (heap, data, anonymous;
 * not the stack) hold needle? */
static int in_memory(const unsigned char *needle, size_t n)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int found = 0;

	if (f == NULL)
		return -1;
	while (!found && fgets(line, sizeof line, f) != NULL) {
		unsigned long lo, hi;
		char perm[8], path[256] = "";

		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %255s", &lo, &hi, perm, path) < 3)
			continue;
		if (perm[0] != 'r' || perm[1] != 'w' || strcmp(path, "[stack]") == 0 ||
		    strcmp(path, "[vvar]") == 0)
			continue;
		if (memmem((const void *)lo, hi - lo, needle, n) != NULL)
			found = 1;
	}
	fclose(f);
	return found;
}

/* After tls_creds_use_key_role() the key is nowhere in this process's
 * writable memory (checked in a child, as the smtp role would be forked:
 * it inherits the supervisor's creds and wipes them). */
static void key_wiped(const char *cert, const char *key, const unsigned char *secret, size_t n,
                      int no_fd)
{
	struct tls_creds *c = load(cert, key);
	int sv[2];
	pid_t pid;

	CHECK(c != NULL);
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
	if ((pid = fork()) == 0) {
		if (in_memory(secret, n) != 1)
			_exit(2);     /* the scan must see the loaded key */
		if (tls_creds_use_key_role(c, no_fd ? -1 : sv[0]) != 0)
			_exit(3);
		_exit(in_memory(secret, n) == 0 ? 0 : 1);
	}
	CHECK(reap(pid) == 0);
	close(sv[0]);
	close(sv[1]);
	tls_creds_unref(c);
}

static void test_key_wiped(void)
{
	key_wiped(ec_cert, ec_key, ec_secret, sizeof ec_secret, 0);
	key_wiped(rsa_cert, rsa_key, rsa_secret, sizeof rsa_secret, 0);
	key_wiped(ec_cert, ec_key, ec_secret, sizeof ec_secret, 1);   /* a role without a key role */
}
#endif

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	log_init("test_key_role", LOG_WARN);
	RUN(test_ec_sign_kill_restart);
	RUN(test_rsa_sign_decrypt);
	RUN(test_malformed_request);
	RUN(test_lying_key_role);
#if !defined(__SANITIZE_ADDRESS__)
	/* ASan's allocator reserves terabytes of address space: no scan. */
	RUN(test_key_wiped);
#endif
	RUN(test_stopped_key_role);
	return t_main_end();
}
