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
    /// translation, seccomp filters and rseq on each entry path) instead of
    /// --init.
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
    /// Also build the kernel's own selftests (tools/testing/selftests) from
    /// the same tree the image was built from, static and 64-bit, pack them
    /// and run each under --kselftest-timeout, after the --init programs.
    /// `--kselftest` runs x86 seccomp rseq futex timers ptrace clone3 pidfd
    /// exec membarrier; `--kselftest=x86,rseq` chooses. The build is cached
    /// per tree and suite list. Writes kselftest.json (PASS / FAIL / SKIP per
    /// test) beside report.json; compare two with `xc-convert kselftest
    /// compare`. Exit 1 only for the boot itself (kernel oops, WARNING, BUG,
    /// timeout): a failing selftest is a result, not an error.
    #[arg(long, value_name = "SUITES", num_args = 0..=1, require_equals = true, value_delimiter = ',', default_missing_value = "")]
    pub kselftest: Option<Vec<String>>,
    /// Seconds each selftest may run before it is stopped (SIGTERM) and failed.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub kselftest_timeout: u64,
    /// A selftest (`suite:test`) or suite not to run (repeatable), e.g. one
    /// too slow under TCG; it is reported as NOT_RUN.
    #[arg(long, value_name = "TEST")]
    pub kselftest_skip: Vec<String>,
}

/// The suites `--kselftest` asked for (the defaults for a bare flag).
fn kselftest_suites(arg: &[String]) -> Vec<String> {
    let named: Vec<String> = arg.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    if named.is_empty() {
        crate::kselftest::DEFAULT_SUITES.iter().map(|s| s.to_string()).collect()
    } else {
        named
    }
}

/// What `boot --kselftest` prints with --json.
#[derive(serde::Serialize)]
struct KselftestBoot<'a> {
    boot: &'a pipeline::boot::BootReport,
    kselftest: &'a crate::kselftest::KselftestReport,
}

/// Run `boot`.
pub fn exec(ctx: &Session, args: &Args) -> anyhow::Result<()> {
    super::prepare_host(ctx, crate::host::BOOT_PACKAGES, "booting images")?;
    let mut extra_programs = vec![];
    let mut extra_files = vec![];
    let mut built = None;
    if let Some(arg) = &args.kselftest {
        let suites = kselftest_suites(arg);
        let manifest = pipeline::build::load_verified(&args.image_dir, false)?;
        let mut pkgs: Vec<&str> = crate::host::KERNEL_BUILD_PACKAGES.to_vec();
        pkgs.extend(crate::kselftest::SELFTEST_PACKAGES);
        super::prepare_host(ctx, &pkgs, "building kernel selftests")?;
        let b = crate::kselftest::ensure_built(ctx, &args.image_dir, &manifest, &suites)?;
        ctx.status(format!("selftests {}: {}", if b.cache_hit { "cached" } else { "built" }, b.dir.display()));
        let (runner, files) = crate::kselftest::guest_files(&b, args.kselftest_timeout, &args.kselftest_skip)?;
        extra_programs.push(runner);
        extra_files = files;
        built = Some(b);
    }
    let programs = if args.suite { crate::guest::BEHAVIOUR_SUITE.iter().map(|s| s.to_string()).collect() } else { args.programs.clone() };
    let req = BootRequest {
        accel: args.vm.accel,
        timeout: args.vm.timeout(),
        memory_mb: args.vm.memory,
        cpus: args.vm.cpus,
        cmdline_extra: args.append.clone(),
        out: args.out.clone(),
        translate: args.translate,
        extra_programs,
        extra_files,
        ..BootRequest::new(args.image_dir.clone(), programs)
    };
    let r = pipeline::boot::run(ctx, &req)?;
    let ksft = match &built {
        Some(b) => Some(kselftest_report(&r, b, args)?),
        None => None,
    };
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
    match &ksft {
        Some(k) => {
            for t in &k.tests {
                human.push_str(&format!("\n  {:<9} {}{}", t.verdict.to_string(), t.id(), if t.reason.is_empty() { String::new() } else { format!(" ({})", t.reason) }));
            }
            use crate::kselftest::Verdict as V;
            human.push_str(&format!(
                "\nselftests: {} PASS, {} FAIL, {} SKIP, {} NOT_BUILT, {} NOT_RUN; {}",
                k.count(V::Pass),
                k.count(V::Fail),
                k.count(V::Skip),
                k.count(V::NotBuilt),
                k.count(V::NotRun),
                r.out_dir.join(crate::kselftest::REPORT_FILE).display()
            ));
            super::emit(&ctx.ui, &KselftestBoot { boot: &r, kselftest: k }, &human);
        }
        None => super::emit(&ctx.ui, &r, &human),
    }
    if r.passed {
        Ok(())
    } else {
        Err(super::ChecksFailed.into())
    }
}

/// Per-test results of a kselftest boot, written to kselftest.json.
fn kselftest_report(r: &pipeline::boot::BootReport, b: &crate::kselftest::BuiltSelftests, args: &Args) -> anyhow::Result<crate::kselftest::KselftestReport> {
    let console = std::fs::read_to_string(&r.console_log).map_err(|source| crate::kselftest::KselftestError::Read { path: r.console_log.clone(), source })?;
    let report = crate::kselftest::KselftestReport {
        kernel_version: r.kernel_version.clone(),
        mode: r.mode,
        image_dir: r.image_dir.clone(),
        selftests_dir: b.dir.clone(),
        timeout_secs: args.kselftest_timeout,
        kernel_problems: r.console.problems.iter().filter(|p| p.kind.is_kernel_fault()).map(|p| p.line.clone()).collect(),
        tests: crate::kselftest::parse_results(&console, b, args.kselftest_timeout, &args.kselftest_skip),
    };
    build_farm::write_json_atomic(&r.out_dir.join(crate::kselftest::REPORT_FILE), &report)?;
    Ok(report)
}
