"""tests/smtp/test_clients.py -- real SMTP clients against the server:
swaks, Python's smtplib and curl, over IPv4 and IPv6.

ASAN_OK: run.sh runs this file against build/moat and build/moat-asan.

Run:  BUILD=build MOAT=build/moat /usr/bin/python3 tests/smtp/test_clients.py [case ...]
"""

import os
import re
import shutil
import smtplib
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from moatlib import case, check, eq, main, shared  # noqa: E402

QUEUED = re.compile(r"250 2\.0\.0 OK: queued as ([0-9a-f]{16})")
CLIENT_SECONDS = 60


def server():
    # nobody may relay: every client is an outsider, mail goes to example.test
    return shared("clients", {"max-message-size": 1000000})


def host_port(s, v6):
    return ("::1", s.port6) if v6 else ("127.0.0.1", s.port4)


def run(argv):
    check(shutil.which(argv[0]), "%s is not installed" % argv[0])
    return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=CLIENT_SECONDS)


def after_received(s, qid):
    return s.queued_message(qid)[1]


def in_queue(s, qid, rcpts):
    got = s.queue_list().get(qid)
    check(got is not None, "%s is not in the queue list" % qid)
    eq(sorted(got), sorted(rcpts), "recipients of %s" % qid)


# ------------------------------------------------------------ swaks

def swaks(v6):
    s = server()
    host, port = host_port(s, v6)
    token = "swaks-token-%s" % ("v6" if v6 else "v4")
    r = run(["swaks", "--server", host, "--port", str(port), "-6" if v6 else "-4",
             "--helo", "client.test", "--from", "alice@example.org",
             "--to", "bob@example.test,carol@example.test",
             "--header", "Subject: swaks", "--body", token,
             "--timeout", "20"])
    out = r.stdout.decode("utf-8", "replace")
    eq(r.returncode, 0, "swaks exit status; output:\n%s%s" % (out, r.stderr.decode()))
    m = QUEUED.search(out)
    check(m, "swaks output has no '250 2.0.0 OK: queued as ID':\n%s" % out)
    check("<-  221 2.0.0 mx.test closing connection" in out, "swaks saw no 221:\n%s" % out)
    qid = m.group(1)
    in_queue(s, qid, ["bob@example.test", "carol@example.test"])
    msg = after_received(s, qid)
    check(b"Subject: swaks\r\n" in msg and token.encode() in msg, "stored: %r" % msg[:500])


@case
def test_swaks_ipv4():
    swaks(False)


@case
def test_swaks_ipv6():
    swaks(True)


@case
def test_swaks_pipelining():
    s = server()
    r = run(["swaks", "--server", "127.0.0.1", "--port", str(s.port4), "--pipeline",
             "--from", "alice@example.org", "--to", "bob@example.test", "--timeout", "20"])
    out = r.stdout.decode("utf-8", "replace")
    eq(r.returncode, 0, "swaks --pipeline exit status; output:\n%s" % out)
    qid = QUEUED.search(out)
    check(qid, "no queue id in:\n%s" % out)
    in_queue(s, qid.group(1), ["bob@example.test"])


@case
def test_swaks_relay_denied():
    s = server()
    r = run(["swaks", "--server", "127.0.0.1", "--port", str(s.port4),
             "--from", "alice@example.org", "--to", "someone@elsewhere.example",
             "--timeout", "20"])
    out = r.stdout.decode("utf-8", "replace")
    check(r.returncode != 0, "swaks succeeded relaying:\n%s" % out)
    check("<** 554 5.7.1 <someone@elsewhere.example>: Relay access denied" in out,
          "no relay denial in:\n%s" % out)


# ------------------------------------------------------------ smtplib

MSG = (b"From: alice@example.org\r\nTo: bob@example.test\r\nSubject: smtplib\r\n\r\n"
       b"first line\r\n.starts with a dot\r\n..two dots\r\nlast line\r\n")


