#!/usr/bin/python3
"""image/qemu.py -- boot the appliance under qemu (software emulation).

As a program, for a person:
    python3 image/qemu.py [--uefi] [--port 2525] [--kvm] build/image/moat.img
boots the disk with the serial console on this terminal (Ctrl-A X quits
qemu; `system_powerdown` in the monitor, Ctrl-A C, is the power button)
and forwards 127.0.0.1:PORT to the appliance's port 25.

As a module, for the tests and image/measure.sh: Appliance(...) starts
qemu in the background with the console in a file, a QMP socket for the
power button, user networking restricted to the forwards it is given
(restrict=on: the guest reaches nothing else), and waits are bounded.

The appliance must be configured for qemu's user network: net-address
10.0.2.15/24 (the address host forwards go to) and net-gateway 10.0.2.2.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

OVMF = "/usr/share/ovmf/OVMF.fd"
GUEST_ADDR = "10.0.2.15"


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def qemu_argv(disk, uefi=False, port=None, guestfwd=(), serial="stdio", qmp=None,
              kvm=False, mem=256, tap=None, mac=None, rtc=None, cdrom=None, reboot=False,
              disk2=None):
    """The qemu command line.  guestfwd: (guest_ip, guest_port, command)
    triples: qemu runs command for each connection the guest opens to
    guest_ip:guest_port, the connection on its stdin and stdout (qemu's
    tcp: form connects once, at start, and serves a single connection).
    tap: the name of a tap device to plug the NIC into instead of qemu's
    user network (mac its address); rtc: the guest's clock at start
    ("2001-02-03T04:05:06"); cdrom: an ISO on the SATA CD-ROM drive
    (device id "cd", its medium changed with change_cdrom(); "" for an
    empty drive); disk2: a second virtio disk (raw); reboot: a guest
    reboot restarts it instead of ending qemu."""
    fmt = "qcow2" if disk.endswith(".qcow2") else "raw"
    if tap:
        net = "tap,id=n0,ifname=%s,script=no,downscript=no" % tap
    else:
        net = "user,id=n0,restrict=on"
        if port:
            net += ",hostfwd=tcp:127.0.0.1:%d-%s:25" % (port, GUEST_ADDR)
        for gip, gport, command in guestfwd:
            net += ",guestfwd=tcp:%s:%d-cmd:%s" % (gip, gport, command.replace(",", ",,"))
    nic = "virtio-net-pci,netdev=n0,romfile=" + (",mac=" + mac if mac else "")
    argv = ["qemu-system-x86_64", "-nodefaults", "-machine", "q35",
            "-accel", "kvm" if kvm else "tcg", "-m", str(mem), "-smp", "1",
            "-display", "none", "-serial", serial,
            "-drive", "file=%s,format=%s,if=none,id=d0" % (disk, fmt),
            "-device", "virtio-blk-pci,drive=d0,bootindex=0",
            "-netdev", net, "-device", nic]
    if not reboot:
        argv.append("-no-reboot")
    if rtc:
        argv += ["-rtc", "base=" + rtc]
    if cdrom is not None:
        argv += ["-drive", ("file=%s,format=raw," % cdrom if cdrom else "") +
                 "if=none,id=cdm,media=cdrom,readonly=on",
                 "-device", "ide-cd,drive=cdm,bus=ide.1,id=cd"]
    if disk2:
        argv += ["-drive", "file=%s,format=raw,if=none,id=d1" % disk2,
                 "-device", "virtio-blk-pci,drive=d1"]
    if uefi:
        argv += ["-bios", OVMF]
    if qmp:
        argv += ["-qmp", "unix:%s,server=on,wait=off" % qmp]
    return argv


class Appliance:
    """One qemu process booting disk; console text in log_path."""

    def __init__(self, disk, workdir, uefi=False, port=None, guestfwd=(), **kw):
        self.disk = disk
        self.uefi = uefi
        self.port = port or free_port()
        self.log_path = os.path.join(workdir, "console-%s-%d.log" % (
            "uefi" if uefi else "bios", int(time.time() * 1000) % 100000000))
        self.qmp_path = os.path.join(workdir, "qmp-%d.sock" % os.getpid())
        self.argv = qemu_argv(disk, uefi=uefi, port=self.port, guestfwd=guestfwd,
                              serial="file:" + self.log_path, qmp=self.qmp_path, **kw)
        self.proc = None
        self.started = None
        self.timed = []          # (seconds since start, console line), see timeline()

    def start(self):
        if os.path.exists(self.qmp_path):
            os.unlink(self.qmp_path)
        self.started = time.monotonic()
        with open(self.log_path + ".stderr", "wb") as err:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err)
        threading.Thread(target=self._tail, daemon=True).start()
        return self

    def _tail(self):
        """Stamp each console line with the time it appeared (read every
        10 ms): the boot-time breakdown of image/measure.sh."""
        pos, part = 0, b""
        while self.proc.poll() is None:
            try:
                with open(self.log_path, "rb") as f:
                    f.seek(pos)
                    data = f.read()
            except OSError:
                data = b""
            pos += len(data)
            now = time.monotonic() - self.started
            part += data
            while b"\n" in part:
                line, part = part.split(b"\n", 1)
                self.timed.append((now, line.decode("utf-8", "replace").rstrip("\r")))
            time.sleep(0.01)

    def timeline(self):
        """The console lines so far, each with the seconds since qemu started
        at which it was first seen."""
        return list(self.timed)

    def console(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace").replace("\r", "")
        except OSError:
            return ""

    def wait_console(self, text, seconds):
        """Wait until the console shows text; returns True if it did."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if text in self.console():
                return True
            if self.proc.poll() is not None:
                return text in self.console()
            time.sleep(0.2)
        return False

    def wait_banner(self, seconds, host="127.0.0.1", port=None):
        """Connect through the port forward (or to host:port) until the
        server greets.  Returns (greeting line, seconds since start) or
        (None, last error).  The forward accepts at once and closes when
        the guest refuses, so only a real "220 " line counts.  A probe
        starts every 0.2 s, each waiting up to 5 s on its own: one whose
        SYN reached the guest before it listened (qemu's user network
        then retries it seconds later) does not hold up the next."""
        end = time.monotonic() + seconds
        port = port or self.port
        found, errors = [], ["no attempt"]
        lock = threading.Lock()

        def probe():
            try:
                with socket.create_connection((host, port), timeout=5) as s:
                    s.settimeout(5)
                    data = s.recv(512)
                    if data.startswith(b"220 "):
                        t = time.monotonic() - self.started
                        line = data.split(b"\r\n")[0].decode("ascii", "replace")
                        s.sendall(b"QUIT\r\n")
                        with lock:
                            found.append((t, line))
                        return
                    errors.append("got %r" % data)
            except OSError as e:
                errors.append(str(e))

        threads = []
        while time.monotonic() < end and not found:
            if self.proc.poll() is not None:
                return None, "qemu exited with %s" % self.proc.returncode
            th = threading.Thread(target=probe, daemon=True)
            th.start()
            threads = [t for t in threads if t.is_alive()] + [th]
            time.sleep(0.2)
        for th in threads:
            th.join(5.5)
        with lock:
            if found:
                t, line = min(found)
                return line, t
        return None, errors[-1]

    def qmp(self, command, arguments=None, seconds=10):
        """Run one QMP command; returns its reply object."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(seconds)
        try:
            s.connect(self.qmp_path)
            f = s.makefile("rwb")
            json.loads(f.readline())  # greeting
            for req in ({"execute": "qmp_capabilities"},
                        dict({"execute": command}, **({"arguments": arguments} if arguments else {}))):
                f.write(json.dumps(req).encode() + b"\n")
                f.flush()
                while True:
                    reply = json.loads(f.readline())
                    if "return" in reply or "error" in reply:
                        break
            return reply
        finally:
            s.close()

    def power_button(self):
        return self.qmp("system_powerdown")

    def ctrl_alt_del(self):
        keys = [{"type": "qcode", "data": k} for k in ("ctrl", "alt", "delete")]
        return self.qmp("send-key", {"keys": keys})

    def change_cdrom(self, iso):
        """Put another disc in the CD-ROM drive (the guest sees it at its
        next look, the next boot)."""
        return self.qmp("blockdev-change-medium", {"id": "cd", "filename": iso, "format": "raw"})

    def wait_exit(self, seconds):
        """Wait for qemu to exit (the guest powered off); returns its
        status, or None if it is still running."""
        try:
            return self.proc.wait(seconds)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        """Pull the plug: SIGKILL to qemu, nothing flushed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stderr(self):
        """What qemu itself said (not the guest)."""
        try:
            with open(self.log_path + ".stderr", "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


UPTIME_RE = re.compile(r"event=boot .*uptime=([0-9.]+)")


def breakdown(timeline, total):
    """Split the seconds to 220 into (firmware + loader, kernel to /init,
    /init to 220), from the console: the host's time of moat's first line
    (event=boot) and the kernel's uptime it carries (seconds since the
    kernel started its clock, after the boot loader and the kernel's
    decompression).  None when the line is missing."""
    for t, line in timeline:
        m = UPTIME_RE.search(line)
        if m:
            up = float(m.group(1))
            return (t - up, up, total - t)
    return None


TAP_HOST, TAP_GUEST = "10.0.3.1", "10.0.3.50"


def private_tap():
    """This process into a network namespace of its own, with a tap device
    "tap0" at TAP_HOST/24 (root only).  qemu's user network delays the
    first connections after the guest starts listening by a second or two
    (its own TCP and ARP timers); a tap shows the appliance's time alone."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x40000000) != 0:   # CLONE_NEWNET
        raise OSError(ctypes.get_errno(), "unshare")
    for argv in (["ip", "link", "set", "lo", "up"], ["ip", "tuntap", "add", "dev", "tap0", "mode", "tap"],
                 ["ip", "addr", "add", TAP_HOST + "/24", "dev", "tap0"], ["ip", "link", "set", "tap0", "up"]):
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)


def cpu_seconds(pid):
    """The user and system CPU time process pid has used, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_to_banner(disk, workdir, uefi, seconds=300, tap=False):
    """Boot disk (configured for qemu's user network: 10.0.2.15, or with
    tap for private_tap()'s: TAP_GUEST), return (seconds from starting qemu
    to the 220, breakdown() of it, qemu's CPU seconds until then); power
    off after."""
    if tap:
        private_tap()
    vm = Appliance(disk, workdir, uefi=uefi, tap="tap0" if tap else None).start()
    try:
        line, t = vm.wait_banner(seconds, host=TAP_GUEST if tap else "127.0.0.1",
                                 port=25 if tap else None)
        if line is None:
            raise RuntimeError("no 220 within %ds: %s" % (seconds, t))
        parts = breakdown(vm.timeline(), t)
        cpu = cpu_seconds(vm.proc.pid)
        vm.power_button()
        if vm.wait_exit(60) is None:
            raise RuntimeError("no power-off within 60 s")
        return t, parts, cpu
    finally:
        vm.kill()
        for f in (vm.log_path, vm.log_path + ".stderr"):
            if os.path.exists(f):
                os.unlink(f)


def main():
    args = sys.argv[1:]
    if args[:1] == ["--time"]:
        # image/measure.sh: --time bios|uefi DISK WORKDIR [--tap] -> "total
        # firmware+loader kernel-to-init init-to-220 cpu" in seconds (the
        # middle three "-" when unknown)
        t, parts, cpu = time_to_banner(args[2], args[3], args[1] == "uefi", tap="--tap" in args)
        print("%.2f %s %.2f" % (t, " ".join("%.2f" % p for p in parts) if parts else "- - -", cpu))
        return
    uefi = "--uefi" in args
    kvm = "--kvm" in args
    port = 2525
    if "--port" in args:
        port = int(args[args.index("--port") + 1])
        del args[args.index("--port"):args.index("--port") + 2]
    args = [a for a in args if a not in ("--uefi", "--kvm")]
    if len(args) != 1:
        sys.stderr.write("usage: image/qemu.py [--uefi] [--port N] [--kvm] DISK\n")
        sys.exit(100)
    argv = qemu_argv(args[0], uefi=uefi, port=port, serial="mon:stdio", kvm=kvm)
    sys.stderr.write("image/qemu.py: 127.0.0.1:%d -> appliance port 25; Ctrl-A X quits\n" % port)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main()
