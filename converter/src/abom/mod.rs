//! ABOM: offline binary translation of system-call sites.
//!
//! A libOS kernel maps a table of entry points at
//! [`XC_ENTRY_TABLE_ADDR`](pv_interface::abi::XC_ENTRY_TABLE_ADDR), one
//! 8-byte pointer per system-call number. This module rewrites the common
//! compiler idiom `mov $nr,%eax; syscall` in x86-64 ELF executables and
//! shared libraries into `call *slot(nr)` of the same length, so the process
//! enters the kernel through a plain call instead of a `syscall` trap.
//!
//! Only bytes that a decoder shows to be a `mov` to %eax/%rax immediately
//! followed by `syscall`, inside an executable `PT_LOAD` segment, are
//! touched; every other `syscall` is reported with the reason it was left
//! alone. See [`encode`] for the exact encodings and why the 9-byte form is
//! laid out the way it is.

mod elf;
mod encode;
mod names;
mod sweep;
#[cfg(test)]
mod tests;

pub use encode::{table_slot_addr, SiteForm};
pub use names::syscall_name;

use sweep::Finding;

/// A rewritable `mov $nr,%eax|%rax; syscall` pair.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Site {
    /// File offset of the `mov` (the first byte rewritten).
    pub offset: u64,
    /// Virtual address of the `mov`.
    pub vaddr: u64,
    /// System-call number loaded by the `mov`.
    pub nr: u32,
    /// Name of `nr` on x86-64, or `"unknown"`.
    pub name: String,
    pub form: SiteForm,
}

impl Site {
    /// Number of bytes the rewrite replaces.
    pub fn byte_len(&self) -> usize {
        self.form.byte_len()
    }

    /// The bytes at the site before rewriting.
    pub fn original_bytes(&self) -> Vec<u8> {
        encode::original_bytes(self.form, self.nr)
    }

    /// The bytes at the site after rewriting.
    pub fn patched_bytes(&self) -> Vec<u8> {
        // A Site only exists for numbers that passed this check in the sweep.
        encode::patched_bytes(self.form, self.nr).expect("site number inside the entry table")
    }

    fn range(&self) -> std::ops::Range<usize> {
        self.offset as usize..self.offset as usize + self.byte_len()
    }
}

/// A `syscall` instruction that is not rewritten, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeftAlone {
    /// File offset of the `syscall` instruction.
    pub offset: u64,
    pub vaddr: u64,
    pub reason: String,
}

