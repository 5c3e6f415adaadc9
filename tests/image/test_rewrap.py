#!/usr/bin/python3
"""tests/image/test_rewrap.py -- the kernel the image boots is Debian's.

image/rewrap.sh puts the kernel of Debian's linux-image package in a
wrapper built from linux-source of the same version, unpacking with LZ4
instead of XZ (docs/appliance.md "Boot time").  Checked here without
rewrap.sh's own code: this file reads both bzImages' boot protocol headers
itself, unpacks Debian's payload with Python's lzma and the image's with the
lz4 tool, and compares the bytes and the version strings.  The wrapper is
built a second time into a directory of its own: the same bytes.  And
rewrap.sh is given what it must refuse (not a bzImage, a payload cut
short, a size trailer that lies, a gzip payload, a source package that is
not one): each a clear exit and reason, no wrapper written.
"""

import hashlib
import lzma
import os
import re
import shutil
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from imagelib import BUILD, IMG_DIR, ROOT, make_image, need, run  # noqa: E402
import imagelib  # noqa: E402
from moatlib import case, check, eq  # noqa: E402

REWRAP = os.path.join(ROOT, "image", "rewrap.sh")
MTOOLS = dict(os.environ, MTOOLS_SKIP_CHECK="1")
os.makedirs(os.path.join(BUILD, "t"), exist_ok=True)
WORK = os.path.abspath(tempfile.mkdtemp(prefix="rewrap-", dir=os.path.join(BUILD, "t")))
state = {}


def bzimage(data):
    """The boot protocol header's fields this test needs (Documentation/
    x86/boot.rst): version, the version string, the payload's bytes."""
    check(data[0x202:0x206] == b"HdrS", "not a bzImage")
    version = struct.unpack_from("<H", data, 0x206)[0]
    setup_sects = data[0x1f1] or 4
    off, length = struct.unpack_from("<II", data, 0x248)
    start = (setup_sects + 1) * 512 + off
    kv = struct.unpack_from("<H", data, 0x20e)[0] + 0x200
    return {"version": version, "kernel_version": data[kv:data.index(b"\0", kv)].decode(),
            "payload": data[start:start + length]}


def manifest():
    with open(os.path.join(IMG_DIR, "MANIFEST")) as f:
        return f.read()


@case
def test_manifest_names_the_wrapper():
    make_image()
    m = manifest()
    kpkg = re.search(r"^kernel-package \S+ (\S+)$", m, re.M)
    kver = re.search(r"^kernel (\S+) ", m, re.M)
    wrap = re.search(r"^kernel-wrapper (.*)$", m, re.M)
    check(kpkg and kver and wrap, "MANIFEST lacks a kernel line:\n%s" % m)
    major = ".".join(kver.group(1).split(".")[:2])
    eq(wrap.group(1), "lz4 linux-source-%s %s" % (major, kpkg.group(1)), "kernel-wrapper")
    state["kver"] = kver.group(1)


@case
def test_the_booted_kernel_is_debians():
    kver = need(state, "kver")
    debian_path = os.path.join(BUILD, "kernel", "root", "boot", "vmlinuz-" + kver)
    with open(debian_path, "rb") as f:
        debian = bzimage(f.read())
    # Slot a of the boot partition: what syslinux and systemd-boot load.
    r = run(["mtype", "-i", os.path.join(IMG_DIR, "moat-boot.img"), "::/moat/a/linux"], env=MTOOLS)
    eq(r.returncode, 0, "mtype: %r" % r.stderr)
    booted = bzimage(r.stdout)
    eq(booted["kernel_version"], debian["kernel_version"], "version string")
    eq(booted["version"], debian["version"], "boot protocol version")
    # Debian's: XZ, then the unpacked size (u32).
    check(debian["payload"][:6] == b"\xfd7zXZ\x00", "Debian's payload is not XZ")
    want = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(debian["payload"][:-4])
    eq(len(want), struct.unpack("<I", debian["payload"][-4:])[0], "Debian's unpacked size")
    # The image's: LZ4's legacy frame (magic 0x184c2102), then the size.
    eq(booted["payload"][:4], b"\x02\x21\x4c\x18", "the image's payload magic (LZ4 legacy)")
    lz = os.path.join(WORK, "payload.lz4")
    with open(lz, "wb") as f:
        f.write(booted["payload"][:-4])
    r = run(["lz4", "-dc", lz], timeout=60)
    eq(r.returncode, 0, "lz4 -dc: %r" % r.stderr)
    eq(len(r.stdout), len(want), "unpacked sizes")
    check(r.stdout == want, "the image's kernel differs from Debian's")
    eq(struct.unpack("<I", booted["payload"][-4:])[0], len(want), "the image's size trailer")
    state["debian"] = debian_path


