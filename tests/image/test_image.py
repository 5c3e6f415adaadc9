#!/usr/bin/python3
"""tests/image/test_image.py -- the appliance, built and booted for real.

`make image` (cached when its inputs are unchanged), then the disk is
checked (GPT, boot partition, an initramfs with nothing but moat and
kernel modules, reproducible bytes) and booted under qemu with software
emulation (TCG; never KVM here):
  - with no config: the console says which file to create, nothing
    answers on port 25 (the network comes from the kernel command line),
    Ctrl-Alt-Del reboots cleanly;
  - with a server that cannot start: the init restarts it, backing off;
  - configured (image/data.sh put, no mounts; the TLS key on the data
    partition too), under SeaBIOS: the real 220 through a host port
    forward, mail sent with swaks (one over STARTTLS); the appliance
    delivers one to a second moat on this machine (through a qemu guest
    forward: the network is restrict=on) and is told 421 by the next hop
    of the others, which stay queued; then the plug is pulled (SIGKILL);
  - the same disk again under OVMF (UEFI): the queue came through the
    crash (console), more mail, then the ACPI power button: a clean stop;
  - the data partition read offline (debugfs, no mount): `moat queue list`
    on the copy shows every message still queued, bodies and delivery
    state (one attempt, the 421) intact, and not the delivered one.
Every wait is bounded; qemu is killed at the end whatever happened.
"""

import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from imagelib import BUILD, IMG_DIR, MOAT, ROOT, make_image, need, run  # noqa: E402
import imagelib  # noqa: E402
import moatlib  # noqa: E402
from moatlib import case, check, eq, Failure  # noqa: E402
import qemu  # noqa: E402

IMG = os.path.join(IMG_DIR, "moat.img")
BOOT_SECONDS = 180     # boot to 220 under TCG (measured ~20 s BIOS, ~35 s UEFI)
STOP_SECONDS = 60      # power button to qemu exit
QUEUED_RE = re.compile(r"250 2\.0\.0 OK: queued as ([0-9a-f]{16})")

APPLIANCE_CONF = """# written by tests/image/test_image.py: qemu user networking
hostname       mx.test
listen         0.0.0.0:25 tls=starttls
listen         [::]:25
tls-cert       /data/cert.pem
tls-key        /data/key.pem
domain         example.test
relay-network  10.0.2.0/24
queue          /data/queue
queue-max-bytes 32M
queue-max-messages 1000
max-message-size 10M
net-address    10.0.2.15/24
net-address    fec0::15/64
net-gateway    10.0.2.2
# Delivery: example.test to a moat on the host, held.test to a next hop
# that answers 421 (so it stays queued).  Both through guest forwards of
# 10.0.2.100: with restrict=on the guest reaches the host nowhere else, and
# qemu refuses a guest forward on the host alias 10.0.2.2 itself.
route          example.test [10.0.2.100]:2525
route          held.test [10.0.2.100]:2526
"""
# qemu runs these for each connection the appliance opens to 10.0.2.100:PORT.
GUESTFWD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "guestfwd.py")
DEFER_CMD = "printf '421 4.3.2 mx.host not now\\r\\n'"

os.makedirs(os.path.join(BUILD, "t"), exist_ok=True)
WORK = tempfile.mkdtemp(prefix="image-", dir=os.path.join(BUILD, "t"))
state = {"sent": {}, "delivered": {}}   # queue ID -> (recipient, token)
vms = []


def tls_pair():
    """A fresh self-signed P-256 certificate and key for mx.test."""
    key, cert = os.path.join(WORK, "key.pem"), os.path.join(WORK, "cert.pem")
    if not os.path.exists(cert):
        r = run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                 "-days", "2", "-subj", "/CN=mx.test"])
        eq(r.returncode, 0, "openssl req: %r" % r.stderr)
    return [cert, key]


def data_put(disk, path, name):
    r = run(["sh", os.path.join(ROOT, "image", "data.sh"), "put", disk, path, name],
            env=dict(os.environ, MOAT=MOAT))
    check(r.returncode == 0, "image/data.sh put %s: %s %s" % (name, r.stdout, r.stderr))


