"""tests/proxy/test_haproxy.py -- three moat nodes behind a real HAProxy
(Debian's haproxy, TCP mode, send-proxy-v2), as docs/scale-out.md sets
them up: the HAProxy configuration is read from that page (the block after
its "haproxy.cfg" marker), with loopback addresses and ports put in.

Each node has its own config and queue, `proxy` listeners (SMTP with
STARTTLS, submission, implicit TLS), `proxy-from` HAProxy's source address
(127.0.0.10) and its /health on metrics-listen, which HAProxy checks.
Clients bind 127.0.0.x addresses: 127.0.0.5 is every node's relay network,
127.0.0.6 an outsider, 127.0.0.7 a deny-network (never-connect); none of
them is HAProxy's, so a node that decided on the connection's address
instead of the header's would fail every case.

Cases: the relay matrix through the proxy (v2 and v1 headers, IPv4 and
IPv6 clients, submission with AUTH, deny networks, the percent hack),
`moat relay-test` through it, STARTTLS through it, the Received: header
and the envelope's client (what per-client quotas count),
the log's addr= and proxy=, the smuggling checks of tests/smtp
through it, a PROXY line sent inside a session; directly to a node: an
untrusted host with a header, a trusted one without, with a bad, an
over-long or a stalled header (all closed without a byte, each logged
with its reason), the LOCAL header, a header and the client's first
command in one write, implicit TLS after the header; on a fourth node
outside HAProxy, whose DNS blocklist (dnsmasq) lists HAProxy's own
address: the blocklist, max-connections-per-client and the AUTH-failure
block all count the header's client, never the proxy; the refusals in
/metrics; a node over its queue quota turns unhealthy,
HAProxy sends it nothing while the others carry on, and gets it back once
its queue is emptied; kill -9 of one node under load from four clients:
every message answered 250 is in exactly one node's queue, and the
sessions begun after the kill land on the living nodes.

ASAN_OK: run.sh runs this file against build/moat and build/moat-asan.
"""

import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tls"))
from haproxylib import HAProxy  # noqa: E402
import moatlib  # noqa: E402
from moatlib import BUILD, MOAT, Failure, case, check, eq, free_port, queued_id  # noqa: E402
import tlslib  # noqa: E402
from tlslib import PASSWORD, plain  # noqa: E402
sys.path.insert(0, os.path.join(HERE, "..", "deliver"))
from sinklib import Dnsmasq  # noqa: E402

DOC = os.path.join(HERE, "..", "..", "docs", "scale-out.md")
LB = "127.0.0.10"         # HAProxy's source address: every node's proxy-from
RELAY = "127.0.0.5"       # every node's relay-network
OUTSIDER = "127.0.0.6"
DENIED_NET = "127.0.0.7"  # every node's deny-network, never-connect
QUOTA_C = 100             # node C's queue-max-messages

GREETING = "220 mx.test ESMTP moat"
OURS = "bob@example.test"
FOREIGN = "someone@foreign.test"
ACCEPT = "250 2.1.5 Recipient OK"
DENIED = "554 5.7.1 <%s>: Relay access denied" % FOREIGN
ROUTING = "554 5.7.1 <%s>: Relay access denied (routing characters in local part)"
BAD_DATA = "554 5.6.0 Bare CR or LF in message data; message rejected"
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(src, sport, dst="127.0.0.1", dport=25, local=False):
    """A PROXY v2 header for an IPv4 client (or LOCAL)."""
    if local:
        return V2_SIG + b"\x20\x00\x00\x00"
    body = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack(">HH", sport, dport)
    return V2_SIG + b"\x21\x11" + struct.pack(">H", len(body)) + body


