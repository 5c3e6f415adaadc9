#!/usr/bin/python3
"""tests/docs/test_docs.py -- the documentation as shipped and as read:
the man pages pass mandoc -Tlint (make man-check), make install puts the
binary and both pages under DESTDIR/PREFIX, the commands docs/development.md
gives for one unit test and one fuzz target run as written, and every
relative link in README.md and docs/*.md leads to a file that exists.

(That every directive is documented is tests/unit/test_confdoc.c; every
command, tests/ops/test_commands.py.)
"""

import os
import re
import stat
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(HERE, "..", "smtp"))
from moatlib import BUILD, case, check, eq, main  # noqa: E402

BUILD_ABS = os.path.abspath(BUILD)


def env():
    e = dict(os.environ)
    for k in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES"):
        e.pop(k, None)
    return e


def make(*args, timeout=300):
    r = subprocess.run(["make", "--no-print-directory", "BUILD=" + BUILD_ABS] + list(args),
                       cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", "replace")


@case
def test_man_lint():
    rc, out = make("man-check")
    eq((rc, out), (0, "man-check: mandoc -Tlint: clean\n"), "make man-check")


@case
def test_install():
    for prefix, args in (("/usr/local", []), ("/usr", ["PREFIX=/usr"])):
        dest = tempfile.mkdtemp(prefix="install-", dir=os.path.join(BUILD_ABS, "t"))
        rc, out = make("install", "DESTDIR=" + dest, *args)
        eq(rc, 0, "make install %s: %s" % (" ".join(args), out))
        files = {
            prefix + "/sbin/moat": (os.path.join(BUILD_ABS, "moat"), 0o755),
            prefix + "/share/man/man8/moat.8": (os.path.join(ROOT, "docs", "moat.8"), 0o644),
            prefix + "/share/man/man5/moat.conf.5": (os.path.join(ROOT, "docs", "moat.conf.5"),
                                                     0o644),
        }
        found = set()
        for d, _, names in os.walk(dest):
            for n in names:
                found.add(os.path.join(d, n)[len(dest):])
        eq(sorted(found), sorted(files), "what make install %s wrote" % " ".join(args))
        for path, (src, mode) in files.items():
            with open(dest + path, "rb") as a, open(src, "rb") as b:
                check(a.read() == b.read(), "%s is %s" % (path, src))
            eq(stat.S_IMODE(os.stat(dest + path).st_mode), mode, "mode of %s" % path)
        r = subprocess.run([dest + prefix + "/sbin/moat", "--version"], stdout=subprocess.PIPE)
        eq(r.returncode, 0, "the installed binary runs")
        r = subprocess.run(["mandoc", "-Thtml", dest + prefix + "/share/man/man5/moat.conf.5"],
                           stdout=subprocess.PIPE)
        check(r.returncode == 0 and b"max-session-time" in r.stdout, "moat.conf.5 renders")
        subprocess.run(["rm", "-rf", dest])


def blocks_under(heading):
    """The shell lines of the ```sh blocks in docs/development.md's section
    `heading` (up to the next heading of any level)."""
    with open(os.path.join(ROOT, "docs", "development.md")) as f:
        text = f.read()
    m = re.search(r"^#+ %s\n(.*?)(?=^#)" % re.escape(heading), text, re.M | re.S)
    check(m, "docs/development.md has a section %r" % heading)
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", m.group(1), re.S):
        lines += [ln for ln in block.splitlines() if ln.strip()]
    check(lines, "commands under %r" % heading)
    return lines


def run_doc_lines(lines, fuzz_seconds=None):
    for ln in lines:
        cmd = ln.replace("nice make ", "nice make --no-print-directory BUILD=%s " % BUILD_ABS)
        cmd = re.sub(r"(?<![\w/])build/", BUILD_ABS + "/", cmd)
        if fuzz_seconds is not None:
            cmd = cmd.replace("-max_total_time=60", "-max_total_time=%d" % fuzz_seconds)
        r = subprocess.run(["sh", "-c", cmd], cwd=ROOT, env=env(), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=600)
        eq(r.returncode, 0, "%s: %s" % (ln, r.stdout.decode("utf-8", "replace")[-2000:]))
        yield ln, r.stdout.decode("utf-8", "replace")


@case
def test_development_one_unit_test():
    outs = list(run_doc_lines(blocks_under("One unit test")))
    eq(len(outs), 2, "two commands (musl, ASan)")
    for ln, out in outs:
        check(re.search(r"^PASS: ", out, re.M) and not re.search(r"^FAIL: ", out, re.M),
              "%s ran the tests: %s" % (ln, out[-500:]))


@case
def test_development_one_fuzz_target():
    outs = list(run_doc_lines(blocks_under("Fuzzing"), fuzz_seconds=2))
    check(re.search(r"Done \d+ runs in \d+ second", outs[-1][1]),
          "the fuzzer ran and ended: %s" % outs[-1][1][-800:])


@case
def test_links_lead_somewhere():
    pages = [os.path.join(ROOT, "README.md")] + [
        os.path.join(ROOT, "docs", n) for n in sorted(os.listdir(os.path.join(ROOT, "docs")))
        if n.endswith(".md")]
    bad = []
    for page in pages:
        with open(page) as f:
            text = f.read()
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if re.match(r"^[a-z]+:", target):
                continue
            if not os.path.exists(os.path.join(os.path.dirname(page), target)):
                bad.append("%s: %s" % (os.path.relpath(page, ROOT), target))
    eq(bad, [], "links to nothing")


if __name__ == "__main__":
    main()
