//! Container benchmark (a program, not a test): redis-benchmark and an HTTP
//! load (ab) from the host against the redis and nginx images wrapped on
//! the 6.1 `container` kernel as stock, libos and libos with offline
//! translation (`wrap --translate`), one after the other in one run under
//! the same VMM, with ratios to stock. After each load the guest's kernel
//! console is checked for oops, BUG and WARNING lines.
//!
//!   cargo run --release -p xc-tests --example bench_containers [-- REQUESTS]
//!
//! Under TCG (the only accelerator here) every figure is a cost of QEMU's
//! emulation, not of the kernel on hardware: compare the columns only.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use xc_tests::images::{self, Form, TestImage};
use xc_tests::container::{ctrl_c, free_port};
use xc_tests::{binary, shared_cache, xc};

struct Config {
    name: &'static str,
    mode: &'static str,
    translate: bool,
}

const CONFIGS: &[Config] = &[
    Config { name: "stock", mode: "stock", translate: false },
    Config { name: "libos", mode: "libos", translate: false },
    Config { name: "libos+xlat", mode: "libos", translate: true },
];

fn wrap(image: &Path, c: &Config) -> PathBuf {
    let mut args = vec!["wrap", image.to_str().unwrap(), "--kernel", "6.1", "--profile", "container", "--mode", c.mode, "--rootfs-format", "initramfs"];
    if c.translate {
        args.push("--translate");
    }
    let r = xc(&shared_cache(), &args);
    assert_eq!(r.code, 0, "wrap {}: {}", c.name, r.stderr);
    PathBuf::from(r.stdout.lines().last().unwrap())
}

fn spawn_run(dir: &Path, name: &str, port: u16, guest: u16) -> Child {
    let mut c = Command::new(binary());
    c.arg("--cache").arg(shared_cache()).args(["run", "--keep", "--name", name]).arg(dir).arg("-p").arg(format!("{port}:{guest}"));
    c.stdout(Stdio::null()).stderr(Stdio::null()).process_group(0);
    c.spawn().unwrap()
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < Duration::from_secs(240), "no {what} within 240 s");
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn output(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// `SET: 1234.56 requests per second` lines of `redis-benchmark -q`.
fn redis_rates(text: &str) -> Vec<(String, f64)> {
    text.split(['\n', '\r'])
        .filter_map(|l| {
            let (op, rest) = l.split_once(':')?;
            let n: f64 = rest.split_whitespace().next()?.parse().ok()?;
            rest.contains("requests per second").then(|| (op.trim().to_string(), n))
        })
        .collect()
}

/// `Requests per second:    812.34 [#/sec] (mean)` of ab.
fn ab_rate(text: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix("Requests per second:")?.split_whitespace().next()?.parse().ok())
}

fn console_problems(name: &str) -> Vec<String> {
    let log = shared_cache().join("runs").join(name).join("console.log");
    let mut text = String::new();
    let _ = std::fs::File::open(&log).and_then(|mut f| f.read_to_string(&mut text));
    text.lines().filter(|l| l.contains("Oops") || l.contains("BUG:") || l.contains("WARNING:") || l.contains("Kernel panic")).map(str::to_string).collect()
}

fn main() {
    let requests: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5000);
    let redis_image = images::image(TestImage::Redis, Form::OciDir);
    let nginx_image = images::image(TestImage::Nginx, Form::OciDir);
    let mut rows: Vec<(String, Vec<f64>)> = Vec::new();
    let mut problems = Vec::new();
    for (ci, c) in CONFIGS.iter().enumerate() {
        eprintln!("== {} ==", c.name);
        let dir = wrap(&redis_image, c);
        let port = free_port();
        let name = format!("bench-redis-{}-{}", c.name.replace('+', "-"), std::process::id());
        let mut child = spawn_run(&dir, &name, port, 6379);
        let cli = |args: &[&str]| output(Command::new("redis-cli").args(["-p", &port.to_string()]).args(args));
        wait_until("redis PING", || cli(&["PING"]).trim() == "PONG");
        let text = output(Command::new("redis-benchmark").args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "-c", "4", "-t", "set,get,incr,lpush", "-n", &requests.to_string()]));
        for (op, rate) in redis_rates(&text) {
            let label = format!("redis {op} (req/s)");
            match rows.iter_mut().find(|(l, _)| *l == label) {
                Some((_, v)) => v.push(rate),
                None if ci == 0 => rows.push((label, vec![rate])),
                None => {}
            }
        }
        ctrl_c(&mut child);
        problems.extend(console_problems(&name).into_iter().map(|p| format!("{} redis: {p}", c.name)));

        let dir = wrap(&nginx_image, c);
        let port = free_port();
        let name = format!("bench-nginx-{}-{}", c.name.replace('+', "-"), std::process::id());
        let mut child = spawn_run(&dir, &name, port, 80);
        let url = format!("http://127.0.0.1:{port}/");
        wait_until("nginx page", || output(Command::new("ab").args(["-n", "1", &url])).contains("Complete requests:      1"));
        let text = output(Command::new("ab").args(["-q", "-n", &requests.to_string(), "-c", "4", &url]));
        let rate = ab_rate(&text).unwrap_or_else(|| panic!("ab printed no rate:\n{text}"));
        match rows.iter_mut().find(|(l, _)| l == "nginx GET / (req/s)") {
            Some((_, v)) => v.push(rate),
            None => rows.push(("nginx GET / (req/s)".into(), vec![rate])),
        }
        ctrl_c(&mut child);
        problems.extend(console_problems(&name).into_iter().map(|p| format!("{} nginx: {p}", c.name)));
    }
    println!("Containers on Linux 6.1 (`container` profile), {requests} requests, 4 connections, accel TCG\n");
    print!("{:24}", "");
    for c in CONFIGS {
        print!("{:>12}", c.name);
    }
    for c in &CONFIGS[1..] {
        print!("{:>18}", format!("{}/stock", c.name));
    }
    println!();
    for (label, v) in &rows {
        print!("{label:24}");
        for x in v {
            print!("{x:>12.0}");
        }
        for x in v.iter().skip(1) {
            print!("{:>18.2}", x / v[0]);
        }
        println!();
    }
    println!("\nkernel console under load: {}", if problems.is_empty() { "clean (no oops, BUG, WARNING or panic)".to_string() } else { problems.join("\n") });
    println!("\nTCG emulates every guest instruction: these are costs of the emulator, not of the kernels on hardware.");
}