def health(port, path="/health"):
    """(status, body) of GET path (/health) on 127.0.0.1:port, or (0, reason)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
            s.sendall(b"GET %s HTTP/1.0\r\n\r\n" % path.encode())
            data = b""
            while True:
                d = s.recv(4096)
                if not d:
                    break
                data += d
    except OSError as e:
        return 0, str(e)
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        return int(head.split()[1]), body.decode("utf-8", "replace")
    except (IndexError, ValueError):
        return 0, repr(data[:100])


def alive(pid):
    """Is pid running (a zombie, which init may reap late, is not)?"""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return False
    return st[st.rindex(")") + 2:][:1] not in ("Z", "X")


class Node(moatlib.Server):
    """A moat node with proxy listeners, ready when /health says 200."""

    def __init__(self, name, extra=None):
        self.smtp, self.sub, self.smtps, self.metrics = (free_port() for _ in range(4))
        crt, key = tlslib.pair("proxy-node", "ec")
        d = os.path.abspath(os.path.join(BUILD, "t", "proxy-%d" % os.getpid()))
        os.makedirs(d, exist_ok=True)
        conf = {
            "listen": ["127.0.0.1:%d tls=starttls proxy" % self.smtp,
                       "127.0.0.1:%d role=submission tls=starttls proxy" % self.sub,
                       "127.0.0.1:%d tls=implicit proxy" % self.smtps],
            "proxy-from": LB,
            "metrics-listen": "127.0.0.1:%d" % self.metrics,
            "relay-network": RELAY,
            "deny-network": DENIED_NET + " never-connect",
            "tls-cert": crt,
            "tls-key": key,
            "users": tlslib.users_file(os.path.join(d, "users-%s" % name)),
        }
        conf.update(extra or {})
        super().__init__(name, conf, start=False)
        try:
            self.start()
        except Failure as e:
            self.problems.append("did not start: %s" % str(e).split("\n")[0])
            raise

    def start(self):
        check(os.path.exists(MOAT), "server binary %s does not exist" % MOAT)
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen([MOAT, "serve", "-c", self.conf_path],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        finally:
            log.close()
        deadline = time.monotonic() + moatlib.START_SECONDS
        last = None
        while time.monotonic() < deadline:
            check(self.proc.poll() is None, "node %s exited with %s; stderr:\n%s"
                  % (self.name, self.proc.returncode, self.stderr()))
            last = health(self.metrics)
            if last[0] == 200:
                return self
            time.sleep(0.05)
        self.kill()
        raise Failure("node %s: /health never said 200 (%r); stderr:\n%s"
                      % (self.name, last, self.stderr()))

    def kill9(self):
        """SIGKILL to every process of the node at once: a crash."""
        pids = [self.role_pid(r) for r in ("smtp", "queue", "delivery", "key")]
        pids.append(self.proc.pid)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(moatlib.STOP_SECONDS)
        self.proc = None
        deadline = time.monotonic() + 10
        while any(alive(p) for p in pids):
            check(time.monotonic() < deadline, "node %s's roles outlived SIGKILL" % self.name)
            time.sleep(0.01)

    def direct(self, source, port=None):
        """A connection to this node's SMTP listener from source, nothing sent."""
        return tlslib.TLSClient("127.0.0.1", port or self.smtp, moatlib.IO_SECONDS, source)

    def ids(self):
        return set(self.queue_list())

    def logged_ids(self):
        """The queue IDs its log says it accepted (reading the log does not
        touch the queue, as `moat queue list` would while it commits)."""
        return set(re.findall(r"event=accept id=([0-9a-f]{16}) ", self.stderr(tail=10 ** 7)))


# ------------------------------------------------------------ environment

class Env:
    pass


E = Env()


def haproxy_cfg(nodes):
    """docs/scale-out.md's HAProxy block, on loopback, plus a v1 frontend
    that tracks the same servers."""
    with open(DOC) as f:
        text = f.read()
    i = text.index("<!-- haproxy.cfg:")
    j = text.index("```haproxy\n", i) + len("```haproxy\n")
    cfg = text[j:text.index("```", j)]
    subs = [("bind :25\n", "bind 127.0.0.1:%d\n" % E.f25),
            ("bind :::25 v6only", "bind ::1:%d v6only" % E.f25_6),
            ("bind :587\n", "bind 127.0.0.1:%d\n" % E.f587),
            ("source 10.0.0.5", "source " + LB),
            ("inter 2s", "inter 200")]
    for n, ip in zip(nodes, ("10.0.0.11", "10.0.0.12", "10.0.0.13")):
        subs += [("%s:25 port 9025" % ip, "127.0.0.1:%d port %d" % (n.smtp, n.metrics)),
                 ("%s:587 " % ip, "127.0.0.1:%d " % n.sub)]
    for old, new in subs:
        check(old in cfg, "docs/scale-out.md's HAProxy config has no %r any more: "
              "tests/proxy/test_haproxy.py must follow it" % old)
        cfg = cfg.replace(old, new)
    check("10.0.0." not in cfg, "an address of the doc left in:\n%s" % cfg)
    cfg += "\nfrontend smtp-v1\n    bind 127.0.0.1:%d\n    default_backend moat-v1\n" % E.f25_v1
    cfg += ("backend moat-v1\n    balance leastconn\n    source %s\n"
            "    default-server send-proxy\n" % LB)
    for name, n in zip(("mx1", "mx2", "mx3"), nodes):
        cfg += "    server %s 127.0.0.1:%d track moat/%s\n" % (name, n.smtp, name)
    return cfg


