//! Locating the static busybox that provides the initramfs userland
//! (installing it is `host::ensure_packages`' job, like every package).

use std::path::{Path, PathBuf};

use super::GuestError;

/// Debian package that ships a statically linked `/bin/busybox`.
pub const BUSYBOX_PACKAGE: &str = "busybox-static";

/// Applets linked to busybox in `/bin`; `/init` only relies on these.
pub const BUSYBOX_APPLETS: &[&str] = &[
    "sh", "mount", "umount", "echo", "cat", "reboot", "poweroff", "sleep", "uname", "dmesg",
    "ls", "mkdir", "true", "false", "ps", "grep",
];

/// Where busybox-static (and other distributions) put the binary.
const CANDIDATES: &[&str] = &["/bin/busybox", "/usr/bin/busybox", "/sbin/busybox"];

/// Find a statically linked busybox on the host.
///
/// A dynamically linked busybox would be copied fine but the kernel could not
/// run `/init` (there is no loader or libc in the initramfs), which shows up
/// much later as a confusing "No working init found" panic; so we check here.
pub fn find_busybox() -> Result<PathBuf, GuestError> {
    let path = CANDIDATES
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .ok_or_else(|| GuestError::BusyboxMissing { searched: CANDIDATES.join(", ") })?;
    ensure_static(path)?;
    Ok(path.to_owned())
}

/// Error unless the file at `path` is a static x86-64 ELF executable.
pub(crate) fn ensure_static(path: &Path) -> Result<(), GuestError> {
    let bytes = std::fs::read(path)
        .map_err(|source| GuestError::ReadBusybox { path: path.to_owned(), source })?;
    check_static_elf(&bytes)
        .map_err(|reason| GuestError::BusyboxNotStatic { path: path.to_owned(), reason })
}

const PT_INTERP: u32 = 3;
const EM_X86_64: u16 = 62;

/// Minimal ELF64 check: x86-64 and no `PT_INTERP` program header (a dynamic
/// executable always requests an interpreter).
pub(crate) fn check_static_elf(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
        return Err("not an ELF file".into());
    }
    if bytes[4] != 2 || bytes[5] != 1 {
        return Err("not a little-endian 64-bit ELF".into());
    }
    if le_u16(bytes, 0x12) != Some(EM_X86_64) {
        return Err("not an x86-64 executable".into());
    }
    let phoff = le_u64(bytes, 0x20).ok_or("truncated header")?;
    let phentsize = u64::from(le_u16(bytes, 0x36).ok_or("truncated header")?);
    let phnum = u64::from(le_u16(bytes, 0x38).ok_or("truncated header")?);
    for i in 0..phnum {
        let at = i.checked_mul(phentsize).and_then(|o| o.checked_add(phoff)).ok_or("bad phoff")?;
        let offset = usize::try_from(at).map_err(|_| "bad phoff")?;
        let p_type = le_u32(bytes, offset).ok_or("truncated program headers")?;
        if p_type == PT_INTERP {
            return Err("dynamically linked (has PT_INTERP)".into());
        }
    }
    Ok(())
}

fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at.checked_add(2)?)?.try_into().ok()?))
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at.checked_add(8)?)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_executables_are_rejected() {
        let ls = std::fs::read("/bin/ls").expect("/bin/ls");
        let err = check_static_elf(&ls).unwrap_err();
        assert!(err.contains("PT_INTERP"), "{err}");
        assert!(check_static_elf(b"#!/bin/sh\n").is_err());
    }

    #[test]
    fn host_busybox_is_found_when_installed() {
        if Path::new("/bin/busybox").exists() {
            let path = find_busybox().expect("static busybox");
            assert!(path.ends_with("busybox"));
        }
    }
}
