//! The pipeline, one stage per module, each handing a typed value to the next:
//!
//! 1. [`pull`]: a source spec -> [`crate::source::KernelTree`] (an unpacked,
//!    read-only tree in the content-addressed cache).
//! 2. [`patch`] (libos mode): tree + patch set -> [`patch::PatchedTree`].
//! 3. [`configure`]: stock tree or patched tree + resolved profile ->
//!    [`configure::ConfiguredTree`] (a verified `.config`; every requested
//!    option proven to survive `olddefconfig`).
//! 4. [`build`]: configured tree -> [`build::BuiltImage`] (bzImage, vmlinux,
//!    System.map, .config and `manifest.json`, published atomically under a
//!    directory named by the hash of every input).
//! 5. [`boot`]: image -> [`boot::BootReport`] (what the guest printed,
//!    parsed; pass or fail, and why, as [`boot::BootFailure`]s).
//!
//! [`image::ensure`] chains 1-4 for an [`image::ImageSpec`] ("which image"):
//! every command that needs an image (build, config, bench, and the commands
//! built on them) turns its flags into that spec and calls it.
//! [`bench`] is not a stage: it boots a stock and a libos image in four
//! configurations and tabulates what the guest measured.
//!
//! Each cached stage's result is a [`build_farm::Entry`] keyed by a
//! [`build_farm::Fingerprint`] of its inputs (the key of the stage before it
//! among them), created under that key's lock; a stage whose entry exists
//! does nothing. Stages never print: they send [`Event`]s to the caller.

pub mod bench;
pub mod boot;
pub mod build;
pub mod configure;
pub mod image;
pub mod container_run;
pub mod make;
pub mod package;
pub mod patch;
pub mod pull;
pub mod wrap;

use build_farm::{Fingerprint, Layout, Stage};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The xc-convert version: part of every fingerprint, since a new version
/// may produce different results from the same inputs.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A fingerprint that starts with the tool's version.
pub fn fingerprint() -> Fingerprint {
    Fingerprint::new().with("xc_convert", TOOL_VERSION)
}

/// What a stage tells its caller while it works. Only the caller decides
/// what reaches a terminal (so several cells of a matrix can run at once).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Something a user wants to know is happening (a build starts, a package is installed).
    Status(String),
    /// Detail shown with `-v`.
    Detail(String),
    /// A long step starts; `len` is the expected number of units when known.
    ProgressStart {
        /// What is being done ("compiling", "unpacking").
        what: String,
        /// Expected units.
        len: Option<u64>,
    },
    /// A long step advanced.
    Progress {
        /// Units done.
        pos: u64,
        /// The current unit.
        message: String,
    },
    /// The long step ended.
    ProgressEnd,
    /// Another process is creating the same entry: we wait for it.
    Waiting {
        /// The stage.
        stage: Stage,
        /// The entry.
        entry: String,
        /// The lock file held.
        lock: PathBuf,
    },
    /// A stage rebuilds an entry that had an earlier version with other inputs.
    Rebuilding {
        /// The stage.
        stage: Stage,
        /// The changed inputs (cargo's dirty reasons).
        reasons: Vec<String>,
    },
    /// A line from a guest's serial console.
    Console(String),
}

/// Receives a run's [`Event`]s.
pub trait Reporter: Send + Sync {
    /// One event.
    fn event(&self, event: Event);
}

/// A reporter that drops everything (library callers and tests).
#[derive(Debug, Default)]
pub struct Silent;

impl Reporter for Silent {
    fn event(&self, _: Event) {}
}

/// What every stage needs to know about the run.
#[derive(Clone)]
pub struct Context {
    /// The cache's layout (`--cache`, else `$XDG_CACHE_HOME/xc-convert`).
    pub layout: Layout,
    /// Where events go.
    pub reporter: Arc<dyn Reporter>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("layout", &self.layout).finish_non_exhaustive()
    }
}

impl Context {
    /// A context for the cache at `root`.
    pub fn new(root: impl Into<PathBuf>, reporter: Arc<dyn Reporter>) -> Self {
        Self { layout: Layout::new(root), reporter }
    }

    /// The cache root.
    pub fn cache(&self) -> &Path {
        self.layout.root()
    }

    /// Send an event.
    pub fn emit(&self, event: Event) {
        self.reporter.event(event);
    }

    /// Send a status line.
    pub fn status(&self, msg: impl Into<String>) {
        self.emit(Event::Status(msg.into()));
    }

    /// Send a `-v` detail line.
    pub fn detail(&self, msg: impl Into<String>) {
        self.emit(Event::Detail(msg.into()));
    }

    /// A `Waiting` event for an entry's lock, as a callback for `Entry::lock`.
    pub fn on_wait<'a>(&'a self, entry: &'a build_farm::Entry) -> impl Fn(&Path) + 'a {
        move |lock: &Path| {
            self.emit(Event::Waiting { stage: entry.stage(), entry: entry.name().to_string(), lock: lock.to_path_buf() })
        }
    }

    /// Why an entry is being built: the components that changed since the
    /// newest earlier entry of the same stage whose name starts with `family`
    /// (same kernel, profile and mode), from its `fingerprint.json`.
    pub fn explain_rebuild(&self, stage: Stage, family: &str, fp: &Fingerprint) {
        let dir = self.layout.stage_dir(stage);
        let newest = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            // Exactly `<family><16 hex digits>`: `6.1-minimal-` must not
            // match the entries of a profile named `minimal-net`.
            .filter(|e| {
                e.file_name().to_string_lossy().strip_prefix(family).is_some_and(|k| k.len() == 16 && k.bytes().all(|b| b.is_ascii_hexdigit()))
            })
            .filter_map(|e| {
                let fp_path = e.path().join("fingerprint.json");
                let modified = std::fs::metadata(&fp_path).and_then(|m| m.modified()).ok()?;
                Some((modified, fp_path))
            })
            .max();
        let reasons = match newest.and_then(|(_, p)| std::fs::read_to_string(p).ok()).and_then(|t| serde_json::from_str::<Fingerprint>(&t).ok()) {
            Some(old) => fp.dirty_reasons(&old),
            None => vec!["no earlier entry".to_string()],
        };
        self.emit(Event::Rebuilding { stage, reasons });
    }

    /// The default cache root: `$XDG_CACHE_HOME/xc-convert`, else `~/.cache/xc-convert`.
    pub fn default_cache() -> PathBuf {
        if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
            return PathBuf::from(x).join("xc-convert");
        }
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp"));
        home.join(".cache/xc-convert")
    }
}