def smtplib_send(v6):
    s = server()
    host, port = host_port(s, v6)
    rcpts = ["bob@example.test", "carol@example.test", "dave@example.test"]
    before = set(s.queue_list())
    with smtplib.SMTP(host, port, local_hostname="client.test", timeout=20) as c:
        code, _ = c.ehlo()
        eq(code, 250, "EHLO")
        for ext in ("pipelining", "size", "8bitmime", "enhancedstatuscodes", "smtputf8"):
            check(c.has_extn(ext), "EHLO lacks %s: %r" % (ext, c.esmtp_features))
        refused = c.sendmail("alice@example.org", rcpts + ["x@elsewhere.example"], MSG)
        eq(list(refused), ["x@elsewhere.example"], "refused recipients")
        eq(refused["x@elsewhere.example"][0], 554, "refusal code")
        # again by hand, to see the reply to DATA
        eq(c.mail("alice@example.org")[0], 250, "MAIL")
        for r in rcpts:
            eq(c.rcpt(r)[0], 250, "RCPT %s" % r)
        code, text = c.data(MSG)
        eq(code, 250, "DATA final reply %r" % text)
        m = re.match(rb"^2\.0\.0 OK: queued as ([0-9a-f]{16})$", text)
        check(m, "DATA final reply text %r" % text)
        qid = m.group(1).decode()
    new = sorted(set(s.queue_list()) - before)
    eq(len(new), 2, "new messages in the queue: %r" % new)
    check(qid in new, "%s not among the new messages %r" % (qid, new))
    for q in new:
        in_queue(s, q, rcpts)
        # smtplib dot-stuffs; the stored message is what we handed it
        eq(after_received(s, q), MSG, "stored message %s" % q)


@case
def test_smtplib_ipv4():
    smtplib_send(False)


@case
def test_smtplib_ipv6():
    smtplib_send(True)


@case
def test_smtplib_smtputf8():
    s = server()
    msg = "From: j\u00f6rg@example.org\r\nSubject: caf\u00e9\r\n\r\nna\u00efve\r\n".encode()
    before = set(s.queue_list())
    with smtplib.SMTP("127.0.0.1", s.port4, local_hostname="client.test", timeout=20) as c:
        refused = c.sendmail("j\u00f6rg@example.org", ["m\u00fcller@example.test"], msg,
                             mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        eq(refused, {}, "refused")
    new = sorted(set(s.queue_list()) - before)
    eq(len(new), 1, "new messages")
    eq(after_received(s, new[0]), msg, "stored 8-bit message")


# ------------------------------------------------------------ curl

def curl(v6):
    s = server()
    host, port = host_port(s, v6)
    url = "smtp://%s:%d/client.test" % ("[::1]" if v6 else "127.0.0.1", port)
    body = (b"From: alice@example.org\r\nSubject: curl\r\n\r\nhello from curl\r\n"
            b".dot line\r\n.\r\nend\r\n")
    path = os.path.join(s.dir, "curl-%s.eml" % ("v6" if v6 else "v4"))
    with open(path, "wb") as f:
        f.write(body)
    r = run(["curl", "-sS", "-v", "--max-time", "30", "--url", url,
             "--mail-from", "alice@example.org",
             "--mail-rcpt", "bob@example.test", "--mail-rcpt", "carol@example.test",
             "--upload-file", path])
    err = r.stderr.decode("utf-8", "replace")
    eq(r.returncode, 0, "curl exit status; stderr:\n%s" % err)
    m = QUEUED.search(err)
    check(m, "curl -v shows no '250 2.0.0 OK: queued as ID':\n%s" % err)
    qid = m.group(1)
    in_queue(s, qid, ["bob@example.test", "carol@example.test"])
    eq(after_received(s, qid), body, "stored message")


@case
def test_curl_ipv4():
    curl(False)


@case
def test_curl_ipv6():
    curl(True)


if __name__ == "__main__":
    main()
