//! `xc-convert config`

use super::source_args::SourceArgs;
use crate::patch::PatchSet;
use crate::pipeline::build::Mode;
use crate::pipeline::patch::PatchedTree;
use crate::pipeline::{self, configure::ConfiguredTree, Context};
use crate::profile::{Catalog, Series};
use std::path::PathBuf;

/// Configure a kernel tree with a kconfig profile, and prove it.
///
/// Starts from the profile's base (tinyconfig unless it says otherwise),
/// writes every option the profile asks for, runs `make olddefconfig`, then
/// checks each request in the final .config. An option that did not survive
/// is an error naming it and the unmet `depends on` from the Kconfig files;
/// a misspelt option is an error with the closest real symbol.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// List the available profiles and exit.
    #[arg(long)]
    pub list_profiles: bool,
    /// stock, or libos: configure the converted tree with the libos layer added.
    #[arg(long, value_enum, default_value_t = Mode::Stock)]
    pub mode: Mode,
}

/// Which kconfig profile; shared by `config` and `build`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProfileArgs {
    /// Profile name (built in: see `config --list-profiles`) or path to a .toml file.
    #[arg(long, short, default_value = "minimal")]
    pub profile: String,
    /// Extra directory of profile .toml files (they take precedence over built-in ones).
    #[arg(long, value_name = "DIR")]
    pub profiles_dir: Option<PathBuf>,
}

/// The catalog of profiles: built-in plus `--profiles-dir`.
pub fn catalog(dir: &Option<PathBuf>) -> anyhow::Result<Catalog> {
    let mut c = Catalog::builtin();
    if let Some(d) = dir {
        c.add_dir(d)?;
    }
    Ok(c)
}

/// Pull, patch (libos mode) and configure, each only when its result is
/// missing; shared with `build`.
pub fn configure(
    ctx: &Context,
    source: &SourceArgs,
    profile_args: &ProfileArgs,
    mode: Mode,
) -> anyhow::Result<(ConfiguredTree, Option<PatchedTree>)> {
    let catalog = catalog(&profile_args.profiles_dir)?;
    let profile = profile_args.profile.as_str();
    let (tree, _) = pipeline::pull::run(ctx, &source.spec())?;
    let series = Series(tree.version.version, tree.version.patchlevel);
    match mode {
        Mode::Stock => {
            let resolved = catalog.resolve(profile, series)?;
            Ok((pipeline::configure::run(ctx, &tree, &resolved)?, None))
        }
        Mode::Libos => {
            let resolved = catalog.resolve_with_layer(profile, series, LIBOS_LAYER)?;
            let set = PatchSet::builtin(LIBOS_LAYER)?;
            let patched = pipeline::patch::run(ctx, &tree, &set)?;
            Ok((pipeline::configure::run(ctx, &patched.tree, &resolved)?, Some(patched)))
        }
    }
}

/// The profile layer and patch set of libos mode.
pub const LIBOS_LAYER: &str = "libos";

/// Run `config`.
pub fn exec(ctx: &Context, args: &Args) -> anyhow::Result<()> {
    if args.list_profiles {
        let c = catalog(&args.profile.profiles_dir)?;
        let list: Vec<_> = c.names().into_iter().map(|n| (c.description(&n).unwrap_or_default(), n)).collect();
        let human = list.iter().map(|(d, n)| format!("{n:10} {d}")).collect::<Vec<_>>().join("\n");
        let value: Vec<_> = list.iter().map(|(d, n)| serde_json::json!({"name": n, "description": d})).collect();
        super::emit(&ctx.ui, &value, &human);
        return Ok(());
    }
    let (c, _) = configure(ctx, &args.source, &args.profile, args.mode)?;
    let human = format!(
        "Linux {} profile {}: {} requested options verified{}\n{}",
        c.tree.version,
        c.profile.name,
        c.verified,
        if c.cache_hit { " (cached)" } else { "" },
        c.dot_config().display()
    );
    let value = serde_json::json!({"configured": c, "cache_hit": c.cache_hit, "dot_config": c.dot_config()});
    super::emit(&ctx.ui, &value, &human);
    Ok(())
}
