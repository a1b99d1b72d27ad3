//! Errors a kernel engineer will hit, on a real 6.1 tree: each must name
//! the thing at fault and leave nothing half-written in the cache.

use xc_tests::{heavy, shared_cache, shared_image, xc};

fn profile_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(d.path().join(format!("{name}.toml")), text).unwrap();
    }
    d
}

#[test]
fn misspelt_option_names_the_closest_real_symbol() {
    let _lock = heavy();
    let d = profile_dir(&[("typo", "inherits = [\"minimal\"]\nenable = [\"PRINK\"]\n")]);
    let r = xc(&shared_cache(), &["config", "--kernel", "6.1", "--profiles-dir", d.path().to_str().unwrap(), "--profile", "typo"]);
    let r = r.expect_code(2);
    assert!(r.stderr.contains("CONFIG_PRINK (from typo)"), "{}", r.stderr);
    assert!(r.stderr.contains("did you mean CONFIG_PRINTK?"), "{}", r.stderr);
}

#[test]
fn option_with_unmet_dependency_is_explained_from_kconfig() {
    let _lock = heavy();
    // SERIAL_8250_PCI depends on PCI, which minimal leaves off.
    let d = profile_dir(&[("pci8250", "inherits = [\"minimal\"]\nenable = [\"SERIAL_8250_PCI\"]\n")]);
    let r = xc(&shared_cache(), &["--json", "config", "--kernel", "6.1", "--profiles-dir", d.path().to_str().unwrap(), "--profile", "pci8250"]);
    let r = r.expect_code(3);
    assert!(r.stderr.contains("CONFIG_SERIAL_8250_PCI wanted y (from pci8250), got n"), "{}", r.stderr);
    assert!(r.stderr.contains("PCI=n"), "the unmet symbol must be named: {}", r.stderr);
    assert!(r.stderr.contains("drivers/tty/serial/8250/Kconfig"), "the Kconfig file must be named: {}", r.stderr);
    // Nothing was published for the failed configuration.
    let configs = shared_cache().join("configs");
    let leftovers: Vec<_> = std::fs::read_dir(&configs)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("pci8250") || n.starts_with(".staging"))
        .collect();
    assert!(leftovers.is_empty(), "left in cache: {leftovers:?}");
}

#[test]
fn conflicting_layers_are_reported_not_silently_merged() {
    let d = profile_dir(&[("mods", "inherits = [\"minimal\"]\nenable = [\"MODULES\"]\n")]);
    let r = xc(&shared_cache(), &["config", "--kernel", "6.1", "--profiles-dir", d.path().to_str().unwrap(), "--profile", "mods"]);
    let r = r.expect_code(2);
    assert!(r.stderr.contains("CONFIG_MODULES: minimal sets it to n, mods sets it to y"), "{}", r.stderr);
}

#[test]
fn wrong_checksum_is_refused_and_nothing_is_cached() {
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("linux");
    std::fs::create_dir_all(tree.join("arch/x86")).unwrap();
    std::fs::write(tree.join("Makefile"), "VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 7\nEXTRAVERSION =\n").unwrap();
    std::fs::write(tree.join("Kconfig"), "mainmenu \"x\"\n").unwrap();
    std::fs::write(tree.join("arch/x86/Kconfig"), "config X86\n\tdef_bool y\n").unwrap();
    let tarball = work.path().join("linux.tar.gz");
    let st = std::process::Command::new("tar").arg("czf").arg(&tarball).arg("-C").arg(work.path()).arg("linux").status().unwrap();
    assert!(st.success());
    let cache = work.path().join("cache");
    let bad = "0".repeat(64);
    let r = xc(&cache, &["pull", "--tarball", tarball.to_str().unwrap(), "--sha256", &bad]).expect_code(2);
    assert!(r.stderr.contains(&bad), "{}", r.stderr);
    let entries = cache.join("sources");
    let n = std::fs::read_dir(&entries).map(|d| d.count()).unwrap_or(0);
    assert_eq!(n, 0, "a refused pull left entries in {}", entries.display());
    // The right checksum works, and the version comes from the Makefile.
    let out = std::process::Command::new("sha256sum").arg(&tarball).output().unwrap();
    let good = String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string();
    let ok = xc(&cache, &["--json", "pull", "--tarball", tarball.to_str().unwrap(), "--sha256", &good]).expect_code(0).json();
    assert_eq!(ok["tree"]["version"]["sublevel"], 7);
    assert_eq!(ok["cache_hit"], false);
}

