"""tests/dkim/dkimlib.py -- what the DKIM tests share: keys made by `moat
dkim-keygen` with their DNS records kept for dkimpy's dnsfunc, the test
messages, and readers of a DKIM-Signature header.
"""

import base64
import random
import re
import subprocess

import dkim

from moatlib import check, eq

RECORDS = {}          # DNS name (bytes, with the root dot) -> TXT text (bytes)


def run(args, stdin=None, timeout=120):
    return subprocess.run(args, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout)


def record_text(line):
    """The TXT text of a zone-file line: its quoted strings joined."""
    strings = re.findall(r'"([^"]*)"', line)
    for s in strings:
        check(len(s) <= 255, "a TXT string over 255 bytes: %d" % len(s))
    return "".join(strings)


def keygen(moat, path, selector, domain, *flags, bits=None):
    """A key from moat dkim-keygen into path; its record published."""
    r = run([moat, "dkim-keygen", "-o", path] + list(flags) + [selector, domain]
            + ([bits] if bits else []))
    eq(r.returncode, 0, "dkim-keygen exit (%s)" % r.stderr.decode())
    line = r.stdout.decode()
    want = "%s._domainkey.%s. IN TXT " % (selector, domain)
    check(line.startswith(want) and line.endswith("\n") and line.count("\n") == 1,
          "record line: %r" % line)
    RECORDS[("%s._domainkey.%s." % (selector, domain)).encode()] = record_text(line).encode()
    return path


def dnsfunc(name, timeout=5):
    return RECORDS.get(name)


def verify(signed):
    return dkim.verify(signed, dnsfunc=dnsfunc)


def sig_header(signed):
    """The first header field of signed (its DKIM-Signature), CRLF included."""
    end = signed.index(b"\r\n", 0)
    while signed[end + 2:end + 3] in (b" ", b"\t"):
        end = signed.index(b"\r\n", end + 2)
    return signed[:end + 2].decode()


def tag(header, name):
    m = re.search(r"[;\s]%s=([^;]*)" % name, header)
    return re.sub(r"\s", "", m.group(1)) if m else None


def crlf(text):
    return text.replace("\n", "\r\n").encode()


def attachment_10mb():
    rnd = random.Random(15)
    data = rnd.randbytes(7_600_000)
    b64 = base64.encodebytes(data).replace(b"\n", b"\r\n")
    return (crlf("From: Big <big@example.test>\nTo: a@example.net\nSubject: 10 MB\n"
                 "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n"
                 "--b\nContent-Type: text/plain\n\nsee attached\n\n--b\n"
                 "Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n")
            + b64 + crlf("\n--b--\n"))


MESSAGES = {
    "plain": crlf("From: Alice <alice@example.test>\nTo: bob@example.net\nSubject: hello\n"
                  "Date: Mon, 7 Dec 2026 10:00:00 +0000\nMessage-ID: <1@example.test>\n\n"
                  "Hello Bob.\n"),
    "8bit-and-utf8-headers": (
        "From: =?utf-8?q?J=C3=B6rg?= <joerg@example.test>\r\nTo: Bj\u00f6rn <b@example.net>\r\n"
        "Subject: Gr\u00fc\u00dfe aus K\u00f6ln \u2014 \u65e5\u672c\r\n".encode()
        + b"X-Latin1: caf\xe9\r\nContent-Type: text/plain; charset=latin1\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\ncaf\xe9 cr\xe8me\r\n"),
    "folded-headers": crlf("From: Folded\n  Name <f@example.test>\nTo: a@example.net,\n"
                           "\tb@example.net,\n c@example.net\nSubject:   a subject\n"
                           "   folded   over\n\tthree lines   \n\nbody\n"),
    "trailing-space-and-lines": crlf("From: t@example.test\nSubject: trailing\n\n"
                                     "line with spaces   \nline with tab\t\n\t\n\n\n\n"),
    "no-body": crlf("From: n@example.test\nSubject: no body\n"),
    "empty-body": crlf("From: n@example.test\nSubject: empty body\n\n"),
    "odd-case": crlf("fROM: o@example.test\ntO: x@example.net\nsUBJECT: odd\n"
                     "MESSAGE-id: <2@example.test>\nmime-VERSION: 1.0\n\nbody\n"),
    "two-to-fields": crlf("From: t@example.test\nTo: first@example.net\nSubject: two\n"
                          "To: second@example.net\n\nbody\n"),
    "lf-only": b"From: l@example.test\nSubject: bare LF\n\nline one\nline two  \n\n",
    "whitespace-body": crlf("From: w@example.test\nSubject: ws\n\n  a  b\t\tc  \n \n"),
}
