/* mta/net/resolver.c -- the resolver; see dns.h */
#include "mta/net/resolver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mta/net/log.h"
#include "mta/net/sockaddr.h"
#include "policy/hosts.h"

#define ROUNDS 2
#define UDP_BUF 4096           /* more than DNS_UDP_MAX: a server may send more */
#define RESOLV_CONF "/etc/resolv.conf"
#define HOSTS_FILE  "/etc/hosts"
#define HOSTS_MAX   (256 * 1024)   /* more is not read */

struct dns_query {
	struct dns_resolver *r;
	struct dns_query *prev, *next;   /* r->queries, or r->dead */
	struct ev_io      io;
	struct ev_timer   timer;
	char              name[DNS_NAME_MAX + 1];
	uint16_t          qtype;
	uint16_t          id;
	dns_cb           *cb;            /* MX, A, AAAA */
	dns_tlsa_cb      *tlsa_cb;       /* TLSA */
	dns_txt_cb       *txt_cb;        /* TXT */
	void             *arg;
	unsigned          attempt;       /* 0 .. ROUNDS * nservers - 1 */
	unsigned          tcp : 1;
	unsigned          dead : 1;
	unsigned char     qbuf[2 + DNS_QUERY_MAX];  /* TCP length prefix + query */
	size_t            qlen;          /* query bytes, without the prefix */
	size_t            qsent;         /* TCP: bytes of prefix+query written */
	unsigned char    *tbuf;          /* TCP: the answer, 2 + length */
	size_t            tlen, tcap;
};

struct dns_resolver {
	struct ev_loop         *loop;
	struct conf_dns_server  servers[CONF_MAX_DNS];
	size_t                  nservers;
	unsigned                timeout_ms;
	int                     dnssec;  /* DO asked, AD kept (dns_resolver_dnssec) */
	struct dns_query       *queries, *dead;
	struct ev_timer         reaper;  /* frees dead queries in the timer phase */
	char                   *hosts;   /* /etc/hosts as read at the start, or NULL */
	size_t                  hosts_len;
};

static void list_del(struct dns_query **head, struct dns_query *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else
		*head = q->next;
	if (q->next)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
}

static void list_add(struct dns_query **head, struct dns_query *q)
{
	q->prev = NULL;
	q->next = *head;
	if (*head)
		(*head)->prev = q;
	*head = q;
}

static void close_io(struct dns_query *q)
{
	struct ev_loop *l = q->r->loop;

	if (q->io.fd >= 0) {
		ev_io_del(l, &q->io);
		close(q->io.fd);
		q->io.fd = -1;
	}
	ev_timer_stop(l, &q->timer);
	free(q->tbuf);
	q->tbuf = NULL;
	q->tlen = q->tcap = 0;
}

static void reaper_cb(struct ev_loop *l, struct ev_timer *t)
{
	struct dns_resolver *r = t->arg;

	(void)l;
	while (r->dead) {
		struct dns_query *q = r->dead;
		list_del(&r->dead, q);
		free(q);
	}
}

/* Retire q: no more I/O, freed in the next timer phase. */
static void retire(struct dns_query *q)
{
	struct dns_resolver *r = q->r;

	if (q->dead)
		return;
	q->dead = 1;
	close_io(q);
	list_del(&r->queries, q);
	list_add(&r->dead, q);
	ev_timer_start(r->loop, &r->reaper, 0);
}

/* How large the parsed answer of q's kind is (struct dns_answer, or a
 * TLSA or TXT set). */
static size_t parsed_size(const struct dns_query *q)
{
	return q->cb != NULL ? sizeof(struct dns_answer)
	     : q->tlsa_cb != NULL ? sizeof(struct dns_tlsa_set) : sizeof(struct dns_txt_set);
}

/* Read msg as an answer of q's kind into parsed (parsed_size bytes). */
static enum dns_status parse(const struct dns_query *q, const unsigned char *msg, size_t len,
                             void *parsed)
{
	if (q->cb != NULL)
		return dns_response_parse(msg, len, q->id, q->name, q->qtype, parsed);
	if (q->tlsa_cb != NULL)
		return dns_tlsa_parse(msg, len, q->id, q->name, parsed);
	return dns_txt_parse(msg, len, q->id, q->name, parsed);
}

