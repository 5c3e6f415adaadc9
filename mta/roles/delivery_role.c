/* mta/roles/delivery_role.c -- the delivery role; see delivery_role.h */
#include "mta/roles/delivery_role.h"
#include "mta/roles/roles.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "mta/ops/control.h"
#include "mta/smtp/dsn_dkim.h"
#include "mta/smtp/queue_runner.h"
#include "mta/net/dkim_client.h"
#include "mta/net/ev.h"
#include "mta/net/log.h"
#include "mta/net/plink.h"
#include "mta/net/queue_client.h"
#include "mta/net/tls.h"

struct drole {
	struct ev_loop loop;
	struct control *admin;   /* moat queue flush|retry|hold|release|delete */
	struct deliver *dl;
	struct qc *q;
	struct dkc *dk;          /* to its key role: the DSNs' signatures */
	struct ev_io parent, sig;
};

static void kicked(void *arg)
{
	struct drole *r = arg;

	if (r->dl != NULL)
		deliver_kick(r->dl);
}

static void parent_cb(struct ev_loop *l, struct ev_io *io, unsigned events)
{
	struct drole *r = io->arg;
	struct plink_msg m;
	int fd, rc;

	(void)events;
	while ((rc = plink_recv(io->fd, &m, &fd)) == 1) {
		if (m.type == PLINK_FD && m.kind == PLINK_QUEUE) {
			qc_set_fd(r->q, fd);
			log_event("link", "role=delivery to=queue");
			deliver_kick(r->dl);
			continue;
		}
		if (m.type == PLINK_FD && m.kind == PLINK_DKIM) {
			dkc_set_fd(r->dk, fd);   /* a new key role: the old one ends */
			log_event("link", "role=delivery to=key");
			continue;
		}
		if (fd >= 0)
			close(fd);
	}
	if (rc < 0) {
		ev_io_del(l, io);
		ev_stop(l);
	}
}

static void sig_cb(struct ev_loop *l, struct ev_io *io, unsigned events)
{
	struct drole *r = io->arg;
	struct signalfd_siginfo si;

	(void)events;
	while (read(io->fd, &si, sizeof si) == (ssize_t)sizeof si) {
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
			log_event("stop", "role=delivery deliveries=%u", deliver_active(r->dl));
			deliver_stop(r->dl);  /* nothing recorded: tried again after the restart */
			ev_stop(l);
		}
	}
}

int delivery_role_main(struct config *cfg, int plink, int qfd, int dfd)
{
	static struct drole r;
	char err[1024];

	memset(&r, 0, sizeof r);
	if (ev_init(&r.loop) < 0 || (r.q = qc_new(&r.loop, qfd, kicked, &r, NULL, NULL)) == NULL ||
	    (r.dk = dkc_new(&r.loop, dfd)) == NULL)
		return 111;
	dsn_dkim_use(r.dk);
	/* resolv.conf first, then the sandbox; the smarthost's password and
	 * the CA bundle came with the config. */
	if ((r.dl = deliver_new(&r.loop, r.q, &cfg->conf, &cfg->tables, err, sizeof err)) == NULL) {
		log_warn("msg=\"%s\"", err);
		return 111;
	}
	/* The admin verbs are this role's: the smtp role cannot hold or
	 * delete queued mail (its queue link may not ask). */
	if ((r.admin = control_new(&r.loop, cfg->conf.queue_path, ADMIN_NAME, err, sizeof err)) ==
	    NULL) {
		log_warn("msg=\"%s\"", err);
	} else {
		static const char *const verbs[] = { "flush", "retry", "hold", "release", "delete" };

		control_keep_path(r.admin);
		for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
			control_register(r.admin, verbs[i], i == 0 ? 0 : 1, deliver_control, r.dl);
		control_register(r.admin, "destinations", 0, deliver_destinations, r.dl);
	}
	r.sig.fd = role_signals();
	if (r.sig.fd < 0 || role_enter(ROLE_DELIVERY, cfg, NULL) != 0)
		return 111;
	r.sig.cb = sig_cb;
	r.sig.arg = &r;
	r.parent.fd = plink;
	r.parent.cb = parent_cb;
	r.parent.arg = &r;
	ev_io_set(&r.loop, &r.sig, EV_READ);
	ev_io_set(&r.loop, &r.parent, EV_READ);
	if (ev_run(&r.loop) < 0)
		log_warn("msg=\"epoll_wait: %s\"", strerror(errno));
	control_free(r.admin);
	deliver_free(r.dl);
	dsn_dkim_use(NULL);
	dkc_free(r.dk);
	qc_free(r.q);
	ev_free(&r.loop);
	return 0;
}
