//! Stage 2 (libos mode): convert a pristine tree with a patch set.
//!
//! The result is a new tree in the cache (hard links to the pristine files,
//! fresh files where edits landed) plus the same change as a quilt series.
//! Its identity is the hash of the pristine tree and of the edited files'
//! contents, so patching again is a lookup, the configured and built results
//! that depend on it change whenever an edit's output does, and rewording a
//! patch description does not force a kernel rebuild.

use super::Context;
use crate::kconfig::{KconfigDb, KconfigError};
use crate::patch::{self, dep3, facts::Facts, PatchError, PatchSet, Plan};
use crate::profile::Series;
use crate::source::date::{source_epoch, CivilDate};
use crate::source::KernelTree;
use build_farm::{Entry, EntryError, Layout, Staging, Stage};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Errors of the patch stage.
#[derive(Debug, thiserror::Error)]
pub enum PatchStageError {
    /// The set does not apply (or is invalid).
    #[error(transparent)]
    Patch(#[from] PatchError),
    /// The tree's Kconfig files could not be read (the plan needs them).
    #[error("reading the Kconfig files of {tree}: {source}")]
    Kconfig {
        /// The tree.
        tree: PathBuf,
        /// Why.
        #[source]
        source: KconfigError,
    },
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] build_farm::PathError),
    /// The cache entry could not be looked up, locked or published.
    #[error(transparent)]
    Cache(#[from] EntryError),
    /// `--export` names a directory that already holds files (or a file).
    #[error("--export {}: already exists and is not an empty directory; remove it or choose another directory", .dir.display())]
    ExportExists {
        /// The directory asked for.
        dir: PathBuf,
    },
}


use build_farm::at as io_err;

/// The hand-off from the patch stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PatchedTree {
    /// The converted tree (its `source_hash` is this stage's key).
    pub tree: KernelTree,
    /// The tree it was made from.
    pub pristine: KernelTree,
    /// Patch set name.
    pub set: String,
    /// Hash of the rendered series.
    pub series_hash: String,
    /// Hash of the edited files' contents (this tree's identity).
    pub content_hash: String,
    /// Directory with the quilt series (`series` + one .patch per group).
    pub series_dir: PathBuf,
    /// Patch file names in order.
    pub patches: Vec<String>,
    /// Whether it was already in the cache.
    #[serde(skip)]
    pub cache_hit: bool,
}

impl PatchedTree {
    /// Copy the quilt series (`series` and the patch files) into `dest`,
    /// which must exist.
    pub fn copy_series_to(&self, dest: &std::path::Path) -> std::io::Result<()> {
        for name in self.patches.iter().map(String::as_str).chain(["series"]) {
            std::fs::copy(self.series_dir.join(name), dest.join(name))?;
        }
        Ok(())
    }

    /// The record as stored: paths relative to the cache root.
    fn to_record(&self, layout: &Layout) -> PatchedTree {
        let mut r = self.clone();
        r.tree.root = layout.relative(&r.tree.root);
        r.pristine.root = layout.relative(&r.pristine.root);
        r.series_dir = layout.relative(&r.series_dir);
        r
    }
}

/// Plan a set against a tree (no writes): the basis of `analyze` and `patch`.
pub fn plan(tree: &KernelTree, set: &PatchSet) -> Result<Plan, PatchStageError> {
    let db = KconfigDb::load(&tree.root, "x86").map_err(|source| PatchStageError::Kconfig { tree: tree.root.clone(), source })?;
    let facts = Facts::collect(tree, &db);
    let series = Series(tree.version.version, tree.version.patchlevel);
    let root = tree.root.clone();
    Ok(patch::plan(set, &tree.version.to_string(), series, &facts, &|f| std::fs::read_to_string(root.join(f)).ok()))
}

/// Apply `set` to `tree`, or find the result in the cache.
pub fn run(ctx: &Context, tree: &KernelTree, set: &PatchSet) -> Result<PatchedTree, PatchStageError> {
    run_planned(ctx, tree, set, &plan(tree, set)?)
}

