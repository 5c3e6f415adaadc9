"""tests/image/imagelib.py -- what the image tests share: bounded commands,
`make image`, and a main() that cleans up after moatlib's cases."""

import fcntl
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "smtp"))
sys.path.insert(0, os.path.join(ROOT, "image"))
import moatlib  # noqa: E402
from moatlib import check, Failure  # noqa: E402

# A case may boot a VM under TCG, or build the image from nothing (a first
# `make image` downloads Debian's kernel and its source, ~210 MB, and builds
# the kernel's wrapper: image/rewrap.sh).
moatlib.CASE_SECONDS = 600
BUILD = os.path.abspath(moatlib.BUILD)
MOAT = os.path.abspath(moatlib.MOAT)
IMG_DIR = os.path.join(BUILD, "image")


def run(argv, timeout=120, **kw):
    """argv with no stdin, output captured, killed after timeout seconds."""
    return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout, **kw)


def need(state, key):
    """What an earlier case left in state, or this case fails saying so."""
    if key not in state:
        raise Failure("an earlier case did not get as far as %s" % key)
    return state[key]


def make_image():
    """`make image` (a no-op when build/image is up to date).  Test files
    run in parallel: a lock keeps two builds out of one work directory."""
    os.makedirs(BUILD, exist_ok=True)
    with open(os.path.join(BUILD, "image.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        r = run(["make", "-s", "image", "BUILD=" + BUILD], timeout=590, cwd=ROOT)
    check(r.returncode == 0, "make image: exit %d\n%s%s" % (
        r.returncode, r.stdout.decode()[-2000:], r.stderr.decode()[-2000:]))


def main(work, cleanup):
    """Run the cases, then cleanup() whatever happened; work (a temp dir)
    is removed only when every case passed, to keep a failure's logs."""
    status = 1
    try:
        moatlib.main()
    except SystemExit as e:
        status = e.code
    finally:
        cleanup()
    if status == 0:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(status)
