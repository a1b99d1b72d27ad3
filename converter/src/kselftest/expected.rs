//! `patches/kselftest-expected.toml`: the selftests that pass on a stock
//! kernel and, by design, not on its libOS conversion, each with the
//! reason. `kselftest compare` accepts exactly these; docs/conversion.md
//! renders them ([`ExpectedDifferences::markdown`], checked by a test).

use super::KselftestError;
use serde::Deserialize;
use std::path::Path;

/// The file shipped with the patch set, compiled in.
pub const SHIPPED: &str = include_str!("../../../patches/kselftest-expected.toml");
/// Its path in the repository, for messages.
pub const SHIPPED_PATH: &str = "patches/kselftest-expected.toml";

/// One deliberate difference.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedDifference {
    /// `suite:test`, as `kselftest compare` names it.
    pub test: String,
    /// What a libOS process can do that a stock one cannot (one line).
    pub allows: String,
    /// Why the conversion cannot or need not enforce it.
    pub why: String,
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedDifferences {
    #[serde(rename = "difference", default)]
    pub differences: Vec<ExpectedDifference>,
}

impl ExpectedDifferences {
    /// Parse `text` (read from `path`, for messages); a test listed twice is refused.
    pub fn parse(text: &str, path: &Path) -> Result<Self, KselftestError> {
        let d: Self = toml::from_str(text).map_err(|e| KselftestError::BadExpected { path: path.to_owned(), message: e.to_string() })?;
        let mut seen = std::collections::HashSet::new();
        for x in &d.differences {
            if !x.test.contains(':') {
                return Err(KselftestError::BadExpected { path: path.to_owned(), message: format!("test {:?} must be suite:test", x.test) });
            }
            if !seen.insert(x.test.as_str()) {
                return Err(KselftestError::BadExpected { path: path.to_owned(), message: format!("test {:?} is listed twice", x.test) });
            }
        }
        Ok(d)
    }

    /// The compiled-in file.
    pub fn shipped() -> Self {
        Self::parse(SHIPPED, Path::new(SHIPPED_PATH)).expect("the shipped kselftest-expected.toml parses (unit test)")
    }

    /// Read a file given with `--expected`.
    pub fn load(path: &Path) -> Result<Self, KselftestError> {
        let text = std::fs::read_to_string(path).map_err(|source| KselftestError::Read { path: path.to_owned(), source })?;
        Self::parse(&text, path)
    }

    /// The entry for `suite:test`.
    pub fn get(&self, id: &str) -> Option<&ExpectedDifference> {
        self.differences.iter().find(|d| d.test == id)
    }

    /// The table docs/conversion.md shows.
    pub fn markdown(&self) -> String {
        let mut s = String::from("| selftest | what a process can do on libOS | why |\n|---|---|---|\n");
        for d in &self.differences {
            let why = d.why.split_whitespace().collect::<Vec<_>>().join(" ");
            s.push_str(&format!("| `{}` | {} | {} |\n", d.test, d.allows.trim(), why));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_file_parses_and_names_the_known_differences() {
        let d = ExpectedDifferences::shipped();
        for t in ["x86:test_vsyscall_64", "x86:ioperm_64"] {
            assert!(d.get(t).is_some(), "{t} missing from {SHIPPED_PATH}");
        }
    }

    #[test]
    fn unknown_fields_and_duplicates_are_refused() {
        let p = Path::new("x.toml");
        let e = ExpectedDifferences::parse("[[difference]]\ntest = \"a:b\"\nallows = \"x\"\nwhy = \"y\"\nreason = \"z\"\n", p).unwrap_err();
        assert!(e.to_string().contains("reason"), "{e}");
        let two = "[[difference]]\ntest = \"a:b\"\nallows = \"x\"\nwhy = \"y\"\n";
        let e = ExpectedDifferences::parse(&format!("{two}{two}"), p).unwrap_err();
        assert!(e.to_string().contains("listed twice"), "{e}");
    }

    #[test]
    fn docs_conversion_md_renders_the_shipped_file() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/conversion.md")).unwrap();
        let table = ExpectedDifferences::shipped().markdown();
        assert!(doc.contains(&table), "docs/conversion.md must contain the table of {SHIPPED_PATH} exactly as rendered:\n{table}");
    }
}
