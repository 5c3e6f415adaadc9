#!/usr/bin/python3
"""tests/roles/test_queue_stall.py -- the smtp role never waits on the
queue role (mta/net/queue_client.h).

The queue role is stopped (SIGSTOP) while one client's message waits for
its commit.  Meanwhile a new client's greeting and EHLO, /health and
`moat status` answer at once (health: 503 "queue does not answer"), and
that client's message gets a temporary refusal (451 at DATA) within a
bounded time rather than hanging.  After SIGCONT the waiting message gets
its 250, it is in the queue, health is 200 again and mail flows.

Needs root (SIGSTOP of a role running as the run uid).
Run:  BUILD=build MOAT=build/moat /usr/bin/python3 tests/roles/test_queue_stall.py
"""

import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "smtp"))
sys.path.insert(0, os.path.join(HERE, "..", "ops"))
import moatlib  # noqa: E402
import opslib  # noqa: E402
from moatlib import DOMAIN, MOAT, case, check, eq, free_port, queued_id  # noqa: E402

STALL_SECONDS = 2.0     # QC_STALL_MS: the queue is taken as stalled past this
AT_ONCE = 1.0           # what "at once" allows on a loaded test machine
REFUSED_WITHIN = 3.0    # a new message's refusal, from DATA


def timed(fn):
    t0 = time.monotonic()
    r = fn()
    return r, time.monotonic() - t0


@case
def test_stalled_queue_does_not_stall_sessions():
    mport = free_port()
    s = moatlib.Server("stall", {"metrics-listen": "127.0.0.1:%d" % mport})
    os.chmod(s.dir, 0o755)
    eq(opslib.curl(mport, "/health")[::2], (200, "ok\n"), "healthy at start")
    qpid = s.role_pid("queue")
    a = s.connect()
    stopped = False
    try:
        a.ehlo()
        eq(a.cmd("MAIL FROM:<a@example.org>"), "250 2.1.0 Sender OK", "A: MAIL")
        eq(a.cmd("RCPT TO:<x@%s>" % DOMAIN), "250 2.1.5 Recipient OK", "A: RCPT")
        eq(a.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>", "A: DATA")
        a.send("Subject: waits\r\n\r\nfor its commit\r\n")
        os.kill(qpid, signal.SIGSTOP)
        stopped = True
        a.send(".\r\n")
        a.quiet(STALL_SECONDS + 0.5)          # no answer while the queue is stopped

        # A new client is served at once...
        b, dt = timed(lambda: s.connect())
        check(dt < AT_ONCE, "greeting after %.2f s" % dt)
        _, dt = timed(lambda: b.ehlo())
        check(dt < AT_ONCE, "EHLO reply after %.2f s" % dt)
        (status, _, body), dt = timed(lambda: opslib.curl(mport, "/health"))
        check(dt < AT_ONCE + 1, "/health after %.2f s" % dt)
        eq((status, body), (503, "queue does not answer\n"), "/health while stalled")
        r, dt = timed(lambda: subprocess.run([MOAT, "status", "-c", s.conf_path],
                                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                             timeout=10))
        check(dt < AT_ONCE + 1, "moat status after %.2f s" % dt)
        check(b"health queue does not answer" in r.stdout, "status: %r" % r.stdout)
        # ... and its message is refused for now, not left hanging.
        eq(b.cmd("MAIL FROM:<b@example.org>"), "250 2.1.0 Sender OK", "B: MAIL")
        eq(b.cmd("RCPT TO:<y@%s>" % DOMAIN), "250 2.1.5 Recipient OK", "B: RCPT")
        reply, dt = timed(lambda: b.cmd("DATA", timeout=REFUSED_WITHIN + 2))
        check(re.match(r"^451 4\.3\.0 ", reply), "B: DATA while stalled: %r" % reply)
        check(dt < REFUSED_WITHIN, "B: DATA refused after %.2f s" % dt)
        eq(b.cmd("QUIT"), "221 2.0.0 %s closing connection" % moatlib.HOST, "B: QUIT")
        b.close()

        os.kill(qpid, signal.SIGCONT)
        stopped = False
        qid = queued_id(a.one(timeout=10))    # the message that waited
        eq(a.cmd("QUIT"), "221 2.0.0 %s closing connection" % moatlib.HOST, "A: QUIT")
    finally:
        if stopped:
            os.kill(qpid, signal.SIGCONT)
        a.close()
    # Health recovers, mail flows, and the waiting message is queued.
    deadline = time.monotonic() + 10
    while opslib.curl(mport, "/health")[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    eq(opslib.curl(mport, "/health")[::2], (200, "ok\n"), "healthy again")
    with s.connect() as c:
        queued_id(c.mail_tx("c@example.org", ["z@" + DOMAIN], "Subject: after\r\n\r\nok\r\n"))
    check(qid in s.queue_list(), "the waiting message %s is queued" % qid)
    eq(s.stop(), 0, "exit status after SIGTERM")


if __name__ == "__main__":
    moatlib.main()
