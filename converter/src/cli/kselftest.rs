//! `xc-convert kselftest compare`

use super::Session;
use crate::kselftest::{compare, ExpectedDifferences, KselftestError, KselftestReport, RowClass};
use crate::pipeline::build::Mode;
use std::path::{Path, PathBuf};

/// Compare the kernel's own selftests on a stock and a libOS kernel.
///
/// Run `xc-convert boot --kselftest --out DIR IMAGE` on a stock and a libos
/// image of one kernel first; each DIR then holds kselftest.json. `compare`
/// prints every test of both with its verdict (PASS, FAIL, SKIP, NOT_BUILT,
/// NOT_RUN) and exits 1 when a test passes on stock and not on libos,
/// unless patches/kselftest-expected.toml (or --expected FILE) lists it with
/// the reason: those are what a libOS kernel deliberately no longer
/// enforces (docs/conversion.md).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Table of every test on both kernels; exit 1 on an unexplained stock-pass/libos-fail.
    Compare {
        /// Boot directory (or kselftest.json) of the stock kernel.
        stock: PathBuf,
        /// Boot directory (or kselftest.json) of the libos kernel.
        libos: PathBuf,
        /// Deliberate differences [default: the shipped patches/kselftest-expected.toml].
        #[arg(long, value_name = "FILE")]
        expected: Option<PathBuf>,
    },
    /// Print the shipped deliberate differences as the Markdown table docs/conversion.md holds.
    Expected,
}

/// Read a boot's kselftest.json (the directory or the file itself).
pub(crate) fn read_report(path: &Path) -> Result<KselftestReport, KselftestError> {
    let file = if path.is_dir() { path.join(crate::kselftest::REPORT_FILE) } else { path.to_owned() };
    let text = std::fs::read_to_string(&file).map_err(|source| KselftestError::Read { path: file.clone(), source })?;
    serde_json::from_str(&text).map_err(|e| KselftestError::BadReport { path: file, message: e.to_string() })
}

/// Run `kselftest`.
pub fn exec(ctx: &Session, args: &Args) -> anyhow::Result<()> {
    match &args.action {
        Action::Expected => {
            print!("{}", ExpectedDifferences::shipped().markdown());
            Ok(())
        }
        Action::Compare { stock, libos, expected } => {
            let s = read_report(stock)?;
            let l = read_report(libos)?;
            if s.mode != Mode::Stock {
                return Err(KselftestError::WrongMode { what: "the first report must be a stock kernel's", path: stock.clone(), mode: s.mode.to_string() }.into());
            }
            if l.mode != Mode::Libos {
                return Err(KselftestError::WrongMode { what: "the second report must be a libos kernel's", path: libos.clone(), mode: l.mode.to_string() }.into());
            }
            let exp = match expected {
                Some(p) => ExpectedDifferences::load(p)?,
                None => ExpectedDifferences::shipped(),
            };
            let c = compare(&s, &l, &exp);
            let mut human = format!("Linux {} stock ({}) vs libos ({})\n", l.kernel_version, s.kernel_version, l.kernel_version);
            human.push_str(&c.table());
            for p in &c.kernel_problems {
                human.push_str(&format!("kernel problem on {p}\n"));
            }
            if !c.unused_expected.is_empty() {
                human.push_str(&format!("listed as expected but not different here: {}\n", c.unused_expected.join(", ")));
            }
            let expected_n = c.rows.iter().filter(|r| matches!(r.class, RowClass::Expected { .. })).count();
            human.push_str(&format!(
                "{}: {} tests, {} regressions, {} expected differences",
                if c.passed { "PASS" } else { "FAIL" },
                c.rows.len(),
                c.regressions,
                expected_n
            ));
            super::emit(&ctx.ui, &c, &human);
            if c.passed {
                Ok(())
            } else {
                Err(super::ChecksFailed.into())
            }
        }
    }
}
