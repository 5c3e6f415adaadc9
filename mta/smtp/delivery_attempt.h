/*
 * mta/smtp/delivery_attempt.h -- one outbound SMTP transaction to one destination: find
 * its addresses (a route's or the smarthost's next hop, an address
 * literal, or the domain's MX hosts and their A/AAAA records), connect to
 * them in turn, and run an smtpc session (mta/smtp/smtpc.h) over the socket.
 *
 * This is the part of delivery that talks to the network.  It knows
 * nothing of the queue: the caller passes the envelope, a function that
 * reads the body, and a function to call with the outcome; so the client
 * and the resolver can later run in a process of their own, behind a
 * socketpair, with the queue on the other side.
 *
 * Addresses are tried in order (MX preference, IPv6 then IPv4 for each
 * host), at most CLIENT_ADDR_MAX of them, moving on after a connection
 * failure, a timeout, or a temporary failure before any recipient was
 * answered (RFC 5321 5.1).  DNS says:
 *   MX NXDOMAIN             -> every recipient permanent, 5.1.2
 *   a null MX (RFC 7505)    -> permanent, 5.1.10
 *   no MX                   -> the domain itself is the host (implicit MX)
 *   no address at all       -> permanent if the names do not exist, else
 *                              temporary
 *   a temporary DNS failure -> temporary (a deferral, never a bounce)
 * A route's or smarthost's host that does not resolve is temporary: it is
 * the configuration that is wrong, and the mail waits for its fix.
 *
 * Authenticated TLS toward MX hosts (docs/tls-policy.md), for MX delivery
 * only (a route and the smarthost keep their own `tls`):
 *   - DANE (req.dane: `dns-dnssec trusted` and `dane on`): when the MX
 *     answer (or the NODATA of an implicit MX) and a host's address
 *     answers came validated (the AD bit), its `_25._tcp.HOST` TLSA
 *     records are looked up.  Usable ones (mta/net/dane.h) make STARTTLS
 *     mandatory and the chain must match (tls_client_new_dane), else 4.7.5
 *     and the next host; a validated set with none usable makes STARTTLS
 *     mandatory without a check (RFC 7672 2.2), unless MTA-STS applies; a
 *     TLSA lookup that fails leaves that host out for now (RFC 7672 2.2).
 *   - MTA-STS (req.sts, for a host without DANE): `enforce` keeps only the
 *     MX hosts the policy's mx patterns allow, requires STARTTLS and a
 *     certificate that leads to tls-ca-file and names the host (else 4.7.5
 *     and the next host; none left: 4.7.5, never plaintext); `testing`
 *     delivers as outbound-tls says, but checks the same and records what
 *     failed (a certificate that fails is then taken after all, on a new
 *     connection, as without the policy).
 *   - else opportunistic: outbound-tls.
 * Each TLS session under DANE or MTA-STS is recorded (client_sessions) for
 * the TLS report and the logs.
 */
#ifndef MOAT_MTA_SMTP_DELIVERY_ATTEMPT_H
#define MOAT_MTA_SMTP_DELIVERY_ATTEMPT_H

#include <stddef.h>
#include <stdint.h>

#include "mta/net/resolver.h"
#include "mta/net/ev.h"
#include "mta/smtp/smtpc.h"
#include "mta/net/tls.h"
#include "policy/conf.h"
#include "policy/mtasts.h"
#include "policy/route.h"
#include "policy/tlsrpt.h"

#define CLIENT_ADDR_MAX  5      /* addresses tried per transaction */
#define CLIENT_SESSIONS_MAX 8   /* TLS sessions under a policy recorded per transaction */

/* The TLS policy a connection was made under (docs/tls-policy.md), weakest
 * first within MX delivery. */
enum client_tls_policy {
	CLIENT_TLS_OPPORTUNISTIC = 0,  /* outbound-tls, nothing more                   */
	CLIENT_TLS_ROUTE,              /* a route's or the smarthost's own tls          */
	CLIENT_TLS_STS_TESTING,        /* MTA-STS, mode testing: checked and reported   */
	CLIENT_TLS_DANE_ENCRYPT,       /* validated TLSA, none usable: STARTTLS only    */
	CLIENT_TLS_STS,                /* MTA-STS enforce: verified TLS, listed MX      */
	CLIENT_TLS_DANE                /* DANE: the chain matches the TLSA records      */
};

/* "opportunistic", "route", "mta-sts-testing", "dane", "mta-sts", "dane"
 * (DANE_ENCRYPT is DANE's, its result says tlsa-invalid). */
const char *client_tls_policy_name(unsigned p);

/* One TLS session (or attempt) under DANE or MTA-STS, for the report. */
struct client_session {
	uint8_t  policy;                     /* enum client_tls_policy */
	int8_t   result;                     /* -1 success, else enum tlsrpt_result */
	char     mx[DNS_NAME_MAX + 1];       /* the MX host */
	char     ip[IP_TEXT_MAX];            /* its address */
	char     local[IP_TEXT_MAX];         /* our end of the connection ("": none) */
	char     helo[SMTPC_NAME_MAX + 1];   /* its name (smtpc peer_name; "": none) */
	char     reason[96];                 /* what failed, for failure-reason-code */
	char     tlsa[640];                  /* DANE: the host's TLSA records, "3 1 1 hex"
	                                        lines (cut at a record's end) */
};
#define CLIENT_HOST_MAX  (ADDR_DOMAIN_MAX + IP_TEXT_MAX + 4)   /* "host[addr]" */

