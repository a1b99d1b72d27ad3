//! One cell: pull -> analyze -> patch -> config -> build -> boot through the
//! pipeline library, each stage timed and ending PASS, FAIL or SKIP. A
//! failed stage makes every later one SKIP; its error is the reason. The
//! record is written last (`cells/<id>/cell.json`, atomically), so an
//! interrupted cell has none and runs again; its stages that finished are
//! cache hits then.

use super::metadata::{BenchInfo, BenchRow, BootInfo, BuildInfo, CellRecord, Results, RuntimeInfo, SourceInfo, StageResult, Status, SCHEMA};
use super::spec::{CellSpec, StageName};
use crate::patch::{PatchSet, Plan};
use crate::pipeline::build::{self, BuildRequest, BuiltImage};
use crate::pipeline::configure::{self, ConfiguredSource, ConfiguredTree};
use crate::pipeline::image::ImageSpec;
use crate::pipeline::patch::{self as patch_stage, PatchedTree};
use crate::pipeline::{boot, pull, Context, Event, Reporter};
use crate::profile::Series;
use crate::source::KernelTree;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The file names in a cell's directory.
pub const RECORD: &str = "cell.json";
/// The cell's log.
pub const LOG: &str = "log";

/// Where one cell's files go.
pub fn cell_dir(out: &Path, id: &str) -> PathBuf {
    out.join("cells").join(id)
}

