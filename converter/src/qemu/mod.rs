//! Boot a kernel in QEMU and make sense of its serial console.
//!
//! [`run`] starts QEMU with the test initramfs, streams the console to a log
//! and a callback, and enforces a timeout; [`parse_console`] turns the log
//! into a [`ConsoleReport`]. The two are separate so stored logs can be
//! re-parsed without booting anything.

mod console;
mod runner;

pub use console::{parse_console, ConsoleReport, Problem, ProblemKind, ProbeResult, ProgramRun};
pub use runner::{
    command_line, kernel_cmdline, run, Accel, QemuConfig, QemuError, RunOutcome,
    DEFAULT_QEMU_BINARY,
};
