"""tests/dkim/test_dkim_serve.py -- `moat serve` signs what it relays: real
sessions from a relay network, delivery to an aiosmtpd next hop (the
smarthost), and every signed message the next hop got verified by dkimpy
with its DNS answered from the TXT records `moat dkim-keygen` printed.

Also: what is not signed (outsiders, domains without a key, our own
signature already there), over-signing, *.NAME, a DSN moat makes, the key
role stopped, killed (SIGKILL) while it signs and killed under load (the
failure rule: 451, nothing acknowledged is lost, nothing unsigned is
queued), a reload with new keys and one with a bad key, and the private
keys found in the key role's memory and nowhere else.

ASAN_OK
Run:  BUILD=build MOAT=build/moat /usr/bin/python3 tests/dkim/test_dkim_serve.py [case ...]
"""

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "smtp"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "deliver"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tls"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ops"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moatlib  # noqa: E402
from moatlib import BUILD, MOAT, Failure, Server, case, check, eq, queued_id  # noqa: E402
from sinklib import Sink, main, wait_for  # noqa: E402
import dkimlib  # noqa: E402
import opslib  # noqa: E402
import tlslib  # noqa: E402
from dkimlib import MESSAGES, attachment_10mb, crlf, sig_header, tag, verify  # noqa: E402

TMP = None
KEYS = {}
SENDER = "app@example.test"
RCPT = "someone@example.net"


def tmp(name):
    return os.path.join(TMP, name)


def keygen(selector, domain, name):
    return dkimlib.keygen(MOAT, tmp(name), selector, domain)


def setup():
    KEYS["main"] = keygen("sel", "example.test", "main.pem")
    KEYS["sub"] = keygen("sel2", "sub.test", "sub.pem")
    KEYS["new"] = keygen("new", "example.test", "new.pem")


_sink = None


def sink():
    global _sink
    if _sink is None:
        _sink = Sink()
    return _sink


def conf(**extra):
    c = {"relay-network": "127.0.0.1/32", "delivery": "on", "dns-server": "127.0.0.1:1",
         "smarthost": "[127.0.0.1]:%d" % sink().port, "retry-min": "1s", "retry-max": "2s",
         "max-message-size": "40M",
         "dkim-sign": ["example.test sel %s" % KEYS["main"], "*.sub.test sel2 %s" % KEYS["sub"]]}
    c.update({k.replace("_", "-"): v for k, v in extra.items()})
    return c


def relay(server):
    return moatlib.shared("relay", conf()) if server is None else server


def send(server, body, sender=SENDER, rcpts=(RCPT,), source=None):
    """A message from the relay network (or source): the final reply."""
    with server.connect(source=source, greet=False) as c:
        check(c.line().startswith("220 "), "greeting")
        return c.mail_tx(sender, list(rcpts), body)


def delivered(qid, seconds=30):
    """The message the sink got whose Received: header names qid."""
    def find():
        for m in sink().messages:
            if qid.encode() in m.data[:2000]:
                return m
        return None
    return wait_for(find, seconds, "message %s at the sink" % qid).data


def dkim_headers(data):
    """The DKIM-Signature fields of a message's header block."""
    head = data.split(b"\r\n\r\n", 1)[0]
    return [f for f in re.split(rb"\r\n(?![ \t])", head) if f.lower().startswith(b"dkim-signature:")]


def accept_line(server, qid, seconds=5):
    return wait_for(lambda: next((l for l in server.stderr(1 << 22).splitlines()
                                  if "event=accept id=%s " % qid in l), None),
                    seconds, "the accept line of %s" % qid)


def unstack(data):
    """data without the header fields moat added above the client's
    message: its DKIM-Signature and its Received:."""
    while data[:15].lower() in (b"dkim-signature:", b"received: from ") or \
            data.startswith(b"Received:"):
        i = data.index(b"\r\n")
        while data[i + 2:i + 3] in (b" ", b"\t"):
            i = data.index(b"\r\n", i + 2)
        data = data[i + 2:]
    return data


