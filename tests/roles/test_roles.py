#!/usr/bin/python3
"""tests/roles/test_roles.py -- `moat serve` as a supervisor and four
sandboxed roles (smtp, queue, delivery, key; see docs/security.md, "Process
roles and sandbox"):

- every role is a child of the supervisor, runs as the run uid
  (65532:65532 by default when started as root) with no capabilities,
  no_new_privs, not dumpable, in seccomp filter mode, without the file
  system (the smtp role: Landlock, or an empty root), logs its
  `event=role` line with `open-check=denied`; only the queue role holds
  the queue file open; the sandboxed roles still serve SMTP, STARTTLS
  (signing through the key role), metrics and the control socket;
- SIGKILL of each role in turn under load (4 clients, one with STARTTLS):
  the supervisor logs role-exit (signal=9) and role-start with a new pid,
  mail flows again, and every message answered 250 is in the queue, both
  while the server runs and after SIGTERM (exit 0);
- the queue files belong to the run uid.

Not run against the ASan build (seccomp and ASan do not mix), and needs
root (the roles drop to the run uid).
Run:  BUILD=build MOAT=build/moat /usr/bin/python3 tests/roles/test_roles.py [case ...]
"""

import os
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "smtp"))
sys.path.insert(0, os.path.join(HERE, "..", "tls"))
sys.path.insert(0, os.path.join(HERE, "..", "ops"))
import moatlib  # noqa: E402
import opslib  # noqa: E402
import tlslib  # noqa: E402
from moatlib import DOMAIN, Failure, case, check, eq, free_port, queued_id  # noqa: E402

ROLES = ("smtp", "queue", "delivery", "key")
COMM = {r: "moat-" + r for r in ROLES}
RUN_UID = RUN_GID = 65532        # the default `user` when started as root
ROLES_SECONDS = 10               # all four roles up
RESTART_SECONDS = 10             # a killed role is back
FLOW_SECONDS = 20                # mail acknowledged again after a restart
FLOW_AFTER = 5                   # ... this many messages
CLIENTS = 4                      # load threads; the first uses STARTTLS
KILLS = ("smtp", "queue", "delivery", "key", "smtp")
QUEUED_TEXT_RE = re.compile(r"^2\.0\.0 OK: queued as ([0-9a-f]{16})$")
SHOW_SAMPLE = 80                 # acknowledged messages read back whole
moatlib.CASE_SECONDS = 150       # the kill case's own bounds add up to more than 60 s


# ---------------------------------------------------------------- helpers

def role_server(name, conf=None):
    """A moat with STARTTLS on its two listeners, a certificate and key (so
    the key role has something to hold) and a metrics listener (.mport)."""
    crt, key = tlslib.pair("rsa")
    p4, p6, mport = free_port(), free_port(socket.AF_INET6), free_port()
    settings = {
        "listen": ["127.0.0.1:%d tls=starttls" % p4, "[::1]:%d tls=starttls" % p6],
        "tls-cert": crt, "tls-key": key,
        "metrics-listen": "127.0.0.1:%d" % mport,
    }
    settings.update(conf or {})
    s = moatlib.Server(name, settings, start=False)
    s.port4, s.port6, s.mport = p4, p6, mport
    # The run uid must be able to reach its queue directory, as under
    # /var/lib on a real system (mkdtemp makes the test's directory 0700).
    os.chmod(s.dir, 0o755)
    try:
        s.start()
    except Failure as e:
        s.problems.append("did not start: %s" % str(e).split("\n")[0])
        raise
    return s


def proc_stat(pid):
    """(comm, ppid) of pid from /proc/PID/stat, or None if it is gone
    (or a zombie)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return None
    lp, rp = st.find("("), st.rfind(")")
    if lp < 0 or rp < lp:
        return None
    rest = st[rp + 2:].split()
    if rest[0] in ("Z", "X"):     # dead, not yet reaped: gone for us
        return None
    return st[lp + 1:rp], int(rest[1])


def children(ppid):
    """[(pid, comm)] of the processes whose parent is ppid."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = proc_stat(int(d))
        if st and st[1] == ppid:
            out.append((int(d), st[0]))
    return sorted(out)


