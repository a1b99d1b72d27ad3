//! Apply image layers, in order, onto a rootfs directory.
//!
//! Each member name is refused as `pull` refuses it ([`safe_relative_path`]:
//! no absolute names, no `..`), device nodes and FIFOs are refused, and no
//! write ever goes through a symlink that leads out of the rootfs: parents
//! are resolved inside the rootfs ([`rootfs_path::resolve`]) and the last
//! component is replaced, never followed. Unlike `pull`'s extraction, a
//! rootfs keeps absolute symlinks (they resolve inside it once it is `/`),
//! real hard links, file modes and (when we are root) owners, and a later
//! layer may replace a directory with a file: that is how layers work.
//!
//! Whiteouts (OCI image spec, "Representing Changes"): `.wh.NAME` deletes
//! NAME from the layers below, `.wh..wh..opq` empties its directory of
//! them. A layer's whiteouts are applied before any of its entries, so
//! member order inside the layer does not matter; that needs two reads of
//! the layer ([`scan_whiteouts`], then [`Applier::extract`]).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{lchown, symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use tar::{Archive, Entry, EntryType};
use thiserror::Error;

use super::rootfs_path::{self, RootPathError};
use crate::source::safe_relative_path;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// Why a layer could not be applied. `layer` names the blob.
#[derive(Debug, Error)]
pub enum LayerError {
    #[error("layer {layer}: refusing entry `{entry}`: {reason}")]
    Unsafe {
        layer: String,
        entry: String,
        reason: String,
    },
    #[error("layer {layer}: entry `{entry}`: {source}")]
    Path {
        layer: String,
        entry: String,
        #[source]
        source: RootPathError,
    },
    #[error("layer {layer} is corrupt or truncated: {message}")]
    Corrupt { layer: String, message: String },
    #[error("layer {layer}: cannot write `{}`: {source}", path.display())]
    Io {
        layer: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The whiteouts of one layer, relative to the rootfs, as named in the layer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Whiteouts {
    /// Directories whose lower contents are hidden (`DIR/.wh..wh..opq`).
    pub opaque: Vec<PathBuf>,
    /// Paths deleted (`DIR/.wh.NAME` -> `DIR/NAME`).
    pub removed: Vec<PathBuf>,
}

/// Wrap a layer stream in the decompressor its first bytes call for: gzip
/// (`1f 8b`), zstd (`28 b5 2f fd`) or a plain tar. Sniffing rather than
/// trusting the media type: docker's saves say `tar` for gzip layers.
pub fn decompress<'a, R: Read + 'a>(
    reader: R,
    layer: &str,
) -> Result<Box<dyn Read + 'a>, LayerError> {
    let mut buffered = BufReader::with_capacity(64 * 1024, reader);
    let head = buffered.fill_buf().map_err(|e| corrupt(layer, e))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::GzDecoder::new(buffered)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok(Box::new(
            ruzstd::decoding::StreamingDecoder::new(buffered).map_err(|e| LayerError::Corrupt {
                layer: layer.to_string(),
                message: format!("zstd: {e}"),
            })?,
        ))
    } else {
        Ok(Box::new(buffered))
    }
}

/// First read of a layer: collect its whiteouts (and refuse unsafe names early).
pub fn scan_whiteouts<R: Read>(tar: R, layer: &str) -> Result<Whiteouts, LayerError> {
    let mut whiteouts = Whiteouts::default();
    let mut archive = Archive::new(tar);
    for entry in archive.entries().map_err(|e| corrupt(layer, e))? {
        let entry = entry.map_err(|e| corrupt(layer, e))?;
        let raw = entry.path_bytes().into_owned();
        let rel = member_path(&raw, layer)?;
        let Some(name) = rel.file_name().and_then(OsStr::to_str) else {
            continue;
        };
        let dir = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        if name == OPAQUE_MARKER {
            whiteouts.opaque.push(dir);
        } else if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            // `.wh..` and `.wh...` would name the directory itself or its
            // parent: joined, they empty whole directories of the layers
            // below. A whiteout names one entry; refuse the others by name.
            if matches!(hidden, "" | "." | "..") || hidden.starts_with(WHITEOUT_PREFIX) {
                return Err(LayerError::Unsafe {
                    layer: layer.to_owned(),
                    entry: String::from_utf8_lossy(&raw).into_owned(),
                    reason: format!("a whiteout must name one entry, not {hidden:?}"),
                });
            }
            whiteouts.removed.push(dir.join(hidden));
        }
    }
    Ok(whiteouts)
}

/// What applying layers wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Members created (files, directories, links).
    pub entries: u64,
    /// Whiteouts applied.
    pub whiteouts: u64,
}

/// Applies layers one after the other onto one rootfs.
pub struct Applier<'r> {
    root: &'r Path,
    /// Set owners from the tar headers (only possible as root).
    chown: bool,
    /// Directory modes, applied at the end: a read-only directory must not
    /// stop a later member (or layer) from being written into it.
    dir_modes: BTreeMap<PathBuf, u32>,
    stats: ApplyStats,
}

