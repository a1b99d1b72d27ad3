//! `run`: boot a wrapped container in its own VM, stream its output, return
//! the entrypoint's status and judge the kernel's console.
//!
//! Each run has a directory `<cache>/runs/<name>/` with `run.json` (name,
//! tenant, our pid, QEMU's command line) and the kernel's `console.log`. It
//! is removed after a clean run and kept when the kernel reported a problem,
//! the VM ended without a status, or `--keep` was given. A name that a live
//! `run` holds is refused; several runs with different names are several
//! VMs, each with its own kernel, network and sockets.

use super::Context;
use crate::container::control;
use crate::container::pack::{self, RootfsFormat};
use crate::container::session::{self, SessionConfig};
use crate::container::vm::{self, Channels, Machine, Network, VmConfig};
use crate::container::wrapped::{self, KERNEL_FILE};
use crate::names::ContainerName;
use crate::qemu::{self, Accel, Problem};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What to run and how.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// A directory `wrap` published.
    pub wrapped: PathBuf,
    /// User network with `-p` forwards, or a tap with the guest's address.
    pub network: Network,
    /// `K=V` (or `K`, taken from our environment) set for the entrypoint.
    pub env: Vec<String>,
    /// Replace the image's Cmd when not empty (the Entrypoint stays), as
    /// `docker run IMAGE ARGS`.
    pub args: Vec<String>,
    /// Replace the Entrypoint and drop the Cmd (`--entrypoint`).
    pub entrypoint: Option<String>,
    /// Guest memory [default: what wrap recorded].
    pub memory_mb: Option<u32>,
    pub cpus: u32,
    /// Run name (the run directory's) [default: <wrapped name>-<pid>].
    pub name: Option<ContainerName>,
    /// A label recorded with the run.
    pub tenant: Option<String>,
    pub accel: Accel,
    pub machine: Machine,
    /// After forwarding SIGINT/SIGTERM, how long before QEMU is killed.
    pub stop_grace: Duration,
    pub timeout: Option<Duration>,
    /// Keep the run directory after a clean run.
    pub keep: bool,
    /// The container's stdout goes to our stderr (with --json, whose stdout is the report).
    pub stdout_to_stderr: bool,
}

/// `run.json`, written before QEMU starts.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RunLabels {
    pub name: String,
    pub tenant: Option<String>,
    pub wrapped: PathBuf,
    /// The `xc-convert run` process.
    pub pid: u32,
    pub qemu_command: Vec<String>,
    pub started_at: u64,
}

