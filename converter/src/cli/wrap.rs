//! `xc-convert wrap`

use super::args::ProfileArgs;
use super::source_args::SourceArgs;
use crate::oci::Overrides;
use crate::pipeline::image::ImageSpec;
use crate::container::pack::FormatChoice;
use crate::container::spec::ContainerSpec;
use crate::pipeline::build::{BuiltImage, Mode};
use crate::pipeline::wrap::{self, RootfsInput, WrapRequest};
use super::Session;
use anyhow::Context as _;
use std::path::PathBuf;

/// Wrap a container image into a VM image for its own kernel.
///
/// IMAGE is an OCI image layout (a directory with index.json, or its tar)
/// or a `docker save` archive. Every blob is checked against its digest,
/// the linux/amd64 manifest's layers are applied in order (whiteouts, hard
/// links, symlinks; paths that would leave the rootfs are refused), and the
/// config's Entrypoint + Cmd, Env, WorkingDir, User and ExposedPorts become
/// the container spec; arguments after IMAGE replace Cmd, as with
/// `docker run`. Instead of an image, --rootfs DIR --spec SPEC.json take an
/// unpacked rootfs and its spec (JSON of `ContainerSpec`, see
/// docs/containers.md).
///
/// Our PID 1 (/.xc/init) and the spec (/.xc/spec) are added to a packed
/// copy, and a directory with the kernel image, the packed rootfs and
/// wrapped.json is published. Neither the image nor a rootfs directory is
/// ever modified. The kernel comes from the same pipeline as `xc-convert build`
/// (default: 6.1, profile container, libos), built if missing.
///
/// The rootfs goes to the guest as an initramfs when small (RAM, no disk
/// driver) or as an ext4 image on virtio-blk when large; --rootfs-format
/// decides instead. The last line of plain output is the wrapped directory,
/// ready for `xc-convert run`:
///
///   dir=$(xc-convert wrap ./redis-oci | tail -n1)
///   xc-convert run "$dir" -p 6380:6379
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The image: an OCI layout directory or tar, or a `docker save` archive.
    #[arg(value_name = "IMAGE", required_unless_present = "rootfs", conflicts_with_all = ["rootfs", "spec"])]
    pub image: Option<PathBuf>,
    /// Replace Cmd (the image's default arguments), as after `docker run IMAGE`.
    #[arg(value_name = "ARGS", trailing_var_arg = true, allow_hyphen_values = true, requires = "image")]
    pub cmd: Vec<String>,
    /// Replace the image's Entrypoint (and drop its Cmd), e.g. --entrypoint /bin/sh.
    #[arg(long, value_name = "PROGRAM", requires = "image")]
    pub entrypoint: Option<String>,
    /// Set an environment variable for the entrypoint (repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", requires = "image")]
    pub env: Vec<String>,
    /// Run as this user: name, uid, name:group or uid:gid, resolved in the image.
    #[arg(long, requires = "image")]
    pub user: Option<String>,
    /// Working directory inside the rootfs.
    #[arg(long, requires = "image")]
    pub workdir: Option<String>,
    /// Hostname of the container [default: from the image's name].
    #[arg(long, requires = "image")]
    pub hostname: Option<String>,
    /// An unpacked rootfs directory instead of an image (with --spec).
    #[arg(long, value_name = "DIR", requires = "spec")]
    pub rootfs: Option<PathBuf>,
    /// The container spec (JSON) of --rootfs.
    #[arg(long, value_name = "SPEC.json", requires = "rootfs")]
    pub spec: Option<PathBuf>,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Kernel profile (built in: see `config --list-profiles`) or a .toml path.
    #[arg(long, short, default_value = DEFAULT_PROFILE)]
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

/// The kernel image a container is wrapped with, through the pipeline
/// library (a cache hit once built).
pub(crate) fn kernel_image(ctx: &Session, args: &Args) -> anyhow::Result<BuiltImage> {
    let profile = ProfileArgs { profile: args.profile.clone(), profiles_dir: args.profiles_dir.clone() };
    let spec = ImageSpec { source: args.source.spec(), profile: profile.profile_ref(), mode: args.mode };
    super::build::image_for(ctx, &spec, &super::build::options(args.jobs))
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
pub fn exec(ctx: &Session, args: &Args) -> anyhow::Result<()> {
    let rootfs = match (&args.image, &args.rootfs, &args.spec) {
        (Some(image), _, _) => RootfsInput::Image {
            path: image.clone(),
            overrides: Overrides {
                entrypoint: args.entrypoint.clone().map(|e| vec![e]),
                cmd: (!args.cmd.is_empty()).then(|| args.cmd.clone()),
                env: args.env.clone(),
                user: args.user.clone(),
                workdir: args.workdir.clone(),
                hostname: args.hostname.clone(),
            },
        },
        (None, Some(dir), Some(spec_file)) => {
            let spec = read_spec(spec_file)?;
            if spec.args.is_empty() {
                anyhow::bail!(EmptyArgs { path: spec_file.clone() });
            }
            RootfsInput::Dir { path: dir.clone(), spec }
        }
        _ => unreachable!("clap requires IMAGE or --rootfs with --spec"),
    };
    // A mistyped image path is an error now, not after a kernel build.
    if let Some(image) = &args.image {
        probe_image(image)?;
    }
    super::prepare_host(ctx, crate::host::EXT4_PACKAGES, "ext4 rootfs images")?;
    let kernel = kernel_image(ctx, args)?;
    let req = WrapRequest {
        rootfs,
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
/// The image's first look ([`crate::oci::layout::probe`]), as wrap's error.
fn probe_image(image: &std::path::Path) -> Result<(), wrap::WrapError> {
    crate::oci::layout::probe(image).map_err(|e| wrap::WrapError::Image { image: image.to_path_buf(), source: e.into() })
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: `args` is empty: the spec must name the entrypoint")]
pub struct EmptyArgs {
    pub path: PathBuf,
}

/// `run IMAGE`: wrap an image with wrap's defaults (Debian's 6.1, profile
/// `container`, libos, rootfs format by size) and return the wrapped directory.
pub(crate) fn wrap_with_defaults(ctx: &Session, image: &std::path::Path, memory_mb: u32, profile: &str) -> anyhow::Result<PathBuf> {
    let spec = ImageSpec {
        source: crate::source::SourceSpec::Debian { series: super::source_args::DEFAULT_KERNEL.into(), sha256: None },
        profile: crate::pipeline::image::ProfileRef { name: profile.into(), dir: None },
        mode: Mode::Libos,
    };
    probe_image(image)?;
    super::prepare_host(ctx, crate::host::EXT4_PACKAGES, "ext4 rootfs images")?;
    let kernel = super::build::image_for(ctx, &spec, &super::build::options(None))?;
    let req = WrapRequest {
        rootfs: RootfsInput::Image { path: image.to_path_buf(), overrides: Overrides::default() },
        kernel,
        rootfs_format: FormatChoice::Auto,
        memory_mb,
        name: None,
        translate: false,
    };
    let w = wrap::run(ctx, &req)?;
    ctx.status(format!("wrapped {} as {}", image.display(), w.dir.display()));
    Ok(w.dir)
}

/// The kernel profile containers are wrapped with by default.
pub const DEFAULT_PROFILE: &str = "container";
