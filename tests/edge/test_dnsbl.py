"""tests/edge/test_dnsbl.py -- DNS blocklists against a real DNS server.

dnsmasq (Debian's) answers on a free port of 127.0.0.1 from its command
line only (no upstream, no hosts file; tests/deliver/sinklib.Dnsmasq):
2.0.0.127.zen.test is 127.0.0.2, so the client 127.0.0.2 is listed, as is
::1 under its 32 reversed nibbles; other names under .test are NXDOMAIN.
Clients come from 127.x source addresses and ::1.  A slow DNS server
(Python, answering "listed" three seconds late) and dead ones (a socket
that never answers, a port nobody listens on) show that a DNS failure
never refuses mail.

Checked: 554 5.7.1 naming the list at RCPT and in the greeting, exact;
IPv4 and IPv6; weights, threshold and an allowlist; the answer filter;
the cache (a listing for its record's TTL, "not listed" for
dnsbl-negative-ttl, counted in dnsmasq's own log); relay networks never
looked up; the log lines and counters.

ASAN_OK: run.sh runs this file against build/moat and build/moat-asan.

Run:  BUILD=build MOAT=build/moat /usr/bin/python3 tests/edge/test_dnsbl.py [case ...]
"""

import os
import re
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "smtp"))
sys.path.insert(0, os.path.join(HERE, "..", "deliver"))
from moatlib import HOST, Server, case, check, eq, free_port, main, queued_id  # noqa: E402
from sinklib import Dnsmasq  # noqa: E402
sys.path.insert(0, HERE)
from edgelib import check_counters, wait_log  # noqa: E402

SENDER_OK = "250 2.1.0 Sender OK"
RCPT_OK = "250 2.1.5 Recipient OK"
BLOCKED = "554 5.7.1 Service unavailable; client [%s] blocked using %s"
BLOCKED_GREETING = "554 5.7.1 %s Service unavailable; client [%%s] blocked using %%s" % HOST
V6_NAME = "1." + ".".join(["0"] * 31)   # ::1, its 32 nibbles reversed


def v4_name(addr, zone):
    return ".".join(reversed(addr.split("."))) + "." + zone


def v6_name(zone):
    return V6_NAME + "." + zone


# Listings.  zen.test: 127.0.0.2, 127.0.0.5 (also a relay network), ::1.
# a.test, b.test, wl.test: for scores.  b.test lists 127.0.0.9 with an
# answer its filter does not take.
LISTINGS = [
    (v4_name("127.0.0.2", "zen.test"), "127.0.0.2"),
    (v4_name("127.0.0.5", "zen.test"), "127.0.0.2"),
    (v6_name("zen.test"), "127.0.0.2"),
    (v4_name("127.0.0.6", "a.test"), "127.0.0.2"),
    (v4_name("127.0.0.7", "a.test"), "127.0.0.2"),
    (v4_name("127.0.0.7", "b.test"), "127.0.0.3"),
    (v4_name("127.0.0.8", "a.test"), "127.0.0.2"),
    (v4_name("127.0.0.8", "b.test"), "127.0.0.4"),
    (v4_name("127.0.0.8", "wl.test"), "127.0.2.1"),
    (v4_name("127.0.0.9", "a.test"), "127.0.0.2"),
    (v4_name("127.0.0.9", "b.test"), "127.0.0.12"),
    (v4_name("127.0.0.10", "err.test"), "127.255.255.254"),   # a list's error code
]
TTL = 3   # dnsmasq's --local-ttl: the TTL of every listing

_dns = {}


def dns():
    if "main" not in _dns:
        _dns["main"] = Dnsmasq(["--host-record=%s,%s" % (n, a) for n, a in LISTINGS] +
                               ["--local-ttl=%d" % TTL])
    return _dns["main"]


