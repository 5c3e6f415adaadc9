#!/usr/bin/python3
"""tests/ops/test_metrics.py -- the metrics and health endpoint: scraped
with curl after a scripted mix of sessions, each counter checked against
what the test did and against the log's lines; both text formats read by
the reference parsers; health failing on a quota and on a commit that
cannot be made (a real file size limit, set with prlimit on the running
server); hostile HTTP (bad requests, slow and surplus connections).
ASAN_OK
"""

import os
import re
import socket
import subprocess
import time

import opslib
from opslib import Failure, check, eq, moatlib
import tlslib
from moatlib import DOMAIN, case, free_port, queued_id

BODY = "Subject: m\r\n\r\nhello\r\n"


def send(c, sender, rcpts, body=BODY, ehlo=True):
    return queued_id(c.mail_tx(sender, rcpts, body, ehlo=ehlo))


def wait_sessions(port, n, seconds=10):
    deadline = time.monotonic() + seconds
    while True:
        got = opslib.scrape(port)["moat_sessions"]
        if got == n or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


@case
def test_counters_match_what_was_done():
    mport = free_port()
    s = tlslib.server("metrics", {"metrics-listen": str(mport), "queue-max-messages": 3,
                                  "max-message-size": "1M", "queue-max-bytes": "8M"})
    t0 = time.time()
    connects = 1   # moatlib's start-up probe
    # Two sessions left open, idle.
    idle = [s.connect(), s.connect(v6=True)]
    for c in idle:
        c.ehlo()
    connects += 2
    # Two messages: one to two recipients over IPv4, one over IPv6.
    with s.connect() as c:
        send(c, "a@example.org", ["x@" + DOMAIN, "y@" + DOMAIN])
        c.expect("QUIT", "221 2.0.0 mx.test closing connection")
    with s.connect(v6=True) as c:
        send(c, "", ["x@" + DOMAIN])
        # Relay denied twice, a declared size over the maximum once.
        c.expect("MAIL FROM:<a@example.org>", "250 2.1.0 Sender OK")
        for to in ("f@example.net", "g@example.net"):
            c.expect("RCPT TO:<%s>" % to, "554 5.7.1 <%s>: Relay access denied" % to)
        c.expect("RSET", "250 2.0.0 OK")
        c.expect("MAIL FROM:<a@example.org> SIZE=2000000",
                 "552 5.3.4 Message size exceeds fixed maximum message size")
        c.expect("QUIT", "221 2.0.0 mx.test closing connection")
    connects += 2
    # Submission: TLS, two bad passwords, a good one, a message.
    c, _ = tlslib.tls_session("127.0.0.1", s.sub4)
    for i in range(2):
        eq(c.cmd("AUTH PLAIN " + tlslib.plain("alice", "wrong")),
           "535 5.7.8 Authentication credentials invalid", "bad password %d" % i)
    eq(c.cmd("AUTH PLAIN " + tlslib.plain("alice", tlslib.PASSWORD)),
       "235 2.7.0 Authentication successful", "AUTH")
    send(c, "alice@example.test", ["far@example.net"], ehlo=False)
    # The queue holds three messages: the fourth is refused, for now.
    c.expect("MAIL FROM:<alice@example.test>", "452 4.3.1 Insufficient system storage")
    c.expect("QUIT", "221 2.0.0 mx.test closing connection")
    c.close()
    connects += 1
    # A TLS handshake that fails: plaintext on the implicit-TLS port.
    with socket.create_connection(("127.0.0.1", s.ssl4), timeout=5) as raw:
        raw.sendall(b"EHLO plaintext\r\n" * 20)
        raw.settimeout(5)
        try:
            while raw.recv(4096):
                pass
        except OSError:
            pass
    connects += 1
    opslib.wait_log(s, r"event=tls-fail ")
    eq(wait_sessions(mport, 2), 2, "moat_sessions with two idle sessions open")

    for om in (True, False):
        m = opslib.scrape(mport, openmetrics=om)
        accepts = opslib.events(s, "accept")
        eq(len(accepts), 3, "accept lines")
        size = sum(int(a["size"]) for a in accepts)
        want = {
            "moat_connections_total": connects,
            "moat_messages_accepted_total": 3,
            "moat_accepted_bytes_total": size,
            "moat_accepted_recipients_total": 4,
            "moat_rejections_total{reason=relay-denied}": 2,
            "moat_rejections_total{reason=declared-size}": 1,
            "moat_rejections_total{reason=quota-messages}": 1,
            "moat_relay_denied_total": 2,
            "moat_auth_failures_total": 2,
            "moat_auth_successes_total": 1,
            "moat_auth_blocks_total": 0,
            "moat_tls_sessions_total": 1,
            "moat_tls_failures_total": 1,
            "moat_quota_refusals_total{quota=messages}": 1,
            "moat_quota_refusals_total{quota=disk}": 0,
            "moat_deliveries_total{status=sent}": 0,
            "moat_deliveries_total{status=deferred}": 0,
            "moat_deliveries_total{status=bounced}": 0,
            "moat_reloads_total{status=ok}": 0,
            "moat_sessions": 2,
            "moat_queue_messages": 3,
            "moat_queue_bytes": size,
            "moat_queue_max_messages": 3,
            "moat_queue_max_bytes": 8 << 20,
            "moat_healthy": 0,
            "moat_config_generation": 1,
        }
        for k, v in want.items():
            eq(m.get(k), v, "%s (%s)" % (k, "OpenMetrics" if om else "Prometheus"))
        # Every rejection reason the log gave, counted as often as logged.
        reasons = {}
        for d in opslib.events(s, "reject"):
            reasons[d["reason"]] = reasons.get(d["reason"], 0) + 1
        got = {k[len("moat_rejections_total{reason="):-1]: v for k, v in m.items()
               if k.startswith("moat_rejections_total{")}
        eq(got, reasons, "rejections by reason against the log")
        eq(m["moat_connections_total"], len(opslib.events(s, "connect")), "connect lines")
        age = m["moat_queue_oldest_age_seconds"]
        check(0 <= age <= time.time() - t0 + 2, "oldest message age %r" % age)
        check(abs(m["moat_start_time_seconds"] - t0) < 60, "start time %r" % m)
        check(m["moat_queue_disk_free_bytes"] > m["moat_queue_disk_keep_bytes"] > 0, "disk")
    # Over a quota: health fails, and says which.
    status, headers, body = opslib.curl(mport, "/health")
    eq((status, body), (503, "queue over quota: messages\n"), "GET /health over quota")
    status, headers, body = opslib.curl(mport, "/health", method="HEAD")
    eq((status, body, headers.get("content-length")), (503, "", "27"), "HEAD /health")
    for c in idle:
        c.close()
    s.stop()


