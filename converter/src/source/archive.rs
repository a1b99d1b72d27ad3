//! Opening tarballs: compression sniffing and content hashing.
//!
//! Compression is detected from magic bytes, not the file name, because
//! kernel tarballs get renamed (`linux.tgz`, `src.tar`) and a wrong guess
//! would surface as a confusing "corrupt archive" error.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::SourceError;

/// What sits around the tar stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    Xz,
    Gzip,
    None,
}

/// Sniff the container format of `path` from its first bytes.
pub(crate) fn detect_compression(path: &Path) -> Result<Compression, SourceError> {
    let mut head = Vec::with_capacity(512);
    open(path)?
        .take(512)
        .read_to_end(&mut head)
        .map_err(SourceError::io(path))?;
    let unsupported = |format: &str| SourceError::UnsupportedCompression {
        path: path.to_path_buf(),
        format: format.to_string(),
    };
    match head.as_slice() {
        [] => Err(SourceError::EmptyArchive { path: path.to_path_buf() }),
        [0xFD, b'7', b'z', b'X', b'Z', 0x00, ..] => Ok(Compression::Xz),
        [0x1F, 0x8B, ..] => Ok(Compression::Gzip),
        [b'B', b'Z', b'h', ..] => Err(unsupported("bzip2")),
        [0x28, 0xB5, 0x2F, 0xFD, ..] => Err(unsupported("zstd")),
        [0x04, 0x22, 0x4D, 0x18, ..] => Err(unsupported("lz4")),
        h if h.get(257..262) == Some(b"ustar") => Ok(Compression::None),
        _ => Err(unsupported("unknown (not xz, gzip or a ustar/GNU tar)")),
    }
}

/// A reader yielding the decompressed tar stream of `path`.
pub(crate) fn open_tar_stream(
    path: &Path,
    compression: Compression,
) -> Result<Box<dyn Read>, SourceError> {
    let file = BufReader::with_capacity(1 << 20, open(path)?);
    Ok(match compression {
        Compression::Xz => Box::new(xz2::read::XzDecoder::new_multi_decoder(file)),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(file)),
        Compression::None => Box::new(file),
    })
}

/// Hex SHA-256 of a file's bytes: the identity of a tarball input.
pub(crate) fn sha256_file(path: &Path) -> Result<String, SourceError> {
    let mut hasher = Sha256::new();
    let mut file = open(path)?;
    io::copy(&mut file, &mut hasher).map_err(SourceError::io(path))?;
    Ok(hex::encode(hasher.finalize()))
}

/// Normalise a user-given SHA-256 (`--sha256`), refusing anything that is not
/// 64 hex digits so a typo is not reported as a content mismatch.
pub(crate) fn normalize_sha256(given: &str) -> Result<String, SourceError> {
    let hash = given.trim().to_ascii_lowercase();
    if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hash)
    } else {
        Err(SourceError::InvalidSha256 {
            given: given.to_string(),
        })
    }
}

fn open(path: &Path) -> Result<File, SourceError> {
    File::open(path).map_err(SourceError::io(path))
}
