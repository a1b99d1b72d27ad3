//! Kernel-tree recognition, and hashing/copying of directory inputs.

use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use walkdir::{DirEntry, WalkDir};

use super::extract::{check_symlink_lexically, check_symlink_physically};
use super::{KernelVersion, PullEvent, SourceError};

/// Domain separator so a directory hash can never equal a file or git hash.
const DIR_HASH_PREFIX: &[u8] = b"xc-convert dir v1\0";
/// How often (in files) copy progress is reported.
const COPY_PROGRESS_EVERY: u64 = 2000;

/// Check that `root` looks like a Linux tree the converter can work on and
/// return the version from its Makefile. Everything missing is listed at
/// once, so a wrong `--source` path is diagnosed in one go.
pub(crate) fn inspect_kernel_tree(root: &Path) -> Result<KernelVersion, SourceError> {
    let mut missing = Vec::new();
    let version = match fs::read(root.join("Makefile")) {
        Ok(bytes) => KernelVersion::parse_makefile(&String::from_utf8_lossy(&bytes))
            .map_err(|e| missing.push(format!("a version in Makefile ({e})")))
            .ok(),
        Err(_) => {
            missing.push("Makefile".to_string());
            None
        }
    };
    if !root.join("Kconfig").is_file() {
        missing.push("Kconfig".to_string());
    }
    if !root.join("arch/x86").is_dir() {
        missing.push("arch/x86/".to_string());
    }
    match version {
        Some(version) if missing.is_empty() => Ok(version),
        _ => Err(SourceError::NotAKernelTree {
            input: format!("`{}`", root.display()),
            missing,
        }),
    }
}

/// Judge every symlink under `root` against `root` itself: `root` is the
/// tree exactly as it is published (top directory stripped), so a link that
/// stayed inside the unpack directory but climbs out of the stripped tree
/// (`linux/up -> ..`) is caught here. Returns the first offender, relative
/// to `root`, with the reason.
pub(crate) fn find_link_outside(root: &Path) -> Result<Option<(PathBuf, String)>, SourceError> {
    for entry in walk_all(root) {
        let entry = entry.map_err(|e| walk_error(root, e))?;
        if entry.file_type().is_symlink() {
            let rel = relative(root, entry.path());
            if let Err(reason) = check_symlink_physically(root, &rel) {
                return Ok(Some((rel, reason)));
            }
        }
    }
    Ok(None)
}

/// Every entry of `root`, in sorted order, never following symlinks.
fn walk_all(root: &Path) -> impl Iterator<Item = walkdir::Result<DirEntry>> {
    WalkDir::new(root).min_depth(1).follow_links(false).sort_by_file_name().into_iter()
}

/// Walk `root` in a deterministic order (sorted names), never following
/// symlinks and skipping version-control metadata, which is not source.
fn walk(root: &Path) -> impl Iterator<Item = walkdir::Result<DirEntry>> {
    WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.file_name() != ".git")
}

fn walk_error(root: &Path, err: walkdir::Error) -> SourceError {
    let path = err.path().unwrap_or(root).to_path_buf();
    let source = err
        .into_io_error()
        .unwrap_or_else(|| io::Error::other("filesystem loop"));
    SourceError::Io { path, source }
}

