//! `xc-convert bench`: boot the stock and libos images of one kernel and
//! profile in four configurations under the same VMM, run `xc_bench` in
//! each, and put what it measured side by side.
//!
//! Not a pipeline stage of its own: it is four runs of the boot stage
//! ([`super::boot::run`]) and a table. Nothing is cached: a measurement is
//! an experiment, like a boot.

pub mod matrix;
pub mod path;
pub mod tsc;

use super::boot::{BootReport, BootRequest};
use super::build::{load_manifest, Manifest, Mode};
use super::Context;
use crate::qemu::Accel;
use matrix::{GuestOutput, Matrix, MatrixError};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The guest program that measures (converter/guest/xc_bench.c).
pub const PROGRAM: &str = "xc_bench";

/// One column of the table: an image and the kernel command-line words
/// added to the default ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Column header and JSON key.
    pub name: &'static str,
    /// Which of the two images boots.
    pub mode: Mode,
    /// Extra kernel command-line words.
    pub cmdline: &'static [&'static str],
    /// What this column isolates.
    pub what: &'static str,
    /// Whether its system calls should go through the entry table (the
    /// guest's counters are checked against it); `None`: no table (stock).
    pub through_table: Option<bool>,
}

/// The four columns, baseline first. Stock twice so the table separates
/// what turning the mitigations off buys from what the conversion buys (a
/// ring-0 kernel has no user/kernel page-table switch to pay for); libos
/// twice so it separates running at CPL 0 (still entering by SYSCALL) from
/// entering through the table.
pub const COLUMNS: &[Column] = &[
    Column { name: "stock", mode: Mode::Stock, cmdline: &[], what: "stock image, default command line", through_table: None },
    Column {
        name: "stock-nomitig",
        mode: Mode::Stock,
        cmdline: &["mitigations=off", "nopti"],
        what: "stock image with mitigations=off nopti",
        through_table: None,
    },
    Column {
        name: "libos",
        mode: Mode::Libos,
        cmdline: &["xc_abom=off"],
        what: "libos image, processes at CPL 0, system calls still by SYSCALL (online translation off)",
        through_table: Some(false),
    },
    Column {
        name: "libos+xlat",
        mode: Mode::Libos,
        cmdline: &[],
        what: "libos image, default: each `mov $nr,%eax; syscall` site becomes a call through the entry table the first time it runs",
        through_table: Some(true),
    },
];

/// xc_bench's base iteration count unless told otherwise: each of the 3
/// timed batches of a row takes ~0.1 s under TCG.
pub const DEFAULT_ITERATIONS: u64 = 400_000;

/// The column an image of `mode` boots as on its default command line
/// (stock; libos with online translation on): what a matrix cell measures.
pub fn default_column(mode: Mode) -> &'static Column {
    COLUMNS.iter().find(|c| c.mode == mode && c.cmdline.is_empty()).expect("COLUMNS has a default-command-line column per mode")
}

