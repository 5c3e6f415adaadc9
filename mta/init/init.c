/* mta/init/init.c -- moat as process 1 of the appliance; see init.h */
#include "mta/init/init.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/signalfd.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>

#include "mta/init/child.h"
#include "mta/init/devices.h"
#include "mta/init/lease.h"
#include "mta/init/modules.h"
#include "mta/init/ntpc.h"
#include "mta/init/seed.h"
#include "mta/init/slots.h"
#include "mta/net/log.h"
#include "mta/net/sockaddr.h"
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
#define OWN_DEPTH_MAX 8
#define DHCP_WAIT_MS  10000   /* at boot, for a lease before the server starts */
#define NTP_WAIT_MS   12000   /* at boot, for the clock before the server starts */
#define NTP_EVERY_MS  (1024 * 1000)  /* then, to keep the clock close */
#define HEALTH_EVERY_MS 1000  /* a trial boot asks for /health this often */
#define TRIAL_MS      (5 * 60 * 1000)  /* a trial slot has this long to be healthy */
#define TRIAL_DEATHS  3       /* ... and may see the server die this often */
#define UPGRADE_FILE  "moat-boot.img"

static struct {
	int    console[CONSOLES_MAX];  /* where the log goes: every active console */
	size_t nconsole;
	int    log_rd;                 /* read end of the log pipe (fds 1, 2 write) */
	int    sigfd;
	int    button[BUTTONS_MAX];
	size_t nbutton;
	pid_t  serve;                  /* the running server, or 0 */
	int    serve_ok;               /* config is good: the server may run */
	int    data_ok;                /* the data partition is mounted */
	long long serve_started_ms;
	long long restart_at_ms;       /* 0: no restart pending */
	long long report_at_ms;        /* 0: the server's privileges are reported */
	unsigned backoff_ms;
	int    restart_now;            /* the server was stopped on purpose: no backoff */
	/* The boot slot (moat.slot= on the command line; 0: an image without
	 * slots) and whether it is on trial until the server is healthy. */
	char   slot;
	int    trial;
	long long trial_until_ms;
	unsigned trial_deaths;
	pid_t  health;                 /* a /health check running, or 0 */
	long long health_at_ms;        /* 0: no check due */
	/* The clock: the servers asked, the running SNTP child. */
	char   ntp[NTPC_SERVERS_MAX][NTPC_NAME_MAX + 1];
	size_t nntp;
	pid_t  ntpc;
	long long ntp_at_ms;
	int    have_net;               /* lease.c runs */
	char   dns_at_start[512];      /* resolv.conf when the server started */
} st;

static struct conf conf;

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
 * ("net-address 10.0.0.2/24\n") in out, moat.data= into part, and the
 * boot slot (moat.slot=, moat.trial=1) into st.  Returns the length. */
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
		if (kv_is(&kv, "moat.slot") && kv.vallen == 1 && (kv.val[0] == 'a' || kv.val[0] == 'b'))
			st.slot = kv.val[0];
		if (kv_is(&kv, "moat.trial") && kv.vallen == 1 && kv.val[0] == '1')
			st.trial = 1;
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

	if (lchown(dir, CHILD_SERVE_UID, CHILD_SERVE_UID) != 0)
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
		else if (lchown(path, CHILD_SERVE_UID, CHILD_SERVE_UID) != 0)
			log_warn("msg=\"chown %s: %s\"", path, strerror(errno));
	}
	closedir(d);
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
	int status = child_run(argv, CHILD_DROP, out, sizeof out, 10000, log_pump);
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
		if (chdir(DATA_DIR) != 0 || child_drop_to_server_user() != 0) {
			static const char msg[] = "moat: cannot drop privileges\n";
			(void)!write(STDERR_FILENO, msg, sizeof msg - 1);
			_exit(111);
		}
		execve("/proc/self/exe", argv, envp);
		_exit(111);
	}
	st.serve = pid;
	snprintf(st.dns_at_start, sizeof st.dns_at_start, "%s", st.have_net ? lease_resolv() : "");
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