/// [`run`] with the plan already made (by [`plan`], of the same tree and
/// set), for callers that also export it.
pub fn run_planned(ctx: &Context, tree: &KernelTree, set: &PatchSet, plan: &Plan) -> Result<PatchedTree, PatchStageError> {
    if !plan.is_clean() {
        return Err(PatchError::NotApplicable { set: set.name.clone(), version: tree.version.to_string(), problems: plan.problems() }.into());
    }
    let fp = super::fingerprint().with_hash("source", &tree.source_hash).with_hash("edits", &plan.content_hash());
    let entry = Entry::new(&ctx.layout, Stage::Patched, format!("{}-{}-{}", tree.version, set.name, fp.short_key()));
    let dir = entry.dir();
    // On a hit the paths are the caller's tree and this entry's directory:
    // the cache may have moved since the record was written.
    let load = || -> Result<Option<PatchedTree>, PatchStageError> {
        Ok(entry.read_record::<PatchedTree>()?.map(|mut p| {
            p.tree.root = dir.join("tree");
            p.pristine = tree.clone();
            p.cache_hit = true;
            p
        }))
    };
    let (mut patched, _) = build_farm::get_or_create(&entry, &ctx.on_wait(&entry), load, |staging: Staging| {
        ctx.explain_rebuild(Stage::Patched, &format!("{}-{}-", tree.version, set.name), &fp);
        ctx.status(format!(
            "patching Linux {} with `{}` ({} edits in {} patches)",
            tree.version,
            set.name,
            plan.edits.len(),
            plan.patches.len()
        ));
        let staged_tree = staging.path().join("tree");
        patch::apply::patched_copy(&tree.root, &staged_tree, &plan.files).map_err(io_err("write patched copy", &staged_tree))?;
        let patched = PatchedTree {
            tree: KernelTree {
                root: dir.join("tree"),
                version: tree.version.clone(),
                source_hash: fp.key(),
                origin: format!("{} + xc-convert `{}` patches", tree.origin, set.name),
            },
            pristine: tree.clone(),
            set: set.name.clone(),
            series_hash: String::new(),
            content_hash: plan.content_hash(),
            series_dir: PathBuf::new(),
            patches: Vec::new(),
            cache_hit: false,
        };
        build_farm::write_json_atomic(&staging.path().join("plan.json"), plan)?;
        build_farm::write_json_atomic(&staging.path().join("fingerprint.json"), &fp)?;
        build_farm::write_json_atomic(&staging.path().join(Stage::Patched.record_name()), &patched.to_record(&ctx.layout))?;
        staging.publish()?;
        Ok(patched)
    })?;
    // The series text (descriptions included) is stored per series hash
    // beside the tree: rewording a patch adds a series, not a rebuild.
    patched.series_hash = plan.series_hash();
    patched.series_dir = dir.join(format!("series-{}", &patched.series_hash[..16]));
    patched.patches = plan.patches.iter().map(|p| p.file_name.clone()).collect();
    if !patched.series_dir.join("series").is_file() {
        let staging = Staging::new(&patched.series_dir)?;
        for p in &plan.patches {
            let f = staging.path().join(&p.file_name);
            std::fs::write(&f, &p.text).map_err(io_err("write", &f))?;
        }
        let f = staging.path().join("series");
        std::fs::write(&f, patched.patches.join("\n") + "\n").map_err(io_err("write", &f))?;
        staging.publish()?;
    }
    Ok(patched)
}

/// What [`export`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct QuiltExport {
    /// The directory.
    pub dir: PathBuf,
    /// Its files: `series`, then the patches in order.
    pub files: Vec<String>,
    /// The date in every patch's `Last-Update:` (the pristine tree's).
    pub last_update: String,
}

/// Refuse an export directory that exists and is not empty (or is not a
/// directory): a packager's files there are never overwritten or mixed in.
pub fn check_export_dir(dir: &Path) -> Result<(), PatchStageError> {
    let refuse = || PatchStageError::ExportExists { dir: dir.to_path_buf() };
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("inspect", dir)(e).into()),
        Ok(m) if !m.is_dir() => Err(refuse()),
        Ok(_) => {
            let mut entries = std::fs::read_dir(dir).map_err(io_err("read directory", dir))?;
            if entries.next().is_some() {
                Err(refuse())
            } else {
                Ok(())
            }
        }
    }
}

/// Write `plan`'s series into `dir` as a quilt directory for packagers:
/// `series` plus one patch per group with a DEP-3 header dated from
/// `pristine` (the tree the patches apply to), never from the clock, so
/// the same conversion exports the same bytes. Written beside `dir` and
/// renamed into place: an error leaves nothing behind.
pub fn export(plan: &Plan, pristine: &KernelTree, dir: &Path) -> Result<QuiltExport, PatchStageError> {
    check_export_dir(dir)?;
    let date = CivilDate::of_epoch(source_epoch(&pristine.root));
    let staging = Staging::new(dir)?;
    let mut files = vec!["series".to_string()];
    for p in &plan.patches {
        let f = staging.path().join(&p.file_name);
        std::fs::write(&f, dep3::render_patch(p, date)).map_err(io_err("write", &f))?;
        files.push(p.file_name.clone());
    }
    let f = staging.path().join("series");
    let names: String = plan.patches.iter().map(|p| format!("{}\n", p.file_name)).collect();
    std::fs::write(&f, names).map_err(io_err("write", &f))?;
    staging.publish_new()?;
    Ok(QuiltExport { dir: dir.to_path_buf(), files, last_update: date.iso() })
}
