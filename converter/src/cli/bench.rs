//! `xc-convert bench`

use super::args::{ProfileArgs, VmArgs};
use super::source_args::SourceArgs;
use crate::pipeline::image::ImageSpec;
use crate::pipeline::bench::{self, matrix, BenchReport, BenchRequest, BenchSettings, ColumnRun, COLUMNS};
use crate::pipeline::build::Mode;
use super::Session;
use std::path::PathBuf;

/// Measure what the conversion buys: ns per system call, stock vs libos.
///
/// Boots the stock and the libos image of one kernel and profile, one after
/// the other under the same VMM, in four configurations, runs the built-in
/// `xc_bench` in each and prints ns per operation with the ratio to stock:
///
///   stock          the stock image as built
///   stock-nomitig  the stock image with `mitigations=off nopti`: how much of
///                  the difference turning the mitigations off would buy
///   libos          the libos image with `xc_abom=off`: processes at CPL 0,
///                  system calls still entered by SYSCALL
///   libos+xlat     the libos image as built: the kernel rewrites each
///                  `mov $nr,%eax; syscall` site into a call through the
///                  entry table the first time it runs
///
/// Rows: getppid; write+read of 1 byte on a pipe; a 1-byte pipe ping-pong
/// with a forked child (per round trip); FUTEX_WAKE+FUTEX_WAIT that return at
/// once; mmap+touch+munmap of one page; fork+exit+wait. Each is the fastest
/// of 3 timed batches after a warm-up. Under the table, the counters of
/// /proc/xc_libos show which way the libos columns' calls went.
///
/// With --kernel/--profile (the default: 6.1, minimal) the images come from
/// the same build pipeline as `xc-convert build`, so a built pair is a cache
/// hit and a missing one is built; --stock and --libos take the image
/// directories `build` printed instead.
///
/// Under TCG (the default) every number is a cost of the emulator, not of
/// hardware: compare the columns, not the absolute values. docs/bench.md
/// has a reference table. Example:
///
///   xc-convert bench --kernel 6.1 --profile minimal
///
/// --path counts instructions instead of timing: for one warm call of each
/// row (getppid, 1-byte pipe write and read, futex wake and wait, mmap,
/// munmap) it single-steps the guest through QEMU's gdbstub, interrupts
/// masked, and prints the instructions executed from the call site until
/// it returns: total, in the kernel, and the expensive ones (SYSCALL,
/// SYSRET, IRETQ, SWAPGS, MOV to CR3, VERW, WRMSR, LFENCE, CLI/STI,
/// PUSHF/POPF). A fifth column, stock-kpti, boots the stock image with
/// pti=on mds=full on a CPU model the kernel treats as affected by Meltdown
/// and MDS. The same numbers come out on every run:
///
///   xc-convert bench --path --kernel 6.1 --profile minimal
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// A stock image directory (printed by `xc-convert build`), instead of building.
    #[arg(long, value_name = "DIR", requires = "libos", conflicts_with_all = ["kernel", "tarball", "dir", "git", "profile", "profiles_dir"])]
    pub stock: Option<PathBuf>,
    /// A libos image directory (`xc-convert build --mode libos`) of the same kernel and profile.
    #[arg(long, value_name = "DIR", requires = "stock")]
    pub libos: Option<PathBuf>,
    /// Base iteration count: getppid's; dearer rows divide it (fork by 2000).
    /// The default makes each of the 3 timed batches of a row ~0.1 s under TCG.
    #[arg(long, value_name = "N", default_value_t = bench::DEFAULT_ITERATIONS, value_parser = clap::value_parser!(u64).range(1..))]
    pub iterations: u64,
    #[command(flatten)]
    pub vm: VmArgs,
    /// TSC frequency the guests are told (`tsc_early_khz=`), so none depends
    /// on calibrating against the emulated PIT, which fails on a busy host
    /// and leaves a jiffies clock [default under TCG: the host's TSC,
    /// measured; under KVM: not pinned]. 0: do not pin.
    #[arg(long, value_name = "KHZ")]
    pub tsc_khz: Option<u64>,
    /// Count the instructions of one warm call per row (single-stepping
    /// through QEMU's gdbstub) instead of timing; deterministic.
    #[arg(long, conflicts_with_all = ["iterations", "tsc_khz"])]
    pub path: bool,
    /// Parallel compile jobs when an image has to be built [default: number of CPUs].
    #[arg(short, long)]
    pub jobs: Option<usize>,
}