static _Noreturn void shutdown_now(const char *reason, int how);

/* A trial boot that does not get to a healthy server: reboot, and the
 * boot loaders fall back to the good slot (mta/init/slots.h). */
static void trial_failed(const char *why)
{
	say("moat: slot %c, on trial, %s: rebooting into the previous slot", st.slot, why);
	log_event("slot", "result=failed slot=%c reason=\"%s\"", st.slot, why);
	shutdown_now("trial-failed", RB_AUTOBOOT);
}

static void serve_exited(int status)
{
	long long ran = now_ms() - st.serve_started_ms;

	if (WIFEXITED(status))
		log_warn("msg=\"moat serve exited\" status=%d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		log_warn("msg=\"moat serve killed\" signal=%d", WTERMSIG(status));
	st.serve = 0;
	if (st.restart_now) {
		st.restart_now = 0;
		st.restart_at_ms = now_ms();
		return;
	}
	if (st.trial && ++st.trial_deaths >= TRIAL_DEATHS)
		trial_failed("the server died 3 times before it was healthy");
	if (ran >= BACKOFF_MAX_MS)
		st.backoff_ms = 1000;
	log_event("serve-restart", "in=%ums", st.backoff_ms);
	st.restart_at_ms = now_ms() + st.backoff_ms;
	st.backoff_ms = st.backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : st.backoff_ms * 2;
}

/* The trial slot is healthy: it becomes the boot loaders' default. */
static void trial_passed(void)
{
	st.trial = 0;
	st.health_at_ms = 0;
	if (slots_mount(NULL) == 0) {
		if (slots_bless(st.slot) != 0)
			log_warn("msg=\"slot %c is healthy but could not be made the default\"", st.slot);
		slots_umount();
	}
}

static void reap(void)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == st.serve) {
			serve_exited(status);
		} else if (pid == st.ntpc) {
			st.ntpc = 0;
		} else if (pid == st.health) {
			st.health = 0;
			if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && st.trial && st.serve > 0)
				trial_passed();
			else if (st.trial)
				st.health_at_ms = now_ms() + HEALTH_EVERY_MS;
		}
	}
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
	if (st.have_net)
		lease_release();
	/* Our end of the remote log's link: it sends what it holds and ends. */
	log_use_stderr();
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

/* GET /health on metrics-listen (loopback when it listens on all
 * addresses).  0 when it answers 200. */
static int health_http(void)
{
	struct sockaddr_storage ss;
	struct ipaddr to;
	struct timeval tv = { 3, 0 };
	socklen_t sl;
	char buf[64];
	static const char req[] = "GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n";
	const struct conf_listener *m = &conf.metrics;
	int fd;
	ssize_t n = 0, r;

	to = m->addr;
	if (m->any) {   /* a wildcard listener: ask it on the loopback */
		const char *lo = to.family == IP_V6 ? "::1" : "127.0.0.1";
		(void)ip_parse(lo, strlen(lo), &to);
	}
	sl = sockaddr_from_ip(&to, m->port, &ss);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
	    connect(fd, (struct sockaddr *)&ss, sl) != 0 || write(fd, req, sizeof req - 1) != sizeof req - 1)
		return -1;
	while (n < (ssize_t)sizeof buf - 1 && (r = read(fd, buf + n, sizeof buf - 1 - (size_t)n)) > 0)
		n += r;
	close(fd);
	buf[n] = '\0';
	return strncmp(buf, "HTTP/1.", 7) == 0 && strncmp(buf + 8, " 200", 4) == 0 ? 0 : -1;
}

/* Is the server healthy?  A child asks (GET /health on metrics-listen,
 * else `moat status` on the server's control socket), so that process 1
 * never waits on the server; it exits 0 for healthy. */
