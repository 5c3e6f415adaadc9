#!/usr/bin/python3
"""tests/ops/test_reload.py -- SIGHUP under load: clients send mail all
through a good reload (new host name, domain, recipients, user, listeners
added and removed, the metrics endpoint moved) and three bad ones (a
syntax error, a missing users file, a listener whose port is taken),
without one transaction lost; sessions open across a reload keep the
config they started with; a refused reload names FILE:LINE in the log and
leaves the old config in force.
ASAN_OK
"""

import os
import re
import signal
import socket
import threading
import time

import opslib
from opslib import Failure, check, eq, moatlib
import tlslib
from moatlib import Client, case, free_port, queued_id

BODY = "Subject: load\r\n\r\nunder load\r\n"


class Load:
    """Clients sending one message per connection, round after round,
    until stopped; every reply is checked, every failure kept."""

    def __init__(self, port, workers=3):
        self.port = port
        self.stop = threading.Event()
        self.ok = 0
        self.hosts = set()
        self.errors = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(workers)]
        for t in self.threads:
            t.start()

    def one(self, i):
        with Client("127.0.0.1", self.port) as c:
            greet = c.line()
            check(greet.startswith("220 ") and greet.endswith(" ESMTP moat"), "greeting %r" % greet)
            host = greet.split()[1]
            queued_id(c.mail_tx("load%d@example.org" % i, ["alice@example.test"], BODY))
            eq(c.cmd("QUIT"), "221 2.0.0 %s closing connection" % host, "QUIT, same host")
        return host

    def run(self, i):
        deadline = time.monotonic() + 40
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                host = self.one(i)
                with self.lock:
                    self.ok += 1
                    self.hosts.add(host)
            except Exception as e:  # noqa: every failure is kept and reported
                with self.lock:
                    self.errors.append("%s: %s" % (type(e).__name__, e))

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(45)
        check(not self.errors, "%d transactions failed under load, first: %s"
              % (len(self.errors), self.errors[:3]))
        return self.ok


def write(path, lines):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.rename(tmp, path)


def hup_and_wait(s, n, status):
    s.proc.send_signal(signal.SIGHUP)
    return opslib.wait_log(s, r"event=reload status=%s " % status, n)[-1]


def greeting(port, v6=False):
    with Client("::1" if v6 else "127.0.0.1", port) as c:
        g = c.line()
        c.cmd("QUIT")
    return g


