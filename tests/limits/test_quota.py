"""tests/limits/test_quota.py -- queue quotas against the real server: a
real full filesystem (a tmpfs mounted here: run as root), the message,
byte and per-client quotas, oversize messages, and a version 1 queue
upgraded in place.

Every refusal is the exact reply of the docs/smtp-replies.md table.  Space is freed in
two ways, as an administrator would: by deleting files planted on the
queue's filesystem (acceptance resumes in the running server, by itself),
and, for the count and byte quotas, by raising the quota in the config and
restarting (moat has no command that removes queued mail yet).

ASAN_OK: run.sh runs this file against build/moat and build/moat-asan.

Run:  BUILD=build MOAT=build/moat /usr/bin/python3 tests/limits/test_quota.py [case ...]
"""

import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "smtp"))
from moatlib import (BUILD, Failure, Server, case, check, eq, main,  # noqa: E402
                     queued_id)

FULL = "452 4.3.1 Insufficient system storage"
TOO_BIG = "552 5.3.4 Message size exceeds fixed maximum message size"
SENDER_OK = "250 2.1.0 Sender OK"
RCPT_OK = "250 2.1.5 Recipient OK"
GO_AHEAD = "354 End data with <CR><LF>.<CR><LF>"
KB = 1024
MB = 1024 * 1024
SEED = 4242


def body(rng, size):
    """About size bytes of CRLF lines, none starting with '.'."""
    lines, n = [], 0
    while n < size:
        line = b"q" + bytes(rng.randrange(97, 123) for _ in range(75))
        lines.append(line + b"\r\n")
        n += len(line) + 2
    return b"".join(lines)