# ---------------------------------------------------------------- signing

@case
def messages_signed_and_verified():
    """Each message from the relay network reaches the next hop signed,
    d=example.test s=sel, the DKIM-Signature first, the message itself
    unchanged, and dkimpy verifies it; the accept line says so."""
    server = relay(None)
    msgs = {k: v for k, v in MESSAGES.items() if k != "lf-only"}   # bare LF: refused by SMTP
    msgs["10mb-attachment"] = attachment_10mb()
    for name, msg in msgs.items():
        qid = queued_id(send(server, msg))
        data = delivered(qid, 60)
        sigs = dkim_headers(data)
        eq(len(sigs), 1, "%s: DKIM-Signature fields" % name)
        check(data.lower().startswith(b"dkim-signature:"), "%s: the signature comes first" % name)
        h = sig_header(data)
        eq((tag(h, "d"), tag(h, "s"), tag(h, "a"), tag(h, "c")),
           ("example.test", "sel", "rsa-sha256", "relaxed/relaxed"), "%s: tags" % name)
        check(tag(h, "l") is None, "%s: no l=" % name)
        check(abs(int(tag(h, "t")) - time.time()) < 120, "%s: t= is now" % name)
        eq(unstack(data), msg, "%s: the message as sent" % name)
        check(verify(data), "%s: dkimpy verifies what the next hop got" % name)
        line = accept_line(server, qid)
        check(line.endswith(" dkim=signed d=example.test s=sel"), "%s: accept line %r" % (name, line))


@case
def oversigning_holds():
    server = relay(None)
    qid = queued_id(send(server, MESSAGES["plain"]))
    data = delivered(qid)
    check(verify(data), "the delivered message verifies")
    h = sig_header(data).encode()
    check(not verify(h + b"From: Mallory <m@evil.test>\r\n" + data[len(h):]),
          "a second From: added: dkimpy fails")
    check(not verify(data.replace(b"Subject: hello", b"Subject: hellO")), "a changed Subject fails")


@case
def wildcard_key_signs_a_subdomain():
    server = relay(None)
    qid = queued_id(send(server, crlf("From: w@mail.sub.test\nSubject: wildcard\n\nbody\n")))
    data = delivered(qid)
    h = sig_header(data)
    eq((tag(h, "d"), tag(h, "s")), ("sub.test", "sel2"), "d= s=")
    check(verify(data), "dkimpy verifies")


@case
def authenticated_user_signed():
    """A submission client that authenticated (from an address outside
    the relay networks) relays, so its mail is signed."""
    mx, sub = moatlib.free_port(), moatlib.free_port()
    server = Server("submit", conf(relay_network=None, users=tlslib.users_file(tmp("users")),
                                   listen=["127.0.0.1:%d" % mx, "127.0.0.1:%d role=submission "
                                           "auth-plaintext-loopback" % sub]), start=False)
    server.port4 = mx
    server.start()
    with moatlib.Client("127.0.0.1", sub, source="127.0.0.2") as c:
        c.line()
        c.ehlo()
        c.expect("AUTH PLAIN " + tlslib.plain("alice", tlslib.PASSWORD),
                 "235 2.7.0 Authentication successful")
        qid = queued_id(c.mail_tx(SENDER, [RCPT], MESSAGES["plain"], ehlo=False))
    data = delivered(qid)
    check(verify(data) and tag(sig_header(data), "d") == "example.test", "signed and verified")
    # The same client on the mx port, not authenticated: an outsider.
    with server.connect(source="127.0.0.2") as c:
        qid = queued_id(c.mail_tx("x@outside.test", ["postmaster@example.test"],
                                  MESSAGES["plain"]))
    eq(dkim_headers(delivered(qid)), [], "not signed for an outsider")
    server.stop()


