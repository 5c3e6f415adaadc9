/* mta/cmd/conf_path.c -- which config file a command reads; see conf_path.h */
#include "mta/cmd/conf_path.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* A /proc file's bytes into buf (NUL-terminated; a longer file is cut).
 * Returns the length, or -1. */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	ssize_t n;

	if (fd < 0)
		return -1;
	while (len + 1 < cap && (n = read(fd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	return (ssize_t)len;
}

/* The value of NAME=... in a NUL-separated list (environ), or NULL. */
static const char *env_value(const char *list, size_t len, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < len; i += strlen(list + i) + 1)
		if (strncmp(list + i, name, n) == 0 && list[i + n] == '=')
			return list + i + n + 1;
	return NULL;
}

/* One running process: its parent, and the config it serves if it is a
 * `moat serve` ("" when it is not, or when we cannot tell which). */
struct served {
	pid_t pid, ppid;
	char  path[CONFPATH_MAX];
};

static pid_t parent_of(const char *pid)
{
	char file[64], stat[512];
	const char *close_paren;

	snprintf(file, sizeof file, "/proc/%s/stat", pid);
	if (read_small(file, stat, sizeof stat) < 0 || (close_paren = strrchr(stat, ')')) == NULL)
		return 0;
	/* "PID (comm) STATE PPID ...": comm may hold spaces and parentheses. */
	return (pid_t)strtol(close_paren + 4, NULL, 10);
}

/* Fill s->path from /proc/PID when it is a `moat serve`; 0, or -1. */
static int served_config(const char *pid, struct served *s)
{
	static char argv[8192], env[65536];
	char file[64], cwd[CONFPATH_MAX];
	const char *arg0, *base, *conf = NULL;
	ssize_t len, n;
	size_t i;

	snprintf(file, sizeof file, "/proc/%s/cmdline", pid);
	if ((len = read_small(file, argv, sizeof argv)) <= 0)
		return -1;
	arg0 = argv;
	base = strrchr(arg0, '/') ? strrchr(arg0, '/') + 1 : arg0;
	i = strlen(arg0) + 1;
	if (strncmp(base, "moat", 4) != 0 || (size_t)len <= i || strcmp(argv + i, "serve") != 0)
		return -1;
	/* -c FILE anywhere after the subcommand, as main.c takes it. */
	for (i += strlen(argv + i) + 1; i < (size_t)len && conf == NULL; i += strlen(argv + i) + 1)
		if (strcmp(argv + i, "-c") == 0 && i + 3 < (size_t)len)
			conf = argv + i + 3;
	snprintf(file, sizeof file, "/proc/%s/environ", pid);
	if (conf == NULL && (n = read_small(file, env, sizeof env)) > 0)
		conf = env_value(env, (size_t)n, "MOAT_CONF");
	if (conf == NULL || *conf == '\0')
		conf = CONFPATH_DEFAULT; /* (or its environment was not ours to read) */
	if (conf[0] == '/') {
		snprintf(s->path, sizeof s->path, "%s", conf);
		return 0;
	}
	snprintf(file, sizeof file, "/proc/%s/cwd", pid);
	if ((n = readlink(file, cwd, sizeof cwd - 1)) <= 0)
		return -1;
	cwd[n] = '\0';
	if ((size_t)snprintf(s->path, sizeof s->path, "%s/%s", cwd, conf) >= sizeof s->path)
		return -1;
	return 0;
}

#define SERVED_MAX 64

size_t confpath_running(char (*paths)[CONFPATH_MAX], size_t max)
{
	static struct served found[SERVED_MAX];
	size_t nfound = 0, n = 0;
	DIR *d = opendir("/proc");
	struct dirent *e;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL && nfound < SERVED_MAX) {
		struct served *s = &found[nfound];

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		s->pid = (pid_t)strtol(e->d_name, NULL, 10);
		if (s->pid == getpid() || served_config(e->d_name, s) < 0)
			continue;
		s->ppid = parent_of(e->d_name);
		nfound++;
	}
	closedir(d);
	/* The roles are forks of their supervisor: count the supervisor, once
	 * per config. */
	for (size_t i = 0; i < nfound; i++) {
		int dup = 0;

		for (size_t j = 0; j < nfound && !dup; j++)
			dup = found[j].pid == found[i].ppid;
		for (size_t j = 0; j < n && !dup; j++)
			dup = strcmp(paths[j], found[i].path) == 0;
		if (!dup && n < max)
			memcpy(paths[n++], found[i].path, CONFPATH_MAX);
	}
	return n;
}

int confpath_find(const char *given, int admin, const char *cmd, char *path, size_t cap,
                  int *found, char *err, size_t errcap)
{
	static char running[4][CONFPATH_MAX];
	const char *env = getenv("MOAT_CONF");
	size_t n;

	*found = 0;
	if (given == NULL && env != NULL && *env != '\0')
		given = env;
	if (given == NULL && (!admin || access(CONFPATH_DEFAULT, F_OK) == 0))
		given = CONFPATH_DEFAULT;
	if (given != NULL) {
		if ((size_t)snprintf(path, cap, "%s", given) >= cap) {
			snprintf(err, errcap, "moat %s: the config's path is too long", cmd);
			return -1;
		}
		return 0;
	}
	n = confpath_running(running, sizeof running / sizeof running[0]);
	if (n == 1 && strlen(running[0]) < cap) {
		memcpy(path, running[0], strlen(running[0]) + 1);
		*found = 1;
		return 0;
	}
	if (n == 0)
		snprintf(err, errcap, "moat %s: no config: " CONFPATH_DEFAULT " does not exist and no "
		         "moat serve is running; pass -c FILE (or set MOAT_CONF=FILE)", cmd);
	else
		snprintf(err, errcap, "moat %s: %s moat serve are running (%s, %s%s); pass -c with "
		         "the config of the one you mean (or set MOAT_CONF=FILE)", cmd,
		         n == 2 ? "two" : "several", running[0], running[1], n > 2 ? ", ..." : "");
	return -1;
}
