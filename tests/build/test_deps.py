#!/usr/bin/python3
"""tests/build/test_deps.py -- .ci/deps.sh: its package groups nest as the
Makefile's targets need them, and it waits for the dpkg lock (bounded),
saying who holds it, and fails with what to do.

The lock is a real POSIX lock (fcntl, as apt takes it) on a file of our
own (DPKG_LOCK), so the machine's apt is never held up; deps.sh finds the
holder in /proc/locks as it does for /var/lib/dpkg/lock-frontend.
"""

import fcntl
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(HERE, "..", "smtp"))
from moatlib import BUILD, case, check, eq, main  # noqa: E402

DEPS = os.path.join(ROOT, ".ci", "deps.sh")


def deps(*args, env=None, timeout=60):
    e = dict(os.environ)
    e.update(env or {})
    r = subprocess.run(["sh", DEPS] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=e, timeout=timeout)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def group(g):
    rc, out, err = deps("list", g)
    eq((rc, err), (0, ""), "deps.sh list %s" % g)
    pkgs = out.split()
    eq(len(pkgs), len(set(pkgs)), "each package once in %s" % g)
    return set(pkgs)


@case
def test_groups_nest():
    build, run, image, test = group("build"), group("run"), group("image"), group("test")
    check("musl-tools" in build and "swaks" in run and "syslinux" in image, "the groups")
    eq(sorted(build - run), [], "build tools make run lacks")
    eq(sorted(run - build), ["swaks"], "make run's tools beyond the build's")
    eq(sorted(build - image), [], "build tools make image lacks")
    eq(sorted((run | image) - test), [], "tools make test lacks")
    for p in ("qemu-system-x86", "ovmf", "clang", "mandoc", "python3-aiosmtpd", "git"):
        check(p in test and p not in run, "%s: a test tool, not make run's" % p)
    rc, _, err = deps("list", "nosuch")
    eq((rc, err), (100, "deps: no group 'nosuch' (build, run, image, test)\n"), "an unknown group")


def lock_file():
    os.makedirs(os.path.join(BUILD, "t"), exist_ok=True)
    fd, path = tempfile.mkstemp(prefix="dpkg-lock-", dir=os.path.join(BUILD, "t"))
    os.close(fd)
    return path


def me():
    with open("/proc/self/comm") as f:
        return "%d (%s)" % (os.getpid(), f.read().strip())


@case
def test_lock_free():
    path = lock_file()
    eq(deps("waitlock", env={"DPKG_LOCK": path, "APT_LOCK_WAIT": "2"}), (0, "", ""), "no holder")
    os.unlink(path)


@case
def test_lock_held_too_long():
    path = lock_file()
    with open(path, "w") as f:
        fcntl.lockf(f, fcntl.LOCK_EX)
        rc, out, err = deps("waitlock", env={"DPKG_LOCK": path, "APT_LOCK_WAIT": "2"})
    eq((rc, out), (111, ""), "exit status once the wait is over")
    eq(err, "deps: the dpkg lock %s is held by %s: another apt is running (on a fresh machine, "
            "often its first-boot updates); waiting up to 2s\n"
            "deps: the dpkg lock is still held by %s after 2s; let it finish (or stop it), then "
            "run make again (APT_LOCK_WAIT=SECONDS to wait longer)\n" % (path, me(), me()),
       "what it says")
    os.unlink(path)


@case
def test_lock_released_meanwhile():
    path = lock_file()
    f = open(path, "w")
    fcntl.lockf(f, fcntl.LOCK_EX)
    release = threading.Timer(1.5, f.close)   # closing the file drops the lock
    release.start()
    start = time.monotonic()
    rc, out, err = deps("waitlock", env={"DPKG_LOCK": path, "APT_LOCK_WAIT": "30"})
    release.join()
    eq((rc, out), (0, ""), "exit status once the lock is free")
    lines = err.splitlines()
    eq(len(lines), 2, "two lines: %r" % err)
    eq(lines[0], "deps: the dpkg lock %s is held by %s: another apt is running (on a fresh "
                 "machine, often its first-boot updates); waiting up to 30s" % (path, me()))
    check(re.match(r"^deps: the dpkg lock is free after [1-9]\d*s$", lines[1]), lines[1])
    check(time.monotonic() - start < 30, "it went on once the lock was free")
    os.unlink(path)


if __name__ == "__main__":
    main()
