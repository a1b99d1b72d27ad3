//! Source stage: obtain a Linux kernel tree and cache it by content.
//!
//! Every input kind (Debian package, tarball, directory, git commit) is
//! reduced to a content hash first, then looked up in
//! `<cache_root>/sources/<hash>/`. On a miss the input is unpacked into a
//! scratch directory with [`extract_tar_safely`] (or copied), checked to be a
//! kernel tree, and published with one atomic rename (see [`cache`]). The
//! version always comes from the tree's own Makefile.

mod archive;
mod cache;
mod debian;
mod debian_archive;
mod extract;
mod git;
mod tree;
mod version;
pub mod date;

#[cfg(test)]
mod tests;

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use debian_archive::{published_versions, DebianVersion};
pub use extract::{
    extract_tar_safely, extract_tar_safely_with_progress, ExtractError, ExtractStats,
};
pub use version::{KernelVersion, VersionError};
/// Shared with `oci` so image layers refuse the same member names as `pull`.
pub(crate) use extract::safe_relative_path;

use cache::Cache;

/// The Debian package that ships the source of kernel series `series`.
pub fn debian_package_name(series: &str) -> Result<String, SourceError> {
    debian::package_name(series)
}

/// Where a kernel tree comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// Debian's `linux-source-<series>` package (installed on demand),
    /// optionally pinned by the SHA-256 of its tarball.
    Debian {
        series: String,
        sha256: Option<String>,
    },
    /// One published version of Debian's `linux-source-X.Y` (`6.1.176-1`),
    /// fetched with `apt-get download` into the cache's `downloads/`.
    DebianVersion {
        version: String,
        sha256: Option<String>,
    },
    /// A `.tar`, `.tar.gz` or `.tar.xz`, optionally pinned by SHA-256.
    Tarball {
        path: PathBuf,
        sha256: Option<String>,
    },
    /// An unpacked tree; copied, never modified.
    Dir(PathBuf),
    /// A revision of a local git repository.
    Git { repo: PathBuf, rev: String },
}

/// A kernel tree in the cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelTree {
    /// Directory containing the top-level `Makefile`.
    pub root: PathBuf,
    pub version: KernelVersion,
    /// Hex SHA-256 identifying the input (file bytes, tree walk or commit).
    pub source_hash: String,
    /// Human-readable description of the input, for reports.
    pub origin: String,
}

/// Result of [`pull`].
#[derive(Debug, Clone)]
pub struct PullOutcome {
    pub tree: KernelTree,
    /// True when the entry already existed (or a concurrent pull published
    /// it first), i.e. this call's own unpacking was not used.
    pub cache_hit: bool,
}

/// Progress notifications from [`pull`], for the UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullEvent {
    /// `apt-get download` is fetching this `package=version`.
    Downloading { package: String },
    /// `apt-get install` is being run for this package.
    Installing { package: String },
    /// The input is being hashed to find its cache entry.
    Hashing { what: String },
    /// The input was already in the cache.
    CacheHit { source_hash: String },
    /// Running totals while unpacking an archive.
    Extracting { entries: u64, bytes: u64 },
    /// Running totals while copying a directory input.
    Copying { files: u64, bytes: u64 },
    /// A new cache entry was published at this root.
    Published { root: PathBuf },
    /// Another process is unpacking the same input: waiting for its lock.
    Waiting { source_hash: String, lock: PathBuf },
}

