//! Issue 21: the guest is untrusted, and so is every name. Each test is
//! named after the item it guards.

use std::path::Path;
use std::process::{Command, Stdio};
use xc_tests::container::{busybox_wrapped, free_port};
use xc_tests::{heavy, shared_cache, xc};

/// A cache with something in it and a sibling directory beside it: what a
/// hostile name would reach.
struct Victims {
    _root: tempfile::TempDir,
    cache: std::path::PathBuf,
    sibling: std::path::PathBuf,
}

impl Victims {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let cache = root.path().join("cache");
        let sibling = root.path().join("victim");
        for d in [cache.join("runs/other"), cache.join("images"), sibling.clone()] {
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("keep"), b"keep").unwrap();
        }
        Self { _root: root, cache, sibling }
    }

    fn intact(&self, what: &str) {
        for d in [self.cache.join("runs/other"), self.cache.join("images"), self.sibling.clone()] {
            assert_eq!(std::fs::read(d.join("keep")).ok().as_deref(), Some(&b"keep"[..]), "{what}: {} was touched", d.display());
        }
    }
}

/// Item 1: `run --name` with a name that is not one safe component is
/// exit 2 naming the flag, before anything is removed or started.
#[test]
fn run_name_cannot_delete_directories() {
    let v = Victims::new();
    let sibling = v.sibling.display().to_string();
    let hostile = ["..", ".", "", "/", sibling.as_str(), "../victim", "../../victim", "a/../..", "runs/../..", "a/b", "-x", ".hidden", "a b", "a\nb"];
    for name in hostile {
        // The image path does not exist either: the name must be refused first.
        let r = xc(&v.cache, &["run", &format!("--name={name}"), "/nonexistent-image"]);
        assert_eq!(r.code, 2, "--name {name:?}: {}", r.stderr);
        assert!(r.stderr.contains("--name"), "--name {name:?}: the error does not name the flag: {}", r.stderr);
        v.intact(&format!("--name {name:?}"));
    }
    let long = "a".repeat(129);
    let r = xc(&v.cache, &["run", "--name", &long, "/nonexistent-image"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--name") && r.stderr.contains("128"), "{}", r.stderr);
    assert!(Path::new(&v.sibling).is_dir());
}

/// Item 5 (and what `cache clean` may remove): a killed `wrap`'s image unpack (`.unpack-<pid>-*` under
/// wrapped/) is a leftover, not an entry, and `cache clean` frees it; one
/// whose `wrap` still runs is kept.
#[test]
fn killed_wrap_unpack_is_a_leftover_and_cache_clean_frees_it() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("c");
    let wrapped = cache.join("wrapped");
    // A pid no process has (pid_max is at most 2^22).
    let dead = wrapped.join(".unpack-99999999-abc");
    let live = wrapped.join(format!(".unpack-{}-def", std::process::id()));
    for d in [&dead, &live] {
        std::fs::create_dir_all(d.join("rootfs/etc")).unwrap();
        std::fs::write(d.join("rootfs/etc/big"), vec![0u8; 1 << 20]).unwrap();
    }
    let shown = xc(&cache, &["--json", "cache"]).expect_code(0).json();
    let row = shown["usage"].as_array().unwrap().iter().find(|r| r["stage"] == "wrapped").unwrap().clone();
    assert_eq!(row["entries"], 0, "unpack scratch counted as an entry: {shown:#}");
    assert_eq!(row["leftovers"], 2, "{shown:#}");
    // A symlink with a leftover's name, into a directory outside the cache:
    // not something wrap made, so neither it nor its target is removed.
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("keep"), b"keep").unwrap();
    let link = wrapped.join(".unpack-99999998-link");
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    let cleaned = xc(&cache, &["--json", "cache", "clean"]).expect_code(0).json();
    assert!(!dead.exists(), "cache clean left a dead wrap's unpack");
    assert!(outside.join("keep").is_file() && std::fs::symlink_metadata(&link).is_ok(), "cache clean removed a symlink it did not make, or its target");
    assert!(live.join("rootfs/etc/big").is_file(), "cache clean removed a live wrap's unpack");
    assert!(cleaned["freed_bytes"].as_u64().unwrap() >= 1 << 20, "{cleaned:#}");
}

