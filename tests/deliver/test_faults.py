"""tests/deliver/test_faults.py -- the small faults of the outbound half, each
in its own case: a route's host name found in /etc/hosts before DNS (the
server runs in a mount namespace of its own, with a hosts file of the
test's bound over /etc/hosts); a next hop's name that DNS cannot give
is a 4.4.3 deferral, never a 5.x.x code; TLS required but not offered is
4.7.5; TLS failures named (name-mismatch, bad-certificate-chain), not
numbered; a next hop's non-ASCII reply kept as \\xNN escapes; `moat
check` fails on a file the config names that does not load, as `moat
serve` would.

Next hops: aiosmtpd, raw socket servers, dnsmasq on a private port, a
second moat with STARTTLS (certificates from openssl, tests/tls/tlslib.py).

ASAN_OK
Run:  BUILD=build MOAT=build/moat /usr/bin/python3 tests/deliver/test_faults.py [case ...]
"""

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "smtp"))
sys.path.insert(0, os.path.join(HERE, "..", "tls"))
import moatlib  # noqa: E402
from moatlib import MOAT, Server, case, check, eq, queued_id  # noqa: E402
from sinklib import (FAST, SENDER, Dnsmasq, RawServer, Sink, attempted, log_text,  # noqa: E402
                     main, read_data, read_line,
                     wait_for, wait_gone)
import tlslib  # noqa: E402


_dns = []


def dns():
    """dnsmasq: names under .test it is not told of are NXDOMAIN."""
    if not _dns:
        _dns.append(Dnsmasq(["--host-record=mx.test,127.0.0.1",
                             "--host-record=wrong.test,127.0.0.1"]))
    return _dns[0]


def send(server, rcpts, body="Subject: fault\r\n\r\nx\r\n"):
    with server.connect() as c:
        return queued_id(c.mail_tx(SENDER, rcpts, body))


def deferred(server, qid, addr):
    st = wait_for(lambda: attempted(server, qid, addr), 15, "a failed attempt for %s" % addr)
    eq(st[0], "pending", "deferred, not bounced")
    return st[2]


def delivery_lines(server):
    return [ln for ln in log_text(server).splitlines() if "event=delivery " in ln]


@case
def test_route_name_from_etc_hosts():
    sink = Sink()
    hosts = os.path.join(os.path.abspath(moatlib.BUILD), "t", "hosts-%d" % os.getpid())
    with open(hosts, "w") as f:
        f.write("# the test's hosts file\n127.0.0.1\tlocalhost\n"
                "127.0.0.1 relay.hosts.test relay  # the route\n")
    # DNS would not answer at all: only the hosts file can give the address
    s = Server("etc-hosts", dict(FAST, **{
        "dns-server": "127.0.0.1:9", "dns-timeout": "1s",
        "route": ["example.test relay.hosts.test:%d" % sink.port,
                  "other.test nowhere.hosts.test:%d" % sink.port]}), start=False)
    s.wrap = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
              'mount --bind "$0" /etc/hosts && exec "$@"', hosts]
    s.start()
    qid = send(s, ["bob@example.test"])
    sink.wait_messages(1)
    wait_gone(s, qid)
    # a name the hosts file does not hold goes to DNS (here: no answer)
    qid = send(s, ["carol@other.test"])
    err = deferred(s, qid, "carol@other.test")
    check(err.startswith("4.4.3 temporary DNS failure") and "nowhere.hosts.test" in err,
          "error %r" % err)
    check(any("dsn=4.4.3" in ln for ln in delivery_lines(s)), "logged as 4.4.3")
    check(open("/etc/hosts").read().find("relay.hosts.test") < 0, "the host's own file untouched")


@case
def test_route_name_without_address_is_4_4_3():
    s = Server("noaddr", dict(FAST, **{
        "dns-server": "127.0.0.1:%d" % dns().port,
        "route": "example.test no-such-host.test:2525"}))
    qid = send(s, ["bob@example.test"])
    err = deferred(s, qid, "bob@example.test")
    check(err.startswith("4.4.3 no address found") and "(the configured next hop)" in err,
          "error %r" % err)
    lines = delivery_lines(s)
    check(lines and all("status=deferred dsn=4.4.3" in ln for ln in lines), "log %r" % lines)


@case
def test_tls_required_not_offered_is_4_7_5():
    sink = Sink()
    s = Server("req-475", dict(FAST, route="example.test [127.0.0.1]:%d tls require" % sink.port))
    qid = send(s, ["bob@example.test"])
    err = deferred(s, qid, "bob@example.test")
    check(err.startswith("4.7.5 TLS is required"), "error %r" % err)
    check(any("dsn=4.7.5" in ln for ln in delivery_lines(s)), "logged as 4.7.5")
    eq(sink.messages, [], "nothing sent in plaintext")


