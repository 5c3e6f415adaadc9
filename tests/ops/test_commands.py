#!/usr/bin/python3
"""tests/ops/test_commands.py -- the admin commands as an operator meets
them: the version, a usage text that lists every command the code
dispatches (and docs/operations.md and the man page list the same), the
config found without -c (MOAT_CONF, the one running server, or a message
that says what to pass), and complete sentences for an empty queue and
for flush, retry, hold, release and delete with and without a server.

Finding the running server reads /proc, which sees every process of the
machine (and make test runs many servers at once): those cases run in a
PID namespace of their own (unshare --pid --mount-proc, as root), where
the servers started are the only ones, and with /etc/moat hidden under an
empty tmpfs so that the machine's own config does not answer first.

ASAN_OK
"""

import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(HERE, "..", "smtp"))
from moatlib import (BUILD, MOAT, Failure, Server, case, check, eq, free_port,  # noqa: E402
                     main, queued_id)

ID_RE = r"[0-9a-f]{16}"
OFFLINE = " (no server running: done on the queue directly)"


def run(*args, env=None, cwd=None, timeout=30):
    e = dict(os.environ)
    e.pop("MOAT_CONF", None)
    e.update(env or {})
    r = subprocess.run([os.path.abspath(MOAT)] + list(args), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e, cwd=cwd,
                       timeout=timeout)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


@case
def test_version():
    outs = [run(a) for a in ("--version", "-V", "version")]
    check(re.match(r"^moat \d+\.\d+(\.\d+)?\n$", outs[0][1]), "version line %r" % outs[0][1])
    for o in outs:
        eq(o, (0, outs[0][1], ""), "every spelling prints the same")


def usage_commands(text):
    """The commands a usage text lists: "moat queue count", ..."""
    cmds = set()
    for ln in text.splitlines():
        m = re.match(r"^(?:usage:)?\s+moat ([a-z-]+)(?: ([a-z]+(?:\|[a-z]+)*))?", ln)
        if not m:
            continue
        if m.group(1) == "queue":
            for sub in m.group(2).split("|"):
                cmds.add("queue " + sub)
        else:
            cmds.add(m.group(1))
    return cmds


def dispatched_commands():
    """What the code takes: strcmp(cmd, "X") in mta/main.c, strcmp(argv[0],
    "X") in mta/cmd/queue_cmd.c."""
    with open(os.path.join(ROOT, "mta", "main.c")) as f:
        main_c = f.read()
    with open(os.path.join(ROOT, "mta", "cmd", "queue_cmd.c")) as f:
        queue_c = f.read()
    cmds = set(re.findall(r'strcmp\((?:cmd|argv\[1\]), "([a-z][a-z-]*)"\)', main_c))
    cmds.discard("help")
    cmds.discard("queue")
    cmds |= {"queue " + v for v in re.findall(r'strcmp\(argv\[0\], "([a-z]+)"\)', queue_c)}
    return cmds


@case
def test_usage_lists_every_command():
    rc, out, err = run("help")
    eq((rc, err), (0, ""), "moat help")
    listed = usage_commands(out)
    code = dispatched_commands()
    check("queue count" in code and "init" in code and "relay-test" in code,
          "the code's commands read from the source: %r" % sorted(code))
    eq(sorted(code - listed), [], "commands the usage text leaves out")
    # No arguments, or an unknown command: the same text, on stderr, 100.
    eq(run(), (100, "", out), "moat with no command")
    eq(run("frobnicate"), (100, "", out), "an unknown command")
    # The operations page and the man page list every command too.
    with open(os.path.join(ROOT, "docs", "operations.md")) as f:
        ops = f.read()
    documented = set()
    for m in re.finditer(r"^\| `moat ([a-z-]+)(?: ([a-z]+))?", ops, re.M):
        documented.add(m.group(1) + (" " + m.group(2) if m.group(1) == "queue" else ""))
    eq(sorted(code - documented), [], "commands docs/operations.md leaves out")
    with open(os.path.join(ROOT, "docs", "moat.8")) as f:
        man = f.read()
    in_man = set()
    for m in re.finditer(r"^\.It Cm ([a-z-]+)(?: ([a-z]+))?", man, re.M):
        in_man.add(m.group(1) + (" " + m.group(2) if m.group(1) == "queue" else ""))
    eq(sorted(code - in_man), [], "commands docs/moat.8 leaves out")


