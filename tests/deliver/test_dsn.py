"""tests/deliver/test_dsn.py -- the Delivery Status Notification extension
(RFC 3461) and the reports moat makes (RFC 3464, RFC 6533), against real
next hops on 127.0.0.1 (Debian's aiosmtpd, with and without DSN): the
parameters passed on as they came to a next hop that offers DSN; reports
made for one that does not ("relayed" with NOTIFY=SUCCESS, none with
NEVER, failures with RET=HDRS headers only and RET=FULL the message,
ENVID and ORCPT in them), each read with Python's email parser; bad
parameters refused with their exact replies; the bounce of SMTPUTF8 mail
in RFC 6533's types; the parameters kept over a restart.

ASAN_OK
Run:  BUILD=build MOAT=build/moat /usr/bin/python3 tests/deliver/test_dsn.py [case ...]
"""

import email
import email.parser
import email.policy
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "smtp"))
from moatlib import Server, case, check, eq, free_port, queued_id  # noqa: E402
from sinklib import Sink, main, wait_for, wait_gone  # noqa: E402

SENDER = "alice@sender.test"
FAST = {"retry-min": "1s", "retry-max": "2s", "timeout-reply": "5s", "timeout-connect": "3s",
        "dns-server": "127.0.0.1:1", "relay-network": "127.0.0.0/8", "delivery": "on"}
BODY = b"Subject: dsn test\r\nMessage-ID: <dsn@sender.test>\r\n\r\nthe body line\r\n"

_report_sink = None


def report_sink():
    """Where reports go: sender.test routes there (a sink without DSN)."""
    global _report_sink
    if _report_sink is None:
        _report_sink = Sink()
    return _report_sink


def edge(name, routes, **extra):
    conf = dict(FAST)
    conf["route"] = ["sender.test [127.0.0.1]:%d" % report_sink().port] + routes
    conf.update({k.replace("_", "-"): v for k, v in extra.items()})
    return Server(name, conf)


