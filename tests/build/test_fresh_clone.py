#!/usr/bin/python3
"""tests/build/test_fresh_clone.py -- the README's first five minutes, from
a clean clone: `make run PORT=N` builds and serves the demo, swaks sends it
a mail, `build/moat queue list` and `build/moat status` (no -c) find the
demo, Ctrl-C stops it cleanly.

What the clone is: `git clone --shared` of this repository, checked out at
the tracked files as they are now (`git stash create`: the committed tree
plus uncommitted changes to tracked files; untracked files are not in it,
as they are not in a clone).  Nothing of build/ comes along but build/deps,
a symlink to this checkout's BearSSL and LMDB (building those from Debian's
sources is the one step not repeated: it costs minutes and is exercised by
every fresh build directory).  The binary is built by the clone's own
`make run`.

What make run installs: dpkg-query is watched (a wrapper on PATH that logs
its arguments and runs the real one), so the test sees which packages make
run asks about, and that they are the run group of .ci/deps.sh, not the
test or image tools.

It runs in a PID namespace of its own (unshare --pid --mount-proc, as
root): the commands without -c see only this demo among the servers make
test runs at once, and nothing it started outlives it.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(HERE, "..", "smtp"))
import moatlib  # noqa: E402
from moatlib import BUILD, Failure, case, check, eq, free_port, main  # noqa: E402

BUILD_SECONDS = 600   # make run builds moat from nothing (2 shared cores)


def sh(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def clean_env():
    env = dict(os.environ)
    for k in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES", "MOAT_CONF", "MOAT", "BUILD"):
        env.pop(k, None)
    return env


def inside(clone, port, logdir):
    """In the namespace: make run, swaks, queue list, status, Ctrl-C."""
    if os.path.exists("/etc/moat"):
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/etc/moat"], check=True)
    env = clean_env()
    env["PATH"] = logdir + ":" + env["PATH"]
    env["MAKEFLAGS"] = "-j2"
    res = {}
    log = os.path.join(logdir, "make-run.log")
    with open(log, "wb") as out:
        make = subprocess.Popen(["make", "run", "PORT=%d" % port], cwd=clone, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    deadline = time.monotonic() + BUILD_SECONDS
    res["served"] = False
    while time.monotonic() < deadline and make.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.settimeout(5)
                res["greeting"] = s.recv(512).decode("utf-8", "replace")
                res["served"] = True
                break
        except OSError:
            time.sleep(0.5)
    if res["served"]:
        r = sh(["swaks", "--server", "127.0.0.1:%d" % port, "--from", "alice@example.org",
                "--to", "bob@example.test"], env=env, timeout=60)
        res["swaks"] = [r.returncode, r.stdout.decode("utf-8", "replace")]
        moat = os.path.join(clone, "build", "moat")
        for name, args in (("list", ["queue", "list"]), ("status", ["status"])):
            r = sh([moat] + args, cwd=clone, env=env, timeout=30)
            res[name] = [r.returncode, r.stdout.decode(), r.stderr.decode()]
    # Ctrl-C: SIGINT to make's process group, as a terminal sends it.
    if make.poll() is None:
        os.killpg(make.pid, signal.SIGINT)
    try:
        make.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(make.pid, signal.SIGKILL)
        make.wait(10)
        res["killed"] = True
    with open(log, "rb") as f:
        res["log"] = f.read().decode("utf-8", "replace")
    print(json.dumps(res))


@case
def test_make_run_from_a_clean_clone():
    if os.geteuid() != 0:
        raise Failure("needs root (unshare --pid --mount-proc)")
    os.makedirs(os.path.join(BUILD, "t"), exist_ok=True)
    work = tempfile.mkdtemp(prefix="fresh-clone-", dir=os.path.abspath(os.path.join(BUILD, "t")))
    clone = os.path.join(work, "moat")
    logdir = os.path.join(work, "bin")
    os.makedirs(logdir)
    # The tracked files as they are now.
    r = sh(["git", "-C", ROOT, "stash", "create"])
    eq(r.returncode, 0, "git stash create (%r)" % r.stderr)
    rev = r.stdout.decode().strip() or "HEAD"
    if rev == "HEAD":
        rev = sh(["git", "-C", ROOT, "rev-parse", "HEAD"]).stdout.decode().strip()
    r = sh(["git", "clone", "-q", "--shared", "--no-checkout", ROOT, clone])
    eq(r.returncode, 0, "git clone (%r)" % r.stderr)
    r = sh(["git", "-C", clone, "checkout", "-q", "--detach", rev])
    eq(r.returncode, 0, "git checkout (%r)" % r.stderr)
    check(not os.path.exists(os.path.join(clone, "build")), "the clone has no build/")
    os.makedirs(os.path.join(clone, "build"))
    os.symlink(os.path.abspath(os.path.join(BUILD, "deps")), os.path.join(clone, "build", "deps"))
    # dpkg-query, watched.
    real = shutil.which("dpkg-query")
    check(real, "dpkg-query on PATH")
    wrapper = os.path.join(logdir, "dpkg-query")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\nprintf "%%s\\n" "$*" >>"%s/dpkg-query.log"\nexec %s "$@"\n'
                % (logdir, real))
    os.chmod(wrapper, 0o755)
    port = free_port()
    r = sh(["unshare", "--pid", "--fork", "--mount-proc", sys.executable,
            os.path.abspath(__file__), "--inside", clone, str(port), logdir],
           timeout=BUILD_SECONDS + 120)
    check(r.returncode == 0, "the namespace run: exit %d, stderr %r" % (r.returncode, r.stderr))
    res = json.loads(r.stdout.decode().splitlines()[-1])
    log = res["log"]
    check(res["served"], "make run did not serve on port %d; its output:\n%s" % (port, log[-3000:]))
    eq(res["greeting"], "220 moat.demo ESMTP moat\r\n", "the demo's greeting")
    # It built the binary itself, and said where it serves.
    check("  LD     build/moat" in log, "make run linked build/moat:\n%s" % log[-2000:])
    check("on 127.0.0.1:%d and [::1]:%d" % (port, port) in log, "the serving line:\n%s" % log)
    rc, out = res["swaks"]
    eq(rc, 0, "swaks exit status; its output:\n%s" % out)
    m = re.search(r"^<-  250 2\.0\.0 OK: queued as ([0-9a-f]{16})$", out, re.M)
    check(m, "swaks got a queue ID:\n%s" % out)
    conf = os.path.join(clone, "build", "demo", "moat.conf")
    rc, out, err = res["list"]
    eq((rc, err), (0, "moat queue: the running server's config: %s\n" % conf), "queue list")
    check(re.match(r"^%s \S+ \d+ <alice@example\.org>\n  <bob@example\.test> pending "
                   % m.group(1), out), "queue list shows the mail: %r" % out)
    rc, out, err = res["status"]
    eq(rc, 0, "status (%r)" % err)
    check(out.startswith("health ok\n") and "\naccepted 1\n" in out, "status: %r" % out)
    # Ctrl-C stopped it cleanly.
    check("killed" not in res, "make run did not stop on SIGINT")
    check(re.search(r"event=exit status=0$", log, re.M), "the server's exit:\n%s" % log[-1500:])
    # make run asked dpkg about the run group and nothing else.
    with open(os.path.join(logdir, "dpkg-query.log")) as f:
        asked = {ln.split()[-1] for ln in f if ln.strip()}
    group = lambda g: set(sh(["sh", os.path.join(ROOT, ".ci", "deps.sh"), "list", g])  # noqa
                          .stdout.decode().split())
    run, test, image = group("run"), group("test"), group("image")
    check("swaks" in run and "qemu-system-x86" in test and "mandoc" in test, "the groups")
    eq(sorted(asked), sorted(run), "the packages make run asks dpkg about")
    eq(sorted(asked & ((test | image) - run)), [], "test or image tools make run asked about")
    shutil.rmtree(work)


if __name__ == "__main__":
    if len(sys.argv) > 4 and sys.argv[1] == "--inside":
        inside(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        sys.exit(0)
    moatlib.CASE_SECONDS = BUILD_SECONDS + 180   # the build is in the case
    main()