struct client;

/* Asks for the body bytes at off, at most cap of them (like
 * queue_body_read, but answered later): the caller gives them with
 * client_body_data() from the loop, never from inside this call.  0 when
 * asked, -1 if it cannot ask (then the attempt fails temporarily).  The
 * client asks for one piece at a time; nothing waits for the answer. */
typedef int client_body_fn(void *arg, uint64_t off, size_t cap);

/* The outcome: res[] (the caller's array) holds every recipient's status;
 * remote is "host[address]" of the server that decided, or "" if none
 * was reached.  Called from the loop's timer phase: the caller may free
 * the client inside it (client_free). */
typedef void client_done_fn(void *arg, const char *remote);

struct client_req {
	const struct conf  *conf;
	struct dns_resolver *dns;
	struct route        route;       /* copied */
	const char         *sender;      /* "" is <> */
	const char *const  *rcpts;       /* caller-owned, nrcpts */
	size_t              nrcpts;
	struct smtpc_result *res;        /* caller-owned, nrcpts */
	uint64_t            size;
	unsigned            flags;       /* SMTPC_F_* */
	int                 probe;       /* recipient verification: no DATA */
	const struct tls_anchors *anchors; /* `tls verify`: the CA bundle (NULL: none loaded) */
	const char         *auth_user;   /* smarthost credentials, or NULL */
	const char         *auth_pass;
	const struct smtpc_dsn *dsn;     /* DSN parameters to pass on (RFC 3461), or NULL */
	/* Authenticated TLS (MX delivery): the domain's MTA-STS policy in
	 * testing or enforce mode, or NULL (caller-owned); and whether DANE
	 * is looked for (`dns-dnssec trusted` and `dane on`). */
	const struct mtasts_policy *sts;
	int                 dane;
	client_body_fn     *body;
	void               *body_arg;
	client_done_fn     *done;
	void               *arg;
	/* Connection reuse (NULL: none): a kept connection to key (the
	 * destination's policy/route.h key) is used if the pool has one, and
	 * this one is kept there after a clean end.  TLS sessions are offered
	 * again to the servers the pool remembers them from. */
	struct client_pool *pool;
	const char         *key;
	/* This machine's addresses (mta/net/listen.h listen_local_addrs), for
	 * the loop check: a next hop that is one of our own listeners. */
	const struct ipaddr *local;
	size_t              nlocal;
};

/*
 * Kept connections: at most max_messages transactions each, closed (QUIT)
 * after idle_ms without one, or when the server speaks or closes first.
 * One pool per process, in its loop.
 */
struct client_pool;
struct client_pool *client_pool_new(struct ev_loop *l, unsigned max_messages, unsigned idle_ms);
/* QUIT and close every kept connection; forget the TLS sessions. */
void client_pool_free(struct client_pool *p);
/* Kept connections to key (NULL: all). */
unsigned client_pool_count(const struct client_pool *p, const char *key);

/* The answer to the client_body_fn request for off: data[0..len) (1 <=
 * len <= the cap asked), or data NULL when the bytes cannot be read (the
 * attempt then fails temporarily, 4.3.0).  An answer the client no longer
 * waits for (another offset: its session started again; it is done) is
 * ignored. */
void client_body_data(struct client *cl, uint64_t off, const void *data, size_t len);

/* Start; NULL if memory is short.  req's pointers must outlive it. */
struct client *client_start(struct ev_loop *l, const struct client_req *req);

/* Stop at once (no callback), closing the connection, and free. */
void client_free(struct client *cl);

/* "TLSv1.2 SUITE" if the connection that decided was encrypted, else "". */
const char *client_tls(const struct client *cl);
/* 1 when that connection's TLS session was resumed. */
int client_tls_resumed(const struct client *cl);
/* The policy of the connection that decided (a reused one: the policy it
 * was made under), else the destination's; and its result: "ok", an RFC
 * 8460 result type, or "none" (opportunistic, route). */
unsigned client_tls_policy(const struct client *cl);
const char *client_tls_policy_result(const struct client *cl);
/* The sessions under DANE or MTA-STS this transaction made (a reused
 * connection makes none), and the MX hosts a policy did not allow:
 * *out[0..n), valid until client_free. */
size_t client_sessions(const struct client *cl, const struct client_session **out);

/* 1 when no server of the destination took a transaction: none could be
 * connected to (refused, unreachable, timed out), or each one that was
 * refused before MAIL (a 4xx/5xx greeting, EHLO, STARTTLS or AUTH refused,
 * the connection lost): a dead destination, not a DNS failure. */
int client_unreachable(const struct client *cl);

#endif