@case
def tls_and_dkim_share_the_key_role():
    """The smtp role's key role serves its TLS link and its DKIM link at
    once: four clients each do STARTTLS, AUTH and a message, five times;
    every handshake completes and every message is signed and verifies."""
    server = tlslib.server("dkim-tls", conf(relay_network=None))
    qids, errors = [], []
    lock = threading.Lock()

    def client(n):
        for k in range(5):
            try:
                c, _ = tlslib.tls_session("127.0.0.1", server.sub4)
                with c:
                    c.expect("AUTH PLAIN " + tlslib.plain("alice", tlslib.PASSWORD),
                             "235 2.7.0 Authentication successful")
                    reply = c.mail_tx(SENDER, [RCPT], crlf("From: t%d-%d@example.test\n"
                                                           "Subject: tls\n\nbody\n" % (n, k)),
                                      ehlo=False)
                with lock:
                    qids.append(queued_id(reply))
            except Exception as e:   # noqa: reported below
                with lock:
                    errors.append("client %d message %d: %s" % (n, k, e))
    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    eq(errors, [], "errors")
    eq(len(qids), 20, "messages accepted")
    for qid in qids:
        data = delivered(qid)
        check(verify(data) and tag(sig_header(data), "d") == "example.test", "%s signed" % qid)
    eq(len(wait_keys(server, 2)), 2, "key roles (the smtp role's, the delivery role's)")
    server.stop()


# ---------------------------------------------------------------- not signed

@case
def outsider_not_signed():
    """An outsider's mail to our domain, with our domain in From:, goes
    unsigned: moat signs for its insiders only."""
    server = relay(None)
    reply = send(server, MESSAGES["plain"], sender="x@outside.test", rcpts=("postmaster@example.test",),
                 source="127.0.0.2")
    qid = queued_id(reply)
    # The smarthost takes every domain, ours too: read it at the sink (the
    # queue may have delivered it before `moat queue show` could look).
    eq(dkim_headers(delivered(qid)), [], "no signature on an outsider's message")
    check(" dkim=" not in accept_line(server, qid), "the accept line says nothing of DKIM")


@case
def domain_without_key_not_signed():
    server = relay(None)
    msg = crlf("From: a@other.test\nSubject: no key\n\nbody\n")
    qid = queued_id(send(server, msg))
    data = delivered(qid)
    eq(dkim_headers(data), [], "no signature")
    eq(unstack(data), msg, "the message as sent")


@case
def our_signature_already_there():
    """A loop-back: a message that carries our d= already is not signed
    again (and its signature still verifies)."""
    server = relay(None)
    first = delivered(queued_id(send(server, MESSAGES["plain"])))
    # The delivered message (its Received: kept) back through moat.
    qid = queued_id(send(server, first))
    data = delivered(qid)
    eq(len(dkim_headers(data)), 1, "one signature, the first one")
    check(verify(data), "the old signature still verifies")
    check(accept_line(server, qid).endswith(" dkim=present d=example.test"), "accept line")


@case
def no_from_left_unsigned():
    server = relay(None)
    qid = queued_id(send(server, crlf("Subject: no From\n\nbody\n")))
    eq(dkim_headers(delivered(qid)), [], "no signature")
    check(' dkim=unsigned why="' in accept_line(server, qid), "the accept line says why")


# ---------------------------------------------------------------- DSNs

@case
def dsn_signed():
    """A bounce moat makes is signed with the key of its hostname's
    domain (mx.example.test: example.test's key, the nearest parent with
    a line) and verifies."""
    c = conf(hostname="mx.example.test")
    server = Server("dsn", c)
    sender = "bounce-me@example.net"
    with server.connect(greet=False) as cl:
        eq(cl.line(), "220 mx.example.test ESMTP moat", "greeting")
        qid = queued_id(cl.mail_tx(sender, ["perm-x@example.net"],
                                   crlf("From: b@example.test\nSubject: will bounce\n\nbody\n")))
    dsn = wait_for(lambda: next((m for m in sink().messages
                                 if b"MAILER-DAEMON@mx.example.test" in m.data and
                                 qid.encode() in m.data), None), 30, "the DSN")
    check(sender in dsn.rcpts, "DSN to the sender")
    h = sig_header(dsn.data)
    eq((tag(h, "d"), tag(h, "s")), ("example.test", "sel"), "the DSN's d= s=")
    check(verify(dsn.data), "dkimpy verifies the DSN")
    check(re.search(r"event=dkim-dsn id=[0-9a-f]{16} d=example.test s=sel", server.stderr(1 << 20)),
          "event=dkim-dsn logged")
    server.stop()


