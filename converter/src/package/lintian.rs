//! lintian on the packages made: an error or warning fails the package
//! unless it is one of the findings below that the kernel's own packaging
//! makes, each suppressed with its reason (the guest package carries its
//! overrides, with reasons, inside itself).

use super::{PackageError, PackageFile};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Findings of `make bindeb-pkg`'s linux-image package that are the
/// kernel's packaging choices, not defects of this image.
pub const STOCK_SUPPRESSED: &[(&str, &str)] = &[
    ("initial-upload-closes-no-bugs", "the changelog mkdebian writes is that of a locally built kernel, never uploaded to Debian: there is no ITP bug for it to close"),
    (
        "package-has-long-file-name",
        "bindeb-pkg names the file <package>_<version>_amd64.deb and both carry the kernel release; shortening it would drop the mode and profile (which keep it apart from the host's kernel) or the build hash (which tells two builds apart)",
    ),
];

/// One line of lintian's output.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Finding {
    /// `E`, `W`, `I`, `P`, `X`, `O` (overridden), `N`.
    pub severity: String,
    /// The tag.
    pub tag: String,
    /// The whole line.
    pub line: String,
}

/// Run lintian on `deb`; `suppress` are tags left out with a reason.
pub fn check(deb: &Path, suppress: &[(&str, &str)]) -> Result<Vec<Finding>, PackageError> {
    crate::host::require_program("lintian", "checking .deb packages; Debian package lintian")?;
    let mut cmd = std::process::Command::new("lintian");
    cmd.args(["--no-cfg", "--display-info", "--tag-display-limit", "0"]);
    let tags: Vec<&str> = suppress.iter().map(|(t, _)| *t).collect();
    if !tags.is_empty() {
        cmd.arg("--suppress-tags").arg(tags.join(","));
    }
    let out = cmd.arg(deb).output().map_err(|e| PackageError::Tool { command: "lintian".into(), status: "not started".into(), output: e.to_string() })?;
    // lintian exits 1 when it found errors (or policy-violating warnings);
    // the findings decide, not its status, except when it printed nothing.
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() && text.trim().is_empty() {
        return Err(PackageError::Tool { command: format!("lintian {}", deb.display()), status: out.status.to_string(), output: String::from_utf8_lossy(&out.stderr).into_owned() });
    }
    Ok(parse(&text))
}

/// lintian's lines: `E: pkg: tag-name [context]`.
pub fn parse(text: &str) -> Vec<Finding> {
    text.lines()
        .filter_map(|l| {
            let (sev, rest) = l.split_once(": ")?;
            if sev.len() != 1 {
                return None;
            }
            let (_pkg, rest) = rest.split_once(": ")?;
            let tag = rest.split_whitespace().next()?.to_string();
            Some(Finding { severity: sev.to_string(), tag, line: l.to_string() })
        })
        .collect()
}

/// The findings that fail a package: errors and warnings.
pub fn failing(findings: &[Finding]) -> Vec<&Finding> {
    findings.iter().filter(|f| f.severity == "E" || f.severity == "W").collect()
}

/// Check `pkg` in `dir` and fail on an error or a warning.
pub fn gate(dir: &Path, pkg: &PackageFile, suppress: &[(&str, &str)]) -> Result<Vec<Finding>, PackageError> {
    let findings = check(&dir.join(&pkg.file), suppress)?;
    let bad = failing(&findings);
    if !bad.is_empty() {
        return Err(PackageError::Lint { file: pkg.file.clone(), findings: bad.iter().map(|f| f.line.clone()).collect() });
    }
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_findings_and_only_errors_and_warnings_fail() {
        let f = parse("E: xc-libos-kernel-minimal: arch-dependent-file-in-usr-share [usr/share/x]\nI: xc: some-info\nN: a note line\nO: xc: overridden-tag [x]\n");
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].tag, "arch-dependent-file-in-usr-share");
        assert_eq!(failing(&f).len(), 1);
    }
}
