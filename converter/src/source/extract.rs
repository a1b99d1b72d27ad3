//! Extraction of untrusted tar streams.
//!
//! Kernel tarballs come from mirrors, USB sticks and `git archive`; the cache
//! they land in is later built in by root-run tooling. So extraction never
//! trusts the archive: every entry must stay inside the destination, no entry
//! is ever written *through* a symlink, and symlinks that would point out of
//! the tree are refused rather than created. The `tar` crate's own `unpack`
//! is deliberately not used: we want the refusal reasons (with entry names)
//! and the stricter symlink rules spelled out here.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use tar::{Archive, Entry, EntryType};
use thiserror::Error;

/// How much an extraction wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtractStats {
    /// Archive members processed (files, directories, links).
    pub entries: u64,
    /// Bytes of file content written.
    pub bytes: u64,
}

/// Why an archive could not be extracted.
#[derive(Debug, Error)]
pub enum ExtractError {
    /// The archive asked for something that could escape or subvert the
    /// destination; `entry` is the member name exactly as stored.
    #[error("refusing archive entry `{entry}`: {reason}")]
    Unsafe { entry: String, reason: String },
    /// The stream is damaged or cut short (decompressor or tar parser error).
    #[error("archive is corrupt or truncated: {message}")]
    Corrupt { message: String },
    /// Writing the destination failed (disk full, permissions, ...).
    #[error("cannot write `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// How often (in entries) progress is reported.
const PROGRESS_EVERY: u64 = 2000;
/// Symlink hops allowed while checking where a link really points.
const MAX_SYMLINK_HOPS: u32 = 40;

/// Extract a tar stream (already decompressed) into `dest`, which should be a
/// fresh, empty directory: the symlink bookkeeping only knows links this call
/// created. On error `dest` may hold a partial tree; callers extract into a
/// scratch directory and discard it.
pub fn extract_tar_safely<R: Read>(reader: R, dest: &Path) -> Result<ExtractStats, ExtractError> {
    extract_tar_safely_with_progress(reader, dest, &|_| {})
}

/// [`extract_tar_safely`] that also reports running totals every
/// [`PROGRESS_EVERY`] entries, so a minute-long kernel unpack is not silent.
pub fn extract_tar_safely_with_progress<R: Read>(
    reader: R,
    dest: &Path,
    progress: &dyn Fn(ExtractStats),
) -> Result<ExtractStats, ExtractError> {
    let mut archive = Archive::new(EofTracker::new(reader));
    let mut unpacker = Unpacker::new(dest);
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        unpacker.unpack(&mut entry)?;
        if unpacker.stats.entries.is_multiple_of(PROGRESS_EVERY) {
            progress(unpacker.stats);
        }
    }
    // The tar parser treats EOF as a clean end; a real archive ends with a
    // zero block first, so reaching EOF means the stream was cut short.
    if archive.into_inner().hit_eof {
        return Err(ExtractError::Corrupt {
            message: "stream ended before the end-of-archive marker".into(),
        });
    }
    unpacker.check_symlinks_physically()?;
    progress(unpacker.stats);
    Ok(unpacker.stats)
}

fn corrupt(err: io::Error) -> ExtractError {
    ExtractError::Corrupt {
        message: err.to_string(),
    }
}

fn refuse(entry: &str, reason: impl Into<String>) -> ExtractError {
    ExtractError::Unsafe {
        entry: entry.to_string(),
        reason: reason.into(),
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ExtractError + '_ {
    move |source| ExtractError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Remembers whether the underlying reader ever reported end of stream.
struct EofTracker<R> {
    inner: R,
    hit_eof: bool,
}

impl<R> EofTracker<R> {
    fn new(inner: R) -> Self {
        EofTracker {
            inner,
            hit_eof: false,
        }
    }
}

impl<R: Read> Read for EofTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.hit_eof = true;
        }
        Ok(n)
    }
}

/// Per-extraction state: where we write, and which paths we made symlinks.
struct Unpacker<'d> {
    dest: &'d Path,
    /// Relative paths of symlinks created so far; no later entry may pass
    /// through one (that is how `dir_link -> /tmp` + `dir_link/x` attacks work).
    symlinks: HashSet<PathBuf>,
    stats: ExtractStats,
}

impl<'d> Unpacker<'d> {
    fn new(dest: &'d Path) -> Self {
        Unpacker {
            dest,
            symlinks: HashSet::new(),
            stats: ExtractStats::default(),
        }
    }

