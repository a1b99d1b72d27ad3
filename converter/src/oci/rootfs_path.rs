//! Resolve a path inside a rootfs the way the kernel will once the rootfs is
//! `/`: symlinks are followed, an absolute target restarts at the rootfs
//! root. The host never follows an image's symlink itself; everything that
//! reads or writes inside the rootfs goes through [`resolve`] first.
//!
//! One difference from the kernel: a `..` that would climb above the root is
//! refused (the kernel clamps it). Inside a chroot it would be harmless, but
//! an image whose links try it is hostile or broken, and the caller should
//! say so instead of writing somewhere surprising.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use thiserror::Error;

/// Symlink hops allowed in one resolution (Linux's limit).
const MAX_SYMLINK_HOPS: u32 = 40;

/// Why a path inside the rootfs could not be resolved.
#[derive(Debug, Error)]
pub enum RootPathError {
    /// A `..` (in the path or in a symlink met on the way) climbs above `/`.
    #[error("`{path}` leads out of the rootfs (through `..` above /)")]
    Escapes { path: String },
    /// A symlink loop, or a chain longer than the kernel allows.
    #[error("`{path}`: too many levels of symlinks")]
    TooManyLinks { path: String },
    /// Reading a link or the metadata of a component failed.
    #[error("cannot inspect `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Resolve `path` (absolute or relative, both taken from the rootfs root)
/// inside `root`. The result is relative to `root` and no component of it is
/// a symlink, except the last one when `follow_last` is false. Components
/// that do not exist are kept as they are (a writer creates them).
pub fn resolve(root: &Path, path: &Path, follow_last: bool) -> Result<PathBuf, RootPathError> {
    let shown = path.display().to_string();
    let mut out: Vec<OsString> = Vec::new();
    // Components still to walk, last first; a symlink's target is pushed on top.
    let mut todo: Vec<Part> = parts(path);
    todo.reverse();
    let mut hops = 0u32;
    while let Some(part) = todo.pop() {
        match part {
            Part::Root => out.clear(),
            Part::Up => {
                if out.pop().is_none() {
                    return Err(RootPathError::Escapes { path: shown });
                }
            }
            Part::Name(name) => {
                out.push(name);
                if todo.is_empty() && !follow_last {
                    break;
                }
                let here = root.join(out.iter().collect::<PathBuf>());
                let meta = match fs::symlink_metadata(&here) {
                    Ok(m) => m,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) if e.raw_os_error() == Some(20) => continue, // ENOTDIR: the writer will say
                    Err(source) => return Err(RootPathError::Io { path: here, source }),
                };
                if !meta.file_type().is_symlink() {
                    continue;
                }
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(RootPathError::TooManyLinks { path: shown });
                }
                let target = fs::read_link(&here).map_err(|source| RootPathError::Io {
                    path: here.clone(),
                    source,
                })?;
                out.pop();
                let mut spliced = parts(&target);
                spliced.reverse();
                todo.extend(spliced);
            }
        }
    }
    Ok(out.iter().collect())
}

/// One step of a path walk.
enum Part {
    Root,
    Up,
    Name(OsString),
}

fn parts(path: &Path) -> Vec<Part> {
    path.components()
        .filter_map(|c| match c {
            Component::RootDir | Component::Prefix(_) => Some(Part::Root),
            Component::CurDir => None,
            Component::ParentDir => Some(Part::Up),
            Component::Normal(n) => Some(Part::Name(n.to_os_string())),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn absolute_links_restart_at_the_rootfs_root() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("usr/bin")).unwrap();
        symlink("/usr/bin", t.path().join("bin")).unwrap();
        symlink("../usr/bin/busybox", t.path().join("usr/sh")).unwrap();
        assert_eq!(
            resolve(t.path(), Path::new("/bin/ls"), true).unwrap(),
            PathBuf::from("usr/bin/ls")
        );
        assert_eq!(
            resolve(t.path(), Path::new("usr/sh"), true).unwrap(),
            PathBuf::from("usr/bin/busybox")
        );
        assert_eq!(
            resolve(t.path(), Path::new("usr/sh"), false).unwrap(),
            PathBuf::from("usr/sh")
        );
    }

    #[test]
    fn dotdot_above_root_and_loops_are_refused() {
        let t = tempfile::tempdir().unwrap();
        symlink("../../etc", t.path().join("up")).unwrap();
        symlink("loop2", t.path().join("loop1")).unwrap();
        symlink("loop1", t.path().join("loop2")).unwrap();
        assert!(matches!(
            resolve(t.path(), Path::new("up/passwd"), true),
            Err(RootPathError::Escapes { .. })
        ));
        assert!(matches!(
            resolve(t.path(), Path::new("loop1/x"), true),
            Err(RootPathError::TooManyLinks { .. })
        ));
    }
}
