//! Real, unmodified applications from OCI images on their own kernels:
//! redis, nginx and a Python program, wrapped from OCI layouts and docker
//! saves built offline from Debian's packages (tests/src/images.rs), on the
//! 6.1 library-OS kernel and on the stock kernel of the same profile, with
//! the results compared. Real kernels and QEMU (TCG): heavy.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use xc_tests::images::{self, BadImage, Form, TestImage};
use xc_tests::container::{ctrl_c, free_port, redis_cli};
use xc_tests::{binary, heavy, shared_cache, xc, PROFILE};

const LIBOS: &[&str] = &["--kernel", "6.1", "--profile", PROFILE, "--mode", "libos"];
const STOCK: &[&str] = &["--kernel", "6.1", "--profile", PROFILE, "--mode", "stock"];
/// 6.12's libos kernel: the container-smp image libos_pipeline also boots.
const LIBOS_6_12: &[&str] = &["--kernel", "6.12", "--profile", PROFILE, "--mode", "libos"];

/// `wrap IMAGE` on `kernel`; the wrapped directory (wrap's last line).
fn wrap(image: &Path, kernel: &[&str]) -> PathBuf {
    let mut args = vec!["wrap", image.to_str().unwrap()];
    args.extend(kernel);
    let r = xc(&shared_cache(), &args).expect_code(0);
    PathBuf::from(r.stdout.lines().last().expect("wrap prints the directory"))
}

/// `run DIR -p PORT:GUEST` in the background, as its own process group.
fn spawn_run(dir: &Path, port: u16, guest: u16) -> Child {
    let mut c = Command::new(binary());
    c.arg("--cache").arg(shared_cache()).arg("run").arg(dir).arg("-p").arg(format!("{port}:{guest}"));
    c.stdout(Stdio::null()).stderr(Stdio::piped()).process_group(0);
    c.spawn().unwrap()
}

/// Poll `f` until it gives a value (the VM boots under TCG: tens of seconds).
fn wait_for<T>(child: &mut Child, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(240) {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("run exited ({status}) before {what}:\n{err}");
        }
        if let Some(v) = f() {
            return v;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("no {what} within 240 s");
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).ok()?;
    reply.starts_with("HTTP/1.1 200").then(|| reply.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default())
}

/// What a redis container answers to SET/GET/INCR through a forwarded port.
fn redis_session(dir: &Path) -> Vec<String> {
    let port = free_port();
    let mut child = spawn_run(dir, port, 6379);
    wait_for(&mut child, "redis answering PING", || redis_cli(port, &["PING"]).filter(|p| p == "PONG"));
    let replies = vec![
        redis_cli(port, &["SET", "greeting", "hello from a container"]).unwrap(),
        redis_cli(port, &["GET", "greeting"]).unwrap(),
        redis_cli(port, &["INCRBY", "n", "41"]).unwrap(),
        redis_cli(port, &["INCR", "n"]).unwrap(),
    ];
    assert_eq!(ctrl_c(&mut child), 0, "redis stops cleanly on Ctrl-C");
    replies
}

/// The page an nginx container serves through a forwarded port.
fn nginx_page(dir: &Path) -> String {
    let port = free_port();
    let mut child = spawn_run(dir, port, 80);
    let body = wait_for(&mut child, "nginx serving /", || http_get(port, "/"));
    ctrl_c(&mut child);
    body
}

fn run_to_end(dir: &Path) -> (i32, String) {
    let r = xc(&shared_cache(), &["run", dir.to_str().unwrap()]);
    (r.code, r.stdout)
}

#[test]
fn redis_nginx_and_python_images_give_the_same_results_on_libos_and_stock() {
    let _lock = heavy();
    let mut results = Vec::new();
    for kernel in [LIBOS, STOCK] {
        let python = run_to_end(&wrap(&images::image(TestImage::Python, Form::OciTar), kernel));
        assert_eq!(python, (0, images::python_expected_output() + "\n"), "python on {kernel:?}");
        let redis = redis_session(&wrap(&images::redis(), kernel));
        assert_eq!(redis, ["OK", "hello from a container", "41", "42"], "redis on {kernel:?}");
        let page = nginx_page(&wrap(&images::image(TestImage::Nginx, Form::DockerLegacy), kernel));
        assert_eq!(page, images::NGINX_INDEX_BODY, "nginx on {kernel:?}");
        results.push((python, redis, page));
    }
    assert_eq!(results[0], results[1], "libos and stock must agree");
}

