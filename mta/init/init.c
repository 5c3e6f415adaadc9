/* mta/init/init.c -- moat as process 1 of the appliance; see init.h */
#include "mta/init/init.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/signalfd.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>

#include "mta/init/devices.h"
#include "mta/init/modules.h"
#include "mta/net/log.h"
#include "policy/conf.h"
#include "policy/kv.h"

#define DATA_DIR      "/data"
#define CONF_PATH     "/data/moat.conf"
#define MODULE_DIR    "/lib/modules"
#define PART_DEFAULT  "moat-data"
#define CONF_TEXT_MAX (1024 * 1024)
#define CONSOLES_MAX  4
#define BUTTONS_MAX   4
#define STOP_MS       30000   /* the server's grace after SIGTERM */
#define KILL_ALL_MS   5000    /* everything else's, before SIGKILL */
#define BACKOFF_MAX_MS 60000
#define PART_WAIT_MS  30000
/* The server's user: not root, the same uid as in the container image.
 * It owns what is on /data; of root's powers it keeps only binding port
 * 25 (CAP_NET_BIND_SERVICE), so a compromised server cannot load kernel
 * modules, remount, or reconfigure the network. */
#define SERVE_UID     65532
#define SERVE_NOFILE  65536
#define OWN_DEPTH_MAX 8

static struct {
	int    console[CONSOLES_MAX];  /* where the log goes: every active console */
	size_t nconsole;
	int    log_rd;                 /* read end of the log pipe (fds 1, 2 write) */
	int    sigfd;
	int    button[BUTTONS_MAX];
	size_t nbutton;
	pid_t  serve;                  /* the running server, or 0 */
	int    serve_ok;               /* config is good: the server may run */
	long long serve_started_ms;
	long long restart_at_ms;       /* 0: no restart pending */
	long long report_at_ms;        /* 0: the server's privileges are reported */
	unsigned backoff_ms;
} st;

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------- console */

/* The consoles the kernel writes to ("tty0 ttyS0"), each opened
 * non-blocking: a slow serial line drops log text rather than stall the
 * server behind a full pipe. */
static void consoles_open(void)
{
	char buf[256], path[64];
	struct kv kv;
	size_t pos = 0;
	long len = initdev_read_small("/sys/class/tty/console/active", buf, sizeof buf);

	while (len > 0 && kv_cmdline_next(buf, (size_t)len, &pos, &kv) && st.nconsole < CONSOLES_MAX) {
		if (kv.keylen == 0 || kv.keylen > 32 || memchr(kv.key, '/', kv.keylen) != NULL)
			continue;
		snprintf(path, sizeof path, "/dev/%.*s", (int)kv.keylen, kv.key);
		int fd = open(path, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0)
			st.console[st.nconsole++] = fd;
	}
	if (st.nconsole == 0) {
		int fd = open("/dev/console", O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0)
			st.console[st.nconsole++] = fd;
	}
}

/* Move what the log pipe holds to every console. */
static void log_pump(void)
{
	char buf[16384];
	ssize_t n;

	while ((n = read(st.log_rd, buf, sizeof buf)) > 0)
		for (size_t k = 0; k < st.nconsole; k++)
			(void)!write(st.console[k], buf, (size_t)n);
}

/* A line of plain text for a person at the console (through the pipe, so
 * it stays in order with the log). */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, (size_t)n);
	log_pump();
}

/* fds 0 -> /dev/null; 1 and 2 -> a pipe whose other end log_pump() reads.
 * The server inherits 1 and 2.  Both ends are non-blocking: a log line that
 * does not fit is lost, the server never waits for the console. */
static void log_pipe(void)
{
	int p[2], null = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		close(null);
	}
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
		st.log_rd = -1;
		return;
	}
	(void)fcntl(p[0], F_SETPIPE_SZ, 1 << 20);
	dup2(p[1], STDOUT_FILENO);
	dup2(p[1], STDERR_FILENO);
	close(p[1]);
	st.log_rd = p[0];
}

/* ---------------------------------------------------------------- config */

static char conf_text[CONF_TEXT_MAX + 2]; /* one more byte: "too large" */

/* The moat.net-* words of the kernel command line as config lines
 * ("net-address 10.0.0.2/24\n") in out.  Returns the length. */