/// Item 3: a container that writes PID 1's exit report to the control
/// port (as it used to read, and with a guessed token) and then exits 7
/// makes `run` exit 7, not 0. It lives on for longer than `run` waits for
/// the VM to stop after an exit report (10 s), which is what made the
/// forgery stick: `run` killed the VM and kept the forged 0.
#[test]
fn guest_cannot_forge_exit_status() {
    let _g = heavy();
    let dir = busybox_wrapped();
    let script = "for l in 'XC-EXIT 0' 'XC-EXIT - 0' 'XC-EXIT 00000000000000000000000000000000 0'; do echo \"$l\" > /dev/ttyS3; done; \
                  echo wrote-forgeries; sleep 12; exit 7";
    let r = xc(&shared_cache(), &["run", dir.to_str().unwrap(), "--", "sh", "-c", script]);
    assert!(r.stdout.contains("wrote-forgeries"), "the container did not run its forgery:\n{r:?}");
    assert_eq!(r.code, 7, "a forged XC-EXIT was taken for PID 1's report:\n{r:?}");
}

/// Item 2: a service bound to the host's 127.0.0.1 is out of a container's
/// reach by default (slirp shows the host's loopback as 10.0.2.2); with
/// `--outbound`, whose help says it opens exactly that, it is reached, so
/// the first half is not passing because the guest's fetch cannot work.
#[test]
fn container_cannot_reach_host_loopback() {
    let _g = heavy();
    let port = free_port();
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("secret.txt"), "host-only-secret\n").unwrap();
    let server = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string()])
        .current_dir(root.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Kill(server);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "python3 -m http.server did not listen on {port}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let dir = busybox_wrapped();
    let fetch = format!("printf 'GET /secret.txt HTTP/1.0\\r\\n\\r\\n' | nc -w 5 10.0.2.2 {port}; echo fetch-done");
    let closed = xc(&shared_cache(), &["run", dir.to_str().unwrap(), "--", "sh", "-c", &fetch]);
    assert_eq!(closed.code, 0, "{closed:?}");
    assert!(closed.stdout.contains("fetch-done"), "{closed:?}");
    assert!(!closed.stdout.contains("host-only-secret"), "a container fetched a page from the host's 127.0.0.1:\n{}", closed.stdout);
    let open = xc(&shared_cache(), &["run", dir.to_str().unwrap(), "--outbound", "--", "sh", "-c", &fetch]);
    assert_eq!(open.code, 0, "{open:?}");
    assert!(open.stdout.contains("host-only-secret"), "with --outbound the host's loopback is reachable, as its help says:\n{}", open.stdout);
}

/// Item 4: `abom` refuses what is not a regular ELF file without reading
/// it whole: /dev/zero, a directory, a sparse file of 2 GiB with or without
/// an ELF header. Run with its address space capped at 256 MiB, so reading
/// any of them into memory fails the test (an abort, not exit 2).
#[test]
fn abom_rewrite_refuses_non_regular_and_huge_input_without_reading_it() {
    let tmp = tempfile::tempdir().unwrap();
    let sparse = tmp.path().join("sparse");
    std::fs::File::create(&sparse).unwrap().set_len(2 << 30).unwrap();
    let sparse_elf = tmp.path().join("sparse-elf");
    let mut header = std::fs::read("/bin/true").unwrap();
    header.truncate(64);
    std::fs::write(&sparse_elf, &header).unwrap();
    std::fs::OpenOptions::new().write(true).open(&sparse_elf).unwrap().set_len(2 << 30).unwrap();
    let out = tmp.path().join("out");
    let cases: [(&Path, &str); 4] = [
        (Path::new("/dev/zero"), "character device"),
        (tmp.path(), "directory"),
        (&sparse, "not an ELF64 file"),
        (&sparse_elf, "more than the"),
    ];
    for (input, says) in cases {
        for action in [&["rewrite", input.to_str().unwrap(), out.to_str().unwrap()][..], &["scan", input.to_str().unwrap()][..]] {
            let r = Command::new("prlimit")
                .arg(format!("--as={}", 256u64 << 20))
                .arg(xc_tests::binary())
                .arg("abom")
                .args(action)
                .output()
                .expect("prlimit (util-linux)");
            let stderr = String::from_utf8_lossy(&r.stderr);
            assert_eq!(r.status.code(), Some(2), "abom {action:?}: {stderr}");
            assert!(stderr.contains(says) && stderr.contains(input.to_str().unwrap()), "abom {action:?}: {stderr}");
            assert_eq!(stderr.matches(says).count(), 1, "printed twice: {stderr}");
        }
        assert!(!out.exists(), "{}: an output was written", input.display());
    }
}

