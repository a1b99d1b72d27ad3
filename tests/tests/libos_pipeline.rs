//! End to end: convert real Debian kernel trees into ring-0 library-OS
//! kernels, build them, boot them, and run the behaviour suite.

use std::path::{Path, PathBuf};
use xc_tests::{heavy, shared_cache, xc, PROFILE};

/// Copy just the files the series touches from the pristine tree into `dir`,
/// apply the series there with `tool`, and compare every touched file with
/// the converted tree, byte for byte.
fn series_reproduces_tree(pristine: &Path, patched: &Path, series: &Path, tool: &str) {
    let dir = tempfile::tempdir().unwrap();
    let names = std::fs::read_to_string(series.join("series")).unwrap();
    let mut touched = Vec::new();
    for name in names.lines() {
        let text = std::fs::read_to_string(series.join(name)).unwrap();
        for l in text.lines().filter_map(|l| l.strip_prefix("+++ b/")) {
            touched.push(l.to_string());
        }
    }
    for f in &touched {
        let from = pristine.join(f);
        if from.exists() {
            std::fs::create_dir_all(dir.path().join(f).parent().unwrap()).unwrap();
            std::fs::copy(&from, dir.path().join(f)).unwrap();
        }
    }
    for name in names.lines() {
        let p = series.join(name);
        let st = match tool {
            "patch" => std::process::Command::new("patch").args(["-p1", "-s", "-i"]).arg(&p).current_dir(dir.path()).status(),
            _ => std::process::Command::new("git").args(["apply"]).arg(&p).current_dir(dir.path()).status(),
        }
        .unwrap();
        assert!(st.success(), "{tool} failed on {name}");
    }
    for f in &touched {
        assert_eq!(std::fs::read(dir.path().join(f)).unwrap(), std::fs::read(patched.join(f)).unwrap(), "{tool}: {f} differs");
    }
}

/// `profile` is built with `--mode libos` and booted with `cpus` CPUs.
fn libos(series: &str, profile: &str, cpus: &str) {
    let _lock = heavy();
    let cache = shared_cache();

    // analyze: every anchor found, plainly convertible.
    let a = xc(&cache, &["--json", "analyze", "--kernel", series]).expect_code(0).json();
    assert_eq!(a["convertible"], true);
    let edits = a["plan"]["edits"].as_array().unwrap();
    assert!(edits.len() >= 15, "{} edits", edits.len());
    assert!(edits.iter().all(|e| e["problem"].is_null()));

    // patch: works on a copy, cached, and the quilt series reproduces it.
    let p1 = xc(&cache, &["--json", "patch", "--kernel", series]).expect_code(0).json();
    let p2 = xc(&cache, &["--json", "patch", "--kernel", series]).expect_code(0).json();
    assert_eq!(p2["cache_hit"], true);
    assert_eq!(p1["patched"]["series_hash"], p2["patched"]["series_hash"]);
    let patched_root = PathBuf::from(p1["patched"]["tree"]["root"].as_str().unwrap());
    let pristine_root = PathBuf::from(p1["patched"]["pristine"]["root"].as_str().unwrap());
    let series_dir = PathBuf::from(p1["patched"]["series_dir"].as_str().unwrap());
    let entry = std::fs::read_to_string(pristine_root.join("arch/x86/entry/entry_64.S")).unwrap();
    assert!(!entry.contains("CONFIG_XC_LIBOS"), "the cached pristine tree was modified");
    assert!(std::fs::read_to_string(patched_root.join("arch/x86/entry/entry_64.S")).unwrap().contains("CONFIG_XC_LIBOS"));
    series_reproduces_tree(&pristine_root, &patched_root, &series_dir, "patch");
    series_reproduces_tree(&pristine_root, &patched_root, &series_dir, "git");

    // build --mode libos: the manifest records the series.
    let b = xc(&cache, &["--json", "build", "--kernel", series, "--profile", profile, "--mode", "libos"]).expect_code(0).json();
    let m = &b["manifest"];
    assert_eq!(m["mode"], "libos");
    assert_eq!(m["patch_content_hash"], p1["patched"]["content_hash"]);
    assert!(m["patch_series"].as_array().unwrap().len() >= 5);
    assert_eq!(m["options"]["XC_LIBOS"], "y");
    if profile.ends_with("smp") {
        // the entry table's absolute pointers must survive relocation
        assert_eq!(m["options"]["RANDOMIZE_BASE"], "y");
    }
    let dir = b["output_dir"].as_str().unwrap().to_string();
    assert!(Path::new(&dir).join("patches/series").is_file());
    let config = std::fs::read_to_string(Path::new(&dir).join("config")).unwrap();
    assert!(config.contains("CONFIG_XC_LIBOS=y"));

    // boot: the whole behaviour suite passes, processes at CPL 0.
    let r = xc(&cache, &["--json", "boot", &dir, "--suite", "--cpus", cpus, "--timeout", "300"]);
    let v = r.json();
    assert_eq!(v["passed"], true, "failures: {:#}\nconsole: {}", v["failures"], v["console_log"]);
    assert_eq!(v["console"]["probes"][0]["cpl"], 0);
    let console = std::fs::read_to_string(v["console_log"].as_str().unwrap()).unwrap();
    assert!(console.contains("XC-CHECK xc_gs arch_set_gs PASS"), "ARCH_SET_GS check missing");
    assert!(console.contains("XC-CHECK xc_redzone"), "red-zone check missing");
    assert!(!console.contains("Oops") && !console.contains("WARNING:") && !console.contains("BUG:"));
    assert_eq!(r.code, 0);
    if cpus != "1" {
        assert!(console.contains(&format!("Brought up 1 node, {cpus} CPUs")), "not {cpus} CPUs");
    }
    // The entry table and online translation (on by default): table calls,
    // restarts, single-step, rewritten sites, the #UD fixup, counters.
    for check in ["proc_info", "getppid", "restart_block", "singlestep", "abom_site7", "abom_site9",
                  "jump_to_old_syscall", "abom_word_with_threads", "abom_counter"] {
        assert!(console.contains(&format!("XC-CHECK xc_table {check} PASS")), "xc_table {check} missing");
    }
    assert!(console.contains("XC-CHECK xc_table translation_mode PASS online_abom=1 offline=0"));

    translated_suite(&dir);
}

