//! `wrap`: a rootfs + spec and a built kernel image -> a wrapped container
//! directory that `run` boots (see [`crate::container::wrapped`]).
//!
//! Keyed by the rootfs's content digest, the kernel's build key and the
//! options, so wrapping the same thing twice is a directory lookup; the
//! directory is staged beside its destination and renamed into place.

use super::build::BuiltImage;
use super::Context;
use crate::container::pack::{self, FormatChoice};
use crate::container::rootfs;
use crate::container::translate::TranslateReport;
use crate::container::spec::ContainerSpec;
use crate::container::vm::{self, Channels, VmConfig};
use crate::container::wrapped::{self, WrapOptions, WrappedKernel, WrappedManifest, KERNEL_FILE, SCHEMA, WRAPPED_JSON};
use crate::container::pack::PackError;
use crate::container::rootfs::RootfsError;
use crate::container::spec::NetworkSpec;
use crate::container::wrapped::WrappedError;
use crate::host::HostError;
use crate::oci::{OciError, Overrides};
use build_farm::{Entry, EntryError, Stage};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Where the rootfs comes from.
#[derive(Debug, Clone)]
pub enum RootfsInput {
    /// A rootfs directory on the host and the spec to run in it.
    Dir { path: PathBuf, spec: ContainerSpec },
    /// An OCI image layout (directory or tar) or a `docker save` archive,
    /// with docker-run-like overrides of its config.
    Image { path: PathBuf, overrides: Overrides },
}

/// What to wrap.
#[derive(Debug, Clone)]
pub struct WrapRequest {
    pub rootfs: RootfsInput,
    /// The kernel image the container runs on.
    pub kernel: BuiltImage,
    pub rootfs_format: FormatChoice,
    /// Guest memory `run` gives by default, MiB.
    pub memory_mb: u32,
    /// Name part of the directory [default: from the rootfs].
    pub name: Option<String>,
    /// Rewrite the rootfs's ELF files for the entry table (libos kernels only).
    pub translate: bool,
}

/// The result: the published directory and its manifest.
#[derive(Debug, Clone, Serialize)]
pub struct WrappedContainer {
    pub dir: PathBuf,
    pub manifest: WrappedManifest,
    pub cache_hit: bool,
}