static size_t cmdline_conf(char *out, size_t cap, char *part, size_t partcap)
{
	static const char *const keys[] = { "moat.net-interface", "moat.net-address", "moat.net-gateway" };
	char buf[4096];
	struct kv kv;
	size_t pos = 0, o = 0;
	long len = initdev_read_small("/proc/cmdline", buf, sizeof buf);

	while (len > 0 && kv_cmdline_next(buf, (size_t)len, &pos, &kv)) {
		if (kv.val == NULL)
			continue;
		if (kv_is(&kv, "moat.data")) {
			if (kv.vallen > 0 && kv.vallen < partcap) {
				memcpy(part, kv.val, kv.vallen);
				part[kv.vallen] = '\0';
			}
			continue;
		}
		for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
			if (!kv_is(&kv, keys[k]))
				continue;
			int n = snprintf(out + o, cap - o, "%s %.*s\n", keys[k] + 5, (int)kv.vallen, kv.val);
			if (n > 0 && (size_t)n < cap - o)
				o += (size_t)n;
		}
	}
	return o;
}

static void no_config(void)
{
	say("moat: ==============================================================");
	say("moat: no configuration: moat accepts nothing.");
	say("moat: Create the file moat.conf at the top of the data partition");
	say("moat: (ext4, GPT partition name \"moat-data\"; here it is " CONF_PATH ").");
	say("moat: " DATA_DIR "/moat.conf.example there is a start.  README.md, \"The appliance\",");
	say("moat: shows how to write it from another machine: image/data.sh put IMAGE FILE.");
	say("moat: Then power off (ACPI power button) and boot again.");
	say("moat: ==============================================================");
}

/* Load /data/moat.conf, layered with the kernel command line's moat.net-*
 * when the file has no net-address.  Returns 0 when the server may run. */
static int load_config(struct conf *c, const char *cmdline_text, size_t cmdline_len)
{
	char err[1024];
	long got = initdev_read_small(CONF_PATH, conf_text, sizeof conf_text);

	conf_defaults(c);
	if (got < 0) {
		if (errno == ENOENT)
			no_config();
		else
			say("moat: cannot read " CONF_PATH ": %s: moat accepts nothing", strerror(errno));
		goto cmdline_only;
	}
	if (got > CONF_TEXT_MAX) {
		say("moat: " CONF_PATH " is larger than 1 MiB: moat accepts nothing");
		goto cmdline_only;
	}
	if (conf_parse(conf_text, (size_t)got, CONF_PATH, c, err, sizeof err) != 0) {
		say("moat: %s", err);
		say("moat: the configuration is invalid: moat accepts nothing; fix " CONF_PATH
		    " (moat check -c FILE says what is wrong) and boot again");
		goto cmdline_only;
	}
	if (c->nnet_addrs == 0 && cmdline_len > 0 &&
	    conf_parse(cmdline_text, cmdline_len, "kernel command line", c, err, sizeof err) != 0)
		say("moat: %s (ignored)", err);
	if (conf_finish(c, CONF_PATH, err, sizeof err) != 0) {
		say("moat: %s", err);
		say("moat: the configuration is invalid: moat accepts nothing");
		return -1;
	}
	if (strncmp(c->queue_path, DATA_DIR "/", sizeof DATA_DIR) != 0) {
		say("moat: " CONF_PATH ": queue %s is not on the data partition: everything outside "
		    DATA_DIR " is lost at power-off; say \"queue " DATA_DIR "/queue\". moat accepts nothing",
		    c->queue_path);
		return -1;
	}
	return 0;

cmdline_only:
	conf_defaults(c);
	if (cmdline_len > 0 &&
	    conf_parse(cmdline_text, cmdline_len, "kernel command line", c, err, sizeof err) != 0)
		say("moat: %s (ignored)", err);
	return -1;
}

/* ---------------------------------------------------------------- server */

/* Give dir's tree (not lost+found) to the server's user: files written onto
 * the partition from another machine (image/data.sh) are root's. */
