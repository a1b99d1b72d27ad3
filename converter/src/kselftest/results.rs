//! The console of a kselftest boot, parsed into one result per test.
//!
//! Verdicts follow the kselftest runner (`kselftest/runner.sh`): exit 0 is
//! PASS, 4 (`KSFT_SKIP`) is SKIP, anything else FAIL; a test killed by a
//! signal or stopped by the timeout is a FAIL that says so. TAP lines the
//! test printed (`ok 3 name`, `not ok 4 name # SKIP why`, from
//! kselftest.h and the harness) become subtests, and the x86 tests'
//! `[OK]` / `[FAIL]` / `[SKIP]` lines are counted.

use super::build::{BuiltSelftests, TestKind};
use super::guest::{skipped, BEGIN, END};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One test's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    Pass,
    Fail,
    Skip,
    /// Listed by the suite but not built (see the entry's build.log).
    NotBuilt,
    /// Built but not run: a script (no bash in the initramfs) or `--kselftest-skip`.
    NotRun,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "SKIP",
            Verdict::NotBuilt => "NOT_BUILT",
            Verdict::NotRun => "NOT_RUN",
        })
    }
}

/// A TAP line of a test's own output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubTest {
    pub number: u32,
    pub name: String,
    pub verdict: Verdict,
}

/// One test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestResult {
    pub suite: String,
    pub name: String,
    pub verdict: Verdict,
    /// Exit status as the shell saw it (128+N: killed by signal N).
    pub rc: Option<i32>,
    /// Why a FAIL, NOT_BUILT or NOT_RUN is one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subtests: Vec<SubTest>,
    /// `[OK]`, `[FAIL]` and `[SKIP]` lines (the x86 tests' own report).
    pub ok_lines: u32,
    pub fail_lines: u32,
    pub skip_lines: u32,
}

impl TestResult {
    /// `suite:test`, as in kselftest-list.txt and `--kselftest-skip`.
    pub fn id(&self) -> String {
        format!("{}:{}", self.suite, self.name)
    }
}

/// `kselftest.json`: every test of one boot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KselftestReport {
    pub kernel_version: String,
    pub mode: crate::pipeline::build::Mode,
    pub image_dir: PathBuf,
    /// The selftests entry the binaries came from.
    pub selftests_dir: PathBuf,
    pub timeout_secs: u64,
    /// Kernel oops / WARNING / BUG / panic lines seen during the runs.
    pub kernel_problems: Vec<String>,
    pub tests: Vec<TestResult>,
}

impl KselftestReport {
    /// How many tests got `v`.
    pub fn count(&self, v: Verdict) -> usize {
        self.tests.iter().filter(|t| t.verdict == v).count()
    }
}

fn signal_name(n: i32) -> &'static str {
    match n {
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        15 => "SIGTERM",
        _ => "signal",
    }
}

/// The verdict of an exit status; `secs` tells a timeout from a SIGTERM.
pub fn verdict_of(rc: i32, secs: Option<u64>, timeout_secs: u64) -> (Verdict, String) {
    match rc {
        0 => (Verdict::Pass, String::new()),
        4 => (Verdict::Skip, String::new()),
        143 if secs.is_some_and(|s| s + 1 >= timeout_secs) => (Verdict::Fail, format!("timed out after {timeout_secs}s")),
        n if n > 128 => (Verdict::Fail, format!("killed by {} ({})", signal_name(n - 128), n - 128)),
        n => (Verdict::Fail, format!("exit status {n}")),
    }
}

fn tap_line(line: &str) -> Option<SubTest> {
    let (failed, rest) = match line.strip_prefix("not ok ") {
        Some(r) => (true, r),
        None => (false, line.strip_prefix("ok ")?),
    };
    let (num, desc) = rest.split_once(' ').unwrap_or((rest, ""));
    let number = num.parse().ok()?;
    let (name, directive) = desc.split_once(" # ").map(|(n, d)| (n, d.trim())).unwrap_or((desc, ""));
    let verdict = if directive.to_ascii_uppercase().starts_with("SKIP") {
        Verdict::Skip
    } else if failed && !directive.to_ascii_uppercase().starts_with("XFAIL") {
        Verdict::Fail
    } else {
        Verdict::Pass
    };
    Some(SubTest { number, name: name.trim().to_string(), verdict })
}

/// Strip the kernel's `[   1.234567] ` timestamp and a trailing CR.
fn clean(line: &str) -> &str {
    line.trim_end_matches('\r')
}

