//! Stock against libos: every test of either report in one table. A test
//! that passes on stock and does not on libos is a failure unless
//! `kselftest-expected.toml` lists it with its reason.

use super::expected::ExpectedDifferences;
use super::results::{KselftestReport, TestResult, Verdict};
use serde::Serialize;

/// What a row means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RowClass {
    /// Same verdict on both.
    Same,
    /// Stock passes, libos does not, and the file says why.
    Expected { allows: String },
    /// Stock passes, libos FAILs or SKIPs, and nothing says why: a failure.
    Regression,
    /// Any other difference (libos passes where stock does not, a SKIP
    /// against a FAIL, a test not run or not built on one side): reported,
    /// not a failure.
    Differs,
}

/// One test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub test: String,
    pub stock: Option<Verdict>,
    pub libos: Option<Verdict>,
    /// The libos run's reason (a signal, a timeout), when it is not a PASS.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub libos_reason: String,
    pub class: RowClass,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Comparison {
    pub kernel_version: String,
    pub rows: Vec<Row>,
    /// Listed differences that did not show up (the test passes on libos
    /// now, or did not run): candidates for removal from the file.
    pub unused_expected: Vec<String>,
    pub regressions: usize,
    /// Oops, WARNING, BUG or panic lines either kernel logged during the runs.
    pub kernel_problems: Vec<String>,
    pub passed: bool,
}

/// Compare two reports of the same kernel version. Every test of either
/// report is a row. A test that ran on both and printed TAP subtests
/// (`ok 3 name`) is also compared subtest by subtest, as
/// `suite:test/subtest`: a whole test can FAIL alike on both kernels (one
/// subtest stock cannot pass either, say) while libos loses another, and
/// that is a regression too. Subtest rows are shown only where the two
/// kernels differ, so the table stays one screen per suite.
pub fn compare(stock: &KselftestReport, libos: &KselftestReport, expected: &ExpectedDifferences) -> Comparison {
    let ids = unique_in_order(stock.tests.iter().chain(&libos.tests).map(|t| t.id()));
    let find = |r: &KselftestReport, id: &str| r.tests.iter().find(|t| t.id() == id).cloned();
    let mut rows = Vec::new();
    let mut used = std::collections::HashSet::new();
    for id in ids {
        let s = find(stock, &id);
        let l = find(libos, &id);
        let (sv, lv) = (s.as_ref().map(|t| t.verdict), l.as_ref().map(|t| t.verdict));
        let class = classify(&id, sv, lv, expected, &mut used);
        let libos_reason = l.as_ref().map(|t| t.reason.clone()).unwrap_or_default();
        rows.push(Row { test: id.clone(), stock: sv, libos: lv, libos_reason, class });
        if let (Some(s), Some(l)) = (&s, &l) {
            rows.extend(subtest_rows(&id, s, l, expected, &mut used));
        }
    }
    let unused_expected = expected.differences.iter().map(|d| d.test.clone()).filter(|t| !used.contains(t)).collect();
    let regressions = rows.iter().filter(|r| r.class == RowClass::Regression).count();
    let kernel_problems: Vec<String> = stock.kernel_problems.iter().map(|p| format!("stock: {p}")).chain(libos.kernel_problems.iter().map(|p| format!("libos: {p}"))).collect();
    let passed = regressions == 0 && kernel_problems.is_empty();
    Comparison { kernel_version: libos.kernel_version.clone(), rows, unused_expected, regressions, kernel_problems, passed }
}

/// One row per subtest of test `id` whose verdicts differ between the runs.
fn subtest_rows(id: &str, stock: &TestResult, libos: &TestResult, expected: &ExpectedDifferences, used: &mut std::collections::HashSet<String>) -> Vec<Row> {
    let (ss, ls) = (subtests(stock), subtests(libos));
    let get = |v: &[(String, Verdict)], name: &str| v.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
    let mut rows = Vec::new();
    for name in unique_in_order(ss.iter().chain(&ls).map(|(n, _)| n.clone())) {
        let (sv, lv) = (get(&ss, &name), get(&ls, &name));
        if sv != lv {
            let sub = format!("{id}/{name}");
            let class = classify(&sub, sv, lv, expected, used);
            rows.push(Row { test: sub, stock: sv, libos: lv, libos_reason: String::new(), class });
        }
    }
    rows
}

/// Each item once, in the order first seen.
fn unique_in_order(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    items.filter(|i| seen.insert(i.clone())).collect()
}

fn classify(id: &str, sv: Option<Verdict>, lv: Option<Verdict>, expected: &ExpectedDifferences, used: &mut std::collections::HashSet<String>) -> RowClass {
    if sv == lv {
        RowClass::Same
    } else if sv == Some(Verdict::Pass) && matches!(lv, Some(Verdict::Fail | Verdict::Skip)) {
        match expected.get(id) {
            Some(e) => {
                used.insert(id.to_owned());
                RowClass::Expected { allows: e.allows.clone() }
            }
            None => RowClass::Regression,
        }
    } else {
        RowClass::Differs
    }
}

/// A test's subtests by name, with process ids taken out (clone3 prints
/// `[1445] Result (0) matches expectation (0)`, and the pid differs from
/// boot to boot); a name printed twice gets ` #2`, ` #3` in order, so the
/// n-th of each compares.
fn subtests(t: &TestResult) -> Vec<(String, Verdict)> {
    let mut count: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    t.subtests
        .iter()
        .map(|s| {
            let base = without_pids(&s.name);
            let n = count.entry(base.clone()).or_default();
            *n += 1;
            let name = if *n == 1 { base } else { format!("{base} #{n}") };
            (name, s.verdict)
        })
        .collect()
}

