#!/usr/bin/python3
"""tests/ops/test_delivery_ops.py -- the log and the metrics of a whole
message life against real next hops on 127.0.0.1 (Debian's aiosmtpd):
accept, a delivery sent, one deferred and sent on retry, one bounced, the
bounce delivered to the sender's domain, the message removed; `moat
status` and the metrics say the same; `moat reload` over the control
socket, good and bad, and without a server.
ASAN_OK
"""

import os
import re
import socket
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "deliver"))
import opslib  # noqa: E402
from opslib import check, eq, moatlib  # noqa: E402
from moatlib import case, free_port, queued_id  # noqa: E402
from sinklib import Sink, main, queue_state, wait_for  # noqa: E402

ID = r"[0-9a-f]{16}"


def status(s):
    r = s.moat("status", "-c", s.conf_path)
    eq(r.returncode, 0, "moat status exit (stderr %r)" % r.stderr)
    out = {}
    for ln in r.stdout.decode().splitlines():
        k, _, v = ln.partition(" ")
        out[k] = v
    return out


@case
def test_accept_deliver_bounce():
    dest, senders = Sink(), Sink()
    dest.fail_first["later@dest.test"] = 1
    mport = free_port()
    s = moatlib.Server("life", {
        "delivery": "on", "dns-server": "127.0.0.1:1", "relay-network": "127.0.0.0/8",
        "retry-min": "1s", "retry-max": "2s", "timeout-reply": "5s", "timeout-connect": "3s",
        "route": ["dest.test [127.0.0.1]:%d" % dest.port,
                  "sender.test [127.0.0.1]:%d" % senders.port],
        "metrics-listen": str(mport)})
    with s.connect() as c:
        qid = queued_id(c.mail_tx("alice@sender.test",
                                  ["ok@dest.test", "later@dest.test", "perm1@dest.test"],
                                  "Subject: life\r\n\r\nhello\r\n"))
    # The original's two good recipients arrive, and the bounce for the third.
    wait_for(lambda: sorted(r for m in dest.messages for r in m.rcpts) ==
             ["later@dest.test", "ok@dest.test"], 20, "both deliveries at the sink")
    senders.wait_messages(1)
    wait_for(lambda: queue_state(s) == {}, 20, "an empty queue")
    has = lambda p, n=1: opslib.wait_log(s, "^" + p + "$", n)   # noqa: E731
    has(r"event=accept id=%s addr=127\.0\.0\.1 sid=[0-9a-f]{16} from=<alice@sender\.test> size=\d+ nrcpt=3 "
        r"to=<ok@dest\.test>,<later@dest\.test>,<perm1@dest\.test>" % qid)
    has(r"event=delivery id=%s to=<ok@dest\.test> relay=\S+ tls=none status=sent dsn=2\.0\.0 "
        r'attempts=1 reply="[^"]*" tls-policy=route tls-policy-result=none' % qid)
    has(r"event=delivery id=%s to=<later@dest\.test> relay=\S+ tls=none status=deferred "
        r'dsn=4\.3\.0 attempts=1 reply="[^"]*" tls-policy=route tls-policy-result=none' % qid)
    has(r"event=delivery id=%s to=<later@dest\.test> relay=\S+ tls=none status=sent "
        r'dsn=2\.0\.0 attempts=2 reply="[^"]*" tls-policy=route tls-policy-result=none' % qid)
    has(r"event=delivery id=%s to=<perm1@dest\.test> relay=\S+ tls=none status=bounced "
        r'dsn=5\.1\.1 attempts=1 reply="\S+ said: 550 5\.1\.1 [^"]+" tls-policy=route tls-policy-result=none' % qid)
    bounce = has(r"event=bounce id=%s orig=%s kind=failed nrcpt=1" % (ID, qid))[0]
    bid = re.search(r"id=(%s)" % ID, bounce).group(1)
    has(r"event=delivery id=%s to=<alice@sender\.test> relay=\S+ tls=none status=sent "
        r'dsn=2\.0\.0 attempts=1 reply="[^"]*" tls-policy=route tls-policy-result=none' % bid)
    has(r"event=removed id=%s reason=done" % qid)
    has(r"event=removed id=%s reason=done" % bid)
    # The metrics and `moat status` say what the log says.
    m = opslib.scrape(mport)
    want = {"moat_messages_accepted_total": 1,
            "moat_deliveries_total{status=sent}": 3,
            "moat_deliveries_total{status=deferred}": 1,
            "moat_deliveries_total{status=bounced}": 1,
            "moat_deliveries_total{status=expired}": 0,
            "moat_tls_policy_deliveries_total{policy=route}": 5,
            "moat_tls_policy_deliveries_total{policy=dane}": 0,
            "moat_tls_policy_failures_total{result=tlsa-invalid}": 0,
            "moat_bounces_total{kind=failed}": 1,
            "moat_queue_messages": 0, "moat_queue_bytes": 0,
            "moat_queue_oldest_age_seconds": 0, "moat_healthy": 1}
    for k, v in want.items():
        eq(m.get(k), v, k)
    for status_word, n in (("sent", 3), ("deferred", 1), ("bounced", 1)):
        eq(len([d for d in opslib.events(s, "delivery") if d["status"] == status_word]), n,
           "delivery lines with status=%s" % status_word)
    st = status(s)
    for k, v in {"health": "ok", "sessions": "0", "config-generation": "1",
                 "queue-messages": "0 of 100000", "queue-bytes": "0 of 2147483648",
                 "queue-oldest-age": "0", "accepted": "1", "rejected": "0",
                 "deliveries-ok": "3", "deliveries-deferred": "1",
                 "deliveries-bounced": "1"}.items():
        eq(st.get(k), v, "moat status: %s" % k)
    check(re.match(r"^\d+$", st["uptime"]), "uptime %r" % st)
    check(re.match(r"^\d+, keeping \d+$", st["disk-free"]), "disk-free %r" % st)
    s.stop()


