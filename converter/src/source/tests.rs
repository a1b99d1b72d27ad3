//! Tests for the source stage. Hostile archives are built by hand (raw
//! header bytes), because `tar::Builder`'s path setters refuse exactly the
//! names we need to prove are refused.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

use tar::{EntryType, Header};
use tempfile::TempDir;

use super::*;

/// One member of a crafted archive.
#[derive(Clone, Copy)]
struct Member<'a> {
    name: &'a str,
    kind: EntryType,
    data: &'a [u8],
    link: &'a str,
    mode: u32,
}

fn file<'a>(name: &'a str, data: &'a [u8]) -> Member<'a> {
    Member {
        name,
        kind: EntryType::Regular,
        data,
        link: "",
        mode: 0o644,
    }
}

fn exec<'a>(name: &'a str, data: &'a [u8]) -> Member<'a> {
    Member {
        mode: 0o755,
        ..file(name, data)
    }
}

fn dir(name: &str) -> Member<'_> {
    Member {
        name,
        kind: EntryType::Directory,
        data: b"",
        link: "",
        mode: 0o755,
    }
}

fn symlink<'a>(name: &'a str, target: &'a str) -> Member<'a> {
    Member {
        name,
        kind: EntryType::Symlink,
        data: b"",
        link: target,
        mode: 0o777,
    }
}

fn hardlink<'a>(name: &'a str, target: &'a str) -> Member<'a> {
    Member {
        name,
        kind: EntryType::Link,
        data: b"",
        link: target,
        mode: 0o644,
    }
}

/// A header whose name/linkname bytes are written raw, bypassing the
/// `set_path` validation.
fn raw_header(m: &Member<'_>) -> Header {
    let mut header = Header::new_gnu();
    {
        let old = header.as_old_mut();
        old.name[..m.name.len()].copy_from_slice(m.name.as_bytes());
        old.linkname[..m.link.len()].copy_from_slice(m.link.as_bytes());
    }
    header.set_entry_type(m.kind);
    header.set_size(m.data.len() as u64);
    header.set_mode(m.mode);
    header.set_mtime(0);
    header.set_cksum();
    header
}

fn tar_bytes(members: &[Member<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for m in members {
        builder.append(&raw_header(m), m.data).expect("append");
    }
    builder.into_inner().expect("finish")
}

fn xz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = xz2::write::XzEncoder::new(Vec::new(), 1);
    enc.write_all(bytes).expect("xz");
    enc.finish().expect("xz finish")
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).expect("gz");
    enc.finish().expect("gz finish")
}

const MAKEFILE: &[u8] =
    b"# SPDX-License-Identifier: GPL-2.0\nVERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 99\nEXTRAVERSION =\n";

/// The members of a minimal fake kernel tree under `top/`.
fn kernel_members(top: &str) -> Vec<(String, Member<'static>)> {
    let names = [
        ("", dir("")),
        ("Makefile", file("", MAKEFILE)),
        ("Kconfig", file("", b"mainmenu \"Linux\"\n")),
        ("arch/", dir("")),
        ("arch/x86/", dir("")),
        ("arch/x86/Kconfig", file("", b"config X86\n")),
        ("scripts/", dir("")),
        ("scripts/ld-version.sh", exec("", b"#!/bin/sh\necho 1\n")),
        ("include/", dir("")),
        ("include/dt", symlink("", "../arch/x86")),
    ];
    names
        .into_iter()
        .map(|(rel, m)| (format!("{top}{rel}"), m))
        .filter(|(name, _)| !name.is_empty())
        .collect()
}

/// Fake kernel tarball bytes (uncompressed), with `extra` appended.
fn kernel_tar(top: &str, extra: &[Member<'_>]) -> Vec<u8> {
    let owned = kernel_members(top);
    let mut members: Vec<Member<'_>> = owned
        .iter()
        .map(|(name, m)| Member {
            name: name.as_str(),
            ..*m
        })
        .collect();
    members.extend_from_slice(extra);
    tar_bytes(&members)
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).expect("write test input");
    path
}

fn tarball(path: PathBuf) -> SourceSpec {
    SourceSpec::Tarball { path, sha256: None }
}

fn quiet(_: PullEvent) {}

/// The cache must hold no entry and no scratch directory.
fn assert_cache_empty(cache: &Path) {
    let sources = cache.join("sources");
    let left: Vec<_> = match fs::read_dir(&sources) {
        Ok(rd) => rd.map(|e| e.expect("dirent").file_name()).collect(),
        Err(_) => Vec::new(),
    };
    assert!(left.is_empty(), "cache not empty: {left:?}");
}

