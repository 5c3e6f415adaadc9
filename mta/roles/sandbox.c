/* mta/roles/sandbox.c -- see mta/roles/sandbox.h */
#include "mta/roles/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <dirent.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>

#if defined(__x86_64__)
# define SB_AUDIT_ARCH AUDIT_ARCH_X86_64
# define SB_X32_BIT 0x40000000u
#elif defined(__aarch64__)
# define SB_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
# error "mta/roles/sandbox.c: the seccomp filter knows x86_64 and aarch64 only"
#endif

/* The sanitizer runtimes need syscalls no role may make (LeakSanitizer
 * clones and ptraces at exit): their builds skip seccomp, see sandbox.h. */
#if defined(__SANITIZE_ADDRESS__)
# define SB_SANITIZER 1
#elif defined(__has_feature)
# if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#  define SB_SANITIZER 1
# endif
#endif
#ifndef SB_SANITIZER
# define SB_SANITIZER 0
#endif

/* Landlock rights newer than Debian 12's linux-libc-dev (6.1: ABI 2).  The
 * values are the kernel's ABI and never change. */
#ifndef LANDLOCK_ACCESS_FS_REFER
# define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)     /* ABI 2 */
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
# define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)  /* ABI 3 */
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
# define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15) /* ABI 5 */
#endif
#ifndef LANDLOCK_ACCESS_NET_BIND_TCP
# define LANDLOCK_ACCESS_NET_BIND_TCP (1ULL << 0)  /* ABI 4 */
# define LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
# define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0) /* ABI 6 */
# define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif
#ifndef SYS_landlock_create_ruleset
# define SYS_landlock_create_ruleset 444 /* the same number on every arch */
# define SYS_landlock_add_rule 445
# define SYS_landlock_restrict_self 446
#endif

/* struct landlock_ruleset_attr as of ABI 6; the size passed tells the
 * kernel which fields we use (older kernels accept a shorter one). */
struct sb_ruleset_attr {
	uint64_t handled_access_fs;  /* ABI 1 */
	uint64_t handled_access_net; /* ABI 4 */
	uint64_t scoped;             /* ABI 6 */
};

static const char *const role_names[] = { "smtp", "queue", "delivery", "key" };

const char *sandbox_role_name(enum sandbox_role r)
{
	if ((unsigned)r < sizeof role_names / sizeof role_names[0])
		return role_names[r];
	return "?";
}

static void set_err(char *err, size_t errcap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errcap, const char *fmt, ...)
{
	va_list ap;
	if (errcap == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errcap, fmt, ap);
	va_end(ap);
}

/* ---- SIGSYS: the one line, with write(2) and _exit only ---- */

static char sigsys_prefix[64];
static size_t sigsys_prefix_len;

static void on_sigsys(int sig, siginfo_t *si, void *uctx)
{
	char line[sizeof sigsys_prefix + 24], digits[16];
	size_t n = sigsys_prefix_len, k = 0;
	long nr = si ? (long)si->si_syscall : -1;
	unsigned long u = nr < 0 ? (unsigned long)-nr : (unsigned long)nr;

	(void)sig;
	(void)uctx;
	memcpy(line, sigsys_prefix, n);
	if (nr < 0)
		line[n++] = '-';
	do {
		digits[k++] = (char)('0' + u % 10);
		u /= 10;
	} while (u && k < sizeof digits);
	while (k)
		line[n++] = digits[--k];
	line[n++] = '\n';
	(void)!write(2, line, n);
	_exit(159);
}

static int install_sigsys(enum sandbox_role role, char *err, size_t errcap)
{
	struct sigaction sa;
	int r = snprintf(sigsys_prefix, sizeof sigsys_prefix,
	                 "moat: role %s: seccomp denied syscall ", sandbox_role_name(role));

	sigsys_prefix_len = r > 0 && (size_t)r < sizeof sigsys_prefix ? (size_t)r : 0;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigfillset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) != 0) {
		set_err(err, errcap, "sigaction SIGSYS: %s", strerror(errno));
		return -1;
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGSYS);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	return 0;
}

/* ---- the seccomp filter ---- */

#define SB_MAX_INSNS 400
struct bpf {
	struct sock_filter f[SB_MAX_INSNS];
	unsigned n;
	int full;
};

static void op(struct bpf *b, unsigned code, uint32_t k, unsigned jt, unsigned jf)
{
	if (b->n >= SB_MAX_INSNS || jt > 255 || jf > 255) {
		b->full = 1;
		return;
	}
	b->f[b->n].code = (uint16_t)code;
	b->f[b->n].jt = (uint8_t)jt;
	b->f[b->n].jf = (uint8_t)jf;
	b->f[b->n].k = k;
	b->n++;
}

