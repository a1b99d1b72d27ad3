//! How many cells run at once and with what `-j`, and the local worker
//! pool that runs them.
//!
//! Cells run in parallel within the machine's cores and memory: at most
//! `memory / cell_memory` cells (a kernel build at -j2 stays under 2 GiB)
//! and at most one per core, and each gets `cores / parallel` make jobs, so
//! the machine is full but not oversubscribed. Before the cells, every
//! distinct source is pulled once (a Debian version is downloaded and
//! unpacked once, however many profiles and modes use it); the cells' own
//! pull stages are then cache hits. ccache is shared by construction: every
//! cell's build uses the same `CCACHE_DIR` (or remote storage).

use super::cell::{self, CellEnv, CellError};
use super::metadata::CellRecord;
use super::spec::{CellSpec, Resources, StageName};
use crate::pipeline::Context;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// How the run divides the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slots {
    /// Cells at once.
    pub parallel: usize,
    /// make -j per cell.
    pub jobs: usize,
}

/// Divide `cores` and `memory_gib` between `cells` cells.
pub fn slots(resources: &Resources, cells: usize, machine_cores: usize, machine_memory_gib: u64) -> Slots {
    let cores = resources.cores.unwrap_or(machine_cores).max(1);
    let memory = resources.memory_gib.unwrap_or(machine_memory_gib).max(1);
    let per_cell = resources.cell_memory_gib.unwrap_or(2).max(1);
    let by_memory = (memory / per_cell).max(1) as usize;
    let parallel = resources.parallel.unwrap_or_else(|| cores.min(by_memory)).clamp(1, cells.max(1));
    Slots { parallel, jobs: (cores / parallel).max(1) }
}

/// The machine's cores and memory (GiB, from /proc/meminfo).
pub fn machine() -> (usize, u64) {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    (cores, crate::host::memory_mib().unwrap_or(4 << 10) >> 10)
}

/// What the local runner tells its caller (the terminal's progress lines).
pub trait Progress: Sync {
    /// A source is being pulled before the cells.
    fn pulling(&self, source: &str);
    /// A cell started.
    fn started(&self, cell: &CellSpec);
    /// A cell entered a stage.
    fn stage(&self, cell: &CellSpec, stage: StageName);
    /// A cell was fresh: nothing ran.
    fn fresh(&self, cell: &CellSpec);
    /// A cell finished (record written).
    fn finished(&self, cell: &CellSpec, record: &CellRecord);
}

/// Run every cell that is not fresh on this machine with `slots`, writing
/// under `out`. Cells run on `slots.parallel` threads; a cell that cannot
/// write its record stops the run after the running cells end.
pub fn run_local(
    ctx: &Context,
    cells: &[CellSpec],
    slots: Slots,
    out: &Path,
    reproducer: &(dyn Fn(&CellSpec) -> String + Sync),
    progress: &dyn Progress,
) -> Result<(), CellError> {
    let todo: Vec<&CellSpec> = cells
        .iter()
        .filter(|c| {
            let fresh = cell::is_fresh(out, c);
            if fresh {
                progress.fresh(c);
            }
            !fresh
        })
        .collect();
    // One pull per source, spread over the same slots; a failure is left for
    // the cells' own pull stage to record.
    let mut sources: Vec<&CellSpec> = Vec::new();
    for c in &todo {
        if !sources.iter().any(|s| s.source_flags == c.source_flags) {
            sources.push(c);
        }
    }
    pool(slots.parallel, &sources, |c| {
        progress.pulling(&c.source_flags.join(" "));
        let _ = crate::pipeline::pull::run(&Context { layout: ctx.layout.clone(), reporter: std::sync::Arc::new(crate::pipeline::Silent) }, &c.source());
        Ok(())
    })?;
    pool(slots.parallel, &todo, |c| {
        progress.started(c);
        let env = CellEnv { jobs: slots.jobs, engine: "local".into(), reproducer: reproducer(c) };
        let record = cell::run(ctx, c, &env, out, &|stage| progress.stage(c, stage))?;
        progress.finished(c, &record);
        Ok(())
    })
}

/// Run `work` over `items` on `threads` threads; the first error is returned
/// once every thread has stopped (no new item starts after it).
fn pool<T: Sync>(threads: usize, items: &[T], work: impl Fn(&T) -> Result<(), CellError> + Sync) -> Result<(), CellError> {
    let next = AtomicUsize::new(0);
    let error: Mutex<Option<CellError>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1).min(items.len().max(1)) {
            s.spawn(|| loop {
                if error.lock().map(|e| e.is_some()).unwrap_or(true) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = items.get(i) else { return };
                if let Err(e) = work(item) {
                    if let Ok(mut slot) = error.lock() {
                        slot.get_or_insert(e);
                    }
                    return;
                }
            });
        }
    });
    match error.into_inner() {
        Ok(Some(e)) => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_share_cores_and_memory_without_oversubscribing() {
        let r = Resources::default();
        assert_eq!(slots(&r, 10, 2, 24), Slots { parallel: 2, jobs: 1 });
        assert_eq!(slots(&r, 1, 2, 24), Slots { parallel: 1, jobs: 2 });
        assert_eq!(slots(&r, 10, 16, 8), Slots { parallel: 4, jobs: 4 }, "memory bounds the cells");
        let fixed = Resources { cores: Some(8), parallel: Some(2), ..Resources::default() };
        assert_eq!(slots(&fixed, 10, 2, 24), Slots { parallel: 2, jobs: 4 });
        assert_eq!(slots(&r, 0, 2, 24).parallel, 1);
    }
}