/// The cell's record, if it exists and parses.
pub fn read_record(out: &Path, id: &str) -> Option<CellRecord> {
    let text = std::fs::read_to_string(cell_dir(out, id).join(RECORD)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Whether `cell`'s record is fresh: there, and made from the same request.
pub fn is_fresh(out: &Path, cell: &CellSpec) -> bool {
    read_record(out, &cell.id).is_some_and(|r| r.key == cell.key())
}

/// Why a cell could not record its result (its stages' failures are results, not errors).
#[derive(Debug, thiserror::Error)]
pub enum CellError {
    /// The cell directory or log could not be created.
    #[error(transparent)]
    Io(#[from] build_farm::PathError),
    /// `cell.json` could not be written.
    #[error(transparent)]
    Record(#[from] build_farm::PublishError),
}

/// What else the runner says about a cell's environment.
#[derive(Debug, Clone)]
pub struct CellEnv {
    /// make -j.
    pub jobs: usize,
    /// `local` or `slurm`.
    pub engine: String,
    /// The command that runs this cell again.
    pub reproducer: String,
}

/// Writes a cell's events to its log, one timestamped line each.
struct LogReporter {
    file: Mutex<std::fs::File>,
    started: Instant,
}

impl Reporter for LogReporter {
    fn event(&self, event: Event) {
        let line = match event {
            Event::Status(s) => s,
            Event::Detail(s) => format!("  {s}"),
            Event::Waiting { stage, entry, lock } => format!("waiting for {stage} entry {entry} (lock {})", lock.display()),
            Event::Rebuilding { stage, reasons } => format!("{stage}: rebuilding because {}", reasons.join(", ")),
            Event::Console(s) => format!("  | {s}"),
            Event::ProgressStart { .. } | Event::Progress { .. } | Event::ProgressEnd => return,
        };
        if let Ok(mut f) = self.file.lock() {
            let _ = writeln!(f, "[{:7.1}s] {line}", self.started.elapsed().as_secs_f64());
        }
    }
}

/// The values handed from stage to stage inside a cell.
#[derive(Default)]
struct Flow {
    tree: Option<KernelTree>,
    plan: Option<Plan>,
    set: Option<PatchSet>,
    patched: Option<PatchedTree>,
    configured: Option<ConfiguredTree>,
    image: Option<BuiltImage>,
    boot: Option<BootInfo>,
    bench: Option<BenchInfo>,
    problems: Vec<String>,
}

/// A stage that did not fail: PASS with a note, or SKIP (not applicable).
enum Done {
    Pass(Option<String>),
    NotApplicable(String),
}

/// Run `cell` against the cache of `ctx`, writing its log and record under
/// `out`. `on_stage` hears each stage as it starts (the progress line).
pub fn run(ctx: &Context, cell: &CellSpec, env: &CellEnv, out: &Path, on_stage: &dyn Fn(StageName)) -> Result<CellRecord, CellError> {
    let dir = cell_dir(out, &cell.id);
    std::fs::create_dir_all(&dir).map_err(build_farm::at("create", &dir))?;
    let log_path = dir.join(LOG);
    let file = std::fs::File::create(&log_path).map_err(build_farm::at("create", &log_path))?;
    let started_at = unix_now();
    let clock = Instant::now();
    let log = Arc::new(LogReporter { file: Mutex::new(file), started: clock });
    let ctx = Context { layout: ctx.layout.clone(), reporter: log.clone() };
    ctx.status(format!("cell {}: kernel {} profile {} mode {} ({})", cell.id, cell.kernel, cell.profile, cell.mode.name(), env.engine));

    let mut flow = Flow::default();
    let mut stages = Vec::new();
    let mut failed: Option<StageName> = None;
    for stage in StageName::ALL {
        let skip = |reason: String| StageResult { stage, status: Status::Skip, seconds: 0.0, reason: Some(reason) };
        if !cell.runs(stage) {
            stages.push(skip("not in the spec's stages".into()));
            continue;
        }
        if let Some(f) = failed {
            stages.push(skip(format!("{} failed", f.name())));
            continue;
        }
        on_stage(stage);
        ctx.status(format!("== {}", stage.name()));
        let t = Instant::now();
        let result = run_stage(&ctx, cell, env, &dir, stage, &mut flow);
        let seconds = t.elapsed().as_secs_f64();
        let r = match result {
            Ok(Done::Pass(note)) => StageResult { stage, status: Status::Pass, seconds, reason: note },
            Ok(Done::NotApplicable(why)) => StageResult { stage, status: Status::Skip, seconds, reason: Some(why) },
            Err(reason) => {
                failed = Some(stage);
                StageResult { stage, status: Status::Fail, seconds, reason: Some(reason) }
            }
        };
        ctx.status(format!("{} {} in {:.1}s{}", r.stage.name(), r.status.name(), seconds, r.reason.as_deref().map(|s| format!(": {s}")).unwrap_or_default()));
        stages.push(r);
    }

    let record = record(cell, env, &flow, stages, started_at, clock.elapsed().as_secs_f64());
    ctx.status(format!("cell {}: {}", cell.id, record.results.status.name()));
    build_farm::write_json_atomic(&dir.join(RECORD), &record)?;
    Ok(record)
}

/// An error and its causes on one line.
fn chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn run_stage(ctx: &Context, cell: &CellSpec, env: &CellEnv, dir: &Path, stage: StageName, flow: &mut Flow) -> Result<Done, String> {
    let set_name = cell.mode.image_mode().patch_set();
    match stage {
        StageName::Pull => {
            let (tree, hit) = pull::run(ctx, &cell.source()).map_err(|e| chain(&e))?;
            flow.tree = Some(tree);
            Ok(Done::Pass(hit.then(|| "cached".to_string())))
        }
        StageName::Analyze => {
            let Some(set_name) = set_name else { return Ok(Done::NotApplicable("stock mode applies no patch set".into())) };
            let tree = flow.tree.as_ref().ok_or("no tree")?;
            let set = PatchSet::builtin(set_name).map_err(|e| chain(&e))?;
            let plan = patch_stage::plan(tree, &set).map_err(|e| chain(&e))?;
            if !plan.is_clean() {
                // Name the edit, its file and the anchor that no longer matches.
                flow.problems = plan
                    .edits
                    .iter()
                    .filter_map(|e| e.problem.as_ref().map(|p| format!("{} edit {} in {}: anchor `{}`: {p}", e.group, e.edit, e.file, e.anchor)))
                    .collect();
                let n = flow.problems.len();
                return Err(format!("patch set `{set_name}` does not apply to Linux {} ({n} of {} edits): {}", tree.version, plan.edits.len(), flow.problems.join("; ")));
            }
            let note = format!("{} edits located", plan.edits.len());
            flow.plan = Some(plan);
            flow.set = Some(set);
            Ok(Done::Pass(Some(note)))
        }
        StageName::Patch => {
            if set_name.is_none() {
                return Ok(Done::NotApplicable("stock mode applies no patch set".into()));
            }
            let (tree, set, plan) = (flow.tree.as_ref().ok_or("no tree")?, flow.set.as_ref().ok_or("no set")?, flow.plan.as_ref().ok_or("no plan")?);
            let patched = patch_stage::run_planned(ctx, tree, set, plan).map_err(|e| chain(&e))?;
            let note = format!("{} patches{}", patched.patches.len(), if patched.cache_hit { ", cached" } else { "" });
            flow.patched = Some(patched);
            Ok(Done::Pass(Some(note)))
        }
        StageName::Config => {
            let tree = flow.tree.clone().ok_or("no tree")?;
            let catalog = cell.profile_ref().catalog().map_err(|e| chain(&e))?;
            let series = Series(tree.version.version, tree.version.patchlevel);
            let resolved = match cell.mode.image_mode().profile_layer() {
                None => catalog.resolve(&cell.profile, series),
                Some(layer) => catalog.resolve_with_layer(&cell.profile, series, layer),
            }
            .map_err(|e| chain(&e))?;
            let source = match flow.patched.clone() {
                Some(p) => ConfiguredSource::Converted(Box::new(p)),
                None => ConfiguredSource::Stock(tree),
            };
            let configured = configure::run(ctx, &source, &resolved).map_err(|e| chain(&e))?;
            let note = format!("{} options verified{}", configured.verified, if configured.cache_hit { ", cached" } else { "" });
            flow.configured = Some(configured);
            Ok(Done::Pass(Some(note)))
        }
        StageName::Build => {
            let configured = flow.configured.clone().ok_or("no configuration")?;
            let req = BuildRequest {
                configured,
                mode: cell.mode.image_mode(),
                jobs: env.jobs,
                reproduce: reproduce(cell),
                keep_objdir: false,
                verify_hashes: false,
            };
            let image = build::run(ctx, &req).map_err(|e| chain(&e))?;
            let note = image.cache_hit.then(|| "cached".to_string());
            flow.image = Some(image);
            Ok(Done::Pass(note))
        }
        StageName::Boot => {
            let image = flow.image.as_ref().ok_or("no image")?;
            let out = dir.join("boot");
            if out.exists() {
                std::fs::remove_dir_all(&out).map_err(|e| format!("removing the last boot's {}: {e}", out.display()))?;
            }
            let req = boot::BootRequest {
                accel: cell.boot.accel(),
                timeout: std::time::Duration::from_secs(cell.boot.timeout),
                memory_mb: cell.boot.memory_mib,
                out: Some(out),
                translate: cell.mode.translate(),
                ..boot::BootRequest::new(image.dir.clone(), crate::guest::BEHAVIOUR_SUITE.iter().map(|s| s.to_string()).collect())
            };
            let report = boot::run(ctx, &req).map_err(|e| chain(&e))?;
            let failures: Vec<String> = report.failures.iter().map(|f| f.to_string()).collect();
            flow.boot = Some(BootInfo { passed: report.passed, seconds: report.seconds, failures: failures.clone(), console_log: report.console_log.clone() });
            if report.passed {
                Ok(Done::Pass(Some(format!("suite passed in {:.1}s", report.seconds))))
            } else {
                Err(format!("boot checks failed: {}", failures.join("; ")))
            }
        }
        StageName::Bench => {
            use crate::pipeline::bench;
            let image = flow.image.as_ref().ok_or("no image")?;
            let accel = cell.boot.accel();
            let col = bench::default_column(cell.mode.image_mode());
            let settings = bench::BenchSettings {
                iterations: cell.bench.iterations,
                accel,
                timeout: std::time::Duration::from_secs(cell.boot.timeout),
                memory_mb: cell.boot.memory_mib,
                cpus: 1,
                tsc_khz: bench::tsc::pinned(cell.bench.tsc_khz, accel).map_err(|e| chain(&e))?,
            };
            let out = dir.join("bench");
            if out.exists() {
                std::fs::remove_dir_all(&out).map_err(|e| format!("removing the last bench's {}: {e}", out.display()))?;
            }
            let run = bench::measure(ctx, &settings, col, &image.dir, Some(out)).map_err(|e| chain(&e))?;
            // Every row bench knows, each a positive value, or the stage fails.
            let matrix = bench::matrix::Matrix::new(&[(col.name.to_owned(), run.output.clone())])
                .map_err(|e| format!("{e}; console: {}", run.console_log.display()))?;
            let rows: Vec<BenchRow> = matrix.rows.iter().map(|r| BenchRow { name: r.name.clone(), ns: r.ns[0] }).collect();
            let note = format!("{} rows as column {}, getppid {:.0} ns ({})", rows.len(), col.name, rows[0].ns, accel.qemu_name());
            flow.bench = Some(BenchInfo {
                column: col.name.to_owned(),
                accel: accel.qemu_name().to_owned(),
                iterations: settings.iterations,
                tsc_khz: settings.tsc_khz,
                rows,
                seconds: run.boot_seconds,
                console_log: run.console_log,
            });
            Ok(Done::Pass(Some(note)))
        }
    }
}

/// The `build` command line for this cell's image.
fn reproduce(cell: &CellSpec) -> String {
    let spec = ImageSpec { source: cell.source(), profile: cell.profile_ref(), mode: cell.mode.image_mode() };
    crate::cli::args::reproduce_line("build", &spec)
}

fn record(cell: &CellSpec, env: &CellEnv, flow: &Flow, stages: Vec<StageResult>, started_at: u64, seconds: f64) -> CellRecord {
    let status = if stages.iter().any(|s| s.status == Status::Fail) { Status::Fail } else { Status::Pass };
    let manifest = flow.image.as_ref().map(|i| &i.manifest);
    let toolchain = crate::host::Toolchain::detect().ok();
    CellRecord {
        schema: SCHEMA,
        id: cell.id.clone(),
        key: cell.key(),
        mode: cell.mode,
        build: BuildInfo {
            kernel: cell.kernel.clone(),
            profile: cell.profile.clone(),
            mode: cell.mode.name().to_string(),
            jobs: env.jobs,
            config_key: flow.configured.as_ref().map(|c| c.key.clone()),
            build_key: manifest.map(|m| m.build_key.clone()),
            image_dir: flow.image.as_ref().map(|i| i.dir.clone()),
            image_size: manifest.map(|m| m.image_size),
            build_seconds: manifest.map(|m| m.build_seconds),
            reproduce: Some(reproduce(cell)),
        },
        results: Results { status, stages, problems: flow.problems.clone(), boot: flow.boot.clone(), bench: flow.bench.clone() },
        source: SourceInfo {
            request: cell.source_flags.clone(),
            version: flow.tree.as_ref().map(|t| t.version.to_string()),
            source_hash: flow.tree.as_ref().map(|t| t.source_hash.clone()),
            origin: flow.tree.as_ref().map(|t| t.origin.clone()),
        },
        tools: serde_json::json!({
            "xc_convert": crate::pipeline::TOOL_VERSION,
            "gcc": toolchain.as_ref().map(|t| t.gcc.clone()),
            "ld": toolchain.as_ref().map(|t| t.ld.clone()),
            "make": toolchain.as_ref().map(|t| t.make.clone()),
            "ccache": toolchain.as_ref().and_then(|t| t.ccache.clone()),
            "ccache_remote": std::env::var("CCACHE_REMOTE_STORAGE").ok(),
        }),
        runtime: RuntimeInfo {
            engine: env.engine.clone(),
            host: hostname(),
            slurm_job: std::env::var("SLURM_ARRAY_JOB_ID").ok().map(|j| format!("{j}_{}", std::env::var("SLURM_ARRAY_TASK_ID").unwrap_or_default())),
            started_at,
            finished_at: unix_now(),
            seconds,
        },
        reproducer_cmdline: env.reproducer.clone(),
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default()
}