def starttls_moat(name, cert, key):
    s = Server(name, {"hostname": "inner.test", "tls-cert": cert, "tls-key": key}, start=False)
    with open(s.conf_path) as f:
        text = f.read()
    with open(s.conf_path, "w") as f:
        f.write(text.replace("listen 127.0.0.1:%d\n" % s.port4,
                             "listen 127.0.0.1:%d tls=starttls\n" % s.port4))
    return s.start()


@case
def test_tls_failures_by_name():
    cert, key = tlslib.pair("fault-mx", "rsa", "mx.test")
    other, _ = tlslib.pair("fault-other", "rsa", "other.test")
    inner = starttls_moat("fault-inner", cert, key)
    conf = dict(FAST, **{"dns-server": "127.0.0.1:%d" % dns().port})
    # the certificate names mx.test; the route calls the server wrong.test
    s = Server("tls-names", dict(conf, **{
        "tls-ca-file": cert,
        "route": ["example.test wrong.test:%d tls verify" % inner.port4,
                  "right.test mx.test:%d tls verify" % inner.port4]}))
    qid = send(s, ["bob@example.test"])
    err = deferred(s, qid, "bob@example.test")
    check(err.startswith("4.7.5 TLS handshake failed: name-mismatch"), "error %r" % err)
    qid = send(s, ["bob@right.test"])
    wait_gone(s, qid)
    s2 = Server("tls-untrusted", dict(conf, **{
        "tls-ca-file": other, "route": "example.test mx.test:%d tls verify" % inner.port4}))
    qid = send(s2, ["bob@example.test"])
    err = deferred(s2, qid, "bob@example.test")
    check(err.startswith("4.7.5 TLS handshake failed: bad-certificate-chain"), "error %r" % err)
    for srv in (s, s2):
        for ln in delivery_lines(srv):
            check(not re.search(r"error-\d", ln), "no TLS error by number: %r" % ln)


@case
def test_non_ascii_reply_escaped():
    def play(c, srv):
        buf = [b""]
        c.sendall(b"220 raw.test ESMTP\r\n")
        while True:
            line = read_line(c, buf)
            verb = line[:4].upper()
            if verb == b"EHLO":
                c.sendall(b"250 raw.test\r\n")
            elif verb == b"MAIL":
                c.sendall(b"250 ok\r\n")
            elif verb == b"RCPT":
                c.sendall("550 5.1.1 bo\u00eete inconnue \\ caf\u00e9\r\n".encode())
            elif verb == b"DATA":
                c.sendall(b"354 go\r\n")
                read_data(c, buf)
                c.sendall(b"250 ok\r\n")
            else:
                c.sendall(b"221 bye\r\n")
                return
    raw = RawServer(play)
    bounces = Sink()
    s = Server("utf8-reply", dict(FAST, route=["example.test [127.0.0.1]:%d" % raw.port,
                                               "sender.test [127.0.0.1]:%d" % bounces.port]))
    qid = send(s, ["bob@example.test"])
    wait_gone(s, qid)
    dsn = wait_for(lambda: [m for m in bounces.messages if qid.encode() in m.data], 15,
                   "the bounce")[0].parsed()
    st = dict(dsn.get_payload()[1].get_payload()[1].items())
    want = "550 5.1.1 bo\\xc3\\xaete inconnue \\x5c caf\\xc3\\xa9"
    check(want in st["Diagnostic-Code"], "Diagnostic-Code %r" % st["Diagnostic-Code"])
    check(all(ord(ch) < 128 for ch in dsn.as_string()), "the DSN is ASCII")


@case
def test_check_loads_every_file():
    d = os.path.join(os.path.abspath(moatlib.BUILD), "t")
    base = Server("check-files", {}, start=False)
    with open(base.conf_path) as f:
        good = f.read()
    missing = os.path.join(d, "no-such-file-%d" % os.getpid())
    for line, what in (("smarthost [127.0.0.1]:2525 tls require auth %s" % missing, "auth"),
                       # (the CA bundle is read when a next hop asks for `tls verify`)
                       ("tls-ca-file %s\nroute example.test [127.0.0.1]:2525 tls verify" % missing,
                        "tls-ca-file"),
                       ("users %s" % missing, "users"),
                       ("recipients example.test %s" % missing, "recipients")):
        with open(base.conf_path, "w") as f:
            f.write(good + line + "\n")
        r = moatlib.subprocess.run([MOAT, "check", "-c", base.conf_path], capture_output=True)
        eq(r.returncode, 1, "moat check with a missing %s file: %r" % (what, r.stderr))
        check(missing.encode() in r.stderr, "the file is named: %r" % r.stderr)
        r2 = moatlib.subprocess.run([MOAT, "serve", "-c", base.conf_path], capture_output=True,
                                    timeout=10)
        eq(r2.returncode, r.returncode, "moat serve fails the same way (%s)" % what)


if __name__ == "__main__":
    main()