static void own_tree(const char *dir, int depth)
{
	char path[CONF_PATH_MAX + 256];
	struct dirent *e;
	DIR *d;

	if (lchown(dir, SERVE_UID, SERVE_UID) != 0)
		log_warn("msg=\"chown %s: %s\"", dir, strerror(errno));
	if (depth >= OWN_DEPTH_MAX || (d = opendir(dir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
		    (depth == 0 && strcmp(e->d_name, "lost+found") == 0))
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		if (e->d_type == DT_DIR)
			own_tree(path, depth + 1);
		else if (lchown(path, SERVE_UID, SERVE_UID) != 0)
			log_warn("msg=\"chown %s: %s\"", path, strerror(errno));
	}
	closedir(d);
}

/* In a child before execve: become SERVE_UID keeping CAP_NET_BIND_SERVICE
 * as an ambient capability (so it survives the execve), nothing else. */
static int drop_to_server_user(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	struct rlimit nofile = { SERVE_NOFILE, SERVE_NOFILE };
	gid_t gid = SERVE_UID;

	memset(d, 0, sizeof d);
	d[0].permitted = d[0].effective = d[0].inheritable = 1u << CAP_NET_BIND_SERVICE;
	if (setrlimit(RLIMIT_NOFILE, &nofile) != 0 || prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 ||
	    setgroups(1, &gid) != 0 || setresgid(gid, gid, gid) != 0 ||
	    setresuid(SERVE_UID, SERVE_UID, SERVE_UID) != 0 ||
	    syscall(SYS_capset, &h, d) != 0 ||
	    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0) != 0 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -1;
	return 0;
}

/* Run /proc/self/exe with argv (stdout into a pipe, stderr to the log)
 * and put what it printed in out; at most 10 s.  Returns its exit status,
 * or -1.  (The queue is read by a child: process 1 never maps LMDB.) */
static int run_capture(char *const argv[], char *out, size_t cap)
{
	int p[2], status = -1;
	size_t got = 0;
	long long end = now_ms() + 10000;
	pid_t pid;

	out[0] = '\0';
	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		dup2(p[1], STDOUT_FILENO);
		if (drop_to_server_user() != 0)
			_exit(111);
		execve("/proc/self/exe", argv, (char *[]){ NULL });
		_exit(111);
	}
	close(p[1]);
	while (pid > 0 && now_ms() < end && got + 1 < cap) {
		struct pollfd pf = { p[0], POLLIN, 0 };
		if (poll(&pf, 1, 100) <= 0)
			continue;
		ssize_t n = read(p[0], out + got, cap - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(p[0]);
	out[got] = '\0';
	if (pid > 0) {
		if (now_ms() >= end)
			kill(pid, SIGKILL);
		if (waitpid(pid, &status, 0) != pid)
			status = -1;
	}
	return status;
}

/* "event=queue messages=N bytes=N": after an unclean stop, the console
 * shows at once that the queue came through. */
static void queue_report(const char *queue_path)
{
	static char a0[] = "moat", a1[] = "queue", a2[] = "count", a3[] = "-c", a4[] = CONF_PATH;
	char *argv[] = { a0, a1, a2, a3, a4, NULL };
	char out[512], path[CONF_PATH_MAX + 16];

	snprintf(path, sizeof path, "%s/data.mdb", queue_path);
	if (access(path, F_OK) != 0) {
		log_event("queue", "messages=0 new=yes path=%s", queue_path);
		return;
	}
	int status = run_capture(argv, out, sizeof out);
	/* "messages 3\nbytes 1200\n" -> "messages=3 bytes=1200 " */
	int first = 1;
	for (char *c = out; *c != '\0'; c++) {
		if (*c == ' ' && first) {
			*c = '=';
			first = 0;
		} else if (*c == '\n') {
			*c = ' ';
			first = 1;
		}
	}
	if (status == 0)
		log_event("queue", "path=%s %s", queue_path, out);
	else
		log_warn("msg=\"moat queue count failed\" status=%d", status);
}

static void serve_start(void)
{
	sigset_t none;
	pid_t pid;

	pid = fork();
	if (pid < 0) {
		log_warn("msg=\"fork: %s\"", strerror(errno));
		st.restart_at_ms = now_ms() + 1000;
		return;
	}
	if (pid == 0) {
		static char a0[] = "moat", a1[] = "serve", a2[] = "-c", a3[] = CONF_PATH;
		char *argv[] = { a0, a1, a2, a3, NULL };
		char *envp[] = { NULL };

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		setsid();
		if (chdir(DATA_DIR) != 0 || drop_to_server_user() != 0) {
			static const char msg[] = "moat: cannot drop privileges\n";
			(void)!write(STDERR_FILENO, msg, sizeof msg - 1);
			_exit(111);
		}
		execve("/proc/self/exe", argv, envp);
		_exit(111);
	}
	st.serve = pid;
	st.serve_started_ms = now_ms();
	st.restart_at_ms = 0;
	st.report_at_ms = st.serve_started_ms + 1000;
	log_event("serve-start", "pid=%ld", (long)pid);
}

/* One line of /proc/PID/status ("\nUid:\t0\t0\t0\t0"): its value, tabs
 * as commas. */
static void status_field(const char *buf, const char *key, char *out, size_t cap)
{
	const char *p = strstr(buf, key);
	size_t n;

	if (p == NULL)
		return;
	p += strlen(key);
	p += strspn(p, " \t");
	n = strcspn(p, "\n");
	snprintf(out, cap, "%.*s", (int)n, p);
	for (char *c = out; *c != '\0'; c++)
		if (*c == '\t')
			*c = ',';
}

/* What the kernel says the running server is: its uids (real, effective,
 * saved, fs) and effective capabilities (400 is CAP_NET_BIND_SERVICE). */
static void serve_report(void)
{
	char path[64], buf[4096], uid[64] = "?", caps[64] = "?";

	st.report_at_ms = 0;
	snprintf(path, sizeof path, "/proc/%ld/status", (long)st.serve);
	if (initdev_read_small(path, buf, sizeof buf) > 0) {
		status_field(buf, "\nUid:", uid, sizeof uid);
		status_field(buf, "\nCapEff:", caps, sizeof caps);
	}
	log_event("serve-privileges", "pid=%ld uid=%s capabilities=%s", (long)st.serve, uid, caps);
}

static void serve_exited(int status)
{
	long long ran = now_ms() - st.serve_started_ms;

	if (WIFEXITED(status))
		log_warn("msg=\"moat serve exited\" status=%d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		log_warn("msg=\"moat serve killed\" signal=%d", WTERMSIG(status));
	st.serve = 0;
	if (ran >= BACKOFF_MAX_MS)
		st.backoff_ms = 1000;
	log_event("serve-restart", "in=%ums", st.backoff_ms);
	st.restart_at_ms = now_ms() + st.backoff_ms;
	st.backoff_ms = st.backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : st.backoff_ms * 2;
}

static void reap(void)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		if (pid == st.serve)
			serve_exited(status);
}

/* ---------------------------------------------------------------- stop */

/* Wait (reaping, moving the log) until no child is left or ms passed.
 * Returns 1 when none is left. */
static int wait_children(long long ms)
{
	long long end = now_ms() + ms;

	for (;;) {
		int status;
		pid_t pid;

		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			if (pid != st.serve)
				continue;
			st.serve = 0;
			if (WIFSIGNALED(status))
				log_warn("msg=\"moat serve killed\" signal=%d", WTERMSIG(status));
			else if (WEXITSTATUS(status) != 0)
				log_warn("msg=\"moat serve exited\" status=%d", WEXITSTATUS(status));
		}
		if (pid < 0 && errno == ECHILD)
			return 1;
		long long left = end - now_ms();
		if (left <= 0)
			return 0;
		struct pollfd p[2] = { { st.sigfd, POLLIN, 0 }, { st.log_rd, POLLIN, 0 } };
		if (poll(p, 2, left > 100 ? 100 : (int)left) > 0) {
			struct signalfd_siginfo si;
			while (read(st.sigfd, &si, sizeof si) > 0)
				;
		}
		log_pump();
	}
}