def refused(port, v6=False):
    try:
        socket.create_connection(("::1" if v6 else "127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def reload_steps(s, load, users, rcpts, alice, base, sub, new_port, m1, m2):
    """Reloads, good and bad, while load runs; returns the good config's lines."""
    # A session open across every reload.
    old = s.connect()
    old.ehlo()
    time.sleep(0.3)

    # A good reload: everything changes at once.
    write(rcpts, ["alice", "bob", "carol"])
    write(users, [alice, "carol:%s" % tlslib.moat_passwd("pw-carol")])
    write(s.conf_path, base + [
        "hostname mx2.test",
        "domain other.test",
        "listen 127.0.0.1:%d" % s.port4,
        "listen 127.0.0.1:%d" % new_port,
        "listen 127.0.0.1:%d role=submission auth-plaintext-loopback" % sub,
        "metrics-listen %d" % m2])
    line = hup_and_wait(s, 1, "ok")
    check(" generation=2 listeners=3 " in line, line)
    time.sleep(0.3)
    eq(greeting(s.port4), "220 mx2.test ESMTP moat", "a new session on a kept listener")
    eq(greeting(new_port), "220 mx2.test ESMTP moat", "the added listener")
    check(refused(s.port6, v6=True), "the removed listener still accepts")
    check(refused(m1), "the old metrics address still accepts")
    with Client("127.0.0.1", s.port4) as c:
        c.line()
        c.ehlo()
        c.expect("MAIL FROM:<a@example.org>", "250 2.1.0 Sender OK")
        c.expect("RCPT TO:<carol@example.test>", "250 2.1.5 Recipient OK")
        c.expect("RCPT TO:<x@other.test>", "250 2.1.5 Recipient OK")
    with Client("127.0.0.1", sub) as c:
        c.line()
        c.ehlo()
        c.expect("AUTH PLAIN " + tlslib.plain("carol", "pw-carol"),
                 "235 2.7.0 Authentication successful")
    # The old session lives on, with the config it started with.
    old.expect("MAIL FROM:<a@example.org>", "250 2.1.0 Sender OK")
    old.expect("RCPT TO:<carol@example.test>", "550 5.1.1 <carol@example.test>: User unknown")
    old.expect("RCPT TO:<x@other.test>", "554 5.7.1 <x@other.test>: Relay access denied")
    old.expect("RCPT TO:<bob@example.test>", "250 2.1.5 Recipient OK")
    old.expect("DATA", "354 End data with <CR><LF>.<CR><LF>")
    old.send(BODY + ".\r\n")
    queued_id(old.one())
    m = opslib.scrape(m2)
    eq((m["moat_config_generation"], m["moat_reloads_total{status=ok}"]), (2, 1), "metrics")

    # Bad reloads: refused with FILE:LINE, nothing changes.
    good = open(s.conf_path).read().splitlines()
    write(s.conf_path, good[:7] + ["frobnicate yes"] + good[7:])
    line = hup_and_wait(s, 1, "refused")
    check(line.endswith('generation=2 error="%s:8: unknown directive \'frobnicate\'"'
                        % s.conf_path), line)
    write(s.conf_path, [ln.replace(users, users + ".missing") for ln in good])
    line = hup_and_wait(s, 2, "refused")
    check(line.endswith('error="%s:4: users: %s.missing: No such file or directory"'
                        % (s.conf_path, users)), line)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    busy = taken.getsockname()[1]
    write(s.conf_path, good + ["listen 127.0.0.1:%d" % busy])
    line = hup_and_wait(s, 3, "refused")
    # (musl says "Address in use", glibc "Address already in use")
    check(re.search(r'error="listen 127\.0\.0\.1:%d: Address (already )?in use"$' % busy, line),
          line)
    taken.close()
    write(s.conf_path, [ln.replace(s.queue_dir, s.queue_dir + "2") for ln in good])
    line = hup_and_wait(s, 4, "refused")
    check("is not the queue in use" in line, line)
    # The good config still rules: listeners, names, endpoint.
    time.sleep(0.3)
    eq(greeting(new_port), "220 mx2.test ESMTP moat", "after refused reloads")
    check(refused(s.port6, v6=True), "the removed listener came back")
    m = opslib.scrape(m2)
    eq((m["moat_config_generation"], m["moat_reloads_total{status=refused}"]), (2, 4), "metrics")
    old.expect("QUIT", "221 2.0.0 mx.test closing connection")
    old.close()
    return good


@case
def test_reload_under_load():
    d = os.path.abspath(os.path.join(moatlib.BUILD, "t", "reload-%d" % os.getpid()))
    os.makedirs(d, exist_ok=True)
    rcpts, users = os.path.join(d, "rcpts"), os.path.join(d, "users")
    write(rcpts, ["alice", "bob"])
    alice = "alice:%s" % tlslib.moat_passwd("pw-alice")
    write(users, [alice])
    sub, new_port, m1, m2 = free_port(), free_port(), free_port(), free_port()
    s = moatlib.Server("reload", {
        "listen": None,
        "recipients": "example.test " + rcpts,
        "users": users,
        "metrics-listen": str(m1),
    }, start=False)
    base = ["queue " + s.queue_dir, "domain example.test", "recipients example.test " + rcpts,
            "users " + users, "delivery off"]
    write(s.conf_path, base + [
        "hostname mx.test",                                         # line 5
        "listen 127.0.0.1:%d" % s.port4,
        "listen [::1]:%d" % s.port6,
        "listen 127.0.0.1:%d role=submission auth-plaintext-loopback" % sub,
        "metrics-listen %d" % m1])
    s.start()
    load = Load(s.port4)
    try:
        good = reload_steps(s, load, users, rcpts, alice, base, sub, new_port, m1, m2)
    finally:
        load.stop.set()
    sent = load.finish()
    check(sent >= 10, "only %d messages under load" % sent)
    eq(load.hosts, {"mx.test", "mx2.test"}, "host names the load saw")
    # Every acknowledged message is queued: the load's, the old session's.
    write(s.conf_path, good)
    eq(len(s.queue_list()), sent + 1, "queued messages")
    eq(opslib.scrape(m2)["moat_messages_accepted_total"], sent + 1, "accepted")
    s.stop()


if __name__ == "__main__":
    moatlib.main()