/// How every column boots: the same for all of them, so their ratios
/// compare kernels, not settings. Also what a matrix cell's bench stage
/// measures its one image with.
#[derive(Debug, Clone)]
pub struct BenchSettings {
    /// xc_bench's base iteration count (the getppid row's; see xc_bench.c).
    pub iterations: u64,
    /// TCG or KVM: the same for every column.
    pub accel: Accel,
    /// Per boot.
    pub timeout: Duration,
    /// Guest memory in MiB.
    pub memory_mb: u32,
    /// Virtual CPUs of every boot.
    pub cpus: u32,
    /// `tsc_early_khz=` for every boot (see [`tsc`]); None leaves the
    /// kernel to calibrate.
    pub tsc_khz: Option<u64>,
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchRequest {
    /// Image directory of the stock kernel.
    pub stock: PathBuf,
    /// Image directory of the libos kernel (same version and profile).
    pub libos: PathBuf,
    /// How every column boots.
    pub settings: BenchSettings,
}

/// Why a bench run has no result.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// --stock given a libos image or the other way round.
    #[error("--{flag} {dir}: the image is a {found} kernel, not {flag}")]
    WrongMode { flag: Mode, dir: PathBuf, found: Mode },
    /// The two images are not the same kernel and profile.
    #[error("the images differ: stock is Linux {stock} ({stock_profile}), libos is Linux {libos} ({libos_profile}); compare one kernel and profile")]
    Mismatch { stock: String, stock_profile: String, libos: String, libos_profile: String },
    /// A boot that did not pass (panic, timeout, xc_bench exit status).
    #[error("configuration {config}: the boot failed: {failures}; console: {console}")]
    BootFailed { config: String, failures: String, console: PathBuf },
    /// The guest timed with a jiffies clock: every row would be 0 or 4 ms.
    #[error("configuration {config}: the guest's clocksource is {clocksource}, too coarse to time anything (under TCG pin the TSC with --tsc-khz); console: {console}")]
    CoarseClock { config: String, clocksource: String, console: PathBuf },
    /// The boot passed but its output does not fit the table.
    #[error("configuration {config}: {source}; console: {console}")]
    Output { config: String, #[source] source: MatrixError, console: PathBuf },
    /// An image directory is missing, not an image, or damaged.
    #[error(transparent)]
    Image(#[from] super::build::BuildError),
    /// A column's boot could not start.
    #[error("configuration {config}: boot: {source}")]
    Boot { config: String, #[source] source: super::boot::BootError },
    /// `--path`: the instruction count of a column failed.
    #[error("configuration {config}: counting instructions: {source}; console: {}", console.display())]
    Trace { config: String, #[source] source: path::TraceError, console: PathBuf },
    /// The host's TSC frequency could not be measured.
    #[error("measuring the host's TSC with xc_bench --tsc-khz: {0} (pin it with --tsc-khz, or 0 to leave it unpinned)")]
    Tsc(String),
}

/// One column's boot.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnRun {
    /// Column name.
    pub name: String,
    /// What it isolates.
    pub what: String,
    /// The image booted.
    pub image_dir: PathBuf,
    /// The column's own command-line words (every boot also has
    /// `xc_bench.iters=N` and, when pinned, `tsc_early_khz=K`).
    pub cmdline: Vec<String>,
    /// The console log of the boot.
    pub console_log: PathBuf,
    /// Seconds the VM ran.
    pub boot_seconds: f64,
    /// What xc_bench printed.
    pub output: GuestOutput,
}

/// The result of a bench run.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Kernel version of both images.
    pub kernel_version: String,
    /// Profile of both images.
    pub profile: String,
    /// `tcg` or `kvm`.
    pub accel: String,
    /// xc_bench's base iteration count.
    pub iterations: u64,
    /// The `tsc_early_khz=` every boot had, if any.
    pub tsc_khz: Option<u64>,
    /// The boots, in column order.
    pub configs: Vec<ColumnRun>,
    /// Benchmarks x columns, with ratios to stock.
    pub matrix: Matrix,
}

/// Boot every column and build the matrix.
pub fn run(ctx: &Context, req: &BenchRequest) -> Result<BenchReport, BenchError> {
    let (stock, _) = check_pair(&req.stock, &req.libos)?;
    let mut configs = Vec::new();
    for (i, col) in COLUMNS.iter().enumerate() {
        let image_dir = match col.mode {
            Mode::Stock => &req.stock,
            Mode::Libos => &req.libos,
        };
        ctx.status(format!("bench {}/{}: {} ({})", i + 1, COLUMNS.len(), col.name, col.what));
        let run = measure(ctx, &req.settings, col, image_dir, None)?;
        ctx.status(format!("bench {}/{}: {} done in {:.1}s", i + 1, COLUMNS.len(), col.name, run.boot_seconds));
        configs.push(run);
    }
    let outputs: Vec<(String, GuestOutput)> = configs.iter().map(|c| (c.name.clone(), c.output.clone())).collect();
    let matrix = Matrix::new(&outputs).map_err(|source| {
        let config = match &source {
            MatrixError::MissingRow { config, .. } | MatrixError::BadValue { config, .. } => config.clone(),
            MatrixError::Malformed { .. } => String::new(),
        };
        let console = configs.iter().find(|c| c.name == config).map(|c| c.console_log.clone()).unwrap_or_default();
        BenchError::Output { config, source, console }
    })?;
    Ok(BenchReport {
        kernel_version: stock.kernel_version,
        profile: stock.profile,
        accel: req.settings.accel.qemu_name().to_owned(),
        iterations: req.settings.iterations,
        tsc_khz: req.settings.tsc_khz,
        configs,
        matrix,
    })
}

/// Boot `image_dir` as column `col` and read what xc_bench printed. The
/// console and report go to `out` (a matrix cell's own directory), else to
/// a boot record in the cache.
pub fn measure(ctx: &Context, settings: &BenchSettings, col: &Column, image_dir: &Path, out: Option<PathBuf>) -> Result<ColumnRun, BenchError> {
    let report = boot(ctx, settings, col, image_dir, out)?;
    let lines = report.console.runs.iter().filter(|r| r.name == PROGRAM).flat_map(|r| r.lines.iter().map(String::as_str));
    let output = matrix::parse_guest_output(lines).map_err(|source| BenchError::Output {
        config: col.name.to_owned(),
        source,
        console: report.console_log.clone(),
    })?;
    if let Some(cs) = output.info("clocksource").filter(|cs| cs.contains("jiffies")) {
        return Err(BenchError::CoarseClock { config: col.name.to_owned(), clocksource: cs.to_owned(), console: report.console_log });
    }
    Ok(ColumnRun {
        name: col.name.to_owned(),
        what: col.what.to_owned(),
        image_dir: image_dir.to_owned(),
        cmdline: col.cmdline.iter().map(|s| s.to_string()).collect(),
        console_log: report.console_log,
        boot_seconds: report.seconds,
        output,
    })
}

/// The two manifests, refused when swapped or not one kernel and profile.
fn check_pair(stock_dir: &Path, libos_dir: &Path) -> Result<(Manifest, Manifest), BenchError> {
    let stock = load_manifest(stock_dir)?;
    let libos = load_manifest(libos_dir)?;
    for (flag, dir, m) in [(Mode::Stock, stock_dir, &stock), (Mode::Libos, libos_dir, &libos)] {
        if m.mode != flag {
            return Err(BenchError::WrongMode { flag, dir: dir.to_owned(), found: m.mode });
        }
    }
    if stock.kernel_version != libos.kernel_version || stock.profile != libos.profile {
        return Err(BenchError::Mismatch {
            stock: stock.kernel_version,
            stock_profile: stock.profile,
            libos: libos.kernel_version,
            libos_profile: libos.profile,
        });
    }
    Ok((stock, libos))
}

/// Boot one column with xc_bench alone; a boot that does not pass is an
/// error naming the column.
fn boot(ctx: &Context, req: &BenchSettings, col: &Column, image_dir: &Path, out: Option<PathBuf>) -> Result<BootReport, BenchError> {
    let mut cmdline: Vec<String> = col.cmdline.iter().map(|s| s.to_string()).collect();
    // /init runs programs without arguments; xc_bench reads this from
    // /proc/cmdline (the dot makes the kernel leave it alone).
    cmdline.push(format!("xc_bench.iters={}", req.iterations));
    if let Some(khz) = req.tsc_khz {
        cmdline.push(format!("tsc_early_khz={khz}"));
        // The TSC is pinned and is the clock being read; the clocksource
        // watchdog compares it with jiffies, which under TCG on a loaded host
        // fall behind, and then drops the TSC for refined-jiffies (seen when
        // a kernel build ran beside the bench). `tsc=reliable` skips that check.
        cmdline.push("tsc=reliable".to_string());
    }
    // No `translate`: online translation only, the column measures what
    // the kernel does for unmodified binaries.
    let boot = BootRequest {
        accel: req.accel,
        timeout: req.timeout,
        memory_mb: req.memory_mb,
        cpus: req.cpus,
        cmdline_extra: cmdline,
        out,
        ..BootRequest::new(image_dir.to_owned(), vec![PROGRAM.to_owned()])
    };
    let report = super::boot::run(ctx, &boot).map_err(|source| BenchError::Boot { config: col.name.to_owned(), source })?;
    if !report.passed {
        return Err(BenchError::BootFailed {
            config: col.name.to_owned(),
            failures: report.failures.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("; "),
            console: report.console_log.clone(),
        });
    }
    Ok(report)
}

impl BenchReport {
    /// The `--json` object: per row, ns and ratio keyed by column name.
    pub fn to_json(&self, warnings: &[String]) -> serde_json::Value {
        use serde_json::{json, Map, Value};
        let by_column = |values: &[f64]| -> Value {
            let map: Map<String, Value> = self.matrix.columns.iter().cloned().zip(values.iter().map(|v| json!(v))).collect();
            Value::Object(map)
        };
        let rows: Vec<Value> = self
            .matrix
            .rows
            .iter()
            .map(|r| json!({"name": r.name, "what": r.what, "ns": by_column(&r.ns), "ratio": by_column(&r.ratio)}))
            .collect();
        let configs: Vec<Value> = self
            .configs
            .iter()
            .map(|c| {
                let info: Map<String, Value> = c.output.info.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                json!({
                    "name": c.name, "what": c.what, "image_dir": c.image_dir, "cmdline": c.cmdline,
                    "console_log": c.console_log, "boot_seconds": c.boot_seconds, "info": info,
                })
            })
            .collect();
        json!({
            "kernel_version": self.kernel_version,
            "profile": self.profile,
            "accel": self.accel,
            "iterations": self.iterations,
            "tsc_khz": self.tsc_khz,
            "baseline": self.matrix.columns.first(),
            "configs": configs,
            "rows": rows,
            "warnings": warnings,
            "note": accel_note(&self.accel),
        })
    }
}

/// The footnote under every table: what the numbers can and cannot say.
pub fn accel_note(accel: &str) -> String {
    match accel {
        "tcg" => "accelerator: TCG. QEMU emulates every instruction, so these are costs of the emulation: \
                  they say nothing about hardware. Compare columns, not absolute values, and expect \
                  ratios to differ on hardware (under KVM)."
            .to_owned(),
        other => format!("accelerator: {}: guest code runs on this host's CPU; one VM, one vCPU, best of 3 batches", other.to_uppercase()),
    }
}

/// Cross-checks of the counters xc_bench reports from /proc/xc_libos: a
/// libos+xlat column whose calls never went through the table, or a libos
/// column whose calls did, measures something else than its header says.
pub fn warnings(report: &BenchReport) -> Vec<String> {
    let count = |c: &ColumnRun, key: &str| c.output.info(key).and_then(|v| v.trim_start_matches('+').parse::<u64>().ok());
    let mut w = Vec::new();
    // configs are in COLUMNS order (run boots them so)
    for (c, col) in report.configs.iter().zip(COLUMNS) {
        let table = count(c, "syscalls_via_table");
        let none = |why: &str| format!("{}: no system call went through the entry table ({why}); the column measures SYSCALL", c.name);
        match (col.through_table, table) {
            (Some(true), None) => w.push(none("the image has no /proc/xc_libos: its patch set predates the entry table")),
            (Some(true), Some(0)) => w.push(none("syscalls_via_table +0")),
            (Some(false), Some(n)) if n > 0 => {
                w.push(format!("{}: {n} system calls went through the entry table although xc_abom=off", c.name))
            }
            _ => {}
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_stock_first_and_named_as_documented() {
        let names: Vec<&str> = COLUMNS.iter().map(|c| c.name).collect();
        assert_eq!(names, ["stock", "stock-nomitig", "libos", "libos+xlat"]);
        assert_eq!(COLUMNS[0].cmdline, &[] as &[&str], "the baseline is the image as built");
        assert_eq!(COLUMNS[1].cmdline, ["mitigations=off", "nopti"]);
        assert_eq!(COLUMNS[2].cmdline, ["xc_abom=off"]);
    }

    #[test]
    fn xc_bench_is_embedded_and_not_in_the_suite() {
        assert!(crate::guest::find(PROGRAM).is_some());
        assert!(!crate::guest::BEHAVIOUR_SUITE.contains(&PROGRAM));
    }
}