fn extract_err(members: &[Member<'_>]) -> (ExtractError, TempDir) {
    let dest = TempDir::new().expect("tempdir");
    let err = extract_tar_safely(&tar_bytes(members)[..], dest.path()).expect_err("must refuse");
    (err, dest)
}

fn assert_refused(err: &ExtractError, entry: &str) {
    match err {
        ExtractError::Unsafe { entry: e, .. } => assert_eq!(e, entry, "{err}"),
        other => panic!("expected refusal of {entry}, got {other}"),
    }
    assert!(err.to_string().contains(entry));
}

// ---------------------------------------------------------------- extraction

#[test]
fn refuses_parent_dir_entry() {
    let (err, dest) = extract_err(&[file("ok", b"1"), file("../evil", b"x")]);
    assert_refused(&err, "../evil");
    assert!(!dest.path().parent().expect("parent").join("evil").exists());
}

#[test]
fn refuses_absolute_entry() {
    let (err, _d) = extract_err(&[file("/abs/path", b"x")]);
    assert_refused(&err, "/abs/path");
}

#[test]
fn refuses_escaping_symlink() {
    let (err, dest) = extract_err(&[dir("a/"), symlink("a/link", "../../etc")]);
    assert_refused(&err, "a/link");
    assert!(fs::symlink_metadata(dest.path().join("a/link")).is_err());
}

#[test]
fn refuses_absolute_hardlink() {
    let (err, _d) = extract_err(&[hardlink("passwd", "/etc/passwd")]);
    assert_refused(&err, "passwd");
}

#[test]
fn refuses_hardlink_to_symlink_or_missing_file() {
    let (err, _d) = extract_err(&[symlink("l", "x"), hardlink("h", "l")]);
    assert_refused(&err, "h");
    let (err, _d) = extract_err(&[hardlink("h", "nope")]);
    assert_refused(&err, "h");
}

#[test]
fn refuses_absolute_dir_symlink_before_it_is_used() {
    let canary = format!("xc-convert-canary-{}", std::process::id());
    let (err, _d) = extract_err(&[
        symlink("dir_link", "/tmp"),
        file(&format!("dir_link/{canary}"), b"x"),
    ]);
    assert_refused(&err, "dir_link");
    assert!(!Path::new("/tmp").join(&canary).exists());
}

#[test]
fn refuses_writing_through_in_tree_symlink() {
    let (err, dest) = extract_err(&[dir("sub/"), symlink("d", "sub"), file("d/file", b"x")]);
    assert_refused(&err, "d/file");
    assert!(!dest.path().join("sub/file").exists());
}

#[test]
fn refuses_symlink_chain_escaping_physically() {
    // Each link is inside the tree on paper; together a/c resolves to "..".
    let (err, _d) = extract_err(&[dir("a/"), symlink("a/b", ".."), symlink("a/c", "b/..")]);
    assert_refused(&err, "a/c");
}

#[test]
fn refuses_device_and_fifo_entries() {
    for kind in [EntryType::Char, EntryType::Block, EntryType::Fifo] {
        let (err, _d) = extract_err(&[Member {
            kind,
            ..file("dev", b"")
        }]);
        assert_refused(&err, "dev");
    }
}

#[test]
fn later_file_replaces_symlink_instead_of_writing_through_it() {
    let dest = TempDir::new().expect("tempdir");
    let bytes = tar_bytes(&[
        file("target", b"orig"),
        symlink("l", "target"),
        file("l", b"new"),
    ]);
    extract_tar_safely(&bytes[..], dest.path()).expect("extracts");
    assert_eq!(fs::read(dest.path().join("target")).expect("read"), b"orig");
    assert_eq!(fs::read(dest.path().join("l")).expect("read"), b"new");
}

#[test]
fn extraction_keeps_exec_bit_and_counts() {
    let dest = TempDir::new().expect("tempdir");
    let bytes = kernel_tar("k/", &[hardlink("k/copy", "k/Makefile")]);
    let stats = extract_tar_safely(&bytes[..], dest.path()).expect("extracts");
    assert_eq!(stats.entries, 11);
    let mode = |p: &str| {
        fs::metadata(dest.path().join(p))
            .expect("meta")
            .permissions()
            .mode()
    };
    assert_eq!(mode("k/scripts/ld-version.sh") & 0o777, 0o755);
    assert_eq!(mode("k/Makefile") & 0o777, 0o644);
    assert_eq!(
        fs::read(dest.path().join("k/copy")).expect("read"),
        MAKEFILE
    );
    let link = fs::read_link(dest.path().join("k/include/dt")).expect("link");
    assert_eq!(link, Path::new("../arch/x86"));
}

#[test]
fn plain_tar_cut_at_entry_boundary_is_corrupt() {
    let bytes = tar_bytes(&[file("a", b"1"), file("b", b"2")]);
    let cut = &bytes[..1024]; // header + data block of "a", no trailer
    let dest = TempDir::new().expect("tempdir");
    let err = extract_tar_safely(cut, dest.path()).expect_err("truncated");
    assert!(matches!(err, ExtractError::Corrupt { .. }), "{err}");
}

// ---------------------------------------------------------------- pull()

#[test]
fn pull_fake_kernel_tarball_then_cache_hit() {
    let work = TempDir::new().expect("tempdir");
    let cache = work.path().join("cache");
    for (name, bytes) in [
        ("k.tar.xz", xz(&kernel_tar("linux-6.1.99/", &[]))),
        ("k.tgz", gz(&kernel_tar("linux-6.1.99/", &[]))),
        ("k.tar", kernel_tar("", &[])),
    ] {
        let spec = tarball(write_file(work.path(), name, &bytes));
        let events = Mutex::new(Vec::new());
        let first = pull(&spec, &cache, &|e| events.lock().expect("lock").push(e)).expect("pull");
        assert!(!first.cache_hit, "{name}");
        let tree = &first.tree;
        assert_eq!(tree.version.to_string(), "6.1.99");
        assert_eq!(tree.version.series(), "6.1");
        assert!(
            tree.root.join("Makefile").is_file(),
            "{name}: top dir stripped"
        );
        assert_eq!(
            tree.root,
            cache.join("sources").join(&tree.source_hash).join("tree")
        );
        assert!(tree
            .root
            .parent()
            .expect("entry")
            .join("source.json")
            .is_file());
        let events = events.into_inner().expect("lock");
        assert!(events
            .iter()
            .any(|e| matches!(e, PullEvent::Extracting { .. })));

        let second = pull(&spec, &cache, &quiet).expect("pull again");
        assert!(second.cache_hit, "{name}");
        assert_eq!(second.tree, first.tree);
    }
    let entries = fs::read_dir(cache.join("sources"))
        .expect("sources")
        .count();
    assert_eq!(entries, 3, "one entry per distinct file, no leftovers");
}

#[test]
fn pull_refuses_each_hostile_tarball_without_leaving_anything() {
    let canary = format!("xc-convert-canary-pull-{}", std::process::id());
    let through = format!("dir_link/{canary}");
    let cases: Vec<(Vec<Member<'_>>, &str)> = vec![
        (vec![file("../evil", b"x")], "../evil"),
        (vec![file("/abs/path", b"x")], "/abs/path"),
        (vec![symlink("linux/link", "../../etc")], "linux/link"),
        (vec![hardlink("linux/pw", "/etc/passwd")], "linux/pw"),
        (
            vec![symlink("dir_link", "/tmp"), file(&through, b"x")],
            "dir_link",
        ),
    ];
    for (evil, entry) in cases {
        let work = TempDir::new().expect("tempdir");
        let cache = work.path().join("cache");
        let bytes = xz(&kernel_tar("linux/", &evil));
        let spec = tarball(write_file(work.path(), "evil.tar.xz", &bytes));
        let err = pull(&spec, &cache, &quiet).expect_err("must refuse");
        match &err {
            SourceError::Extract {
                source: ExtractError::Unsafe { entry: e, .. },
                ..
            } => {
                assert_eq!(e, entry)
            }
            other => panic!("{entry}: unexpected {other}"),
        }
        assert!(err.to_string().contains(entry), "{err}");
        assert_cache_empty(&cache);
    }
    assert!(!Path::new("/tmp").join(&canary).exists());
}

#[test]
fn truncated_tar_xz_is_corrupt_and_leaves_nothing() {
    let work = TempDir::new().expect("tempdir");
    let cache = work.path().join("cache");
    let big: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let full = xz(&kernel_tar("linux/", &[file("linux/big.bin", &big)]));
    let spec = tarball(write_file(
        work.path(),
        "cut.tar.xz",
        &full[..full.len() / 2],
    ));
    let err = pull(&spec, &cache, &quiet).expect_err("truncated");
    assert!(
        matches!(
            err,
            SourceError::Extract {
                source: ExtractError::Corrupt { .. },
                ..
            }
        ),
        "{err}"
    );
    assert_cache_empty(&cache);
}

#[test]
fn wrong_sha256_is_refused_before_writing() {
    let work = TempDir::new().expect("tempdir");
    let cache = work.path().join("cache");
    let path = write_file(work.path(), "k.tar.xz", &xz(&kernel_tar("linux/", &[])));
    let wrong = "ab".repeat(32);
    let spec = SourceSpec::Tarball {
        path: path.clone(),
        sha256: Some(wrong.clone()),
    };
    let err = pull(&spec, &cache, &quiet).expect_err("mismatch");
    let SourceError::ChecksumMismatch {
        expected, actual, ..
    } = &err
    else {
        panic!("unexpected {err}");
    };
    assert_eq!(expected, &wrong);
    assert!(err.to_string().contains(actual.as_str()) && err.to_string().contains(&wrong));
    assert!(!cache.exists(), "nothing written");

    let right = actual.to_uppercase();
    let spec = SourceSpec::Tarball {
        path,
        sha256: Some(right),
    };
    let ok = pull(&spec, &cache, &quiet).expect("matching hash");
    assert_eq!(&ok.tree.source_hash, actual);
}

#[test]
fn malformed_sha256_and_unsupported_compression_are_clear() {
    let work = TempDir::new().expect("tempdir");
    let path = write_file(work.path(), "k.tar.bz2", b"BZh91AY&SY....");
    let spec = SourceSpec::Tarball {
        path: path.clone(),
        sha256: Some("abc".into()),
    };
    assert!(matches!(
        pull(&spec, work.path(), &quiet),
        Err(SourceError::InvalidSha256 { .. })
    ));
    let err = pull(&tarball(path), work.path(), &quiet).expect_err("bzip2");
    assert!(
        err.to_string().contains("unsupported compression bzip2"),
        "{err}"
    );
    let zst = write_file(work.path(), "k.tar.zst", &[0x28, 0xB5, 0x2F, 0xFD, 0, 0]);
    let err = pull(&tarball(zst), work.path(), &quiet).expect_err("zstd");
    assert!(err.to_string().contains("zstd"), "{err}");
}

#[test]
fn tarball_that_is_not_a_kernel_is_refused_and_discarded() {
    let work = TempDir::new().expect("tempdir");
    let cache = work.path().join("cache");
    let bytes = tar_bytes(&[dir("proj/"), file("proj/Makefile", b"all:\n")]);
    let spec = tarball(write_file(work.path(), "p.tar", &bytes));
    let err = pull(&spec, &cache, &quiet).expect_err("not a kernel");
    let SourceError::NotAKernelTree { missing, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(missing.len(), 3, "{err}");
    // The message names the tarball, not the scratch directory it was
    // unpacked into (deleted by the time anyone reads it).
    let text = err.to_string();
    assert!(text.contains("p.tar") && !text.contains(".tmp-"), "{text}");
    assert_cache_empty(&cache);
}

#[test]
fn link_leaving_the_stripped_top_directory_is_refused() {
    // `linux/up -> ..` stays inside the unpack directory, but the published
    // tree is `linux/` itself: in the cache the link would name the entry's
    // own directory. Same for a deeper one climbing two levels.
    for (link, target, rel) in [("linux/up", "..", "up"), ("linux/include/top", "../..", "include/top")] {
        let work = TempDir::new().expect("tempdir");
        let cache = work.path().join("cache");
        let bytes = kernel_tar("linux/", &[symlink(link, target)]);
        let spec = tarball(write_file(work.path(), "k.tar", &bytes));
        let err = pull(&spec, &cache, &quiet).expect_err("must refuse");
        match &err {
            SourceError::LinkOutsideTree { link: l, .. } => assert_eq!(l, Path::new(rel), "{err}"),
            other => panic!("{link}: unexpected {other}"),
        }
        let text = err.to_string();
        assert!(text.contains("k.tar") && !text.contains(".tmp-"), "{text}");
        assert_cache_empty(&cache);
    }
    // Without a top directory to strip, nothing changes: `include/dt ->
    // ../arch/x86` is fine and the tree is published.
    let work = TempDir::new().expect("tempdir");
    let spec = tarball(write_file(work.path(), "flat.tar", &kernel_tar("", &[])));
    pull(&spec, &work.path().join("cache"), &quiet).expect("flat tree");
}

#[test]
fn extraction_keeps_member_times() {
    let mut header = raw_header(&file("Makefile", MAKEFILE));
    header.set_mtime(1_700_000_000);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, MAKEFILE).expect("append");
    let bytes = builder.into_inner().expect("finish");
    let dest = TempDir::new().expect("tempdir");
    extract_tar_safely(&bytes[..], dest.path()).expect("extract");
    let modified = fs::metadata(dest.path().join("Makefile")).and_then(|m| m.modified()).expect("mtime");
    let secs = modified.duration_since(std::time::UNIX_EPOCH).expect("after epoch").as_secs();
    assert_eq!(secs, 1_700_000_000);
}

#[test]
fn empty_tarball_and_missing_inputs_say_so() {
    let work = TempDir::new().expect("tempdir");
    let empty = write_file(work.path(), "empty.tar.xz", b"");
    let err = pull(&tarball(empty), work.path(), &quiet).expect_err("empty");
    assert!(matches!(err, SourceError::EmptyArchive { .. }), "{err}");
    assert!(err.to_string().contains("is empty"), "{err}");

    let missing = work.path().join("no-such-dir");
    let err = pull(&SourceSpec::Dir(missing.clone()), work.path(), &quiet).expect_err("missing dir");
    assert!(matches!(err, SourceError::NoSuchInput { .. }), "{err}");
    assert!(err.to_string().contains("does not exist") && !err.to_string().contains("kernel tree"), "{err}");

    let spec = SourceSpec::Git { repo: missing, rev: "v6.1".into() };
    let err = pull(&spec, work.path(), &quiet).expect_err("missing repo");
    assert!(err.to_string().contains("does not exist") && !err.to_string().contains("v6.1"), "{err}");
    let plain = work.path().join("plain");
    fs::create_dir(&plain).expect("mkdir");
    let spec = SourceSpec::Git { repo: plain, rev: "v6.1".into() };
    let err = pull(&spec, work.path(), &quiet).expect_err("not a repo");
    assert!(err.to_string().contains("not a git repository"), "{err}");
}

/// Unpack the fake kernel into a plain directory for Dir/Git inputs.
fn fake_kernel_dir(parent: &Path) -> PathBuf {
    extract_tar_safely(&kernel_tar("linux/", &[])[..], parent).expect("fake tree");
    parent.join("linux")
}

#[test]
fn dir_that_is_not_a_kernel_tree_is_refused() {
    let work = TempDir::new().expect("tempdir");
    fs::write(work.path().join("Makefile"), "VERSION = 6\n").expect("write");
    let err = pull(
        &SourceSpec::Dir(work.path().into()),
        &work.path().join("c"),
        &quiet,
    )
    .expect_err("not a kernel");
    let SourceError::NotAKernelTree { missing, .. } = &err else {
        panic!("{err}")
    };
    let text = err.to_string();
    assert!(text.contains("PATCHLEVEL") && text.contains("Kconfig") && text.contains("arch/x86"));
    assert_eq!(missing.len(), 3);
    assert!(!work.path().join("c").exists());
}

#[test]
fn dir_is_copied_unmodified_and_hashed_deterministically() {
    let work = TempDir::new().expect("tempdir");
    let src = fake_kernel_dir(work.path());
    fs::create_dir(src.join(".git")).expect("mkdir .git");
    fs::write(src.join(".git/HEAD"), "ref: x\n").expect("write");
    let before = tree::hash_dir(&src).expect("hash");
    let cache = work.path().join("cache");
    let spec = SourceSpec::Dir(src.clone());
    let first = pull(&spec, &cache, &quiet).expect("pull dir");
    assert!(!first.cache_hit);
    assert_eq!(first.tree.source_hash, before);
    assert_eq!(first.tree.version.to_string(), "6.1.99");
    let root = &first.tree.root;
    assert!(!root.join(".git").exists(), ".git is not copied");
    assert_eq!(
        fs::read_link(root.join("include/dt")).expect("link"),
        Path::new("../arch/x86")
    );
    let mode = fs::metadata(root.join("scripts/ld-version.sh"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111);
    assert!(pull(&spec, &cache, &quiet).expect("again").cache_hit);
    assert_eq!(
        tree::hash_dir(&src).expect("hash"),
        before,
        "source untouched"
    );

    fs::write(src.join("Kconfig"), "changed\n").expect("write");
    let changed = pull(&spec, &cache, &quiet).expect("changed");
    assert!(!changed.cache_hit);
    assert_ne!(changed.tree.source_hash, before);
}

#[test]
fn dir_with_escaping_symlink_is_refused() {
    let work = TempDir::new().expect("tempdir");
    let src = fake_kernel_dir(work.path());
    std::os::unix::fs::symlink("/etc", src.join("etc")).expect("symlink");
    let cache = work.path().join("cache");
    let err = pull(&SourceSpec::Dir(src), &cache, &quiet).expect_err("escapes");
    assert!(matches!(err, SourceError::SymlinkEscapes { .. }), "{err}");
    assert_cache_empty(&cache);
}

fn git(repo: &Path, args: &[&str]) {
    let status = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .status()
        .expect("run git");
    assert!(status.success(), "git {args:?}");
}

#[test]
fn git_commit_is_pulled_and_cached_by_commit_id() {
    let work = TempDir::new().expect("tempdir");
    let repo = fake_kernel_dir(work.path());
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "v6.1.99"]);
    let cache = work.path().join("cache");
    let spec = SourceSpec::Git {
        repo: repo.clone(),
        rev: "HEAD".into(),
    };
    let first = pull(&spec, &cache, &quiet).expect("pull git");
    assert!(!first.cache_hit);
    assert_eq!(first.tree.version.to_string(), "6.1.99");
    assert!(
        first.tree.origin.starts_with("git "),
        "{}",
        first.tree.origin
    );
    let mode = fs::metadata(first.tree.root.join("scripts/ld-version.sh"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111);
    assert!(pull(&spec, &cache, &quiet).expect("again").cache_hit);

    let bad = SourceSpec::Git {
        repo,
        rev: "no-such-branch".into(),
    };
    let err = pull(&bad, &cache, &quiet).expect_err("bad rev");
    assert!(matches!(err, SourceError::Git { .. }) && err.to_string().contains("no-such-branch"));
    assert!(err.to_string().contains("no branch, tag or commit of that name"), "an empty detail: {err}");
}

#[test]
fn concurrent_pulls_share_one_entry() {
    let work = TempDir::new().expect("tempdir");
    let cache = work.path().join("cache");
    let spec = tarball(write_file(
        work.path(),
        "k.tar.xz",
        &xz(&kernel_tar("linux/", &[])),
    ));
    let roots: Vec<PathBuf> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| pull(&spec, &cache, &quiet).expect("pull").tree.root))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert!(roots.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(
        fs::read_dir(cache.join("sources"))
            .expect("sources")
            .count(),
        1
    );
}

