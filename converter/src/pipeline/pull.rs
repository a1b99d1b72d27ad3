//! Stage 1: get a kernel tree into the cache.

use super::Context;
use crate::source::{self, KernelTree, PullEvent, SourceSpec};

/// Pull `spec` into the cache, showing progress. Returns the tree and
/// whether it was already there.
pub fn run(ctx: &Context, spec: &SourceSpec) -> anyhow::Result<(KernelTree, bool)> {
    let pb = ctx.ui.progress(None, "unpacking");
    let ui = ctx.ui.clone();
    let on_event = |ev: PullEvent| match ev {
        PullEvent::Extracting { entries, bytes } | PullEvent::Copying { files: entries, bytes } => {
            pb.set_position(entries);
            pb.set_message(format!("entries, {} MiB", bytes >> 20));
        }
        PullEvent::Installing { package } => ui.status(&format!("installing {package} with apt-get")),
        PullEvent::Hashing { what } => ui.detail(&format!("hashing {what}")),
        PullEvent::CacheHit { source_hash } => ui.detail(&format!("cached tree {source_hash}")),
        PullEvent::Published { root } => ui.detail(&format!("unpacked into {}", root.display())),
    };
    ui.detail(&format!("pulling {spec:?}"));
    let outcome = source::pull(spec, &ctx.cache, &on_event);
    pb.finish_and_clear();
    let outcome = outcome?;
    Ok((outcome.tree, outcome.cache_hit))
}