@case
def test_conf_arg_needs_file():
    eq(run("status", "-c")[:2], (100, ""), "-c with no FILE")


@case
def test_moat_conf_env():
    s = Server("env")
    rc, out, err = run("status", env={"MOAT_CONF": s.conf_path})
    eq((rc, err), (0, ""), "moat status with MOAT_CONF")
    check(out.startswith("health ok\n"), "status: %r" % out)
    rc, out, err = run("queue", "list", env={"MOAT_CONF": s.conf_path})
    eq((rc, out, err), (0, "Mail queue is empty\n", ""), "an empty queue")
    # -c wins over MOAT_CONF.
    rc, out, err = run("check", "-c", s.conf_path, env={"MOAT_CONF": "/nonexistent"})
    eq(rc, 0, "check -c with a wrong MOAT_CONF (stderr %r)" % err)
    rc, out, err = run("check", env={"MOAT_CONF": "/nonexistent/moat.conf"})
    eq((rc, err), (1, "moat: /nonexistent/moat.conf: No such file or directory\n"),
       "check with a missing MOAT_CONF")
    s.stop()


def attempts(s):
    """{id: attempts of its one recipient} from `moat queue list`."""
    rc, out, err = run("queue", "list", "-c", s.conf_path)
    eq((rc, err), (0, ""), "moat queue list")
    got, cur = {}, None
    for ln in out.splitlines():
        if re.match(ID_RE + " ", ln):
            cur = ln.split()[0]
        elif cur and "attempts=" in ln:
            got[cur] = int(re.search(r"attempts=(\d+)", ln).group(1))
    return got


@case
def test_queue_commands_sentences():
    # Delivery to a port nobody listens on, retried after an hour: each
    # message waits after its first attempt, so flush has some to make due.
    s = Server("sentences", {"delivery": "on", "dns-server": "127.0.0.1:1",
                             "route": "example.test [127.0.0.1]:%d" % free_port(),
                             "retry-min": "1h", "retry-max": "1h", "timeout-connect": "2s"})
    with s.connect() as c:
        a = queued_id(c.mail_tx("a@example.org", ["bob@example.test"], "Subject: a\r\n\r\na\r\n"))
        b = queued_id(c.mail_tx("a@example.org", ["bob@example.test"], "Subject: b\r\n\r\nb\r\n",
                                ehlo=False))
    deadline = time.monotonic() + 30
    while attempts(s) != {a: 1, b: 1}:
        check(time.monotonic() < deadline, "first attempts: %r" % attempts(s))
        time.sleep(0.2)
    missing = "00000000000000aa"
    q = lambda *a: run("queue", *a, "-c", s.conf_path)   # noqa: E731
    want_online = [
        (("hold", a), (0, "%s held\n" % a, "")),
        (("retry", a), (0, "%s is held: release it first\n" % a, "")),
        (("release", a), (0, "%s released\n" % a, "")),
        (("flush",), (0, "2 waiting messages due now\n", "")),
        (("retry", a), (0, "%s due now\n" % a, "")),
        (("delete", a), (0, "%s deleted\n" % a, "")),
        (("delete", missing), (1, "", "moat queue: %s: no such message\n" % missing)),
        (("retry", missing.upper()), (1, "", "moat queue: %s: no such message\n" % missing)),
    ]
    for args, want in want_online:
        eq(q(*args), want, "moat queue %s with the server running" % " ".join(args))
    while attempts(s) != {b: 2}:   # b's second attempt is over: it waits again
        check(time.monotonic() < deadline, "second attempt: %r" % attempts(s))
        time.sleep(0.2)
    s.stop()
    # The same sentences without a server, with the count and the ID, and
    # saying how it was done.
    want_offline = [
        (("flush",), (0, "1 waiting message due now%s\n" % OFFLINE, "")),
        (("hold", b), (0, "%s held%s\n" % (b, OFFLINE), "")),
        (("retry", b), (0, "%s is held: release it first%s\n" % (b, OFFLINE), "")),
        (("release", b), (0, "%s released%s\n" % (b, OFFLINE), "")),
        (("retry", b), (0, "%s due now%s\n" % (b, OFFLINE), "")),
        (("delete", b), (0, "%s deleted%s\n" % (b, OFFLINE), "")),
        (("delete", missing), (1, "", "moat queue: %s: no such message\n" % missing)),
        (("flush",), (0, "0 waiting messages due now%s\n" % OFFLINE, "")),
        (("list",), (0, "Mail queue is empty\n", "")),
    ]
    for args, want in want_offline:
        eq(q(*args), want, "moat queue %s with no server" % " ".join(args))
    rc, out, err = run("status", "-c", s.conf_path)
    eq((rc, out, err), (111, "", "moat status: no server is running with the queue %s (nothing "
                        "answers on %s/control: No such file or directory)\n"
                        % (s.queue_dir, s.queue_dir)), "moat status with no server")


