//! Pack a walked rootfs plus our PID 1 and the spec into what the VM boots:
//! an initramfs (newc cpio, unpacked by the kernel into RAM) when it is
//! small, an ext4 image on virtio-blk (`mkfs.ext4 -d`) when it is large.
//!
//! The input directory is never touched: the cpio is written from the walk,
//! and the ext4 image gets `.xc/` written into the *image* with debugfs.

use super::rootfs::{EntryKind, RootfsTree};
use super::spec::{ContainerSpec, INIT_PATH, SPEC_PATH};
use super::translate::{rewrite_file, TranslateReport};
use crate::guest::cpio::{CpioWriter, Entry, S_IFDIR, S_IFLNK, S_IFREG};
use serde::{Deserialize, Serialize};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;

include!(concat!(env!("OUT_DIR"), "/container_init.rs"));

/// How the rootfs reaches the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum RootfsFormat {
    /// A newc cpio given to QEMU's -initrd: no disk driver, no mkfs, but it
    /// all lives in guest RAM.
    Initramfs,
    /// An ext4 image on virtio-blk, mounted as / (root=/dev/vda).
    Ext4,
}

impl RootfsFormat {
    /// File name inside the wrapped directory.
    pub fn file_name(self) -> &'static str {
        match self {
            RootfsFormat::Initramfs => "rootfs.cpio",
            RootfsFormat::Ext4 => "rootfs.ext4",
        }
    }
}

impl std::fmt::Display for RootfsFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RootfsFormat::Initramfs => "initramfs",
            RootfsFormat::Ext4 => "ext4",
        })
    }
}

/// `--rootfs-format`: a format, or let the size decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FormatChoice {
    /// initramfs up to [`AUTO_INITRAMFS_LIMIT`] of content, ext4 above.
    #[default]
    Auto,
    Initramfs,
    Ext4,
}

/// Content size up to which `auto` picks an initramfs: the kernel unpacks it
/// in well under a second under TCG and a VM of the default memory holds it
/// twice (archive + unpacked files) with room to spare.
pub const AUTO_INITRAMFS_LIMIT: u64 = 64 << 20;
/// What the kernel and the container's own processes need besides the
/// initramfs, when checking that one fits.
pub const INITRAMFS_HEADROOM: u64 = 96 << 20;

