//! Errors raised while loading a Kconfig tree.
//!
//! Every variant that stems from a Kconfig file carries the file (relative to
//! the tree root) and the 1-based line, so a user can jump straight to it.

use std::path::PathBuf;

/// Why [`super::KconfigDb::load`] failed.
#[derive(Debug, thiserror::Error)]
pub enum KconfigError {
    /// A file could not be read (the top-level `Kconfig` or a `source`d one).
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A `source` (not `osource`) names a file that does not exist.
    #[error("{file}:{line}: sourced file `{path}` not found")]
    MissingSource {
        file: String,
        line: usize,
        path: String,
    },
    /// A `$(VAR)` in a `source` path has no value (pass it via `LoadOptions::vars`).
    #[error("{file}:{line}: unknown variable `$({var})` in source path")]
    UnresolvedVariable {
        file: String,
        line: usize,
        var: String,
    },
    /// A file sources itself, directly or indirectly.
    #[error("{file}:{line}: recursive source of `{path}`")]
    SourceLoop {
        file: String,
        line: usize,
        path: String,
    },
    /// Malformed syntax that makes the rest of the file unreliable
    /// (unbalanced blocks, unterminated strings, bad expressions).
    #[error("{file}:{line}: {message}")]
    Syntax {
        file: String,
        line: usize,
        message: String,
    },
}