#define LD(off)          op(b, BPF_LD | BPF_W | BPF_ABS, (uint32_t)(off), 0, 0)
#define JEQ(k, jt, jf)   op(b, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(k), jt, jf)
#define RET(k)           op(b, BPF_RET | BPF_K, (uint32_t)(k), 0, 0)
#define ALLOW            SECCOMP_RET_ALLOW
#define TRAP             SECCOMP_RET_TRAP

#define OFF_NR   offsetof(struct seccomp_data, nr)
#define OFF_ARCH offsetof(struct seccomp_data, arch)
/* The two 32-bit halves of a 64-bit argument. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
# define ARG_LO(i) (offsetof(struct seccomp_data, args) + 8u * (i))
# define ARG_HI(i) (ARG_LO(i) + 4u)
#else
# define ARG_HI(i) (offsetof(struct seccomp_data, args) + 8u * (i))
# define ARG_LO(i) (ARG_HI(i) + 4u)
#endif

/* With A = nr: allow nr. */
static void allow(struct bpf *b, long nr)
{
	JEQ(nr, 0, 1);
	RET(ALLOW);
}

/* With A = nr: nr is allowed when the 32-bit word at off is one of
 * vals[0..n), else it traps.  Int arguments are checked on their low half:
 * the kernel ignores the high one. */
static void allow_if_any(struct bpf *b, long nr, unsigned off, const uint32_t *vals, unsigned n)
{
	JEQ(nr, 0, 2 * n + 2);
	LD(off);
	for (unsigned i = 0; i < n; i++) {
		JEQ(vals[i], 0, 1);
		RET(ALLOW);
	}
	RET(TRAP);
}

/* With A = nr: nr is allowed when every word offs[i] equals vals[i]. */
static void allow_if_all(struct bpf *b, long nr, const unsigned *offs, const uint32_t *vals, unsigned n)
{
	JEQ(nr, 0, 2 * n + 2);
	for (unsigned i = 0; i < n; i++) {
		LD(offs[i]);
		JEQ(vals[i], 0, 2 * (n - 1 - i) + 1);
	}
	RET(ALLOW);
	RET(TRAP);
}

/* Syscalls by name; the ones a 64-bit architecture may lack (aarch64 has
 * no open, unlink, rename, mkdir, epoll_wait, ...) are #ifdef'd. */
static const long sys_common[] = {
	SYS_read, SYS_write, SYS_readv, SYS_writev, SYS_close, SYS_fcntl,
	SYS_brk, SYS_mmap, SYS_munmap, SYS_mremap, SYS_madvise, SYS_mprotect,
	SYS_epoll_create1, SYS_epoll_ctl, SYS_epoll_pwait, SYS_ppoll,
#ifdef SYS_poll
	SYS_poll,
#endif
#ifdef SYS_epoll_create
	SYS_epoll_create,
#endif
#ifdef SYS_epoll_wait
	SYS_epoll_wait,
#endif
	SYS_clock_gettime, SYS_clock_nanosleep, SYS_nanosleep, SYS_gettimeofday,
	SYS_getrandom,
	SYS_getpid, SYS_gettid, SYS_getppid,
	SYS_getuid, SYS_geteuid, SYS_getgid, SYS_getegid,
	SYS_rt_sigprocmask, SYS_rt_sigaction, SYS_rt_sigreturn, SYS_sigaltstack,
	SYS_restart_syscall, SYS_signalfd4,
#ifdef SYS_signalfd
	SYS_signalfd,
#endif
	SYS_exit, SYS_exit_group,
	SYS_recvfrom, SYS_sendto, SYS_recvmsg, SYS_sendmsg, SYS_connect,
	SYS_getsockopt, SYS_setsockopt, SYS_shutdown,
	SYS_fstat, SYS_newfstatat,
#ifdef SYS_statx
	SYS_statx,
#endif
	SYS_uname,
};

static const long sys_smtp[] = {
	SYS_accept, SYS_accept4, SYS_bind, SYS_listen, SYS_getsockname, SYS_getpeername,
};

static const long sys_delivery[] = {
	SYS_bind, SYS_getsockname, SYS_getpeername,
	SYS_accept, SYS_accept4,   /* its admin socket (bound before the sandbox) */
};

