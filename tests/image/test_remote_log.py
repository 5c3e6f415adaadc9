#!/usr/bin/python3
"""tests/image/test_remote_log.py -- `log remote` on a plain host (the
appliance's boots send to a receiver too: test_image.py).  ASAN_OK: the
remote log process is run under the sanitizers as well.

Real receivers on 127.0.0.1 (tests/image/netlab.py's: UDP, TCP with RFC
6587 octet counting, TLS with Python's ssl) and a real `moat serve`:
  - every line arrives as RFC 5424, with the event's name as MSGID, and
    the same text as on stderr (which keeps every line too);
  - over TCP with a 16 KiB buffer: the receiver stopped, mail still
    accepted, more lines logged than the buffer holds, the receiver
    started again: the newest lines arrive, with event=log-dropped
    lines=N (N > 0) before them, and the server says it on stderr;
  - over UDP, the receiver stopped and started: lines flow again;
  - over TLS: a server whose certificate leads to tls-ca-file and names
    the host gets the lines; one signed by another CA gets nothing, and
    the server logs why (BearSSL's error).
"""

import os
import re
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "smtp"))
import moatlib  # noqa: E402
from moatlib import case, check, eq, Failure  # noqa: E402
import netlab  # noqa: E402

RFC5424 = re.compile(r"^<(\d+)>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z) (\S+) moat (\d+) (\S+) - (.*)$")
os.makedirs(os.path.join(moatlib.BUILD, "t"), exist_ok=True)
WORK = os.path.abspath(tempfile.mkdtemp(prefix="remote-log-", dir=os.path.join(moatlib.BUILD, "t")))
moatlib.CASE_SECONDS = 120
state = {}


def openssl(*args):
    r = subprocess.run(["openssl"] + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=60)
    eq(r.returncode, 0, "openssl %s: %s" % (args[0], r.stderr.decode()[-500:]))


