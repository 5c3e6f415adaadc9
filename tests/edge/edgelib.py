"""tests/edge/edgelib.py -- what tests/edge/test_*.py share: the server's
log lines (each edge decision is one) and the counters it logs at exit.
Every wait is bounded."""

import re
import time

from moatlib import check, eq


def log_text(s):
    with open(s.log_path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def wait_log(s, pattern, count=1, seconds=5):
    """The server's log lines matching pattern, once there are count."""
    deadline = time.monotonic() + seconds
    rx = re.compile(pattern)
    while True:
        got = [ln for ln in log_text(s).splitlines() if rx.search(ln)]
        if len(got) >= count or time.monotonic() > deadline:
            check(len(got) >= count, "want %d log lines like %r, got %r" % (count, pattern, got))
            return got
        time.sleep(0.05)


def check_counters(s, want):
    """Stop s; its event=counters line must hold want (name -> number)."""
    s.stop()
    line = wait_log(s, r"event=counters ", 1, 1)[-1]
    got = {k: int(v) for k, v in re.findall(r" ([a-z-]+)=(\d+)", line)}
    for k, v in want.items():
        eq(got.get(k), v, "counter %s (all: %r)" % (k, got))
