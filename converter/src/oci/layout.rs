//! An image on disk: an OCI image layout (directory or tar) or a `docker
//! save` archive, opened as a directory of blobs. Every blob is read through
//! a [`DigestReader`] and checked against the digest that names it; the
//! index is walked (nested indexes too) to the linux/amd64 manifest.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use oci_spec::image::{
    Arch, Descriptor, DigestAlgorithm, ImageConfiguration, ImageIndex, ImageManifest, MediaType, Os,
};
use sha2::{Digest as _, Sha256};
use tempfile::TempDir;
use thiserror::Error;

use crate::source::{extract_tar_safely, ExtractError};

/// JSON blobs (index, manifest, config) larger than this are refused before
/// they are read: real ones are kilobytes, and a hostile one could be huge.
const MAX_JSON_BLOB: u64 = 16 << 20;
/// Nested indexes deeper than this are refused (a loop of indexes cannot
/// exist with honest digests, but a chain could still be long).
const MAX_INDEX_DEPTH: u32 = 8;

/// Docker's names for what OCI calls an index and a manifest.
const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Annotations that name the image (docker's OCI export, then the OCI one).
const NAME_ANNOTATIONS: [&str; 2] = [
    "io.containerd.image.name",
    "org.opencontainers.image.ref.name",
];

/// Why an image could not be opened or one of its blobs read.
#[derive(Debug, Error)]
pub enum LayoutError {
    #[error("`{}` is neither an OCI image layout (no index.json) nor a docker save archive (no manifest.json)", path.display())]
    NotAnImage { path: PathBuf },
    #[error("cannot unpack image archive `{}`: {source}", path.display())]
    Archive {
        path: PathBuf,
        #[source]
        source: ExtractError,
    },
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("`{}` is not valid {what}: {message}", path.display())]
    BadJson {
        path: PathBuf,
        what: &'static str,
        message: String,
    },
    #[error("blob {blob}: digest algorithm not supported (only sha256)")]
    UnsupportedDigest { blob: String },
    #[error("blob {blob} is missing from the image (expected at `{}`)", path.display())]
    MissingBlob { blob: String, path: PathBuf },
    #[error("blob {blob} does not match its digest: content hashes to sha256:{actual}")]
    DigestMismatch { blob: String, actual: String },
    #[error("blob {blob} has {actual} bytes, its descriptor says {expected}")]
    SizeMismatch {
        blob: String,
        expected: u64,
        actual: u64,
    },
    #[error("blob {blob} is {size} bytes, more than the {MAX_JSON_BLOB} allowed for JSON")]
    TooLarge { blob: String, size: u64 },
    #[error("image indexes nest deeper than {MAX_INDEX_DEPTH} levels at {blob}")]
    TooDeep { blob: String },
    #[error("no linux/amd64 image in the index (platforms found: {})", if found.is_empty() { "none".to_string() } else { found.join(", ") })]
    NoAmd64 { found: Vec<String> },
}

/// An image opened as a directory: the user's directory as it is, or a tar
/// unpacked (by the same code as `pull`) into a scratch directory that goes
/// away with this value.
#[derive(Debug)]
pub struct ImageDir {
    root: PathBuf,
    _scratch: Option<TempDir>,
}

/// What kind of image the directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// `index.json` + `blobs/` (OCI, and docker save since docker 25).
    OciLayout,
    /// Only `manifest.json` with `Config`/`Layers` paths (older docker save).
    DockerLegacy,
}

/// The manifest chosen for linux/amd64 and what the walk learned on the way.
#[derive(Debug, Clone)]
pub struct SelectedManifest {
    /// `sha256:<hex>` of the manifest blob.
    pub digest: String,
    pub manifest: ImageManifest,
    /// The image's name from an annotation on the way (`docker.io/library/redis:7`), if any.
    pub name: Option<String>,
}

/// OCI layout when `root/index.json` exists (docker 25's save has both
/// files: the index is the one that carries digests for everything), docker's
/// legacy form when only `manifest.json` does.
fn layout_kind(root: &Path) -> Result<ImageKind, LayoutError> {
    if root.join("index.json").is_file() {
        Ok(ImageKind::OciLayout)
    } else if root.join("manifest.json").is_file() {
        Ok(ImageKind::DockerLegacy)
    } else {
        Err(LayoutError::NotAnImage { path: root.to_path_buf() })
    }
}

/// A cheap look at `image` before anything expensive (a kernel build)
/// happens for it: a directory must hold `index.json` or `manifest.json`,
/// a file must begin with a tar header. Unpacking checks everything else.
pub fn probe(image: &Path) -> Result<(), LayoutError> {
    let meta = fs::metadata(image).map_err(io_err(image))?;
    let not_an_image = || LayoutError::NotAnImage { path: image.to_path_buf() };
    if meta.is_dir() {
        return layout_kind(image).map(drop);
    }
    if !meta.is_file() {
        return Err(not_an_image());
    }
    let mut header = [0u8; 512];
    let mut f = File::open(image).map_err(io_err(image))?;
    io::Read::read_exact(&mut f, &mut header).map_err(|_| not_an_image())?;
    // POSIX ustar and GNU tar both put "ustar" at offset 257.
    if &header[257..262] == b"ustar" {
        Ok(())
    } else {
        Err(not_an_image())
    }
}

