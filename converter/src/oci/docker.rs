//! The older `docker save` form: a `manifest.json` listing, per image, the
//! config file (named `<sha256>.json`) and the layer tars (in directories
//! named by legacy v1 ids, so not by their digest). The config's file name
//! is its digest; each layer is checked against the config's `diff_ids`
//! (the sha256 of the uncompressed tar), so every byte is still verified.

use std::path::{Path, PathBuf};

use oci_spec::image::ImageConfiguration;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use thiserror::Error;

use super::layout::{self, LayoutError};
use crate::source::safe_relative_path;

/// Why a docker save archive could not be read.
#[derive(Debug, Error)]
pub enum DockerError {
    #[error("manifest.json: {message}")]
    BadManifest { message: String },
    #[error("manifest.json: {field} path `{path}` is unsafe: {reason}")]
    UnsafePath {
        field: &'static str,
        path: String,
        reason: String,
    },
    #[error("config `{path}` is not named by its digest (`<sha256>.json`)")]
    ConfigNotNamedByDigest { path: String },
    #[error("config `{path}` does not match its digest: content hashes to sha256:{actual}")]
    ConfigDigestMismatch { path: String, actual: String },
    #[error("config `{path}` is not a valid image configuration: {message}")]
    BadConfig { path: String, message: String },
    #[error("manifest.json lists {layers} layers but the config has {diff_ids} diff_ids")]
    LayerCount { layers: usize, diff_ids: usize },
    #[error("diff_id `{diff_id}` of layer `{layer}` is not a sha256 digest")]
    BadDiffId { layer: String, diff_id: String },
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

/// One entry of docker's manifest.json (other fields are ignored).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SavedImage {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// A docker-save image with its config verified and its layers located.
#[derive(Debug)]
pub struct DockerImage {
    /// `sha256:<hex>` of manifest.json (the form has no manifest blob).
    pub manifest_digest: String,
    /// `sha256:<hex>` of the config.
    pub config_digest: String,
    pub config: ImageConfiguration,
    /// Layer tars in order, each with the hex sha256 its content must have.
    pub layers: Vec<(PathBuf, String)>,
    /// The first `RepoTags` entry (`redis:7`), if any.
    pub name: Option<String>,
}

/// Read the first image of `root/manifest.json`.
pub fn read(root: &Path) -> Result<DockerImage, DockerError> {
    let manifest_path = root.join("manifest.json");
    let bytes = layout::read_small_file(&manifest_path)?;
    let saved: Vec<SavedImage> =
        serde_json::from_slice(&bytes).map_err(|e| DockerError::BadManifest {
            message: e.to_string(),
        })?;
    let image = saved
        .into_iter()
        .next()
        .ok_or_else(|| DockerError::BadManifest {
            message: "lists no image".into(),
        })?;

    let config_rel = member(&image.config, "Config")?;
    let config_hex = config_rel
        .file_name()
        .and_then(|n| n.to_str())
        .map(|n| n.strip_suffix(".json").unwrap_or(n))
        .filter(|h| is_sha256_hex(h))
        .ok_or_else(|| DockerError::ConfigNotNamedByDigest {
            path: image.config.clone(),
        })?
        .to_string();
    let config_path = root.join(&config_rel);
    let config_bytes = layout::read_small_file(&config_path)?;
    let actual = hex::encode(Sha256::digest(&config_bytes));
    if actual != config_hex {
        return Err(DockerError::ConfigDigestMismatch {
            path: image.config,
            actual,
        });
    }
    let config = layout::parse_config(&config_bytes).map_err(|message| DockerError::BadConfig {
        path: image.config.clone(),
        message,
    })?;

    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != image.layers.len() {
        return Err(DockerError::LayerCount {
            layers: image.layers.len(),
            diff_ids: diff_ids.len(),
        });
    }
    let mut layers = Vec::new();
    for (layer, diff_id) in image.layers.iter().zip(diff_ids) {
        let hex = diff_id
            .strip_prefix("sha256:")
            .filter(|h| is_sha256_hex(h))
            .ok_or_else(|| DockerError::BadDiffId {
                layer: layer.clone(),
                diff_id: diff_id.clone(),
            })?;
        layers.push((root.join(member(layer, "Layers")?), hex.to_string()));
    }
    Ok(DockerImage {
        manifest_digest: format!("sha256:{}", hex::encode(Sha256::digest(&bytes))),
        config_digest: format!("sha256:{config_hex}"),
        config,
        layers,
        name: image.repo_tags.and_then(|t| t.into_iter().next()),
    })
}

/// A path from manifest.json, refused like a tar member if it could leave the archive.
fn member(path: &str, field: &'static str) -> Result<PathBuf, DockerError> {
    let unsafe_path = |reason: String| DockerError::UnsafePath { field, path: path.to_string(), reason };
    let p = safe_relative_path(path.as_bytes()).map_err(unsafe_path)?;
    // An empty name would be the image's own directory.
    if p.as_os_str().is_empty() {
        return Err(unsafe_path("empty".into()));
    }
    Ok(p)
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
