/* mta/roles/supervisor.c -- the supervisor; see supervisor.h */
#include "mta/roles/supervisor.h"
#include "mta/roles/roles.h"
#include "mta/roles/key_role.h"
#include "mta/roles/delivery_role.h"
#include "mta/roles/queue_role.h"
#include "mta/roles/smtp_role.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mta/ops/control.h"
#include "mta/net/ev.h"
#include "mta/net/key_client.h"
#include "mta/net/listen.h"
#include "mta/net/log.h"
#include "mta/ops/ops.h"
#include "mta/net/plink.h"
#include "mta/net/tls.h"

#define PROCS_MAX    16
#define FAST_DEATH_MS 1000
#define BACKOFF_MAX_MS 5000
#define STOP_GRACE_MS 5000   /* after shutdown-timeout, before SIGKILL */
#define DRAIN_WAIT_MS 2000   /* a reload waits this long for the old smtp roles */
#define START_RETRIES  40    /* x START_RETRY_US: a killed server's roles going away */
#define START_RETRY_US 50000

struct proc {
	enum role      role;
	pid_t          pid;        /* 0: not running */
	int            plink;      /* our end; -1 none (the key role) */
	struct config *cfg;        /* smtp, key: its generation's (a reference) */
	struct proc   *peer;       /* smtp or delivery <-> its key role */
	int            used;
	int            draining;
	unsigned       slot;       /* metrics slot (mta/ops/ops.h) */
	unsigned       fast;       /* deaths in a row within FAST_DEATH_MS of start */
	int64_t        started;    /* monotonic ms */
	int64_t        due;        /* restart at this monotonic ms; 0 none */
	int            first;      /* started with the server: a failure at once is fatal */
};

struct sup {
	struct config *cfg;
	struct proc    p[PROCS_MAX];
	int            sigfd;
	int            stopping;
	int64_t        kill_at;    /* stopping: SIGKILL what is left at this time */
	unsigned       restarts;
	int            fatal;      /* a role could not start: exit 111 */
	int            booting;    /* the first start: each role's own event=role says it */
};

static struct proc *role_proc(struct sup *s, enum role r)
{
	for (size_t i = 0; i < PROCS_MAX; i++)
		if (s->p[i].used && s->p[i].role == r && !s->p[i].draining)
			return &s->p[i];
	return NULL;
}

static struct proc *new_proc(struct sup *s, enum role r, struct config *cfg)
{
	for (size_t i = 0; i < PROCS_MAX; i++) {
		struct proc *p = &s->p[i];

		if (!p->used) {
			memset(p, 0, sizeof *p);
			p->used = 1;
			p->role = r;
			p->plink = -1;
			p->cfg = config_ref(cfg);
			return p;
		}
	}
	return NULL;
}

static void free_proc(struct proc *p)
{
	if (p->plink >= 0)
		close(p->plink);
	if (p->peer != NULL)
		p->peer->peer = NULL;
	config_unref(p->cfg);
	memset(p, 0, sizeof *p);
	p->plink = -1;
}

/* Metrics slots: 0 supervisor, 1 queue, 2 delivery, 3.. smtp by generation. */
static unsigned slot_of(enum role r, unsigned generation)
{
	return r == ROLE_QUEUE ? 1 : r == ROLE_DELIVERY ? 2 : r == ROLE_KEY ? 0
	     : 3 + generation % (OPS_SLOTS - 3);
}

/* In a child: close every descriptor but 0-2 and keep[0..n). */
static void close_others(const int *keep, size_t n)
{
	int hi = 65536;

	for (int fd = 3; fd < hi; fd++) {
		size_t i;

		for (i = 0; i < n && keep[i] != fd; i++)
			;
		if (i < n)
			continue;
#ifdef SYS_close_range
		{
			int next = hi;

			for (i = 0; i < n; i++)
				if (keep[i] > fd && keep[i] < next)
					next = keep[i];
			if (syscall(SYS_close_range, (unsigned)fd, (unsigned)(next - 1), 0u) == 0) {
				fd = next;
				continue;
			}
		}
#endif
		close(fd);
	}
}

/* Fork p's process: its plink (not for the key role), then its main with
 * the links it is born with: qfd to the queue role, kfd the TLS link and
 * dfd the DKIM link to (or, for a key role, from) a key role's client. */