def ca_and_cert(name, cn):
    """A CA and a certificate for cn (and DNS:cn) it signed: paths."""
    d = os.path.join(WORK, name)
    os.makedirs(d, exist_ok=True)
    p = lambda f: os.path.join(d, f)  # noqa: E731
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "2", "-subj", "/CN=test CA " + name)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", p("key.pem"), "-out", p("req.pem"), "-subj", "/CN=" + cn)
    with open(p("ext"), "w") as f:
        f.write("subjectAltName=DNS:%s\n" % cn)
    openssl("x509", "-req", "-in", p("req.pem"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
            "-CAcreateserial", "-out", p("cert.pem"), "-days", "2", "-extfile", p("ext"))
    return p("ca.pem"), p("cert.pem"), p("key.pem")


def server(name, remote, extra=None):
    conf = {"log": "remote " + remote, "relay-network": "127.0.0.0/8"}
    conf.update(extra or {})
    return moatlib.Server(name, conf=conf)


def send(srv, n, tag):
    """n mails, each answered 250; their queue IDs."""
    ids = []
    for i in range(n):
        with srv.connect() as c:
            c.ehlo()
            reply = c.mail_tx("a@client.test", ["u%d@example.test" % i],
                              "Subject: %s %d\r\n\r\nbody\r\n" % (tag, i))
            ids.append(moatlib.queued_id(reply))
    return ids


def parsed(msg):
    m = RFC5424.match(msg)
    check(m, "not an RFC 5424 message as moat writes them: %r" % msg)
    return m


@case
def test_udp_rfc5424():
    rx = netlab.SyslogReceiver("udp", "127.0.0.1", moatlib.free_port(socket.AF_INET))
    srv = server("udp", "udp 127.0.0.1:%d" % rx.port)
    send(srv, 1, "udp-one")
    m = rx.wait("event=accept", 20)
    check(m is not None, "no event=accept at the receiver: %r" % rx.messages[-5:])
    pri, ts, host, pid, msgid, text = parsed(m).groups()
    eq(pri, "22", "PRI (mail.info)")
    eq(msgid, "accept", "MSGID")
    check(text in srv.stderr(100000), "the remote line %r is not stderr's" % text)
    start = rx.wait("event=start", 5)
    check(start is not None and parsed(start).group(5) == "start", "event=start: %r" % start)
    # Stopped: the port refuses; lines keep coming on stderr, mail is taken.
    rx.stop()
    down = send(srv, 2, "udp-down")
    time.sleep(1.5)
    rx.start()
    back = send(srv, 1, "udp-back")[0]
    check(rx.wait("id=" + back, 30) is not None,
          "no line after the receiver came back: %r" % rx.messages[-5:])
    for qid in down:
        check(("id=" + qid) in srv.stderr(100000), "stderr lacks %s" % qid)
    srv.stop()
    rx.stop()


@case
def test_tcp_buffer_and_drops():
    port = moatlib.free_port(socket.AF_INET)
    rx = netlab.SyslogReceiver("tcp", "127.0.0.1", port)
    srv = server("tcp", "tcp 127.0.0.1:%d buffer 16K" % port)
    send(srv, 1, "tcp-first")
    check(rx.wait("event=accept", 20) is not None, "nothing over TCP: %r" % rx.messages[-3:])
    for x in rx.messages:
        parsed(x)
    rx.stop()
    # Far more than 16 KiB of lines while the server is away; each mail is
    # still answered 250 (the log never holds mail up).
    send(srv, 60, "tcp-down")
    got_before = len(rx.messages)
    rx.start()
    last = send(srv, 1, "tcp-last")[0]
    notice = rx.wait("event=log-dropped", 40)
    check(notice is not None, "no event=log-dropped after the receiver came back: %r"
          % rx.messages[-5:])
    n = int(re.search(r"lines=(\d+)", notice).group(1))
    check(n > 0, "log-dropped lines=%d" % n)
    eq(parsed(notice).group(5), "log-dropped", "MSGID of the notice")
    check(rx.wait("id=" + last, 30) is not None, "the newest line did not arrive")
    late = rx.messages[got_before:]
    # What was kept fits the buffer: at most about 16 KiB of lines came
    # from the time the receiver was away.
    down = [x for x in late if "tcp-down" in x or "event=accept" in x]
    check(sum(len(x) for x in down) < 20 * 1024, "more than the buffer was kept: %d bytes"
          % sum(len(x) for x in down))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "event=log-dropped" not in srv.stderr(200000):
        time.sleep(0.2)
    check("event=log-dropped lines=%d" % n in srv.stderr(200000),
          "stderr does not say the drops:\n%s" % srv.stderr(3000))
    srv.stop()
    rx.stop()


@case
def test_tls_verified():
    ca, cert, key = ca_and_cert("good", "localhost")
    port = moatlib.free_port(socket.AF_INET)
    rx = netlab.SyslogReceiver("tls", "127.0.0.1", port, certfile=cert, keyfile=key)
    srv = server("tls", "tls localhost:%d" % port, {"tls-ca-file": ca})
    send(srv, 1, "tls-one")
    m = rx.wait("event=accept", 30)
    check(m is not None, "nothing over TLS: %s" % srv.stderr(3000))
    parsed(m)
    srv.stop()
    rx.stop()


@case
def test_tls_untrusted_refused():
    ca, _, _ = ca_and_cert("trusted", "localhost")
    _, cert, key = ca_and_cert("other", "localhost")
    port = moatlib.free_port(socket.AF_INET)
    rx = netlab.SyslogReceiver("tls", "127.0.0.1", port, certfile=cert, keyfile=key)
    srv = server("tls-bad", "tls localhost:%d" % port, {"tls-ca-file": ca})
    send(srv, 1, "tls-bad")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and "msg=\"log server localhost" not in srv.stderr(100000):
        time.sleep(0.2)
    err = srv.stderr(100000)
    check(re.search(r'msg="log server localhost:\d+: BR_ERR_X509', err),
          "no certificate error logged:\n%s" % err[-3000:])
    eq(rx.messages, [], "lines sent to a server that failed verification")
    srv.stop()
    rx.stop()


if __name__ == "__main__":
    status = 1
    try:
        moatlib.main()
    except SystemExit as e:
        status = e.code
    if status == 0:
        subprocess.run(["rm", "-rf", WORK])
    sys.exit(status)
