"""tests/tls/test_relay.py -- who may relay, who may never, and whom we
accept for, against the real server over IPv4 and IPv6: every cell of
the relay matrix of docs/security.md, deny networks (with never-connect), internal
listeners, recipient lists (550 5.1.1), `moat relay-test` (against moat
and against a recording server, which must never see DATA), and the
matrix `moat check` prints.

ASAN_OK: run.sh runs this file against build/moat and build/moat-asan.
"""

import os
import socket
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tlslib  # noqa: E402
from tlslib import PASSWORD, check, eq, free_port, plain, run  # noqa: E402
import moatlib  # noqa: E402
from moatlib import case, main  # noqa: E402

OURS = "bob@example.test"
FOREIGN = "someone@foreign.test"
ACCEPT = "250 2.1.5 Recipient OK"
DENIED = "554 5.7.1 <%s>: Relay access denied" % FOREIGN

_servers = {}


def server(name, conf):
    """moat with mx listeners on 127.0.0.1/::1 (.port4/.port6) and
    plaintext-loopback submission ones (.sub4/.sub6), plus conf."""
    if name in _servers:
        s = _servers[name]
        if isinstance(s, moatlib.Failure):
            raise s
        return s
    try:
        d = os.path.abspath(os.path.join(tlslib.BUILD, "t", "relay-%d" % os.getpid()))
        os.makedirs(d, exist_ok=True)
        p4, p6, sub4, sub6 = free_port(), free_port(socket.AF_INET6), free_port(), \
            free_port(socket.AF_INET6)
        settings = {
            "listen": ["127.0.0.1:%d" % p4, "[::1]:%d" % p6,
                       "127.0.0.1:%d role=submission auth-plaintext-loopback" % sub4,
                       "[::1]:%d role=submission auth-plaintext-loopback" % sub6],
            "users": tlslib.users_file(os.path.join(d, "users-relay-%s" % name)),
        }
        for k, v in conf.items():
            if k == "listen":
                settings["listen"] = settings["listen"] + v
            else:
                settings[k] = v
        s = moatlib.Server(name, settings, start=False)
        s.port4, s.port6, s.sub4, s.sub6 = p4, p6, sub4, sub6
        s.start()
    except moatlib.Failure as e:
        _servers[name] = e
        raise
    _servers[name] = s
    return s


def closed():
    """Nobody relays by address; example.test has a recipient list."""
    d = os.path.abspath(os.path.join(tlslib.BUILD, "t", "relay-%d" % os.getpid()))
    os.makedirs(d, exist_ok=True)
    lst = os.path.join(d, "rcpts-example.test")
    with open(lst, "w") as f:
        f.write("# valid recipients of example.test\nbob\nalice\nCarol@Example.Test\n")
    return server("relay-closed", {"domain": ["example.test", "catchall.test"],
                                   "recipients": ["example.test " + lst, "catchall.test catch-all"]})


def open_():
    return server("relay-open", {"relay-network": ["127.0.0.0/8", "::1/128"]})


def deny():
    return server("relay-deny", {"relay-network": ["127.0.0.0/8"],
                                 "deny-network": ["127.0.0.0/8", "::1/128 never-connect"]})


def rcpt(s, port, v6, rcpt_to, auth=False, sender="alice@example.test"):
    c = s.connect(v6=v6) if port is None else moatlib.Client("::1" if v6 else "127.0.0.1", port)
    try:
        if port is not None:
            eq(c.line(), "220 mx.test ESMTP moat", "greeting")
        c.ehlo()
        if auth:
            eq(c.cmd("AUTH PLAIN " + plain("alice", PASSWORD)), "235 2.7.0 Authentication successful",
               "AUTH")
        m = c.cmd("MAIL FROM:<%s>" % sender)
        if not m.startswith("250 "):
            return m
        return c.cmd("RCPT TO:<%s>" % rcpt_to)
    finally:
        c.close()


# The docs/security.md matrix: (authenticated user | relay network | anyone else) x
# (our domain | foreign domain), each over IPv4 and IPv6.
def matrix_cell(who, where, v6):
    want = ACCEPT if who != "anyone" or where == "ours" else DENIED
    to = OURS if where == "ours" else FOREIGN
    if who == "authenticated":
        s = closed()
        got = rcpt(s, s.sub6 if v6 else s.sub4, v6, to, auth=True)
    elif who == "relay-network":
        got = rcpt(open_(), None, v6, to)
    else:
        got = rcpt(closed(), None, v6, to)
    eq(got, want, "%s -> %s over %s" % (who, where, "IPv6" if v6 else "IPv4"))


for _who in ("authenticated", "relay-network", "anyone"):
    for _where in ("ours", "foreign"):
        for _v6 in (False, True):
            moatlib.add_case("matrix-%s-%s-%s" % (_who, _where, "v6" if _v6 else "v4"),
                             (lambda w=_who, r=_where, v=_v6: matrix_cell(w, r, v)))


@case
def test_submission_requires_auth():
    s = closed()
    for v6 in (False, True):
        eq(rcpt(s, s.sub6 if v6 else s.sub4, v6, OURS), "530 5.7.0 Authentication required",
           "MAIL without AUTH on submission")
    # Even from a relay network.
    s = open_()
    eq(rcpt(s, s.sub4, False, FOREIGN), "530 5.7.0 Authentication required", "relay net on submission")


