/* mta/cmd/relay_test.c -- moat relay-test; see relaytest.h */
#include "mta/cmd/relay_test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define IO_SECONDS 30
#define LINE_MAX_ 1024
#define NAME_MAX_ 256

struct probe_conn {
	int    fd;
	char   buf[8192];
	size_t len;
	char   server_ip[64];    /* the peer's address, for IP-literal probes */
	char   greeting[LINE_MAX_];
};

struct target {
	char host[NAME_MAX_];
	char port[8];
};

/* One reply (multi-line folded to its last line); returns the code or -1. */
static int read_reply(struct probe_conn *pc, char *last, size_t cap)
{
	for (;;) {
		char *nl = memchr(pc->buf, '\n', pc->len);

		if (nl != NULL) {
			size_t n = (size_t)(nl - pc->buf) + 1, l = n - 1;
			int more;

			if (l > 0 && pc->buf[l - 1] == '\r')
				l--;
			if (l < 3)
				return -1;
			more = l > 3 && pc->buf[3] == '-';
			snprintf(last, cap, "%.*s", (int)l, pc->buf);
			memmove(pc->buf, pc->buf + n, pc->len - n);
			pc->len -= n;
			if (more)
				continue;
			return atoi(last);
		}
		if (pc->len == sizeof pc->buf)
			return -1;
		ssize_t r = recv(pc->fd, pc->buf + pc->len, sizeof pc->buf - pc->len, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		pc->len += (size_t)r;
	}
}

static int command(struct probe_conn *pc, const char *line, char *last, size_t cap)
{
	char out[LINE_MAX_];
	int n = snprintf(out, sizeof out, "%s\r\n", line);

	if (n < 0 || (size_t)n >= sizeof out || send(pc->fd, out, (size_t)n, MSG_NOSIGNAL) != n)
		return -1;
	return read_reply(pc, last, cap);
}

static void probe_close(struct probe_conn *pc)
{
	if (pc->fd >= 0) {
		(void)!send(pc->fd, "QUIT\r\n", 6, MSG_NOSIGNAL);
		close(pc->fd);
	}
	pc->fd = -1;
	pc->len = 0;
}

/* Connect, read the 220, EHLO (HELO if refused).  0 or -1 with why printed. */
static int probe_open(struct probe_conn *pc, const struct target *t)
{
	struct addrinfo hints, *res, *ai;
	struct timeval tv = { IO_SECONDS, 0 };
	char last[LINE_MAX_];
	int e;

	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	e = getaddrinfo(t->host, t->port, &hints, &res);
	if (e != 0) {
		fprintf(stderr, "moat relay-test: %s: %s\n", t->host, gai_strerror(e));
		return -1;
	}
	pc->fd = -1;
	pc->len = 0;
	for (ai = res; ai != NULL && pc->fd < 0; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);

		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			e = errno;
			close(fd);
			errno = e;
			continue;
		}
		pc->fd = fd;
		if (ai->ai_family == AF_INET6) {
			char a[INET6_ADDRSTRLEN];
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)ai->ai_addr)->sin6_addr, a, sizeof a);
			snprintf(pc->server_ip, sizeof pc->server_ip, "IPv6:%s", a);
		} else {
			inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)ai->ai_addr)->sin_addr, pc->server_ip,
			          sizeof pc->server_ip);
		}
	}
	freeaddrinfo(res);
	if (pc->fd < 0) {
		fprintf(stderr, "moat relay-test: %s port %s: %s\n", t->host, t->port, strerror(errno));
		return -1;
	}
	if (read_reply(pc, pc->greeting, sizeof pc->greeting) != 220) {
		fprintf(stderr, "moat relay-test: no 220 greeting: %s\n", pc->greeting);
		probe_close(pc);
		return -1;
	}
	if (command(pc, "EHLO relay-test.invalid", last, sizeof last) / 100 != 2 &&
	    command(pc, "HELO relay-test.invalid", last, sizeof last) / 100 != 2) {
		fprintf(stderr, "moat relay-test: EHLO and HELO refused: %s\n", last);
		probe_close(pc);
		return -1;
	}
	return 0;
}

