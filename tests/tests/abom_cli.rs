//! `xc-convert abom` on real binaries: Debian's static busybox and glibc.

use xc_tests::xc;

#[test]
fn rewrite_changes_only_the_reported_sites_of_busybox() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("busybox.xc");
    let report = work.path().join("report.json");
    let r = xc(work.path(), &["--json", "abom", "rewrite", "/bin/busybox", out.to_str().unwrap(), "--report", report.to_str().unwrap()]).expect_code(0);
    let v = r.json();
    let sites = v["sites"].as_array().unwrap();
    assert!(sites.len() > 20, "only {} sites in busybox", sites.len());
    assert_eq!(v["syscalls_seen"].as_u64().unwrap() as usize, sites.len() + v["left_alone"].as_array().unwrap().len());
    let before = std::fs::read("/bin/busybox").unwrap();
    let after = std::fs::read(&out).unwrap();
    assert_eq!(before.len(), after.len());
    let mut changed = vec![false; before.len()];
    for s in sites {
        let off = s["offset"].as_u64().unwrap() as usize;
        let len = if s["form"] == "Mov64" { 9 } else { 7 };
        // Every site was `mov $nr,%eax` (b8) or `mov $nr,%rax` (48 c7 c0) + syscall.
        assert!(before[off] == 0xb8 || before[off..off + 3] == [0x48, 0xc7, 0xc0], "site {off:#x}");
        assert_eq!(before[off + len - 2..off + len], [0x0f, 0x05]);
        assert!(after[off..off + len].windows(3).any(|w| w == [0xff, 0x14, 0x25]), "no call at {off:#x}");
        changed[off..off + len].iter_mut().for_each(|c| *c = true);
    }
    for (i, (a, b)) in before.iter().zip(&after).enumerate() {
        assert!(a == b || changed[i], "byte {i:#x} changed outside any reported site");
    }
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(saved["sites"].as_array().unwrap().len(), sites.len());
}

#[test]
fn scan_reports_every_syscall_of_libc_with_a_reason_when_left_alone() {
    let work = tempfile::tempdir().unwrap();
    let v = xc(work.path(), &["--json", "abom", "scan", "/usr/lib/x86_64-linux-gnu/libc.so.6"]).expect_code(0).json();
    let sites = v["sites"].as_array().unwrap().len();
    let left = v["left_alone"].as_array().unwrap();
    assert!(sites > 300, "{sites} sites in libc");
    assert!(left.iter().all(|l| !l["reason"].as_str().unwrap().is_empty()));
    let r = xc(work.path(), &["abom", "scan", "/etc/hostname"]);
    assert_eq!(r.code, 2, "a non-ELF file must be refused as a bad request: {}", r.stderr);
    assert!(r.stderr.contains("/etc/hostname"), "{}", r.stderr);
}

#[test]
fn rewrite_in_place_and_through_a_symlink_keeps_the_mode() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    let prog = work.path().join("busybox");
    std::fs::copy("/bin/busybox", &prog).unwrap();
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o750)).unwrap();
    let before = std::fs::read(&prog).unwrap();
    // In place: F F.
    xc(work.path(), &["abom", "rewrite", prog.to_str().unwrap(), prog.to_str().unwrap()]).expect_code(0);
    assert_eq!(mode(&prog), 0o750, "in-place rewrite changed the mode");
    let after = std::fs::read(&prog).unwrap();
    assert_eq!(after.len(), before.len());
    assert_ne!(after, before, "nothing was rewritten");
    // OUT is a symlink to a file: the file is written, the link stays a link.
    let target = work.path().join("target");
    std::fs::write(&target, b"old").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = work.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let orig = work.path().join("orig");
    std::fs::write(&orig, &before).unwrap();
    std::fs::set_permissions(&orig, std::fs::Permissions::from_mode(0o750)).unwrap();
    xc(work.path(), &["abom", "rewrite", orig.to_str().unwrap(), link.to_str().unwrap()]).expect_code(0);
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link was replaced");
    assert_eq!(std::fs::read(&target).unwrap(), after);
    assert_eq!(mode(&target), 0o750);
    // IN is a symlink to OUT (one file under two names).
    let inlink = work.path().join("inlink");
    std::os::unix::fs::symlink(&orig, &inlink).unwrap();
    xc(work.path(), &["abom", "rewrite", inlink.to_str().unwrap(), orig.to_str().unwrap()]).expect_code(0);
    assert_eq!(mode(&orig), 0o750);
}
