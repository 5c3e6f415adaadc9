"""tests/tls/test_auth.py -- SMTP AUTH against the real server, inside
TLS: PLAIN and LOGIN, wrong passwords, authorization identity mismatch,
AUTH twice, aborts and bad base64, relay attempts after a failed AUTH,
the growing delay, the per-address block (IPv4 and IPv6 /64 apart),
hashes made by `openssl passwd -5/-6` and `mkpasswd`, per-user senders.

ASAN_OK: run.sh runs this file against build/moat and build/moat-asan.
"""

import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tlslib  # noqa: E402
from tlslib import PASSWORD, b64, check, eq, log_has, plain, run, shared, tls_session  # noqa: E402
from moatlib import case, main  # noqa: E402

BAD = "535 5.7.8 Authentication credentials invalid"
OK = "235 2.7.0 Authentication successful"


def cross_users():
    """Users whose hashes other tools made, for the cross-check."""
    lines = []
    for name, argv in (("carol", ["openssl", "passwd", "-6", "-stdin"]),
                       ("dave", ["openssl", "passwd", "-5", "-stdin"])):
        r = run(argv, input=(PASSWORD + "\n").encode())
        eq(r.returncode, 0, "%s: %s" % (argv, r.stderr.decode()))
        lines.append("%s:%s" % (name, r.stdout.decode().strip()))
    if shutil.which("mkpasswd"):
        r = run(["mkpasswd", "-m", "sha-512", "-R", "7000", PASSWORD])
        eq(r.returncode, 0, "mkpasswd: %s" % r.stderr.decode())
        h = r.stdout.decode().strip()
        check(h.startswith("$6$rounds=7000$"), "mkpasswd wrote %r" % h)
        lines.append("erin:%s" % h)
    return lines


def srv():
    return shared("auth", users_extra=cross_users())


def session(v6=False):
    s = srv()
    c, r = tls_session("::1" if v6 else "127.0.0.1", s.sub6 if v6 else s.sub4)
    check("250-AUTH PLAIN LOGIN" in r, "EHLO in TLS: %r" % r)
    return c


@case
def test_plain_and_login():
    c = session()
    eq(c.cmd("AUTH PLAIN " + plain("alice", PASSWORD)), OK, "PLAIN with initial response")
    c.close()
    c = session()
    c.send("AUTH PLAIN\r\n")
    eq(c.line(), "334 ", "empty challenge")
    eq(c.cmd(plain("alice", PASSWORD)), OK, "PLAIN response")
    c.close()
    c = session(v6=True)
    eq(c.cmd("AUTH LOGIN"), "334 VXNlcm5hbWU6", "Username:")
    eq(c.cmd(b64("alice")), "334 UGFzc3dvcmQ6", "Password:")
    eq(c.cmd(b64(PASSWORD)), OK, "LOGIN")
    c.close()
    c = session()
    eq(c.cmd("AUTH LOGIN " + b64("bob")), "334 UGFzc3dvcmQ6", "LOGIN with initial user")
    eq(c.cmd(b64(PASSWORD)), OK, "LOGIN bob")
    c.close()


@case
def test_hashes_from_other_tools():
    for user in ("carol", "dave", "erin" if shutil.which("mkpasswd") else None):
        if user is None:
            continue
        c = session()
        eq(c.cmd("AUTH PLAIN " + plain(user, PASSWORD)), OK, "%s's hash" % user)
        c.close()
    check(open(srv().users).read().count("$6$") >= 2, "users file")


@case
def test_wrong_password_then_relay():
    s = srv()
    c = session()
    eq(c.cmd("AUTH PLAIN " + plain("alice", "wrong")), BAD, "wrong password")
    eq(c.cmd("MAIL FROM:<alice@example.test>"), "530 5.7.0 Authentication required", "MAIL after 535")
    eq(c.cmd("RCPT TO:<x@foreign.test>"), "503 5.5.1 Need MAIL before RCPT", "RCPT")
    eq(c.cmd("AUTH PLAIN " + plain("nobody", PASSWORD)), BAD, "unknown user")
    eq(c.cmd("AUTH PLAIN " + plain("alice", PASSWORD)), OK, "then the right one")
    c.close()
    check(log_has(s, "event=auth-fail addr=127.0.0.1 sid=* user=alice mech=PLAIN reason=bad-credentials"),
          "failure log line:\n%s" % s.stderr())
    # On the mx listener of the same server, a relay attempt is refused at RCPT.
    c, _ = tls_session("127.0.0.1", s.port4)
    eq(c.cmd("MAIL FROM:<alice@example.test>"), "250 2.1.0 Sender OK", "MAIL on mx")
    eq(c.cmd("RCPT TO:<x@foreign.test>"), "554 5.7.1 <x@foreign.test>: Relay access denied", "relay on mx")
    c.close()


@case
def test_authzid_mismatch():
    s = srv()
    c = session()
    eq(c.cmd("AUTH PLAIN " + plain("alice", PASSWORD, authzid="bob")), BAD, "authzid bob for alice")
    eq(c.cmd("AUTH PLAIN " + plain("alice", PASSWORD, authzid="alice")), OK, "authzid = authcid")
    c.close()
    check(log_has(s, "user=alice mech=PLAIN reason=authzid-mismatch"), s.stderr())


