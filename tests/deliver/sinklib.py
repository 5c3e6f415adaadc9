"""tests/deliver/sinklib.py -- next hops for delivery tests, all on loopback.

    Sink        a real SMTP server (Debian's python3-aiosmtpd) that keeps
                what it receives and can be told to answer 4xx/5xx: per
                recipient local part, for the first N attempts, at DATA;
                with dsn=True it offers DSN (RFC 3461) and records the
                MAIL and RCPT parameters exactly as they came
    RawServer   a TCP server playing a script of raw bytes: hostile replies
                (over-long lines, NUL, no line end, mixed codes), a server
                that checks PIPELINING, one that never answers
    Dnsmasq     Debian's dnsmasq on a private port with its own records

Everything waits with a deadline; every server is stopped at exit.
"""

import asyncio
import email
import email.policy
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "smtp"))
import moatlib  # noqa: E402
from moatlib import BUILD, Failure, check, free_port  # noqa: E402

from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import SMTP  # noqa: E402

_stoppers = []

# A delivering moat's settings for tests: retries within seconds, relay
# for the test clients on loopback.
FAST = {"retry-min": "1s", "retry-max": "2s", "timeout-reply": "5s", "timeout-connect": "3s",
        "relay-network": "127.0.0.0/8", "delivery": "on"}
SENDER = "alice@sender.test"


def stop_all():
    while _stoppers:
        try:
            _stoppers.pop()()
        except Exception:   # noqa: best effort at exit
            pass


def wait_for(pred, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise Failure("timed out (%ss) waiting for %s" % (seconds, what))


class Message:
    def __init__(self, mail_from, rcpts, data, peer, tls=None, user=None, dsn_mail=None,
                 dsn_rcpt=None):
        self.mail_from = mail_from
        self.rcpts = list(rcpts)
        self.data = data          # bytes as received, unstuffed, CRLF
        self.peer = peer
        self.tls = tls            # the TLS version the session used, or None
        self.user = user          # the AUTH login, or None
        self.dsn_mail = dsn_mail or {}   # {"RET": ..., "ENVID": ...} as sent (dsn sinks)
        self.dsn_rcpt = dsn_rcpt or {}   # {address: {"NOTIFY": ..., "ORCPT": ...}}
        self.at = time.monotonic()  # when DATA ended
        self.session = None       # which connection (1, 2, ...) carried it

    def parsed(self):
        return email.message_from_bytes(self.data, policy=email.policy.compat32)


class _Handler:
    def __init__(self, sink):
        self.sink = sink

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.sink.pipelining:
            responses.insert(-1, "250-PIPELINING")
        if self.sink.dsn:
            responses.insert(-1, "250-DSN")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        s = self.sink
        with s.lock:
            s.rcpt_seen.append(address)
            n = s.rcpt_count.get(address, 0) + 1
            s.rcpt_count[address] = n
        local = address.split("@")[0]
        if local.startswith("perm"):
            return "550 5.1.1 <%s>: no such user here" % address
        if local.startswith("temp") or n <= s.fail_first.get(address, 0):
            return "451 4.3.0 <%s>: try again later" % address
        if s.rcpt_reply:
            return s.rcpt_reply
        envelope.rcpt_tos.append(address)
        if not hasattr(envelope, "dsn_rcpt"):
            envelope.dsn_rcpt = {}
        envelope.dsn_rcpt[address] = getattr(server, "dsn_rcpt_params", {})
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        s = self.sink
        if s.data_delay:
            await asyncio.sleep(s.data_delay)
        if s.data_reply:
            return s.data_reply
        tls = None
        ssl_object = server.transport.get_extra_info("ssl_object") if server.transport else None
        if ssl_object is not None:
            tls = ssl_object.version()
        user = session.auth_data.login.decode() if session.authenticated else None
        m = Message(envelope.mail_from, envelope.rcpt_tos, envelope.content, session.peer,
                    tls, user, getattr(server, "dsn_mail_params", {}),
                    getattr(envelope, "dsn_rcpt", {}))
        m.session = getattr(server, "number", None)
        with s.lock:
            s.messages.append(m)
        return "250 2.0.0 stored"


def _take_params(arg, names):
    """Split the DSN parameters named out of a MAIL/RCPT argument (aiosmtpd
    refuses parameters it does not know, and would upper-case the values):
    the argument without them, and {NAME: value as sent}."""
    words = arg.split(" ")
    kept, taken = words[:1], {}
    for w in words[1:]:
        key = w.split("=", 1)[0].upper()
        if key in names and "=" in w:
            taken[key] = w.split("=", 1)[1]
        else:
            kept.append(w)
    return " ".join(kept), taken


class _CountingSMTP(SMTP):
    """Counts sessions open at once, for concurrency checks; with a DSN
    sink, takes RET/ENVID and NOTIFY/ORCPT off MAIL and RCPT and keeps them."""

    async def smtp_MAIL(self, arg):
        if self.event_handler.sink.dsn and arg:
            arg, self.dsn_mail_params = _take_params(arg, ("RET", "ENVID"))
        return await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg):
        if self.event_handler.sink.dsn and arg:
            arg, self.dsn_rcpt_params = _take_params(arg, ("NOTIFY", "ORCPT"))
        return await super().smtp_RCPT(arg)

    def connection_made(self, transport):
        sink = self.event_handler.sink
        if self.transport is not None:     # STARTTLS: the same connection
            return super().connection_made(transport)
        with sink.lock:
            sink.open_now += 1
            sink.open_max = max(sink.open_max, sink.open_now)
            sink.sessions += 1
            self.number = sink.sessions
        super().connection_made(transport)

    def connection_lost(self, exc):
        sink = self.event_handler.sink
        with sink.lock:
            sink.open_now -= 1
        super().connection_lost(exc)