@case
def test_health_when_commits_fail():
    """A file size limit on the running queue role (prlimit, the soft limit):
    the queue file cannot grow, so a commit fails with EFBIG: 451, and
    health says so at once; lifted, mail flows and health recovers."""
    mport = free_port()
    s = moatlib.Server("health", {"metrics-listen": "127.0.0.1:%d" % mport})
    eq(opslib.curl(mport, "/health")[::2], (200, "ok\n"), "healthy at start")
    size = os.path.getsize(os.path.join(s.queue_dir, "data.mdb"))
    pid = str(s.role_pid("queue"))   # the only process that writes the queue
    # As the role's own user: root here may lack CAP_SYS_RESOURCE, which a
    # limit on another user's process needs.
    with open("/proc/%s/status" % pid) as f:
        uid = re.search(r"^Uid:\t(\d+)", f.read(), re.M).group(1)
    asrole = ["setpriv", "--reuid", uid, "--regid", uid, "--clear-groups"]
    r = subprocess.run(asrole + ["prlimit", "--pid", pid, "--fsize=%d:unlimited" % size],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    eq(r.returncode, 0, "prlimit: %r" % r.stdout)
    body = "Subject: big\r\n\r\n" + ("x" * 76 + "\r\n") * 400   # 31 KiB: no spool file
    try:
        with s.connect() as c:
            eq(c.mail_tx("a@example.org", ["x@" + DOMAIN], body),
               "451 4.3.0 Local error in processing", "a commit the file size limit stops")
        status, _, text = opslib.curl(mport, "/health")
        eq(status, 503, "health after a failed commit")
        check(re.match(r"^queue cannot commit: queue I/O error \(a message, \ds ago\)\n$", text),
              "health text %r" % text)
        eq(opslib.scrape(mport)["moat_healthy"], 0, "moat_healthy")
    finally:
        subprocess.run(asrole + ["prlimit", "--pid", pid, "--fsize=unlimited:unlimited"])
    with s.connect() as c:
        queued_id(c.mail_tx("a@example.org", ["x@" + DOMAIN], body))
    eq(opslib.curl(mport, "/health")[::2], (200, "ok\n"), "healthy again")
    opslib.wait_log(s, r"event=reject id=[0-9a-f]{16} addr=127\.0\.0\.1 sid=[0-9a-f]{16} code=451 "
                       r"reason=queue-error$")
    s.stop()


def raw_request(port, data, wait=5.0):
    """Send data, read until the server closes: the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as c:
        c.sendall(data)
        out = b""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                got = c.recv(65536)
            except socket.timeout:
                break
            if not got:
                return out
            out += got
        raise Failure("no close after %r; got %r" % (data[:60], out[:200]))


def status_of(answer):
    m = re.match(rb"^HTTP/1\.0 (\d{3}) ", answer)
    check(m, "not an HTTP/1.0 answer: %r" % answer[:100])
    return int(m.group(1))


@case
def test_hostile_http():
    mport = free_port()
    s = moatlib.Server("http", {"metrics-listen": str(mport)})
    # Held open from the start: they meet the 5 s request timeout below.
    slow = socket.create_connection(("127.0.0.1", mport), timeout=10)
    slow.sendall(b"GET /metr")
    surplus = [socket.create_connection(("127.0.0.1", mport), timeout=10) for _ in range(15)]
    t_slow = time.monotonic()
    # Sixteen are open: the next one is closed unanswered.
    with socket.create_connection(("127.0.0.1", mport), timeout=5) as extra:
        extra.settimeout(5)
        try:
            eq(extra.recv(100), b"", "a connection past the limit of 16")
        except ConnectionResetError:
            pass
    for c in surplus:
        c.close()
    time.sleep(0.2)
    cases = [
        (b"POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi", 405),
        (b"GET /metrics HTTP/2.0\r\n\r\n", 505),
        (b"GET http://127.0.0.1/metrics HTTP/1.1\r\n\r\n", 400),
        (b"GET /" + b"a" * 300 + b" HTTP/1.1\r\n\r\n", 414),
        (b"GET /metrics HTTP/1.1\r\nX: " + b"v" * 5000 + b"\r\n\r\n", 431),
        (b"GET /metrics HTTP/1.1\r\n folded\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\nX: a\x00b\r\n\r\n", 400),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(40), 400),
        (b"GET /nothing HTTP/1.0\r\n\r\n", 404),
        (b"GET /health?x=1 HTTP/1.0\n\n", 200),
    ]
    for data, want in cases:
        eq(status_of(raw_request(mport, data)), want, "answer to %r" % data[:40])
    # HEAD: the head of GET, no body.
    head = raw_request(mport, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    check(head.endswith(b"\r\n\r\n") and b"Content-Length: " in head, "HEAD answer %r" % head)
    # The request that never ended: 408 after 5 s, then closed.
    slow.settimeout(10)
    got = b""
    while True:
        d = slow.recv(4096)
        if not d:
            break
        got += d
    waited = time.monotonic() - t_slow
    eq(status_of(got), 408, "slow request")
    check(4.0 <= waited <= 9.0, "408 after %.1f s" % waited)
    slow.close()
    # SMTP was served all along, and still is.
    with s.connect() as c:
        c.expect("QUIT", "221 2.0.0 mx.test closing connection")
    eq(opslib.scrape(mport)["moat_sessions"], 0, "sessions")
    s.stop()


if __name__ == "__main__":
    moatlib.main()
