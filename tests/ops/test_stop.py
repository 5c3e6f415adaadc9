#!/usr/bin/python3
"""tests/ops/test_stop.py -- SIGTERM: listeners close at once, a session
between transactions gets 421 4.3.2 at once, one inside a transaction
(DATA included) finishes it and gets its 250 then the 421, a pipelined new
transaction is refused; at shutdown-timeout the rest get 421 and their
unacknowledged messages are dropped; the server exits 0 with every
acknowledged message in the queue.
ASAN_OK
"""

import signal
import socket
import time

import opslib
from opslib import Failure, check, eq, moatlib
from moatlib import DOMAIN, case, queued_id

BYE = "421 4.3.2 mx.test Service shutting down"
PART1 = "Subject: stop\r\n\r\n" + "first half\r\n" * 200
PART2 = "second half\r\n" * 200


def open_data(s, v6=False):
    c = s.connect(v6=v6)
    c.ehlo()
    c.expect("MAIL FROM:<a@example.org>", "250 2.1.0 Sender OK")
    c.expect("RCPT TO:<x@%s>" % DOMAIN, "250 2.1.5 Recipient OK")
    c.expect("DATA", "354 End data with <CR><LF>.<CR><LF>")
    return c


def wait_exit(s, seconds):
    """Wait for the server to exit; returns (status, seconds taken)."""
    t0 = time.monotonic()
    try:
        rc = s.proc.wait(seconds)
    except Exception:
        s.kill()
        raise Failure("server still running %d s after SIGTERM; log:\n%s" % (seconds, s.stderr()))
    s.proc = None
    s._scan_stderr()      # a sanitizer report fails the file's server-exit line
    return rc, time.monotonic() - t0


def refused(s):
    try:
        socket.create_connection(("127.0.0.1", s.port4), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


@case
def test_sigterm_during_data():
    s = moatlib.Server("stop", {"shutdown-timeout": 20})
    a = open_data(s)
    a.send(PART1)
    b = s.connect(v6=True)
    b.ehlo()
    c = s.connect()
    c.ehlo()
    c.expect("MAIL FROM:<c@example.org>", "250 2.1.0 Sender OK")
    time.sleep(0.2)   # the server has read A's first half
    s.proc.send_signal(signal.SIGTERM)
    # Between transactions: 421 now, then closed.
    eq(b.line(), BYE, "idle session")
    b.closed()
    check(refused(s), "a new connection after SIGTERM is accepted")
    # Inside DATA: the message is finished and acknowledged; the MAIL
    # pipelined behind it starts nothing.
    a.send(PART2 + ".\r\nMAIL FROM:<again@example.org>\r\n")
    ida = queued_id(a.one())
    eq(a.line(), BYE, "after the 250, the 421")
    a.closed()
    # After MAIL: the transaction goes on to its end.
    c.expect("RCPT TO:<y@%s>" % DOMAIN, "250 2.1.5 Recipient OK")
    c.expect("DATA", "354 End data with <CR><LF>.<CR><LF>")
    c.send("Subject: c\r\n\r\nbody\r\n.\r\n")
    idc = queued_id(c.one())
    eq(c.line(), BYE, "after the 250, the 421")
    c.closed()
    rc, took = wait_exit(s, 10)
    eq(rc, 0, "exit status")
    check(took < 5, "exit %.1f s after the last session, not at the deadline" % took)
    # Every acknowledged message is in the queue, whole.
    q = s.queue_list()
    eq(sorted(q), sorted([ida, idc]), "queued messages")
    _, msg = s.queued_message(ida)
    eq(msg, (PART1 + PART2).encode(), "the message finished during the stop")
    eq(s.incoming(), [], "incoming/ after the stop")
    opslib.wait_log(s, r"event=stop sessions=3 deliveries=0 timeout=20$")
    opslib.wait_log(s, r"event=disconnect addr=(127\.0\.0\.1|::1) sid=[0-9a-f]{16} reason=shutdown ", 3)
    opslib.wait_log(s, r"event=exit status=0$")


@case
def test_deadline_421():
    s = moatlib.Server("deadline", {"shutdown-timeout": 1})
    with s.connect() as done:
        idd = queued_id(done.mail_tx("a@example.org", ["x@" + DOMAIN], "Subject: d\r\n\r\nok\r\n"))
    e = open_data(s)
    e.send(PART1)          # and then nothing: a client that stalls in DATA
    f = s.connect(v6=True)
    f.ehlo()
    f.expect("MAIL FROM:<f@example.org>", "250 2.1.0 Sender OK")
    time.sleep(0.2)
    t0 = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    for cl, what in ((e, "stalled DATA"), (f, "open transaction")):
        eq(cl.line(timeout=5), BYE, what)
        cl.closed()
        cl.close()
    took = time.monotonic() - t0
    check(0.8 <= took <= 3.5, "the 421s came %.1f s after SIGTERM (shutdown-timeout 1)" % took)
    rc, _ = wait_exit(s, 10)
    eq(rc, 0, "exit status")
    # The acknowledged message stayed; the one cut off was never queued.
    eq(list(s.queue_list()), [idd], "queue after the deadline")
    eq(s.incoming(), [], "incoming/ after the deadline")
    opslib.wait_log(s, r"event=stop-deadline sessions=2$")


if __name__ == "__main__":
    moatlib.main()
