"""tests/limits/test_connections.py -- connection and session limits
against the real server: a thousand idle and byte-a-second connections
while a well-behaved client is served, connections per client, messages
per connection, and the timeouts that cut a client that drips bytes.

The flood comes from many loopback addresses (127.1.x.y: all of 127/8 is
loopback on Linux), 20 connections each, under the default
max-connections-per-client.  The resident size of moat with the flood
open is printed ("rss: ...") for the record.

ASAN_OK: run.sh runs this file against build/moat and build/moat-asan.

Run:  BUILD=build MOAT=build/moat /usr/bin/python3 tests/limits/test_connections.py [case ...]
"""

import os
import re
import resource
import select
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "smtp"))
from moatlib import (HOST, Failure, Server, case, check, eq, main,  # noqa: E402
                     queued_id, shared)

FLOOD = 1000
PER_ADDRESS = 20
TIMEOUT = "421 4.4.2 %s Timeout, closing connection" % HOST
RSS_LIMIT_KB = 64 * 1024    # 1000 sessions of ~10 KiB each, and the rest


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise Failure("no VmRSS for pid %d" % pid)


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        check(hard == resource.RLIM_INFINITY or hard >= need,
              "descriptor hard limit %d is below the %d this test needs" % (hard, need))
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def count_in_log(s, word):
    return len(re.findall(word, s.stderr(tail=1 << 24)))


def wait_log(s, word, n, seconds):
    deadline = time.monotonic() + seconds
    while count_in_log(s, word) < n:
        check(time.monotonic() < deadline, "fewer than %d %r in the log after %ds"
              % (n, word, seconds))
        time.sleep(0.1)


def raw_connect(s, source):
    k = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    k.settimeout(10)
    k.bind((source, 0))
    k.connect(("127.0.0.1", s.port4))
    k.setblocking(False)
    return k


class Dripper(threading.Thread):
    """Sends one byte a second to each socket until stopped."""

    def __init__(self, socks, byte=b"x"):
        super().__init__(daemon=True)
        self.socks, self.byte = socks, byte
        self.halt = threading.Event()
        self.sent = 0

    def run(self):
        while not self.halt.wait(1.0):
            for k in self.socks:
                try:
                    k.send(self.byte)
                    self.sent += 1
                except OSError:
                    pass


