"""tests/smtp/moatlib.py -- harness for sessions against the real moat binary.

Python 3 standard library only; run with /usr/bin/python3.

    BUILD  build directory (default "build"); temp dirs go under $BUILD/t
    MOAT   the server binary (default $BUILD/moat; run.sh sets it to
           $BUILD/moat-asan for files that say ASAN_OK)

A test file registers cases with @case and ends with main().  Each case
prints "PASS: name" or "FAIL: name" on stdout (the reason on stderr); the
program exits 1 if any case failed.  Nothing here waits without a deadline:
sockets have timeouts, server start and stop are bounded, and every case
runs under an alarm (CASE_SECONDS) so that one stuck case fails alone.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

BUILD = os.environ.get("BUILD", "build")
MOAT = os.environ.get("MOAT", os.path.join(BUILD, "moat"))
HOST = "mx.test"          # hostname in every config
DOMAIN = "example.test"   # our domain in every config
CASE_SECONDS = 60         # backstop for one case
START_SECONDS = 20        # server start (ASan builds start slower)
STOP_SECONDS = 15         # SIGTERM to exit, before SIGKILL
IO_SECONDS = 5.0          # default wait for one reply
QUEUE_ID_RE = re.compile(r"^[0-9a-f]{16}$")
QUEUED_RE = re.compile(r"^250 2\.0\.0 OK: queued as ([0-9a-f]{16})$")
SANITIZER_RE = re.compile(rb"Sanitizer|runtime error:|LeakSanitizer")


class Failure(Exception):
    """A case failed: the message says what was expected and what came."""


def check(cond, what):
    if not cond:
        raise Failure(what)


def eq(got, want, what="value"):
    if got != want:
        raise Failure("%s: want %r, got %r" % (what, want, got))


_ports_given = set()


def free_port(family=socket.AF_INET):
    """A port nothing listens on now (bind port 0, read it, close), never
    one this process was given before: the kernel may hand the same free
    port to two calls in a row, and a config with two listeners on it is
    refused ("duplicate listener")."""
    addr = "127.0.0.1" if family == socket.AF_INET else "::1"
    while True:
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            s.bind((addr, 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if port not in _ports_given:
            _ports_given.add(port)
            return port


def b(x):
    return x.encode("utf-8") if isinstance(x, str) else bytes(x)


# ---------------------------------------------------------------- server

_servers = []


class Server:
    """One `moat serve` in its own temp dir, with its own config and queue.

    conf: directive -> value (str/int) or list of values (one line each);
    None drops a default directive.  Defaults: hostname mx.test, listen on
    127.0.0.1 and [::1] (free ports), domain example.test, queue in the
    temp dir, no relay-network, delivery off.
    """

    def __init__(self, name, conf=None, start=True):
        self.name = name
        os.makedirs(os.path.join(BUILD, "t"), exist_ok=True)
        self.dir = os.path.abspath(tempfile.mkdtemp(
            prefix="smtp-%s-" % name, dir=os.path.join(BUILD, "t")))
        self.port4 = free_port(socket.AF_INET)
        self.port6 = free_port(socket.AF_INET6)
        self.queue_dir = os.path.join(self.dir, "queue")
        self.conf_path = os.path.join(self.dir, "moat.conf")
        self.log_path = os.path.join(self.dir, "stderr.log")
        settings = {
            "hostname": HOST,
            "listen": ["127.0.0.1:%d" % self.port4, "[::1]:%d" % self.port6],
            "domain": DOMAIN,
            "queue": self.queue_dir,
            # Accept and keep: a test that wants delivery says so (and
            # where: no DNS query may leave the machine).
            "delivery": "off",
        }
        settings.update(conf or {})
        lines = ["# written by tests/smtp/moatlib.py for %s" % name]
        for key, val in settings.items():
            if val is None:
                continue
            for v in (val if isinstance(val, list) else [val]):
                lines.append("%s %s" % (key, v))
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None
        self.wrap = []       # a command line put before the server's (it execs it)
        self.problems = []   # unclean exits, sanitizer reports
        _servers.append(self)
        if start:
            try:
                self.start()
            except Failure as e:
                self.problems.append("did not start: %s" % str(e).split("\n")[0])
                raise

    def role_pids(self, role):
        """The pids of the server's role processes (comm "moat-ROLE",
        children of the supervisor started here) running now."""
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
            except OSError:
                continue
            comm = st[st.index("(") + 1:st.rindex(")")]
            ppid = int(st[st.rindex(")") + 2:].split()[1])
            if ppid == self.proc.pid and comm == "moat-" + role:
                out.append(int(d))
        return out

    def role_pid(self, role, timeout=10):
        """The pid of the server's role process, waiting for it up to
        timeout s."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            pids = self.role_pids(role)
            if pids:
                return pids[0]
            time.sleep(0.05)
        raise Failure("no %s role under pid %d" % (role, self.proc.pid))

    def stderr(self, tail=4000):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
        except OSError:
            return "(no stderr log)"
        return data[-tail:].decode("utf-8", "replace")

    def start(self):
        check(os.path.exists(MOAT), "server binary %s does not exist" % MOAT)
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(self.wrap + [MOAT, "serve", "-c", self.conf_path],
                                         stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log)
        except OSError as e:
            raise Failure("cannot run %s: %s" % (MOAT, e))
        finally:
            log.close()
        deadline = time.monotonic() + START_SECONDS
        last = "no attempt"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Failure("server %s exited with %s before greeting; stderr:\n%s"
                              % (self.name, self.proc.returncode, self.stderr()))
            try:
                with socket.create_connection(("127.0.0.1", self.port4), timeout=2) as s:
                    s.settimeout(3)
                    data = s.recv(512)
                    if data.startswith(b"220 "):
                        return self
                    last = "got %r" % data
            except OSError as e:
                last = str(e)
            time.sleep(0.05)
        self.kill()
        raise Failure("server %s gave no 220 within %ds (%s); stderr:\n%s"
                      % (self.name, START_SECONDS, last, self.stderr()))

    def _scan_stderr(self):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
        except OSError:
            return
        if SANITIZER_RE.search(data):
            self.problems.append("sanitizer report in %s" % self.log_path)

    def stop(self):
        """SIGTERM, wait STOP_SECONDS, then SIGKILL.  Returns the exit status."""
        if self.proc is None:
            return None
        p, self.proc = self.proc, None
        if p.poll() is not None:
            self.problems.append("exited (status %s) before SIGTERM" % p.returncode)
        else:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(STOP_SECONDS)
                self.problems.append("no exit within %ds of SIGTERM" % STOP_SECONDS)
                return p.returncode
            if p.returncode != 0:
                self.problems.append("exit status %s after SIGTERM" % p.returncode)
        self._scan_stderr()
        return p.returncode

    def kill(self):
        """SIGKILL (a crash, on purpose); the exit is not a problem."""
        if self.proc is None:
            return
        p, self.proc = self.proc, None
        if p.poll() is None:
            p.kill()
        p.wait(STOP_SECONDS)

    def restart(self):
        self.kill()
        return self.start()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def connect(self, v6=False, greet=True, timeout=IO_SECONDS, source=None):
        c = Client("::1" if v6 else "127.0.0.1", self.port6 if v6 else self.port4,
                   timeout, source)
        if greet:
            eq(c.line(), "220 %s ESMTP moat" % HOST, "greeting")
        return c

    # queue inspection, through the binary's own subcommands
    def moat(self, *args, timeout=30):
        return subprocess.run([MOAT] + list(args), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout)

    def queue_list(self):
        """{id: [recipient addresses]} from `moat queue list`."""
        r = self.moat("queue", "list", "-c", self.conf_path)
        check(r.returncode == 0, "moat queue list: exit %d, stderr %r"
              % (r.returncode, r.stderr[-500:]))
        out, cur = {}, None
        if r.stdout == b"Mail queue is empty\n":
            return out
        for line in r.stdout.decode("utf-8", "replace").splitlines():
            if line.startswith("destination "):
                continue   # the destinations held back, after the list
            if not line.strip():
                continue
            if line[:1].isspace():
                # "  <addr> state ...": the address is the first word
                check(cur is not None, "queue list: recipient line before an ID: %r" % line)
                out[cur].append(line.split()[0].strip("<>"))
                continue
            qid = line.split()[0]
            check(QUEUE_ID_RE.match(qid), "queue list: line does not start with an ID: %r" % line)
            cur = qid
            out[cur] = []
        return out

    def queue_show(self, qid):
        """(exit status, stdout bytes) of `moat queue show ID`."""
        r = self.moat("queue", "show", "-c", self.conf_path, qid)
        return r.returncode, r.stdout

    def queue_body(self, qid):
        """The stored body of qid (after the envelope and its blank line)."""
        rc, out = self.queue_show(qid)
        eq(rc, 0, "moat queue show %s exit status" % qid)
        i = out.find(b"\n\n")
        check(i >= 0, "queue show %s: no blank line after the envelope: %r" % (qid, out[:300]))
        return out[:i], out[i + 2:]

    def queued_message(self, qid):
        """(envelope, message) of qid, the message without the Received:
        header moat prepended, which must come first and carry qid."""
        env, body = self.queue_body(qid)
        check(body.startswith(b"Received:"),
              "stored body of %s does not begin with Received: %r" % (qid, body[:200]))
        i = 0
        while True:   # the header and its continuation lines
            j = body.find(b"\r\n", i)
            check(j >= 0, "unterminated Received: header in %s" % qid)
            i = j + 2
            if body[i:i + 1] not in (b" ", b"\t"):
                break
        check(qid.encode() in body[:i], "Received: header lacks id %s: %r" % (qid, body[:i]))
        return env, body[i:]

    def incoming(self):
        d = os.path.join(self.queue_dir, "incoming")
        try:
            return sorted(os.listdir(d))
        except FileNotFoundError:
            return []