#[test]
fn run_of_an_image_wraps_it_first_and_whiteouts_hold_in_the_guest() {
    let _lock = heavy();
    // With the suite's shared profile: run's default (container) would be
    // one more kernel to compile for this test alone.
    let r = xc(&shared_cache(), &["run", "--profile", PROFILE, images::image(TestImage::Whiteouts, Form::DockerOci).to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "new\nfrom layer 2\n", "layer 1's file is gone and the opaque dir holds only layer 2's");
    assert!(r.stderr.contains("wrapped "), "run says it wrapped the image: {}", r.stderr);
}

#[test]
fn a_bad_image_is_one_clear_error_and_nothing_is_published() {
    let _lock = heavy();
    let wrapped_dir = shared_cache().join("wrapped");
    let count = || std::fs::read_dir(&wrapped_dir).map(|d| d.count()).unwrap_or(0);
    for (bad, names) in [
        (BadImage::DigestMismatch, "sha256:"),
        (BadImage::Traversal, ".."),
        (BadImage::NoAmd64, "linux/amd64"),
        (BadImage::NoCommand, "Cmd"),
        (BadImage::MissingEntrypoint, "entrypoint"),
    ] {
        let before = count();
        let image = images::bad_image(bad);
        let mut args = vec!["--json", "wrap", image.to_str().unwrap()];
        args.extend(LIBOS);
        let r = xc(&shared_cache(), &args);
        assert_eq!(r.code, 2, "{bad:?}: {}\n{}", r.stdout, r.stderr);
        let v = r.json();
        let text = format!("{} {}", v["error"], v["causes"]);
        assert!(text.contains(names), "{bad:?}: the error names {names}: {text}");
        assert_eq!(count(), before, "{bad:?}: nothing published");
    }
}

#[test]
fn redis_nginx_and_python_images_run_on_the_6_12_libos_kernel_too() {
    let _lock = heavy();
    let python = run_to_end(&wrap(&images::python(), LIBOS_6_12));
    assert_eq!(python, (0, images::python_expected_output() + "\n"));
    let redis = redis_session(&wrap(&images::image(TestImage::Redis, Form::DockerOci), LIBOS_6_12));
    assert_eq!(redis, ["OK", "hello from a container", "41", "42"]);
    assert_eq!(nginx_page(&wrap(&images::nginx(), LIBOS_6_12)), images::NGINX_INDEX_BODY);
}

/// Under network load the kernel log stays clean: virtio-net interrupts
/// arrive while redis and nginx run at CPL 0, on two vCPUs (6.12's SMP
/// container kernel). `ab` and `redis-benchmark` from the host, through the
/// forwarded ports; then the console must hold no oops, BUG, WARNING or
/// panic (`run` would also exit 3 on one: both are checked).
#[test]
fn under_network_load_on_two_cpus_the_libos_kernel_log_stays_clean() {
    let _lock = heavy();
    let loaded = |dir: &Path, name: &str, guest: u16, load: &dyn Fn(u16) -> String| {
        let port = free_port();
        let mut c = Command::new(binary());
        c.arg("--cache").arg(shared_cache()).arg("run").arg(dir).args(["--cpus", "2", "--keep", "--name", name, "-p", &format!("{port}:{guest}")]);
        let mut child = c.stdout(Stdio::null()).stderr(Stdio::piped()).process_group(0).spawn().unwrap();
        wait_for(&mut child, "the server answering", || if guest == 80 { http_get(port, "/").map(|_| ()) } else { redis_cli(port, &["PING"]).filter(|p| p == "PONG").map(|_| ()) });
        let report = load(port);
        assert_eq!(ctrl_c(&mut child), 0, "{name}: a clean stop after the load (3 would be a kernel problem)\n{report}");
        let console_path = shared_cache().join("runs").join(name).join("console.log");
        let console = std::fs::read_to_string(&console_path).unwrap();
        for bad in ["Oops", "BUG:", "WARNING:", "Kernel panic", "general protection"] {
            assert!(!console.contains(bad), "{name}: `{bad}` in {}:\n{console}", console_path.display());
        }
        std::fs::remove_dir_all(console_path.parent().unwrap()).unwrap();
        report
    };
    let ab = loaded(&wrap(&images::nginx(), LIBOS_6_12), "load-nginx", 80, &|port| {
        let out = Command::new("ab").args(["-n", "1000", "-c", "8", &format!("http://127.0.0.1:{port}/")]).output().expect("ab (apache2-utils)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    });
    assert!(ab.contains("Complete requests:      1000") && ab.contains("Failed requests:        0"), "{ab}");
    let rb = loaded(&wrap(&images::redis(), LIBOS_6_12), "load-redis", 6379, &|port| {
        let out = Command::new("redis-benchmark")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "-c", "8", "-n", "2000", "-t", "set,get,lpush"])
            .output()
            .expect("redis-benchmark (redis-tools)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    });
    for t in ["SET", "GET", "LPUSH"] {
        assert!(rb.lines().any(|l| l.contains(t) && l.contains("requests per second")), "{t} did not complete:\n{rb}");
    }
}