static int spawn(struct sup *s, struct proc *p, int qfd, int kfd, int dfd)
{
	int pl[2] = { -1, -1 }, keep[8 + 2 * CONF_MAX_LISTENERS + 4], nkeep = 0;
	sigset_t none;
	pid_t pid;

	if (p->role != ROLE_KEY && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pl) != 0) {
		log_warn("msg=\"socketpair: %s\"", strerror(errno));
		return -1;
	}
	p->slot = slot_of(p->role, p->cfg->generation);
	pid = fork();
	if (pid < 0) {
		log_warn("msg=\"fork: %s\"", strerror(errno));
		if (pl[0] >= 0) {
			close(pl[0]);
			close(pl[1]);
		}
		return -1;
	}
	if (pid == 0) {
		int rc = 111;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGCHLD, SIG_DFL);
		if (pl[1] >= 0)
			keep[nkeep++] = pl[1];
		if (qfd >= 0)
			keep[nkeep++] = qfd;
		if (kfd >= 0)
			keep[nkeep++] = kfd;
		if (dfd >= 0)
			keep[nkeep++] = dfd;
		if (log_fd() >= 0)
			keep[nkeep++] = log_fd();
		if (p->role == ROLE_SMTP) /* the listeners: listen_open() takes duplicates */
			nkeep += (int)listen_kept_fds(keep + nkeep, sizeof keep / sizeof keep[0] - (size_t)nkeep);
		else
			listen_forget_kept();
		close_others(keep, (size_t)nkeep);
		ops_count_slot(p->slot);
		if (p->role != ROLE_SMTP && p->role != ROLE_KEY && p->cfg->tables.creds != NULL)
			tls_creds_use_key_role(p->cfg->tables.creds, -1); /* not ours: forget it */
		if (p->role != ROLE_DELIVERY)
			tables_forget_auth(&p->cfg->tables);   /* the smarthost's: the delivery role's */
		if (p->role != ROLE_KEY)
			tables_forget_dkim(&p->cfg->tables);   /* the DKIM keys: the key role's */
		switch (p->role) {
		case ROLE_QUEUE:    rc = queue_role_main(p->cfg, pl[1]); break;
		case ROLE_DELIVERY: rc = delivery_role_main(p->cfg, pl[1], qfd, dfd); break;
		case ROLE_SMTP:     rc = smtp_role_main(p->cfg, pl[1], qfd, kfd, dfd); break;
		case ROLE_KEY:      rc = key_role_main(p->cfg, kfd, dfd); break;
		default:            break;
		}
		_exit(rc);
	}
	if (pl[1] >= 0)
		close(pl[1]);
	p->plink = pl[0];
	p->pid = pid;
	p->started = ev_monotonic_ms();
	p->due = 0;
	if (!s->booting)
		log_event("role-start", "role=%s pid=%ld generation=%u restarts=%u",
		          role_name(p->role), (long)pid, p->cfg->generation, s->restarts);
	return 0;
}

/* A qwire link between client c and the queue role: one end to each.
 * Before c is forked, *cfd receives c's end (NULL: c runs, send it).
 * 0, or -1 (no queue role now: it gets links when it starts). */
static int link_queue(struct sup *s, struct proc *c, int *cfd)
{
	struct proc *q = role_proc(s, ROLE_QUEUE);
	struct plink_msg m;
	int sp[2];

	if (cfd != NULL)
		*cfd = -1;
	if (q == NULL || q->pid == 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0)
		return -1;
	memset(&m, 0, sizeof m);
	m.type = PLINK_FD;
	m.kind = c->role == ROLE_SMTP ? PLINK_SMTP_CLIENT : PLINK_DELIVERY_CLIENT;
	if (plink_send(q->plink, &m, sp[1]) != 0) {
		close(sp[0]);
		close(sp[1]);
		return -1;
	}
	close(sp[1]);
	if (cfd != NULL) {
		*cfd = sp[0];
		return 0;
	}
	m.kind = PLINK_QUEUE;
	if (plink_send(c->plink, &m, sp[0]) != 0) {
		close(sp[0]);
		return -1;
	}
	close(sp[0]);
	return 0;
}

static void close_pair(int sp[2])
{
	for (int i = 0; i < 2; i++)
		if (sp[i] >= 0)
			close(sp[i]);
	sp[0] = sp[1] = -1;
}

/* A link that t holds: to *out when t is about to be forked, else sent to
 * t over its plink as kind (then closed here). */
