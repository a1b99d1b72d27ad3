//! `xc-convert build`

use super::config::ProfileArgs;
use super::source_args::{shell_quote, SourceArgs};
use crate::pipeline::build::{BuildRequest, BuiltImage, Mode};
use crate::pipeline::{self, Context};

/// Build a bootable kernel image for a profile.
///
/// Runs pull and config first when their results are missing, then the
/// kernel build out of tree (with ccache when installed). The image
/// directory (bzImage, vmlinux, System.map, config, build.log,
/// manifest.json) is published atomically under a name that is the hash of
/// every input; building the same inputs again is a cache hit. The last line
/// of plain output is that directory, ready for `xc-convert boot`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Which kernel to build.
    #[arg(long, value_enum, default_value_t = Mode::Stock)]
    pub mode: Mode,
    /// Parallel compile jobs [default: number of CPUs].
    #[arg(short, long)]
    pub jobs: Option<usize>,
    /// Keep the object directory after a successful build (for debugging).
    #[arg(long)]
    pub keep_objdir: bool,
}

/// The canonical command that reproduces a build: machine-local flags
/// (-j, --cache, --json, --keep-objdir) are left out.
fn reproduce(source: &SourceArgs, profile: &ProfileArgs, mode: Mode) -> String {
    let mut s = format!("xc-convert build {} --profile {}", source.to_command_line(), shell_quote(&profile.profile));
    if let Some(d) = &profile.profiles_dir {
        s.push_str(&format!(" --profiles-dir {}", shell_quote(&d.display().to_string())));
    }
    s.push_str(&format!(" --mode {mode}"));
    s
}

/// Configure and build (or find in the cache) one image: what `build` does,
/// shared with `bench`, which needs a stock and a libos image.
pub(crate) fn build_image(
    ctx: &Context,
    source: &SourceArgs,
    profile: &ProfileArgs,
    mode: Mode,
    jobs: Option<usize>,
    keep_objdir: bool,
) -> anyhow::Result<BuiltImage> {
    let (configured, patched) = super::config::configure(ctx, source, profile, mode)?;
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let req = BuildRequest { configured, mode, jobs, reproduce: reproduce(source, profile, mode), keep_objdir, patched };
    pipeline::build::run(ctx, &req)
}

/// Run `build`.
pub fn exec(ctx: &Context, args: &Args) -> anyhow::Result<()> {
    let image = build_image(ctx, &args.source, &args.profile, args.mode, args.jobs, args.keep_objdir)?;
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
    let value = serde_json::json!({"output_dir": image.dir, "cache_hit": image.cache_hit, "manifest": m});
    super::emit(&ctx.ui, &value, &human);
    Ok(())
}