/// Offline translation alone (the kernel's is switched off): every guest
/// program rewritten by abom, and Debian's dynamic dash on a rewritten libc.
fn translated_suite(dir: &str) {
    let cache = shared_cache();
    // --out keeps the initramfs (a boot in the cache keeps only its log and report).
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("boot");
    let r = xc(&cache, &["--json", "boot", dir, "--suite", "--translate", "--append", "xc_abom=off", "--timeout", "300", "--out", out_dir.to_str().unwrap()]);
    let v = r.json();
    assert_eq!(v["passed"], true, "failures: {:#}\nconsole: {}", v["failures"], v["console_log"]);
    assert_eq!(r.code, 0);
    let translated = v["translated"].as_array().unwrap();
    let libc = translated.iter().find(|t| t["path"].as_str().unwrap().ends_with("libc.so.6")).expect("libc rewritten");
    assert!(libc["sites"].as_u64().unwrap() > 300, "{libc}");
    assert!(translated.iter().any(|t| t["path"] == "xc/xc_table"));
    let console = std::fs::read_to_string(v["console_log"].as_str().unwrap()).unwrap();
    assert!(console.contains("XC-CHECK xc_table translation_mode PASS online_abom=0 offline=1"));
    assert!(console.contains("XC-CHECK xc_dynamic table_calls PASS"), "dash did not go through the table");
    assert!(console.contains("XC-CHECK xc_dynamic dash_io PASS"));
    // the initramfs really holds the rewritten libc, byte for byte
    let cpio = std::fs::read(Path::new(v["out_dir"].as_str().unwrap()).join("initramfs.cpio")).unwrap();
    let host_libc = std::fs::read("/lib/x86_64-linux-gnu/libc.so.6").unwrap();
    assert!(find(&cpio, &host_libc[..4096.min(host_libc.len())]).is_some(), "libc missing from the initramfs");
    assert!(find(&cpio, &host_libc).is_none(), "the initramfs holds the unmodified libc");
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// Both series on two CPUs with KASLR: per-CPU IST stacks on the second
// CPU, threads of one process running (and rewriting) the same code on
// different CPUs, and the entry table's pointers after relocation.

#[test]
fn libos_6_1_smp_converts_builds_and_passes_the_behaviour_suite() {
    libos("6.1", PROFILE, "2");
}

#[test]
fn libos_6_12_smp_converts_builds_and_passes_the_behaviour_suite() {
    libos("6.12", PROFILE, "2");
}

#[test]
fn a_missing_anchor_stops_patch_before_anything_is_written() {
    let _lock = heavy();
    let cache = shared_cache();
    // A copy of the built-in set with one anchor that no tree has.
    let set = tempfile::tempdir().unwrap();
    let dir = set.path().join("broken");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("series.toml"), "description = \"x\"\ngroups = [\"0001-ok\", \"0002-bad\"]\n").unwrap();
    std::fs::write(dir.join("0001-ok.toml"), "description = \"ok\"\n[[edit]]\nfile = \"Makefile\"\nanchor = \"VERSION = 6\\n\"\naction = \"insert_after\"\ncontent = \"# xc\\n\"\n").unwrap();
    std::fs::write(dir.join("0002-bad.toml"), "description = \"bad\"\n[[edit]]\nfile = \"arch/x86/entry/entry_64.S\"\nanchor = \"no such instruction\"\naction = \"replace\"\n").unwrap();
    let before: Vec<_> = std::fs::read_dir(cache.join("patched")).map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect()).unwrap_or_default();
    let r = xc(&cache, &["patch", "--kernel", "6.1", "--patches-dir", dir.to_str().unwrap()]).expect_code(3);
    assert!(r.stderr.contains("0002-bad edit 1 (arch/x86/entry/entry_64.S): anchor not found: `no such instruction`"), "{}", r.stderr);
    assert!(r.stderr.contains("nothing was written"), "{}", r.stderr);
    let after: Vec<_> = std::fs::read_dir(cache.join("patched")).map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect()).unwrap_or_default();
    assert_eq!(before, after, "a refused patch left something in the cache");
    // analyze says the same, with exit status 1, and names the good edit's line.
    let a = xc(&cache, &["analyze", "--kernel", "6.1", "--patches-dir", dir.to_str().unwrap()]).expect_code(1);
    assert!(a.stdout.contains("cannot be converted"), "{}", a.stdout);
    assert!(a.stdout.contains("line 2"), "{}", a.stdout);
}
