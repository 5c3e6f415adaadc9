"""tests/proxy/test_haproxy_headers.py -- the headers a real HAProxy sends
parse to the right addresses.

Debian's haproxy forwards, in TCP mode, to plain Python sockets that keep
every byte they get; each client binds its own loopback address
(127.0.0.x, or ::1), sends one line, and the bytes the socket got are
given to policy/proxy.h's parser (build/musl/unit/test_proxy --parse).
The header must parse to the client's own address and port and the
frontend's, its length must end exactly where the client's line begins,
and the session's address (proxy_client) must be the client's.  Kinds:
send-proxy (v1, TCP4 and TCP6), send-proxy-v2 (INET, INET6, and an IPv4
client on a dual-stack bind), v2 with CRC32C and a unique ID, v2 from a
TLS frontend with the SSL, ALPN and authority TLVs, and the LOCAL header
of HAProxy's own health check (check-send-proxy).

The headers are kept in $BUILD/t/proxy-headers-*/ for reading (the
seeds in tests/fuzz/corpus/proxy/haproxy-* were taken this way).
"""

import os
import socket
import ssl
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tls"))
from haproxylib import HAProxy  # noqa: E402
import moatlib  # noqa: E402
from moatlib import BUILD, Failure, case, check, eq, free_port, main  # noqa: E402
import tlslib  # noqa: E402

PARSER = os.path.join(BUILD, "musl", "unit", "test_proxy")
LINE = b"EHLO client.example\r\n"
OUT = os.path.abspath(os.path.join(BUILD, "t", "proxy-headers-%d" % os.getpid()))


class Sink(threading.Thread):
    """A listening socket that keeps, per connection, every byte it gets
    until the peer closes or LINE has come."""

    def __init__(self, family=socket.AF_INET):
        super().__init__(daemon=True)
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1" if family == socket.AF_INET else "::1", 0))
        self.sock.listen(16)
        self.sock.settimeout(60)
        self.port = self.sock.getsockname()[1]
        self.got = []
        self.cond = threading.Condition()

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(5)
            data = b""
            try:
                while not data.endswith(LINE):
                    d = conn.recv(4096)
                    if not d:
                        break
                    data += d
            except OSError:
                pass   # a health check may reset; what came is kept
            conn.close()
            with self.cond:
                self.got.append(data)
                self.cond.notify_all()

    def take(self, seconds=10):
        """The next connection's bytes."""
        deadline = time.monotonic() + seconds
        with self.cond:
            while not self.got:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Failure("nothing reached the backend socket in %ds" % seconds)
                self.cond.wait(left)
            return self.got.pop(0)


def parse(name, data):
    """{field: value} of the parser's line for data (kept as OUT/name)."""
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, name)
    with open(path, "wb") as f:
        f.write(data)
    check(os.path.exists(PARSER), "no %s (make build/musl/unit/test_proxy)" % PARSER)
    r = subprocess.run([PARSER, "--parse", path], stdout=subprocess.PIPE, timeout=30)
    eq(r.returncode, 0, "test_proxy --parse exit status")
    words = r.stdout.decode().split()
    check(words and words[0] == path, "parser output %r" % r.stdout)
    return dict(w.split("=", 1) for w in words[1:])


_env = {}


def env():
    """Sinks, one HAProxy with a frontend for each kind of header, and the
    certificate of its TLS frontend."""
    if "h" in _env:
        if isinstance(_env["h"], Failure):
            raise _env["h"]
        return _env
    try:
        sinks = {k: Sink() for k in ("v1", "v2", "v2x", "tls", "check", "check1")}
        for s in sinks.values():
            s.start()
        fronts = {k: free_port() for k in ("v1", "v2", "v2x", "tls", "dual")}
        fronts["v1_6"] = free_port(socket.AF_INET6)
        fronts["v2_6"] = free_port(socket.AF_INET6)
        crt, key = tlslib.make_pair("haproxy-lb", "ec", cn="lb.example.test")
        pem = os.path.join(tlslib.CERT_DIR, "haproxy-lb.pem")
        with open(pem, "w") as f:
            f.write(open(crt).read() + open(key).read())
        cfg = """
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend f_v1
    bind 127.0.0.1:{v1}
    bind [::1]:{v1_6}
    default_backend b_v1
frontend f_v2
    bind 127.0.0.1:{v2}
    bind [::1]:{v2_6}
    bind [::]:{dual} v4v6
    default_backend b_v2
frontend f_v2x
    bind 127.0.0.1:{v2x}
    unique-id-format %{{+X}}o\\ %ci:%cp_%fi:%fp_%Ts_%rt:%pid
    default_backend b_v2x
frontend f_tls
    bind 127.0.0.1:{tls} ssl crt {pem} alpn smtp
    default_backend b_tls
backend b_v1
    server s 127.0.0.1:{s_v1} send-proxy
backend b_v2
    server s 127.0.0.1:{s_v2} send-proxy-v2
backend b_v2x
    server s 127.0.0.1:{s_v2x} send-proxy-v2 proxy-v2-options crc32c,unique-id
backend b_tls
    server s 127.0.0.1:{s_tls} send-proxy-v2 proxy-v2-options ssl,cert-cn,ssl-cipher,cert-sig,cert-key,authority,crc32c
backend b_check
    server s 127.0.0.1:{s_check} send-proxy-v2 check check-send-proxy inter 30s
backend b_check1
    server s 127.0.0.1:{s_check1} send-proxy check check-send-proxy inter 30s
""".format(pem=pem, **fronts, **{"s_" + k: s.port for k, s in sinks.items()})
        h = HAProxy("headers", cfg)
    except Failure as e:
        _env["h"] = e
        raise
    _env.update(h=h, sinks=sinks, fronts=fronts)
    return _env


