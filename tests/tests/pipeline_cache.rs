//! The fast tier: the cache's rules (relocation, per-key locks, stale
//! staging, damaged entries) and freshness (change one input, exactly the
//! dependent stages rebuild), on the fake kernel tree, in seconds.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use xc_tests::{binary, fake_image_args, fake_tree, xc, xc_env, Run};

/// `build` of the fake tree with `profile`, plus extra flags.
fn build(cache: &Path, tree: &Path, profile: &str, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let mut args: Vec<String> = vec!["--json".into(), "-v".into(), "build".into()];
    args.extend(fake_image_args(tree, profile));
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    xc_env(cache, &args, env)
}

/// A private copy of the fake tree (tests that change a source file).
fn tree_copy(dir: &Path) -> PathBuf {
    let dest = dir.join("linux");
    let ok = Command::new("cp").arg("-a").arg(fake_tree()).arg(&dest).status().unwrap().success();
    assert!(ok);
    dest
}

/// Which stages said they rebuilt (`-v` lines "<stage>: rebuilding because ...").
fn rebuilt(r: &Run) -> Vec<String> {
    r.stderr
        .lines()
        .filter_map(|l| l.trim_start_matches("xc-convert:").trim().split_once(": rebuilding because "))
        .map(|(stage, why)| format!("{stage}: {why}"))
        .collect()
}

fn staging_dirs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(".staging-")).collect()
}

#[test]
fn a_cache_moved_whole_keeps_every_entry_a_hit() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let first = build(&a, &fake_tree(), "fake", &[], &[]).expect_code(0).json();
    assert_eq!(first["cache_hit"], false);
    let b = tmp.path().join("b");
    assert!(Command::new("mv").arg(&a).arg(&b).status().unwrap().success());
    let moved = build(&b, &fake_tree(), "fake", &[], &[]).expect_code(0);
    assert_eq!(rebuilt(&moved), Vec::<String>::new(), "{}", moved.stderr);
    let v = moved.json();
    assert_eq!(v["cache_hit"], true);
    assert!(v["output_dir"].as_str().unwrap().starts_with(b.to_str().unwrap()));
    // No record anywhere still names the old root.
    for e in walk(&b) {
        if e.extension().is_some_and(|x| x == "json") {
            let text = std::fs::read_to_string(&e).unwrap();
            assert!(!text.contains(a.to_str().unwrap()), "{} names the old cache root", e.display());
        }
    }
    let cfg = xc(&b, &["--json", "config", "--dir", fake_tree().to_str().unwrap(), "--profiles-dir", xc_tests::fake_profiles().to_str().unwrap(), "--profile", "fake"]).expect_code(0).json();
    assert_eq!(cfg["cache_hit"], true);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() && !p.is_symlink() {
            if p.file_name().unwrap() != "tree" {
                out.extend(walk(&p));
            }
        } else {
            out.push(p);
        }
    }
    out
}

fn spawn_build(cache: &Path, profile: &str, log: &Path, seconds: &str) -> std::process::Child {
    let mut cmd = Command::new(binary());
    cmd.arg("--cache").arg(cache).arg("--json").arg("build").args(fake_image_args(&fake_tree(), profile));
    cmd.env("FAKE_BUILD_LOG", log).env("FAKE_BUILD_SECONDS", seconds).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.spawn().unwrap()
}

#[test]
fn two_processes_asking_for_one_image_compile_it_once() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("c");
    let log = tmp.path().join("builds.log");
    let first = spawn_build(&cache, "fake", &log, "3");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let second = spawn_build(&cache, "fake", &log, "3");
    let (a, b) = (first.wait_with_output().unwrap(), second.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success(), "{}\n{}", String::from_utf8_lossy(&a.stderr), String::from_utf8_lossy(&b.stderr));
    let starts = std::fs::read_to_string(&log).unwrap().lines().filter(|l| l.starts_with("start")).count();
    assert_eq!(starts, 1, "the image was compiled {starts} times");
    let err_b = String::from_utf8_lossy(&b.stderr);
    assert!(err_b.contains("waiting for another xc-convert"), "the second process must say it waits:\n{err_b}");
    let va: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    let vb: serde_json::Value = serde_json::from_slice(&b.stdout).unwrap();
    assert_eq!(va["output_dir"], vb["output_dir"]);
    assert_eq!((va["cache_hit"].as_bool(), vb["cache_hit"].as_bool()), (Some(false), Some(true)));
}

