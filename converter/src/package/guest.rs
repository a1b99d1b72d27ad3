//! The guest-kernel package of a library-OS image, in the way Kata ships its
//! guest kernel: files under /usr/share/xc-convert/kernels/<krel>/ and a
//! stable per-profile symlink beside them; nothing in /boot, no bootloader
//! hook, no maintainer scripts. A host must never boot this kernel: its
//! processes run at the kernel's privilege.
//!
//! The package name is per profile (`xc-libos-kernel-<profile>`), so a build
//! of a newer kernel for the same profile upgrades the one before and moves
//! the symlink; the release-named directory says which kernel is in.

use super::{describe, run_tool, vmm, PackageError, PackageFile};
use crate::pipeline::build::{release_safe, Manifest};
use build_farm::at;
use std::io::Write;
use std::path::Path;

/// Where guest kernels are installed.
pub const KERNELS_DIR: &str = "usr/share/xc-convert/kernels";

/// Files of the image directory the package installs, and their names there.
const IMAGE_FILES: &[(&str, &str)] =
    &[("bzImage", "vmlinuz"), ("vmlinux", "vmlinux"), ("config", "config"), ("System.map", "System.map"), ("manifest.json", "manifest.json")];

/// The package name of a profile's guest kernel.
pub fn package_name(manifest: &Manifest) -> String {
    format!("xc-libos-kernel-{}", release_safe(&manifest.profile))
}

/// The stable symlink of a profile, relative to [`KERNELS_DIR`].
pub fn profile_link(manifest: &Manifest) -> String {
    format!("libos-{}", release_safe(&manifest.profile))
}

/// Build the package of the image in `image_dir` into `out` (a staging
/// directory), returning its description.
pub fn build(image_dir: &Path, manifest: &Manifest, version: &str, maintainer: &str, out: &Path) -> Result<PackageFile, PackageError> {
    crate::host::require_program("dpkg-deb", "building .deb packages; Debian package dpkg")?;
    let name = package_name(manifest);
    let krel = vmm::release(manifest).to_string();
    let root = tempfile::Builder::new().prefix(".root-").tempdir_in(out).map_err(at("create a package root in", out))?;
    let r = root.path();
    let kdir = r.join(KERNELS_DIR).join(&krel);
    mkdirs(&kdir)?;
    for (from, to) in IMAGE_FILES {
        let (src, dest) = (image_dir.join(from), kdir.join(to));
        std::fs::copy(&src, &dest).map_err(at("copy", &src))?;
        set_mode(&dest, 0o644)?;
    }
    let paths = vmm::KernelPaths { dir: format!("/{KERNELS_DIR}/{krel}/"), bzimage: "vmlinuz".into() };
    for f in vmm::files(manifest, &paths) {
        let dest = kdir.join(f.name);
        std::fs::write(&dest, &f.text).map_err(at("write", &dest))?;
        set_mode(&dest, if f.executable { 0o755 } else { 0o644 })?;
    }
    let link = r.join(KERNELS_DIR).join(profile_link(manifest));
    std::os::unix::fs::symlink(&krel, &link).map_err(at("create the symlink", &link))?;

    let doc = r.join("usr/share/doc").join(&name);
    mkdirs(&doc)?;
    write(&doc.join("copyright"), copyright(manifest))?;
    write(&doc.join("changelog.Debian.gz"), gzip(changelog(manifest, &name, version, maintainer).as_bytes()))?;
    let overrides = r.join("usr/share/lintian/overrides");
    mkdirs(&overrides)?;
    write(&overrides.join(&name), lintian_overrides(&name))?;

    let debian = r.join("DEBIAN");
    mkdirs(&debian)?;
    let installed_kib = installed_size(r)?;
    write(&debian.join("control"), control(manifest, &name, version, maintainer, installed_kib))?;
    write(&debian.join("md5sums"), md5sums(r)?)?;
    let file = out.join(format!("{name}_{version}_amd64.deb"));
    run_tool(
        std::process::Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(r)
            .arg(&file)
            .env("SOURCE_DATE_EPOCH", manifest.source_date_epoch.to_string()),
    )?;
    describe(&file, &name, version)
}

fn control(m: &Manifest, name: &str, version: &str, maintainer: &str, installed_kib: u64) -> String {
    let krel = vmm::release(m);
    // lintian wants description lines of at most 80 columns: the values
    // (release, profile, hash) go on lines of their own.
    format!(
        "Package: {name}\nSource: xc-libos-kernel\nVersion: {version}\nArchitecture: amd64\nMaintainer: {maintainer}\nInstalled-Size: {installed_kib}\nSection: kernel\nPriority: optional\n\
Description: library-OS guest kernel for one container per VM\n \
This is not a kernel for this machine and installs nothing in /boot: its\n \
processes run at the kernel's own privilege (ring 0), with system calls as\n \
plain function calls, so it must only ever run as the guest kernel of a\n \
virtual machine that holds a single container.\n \
.\n \
Kernel release: {krel}\n \
Profile: {}\n \
Converted by xc-convert {}, build {}.\n \
.\n \
The kernel, its configuration, its build manifest and the QEMU,\n \
Firecracker, Cloud Hypervisor and Kata Containers configurations that boot\n \
it are installed in\n \
/{KERNELS_DIR}/{krel}/\n \
and the symlink /{KERNELS_DIR}/{}\n \
names the newest kernel of this profile.\n",
        m.profile,
        env!("CARGO_PKG_VERSION"),
        &m.build_key[..16.min(m.build_key.len())],
        profile_link(m),
    )
}

