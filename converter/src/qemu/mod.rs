//! Boot a kernel in QEMU and make sense of its serial console.
//!
//! [`run`] starts QEMU with the test initramfs, streams the console to a log
//! and a callback, and enforces a timeout; [`parse_console`] turns the log
//! into a [`ConsoleReport`]. The two are separate so stored logs can be
//! re-parsed without booting anything.

mod console;
pub mod gdb;
mod runner;

pub use console::{parse_console, ConsoleReport, Problem, ProblemKind, ProbeResult, ProgramRun};
pub use runner::{
    command_line, kernel_cmdline, run, Accel, QemuConfig, QemuError, RunOutcome,
    DEFAULT_QEMU_BINARY,
};

/// QEMU is started so that it dies with the process that started it
/// ([`crate::host::dying_with_us`]).
pub use crate::host::dying_with_us as command;

#[cfg(test)]
mod command_tests {
    #[test]
    fn qemu_is_started_under_setpriv_when_both_exist_and_directly_otherwise() {
        let sh = vec!["sh".to_owned(), "-c".to_owned(), "true".to_owned()];
        let c = super::command(&sh);
        if crate::host::on_path("setpriv").is_some() {
            assert!(c.get_program().to_string_lossy().ends_with("setpriv"), "{c:?}");
            let args: Vec<_> = c.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
            assert_eq!(&args[..3], ["--pdeathsig", "KILL", "--"]);
            assert!(args[3].ends_with("/sh") && args[4..] == ["-c", "true"], "{args:?}");
        }
        let missing = vec!["no-such-qemu-xyz".to_owned()];
        assert_eq!(super::command(&missing).get_program(), "no-such-qemu-xyz");
    }
}

#[cfg(test)]
mod boot_tests {
    use super::*;
    use crate::guest::{find_busybox, write_initramfs, GuestPayload, InitramfsSpec};
    use std::time::Duration;

    /// End-to-end boot of a real kernel with the probe. Needs a bzImage with
    /// 8250 serial and initramfs support built in:
    /// `XC_TEST_KERNEL=/path/to/vmlinuz cargo test -p xc-convert --lib -- --ignored real_boot`
    #[test]
    #[ignore = "needs XC_TEST_KERNEL and takes tens of seconds under TCG"]
    fn real_boot_runs_probe() {
        let kernel = std::env::var_os("XC_TEST_KERNEL").expect("set XC_TEST_KERNEL");
        let dir = tempfile::tempdir().unwrap();
        let initrd = dir.path().join("initramfs.cpio");
        let spec = InitramfsSpec {
            programs: vec![GuestPayload::builtin("probe").unwrap()],
            busybox: find_busybox().unwrap(),
            files: vec![],
            require_entry_table: false,
        };
        write_initramfs(&spec, &initrd).unwrap();
        let mut cfg = QemuConfig::new(kernel.into(), initrd, dir.path().join("console.log"));
        cfg.timeout = Duration::from_secs(240);
        let outcome = run(&cfg, &mut |line| eprintln!("| {line}")).unwrap();
        let log = std::fs::read_to_string(&cfg.console_log).unwrap();
        let report = parse_console(&log);
        eprintln!("{outcome:?}\n{report:#?}");
        assert!(!outcome.timed_out);
        assert!(report.booted && report.done, "{report:#?}");
        assert_eq!(report.runs[0].rc, Some(0));
        assert_eq!(report.probes[0].cpl, 3, "stock kernel runs user code in ring 3");
        assert!(report.kernel_version_line.is_some());
    }
}