/* "HOST", "HOST:PORT", "[V6]", "[V6]:PORT", or a bare IPv6 address. */
static int parse_target(const char *arg, struct target *t)
{
	const char *colon;
	size_t n;

	snprintf(t->port, sizeof t->port, "25");
	if (arg[0] == '[') {
		const char *close = strchr(arg, ']');
		if (close == NULL || (size_t)(close - arg - 1) >= sizeof t->host)
			return -1;
		memcpy(t->host, arg + 1, (size_t)(close - arg - 1));
		t->host[close - arg - 1] = '\0';
		if (close[1] == ':')
			snprintf(t->port, sizeof t->port, "%s", close + 2);
		else if (close[1] != '\0')
			return -1;
		return 0;
	}
	colon = strchr(arg, ':');
	if (colon != NULL && strchr(colon + 1, ':') != NULL)
		colon = NULL; /* a bare IPv6 address */
	n = colon ? (size_t)(colon - arg) : strlen(arg);
	if (n == 0 || n >= sizeof t->host)
		return -1;
	memcpy(t->host, arg, n);
	t->host[n] = '\0';
	if (colon)
		snprintf(t->port, sizeof t->port, "%s", colon + 1);
	return t->port[0] == '\0' ? -1 : 0;
}

/* The greeting's host name less its first label (mx.example.org -> example.org). */
static void guess_domain(const char *greeting, char *out, size_t cap)
{
	const char *name = greeting + (strlen(greeting) > 4 ? 4 : strlen(greeting));
	size_t n = strcspn(name, " ");
	const char *dot = memchr(name, '.', n);

	if (dot != NULL && memchr(dot + 1, '.', n - (size_t)(dot + 1 - name)) != NULL) {
		n -= (size_t)(dot + 1 - name);
		name = dot + 1;
	}
	snprintf(out, cap, "%.*s", (int)n, name);
}

/* tmpl with {O}, {F}, {I} replaced by ours, foreign and the server's IP;
 * {U} is foreign in upper case. */
static void expand(const char *tmpl, char *out, size_t cap, const char *ours, const char *foreign,
                   const char *ip)
{
	size_t o = 0;

	for (const char *p = tmpl; *p && o + 1 < cap; p++) {
		const char *v = NULL;

		if (p[0] == '{' && p[1] && p[2] == '}')
			v = p[1] == 'O' ? ours : (p[1] == 'F' || p[1] == 'U') ? foreign : p[1] == 'I' ? ip : NULL;
		if (v == NULL) {
			out[o++] = *p;
			continue;
		}
		for (; *v && o + 1 < cap; v++)
			out[o++] = p[1] == 'U' && *v >= 'a' && *v <= 'z' ? (char)(*v - 'a' + 'A') : *v;
		p += 2;
	}
	out[o] = '\0';
}

/* RSET, MAIL FROM:<from>, RCPT TO:<to>, once more on a fresh connection if
 * the server dropped it or said 421: the last reply's code (last holds its
 * text), -1 if none came, -2 if no connection could be made again. */
static int try_pair(struct probe_conn *pc, const struct target *t, const char *from,
                    const char *to, char *last, size_t lastcap)
{
	char line[LINE_MAX_ * 2];
	int code = -1;

	for (int tries = 0; tries < 2; tries++) {
		if (pc->fd < 0 && probe_open(pc, t) != 0)
			return -2;
		code = command(pc, "RSET", last, lastcap);
		if (code / 100 == 2) {
			snprintf(line, sizeof line, "MAIL FROM:<%s>", from);
			code = command(pc, line, last, lastcap);
		}
		if (code / 100 == 2) {
			snprintf(line, sizeof line, "RCPT TO:<%s>", to);
			code = command(pc, line, last, lastcap);
		}
		if (code >= 0 && code != 421)
			break;
		probe_close(pc); /* dropped: reconnect once */
	}
	return code;
}