def disk_copy(name, conf=None):
    """A sparse copy of the built image, with conf (and the TLS pair it
    names) written onto its data partition by image/data.sh (the
    documented way, no mount)."""
    path = os.path.join(WORK, name)
    r = run(["cp", "--sparse=always", IMG, path])
    eq(r.returncode, 0, "cp image")
    if conf is not None:
        if "tls-cert" in conf:
            for f in tls_pair():
                data_put(path, f, os.path.basename(f))
        cpath = os.path.join(WORK, name + ".conf")
        with open(cpath, "w") as f:
            f.write(conf)
        data_put(path, cpath, "moat.conf")
    return path


def boot(disk, uefi, guestfwd=()):
    vm = qemu.Appliance(disk, WORK, uefi=uefi, guestfwd=guestfwd)
    vms.append(vm)
    return vm.start()


def banner(vm):
    line, t = vm.wait_banner(BOOT_SECONDS)
    if line is None:
        raise Failure("no 220 through the port forward within %ds (%s); qemu: %s\nconsole:\n%s"
                      % (BOOT_SECONDS, t, vm.stderr()[-500:], vm.console()[-3000:]))
    eq(line, "220 mx.test ESMTP moat", "greeting through the forward")
    sys.stderr.write("info: %s: 220 after %.1f s\n" % ("uefi" if vm.uefi else "bios", t))
    return t


