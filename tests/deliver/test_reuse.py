"""tests/deliver/test_reuse.py -- outbound connections kept and reused:
many messages over few connections (at most
max-messages-per-delivery-connection each), a STARTTLS+AUTH smarthost
authenticated once per connection and its TLS session resumed on the next
one, a 421 in the middle of a reused connection, a next hop that closes a
kept connection or answers RSET with 421 (the message goes on a new one,
once), a route's rate, and a dead destination: throttled, then down (no
connection of its own), shown by `moat status` and `moat queue list`,
tried again at once by `moat queue flush`.

Next hops: Debian's aiosmtpd (with Python's ssl), raw socket servers
playing scripts.  Each message is counted where it arrives: exactly once.

ASAN_OK
Run:  BUILD=build MOAT=build/moat /usr/bin/python3 tests/deliver/test_reuse.py [case ...]
"""

import math
import os
import re
import ssl
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "smtp"))
sys.path.insert(0, os.path.join(HERE, "..", "tls"))
import moatlib  # noqa: E402
from moatlib import Server, case, check, eq, queued_id  # noqa: E402
from sinklib import (FAST, SENDER, RawServer, Sink, log_text, main, queue_state,  # noqa: E402
                     read_data, read_line,
                     wait_for)
import tlslib  # noqa: E402



def submit(server, n, rcpt="bob@example.test", tag="m"):
    """n messages over one connection; their ids, in order."""
    ids = []
    with server.connect() as c:
        c.ehlo()
        for i in range(n):
            body = "Subject: %s-%d\r\nMessage-ID: <%s-%d@sender.test>\r\n\r\nbody %d\r\n" % (
                tag, i, tag, i, i)
            ids.append(queued_id(c.mail_tx(SENDER, [rcpt], body, ehlo=False)))
    return ids


def release(s):
    """Start s again with delivery on: what it holds is due at once."""
    s.stop()
    with open(s.conf_path) as f:
        text = f.read()
    with open(s.conf_path, "w") as f:
        f.write(text.replace("\ndelivery off\n", "\ndelivery on\n"))
    s.start()


def held(name, conf, n, **kw):
    """A server that takes n messages with delivery off, then starts again
    with delivery on: every message is due at once."""
    s = Server(name, dict(conf, delivery="off"))
    ids = submit(s, n, **kw)
    release(s)
    return s, ids


def subjects(messages):
    return sorted(m.parsed()["Subject"] for m in messages)


def once_each(messages, n, tag="m"):
    eq(subjects(messages), sorted("%s-%d" % (tag, i) for i in range(n)),
       "each message arrived exactly once")


def wait_empty(server, seconds=60):
    wait_for(lambda: not queue_state(server), seconds, "an empty queue")