/*
 * The caller hears st and the parsed answer (parsed_size bytes; NULL:
 * none, an empty one is given).  The AD bit stands only when DNSSEC was
 * asked for.  The sets are large: never on the stack; when not even an
 * empty one can be had, a static one says DNS_TEMPFAIL.
 */
static void finish(struct dns_query *q, enum dns_status st, void *parsed)
{
	static union {
		struct dns_answer   a;
		struct dns_tlsa_set t;
		struct dns_txt_set  x;
	} none;
	void *mine = NULL, *p = parsed;

	retire(q);
	if (p == NULL && (p = mine = calloc(1, parsed_size(q))) == NULL) {
		memset(&none, 0, sizeof none);
		p = &none;
		st = DNS_TEMPFAIL;
	}
	if (q->cb != NULL) {
		struct dns_answer *a = p;
		a->ad = q->r->dnssec ? a->ad : 0;
		q->cb(q->arg, st, a);
	} else if (q->tlsa_cb != NULL) {
		struct dns_tlsa_set *t = p;
		t->ad = q->r->dnssec ? t->ad : 0;
		q->tlsa_cb(q->arg, st, t);
	} else {
		struct dns_txt_set *x = p;
		x->ad = q->r->dnssec ? x->ad : 0;
		q->txt_cb(q->arg, st, x);
	}
	free(mine);
}

static void fill_sockaddr(const struct conf_dns_server *s, struct sockaddr_storage *ss,
                          socklen_t *len)
{
	*len = sockaddr_from_ip(&s->addr, s->port, ss);
}

static void send_attempt(struct dns_query *q);

/* This server gave nothing usable: the next, or give up. */
static void next_attempt(struct dns_query *q)
{
	close_io(q);
	q->attempt++;
	q->tcp = 0;
	if (q->attempt >= ROUNDS * q->r->nservers) {
		finish(q, DNS_TEMPFAIL, NULL);
		return;
	}
	send_attempt(q);
}

static void timeout_cb(struct ev_loop *l, struct ev_timer *t)
{
	struct dns_query *q = t->arg;

	(void)l;
	next_attempt(q);
}

/* An answer arrived (UDP datagram or the whole TCP message). */
static void answer(struct dns_query *q, const unsigned char *msg, size_t len)
{
	void *a = malloc(parsed_size(q));
	enum dns_status st;

	if (a == NULL) {
		finish(q, DNS_TEMPFAIL, NULL);
		return;
	}
	st = parse(q, msg, len, a);
	switch (st) {
	case DNS_BAD:
		if (q->tcp)
			next_attempt(q);   /* a stream cannot resynchronise */
		break;                     /* UDP: drop it, keep waiting */
	case DNS_TRUNCATED:
		if (q->tcp) {
			next_attempt(q);
			break;
		}
		close_io(q);
		q->tcp = 1;
		send_attempt(q);
		break;
	case DNS_TEMPFAIL:
		next_attempt(q);
		break;
	default:
		finish(q, st, a);
		break;
	}
	free(a);
}

static void udp_cb(struct ev_loop *l, struct ev_io *io, unsigned events)
{
	struct dns_query *q = io->arg;
	unsigned char buf[UDP_BUF];

	(void)l;
	(void)events;
	for (int i = 0; i < 8 && !q->dead && !q->tcp && q->io.fd >= 0; i++) {
		ssize_t n = recv(q->io.fd, buf, sizeof buf, 0);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			next_attempt(q);   /* ECONNREFUSED: nobody listens there */
			return;
		}
		answer(q, buf, (size_t)n);
	}
}