def queries(name):
    """How many times dnsmasq was asked for name (A)."""
    with open(dns().log_path, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    return len(re.findall(r"query\[A\] %s from " % re.escape(name), text))


def dnsbl_server(name, **extra):
    conf = {"dns-server": "127.0.0.1:%d" % dns().port, "dns-timeout": "2s",
            "dnsbl": "zen.test", "dnsbl-timeout": 2, "relay-network": "127.0.0.5"}
    conf.update({k.replace("_", "-"): v for k, v in extra.items()})
    return Server(name, conf)


_servers = {}


def shared_server(name, **extra):
    if name not in _servers:
        _servers[name] = dnsbl_server(name, **extra)
    return _servers[name]


def rcpt_reply(s, source=None, v6=False, rcpt="bob@example.test"):
    """EHLO, MAIL, RCPT from source: the RCPT reply."""
    with s.connect(v6=v6, source=source) as c:
        c.ehlo()
        eq(c.cmd("MAIL FROM:<a@example.org>", timeout=10), SENDER_OK, "MAIL from %s" % source)
        return c.cmd("RCPT TO:<%s>" % rcpt)


# ------------------------------------------------------------ at RCPT

@case
def test_listed_at_rcpt_v4():
    s = shared_server("rcpt")
    eq(rcpt_reply(s, "127.0.0.2"), BLOCKED % ("127.0.0.2", "zen.test"), "listed 127.0.0.2")
    wait_log(s, r"event=dnsbl addr=127\.0\.0\.2 reason=dnsbl-listed score=1 listed=zen\.test ")
    wait_log(s, r"event=reject addr=127\.0\.0\.2 sid=[0-9a-f]{16} code=554 reason=dnsbl stage=rcpt "
                r"lists=zen\.test to=<bob@example\.test>$")
    # not listed: mail flows
    with s.connect(source="127.0.0.3") as c:
        queued_id(c.mail_tx("a@example.org", ["bob@example.test"], b"Subject: clean\r\n\r\nx\r\n"))


@case
def test_listed_at_rcpt_v6():
    s = shared_server("rcpt")
    eq(rcpt_reply(s, v6=True), BLOCKED % ("::1", "zen.test"), "listed ::1")
    check(queries(v6_name("zen.test")) >= 1, "no query for %s" % v6_name("zen.test"))


@case
def test_relay_network_never_looked_up():
    s = shared_server("rcpt")
    before = queries(v4_name("127.0.0.5", "zen.test"))
    eq(rcpt_reply(s, "127.0.0.5", rcpt="far@elsewhere.test"), RCPT_OK, "relay from 127.0.0.5")
    eq(queries(v4_name("127.0.0.5", "zen.test")), before, "queries for a relay-network client")


# ------------------------------------------------------------ at connect

@case
def test_listed_at_connect():
    s = shared_server("connect", dnsbl_stage="connect")
    for src, v6, shown in (("127.0.0.2", False, "127.0.0.2"), (None, True, "::1")):
        with s.connect(source=src, v6=v6, greet=False) as c:
            eq(c.one(), BLOCKED_GREETING % (shown, "zen.test"), "greeting for %s" % shown)
            c.expect("EHLO c.test", "503 5.5.1 Bad sequence of commands")
            c.expect("MAIL FROM:<a@example.org>", "503 5.5.1 Bad sequence of commands")
            c.expect("QUIT", "221 2.0.0 %s closing connection" % HOST)
            c.closed()
    wait_log(s, r"event=reject addr=::1 sid=[0-9a-f]{16} code=554 reason=dnsbl stage=connect lists=zen\.test$")
    with s.connect(source="127.0.0.3") as c:   # 220 as usual
        queued_id(c.mail_tx("a@example.org", ["bob@example.test"], b"Subject: ok\r\n\r\nx\r\n"))


# ------------------------------------------------------------ scores

@case
def test_weights_threshold_allowlist_filter():
    s = shared_server("score", dnsbl=["a.test", "b.test=127.0.0.[2..11]",
                                      "wl.test=127.0.[0..255].[1..3]*-2", "err.test"],
                      dnsbl_threshold=2)
    eq(rcpt_reply(s, "127.0.0.6"), RCPT_OK, "in a.test only: score 1")
    eq(rcpt_reply(s, "127.0.0.7"), BLOCKED % ("127.0.0.7", "a.test, b.test"), "in a and b")
    eq(rcpt_reply(s, "127.0.0.8"), RCPT_OK, "in a, b and the allowlist: score 0")
    eq(rcpt_reply(s, "127.0.0.9"), RCPT_OK, "b.test's answer 127.0.0.12 is filtered out")
    eq(rcpt_reply(s, "127.0.0.10"), RCPT_OK, "127.255.255.254 is an error code, not a listing")
    wait_log(s, r"event=dnsbl addr=127\.0\.0\.8 reason=dnsbl-allowlisted score=0 "
                r"listed=a\.test,b\.test,wl\.test unanswered=0$")


# ------------------------------------------------------------ cache

@case
def test_cache_ttl():
    s = shared_server("cache", dnsbl_negative_ttl=1)
    listed, clean = v4_name("127.0.0.2", "zen.test"), v4_name("127.0.0.3", "zen.test")
    q0, c0 = queries(listed), queries(clean)
    eq(rcpt_reply(s, "127.0.0.2"), BLOCKED % ("127.0.0.2", "zen.test"), "first")
    eq(rcpt_reply(s, "127.0.0.3"), RCPT_OK, "clean, first")
    eq(rcpt_reply(s, "127.0.0.2"), BLOCKED % ("127.0.0.2", "zen.test"), "second, from the cache")
    eq(rcpt_reply(s, "127.0.0.3"), RCPT_OK, "clean, from the cache")
    eq((queries(listed) - q0, queries(clean) - c0), (1, 1), "queries within the TTLs")
    time.sleep(1.3)   # past dnsbl-negative-ttl 1, within the listing's TTL 3
    eq(rcpt_reply(s, "127.0.0.3"), RCPT_OK, "clean, asked again")
    eq(rcpt_reply(s, "127.0.0.2"), BLOCKED % ("127.0.0.2", "zen.test"), "listed, still cached")
    eq((queries(listed) - q0, queries(clean) - c0), (1, 2), "queries after 1.3 s")
    time.sleep(TTL + 0.2 - 1.3)
    eq(rcpt_reply(s, "127.0.0.2"), BLOCKED % ("127.0.0.2", "zen.test"), "listed, asked again")
    eq(queries(listed) - q0, 2, "queries for the listing after its TTL")


# ------------------------------------------------------------ slow and dead DNS

class SlowDns:
    """A DNS server on 127.0.0.1 that answers every A query "127.0.0.2"
    (listed, for anyone), delay seconds late."""

    def __init__(self, delay):
        self.delay = delay
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.asked = 0
        self.stopped = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self.stopped:
            try:
                q, peer = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(q) < 17:
                continue
            self.asked += 1
            end = q.index(b"\x00", 12) + 5            # the question: name, type, class
            answer = (q[:2] + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + q[12:end] +
                      b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x7f\x00\x00\x02")
            threading.Timer(self.delay, self._send, (answer, peer)).start()

    def _send(self, answer, peer):
        try:
            self.sock.sendto(answer, peer)
        except OSError:
            pass

    def stop(self):
        self.stopped = True


def timed_mail(s, source):
    """EHLO, then MAIL's reply and how long it took (the DNSBL wait)."""
    with s.connect(source=source) as c:
        c.ehlo()
        t0 = time.monotonic()
        r = c.cmd("MAIL FROM:<a@example.org>", timeout=10)
        dt = time.monotonic() - t0
        rc = c.cmd("RCPT TO:<bob@example.test>")
        return r, rc, dt


@case
def test_slow_dns_never_refuses():
    slow = SlowDns(3)
    try:
        s = dnsbl_server("slow", dns_server="127.0.0.1:%d" % slow.port, dns_timeout="5s",
                         dnsbl_timeout=1)
        r, rc, dt = timed_mail(s, "127.0.0.2")
        eq((r, rc), (SENDER_OK, RCPT_OK), "replies while the list is slow")
        check(0.8 <= dt < 2.0, "MAIL waited %.2f s for a list cut at 1 s" % dt)
        check(slow.asked >= 1, "the slow server was never asked")
        wait_log(s, r"event=dnsbl addr=127\.0\.0\.2 reason=dnsbl-timeout score=0 listed=- "
                    r"unanswered=1 unanswered_zones=zen\.test$")
        # the late answer is not cached: still not refused, asked again
        time.sleep(2.5)
        r, rc, _ = timed_mail(s, "127.0.0.2")
        eq(rc, RCPT_OK, "after the late answer came")
        check(slow.asked >= 2, "a late answer must not be cached: asked %d times" % slow.asked)
        s.stop()
    finally:
        slow.stop()


@case
def test_dead_dns_never_refuses():
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # bound, never read
    silent.bind(("127.0.0.1", 0))
    try:
        for name, port in (("silent", silent.getsockname()[1]), ("closed", free_port())):
            s = dnsbl_server("dead-" + name, dns_server="127.0.0.1:%d" % port,
                             dns_timeout="1s", dnsbl_timeout=1, dnsbl_stage="connect")
            t0 = time.monotonic()
            with s.connect(source="127.0.0.2") as c:   # 220, not 554
                dt = time.monotonic() - t0
                check(dt < 2.0, "greeting after %.2f s with dnsbl-timeout 1" % dt)
                queued_id(c.mail_tx("a@example.org", ["bob@example.test"],
                                    b"Subject: dns down\r\n\r\nx\r\n"))
            wait_log(s, r"event=dnsbl addr=127\.0\.0\.2 reason=dnsbl-timeout ")
            s.stop()
    finally:
        silent.close()


# ------------------------------------------------------------ counters

@case
def test_counters():
    s = dnsbl_server("counted", dnsbl_stage="connect")
    for src in ("127.0.0.2", "127.0.0.2", "127.0.0.3"):
        with s.connect(source=src, greet=False) as c:
            c.line()
    # the start-up probe from 127.0.0.1 is a client too: one more query
    check_counters(s, {"dnsbl-listed": 2, "dnsbl": 2, "dnsbl-timeout": 0, "dnsbl-query": 3,
                       "dnsbl-cached": 1})


if __name__ == "__main__":
    try:
        main()
    finally:
        for d in _dns.values():
            d.stop()
