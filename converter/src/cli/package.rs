//! `xc-convert package`

use super::Session;
use crate::package::Format;
use crate::pipeline::package::{self, PackageRequest, Packaged};
use std::path::PathBuf;

/// Make distribution packages of an image.
///
/// A stock image becomes what the kernel's own `make bindeb-pkg` makes, run
/// again in the image's object directory with the image's make variables
/// (ccache serves the compile; the packaged vmlinuz must be the image's
/// bzImage byte for byte): `linux-image-<krel>`, which installs into /boot
/// and runs the /etc/kernel hooks like any Debian kernel. A libos image,
/// whose processes run at the kernel's privilege and which a host must never
/// boot, becomes the guest-kernel package `xc-libos-kernel-<profile>`:
/// vmlinuz, vmlinux, config, manifest.json and the QEMU, Firecracker, Cloud
/// Hypervisor and Kata configurations under
/// /usr/share/xc-convert/kernels/<krel>/, the symlink
/// /usr/share/xc-convert/kernels/libos-<profile> to the newest, nothing in /boot.
///
/// The version is `<Debian source version>+xc<xc-convert version>+<build hash>-1`,
/// from the image's identity. Packages are checked by lintian (an error or
/// a warning fails the command) and kept in the cache
/// (`packages/`); `--out` gets copies. The same image packaged in two
/// caches gives byte-identical files. Maintainer: `DEBFULLNAME`/`DEBEMAIL`.
///
///   xc-convert package "$(xc-convert build --kernel 6.1 | tail -n1)" --out debs/
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image directory (the last line `xc-convert build` prints).
    pub image: PathBuf,
    /// Package format.
    #[arg(long, value_enum, default_value_t = Format::Deb)]
    pub format: Format,
    /// Copy the packages into this directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Parallel jobs for a stock image's bindeb-pkg [default: number of CPUs].
    #[arg(short, long)]
    pub jobs: Option<usize>,
}

/// Package `image` and print what was made (shared with `build --package`).
pub(crate) fn package_and_report(s: &Session, image: PathBuf, format: Format, out: Option<PathBuf>, jobs: Option<usize>) -> anyhow::Result<Packaged> {
    let req = PackageRequest { image_dir: image, format, out, jobs: super::build::options(jobs).jobs, maintainer: package::default_maintainer() };
    Ok(package::run(s, &req)?)
}

/// The plain lines of a result: one package file per line, the copy's path
/// when there is one, else the cache's.
pub(crate) fn human(p: &Packaged) -> String {
    let mut lines = Vec::new();
    for (i, f) in p.record.packages.iter().enumerate() {
        let path = p.copies.get(i).cloned().unwrap_or_else(|| p.dir.join(&f.file));
        lines.push(format!("{} {} ({} KiB){}", f.name, f.version, f.size / 1024, if p.cache_hit { " (cached)" } else { "" }));
        lines.push(path.display().to_string());
    }
    lines.join("\n")
}

/// Run `package`.
pub fn exec(s: &Session, args: &Args) -> anyhow::Result<()> {
    let p = package_and_report(s, args.image.clone(), args.format, args.out.clone(), args.jobs)?;
    super::emit(&s.ui, &p, &human(&p));
    Ok(())
}