def send(server, mail_params, rcpts, body=BODY, sender=SENDER, smtputf8=False):
    """A transaction with DSN parameters: rcpts is [(address, params)]."""
    with server.connect() as c:
        c.ehlo()
        eq(c.cmd("MAIL FROM:<%s>%s%s" % (sender, " SMTPUTF8" if smtputf8 else "",
                                         " " + mail_params if mail_params else "")),
           "250 2.1.0 Sender OK", "MAIL")
        for addr, params in rcpts:
            eq(c.cmd("RCPT TO:<%s>%s" % (addr, " " + params if params else "")),
               "250 2.1.5 Recipient OK", "RCPT %s" % addr)
        eq(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>", "DATA")
        c.send(body + b".\r\n")
        return queued_id(c.one(timeout=30))


def reports_for(qid):
    return [m for m in report_sink().messages if qid.encode() in m.data]


def wait_report(qid, seconds=20):
    return wait_for(lambda: reports_for(qid), seconds, "a report on %s" % qid)[0]


def no_report(server, qid):
    """The message is gone, and for a while after it no report came."""
    wait_gone(server, qid)
    time.sleep(2.5)
    eq(len(reports_for(qid)), 0, "reports on %s" % qid)


def status_blocks(part, data, boundary):
    """The field blocks of a delivery-status part, each a dict: the email
    package's own reading of message/delivery-status; the raw part (8-bit
    UTF-8) read block by block with its header parser for the global type,
    which the package takes for an encapsulated message."""
    if part.get_content_type() == "message/delivery-status":
        return [dict(b.items()) for b in part.get_payload()]
    start = data.index(b"Content-Type: message/global-delivery-status")
    start = data.index(b"\r\n\r\n", start) + 4
    raw = data[start:data.index(b"\r\n--" + boundary.encode(), start)].decode("utf-8")
    p = email.parser.HeaderParser(policy=email.policy.compat32)
    return [dict(p.parsestr(b + "\n").items()) for b in raw.replace("\r\n", "\n").split("\n\n")
            if b.strip()]


def report(msg, global_=False):
    """(report part list, per-message fields, per-recipient fields) of a
    report, its MIME structure checked."""
    m = email.message_from_bytes(msg.data, policy=email.policy.compat32)
    eq(m.get_content_type(), "multipart/report", "report content type")
    eq(m.get_param("report-type"), "global-delivery-status" if global_ else "delivery-status",
       "report-type")
    eq(msg.mail_from, "<>", "a report comes from <>")
    eq(msg.rcpts, [SENDER], "a report goes to the sender")
    parts = m.get_payload()
    eq(len(parts), 3, "report parts")
    eq(parts[0].get_content_type(), "text/plain", "part 1")
    eq(parts[1].get_content_type(),
       "message/global-delivery-status" if global_ else "message/delivery-status", "part 2")
    blocks = status_blocks(parts[1], msg.data, m.get_boundary())
    return m, parts, blocks[0], blocks[1:]


# ---------------------------------------------------------------- passed on

@case
def test_passed_on():
    """A next hop that offers DSN gets the parameters as they came, and
    tells of success itself: moat makes no report."""
    sink = Sink(dsn=True, pipelining=True)
    s = edge("dsn-on", ["example.test [127.0.0.1]:%d" % sink.port])
    qid = send(s, "RET=HDRS ENVID=QQ+2B314159", [
        ("bob@example.test", "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob+2Bold@example.test"),
        ("carol@example.test", ""),
        ("dave@example.test", "notify=never orcpt=utf-8;d\\x{E9}ve@example.test"),
    ])
    m = sink.wait_messages(1)[0]
    eq(m.dsn_mail, {"RET": "HDRS", "ENVID": "QQ+2B314159"}, "MAIL parameters at the next hop")
    eq(m.dsn_rcpt.get("bob@example.test"),
       {"NOTIFY": "SUCCESS,FAILURE", "ORCPT": "rfc822;Bob+2Bold@example.test"}, "bob's")
    eq(m.dsn_rcpt.get("carol@example.test"), {}, "carol's: none given, none added")
    eq(m.dsn_rcpt.get("dave@example.test"),
       {"NOTIFY": "NEVER", "ORCPT": "utf-8;d\\x{E9}ve@example.test"}, "dave's")
    no_report(s, qid)


@case
def test_survives_restart():
    """Parameters of a queued message outlive a restart of the server."""
    port = free_port()
    s = edge("dsn-restart", ["example.test [127.0.0.1]:%d" % port])
    qid = send(s, "RET=FULL ENVID=restart+2B1",
               [("bob@example.test", "NOTIFY=DELAY ORCPT=rfc822;first@example.test")])
    s.stop()
    s.start()
    sink = Sink(port=port, dsn=True)
    m = sink.wait_messages(1, seconds=30)[0]
    eq(m.dsn_mail, {"RET": "FULL", "ENVID": "restart+2B1"}, "MAIL parameters after a restart")
    eq(m.dsn_rcpt.get("bob@example.test"),
       {"NOTIFY": "DELAY", "ORCPT": "rfc822;first@example.test"}, "RCPT parameters")
    wait_gone(s, qid)


# ---------------------------------------------------------------- made here

@case
def test_relayed_report():
    """No DSN at the next hop: NOTIFY=SUCCESS gets a "relayed" report,
    NOTIFY=NEVER and no NOTIFY get none for a success."""
    sink = Sink()
    s = edge("dsn-relayed", ["example.test [127.0.0.1]:%d" % sink.port])
    qid = send(s, "ENVID=QQ+2B314 RET=FULL", [
        ("bob@example.test", "NOTIFY=SUCCESS ORCPT=rfc822;orig+2Bbob@example.test"),
        ("carol@example.test", ""),
        ("dave@example.test", "NOTIFY=NEVER"),
    ])
    sink.wait_messages(1)
    r = wait_report(qid)
    m, parts, msgf, rcpts = report(r)
    eq(m["Subject"], "Successful Mail Delivery Report", "Subject")
    eq(msgf.get("Original-Envelope-Id"), "QQ+314", "Original-Envelope-Id")
    eq(msgf.get("Reporting-MTA"), "dns; mx.test", "Reporting-MTA")
    eq(len(rcpts), 1, "recipients told of")
    eq(rcpts[0].get("Final-Recipient"), "rfc822; bob@example.test", "Final-Recipient")
    eq(rcpts[0].get("Original-Recipient"), "rfc822;orig+bob@example.test", "Original-Recipient")
    eq(rcpts[0].get("Action"), "relayed", "Action")
    eq(rcpts[0].get("Status"), "2.0.0", "Status")
    # A success report returns headers only, whatever RET says (RFC 3461 4.3).
    eq(parts[2].get_content_type(), "text/rfc822-headers", "part 3")
    check(b"the body line" not in r.data, "no body in a success report")
    check("relayed" in parts[0].get_payload(), "the text says relayed")
    wait_gone(s, qid)
    time.sleep(1.5)
    eq(len(reports_for(qid)), 1, "one report only")


@case
def test_failure_hdrs():
    """A failure with RET=HDRS: the headers only, ENVID and ORCPT there;
    NOTIFY=NEVER's failure and NOTIFY=SUCCESS's failure not told."""
    sink = Sink()
    s = edge("dsn-hdrs", ["example.test [127.0.0.1]:%d" % sink.port])
    qid = send(s, "RET=HDRS ENVID=hdrs-1", [
        ("perm1@example.test", "NOTIFY=FAILURE,DELAY ORCPT=rfc822;first+40x@example.test"),
        ("perm2@example.test", "NOTIFY=NEVER"),
        ("perm3@example.test", "NOTIFY=SUCCESS"),
        ("perm4@example.test", ""),
    ])
    r = wait_report(qid)
    m, parts, msgf, rcpts = report(r)
    eq(m["Subject"], "Undelivered Mail Returned to Sender", "Subject")
    eq(msgf.get("Original-Envelope-Id"), "hdrs-1", "Original-Envelope-Id")
    got = sorted((f.get("Final-Recipient"), f.get("Action"), f.get("Original-Recipient"))
                 for f in rcpts)
    eq(got, [("rfc822; perm1@example.test", "failed", "rfc822;first@x@example.test"),
             ("rfc822; perm4@example.test", "failed", None)], "recipients told of")
    for f in rcpts:
        eq(f.get("Status"), "5.1.1", "Status")
        check(f.get("Diagnostic-Code", "").startswith("smtp; 550 5.1.1"), "Diagnostic-Code")
    eq(parts[2].get_content_type(), "text/rfc822-headers", "part 3")
    check(b"Subject: dsn test" in r.data, "the original's headers are there")
    check(b"the body line" not in r.data, "RET=HDRS: no body")
    wait_gone(s, qid)


@case
def test_failure_full():
    """RET=FULL: the failed message comes back whole, as message/rfc822."""
    sink = Sink()
    s = edge("dsn-full", ["example.test [127.0.0.1]:%d" % sink.port])
    qid = send(s, "RET=FULL", [("perm@example.test", "")])
    r = wait_report(qid)
    m, parts, msgf, rcpts = report(r)
    eq(parts[2].get_content_type(), "message/rfc822", "part 3")
    inner = parts[2].get_payload()[0]
    eq(inner["Subject"], "dsn test", "the returned message's Subject")
    eq(inner.get_payload(), "the body line\r\n", "the returned message's body")
    check("Original-Envelope-Id" not in msgf, "no ENVID given, none reported")
    eq([f.get("Action") for f in rcpts], ["failed"], "Action")
    wait_gone(s, qid)


@case
def test_never():
    """NOTIFY=NEVER: a failure makes no report at all."""
    sink = Sink()
    s = edge("dsn-never", ["example.test [127.0.0.1]:%d" % sink.port])
    qid = send(s, "", [("perm@example.test", "NOTIFY=NEVER")])
    no_report(s, qid)


@case
def test_smtputf8_bounce():
    """The bounce of SMTPUTF8 mail: message/global-delivery-status (UTF-8
    in its address fields) and message/global-headers (RFC 6533)."""
    sink = Sink()
    s = edge("dsn-utf8", ["example.test [127.0.0.1]:%d" % sink.port])
    body = "Subject: caf\u00e9\r\n\r\nbody\r\n".encode()
    qid = send(s, "ENVID=u8", [("perm\u00e9@example.test", "ORCPT=utf-8;perm\\x{E9}@example.test")],
               body=body, smtputf8=True)
    r = wait_report(qid)
    m, parts, msgf, rcpts = report(r, global_=True)
    eq(msgf.get("Original-Envelope-Id"), "u8", "Original-Envelope-Id")
    eq(len(rcpts), 1, "recipients told of")
    eq(rcpts[0].get("Final-Recipient"), "utf-8; perm\u00e9@example.test", "Final-Recipient")
    eq(rcpts[0].get("Original-Recipient"), "utf-8;perm\u00e9@example.test", "Original-Recipient")
    eq(rcpts[0].get("Action"), "failed", "Action")
    eq(parts[2].get_content_type(), "message/global-headers", "part 3")
    check("caf\u00e9".encode() in r.data, "the UTF-8 header comes back as it was")
    check(b"message/delivery-status" not in r.data and b"text/rfc822-headers" not in r.data,
          "no ASCII-only types")
    wait_gone(s, qid)


# ---------------------------------------------------------------- refused

@case
def test_bad_parameters():
    s = edge("dsn-bad", [])
    with s.connect() as c:
        c.ehlo()
        for line, want in [
            ("MAIL FROM:<a@sender.test> RET=ALL", "501 5.5.4 Bad RET parameter"),
            ("MAIL FROM:<a@sender.test> RET=FULL RET=FULL", "501 5.5.4 Duplicate RET parameter"),
            ("MAIL FROM:<a@sender.test> ENVID=a+0Db", "501 5.5.4 Bad ENVID parameter"),
            ("MAIL FROM:<a@sender.test> ENVID=" + "x" * 101, "501 5.5.4 Bad ENVID parameter"),
            ("MAIL FROM:<a@sender.test> ENVID=a ENVID=b", "501 5.5.4 Duplicate ENVID parameter"),
        ]:
            eq(c.cmd(line), want, line)
        eq(c.cmd("MAIL FROM:<a@sender.test> ENVID=" + "x" * 100), "250 2.1.0 Sender OK", "ENVID 100")
        for line, want in [
            ("RCPT TO:<b@example.test> NOTIFY=NEVER,SUCCESS",
             "501 5.5.4 Bad NOTIFY parameter: NEVER with another value"),
            ("RCPT TO:<b@example.test> NOTIFY=SOMETIMES", "501 5.5.4 Bad NOTIFY parameter"),
            ("RCPT TO:<b@example.test> NOTIFY=DELAY NOTIFY=DELAY",
             "501 5.5.4 Duplicate NOTIFY parameter"),
            ("RCPT TO:<b@example.test> ORCPT=b@example.test", "501 5.5.4 Bad ORCPT parameter"),
            ("RCPT TO:<b@example.test> ORCPT=rfc822;" + "o" * 494, "501 5.5.4 Bad ORCPT parameter"),
            ("RCPT TO:<b@example.test> ORCPT=rfc822;a ORCPT=rfc822;a",
             "501 5.5.4 Duplicate ORCPT parameter"),
            ("RCPT TO:<b@example.test> RET=FULL", "555 5.5.4 Unsupported parameter RET"),
        ]:
            eq(c.cmd(line), want, line)
        eq(c.cmd("RCPT TO:<b@example.test> NOTIFY=never ORCPT=rfc822;" + "o" * 493),
           "250 2.1.5 Recipient OK", "ORCPT of 500")


if __name__ == "__main__":
    main()