static void hand_link(struct proc *t, int fd, enum plink_kind kind, int *out)
{
	struct plink_msg m;

	if (fd < 0)
		return;
	if (out != NULL) {
		*out = fd;
		return;
	}
	memset(&m, 0, sizeof m);
	m.type = PLINK_FD;
	m.kind = kind;
	plink_send(t->plink, &m, fd);
	close(fd);
}

/*
 * Start a key role for t, an smtp role (with t's config: a TLS link when
 * it has a TLS key, a DKIM link when it has dkim-sign lines) or the
 * delivery role (with the current config, a DKIM link: the keys of a
 * reload reach the DSNs too).  t runs, or is about to be: with kfd and dfd
 * NULL its links go to it over its plink.  No link needed: no key role, 0.
 * 0 or -1.
 */
static int start_key(struct sup *s, struct proc *t, int *kfd, int *dfd)
{
	struct config *cfg = t->role == ROLE_SMTP ? t->cfg : s->cfg;
	int tls[2] = { -1, -1 }, dk[2] = { -1, -1 };
	struct proc *k;

	if (kfd != NULL)
		*kfd = -1;
	if (dfd != NULL)
		*dfd = -1;
	if ((t->role == ROLE_SMTP && cfg->tables.creds != NULL &&
	     socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, tls) != 0) ||
	    ((t->role != ROLE_SMTP || cfg->conf.ndkim > 0) &&
	     socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, dk) != 0)) {
		close_pair(tls);
		return -1;
	}
	if (tls[0] < 0 && dk[0] < 0)
		return 0;
	if ((k = new_proc(s, ROLE_KEY, cfg)) == NULL || spawn(s, k, -1, tls[1], dk[1]) != 0) {
		if (k != NULL)
			free_proc(k);
		close_pair(tls);
		close_pair(dk);
		return -1;
	}
	if (tls[1] >= 0)
		close(tls[1]);
	if (dk[1] >= 0)
		close(dk[1]);
	k->peer = t;
	t->peer = k;
	hand_link(t, tls[0], PLINK_KEY, kfd);
	hand_link(t, dk[0], PLINK_DKIM, dfd);
	return 0;
}

/* A reload: the delivery role's DSNs are signed with the new keys, by a
 * new key role (its old one ends when the delivery role drops its link). */
static void renew_delivery_key(struct sup *s)
{
	struct proc *d = role_proc(s, ROLE_DELIVERY);

	if (d == NULL || d->pid == 0 || (s->cfg->conf.ndkim == 0 && d->peer == NULL))
		return;
	if (d->peer != NULL) {
		d->peer->peer = NULL;
		d->peer = NULL;
	}
	if (start_key(s, d, NULL, NULL) != 0)
		log_warn("msg=\"cannot start a key role for the delivery role: DSNs go unsigned\"");
}

/* (Re)start p's process with its links. */
static int start(struct sup *s, struct proc *p)
{
	int qfd = -1, kfd = -1, dfd = -1, rc;

	switch (p->role) {
	case ROLE_QUEUE:
		if ((rc = spawn(s, p, -1, -1, -1)) != 0)
			return rc;
		/* Every client gets a new link to it. */
		for (size_t i = 0; i < PROCS_MAX; i++) {
			struct proc *c = &s->p[i];

			if (c->used && c->pid != 0 && (c->role == ROLE_SMTP || c->role == ROLE_DELIVERY))
				link_queue(s, c, NULL);
		}
		return 0;
	case ROLE_DELIVERY:
		link_queue(s, p, &qfd);
		/* Its key role signs DSNs: without one they go unsigned. */
		if (s->cfg->conf.ndkim > 0 && start_key(s, p, NULL, &dfd) != 0)
			log_warn("msg=\"cannot start a key role for the delivery role: DSNs go unsigned\"");
		rc = spawn(s, p, qfd, -1, dfd);
		break;
	case ROLE_SMTP:
		link_queue(s, p, &qfd);
		if (start_key(s, p, &kfd, &dfd) != 0) {
			rc = -1;
			break;
		}
		rc = spawn(s, p, qfd, kfd, dfd);
		break;
	default:
		return -1;
	}
	if (qfd >= 0)
		close(qfd);
	if (kfd >= 0)
		close(kfd);
	if (dfd >= 0)
		close(dfd);
	return rc;
}