int relaytest_main(int argc, char **argv)
{
	struct probe_conn pc;
	struct target t;
	char ours[NAME_MAX_] = "", foreign[NAME_MAX_] = "example.net";
	const char *hostarg = NULL;
	int accepted = 0, total = 0, i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-d") == 0 && i + 1 < argc)
			snprintf(ours, sizeof ours, "%s", argv[++i]);
		else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc)
			snprintf(foreign, sizeof foreign, "%s", argv[++i]);
		else if (argv[i][0] != '-' && hostarg == NULL)
			hostarg = argv[i];
		else
			hostarg = NULL, i = argc + 1;
	}
	if (hostarg == NULL || i > argc || parse_target(hostarg, &t) != 0) {
		fprintf(stderr, "usage: moat relay-test [-d OURDOMAIN] [-t FOREIGN] HOST[:PORT]\n");
		return 100;
	}
	if (probe_open(&pc, &t) != 0)
		return 111;
	if (ours[0] == '\0')
		guess_domain(pc.greeting, ours, sizeof ours);
	printf("relay-test %s port %s\n  greeting: %s\n  our domain: %s, foreign domain: %s\n",
	       t.host, t.port, pc.greeting, ours, foreign);

	/* The tricks: sender, recipient ({O} = ours, {F} = foreign, {I} = server IP). */
	static const struct { const char *what, *from, *to; int control; } probes[] = {
		{ "control: postmaster at our domain", "relay-test@{F}", "postmaster@{O}", 1 },
		{ "foreign sender to foreign domain", "relay-test@{F}", "victim@{F}", 0 },
		{ "null sender to foreign domain", "", "victim@{F}", 0 },
		{ "spoofed local sender to foreign domain", "postmaster@{O}", "victim@{F}", 0 },
		{ "percent hack", "relay-test@{F}", "victim%{F}@{O}", 0 },
		{ "percent hack at our IP literal", "relay-test@{F}", "victim%{F}@[{I}]", 0 },
		{ "bang path at our domain", "relay-test@{F}", "{F}!victim@{O}", 0 },
		{ "bare bang path", "relay-test@{F}", "{F}!victim", 0 },
		{ "source route through our domain", "relay-test@{F}", "@{O}:victim@{F}", 0 },
		{ "quoted local part with @", "relay-test@{F}", "\"victim@{F}\"", 0 },
		{ "quoted local part with @ at our domain", "relay-test@{F}", "\"victim@{F}\"@{O}", 0 },
		{ "quoted local part with % at our domain", "relay-test@{F}", "\"victim%{F}\"@{O}", 0 },
		{ "two @ signs", "relay-test@{F}", "victim@{F}@{O}", 0 },
		{ "foreign domain with trailing dot", "relay-test@{F}", "victim@{F}.", 0 },
		{ "foreign domain in upper case", "relay-test@{F}", "VICTIM@{U}", 0 },
		{ "IP literal of a foreign host", "relay-test@{F}", "victim@[192.0.2.1]", 0 },
		{ "IP literal of the server", "relay-test@{F}", "victim@[{I}]", 0 },
	};
	for (size_t k = 0; k < sizeof probes / sizeof probes[0]; k++) {
		char from[LINE_MAX_], to[LINE_MAX_], last[LINE_MAX_] = "";
		int code;

		expand(probes[k].from, from, sizeof from, ours, foreign, pc.server_ip);
		expand(probes[k].to, to, sizeof to, ours, foreign, pc.server_ip);
		if ((code = try_pair(&pc, &t, from, to, last, sizeof last)) == -2)
			return 111;
		if (probes[k].control) {
			printf("  %-9s %-46s <%s> -> <%s>: %s\n", code / 100 == 2 ? "control" : "CONTROL?",
			       probes[k].what, from, to, last);
			continue;
		}
		total++;
		if (code / 100 == 2)
			accepted++;
		printf("  %-9s %-46s <%s> -> <%s>: %s\n", code / 100 == 2 ? "ACCEPTED" : "refused",
		       probes[k].what, from, to, last);
	}
	probe_close(&pc);
	printf("%d of %d relay tricks accepted%s\n", accepted, total,
	       accepted ? ": this server is an open relay (no DATA was sent)" : "");
	return accepted ? 1 : 0;
}
