//! `wrap` + `run` end to end on the 6.1 library-OS kernel (container
//! profile): a container's exit status and stdout come back, redis answers
//! through a forwarded port, two containers side by side do not see each
//! other, and bad requests are clear errors. Real kernels and real QEMU
//! (TCG), so every test takes the heavy lock.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use xc_tests::container::{ctrl_c, free_port, redis_cli, RunGuard};
use xc_tests::{binary, heavy, host_rootfs, shared_cache, xc};

use xc_tests::container::{busybox_wrapped, wrap, KERNEL};

/// redis-server and its libraries from the host, on busybox.
fn redis_wrapped() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let args = ["redis-server", "--bind", "0.0.0.0", "--port", "6379", "--protected-mode", "no", "--save", "", "--appendonly", "no"];
        wrap(
            "redis",
            |d| {
                let root = host_rootfs::busybox(d);
                host_rootfs::add_dynamic(&root, Path::new("/usr/bin/redis-server"));
                root
            },
            host_rootfs::spec(&args, "redis"),
        )
    })
}

fn run_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(binary());
    c.arg("--cache").arg(shared_cache()).arg("run").args(args);
    c
}

/// Wait for redis in a VM to answer PING through `port`.
fn wait_for_redis(port: u16, child: &mut Child) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(240) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("run exited ({status}) before redis answered");
        }
        if redis_cli(port, &["PING"]).as_deref() == Some("PONG") {
            return;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("redis did not answer on port {port} within 240 s");
}


