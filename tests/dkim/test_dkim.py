"""tests/dkim/test_dkim.py -- DKIM signing checked by an independent
implementation: Debian's dkimpy (python3-dkim) verifies what moat signs,
with its DNS lookups answered from the TXT records `moat dkim-keygen`
printed (dkimpy's dnsfunc), and openssl checks the keys.

The messages are signed by tests/dkim/dkim_sign.c, a test driver that runs
moat's own code the way the smtp role will (config and keys loaded as
`moat check` loads them, the message fed in pieces, the key chosen by the
From: domain).  ASAN_OK: with MOAT set to the ASan build, the ASan build
of the driver is used too.

Run:  BUILD=build MOAT=build/moat /usr/bin/python3 tests/dkim/test_dkim.py [case ...]
"""

import base64
import os
import re
import sys
import tempfile
import time

import dkim

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "smtp"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from moatlib import BUILD, MOAT, case, check, eq, main  # noqa: E402
import dkimlib  # noqa: E402
from dkimlib import (MESSAGES, RECORDS, attachment_10mb, crlf, run, sig_header, tag,  # noqa: E402
                     verify)

DRIVER = os.path.join(BUILD, "asan" if MOAT.endswith("-asan") else "musl", "tests", "dkim-sign")
TMP = None
NOW = int(time.time()) - 10


def tmp(name):
    return os.path.join(TMP, name)


def keygen(selector, domain, name, *flags, bits=None):
    """A key from moat dkim-keygen into tmp(name); its record published."""
    return dkimlib.keygen(MOAT, tmp(name), selector, domain, *flags, bits=bits)


def openssl_pub_b64(keyfile):
    r = run(["openssl", "pkey", "-in", keyfile, "-pubout", "-outform", "DER"])
    eq(r.returncode, 0, "openssl pkey")
    return base64.b64encode(r.stdout).decode()


def write_conf(name, lines):
    path = tmp(name)
    with open(path, "w") as f:
        f.write("hostname mx.test\ndomain example.test\nrelay-network 10.0.0.0/8\n"
                "queue %s\n" % tmp("queue"))
        f.write("".join(l + "\n" for l in lines))
    return path


def sign(conf, msg, chunk=0, expect=0):
    r = run([DRIVER, conf, str(chunk), str(NOW)], stdin=msg)
    eq(r.returncode, expect, "dkim-sign exit (%s)" % r.stderr.decode().strip())
    return r.stdout


KEYS = {}
CONF = None


def setup():
    """Keys for example.test (PKCS#8), *.sub.test (PKCS#1) and example.net
    (a chosen headers list), and one config naming them."""
    global CONF
    KEYS["main"] = keygen("sel", "example.test", "main.pem")
    KEYS["sub"] = keygen("sel2", "sub.test", "sub.pem", "-pkcs1")
    KEYS["net"] = keygen("s3", "example.net", "net.pem", bits="3072")
    CONF = write_conf("moat.conf", [
        "dkim-sign example.test sel %s" % KEYS["main"],
        "dkim-sign *.sub.test sel2 %s" % KEYS["sub"],
        "dkim-sign example.net s3 %s headers From:Subject:X-Custom:X-Custom" % KEYS["net"],
    ])


@case
def keygen_record_matches_openssl():
    """The record's p= is the key's public half as openssl writes it."""
    for name in ("main", "sub", "net"):
        sel = {"main": b"sel._domainkey.example.test.", "sub": b"sel2._domainkey.sub.test.",
               "net": b"s3._domainkey.example.net."}[name]
        text = RECORDS[sel].decode()
        check(text.startswith("v=DKIM1; k=rsa; p="), "record text %r" % text[:30])
        eq(text.split("p=", 1)[1], openssl_pub_b64(KEYS[name]), "p= of %s" % name)
        eq(os.stat(KEYS[name]).st_mode & 0o777, 0o600, "key file mode")
        r = run(["openssl", "rsa", "-in", KEYS[name], "-check", "-noout"])
        eq(r.returncode, 0, "openssl rsa -check %s" % name)
    check(open(KEYS["main"]).read().startswith("-----BEGIN PRIVATE KEY-----"), "PKCS#8")
    check(open(KEYS["sub"]).read().startswith("-----BEGIN RSA PRIVATE KEY-----"), "PKCS#1")
    r = run(["openssl", "rsa", "-in", KEYS["net"], "-noout", "-text"])
    check(b"3072 bit" in r.stdout, "3072 bits")


@case
def keygen_refuses():
    before = open(KEYS["main"]).read()
    r = run([MOAT, "dkim-keygen", "-o", KEYS["main"], "sel", "example.test"])
    eq(r.returncode, 111, "over an existing file")
    eq(open(KEYS["main"]).read(), before, "existing key untouched")
    for args in (["sel", "example.test", "1024"], ["sel", "example.test", "8192"],
                 ["s_1", "example.test"], ["sel", "ex ample.test"], ["sel"]):
        eq(run([MOAT, "dkim-keygen"] + args).returncode, 100, "usage: %r" % args)


