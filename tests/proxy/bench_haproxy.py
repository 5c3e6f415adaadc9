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
moat's processes and of HAProxy's.

  BUILD=build /usr/bin/python3 tests/proxy/bench_haproxy.py [--conc 1,20] [--size 10240]
                                                            [--reps 2] [--n 2000]
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


def one(port, conc, size, n, moat, lb, conf):
    """(messages/s, moat CPU s/1000, HAProxy CPU s/1000) or None (invalid)."""
    before = queued(conf)
    m0, h0 = bench.tree_cpu_ticks(moat), bench.tree_cpu_ticks(lb)
    wall, rc, msg = bench.smtp_source(port, conc, size, n, timeout=max(120, n / 2))
    time.sleep(0.2)
    m1, h1 = bench.tree_cpu_ticks(moat), bench.tree_cpu_ticks(lb)
    if rc != 0 or queued(conf) - before != n:
        print("  INVALID run on port %d: exit %d, %s" % (port, rc, msg[-200:]))
        return None
    per = 1000.0 / n / bench.CLK_TCK
    return n / wall, (m1 - m0) * per, (h1 - h0) * per


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--conc", default="1,20")
    ap.add_argument("--size", type=int, default=10240)
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
    print("bench_haproxy: %s, %d CPUs; moat %s; smtp-source, one message per connection, %d bytes"
          % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.cpu_count(),
             subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip(), args.size))
    print("conc  path      msg/s (runs)            moat CPU s/1k  haproxy CPU s/1k")
    try:
        for conc in [int(c) for c in args.conc.split(",")]:
            n = args.n if conc > 1 else args.n // 4
            one(direct, conc, args.size, max(50, n // 10), moat.pid, lb.proc.pid, conf)  # warm-up
            got = {"direct": [], "haproxy": []}
            for _ in range(args.reps):
                for path, port in (("direct", direct), ("haproxy", front)):
                    r = one(port, conc, args.size, n, moat.pid, lb.proc.pid, conf)
                    if r:
                        got[path].append(r)
            for path, rs in got.items():
                if not rs:
                    print("%-5d %-9s no valid run" % (conc, path))
                    continue
                print("%-5d %-9s %-23s %-14.3f %.3f" % (
                    conc, path, "%.0f (%s)" % (statistics.median(r[0] for r in rs),
                                               " ".join("%.0f" % r[0] for r in rs)),
                    statistics.median(r[1] for r in rs), statistics.median(r[2] for r in rs)))
    finally:
        lb.stop()
        moat.terminate()
        moat.wait(30)
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