static const long sys_queue[] = {
#ifdef SYS_open
	SYS_open,
#endif
	SYS_openat, SYS_pread64, SYS_pwrite64, SYS_pwritev, SYS_lseek,
	SYS_fsync, SYS_fdatasync, SYS_msync, SYS_ftruncate, SYS_fallocate,
#ifdef SYS_unlink
	SYS_unlink,
#endif
	SYS_unlinkat,
#ifdef SYS_rename
	SYS_rename,
#endif
#ifdef SYS_renameat
	SYS_renameat,
#endif
#ifdef SYS_renameat2
	SYS_renameat2,
#endif
#ifdef SYS_mkdir
	SYS_mkdir,
#endif
	SYS_mkdirat, SYS_getdents64, SYS_statfs, SYS_fstatfs, SYS_flock,
	SYS_futex, SYS_set_robust_list,
};

static void allow_list(struct bpf *b, const long *nrs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		allow(b, nrs[i]);
}
#define ALLOW_LIST(b, a) allow_list(b, a, sizeof (a) / sizeof (a)[0])

static void build_filter(struct bpf *b, enum sandbox_role role, pid_t pid, pid_t tid)
{
	static const uint32_t ioctls[] = { TIOCGWINSZ, FIONREAD };
	static const uint32_t inet_unix[] = { AF_UNIX, AF_INET, AF_INET6 };
	static const uint32_t unix_only[] = { AF_UNIX };
	/* getrlimit: prlimit64(0, res, NULL, old). */
	static const unsigned prl_off[] = { ARG_LO(0), ARG_LO(2), ARG_HI(2) };
	static const uint32_t prl_val[] = { 0, 0, 0 };
	/* abort()/raise(SIGABRT) on itself: tkill(tid, SIGABRT) (musl),
	 * tgkill(pid, tid, SIGABRT) (glibc). */
	static const unsigned tkill_off[] = { ARG_LO(0), ARG_LO(1) };
	static const unsigned tgkill_off[] = { ARG_LO(0), ARG_LO(1), ARG_LO(2) };
	const uint32_t tkill_val[] = { (uint32_t)tid, SIGABRT };
	const uint32_t tgkill_val[] = { (uint32_t)pid, (uint32_t)tid, SIGABRT };

	b->n = 0;
	b->full = 0;
	LD(OFF_ARCH);
	JEQ(SB_AUDIT_ARCH, 1, 0);
	RET(SECCOMP_RET_KILL_PROCESS);
	LD(OFF_NR);
#ifdef SB_X32_BIT
	/* x32 numbers are the x86_64 ones with bit 30 set: a filter that
	 * forgot them would allow "write" twice. */
	op(b, BPF_JMP | BPF_JSET | BPF_K, SB_X32_BIT, 0, 1);
	RET(SECCOMP_RET_KILL_PROCESS);
#endif
	ALLOW_LIST(b, sys_common);
	allow_if_any(b, SYS_ioctl, ARG_LO(1), ioctls, 2);
	allow_if_all(b, SYS_prlimit64, prl_off, prl_val, 3);
	allow_if_all(b, SYS_tkill, tkill_off, tkill_val, 2);
	allow_if_all(b, SYS_tgkill, tgkill_off, tgkill_val, 3);
	switch (role) {
	case SANDBOX_SMTP:
		ALLOW_LIST(b, sys_smtp);
		allow_if_any(b, SYS_socket, ARG_LO(0), inet_unix, 3);
		break;
	case SANDBOX_DELIVERY:
		ALLOW_LIST(b, sys_delivery);
		allow_if_any(b, SYS_socket, ARG_LO(0), inet_unix, 3);
		break;
	case SANDBOX_QUEUE:
		ALLOW_LIST(b, sys_queue);
		allow_if_any(b, SYS_socket, ARG_LO(0), unix_only, 1);
		break;
	case SANDBOX_KEY:
		allow_if_any(b, SYS_socket, ARG_LO(0), unix_only, 1);
		break;
	}
	RET(TRAP);
}

