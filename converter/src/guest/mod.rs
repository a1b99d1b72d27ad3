//! Guest side of a boot test: the programs that run inside the converted
//! kernel and the initramfs that carries them.
//!
//! The programs in `converter/guest/*.c` are compiled statically by
//! `build.rs` and embedded in the `xc-convert` binary, so building a test
//! initramfs needs nothing on the host except busybox.

mod busybox;
pub(crate) mod cpio;
mod initramfs;
mod translate;

use std::path::{Path, PathBuf};

pub use busybox::{find_busybox, BUSYBOX_APPLETS, BUSYBOX_PACKAGE};
pub(crate) use busybox::check_static_elf;
pub use initramfs::{init_script, write_initramfs, InitramfsSpec};
pub use translate::{translate, ExtraFile, TranslateError, Translated, TranslatedFile, GUARD, GUEST_LIBC_DIR};

/// A guest program compiled into this binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestProgram {
    /// File stem of the source; installed as `/xc/<name>`.
    pub name: &'static str,
    /// Static x86-64 ELF executable.
    pub bytes: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/guest_programs.rs"));

/// All programs embedded at build time, sorted by name.
pub fn builtin_programs() -> &'static [GuestProgram] {
    BUILTIN
}

/// Look up an embedded program by name.
pub fn find(name: &str) -> Option<&'static GuestProgram> {
    BUILTIN.iter().find(|p| p.name == name)
}

/// A program to put into the initramfs: either embedded or read from a host
/// file (e.g. a test binary the user built themselves).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestPayload {
    /// Installed as `/xc/<name>` and named in the `XC-RUN-*` markers.
    pub name: String,
    pub bytes: Vec<u8>,
}

impl GuestPayload {
    /// The embedded program `name`.
    pub fn builtin(name: &str) -> Result<Self, GuestError> {
        find(name).map(Self::from).ok_or_else(|| GuestError::UnknownProgram {
            name: name.to_owned(),
            available: BUILTIN.iter().map(|p| p.name).collect::<Vec<_>>().join(", "),
        })
    }

    /// A program read from a host file; `name` must be a safe shell word
    /// because it appears in `/init`.
    pub fn from_file(name: &str, path: &Path) -> Result<Self, GuestError> {
        validate_name(name)?;
        let bytes = std::fs::read(path).map_err(|source| GuestError::ReadPayload {
            path: path.to_owned(),
            source,
        })?;
        // A dynamic executable would die in the guest as "exit status 127"
        // (no loader, no libc in the initramfs): say why before booting.
        // Non-ELF files (scripts) are left to the guest's shell.
        if bytes.starts_with(b"\x7fELF") {
            busybox::check_static_elf(&bytes).map_err(|reason| GuestError::NotStatic { path: path.to_owned(), reason })?;
        }
        Ok(Self { name: name.to_owned(), bytes })
    }
}

impl From<&GuestProgram> for GuestPayload {
    fn from(p: &GuestProgram) -> Self {
        Self { name: p.name.to_owned(), bytes: p.bytes.to_vec() }
    }
}

/// Program names end up in file paths and in an unquoted shell script, so
/// only a conservative character set is accepted.
pub(crate) fn validate_name(name: &str) -> Result<(), GuestError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(GuestError::InvalidName { name: name.to_owned() })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    #[error("no built-in guest program named {name:?} (available: {available})")]
    UnknownProgram { name: String, available: String },
    #[error("invalid guest program name {name:?}: use 1-64 characters from [A-Za-z0-9_-]")]
    InvalidName { name: String },
    #[error("duplicate guest program name {name:?} in initramfs spec")]
    DuplicateName { name: String },
    #[error("guest program {path} cannot run in the initramfs: {reason}; it has no dynamic loader or libc, so link the program statically (gcc -static)")]
    NotStatic { path: PathBuf, reason: String },
    #[error("cannot read guest program {path}")]
    ReadPayload { path: PathBuf, #[source] source: std::io::Error },
    #[error("busybox not found (looked in {searched}); install it with `apt-get install {BUSYBOX_PACKAGE}`")]
    BusyboxMissing { searched: String },
    #[error("{path} is not a statically linked x86-64 ELF ({reason}); the initramfs has no libc, install `{BUSYBOX_PACKAGE}`")]
    BusyboxNotStatic { path: PathBuf, reason: String },
    #[error("cannot read busybox {path}")]
    ReadBusybox { path: PathBuf, #[source] source: std::io::Error },
    #[error("cannot write initramfs {path}")]
    WriteInitramfs { path: PathBuf, #[source] source: std::io::Error },
    #[error("initramfs entry {name:?} is too large for a newc cpio archive ({size} bytes)")]
    EntryTooLarge { name: String, size: u64 },
}

/// The behaviour suite: every guest program that checks the kernel behaves
/// like a stock one (only the CPL may differ). `boot --suite` runs it.
pub const BEHAVIOUR_SUITE: &[&str] =
    &["probe", "xc_proc", "xc_threads", "xc_ipc", "xc_signals", "xc_memory", "xc_ptrace", "xc_redzone", "xc_gs", "xc_table", "xc_seccomp"];

/// Embedded programs that measure instead of check, so they stay out of the
/// suite: `xc_bench` (run by `xc-convert bench`) prints timings, which
/// differ from run to run and say nothing about correctness.
pub const MEASUREMENTS: &[&str] = &["xc_bench"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_program_is_either_in_the_suite_or_a_measurement() {
        let mut embedded: Vec<&str> = builtin_programs().iter().map(|p| p.name).collect();
        let mut listed: Vec<&str> = BEHAVIOUR_SUITE.iter().chain(MEASUREMENTS).copied().collect();
        embedded.sort();
        listed.sort();
        assert_eq!(embedded, listed, "a guest program in converter/guest/ is in neither BEHAVIOUR_SUITE nor MEASUREMENTS (or a listed one is gone)");
        assert!(MEASUREMENTS.iter().all(|m| !BEHAVIOUR_SUITE.contains(m)), "a measurement must not be in the behaviour suite");
    }

    #[test]
    fn probe_is_embedded_as_static_elf() {
        let probe = find("probe").expect("probe embedded");
        assert_eq!(&probe.bytes[..4], b"\x7fELF");
        assert!(builtin_programs().iter().any(|p| p.name == "probe"));
        busybox::check_static_elf(probe.bytes).expect("probe is static");
    }

    #[test]
    fn dynamic_program_files_are_refused_as_not_static() {
        let err = GuestPayload::from_file("ls", Path::new("/bin/ls")).unwrap_err();
        assert!(matches!(err, GuestError::NotStatic { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains("/bin/ls") && text.contains("statically") && text.contains("PT_INTERP"), "{text}");
        let dir = tempfile::tempdir().unwrap();
        let probe = dir.path().join("probe");
        std::fs::write(&probe, find("probe").unwrap().bytes).unwrap();
        GuestPayload::from_file("probe", &probe).expect("a static program is accepted");
    }

    #[test]
    fn unknown_builtin_lists_available() {
        let err = GuestPayload::builtin("nope").unwrap_err().to_string();
        assert!(err.contains("probe"), "{err}");
    }

    #[test]
    fn names_are_validated() {
        assert!(validate_name("probe-2_x").is_ok());
        for bad in ["", "a b", "../x", "a;reboot", "x/y"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }
}
