"""tests/image/netlab.py -- a network for the appliance under test: a
network namespace of this test's own, a tap device the guest's NIC is
plugged into, and real peers on the host side of it:

  - dnsmasq: DHCPv4 (a short lease: renewal within seconds), DNS for the
    names the configs use, IPv6 router advertisements with RDNSS;
  - an SNTP server (RFC 4330), answering with this machine's clock;
  - syslog receivers: UDP (RFC 5426), TCP with octet counting (RFC 6587),
    TLS (RFC 5425, Python's ssl with a test CA), each stoppable;
  - a next hop that answers 421 to every connection.

enter() moves the calling process (and everything it starts afterwards)
into a new network namespace: nothing here touches the machine's own
network.  It must be called before any thread is started.
"""

import ctypes
import os
import socket
import ssl
import struct
import subprocess
import threading
import time

HOST_IP = "10.0.3.1"
GUEST_IP = "10.0.3.50"
HOST_IP6 = "fd00:3::1"
PREFIX6 = "fd00:3::"
TAP = "tap0"
GUEST_MAC = "52:54:00:00:03:50"
CLONE_NEWNET = 0x40000000


def sh(*argv):
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    if r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(argv), r.stderr.decode()[-500:]))
    return r.stdout.decode()


def enter():
    """A new network namespace for this process: lo up, and tap0 with
    HOST_IP/24 and HOST_IP6/64 for qemu's -netdev tap."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
    sh("ip", "link", "set", "lo", "up")
    sh("ip", "tuntap", "add", "dev", TAP, "mode", "tap")
    sh("ip", "addr", "add", HOST_IP + "/24", "dev", TAP)
    sh("ip", "-6", "addr", "add", HOST_IP6 + "/64", "dev", TAP, "nodad")
    sh("ip", "link", "set", TAP, "up")


class Dnsmasq:
    """dnsmasq on tap0: a DHCP lease of 120 s (its minimum) renewed at T1
    (seconds), the router, DNS and NTP server all HOST_IP, GUEST_IP fixed
    for GUEST_MAC; each of names answered over DNS as HOST_IP and
    HOST_IP6; router advertisements for PREFIX6/64 with HOST_IP6 as RDNSS."""

    def __init__(self, work, t1=8, names=None):
        self.log = os.path.join(work, "dnsmasq.log")
        argv = ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
                "--no-hosts", "--interface=" + TAP, "--bind-interfaces", "--user=root",
                "--pid-file=" + os.path.join(work, "dnsmasq.pid"),
                "--dhcp-leasefile=" + os.path.join(work, "dnsmasq.leases"),
                "--log-facility=" + self.log, "--log-dhcp",
                "--dhcp-range=10.0.3.50,10.0.3.99,255.255.255.0,2m",
                "--dhcp-host=%s,%s" % (GUEST_MAC, GUEST_IP),
                "--dhcp-option=option:router," + HOST_IP,
                "--dhcp-option=option:dns-server," + HOST_IP,
                "--dhcp-option=option:ntp-server," + HOST_IP,
                "--dhcp-option=option:T1,%d" % t1,
                "--dhcp-option=option:T2,%d" % (t1 * 3),
                "--enable-ra", "--dhcp-range=%s,ra-only,64" % PREFIX6,
                "--dhcp-option=option6:dns-server,[%s]" % HOST_IP6]
        for name in names or ():
            # Both families: dnsmasq refuses what it has no answer for,
            # and a resolver waits out its timeouts on a refusal.
            argv.append("--address=/%s/%s" % (name, HOST_IP))
            argv.append("--address=/%s/%s" % (name, HOST_IP6))
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        time.sleep(0.3)
        if self.proc.poll() is not None:
            raise RuntimeError("dnsmasq: %s" % self.proc.stderr.read().decode())

    def text(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def _serve(sock, handle):
    def loop():
        while True:
            try:
                handle(sock)
            except OSError:
                return
    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


class Sntp:
    """An SNTP server on HOST_IP:123 answering with this machine's clock
    (stratum 2, its transmit time echoed as originate)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST_IP, 123))
        self.requests = 0
        _serve(self.sock, self._one)

    @staticmethod
    def ntp_now():
        t = time.time() + 2208988800
        return (int(t) << 32) | int((t % 1) * (1 << 32))

    def _one(self, sock):
        data, peer = sock.recvfrom(512)
        recv = self.ntp_now()
        if len(data) < 48 or data[0] & 7 != 3:
            return
        self.requests += 1
        reply = bytearray(48)
        reply[0] = (0 << 6) | (4 << 3) | 4
        reply[1] = 2
        reply[2] = data[2]
        reply[3] = 0xec
        reply[12:16] = socket.inet_aton(HOST_IP)
        struct.pack_into(">Q", reply, 16, recv)
        reply[24:32] = data[40:48]
        struct.pack_into(">Q", reply, 32, recv)
        struct.pack_into(">Q", reply, 40, self.ntp_now())
        sock.sendto(bytes(reply), peer)


def unframe(buf):
    """RFC 6587 octet-counted frames: (messages, rest)."""
    out = []
    while True:
        sp = buf.find(b" ")
        if sp <= 0 or not buf[:sp].isdigit():
            return out, buf
        n = int(buf[:sp])
        if len(buf) < sp + 1 + n:
            return out, buf
        out.append(buf[sp + 1:sp + 1 + n].decode("utf-8", "replace"))
        buf = buf[sp + 1 + n:]


class SyslogReceiver:
    """A syslog server on (host, port): "udp", "tcp" (octet counting) or
    "tls" (octet counting in TLS, with certfile/keyfile).  messages holds
    every message received; stop() closes it (the port refuses), start()
    opens it again."""

    def __init__(self, kind, host, port, certfile=None, keyfile=None):
        self.kind, self.host, self.port = kind, host, port
        self.messages = []
        self.ctx = None
        if kind == "tls":
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(certfile, keyfile)
        self.sock = None
        self.conns = []
        self.start()

    def _socket(self, kind):
        """On host, or both families when host is "::"."""
        fam = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        s = socket.socket(fam, kind)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        return s

    def start(self):
        if self.kind == "udp":
            self.sock = self._socket(socket.SOCK_DGRAM)
            _serve(self.sock, lambda s: self.messages.append(
                s.recv(65536).decode("utf-8", "replace")))
        else:
            self.sock = self._socket(socket.SOCK_STREAM)
            self.sock.listen(16)
            _serve(self.sock, self._accept)

    def _accept(self, sock):
        conn, _ = sock.accept()
        if self.ctx is not None:
            conn.settimeout(30)
            try:
                conn = self.ctx.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError):
                conn.close()
                return
            conn.settimeout(None)
        self.conns.append(conn)

        def reader():
            buf = b""
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                msgs, buf = unframe(buf + data)
                self.messages.extend(msgs)
        threading.Thread(target=reader, daemon=True).start()

    def stop(self):
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        self.conns = []
        # shutdown() first: it wakes the thread blocked in accept() or
        # recv() on the socket, which close() alone would leave bound.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def wait(self, text, seconds):
        """The first message holding text, waiting up to seconds; or None."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for m in list(self.messages):
                if text in m:
                    return m
            time.sleep(0.2)
        return None


class Deferrer:
    """An SMTP next hop on (host, port) that answers every connection with
    a 421 and closes it: what it is handed stays queued."""

    def __init__(self, host, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.connections = 0
        _serve(self.sock, self._one)

    def _one(self, sock):
        conn, _ = sock.accept()
        self.connections += 1
        try:
            conn.sendall(b"421 4.3.2 mx.host not now\r\n")
        finally:
            conn.close()
