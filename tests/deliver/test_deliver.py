"""tests/deliver/test_deliver.py -- moat delivers: routes to real next hops
on 127.0.0.1 (Debian's aiosmtpd, a second moat, raw scripted servers),
retries, bounces (RFC 3464, checked with Python's email parser), hostile
replies, PIPELINING and dot-stuffing on the wire, kill -9 in the middle of
a delivery, recipient verification, and the queue admin commands against
a running server.  Retry schedules are seconds long here.

ASAN_OK
Run:  BUILD=build MOAT=build/moat /usr/bin/python3 tests/deliver/test_deliver.py [case ...]
"""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "smtp"))
import moatlib  # noqa: E402
from moatlib import Failure, Server, case, check, eq, free_port, queued_id  # noqa: E402
from sinklib import (RawServer, Sink, attempted, main, queue_state, read_data,  # noqa: E402
                     read_line, wait_for, wait_gone)

SENDER = "alice@sender.test"
FAST = {"retry-min": "1s", "retry-max": "2s", "timeout-reply": "5s", "timeout-connect": "3s",
        "dns-server": "127.0.0.1:1", "relay-network": "127.0.0.0/8", "delivery": "on"}

_dsn_sink = None


def dsn_sink():
    """One sink for every bounce: sender.test routes there."""
    global _dsn_sink
    if _dsn_sink is None:
        _dsn_sink = Sink()
    return _dsn_sink


def edge(name, routes, **extra):
    conf = dict(FAST)
    conf["route"] = ["sender.test [127.0.0.1]:%d" % dsn_sink().port] + routes
    conf.update({k.replace("_", "-"): v for k, v in extra.items()})
    return Server(name, conf)


def send(server, rcpts, body=b"Subject: test\r\n\r\nhello\r\n", sender=SENDER):
    with server.connect() as c:
        return queued_id(c.mail_tx(sender, rcpts, body))


def stored_body(data):
    """The message as the next hop got it, without the Received: headers
    the hops added (moat adds one per hop)."""
    while data.startswith(b"Received:"):
        i = data.index(b"\r\n")
        while data[i + 2:i + 3] in (b" ", b"\t"):
            i = data.index(b"\r\n", i + 2)
        data = data[i + 2:]
    return data


def dsns_for(qid):
    return [m for m in dsn_sink().messages if qid.encode() in m.data]


def report_parts(msg):
    """(text, delivery-status fields list, original headers) of a DSN."""
    eq(msg.get_content_type(), "multipart/report", "DSN content type")
    eq(msg.get_param("report-type"), "delivery-status", "report-type")
    parts = msg.get_payload()
    eq(len(parts), 3, "DSN parts")
    eq(parts[0].get_content_type(), "text/plain", "part 1")
    eq(parts[1].get_content_type(), "message/delivery-status", "part 2")
    eq(parts[2].get_content_type(), "text/rfc822-headers", "part 3")
    status = [dict(block.items()) for block in parts[1].get_payload()]
    return parts[0].get_payload(), status, parts[2].get_payload()


# ---------------------------------------------------------------- routes

@case
def test_route_one_transaction():
    sink = Sink()
    s = edge("route", ["example.test [127.0.0.1]:%d" % sink.port])
    sessions = sink.sessions     # aiosmtpd's own readiness check counts too
    body = (b"Subject: dots\r\n\r\n.leading dot\r\n..two\r\n.\r\nend\r\n")
    stuffed = b"".join(b"." + ln if ln.startswith(b".") else ln
                       for ln in body.splitlines(keepends=True))
    qid = send(s, ["bob@example.test", "carol@example.test", "dave@example.test"], stuffed)
    sink.wait_messages(1)
    wait_gone(s, qid)
    m = sink.messages[0]
    eq(sorted(m.rcpts), ["bob@example.test", "carol@example.test", "dave@example.test"],
       "recipients of the one transaction")
    eq(m.mail_from, SENDER, "envelope sender")
    eq(stored_body(m.data), body, "body after the Received: headers")
    check(m.data.startswith(b"Received: from "), "a Received: header first: %r" % m.data[:80])
    eq(sink.sessions - sessions, 1, "connections used")


@case
def test_second_moat():
    inner = Server("inner", {"hostname": "inner.test"})
    s = edge("edge2", ["example.test [127.0.0.1]:%d" % inner.port4])
    body = b"Subject: through two moats\r\n\r\nline\r\n"
    qid = send(s, ["bob@example.test"], body)
    wait_gone(s, qid)
    ids = inner.queue_list()
    eq(len(ids), 1, "messages at the inner moat")
    (iid, rcpts), = ids.items()
    eq(rcpts, ["bob@example.test"], "inner recipients")
    _, stored = inner.queued_message(iid)
    eq(stored_body(stored), body, "body at the inner moat")


