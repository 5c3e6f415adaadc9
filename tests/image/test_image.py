#!/usr/bin/python3
"""tests/image/test_image.py -- the appliance, built and booted for real.

`make image` (cached when its inputs are unchanged), then the disk is
checked (GPT, the boot partition's two slots, an initramfs with nothing
but moat, kernel modules and their index, reproducible bytes).  Then one
disk lives through what an administrator does to it, in as few boots as
that allows, under qemu with software emulation (TCG; never KVM here), its
NIC on a tap device in a network namespace of this test's own
(tests/image/netlab.py) with dnsmasq (DHCP with an 8 s T1, DNS, router
advertisements with RDNSS), an SNTP server, syslog receivers, a second moat
as the next hop of one domain and a 421-answering next hop for another.
The guest's clock starts in 2001.

Under SeaBIOS (syslinux), in one qemu process (reboots restart it):
  1. no config, no seed: the console says which file to create, nothing
     answers on 25; DHCP and SNTP work without a config.
  2. a config seed (ISO 9660, "cidata": moat.conf, the TLS pair) in the
     CD-ROM drive, Ctrl-Alt-Del: applied; the 220; mail (one over
     STARTTLS, one of 200 KiB) queued for the 421 host, one delivered to
     the moat next hop; the clock stepped from 2001; the lease renewed; the
     DNS servers of the lease and the router advertisement in resolv.conf;
     every line at the UDP syslog receiver as RFC 5424, and again after it
     was stopped for a while.
  3. a second seed (OpenStack's "config-2" layout) with another hostname
     and a new boot image: the seed applied, the image put into slot b,
     a reboot, slot b on trial (syslinux's boot-once), healthy, made the
     default; the new hostname in the 220; the queue intact.
  4. a seed with an invalid config and a boot image whose kernel panics:
     the seed refused on the console and the config kept; the image put
     into slot a, tried once, the panic, the fall back to slot b, the
     failed trial undone; the queue intact.  Then the plug pulled.
Under OVMF (systemd-boot), the same disk, a VFAT seed on a second disk
whose files are changed between boots (as one edits a cloud-init drive):
  5. a third good boot image, put into slot a offline by
     image/upgrade.sh (which then refuses a second time: a trial is
     pending): tried (systemd-boot's boot counting: moat-a+1.conf), made
     the default; the log over TLS (verified against the seed's CA) to
     logs.test, a name the lease's DNS server answers; the queue came
     through the pulled plug.
  6. a boot image without ext4 (its init cannot mount /data: the trial
     fails) and a config whose listener cannot bind: the image into slot
     b, the trial failed, back to slot a and the trial undone; the server
     restarted, backing off (1 s, 2 s); the power button: a clean stop.
Offline: the data partition read through a loop block device
(image/data.sh on a block device): every held message, bodies and
delivery state intact.  Every wait is bounded; qemu is killed at the end
whatever happened.
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from imagelib import BUILD, IMG_DIR, MOAT, ROOT, make_image, need, run  # noqa: E402
import imagelib  # noqa: E402
import moatlib  # noqa: E402
from moatlib import case, check, eq, Failure  # noqa: E402
import netlab  # noqa: E402
import qemu  # noqa: E402

IMG = os.path.join(IMG_DIR, "moat.img")
BOOT = os.path.join(IMG_DIR, "moat-boot.img")
BOOT_SECONDS = 240     # qemu start to 220 under TCG, with other tests on the cores
STOP_SECONDS = 90      # power button to qemu exit
QUEUED_RE = re.compile(r"250 2\.0\.0 OK: queued as ([0-9a-f]{16})")
GUEST = netlab.GUEST_IP
HOST = netlab.HOST_IP
RFC5424 = re.compile(r"^<\d+>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z (\S+) moat \d+ (\S+) - ")
MTOOLS = dict(os.environ, MTOOLS_SKIP_CHECK="1")

os.makedirs(os.path.join(BUILD, "t"), exist_ok=True)
WORK = os.path.abspath(tempfile.mkdtemp(prefix="image-", dir=os.path.join(BUILD, "t")))
state = {"sent": {}, "delivered": {}}   # queue ID -> (recipient, token)
vms = []
peers = []


def conf_text(hostname="mx.test", extra=""):
    """The appliance's config: DHCP (no net-address), the clock and DNS
    from the lease, the TLS pair from the seed, delivery to the host."""
    return """# written by tests/image/test_image.py