@case
def keygen_stdout_is_a_key_file():
    """Without -o the key and the record go to stdout; PEM readers skip the
    record line, so the whole output is a key moat check takes."""
    r = run([MOAT, "dkim-keygen", "out", "example.org"])
    eq(r.returncode, 0, "exit")
    path = tmp("stdout.pem")
    with open(path, "wb") as f:
        f.write(r.stdout)
    conf = write_conf("stdout.conf", ["dkim-sign example.org out %s" % path])
    r = run([MOAT, "check", "-c", conf])
    eq(r.returncode, 0, "moat check: %s" % r.stderr.decode())


@case
def check_prints_keys():
    r = run([MOAT, "check", "-c", CONF])
    eq(r.returncode, 0, "moat check: %s" % r.stderr.decode())
    out = r.stdout.decode()
    default = ("from:from:to:cc:subject:date:message-id:reply-to:in-reply-to:references:"
               "mime-version:content-type:content-transfer-encoding")
    for line in ("dkim-sign example.test sel %s headers %s" % (KEYS["main"], default),
                 "dkim-sign *.sub.test sel2 %s headers %s" % (KEYS["sub"], default),
                 "dkim-sign example.net s3 %s headers from:subject:x-custom:x-custom" % KEYS["net"]):
        check(line + "\n" in out, "missing line %r" % line)


def openssl_key(name, *args):
    path = tmp(name)
    r = run(["openssl", "genpkey", "-algorithm", "RSA", "-out", path] + list(args))
    eq(r.returncode, 0, "openssl genpkey %s" % name)
    return path


@case
def check_refuses_bad_keys():
    ec = tmp("ec.pem")
    run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-out", ec])
    enc = tmp("enc.pem")
    run(["openssl", "genrsa", "-aes128", "-passout", "pass:x", "-out", enc, "2048"])
    trunc = tmp("trunc.pem")
    with open(trunc, "w") as f:
        f.write(open(KEYS["main"]).read()[:500])
    cases = [
        (openssl_key("small.pem", "-pkeyopt", "rsa_keygen_bits:1024"),
         "RSA-1024: DKIM keys must have 2048 to 4096 bits"),
        (ec, "DKIM keys are RSA here"),
        (enc, "encrypted"),
        (trunc, "bad PEM"),
        (tmp("absent.pem"), "No such file or directory"),
    ]
    for path, why in cases:
        conf = write_conf("bad.conf", ["# a key that cannot be used", "dkim-sign example.test sel %s" % path])
        r = run([MOAT, "check", "-c", conf])
        err = r.stderr.decode()
        eq(r.returncode, 1, "moat check exit for %s" % why)
        want = "%s:6: dkim-sign: %s: " % (conf, path)
        check(err.startswith(want) and why in err, "want %r ... %r, got %r" % (want, why, err))


@case
def openssl_keys_sign():
    """Keys openssl makes, PKCS#8 and PKCS#1, 2048 and 4096 bits, one of
    them with a prime that is 1 mod 4 (BearSSL cannot recompute e for it:
    moat reads e from the file)."""
    def primes_mod4(path):
        text = run(["openssl", "rsa", "-in", path, "-noout", "-text"]).stdout.decode()
        out = []
        for label in ("prime1", "prime2"):
            m = re.search(label + r":\s*\n((?:\s+[0-9a-f:]+\n)+)", text)
            out.append(int(re.sub(r"[\s:]", "", m.group(1)), 16) % 4)
        return out
    found = None
    for k in range(30):
        path = openssl_key("o%d.pem" % k, "-pkeyopt", "rsa_keygen_bits:2048")
        if 1 in primes_mod4(path):
            found = path
            break
    check(found is not None, "no openssl key with a prime 1 mod 4 in 30 tries")
    pkcs1 = tmp("o-pkcs1.pem")
    eq(run(["openssl", "rsa", "-in", found, "-traditional", "-out", pkcs1]).returncode, 0, "to PKCS#1")
    big = openssl_key("o4096.pem", "-pkeyopt", "rsa_keygen_bits:4096")
    for path in (found, pkcs1, big):
        RECORDS[b"ossl._domainkey.example.org."] = ("v=DKIM1; k=rsa; p=" + openssl_pub_b64(path)).encode()
        conf = write_conf("ossl.conf", ["dkim-sign example.org ossl %s" % path])
        r = run([MOAT, "check", "-c", conf])
        eq(r.returncode, 0, "moat check %s: %s" % (path, r.stderr.decode()))
        signed = sign(conf, crlf("From: o@example.org\nSubject: openssl key\n\nbody\n"))
        check(verify(signed), "dkimpy verifies with %s" % path)


