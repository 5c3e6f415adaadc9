"""tests/deliver/test_loop.py -- mail loops (RFC 5321 6.3): a message that
arrives with more `Received:` fields than `max-hops` is refused at the
end of DATA (554 5.4.6, never accepted and bounced); a next hop that
greets or answers EHLO with our own host name is ourselves (the
recipient bounces at once, 5.4.6); a route to one of our own listeners
is a loop too; and two moats relaying to each other stop at max-hops
with one bounce to the sender.  (An MX that is moat itself:
tests/deliver/test_mx.py, in a network namespace for port 25.)

Bounces go to an aiosmtpd sink and are read with Python's email parser.

ASAN_OK
Run:  BUILD=build MOAT=build/moat /usr/bin/python3 tests/deliver/test_loop.py [case ...]
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "smtp"))
from moatlib import Server, case, check, eq, queued_id  # noqa: E402
from sinklib import FAST, SENDER, Sink, log_text, main, wait_for, wait_gone  # noqa: E402


_bounces = []


def bounces():
    """The sink that takes mail for sender.test (the bounces)."""
    if not _bounces:
        _bounces.append(Sink())
    return _bounces[0]


def relay(name, routes, **extra):
    conf = dict(FAST)
    conf["route"] = ["sender.test [127.0.0.1]:%d" % bounces().port] + routes
    conf.update({k.replace("_", "-"): v for k, v in extra.items()})
    return Server(name, conf)


def headers(n):
    return "".join("Received: from hop%d.test by hop%d.test; Mon, 7 Dec 2026 10:00:00 +0000\r\n"
                   % (i, i + 1) for i in range(n))


def dsn_for(qid, seconds=30):
    """The one bounce that names qid: (its status fields, all of them)."""
    sink = bounces()
    got = wait_for(lambda: [m for m in sink.messages if qid.encode() in m.data], seconds,
                   "the bounce for %s" % qid)
    eq(len(got), 1, "bounces for %s" % qid)
    msg = got[0].parsed()
    eq(msg.get_content_type(), "multipart/report", "a DSN")
    status = msg.get_payload()[1].get_payload()
    return dict(status[1].items()), got


def accepted(server):
    return log_text(server).count("event=accept ")


@case
def test_too_many_hops_refused_at_end_of_data():
    s = Server("hops", {"max-hops": 5})
    with s.connect() as c:
        c.ehlo()
        for n, want in ((5, "250 "), (6, "554 5.4.6 Too many hops")):
            eq(c.cmd("MAIL FROM:<%s>" % SENDER), "250 2.1.0 Sender OK", "MAIL")
            eq(c.cmd("RCPT TO:<bob@example.test>"), "250 2.1.5 Recipient OK", "RCPT")
            eq(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>", "DATA")
            c.send(headers(n) + "Subject: hops\r\n\r\nbody\r\nReceived: in the body\r\n.\r\n")
            r = c.one(timeout=10)
            check(r.startswith(want), "%d Received: fields: %r" % (n, r))
        # the session goes on
        eq(c.cmd("NOOP")[:3], "250", "NOOP after the refusal")
    eq(len(s.queue_list()), 1, "only the message within the limit was queued")
    log = log_text(s)
    check("reason=too-many-hops hops=6 max=5" in log, "logged: %r" % log[-600:])


@case
def test_default_max_hops_is_100():
    s = Server("hops100")
    with s.connect() as c:
        c.ehlo()
        for n, code in ((100, "250"), (101, "554")):
            eq(c.cmd("MAIL FROM:<%s>" % SENDER)[:3], "250", "MAIL")
            eq(c.cmd("RCPT TO:<bob@example.test>")[:3], "250", "RCPT")
            eq(c.cmd("DATA")[:3], "354", "DATA")
            c.send(headers(n) + "\r\nbody\r\n.\r\n")
            eq(c.one(timeout=10)[:3], code, "%d hops" % n)


@case
def test_next_hop_with_our_name():
    # the next hop greets with our host name (a NAT, a copy of our config)
    other = Server("twin", {"hostname": "mx.test"})
    s = relay("named", ["example.test [127.0.0.1]:%d" % other.port4])
    with s.connect() as c:
        qid = queued_id(c.mail_tx(SENDER, ["bob@example.test"], "Subject: twin\r\n\r\nx\r\n"))
    wait_gone(s, qid)
    st, _ = dsn_for(qid)
    eq(st["Status"], "5.4.6", "Status")
    check("mail for example.test loops back to myself" in st["Diagnostic-Code"], "%r" % st)
    eq(other.queue_list(), {}, "nothing handed to the twin")


@case
def test_route_to_our_own_listener():
    s = Server("ownroute", dict(FAST), start=False)
    with open(s.conf_path, "a") as f:
        f.write("route example.test [127.0.0.1]:%d\n" % s.port4)
        f.write("route sender.test [127.0.0.1]:%d\n" % bounces().port)
    s.start()
    with s.connect() as c:
        qid = queued_id(c.mail_tx(SENDER, ["bob@example.test"], "Subject: own\r\n\r\nx\r\n"))
    wait_gone(s, qid)
    st, _ = dsn_for(qid)
    eq(st["Status"], "5.4.6", "Status")
    eq(accepted(s), 1, "no copy made")


@case
def test_two_relays_pointing_at_each_other():
    a = Server("loop-a", {"hostname": "a.test", "delivery": "off"}, start=False)
    b = Server("loop-b", {"hostname": "b.test", "delivery": "off"}, start=False)
    for me, peer in ((a, b), (b, a)):
        with open(me.conf_path) as f:
            text = f.read().replace("\ndelivery off\n", "\n")
        with open(me.conf_path, "w") as f:
            f.write(text)
            for k, v in FAST.items():
                f.write("%s %s\n" % (k, v))
            f.write("route example.test [127.0.0.1]:%d\n" % peer.port4)
            f.write("route sender.test [127.0.0.1]:%d\n" % bounces().port)
    a.start()
    b.start()
    with a.connect(greet=False) as c:
        eq(c.line(), "220 a.test ESMTP moat", "greeting")
        c.ehlo("client.test")
        qid = queued_id(c.mail_tx(SENDER, ["bob@example.test"], "Subject: ping\r\n\r\npong\r\n",
                                  ehlo=False))
    # the copy that arrives with 101 Received: fields is refused; its
    # sender (a or b) bounces it: one bounce, naming the 554
    sink = bounces()
    got = wait_for(lambda: [m for m in sink.messages if b"Too many hops" in m.data], 90,
                   "the bounce of the loop")
    eq(len(got), 1, "bounces")
    total = accepted(a) + accepted(b)
    check(99 <= total <= 101, "copies made before the loop stopped: %d" % total)
    refused = [s for s in (a, b) if "reason=too-many-hops" in log_text(s)]
    eq(len(refused), 1, "one refusal at max-hops")
    msg = got[0].parsed()
    eq(msg.get_content_type(), "multipart/report", "a DSN")
    st = dict(msg.get_payload()[1].get_payload()[1].items())
    eq(st["Status"], "5.4.6", "the refusal's status")
    wait_for(lambda: not a.queue_list() and not b.queue_list(), 20, "both queues empty")
    check(qid, "the first id")


if __name__ == "__main__":
    main()