static void tcp_cb(struct ev_loop *l, struct ev_io *io, unsigned events)
{
	struct dns_query *q = io->arg;

	(void)l;
	if ((events & EV_WRITE) && q->qsent < q->qlen + 2) {
		ssize_t n = send(q->io.fd, q->qbuf + q->qsent, q->qlen + 2 - q->qsent, MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			next_attempt(q);
			return;
		}
		if (n > 0)
			q->qsent += (size_t)n;
		if (q->qsent == q->qlen + 2 && ev_io_set(q->r->loop, &q->io, EV_READ) < 0) {
			next_attempt(q);
			return;
		}
	}
	if (events & EV_READ) {
		size_t want = q->tlen < 2 ? 2 : 2 + ((size_t)q->tbuf[0] << 8 | q->tbuf[1]);
		ssize_t n;
		if (q->tcap < want) {
			unsigned char *b = realloc(q->tbuf, want);
			if (b == NULL) {
				next_attempt(q);
				return;
			}
			q->tbuf = b;
			q->tcap = want;
		}
		n = recv(q->io.fd, q->tbuf + q->tlen, want - q->tlen, 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
			next_attempt(q);
			return;
		}
		if (n > 0)
			q->tlen += (size_t)n;
		if (q->tlen == 2 && want == 2) {
			if (((size_t)q->tbuf[0] << 8 | q->tbuf[1]) == 0) {
				next_attempt(q);
				return;
			}
			return;            /* the length is known; the body comes next */
		}
		if (q->tlen >= 2 && q->tlen == want)
			answer(q, q->tbuf + 2, q->tlen - 2);
	}
}

static void send_attempt(struct dns_query *q)
{
	struct dns_resolver *r = q->r;
	const struct conf_dns_server *srv = &r->servers[q->attempt % r->nservers];
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd;

	if (getrandom(&q->id, sizeof q->id, 0) != (ssize_t)sizeof q->id)
		q->id = (uint16_t)(q->id * 31421u + 6927u + (uint16_t)(uintptr_t)q);
	q->qlen = dns_query_build_flags(q->qbuf + 2, sizeof q->qbuf - 2, q->id, q->name, q->qtype,
	                                r->dnssec ? DNS_Q_DNSSEC : 0u);
	q->qbuf[0] = (unsigned char)(q->qlen >> 8);
	q->qbuf[1] = (unsigned char)q->qlen;
	q->qsent = 0;
	fill_sockaddr(srv, &ss, &sl);
	fd = socket(ss.ss_family, (q->tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ev_timer_start(r->loop, &q->timer, 0);   /* next server, from the timer */
		return;
	}
	q->io.fd = fd;
	q->io.arg = q;
	q->io.cb = q->tcp ? tcp_cb : udp_cb;
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
		close_io(q);
		ev_timer_start(r->loop, &q->timer, 0);
		return;
	}
	if (!q->tcp) {
		if (send(fd, q->qbuf + 2, q->qlen, 0) < 0 && errno != EAGAIN) {
			close_io(q);
			ev_timer_start(r->loop, &q->timer, 0);
			return;
		}
	}
	if (ev_io_set(r->loop, &q->io, q->tcp ? EV_WRITE : EV_READ) < 0) {
		close_io(q);
		ev_timer_start(r->loop, &q->timer, 0);
		return;
	}
	ev_timer_start(r->loop, &q->timer, r->timeout_ms);
}

/* A query for name/qtype, not yet sent; NULL if name is not a host name
 * or memory is short.  The caller sets its callback. */
static struct dns_query *query_new(struct dns_resolver *r, const char *name, uint16_t qtype,
                                   void *arg)
{
	struct dns_query *q;
	size_t len = strlen(name);

	if (!dns_name_ok(name, len))
		return NULL;
	if ((q = calloc(1, sizeof *q)) == NULL)
		return NULL;
	q->r = r;
	memcpy(q->name, name, len + 1);
	q->qtype = qtype;
	q->arg = arg;
	q->io.fd = -1;
	return q;
}

static struct dns_query *query_start(struct dns_query *q)
{
	struct dns_resolver *r = q->r;

	q->timer.cb = timeout_cb;
	q->timer.arg = q;
	list_add(&r->queries, q);
	send_attempt(q);
	return q;
}

