"""tests/tls/tlslib.py -- what the TLS and AUTH tests share: certificates
made with openssl (RSA and ECDSA, self-signed, for mx.test), a users
file, and servers with submission listeners.  Builds on
tests/smtp/moatlib.py; stdlib only.
"""

import base64
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "smtp"))
import moatlib  # noqa: E402
from moatlib import BUILD, MOAT, Failure, check, eq, free_port  # noqa: E402,F401

PASSWORD = "s3cret pass"      # alice's, and every cross-check user's
# Per process: run.sh runs the musl and the ASan runs of a file at once.
CERT_DIR = os.path.abspath(os.path.join(BUILD, "t", "tls-certs-%d" % os.getpid()))


def run(argv, input=None, timeout=60):
    check(shutil.which(argv[0]) or os.path.exists(argv[0]), "%s is not installed" % argv[0])
    return subprocess.run(argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout)


def make_pair(name, kind, cn="mx.test"):
    """(cert path, key path) of a new self-signed pair in CERT_DIR."""
    os.makedirs(CERT_DIR, exist_ok=True)
    crt = os.path.join(CERT_DIR, name + ".crt")
    key = os.path.join(CERT_DIR, name + ".key")
    alg = (["-newkey", "rsa:2048"] if kind == "rsa" else
           ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"])
    r = run(["openssl", "req", "-x509"] + alg + ["-nodes", "-keyout", key, "-out", crt,
            "-subj", "/CN=" + cn, "-days", "2"])
    eq(r.returncode, 0, "openssl req: %s" % r.stderr.decode())
    return crt, key


_pairs = {}


def pair(name, kind="rsa", cn="mx.test"):
    if name not in _pairs:
        _pairs[name] = make_pair(name, kind, cn)
    return _pairs[name]


def der_of(crt):
    with open(crt) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def moat_passwd(password, *args):
    r = run([MOAT, "passwd"] + list(args), input=(password + "\n").encode())
    eq(r.returncode, 0, "moat passwd exit: %s" % r.stderr.decode())
    return r.stdout.decode().strip()


def users_file(path, extra=()):
    """alice (moat passwd, may send as @example.test and alice@example.org),
    bob (no sender list), and extra lines."""
    lines = ["# written by tests/tls/tlslib.py",
             "alice:%s:@example.test,alice@example.org" % moat_passwd(PASSWORD),
             "bob:%s" % moat_passwd(PASSWORD, "-5", "-r", "2000")]
    lines += list(extra)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def server(name, conf=None, kind="rsa", users_extra=()):
    """A moat with mx listeners (STARTTLS) on the default ports, a
    submission STARTTLS listener on 127.0.0.1 (.sub4) and [::1] (.sub6),
    and implicit TLS (.ssl4, .ssl6)."""
    crt, key = pair(kind, kind)
    d = os.path.abspath(os.path.join(BUILD, "t", "tls-%d" % os.getpid()))
    os.makedirs(d, exist_ok=True)
    users = users_file(os.path.join(d, "users-%s" % name), users_extra)
    p4, p6 = free_port(), free_port(socket.AF_INET6)
    sub4, sub6 = free_port(), free_port(socket.AF_INET6)
    ssl4, ssl6 = free_port(), free_port(socket.AF_INET6)
    settings = {
        "listen": ["127.0.0.1:%d tls=starttls" % p4, "[::1]:%d tls=starttls" % p6,
                   "127.0.0.1:%d role=submission tls=starttls" % sub4,
                   "[::1]:%d role=submission tls=starttls" % sub6,
                   "127.0.0.1:%d role=submission tls=implicit" % ssl4,
                   "[::1]:%d role=submission tls=implicit" % ssl6],
        "tls-cert": crt, "tls-key": key, "users": users,
        "auth-fail-delay": 100,
    }
    settings.update(conf or {})
    s = moatlib.Server(name, settings, start=False)
    s.port4, s.port6 = p4, p6   # moatlib checks the greeting on port4
    try:
        s.start()
    except Failure as e:
        s.problems.append("did not start: %s" % str(e).split("\n")[0])
        raise
    s.sub4, s.sub6, s.ssl4, s.ssl6, s.users = sub4, sub6, ssl4, ssl6, users
    return s


_shared = {}


def shared(name, **kw):
    if name not in _shared:
        try:
            _shared[name] = server(name, **kw)
        except Failure as e:
            _shared[name] = e
    s = _shared[name]
    if isinstance(s, Failure):
        raise Failure("server %s did not start: %s" % (name, s))
    return s


def client_ctx():
    """A TLS client context that accepts our self-signed certificate."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def plain(user, password, authzid=""):
    return b64("%s\0%s\0%s" % (authzid, user, password))


class TLSClient(moatlib.Client):
    """moatlib.Client whose socket can be wrapped in TLS mid-session."""

    def starttls(self):
        self.sock = client_ctx().wrap_socket(self.sock, server_hostname="mx.test")
        self.sock.settimeout(self.timeout)

    def _fill(self, deadline):
        try:
            return super()._fill(deadline)
        except ssl.SSLError:
            self.eof = True
            return False


def connect(host, port, greet=True, implicit=False, timeout=moatlib.IO_SECONDS):
    c = TLSClient(host, port, timeout)
    if implicit:
        c.starttls()
    if greet:
        eq(c.line(), "220 mx.test ESMTP moat", "greeting")
    return c


def tls_session(host, port, ehlo="client.test"):
    """Connected, EHLO, STARTTLS done, EHLO again: returns (client, EHLO reply)."""
    c = connect(host, port)
    c.ehlo(ehlo)
    eq(c.cmd("STARTTLS"), "220 2.0.0 Ready to start TLS", "STARTTLS")
    c.starttls()
    return c, c.ehlo(ehlo)


def log_has(s, needle):
    """Has the log needle in it?  "sid=*" in needle stands for any
    session's id (16 hex digits)."""
    rx = re.escape(needle).replace(re.escape("sid=*"), "sid=[0-9a-f]{16}")
    return re.search(rx, s.stderr(tail=200000)) is not None