/// What the run came to.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerRun {
    pub name: String,
    pub tenant: Option<String>,
    pub run_dir: PathBuf,
    /// Whether run_dir is still there.
    pub kept: bool,
    pub console_log: PathBuf,
    /// The entrypoint's status as PID 1 reported it.
    pub exit_status: Option<i32>,
    /// Panics, oopses, BUGs, warnings in the console.
    pub kernel_problems: Vec<Problem>,
    /// QEMU start to the container's first output, seconds.
    pub first_output_seconds: Option<f64>,
    pub seconds: f64,
    pub stop_signal: Option<i32>,
    pub killed: bool,
    pub timed_out: bool,
    pub qemu_stderr: String,
    pub qemu_command: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("a container named {name:?} is running (xc-convert run pid {pid}, {dir}); pick another --name")]
    NameInUse { name: String, pid: u32, dir: PathBuf },
    #[error("--profile {profile}: {dir} is already wrapped, with its kernel; --profile only chooses the kernel an image is wrapped with")]
    ProfileOfWrapped { profile: String, dir: PathBuf },
    #[error("-e {value:?}: {why}")]
    BadEnv { value: String, why: &'static str },
    #[error("--memory {asked}: this host has {host} MiB in all; give the VM less")]
    MemoryTooLarge { asked: u32, host: u64 },
    #[error("--cpus {cpus}: the kernel of this container ({config}) is built without CONFIG_SMP and would use one CPU; wrap it with an SMP profile (e.g. --profile container-smp) or run with --cpus 1")]
    NoSmp { cpus: u32, config: PathBuf },
    #[error("{path} exists and was not made by `xc-convert run` (no {RUN_MARKER} in it): not removing it; pick another --name")]
    NotARunDir { path: PathBuf },
    #[error("cannot get random bytes for the run's control-channel token from the OS")]
    Token(#[source] std::io::Error),
    #[error("cannot set up run directory {path}")]
    RunDir { path: PathBuf, #[source] source: std::io::Error },
    #[error("the wrapped kernel image {path} is missing")]
    NoKernel { path: PathBuf },
    /// The directory is not a wrapped container (or an unreadable one).
    #[error(transparent)]
    Wrapped(#[from] crate::container::wrapped::WrappedError),
    /// The rootfs does not fit the memory asked for.
    #[error(transparent)]
    Pack(#[from] crate::container::pack::PackError),
    /// A port forward cannot be had (taken, malformed).
    #[error(transparent)]
    Vm(#[from] crate::container::vm::VmError),
    /// QEMU or its channels failed.
    #[error(transparent)]
    Session(#[from] crate::container::session::SessionError),
    /// QEMU is missing.
    #[error(transparent)]
    Host(#[from] crate::host::HostError),
    /// run.json could not be written.
    #[error(transparent)]
    Record(#[from] build_farm::EntryError),
}

fn env_overrides(env: &[String]) -> Result<Vec<String>, RunError> {
    env.iter()
        .map(|e| match e.split_once('=') {
            Some(("", _)) => Err(RunError::BadEnv { value: e.clone(), why: "empty variable name" }),
            Some(_) => Ok(e.clone()),
            None => std::env::var(e)
                .map(|v| format!("{e}={v}"))
                .map_err(|_| RunError::BadEnv { value: e.clone(), why: "not K=V, and no such variable in this environment to pass on" }),
        })
        .collect()
}

/// The file `run` puts first into every run directory it creates: the only
/// directories it ever removes are ones holding it.
pub const RUN_MARKER: &str = ".xc-run";

/// Whether `dir` is a run directory `run` made: a real directory (not a
/// symlink to one) holding [`RUN_MARKER`] as a regular file.
fn is_run_dir(dir: &Path) -> bool {
    std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir())
        && std::fs::symlink_metadata(dir.join(RUN_MARKER)).is_ok_and(|m| m.is_file())
}

/// Remove a run directory, only if `run` made it ([`is_run_dir`]).
fn remove_run_dir(dir: &Path) -> Result<(), RunError> {
    if !is_run_dir(dir) {
        return Err(RunError::NotARunDir { path: dir.to_owned() });
    }
    std::fs::remove_dir_all(dir).map_err(|source| RunError::RunDir { path: dir.to_owned(), source })
}

/// Claim `<cache>/runs/<name>/`, refusing one a live run holds and
/// anything there that `run` did not make.
fn claim_run_dir(layout: &build_farm::Layout, name: &ContainerName) -> Result<PathBuf, RunError> {
    let runs = layout.runs_dir();
    std::fs::create_dir_all(&runs).map_err(|source| RunError::RunDir { path: runs.clone(), source })?;
    // The name is one ordinary component (ContainerName), so this is a
    // child of runs/ and nothing else.
    let dir = runs.join(name);
    let labels = dir.join("run.json");
    if let Ok(text) = std::fs::read_to_string(&labels) {
        if let Ok(l) = serde_json::from_str::<RunLabels>(&text) {
            if l.pid != std::process::id() && crate::host::pid_alive(l.pid) {
                return Err(RunError::NameInUse { name: name.to_string(), pid: l.pid, dir });
            }
        }
    }
    if std::fs::symlink_metadata(&dir).is_ok() {
        remove_run_dir(&dir)?;
    }
    std::fs::create_dir(&dir).map_err(|source| RunError::RunDir { path: dir.clone(), source })?;
    std::fs::write(dir.join(RUN_MARKER), b"made by xc-convert run\n").map_err(|source| RunError::RunDir { path: dir.clone(), source })?;
    Ok(dir)
}

/// Boot the container and wait for it to end.
pub fn run(ctx: &Context, req: &RunRequest) -> Result<ContainerRun, RunError> {
    let m = wrapped::load(&req.wrapped)?;
    let kernel = req.wrapped.join(KERNEL_FILE);
    if !kernel.is_file() {
        return Err(RunError::NoKernel { path: kernel });
    }
    let memory_mb = req.memory_mb.unwrap_or(m.options.memory_mb);
    if m.rootfs.format == RootfsFormat::Initramfs {
        pack::check_initramfs_fits(m.rootfs.content_bytes, memory_mb)?;
    }
    if let Some(host) = crate::host::memory_mib().filter(|h| u64::from(memory_mb) > *h) {
        return Err(RunError::MemoryTooLarge { asked: memory_mb, host });
    }
    if req.cpus > 1 {
        // The kernel's .config is in the image directory wrap recorded;
        // when that is gone (cache cleaned) the check cannot be made.
        let config = ctx.layout.absolute(&m.kernel.image_dir).join("config");
        match std::fs::read_to_string(&config) {
            Ok(text) if !text.lines().any(|l| l == "CONFIG_SMP=y") => return Err(RunError::NoSmp { cpus: req.cpus, config }),
            Ok(_) => {}
            Err(_) => ctx.status(format!("--cpus {}: cannot read {} to check the kernel has SMP", req.cpus, config.display())),
        }
    }
    let env = env_overrides(&req.env)?;
    req.network.check()?;
    crate::host::require_packages(crate::host::RUN_PACKAGES, "running containers")?;
    let name = req.name.clone().unwrap_or_else(|| ContainerName::sanitized(&format!("{}-{}", m.name, std::process::id()), crate::names::MAX_LEN, "container"));
    let run_dir = claim_run_dir(&ctx.layout, &name)?;
    // Socket paths must stay under 108 bytes, which a deep cache may not.
    let sock_dir = tempfile::Builder::new().prefix("xc-run-").tempdir().map_err(|source| RunError::RunDir { path: std::env::temp_dir(), source })?;
    let channels = Channels {
        console_log: run_dir.join("console.log"),
        console_sock: sock_dir.path().join("console.sock"),
        stdout_sock: sock_dir.path().join("stdout.sock"),
        stderr_sock: sock_dir.path().join("stderr.sock"),
        control_sock: sock_dir.path().join("control.sock"),
    };
    let cfg = VmConfig {
        kernel,
        rootfs: req.wrapped.join(&m.rootfs.file),
        rootfs_format: m.rootfs.format,
        memory_mb,
        cpus: req.cpus,
        accel: req.accel,
        machine: req.machine,
        channels: channels.clone(),
        network: req.network.clone(),
    };
    let argv = vm::command_line(&cfg);
    let started_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let labels = RunLabels { name: name.to_string(), tenant: req.tenant.clone(), wrapped: req.wrapped.clone(), pid: std::process::id(), qemu_command: argv.clone(), started_at };
    build_farm::write_json_atomic(&run_dir.join("run.json"), &labels)?;
    ctx.status(format!(
        "running {} on Linux {} ({}) as {name}{}; console: {}",
        m.name,
        m.kernel.kernel_version,
        m.kernel.mode,
        req.tenant.as_ref().map(|t| format!(" (tenant {t})")).unwrap_or_default(),
        channels.console_log.display()
    ));
    ctx.detail(session::argv_text(&argv));
    let stdout: Box<dyn std::io::Write + Send> = if req.stdout_to_stderr { Box::new(std::io::stderr()) } else { Box::new(std::io::stdout()) };
    // The whole argv travels (PID 1 replaces argv with `arg` lines); empty:
    // the spec's as wrapped.
    let argv_override = if req.entrypoint.is_some() || !req.args.is_empty() { m.spec.run_argv(req.entrypoint.as_deref(), &req.args) } else { Vec::new() };
    let token = control::RunToken::new().map_err(RunError::Token)?;
    let outcome = session::run(SessionConfig {
        argv: argv.clone(),
        channels: channels.clone(),
        overrides: control::override_block(&token, &argv_override, &env, req.network.guest_override()),
        token,
        stop_grace: req.stop_grace,
        timeout: req.timeout,
        stdout,
        stderr: Box::new(std::io::stderr()),
    })?;
    let console = qemu::parse_console(&std::fs::read_to_string(&channels.console_log).unwrap_or_default());
    let kernel_problems: Vec<Problem> = console.problems.into_iter().filter(|p| p.kind.is_kernel_fault()).collect();
    let clean = kernel_problems.is_empty() && outcome.exit_status.is_some();
    let kept = req.keep || !clean;
    if !kept {
        let _ = remove_run_dir(&run_dir);
    }
    Ok(ContainerRun {
        name: name.to_string(),
        tenant: req.tenant.clone(),
        run_dir,
        kept,
        console_log: channels.console_log,
        exit_status: outcome.exit_status,
        kernel_problems,
        first_output_seconds: outcome.first_output.map(|d| d.as_secs_f64()),
        seconds: outcome.duration.as_secs_f64(),
        stop_signal: outcome.stop_signal,
        killed: outcome.killed,
        timed_out: outcome.timed_out,
        qemu_stderr: outcome.qemu_stderr,
        qemu_command: argv,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> ContainerName {
        ContainerName::parse(s).unwrap()
    }

    /// Issue 21.1: a directory under runs/ that `run` did not make (no
    /// marker), or a symlink there, is refused and left as it was.
    #[test]
    fn run_name_only_removes_directories_run_made() {
        let cache = tempfile::tempdir().unwrap();
        let layout = build_farm::Layout::new(cache.path());
        let runs = layout.runs_dir();
        std::fs::create_dir_all(runs.join("theirs")).unwrap();
        std::fs::write(runs.join("theirs/keep"), b"x").unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.path(), runs.join("link")).unwrap();

        for n in ["theirs", "link"] {
            let e = claim_run_dir(&layout, &name(n)).unwrap_err();
            assert!(matches!(e, RunError::NotARunDir { .. }), "{n}: {e}");
        }
        assert!(runs.join("theirs/keep").is_file());
        assert!(outside.path().join("keep").is_file());

        // One `run` made is reclaimed (a dead run's leftovers).
        let mine = claim_run_dir(&layout, &name("mine")).unwrap();
        std::fs::write(mine.join("console.log"), b"old").unwrap();
        let again = claim_run_dir(&layout, &name("mine")).unwrap();
        assert_eq!(mine, again);
        assert!(!again.join("console.log").exists(), "the old run's files are gone");
        assert!(again.join(RUN_MARKER).is_file());
        remove_run_dir(&again).unwrap();
        assert!(!again.exists());
        assert!(matches!(remove_run_dir(outside.path()), Err(RunError::NotARunDir { .. })));
        assert!(outside.path().join("keep").is_file());
    }
}