static int enter_seccomp(enum sandbox_role role, char *err, size_t errcap)
{
	static struct bpf b;
	struct sock_fprog prog;

	build_filter(&b, role, getpid(), (pid_t)syscall(SYS_gettid));
	if (b.full) {
		set_err(err, errcap, "seccomp: filter too long");
		return -1;
	}
	prog.len = (unsigned short)b.n;
	prog.filter = b.f;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) != 0) {
		set_err(err, errcap, "seccomp: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- Landlock ---- */

/* The kernel's Landlock ABI, 0 if it has none (not built in, or not
 * enabled at boot), -1 on any other error. */
static int landlock_abi(void)
{
	long abi = syscall(SYS_landlock_create_ruleset, NULL, (size_t)0,
	                   (unsigned)LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 0)
		return errno == ENOSYS || errno == EOPNOTSUPP ? 0 : -1;
	return abi > 1000 ? 1000 : (int)abi;
}

static int enter_landlock(const struct sandbox_conf *sc, int abi, int dirfd, char *err, size_t errcap)
{
	struct sb_ruleset_attr attr;
	size_t attr_size = sizeof attr.handled_access_fs;
	int rfd, rc = -1;

	memset(&attr, 0, sizeof attr);
	attr.handled_access_fs = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1; /* ABI 1: bits 0..12 */
	if (abi >= 2)
		attr.handled_access_fs |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		attr.handled_access_fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		attr.handled_access_fs |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	if (abi >= 4) {
		attr_size = offsetof(struct sb_ruleset_attr, scoped);
		/* Handled with no rule: no TCP at all. */
		if (sc->role == SANDBOX_QUEUE || sc->role == SANDBOX_KEY)
			attr.handled_access_net = LANDLOCK_ACCESS_NET_BIND_TCP
			                        | LANDLOCK_ACCESS_NET_CONNECT_TCP;
	}
	if (abi >= 6) {
		attr_size = sizeof attr;
		attr.scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL;
	}
	rfd = (int)syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0u);
	if (rfd < 0) {
		set_err(err, errcap, "landlock_create_ruleset (ABI %d): %s", abi, strerror(errno));
		return -1;
	}
	if (sc->rw_dir) {
		struct landlock_path_beneath_attr pb;
		memset(&pb, 0, sizeof pb);
		pb.allowed_access = attr.handled_access_fs;
		/* Opened before the uid changed: the run user need not be able
		 * to walk the path to it, only to use what it holds. */
		pb.parent_fd = dirfd;
		if (pb.parent_fd < 0) {
			set_err(err, errcap, "landlock: %s: cannot open it", sc->rw_dir);
			goto out;
		}
		long r = syscall(SYS_landlock_add_rule, rfd, LANDLOCK_RULE_PATH_BENEATH, &pb, 0u);
		int e = errno;
		if (r != 0) {
			set_err(err, errcap, "landlock_add_rule %s: %s", sc->rw_dir, strerror(e));
			goto out;
		}
	}
	if (syscall(SYS_landlock_restrict_self, rfd, 0u) != 0) {
		set_err(err, errcap, "landlock_restrict_self: %s", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	close(rfd);
	return rc;
}

/* ---- the chroot fallback (root only, before the uid drop) ---- */

static int dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int empty = 1;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
			empty = 0;
			break;
		}
	closedir(d);
	return empty;
}

static int enter_chroot(const char *dir, int must_be_empty, char *err, size_t errcap)
{
	struct stat st;

	if (must_be_empty && mkdir(dir, 0755) != 0 && errno != EEXIST) {
		set_err(err, errcap, "no Landlock, chroot: mkdir %s: %s", dir, strerror(errno));
		return -1;
	}
	if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		set_err(err, errcap, "no Landlock, chroot: %s: not a directory", dir);
		return -1;
	}
	if (must_be_empty && (st.st_uid != 0 || (st.st_mode & 022) || !dir_is_empty(dir))) {
		set_err(err, errcap, "no Landlock, chroot: %s must be empty, owned by root, "
		        "not writable by others", dir);
		return -1;
	}
	if (chroot(dir) != 0 || chdir("/") != 0) {
		set_err(err, errcap, "no Landlock, chroot %s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- ids and capabilities ---- */

static int drop_ids(const struct sandbox_conf *sc, char *err, size_t errcap)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	if (geteuid() == 0) {
		if (sc->uid == 0 || sc->gid == 0) {
			set_err(err, errcap, "refusing to run as uid/gid 0 (user %u:%u)",
			        (unsigned)sc->uid, (unsigned)sc->gid);
			return -1;
		}
		/* The bounding set, while CAP_SETPCAP is still there. */
		for (int c = 0; c <= 63; c++)
			if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0) {
				if (errno == EINVAL)
					break; /* past the kernel's last capability */
				set_err(err, errcap, "PR_CAPBSET_DROP %d: %s", c, strerror(errno));
				return -1;
			}
		if (setgroups(0, NULL) != 0 || setresgid(sc->gid, sc->gid, sc->gid) != 0
		    || setresuid(sc->uid, sc->uid, sc->uid) != 0) {
			set_err(err, errcap, "dropping to %u:%u: %s", (unsigned)sc->uid,
			        (unsigned)sc->gid, strerror(errno));
			return -1;
		}
		if (setresuid(0, 0, 0) == 0) {
			set_err(err, errcap, "uid 0 regained after the drop");
			return -1;
		}
	}
	if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0
	    || ru == 0 || eu == 0 || su == 0) {
		set_err(err, errcap, "refusing to run as uid 0");
		return -1;
	}
	return 0;
}