#[test]
fn two_different_images_build_in_parallel() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("c");
    // Pull once first so neither waits on the source lock.
    build(&cache, &fake_tree(), "fake-lost", &[], &[]);
    let log = tmp.path().join("builds.log");
    let a = spawn_build(&cache, "fake", &log, "4");
    let b = spawn_build(&cache, "minimal-fake-int", &log, "4");
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let lines: Vec<String> = std::fs::read_to_string(&log).unwrap().lines().map(str::to_string).collect();
    let first_end = lines.iter().position(|l| l.starts_with("end")).unwrap();
    let starts_before = lines[..first_end].iter().filter(|l| l.starts_with("start")).count();
    assert_eq!(starts_before, 2, "different keys must not wait for each other: {lines:?}");
}

#[test]
fn a_killed_build_leaves_staging_that_the_next_build_removes() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("c");
    let log = tmp.path().join("builds.log");
    let mut child = spawn_build(&cache, "fake", &log, "30");
    // Wait until the compile runs, then kill -9 (no destructor runs).
    for _ in 0..100 {
        if std::fs::read_to_string(&log).is_ok_and(|t| t.contains("start")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let builds = cache.join("builds");
    assert_eq!(staging_dirs(&builds).len(), 1, "a killed build leaves its staging directory");
    let shown = xc(&cache, &["--json", "cache"]).expect_code(0).json();
    let row = shown["usage"].as_array().unwrap().iter().find(|r| r["stage"] == "builds").unwrap().clone();
    assert_eq!(row["leftovers"], 1, "{shown:#}");
    let again = build(&cache, &fake_tree(), "fake", &[], &[]).expect_code(0).json();
    assert_eq!(again["cache_hit"], false);
    assert!(staging_dirs(&builds).is_empty(), "the next build of that key removed the dead one's staging");
}

#[test]
fn cache_clean_frees_what_dead_processes_left_but_not_what_a_live_one_holds() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("c");
    build(&cache, &fake_tree(), "fake", &[], &[]).expect_code(0);
    let stale = cache.join("configs").join(".staging-6.1.999-fake-fake-0000#dead");
    std::fs::create_dir_all(stale.join("obj")).unwrap();
    std::fs::write(stale.join("obj/.config"), vec![b'x'; 4096]).unwrap();
    let cleaned = xc(&cache, &["--json", "cache", "clean"]).expect_code(0).json();
    assert!(!stale.exists());
    assert!(cleaned["freed_bytes"].as_u64().unwrap() >= 4096, "{cleaned:#}");
    // The entries themselves stay.
    assert_eq!(build(&cache, &fake_tree(), "fake", &[], &[]).expect_code(0).json()["cache_hit"], true);
}

#[test]
fn a_damaged_image_is_rebuilt_not_served_and_boot_refuses_it() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("c");
    let dir = build(&cache, &fake_tree(), "fake", &[], &[]).expect_code(0).json()["output_dir"].as_str().unwrap().to_string();
    let bz = Path::new(&dir).join("bzImage");
    let bytes = std::fs::read(&bz).unwrap();
    std::fs::write(&bz, &bytes[..bytes.len() / 2]).unwrap();
    let r = xc(&cache, &["--json", "boot", &dir]).expect_code(3);
    assert!(r.json()["error"].as_str().unwrap().contains("bzImage"), "{}", r.stdout);
    let again = build(&cache, &fake_tree(), "fake", &[], &[]).expect_code(0);
    assert!(again.stderr.contains("damaged"), "{}", again.stderr);
    assert_eq!(again.json()["cache_hit"], false);
    assert_eq!(std::fs::read(&bz).unwrap(), bytes);
    // Same size, other bytes: found with --verify.
    let mut flipped = bytes.clone();
    flipped[0] ^= 1;
    std::fs::write(&bz, &flipped).unwrap();
    assert_eq!(build(&cache, &fake_tree(), "fake", &[], &[]).expect_code(0).json()["cache_hit"], true, "size-only check on a plain hit");
    let verified = build(&cache, &fake_tree(), "fake", &["--verify"], &[]).expect_code(0);
    assert_eq!(verified.json()["cache_hit"], false, "--verify hashes and rebuilds");
    assert_eq!(std::fs::read(&bz).unwrap(), bytes);
}

