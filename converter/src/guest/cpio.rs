//! Minimal writer for the "newc" cpio format the kernel unpacks initramfs from
//! (see Documentation/driver-api/early-userspace/buffer-format.rst).
//!
//! Only what an initramfs needs: directories, regular files, symlinks and
//! device nodes, owned by root unless [`Entry::owned_by`] says otherwise (a
//! container's rootfs keeps its owners), with mtime 0 so archives are
//! reproducible.

use std::io::{self, Write};

const MAGIC: &str = "070701";
const HEADER_LEN: usize = 110;
const TRAILER: &str = "TRAILER!!!";

pub(crate) const S_IFDIR: u32 = 0o040_000;
pub(crate) const S_IFREG: u32 = 0o100_000;
pub(crate) const S_IFLNK: u32 = 0o120_000;
pub(crate) const S_IFCHR: u32 = 0o020_000;

/// One archive member. `name` is relative (no leading `/`), as the kernel
/// expects; parents must be emitted before their children.
pub(crate) struct Entry<'a> {
    pub name: &'a str,
    pub mode: u32,
    pub data: &'a [u8],
    pub rdev: (u32, u32),
    pub uid: u32,
    pub gid: u32,
}

impl<'a> Entry<'a> {
    pub fn dir(name: &'a str) -> Self {
        Self { name, mode: S_IFDIR | 0o755, data: &[], rdev: (0, 0), uid: 0, gid: 0 }
    }
    pub fn file(name: &'a str, perm: u32, data: &'a [u8]) -> Self {
        Self { name, mode: S_IFREG | perm, data, rdev: (0, 0), uid: 0, gid: 0 }
    }
    /// The symlink target is stored as the member's data.
    pub fn symlink(name: &'a str, target: &'a str) -> Self {
        Self { name, mode: S_IFLNK | 0o777, data: target.as_bytes(), rdev: (0, 0), uid: 0, gid: 0 }
    }
    /// The same entry with another owner and permission bits (type kept).
    pub fn owned_by(self, uid: u32, gid: u32, perm: u32) -> Self {
        Self { uid, gid, mode: (self.mode & !0o7777) | (perm & 0o7777), ..self }
    }
    pub fn char_dev(name: &'a str, perm: u32, major: u32, minor: u32) -> Self {
        Self { name, mode: S_IFCHR | perm, data: &[], rdev: (major, minor), uid: 0, gid: 0 }
    }
}

/// Streams entries into `out`, numbering inodes as it goes.
pub(crate) struct CpioWriter<W: Write> {
    out: W,
    next_ino: u32,
    written: u64,
}

impl<W: Write> CpioWriter<W> {
    pub fn new(out: W) -> Self {
        Self { out, next_ino: 1, written: 0 }
    }

    pub fn append(&mut self, entry: &Entry<'_>) -> io::Result<()> {
        let size = u32::try_from(entry.data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "entry larger than 4 GiB"))?;
        let nlink = if entry.mode & S_IFDIR == S_IFDIR { 2 } else { 1 };
        let ino = self.next_ino;
        self.next_ino += 1;
        self.write_member(entry.name, ino, entry.mode, (entry.uid, entry.gid), nlink, size, entry.rdev, entry.data)
    }

    /// Write the trailer and return the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.write_member(TRAILER, 0, 0, (0, 0), 1, 0, (0, 0), &[])?;
        self.out.flush()?;
        Ok(self.out)
    }

    #[allow(clippy::too_many_arguments)]
    fn write_member(
        &mut self,
        name: &str,
        ino: u32,
        mode: u32,
        owner: (u32, u32),
        nlink: u32,
        size: u32,
        rdev: (u32, u32),
        data: &[u8],
    ) -> io::Result<()> {
        let namesize = u32::try_from(name.len() + 1)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name too long"))?;
        // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
        let fields = [ino, mode, owner.0, owner.1, nlink, 0, size, 0, 0, rdev.0, rdev.1, namesize, 0];
        let mut header = String::with_capacity(HEADER_LEN);
        header.push_str(MAGIC);
        for field in fields {
            header.push_str(&format!("{field:08x}"));
        }
        self.put(header.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        self.put(data)?;
        self.pad()
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Header+name and data are each padded to a 4-byte boundary.
    fn pad(&mut self) -> io::Result<()> {
        let rem = (self.written % 4) as usize;
        if rem == 0 {
            return Ok(());
        }
        self.put(&[0u8; 3][..4 - rem])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_and_padding() {
        let mut w = CpioWriter::new(Vec::new());
        w.append(&Entry::file("a", 0o644, b"hello")).unwrap();
        let bytes = w.finish().unwrap();
        assert!(bytes.starts_with(b"070701"));
        assert_eq!(bytes.len() % 4, 0);
        // 110-byte header + "a\0" = 112 (aligned), data 5 -> padded to 8.
        assert_eq!(&bytes[112..117], b"hello");
        assert_eq!(&bytes[120..126], b"070701");
        let header = std::str::from_utf8(&bytes[..HEADER_LEN]).unwrap();
        assert_eq!(&header[54..62], "00000005", "filesize field");
        assert!(bytes.windows(TRAILER.len()).any(|w| w == TRAILER.as_bytes()));
    }
}
