//! Command-line interface: parse, dispatch to one pipeline stage per
//! subcommand, print the result (plain or `--json`), map errors to exit codes.
//!
//! Exit codes: 0 success; 1 a boot ran but a check failed; 2 the request is
//! wrong (bad flag, unknown profile or option, bad tarball or checksum);
//! 3 a stage failed (make error, option lost in olddefconfig); 4 the host
//! is missing something or an I/O error happened.

mod abom;
mod bench;
mod boot;
mod build;
mod config;
mod patch;
mod pull;
mod source_args;

use crate::pipeline::Context;
use crate::ui::Ui;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

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
}

/// Exit code classes (see the module doc).
pub mod exit {
    /// A boot check failed.
    pub const CHECK_FAILED: i32 = 1;
    /// The request is wrong.
    pub const USAGE: i32 = 2;
    /// A stage failed.
    pub const STAGE: i32 = 3;
    /// Host or I/O problem.
    pub const HOST: i32 = 4;
}

/// A boot that ran but did not pass: exit code 1, report already printed.
#[derive(Debug, thiserror::Error)]
#[error("boot checks failed")]
pub struct ChecksFailed;

fn exit_code(err: &anyhow::Error) -> i32 {
    use crate::pipeline::configure::ConfigError;
    for cause in err.chain() {
        if cause.is::<ChecksFailed>() {
            return exit::CHECK_FAILED;
        }
        if cause.is::<crate::profile::ProfileError>() || cause.is::<crate::source::SourceError>() || cause.is::<crate::abom::AbomError>() {
            return exit::USAGE;
        }
        if let Some(c) = cause.downcast_ref::<ConfigError>() {
            return match c {
                ConfigError::OptionsLost { .. } => exit::STAGE,
                _ => exit::USAGE,
            };
        }
        if let Some(p) = cause.downcast_ref::<crate::patch::PatchError>() {
            return match p {
                crate::patch::PatchError::NotApplicable { .. } => exit::STAGE,
                _ => exit::USAGE,
            };
        }
        if cause.is::<crate::pipeline::make::MakeError>() {
            return exit::STAGE;
        }
        if cause.is::<crate::kconfig::KconfigError>() {
            return exit::STAGE;
        }
        if let Some(b) = cause.downcast_ref::<crate::pipeline::bench::BenchError>() {
            use crate::pipeline::bench::BenchError;
            return match b {
                BenchError::WrongMode { .. } | BenchError::Mismatch { .. } => exit::USAGE,
                BenchError::BootFailed { .. } | BenchError::CoarseClock { .. } | BenchError::Output { .. } => exit::STAGE,
            };
        }
    }
    exit::HOST
}

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
    let ctx = Context { cache: cli.cache.clone().unwrap_or_else(Context::default_cache), ui: ui.clone() };
    let result = match &cli.command {
        Command::Pull(a) => pull::exec(&ctx, a),
        Command::Analyze(a) => patch::exec_analyze(&ctx, a),
        Command::Patch(a) => patch::exec_patch(&ctx, a),
        Command::Config(a) => config::exec(&ctx, a),
        Command::Build(a) => build::exec(&ctx, a),
        Command::Boot(a) => boot::exec(&ctx, a),
        Command::Abom(a) => abom::exec(&ctx, a),
        Command::Bench(a) => bench::exec(&ctx, a),
    };
    match result {
        Ok(()) => 0,
        Err(err) => {
            let code = exit_code(&err);
            if code == exit::CHECK_FAILED {
                return code;
            }
            eprintln!("error: {err}");
            let causes: Vec<String> = err.chain().skip(1).map(|c| c.to_string()).collect();
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
