#!/usr/bin/python3
"""tests/deliver/test_stop_inflight.py -- SIGTERM while a delivery is in
flight ends the server cleanly (exit 0, no sanitizer report).

Found by the appliance's power button (tests/image): the shutdown freed a
delivery whose socket was ready later in the same event batch, and the
loop then read the freed io (a use-after-free, SIGSEGV).  Made certain
here: once the delivery has connected, the server is stopped (SIGSTOP),
sent SIGTERM, then its next hop answers 421, then it goes on (SIGCONT):
its next epoll_wait returns the signal and the socket in one batch, the
signal first.
ASAN_OK
"""

import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "smtp"))
import moatlib  # noqa: E402
from moatlib import case, check, eq  # noqa: E402

RUNS = 5


class Hop:
    """A next hop on a free port that holds each connection until told to
    answer 421."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(30)
        self.port = self.sock.getsockname()[1]

    def accept(self):
        c, _ = self.sock.accept()
        return c


@case
def test_sigterm_with_a_reply_in_the_same_batch():
    hop = Hop()
    for run in range(RUNS):
        s = moatlib.Server("inflight%d" % run, conf={
            "delivery": "on", "route": "example.test [127.0.0.1]:%d" % hop.port})
        with s.connect() as c:
            moatlib.queued_id(c.mail_tx("a@client.test", ["u@example.test"],
                                        "Subject: x\r\n\r\nhi\r\n"))
        conn = hop.accept()            # the delivery is connected, waiting
        time.sleep(0.05)               # ... in epoll_wait
        s.proc.send_signal(signal.SIGSTOP)
        s.proc.send_signal(signal.SIGTERM)
        conn.sendall(b"421 4.3.2 not now\r\n")
        time.sleep(0.05)
        s.proc.send_signal(signal.SIGCONT)
        try:
            rc = s.proc.wait(moatlib.STOP_SECONDS)
        finally:
            conn.close()
        err = s.stderr()
        s.proc = None
        eq(rc, 0, "run %d: exit status after SIGTERM (stderr: %s)" % (run, err[-2000:]))
        check(not moatlib.SANITIZER_RE.search(err.encode()), "run %d: sanitizer report:\n%s"
              % (run, err))
        eq(err.count("event=exit status=0"), 1, "run %d: exit logged" % run)


if __name__ == "__main__":
    moatlib.main()
