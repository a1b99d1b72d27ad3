//! Stage 1b (libos mode): convert a pristine tree with a patch set.
//!
//! The result is a new tree in the cache (hard links to the pristine files,
//! fresh files where edits landed) plus the same change as a quilt series.
//! Its identity is the hash of the pristine tree and of the edited files'
//! contents, so patching again is a lookup, the configured and built results
//! that depend on it change whenever an edit's output does, and rewording a
//! patch description does not force a kernel rebuild.

use super::Context;
use crate::kconfig::KconfigDb;
use crate::patch::{self, facts::Facts, PatchError, PatchSet, Plan};
use crate::profile::Series;
use crate::source::KernelTree;
use build_farm::{Fingerprint, Staging};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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
}

/// Plan a set against a tree (no writes): the basis of `analyze` and `patch`.
pub fn plan(tree: &KernelTree, set: &PatchSet) -> anyhow::Result<Plan> {
    let db = KconfigDb::load(&tree.root, "x86")?;
    let facts = Facts::collect(tree, &db);
    let series = Series(tree.version.version, tree.version.patchlevel);
    let root = tree.root.clone();
    Ok(patch::plan(set, &tree.version.to_string(), series, &facts, &|f| std::fs::read_to_string(root.join(f)).ok()))
}

/// Apply `set` to `tree`, or find the result in the cache.
pub fn run(ctx: &Context, tree: &KernelTree, set: &PatchSet) -> anyhow::Result<PatchedTree> {
    let plan = plan(tree, set)?;
    if !plan.is_clean() {
        return Err(PatchError::NotApplicable { set: set.name.clone(), version: tree.version.to_string(), problems: plan.problems() }.into());
    }
    let fp = Fingerprint::new().with_hash("source", &tree.source_hash).with_hash("edits", &plan.content_hash());
    let dir = ctx.cache.join("patched").join(format!("{}-{}-{}", tree.version, set.name, fp.short_key()));
    let record = dir.join("patched.json");
    let mut patched = match std::fs::read_to_string(&record).ok().and_then(|t| serde_json::from_str::<PatchedTree>(&t).ok()) {
        Some(mut p) => {
            // Paths are recomputed: the cache may have moved.
            p.tree.root = dir.join("tree");
            p.cache_hit = true;
            p
        }
        None => {
            ctx.ui.status(&format!(
                "patching Linux {} with `{}` ({} edits in {} patches)",
                tree.version,
                set.name,
                plan.edits.len(),
                plan.patches.len()
            ));
            let staging = Staging::new(&dir)?;
            patch::apply::patched_copy(&tree.root, &staging.path().join("tree"), &plan.files)?;
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
            build_farm::write_json_atomic(&staging.path().join("patched.json"), &patched)?;
            build_farm::write_json_atomic(&staging.path().join("plan.json"), &plan)?;
            staging.publish()?;
            patched
        }
    };
    // The series text (descriptions included) is stored per series hash
    // beside the tree: rewording a patch adds a series, not a rebuild.
    patched.series_hash = plan.series_hash();
    patched.series_dir = dir.join(format!("series-{}", &patched.series_hash[..16]));
    patched.patches = plan.patches.iter().map(|p| p.file_name.clone()).collect();
    if !patched.series_dir.join("series").is_file() {
        let staging = Staging::new(&patched.series_dir)?;
        for p in &plan.patches {
            std::fs::write(staging.path().join(&p.file_name), &p.text)?;
        }
        std::fs::write(staging.path().join("series"), patched.patches.join("\n") + "\n")?;
        staging.publish()?;
    }
    Ok(patched)
}
