"""tests/tls/test_tls.py -- real TLS handshakes with real clients against
moat: openssl s_client -starttls smtp, swaks -tls / --tls-on-connect,
Python smtplib starttls()+login() and SMTP_SSL, curl --ssl-reqd; RSA and
ECDSA certificates; the default cipher policy and the legacy switch;
STARTTLS injection (CVE-2011-0411); reloading the certificate with HUP.

ASAN_OK: run.sh runs this file against build/moat and build/moat-asan.
"""

import os
import re
import signal
import smtplib
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tlslib  # noqa: E402
from tlslib import (PASSWORD, check, connect, eq, plain, run, shared, tls_session,  # noqa: E402
                    log_has)
from moatlib import case, main, queued_id  # noqa: E402

QUEUED = re.compile(r"250 2\.0\.0 OK: queued as ([0-9a-f]{16})")


def rsa():
    return shared("tls-rsa", kind="rsa")


def ec():
    return shared("tls-ec", kind="ec")


def in_queue(s, qid, rcpts):
    got = s.queue_list().get(qid)
    check(got is not None, "%s not in the queue" % qid)
    eq(sorted(got), sorted(rcpts), "recipients of %s" % qid)


# ------------------------------------------------------------ openssl

def s_client(port, extra=(), v6=False, inp=b"EHLO openssl.test\nQUIT\n"):
    host = "[::1]" if v6 else "127.0.0.1"
    return run(["openssl", "s_client", "-starttls", "smtp", "-connect", "%s:%d" % (host, port),
                "-servername", "mx.test", "-brief", "-ign_eof", "-crlf"] + list(extra), input=inp)


@case
def test_openssl_starttls_rsa():
    s = rsa()
    r = s_client(s.sub4)
    out, err = r.stdout.decode(), r.stderr.decode()
    eq(r.returncode, 0, "s_client exit; stderr:\n%s" % err)
    check("Protocol version: TLSv1.2" in err, "not TLS 1.2:\n%s" % err)
    check("Ciphersuite: ECDHE-RSA-AES128-GCM-SHA256" in err, "suite:\n%s" % err)
    # Inside TLS: AUTH offered, STARTTLS no more.
    check("250-AUTH PLAIN LOGIN" in out and "STARTTLS" not in out, "EHLO in TLS:\n%s" % out)
    check("221 2.0.0 mx.test closing connection" in out, out)
    check(log_has(s, "event=tls addr=127.0.0.1 sid=* version=TLSv1.2 cipher=ECDHE-RSA-AES128-GCM-SHA256 "
                     "key=RSA-2048"), "no tls log line")


@case
def test_openssl_starttls_ecdsa_ipv6():
    s = ec()
    r = s_client(s.port6, v6=True)
    err = r.stderr.decode()
    eq(r.returncode, 0, "s_client exit; stderr:\n%s" % err)
    check("Ciphersuite: ECDHE-ECDSA-AES128-GCM-SHA256" in err, "suite:\n%s" % err)
    check(log_has(s, "event=tls addr=::1 sid=* version=TLSv1.2 cipher=ECDHE-ECDSA-AES128-GCM-SHA256 "
                     "key=EC-P256"), "no tls log line")


