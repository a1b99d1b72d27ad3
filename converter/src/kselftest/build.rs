//! Build selftests from the very tree an image was built from, once per
//! tree and suite list (a `selftests/` cache entry).
//!
//! The kernel's own Makefiles do the work: `make headers` into a scratch
//! object directory (the tree is read-only input: `O=`), then, per suite,
//! `make -C tools/testing/selftests/<suite> OUTPUT=<entry>/<suite>
//! CC="gcc -static" -k` so every test is a static binary that runs in the
//! busybox initramfs, and one test that does not build does not stop the
//! others. Only 64-bit tests are built (no multilib on the host; the x86
//! suite's `_32` variants need `gcc -m32`). The test list is the suite's own
//! (`make emit_tests`). Fallbacks, where a Makefile cannot make a static
//! binary, are in [`prebuild`]; a listed test that still did not build is
//! recorded as `not_built`, never silently dropped.

use super::{check_suite_name, KselftestError};
use crate::pipeline::build::Manifest;
use crate::pipeline::Context;
use build_farm::{get_or_create, Entry, Stage};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Bumped when the layout of an entry or the way tests are built changes.
const SCHEMA: u32 = 1;
/// The build log inside the entry.
pub const BUILD_LOG: &str = "build.log";

/// How one listed test came out of the build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestKind {
    /// A static x86-64 executable: it runs in the guest.
    Elf,
    /// A script (bash or python): the initramfs has only busybox, not run.
    Script,
    /// Listed by the suite but no binary came out of the build.
    NotBuilt,
}

/// One test of a suite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelftestTest {
    /// Path below the suite's directory (`sigreturn_64`, `functional/futex_wait`).
    pub name: String,
    pub kind: TestKind,
}

/// One suite's build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuiteBuild {
    pub name: String,
    /// `make`'s exit status (`-k`: non-zero when any target failed).
    pub make_status: Option<i32>,
    pub tests: Vec<SelftestTest>,
}

/// `selftests.json`, written last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelftestsRecord {
    pub schema: u32,
    pub kernel_version: String,
    /// The tree's identity: the image manifest's `source_hash`.
    pub tree_hash: String,
    /// The tree, relative to the cache root.
    pub tree: PathBuf,
    pub key: String,
    pub suites: Vec<SuiteBuild>,
}

/// A built entry.
#[derive(Debug, Clone)]
pub struct BuiltSelftests {
    /// The entry directory: `<suite>/...` as the Makefiles left it.
    pub dir: PathBuf,
    pub record: SelftestsRecord,
    pub cache_hit: bool,
}

/// The cached tree an image was built from: the patched tree for libos, the
/// pulled one for stock (both keyed by the manifest's `source_hash`).
pub fn tree_of(ctx: &Context, image_dir: &Path, m: &Manifest) -> Result<PathBuf, KselftestError> {
    let pulled = ctx.layout.entry_dir(Stage::Sources, &m.source_hash).join("tree");
    if pulled.join("Makefile").is_file() {
        return Ok(pulled);
    }
    let short = &m.source_hash[..m.source_hash.len().min(16)];
    let patched_dir = ctx.layout.stage_dir(Stage::Patched);
    if let Ok(entries) = fs::read_dir(&patched_dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let tree = e.path().join("tree");
            if name.starts_with(&format!("{}-", m.kernel_version)) && name.ends_with(&format!("-{short}")) && tree.join("Makefile").is_file() {
                return Ok(tree);
            }
        }
    }
    Err(KselftestError::TreeMissing { image: image_dir.to_owned(), hash: m.source_hash.clone(), cache: ctx.layout.root().to_owned() })
}

/// The selftests of `suites` for the tree of the image `m`, built once.
pub fn ensure_built(ctx: &Context, image_dir: &Path, m: &Manifest, suites: &[String]) -> Result<BuiltSelftests, KselftestError> {
    let tree = tree_of(ctx, image_dir, m)?;
    let selftests = tree.join("tools/testing/selftests");
    for s in suites {
        check_suite_name(s)?;
        if !selftests.join(s).join("Makefile").is_file() {
            return Err(KselftestError::UnknownSuite { suite: s.clone(), dir: selftests.clone() });
        }
    }
    let gcc = crate::host::version_line("gcc").unwrap_or_default();
    let fp = crate::pipeline::fingerprint()
        .with_hash("tree", &m.source_hash)
        .with_json("suites", &suites)
        .with("gcc", &gcc)
        .with("schema", SCHEMA.to_string());
    let name = format!("{}-{}", m.kernel_version, fp.short_key());
    let entry = Entry::new(&ctx.layout, Stage::Selftests, name);
    let dir = entry.dir();
    let load = || -> Result<Option<SelftestsRecord>, KselftestError> { Ok(entry.read_record::<SelftestsRecord>()?) };
    let (record, outcome) = get_or_create(&entry, &ctx.on_wait(&entry), load, |staging| {
        ctx.status(format!("building selftests {} of Linux {} from {}", suites.join(" "), m.kernel_version, tree.display()));
        let scratch = ctx.layout.work_dir().join(format!(".selftests-{}-{}", entry.name(), std::process::id()));
        let built = build_into(&tree, &scratch, staging.path(), suites);
        let _ = fs::remove_dir_all(&scratch);
        let suites = built?;
        let record = SelftestsRecord {
            schema: SCHEMA,
            kernel_version: m.kernel_version.clone(),
            tree_hash: m.source_hash.clone(),
            tree: ctx.layout.relative(&tree),
            key: fp.key(),
            suites,
        };
        build_farm::write_json_atomic(&staging.path().join(Stage::Selftests.record_name()), &record)?;
        staging.publish()?;
        Ok(record)
    })?;
    Ok(BuiltSelftests { dir, record, cache_hit: outcome.is_hit() })
}

