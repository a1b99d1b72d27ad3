//! Names from outside that become one path component.
//!
//! A name a user or an image gives us (`run --name`, a wrapped container's
//! name) is joined onto a cache directory and later removed with it: `..`,
//! `/`, `.` or an empty name would turn that removal onto the cache, its
//! parent or the host's root. Every such name goes through
//! [`ContainerName::parse`], which accepts docker's rule for container
//! names (`[A-Za-z0-9][A-Za-z0-9_.-]*`) up to [`MAX_LEN`] bytes, so the
//! result is always exactly one ordinary path component.

use std::fmt;
use std::str::FromStr;

/// Longest name accepted (docker has no limit but the 255 of a file name;
/// 128 leaves room for suffixes such as a pid).
pub const MAX_LEN: usize = 128;

/// A name that is one safe path component.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct ContainerName(String);

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("the name is empty")]
    Empty,
    #[error("{name:?} is longer than {MAX_LEN} bytes")]
    TooLong { name: String },
    #[error("{name:?} must start with a letter or digit (names are [A-Za-z0-9][A-Za-z0-9_.-]*, as docker's)")]
    BadStart { name: String },
    #[error("{name:?} holds {bad:?}: names are [A-Za-z0-9][A-Za-z0-9_.-]*, as docker's")]
    BadChar { name: String, bad: char },
}

impl ContainerName {
    /// Check `name` against the rule (see the module doc).
    pub fn parse(name: &str) -> Result<Self, NameError> {
        let first = name.chars().next().ok_or(NameError::Empty)?;
        if name.len() > MAX_LEN {
            return Err(NameError::TooLong { name: name.chars().take(MAX_LEN).collect::<String>() + "..." });
        }
        if !first.is_ascii_alphanumeric() {
            return Err(NameError::BadStart { name: name.to_owned() });
        }
        if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || "_.-".contains(*c))) {
            return Err(NameError::BadChar { name: name.to_owned(), bad });
        }
        Ok(Self(name.to_owned()))
    }

    /// A valid name made from anything (an image's name, say): characters
    /// outside the rule become `-`, a leading non-alphanumeric is dropped,
    /// the result is cut to `max` bytes, and nothing left gives `fallback`.
    pub fn sanitized(raw: &str, max: usize, fallback: &str) -> Self {
        let s: String = raw.chars().map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '-' }).collect();
        let s = s.trim_start_matches(|c: char| !c.is_ascii_alphanumeric()).trim_end_matches(['-', '.']);
        let s: String = s.chars().take(max.min(MAX_LEN)).collect();
        Self::parse(&s).unwrap_or_else(|_| Self::parse(fallback).expect("the fallback name follows the rule"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ContainerName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ContainerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<std::path::Path> for ContainerName {
    fn as_ref(&self) -> &std::path::Path {
        std::path::Path::new(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_spellings_are_refused() {
        for bad in ["", ".", "..", "/", "/etc", "../cache", "a/b", "a/../..", "-rf", ".hidden", "_x", "a b", "a\0b", "a\nb", "caf\u{e9}", "a\\b"] {
            assert!(ContainerName::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(matches!(ContainerName::parse(&"a".repeat(MAX_LEN + 1)), Err(NameError::TooLong { .. })));
    }

    #[test]
    fn docker_style_names_are_accepted_and_are_one_component() {
        for good in ["redis", "web-1", "a.b_c-d", "9", &"x".repeat(MAX_LEN)] {
            let n = ContainerName::parse(good).unwrap();
            let mut parts = std::path::Path::new(n.as_str()).components();
            assert!(matches!(parts.next(), Some(std::path::Component::Normal(_))), "{good}");
            assert!(parts.next().is_none(), "{good}");
        }
    }

    #[test]
    fn sanitized_names_always_follow_the_rule() {
        assert_eq!(ContainerName::sanitized("docker.io/library/redis:7", 48, "c").as_str(), "docker.io-library-redis-7");
        assert_eq!(ContainerName::sanitized("../..", 48, "container").as_str(), "container");
        assert_eq!(ContainerName::sanitized("", 48, "container").as_str(), "container");
        assert_eq!(ContainerName::sanitized("-.-x", 48, "c").as_str(), "x");
        assert_eq!(ContainerName::sanitized("abcdef", 3, "c").as_str(), "abc");
    }
}
