//! End to end: `patch --export DIR` gives distribution packagers a quilt
//! series with DEP-3 headers, and `quilt push -a` on the pristine tree of
//! that exact version gives the tree `xc-convert patch` makes, for 6.1 and
//! 6.12.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use xc_tests::{heavy, shared_cache, xc};

/// Every path under `root` (relative), skipping the top-level `skip`.
fn walk(root: &Path, skip: Option<&str>) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in fs::read_dir(root.join(&rel)).unwrap() {
            let e = e.unwrap();
            let r = rel.join(e.file_name());
            if rel.as_os_str().is_empty() && Some(e.file_name().to_str().unwrap()) == skip {
                continue;
            }
            if e.file_type().unwrap().is_dir() {
                stack.push(r.clone());
            }
            out.insert(r);
        }
    }
    out
}

/// Regular files under `tree` that are not hard links of the same file in
/// `pristine`: what was written rather than linked.
fn written_files(tree: &Path, pristine: &Path, paths: &BTreeSet<PathBuf>) -> BTreeSet<PathBuf> {
    paths
        .iter()
        .filter(|p| {
            let m = fs::symlink_metadata(tree.join(p)).unwrap();
            m.is_file() && fs::symlink_metadata(pristine.join(p)).map(|o| o.ino() != m.ino()).unwrap_or(true)
        })
        .cloned()
        .collect()
}

