//! The kernel's own selftests (`tools/testing/selftests`), built from the
//! tree an image was built from and run inside that image.
//!
//! * [`build`]: one cache entry per tree and suite list (`selftests/`):
//!   the kernel's Makefiles, static, 64-bit, with a fallback where they do
//!   not produce a static binary;
//! * [`guest`]: the files and the runner script packed into the initramfs;
//! * [`results`]: the console parsed into per-test PASS / FAIL / SKIP;
//! * [`compare`] and [`expected`]: stock against libos, with the deliberate
//!   differences listed in `kselftest-expected.toml`.
//!
//! See docs/kselftest.md.

pub mod build;
pub mod compare;
pub mod expected;
pub mod guest;
pub mod results;

pub use build::{ensure_built, BuiltSelftests, SelftestTest, SelftestsRecord, SuiteBuild, TestKind};
pub use compare::{compare, Comparison, Row, RowClass};
pub use expected::{ExpectedDifferences, ExpectedDifference};
pub use guest::{guest_files, RUNNER_NAME};
pub use results::{parse_results, KselftestReport, SubTest, TestResult, Verdict};

use std::path::PathBuf;

/// The per-test results a `boot --kselftest` writes beside report.json.
pub const REPORT_FILE: &str = "kselftest.json";

/// The suites `--kselftest` runs when none are named: the x86 entry tests
/// (what the conversion changes) and what containers rely on.
pub const DEFAULT_SUITES: &[&str] =
    &["x86", "seccomp", "rseq", "futex", "timers", "ptrace", "clone3", "pidfd", "exec", "membarrier"];

/// Debian packages the selftests' Makefiles need beyond the kernel build's:
/// libcap (seccomp, clone3 link `-lcap`, static) and rsync (futex copies
/// its scripts with it).
pub const SELFTEST_PACKAGES: &[&str] = &["libcap-dev", "rsync"];

/// What went wrong building, reading or comparing selftests.
#[derive(Debug, thiserror::Error)]
pub enum KselftestError {
    #[error("no selftest suite {suite:?} in {dir} (suites are the directories of tools/testing/selftests)")]
    UnknownSuite { suite: String, dir: PathBuf },
    #[error("suite name {0:?} is not a plain directory name")]
    BadSuiteName(String),
    #[error("cannot find the kernel tree of image {image} (source hash {hash}) in the cache {cache}: build the image again so its tree is cached")]
    TreeMissing { image: PathBuf, hash: String, cache: PathBuf },
    #[error("`{command}` failed ({status}) while building selftests; log: {log}")]
    Make { command: String, status: String, log: PathBuf },
    #[error("cannot run {program}")]
    Spawn { program: String, #[source] source: std::io::Error },
    #[error("cannot read {path}")]
    Read { path: PathBuf, #[source] source: std::io::Error },
    #[error("{path} is not a kselftest report ({message}); boot with --kselftest writes kselftest.json")]
    BadReport { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    BadExpected { path: PathBuf, message: String },
    #[error("{what}: the report of {path} is a {mode} kernel")]
    WrongMode { what: &'static str, path: PathBuf, mode: String },
    #[error(transparent)]
    Io(#[from] build_farm::PathError),
    #[error(transparent)]
    Entry(#[from] build_farm::EntryError),
}

/// A suite name must be one directory below tools/testing/selftests.
pub fn check_suite_name(s: &str) -> Result<(), KselftestError> {
    let ok = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(KselftestError::BadSuiteName(s.to_owned()))
    }
}