/* The log destination c asks for; 0, or -1 with err set (nothing changed). */
static int log_apply(const struct conf *c, char *err, size_t errcap)
{
	char e[300];

	if (c->log_target != CONF_LOG_SYSLOG) {
		log_use_stderr();
		return 0;
	}
	if (log_open_syslog(c->log_socket, c->log_facility, e, sizeof e) == 0)
		return 0;
	snprintf(err, errcap, "log syslog %s", e);
	return -1;
}

/* The listening sockets c names, kept open here (0, or -1 with err). */
static int keep_listeners(const struct conf *c, char *err, size_t errcap)
{
	listen_keep_begin();
	for (size_t i = 0; i < c->nlisteners; i++)
		if (listen_keep(&c->listeners[i], err, errcap) != 0)
			return -1;
	if (c->metrics.port != 0 && listen_keep(&c->metrics, err, errcap) != 0)
		return -1;
	return 0;
}

/* Tell the n smtp roles in old to drain and wait (at most DRAIN_WAIT_MS)
 * until each says it no longer accepts (a PLINK_DRAIN back) or is gone. */
static void wait_drained(struct proc **old, size_t n)
{
	struct plink_msg m;
	int64_t deadline = ev_monotonic_ms() + DRAIN_WAIT_MS;
	int done[PROCS_MAX] = { 0 };
	size_t left = 0, i;

	memset(&m, 0, sizeof m);
	m.type = PLINK_DRAIN;
	for (i = 0; i < n; i++) {
		if (old[i]->pid != 0 && old[i]->plink >= 0 && plink_send(old[i]->plink, &m, -1) == 0)
			left++;
		else
			done[i] = 1;
	}
	while (left > 0) {
		struct pollfd pf[PROCS_MAX];
		int64_t wait = deadline - ev_monotonic_ms();

		for (i = 0; i < n; i++) {
			pf[i].fd = done[i] ? -1 : old[i]->plink;
			pf[i].events = POLLIN;
			pf[i].revents = 0;
		}
		if (wait <= 0 || poll(pf, n, (int)wait) <= 0)
			break;
		for (i = 0; i < n; i++) {
			struct plink_msg r;
			int fd, rc;

			if (done[i] || !pf[i].revents)
				continue;
			while ((rc = plink_recv(old[i]->plink, &r, &fd)) == 1) {
				if (fd >= 0)
					close(fd);
				if (r.type == PLINK_DRAIN)
					break;
			}
			if (rc != 0) {   /* drained, or gone */
				done[i] = 1;
				left--;
			}
		}
	}
	if (left > 0)
		log_warn("msg=\"%zu smtp role(s) of the old generation did not say they drained\"", left);
}

/* SIGHUP or `moat reload`: 0 (a new generation serves) or -1 (refused),
 * with what happened in msg. */
static int reload(struct sup *s, char *msg, size_t cap)
{
	struct config *fresh;
	struct proc *old[PROCS_MAX], *t;
	size_t nold = 0, i;
	char err[2048], q[2048];

	if (s->stopping) {
		snprintf(msg, cap, "stopping: not reloaded");
		return -1;
	}
	fresh = config_load(s->cfg->path, err, sizeof err);
	if (fresh != NULL && strcmp(fresh->conf.queue_path, s->cfg->conf.queue_path) != 0) {
		snprintf(err, sizeof err, "%s: queue: %s is not the queue in use (%s); a restart moves it",
		         fresh->path, fresh->conf.queue_path, s->cfg->conf.queue_path);
		config_unref(fresh);
		fresh = NULL;
	}
	if (fresh == NULL || keep_listeners(&fresh->conf, err, sizeof err) != 0 ||
	    log_apply(&fresh->conf, err, sizeof err) != 0) {
		if (fresh != NULL)
			listen_keep_end(0);
		config_unref(fresh);
		log_text(err, strlen(err), q, sizeof q);
		log_event("reload", "status=refused generation=%u error=\"%s\"", s->cfg->generation, q);
		snprintf(msg, cap, "refused, generation %u stays: %.400s", s->cfg->generation, err);
		return -1;
	}
	fresh->generation = s->cfg->generation + 1;
	for (i = 0; i < PROCS_MAX; i++)
		if (s->p[i].used && s->p[i].role == ROLE_SMTP && !s->p[i].draining)
			old[nold++] = &s->p[i];
	if (fresh->conf.queue_map_size != s->cfg->conf.queue_map_size)
		log_warn("msg=\"queue-map-size stays %llu until a restart\"",
		         (unsigned long long)s->cfg->conf.queue_map_size);
	if (!config_same_restart(&fresh->conf, &s->cfg->conf))
		log_warn("msg=\"delivery settings stay as they were at start until a restart\"");
	/* A new pair serves the new config; the old smtp roles drain. */
	for (i = 0; i < nold; i++)
		old[i]->draining = 1;
	t = new_proc(s, ROLE_SMTP, fresh);
	if (t == NULL || start(s, t) != 0) {
		for (i = 0; i < nold; i++)
			old[i]->draining = 0;
		if (t != NULL)
			free_proc(t);
		config_unref(fresh);
		listen_keep_end(0);
		log_event("reload", "status=refused generation=%u error=\"cannot start a role\"",
		          s->cfg->generation);
		snprintf(msg, cap, "refused, generation %u stays: cannot start a role", s->cfg->generation);
		return -1;
	}
	config_unref(s->cfg);
	s->cfg = fresh;
	renew_delivery_key(s);
	/* The old smtp roles stop taking connections before the reload is
	 * said to be done (both generations accept on the same sockets). */
	wait_drained(old, nold);
	listen_keep_end(1);   /* close the addresses the new config no longer has */
	log_event("reload", "status=ok generation=%u listeners=%zu draining=%zu%s%s",
	          fresh->generation, fresh->conf.nlisteners, nold, fresh->tables.creds ? " key=" : "",
	          fresh->tables.creds ? tls_creds_describe(fresh->tables.creds) : "");
	snprintf(msg, cap, "reloaded: generation %u, %zu listeners", fresh->generation,
	         fresh->conf.nlisteners);
	return 0;
}

