//! A container's root file system as a directory on the host: walked once,
//! in a fixed order, into what packing and the cache key need (every entry
//! with its type, owner and mode; the content size; a digest of it all).
//!
//! The walk never follows a symlink and never writes: the directory is the
//! user's input. Device nodes, FIFOs and sockets are skipped (an image
//! cannot bring device nodes: /dev is the kernel's devtmpfs at run time),
//! and so is a `.xc/` of the rootfs's own, which `wrap` replaces.

use sha2::{Digest, Sha256};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// What one rootfs entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    /// A regular file (its bytes are read when packing).
    File { size: u64 },
    /// A symlink and its target, as stored (never resolved).
    Symlink { target: Vec<u8> },
}

/// One entry below the rootfs directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootEntry {
    /// Path relative to the rootfs, `/`-separated, no leading `/`.
    pub rel: String,
    pub kind: EntryKind,
    /// Permission bits (with setuid/setgid/sticky).
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The walked rootfs.
#[derive(Debug, Clone)]
pub struct RootfsTree {
    /// The directory walked.
    pub root: PathBuf,
    /// Parents before children, siblings sorted by name.
    pub entries: Vec<RootEntry>,
    /// Sum of the regular files' sizes.
    pub content_bytes: u64,
    /// sha256 over every entry's path, kind, owner, mode and bytes.
    pub digest: String,
    /// Entries left out (device nodes, FIFOs, sockets), for the report.
    pub skipped: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("rootfs {path} is not a directory")]
    NotADirectory { path: PathBuf },
    #[error("cannot read rootfs entry {path}")]
    Read { path: PathBuf, #[source] source: std::io::Error },
    #[error("rootfs entry {path} has a name that is not UTF-8; the initramfs writer needs UTF-8 names")]
    NonUtf8 { path: PathBuf },
}

impl RootfsTree {
    /// Host path of an entry.
    pub fn host_path(&self, e: &RootEntry) -> PathBuf {
        self.root.join(&e.rel)
    }

    /// Number of inodes (for sizing an ext4 image).
    pub fn inode_count(&self) -> u64 {
        self.entries.len() as u64 + 1
    }
}

/// Walk `root` (see the module doc for what is skipped).
pub fn walk(root: &Path) -> Result<RootfsTree, RootfsError> {
    if !root.is_dir() {
        return Err(RootfsError::NotADirectory { path: root.to_owned() });
    }
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    let mut content_bytes = 0u64;
    let mut hash = Sha256::new();
    let walker = walkdir::WalkDir::new(root).follow_links(false).sort_by_file_name().min_depth(1);
    let mut it = walker.into_iter();
    while let Some(item) = it.next() {
        let item = item.map_err(|e| {
            let path = e.path().map(Path::to_owned).unwrap_or_else(|| root.to_owned());
            RootfsError::Read { path, source: e.into() }
        })?;
        let path = item.path();
        let rel_path = path.strip_prefix(root).expect("walkdir stays below its root");
        let rel = rel_path.to_str().ok_or_else(|| RootfsError::NonUtf8 { path: path.to_owned() })?.to_owned();
        if rel == ".xc" {
            // Ours to write: the rootfs's own copy would shadow the spec.
            if item.file_type().is_dir() {
                it.skip_current_dir();
            }
            skipped.push(rel);
            continue;
        }
        let meta = item.metadata().map_err(|e| RootfsError::Read { path: path.to_owned(), source: e.into() })?;
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            EntryKind::Dir
        } else if ft.is_file() {
            content_bytes += meta.len();
            EntryKind::File { size: meta.len() }
        } else if ft.is_symlink() {
            let target = std::fs::read_link(path).map_err(|source| RootfsError::Read { path: path.to_owned(), source })?;
            EntryKind::Symlink { target: target.as_os_str().as_bytes().to_vec() }
        } else {
            debug_assert!(ft.is_block_device() || ft.is_char_device() || ft.is_fifo() || ft.is_socket());
            skipped.push(rel);
            continue;
        };
        let entry = RootEntry { rel, kind, perm: meta.mode() & 0o7777, uid: meta.uid(), gid: meta.gid() };
        hash_entry(&mut hash, &entry, path)?;
        entries.push(entry);
    }
    Ok(RootfsTree { root: root.to_owned(), entries, content_bytes, digest: hex::encode(hash.finalize()), skipped })
}

fn hash_entry(hash: &mut Sha256, e: &RootEntry, path: &Path) -> Result<(), RootfsError> {
    let kind = match &e.kind {
        EntryKind::Dir => "d",
        EntryKind::File { .. } => "f",
        EntryKind::Symlink { .. } => "l",
    };
    hash.update(format!("{kind} {} {} {:o} {}\0", e.uid, e.gid, e.perm, e.rel).as_bytes());
    match &e.kind {
        EntryKind::Dir => {}
        EntryKind::Symlink { target } => hash.update(target),
        EntryKind::File { .. } => {
            let mut f = std::fs::File::open(path).map_err(|source| RootfsError::Read { path: path.to_owned(), source })?;
            let n = std::io::copy(&mut f, hash).map_err(|source| RootfsError::Read { path: path.to_owned(), source })?;
            hash.update(n.to_le_bytes());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn walk_orders_parents_first_keeps_links_and_skips_our_dir() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("bin")).unwrap();
        std::fs::write(d.path().join("bin/sh"), b"#!").unwrap();
        symlink("sh", d.path().join("bin/ash")).unwrap();
        std::fs::create_dir_all(d.path().join(".xc")).unwrap();
        std::fs::write(d.path().join(".xc/spec"), b"stale").unwrap();
        let t = walk(d.path()).unwrap();
        let rels: Vec<&str> = t.entries.iter().map(|e| e.rel.as_str()).collect();
        assert_eq!(rels, ["bin", "bin/ash", "bin/sh"]);
        assert_eq!(t.entries[1].kind, EntryKind::Symlink { target: b"sh".to_vec() });
        assert_eq!(t.content_bytes, 2);
        assert_eq!(t.skipped, [".xc"]);
        let before = t.digest.clone();
        std::fs::write(d.path().join("bin/sh"), b"#?").unwrap();
        assert_ne!(walk(d.path()).unwrap().digest, before, "content is in the digest");
    }

    #[test]
    fn a_file_is_not_a_rootfs() {
        let f = tempfile::NamedTempFile::new().unwrap();
        assert!(matches!(walk(f.path()), Err(RootfsError::NotADirectory { .. })));
    }
}
