//! glibc, the main customer: the shared library and a static program.

use super::util::{compile_c, rewrite_and_check};
use crate::abom::Report;

const LIBC: &str = "/usr/lib/x86_64-linux-gnu/libc.so.6";

fn print_counts(what: &str, report: &Report) {
    let mov64 = report
        .sites
        .iter()
        .filter(|s| s.form == crate::abom::SiteForm::Mov64)
        .count();
    println!(
        "{what}: {} syscalls seen, {} sites ({} 9-byte), {} left alone",
        report.syscalls_seen,
        report.sites.len(),
        mov64,
        report.left_alone.len()
    );
    let mut reasons: Vec<&str> = report
        .left_alone
        .iter()
        .map(|l| l.reason.as_str())
        .collect();
    reasons.sort_unstable();
    reasons.dedup();
    for reason in reasons {
        let n = report
            .left_alone
            .iter()
            .filter(|l| l.reason == reason)
            .count();
        println!("  {n:4} left alone: {reason}");
    }
}

#[test]
fn shared_libc() {
    let libc = std::fs::read(LIBC).expect("read libc.so.6");
    let (_, report) = rewrite_and_check(&libc);
    print_counts("libc.so.6", &report);
    assert!(
        report.sites.len() >= 200,
        "only {} sites in libc.so.6",
        report.sites.len()
    );
    assert!(
        report.sites.len() * 2 > report.syscalls_seen,
        "most syscalls are rewritable"
    );
    assert!(report.sites.iter().any(|s| s.name == "getppid"));
}

#[test]
fn static_hello() {
    let elf = compile_c(
        "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n",
        &["-static"],
    );
    let (_, report) = rewrite_and_check(&elf);
    print_counts("static hello", &report);
    // A hello world links only part of libc: about a hundred syscalls.
    assert!(
        report.sites.len() >= 50,
        "only {} sites in static hello",
        report.sites.len()
    );
    assert!(
        report.sites.len() * 2 > report.syscalls_seen,
        "most syscalls are rewritable"
    );
    assert!(report.sites.iter().any(|s| s.name == "write"));
}
