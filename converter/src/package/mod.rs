//! Packages for distributions: the files that travel with an image (VMM
//! configurations) and the Debian packages made from it.
//!
//! A stock image becomes what the kernel's own `make bindeb-pkg` makes
//! ([`bindeb`]); a library-OS image, which a host must never boot, becomes a
//! guest-kernel package in the way Kata ships its guest kernel ([`guest`]).
//! Both are checked by lintian ([`lintian`]).

pub mod bindeb;
pub mod guest;
pub mod lintian;
pub mod vmm;

use crate::pipeline::build::Manifest;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Errors of making a package.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// A host tool is missing.
    #[error(transparent)]
    Host(#[from] crate::host::HostError),
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] build_farm::PathError),
    /// A file could not be published, or the image's build entry locked.
    #[error(transparent)]
    Publish(#[from] build_farm::PublishError),
    /// `make bindeb-pkg` failed.
    #[error(transparent)]
    Make(#[from] crate::pipeline::make::MakeError),
    /// A packaging tool ran and failed.
    #[error("`{command}` failed ({status}):\n{output}")]
    Tool {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed.
        output: String,
    },
    /// The stock tree the image was built from is not in this cache.
    #[error("a stock package is made by the kernel's `make bindeb-pkg` in the image's tree, and the tree of {image} (source {source_hash}) is not in this cache at {tree}; run `{reproduce}` with this --cache first")]
    TreeMissing {
        /// The image directory.
        image: PathBuf,
        /// The source hash from its manifest.
        source_hash: String,
        /// Where the tree would be.
        tree: PathBuf,
        /// The image's reproducer.
        reproduce: String,
    },
    /// `make bindeb-pkg` ran but its kernel is not the image's.
    #[error("the kernel `make bindeb-pkg` packaged ({packaged}) is not the image's bzImage ({image}): the image cannot be rebuilt byte for byte here (another toolchain?); nothing was written")]
    NotTheImage {
        /// sha256 of the packaged vmlinuz.
        packaged: String,
        /// sha256 of the image's bzImage.
        image: String,
    },
    /// lintian found errors or warnings.
    #[error("lintian found {} error or warning finding(s) in {file}; nothing was kept:\n{}", findings.len(), findings.join("\n"))]
    Lint {
        /// The package file.
        file: String,
        /// The failing lines, as lintian printed them.
        findings: Vec<String>,
    },
    /// bindeb-pkg left no linux-image package.
    #[error("`make bindeb-pkg` finished but left no {expected} in {dir}")]
    NoImagePackage {
        /// The file name looked for.
        expected: String,
        /// Where it was looked for.
        dir: PathBuf,
    },
}

/// A package format (only Debian's so far).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A Debian binary package (.deb).
    Deb,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deb")
    }
}

/// One package file made from an image.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PackageFile {
    /// The package name (`Package:`).
    pub name: String,
    /// Its version (`Version:`).
    pub version: String,
    /// The file name.
    pub file: String,
    /// Size in bytes.
    pub size: u64,
    /// Hex sha256 of the file.
    pub sha256: String,
}

/// The Debian version of a package made from `manifest`:
/// `<source version>+xc<xc-convert version>+<build hash>-1`.
///
/// It sorts upward with the Debian source version (`6.1.192-1` before
/// `6.1.192-2` before `6.12.117-1`) and, for one source, with the
/// xc-convert version; the build hash tells two builds apart. The Debian
/// revision is `1` because the kernel's packaging passes the revision to the
/// build as `KBUILD_BUILD_VERSION` (the `#1` of `uname -v`), which must stay
/// the image's for the packaged kernel to be the image byte for byte.
/// `source_version` is the Debian source package's version when the tree
/// came from one, else the kernel version (`6.1.99` from a kernel.org
/// tarball or a directory).
pub fn package_version(manifest: &Manifest, source_version: Option<&str>) -> String {
    let upstream = source_version.unwrap_or(&manifest.kernel_version);
    // Debian versions allow [A-Za-z0-9.+~-] (and ':' for an epoch, which
    // an upstream version here must not carry).
    let clean: String = upstream.chars().map(|c| if c.is_ascii_alphanumeric() || ".+~-".contains(c) { c } else { '~' }).collect();
    let hash = &manifest.build_key[..12.min(manifest.build_key.len())];
    format!("{clean}+xc{}+{hash}-1", env!("CARGO_PKG_VERSION"))
}

