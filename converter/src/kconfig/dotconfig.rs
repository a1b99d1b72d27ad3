//! A parsed `.config` file.

use super::expr::Values;
use std::collections::HashMap;

/// The assignments of a `.config`: `CONFIG_FOO=y` and `# CONFIG_FOO is not set`.
///
/// Names are stored without the `CONFIG_` prefix. Values are kept exactly as
/// written (strings keep their quotes) so the file can be reproduced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DotConfig {
    /// name -> Some(raw value) or None for "is not set".
    entries: HashMap<String, Option<String>>,
    /// Names in file order, for stable iteration.
    order: Vec<String>,
}

impl DotConfig {
    /// Parse `.config` text; unrelated lines are ignored (the format has no errors).
    pub fn parse(text: &str) -> DotConfig {
        let mut config = DotConfig::default();
        for line in text.lines() {
            let line = line.trim();
            if let Some(name) = parse_unset(line) {
                config.insert(name, None);
            } else if let Some((name, value)) = parse_assignment(line) {
                config.insert(name, Some(value.to_string()));
            }
        }
        config
    }

    /// Record an assignment (later ones win, as in kconfig).
    pub fn insert(&mut self, name: &str, value: Option<String>) {
        let name = name.strip_prefix("CONFIG_").unwrap_or(name);
        if !self.entries.contains_key(name) {
            self.order.push(name.to_string());
        }
        self.entries.insert(name.to_string(), value);
    }

    /// Raw value ("y", "m", "123", "\"str\""); None when "is not set" or absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        let name = name.strip_prefix("CONFIG_").unwrap_or(name);
        self.entries.get(name)?.as_deref()
    }

    /// True when the option has a value (`CONFIG_X=...`, including `=n`).
    pub fn is_set(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// True when the file mentions the option at all, set or "is not set".
    pub fn mentions(&self, name: &str) -> bool {
        let name = name.strip_prefix("CONFIG_").unwrap_or(name);
        self.entries.contains_key(name)
    }

    /// Assignments in file order: (name, Some(value)) or (name, None) for unset.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.order
            .iter()
            .map(|n| (n.as_str(), self.entries.get(n).and_then(|v| v.as_deref())))
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// `# CONFIG_FOO is not set` -> FOO.
fn parse_unset(line: &str) -> Option<&str> {
    line.strip_prefix("# CONFIG_")?.strip_suffix(" is not set")
}

/// `CONFIG_FOO=value` -> (FOO, value).
fn parse_assignment(line: &str) -> Option<(&str, &str)> {
    let (name, value) = line.strip_prefix("CONFIG_")?.split_once('=')?;
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then_some((name, value))
}

/// A string value as Kconfig writes it in `.config`: in double quotes, with
/// `"` and `\` escaped by a backslash (confdata.c's `conf_write_symbol`).
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Remove surrounding double quotes and Kconfig's backslash escapes (a
/// backslash takes the next character literally, as Kconfig reads it), the
/// inverse of [`quote`]. An unquoted value is returned as it is.
pub fn unquote(value: &str) -> String {
    let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).filter(|_| value.len() >= 2) else {
        return value.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// Plain evaluation against a `.config`: absent symbols are n.
impl Values for DotConfig {
    fn value(&self, name: &str) -> String {
        self.get(name).map_or_else(|| "n".to_string(), unquote)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_quoting_round_trips() {
        for s in ["", "plain", "a\\b", "say \"hi\"", "\\", "\\\"", "x\\\\y\"", "ünï"] {
            let q = quote(s);
            assert_eq!(unquote(&q), s, "{s:?} -> {q}");
            let c = DotConfig::parse(&format!("CONFIG_S={q}\n"));
            assert_eq!(c.value("S"), s);
        }
        assert_eq!(quote("a\\b"), r#""a\\b""#);
        assert_eq!(unquote("\""), "\"", "a lone quote is not a quoted string");
    }

    #[test]
    fn parses_values_and_unset() {
        let c = DotConfig::parse(
            "#\n# comment\nCONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\nCONFIG_S=\"hi there\"\nCONFIG_N=123\nCONFIG_A=n\n",
        );
        assert_eq!(c.get("A"), Some("n"));
        assert_eq!(c.get("CONFIG_B"), Some("m"));
        assert_eq!(c.get("C"), None);
        assert!(c.mentions("C") && !c.is_set("C"));
        assert_eq!(c.get("S"), Some("\"hi there\""));
        assert_eq!(c.value("S"), "hi there");
        assert_eq!(c.value("ABSENT"), "n");
        assert_eq!(c.len(), 5);
        assert_eq!(c.iter().next(), Some(("A", Some("n"))));
    }
}
