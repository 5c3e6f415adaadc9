#!/usr/bin/python3
"""tests/bench/bench.py -- `make bench`: moat against Postfix and OpenSMTPD.

Not a test: it asserts nothing about speed.  It prints a table and keeps the
results in build/bench/results.{txt,json}.

Every system runs as a private instance on a free port of 127.0.0.1, with
its queue under build/bench/run/SYSTEM/, configured to accept mail for
bench.test and keep it queued without delivering it, with its default
durability.  moat: LMDB's durable commit (fdatasync of the pages, then the
meta page O_DSYNC) before the 250.  Postfix: cleanup fsyncs the queue file
before the 250 (one fsync per message, seen with strace).  OpenSMTPD 6.8
(Debian 12): its fs queue writes and renames the files but calls no fsync
at all (seen with strace), so its 250 does not mean the message is on disk.

  moat       build/moat serve, logging to a file; the per-client connection
             limit and the queue quotas lifted (all the load comes from
             127.0.0.1, which Postfix exempts from its limits as mynetworks).
  postfix    postfix -c DIR start: its own main.cf/master.cf; recipients get
             the HOLD action (static:HOLD), so the message is queued in
             hold/ and the queue manager never touches it.  in_flow_delay
             is 0 (with no deliveries the queue manager would hand out no
             tokens, and every message would wait 1 s) and the client's
             reverse lookup is off: both favour Postfix.
  opensmtpd  the smtpd of Debian's package, unpacked (it conflicts with
             postfix as a package), run with -d -P mta -P mda (delivery
             paused) in a private mount namespace where build/bench
             directories stand in for /var/spool, /var/lib and /run, and a
             resolv.conf that answers from /etc/hosts (no DNS traffic).
  moat-dkim  moat as above with DKIM signing on, in the c=100 10 KB cell
             only (issue 15): 127.0.0.0/8 is a relay network and the load's
             From: domain (client.test) has an RSA-2048 key from `moat
             dkim-keygen`, so every message is signed (the key role's RSA
             operation, the smtp role's check of it) before its 250.  A run
             counts only if every message queued was signed (its accept
             line says dkim=signed).  Printed beside the unsigned figure.

Load: smtp-source (from postfix), one message per connection, one recipient,
at each concurrency and size.  Each cell starts every system afresh (empty
queue), runs a short pilot (not reported) that sizes the run to last about
TARGET seconds, then REPS runs per system, the systems interleaved in a
rotating order.  A run counts only if smtp-source succeeded and the queue
grew by exactly the number of messages sent; otherwise it is printed as
INVALID and left out.

  messages/s     messages sent / wall time of smtp-source
  CPU s/1000     utime+stime of the server's processes (cutime+cstime for
                 those that exited: /proc/PID/stat), per 1000 messages
  peak PSS MB    highest sum of Pss (smaps_rollup) over the server's
                 processes, sampled every 0.5 s: shared pages are split
                 among the processes that share them.  Less moat's mapping
                 of its queue file (LMDB's data.mdb: page cache that grows
                 with the queue, not with the load)
  sum HWM MB     sum of VmHWM of every server process seen in the run (what
                 `ps` would add up; counts shared library pages once per
                 process, so it overstates multi-process servers; for moat
                 it includes the mapped queue file)

Persistent sessions: at c=100, 10 KB, smtp-source -d (each session
carries many messages) against moat, Postfix and smtp-sink (Postfix's
test server, which stores nothing: the most any server could do with that
load), interleaved; the median rate of each, with moat's ratio to the
other two.

The outbound section (--section outbound runs it alone): moat and Postfix
each queue N messages with delivery held and are released toward the same
next hop (smtp-sink, then a STARTTLS + AUTH moat smarthost); the figure is
N / seconds from the release to an empty queue, checked against what the
next hop received, with connections per 1000 messages counted at the next
hop; and a cell with 300,000 messages waiting for a dead destination.
What is timed, and how, is in outbound()'s docstring.
"""
import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CLK_TCK = os.sysconf("SC_CLK_TCK")
DOMAIN = "bench.test"
SENDER = "sender@client.test"
RCPT = "rcpt@" + DOMAIN


def log(msg):
    print(msg, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---- /proc ----

def proc_stat(pid):
    """(ppid, utime+stime+cutime+cstime in ticks) or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    f = s[s.rindex(")") + 2:].split()
    # f[0] is state (field 3): ppid is field 4, utime..cstime 14..17.
    return int(f[1]), int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])


def proc_tree(root):
    """root and all its descendants."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = proc_stat(int(d))
        if st:
            children.setdefault(st[0], []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def proc_comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def tree_cpu_ticks(root):
    total = 0
    for p in proc_tree(root):
        st = proc_stat(p)
        if st:
            total += st[1]
    return total


def status_kb(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid, skip_under=None):
    """Pss of pid; with skip_under, less the Pss of mappings of files under
    that directory (read from the full smaps, which costs more)."""
    if skip_under is None:
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0
    total, skip = 0, False
    try:
        with open("/proc/%d/smaps" % pid) as f:
            for line in f:
                if line[0] in "0123456789abcdef" and "-" in line.split(" ", 1)[0]:
                    parts = line.split(None, 5)
                    skip = len(parts) > 5 and parts[5].strip().startswith(skip_under)
                elif line.startswith("Pss:") and not skip:
                    total += int(line.split()[1])
    except OSError:
        pass
    return total


class MemMonitor:
    """Samples the server's process tree while a run goes on."""

    def __init__(self, root, skip_under=None, interval=0.5):
        self.root, self.interval, self.skip_under = root, interval, skip_under
        self.peak_pss = 0
        self.hwm = {}
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)

    def sample(self):
        pids = proc_tree(self.root)
        total = 0
        for p in pids:
            total += pss_kb(p, self.skip_under)
            h = status_kb(p, "VmHWM")
            if h:
                self.hwm[p] = max(self.hwm.get(p, 0), h)
        self.peak_pss = max(self.peak_pss, total)

    def _loop(self):
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self):
        self.sample()
        self._t.start()
        return self

    def __exit__(self, *a):
        self._stop.set()
        self._t.join()
        self.sample()

    def sum_hwm(self):
        return sum(self.hwm.values())