struct dns_query *dns_lookup(struct dns_resolver *r, const char *name, uint16_t qtype,
                             dns_cb *cb, void *arg)
{
	struct dns_query *q = query_new(r, name, qtype, arg);

	if (q == NULL)
		return NULL;
	q->cb = cb;
	return query_start(q);
}

struct dns_query *dns_lookup_tlsa(struct dns_resolver *r, const char *name, dns_tlsa_cb *cb,
                                  void *arg)
{
	struct dns_query *q = query_new(r, name, DNS_T_TLSA, arg);

	if (q == NULL)
		return NULL;
	q->tlsa_cb = cb;
	return query_start(q);
}

struct dns_query *dns_lookup_txt(struct dns_resolver *r, const char *name, dns_txt_cb *cb,
                                 void *arg)
{
	struct dns_query *q = query_new(r, name, DNS_T_TXT, arg);

	if (q == NULL)
		return NULL;
	q->txt_cb = cb;
	return query_start(q);
}

void dns_resolver_dnssec(struct dns_resolver *r, int on)
{
	r->dnssec = on != 0;
}

void dns_cancel(struct dns_query *q)
{
	if (q != NULL)
		retire(q);
}

/* /etc/hosts, whole lines only (a longer file is cut at its last line
 * within HOSTS_MAX); none is no entry. */
static void read_hosts(struct dns_resolver *r)
{
	int fd = open(HOSTS_FILE, O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	ssize_t n = 0;

	if (fd < 0 || (r->hosts = malloc(HOSTS_MAX)) == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while (len < HOSTS_MAX && (n = read(fd, r->hosts + len, HOSTS_MAX - len)) > 0)
		len += (size_t)n;
	close(fd);
	if (len == HOSTS_MAX) {
		char *nl = memrchr(r->hosts, '\n', len);
		len = nl ? (size_t)(nl - r->hosts) : 0;
	}
	r->hosts_len = len;
}

struct dns_resolver *dns_resolver_new(struct ev_loop *l, const struct conf *c,
                                      char *err, size_t errcap)
{
	struct dns_resolver *r = calloc(1, sizeof *r);

	if (r == NULL) {
		snprintf(err, errcap, "resolver: out of memory");
		return NULL;
	}
	r->loop = l;
	r->timeout_ms = c->dns_timeout * 1000u;
	r->reaper.cb = reaper_cb;
	r->reaper.arg = r;
	if (c->ndns_servers > 0) {
		memcpy(r->servers, c->dns_servers, c->ndns_servers * sizeof r->servers[0]);
		r->nservers = c->ndns_servers;
	} else {
		char text[8192];
		struct ipaddr ips[CONF_MAX_DNS];
		ssize_t n = -1;
		int fd = open(RESOLV_CONF, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			n = read(fd, text, sizeof text);
			close(fd);
		}
		r->nservers = n > 0 ? dns_resolv_conf(text, (size_t)n, ips, CONF_MAX_DNS) : 0;
		for (size_t i = 0; i < r->nservers; i++) {
			r->servers[i].addr = ips[i];
			r->servers[i].port = 53;
		}
		if (r->nservers == 0) {
			/* resolv.conf(5): no nameserver line means the local host. */
			r->servers[0].addr.family = IP_V4;
			r->servers[0].addr.a[0] = 127;
			r->servers[0].addr.a[3] = 1;
			r->servers[0].port = 53;
			r->nservers = 1;
		}
	}
	read_hosts(r);
	return r;
}

size_t dns_hosts(const struct dns_resolver *r, const char *name, struct ipaddr *out, size_t max)
{
	return r->hosts ? hosts_lookup(r->hosts, r->hosts_len, name, out, max) : 0;
}

void dns_resolver_free(struct dns_resolver *r)
{
	if (r == NULL)
		return;
	while (r->queries)
		retire(r->queries);
	ev_timer_stop(r->loop, &r->reaper);
	reaper_cb(r->loop, &r->reaper);
	free(r->hosts);
	free(r);
}