@case
def test_moat_reload():
    s = moatlib.Server("ctlreload", {})
    with open(s.conf_path) as f:
        good = f.read()
    with open(s.conf_path, "w") as f:
        f.write(good.replace("hostname mx.test", "hostname mx2.test"))
    r = s.moat("reload", "-c", s.conf_path)
    eq((r.returncode, r.stdout.decode()),
       (0, "reloaded: generation 2, 2 listeners, 0 sessions open\n"), "moat reload")
    with moatlib.Client("127.0.0.1", s.port4) as c:
        eq(c.line(), "220 mx2.test ESMTP moat", "greeting after moat reload")
    # A file that does not parse: refused before the server is asked.
    with open(s.conf_path, "a") as f:
        f.write("max-errors many\n")
    n = len(good.splitlines()) + 1
    r = s.moat("reload", "-c", s.conf_path)
    eq((r.returncode, r.stderr.decode()),
       (1, "%s:%d: max-errors: bad number 'many'\n" % (s.conf_path, n)), "moat reload, bad file")
    # Refused by the server (a listener's port is taken): exit 1, the
    # reason; the config in force stays.
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    with open(s.conf_path, "w") as f:
        f.write(good + "listen 127.0.0.1:%d\n" % taken.getsockname()[1])
    r = s.moat("reload", "-c", s.conf_path)
    taken.close()
    eq(r.returncode, 1, "moat reload refused by the server")
    check(re.match(r"^moat reload: refused, generation 2 stays: listen 127\.0\.0\.1:\d+: "
                   r"Address (already )?in use\n$", r.stderr.decode()), r.stderr)
    eq(status(s)["config-generation"], "2", "generation after a refused reload")
    opslib.wait_log(s, r"event=reload status=refused generation=2 ")
    # Delivery settings wait for a restart, and the log says so.
    with open(s.conf_path, "w") as f:
        f.write(good + "retry-max 2h\n")
    eq(s.moat("reload", "-c", s.conf_path).returncode, 0, "moat reload")
    opslib.wait_log(s, r'level=warn msg="delivery settings stay as they were at start '
                       r'until a restart"$')
    s.stop()
    # No server: 111.
    r = s.moat("reload", "-c", s.conf_path)
    eq(r.returncode, 111, "moat reload without a server")
    check(b"moat reload: no server is running with the queue " in r.stderr, r.stderr)
    eq(s.moat("status", "-c", s.conf_path).returncode, 111, "moat status without a server")


if __name__ == "__main__":
    main()