@case
def test_default_policy_refuses_old():
    s = rsa()
    # TLS 1.1, and a CBC suite in TLS 1.2: both refused by default.
    r = s_client(s.sub4, ["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"])
    check(r.returncode != 0, "TLS 1.1 accepted: %s" % r.stderr.decode())
    r = s_client(s.sub4, ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA256"])
    check(r.returncode != 0, "CBC accepted: %s" % r.stderr.decode())
    # ChaCha20 when the client asks only for it.
    r = s_client(s.sub4, ["-cipher", "ECDHE-RSA-CHACHA20-POLY1305"])
    check("Ciphersuite: ECDHE-RSA-CHACHA20-POLY1305" in r.stderr.decode(), r.stderr.decode())
    # Server preference: AES-128-GCM first even when the client prefers others.
    r = s_client(s.sub4, ["-cipher", "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384:"
                          "ECDHE-RSA-AES128-GCM-SHA256"])
    check("Ciphersuite: ECDHE-RSA-AES128-GCM-SHA256" in r.stderr.decode(), r.stderr.decode())


@case
def test_legacy_listener():
    port = tlslib.free_port()
    # A server whose mx listener allows the legacy suites and versions.
    crt, key = tlslib.pair("rsa", "rsa")
    import moatlib
    srv = moatlib.Server("tls-legacy", {
        "listen": ["127.0.0.1:%d tls=starttls tls-legacy" % port],
        "tls-cert": crt, "tls-key": key}, start=False)
    srv.port4 = port
    srv.start()
    r = s_client(port, ["-tls1", "-cipher", "ECDHE-RSA-AES128-SHA@SECLEVEL=0"])
    err = r.stderr.decode()
    eq(r.returncode, 0, "TLS 1.0 on a legacy listener: %s" % err)
    check("Protocol version: TLSv1" in err and "Ciphersuite: ECDHE-RSA-AES128-SHA" in err, err)
    r = s_client(port, ["-tls1_2", "-cipher", "AES256-SHA256@SECLEVEL=0"])
    check("Ciphersuite: AES256-SHA256" in r.stderr.decode(), "RSA key exchange: %s" % r.stderr.decode())
    # Still AEAD first for a modern client.
    r = s_client(port)
    check("Ciphersuite: ECDHE-RSA-AES128-GCM-SHA256" in r.stderr.decode(), r.stderr.decode())
    srv.stop()
    check(not srv.problems, "; ".join(srv.problems))


# ------------------------------------------------------------ swaks

def swaks(s, args, v6=False):
    host = "::1" if v6 else "127.0.0.1"
    r = run(["swaks", "--server", host, "-6" if v6 else "-4", "--helo", "client.test",
             "--from", "alice@example.test", "--to", "bob@example.test,carol@foreign.test",
             "--auth-user", "alice", "--auth-password", PASSWORD, "--timeout", "20"] + args)
    out = r.stdout.decode("utf-8", "replace")
    eq(r.returncode, 0, "swaks exit; output:\n%s%s" % (out, r.stderr.decode()))
    check("<~  235 2.7.0 Authentication successful" in out, "no 235:\n%s" % out)
    m = QUEUED.search(out)
    check(m, "not queued:\n%s" % out)
    in_queue(s, m.group(1), ["bob@example.test", "carol@foreign.test"])
    return out


@case
def test_swaks_starttls_plain():
    s = rsa()
    out = swaks(s, ["--port", str(s.sub4), "-tls", "--auth", "PLAIN"])
    check("=== TLS started with cipher TLSv1.2:ECDHE-RSA-AES128-GCM-SHA256" in out, out)


@case
def test_swaks_tls_on_connect_login_ipv6():
    s = rsa()
    out = swaks(s, ["--port", str(s.ssl6), "--tls-on-connect", "--auth", "LOGIN"], v6=True)
    check("<~  334 VXNlcm5hbWU6" in out and "<~  334 UGFzc3dvcmQ6" in out, out)


# ------------------------------------------------------------ smtplib, curl

MSG = "From: alice@example.test\r\nTo: bob@example.test\r\nSubject: %s\r\n\r\nbody %s\r\n"


@case
def test_smtplib_starttls_login():
    s = ec()
    with smtplib.SMTP("127.0.0.1", s.sub4, timeout=20) as c:
        c.ehlo("client.test")
        check(c.has_extn("starttls") and not c.has_extn("auth"), "before TLS: %r" % c.esmtp_features)
        code, _ = c.starttls(context=tlslib.client_ctx())
        eq(code, 220, "starttls")
        c.ehlo("client.test")
        check(c.has_extn("auth") and not c.has_extn("starttls"), "in TLS: %r" % c.esmtp_features)
        eq(c.login("alice", PASSWORD), (235, b"2.7.0 Authentication successful"), "login")
        refused = c.sendmail("alice@example.test", ["bob@example.test", "x@foreign.test"],
                             MSG % ("smtplib", "starttls"))
        eq(refused, {}, "refused recipients")


@case
def test_smtplib_ssl_ipv6():
    s = rsa()
    with smtplib.SMTP_SSL("::1", s.ssl6, timeout=20, context=tlslib.client_ctx()) as c:
        c.ehlo("client.test")
        check(c.has_extn("auth"), "AUTH on 465: %r" % c.esmtp_features)
        eq(c.login("bob", PASSWORD)[0], 235, "login")
        eq(c.sendmail("anyone@anywhere.test", ["x@foreign.test"], MSG % ("ssl", "v6")), {}, "send")


@case
def test_curl_ssl_reqd():
    s = rsa()
    path = os.path.join(s.dir, "curl.eml")
    with open(path, "w") as f:
        f.write(MSG % ("curl", "token-curl"))
    r = run(["curl", "-sS", "--ssl-reqd", "-k", "--url", "smtp://127.0.0.1:%d" % s.sub4,
             "--user", "alice:" + PASSWORD, "--mail-from", "alice@example.test",
             "--mail-rcpt", "dest@foreign.test", "--upload-file", path, "-v"])
    err = r.stderr.decode("utf-8", "replace")
    eq(r.returncode, 0, "curl exit:\n%s" % err)
    m = QUEUED.search(err)
    check(m, "curl saw no queue id:\n%s" % err)
    body = s.queued_message(m.group(1))[1]
    check(b"token-curl" in body, "stored: %r" % body[:300])


# ------------------------------------------------------------ STARTTLS rules

@case
def test_starttls_injection():
    s = rsa()
    c = connect("127.0.0.1", s.sub4)
    c.ehlo()
    # Pipelined behind STARTTLS in the same packet: must never run.
    c.send("STARTTLS\r\nNOOP\r\nMAIL FROM:<evil@example.test>\r\n")
    eq(c.line(), "220 2.0.0 Ready to start TLS", "STARTTLS reply")
    check(c.buf == b"", "bytes after the 220 in plaintext: %r" % c.buf)
    c.starttls()
    # The first reply inside TLS is the EHLO's: nothing injected was answered.
    c.send("EHLO client.test\r\n")
    r = c.reply()
    eq(r[0], "250-mx.test Hello [127.0.0.1]", "first reply in TLS")
    # The state was reset: no transaction, EHLO given again, MAIL needs AUTH.
    eq(c.cmd("RCPT TO:<bob@example.test>"), "503 5.5.1 Need MAIL before RCPT", "RCPT")
    eq(c.cmd("QUIT"), "221 2.0.0 mx.test closing connection", "QUIT")
    c.close()
    check(log_has(s, "event=tls-discard addr=127.0.0.1 sid=* bytes=37 reason=pipelined-after-starttls"),
          "no discard log line:\n%s" % s.stderr())


@case
def test_starttls_rules():
    s = rsa()
    c = connect("127.0.0.1", s.sub4)
    eq(c.cmd("STARTTLS"), "503 5.5.1 Bad sequence of commands", "STARTTLS before EHLO")
    c.ehlo()
    eq(c.cmd("AUTH PLAIN " + plain("alice", PASSWORD)),
       "538 5.7.11 Encryption required for requested authentication mechanism", "AUTH before TLS")
    eq(c.cmd("MAIL FROM:<alice@example.test>"), "530 5.7.0 Must issue a STARTTLS command first",
       "MAIL before TLS")
    eq(c.cmd("STARTTLS x"), "501 5.5.4 Syntax error in parameters", "STARTTLS with argument")
    eq(c.cmd("STARTTLS"), "220 2.0.0 Ready to start TLS", "STARTTLS")
    c.starttls()
    eq(c.cmd("MAIL FROM:<alice@example.test>"), "503 5.5.1 Send HELO/EHLO first", "EHLO again")
    r = c.ehlo()
    check("250-STARTTLS" not in r and "250-AUTH PLAIN LOGIN" in r, "EHLO in TLS: %r" % r)
    eq(c.cmd("STARTTLS"), "503 5.5.1 TLS already active", "second STARTTLS")
    c.close()
    # An mx listener offers STARTTLS, never AUTH.
    c = connect("::1", s.port6)
    r = c.ehlo()
    check("250-STARTTLS" in r and not any("AUTH" in x for x in r), "mx EHLO: %r" % r)
    eq(c.cmd("STARTTLS"), "220 2.0.0 Ready to start TLS", "STARTTLS on mx")
    c.starttls()
    r = c.ehlo()
    check(not any("AUTH" in x for x in r), "AUTH on mx: %r" % r)
    eq(c.cmd("AUTH PLAIN " + plain("alice", PASSWORD)), "502 5.5.1 Command not implemented", "AUTH mx")
    eq(c.cmd("MAIL FROM:<a@b.test>"), "250 2.1.0 Sender OK", "MAIL on mx in TLS")
    eq(c.cmd("RCPT TO:<x@foreign.test>"), "554 5.7.1 <x@foreign.test>: Relay access denied", "relay")
    c.close()


@case
def test_handshake_garbage():
    s = rsa()
    # Plaintext on the implicit-TLS port: the handshake fails, the server lives.
    c = tlslib.TLSClient("127.0.0.1", s.ssl4)
    c.send("EHLO plaintext.test\r\n")
    c.closed(timeout=10)
    c.close()
    check(log_has(s, "event=tls-fail addr=127.0.0.1"), "no tls-fail line")
    c = connect("127.0.0.1", s.ssl4, implicit=True)
    c.ehlo()
    c.close()


# ------------------------------------------------------------ reload

def copy(src, dst):
    with open(src, "rb") as f:
        data = f.read()
    with open(dst + ".tmp", "wb") as f:
        f.write(data)
    os.rename(dst + ".tmp", dst)


def peer_der(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with tlslib.client_ctx().wrap_socket(raw, server_hostname="mx.test") as t:
            der = t.getpeercert(binary_form=True)
            t.settimeout(10)
            t.recv(100)
            return der


def wait_log(s, needle, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if log_has(s, needle):
            return
        time.sleep(0.05)
    raise tlslib.Failure("no %r in the log:\n%s" % (needle, s.stderr()))


@case
def test_hup_reload():
    a_crt, a_key = tlslib.pair("rsa", "rsa")
    b_crt, b_key = tlslib.pair("reload-b", "ec", cn="new.mx.test")
    s = tlslib.server("tls-reload", kind="rsa")
    live_crt = os.path.join(s.dir, "live.crt")
    live_key = os.path.join(s.dir, "live.key")
    copy(a_crt, live_crt)
    copy(a_key, live_key)
    # Point the server at the live files (a restart reads them).
    with open(s.conf_path) as f:
        text = f.read().replace(a_crt, live_crt).replace(a_key, live_key)
    with open(s.conf_path, "w") as f:
        f.write(text)
    s.restart()
    eq(peer_der(s.ssl4), tlslib.der_of(a_crt), "certificate before reload")
    # A session open across the reloads.
    old = connect("127.0.0.1", s.ssl4, implicit=True)
    old.ehlo()
    # A good new pair.
    copy(b_crt, live_crt)
    copy(b_key, live_key)
    s.proc.send_signal(signal.SIGHUP)
    wait_log(s, "event=reload status=ok generation=2 ")
    check(re.search(r"event=reload status=ok generation=2 .*draining=1 key=EC-P256\n",
                    s.stderr(200000)), s.stderr())
    eq(peer_der(s.ssl4), tlslib.der_of(b_crt), "certificate after reload")
    eq(old.cmd("NOOP"), "250 2.0.0 OK", "old session after a good reload")
    # A bad pair (the key is not the certificate's): refused, B stays.
    copy(a_key, live_key)
    s.proc.send_signal(signal.SIGHUP)
    wait_log(s, "event=reload status=refused")
    check(log_has(s, "the key does not match the first certificate"), s.stderr())
    eq(peer_der(s.ssl4), tlslib.der_of(b_crt), "certificate after a refused reload")
    # Garbage: refused too.
    with open(live_crt, "w") as f:
        f.write("not a certificate\n")
    s.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while s.stderr(200000).count("status=refused") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    check(log_has(s, "no CERTIFICATE block"), s.stderr())
    eq(peer_der(s.ssl4), tlslib.der_of(b_crt), "certificate after garbage")
    # The old session still runs on the first certificate, to the end.
    eq(old.cmd("AUTH PLAIN " + plain("alice", PASSWORD)), "235 2.7.0 Authentication successful", "AUTH")
    qid = queued_id(old.mail_tx("alice@example.test", ["bob@example.test"], "Subject: x\r\n\r\nx\r\n",
                                ehlo=False))
    check(qid in s.queue_list(), "not queued")
    eq(old.cmd("QUIT"), "221 2.0.0 mx.test closing connection", "QUIT")
    old.close()
    s.stop()
    check(not s.problems, "; ".join(s.problems))


if __name__ == "__main__":
    main()
