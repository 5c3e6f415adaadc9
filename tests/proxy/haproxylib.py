"""tests/proxy/haproxylib.py -- a real HAProxy (Debian's haproxy package) for
the PROXY protocol tests: started in the foreground with a config written
here, its log in a file, stopped at exit whatever happens, and asked for
its servers' state over its admin socket.  Builds on tests/smtp/moatlib.py;
stdlib only.
"""

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "smtp"))
import moatlib  # noqa: E402
from moatlib import BUILD, Failure, check  # noqa: E402

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
START_SECONDS = 10

_running = []


def _stop_all():
    for h in list(_running):
        h.stop()


atexit.register(_stop_all)


class HAProxy:
    """haproxy -db -f DIR/haproxy.cfg.  cfg is the config without its
    global section, which is written here: an admin socket in DIR (for
    state()) and nothing that needs root or a daemon."""

    def __init__(self, name, cfg):
        check(os.path.exists(HAPROXY), "haproxy is not installed (apt-get install haproxy)")
        os.makedirs(os.path.join(BUILD, "t"), exist_ok=True)
        self.dir = os.path.abspath(tempfile.mkdtemp(prefix="haproxy-%s-" % name,
                                                    dir=os.path.join(BUILD, "t")))
        self.sock = os.path.join(self.dir, "admin.sock")
        self.cfg_path = os.path.join(self.dir, "haproxy.cfg")
        self.log_path = os.path.join(self.dir, "haproxy.log")
        with open(self.cfg_path, "w") as f:
            f.write("global\n    maxconn 1000\n    stats socket %s mode 600 level admin\n\n"
                    % self.sock)
            f.write(cfg)
        r = subprocess.run([HAPROXY, "-c", "-q", "-f", self.cfg_path], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        check(r.returncode == 0, "haproxy -c refuses %s:\n%s" % (self.cfg_path,
                                                                  r.stdout.decode()[-2000:]))
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen([HAPROXY, "-db", "-f", self.cfg_path],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        finally:
            log.close()
        _running.append(self)
        # Ready when the admin socket answers: HAProxy binds every listener
        # before it serves one.  (A connection to a frontend would reach a
        # backend, which the tests count.)
        deadline = time.monotonic() + START_SECONDS
        while True:
            check(self.proc.poll() is None, "haproxy exited (%s):\n%s"
                  % (self.proc.returncode, self.log()))
            try:
                if "Pid:" in self.command("show info", timeout=1):
                    break
            except OSError:
                pass
            check(time.monotonic() < deadline, "haproxy's admin socket does not answer:\n%s"
                  % self.log())
            time.sleep(0.05)

    def log(self, tail=4000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-tail:].decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    def command(self, line, timeout=5):
        """One admin socket command's answer, as text."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(self.sock)
            s.sendall(line.encode() + b"\n")
            out = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                out += d
        finally:
            s.close()
        return out.decode("utf-8", "replace")

    def state(self, backend):
        """{server name: status} of a backend ("UP", "DOWN", "UP 1/2"...),
        from "show stat"."""
        lines = self.command("show stat").splitlines()
        check(lines and lines[0].startswith("# "), "show stat: %r" % lines[:2])
        cols = lines[0][2:].split(",")
        px, sv, st = cols.index("pxname"), cols.index("svname"), cols.index("status")
        out = {}
        for ln in lines[1:]:
            f = ln.split(",")
            if len(f) > st and f[px] == backend and f[sv] not in ("FRONTEND", "BACKEND"):
                out[f[sv]] = f[st]
        return out

    def wait_state(self, backend, server, want, seconds=15):
        """Wait until server's status starts with want ("UP" or "DOWN")."""
        deadline = time.monotonic() + seconds
        last = None
        while time.monotonic() < deadline:
            last = self.state(backend).get(server)
            if last is not None and last.split()[0] == want:
                return
            time.sleep(0.1)
        raise Failure("haproxy: %s/%s is %r, not %s, after %ds; log:\n%s"
                      % (backend, server, last, want, seconds, self.log()))

    def stop(self):
        if self in _running:
            _running.remove(self)
        p = self.proc
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)


__all__ = ["HAProxy", "moatlib"]