def server_ctx(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


@case
def test_many_messages_few_connections():
    sink = Sink(pipelining=True)
    base = sink.sessions
    n, conc, per = 200, 3, 100
    s, _ = held("reuse-200", dict(FAST, route="example.test [127.0.0.1]:%d" % sink.port,
                                  **{"destination-concurrency": conc}), n)
    sink.wait_messages(n, 60)
    wait_empty(s)
    used = sink.sessions - base
    check(1 <= used <= math.ceil(n / per) * conc,
          "%d messages over %d connections (at most %d each, %d at once)" % (n, used, per, conc))
    check(sink.open_max <= conc, "at most %d at once, saw %d" % (conc, sink.open_max))
    per_session = {}
    for m in sink.messages:
        per_session[m.session] = per_session.get(m.session, 0) + 1
    check(max(per_session.values()) <= per, "at most %d per connection: %r" % (per, per_session))
    once_each(sink.messages, n)
    eq(log_text(s).count("status=sent"), n, "one delivery logged per message")


@case
def test_starttls_auth_smarthost_once_per_connection_and_resumed():
    cert, key = tlslib.pair("relay", "rsa", "relay.test")
    ctx = server_ctx(cert, key)
    sink = Sink(starttls=ctx, users={"moat": "pass word"})
    base = sink.sessions
    auth = os.path.join(os.path.abspath(moatlib.BUILD), "t", "reuse-%d.auth" % os.getpid())
    with open(auth, "w") as f:
        f.write("moat:pass word\n")
    n, per = 20, 5
    s, _ = held("reuse-smart", dict(FAST, **{
        "smarthost": "[127.0.0.1]:%d tls require auth %s" % (sink.port, auth),
        "destination-concurrency": 1, "max-messages-per-delivery-connection": per,
        "delivery-connection-idle": "5s"}), n, rcpt="someone@far.example")
    sink.wait_messages(n, 60)
    wait_empty(s)
    used = sink.sessions - base
    eq(used, n // per, "connections for %d messages, %d each" % (n, per))
    eq(sink.auths, used, "AUTH once per connection")
    check(all(m.user == "moat" and m.tls for m in sink.messages), "each over TLS, authenticated")
    once_each(sink.messages, n)
    hits = ctx.session_stats()["hits"]
    log = log_text(s)
    resumed = len(re.findall(r"event=delivery .*status=sent.* tls-resumed=yes", log))
    check(hits >= used - 1, "the server resumed %d of %d TLS sessions" % (hits, used))
    check(resumed >= (used - 1) * per, "deliveries over a resumed session logged: %d" % resumed)


def scripted(on_mail):
    """A PIPELINING-less server: on_mail(session, n) says the reply to the
    n-th MAIL of that connection; it keeps what it took (subject lines)."""
    state = {"sessions": 0, "got": [], "quits": 0}

    def play(c, srv):
        buf = [b""]
        state["sessions"] += 1
        session = state["sessions"]
        c.sendall(b"220 raw.test ESMTP\r\n")
        mails = 0
        while True:
            line = read_line(c, buf)
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                c.sendall(b"250 raw.test\r\n")
            elif verb == b"MAIL":
                mails += 1
                r = on_mail(session, mails)
                c.sendall(r)
                if r.startswith(b"421"):
                    return
            elif verb == b"RCPT":
                c.sendall(b"250 ok\r\n")
            elif verb == b"DATA":
                c.sendall(b"354 go\r\n")
                data = read_data(c, buf)
                subj = re.search(rb"Subject: (\S+)", data).group(1).decode()
                state["got"].append(subj)
                c.sendall(b"250 stored\r\n")
            elif verb == b"RSET":
                r = on_mail(session, -mails)    # -n: the RSET after the n-th
                c.sendall(r)
                if r.startswith(b"421"):
                    return
            elif verb == b"QUIT":
                state["quits"] += 1
                c.sendall(b"221 bye\r\n")
                return
            else:
                c.sendall(b"500 what\r\n")
    return state, RawServer(play)


@case
def test_421_in_the_middle_of_a_reused_connection():
    # the first connection takes two messages, then says 421 to the third MAIL
    state, raw = scripted(lambda session, n: b"421 4.3.2 going away\r\n"
                          if session == 1 and n == 3 else b"250 ok\r\n")
    n = 6
    s, _ = held("reuse-421", dict(FAST, route="example.test [127.0.0.1]:%d" % raw.port,
                                  **{"destination-concurrency": 1}), n)
    wait_empty(s, 30)
    eq(sorted(state["got"]), sorted("m-%d" % i for i in range(n)), "each message exactly once")
    check(state["sessions"] >= 2, "a new connection after the 421")
    eq(raw.errors, [], "the script's errors")


@case
def test_next_hop_closes_a_kept_connection():
    sink = Sink(idle_timeout=1)
    base = sink.sessions
    s = Server("reuse-closed", dict(FAST, route="example.test [127.0.0.1]:%d" % sink.port,
                                    **{"delivery-connection-idle": "30s"}))
    submit(s, 1, tag="a")
    sink.wait_messages(1)
    time.sleep(2)               # the sink has closed the kept connection
    t0 = time.monotonic()
    submit(s, 1, tag="b")
    sink.wait_messages(2)
    check(time.monotonic() - t0 < 5, "delivered at once, not after a retry")
    wait_empty(s)
    eq(subjects(sink.messages), ["a-0", "b-0"], "each once")
    eq(sink.sessions - base, 2, "a new connection for the second")
    check("attempts=2" not in log_text(s), "no message needed a second attempt")


@case
def test_rset_421_on_a_kept_connection():
    state, raw = scripted(lambda session, n: b"421 4.3.2 bye now\r\n" if n < 0 else b"250 ok\r\n")
    s = Server("reuse-rset", dict(FAST, route="example.test [127.0.0.1]:%d" % raw.port,
                                  **{"delivery-connection-idle": "30s"}))
    submit(s, 1, tag="a")
    wait_for(lambda: state["got"], 15, "the first message")
    t0 = time.monotonic()
    submit(s, 1, tag="b")
    wait_for(lambda: len(state["got"]) == 2, 15, "the second message")
    check(time.monotonic() - t0 < 5, "delivered at once, not after a retry")
    wait_empty(s)
    eq(sorted(state["got"]), ["a-0", "b-0"], "each once")
    eq(state["sessions"], 2, "the RSET refused: a new connection")
    check("attempts=2" not in log_text(s), "no message needed a second attempt")
    eq(raw.errors, [], "the script's errors")


@case
def test_a_routes_rate():
    sink = Sink()
    n = 4
    s, _ = held("reuse-rate", dict(FAST, route="example.test [127.0.0.1]:%d rate 60/minute"
                                   % sink.port), n)
    sink.wait_messages(n, 30)
    at = sorted(m.at for m in sink.messages)
    gaps = [b - a for a, b in zip(at, at[1:])]
    check(min(gaps) >= 0.8, "60 a minute: a second apart, saw gaps %r" % gaps)
    once_each(sink.messages, n)
    wait_empty(s)
    check("attempts=2" not in log_text(s), "waiting for the rate is not a failed attempt")


@case
def test_big_messages_in_pieces_beside_small_ones():
    # bodies go to the connection a piece at a time as the queue role
    # answers: three of 1 MB (many pieces each) and small ones at once,
    # every byte as it was accepted
    import hashlib
    sink = Sink(pipelining=True)
    s = Server("reuse-big", dict(FAST, route="example.test [127.0.0.1]:%d" % sink.port,
                                 delivery="off"))
    want = {}
    with s.connect() as c:
        c.ehlo()
        for i in range(12):
            size = 1 << 20 if i % 4 == 0 else 2000
            line = ("%05d " % i) + "x" * 70 + "\r\n"
            body = ("Subject: big-%d\r\n\r\n" % i) + line * (size // len(line))
            want["big-%d" % i] = hashlib.sha256(body.encode()).hexdigest()
            queued_id(c.mail_tx(SENDER, ["bob@example.test"], body, ehlo=False))
    release(s)
    sink.wait_messages(12, 60)
    wait_empty(s)
    got = {}
    for m in sink.messages:
        data = m.data
        # the sink has what moat sent: its own Received: line first
        start = data.index(b"Subject: ")
        got[m.parsed()["Subject"]] = hashlib.sha256(data[start:]).hexdigest()
    eq(got, want, "every body as accepted")


@case
def test_dead_destination_throttled_then_down():
    conns = []

    def play(c, srv):
        conns.append(time.monotonic())
        c.sendall(b"421 4.3.2 dead.test not today\r\n")
    raw = RawServer(play)
    n = 5
    s, ids = held("reuse-dead", dict(FAST, route="example.test [127.0.0.1]:%d" % raw.port,
                                     **{"retry-min": "10m", "retry-max": "1h",
                                        "destination-concurrency": 1}), n)
    wait_for(lambda: all(st.get("bob@example.test", ("", 0))[1] >= 1
                         for st in queue_state(s).values()) and len(queue_state(s)) == n,
             20, "an attempt for each message")
    eq(len(conns), 2, "connections: one, throttled, a second, down; none for the others")
    key = "relay:127.0.0.1:%d:" % raw.port
    r = s.moat("status", "-c", s.conf_path)
    eq(r.returncode, 0, "moat status exit")
    out = r.stdout.decode()
    check(re.search(r"^destination %s\S* down \d+s: .*not today" % re.escape(key), out, re.M),
          "status names the destination down: %r" % out[-500:])
    r = s.moat("queue", "list", "-c", s.conf_path)
    check(re.search(r"^destination %s\S* down" % re.escape(key), r.stdout.decode(), re.M),
          "queue list too: %r" % r.stdout.decode()[-500:])
    for qid in ids:
        err = queue_state(s)[qid]["bob@example.test"][2]
        check("not today" in err, "each deferred with the destination's error: %r" % err)
    log = log_text(s)
    check("event=destination key=%s" % key in log and "state=down" in log,
          "logged throttled, then down")
    before = len(conns)
    r = s.moat("queue", "flush", "-c", s.conf_path)
    eq(r.returncode, 0, "moat queue flush exit: %r" % r.stderr)
    wait_for(lambda: len(conns) > before, 15, "a connection after the flush")
    r = s.moat("status", "-c", s.conf_path)
    out = r.stdout.decode()
    check(len(queue_state(s)) == n, "nothing lost")
    eq(raw.errors, [], "the script's errors")


if __name__ == "__main__":
    main()
