//! What the host machine provides: Debian packages and toolchain versions.
//!
//! Stages declare the packages they need; missing ones are installed with
//! apt-get when we are root (saying so), otherwise the error names the exact
//! command to run. Toolchain versions feed build fingerprints and manifests.

use serde::{Deserialize, Serialize};
use std::process::Command;

/// Errors about the host environment.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// Packages are missing and could not be installed.
    #[error("missing Debian packages for {purpose}: {packages}; install them with: sudo apt-get install -y {packages}{detail}")]
    MissingPackages {
        /// What they are for.
        purpose: String,
        /// Space-separated names.
        packages: String,
        /// Why automatic installation did not happen.
        detail: String,
    },
    /// A required program is not on PATH.
    #[error("`{program}` not found on PATH ({purpose})")]
    MissingProgram {
        /// The program.
        program: String,
        /// What it is for.
        purpose: String,
    },
}

/// Packages a `make` of the kernel needs.
pub const KERNEL_BUILD_PACKAGES: &[&str] =
    &["build-essential", "flex", "bison", "bc", "libelf-dev", "libssl-dev", "cpio", "xz-utils"];
/// Packages `boot` needs.
pub const BOOT_PACKAGES: &[&str] = &["qemu-system-x86", "busybox-static"];
/// What `run` needs: the VMM only (the rootfs brings its own userland).
pub const RUN_PACKAGES: &[&str] = &["qemu-system-x86"];
/// What `wrap` needs for an ext4 rootfs: mkfs.ext4 and debugfs.
pub const EXT4_PACKAGES: &[&str] = &["e2fsprogs"];

fn is_installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn apt_install(pkgs: &[&str]) -> Result<(), String> {
    let run = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .map_err(|e| format!("apt-get: {e}"))
    };
    let mut args = vec!["install", "-y", "--no-install-recommends"];
    args.extend_from_slice(pkgs);
    let first = run(&args)?;
    if first.status.success() {
        return Ok(());
    }
    // A fresh machine may have no package lists yet: update once and retry.
    run(&["update"])?;
    let second = run(&args)?;
    if second.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&second.stderr);
        Err(err.lines().rev().take(3).collect::<Vec<_>>().join(" | "))
    }
}

/// Check, without installing anything, that Debian packages are there: what
/// stages call. Installing is the CLI's explicit preparation step
/// ([`ensure_packages`]), run before the stages.
pub fn require_packages(pkgs: &[&str], purpose: &str) -> Result<(), HostError> {
    let missing: Vec<&str> = pkgs.iter().copied().filter(|p| !is_installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(HostError::MissingPackages { purpose: purpose.into(), packages: missing.join(" "), detail: String::new() })
}

/// The path of `program` on `PATH`, or an error saying what it is for and
/// which Debian package has it (`purpose` should name both).
pub fn require_program(program: &str, purpose: &str) -> Result<std::path::PathBuf, HostError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .ok_or_else(|| HostError::MissingProgram { program: program.into(), purpose: purpose.into() })
}

/// Make sure Debian packages are installed, installing them if we can.
/// `say` receives a line when something is being installed.
pub fn ensure_packages(pkgs: &[&str], purpose: &str, say: &dyn Fn(&str)) -> Result<(), HostError> {
    let missing: Vec<&str> = pkgs.iter().copied().filter(|p| !is_installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let packages = missing.join(" ");
    if !is_root() {
        return Err(HostError::MissingPackages { purpose: purpose.into(), packages, detail: String::new() });
    }
    say(&format!("installing {packages} (needed for {purpose}) with apt-get"));
    apt_install(&missing).map_err(|detail| HostError::MissingPackages {
        purpose: purpose.into(),
        packages: packages.clone(),
        detail: format!(" (apt-get failed: {detail})"),
    })
}

/// Versions of the tools that shape a kernel image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Toolchain {
    /// `gcc --version`, first line.
    pub gcc: String,
    /// `ld --version`, first line.
    pub ld: String,
    /// `make --version`, first line.
    pub make: String,
    /// `ccache --version`, first line, when ccache is used.
    pub ccache: Option<String>,
}

/// First line of `program --version`, if it runs.
pub fn version_line(program: &str) -> Option<String> {
    let out = Command::new(program).arg("--version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).lines().next().map(|l| l.trim().to_string())
}

impl Toolchain {
    /// Read the host's toolchain, once per process: configure and build
    /// both key on it, and it cannot change under a running command.
    pub fn detect() -> Result<Toolchain, HostError> {
        static DETECTED: std::sync::OnceLock<Toolchain> = std::sync::OnceLock::new();
        if let Some(t) = DETECTED.get() {
            return Ok(t.clone());
        }
        let need = |p: &str| {
            version_line(p).ok_or_else(|| HostError::MissingProgram { program: p.into(), purpose: "kernel build".into() })
        };
        let t = Toolchain { gcc: need("gcc")?, ld: need("ld")?, make: need("make")?, ccache: version_line("ccache") };
        Ok(DETECTED.get_or_init(|| t).clone())
    }

    /// The parts that change generated code: ccache does not, so it is
    /// left out and turning it on or off never invalidates a build.
    pub fn identity(&self) -> String {
        format!("{}\n{}\n{}", self.gcc, self.ld, self.make)
    }
}

/// A `Command` that starts `argv[0]` (QEMU, mkfs.ext4, debugfs) so it dies
/// with the process that started it.
///
/// Without this, a `run` or `boot` killed with SIGKILL (an OOM kill, a CI
/// job's timeout, `kill -9`) leaves its QEMU running: a VM nobody watches,
/// holding its forwarded ports and a CPU. util-linux's `setpriv
/// --pdeathsig KILL` (Essential on Debian) sets the parent-death signal and
/// execs QEMU in the same process, so the pid, the process group and
/// `Child::kill` stay QEMU's. It is used only when both programs are found:
/// a missing QEMU stays a plain "cannot start" error naming QEMU.
pub fn dying_with_us(argv: &[String]) -> std::process::Command {
    let direct = || {
        let mut c = std::process::Command::new(&argv[0]);
        c.args(&argv[1..]);
        c
    };
    match (on_path("setpriv"), on_path(&argv[0])) {
        (Some(setpriv), Some(qemu)) => {
            let mut c = std::process::Command::new(setpriv);
            c.args(["--pdeathsig", "KILL", "--"]).arg(qemu).args(&argv[1..]);
            c
        }
        _ => direct(),
    }
}

/// `program` as the shell would find it (a path with a `/` is taken as is).
pub fn on_path(program: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| p.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false);
    if program.contains('/') {
        let p = std::path::PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(program)).find(|p| executable(p))
}


/// Whether a process with this pid exists (a leftover's owner, say).
pub fn pid_alive(pid: u32) -> bool {
    std::path::Path::new("/proc").join(pid.to_string()).exists()
}

/// The host's memory in MiB (MemTotal of /proc/meminfo), if readable.
pub fn memory_mib() -> Option<u64> {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().find(|l| l.starts_with("MemTotal:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()))
        .map(|kib| kib >> 10)
}