_shared = {}


def shared(name, conf=None):
    """The server called name, started on first use and kept for the file.
    A start failure is raised again to every case that asks."""
    if name not in _shared:
        try:
            _shared[name] = Server(name, conf)
        except Failure as e:
            _shared[name] = e
    s = _shared[name]
    if isinstance(s, Failure):
        raise Failure("server %s did not start: %s" % (name, s))
    return s


# ---------------------------------------------------------------- client

class Client:
    """A raw SMTP client: bytes go out exactly as given; replies are read
    whole (multi-line included) with a deadline."""

    def __init__(self, host, port, timeout=IO_SECONDS, source=None):
        self.timeout = timeout
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if source:   # another loopback address, e.g. 127.0.0.2: another client
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.buf = b""
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        self.sock.sendall(b(data))

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def line(self, timeout=None):
        """One reply line without its CRLF (which must be there)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\n" not in self.buf:
            if self.eof or not self._fill(deadline):
                raise Failure("%s waiting for a reply line; unread: %r"
                              % ("connection closed" if self.eof else "timeout", self.buf[:300]))
        raw, self.buf = self.buf.split(b"\n", 1)
        check(raw.endswith(b"\r"), "reply line not ended by CRLF: %r" % raw)
        return raw[:-1].decode("utf-8", "replace")

    def reply(self, timeout=None):
        """A whole reply: the list of its lines ("250-..." ... "250 ...")."""
        lines = [self.line(timeout)]
        while len(lines[-1]) >= 4 and lines[-1][3] == "-":
            check(len(lines) < 100, "reply of over 100 lines")
            lines.append(self.line(timeout))
        code = lines[0][:3]
        for ln in lines:
            check(re.match(r"^\d{3}[ -]", ln) and ln[:3] == code,
                  "malformed reply line %r in %r" % (ln, lines))
        return lines

    def one(self, timeout=None):
        """A single-line reply, as a string."""
        r = self.reply(timeout)
        check(len(r) == 1, "want a one-line reply, got %r" % r)
        return r[0]

    def cmd(self, line, timeout=None):
        """Send line + CRLF, return the single-line reply."""
        self.send(b(line) + b"\r\n")
        return self.one(timeout)

    def expect(self, line, want, what=None):
        eq(self.cmd(line), want, what or repr(line))

    def raw(self, data, want, what=None):
        """Send data exactly (no CRLF added); the one-line reply must be want."""
        self.send(data)
        eq(self.one(), want, what or repr(data))

    def quiet(self, wait=0.5):
        """Assert no more bytes arrive within wait seconds."""
        if not self.buf and not self.eof:
            self._fill(time.monotonic() + wait)
        check(not self.buf, "unexpected extra bytes from the server: %r" % self.buf[:300])

    def closed(self, timeout=None):
        """Assert the server closes the connection (after any unread bytes)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.eof:
            if not self._fill(deadline) and not self.eof:
                raise Failure("connection still open; unread: %r" % self.buf[:300])
        check(not self.buf, "bytes before close: %r" % self.buf[:300])

    def ehlo(self, name="client.test"):
        self.send("EHLO %s\r\n" % name)
        r = self.reply()
        eq(r[0][:4], "250-", "EHLO reply")
        return r

    def mail_tx(self, sender, rcpts, body, ehlo=True):
        """A whole transaction; body is sent exactly (dot-stuffed by the
        caller) followed by ".\\r\\n".  Returns the final reply line."""
        if ehlo:
            self.ehlo()
        eq(self.cmd("MAIL FROM:<%s>" % sender), "250 2.1.0 Sender OK", "MAIL")
        for r in rcpts:
            eq(self.cmd("RCPT TO:<%s>" % r), "250 2.1.5 Recipient OK", "RCPT %s" % r)
        eq(self.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>", "DATA")
        self.send(b(body) + b".\r\n")
        return self.one(timeout=30)


def queued_id(reply):
    m = QUEUED_RE.match(reply)
    check(m, "want '250 2.0.0 OK: queued as ID', got %r" % reply)
    return m.group(1)


# ---------------------------------------------------------------- cases

_cases = []


def case(fn):
    """Register a case; its name is the function name without "test_"."""
    name = (fn.__name__[5:] if fn.__name__.startswith("test_") else fn.__name__).replace("_", "-")
    _cases.append((name, fn))
    return fn


def add_case(name, fn):
    """Register fn (no arguments) as the case name."""
    _cases.append((name, fn))


class _Alarm(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Alarm("case took over %d s" % CASE_SECONDS)


def report(name, ok, reason=""):
    if ok:
        print("PASS: %s" % name, flush=True)
    else:
        print("FAIL: %s" % name, flush=True)
        # not "FAIL: " at the start: run.sh counts those lines, and shows "error:"
        sys.stderr.write("error: %s: %s\n" % (name, reason))
        sys.stderr.flush()


def main():
    """Run every registered case, stop the servers, report their exits."""
    signal.signal(signal.SIGALRM, _on_alarm)
    failed = 0
    only = set(sys.argv[1:])
    if not os.path.exists(MOAT):
        report("binary-exists", False, "no server binary at %s" % MOAT)
        sys.exit(1)
    for name, fn in _cases:
        if only and name not in only:
            continue
        signal.alarm(CASE_SECONDS)
        try:
            fn()
            ok, reason = True, ""
        except Failure as e:
            ok, reason = False, str(e)
        except Exception as e:  # noqa: a crash of the case is its failure
            ok, reason = False, "%s: %s\n%s" % (type(e).__name__, e, traceback.format_exc())
        finally:
            signal.alarm(0)
        if not ok:
            for s in _servers:
                if s.proc is not None and s.proc.poll() is not None and not s.problems:
                    reason += "\nserver %s died (status %s); stderr:\n%s" % (
                        s.name, s.proc.returncode, s.stderr())
        report(name, ok, reason)
        failed += not ok
    # Every server must leave cleanly on SIGTERM, with no sanitizer report.
    for s in _servers:
        signal.alarm(CASE_SECONDS)
        try:
            s.stop()
        finally:
            signal.alarm(0)
        ok = not s.problems
        report("server-exit-%s" % s.name, ok,
               "; ".join(s.problems) + "\nstderr:\n" + s.stderr())
        failed += not ok
    sys.exit(1 if failed else 0)
