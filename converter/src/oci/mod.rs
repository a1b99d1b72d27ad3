//! OCI and docker images -> a rootfs directory + a [`ContainerSpec`].
//!
//! [`unpack`] opens the image ([`layout`]: an OCI layout directory or tar,
//! docker save in both forms via [`docker`]), walks the index to the
//! linux/amd64 manifest, applies every layer in order with whiteouts
//! ([`layers`]), and turns the config into the spec ([`config`]). Every
//! blob is checked against its digest, every layer also against its
//! `diff_id`. Everything is written into the caller's staging directory,
//! which is emptied again on error; the caller publishes it.
//! docs/containers.md describes the mapping.

pub mod config;
pub mod docker;
pub mod fuzz;
pub mod layers;
pub mod layout;
pub mod rootfs_path;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use oci_spec::image::{Arch, ImageConfiguration, Os};
use serde::Serialize;
use thiserror::Error;

pub use config::{ConfigError, Overrides};
pub use docker::DockerError;
pub use layers::LayerError;
pub use layout::LayoutError;

use crate::container::spec::ContainerSpec;
use layout::{DigestReader, ImageDir, ImageKind};

/// Why an image could not be unpacked.
#[derive(Debug, Error)]
pub enum OciError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("manifest {manifest} lists {layers} layers but its config has {diff_ids} diff_ids")]
    LayerCount {
        manifest: String,
        layers: usize,
        diff_ids: usize,
    },
    #[error("config {config}: diff_id `{diff_id}` is not a sha256 digest")]
    BadDiffId { config: String, diff_id: String },
    #[error("config {config} is for {os}/{arch}, not linux/amd64")]
    WrongPlatform {
        config: String,
        os: String,
        arch: String,
    },
    #[error("staging rootfs `{}`: {reason}", path.display())]
    Staging { path: PathBuf, reason: String },
}

/// What [`unpack`] produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnpackedImage {
    /// `sha256:` of the manifest used (for docker's legacy form: of manifest.json).
    pub manifest_digest: String,
    /// `sha256:` of the image configuration.
    pub config_digest: String,
    /// The process to start, from the config and the overrides.
    pub spec: ContainerSpec,
    /// The layers' blob digests in order (legacy docker form: their diff_ids).
    pub layer_digests: Vec<String>,
    /// sha256 of each uncompressed layer, as the config lists them.
    pub diff_ids: Vec<String>,
    /// Bytes of regular files in the rootfs (hard links counted once).
    pub rootfs_bytes: u64,
}

/// One layer to read: where it is and what its bytes must hash to.
struct LayerSource {
    /// How errors name it: the blob digest, or the legacy tar's path.
    name: String,
    path: PathBuf,
    /// Hex sha256 of the stored (possibly compressed) bytes, when the form names blobs by digest.
    blob_hex: Option<String>,
    /// Hex sha256 of the uncompressed tar (the config's diff_id).
    diff_hex: String,
}

/// Unpack `image` into `staging_rootfs` (created if missing, must be empty
/// otherwise) and derive the container spec. On error the staging
/// directory is left empty (and removed if this call created it).
pub fn unpack(
    image: &Path,
    staging_rootfs: &Path,
    overrides: &Overrides,
) -> Result<UnpackedImage, OciError> {
    let created = prepare_staging(staging_rootfs)?;
    let result = unpack_into(image, staging_rootfs, overrides);
    if result.is_err() {
        // Best effort: the error being returned matters more than a cleanup failure.
        if created {
            let _ = fs::remove_dir_all(staging_rootfs);
        } else if let Ok(children) = fs::read_dir(staging_rootfs) {
            for child in children.flatten() {
                let p = child.path();
                let _ = if p.is_dir() && !p.is_symlink() {
                    fs::remove_dir_all(&p)
                } else {
                    fs::remove_file(&p)
                };
            }
        }
    }
    result
}

fn prepare_staging(path: &Path) -> Result<bool, OciError> {
    let staging = |reason: String| OciError::Staging {
        path: path.to_path_buf(),
        reason,
    };
    match fs::read_dir(path) {
        Ok(mut children) => match children.next() {
            None => Ok(false),
            Some(_) => Err(staging("is not empty".into())),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir(path).map_err(|e| staging(e.to_string()))?;
            Ok(true)
        }
        Err(e) => Err(staging(e.to_string())),
    }
}