    fn unpack<R: Read>(&mut self, entry: &mut Entry<'_, R>) -> Result<(), ExtractError> {
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            return Ok(()); // metadata only (e.g. git archive's commit id)
        }
        let rel = safe_relative_path(&raw).map_err(|reason| refuse(&name, reason))?;
        self.stats.entries += 1;
        if rel.as_os_str().is_empty() {
            return Ok(()); // "./" itself
        }
        self.refuse_symlink_ancestors(&rel, &name)?;
        match kind {
            EntryType::Regular | EntryType::Continuous => self.write_file(entry, &rel, &name),
            EntryType::Directory => self.make_dir(&rel, &name),
            EntryType::Symlink => self.make_symlink(entry, &rel, &name),
            EntryType::Link => self.copy_hardlink(entry, &rel, &name),
            other => Err(refuse(&name, format!("unsupported entry type {other:?}"))),
        }
    }

    /// Refuse `rel` if any of its parent directories is a symlink we created.
    fn refuse_symlink_ancestors(&self, rel: &Path, name: &str) -> Result<(), ExtractError> {
        match rel.ancestors().skip(1).find(|a| self.symlinks.contains(*a)) {
            Some(link) => Err(refuse(
                name,
                format!("path passes through symlink `{}`", link.display()),
            )),
            None => Ok(()),
        }
    }

    /// Make room for a non-directory at `rel`: create parents, and remove an
    /// earlier non-directory of the same name (later tar members win, and a
    /// leftover symlink must never be written through).
    fn prepare_slot(&mut self, rel: &Path, name: &str) -> Result<PathBuf, ExtractError> {
        let path = self.dest.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {
                return Err(refuse(name, "would replace a directory"));
            }
            Ok(_) => {
                fs::remove_file(&path).map_err(io_err(&path))?;
                self.symlinks.remove(rel);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
        Ok(path)
    }

    fn write_file<R: Read>(
        &mut self,
        entry: &mut Entry<'_, R>,
        rel: &Path,
        name: &str,
    ) -> Result<(), ExtractError> {
        let mode = entry.header().mode().map_err(corrupt)?;
        let mtime = entry.header().mtime().map_err(corrupt)?;
        let expected = entry.size();
        let path = self.prepare_slot(rel, name)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let written = copy_entry_data(entry, &mut file, &path)?;
        if written != expected {
            return Err(ExtractError::Corrupt {
                message: format!("entry `{name}` has {written} of {expected} bytes"),
            });
        }
        let perms = fs::Permissions::from_mode(normalized_mode(mode));
        fs::set_permissions(&path, perms).map_err(io_err(&path))?;
        // The member's time is the input's own date (release, commit): the
        // build stage dates the kernel from it, so keep it, not "now".
        let modified = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
        file.set_modified(modified).map_err(io_err(&path))?;
        self.stats.bytes += written;
        Ok(())
    }

    fn make_dir(&mut self, rel: &Path, name: &str) -> Result<(), ExtractError> {
        let path = self.dest.join(rel);
        match fs::symlink_metadata(&path) {
            Ok(meta) if !meta.is_dir() => {
                Err(refuse(name, "directory would replace a non-directory"))
            }
            Ok(_) => Ok(()),
            Err(_) => fs::create_dir_all(&path).map_err(io_err(&path)),
        }
    }

    fn make_symlink<R: Read>(
        &mut self,
        entry: &mut Entry<'_, R>,
        rel: &Path,
        name: &str,
    ) -> Result<(), ExtractError> {
        let target = link_target(entry, name)?;
        check_symlink_lexically(rel, &target).map_err(|reason| refuse(name, reason))?;
        let path = self.prepare_slot(rel, name)?;
        symlink(OsStr::from_bytes(&target), &path).map_err(io_err(&path))?;
        self.symlinks.insert(rel.to_path_buf());
        Ok(())
    }

    /// Hard links become independent copies: a later in-place edit of one
    /// file (patching) must not silently change another.
    fn copy_hardlink<R: Read>(
        &mut self,
        entry: &mut Entry<'_, R>,
        rel: &Path,
        name: &str,
    ) -> Result<(), ExtractError> {
        let raw_target = link_target(entry, name)?;
        let target_rel = safe_relative_path(&raw_target)
            .map_err(|reason| refuse(name, format!("hard link target: {reason}")))?;
        self.refuse_symlink_ancestors(&target_rel, name)?;
        let source = self.dest.join(&target_rel);
        let is_file = fs::symlink_metadata(&source).is_ok_and(|m| m.file_type().is_file());
        if !is_file {
            return Err(refuse(
                name,
                format!(
                    "hard link target `{}` is not a regular file extracted earlier",
                    target_rel.display()
                ),
            ));
        }
        let path = self.prepare_slot(rel, name)?;
        self.stats.bytes += fs::copy(&source, &path).map_err(io_err(&path))?;
        Ok(())
    }

    /// Lexical checks cannot see chains such as `a/b -> ..` plus
    /// `a/c -> b/..`, each harmless on paper but escaping together. Once all
    /// members exist, resolve every link the way the kernel would (following
    /// in-tree links) and refuse any that climbs above the root.
    fn check_symlinks_physically(&self) -> Result<(), ExtractError> {
        let mut links: Vec<&PathBuf> = self.symlinks.iter().collect();
        links.sort();
        for rel in links {
            check_symlink_physically(self.dest, rel)
                .map_err(|reason| refuse(&rel.to_string_lossy(), reason))?;
        }
        Ok(())
    }
}

