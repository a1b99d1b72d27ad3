//! `xc-convert wrap`

use super::config::ProfileArgs;
use super::source_args::SourceArgs;
use crate::container::pack::FormatChoice;
use crate::container::spec::ContainerSpec;
use crate::pipeline::build::{BuiltImage, Mode};
use crate::pipeline::wrap::{self, RootfsInput, WrapRequest};
use crate::pipeline::Context;
use anyhow::Context as _;
use std::path::PathBuf;

/// Wrap a container rootfs into a VM image for its own kernel.
///
/// Takes a rootfs directory and a spec (the entrypoint's argv, env, cwd,
/// uid/gid, hostname, network; JSON of `ContainerSpec`, see
/// docs/containers.md), adds our PID 1 (/.xc/init) and the spec
/// (/.xc/spec) to a packed copy, and publishes a directory with the kernel
/// image, the packed rootfs and wrapped.json. The rootfs directory is never
/// modified. The kernel comes from the same pipeline as `xc-convert build`
/// (default: 6.1, profile container, libos), built if missing.
///
/// The rootfs goes to the guest as an initramfs when small (RAM, no disk
/// driver) or as an ext4 image on virtio-blk when large; --rootfs-format
/// decides instead. The last line of plain output is the wrapped directory,
/// ready for `xc-convert run`:
///
///   dir=$(xc-convert wrap --rootfs ./rootfs --spec spec.json | tail -n1)
///   xc-convert run "$dir" -p 6380:6379
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The rootfs directory.
    #[arg(long, value_name = "DIR")]
    pub rootfs: PathBuf,
    /// The container spec (JSON).
    #[arg(long, value_name = "SPEC.json")]
    pub spec: PathBuf,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Kernel profile (built in: see `config --list-profiles`) or a .toml path.
    #[arg(long, short, default_value = "container")]
    pub profile: String,
    /// Extra directory of profile .toml files.
    #[arg(long, value_name = "DIR")]
    pub profiles_dir: Option<PathBuf>,
    /// Which kernel: libos (processes at CPL 0) or stock.
    #[arg(long, value_enum, default_value_t = Mode::Libos)]
    pub mode: Mode,
    /// How the rootfs reaches the guest: auto picks by size.
    #[arg(long, value_enum, default_value_t = FormatChoice::Auto)]
    pub rootfs_format: FormatChoice,
    /// Guest memory `run` gives by default, MiB (an initramfs must fit in it).
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(64..))]
    pub memory: u32,
    /// Name of the wrapped directory [default: the rootfs directory's name].
    #[arg(long)]
    pub name: Option<String>,
    /// Offline binary translation: rewrite the rootfs's ELF executables and
    /// libraries (not the loader) so their system calls go through the libos
    /// entry table; wrapped.json records what was rewritten. libos kernels
    /// and initramfs rootfs only.
    #[arg(long)]
    pub translate: bool,
    /// Parallel compile jobs if the kernel has to be built.
    #[arg(short, long)]
    pub jobs: Option<usize>,
}

/// The kernel image a container is wrapped with: today `build`'s pipeline
/// (a cache hit once built). The one place to change where kernels come from.
pub(crate) fn kernel_image(ctx: &Context, args: &Args) -> anyhow::Result<BuiltImage> {
    let profile = ProfileArgs { profile: args.profile.clone(), profiles_dir: args.profiles_dir.clone() };
    super::build::build_image(ctx, &args.source, &profile, args.mode, args.jobs, false)
}

fn read_spec(path: &PathBuf) -> anyhow::Result<ContainerSpec> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read spec {}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| anyhow::Error::new(BadSpec { path: path.clone(), source: e }))
}

/// A spec file that is not a ContainerSpec: a bad request.
#[derive(Debug, thiserror::Error)]
#[error("{path} is not a container spec")]
pub struct BadSpec {
    pub path: PathBuf,
    #[source]
    pub source: serde_json::Error,
}

/// Run `wrap`.
pub fn exec(ctx: &Context, args: &Args) -> anyhow::Result<()> {
    let spec = read_spec(&args.spec)?;
    if spec.args.is_empty() {
        anyhow::bail!(EmptyArgs { path: args.spec.clone() });
    }
    let kernel = kernel_image(ctx, args)?;
    let req = WrapRequest {
        rootfs: RootfsInput::Dir { path: args.rootfs.clone(), spec },
        kernel,
        rootfs_format: args.rootfs_format,
        memory_mb: args.memory,
        name: args.name.clone(),
        translate: args.translate,
    };
    let w = wrap::run(ctx, &req)?;
    let m = &w.manifest;
    let human = format!(
        "{} on Linux {} {} ({}): rootfs {} {} KiB{}\n{}",
        m.name,
        m.kernel.kernel_version,
        m.kernel.profile,
        m.kernel.mode,
        m.rootfs.format,
        m.rootfs.size / 1024,
        if w.cache_hit { " (cached)" } else { "" },
        w.dir.display()
    );
    super::emit(&ctx.ui, &w, &human);
    Ok(())
}

/// A spec with nothing to run.
#[derive(Debug, thiserror::Error)]
#[error("{path}: `args` is empty: the spec must name the entrypoint")]
pub struct EmptyArgs {
    pub path: PathBuf,
}
