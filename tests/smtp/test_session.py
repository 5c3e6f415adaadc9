"""tests/smtp/test_session.py -- raw SMTP sessions against the real server.

ASAN_OK: run.sh runs this file against build/moat and build/moat-asan.

Every reply asserted here is the docs/smtp-replies.md "SMTP replies" table, exactly.
Run:  BUILD=build MOAT=build/moat /usr/bin/python3 tests/smtp/test_session.py [case ...]
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from moatlib import (HOST, Server, add_case, case, check, eq, main,  # noqa: E402
                     queued_id, shared)

MAX_SIZE = 100000
MAX_RCPTS = 100   # the smallest moat accepts (RFC 5321 4.5.3.1.8)

OK = "250 2.0.0 OK"
SENDER_OK = "250 2.1.0 Sender OK"
RCPT_OK = "250 2.1.5 Recipient OK"
GO_AHEAD = "354 End data with <CR><LF>.<CR><LF>"
UNRECOGNIZED = "500 5.5.1 Command unrecognized"
NOT_IMPL = "502 5.5.1 Command not implemented"
TOO_LONG = "500 5.5.2 Line too long"
BARE = "500 5.5.2 Bare CR or LF in command line"
NUL = "500 5.5.2 NUL in command line"
SYNTAX = "501 5.5.4 Syntax error in parameters"
BAD_DATA = "554 5.6.0 Bare CR or LF in message data; message rejected"
TOO_BIG = "552 5.3.4 Message size exceeds fixed maximum message size"
DENIED = "554 5.7.1 <%s>: Relay access denied"
ROUTING = "554 5.7.1 <%s>: Relay access denied (routing characters in local part)"


def main_server():
    # relay only from ::1, so 127.0.0.1 is an outsider
    return shared("main", {"relay-network": "::1/128", "max-message-size": MAX_SIZE})


def limits_server():
    return shared("limits", {"timeout-command": 2, "timeout-data": 2,
                             "max-errors": 3, "max-recipients": MAX_RCPTS})


def session(v6=False):
    """A connection to the main server, EHLO done."""
    c = main_server().connect(v6=v6)
    c.ehlo()
    return c


def tx(c, rcpt="bob@example.test", sender="alice@example.org"):
    eq(c.cmd("MAIL FROM:<%s>" % sender), SENDER_OK, "MAIL")
    eq(c.cmd("RCPT TO:<%s>" % rcpt), RCPT_OK, "RCPT")
    eq(c.cmd("DATA"), GO_AHEAD, "DATA")


# ------------------------------------------------------------ greeting, EHLO

@case
def test_check_config():
    s = main_server()
    r = s.moat("check", "-c", s.conf_path)
    eq(r.returncode, 0, "moat check on a good config (stderr %r)" % r.stderr[-300:])
    bad = os.path.join(s.dir, "bad.conf")
    with open(bad, "w") as f:
        f.write("hostname mx.test\nno-such-directive 1\n")
    r = s.moat("check", "-c", bad)
    check(r.returncode != 0, "moat check accepted an unknown directive")


@case
def test_greeting():
    with main_server().connect() as c:   # connect() asserts the exact 220
        c.quiet(0.3)


@case
def test_ehlo():
    with main_server().connect() as c:
        c.send("EHLO client.test\r\n")
        eq(c.reply(), ["250-%s Hello [127.0.0.1]" % HOST, "250-PIPELINING",
                       "250-SIZE %d" % MAX_SIZE, "250-8BITMIME",
                       "250-ENHANCEDSTATUSCODES", "250-DSN", "250 SMTPUTF8"], "EHLO reply")


@case
def test_ehlo_ipv6():
    with main_server().connect(v6=True) as c:
        c.send("EHLO client.test\r\n")
        r = c.reply()
        eq(r, ["250-%s Hello [::1]" % HOST, "250-PIPELINING", "250-SIZE %d" % MAX_SIZE,
               "250-8BITMIME", "250-ENHANCEDSTATUSCODES", "250-DSN", "250 SMTPUTF8"], "EHLO over IPv6")


@case
def test_ehlo_lower_case_verb():
    with main_server().connect() as c:
        c.send("ehlo client.test\r\n")
        eq(c.reply()[-1], "250 SMTPUTF8", "last EHLO line")


# ------------------------------------------------------------ scripted sessions
#
# Each script is one connection to the main server (from 127.0.0.1, which
# may not relay): a list of (command, reply).  The reply is the exact line,
# or PREFIX + text when docs/smtp-replies.md leaves the rest open (say which), or
# CLOSED after the reply (the server must close).  EHLO is a step
# (command "EHLO", its multi-line reply checked by test_ehlo).

PREFIX = "prefix:"
MAIL_A = ("MAIL FROM:<a@example.org>", SENDER_OK)
EHLO = ("EHLO", None)
NEED_MAIL = "503 5.5.1 Need MAIL before RCPT"
BAD_SENDER = "501 5.1.7 Bad sender address syntax"
BAD_RCPT = "501 5.1.3 Bad recipient address syntax"
NON_ASCII = "553 5.6.7 Non-ASCII address requires SMTPUTF8"
QUIT_OK = "221 2.0.0 %s closing connection" % HOST

SCRIPTS = {
    "helo": [("HELO client.test", "250 %s" % HOST), MAIL_A],
    "ehlo-helo-without-domain": [
        ("EHLO", "501 5.5.4 Syntax: EHLO domain"),
        ("HELO", PREFIX + "501 5.5.4 Syntax: "),   # the table names EHLO only
        ("MAIL FROM:<a@example.org>", "503 5.5.1 Send HELO/EHLO first")],
    "simple-commands": [
        EHLO, ("NOOP", OK), ("RSET", OK), ("noop", OK),
        ("VRFY bob", "252 2.5.0 Cannot VRFY user; try RCPT"),
        ("HELP", "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP")],
    "quit": [("QUIT", QUIT_OK), ("", "CLOSED")],
    "quit-in-transaction": [EHLO, MAIL_A, ("QUIT", QUIT_OK), ("", "CLOSED")],
    "unknown-and-not-implemented": [
        EHLO, ("FOO bar", UNRECOGNIZED), ("XYZZY", UNRECOGNIZED),
        ("EXPN staff", NOT_IMPL), ("BDAT 10 LAST", NOT_IMPL), ("STARTTLS", NOT_IMPL),
        ("AUTH PLAIN AGFsaWNlAHNlY3JldA==", NOT_IMPL), ("NOOP", OK)],
    # sequence
    "mail-before-ehlo": [("MAIL FROM:<a@example.org>", "503 5.5.1 Send HELO/EHLO first")],
    "rcpt-before-mail": [EHLO, ("RCPT TO:<bob@example.test>", NEED_MAIL)],
    "data-before-rcpt": [EHLO, MAIL_A, ("DATA", "503 5.5.1 Need RCPT before DATA")],
    "data-before-mail": [EHLO, ("DATA", PREFIX + "503 5.5.1 ")],  # which text: open
    "second-mail": [EHLO, MAIL_A,
                    ("MAIL FROM:<b@example.org>", "503 5.5.1 Sender already specified")],
    "rset-ends-transaction": [
        EHLO, MAIL_A, ("RCPT TO:<bob@example.test>", RCPT_OK), ("RSET", OK),
        ("RCPT TO:<bob@example.test>", NEED_MAIL), MAIL_A],
    # RFC 5321 4.1.4: EHLO in a transaction clears it, as RSET does.
    "ehlo-resets-transaction": [EHLO, MAIL_A, EHLO, ("RCPT TO:<bob@example.test>", NEED_MAIL)],
    "data-with-every-rcpt-refused": [
        EHLO, MAIL_A, ("RCPT TO:<x@evil.example>", DENIED % "x@evil.example"),
        ("DATA", "554 5.5.1 No valid recipients"), ("NOOP", OK)],
    # syntax and parameters
    "syntax-errors": [
        EHLO, ("MAIL", SYNTAX), ("MAIL TO:<a@example.org>", SYNTAX),
        ("MAIL FROM:a@example.org", SYNTAX), ("MAIL FROM:<a@example.org", SYNTAX),
        ("RSET now", SYNTAX), ("QUIT now", SYNTAX), MAIL_A,
        ("RCPT bob@example.test", SYNTAX), ("RCPT TO:bob@example.test", SYNTAX),
        ("DATA now", SYNTAX), ("NOOP", OK)],
    "bad-addresses": [
        EHLO, ("MAIL FROM:<a@@example.org>", BAD_SENDER),
        ("MAIL FROM:<a b@example.org>", BAD_SENDER), ("MAIL FROM:<@>", BAD_SENDER),
        ("MAIL FROM:<>", SENDER_OK),   # the null sender
        ("RCPT TO:<>", BAD_RCPT), ("RCPT TO:<bob@@example.test>", BAD_RCPT),
        ("RCPT TO:<bob@exa mple.test>", BAD_RCPT), ("RCPT TO:<bob@example..test>", BAD_RCPT),
        ("RCPT TO:<bob@example.test>", RCPT_OK)],
    "non-ascii-without-smtputf8": [
        EHLO, ("MAIL FROM:<j\u00f6rg@example.org>", NON_ASCII), MAIL_A,
        ("RCPT TO:<j\u00f6rg@example.test>", NON_ASCII), ("RSET", OK),
        ("MAIL FROM:<j\u00f6rg@example.org> SMTPUTF8", SENDER_OK),
        ("RCPT TO:<j\u00f6rg@example.test>", RCPT_OK)],
    "unknown-parameter": [
        EHLO, ("MAIL FROM:<a@example.org> FOO=bar", "555 5.5.4 Unsupported parameter FOO"),
        # DSN's parameters (RFC 3461) on the other command than theirs
        ("MAIL FROM:<a@example.org> NOTIFY=NEVER", "555 5.5.4 Unsupported parameter NOTIFY"),
        MAIL_A,
        ("RCPT TO:<bob@example.test> RET=HDRS", "555 5.5.4 Unsupported parameter RET"),
        ("RCPT TO:<bob@example.test> SIZE=10", "555 5.5.4 Unsupported parameter SIZE"),
        ("RCPT TO:<bob@example.test>", RCPT_OK)],
    "size-and-body-parameters": [
        EHLO, ("MAIL FROM:<a@example.org> SIZE=abc", "501 5.5.4 Bad SIZE parameter"),
        ("MAIL FROM:<a@example.org> SIZE=-1", "501 5.5.4 Bad SIZE parameter"),
        ("MAIL FROM:<a@example.org> BODY=9BIT", "501 5.5.4 Bad BODY parameter"),
        ("MAIL FROM:<a@example.org> SIZE=%d" % (MAX_SIZE + 1), TOO_BIG),
        ("MAIL FROM:<a@example.org> SIZE=9999999999999999999", TOO_BIG),
        ("MAIL FROM:<a@example.org> SIZE=%d BODY=8BITMIME" % MAX_SIZE, SENDER_OK),
        ("RSET", OK), ("MAIL FROM:<a@example.org> body=7bit size=10", SENDER_OK)],
    # RFC 1870 allows 20 digits: a number over 2^64 is still a size, too big
    "size-over-64-bits": [EHLO, ("MAIL FROM:<a@example.org> SIZE=99999999999999999999", TOO_BIG)],
    # relay, from 127.0.0.1 (outside relay-network ::1/128)
    "relay-denied-outsider": [
        EHLO, MAIL_A, ("RCPT TO:<user@evil.com>", DENIED % "user@evil.com"),
        ("RCPT TO:<user@sub.example.test>", DENIED % "user@sub.example.test"),
        ("RCPT TO:<user@example.test.evil.com>", DENIED % "user@example.test.evil.com")],
    "routing-characters": [EHLO, MAIL_A] + [
        ("RCPT TO:<%s>" % a, ROUTING % a)
        for a in ("user%evil.com@example.test", "evil.com!user@example.test",
                  '"user@evil.com"@example.test')] + [("RCPT TO:<user@example.test>", RCPT_OK)],
    # the source route is dropped and the address after it is judged
    "source-route-dropped": [
        EHLO, MAIL_A, ("RCPT TO:<@example.test:user@evil.com>", DENIED % "user@evil.com"),
        ("RCPT TO:<@a.example,@example.test:user@evil.com>", DENIED % "user@evil.com"),
        ("RCPT TO:<@evil.com:user@example.test>", RCPT_OK)],
    "address-literal-and-trailing-dot": [
        EHLO, MAIL_A, ("RCPT TO:<user@[127.0.0.1]>", PREFIX + "554 5.7.1 "),
        ("RCPT TO:<user@EXAMPLE.TEST.>", RCPT_OK), ("RCPT TO:<User@Example.Test>", RCPT_OK)],
}


def run_script(steps):
    with main_server().connect() as c:
        for cmd, want in steps:
            if want is None:
                c.ehlo()
            elif want == "CLOSED":
                c.closed()
            elif want.startswith(PREFIX):
                r = c.cmd(cmd)
                check(r.startswith(want[len(PREFIX):]), "%r: want %r..., got %r"
                      % (cmd, want[len(PREFIX):], r))
            else:
                c.expect(cmd, want)


for _name, _steps in SCRIPTS.items():
    add_case(_name, lambda steps=_steps: run_script(steps))


# ------------------------------------------------------------ line framing

@case
def test_long_line_boundary():
    with session() as c:
        # 2048 octets including CRLF: not over the limit.
        line = "NOOP " + "a" * (2048 - 7)
        eq(len(line) + 2, 2048, "line length")
        c.expect(line, OK, "2048-octet NOOP")
        # 2051 octets including CRLF: over it however CRLF is counted.
        c.expect("NOOP " + "a" * (2051 - 7), TOO_LONG, "2051-octet NOOP")
        c.expect("NOOP", OK)


@case
def test_long_line_tail_not_run():
    # The tail of a too-long line must never run: it is QUIT (which would
    # close), RSET (which would end the transaction) or MAIL (which would
    # make the next MAIL a 503), placed at offsets a chunked reader might cut.
    for tail in ("QUIT", "RSET", "MAIL FROM:<x@example.org>"):
        for cut in (2046, 2047, 2048, 2049, 3072, 4096, 4994):
            with session() as c:
                c.expect("MAIL FROM:<a@example.org>", SENDER_OK)
                c.expect("RCPT TO:<bob@example.test>", RCPT_OK)
                c.send("A" * cut + tail + "\r\n")
                eq(c.one(), TOO_LONG, "reply to a %d-octet line ending %r" % (cut + len(tail) + 2, tail))
                c.quiet(0.2)
                # transaction intact: a second MAIL is still out of sequence
                c.expect("MAIL FROM:<b@example.org>", "503 5.5.1 Sender already specified",
                         "after long line ending %r cut %d" % (tail, cut))
                c.expect("NOOP", OK)


@case
def test_long_line_in_pieces():
    # 5000 octets arriving slowly, the tail (QUIT) in a later write.
    with session() as c:
        for _ in range(5):
            c.send("B" * 999)
            time.sleep(0.05)
        c.raw("QUIT\r\n", TOO_LONG, "reply to a 5000-octet line")
        c.expect("NOOP", OK)


@case
def test_bare_lf_cr_nul_in_command():
    with session() as c:
        c.raw("NOOP\n", BARE)
        c.send("NOOP\r\n")   # the rest of the line a bare LF broke, to its CRLF:
        c.quiet(0.2)          # discarded, not run, not answered again
        c.expect("NOOP", OK)
        c.raw("NOOP\rQUIT\r\n", BARE)   # a bare CR does not split the line
        c.quiet(0.2)
        c.raw("NO\x00OP\r\n", NUL)
        c.raw("QUIT\x00\r\n", NUL)
        c.expect("NOOP", OK)
        c.raw("MAIL FROM:<a@example.org>\n", BARE)   # and MAIL did not run,
        c.send("RCPT TO:<bob@example.test>\r\n")     # nor what follows it on its line:
        c.quiet(0.2)
        c.expect("RCPT TO:<bob@example.test>", "503 5.5.1 Need MAIL before RCPT")


@case
def test_pipelining():
    with session() as c:
        c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<bob@example.test>\r\n"
               "RCPT TO:<carol@example.test>\r\nRCPT TO:<x@evil.example>\r\nDATA\r\n")
        eq([c.one() for _ in range(5)],
           [SENDER_OK, RCPT_OK, RCPT_OK, DENIED % "x@evil.example", GO_AHEAD], "pipelined replies")
        c.send("Subject: pipelined\r\n\r\nhello\r\n.\r\nNOOP\r\nQUIT\r\n")
        queued_id(c.one())
        eq(c.one(), OK, "NOOP after the message")
        eq(c.one(), "221 2.0.0 %s closing connection" % HOST, "QUIT")
        c.closed()


@case
def test_pipelined_whole_session():
    s = main_server()
    with s.connect() as c:
        # EHLO alone: pipelining before its reply is refused (tests/edge)
        c.send("EHLO pipe.test\r\n")
        eq(c.reply()[-1], "250 SMTPUTF8", "EHLO")
        c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
        eq([c.one() for _ in range(3)], [SENDER_OK, RCPT_OK, GO_AHEAD], "replies")
        c.send("Subject: x\r\n\r\nbody\r\n.\r\nMAIL FROM:<b@example.org>\r\n"
               "RCPT TO:<carol@example.test>\r\nDATA\r\n")
        q1 = queued_id(c.one())
        eq([c.one() for _ in range(3)], [SENDER_OK, RCPT_OK, GO_AHEAD], "second transaction")
        c.send("Subject: y\r\n\r\nbody2\r\n.\r\nQUIT\r\n")
        q2 = queued_id(c.one())
        check(q2 > q1, "queue ids not increasing: %s then %s" % (q1, q2))
        c.one()
        c.closed()
    eq(s.queue_list().get(q2), ["carol@example.test"], "recipients of %s" % q2)


@case
def test_pipelined_garbage():
    with session() as c:
        c.send("FOO\r\nNOOP\r\nBAR baz\r\nRSET\r\n\x01\x02\x03\r\nVRFY x\r\n")
        eq([c.one() for _ in range(6)],
           [UNRECOGNIZED, OK, UNRECOGNIZED, OK, UNRECOGNIZED,
            "252 2.5.0 Cannot VRFY user; try RCPT"], "replies")
        c.quiet(0.3)


# ------------------------------------------------------------ DATA

@case
def test_message_queued():
    s = main_server()
    msg = b"Subject: queued\r\nFrom: a@example.org\r\n\r\nline one\r\nline two\r\n"
    with session() as c:
        qid = queued_id(c.mail_tx("alice@example.org", ["bob@example.test", "carol@EXAMPLE.test"],
                                  msg, ehlo=False))
        c.expect("NOOP", OK)
        # transaction reset after the message
        c.expect("RCPT TO:<bob@example.test>", "503 5.5.1 Need MAIL before RCPT")
    env, rest = s.queued_message(qid)
    eq(rest, msg, "stored message after Received:")
    check(b"alice@example.org" in env, "envelope lacks the sender: %r" % env)
    rc = s.queue_list().get(qid)
    check(rc is not None, "queue list lacks %s" % qid)
    eq(len(rc), 2, "recipient count in queue list %r" % rc)
    check(any("bob@example.test" in r for r in rc), "queue list lacks bob: %r" % rc)


@case
def test_queue_show_missing():
    s = main_server()
    rc, out = s.queue_show("ffffffffffff0000")
    eq(rc, 1, "queue show of a missing id: exit status")


@case
def test_dot_stuffing():
    s = main_server()
    sent = (b"Subject: dots\r\n\r\n..\r\n..leading\r\n...\r\nmid.dle\r\n. x\r\n"
            b"..\r\nend\r\n")
    want = (b"Subject: dots\r\n\r\n.\r\n.leading\r\n..\r\nmid.dle\r\n x\r\n"
            b".\r\nend\r\n")
    with session() as c:
        qid = queued_id(c.mail_tx("a@example.org", ["bob@example.test"], sent, ehlo=False))
    # RFC 5321 4.5.2: the first "." of any line that starts with one goes,
    # so ". x" is stored as " x".
    eq(s.queued_message(qid)[1], want, "stored body")


@case
def test_data_byte_by_byte():
    s = main_server()
    msg = b"Subject: slow\r\n\r\n..dot\r\nx\r\n"
    with session() as c:
        tx(c)
        for i in range(len(msg)):
            c.send(msg[i:i + 1])
        for ch in b".\r\n":
            c.send(bytes([ch]))
            time.sleep(0.01)
        qid = queued_id(c.one())
    eq(s.queued_message(qid)[1], b"Subject: slow\r\n\r\n.dot\r\nx\r\n", "stored body")


@case
def test_empty_message():
    s = main_server()
    with session() as c:
        tx(c)
        c.send(".\r\n")
        qid = queued_id(c.one())
    eq(s.queued_message(qid)[1], b"", "stored body of an empty message")


@case
def test_smuggling():
    s = main_server()
    smuggled = (b"MAIL FROM:<evil@evil.example>\r\nRCPT TO:<victim@example.test>\r\n"
                b"DATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n")
    seps = (b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n.\r", b"\n.\r")
    # in one write, and with each byte of the separator in a write of its own
    for sep, split in [(sep, split) for split in (False, True) for sep in seps]:
        before = s.queue_list()
        with session() as c:
            tx(c)
            pieces = ([b"Subject: real\r\n\r\nhello"] + [sep[i:i + 1] for i in range(len(sep))]
                      + [smuggled, b"\r\n.\r\n"])
            if not split:
                pieces = [b"".join(pieces)]
            for piece in pieces:
                c.send(piece)
                time.sleep(0.02 if split else 0)
            eq(c.one(), BAD_DATA, "reply after the real CRLF.CRLF (separator %r)" % sep)
            c.quiet(0.5)
            c.expect("NOOP", OK, "NOOP after rejected message (separator %r)" % sep)
            c.expect("RCPT TO:<bob@example.test>", "503 5.5.1 Need MAIL before RCPT")
        eq(sorted(s.queue_list()), sorted(before), "queue after smuggling with %r" % sep)


@case
def test_bare_lf_in_data():
    s = main_server()
    before = s.queue_list()
    with session() as c:
        tx(c)
        c.send(b"Subject: x\r\n\r\nline\nline\r\n.\r\n")
        eq(c.one(), BAD_DATA, "bare LF in data")
        c.expect("NOOP", OK)
    eq(sorted(s.queue_list()), sorted(before), "queue after bare LF")


@case
def test_oversize_body():
    s = main_server()
    before = s.queue_list()
    with session() as c:
        tx(c)
        line = b"x" * 998 + b"\r\n"
        c.send(line * (MAX_SIZE * 3 // 2 // len(line)) + b".\r\n")
        eq(c.one(timeout=30), TOO_BIG, "oversize body")
        c.expect("NOOP", OK)
        c.expect("RCPT TO:<bob@example.test>", "503 5.5.1 Need MAIL before RCPT")
        # the session goes on: a small message is taken
        queued_id(c.mail_tx("a@example.org", ["bob@example.test"], b"small\r\n", ehlo=False))
    after = s.queue_list()
    eq(len(after), len(before) + 1, "queue size (oversize one not queued, small one queued)")


@case
def test_slow_data_not_cut():
    # timeout-data is per read: a client that keeps sending is not cut off.
    s = limits_server()
    with s.connect() as c:
        c.ehlo()
        tx(c)
        for i in range(5):
            c.send("line %d\r\n" % i)
            time.sleep(0.8)
        c.send(".\r\n")
        queued_id(c.one())


@case
def test_bytes_after_quit_ignored():
    with session() as c:
        c.send("QUIT\r\nMAIL FROM:<a@example.org>\r\nNOOP\r\n")
        eq(c.one(), "221 2.0.0 %s closing connection" % HOST, "QUIT")
        c.closed()


@case
def test_concurrent_messages():
    # Many sessions at once, their steps interleaved, so that commits group.
    s = main_server()
    n = 40
    clients = [s.connect() for _ in range(n)]
    try:
        for c in clients:
            c.send("EHLO c.test\r\n")
        for c in clients:
            eq(c.reply()[-1], "250 SMTPUTF8", "EHLO")
            c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
        for c in clients:
            eq([c.one(), c.one(), c.one()], [SENDER_OK, RCPT_OK, GO_AHEAD], "replies")
        bodies = [("Subject: %d\r\n\r\n" % i + "x" * (i * 997 % 5000) + "\r\n").encode()
                  for i in range(n)]
        for c, body in zip(clients, bodies):
            c.send(body + b".\r\n")
        ids = [queued_id(c.one(timeout=30)) for c in clients]
    finally:
        for c in clients:
            c.close()
    eq(len(set(ids)), n, "distinct queue ids")
    for qid, body in zip(ids, bodies):
        eq(s.queued_message(qid)[1], body, "message %s" % qid)


# ------------------------------------------------------------ relay

@case
def test_relay_allowed_from_relay_network():
    s = main_server()
    with session(v6=True) as c:
        c.expect("MAIL FROM:<a@example.org>", SENDER_OK)
        c.expect("RCPT TO:<user@evil.com>", RCPT_OK)
        eq(c.cmd("DATA"), GO_AHEAD, "DATA")
        c.send("Subject: relayed\r\n\r\nhi\r\n.\r\n")
        qid = queued_id(c.one())
    eq(s.queue_list().get(qid), ["user@evil.com"], "recipients of relayed %s" % qid)


# ------------------------------------------------------------ limits

@case
def test_too_many_recipients():
    with limits_server().connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", SENDER_OK)
        c.send("".join("RCPT TO:<r%d@example.test>\r\n" % i for i in range(MAX_RCPTS)))
        for i in range(MAX_RCPTS):
            eq(c.one(), RCPT_OK, "RCPT %d" % i)
        c.expect("RCPT TO:<one-more@example.test>", "452 4.5.3 Too many recipients")
        eq(c.cmd("DATA"), GO_AHEAD, "DATA with %d recipients" % MAX_RCPTS)
        c.send("x\r\n.\r\n")
        queued_id(c.one())


@case
def test_too_many_errors():
    n = 3
    with limits_server().connect() as c:
        replies = []
        for i in range(n + 2):
            c.send("BOGUS%d\r\n" % i)
            r = c.one()
            replies.append(r)
            if r.startswith("421"):
                break
        eq(replies[-1], "421 4.7.0 %s Too many errors, closing connection" % HOST,
           "last reply (all: %r)" % replies)
        check(len(replies) in (n, n + 1), "421 after %d bad commands with max-errors %d: %r"
              % (len(replies), n, replies))
        check(all(r == UNRECOGNIZED for r in replies[:-1]), "replies before 421: %r" % replies)
        c.closed()


@case
def test_command_timeout():
    with limits_server().connect() as c:
        t0 = time.monotonic()
        eq(c.one(timeout=10), "421 4.4.2 %s Timeout, closing connection" % HOST, "idle client")
        dt = time.monotonic() - t0
        check(1.5 <= dt <= 8, "timeout after %.1f s with timeout-command 2" % dt)
        c.closed()


@case
def test_command_timeout_after_partial_line():
    with limits_server().connect() as c:
        c.ehlo()
        c.send("NOO")
        eq(c.one(timeout=10), "421 4.4.2 %s Timeout, closing connection" % HOST, "partial line")
        c.closed()


@case
def test_data_timeout():
    s = limits_server()
    before = s.queue_list()
    with s.connect() as c:
        c.ehlo()
        tx(c)
        c.send("Subject: half\r\n\r\nhalf a bo")
        t0 = time.monotonic()
        eq(c.one(timeout=10), "421 4.4.2 %s Timeout, closing connection" % HOST, "idle in DATA")
        dt = time.monotonic() - t0
        check(1.5 <= dt <= 8, "timeout after %.1f s with timeout-data 2" % dt)
        c.closed()
    eq(sorted(s.queue_list()), sorted(before), "queue after a DATA timeout")


@case
def test_talk_before_greeting():
    s = shared("greet", {"greet-delay": 500})
    c = s.connect(greet=False)
    with c:
        c.send("EHLO early.test\r\n")
        eq(c.one(timeout=5), "554 5.5.0 %s protocol error: talked before the greeting" % HOST,
           "early talker")
        c.closed()
    # a patient client gets the greeting after the delay and is served
    t0 = time.monotonic()
    with s.connect() as c:
        dt = time.monotonic() - t0
        check(dt >= 0.4, "greeting after %.2f s with greet-delay 500" % dt)
        c.ehlo()
        c.expect("QUIT", "221 2.0.0 %s closing connection" % HOST)


@case
def test_too_many_connections():
    s = shared("conns", {"max-connections": 2})
    time.sleep(0.3)   # the start-up probe's connection is gone
    a, b2 = s.connect(), s.connect()
    with a, b2:
        with s.connect(greet=False) as c:
            eq(c.one(), "421 4.7.0 %s Too many connections, try again later" % HOST,
               "third connection")
            c.closed()
        a.expect("NOOP", OK)
    # once they are gone, a new one is served
    deadline = time.monotonic() + 5
    while True:
        with s.connect(greet=False) as c:
            r = c.one()
            if r.startswith("220 ") or time.monotonic() > deadline:
                eq(r, "220 %s ESMTP moat" % HOST, "connection after the others closed")
                break
        time.sleep(0.1)


@case
def test_shutdown_with_open_session():
    s = Server("shutdown")
    with s.connect() as c:
        c.ehlo()
        eq(s.stop(), 0, "exit status after SIGTERM")
        # the reply waits in the socket after the server is gone
        eq(c.one(), "421 4.3.2 %s Service shutting down" % HOST, "reply on SIGTERM")
        c.closed()


if __name__ == "__main__":
    main()