@case
def test_smarthost():
    sink, other = Sink(), Sink()
    conf = dict(FAST, smarthost="[127.0.0.1]:%d" % sink.port)
    conf["route"] = ["example.test [127.0.0.1]:%d" % other.port]
    s = Server("smarthost", conf)
    qid = send(s, ["someone@foreign.example", "bob@example.test"])
    sink.wait_messages(1)
    other.wait_messages(1)
    wait_gone(s, qid)
    eq(sink.messages[0].rcpts, ["someone@foreign.example"], "smarthost recipients")
    eq(other.messages[0].rcpts, ["bob@example.test"], "route recipients")


@case
def test_concurrency_per_destination():
    sink = Sink()
    sink.data_delay = 0.4
    s = edge("conc", ["example.test [127.0.0.1]:%d" % sink.port],
             destination_concurrency=1)
    ids = [send(s, ["bob%d@example.test" % i]) for i in range(4)]
    sink.wait_messages(4)
    for qid in ids:
        wait_gone(s, qid)
    eq(sink.open_max, 1, "connections open at once to one destination")


# ---------------------------------------------------------------- failures

@case
def test_temporary_then_delivered():
    sink = Sink()
    sink.fail_first["bob@example.test"] = 2
    s = edge("retry", ["example.test [127.0.0.1]:%d" % sink.port])
    qid = send(s, ["bob@example.test"])
    st = wait_for(lambda: attempted(s, qid, "bob@example.test"), 10, "a deferral")
    eq(st[0], "pending", "state after a 451")
    check("451 4.3.0" in st[2], "the 451 kept as last error: %r" % (st,))
    sink.wait_messages(1, 20)
    wait_gone(s, qid)
    eq(sink.rcpt_count["bob@example.test"], 3, "RCPTs: two refused, one taken")
    eq(dsns_for(qid), [], "no bounce for a deferral")


@case
def test_permanent_failure_dsn():
    sink = Sink()
    s = edge("perm", ["example.test [127.0.0.1]:%d" % sink.port])
    body = b"Subject: perm test\r\nMessage-ID: <perm.1@sender.test>\r\n\r\nbody\r\n"
    qid = send(s, ["perm-user@example.test", "bob@example.test"], body)
    sink.wait_messages(1)
    wait_gone(s, qid)
    eq(sink.messages[0].rcpts, ["bob@example.test"], "the good recipient delivered")
    dsn = wait_for(lambda: dsns_for(qid), 20, "the bounce at the sender's sink")
    eq(len(dsn), 1, "bounces")
    m = dsn[0]
    check(m.mail_from in ("", "<>"), "a bounce comes from <>: %r" % m.mail_from)
    eq(m.rcpts, [SENDER], "to the envelope sender")
    msg = m.parsed()
    eq(msg["To"], "<%s>" % SENDER, "To:")
    check(msg["From"].startswith("Mail Delivery System <MAILER-DAEMON@"), "From: %r" % msg["From"])
    eq(msg["Auto-Submitted"], "auto-replied", "Auto-Submitted")
    text, status, headers = report_parts(msg)
    check("perm-user@example.test" in text, "the text names the recipient")
    eq(status[0]["Reporting-MTA"], "dns; mx.test", "Reporting-MTA")
    eq(status[0]["X-Moat-Queue-ID"], qid, "the original's ID")
    eq(len(status), 2, "one recipient block")
    r = status[1]
    eq(r["Final-Recipient"], "rfc822; perm-user@example.test", "Final-Recipient")
    eq(r["Action"], "failed", "Action")
    eq(r["Status"], "5.1.1", "Status")
    check(r["Diagnostic-Code"].startswith("smtp; 550 5.1.1"), "Diagnostic-Code %r" % r)
    eq(r["Remote-MTA"], "dns; [127.0.0.1]", "Remote-MTA: the route's address, as a literal")
    eq(r["X-Remote-MTA-Address"], "127.0.0.1", "the address in a field of its own")
    check("Subject: perm test" in headers and "Message-ID: <perm.1@sender.test>" in headers,
          "original headers in part 3: %r" % headers[:300])
    check("body" not in headers.split("\n")[-3:], "no body in part 3")