fn unpack_into(
    image: &Path,
    rootfs: &Path,
    overrides: &Overrides,
) -> Result<UnpackedImage, OciError> {
    let scratch_parent = rootfs
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = ImageDir::open(image, scratch_parent)?;
    let plan = match dir.kind()? {
        ImageKind::OciLayout => plan_oci(&dir)?,
        ImageKind::DockerLegacy => plan_docker(&dir)?,
    };
    let ImagePlan {
        manifest_digest,
        config_digest,
        config,
        layers: sources,
        layer_digests,
        name,
    } = plan;
    check_platform(&config, &config_digest)?;

    let mut applier = layers::Applier::new(rootfs)?;
    for source in &sources {
        // No decompressor or tar parser sees a byte before its digest is checked.
        verify_layer(source)?;
        let whiteouts = read_layer(source, |tar| layers::scan_whiteouts(tar, &source.name))?;
        applier.apply_whiteouts(&whiteouts, &source.name)?;
        // Read again (and verify again: the user's directory may change under us).
        read_layer(source, |tar| applier.extract(tar, &source.name))?;
    }
    applier.finish()?;

    let image_name = name.unwrap_or_else(|| {
        image
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let spec = config::build_spec(&config, rootfs, overrides, &image_name)?;
    Ok(UnpackedImage {
        manifest_digest,
        config_digest,
        spec,
        layer_digests,
        diff_ids: config.rootfs().diff_ids().clone(),
        rootfs_bytes: rootfs_bytes(rootfs)?,
    })
}

/// An image's verified config and its layers, whatever form it came in.
struct ImagePlan {
    manifest_digest: String,
    config_digest: String,
    config: ImageConfiguration,
    layers: Vec<LayerSource>,
    layer_digests: Vec<String>,
    /// The image's name from an annotation or RepoTags, if any.
    name: Option<String>,
}

fn plan_oci(dir: &ImageDir) -> Result<ImagePlan, OciError> {
    let selected = dir.select_manifest()?;
    let config_desc = selected.manifest.config();
    let config = dir.read_config(config_desc)?;
    let diff_ids = config.rootfs().diff_ids();
    let layers = selected.manifest.layers();
    if diff_ids.len() != layers.len() {
        return Err(OciError::LayerCount {
            manifest: selected.digest,
            layers: layers.len(),
            diff_ids: diff_ids.len(),
        });
    }
    let mut sources = Vec::new();
    for (desc, diff_id) in layers.iter().zip(diff_ids) {
        let diff_hex = diff_hex(diff_id, config_desc.digest().to_string())?;
        let path = dir.blob_path(desc.digest())?;
        let size = fs::metadata(&path).map_err(layout::io_err(&path))?.len();
        if size != desc.size() {
            return Err(LayoutError::SizeMismatch {
                blob: desc.digest().to_string(),
                expected: desc.size(),
                actual: size,
            }
            .into());
        }
        sources.push(LayerSource {
            name: desc.digest().to_string(),
            path,
            blob_hex: Some(desc.digest().digest().to_string()),
            diff_hex,
        });
    }
    Ok(ImagePlan {
        manifest_digest: selected.digest.clone(),
        config_digest: config_desc.digest().to_string(),
        layer_digests: layers.iter().map(|d| d.digest().to_string()).collect(),
        config,
        layers: sources,
        name: selected.name,
    })
}

fn plan_docker(dir: &ImageDir) -> Result<ImagePlan, OciError> {
    let saved = docker::read(dir.root())?;
    let layers = saved
        .layers
        .iter()
        .map(|(path, hex)| LayerSource {
            name: path.display().to_string(),
            path: path.clone(),
            blob_hex: None,
            diff_hex: hex.clone(),
        })
        .collect();
    Ok(ImagePlan {
        manifest_digest: saved.manifest_digest,
        config_digest: saved.config_digest,
        layer_digests: saved
            .layers
            .iter()
            .map(|(_, hex)| format!("sha256:{hex}"))
            .collect(),
        config: saved.config,
        layers,
        name: saved.name,
    })
}

fn diff_hex(diff_id: &str, config: String) -> Result<String, OciError> {
    match diff_id.strip_prefix("sha256:") {
        Some(h)
            if h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) =>
        {
            Ok(h.to_string())
        }
        _ => Err(OciError::BadDiffId {
            config,
            diff_id: diff_id.to_string(),
        }),
    }
}

fn check_platform(config: &ImageConfiguration, digest: &str) -> Result<(), OciError> {
    if *config.os() == Os::Linux && *config.architecture() == Arch::Amd64 {
        return Ok(());
    }
    Err(OciError::WrongPlatform {
        config: digest.to_string(),
        os: config.os().to_string(),
        arch: config.architecture().to_string(),
    })
}

/// Check a layer's digest before anything parses it: the stored bytes when
/// the form names blobs by digest (OCI), else the uncompressed stream
/// (docker's legacy form only has diff_ids).
fn verify_layer(source: &LayerSource) -> Result<(), OciError> {
    if let Some(hex) = &source.blob_hex {
        let file = File::open(&source.path).map_err(layout::io_err(&source.path))?;
        DigestReader::new(file, source.name.clone(), hex.clone()).finish()?;
        return Ok(());
    }
    read_layer(source, |_| Ok(()))
}

/// Run `f` over the layer's uncompressed tar, then check both digests
/// (reading to the end: a tar ends before its file does).
fn read_layer<T>(
    source: &LayerSource,
    f: impl FnOnce(&mut dyn Read) -> Result<T, LayerError>,
) -> Result<T, OciError> {
    let file = File::open(&source.path).map_err(layout::io_err(&source.path))?;
    let mut raw = DigestReader::new(
        file,
        source.name.clone(),
        source.blob_hex.clone().unwrap_or_default(),
    );
    let out = {
        let decompressed = layers::decompress(&mut raw, &source.name)?;
        let mut plain = DigestReader::new(
            decompressed,
            format!(
                "{} (uncompressed, diff_id sha256:{})",
                source.name, source.diff_hex
            ),
            source.diff_hex.clone(),
        );
        let out = f(&mut plain)?;
        plain.finish()?;
        out
    };
    if source.blob_hex.is_some() {
        raw.finish()?;
    }
    Ok(out)
}

/// Bytes of regular files, each inode once.
fn rootfs_bytes(rootfs: &Path) -> Result<u64, OciError> {
    let mut seen = HashSet::new();
    let mut total = 0;
    for entry in walkdir::WalkDir::new(rootfs).follow_links(false) {
        let entry = entry.map_err(|e| LayoutError::Io {
            path: e.path().unwrap_or(rootfs).to_path_buf(),
            source: e.into(),
        })?;
        let meta = entry.metadata().map_err(|e| LayoutError::Io {
            path: entry.path().to_path_buf(),
            source: e.into(),
        })?;
        if meta.is_file() && seen.insert((meta.dev(), meta.ino())) {
            total += meta.len();
        }
    }
    Ok(total)
}