@case
def test_recipient_lists():
    s = closed()
    for v6 in (False, True):
        eq(rcpt(s, None, v6, "dave@example.test"), "550 5.1.1 <dave@example.test>: User unknown",
           "unknown user")
        eq(rcpt(s, None, v6, "CAROL@example.test"), ACCEPT, "listed, other case")
        eq(rcpt(s, None, v6, "postmaster@example.test"), ACCEPT, "postmaster")
        eq(rcpt(s, None, v6, "anyone@catchall.test"), ACCEPT, "catch-all domain")
    # Authenticated users get the same answer for our unknown users.
    eq(rcpt(s, s.sub4, False, "dave@example.test", auth=True),
       "550 5.1.1 <dave@example.test>: User unknown", "unknown user, authenticated")
    check(tlslib.log_has(s, "event=reject addr=127.0.0.1 sid=* code=550 reason=unknown-user "
                            "to=<dave@example.test>"), "no log line")


@case
def test_deny_network():
    s = deny()
    # 127/8 is a relay network and a deny network: the deny wins, even
    # over AUTH; mail for our domain still comes in.
    eq(rcpt(s, None, False, FOREIGN), DENIED, "deny over relay-network")
    eq(rcpt(s, s.sub4, False, FOREIGN, auth=True), DENIED, "deny over AUTH")
    eq(rcpt(s, None, False, OURS), ACCEPT, "our domain from a deny network")
    # ::1 is never-connect: 554 before anything else.
    c = moatlib.Client("::1", s.port6)
    eq(c.line(), "554 5.7.1 mx.test Access denied", "never-connect")
    c.closed()
    c.close()
    check(tlslib.log_has(s, "event=reject addr=::1 sid=* code=554 reason=deny-network"), "log")
    eq(rcpt(s, None, False, "X@FOREIGN.test"), "554 5.7.1 <X@foreign.test>: Relay access denied",
       "upper case")


@case
def test_internal_listener():
    port = free_port()
    s = server("relay-internal", {"listen": ["127.0.0.1:%d internal" % port]})
    eq(rcpt(s, port, False, FOREIGN), ACCEPT, "internal listener relays")
    eq(rcpt(s, None, False, FOREIGN), DENIED, "the mx listener of the same server does not")


# ------------------------------------------------------------ relay-test

def relay_test(*args):
    return subprocess.run([tlslib.MOAT, "relay-test"] + list(args), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)


@case
def test_relay_test_closed():
    s = closed()
    for target in ("127.0.0.1:%d" % s.port4, "[::1]:%d" % s.port6):
        r = relay_test("-d", "example.test", "-t", "foreign.test", target)
        out = r.stdout.decode()
        eq(r.returncode, 0, "exit on a closed server:\n%s%s" % (out, r.stderr.decode()))
        check("\n0 of 16 relay tricks accepted\n" in out, out)
        check("ACCEPTED" not in out, out)
        check("control   control: postmaster at our domain" in out, out)
        for trick in ("percent hack", "bang path", "source route", "quoted local part",
                      "IP literal of the server", "null sender", "spoofed local sender"):
            check(trick in out, "%s missing:\n%s" % (trick, out))


@case
def test_relay_test_open():
    s = open_()
    r = relay_test("-d", "example.test", "127.0.0.1:%d" % s.port4)
    out = r.stdout.decode()
    eq(r.returncode, 1, "exit on an open relay:\n%s" % out)
    check("ACCEPTED  foreign sender to foreign domain" in out, out)
    check("this server is an open relay (no DATA was sent)" in out, out)
    # The server saw no DATA: nothing was queued.
    eq(s.queue_list(), {}, "queue after relay-test")


class Recorder(threading.Thread):
    """A fake SMTP server that says 250 to everything and records it."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.sock.settimeout(30)
        self.port = self.sock.getsockname()[1]
        self.commands = []

    def run(self):
        try:
            while True:
                conn, _ = self.sock.accept()
                conn.settimeout(30)
                f = conn.makefile("rb")
                conn.sendall(b"220 legacy.example.test ESMTP\r\n")
                for line in f:
                    cmd = line.decode("ascii", "replace").rstrip("\r\n")
                    self.commands.append(cmd)
                    if cmd.upper() == "QUIT":
                        conn.sendall(b"221 bye\r\n")
                        conn.close()
                        return
                    conn.sendall(b"354 go ahead\r\n" if cmd.upper() == "DATA" else b"250 ok\r\n")
                conn.close()
        except OSError:
            pass


@case
def test_relay_test_never_sends_data():
    rec = Recorder()
    rec.start()
    r = relay_test("127.0.0.1:%d" % rec.port)
    out = r.stdout.decode()
    rec.join(10)  # the recorder ends after QUIT
    eq(r.returncode, 1, "exit:\n%s" % out)
    check("our domain: example.test" in out, "domain from the greeting:\n%s" % out)
    check("16 of 16 relay tricks accepted" in out, out)
    check(not any(c.upper().startswith("DATA") for c in rec.commands), "DATA sent: %r" % rec.commands)
    check(rec.commands and rec.commands[-1] == "QUIT", "no QUIT: %r" % rec.commands[-3:])
    check("RCPT TO:<victim%foreign.test@example.test>" not in rec.commands, "")
    check("RCPT TO:<victim%example.net@example.test>" in rec.commands, rec.commands)
    rec.sock.close()


@case
def test_relay_test_usage():
    eq(relay_test().returncode, 100, "no host")
    port = free_port()
    eq(relay_test("127.0.0.1:%d" % port).returncode, 111, "nothing listening")


@case
def test_check_prints_matrix():
    s = deny()
    r = run([tlslib.MOAT, "check", "-c", s.conf_path])
    out = r.stdout.decode()
    eq(r.returncode, 0, "moat check: %s" % r.stderr.decode())
    check("# listen 127.0.0.1:%d (submission)\n" % s.sub4 in out, out)
    check("#   authenticated user          accept              relay\n" in out, out)
    check("#   deny network                accept              554 5.7.1\n" in out, out)
    check("deny-network ::1/128 never-connect\n" in out, out)


if __name__ == "__main__":
    main()