/// The DEP-3 header of `text` as (field, value) pairs, continuation lines
/// appended to their field's value; panics unless it is well formed.
fn dep3_fields(name: &str, text: &str) -> Vec<(String, String)> {
    let (header, _) = text.split_once("\n\n---\n").unwrap_or_else(|| panic!("{name}: no header ending before ---"));
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in header.lines() {
        assert!(!line.trim().is_empty(), "{name}: empty line inside the header");
        if let Some(cont) = line.strip_prefix(' ') {
            fields.last_mut().unwrap_or_else(|| panic!("{name}: starts with a continuation line")).1.push_str(&format!("\n{cont}"));
        } else {
            let (k, v) = line.split_once(": ").unwrap_or_else(|| panic!("{name}: `{line}` is not a field"));
            assert!(k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'), "{name}: field name `{k}`");
            fields.push((k.to_string(), v.to_string()));
        }
    }
    fields
}

fn export_applies_with_quilt(series: &str) {
    let _lock = heavy();
    let cache = shared_cache();
    fs::create_dir_all(&cache).unwrap();
    // Beside the cache: `cp -al` needs the same filesystem.
    let work = tempfile::Builder::new().prefix("dep3-").tempdir_in(cache.parent().unwrap()).unwrap();
    let export = work.path().join("patches");
    let r = xc(&cache, &["--json", "patch", "--kernel", series, "--export", export.to_str().unwrap()]).expect_code(0).json();
    let patched = PathBuf::from(r["patched"]["tree"]["root"].as_str().unwrap());
    let pristine = PathBuf::from(r["patched"]["pristine"]["root"].as_str().unwrap());
    let cache_series = PathBuf::from(r["patched"]["series_dir"].as_str().unwrap());

    // The JSON lists exactly what is in the directory, `series` first.
    assert_eq!(r["export"]["dir"], export.to_str().unwrap());
    let listed: Vec<String> = r["export"]["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_string()).collect();
    assert_eq!(listed[0], "series");
    let on_disk: BTreeSet<String> = fs::read_dir(&export).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(on_disk, listed.iter().cloned().collect::<BTreeSet<_>>());
    let names: Vec<String> = fs::read_to_string(export.join("series")).unwrap().lines().map(String::from).collect();
    assert_eq!(names, listed[1..], "series names every patch, in order");
    assert!(names.len() >= 5, "{names:?}");
    assert!(fs::read_dir(work.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with(".staging")));

    // DEP-3 headers: the four fields, in order; dated from the pristine
    // tree's Makefile, not today; the same diff as the cache's series.
    let date = Command::new("date").args(["-u", "+%F", "-r"]).arg(pristine.join("Makefile")).output().unwrap();
    let date = String::from_utf8(date.stdout).unwrap().trim().to_string();
    let version = env!("CARGO_PKG_VERSION");
    for name in &names {
        let text = fs::read_to_string(export.join(name)).unwrap();
        assert!(text.starts_with("Description: "), "{name}: {}", &text[..60.min(text.len())]);
        let fields = dep3_fields(name, &text);
        let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["Description", "Origin", "Forwarded", "Last-Update"], "{name}");
        assert_eq!(fields[1].1, format!("vendor, xc-convert {version}"), "{name}");
        assert_eq!(fields[2].1, "not-needed", "{name}");
        assert_eq!(fields[3].1, date, "{name}");
        let ours = fs::read_to_string(cache_series.join(name)).unwrap();
        let subject = ours.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap();
        let summary = fields[0].1.lines().next().unwrap();
        assert!(subject.ends_with(summary) && !summary.is_empty(), "{name}: `{summary}` vs `{subject}`");
        assert!(fields[0].1.lines().count() > 1, "{name}: the group's explanation is in the Description");
        assert_eq!(text.split_once("\n---\n").unwrap().1, ours.split_once("\n---\n").unwrap().1, "{name}: diff differs from the cache's series");
    }

    // Refused: the same directory again (exit 2, named, untouched).
    let before: Vec<Vec<u8>> = listed.iter().map(|f| fs::read(export.join(f)).unwrap()).collect();
    let again = xc(&cache, &["patch", "--kernel", series, "--export", export.to_str().unwrap()]).expect_code(2);
    assert!(again.stderr.contains(export.to_str().unwrap()) && again.stderr.contains("not an empty directory"), "{}", again.stderr);
    assert_eq!(before, listed.iter().map(|f| fs::read(export.join(f)).unwrap()).collect::<Vec<_>>());

    // Reproducible, and the human output ends with the directory.
    let second = work.path().join("again");
    let h = xc(&cache, &["patch", "--kernel", series, "--export", second.to_str().unwrap()]).expect_code(0);
    assert_eq!(h.stdout.trim_end().lines().last(), Some(second.to_str().unwrap()), "{}", h.stdout);
    for f in &listed {
        assert_eq!(fs::read(export.join(f)).unwrap(), fs::read(second.join(f)).unwrap(), "{f} differs between two exports");
    }

    // quilt on a hard-link copy of the pristine tree: quilt writes new
    // files (and breaks links with backup-files -L), so the cache's
    // pristine tree must come out untouched.
    let touched: BTreeSet<PathBuf> = names
        .iter()
        .flat_map(|n| fs::read_to_string(export.join(n)).unwrap().lines().filter_map(|l| l.strip_prefix("+++ b/")).map(PathBuf::from).collect::<Vec<_>>())
        .collect();
    let pristine_before: Vec<Option<Vec<u8>>> = touched.iter().map(|f| fs::read(pristine.join(f)).ok()).collect();
    let copy = work.path().join("tree");
    assert!(Command::new("cp").arg("-al").arg(&pristine).arg(&copy).status().unwrap().success());
    let q = Command::new("quilt")
        .args(["--quiltrc=-", "push", "-a", "--fuzz=0"])
        .env("QUILT_PATCHES", &export)
        .current_dir(&copy)
        .output()
        .expect("run quilt (scripts/install-deps installs it)");
    let out = String::from_utf8_lossy(&q.stdout).into_owned() + &String::from_utf8_lossy(&q.stderr);
    assert!(q.status.success(), "quilt push -a failed:\n{out}");
    // patch's warnings: "Hunk #2 succeeded at 120 (offset 3 lines)",
    // "... with fuzz 1", "FAILED", "saving rejects", "Reversed (or previously
    // applied) patch detected" (file names like asm-offsets.c are fine).
    for bad in ["(offset ", "with fuzz", "Hunk #", "FAILED", "rejects", "Reversed"] {
        assert!(!out.contains(bad), "quilt warned (`{bad}`):\n{out}");
    }
    let applied: Vec<&str> = out.lines().filter_map(|l| l.strip_prefix("Applying patch ")).collect();
    assert_eq!(applied, names.iter().map(String::as_str).collect::<Vec<_>>(), "{out}");
    assert!(out.contains(&format!("Now at patch {}", names.last().unwrap())), "{out}");
    assert_eq!(pristine_before, touched.iter().map(|f| fs::read(pristine.join(f)).ok()).collect::<Vec<_>>(), "quilt wrote through a hard link into the cache");

    // Same tree: the same paths, the same files written (not linked), and
    // those byte for byte equal to xc-convert's.
    let quilt_paths = walk(&copy, Some(".pc"));
    let patched_paths = walk(&patched, None);
    assert_eq!(quilt_paths.len(), patched_paths.len());
    assert!(quilt_paths == patched_paths, "paths differ: {:?}", quilt_paths.symmetric_difference(&patched_paths).take(10).collect::<Vec<_>>());
    let quilt_written = written_files(&copy, &pristine, &quilt_paths);
    let patched_written = written_files(&patched, &pristine, &patched_paths);
    assert_eq!(quilt_written, patched_written);
    assert_eq!(quilt_written, touched, "quilt changed exactly the files the series names");
    for f in &quilt_written {
        assert_eq!(fs::read(copy.join(f)).unwrap(), fs::read(patched.join(f)).unwrap(), "{}: quilt and xc-convert differ", f.display());
        let (a, b) = (fs::metadata(copy.join(f)).unwrap(), fs::metadata(patched.join(f)).unwrap());
        assert_eq!(a.mode() & 0o111, b.mode() & 0o111, "{}: executable bits differ", f.display());
    }
}

#[test]
fn linux_6_1_export_is_a_dep3_quilt_series_that_reproduces_the_patched_tree() {
    export_applies_with_quilt("6.1");
}

#[test]
fn linux_6_12_export_is_a_dep3_quilt_series_that_reproduces_the_patched_tree() {
    export_applies_with_quilt("6.12");
}