@case
def dsn_signature_waits_for_nothing():
    """A DSN whose key role does not answer goes unsigned once its patience
    is out (3 s), and the delivery role goes on meanwhile: a message
    queued while the DSN waits is delivered before it is given up."""
    c = conf(hostname="mx.example.test")
    server = Server("dsn-wait", c)
    pids = wait_keys(server)
    for p in pids:
        os.kill(p, signal.SIGSTOP)
    try:
        # From a domain without a key: the smtp role signs nothing.
        qid = queued_id(send(server, crlf("From: b@example.net\nSubject: will bounce\n\nx\n"),
                             sender="bounce-me@example.net", rcpts=["perm-y@example.net"]))
        wait_for(lambda: re.search(r"event=delivery id=%s .*status=bounced" % qid,
                                   server.stderr(1 << 20)), 30, "the bounce")
        other = queued_id(send(server, crlf("From: b@example.net\nSubject: meanwhile\n\nx\n"),
                               sender="bounce-me@example.net"))
        delivered(other, 10)
        log = server.stderr(1 << 20)
        check("event=dkim-fail kind=dsn" not in log, "delivered while the DSN waited")
        dsn = wait_for(lambda: next((m for m in sink().messages
                                     if b"MAILER-DAEMON@mx.example.test" in m.data and
                                     qid.encode() in m.data), None), 30, "the DSN")
    finally:
        for p in pids:
            os.kill(p, signal.SIGCONT)
    eq(dkim_headers(dsn.data), [], "the DSN went unsigned")
    check(re.search(r"event=dkim-fail kind=dsn id=[0-9a-f]{16} d=none s=none why=\"[^\"]+\" "
                    r"action=unsigned", server.stderr(1 << 20)), "event=dkim-fail kind=dsn logged")
    server.stop()


# ---------------------------------------------------------------- the failure rule

def wait_keys(server, n=2, old=()):
    """The key roles (the smtp role's, the delivery role's) once n run,
    none of them one of old."""
    return wait_for(lambda: (lambda p: p if len(p) >= n and not set(p) & set(old) else None)(
        server.role_pids("key")), 15, "%d key roles" % n)


def signed_again(server, seconds=15):
    """Once the key role is back, a message is signed again (the first
    tries may still meet the restart: 451)."""
    deadline = time.monotonic() + seconds
    while True:
        reply = send(server, MESSAGES["plain"])
        if reply.startswith("250 "):
            data = delivered(queued_id(reply))
            check(verify(data), "signed again, and verified")
            return
        eq(reply, "451 4.3.0 Cannot sign the message (DKIM), try again later", "while restarting")
        check(time.monotonic() < deadline, "not signed again within %ds" % seconds)
        time.sleep(0.2)


def queue_empty(server, seconds=30):
    wait_for(lambda: server.queue_list() == {}, seconds, "an empty queue")


