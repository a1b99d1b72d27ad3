//! One cache entry: look it up, lock its key, stage and publish it. Every
//! cached stage (sources, patched trees, configs, builds, wrapped
//! containers) goes through [`get_or_create`], so they share one set of
//! rules:
//!
//! * an entry exists once its record file does (written last, atomically);
//! * creating an entry holds an exclusive lock on its key
//!   (`locks/<stage>/<name>.lock`, `flock`): a second process asking for the
//!   same key waits, then finds the first one's entry and reuses it; other
//!   keys go ahead in parallel. The kernel drops the lock of a dead process;
//! * whoever takes the lock first removes staging directories that a dead
//!   process left for that key (`.staging-<name>#*`): with the lock held,
//!   nobody else can be filling them.

use crate::layout::{Layout, Stage};
use crate::io::PathError;
use crate::publish::Staging;
use serde::de::DeserializeOwned;
use std::fs::{self, File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

/// Errors of looking up, locking or cleaning an entry.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// An I/O operation failed on a path.
    #[error(transparent)]
    Io(#[from] PathError),
    /// A record exists but cannot be read as one.
    #[error("cache record {path} is damaged ({message}); remove that entry directory to rebuild it")]
    Corrupt {
        /// The record.
        path: PathBuf,
        /// The parser's complaint.
        message: String,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> EntryError + 'a {
    move |source| crate::io::at(op, path)(source).into()
}

/// How an entry was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It was in the cache.
    Hit,
    /// Another process was creating it; we waited and reused its result.
    Waited,
    /// We created it.
    Built,
}

impl Outcome {
    /// Whether the work was done by someone else (a hit for the user).
    pub fn is_hit(self) -> bool {
        !matches!(self, Outcome::Built)
    }
}

/// One entry of one stage.
#[derive(Debug, Clone)]
pub struct Entry {
    layout: Layout,
    stage: Stage,
    name: String,
}

/// An exclusive lock on one entry's key; released on drop (or by the kernel
/// when the process dies).
#[derive(Debug)]
pub struct EntryLock {
    _file: File,
    path: PathBuf,
}

impl EntryLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Entry {
    /// The entry `name` of `stage` under `layout`.
    pub fn new(layout: &Layout, stage: Stage, name: impl Into<String>) -> Self {
        Self { layout: layout.clone(), stage, name: name.into() }
    }

    /// The entry's directory (present only once published).
    pub fn dir(&self) -> PathBuf {
        self.layout.entry_dir(self.stage, &self.name)
    }

    /// The record file whose presence makes the entry exist.
    pub fn record(&self) -> PathBuf {
        self.dir().join(self.stage.record_name())
    }

    /// The entry's name (its directory's).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The stage it belongs to.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// The record, parsed; None when the entry does not exist.
    pub fn read_record<T: DeserializeOwned>(&self) -> Result<Option<T>, EntryError> {
        let path = self.record();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        serde_json::from_str(&text).map(Some).map_err(|e| EntryError::Corrupt { path, message: e.to_string() })
    }

    fn open_lock_file(&self) -> Result<(PathBuf, File), EntryError> {
        let path = self.layout.lock_file(self.stage, &self.name);
        let parent = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(parent).map_err(io_err("create directory", parent))?;
        let file = File::options().create(true).truncate(false).write(true).open(&path).map_err(io_err("open lock file", &path))?;
        Ok((path, file))
    }

    /// Take the entry's lock, calling `on_wait` first when another process
    /// holds it; then remove what dead processes left staged for this key.
    pub fn lock(&self, on_wait: &dyn Fn(&Path)) -> Result<EntryLock, EntryError> {
        let (path, file) = self.open_lock_file()?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                on_wait(&path);
                file.lock().map_err(io_err("lock", &path))?;
            }
            Err(TryLockError::Error(e)) => return Err(io_err("lock", &path)(e)),
        }
        let lock = EntryLock { _file: file, path };
        self.remove_stale_staging()?;
        Ok(lock)
    }

    /// Take the lock only if nobody holds it (then clean up as [`lock`](Self::lock)
    /// does); None while another process works on this key.
    pub fn try_lock(&self) -> Result<Option<EntryLock>, EntryError> {
        let (path, file) = self.open_lock_file()?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => return Err(io_err("lock", &path)(e)),
        }
        let lock = EntryLock { _file: file, path };
        self.remove_stale_staging()?;
        Ok(Some(lock))
    }

    /// The entry name a staging directory of `stage` was made for, if it is one.
    pub fn for_staging_dir(layout: &Layout, stage: Stage, staging: &Path) -> Option<Entry> {
        let file = staging.file_name()?.to_string_lossy().into_owned();
        let name = file.strip_prefix(".staging-")?.rsplit_once('#')?.0.to_string();
        Some(Entry::new(layout, stage, name))
    }

    /// A staging directory that becomes this entry when published. Taking
    /// the lock first is what makes stale-staging cleanup safe.
    pub fn staging(&self, _lock: &EntryLock) -> Result<Staging, EntryError> {
        Staging::for_entry(&self.dir())
    }

    /// Staging directories of this key: only a dead process can have left
    /// them, since the caller holds the key's lock.
    pub fn stale_staging(&self) -> Result<Vec<PathBuf>, EntryError> {
        let dir = self.layout.stage_dir(self.stage);
        let prefix = Staging::prefix_for(&self.dir());
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("list", &dir)(e)),
        };
        Ok(entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| e.path())
            .collect())
    }

    fn remove_stale_staging(&self) -> Result<(), EntryError> {
        for p in self.stale_staging()? {
            fs::remove_dir_all(&p).map_err(io_err("remove stale staging", &p))?;
        }
        Ok(())
    }
}