/// Identity of a directory input: SHA-256 over each entry's kind, relative
/// path, executable bit and content (files) or target (symlinks), in sorted
/// order. Timestamps, owners and other mode bits are deliberately left out
/// so that a `touch` or a fresh checkout does not invalidate the cache.
pub(crate) fn hash_dir(root: &Path) -> Result<String, SourceError> {
    let mut hasher = Sha256::new();
    hasher.update(DIR_HASH_PREFIX);
    for entry in walk(root) {
        let entry = entry.map_err(|e| walk_error(root, e))?;
        let rel = relative(root, entry.path());
        let kind = entry.file_type();
        if kind.is_dir() {
            frame(&mut hasher, b'd', rel.as_os_str().as_bytes());
        } else if kind.is_symlink() {
            let target = fs::read_link(entry.path()).map_err(SourceError::io(entry.path()))?;
            frame(&mut hasher, b'l', rel.as_os_str().as_bytes());
            frame(&mut hasher, b'>', target.as_os_str().as_bytes());
        } else if kind.is_file() {
            hash_file(&mut hasher, entry.path(), &rel)?;
        } else {
            return Err(SourceError::UnsupportedFile {
                path: entry.path().to_path_buf(),
            });
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Length-prefixed record: no two different trees can produce the same
/// byte stream by shifting bytes between a name and the next content.
fn frame(hasher: &mut Sha256, tag: u8, bytes: &[u8]) {
    hasher.update([tag]);
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

fn hash_file(hasher: &mut Sha256, path: &Path, rel: &Path) -> Result<(), SourceError> {
    let meta = fs::symlink_metadata(path).map_err(SourceError::io(path))?;
    let tag = if meta.permissions().mode() & 0o111 != 0 {
        b'x'
    } else {
        b'f'
    };
    frame(hasher, tag, rel.as_os_str().as_bytes());
    hasher.update(meta.len().to_le_bytes());
    let mut file = File::open(path).map_err(SourceError::io(path))?;
    let copied = io::copy(&mut file, hasher).map_err(SourceError::io(path))?;
    if copied != meta.len() {
        return Err(SourceError::Io {
            path: path.to_path_buf(),
            source: io::Error::other("file changed size while being hashed"),
        });
    }
    Ok(())
}

fn relative(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root).unwrap_or(path).to_path_buf()
}

/// Copy `src` into the empty directory `dst` without sharing inodes with the
/// user's tree (no hard links), so nothing done to the cache can reach the
/// original. Symlinks are recreated as-is but must stay inside the tree.
pub(crate) fn copy_dir(
    src: &Path,
    dst: &Path,
    progress: &dyn Fn(PullEvent),
) -> Result<(), SourceError> {
    let mut files = 0u64;
    let mut bytes = 0u64;
    let mut links = Vec::new();
    for entry in walk(src) {
        let entry = entry.map_err(|e| walk_error(src, e))?;
        let rel = relative(src, entry.path());
        let to = dst.join(&rel);
        let kind = entry.file_type();
        if kind.is_dir() {
            fs::create_dir(&to).map_err(SourceError::io(&to))?;
        } else if kind.is_symlink() {
            copy_symlink(entry.path(), &rel, &to)?;
            links.push(rel);
        } else if kind.is_file() {
            bytes += copy_file(entry.path(), &to)?;
            files += 1;
            if files.is_multiple_of(COPY_PROGRESS_EVERY) {
                progress(PullEvent::Copying { files, bytes });
            }
        } else {
            return Err(SourceError::UnsupportedFile {
                path: entry.path().to_path_buf(),
            });
        }
    }
    for rel in links {
        check_symlink_physically(dst, &rel).map_err(|reason| SourceError::SymlinkEscapes {
            path: src.join(&rel),
            reason,
        })?;
    }
    progress(PullEvent::Copying { files, bytes });
    Ok(())
}

fn copy_symlink(from: &Path, rel: &Path, to: &Path) -> Result<(), SourceError> {
    let target = fs::read_link(from).map_err(SourceError::io(from))?;
    check_symlink_lexically(rel, target.as_os_str().as_bytes()).map_err(|reason| {
        SourceError::SymlinkEscapes {
            path: from.to_path_buf(),
            reason,
        }
    })?;
    symlink(&target, to).map_err(SourceError::io(to))
}

/// Copy contents, then normalise the mode the same way extraction does.
fn copy_file(from: &Path, to: &Path) -> Result<u64, SourceError> {
    let mut input = File::open(from).map_err(SourceError::io(from))?;
    let meta = input.metadata().map_err(SourceError::io(from))?;
    let mode = meta.permissions().mode();
    let mut output = File::create_new(to).map_err(SourceError::io(to))?;
    let copied = io::copy(&mut input, &mut output).map_err(SourceError::io(to))?;
    // Keep the file's date: the build stage dates the kernel from it.
    if let Ok(modified) = meta.modified() {
        output.set_modified(modified).map_err(SourceError::io(to))?;
    }
    let normalized = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
    fs::set_permissions(to, fs::Permissions::from_mode(normalized)).map_err(SourceError::io(to))?;
    Ok(copied)
}
