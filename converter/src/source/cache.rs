//! The content-addressed source cache.
//!
//! Layout: `<cache_root>/sources/<source_hash>/{tree/, source.json}` (the
//! names come from [`build_farm::Layout`]). An entry counts only once
//! `source.json` exists, and entries appear by one atomic `rename` of a fully
//! prepared staging directory, created under the key's lock
//! ([`build_farm::Entry`]), so a crash or an error at any point leaves either
//! nothing or a complete entry, and the next pull of the same input removes
//! what a killed one left behind.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::tree::{find_link_outside, inspect_kernel_tree};
use super::{KernelTree, SourceError};

const TREE_DIR: &str = "tree";
const METADATA_FILE: &str = "source.json";
const UNPACK_DIR: &str = "unpack";

/// Handle on `<cache_root>/sources`.
pub(crate) struct Cache {
    layout: build_farm::Layout,
    sources: PathBuf,
}

/// A scratch directory being filled; removed on drop unless published.
pub(crate) struct Staging {
    dir: TempDir,
}

impl Staging {
    /// Where the filler (extraction, copy) must put the input's contents.
    pub(crate) fn unpack_dir(&self) -> PathBuf {
        self.dir.path().join(UNPACK_DIR)
    }
}

impl Cache {
    /// Nothing is created until [`Cache::stage`], so inputs rejected early
    /// (bad checksum, not a kernel tree) leave the cache untouched.
    pub(crate) fn new(layout: &build_farm::Layout) -> Self {
        Cache {
            layout: layout.clone(),
            sources: layout.stage_dir(build_farm::Stage::Sources),
        }
    }

    fn entry(&self, source_hash: &str) -> build_farm::Entry {
        build_farm::Entry::new(&self.layout, build_farm::Stage::Sources, source_hash)
    }

    fn entry_dir(&self, source_hash: &str) -> PathBuf {
        self.entry(source_hash).dir()
    }

    /// The lock of one input's entry (removes what a dead pull of it left).
    pub(crate) fn lock(
        &self,
        source_hash: &str,
        on_wait: &dyn Fn(&Path),
    ) -> Result<build_farm::EntryLock, SourceError> {
        self.entry(source_hash).lock(on_wait).map_err(|e| SourceError::Cache(e.to_string()))
    }

    /// The published tree for `source_hash`, if any. `root` is recomputed
    /// from the entry's location so a moved cache still works.
    pub(crate) fn lookup(&self, source_hash: &str) -> Result<Option<KernelTree>, SourceError> {
        let entry = self.entry_dir(source_hash);
        let meta_path = entry.join(METADATA_FILE);
        let text = match fs::read_to_string(&meta_path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(SourceError::io(&meta_path)(e)),
        };
        let mut tree: KernelTree =
            serde_json::from_str(&text).map_err(|e| SourceError::CacheCorrupt {
                path: meta_path.clone(),
                message: e.to_string(),
            })?;
        tree.root = entry.join(TREE_DIR);
        Ok(Some(tree))
    }

    /// A fresh staging directory next to the entries (same filesystem, so
    /// the final rename is atomic) with an empty `unpack/` inside.
    pub(crate) fn stage(
        &self,
        source_hash: &str,
        _lock: &build_farm::EntryLock,
    ) -> Result<Staging, SourceError> {
        fs::create_dir_all(&self.sources).map_err(SourceError::io(&self.sources))?;
        let dir = tempfile::Builder::new()
            .prefix(&build_farm::Staging::prefix_for(&self.entry_dir(source_hash)))
            .tempdir_in(&self.sources)
            .map_err(SourceError::io(&self.sources))?;
        let staging = Staging { dir };
        let unpack = staging.unpack_dir();
        fs::create_dir(&unpack).map_err(SourceError::io(&unpack))?;
        Ok(staging)
    }

    /// Turn a filled staging directory into the entry for `source_hash`:
    /// find the kernel root, read its version, write `source.json`, rename.
    /// Returns the tree and whether another process published it first.
    pub(crate) fn publish(
        &self,
        staging: Staging,
        source_hash: &str,
        origin: &str,
    ) -> Result<(KernelTree, bool), SourceError> {
        let staged_tree = staging.dir.path().join(TREE_DIR);
        let unpack = staging.unpack_dir();
        let root = single_top_dir(&unpack)?.unwrap_or_else(|| unpack.clone());
        fs::rename(&root, &staged_tree).map_err(SourceError::io(&root))?;
        if root != unpack {
            fs::remove_dir(&unpack).map_err(SourceError::io(&unpack))?;
        }
        // Judged as published, and named by the user's input: the staging
        // path is gone by the time anyone reads the message.
        if let Some((link, reason)) = find_link_outside(&staged_tree)? {
            return Err(SourceError::LinkOutsideTree { input: origin.to_string(), link, reason });
        }
        let version = inspect_kernel_tree(&staged_tree).map_err(|e| match e {
            SourceError::NotAKernelTree { missing, .. } => SourceError::NotAKernelTree { input: origin.to_string(), missing },
            other => other,
        })?;
        let entry = self.entry_dir(source_hash);
        let tree = KernelTree {
            root: entry.join(TREE_DIR),
            version,
            source_hash: source_hash.to_string(),
            origin: origin.to_string(),
        };
        // The record names the tree relative to the cache root: a moved
        // cache stays valid (lookup recomputes `root` from the entry).
        let record = KernelTree { root: self.layout.relative(&tree.root), ..tree.clone() };
        write_metadata(&staging.dir.path().join(METADATA_FILE), &record)?;
        self.rename_into_place(staging, &entry, source_hash, tree)
    }

    /// Atomic publish. If a concurrent pull got there first, ours is dropped
    /// (removing it) and theirs, which holds identical content, is used.
    fn rename_into_place(
        &self,
        staging: Staging,
        entry: &Path,
        source_hash: &str,
        tree: KernelTree,
    ) -> Result<(KernelTree, bool), SourceError> {
        match fs::rename(staging.dir.path(), entry) {
            Ok(()) => {
                let _ = staging.dir.keep(); // now lives at `entry`
                Ok((tree, false))
            }
            Err(err) => match self.lookup(source_hash)? {
                Some(theirs) => Ok((theirs, true)),
                None => Err(SourceError::io(entry)(err)),
            },
        }
    }
}

/// If `dir` holds exactly one entry and it is a real directory, that is the
/// archive's top-level folder (`linux-source-6.1/`) and the tree lives in it.
pub(crate) fn single_top_dir(dir: &Path) -> Result<Option<PathBuf>, SourceError> {
    let mut entries = fs::read_dir(dir).map_err(SourceError::io(dir))?;
    let first = match entries.next() {
        Some(entry) => entry.map_err(SourceError::io(dir))?,
        None => return Ok(None),
    };
    if entries.next().is_some() {
        return Ok(None);
    }
    let is_dir = first
        .file_type()
        .map_err(SourceError::io(&first.path()))?
        .is_dir();
    Ok(is_dir.then(|| first.path()))
}

fn write_metadata(path: &Path, tree: &KernelTree) -> Result<(), SourceError> {
    let json = serde_json::to_string_pretty(tree).map_err(|e| SourceError::CacheCorrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    fs::write(path, json + "\n").map_err(SourceError::io(path))
}
