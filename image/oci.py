#!/usr/bin/python3
"""image/oci.py MOAT CA_BUNDLE OUT.tar -- the container image: an OCI image
archive.

FROM scratch, one layer:
    /moat    the static binary (root-owned, 0755)
    /etc/ssl/certs/ca-certificates.crt
             CA_BUNDLE, the build machine's (Debian's ca-certificates):
             tls-ca-file's default, for MTA-STS and `tls verify`
    /data/   the volume: moat.conf and the queue (owned by 65532, 0700)
It runs `moat serve -c /data/moat.conf` as user 65532:65532 (no name: the
image has no /etc/passwd, nothing but the binary and the CA bundle).  The archive is an OCI
image layout (oci-layout, index.json, blobs/sha256/...) in a tar, tagged
"latest" (org.opencontainers.image.ref.name), as `skopeo copy
oci-archive:moat-oci.tar ...` and `umoci unpack --image DIR:latest` take it.

Reproducible: every timestamp is SOURCE_DATE_EPOCH, owners are numeric,
entries are sorted, gzip carries no name or time, JSON keys are sorted.
"""

import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import time

UID = GID = 65532
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def tar_bytes(entries, epoch):
    """entries: (name, TarInfo type, mode, uid, gid, data or None), sorted."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, mode, uid, gid, data in sorted(entries):
            ti = tarfile.TarInfo(name)
            ti.type = kind
            ti.mode = mode
            ti.uid, ti.gid = uid, gid
            ti.uname = ti.gname = ""
            ti.mtime = epoch
            if data is not None:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
            else:
                t.addfile(ti)
    return buf.getvalue()


def canon(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def main():
    if len(sys.argv) != 4:
        sys.stderr.write("usage: image/oci.py MOAT CA_BUNDLE OUT.tar\n")
        sys.exit(100)
    moat, ca, out = sys.argv[1:]
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "1700000000"))
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    with open(moat, "rb") as f:
        binary = f.read()
    with open(ca, "rb") as f:
        bundle = f.read()

    layer = tar_bytes([
        ("moat", tarfile.REGTYPE, 0o755, 0, 0, binary),
        ("etc", tarfile.DIRTYPE, 0o755, 0, 0, None),
        ("etc/ssl", tarfile.DIRTYPE, 0o755, 0, 0, None),
        ("etc/ssl/certs", tarfile.DIRTYPE, 0o755, 0, 0, None),
        ("etc/ssl/certs/ca-certificates.crt", tarfile.REGTYPE, 0o644, 0, 0, bundle),
        ("data", tarfile.DIRTYPE, 0o700, UID, GID, None),
    ], epoch)
    zbuf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=zbuf, mtime=0, compresslevel=9) as z:
        z.write(layer)
    layer_gz = zbuf.getvalue()

    config = canon({
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": "%d:%d" % (UID, GID),
            "Entrypoint": ["/moat"],
            "Cmd": ["serve", "-c", "/data/moat.conf"],
            "WorkingDir": "/data",
            "Volumes": {"/data": {}},
            "ExposedPorts": {"25/tcp": {}},
            "Labels": {
                "org.opencontainers.image.title": "moat",
                "org.opencontainers.image.description":
                    "a minimal, hardened mail relay: one static binary",
            },
        },
        "rootfs": {"type": "layers", "diff_ids": [sha(layer)]},
        "history": [{"created": created, "created_by": "image/oci.py"}],
    })
    manifest = canon({
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": MT_LAYER, "digest": sha(layer_gz), "size": len(layer_gz)}],
    })
    index = canon({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": MT_MANIFEST,
            "digest": sha(manifest),
            "size": len(manifest),
            "annotations": {"org.opencontainers.image.ref.name": "latest"},
            "platform": {"architecture": "amd64", "os": "linux"},
        }],
    })
    entries = [
        ("oci-layout", tarfile.REGTYPE, 0o644, 0, 0, canon({"imageLayoutVersion": "1.0.0"})),
        ("index.json", tarfile.REGTYPE, 0o644, 0, 0, index),
        ("blobs", tarfile.DIRTYPE, 0o755, 0, 0, None),
        ("blobs/sha256", tarfile.DIRTYPE, 0o755, 0, 0, None),
    ]
    for blob in (layer_gz, config, manifest):
        entries.append(("blobs/sha256/" + sha(blob)[7:], tarfile.REGTYPE, 0o644, 0, 0, blob))
    with open(out + ".tmp", "wb") as f:
        f.write(tar_bytes(entries, epoch))
    os.replace(out + ".tmp", out)


if __name__ == "__main__":
    main()
