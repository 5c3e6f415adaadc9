"""tests/ops/opslib.py -- what the operations tests share: scraping the
metrics endpoint with curl, reading the scrape (and checking it with the
reference parsers of python3-prometheus-client, a Debian package), and
waiting for log lines.  Builds on tests/smtp/moatlib.py and
tests/tls/tlslib.py.
"""

import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "smtp"))
sys.path.insert(0, os.path.join(HERE, "..", "tls"))
import moatlib  # noqa: E402
from moatlib import Failure, check, eq  # noqa: E402

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"
LINE_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) moat\[(\d+)\]: (.*)$")


def curl(port, path, accept=None, method=None, host="127.0.0.1", timeout=10):
    """(status, {header: value}, body) of one request made by curl."""
    url = "http://%s:%d%s" % ("[%s]" % host if ":" in host else host, port, path)
    argv = ["curl", "-sS", "-i", "--max-time", str(timeout)]
    if accept:
        argv += ["-H", "Accept: " + accept]
    if method == "HEAD":
        argv += ["-I"]
    elif method:
        argv += ["-X", method]
    r = subprocess.run(argv + [url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout + 5)
    eq(r.returncode, 0, "curl %s exit status (stderr %r)" % (url, r.stderr[-300:]))
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    lines = head.decode("ascii").split("\r\n")
    m = re.match(r"^HTTP/1\.[01] (\d{3}) ", lines[0])
    check(m, "status line %r" % lines[0])
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(m.group(1)), headers, body.decode("utf-8")


def parse_reference(text, openmetrics):
    """Every sample as {name{labels}: value}, through prometheus_client's
    own parsers (strict for OpenMetrics: # EOF, TYPE before samples...)."""
    if openmetrics:
        from prometheus_client.openmetrics.parser import text_string_to_metric_families
    else:
        from prometheus_client.parser import text_string_to_metric_families
    out = {}
    try:
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                key = s.name + "".join("{%s=%s}" % kv for kv in sorted(s.labels.items()))
                check(key not in out, "sample %s twice" % key)
                out[key] = s.value
    except ValueError as e:
        raise Failure("the reference parser refuses the scrape: %s\n%s" % (e, text))
    return out


def scrape(port, openmetrics=True):
    """The samples of GET /metrics, checked by the reference parser and
    by the content type."""
    status, headers, body = curl(port, "/metrics",
                                 accept="application/openmetrics-text; version=1.0.0"
                                 if openmetrics else None)
    eq(status, 200, "GET /metrics status")
    eq(headers.get("content-type"), OPENMETRICS if openmetrics else PROMETHEUS, "content type")
    eq(int(headers.get("content-length", "-1")), len(body.encode()), "content length")
    if openmetrics:
        check(body.endswith("# EOF\n"), "OpenMetrics text must end with # EOF")
    return parse_reference(body, openmetrics)


def log_lines(s):
    """The server's log lines: [(event-or-level word, {key: value})]."""
    out = []
    for ln in s.stderr(tail=1 << 22).splitlines():
        m = LINE_RE.match(ln)
        if not m:
            continue
        out.append((m.group(3), kv(m.group(3))))
    return out


def kv(text):
    """key=value pairs of a log line; a quoted value keeps its spaces."""
    return dict(re.findall(r'([a-z0-9_-]+)=("(?:[^"\\]|\\.)*"|\S*)', text))


def events(s, name):
    return [d for _, d in log_lines(s) if d.get("event") == name]


def wait_log(s, pattern, n=1, seconds=10):
    """Wait until pattern (a regex) matches n lines of the log."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + seconds
    while True:
        got = [ln for ln, _ in log_lines(s) if rx.search(ln)]
        if len(got) >= n:
            return got
        if time.monotonic() > deadline:
            raise Failure("want %d log line(s) matching %r, got %d; log:\n%s"
                          % (n, pattern, len(got), s.stderr()))
        time.sleep(0.05)
