"""tests/deliver/test_mx.py -- delivery by MX, with a real DNS server.

The whole file runs in a network namespace of its own (unshare --net, as
root), so that next hops can listen on port 25 of 127.0.0.2, 127.0.0.3,
... and ::1, and dnsmasq (Debian's) can answer on port 53: moat uses the
standard ports and its own resolver, nothing is faked.  dnsmasq answers
from its command line only (no upstream, no hosts file); names it does
not know under .test are NXDOMAIN.

Checked: MX preference order and fallback to the next MX, random order
within equal preference, the implicit MX (A records only), IPv6 (AAAA),
a UTF-8 domain looked up by its A-label, the null MX (RFC 7505) and
NXDOMAIN bounced with the right status, an MX that is moat itself (by a
listener's address, or any address of the machine with a wildcard
listener: one bounce, 5.4.6, no copy made) and moat as the backup MX
(never delivered to itself), a
DNS server that does not answer is a deferral (never a bounce), and an
answer too big for UDP is asked again over TCP.

Run:  BUILD=build MOAT=build/moat /usr/bin/python3 tests/deliver/test_mx.py [case ...]
"""

import os
import subprocess
import sys

if os.environ.get("MOAT_IN_NETNS") != "1":
    # Into a fresh network namespace: only a loopback interface, ours.
    os.environ["MOAT_IN_NETNS"] = "1"
    try:
        os.execvp("unshare", ["unshare", "--net", "--", sys.executable] + sys.argv)
    except OSError as e:
        print("FAIL: netns\nerror: netns: cannot run unshare --net (root needed): %s" % e)
        sys.exit(1)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "smtp"))
import moatlib  # noqa: E402
from moatlib import Server, case, check, eq, free_port, queued_id  # noqa: E402
from sinklib import Dnsmasq, Sink as _Sink, attempted, main, queue_state, wait_for, wait_gone  # noqa: E402,E501

SENDER = "alice@sender.test"

_net = {}


def net():
    """lo up, dnsmasq on 127.0.0.1:53, the bounce sink; once."""
    if not _net:
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        big = []
        for i in range(40):
            big.append("--mx-host=big.test,mail-exchanger-number-%02d.a-rather-long-domain-name.big.test,%d"
                       % (i, 50 + i))
        big.append("--mx-host=big.test,best.big.test,5")
        big.append("--host-record=best.big.test,127.0.0.8")
        _net["dns"] = Dnsmasq([
            "--mx-host=pref.test,mxa.pref.test,10", "--mx-host=pref.test,mxb.pref.test,20",
            "--host-record=mxa.pref.test,127.0.0.2", "--host-record=mxb.pref.test,127.0.0.3",
            "--mx-host=order.test,first.order.test,10", "--mx-host=order.test,second.order.test,20",
            "--host-record=first.order.test,127.0.0.4", "--host-record=second.order.test,127.0.0.5",
            "--host-record=amx.test,127.0.0.6",
            "--mx-host=v6.test,mx6.v6.test,10", "--host-record=mx6.v6.test,::1",
            "--mx-host=eq.test,one.eq.test,10", "--mx-host=eq.test,two.eq.test,10",
            "--host-record=one.eq.test,127.0.0.9", "--host-record=two.eq.test,127.0.0.10",
            "--dns-rr=nullmx.test,15,000000",
            "--mx-host=xn--bcher-kva.test,mx.xn--bcher-kva.test,10",
            "--host-record=mx.xn--bcher-kva.test,127.0.0.11",
            "--mx-host=sender.test,mx.sender.test,10", "--host-record=mx.sender.test,127.0.0.7",
            # loops: the MX is moat itself; ours is only the backup MX
            "--mx-host=loop.test,mx.loop.test,10", "--host-record=mx.loop.test,127.0.0.20",
            "--mx-host=backup.test,primary.backup.test,10",
            "--mx-host=backup.test,mx.loop.test,20",
            "--host-record=primary.backup.test,127.0.0.21",
        ] + big, port=53)
        # an address of this machine that is not a loopback one
        subprocess.run(["ip", "addr", "add", "10.200.0.1/32", "dev", "lo"], check=True)
        _net["bounces"] = _Sink("127.0.0.7", 25)
    return _net