hostname       %s
listen         0.0.0.0:25 tls=starttls
listen         [::]:25
tls-cert       /data/cert.pem
tls-key        /data/key.pem
domain         example.test
relay-network  10.0.3.0/24
queue          /data/queue
queue-max-bytes 32M
queue-max-messages 1000
max-message-size 10M
route          example.test [%s]:%d
route          held.test [%s]:2526
%s""" % (hostname, HOST, state["nexthop"].port4, HOST, extra)


def openssl(*args):
    r = run(["openssl"] + list(args), timeout=60)
    eq(r.returncode, 0, "openssl %s: %r" % (args[0], r.stderr[-500:]))


def tls_files():
    """mx.test's self-signed pair; a CA and logs.test's certificate."""
    p = lambda f: os.path.join(WORK, f)  # noqa: E731
    if os.path.exists(p("logs.pem")):
        return
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", p("key.pem"), "-out", p("cert.pem"), "-days", "2", "-subj", "/CN=mx.test")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", p("logca.key"), "-out", p("logca.pem"), "-days", "2", "-subj", "/CN=log CA")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", p("logs.key"), "-out", p("logs.req"), "-subj", "/CN=logs.test")
    with open(p("logs.ext"), "w") as f:
        f.write("subjectAltName=DNS:logs.test\n")
    openssl("x509", "-req", "-in", p("logs.req"), "-CA", p("logca.pem"), "-CAkey", p("logca.key"),
            "-CAcreateserial", "-out", p("logs.pem"), "-days", "2", "-extfile", p("logs.ext"))


def seed_dir(name, files):
    """A directory of files (name -> text or a path to copy)."""
    d = os.path.join(WORK, name)
    shutil.rmtree(d, ignore_errors=True)
    for rel, content in files.items():
        path = os.path.join(d, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if content.startswith("/") and os.path.exists(content):
            shutil.copyfile(content, path)
        else:
            with open(path, "w") as f:
                f.write(content)
    return d


def seed_iso(name, label, files):
    iso = os.path.join(WORK, name + ".iso")
    r = run(["genisoimage", "-quiet", "-V", label, "-r", "-J", "-o", iso, seed_dir(name, files)])
    eq(r.returncode, 0, "genisoimage: %r" % r.stderr[-500:])
    return iso


def seed_vfat(path, files):
    """Write files onto the VFAT seed disk at path (made once, label
    CIDATA), replacing what it held: the admin edits the seed."""
    if not os.path.exists(path):
        r = run(["mkfs.vfat", "-C", "-n", "CIDATA", path, str(160 * 1024)])
        eq(r.returncode, 0, "mkfs.vfat: %r" % r.stderr)
    run(["mdel", "-i", path, "::/*"], env=MTOOLS)
    d = seed_dir(os.path.basename(path) + ".d", files)
    for f in os.listdir(d):
        r = run(["mcopy", "-o", "-i", path, os.path.join(d, f), "::/" + f], env=MTOOLS)
        eq(r.returncode, 0, "mcopy %s: %r" % (f, r.stderr))


def boot_image(name, initrd_edit=None, cmdline_edit=None):
    """A copy of moat-boot.img with its slot a's initrd or command line
    changed: a new version to upgrade to (good or bad)."""
    out = os.path.join(WORK, name + "-boot.img")
    shutil.copyfile(BOOT, out)
    d = os.path.join(WORK, name + "-files")
    os.makedirs(d, exist_ok=True)
    for f in ("initrd", "cmdline"):
        r = run(["mcopy", "-n", "-i", out, "::/moat/a/" + f, os.path.join(d, f)], env=MTOOLS)
        eq(r.returncode, 0, "mcopy %s: %r" % (f, r.stderr))
    if initrd_edit:
        initrd_edit(os.path.join(d, "initrd"), d)
    if cmdline_edit:
        with open(os.path.join(d, "cmdline")) as f:
            text = f.read()
        with open(os.path.join(d, "cmdline"), "w") as f:
            f.write(cmdline_edit(text))
    for f in ("initrd", "cmdline"):
        r = run(["mcopy", "-o", "-i", out, os.path.join(d, f), "::/moat/a/" + f], env=MTOOLS)
        eq(r.returncode, 0, "mcopy back %s: %r" % (f, r.stderr))
    return out


def cpio_append(marker):
    """An initrd edit: a second (uncompressed) archive appended, holding
    one file named marker: the kernel unpacks both; the bytes differ."""
    def edit(path, d):
        m = os.path.join(d, "extra")
        os.makedirs(os.path.join(m, "etc"), exist_ok=True)
        with open(os.path.join(m, "etc", marker), "w") as f:
            f.write(marker + "\n")
        r = subprocess.run("cd '%s' && echo etc/%s | cpio -o -H newc --quiet >> '%s'"
                           % (m, marker, path), shell=True, timeout=60)
        eq(r.returncode, 0, "cpio append")
    return edit


def initrd_without(module):
    """An initrd edit: the same archive without lib/modules/MODULE.ko."""
    def edit(path, d):
        x = os.path.join(d, "root")
        os.makedirs(x, exist_ok=True)
        r = subprocess.run("cd '%s' && zstd -dc '%s' | cpio -idm --quiet && rm lib/modules/%s.ko "
                           "&& find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet "
                           "| zstd -q -3 > '%s.new' && mv '%s.new' '%s'" % (x, path, module, path,
                                                                           path, path),
                           shell=True, timeout=120)
        eq(r.returncode, 0, "initrd without %s" % module)
    return edit


def initrd_empty(path, d):
    """An initrd edit: an archive without /init: the kernel panics."""
    r = subprocess.run("cd '%s' && echo . | cpio -o -H newc --quiet | zstd -q > '%s'" % (d, path),
                       shell=True, timeout=60)
    eq(r.returncode, 0, "empty initrd")


def vm_start(uefi, **kw):
    vm = qemu.Appliance(state["disk"], WORK, uefi=uefi, tap=netlab.TAP, mac=netlab.GUEST_MAC,
                        rtc="2001-02-03T04:05:06", reboot=True, **kw)
    vms.append(vm)
    state["vm"] = vm
    state["mark"] = 0
    return vm.start()


def since_mark():
    """The console from the last mark() on."""
    return state["vm"].console()[state["mark"]:]


def mark():
    state["mark"] = len(state["vm"].console())


def wait_for(text, seconds=BOOT_SECONDS):
    """text on the console after the mark, or a failure with the tail."""
    vm = state["vm"]
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if text in since_mark():
            return
        if vm.proc.poll() is not None:
            break
        time.sleep(0.25)
    raise Failure("console lacks %r within %ds (qemu %s):\n%s"
                  % (text, seconds, vm.proc.poll(), since_mark()[-4000:]))


def console_has(*texts):
    con = since_mark()
    for t in texts:
        check(t in con, "console lacks %r:\n%s" % (t, con[-4000:]))


def banner(want):
    line, t = state["vm"].wait_banner(BOOT_SECONDS, host=GUEST, port=25)
    check(line is not None, "no 220 from %s:25 (%s):\n%s" % (GUEST, t, since_mark()[-4000:]))
    eq(line, "220 %s ESMTP moat" % want, "greeting")


def send(n, size=0, tls=False, domain="held.test"):
    """n mails with swaks to domain, each with a unique token; their queue
    IDs into state (sent: held; delivered: example.test)."""
    for _ in range(n):
        i = len(state["sent"]) + len(state["delivered"])
        token = "token-%d-%d" % (i, os.getpid())
        rcpt = "user%d@%s" % (i, domain)
        body = os.path.join(WORK, "body-%d" % i)
        with open(body, "w") as f:
            f.write(token + "\n" + ("x" * 70 + "\n") * (size // 71))
        r = run(["swaks", "--server", "%s:25" % GUEST, "--from", "alice@client.test",
                 "--to", rcpt, "--header", "Subject: " + token, "--body", body,
                 "--timeout", "30"] + (["--tls"] if tls else []), timeout=90)
        out = r.stdout.decode("utf-8", "replace")
        check(not tls or "TLS started" in out, "no STARTTLS: %s" % out[-1500:])
        m = QUEUED_RE.search(out)
        check(r.returncode == 0 and m, "swaks exit %d, no 'queued as': %s" % (r.returncode, out[-1500:]))
        state["delivered" if domain == "example.test" else "sent"][m.group(1)] = (rcpt, token)
        state["last_id"] = m.group(1)


def next_boot():
    """Mark the console, then wait for the next boot's first line."""
    mark()
    wait_for("event=boot role=init")