def fast_body(size, tag):
    """A big body, quickly: one random line repeated, tagged."""
    rng = random.Random(tag)
    line = b"z" + bytes(rng.randrange(97, 123) for _ in range(76)) + b"\r\n"
    return (b"Subject: %d\r\n\r\n" % tag) + line * (size // len(line))


def send(c, data, size_param=None, ehlo=False):
    """One transaction; returns the reply that ended it (a refused MAIL, or
    the reply after the terminator)."""
    if ehlo:
        c.ehlo()
    r = c.cmd("MAIL FROM:<a@example.org>%s" % (" SIZE=%d" % size_param if size_param else ""))
    if r != SENDER_OK:
        return r
    eq(c.cmd("RCPT TO:<bob@example.test>"), RCPT_OK, "RCPT")
    eq(c.cmd("DATA"), GO_AHEAD, "DATA")
    c.send(data + b".\r\n")
    return c.one(timeout=30)


def check_intact(s, acked):
    listed = s.queue_list()
    for qid, data in acked.items():
        check(qid in listed, "acknowledged %s is not in the queue" % qid)
        eq(s.queued_message(qid)[1], data, "stored bytes of %s" % qid)


def log_has(s, pattern):
    return re.search(pattern, s.stderr(tail=1 << 20)) is not None


def avail(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def plant(path, size):
    with open(path, "wb") as f:
        f.write(b"\0" * size)


# ------------------------------------------------------------ a real full disk

@case
def test_full_tmpfs():
    mnt = tempfile.mkdtemp(prefix="quota-fs-", dir=os.path.abspath(os.path.join(BUILD, "t")))
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "moat-quota", mnt],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    eq(r.returncode, 0, "mount tmpfs (this test runs as root): %r" % r.stdout)
    s = None
    try:
        s = Server("tmpfs", {"queue": os.path.join(mnt, "queue"), "max-message-size": "1M",
                             "queue-min-free": 0, "queue-min-free-percent": 0})
        full_disk_cases(s, mnt)
        eq(s.stop(), 0, "exit status after SIGTERM")
    finally:
        if s is not None:
            s.kill()
        r = subprocess.run(["umount", mnt], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        os.rmdir(mnt) if r.returncode == 0 else None
        eq(r.returncode, 0, "umount %s: %r" % (mnt, r.stdout))


def full_disk_cases(s, mnt):
    rng = random.Random(SEED)
    filler = os.path.join(mnt, "filler")
    plant(filler, 2 * MB)
    acked = {}
    # Fill with real messages until moat says 452; every 250 is kept.
    with s.connect() as c:
        c.ehlo()
        for i in range(100):
            data = b"Subject: fill %d\r\n\r\n" % i + body(rng, 150 * KB)
            r = send(c, data)
            if r == FULL:
                break
            acked[queued_id(r)] = data
        else:
            raise Failure("no 452 after 100 messages of 150 KiB on an 8 MiB filesystem")
        check(len(acked) >= 10, "452 after only %d messages" % len(acked))
        # Declared too big for what is left: 452 at MAIL, at once.
        eq(c.cmd("MAIL FROM:<a@example.org> SIZE=1000000"), FULL, "MAIL SIZE= on a full disk")
        c.expect("NOOP", "250 2.0.0 OK")
    check_intact(s, acked)
    check(not s.incoming(), "drafts left in incoming/: %r" % s.incoming())
    check(log_has(s, r"reason=(quota-disk stage=data|queue-full)"), "no reason logged for the fill")
    check(log_has(s, r"code=452 reason=quota-disk stage=mail size=1000000"),
          "no log of the 452 at MAIL")

    # Space frees up: acceptance resumes by itself, no restart.
    os.unlink(filler)
    with s.connect() as c:
        data = b"Subject: after\r\n\r\n" + body(rng, 150 * KB)
        acked[queued_id(send(c, data, ehlo=True))] = data

    # 600 KiB left: a 500 KiB message spools, then the check at the end
    # of DATA refuses it; a 1 MB one meets ENOSPC in its spool file.
    plant(filler, avail(mnt) - 600 * KB)
    with s.connect() as c:
        c.ehlo()
        eq(c.cmd("MAIL FROM:<a@example.org> SIZE=1000000"), FULL, "MAIL SIZE=1000000")
        eq(send(c, fast_body(500 * KB, 1)), FULL, "500 KiB with 600 KiB free")
        eq(send(c, fast_body(1000 * KB, 2)), FULL, "1000 KiB with 600 KiB free")
        small = b"Subject: small\r\n\r\nstill fits\r\n"
        acked[queued_id(send(c, small))] = small
    check(log_has(s, r"code=452 reason=quota-disk stage=data size=5\d{5}"),
          "no log of the 452 at the end of DATA")
    # The spool write that meets ENOSPC is in the queue role; the smtp role
    # learns it at the end of DATA, where the disk quota may say it first.
    check(log_has(s, r"code=452 reason=(queue-full|quota-disk) stage=data size=10\d{5}"),
          "no log of the spool file that met ENOSPC")
    check(not s.incoming(), "drafts left in incoming/: %r" % s.incoming())
    # Freed again: 600 KiB fits (its spool file and its copy in LMDB).
    os.unlink(filler)
    with s.connect() as c:
        data = fast_body(600 * KB, 3)
        acked[queued_id(send(c, data, ehlo=True))] = data
    check_intact(s, acked)
    eq(len(s.queue_list()), len(acked), "queued messages")
    # And after a restart, all of it is still there.
    s.restart()
    check_intact(s, acked)


# ------------------------------------------------------------ count, bytes, share

@case
def test_message_count():
    s = Server("count", {"queue-max-messages": 3})
    with s.connect() as c:
        c.ehlo()
        ids = [queued_id(send(c, b"n %d\r\n" % i)) for i in range(3)]
        eq(c.cmd("MAIL FROM:<a@example.org>"), FULL, "MAIL with 3 of 3 queued")
        eq(c.cmd("MAIL FROM:<a@example.org> SIZE=10"), FULL, "MAIL SIZE=10 with 3 of 3 queued")
    check(log_has(s, r"code=452 reason=quota-messages stage=mail"), "no log of the reason")
    eq(sorted(s.queue_list()), sorted(ids), "queue")
    # Raise the quota (config + restart): accepted again.
    s.stop()
    with open(s.conf_path, "a") as f:
        f.write("queue-max-messages 4\n")
    lines = open(s.conf_path).read().splitlines()
    with open(s.conf_path, "w") as f:
        f.write("\n".join(ln for ln in lines if ln != "queue-max-messages 3") + "\n")
    s.start()
    with s.connect() as c:
        queued_id(send(c, b"four\r\n", ehlo=True))
        eq(c.cmd("MAIL FROM:<a@example.org>"), FULL, "MAIL with 4 of 4 queued")


@case
def test_bytes_and_client_share():
    # 1 MiB in all, half of it for one client; messages of about 200 KB.
    s = Server("share", {"max-message-size": "256K", "queue-max-bytes": "1M",
                         "queue-client-share": 50})
    msg = fast_body(200 * KB, 7)
    got = {}
    for src in ("127.0.0.1", "127.0.0.2"):
        with s.connect(source=src) as c:
            c.ehlo()
            ids = [queued_id(send(c, msg)), queued_id(send(c, msg))]
            # a third would pass 512 KiB: at the end of DATA, and at MAIL
            # when declared
            eq(send(c, msg), FULL, "third message from %s" % src)
            eq(c.cmd("MAIL FROM:<a@example.org> SIZE=%d" % (200 * KB)), FULL,
               "MAIL SIZE= from %s" % src)
            # a small one still fits this client's share
            ids.append(queued_id(send(c, b"tiny\r\n")))
            got[src] = ids
    check(log_has(s, r"addr=127\.0\.0\.1 sid=[0-9a-f]{16} code=452 reason=quota-client stage=data"),
          "no log of the client share at DATA")
    check(log_has(s, r"addr=127\.0\.0\.2 sid=[0-9a-f]{16} code=452 reason=quota-client stage=mail"),
          "no log of the client share at MAIL")
    # Two clients hold about 820 KB: a third client's first 200 KiB fits
    # (just under 1 MiB), its second would pass queue-max-bytes.
    with s.connect(source="127.0.0.3") as c:
        got["127.0.0.3"] = [queued_id(send(c, msg, ehlo=True))]
        eq(send(c, msg), FULL, "message past queue-max-bytes")
    check(log_has(s, r"addr=127\.0\.0\.3 sid=[0-9a-f]{16} code=452 reason=quota-bytes stage=data"),
          "no log of the byte quota")
    eq(sorted(s.queue_list()), sorted(sum(got.values(), [])), "queue")


# ------------------------------------------------------------ oversize

def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise Failure("no VmRSS for %d" % pid)


@case
def test_oversize_declared_and_actual():
    s = Server("oversize", {"max-message-size": "100K"})
    with s.connect() as c:
        c.ehlo()
        # declared: 552 at once, and at the limit it is fine
        c.expect("MAIL FROM:<a@example.org> SIZE=102401", TOO_BIG)
        c.expect("MAIL FROM:<a@example.org> SIZE=102400", SENDER_OK)
        c.expect("RSET", "250 2.0.0 OK")
        # actual: 20 MB against a 100 KiB limit; moat reads it all and
        # answers after the terminator, its memory flat meanwhile
        c.expect("MAIL FROM:<a@example.org>", SENDER_OK)
        c.expect("RCPT TO:<bob@example.test>", RCPT_OK)
        eq(c.cmd("DATA"), GO_AHEAD, "DATA")
        chunk = (b"y" * 998 + b"\r\n") * 1000
        c.send(chunk)
        time.sleep(0.2)
        before = rss_kb(s.proc.pid)
        for _ in range(20):
            c.send(chunk)
        c.send(b".\r\n")
        eq(c.one(timeout=60), TOO_BIG, "after the terminator of a 20 MB body")
        after = rss_kb(s.proc.pid)
        check(after - before < 2048, "RSS grew from %d kB to %d kB reading 20 MB"
              % (before, after))
        check(not s.incoming(), "a spool file remained: %r" % s.incoming())
        # the session goes on
        queued_id(send(c, b"ok\r\n"))
    eq(len(s.queue_list()), 1, "queued: only the small one")
    print("oversize: VmRSS %d kB before, %d kB after 20 MB of refused body" % (before, after))


# ------------------------------------------------------------ format upgrade

def mdb(args):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    eq(r.returncode, 0, "%s: %r" % (" ".join(args), r.stderr))
    return r.stdout


@case
def test_upgrade_from_version_1():
    # A queue as a version 1 moat left it: no "usage" database, meta
    # version 1, made from a real queue with LMDB's own dump and load.
    check(shutil.which("mdb_dump") and shutil.which("mdb_load"), "lmdb-utils not installed")
    s = Server("upgrade", {"queue-max-messages": 3})
    with s.connect() as c:
        c.ehlo()
        ids = [queued_id(send(c, b"old %d\r\n" % i)) for i in range(2)]
    s.stop()
    parts = [mdb(["mdb_dump", "-s", name, s.queue_dir]).decode() for name in ("body", "env", "meta")]
    meta = parts[2].replace(" 76657273696f6e\n 00000003\n", " 76657273696f6e\n 00000001\n")
    check(meta != parts[2], "no meta version 3 in the dump:\n%s" % parts[2])
    old = s.queue_dir + ".v1"
    os.makedirs(old, mode=0o700)
    r = subprocess.run(["mdb_load", "-f", "/dev/stdin", old],
                       input=(parts[0] + parts[1] + meta).encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    eq(r.returncode, 0, "mdb_load: %r" % r.stderr)
    eq(mdb(["mdb_dump", "-l", old]).decode().split(), ["body", "env", "meta"], "v1 databases")
    shutil.rmtree(s.queue_dir)
    os.rename(old, s.queue_dir)
    # A reader refuses version 1 and says what to do.
    r = s.moat("queue", "list", "-c", s.conf_path)
    eq(r.returncode, 111, "moat queue list on a version 1 queue")
    check(b"on-disk format version 1, this moat reads 3 (start moat serve once to upgrade it)"
          in r.stderr, "reader's message: %r" % r.stderr)
    # The writer upgrades it: the counters know the two old messages, so
    # with queue-max-messages 3 one more fits and no other.
    s.start()
    with s.connect() as c:
        c.ehlo()
        ids.append(queued_id(send(c, b"new\r\n")))
        eq(c.cmd("MAIL FROM:<a@example.org>"), FULL, "MAIL with 3 of 3 after the upgrade")
    eq(sorted(s.queue_list()), sorted(ids), "queue after the upgrade")
    s.stop()   # Debian's mdb_dump (glibc) and moat (musl) do not share lock.mdb's mutexes
    usage = mdb(["mdb_dump", "-s", "usage", s.queue_dir]).decode()
    check(" 746f74616c\n 0000000000000003" in usage, "usage/total after the upgrade:\n%s" % usage)
    eq(mdb(["mdb_dump", "-s", "meta", s.queue_dir]).decode().split()[-2], "00000003", "version")


if __name__ == "__main__":
    main()