@case
def test_null_sender_never_bounced():
    sink = Sink()
    s = edge("nullsender", ["example.test [127.0.0.1]:%d" % sink.port])
    before = len(dsn_sink().messages)
    qid = send(s, ["perm-x@example.test"], sender="")
    wait_gone(s, qid)
    time.sleep(1.5)
    eq(len(dsn_sink().messages), before, "bounces of a bounce")
    eq(dsns_for(qid), [], "no DSN")


@case
def test_next_hop_down_then_up():
    port = free_port()
    s = edge("down", ["example.test [127.0.0.1]:%d" % port])
    qid = send(s, ["bob@example.test"])
    st = wait_for(lambda: attempted(s, qid, "bob@example.test", 2), 15, "two failed attempts")
    check("connect to" in st[2] and "refused" in st[2], "the connect error kept: %r" % (st,))
    sink = Sink(port=port)
    sink.wait_messages(1, 15)
    wait_gone(s, qid)


@case
def test_lifetime_expires():
    sink = Sink()
    s = edge("expire", ["example.test [127.0.0.1]:%d" % sink.port], queue_lifetime="3s")
    qid = send(s, ["temp-always@example.test"])
    wait_gone(s, qid, 20)
    dsn = wait_for(lambda: dsns_for(qid), 15, "the expiry bounce")
    _, status, _ = report_parts(dsn[0].parsed())
    eq(status[1]["Action"], "failed", "Action")
    eq(status[1]["Status"], "4.4.7", "Status of an expiry")
    check("expired" in status[1]["Diagnostic-Code"] and "451" in status[1]["Diagnostic-Code"],
          "the last error in the diagnostic: %r" % status[1])
    check(sink.rcpt_count["temp-always@example.test"] >= 2, "tried more than once")


@case
def test_delay_warning_once():
    sink = Sink()
    s = edge("delay", ["example.test [127.0.0.1]:%d" % sink.port], delay_warning="1s",
             queue_lifetime="1h")
    qid = send(s, ["temp-slow@example.test"])
    dsn = wait_for(lambda: dsns_for(qid), 15, "a delay warning")
    msg = dsn[0].parsed()
    check("Delayed" in msg["Subject"], "Subject %r" % msg["Subject"])
    _, status, _ = report_parts(msg)
    eq(status[1]["Action"], "delayed", "Action")
    check("Will-Retry-Until" in status[1], "Will-Retry-Until %r" % status[1])
    n = sink.rcpt_count["temp-slow@example.test"]
    wait_for(lambda: sink.rcpt_count["temp-slow@example.test"] >= n + 2, 15, "two more tries")
    eq(len(dsns_for(qid)), 1, "delay warnings")
    check(qid in queue_state(s), "the message still waits")
    eq(s.moat("queue", "delete", "-c", s.conf_path, qid).returncode, 0, "delete")


# ---------------------------------------------------------------- the wire

