"""tests/deliver/test_tls_out.py -- outbound TLS: STARTTLS when offered
(opportunistic), `tls require`, `tls verify` against a CA bundle and the
server's name (dnsmasq on a private port gives the names), implicit TLS
(smtps), smarthost AUTH PLAIN/LOGIN over TLS, and the plaintext retry of
`tls may` after a failed handshake.  Next hops: a second moat with a
STARTTLS listener, and Debian's aiosmtpd with Python's ssl; certificates
from openssl (tests/tls/tlslib.py).

ASAN_OK
Run:  BUILD=build MOAT=build/moat /usr/bin/python3 tests/deliver/test_tls_out.py [case ...]
"""

import os
import ssl
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "smtp"))
sys.path.insert(0, os.path.join(HERE, "..", "tls"))
import moatlib  # noqa: E402
from moatlib import Server, case, check, eq, free_port, queued_id  # noqa: E402
from sinklib import (Dnsmasq, RawServer, Sink, attempted, main, queue_state,  # noqa: E402
                     read_data, read_line, wait_for, wait_gone)
import tlslib  # noqa: E402

SENDER = "alice@sender.test"
FAST = {"retry-min": "1s", "retry-max": "2s", "timeout-reply": "5s", "timeout-connect": "3s",
        "relay-network": "127.0.0.0/8", "delivery": "on"}

_dns = []


def dns():
    """dnsmasq: mx.test and other.test are 127.0.0.1."""
    if not _dns:
        _dns.append(Dnsmasq(["--host-record=mx.test,127.0.0.1",
                             "--host-record=other.test,127.0.0.1"]))
    return _dns[0]


def edge(name, routes, **extra):
    conf = dict(FAST)
    conf["dns-server"] = "127.0.0.1:%d" % dns().port
    conf["route"] = routes
    conf.update({k.replace("_", "-"): v for k, v in extra.items()})
    return Server(name, conf)


