/* mta/roles/roles.c -- see roles.h: what every role does on entering itself */
#include "mta/roles/roles.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mta/net/log.h"
#include "mta/roles/sandbox.h"

static const char *const names[ROLE_NROLES] = { "smtp", "queue", "delivery", "key" };

const char *role_name(enum role r)
{
	return (unsigned)r < ROLE_NROLES ? names[r] : "?";
}

int role_signals(void)
{
	sigset_t mask;
	int fd;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
		log_warn("msg=\"signalfd: %s\"", strerror(errno));
	return fd;
}

int role_enter(enum role r, const struct config *cfg, const char *rw_dir)
{
	static const enum sandbox_role sb[ROLE_NROLES] = { SANDBOX_SMTP, SANDBOX_QUEUE,
	                                                   SANDBOX_DELIVERY, SANDBOX_KEY };
	struct sandbox_conf sc;
	char comm[16], report[256], err[512];

	snprintf(comm, sizeof comm, "moat-%s", role_name(r));
	prctl(PR_SET_NAME, comm, 0, 0, 0);
	tzset(); /* musl reads /etc/localtime at the first localtime_r: now, while it may */
	memset(&sc, 0, sizeof sc);
	sc.role = sb[r];
	sc.uid = (uid_t)cfg->conf.run_uid;
	sc.gid = (gid_t)cfg->conf.run_gid;
	sc.rw_dir = rw_dir;
	sc.probe_path = cfg->path;
	sc.parent = getppid();
	if (sandbox_enter(&sc, report, sizeof report, err, sizeof err) != 0) {
		log_warn("msg=\"role %s: cannot enter its sandbox: %s\"", role_name(r), err);
		return -1;
	}
	log_event("role", "role=%s pid=%ld %s", role_name(r), (long)getpid(), report);
	return 0;
}

/* chown dir's entries (one level: the queue keeps no deeper tree but
 * incoming/) and dir itself. */
static int own_tree(int dfd, const char *name, uid_t uid, gid_t gid, int depth)
{
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;
	struct dirent *e;
	int rc = 0;

	if (fd < 0)
		return -1;
	if (fchown(fd, uid, gid) != 0) {
		close(fd);
		return -1;
	}
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		struct stat st;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (S_ISDIR(st.st_mode) && depth > 0)
			rc |= own_tree(fd, e->d_name, uid, gid, depth - 1);
		else if (S_ISREG(st.st_mode) || S_ISSOCK(st.st_mode))
			rc |= fchownat(fd, e->d_name, uid, gid, AT_SYMLINK_NOFOLLOW);
	}
	closedir(d);
	return rc;
}

int role_own_dir(const struct config *cfg)
{
	const char *dir = cfg->conf.queue_path;

	if (geteuid() != 0)
		return 0;
	if (own_tree(AT_FDCWD, dir, (uid_t)cfg->conf.run_uid, (gid_t)cfg->conf.run_gid, 1) != 0) {
		log_warn("msg=\"cannot give %s to uid %u: %s\"", dir, cfg->conf.run_uid,
		         strerror(errno));
		return -1;
	}
	return 0;
}
