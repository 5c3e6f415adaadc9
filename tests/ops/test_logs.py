#!/usr/bin/python3
"""tests/ops/test_logs.py -- the log: one key=value line per event, in the
shapes docs/operations.md "Logs" gives, for plaintext and TLS+AUTH sessions (connect,
accept, reject, auth-fail with addr=, disconnect with TLS and user), client
words escaped, one disconnect per connect; and syslog: RFC 3164 datagrams
with the configured facility to a socket the test owns, stderr while that
socket is gone, back when it returns, a stream socket after a reload.
ASAN_OK
"""

import os
import re
import socket
import time

import opslib
from opslib import check, eq, moatlib
import tlslib
from moatlib import DOMAIN, case, queued_id

ID = r"[0-9a-f]{16}"
SECS = r"\d+\.\d{3}"
SID = r"[0-9a-f]{16}"


class Lines:
    """has(pattern): a whole log line of server s matches pattern."""

    def __init__(self, s):
        self.s = s

    def __call__(self, pattern, n=1):
        return opslib.wait_log(self.s, "^" + pattern + "$", n)


@case
def test_session_lines():
    s = tlslib.server("logs", {"timeout-command": 1})
    has = Lines(s)
    with s.connect() as c:
        ida = queued_id(c.mail_tx("a@example.org", ["x@" + DOMAIN, "y@" + DOMAIN],
                                  "Subject: a\r\n\r\nhi\r\n"))
        c.expect("MAIL FROM:<a@example.org>", "250 2.1.0 Sender OK")
        c.expect("RCPT TO:<f@example.net>", "554 5.7.1 <f@example.net>: Relay access denied")
        c.expect("RSET", "250 2.0.0 OK")
        # Client words are escaped: no space, quote or '=' of theirs in a line.
        c.expect('MAIL FROM:<"a b=c"@example.org>', "250 2.1.0 Sender OK")
        c.expect("RCPT TO:<x@%s>" % DOMAIN, "250 2.1.5 Recipient OK")
        c.expect("DATA", "354 End data with <CR><LF>.<CR><LF>")
        c.send("Subject: b\r\n\r\nhi\r\n.\r\n")
        idb = queued_id(c.one())
        c.expect("QUIT", "221 2.0.0 mx.test closing connection")
    has(r"event=connect addr=127\.0\.0\.1 sid=%s port=\d+" % SID)
    size = r"\d+"
    first = [has(r"event=accept id=%s addr=127\.0\.0\.1 sid=%s from=<a@example\.org> size=%s "
                 r"nrcpt=2 to=<x@example\.test>,<y@example\.test>" % (ida, SID, size)),
             has(r"event=reject addr=127\.0\.0\.1 sid=%s code=554 reason=relay-denied "
                 r"to=<f@example\.net> from=<a@example\.org>" % SID),
             has(r"event=accept id=%s addr=127\.0\.0\.1 sid=%s from=<\\x22a\\x20b\\x3dc\\x22@example\.org> "
                 r"size=%s nrcpt=1 to=<x@example\.test>" % (idb, SID, size)),
             has(r"event=disconnect addr=127\.0\.0\.1 sid=%s reason=quit messages=2 errors=1 "
                 r"seconds=%s" % (SID, SECS))]
    # TLS and AUTH over IPv6: the failure carries addr= (fail2ban, sshguard).
    c, _ = tlslib.tls_session("::1", s.sub6)
    eq(c.cmd("AUTH PLAIN " + tlslib.plain("alice", "wrong")),
       "535 5.7.8 Authentication credentials invalid", "bad password")
    eq(c.cmd("AUTH PLAIN " + tlslib.plain("alice", tlslib.PASSWORD)),
       "235 2.7.0 Authentication successful", "AUTH")
    idc = queued_id(c.mail_tx("alice@example.test", ["far@example.net"], "Subject: c\r\n\r\n",
                              ehlo=False))
    c.expect("QUIT", "221 2.0.0 mx.test closing connection")
    c.close()
    second = [has(r"event=tls addr=::1 sid=%s version=TLSv1\.[23] cipher=\S+ key=RSA-2048" % SID),
              has(r"event=auth-fail addr=::1 sid=%s user=alice mech=PLAIN reason=bad-credentials "
                  r"failures=1" % SID),
              has(r"event=auth addr=::1 sid=%s user=alice mech=PLAIN" % SID),
              has(r"event=accept id=%s addr=::1 sid=%s from=<alice@example\.test> size=\d+ nrcpt=1 "
                  r"to=<far@example\.net> user=alice" % (idc, SID)),
              has(r"event=disconnect addr=::1 sid=%s reason=quit messages=1 errors=1 seconds=%s "
                  r"tls=TLSv1\.[23] cipher=\S+ user=alice" % (SID, SECS))]
    # An idle client: one disconnect line, with the reason.
    with s.connect() as c:
        eq(c.line(timeout=5), "421 4.4.2 mx.test Timeout, closing connection", "timeout")
    third = [has(r"event=disconnect addr=127\.0\.0\.1 sid=%s reason=timeout messages=0 errors=0 "
                 r"seconds=1\.\d{3}" % SID)]
    # A session's lines share its sid, and no other session has it.
    sids = [{re.search(r" sid=(%s) " % ID, ln[0]).group(1) for ln in group}
            for group in (first, second, third)]
    eq([len(x) for x in sids], [1, 1, 1], "one sid per session: %r" % sids)
    eq(len(set.union(*sids)), 3, "three sessions, three sids")
    s.stop()
    # Every line is "TIME moat[PID]: event=NAME key=value ..." (or level=),
    # and each connection has one connect line and one disconnect line.
    lines = s.stderr(tail=1 << 22).splitlines()
    for ln in lines:
        m = opslib.LINE_RE.match(ln)
        check(m, "not a log line: %r" % ln)
        check(re.match(r'^(event|level)=[a-z-]+( [a-z0-9_-]+=("(?:[^"\\]|\\.)*"|\S*))*$',
                       m.group(3)), "not key=value: %r" % ln)
    eq(len(opslib.events(s, "disconnect")), len(opslib.events(s, "connect")),
       "disconnect lines against connect lines")
    for sid in set.union(*sids):
        eq([d["event"] for d in opslib.events(s, "connect") + opslib.events(s, "disconnect")
            if d.get("sid") == sid], ["connect", "disconnect"], "sid %s: one connect, one disconnect" % sid)


