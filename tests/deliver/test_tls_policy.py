"""tests/deliver/test_tls_policy.py -- authenticated TLS toward MX hosts
(issue 16, docs/tls-policy.md): MTA-STS (RFC 8461) and DANE (RFC 7672)
in delivery, the tls-policy= key of the delivery log, and the day's TLS
report (`moat tls-report`, RFC 8460).

The whole file runs in a network namespace of its own (unshare --net, as
root), so that everything listens on the standard ports of loopback
addresses: tests/deliver/dnsad.py answers DNS on 127.0.0.1:53 and sets
the AD bit for the zones the test calls validated (moat runs with
`dns-dnssec trusted`); Python's http.server with ssl serves the MTA-STS
policies on 127.0.0.30:443 (and 127.0.0.31:443 for the cache case) with
a certificate of the test's own CA (moat's tls-ca-file); aiosmtpd next
hops on port 25 of 127.0.0.2... offer STARTTLS with certificates that
match or not.  Certificates come from openssl.

Cases: enforce + good certificate -> delivered over verified TLS;
enforce + MX host not in the policy / a certificate naming another host /
no STARTTLS -> deferred 4.7.5, no DATA; testing -> delivered, the failure
logged and in the report; the policy cached across a restart while its
HTTPS server is down; a malformed policy file; DANE-EE match and
mismatch (the next MX host, or deferred); DANE-TA; TLSA without the AD
bit not used; malformed TLSA records; DANE before MTA-STS.

ASAN_OK
Run:  BUILD=build MOAT=build/moat /usr/bin/python3 tests/deliver/test_tls_policy.py [case ...]
"""

import hashlib
import http.server
import json
import os
import re
import ssl
import subprocess
import sys
import threading
import time

if os.environ.get("MOAT_IN_NETNS") != "1":
    os.environ["MOAT_IN_NETNS"] = "1"
    try:
        os.execvp("unshare", ["unshare", "--net", "--", sys.executable] + sys.argv)
    except OSError as e:
        print("FAIL: netns\nerror: netns: cannot run unshare --net (root needed): %s" % e)
        sys.exit(1)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "smtp"))
import moatlib  # noqa: E402
from moatlib import BUILD, Server, case, check, eq, queued_id  # noqa: E402
from sinklib import Sink, attempted, log_text, main, wait_for, wait_gone, _stoppers  # noqa: E402
from dnsad import DnsServer, Zone  # noqa: E402

SENDER = "alice@sender.test"
CERTS = os.path.abspath(os.path.join(BUILD, "t", "tls-policy-%d" % os.getpid()))
STS_ID = "20261207"
_net = {}


# ---- certificates -------------------------------------------------------

def openssl(*args, input=None):
    r = subprocess.run(["openssl"] + list(args), input=input, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    eq(r.returncode, 0, "openssl %s: %s" % (args[0], r.stderr.decode()[-500:]))
    return r.stdout


def ec_key(name):
    path = os.path.join(CERTS, name + ".key")
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)
    return path


def make_ca():
    key = ec_key("ca")
    crt = os.path.join(CERTS, "ca.crt")
    openssl("req", "-x509", "-new", "-key", key, "-out", crt, "-days", "3", "-subj",
            "/CN=moat test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return crt, key


def leaf(name, names, ca=None):
    """A certificate for names (SAN) signed by ca (or self-signed):
    (chain file: leaf then CA, key file, leaf file)."""
    key = ec_key(name)
    crt = os.path.join(CERTS, name + ".crt")
    if ca is None:
        openssl("req", "-x509", "-new", "-key", key, "-out", crt, "-days", "3", "-subj",
                "/CN=" + names[0], "-addext", "subjectAltName=" + ",".join("DNS:" + n for n in names))
        return crt, key, crt
    csr = os.path.join(CERTS, name + ".csr")
    ext = os.path.join(CERTS, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n" % ",".join("DNS:" + n for n in names))
    openssl("req", "-new", "-key", key, "-out", csr, "-subj", "/CN=" + names[0])
    openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
            "-out", crt, "-days", "2", "-extfile", ext)
    chain = os.path.join(CERTS, name + ".chain")
    with open(chain, "w") as f:
        f.write(open(crt).read() + open(ca[0]).read())
    return chain, key, crt


def spki_sha256(crt):
    pub = openssl("x509", "-in", crt, "-noout", "-pubkey")
    der = openssl("pkey", "-pubin", "-outform", "DER", input=pub)
    return hashlib.sha256(der).digest()


def tls_ctx(pair):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pair[0], pair[1])
    return ctx