static void do_reload(struct sup *s, struct proc *asker)
{
	struct plink_msg m;
	int rc;

	memset(&m, 0, sizeof m);
	rc = reload(s, m.text, sizeof m.text);
	if (asker != NULL) {
		m.type = PLINK_RELOADED;
		m.status = rc;
		plink_send(asker->plink, &m, -1);
	}
}

static void begin_stop(struct sup *s)
{
	if (s->stopping)
		return;
	s->stopping = 1;
	s->kill_at = ev_monotonic_ms() + (int64_t)s->cfg->conf.shutdown_timeout * 1000 + STOP_GRACE_MS;
	log_event("stop", "role=supervisor");
	listen_close_kept();  /* no connection is taken from now on */
	for (size_t i = 0; i < PROCS_MAX; i++) {
		struct proc *p = &s->p[i];

		if (!p->used)
			continue;
		p->due = 0;
		if (p->pid != 0 && (p->role == ROLE_SMTP || p->role == ROLE_DELIVERY))
			kill(p->pid, SIGTERM);
	}
}

/* Stopping: once no smtp or delivery role is left, the queue role goes. */
static void stop_step(struct sup *s)
{
	int clients = 0;

	for (size_t i = 0; i < PROCS_MAX; i++)
		if (s->p[i].used && s->p[i].pid != 0 &&
		    (s->p[i].role == ROLE_SMTP || s->p[i].role == ROLE_DELIVERY))
			clients++;
	if (clients == 0) {
		struct proc *q = role_proc(s, ROLE_QUEUE);

		/* The queue role ends when its link closes. */
		if (q != NULL && q->pid != 0 && q->plink >= 0) {
			close(q->plink);
			q->plink = -1;
		}
	}
	if (ev_monotonic_ms() >= s->kill_at) {
		for (size_t i = 0; i < PROCS_MAX; i++)
			if (s->p[i].used && s->p[i].pid != 0)
				kill(s->p[i].pid, SIGKILL);
	}
}