class Syslog:
    """A syslog daemon's socket, as the test's own: datagram or stream."""

    def __init__(self, path, stream=False):
        self.path, self.stream = path, stream
        if os.path.exists(path):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM if stream else socket.SOCK_DGRAM)
        self.sock.bind(path)
        os.chmod(path, 0o666)   # as /dev/log: the roles run as another user
        if stream:
            self.sock.listen(1)
        self.conn = None
        self.buf = b""

    def close(self):
        for x in (self.conn, self.sock):
            if x is not None:
                x.close()
        os.unlink(self.path)

    def messages(self, until, seconds=10):
        """Messages received until one matches the regex until."""
        rx, got, seen = re.compile(until), [], 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                if not self.stream:
                    got.append(self.sock.recv(65536).decode())
                else:
                    if self.conn is None:
                        self.conn, _ = self.sock.accept()
                    self.conn.settimeout(max(0.01, deadline - time.monotonic()))
                    self.buf += self.conn.recv(65536)
                    while b"\n" in self.buf:
                        ln, self.buf = self.buf.split(b"\n", 1)
                        got.append(ln.decode())
            except socket.timeout:
                break
            # (a stream read may bring several lines at once)
            if any(rx.search(g) for g in got[seen:]):
                return got
            seen = len(got)
        raise moatlib.Failure("no syslog message matching %r; got %r" % (until, got))


# RFC 3164 as the C library writes it to /dev/log.
RFC3164 = re.compile(r"^<(\d+)>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d moat\[(\d+)\]: (.*)$")


@case
def test_syslog():
    d = os.path.abspath(os.path.join(moatlib.BUILD, "t", "syslog-%d" % os.getpid()))
    os.makedirs(d, exist_ok=True)
    log = Syslog(os.path.join(d, "log"))
    s = moatlib.Server("syslog", {"log": "syslog " + log.path, "log-facility": "local3"})
    got = log.messages(r"event=start ")
    m = RFC3164.match(got[-1])
    check(m, "not RFC 3164: %r" % got[-1])
    eq((int(m.group(1)), int(m.group(2))), (19 * 8 + 6, s.proc.pid), "PRI (local3.info), PID")
    check(m.group(3).startswith("event=start hostname=mx.test "), got[-1])
    with s.connect() as c:
        c.expect("QUIT", "221 2.0.0 mx.test closing connection")
    got = log.messages(r"event=disconnect addr=127\.0\.0\.1 sid=[0-9a-f]{16} reason=quit ")
    check(any(RFC3164.match(g) and " event=connect addr=127.0.0.1 " in g for g in got), got)
    check("event=" not in s.stderr(), "lines on stderr with syslog on: %r" % s.stderr())
    # A warning: severity 4.
    with open(s.conf_path, "a") as f:
        f.write("queue-max-bytes 1G\n")
    s.proc.send_signal(__import__("signal").SIGHUP)
    got = log.messages(r"event=reload status=ok ")
    check(any(g.startswith("<%d>" % (19 * 8 + 4)) and "queue-map-size stays" in g for g in got),
          "warning line: %r" % got)
    # The daemon goes away: lines go to stderr, none is lost.
    log.close()
    with s.connect() as c:
        c.expect("QUIT", "221 2.0.0 mx.test closing connection")
    opslib.wait_log(s, r"event=disconnect addr=127\.0\.0\.1 sid=[0-9a-f]{16} reason=quit ")
    # It comes back: after a second moat reconnects.
    log = Syslog(log.path)
    time.sleep(1.1)
    with s.connect() as c:
        c.expect("QUIT", "221 2.0.0 mx.test closing connection")
    log.messages(r"event=disconnect addr=127\.0\.0\.1 sid=[0-9a-f]{16} reason=quit ")
    # A reload moves the log to a stream socket: lines end with LF.
    stream = Syslog(os.path.join(d, "stream"), stream=True)
    with open(s.conf_path) as f:
        text = f.read().replace("log syslog " + log.path, "log syslog " + stream.path)
    with open(s.conf_path, "w") as f:
        f.write(text.replace("log-facility local3", "log-facility mail"))
    s.proc.send_signal(__import__("signal").SIGHUP)
    got = stream.messages(r"event=reload status=ok generation=3 ")
    check(RFC3164.match(got[-1]) and got[-1].startswith("<22>"), got[-1])
    r = s.moat("check", "-c", s.conf_path)
    check(("\nlog syslog %s\nlog-facility mail\n" % stream.path).encode() in r.stdout, r.stdout)
    s.stop()
    got = stream.messages(r"event=exit status=0")
    stream.close()
    log.close()


if __name__ == "__main__":
    moatlib.main()