#[test]
fn a_kernel_that_cannot_find_init_fails_the_boot() {
    let _lock = heavy();
    let cache = shared_cache();
    let dir = shared_image("6.1", "stock").display().to_string();
    // No /init to run and a named init that does not exist: the kernel panics, QEMU must stop
    // by itself (panic=-1, -no-reboot), and boot must say so.
    let r = xc(&cache, &["--json", "boot", &dir, "--append", "rdinit=/nonexistent", "--append", "init=/nonexistent", "--timeout", "120"]);
    let r = r.expect_code(1);
    let v = r.json();
    assert_eq!(v["passed"], false);
    assert_eq!(v["timed_out"], false, "the VM must stop by itself on panic");
    let failures = v["failures"].to_string();
    assert!(failures.contains("Panic") || failures.contains("panic"), "{failures}");
    // A boot record in the cache keeps its log and report, not the initramfs.
    let out = std::path::Path::new(v["out_dir"].as_str().unwrap());
    assert!(out.join("console.log").is_file() && out.join("report.json").is_file());
    assert!(!out.join("initramfs.cpio").exists(), "the boot record kept a copy of the initramfs");
}

fn fake_kernel_tarball(work: &std::path::Path) -> std::path::PathBuf {
    let tree = work.join("linux");
    std::fs::create_dir_all(tree.join("arch/x86")).unwrap();
    std::fs::write(tree.join("Makefile"), "VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 7\nEXTRAVERSION =\n").unwrap();
    std::fs::write(tree.join("Kconfig"), "mainmenu \"x\"\n").unwrap();
    std::fs::write(tree.join("arch/x86/Kconfig"), "config X86\n\tdef_bool y\n").unwrap();
    let tarball = work.join("linux.tar.gz");
    let st = std::process::Command::new("tar").arg("czf").arg(&tarball).arg("-C").arg(work).arg("linux").status().unwrap();
    assert!(st.success());
    tarball
}

#[test]
fn source_flags_that_would_do_nothing_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let tarball = fake_kernel_tarball(work.path());
    let t = tarball.to_str().unwrap();
    let dir = work.path().join("linux");
    let d = dir.to_str().unwrap();
    let sha = "0".repeat(64);
    let cases: &[&[&str]] = &[
        &["--dir", d, "--sha256", &sha],
        &["--git", d, "--ref", "HEAD", "--sha256", &sha],
        &["--dir", d, "--ref", "HEAD"],
        &["--tarball", t, "--ref", "HEAD"],
        &["--kernel", "6.1", "--ref", "HEAD"],
        &["--ref", "HEAD"],
    ];
    for flags in cases {
        let args: Vec<&str> = ["--json", "pull"].iter().copied().chain(flags.iter().copied()).collect();
        let r = xc(&cache, &args).expect_code(2);
        let v = r.json();
        assert_eq!(v["exit_code"], 2, "{flags:?}");
        let error = v["error"].as_str().unwrap();
        assert!(error.contains("--sha256") || error.contains("--ref") || error.contains("--git"), "{flags:?}: {error}");
        assert!(!cache.join("sources").exists(), "{flags:?} pulled something");
    }
}

#[test]
fn sha256_with_kernel_checks_the_debian_tarball() {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let bad = "0".repeat(64);
    let r = xc(&cache, &["pull", "--kernel", "6.1", "--sha256", &bad]).expect_code(2);
    assert!(r.stderr.contains("SHA-256 mismatch") && r.stderr.contains("linux-source-6.1"), "{}", r.stderr);
    assert!(r.stderr.contains(&bad), "{}", r.stderr);
    assert!(!cache.join("sources").exists(), "a refused pull unpacked something");
}