# ---------------------------------------------------------------- the build

@case
def test_image_builds():
    make_image()
    for f in ("moat.img", "moat.qcow2", "moat-oci.tar", "moat-boot.img", "MANIFEST"):
        check(os.path.getsize(os.path.join(IMG_DIR, f)) > 0, "%s is empty" % f)
    with open(os.path.join(IMG_DIR, "MANIFEST")) as f:
        manifest = f.read()
    # The kernel package that built it, and it is linux-image-amd64's today.
    m = re.search(r"^kernel-package (linux-image-\S+) (\S+)$", manifest, re.M)
    check(m, "MANIFEST names no kernel package:\n%s" % manifest)
    r = run(["apt-cache", "depends", "linux-image-amd64"])
    check(("Depends: " + m.group(1)).encode() in r.stdout,
          "MANIFEST's %s is not what linux-image-amd64 depends on: %r" % (m.group(1), r.stdout))
    state["built"] = True


@case
def test_init_and_upgrade_refuse_outside_the_appliance():
    r = run([MOAT, "init"])
    eq(r.returncode, 100, "moat init as an ordinary process: exit status")
    check(b"only as process 1" in r.stderr, "message: %r" % r.stderr)
    r = run([MOAT, "upgrade", BOOT])
    eq(r.returncode, 100, "moat upgrade outside the appliance: exit status")
    check(b"image/upgrade.sh" in r.stderr, "message: %r" % r.stderr)


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
def test_boot_partition_slots():
    need(state, "built")
    for path in ("::/EFI/BOOT/BOOTX64.EFI", "::/loader/loader.conf",
                 "::/loader/entries/moat-a.conf", "::/syslinux/ldlinux.sys",
                 "::/syslinux/ldlinux.c32", "::/syslinux/syslinux.cfg",
                 "::/moat/a/linux", "::/moat/a/initrd", "::/moat/a/cmdline", "::/moat/b"):
        r = run(["mdir", "-a", "-b", "-i", BOOT, path], env=MTOOLS)
        check(r.returncode == 0, "%s missing on the boot partition" % path)
    entry = run(["mtype", "-i", BOOT, "::/loader/entries/moat-a.conf"], env=MTOOLS).stdout.decode()
    cfg = run(["mtype", "-i", BOOT, "::/syslinux/syslinux.cfg"], env=MTOOLS).stdout.decode()
    check("version  1\n" in entry and "sort-key moat" in entry and "moat.slot=a" in entry,
          "entry: %r" % entry)
    check("DEFAULT a\n" in cfg and "moat.slot=a" in cfg and "trial" not in cfg, "syslinux.cfg: %r" % cfg)
    for text in (entry, cfg):
        check("console=ttyS0" in text and "/moat/a/linux" in text and "/moat/a/initrd" in text,
              "boot entry: %r" % text)
    # syslinux's ADV (the end of ldlinux.sys): no boot-once.
    ld = run(["mtype", "-i", BOOT, "::/syslinux/ldlinux.sys"], env=MTOOLS).stdout
    eq(ld[-1024:-1016], b"\xa5\x2f\x2d\x5a\x67\x17\x04\xa3", "ADV head (empty)")
    with open(IMG, "rb") as f, open(BOOT, "rb") as g:
        f.seek(2048 * 512)
        check(f.read(1 << 20) == g.read(1 << 20), "moat-boot.img differs from partition 1")