def Sink(host, port):
    """A sink on host:port, once the namespace's network is up."""
    net()
    return _Sink(host, port)


def edge(name, port4=None, **extra):
    """A moat that delivers by MX; port4: the 127.0.0.1 (or wildcard)
    port its own listen lines (in extra) give it."""
    net()
    conf = {"retry-min": "1s", "retry-max": "2s", "timeout-reply": "5s",
            "timeout-connect": "3s", "dns-server": "127.0.0.1", "dns-timeout": "1s",
            "relay-network": "127.0.0.0/8", "delivery": "on"}
    conf.update({k.replace("_", "-"): v for k, v in extra.items()})
    if port4 is None:
        return Server(name, conf)
    s = Server(name, conf, start=False)
    s.port4 = port4
    return s.start()


def send(server, rcpts, sender=SENDER):
    with server.connect() as c:
        return queued_id(c.mail_tx(sender, rcpts, b"Subject: mx\r\n\r\nhello\r\n"))


def bounce_status(qid):
    dsn = wait_for(lambda: [m for m in net()["bounces"].messages if qid.encode() in m.data],
                   15, "the bounce for %s" % qid)
    eq(len(dsn), 1, "bounces")
    parts = dsn[0].parsed().get_payload()
    return [dict(b.items()) for b in parts[1].get_payload()][1]


@case
def test_mx_preference_and_fallback():
    second = Sink("127.0.0.3", 25)          # mxa (127.0.0.2) has nobody on port 25
    s = edge("fallback")
    qid = send(s, ["bob@pref.test"])
    second.wait_messages(1)
    wait_gone(s, qid)
    first, backup = Sink("127.0.0.4", 25), Sink("127.0.0.5", 25)
    qid = send(s, ["bob@order.test", "carol@order.test"])
    first.wait_messages(1)
    wait_gone(s, qid)
    eq(sorted(first.messages[0].rcpts), ["bob@order.test", "carol@order.test"], "one transaction")
    eq(backup.messages, [], "the lower preference MX is not used")


@case
def test_equal_preference_is_shuffled():
    a, b = Sink("127.0.0.9", 25), Sink("127.0.0.10", 25)
    # A connection per message: a kept one would carry them all to the
    # host the first message chose (the choice is made per connection).
    s = edge("equal", max_messages_per_delivery_connection="1")
    ids = [send(s, ["u%d@eq.test" % i]) for i in range(16)]
    wait_for(lambda: len(a.messages) + len(b.messages) == 16, 30, "16 deliveries")
    for qid in ids:
        wait_gone(s, qid)
    check(a.messages and b.messages,
          "both MX hosts of equal preference used: %d and %d" % (len(a.messages), len(b.messages)))


@case
def test_implicit_mx():
    sink = Sink("127.0.0.6", 25)
    s = edge("implicit")
    qid = send(s, ["bob@amx.test"])
    sink.wait_messages(1)
    wait_gone(s, qid)


@case
def test_ipv6_mx():
    sink = Sink("::1", 25)
    s = edge("v6")
    qid = send(s, ["bob@v6.test"])
    sink.wait_messages(1)
    wait_gone(s, qid)
    check(sink.messages[0].peer[0] == "::1", "came over IPv6: %r" % (sink.messages[0].peer,))


@case
def test_truncated_answer_over_tcp():
    sink = Sink("127.0.0.8", 25)
    s = edge("tcp")
    qid = send(s, ["bob@big.test"])
    sink.wait_messages(1)
    wait_gone(s, qid)
    log = open(net()["dns"].log_path, errors="replace").read()
    # Asked twice: by UDP (truncated: 41 MX records are over 512 bytes),
    # then by TCP.
    eq(log.count("query[MX] big.test "), 2, "MX queries for big.test")


