//! Errors a kernel engineer will hit, on a real 6.1 tree: each must name
//! the thing at fault and leave nothing half-written in the cache.

use xc_tests::{heavy, shared_cache, xc};

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
    // Reuse the stock 6.1 minimal image (built by stock_pipeline, or here).
    let cache = shared_cache();
    let build = xc(&cache, &["--json", "build", "--kernel", "6.1", "--profile", "minimal"]).expect_code(0).json();
    let dir = build["output_dir"].as_str().unwrap().to_string();
    // No /init to run and a named init that does not exist: the kernel panics, QEMU must stop
    // by itself (panic=-1, -no-reboot), and boot must say so.
    let r = xc(&cache, &["--json", "boot", &dir, "--append", "rdinit=/nonexistent", "--append", "init=/nonexistent", "--timeout", "120"]);
    let r = r.expect_code(1);
    let v = r.json();
    assert_eq!(v["passed"], false);
    assert_eq!(v["timed_out"], false, "the VM must stop by itself on panic");
    let failures = v["failures"].to_string();
    assert!(failures.contains("Panic") || failures.contains("panic"), "{failures}");
}