/// Item 6: the image's own files under /tmp and /run are what the
/// container sees (PID 1 mounted tmpfs over them), and /tmp stays
/// writable.
#[test]
fn image_files_under_tmp_and_run_are_kept() {
    let _g = heavy();
    let dir = xc_tests::container::wrap(
        "busybox-tmp-run",
        |d| {
            let root = xc_tests::host_rootfs::busybox(d);
            for (sub, mode) in [("tmp", 0o1777), ("run", 0o755)] {
                std::fs::create_dir_all(root.join(sub)).unwrap();
                std::fs::write(root.join(sub).join("from-image"), format!("{sub}-from-image\n")).unwrap();
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(root.join(sub), std::fs::Permissions::from_mode(mode)).unwrap();
            }
            root
        },
        xc_tests::host_rootfs::spec(&["/bin/sh", "-c", "cat /tmp/from-image /run/from-image && echo w > /tmp/new && cat /tmp/new"], "tr"),
    );
    let r = xc(&shared_cache(), &["run", dir.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "tmp-from-image\nrun-from-image\nw\n", "{r:?}");
}

/// Item 8: requests that cannot work are exit 2 naming the flag or path,
/// before a kernel is built or a VM started.
#[test]
fn bad_requests_are_refused_early_with_exit_2() {
    // A mistyped image path on an empty cache: refused before any kernel
    // is pulled or built (the cache gets no sources or builds).
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("empty-cache");
    let not_image = tmp.path().join("not-an-image");
    std::fs::create_dir_all(&not_image).unwrap();
    std::fs::write(tmp.path().join("notes.txt"), b"hello").unwrap();
    for (cmd, path) in [("run", tmp.path().join("typo")), ("wrap", tmp.path().join("typo")), ("wrap", not_image.clone()), ("run", tmp.path().join("notes.txt"))] {
        let started = std::time::Instant::now();
        let r = xc(&cache, &[cmd, path.to_str().unwrap()]);
        assert_eq!(r.code, 2, "{cmd} {}: {r:?}", path.display());
        assert!(r.stderr.contains(path.to_str().unwrap()), "{cmd}: the error does not name the path: {}", r.stderr);
        assert!(!cache.join("sources").exists() && !cache.join("builds").exists(), "{cmd} {}: a kernel was fetched for it", path.display());
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "{cmd}: took {:?}", started.elapsed());
    }
}