@case
def test_utf8_domain_by_its_a_label():
    sink = Sink("127.0.0.11", 25)
    s = edge("idn")
    with s.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s> SMTPUTF8" % SENDER, "250 2.1.0 Sender OK")
        c.send("RCPT TO:<bob@b\u00fccher.test>\r\n".encode())
        eq(c.one(), "250 2.1.5 Recipient OK", "RCPT to a UTF-8 domain")
        c.expect("DATA", "354 End data with <CR><LF>.<CR><LF>")
        c.send(b"Subject: idn\r\n\r\nhi\r\n.\r\n")
        qid = queued_id(c.one(timeout=10))
    sink.wait_messages(1)
    wait_gone(s, qid)
    eq(sink.messages[0].rcpts, ["bob@b\u00fccher.test"], "recipient as sent, in UTF-8")
    log = open(net()["dns"].log_path, errors="replace").read()
    check("query[MX] xn--bcher-kva.test" in log, "MX asked for the A-label")


@case
def test_null_mx_bounces():
    s = edge("nullmx")
    qid = send(s, ["bob@nullmx.test"])
    wait_gone(s, qid)
    st = bounce_status(qid)
    eq(st["Status"], "5.1.10", "Status for a null MX")
    check("null MX" in st["Diagnostic-Code"], "diagnostic %r" % st)


@case
def test_nxdomain_bounces():
    s = edge("nxdomain")
    qid = send(s, ["bob@no-such-domain.test"])
    wait_gone(s, qid)
    st = bounce_status(qid)
    eq(st["Status"], "5.1.2", "Status for a domain that does not exist")


def accepted(server):
    return open(server.log_path, errors="replace").read().count("event=accept ")


@case
def test_mx_is_ourselves_by_address():
    # RFC 5321 5.1: moat is the best MX of loop.test: one bounce, no copy
    p = free_port()
    s = edge("self-mx", p, listen=["127.0.0.1:%d" % p, "127.0.0.20:25"],
             domain=["example.test", "loop.test"])
    qid = send(s, ["bob@loop.test"])
    wait_gone(s, qid)
    st = bounce_status(qid)
    eq(st["Status"], "5.4.6", "Status for a loop")
    check("mail for loop.test loops back to myself" in st["Diagnostic-Code"], "diagnostic %r" % st)
    eq(accepted(s), 1, "messages accepted: the one sent, no copy of it")
    log = open(s.log_path, errors="replace").read()
    check("status=bounced dsn=5.4.6" in log and "loops back to myself\"" in log,
          "the delivery log says so: %r" % log[-800:])
    s.stop()      # (127.0.0.20:25 is the backup MX's below)


@case
def test_mx_is_ourselves_on_a_wildcard_listener():
    # listening on every address (port 25 is the sinks' here: a route says
    # the port); the next hop is an address of this machine, not loopback
    p = free_port()
    s = edge("self-wild", p, listen=["0.0.0.0:%d" % p],
             domain=["example.test", "wild.test"], route="wild.test [10.200.0.1]:%d" % p)
    qid = send(s, ["bob@wild.test"])
    wait_gone(s, qid)
    eq(bounce_status(qid)["Status"], "5.4.6", "Status for a loop")
    eq(accepted(s), 1, "no copy")


@case
def test_we_are_the_backup_mx():
    # ours is the MX of preference 20: only the primary is tried (it is down)
    p = free_port()
    s = edge("backup-mx", p, listen=["127.0.0.1:%d" % p, "127.0.0.20:25"],
             domain=["example.test", "backup.test"])
    qid = send(s, ["bob@backup.test"])
    st = wait_for(lambda: attempted(s, qid, "bob@backup.test", 2), 20, "two attempts")
    eq(st[0], "pending", "deferred: the primary is down, ours is not a next hop")
    check("127.0.0.21" in st[2], "the primary's error: %r" % (st,))
    eq(accepted(s), 1, "no copy")
    eq(s.moat("queue", "delete", "-c", s.conf_path, qid).returncode, 0, "delete")


@case
def test_dns_down_defers():
    s = edge("dnsdown", dns_server="127.0.0.1:5300")
    qid = send(s, ["bob@pref.test"])
    st = wait_for(lambda: attempted(s, qid, "bob@pref.test", 2), 20, "two failed lookups")
    eq(st[0], "pending", "a DNS failure defers")
    check("temporary DNS failure" in st[2], "error %r" % (st,))
    eq(s.moat("queue", "delete", "-c", s.conf_path, qid).returncode, 0, "delete")


if __name__ == "__main__":
    main()
