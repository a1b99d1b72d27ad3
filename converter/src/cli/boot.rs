//! `xc-convert boot`

use crate::pipeline::boot::BootRequest;
use super::Session;
use crate::pipeline;
use super::args::VmArgs;
use std::path::PathBuf;

/// Boot an image directory in QEMU and check what the guest reports.
///
/// Builds an initramfs from busybox-static and the guest programs, boots it
/// with the serial console captured, and exits non-zero on a kernel panic,
/// oops, warning or BUG, a timeout, or a guest program that failed. The
/// built-in `probe` prints the CPL its process runs at, uname and the cost of
/// a system call.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// An image directory printed by `xc-convert build`.
    pub image_dir: PathBuf,
    /// Guest programs to run in order: built-in names or paths to static binaries.
    #[arg(long = "init", value_name = "PROGRAM", default_value = "probe", num_args = 1..)]
    pub programs: Vec<String>,
    /// Run the whole behaviour suite (probe, processes, threads, IPC, signals,
    /// memory faults, ptrace, red zone, ARCH_SET_GS, entry table and online
    /// translation) instead of --init.
    #[arg(long)]
    pub suite: bool,
    #[command(flatten)]
    pub vm: VmArgs,
    /// Extra kernel command-line words (repeatable), e.g. --append loglevel=8.
    #[arg(long, value_name = "WORD")]
    pub append: Vec<String>,
    /// Directory for console.log, initramfs.cpio and report.json [default: in the cache].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Offline binary translation: rewrite every guest program with `abom
    /// rewrite` before packing it, and add Debian's dynamic dash running on a
    /// rewritten libc.so.6. /init first checks that the kernel maps the entry
    /// table and, if not (a stock kernel), fails that check instead of
    /// running binaries that would crash. Add `--append xc_abom=off` to see
    /// the offline rewrite alone (no online translation by the kernel).
    #[arg(long)]
    pub translate: bool,
}

/// Run `boot`.
pub fn exec(ctx: &Session, args: &Args) -> anyhow::Result<()> {
    let req = BootRequest {
        image_dir: args.image_dir.clone(),
        programs: if args.suite {
            crate::guest::BEHAVIOUR_SUITE.iter().map(|s| s.to_string()).collect()
        } else {
            args.programs.clone()
        },
        accel: args.vm.accel,
        timeout: args.vm.timeout(),
        memory_mb: args.vm.memory,
        cpus: args.vm.cpus,
        cmdline_extra: args.append.clone(),
        out: args.out.clone(),
        translate: args.translate,
        cpu_model: None,
        gdb_socket: None,
    };
    super::prepare_host(ctx, crate::host::BOOT_PACKAGES, "booting images")?;
    let r = pipeline::boot::run(ctx, &req)?;
    let mut human = String::new();
    for p in &r.console.probes {
        human.push_str(&format!(
            "probe: CPL {} (cs={:#x}) {} {} {}; getppid {:.1} ns\n",
            p.cpl, p.cs, p.sysname, p.release, p.machine, p.getppid_ns
        ));
    }
    for run in &r.console.runs {
        human.push_str(&format!("{}: exit {}\n", run.name, run.rc.map(|c| c.to_string()).unwrap_or("?".into())));
    }
    human.push_str(&format!("{} in {:.1}s; console: {}", if r.passed { "PASS" } else { "FAIL" }, r.seconds, r.console_log.display()));
    for f in &r.failures {
        human.push_str(&format!("\n  failed: {f}"));
    }
    super::emit(&ctx.ui, &r, &human);
    if r.passed {
        Ok(())
    } else {
        Err(super::ChecksFailed.into())
    }
}