class _Controller(Controller):
    def factory(self):
        sink = self.handler.sink
        kw = {}
        if sink.starttls is not None:
            kw["tls_context"] = sink.starttls
        if sink.users is not None:
            users = sink.users

            def check(server, session, envelope, mechanism, auth_data):
                from aiosmtpd.smtp import AuthResult
                with sink.lock:
                    sink.auths += 1
                ok = users.get(auth_data.login.decode()) == auth_data.password.decode()
                # handled=False: aiosmtpd itself answers 535 on a failure
                return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)
            kw["authenticator"] = check
            kw["auth_require_tls"] = True
        if sink.idle_timeout is not None:
            kw["timeout"] = sink.idle_timeout
        return _CountingSMTP(self.handler, hostname="sink.test", enable_SMTPUTF8=True, **kw)


class Sink:
    """An aiosmtpd server on host:port (a free port if None)."""

    def __init__(self, host="127.0.0.1", port=None, pipelining=False, starttls=None,
                 smtps=None, users=None, idle_timeout=None, dsn=False):
        self.host = host
        self.port = port or free_port(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.lock = threading.Lock()
        self.messages = []
        self.rcpt_seen = []
        self.rcpt_count = {}
        self.fail_first = {}      # address -> attempts answered 451 first
        self.rcpt_reply = None    # a fixed reply for every RCPT
        self.data_reply = None    # a fixed reply for DATA
        self.data_delay = 0
        self.pipelining = pipelining
        self.starttls = starttls  # an ssl.SSLContext: STARTTLS offered
        self.smtps = smtps        # an ssl.SSLContext: TLS from the first byte
        self.users = users        # {login: password}: AUTH PLAIN/LOGIN after STARTTLS
        self.idle_timeout = idle_timeout  # s: the server closes a quiet connection
        self.dsn = dsn            # offer DSN, record its parameters
        self.open_now = self.open_max = self.sessions = 0
        self.auths = 0            # AUTH commands answered
        self.ctl = None
        self.start()

    def start(self):
        kw = {"ssl_context": self.smtps} if self.smtps is not None else {}
        self.ctl = _Controller(_Handler(self), hostname=self.host, port=self.port,
                               ready_timeout=10, **kw)
        self.ctl.start()
        _stoppers.append(self.stop)
        return self

    def stop(self):
        if self.ctl is not None:
            ctl, self.ctl = self.ctl, None
            ctl.stop()

    def wait_messages(self, n, seconds=20):
        wait_for(lambda: len(self.messages) >= n, seconds,
                 "%d message(s) at the sink on port %d (have %d)" % (n, self.port,
                                                                      len(self.messages)))
        return self.messages


class RawServer:
    """Accepts connections on 127.0.0.1 and runs play(conn, server) for each
    in a thread; conn has a deadline on every read."""

    def __init__(self, play, port=None):
        self.play = play
        self.port = port or free_port()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.running = True
        self.log = []             # what the plays report
        self.errors = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        _stoppers.append(self.stop)

    def _serve(self):
        while self.running:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    def _one(self, c):
        c.settimeout(10)
        try:
            self.play(c, self)
        except Exception as e:   # noqa: a broken play is reported, not raised
            self.errors.append("%s: %s" % (type(e).__name__, e))
        finally:
            try:
                c.close()
            except OSError:
                pass

    def stop(self):
        self.running = False
        try:
            self.sock.close()
        except OSError:
            pass


def read_line(c, buf):
    """One line from socket c (buf: a list holding the bytes read ahead)."""
    while b"\n" not in buf[0]:
        d = c.recv(65536)
        if not d:
            raise EOFError("client closed")
        buf[0] += d
    line, buf[0] = buf[0].split(b"\n", 1)
    return line + b"\n"


def read_data(c, buf):
    """The DATA section as sent, up to and including CRLF.CRLF."""
    while b"\r\n.\r\n" not in buf[0]:
        d = c.recv(65536)
        if not d:
            raise EOFError("client closed in DATA")
        buf[0] += d
    i = buf[0].index(b"\r\n.\r\n") + 5
    data, buf[0] = buf[0][:i], buf[0][i:]
    return data


class Dnsmasq:
    """dnsmasq answering only from its options (no upstream, no hosts file)
    on 127.0.0.1:port; names under local_domain it does not know are
    NXDOMAIN."""

    def __init__(self, options, port=None, local_domain="test"):
        self.port = port or free_port(socket.AF_INET)
        self.dir = os.path.abspath(os.path.join(BUILD, "t"))
        os.makedirs(self.dir, exist_ok=True)
        self.log_path = os.path.join(self.dir, "dnsmasq-%d.log" % self.port)
        args = ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
                "--no-hosts", "--no-poll", "--bind-interfaces", "--listen-address=127.0.0.1",
                "--port=%d" % self.port, "--local=/%s/" % local_domain, "--pid-file=",
                "--user=root", "--log-queries", "--log-facility=-", "--cache-size=0"]
        args += options
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        _stoppers.append(self.stop)
        wait_for(self._ready, 10, "dnsmasq on port %d" % self.port)

    def _ready(self):
        if self.proc.poll() is not None:
            raise Failure("dnsmasq exited: %s" % open(self.log_path).read()[-2000:])
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.3)
        try:
            q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04test\x00\x00\x01\x00\x01"
            s.sendto(q, ("127.0.0.1", self.port))
            return s.recv(512)[:2] == b"\x12\x34"
        except OSError:
            return False
        finally:
            s.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def queue_state(server):
    """{id: {addr: (state, attempts, error)}} from `moat queue list`."""
    r = server.moat("queue", "list", "-c", server.conf_path)
    check(r.returncode == 0, "moat queue list: exit %d %r" % (r.returncode, r.stderr[-300:]))
    out, cur = {}, None
    for line in r.stdout.decode("utf-8", "replace").splitlines():
        # the list ends with the destinations held back, when a server runs
        if not line.strip() or line == "Mail queue is empty" or line.startswith("destination "):
            continue
        if not line[:1].isspace():
            cur = line.split()[0]
            out[cur] = {"held": line.endswith(" held")}
            continue
        parts = line.split()
        addr = parts[0].strip("<>")
        attempts = int(parts[2].split("=")[1])
        err = line.split(' error="', 1)[1][:-1] if ' error="' in line else ""
        out[cur][addr] = (parts[1], attempts, err)
    return out


def log_text(server):
    """The server's log (its stderr) so far."""
    with open(server.log_path, errors="replace") as f:
        return f.read()


def attempted(server, qid, addr, n=1):
    """The recipient's (state, attempts, error) once tried n times, else None."""
    st = queue_state(server).get(qid, {}).get(addr)
    return st if st and st[1] >= n else None


def wait_gone(server, qid, seconds=20):
    wait_for(lambda: qid not in queue_state(server), seconds, "%s to leave the queue" % qid)


def main():
    """moatlib's main, then every sink, raw server and dnsmasq stopped."""
    try:
        moatlib.main()
    finally:
        stop_all()
