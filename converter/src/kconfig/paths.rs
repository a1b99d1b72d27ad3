//! Resolving `source` paths: `$(VAR)` substitution and glob expansion.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Expand `$(NAME)` references from `vars` (recursively, since recursive
/// `NAME = ...` variables may refer to others). Returns the first name that
/// has no value, or is a function call such as `$(shell,...)`, as the error.
pub(crate) fn expand_vars(text: &str, vars: &HashMap<String, String>) -> Result<String, String> {
    expand_depth(text, vars, 0)
}

fn expand_depth(
    text: &str,
    vars: &HashMap<String, String>,
    depth: usize,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let close = matching_paren(after).ok_or_else(|| after.to_string())?;
        let inner = expand_depth(&after[..close], vars, depth + 1)?;
        let value = vars
            .get(inner.as_str())
            .filter(|_| depth < 16)
            .ok_or_else(|| inner.clone())?;
        out.push_str(&expand_depth(value, vars, depth + 1)?);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Index of the `)` closing an already-opened `$(`.
fn matching_paren(text: &str) -> Option<usize> {
    let mut depth = 1usize;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// True when a path contains glob metacharacters.
pub(crate) fn is_glob(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

/// Expand a glob relative to `base`, component by component; matches sorted
/// so loading order (and thus "first definition") is deterministic.
pub(crate) fn glob(base: &Path, pattern: &str) -> Vec<PathBuf> {
    let mut current = vec![base.to_path_buf()];
    for component in pattern.split('/').filter(|c| !c.is_empty() && *c != ".") {
        current = current
            .iter()
            .flat_map(|dir| match_component(dir, component))
            .collect();
    }
    current.retain(|p| p.is_file());
    current.sort();
    current
}

/// Children of `dir` matching one path component (literal or wildcard).
fn match_component(dir: &Path, component: &str) -> Vec<PathBuf> {
    if !is_glob(component) {
        let path = dir.join(component);
        return if path.exists() {
            vec![path]
        } else {
            Vec::new()
        };
    }
    let Ok(re) = regex::Regex::new(&glob_to_regex(component)) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_str().is_some_and(|n| re.is_match(n)))
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// Translate one glob component to an anchored regex (`*`, `?`, `[...]`).
fn glob_to_regex(component: &str) -> String {
    let mut re = String::from("^");
    let mut in_class = false;
    for c in component.chars() {
        match (in_class, c) {
            (false, '*') => re.push_str("[^/]*"),
            (false, '?') => re.push_str("[^/]"),
            (false, '[') => {
                in_class = true;
                re.push('[');
            }
            (true, ']') => {
                in_class = false;
                re.push(']');
            }
            (true, '!') if re.ends_with('[') => re.push('^'),
            (true, c) => re.push(c),
            (false, c) => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    re
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_variables() {
        let vars: HashMap<String, String> = [("SRCARCH", "x86"), ("A", "$(SRCARCH)/sub")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(
            expand_vars("arch/$(SRCARCH)/Kconfig", &vars),
            Ok("arch/x86/Kconfig".into())
        );
        assert_eq!(expand_vars("$(A)/K", &vars), Ok("x86/sub/K".into()));
        assert_eq!(expand_vars("arch/$(NOPE)/K", &vars), Err("NOPE".into()));
    }

    #[test]
    fn globs_match_files_sorted() {
        let dir = tempfile::tempdir().expect("tempdir");
        for sub in ["b", "a", "c"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
            std::fs::write(dir.path().join(sub).join("Kconfig"), "").expect("write");
        }
        std::fs::write(dir.path().join("c").join("Other"), "").expect("write");
        let found = glob(dir.path(), "*/Kconfig");
        let names: Vec<_> = found
            .iter()
            .map(|p| {
                p.parent()
                    .and_then(|d| d.file_name())
                    .and_then(|n| n.to_str())
            })
            .collect();
        assert_eq!(names, [Some("a"), Some("b"), Some("c")]);
        assert_eq!(glob(dir.path(), "[ab]/Kconfig").len(), 2);
    }
}