static void health_spawn(void)
{
	pid_t pid = fork();

	if (pid < 0)
		st.health_at_ms = now_ms() + HEALTH_EVERY_MS;
	if (pid != 0) {
		st.health = pid > 0 ? pid : 0;
		if (pid > 0)
			st.health_at_ms = 0;
		return;
	}
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (conf.metrics.port != 0)
		_exit(health_http() == 0 ? 0 : 1);
	static char a0[] = "moat", a1[] = "status", a2[] = "-c", a3[] = CONF_PATH;
	char *argv[] = { a0, a1, a2, a3, NULL }, out[2048];
	int r = child_run(argv, CHILD_DROP, out, sizeof out, 5000, NULL);
	_exit(r == 0 && strstr(out, "health ok") != NULL ? 0 : 1);
}

/* The clock's servers: ntp-server, else those of the DHCP lease. */
static void ntp_servers(void)
{
	char leased[LEASE_NTP_MAX][16];
	size_t n;

	st.nntp = 0;
	for (size_t k = 0; k < conf.nntp_servers && st.nntp < NTPC_SERVERS_MAX; k++)
		snprintf(st.ntp[st.nntp++], sizeof st.ntp[0], "%s", conf.ntp_servers[k]);
	if (st.nntp > 0)
		return;
	n = lease_ntp_servers(leased, LEASE_NTP_MAX);
	for (size_t k = 0; k < n && st.nntp < NTPC_SERVERS_MAX; k++)
		snprintf(st.ntp[st.nntp++], sizeof st.ntp[0], "%s", leased[k]);
}

/* Wait up to ms for the DHCP lease (and what else the network says),
 * moving the log. */
static void wait_lease(long long ms)
{
	long long end = now_ms() + ms;

	while (st.have_net && lease_dhcp_used() && !lease_bound() && now_ms() < end) {
		struct pollfd p[3];
		size_t n = lease_fds(p, 3);
		long long next = lease_next_ms(), left = end - now_ms();
		if (next >= 0 && next - now_ms() < left)
			left = next - now_ms();
		p[n++] = (struct pollfd){ st.log_rd, POLLIN, 0 };
		(void)poll(p, (nfds_t)n, left < 0 ? 0 : (int)left);
		(void)lease_step(p, n - 1, now_ms());
		log_pump();
	}
}

/* Set the clock at boot, before the server (TLS verification and the
 * Received: dates depend on it): at most NTP_WAIT_MS. */
static void clock_at_boot(void)
{
	long long end = now_ms() + NTP_WAIT_MS;
	int status;

	ntp_servers();
	if (st.nntp == 0) {
		log_event("clock", "source=rtc reason=\"no ntp-server, none from DHCP\"");
		return;
	}
	st.ntpc = ntpc_spawn((const char (*)[NTPC_NAME_MAX + 1])st.ntp, st.nntp, 1);
	while (st.ntpc > 0 && now_ms() < end) {
		if (waitpid(st.ntpc, &status, WNOHANG) == st.ntpc)
			st.ntpc = 0;
		else
			poll(&(struct pollfd){ st.log_rd, POLLIN, 0 }, 1, 50);
		log_pump();
	}
	st.ntp_at_ms = now_ms() + NTP_EVERY_MS;
}

/* moat-boot.img on the seed or the data partition: `moat upgrade` puts it
 * into the other slot, and the next boot tries it. */
static void upgrade_if_offered(void)
{
	static const char *const where[] = { SEED_DIR "/" UPGRADE_FILE, DATA_DIR "/" UPGRADE_FILE };
	static char a0[] = "moat", a1[] = "upgrade";
	char path[64], out[1024];

	if (st.slot == 0 || st.trial)
		return;
	for (size_t k = 0; k < sizeof where / sizeof where[0]; k++) {
		if (access(where[k], R_OK) != 0)
			continue;
		snprintf(path, sizeof path, "%s", where[k]);
		char *argv[] = { a0, a1, path, NULL };
		(void)modules_load("loop");
		(void)modules_load("vfat");
		log_event("upgrade", "file=%s running=%c", path, st.slot);
		if (child_run(argv, 0, out, sizeof out, 120000, log_pump) == 0) {
			seed_done();
			shutdown_now("upgrade", RB_AUTOBOOT);
		}
		return;
	}
}

