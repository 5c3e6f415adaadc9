/*
 * mta/roles/sandbox.h -- the sandbox each process role enters after its start-up.
 *
 * A role does its privileged start-up first (as root in tests and in the
 * appliance: open what it needs, read keys, load tables, read resolv.conf),
 * then calls sandbox_enter() once.  From then on it can only use the file
 * descriptors it holds and the syscalls its role needs.  In order:
 *
 *   1. uid/gid: when running as root, setgroups(0), setresgid(gid),
 *      setresuid(uid); a process that is not root keeps its ids.  Ending as
 *      uid 0 (real, effective or saved) is an error.  The capability
 *      bounding set is emptied first while still root.
 *   2. no_new_privs = 1, dumpable = 0 (no core files, no ptrace by the same
 *      uid, /proc/PID owned by root).
 *   3. no capabilities: permitted, effective, inheritable and ambient empty.
 *   4. Landlock, at the ABI the kernel reports: every filesystem right that
 *      ABI knows is handled; the only rule is rw_dir (all rights, beneath);
 *      with ABI >= 4 the queue and key roles also get no TCP bind/connect;
 *      with ABI >= 6 signals and abstract unix sockets are scoped to the
 *      role's own domain.  Without Landlock (ENOSYS/EOPNOTSUPP) a root
 *      process chroots instead, before step 1: into rw_dir when the role has
 *      one, else into /var/empty (created 0755 root, must be empty).  No
 *      Landlock and not root: error -- a role never runs without
 *      filesystem isolation.
 *   5. self-check: open(probe_path) and open("/etc/passwd") must fail.
 *   6. seccomp-bpf: an allowlist per role (below).  The filter first checks
 *      the architecture (and, on x86_64, refuses x32 syscall numbers): a
 *      mismatch kills the process.  Any other syscall not allowed traps:
 *      the SIGSYS handler sandbox_enter installs writes
 *      "moat: role NAME: seccomp denied syscall N\n" to fd 2 and _exit(159).
 *      One exception: a denied syscall made while SIGSYS is blocked (musl's
 *      fork(), posix_spawn() and pthread_create() block every signal around
 *      clone) makes the kernel reset the handler, and the process dies of
 *      signal 31 (SIGSYS) without the line.  A supervisor should read both
 *      "exited 159" and "killed by signal 31" as a seccomp denial.
 *
 * What each role may do, and why:
 *   all     read/write/readv/writev/close/fcntl on fds it holds; memory
 *           (brk mmap munmap mremap madvise mprotect); the epoll loop,
 *           signalfd4 and the usual signal calls; clocks, sleeps, getrandom;
 *           getpid/gettid/get[e]uid/get[e]gid/getppid, uname; fstat,
 *           newfstatat, statx (musl's stdio); ioctl TIOCGWINSZ and FIONREAD
 *           only; prlimit64 reading its own limits only (getrlimit);
 *           recvfrom/sendto/recvmsg/sendmsg (SCM_RIGHTS between roles),
 *           connect, get/setsockopt, shutdown; socket(AF_UNIX) to reconnect
 *           the syslog socket; tkill/tgkill of itself with SIGABRT (abort).
 *   smtp    + socket(AF_INET, AF_INET6, AF_UNIX), bind, listen, accept,
 *           accept4, getsockname, getpeername: it serves the listeners the
 *           supervisor opened and the metrics/control sockets.
 *   delivery + socket(AF_INET, AF_INET6, AF_UNIX), bind, getsockname,
 *           getpeername: outbound SMTP and DNS over UDP/TCP; accept,
 *           accept4: the admin socket it bound before.  No listen.
 *   queue   + the file calls LMDB and queue/store.c use, confined by
 *           Landlock (or the chroot) to rw_dir: open/openat, pread64,
 *           pwrite64, pwritev, lseek, fsync, fdatasync, msync, ftruncate,
 *           fallocate, unlink/unlinkat, rename/renameat/renameat2,
 *           mkdir/mkdirat, getdents64, statfs/fstatfs, flock, futex and
 *           set_robust_list (LMDB's robust process-shared mutexes in
 *           lock.mdb).  Sockets: AF_UNIX only; no TCP (Landlock ABI >= 4).
 *   key     the common set only: it answers sign requests on its socketpair.
 * Nowhere: fork/clone/execve, ptrace, kill (of others), process_vm_*,
 * mount, set*id, chroot, bpf, perf_event_open, keyctl, io_uring, prctl, ...
 *
 * Before calling sandbox_enter() the caller must have done everything that
 * touches the filesystem or needs a privilege: tzset() (musl reads
 * /etc/localtime lazily, at the first localtime_r), prctl(PR_SET_NAME),
 * setrlimit, the syslog socket, resolv.conf, CA bundle, smarthost auth,
 * the control socket's bind, queue_open() (LMDB environment, lock files,
 * incoming/ directory fd), BearSSL seeding from getrandom.  The queue
 * directory and everything in it must belong to the uid the role drops to
 * (queue_open() as root creates them root-owned, 0700: chown them, or open
 * the queue after a setresuid of your own).  In the chroot fallback the
 * queue role is chrooted into rw_dir: only its open fds (the LMDB files,
 * incoming/'s directory fd) and relative paths keep working, and neither
 * there nor in /var/empty can the syslog socket be reconnected (lines go
 * to stderr).  No threads may
 * be started before (the filter is synchronised to all threads, but the
 * uid change is not guaranteed to be under every libc).
 *
 * In a sanitizer build (ASan/UBSan, libFuzzer) the seccomp filter is not
 * installed: the sanitizer runtimes need clone, ptrace, /proc/self/maps...
 * The report then says "seccomp=0 sanitizer=1"; everything else is the
 * same.  The shipped binary (musl) always installs it.
 */
#ifndef MOAT_MTA_ROLES_SANDBOX_H
#define MOAT_MTA_ROLES_SANDBOX_H

#include <stddef.h>
#include <sys/types.h>

enum sandbox_role { SANDBOX_SMTP = 0, SANDBOX_QUEUE, SANDBOX_DELIVERY, SANDBOX_KEY };

struct sandbox_conf {
	enum sandbox_role role;
	/* Dropped to when running as uid 0; otherwise the process keeps its
	 * ids (which must not be 0). */
	uid_t uid;
	gid_t gid;
	/* The only directory the role may use (read and write, beneath it):
	 * the queue directory for SANDBOX_QUEUE; NULL: no filesystem at all. */
	const char *rw_dir;
	/* A readable file (the config file) that must not open once inside;
	 * NULL: only /etc/passwd is checked. */
	const char *probe_path;
	pid_t parent;             /* > 0: die (SIGKILL) when this process, the
	                             supervisor, dies; 0: no such tie */
};

/* "smtp", "queue", "delivery", "key" ("?" for anything else). */
const char *sandbox_role_name(enum sandbox_role r);

/* Enter the role's sandbox (the steps above).  Returns 0 with a one-line
 * report in report[0..cap), e.g.
 *   "uid=65532 gid=65532 nnp=1 seccomp=2 landlock=7 open-check=denied"
 *   "uid=65532 gid=65532 nnp=1 seccomp=2 landlock=0 chroot=/var/empty open-check=denied"
 * or -1 with the reason in err[0..errcap).  After -1 the process is in an
 * unknown, partly restricted state: the caller must exit.  Call it once. */
int sandbox_enter(const struct sandbox_conf *sc, char *report, size_t cap,
                  char *err, size_t errcap);

#endif