@case
def test_flood_of_idle_and_slow_clients():
    raise_nofile(FLOOD + 256)
    # the drippers pipeline EHLO..DATA without reading: let them (tests/edge)
    s = Server("flood", {"timeout-command": 60, "timeout-data": 60,
                         "reject-early-pipelining": "off"})
    socks = []
    drip = None
    try:
        for i in range(FLOOD):
            socks.append(raw_connect(s, "127.1.%d.%d" % (i // PER_ADDRESS // 250,
                                                          i // PER_ADDRESS % 250 + 1)))
        wait_log(s, r"event=connect ", FLOOD + 1, 30)   # + the start-up probe
        time.sleep(0.5)
        idle = rss_kb(s.proc.pid)
        print("rss: moat VmRSS %d kB with %d concurrent idle connections" % (idle, FLOOD),
              flush=True)
        # A quarter drip an endless command line, a quarter drip message
        # data after DATA; the other half say nothing at all.
        for k in socks[:FLOOD // 4]:
            k.send(b"EHLO ")
        for k in socks[FLOOD // 4:FLOOD // 2]:
            k.send(b"EHLO slow.test\r\nMAIL FROM:<a@example.org>\r\n"
                   b"RCPT TO:<bob@example.test>\r\nDATA\r\n")
        drip = Dripper(socks[:FLOOD // 2])
        drip.start()
        time.sleep(1.5)
        rss = rss_kb(s.proc.pid)
        print("rss: moat VmRSS %d kB with %d concurrent connections (%d idle, %d dripping)"
              % (rss, FLOOD, FLOOD // 2, FLOOD // 2), flush=True)
        check(max(idle, rss) < RSS_LIMIT_KB, "VmRSS %d kB with %d connections" % (rss, FLOOD))
        # The well-behaved client: 220 at once, and its mail queued.
        for i in range(3):
            t0 = time.monotonic()
            with s.connect(timeout=5) as c:
                dt = time.monotonic() - t0
                check(dt < 2, "220 after %.2f s under the flood" % dt)
                qid = queued_id(c.mail_tx("good@example.org", ["bob@example.test"],
                                          b"Subject: through the flood %d\r\n\r\nhello\r\n" % i))
                c.expect("QUIT", "221 2.0.0 %s closing connection" % HOST)
            eq(s.queued_message(qid)[1],
               b"Subject: through the flood %d\r\n\r\nhello\r\n" % i, "stored %s" % qid)
        check(drip.sent >= FLOOD // 2, "the dripper sent only %d bytes" % drip.sent)
        check(s.alive(), "moat died under the flood")
        # Nothing of the flood was cut yet: each is within its timeouts.
        eq(count_in_log(s, r"reason=timeout"), 0, "timeouts during the flood")
    finally:
        if drip:
            drip.halt.set()
            drip.join(5)
        for k in socks:
            k.close()
    wait_log(s, r"event=disconnect ", FLOOD + 3 + 1, 30)
    eq(len(s.queue_list()), 3, "queued: the well-behaved client's three")


@case
def test_connections_per_client():
    s = Server("perclient", {"max-connections-per-client": 3})
    time.sleep(0.3)   # the start-up probe has gone
    a = [s.connect(source="127.0.0.5") for _ in range(3)]
    try:
        with s.connect(source="127.0.0.5", greet=False) as c:
            eq(c.one(), "421 4.7.0 %s Too many connections from your address, try again later"
               % HOST, "fourth connection from one address")
            c.closed()
        with s.connect(source="127.0.0.6") as c:   # another client: served
            c.expect("NOOP", "250 2.0.0 OK")
        a[0].expect("NOOP", "250 2.0.0 OK")
        a.pop(0).close()
        deadline = time.monotonic() + 5
        while True:   # the close reaches moat soon; a new one is served
            with s.connect(source="127.0.0.5", greet=False) as c:
                r = c.one()
                if r.startswith("220 ") or time.monotonic() > deadline:
                    eq(r, "220 %s ESMTP moat" % HOST, "connection after one closed")
                    break
            time.sleep(0.1)
    finally:
        for c in a:
            c.close()
    check(re.search(r"addr=127\.0\.0\.5 sid=[0-9a-f]{16} code=421 reason=max-connections-per-client",
                    s.stderr()), "no log of the refusal")


@case
def test_messages_per_connection():
    s = Server("permsg", {"max-messages-per-connection": 2})
    with s.connect() as c:
        c.ehlo()
        for i in range(2):
            queued_id(c.mail_tx("a@example.org", ["bob@example.test"], b"m %d\r\n" % i,
                                ehlo=False))
        eq(c.cmd("MAIL FROM:<a@example.org>"),
           "421 4.7.0 %s Too many messages in one connection, closing" % HOST, "third MAIL")
        c.closed()
    with s.connect() as c:   # a new connection starts again
        queued_id(c.mail_tx("a@example.org", ["bob@example.test"], b"m 3\r\n"))
    eq(len(s.queue_list()), 3, "queued")


def drip_until_reply(c, data, every, seconds):
    """Send data one byte at a time, every `every` seconds, until a reply
    line comes; returns (line, seconds taken)."""
    t0 = time.monotonic()
    i = 0
    while time.monotonic() - t0 < seconds:
        if i < len(data):
            try:
                c.sock.send(data[i:i + 1])
            except OSError:
                pass
            i += 1
        r, _, _ = select.select([c.sock], [], [], every)
        if r:
            return c.line(timeout=2), time.monotonic() - t0
    raise Failure("no reply in %ds of dripping %d bytes" % (seconds, i))


def drip_server():
    return shared("drip", {"timeout-command": 2, "timeout-data": 2, "timeout-data-total": 3})


@case
def test_dripped_command_line_cut():
    with drip_server().connect() as c:
        c.ehlo()
        line, dt = drip_until_reply(c, b"NOOP " + b"x" * 100, 0.3, 10)
        eq(line, TIMEOUT, "a command line dripped a byte every 0.3 s")
        check(1.5 <= dt <= 5, "cut after %.1f s with timeout-command 2" % dt)
        c.closed()


@case
def test_dripped_long_line_cut():
    # Past 2048 octets moat throws the line away as it comes; that must not
    # count as activity either.
    with drip_server().connect() as c:
        c.ehlo()
        c.send(b"NOOP " + b"y" * 3000)
        line, dt = drip_until_reply(c, b"y" * 100, 0.3, 10)
        eq(line, TIMEOUT, "an over-long line dripped")
        check(dt <= 5, "cut after %.1f s with timeout-command 2" % dt)
        c.closed()


@case
def test_dripped_data_cut_by_total():
    s = drip_server()
    before = s.queue_list()
    with s.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", "250 2.1.0 Sender OK")
        c.expect("RCPT TO:<bob@example.test>", "250 2.1.5 Recipient OK")
        eq(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>", "DATA")
        # a byte every 0.5 s never trips timeout-data (2 s between reads)
        line, dt = drip_until_reply(c, b"Subject: slow\r\n\r\n" + b"z" * 100, 0.5, 12)
        eq(line, TIMEOUT, "DATA dripped a byte every 0.5 s")
        check(2.5 <= dt <= 6, "cut after %.1f s with timeout-data-total 3" % dt)
        c.closed()
    eq(sorted(s.queue_list()), sorted(before), "queue after the cut")
    check(not s.incoming(), "spool left: %r" % s.incoming())



if __name__ == "__main__":
    main()