/// Why a source could not be pulled. Every variant names the input or path.
#[derive(Debug, Error)]
pub enum SourceError {
    /// `input` is the user's input as they named it (`` `/src/linux` ``,
    /// `tarball /x.tar.xz`), never a scratch path that no longer exists.
    #[error("{input} is not a Linux kernel tree: missing {}", missing.join(", "))]
    NotAKernelTree { input: String, missing: Vec<String> },
    #[error("{what} `{}` does not exist", path.display())]
    NoSuchInput { what: &'static str, path: PathBuf },
    #[error("`{}` is empty, not a tarball", path.display())]
    EmptyArchive { path: PathBuf },
    #[error("cannot extract {archive}: {source}")]
    Extract {
        archive: String,
        #[source]
        source: ExtractError,
    },
    #[error("SHA-256 mismatch for `{}`: expected {expected}, actual {actual}", path.display())]
    ChecksumMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("`{given}` is not a SHA-256 (64 hex digits)")]
    InvalidSha256 { given: String },
    #[error("`{}`: unsupported compression {format}; use a .tar, .tar.gz or .tar.xz", path.display())]
    UnsupportedCompression { path: PathBuf, format: String },
    #[error("`{series}` is not a kernel series like `6.1`")]
    InvalidSeries { series: String },
    #[error("`{given}` is not a Debian kernel source version like `6.1.176-1`")]
    InvalidDebianVersion { given: String },
    #[error("{package} {version} is not published by the configured apt archives; published: {}", if published.is_empty() { "none".to_string() } else { published.join(", ") })]
    UnpublishedVersion { package: String, version: String, published: Vec<String> },
    #[error("Debian package `{}`: {message}", deb.display())]
    BadPackage { deb: PathBuf, message: String },
    #[error("package {package} contains kernel {found}, not series {series}")]
    SeriesMismatch {
        package: String,
        series: String,
        found: String,
    },
    #[error("cannot install Debian package {package}: {reason}")]
    PackageInstall { package: String, reason: String },
    #[error("git repository `{}`: {message}", repo.display())]
    Git { repo: PathBuf, message: String },
    #[error("`{}`: only regular files, directories and symlinks are supported", path.display())]
    UnsupportedFile { path: PathBuf },
    #[error("symlink `{}` points outside the tree: {reason}", path.display())]
    SymlinkEscapes { path: PathBuf, reason: String },
    /// A link judged against the tree as published (top directory
    /// stripped); `link` is relative to that tree.
    #[error("{input}: symlink `{}` points outside the tree: {reason}", link.display())]
    LinkOutsideTree { input: String, link: PathBuf, reason: String },
    #[error("cache metadata `{}` is unreadable: {message}", path.display())]
    CacheCorrupt { path: PathBuf, message: String },
    #[error("source cache: {0}")]
    Cache(String),
    #[error("`{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl SourceError {
    /// `map_err` helper attaching the path an I/O error is about.
    pub(crate) fn io(path: &Path) -> impl FnOnce(io::Error) -> SourceError + '_ {
        move |source| SourceError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The tree `pull` would publish from a filled unpack directory (its single
/// top directory, or itself), or None when a link in that tree leads outside
/// it: the checks [`pull`] makes before publishing, for the fuzz targets.
#[doc(hidden)]
pub fn published_tree_check(unpack: &Path) -> Result<Option<PathBuf>, SourceError> {
    let root = cache::single_top_dir(unpack)?.unwrap_or_else(|| unpack.to_path_buf());
    Ok(tree::find_link_outside(&root)?.is_none().then_some(root))
}

/// Obtain the kernel tree described by `spec` in the cache under
/// `cache_root`, unpacking it only if no entry for its content exists yet.
pub fn pull(
    spec: &SourceSpec,
    cache_root: &Path,
    progress: &dyn Fn(PullEvent),
) -> Result<PullOutcome, SourceError> {
    let cache = Cache::new(&build_farm::Layout::new(cache_root));
    match spec {
        SourceSpec::Debian { series, sha256 } => {
            pull_debian(&cache, series, sha256.as_deref(), progress)
        }
        SourceSpec::DebianVersion { version, sha256 } => {
            let downloads = build_farm::Layout::new(cache_root).downloads_dir().join("debian");
            pull_debian_version(&cache, version, sha256.as_deref(), &downloads, progress)
        }
        SourceSpec::Tarball { path, sha256 } => {
            let origin = format!("tarball {}", path.display());
            pull_tarball(&cache, path, sha256.as_deref(), &origin, progress)
        }
        SourceSpec::Dir(dir) => pull_dir(&cache, dir, progress),
        SourceSpec::Git { repo, rev } => pull_git(&cache, repo, rev, progress),
    }
}

fn pull_debian(
    cache: &Cache,
    series: &str,
    expected_sha256: Option<&str>,
    progress: &dyn Fn(PullEvent),
) -> Result<PullOutcome, SourceError> {
    let package = debian::package_name(series)?;
    if let Some(given) = expected_sha256 {
        archive::normalize_sha256(given)?; // a typo is refused before apt runs
    }
    let path = debian::locate_or_install(&package, progress)?;
    let origin = format!("debian {package} ({})", path.display());
    let outcome = pull_tarball(cache, &path, expected_sha256, &origin, progress)?;
    let found = outcome.tree.version.series();
    if found != series {
        return Err(SourceError::SeriesMismatch {
            package,
            series: series.to_string(),
            found: outcome.tree.version.to_string(),
        });
    }
    Ok(outcome)
}

fn pull_debian_version(
    cache: &Cache,
    version: &str,
    expected_sha256: Option<&str>,
    downloads: &Path,
    progress: &dyn Fn(PullEvent),
) -> Result<PullOutcome, SourceError> {
    let version = DebianVersion::parse(version)?;
    if let Some(given) = expected_sha256 {
        archive::normalize_sha256(given)?; // a typo is refused before apt runs
    }
    let path = debian_archive::tarball_for(&version, downloads, progress)?;
    let package = version.package();
    let origin = format!("debian {package} {} ({})", version.version, path.display());
    let outcome = pull_tarball(cache, &path, expected_sha256, &origin, progress)?;
    if outcome.tree.version.series() != version.series {
        return Err(SourceError::SeriesMismatch { package, series: version.series, found: outcome.tree.version.to_string() });
    }
    Ok(outcome)
}

fn pull_tarball(
    cache: &Cache,
    path: &Path,
    expected_sha256: Option<&str>,
    origin: &str,
    progress: &dyn Fn(PullEvent),
) -> Result<PullOutcome, SourceError> {
    let expected = expected_sha256.map(archive::normalize_sha256).transpose()?;
    let compression = archive::detect_compression(path)?;
    progress(PullEvent::Hashing {
        what: path.display().to_string(),
    });
    let actual = archive::sha256_file(path)?;
    if let Some(expected) = expected.filter(|e| *e != actual) {
        return Err(SourceError::ChecksumMismatch {
            path: path.to_path_buf(),
            expected,
            actual,
        });
    }
    pull_into_cache(cache, &actual, origin, progress, |dest| {
        let stream = archive::open_tar_stream(path, compression)?;
        extract_tar_safely_with_progress(stream, dest, &|s| {
            progress(PullEvent::Extracting {
                entries: s.entries,
                bytes: s.bytes,
            })
        })
        .map_err(|source| SourceError::Extract {
            archive: path.display().to_string(),
            source,
        })
        .map(|_| ())
    })
}

fn pull_dir(
    cache: &Cache,
    dir: &Path,
    progress: &dyn Fn(PullEvent),
) -> Result<PullOutcome, SourceError> {
    // Check before hashing: a wrong path should fail fast, not after
    // reading gigabytes.
    if !dir.is_dir() {
        return Err(SourceError::NoSuchInput { what: "directory", path: dir.to_path_buf() });
    }
    tree::inspect_kernel_tree(dir)?;
    progress(PullEvent::Hashing {
        what: dir.display().to_string(),
    });
    let hash = tree::hash_dir(dir)?;
    let origin = format!("directory {}", dir.display());
    pull_into_cache(cache, &hash, &origin, progress, |dest| {
        tree::copy_dir(dir, dest, progress)
    })
}

fn pull_git(
    cache: &Cache,
    repo: &Path,
    rev: &str,
    progress: &dyn Fn(PullEvent),
) -> Result<PullOutcome, SourceError> {
    let commit = git::resolve_commit(repo, rev)?;
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(format!(
        "git:{commit}"
    )));
    let origin = format!("git {} @ {rev} ({commit})", repo.display());
    pull_into_cache(cache, &hash, &origin, progress, |dest| {
        git::archive_into(repo, &commit, dest, progress).map(|_| ())
    })
}

/// Shared tail of every input kind: return the cached entry for
/// `source_hash`, or fill a scratch directory with `fill` and publish it.
/// `origin` always describes *this* request, even on a hit.
fn pull_into_cache(
    cache: &Cache,
    source_hash: &str,
    origin: &str,
    progress: &dyn Fn(PullEvent),
    fill: impl FnOnce(&Path) -> Result<(), SourceError>,
) -> Result<PullOutcome, SourceError> {
    if let Some(mut tree) = cache.lookup(source_hash)? {
        progress(PullEvent::CacheHit {
            source_hash: source_hash.to_string(),
        });
        tree.origin = origin.to_string();
        return Ok(PullOutcome {
            tree,
            cache_hit: true,
        });
    }
    // One unpacking per input at a time: a second pull of the same input
    // waits for the first and then finds its entry.
    let lock = cache.lock(source_hash, &|lock: &Path| {
        progress(PullEvent::Waiting { source_hash: source_hash.to_string(), lock: lock.to_path_buf() })
    })?;
    if let Some(mut tree) = cache.lookup(source_hash)? {
        tree.origin = origin.to_string();
        return Ok(PullOutcome { tree, cache_hit: true });
    }
    let staging = cache.stage(source_hash, &lock)?;
    fill(&staging.unpack_dir())?;
    let (tree, cache_hit) = cache.publish(staging, source_hash, origin)?;
    progress(PullEvent::Published {
        root: tree.root.clone(),
    });
    Ok(PullOutcome { tree, cache_hit })
}