def env():
    """Nodes A, B, C (C with a small queue quota) and HAProxy in front."""
    if hasattr(E, "failed"):
        raise E.failed
    if hasattr(E, "lb"):
        return E
    try:
        E.b = Node("b")
        E.c = Node("c", {"queue-max-messages": QUOTA_C})
        E.nodes = [E.a, E.b, E.c]
        E.names = dict(zip(("mx1", "mx2", "mx3"), E.nodes))
        E.f25, E.f587, E.f25_v1 = free_port(), free_port(), free_port()
        E.f25_6 = free_port(socket.AF_INET6)
        E.lb = HAProxy("scale-out", haproxy_cfg(E.nodes))
        for name in E.names:
            E.lb.wait_state("moat", name, "UP")
    except Failure as e:
        E.failed = e
        raise
    return E


def through(source, port=None, v6=False):
    """A client of HAProxy's SMTP frontend from source, greeted."""
    env()
    c = tlslib.TLSClient("::1" if v6 else "127.0.0.1", port or (E.f25_6 if v6 else E.f25),
                         moatlib.IO_SECONDS, source)
    eq(c.line(), GREETING, "greeting through HAProxy from %s" % source)
    return c


def rcpt(c, to, sender="alice@example.org"):
    """EHLO, MAIL, RCPT: RCPT's reply (or MAIL's, if not 250)."""
    c.ehlo()
    m = c.cmd("MAIL FROM:<%s>" % sender)
    if not m.startswith("250 "):
        return m
    return c.cmd("RCPT TO:<%s>" % to)


def rcpt_through(source, to, port=None, v6=False):
    with through(source, port, v6) as c:
        return rcpt(c, to)


def where(qid):
    """The nodes whose queue holds qid."""
    return [n for n in E.nodes if qid in n.queue_list()]


def logs_have(*needles):
    """Does one line of one node's log (d's too) hold every needle?"""
    for n in E.nodes + ([E.d] if hasattr(E, "d") else []):
        for line in n.stderr(tail=1000000).splitlines():
            if all(x in line for x in needles):
                return True
    return False


def wait_logs(*needles, seconds=10):
    deadline = time.monotonic() + seconds
    while not logs_have(*needles):
        check(time.monotonic() < deadline, "no log line with %r in any node's log" % (needles,))
        time.sleep(0.1)


def closed_silently(c, seconds=moatlib.IO_SECONDS):
    """The node closes c without having sent a byte."""
    try:
        c.closed(timeout=seconds)
    finally:
        c.close()


# ------------------------------------------------------------ through HAProxy

def matrix_cell(source, to, want, port_attr="f25", v6=False):
    env()
    got = rcpt_through(source, to, getattr(E, port_attr), v6)
    eq(got, want, "RCPT %s from %s through %s" % (to, source, port_attr))


for _front in ("f25", "f25_v1"):
    for _who, _src in (("relay-network", RELAY), ("outsider", OUTSIDER)):
        for _where, _to in (("ours", OURS), ("foreign", FOREIGN)):
            _want = DENIED if (_who == "outsider" and _where == "foreign") else ACCEPT
            moatlib.add_case("matrix-%s-%s-%s" % ("v2" if _front == "f25" else "v1", _who, _where),
                             (lambda s=_src, t=_to, w=_want, f=_front: matrix_cell(s, t, w, f)))


@case
def test_matrix_v6_outsider():
    env()
    eq(rcpt_through("::1", OURS, v6=True), ACCEPT, "our domain from ::1")
    eq(rcpt_through("::1", FOREIGN, v6=True), DENIED, "foreign from ::1 (not a relay network)")


