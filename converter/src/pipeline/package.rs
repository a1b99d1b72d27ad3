//! Stage: image -> packages. The packages of one image are a cache entry
//! (`packages/<image entry>-<format>-<key16>/`, record `packages.json`);
//! `--out` gets copies, each written beside its final name and renamed, so
//! an error never leaves a half-written .deb there.

use super::build::{self, BuildError};
use super::Context;
use crate::package::{self, bindeb, guest, lintian, Format, PackageError, PackageFile};
use build_farm::{at, Entry, EntryError, Stage};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What to package, and where copies go.
#[derive(Debug, Clone)]
pub struct PackageRequest {
    /// The image directory (made by `build`).
    pub image_dir: PathBuf,
    /// The package format.
    pub format: Format,
    /// Where copies of the packages go, if anywhere.
    pub out: Option<PathBuf>,
    /// make -j for bindeb-pkg.
    pub jobs: usize,
    /// `Maintainer:` (`Name <address>`).
    pub maintainer: String,
}

/// The default `Maintainer:`, overridden by `DEBFULLNAME`/`DEBEMAIL` as
/// Debian's own tools do.
pub fn default_maintainer() -> String {
    let name = std::env::var("DEBFULLNAME").unwrap_or_else(|_| "xc-convert".into());
    let email = std::env::var("DEBEMAIL").unwrap_or_else(|_| "xc-convert@example.org".into());
    format!("{name} <{email}>")
}

/// `packages.json`: what was made from which image.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackagesRecord {
    /// Schema version (1).
    pub schema: u32,
    /// The image's `build_key`.
    pub build_key: String,
    /// The image's kernel release.
    pub kernel_release: String,
    /// stock or libos.
    pub mode: build::Mode,
    /// The format.
    pub format: Format,
    /// The packages, with names, versions and sha256.
    pub packages: Vec<PackageFile>,
    /// What lintian said (nothing at error or warning level, or there would be no entry).
    pub lintian: Vec<lintian::Finding>,
}

/// The hand-off: the entry and where copies went.
#[derive(Debug, Clone, Serialize)]
pub struct Packaged {
    /// The cache entry holding the packages.
    pub dir: PathBuf,
    /// Its record.
    pub record: PackagesRecord,
    /// Whether it was already made.
    pub cache_hit: bool,
    /// The copies in `--out`.
    pub copies: Vec<PathBuf>,
}

/// Errors of the package stage.
#[derive(Debug, thiserror::Error)]
pub enum PackageStageError {
    /// The directory is not an intact image.
    #[error(transparent)]
    Image(#[from] BuildError),
    /// Making or checking a package failed.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// The cache entry could not be looked up, locked or published.
    #[error(transparent)]
    Cache(#[from] EntryError),
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] build_farm::PathError),
    /// `--out` cannot take the packages.
    #[error("--out {path}: {reason}")]
    Out {
        /// The directory.
        path: PathBuf,
        /// Why not.
        reason: String,
    },
}

/// Make (or find) the packages of an image, and copy them to `--out`.
pub fn run(ctx: &Context, req: &PackageRequest) -> Result<Packaged, PackageStageError> {
    // Every file is hashed: a package must hold exactly what the manifest says.
    let manifest = build::load_verified(&req.image_dir, true)?;
    if let Some(out) = &req.out {
        check_out(out)?;
    }
    let version = package::package_version(&manifest, package::debian_source_version(&manifest.source_origin).as_deref());
    let image_name = req.image_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "image".into());
    let fp = super::fingerprint()
        .with("build_key", &manifest.build_key)
        .with("format", req.format.to_string())
        .with("version", &version)
        .with("maintainer", &req.maintainer);
    let entry = Entry::new(&ctx.layout, Stage::Packages, format!("{image_name}-{}-{}", req.format, fp.short_key()));
    let dir = entry.dir();
    let load = || -> Result<Option<PackagesRecord>, PackageStageError> {
        let Ok(text) = std::fs::read_to_string(entry.record()) else { return Ok(None) };
        let Ok(record) = serde_json::from_str::<PackagesRecord>(&text) else { return Ok(None) };
        // A package file that changed is made again, never served.
        let intact = record.packages.iter().all(|p| build::describe(&dir.join(&p.file), &p.file).is_ok_and(|a| a.sha256 == p.sha256));
        Ok(intact.then_some(record))
    };
    let (record, outcome) = build_farm::get_or_create(&entry, &ctx.on_wait(&entry), load, |staging| {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(at("remove damaged entry", &dir))?;
        }
        let s = staging.path();
        let (pkg, suppress) = match manifest.mode {
            build::Mode::Stock => (bindeb::build(ctx, &req.image_dir, &manifest, &version, &req.maintainer, req.jobs, s)?, lintian::STOCK_SUPPRESSED),
            build::Mode::Libos => (guest::build(&req.image_dir, &manifest, &version, &req.maintainer, s)?, &[][..]),
        };
        ctx.status(format!("lintian {}", pkg.file));
        let findings = lintian::gate(s, &pkg, suppress)?;
        let record = PackagesRecord {
            schema: 1,
            build_key: manifest.build_key.clone(),
            kernel_release: package::vmm::release(&manifest).to_string(),
            mode: manifest.mode,
            format: req.format,
            packages: vec![pkg],
            lintian: findings,
        };
        build_farm::write_json_atomic(&s.join("fingerprint.json"), &fp)?;
        build_farm::write_json_atomic(&s.join(Stage::Packages.record_name()), &record)?;
        staging.publish()?;
        Ok(record)
    })?;
    let mut copies = Vec::new();
    if let Some(out) = &req.out {
        for p in &record.packages {
            copies.push(copy_out(&dir.join(&p.file), out)?);
        }
    }
    Ok(Packaged { dir, record, cache_hit: outcome == build_farm::Outcome::Hit, copies })
}

fn check_out(out: &Path) -> Result<(), PackageStageError> {
    let fail = |reason: String| PackageStageError::Out { path: out.to_path_buf(), reason };
    match std::fs::metadata(out) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(fail("is not a directory".into())),
        Err(_) => std::fs::create_dir_all(out).map_err(|e| fail(format!("cannot be created ({e})"))),
    }
}

/// Copy `src` into `out` under its own name: written as a hidden temporary
/// beside it, then renamed.
fn copy_out(src: &Path, out: &Path) -> Result<PathBuf, PackageStageError> {
    let name = src.file_name().expect("a package file name");
    let dest = out.join(name);
    let tmp = out.join(format!(".tmp-{}-{}", name.to_string_lossy(), std::process::id()));
    let result = std::fs::copy(src, &tmp).and_then(|_| std::fs::rename(&tmp, &dest));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(PackageStageError::Out { path: out.to_path_buf(), reason: format!("cannot take {} ({e})", name.to_string_lossy()) });
    }
    Ok(dest)
}