impl ImageDir {
    /// Open `image`: a directory is used in place (never written), a file is
    /// unpacked as a tar into a scratch directory under `scratch_parent`.
    pub fn open(image: &Path, scratch_parent: &Path) -> Result<ImageDir, LayoutError> {
        let meta = fs::metadata(image).map_err(io_err(image))?;
        if meta.is_dir() {
            return Ok(ImageDir {
                root: image.to_path_buf(),
                _scratch: None,
            });
        }
        let scratch = tempfile::Builder::new()
            .prefix(".xc-image-")
            .tempdir_in(scratch_parent)
            .map_err(io_err(scratch_parent))?;
        let file = File::open(image).map_err(io_err(image))?;
        extract_tar_safely(io::BufReader::new(file), scratch.path()).map_err(|source| {
            LayoutError::Archive {
                path: image.to_path_buf(),
                source,
            }
        })?;
        Ok(ImageDir {
            root: scratch.path().to_path_buf(),
            _scratch: Some(scratch),
        })
    }

    /// The directory the image's files are in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The image's form ([`layout_kind`]).
    pub fn kind(&self) -> Result<ImageKind, LayoutError> {
        layout_kind(&self.root)
    }

    /// Where the blob named `digest` lives (`blobs/sha256/<hex>`).
    pub fn blob_path(&self, digest: &oci_spec::image::Digest) -> Result<PathBuf, LayoutError> {
        if *digest.algorithm() != DigestAlgorithm::Sha256 {
            return Err(LayoutError::UnsupportedDigest {
                blob: digest.to_string(),
            });
        }
        // oci-spec has checked the hex is 64 lowercase hex digits: no path tricks.
        let path = self.root.join("blobs/sha256").join(digest.digest());
        if !path.is_file() {
            return Err(LayoutError::MissingBlob {
                blob: digest.to_string(),
                path,
            });
        }
        Ok(path)
    }

    /// Open the blob `desc` points at for a digest-checked streaming read.
    pub fn open_blob(&self, desc: &Descriptor) -> Result<DigestReader<File>, LayoutError> {
        let path = self.blob_path(desc.digest())?;
        let size = fs::metadata(&path).map_err(io_err(&path))?.len();
        if size != desc.size() {
            return Err(LayoutError::SizeMismatch {
                blob: desc.digest().to_string(),
                expected: desc.size(),
                actual: size,
            });
        }
        let file = File::open(&path).map_err(io_err(&path))?;
        Ok(DigestReader::new(
            file,
            desc.digest().to_string(),
            desc.digest().digest().to_string(),
        ))
    }

    /// Read a small JSON blob whole, checking size and digest before parsing.
    pub fn read_json_blob(&self, desc: &Descriptor) -> Result<Vec<u8>, LayoutError> {
        if desc.size() > MAX_JSON_BLOB {
            return Err(LayoutError::TooLarge {
                blob: desc.digest().to_string(),
                size: desc.size(),
            });
        }
        let mut reader = self.open_blob(desc)?;
        let mut bytes = Vec::new();
        let path = self.blob_path(desc.digest())?;
        reader.read_to_end(&mut bytes).map_err(io_err(&path))?;
        reader.finish()?;
        Ok(bytes)
    }

    /// Walk `index.json` to the first linux/amd64 image manifest.
    pub fn select_manifest(&self) -> Result<SelectedManifest, LayoutError> {
        let path = self.root.join("index.json");
        let bytes = read_small_file(&path)?;
        let index = parse_index(&bytes).map_err(|message| LayoutError::BadJson {
            path: path.clone(),
            what: "an OCI image index",
            message,
        })?;
        let mut found = Vec::new();
        match self.walk_index(&index, 0, None, &mut found)? {
            Some(selected) => Ok(selected),
            None => Err(LayoutError::NoAmd64 { found }),
        }
    }

    fn walk_index(
        &self,
        index: &ImageIndex,
        depth: u32,
        name: Option<String>,
        found: &mut Vec<String>,
    ) -> Result<Option<SelectedManifest>, LayoutError> {
        for desc in index.manifests() {
            let name = descriptor_name(desc).or_else(|| name.clone());
            if let Some(p) = desc.platform() {
                if !is_linux_amd64(p.os(), p.architecture()) {
                    found.push(format!("{}/{}", p.os(), p.architecture()));
                    continue;
                }
            }
            let blob = desc.digest().to_string();
            if is_index(desc.media_type()) {
                if depth + 1 >= MAX_INDEX_DEPTH {
                    return Err(LayoutError::TooDeep { blob });
                }
                let bytes = self.read_json_blob(desc)?;
                let nested = parse_index(&bytes)
                    .map_err(|message| self.bad_blob(desc, "an OCI image index", message))?;
                if let Some(selected) = self.walk_index(&nested, depth + 1, name, found)? {
                    return Ok(Some(selected));
                }
            } else if is_manifest(desc.media_type()) {
                let bytes = self.read_json_blob(desc)?;
                let manifest = parse_manifest(&bytes)
                    .map_err(|message| self.bad_blob(desc, "an OCI image manifest", message))?;
                if desc.platform().is_none() {
                    // No platform on the descriptor: the config says.
                    let config = self.read_config(manifest.config())?;
                    if !is_linux_amd64(config.os(), config.architecture()) {
                        found.push(format!("{}/{}", config.os(), config.architecture()));
                        continue;
                    }
                }
                return Ok(Some(SelectedManifest {
                    digest: blob,
                    manifest,
                    name,
                }));
            }
            // Anything else (attestations, artifacts) is not an image: skip.
        }
        Ok(None)
    }

