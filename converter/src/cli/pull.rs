//! `xc-convert pull`

use super::source_args::SourceArgs;
use super::Session;
use crate::pipeline;
use crate::source;

/// Get a kernel tree into the cache.
///
/// The tree is unpacked once into a content-addressed cache entry; pulling
/// the same input again is instant. Extraction refuses entries that would
/// land outside the tree, and a failed pull leaves no entry behind.
///
/// `--debian VERSION` takes any version of Debian's linux-source-X.Y that
/// the configured apt archives publish (apt checks the package against the
/// archive's signatures); `--list-debian` prints those versions:
///
///   xc-convert pull --list-debian 6.1
///   xc-convert pull --debian 6.1.176-1
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    source: SourceArgs,
    /// Print the published versions of linux-source-X.Y (default: 6.1 and 6.12) and pull nothing.
    #[arg(long, value_name = "X.Y", num_args = 0..=1, default_missing_value = "", conflicts_with_all = ["kernel", "debian", "tarball", "dir", "git"])]
    list_debian: Option<String>,
}

/// The series `--list-debian` shows without an argument.
const LISTED_SERIES: [&str; 2] = ["6.1", "6.12"];

/// Run `pull`.
pub fn exec(ctx: &Session, args: &Args) -> anyhow::Result<()> {
    if let Some(series) = &args.list_debian {
        return list_debian(ctx, series);
    }
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

fn list_debian(ctx: &Session, series: &str) -> anyhow::Result<()> {
    let all: Vec<&str> = if series.is_empty() { LISTED_SERIES.to_vec() } else { vec![series] };
    let mut value = serde_json::Map::new();
    let mut human = Vec::new();
    for s in all {
        let versions = source::published_versions(s)?;
        human.push(format!("linux-source-{s}: {}", if versions.is_empty() { "none published".to_string() } else { versions.join(" ") }));
        value.insert(s.to_string(), serde_json::json!(versions));
    }
    super::emit(&ctx.ui, &serde_json::json!({ "published": value }), &human.join("\n"));
    Ok(())
}