// Freshness, as cargo's tests/testsuite/freshness.rs: change one input,
// exactly the stages that depend on it rebuild, and say why with -v.

#[test]
fn nothing_changed_nothing_rebuilds() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("c");
    let first = build(&cache, &fake_tree(), "fake", &[], &[]).expect_code(0);
    assert_eq!(rebuilt(&first), vec!["configs: no earlier entry", "builds: no earlier entry"]);
    let second = build(&cache, &fake_tree(), "fake", &[], &[]).expect_code(0);
    assert_eq!(rebuilt(&second), Vec::<String>::new(), "{}", second.stderr);
    assert!(second.stderr.contains("cached tree"), "the source is not pulled again");
}

fn write_profile(dir: &Path, int: u32, description: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("fresh.toml"),
        format!("description = \"{description}\"\nbase = \"tinyconfig\"\nenable = [\"FAKE_NET\"]\n\n[set]\nFAKE_INT = {int}\n"),
    )
    .unwrap();
}

fn build_fresh(cache: &Path, tree: &Path, profiles: &Path) -> Run {
    let args = ["--json", "-v", "build", "--dir", tree.to_str().unwrap(), "--profiles-dir", profiles.to_str().unwrap(), "--profile", "fresh"];
    xc(cache, &args).expect_code(0)
}

#[test]
fn a_changed_profile_option_rebuilds_config_and_image_but_not_the_source() {
    let tmp = tempfile::tempdir().unwrap();
    let (cache, profiles) = (tmp.path().join("c"), tmp.path().join("p"));
    write_profile(&profiles, 3, "first");
    build_fresh(&cache, &fake_tree(), &profiles);
    write_profile(&profiles, 4, "first");
    let r = build_fresh(&cache, &fake_tree(), &profiles);
    assert_eq!(rebuilt(&r), vec!["configs: profile: changed", "builds: config: changed, dot_config: changed"], "{}", r.stderr);
    assert!(r.stderr.contains("cached tree"));
}

#[test]
fn a_changed_description_rebuilds_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (cache, profiles) = (tmp.path().join("c"), tmp.path().join("p"));
    write_profile(&profiles, 3, "first");
    build_fresh(&cache, &fake_tree(), &profiles);
    write_profile(&profiles, 3, "reworded");
    let r = build_fresh(&cache, &fake_tree(), &profiles);
    assert_eq!(rebuilt(&r), Vec::<String>::new(), "{}", r.stderr);
    assert_eq!(r.json()["cache_hit"], true);
}

#[test]
fn a_changed_source_file_rebuilds_every_stage_after_pull() {
    let tmp = tempfile::tempdir().unwrap();
    let (cache, profiles) = (tmp.path().join("c"), tmp.path().join("p"));
    let tree = tree_copy(tmp.path());
    write_profile(&profiles, 3, "first");
    build_fresh(&cache, &tree, &profiles);
    std::fs::write(tree.join("kernel/fake.c"), "int fake = 2;\n").unwrap();
    let r = build_fresh(&cache, &tree, &profiles);
    assert!(r.stderr.contains("unpacked into"), "the changed tree is pulled: {}", r.stderr);
    // The .config is the same; the source under it is not.
    assert_eq!(rebuilt(&r), vec!["configs: source: changed", "builds: config: changed"], "{}", r.stderr);
    assert_eq!(r.json()["cache_hit"], false);
}

#[test]
fn a_boot_refused_before_it_starts_leaves_no_record() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("c");
    let dir = build(&cache, &fake_tree(), "fake", &[], &[]).expect_code(0).json()["output_dir"].as_str().unwrap().to_string();
    let r = xc(&cache, &["--json", "boot", &dir, "--init", "no-such-program"]).expect_code(2);
    assert!(r.json()["error"].as_str().unwrap().contains("no-such-program"), "{}", r.stdout);
    let boots: Vec<_> = std::fs::read_dir(cache.join("boots")).map(|d| d.flatten().collect()).unwrap_or_default();
    assert!(boots.is_empty(), "a refused boot left {boots:?}");
}
