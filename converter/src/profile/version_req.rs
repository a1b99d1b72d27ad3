//! Version requirements on a kernel series (`">=6.12"`, `"<6.12,>=6.1"`, `"6.1"`).
//!
//! Profiles and patch templates select content by kernel series (major.minor);
//! stable sublevels never rename Kconfig symbols, so only the series counts.

use std::fmt;

/// A kernel series, e.g. 6.12.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Series(pub u32, pub u32);

impl fmt::Display for Series {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

impl Series {
    /// Parse "6.1" or "6.1.158" (extra components ignored).
    pub fn parse(text: &str) -> Option<Series> {
        let mut parts = text.trim().split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(Series(major, minor))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A conjunction of comparisons against a series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionReq {
    terms: Vec<(Op, Series)>,
    text: String,
}

impl fmt::Display for VersionReq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl VersionReq {
    /// Parse a requirement; the error says what part could not be read.
    pub fn parse(text: &str) -> Result<VersionReq, String> {
        let mut terms = Vec::new();
        for raw in text.split(',') {
            let t = raw.trim();
            let (op, rest) = if let Some(r) = t.strip_prefix(">=") {
                (Op::Ge, r)
            } else if let Some(r) = t.strip_prefix("<=") {
                (Op::Le, r)
            } else if let Some(r) = t.strip_prefix('>') {
                (Op::Gt, r)
            } else if let Some(r) = t.strip_prefix('<') {
                (Op::Lt, r)
            } else if let Some(r) = t.strip_prefix('=') {
                (Op::Eq, r.trim_start_matches('='))
            } else {
                (Op::Eq, t)
            };
            let series = Series::parse(rest)
                .ok_or_else(|| format!("`{t}` in kernel requirement `{text}` is not <op>MAJOR.MINOR"))?;
            terms.push((op, series));
        }
        Ok(VersionReq { terms, text: text.to_string() })
    }

    /// Does `series` satisfy every term?
    pub fn matches(&self, series: Series) -> bool {
        self.terms.iter().all(|(op, v)| match op {
            Op::Eq => series == *v,
            Op::Lt => series < *v,
            Op::Le => series <= *v,
            Op::Gt => series > *v,
            Op::Ge => series >= *v,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_match_series_numerically() {
        let r = VersionReq::parse(">=6.1,<6.12").unwrap();
        assert!(r.matches(Series(6, 1)));
        assert!(r.matches(Series(6, 9)));
        assert!(!r.matches(Series(6, 12)));
        assert!(VersionReq::parse(">=6.12").unwrap().matches(Series(6, 12)));
        // 6.12 > 6.2 numerically, not as strings.
        assert!(VersionReq::parse(">6.2").unwrap().matches(Series(6, 12)));
        assert!(VersionReq::parse("6.1").unwrap().matches(Series(6, 1)));
        assert!(!VersionReq::parse("6.1").unwrap().matches(Series(6, 12)));
    }

    #[test]
    fn bad_requirement_names_the_term() {
        let e = VersionReq::parse(">=six").unwrap_err();
        assert!(e.contains(">=six"), "{e}");
    }
}
