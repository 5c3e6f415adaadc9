"""tests/deliver/dnsad.py -- a small authoritative DNS server for tests
that need what dnsmasq cannot give: the AD bit ("the resolver validated
this") set or not per name, as the test says, and TLSA and TXT records
(also malformed ones).  Stdlib only; UDP and TCP on 127.0.0.1:port.

    z = Zone()
    z.a("mx.dane.test", "127.0.0.2"); z.mx("dane.test", "mx.dane.test", 10)
    z.tlsa("_25._tcp.mx.dane.test", 3, 1, 1, digest)
    z.validated("dane.test")          # AD on every answer at or under dane.test
    srv = DnsServer(z)                # .port, .queries [(name, type, do_bit)]

A name the zone does not hold is NXDOMAIN, a type it does not hold for a
held name is NODATA (both with the AD bit of the name's zone, as a
validating resolver says of a signed denial).  An EDNS0 query gets an OPT
record back with its DO bit.  Raw rdata can be given for hostile records.
"""

import socket
import struct
import threading

T_A, T_MX, T_TXT, T_AAAA, T_OPT, T_TLSA = 1, 15, 16, 28, 41, 52


def _name(n):
    out = b""
    for label in n.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def _read_name(msg, off):
    labels = []
    while True:
        n = msg[off]
        if n == 0:
            return ".".join(labels).lower(), off + 1
        if n & 0xC0:
            raise ValueError("compression in a question")
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += 1 + n


class Zone:
    def __init__(self):
        self.rr = {}            # name -> [(type, rdata bytes)]
        self.ad = set()         # names (and everything under them) answered with AD
        self.lock = threading.Lock()

    def add(self, name, rtype, rdata):
        with self.lock:
            self.rr.setdefault(name.lower().rstrip("."), []).append((rtype, rdata))

    def clear(self, name, rtype=None):
        with self.lock:
            name = name.lower().rstrip(".")
            self.rr[name] = [r for r in self.rr.get(name, []) if rtype is not None and r[0] != rtype]

    def a(self, name, addr):
        self.add(name, T_A, socket.inet_aton(addr))

    def mx(self, name, host, pref=10):
        self.add(name, T_MX, struct.pack(">H", pref) + _name(host))

    def txt(self, name, *strings):
        data = b""
        for s in strings:
            b = s.encode() if isinstance(s, str) else s
            data += bytes([len(b)]) + b
        self.add(name, T_TXT, data)

    def tlsa(self, name, usage, selector, mtype, data):
        self.add(name, T_TLSA, bytes([usage, selector, mtype]) + data)

    def validated(self, name, on=True):
        with self.lock:
            (self.ad.add if on else self.ad.discard)(name.lower().rstrip("."))

    def is_validated(self, name):
        with self.lock:
            parts = name.split(".")
            return any(".".join(parts[i:]) in self.ad for i in range(len(parts)))

    def lookup(self, name):
        with self.lock:
            return list(self.rr[name]) if name in self.rr else None


class DnsServer:
    def __init__(self, zone, host="127.0.0.1", port=53):
        self.zone = zone
        self.port = port
        self.queries = []       # (name, type, do bit)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((host, port))
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((host, port))
        self.tcp.listen(8)
        self.running = True
        for fn in (self._serve_udp, self._serve_tcp):
            threading.Thread(target=fn, daemon=True).start()

    def answer(self, q):
        qid, flags, qd = struct.unpack(">HHH", q[:6])
        if qd != 1:
            return None
        name, off = _read_name(q, 12)
        qtype, qclass = struct.unpack(">HH", q[off:off + 4])
        qend = off + 4
        do = False
        arcount = struct.unpack(">H", q[10:12])[0]
        if arcount and q[qend:qend + 3] == b"\x00\x00\x29":   # OPT, root name
            ttl = struct.unpack(">I", q[qend + 5:qend + 9])[0]
            do = bool(ttl & 0x8000)
        self.queries.append((name, qtype, do))
        rrs = self.zone.lookup(name)
        rcode = 3 if rrs is None else 0
        answers = [r for r in (rrs or []) if r[0] == qtype]
        rflags = 0x8400 | (flags & 0x0100) | 0x0080 | rcode   # QR AA, RD copied, RA
        if self.zone.is_validated(name):
            rflags |= 0x0020                                  # AD
        out = struct.pack(">HHHHHH", qid, rflags, 1, len(answers), 0, 1 if arcount else 0)
        out += q[12:qend]
        for rtype, rdata in answers:
            out += b"\xc0\x0c" + struct.pack(">HHIH", rtype, 1, 300, len(rdata)) + rdata
        if arcount:
            out += b"\x00" + struct.pack(">HHIH", T_OPT, 1232, 0x8000 if do else 0, 0)
        return out

    def _serve_udp(self):
        while self.running:
            try:
                q, peer = self.udp.recvfrom(4096)
                a = self.answer(q)
                if a is not None:
                    self.udp.sendto(a, peer)
            except Exception:   # noqa: a bad query is dropped, the server goes on
                if not self.running:
                    return

    def _serve_tcp(self):
        while self.running:
            try:
                c, _ = self.tcp.accept()
            except OSError:
                return
            try:
                c.settimeout(5)
                n = struct.unpack(">H", c.recv(2))[0]
                q = b""
                while len(q) < n:
                    d = c.recv(n - len(q))
                    if not d:
                        break
                    q += d
                a = self.answer(q)
                if a is not None:
                    c.sendall(struct.pack(">H", len(a)) + a)
            except Exception:   # noqa
                pass
            finally:
                c.close()

    def stop(self):
        self.running = False
        self.udp.close()
        self.tcp.close()
