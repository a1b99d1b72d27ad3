//! Helpers for tests (and the container benchmark) that talk to `run`.

use std::net::TcpListener;
use std::process::{Child, Command};
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
