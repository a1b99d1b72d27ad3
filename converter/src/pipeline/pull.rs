//! Stage 1: get a kernel tree into the cache.

use super::Context;
use crate::source::{self, KernelTree, PullEvent, SourceSpec};

/// Pull `spec` into the cache, showing progress. Returns the tree and
/// whether it was already there.
pub fn run(ctx: &Context, spec: &SourceSpec) -> anyhow::Result<(KernelTree, bool)> {
    let pb = ctx.ui.progress(None, "unpacking");
    let ui = ctx.ui.clone();
    let on_event = |ev: PullEvent| match ev {
        PullEvent::Extracting { entries, .. } => pb.set_position(entries),
        other => ui.status(&other.to_string()),
    };
    let outcome = source::pull(spec, &ctx.cache, &on_event);
    pb.finish_and_clear();
    let outcome = outcome?;
    Ok((outcome.tree, outcome.cache_hit))
}
