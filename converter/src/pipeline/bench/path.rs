//! `xc-convert bench --path`: count, instruction by instruction, what one
//! warm system call executes in each configuration.
//!
//! Each column boots with `xc_bench.path=1` and QEMU stopped behind its
//! gdbstub ([`crate::qemu::gdb`]). xc_bench (converter/guest/xc_bench.c,
//! "Path mode") runs each row's call twice, warm then counted, and calls
//! `xc_path_marker(row, magic)` just before the counted one. The tracer
//! keeps one hardware breakpoint on the marker; on each hit it steps,
//! uncounted, to the row's site (`xc_path_site_<row>`, found in the
//! embedded xc_bench's symbol table), then single-steps and decodes (iced-x86)
//! every instruction until the site's end label, the instruction after the
//! call returns. QEMU's single-step masks interrupts and timers by default
//! (`qqemu.sstep` flags 0x7 = ENABLE|NOIRQ|NOTIMER; the report records what
//! the stub said), so the count is the call's own path and the same on
//! every run.

use super::{BenchError, Column, COLUMNS, PROGRAM};
use crate::pipeline::boot::BootRequest;
use crate::pipeline::build::Mode;
use crate::pipeline::Context;
use crate::qemu::gdb::{reg, GdbClient, GdbError};
use crate::qemu::Accel;
use iced_x86::{Code, Decoder, DecoderOptions, Instruction, Mnemonic, Register};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

/// The rows, in the order xc_bench's `path_rows[]` runs them (the marker's
/// first argument is the index), with what the counted call is.
pub const PATH_ROWS: &[(&str, &str)] = &[
    ("getppid", "getppid()"),
    ("pipe_write_1B", "write 1 byte into a pipe nobody waits on"),
    ("pipe_read_1B", "read 1 byte from a pipe that holds 2"),
    ("futex_wake", "FUTEX_WAKE (private), no waiter"),
    ("futex_wait_eagain", "FUTEX_WAIT (private) on a value that does not match: -EAGAIN"),
    ("mmap_anon_page", "mmap one anonymous page (not touched)"),
    ("munmap_page", "munmap that page"),
];

/// The marker's second argument (xc_bench.c's XC_PATH_MAGIC, "XCPATH0").
const MAGIC: u64 = 0x0058_4350_4154_4830;

/// CPU model of the `stock-kpti` column under TCG: QEMU's `Nehalem`
/// is an Intel family 6 model 94 without ARCH_CAPABILITIES, so the kernel
/// takes it as affected by Meltdown (KPTI on) and MDS (VERW on return to
/// user, "Clear CPU buffers attempted, no microcode"). TCG's default `max`
/// model is an AMD, which the kernel treats as not affected by either.
/// TCG cannot emulate its SPEC_CTRL MSR, so this column has no IBRS.
pub const AFFECTED_CPU_MODEL: &str = "Nehalem";

/// One column of the path table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathColumn {
    /// Header and JSON key.
    pub name: &'static str,
    /// Which image boots.
    pub mode: Mode,
    /// Extra kernel command-line words.
    pub cmdline: &'static [&'static str],
    /// `-cpu` under TCG (None: the default `max`); under KVM always `host`.
    pub tcg_cpu_model: Option<&'static str>,
    /// What this column isolates.
    pub what: &'static str,
}

const fn from_bench(c: &Column) -> PathColumn {
    PathColumn { name: c.name, mode: c.mode, cmdline: c.cmdline, tcg_cpu_model: None, what: c.what }
}

/// bench's four columns and, third, a stock kernel that pays for Meltdown
/// and MDS as a distribution kernel does on an affected CPU.
pub const PATH_COLUMNS: &[PathColumn] = &[
    from_bench(&COLUMNS[0]),
    from_bench(&COLUMNS[1]),
    PathColumn {
        name: "stock-kpti",
        mode: Mode::Stock,
        cmdline: &["pti=on", "mds=full"],
        tcg_cpu_model: Some(AFFECTED_CPU_MODEL),
        what: "stock image, pti=on mds=full, on a CPU model the kernel treats as affected by Meltdown and MDS (TCG: -cpu Nehalem; KVM: the host's CPU)",
    },
    from_bench(&COLUMNS[2]),
    from_bench(&COLUMNS[3]),
];