static void died(struct sup *s, struct proc *p, int status)
{
	int64_t now = ev_monotonic_ms();

	if (WIFSIGNALED(status))
		log_event("role-exit", "role=%s pid=%ld status=killed signal=%d", role_name(p->role),
		          (long)p->pid, WTERMSIG(status));
	else
		log_event("role-exit", "role=%s pid=%ld status=exited code=%d", role_name(p->role),
		          (long)p->pid, WEXITSTATUS(status));
	p->pid = 0;
	if (p->plink >= 0) {
		close(p->plink);
		p->plink = -1;
	}
	/* A role that fails as the server starts (its config, a file it
	 * reads, a socket): the server cannot run; say so, do not loop. */
	if (p->first && !WIFSIGNALED(status) && WEXITSTATUS(status) != 0 &&
	    now - p->started < FAST_DEATH_MS && !s->stopping) {
		log_warn("msg=\"the %s role could not start: stopping\"", role_name(p->role));
		s->fatal = 1;
		begin_stop(s);
	}
	p->first = 0;
	/* A drained smtp role, a key role whose smtp role is gone or
	 * draining (it ends with it), anything while stopping: not again. */
	if (s->stopping || p->draining ||
	    (p->role == ROLE_KEY && (p->peer == NULL || p->peer->pid == 0 || p->peer->draining))) {
		free_proc(p);
		return;
	}
	if ((p->role == ROLE_SMTP || p->role == ROLE_DELIVERY) && p->peer != NULL) {
		/* Its key role ends on EOF; the new process gets a new one. */
		p->peer->peer = NULL;
		p->peer = NULL;
	}
	p->fast = now - p->started < FAST_DEATH_MS ? p->fast + 1 : 0;
	p->due = now + (p->fast == 0 ? 1 : (int64_t)100 << (p->fast < 6 ? p->fast : 6));
	if (p->due - now > BACKOFF_MAX_MS)
		p->due = now + BACKOFF_MAX_MS;
}

static void restart_due(struct sup *s)
{
	int64_t now = ev_monotonic_ms();

	for (size_t i = 0; i < PROCS_MAX; i++) {
		struct proc *p = &s->p[i];

		if (!p->used || p->pid != 0 || p->due <= 0 || p->due > now || s->stopping)
			continue;
		s->restarts++;
		if (p->role == ROLE_KEY) {
			struct proc *t = p->peer;

			free_proc(p);
			if (t != NULL && t->pid != 0)
				start_key(s, t, NULL, NULL);
			continue;
		}
		if (p->role == ROLE_SMTP && p->cfg != s->cfg) {
			config_unref(p->cfg);
			p->cfg = config_ref(s->cfg);
		}
		if (start(s, p) != 0)
			p->due = now + BACKOFF_MAX_MS;
	}
}

static void reap(struct sup *s)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (size_t i = 0; i < PROCS_MAX; i++) {
			if (s->p[i].used && s->p[i].pid == pid) {
				died(s, &s->p[i], status);
				break;
			}
		}
	}
}

static int alive(const struct sup *s)
{
	for (size_t i = 0; i < PROCS_MAX; i++)
		if (s->p[i].used && s->p[i].pid != 0)
			return 1;
	return 0;
}

/* What a role sent on its plink: only an smtp role's reload request is
 * expected; anything else ends that role. */
static void from_role(struct sup *s, struct proc *p)
{
	struct plink_msg m;
	int fd, rc;

	while ((rc = plink_recv(p->plink, &m, &fd)) == 1) {
		if (fd >= 0)
			close(fd);
		if (m.type == PLINK_RELOAD && p->role == ROLE_SMTP) {
			do_reload(s, p);
			continue;
		}
		if (m.type == PLINK_DRAIN && p->role == ROLE_SMTP)
			continue;   /* a drain said done after wait_drained() gave up */
		rc = -1;
		break;
	}
	if (rc < 0 && p->pid != 0) {
		if (rc == -2)
			log_warn("msg=\"role %s sent what the supervisor does not take: ended\"",
			         role_name(p->role));
		kill(p->pid, SIGKILL);
		close(p->plink);
		p->plink = -1;
	}
}

/* Everything before the first role: the log, the listeners (kept for
 * every generation of the smtp role), the counters, the queue directory,
 * the signals.  0, or -1 (logged). */
