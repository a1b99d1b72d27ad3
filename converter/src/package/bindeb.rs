//! The package of a stock image: what the kernel's own `make bindeb-pkg`
//! makes (`linux-image-<krel>`, installing into /boot and running the
//! /etc/kernel hooks like any Debian kernel package), run in the image's
//! object directory with the image's make variables. ccache serves the
//! compile, and the packaged vmlinuz is checked to be the image's bzImage
//! byte for byte.

use super::{describe, file_in_deb, PackageError, PackageFile};
use crate::host::Toolchain;
use crate::pipeline::build::{self, Manifest};
use crate::pipeline::{Context, Event};
use build_farm::{at, Entry, Stage};
use std::path::{Path, PathBuf};

/// Debian packages `make bindeb-pkg` runs (6.12's debian/rules uses debhelper).
pub const PACKAGES: &[&str] = &["dpkg-dev", "fakeroot", "debhelper", "kmod", "rsync"];

/// The linux-image package name of a kernel release.
pub fn package_name(manifest: &Manifest) -> String {
    format!("linux-image-{}", super::vmm::release(manifest))
}

/// `make bindeb-pkg` for the stock image in `image_dir`; the linux-image
/// package lands in `out` (a staging directory).
pub fn build(ctx: &Context, image_dir: &Path, manifest: &Manifest, version: &str, maintainer: &str, jobs: usize, out: &Path) -> Result<PackageFile, PackageError> {
    crate::host::ensure_packages(PACKAGES, "make bindeb-pkg", &|m| ctx.status(m))?;
    crate::host::require_program("dpkg-deb", "building .deb packages; Debian package dpkg")?;
    let tree = Entry::new(&ctx.layout, Stage::Sources, manifest.source_hash.clone()).dir().join("tree");
    if !tree.join("Makefile").is_file() {
        return Err(PackageError::TreeMissing { image: image_dir.to_path_buf(), source_hash: manifest.source_hash.clone(), tree, reproduce: manifest.reproduce.clone() });
    }
    let entry_name = image_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // The image's own object directory (stable per key): a rebuild there is
    // all ccache hits. The build entry's lock keeps a rebuild of a damaged
    // image out of it meanwhile.
    let entry = Entry::new(&ctx.layout, Stage::Builds, entry_name.clone());
    let _lock = entry.lock(&ctx.on_wait(&entry))?;
    let objdir = build::objdir_of(ctx, &entry_name);
    let existed = objdir.exists();
    std::fs::create_dir_all(&objdir).map_err(at("create", &objdir))?;
    let shim = date_shim(ctx)?;
    let cleanup = Cleanup { objdir: (!existed).then(|| objdir.clone()), shim: Some(shim.clone()), version: version.to_string(), work: ctx.layout.work_dir() };
    let src_config = image_dir.join("config");
    std::fs::copy(&src_config, objdir.join(".config")).map_err(at("copy", &src_config))?;

    let toolchain = Toolchain::detect()?;
    let local = build::local_version(manifest.mode, &manifest.profile);
    let mut make = build::image_make(ctx, &tree, &objdir, manifest.source_date_epoch, &local, &toolchain);
    make.jobs = jobs;
    make.vars.push(format!("KDEB_PKGVERSION={version}"));
    make.vars.push("KDEB_SOURCENAME=linux-xc".into());
    make.vars.push("KDEB_CHANGELOG_DIST=unstable".into());
    let path = std::env::var("PATH").unwrap_or_default();
    make.env.push(("PATH".into(), format!("{}:{path}", shim.display())));
    let (name, email) = split_maintainer(maintainer);
    make.env.push(("DEBFULLNAME".into(), name));
    make.env.push(("DEBEMAIL".into(), email));
    let log = ctx.layout.work_dir().join(format!("{entry_name}.deb.log"));
    let _ = std::fs::remove_file(&log);
    ctx.status(format!("make bindeb-pkg for {} in {} (log: {})", super::vmm::release(manifest), objdir.display(), log.display()));
    ctx.emit(Event::ProgressStart { what: "bindeb-pkg".into(), len: None });
    let mut units = 0u64;
    let result = make.run(&["bindeb-pkg"], &log, &mut |line| {
        units += 1;
        ctx.emit(Event::Progress { pos: units, message: line.trim().chars().take(80).collect() });
    });
    ctx.emit(Event::ProgressEnd);
    result?;

    let pkg = package_name(manifest);
    let made = ctx.layout.work_dir().join(format!("{pkg}_{version}_amd64.deb"));
    if !made.is_file() {
        return Err(PackageError::NoImagePackage { expected: made.file_name().unwrap().to_string_lossy().into_owned(), dir: ctx.layout.work_dir() });
    }
    let inner = format!("boot/vmlinuz-{}", super::vmm::release(manifest));
    let image_sha = manifest.artifacts.iter().find(|a| a.file == "bzImage").map(|a| a.sha256.clone()).unwrap_or_default();
    let packaged = match file_in_deb(&made, &inner)? {
        Some(vmlinuz) => build_farm::sha256_hex(&vmlinuz),
        None => format!("no /{inner} in {}", made.display()),
    };
    if packaged != image_sha {
        return Err(PackageError::NotTheImage { packaged, image: image_sha });
    }
    let dest = out.join(made.file_name().expect("file name"));
    std::fs::rename(&made, &dest).map_err(at("move", &made))?;
    let _ = std::fs::remove_file(&log);
    drop(cleanup);
    describe(&dest, &pkg, version)
}