@case
def messages_verify():
    """Every message, signed whole, byte by byte and in 4 KiB pieces: the
    same signature each time, and dkimpy verifies it."""
    msgs = dict(MESSAGES)
    msgs["10mb-attachment"] = attachment_10mb()
    for name, msg in msgs.items():
        whole = sign(CONF, msg)
        check(whole.endswith(msg), "%s: message unchanged after the header" % name)
        chunks = (4096,) if len(msg) > 1_000_000 else (1, 7, 4096)
        for chunk in chunks:
            eq(sign(CONF, msg, chunk), whole, "%s: signed in %d-byte pieces" % (name, chunk))
        check(verify(whole), "%s: dkimpy verifies" % name)
        h = sig_header(whole)
        eq(tag(h, "a"), "rsa-sha256", "%s a=" % name)
        eq(tag(h, "c"), "relaxed/relaxed", "%s c=" % name)
        eq(tag(h, "t"), str(NOW), "%s t=" % name)
        check(tag(h, "l") is None, "%s: no l=" % name)
        for line in h.split("\r\n"):
            check(len(line.expandtabs(8)) <= 78, "%s: line over 78 columns: %r" % (name, line))


@case
def body_hash_equals_dkimpy():
    """bh= is the body hash dkimpy computes for the same message."""
    pem = open(KEYS["sub"], "rb").read()   # PKCS#1, which dkimpy's signer reads
    for name, msg in MESSAGES.items():
        theirs = dkim.sign(msg, b"x", b"example.test", pem,
                           canonicalize=(b"relaxed", b"relaxed")).decode()
        eq(tag(sig_header(sign(CONF, msg)), "bh"), tag(theirs, "bh"), "%s bh=" % name)


def add_header(signed, line, top=False):
    """Insert a header line after the DKIM-Signature (or at the very top)."""
    if top:
        return line + signed
    h = sig_header(signed).encode()
    return h + line + signed[len(h):]


@case
def oversigning_holds():
    signed = sign(CONF, MESSAGES["plain"])
    check(verify(signed), "the signed message verifies")
    eq(tag(sig_header(signed), "h"), "from:from:to:subject:date:message-id", "h=")
    # A second From:, above or below the first, breaks the signature.
    check(not verify(add_header(signed, b"From: Mallory <m@evil.test>\r\n")),
          "a second From: after the signature")
    msg = MESSAGES["plain"].replace(b"\r\n\r\n", b"\r\nFrom: Mallory <m@evil.test>\r\n\r\n", 1)
    check(not verify(sig_header(signed).encode() + msg), "a second From: at the bottom")
    # So does a changed Subject, or body.
    check(not verify(signed.replace(b"Subject: hello", b"Subject: hellO")), "a changed Subject")
    check(not verify(signed + b"appended\r\n"), "an appended body line")
    # Fields not signed may come and go; more empty lines at the end too.
    check(verify(add_header(signed, b"X-Added: 1\r\n")), "an unsigned field added")
    check(verify(add_header(signed, b"Cc: someone@example.net\r\n")),
          "a Cc (listed once, absent: not signed) added")
    check(verify(signed + b"\r\n\r\n"), "empty lines appended")


@case
def chosen_headers_list():
    msg = crlf("From: n@example.net\nSubject: custom\nX-Custom: one\nTo: t@example.net\n\nbody\n")
    signed = sign(CONF, msg)
    h = sig_header(signed)
    eq(tag(h, "d"), "example.net", "d=")
    eq(tag(h, "s"), "s3", "s=")
    eq(tag(h, "h"), "from:subject:x-custom:x-custom", "h=")
    check(verify(signed), "verifies")
    check(verify(signed.replace(b"To: t@", b"To: u@")), "To is not signed here")
    check(not verify(add_header(signed, b"X-Custom: two\r\n")), "X-Custom over-signed")


@case
def wildcard_domain():
    msg = crlf("From: w@mail.sub.test\nSubject: wildcard\n\nbody\n")
    signed = sign(CONF, msg)
    h = sig_header(signed)
    eq((tag(h, "d"), tag(h, "s")), ("sub.test", "sel2"), "d= and s=")
    check(verify(signed), "verifies with the sub.test record")
    # The parent itself is covered too; a name that only ends the same is not.
    check(verify(sign(CONF, crlf("From: w@sub.test\nSubject: x\n\nbody\n"))), "sub.test itself")
    sign(CONF, crlf("From: w@notsub.test\nSubject: x\n\nbody\n"), expect=3)


@case
def not_signed():
    signed = sign(CONF, MESSAGES["plain"])
    sign(CONF, signed, expect=2)                                # ours already: a loop-back
    sign(CONF, crlf("From: a@other.test\n\nbody\n"), expect=3)  # no key for the domain
    sign(CONF, crlf("From: a@example.test, b@example.test\n\nbody\n"), expect=4)
    sign(CONF, crlf("From: a@example.test\nFrom: b@example.test\n\nbody\n"), expect=4)
    sign(CONF, crlf("Subject: no From\n\nbody\n"), expect=4)


if __name__ == "__main__":
    base = os.path.join(BUILD, "t")
    os.makedirs(base, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=base, prefix="dkim-") as d:
        TMP = os.path.abspath(d)
        setup()
        main()