/// Every test of `built`, with the verdict the console shows for it.
pub fn parse_results(console: &str, built: &BuiltSelftests, timeout_secs: u64, skip: &[String]) -> Vec<TestResult> {
    struct Seen {
        rc: Option<i32>,
        secs: Option<u64>,
        lines: Vec<String>,
    }
    let mut seen: std::collections::HashMap<(String, String), Seen> = Default::default();
    let mut current: Option<(String, String)> = None;
    for raw in console.lines() {
        let line = clean(raw);
        if let Some(rest) = line.strip_prefix(BEGIN).map(str::trim) {
            if let Some((s, t)) = rest.split_once(' ') {
                let key = (s.to_string(), t.trim().to_string());
                seen.insert(key.clone(), Seen { rc: None, secs: None, lines: vec![] });
                current = Some(key);
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix(END).map(str::trim) {
            let mut words = rest.split_whitespace();
            let (Some(s), Some(t)) = (words.next(), words.next()) else { continue };
            let key = (s.to_string(), t.to_string());
            if let Some(e) = seen.get_mut(&key) {
                for w in words {
                    if let Some(v) = w.strip_prefix("rc=") {
                        e.rc = v.parse().ok();
                    } else if let Some(v) = w.strip_prefix("secs=") {
                        e.secs = v.parse().ok();
                    }
                }
            }
            current = None;
            continue;
        }
        if let Some(key) = &current {
            if let Some(e) = seen.get_mut(key) {
                e.lines.push(line.to_string());
            }
        }
    }
    let mut results = Vec::new();
    for suite in &built.record.suites {
        for t in &suite.tests {
            let mut r = TestResult {
                suite: suite.name.clone(),
                name: t.name.clone(),
                verdict: Verdict::NotRun,
                rc: None,
                reason: String::new(),
                subtests: vec![],
                ok_lines: 0,
                fail_lines: 0,
                skip_lines: 0,
            };
            match t.kind {
                TestKind::NotBuilt => {
                    r.verdict = Verdict::NotBuilt;
                    r.reason = "no static binary came out of the build (see build.log in the selftests entry)".into();
                }
                TestKind::Script => r.reason = "a script: the initramfs has busybox sh only".into(),
                TestKind::Elf if skipped(skip, &suite.name, &t.name) => r.reason = "skipped by --kselftest-skip".into(),
                TestKind::Elf => match seen.get(&(suite.name.clone(), t.name.clone())) {
                    None => {
                        r.verdict = Verdict::Fail;
                        r.reason = "never started (the boot ended before it)".into();
                    }
                    Some(e) => {
                        for l in &e.lines {
                            if let Some(st) = tap_line(l.trim_start()) {
                                r.subtests.push(st);
                            }
                            r.ok_lines += l.contains("[OK]") as u32;
                            r.fail_lines += l.contains("[FAIL]") as u32;
                            r.skip_lines += l.contains("[SKIP]") as u32;
                        }
                        match e.rc {
                            None => {
                                r.verdict = Verdict::Fail;
                                r.reason = "never finished (the boot ended during it)".into();
                            }
                            Some(rc) => {
                                r.rc = Some(rc);
                                (r.verdict, r.reason) = verdict_of(rc, e.secs, timeout_secs);
                            }
                        }
                    }
                },
            }
            results.push(r);
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built() -> BuiltSelftests {
        use TestKind::*;
        let tests = [("sigreturn_64", Elf), ("ioperm_64", Elf), ("amx_64", Elf), ("slow", Elf), ("gone", NotBuilt), ("never", Elf)];
        let mut b = crate::kselftest::build::fixture(std::path::Path::new("/x"), Some(2), &tests);
        b.cache_hit = true;
        b
    }

    #[test]
    fn console_markers_become_verdicts_with_reasons() {
        let console = "\
XC-KSFT-BEGIN x86 sigreturn_64\r
[RUN]\tValid sigreturn: 64-bit CS (33), 32-bit SS (2b, GDT)\r
[OK]\tall registers okay\r
[SKIP]\tCode segment unavailable for 16-bit CS, 32-bit SS\r
[    3.141] sigreturn_64[77] bad frame in rt_sigreturn\r
XC-KSFT-END x86 sigreturn_64 rc=133 secs=0\r
XC-KSFT-BEGIN x86 ioperm_64
TAP version 13
ok 1 first
not ok 2 second # SKIP no ports
not ok 3 third
XC-KSFT-END x86 ioperm_64 rc=1 secs=1
XC-KSFT-BEGIN x86 amx_64
XC-KSFT-END x86 amx_64 rc=4 secs=0
XC-KSFT-BEGIN x86 slow
XC-KSFT-END x86 slow rc=143 secs=30
";
        let r = parse_results(console, &built(), 30, &[]);
        let by = |n: &str| r.iter().find(|t| t.name == n).unwrap();
        let s = by("sigreturn_64");
        assert_eq!((s.verdict, s.rc, s.reason.as_str(), s.ok_lines, s.skip_lines), (Verdict::Fail, Some(133), "killed by SIGTRAP (5)", 1, 1));
        let io = by("ioperm_64");
        assert_eq!(io.verdict, Verdict::Fail);
        assert_eq!(io.subtests.iter().map(|t| t.verdict).collect::<Vec<_>>(), vec![Verdict::Pass, Verdict::Skip, Verdict::Fail]);
        assert_eq!(io.subtests[1].name, "second");
        assert_eq!(by("amx_64").verdict, Verdict::Skip);
        assert_eq!(by("slow").reason, "timed out after 30s");
        assert_eq!(by("gone").verdict, Verdict::NotBuilt);
        assert_eq!((by("never").verdict, by("never").reason.as_str()), (Verdict::Fail, "never started (the boot ended before it)"));
        let skipped = parse_results(console, &built(), 30, &["x86:never".into()]);
        assert_eq!(skipped.iter().find(|t| t.name == "never").unwrap().verdict, Verdict::NotRun);
    }

    #[test]
    fn a_sigterm_well_before_the_timeout_is_not_a_timeout() {
        assert_eq!(verdict_of(143, Some(2), 60).1, "killed by SIGTERM (15)");
        assert_eq!(verdict_of(0, None, 60).0, Verdict::Pass);
    }
}