#[test]
fn busybox_entrypoint_status_and_stdout_come_back_and_start_time_is_measured() {
    let _g = heavy();
    let dir = busybox_wrapped();
    let start = Instant::now();
    let mut child = run_cmd(&[dir.to_str().unwrap()]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    let n = stdout.read(&mut first).unwrap();
    let first_output = start.elapsed();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let out = format!("{}{rest}", String::from_utf8_lossy(&first[..n]));
    assert_eq!(status.code(), Some(7), "stdout:\n{out}\nstderr:\n{stderr}");
    // Raw ports: exactly what the program wrote, no \r added, no console noise.
    assert_eq!(out, "value-from-guest\nbb\n", "stderr:\n{stderr}");
    eprintln!("container start time (run start -> first output, TCG): {:.2} s; whole run {:.2} s", first_output.as_secs_f64(), start.elapsed().as_secs_f64());
}

#[test]
fn run_time_args_and_env_override_the_spec_and_stderr_is_separate_on_the_pc_machine() {
    let _g = heavy();
    let dir = busybox_wrapped();
    // On the pc machine (PCI), where every other test uses the default microvm.
    let r = xc(&shared_cache(), &["run", dir.to_str().unwrap(), "--machine", "pc", "-e", "GREETING=hi there", "--", "sh", "-c", "echo \"$GREETING\"; echo to-stderr >&2; id -u"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "hi there\n0\n");
    assert!(r.stderr.contains("to-stderr\n") && !r.stdout.contains("to-stderr"), "{}", r.stderr);
}

#[test]
fn an_entrypoint_missing_from_the_rootfs_is_init_s_message_and_127() {
    let _g = heavy();
    let dir = busybox_wrapped();
    let r = xc(&shared_cache(), &["run", dir.to_str().unwrap(), "--", "no-such-server", "--flag"]);
    assert_eq!(r.code, 127, "{r:?}");
    assert!(r.stderr.contains("xc-init: no-such-server: not found in PATH=/usr/local/bin:/usr/bin:/bin"), "{}", r.stderr);
    let r = xc(&shared_cache(), &["run", dir.to_str().unwrap(), "--", "/etc/passwd"]);
    assert_eq!(r.code, 126, "{r:?}");
    assert!(r.stderr.contains("xc-init: cannot execute /etc/passwd"), "{}", r.stderr);
}

#[test]
fn a_host_port_already_taken_is_a_clear_error_before_any_vm_starts() {
    let _g = heavy();
    let dir = busybox_wrapped();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let r = xc(&shared_cache(), &["run", dir.to_str().unwrap(), "-p", &format!("{port}:80")]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains(&format!("127.0.0.1:{port}/tcp is already in use")), "{}", r.stderr);
    assert!(!r.stderr.contains("running "), "no VM was started: {}", r.stderr);
}

#[test]
fn redis_answers_through_a_forwarded_port_and_a_second_container_cannot_see_it() {
    let _g = heavy();
    let redis = redis_wrapped();
    let port = free_port();
    let mut b = run_cmd(&[redis.to_str().unwrap(), "-p", &format!("{port}:6379"), "--name", "iso-b", "--tenant", "t-b"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    wait_for_redis(port, &mut b);
    assert_eq!(redis_cli(port, &["SET", "k", "v-from-host"]).as_deref(), Some("OK"));
    assert_eq!(redis_cli(port, &["GET", "k"]).as_deref(), Some("v-from-host"));
    let labels = std::fs::read_to_string(shared_cache().join("runs/iso-b/run.json")).expect("run.json while running");
    assert!(labels.contains("\"tenant\": \"t-b\""), "{labels}");

    // Container A, in its own VM while B runs: its process list is its own
    // (the listing ran: its header and A's own shell are in it, and A has
    // only a handful of processes), B's guest address (10.0.2.15:6379, which
    // is also A's own address in A's own network) has nothing, and B's
    // forwarded port, on the host's loopback (10.0.2.2 from inside), is out
    // of reach too: a user network is closed outbound unless --outbound.
    let probe = |what: &str, cmd: &str| format!("if {cmd}; then echo {what}: reached; else echo {what}: unreachable; fi; ");
    let script = format!(
        "ps -o pid,comm; echo procs: $(ls -d /proc/[0-9]* | wc -l); {}{}",
        probe("direct", "printf 'PING\\r\\n' | nc -w 3 10.0.2.15 6379 | grep -q PONG"),
        probe("forwarded", &format!("printf 'GET k\\r\\nQUIT\\r\\n' | nc -w 5 10.0.2.2 {port} | grep -q v-from-host"))
    );
    let bb = busybox_wrapped();
    let a = xc(&shared_cache(), &["run", bb.to_str().unwrap(), "--name", "iso-a", "--tenant", "t-a", "--", "sh", "-c", &script]);
    assert_eq!(a.code, 0, "{a:?}");
    eprintln!("container A, beside B:\n{}", a.stdout);
    let listing: Vec<&str> = a.stdout.lines().take_while(|l| !l.starts_with("procs:")).collect();
    assert!(listing.first().is_some_and(|h| h.contains("PID") && h.contains("COMMAND")), "ps did not run:\n{}", a.stdout);
    assert!(listing.iter().any(|l| l.trim_end().ends_with(" ps")), "ps does not list itself:\n{}", a.stdout);
    assert!(!a.stdout.contains("redis"), "A sees B's processes:\n{}", a.stdout);
    let procs: u32 = a.stdout.lines().find_map(|l| l.strip_prefix("procs: ")).and_then(|n| n.trim().parse().ok()).unwrap_or_else(|| panic!("no process count:\n{}", a.stdout));
    // PID 1, the shell, ls, wc and kernel threads: not B's redis.
    assert!(procs < 100, "A counts {procs} processes:\n{}", a.stdout);
    assert!(a.stdout.contains("direct: unreachable"), "{}", a.stdout);
    assert!(a.stdout.contains("forwarded: unreachable"), "A reached the host's loopback without --outbound:\n{}", a.stdout);
    // With --outbound, A reaches B as any host process could: through the
    // port forwarded for B on the host's loopback.
    let a = xc(&shared_cache(), &["run", bb.to_str().unwrap(), "--outbound", "--name", "iso-a", "--", "sh", "-c", &script]);
    assert_eq!(a.code, 0, "{a:?}");
    assert!(a.stdout.contains("forwarded: reached"), "B's forwarded port from A with --outbound:\n{}", a.stdout);
    assert!(a.stdout.contains("direct: unreachable"), "{}", a.stdout);
    assert_eq!(redis_cli(port, &["GET", "k"]).as_deref(), Some("v-from-host"), "B still up");

    let code = ctrl_c(&mut b);
    let (mut out, mut err) = (String::new(), String::new());
    b.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    b.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    // The signal reached redis through PID 1 (QEMU, in its own group, was
    // not killed by it): redis shut down and exited 0, and the status came back.
    // (redis logs to stdout.)
    assert!(out.contains("Received SIGINT scheduling shutdown"), "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(!shared_cache().join("runs/iso-b").exists(), "a clean run leaves no run directory");
}

/// The same busybox rootfs as an ext4 image on virtio-blk (root=/dev/vda).
fn busybox_ext4_wrapped() -> PathBuf {
    let tmp = tempfile::tempdir().unwrap();
    let root = host_rootfs::busybox(&tmp.path().join("busybox-ext4"));
    let spec_file = tmp.path().join("spec.json");
    std::fs::write(&spec_file, host_rootfs::spec(&["/bin/sh", "-c", "echo on-disk; grep ' / ' /proc/mounts; touch /written; exit 9"], "disk").to_string()).unwrap();
    let mut args = vec!["wrap", "--rootfs", root.to_str().unwrap(), "--spec", spec_file.to_str().unwrap(), "--rootfs-format", "ext4"];
    args.extend(KERNEL);
    let r = xc(&shared_cache(), &args).expect_code(0);
    assert!(r.stderr.contains("rootfs as ext4"), "the choice is printed: {}", r.stderr);
    PathBuf::from(r.stdout.lines().last().unwrap())
}

#[test]
fn an_ext4_rootfs_on_virtio_blk_runs_and_each_run_starts_from_the_image_as_wrapped() {
    let _g = heavy();
    let dir = busybox_ext4_wrapped();
    assert!(dir.join("rootfs.ext4").is_file());
    for _ in 0..2 {
        let r = xc(&shared_cache(), &["run", dir.to_str().unwrap()]);
        assert_eq!(r.code, 9, "{r:?}");
        assert!(r.stdout.starts_with("on-disk\n/dev/root / ext4 rw"), "{}", r.stdout);
    }
    // snapshot=on: the run's write went to a throw-away overlay.
    let ls = Command::new("debugfs").arg("-R").arg("ls /").arg(dir.join("rootfs.ext4")).output().unwrap();
    assert!(!String::from_utf8_lossy(&ls.stdout).contains("written"));
}

#[test]
fn an_initramfs_the_memory_cannot_hold_is_refused_naming_the_sizes() {
    let _g = heavy();
    let dir = busybox_wrapped();
    let r = xc(&shared_cache(), &["run", dir.to_str().unwrap(), "--memory", "64"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("has 64 MiB") && r.stderr.contains("--rootfs-format ext4"), "{}", r.stderr);
    assert!(!r.stderr.contains("running "), "no VM was started: {}", r.stderr);
}

#[test]
fn a_translated_rootfs_runs_on_the_libos_kernel() {
    let _g = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let root = host_rootfs::busybox(&tmp.path().join("busybox-xlat"));
    let spec_file = tmp.path().join("spec.json");
    std::fs::write(&spec_file, host_rootfs::spec(&["/bin/sh", "-c", "echo translated; exit 5"], "xlat").to_string()).unwrap();
    let mut args = vec!["--json", "wrap", "--rootfs", root.to_str().unwrap(), "--spec", spec_file.to_str().unwrap(), "--translate"];
    args.extend(KERNEL);
    let w = xc(&shared_cache(), &args).expect_code(0).json();
    let rewritten = &w["manifest"]["translated"]["rewritten"];
    assert_eq!(rewritten[0]["path"], "bin/busybox", "{w}");
    assert!(rewritten[0]["sites"].as_u64().unwrap() > 0, "{w}");
    let dir = w["dir"].as_str().unwrap();
    let r = xc(&shared_cache(), &["run", dir]);
    assert_eq!(r.code, 5, "{r:?}");
    assert_eq!(r.stdout, "translated\n");
}


#[test]
fn a_run_killed_with_sigkill_takes_its_qemu_with_it_and_its_name_can_be_reused() {
    let _g = heavy();
    let dir = busybox_wrapped();
    let name = format!("sigkill-{}", std::process::id());
    let mut child = run_cmd(&[dir.to_str().unwrap(), "--name", &name, "--", "sh", "-c", "echo up; sleep 600"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut first = [0u8; 3];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    assert_eq!(&first, b"up\n");
    let qemu = xc_tests::container::qemu_child_of(child.id()).expect("the container's QEMU is running");
    child.kill().unwrap(); // SIGKILL: run cannot clean up
    child.wait().unwrap();
    let start = Instant::now();
    while Path::new(&format!("/proc/{qemu}")).exists() && !xc_tests::container::is_zombie(qemu) {
        assert!(start.elapsed() < Duration::from_secs(10), "QEMU {qemu} outlived its SIGKILLed run by 10 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The dead run's directory names a dead pid: the name is free again.
    let r = xc(&shared_cache(), &["run", dir.to_str().unwrap(), "--name", &name, "--", "true"]);
    assert_eq!(r.code, 0, "{r:?}");
}

/// Taps of earlier test processes that were killed before their Drop ran:
/// one left with the same host address would take the route to the
/// container's subnet, and the host's replies would leave by the dead tap.
fn remove_stale_taps() {
    let out = Command::new("ip").args(["-o", "link", "show"]).output().expect("ip (iproute2)");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split(": ").nth(1).map(|n| n.split('@').next().unwrap_or(n)) else { continue };
        let Some(pid) = name.strip_prefix("xct").and_then(|p| p.parse::<u32>().ok()) else { continue };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["link", "del", name]).status();
        }
    }
}

/// A tap device for one test, removed when dropped.
struct Tap(String);

impl Tap {
    fn new(name: &str, host_cidr: &str) -> Tap {
        let ip = |args: &[&str]| {
            let st = Command::new("ip").args(args).status().expect("ip (iproute2)");
            assert!(st.success(), "ip {args:?}");
        };
        let _ = Command::new("ip").args(["link", "del", name]).stderr(Stdio::null()).status();
        remove_stale_taps();
        ip(&["tuntap", "add", "dev", name, "mode", "tap"]);
        let tap = Tap(name.to_owned());
        ip(&["addr", "add", host_cidr, "dev", name]);
        ip(&["link", "set", name, "up"]);
        tap
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

/// What the container's server sends: a line, then TAIL zero bytes (more
/// than the guest's socket buffers pass in the moment before it exits).
const SERVER_LINE: &str = "from-container-server\n";
const TAIL: usize = 1_000_000;

/// `--network tap:IFNAME`: the container has its own address on the host's
/// tap network and both directions work without any forward: it connects to
/// a listener on the host's tap address, and the host connects to a server
/// in the container at the container's address.
#[test]
fn on_a_tap_network_the_container_has_its_own_address_both_ways() {
    let _g = heavy();
    let dir = busybox_wrapped();
    let tap = Tap::new(&format!("xct{}", std::process::id()), "172.31.250.1/24");
    let listener = TcpListener::bind("172.31.250.1:0").expect("listen on the tap's host address");
    let port = listener.local_addr().unwrap().port();
    let line = SERVER_LINE.trim_end();
    let script = format!(
        "cat /etc/resolv.conf; ip -4 addr show eth0 2>/dev/null | grep -o 'inet [0-9./]*' || ifconfig eth0; \
         nc 172.31.250.1 {port} -e echo hello-over-tap; \
         printf '#!/bin/sh\\necho {line}\\nhead -c {TAIL} /dev/zero\\n' > /tmp/srv; chmod +x /tmp/srv; \
         nc -l -p 7000 -e /tmp/srv"
    );
    let child = run_cmd(&[
        dir.to_str().unwrap(), "--network", &format!("tap:{}", tap.0), "--ip", "172.31.250.2/24", "--dns", "172.31.250.1", "--", "sh", "-c", &script,
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0)
    .spawn()
    .unwrap();
    let mut run = RunGuard(child);
    let child = &mut run.0;
    listener.set_nonblocking(true).unwrap();
    let start = Instant::now();
    let mut conn = loop {
        if let Ok((c, peer)) = listener.accept() {
            assert_eq!(peer.ip().to_string(), "172.31.250.2", "the container connects from its --ip");
            break c;
        }
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            panic!("run exited ({st}) before connecting to the host:\n{err}");
        }
        assert!(start.elapsed() < Duration::from_secs(240), "the container never reached 172.31.250.1:{port}");
        std::thread::sleep(Duration::from_millis(100));
    };
    conn.set_nonblocking(false).unwrap();
    // Bounded reads: a reply lost with the VM must fail the test, not hang it.
    conn.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut got = String::new();
    conn.read_to_string(&mut got).expect("the container's message and its FIN arrive over the tap");
    assert_eq!(got, "hello-over-tap\n");
    // Retry only a refused connect (nc may not listen yet): nc serves one
    // connection, and a connect given up while the guest (slow under TCG)
    // was accepting it would leave the next one in the listen backlog,
    // never served. (Seen with a 2 s connect timeout on a loaded host: the
    // test waited forever on a connection the VM had ended without.)
    let start = Instant::now();
    let mut server = loop {
        match std::net::TcpStream::connect_timeout(&"172.31.250.2:7000".parse().unwrap(), Duration::from_secs(60)) {
            Ok(s) => break s,
            Err(e) => assert!(start.elapsed() < Duration::from_secs(240), "the host never reached the container's server at 172.31.250.2:7000: {e}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    server.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut reply = String::new();
    server.read_to_string(&mut reply).expect("the container's reply and its FIN arrive before the VM ends");
    // The container's last act: what it sent must all arrive, its last byte
    // too, though the VM ends right after.
    assert_eq!(reply.len(), SERVER_LINE.len() + TAIL, "the whole reply, its last byte included");
    assert!(reply.starts_with(SERVER_LINE) && reply.bytes().skip(SERVER_LINE.len()).all(|b| b == 0), "{:?}", &reply[..40.min(reply.len())]);
    let status = child.wait().unwrap();
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(status.success(), "{status}\n{out}");
    assert!(out.contains("nameserver 172.31.250.1"), "--dns reached resolv.conf:\n{out}");
    assert!(out.contains("172.31.250.2"), "eth0 has the --ip:\n{out}");
}

#[test]
fn bad_network_flags_are_named_before_any_vm_starts() {
    let _g = heavy(); // the wrap may have to build the kernel
    let dir = busybox_wrapped();
    let d = dir.to_str().unwrap();
    for (args, says) in [
        (vec![d, "--network", "tap:no-such-tap0", "--ip", "10.9.9.2/24"], "ip tuntap add dev no-such-tap0"),
        (vec![d, "--network", "tap:lo", "--ip", "10.9.9.2/24"], "not a tap device"),
        (vec![d, "--network", "tap:x0"], "needs --ip"),
        (vec![d, "--network", "tap:x0", "--ip", "10.9.9.2/24", "-p", "8080:80"], "-p forwards through QEMU's user network"),
        (vec![d, "--ip", "10.9.9.2/24"], "need --network tap"),
        (vec![d, "--network", "tap:x0", "--ip", "10.9.9.2"], "prefix length"),
    ] {
        let mut a = vec!["run"];
        a.extend(&args);
        let r = xc(&shared_cache(), &a);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(r.stderr.contains(says), "{args:?}: expected `{says}` in:\n{}", r.stderr);
    }
}
