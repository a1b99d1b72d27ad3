//! Command-line interface: parse, dispatch to one pipeline stage per
//! subcommand, print the result (plain or `--json`), map errors to exit codes.
//!
//! Exit codes: 0 success; 1 a boot ran but a check failed; 2 the request is
//! wrong (bad flag, unknown profile or option, bad tarball or checksum);
//! 3 a stage failed (make error, option lost in olddefconfig); 4 the host
//! is missing something or an I/O error happened.

mod abom;
pub mod args;
mod bench;
mod boot;
mod build;
mod cache;
mod config;
mod exit_codes;
mod matrix;
mod kselftest;
mod package;
mod patch;
mod pull;
mod reporter;
mod run;
mod source_args;
mod wrap;

use crate::pipeline::image::ImageSpec;
use crate::pipeline::Context;
use crate::source::SourceSpec;
use crate::ui::Ui;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;

pub use exit_codes::exit_code;

const ABOUT: &str = "Turn a stock Linux kernel tree into a library-OS kernel for one container";

const LONG_ABOUT: &str = "\
Turn a stock Linux kernel tree into a library-OS kernel for one container.

The pipeline is a sequence of stages; each one runs the stages before it
when their results are missing, and caches its own result under a key
that is the hash of its inputs:

  pull    get a kernel tree (default: Debian's linux-source tarball)
  analyze find the conversion points in a tree; say whether it can be converted
  patch   generate the ring-0 patch series and a converted copy of the tree
  config  merge a kconfig profile, run olddefconfig, prove every request survived
  build   compile bzImage + vmlinux with a manifest.json of what went in
  boot    boot an image in QEMU with an initramfs and check what the guest says
  abom    rewrite syscall sites of ELF files into calls through the entry table
  bench   boot stock and libos images of one kernel, print ns per system call
  cache   show what the cache holds and free space (stale staging, old boots)
  wrap    pack a container rootfs + spec with a kernel image into a VM image
  run     run a wrapped container in its own VM on its own kernel
  matrix  run kernels x profiles x modes through the stages, report PASS/FAIL per stage
  package make .deb packages of an image (bindeb-pkg for stock, a guest-kernel package for libos)

From nothing to a booted kernel:

  dir=$(xc-convert build --kernel 6.1 --profile minimal | tail -n1)
  xc-convert boot \"$dir\"

The same kernel converted to a library-OS kernel (processes at CPL 0):

  dir=$(xc-convert build --kernel 6.1 --profile minimal --mode libos | tail -n1)
  xc-convert boot \"$dir\"";

/// The top-level command line.
#[derive(Debug, Parser)]
#[command(name = "xc-convert", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    /// Cache directory for trees, configs and images [default: $XDG_CACHE_HOME/xc-convert].
    #[arg(long, global = true, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Print one JSON object on stdout instead of text (for pipelines).
    #[arg(long, global = true)]
    pub json: bool,
    /// More detail on stderr (-v: steps and guest console).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The stage to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands, one per pipeline stage (each `Args` doc comment is its help).
#[derive(Debug, Subcommand)]
#[allow(missing_docs)]
pub enum Command {
    Pull(pull::Args),
    Analyze(patch::AnalyzeArgs),
    Patch(patch::PatchArgs),
    Config(config::Args),
    Build(build::Args),
    Boot(boot::Args),
    Abom(abom::Args),
    Bench(bench::Args),
    Kselftest(kselftest::Args),
    Cache(cache::Args),
    Wrap(wrap::Args),
    Run(run::Args),
    Matrix(matrix::Args),
    Package(package::Args),
}

/// One run of the CLI: the pipeline's context plus how to talk to the user.
/// Derefs to the [`Context`], so a command hands it straight to a stage.
pub struct Session {
    /// What the stages see.
    pub ctx: Context,
    /// Output preferences (only the CLI prints).
    pub ui: Ui,
}

impl std::ops::Deref for Session {
    type Target = Context;
    fn deref(&self) -> &Context {
        &self.ctx
    }
}

/// Install what a set of stages needs before running them: the one place
/// where xc-convert changes the host (apt-get as root, saying so).
pub(crate) fn prepare_host(s: &Session, packages: &[&str], purpose: &str) -> anyhow::Result<()> {
    crate::host::ensure_packages(packages, purpose, &|m| s.status(m))?;
    Ok(())
}

/// Host preparation for pulling `source`: Debian's linux-source-X.Y
/// package for `--kernel X.Y`, git for `--git`.
pub(crate) fn prepare_host_for_source(s: &Session, source: &SourceSpec) -> anyhow::Result<()> {
    match source {
        SourceSpec::Debian { series, .. } => {
            // An invalid series is the pull stage's error to report, by name.
            if let Ok(package) = crate::source::debian_package_name(series) {
                prepare_host(s, &[package.as_str()], "the kernel source")?;
            }
        }
        SourceSpec::Git { .. } => prepare_host(s, &["git"], "reading the git repository")?,
        // apt-get download needs no package installed; pull runs it.
        SourceSpec::DebianVersion { .. } | SourceSpec::Tarball { .. } | SourceSpec::Dir(_) => {}
    }
    Ok(())
}

/// Host preparation for getting `spec`'s image: its source and the kernel
/// build toolchain.
pub(crate) fn prepare_host_for_image(s: &Session, spec: &ImageSpec) -> anyhow::Result<()> {
    prepare_host_for_source(s, &spec.source)?;
    prepare_host(s, crate::host::KERNEL_BUILD_PACKAGES, "kernel build")
}

pub use exit_codes::exit;

/// `run`'s container exited with this status: ours too, nothing printed.
#[derive(Debug, thiserror::Error)]
#[error("the container exited with status {0}")]
pub struct ExitWith(pub i32);

/// A boot that ran but did not pass: exit code 1, report already printed.
#[derive(Debug, thiserror::Error)]
#[error("boot checks failed")]
pub struct ChecksFailed;

/// Print a result: JSON on stdout with `--json`, else the human text.
pub(crate) fn emit<T: serde::Serialize>(ui: &Ui, value: &T, human: &str) {
    if ui.json {
        println!("{}", serde_json::to_string_pretty(value).unwrap_or_else(|_| "{}".into()));
    } else {
        println!("{human}");
    }
}

/// A command line clap refused (or `--help`/`--version`, which are not
/// errors): clap's text on stderr as always, and with `--json` the same
/// `{error, causes, exit_code}` object on stdout as every other error, so a
/// pipeline reading stdout always gets one.
fn usage_error(err: clap::Error) -> i32 {
    use clap::error::ErrorKind;
    if matches!(err.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand) {
        let _ = err.print();
        return 0;
    }
    let _ = err.print();
    if json_requested(std::env::args_os().skip(1)) {
        // clap's first paragraph is the error (with the argument it names on
        // the next lines); the rest (usage, hints) are the causes.
        let text = err.render().to_string();
        let (head, rest) = text.split_once("\n\n").unwrap_or((&text, ""));
        let error = head.lines().map(str::trim).collect::<Vec<_>>().join(" ");
        let error = error.trim_start_matches("error: ").to_string();
        let causes: Vec<String> = rest.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
        let v = serde_json::json!({"error": error, "causes": causes, "exit_code": exit::USAGE});
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    }
    exit::USAGE
}

/// Whether `--json` is among the arguments (before a `--`), for when clap
/// could not parse them into a [`Cli`].
fn json_requested(args: impl Iterator<Item = std::ffi::OsString>) -> bool {
    args.take_while(|a| a != "--").any(|a| a == "--json")
}

/// Parse the process arguments, run, and return the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(err),
    };
    let ui = Ui { json: cli.json, verbose: cli.verbose };
    let reporter = Arc::new(reporter::Terminal::new(ui.clone()));
    let ctx = Context::new(cli.cache.clone().unwrap_or_else(Context::default_cache), reporter);
    let session = Session { ctx, ui: ui.clone() };
    let ctx = &session;
    let result = match &cli.command {
        Command::Pull(a) => pull::exec(ctx, a),
        Command::Analyze(a) => patch::exec_analyze(ctx, a),
        Command::Patch(a) => patch::exec_patch(ctx, a),
        Command::Config(a) => config::exec(ctx, a),
        Command::Build(a) => build::exec(ctx, a),
        Command::Boot(a) => boot::exec(ctx, a),
        Command::Abom(a) => abom::exec(ctx, a),
        Command::Bench(a) => bench::exec(ctx, a),
        Command::Kselftest(a) => kselftest::exec(ctx, a),
        Command::Cache(a) => cache::exec(ctx, a),
        Command::Wrap(a) => wrap::exec(ctx, a),
        Command::Run(a) => run::exec(ctx, a),
        Command::Matrix(a) => matrix::exec(ctx, a),
        Command::Package(a) => package::exec(ctx, a),
    };
    match result {
        Ok(()) => 0,
        Err(err) => {
            let code = exit_code(&err);
            if code == exit::CHECK_FAILED || err.chain().any(|c| c.is::<ExitWith>()) {
                return code;
            }
            eprintln!("error: {err}");
            // A message that already includes its source's text (`{source}`
            // in its format) would print that cause twice: skip what was said.
            let mut said = err.to_string();
            let mut causes: Vec<String> = Vec::new();
            for c in err.chain().skip(1) {
                let text = c.to_string();
                if !said.contains(&text) {
                    said.push('\n');
                    said.push_str(&text);
                    causes.push(text);
                }
            }
            if !causes.is_empty() {
                eprintln!("\nCaused by:");
                for c in &causes {
                    eprintln!("    {c}");
                }
            }
            if ui.json {
                let v = serde_json::json!({"error": err.to_string(), "causes": causes, "exit_code": code});
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            }
            code
        }
    }
}
