//! `xc-convert pull`

use super::source_args::SourceArgs;
use super::Session;
use crate::pipeline;

/// Get a kernel tree into the cache.
///
/// The tree is unpacked once into a content-addressed cache entry; pulling
/// the same input again is instant. Extraction refuses entries that would
/// land outside the tree, and a failed pull leaves no entry behind.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    source: SourceArgs,
}

/// Run `pull`.
pub fn exec(ctx: &Session, args: &Args) -> anyhow::Result<()> {
    super::prepare_host_for_source(ctx, &args.source.spec())?;
    let (tree, hit) = pipeline::pull::run(ctx, &args.source.spec())?;
    let value = serde_json::json!({"tree": tree, "cache_hit": hit});
    let human = format!(
        "Linux {} from {}{}\n{}",
        tree.version,
        tree.origin,
        if hit { " (cached)" } else { "" },
        tree.root.display()
    );
    super::emit(&ctx.ui, &value, &human);
    Ok(())
}
