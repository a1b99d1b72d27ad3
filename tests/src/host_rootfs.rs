//! Container rootfs directories built from the host's own binaries, for the
//! `wrap`/`run` tests: busybox-static for a shell and its applets, plus any
//! dynamic program copied with the libraries `ldd` names (at the same paths,
//! with the loader). Minimal on purpose; full OCI images are built elsewhere.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Applets linked to /bin/busybox in the rootfs.
pub const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "ls", "ps", "sleep", "nc", "hostname", "id", "grep", "printf", "wc", "kill", "true", "false",
    "mkdir", "uname", "env", "touch",
];

/// A rootfs under `dir` with /bin/busybox and its applets, /etc/passwd and
/// /etc/group (root and nobody).
pub fn busybox(dir: &Path) -> PathBuf {
    let root = dir.to_path_buf();
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static installed (scripts/install-deps)");
    for a in APPLETS {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n").unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
    root
}

/// Copy the host program `exe` to the same path under `root`, with every
/// library `ldd` lists for it.
pub fn add_dynamic(root: &Path, exe: &Path) {
    let out = Command::new("ldd").arg(exe).output().expect("run ldd");
    assert!(out.status.success(), "ldd {}: {}", exe.display(), String::from_utf8_lossy(&out.stderr));
    let mut files = vec![exe.to_path_buf()];
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
        let path = match line.split_once("=>") {
            Some((_, rhs)) => rhs.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            files.push(PathBuf::from(p));
        }
    }
    for f in files {
        let dest = root.join(f.strip_prefix("/").unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        // fs::copy follows symlinks: the rootfs gets the library itself.
        std::fs::copy(&f, &dest).unwrap_or_else(|e| panic!("copy {}: {e}", f.display()));
    }
}

/// A spec (ContainerSpec as JSON) running `args` as root with QEMU's user network.
pub fn spec(args: &[&str], hostname: &str) -> serde_json::Value {
    serde_json::json!({
        "args": args,
        "env": ["PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/root"],
        "cwd": "/",
        "uid": 0,
        "gid": 0,
        "groups": [],
        "hostname": hostname,
        "exposed_ports": [],
        "network": {"address": "10.0.2.15/24", "gateway": "10.0.2.2", "dns": "10.0.2.3"},
    })
}