@case
def test_wrapper_builds_the_same_bytes_again():
    debian = need(state, "debian")
    kver = state["kver"]
    m = manifest()
    ver = re.search(r"^kernel-package \S+ (\S+)$", m, re.M).group(1)
    src = [os.path.join(BUILD, "kernel", f) for f in os.listdir(os.path.join(BUILD, "kernel"))
           if f.startswith("linux-source-") and f.endswith(".deb")]
    eq(len(src), 1, "linux-source packages in build/kernel: %s" % src)
    check(("_%s_" % ver) in src[0], "%s is not of version %s" % (src[0], ver))
    out = os.path.join(WORK, "vmlinuz")
    r = run(["sh", REWRAP, debian, os.path.join(BUILD, "kernel", "root", "boot", "config-" + kver),
             src[0], out, os.path.join(WORK, "w")], timeout=540)
    eq(r.returncode, 0, "rewrap.sh: %s" % r.stderr.decode()[-2000:])
    r = run(["mtype", "-i", os.path.join(IMG_DIR, "moat-boot.img"), "::/moat/a/linux"], env=MTOOLS)
    with open(out, "rb") as f:
        again = f.read()
    eq(hashlib.sha256(again).hexdigest(), hashlib.sha256(r.stdout).hexdigest(),
       "sha256 of a second wrapper build and of the image's kernel")
    check(not os.path.exists(os.path.join(WORK, "w")), "rewrap.sh left its work directory")


def refused(name, data, status, reason, srcdeb=None):
    """rewrap.sh on a VMLINUZ of these bytes: exit status and a line with
    reason on stderr, and no OUT."""
    path = os.path.join(WORK, name)
    with open(path, "wb") as f:
        f.write(data)
    if srcdeb is None:
        srcdeb = os.path.join(WORK, "not-a.deb")
        with open(srcdeb, "wb") as f:
            f.write(b"!<arch>\nnot a package\n")
    out = os.path.join(WORK, name + ".out")
    r = run(["sh", REWRAP, path, "/dev/null", srcdeb, out, os.path.join(WORK, name + ".w")], timeout=120)
    eq(r.returncode, status, "%s: exit status (stderr %r)" % (name, r.stderr[-500:]))
    check(reason.encode() in r.stderr, "%s: %r not in %r" % (name, reason, r.stderr[-500:]))
    check(not os.path.exists(out), "%s: a wrapper was written" % name)


@case
def test_rewrap_refuses_what_it_must():
    with open(need(state, "debian"), "rb") as f:
        good = f.read()
    setup = ((good[0x1f1] or 4) + 1) * 512
    off, length = struct.unpack_from("<II", good, 0x248)
    start = setup + off
    refused("empty", b"", 1, "not a bzImage")
    refused("text", b"MZ this is not a kernel\n" * 100, 1, "not a bzImage")
    # The header and the first megabyte only: the XZ stream ends early.
    refused("truncated", good[:start + (1 << 20)], 1, "does not unpack")
    # A flipped byte in the middle of the compressed data.
    bad = bytearray(good)
    bad[start + length // 2] ^= 0xff
    refused("corrupt", bytes(bad), 1, "does not unpack")
    # The size the build appended says one byte more.
    bad = bytearray(good)
    n = struct.unpack_from("<I", bad, start + length - 4)[0]
    struct.pack_into("<I", bad, start + length - 4, n + 1)
    refused("size-lies", bytes(bad), 1, "the header says %d" % (n + 1))
    # payload_length pointing past the end of the file.
    bad = bytearray(good)
    struct.pack_into("<I", bad, 0x24c, len(good))
    refused("length-past-end", bytes(bad), 1, "does not unpack")
    # Another compression (gzip's magic): nothing to gain, exit 2.
    bad = bytearray(good)
    bad[start:start + 3] = b"\x1f\x8b\x08"
    refused("gzip", bytes(bad), 2, "not XZ")
    # A good kernel, a source package that is not one.
    refused("no-source", good, 1, "no source tarball")


def cleanup():
    shutil.rmtree(os.path.join(WORK, "w"), ignore_errors=True)


if __name__ == "__main__":
    imagelib.main(WORK, cleanup)