/// The Debian source version of the tree an image was built from, when the
/// tree came from Debian's linux-source package: recorded in the origin by
/// `pull --debian VERSION`, else (for `--kernel X.Y`, the installed package)
/// asked of dpkg.
pub fn debian_source_version(origin: &str) -> Option<String> {
    let rest = origin.strip_prefix("debian ")?;
    let mut words = rest.split_whitespace();
    let package = words.next()?;
    match words.next() {
        Some(v) if !v.starts_with('(') => Some(v.to_string()),
        _ => {
            let out = std::process::Command::new("dpkg-query").args(["-W", "-f", "${Version}", package]).output().ok()?;
            let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
            (out.status.success() && !v.is_empty()).then_some(v)
        }
    }
}

/// Run a packaging tool; its output is the error's when it fails.
pub(crate) fn run_tool(cmd: &mut std::process::Command) -> Result<String, PackageError> {
    let command = format!("{cmd:?}").replace('"', "");
    let out = cmd.output().map_err(|e| PackageError::Tool { command: command.clone(), status: "not started".into(), output: e.to_string() })?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        Ok(text)
    } else {
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        Err(PackageError::Tool { command, status: out.status.to_string(), output: tail.into_iter().rev().collect::<Vec<_>>().join("\n") })
    }
}

/// Describe a finished package file.
pub(crate) fn describe(path: &Path, name: &str, version: &str) -> Result<PackageFile, PackageError> {
    let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let a = crate::pipeline::build::describe(path, &file).map_err(build_farm::at("hash", path))?;
    Ok(PackageFile { name: name.to_string(), version: version.to_string(), file: a.file, size: a.size, sha256: a.sha256 })
}

/// The bytes of one file inside a .deb (`dpkg-deb --fsys-tarfile`), or None.
pub fn file_in_deb(deb: &Path, inner: &str) -> Result<Option<Vec<u8>>, PackageError> {
    let out = std::process::Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .output()
        .map_err(|e| PackageError::Tool { command: format!("dpkg-deb --fsys-tarfile {}", deb.display()), status: "not started".into(), output: e.to_string() })?;
    if !out.status.success() {
        return Err(PackageError::Tool {
            command: format!("dpkg-deb --fsys-tarfile {}", deb.display()),
            status: out.status.to_string(),
            output: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    let mut archive = tar::Archive::new(&out.stdout[..]);
    let want = inner.trim_start_matches('/');
    for e in archive.entries().map_err(build_farm::at("read the data of", deb))? {
        let mut e = e.map_err(build_farm::at("read the data of", deb))?;
        let path = e.path().map_err(build_farm::at("read the data of", deb))?.to_string_lossy().trim_start_matches("./").to_string();
        if path == want {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut v).map_err(build_farm::at("read the data of", deb))?;
            return Ok(Some(v));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        serde_json::from_str(include_str!("testdata/manifest.json")).unwrap()
    }

    #[test]
    fn versions_sort_upward_with_the_source_and_keep_the_revision_one() {
        let m = manifest();
        let v = package_version(&m, Some("6.1.192-1"));
        assert_eq!(v, format!("6.1.192-1+xc{}+a1b2c3d4e5f6-1", env!("CARGO_PKG_VERSION")));
        let newer = package_version(&m, Some("6.12.117-1"));
        let cmp = std::process::Command::new("dpkg").args(["--compare-versions", &v, "lt", &newer]).status();
        if let Ok(s) = cmp {
            assert!(s.success(), "{v} < {newer}");
        }
        assert_eq!(package_version(&m, None), format!("6.1.192+xc{}+a1b2c3d4e5f6-1", env!("CARGO_PKG_VERSION")));
        assert!(package_version(&m, Some("6.1_rc1")).starts_with("6.1~rc1+xc"));
    }

    #[test]
    fn the_source_version_is_read_from_a_recorded_origin() {
        assert_eq!(debian_source_version("debian linux-source-6.1 6.1.158-1 (/c/downloads/x.tar.xz)").as_deref(), Some("6.1.158-1"));
        assert_eq!(debian_source_version("tarball /tmp/linux-6.1.99.tar.xz"), None);
        assert_eq!(debian_source_version("directory /src/linux"), None);
    }
}
