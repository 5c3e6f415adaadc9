/*
 * mta/ops/control.h -- the control sockets: how `moat status` and `moat reload`
 * (DIR/control, served by the smtp role) and `moat queue flush|retry|hold|
 * release|delete` (DIR/admin, served by the delivery role: the smtp role
 * cannot change queued mail) talk to a running server.
 *
 * A unix stream socket in the queue directory, mode 0600,
 * made by the server at start (a stale one is replaced: the server holds
 * the queue's writer lock, so no other server can be using it).  Only a
 * peer with the server's user ID or root is answered.  One request per
 * connection, in the line protocol of policy/ctl.h: the client sends a
 * line, the server answers and closes.  A request not complete within
 * CONTROL_TIMEOUT_MS is dropped.
 *
 * Verbs are registered with a handler; the table is the server's (so the
 * operations issue adds "status" and "reload" without touching this file).
 */
#ifndef MOAT_MTA_OPS_CONTROL_H
#define MOAT_MTA_OPS_CONTROL_H

#include <stddef.h>

#include "mta/net/ev.h"
#include "mta/ops/wait.h"
#include "policy/ctl.h"

#define CONTROL_NAME       "control"  /* status, reload: the smtp role */
#define ADMIN_NAME         "admin"    /* flush, retry, hold, release, delete: the delivery role */
#define CONTROL_TIMEOUT_MS 5000
#define CONTROL_REPLY_MAX  4096

struct control;

/* A handler writes its answer (lines separated by '\n', no CODE) into
 * text and returns the code (CTL_OK, CTL_NOTFOUND, ...).  It runs in the
 * event loop: it must not block. */
typedef int control_fn(void *arg, const struct ctl_req *req, char *text, size_t cap);

/* Listen on dir/name (CONTROL_NAME or ADMIN_NAME).  NULL with a message
 * in err. */
struct control *control_new(struct ev_loop *l, const char *dir, const char *name, char *err,
                            size_t errcap);
/* verb takes exactly nargs arguments (else 400). */
int control_register(struct control *c, const char *verb, size_t nargs, control_fn *fn,
                     void *arg);
/* The same, answered once gate (mta/ops/wait.h) lets the request go:
 * `moat status` waits for the queue role's figures this way. */
int control_register_gated(struct control *c, const char *verb, size_t nargs, control_fn *fn,
                           void *arg, ops_gate_fn *gate, void *gate_arg);
/* Stop listening, remove the socket, close what is open. */
void control_free(struct control *c);
/* Do not remove the socket file at control_free() (a sandboxed role may
 * not; the next server's control_new() replaces it). */
void control_keep_path(struct control *c);
/* Remove dir/name (the supervisor, once no role serves it). */
void control_remove(const char *dir, const char *name);

/*
 * The client side: send request to the server of queue directory dir and
 * read its reply, waiting at most timeout_ms.  Returns the reply code with
 * the text (lines joined by '\n', codes stripped) in text, or -1 with
 * errno set: ENOENT or ECONNREFUSED when no server listens, ETIMEDOUT,
 * EPROTO for a reply that does not parse.
 */
int control_call(const char *dir, const char *name, const char *request, char *text, size_t cap,
                 int timeout_ms);

#endif