static int drop_caps(char *err, size_t errcap)
{
	struct __user_cap_header_struct hdr;
	struct __user_cap_data_struct data[2];

	memset(&hdr, 0, sizeof hdr);
	memset(data, 0, sizeof data);
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	hdr.pid = 0;
	if (syscall(SYS_capset, &hdr, data) != 0) {
		set_err(err, errcap, "capset: %s", strerror(errno));
		return -1;
	}
	/* Ambient capabilities exist since Linux 4.3. */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
		set_err(err, errcap, "clearing ambient capabilities: %s", strerror(errno));
		return -1;
	}
	memset(data, 0xff, sizeof data);
	if (syscall(SYS_capget, &hdr, data) != 0
	    || data[0].permitted | data[0].effective | data[0].inheritable
	     | data[1].permitted | data[1].effective | data[1].inheritable) {
		set_err(err, errcap, "capabilities still held after capset");
		return -1;
	}
	return 0;
}

/* open(path) must fail now. */
static int open_denied(const char *path, char *err, size_t errcap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		set_err(err, errcap, "self-check: %s still opens inside the sandbox", path);
		return 0;
	}
	return 1;
}

int sandbox_enter(const struct sandbox_conf *sc, char *report, size_t cap,
                  char *err, size_t errcap)
{
	const char *chroot_dir = NULL;
	int abi, nnp, dirfd = -1;

	if (errcap)
		err[0] = '\0';
	if (cap)
		report[0] = '\0';
	if ((unsigned)sc->role > SANDBOX_KEY) {
		set_err(err, errcap, "unknown role %d", (int)sc->role);
		return -1;
	}
	abi = landlock_abi();
	if (abi < 0) {
		set_err(err, errcap, "landlock ABI query: %s", strerror(errno));
		return -1;
	}
	if (abi == 0) {
		/* No Landlock: a root process chroots while it still can. */
		if (geteuid() != 0) {
			set_err(err, errcap, "no Landlock in this kernel and not root (cannot chroot): "
			        "refusing to run without filesystem isolation");
			return -1;
		}
		chroot_dir = sc->rw_dir ? sc->rw_dir : "/var/empty";
		if (enter_chroot(chroot_dir, sc->rw_dir == NULL, err, errcap) != 0)
			return -1;
	}
	if (abi > 0 && sc->rw_dir != NULL)
		dirfd = open(sc->rw_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (drop_ids(sc, err, errcap) != 0)
		goto fail;
	/* Die with the supervisor, whatever kills it (set after the uid
	 * change, which clears it); if it is gone already, stop now. */
	if (sc->parent > 0 &&
	    (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || getppid() != sc->parent)) {
		set_err(err, errcap, "the supervisor (pid %ld) is gone", (long)sc->parent);
		goto fail;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
	    || (nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)) != 1) {
		set_err(err, errcap, "no_new_privs: %s", strerror(errno));
		return -1;
	}
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		set_err(err, errcap, "PR_SET_DUMPABLE: %s", strerror(errno));
		return -1;
	}
	if (drop_caps(err, errcap) != 0)
		return -1;
	if (abi > 0 && enter_landlock(sc, abi, dirfd, err, errcap) != 0)
		goto fail;
	if (dirfd >= 0)
		close(dirfd);
	dirfd = -1;
	if ((sc->probe_path && !open_denied(sc->probe_path, err, errcap))
	    || !open_denied("/etc/passwd", err, errcap))
		return -1;
	if (install_sigsys(sc->role, err, errcap) != 0)
		return -1;
	if (!SB_SANITIZER && enter_seccomp(sc->role, err, errcap) != 0)
		return -1;
	if (cap)
		snprintf(report, cap, "uid=%u gid=%u nnp=%d seccomp=%d%s landlock=%d%s%s open-check=denied",
		         (unsigned)getuid(), (unsigned)getgid(), nnp, SB_SANITIZER ? 0 : 2,
		         SB_SANITIZER ? " sanitizer=1" : "", abi,
		         chroot_dir ? " chroot=" : "", chroot_dir ? chroot_dir : "");
	return 0;
fail:
	if (dirfd >= 0)
		close(dirfd);
	return -1;
}