@case
def test_auth_twice_and_bad_input():
    c = session()
    eq(c.cmd("AUTH CRAM-MD5"), "504 5.5.4 Unrecognized authentication type", "CRAM-MD5")
    eq(c.cmd("AUTH PLAIN not*base64"), "501 5.5.2 Cannot decode response", "bad base64")
    eq(c.cmd("AUTH PLAIN " + b64("alice")), "501 5.5.2 Cannot decode response", "no NULs")
    c.send("AUTH LOGIN\r\n")
    eq(c.line(), "334 VXNlcm5hbWU6", "LOGIN")
    eq(c.cmd("*"), "501 5.7.0 Authentication aborted", "abort")
    c.send("AUTH PLAIN\r\n")
    eq(c.line(), "334 ", "PLAIN")
    eq(c.cmd("A" * 3000), "501 5.5.2 Response too long", "over-long response")
    eq(c.cmd("AUTH PLAIN " + b64("\0" + "u" * 300 + "\0pw")), "501 5.5.2 Response too long", "long name")
    eq(c.cmd("NOOP"), "250 2.0.0 OK", "the session goes on")
    eq(c.cmd("AUTH PLAIN " + plain("alice", PASSWORD)), OK, "AUTH")
    eq(c.cmd("AUTH PLAIN " + plain("alice", PASSWORD)), "503 5.5.1 Already authenticated", "AUTH twice")
    eq(c.cmd("MAIL FROM:<alice@example.test>"), "250 2.1.0 Sender OK", "MAIL")
    eq(c.cmd("AUTH PLAIN " + plain("alice", PASSWORD)), "503 5.5.1 Already authenticated",
       "AUTH in a transaction")
    c.close()


@case
def test_allowed_senders():
    c = session()
    eq(c.cmd("AUTH PLAIN " + plain("alice", PASSWORD)), OK, "AUTH")
    eq(c.cmd("MAIL FROM:<ceo@foreign.test>"),
       "553 5.7.1 <ceo@foreign.test>: Sender address not owned by the authenticated user", "spoof")
    eq(c.cmd("MAIL FROM:<>"), "553 5.7.1 <>: Sender address not owned by the authenticated user",
       "null sender")
    eq(c.cmd("MAIL FROM:<alice@example.org>"), "250 2.1.0 Sender OK", "listed address")
    eq(c.cmd("RSET"), "250 2.0.0 OK", "RSET")
    eq(c.cmd("MAIL FROM:<anyone@EXAMPLE.test>"), "250 2.1.0 Sender OK", "listed domain")
    eq(c.cmd("RCPT TO:<x@foreign.test>"), "250 2.1.5 Recipient OK", "relay when authenticated")
    c.close()


@case
def test_delay_and_block():
    s = tlslib.server("auth-block", conf={"auth-max-failures": 3, "auth-fail-delay": 300,
                                          "auth-block-seconds": 30})
    c, _ = tls_session("127.0.0.1", s.sub4)
    times = []
    for want in (BAD, BAD):
        t0 = time.monotonic()
        eq(c.cmd("AUTH PLAIN " + plain("alice", "guess")), want, "failure")
        times.append(time.monotonic() - t0)
    # 300 ms after the first failure, 600 ms after the second.
    check(times[0] >= 0.25 and times[1] >= 0.55, "delays %r" % times)
    # Other sessions are served meanwhile: the delay is a timer, not a sleep.
    c.send("AUTH PLAIN " + plain("alice", "guess") + "\r\n")
    eq(c.line(), "421 4.7.0 mx.test Too many authentication failures, closing connection", "third")
    c.closed()
    c.close()
    check(log_has(s, "event=auth-block addr=127.0.0.1 sid=* seconds=30"), s.stderr())
    for n in (1, 2, 3):
        check(log_has(s, "event=auth-fail addr=127.0.0.1 sid=* user=alice mech=PLAIN "
                         "reason=bad-credentials failures=%d" % n), "failure %d not logged" % n)
    # Blocked: refused at connect, on every listener (nothing written on 465).
    c = tlslib.connect("127.0.0.1", s.port4, greet=False)
    eq(c.line(), "421 4.7.0 mx.test Too many authentication failures, try again later", "blocked")
    c.closed()
    c.close()
    # ::1 is another address: still served, and the right password works.
    c, _ = tls_session("::1", s.sub6)
    t0 = time.monotonic()
    eq(c.cmd("AUTH PLAIN " + plain("alice", PASSWORD)), OK, "from ::1")
    check(time.monotonic() - t0 < 0.25, "success was delayed")
    c.close()
    s.stop()
    check(not s.problems, "; ".join(s.problems))


@case
def test_passwd_command():
    h = tlslib.moat_passwd(PASSWORD)
    check(h.startswith("$6$") and len(h) == 3 + 16 + 1 + 86, "moat passwd: %r" % h)
    h5 = tlslib.moat_passwd(PASSWORD, "-5", "-r", "1234")
    check(h5.startswith("$5$rounds=1234$") and len(h5) == len("$5$rounds=1234$") + 16 + 1 + 43, h5)
    check(h != tlslib.moat_passwd(PASSWORD), "the same salt twice")
    r = run([tlslib.MOAT, "passwd"], input=b"\n")
    eq(r.returncode, 1, "empty password exit")
    r = run([tlslib.MOAT, "passwd", "-r", "5"], input=b"x\n")
    eq(r.returncode, 100, "rounds below 1000")
    try:
        import crypt  # noqa: deprecated, still in Debian 12's Python; glibc's crypt()
        check(crypt.crypt(PASSWORD, h) == h and crypt.crypt(PASSWORD, h5) == h5, "glibc disagrees")
    except ImportError:
        pass


if __name__ == "__main__":
    main()
