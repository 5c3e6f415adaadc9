"""tests/limits/test_session_limits.py -- the last abuse limits of a
session, against the real server: max-junk-commands, max-session-time, a
bare LF that breaks a command line, the HELO syntax reply and the
max-message-size ceiling.  Every reply is the exact text of the
docs/smtp-replies.md table, and each closing session's disconnect line
names its reason.

ASAN_OK: run.sh runs this file against build/moat and build/moat-asan.

Run:  BUILD=build MOAT=build/moat /usr/bin/python3 tests/limits/test_session_limits.py [case ...]
"""

import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "smtp"))
from moatlib import (HOST, MOAT, Failure, Server, case, check, eq, main,  # noqa: E402
                     queued_id, shared)

OK = "250 2.0.0 OK"
SENDER_OK = "250 2.1.0 Sender OK"
RCPT_OK = "250 2.1.5 Recipient OK"
GO_AHEAD = "354 End data with <CR><LF>.<CR><LF>"
BARE = "500 5.5.2 Bare CR or LF in command line"
JUNK = "421 4.7.0 %s Too many junk commands, closing connection" % HOST
LATE = "421 4.4.2 %s Session time limit reached, closing connection" % HOST


def wait_log(s, pattern, timeout=10):
    """The server's log matches pattern within timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if re.search(pattern, s.stderr(tail=1 << 20)):
            return
        time.sleep(0.05)
    raise Failure("no log line %r; log tail:\n%s" % (pattern, s.stderr()))


@case
def test_junk_default_100():
    # The default: the 100th NOOP is answered, the 101st gets the 421.
    s = shared("default")
    with s.connect() as c:
        c.ehlo()
        for i in range(100):
            eq(c.cmd("NOOP"), OK, "NOOP %d" % (i + 1))
        eq(c.cmd("NOOP"), JUNK, "NOOP 101")
        c.closed()
    wait_log(s, r"event=disconnect addr=127\.0\.0\.1 sid=[0-9a-f]{16} reason=too-many-junk-commands ")


@case
def test_junk_counts_rset_vrfy_help_and_errors():
    s = shared("junk4", {"max-junk-commands": 4})
    with s.connect() as c:
        c.ehlo()
        eq(c.cmd("RSET"), OK)
        eq(c.cmd("VRFY bob"), "252 2.5.0 Cannot VRFY user; try RCPT")
        eq(c.cmd("HELP"), "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP")
        eq(c.cmd("FOO"), "500 5.5.1 Command unrecognized")
        c.send("NOOP\r\n")
        eq(c.one(), JUNK, "the fifth")
        c.closed()
    # A failed command past the limit is answered, then the 421.
    with s.connect() as c:
        c.ehlo()
        for _ in range(4):
            eq(c.cmd("NOOP"), OK)
        c.send("BAR\r\n")
        eq(c.one(), "500 5.5.1 Command unrecognized")
        eq(c.one(), JUNK, "after the failed fifth")
        c.closed()


@case
def test_junk_forgiven_by_a_queued_message():
    s = shared("junk4", {"max-junk-commands": 4})
    with s.connect() as c:
        c.ehlo()
        for _ in range(4):
            eq(c.cmd("NOOP"), OK)
        queued_id(c.mail_tx("a@example.org", ["bob@example.test"], "Subject: j\r\n\r\nx\r\n",
                            ehlo=False))
        for _ in range(4):
            eq(c.cmd("NOOP"), OK)
        eq(c.cmd("QUIT"), "221 2.0.0 %s closing connection" % HOST)
        c.closed()


@case
def test_session_time_busy_client():
    # A client that keeps talking is still cut at max-session-time.
    s = shared("short", {"max-session-time": "2s", "max-junk-commands": 0})
    with s.connect() as c:
        c.ehlo()
        start = time.monotonic()
        for _ in range(100):
            r = c.cmd("NOOP", timeout=10)
            if r != OK:
                break
            time.sleep(0.2)
        eq(r, LATE, "reply once the session's time is over")
        check(time.monotonic() - start < 30, "the session ran on past 30 s")
        c.closed()
    wait_log(s, r"event=disconnect addr=127\.0\.0\.1 sid=[0-9a-f]{16} reason=session-time ")


@case
def test_session_time_idle_client():
    # An idle client (timeout-command is 300 s) is cut too.
    s = shared("short", {"max-session-time": "2s", "max-junk-commands": 0})
    with s.connect() as c:
        c.ehlo()
        eq(c.one(timeout=15), LATE)
        c.closed()


@case
def test_session_time_in_data():
    # Inside DATA the message is dropped: nothing is queued.
    s = shared("short", {"max-session-time": "2s", "max-junk-commands": 0})
    before = s.queue_list()
    with s.connect() as c:
        c.ehlo()
        eq(c.cmd("MAIL FROM:<a@example.org>"), SENDER_OK)
        eq(c.cmd("RCPT TO:<bob@example.test>"), RCPT_OK)
        eq(c.cmd("DATA"), GO_AHEAD)
        for _ in range(100):
            try:
                c.send("a line of a slow message\r\n")
            except OSError:
                break
            if c.buf or c._fill(time.monotonic() + 0.2):
                break
        eq(c.one(timeout=15), LATE)
        c.closed()
    eq(s.queue_list(), before, "the queue after a session cut in DATA")


@case
def test_bare_lf_discards_line():
    s = shared("default")
    with s.connect() as c:
        c.ehlo()
        # Before: a 500, then the MAIL ran (250).  Now one line, one 500.
        c.send("NOOP\nMAIL FROM:<evil@example.org>\r\n")
        eq(c.one(), BARE)
        c.quiet()
        # The smuggled MAIL never ran: this one is the first.
        eq(c.cmd("MAIL FROM:<a@example.org>"), SENDER_OK)
        # The same when the line arrives in pieces.
        c.send("RSET\n")
        eq(c.one(), BARE)
        c.send("DATA\n")
        c.send("RCPT TO:<bob@example.test>")
        c.quiet()
        c.send("\r\n")
        c.quiet()
        eq(c.cmd("RCPT TO:<bob@example.test>"), RCPT_OK)
        eq(c.cmd("QUIT"), "221 2.0.0 %s closing connection" % HOST)
        c.closed()
    wait_log(s, r"event=reject addr=127\.0\.0\.1 sid=[0-9a-f]{16} code=500 reason=bare-newline-command")


@case
def test_helo_syntax():
    s = shared("default")
    with s.connect() as c:
        eq(c.cmd("HELO"), "501 5.5.4 Syntax: HELO domain")
        eq(c.cmd("EHLO"), "501 5.5.4 Syntax: EHLO domain")
        eq(c.cmd("HELO client.test"), "250 %s" % HOST)
        eq(c.cmd("QUIT"), "221 2.0.0 %s closing connection" % HOST)


@case
def test_max_message_size_ceiling():
    # 1G is the ceiling: accepted and advertised; a byte more is refused.
    s = Server("ceiling", {"max-message-size": "1G", "queue-max-bytes": "2G"})
    with s.connect() as c:
        check("250-SIZE 1073741824" in c.ehlo(), "EHLO advertises SIZE 1073741824")
    s.stop()
    path = os.path.join(s.dir, "over.conf")
    with open(s.conf_path) as f:
        text = f.read().replace("max-message-size 1G", "max-message-size 1025M")
    with open(path, "w") as f:
        f.write(text)
    r = s.moat("check", "-c", path)
    eq(r.returncode, 1, "moat check exit status")
    line = [n for n, t in enumerate(text.splitlines(), 1) if t.startswith("max-message-size")][0]
    eq(r.stderr.decode().strip(), "%s:%d: max-message-size: 1025M is above the maximum 1G"
       % (path, line))


if __name__ == "__main__":
    check(os.path.exists(MOAT), "no binary")
    main()
