//! One I/O error type that names what was being done and to which path:
//! every stage's error enum wraps it instead of repeating the same variant.

use std::io;
use std::path::{Path, PathBuf};

/// An I/O operation that failed on a path.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}: {source}", path.display())]
pub struct PathError {
    /// What was being done ("read", "create directory").
    pub op: &'static str,
    /// The path it was done to.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: io::Error,
}

/// `map_err` helper: `fs::read(&p).map_err(at("read", &p))?`.
pub fn at<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> PathError + 'a {
    move |source| PathError { op, path: path.to_path_buf(), source }
}