/// `[1445] Result` -> `[pid] Result`: every bracketed run of digits.
fn without_pids(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with(']') {
            out.push_str("[pid]");
            rest = &after[digits + 1..];
        } else {
            out.push('[');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

impl Comparison {
    /// A plain-text table, one test a line.
    pub fn table(&self) -> String {
        let v = |x: Option<Verdict>| x.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
        let w = self.rows.iter().map(|r| r.test.len()).max().unwrap_or(4).max(4);
        let mut s = format!("{:<w$}  {:<9}  {:<9}  note\n", "test", "stock", "libos");
        for r in &self.rows {
            let note = match &r.class {
                RowClass::Same => String::new(),
                RowClass::Expected { allows } => format!("expected: {allows}"),
                RowClass::Regression => format!("REGRESSION {}", r.libos_reason),
                RowClass::Differs => r.libos_reason.clone(),
            };
            s.push_str(format!("{:<w$}  {:<9}  {:<9}  {}", r.test, v(r.stock), v(r.libos), note).trim_end());
            s.push('\n');
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kselftest::results::TestResult;

    fn report(mode: crate::pipeline::build::Mode, tests: &[(&str, Verdict)]) -> KselftestReport {
        KselftestReport {
            kernel_version: "6.1.192".into(),
            mode,
            image_dir: "/i".into(),
            selftests_dir: "/s".into(),
            timeout_secs: 60,
            kernel_problems: vec![],
            tests: tests
                .iter()
                .map(|(id, v)| {
                    let (suite, name) = id.split_once(':').unwrap();
                    TestResult { suite: suite.into(), name: name.into(), verdict: *v, rc: None, reason: String::new(), subtests: vec![], ok_lines: 0, fail_lines: 0, skip_lines: 0 }
                })
                .collect(),
        }
    }

    #[test]
    fn stock_pass_libos_fail_is_a_regression_unless_listed() {
        use crate::pipeline::build::Mode;
        use Verdict::*;
        let stock = report(Mode::Stock, &[("x86:ioperm_64", Pass), ("x86:sigreturn_64", Pass), ("x86:amx_64", Skip), ("rseq:basic_test", Fail)]);
        let libos = report(Mode::Libos, &[("x86:ioperm_64", Fail), ("x86:sigreturn_64", Fail), ("x86:amx_64", Skip), ("rseq:basic_test", Pass)]);
        let exp = ExpectedDifferences::parse(
            "[[difference]]\ntest = \"x86:ioperm_64\"\nallows = \"port I/O\"\nwhy = \"CPL 0\"\n[[difference]]\ntest = \"x86:gone\"\nallows = \"a\"\nwhy = \"b\"\n",
            std::path::Path::new("e.toml"),
        )
        .unwrap();
        let c = compare(&stock, &libos, &exp);
        let class = |t: &str| c.rows.iter().find(|r| r.test == t).unwrap().class.clone();
        assert_eq!(class("x86:ioperm_64"), RowClass::Expected { allows: "port I/O".into() });
        assert_eq!(class("x86:sigreturn_64"), RowClass::Regression);
        assert_eq!(class("x86:amx_64"), RowClass::Same);
        assert_eq!(class("rseq:basic_test"), RowClass::Differs);
        assert_eq!((c.regressions, c.passed), (1, false));
        assert_eq!(c.unused_expected, vec!["x86:gone".to_string()]);
        let t = c.table();
        assert!(t.contains("x86:sigreturn_64") && t.contains("REGRESSION"), "{t}");
    }

    #[test]
    fn a_subtest_lost_inside_a_test_that_fails_alike_is_a_regression() {
        use crate::kselftest::results::SubTest;
        use crate::pipeline::build::Mode;
        use Verdict::*;
        let with = |mode, subs: &[(&str, Verdict)]| {
            let mut r = report(mode, &[("seccomp:seccomp_bpf", Fail)]);
            r.tests[0].subtests = subs.iter().enumerate().map(|(i, (n, v))| SubTest { number: i as u32 + 1, name: n.to_string(), verdict: *v }).collect();
            r
        };
        let stock = with(Mode::Stock, &[("global.pid_ns", Fail), ("TRAP.handler", Pass), ("dup", Pass), ("dup", Pass), ("[1445] Result (0)", Pass)]);
        let libos = with(Mode::Libos, &[("global.pid_ns", Fail), ("TRAP.handler", Fail), ("dup", Pass), ("dup", Fail), ("[1444] Result (0)", Pass)]);
        let c = compare(&stock, &libos, &ExpectedDifferences::default());
        let tests: Vec<(&str, &RowClass)> = c.rows.iter().map(|r| (r.test.as_str(), &r.class)).collect();
        assert_eq!(
            tests,
            vec![
                ("seccomp:seccomp_bpf", &RowClass::Same),
                ("seccomp:seccomp_bpf/TRAP.handler", &RowClass::Regression),
                ("seccomp:seccomp_bpf/dup #2", &RowClass::Regression)
            ]
        );
        assert!(!c.passed);
        assert_eq!(without_pids("[12] a [x] [3]"), "[pid] a [x] [pid]");
        let listed = ExpectedDifferences::parse(
            "[[difference]]\ntest = \"seccomp:seccomp_bpf/TRAP.handler\"\nallows = \"a\"\nwhy = \"b\"\n[[difference]]\ntest = \"seccomp:seccomp_bpf/dup #2\"\nallows = \"a\"\nwhy = \"b\"\n",
            std::path::Path::new("e.toml"),
        )
        .unwrap();
        assert!(compare(&stock, &libos, &listed).passed);
    }
}