# ------------------------------------------------- the running server's config

def inside():
    """Run in the PID namespace: start servers, run commands without -c,
    print what came of each as JSON lines for the outer test to judge."""
    if os.path.exists("/etc/moat"):
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/etc/moat"], check=True)
    base = os.path.abspath(sys.argv[2])
    results = {}

    def serve(name):
        d = os.path.join(base, name)
        os.makedirs(d)
        port = free_port()
        with open(os.path.join(d, "moat.conf"), "w") as f:
            f.write("hostname mx.test\nlisten 127.0.0.1:%d\ndomain example.test\n"
                    "queue %s/queue\ndelivery off\n" % (port, d))
        # A relative -c, from the server's own directory.
        p = subprocess.Popen([os.path.abspath(MOAT), "serve", "-c", "moat.conf"], cwd=d,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(d, "stderr.log"), "wb"))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if run("status", "-c", os.path.join(d, "moat.conf"))[0] == 0:
                return p
            time.sleep(0.1)
        raise SystemExit("server %s did not start" % name)

    def rec(key, *args):
        results[key] = run(*args, cwd="/")

    rec("none-check", "check")
    rec("none-status", "status")
    one = serve("one")
    rec("one-status", "status")
    rec("one-list", "queue", "list")
    rec("one-reload", "reload")
    two = serve("two")
    rec("two-status", "status")
    for p in (one, two):
        p.terminate()
        p.wait(20)
    rec("gone-status", "status")
    print(json.dumps({"base": base, "results": results}))


@case
def test_finds_the_running_server():
    if os.geteuid() != 0:
        raise Failure("needs root (unshare --pid --mount-proc, a tmpfs on /etc/moat)")
    base = os.path.abspath(os.path.join(BUILD, "t", "commands-%d" % os.getpid()))
    r = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable,
                        os.path.abspath(__file__), "--inside", base],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    check(r.returncode == 0, "the namespace run: exit %d, stderr %r" % (r.returncode, r.stderr))
    res = json.loads(r.stdout.decode().splitlines()[-1])["results"]
    one, two = os.path.join(base, "one", "moat.conf"), os.path.join(base, "two", "moat.conf")
    eq(res["none-check"], [1, "", "moat check: /etc/moat/moat.conf does not exist; pass -c "
                                  "FILE (or set MOAT_CONF=FILE)\n"], "check with no config")
    eq(res["none-status"], [1, "", "moat status: no config: /etc/moat/moat.conf does not exist "
                                   "and no moat serve is running; pass -c FILE (or set "
                                   "MOAT_CONF=FILE)\n"], "status with no server")
    rc, out, err = res["one-status"]
    eq((rc, err), (0, "moat status: the running server's config: %s\n" % one), "one server")
    check(out.startswith("health ok\n"), "its status: %r" % out)
    eq(res["one-list"], [0, "Mail queue is empty\n",
                         "moat queue: the running server's config: %s\n" % one], "queue list")
    eq(res["one-reload"][0], 0, "reload (%r)" % res["one-reload"])
    rc, out, err = res["two-status"]
    eq((rc, out), (1, ""), "two servers")
    check(err in ("moat status: two moat serve are running (%s, %s); pass -c with the config of "
                  "the one you mean (or set MOAT_CONF=FILE)\n" % pair
                  for pair in ((one, two), (two, one))), "two servers: %r" % err)
    eq(res["gone-status"], res["none-status"], "status once both stopped")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--inside":
        inside()
        sys.exit(0)
    main()