def through(kind, source, front=None, v6=False, tls=False):
    """Connect from source to frontend front (default kind), send LINE,
    and return (the backend's bytes, client (addr, port), frontend port)."""
    e = env()
    port = e["fronts"][front or kind]
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    s.bind((source, 0))
    s.connect(("::1" if v6 else "127.0.0.1", port))
    me = s.getsockname()[:2]
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["smtp"])
        s = ctx.wrap_socket(s, server_hostname="mx.example.test")
    s.sendall(LINE)
    data = e["sinks"][kind].take()
    s.close()
    return data, me, port


def forwarded(name, data, me, port, version, dst="127.0.0.1", src=None, client=None):
    """The header in data names client me, frontend dst:port, and ends
    where LINE begins."""
    p = parse(name, data)
    check(data.endswith(LINE), "%s: the client's line did not follow: %r" % (name, data[-40:]))
    eq(int(p["result"]), len(data) - len(LINE), "%s: header length" % name)
    eq(p["version"], str(version), "%s: version" % name)
    eq(p["kind"], "forwarded", "%s: kind" % name)
    eq(p["src"], src or me[0], "%s: source address" % name)
    eq(p["sport"], str(me[1]), "%s: source port" % name)
    eq(p["dst"], dst, "%s: destination address" % name)
    eq(p["dport"], str(port), "%s: destination port" % name)
    eq(p["client"], client or me[0], "%s: the session's address" % name)
    return p


@case
def test_v1_tcp4():
    data, me, port = through("v1", "127.0.0.7")
    check(data.startswith(b"PROXY TCP4 127.0.0.7 127.0.0.1 "), repr(data))
    forwarded("v1-tcp4", data, me, port, 1)


@case
def test_v1_tcp6():
    data, me, port = through("v1", "::1", front="v1_6", v6=True)
    check(data.startswith(b"PROXY TCP6 ::1 ::1 "), repr(data))
    forwarded("v1-tcp6", data, me, port, 1, dst="::1")


@case
def test_v2_inet():
    data, me, port = through("v2", "127.0.0.7")
    check(data[12:14] == b"\x21\x11", "want PROXY over INET STREAM: %r" % data[:16])
    p = forwarded("v2-inet", data, me, port, 2)
    eq(p["ntlv"], "0", "TLVs")


@case
def test_v2_inet6():
    data, me, port = through("v2", "::1", front="v2_6", v6=True)
    check(data[12:14] == b"\x21\x21", "want PROXY over INET6 STREAM: %r" % data[:16])
    forwarded("v2-inet6", data, me, port, 2, dst="::1")


@case
def test_v2_dual_stack():
    # An IPv4 client of an IPv6 socket: HAProxy sees ::ffff:127.0.0.9 and
    # may say so (INET6) or unmap it (INET); the session's address is the
    # IPv4 one either way.
    data, me, port = through("v2", "127.0.0.9", front="dual")
    p = parse("v2-dual-stack", data)
    check(p["src"] in ("127.0.0.9", "::ffff:127.0.0.9"), "src %s" % p["src"])
    check(p["dst"] in ("127.0.0.1", "::ffff:127.0.0.1"), "dst %s" % p["dst"])
    eq(p["sport"], str(me[1]), "source port")
    eq(p["client"], "127.0.0.9", "the session's address")
    eq(int(p["result"]), len(data) - len(LINE), "header length")


@case
def test_v2_crc32c_unique_id():
    data, me, port = through("v2x", "127.0.0.7")
    p = forwarded("v2-crc32c-unique-id", data, me, port, 2)
    eq(p["crc32c"], "1", "the CRC32C TLV was checked")
    eq(p["ntlv"], "2", "TLVs (CRC32C, unique ID)")
    # A CRC that HAProxy signed fails once a byte of the address changes.
    bad = bytearray(data)
    bad[19] ^= 0x01   # the source address's last byte
    eq(parse("v2-crc32c-changed", bytes(bad))["result"], "-1", "a changed header")


@case
def test_v2_tls_tlvs():
    data, me, port = through("tls", "127.0.0.8", tls=True)
    p = forwarded("v2-tls-tlvs", data, me, port, 2)
    eq(p["crc32c"], "1", "the CRC32C TLV was checked")
    check(int(p["ntlv"]) >= 4, "TLVs: want CRC32C, ALPN, authority and SSL, got %s" % p["ntlv"])
    check(b"mx.example.test" in data and b"smtp" in data, "SNI and ALPN in the TLVs: %r" % data)


@case
def test_v2_local_health_check():
    e = env()
    data = e["sinks"]["check"].take(seconds=15)
    p = parse("v2-local", data)
    check(int(p["result"]) > 0, "HAProxy's health check header: %r -> %r" % (data, p))
    eq(p["kind"], "local", "the health check's kind")
    eq(p["client"], "203.0.113.254", "LOCAL: the session keeps the peer's address")
    eq(int(p["result"]), len(data), "nothing after the header")


@case
def test_v1_health_check():
    # v1 has no LOCAL: HAProxy's check says UNKNOWN, or the check's own
    # connection as TCP4; either parses, and is the proxy's own.
    e = env()
    data = e["sinks"]["check1"].take(seconds=15)
    p = parse("v1-check", data)
    check(int(p["result"]) > 0, "HAProxy's v1 health check header: %r -> %r" % (data, p))
    check(p["kind"] in ("unknown", "forwarded"), "kind %s" % p["kind"])
    if p["kind"] == "forwarded":
        check(p["src"].startswith("127."), "the check's own address: %s" % p["src"])


if __name__ == "__main__":
    main()
