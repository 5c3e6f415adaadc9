#!/usr/bin/python3
"""tests/image/test_oci.py -- the container image, validated and run.

build/image/moat-oci.tar (from `make image`, which test_image.py or this
file runs) is unpacked as the OCI image layout it is (the binary, the CA
bundle, /data) and checked by oci-image-tool; umoci turns it into a runtime bundle, and runc runs it with
a volume on /data holding moat.conf, in a network namespace of its own
(runc's default).  swaks, run inside that namespace with nsenter, sends a
mail to port 25: the server, running as uid 65532, must queue it on the
volume, and stop cleanly on `runc kill TERM`.  Its config has `log remote
udp`: a syslog receiver in the same namespace (also by nsenter, started
after the container) gets the mail's event=accept as RFC 5424.
"""

import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from imagelib import BUILD, MOAT, make_image, need, run  # noqa: E402
import imagelib  # noqa: E402
from moatlib import case, check, eq, Failure  # noqa: E402

ARCHIVE = os.path.join(BUILD, "image", "moat-oci.tar")
UID = 65532
os.makedirs(os.path.join(BUILD, "t"), exist_ok=True)
WORK = tempfile.mkdtemp(prefix="oci-", dir=os.path.join(BUILD, "t"))
CID = "moat-test-%d" % os.getpid()
state = {}


@case
def test_oci_archive_validates():
    make_image()
    layout = os.path.join(WORK, "layout")
    with tarfile.open(ARCHIVE) as t:
        for m in t.getmembers():
            check(not m.name.startswith("/") and ".." not in m.name.split("/"),
                  "unsafe name in the archive: %r" % m.name)
        t.extractall(layout)
    # oci-image-tool (rc1 in Debian) walks a layout directory; its tar
    # reader is broken for any archive, so the directory is what it checks.
    r = run(["oci-image-tool", "validate", "--type", "image", "--ref", "name=latest", layout])
    out = (r.stdout + r.stderr).decode()
    check(r.returncode == 0 and "Validation succeeded" in out, "oci-image-tool: %s" % out)
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    digest = index["manifests"][0]["digest"].split(":")[1]
    with open(os.path.join(layout, "blobs", "sha256", digest)) as f:
        manifest = json.load(f)
    with open(os.path.join(layout, "blobs", "sha256", manifest["config"]["digest"][7:])) as f:
        config = json.load(f)["config"]
    eq(config["User"], "%d:%d" % (UID, UID), "User (not root)")
    eq(config["Entrypoint"], ["/moat"], "Entrypoint")
    eq(config["Volumes"], {"/data": {}}, "Volumes")
    eq(len(manifest["layers"]), 1, "layers (FROM scratch: one)")
    # The layer: the binary, the CA bundle and the volume's mount point,
    # nothing else.
    blob = os.path.join(layout, "blobs", "sha256", manifest["layers"][0]["digest"][7:])
    ca = "etc/ssl/certs/ca-certificates.crt"
    with tarfile.open(blob) as t:
        names = sorted(m.name for m in t.getmembers())
        eq(names, ["data", "etc", "etc/ssl", "etc/ssl/certs", ca, "moat"], "layer contents")
        eq(t.getmember("data").uid, UID, "owner of /data")
        with open("/" + ca, "rb") as f:
            check(t.extractfile(ca).read() == f.read(), "the layer's CA bundle is not this machine's")
    state["layout"] = layout