/// Result of scanning one file. Every decoded `syscall` is accounted for:
/// `syscalls_seen == sites.len() + left_alone.len()`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub sites: Vec<Site>,
    pub left_alone: Vec<LeftAlone>,
    pub syscalls_seen: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum AbomError {
    #[error("not an ELF64 file")]
    NotElf64,
    #[error("not a little-endian x86-64 ELF file")]
    NotX86_64,
    #[error("ELF type {0} is neither an executable (ET_EXEC) nor a shared object (ET_DYN)")]
    UnsupportedType(u16),
    #[error("malformed ELF: {0}")]
    Malformed(String),
    #[error("site at offset {offset:#x} no longer holds the expected bytes (found {found:02x?})")]
    SiteMismatch { offset: u64, found: Vec<u8> },
    #[error("{path}: not a regular file ({kind}); abom reads ELF files")]
    NotRegular { path: std::path::PathBuf, kind: &'static str },
    #[error("{path}: {size} bytes, more than the {MAX_ELF_BYTES} an ELF file abom rewrites may have")]
    TooLarge { path: std::path::PathBuf, size: u64 },
    #[error("{path}: {source}")]
    Read { path: std::path::PathBuf, #[source] source: std::io::Error },
    /// A file's header was refused (the inner error is printed, not chained).
    #[error("{path}: {inner}")]
    InFile { path: std::path::PathBuf, inner: Box<AbomError> },
}

/// The largest file `abom` reads (libLLVM, among the largest shared
/// objects Debian ships, is under 150 MiB).
pub const MAX_ELF_BYTES: u64 = 1 << 30;

/// Read an ELF file for scanning or rewriting, refusing without reading it
/// whole what cannot be one: anything but a regular file (a directory,
/// /dev/zero, a FIFO), a file whose first bytes are not an x86-64 ELF
/// header, or one larger than [`MAX_ELF_BYTES`] (a sparse 2 GiB file is
/// refused by its header or its size, not read). The size is taken from
/// the open file, and at most that many bytes are read, so a file that
/// grows meanwhile cannot make us read more.
pub fn read_elf_file(path: &std::path::Path) -> Result<Vec<u8>, AbomError> {
    use std::io::Read;
    let read_err = |source| AbomError::Read { path: path.to_owned(), source };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    let ft = meta.file_type();
    if !ft.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let kind = if ft.is_dir() {
            "a directory"
        } else if ft.is_char_device() {
            "a character device"
        } else if ft.is_block_device() {
            "a block device"
        } else if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "not a file"
        };
        return Err(AbomError::NotRegular { path: path.to_owned(), kind });
    }
    let size = meta.len();
    let mut reader = file.take(size.min(MAX_ELF_BYTES));
    let mut header = [0u8; 64];
    let in_file = |inner| AbomError::InFile { path: path.to_owned(), inner: Box::new(inner) };
    reader.read_exact(&mut header).map_err(|_| in_file(AbomError::NotElf64))?;
    elf::check_header(&header).map_err(in_file)?;
    if size > MAX_ELF_BYTES {
        return Err(AbomError::TooLarge { path: path.to_owned(), size });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    bytes.extend_from_slice(&header);
    reader.read_to_end(&mut bytes).map_err(read_err)?;
    Ok(bytes)
}

/// Find every `syscall` in the executable segments of `elf` and decide which
/// ones can be rewritten. Changes nothing.
pub fn scan(elf: &[u8]) -> Result<Report, AbomError> {
    let mut report = Report::default();
    for region in elf::code_regions(elf)? {
        for finding in sweep::sweep_region(elf, &region) {
            report.syscalls_seen += 1;
            match finding {
                Finding::Site(site) => report.sites.push(site),
                Finding::LeftAlone(left) => report.left_alone.push(left),
            }
        }
    }
    Ok(report)
}

/// Scan `elf` and return a copy with every site rewritten: same length, only
/// the bytes of the reported sites differ.
pub fn rewrite(elf: &[u8]) -> Result<(Vec<u8>, Report), AbomError> {
    let report = scan(elf)?;
    let mut out = elf.to_vec();
    for site in &report.sites {
        replace(
            &mut out,
            site,
            &site.original_bytes(),
            &site.patched_bytes(),
        )?;
    }
    Ok((out, report))
}

/// Undo [`rewrite`] for the sites of `report`: put back the original bytes.
pub fn restore(rewritten: &[u8], report: &Report) -> Result<Vec<u8>, AbomError> {
    let mut out = rewritten.to_vec();
    for site in &report.sites {
        replace(
            &mut out,
            site,
            &site.patched_bytes(),
            &site.original_bytes(),
        )?;
    }
    Ok(out)
}

/// Overwrite the site's bytes, refusing if they are not `expected`: the scan
/// and the buffer must agree, or we would corrupt code we did not decode.
fn replace(buf: &mut [u8], site: &Site, expected: &[u8], new: &[u8]) -> Result<(), AbomError> {
    let range = site.range();
    let current = buf.get_mut(range.clone()).ok_or_else(|| {
        AbomError::Malformed(format!("site {range:x?} lies past the end of the file"))
    })?;
    if current != expected {
        return Err(AbomError::SiteMismatch {
            offset: site.offset,
            found: current.to_vec(),
        });
    }
    current.copy_from_slice(new);
    Ok(())
}
