//! Stock against libos: every test of either report in one table. A test
//! that passes on stock and does not on libos is a failure unless
//! `kselftest-expected.toml` lists it with its reason.

use super::expected::ExpectedDifferences;
use super::results::{KselftestReport, Verdict};
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

/// Compare two reports of the same kernel version.
pub fn compare(stock: &KselftestReport, libos: &KselftestReport, expected: &ExpectedDifferences) -> Comparison {
    let mut ids: Vec<String> = stock.tests.iter().chain(&libos.tests).map(|t| t.id()).collect();
    let mut seen = std::collections::HashSet::new();
    ids.retain(|i| seen.insert(i.clone()));
    let find = |r: &KselftestReport, id: &str| r.tests.iter().find(|t| t.id() == id).cloned();
    let mut rows = Vec::new();
    let mut used = std::collections::HashSet::new();
    for id in ids {
        let s = find(stock, &id);
        let l = find(libos, &id);
        let (sv, lv) = (s.as_ref().map(|t| t.verdict), l.as_ref().map(|t| t.verdict));
        let class = if sv == lv {
            RowClass::Same
        } else if sv == Some(Verdict::Pass) && matches!(lv, Some(Verdict::Fail | Verdict::Skip)) {
            match expected.get(&id) {
                Some(e) => {
                    used.insert(id.clone());
                    RowClass::Expected { allows: e.allows.clone() }
                }
                None => RowClass::Regression,
            }
        } else {
            RowClass::Differs
        };
        let libos_reason = l.map(|t| t.reason).unwrap_or_default();
        rows.push(Row { test: id, stock: sv, libos: lv, libos_reason, class });
    }
    let unused_expected = expected.differences.iter().map(|d| d.test.clone()).filter(|t| !used.contains(t)).collect();
    let regressions = rows.iter().filter(|r| r.class == RowClass::Regression).count();
    let kernel_problems: Vec<String> = stock.kernel_problems.iter().map(|p| format!("stock: {p}")).chain(libos.kernel_problems.iter().map(|p| format!("libos: {p}"))).collect();
    let passed = regressions == 0 && kernel_problems.is_empty();
    Comparison { kernel_version: libos.kernel_version.clone(), rows, unused_expected, regressions, kernel_problems, passed }
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
}