fn copyright(m: &Manifest) -> String {
    format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: Linux\nSource: {}\nComment: Linux {} converted to a library-OS kernel by xc-convert {}; the\n conversion's patch series is listed in manifest.json.\n\nFiles: *\nCopyright: 1991-2025 Linus Torvalds and many others\nLicense: GPL-2\n On Debian systems, the complete text of the GNU General Public License\n version 2 can be found in /usr/share/common-licenses/GPL-2.\n",
        if m.source_origin.starts_with("debian") { "https://packages.debian.org/source/linux" } else { "https://www.kernel.org/" },
        m.kernel_version,
        env!("CARGO_PKG_VERSION"),
    )
}

fn changelog(m: &Manifest, name: &str, version: &str, maintainer: &str) -> String {
    format!(
        "{name} ({version}) unstable; urgency=medium\n\n  * Linux {}, profile {}, build {}:\n    converted and built by xc-convert {}.\n\n -- {maintainer}  {}\n",
        m.kernel_version,
        m.profile,
        &m.build_key[..16.min(m.build_key.len())],
        env!("CARGO_PKG_VERSION"),
        rfc2822(m.source_date_epoch),
    )
}

/// What lintian says about any guest kernel, and why it is right here.
fn lintian_overrides(name: &str) -> String {
    format!(
        "# The kernel images a VMM loads are architecture-specific files by nature; like\n\
# Kata's guest kernels they are data for the VMM, not programs of this system,\n\
# and live under /usr/share so that one path serves every VMM configuration.\n\
{name}: arch-dependent-file-in-usr-share [usr/share/xc-convert/kernels/*]\n\
# vmlinux keeps its symbols: it is what a debugger and `xc-convert bench --path` read.\n\
{name}: unstripped-binary-or-object [usr/share/xc-convert/kernels/*/vmlinux]\n\
# The file name is <package>_<version>_amd64.deb and the version carries the Debian
# source version, the xc-convert version and the build hash, which order upgrades
# and tell builds apart: dropping any of them to fit 80 columns would lose that.
{name}: package-has-long-file-name
# Built and installed locally, never uploaded to Debian: no ITP bug to close.
{name}: initial-upload-closes-no-bugs [usr/share/doc/{name}/changelog.Debian.gz:1]
# A kernel is linked with nothing: it is the program that loads others.\n\
{name}: statically-linked-binary [usr/share/xc-convert/kernels/*/vmlinux]\n"
    )
}

/// `date -R` of `epoch`, the form a Debian changelog's trailer takes.
fn rfc2822(epoch: u64) -> String {
    let out = std::process::Command::new("date").args(["-u", "-R", "-d", &format!("@{epoch}")]).output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => "Thu, 01 Jan 1970 00:00:00 +0000".into(),
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    // No name and mtime 0 in the header (`gzip -n`): the same bytes every time.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).expect("in-memory gzip");
    e.finish().expect("in-memory gzip")
}

fn mkdirs(d: &Path) -> Result<(), PackageError> {
    std::fs::create_dir_all(d).map_err(at("create", d))?;
    Ok(())
}

fn write(p: &Path, text: impl AsRef<[u8]>) -> Result<(), PackageError> {
    std::fs::write(p, text).map_err(at("write", p))?;
    set_mode(p, 0o644)
}

fn set_mode(p: &Path, mode: u32) -> Result<(), PackageError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).map_err(at("chmod", p))?;
    Ok(())
}

/// Regular files under `root` except DEBIAN/, sorted by path.
fn payload(root: &Path) -> Result<Vec<(String, std::path::PathBuf)>, PackageError> {
    let mut files = Vec::new();
    for e in walkdir::WalkDir::new(root).sort_by_file_name() {
        let e = e.map_err(|e| build_farm::PathError { op: "walk", path: root.to_path_buf(), source: e.into() })?;
        let rel = e.path().strip_prefix(root).expect("under root").to_string_lossy().into_owned();
        if e.file_type().is_file() && !rel.starts_with("DEBIAN") {
            files.push((rel, e.path().to_path_buf()));
        }
    }
    Ok(files)
}

fn installed_size(root: &Path) -> Result<u64, PackageError> {
    let mut total = 0;
    for (_, p) in payload(root)? {
        total += std::fs::metadata(&p).map_err(at("stat", &p))?.len().div_ceil(1024);
    }
    Ok(total)
}

fn md5sums(root: &Path) -> Result<String, PackageError> {
    let mut out = String::new();
    for (rel, p) in payload(root)? {
        let bytes = std::fs::read(&p).map_err(at("read", &p))?;
        out.push_str(&format!("{}  {rel}\n", md5(&bytes)));
    }
    Ok(out)
}

/// md5 for DEBIAN/md5sums (dpkg's integrity list, not a security check).
fn md5(bytes: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn description_and_changelog_lines_fit_lintian_s_80_columns() {
        let mut v: serde_json::Value = serde_json::from_str(include_str!("testdata/manifest.json")).unwrap();
        v["profile"] = "container-smp".into();
        v["kernel_release"] = "6.12.117-xc-libos-container-smp".into();
        let m: Manifest = serde_json::from_value(v).unwrap();
        let name = package_name(&m);
        let version = "6.12.117-1+xc0.1.0+a1b2c3d4e5f6-1";
        let control = control(&m, &name, version, "xc-convert <xc-convert@example.org>", 1);
        let changelog = changelog(&m, &name, version, "xc-convert <xc-convert@example.org>");
        let description = control.split_once("Description: ").unwrap().1;
        for l in description.lines().chain(changelog.lines().filter(|l| l.starts_with("  "))) {
            assert!(l.len() <= 80, "{} columns: {l}", l.len());
        }
        assert!(description.contains("not a kernel for this machine"));
        assert_eq!(name, "xc-libos-kernel-container-smp");
    }
}
