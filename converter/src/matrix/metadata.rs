//! What a cell leaves behind: `cells/<id>/cell.json`, grouped as tuxmake's
//! metadata is (build, results, source, tools, runtime,
//! reproducer_cmdline), so a reader of one knows the other.

use super::spec::{CellMode, StageName};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The format version of `cell.json`.
pub const SCHEMA: u32 = 1;

/// How one stage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    /// It ran and succeeded.
    #[serde(rename = "PASS")]
    Pass,
    /// It ran and failed.
    #[serde(rename = "FAIL")]
    Fail,
    /// It did not run (not asked for, not applicable, or an earlier stage failed).
    #[serde(rename = "SKIP")]
    Skip,
}

impl Status {
    /// As shown in tables.
    pub fn name(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        }
    }
}

/// One stage's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageResult {
    /// Which stage.
    pub stage: StageName,
    /// How it ended.
    pub status: Status,
    /// How long it took (0 for SKIP).
    pub seconds: f64,
    /// Why it failed or was skipped (and, for a PASS, a short note such as `cached`).
    pub reason: Option<String>,
}

/// tuxmake's `build` group: what was built and how.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildInfo {
    /// Kernel label from the spec.
    pub kernel: String,
    /// Profile.
    pub profile: String,
    /// Mode as in the spec (`libos+xlat`).
    pub mode: String,
    /// make -j given to this cell.
    pub jobs: usize,
    /// The configuration's key (config stage).
    pub config_key: Option<String>,
    /// The image's key (build stage).
    pub build_key: Option<String>,
    /// The image directory in the cache.
    pub image_dir: Option<PathBuf>,
    /// bzImage bytes.
    pub image_size: Option<u64>,
    /// Compile seconds as recorded in the image's manifest.
    pub build_seconds: Option<f64>,
    /// The `build` command that rebuilds this image.
    pub reproduce: Option<String>,
}

/// tuxmake's `results` group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// FAIL if any stage failed, else PASS (a cell of only skips is PASS).
    pub status: Status,
    /// Every stage in pipeline order.
    pub stages: Vec<StageResult>,
    /// Patch-set problems (analyze FAIL): one line per edit whose anchor is gone.
    pub problems: Vec<String>,
    /// The boot's facts when it ran.
    pub boot: Option<BootInfo>,
    /// What the bench stage measured, when it ran (records written before
    /// cells ran bench have none).
    #[serde(default)]
    pub bench: Option<BenchInfo>,
}

/// A bench stage's measurement of the cell's own image. Ratios need the
/// stock cell of the same kernel and profile: the report divides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchInfo {
    /// The bench column the image booted as (`stock`, `libos+xlat`).
    pub column: String,
    /// `tcg` or `kvm` (TCG values are costs of the emulator).
    pub accel: String,
    /// xc_bench's base iteration count.
    pub iterations: u64,
    /// The `tsc_early_khz=` of the boot, if pinned.
    pub tsc_khz: Option<u64>,
    /// ns per operation, in bench's row order.
    pub rows: Vec<BenchRow>,
    /// Seconds the VM ran.
    pub seconds: f64,
    /// The console log.
    pub console_log: PathBuf,
}

/// One benchmark row of a cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchRow {
    /// The row's name (bench's: getppid, pipe, ...).
    pub name: String,
    /// ns per operation.
    pub ns: f64,
}

/// A boot's facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootInfo {
    /// Every check passed.
    pub passed: bool,
    /// Seconds from QEMU start to exit.
    pub seconds: f64,
    /// Why it did not pass.
    pub failures: Vec<String>,
    /// The console log.
    pub console_log: PathBuf,
}

/// tuxmake's `source` group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// The pull flags.
    pub request: Vec<String>,
    /// Kernel version from the tree's Makefile.
    pub version: Option<String>,
    /// The pulled input's sha256.
    pub source_hash: Option<String>,
    /// Where it came from.
    pub origin: Option<String>,
}

/// tuxmake's `runtime` group: where and when the cell ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuntimeInfo {
    /// `local` or `slurm`.
    pub engine: String,
    /// The host's name.
    pub host: String,
    /// Slurm's job and array task (`1234_5`), if any.
    pub slurm_job: Option<String>,
    /// Unix seconds.
    pub started_at: u64,
    /// Unix seconds.
    pub finished_at: u64,
    /// Wall time.
    pub seconds: f64,
}

/// `cell.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellRecord {
    /// [`SCHEMA`].
    pub schema: u32,
    /// The cell's id.
    pub id: String,
    /// The cell's key ([`super::spec::CellSpec::key`]): fresh when unchanged.
    pub key: String,
    /// Its mode.
    pub mode: CellMode,
    /// What was built.
    pub build: BuildInfo,
    /// How each stage ended.
    pub results: Results,
    /// The tree.
    pub source: SourceInfo,
    /// xc-convert and the toolchain (`gcc`, `ld`, `make`, `ccache`).
    pub tools: serde_json::Value,
    /// Where and when.
    pub runtime: RuntimeInfo,
    /// The command that runs this cell again.
    pub reproducer_cmdline: String,
}

impl CellRecord {
    /// The result of `stage`.
    pub fn stage(&self, stage: StageName) -> Option<&StageResult> {
        self.results.stages.iter().find(|s| s.stage == stage)
    }
}
