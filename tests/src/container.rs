//! Helpers for tests (and the container benchmark) that talk to `run`.

use crate::{host_rootfs, shared_cache, xc, PROFILE};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A TCP port that is free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `redis-cli -p PORT ARGS...`: its reply, or None when redis did not answer.
pub fn redis_cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli").args(["-h", "127.0.0.1", "-p", &port.to_string()]).args(args).output().expect("redis-cli (redis-tools) installed");
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned()).filter(|s| !s.starts_with("Could not connect") && !s.is_empty())
}

/// SIGINT to `run`'s whole process group, as a terminal's Ctrl-C does
/// (`run` was started as a group leader), then its exit code.
pub fn ctrl_c(child: &mut Child) -> i32 {
    let _ = Command::new("kill").args(["-INT", "--", &format!("-{}", child.id())]).status();
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code().unwrap_or(-1);
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("run did not stop within 60 s of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `run` started as its own process group leader, killed with its QEMU when
/// the guard drops, also on a panic (else the VM outlives the failed test).
pub struct RunGuard(pub Child);

impl Drop for RunGuard {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.0.id())]).status();
            let _ = self.0.wait();
        }
    }
}

/// The kernel container tests wrap with: the shared 6.1 libos image.
pub const KERNEL: &[&str] = &["--kernel", "6.1", "--profile", PROFILE, "--mode", "libos"];

/// Wrap the rootfs `build` makes (in a temporary directory) with `spec`;
/// the wrapped directory is content-addressed, so the same rootfs and spec
/// wrap once per cache.
pub fn wrap(name: &str, build: impl FnOnce(&Path) -> PathBuf, spec: serde_json::Value) -> PathBuf {
    let tmp = tempfile::tempdir().unwrap();
    let root = build(&tmp.path().join(name));
    let spec_file = tmp.path().join("spec.json");
    std::fs::write(&spec_file, spec.to_string()).unwrap();
    let mut args = vec!["wrap", "--rootfs", root.to_str().unwrap(), "--spec", spec_file.to_str().unwrap()];
    args.extend(KERNEL);
    let r = xc(&shared_cache(), &args).expect_code(0);
    let dir = PathBuf::from(r.stdout.lines().last().expect("wrap prints the directory"));
    assert!(dir.join("wrapped.json").is_file(), "{}", dir.display());
    dir
}

/// A busybox container whose default command prints a value and exits 7.
pub fn busybox_wrapped() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| wrap("busybox", host_rootfs::busybox, host_rootfs::spec(&["/bin/sh", "-c", "echo value-from-guest; hostname; exit 7"], "bb")))
}

/// The QEMU process `run` (pid `parent`) started: its child whose name is
/// qemu-system-* (setpriv execs QEMU in the same process). By name, not
/// command line: run's `dpkg-query -W qemu-system-x86` names it too.
pub fn qemu_child_of(parent: u32) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
        let ppid: u32 = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        (ppid == parent && comm.starts_with("qemu-system") && !is_zombie(pid)).then_some(pid)
    })
}

/// Whether `pid` is a zombie (or gone).
pub fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| s.rsplit_once(')').map(|(_, r)| r.trim_start().starts_with('Z')).unwrap_or(true)).unwrap_or(true)
}
