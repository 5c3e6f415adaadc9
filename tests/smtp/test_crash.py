"""tests/smtp/test_crash.py -- kill -9 of the server, then restart:
a message cut off in DATA leaves nothing behind; a message answered 250
survives whole.

Not run against the ASan build: SIGKILL tests the musl binary only.
Run:  BUILD=build MOAT=build/moat /usr/bin/python3 tests/smtp/test_crash.py [case ...]
"""

import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from moatlib import Failure, Server, case, check, eq, main, queued_id  # noqa: E402

SEED = 20240605          # the bodies are reproducible
KILLS = 20               # messages in the kill-after-250 loop
SPILL = 64 * 1024        # QUEUE_DRAFT_MEM: larger drafts go to incoming/
PRINTABLE = bytes(33 + i % 94 for i in range(256))


def crash_server(name):
    return Server(name, {"max-message-size": 8000000, "timeout-data": 30})


def make_body(rng, size):
    """CRLF lines of printable text, some starting with '.', about size
    bytes.  Returns (as sent, dot-stuffed; as it must be stored)."""
    lines = []
    n = 0
    while n < size:
        k = rng.choice((0, 1, 10, 76, 200, 998))
        line = rng.randbytes(k).translate(PRINTABLE)
        if rng.random() < 0.1:
            line = b"." + line[1:] if line else b"."
        lines.append(line + b"\r\n")
        n += len(line) + 2
    raw = b"".join(lines)
    stuffed = b"".join(b"." + ln if ln.startswith(b".") else ln for ln in lines)
    return stuffed, raw


def wait_for(pred, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise Failure("timed out (%ds) waiting for %s" % (seconds, what))


@case
def test_kill_during_data():
    s = crash_server("kill-data")
    rng = random.Random(SEED)
    stuffed, _ = make_body(rng, 1024 * 1024)
    c = s.connect()
    with c:
        c.ehlo()
        eq(c.cmd("MAIL FROM:<alice@example.org>"), "250 2.1.0 Sender OK", "MAIL")
        eq(c.cmd("RCPT TO:<bob@example.test>"), "250 2.1.5 Recipient OK", "RCPT")
        eq(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>", "DATA")
        c.send(stuffed)   # a whole megabyte and no terminator
        wait_for(lambda: s.incoming(), 10, "a spool file in %s/incoming" % s.queue_dir)
        # let the server read the rest, so the spool holds well over 64 KiB
        spool = os.path.join(s.queue_dir, "incoming", s.incoming()[0])
        try:
            wait_for(lambda: os.path.getsize(spool) > SPILL, 10, "spool file over 64 KiB")
        except FileNotFoundError:
            pass
        s.kill()
    s.start()
    eq(s.queue_list(), {}, "queue after a kill in DATA")
    eq(s.incoming(), [], "incoming/ after restart")
    # the restarted server works
    with s.connect() as c:
        qid = queued_id(c.mail_tx("alice@example.org", ["bob@example.test"], b"after\r\n"))
    eq(list(s.queue_list()), [qid], "queue after one message")
    s.stop()


@case
def test_kill_after_250():
    s = crash_server("kill-250")
    rng = random.Random(SEED + 1)
    want = {}
    for i in range(KILLS):
        size = rng.choice((0, 100, 5000, SPILL - 100, SPILL + 100, 300000, 1500000))
        stuffed, raw = make_body(rng, size)
        raw = b"Subject: crash %d\r\n\r\n" % i + raw
        stuffed = b"Subject: crash %d\r\n\r\n" % i + stuffed
        c = s.connect()
        with c:
            qid = queued_id(c.mail_tx("alice@example.org", ["bob%d@example.test" % i], stuffed))
            s.kill()   # no QUIT: the 250 is all the client got
        check(qid not in want, "queue id %s given twice" % qid)
        want[qid] = raw
        s.start()
        listed = s.queue_list()
        eq(sorted(listed), sorted(want), "queue after kill %d" % i)
        eq(listed[qid], ["bob%d@example.test" % i], "recipients of %s" % qid)
        got = s.queued_message(qid)[1]
        check(got == raw, "message %s (kill %d): stored %d bytes, sent %d; first difference at %s"
              % (qid, i, len(got), len(raw),
                 next((k for k in range(min(len(got), len(raw))) if got[k] != raw[k]),
                      min(len(got), len(raw)))))
        eq(s.incoming(), [], "incoming/ after restart %d" % i)
    # every earlier message is still whole
    for qid, raw in want.items():
        eq(s.queued_message(qid)[1], raw, "message %s at the end" % qid)
    s.stop()


@case
def test_kill_with_pipelined_messages():
    # Several messages in flight on several connections; every one that got
    # a 250 before the kill must be there after it.
    s = crash_server("kill-many")
    rng = random.Random(SEED + 2)
    clients, bodies = [], []
    for i in range(8):
        stuffed, raw = make_body(rng, rng.choice((1000, 100000)))
        c = s.connect()
        c.ehlo()
        c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<r%d@example.test>\r\nDATA\r\n" % i)
        eq([c.one(), c.one(), c.one()], ["250 2.1.0 Sender OK", "250 2.1.5 Recipient OK",
                                         "354 End data with <CR><LF>.<CR><LF>"], "replies %d" % i)
        clients.append(c)
        bodies.append((stuffed, raw))
    for c, (stuffed, _) in zip(clients, bodies):
        c.send(stuffed + b".\r\n")
    got = {}
    for c, (_, raw) in zip(clients, bodies):
        got[queued_id(c.one(timeout=30))] = raw
    s.kill()
    for c in clients:
        c.close()
    s.start()
    eq(sorted(s.queue_list()), sorted(got), "queue after the kill")
    for qid, raw in got.items():
        eq(s.queued_message(qid)[1], raw, "message %s" % qid)
    s.stop()


if __name__ == "__main__":
    main()
