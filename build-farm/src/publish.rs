//! Atomic publication of files and directories.
//!
//! Everything a stage produces is first written under a staging directory
//! created *in the same parent* as its destination (rename is only atomic
//! within one filesystem), then renamed into place. A [`Staging`] that is
//! dropped without being published removes itself, so an error or a panic
//! leaves nothing half-written behind.

use serde::Serialize;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Errors while staging or publishing an artifact (the same type as the
/// entry errors: stages wrap one `Cache` variant for both).
pub type PublishError = crate::entry::EntryError;

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> PublishError + 'a {
    move |source| crate::io::at(op, path)(source).into()
}

/// A staging directory that becomes `dest` on [`publish`](Staging::publish)
/// and disappears if dropped unpublished.
#[derive(Debug)]
pub struct Staging {
    dir: Option<tempfile::TempDir>,
    dest: PathBuf,
}

impl Staging {
    /// Create a staging directory beside `dest` (which must not exist yet).
    pub fn new(dest: &Path) -> Result<Self, PublishError> {
        Self::for_entry(dest)
    }

    /// A staging directory beside `dest`, named after it
    /// (`.staging-<name>#XXXXXX`) so that whoever holds `dest`'s lock can
    /// recognise what a dead process left for the same key.
    pub fn for_entry(dest: &Path) -> Result<Self, PublishError> {
        let parent = dest.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(parent).map_err(io("create directory", parent))?;
        let dir = tempfile::Builder::new()
            .prefix(&Self::prefix_for(dest))
            .tempdir_in(parent)
            .map_err(io("create staging directory in", parent))?;
        Ok(Self { dir: Some(dir), dest: dest.to_path_buf() })
    }

    /// The file-name prefix of `dest`'s staging directories. `#` never
    /// occurs in entry names, so one key's prefix is never another's.
    pub fn prefix_for(dest: &Path) -> String {
        format!(".staging-{}#", dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
    }

    /// Leave the staging directory behind as a dead process would (tests).
    #[cfg(test)]
    pub(crate) fn keep_for_test(mut self) -> PathBuf {
        self.dir.take().expect("staging present").keep()
    }

    /// Where to write the artifact's files.
    pub fn path(&self) -> &Path {
        self.dir.as_ref().map(|d| d.path()).unwrap_or(&self.dest)
    }

    /// Where the artifact will live once published.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Rename the staging directory to its destination. If another process
    /// published the same content-addressed entry first, theirs is kept and
    /// ours discarded: both are the same inputs, so either is right.
    pub fn publish(mut self) -> Result<PathBuf, PublishError> {
        let dir = self.dir.take().expect("staging directory present until published");
        let staged = dir.keep();
        publish_dir(&staged, &self.dest)?;
        Ok(self.dest.clone())
    }
}

impl Staging {
    /// Rename the staging directory to `dest`, which must not exist or be
    /// an empty directory: for a user's output directory, where files
    /// already there are someone else's and must be neither kept in place
    /// of ours (as [`publish`](Staging::publish) does) nor mixed with them.
    /// On failure the staging directory is removed.
    pub fn publish_new(mut self) -> Result<PathBuf, PublishError> {
        let dir = self.dir.take().expect("staging directory present until published");
        // rename(2) replaces an empty directory and refuses a non-empty one.
        fs::rename(dir.path(), &self.dest).map_err(io("rename staging directory to", &self.dest))?;
        let _ = dir.keep();
        Ok(self.dest.clone())
    }
}

/// Rename `staged` to `dest`; if `dest` already exists, remove `staged`.
pub fn publish_dir(staged: &Path, dest: &Path) -> Result<(), PublishError> {
    match fs::rename(staged, dest) {
        Ok(()) => Ok(()),
        Err(_) if dest.is_dir() => {
            fs::remove_dir_all(staged).map_err(io("remove superseded staging", staged))
        }
        Err(e) => {
            let _ = fs::remove_dir_all(staged);
            Err(io("rename staging directory to", dest)(e))
        }
    }
}

/// Write `bytes` to `path` through a temporary file in the same directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PublishError> {
    write_atomic_with_mode(path, bytes, DEFAULT_FILE_MODE)
}

/// Mode of files written by [`write_atomic`]: what every other artifact of
/// a cache entry has (a temporary file would otherwise keep its 0600).
pub const DEFAULT_FILE_MODE: u32 = 0o644;

/// [`write_atomic`] with the file's permission bits: the mode is set on the
/// temporary file before the rename, so the file never appears with another.
pub fn write_atomic_with_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PublishError> {
    use std::os::unix::fs::PermissionsExt;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(parent).map_err(io("create directory", parent))?;
    let mut tmp = tempfile::NamedTempFile::new_in(parent).map_err(io("create temporary file in", parent))?;
    tmp.write_all(bytes).map_err(io("write", path))?;
    tmp.as_file().set_permissions(fs::Permissions::from_mode(mode)).map_err(io("set the mode of", path))?;
    tmp.persist(path).map_err(|e| io("rename into", path)(e.error))?;
    Ok(())
}

/// Serialize `value` as pretty JSON and write it atomically.
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<(), PublishError> {
    let mut text = serde_json::to_vec_pretty(value)
        .map_err(|e| io("serialize", path)(e.into()))?;
    text.push(b'\n');
    write_atomic(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_staging_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("entry");
        {
            let s = Staging::new(&dest).unwrap();
            fs::write(s.path().join("half"), b"x").unwrap();
        }
        assert!(!dest.exists());
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
    }

    #[test]
    fn published_staging_becomes_dest_and_second_publisher_yields() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("entry");
        let a = Staging::new(&dest).unwrap();
        fs::write(a.path().join("f"), b"first").unwrap();
        let b = Staging::new(&dest).unwrap();
        fs::write(b.path().join("f"), b"second").unwrap();
        a.publish().unwrap();
        b.publish().unwrap();
        assert_eq!(fs::read(dest.join("f")).unwrap(), b"first");
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 1);
    }

    #[test]
    fn publish_new_replaces_an_empty_dir_and_refuses_a_full_one() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("out");
        fs::create_dir(&dest).unwrap();
        let a = Staging::new(&dest).unwrap();
        fs::write(a.path().join("f"), b"ours").unwrap();
        a.publish_new().unwrap();
        assert_eq!(fs::read(dest.join("f")).unwrap(), b"ours");
        let b = Staging::new(&dest).unwrap();
        fs::write(b.path().join("g"), b"late").unwrap();
        let err = b.publish_new().expect_err("dest is not empty");
        assert!(err.to_string().contains(&dest.display().to_string()), "{err}");
        // Theirs untouched, ours gone: nothing mixed, nothing left over.
        assert_eq!(fs::read_dir(&dest).unwrap().count(), 1);
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 1);
    }

    #[test]
    fn atomic_files_get_the_artifact_mode_or_the_one_asked_for() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let p = root.path().join("manifest.json");
        write_json_atomic(&p, &serde_json::json!({})).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o7777, 0o644);
        let x = root.path().join("prog");
        write_atomic_with_mode(&x, b"\x7fELF", 0o750).unwrap();
        assert_eq!(fs::metadata(&x).unwrap().permissions().mode() & 0o7777, 0o750);
    }

    #[test]
    fn write_atomic_replaces_whole_file() {
        let root = tempfile::tempdir().unwrap();
        let p = root.path().join("m.json");
        write_json_atomic(&p, &serde_json::json!({"a": 1})).unwrap();
        write_json_atomic(&p, &serde_json::json!({"a": 2})).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
        assert_eq!(v["a"], 2);
    }
}
