//! End to end: the kernel's own selftests, built from the tree each image
//! was built from, on a stock and a libos kernel of one version, compared.
//! One boot per image runs every suite; the selftests are built once per
//! tree (a cache entry), so the second run of a test is boots only.
//!
//! Images: the suite's one profile (`xc_tests::PROFILE`), booted on one CPU;
//! every other real-kernel test builds the same four, so this file adds no
//! kernel.

use serde_json::Value;
use std::path::Path;
use xc_tests::{heavy, shared_cache, shared_image, xc};

/// Per-test timeout: long enough for the slowest selected test under TCG.
const TEST_TIMEOUT: &str = "90";
/// Left out (reported as NOT_RUN):
/// * sysret_ss_attrs_64: oopses the *stock* kernel under QEMU TCG (the
///   stack read of its far return to a 32-bit CS is reported as a
///   supervisor access: "BUG: unable to handle page fault ... supervisor
///   read access in user mode"), which would fail the kernel-log check;
/// * tests that only measure or soak and take minutes under TCG
///   (seccomp_benchmark alone runs past 90 s; threadtest soaks for 30 s;
///   rseq's basic_percpu_ops tests take 73-110 s each: 200 threads x 5000
///   spinlock rounds on one emulated CPU. param_test runs the same per-CPU
///   operations at a size TCG finishes in a second, and they passed on
///   every kernel by hand: docs/kselftest.md).
const SKIP: &[&str] = &[
    "x86:sysret_ss_attrs_64",
    "seccomp:seccomp_benchmark",
    "timers:threadtest",
    "rseq:basic_percpu_ops_test",
    "rseq:basic_percpu_ops_mm_cid_test",
    "timers:raw_skew",
    "timers:inconsistency-check",
    "timers:set-timer-lat",
    "timers:nsleep-lat",
    "timers:mqueue-lat",
    "timers:rtcpie",
];

/// Left out on 6.12 only: posix_timers, whose "check signal distribution"
/// subtest (new in 6.12) waits for a process-wide CPU timer's signal to
/// reach each of its spinning threads on one emulated CPU. It passed on
/// both kernels in a quiet cold run and failed on libos once with the other
/// core busy: scheduling under TCG, not behaviour, and a compare that fails
/// by chance would stop CI at random. (6.1's posix_timers has no such
/// subtest and stays in.)
const SKIP_6_12: &[&str] = &["timers:posix_timers"];

/// Boot `dir` with every default suite; returns the `kselftest` report.
fn run_selftests(dir: &str, out: &Path, skip_more: &[&str]) -> Value {
    let cache = shared_cache();
    let out = out.to_str().unwrap();
    let mut args = vec!["--json", "boot", dir, "--kselftest", "--kselftest-timeout", TEST_TIMEOUT, "--timeout", "3000", "--memory", "1024", "--out", out];
    for s in SKIP.iter().chain(skip_more) {
        args.extend(["--kselftest-skip", s]);
    }
    let r = xc(&cache, &args);
    let v = r.json();
    assert_eq!(v["boot"]["passed"], true, "failures: {:#}\nconsole: {}", v["boot"]["failures"], v["boot"]["console_log"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let k = v["kselftest"].clone();
    // the kernel log: no oops, WARNING or BUG while the selftests ran
    assert_eq!(k["kernel_problems"].as_array().unwrap().len(), 0, "{:#}", k["kernel_problems"]);
    let console = std::fs::read_to_string(v["boot"]["console_log"].as_str().unwrap()).unwrap();
    for bad in ["Oops", "WARNING:", "BUG:", "Kernel panic"] {
        assert!(!console.contains(bad), "{bad} in {}", v["boot"]["console_log"]);
    }
    // every built test ran to its end marker (none cut short by the VM)
    for t in k["tests"].as_array().unwrap() {
        let reason = t["reason"].as_str().unwrap_or("");
        assert!(!reason.starts_with("never"), "{}:{} {reason}", t["suite"], t["name"]);
    }
    k
}

fn test<'a>(k: &'a Value, id: &str) -> &'a Value {
    k["tests"].as_array().unwrap().iter().find(|t| format!("{}:{}", t["suite"].as_str().unwrap(), t["name"].as_str().unwrap()) == id).unwrap_or_else(|| panic!("{id} not in the report"))
}