#[test]
fn usage_errors_in_json_mode_print_the_error_object() {
    let work = tempfile::tempdir().unwrap();
    for args in [&["--json", "pull", "--no-such-flag"][..], &["--json", "boot", "/x", "--timeout", "0"], &["--json"]] {
        let r = xc(work.path(), args).expect_code(2);
        let v = r.json();
        assert_eq!(v["exit_code"], 2, "{args:?}");
        assert!(!v["error"].as_str().unwrap().is_empty(), "{args:?}");
        assert!(v["causes"].is_array(), "{args:?}");
        assert!(r.stderr.contains("error:"), "clap's text still goes to stderr: {}", r.stderr);
    }
    // --help is not an error, and prints no JSON object.
    let r = xc(work.path(), &["--json", "pull", "--help"]).expect_code(0);
    assert!(r.stdout.contains("Usage"), "{}", r.stdout);
}

#[test]
fn messages_name_what_is_really_wrong() {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let missing = work.path().join("no-such");
    let m = missing.to_str().unwrap();
    // A --dir that does not exist is not "not a Linux kernel tree".
    let r = xc(&cache, &["pull", "--dir", m]).expect_code(2);
    assert!(r.stderr.contains("does not exist") && !r.stderr.contains("kernel tree"), "{}", r.stderr);
    // A --git repository that does not exist is not blamed on the ref.
    let r = xc(&cache, &["pull", "--git", m, "--ref", "v6.1"]).expect_code(2);
    assert!(r.stderr.contains("does not exist") && !r.stderr.contains("v6.1"), "{}", r.stderr);
    // An unknown ref says so (git --quiet prints nothing).
    let repo = work.path().join("linux");
    fake_kernel_tarball(work.path());
    let git = |args: &[&str]| {
        let st = std::process::Command::new("git").arg("-C").arg(&repo).args(["-c", "user.name=t", "-c", "user.email=t@e.invalid"]).args(args).output().unwrap();
        assert!(st.status.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "x"]);
    let r = xc(&cache, &["pull", "--git", repo.to_str().unwrap(), "--ref", "no-such-tag"]).expect_code(2);
    assert!(r.stderr.contains("`no-such-tag` is not a commit: no branch, tag or commit"), "{}", r.stderr);
    // An empty tarball is empty, not "unsupported compression unknown".
    let empty = work.path().join("empty.tar.xz");
    std::fs::write(&empty, b"").unwrap();
    let r = xc(&cache, &["pull", "--tarball", empty.to_str().unwrap()]).expect_code(2);
    assert!(r.stderr.contains("is empty") && !r.stderr.contains("compression"), "{}", r.stderr);
    // A tarball that holds no kernel is named, not its deleted scratch tree.
    let notk = work.path().join("notk");
    std::fs::create_dir_all(notk.join("proj")).unwrap();
    std::fs::write(notk.join("proj/Makefile"), "all:\n").unwrap();
    let tarball = work.path().join("proj.tar");
    assert!(std::process::Command::new("tar").arg("cf").arg(&tarball).arg("-C").arg(&notk).arg("proj").status().unwrap().success());
    let r = xc(&cache, &["pull", "--tarball", tarball.to_str().unwrap()]).expect_code(2);
    assert!(r.stderr.contains("proj.tar is not a Linux kernel tree") && !r.stderr.contains(".tmp-"), "{}", r.stderr);
    // --timeout 0 would kill every VM at once.
    let r = xc(&cache, &["boot", "/nonexistent", "--timeout", "0"]).expect_code(2);
    assert!(r.stderr.contains("--timeout"), "{}", r.stderr);
    let r = xc(&cache, &["bench", "--timeout", "0"]).expect_code(2);
    assert!(r.stderr.contains("--timeout"), "{}", r.stderr);
}
