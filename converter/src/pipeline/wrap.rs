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
use build_farm::{Fingerprint, Staging};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Where the rootfs comes from.
#[derive(Debug, Clone)]
pub enum RootfsInput {
    /// A rootfs directory on the host and the spec to run in it.
    Dir { path: PathBuf, spec: ContainerSpec },
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

#[derive(Debug, thiserror::Error)]
pub enum WrapError {
    #[error("--translate needs a libos kernel (rewritten programs call through its entry table); this one is {mode}")]
    TranslateNeedsLibos { mode: crate::pipeline::build::Mode },
    #[error("cannot copy the kernel image {from} into {to}")]
    CopyKernel { from: PathBuf, to: PathBuf, #[source] source: std::io::Error },
}

/// Directory names keep to a safe character set.
fn sanitize(name: &str) -> String {
    let s: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '-' }).collect();
    let s = s.trim_matches(['-', '.']).to_owned();
    if s.is_empty() {
        "container".to_owned()
    } else {
        s.chars().take(48).collect()
    }
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
            stdout_sock: "{sock}/stdout.sock".into(),
            stderr_sock: "{sock}/stderr.sock".into(),
            control_sock: "{sock}/control.sock".into(),
        },
        ports: vec![],
    };
    vm::command_line(&cfg)
}

/// Wrap (or find in the cache).
pub fn run(ctx: &Context, req: &WrapRequest) -> anyhow::Result<WrappedContainer> {
    let RootfsInput::Dir { path, spec } = &req.rootfs;
    ctx.ui.status(&format!("reading rootfs {}", path.display()));
    let tree = rootfs::walk(path)?;
    if !tree.skipped.is_empty() {
        ctx.ui.detail(&format!("left out of the rootfs: {}", tree.skipped.join(", ")));
    }
    let (format, reason) = pack::choose(req.rootfs_format, tree.content_bytes, req.memory_mb)?;
    ctx.ui.status(&format!("rootfs as {format}: {reason}"));
    if format == pack::RootfsFormat::Ext4 {
        crate::host::ensure_packages(crate::host::EXT4_PACKAGES, "an ext4 rootfs", &|s| ctx.ui.status(s))?;
    }
    let options = WrapOptions { rootfs_format: req.rootfs_format, memory_mb: req.memory_mb, translate: req.translate };
    let m = &req.kernel.manifest;
    if req.translate && m.mode != crate::pipeline::build::Mode::Libos {
        return Err(WrapError::TranslateNeedsLibos { mode: m.mode }.into());
    }
    let fp = Fingerprint::new()
        .with_hash("rootfs", &tree.digest)
        .with_json("spec", spec)
        .with_hash("kernel", &m.build_key)
        .with_json("options", &options)
        .with("init", pack::XC_INIT)
        .with("schema", SCHEMA.to_string());
    let name = sanitize(&req.name.clone().unwrap_or_else(|| path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()));
    let dest = ctx.cache.join("wrapped").join(format!("{name}-{}", fp.short_key()));
    if dest.join(WRAPPED_JSON).is_file() {
        let manifest = wrapped::load(&dest)?;
        return Ok(WrappedContainer { dir: dest, manifest, cache_hit: true });
    }
    let staging = Staging::new(&dest)?;
    let kernel_src = req.kernel.dir.join("bzImage");
    let kernel_dst = staging.path().join(KERNEL_FILE);
    std::fs::copy(&kernel_src, &kernel_dst).map_err(|source| WrapError::CopyKernel { from: kernel_src.clone(), to: kernel_dst.clone(), source })?;
    let mut report = req.translate.then(TranslateReport::default);
    if req.translate {
        ctx.ui.status("rewriting the rootfs's ELF files for the entry table (abom)");
    }
    let packed = pack::pack(&tree, spec, format, reason, staging.path(), report.as_mut())?;
    if let Some(r) = &report {
        let sites: usize = r.rewritten.iter().map(|f| f.sites).sum();
        ctx.ui.status(&format!("rewrote {sites} sites in {} files ({} ELF files kept)", r.rewritten.len(), r.kept.len()));
    }
    let manifest = WrappedManifest {
        schema: SCHEMA,
        name,
        key: fp.key(),
        rootfs_digest: tree.digest.clone(),
        kernel: WrappedKernel {
            image_dir: req.kernel.dir.clone(),
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
