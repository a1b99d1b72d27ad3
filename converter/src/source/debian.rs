//! Debian's `linux-source-<series>` packages as an input.
//!
//! The package ships `/usr/src/linux-source-<series>.tar.xz`; if it is not
//! installed we install it (the converter usually runs as root on a build
//! host), then the file is handled exactly like any other tarball.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{PullEvent, SourceError};

/// Where Debian puts the source tarballs.
pub(crate) const DEBIAN_SRC_DIR: &str = "/usr/src";

/// Package name for a series, refusing anything but `N.N` so the name is
/// never something apt would read as an option or a pattern.
pub(crate) fn package_name(series: &str) -> Result<String, SourceError> {
    let valid = series
        .split_once('.')
        .is_some_and(|(a, b)| is_number(a) && is_number(b));
    if valid {
        Ok(format!("linux-source-{series}"))
    } else {
        Err(SourceError::InvalidSeries {
            series: series.to_string(),
        })
    }
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Path of the package's tarball inside `src_dir`.
pub(crate) fn tarball_path(src_dir: &Path, package: &str) -> PathBuf {
    src_dir.join(format!("{package}.tar.xz"))
}

/// The tarball for `package`, installing the package first if needed.
pub(crate) fn locate_or_install(
    package: &str,
    progress: &dyn Fn(PullEvent),
) -> Result<PathBuf, SourceError> {
    let path = tarball_path(Path::new(DEBIAN_SRC_DIR), package);
    if path.is_file() {
        return Ok(path);
    }
    if !running_as_root() {
        return Err(install_error(
            package,
            format!("{} is missing and installing it needs root", path.display()),
        ));
    }
    progress(PullEvent::Installing {
        package: package.to_string(),
    });
    // A stale package list is the usual reason for "unable to locate"; one
    // refresh and retry covers it without always paying for an update.
    if apt_install(package).is_err() {
        apt(&["update"]).map_err(|reason| install_error(package, reason))?;
        apt_install(package).map_err(|reason| install_error(package, reason))?;
    }
    if path.is_file() {
        Ok(path)
    } else {
        Err(install_error(
            package,
            format!("installed, but {} does not exist", path.display()),
        ))
    }
}

fn apt_install(package: &str) -> Result<(), String> {
    apt(&["install", "-y", "--no-install-recommends", package])
}

/// Run apt-get non-interactively; on failure return the tail of its output.
fn apt(args: &[&str]) -> Result<(), String> {
    let output = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
    Err(format!(
        "apt-get {} failed ({}): {}",
        args.join(" "),
        output.status,
        tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
    ))
}

/// Effective uid 0, read from procfs to avoid an FFI dependency.
fn running_as_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Uid:"))?;
            Some(line.split_whitespace().nth(2)? == "0")
        })
        .unwrap_or(false)
}

fn install_error(package: &str, reason: String) -> SourceError {
    SourceError::PackageInstall {
        package: package.to_string(),
        reason,
    }
}