@case
def test_matrix_percent_hack():
    env()
    to = "victim%foreign.test@example.test"
    eq(rcpt_through(OUTSIDER, to), ROUTING % to, "percent hack from an outsider")
    eq(rcpt_through(RELAY, to), ACCEPT, "percent hack from the relay network")


@case
def test_matrix_deny_network():
    env()
    for port in (E.f25, E.f25_v1):
        c = tlslib.TLSClient("127.0.0.1", port, moatlib.IO_SECONDS, DENIED_NET)
        eq(c.line(), "554 5.7.1 mx.test Access denied", "a never-connect client through HAProxy")
        c.closed()
        c.close()


@case
def test_matrix_submission():
    env()
    with through(OUTSIDER, E.f587) as c:
        eq(rcpt(c, FOREIGN), "530 5.7.0 Must issue a STARTTLS command first", "MAIL in plaintext")
    with through(OUTSIDER, E.f587) as c:
        c.ehlo()
        eq(c.cmd("STARTTLS"), "220 2.0.0 Ready to start TLS", "STARTTLS")
        c.starttls()
        eq(rcpt(c, FOREIGN), "530 5.7.0 Authentication required", "MAIL before AUTH")
        eq(c.cmd("AUTH PLAIN " + plain("alice", PASSWORD)), "235 2.7.0 Authentication successful",
           "AUTH")
        eq(c.cmd("MAIL FROM:<alice@example.test>"), "250 2.1.0 Sender OK", "MAIL")
        eq(c.cmd("RCPT TO:<%s>" % FOREIGN), ACCEPT, "an authenticated outsider relays")


@case
def test_decided_on_the_header_address():
    env()
    eq(rcpt_through(OUTSIDER, FOREIGN), DENIED, "outsider")
    wait_logs("reason=relay-denied", "addr=%s" % OUTSIDER)
    wait_logs("event=connect addr=%s " % OUTSIDER, "proxy=%s proxy-kind=forwarded" % LB)
    wait_logs("event=disconnect addr=%s " % OUTSIDER, "proxy=%s" % LB)
    check(not logs_have("event=connect addr=%s " % LB, "proxy-kind=forwarded"),
          "a node logged HAProxy's address as a client's")