def roles_now(s):
    """{role: pid} if the supervisor's children are exactly one process of
    each role, else None."""
    kids = children(s.proc.pid)
    by = {}
    for pid, comm in kids:
        by.setdefault(comm, []).append(pid)
    if sorted(by) != sorted(COMM.values()) or any(len(v) != 1 for v in by.values()):
        return None
    return {r: by[COMM[r]][0] for r in ROLES}


def wait_roles(s, seconds=ROLES_SECONDS, unlike=None):
    """{role: pid} once the four roles are there (with unlike: once the pid
    of role unlike[0] is no longer unlike[1])."""
    deadline = time.monotonic() + seconds
    while True:
        check(s.alive(), "the supervisor exited (status %s); log:\n%s"
              % (s.proc.poll() if s.proc else None, s.stderr()))
        r = roles_now(s)
        if r and (unlike is None or r[unlike[0]] != unlike[1]):
            return r
        if time.monotonic() > deadline:
            raise Failure("want the supervisor's (pid %d) children to be one each of %s "
                          "within %d s; they are %r; log:\n%s"
                          % (s.proc.pid, ", ".join(sorted(COMM.values())), seconds,
                             children(s.proc.pid), s.stderr()))
        time.sleep(0.05)


def status_fields(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(ln.rstrip("\n").split(":", 1) for ln in f if ":" in ln)


def fd_targets(pid):
    """The targets of pid's open descriptors."""
    d = "/proc/%d/fd" % pid
    out = []
    try:
        fds = os.listdir(d)
    except OSError as e:
        raise Failure("pid %d: cannot list its descriptors: %s" % (pid, e))
    for fd in fds:
        try:
            out.append(os.readlink(os.path.join(d, fd)))
        except OSError:
            pass     # closed meanwhile
    return out


class Log:
    """The server's log, read on: role events as {key: value} dicts.  A
    role may prefix its lines its own way: any line with the event word
    counts."""

    WANT = ("role", "role-exit", "role-start")

    def __init__(self, s):
        self.s, self.off, self.part, self.ev = s, 0, b"", []

    def read(self):
        try:
            with open(self.s.log_path, "rb") as f:
                f.seek(self.off)
                data = f.read()
        except OSError:
            return self.ev
        self.off += len(data)
        data = self.part + data
        lines = data.split(b"\n")
        self.part = lines.pop()
        for raw in lines:
            if b"event=role" not in raw:
                continue
            d = opslib.kv(raw.decode("utf-8", "replace"))
            if d.get("event") in self.WANT:
                d["_line"] = raw.decode("utf-8", "replace")
                self.ev.append(d)
        return self.ev

    def find(self, event, **want):
        return [d for d in self.read() if d.get("event") == event
                and all(d.get(k) == str(v) for k, v in want.items())]

    def wait(self, event, seconds, what, pred=lambda d: True, **want):
        deadline = time.monotonic() + seconds
        while True:
            got = [d for d in self.find(event, **want) if pred(d)]
            if got:
                return got
            if time.monotonic() > deadline:
                raise Failure("no log line event=%s %s (%s) within %d s; role lines:\n%s\nlog:\n%s"
                              % (event, " ".join("%s=%s" % kv for kv in want.items()), what,
                                 seconds, "\n".join(d["_line"] for d in self.ev),
                                 self.s.stderr()))
            time.sleep(0.05)


def check_sandboxed(s, log, roles):
    """Every /proc and log check on the four role processes."""
    for role, pid in roles.items():
        who = "role %s (pid %d)" % (role, pid)
        try:
            st = status_fields(pid)
        except OSError as e:
            raise Failure("%s: gone before its checks (%s); log:\n%s" % (who, e, s.stderr()))
        eq(st.get("Seccomp", "").strip(), "2", "%s: Seccomp (2: filter mode)" % who)
        eq(st.get("NoNewPrivs", "").strip(), "1", "%s: NoNewPrivs" % who)
        uids, gids = st.get("Uid", "").split(), st.get("Gid", "").split()
        eq(len(uids), 4, "%s: Uid fields" % who)
        check(all(u != "0" for u in uids), "%s: a uid is 0: Uid %r" % (who, uids))
        eq(uids, [str(RUN_UID)] * 4, "%s: Uid (real, effective, saved, fs)" % who)
        eq(gids, [str(RUN_GID)] * 4, "%s: Gid (real, effective, saved, fs)" % who)
        check("0" not in st.get("Groups", "").split(),
              "%s: still in supplementary group 0: Groups %r" % (who, st.get("Groups")))
        for cap in ("CapEff", "CapPrm", "CapAmb"):
            if cap in st:
                eq(st[cap].strip(), "0" * 16, "%s: %s" % (who, cap))
        # Not dumpable: the files in /proc/PID then belong to root, not to
        # the run uid (the directory itself keeps the task's uid).
        eq(os.stat("/proc/%d/status" % pid).st_uid, 0,
           "%s: owner of /proc/PID/status (not dumpable: root)" % who)
        lines = log.wait("role", 5, "the sandbox line of %s" % who, role=role, pid=pid)
        d = lines[-1]
        eq((d.get("uid"), d.get("gid"), d.get("nnp"), d.get("seccomp"), d.get("open-check")),
           (str(RUN_UID), str(RUN_GID), "1", "2", "denied"),
           "%s: uid gid nnp seccomp open-check in %r" % (who, d["_line"]))
        check(re.match(r"^\d+$", d.get("landlock", "")),
              "%s: landlock=N in %r" % (who, d["_line"]))
    # The smtp role sees no file system: Landlock (its root stays "/") or
    # an empty root directory.
    pid = roles["smtp"]
    root = os.readlink("/proc/%d/root" % pid)
    if root == "/":
        ll = log.find("role", role="smtp", pid=pid)[-1].get("landlock")
        check(ll != "0", "smtp role: root is / and landlock=%s: the file system is open" % ll)
    else:
        try:
            inside = os.listdir("/proc/%d/root/" % pid)
        except OSError as e:
            raise Failure("smtp role: cannot list its root %r: %s" % (root, e))
        eq(inside, [], "smtp role: its root %r is not empty" % root)
    # Only the queue role holds the queue file; the supervisor does not either.
    mdb = os.path.join(s.queue_dir, "data.mdb")
    holders = {}
    for who, pid in list(roles.items()) + [("supervisor", s.proc.pid)]:
        if any(t == mdb or t.endswith("/data.mdb") for t in fd_targets(pid)):
            holders[who] = pid
    eq(sorted(holders), ["queue"], "processes with data.mdb open")


# ---------------------------------------------------------------- 1

@case
def test_roles_sandboxed():
    s = role_server("sandbox")
    log = Log(s)
    eq(proc_stat(s.proc.pid)[0], "moat", "the supervisor's comm")
    roles = wait_roles(s)
    check_sandboxed(s, log, roles)
    # Sandboxed, the roles still do their work: STARTTLS (the key role
    # signs), a transaction (the queue role commits), metrics, and the
    # control socket.
    c, _ = tlslib.tls_session("127.0.0.1", s.port4)
    with c:
        qid = queued_id(c.mail_tx("a@example.org", ["x@" + DOMAIN],
                                  "Subject: sandboxed\r\n\r\nhello\r\n", ehlo=False))
        c.expect("QUIT", "221 2.0.0 mx.test closing connection")
    eq(list(s.queue_list()), [qid], "the queue after one message")
    eq(opslib.curl(s.mport, "/health")[::2], (200, "ok\n"), "GET /health")
    r = s.moat("status", "-c", s.conf_path)
    eq(r.returncode, 0, "moat status exit (stderr %r)" % r.stderr)
    # ... and none of them died of it.
    eq(roles_now(s), roles, "the roles after that work (a seccomp death restarts one)")
    eq([d["_line"] for d in log.find("role-exit")], [], "role-exit lines")
    s.stop()
    check(not s.problems, "server stop: %s" % "; ".join(s.problems))


# ---------------------------------------------------------------- 3

class Load:
    """CLIENTS threads sending with smtplib; a message counts only once its
    DATA got 250 and the queue ID.  Anything else (4xx, a disconnect, a
    timeout, a TLS failure): drop the connection, wait 50 ms, go on."""

    def __init__(self, s):
        self.s = s
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked = []          # (queue id, message id, thread, monotonic time)
        self.errors = []         # what must never happen (a 250 of the wrong form)
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(CLIENTS)]
        self.deadline = time.monotonic() + moatlib.CASE_SECONDS

    def start(self):
        for t in self.threads:
            t.start()

    def count(self, thread=None):
        with self.lock:
            return sum(1 for a in self.acked if thread is None or a[2] == thread)

    def finish(self):
        """Stop and join every thread (one step of a session may take a
        5 s timeout or three, then QUIT one more)."""
        self.stop.set()
        deadline = time.monotonic() + 30
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))
        alive = [t.name for t in self.threads if t.is_alive()]
        check(not alive, "client threads still running 30 s after stop: %r" % alive)

    def session(self, i):
        host, port = ("127.0.0.1", self.s.port4) if i % 2 == 0 else ("::1", self.s.port6)
        c = smtplib.SMTP(host, port, local_hostname="load%d.test" % i, timeout=5)
        try:
            c.ehlo()
            if i == 0:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                c.starttls(context=ctx)
                c.ehlo()
            return c
        except BaseException:
            c.close()
            raise

    def one(self, c, i, n):
        mid = "<load%d.%d.%d@roles.test>" % (i, n, os.getpid())
        code, _ = c.mail("load%d@example.org" % i)
        if code != 250:
            return False
        code, _ = c.rcpt("x%d@%s" % (i, DOMAIN))
        if code != 250:
            return False
        msg = ("From: load%d@example.org\r\nTo: x%d@%s\r\nMessage-ID: %s\r\n"
               "Subject: load %d\r\n\r\nmessage %d of thread %d\r\n"
               % (i, i, DOMAIN, mid, n, n, i))
        code, text = c.data(msg.encode())
        if code != 250:
            return False
        text = text.decode("utf-8", "replace")
        m = QUEUED_TEXT_RE.match(text)
        with self.lock:
            if not m:
                self.errors.append("thread %d: 250 %r is not '2.0.0 OK: queued as ID'" % (i, text))
                return False
            self.acked.append((m.group(1), mid, i, time.monotonic()))
        return True

    def run(self, i):
        n = 0
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            c = None
            try:
                c = self.session(i)
                for _ in range(20):        # then a new connection
                    if self.stop.is_set():
                        break
                    n += 1
                    if not self.one(c, i, n):
                        raise smtplib.SMTPException("not 250")
                try:
                    c.quit()
                except (smtplib.SMTPException, OSError, ValueError):
                    pass
                c = None
            except (smtplib.SMTPException, OSError, ValueError):
                # ssl.SSLError and socket.timeout are OSErrors
                if c is not None:
                    c.close()
                self.stop.wait(0.05)
            except Exception as e:     # noqa: a bug of this test: report it, go on
                with self.lock:
                    self.errors.append("thread %d: %s: %s" % (i, type(e).__name__, e))
                if c is not None:
                    c.close()
                self.stop.wait(0.05)