static _Noreturn void shutdown_now(const char *reason, int how)
{
	log_event("shutdown", "reason=%s", reason);
	if (st.serve > 0) {
		kill(st.serve, SIGTERM);
		/* The server's own children (if any) end with it; other strays
		 * are asked below. */
		long long end = now_ms() + STOP_MS;
		while (st.serve > 0 && now_ms() < end) {
			wait_children(100);
		}
		if (st.serve > 0) {
			log_warn("msg=\"moat serve did not stop within %ds: killed\"", STOP_MS / 1000);
			kill(st.serve, SIGKILL);
		}
	}
	kill(-1, SIGTERM);
	if (!wait_children(KILL_ALL_MS)) {
		kill(-1, SIGKILL);
		wait_children(KILL_ALL_MS);
	}
	sync();
	if (umount2(DATA_DIR, 0) == 0) {
		log_event("unmounted", "dir=" DATA_DIR);
	} else if (errno != EINVAL) {
		log_warn("msg=\"cannot unmount " DATA_DIR ": %s: remounting read-only\"", strerror(errno));
		(void)mount(NULL, DATA_DIR, NULL, MS_REMOUNT | MS_RDONLY, NULL);
	}
	sync();
	log_event("halt", "action=%s", how == RB_AUTOBOOT ? "reboot" : "poweroff");
	log_pump();
	reboot(how);
	/* Not reached unless reboot() failed: process 1 must not exit. */
	for (;;)
		pause();
}

/* ---------------------------------------------------------------- boot */