#[test]
fn invalid_debian_series_is_refused_without_apt() {
    let err = pull(
        &SourceSpec::Debian {
            series: "6.1; rm".into(),
            sha256: None,
        },
        Path::new("/nonexistent"),
        &quiet,
    )
    .expect_err("invalid");
    assert!(matches!(err, SourceError::InvalidSeries { .. }));
}

/// Real input: run with `cargo test -p xc-convert --lib source -- --ignored --nocapture`.
#[test]
#[ignore = "unpacks the real 138 MB Debian tarball (about a minute)"]
fn pulls_real_debian_linux_source_6_1() {
    let cache = TempDir::new().expect("tempdir");
    let start = Instant::now();
    let outcome = pull(
        &SourceSpec::Debian {
            series: "6.1".into(),
            sha256: None,
        },
        cache.path(),
        &|e| {
            if !matches!(e, PullEvent::Extracting { entries, .. } if entries % 20_000 != 0) {
                eprintln!("{e:?}");
            }
        },
    )
    .expect("pull linux-source-6.1");
    let cold = start.elapsed();
    assert_eq!(outcome.tree.version.series(), "6.1");
    let start = Instant::now();
    let again = pull(
        &SourceSpec::Debian {
            series: "6.1".into(),
            sha256: None,
        },
        cache.path(),
        &quiet,
    )
    .expect("hit");
    assert!(again.cache_hit);
    println!(
        "linux-source-6.1: version {} cold pull {:.1?}, cache hit {:.1?}",
        outcome.tree.version,
        cold,
        start.elapsed()
    );
}
