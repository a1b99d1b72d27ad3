//! `xc-convert matrix run|cell|collect|report`: flags into a matrix request;
//! the work is in `crate::matrix`.

use super::Session;
use crate::matrix::executor::{self, Executor, Request, Submitted};
use crate::matrix::metadata::{CellRecord, Status};
use crate::matrix::report::{self, Thresholds};
use crate::matrix::schedule::{self, Progress};
use crate::matrix::spec::{self, CellSpec, StageName};
use crate::matrix::cell;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// Run a regression matrix: kernels x profiles x modes, each cell through
/// pull -> analyze -> patch -> config -> build -> boot [-> bench] (the
/// stages the spec lists), with PASS / FAIL / SKIP, duration and reason per
/// stage. A bench cell measures its own image; the report divides each
/// libos cell by the stock cell of the same kernel and profile.
///
/// The spec is a TOML file (see matrices/debian.toml and docs/matrix.md):
///
///   kernels  = ["6.1.*", "6.12.*"]      # every published version; "6.1" = installed; "6.1.176-1"
///   profiles = ["minimal"]
///   modes    = ["stock", "libos"]       # and "libos+xlat"
///   stages   = ["pull", "analyze", "patch", "config"]   # ... "build", "boot", "bench"
///
///   xc-convert matrix run matrices/debian.toml --out results/
///   xc-convert matrix report results/ --against old-results/
///
/// Each cell writes DIR/cells/<id>/{cell.json,log}; the report is
/// DIR/matrix.{json,md,html}. A cell whose record is fresh does nothing, so
/// an interrupted run resumes where it stopped.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: MatrixCommand,
}