fn kselftests(series: &str) {
    let _lock = heavy();
    let cache = shared_cache();
    let stock_dir = shared_image(series, "stock").display().to_string();
    let libos_dir = shared_image(series, "libos").display().to_string();
    // Kept after the test (target/kselftest-<series>/{stock,libos}): the
    // consoles and reports are what a failure is read from.
    let out = xc_tests::workspace().join("target").join(format!("kselftest-{series}"));
    let _ = std::fs::remove_dir_all(&out);
    let (so, lo) = (out.join("stock"), out.join("libos"));
    // The two boots are one QEMU (one TCG thread) each: side by side they
    // take the time of one on the suite's two cores.
    let (stock, libos) = std::thread::scope(|s| {
        let skip_more = if series == "6.12" { SKIP_6_12 } else { &[] };
        let stock = s.spawn(|| run_selftests(&stock_dir, &so, skip_more));
        let libos = s.spawn(|| run_selftests(&libos_dir, &lo, skip_more));
        (stock.join().expect("stock boot"), libos.join().expect("libos boot"))
    });

    // Both kernels ran the very same binaries: one selftests entry per
    // tree, and the x86 suite built (64-bit) and ran on each.
    assert_ne!(stock["selftests_dir"], libos["selftests_dir"], "stock and libos trees differ, so do their selftests");
    for k in [&stock, &libos] {
        let ran = k["tests"].as_array().unwrap().iter().filter(|t| t["suite"] == "x86" && t["rc"].is_i64()).count();
        assert!(ran >= 15, "{ran} x86 tests ran");
    }

    // The bug: sigreturn_64 died of a stray SIGTRAP on libos. Stock passes;
    // libos now refuses the 32-bit CS cleanly: SIGSEGV, not a trap.
    let s = test(&stock, "x86:sigreturn_64");
    assert_eq!(s["verdict"], "PASS", "{s}");
    let l = test(&libos, "x86:sigreturn_64");
    assert_eq!(l["reason"], "killed by SIGSEGV (11)", "{l}");

    // Single-step and breakpoints, SYSRET edge cases, the entry's register
    // state: each passes on stock and so on libos. A test that fails on
    // stock too proves nothing by failing alike: it is listed with why,
    // and the test insists it still fails on stock (once it passes there,
    // it must be compared).
    for id in ["x86:single_step_syscall_64", "x86:sigtrap_loop_64", "x86:syscall_nt_64", "x86:sysret_rip_64", "x86:check_initial_reg_state_64"] {
        assert_eq!(test(&stock, id)["verdict"], "PASS", "{id} on stock");
        assert_eq!(test(&libos, id)["verdict"], "PASS", "{id} on libos");
    }
    // Killed by SIGSEGV on the stock container-smp kernel as well, on 6.1
    // and 6.12 under TCG (seen in a cold run of the suite, 2026-12-08).
    const FAIL_ON_STOCK: [&str; 1] = ["x86:mov_ss_trap_64"];
    for id in FAIL_ON_STOCK {
        assert_ne!(test(&stock, id)["verdict"], "PASS", "{id} passes on stock now: compare it on libos instead of listing it");
    }

    // seccomp and rseq (the shared container-smp profile has both, as minimal does): the same subtests
    // pass on both kernels, so filters (TRAP, ERRNO, TRACE, user
    // notification) act on CPL-0 processes, and rseq aborts and restarts.
    let passing = |k: &Value, id: &str| test(k, id)["subtests"].as_array().unwrap().iter().filter(|t| t["verdict"] == "PASS").count();
    let (sp, lp) = (passing(&stock, "seccomp:seccomp_bpf"), passing(&libos, "seccomp:seccomp_bpf"));
    assert!(sp >= 80 && lp == sp, "seccomp_bpf subtests passed: stock {sp}, libos {lp}");
    for id in ["rseq:basic_test", "rseq:param_test", "rseq:param_test_compare_twice"] {
        assert_eq!(test(&stock, id)["verdict"], "PASS", "{id} on stock");
        assert_eq!(test(&libos, id)["verdict"], "PASS", "{id} on libos");
    }

    // compare: every stock-pass/libos-fail is in kselftest-expected.toml.
    let r = xc(&cache, &["--json", "kselftest", "compare", so.to_str().unwrap(), lo.to_str().unwrap()]);
    let c = r.json();
    assert_eq!(c["passed"], true, "{}", r.stdout);
    assert_eq!(r.code, 0);
    // Exactly the three documented differences, whole tests and subtests,
    // and none of the listed ones unused: docs/kselftest.md says "exactly".
    let expected: std::collections::BTreeSet<&str> =
        c["rows"].as_array().unwrap().iter().filter(|r| r["class"]["kind"] == "expected").map(|r| r["test"].as_str().unwrap()).collect();
    assert_eq!(expected, ["x86:ioperm_64", "x86:sigreturn_64", "x86:test_vsyscall_64"].into_iter().collect(), "{}", r.stdout);
    assert_eq!(c["unused_expected"], serde_json::json!([]), "{}", r.stdout);
    let text = xc(&cache, &["kselftest", "compare", so.to_str().unwrap(), lo.to_str().unwrap()]).expect_code(0).stdout;
    eprintln!("{text}");
    assert!(text.contains("x86:sigreturn_64") && text.lines().last().unwrap().starts_with("PASS"), "{text}");

    // The reverse order is a request error, not a comparison.
    xc(&cache, &["kselftest", "compare", lo.to_str().unwrap(), so.to_str().unwrap()]).expect_code(2);
}