/// Why a container could not be wrapped; each names the image, blob,
/// entry, file or option at fault.
#[derive(Debug, thiserror::Error)]
pub enum WrapError {
    #[error("--translate needs a libos kernel (rewritten programs call through its entry table); this one is {mode}")]
    TranslateNeedsLibos { mode: crate::pipeline::build::Mode },
    #[error("cannot copy the kernel image {from} into {to}")]
    CopyKernel { from: PathBuf, to: PathBuf, #[source] source: std::io::Error },
    /// The image is refused (digest, traversal, platform, config...).
    #[error("image {image}: {source}")]
    Image { image: PathBuf, #[source] source: OciError },
    /// The unpacked or given rootfs cannot be read.
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    /// The rootfs cannot be packed as asked.
    #[error(transparent)]
    Pack(#[from] PackError),
    /// A cached wrapped directory is unreadable.
    #[error(transparent)]
    Wrapped(#[from] WrappedError),
    /// The host lacks a tool (e2fsprogs for ext4).
    #[error(transparent)]
    Host(#[from] HostError),
    /// The cache entry could not be locked or published.
    #[error(transparent)]
    Cache(#[from] EntryError),
    /// A scratch directory could not be made.
    #[error(transparent)]
    Io(#[from] build_farm::PathError),
    /// The kernel lacks what the container needs on run's default machine.
    #[error("profile {profile:?} gives a kernel without {} ({config}), which a container on run's default machine (microvm: serial console and control ports, virtio on MMIO) needs; wrap with --profile container (or container-smp)", missing.join(", "))]
    KernelLacks { profile: String, config: PathBuf, missing: Vec<String> },
}

/// Directory names keep to a safe character set (one checked rule,
/// [`crate::names::ContainerName`]).
fn sanitize(name: &str) -> String {
    crate::names::ContainerName::sanitized(name, 48, "container").to_string()
}

/// The command line recorded in wrapped.json: `{run}` and `{sock}` stand for
/// the run's directories, and `-p` forwards are added by `run`.
pub fn qemu_template(dir: &Path, m_rootfs: &pack::PackedRootfs, memory_mb: u32) -> Vec<String> {
    let cfg = VmConfig {
        kernel: dir.join(KERNEL_FILE),
        rootfs: dir.join(&m_rootfs.file),
        rootfs_format: m_rootfs.format,
        memory_mb,
        cpus: 1,
        accel: crate::qemu::Accel::Tcg,
        machine: vm::Machine::default(),
        channels: Channels {
            console_log: "{run}/console.log".into(),
            console_sock: "{sock}/console.sock".into(),
            stdout_sock: "{sock}/stdout.sock".into(),
            stderr_sock: "{sock}/stderr.sock".into(),
            control_sock: "{sock}/control.sock".into(),
        },
        network: vm::Network::User { ports: vec![], outbound: false },
    };
    vm::command_line(&cfg)
}

/// Scratch directories of image unpacks under `wrapped/`:
/// `.unpack-<pid>-<random>`.
pub const UNPACK_PREFIX: &str = ".unpack-";

/// The pid of the `wrap` that made an unpack scratch directory named `name`.
pub fn unpack_owner(name: &str) -> Option<u32> {
    name.strip_prefix(UNPACK_PREFIX)?.split('-').next()?.parse().ok()
}

/// Wrap (or find in the cache).
pub fn run(ctx: &Context, req: &WrapRequest) -> Result<WrappedContainer, WrapError> {
    match &req.rootfs {
        RootfsInput::Dir { path, spec } => {
            let name = req.name.clone().unwrap_or_else(|| path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
            wrap_dir(ctx, req, path, spec, &name, None)
        }
        RootfsInput::Image { path, overrides } => {
            // Unpacked into a scratch directory in the cache (same
            // filesystem, removed on every return); the image is never written.
            let scratch_parent = ctx.layout.stage_dir(Stage::Wrapped);
            std::fs::create_dir_all(&scratch_parent).map_err(build_farm::at("create", &scratch_parent))?;
            // Named with our pid, so `cache clean` can tell a killed wrap's
            // leftover from one in progress.
            let prefix = format!("{UNPACK_PREFIX}{}-", std::process::id());
            let scratch = tempfile::Builder::new()
                .prefix(&prefix)
                .tempdir_in(&scratch_parent)
                .map_err(build_farm::at("create a scratch directory in", &scratch_parent))?;
            let rootfs = scratch.path().join("rootfs");
            ctx.status(format!("unpacking image {}", path.display()));
            let unpacked = crate::oci::unpack(path, &rootfs, overrides).map_err(|source| WrapError::Image { image: path.clone(), source })?;
            let mut spec = unpacked.spec.clone();
            // QEMU's user network unless the spec says otherwise.
            spec.network.get_or_insert_with(NetworkSpec::default);
            let name = req.name.clone().unwrap_or_else(|| {
                let stem = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                stem.trim_end_matches(".tar").to_string()
            });
            let origin = ImageOrigin {
                path: path.clone(),
                manifest_digest: unpacked.manifest_digest.clone(),
                config_digest: unpacked.config_digest.clone(),
                layer_digests: unpacked.layer_digests.clone(),
            };
            wrap_dir(ctx, req, &rootfs, &spec, &name, Some(origin))
        }
    }
}

/// The image a wrapped container came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageOrigin {
    /// As given to `wrap`.
    pub path: PathBuf,
    /// The linux/amd64 manifest's digest.
    pub manifest_digest: String,
    /// Its config's digest.
    pub config_digest: String,
    /// The layers applied, in order.
    pub layer_digests: Vec<String>,
}

fn wrap_dir(
    ctx: &Context,
    req: &WrapRequest,
    path: &Path,
    spec: &ContainerSpec,
    name: &str,
    image: Option<ImageOrigin>,
) -> Result<WrappedContainer, WrapError> {
    ctx.status(format!("reading rootfs {}", path.display()));
    let tree = rootfs::walk(path)?;
    if !tree.skipped.is_empty() {
        ctx.detail(format!("left out of the rootfs: {}", tree.skipped.join(", ")));
    }
    let (format, reason) = pack::choose(req.rootfs_format, tree.content_bytes, req.memory_mb)?;
    ctx.status(format!("rootfs as {format}: {reason}"));
    if format == pack::RootfsFormat::Ext4 {
        crate::host::require_packages(crate::host::EXT4_PACKAGES, "an ext4 rootfs")?;
    }
    // The kernel must have what run's default machine needs, or the
    // container would start without its NIC or disk (only PID 1 warned).
    let config_path = req.kernel.dir.join("config");
    let config = std::fs::read_to_string(&config_path).map_err(build_farm::at("read", &config_path))?;
    let missing = vm::missing_kernel_options(&crate::kconfig::DotConfig::parse(&config), vm::Machine::default(), format, spec.network.is_some());
    if !missing.is_empty() {
        return Err(WrapError::KernelLacks { profile: req.kernel.manifest.profile.clone(), config: config_path, missing });
    }
    let options = WrapOptions { rootfs_format: req.rootfs_format, memory_mb: req.memory_mb, translate: req.translate };
    let m = &req.kernel.manifest;
    if req.translate && m.mode != crate::pipeline::build::Mode::Libos {
        return Err(WrapError::TranslateNeedsLibos { mode: m.mode });
    }
    let fp = super::fingerprint()
        .with_hash("rootfs", &tree.digest)
        .with_json("spec", spec)
        .with_hash("kernel", &m.build_key)
        .with_json("options", &options)
        .with_json("image", &image)
        .with("init", pack::XC_INIT)
        .with("schema", SCHEMA.to_string());
    let name = sanitize(name);
    let entry = Entry::new(&ctx.layout, Stage::Wrapped, format!("{name}-{}", fp.short_key()));
    let dest = entry.dir();
    if dest.join(WRAPPED_JSON).is_file() {
        let manifest = wrapped::load(&dest)?;
        return Ok(WrappedContainer { dir: dest, manifest, cache_hit: true });
    }
    let lock = entry.lock(&ctx.on_wait(&entry))?;
    if dest.join(WRAPPED_JSON).is_file() {
        let manifest = wrapped::load(&dest)?;
        return Ok(WrappedContainer { dir: dest, manifest, cache_hit: true });
    }
    let staging = entry.staging(&lock)?;
    let kernel_src = req.kernel.dir.join("bzImage");
    let kernel_dst = staging.path().join(KERNEL_FILE);
    std::fs::copy(&kernel_src, &kernel_dst).map_err(|source| WrapError::CopyKernel { from: kernel_src.clone(), to: kernel_dst.clone(), source })?;
    let mut report = req.translate.then(TranslateReport::default);
    if req.translate {
        ctx.status("rewriting the rootfs's ELF files for the entry table (abom)");
    }
    let packed = pack::pack(&tree, spec, format, reason, staging.path(), report.as_mut())?;
    if let Some(r) = &report {
        let sites: usize = r.rewritten.iter().map(|f| f.sites).sum();
        ctx.status(format!("rewrote {sites} sites in {} files ({} ELF files kept)", r.rewritten.len(), r.kept.len()));
    }
    let manifest = WrappedManifest {
        schema: SCHEMA,
        name,
        key: fp.key(),
        rootfs_digest: tree.digest.clone(),
        kernel: WrappedKernel {
            // Relative to the cache root (records hold no absolute paths; a
            // cache moved whole keeps it right); an image outside the cache
            // keeps its own path.
            image_dir: ctx.layout.relative(&req.kernel.dir),
            build_key: m.build_key.clone(),
            mode: m.mode,
            kernel_version: m.kernel_version.clone(),
            profile: m.profile.clone(),
        },
        qemu_command: qemu_template(&dest, &packed, req.memory_mb),
        rootfs: packed,
        spec: spec.clone(),
        options,
        translated: report,
        image,
    };
    build_farm::write_json_atomic(&staging.path().join(WRAPPED_JSON), &manifest)?;
    let dir = staging.publish()?;
    Ok(WrappedContainer { dir, manifest, cache_hit: false })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_safe() {
        assert_eq!(sanitize("redis:7/alpine"), "redis-7-alpine");
        assert_eq!(sanitize("../.."), "container");
        assert_eq!(sanitize(""), "container");
    }
}