# ---- the policy server --------------------------------------------------

class PolicyServer:
    """HTTPS on addr:443 serving /.well-known/mta-sts.txt per Host."""

    def __init__(self, addr, pair, policies):
        self.policies = policies          # host -> body (bytes)
        self.hits = []                    # hosts asked
        srv = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                host = (self.headers.get("Host") or "").split(":")[0].lower()
                srv.hits.append(host)
                body = srv.policies.get(host)
                if isinstance(body, tuple):       # (status, Location): a redirect
                    self.send_response(body[0])
                    self.send_header("Location", body[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path != "/.well-known/mta-sts.txt" or body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer((addr, 443), H)
        self.httpd.socket = tls_ctx(pair).wrap_socket(self.httpd.socket, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        _stoppers.append(self.stop)

    def stop(self):
        if self.httpd is not None:
            h, self.httpd = self.httpd, None
            h.shutdown()
            h.server_close()


def policy(mode, *mx):
    return ("version: STSv1\nmode: %s\n%smax_age: 86400\n"
            % (mode, "".join("mx: %s\n" % m for m in mx))).encode()


# ---- the network --------------------------------------------------------

def sts_domain(z, domain, addr, mx, web="127.0.0.30"):
    """domain's MX mx at addr, an MTA-STS TXT record, mta-sts.domain at web."""
    z.mx(domain, mx)
    z.a(mx, addr)
    z.txt("_mta-sts." + domain, "v=STSv1; id=%s;" % STS_ID)
    z.a("mta-sts." + domain, web)


def dane_host(z, domain, mx, addr, tlsa, pref=10, validated=True):
    z.mx(domain, mx, pref)
    z.a(mx, addr)
    for rec in tlsa:
        z.tlsa("_25._tcp." + mx, *rec)
    if validated:
        z.validated(domain)
        z.validated(mx)
        z.validated("_25._tcp." + mx)


def net():
    if _net:
        return _net
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    os.makedirs(CERTS, exist_ok=True)
    ca = make_ca()
    sts_names = ["mta-sts.%s.test" % d for d in
                 ("enf", "notin", "wrongname", "strip", "testing", "badpol", "cache", "both",
                  "redirect", "routed", "refresh")]
    _net["ca"] = ca
    web = leaf("web", sts_names, ca)
    certs = {
        "enf": leaf("enf", ["mx.enf.test"], ca),
        "notin": leaf("notin", ["mx.notin.test"], ca),
        "wrong": leaf("wrong", ["other.test"], ca),
        "cache": leaf("cache", ["mx.cache.test"], ca),
        "refresh": leaf("refresh", ["mx.refresh.test"], ca),
        "ee": leaf("ee", ["anything.example"]),            # self-signed: DANE-EE only
        "ee2": leaf("ee2", ["anything.example"]),
        "ta": leaf("ta", ["mx.daneta.test"], ca),
        "both": leaf("both", ["mx.both.test"]),
    }
    _net["certs"] = certs
    z = Zone()
    sts_domain(z, "enf.test", "127.0.0.2", "mx.enf.test")
    sts_domain(z, "notin.test", "127.0.0.3", "mx.notin.test")
    sts_domain(z, "wrongname.test", "127.0.0.4", "mx.wrongname.test")
    sts_domain(z, "strip.test", "127.0.0.5", "mx.strip.test")
    sts_domain(z, "testing.test", "127.0.0.6", "mx.testing.test")
    sts_domain(z, "badpol.test", "127.0.0.7", "mx.badpol.test")
    sts_domain(z, "cache.test", "127.0.0.8", "mx.cache.test", web="127.0.0.31")
    sts_domain(z, "redirect.test", "127.0.0.18", "mx.redirect.test")
    sts_domain(z, "refresh.test", "127.0.0.21", "mx.refresh.test", web="127.0.0.32")
    # A routed domain whose MTA-STS policy (enforce, no MX host listed) and
    # TLSA records (matching nothing) the route ignores.
    sts_domain(z, "routed.test", "127.0.0.19", "mx.routed.test")
    dane_host(z, "routed.test", "mx.routed.test", "127.0.0.19", [(3, 1, 1, b"\x00" * 32)])
    # enf.test's reports go to tlsrpt@reports.test (RFC 8460 3)
    z.txt("_smtp._tls.enf.test", "v=TLSRPTv1; rua=https://reports.test/x,mailto:tlsrpt@reports.test")
    z.mx("reports.test", "mx.reports.test")
    z.a("mx.reports.test", "127.0.0.20")
    z.mx("sender.test", "mx.sender.test")
    z.a("mx.sender.test", "127.0.0.9")
    ee, ee2 = spki_sha256(certs["ee"][2]), spki_sha256(certs["ee2"][2])
    # DANE-EE: a match; a mismatch first then a match; a mismatch alone
    dane_host(z, "daneee.test", "mx.daneee.test", "127.0.0.10", [(3, 1, 1, ee)])
    dane_host(z, "danemm.test", "mx1.danemm.test", "127.0.0.11", [(3, 1, 1, ee)], pref=10)
    dane_host(z, "danemm.test", "mx2.danemm.test", "127.0.0.12", [(3, 1, 1, ee2)], pref=20)
    dane_host(z, "danebad.test", "mx1.danemm.test", "127.0.0.11", [])
    # DANE-TA: the CA's key, which the server sends after its own certificate
    dane_host(z, "daneta.test", "mx.daneta.test", "127.0.0.13",
              [(2, 1, 1, spki_sha256(ca[0]))])
    # TLSA records that do not match, in a zone that is not validated
    dane_host(z, "noad.test", "mx.noad.test", "127.0.0.14", [(3, 1, 1, b"\x00" * 32)],
              validated=False)
    # Malformed TLSA records: one too short to hold its fields, one whose
    # SHA-256 is 5 bytes long (unusable: none usable, STARTTLS only)
    dane_host(z, "badtlsa.test", "mx.badtlsa.test", "127.0.0.15", [])
    z.add("_25._tcp.mx.badtlsa.test", 52, b"\x03")
    dane_host(z, "shorttlsa.test", "mx.shorttlsa.test", "127.0.0.17", [(3, 1, 1, b"12345")])
    # DANE and MTA-STS both: the policy does not list the host, DANE wins
    dane_host(z, "both.test", "mx.both.test", "127.0.0.16",
              [(3, 1, 1, spki_sha256(certs["both"][2]))])
    z.txt("_mta-sts.both.test", "v=STSv1; id=%s;" % STS_ID)
    z.a("mta-sts.both.test", "127.0.0.30")
    _net["zone"] = z
    _net["dns"] = DnsServer(z)
    _stoppers.append(_net["dns"].stop)
    _net["web"] = PolicyServer("127.0.0.30", web, {
        "mta-sts.enf.test": policy("enforce", "mx.enf.test"),
        "mta-sts.notin.test": policy("enforce", "other.notin.test"),
        "mta-sts.wrongname.test": policy("enforce", "mx.wrongname.test"),
        "mta-sts.strip.test": policy("enforce", "*.strip.test"),
        "mta-sts.testing.test": policy("testing", "mx.testing.test"),
        "mta-sts.badpol.test": b"version: STSv1\nmode: sometimes\nmx: mx.badpol.test\n",
        "mta-sts.both.test": policy("enforce", "nothere.both.test"),
        # RFC 8461 3.3: a redirect is never followed (here to a policy that
        # would refuse the MX host)
        "mta-sts.routed.test": policy("enforce", "nothere.routed.test"),
        "mta-sts.redirect.test": (301, "https://mta-sts.notin.test/.well-known/mta-sts.txt"),
    })
    _net["web_pair"] = web
    _net["bounces"] = Sink("127.0.0.9", 25)
    return _net


_sinks = {}


def next_hop(addr, cert=None):
    """The next hop on addr:25 (STARTTLS with net()'s certificate cert),
    made once: a later case on the same address finds the same one."""
    if addr not in _sinks:
        n = net()
        _sinks[addr] = Sink(addr, 25, starttls=tls_ctx(n["certs"][cert]) if cert else None)
    return _sinks[addr]


def edge(name, **extra):
    n = net()
    conf = {"retry-min": "1s", "retry-max": "2s", "timeout-reply": "5s",
            "timeout-connect": "3s", "dns-server": "127.0.0.1", "dns-timeout": "1s",
            "relay-network": "127.0.0.0/8", "delivery": "on", "tls-ca-file": n["ca"][0],
            "dns-dnssec": "trusted", "max-messages-per-delivery-connection": "1",
            "route": "routed.test [127.0.0.19]:25"}
    conf.update({k.replace("_", "-"): v for k, v in extra.items()})
    return Server(name, conf)


_shared = {}


def shared():
    if "s" not in _shared:
        _shared["s"] = edge("tlspol")
    return _shared["s"]


def send(server, rcpts):
    with server.connect() as c:
        return queued_id(c.mail_tx(SENDER, rcpts, b"Subject: tls policy\r\n\r\nsecret\r\n"))


def deferred(server, qid, addr, seconds=20):
    st = wait_for(lambda: attempted(server, qid, addr), seconds, "a failed attempt for %s" % addr)
    eq(st[0], "pending", "deferred, not bounced")
    return st[2]


def delivery_lines(server, addr):
    return [ln for ln in log_text(server).splitlines()
            if "event=delivery " in ln and "to=<%s>" % addr in ln]


def delivery_line(server, addr, status):
    lines = wait_for(lambda: [ln for ln in delivery_lines(server, addr)
                              if "status=%s " % status in ln], 20,
                     "a delivery line status=%s for %s" % (status, addr))
    return lines[-1]


def key(line, k):
    m = re.search(r"(?:^| )%s=(\S+)" % re.escape(k), line)
    return m.group(1) if m else None


def reports(server, domain):
    day = time.strftime("%Y-%m-%d", time.gmtime())
    r = server.moat("tls-report", "-c", server.conf_path, day, domain)
    if r.returncode != 0:
        return None
    return [json.loads(ln) for ln in r.stdout.decode().splitlines()]


def wait_report(server, domain, pred, what):
    return wait_for(lambda: (lambda rs: rs and pred(rs[0]) and rs[0])(reports(server, domain)),
                    15, what)


def summary(rep):
    return [(p["policy"]["policy-type"], p["summary"]["total-successful-session-count"],
             p["summary"]["total-failure-session-count"]) for p in rep["policies"]]


# ---- MTA-STS ------------------------------------------------------------

@case
def test_sts_enforce_good_certificate():
    sink = next_hop("127.0.0.2", "enf")
    s = shared()
    qid = send(s, ["bob@enf.test"])
    sink.wait_messages(1)
    wait_gone(s, qid)
    check(sink.messages[0].tls, "delivered over TLS")
    line = delivery_line(s, "bob@enf.test", "sent")
    eq(key(line, "tls-policy"), "mta-sts", "tls-policy: " + line)
    eq(key(line, "tls-policy-result"), "ok", "result: " + line)
    check("event=mta-sts domain=enf.test id=%s mode=enforce" % STS_ID in log_text(s),
          "the policy fetched is logged")
    rep = wait_report(s, "enf.test", lambda r: summary(r) == [("sts", 1, 0)],
                      "a report with one successful sts session")
    check("mx.enf.test" in rep["policies"][0]["policy"].get("mx-host", []),
          "the report names the policy's mx: %r" % rep["policies"][0]["policy"])
    eq(rep["policies"][0]["policy"]["policy-domain"], "enf.test", "policy-domain")


@case
def test_sts_enforce_mx_not_in_policy():
    sink = next_hop("127.0.0.3", "notin")
    before = sink.sessions                  # (aiosmtpd's own check when it starts)
    s = shared()
    qid = send(s, ["bob@notin.test"])
    err = deferred(s, qid, "bob@notin.test")
    check("4.7.5" in err and "MTA-STS" in err, "error: %r" % err)
    time.sleep(0.5)
    eq(sink.sessions, before, "connections to an MX host the policy does not list")
    line = delivery_line(s, "bob@notin.test", "deferred")
    eq(key(line, "tls-policy"), "mta-sts", "tls-policy: " + line)
    check(re.search(r"event=tls-policy-fail domain=notin.test mx=mx.notin.test .*"
                    r"policy=mta-sts result=validation-failure action=not-used", log_text(s)),
          "the refusal logged")


@case
def test_sts_enforce_wrong_name_not_sent():
    sink = next_hop("127.0.0.4", "wrong")
    s = shared()
    qid = send(s, ["bob@wrongname.test"])
    err = deferred(s, qid, "bob@wrongname.test")
    check("4.7.5" in err, "error: %r" % err)
    wait_for(lambda: sink.sessions > 0, 10, "a connection to the MX host")
    eq(sink.messages, [], "no DATA")
    line = delivery_line(s, "bob@wrongname.test", "deferred")
    eq(key(line, "tls-policy"), "mta-sts", "tls-policy: " + line)
    eq(key(line, "tls-policy-result"), "certificate-host-mismatch", "result: " + line)


@case
def test_sts_enforce_starttls_stripped():
    sink = next_hop("127.0.0.5")                        # no STARTTLS offered
    s = shared()
    qid = send(s, ["bob@strip.test"])
    err = deferred(s, qid, "bob@strip.test")
    check("4.7.5" in err, "error: %r" % err)
    wait_for(lambda: sink.sessions > 0, 10, "a connection to the MX host")
    eq(sink.messages, [], "nothing sent in plaintext")
    line = delivery_line(s, "bob@strip.test", "deferred")
    eq(key(line, "tls-policy-result"), "starttls-not-supported", "result: " + line)


@case
def test_sts_testing_delivers_and_reports():
    sink = next_hop("127.0.0.6", "wrong")
    s = shared()
    qid = send(s, ["bob@testing.test"])
    sink.wait_messages(1)
    wait_gone(s, qid)
    line = delivery_line(s, "bob@testing.test", "sent")
    eq(key(line, "tls-policy"), "mta-sts-testing", "tls-policy: " + line)
    eq(key(line, "tls-policy-result"), "certificate-host-mismatch", "result: " + line)
    check(re.search(r"event=tls-policy-fail domain=testing.test mx=mx.testing.test .*"
                    r"policy=mta-sts-testing result=certificate-host-mismatch action=reported",
                    log_text(s)), "the failure logged")
    rep = wait_report(s, "testing.test", lambda r: summary(r) == [("sts", 0, 1)],
                      "a report with one failed sts session")
    d = rep["policies"][0]["failure-details"][0]
    eq(d["result-type"], "certificate-host-mismatch", "result-type")
    eq(d["receiving-mx-hostname"], "mx.testing.test", "receiving-mx-hostname")
    eq(d["receiving-ip"], "127.0.0.6", "receiving-ip")
    # Our end of the connection (the address the next hop saw the delivery
    # come from) and the name the next hop gave itself (sinklib: sink.test).
    eq(d.get("sending-mta-ip"), sink.messages[-1].peer[0], "sending-mta-ip")
    eq(d.get("receiving-mx-helo"), "sink.test", "receiving-mx-helo")
    check("mode: testing" in rep["policies"][0]["policy"]["policy-string"],
          "policy-string: %r" % rep["policies"][0]["policy"])


@case
def test_sts_malformed_policy_file():
    sink = next_hop("127.0.0.7")
    s = shared()
    qid = send(s, ["bob@badpol.test"])
    sink.wait_messages(1)
    wait_gone(s, qid)
    log = log_text(s)
    check(re.search(r"event=tls-policy-fail domain=badpol.test policy=mta-sts "
                    r'result=sts-policy-invalid action=no-policy reason="[^"\n]+"', log),
          "a clear line for the bad policy file")
    line = delivery_line(s, "bob@badpol.test", "sent")
    eq(key(line, "tls-policy"), "opportunistic", "no policy applies: " + line)
    check(s.alive(), "the server runs on")
    wait_report(s, "badpol.test", lambda r: r["policies"][0]["failure-details"][0]["result-type"]
                == "sts-policy-invalid", "the fetch failure in the report")


@case
def test_sts_redirect_refused():
    sink = next_hop("127.0.0.18")
    s = shared()
    qid = send(s, ["bob@redirect.test"])
    sink.wait_messages(1)
    wait_gone(s, qid)
    check(re.search(r"event=tls-policy-fail domain=redirect.test policy=mta-sts "
                    r'result=sts-policy-fetch-error action=no-policy reason="[^"\n]*127\.0\.0\.30[^"\n]*redirect',
                    log_text(s)), "the redirect refused, named, with the address that sent it")
    line = delivery_line(s, "bob@redirect.test", "sent")
    eq(key(line, "tls-policy"), "opportunistic", "no policy applies: " + line)


@case
def test_sts_policy_cached_across_restart():
    n = net()
    web = PolicyServer("127.0.0.31", n["web_pair"],
                       {"mta-sts.cache.test": policy("enforce", "mx.cache.test")})
    sink = next_hop("127.0.0.8", "cache")
    s = edge("stscache")
    qid = send(s, ["bob@cache.test"])
    sink.wait_messages(1)
    wait_gone(s, qid)
    eq(web.hits, ["mta-sts.cache.test"], "the policy fetched once")
    web.stop()                                   # the HTTPS server is down now
    s.restart()
    qid = send(s, ["carol@cache.test"])
    sink.wait_messages(2)
    wait_gone(s, qid)
    line = delivery_line(s, "carol@cache.test", "sent")
    eq(key(line, "tls-policy"), "mta-sts", "the cached policy applies after a restart: " + line)
    eq(key(line, "tls-policy-result"), "ok", "result: " + line)


@case
def test_sts_new_id_refetched_failed_refresh_keeps_cache():
    n, z = net(), net()["zone"]
    web = PolicyServer("127.0.0.32", n["web_pair"],
                       {"mta-sts.refresh.test": policy("enforce", "mx.refresh.test")})
    sink = next_hop("127.0.0.21", "refresh")
    s = edge("stsrefresh")

    def deliver(rcpt, policy_name):
        qid = send(s, [rcpt])
        wait_gone(s, qid)
        line = delivery_line(s, rcpt, "sent")
        eq(key(line, "tls-policy"), policy_name, line)

    deliver("a@refresh.test", "mta-sts")
    eq(web.hits, ["mta-sts.refresh.test"], "fetched once")
    # A new id: the policy is fetched again (the restart forgets the
    # lookup kept in memory for a minute, not the cache).
    z.clear("_mta-sts.refresh.test")
    z.txt("_mta-sts.refresh.test", "v=STSv1; id=2;")
    web.policies["mta-sts.refresh.test"] = policy("testing", "mx.refresh.test")
    s.restart()
    deliver("b@refresh.test", "mta-sts-testing")
    eq(len(web.hits), 2, "fetched again for the new id")
    # Another id, and the fetch fails: the cached policy (testing) stays.
    z.clear("_mta-sts.refresh.test")
    z.txt("_mta-sts.refresh.test", "v=STSv1; id=3;")
    del web.policies["mta-sts.refresh.test"]
    s.restart()
    deliver("c@refresh.test", "mta-sts-testing")
    eq(len(web.hits), 3, "a fetch tried for id 3")
    check(re.search(r"event=tls-policy-fail domain=refresh.test policy=mta-sts "
                    r"result=sts-policy-fetch-error action=cached-policy", log_text(s)),
          "the failed refresh logged, the cached policy used")
    eq(len(sink.messages), 3, "every message delivered")
    web.stop()


# ---- DANE ---------------------------------------------------------------

@case
def test_dane_ee_match():
    sink = next_hop("127.0.0.10", "ee")
    s = shared()
    qid = send(s, ["bob@daneee.test"])
    sink.wait_messages(1)
    wait_gone(s, qid)
    line = delivery_line(s, "bob@daneee.test", "sent")
    eq(key(line, "tls-policy"), "dane", "tls-policy: " + line)
    eq(key(line, "tls-policy-result"), "ok", "result: " + line)
    check(any(q[1] == 52 and q[0] == "_25._tcp.mx.daneee.test" and q[2]
              for q in net()["dns"].queries), "TLSA asked with the DO bit")
    rep = wait_report(s, "daneee.test", lambda r: summary(r) == [("tlsa", 1, 0)],
                      "a report with one successful tlsa session")
    check(rep["policies"][0]["policy"]["policy-string"][0].startswith("3 1 1 "),
          "the TLSA record in the report: %r" % rep["policies"][0]["policy"])


@case
def test_dane_ee_mismatch_next_mx():
    n = net()
    bad = next_hop("127.0.0.11", "ee2")   # TLSA says ee
    good = next_hop("127.0.0.12", "ee2")  # TLSA says ee2
    s = shared()
    qid = send(s, ["bob@danemm.test"])
    good.wait_messages(1)
    wait_gone(s, qid)
    check(bad.sessions > 0, "the first MX host was tried")
    eq(bad.messages, [], "no DATA to the host that does not match")
    check(re.search(r"event=tls-policy-fail domain=danemm.test mx=mx1.danemm.test "
                    r"address=127.0.0.11 policy=dane result=tlsa-invalid action=next-host",
                    log_text(s)), "the mismatch logged")
    line = delivery_line(s, "bob@danemm.test", "sent")
    eq(key(line, "tls-policy"), "dane", "tls-policy: " + line)


@case
def test_dane_ee_mismatch_deferred():
    sink = next_hop("127.0.0.11", "ee2")
    before = sink.sessions
    s = shared()
    qid = send(s, ["bob@danebad.test"])
    err = deferred(s, qid, "bob@danebad.test")
    check("4.7.5" in err and "DANE" in err, "error: %r" % err)
    check(sink.sessions > before, "the host was tried")
    eq(sink.messages, [], "no DATA")
    line = delivery_line(s, "bob@danebad.test", "deferred")
    eq(key(line, "tls-policy"), "dane", "tls-policy: " + line)
    eq(key(line, "tls-policy-result"), "tlsa-invalid", "result: " + line)


@case
def test_dane_ta():
    sink = next_hop("127.0.0.13", "ta")
    s = shared()
    qid = send(s, ["bob@daneta.test"])
    sink.wait_messages(1)
    wait_gone(s, qid)
    line = delivery_line(s, "bob@daneta.test", "sent")
    eq(key(line, "tls-policy"), "dane", "tls-policy: " + line)
    eq(key(line, "tls-policy-result"), "ok", "result: " + line)


@case
def test_tlsa_without_ad_not_used():
    sink = next_hop("127.0.0.14", "ee")
    s = shared()
    qid = send(s, ["bob@noad.test"])
    sink.wait_messages(1)
    wait_gone(s, qid)
    line = delivery_line(s, "bob@noad.test", "sent")
    eq(key(line, "tls-policy"), "opportunistic", "unvalidated TLSA not used: " + line)
    check(not any(q[0] == "_25._tcp.mx.noad.test" for q in net()["dns"].queries),
          "no TLSA lookup for a host whose address answer was not validated")


@case
def test_malformed_tlsa():
    a = next_hop("127.0.0.15", "ee")
    b = next_hop("127.0.0.17", "ee")
    before = a.sessions                     # (aiosmtpd's own check when it starts)
    s = shared()
    qid = send(s, ["bob@badtlsa.test", "carol@shorttlsa.test"])
    # Records that do not parse: the lookup fails, the host is not tried now.
    err = deferred(s, qid, "bob@badtlsa.test")
    check("TLSA" in err and "4.4.3" in err, "error: %r" % err)
    eq(a.sessions, before, "the host whose TLSA lookup failed is not tried")
    check("TLSA lookup for _25._tcp.mx.badtlsa.test failed" in log_text(s), "a clear line")
    # A digest of the wrong length: unusable, STARTTLS still required.
    b.wait_messages(1)
    check(b.messages[0].tls, "encrypted")
    check("the TLSA records of _25._tcp.mx.shorttlsa.test are all unusable" in log_text(s),
          "a clear line for unusable records")
    check(s.alive(), "the server runs on")


@case
def test_dane_before_mta_sts():
    sink = next_hop("127.0.0.16", "both")
    s = shared()
    qid = send(s, ["bob@both.test"])
    sink.wait_messages(1)
    wait_gone(s, qid)
    line = delivery_line(s, "bob@both.test", "sent")
    eq(key(line, "tls-policy"), "dane", "DANE wins over MTA-STS: " + line)


@case
def test_route_keeps_its_own_tls():
    sink = next_hop("127.0.0.19")                 # no STARTTLS: tls may
    s = shared()
    qid = send(s, ["bob@routed.test"])
    sink.wait_messages(1)
    wait_gone(s, qid)
    line = delivery_line(s, "bob@routed.test", "sent")
    eq(key(line, "tls-policy"), "route", "a route is not MX delivery: " + line)
    eq(key(line, "tls-policy-result"), "none", "result: " + line)
    check("domain=routed.test" not in log_text(s).replace("to=<bob@routed.test>", ""),
          "no MTA-STS or DANE work for a routed domain")


# ---- reports by mail ------------------------------------------------------

def move_to_yesterday(queue_dir, domain):
    """The queue's record of today's TLS results for domain, copied to
    yesterday (key and record: both start with the day, big-endian), with
    lmdb-utils' mdb_dump and mdb_load while no server runs: a finished day
    without waiting a day."""
    r = subprocess.run(["mdb_dump", "-s", "tlsrpt", queue_dir], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    eq(r.returncode, 0, "mdb_dump: %r" % r.stderr)
    lines = r.stdout.decode().splitlines()
    head = lines[:lines.index("HEADER=END") + 1]
    data = [ln.strip() for ln in lines[len(head):] if ln.startswith(" ")]
    today = int(time.time()) // 86400 * 86400
    moved = []
    for k, v in zip(data[0::2], data[1::2]):
        key, val = bytes.fromhex(k), bytes.fromhex(v)
        if key[8:] != domain.encode() or int.from_bytes(key[:8], "big") != today:
            continue
        day = (today - 86400).to_bytes(8, "big")
        moved.append((day + key[8:], val[:2] + day + val[10:]))
    eq(len(moved), 1, "today's record of %s" % domain)
    text = "\n".join(head + [" " + moved[0][0].hex(), " " + moved[0][1].hex(), "DATA=END"]) + "\n"
    r = subprocess.run(["mdb_load", "-s", "tlsrpt", queue_dir], input=text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    eq(r.returncode, 0, "mdb_load: %r" % r.stderr)
    return time.strftime("%Y-%m-%d", time.gmtime(today - 86400))


@case
def test_report_mailed_to_rua():
    n = net()
    sink = next_hop("127.0.0.2", "enf")
    reports = next_hop("127.0.0.20")
    s = edge("tlsmail", tls_report="mailto")
    qid = send(s, ["dave@enf.test"])
    wait_gone(s, qid)
    wait_report(s, "enf.test", lambda r: summary(r) == [("sts", 1, 0)], "today's record")
    s.stop()
    yesterday = move_to_yesterday(s.queue_dir, "enf.test")
    s.start()
    msgs = reports.wait_messages(1, 30)
    m = msgs[0]
    eq(m.rcpts, ["tlsrpt@reports.test"], "to the rua mailto: address (the https: one is not used)")
    eq(m.mail_from, "<>", "from the null sender")
    msg = m.parsed()
    eq(msg.get_content_type(), "multipart/report", "Content-Type")
    eq(msg.get_param("report-type"), "tlsrpt", "report-type")
    rid = "%s.enf.test@mx.test" % yesterday
    eq(msg["Subject"], "Report Domain: enf.test Submitter: mx.test Report-ID: <%s>" % rid,
       "Subject")
    eq((msg["TLS-Report-Domain"], msg["TLS-Report-Submitter"]), ("enf.test", "mx.test"),
       "the RFC 8460 headers")
    part = [p for p in msg.walk() if p.get_content_type() == "application/tlsrpt+json"]
    eq(len(part), 1, "one application/tlsrpt+json part")
    check(re.match(r"^mx\.test!enf\.test!\d+!\d+\.json$", part[0].get_filename() or ""),
          "file name: %r" % part[0].get_filename())
    rep = json.loads(part[0].get_payload(decode=True))
    eq(rep["report-id"], rid, "report-id")
    eq(rep["date-range"]["start-datetime"], yesterday + "T00:00:00Z", "the day reported")
    eq(summary(rep), [("sts", 1, 0)], "the sessions")
    check(re.search(r"event=tls-report domain=enf.test day=%s rcpts=1 id=[0-9a-f]{16}" % yesterday,
                    log_text(s)), "logged")
    time.sleep(1)
    eq(len(reports.messages), 1, "mailed once (today's record waits for its day's end)")
    check(sink.messages, "the original delivery")
    del n


# ---- the report command --------------------------------------------------

@case
def test_tls_report_command_arguments():
    s = shared()
    for args in ([], ["2026-02-30"], ["2026-12-07", "bad_domain!"], ["yesterday"],
                 ["2026-12-07", "a.test", "b.test"]):
        r = s.moat("tls-report", "-c", s.conf_path, *args)
        eq(r.returncode, 100, "moat tls-report %r: %r" % (args, r.stderr[-200:]))
    r = s.moat("tls-report", "-c", s.conf_path, "1999-01-01")
    eq((r.returncode, r.stdout), (0, b""), "a day without results")
    day = time.strftime("%Y-%m-%d", time.gmtime())
    r = s.moat("tls-report", "-c", s.conf_path, day, "never.test")
    eq(r.returncode, 1, "a domain without a report: %r" % r.stderr)
    check(b"no report for never.test" in r.stderr, "said: %r" % r.stderr)


if __name__ == "__main__":
    main()