static int sup_prepare(struct sup *s, struct config *cfg)
{
	char err[1024];
	sigset_t mask;

	for (size_t i = 0; i < PROCS_MAX; i++)
		s->p[i].plink = -1;
	s->cfg = cfg;
	if (log_apply(&cfg->conf, err, sizeof err) != 0) {
		log_warn("msg=\"%s\"", err);
		return -1;
	}
	if (geteuid() == 0 && cfg->conf.run_uid == 0) {
		log_warn("msg=\"user-id 0: the roles never run as root\"");
		return -1;
	}
	/* A server killed just before may still be going away (its roles die
	 * with it, a moment later): its addresses are in use that moment. */
	for (int tries = 0; ; tries++) {
		err[0] = 0;
		if (keep_listeners(&cfg->conf, err, sizeof err) == 0 || errno != EADDRINUSE ||
		    tries == START_RETRIES)
			break;
		listen_keep_end(0);
		usleep(START_RETRY_US);
	}
	if (err[0] != 0 || ops_shared_init() != 0) {
		log_warn("msg=\"%s\"", err[0] ? err : "cannot map the counters");
		return -1;
	}
	ops_count_slot(0);
	/* The queue directory exists before any role starts (the smtp role
	 * binds its control socket there); the queue role makes the rest. */
	if (mkdir(cfg->conf.queue_path, 0700) != 0 && errno != EEXIST) {
		log_warn("msg=\"queue %s: %s\"", cfg->conf.queue_path, strerror(errno));
		return -1;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN); /* a file size limit fails the write (451), not the queue role */
	if ((s->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
		log_warn("msg=\"signalfd: %s\"", strerror(errno));
		return -1;
	}
	return 0;
}

/* The first roles, in the order each needs the one before. */
static void start_roles(struct sup *s, struct config *cfg)
{
	enum role order[3] = { ROLE_QUEUE, ROLE_DELIVERY, ROLE_SMTP };

	s->booting = 1;
	for (size_t i = 0; i < 3; i++) {
		struct proc *p = new_proc(s, order[i], cfg);

		if (p != NULL)
			p->first = 1;
		if (p == NULL || start(s, p) != 0) {
			log_warn("msg=\"cannot start the %s role\"", role_name(order[i]));
			s->fatal = 1;
			begin_stop(s);
			break;
		}
	}
	s->booting = 0;
}

/* One turn of the supervisor's loop: a signal, a role's word, a role to
 * restart or to stop.  0, or -1 when poll fails. */
static int sup_turn(struct sup *s)
{
	struct pollfd pf[PROCS_MAX + 1];
	struct proc *who[PROCS_MAX + 1];
	size_t n = 0;
	int64_t wait = -1, now = ev_monotonic_ms();

	pf[n].fd = s->sigfd;
	pf[n].events = POLLIN;
	who[n++] = NULL;
	for (size_t i = 0; i < PROCS_MAX; i++) {
		struct proc *p = &s->p[i];

		if (p->used && p->pid != 0 && p->plink >= 0) {
			pf[n].fd = p->plink;
			pf[n].events = POLLIN;
			who[n++] = p;
		}
		if (p->used && p->pid == 0 && p->due > 0 && (wait < 0 || p->due - now < wait))
			wait = p->due - now < 0 ? 0 : p->due - now;
	}
	if (s->stopping)
		wait = 200;
	if (poll(pf, n, (int)wait) < 0 && errno != EINTR)
		return -1;
	if (pf[0].revents) {
		struct signalfd_siginfo si;

		while (read(s->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
			if (si.ssi_signo == SIGCHLD)
				reap(s);
			else if (si.ssi_signo == SIGHUP)
				do_reload(s, NULL);
			else
				begin_stop(s);
		}
	}
	for (size_t i = 1; i < n; i++)
		if (pf[i].revents && who[i]->pid != 0 && who[i]->plink == pf[i].fd)
			from_role(s, who[i]);
	reap(s);
	if (s->stopping)
		stop_step(s);
	else
		restart_due(s);
	return 0;
}

int supervisor_run(struct config *cfg)
{
	static struct sup s;

	memset(&s, 0, sizeof s);
	if (sup_prepare(&s, cfg) != 0)
		return 111;
	log_event("start", "hostname=%s listeners=%zu queue=%s delivery=%s metrics=%s uid=%ld "
	          "roles-uid=%u", cfg->conf.hostname, cfg->conf.nlisteners, cfg->conf.queue_path,
	          cfg->conf.delivery ? "on" : "off", cfg->conf.metrics.port ? "on" : "off",
	          (long)geteuid(), geteuid() == 0 ? cfg->conf.run_uid : (unsigned)geteuid());
	start_roles(&s, cfg);
	while (!s.stopping || alive(&s))
		if (sup_turn(&s) != 0)
			break;
	for (size_t i = 0; i < PROCS_MAX; i++)
		if (s.p[i].used)
			free_proc(&s.p[i]);
	close(s.sigfd);
	listen_close_kept();
	control_remove(s.cfg->conf.queue_path, CONTROL_NAME);
	control_remove(s.cfg->conf.queue_path, ADMIN_NAME);
	log_event("exit", "status=%d", s.fatal ? 111 : 0);
	config_unref(s.cfg);
	log_use_stderr();
	return s.fatal ? 111 : 0;
}
