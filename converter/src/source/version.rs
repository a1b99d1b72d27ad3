//! Kernel version as declared by the top-level `Makefile`.
//!
//! The version is always read from the tree itself, never from a file or
//! package name: a tarball can be renamed, a Debian package can be rebased,
//! but the Makefile is what Kbuild (and therefore the converter) obeys.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// `VERSION.PATCHLEVEL.SUBLEVEL` plus the free-form `EXTRAVERSION` (e.g. `-rc3`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KernelVersion {
    pub version: u32,
    pub patchlevel: u32,
    pub sublevel: u32,
    pub extraversion: String,
}

/// Why a Makefile did not yield a version.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum VersionError {
    #[error("Makefile has no `{0} =` line")]
    Missing(&'static str),
    #[error("Makefile `{field} = {value}` is not a number")]
    NotANumber { field: &'static str, value: String },
}

impl KernelVersion {
    /// Parse the four version variables from the text of a kernel's top
    /// `Makefile`. Only the first assignment of each counts, as in the kernel
    /// (later ones are in unrelated recipes). `EXTRAVERSION` may be empty or
    /// absent.
    pub fn parse_makefile(text: &str) -> Result<Self, VersionError> {
        let number = |field: &'static str| -> Result<u32, VersionError> {
            let value = makefile_var(text, field).ok_or(VersionError::Missing(field))?;
            value.parse().map_err(|_| VersionError::NotANumber {
                field,
                value: value.to_string(),
            })
        };
        Ok(KernelVersion {
            version: number("VERSION")?,
            patchlevel: number("PATCHLEVEL")?,
            sublevel: number("SUBLEVEL")?,
            extraversion: makefile_var(text, "EXTRAVERSION")
                .unwrap_or_default()
                .to_string(),
        })
    }

    /// The stable series, `"6.1"`: what Debian names its `linux-source-*`
    /// packages after and what converter profiles are keyed on.
    pub fn series(&self) -> String {
        format!("{}.{}", self.version, self.patchlevel)
    }
}

/// Value of the first top-level `NAME = value` (also `:=`, `?=`) line.
fn makefile_var<'t>(text: &'t str, name: &str) -> Option<&'t str> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        let key = key.trim_end().trim_end_matches([':', '?']).trim_end();
        // A leading blank would make it part of a recipe or conditional body.
        (key == name && !line.starts_with(char::is_whitespace)).then(|| value.trim())
    })
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}{}",
            self.version, self.patchlevel, self.sublevel, self.extraversion
        )
    }
}

impl PartialOrd for KernelVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Numeric order first; then a release (`""`) sorts after its release
/// candidates (`-rcN`, compared numerically), and any other suffix falls back
/// to plain string order so that `Ord` stays consistent with `Eq`.
impl Ord for KernelVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.version, self.patchlevel, self.sublevel)
            .cmp(&(other.version, other.patchlevel, other.sublevel))
            .then_with(|| extraversion_cmp(&self.extraversion, &other.extraversion))
    }
}

fn extraversion_cmp(a: &str, b: &str) -> Ordering {
    let rc = |s: &str| s.strip_prefix("-rc").and_then(|n| n.parse::<u32>().ok());
    match (a.is_empty(), b.is_empty(), rc(a), rc(b)) {
        (true, true, _, _) => Ordering::Equal,
        (true, false, _, Some(_)) => Ordering::Greater,
        (false, true, Some(_), _) => Ordering::Less,
        (false, false, Some(x), Some(y)) => x.cmp(&y).then_with(|| a.cmp(b)),
        _ => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "# SPDX-License-Identifier: GPL-2.0\nVERSION = 6\nPATCHLEVEL = 1\n\
                        SUBLEVEL = 158\nEXTRAVERSION =\nNAME = Curry Ramen\n\
                        \tVERSION = 9\n";

    #[test]
    fn parses_debian_style_makefile() {
        let v = KernelVersion::parse_makefile(HEAD).expect("parses");
        assert_eq!(v.to_string(), "6.1.158");
        assert_eq!(v.series(), "6.1");
        assert_eq!(v.extraversion, "");
    }

    #[test]
    fn missing_and_bad_fields_are_reported() {
        assert_eq!(
            KernelVersion::parse_makefile("VERSION = 6\nPATCHLEVEL = 1\n"),
            Err(VersionError::Missing("SUBLEVEL"))
        );
        assert!(matches!(
            KernelVersion::parse_makefile("VERSION = six\n"),
            Err(VersionError::NotANumber {
                field: "VERSION",
                ..
            })
        ));
    }

    #[test]
    fn release_sorts_after_its_rcs() {
        let v = |s: u32, e: &str| KernelVersion {
            version: 6,
            patchlevel: 12,
            sublevel: s,
            extraversion: e.into(),
        };
        assert!(v(0, "-rc2") < v(0, "-rc10"));
        assert!(v(0, "-rc10") < v(0, ""));
        assert!(v(0, "") < v(1, "-rc1"));
        assert_eq!(v(3, "-x").to_string(), "6.12.3-x");
    }
}