/// The packed rootfs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackedRootfs {
    pub format: RootfsFormat,
    /// File name inside the wrapped directory.
    pub file: String,
    /// Size of that file.
    pub size: u64,
    /// Sum of the rootfs's regular files (before packing).
    pub content_bytes: u64,
    /// Why this format (printed by `wrap`).
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("the rootfs holds {content} MiB of files; as an initramfs the guest needs about {need} MiB (archive + unpacked copy + {headroom} MiB for the kernel and processes) but has {memory} MiB: give more memory (--memory) or use --rootfs-format ext4", content = .content >> 20, need = .need >> 20, headroom = INITRAMFS_HEADROOM >> 20, memory = .memory_mb)]
    InitramfsTooBig { content: u64, need: u64, memory_mb: u32 },
    #[error("cannot read {path} for the rootfs")]
    Read { path: PathBuf, #[source] source: std::io::Error },
    #[error("cannot write {path}")]
    Write { path: PathBuf, #[source] source: std::io::Error },
    #[error("rootfs entry {rel} is too large for a newc cpio archive (over 4 GiB): use --rootfs-format ext4")]
    TooLargeForCpio { rel: String },
    #[error("cannot run {tool} (Debian: apt-get install e2fsprogs)")]
    ToolMissing { tool: &'static str, #[source] source: std::io::Error },
    #[error("{tool} failed on {path}: {stderr}")]
    ToolFailed { tool: &'static str, path: PathBuf, stderr: String },
    #[error("--translate works on an initramfs rootfs only for now: use --rootfs-format initramfs (and enough --memory)")]
    TranslateExt4,
    #[error("the ext4 image {path} does not hold the spec that was written into it (debugfs said: {said})")]
    Ext4Verify { path: PathBuf, said: String },
}

/// Guest memory an initramfs of this content needs (see [`PackError::InitramfsTooBig`]).
pub fn initramfs_need(content_bytes: u64) -> u64 {
    content_bytes * 2 + INITRAMFS_HEADROOM
}

/// Refuse an initramfs the guest memory cannot hold.
pub fn check_initramfs_fits(content_bytes: u64, memory_mb: u32) -> Result<(), PackError> {
    let need = initramfs_need(content_bytes);
    if need > u64::from(memory_mb) << 20 {
        return Err(PackError::InitramfsTooBig { content: content_bytes, need, memory_mb });
    }
    Ok(())
}

/// Decide the format and say why.
pub fn choose(choice: FormatChoice, content_bytes: u64, memory_mb: u32) -> Result<(RootfsFormat, String), PackError> {
    let mib = content_bytes as f64 / (1 << 20) as f64;
    Ok(match choice {
        FormatChoice::Initramfs => {
            check_initramfs_fits(content_bytes, memory_mb)?;
            (RootfsFormat::Initramfs, format!("{mib:.1} MiB of files, initramfs as asked"))
        }
        FormatChoice::Ext4 => (RootfsFormat::Ext4, format!("{mib:.1} MiB of files, ext4 as asked")),
        FormatChoice::Auto if content_bytes <= AUTO_INITRAMFS_LIMIT && check_initramfs_fits(content_bytes, memory_mb).is_ok() => (
            RootfsFormat::Initramfs,
            format!("{mib:.1} MiB of files <= {} MiB: initramfs (--rootfs-format ext4 to change)", AUTO_INITRAMFS_LIMIT >> 20),
        ),
        FormatChoice::Auto => (
            RootfsFormat::Ext4,
            format!("{mib:.1} MiB of files > {} MiB or too big for {memory_mb} MiB of RAM: ext4 on virtio-blk (--rootfs-format initramfs to change)", AUTO_INITRAMFS_LIMIT >> 20),
        ),
    })
}

/// Write the rootfs in `format` to `out_dir/<format file>`; with
/// `translate`, ELF files are rewritten for the entry table on the way
/// (see [`super::translate`]) and the report filled in.
pub fn pack(
    tree: &RootfsTree,
    spec: &ContainerSpec,
    format: RootfsFormat,
    reason: String,
    out_dir: &Path,
    mut translate: Option<&mut TranslateReport>,
) -> Result<PackedRootfs, PackError> {
    let out = out_dir.join(format.file_name());
    match format {
        RootfsFormat::Initramfs => write_cpio(tree, spec, &out, &mut translate)?,
        RootfsFormat::Ext4 => {
            if translate.is_some() {
                return Err(PackError::TranslateExt4);
            }
            write_ext4(tree, spec, &out, out_dir)?
        }
    }
    let size = std::fs::metadata(&out).map_err(|source| PackError::Read { path: out.clone(), source })?.len();
    Ok(PackedRootfs { format, file: format.file_name().to_owned(), size, content_bytes: tree.content_bytes, reason })
}

/// Directories PID 1 mounts on: present in the archive so a read-only
/// rootfs still has them (the initramfs one is writable anyway).
/// Where PID 1 mounts the kernel's filesystems. Not /tmp and /run: as in
/// docker, the image's own files there stay visible (PID 1 makes them,
/// /tmp with mode 1777, only when the image has none).
const MOUNT_POINTS: &[&str] = &["dev", "proc", "sys"];

fn write_cpio(tree: &RootfsTree, spec: &ContainerSpec, out: &Path, translate: &mut Option<&mut TranslateReport>) -> Result<(), PackError> {
    let werr = |source| PackError::Write { path: out.to_owned(), source };
    let file = std::fs::File::create(out).map_err(werr)?;
    let mut cpio = CpioWriter::new(BufWriter::new(file));
    for e in &tree.entries {
        let host = tree.host_path(e);
        let data;
        let (mode, bytes): (u32, &[u8]) = match &e.kind {
            EntryKind::Dir => (S_IFDIR, &[]),
            EntryKind::Symlink { target } => (S_IFLNK, target),
            EntryKind::File { size } => {
                if *size > u64::from(u32::MAX) {
                    return Err(PackError::TooLargeForCpio { rel: e.rel.clone() });
                }
                let read = std::fs::read(&host).map_err(|source| PackError::Read { path: host.clone(), source })?;
                data = match translate.as_deref_mut() {
                    Some(report) => rewrite_file(&e.rel, &read, report).unwrap_or(read),
                    None => read,
                };
                (S_IFREG, &data)
            }
        };
        let entry = Entry { name: &e.rel, mode: mode | e.perm, data: bytes, rdev: (0, 0), uid: e.uid, gid: e.gid };
        cpio.append(&entry).map_err(werr)?;
    }
    for dir in MOUNT_POINTS {
        if !tree.entries.iter().any(|e| e.rel == *dir) {
            cpio.append(&Entry::dir(dir)).map_err(werr)?;
        }
    }
    let spec_text = spec.to_init_file();
    cpio.append(&Entry::dir(".xc").owned_by(0, 0, 0o700)).map_err(werr)?;
    cpio.append(&Entry::file(INIT_PATH, 0o755, XC_INIT)).map_err(werr)?;
    cpio.append(&Entry::file(SPEC_PATH, 0o600, spec_text.as_bytes())).map_err(werr)?;
    cpio.finish().map_err(werr)?;
    Ok(())
}

/// ext4 image size: content plus a 4 KiB block per inode, 30% for metadata
/// and growth, and 64 MiB so the container can write logs and pid files.
pub fn ext4_size(content_bytes: u64, inodes: u64) -> u64 {
    let raw = content_bytes + inodes * 4096;
    let size = raw + raw * 3 / 10 + (64 << 20);
    size.div_ceil(1 << 20) << 20
}

fn write_ext4(tree: &RootfsTree, spec: &ContainerSpec, out: &Path, scratch: &Path) -> Result<(), PackError> {
    let size = ext4_size(tree.content_bytes, tree.inode_count());
    let file = std::fs::File::create(out).map_err(|source| PackError::Write { path: out.to_owned(), source })?;
    file.set_len(size).map_err(|source| PackError::Write { path: out.to_owned(), source })?;
    drop(file);
    // -d copies the directory with owners and modes; -E root_owner keeps /
    // root's even when the rootfs directory belongs to someone else.
    // Every helper dies with us (a killed `wrap` left mkfs.ext4 running).
    let mut mkfs = crate::host::dying_with_us(&["mkfs.ext4".to_owned()]);
    mkfs.args(["-q", "-F", "-L", "xc-rootfs", "-E", "root_owner=0:0", "-d"]).arg(&tree.root).arg(out);
    tool(mkfs, "mkfs.ext4", out)?;

    // Our files go into the image, not the input directory.
    let init = scratch.join(".xc-init");
    let spec_file = scratch.join(".xc-spec");
    let spec_text = spec.to_init_file();
    std::fs::write(&init, XC_INIT).map_err(|source| PackError::Write { path: init.clone(), source })?;
    std::fs::write(&spec_file, &spec_text).map_err(|source| PackError::Write { path: spec_file.clone(), source })?;
    let mut script = String::new();
    for dir in MOUNT_POINTS {
        script.push_str(&format!("mkdir /{dir}\n"));
    }
    // A rootfs's own .xc/ was left out of the walk but mkfs copied it.
    script.push_str(&format!("rm /{INIT_PATH}\nrm /{SPEC_PATH}\nmkdir /.xc\nsif /.xc mode 040700\n"));
    script.push_str(&format!("write {} /{INIT_PATH}\nsif /{INIT_PATH} mode 0100755\nsif /{INIT_PATH} uid 0\nsif /{INIT_PATH} gid 0\n", init.display()));
    script.push_str(&format!("write {} /{SPEC_PATH}\nsif /{SPEC_PATH} mode 0100600\nsif /{SPEC_PATH} uid 0\nsif /{SPEC_PATH} gid 0\n", spec_file.display()));
    let script_file = scratch.join(".xc-debugfs");
    std::fs::write(&script_file, script).map_err(|source| PackError::Write { path: script_file.clone(), source })?;
    let mut debugfs = crate::host::dying_with_us(&["debugfs".to_owned()]);
    debugfs.arg("-w").arg("-f").arg(&script_file).arg(out);
    tool(debugfs, "debugfs", out)?;
    for f in [&init, &spec_file, &script_file] {
        let _ = std::fs::remove_file(f);
    }
    // debugfs reports failed commands only in its output: read the spec back.
    let mut cat = crate::host::dying_with_us(&["debugfs".to_owned()]);
    cat.arg("-R").arg(format!("cat /{SPEC_PATH}")).arg(out);
    let said = tool(cat, "debugfs", out)?;
    if said != spec_text {
        return Err(PackError::Ext4Verify { path: out.to_owned(), said });
    }
    Ok(())
}

/// Run a tool, returning its stdout; a failure carries its stderr.
fn tool(mut cmd: Command, name: &'static str, path: &Path) -> Result<String, PackError> {
    let out = cmd.output().map_err(|source| PackError::ToolMissing { tool: name, source })?;
    if !out.status.success() {
        return Err(PackError::ToolFailed { tool: name, path: path.to_owned(), stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned() });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::rootfs::walk;
    use crate::container::spec::NetworkSpec;

    fn spec() -> ContainerSpec {
        ContainerSpec {
            entrypoint_len: 0,
            args: vec!["/bin/sh".into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            groups: vec![],
            hostname: "t".into(),
            exposed_ports: vec![],
            network: Some(NetworkSpec::default()),
        }
    }

    fn rootfs() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("bin")).unwrap();
        std::fs::write(d.path().join("bin/sh"), b"shell").unwrap();
        std::os::unix::fs::symlink("sh", d.path().join("bin/ash")).unwrap();
        d
    }

    #[test]
    fn init_is_an_embedded_static_elf() {
        assert_eq!(&XC_INIT[..4], b"\x7fELF");
        assert!(!crate::guest::builtin_programs().iter().any(|p| p.bytes == XC_INIT), "PID 1 is not a suite program");
    }

    #[test]
    fn cpio_holds_the_rootfs_and_our_files_and_leaves_the_input_alone() {
        let d = rootfs();
        let before = walk(d.path()).unwrap();
        let out = tempfile::tempdir().unwrap();
        let packed = pack(&before, &spec(), RootfsFormat::Initramfs, "test".into(), out.path(), None).unwrap();
        let bytes = std::fs::read(out.path().join("rootfs.cpio")).unwrap();
        assert_eq!(packed.size, bytes.len() as u64);
        let has = |s: &[u8]| bytes.windows(s.len()).any(|w| w == s);
        assert!(has(b"bin/sh\0") && has(b"shell") && has(b".xc/init\0") && has(b".xc/spec\0"));
        assert!(has(spec().to_init_file().as_bytes()));
        assert_eq!(walk(d.path()).unwrap().digest, before.digest);
        assert!(!d.path().join(".xc").exists());
    }

    #[test]
    fn choice_follows_size_and_refuses_what_memory_cannot_hold() {
        assert_eq!(choose(FormatChoice::Auto, 10 << 20, 512).unwrap().0, RootfsFormat::Initramfs);
        assert_eq!(choose(FormatChoice::Auto, 100 << 20, 512).unwrap().0, RootfsFormat::Ext4);
        assert_eq!(choose(FormatChoice::Auto, 40 << 20, 128).unwrap().0, RootfsFormat::Ext4);
        let err = choose(FormatChoice::Initramfs, 300 << 20, 512).unwrap_err().to_string();
        assert!(err.contains("300 MiB") && err.contains("512 MiB") && err.contains("ext4"), "{err}");
        assert_eq!(choose(FormatChoice::Ext4, 1, 512).unwrap().0, RootfsFormat::Ext4);
    }

    #[test]
    fn ext4_image_gets_our_files_inside_the_image() {
        assert!(Command::new("mkfs.ext4").arg("-V").output().is_ok(), "no mkfs.ext4 (apt-get install e2fsprogs)");
        let d = rootfs();
        let tree = walk(d.path()).unwrap();
        let out = tempfile::tempdir().unwrap();
        let packed = pack(&tree, &spec(), RootfsFormat::Ext4, "test".into(), out.path(), None).unwrap();
        assert!(packed.size >= 64 << 20);
        let img = out.path().join("rootfs.ext4");
        let cat = Command::new("debugfs").arg("-R").arg("cat /bin/sh").arg(&img).output().unwrap();
        assert_eq!(cat.stdout, b"shell");
        let stat = Command::new("debugfs").arg("-R").arg("stat /.xc/init").arg(&img).output().unwrap();
        let stat = String::from_utf8_lossy(&stat.stdout);
        assert!(stat.contains("Mode:  0755"), "{stat}");
        assert!(!d.path().join(".xc").exists());
    }
}
