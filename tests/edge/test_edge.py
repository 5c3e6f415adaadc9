"""tests/edge/test_edge.py -- the edge defenses against the real server,
IPv4 (127.0.0.1, and other 127.x sources) and IPv6 (::1): early talkers
and pipelining before EHLO, HELO and sender sanity, the tarpit (timed:
held replies slow one client and no other), each decision's log line
(addr= and reason=) and the counters the server logs at exit.

Exact replies are asserted.  ASAN_OK

Run:  BUILD=build MOAT=build/moat /usr/bin/python3 tests/edge/test_edge.py [case ...]
"""

import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "smtp"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tls"))
import moatlib  # noqa: E402
import tlslib  # noqa: E402
from moatlib import HOST, Server, case, check, eq, free_port, main, queued_id, shared  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from edgelib import check_counters, wait_log  # noqa: E402

EARLY = "554 5.5.0 %s protocol error: talked before the greeting" % HOST
PIPELINED = "554 5.5.0 %s protocol error: pipelining before EHLO" % HOST
HELO_INVALID = "501 5.5.2 <%s>: Helo command rejected: invalid name"
HELO_OURS = "550 5.7.1 <%s>: Helo command rejected: our own name or address"
SENDER_OURS = "550 5.7.1 <%s>: Sender address rejected: our own domain from an outside host"
UNRECOGNIZED = "500 5.5.1 Command unrecognized"
SENDER_OK = "250 2.1.0 Sender OK"
TOO_MANY = "421 4.7.0 %s Too many errors, closing connection" % HOST
EARLY_MS = 0.03   # timers count whole milliseconds: one may fire that much early


def scratch():
    """A directory of this process's own: run.sh runs the musl and the
    ASan runs of this file at once."""
    d = os.path.abspath(os.path.join(moatlib.BUILD, "t", "edge-%d" % os.getpid()))
    os.makedirs(d, exist_ok=True)
    return d


def edge_server():
    # relay only from 127.0.0.9: 127.0.0.1 and ::1 are outsiders
    return shared("edge", {"relay-network": "127.0.0.9", "reject-forged-sender": "on"})


# ------------------------------------------------------------ early talkers

@case
def test_early_talker_v6():
    s = shared("greet", {"greet-delay": 700})
    with s.connect(v6=True, greet=False) as c:
        c.send("EHLO early.test\r\n")
        eq(c.one(), EARLY, "reply to an early talker over IPv6")
        c.closed()
    wait_log(s, r"event=reject addr=::1 sid=[0-9a-f]{16} code=554 reason=early-talker$")
    # a client that waits gets the greeting after the delay, and service
    t0 = time.monotonic()
    with s.connect(v6=True) as c:
        dt = time.monotonic() - t0
        check(dt >= 0.7 - EARLY_MS, "220 after %.2f s with greet-delay 700 ms" % dt)
        queued_id(c.mail_tx("a@example.org", ["bob@example.test"], b"Subject: patient\r\n\r\nx\r\n"))


@case
def test_pipelining_before_ehlo():
    s = edge_server()
    for v6 in (False, True):
        with s.connect(v6=v6) as c:
            c.send("EHLO pipe.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<bob@example.test>\r\n")
            eq(c.one(), PIPELINED, "EHLO with MAIL behind it (%s)" % ("IPv6" if v6 else "IPv4"))
            c.closed()
    wait_log(s, r"event=reject addr=127\.0\.0\.1 sid=[0-9a-f]{16} code=554 reason=early-pipelining$")
    wait_log(s, r"event=reject addr=::1 sid=[0-9a-f]{16} code=554 reason=early-pipelining$")
    # HELO clients are never offered PIPELINING: the same
    with s.connect() as c:
        c.send("HELO pipe.test\r\nNOOP\r\n")
        eq(c.one(), PIPELINED, "HELO with NOOP behind it")
        c.closed()
    # waiting for the EHLO reply, then pipelining: what PIPELINING allows
    with s.connect() as c:
        c.ehlo("pipe.test")
        c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
        eq([c.one(), c.one(), c.one()],
           [SENDER_OK, "250 2.1.5 Recipient OK", "354 End data with <CR><LF>.<CR><LF>"],
           "pipelined after the EHLO reply")
        c.send("x\r\n.\r\nQUIT\r\n")
        queued_id(c.one())
    # a relay-network client may pipeline from the start
    with s.connect(source="127.0.0.9") as c:
        c.send("EHLO inside.test\r\nMAIL FROM:<a@example.org>\r\n")
        eq(c.reply()[-1], "250 SMTPUTF8", "EHLO from the relay network")
        eq(c.one(), SENDER_OK, "MAIL pipelined from the relay network")


# ------------------------------------------------------------ HELO

