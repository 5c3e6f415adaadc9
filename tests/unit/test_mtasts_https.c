/*
 * tests/unit/test_mtasts_https.c -- the MTA-STS policy fetch against a
 * real HTTPS server: python's http.server behind ssl, with a certificate
 * from a CA openssl makes for this run.
 *
 * The delivery role will drive the fetch on the shared connection pump;
 * here a small blocking loop does it (a socket, tls_client_new() with the
 * CA as tls-ca-file, mtasts_fetch_request(), mtasts_fetch_feed/eof), so
 * that the request and the reader meet a real server's bytes: a policy by
 * Content-Length, chunked and until the close; a redirect, HTML, a body
 * over 64 KiB and a 404, refused; a server whose certificate does not
 * name mta-sts.DOMAIN, or does not come from the CA, refused by the TLS
 * check.  Each virtual host is a case (the server reads Host:).
 */
#include "t.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mta/net/tls.h"
#include "policy/mtasts.h"
#include "policy/mtasts_fetch.h"

static char dir[] = "/tmp/moat-sts-https-XXXXXX";
static pid_t server = -1;
static int port;
static struct tls_anchors *anchors;

static const char policy[] =
	"version: STSv1\nmode: enforce\nmx: mail.good.test\nmx: *.good.test\nmax_age: 604800\n";

static const char mkpki[] =
	"set -e; cd '%s'; exec 2>openssl.log\n"
	"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key "
	"  -out ca.pem -days 30 -subj '/CN=moat sts test CA' "
	"  -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign'\n"
	"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout rogue.key "
	"  -out rogue.pem -days 30 -subj '/CN=rogue CA'\n"
	"openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key "
	"  -out srv.csr -subj '/CN=mta-sts.good.test'\n"
	"printf 'subjectAltName=DNS:mta-sts.good.test,DNS:mta-sts.chunked.test,"
	"DNS:mta-sts.close.test,DNS:mta-sts.redirect.test,DNS:mta-sts.html.test,"
	"DNS:mta-sts.big.test,DNS:mta-sts.missing.test\\n' >srv.ext\n"
	"openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem "
	"  -days 30 -extfile srv.ext\n";

/* The server: one virtual host per case. */
static const char server_py[] =
	"import http.server, ssl, sys\n"
	"POLICY = sys.argv[3].encode()\n"
	"class H(http.server.BaseHTTPRequestHandler):\n"
	"    protocol_version = 'HTTP/1.1'\n"
	"    def log_message(self, *a): pass\n"
	"    def head(self, code, ctype, extra=()):\n"
	"        self.send_response(code)\n"
	"        self.send_header('Content-Type', ctype)\n"
	"        for k, v in extra: self.send_header(k, v)\n"
	"        self.send_header('Connection', 'close')\n"
	"        self.end_headers()\n"
	"    def do_GET(self):\n"
	"        host = self.headers.get('Host', '')\n"
	"        self.close_connection = True\n"
	"        if self.path != '/.well-known/mta-sts.txt' or host == 'mta-sts.missing.test':\n"
	"            return self.head(404, 'text/plain', [('Content-Length', '0')])\n"
	"        if host == 'mta-sts.good.test':\n"
	"            self.head(200, 'text/plain; charset=utf-8', [('Content-Length', str(len(POLICY)))])\n"
	"            self.wfile.write(POLICY)\n"
	"        elif host == 'mta-sts.chunked.test':\n"
	"            self.head(200, 'text/plain', [('Transfer-Encoding', 'chunked')])\n"
	"            for i in range(0, len(POLICY), 7):\n"
	"                c = POLICY[i:i + 7]\n"
	"                self.wfile.write(b'%x\\r\\n' % len(c) + c + b'\\r\\n')\n"
	"            self.wfile.write(b'0\\r\\n\\r\\n')\n"
	"        elif host == 'mta-sts.close.test':\n"
	"            self.head(200, 'text/plain')\n"
	"            self.wfile.write(POLICY)\n"
	"        elif host == 'mta-sts.redirect.test':\n"
	"            self.head(301, 'text/plain', [('Location', 'https://mta-sts.good.test/'),\n"
	"                                          ('Content-Length', '0')])\n"
	"        elif host == 'mta-sts.html.test':\n"
	"            b = b'<html>' + POLICY + b'</html>'\n"
	"            self.head(200, 'text/html', [('Content-Length', str(len(b)))])\n"
	"            self.wfile.write(b)\n"
	"        elif host == 'mta-sts.big.test':\n"
	"            self.head(200, 'text/plain')\n"
	"            self.wfile.write(POLICY + b'x-pad: ' + b'p' * 70000 + b'\\n')\n"
	"        else:\n"
	"            self.head(404, 'text/plain', [('Content-Length', '0')])\n"
	"srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)\n"
	"ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
	"ctx.load_cert_chain(sys.argv[1], sys.argv[2])\n"
	"srv.socket = ctx.wrap_socket(srv.socket, server_side=True)\n"
	"print(srv.server_address[1], flush=True)\n"
	"srv.serve_forever()\n";