@case
def key_role_stopped():
    """A key role that does not answer: 451 within a few seconds, nothing
    queued; once it answers again, messages are signed again."""
    mport = moatlib.free_port()
    server = Server("stopped", conf(metrics_listen="127.0.0.1:%d" % mport))
    pids = wait_keys(server)
    for p in pids:
        os.kill(p, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        reply = send(server, MESSAGES["plain"])
        took = time.monotonic() - t0
        eq(reply, "451 4.3.0 Cannot sign the message (DKIM), try again later", "reply")
        check(took < 10, "answered in %.1fs" % took)
        # While it is still stopped, the next one is refused at once.
        t0 = time.monotonic()
        eq(send(server, MESSAGES["plain"])[:4], "451 ", "second reply")
        check(time.monotonic() - t0 < 2, "the second is refused at once")
    finally:
        for p in pids:
            os.kill(p, signal.SIGCONT)
    signed_again(server)
    queue_empty(server)
    check("event=dkim-fail kind=message" in server.stderr(1 << 20) and
          'why="no answer in time" code=451' in server.stderr(1 << 20), "dkim-fail logged")
    # The counters count those lines.
    signed = [a for a in opslib.events(server, "accept") if a.get("dkim") == "signed"]
    fails = opslib.events(server, "dkim-fail")
    check(len(signed) >= 1 and len(fails) >= 2, "lines: %d signed, %d failed" % (len(signed), len(fails)))
    for om in (True, False):
        m = opslib.scrape(mport, openmetrics=om)
        eq(m.get("moat_dkim_signed_total"), len(signed) + len(opslib.events(server, "dkim-dsn")),
           "moat_dkim_signed_total")
        eq(m.get("moat_dkim_failures_total{kind=message}"),
           len([f for f in fails if f["kind"] == "message"]), "failures of messages")
        eq(m.get("moat_dkim_failures_total{kind=dsn}"), 0, "failures of DSNs")
        eq(m.get("moat_rejections_total{reason=dkim-fail}"), len(fails), "rejections")
    server.stop()


@case
def key_role_killed_while_signing():
    """SIGKILL to the key role while a message waits for its signature:
    451, nothing queued; a new key role signs the next ones."""
    server = Server("killed", conf())
    pids = wait_keys(server)
    for p in pids:
        os.kill(p, signal.SIGSTOP)
    result = {}

    def one():
        result["reply"] = send(server, MESSAGES["plain"])
    t = threading.Thread(target=one)
    t.start()
    time.sleep(1.0)          # it waits for its signature now
    for p in pids:
        os.kill(p, signal.SIGKILL)
    t.join(15)
    eq(result.get("reply"), "451 4.3.0 Cannot sign the message (DKIM), try again later", "reply")
    wait_keys(server, old=pids)
    signed_again(server)
    queue_empty(server)
    server.stop()


@case
def key_role_killed_under_load():
    """Four clients sending while the key role is killed twice: every
    message is answered 250 or 451; every 250 is delivered signed and
    verifies, no 451 reaches the next hop."""
    server = Server("load", conf())
    stop = threading.Event()
    replies = []
    lock = threading.Lock()

    def client(n):
        k = 0
        while not stop.is_set():
            marker = "load-%d-%d" % (n, k)
            k += 1
            msg = crlf("From: l@example.test\nSubject: %s\n\nbody %s\n" % (marker, marker))
            try:
                r = send(server, msg)
            except (OSError, Failure) as e:
                r = "error %s" % e
            with lock:
                replies.append((marker, r))
    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        for _ in range(2):
            time.sleep(1.5)
            pids = wait_keys(server)
            for p in pids:
                os.kill(p, signal.SIGKILL)
            wait_keys(server, old=pids)
        time.sleep(1.5)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    ok = [(m, r) for m, r in replies if r.startswith("250 ")]
    refused = [(m, r) for m, r in replies if not r.startswith("250 ")]
    for m, r in refused:
        eq(r, "451 4.3.0 Cannot sign the message (DKIM), try again later", "reply to %s" % m)
    check(len(ok) > 10, "messages accepted under load: %d" % len(ok))
    for m, r in ok:
        data = delivered(queued_id(r), 60)
        check(m.encode() in data and verify(data), "%s delivered signed" % m)
    queue_empty(server)
    for m, r in refused:
        check(not any(m.encode() + b"\r\n" in x.data for x in sink().messages),
              "%s (451) did not reach the next hop" % m)
    server.stop()


# ---------------------------------------------------------------- reload

@case
def reload_new_keys():
    """moat reload: a new key (new selector) signs the next messages and
    the DSNs; a bad key keeps the old configuration."""
    c = conf(hostname="mx.example.test")
    server = Server("reload", c)
    qid = queued_id(send(server, MESSAGES["plain"]))
    eq(tag(sig_header(delivered(qid)), "s"), "sel", "before the reload")
    text = open(server.conf_path).read()
    with open(server.conf_path, "w") as f:
        f.write(text.replace("dkim-sign example.test sel %s" % KEYS["main"],
                             "dkim-sign example.test new %s" % KEYS["new"]))
    r = server.moat("reload", "-c", server.conf_path)
    eq(r.returncode, 0, "moat reload: %r" % r.stderr)
    qid = queued_id(send(server, MESSAGES["plain"]))
    data = delivered(qid)
    eq(tag(sig_header(data), "s"), "new", "after the reload")
    check(verify(data), "verifies with the new record")
    # The delivery role's DSNs too.
    with server.connect(greet=False) as cl:
        eq(cl.line(), "220 mx.example.test ESMTP moat", "greeting")
        bq = queued_id(cl.mail_tx("reload-bounce@example.net", ["perm-r@example.net"],
                                  crlf("From: b@example.test\nSubject: bounce\n\nbody\n")))
    dsn = wait_for(lambda: next((m for m in sink().messages if bq.encode() in m.data and
                                 b"MAILER-DAEMON@" in m.data), None), 30, "the DSN")
    eq(tag(sig_header(dsn.data), "s"), "new", "the DSN after the reload")
    check(verify(dsn.data), "the DSN verifies")
    # A bad key: refused, the running configuration stays.
    bad = tmp("bad.pem")
    with open(bad, "w") as f:
        f.write(open(KEYS["main"]).read()[:300])
    text = open(server.conf_path).read()
    with open(server.conf_path, "w") as f:
        f.write(text.replace("dkim-sign example.test new %s" % KEYS["new"],
                             "dkim-sign example.test bad %s" % bad))
    r = server.moat("reload", "-c", server.conf_path)
    check(r.returncode != 0 and b"bad.pem" in r.stdout + r.stderr, "reload refused: %r" % (r,))
    qid = queued_id(send(server, MESSAGES["plain"]))
    eq(tag(sig_header(delivered(qid)), "s"), "new", "after a refused reload")
    server.stop()


# ---------------------------------------------------------------- the keys' place

def prime_prefix(keyfile):
    """The first 24 bytes of the key's first prime, as stored in memory."""
    text = subprocess.run(["openssl", "rsa", "-in", keyfile, "-noout", "-text"],
                          stdout=subprocess.PIPE, check=True).stdout.decode()
    m = re.search(r"prime1:\s*\n((?:\s+[0-9a-f:]+\n)+)", text)
    raw = bytes.fromhex(re.sub(r"[\s:]", "", m.group(1)))
    return raw.lstrip(b"\0")[:24]


def memory_has(pid, needle):
    """Is needle in pid's readable memory?  Read in pieces; mappings over
    1 GiB are left out (the ASan build's shadow memory: reserved, never
    holding data)."""
    step = 16 << 20
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            parts = line.split()
            if "r" not in parts[1] or (len(parts) > 5 and parts[5].startswith("[v")):
                continue
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            if hi - lo > 1 << 30:
                continue
            for at in range(lo, hi, step):
                try:
                    mem.seek(at)
                    if needle in mem.read(min(step + len(needle), hi - at)):
                        return True
                except OSError:
                    break
    return False


@case
def private_keys_only_in_the_key_role():
    server = moatlib.shared("relay", conf())
    send(server, MESSAGES["plain"])
    needle = prime_prefix(KEYS["main"])
    keys = wait_keys(server)
    check(any(memory_has(p, needle) for p in keys), "the key role holds the key (the scan works)")
    for role in ("smtp", "delivery", "queue"):
        check(not memory_has(server.role_pid(role), needle), "the %s role holds no DKIM key" % role)


if __name__ == "__main__":
    base = os.path.join(BUILD, "t")
    os.makedirs(base, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=base, prefix="dkim-serve-") as d:
        TMP = os.path.abspath(d)
        setup()
        main()
