/*
 * mta/ops/httpd.h -- the metrics and health endpoint's socket: a listener in
 * the server's event loop that reads one request head per connection
 * (policy/http.h), has the owner's handler answer it, writes the answer in
 * HTTP/1.0 and closes.
 *
 * Bounded: at most HTTPD_CONNS_MAX connections at once (more are closed
 * at accept, unanswered); a request head not complete within
 * HTTPD_TIMEOUT_MS is answered 408, and a connection that does not take
 * its answer by then is closed.  A bad request gets its 4xx/5xx from the
 * parser; the handler sees only good GET and HEAD requests.
 */
#ifndef MOAT_MTA_OPS_HTTPD_H
#define MOAT_MTA_OPS_HTTPD_H

#include <stddef.h>

#include "mta/net/ev.h"
#include "mta/ops/wait.h"
#include "policy/conf.h"
#include "policy/http.h"

#define HTTPD_CONNS_MAX  16
#define HTTPD_TIMEOUT_MS 5000

/* What the handler answers: status, content type (static storage) and a
 * body in malloc'd memory, which httpd frees (NULL/0 for none).  For HEAD
 * the body is measured and not sent. */
struct httpd_reply {
	int         status;
	const char *content_type;
	char       *body;
	size_t      len;
};

typedef void httpd_fn(void *arg, const struct http_req *req, struct httpd_reply *rep);

struct httpd;

/* Listen on addr (a conf_listener: address and port only).  NULL with
 * "listen ADDR:PORT: why" in err.  With a gate (mta/ops/wait.h), a good
 * request waits for the gate's go before fn answers it (never longer than
 * HTTPD_TIMEOUT_MS: then 408); gate and fn get arg. */
struct httpd *httpd_new(struct ev_loop *l, const struct conf_listener *addr, httpd_fn *fn,
                        ops_gate_fn *gate, void *arg, char *err, size_t errcap);
/* Does h listen on addr? */
int httpd_is_at(const struct httpd *h, const struct conf_listener *addr);
/* Stop listening and close every connection, now (h stays allocated: no
 * callback of it runs again).  NULL is fine. */
void httpd_stop(struct httpd *h);
/* httpd_stop() and free.  NULL is fine. */
void httpd_free(struct httpd *h);

#endif
