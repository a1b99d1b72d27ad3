//! Stage 4: boot an image in QEMU with an initramfs of guest programs and
//! judge what the guest printed.
//!
//! The guest's /init runs the programs, then `reboot -f`; QEMU runs with
//! `-no-reboot` and the kernel with `panic=-1`, so the VM always stops by
//! itself (a timeout is the last resort and is itself a failure).

use super::build::{load_manifest, Mode};
use super::Context;
use crate::guest::{self, GuestPayload, InitramfsSpec};
use crate::qemu::{self, Accel, ConsoleReport, QemuConfig};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
}

/// The boot stage's result.
#[derive(Debug, Clone, Serialize)]
pub struct BootReport {
    /// True when every check passed.
    pub passed: bool,
    /// Why it did not pass (empty when it did).
    pub failures: Vec<String>,
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
fn payloads(names: &[String]) -> anyhow::Result<Vec<GuestPayload>> {
    names
        .iter()
        .map(|n| {
            let path = Path::new(n);
            if guest::find(n).is_none() && path.is_file() {
                let name = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| n.clone());
                return Ok(GuestPayload::from_file(&name, path)?);
            }
            GuestPayload::builtin(n).map_err(|e| anyhow::anyhow!("--init {n}: {e} (nor is it a file)"))
        })
        .collect()
}

/// Boot the image and judge the run.
pub fn run(ctx: &Context, req: &BootRequest) -> anyhow::Result<BootReport> {
    let manifest = load_manifest(&req.image_dir)?;
    let kernel = req.image_dir.join("bzImage");
    crate::host::ensure_packages(crate::host::BOOT_PACKAGES, "booting images", &|m| ctx.ui.status(m))?;
    let out_dir = match &req.out {
        Some(d) => d.clone(),
        None => {
            let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
            let name = req.image_dir.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            ctx.cache.join("boots").join(format!("{name}-{stamp}-{}", std::process::id()))
        }
    };
    std::fs::create_dir_all(&out_dir)?;
    let initrd = out_dir.join("initramfs.cpio");
    let busybox = guest::find_busybox()?;
    let mut spec = InitramfsSpec { programs: payloads(&req.programs)?, busybox, files: vec![], require_entry_table: false };
    let mut translated = Vec::new();
    if req.translate {
        ctx.ui.status("rewriting the guest programs and libc.so.6 for the entry table (abom)");
        let t = guest::translate(&spec.programs)?;
        spec = InitramfsSpec { programs: t.programs, files: t.files, require_entry_table: true, ..spec };
        translated = t.report;
    }
    guest::write_initramfs(&spec, &initrd)?;
    // What /init runs, in order: the judge expects each to exit 0.
    let expected = spec.run_order();

    let console_log = out_dir.join("console.log");
    let cfg = QemuConfig {
        kernel,
        initrd,
        accel: req.accel,
        memory_mb: req.memory_mb,
        cpus: req.cpus,
        cmdline_extra: req.cmdline_extra.clone(),
        timeout: req.timeout,
        console_log: console_log.clone(),
        qemu_binary: PathBuf::from("qemu-system-x86_64"),
    };
    let qemu_command = qemu::command_line(&cfg);
    ctx.ui.status(&format!("booting Linux {} ({}) under {:?}; console: {}", manifest.kernel_version, manifest.mode, req.accel, console_log.display()));
    let verbose = ctx.ui.verbose > 0;
    let outcome = qemu::run(&cfg, &mut |line| {
        if verbose {
            eprintln!("  | {line}");
        }
    })?;
    let text = std::fs::read_to_string(&console_log).unwrap_or_default();
    let console = qemu::parse_console(&text);
    let mut failures = judge(&console, &expected, &manifest.kernel_version, manifest.mode, outcome.timed_out);
    if req.cpus > 1 && console.booted && console.cpus_up != Some(req.cpus) {
        failures.push(format!(
            "asked for {} CPUs, the kernel brought up {}: build it with SMP and ACPI (`--profile smp`)",
            req.cpus,
            console.cpus_up.unwrap_or(1)
        ));
    }
    if !console.booted && !outcome.stderr.trim().is_empty() {
        failures.push(format!("qemu said: {}", outcome.stderr.trim()));
    }
    let report = BootReport {
        passed: failures.is_empty(),
        failures,
        image_dir: req.image_dir.clone(),
        kernel_version: manifest.kernel_version.clone(),
        mode: manifest.mode,
        out_dir: out_dir.clone(),
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

/// Every reason the run is not a pass.
pub fn judge(console: &ConsoleReport, programs: &[String], kernel_version: &str, mode: Mode, timed_out: bool) -> Vec<String> {
    let mut f = Vec::new();
    if timed_out {
        f.push("timed out: the VM did not stop by itself".to_string());
    }
    if !console.booted {
        f.push("the guest never reached /init (no `XC-BOOT ok` on the console)".to_string());
    } else if !console.done {
        f.push("/init did not finish (no `XC-DONE`)".to_string());
    }
    for p in console.problems.iter().filter(|p| p.kind.is_kernel_fault()) {
        f.push(format!("kernel reported {:?}: {}", p.kind, p.line));
    }
    for run in &console.runs {
        for l in run.lines.iter().filter(|l| l.contains("XC-CHECK") && l.contains(" FAIL")) {
            f.push(format!("{}: {}", run.name, l.trim()));
        }
    }
    for name in programs {
        let base = Path::new(name).file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        match console.runs.iter().find(|r| r.name == base) {
            None => f.push(format!("{base}: never ran")),
            Some(r) if r.rc != Some(0) => f.push(format!("{base}: exit status {:?}", r.rc)),
            _ => {}
        }
    }
    if programs.iter().any(|p| p == "probe") {
        match console.probes.first() {
            None => f.push("probe: no XC-PROBE line".to_string()),
            Some(p) => {
                if !kernel_version.starts_with(p.release.split(['-', '+']).next().unwrap_or("")) || p.release.is_empty() {
                    f.push(format!("probe: guest runs {} but the image is {kernel_version}", p.release));
                }
                // The whole point of the conversion: processes at CPL 0.
                let want = match mode {
                    Mode::Stock => 3,
                    Mode::Libos => 0,
                };
                if p.cpl != want {
                    f.push(format!("probe: processes run at CPL {} on a {mode} kernel, expected {want}", p.cpl));
                }
            }
        }
    }
    f
}