def wait_220(port, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                if s.recv(512).startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def count_files(top, name=None):
    n = 0
    for _, _, files in os.walk(top):
        n += sum(1 for f in files if name is None or f == name)
    return n


def wait_gone(pid, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc_stat(pid) is None:
            return True
        time.sleep(0.05)
    return False


# ---- the systems ----

class Server:
    name = "?"
    mapped_queue = None  # a directory whose files the server mmaps

    def __init__(self, top, build):
        self.dir = os.path.join(top, self.name)
        self.build = build
        self.port = 0
        self.root = None
        self.proc = None

    def fresh(self):
        if os.path.isdir(self.dir):
            shutil.rmtree(self.dir)
        os.makedirs(self.dir)
        self.port = free_port()

    def up(self):
        self.fresh()
        self.start()
        if not wait_220(self.port):
            raise RuntimeError("%s did not answer 220 on port %d (see %s)" %
                               (self.name, self.port, self.dir))

    def stop_proc(self, timeout=15):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class Moat(Server):
    name = "moat"

    def start(self):
        # LMDB maps data.mdb: the page cache of the queue file shows in
        # moat's RSS (fault-around maps freshly written body pages).  It
        # is reclaimable and grows with the queue, not with the load, so
        # the PSS figure leaves it out; the HWM figure keeps it.
        self.mapped_queue = os.path.join(self.dir, "queue") + "/"
        self.conf = os.path.join(self.dir, "moat.conf")
        with open(self.conf, "w") as f:
            # The load comes from one address: lift the per-client limits
            # (Postfix exempts mynetworks from its own) and the quotas.
            # Delivery off, as the others' is paused: the bench measures
            # acceptance, and the queue must keep what it counts.
            f.write("hostname moat.%s\nlisten 127.0.0.1:%d\ndomain %s\n"
                    "queue %s/queue\nqueue-max-bytes 64G\nqueue-max-messages 10000000\n"
                    "queue-client-share 100\nmax-connections-per-client 4000\n"
                    "delivery off\n%s" %
                    (DOMAIN, self.port, DOMAIN, self.dir, self.extra_conf()))
        self.logf = os.path.join(self.dir, "moat.log")
        with open(self.logf, "wb") as lf:
            self.proc = subprocess.Popen(
                [os.path.join(self.build, "moat"), "serve", "-c", self.conf],
                stdin=subprocess.DEVNULL, stdout=lf, stderr=lf)
        self.root = self.proc.pid

    def extra_conf(self):
        return ""

    def count(self):
        out = subprocess.run([os.path.join(self.build, "moat"), "queue", "count",
                              "-c", self.conf], capture_output=True, text=True)
        for line in out.stdout.splitlines():
            if line.startswith("messages "):
                return int(line.split()[1])
        raise RuntimeError("moat queue count: %s" % out.stderr.strip())

    def stop(self):
        self.stop_proc()

    def commit_stats(self):
        """(commits, messages) from the server's last stats line, if any."""
        stats = None
        try:
            with open(self.logf, errors="replace") as f:
                for line in f:
                    if "event=stats" in line:
                        kv = dict(w.split("=", 1) for w in line.split() if "=" in w)
                        stats = (int(kv.get("commits", 0)), int(kv.get("messages", 0)))
        except OSError:
            pass
        return stats


class MoatDkim(Moat):
    name = "moat-dkim"
    KEYGEN_DOMAIN = SENDER.split("@")[1]   # smtp-source writes From: <SENDER>

    def extra_conf(self):
        key = os.path.join(self.dir, "dkim.pem")
        r = subprocess.run([os.path.join(self.build, "moat"), "dkim-keygen", "-o", key, "bench",
                            self.KEYGEN_DOMAIN, "2048"], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("moat dkim-keygen: %s" % r.stderr.strip())
        return "relay-network 127.0.0.0/8\ndkim-sign %s bench %s\n" % (self.KEYGEN_DOMAIN, key)

    def signed(self):
        """Accept lines that say dkim=signed, so far."""
        try:
            with open(self.logf, errors="replace") as f:
                return sum(1 for line in f if "event=accept " in line and " dkim=signed " in line)
        except OSError:
            return 0


class Postfix(Server):
    name = "postfix"

    def start(self):
        d = self.dir
        self.etc = os.path.join(d, "etc")
        for sub in ("etc", "queue", "data"):
            os.makedirs(os.path.join(d, sub))
        shutil.chown(os.path.join(d, "data"), "postfix")
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write(self.main_cf())
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(POSTFIX_MASTER.format(port=self.port))
        r = subprocess.run(["postfix", "-c", self.etc, "start"], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("postfix start: " + r.stderr.strip())
        pidf = os.path.join(d, "queue", "pid", "master.pid")
        end = time.monotonic() + 15
        while time.monotonic() < end:
            try:
                with open(pidf) as f:
                    self.root = int(f.read().strip())
                    return
            except (OSError, ValueError):
                time.sleep(0.1)
        raise RuntimeError("postfix: no master.pid")

    def main_cf(self):
        return POSTFIX_MAIN.format(dir=self.dir, domain=DOMAIN)

    def count(self):
        q = os.path.join(self.dir, "queue")
        return sum(count_files(os.path.join(q, s))
                   for s in ("maildrop", "incoming", "active", "deferred", "hold"))

    def stop(self):
        if self.root:
            subprocess.run(["postfix", "-c", self.etc, "stop"], capture_output=True)
            if not wait_gone(self.root, 20):
                for p in proc_tree(self.root):
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
            self.root = None


POSTFIX_MAIN = """\
# A private instance for make bench: never the system's /etc/postfix.
compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.{domain}
mydomain = {domain}
myorigin = {domain}
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = {domain}
relay_recipient_maps =
smtpd_relay_restrictions = permit_mynetworks, permit_auth_destination, reject
# Keep every message queued (hold/) instead of delivering it.
smtpd_recipient_restrictions = check_recipient_access static:HOLD
# No deliveries means no flow-control tokens: without this each message
# would wait in_flow_delay (1 s).  And no reverse lookup of the client.
in_flow_delay = 0s
smtpd_peername_lookup = no
maillog_file = {dir}/maillog
maillog_file_prefixes = {dir}
alias_maps =
alias_database =
biff = no
"""

POSTFIX_MASTER = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n -  0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n -  - trivial-rewrite
bounce    unix  - - n -  0 bounce
defer     unix  - - n -  0 bounce
trace     unix  - - n -  0 bounce
verify    unix  - - n -  1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -  - proxymap
smtp      unix  - - n -  - smtp
relay     unix  - - n -  - smtp
showq     unix  n - n -  - showq
error     unix  - - n -  - error
retry     unix  - - n -  - error
discard   unix  - - n -  - discard
local     unix  - n n -  - local
anvil     unix  - - n -  1 anvil
scache    unix  - - n -  1 scache
tlsmgr    unix  - - n 1000? 1 tlsmgr
tlsproxy  unix  - - n -  0 tlsproxy
postlog   unix-dgram n - n - 1 postlogd
"""


class OpenSMTPD(Server):
    name = "opensmtpd"

    def start(self):
        d = self.dir
        root = os.path.join(self.build, "bench", "opensmtpd-root")
        for sub in ("spool", "varlib/opensmtpd/empty", "run"):
            os.makedirs(os.path.join(d, sub))
        conf = os.path.join(d, "smtpd.conf")
        with open(conf, "w") as f:
            f.write('listen on 127.0.0.1 port %d hostname opensmtpd.%s\n'
                    'action "keep" relay\n'
                    'match from any for domain "%s" action "keep"\n' % (self.port, DOMAIN, DOMAIN))
        with open(os.path.join(d, "resolv.conf"), "w") as f:
            f.write("nameserver 127.0.0.1\nlookup file bind\n")
        script = ("mount --bind {d}/spool /var/spool && mount --bind {d}/varlib /var/lib && "
                  "mount --bind {d}/run /run && mount --bind {d}/resolv.conf /etc/resolv.conf && "
                  "exec {r}/usr/sbin/smtpd -d -P mta -P mda -f {c}").format(d=d, r=root, c=conf)
        with open(os.path.join(d, "smtpd.log"), "wb") as lf:
            self.proc = subprocess.Popen(
                ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                stdin=subprocess.DEVNULL, stdout=lf, stderr=lf)
        self.root = self.proc.pid

    def count(self):
        return count_files(os.path.join(self.dir, "spool", "smtpd", "queue"), "message")

    def stop(self):
        self.stop_proc()


# ---- runs ----

def smtp_source(port, conc, size, n, timeout=600, persistent=False, rcpt=RCPT):
    """Postfix's smtp-source: n messages of size bytes, conc sessions at
    once, to rcpt; (wall seconds, exit status, its output)."""
    cmd = ["smtp-source", "-s", str(conc), "-m", str(n), "-l", str(size),
           "-M", "client.test", "-f", SENDER, "-t", rcpt] + (["-d"] if persistent else []) + \
          ["127.0.0.1:%d" % port]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return time.monotonic() - t0, -1, "timed out after %d s" % timeout
    return time.monotonic() - t0, p.returncode, (out + err).strip()


def one_run(srv, conc, size, n, persistent=False):
    before = srv.count()
    signed0 = srv.signed() if isinstance(srv, MoatDkim) else 0
    cpu0 = tree_cpu_ticks(srv.root)
    with MemMonitor(srv.root, srv.mapped_queue) as mon:
        wall, rc, msg = smtp_source(srv.port, conc, size, n, timeout=max(120, n / 2),
                                    persistent=persistent)
    time.sleep(0.2)  # let the server finish what follows the last QUIT
    cpu1 = tree_cpu_ticks(srv.root)
    queued = srv.count() - before
    r = {"system": srv.name, "conc": conc, "size": size, "sent": n, "queued": queued,
         "wall": wall, "rate": n / wall if wall > 0 else 0.0,
         "cpu_per_1000": (cpu1 - cpu0) / CLK_TCK / n * 1000,
         "peak_pss_kb": mon.peak_pss, "sum_hwm_kb": mon.sum_hwm()}
    problems = []
    if rc != 0:
        problems.append("smtp-source exit %d" % rc)
    if msg:
        problems.append("smtp-source said: " + msg.splitlines()[-1][:120])
    if queued != n:
        problems.append("sent %d, queued %d" % (n, queued))
    if isinstance(srv, MoatDkim):
        signed = srv.signed() - signed0
        r["signed"] = signed
        if signed != queued:
            problems.append("queued %d, signed %d" % (queued, signed))
    r["valid"] = not problems
    r["problems"] = problems
    return r


def size_text(size):
    return "%dK" % (size // 1024)


def median_spread(vals):
    if not vals:
        return None
    return statistics.median(vals), min(vals), max(vals)


def fmt_rate(ms):
    if ms is None:
        return "invalid"
    m, lo, hi = ms
    return "%.0f (%.0f-%.0f)" % (m, lo, hi)


def fmt_num(ms, spec):
    if ms is None:
        return "-"
    return spec % ms[0]


def ratio(a, b):
    if a is None or b is None or b[0] == 0:
        return "-"
    return "%.2fx" % (a[0] / b[0])


def summarise(runs, systems, cells):
    """The table, as lines of text, and the per-cell medians."""
    lines = []
    hdr = "%-5s %-5s %-10s %-20s %-9s %-8s %-8s | %-17s" % (
        "conc", "size", "system", "msg/s med (min-max)", "CPU s/1k", "PSS MB", "HWM MB",
        "moat/peer: rate cpu mem")
    lines += [hdr, "-" * len(hdr)]
    medians = {}
    for conc, size in cells:
        for name in systems:
            rs = [r for r in runs if r["system"] == name and r["conc"] == conc
                  and r["size"] == size and r["valid"] and "cell" not in r]
            if name == "moat-dkim" and not any(r["system"] == name and r["conc"] == conc and
                                               r["size"] == size for r in runs):
                continue   # not run in this cell
            medians[(name, conc, size)] = {
                "rate": median_spread([r["rate"] for r in rs]),
                "cpu": median_spread([r["cpu_per_1000"] for r in rs]),
                "pss": median_spread([r["peak_pss_kb"] / 1024 for r in rs]),
                "hwm": median_spread([r["sum_hwm_kb"] / 1024 for r in rs]),
                "n": len(rs)}
        for name in systems:
            if (name, conc, size) not in medians:
                continue
            m = medians[(name, conc, size)]
            rat = ""
            if name not in ("moat", "moat-dkim"):   # (moat-dkim: its own line below)
                mm = medians[("moat", conc, size)]
                rat = "%-6s %-6s %-6s" % (ratio(mm["rate"], m["rate"]), ratio(mm["cpu"], m["cpu"]),
                                          ratio(mm["pss"], m["pss"]))
            lines.append("%-5d %-5s %-10s %-20s %-9s %-8s %-8s | %s" % (
                conc, size_text(size), name, fmt_rate(m["rate"]), fmt_num(m["cpu"], "%.3f"),
                fmt_num(m["pss"], "%.1f"), fmt_num(m["hwm"], "%.1f"), rat))
        lines.append("")
    return lines, medians


# ---- moat alone: idle connections, binary, image ----

def idle_connections(build, top, nconn=1000):
    srv = Moat(top, build)
    srv.up()
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = min(hard, nconn + 256)
        if soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        for _ in range(10):  # warm up: first sessions, log buffers
            wait_220(srv.port)
        time.sleep(0.2)
        # The sessions live in the smtp role (a child of the supervisor).
        smtp = [p for p in proc_tree(srv.root) if proc_comm(p) == "moat-smtp"]
        if len(smtp) != 1:
            raise RuntimeError("idle test: no single moat-smtp process under %d" % srv.root)
        before = status_kb(smtp[0], "VmRSS")
        socks = []
        for _ in range(nconn):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            socks.append(s)
        for s in socks:
            if not s.recv(512).startswith(b"220"):
                raise RuntimeError("idle test: no greeting")
            s.sendall(b"EHLO client.test\r\n")
        for s in socks:
            got = b""
            while b"\r\n250 " not in got and not got.startswith(b"250 "):
                chunk = s.recv(4096)
                if not chunk:
                    raise RuntimeError("idle test: connection closed")
                got += chunk
        time.sleep(0.5)
        after = status_kb(smtp[0], "VmRSS")
        hwm = status_kb(smtp[0], "VmHWM")
        for s in socks:
            s.close()
        return {"connections": nconn, "rss_before_kb": before, "rss_after_kb": after,
                "per_conn_kb": (after - before) / nconn, "hwm_kb": hwm}
    finally:
        srv.stop()


def binary_sizes(build):
    path = os.path.join(build, "moat")
    size = os.path.getsize(path)
    stripped = None
    tmp = os.path.join(build, "bench", "moat.stripped")
    try:
        shutil.copyfile(path, tmp)
        subprocess.run(["strip", tmp], check=True, capture_output=True)
        stripped = os.path.getsize(tmp)
        os.unlink(tmp)
    except (OSError, subprocess.CalledProcessError):
        pass
    return {"file": size, "stripped": stripped}


def appliance(build):
    """image/measure.sh's "name value" lines (the appliance issue), or None
    when there is no image/measure.sh yet."""
    script = os.path.join(REPO, "image", "measure.sh")
    if not os.path.exists(script):
        return None
    logf = os.path.join(build, "bench", "measure.log")
    with open(logf, "w") as lf:
        try:
            r = subprocess.run(["sh", script], stdout=subprocess.PIPE, stderr=lf, text=True,
                               cwd=REPO, timeout=1800, env=dict(os.environ, BUILD=build))
        except subprocess.TimeoutExpired:
            return "n/a (image/measure.sh timed out; see %s)" % logf
    if r.returncode != 0 or not r.stdout.strip():
        return "n/a (image/measure.sh exit %d; see %s)" % (r.returncode, logf)
    return "\n" + "\n".join("  " + line for line in r.stdout.strip().splitlines())


def versions():
    v = {}
    r = subprocess.run(["postconf", "-d", "-h", "mail_version"], capture_output=True, text=True)
    v["postfix"] = r.stdout.strip()
    r = subprocess.run(["dpkg-deb", "-f"] + [os.path.join(d, f) for d, _, fs in
                       os.walk(os.path.join(ARGS.build, "bench", "dl")) for f in fs
                       if f.endswith(".deb")][:1] + ["Version"], capture_output=True, text=True)
    v["opensmtpd"] = r.stdout.strip()
    r = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    v["moat"] = r.stdout.strip()
    return v


def machine():
    m = {"cpus": os.cpu_count(), "kernel": os.uname().release}
    best = ""
    top = os.path.realpath(os.path.join(ARGS.build, "bench"))
    with open("/proc/mounts") as f:
        for line in f:
            dev, mnt, fstype = line.split()[:3]
            if top.startswith(mnt) and len(mnt) > len(best):
                best, m["fs"] = mnt, "%s on %s (%s)" % (fstype, mnt, dev)
    return m


# ---- outbound: what leaves the queue (see outbound()'s docstring) ----

OUT_USER, OUT_PASS = "bench", "bench-secret"
OUT_SENDER_HOST = "moat-out.client.test"


class NextHop:
    """A next hop the bench counts at: counters() by the subclass."""
    proc = None

    def settle(self, timeout=10.0):
        """The counters once they stop moving (sessions still closing)."""
        end = time.monotonic() + timeout
        last = self.counters()
        while time.monotonic() < end:
            time.sleep(0.5)
            now = self.counters()
            if now == last:
                return now
            last = now
        return last

    def stop_proc(self, timeout):
        """SIGTERM, then SIGKILL after timeout seconds."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class Sink(NextHop):
    """smtp-sink on a free port; its -c counters, read back from its stdout."""

    def __init__(self, top, name="sink"):
        self.dir = os.path.join(top, name)
        self.proc = None
        self.port = 0

    def start(self):
        if os.path.isdir(self.dir):
            shutil.rmtree(self.dir)
        os.makedirs(self.dir)
        self.port = free_port()
        self.outf = os.path.join(self.dir, "counters")
        cmd = ["smtp-sink", "-4", "-c"]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
        with open(self.outf, "wb") as out:
            self.proc = subprocess.Popen(cmd + ["127.0.0.1:%d" % self.port, "1024"],
                                         stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT)
        if not wait_220(self.port):
            raise RuntimeError("smtp-sink did not answer on %d" % self.port)

    def counters(self):
        """{"sess": sessions ended, "quit": QUITs, "mesg": messages}."""
        try:
            with open(self.outf, "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - 256))
                data = f.read()
        except OSError:
            data = b""
        # Each update is "sess=N quit=N mesg=N\r": only whole ones count.
        for chunk in reversed(data.split(b"\r")[:-1]):
            kv = dict(w.split(b"=", 1) for w in chunk.split() if b"=" in w)
            try:
                return {k.decode(): int(v) for k, v in kv.items()
                        if k in (b"sess", b"quit", b"mesg")}
            except ValueError:
                continue
        return {"sess": 0, "quit": 0, "mesg": 0}

    def received(self):
        return self.counters().get("mesg", 0)

    def stop(self):
        self.stop_proc(10)


class SinkSystem(Server):
    """smtp-sink as one more system of an inbound cell: what a server that
    stores nothing does with the same load (its 250 means nothing)."""
    name = "smtp-sink"

    def __init__(self, top, build):
        Server.__init__(self, top, build)
        self.sink = Sink(top, "sink-inbound")

    def up(self):
        self.sink.start()
        self.port, self.proc, self.root = self.sink.port, self.sink.proc, self.sink.proc.pid

    def count(self):
        return self.sink.settle(2.0).get("mesg", 0)   # (sessions may still be closing)

    def stop(self):
        self.sink.stop()


def persistent_cell(servers, top, build, quick, reps):
    """c=100, 10 KB over persistent sessions (smtp-source -d: a session
    carries many messages): moat, Postfix and smtp-sink, interleaved.
    Returns the runs and the lines to print."""
    conc, size = 100, 10240
    systems = [x for x in servers if x.name in ("moat", "postfix")] + [SinkSystem(top, build)]
    n = 5000 if quick else 20000
    runs = []
    for srv in systems:
        srv.up()
    try:
        for srv in systems:
            one_run(srv, conc, size, 500, persistent=True)   # warm-up, not counted
        for rep in range(reps):
            for srv in systems[rep % len(systems):] + systems[:rep % len(systems)]:
                r = one_run(srv, conc, size, n, persistent=True)
                runs.append(r)
                log("  persistent c=%d %s %-9s %6d msgs %6.2f s %8.1f msg/s  cpu %.3f s/1k%s" % (
                    conc, size_text(size), srv.name, r["sent"], r["wall"], r["rate"],
                    r["cpu_per_1000"], "" if r["valid"] else "  INVALID: " + "; ".join(r["problems"])))
    finally:
        for srv in systems:
            srv.stop()
    med = {}
    for srv in systems:
        ok = [r for r in runs if r["system"] == srv.name and r["valid"]]
        if ok:
            med[srv.name] = (statistics.median(r["rate"] for r in ok),
                             statistics.median(r["cpu_per_1000"] for r in ok))
    lines = ["persistent sessions (smtp-source -d), c=100 10K, %d messages, median of %d run(s):" % (
        n, reps)]
    for name in [x.name for x in systems]:
        if name not in med:
            lines.append("  %-10s no valid run" % name)
            continue
        rate, cpu = med[name]
        extra = ""
        if name != "moat" and "moat" in med and rate > 0:
            extra = "   moat/%s: %.2fx" % (name, med["moat"][0] / rate)
        lines.append("  %-10s %8.0f msg/s  CPU %.3f s/1k%s" % (name, rate, cpu, extra))
    return runs, lines


class LogCount:
    """Counts lines with given words in a growing log, reading only what
    was added since the last call."""

    def __init__(self, path, words):
        self.path, self.words = path, words
        self.off, self.rest = 0, b""
        self.n = {w: 0 for w in words}

    def update(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.off)
                data = f.read()
        except OSError:
            return self.n
        self.off += len(data)
        data = self.rest + data
        cut = data.rfind(b"\n") + 1
        self.rest = data[cut:]
        for w in self.words:
            self.n[w] += data[:cut].count(w)
        return self.n


def moat_queue_count(build, conf):
    out = subprocess.run([os.path.join(build, "moat"), "queue", "count", "-c", conf],
                         capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.startswith("messages "):
            return int(line.split()[1])
    raise RuntimeError("moat queue count: %s" % out.stderr.strip())


def make_cert(top):
    """A self-signed P-256 certificate and key for the smarthost."""
    cert, key = os.path.join(top, "cert.pem"), os.path.join(top, "key.pem")
    if not os.path.exists(cert):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "7", "-subj", "/CN=smarthost.bench.test"],
                       check=True, capture_output=True)
    return cert, key


class Smarthost(NextHop):
    """A moat with a STARTTLS submission listener, AUTH and delivery off."""

    def __init__(self, top, build):
        self.top, self.build = top, build
        self.dir = os.path.join(top, "smarthost")
        self.proc = None

    def start(self):
        if os.path.isdir(self.dir):
            shutil.rmtree(self.dir)
        os.makedirs(self.dir)
        self.port = free_port()
        cert, key = make_cert(self.top)
        h = subprocess.run([os.path.join(self.build, "moat"), "passwd"], input=OUT_PASS + "\n",
                           capture_output=True, text=True, check=True).stdout.strip()
        users = os.path.join(self.dir, "users")
        with open(users, "w") as f:
            f.write("%s:%s\n" % (OUT_USER, h))
        self.conf = os.path.join(self.dir, "moat.conf")
        with open(self.conf, "w") as f:
            f.write("hostname smarthost.bench.test\ndomain smarthost.bench.test\n"
                    "listen 127.0.0.1:%d role=submission tls=starttls\n"
                    "tls-cert %s\ntls-key %s\nusers %s\nqueue %s/queue\n"
                    "queue-max-bytes 64G\nqueue-max-messages 10000000\nqueue-client-share 100\n"
                    "max-connections-per-client 4000\nmax-messages-per-connection 1000000\n"
                    "delivery off\n" % (self.port, cert, key, users, self.dir))
        self.logf = os.path.join(self.dir, "moat.log")
        with open(self.logf, "wb") as lf:
            self.proc = subprocess.Popen([os.path.join(self.build, "moat"), "serve", "-c", self.conf],
                                         stdin=subprocess.DEVNULL, stdout=lf, stderr=lf)
        if not wait_220(self.port):
            raise RuntimeError("smarthost moat did not answer on %d (see %s)" % (self.port, self.dir))
        self.events = LogCount(self.logf, [b"event=connect ", b"event=tls ", b"event=auth ",
                                           b"event=accept "])

    def received(self):
        return self.events.update()[b"event=accept "]

    def counters(self):
        n = self.events.update()
        return {"sess": n[b"event=connect "], "tls": n[b"event=tls "], "auth": n[b"event=auth "],
                "mesg": moat_queue_count(self.build, self.conf)}

    def stop(self):
        self.stop_proc(15)


class MoatOut(Server):
    """moat as the sender: relays for 127.0.0.0/8, to a route or a smarthost."""
    name = "moat"

    def __init__(self, top, build, hop, conc=None, extra=""):
        Server.__init__(self, top, build)
        self.dir = os.path.join(top, "moat-out")
        self.hop, self.conc, self.extra = hop, conc, extra

    def write_conf(self, delivery):
        self.conf = os.path.join(self.dir, "moat.conf")
        with open(self.conf, "w") as f:
            f.write("hostname %s\nlisten 127.0.0.1:%d\nrelay-network 127.0.0.0/8\n"
                    "queue %s/queue\nqueue-max-bytes 64G\nqueue-max-messages 10000000\n"
                    "queue-client-share 100\nmax-connections-per-client 4000\n"
                    "max-messages-per-connection 1000000\ndelivery %s\n%s%s%s" % (
                        OUT_SENDER_HOST, self.port, self.dir, delivery, self.hop,
                        "destination-concurrency %d\n" % self.conc if self.conc else "",
                        self.extra))

    def start(self, delivery="off"):
        self.write_conf(delivery)
        self.logf = os.path.join(self.dir, "moat.log")
        with open(self.logf, "ab") as lf:
            self.proc = subprocess.Popen(
                [os.path.join(self.build, "moat"), "serve", "-c", self.conf],
                stdin=subprocess.DEVNULL, stdout=lf, stderr=lf)
        self.root = self.proc.pid

    def release(self):
        """Delivery on: stopped (not timed), then started again; returns the
        time the clock starts."""
        self.stop_proc()
        t0 = time.monotonic()
        self.start("on")
        return t0

    def count(self):
        return moat_queue_count(self.build, self.conf)

    def held(self, n):
        return self.count() == n

    def stop(self):
        self.stop_proc()


POSTFIX_OUT_MAIN = """\
# A private instance for make bench: never the system's /etc/postfix.
compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix-out.client.test
mydomain = client.test
myorigin = client.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains =
smtpd_relay_restrictions = permit_mynetworks, reject
# Everything goes to the next hop; held until the release.
relayhost = [127.0.0.1]:{hop}
defer_transports = smtp
in_flow_delay = 0s
smtpd_peername_lookup = no
maillog_file = {dir}/maillog
maillog_file_prefixes = {dir}
alias_maps =
alias_database =
biff = no
"""

POSTFIX_OUT_TLS = """\
smtp_tls_security_level = encrypt
smtp_sasl_auth_enable = yes
smtp_sasl_password_maps = static:{user}:{password}
smtp_sasl_security_options = noanonymous
smtp_tls_session_cache_database = btree:${{data_directory}}/smtp_scache
"""


class PostfixOut(Postfix):
    """Postfix as the sender: relayhost, smtp deferred until the release."""

    def __init__(self, top, build, hop_port, tls, reuse=False):
        Postfix.__init__(self, top, build)
        self.dir = os.path.join(top, "postfix-out")
        self.hop_port, self.tls, self.reuse = hop_port, tls, reuse

    def main_cf(self):
        s = POSTFIX_OUT_MAIN.format(dir=self.dir, hop=self.hop_port)
        if self.tls:
            s += POSTFIX_OUT_TLS.format(user=OUT_USER, password=OUT_PASS)
        if self.reuse:
            # Not a default: TLS connections are cached only through
            # tlsproxy when this is set (Postfix 3.4 and later).
            s += "smtp_tls_connection_reuse = yes\n"
        return s

    def held(self, n):
        """All n in deferred/: the queue manager has put them aside."""
        q = os.path.join(self.dir, "queue")
        return (count_files(os.path.join(q, "deferred")) == n and
                sum(count_files(os.path.join(q, s)) for s in ("incoming", "active", "maildrop")) == 0)

    def release(self):
        t0 = time.monotonic()
        for cmd in (["postconf", "-c", self.etc, "-e", "defer_transports="],
                    ["postfix", "-c", self.etc, "reload"],
                    ["postqueue", "-c", self.etc, "-f"]):
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError("%s: %s" % (" ".join(cmd), r.stderr.strip()))
        return t0


def wait_until(pred, timeout, interval=0.2):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(interval)
    return pred()


def one_drain(srv, hop, n, size=10240):
    """Queue n held messages in srv, release them toward hop; a result."""
    r = {"system": srv.name, "n": n, "size": size}
    problems = []
    srv.up()
    wall, rc, msg = smtp_source(srv.port, 20, size, n, rcpt="rcpt@" + DOMAIN,
                                timeout=max(300, n // 20))
    if rc != 0 or msg:
        problems.append("fill: smtp-source exit %d %s" % (rc, msg.splitlines()[-1][:100] if msg else ""))
    if not wait_until(lambda: srv.held(n), 300):
        problems.append("fill: %d queued, not %d held" % (srv.count(), n))
    r["fill_rate"] = n / wall if wall > 0 else 0
    base = hop.settle(2.0)
    cpu0 = tree_cpu_ticks(srv.root) if srv.name == "postfix" else 0
    t0 = srv.release()
    deadline = t0 + max(120, n / 10)
    empty, last_q = False, 0.0
    while time.monotonic() < deadline:
        now = time.monotonic()
        if hop.received() - base["mesg"] >= n or now - last_q >= 2.0:
            last_q = now
            try:
                empty = srv.count() == 0
            except RuntimeError:
                empty = False  # moat still starting: its queue not yet there
            if empty:
                break
        time.sleep(0.05)
    t1 = time.monotonic()
    r["cpu_per_1000"] = (tree_cpu_ticks(srv.root) - cpu0) / CLK_TCK / n * 1000
    if not empty:
        problems.append("queue not empty after %.0f s (%d left)" % (t1 - t0, srv.count()))
    srv.stop()  # closes the connections it kept: the receiver counts them
    got = hop.settle()
    r["seconds"] = t1 - t0
    r["rate"] = n / r["seconds"]
    r["received"] = got["mesg"] - base["mesg"]
    r["conns"] = got["sess"] - base["sess"]
    r["conns_per_1000"] = r["conns"] * 1000.0 / n
    for k in ("tls", "auth"):
        if k in got:
            r[k] = got[k] - base[k]
    if r["received"] != n:
        problems.append("released %d, next hop received %d" % (n, r["received"]))
    r["valid"] = not problems
    r["problems"] = problems
    return r


def outbound_drains(build, top, n, reps):
    """Every drain; a list of results (with "hop", "label" and "rep").  The
    drains toward smtp-sink last seconds: they run reps times, the systems
    in a rotating order; those toward the smarthost, over a minute: once."""
    results = []
    for hopname in ("sink", "smarthost"):
        runs = [("default", "moat", None), ("default", "postfix", None), ("same", "moat", 20)]
        if hopname == "smarthost":
            runs.append(("reuse", "postfix", None))
        order = []
        for k in range(reps if hopname == "sink" else 1):
            order += [(k,) + x for x in runs[k % len(runs):] + runs[:k % len(runs)]]
        for rep, label, sysname, conc in order:
            hop = Sink(top) if hopname == "sink" else Smarthost(top, build)
            hop.start()
            try:
                if sysname == "moat":
                    if hopname == "sink":
                        nh = "route %s [127.0.0.1]:%d\n" % (DOMAIN, hop.port)
                    else:
                        authf = os.path.join(top, "smarthost-auth")
                        with open(authf, "w") as f:
                            f.write("%s:%s\n" % (OUT_USER, OUT_PASS))
                        nh = "smarthost [127.0.0.1]:%d tls require auth %s\n" % (hop.port, authf)
                    srv = MoatOut(top, build, nh, conc)
                else:
                    srv = PostfixOut(top, build, hop.port, hopname == "smarthost", label == "reuse")
                try:
                    r = one_drain(srv, hop, n)
                finally:
                    srv.stop()
            finally:
                hop.stop()
            r.update({"hop": hopname, "label": label, "rep": rep,
                      "conc": conc or (5 if sysname == "moat" else 20)})
            results.append(r)
            log("  out %-9s %-7s %-7s c=%-2d %6d msgs %7.2f s %8.1f msg/s  %5.1f conns/1k%s%s" % (
                hopname, sysname, label, r["conc"], n, r.get("seconds", 0), r.get("rate", 0),
                r.get("conns_per_1000", 0),
                "  tls %d auth %d" % (r.get("tls", 0), r.get("auth", 0)) if "tls" in r else "",
                "" if r["valid"] else "  INVALID: " + "; ".join(r["problems"])))
    return results


def timed_listen(srv, delivery):
    """Start srv; seconds until its first 220."""
    t0 = time.monotonic()
    srv.start(delivery)
    end = t0 + 60
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
                if s.recv(512).startswith(b"220"):
                    t = time.monotonic() - t0
                    s.sendall(b"QUIT\r\n")
                    return t
        except OSError:
            time.sleep(0.002)
    raise RuntimeError("moat did not listen within 60 s")


def live_run(srv, sink, m):
    """m messages (1 KB) for live.test: acceptance and delivery rates."""
    base = sink.received()
    t0 = time.monotonic()
    wall, rc, msg = smtp_source(srv.port, 20, 1024, m, rcpt="rcpt@live.test", persistent=True)
    ok = rc == 0 and not msg
    first = [None]

    def done():
        got = sink.received() - base
        if got and first[0] is None:
            first[0] = time.monotonic() - t0
        return got >= m
    # The first delivery may come long after the last acceptance (mail
    # waiting behind other mail): its time is part of the figure.
    delivered = wait_until(done, max(300, m / 20), 0.05)
    t1 = time.monotonic()
    got = sink.received() - base
    return {"accept_rate": m / wall, "deliver_rate": m / (t1 - t0), "received": got,
            "first_s": first[0] if first[0] is not None else (t1 - t0),
            "valid": ok and delivered and got == m,
            "problems": ([] if ok else ["smtp-source exit %d %s" % (rc, msg[-100:])]) +
                        ([] if got == m else ["sent %d, sink received %d" % (m, got)])}


def dead_cell(build, top, dead, m):
    """moat with `dead` messages waiting for a destination that refuses."""
    sink = Sink(top, "sink-live")
    sink.start()
    deadport = free_port()  # nothing listens there
    routes = "route dead.test [127.0.0.1]:%d\nroute live.test [127.0.0.1]:%d\n" % (deadport, sink.port)
    srv = MoatOut(top, build, routes)
    res = {"dead": dead, "m": m}
    try:
        srv.fresh()
        timed_listen(srv, "on")
        res["empty"] = live_run(srv, sink, m)
        log("  dead-cell: empty queue: accept %.0f msg/s, deliver %.0f msg/s" % (
            res["empty"]["accept_rate"], res["empty"]["deliver_rate"]))
        wait_until(lambda: srv.count() == 0, 60)
        srv.stop_proc()
        timed_listen(srv, "off")
        wall, rc, msg = smtp_source(srv.port, 20, 1024, dead, rcpt="rcpt@dead.test", persistent=True,
                                    timeout=max(600, dead // 200))
        res["fill_rate"] = dead / wall
        res["fill_ok"] = rc == 0 and not msg
        queued = srv.count()
        log("  dead-cell: %d queued for dead.test at %.0f msg/s%s" % (
            queued, res["fill_rate"], "" if res["fill_ok"] else " (smtp-source: %s)" % msg[-100:]))
        t = time.monotonic()
        srv.stop_proc()
        res["stop_s"] = time.monotonic() - t
        deferred = LogCount(srv.logf, [b"status=deferred", b"event=destination "])
        deferred.update()
        base_def = dict(deferred.n)
        t_start = time.monotonic()
        passed = {}

        def watch():
            # When the last of the dead mail was deferred once.
            end = t_start + (600 if dead >= 100000 else 120)
            while time.monotonic() < end and "t" not in passed and "stop" not in passed:
                if deferred.update()[b"status=deferred"] - base_def[b"status=deferred"] >= queued:
                    passed["t"] = time.monotonic() - t_start
                    return
                time.sleep(0.2)
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        res["listen_s"] = timed_listen(srv, "on")
        times = []
        for _ in range(3):
            t = time.monotonic()
            srv.count()
            times.append(time.monotonic() - t)
        res["count_s"] = statistics.median(times)
        res["queued"] = queued
        res["full"] = live_run(srv, sink, m)
        res["deferred_during"] = deferred.n[b"status=deferred"] - base_def[b"status=deferred"]
        log("  dead-cell: %d waiting: listen %.3f s, queue count %.3f s, accept %.0f msg/s, "
            "deliver %.0f msg/s, %d deferred meanwhile" % (
                queued, res["listen_s"], res["count_s"], res["full"]["accept_rate"],
                res["full"]["deliver_rate"], res["deferred_during"]))
        # The pass over the dead mail: how long until each was tried once.
        watcher.join()
        n = deferred.n
        res["pass_deferred"] = n[b"status=deferred"] - base_def[b"status=deferred"]
        res["pass_s"] = passed.get("t", time.monotonic() - t_start)
        res["destination_events"] = n[b"event=destination "] - base_def[b"event=destination "]
        res["left"] = srv.count()
        log("  dead-cell: %d deferred %.1f s after the restart (%d destination events); %d queued" % (
            res["pass_deferred"], res["pass_s"], res["destination_events"], res["left"]))
    finally:
        srv.stop()
        sink.stop()
    return res


def outbound_lines(results, dead, n, scaled, reps):
    """The outbound table and its targets, as lines of text."""
    out = ["outbound: %d messages of 10K, one recipient each, queued with delivery held, then released;"
           "\nmsg/s = %d / seconds from the release to an empty queue (moat's start, Postfix's reload"
           " and flush included);\nconns/1k counted at the next hop; toward smtp-sink the median of "
           "%d run(s) (min-max), toward the smarthost one run" % (n, n, reps), ""]
    hdr = "%-20s %-16s %-13s %-19s %-8s %-9s %-9s %-13s| %s" % (
        "next hop", "concurrency", "system", "msg/s (min-max)", "seconds", "conns/1k", "CPU s/1k",
        "tls/auth", "moat/postfix")
    out += [hdr, "-" * len(hdr)]
    hops = {"sink": "smtp-sink (plain)", "smarthost": "STARTTLS+AUTH moat"}

    def get(hop, label, system):
        """The run of median rate among the valid ones (with the range of
        rates), else an invalid one, else None."""
        rs = [r for r in results if r["hop"] == hop and r["label"] == label and r["system"] == system]
        ok = sorted((r for r in rs if r["valid"]), key=lambda r: r["rate"])
        if not ok:
            return rs[0] if rs else None
        med = dict(ok[(len(ok) - 1) // 2])
        med["runs"], med["lo"], med["hi"] = len(ok), ok[0]["rate"], ok[-1]["rate"]
        return med

    for hop in ("sink", "smarthost"):
        pf = get(hop, "default", "postfix")
        pr = get(hop, "reuse", "postfix")
        for label, text in (("default", "defaults"), ("same", "same (20)"), ("reuse", "20, TLS reuse")):
            for system in ("moat", "postfix"):
                if label == "reuse":
                    r = pr if system == "postfix" else None
                else:
                    r = get(hop, label, system) if system == "moat" else pf
                if r is None:
                    continue
                rat = ""
                if system == "moat" and pf and r["valid"] and pf["valid"]:
                    rat = "%.2fx" % (r["rate"] / pf["rate"])
                    if pr and pr["valid"]:
                        rat += " (%.2fx TLS reuse)" % (r["rate"] / pr["rate"])
                out.append("%-20s %-16s %-13s %-19s %-8s %-9s %-9s %-13s| %s" % (
                    hops[hop], text, "%s (%d)" % (system, r["conc"]),
                    ("%.0f" % r["rate"] + (" (%.0f-%.0f)" % (r["lo"], r["hi"]) if r.get("runs", 1) > 1
                                           else "")) if r["valid"] else "INVALID",
                    "%.2f" % r["seconds"],
                    "%.1f" % r["conns_per_1000"], "%.3f" % r["cpu_per_1000"],
                    "%d/%d" % (r["tls"], r["auth"]) if "tls" in r else "-", rat))
        out.append("")
    out.append("(Postfix runs once per next hop, at its default 20: the same figure in both rows; "
               "'20, TLS reuse': Postfix\nwith smtp_tls_connection_reuse = yes, not a default. "
               "CPU s/1k: the sender's processes, moat's whole run from its start.)")
    out.append("")
    if dead:
        d = dead
        out.append("dead destination: %d messages (1 KB) queued for a route to a port where nothing "
                   "listens, delivery on, retry defaults%s" % (
                       d["queued"], " (scaled down from 300,000)" if scaled else ""))
        out.append("  fill, delivery off, smtp-source -d c=20:   %.0f msg/s" % d["fill_rate"])
        out.append("  restart to listening:                       %.3f s (stop took %.2f s)" % (
            d["listen_s"], d["stop_s"]))
        out.append("  moat queue count:                           %.3f s" % d["count_s"])
        for key, text in (("empty", "empty queue"), ("full", "%d waiting" % d["queued"])):
            x = d[key]
            out.append("  %-16s %d msgs for live.test: accept %.0f msg/s, delivered to smtp-sink "
                       "%.0f msg/s, the first after %.1f s%s" % (
                           text + ":", d["m"], x["accept_rate"], x["deliver_rate"], x["first_s"],
                           "" if x["valid"] else "  INVALID: " + "; ".join(x["problems"])))
        out.append("  the dead pass: %d of %d deferred %.1f s after the start (%d by the end of the "
                   "live run), %d destination events" % (
                       d["pass_deferred"], d["queued"], d["pass_s"], d["deferred_during"],
                       d["destination_events"]))
        out.append("")
    out.append("targets (issue 14):")
    for hop, want, what in (("sink", 2.0, "plain: moat >= 2x Postfix"),
                            ("smarthost", 3.0, "STARTTLS+AUTH: moat >= 3x Postfix")):
        pf = get(hop, "default", "postfix")
        for label in ("default", "same"):
            r = get(hop, label, "moat")
            if not (r and pf and r["valid"] and pf["valid"]):
                continue
            x = r["rate"] / pf["rate"]
            out.append("  %-50s %s: %.2fx" % ("%s (%s)" % (what, "defaults" if label == "default"
                                                           else "both 20"),
                                              "met" if x >= want else "NOT met", x))
    for r in (get(h, lb, sy) for h, lb, sy in (
            ("sink", "default", "moat"), ("sink", "default", "postfix"), ("sink", "same", "moat"),
            ("smarthost", "default", "moat"), ("smarthost", "default", "postfix"),
            ("smarthost", "same", "moat"), ("smarthost", "reuse", "postfix"))):
        if r is None or not r["valid"]:
            continue
        out.append("  %-50s %s: %.1f" % (
            "conns/1000 <= 20: %s (%d%s), %s" % (r["system"], r["conc"],
                                                 ", TLS reuse" if r["label"] == "reuse" else "",
                                                 hops[r["hop"]]),
            "met" if r["conns_per_1000"] <= 20 else "NOT met", r["conns_per_1000"]))
    return out


def outbound(build, top, quick, n=None, dead=None, reps=None):
    """The outbound section: (lines, json part, number of invalid runs).

    Each drain: a fresh next hop, a fresh sender; the sender queues N
    messages (10 KB, one recipient each, smtp-source at concurrency 20, one
    message per connection) with delivery held, the bench waits until all N
    are queued (Postfix: all N in deferred/), then releases them:

      moat     the held instance is stopped (SIGTERM, not timed), its config
               rewritten from `delivery off` to `delivery on`, and the clock
               starts as `moat serve` is started again: the figure includes
               moat's start (roles, queue opened, the queue scan) and every
               message's delivery and removal.
      postfix  the clock starts at `postconf -e defer_transports=`; it
               includes `postfix reload`, `postqueue -f` and every message's
               delivery and removal.

    The clock stops when the queue is empty (moat: `moat queue count` says
    messages 0; Postfix: no file left under incoming, active, deferred, hold
    or maildrop), polled every 0.05 s once the next hop has counted N (every
    2 s before).  msg/s = N / that time.  The run counts only if the next
    hop received exactly N messages and the queue emptied in time; else it
    is INVALID.

    Next hops, on 127.0.0.1:
      smtp-sink  Postfix's test server, plain SMTP, stores nothing: the
                 receiver is not the bottleneck.  Its -c counters (sessions
                 ended, messages) are what it received.
      smarthost  a second moat: a submission listener with STARTTLS (an
                 openssl self-signed P-256 certificate) and AUTH (a users file
                 made with `moat passwd`), delivery off: it only stores.
                 moat sends to it with `smarthost [127.0.0.1]:PORT tls require
                 auth FILE`, Postfix with relayhost, smtp_tls_security_level
                 encrypt, SASL (static map, libsasl2-modules' PLAIN/LOGIN) and
                 its TLS session cache (tlsmgr, btree smtp_scache).  What it
                 received: its queue count; its connections, TLS handshakes
                 and AUTHs: the event=connect, event=tls, event=auth lines
                 of its log.

    Connections per 1000 messages are counted at the receiver (not with
    /proc/net/snmp's ActiveOpens: other work on a shared machine opens TCP
    connections too): smtp-sink's sessions, the smarthost's event=connect,
    read after the sender was stopped (which closes the connections it
    kept), less the bench's own probe for the greeting.

    Concurrency: each system at its default (moat destination-concurrency 5,
    Postfix default_destination_concurrency_limit 20), and moat again with
    destination-concurrency 20; Postfix's one run per next hop is its
    figure for both rows (its default is 20).  Toward the smarthost Postfix
    runs once more with smtp_tls_connection_reuse = yes (not a default:
    without it Postfix caches no TLS connection, so each message costs a
    connection, a handshake, resumed from its session cache, and an AUTH),
    printed for comparison; the targets use its defaults.  CPU s/1k: the
    sender's processes (/proc/PID/stat, children included) over the drain,
    for moat its whole run from the start.

    N is 10,000 (--quick 2,000; --out-n).  The drains toward smtp-sink
    last seconds, and a shared machine's load moves them: each runs 3 times
    (--quick once; --out-reps), the systems in a rotating order, and the
    table gives the run of median rate with the range; those toward the
    smarthost last over a minute and run once.

    The dead-destination cell: one moat, routes dead.test -> 127.0.0.1:PORT
    where nothing listens and live.test -> an smtp-sink, retry defaults.
    First, with an empty queue, a baseline: M messages (1 KB) for live.test
    by smtp-source -d (persistent sessions) at concurrency 20: acceptance =
    M / smtp-source's time, delivery = M / time from its start until the sink
    counted M.  Then with delivery off DEAD messages for dead.test are queued
    at full speed (same load), moat restarts with delivery on (restart to
    the first 220 timed), `moat queue count` is timed, and the same M
    messages are measured again while the DEAD wait (and moat goes through
    them once: deferred at once while the destination is down).  DEAD is
    300,000 (--quick 30,000; --dead), M 20,000 (--quick 5,000).  The dead
    pass: seconds from the restart until every one of the DEAD was logged
    deferred once (status=deferred lines of moat's log), at most 600 s.
    """
    n = n or (2000 if quick else 10000)
    dead = (30000 if quick else 300000) if dead is None else dead
    log("bench: outbound, %d messages per drain; dead-destination cell %d" % (n, dead))
    reps = reps or (1 if quick else 3)
    results = outbound_drains(build, top, n, reps)
    dres = dead_cell(build, top, dead, 5000 if quick else 20000) if dead else None
    invalid = [r for r in results if not r["valid"]]
    if dres:
        invalid += [x for x in (dres["empty"], dres["full"]) if not x["valid"]]
    lines = outbound_lines(results, dres, n, dead != 300000, reps)
    if invalid:
        lines.append("")
        lines.append("%d INVALID outbound run(s):" % len(invalid))
        for r in invalid:
            lines.append("  %s: %s" % (r.get("system", "dead-cell"), "; ".join(r["problems"])))
    return lines, {"drains": results, "dead": dres, "n": n}, len(invalid)


# ---- main ----

def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.environ.get("BUILD", "build"))
    ap.add_argument("--quick", action="store_true", help="concurrency 1 and 100, 10 KB, one run each")
    ap.add_argument("--systems", default="moat,postfix,opensmtpd")
    ap.add_argument("--target", type=float, default=None, help="seconds per run (default 3, quick 2)")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--keep", action="store_true", help="keep build/bench/run (queues, logs)")
    ap.add_argument("--conc", default=None, help="concurrencies, e.g. 1,100")
    ap.add_argument("--sizes", default=None, help="message sizes in bytes, e.g. 10240")
    ap.add_argument("--section", default="all", choices=("all", "inbound", "outbound"),
                    help="inbound: acceptance; outbound: delivery (drains, dead destination)")
    ap.add_argument("--out-n", type=int, default=None,
                    help="messages per outbound drain (default 10000, quick 2000)")
    ap.add_argument("--out-reps", type=int, default=None,
                    help="runs of each drain toward smtp-sink (default 3, quick 1)")
    ap.add_argument("--dead", type=int, default=None,
                    help="messages waiting in the dead-destination cell (default 300000, "
                         "quick 30000; 0: no such cell)")
    ARGS = ap.parse_args()
    inbound_on = ARGS.section in ("all", "inbound")
    outbound_on = ARGS.section in ("all", "outbound")
    build = os.path.abspath(ARGS.build)
    if ARGS.quick:
        concs, sizes, reps, target = [1, 100], [10240], 1, 2.0
    else:
        concs, sizes, reps, target = [1, 20, 100], [1024, 10240, 102400], 3, 3.0
    reps = ARGS.reps or reps
    if ARGS.conc:
        concs = [int(x) for x in ARGS.conc.split(",")]
    if ARGS.sizes:
        sizes = [int(x) for x in ARGS.sizes.split(",")]
    target = ARGS.target or target
    cells = [(c, s) for c in concs for s in sizes]
    systems = ARGS.systems.split(",")
    top = os.path.join(build, "bench", "run")
    os.makedirs(top, exist_ok=True)
    classes = {"moat": Moat, "postfix": Postfix, "opensmtpd": OpenSMTPD}
    servers = [classes[s](top, build) for s in systems]
    # DKIM signing on: the c=100 10 KB cell only, beside plain moat.
    dkim_cell = (100, 10240)
    dkim = MoatDkim(top, build) if "moat" in systems and dkim_cell in cells else None
    if dkim is not None:
        systems = systems[:systems.index("moat") + 1] + ["moat-dkim"] + \
            systems[systems.index("moat") + 1:]

    t_start = time.monotonic()
    info = {"machine": machine(), "versions": versions(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "reps": reps, "target_s": target}
    log("bench: %s; %d CPUs, kernel %s, queues on %s" % (
        info["date"], info["machine"]["cpus"], info["machine"]["kernel"], info["machine"].get("fs")))
    log("bench: moat %s, postfix %s, opensmtpd %s; %d run(s) per cell, ~%.0f s each" % (
        info["versions"]["moat"], info["versions"]["postfix"], info["versions"]["opensmtpd"],
        reps, target))
    runs, commit, idle, persistent_lines = [], {}, None, []
    out_lines, out_json, out_invalid = [], None, 0
    try:
        for conc, size in (cells if inbound_on else []):
            cell_servers = servers + ([dkim] if dkim is not None and (conc, size) == dkim_cell
                                      else [])
            for srv in cell_servers:
                srv.up()
            try:
                # Pilot: warms the server up and sizes the runs.
                nmsgs = {}
                for srv in cell_servers:
                    pilot = max(50, 2 * conc + 50)
                    r = one_run(srv, conc, size, pilot)
                    if not r["valid"]:
                        log("  pilot %s c=%d %s: INVALID: %s" % (srv.name, conc, size_text(size),
                                                                 "; ".join(r["problems"])))
                    nmsgs[srv.name] = max(2 * conc, min(200000, int(r["rate"] * target)))
                for rep in range(reps):
                    order = (cell_servers[rep % len(cell_servers):] +
                             cell_servers[:rep % len(cell_servers)])
                    for srv in order:
                        r = one_run(srv, conc, size, nmsgs[srv.name])
                        r["rep"] = rep
                        runs.append(r)
                        log("  c=%-3d %-4s %-9s %6d msgs %6.2f s %8.1f msg/s  cpu %.3f s/1k  "
                            "pss %.1f MB%s" % (conc, size_text(size), srv.name, r["sent"], r["wall"],
                                               r["rate"], r["cpu_per_1000"], r["peak_pss_kb"] / 1024,
                                               "" if r["valid"] else "  INVALID: " + "; ".join(r["problems"])))
            finally:
                for srv in cell_servers:
                    srv.stop()
                    if srv.name == "moat":
                        st = srv.commit_stats()
                        if st:
                            commit[(conc, size)] = st
        if inbound_on and "moat" in systems and (100, 10240) in cells:
            pruns, persistent_lines = persistent_cell(servers, top, build, ARGS.quick, reps)
            runs += [dict(r, cell="persistent") for r in pruns]
        if inbound_on and "moat" in systems:
            idle = idle_connections(build, top)
        if outbound_on:
            out_lines, out_json, out_invalid = outbound(build, top, ARGS.quick, ARGS.out_n, ARGS.dead,
                                                        ARGS.out_reps)
    finally:
        for srv in servers + ([dkim] if dkim is not None else []):
            srv.stop()
        if not ARGS.keep:
            shutil.rmtree(top, ignore_errors=True)  # the queues: up to GBs

    lines, medians = summarise(runs, systems, cells)
    out = []
    out.append("moat bench, %s: %d CPUs, kernel %s, queues on %s" % (
        info["date"], info["machine"]["cpus"], info["machine"]["kernel"], info["machine"].get("fs")))
    if inbound_on:
        out.append("moat %s, Postfix %s, OpenSMTPD %s; smtp-source, one message per connection; "
                   "median of %d run(s) per cell (min-max)" % (
                       info["versions"]["moat"], info["versions"]["postfix"],
                       info["versions"]["opensmtpd"], reps))
    else:
        out.append("moat %s, Postfix %s; outbound only" % (info["versions"]["moat"],
                                                           info["versions"]["postfix"]))
    bs, invalid = None, []
    if inbound_on:
        out.append("")
        out += lines
        if dkim is not None:
            a, b = medians.get(("moat-dkim",) + dkim_cell), medians.get(("moat",) + dkim_cell)
            if a and b and a["rate"] and b["rate"]:
                out.append("DKIM signing on (RSA-2048), c=100 10K: %.0f msg/s signed beside %.0f "
                           "unsigned (%.0f%%); CPU %.3f beside %.3f s per 1000 messages" % (
                               a["rate"][0], b["rate"][0], 100.0 * a["rate"][0] / b["rate"][0],
                               a["cpu"][0], b["cpu"][0]))
            else:
                out.append("DKIM signing on (RSA-2048), c=100 10K: no valid run")
            out.append("")
        if persistent_lines:
            out += persistent_lines
            out.append("")
        if commit:
            out.append("moat group commit (whole cell, pilot included): messages per LMDB commit (fsync)")
            out.append("  " + "  ".join("c=%d/%s: %.1f" % (c, size_text(s), m / k if k else 0)
                                        for (c, s), (k, m) in sorted(commit.items())))
            out.append("")
        if idle:
            out.append("moat, %d idle connections (after EHLO): RSS %d -> %d KB, %.1f KB per connection" % (
                idle["connections"], idle["rss_before_kb"], idle["rss_after_kb"], idle["per_conn_kb"]))
        bs = binary_sizes(build)
        out.append("moat binary: %d bytes (%s stripped)" % (
            bs["file"], "%d bytes" % bs["stripped"] if bs["stripped"] else "n/a"))
        app = appliance(build)
        out.append("appliance: " + (app if app else "n/a (no image)"))
        invalid = [r for r in runs if not r["valid"]]
        out.append("")
        out.append("targets (issue 9):")
        def med(name, c, s):
            m = medians.get((name, c, s))
            return m["rate"][0] if m and m["rate"] else None
        if "postfix" in systems:
            for c, s, want, what in ((100, 10240, 3.0, "c=100 10K: moat >= 3x Postfix"),
                                     (1, None, 1.0, "c=1: moat not slower than Postfix")):
                for size in ([s] if s else sizes):
                    a, b = med("moat", c, size), med("postfix", c, size)
                    if a is None or b is None:
                        continue
                    out.append("  %-42s %s: %.2fx" % (what + ("" if s else " (%s)" % size_text(size)),
                                                      "met" if a >= want * b else "NOT met", a / b))
        if idle:
            out.append("  %-42s %s: %.1f KB" % ("< 64 KB RSS per idle connection",
                                                "met" if idle["per_conn_kb"] < 64 else "NOT met",
                                                idle["per_conn_kb"]))
        out.append("  %-42s %s: %d bytes" % ("static binary < 1 MB (stripped)",
                                            "met" if (bs["stripped"] or bs["file"]) < 1 << 20 else "NOT met",
                                            bs["stripped"] or bs["file"]))
        if invalid:
            out.append("")
            out.append("%d INVALID run(s) left out:" % len(invalid))
            for r in invalid:
                out.append("  %s c=%d %s: %s" % (r["system"], r["conc"], size_text(r["size"]),
                                                 "; ".join(r["problems"])))
    if outbound_on:
        out.append("")
        out += out_lines
    out.append("")
    out.append("bench took %.0f s" % (time.monotonic() - t_start))
    text = "\n".join(out)
    log("")
    log(text)
    with open(os.path.join(build, "bench", "results.txt"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(build, "bench", "results.json"), "w") as f:
        json.dump({"info": info, "runs": runs, "idle": idle, "binary": bs,
                   "commit": {"%d/%d" % k: v for k, v in commit.items()},
                   "outbound": out_json}, f, indent=1)
    return 1 if invalid or out_invalid else 0


if __name__ == "__main__":
    sys.exit(main())
