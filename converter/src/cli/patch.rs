//! `xc-convert analyze` and `xc-convert patch`

use super::source_args::SourceArgs;
use crate::patch::PatchSet;
use super::Session;
use crate::pipeline;
use std::path::PathBuf;

/// Which patch set: built in, or a directory of TOML files.
#[derive(Debug, Clone, clap::Args)]
pub struct SetArgs {
    /// Built-in patch set.
    #[arg(long, default_value = "libos")]
    pub set: String,
    /// Use the patch set in this directory instead (its series.toml and group files).
    #[arg(long, value_name = "DIR")]
    pub patches_dir: Option<PathBuf>,
}

impl SetArgs {
    fn load(&self) -> anyhow::Result<PatchSet> {
        Ok(match &self.patches_dir {
            Some(d) => PatchSet::from_dir(d)?,
            None => PatchSet::builtin(&self.set)?,
        })
    }
}

/// Find the conversion points in a kernel tree and say whether it can be converted.
///
/// Plans the patch set against the tree without writing anything: every
/// edit's anchor is looked up in its file, and each is reported as found
/// (with its line) or missing/ambiguous. Exit status 0 when the tree can be
/// converted, 1 when it cannot.
#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    set: SetArgs,
}

/// Generate the ring-0 patch series and a converted copy of the tree.
///
/// Works on a copy of the cached tree (never on yours), all or nothing:
/// a missing or ambiguous anchor stops it before any file is written. The
/// result is cached by the hash of the tree and the rendered series, so
/// running it again is a lookup. The series is a quilt directory (`series`
/// plus one unified diff per group) that `patch -p1` or `git apply` apply to
/// a pristine tree with the same result.
#[derive(Debug, clap::Args)]
pub struct PatchArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    set: SetArgs,
    /// Also copy the quilt series into this directory (created; must not exist).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Write the series for distribution packagers into DIR: `series` plus
    /// one patch per group, each with a DEP-3 header (Description, Origin,
    /// Forwarded: not-needed, Last-Update from the source tree's date), for
    /// `quilt push -a` or debian/patches on the pristine tree of this exact
    /// version. DIR must not exist or be empty; it is written whole or not at all.
    #[arg(long, value_name = "DIR")]
    export: Option<PathBuf>,
}

/// Run `analyze`.
pub fn exec_analyze(ctx: &Session, args: &AnalyzeArgs) -> anyhow::Result<()> {
    super::prepare_host_for_source(ctx, &args.source.spec())?;
    let set = args.set.load()?;
    let (tree, _) = pipeline::pull::run(ctx, &args.source.spec())?;
    let plan = pipeline::patch::plan(&tree, &set)?;
    let mut human = format!("patch set `{}` on Linux {} ({}):\n", set.name, tree.version, tree.origin);
    for e in &plan.edits {
        let status = match (&e.problem, e.line) {
            (Some(p), _) => format!("MISSING  {p}"),
            (None, Some(l)) => format!("ok       line {l}: {}", e.anchor),
            (None, None) => "ok       (new file)".to_string(),
        };
        human.push_str(&format!("  {:<22} {:<45} {status}\n", format!("{} #{}", e.group, e.edit), e.file));
    }
    for g in &plan.skipped_groups {
        human.push_str(&format!("  {g:<22} (not for this kernel version)\n"));
    }
    let ok = plan.is_clean();
    human.push_str(&if ok {
        format!("Linux {} can be converted: all {} anchors found.", tree.version, plan.edits.len())
    } else {
        format!("Linux {} cannot be converted: {} of {} edits have problems.", tree.version, plan.problems().len(), plan.edits.len())
    });
    let value = serde_json::json!({"convertible": ok, "version": tree.version, "plan": plan});
    super::emit(&ctx.ui, &value, &human);
    if ok {
        Ok(())
    } else {
        Err(super::ChecksFailed.into())
    }
}

/// Run `patch`.
pub fn exec_patch(ctx: &Session, args: &PatchArgs) -> anyhow::Result<()> {
    super::prepare_host_for_source(ctx, &args.source.spec())?;
    let set = args.set.load()?;
    // Refused output directories are known before any work is done.
    if let Some(out) = &args.out {
        // Publishing onto an existing directory keeps the old one (right
        // for cache entries, wrong for a user's --out).
        if out.exists() {
            anyhow::bail!("--out {}: already exists; remove it or choose another directory", out.display());
        }
    }
    if let Some(dir) = &args.export {
        pipeline::patch::check_export_dir(dir)?;
    }
    let (tree, _) = pipeline::pull::run(ctx, &args.source.spec())?;
    let plan = pipeline::patch::plan(&tree, &set)?;
    let patched = pipeline::patch::run_planned(ctx, &tree, &set, &plan)?;
    let export = args.export.as_deref().map(|dir| pipeline::patch::export(&plan, &patched.pristine, dir)).transpose()?;
    if let Some(out) = &args.out {
        let staging = build_farm::Staging::new(out)?;
        patched.copy_series_to(staging.path())?;
        staging.publish()?;
    }
    let mut human = format!(
        "Linux {} converted with `{}`: {} patches (series {}){}\nseries: {}\n{}",
        patched.tree.version,
        patched.set,
        patched.patches.len(),
        &patched.series_hash[..16],
        if patched.cache_hit { " (cached)" } else { "" },
        patched.series_dir.display(),
        patched.tree.root.display()
    );
    // The exported directory is the last line: what a script wants next.
    if let Some(e) = &export {
        human.push_str(&format!("\nquilt series with DEP-3 headers (Last-Update {}):\n{}", e.last_update, e.dir.display()));
    }
    let value = serde_json::json!({"patched": patched, "cache_hit": patched.cache_hit, "export": export});
    super::emit(&ctx.ui, &value, &human);
    Ok(())
}
