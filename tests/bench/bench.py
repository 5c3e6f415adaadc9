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
            f.write(POSTFIX_MAIN.format(dir=d, domain=DOMAIN))
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

def smtp_source(port, conc, size, n, timeout):
    cmd = ["smtp-source", "-s", str(conc), "-m", str(n), "-l", str(size),
           "-M", "client.test", "-f", SENDER, "-t", RCPT, "127.0.0.1:%d" % port]
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


def one_run(srv, conc, size, n):
    before = srv.count()
    signed0 = srv.signed() if isinstance(srv, MoatDkim) else 0
    cpu0 = tree_cpu_ticks(srv.root)
    with MemMonitor(srv.root, srv.mapped_queue) as mon:
        wall, rc, msg = smtp_source(srv.port, conc, size, n, timeout=max(120, n / 2))
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
                  and r["size"] == size and r["valid"]]
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
    ARGS = ap.parse_args()
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
    runs, commit = [], {}
    try:
        for conc, size in cells:
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
        idle = idle_connections(build, top) if "moat" in systems else None
    finally:
        for srv in servers + ([dkim] if dkim is not None else []):
            srv.stop()
        if not ARGS.keep:
            shutil.rmtree(top, ignore_errors=True)  # the queues: up to GBs

    lines, medians = summarise(runs, systems, cells)
    out = []
    out.append("moat bench, %s: %d CPUs, kernel %s, queues on %s" % (
        info["date"], info["machine"]["cpus"], info["machine"]["kernel"], info["machine"].get("fs")))
    out.append("moat %s, Postfix %s, OpenSMTPD %s; smtp-source, one message per connection; "
               "median of %d run(s) per cell (min-max)" % (
                   info["versions"]["moat"], info["versions"]["postfix"],
                   info["versions"]["opensmtpd"], reps))
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
    out.append("")
    out.append("bench took %.0f s" % (time.monotonic() - t_start))
    text = "\n".join(out)
    log("")
    log(text)
    with open(os.path.join(build, "bench", "results.txt"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(build, "bench", "results.json"), "w") as f:
        json.dump({"info": info, "runs": runs, "idle": idle, "binary": bs,
                   "commit": {"%d/%d" % k: v for k, v in commit.items()}}, f, indent=1)
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main())
