//! Stage 4: boot an image in QEMU with an initramfs of guest programs and
//! judge what the guest printed.
//!
//! The guest's /init runs the programs, then `reboot -f`; QEMU runs with
//! `-no-reboot` and the kernel with `panic=-1`, so the VM always stops by
//! itself (a timeout is the last resort and is itself a failure).

use super::build::{load_verified, BuildError, Mode};
use super::{Context, Event};
use crate::guest::{self, GuestError, GuestPayload, InitramfsSpec, TranslateError};
use crate::host::HostError;
use crate::qemu::{self, Accel, ConsoleReport, ProblemKind, QemuConfig, QemuError};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Errors that stop a boot from happening (a boot that ran and failed is a
/// [`BootReport`] with [`BootFailure`]s instead).
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// The image directory is missing, not an image, or damaged.
    #[error(transparent)]
    Image(#[from] BuildError),
    /// A `--init` program is unknown, unreadable or not static.
    #[error("--init {name}: {source}")]
    Program {
        /// The program as given.
        name: String,
        /// Why.
        #[source]
        source: GuestError,
    },
    /// The initramfs could not be written.
    #[error(transparent)]
    Guest(#[from] GuestError),
    /// `--translate` could not rewrite a program.
    #[error(transparent)]
    Translate(#[from] TranslateError),
    /// QEMU is missing or could not run.
    #[error(transparent)]
    Qemu(#[from] QemuError),
    /// The host lacks QEMU or busybox.
    #[error(transparent)]
    Host(#[from] HostError),
    /// The boot record could not be written.
    #[error(transparent)]
    Io(#[from] build_farm::PathError),
    /// The report could not be published.
    #[error(transparent)]
    Record(#[from] build_farm::EntryError),
}

/// Why a boot that ran did not pass: what `report.json` and a matrix cell
/// record, one entry per reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BootFailure {
    /// The VM did not stop by itself and was killed.
    TimedOut {
        /// The limit.
        seconds: u64,
    },
    /// The guest never reached /init.
    NeverBooted {
        /// What QEMU said on stderr, if anything.
        qemu_stderr: String,
    },
    /// /init started but did not finish.
    Unfinished,
    /// The kernel reported a panic, oops, BUG, warning...
    KernelFault {
        /// What kind.
        fault: ProblemKind,
        /// The console line.
        line: String,
    },
    /// A guest check printed FAIL.
    CheckFailed {
        /// The program.
        program: String,
        /// The check's line.
        detail: String,
    },
    /// A program never ran or exited non-zero.
    ProgramFailed {
        /// The program.
        program: String,
        /// Its exit status, None when it never ran.
        status: Option<i32>,
    },
    /// The probe saw processes at another CPL than the mode promises.
    CplMismatch {
        /// The mode's CPL.
        expected: u8,
        /// What the probe saw.
        got: u8,
        /// The image's mode.
        mode: Mode,
    },
    /// The probe ran on another kernel than the image's (or printed nothing).
    WrongKernel {
        /// What the guest said (empty: no probe line).
        guest: String,
        /// The image's version.
        image: String,
    },
    /// Fewer CPUs came up than were asked for.
    CpusMissing {
        /// Asked for.
        wanted: u32,
        /// Brought up.
        got: u32,
    },
}

impl std::fmt::Display for BootFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BootFailure::TimedOut { seconds } => write!(f, "timed out: the VM did not stop by itself within {seconds}s"),
            BootFailure::NeverBooted { qemu_stderr } if qemu_stderr.is_empty() => {
                write!(f, "the guest never reached /init (no `XC-BOOT ok` on the console)")
            }
            BootFailure::NeverBooted { qemu_stderr } => {
                write!(f, "the guest never reached /init (no `XC-BOOT ok` on the console); qemu said: {qemu_stderr}")
            }
            BootFailure::Unfinished => write!(f, "/init did not finish (no `XC-DONE`)"),
            BootFailure::KernelFault { fault, line } => write!(f, "kernel reported {fault:?}: {line}"),
            BootFailure::CheckFailed { program, detail } => write!(f, "{program}: {detail}"),
            BootFailure::ProgramFailed { program, status: None } => write!(f, "{program}: never ran"),
            BootFailure::ProgramFailed { program, status: Some(s) } => write!(f, "{program}: exit status {s}"),
            BootFailure::CplMismatch { expected, got, mode } => {
                write!(f, "probe: processes run at CPL {got} on a {mode} kernel, expected {expected}")
            }
            BootFailure::WrongKernel { guest, image } if guest.is_empty() => write!(f, "probe: no XC-PROBE line (image {image})"),
            BootFailure::WrongKernel { guest, image } => write!(f, "probe: guest runs {guest} but the image is {image}"),
            BootFailure::CpusMissing { wanted, got } => write!(
                f,
                "asked for {wanted} CPUs, the kernel brought up {got}: build it with SMP and ACPI (`--profile smp`)"
            ),
        }
    }
}

/// What to boot and how.
#[derive(Debug, Clone)]
pub struct BootRequest {
    /// An image directory made by `build`.
    pub image_dir: PathBuf,
    /// Guest programs to run in order: built-in names or host file paths.
    pub programs: Vec<String>,
    /// TCG (default, works everywhere) or KVM.
    pub accel: Accel,
    /// Give up after this long.
    pub timeout: Duration,
    /// Guest memory.
    pub memory_mb: u32,
    /// Virtual CPUs.
    pub cpus: u32,
    /// Extra kernel command line words.
    pub cmdline_extra: Vec<String>,
    /// Where to put the console log, initramfs and report (default: in the cache).
    pub out: Option<PathBuf>,
    /// Rewrite the guest programs (and a libc for a dynamic check) for the
    /// entry table before packing them (offline binary translation).
    pub translate: bool,
    /// Run after `programs`, not rewritten by `translate` (e.g. the
    /// kselftest runner: `boot --kselftest`).
    pub extra_programs: Vec<GuestPayload>,
    /// More files at fixed guest paths (the selftests' binaries).
    pub extra_files: Vec<guest::ExtraFile>,
    /// `-cpu` instead of the accelerator's default (bench --path's Meltdown column).
    pub cpu_model: Option<String>,
    /// Start stopped with QEMU's gdbstub on this Unix socket (bench --path).
    pub gdb_socket: Option<PathBuf>,
}

impl BootRequest {
    /// Boot `image_dir` running `programs`, with the defaults `boot` has:
    /// TCG, 300 s, 512 MiB, one CPU, nothing else added. Callers set what
    /// they change with struct update syntax.
    pub fn new(image_dir: PathBuf, programs: Vec<String>) -> Self {
        Self {
            image_dir,
            programs,
            accel: Accel::Tcg,
            timeout: Duration::from_secs(300),
            memory_mb: 512,
            cpus: 1,
            cmdline_extra: Vec::new(),
            out: None,
            translate: false,
            extra_programs: Vec::new(),
            extra_files: Vec::new(),
            cpu_model: None,
            gdb_socket: None,
        }
    }
}

/// The boot stage's result.
#[derive(Debug, Clone, Serialize)]
pub struct BootReport {
    /// True when every check passed.
    pub passed: bool,
    /// Why it did not pass (empty when it did).
    pub failures: Vec<BootFailure>,
    /// The image that was booted.
    pub image_dir: PathBuf,
    /// Kernel version from the manifest.
    pub kernel_version: String,
    /// stock or libos.
    pub mode: Mode,
    /// Directory with console.log, initramfs.cpio and report.json.
    pub out_dir: PathBuf,
    /// The full serial console.
    pub console_log: PathBuf,
    /// Seconds from QEMU start to exit.
    pub seconds: f64,
    /// The VM had to be killed.
    pub timed_out: bool,
    /// The QEMU command line.
    pub qemu_command: Vec<String>,
    /// What the console said, parsed.
    pub console: ConsoleReport,
    /// Files rewritten for the entry table (`--translate`), else empty.
    pub translated: Vec<guest::TranslatedFile>,
}

/// Resolve program names/paths to payloads for the initramfs: a built-in
/// name, else a host file (named after its file name in the guest).
fn payloads(names: &[String]) -> Result<Vec<GuestPayload>, BootError> {
    names
        .iter()
        .map(|n| {
            let path = Path::new(n);
            let payload = if guest::find(n).is_none() && path.is_file() {
                let name = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| n.clone());
                GuestPayload::from_file(&name, path)
            } else {
                GuestPayload::builtin(n)
            };
            payload.map_err(|source| BootError::Program { name: n.clone(), source })
        })
        .collect()
}

/// Boot the image and judge the run.
pub fn run(ctx: &Context, req: &BootRequest) -> Result<BootReport, BootError> {
    // The image must be what its manifest says: a truncated bzImage is a
    // clear error here, not a guest that "never reached /init".
    let manifest = load_verified(&req.image_dir, false)?;
    let kernel = req.image_dir.join("bzImage");
    crate::host::require_packages(crate::host::BOOT_PACKAGES, "booting images")?;
    // Everything that can be refused is checked before the boot record exists.
    let busybox = guest::find_busybox()?;
    let mut spec = InitramfsSpec { programs: payloads(&req.programs)?, busybox, files: vec![], require_entry_table: false };
    let mut translated = Vec::new();
    if req.translate {
        ctx.status("rewriting the guest programs and libc.so.6 for the entry table (abom)");
        let t = guest::translate(&spec.programs)?;
        spec = InitramfsSpec { programs: t.programs, files: t.files, require_entry_table: true, ..spec };
        translated = t.report;
    }
    spec.programs.extend(req.extra_programs.iter().cloned());
    spec.files.extend(req.extra_files.iter().cloned());
    let out_dir = match &req.out {
        Some(d) => d.clone(),
        None => {
            let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
            let name = req.image_dir.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            ctx.layout.boots_dir().join(format!("{name}-{stamp}-{}", std::process::id()))
        }
    };
    std::fs::create_dir_all(&out_dir).map_err(build_farm::at("create", &out_dir))?;
    // The initramfs is rebuilt for every boot from embedded programs: a
    // boot in the cache keeps only its console log and report, and with
    // --out the caller's directory keeps the initramfs for inspection.
    let initrd = out_dir.join("initramfs.cpio");
    let result = boot_and_judge(ctx, req, &spec, &initrd, &out_dir, &kernel, &manifest, translated);
    if req.out.is_none() {
        let _ = std::fs::remove_file(&initrd);
    }
    if result.is_err() && req.out.is_none() {
        // A boot that never started leaves no record behind.
        let _ = std::fs::remove_dir_all(&out_dir);
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn boot_and_judge(
    ctx: &Context,
    req: &BootRequest,
    spec: &InitramfsSpec,
    initrd: &Path,
    out_dir: &Path,
    kernel: &Path,
    manifest: &super::build::Manifest,
    translated: Vec<guest::TranslatedFile>,
) -> Result<BootReport, BootError> {
    guest::write_initramfs(spec, initrd)?;
    // What /init runs, in order: the judge expects each to exit 0.
    let expected = spec.run_order();

    let console_log = out_dir.join("console.log");
    let cfg = QemuConfig {
        kernel: kernel.to_path_buf(),
        initrd: initrd.to_path_buf(),
        accel: req.accel,
        memory_mb: req.memory_mb,
        cpus: req.cpus,
        cmdline_extra: req.cmdline_extra.clone(),
        timeout: req.timeout,
        console_log: console_log.clone(),
        qemu_binary: PathBuf::from("qemu-system-x86_64"),
        cpu_model: req.cpu_model.clone(),
        gdb_socket: req.gdb_socket.clone(),
    };
    let qemu_command = qemu::command_line(&cfg);
    ctx.status(format!("booting Linux {} ({}) under {:?}; console: {}", manifest.kernel_version, manifest.mode, req.accel, console_log.display()));
    let outcome = qemu::run(&cfg, &mut |line| ctx.emit(Event::Console(line.to_string())))?;
    let text = std::fs::read_to_string(&console_log).unwrap_or_default();
    let console = qemu::parse_console(&text);
    let mut failures = judge(&console, &expected, &manifest.kernel_version, manifest.mode, outcome.timed_out.then_some(req.timeout.as_secs()));
    if req.cpus > 1 && console.booted && console.cpus_up != Some(req.cpus) {
        failures.push(BootFailure::CpusMissing { wanted: req.cpus, got: console.cpus_up.unwrap_or(1) });
    }
    if !console.booted {
        let stderr = outcome.stderr.trim().to_string();
        for f in failures.iter_mut() {
            if let BootFailure::NeverBooted { qemu_stderr } = f {
                *qemu_stderr = stderr.clone();
            }
        }
    }
    let report = BootReport {
        passed: failures.is_empty(),
        failures,
        image_dir: req.image_dir.clone(),
        kernel_version: manifest.kernel_version.clone(),
        mode: manifest.mode,
        out_dir: out_dir.to_path_buf(),
        console_log,
        seconds: outcome.duration.as_secs_f64(),
        timed_out: outcome.timed_out,
        qemu_command,
        console,
        translated,
    };
    build_farm::write_json_atomic(&out_dir.join("report.json"), &report)?;
    Ok(report)
}

/// Every reason the run is not a pass. `timed_out` is the limit when the VM had to be killed.
pub fn judge(console: &ConsoleReport, programs: &[String], kernel_version: &str, mode: Mode, timed_out: Option<u64>) -> Vec<BootFailure> {
    let mut f = Vec::new();
    if let Some(seconds) = timed_out {
        f.push(BootFailure::TimedOut { seconds });
    }
    if !console.booted {
        f.push(BootFailure::NeverBooted { qemu_stderr: String::new() });
    } else if !console.done {
        f.push(BootFailure::Unfinished);
    }
    for p in console.problems.iter().filter(|p| p.kind.is_kernel_fault()) {
        f.push(BootFailure::KernelFault { fault: p.kind, line: p.line.clone() });
    }
    for run in &console.runs {
        for l in run.lines.iter().filter(|l| l.contains("XC-CHECK") && l.contains(" FAIL")) {
            f.push(BootFailure::CheckFailed { program: run.name.clone(), detail: l.trim().to_string() });
        }
    }
    for name in programs {
        let base = Path::new(name).file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        match console.runs.iter().find(|r| r.name == base) {
            None => f.push(BootFailure::ProgramFailed { program: base, status: None }),
            Some(r) if r.rc != Some(0) => f.push(BootFailure::ProgramFailed { program: base, status: r.rc }),
            _ => {}
        }
    }
    if programs.iter().any(|p| p == "probe") {
        match console.probes.first() {
            None => f.push(BootFailure::WrongKernel { guest: String::new(), image: kernel_version.to_string() }),
            Some(p) => {
                if !kernel_version.starts_with(p.release.split(['-', '+']).next().unwrap_or("")) || p.release.is_empty() {
                    f.push(BootFailure::WrongKernel { guest: p.release.clone(), image: kernel_version.to_string() });
                }
                // The whole point of the conversion: processes at CPL 0.
                let want = mode.process_cpl();
                if p.cpl != want {
                    f.push(BootFailure::CplMismatch { expected: want, got: p.cpl, mode });
                }
            }
        }
    }
    f
}