/// Return the entry's value, creating it if missing, under its key's lock.
///
/// `load` reads an existing entry (None when absent, or when the caller
/// judges it unusable and wants it rebuilt); `create` fills the staging
/// directory and publishes it. The second of two processes asking for one
/// key waits for the first, then `load`s its result.
pub fn get_or_create<T, E>(
    entry: &Entry,
    on_wait: &dyn Fn(&Path),
    load: impl Fn() -> Result<Option<T>, E>,
    create: impl FnOnce(Staging) -> Result<T, E>,
) -> Result<(T, Outcome), E>
where
    E: From<EntryError>,
{
    if let Some(v) = load()? {
        return Ok((v, Outcome::Hit));
    }
    let waited = std::cell::Cell::new(false);
    let lock = entry.lock(&|p| {
        waited.set(true);
        on_wait(p)
    })?;
    if let Some(v) = load()? {
        return Ok((v, if waited.get() { Outcome::Waited } else { Outcome::Hit }));
    }
    let staging = entry.staging(&lock)?;
    let v = create(staging)?;
    drop(lock);
    Ok((v, Outcome::Built))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum TestError {
        #[error(transparent)]
        Entry(#[from] EntryError),
    }

    fn load(e: &Entry) -> Result<Option<String>, TestError> {
        Ok(e.read_record::<String>()?)
    }

    #[test]
    fn second_request_is_a_hit_and_create_runs_once() {
        let root = tempfile::tempdir().unwrap();
        let layout = Layout::new(root.path());
        let e = Entry::new(&layout, Stage::Configs, "6.1-minimal-abc");
        let mut runs = 0;
        for want in [Outcome::Built, Outcome::Hit] {
            let (v, outcome) = get_or_create(&e, &|_| {}, || load(&e), |s| {
                runs += 1;
                crate::write_json_atomic(&s.path().join(Stage::Configs.record_name()), &"made")?;
                s.publish()?;
                Ok::<_, TestError>("made".to_string())
            })
            .unwrap();
            assert_eq!((v.as_str(), outcome), ("made", want));
        }
        assert_eq!(runs, 1);
    }

    #[test]
    fn stale_staging_of_this_key_is_removed_and_others_kept() {
        let root = tempfile::tempdir().unwrap();
        let layout = Layout::new(root.path());
        let e = Entry::new(&layout, Stage::Builds, "k-1");
        let other = Entry::new(&layout, Stage::Builds, "k-12");
        let stale = Staging::for_entry(&e.dir()).unwrap().keep_for_test();
        let theirs = Staging::for_entry(&other.dir()).unwrap().keep_for_test();
        let _l = e.lock(&|_| {}).unwrap();
        assert!(!stale.exists(), "stale staging of the locked key removed");
        assert!(theirs.exists(), "another key's staging is not ours to remove");
    }

    #[test]
    fn a_held_lock_makes_the_second_locker_wait() {
        let root = tempfile::tempdir().unwrap();
        let layout = Layout::new(root.path());
        let e = Entry::new(&layout, Stage::Builds, "k");
        let first = e.lock(&|_| panic!("nobody holds it yet")).unwrap();
        let e2 = e.clone();
        let waited = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let w = waited.clone();
        let t = std::thread::spawn(move || {
            let _second = e2.lock(&|_| w.store(true, std::sync::atomic::Ordering::SeqCst)).unwrap();
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        drop(first);
        t.join().unwrap();
        assert!(waited.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[test]
    fn a_damaged_record_names_its_path() {
        let root = tempfile::tempdir().unwrap();
        let layout = Layout::new(root.path());
        let e = Entry::new(&layout, Stage::Configs, "x");
        fs::create_dir_all(e.dir()).unwrap();
        fs::write(e.record(), "{not json").unwrap();
        let err = e.read_record::<String>().unwrap_err().to_string();
        assert!(err.contains("configured.json") && err.contains("damaged"), "{err}");
    }
}