fn build_into(tree: &Path, scratch: &Path, out: &Path, suites: &[String]) -> Result<Vec<SuiteBuild>, KselftestError> {
    fs::create_dir_all(scratch).map_err(build_farm::at("create", scratch))?;
    let log_path = out.join(BUILD_LOG);
    let obj = scratch.join("obj");
    // The UAPI headers of this very tree, not the host's linux-libc-dev.
    let status = make(&log_path, tree, &[format!("O={}", obj.display()), "headers".into()])?;
    if status != Some(0) {
        return Err(KselftestError::Make { command: format!("make -C {} headers", tree.display()), status: format!("{status:?}"), log: log_path });
    }
    let khdr = format!("KHDR_INCLUDES=-isystem {}", obj.join("usr/include").display());
    let mut builds = Vec::new();
    for suite in suites {
        let src = tree.join("tools/testing/selftests").join(suite);
        // Built in the scratch directory, then moved into the entry: the
        // staging directory's name has a `#`, which make reads as a comment
        // where OUTPUT goes through $(eval) (6.12's x86 Makefile).
        let output = scratch.join("out").join(suite);
        fs::create_dir_all(&output).map_err(build_farm::at("create", &output))?;
        prebuild(suite, &src, &output, &obj, &log_path)?;
        let common = vec![format!("OUTPUT={}", output.display()), khdr.clone(), "CC=gcc -static".to_string()];
        let mut args = common.clone();
        args.extend(["-k".to_string(), "-j2".to_string(), "all".to_string()]);
        let make_status = make(&log_path, &src, &args)?;
        let listed = emit_tests(&src, &common)?;
        let tests = classify(&src, &output, &listed);
        let dest = out.join(suite);
        fs::rename(&output, &dest).map_err(build_farm::at("move into the entry", &output))?;
        builds.push(SuiteBuild { name: suite.clone(), make_status, tests });
    }
    Ok(builds)
}

/// Fallbacks for what a suite's Makefile cannot build statically.
///
/// * rseq links every test with `-lrseq` against `librseq.so`, which cannot
///   be built with `gcc -static`. The same `rseq.c` is compiled into a
///   static archive and placed where the Makefile expects `librseq.so`
///   (ld reads an archive by its content, whatever its name) and as
///   `librseq.a` (what `-static -lrseq` looks for), so the tests link it in
///   and make does not try to rebuild it.
fn prebuild(suite: &str, src: &Path, output: &Path, obj: &Path, log: &Path) -> Result<(), KselftestError> {
    if suite == "rseq" && src.join("rseq.c").is_file() {
        let o = output.join("rseq.o");
        let inc = format!("-isystem{}", obj.join("usr/include").display());
        // as the Makefile's CFLAGS: the suite, its parent (kselftest.h) and tools/include
        let selftests = src.parent().unwrap_or(src);
        let tools_include = selftests.join("../../include");
        let st = run_logged(
            log,
            Command::new("gcc")
                .current_dir(src)
                .args(["-O2", "-Wall", "-I./", "-c", "rseq.c", "-o"])
                .arg(&o)
                .arg(&inc)
                .arg(format!("-I{}", selftests.display()))
                .arg(format!("-I{}", tools_include.display())),
        )?;
        if st == Some(0) {
            // librseq.a for `-static -lrseq`; librseq.so so make sees its prerequisite
            for lib in ["librseq.a", "librseq.so"] {
                run_logged(log, Command::new("ar").arg("rcs").arg(output.join(lib)).arg(&o))?;
            }
        }
        let _ = fs::remove_file(&o);
    }
    Ok(())
}