@case
def test_oci_runs_under_runc_and_answers_smtp():
    layout = need(state, "layout")
    bundle = os.path.join(WORK, "bundle")
    r = run(["umoci", "unpack", "--image", layout + ":latest", bundle])
    check(r.returncode == 0, "umoci unpack: %s" % r.stderr.decode())
    vol = os.path.join(WORK, "volume")
    os.makedirs(vol)
    with open(os.path.join(vol, "moat.conf"), "w") as f:
        f.write("hostname mx.test\nlisten 0.0.0.0:25\ndomain example.test\n"
                "queue /data/queue\nqueue-max-bytes 32M\nqueue-max-messages 1000\nmax-message-size 10M\n"
                "log remote udp 127.0.0.1:5514\n")
    os.chown(vol, UID, UID)
    os.chmod(vol, 0o700)
    cpath = os.path.join(bundle, "config.json")
    with open(cpath) as f:
        spec = json.load(f)
    spec["process"]["terminal"] = False
    spec["mounts"].append({"destination": "/data", "type": "bind", "source": vol,
                           "options": ["rbind", "rw"]})
    with open(cpath, "w") as f:
        json.dump(spec, f)
    log_path = os.path.join(WORK, "runc.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(["runc", "run", "--bundle", bundle, CID],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    state["proc"] = proc
    pid = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and pid is None:
        r = run(["runc", "state", CID])
        if r.returncode == 0 and json.loads(r.stdout)["status"] == "running":
            pid = json.loads(r.stdout)["pid"]
        elif proc.poll() is not None:
            break
        else:
            time.sleep(0.1)
    check(pid, "container not running; runc: %s" % open(log_path).read()[-2000:])
    with open("/proc/%d/status" % pid) as f:
        uids = [ln.split()[1:] for ln in f if ln.startswith("Uid:")][0]
    eq(uids, [str(UID)] * 4, "the server's uids (real, effective, saved, fs)")
    # A syslog receiver in the container's network namespace: what it gets
    # until it sees an accept (or 60 s), on its stdout.
    receiver = subprocess.Popen(
        ["nsenter", "-t", str(pid), "-n", "/usr/bin/python3", "-c",
         "import socket, sys\n"
         "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
         "s.bind(('127.0.0.1', 5514)); s.settimeout(60)\n"
         "while True:\n"
         "    m = s.recv(65536).decode('utf-8', 'replace')\n"
         "    print(m, flush=True)\n"
         "    if 'event=accept' in m: break\n"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    state["receiver"] = receiver
    # swaks in the container's network namespace, once port 25 answers.
    deadline = time.monotonic() + 30
    out = ""
    while time.monotonic() < deadline:
        r = run(["nsenter", "-t", str(pid), "-n", "swaks", "--server", "127.0.0.1:25",
                 "--from", "alice@client.test", "--to", "bob@example.test",
                 "--header", "Subject: oci", "--timeout", "10"], timeout=60)
        out = r.stdout.decode("utf-8", "replace")
        if "220 mx.test ESMTP moat" in out:
            break
        time.sleep(0.2)
    m = re.search(r"250 2\.0\.0 OK: queued as ([0-9a-f]{16})", out)
    check(m, "no 'queued as' from the container: %s" % out[-2000:])
    try:
        got = receiver.communicate(timeout=70)[0].decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        receiver.kill()
        got = receiver.communicate()[0].decode("utf-8", "replace")
    check(re.search(r"^<22>1 \S+ \S+ moat \d+ accept - event=accept id=%s " % m.group(1), got, re.M),
          "the accept of %s did not reach the syslog receiver: %r" % (m.group(1), got[-1500:]))
    r = run(["runc", "kill", CID, "TERM"])
    eq(r.returncode, 0, "runc kill TERM")
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        raise Failure("the container did not stop within 30 s of SIGTERM")
    log = open(log_path).read()
    check("event=exit status=0" in log, "no clean exit in the log: %s" % log[-2000:])
    # tls-ca-file's default is in the image: no warning, the bundle loaded.
    check(re.search(r"event=tls-ca file=/etc/ssl/certs/ca-certificates\.crt anchors=[1-9]\d\d", log)
          and "no CA bundle" not in log, "the CA bundle was not loaded: %s" % log[-2000:])
    # The message is on the volume, owned by the container's user.
    qdir = os.path.join(vol, "queue")
    eq(os.stat(os.path.join(qdir, "data.mdb")).st_uid, UID, "owner of the queue")
    conf = os.path.join(WORK, "host.conf")
    with open(conf, "w") as f:
        f.write("domain example.test\nqueue %s\nqueue-max-bytes 32M\n"
                "queue-max-messages 1000\nmax-message-size 10M\n" % qdir)
    r = run([MOAT, "queue", "list", "-c", conf])
    check(r.returncode == 0 and m.group(1) in r.stdout.decode(),
          "queue list on the volume: %r %r" % (r.stdout, r.stderr))


def cleanup():
    rx = state.get("receiver")
    if rx is not None and rx.poll() is None:
        rx.kill()
    p = state.get("proc")
    if p is not None and p.poll() is None:
        run(["runc", "kill", CID, "KILL"])
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
    run(["runc", "delete", "--force", CID])


if __name__ == "__main__":
    imagelib.main(WORK, cleanup)
