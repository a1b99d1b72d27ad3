//! `xc-convert build`

use super::args::{reproduce_line, ImageArgs};
use super::Session;
use crate::pipeline::build::BuiltImage;
use crate::pipeline::image::{self, BuildOptions, ImageSpec};

/// Build a bootable kernel image for a profile.
///
/// Runs pull and config first when their results are missing, then the
/// kernel build out of tree (with ccache when installed). The image
/// directory (bzImage, vmlinux, System.map, config, build.log,
/// manifest.json) is published atomically under a name that is the hash of
/// every input; building the same inputs again is a cache hit (after a size
/// check of every file against the manifest; a damaged entry is rebuilt).
/// Two builds of one image at once compile it once: the second waits. The
/// last line of plain output is that directory, ready for `xc-convert boot`.
/// With `--package deb` the image's packages are made too (see `package`).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub image: ImageArgs,
    /// Parallel compile jobs [default: number of CPUs].
    #[arg(short, long)]
    pub jobs: Option<usize>,
    /// Keep the object directory after a successful build (for debugging).
    #[arg(long)]
    pub keep_objdir: bool,
    /// Check a cached image's files by sha256 against its manifest, not only by size.
    #[arg(long)]
    pub verify: bool,
    /// Also make the image's packages, as `xc-convert package` does.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub package: Option<crate::package::Format>,
    /// With --package: copy the packages into this directory.
    #[arg(long, value_name = "DIR", requires = "package")]
    pub package_out: Option<std::path::PathBuf>,
}

/// The image for `spec` through the pipeline, with `build`'s reproducer:
/// what `build` does, shared with `bench` and every command that needs an image.
pub(crate) fn image_for(s: &Session, spec: &ImageSpec, options: &BuildOptions) -> anyhow::Result<BuiltImage> {
    super::prepare_host_for_image(s, spec)?;
    Ok(image::ensure(s, spec, options, &reproduce_line("build", spec))?)
}

/// Build options from `-j`.
pub(crate) fn options(jobs: Option<usize>) -> BuildOptions {
    let mut o = BuildOptions::default();
    if let Some(j) = jobs {
        o.jobs = j.max(1);
    }
    o
}

/// Run `build`.
pub fn exec(s: &Session, args: &Args) -> anyhow::Result<()> {
    let mut opts = options(args.jobs);
    opts.keep_objdir = args.keep_objdir;
    opts.verify_hashes = args.verify;
    let image = image_for(s, &args.image.spec(), &opts)?;
    let m = &image.manifest;
    let human = format!(
        "Linux {} profile {} ({}) bzImage {} KiB{}\n{}",
        m.kernel_version,
        m.profile,
        m.mode,
        m.image_size / 1024,
        if image.cache_hit { " (cached)".to_string() } else { format!(" built in {:.0}s", m.build_seconds) },
        image.dir.display()
    );
    let packages = match args.package {
        Some(format) => Some(super::package::package_and_report(s, image.dir.clone(), format, args.package_out.clone(), args.jobs)?),
        None => None,
    };
    // The image directory stays the last plain line, as scripts expect.
    let human = match &packages {
        Some(p) => format!("{}\n{human}", super::package::human(p)),
        None => human,
    };
    let value = serde_json::json!({"output_dir": image.dir, "cache_hit": image.cache_hit, "manifest": m, "packages": packages});
    super::emit(&s.ui, &value, &human);
    Ok(())
}