/// Item 8, on a wrapped container: the same host port twice, more memory
/// than the host has, or several CPUs on a kernel without SMP are exit 2
/// naming the flag, and no VM starts (each returns at once).
#[test]
fn run_flags_that_cannot_work_are_refused_before_the_vm_starts() {
    let dir = busybox_wrapped();
    let d = dir.to_str().unwrap();
    let port = free_port().to_string();
    let cases: [(&[&str], &str); 3] = [
        (&["-p", &format!("{port}:80"), "-p", &format!("{port}:81")], "both take host port"),
        (&["-p", &format!("127.0.0.1:{port}:80"), "-p", &format!("0.0.0.0:{port}:81")], "both take host port"),
        (&["--memory", "99999999"], "--memory 99999999"),
    ];
    for (flags, says) in cases {
        let mut args = vec!["run", d];
        args.extend(flags);
        let r = xc(&shared_cache(), &args);
        assert_eq!(r.code, 2, "{flags:?}: {r:?}");
        assert!(r.stderr.contains(says), "{flags:?}: {}", r.stderr);
        assert!(!r.stderr.contains("running "), "{flags:?}: a VM was started: {}", r.stderr);
    }
    // The same container pointing at a kernel configuration without SMP
    // (a copy of its wrapped.json; the real image is SMP).
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("wrapped");
    std::fs::create_dir_all(&copy).unwrap();
    for f in std::fs::read_dir(dir).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), copy.join(f.file_name())).unwrap();
    }
    let up = tmp.path().join("up-image");
    std::fs::create_dir_all(&up).unwrap();
    std::fs::write(up.join("config"), "CONFIG_X86_64=y\n# CONFIG_SMP is not set\n").unwrap();
    let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(copy.join("wrapped.json")).unwrap()).unwrap();
    m["kernel"]["image_dir"] = serde_json::json!(up);
    std::fs::write(copy.join("wrapped.json"), m.to_string()).unwrap();
    let r = xc(&shared_cache(), &["run", copy.to_str().unwrap(), "--cpus", "2"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--cpus 2") && r.stderr.contains("CONFIG_SMP"), "{}", r.stderr);
}

/// Item 8: a dynamic entrypoint whose ELF interpreter is not in the image
/// fails with 127 and PID 1 names the interpreter.
#[test]
fn a_missing_interpreter_is_named() {
    let _g = heavy();
    let dir = xc_tests::container::wrap(
        "busybox-no-ld",
        |d| {
            let root = xc_tests::host_rootfs::busybox(d);
            std::fs::create_dir_all(root.join("opt")).unwrap();
            std::fs::copy("/usr/bin/redis-server", root.join("opt/dynamic")).unwrap();
            std::fs::write(root.join("opt/script"), "#!/no/such/shell\necho hi\n").unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(root.join("opt/script"), std::fs::Permissions::from_mode(0o755)).unwrap();
            root
        },
        xc_tests::host_rootfs::spec(&["/opt/dynamic"], "nold"),
    );
    let r = xc(&shared_cache(), &["run", dir.to_str().unwrap()]);
    assert_eq!(r.code, 127, "{r:?}");
    assert!(r.stderr.contains("its interpreter /lib64/ld-linux-x86-64.so.2 is missing"), "{}", r.stderr);
    let r = xc(&shared_cache(), &["run", dir.to_str().unwrap(), "--", "/opt/script"]);
    assert_eq!(r.code, 127, "{r:?}");
    assert!(r.stderr.contains("its interpreter /no/such/shell is missing"), "{}", r.stderr);
}

/// Item 10: `run WRAPPED -- ARGS` replaces the image's Cmd and keeps its
/// Entrypoint, as `docker run IMAGE ARGS` (and our own `wrap IMAGE ARGS`)
/// do; `--entrypoint` replaces the Entrypoint and drops the Cmd.
#[test]
fn run_args_replace_cmd_and_entrypoint_replaces_the_entrypoint_as_in_docker() {
    let _g = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("ep-image");
    xc_tests::images::Image::new(
        "ep",
        serde_json::json!({"Entrypoint": ["echo", "from-entrypoint"], "Cmd": ["from-cmd"], "Env": ["PATH=/bin"]}),
        vec![xc_tests::images::busybox_layer()],
    )
    .write(xc_tests::images::Form::OciDir, &image);
    let mut args = vec!["wrap", image.to_str().unwrap()];
    args.extend(xc_tests::container::KERNEL);
    let w = xc(&shared_cache(), &args).expect_code(0);
    let dir = w.stdout.lines().last().unwrap().to_owned();
    let out = |extra: &[&str]| {
        let mut a = vec!["run", dir.as_str()];
        a.extend(extra);
        let r = xc(&shared_cache(), &a);
        assert_eq!(r.code, 0, "{extra:?}: {r:?}");
        r.stdout
    };
    assert_eq!(out(&[]), "from-entrypoint from-cmd\n");
    assert_eq!(out(&["--", "a", "b"]), "from-entrypoint a b\n");
    assert_eq!(out(&["--entrypoint", "echo", "--", "only"]), "only\n");
    assert_eq!(out(&["--entrypoint", "sh", "--", "-c", "echo via-sh"]), "via-sh\n");
}

/// Item 9: Ctrl-C while the VM still boots stops `run` at once (exit 130)
/// and the entrypoint never starts; it used to start anyway and `run`
/// waited its whole stop timeout.
#[test]
fn ctrl_c_during_boot_stops_the_run_before_the_entrypoint_starts() {
    use std::os::unix::process::CommandExt;
    let _g = heavy();
    let dir = busybox_wrapped();
    let child = Command::new(xc_tests::binary())
        .arg("--cache")
        .arg(shared_cache())
        .args(["run", dir.to_str().unwrap(), "--stop-timeout", "30", "--", "sh", "-c", "echo entrypoint-started; sleep 100"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut guard = xc_tests::container::RunGuard(child);
    // QEMU is started after run watches its signals: once it exists, a
    // SIGINT is run's to handle, and the guest has barely begun to boot.
    let pid = guard.0.id();
    let started = std::time::Instant::now();
    while xc_tests::container::qemu_child_of(pid).is_none() {
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "run started no QEMU");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let t = std::time::Instant::now();
    let code = xc_tests::container::ctrl_c(&mut guard.0);
    let (mut out, mut err) = (String::new(), String::new());
    std::io::Read::read_to_string(guard.0.stdout.as_mut().unwrap(), &mut out).unwrap();
    std::io::Read::read_to_string(guard.0.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(code, 130, "stdout: {out}\nstderr: {err}");
    assert!(t.elapsed() < std::time::Duration::from_secs(10), "run took {:?} to stop", t.elapsed());
    assert!(!out.contains("entrypoint-started"), "the entrypoint started after Ctrl-C: {out}");
}

/// Item 10: wrap refuses a kernel that lacks what run's default machine
/// needs (here the fast tier's fake kernel: no serial ports, no virtio),
/// naming the options and the profile that has them, instead of a
/// container that starts without its NIC.
#[test]
fn wrap_refuses_a_kernel_without_what_the_vm_needs() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root/bin");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::copy("/bin/busybox", root.join("busybox")).unwrap();
    let spec = tmp.path().join("spec.json");
    std::fs::write(&spec, xc_tests::host_rootfs::spec(&["/bin/busybox", "true"], "h").to_string()).unwrap();
    let rootfs = tmp.path().join("root");
    let mut args: Vec<String> = ["wrap", "--rootfs", rootfs.to_str().unwrap(), "--spec", spec.to_str().unwrap(), "--mode", "stock"].map(String::from).to_vec();
    args.extend(xc_tests::fake_image_args(&xc_tests::fake_tree(), "fake"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = xc(&tmp.path().join("cache"), &args);
    assert_eq!(r.code, 2, "{r:?}");
    for o in ["CONFIG_VIRTIO_NET", "CONFIG_VIRTIO_MMIO", "CONFIG_SERIAL_8250", "--profile container"] {
        assert!(r.stderr.contains(o), "{o} not named: {}", r.stderr);
    }
    assert!(!tmp.path().join("cache/wrapped").read_dir().is_ok_and(|mut d| d.any(|e| !e.unwrap().file_name().to_string_lossy().starts_with('.'))), "something was wrapped");
}

/// Item 8: a full disk while wrap unpacks an image is the host's problem
/// (exit 4), not a bad request (it was 2). The cache's kernel stages are
/// the shared cache's; only wrapped/ is a 1 MiB tmpfs (needs root, as CI is).
#[test]
fn enospc_during_wrap_is_a_host_problem() {
    let _g = heavy();
    // The shared kernel image first, so the stages below exist.
    xc_tests::shared_image("6.1", "libos");
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    std::fs::create_dir_all(cache.join("wrapped")).unwrap();
    for stage in ["sources", "patched", "configs", "builds", "locks"] {
        std::os::unix::fs::symlink(shared_cache().join(stage), cache.join(stage)).unwrap();
    }
    let mount = Command::new("mount").args(["-t", "tmpfs", "-o", "size=1m", "xc-enospc"]).arg(cache.join("wrapped")).status().unwrap();
    assert!(mount.success(), "mount a tmpfs (the suite runs as root)");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _u = Unmount(cache.join("wrapped"));
    let image = xc_tests::images::redis();
    let mut args = vec!["wrap", image.to_str().unwrap()];
    args.extend(xc_tests::container::KERNEL);
    let r = xc(&cache, &args);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("No space left on device"), "{}", r.stderr);
}

/// Item 8: `matrix run --out` inside the cache, or holding it, is refused
/// (exit 2, naming --out) before any cell runs.
#[test]
fn matrix_out_inside_the_cache_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let spec = xc_tests::workspace().join("matrices/ci.toml");
    for out in [cache.join("results"), cache.clone(), tmp.path().to_path_buf()] {
        let r = xc(&cache, &["matrix", "run", spec.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert_eq!(r.code, 2, "--out {}: {r:?}", out.display());
        assert!(r.stderr.contains("--out") && r.stderr.contains("inside the cache"), "{}", r.stderr);
        assert!(!cache.exists(), "--out {}: the cache was created", out.display());
    }
}