    /// Read and parse the image configuration blob.
    pub fn read_config(&self, desc: &Descriptor) -> Result<ImageConfiguration, LayoutError> {
        let bytes = self.read_json_blob(desc)?;
        parse_config(&bytes)
            .map_err(|message| self.bad_blob(desc, "an OCI image configuration", message))
    }

    fn bad_blob(&self, desc: &Descriptor, what: &'static str, message: String) -> LayoutError {
        LayoutError::BadJson {
            path: self.root.join("blobs/sha256").join(desc.digest().digest()),
            what,
            message,
        }
    }
}

/// oci-spec's error as text: its serde variant says only "serde failed",
/// so the inner serde_json error (with line and column) is what is told.
fn spec_error(e: oci_spec::OciSpecError) -> String {
    match e {
        oci_spec::OciSpecError::SerDe(inner) => inner.to_string(),
        oci_spec::OciSpecError::Io(inner) => inner.to_string(),
        other => other.to_string(),
    }
}

/// Parse an image index (also docker's manifest list, which has the same shape).
pub fn parse_index(bytes: &[u8]) -> Result<ImageIndex, String> {
    ImageIndex::from_reader(bytes).map_err(spec_error)
}

/// Parse an image manifest.
pub fn parse_manifest(bytes: &[u8]) -> Result<ImageManifest, String> {
    ImageManifest::from_reader(bytes).map_err(spec_error)
}

/// Parse an image configuration.
pub fn parse_config(bytes: &[u8]) -> Result<ImageConfiguration, String> {
    ImageConfiguration::from_reader(bytes).map_err(spec_error)
}

fn is_index(media: &MediaType) -> bool {
    match media {
        MediaType::ImageIndex => true,
        MediaType::Other(s) => s == DOCKER_MANIFEST_LIST,
        _ => false,
    }
}

fn is_manifest(media: &MediaType) -> bool {
    match media {
        MediaType::ImageManifest => true,
        MediaType::Other(s) => s == DOCKER_MANIFEST,
        _ => false,
    }
}

fn is_linux_amd64(os: &Os, arch: &Arch) -> bool {
    *os == Os::Linux && *arch == Arch::Amd64
}

fn descriptor_name(desc: &Descriptor) -> Option<String> {
    let annotations = desc.annotations().as_ref()?;
    NAME_ANNOTATIONS
        .iter()
        .find_map(|k| annotations.get(*k).cloned())
}

/// Read a file that must be small (index.json, docker's manifest.json).
pub fn read_small_file(path: &Path) -> Result<Vec<u8>, LayoutError> {
    let size = fs::metadata(path).map_err(io_err(path))?.len();
    if size > MAX_JSON_BLOB {
        return Err(LayoutError::TooLarge {
            blob: path.display().to_string(),
            size,
        });
    }
    fs::read(path).map_err(io_err(path))
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LayoutError + '_ {
    move |source| LayoutError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A reader that hashes what passes through it; [`DigestReader::finish`]
/// drains the rest and compares with the expected sha256. Nothing read from
/// it may be trusted (published) before `finish` succeeds: callers unpack
/// into a staging directory that is discarded on error.
pub struct DigestReader<R> {
    inner: R,
    hasher: Sha256,
    /// How the blob is named in errors (`sha256:<hex>` or a file path).
    blob: String,
    /// Expected lowercase hex sha256.
    expected_hex: String,
}

impl<R: Read> DigestReader<R> {
    pub fn new(inner: R, blob: String, expected_hex: String) -> Self {
        DigestReader {
            inner,
            hasher: Sha256::new(),
            blob,
            expected_hex,
        }
    }

    /// Read to the end and check the digest.
    pub fn finish(mut self) -> Result<(), LayoutError> {
        let blob = self.blob.clone();
        io::copy(&mut self, &mut io::sink()).map_err(|source| LayoutError::Io {
            path: PathBuf::from(&blob),
            source,
        })?;
        let actual = hex::encode(self.hasher.finalize());
        if actual != self.expected_hex {
            return Err(LayoutError::DigestMismatch { blob, actual });
        }
        Ok(())
    }
}

impl<R: Read> Read for DigestReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}