#[test]
fn kselftests_6_1_stock_and_libos_differ_only_as_documented() {
    kselftests("6.1");
}

#[test]
fn kselftests_6_12_stock_and_libos_differ_only_as_documented() {
    kselftests("6.12");
}

/// `compare` on two reports written here (no kernel): an unexplained
/// stock-pass/libos-fail exits 1 and names the test; `--expected` with it
/// listed exits 0; a file with an unknown field is refused (2).
#[test]
fn compare_fails_on_an_unexplained_difference_and_accepts_a_listed_one() {
    let d = tempfile::tempdir().unwrap();
    let report = |mode: &str, verdict: &str| {
        serde_json::json!({
            "kernel_version": "6.1.192", "mode": mode, "image_dir": "/i", "selftests_dir": "/s", "timeout_secs": 60,
            "kernel_problems": [],
            "tests": [
                {"suite": "x86", "name": "fsgsbase_64", "verdict": verdict, "rc": 1, "reason": "exit status 1", "ok_lines": 0, "fail_lines": 1, "skip_lines": 0},
                {"suite": "x86", "name": "amx_64", "verdict": "SKIP", "rc": 4, "ok_lines": 0, "fail_lines": 0, "skip_lines": 0}
            ]
        })
    };
    let (s, l) = (d.path().join("stock.json"), d.path().join("libos.json"));
    std::fs::write(&s, report("stock", "PASS").to_string()).unwrap();
    std::fs::write(&l, report("libos", "FAIL").to_string()).unwrap();
    let cache = d.path().join("cache");
    let r = xc(&cache, &["kselftest", "compare", s.to_str().unwrap(), l.to_str().unwrap()]).expect_code(1);
    assert!(r.stdout.contains("x86:fsgsbase_64") && r.stdout.contains("REGRESSION exit status 1"), "{}", r.stdout);
    let exp = d.path().join("expected.toml");
    std::fs::write(&exp, "[[difference]]\ntest = \"x86:fsgsbase_64\"\nallows = \"x\"\nwhy = \"y\"\n").unwrap();
    let r = xc(&cache, &["--json", "kselftest", "compare", s.to_str().unwrap(), l.to_str().unwrap(), "--expected", exp.to_str().unwrap()]).expect_code(0);
    assert_eq!(r.json()["regressions"], 0);
    std::fs::write(&exp, "[[difference]]\ntest = \"x86:fsgsbase_64\"\nallows = \"x\"\nwhy = \"y\"\nseverity = 1\n").unwrap();
    let r = xc(&cache, &["kselftest", "compare", s.to_str().unwrap(), l.to_str().unwrap(), "--expected", exp.to_str().unwrap()]).expect_code(2);
    assert!(r.stderr.contains("severity"), "{}", r.stderr);
}
