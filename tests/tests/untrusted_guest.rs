//! Issue 21: the guest is untrusted, and so is every name. Each test is
//! named after the item it guards.

use std::path::Path;
use xc_tests::xc;

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
    let hostile = ["..", ".", "", "/", sibling.as_str(), "../victim", "../../victim", "runs/../..", "a/b", "-x", ".hidden", "a b", "a\nb"];
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

/// Item 5: a killed `wrap`'s image unpack (`.unpack-<pid>-*` under
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
    let cleaned = xc(&cache, &["--json", "cache", "clean"]).expect_code(0).json();
    assert!(!dead.exists(), "cache clean left a dead wrap's unpack");
    assert!(live.join("rootfs/etc/big").is_file(), "cache clean removed a live wrap's unpack");
    assert!(cleaned["freed_bytes"].as_u64().unwrap() >= 1 << 20, "{cleaned:#}");
}