def wait_for(pred, seconds, what):
    deadline = time.monotonic() + seconds
    while not pred():
        if time.monotonic() > deadline:
            raise Failure("timed out (%d s) waiting for %s" % (seconds, what))
        time.sleep(0.05)


def check_listed(s, load, listed, when):
    acked = {a[0] for a in load.acked}
    missing = sorted(acked - set(listed))
    check(not missing, "%s: %d of %d acknowledged messages are not in the queue, e.g. %s"
          % (when, len(missing), len(acked), missing[:5]))


@case
def test_kill_each_role_under_load():
    s = role_server("kill")
    log = Log(s)
    roles = wait_roles(s)
    load = Load(s)
    load.start()
    kills = []                   # (role, pid killed, new pid)
    try:
        wait_for(lambda: load.count() >= 20 and load.count(0) >= 1, FLOW_SECONDS,
                 "20 messages acknowledged before the first kill (STARTTLS among them)")
        for role in KILLS:
            roles = wait_roles(s)
            old = roles[role]
            seen = {d.get("pid") for d in log.read()}
            os.kill(old, signal.SIGKILL)
            starts = log.wait("role-start", RESTART_SECONDS,
                              "%s restarted after SIGKILL of pid %d" % (role, old),
                              pred=lambda d: d.get("pid") not in seen, role=role)
            new = int(starts[-1]["pid"])
            check(re.match(r"^[1-9]\d*$", starts[-1].get("restarts", "")),
                  "restarts=N (N >= 1) in %r" % starts[-1]["_line"])
            roles = wait_roles(s, RESTART_SECONDS, unlike=(role, old))
            eq(roles[role], new, "pid of the new %s role (logged and in /proc)" % role)
            kills.append((role, old, new))
            base, base_tls = load.count(), load.count(0)
            wait_for(lambda: load.count() >= base + FLOW_AFTER
                     and (role != "key" or load.count(0) > base_tls),
                     FLOW_SECONDS, "%d messages acknowledged after the %s restart%s (%d so far)"
                     % (FLOW_AFTER, role, " (one over STARTTLS)" if role == "key" else "",
                        load.count() - base))
    finally:
        load.finish()
    check(not load.errors, "; ".join(load.errors[:5]))
    ids = [a[0] for a in load.acked]
    eq(len(ids), len(set(ids)), "distinct queue IDs among %d acknowledged" % len(ids))
    for role, old, new in kills:
        lines = log.find("role-exit", role=role, pid=old)
        check(lines, "no event=role-exit role=%s pid=%d" % (role, old))
        eq((lines[-1].get("status"), lines[-1].get("signal")), ("killed", "9"),
           "status and signal in %r" % lines[-1]["_line"])
    # The restarted roles are sandboxed as the first ones were.
    final = wait_roles(s)
    check_sandboxed(s, log, final)
    # Every acknowledged message is in the queue: now, and after SIGTERM.
    check_listed(s, load, s.queue_list(), "while running")
    p, s.proc = s.proc, None
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(moatlib.STOP_SECONDS)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(moatlib.STOP_SECONDS)
        raise Failure("no exit within %d s of SIGTERM; log:\n%s" % (moatlib.STOP_SECONDS, s.stderr()))
    eq(rc, 0, "exit status after SIGTERM")
    # The roles leave with the supervisor (a pid reused meanwhile would not
    # carry a role's name).
    wait_for(lambda: not [r for r, pid in final.items()
                          if (proc_stat(pid) or ("",))[0] == COMM[r]],
             5, "the roles %r to exit with the supervisor" % final)
    listed = s.queue_list()
    check_listed(s, load, listed, "after SIGTERM")
    eq(s.incoming(), [], "incoming/ after SIGTERM")
    # Read back a sample whole: the queue ID acknowledged holds that message.
    sample = load.acked[::max(1, len(load.acked) // SHOW_SAMPLE)]
    for qid, mid, _, _ in sample:
        _, body = s.queued_message(qid)
        check(("Message-ID: %s\r\n" % mid).encode() in body,
              "queued message %s lacks its Message-ID %s: %r" % (qid, mid, body[:300]))
    sys.stderr.write("kill-each-role-under-load: %d messages acknowledged, %d kills\n"
                     % (len(ids), len(kills)))


# ---------------------------------------------------------------- 5

@case
def test_queue_files_owned_by_run_uid():
    s = role_server("owner")
    wait_roles(s)
    with s.connect() as c:
        queued_id(c.mail_tx("a@example.org", ["x@" + DOMAIN], "Subject: owner\r\n\r\nhi\r\n"))
    eq(s.stop(), 0, "exit status after SIGTERM")
    for name in ("data.mdb", "lock.mdb"):
        st = os.stat(os.path.join(s.queue_dir, name))
        eq((st.st_uid, st.st_gid), (RUN_UID, RUN_GID), "owner of %s" % name)


if __name__ == "__main__":
    moatlib.main()
