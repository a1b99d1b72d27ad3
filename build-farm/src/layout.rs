//! The cache's directory names, in one place (cargo's `layout.rs` is the
//! model): every other module asks a [`Layout`] where things go, so the
//! layout is documented once (docs/metadata.md) and can change once.
//!
//! ```text
//! <root>/
//!   sources/<source_hash>/            pulled trees          (cache entries)
//!   patched/<ver>-<set>-<key16>/      converted trees       (cache entries)
//!   configs/<ver>-<profile>-<key16>/  verified .configs     (cache entries)
//!   builds/<ver>-<profile>-<mode>-<key16>/ images           (cache entries)
//!   wrapped/<name>-<key16>/           wrapped containers    (cache entries)
//!   locks/<stage>/<entry>.lock        one lock file per entry key
//!   work/<entry>/                     object directories of builds in progress
//!   boots/<image>-<stamp>-<pid>/      boot records (not cache entries)
//!   runs/<name>/                      running containers (not cache entries)
//!   stats/                            unit counts of earlier builds (progress bars)
//!   downloads/debian/                 fetched Debian source tarballs (pull --debian)
//! ```
//!
//! Records inside entries store paths relative to the root, so a cache
//! copied or moved whole keeps every entry a hit.

use std::path::{Path, PathBuf};

/// A kind of cache entry: each has a directory under the root and a record
/// file whose presence makes an entry complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Pulled kernel trees.
    Sources,
    /// Trees converted by a patch set.
    Patched,
    /// Verified configurations.
    Configs,
    /// Built images.
    Builds,
    /// Wrapped containers (kernel + rootfs).
    Wrapped,
    /// Kernel selftests built from one cached tree.
    Selftests,
    /// Distribution packages made from one image.
    Packages,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 7] = [Stage::Sources, Stage::Patched, Stage::Configs, Stage::Builds, Stage::Wrapped, Stage::Selftests, Stage::Packages];

    /// The directory under the root.
    pub fn dir_name(self) -> &'static str {
        match self {
            Stage::Sources => "sources",
            Stage::Patched => "patched",
            Stage::Configs => "configs",
            Stage::Builds => "builds",
            Stage::Wrapped => "wrapped",
            Stage::Selftests => "selftests",
            Stage::Packages => "packages",
        }
    }

    /// The record that is written last: an entry without it does not exist.
    pub fn record_name(self) -> &'static str {
        match self {
            Stage::Sources => "source.json",
            Stage::Patched => "patched.json",
            Stage::Configs => "configured.json",
            Stage::Builds => "manifest.json",
            Stage::Wrapped => "wrapped.json",
            Stage::Selftests => "selftests.json",
            Stage::Packages => "packages.json",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.dir_name())
    }
}

/// Where everything lives under one cache root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// A layout rooted at `root` (nothing is created), made absolute against
    /// the current directory.
    ///
    /// Why absolute: stages hand cache paths to tools that change directory
    /// first. `make -C <tree> O=<cache>/work/...` reads a relative O= from
    /// inside the tree, so `--cache target/cache` once built into a
    /// directory *inside the cached source tree* and failed with ".config
    /// not found". (Not canonicalized: a symlinked cache stays as named.)
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Self { root: std::path::absolute(&root).unwrap_or(root) }
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory holding one stage's entries.
    pub fn stage_dir(&self, stage: Stage) -> PathBuf {
        self.root.join(stage.dir_name())
    }

    /// One entry's directory.
    pub fn entry_dir(&self, stage: Stage, name: &str) -> PathBuf {
        self.stage_dir(stage).join(name)
    }

    /// The lock file of one entry.
    pub fn lock_file(&self, stage: Stage, name: &str) -> PathBuf {
        self.root.join("locks").join(stage.dir_name()).join(format!("{name}.lock"))
    }

    /// Object directories of builds (stable per key, so a failed build can be resumed).
    pub fn work_dir(&self) -> PathBuf {
        self.root.join("work")
    }

    /// Boot records.
    pub fn boots_dir(&self) -> PathBuf {
        self.root.join("boots")
    }

    /// Run directories of containers.
    pub fn runs_dir(&self) -> PathBuf {
        self.root.join("runs")
    }

    /// Inputs fetched for pull (Debian source tarballs of a given version),
    /// kept so that pulling them again needs no network.
    pub fn downloads_dir(&self) -> PathBuf {
        self.root.join("downloads")
    }

    /// Unit counts of earlier builds.
    pub fn stats_dir(&self) -> PathBuf {
        self.root.join("stats")
    }

    /// `path` relative to the root, for records (unchanged when outside it).
    pub fn relative(&self, path: &Path) -> PathBuf {
        path.strip_prefix(&self.root).map(Path::to_path_buf).unwrap_or_else(|_| path.to_path_buf())
    }

    /// A record's path made absolute again (absolute paths are kept).
    pub fn absolute(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.root.join(path)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_root_is_made_absolute_against_the_current_directory() {
        let l = Layout::new("some/cache");
        assert!(l.root().is_absolute(), "{}", l.root().display());
        assert_eq!(l.root(), std::env::current_dir().unwrap().join("some/cache"));
        assert_eq!(Layout::new("/abs/cache").root(), Path::new("/abs/cache"));
    }

    #[test]
    fn relative_and_absolute_round_trip_inside_the_root() {
        let l = Layout::new("/c");
        let p = l.entry_dir(Stage::Builds, "x").join("bzImage");
        assert_eq!(l.relative(&p), PathBuf::from("builds/x/bzImage"));
        assert_eq!(l.absolute(&l.relative(&p)), p);
        assert_eq!(l.relative(Path::new("/elsewhere/f")), PathBuf::from("/elsewhere/f"));
        let moved = Layout::new("/d");
        assert_eq!(moved.absolute(&l.relative(&p)), PathBuf::from("/d/builds/x/bzImage"));
    }

    #[test]
    fn every_stage_has_its_own_directory_and_record() {
        let dirs: std::collections::HashSet<_> = Stage::ALL.iter().map(|s| s.dir_name()).collect();
        let records: std::collections::HashSet<_> = Stage::ALL.iter().map(|s| s.record_name()).collect();
        assert_eq!(dirs.len(), Stage::ALL.len());
        assert_eq!(records.len(), Stage::ALL.len());
    }
}
