//! `xc-convert cache`: what the cache holds, and freeing space.

use super::Session;
use build_farm::{Entry, Stage};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Show what the cache holds (entries and bytes per stage, leftovers of
/// interrupted runs, boot records) and, with `clean`, free space.
///
/// `clean` removes what no running process needs: staging directories that
/// a killed pull, config or build left (each is removed only after taking
/// its key's lock, so a run in progress keeps its own), object directories
/// of failed builds whose key is not being built, image unpacks of `wrap`s
/// that are no longer running, and boot records. With
/// `--all` it removes every entry too. Interrupted work is also cleaned up
/// by the next command that takes the same key's lock.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// `show` (default) or `clean`.
    #[arg(value_enum, default_value_t = Action::Show)]
    pub action: Action,
    /// With `clean`: remove every cache entry as well.
    #[arg(long)]
    pub all: bool,
}

/// What to do with the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Action {
    /// Print what is there.
    Show,
    /// Free space.
    Clean,
}

#[derive(Debug, Default, Serialize)]
struct Usage {
    stage: String,
    entries: u64,
    bytes: u64,
    leftovers: u64,
    leftover_bytes: u64,
}

fn size_of(path: &Path) -> u64 {
    walkdir::WalkDir::new(path).into_iter().flatten().filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum()
}

fn children(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).collect();
    v.sort();
    v
}

fn is_staging(p: &Path) -> bool {
    p.file_name().is_some_and(|n| {
        let n = n.to_string_lossy();
        n.starts_with(".staging-") || n.starts_with(".tmp-") || n.starts_with(crate::pipeline::wrap::UNPACK_PREFIX)
    })
}

/// An image unpack's scratch directory whose `wrap` is still running.
fn unpack_in_use(p: &Path) -> bool {
    let name = p.file_name().unwrap_or_default().to_string_lossy();
    match crate::pipeline::wrap::unpack_owner(&name) {
        Some(pid) => crate::host::pid_alive(pid),
        // An older xc-convert named them without a pid: a leftover.
        None => false,
    }
}

/// Run `cache`.
pub fn exec(s: &Session, args: &Args) -> anyhow::Result<()> {
    let layout = &s.layout;
    let mut rows = Vec::new();
    let mut freed = 0u64;
    for stage in Stage::ALL {
        let mut u = Usage { stage: stage.to_string(), ..Default::default() };
        for p in children(&layout.stage_dir(stage)) {
            let bytes = size_of(&p);
            if is_staging(&p) {
                u.leftovers += 1;
                u.leftover_bytes += bytes;
                if args.action == Action::Clean {
                    // Taking the key's lock removes its stale staging; a
                    // held lock means a live run owns it.
                    match Entry::for_staging_dir(layout, stage, &p) {
                        Some(e) => {
                            if e.try_lock()?.is_some() {
                                freed += bytes;
                            }
                        }
                        // Only directories we make land here: a symlink (or
                        // file) with a leftover's name is not ours to remove.
                        None if unpack_in_use(&p) || !std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) => {}
                        None => {
                            std::fs::remove_dir_all(&p)?;
                            freed += bytes;
                        }
                    }
                }
            } else {
                u.entries += 1;
                u.bytes += bytes;
                if args.action == Action::Clean && args.all {
                    let e = Entry::new(layout, stage, p.file_name().unwrap_or_default().to_string_lossy());
                    if let Some(_lock) = e.try_lock()? {
                        std::fs::remove_dir_all(&p)?;
                        freed += bytes;
                    }
                }
            }
        }
        rows.push(u);
    }
    // Object directories of builds that failed or were killed.
    let mut work = Usage { stage: "work".into(), ..Default::default() };
    for p in children(&layout.work_dir()) {
        let bytes = size_of(&p);
        work.leftovers += 1;
        work.leftover_bytes += bytes;
        if args.action == Action::Clean {
            let name = p.file_name().unwrap_or_default().to_string_lossy().trim_end_matches(".log").to_string();
            if Entry::new(layout, Stage::Builds, name).try_lock()?.is_some() {
                if p.is_dir() {
                    std::fs::remove_dir_all(&p)?;
                } else {
                    std::fs::remove_file(&p)?;
                }
                freed += bytes;
            }
        }
    }
    rows.push(work);
    let mut boots = Usage { stage: "boots".into(), ..Default::default() };
    for p in children(&layout.boots_dir()) {
        boots.entries += 1;
        boots.bytes += size_of(&p);
        if args.action == Action::Clean {
            std::fs::remove_dir_all(&p)?;
        }
    }
    if args.action == Action::Clean {
        freed += boots.bytes;
    }
    rows.push(boots);
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let mut human = format!("cache {}\n", layout.root().display());
    for r in &rows {
        human.push_str(&format!(
            "  {:8} {:4} entries {:9.1} MiB; leftovers of interrupted runs: {} ({:.1} MiB)\n",
            r.stage,
            r.entries,
            mib(r.bytes),
            r.leftovers,
            mib(r.leftover_bytes)
        ));
    }
    if args.action == Action::Clean {
        human.push_str(&format!("freed {:.1} MiB", mib(freed)));
    } else {
        human.push_str("`xc-convert cache clean` frees leftovers and boot records");
    }
    let value = serde_json::json!({"cache": layout.root(), "usage": rows, "freed_bytes": freed});
    super::emit(&s.ui, &value, human.trim_end());
    Ok(())
}