def pipelining_play(expect_data):
    def play(c, srv):
        buf = [b""]
        c.sendall(b"220 raw ESMTP\r\n")
        read_line(c, buf)                                    # EHLO
        c.sendall(b"250-raw\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
        lines = []
        deadline = time.monotonic() + 3
        c.settimeout(0.2)
        while len(lines) < 4 and time.monotonic() < deadline:
            try:
                lines.append(read_line(c, buf))
            except socket.timeout:
                pass
        c.settimeout(10)
        srv.log.append(("group", [ln.split(b":")[0].split(b" ")[0] for ln in lines]))
        if len(lines) < 4:
            return
        c.sendall(b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n354 go\r\n")
        srv.log.append(("data", read_data(c, buf)))
        c.sendall(b"250 2.0.0 done\r\n")
        srv.log.append(("after", read_line(c, buf)))
    return play


@case
def test_pipelining_and_dot_stuffing_on_the_wire():
    body = b"Subject: wire\r\n\r\n.one\r\n..two\r\n. \r\nlast line\r\n"
    stuffed = b"".join(b"." + ln if ln.startswith(b".") else ln
                       for ln in body.splitlines(keepends=True))
    raw = RawServer(pipelining_play(stuffed))
    s = edge("pipe", ["example.test [127.0.0.1]:%d" % raw.port])
    qid = send(s, ["a@example.test", "b@example.test"], stuffed)
    wait_gone(s, qid)
    # The connection is kept for the next message to this destination
    # (delivery-connection-idle, 2 s by default), then QUIT.
    wait_for(lambda: "after" in dict(raw.log), 8, "QUIT once the kept connection idled out")
    log = dict(raw.log)
    eq(log.get("group"), [b"MAIL", b"RCPT", b"RCPT", b"DATA\r\n"], "one pipelined group")
    data = log["data"]
    check(data.endswith(stuffed + b".\r\n"), "stuffed body on the wire: %r" % data[-120:])
    for i, ch in enumerate(data):
        if ch == 0x0a:
            check(i > 0 and data[i - 1] == 0x0d, "bare LF at %d" % i)
        if ch == 0x0d:
            check(data[i + 1:i + 2] == b"\n", "bare CR at %d" % i)
    eq(log.get("after"), b"QUIT\r\n", "QUIT after the message")
    eq(raw.errors, [], "server errors")


def hostile(script):
    def play(c, srv):
        buf = [b""]
        for item in script:
            if item == "read":
                read_line(c, buf)
            elif item == "close":
                return
            elif isinstance(item, float):
                time.sleep(item)
            else:
                c.sendall(item)
        time.sleep(8)      # hold the line open: the client must time out or give up
    return play


HOSTILE = [
    ("overlong", [b"220 " + b"x" * 5000 + b"\r\n"], "protocol error"),
    ("nul", [b"220 hi\x00there\r\n"], "protocol error"),
    ("no-line-end", [b"220 hello", 0.3, "close"], "closed"),
    ("mixed-codes", [b"220 ok\r\n", "read", b"250-a\r\n251 b\r\n"], "protocol error"),
    ("endless", [b"220 ok\r\n", "read", b"250-x\r\n" * 60], "protocol error"),
    ("bare-cr", [b"220 ok\r\n", "read", b"250 a\rb\r\n"], "protocol error"),
    ("silent", [], "timeout"),
]


@case
def test_hostile_replies():
    raws = {name: RawServer(hostile(script)) for name, script, _ in HOSTILE}
    routes = ["%s.test [127.0.0.1]:%d" % (name, raws[name].port) for name in raws]
    s = edge("hostile", routes, timeout_reply="2s")
    ids = {name: send(s, ["victim@%s.test" % name]) for name, _, _ in HOSTILE}
    for name, _, want in HOSTILE:
        addr = "victim@%s.test" % name
        st = wait_for(lambda: attempted(s, ids[name], addr), 20, "a failed attempt at %s" % name)
        eq(st[0], "pending", "%s: deferred, never bounced" % name)
        check(want in st[2], "%s: error %r lacks %r" % (name, st[2], want))
    check(s.alive(), "the server survived")
    with s.connect() as c:
        c.expect("NOOP", "250 2.0.0 OK")


# ---------------------------------------------------------------- crash

@case
def test_kill_during_delivery_loses_nothing():
    state = {"stall": True, "got": 0, "acked": 0}

    def play(c, srv):
        buf = [b""]
        c.sendall(b"220 raw\r\n")
        while True:
            line = read_line(c, buf)
            verb = line[:4].upper()
            if verb == b"DATA":
                c.sendall(b"354 go\r\n")
                read_data(c, buf)
                state["got"] += 1
                if state["stall"]:
                    time.sleep(9)        # never answers the end of data
                    return
                state["acked"] += 1
                c.sendall(b"250 2.0.0 taken\r\n")
            elif verb == b"QUIT":
                c.sendall(b"221 bye\r\n")
                return
            else:
                c.sendall(b"250 ok\r\n")

    raw = RawServer(play)
    s = edge("kill", ["example.test [127.0.0.1]:%d" % raw.port])
    qid = send(s, ["bob@example.test"], b"Subject: survive\r\n\r\n" + b"x" * 200000 + b"\r\n")
    wait_for(lambda: state["got"] >= 1, 15, "the message sent, its end not answered")
    s.kill()
    eq(list(s.queue_list()), [qid], "queue after kill -9 in the middle of a delivery")
    state["stall"] = False
    s.start()
    wait_gone(s, qid, 20)
    eq(state["acked"], 1, "delivered once it was answered")
    check(state["got"] >= 2, "sent again after the restart (a duplicate, not a loss)")


# ---------------------------------------------------------------- verify

@case
def test_recipient_verification():
    sink = Sink()
    dead = free_port()

    def mute(c, srv):
        time.sleep(8)       # connects, never greets

    silent = RawServer(mute)
    s = edge("verify", ["example.test [127.0.0.1]:%d verify-recipients" % sink.port,
                        "down.test [127.0.0.1]:%d verify-recipients" % dead,
                        "slow.test [127.0.0.1]:%d verify-recipients" % silent.port],
             timeout_verify="2s")
    with s.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Sender OK")
        c.expect("RCPT TO:<known@example.test>", "250 2.1.5 Recipient OK")
        r = c.cmd("RCPT TO:<perm-nobody@example.test>")
        eq(r, "550 5.1.1 <perm-nobody@example.test>: Recipient address rejected: User unknown",
           "an unknown user refused at RCPT")
        r = c.cmd("RCPT TO:<perm-nobody@example.test>")
        check(r.startswith("550 5.1.1"), "again: %r" % r)
        eq(sink.rcpt_count["perm-nobody@example.test"], 1, "the second answer came from the cache")
        r = c.cmd("RCPT TO:<temp-busy@example.test>")
        check(r.startswith("451 4.4.3"), "a 4xx at the next hop is a 451: %r" % r)
        r = c.cmd("RCPT TO:<x@down.test>")
        check(r.startswith("451 4.4.3"), "next hop down: 451, never 550: %r" % r)
        t0 = time.monotonic()
        r = c.cmd("RCPT TO:<x@slow.test>", timeout=10)
        check(r.startswith("451 4.4.3"), "a probe that times out: 451: %r" % r)
        check(time.monotonic() - t0 < 6, "answered within timeout-verify")
        eq(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>", "DATA with the one taken")
        c.send(b"Subject: v\r\n\r\nx\r\n.\r\n")
        qid = queued_id(c.one(timeout=10))
    sink.wait_messages(1)
    eq(sink.messages[0].rcpts, ["known@example.test"], "only the verified recipient")
    wait_gone(s, qid)


# ---------------------------------------------------------------- admin

def admin(s, *args):
    r = s.moat("queue", *args[:1], "-c", s.conf_path, *args[1:])
    return r.returncode, r.stdout.decode(), r.stderr.decode()


@case
def test_queue_admin_running_server():
    port = free_port()
    s = edge("admin", ["example.test [127.0.0.1]:%d" % port], retry_min="30s", retry_max="60s")
    qid = send(s, ["bob@example.test"])
    wait_for(lambda: attempted(s, qid, "bob@example.test"), 10, "a first attempt")
    r = s.moat("queue", "list", "-c", s.conf_path).stdout.decode()
    check("<bob@example.test> pending attempts=1 next=20" in r and "error=\"4.4.1 connect to" in r,
          "list shows state, attempts, next try, last error: %r" % r)
    eq(admin(s, "hold", qid)[:2], (0, "%s held\n" % qid), "hold")
    check(queue_state(s)[qid]["held"], "list says held")
    rc, out, _ = admin(s, "retry", qid)
    eq((rc, out), (0, "%s is held: release it first\n" % qid), "retry of a held message")
    eq(admin(s, "release", qid)[:2], (0, "%s released\n" % qid), "release")
    check(not queue_state(s)[qid]["held"], "no longer held")
    sink = Sink(port=port)
    eq(admin(s, "retry", qid)[:2], (0, "%s due now\n" % qid), "retry")
    sink.wait_messages(1, 10)
    wait_gone(s, qid)
    # flush: everything waiting goes now
    sink.stop()
    qid2 = send(s, ["carol@example.test"])
    wait_for(lambda: attempted(s, qid2, "carol@example.test"), 10, "a failed attempt")
    sink.start()
    rc, out, _ = admin(s, "flush")
    eq((rc, out), (0, "1 waiting message due now\n"), "flush")
    wait_gone(s, qid2)
    # delete, and what a missing or malformed ID gets
    sink.stop()
    qid3 = send(s, ["dave@example.test"])
    eq(admin(s, "delete", qid3)[:2], (0, "%s deleted\n" % qid3), "delete")
    check(qid3 not in queue_state(s), "deleted")
    rc, _, err = admin(s, "delete", qid3)
    eq(rc, 1, "delete of a missing message: exit status")
    check("no such message" in err, "stderr %r" % err)
    eq(admin(s, "hold", "xyz")[0], 100, "a malformed ID")
    eq(admin(s, "hold")[0], 100, "no ID")
    eq(admin(s, "frobnicate", qid3)[0], 100, "an unknown subcommand")
    # the server stopped: the same commands act on the queue directly
    qid4 = send(s, ["erin@example.test"])
    s.stop()
    rc, out, _ = admin(s, "hold", qid4)
    eq(rc, 0, "hold without a server")
    check("no server running" in out, "says so: %r" % out)
    check(queue_state(s)[qid4]["held"], "held on disk")
    eq(admin(s, "delete", qid4)[0], 0, "delete without a server")
    eq(queue_state(s), {}, "queue empty")


if __name__ == "__main__":
    main()