/// Run `bench`.
pub fn exec(ctx: &Session, args: &Args) -> anyhow::Result<()> {
    let (stock, libos) = match (&args.stock, &args.libos) {
        (Some(s), Some(l)) => (s.clone(), l.clone()),
        _ => {
            let mut dirs = Vec::new();
            for mode in [Mode::Stock, Mode::Libos] {
                let spec = ImageSpec { source: args.source.spec(), profile: args.profile.profile_ref(), mode };
                let image = super::build::image_for(ctx, &spec, &super::build::options(args.jobs))?;
                ctx.status(format!(
                    "{mode} image{}: {}",
                    if image.cache_hit { " (cached)" } else { " built" },
                    image.dir.display()
                ));
                dirs.push(image.dir);
            }
            (dirs.remove(0), dirs.remove(0))
        }
    };
    super::prepare_host(ctx, crate::host::BOOT_PACKAGES, "booting images")?;
    if args.path {
        let req = bench::path::PathRequest { stock, libos, accel: args.vm.accel, timeout: args.vm.timeout(), memory_mb: args.vm.memory };
        let report = bench::path::run(ctx, &req)?;
        super::emit(&ctx.ui, &report.to_json(), &bench::path::render(&report));
        return Ok(());
    }
    let tsc_khz = bench::tsc::pinned(args.tsc_khz, args.vm.accel)?;
    if let (None, Some(k)) = (args.tsc_khz, tsc_khz) {
        ctx.status(format!("host TSC {k} kHz: every guest boots with tsc_early_khz={k}"));
    }
    let req = BenchRequest {
        stock,
        libos,
        settings: BenchSettings {
            iterations: args.iterations,
            accel: args.vm.accel,
            timeout: args.vm.timeout(),
            memory_mb: args.vm.memory,
            cpus: args.vm.cpus,
            tsc_khz,
        },
    };
    let report = bench::run(ctx, &req)?;
    let warnings = bench::warnings(&report);
    for w in &warnings {
        ctx.status(format!("warning: {w}"));
    }
    super::emit(&ctx.ui, &report.to_json(&warnings), &human(&report));
    Ok(())
}

/// The plain-text report: a title, the table, what each column is, the
/// counters, and the accelerator footnote.
fn human(r: &BenchReport) -> String {
    let tsc = r.tsc_khz.map(|k| format!(", tsc_early_khz={k}")).unwrap_or_default();
    let mut s = format!(
        "Linux {} profile {}: xc_bench, {} iterations, accel {}{tsc}\n\n",
        r.kernel_version, r.profile, r.iterations, r.accel
    );
    s.push_str(&matrix::render_table(&r.matrix));
    s.push('\n');
    let width = COLUMNS.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in &r.configs {
        s.push_str(&format!("{:width$}  {}\n", c.name, c.what));
    }
    s.push_str("\nwhat the guest saw (/proc/xc_libos counters: added while xc_bench ran):\n");
    for c in &r.configs {
        s.push_str(&format!("{:width$}  {}\n", c.name, counters(c)));
    }
    s.push_str("\nmitigations the guest kernel reported (/sys/devices/system/cpu/vulnerabilities):\n");
    for c in &r.configs {
        let v = |k: &str| c.output.info(k).unwrap_or("?").to_string();
        s.push_str(&format!("{:width$}  meltdown: {}; spectre_v2: {}\n", c.name, v("meltdown"), v("spectre_v2")));
    }
    s.push('\n');
    s.push_str(&bench::accel_note(&r.accel));
    s
}

/// The counters worth a glance, e.g. `cpl 0; syscalls_via_table +120034, ...`.
fn counters(c: &ColumnRun) -> String {
    const KEYS: &[&str] = &["syscalls_via_syscall", "syscalls_via_table", "abom_sites_translated", "abom_sites_skipped", "ud_fixups"];
    let cpl = c.output.info("cpl").unwrap_or("?");
    let cs = c.output.info("clocksource").unwrap_or("?");
    if c.output.info("xc_libos") == Some("absent") {
        return format!("cpl {cpl}; clocksource {cs}; no /proc/xc_libos");
    }
    let shown: Vec<String> = KEYS.iter().filter_map(|k| c.output.info(k).map(|v| format!("{k} {v}"))).collect();
    format!("cpl {cpl}; clocksource {cs}; {}", shown.join(", "))
}