fn link_target<R: Read>(entry: &Entry<'_, R>, name: &str) -> Result<Vec<u8>, ExtractError> {
    match entry.link_name_bytes() {
        Some(target) if !target.is_empty() => Ok(target.into_owned()),
        _ => Err(refuse(name, "link without a target")),
    }
}

/// Stream entry data to `file`, telling read failures (a damaged archive)
/// apart from write failures (our disk).
fn copy_entry_data(
    from: &mut impl Read,
    file: &mut File,
    path: &Path,
) -> Result<u64, ExtractError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(corrupt(e)),
        };
        file.write_all(&buf[..n]).map_err(io_err(path))?;
        total += n as u64;
    }
}

/// Only the executable bit carries meaning for a source tree (Kbuild runs
/// `scripts/*` directly); normalising the rest keeps the cache independent
/// of the archiver's umask and strips setuid/sticky bits.
fn normalized_mode(mode: u32) -> u32 {
    if mode & 0o111 != 0 {
        0o755
    } else {
        0o644
    }
}

/// Turn an archive member name into a relative path without `.` parts,
/// refusing absolute names and any `..`.
pub(crate) fn safe_relative_path(raw: &[u8]) -> Result<PathBuf, String> {
    if raw.first() == Some(&b'/') {
        return Err("absolute path".into());
    }
    if raw.contains(&0) {
        return Err("NUL byte in path".into());
    }
    let mut rel = PathBuf::new();
    for part in raw.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err("path contains `..`".into()),
            _ => rel.push(OsStr::from_bytes(part)),
        }
    }
    Ok(rel)
}

/// A symlink at `link` (relative to the root) pointing at `target` must not
/// be absolute and, read lexically from the link's directory, must not climb
/// above the root.
pub(crate) fn check_symlink_lexically(link: &Path, target: &[u8]) -> Result<(), String> {
    if target.first() == Some(&b'/') {
        return Err(format!(
            "symlink target `{}` is absolute",
            String::from_utf8_lossy(target)
        ));
    }
    let mut depth = link.components().count().saturating_sub(1);
    for part in target.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." if depth == 0 => {
                return Err(format!(
                    "symlink target `{}` escapes the tree",
                    String::from_utf8_lossy(target)
                ))
            }
            b".." => depth -= 1,
            _ => depth += 1,
        }
    }
    Ok(())
}

/// Resolve the symlink at `root/link` component by component, following
/// links found inside `root`, and fail if resolution leaves `root` or
/// exceeds [`MAX_SYMLINK_HOPS`]. Dangling targets are fine: they cannot lead
/// anywhere.
pub(crate) fn check_symlink_physically(root: &Path, link: &Path) -> Result<(), String> {
    let mut hops = MAX_SYMLINK_HOPS;
    let mut at: Vec<OsString> = link.iter().map(OsStr::to_os_string).collect();
    at.pop();
    let target = fs::read_link(root.join(link)).map_err(|e| e.to_string())?;
    resolve_within(root, at, &target, &mut hops).map(|_| ())
}

fn resolve_within(
    root: &Path,
    mut at: Vec<OsString>,
    target: &Path,
    hops: &mut u32,
) -> Result<Vec<OsString>, String> {
    for component in target.components() {
        match component {
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "symlink chain reaches absolute `{}`",
                    target.display()
                ))
            }
            Component::ParentDir => {
                if at.pop().is_none() {
                    return Err(format!(
                        "symlink chain escapes the tree via `{}`",
                        target.display()
                    ));
                }
            }
            Component::Normal(part) => {
                at.push(part.to_os_string());
                let here: PathBuf = root.join(at.iter().collect::<PathBuf>());
                if let Ok(next) = fs::read_link(&here) {
                    *hops = hops.checked_sub(1).ok_or("too many levels of symlinks")?;
                    at.pop();
                    at = resolve_within(root, at, &next, hops)?;
                }
            }
        }
    }
    Ok(at)
}