/// Splits `Name <email>` into DEBFULLNAME and DEBEMAIL.
fn split_maintainer(m: &str) -> (String, String) {
    match (m.find('<'), m.rfind('>')) {
        (Some(a), Some(b)) if a < b => (m[..a].trim().to_string(), m[a + 1..b].trim().to_string()),
        _ => (m.trim().to_string(), String::new()),
    }
}

/// A `date` that prints `date -R` at SOURCE_DATE_EPOCH: the kernel's
/// mkdebian stamps the changelog (installed as changelog.Debian.gz) with
/// `date -R`, the only clock reading in a package that would otherwise be
/// the same on every build. Everything else goes to the real `date`.
fn date_shim(ctx: &Context) -> Result<PathBuf, PackageError> {
    let dir = ctx.layout.work_dir().join(format!(".date-shim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(at("create", &dir))?;
    let script = "#!/bin/sh\n# xc-convert: the changelog date of a package is the source's, not today's.\nif [ \"$#\" = 1 ] && [ \"$1\" = -R ] && [ -n \"${SOURCE_DATE_EPOCH:-}\" ]; then exec /bin/date -u -R -d \"@$SOURCE_DATE_EPOCH\"; fi\nexec /bin/date \"$@\"\n";
    build_farm::write_atomic_with_mode(&dir.join("date"), script.as_bytes(), 0o755)?;
    Ok(dir)
}

/// Removes what this packaging made on any return: the object directory
/// when it did not exist before, the date shim, and bindeb-pkg's other
/// outputs beside the object directory (headers, libc-dev, dbg packages,
/// .buildinfo, .changes: all named with this package's version, which
/// carries the build hash, so no other image's files match).
struct Cleanup {
    objdir: Option<PathBuf>,
    shim: Option<PathBuf>,
    version: String,
    work: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(d) = &self.objdir {
            let _ = std::fs::remove_dir_all(d);
        }
        if let Some(d) = &self.shim {
            let _ = std::fs::remove_dir_all(d);
        }
        if let Ok(rd) = std::fs::read_dir(&self.work) {
            let marker = format!("_{}_", self.version);
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.contains(&marker) && (n.ends_with(".deb") || n.ends_with(".buildinfo") || n.ends_with(".changes")) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintainer_splits_into_name_and_address() {
        assert_eq!(split_maintainer("Kernel Team <kernel@example.org>"), ("Kernel Team".into(), "kernel@example.org".into()));
        assert_eq!(split_maintainer("someone"), ("someone".into(), String::new()));
    }
}