/// The instruction classes counted apart: the ones whose cost on hardware
/// dominates a system call, and the flag/interrupt ones TCG runs through
/// helpers.
pub const CLASSES: &[&str] = &[
    "syscall", "sysret", "iretq", "swapgs", "mov_cr3", "verw", "wrmsr", "wrmsr_spec_ctrl", "lfence", "cli", "sti", "pushf", "popf",
];

/// IA32_SPEC_CTRL, the MSR IBRS writes on entry and exit.
const MSR_SPEC_CTRL: u64 = 0x48;

/// The class of an instruction (an entry of [`CLASSES`]), if any;
/// `wrmsr_spec_ctrl` is decided by the caller from rcx.
pub fn class_of(i: &Instruction) -> Option<&'static str> {
    Some(match i.mnemonic() {
        Mnemonic::Syscall => "syscall",
        Mnemonic::Sysret | Mnemonic::Sysretq => "sysret",
        Mnemonic::Iretq | Mnemonic::Iretd | Mnemonic::Iret => "iretq",
        Mnemonic::Swapgs => "swapgs",
        Mnemonic::Mov if i.code() == Code::Mov_cr_r64 && i.op0_register() == Register::CR3 => "mov_cr3",
        Mnemonic::Verw => "verw",
        Mnemonic::Wrmsr => "wrmsr",
        Mnemonic::Lfence => "lfence",
        Mnemonic::Cli => "cli",
        Mnemonic::Sti => "sti",
        Mnemonic::Pushf | Mnemonic::Pushfd | Mnemonic::Pushfq => "pushf",
        Mnemonic::Popf | Mnemonic::Popfd | Mnemonic::Popfq => "popf",
        _ => return None,
    })
}

/// The canonical kernel half of the x86-64 address space.
const KERNEL_HALF: u64 = 0xffff_8000_0000_0000;

/// What one counted call executed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PathCount {
    /// Instructions from the site to its end label (a `rep` string
    /// instruction counts once, however many iterations).
    pub total: u64,
    /// Of those, at kernel addresses (the high half).
    pub kernel: u64,
    /// Extra iterations of `rep` instructions (not in `total`).
    pub rep_iterations: u64,
    /// Count per class, every entry of [`CLASSES`] present.
    pub classes: BTreeMap<String, u64>,
    /// How the site entered the kernel: `syscall` or `table` (translated
    /// into a call through the entry table).
    pub entered_by: String,
    /// Instructions per function (the image's System.map; `user` for the
    /// lower half), in the order the path first enters each: where the
    /// path's length goes.
    pub functions: Vec<(String, u64)>,
}

/// Kernel text symbols of an image (its System.map), for [`PathCount::functions`].
#[derive(Debug, Clone, Default)]
pub struct SymbolMap {
    /// (address, name), sorted by address.
    text: Vec<(u64, String)>,
}

impl SymbolMap {
    /// Parse System.map text (`ffffffff81000000 T _text`); only text symbols.
    pub fn parse(map: &str) -> Self {
        let mut text: Vec<(u64, String)> = map
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let (addr, kind, name) = (w.next()?, w.next()?, w.next()?);
                matches!(kind, "T" | "t" | "W" | "w").then_some((u64::from_str_radix(addr, 16).ok()?, name.to_owned()))
            })
            .collect();
        text.sort();
        Self { text }
    }

    /// The function holding `rip`: `user` below the kernel half, `?` when unknown.
    pub fn function(&self, rip: u64) -> &str {
        if rip < KERNEL_HALF {
            return "user";
        }
        match self.text.partition_point(|(a, _)| *a <= rip) {
            0 => "?",
            i => &self.text[i - 1].1,
        }
    }
}