static void signals_block(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	st.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* Between looks for the data partition: modules for devices that came. */
static void settle(void)
{
	(void)modules_settle();
	log_pump();
}

static void boot(void)
{
	static struct conf conf;
	static char cmdline_text[4096];
	char part[64] = PART_DEFAULT, dev[128];
	struct utsname u;
	struct timespec up;
	size_t cmdline_len;

	signals_block();
	initdev_mount_kernel_fs();
	/* Ctrl-Alt-Del: SIGINT to us (a clean reboot), not an instant reset. */
	reboot(RB_DISABLE_CAD);
	consoles_open();
	log_pipe();
	log_init("moat", LOG_INFO);
	uname(&u);
	/* uptime: the kernel's clock when /init started (it starts after the
	 * firmware, the boot loader and the kernel's decompression), for
	 * image/measure.sh's breakdown of the boot time. */
	clock_gettime(CLOCK_BOOTTIME, &up);
	log_event("boot", "role=init kernel=%s uptime=%lld.%03ld", u.release, (long long)up.tv_sec,
	          up.tv_nsec / 1000000);
	log_pump();
	if (sethostname("moat", 4) != 0)
		log_warn("msg=\"sethostname: %s\"", strerror(errno));
	modules_open(MODULE_DIR);
	modules_settle();
	(void)modules_load("ext4");
	log_pump();
	cmdline_len = cmdline_conf(cmdline_text, sizeof cmdline_text, part, sizeof part);
	if (initdev_find_partition(part, PART_WAIT_MS, dev, sizeof dev, settle) == 0 &&
	    initdev_mount_data(dev, DATA_DIR) == 0) {
		log_pump();
		st.serve_ok = load_config(&conf, cmdline_text, cmdline_len) == 0;
	} else {
		say("moat: no data partition (GPT name \"%s\", ext4): moat accepts nothing", part);
		load_config(&conf, cmdline_text, cmdline_len);
		st.serve_ok = 0;
	}
	log_pump();
	if (conf.hostname[0] != '\0' && sethostname(conf.hostname, strlen(conf.hostname)) != 0)
		log_warn("msg=\"sethostname: %s\"", strerror(errno));
	initdev_network(&conf);
	log_pump();
	st.nbutton = initdev_power_buttons(st.button, BUTTONS_MAX);
	st.backoff_ms = 1000;
	if (st.serve_ok) {
		own_tree(DATA_DIR, 0);
		queue_report(conf.queue_path);
		serve_start();
	}
	log_pump();
}

static _Noreturn void supervise(void)
{
	for (;;) {
		struct pollfd p[2 + BUTTONS_MAX];
		nfds_t n = 0;
		int timeout = -1;

		p[n++] = (struct pollfd){ st.sigfd, POLLIN, 0 };
		p[n++] = (struct pollfd){ st.log_rd, POLLIN, 0 };
		for (size_t k = 0; k < st.nbutton; k++)
			p[n++] = (struct pollfd){ st.button[k], POLLIN, 0 };
		long long next = st.restart_at_ms > 0 ? st.restart_at_ms : st.report_at_ms;
		if (st.report_at_ms > 0 && st.report_at_ms < next)
			next = st.report_at_ms;
		if (next > 0) {
			long long left = next - now_ms();
			timeout = left < 0 ? 0 : (int)left;
		}
		if (poll(p, n, timeout) < 0 && errno != EINTR)
			log_warn("msg=\"poll: %s\"", strerror(errno));
		log_pump();
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(st.sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
				if (si.ssi_signo == SIGTERM)
					shutdown_now("SIGTERM", RB_POWER_OFF);
				if (si.ssi_signo == SIGINT)
					shutdown_now("ctrl-alt-del", RB_AUTOBOOT);
			}
		}
		for (size_t k = 0; k < st.nbutton; k++)
			if ((p[2 + k].revents & POLLIN) && initdev_power_pressed(st.button[k]))
				shutdown_now("power-button", RB_POWER_OFF);
		reap();
		if (st.serve > 0 && st.report_at_ms > 0 && now_ms() >= st.report_at_ms)
			serve_report();
		if (st.serve_ok && st.serve == 0 && st.restart_at_ms > 0 && now_ms() >= st.restart_at_ms)
			serve_start();
	}
}

int init_main(void)
{
	if (getpid() != 1) {
		fputs("moat init: only as process 1 (the appliance's /init)\n", stderr);
		return 100;
	}
	boot();
	supervise();
}
