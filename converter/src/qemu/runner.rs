//! Run QEMU with a kernel + initramfs and stream its serial console.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Looked up in `PATH` unless the config names another binary.
pub const DEFAULT_QEMU_BINARY: &str = "qemu-system-x86_64";

/// How QEMU executes guest code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Accel {
    /// Pure emulation: slow but works everywhere, including hosts whose
    /// `/dev/kvm` cannot run ordinary kernels. The default for that reason.
    #[default]
    Tcg,
    /// Hardware virtualization through `/dev/kvm`.
    Kvm,
}

impl Accel {
    /// The name QEMU's `-accel` takes (and reports print).
    pub fn qemu_name(self) -> &'static str {
        match self {
            Accel::Tcg => "tcg",
            Accel::Kvm => "kvm",
        }
    }

    /// TCG's `max` model exposes every feature TCG can emulate; under KVM
    /// `host` passes the real CPU through.
    fn cpu_model(self) -> &'static str {
        match self {
            Accel::Tcg => "max",
            Accel::Kvm => "host",
        }
    }
}

#[derive(Debug, Clone)]
pub struct QemuConfig {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub accel: Accel,
    pub memory_mb: u32,
    /// Virtual CPUs (`-smp`); more than one needs an SMP kernel with ACPI.
    pub cpus: u32,
    /// Appended after the base command line, so later values win
    /// (e.g. `loglevel=4`).
    pub cmdline_extra: Vec<String>,
    /// Wall-clock limit for the whole VM run.
    pub timeout: Duration,
    /// Receives every console line as it arrives.
    pub console_log: PathBuf,
    pub qemu_binary: PathBuf,
    /// `-cpu` instead of the accelerator's default (`max` / `host`), e.g. a
    /// model the guest kernel treats as affected by Meltdown.
    pub cpu_model: Option<String>,
    /// Start the VM stopped (`-S`) with QEMU's gdbstub listening on this
    /// Unix socket; a debugger must connect and continue it.
    pub gdb_socket: Option<PathBuf>,
}

impl QemuConfig {
    /// A config with the defaults: TCG, 512 MiB, 5 minute timeout.
    pub fn new(kernel: PathBuf, initrd: PathBuf, console_log: PathBuf) -> Self {
        Self {
            kernel,
            initrd,
            accel: Accel::Tcg,
            memory_mb: 512,
            cpus: 1,
            cmdline_extra: Vec::new(),
            timeout: Duration::from_secs(300),
            console_log,
            qemu_binary: PathBuf::from(DEFAULT_QEMU_BINARY),
            cpu_model: None,
            gdb_socket: None,
        }
    }
}

#[derive(Debug)]
pub struct RunOutcome {
    /// QEMU's exit status (after our kill when `timed_out`).
    pub exit_status: ExitStatus,
    pub timed_out: bool,
    pub duration: Duration,
    /// QEMU's own diagnostics (bad arguments, missing files, KVM errors).
    pub stderr: String,
}