/// Where the tracer stops and counts, from xc_bench's symbol table.
#[derive(Debug, Clone)]
pub struct Sites {
    /// `xc_path_marker`.
    pub marker: u64,
    /// (start, end) of `xc_path_site_<row>`, in [`PATH_ROWS`] order.
    pub rows: Vec<(u64, u64)>,
}

/// Why a column's trace failed.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The embedded xc_bench lacks a symbol the tracer needs.
    #[error("the embedded xc_bench has no symbol {0} (was it built from this tree's converter/guest/xc_bench.c?)")]
    Symbol(String),
    /// The embedded xc_bench is not a readable ELF.
    #[error("reading the embedded xc_bench's symbols: {0}")]
    Elf(String),
    /// The gdbstub conversation failed.
    #[error(transparent)]
    Gdb(#[from] GdbError),
    /// The marker was hit for another row than the next one.
    #[error("xc_bench marked row {got} where row {want} ({name}) was next")]
    OutOfOrder { got: u64, want: usize, name: &'static str },
    /// The guest stopped somewhere else than the marker after `continue`.
    #[error("the guest stopped at {rip:#x}, not at the marker {marker:#x}")]
    StrayStop { rip: u64, marker: u64 },
    /// From the marker, the site did not come within a few instructions.
    #[error("row {row}: the site {site:#x} was not reached within {steps} instructions of the marker (last rip {rip:#x})")]
    SiteNotReached { row: &'static str, site: u64, steps: u32, rip: u64 },
    /// The path never returned to the site's end.
    #[error("row {row}: still not back at {end:#x} after {limit} instructions (rip {rip:#x})")]
    Runaway { row: &'static str, end: u64, limit: u64, rip: u64 },
    /// An instruction's bytes could not be read.
    #[error("row {row}: cannot read the instruction at {rip:#x}")]
    Unreadable { row: &'static str, rip: u64 },
}

/// Find the marker and the sites in the embedded xc_bench (a static,
/// non-PIE ELF: its symbol values are the addresses it runs at).
pub fn sites() -> Result<Sites, TraceError> {
    use object::{Object, ObjectSymbol};
    let program = crate::guest::find(PROGRAM).ok_or_else(|| TraceError::Symbol(PROGRAM.to_owned()))?;
    let elf = object::File::parse(program.bytes).map_err(|e| TraceError::Elf(e.to_string()))?;
    let symbols: HashMap<&str, u64> = elf.symbols().filter_map(|s| Some((s.name().ok()?, s.address()))).collect();
    let get = |name: String| symbols.get(name.as_str()).copied().ok_or(TraceError::Symbol(name));
    let marker = get("xc_path_marker".to_owned())?;
    let rows = PATH_ROWS
        .iter()
        .map(|(row, _)| Ok((get(format!("xc_path_site_{row}"))?, get(format!("xc_path_site_{row}_end"))?)))
        .collect::<Result<_, TraceError>>()?;
    Ok(Sites { marker, rows })
}

/// Enough for mmap on any kernel; a path longer than this is a hang.
const STEP_LIMIT: u64 = 2_000_000;
/// Marker to site: its `ret`, a few moves, the `lea` of the site.
const APPROACH_LIMIT: u32 = 64;
/// Stray marker hits tolerated per row (another static program with code
/// at the same address).
const STRAY_LIMIT: u32 = 1000;

/// The gdbstub's single-step flags (`qqemu.sstep`), e.g. `0x7`.
pub fn sstep_flags(gdb: &mut GdbClient) -> Result<String, GdbError> {
    let reply = gdb.request("qqemu.sstep")?;
    Ok(reply.strip_prefix("0x").map(|h| format!("0x{h}")).unwrap_or(reply))
}

/// Trace every row of one boot; the VM is left running (detached).
pub fn trace(gdb: &mut GdbClient, sites: &Sites, symbols: &SymbolMap) -> Result<Vec<PathCount>, TraceError> {
    let mut counts = Vec::new();
    for (i, ((name, _), &(start, end))) in PATH_ROWS.iter().zip(&sites.rows).enumerate() {
        wait_for_marker(gdb, sites.marker, i, name)?;
        approach(gdb, name, start)?;
        counts.push(count(gdb, name, start, end, symbols)?);
    }
    Ok(counts)
}

/// Run to the marker's next hit by xc_bench for `row`; the breakpoint is
/// set only while running to it, so that the steps after it (and over a
/// stray hit) are never stopped by it again, as gdb itself steps over one.
fn wait_for_marker(gdb: &mut GdbClient, marker: u64, row: usize, name: &'static str) -> Result<(), TraceError> {
    for _ in 0..STRAY_LIMIT {
        gdb.set_breakpoint(marker)?;
        gdb.cont()?;
        gdb.remove_breakpoint(marker)?;
        let rip = gdb.register(reg::RIP)?;
        if rip != marker {
            return Err(TraceError::StrayStop { rip, marker });
        }
        if gdb.register(reg::RSI)? != MAGIC {
            // another program's code at that address: step past it
            gdb.step()?;
            continue;
        }
        let got = gdb.register(reg::RDI)?;
        if got != row as u64 {
            return Err(TraceError::OutOfOrder { got, want: row, name });
        }
        return Ok(());
    }
    Err(TraceError::StrayStop { rip: marker, marker })
}

fn approach(gdb: &mut GdbClient, row: &'static str, site: u64) -> Result<(), TraceError> {
    let mut rip = 0;
    for _ in 0..APPROACH_LIMIT {
        gdb.step()?;
        rip = gdb.register(reg::RIP)?;
        if rip == site {
            return Ok(());
        }
    }
    Err(TraceError::SiteNotReached { row, site, steps: APPROACH_LIMIT, rip })
}

fn decode_at(gdb: &mut GdbClient, row: &'static str, rip: u64) -> Result<Instruction, TraceError> {
    // 15 bytes is the longest instruction; near the end of a mapped page
    // read only up to it.
    let to_page_end = (0x1000 - (rip & 0xfff)) as usize;
    let mut bytes = gdb.memory(rip, 15)?;
    if bytes.is_none() && to_page_end < 15 {
        bytes = gdb.memory(rip, to_page_end)?;
    }
    let bytes = bytes.ok_or(TraceError::Unreadable { row, rip })?;
    let mut decoder = Decoder::with_ip(64, &bytes, rip, DecoderOptions::NONE);
    let i = decoder.decode();
    if i.is_invalid() {
        return Err(TraceError::Unreadable { row, rip });
    }
    Ok(i)
}

fn count(gdb: &mut GdbClient, row: &'static str, start: u64, end: u64, symbols: &SymbolMap) -> Result<PathCount, TraceError> {
    let mut c = PathCount { classes: CLASSES.iter().map(|k| (k.to_string(), 0)).collect(), ..Default::default() };
    let mut decoded: HashMap<u64, Instruction> = HashMap::new();
    let mut rip = start;
    let mut prev = None;
    while rip != end {
        let i = match decoded.get(&rip) {
            Some(i) => *i,
            None => {
                let i = decode_at(gdb, row, rip)?;
                decoded.insert(rip, i);
                i
            }
        };
        if rip == start {
            c.entered_by = if i.mnemonic() == Mnemonic::Call { "table" } else { "syscall" }.to_owned();
        }
        // TCG single-steps a `rep` string instruction one iteration at a time.
        let repeated = prev == Some(rip) && (i.has_rep_prefix() || i.has_repne_prefix());
        if repeated {
            c.rep_iterations += 1;
        } else {
            c.total += 1;
            if rip >= KERNEL_HALF {
                c.kernel += 1;
            }
            let f = symbols.function(rip);
            match c.functions.iter_mut().find(|(n, _)| n == f) {
                Some((_, k)) => *k += 1,
                None => c.functions.push((f.to_owned(), 1)),
            }
            if let Some(class) = class_of(&i) {
                *c.classes.entry(class.to_owned()).or_default() += 1;
                if class == "wrmsr" && gdb.register(reg::RCX)? & 0xffff_ffff == MSR_SPEC_CTRL {
                    *c.classes.entry("wrmsr_spec_ctrl".to_owned()).or_default() += 1;
                }
            }
        }
        if c.total + c.rep_iterations > STEP_LIMIT {
            return Err(TraceError::Runaway { row, end, limit: STEP_LIMIT, rip });
        }
        gdb.step()?;
        prev = Some(rip);
        rip = gdb.register(reg::RIP)?;
    }
    Ok(c)
}

/// What to count.
#[derive(Debug, Clone)]
pub struct PathRequest {
    /// Stock image directory.
    pub stock: PathBuf,
    /// Libos image directory (same kernel and profile).
    pub libos: PathBuf,
    /// TCG or KVM.
    pub accel: Accel,
    /// Per boot (the stepping runs inside it).
    pub timeout: Duration,
    /// Guest memory in MiB.
    pub memory_mb: u32,
}

/// One column's boot and trace.
#[derive(Debug, Clone, Serialize)]
pub struct PathColumnRun {
    /// Column name.
    pub name: String,
    /// What it isolates.
    pub what: String,
    /// The image booted.
    pub image_dir: PathBuf,
    /// The column's command-line words (every boot also has `xc_bench.path=1 norandmaps nokaslr`).
    pub cmdline: Vec<String>,
    /// `-cpu` of the boot.
    pub cpu_model: String,
    /// The gdbstub's single-step flags during the count (0x7: interrupts and timers masked).
    pub sstep_flags: String,
    /// The console log.
    pub console_log: PathBuf,
    /// XC-BENCH-INFO lines (cpl, meltdown, spectre_v2).
    pub info: Vec<(String, String)>,
}

/// One row across the columns.
#[derive(Debug, Clone, Serialize)]
pub struct PathRow {
    /// Row name (a key of [`PATH_ROWS`]).
    pub name: String,
    /// What the counted call is.
    pub what: String,
    /// Per column, in column order.
    pub counts: Vec<PathCount>,
    /// total / stock's total, per column.
    pub ratio: Vec<f64>,
}

/// The result of `bench --path`.
#[derive(Debug, Clone, Serialize)]
pub struct PathReport {
    /// Kernel version of both images.
    pub kernel_version: String,
    /// Profile of both images.
    pub profile: String,
    /// `tcg` or `kvm`.
    pub accel: String,
    /// Column order.
    pub columns: Vec<PathColumnRun>,
    /// Row order of [`PATH_ROWS`].
    pub rows: Vec<PathRow>,
}

/// Boot and trace every column.
pub fn run(ctx: &Context, req: &PathRequest) -> Result<PathReport, BenchError> {
    let (stock, _libos) = super::check_pair(&req.stock, &req.libos)?;
    let sites = sites().map_err(|source| BenchError::Trace { config: String::new(), source, console: PathBuf::new() })?;
    let mut columns = Vec::new();
    let mut per_column = Vec::new();
    for (i, col) in PATH_COLUMNS.iter().enumerate() {
        ctx.status(format!("bench --path {}/{}: {} ({})", i + 1, PATH_COLUMNS.len(), col.name, col.what));
        let (run, counts) = run_column(ctx, req, col, &sites)?;
        let totals: Vec<String> = PATH_ROWS.iter().zip(&counts).map(|((n, _), c)| format!("{n} {}", c.total)).collect();
        ctx.status(format!("bench --path {}/{}: {}: {}", i + 1, PATH_COLUMNS.len(), col.name, totals.join(", ")));
        columns.push(run);
        per_column.push(counts);
    }
    let rows = PATH_ROWS
        .iter()
        .enumerate()
        .map(|(r, (name, what))| {
            let counts: Vec<PathCount> = per_column.iter().map(|c| c[r].clone()).collect();
            let base = counts[0].total.max(1) as f64;
            let ratio = counts.iter().map(|c| c.total as f64 / base).collect();
            PathRow { name: name.to_string(), what: what.to_string(), counts, ratio }
        })
        .collect();
    Ok(PathReport {
        kernel_version: stock.kernel_version,
        profile: stock.profile,
        accel: req.accel.qemu_name().to_owned(),
        columns,
        rows,
    })
}

fn run_column(ctx: &Context, req: &PathRequest, col: &PathColumn, sites: &Sites) -> Result<(PathColumnRun, Vec<PathCount>), BenchError> {
    let image_dir = match col.mode {
        Mode::Stock => req.stock.clone(),
        Mode::Libos => req.libos.clone(),
    };
    let config = col.name.to_owned();
    let sock_dir = tempfile::Builder::new()
        .prefix("xc-gdb-")
        .tempdir()
        .map_err(|e| BenchError::Trace { config: config.clone(), source: TraceError::Gdb(GdbError::Io { path: std::env::temp_dir(), what: "create a socket directory", source: e }), console: PathBuf::new() })?;
    let sock = sock_dir.path().join("gdb.sock");
    let cpu_model = match req.accel {
        Accel::Tcg => col.tcg_cpu_model.map(str::to_owned),
        Accel::Kvm => None,
    };
    let mut cmdline: Vec<String> = col.cmdline.iter().map(|s| s.to_string()).collect();
    cmdline.push("xc_bench.path=1".to_owned());
    // No address-space randomization: munmap's path depends on where the
    // page was mapped (whether freeing it empties a PUD-level table: 96
    // more instructions in free_pgd_range and unmap_page_range), and with
    // a random mmap base two runs counted differently.
    cmdline.push("norandmaps".to_owned());
    // No kernel address randomization either: the per-function counts map
    // RIPs through the image's System.map, which holds link-time addresses.
    // Under KASLR every boot moved the kernel and the same 233 instructions
    // landed in `sit_cleanup` one run and in `hidinput_connect` the next.
    cmdline.push("nokaslr".to_owned());
    let boot = BootRequest {
        accel: req.accel,
        timeout: req.timeout,
        memory_mb: req.memory_mb,
        cmdline_extra: cmdline,
        cpu_model: cpu_model.clone(),
        gdb_socket: Some(sock.clone()),
        ..BootRequest::new(image_dir.clone(), vec![PROGRAM.to_owned()])
    };
    // Where the instructions are; an image without System.map gets `?`.
    let symbols = std::fs::read_to_string(image_dir.join("System.map")).map(|m| SymbolMap::parse(&m)).unwrap_or_default();
    let tracer = {
        let sites = sites.clone();
        let sock = sock.clone();
        std::thread::spawn(move || -> Result<(String, Vec<PathCount>), TraceError> {
            let mut gdb = GdbClient::connect(&sock, Duration::from_secs(60))?;
            let flags = sstep_flags(&mut gdb)?;
            let traced = trace(&mut gdb, &sites, &symbols);
            // Let the guest run to its end whatever happened, so the boot
            // finishes instead of waiting, stopped, for its timeout.
            let detached = gdb.detach();
            let counts = traced?;
            detached?;
            Ok((flags, counts))
        })
    };
    let report = crate::pipeline::boot::run(ctx, &boot).map_err(|source| BenchError::Boot { config: config.clone(), source })?;
    let traced = tracer.join().unwrap_or_else(|_| Err(TraceError::Elf("the tracer thread panicked".to_owned())));
    let (sstep_flags, counts) = traced.map_err(|source| BenchError::Trace { config: config.clone(), source, console: report.console_log.clone() })?;
    if !report.passed {
        return Err(BenchError::BootFailed {
            config,
            failures: report.failures.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("; "),
            console: report.console_log.clone(),
        });
    }
    let lines: Vec<&str> = report.console.runs.iter().filter(|r| r.name == PROGRAM).flat_map(|r| r.lines.iter().map(String::as_str)).collect();
    for (row, _) in PATH_ROWS {
        if !lines.iter().any(|l| l.contains(&format!("XC-BENCH-PATH {row} "))) {
            return Err(BenchError::Output {
                config,
                source: super::matrix::MatrixError::MissingRow { config: col.name.to_owned(), row: row.to_string() },
                console: report.console_log.clone(),
            });
        }
    }
    let output = super::matrix::parse_guest_output(lines.iter().copied())
        .map_err(|source| BenchError::Output { config: config.clone(), source, console: report.console_log.clone() })?;
    let run = PathColumnRun {
        name: config,
        what: col.what.to_owned(),
        image_dir,
        cmdline: col.cmdline.iter().map(|s| s.to_string()).collect(),
        cpu_model: cpu_model.unwrap_or_else(|| match req.accel {
            Accel::Tcg => "max".to_owned(),
            Accel::Kvm => "host".to_owned(),
        }),
        sstep_flags,
        console_log: report.console_log,
        info: output.info,
    };
    Ok((run, counts))
}

/// The table: per row a block, one line per measure, one column per configuration.
pub fn render(r: &PathReport) -> String {
    let names: Vec<&str> = r.columns.iter().map(|c| c.name.as_str()).collect();
    let width = names.iter().map(|n| n.len()).max().unwrap_or(0).max(8);
    let mut s = format!(
        "Linux {} profile {}: instructions of one warm system call, accel {} (interrupts masked while counting)\n",
        r.kernel_version, r.profile, r.accel
    );
    for row in &r.rows {
        s.push_str(&format!("\n{:20}", format!("{} ", row.name)));
        for n in &names {
            s.push_str(&format!(" {n:>width$}"));
        }
        s.push('\n');
        let mut line = |label: &str, cell: &dyn Fn(&PathCount, f64) -> String| {
            s.push_str(&format!("  {label:18}"));
            for (c, ratio) in row.counts.iter().zip(&row.ratio) {
                s.push_str(&format!(" {:>width$}", cell(c, *ratio)));
            }
            s.push('\n');
        };
        line("total", &|c, _| c.total.to_string());
        line("ratio to stock", &|_, r| format!("{r:.2}x"));
        line("in kernel", &|c, _| c.kernel.to_string());
        line("entered by", &|c, _| c.entered_by.clone());
        for class in CLASSES {
            if row.counts.iter().any(|c| c.classes.get(*class).copied().unwrap_or(0) > 0) {
                line(class, &|c, _| c.classes.get(*class).copied().unwrap_or(0).to_string());
            }
        }
        if row.counts.iter().any(|c| c.rep_iterations > 0) {
            line("rep iterations", &|c, _| c.rep_iterations.to_string());
        }
    }
    s.push_str("\n(classes with 0 in every column are left out; --json has all)\n");
    for c in &r.columns {
        s.push_str(&format!("{:width$}  -cpu {}, sstep {}: {}\n", c.name, c.cpu_model, c.sstep_flags, c.what));
    }
    s.push_str("\nmitigations the guest kernel reported:\n");
    for c in &r.columns {
        let v = |k: &str| c.info.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str()).unwrap_or("?");
        s.push_str(&format!("{:width$}  cpl {}; meltdown: {}; spectre_v2: {}\n", c.name, v("cpl"), v("meltdown"), v("spectre_v2")));
    }
    s
}

impl PathReport {
    /// The `--json` object: per row, per column name, the count.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::{json, Map, Value};
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                let by = |f: &dyn Fn(usize) -> Value| -> Value {
                    Value::Object(self.columns.iter().enumerate().map(|(i, c)| (c.name.clone(), f(i))).collect::<Map<_, _>>())
                };
                json!({"name": r.name, "what": r.what, "counts": by(&|i| json!(r.counts[i])), "ratio": by(&|i| json!(r.ratio[i]))})
            })
            .collect();
        let columns: Vec<Value> = self
            .columns
            .iter()
            .map(|c| {
                let info: Map<String, Value> = c.info.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                json!({"name": c.name, "what": c.what, "image_dir": c.image_dir, "cmdline": c.cmdline, "cpu_model": c.cpu_model,
                       "sstep_flags": c.sstep_flags, "console_log": c.console_log, "info": info})
            })
            .collect();
        json!({
            "mode": "path",
            "kernel_version": self.kernel_version,
            "profile": self.profile,
            "accel": self.accel,
            "baseline": "stock",
            "classes": CLASSES,
            "configs": columns,
            "rows": rows,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> Instruction {
        Decoder::with_ip(64, bytes, 0, DecoderOptions::NONE).decode()
    }

    #[test]
    fn the_expensive_instructions_are_classified() {
        for (bytes, class) in [
            (&[0x0f, 0x05][..], "syscall"),
            (&[0x48, 0x0f, 0x07], "sysret"),
            (&[0x48, 0xcf], "iretq"),
            (&[0x0f, 0x01, 0xf8], "swapgs"),
            (&[0x0f, 0x22, 0xdf], "mov_cr3"),
            (&[0x0f, 0x00, 0x2c, 0x24], "verw"),
            (&[0x0f, 0x30], "wrmsr"),
            (&[0x0f, 0xae, 0xe8], "lfence"),
            (&[0xfa], "cli"),
            (&[0xfb], "sti"),
            (&[0x9c], "pushf"),
            (&[0x9d], "popf"),
        ] {
            assert_eq!(class_of(&decode(bytes)), Some(class), "{bytes:02x?}");
            assert!(CLASSES.contains(&class));
        }
        // mov to another control register, a read of cr3, a plain call: none
        for bytes in [&[0x0f, 0x22, 0xe7][..], &[0x0f, 0x20, 0xd8], &[0xff, 0x14, 0x25, 0x70, 0x03, 0x60, 0xff]] {
            assert_eq!(class_of(&decode(bytes)), None, "{bytes:02x?}");
        }
    }

    #[test]
    fn the_embedded_xc_bench_has_every_site() {
        let s = sites().unwrap();
        assert_eq!(s.rows.len(), PATH_ROWS.len());
        for &(start, end) in &s.rows {
            // `movl $nr,%eax; syscall`: 7 bytes, what the translation rewrites
            assert_eq!(end - start, 7);
            assert!(start > 0x400000 && start < KERNEL_HALF);
        }
        assert_ne!(s.marker, 0);
    }

    #[test]
    fn kernel_addresses_are_named_by_the_closest_text_symbol_below() {
        let m = SymbolMap::parse("ffffffff81000000 T _text\nffffffff81200040 T entry_SYSCALL_64\nffffffff81300000 D some_data\nffffffff81200160 t xc_call_stubs\n");
        assert_eq!(m.function(0xffffffff81200050), "entry_SYSCALL_64");
        assert_eq!(m.function(0xffffffff81200160), "xc_call_stubs");
        assert_eq!(m.function(0xffffffff81300010), "xc_call_stubs", "data symbols do not split text");
        assert_eq!(m.function(0x401000), "user");
        assert_eq!(m.function(0xffff800000000000), "?");
    }

    #[test]
    fn columns_are_bench_s_with_the_affected_stock_third() {
        let names: Vec<&str> = PATH_COLUMNS.iter().map(|c| c.name).collect();
        assert_eq!(names, ["stock", "stock-nomitig", "stock-kpti", "libos", "libos+xlat"]);
        assert_eq!(PATH_COLUMNS[2].tcg_cpu_model, Some(AFFECTED_CPU_MODEL));
        assert_eq!(PATH_COLUMNS[2].cmdline, ["pti=on", "mds=full"]);
    }
}
