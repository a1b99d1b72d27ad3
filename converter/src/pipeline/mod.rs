//! The pipeline, one stage per module, each handing a typed value to the next:
//!
//! 1. [`pull`]: a source spec -> [`crate::source::KernelTree`] (an unpacked,
//!    read-only tree in the content-addressed cache).
//! 2. [`configure`]: tree + resolved profile -> [`configure::ConfiguredTree`]
//!    (a verified `.config`; every requested option proven to survive
//!    `olddefconfig`).
//! 3. [`build`]: configured tree -> [`build::BuiltImage`] (bzImage, vmlinux,
//!    System.map, .config and `manifest.json`, published atomically under a
//!    directory named by the hash of every input).
//! 4. [`boot`]: image -> [`boot::BootReport`] (what the guest printed,
//!    parsed; pass or fail).
//!
//! [`bench`] is not a stage: it boots a stock and a libos image in four
//! configurations and tabulates what the guest measured.
//!
//! Each stage's result is a cache entry keyed by a [`build_farm::Fingerprint`]
//! of its inputs, including the key of the stage before it; a stage whose
//! entry exists does nothing.

pub mod bench;
pub mod boot;
pub mod build;
pub mod configure;
pub mod container_run;
pub mod make;
pub mod patch;
pub mod pull;
pub mod wrap;

use std::path::PathBuf;

/// What every stage needs to know about the run.
#[derive(Debug, Clone)]
pub struct Context {
    /// Root of the cache (`--cache`, else `$XDG_CACHE_HOME/xc-convert`).
    pub cache: PathBuf,
    /// Output and progress preferences.
    pub ui: crate::ui::Ui,
}

impl Context {
    /// The default cache root: `$XDG_CACHE_HOME/xc-convert`, else `~/.cache/xc-convert`.
    pub fn default_cache() -> PathBuf {
        if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
            return PathBuf::from(x).join("xc-convert");
        }
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp"));
        home.join(".cache/xc-convert")
    }
}