@case
def test_helo_invalid():
    s = edge_server()
    with s.connect() as c:
        for name in ("bad_name", "a..b", "[1.2.3]", "-x.test", "[IPv6:1::2::3]"):
            c.expect("EHLO %s" % name, HELO_INVALID % name)
        c.expect("HELO bad\x7fname", HELO_INVALID % "bad\\x7fname", "a control byte, escaped")
        c.expect("MAIL FROM:<a@example.org>", "503 5.5.1 Send HELO/EHLO first", "no HELO yet")
        c.ehlo("good.test")
        c.expect("MAIL FROM:<a@example.org>", SENDER_OK)
    wait_log(s, r"event=reject addr=127\.0\.0\.1 sid=[0-9a-f]{16} code=501 reason=helo-invalid helo=bad_name$")
    wait_log(s, r"event=reject addr=127\.0\.0\.1 sid=[0-9a-f]{16} code=503 reason=no-helo$")
    # off: the name is taken as it is
    t = shared("lax", {"reject-invalid-helo": "off", "reject-forged-helo": "off"})
    with t.connect() as c:
        c.expect("HELO bad_name", "250 %s" % HOST)
        c.expect("MAIL FROM:<a@example.org>", SENDER_OK)


@case
def test_helo_forged():
    s = edge_server()
    cases = [(False, "mx.test"), (False, "MX.TEST."), (False, "example.test"),
             (False, "[127.0.0.1]"), (False, "127.0.0.1"),      # the address it connected to
             (True, "[IPv6:::1]"), (True, "[IPv6:0:0::1]"), (True, "mx.test")]
    for v6, name in cases:
        with s.connect(v6=v6) as c:
            c.ehlo(name)   # accepted here: AUTH could still come
            c.expect("MAIL FROM:<a@example.org>", HELO_OURS % name, "HELO %s" % name)
            c.ehlo("honest.test")
            c.expect("MAIL FROM:<a@example.org>", SENDER_OK, "after an honest EHLO")
    wait_log(s, r"event=reject addr=::1 sid=[0-9a-f]{16} code=550 reason=helo-forged helo=\[IPv6:::1\]$")
    # from 127.0.0.2 to 127.0.0.1, "[127.0.0.2]" is the client's own address: fine
    with s.connect(source="127.0.0.2") as c:
        c.ehlo("[127.0.0.2]")
        c.expect("MAIL FROM:<a@example.org>", SENDER_OK)
    # the relay network may call itself anything
    with s.connect(source="127.0.0.9") as c:
        c.ehlo("mx.test")
        c.expect("MAIL FROM:<a@example.org>", SENDER_OK)
    # off
    with shared("lax", {"reject-invalid-helo": "off", "reject-forged-helo": "off"}).connect() as c:
        c.ehlo("mx.test")
        c.expect("MAIL FROM:<a@example.org>", SENDER_OK)


# ------------------------------------------------------------ MAIL FROM

@case
def test_sender_forged():
    s = edge_server()
    for v6 in (False, True):
        with s.connect(v6=v6) as c:
            c.ehlo()
            c.expect("MAIL FROM:<ceo@example.test>", SENDER_OURS % "ceo@example.test")
            c.expect("MAIL FROM:<ceo@Example.Test.>", SENDER_OURS % "ceo@example.test")
            c.expect("MAIL FROM:<>", SENDER_OK, "the null sender")
            c.expect("RSET", "250 2.0.0 OK")
            c.expect("MAIL FROM:<ceo@example.org>", SENDER_OK, "a foreign domain")
    wait_log(s, r"event=reject addr=127\.0\.0\.1 sid=[0-9a-f]{16} code=550 reason=sender-forged "
                r"from=<ceo@example\.test>$", 2)
    with s.connect(source="127.0.0.9") as c:
        c.ehlo()
        c.expect("MAIL FROM:<ceo@example.test>", SENDER_OK, "from the relay network")
    # off by default
    with shared("lax", {"reject-invalid-helo": "off", "reject-forged-helo": "off"}).connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<ceo@example.test>", SENDER_OK, "reject-forged-sender off")


@case
def test_authenticated_user_exempt():
    # HELO with our name and MAIL FROM our domain: refused on the mx port,
    # accepted from the same address once authenticated on submission
    d = scratch()
    mx, sub = free_port(), free_port()
    s = Server("edge-auth", {
        "listen": ["127.0.0.1:%d" % mx, "127.0.0.1:%d role=submission "
                   "auth-plaintext-loopback" % sub],
        "users": tlslib.users_file(os.path.join(d, "users-edge-auth")),
        "reject-forged-sender": "on"}, start=False)
    s.port4 = mx
    s.start()
    with s.connect() as c:
        c.ehlo("mx.test")
        c.expect("MAIL FROM:<alice@example.test>", HELO_OURS % "mx.test", "on the mx port")
        c.ehlo("honest.test")
        c.expect("MAIL FROM:<alice@example.test>", SENDER_OURS % "alice@example.test")
    with moatlib.Client("127.0.0.1", sub) as c:
        eq(c.line(), "220 %s ESMTP moat" % HOST, "submission greeting")
        c.ehlo("mx.test")
        c.expect("AUTH PLAIN " + tlslib.plain("alice", tlslib.PASSWORD),
                 "235 2.7.0 Authentication successful")
        c.expect("MAIL FROM:<alice@example.test>", SENDER_OK, "authenticated")


# ------------------------------------------------------------ tarpit