static char *slurp(const char *name, size_t *len)
{
	char path[256];
	FILE *f;
	char *b;
	long n;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	b = malloc((size_t)n + 1);
	if (b != NULL && fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		b = NULL;
	}
	fclose(f);
	if (b != NULL) {
		b[n] = '\0';
		*len = (size_t)n;
	}
	return b;
}

static void start(void)
{
	char cmd[2048], cert[256], key[256], line[32] = "";
	int p[2];
	size_t len = 0;
	char *ca;
	char err[256] = "";

	CHECK(mkdtemp(dir) != NULL);
	snprintf(cmd, sizeof cmd, mkpki, dir);
	CHECKF(system(cmd) == 0, "openssl: see %s/openssl.log", dir);
	CHECK((ca = slurp("ca.pem", &len)) != NULL);
	if (ca != NULL && (anchors = tls_anchors_load(ca, len, "ca.pem", err, sizeof err)) == NULL)
		fprintf(stderr, "anchors: %s\n", err);
	free(ca);
	CHECK(anchors != NULL);
	snprintf(cert, sizeof cert, "%s/srv.pem", dir);
	snprintf(key, sizeof key, "%s/srv.key", dir);
	CHECK(pipe(p) == 0);
	server = fork();
	if (server == 0) {
		dup2(p[1], 1);
		close(p[0]);
		execl("/usr/bin/python3", "python3", "-c", server_py, cert, key, policy, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	for (size_t n = 0; n + 1 < sizeof line; n++) {
		struct pollfd pf = { p[0], POLLIN, 0 };
		if (poll(&pf, 1, 20000) != 1 || read(p[0], line + n, 1) != 1 || line[n] == '\n')
			break;
	}
	close(p[0]);
	port = atoi(line);
	CHECKF(port > 0, "server port '%s'", line);
}

/* Push ciphertext out and pull it in until the fetch is decided, the
 * connection ends, or 10 s pass.  Returns the reader's verdict, or FAIL
 * with *tls_failed set when TLS itself failed. */
static enum mtasts_fetch_rc fetch(const char *domain, struct mtasts_fetch *f, char *body,
                                  int *tls_failed)
{
	char host[DNS_NAME_MAX + 1], req[MTASTS_FETCH_REQ_MAX];
	size_t reqlen = mtasts_fetch_request(domain, req, sizeof req), sent = 0;
	struct sockaddr_in sa;
	struct tls *t;
	int fd = socket(AF_INET, SOCK_STREAM, 0), eof = 0;
	enum mtasts_fetch_rc rc = MTASTS_FETCH_MORE;

	*tls_failed = 0;
	mtasts_fetch_init(f, body, MTASTS_POLICY_MAX);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (reqlen == 0 || mtasts_fetch_host(domain, host) != 0 || fd < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
	    (t = tls_client_new(host, anchors)) == NULL) {
		if (fd >= 0)
			close(fd);
		return MTASTS_FETCH_FAIL;
	}
	for (int round = 0; round < 1000 && rc == MTASTS_FETCH_MORE; round++) {
		size_t len, cap;
		const unsigned char *out;
		unsigned char *in;
		struct pollfd pf = { fd, POLLIN, 0 };

		if (tls_state(t) == TLS_OPEN && sent < reqlen) {
			sent += tls_app_write(t, req + sent, reqlen - sent);
			tls_app_flush(t);
		}
		while ((out = tls_net_out(t, &len)) != NULL && len > 0) {
			ssize_t w = send(fd, out, len, MSG_NOSIGNAL);
			if (w <= 0)
				break;
			tls_net_out_done(t, (size_t)w);
		}
		while ((out = tls_app_in(t, &len)) != NULL && len > 0 && rc == MTASTS_FETCH_MORE) {
			rc = mtasts_fetch_feed(f, (const char *)out, len);
			tls_app_in_done(t, len);
		}
		if (rc != MTASTS_FETCH_MORE)
			break;
		if (tls_state(t) >= TLS_CLOSED || eof) {
			*tls_failed = tls_state(t) == TLS_FAILED;
			rc = *tls_failed ? MTASTS_FETCH_FAIL : mtasts_fetch_eof(f);
			break;
		}
		if ((in = tls_net_in(t, &cap)) == NULL || cap == 0)
			continue;
		if (poll(&pf, 1, 10000) != 1) {
			rc = MTASTS_FETCH_FAIL;
			break;
		}
		ssize_t r = recv(fd, in, cap, 0);
		if (r > 0)
			tls_net_in_done(t, (size_t)r);
		else
			eof = 1;
	}
	tls_free(t);
	close(fd);
	return rc;
}

static void test_fetch_good(void)
{
	static struct mtasts_fetch f;
	static char body[MTASTS_POLICY_MAX];
	static const char *const hosts[] = { "good.test", "chunked.test", "close.test" };
	struct mtasts_policy p;
	const char *why;
	int tf;

	if (port <= 0)
		return;
	for (size_t i = 0; i < 3; i++) {
		CHECKF(fetch(hosts[i], &f, body, &tf) == MTASTS_FETCH_DONE, "%s: %s", hosts[i],
		       f.why ? f.why : "-");
		CHECKF(f.bodylen == sizeof policy - 1 && memcmp(body, policy, f.bodylen) == 0, "%s",
		       hosts[i]);
		CHECK(mtasts_policy_parse(body, f.bodylen, &p, &why) == 0 && p.nmx == 2);
		CHECK(p.mode == MTASTS_MODE_ENFORCE && mtasts_mx_allowed(&p, "mx1.good.test"));
	}
}

static void test_fetch_refused(void)
{
	static struct mtasts_fetch f;
	static char body[MTASTS_POLICY_MAX];
	static const struct { const char *domain, *why; } cases[] = {
		{ "redirect.test", "redirect" },
		{ "html.test", "text/plain" },
		{ "big.test", "64 KiB" },
		{ "missing.test", "status" },
	};
	int tf;

	if (port <= 0)
		return;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		CHECKF(fetch(cases[i].domain, &f, body, &tf) == MTASTS_FETCH_FAIL && !tf, "%s",
		       cases[i].domain);
		CHECKF(f.why != NULL && strstr(f.why, cases[i].why) != NULL, "%s: %s", cases[i].domain,
		       f.why ? f.why : "(none)");
	}
	/* The certificate does not name mta-sts.other.test: TLS refuses. */
	CHECK(fetch("other.test", &f, body, &tf) == MTASTS_FETCH_FAIL && tf && f.status == 0);
}

/* A CA bundle without the server's CA: TLS refuses the good host too. */
static void test_fetch_untrusted(void)
{
	static struct mtasts_fetch f;
	static char body[MTASTS_POLICY_MAX];
	struct tls_anchors *keep = anchors;
	size_t len = 0;
	char *rogue = slurp("rogue.pem", &len), err[256];
	int tf;

	if (port <= 0 || rogue == NULL) {
		free(rogue);
		return;
	}
	anchors = tls_anchors_load(rogue, len, "rogue.pem", err, sizeof err);
	CHECK(anchors != NULL);
	if (anchors != NULL)
		CHECK(fetch("good.test", &f, body, &tf) == MTASTS_FETCH_FAIL && tf && f.bodylen == 0);
	tls_anchors_free(anchors);
	anchors = keep;
	free(rogue);
}

int main(void)
{
	char cmd[300];
	int st;

	signal(SIGPIPE, SIG_IGN);
	RUN(start);
	RUN(test_fetch_good);
	RUN(test_fetch_refused);
	RUN(test_fetch_untrusted);
	if (server > 0) {
		kill(server, SIGTERM);
		waitpid(server, &st, 0);
	}
	tls_anchors_free(anchors);
	if (t_total_failed == 0) {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
	return t_main_end();
}
