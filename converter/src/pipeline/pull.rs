//! Stage 1: get a kernel tree into the cache.

use super::{Context, Event};
use crate::source::{self, KernelTree, PullEvent, SourceError, SourceSpec};
use build_farm::Stage;

/// Pull `spec` into the cache, reporting progress. Returns the tree and
/// whether it was already there.
pub fn run(ctx: &Context, spec: &SourceSpec) -> Result<(KernelTree, bool), SourceError> {
    let on_event = |ev: PullEvent| match ev {
        PullEvent::Extracting { entries, bytes } | PullEvent::Copying { files: entries, bytes } => {
            ctx.emit(Event::Progress { pos: entries, message: format!("entries, {} MiB", bytes >> 20) })
        }
        PullEvent::Downloading { package } => ctx.status(format!("downloading {package} with apt-get")),
        PullEvent::Installing { package } => ctx.status(format!("installing {package} with apt-get")),
        PullEvent::Hashing { what } => ctx.detail(format!("hashing {what}")),
        PullEvent::CacheHit { source_hash } => ctx.detail(format!("cached tree {source_hash}")),
        PullEvent::Published { root } => ctx.detail(format!("unpacked into {}", root.display())),
        PullEvent::Waiting { source_hash, lock } => {
            ctx.emit(Event::Waiting { stage: Stage::Sources, entry: source_hash, lock })
        }
    };
    ctx.detail(format!("pulling {spec:?}"));
    ctx.emit(Event::ProgressStart { what: "unpacking".into(), len: None });
    let outcome = source::pull(spec, ctx.cache(), &on_event);
    ctx.emit(Event::ProgressEnd);
    let outcome = outcome?;
    Ok((outcome.tree, outcome.cache_hit))
}
