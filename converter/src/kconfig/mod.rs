//! Kconfig knowledge of a kernel tree.
//!
//! The converter asks the tree's own Kconfig why an option it requested did
//! not stick (unmet `depends on`, no prompt, `select`ed by something, a
//! `range`...). Rather than shelling out to the kernel's C kconfig, we parse
//! the Kconfig language here: loading is fast (well under a second for a full
//! tree in release builds), needs no toolchain, and gives us file:line for
//! every fact so explanations can point users at the source.
//!
//! Entry points: [`KconfigDb::load`], [`KconfigDb::explain`], [`DotConfig`],
//! and [`Expr`] for expression parsing/evaluation.

mod dotconfig;
mod error;
mod explain;
mod expr;
mod lexer;
mod model;
mod parser;
mod paths;
#[cfg(test)]
mod tests;

pub use dotconfig::{quote, unquote, DotConfig};
pub use error::KconfigError;
pub use explain::{Explanation, Reason, Requested};
pub use expr::{CmpOp, Expr, Leaf, Tristate, Values};
pub use model::{
    Choice, Cond, DefaultValue, Dep, DepOrigin, Location, Prompt, Range, Select, Symbol, SymbolKind,
};

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// How to load a tree: the architecture and values for `$(VAR)` in `source` paths.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub srcarch: String,
    /// Extra or overriding variables (SRCARCH, ARCH, HEADER_ARCH, ... are preset).
    pub vars: HashMap<String, String>,
}

impl LoadOptions {
    /// Defaults that let the stock kernel Kconfig resolve every `source`.
    pub fn new(tree: &Path, srcarch: &str) -> LoadOptions {
        // UML sources its host architecture's um/Kconfig via HEADER_ARCH.
        let header_arch = if srcarch == "um" { "x86" } else { srcarch };
        let vars = [
            ("SRCARCH", srcarch),
            ("ARCH", srcarch),
            ("SUBARCH", header_arch),
            ("HEADER_ARCH", header_arch),
            ("srctree", &tree.to_string_lossy()),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        LoadOptions {
            srcarch: srcarch.to_string(),
            vars,
        }
    }
}

/// Every symbol of a tree, for one SRCARCH.
#[derive(Debug, Clone)]
pub struct KconfigDb {
    tree: PathBuf,
    srcarch: String,
    symbols: HashMap<String, Symbol>,
    choices: Vec<Choice>,
    warnings: Vec<String>,
}

impl KconfigDb {
    /// Parse the tree's Kconfig files starting at `<tree>/Kconfig`, following
    /// `source`/`osource`/`rsource` (with `$(SRCARCH)` etc. substituted and
    /// globs expanded) and tracking enclosing `if`/`menu`/`choice` blocks so
    /// each symbol's dependencies include the inherited ones.
    pub fn load(tree: &Path, srcarch: &str) -> Result<KconfigDb, KconfigError> {
        Self::load_with(tree, &LoadOptions::new(tree, srcarch))
    }

    /// [`KconfigDb::load`] with explicit options.
    pub fn load_with(tree: &Path, options: &LoadOptions) -> Result<KconfigDb, KconfigError> {
        let mut vars = LoadOptions::new(tree, &options.srcarch).vars;
        vars.extend(options.vars.clone());
        let loaded = parser::Loader::new(tree, vars).run()?;
        Ok(KconfigDb {
            tree: tree.to_path_buf(),
            srcarch: options.srcarch.clone(),
            symbols: loaded.symbols,
            choices: loaded.choices,
            warnings: loaded.warnings,
        })
    }

    /// A symbol by name (with or without the `CONFIG_` prefix).
    pub fn symbol(&self, name: &str) -> Option<&Symbol> {
        self.symbols.get(strip_prefix(name))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.symbols.contains_key(strip_prefix(name))
    }

    pub fn len(&self) -> usize {
        self.symbols.len()
    }

    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    /// All symbols, in no particular order.
    pub fn symbols(&self) -> impl Iterator<Item = &Symbol> {
        self.symbols.values()
    }

    /// All choice blocks; [`Symbol::choice`] indexes into this.
    pub fn choices(&self) -> &[Choice] {
        &self.choices
    }

    /// Non-fatal oddities met while parsing (unknown keywords, dangling selects).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub fn tree(&self) -> &Path {
        &self.tree
    }

    pub fn srcarch(&self) -> &str {
        &self.srcarch
    }

    /// Closest real symbol name for a misspelt one, case-insensitively.
    ///
    /// Uses Damerau-Levenshtein distance (typos are usually one or two
    /// edits) with a length-scaled cut-off so unrelated names are never
    /// offered; ties go to the higher Jaro-Winkler score, then the name.
    pub fn suggest(&self, name: &str) -> Option<String> {
        let query = strip_prefix(name.trim()).to_ascii_uppercase();
        if query.is_empty() {
            return None;
        }
        let max_distance = (1 + query.len() / 5).min(3);
        let mut best: Option<(usize, f64, &str)> = None;
        for candidate in self.symbols.keys() {
            let upper = candidate.to_ascii_uppercase();
            if upper == query {
                return Some(candidate.clone());
            }
            if upper.len().abs_diff(query.len()) > max_distance {
                continue;
            }
            let distance = strsim::damerau_levenshtein(&query, &upper);
            if distance > max_distance {
                continue;
            }
            let score = strsim::jaro_winkler(&query, &upper);
            if is_better((distance, score, candidate), best) {
                best = Some((distance, score, candidate));
            }
        }
        best.map(|(_, _, name)| name.to_string())
    }

    /// Why did option `name`, requested as `wanted`, end up as it did in
    /// `config`? See [`Explanation`].
    pub fn explain(&self, name: &str, wanted: &Requested, config: &DotConfig) -> Explanation {
        explain::explain(self, strip_prefix(name), wanted, config)
    }
}

/// Ranking for [`KconfigDb::suggest`]: lower distance, higher score, smaller name.
fn is_better(candidate: (usize, f64, &str), best: Option<(usize, f64, &str)>) -> bool {
    let Some(best) = best else {
        return true;
    };
    (candidate.0, -candidate.1, candidate.2) < (best.0, -best.1, best.2)
}

/// Accept names with or without the `CONFIG_` prefix.
fn strip_prefix(name: &str) -> &str {
    name.strip_prefix("CONFIG_").unwrap_or(name)
}