impl<'r> Applier<'r> {
    /// `root` must exist; owners are applied when it is owned by root
    /// (i.e. we created it as root).
    pub fn new(root: &'r Path) -> Result<Self, LayerError> {
        let meta = fs::metadata(root).map_err(|source| LayerError::Io {
            layer: String::new(),
            path: root.to_path_buf(),
            source,
        })?;
        Ok(Applier {
            root,
            chown: meta.uid() == 0,
            dir_modes: BTreeMap::new(),
            stats: ApplyStats::default(),
        })
    }

    /// Apply one layer held in memory (unit tests and fuzzing): decompress,
    /// whiteouts, entries.
    pub fn apply_bytes(&mut self, bytes: &[u8], layer: &str) -> Result<(), LayerError> {
        let whiteouts = scan_whiteouts(decompress(bytes, layer)?, layer)?;
        self.apply_whiteouts(&whiteouts, layer)?;
        self.extract(decompress(bytes, layer)?, layer)
    }

    /// Delete what the layer's whiteouts hide: opaque directories first, then single names.
    pub fn apply_whiteouts(
        &mut self,
        whiteouts: &Whiteouts,
        layer: &str,
    ) -> Result<(), LayerError> {
        for dir in &whiteouts.opaque {
            let real = self.resolve(dir, true, layer)?;
            let path = self.root.join(&real);
            let Ok(children) = fs::read_dir(&path) else {
                continue;
            };
            for child in children {
                let child = child.map_err(io_err(layer, &path))?;
                remove_any(&child.path()).map_err(io_err(layer, &child.path()))?;
            }
            self.stats.whiteouts += 1;
        }
        for hidden in &whiteouts.removed {
            let real = self.resolve(hidden, false, layer)?;
            let path = self.root.join(&real);
            if fs::symlink_metadata(&path).is_ok() {
                remove_any(&path).map_err(io_err(layer, &path))?;
            }
            self.stats.whiteouts += 1;
        }
        Ok(())
    }

    /// Second read of a layer: create its members (whiteout markers skipped).
    pub fn extract<R: Read>(&mut self, tar: R, layer: &str) -> Result<(), LayerError> {
        let mut archive = Archive::new(tar);
        for entry in archive.entries().map_err(|e| corrupt(layer, e))? {
            let mut entry = entry.map_err(|e| corrupt(layer, e))?;
            let kind = entry.header().entry_type();
            if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
                continue;
            }
            let raw = entry.path_bytes().into_owned();
            let rel = member_path(&raw, layer)?;
            // "./" itself has no name; whiteout markers were applied by the first read.
            let Some(name) = rel.file_name() else {
                continue;
            };
            if name.as_bytes().starts_with(WHITEOUT_PREFIX.as_bytes()) {
                continue;
            }
            let shown = String::from_utf8_lossy(&raw).into_owned();
            let member = member_kind(kind, &shown, layer)?;
            let parent = self.resolve(rel.parent().unwrap_or(Path::new("")), true, layer)?;
            let real = parent.join(name);
            let path = self.root.join(&real);
            let parent_path = self.root.join(&parent);
            fs::create_dir_all(&parent_path).map_err(io_err(layer, &parent_path))?;
            let header = entry.header();
            let mode = header.mode().map_err(|e| corrupt(layer, e))? & 0o7777;
            let owner = (
                id(header.uid(), &shown, layer)?,
                id(header.gid(), &shown, layer)?,
            );
            match member {
                MemberKind::File => {
                    clear_slot(&path, false).map_err(io_err(layer, &path))?;
                    write_file(&mut entry, &path, mode, layer)?;
                }
                MemberKind::Dir => {
                    clear_slot(&path, true).map_err(io_err(layer, &path))?;
                    if !path.is_dir() {
                        fs::create_dir(&path).map_err(io_err(layer, &path))?;
                    }
                    self.dir_modes.insert(real.clone(), mode);
                }
                MemberKind::Symlink => {
                    let target = link_target(&entry, &shown, layer)?;
                    clear_slot(&path, false).map_err(io_err(layer, &path))?;
                    symlink(OsStr::from_bytes(&target), &path).map_err(io_err(layer, &path))?;
                }
                MemberKind::Hardlink => {
                    let target = link_target(&entry, &shown, layer)?;
                    let target_rel =
                        safe_relative_path(&target).map_err(|reason| LayerError::Unsafe {
                            layer: layer.to_string(),
                            entry: shown.clone(),
                            reason: format!("hard link target: {reason}"),
                        })?;
                    let source = self.root.join(self.resolve(&target_rel, false, layer)?);
                    let is_file =
                        fs::symlink_metadata(&source).is_ok_and(|m| m.file_type().is_file());
                    if !is_file {
                        return Err(unsafe_entry(
                            layer,
                            &shown,
                            format!(
                                "hard link target `{}` is not a regular file in the rootfs",
                                target_rel.display()
                            ),
                        ));
                    }
                    if source == path {
                        continue; // a link to itself: nothing to do
                    }
                    clear_slot(&path, false).map_err(io_err(layer, &path))?;
                    fs::hard_link(&source, &path).map_err(io_err(layer, &path))?;
                }
            }
            if self.chown && member != MemberKind::Hardlink {
                lchown(&path, Some(owner.0), Some(owner.1)).map_err(io_err(layer, &path))?;
            }
            self.stats.entries += 1;
        }
        Ok(())
    }

    /// Give directories their modes (after the last layer) and report.
    pub fn finish(self) -> Result<ApplyStats, LayerError> {
        for (rel, mode) in &self.dir_modes {
            let path = self.root.join(rel);
            if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                fs::set_permissions(&path, fs::Permissions::from_mode(*mode))
                    .map_err(io_err("", &path))?;
            }
        }
        Ok(self.stats)
    }

    fn resolve(&self, rel: &Path, follow_last: bool, layer: &str) -> Result<PathBuf, LayerError> {
        rootfs_path::resolve(self.root, rel, follow_last).map_err(|source| LayerError::Path {
            layer: layer.to_string(),
            entry: rel.display().to_string(),
            source,
        })
    }
}