def send(vm, n, size=0, tls=False, domain="held.test"):
    """n mails with swaks (over STARTTLS if tls) to domain; each body
    carries a unique token (and size bytes of filler).  Records queue IDs
    in state["sent"] (state["delivered"] for example.test)."""
    for _ in range(n):
        i = len(state["sent"]) + len(state["delivered"])
        token = "token-%d-%s-%d" % (i, "uefi" if vm.uefi else "bios", os.getpid())
        rcpt = "user%d@%s" % (i, domain)
        body = os.path.join(WORK, "body-%d" % i)
        with open(body, "w") as f:
            f.write(token + "\n" + ("x" * 70 + "\n") * (size // 71))
        r = run(["swaks", "--server", "127.0.0.1:%d" % vm.port, "--from", "alice@client.test",
                 "--to", rcpt, "--header", "Subject: " + token, "--body", body,
                 "--timeout", "30"] + (["--tls"] if tls else []), timeout=90)
        out = r.stdout.decode("utf-8", "replace")
        if tls and "TLS started" not in out:
            time.sleep(3)   # let the appliance log why
            check(False, "no STARTTLS: %s\nconsole:\n%s" % (out[-1500:], vm.console()[-2500:]))
        m = QUEUED_RE.search(out)
        check(r.returncode == 0 and m, "swaks exit %d, no 'queued as': %s"
              % (r.returncode, out[-1500:]))
        state["delivered" if domain == "example.test" else "sent"][m.group(1)] = (rcpt, token)


def console_has(vm, *texts):
    con = vm.console()
    for t in texts:
        check(t in con, "console lacks %r:\n%s" % (t, con[-3000:]))


# ---------------------------------------------------------------- the build

@case
def test_image_builds():
    make_image()
    for f in ("moat.img", "moat.qcow2", "moat-oci.tar", "moat-boot.img", "MANIFEST"):
        check(os.path.getsize(os.path.join(IMG_DIR, f)) > 0, "%s is empty" % f)
    state["built"] = True


@case
def test_init_refuses_outside_pid1():
    r = run([MOAT, "init"])
    eq(r.returncode, 100, "moat init as an ordinary process: exit status")
    check(b"only as process 1" in r.stderr, "message: %r" % r.stderr)


@case
def test_gpt_layout():
    need(state, "built")
    out = run(["sfdisk", "-d", IMG]).stdout.decode()
    parts = [ln for ln in out.splitlines() if ln.startswith(IMG)]
    eq(len(parts), 2, "partitions")
    check("label: gpt" in out, "not GPT: %s" % out)
    check('name="moat-boot"' in parts[0] and "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" in parts[0]
          and 'attrs="LegacyBIOSBootable"' in parts[0], "boot partition: %s" % parts[0])
    check('name="moat-data"' in parts[1] and "0FC63DAF-8483-4772-8E79-3D69D8477DE4" in parts[1],
          "data partition: %s" % parts[1])
    with open(IMG, "rb") as f:
        mbr = f.read(512)
    with open("/usr/lib/syslinux/mbr/gptmbr.bin", "rb") as f:
        code = f.read(440)
    check(mbr[:440] == code, "MBR boot code is not syslinux's gptmbr.bin")
    eq(mbr[510:512], b"\x55\xaa", "MBR signature")
    r = run(["qemu-img", "compare", IMG, os.path.join(IMG_DIR, "moat.qcow2")])
    eq(r.returncode, 0, "qemu-img compare moat.img moat.qcow2: %s" % r.stdout)


@case
def test_boot_partition_files():
    need(state, "built")
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    boot = os.path.join(IMG_DIR, "moat-boot.img")
    for path in ("::/EFI/BOOT/BOOTX64.EFI", "::/loader/loader.conf",
                 "::/loader/entries/moat.conf", "::/syslinux/ldlinux.sys",
                 "::/syslinux/ldlinux.c32", "::/syslinux/syslinux.cfg",
                 "::/moat/linux", "::/moat/initrd"):
        r = run(["mdir", "-a", "-b", "-i", boot, path], env=env)
        check(r.returncode == 0, "%s missing on the boot partition" % path)
    entry = run(["mtype", "-i", boot, "::/loader/entries/moat.conf"], env=env).stdout.decode()
    cfg = run(["mtype", "-i", boot, "::/syslinux/syslinux.cfg"], env=env).stdout.decode()
    for text in (entry, cfg):
        check("console=ttyS0" in text and "/moat/linux" in text and "/moat/initrd" in text,
              "boot entry: %r" % text)
    # The boot partition inside the disk is byte for byte moat-boot.img.
    with open(IMG, "rb") as f, open(boot, "rb") as g:
        f.seek(2048 * 512)
        check(f.read(1 << 20) == g.read(1 << 20), "moat-boot.img differs from partition 1")


@case
def test_initramfs_holds_only_moat_and_modules():
    need(state, "built")
    d = os.path.join(WORK, "initrd")
    os.makedirs(d, exist_ok=True)
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    initrd = os.path.join(d, "initrd.zst")
    r = run(["mcopy", "-n", "-i", os.path.join(IMG_DIR, "moat-boot.img"), "::/moat/initrd",
             initrd], env=env)
    eq(r.returncode, 0, "mcopy initrd")
    r = subprocess.run("zstd -dc '%s' | cpio -it --quiet" % initrd, shell=True,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    names = r.stdout.decode().split()
    dirs = {"dev", "proc", "sys", "data", "etc", "lib", "lib/modules"}
    kos = [n for n in names if re.match(r"^lib/modules/[A-Za-z0-9_]+\.ko$", n)]
    index = "lib/modules/modules.index"
    other = [n for n in names if n not in dirs and n not in ("init", index) and n not in kos]
    eq(other, [], "files in the initramfs other than /init and modules")
    check("init" in names, "no /init")
    check(len(kos) >= 10, "too few modules: %r" % kos)
    for m in ("virtio_blk", "virtio_net", "ext4", "button", "evdev"):
        check("lib/modules/%s.ko" % m in kos, "module %s missing" % m)
    # /init is moat itself (stripped).
    r = subprocess.run("zstd -dc '%s' | cpio -i --quiet --to-stdout init" % initrd, shell=True,
                       stdout=subprocess.PIPE, timeout=60)
    stripped = os.path.join(d, "moat.stripped")
    eq(run(["strip", "--strip-all", "-o", stripped, MOAT]).returncode, 0, "strip")
    with open(stripped, "rb") as f:
        check(hashlib.sha256(r.stdout).digest() == hashlib.sha256(f.read()).digest(),
              "/init is not the moat binary")


@case
def test_image_reproducible():
    need(state, "built")
    out = os.path.join(WORK, "repro")
    r = run(["sh", os.path.join(ROOT, "image", "build.sh")], timeout=300, cwd=ROOT,
            env=dict(os.environ, BUILD=BUILD, IMAGE_OUT=out))
    check(r.returncode == 0, "second build: %s" % r.stderr.decode()[-2000:])
    with open(os.path.join(IMG_DIR, "MANIFEST")) as f:
        first = f.read()
    with open(os.path.join(out, "MANIFEST")) as f:
        second = f.read()
    eq(second, first, "MANIFEST (sha256 of every artifact) of a second build")
    run(["rm", "-rf", out])


# ---------------------------------------------------------------- boots

@case
def test_no_config_says_what_to_create():
    need(state, "built")
    disk = disk_copy("noconf.img")
    # The network from the kernel command line (no moat.conf to carry it):
    # edit syslinux.cfg on the copy's boot partition (mtools, at 1 MiB).
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    part = disk + "@@1M"
    cfg = run(["mtype", "-i", part, "::/syslinux/syslinux.cfg"], env=env).stdout.decode()
    check("APPEND " in cfg, "syslinux.cfg: %r" % cfg)
    cfg = cfg.replace("APPEND ", "APPEND moat.net-address=10.0.2.15/24 moat.net-gateway=10.0.2.2 ")
    local = os.path.join(WORK, "syslinux.cfg")
    with open(local, "w") as f:
        f.write(cfg)
    r = run(["mcopy", "-o", "-i", part, local, "::/syslinux/syslinux.cfg"], env=env)
    eq(r.returncode, 0, "mcopy syslinux.cfg: %r" % r.stderr)
    vm = boot(disk, uefi=False)
    check(vm.wait_console("moat accepts nothing", BOOT_SECONDS),
          "no 'moat accepts nothing' on the console:\n%s" % vm.console()[-3000:])
    check(vm.wait_console("event=power-button", 30), "boot did not finish:\n%s" % vm.console()[-2000:])
    console_has(vm, "no configuration", "Create the file moat.conf", '"moat-data"',
                "/data/moat.conf", "image/data.sh put", "Then power off",
                "address=10.0.2.15/24", "gateway=10.0.2.2")
    check("event=serve-start" not in vm.console(), "the server started without a config")
    line, why = vm.wait_banner(4)
    check(line is None, "something greeted without a config: %r" % line)
    # Ctrl-Alt-Del: SIGINT to process 1, a clean reboot (qemu -no-reboot exits).
    keys = [{"type": "qcode", "data": k} for k in ("ctrl", "alt", "delete")]
    vm.qmp("send-key", {"keys": keys})
    st = vm.wait_exit(STOP_SECONDS)
    check(st is not None, "no reboot within %ds of Ctrl-Alt-Del:\n%s"
          % (STOP_SECONDS, vm.console()[-2000:]))
    console_has(vm, "event=shutdown reason=ctrl-alt-del", "event=halt action=reboot")


@case
def test_server_restarted_when_it_dies():
    # The server cannot bind an address the interface does not have: it
    # exits 111 at once, and the init starts it again, 1 s then 2 s later.
    need(state, "built")
    conf = APPLIANCE_CONF.replace("listen         [::]:25\n", "listen         10.0.2.99:2525\n")
    vm = boot(disk_copy("restart.img", conf), uefi=False)
    check(vm.wait_console("event=serve-restart in=2000ms", BOOT_SECONDS),
          "no second restart:\n%s" % vm.console()[-3000:])
    con = vm.console()
    check(con.count("event=serve-start") >= 2, "started once only:\n%s" % con[-3000:])
    console_has(vm, 'msg="moat serve exited" status=111', "event=serve-restart in=1000ms")
    vm.power_button()
    check(vm.wait_exit(STOP_SECONDS) is not None, "no power-off:\n%s" % vm.console()[-2000:])
    console_has(vm, "event=halt action=poweroff")


@case
def test_bios_boot_mail_then_pull_the_plug():
    need(state, "built")
    disk = disk_copy("mx.img", APPLIANCE_CONF)
    state["disk"] = disk
    # The next hop: a second moat on this machine's loopback, keeping what
    # it gets (delivery off), reached through the guest forward.
    nexthop = moatlib.Server("nexthop", conf={"delivery": "off", "hostname": "nexthop.test"})
    state["nexthop"] = nexthop
    fwd = [("10.0.2.100", 2525, "/usr/bin/python3 %s %d" % (GUESTFWD, nexthop.port4)),
           ("10.0.2.100", 2526, DEFER_CMD)]
    state["guestfwd"] = fwd
    vm = boot(disk, uefi=False, guestfwd=fwd)
    banner(vm)
    check(vm.wait_console("event=serve-privileges", 20), "no privileges report")
    console_has(vm, "event=boot role=init", "event=modules loaded=", "event=data-partition",
                "event=mounted device=/dev/vda2 on=/data", "address=10.0.2.15/24",
                "address=fec0::15/64", "gateway=10.0.2.2", "event=serve-start",
                # not root; of root's powers only CAP_NET_BIND_SERVICE
                "uid=65532,65532,65532,65532 capabilities=0000000000000400",
                "event=queue messages=0 new=yes")
    send(vm, 1, tls=True)          # the key is on the data partition
    send(vm, 1)
    send(vm, 1, size=200 * 1024)   # past the 64 KiB draft: a spool file
    send(vm, 1, domain="example.test")
    # The appliance delivers it to the host's moat: same body, same token.
    qid, (rcpt, token) = next(iter(state["delivered"].items()))
    nexthop = state["nexthop"]
    deadline = time.monotonic() + 90
    got = {}
    while time.monotonic() < deadline and not got:
        got = nexthop.queue_list()
        time.sleep(0.5)
    check(got, "nothing reached the next hop within 90 s:\n%s" % vm.console()[-3000:])
    eq(list(got.values()), [[rcpt]], "recipients at the next hop")
    env, body = nexthop.queued_message(next(iter(got)))
    check(token.encode() in body, "the delivered body lacks %s: %r" % (token, body[:500]))
    check(b"alice@client.test" in env, "sender at the next hop: %r" % env[:300])
    # ... and the held ones were tried: the 421 is in the appliance's log.
    check(vm.wait_console("status=deferred dsn=4.0.0 attempts=1 reply=421", 60),
          "no deferral logged:\n%s" % vm.console()[-3000:])
    console_has(vm, "to=<%s> relay=10.0.2.100[10.0.2.100] tls=none status=sent" % rcpt)
    vm.kill()
    state["crashed"] = True


@case
def test_uefi_boot_after_crash_queue_intact():
    need(state, "crashed")
    vm = boot(state["disk"], uefi=True, guestfwd=state["guestfwd"])
    banner(vm)
    # The journal was replayed at mount; the queue holds the 3 held
    # messages (the delivered one is gone).
    console_has(vm, "event=queue path=/data/queue messages=3 ")
    send(vm, 1)
    vm.power_button()
    st = vm.wait_exit(STOP_SECONDS)
    check(st is not None, "still running %ds after the power button:\n%s"
          % (STOP_SECONDS, vm.console()[-2000:]))
    eq(st, 0, "qemu exit status")
    console_has(vm, "event=shutdown reason=power-button", "event=exit status=0",
                "event=unmounted dir=/data", "event=halt action=poweroff")
    state["stopped"] = True


@case
def test_queue_read_offline():
    need(state, "stopped")
    dest = os.path.join(WORK, "offline")
    r = run(["sh", os.path.join(ROOT, "image", "data.sh"), "queue", state["disk"], dest])
    check(r.returncode == 0, "image/data.sh queue: %s" % r.stderr.decode())
    conf = os.path.join(WORK, "offline.conf")
    with open(conf, "w") as f:
        f.write("domain example.test\nqueue %s/queue\nqueue-max-bytes 32M\n"
                "queue-max-messages 1000\nmax-message-size 10M\n" % dest)
    r = run([MOAT, "queue", "list", "-c", conf])
    eq(r.returncode, 0, "moat queue list exit (stderr %r)" % r.stderr)
    listed, lines = {}, {}
    cur = None
    for ln in r.stdout.decode().splitlines():
        if ln[:1].isspace():
            listed[cur].append(ln.split()[0].strip("<>"))
            lines[cur] = ln
        elif ln.strip():
            cur = ln.split()[0]
            listed[cur] = []
    sent = state["sent"]
    eq(len(sent), 4, "messages sent")
    eq(sorted(listed), sorted(sent), "queue IDs on the data partition")
    for qid in state["delivered"]:
        check(qid not in listed, "delivered message %s still queued" % qid)
    for qid, (rcpt, token) in sent.items():
        eq(listed[qid], [rcpt], "recipients of %s" % qid)
        # Those of the first boot were tried once and deferred by the 421
        # before the crash: that survived too.
        if "-bios-" in token:
            check(" pending attempts=1 " in lines[qid] and "421" in lines[qid],
                  "delivery state of %s: %r" % (qid, lines[qid]))
        r = run([MOAT, "queue", "show", "-c", conf, qid])
        eq(r.returncode, 0, "queue show %s" % qid)
        check(token.encode() in r.stdout, "body of %s lacks %s" % (qid, token))
        # The 200 KiB message (the third) came through whole.
        if token.startswith("token-2-"):
            check(r.stdout.count(b"x" * 70 + b"\r\n") == 200 * 1024 // 71,
                  "the 200 KiB body of %s is not whole" % qid)


def cleanup():
    for vm in vms:
        vm.kill()


if __name__ == "__main__":
    imagelib.main(WORK, cleanup)