/* The data partition, the seed, the config. */
static void boot_data(const char *part, const char *cmdline_text, size_t cmdline_len)
{
	char dev[128];

	if (initdev_find_partition(part, PART_WAIT_MS, dev, sizeof dev, settle) != 0 ||
	    initdev_mount_data(dev, DATA_DIR) != 0) {
		say("moat: no data partition (GPT name \"%s\", ext4): moat accepts nothing", part);
		load_config(&conf, cmdline_text, cmdline_len);
		st.serve_ok = 0;
		return;
	}
	log_pump();
	st.data_ok = 1;
	own_tree(DATA_DIR, 0);
	modules_sync();
	log_pump();
	if (seed_mount(log_pump) && seed_apply(DATA_DIR, log_pump) == SEED_REFUSED)
		say("moat: the config seed is refused, the configuration on the data partition is kept: %s",
		    seed_reason());
	log_pump();
	st.serve_ok = load_config(&conf, cmdline_text, cmdline_len) == 0;
}

/* Interfaces, addresses, the DHCP lease, DNS, the clock. */
static void boot_network(void)
{
	char ifname[IF_NAMESIZE + 1];
	unsigned ifindex = 0;

	if (conf.hostname[0] != '\0' && sethostname(conf.hostname, strlen(conf.hostname)) != 0)
		log_warn("msg=\"sethostname: %s\"", strerror(errno));
	initdev_network(&conf, ifname, &ifindex);
	log_pump();
	if (ifindex != 0 && lease_start(&conf, ifname, ifindex) == 0)
		st.have_net = 1;
	wait_lease(DHCP_WAIT_MS);
	if (st.have_net && lease_dhcp_used() && !lease_bound())
		log_warn("msg=\"dhcp: no lease within %ds: going on without, still asking\"",
		         DHCP_WAIT_MS / 1000);
	clock_at_boot();
	log_pump();
}

/* After the server started: a trial slot has TRIAL_MS to be healthy; a
 * good one undoes what a failed trial of the other slot left. */
static void boot_slots(void)
{
	if (st.slot == 0)
		return;
	if (st.trial) {
		if (!st.serve_ok)
			trial_failed(st.data_ok ? "its configuration does not load"
			                        : "the data partition does not mount");
		st.trial_until_ms = now_ms() + TRIAL_MS;
		st.health_at_ms = now_ms() + HEALTH_EVERY_MS;
		log_event("slot", "result=trial slot=%c deadline=%ds", st.slot, TRIAL_MS / 1000);
		return;
	}
	if (slots_mount(NULL) == 0) {
		(void)slots_after_boot(st.slot);
		slots_umount();
	}
}

static void boot(void)
{
	static char cmdline_text[4096];
	char part[64] = PART_DEFAULT;
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
	cmdline_len = cmdline_conf(cmdline_text, sizeof cmdline_text, part, sizeof part);
	/* uptime: the kernel's clock when /init started (it starts after the
	 * firmware, the boot loader and the kernel's decompression), for
	 * image/measure.sh's breakdown of the boot time. */
	clock_gettime(CLOCK_BOOTTIME, &up);
	log_event("boot", "role=init kernel=%s uptime=%lld.%03ld slot=%c%s", u.release,
	          (long long)up.tv_sec, up.tv_nsec / 1000000, st.slot ? st.slot : '-',
	          st.trial ? " trial=yes" : "");
	log_pump();
	if (sethostname("moat", 4) != 0)
		log_warn("msg=\"sethostname: %s\"", strerror(errno));
	modules_open(MODULE_DIR);
	modules_settle();
	(void)modules_load("ext4");
	log_pump();
	boot_data(part, cmdline_text, cmdline_len);
	boot_network();
	st.nbutton = initdev_power_buttons(st.button, BUTTONS_MAX);
	st.backoff_ms = 1000;
	upgrade_if_offered();
	seed_done();
	if (st.serve_ok) {
		char err[300];
		/* Process 1's own lines go where the server's go. */
		if (conf.log_remote != 0 &&
		    log_open_syslog(conf.log_socket, conf.log_facility, err, sizeof err) != 0)
			log_warn("msg=\"log remote: %s\"", err);
		queue_report(conf.queue_path);
		serve_start();
	}
	boot_slots();
	log_pump();
}

