#!/usr/bin/python3
"""tests/proxy/bench_haproxy.py -- what a load balancer in front costs:
one moat, reached directly and through HAProxy (TCP mode, send-proxy-v2).

Not a test (it asserts nothing about speed; run.sh runs only test_*.py):
a figure for docs/scale-out.md's capacity planning, printed.

One `moat serve` (build/moat) with two listeners on 127.0.0.1: a plain
one, and a `proxy` one with `proxy-from 127.0.0.1` behind a Debian
HAProxy.  The load is smtp-source (Postfix's, which `make bench`
installs), one message per connection, one recipient, as in
tests/bench/bench.py, whose helpers it uses; delivery off, the per-client
limits and quotas lifted, as there.  For each concurrency and size, the
two paths alternate (direct, proxied, direct, proxied, ...); a run counts
only if the queue grew by the messages sent.  Printed per path: messages
per second (median of the runs), the CPU seconds per 1000 messages of
moat's processes and of HAProxy's, and the disk the queue took per
message (the blocks its files gained, `du`, over the messages queued; the
queue is never emptied, so this is what a growing queue costs).

  BUILD=build /usr/bin/python3 tests/proxy/bench_haproxy.py [--conc 1,20]
      [--size 1024,10240,102400] [--reps 2] [--n 2000]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
import bench  # noqa: E402  (tests/bench/bench.py: smtp-source, /proc)
from haproxylib import HAProxy  # noqa: E402

BUILD = os.path.abspath(os.environ.get("BUILD", "build"))
MOAT = os.path.join(BUILD, "moat")


def start_moat(top, direct, proxied):
    conf = os.path.join(top, "moat.conf")
    with open(conf, "w") as f:
        f.write("hostname moat.%s\nlisten 127.0.0.1:%d\nlisten 127.0.0.1:%d proxy\n"
                "proxy-from 127.0.0.1\ndomain %s\nqueue %s/queue\nqueue-max-bytes 64G\n"
                "queue-max-messages 10000000\nqueue-client-share 100\n"
                "max-connections-per-client 4000\ndelivery off\n"
                % (bench.DOMAIN, direct, proxied, bench.DOMAIN, top))
    log = open(os.path.join(top, "moat.log"), "wb")
    proc = subprocess.Popen([MOAT, "serve", "-c", conf], stdin=subprocess.DEVNULL, stdout=log,
                            stderr=log)
    log.close()
    if not bench.wait_220(direct):
        raise SystemExit("moat did not answer on port %d (see %s)" % (direct, top))
    return proc, conf


def queued(conf):
    out = subprocess.run([MOAT, "queue", "count", "-c", conf], capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.startswith("messages "):
            return int(line.split()[1])
    raise SystemExit("moat queue count: %s" % out.stderr.strip())


def disk_bytes(top):
    """The blocks the files under top hold, in bytes."""
    return sum(os.stat(os.path.join(d, f)).st_blocks * 512
               for d, _, files in os.walk(top) for f in files)


def one(port, conc, size, n, moat, lb, conf, top):
    """(messages/s, moat CPU s/1000, HAProxy CPU s/1000, disk bytes per
    message) or None (invalid)."""
    before, disk0 = queued(conf), disk_bytes(top)
    m0, h0 = bench.tree_cpu_ticks(moat), bench.tree_cpu_ticks(lb)
    wall, rc, msg = bench.smtp_source(port, conc, size, n, timeout=max(120, n / 2))
    time.sleep(0.2)
    m1, h1 = bench.tree_cpu_ticks(moat), bench.tree_cpu_ticks(lb)
    if rc != 0 or queued(conf) - before != n:
        print("  INVALID run on port %d: exit %d, %s" % (port, rc, msg[-200:]))
        return None
    per = 1000.0 / n / bench.CLK_TCK
    return n / wall, (m1 - m0) * per, (h1 - h0) * per, (disk_bytes(top) - disk0) / n


def cell(size, conc, args, ports, pids, conf, top):
    """One size and concurrency: a warm-up, then the two paths in turn."""
    n = args.n if conc > 1 else args.n // 4
    one(ports[0], conc, size, max(50, n // 10), pids[0], pids[1], conf, top)
    got = {"direct": [], "haproxy": []}
    for _ in range(args.reps):
        for path, port in zip(got, ports):
            r = one(port, conc, size, n, pids[0], pids[1], conf, top)
            if r:
                got[path].append(r)
    for path, rs in got.items():
        if not rs:
            print("%-7d %-5d %-8s no valid run" % (size, conc, path))
            continue
        med = [statistics.median(r[k] for r in rs) for k in range(4)]
        print("%-7d %-5d %-8s %-21s %-14.3f %-17.3f %.0f" % (
            size, conc, path, "%.0f (%s)" % (med[0], " ".join("%.0f" % r[0] for r in rs)),
            med[1], med[2], med[3]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--conc", default="1,20")
    ap.add_argument("--size", default="10240", help="message sizes in bytes, e.g. 1024,10240")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--n", type=int, default=2000, help="messages per run (concurrency 1: a quarter)")
    args = ap.parse_args()
    if shutil.which("smtp-source") is None:
        raise SystemExit("bench_haproxy: no smtp-source (make bench installs postfix for it)")
    top = os.path.join(BUILD, "bench", "haproxy")
    shutil.rmtree(top, ignore_errors=True)
    os.makedirs(top)
    direct, proxied, front = bench.free_port(), bench.free_port(), bench.free_port()
    moat, conf = start_moat(top, direct, proxied)
    lb = HAProxy("bench", "defaults\n    mode tcp\n    timeout connect 5s\n"
                 "    timeout client 1m\n    timeout server 1m\n\n"
                 "frontend smtp\n    bind 127.0.0.1:%d\n    default_backend moat\n\n"
                 "backend moat\n    server m 127.0.0.1:%d send-proxy-v2\n" % (front, proxied))
    print("bench_haproxy: %s, %d CPUs; moat %s; smtp-source, one message per connection"
          % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.cpu_count(),
             subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()))
    print("size    conc  path     msg/s (runs)          moat CPU s/1k  haproxy CPU s/1k  "
          "disk B/msg")
    try:
        for size in [int(x) for x in args.size.split(",")]:
            for conc in [int(c) for c in args.conc.split(",")]:
                cell(size, conc, args, (direct, front), (moat.pid, lb.proc.pid), conf, top)
    finally:
        lb.stop()
        moat.terminate()
        moat.wait(30)
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