@case
def test_relay_test_through_haproxy():
    env()
    r = subprocess.run([MOAT, "relay-test", "-d", "example.test", "-t", "foreign.test",
                        "127.0.0.1:%d" % E.f25], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    out = r.stdout.decode()
    eq(r.returncode, 0, "moat relay-test through HAProxy:\n%s%s" % (out, r.stderr.decode()))
    check("\n0 of 16 relay tricks accepted\n" in out, out)


@case
def test_starttls_and_received():
    env()
    with through(RELAY) as c:
        c.ehlo()
        eq(c.cmd("STARTTLS"), "220 2.0.0 Ready to start TLS", "STARTTLS")
        c.starttls()
        qid = queued_id(c.mail_tx("alice@example.org", [FOREIGN],
                                  b"Subject: relayed\r\n\r\nhi\r\n"))
    on = where(qid)
    eq(len(on), 1, "nodes holding %s" % qid)
    body = on[0].queue_body(qid)[1]
    check(body.startswith(b"Received: "), "the stored message begins %r" % body[:100])
    end = body.index(b"\r\n")
    while body[end + 2:end + 3] in (b" ", b"\t"):   # continuation lines
        end = body.index(b"\r\n", end + 2)
    received = body[:end]
    check(b"([%s])" % RELAY.encode() in received, "Received: names the client: %r" % received)
    check(LB.encode() not in received, "Received: names HAProxy: %r" % received)
    # The envelope's client, which per-client quotas count by (usage key).
    envelope = on[0].queue_body(qid)[0]
    check(re.search(rb"^client:? +%s$" % re.escape(RELAY.encode()), envelope, re.M),
          "the envelope's client is not %s:\n%s" % (RELAY, envelope.decode("utf-8", "replace")))


@case
def test_smuggling_through_haproxy():
    env()
    smuggled = (b"MAIL FROM:<evil@evil.example>\r\nRCPT TO:<victim@example.test>\r\n"
                b"DATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n")
    seps = (b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n.\r", b"\n.\r")
    before = {n.name: n.ids() for n in E.nodes}
    for sep, split in [(sep, split) for split in (False, True) for sep in seps]:
        for front in (E.f25, E.f25_v1):
            with through(OUTSIDER, front) as c:
                c.ehlo()
                eq(c.cmd("MAIL FROM:<alice@example.org>"), "250 2.1.0 Sender OK", "MAIL")
                eq(c.cmd("RCPT TO:<%s>" % OURS), ACCEPT, "RCPT")
                eq(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>", "DATA")
                pieces = ([b"Subject: real\r\n\r\nhello"] + [sep[i:i + 1] for i in range(len(sep))]
                          + [smuggled, b"\r\n.\r\n"])
                if not split:
                    pieces = [b"".join(pieces)]
                for piece in pieces:
                    c.send(piece)
                    time.sleep(0.02 if split else 0)
                eq(c.one(), BAD_DATA, "reply after the real CRLF.CRLF (separator %r)" % sep)
                c.quiet(0.3)
                c.expect("NOOP", "250 2.0.0 OK", "NOOP after the rejected message")
                c.expect("RCPT TO:<%s>" % OURS, "503 5.5.1 Need MAIL before RCPT")
    eq({n.name: n.ids() for n in E.nodes}, before, "queues after the smuggling attempts")


@case
def test_proxy_line_inside_the_session():
    # A client of HAProxy that sends its own PROXY header gets it read as
    # SMTP: only the first header of a connection, HAProxy's, is one.
    env()
    with through(OUTSIDER) as c:
        line = "PROXY TCP4 %s 127.0.0.1 1234 25" % RELAY
        eq(c.cmd(line), "500 5.5.1 Command unrecognized", "a PROXY line after the greeting")
        eq(rcpt(c, FOREIGN), DENIED, "still an outsider")
    with through(OUTSIDER) as c:
        c.send(v2_header(RELAY, 1234) + b"\r\n")
        try:
            # Whatever it said to the binary noise, then a NOOP's 250 to
            # stand on; a session that closed instead believed nothing.
            c.send(b"NOOP\r\n")
            for _ in range(20):
                if c.line() == "250 2.0.0 OK":
                    break
            else:
                raise Failure("no answer to NOOP after the v2 bytes")
        except (Failure, OSError):
            check(c.eof, "neither an answer nor a close after v2 bytes inside the session")
            return
        eq(rcpt(c, FOREIGN), DENIED, "after a v2 header inside the session, still an outsider")


# ------------------------------------------------------------ directly to a node

@case
def test_untrusted_peer_with_header():
    env()
    n = E.b
    for hdr in (v2_header(RELAY, 4000), b"PROXY TCP4 %s 127.0.0.1 4000 25\r\n" % RELAY.encode()):
        c = n.direct(OUTSIDER)
        c.send(hdr + b"EHLO client.example\r\n")
        closed_silently(c)
    wait_logs("event=reject addr=%s " % OUTSIDER, "code=none reason=proxy-untrusted")


@case
def test_untrusted_peer_silent():
    env()
    closed_silently(E.b.direct(OUTSIDER))


@case
def test_trusted_peer_without_header():
    env()
    c = E.b.direct(LB)
    c.send(b"EHLO client.example\r\n")
    closed_silently(c)
    wait_logs("event=reject addr=%s " % LB, "reason=proxy-header error=missing bytes=21")


@case
def test_trusted_peer_bad_headers():
    env()
    bad = [b"PROXY TCP4 127.0.0.05 127.0.0.1 4000 25\r\n",
           b"PROXY TCP4 127.0.0.5 127.0.0.1 4000 25\n",
           b"PROXY TCP6 127.0.0.5 127.0.0.1 4000 25\r\n",
           b"PROXY UNKNOWN " + b"a" * 200,
           V2_SIG + b"\x21\x11\xff\xff",
           V2_SIG + b"\x22\x11\x00\x0c" + b"\x7f\x00\x00\x05\x7f\x00\x00\x01\x0f\xa0\x00\x19"]
    for hdr in bad:
        c = E.b.direct(LB)
        c.send(hdr)
        closed_silently(c)
    for why in ("malformed", "too-long"):
        wait_logs("event=reject addr=%s " % LB, "reason=proxy-header error=%s " % why)


@case
def test_trusted_peer_stalled_header():
    env()
    c = E.b.direct(LB)
    c.send(v2_header(RELAY, 4000)[:20])
    closed_silently(c, seconds=20)
    wait_logs("event=reject addr=%s " % LB, "reason=proxy-header error=timeout bytes=20")


@case
def test_local_header():
    # HAProxy's own connection: answered, with HAProxy's address.
    env()
    c = E.b.direct(LB)
    c.send(v2_header(None, 0, local=True))
    eq(c.line(), GREETING, "greeting after LOCAL")
    eq(rcpt(c, FOREIGN), DENIED, "LOCAL: the session is HAProxy's, not a relay network")
    c.close()
    wait_logs("reason=relay-denied", "addr=%s" % LB)
    wait_logs("event=connect addr=%s " % LB, "proxy=%s proxy-kind=local" % LB)


@case
def test_header_and_command_in_one_write():
    env()
    c = E.b.direct(LB)
    c.send(v2_header(RELAY, 4001) + b"EHLO client.example\r\n")
    eq(c.line(), GREETING, "greeting")
    r = c.reply()
    check(r[0].startswith("250-"), "the EHLO behind the header was answered: %r" % r)
    eq(c.cmd("MAIL FROM:<alice@example.org>"), "250 2.1.0 Sender OK", "MAIL")
    eq(c.cmd("RCPT TO:<%s>" % FOREIGN), ACCEPT, "the header's client relays")
    c.close()


@case
def test_implicit_tls_after_header():
    env()
    c = E.b.direct(LB, E.b.smtps)
    c.send(v2_header(RELAY, 4002))
    c.starttls()
    eq(c.line(), GREETING, "greeting inside TLS after the header")
    eq(rcpt(c, FOREIGN), ACCEPT, "the header's client relays")
    c.close()


# ------------------------------------------------------------ node d: limits on the header's client

def v2_to(node, src, port=None, greet=True):
    """A connection from HAProxy's address to node, its v2 header naming
    src; greeted unless greet is False."""
    c = node.direct(LB, port)
    c.send(v2_header(src, 4100))
    if greet:
        eq(c.line(), GREETING, "greeting for %s" % src)
    return c


def node_d():
    """A node outside HAProxy with a DNS blocklist that lists HAProxy's own
    address and 203.0.113.7, two connections per client and AUTH blocked
    after two failures: if it decided on the peer, everyone would be
    blocked, and HAProxy's connections would be limited."""
    env()
    if not hasattr(E, "d"):
        E.dns = Dnsmasq(["--host-record=%s,127.0.0.2" % DNSBL_NAME(LB),
                         "--host-record=%s,127.0.0.2" % DNSBL_NAME(LISTED)])
        E.d = Node("d", {"dns-server": "127.0.0.1:%d" % E.dns.port, "dns-timeout": "2s",
                         "dnsbl": "zen.test", "dnsbl-timeout": 2, "dnsbl-stage": "connect",
                         "max-connections-per-client": 2, "auth-max-failures": 2,
                         "auth-fail-delay": 0})
    return E.d


LISTED = "203.0.113.7"


def DNSBL_NAME(addr):
    return ".".join(reversed(addr.split("."))) + ".zen.test"


@case
def test_dnsbl_on_the_header_address():
    d = node_d()
    c = v2_to(d, LISTED, greet=False)
    eq(c.line(), "554 5.7.1 mx.test Service unavailable; client [%s] blocked using zen.test"
       % LISTED, "greeting for a listed client behind HAProxy")
    c.close()
    with v2_to(d, "198.51.100.20") as c:   # not listed; HAProxy's address is
        eq(rcpt(c, OURS), ACCEPT, "an unlisted client behind a listed proxy")
    with open(E.dns.log_path, "rb") as f:
        asked = f.read().decode("utf-8", "replace")
    check("query[A] %s " % DNSBL_NAME(LISTED) in asked, "no lookup of %s" % LISTED)
    check("query[A] %s " % DNSBL_NAME(LB) not in asked, "HAProxy's address was looked up")
    wait_logs("event=reject addr=%s sid=" % LISTED, " code=554 reason=dnsbl stage=connect")


@case
def test_per_client_limit_on_the_header_address():
    d = node_d()
    held = [v2_to(d, "198.51.100.30") for _ in range(2)]
    try:
        c = v2_to(d, "198.51.100.30", greet=False)
        eq(c.line(), "421 4.7.0 mx.test Too many connections from your address, try again later",
           "a third connection of one client behind HAProxy")
        c.close()
        wait_logs("event=reject addr=198.51.100.30 sid=", " code=421 reason=max-connections-per-client "
                  "proxy=%s" % LB)
        # Another client through the same proxy, which has four open now.
        with v2_to(d, "198.51.100.31") as c:
            c.expect("NOOP", "250 2.0.0 OK")
    finally:
        for c in held:
            c.close()


@case
def test_auth_block_on_the_header_address():
    d = node_d()
    who = "198.51.100.40"
    with v2_to(d, who, d.sub) as c:
        c.ehlo()
        eq(c.cmd("STARTTLS"), "220 2.0.0 Ready to start TLS", "STARTTLS")
        c.starttls()
        c.ehlo()
        eq(c.cmd("AUTH PLAIN " + plain("alice", "wrong")),
           "535 5.7.8 Authentication credentials invalid", "a first bad password")
        check(c.cmd("AUTH PLAIN " + plain("alice", "wrong")).startswith("421 4.7.0 "),
              "a second bad password: blocked")
    c = v2_to(d, who, d.sub, greet=False)
    eq(c.line(), "421 4.7.0 mx.test Too many authentication failures, try again later",
       "the blocked client's next connection, after its header")
    c.close()
    wait_logs("event=reject addr=%s sid=" % who, " code=421 reason=auth-blocked proxy=%s" % LB)
    with v2_to(d, "198.51.100.41", d.sub) as c:   # the proxy itself is not blocked
        c.expect("NOOP", "250 2.0.0 OK")


def metric(node, name):
    """The value of one sample line of node's /metrics (0 if absent)."""
    status, text = health(node.metrics, "/metrics")
    eq(status, 200, "GET /metrics: %s" % text[:200])
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0


@case
def test_metrics_count_header_refusals():
    env()
    names = ['moat_rejections_total{reason="%s"}' % r for r in ("proxy-untrusted", "proxy-header")]
    before = [metric(E.b, n) for n in names]
    closed_silently(E.b.direct(OUTSIDER))
    c = E.b.direct(LB)
    c.send(b"EHLO client.example\r\n")
    closed_silently(c)
    eq([metric(E.b, n) - b for n, b in zip(names, before)], [1, 1],
       "node b's %s and %s, one refusal of each later" % tuple(names))


# ------------------------------------------------------------ health and quota

@case
def test_over_quota_node_leaves_and_returns():
    env()
    a, b, c = E.nodes
    # Fill C to its quota directly, as HAProxy would reach it.
    conn = c.direct(LB)
    conn.send(v2_header(RELAY, 4003))
    eq(conn.line(), GREETING, "greeting")
    conn.ehlo()
    for _ in range(QUOTA_C + 1):
        m = conn.cmd("MAIL FROM:<alice@example.org>")
        if m.startswith("452"):
            break
        eq(m, "250 2.1.0 Sender OK", "MAIL")
        eq(conn.cmd("RCPT TO:<%s>" % OURS), ACCEPT, "RCPT")
        eq(conn.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>", "DATA")
        conn.send(b"Subject: fill\r\n\r\nfill\r\n.\r\n")
        queued_id(conn.one(timeout=30))
    else:
        raise Failure("node c took more than queue-max-messages %d" % QUOTA_C)
    conn.close()
    deadline = time.monotonic() + 10
    while health(c.metrics)[0] != 503:
        check(time.monotonic() < deadline, "node c's /health over quota: %r" % (health(c.metrics),))
        time.sleep(0.1)
    E.lb.wait_state("moat", "mx3", "DOWN")
    full = c.ids()
    got = []
    for k in range(9):
        with through(RELAY) as cl:
            got.append(queued_id(cl.mail_tx("alice@example.org", [OURS],
                                            b"Subject: while c is full %d\r\n\r\nx\r\n" % k)))
    eq(c.ids(), full, "node c's queue while HAProxy holds it out")
    for qid in got:
        eq(len([n for n in (a, b) if qid in n.ids()]), 1, "%s on exactly one of a, b" % qid)
    # Emptied, it is healthy and gets sessions again.
    for qid in full:
        r = c.moat("queue", "delete", "-c", c.conf_path, qid)
        eq(r.returncode, 0, "moat queue delete %s: %r" % (qid, r.stderr))
    E.lb.wait_state("moat", "mx3", "UP")
    back = []
    for k in range(6):
        with through(RELAY) as cl:
            back.append(queued_id(cl.mail_tx("alice@example.org", [OURS],
                                             b"Subject: c is back %d\r\n\r\nx\r\n" % k)))
    check(set(back) & c.ids(), "no session reached node c after it recovered")


# ------------------------------------------------------------ kill -9

class Sender(threading.Thread):
    """Sends messages through HAProxy, one per connection, each until it
    gets a 250 (a closed connection or a 4xx: again, on a new connection),
    until stop is set and it has sent until messages.  Keeps (seq, queue
    ID, when the answering session began) and the number of failed tries."""

    def __init__(self, k, stop, deadline):
        super().__init__(daemon=True)
        self.k, self.stop, self.deadline = k, stop, deadline
        self.until = 0
        self.acked = []
        self.failures = 0
        self.error = None

    def run(self):
        try:
            seq = 0
            while not (self.stop.is_set() and seq >= self.until):
                check(time.monotonic() < self.deadline, "sender %d: message %d never got 250"
                      % (self.k, seq))
                began = time.monotonic()
                try:
                    with through(RELAY) as c:
                        reply = c.mail_tx("alice@example.org", [OURS],
                                          b"Subject: load %d-%d\r\n\r\nx\r\n" % (self.k, seq))
                    self.acked.append((seq, queued_id(reply), began))
                    seq += 1
                except (Failure, OSError):
                    self.failures += 1
                    time.sleep(0.2)
        except Exception as e:  # noqa: reported by the case
            self.error = e


@case
def test_kill_9_under_load():
    env()
    a, b, c = E.nodes
    deadline = time.monotonic() + 150
    stop = threading.Event()
    senders = [Sender(k, stop, deadline) for k in range(4)]
    for s in senders:
        s.start()
    try:
        # Kill a once it holds acknowledged mail and every sender is busy.
        while True:
            check(time.monotonic() < deadline - 60, "no acknowledged message reached node a")
            acked = {qid for s in senders for _, qid, _ in s.acked}
            if all(len(s.acked) >= 2 for s in senders) and acked & a.logged_ids():
                break
            time.sleep(0.05)
        a.kill9()
        killed = time.monotonic()
        # Five more messages each, all in sessions begun after the kill.
        for s in senders:
            s.until = len(s.acked) + 6
    finally:
        stop.set()
    for s in senders:
        s.join(max(1, deadline - time.monotonic()))
        check(not s.is_alive(), "sender %d did not finish" % s.k)
        if s.error:
            raise s.error
    queues = {n.name: n.ids() for n in E.nodes}   # a's read from its disk
    seen = {}
    for s in senders:
        eq(sorted(seq for seq, _, _ in s.acked), list(range(len(s.acked))),
           "sender %d's messages, each acknowledged once" % s.k)
        for seq, qid, began in s.acked:
            holders = [name for name, ids in queues.items() if qid in ids]
            eq(len(holders), 1, "queues holding %s (sender %d, message %d)" % (qid, s.k, seq))
            check(qid not in seen, "%s acknowledged twice" % qid)
            seen[qid] = holders[0]
            if began > killed:
                check(holders[0] != a.name, "%s: a session begun after the kill on node a" % qid)
    check(any(h == a.name for h in seen.values()), "no acknowledged message on node a")
    after = [seen[qid] for s in senders for _, qid, began in s.acked if began > killed]
    check(len(after) >= 4 * 5, "sessions begun after the kill: %d" % len(after))
    sys.stderr.write("kill-9-under-load: %d acknowledged, %d on a; %d failed tries; "
                     "after the kill: %s\n" % (len(seen), sum(h == a.name for h in seen.values()),
                                               sum(s.failures for s in senders),
                                               {h: after.count(h) for h in sorted(set(after))}))


# ------------------------------------------------------------ main

if __name__ == "__main__":
    moatlib.CASE_SECONDS = 180
    try:
        E.a = Node("a")
    except Failure as e:
        moatlib.report("node-start", False, str(e))
        sys.exit(1)
    moatlib.main()