#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    #[error("{what} {path} does not exist")]
    MissingInput { what: &'static str, path: PathBuf },
    #[error("KVM requested but /dev/kvm is not available; use the TCG accelerator")]
    KvmUnavailable,
    #[error("cannot start `{command}` (is QEMU installed? Debian: apt-get install qemu-system-x86)")]
    Spawn { command: String, #[source] source: std::io::Error },
    #[error("cannot write console log {path}")]
    ConsoleLog { path: PathBuf, #[source] source: std::io::Error },
    #[error("waiting for `{command}` failed")]
    Wait { command: String, #[source] source: std::io::Error },
}

/// The kernel command line used for boot tests.
///
/// `panic=-1` reboots at once on a panic, and with `-no-reboot` that makes
/// QEMU exit instead of hanging until the timeout. Oopses are left non-fatal
/// (no `oops=panic`, no `panic_on_warn`) so one bug does not hide the next;
/// `loglevel=7` keeps warnings and the version banner on the console.
pub fn kernel_cmdline(cfg: &QemuConfig) -> String {
    let mut words: Vec<&str> =
        vec!["console=ttyS0", "earlyprintk=serial", "panic=-1", "loglevel=7", "rdinit=/init"];
    words.extend(cfg.cmdline_extra.iter().map(String::as_str));
    words.join(" ")
}

/// Full QEMU argv (binary first), for running and for reproduction reports.
pub fn command_line(cfg: &QemuConfig) -> Vec<String> {
    let mut argv: Vec<String> = vec![cfg.qemu_binary.display().to_string()];
    let mut push = |a: &str, b: String| argv.extend([a.to_owned(), b]);
    push("-accel", cfg.accel.qemu_name().to_owned());
    push("-cpu", cfg.cpu_model.clone().unwrap_or_else(|| cfg.accel.cpu_model().to_owned()));
    push("-m", cfg.memory_mb.to_string());
    push("-smp", cfg.cpus.max(1).to_string());
    push("-serial", "stdio".to_owned());
    push("-display", "none".to_owned());
    push("-kernel", cfg.kernel.display().to_string());
    push("-initrd", cfg.initrd.display().to_string());
    push("-append", kernel_cmdline(cfg));
    argv.extend(["-nodefaults".to_owned(), "-no-reboot".to_owned()]);
    if let Some(sock) = &cfg.gdb_socket {
        argv.extend([
            "-chardev".to_owned(),
            format!("socket,id=xcgdb,path={},server=on,wait=off", sock.display()),
            "-gdb".to_owned(),
            "chardev:xcgdb".to_owned(),
            "-S".to_owned(),
        ]);
        // Under TCG a debugged run is made deterministic: the virtual clock
        // (timers, TSC) advances with instructions executed, not host time,
        // so the kernel state at the counted call is the same on every run.
        if cfg.accel == Accel::Tcg {
            argv.extend(["-icount".to_owned(), "shift=0,sleep=off".to_owned()]);
        }
    }
    argv
}

/// Boot the VM and stream its console.
///
/// Each console line is written (and flushed) to `cfg.console_log` as it
/// arrives, so a hung or killed VM still leaves a complete log, and then
/// passed to `on_line`. When `cfg.timeout` expires QEMU is killed and the
/// outcome reports `timed_out`.
pub fn run(cfg: &QemuConfig, on_line: &mut dyn FnMut(&str)) -> Result<RunOutcome, QemuError> {
    check_inputs(cfg)?;
    let argv = command_line(cfg);
    let command = crate::shell::join(&argv);
    let mut log = File::create(&cfg.console_log)
        .map_err(|source| QemuError::ConsoleLog { path: cfg.console_log.clone(), source })?;

    let start = Instant::now();
    let mut child = spawn(&argv, &command)?;
    let lines = spawn_line_reader(child.stdout.take().expect("stdout is piped"));
    let stderr = spawn_stderr_reader(child.stderr.take().expect("stderr is piped"));
    let deadline = start + cfg.timeout;

    let log_line = |log: &mut File, line: &str| -> Result<(), QemuError> {
        writeln!(log, "{line}")
            .and_then(|()| log.flush())
            .map_err(|source| QemuError::ConsoleLog { path: cfg.console_log.clone(), source })
    };
    let streamed = pump(&lines, deadline, &mut |line| {
        log_line(&mut log, line)?;
        on_line(line);
        Ok(())
    });
    if let Err(e) = streamed {
        kill(&mut child);
        return Err(e);
    }
    let wait_err = |source| QemuError::Wait { command: command.clone(), source };
    let (exit_status, timed_out) = wait_until(&mut child, deadline).map_err(wait_err)?;
    // After a kill the reader may still be blocked if QEMU left a grandchild
    // holding the pipe; only collect stderr when the process ended by itself.
    let stderr = if timed_out { String::new() } else { stderr.join().unwrap_or_default() };
    Ok(RunOutcome { exit_status, timed_out, duration: start.elapsed(), stderr })
}

fn check_inputs(cfg: &QemuConfig) -> Result<(), QemuError> {
    for (what, path) in [("kernel image", &cfg.kernel), ("initramfs", &cfg.initrd)] {
        if !path.is_file() {
            return Err(QemuError::MissingInput { what, path: path.clone() });
        }
    }
    if cfg.accel == Accel::Kvm && !Path::new("/dev/kvm").exists() {
        return Err(QemuError::KvmUnavailable);
    }
    Ok(())
}

fn spawn(argv: &[String], command: &str) -> Result<Child, QemuError> {
    super::command(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| QemuError::Spawn { command: command.to_owned(), source })
}

/// Read stdout on a thread so the main thread can enforce the deadline even
/// while the guest prints nothing. Serial output is not guaranteed UTF-8, so
/// lines are split on bytes and decoded lossily.
fn spawn_line_reader(stdout: ChildStdout) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&buf);
                    let line = text.trim_end_matches(['\n', '\r']).to_owned();
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

fn spawn_stderr_reader(mut stderr: impl Read + Send + 'static) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Deliver lines until stdout closes or the deadline passes.
fn pump(
    lines: &Receiver<String>,
    deadline: Instant,
    deliver: &mut dyn FnMut(&str) -> Result<(), QemuError>,
) -> Result<(), QemuError> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => deliver(&line)?,
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
}

/// Wait for exit until the deadline, then kill. Returns (status, timed_out).
fn wait_until(child: &mut Child, deadline: Instant) -> std::io::Result<(ExitStatus, bool)> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok((status, false));
        }
        if Instant::now() >= deadline {
            kill(child);
            return Ok((child.wait()?, true));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn kill(child: &mut Child) {
    // Fails only if the process already exited, which is what we want.
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    struct Fixture {
        dir: tempfile::TempDir,
        cfg: QemuConfig,
    }

    /// A config whose "QEMU" is a shell script with the given body.
    fn fixture(script_body: &str, timeout: Duration) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let qemu = dir.path().join("fake-qemu");
        std::fs::write(&qemu, format!("#!/bin/sh\n{script_body}\n")).unwrap();
        std::fs::set_permissions(&qemu, std::fs::Permissions::from_mode(0o755)).unwrap();
        let kernel = dir.path().join("bzImage");
        let initrd = dir.path().join("initramfs.cpio");
        std::fs::write(&kernel, b"k").unwrap();
        std::fs::write(&initrd, b"i").unwrap();
        let mut cfg = QemuConfig::new(kernel, initrd, dir.path().join("console.log"));
        cfg.qemu_binary = qemu;
        cfg.timeout = timeout;
        Fixture { dir, cfg }
    }

    #[test]
    fn command_line_has_required_flags() {
        let mut cfg = QemuConfig::new("/k".into(), "/i".into(), "/log".into());
        cfg.cmdline_extra = vec!["loglevel=4".into()];
        let argv = command_line(&cfg);
        let joined = argv.join(" ");
        assert_eq!(argv[0], DEFAULT_QEMU_BINARY);
        for want in ["-accel tcg", "-cpu max", "-m 512", "-smp 1", "-nodefaults", "-display none",
                     "-no-reboot", "-serial stdio", "-kernel /k", "-initrd /i"] {
            assert!(joined.contains(want), "missing {want}: {joined}");
        }
        let append = &argv[argv.iter().position(|a| a == "-append").unwrap() + 1];
        assert!(append.starts_with("console=ttyS0 earlyprintk=serial panic=-1"), "{append}");
        assert!(append.ends_with("loglevel=4"), "{append}");
        assert!(!append.contains("oops=panic"));
        cfg.accel = Accel::Kvm;
        assert!(command_line(&cfg).join(" ").contains("-accel kvm -cpu host"));
    }

    #[test]
    fn streams_lines_to_callback_and_log() {
        let f = fixture(
            "echo 'first'\nprintf 'crlf\\r\\n'\nsleep 0.2\necho \"args: $*\"\n\
             printf 'no newline'\necho oops >&2\nexit 3",
            Duration::from_secs(20),
        );
        let mut seen = Vec::new();
        let outcome = run(&f.cfg, &mut |l| seen.push(l.to_owned())).unwrap();
        assert!(!outcome.timed_out);
        assert_eq!(outcome.exit_status.code(), Some(3));
        assert_eq!(outcome.stderr.trim(), "oops");
        assert_eq!(seen[..2], ["first", "crlf"]);
        assert!(seen[2].contains("-append console=ttyS0"), "{}", seen[2]);
        assert_eq!(seen[3], "no newline");
        let log = std::fs::read_to_string(&f.cfg.console_log).unwrap();
        assert_eq!(log, seen.join("\n") + "\n");
    }

    #[test]
    fn timeout_kills_and_keeps_partial_log() {
        let f = fixture("echo 'XC-BOOT ok'\nexec sleep 30", Duration::from_millis(500));
        let mut seen = Vec::new();
        let outcome = run(&f.cfg, &mut |l| seen.push(l.to_owned())).unwrap();
        assert!(outcome.timed_out);
        assert!(outcome.duration < Duration::from_secs(10), "{:?}", outcome.duration);
        assert!(!outcome.exit_status.success());
        assert_eq!(seen, ["XC-BOOT ok"]);
        let log = std::fs::read_to_string(&f.cfg.console_log).unwrap();
        assert!(crate::qemu::parse_console(&log).booted);
        drop(f.dir);
    }

    #[test]
    fn missing_inputs_and_binary_are_reported() {
        let mut f = fixture("exit 0", Duration::from_secs(5));
        f.cfg.qemu_binary = f.dir.path().join("no-such-qemu");
        let err = run(&f.cfg, &mut |_| {}).unwrap_err();
        assert!(matches!(err, QemuError::Spawn { .. }), "{err}");
        assert!(err.to_string().contains("no-such-qemu"), "{err}");
        f.cfg.kernel = f.dir.path().join("missing-bzImage");
        let err = run(&f.cfg, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("missing-bzImage"), "{err}");
    }
}
