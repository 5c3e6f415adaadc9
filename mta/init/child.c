/* mta/init/child.c -- process 1's children; see child.h */
#include "mta/init/child.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>

#define SERVE_NOFILE 65536

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int child_drop_to_server_user(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	struct rlimit nofile = { SERVE_NOFILE, SERVE_NOFILE };
	gid_t gid = CHILD_SERVE_UID;

	memset(d, 0, sizeof d);
	d[0].permitted = d[0].effective = d[0].inheritable = 1u << CAP_NET_BIND_SERVICE;
	if (setrlimit(RLIMIT_NOFILE, &nofile) != 0 || prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 ||
	    setgroups(1, &gid) != 0 || setresgid(gid, gid, gid) != 0 ||
	    setresuid(CHILD_SERVE_UID, CHILD_SERVE_UID, CHILD_SERVE_UID) != 0 ||
	    syscall(SYS_capset, &h, d) != 0 ||
	    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0) != 0 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -1;
	return 0;
}

int child_run(char *const argv[], unsigned flags, char *out, size_t cap, unsigned timeout_ms,
              void (*pump)(void))
{
	int p[2], status = -1, eof = 0;
	size_t got = 0;
	long long end = mono_ms() + timeout_ms;
	pid_t pid;

	if (cap > 0)
		out[0] = '\0';
	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		dup2(p[1], STDOUT_FILENO);
		if (flags & CHILD_STDERR)
			dup2(p[1], STDERR_FILENO);
		if ((flags & CHILD_DROP) && child_drop_to_server_user() != 0)
			_exit(111);
		execve("/proc/self/exe", argv, (char *[]){ NULL });
		_exit(111);
	}
	close(p[1]);
	while (pid > 0 && !eof && mono_ms() < end) {
		struct pollfd pf = { p[0], POLLIN, 0 };
		char sink[4096];
		if (pump != NULL)
			pump();
		if (poll(&pf, 1, 50) <= 0)
			continue;
		ssize_t n = got + 1 < cap ? read(p[0], out + got, cap - 1 - got) : read(p[0], sink, sizeof sink);
		if (n <= 0)
			eof = 1;
		else if (got + 1 < cap)
			got += (size_t)n;
	}
	close(p[0]);
	if (cap > 0)
		out[got] = '\0';
	if (pid < 0)
		return -1;
	if (!eof)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (pump != NULL)
		pump();
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