/// What a layer member may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MemberKind {
    File,
    Dir,
    Symlink,
    Hardlink,
}

/// Only files, directories and links are unpacked: a device node in a
/// rootfs would hand the container whatever device it names.
fn member_kind(kind: EntryType, shown: &str, layer: &str) -> Result<MemberKind, LayerError> {
    match kind {
        EntryType::Regular | EntryType::Continuous => Ok(MemberKind::File),
        EntryType::Directory => Ok(MemberKind::Dir),
        EntryType::Symlink => Ok(MemberKind::Symlink),
        EntryType::Link => Ok(MemberKind::Hardlink),
        EntryType::Char | EntryType::Block => Err(unsafe_entry(layer, shown, "device node")),
        EntryType::Fifo => Err(unsafe_entry(
            layer,
            shown,
            "FIFO (special files are not unpacked)",
        )),
        other => Err(unsafe_entry(
            layer,
            shown,
            format!("unsupported entry type {other:?}"),
        )),
    }
}

/// A uid or gid from a header, which must fit Linux's 32 bits.
fn id(value: io::Result<u64>, shown: &str, layer: &str) -> Result<u32, LayerError> {
    let value = value.map_err(|e| corrupt(layer, e))?;
    u32::try_from(value)
        .map_err(|_| unsafe_entry(layer, shown, format!("owner id {value} out of range")))
}

/// A member name as a relative path, refused as `pull` refuses it.
fn member_path(raw: &[u8], layer: &str) -> Result<PathBuf, LayerError> {
    safe_relative_path(raw)
        .map_err(|reason| unsafe_entry(layer, &String::from_utf8_lossy(raw), reason))
}

/// Make room at `path`: a non-directory is removed; a directory is removed
/// unless the new member is a directory too (which then merges into it).
fn clear_slot(path: &Path, for_dir: bool) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() && for_dir => Ok(()),
        Ok(_) => remove_any(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Remove a file, a symlink (never its target) or a whole directory.
fn remove_any(path: &Path) -> io::Result<()> {
    if fs::symlink_metadata(path)?.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
}

fn write_file<R: Read>(
    entry: &mut Entry<'_, R>,
    path: &Path,
    mode: u32,
    layer: &str,
) -> Result<(), LayerError> {
    let expected = entry.size();
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_err(layer, path))?;
    let written = io::copy(entry, &mut file).map_err(io_err(layer, path))?;
    if written != expected {
        return Err(LayerError::Corrupt {
            layer: layer.to_string(),
            message: format!("`{}` has {written} of {expected} bytes", path.display()),
        });
    }
    // The layer's mtime, so e.g. Python's mtime-checked .pyc files stay valid.
    let mtime = entry.header().mtime().unwrap_or(0);
    file.set_modified(UNIX_EPOCH + Duration::from_secs(mtime))
        .map_err(io_err(layer, path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_err(layer, path))
}

fn link_target<R: Read>(
    entry: &Entry<'_, R>,
    shown: &str,
    layer: &str,
) -> Result<Vec<u8>, LayerError> {
    match entry.link_name_bytes() {
        Some(t) if !t.is_empty() => Ok(t.into_owned()),
        _ => Err(unsafe_entry(layer, shown, "link without a target")),
    }
}

fn unsafe_entry(layer: &str, entry: &str, reason: impl Into<String>) -> LayerError {
    LayerError::Unsafe {
        layer: layer.to_string(),
        entry: entry.to_string(),
        reason: reason.into(),
    }
}

fn corrupt(layer: &str, err: io::Error) -> LayerError {
    LayerError::Corrupt {
        layer: layer.to_string(),
        message: err.to_string(),
    }
}

fn io_err<'a>(layer: &'a str, path: &'a Path) -> impl FnOnce(io::Error) -> LayerError + 'a {
    move |source| LayerError::Io {
        layer: layer.to_string(),
        path: path.to_path_buf(),
        source,
    }
}
