//! `xc-convert abom`

use crate::abom;
use super::Session;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// Binary translation: turn system calls into calls through the entry table.
///
/// Decodes the executable segments of an x86-64 ELF file (executable or
/// shared library) with a real x86 decoder and rewrites each
/// `mov $nr,%eax; syscall` into `call *disp32` to the entry-table slot of
/// `nr` (also `mov $nr,%rax; syscall`, and Go's `mov 0x8(%rsp),%rax;
/// syscall` through the stack-number slot; see docs/abi.md). Every other
/// `syscall` is left alone and reported with the reason, including sites
/// near code that keeps data below %rsp, which the call would overwrite.
/// A rewritten file only runs on a libOS kernel that maps the entry table
/// (`boot --translate` checks that before running anything).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Report the sites a rewrite would change, and the syscalls it would leave alone.
    Scan {
        /// ELF file to read.
        input: PathBuf,
    },
    /// Write a rewritten copy of IN to OUT (atomically; same size and mode).
    Rewrite {
        /// ELF file to read.
        input: PathBuf,
        /// Where to write the rewritten file.
        output: PathBuf,
        /// Also write the JSON report (every site and every syscall left alone) here.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
    },
}

fn human(report: &abom::Report) -> String {
    let mut s = String::new();
    for site in &report.sites {
        s.push_str(&format!("site  {:#010x} vaddr {:#x}  {} ({})\n", site.offset, site.vaddr, site.name, site.nr));
    }
    for l in &report.left_alone {
        s.push_str(&format!("left  {:#010x} vaddr {:#x}  {}\n", l.offset, l.vaddr, l.reason));
    }
    s.push_str(&format!(
        "{} of {} syscall instructions rewritable, {} left alone",
        report.sites.len(),
        report.syscalls_seen,
        report.left_alone.len()
    ));
    s
}

/// Where writing OUT lands: a symlink is followed to its file (as `cp`
/// does), so the link stays a link; a dangling link or a new name is
/// written as given.
fn write_target(output: &std::path::Path) -> PathBuf {
    let is_link = std::fs::symlink_metadata(output).is_ok_and(|m| m.file_type().is_symlink());
    match output.canonicalize() {
        Ok(real) if is_link => real,
        _ => output.to_path_buf(),
    }
}

/// Run `abom`.
pub fn exec(ctx: &Session, args: &Args) -> anyhow::Result<()> {
    match &args.action {
        Action::Scan { input } => {
            let bytes = abom::read_elf_file(input)?;
            let report = abom::scan(&bytes).map_err(|e| anyhow::Error::new(e).context(input.display().to_string()))?;
            super::emit(&ctx.ui, &report, &human(&report));
        }
        Action::Rewrite { input, output, report: report_path } => {
            // The mode is read before anything is written: IN and OUT may be
            // one file (in place) or one may be a link to the other.
            let bytes = abom::read_elf_file(input)?;
            let mode = std::fs::metadata(input).map_err(|source| abom::AbomError::Read { path: input.clone(), source })?.permissions().mode() & 0o7777;
            let (out, report) = abom::rewrite(&bytes).map_err(|e| anyhow::Error::new(e).context(input.display().to_string()))?;
            build_farm::write_atomic_with_mode(&write_target(output), &out, mode)?;
            if let Some(p) = report_path {
                build_farm::write_json_atomic(p, &report)?;
            }
            super::emit(&ctx.ui, &report, &format!("{}\nwrote {}", human(&report), output.display()));
        }
    }
    Ok(())
}
