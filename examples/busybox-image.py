#!/usr/bin/env python3
"""Write a tiny OCI image layout (one layer: Debian's static busybox) to DIR.

The example container of scripts/run-default: `xc-convert wrap DIR` turns it
into a VM image on its own library-OS kernel and `xc-convert run` boots it.
Deterministic (sorted entries, mtime 0), so the wrapped result is a cache
hit the second time. Usage: examples/busybox-image.py DIR
"""
import gzip, hashlib, io, json, os, sys, tarfile

BUSYBOX = "/bin/busybox"
CMD = ["/bin/sh", "-c",
       "echo hello from a container on Linux $(uname -r), $(ls /proc | grep -c '^[0-9]') processes in sight;"
       " if [ -r /proc/xc_libos ]; then echo library-OS kernel: $(grep -m1 features /proc/xc_libos);"
       " else echo stock kernel: no /proc/xc_libos; fi"]


def blob(out, data, media_type):
    digest = hashlib.sha256(data).hexdigest()
    os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(out, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}


def layer():
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        def add_dir(name):
            i = tarfile.TarInfo(name); i.type = tarfile.DIRTYPE; i.mode = 0o755; t.addfile(i)
        for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "run"]:
            add_dir(d)
        data = open(BUSYBOX, "rb").read()
        i = tarfile.TarInfo("bin/busybox"); i.size = len(data); i.mode = 0o755
        t.addfile(i, io.BytesIO(data))
        for applet in ["sh", "echo", "ls", "grep", "uname", "cat"]:
            i = tarfile.TarInfo("bin/" + applet); i.type = tarfile.SYMTYPE; i.linkname = "busybox"; t.addfile(i)
        passwd = b"root:x:0:0:root:/root:/bin/sh\n"
        i = tarfile.TarInfo("etc/passwd"); i.size = len(passwd); i.mode = 0o644
        t.addfile(i, io.BytesIO(passwd))
    diff = raw.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0) as g:
        g.write(diff)
    return gz.getvalue(), "sha256:" + hashlib.sha256(diff).hexdigest()


def main(out):
    os.makedirs(out, exist_ok=True)
    gz, diff_id = layer()
    layer_desc = blob(out, gz, "application/vnd.oci.image.layer.v1.tar+gzip")
    config = {"architecture": "amd64", "os": "linux",
              "config": {"Cmd": CMD, "Env": ["PATH=/bin"], "WorkingDir": "/"},
              "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    config_desc = blob(out, json.dumps(config, sort_keys=True).encode(), "application/vnd.oci.image.config.v1+json")
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": config_desc, "layers": [layer_desc]}
    manifest_desc = blob(out, json.dumps(manifest, sort_keys=True).encode(), "application/vnd.oci.image.manifest.v1+json")
    manifest_desc["platform"] = {"architecture": "amd64", "os": "linux"}
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [manifest_desc]}, f, sort_keys=True)
    with open(os.path.join(out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    print(out)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
