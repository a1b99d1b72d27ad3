//! `wrapped.json`: what a wrapped container directory holds, so `run` needs
//! nothing else (schema 1, see docs/containers.md "The VM").
//!
//! ```text
//! <cache>/wrapped/<name>-<key16>/
//!   bzImage        copy of the kernel image
//!   rootfs.cpio    or rootfs.ext4: the rootfs with /.xc/init and /.xc/spec
//!   wrapped.json   this file
//! ```

use super::pack::PackedRootfs;
use super::spec::ContainerSpec;
use crate::pipeline::build::Mode;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The file name inside a wrapped directory.
pub const WRAPPED_JSON: &str = "wrapped.json";
/// The kernel image's file name inside a wrapped directory.
pub const KERNEL_FILE: &str = "bzImage";
pub const SCHEMA: u32 = 1;

/// The kernel the container runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrappedKernel {
    /// The image directory `build` published (the bzImage here is a copy),
    /// relative to the cache root when it is in the cache.
    pub image_dir: PathBuf,
    pub build_key: String,
    pub mode: Mode,
    pub kernel_version: String,
    pub profile: String,
}

/// Options that went into the wrap (part of the key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrapOptions {
    /// What was asked for (`auto`, `initramfs`, `ext4`).
    pub rootfs_format: super::pack::FormatChoice,
    /// Guest memory `run` gives by default, MiB (an initramfs must fit in it).
    pub memory_mb: u32,
    /// ELF files rewritten for the entry table (`--translate`).
    pub translate: bool,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrappedManifest {
    pub schema: u32,
    /// Name part of the directory (from the rootfs or image name).
    pub name: String,
    /// sha256 over the rootfs digest, the kernel build key and the options.
    pub key: String,
    /// sha256 of the rootfs as walked (paths, owners, modes, bytes).
    pub rootfs_digest: String,
    pub kernel: WrappedKernel,
    pub rootfs: PackedRootfs,
    pub spec: ContainerSpec,
    pub options: WrapOptions,
    /// What `--translate` rewrote (None without it).
    pub translated: Option<super::translate::TranslateReport>,
    /// The QEMU command line `run` uses, with `{run}` for the run's
    /// directory and `{sock}` for its socket directory, and no `-p` forwards.
    pub qemu_command: Vec<String>,
    /// The image it was unpacked from (None: wrapped from a rootfs directory).
    #[serde(default)]
    pub image: Option<crate::pipeline::wrap::ImageOrigin>,
}

#[derive(Debug, thiserror::Error)]
pub enum WrappedError {
    #[error("{path} is not a wrapped container directory (no {WRAPPED_JSON}; make one with `xc-convert wrap`)")]
    Missing { path: PathBuf },
    #[error("cannot read {path}")]
    Read { path: PathBuf, #[source] source: std::io::Error },
    #[error("{path} is not a valid {WRAPPED_JSON}")]
    Parse { path: PathBuf, #[source] source: serde_json::Error },
    #[error("{path} has schema {found}; this xc-convert reads schema {SCHEMA}: wrap the image again")]
    Schema { path: PathBuf, found: u32 },
}

/// Read a wrapped directory's manifest.
pub fn load(dir: &Path) -> Result<WrappedManifest, WrappedError> {
    let path = dir.join(WRAPPED_JSON);
    if !path.is_file() {
        return Err(WrappedError::Missing { path: dir.to_owned() });
    }
    let text = std::fs::read_to_string(&path).map_err(|source| WrappedError::Read { path: path.clone(), source })?;
    let m: WrappedManifest = serde_json::from_str(&text).map_err(|source| WrappedError::Parse { path: path.clone(), source })?;
    if m.schema != SCHEMA {
        return Err(WrappedError::Schema { path, found: m.schema });
    }
    Ok(m)
}