def timed(c, line):
    t0 = time.monotonic()
    r = c.cmd(line, timeout=5)
    return r, time.monotonic() - t0


@case
def test_tarpit():
    s = shared("tarpit", {"tarpit-after": 2, "tarpit-delay": 300, "tarpit-max-delay": 600,
                          "max-errors": 6})
    with s.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", SENDER_OK)
        # relay attempts: the first at once, then 300, 600, 600, 600 ms
        floors = [0, 0.3, 0.6, 0.6, 0.6]
        for i, floor in enumerate(floors):
            r, dt = timed(c, "RCPT TO:<victim%d@elsewhere.test>" % i)
            eq(r, "554 5.7.1 <victim%d@elsewhere.test>: Relay access denied" % i, "relay %d" % i)
            check(floor - EARLY_MS <= dt < floor + 0.25,
                  "relay attempt %d answered after %.3f s, want %.1f s"
                  % (i + 1, dt, floor))
            if i == 1:
                # while this client waits, others are served at once
                with s.connect(v6=True) as other:
                    r2, dt2 = timed(other, "NOOP")
                    eq(r2, "250 2.0.0 OK", "another client's NOOP")
                    check(dt2 < 0.2, "another client waited %.3f s" % dt2)
        # a good command is never held
        r, dt = timed(c, "RCPT TO:<bob@example.test>")
        eq(r, "250 2.1.5 Recipient OK", "a local recipient")
        check(dt < 0.2, "a good RCPT waited %.3f s" % dt)
        # the sixth error: 421 at once, and the end
        r, dt = timed(c, "BOGUS")
        eq(r, UNRECOGNIZED, "the sixth error")
        eq(c.one(timeout=1), TOO_MANY, "then 421")
        check(dt < 0.2, "the 421 waited %.3f s" % dt)
        c.closed()
    lines = wait_log(s, r"event=tarpit addr=127\.0\.0\.1 sid=[0-9a-f]{16} reason=tarpit errors=\d+ delay_ms=\d+$", 4)
    eq([re.search(r"delay_ms=(\d+)", ln).group(1) for ln in lines], ["300", "600", "600", "600"],
       "delays logged")
    # pipelined errors: each held in turn, in order, none lost
    with s.connect() as c:
        c.ehlo()
        t0 = time.monotonic()
        c.send("FOO\r\nBAR\r\nBAZ\r\nNOOP\r\n")
        eq([c.one(timeout=5) for _ in range(4)], [UNRECOGNIZED] * 3 + ["250 2.0.0 OK"],
           "pipelined replies")
        dt = time.monotonic() - t0
        check(0.9 - EARLY_MS <= dt < 1.5, "three errors, two held (300 + 600 ms): %.3f s" % dt)


@case
def test_tarpit_unknown_recipients():
    # a dictionary attack on a domain with a recipient list
    d = scratch()
    lst = os.path.join(d, "rcpts-edge-tarpit")
    with open(lst, "w") as f:
        f.write("bob\n")
    s = shared("tarpit-users", {"recipients": "example.test " + lst, "tarpit-after": 2,
                                "tarpit-delay": 250, "tarpit-max-delay": 250})
    with s.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", SENDER_OK)
        for i, floor in enumerate((0, 0.25, 0.25)):
            r, dt = timed(c, "RCPT TO:<guess%d@example.test>" % i)
            eq(r, "550 5.1.1 <guess%d@example.test>: User unknown" % i, "guess %d" % i)
            check(floor - EARLY_MS <= dt < floor + 0.2, "guess %d answered after %.3f s" % (i, dt))
        r, dt = timed(c, "RCPT TO:<bob@example.test>")
        eq(r, "250 2.1.5 Recipient OK", "a known recipient")
        check(dt < 0.2, "a known recipient waited %.3f s" % dt)


# ------------------------------------------------------------ counters

@case
def test_counters_at_exit():
    s = Server("counted", {"relay-network": "127.0.0.9", "greet-delay": 300,
                           "tarpit-after": 1, "tarpit-delay": 1, "max-errors": 3})
    with s.connect(greet=False) as c:
        c.send("EHLO x.test\r\n")
        eq(c.one(), EARLY, "early talker")
    with s.connect() as c:
        c.send("EHLO x.test\r\nNOOP\r\n")
        eq(c.one(), PIPELINED, "pipelining")
    with s.connect() as c:
        c.expect("EHLO x_y", HELO_INVALID % "x_y")
        c.expect("MAIL FROM:<a@example.org>", "503 5.5.1 Send HELO/EHLO first")
        c.ehlo("mx.test")
        eq(c.cmd("MAIL FROM:<a@example.org>"), HELO_OURS % "mx.test", "forged HELO")
        eq(c.one(), TOO_MANY, "the third error")
    check_counters(s, {"early-talker": 1, "early-pipelining": 1, "helo-invalid": 1, "no-helo": 1,
                       "helo-forged": 1, "sender-forged": 0, "tarpit": 2, "too-many-errors": 1,
                       "dnsbl-listed": 0, "dnsbl": 0})


if __name__ == "__main__":
    main()