def server_ctx(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def send(server, rcpts, body=b"Subject: tls\r\n\r\nsecret\r\n"):
    with server.connect() as c:
        return queued_id(c.mail_tx(SENDER, rcpts, body))


def deferred(server, qid, addr):
    st = wait_for(lambda: attempted(server, qid, addr), 15, "a failed attempt for %s" % addr)
    eq(st[0], "pending", "deferred, not bounced")
    return st[2]


def inner_moat(name, cert, key):
    """A moat whose listener offers STARTTLS with cert/key."""
    s = Server(name, {"hostname": "inner.test", "tls-cert": cert, "tls-key": key}, start=False)
    with open(s.conf_path) as f:
        text = f.read()
    text = text.replace("listen 127.0.0.1:%d\n" % s.port4,
                        "listen 127.0.0.1:%d tls=starttls\n" % s.port4)
    with open(s.conf_path, "w") as f:
        f.write(text)
    return s.start()


@case
def test_moat_to_moat_starttls_required():
    cert, key = tlslib.pair("mx-rsa", "rsa", "mx.test")
    inner = inner_moat("inner-tls", cert, key)
    s = edge("req", ["example.test [127.0.0.1]:%d tls require" % inner.port4])
    qid = send(s, ["bob@example.test"])
    wait_gone(s, qid)
    (iid, _), = inner.queue_list().items()
    _, body = inner.queue_body(iid)
    check(b"by inner.test (moat) with ESMTPS" in body, "the hop was encrypted: %r" % body[:300])
    log = open(s.log_path, errors="replace").read()
    check("tls=TLSv1.2" in log, "the delivery log names TLS: %r" % log[-600:])


@case
def test_opportunistic_starttls():
    cert, key = tlslib.pair("mx-ec", "ec", "mx.test")
    sink = Sink(starttls=server_ctx(cert, key))
    plain = Sink()
    s = edge("may", ["example.test [127.0.0.1]:%d" % sink.port,
                     "plain.test [127.0.0.1]:%d" % plain.port])
    qid = send(s, ["bob@example.test", "carol@plain.test"])
    sink.wait_messages(1)
    plain.wait_messages(1)
    wait_gone(s, qid)
    check(sink.messages[0].tls in ("TLSv1.2", "TLSv1.3"),
          "STARTTLS used when offered: %r" % sink.messages[0].tls)
    eq(plain.messages[0].tls, None, "plaintext where it is not offered")


@case
def test_require_without_starttls_waits():
    sink = Sink()
    s = edge("nostarttls", ["example.test [127.0.0.1]:%d tls require" % sink.port])
    qid = send(s, ["bob@example.test"])
    err = deferred(s, qid, "bob@example.test")
    check("TLS is required" in err, "error %r" % err)
    eq(sink.messages, [], "nothing sent in plaintext")


@case
def test_verify():
    cert, key = tlslib.pair("mx-verify", "rsa", "mx.test")
    other_cert, _ = tlslib.pair("someone-else", "rsa", "mx.test")
    inner = inner_moat("inner-verify", cert, key)
    s = edge("verify", ["example.test mx.test:%d tls verify" % inner.port4,
                        "wrongname.test other.test:%d tls verify" % inner.port4],
             tls_ca_file=cert)
    qid = send(s, ["bob@example.test"])
    wait_gone(s, qid)
    eq(len(inner.queue_list()), 1, "delivered to the server its certificate names")
    qid = send(s, ["bob@wrongname.test"])
    err = deferred(s, qid, "bob@wrongname.test")
    check("TLS handshake failed" in err, "a certificate for another name: %r" % err)
    eq(len(inner.queue_list()), 1, "nothing more delivered")
    # A bundle of several: the one that fits is found.
    bundle = cert + ".bundle"
    with open(bundle, "w") as f:
        f.write(open(other_cert).read() + "some text between\n" + open(cert).read())
    s3 = edge("bundle", ["example.test mx.test:%d tls verify" % inner.port4], tls_ca_file=bundle)
    qid = send(s3, ["carol@example.test"])
    wait_gone(s3, qid)
    check("event=tls-ca file=%s anchors=2" % bundle in open(s3.log_path).read(), "two anchors")
    eq(len(inner.queue_list()), 2, "delivered with the bundle")
    # A CA bundle that does not hold the server's issuer.
    s2 = edge("untrusted", ["example.test mx.test:%d tls verify" % inner.port4],
              tls_ca_file=other_cert)
    qid = send(s2, ["bob@example.test"])
    err = deferred(s2, qid, "bob@example.test")
    check("TLS handshake failed" in err, "an untrusted certificate: %r" % err)
    eq(len(inner.queue_list()), 2, "still nothing more delivered")


@case
def test_verify_needs_a_ca_bundle():
    s = Server("nobundle", dict(FAST, route="example.test mx.test:25 tls verify",
                                **{"tls-ca-file": "/nonexistent/ca.crt"}), start=False)
    # Refused as an invalid config, by `moat check` as by `moat serve`,
    # before anything starts (the supervisor loads every file it names).
    for verb in ("check", "serve"):
        r = s.moat(verb, "-c", s.conf_path, timeout=10)
        eq(r.returncode, 1, "moat %s: exit status without its CA bundle" % verb)
        check(b": tls-ca-file: /nonexistent/ca.crt: No such file or directory" in r.stderr,
              "moat %s says why: %r" % (verb, r.stderr[-300:]))


@case
def test_smtps():
    cert, key = tlslib.pair("mx-smtps", "rsa", "mx.test")
    sink = Sink(smtps=server_ctx(cert, key))
    s = edge("smtps", ["example.test [127.0.0.1]:%d smtps" % sink.port])
    qid = send(s, ["bob@example.test"])
    sink.wait_messages(1)
    wait_gone(s, qid)
    check(sink.messages[0].tls is not None, "implicit TLS")


@case
def test_smarthost_auth():
    cert, key = tlslib.pair("relay", "rsa", "relay.test")
    sink = Sink(starttls=server_ctx(cert, key), users={"moat": "pass word"})
    auth = os.path.join(os.path.abspath(moatlib.BUILD), "t", "smarthost-%d.auth" % os.getpid())
    with open(auth, "w") as f:
        f.write("moat:pass word\n")
    bad = auth + ".bad"
    with open(bad, "w") as f:
        f.write("moat:wrong\n")
    s = Server("smart", dict(FAST, smarthost="[127.0.0.1]:%d tls require auth %s"
                             % (sink.port, auth)))
    qid = send(s, ["someone@far.example"])
    sink.wait_messages(1)
    wait_gone(s, qid)
    eq(sink.messages[0].user, "moat", "authenticated as")
    s2 = Server("smart-bad", dict(FAST, smarthost="[127.0.0.1]:%d tls require auth %s"
                                 % (sink.port, bad)))
    qid = send(s2, ["someone@far.example"])
    err = deferred(s2, qid, "someone@far.example")
    check("535" in err, "a refused password defers, with the reply: %r" % err)


@case
def test_may_retries_in_plaintext_after_a_failed_handshake():
    seen = []

    def play(c, srv):
        buf = [b""]
        c.sendall(b"220 broken-tls\r\n")
        read_line(c, buf)
        offer = not seen
        seen.append("starttls-offered" if offer else "plain")
        c.sendall(b"250-broken\r\n250 STARTTLS\r\n" if offer else b"250 broken\r\n")
        while True:
            line = read_line(c, buf)
            verb = line[:8].upper()
            if verb.startswith(b"STARTTLS"):
                c.sendall(b"220 go ahead\r\n")
                time.sleep(0.2)
                c.sendall(b"this is not a TLS record at all\r\n")
                return
            if verb.startswith(b"DATA"):
                c.sendall(b"354 go\r\n")
                srv.log.append(read_data(c, buf))
                c.sendall(b"250 ok\r\n")
            elif verb.startswith(b"QUIT"):
                c.sendall(b"221 bye\r\n")
                return
            else:
                c.sendall(b"250 ok\r\n")

    raw = RawServer(play)
    s = edge("fallback", ["example.test [127.0.0.1]:%d" % raw.port])
    qid = send(s, ["bob@example.test"])
    wait_gone(s, qid)
    eq(seen, ["starttls-offered", "plain"], "a TLS try, then plaintext on the same host")
    eq(len(raw.log), 1, "delivered once")


if __name__ == "__main__":
    main()