fn emit_tests(src: &Path, common: &[String]) -> Result<Vec<String>, KselftestError> {
    let out = Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(src)
        .args(common)
        .arg("emit_tests")
        .stderr(Stdio::null())
        .output()
        .map_err(|source| KselftestError::Spawn { program: "make".into(), source })?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.rsplit_once(':').map(|(_, t)| t.trim().to_string()))
        .filter(|t| !t.is_empty())
        .collect())
}

/// Each listed test as built; a listed script that drives binaries in
/// subdirectories (futex's run.sh runs `functional/*`) contributes those
/// binaries as tests of their own, since the script itself needs bash.
fn classify(src: &Path, output: &Path, listed: &[String]) -> Vec<SelftestTest> {
    let mut tests = Vec::new();
    let mut any_script = false;
    for name in listed {
        // generated tests are in OUTPUT; scripts (TEST_PROGS) stay in the source
        let built = output.join(name);
        let path = if built.exists() { built } else { src.join(name) };
        let kind = match fs::read(&path) {
            Ok(b) if crate::guest::check_static_elf(&b).is_ok() => TestKind::Elf,
            Ok(b) if b.starts_with(b"\x7fELF") => TestKind::NotBuilt,
            Ok(_) => {
                any_script = true;
                TestKind::Script
            }
            Err(_) => TestKind::NotBuilt,
        };
        tests.push(SelftestTest { name: name.clone(), kind });
    }
    if any_script {
        let mut sub = Vec::new();
        walk_elves(output, output, &mut sub);
        sub.sort();
        for name in sub.into_iter().filter(|n| n.contains('/')) {
            tests.push(SelftestTest { name, kind: TestKind::Elf });
        }
    }
    tests
}

fn walk_elves(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            walk_elves(root, &p, out);
        } else if ft.is_file() {
            let Ok(bytes) = fs::read(&p) else { continue };
            if crate::guest::check_static_elf(&bytes).is_ok() && is_executable(&p) {
                if let Ok(rel) = p.strip_prefix(root) {
                    out.push(rel.to_string_lossy().into_owned());
                }
            }
        }
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).map(|m| m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

fn make(log: &Path, dir: &Path, args: &[String]) -> Result<Option<i32>, KselftestError> {
    run_logged(log, Command::new("make").arg("-C").arg(dir).args(args))
}

/// Run a command with stdout and stderr appended to `log`.
fn run_logged(log: &Path, cmd: &mut Command) -> Result<Option<i32>, KselftestError> {
    use std::io::Write;
    let mut f = fs::OpenOptions::new().create(true).append(true).open(log).map_err(build_farm::at("open", log))?;
    let _ = writeln!(f, "$ {cmd:?}");
    let err = f.try_clone().map_err(build_farm::at("open", log))?;
    let program = cmd.get_program().to_string_lossy().into_owned();
    let status = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(f))
        .stderr(Stdio::from(err))
        .status()
        .map_err(|source| KselftestError::Spawn { program, source })?;
    Ok(status.code())
}

/// A built-selftests value for unit tests: one x86 suite with these tests.
#[cfg(test)]
pub(crate) fn fixture(dir: &Path, make_status: Option<i32>, tests: &[(&str, TestKind)]) -> BuiltSelftests {
    BuiltSelftests {
        dir: dir.to_owned(),
        cache_hit: false,
        record: SelftestsRecord {
            schema: 1,
            kernel_version: "6.1.192".into(),
            tree_hash: "h".into(),
            tree: "t".into(),
            key: "k".into(),
            suites: vec![SuiteBuild {
                name: "x86".into(),
                make_status,
                tests: tests.iter().map(|(n, kind)| SelftestTest { name: (*n).into(), kind: *kind }).collect(),
            }],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_tests_are_classified_by_what_the_build_left() {
        let d = tempfile::tempdir().unwrap();
        let probe = crate::guest::find("probe").unwrap().bytes;
        fs::write(d.path().join("a_64"), probe).unwrap();
        fs::write(d.path().join("run.sh"), b"#!/bin/bash\n").unwrap();
        fs::create_dir(d.path().join("functional")).unwrap();
        let f = d.path().join("functional/futex_wait");
        fs::write(&f, probe).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&f, fs::Permissions::from_mode(0o755)).unwrap();
        let src = tempfile::tempdir().unwrap();
        fs::write(src.path().join("check.py"), b"#!/usr/bin/python3\n").unwrap();
        let got = classify(src.path(), d.path(), &["a_64".into(), "run.sh".into(), "missing".into(), "check.py".into()]);
        let want = vec![
            SelftestTest { name: "a_64".into(), kind: TestKind::Elf },
            SelftestTest { name: "run.sh".into(), kind: TestKind::Script },
            SelftestTest { name: "missing".into(), kind: TestKind::NotBuilt },
            SelftestTest { name: "check.py".into(), kind: TestKind::Script },
            SelftestTest { name: "functional/futex_wait".into(), kind: TestKind::Elf },
        ];
        assert_eq!(got, want);
    }
}