@case
def test_initramfs_holds_only_moat_modules_and_ca_bundle():
    need(state, "built")
    d = os.path.join(WORK, "initrd")
    os.makedirs(d, exist_ok=True)
    initrd = os.path.join(d, "initrd.zst")
    r = run(["mcopy", "-n", "-i", BOOT, "::/moat/a/initrd", initrd], env=MTOOLS)
    eq(r.returncode, 0, "mcopy initrd")
    r = subprocess.run("zstd -dc '%s' | cpio -it --quiet" % initrd, shell=True,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    names = r.stdout.decode().split()
    dirs = {"dev", "proc", "sys", "data", "etc", "etc/ssl", "etc/ssl/certs", "lib", "lib/modules"}
    kos = [n for n in names if re.match(r"^lib/modules/[A-Za-z0-9_]+\.ko$", n)]
    index = "lib/modules/modules.index"
    ca = "etc/ssl/certs/ca-certificates.crt"
    other = [n for n in names if n not in dirs and n not in ("init", index, ca) and n not in kos]
    eq(other, [], "files in the initramfs other than /init, modules, their index and the CA bundle")
    check("init" in names and index in names, "no /init or no module index")
    r = subprocess.run("zstd -dc '%s' | cpio -i --quiet --to-stdout %s" % (initrd, ca), shell=True,
                       stdout=subprocess.PIPE, timeout=60)
    with open("/etc/ssl/certs/ca-certificates.crt", "rb") as f:
        check(r.stdout == f.read(), "the initramfs's CA bundle is not this machine's")
    for m in ("virtio_blk", "virtio_net", "ext4", "button", "evdev", "vmxnet3", "vmw_pvscsi",
              "hv_netvsc", "hv_storvsc", "isofs", "vfat", "sr_mod", "loop"):
        check("lib/modules/%s.ko" % m in kos, "module %s missing" % m)
    r = subprocess.run("zstd -dc '%s' | cpio -i --quiet --to-stdout init lib/modules/modules.index"
                       % initrd, shell=True, stdout=subprocess.PIPE, timeout=60)
    stripped = os.path.join(d, "moat.stripped")
    eq(run(["strip", "--strip-all", "-o", stripped, MOAT]).returncode, 0, "strip")
    with open(stripped, "rb") as f:
        binary = f.read()
    check(r.stdout.startswith(binary), "/init is not the moat binary")
    text = r.stdout[len(binary):].decode()
    check("\nalias pci:v00001AF4d" in text and "\nmodule ext4 " in text and
          "\nalias pci:v000015ADd000007B0" in text, "module index: %r" % text[:500])


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


@case
def test_network_namespace():
    """Everything from here on runs in a network namespace of its own."""
    need(state, "built")
    tls_files()
    state["upgrades"] = {
        "G": boot_image("G", initrd_edit=cpio_append("upgrade-G")),
        "G2": boot_image("G2", initrd_edit=cpio_append("upgrade-G2")),
        "X": boot_image("X", initrd_edit=initrd_empty,
                        cmdline_edit=lambda c: c.replace("panic=10", "panic=1")),
        "X2": boot_image("X2", initrd_edit=initrd_without("ext4")),
    }
    netlab.enter()
    state["dnsmasq"] = netlab.Dnsmasq(WORK, t1=8, names=["logs.test"])
    peers.append(state["dnsmasq"])
    state["sntp"] = netlab.Sntp()
    state["udp"] = netlab.SyslogReceiver("udp", "::", 5514)
    state["tls"] = netlab.SyslogReceiver("tls", "::", 6514, os.path.join(WORK, "logs.pem"),
                                         os.path.join(WORK, "logs.key"))
    netlab.Deferrer(HOST, 2526)
    nexthop = moatlib.Server("nexthop", conf={"delivery": "off", "hostname": "nexthop.test"},
                             start=False)
    with open(nexthop.conf_path) as f:
        text = f.read()
    with open(nexthop.conf_path, "w") as f:
        f.write(text.replace("listen 127.0.0.1:%d" % nexthop.port4,
                             "listen 127.0.0.1:%d\nlisten %s:%d" % (nexthop.port4, HOST,
                                                                   nexthop.port4)))
    nexthop.start()
    state["nexthop"] = nexthop
    state["disk"] = os.path.join(WORK, "mx.img")
    eq(run(["cp", "--sparse=always", IMG, state["disk"]]).returncode, 0, "cp image")
    state["net"] = True


# ---------------------------------------------------------------- SeaBIOS

@case
def test_bios_no_config_network_and_clock():
    need(state, "net")
    vm_start(uefi=False, cdrom="")
    wait_for("moat accepts nothing")
    wait_for("event=clock server=%s" % HOST, 60)
    console_has("no configuration", "Create the file moat.conf", "image/data.sh put",
                "event=dhcp state=bound interface=eth0 address=%s/24 server=%s router=%s" % (
                    GUEST, HOST, HOST),
                "event=boot role=init", "slot=a", "event=dns servers=%s" % HOST)
    check("event=serve-start" not in since_mark(), "the server started without a config")
    # The clock was 2001; stepped forward by some 25 years.
    m = re.search(r"event=clock server=\S+ offset=\+(\d+)\.\d+s delay=\S+ action=step", since_mark())
    check(m and int(m.group(1)) > 20 * 365 * 86400, "no clock step from 2001:\n%s" % since_mark()[-2000:])
    check(state["sntp"].requests >= 1, "the SNTP server was not asked")
    line, _ = state["vm"].wait_banner(3, host=GUEST, port=25)
    check(line is None, "something greeted without a config: %r" % line)


@case
def test_bios_seed_config_mail_dhcp_renewal_remote_log():
    need(state, "net")
    vm = state["vm"]
    s1 = seed_iso("s1", "cidata", {"moat.conf": conf_text(extra="log remote udp logs.test:5514\n"),
                                   "cert.pem": os.path.join(WORK, "cert.pem"),
                                   "key.pem": os.path.join(WORK, "key.pem")})
    vm.change_cdrom(s1)
    mark()
    vm.ctrl_alt_del()
    wait_for("event=halt action=reboot", STOP_SECONDS)
    next_boot()
    banner("mx.test")
    wait_for("event=serve-privileges")
    console_has("event=seed device=/dev/sr0 label=cidata type=iso9660",
                "result=applied config=/seed/moat.conf files=2",
                "uid=65532,65532,65532,65532 capabilities=0000000000000400",
                "event=queue messages=0 new=yes")
    # The image's CA bundle, tls-ca-file's default (MTA-STS is on).
    m = re.search(r"event=tls-ca file=/etc/ssl/certs/ca-certificates\.crt anchors=(\d+)", since_mark())
    check(m and int(m.group(1)) > 100, "no CA bundle loaded:\n%s" % since_mark()[-3000:])
    check("no CA bundle" not in since_mark(), "a CA bundle warning:\n%s" % since_mark()[-3000:])
    # Log lines after the step carry this year, not 2001's.
    check(re.search(r"\n%s-\d\d-\d\dT\S+ moat\[\d+\]: event=serve-start" % time.strftime("%Y"),
                    since_mark()), "the log's clock is not today's:\n%s" % since_mark()[-2000:])
    send(1, tls=True)
    send(1)
    send(1, size=200 * 1024)
    send(1, domain="example.test")
    qid, (rcpt, token) = next(iter(state["delivered"].items()))
    nexthop = state["nexthop"]
    deadline = time.monotonic() + 90
    got = {}
    while time.monotonic() < deadline and not got:
        got = nexthop.queue_list()
        time.sleep(0.5)
    check(got, "nothing reached the next hop within 90 s:\n%s" % since_mark()[-3000:])
    eq(list(got.values()), [[rcpt]], "recipients at the next hop")
    env, body = nexthop.queued_message(next(iter(got)))
    check(token.encode() in body, "the delivered body lacks %s" % token)
    wait_for('status=deferred dsn=4.3.2 attempts=1 reply="421', 60)
    # The lease renewed at T1 (8 s), and the router advertisement's DNS server.
    wait_for("event=dhcp state=renewed interface=eth0 address=%s/24" % GUEST, 60)
    check("DHCPACK(tap0) %s" % GUEST in state["dnsmasq"].text(), "dnsmasq acked nothing")
    wait_for("event=rdnss interface=eth0 servers=1 first=%s" % netlab.HOST_IP6, 60)
    console_has("event=dns servers=%s,%s from=dhcp,rdnss" % (HOST, netlab.HOST_IP6))
    # Every line at the syslog receiver too, RFC 5424, from mx.test.
    udp = state["udp"]
    m = udp.wait("event=accept id=" + state["last_id"], 30)
    check(m is not None, "the accept of %s is not at the UDP receiver: %r"
          % (state["last_id"], udp.messages[-5:]))
    mm = RFC5424.match(m)
    check(mm and mm.group(1) == "mx.test" and mm.group(2) == "accept", "not RFC 5424: %r" % m)
    # The receiver away for a while: mail is still taken; lines flow after.
    udp.stop()
    send(1)
    time.sleep(2)
    udp.start()
    send(1)
    check(udp.wait("event=accept id=" + state["last_id"], 30) is not None,
          "no line after the receiver came back: %r" % udp.messages[-5:])


@case
def test_bios_upgrade_to_slot_b_with_a_config_drive():
    need(state, "net")
    vm = state["vm"]
    s2 = seed_iso("s2", "config-2", {
        "openstack/latest/user_data": conf_text("mx2.test", "log remote udp logs.test:5514\n"),
        "cert.pem": os.path.join(WORK, "cert.pem"), "key.pem": os.path.join(WORK, "key.pem"),
        "moat-boot.img": state["upgrades"]["G"]})
    vm.change_cdrom(s2)
    mark()
    vm.ctrl_alt_del()
    wait_for("event=halt action=reboot", STOP_SECONDS)
    next_boot()
    wait_for("event=upgrade result=installed slot=b version=2 running=a")
    console_has("result=applied config=/seed/openstack/latest/user_data")
    next_boot()
    console_has("slot=b trial=yes")
    wait_for("event=slot result=good slot=b version=2")
    banner("mx2.test")
    console_has("event=slot result=trial slot=b", "event=queue path=/data/queue messages=5 ")


@case
def test_bios_bad_seed_refused_bad_slot_rolls_back():
    need(state, "net")
    vm = state["vm"]
    s3 = seed_iso("s3", "cidata", {"user-data": conf_text("mx3.test", "domian example.test\n"),
                                   "moat-boot.img": state["upgrades"]["X"]})
    vm.change_cdrom(s3)
    mark()
    vm.ctrl_alt_del()
    wait_for("event=halt action=reboot", STOP_SECONDS)
    next_boot()
    wait_for("event=upgrade result=installed slot=a version=3 running=b")
    console_has("config seed is refused", "result=refused")
    check(re.search(r"/seed/user-data:\d+: .*domian", since_mark()),
          "the refusal does not say what is wrong:\n%s" % since_mark()[-3000:])
    # Slot a's kernel panics (no /init), reboots in 1 s; syslinux boots b.
    wait_for("Kernel panic", 120)
    next_boot()
    boot_line = [ln for ln in since_mark().splitlines() if "event=boot role=init" in ln][0]
    check("slot=b" in boot_line and "trial" not in boot_line, "not slot b: %r" % boot_line)
    wait_for("event=upgrade result=rolled-back failed-slot=a running=b")
    banner("mx2.test")
    console_has("event=queue path=/data/queue messages=5 ")
    vm.kill()   # the plug
    state["crashed"] = True


# ---------------------------------------------------------------- OVMF

@case
def test_uefi_offline_upgrade_to_slot_a_log_over_tls():
    need(state, "crashed")
    # The disk, its plug pulled: upgraded offline, as an admin would.
    up = os.path.join(ROOT, "image", "upgrade.sh")
    r = run(["sh", up, state["disk"], state["upgrades"]["G2"]])
    eq(r.returncode, 0, "image/upgrade.sh: %r %r" % (r.stdout, r.stderr))
    check(b"slot a of " in r.stdout and b"(version 3), on trial" in r.stdout, "%r" % r.stdout)
    r = run(["sh", up, state["disk"], state["upgrades"]["G2"]])
    eq(r.returncode, 1, "image/upgrade.sh a second time")
    check(b"slot a is on trial already" in r.stderr, "%r" % r.stderr)
    seed = os.path.join(WORK, "seed-vfat.img")
    seed_vfat(seed, {"moat.conf": conf_text("mx4.test", "log remote tls logs.test:6514\n"
                                            "tls-ca-file /data/logca.pem\n"),
                     "cert.pem": os.path.join(WORK, "cert.pem"),
                     "key.pem": os.path.join(WORK, "key.pem"),
                     "logca.pem": os.path.join(WORK, "logca.pem")})
    state["seed_vfat"] = seed
    vm_start(uefi=True, disk2=seed)
    wait_for("event=slot result=good slot=a version=3")
    # Two virtio disks: which is vda is the probes' order.
    check(re.search(r"event=seed device=/dev/vd[ab] label=CIDATA type=vfat\n", since_mark()) and
          "result=applied config=/seed/moat.conf files=3" in since_mark(),
          "the VFAT seed was not applied:\n%s" % since_mark()[-3000:])
    console_has("slot=a trial=yes", "event=slot result=trial slot=a")
    banner("mx4.test")
    # The journal replayed after the pulled plug: the held mail is there.
    console_has("event=queue path=/data/queue messages=5 ")
    tls = state["tls"]
    m = tls.wait("event=serve-start", 60)
    check(m is not None and RFC5424.match(m), "nothing over TLS: %r\n%s"
          % (tls.messages[-3:], since_mark()[-2000:]))
    send(1)


@case
def test_uefi_bad_slot_rolls_back_server_restarts():
    need(state, "crashed")
    vm = state["vm"]
    seed_vfat(state["seed_vfat"], {
        "moat.conf": conf_text("mx4.test").replace("listen         [::]:25\n",
                                                    "listen         10.0.3.99:2525\n"),
        "cert.pem": os.path.join(WORK, "cert.pem"), "key.pem": os.path.join(WORK, "key.pem"),
        "moat-boot.img": state["upgrades"]["X2"]})
    mark()
    vm.ctrl_alt_del()
    wait_for("event=halt action=reboot", STOP_SECONDS)
    next_boot()
    wait_for("event=upgrade result=installed slot=b version=4 running=a")
    next_boot()
    console_has("slot=b trial=yes")
    wait_for("event=slot result=failed slot=b reason=\"the data partition does not mount\"")
    next_boot()
    console_has("slot=a")
    wait_for("event=upgrade result=rolled-back failed-slot=b running=a")
    # The config the seed gave: a listener the server cannot bind: it
    # exits, and is started again, 1 s then 2 s later.
    wait_for("event=serve-restart in=2000ms", 120)
    console_has('msg="moat serve exited" status=111', "event=serve-restart in=1000ms",
                "event=queue path=/data/queue messages=6 ")
    vm.power_button()
    st = vm.wait_exit(STOP_SECONDS)
    check(st is not None, "still running %ds after the power button:\n%s"
          % (STOP_SECONDS, since_mark()[-2000:]))
    eq(st, 0, "qemu exit status")
    console_has("event=shutdown reason=power-button", "event=dhcp state=released",
                "event=unmounted dir=/data", "event=halt action=poweroff")
    state["stopped"] = True


@case
def test_queue_read_offline_from_a_block_device():
    need(state, "stopped")
    r = run(["losetup", "--find", "--show", "--read-only", state["disk"]])
    eq(r.returncode, 0, "losetup: %r" % r.stderr)
    dev = r.stdout.decode().strip()
    try:
        dest = os.path.join(WORK, "offline")
        r = run(["sh", os.path.join(ROOT, "image", "data.sh"), "queue", dev, dest])
        check(r.returncode == 0, "image/data.sh queue %s: %s" % (dev, r.stderr.decode()))
    finally:
        run(["losetup", "-d", dev])
    conf = os.path.join(WORK, "offline.conf")
    with open(conf, "w") as f:
        f.write("domain example.test\nqueue %s/queue\nqueue-max-bytes 32M\n"
                "queue-max-messages 1000\nmax-message-size 10M\n" % dest)
    r = run([MOAT, "queue", "list", "-c", conf])
    eq(r.returncode, 0, "moat queue list exit (stderr %r)" % r.stderr)
    listed, lines, cur = {}, {}, None
    for ln in r.stdout.decode().splitlines():
        if ln[:1].isspace():
            listed[cur].append(ln.split()[0].strip("<>"))
            lines[cur] = ln
        elif ln.strip():
            cur = ln.split()[0]
            listed[cur] = []
    sent = state["sent"]
    eq(sorted(listed), sorted(sent), "queue IDs on the data partition")
    for qid in state["delivered"]:
        check(qid not in listed, "delivered message %s still queued" % qid)
    for qid, (rcpt, token) in sent.items():
        eq(listed[qid], [rcpt], "recipients of %s" % qid)
        check(" pending attempts=" in lines[qid], "delivery state of %s: %r" % (qid, lines[qid]))
        r = run([MOAT, "queue", "show", "-c", conf, qid])
        eq(r.returncode, 0, "queue show %s" % qid)
        check(token.encode() in r.stdout, "body of %s lacks %s" % (qid, token))
        if token.startswith("token-2-"):
            check(r.stdout.count(b"x" * 70 + b"\r\n") == 200 * 1024 // 71,
                  "the 200 KiB body of %s is not whole" % qid)


def cleanup():
    for vm in vms:
        vm.kill()
    for p in peers:
        p.stop()


if __name__ == "__main__":
    imagelib.main(WORK, cleanup)