#[derive(Debug, clap::Subcommand)]
enum MatrixCommand {
    /// Run every cell that is not fresh, then write the report (exit 1 if a cell failed).
    Run(RunArgs),
    /// Run one cell (what each Slurm array task runs).
    Cell(CellArgs),
    /// Write the report from the cells' records (after `run --no-wait`).
    Collect(CollectArgs),
    /// Write the report again and, with --against, name every regression (exit 1 on one).
    Report(ReportArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The matrix spec (TOML).
    spec: PathBuf,
    /// Output directory (shared by every node with --engine slurm).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Where cells run.
    #[arg(long, value_enum, default_value_t = Engine::Local)]
    engine: Engine,
    /// With --engine slurm: submit and return; `matrix collect DIR` later.
    #[arg(long)]
    no_wait: bool,
    /// ccache's remote storage for every build (e.g. redis://127.0.0.1:6379).
    #[arg(long, value_name = "URL")]
    ccache_remote: Option<String>,
    /// Extra argument for sbatch (repeatable), e.g. --sbatch-arg=--partition=debug.
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    sbatch_arg: Vec<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Engine {
    /// This machine, cells in parallel within its cores and memory.
    Local,
    /// A Slurm job array (sbatch --array), one task per cell.
    Slurm,
}

#[derive(Debug, clap::Args)]
struct CellArgs {
    /// The matrix spec.
    spec: PathBuf,
    /// The cell's id (see DIR/plan.json).
    id: String,
    /// Output directory.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// make -j [default: $SLURM_CPUS_PER_TASK, else the CPUs].
    #[arg(short, long)]
    jobs: Option<usize>,
    /// The engine named in the record.
    #[arg(long, default_value = "local", hide = true)]
    engine_name: String,
}

#[derive(Debug, clap::Args)]
struct CollectArgs {
    /// Output directory of a run.
    dir: PathBuf,
}

#[derive(Debug, clap::Args)]
struct ReportArgs {
    /// Output directory of a run.
    dir: PathBuf,
    /// An older run's directory to compare with.
    #[arg(long, value_name = "OLD_DIR")]
    against: Option<PathBuf>,
    /// bzImage growth (percent) that counts as a regression.
    #[arg(long, default_value_t = 5.0)]
    size_threshold: f64,
    /// Boot time growth (percent) that counts as a regression.
    #[arg(long, default_value_t = 25.0)]
    boot_threshold: f64,
}

/// Run `matrix`.
pub fn exec(s: &Session, args: &Args) -> anyhow::Result<()> {
    match &args.command {
        MatrixCommand::Run(a) => run(s, a),
        MatrixCommand::Cell(a) => run_cell(s, a),
        MatrixCommand::Collect(a) => {
            let summary = write_report(s, &a.dir)?;
            println!("{summary}");
            Ok(())
        }
        MatrixCommand::Report(a) => report_cmd(s, a),
    }
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    Ok(if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir()?.join(p) })
}

fn plan(spec_path: &Path) -> anyhow::Result<(spec::MatrixSpec, Vec<CellSpec>)> {
    let spec = spec::load(spec_path)?;
    let cells = spec::cells(&spec, spec_path, &crate::source::published_versions)?;
    Ok((spec, cells))
}

fn prepare(s: &Session, cells: &[CellSpec]) -> anyhow::Result<()> {
    let mut seen = Vec::new();
    for c in cells {
        if !seen.contains(&c.source_flags) {
            super::prepare_host_for_source(s, &c.source())?;
            seen.push(c.source_flags.clone());
        }
    }
    if cells.iter().any(|c| c.runs(StageName::Config)) {
        super::prepare_host(s, crate::host::KERNEL_BUILD_PACKAGES, "kernel build")?;
    }
    if cells.iter().any(|c| c.runs(StageName::Boot)) {
        super::prepare_host(s, crate::host::BOOT_PACKAGES, "booting images")?;
    }
    Ok(())
}

fn run(s: &Session, a: &RunArgs) -> anyhow::Result<()> {
    let spec_path = absolute(&a.spec)?;
    let out = absolute(&a.out)?;
    let cache = absolute(s.cache())?;
    // Compared as the file system sees them (symlinks resolved).
    let real = |p: &std::path::Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let (real_out, real_cache) = (real(&out), real(&cache));
    if real_out.starts_with(&real_cache) || real_cache.starts_with(&real_out) {
        return Err(crate::matrix::spec::SpecError::OutOverlapsCache { out, cache }.into());
    }
    let (spec, cells) = plan(&spec_path)?;
    std::fs::create_dir_all(&out).map_err(|e| anyhow::anyhow!("creating {}: {e}", out.display()))?;
    build_farm::write_json_atomic(&out.join(report::PLAN), &cells)?;
    if let Some(url) = &a.ccache_remote {
        // Set before any thread starts; make, and with Slurm every task
        // (sbatch exports the environment), inherit it.
        std::env::set_var("CCACHE_REMOTE_STORAGE", url);
    }
    let (cores, memory) = schedule::machine();
    let todo: Vec<CellSpec> = cells.iter().filter(|c| !cell::is_fresh(&out, c)).cloned().collect();
    let slots = schedule::slots(&spec.resources, todo.len(), cores, memory);
    s.status(format!(
        "matrix: {} cells ({} fresh), {} at once with -j{} ({} engine)",
        cells.len(),
        cells.len() - todo.len(),
        slots.parallel,
        slots.jobs,
        match a.engine {
            Engine::Local => "local",
            Engine::Slurm => "slurm",
        }
    ));
    let binary = std::env::current_exe()?;
    let req = Request { spec: &spec_path, cells: &cells, slots, out: &out, cache: &cache };
    let submitted = match a.engine {
        Engine::Local => {
            prepare(s, &todo)?;
            let progress = Lines::new(cells.len());
            let r = executor::Local { ctx: &s.ctx, progress: &progress, binary }.run(&req);
            progress.finish();
            r?
        }
        Engine::Slurm => {
            let req = Request { cells: &todo, ..req };
            executor::Slurm { binary, wait: !a.no_wait, sbatch_args: a.sbatch_arg.clone(), poll: Duration::from_secs(2) }.run(&req)?
        }
    };
    match submitted {
        Submitted::Queued { job } => {
            let v = serde_json::json!({"queued": job, "out": out});
            super::emit(&s.ui, &v, &format!("submitted Slurm job array {job}; when it is done: xc-convert matrix collect {}", out.display()));
            Ok(())
        }
        Submitted::Done => {
            let summary = write_report(s, &out)?;
            let r = report::collect(&out)?;
            super::emit(&s.ui, &r.totals, &summary);
            if r.totals.fail > 0 || !r.totals.missing.is_empty() {
                Err(super::ChecksFailed.into())
            } else {
                Ok(())
            }
        }
    }
}

fn write_report(s: &Session, dir: &Path) -> anyhow::Result<String> {
    let r = report::collect(dir)?;
    let files = report::write(dir, &r)?;
    s.status(format!("report: {}", files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")));
    Ok(format!(
        "{} cells: {} PASS, {} FAIL{}\n{}",
        r.totals.cells,
        r.totals.pass,
        r.totals.fail,
        if r.totals.missing.is_empty() { String::new() } else { format!(", {} without a result", r.totals.missing.len()) },
        dir.join("matrix.html").display()
    ))
}

fn run_cell(s: &Session, a: &CellArgs) -> anyhow::Result<()> {
    let spec_path = absolute(&a.spec)?;
    let out = absolute(&a.out)?;
    let cache = absolute(s.cache())?;
    // The plan written at submission wins: the list of published versions
    // may have changed since.
    let planned: Option<Vec<CellSpec>> = std::fs::read_to_string(out.join(report::PLAN)).ok().and_then(|t| serde_json::from_str(&t).ok());
    let cells = match planned {
        Some(c) => c,
        None => plan(&spec_path)?.1,
    };
    let Some(c) = cells.iter().find(|c| c.id == a.id) else {
        return Err(spec::SpecError::NoSuchCell { path: spec_path, id: a.id.clone(), known: cells.iter().map(|c| c.id.clone()).collect() }.into());
    };
    prepare(s, std::slice::from_ref(c))?;
    let jobs = a
        .jobs
        .or_else(|| std::env::var("SLURM_CPUS_PER_TASK").ok().and_then(|v| v.parse().ok()))
        .unwrap_or_else(|| schedule::machine().0)
        .max(1);
    let binary = std::env::current_exe()?;
    let reproducer = crate::shell::join(&executor::cell_command(&binary, &cache, &spec_path, &c.id, &out));
    let env = cell::CellEnv { jobs, engine: a.engine_name.clone(), reproducer };
    let record = cell::run(&s.ctx, c, &env, &out, &|st| s.status(format!("{}: {}", c.id, st.name())))?;
    super::emit(&s.ui, &record, &summary_line(&record));
    if record.results.status == Status::Fail {
        Err(super::ChecksFailed.into())
    } else {
        Ok(())
    }
}

fn summary_line(r: &CellRecord) -> String {
    let stages: Vec<String> = r.results.stages.iter().filter(|st| st.reason.as_deref() != Some("not in the spec's stages")).map(|st| format!("{} {} {:.1}s", st.stage.name(), st.status.name(), st.seconds)).collect();
    let why = r.results.stages.iter().find(|st| st.status == Status::Fail).and_then(|st| st.reason.clone()).map(|w| format!("\n  {}", shorten(&w, 240))).unwrap_or_default();
    format!("{} {}: {}{why}", r.results.status.name(), r.id, stages.join(", "))
}

/// At most `n` bytes of `s` (on a character boundary), with `...` when cut.
fn shorten(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let cut = (0..=n).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
    format!("{}... (see the cell's log)", &s[..cut])
}

fn report_cmd(s: &Session, a: &ReportArgs) -> anyhow::Result<()> {
    let new = report::load(&a.dir)?;
    report::write(&a.dir, &new)?;
    let Some(old_dir) = &a.against else {
        super::emit(&s.ui, &new.totals, &format!("{} cells: {} PASS, {} FAIL\n{}", new.totals.cells, new.totals.pass, new.totals.fail, a.dir.join("matrix.html").display()));
        return Ok(());
    };
    let old = report::load(old_dir)?;
    let regressions = report::regressions(&old, &new, Thresholds { size_percent: a.size_threshold, boot_percent: a.boot_threshold });
    let human = if regressions.is_empty() {
        format!("no regressions against {} ({} cells compared)", old_dir.display(), new.cells.iter().filter(|c| old.cells.iter().any(|o| o.id == c.id)).count())
    } else {
        let mut h = format!("{} regressions against {}:", regressions.len(), old_dir.display());
        for r in &regressions {
            h.push_str(&format!("\n  {}: {}", r.cell, r.what));
        }
        h
    };
    super::emit(&s.ui, &serde_json::json!({"regressions": regressions}), &human);
    if regressions.is_empty() {
        Ok(())
    } else {
        Err(super::ChecksFailed.into())
    }
}

/// One progress line per running cell plus a totals line (plain status
/// lines when stderr is not a terminal).
struct Lines {
    multi: MultiProgress,
    total: ProgressBar,
    running: Mutex<HashMap<String, ProgressBar>>,
    counts: Mutex<(usize, usize, usize)>,
}

impl Lines {
    fn new(cells: usize) -> Self {
        let multi = MultiProgress::new();
        if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            multi.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let total = multi.add(ProgressBar::new(cells as u64));
        total.set_style(ProgressStyle::with_template("matrix [{bar:30}] {pos}/{len} cells {msg} ({elapsed})").unwrap_or_else(|_| ProgressStyle::default_bar()));
        Self { multi, total, running: Mutex::new(HashMap::new()), counts: Mutex::new((0, 0, 0)) }
    }

    fn line(&self, msg: &str) {
        if self.multi.println(msg).is_err() || self.total.is_hidden() {
            eprintln!("{msg}");
        }
    }

    fn bump(&self, pass: bool, fresh: bool) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if fresh {
            c.2 += 1;
        } else if pass {
            c.0 += 1;
        } else {
            c.1 += 1;
        }
        self.total.inc(1);
        self.total.set_message(format!("{} PASS, {} FAIL, {} fresh", c.0, c.1, c.2));
    }

    fn finish(&self) {
        self.total.finish_and_clear();
    }
}

impl Progress for Lines {
    fn pulling(&self, source: &str) {
        self.line(&format!("xc-convert: matrix: pulling {source}"));
    }

    fn started(&self, c: &CellSpec) {
        let bar = self.multi.insert_before(&self.total, ProgressBar::new_spinner());
        bar.set_style(ProgressStyle::with_template("  {spinner} {prefix}: {msg} ({elapsed})").unwrap_or_else(|_| ProgressStyle::default_spinner()));
        bar.set_prefix(c.id.clone());
        bar.enable_steady_tick(Duration::from_millis(250));
        self.running.lock().unwrap_or_else(|e| e.into_inner()).insert(c.id.clone(), bar);
    }

    fn stage(&self, c: &CellSpec, stage: StageName) {
        if let Some(b) = self.running.lock().unwrap_or_else(|e| e.into_inner()).get(&c.id) {
            b.set_message(stage.name());
        }
    }

    fn fresh(&self, c: &CellSpec) {
        self.line(&format!("xc-convert: matrix: {} fresh", c.id));
        self.bump(true, true);
    }

    fn finished(&self, c: &CellSpec, record: &CellRecord) {
        if let Some(b) = self.running.lock().unwrap_or_else(|e| e.into_inner()).remove(&c.id) {
            b.finish_and_clear();
        }
        self.line(&format!("xc-convert: matrix: {}", summary_line(record)));
        self.bump(record.results.status == Status::Pass, false);
    }
}