/* The earliest of the times something is due (ms, 0 or -1 for none). */
static long long next_due(void)
{
	long long t[] = { st.restart_at_ms, st.report_at_ms, st.health_at_ms,
	                  st.trial ? st.trial_until_ms : 0, st.ntp_at_ms,
	                  st.have_net ? lease_next_ms() : -1 };
	long long next = -1;

	for (size_t k = 0; k < sizeof t / sizeof t[0]; k++)
		if (t[k] > 0 && (next < 0 || t[k] < next))
			next = t[k];
	return next;
}

/* Does resolv.conf still name every server it named when the server
 * started (and did it name one)?  Then the server's resolver works as it
 * is: a server added (an IPv6 router's, after DHCP's) needs no restart. */
static int dns_still_there(void)
{
	char line[128];
	const char *p = st.dns_at_start, *nl;

	if (*p == '\0')
		return 0;
	for (; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
		snprintf(line, sizeof line, "%.*s", (int)(nl - p + 1), p);
		if (strstr(lease_resolv(), line) == NULL)
			return 0;
	}
	return 1;
}

/* What the network changed: the server's DNS servers (it reads
 * /etc/resolv.conf when it starts, when moat.conf names none: restart it
 * when one it used is gone, or it had none), the clock's servers (ask
 * them now). */
static void network_changed(unsigned what)
{
	if ((what & LEASE_DNS_CHANGED) && conf.ndns_servers == 0 && st.serve > 0 &&
	    !dns_still_there()) {
		log_event("serve-restart", "reason=dns-servers-changed");
		st.restart_now = 1;
		kill(st.serve, SIGTERM);
	}
	if ((what & LEASE_NTP_CHANGED) && conf.nntp_servers == 0)
		st.ntp_at_ms = now_ms();
}

/* Timers: restart, report, health, the trial's deadline, the clock. */
static void timers(void)
{
	long long now = now_ms();

	if (st.serve > 0 && st.report_at_ms > 0 && now >= st.report_at_ms)
		serve_report();
	if (st.serve_ok && st.serve == 0 && st.restart_at_ms > 0 && now >= st.restart_at_ms)
		serve_start();
	if (st.trial && st.serve > 0 && st.health == 0 && st.health_at_ms > 0 && now >= st.health_at_ms)
		health_spawn();
	if (st.trial && now >= st.trial_until_ms)
		trial_failed("no healthy server within 5 minutes");
	if (st.ntp_at_ms > 0 && now >= st.ntp_at_ms && st.ntpc == 0) {
		ntp_servers();
		if (st.nntp > 0)
			st.ntpc = ntpc_spawn((const char (*)[NTPC_NAME_MAX + 1])st.ntp, st.nntp, 0);
		st.ntp_at_ms = now + NTP_EVERY_MS;
	}
}

static _Noreturn void supervise(void)
{
	for (;;) {
		struct pollfd p[2 + BUTTONS_MAX + 2];
		nfds_t n = 0, nl;
		int timeout = -1;
		long long next = next_due();

		p[n++] = (struct pollfd){ st.sigfd, POLLIN, 0 };
		p[n++] = (struct pollfd){ st.log_rd, POLLIN, 0 };
		for (size_t k = 0; k < st.nbutton; k++)
			p[n++] = (struct pollfd){ st.button[k], POLLIN, 0 };
		nl = n;
		if (st.have_net)
			n += (nfds_t)lease_fds(p + n, 2);
		if (next > 0) {
			long long left = next - now_ms();
			timeout = left < 0 ? 0 : left > 60000 ? 60000 : (int)left;
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
		if (st.have_net)
			network_changed(lease_step(p + nl, n - nl, now_ms()));
		reap();
		timers();
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
