//! Any published version of Debian's `linux-source-X.Y`, not only the
//! installed one.
//!
//! `apt-cache madison` lists the versions the configured archives publish;
//! `apt-get download pkg=VERSION` fetches one `.deb`, which apt checks
//! against the signed `Release` -> `Packages` chain before keeping it (that
//! is why we do not fetch it ourselves). The `.deb` is an `ar` archive whose
//! `data.tar.{xz,zst}` holds `usr/src/linux-source-X.Y.tar.xz`: that inner
//! tarball is copied out into `downloads/debian/` and pulled like any other
//! tarball, so a version whose tarball has the same bytes as the installed
//! one's is the same cache entry.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::debian::package_name;
use super::{PullEvent, SourceError};

/// A Debian version of a kernel source package, checked to be made of the
/// characters Debian allows (so it is never read as an apt option or pattern).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebianVersion {
    /// The full version, e.g. `6.12.107-1~deb12u1`.
    pub version: String,
    /// The series it belongs to (`6.12`), from its first two numbers.
    pub series: String,
}

impl DebianVersion {
    /// Parse `6.1.176-1` or `6.12.107-1~deb12u1`.
    pub fn parse(given: &str) -> Result<DebianVersion, SourceError> {
        let invalid = || SourceError::InvalidDebianVersion { given: given.to_string() };
        let allowed = |c: char| c.is_ascii_alphanumeric() || ".+~-".contains(c);
        if given.is_empty() || !given.starts_with(|c: char| c.is_ascii_digit()) || !given.chars().all(allowed) {
            return Err(invalid());
        }
        let mut numbers = given.split(|c: char| !c.is_ascii_digit());
        let (major, minor) = (numbers.next().ok_or_else(invalid)?, numbers.next().ok_or_else(invalid)?);
        let series = format!("{major}.{minor}");
        if minor.is_empty() || !given.starts_with(&format!("{series}.")) {
            return Err(invalid());
        }
        Ok(DebianVersion { version: given.to_string(), series })
    }

    /// The package that ships it.
    pub fn package(&self) -> String {
        format!("linux-source-{}", self.series)
    }
}

/// The versions of `linux-source-<series>` the configured apt archives
/// publish, oldest first.
pub fn published_versions(series: &str) -> Result<Vec<String>, SourceError> {
    let package = package_name(series)?;
    let output = Command::new("apt-cache")
        .args(["madison", &package])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| SourceError::PackageInstall { package: package.clone(), reason: format!("cannot run apt-cache: {e}") })?;
    if !output.status.success() {
        return Err(SourceError::PackageInstall {
            package,
            reason: format!("apt-cache madison failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr).trim()),
        });
    }
    Ok(parse_madison(&String::from_utf8_lossy(&output.stdout), &package))
}

/// `pkg | version | archive` lines -> distinct versions, oldest first
/// (madison prints newest first, and one line per archive).
pub(crate) fn parse_madison(text: &str, package: &str) -> Vec<String> {
    let mut versions: Vec<String> = Vec::new();
    for line in text.lines() {
        let mut fields = line.split('|').map(str::trim);
        if fields.next() != Some(package) {
            continue;
        }
        if let Some(v) = fields.next().filter(|v| !v.is_empty()) {
            if !versions.iter().any(|known| known == v) {
                versions.push(v.to_string());
            }
        }
    }
    versions.reverse();
    versions
}

/// The source tarball of `version`, from `downloads` or fetched with apt.
/// Refuses a version the archives do not publish, listing those they do.
pub fn tarball_for(version: &DebianVersion, downloads: &Path, progress: &dyn Fn(PullEvent)) -> Result<PathBuf, SourceError> {
    let package = version.package();
    let tarball = downloads.join(format!("{package}_{}.tar.xz", version.version));
    if tarball.is_file() {
        return Ok(tarball);
    }
    let published = published_versions(&version.series)?;
    if !published.contains(&version.version) {
        return Err(SourceError::UnpublishedVersion { package, version: version.version.clone(), published });
    }
    fs::create_dir_all(downloads).map_err(SourceError::io(downloads))?;
    // apt writes into its working directory; a private one beside the
    // result keeps a half-downloaded .deb out of sight and on the same
    // filesystem for the final rename.
    let scratch = tempfile::Builder::new().prefix(".tmp-download-").tempdir_in(downloads).map_err(SourceError::io(downloads))?;
    progress(PullEvent::Downloading { package: format!("{package}={}", version.version) });
    apt_download(&package, &version.version, scratch.path())?;
    let deb = find_deb(scratch.path(), &package)?;
    let inner = format!("usr/src/{package}.tar.xz");
    let staged = scratch.path().join("source.tar.xz");
    extract_member_of_deb(&deb, &inner, &staged)?;
    fs::rename(&staged, &tarball).map_err(SourceError::io(&tarball))?;
    Ok(tarball)
}

fn apt_download(package: &str, version: &str, dir: &Path) -> Result<(), SourceError> {
    let spec = format!("{package}={version}");
    let output = Command::new("apt-get")
        .args(["download", "-q", &spec])
        .current_dir(dir)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| SourceError::PackageInstall { package: spec.clone(), reason: format!("cannot run apt-get: {e}") })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().filter(|l| !l.starts_with("W:")).collect();
    Err(SourceError::PackageInstall { package: spec, reason: format!("apt-get download failed ({}): {}", output.status, tail.join(" / ")) })
}

fn find_deb(dir: &Path, package: &str) -> Result<PathBuf, SourceError> {
    let entries = fs::read_dir(dir).map_err(SourceError::io(dir))?;
    for entry in entries {
        let path = entry.map_err(SourceError::io(dir))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.starts_with(&format!("{package}_")) && name.ends_with(".deb") {
            return Ok(path);
        }
    }
    Err(SourceError::PackageInstall { package: package.to_string(), reason: format!("apt-get download left no .deb in {}", dir.display()) })
}

/// Copy the regular file `member` (a path inside the package's data
/// archive) out of the `.deb` at `deb` into `dest`. Only that one member is
/// read, and only as bytes: nothing the package names is created on disk.
pub(crate) fn extract_member_of_deb(deb: &Path, member: &str, dest: &Path) -> Result<(), SourceError> {
    let bad = |message: String| SourceError::BadPackage { deb: deb.to_path_buf(), message };
    let file = fs::File::open(deb).map_err(SourceError::io(deb))?;
    let mut archive = ar::Archive::new(io::BufReader::new(file));
    while let Some(entry) = archive.next_entry() {
        let entry = entry.map_err(|e| bad(format!("not an ar archive: {e}")))?;
        let name = String::from_utf8_lossy(entry.header().identifier()).into_owned();
        let data: Box<dyn Read> = match name.as_str() {
            "data.tar.xz" => Box::new(xz2::read::XzDecoder::new_multi_decoder(entry)),
            "data.tar.zst" => Box::new(ruzstd::decoding::StreamingDecoder::new(entry).map_err(|e| bad(format!("{name}: {e}")))?),
            "data.tar.gz" => Box::new(flate2::read::GzDecoder::new(entry)),
            "data.tar" => Box::new(entry),
            _ => continue,
        };
        return copy_tar_member(data, member, dest).map_err(|e| match e {
            MemberError::Missing => bad(format!("{name} has no file {member}")),
            MemberError::Read(e) => bad(format!("{name}: {e}")),
            MemberError::Write(e) => SourceError::io(dest)(e),
        });
    }
    Err(bad("no data.tar member".to_string()))
}

enum MemberError {
    Missing,
    Read(io::Error),
    Write(io::Error),
}

fn copy_tar_member(data: impl Read, member: &str, dest: &Path) -> Result<(), MemberError> {
    let mut tar = tar::Archive::new(data);
    for entry in tar.entries().map_err(MemberError::Read)? {
        let mut entry = entry.map_err(MemberError::Read)?;
        let path = entry.path().map_err(MemberError::Read)?.into_owned();
        let name = path.to_string_lossy();
        if name.trim_start_matches("./") != member || !entry.header().entry_type().is_file() {
            continue;
        }
        let mut out = fs::File::create(dest).map_err(MemberError::Write)?;
        // Read errors and write errors are told apart for the message.
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = entry.read(&mut buf).map_err(MemberError::Read)?;
            if n == 0 {
                break;
            }
            io::Write::write_all(&mut out, &buf[..n]).map_err(MemberError::Write)?;
        }
        out.sync_all().map_err(MemberError::Write)?;
        return Ok(());
    }
    Err(MemberError::Missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_into_their_series_and_odd_ones_are_refused() {
        let v = DebianVersion::parse("6.12.107-1~deb12u1").unwrap();
        assert_eq!((v.series.as_str(), v.package().as_str()), ("6.12", "linux-source-6.12"));
        assert_eq!(DebianVersion::parse("6.1.176-1").unwrap().series, "6.1");
        for bad in ["", "6", "6.1", "-o=x", "6.1.1 -y", "v6.1.1", "6.1.1/../x", "6..1"] {
            assert!(DebianVersion::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn madison_output_becomes_distinct_versions_oldest_first() {
        let text = "linux-source-6.1 |  6.1.192-3 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages\n\
                    linux-source-6.1 |  6.1.192-3 | http://mirror/debian bookworm-security/main amd64 Packages\n\
                    linux-source-6.1 |  6.1.176-1 | http://deb.debian.org/debian bookworm/main amd64 Packages\n\
                    linux-source-6.12 | 6.12.117-1~deb12u1 | http://x bookworm-security/main amd64 Packages\n\
                    N: garbage\n";
        assert_eq!(parse_madison(text, "linux-source-6.1"), ["6.1.176-1", "6.1.192-3"]);
        assert_eq!(parse_madison(text, "linux-source-6.12"), ["6.12.117-1~deb12u1"]);
    }

    /// A .deb as dpkg-deb lays it out: debian-binary, control, data.
    fn fake_deb(dir: &Path, data_members: &[(&str, &[u8])]) -> PathBuf {
        let mut data = tar::Builder::new(Vec::new());
        for (name, bytes) in data_members {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            data.append_data(&mut h, name, *bytes).unwrap();
        }
        let data = data.into_inner().unwrap();
        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 1);
        io::Write::write_all(&mut xz, &data).unwrap();
        let data_xz = xz.finish().unwrap();
        let path = dir.join("linux-source-6.1_6.1.1-1_all.deb");
        let mut ar = ar::Builder::new(fs::File::create(&path).unwrap());
        for (name, bytes) in [("debian-binary", b"2.0\n".to_vec()), ("control.tar.xz", vec![0u8; 8]), ("data.tar.xz", data_xz)] {
            ar.append(&ar::Header::new(name.as_bytes().to_vec(), bytes.len() as u64), bytes.as_slice()).unwrap();
        }
        path
    }

    #[test]
    fn the_inner_tarball_is_copied_out_of_the_deb_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let deb = fake_deb(dir.path(), &[("./usr/share/doc/x", b"doc"), ("./usr/src/linux-source-6.1.tar.xz", &payload)]);
        let dest = dir.path().join("out.tar.xz");
        extract_member_of_deb(&deb, "usr/src/linux-source-6.1.tar.xz", &dest).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), payload);
    }

    #[test]
    fn a_deb_without_the_tarball_or_not_a_deb_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let deb = fake_deb(dir.path(), &[("./usr/src/other.tar.xz", b"x")]);
        let err = extract_member_of_deb(&deb, "usr/src/linux-source-6.1.tar.xz", &dir.path().join("o")).unwrap_err().to_string();
        assert!(err.contains("has no file usr/src/linux-source-6.1.tar.xz") && err.contains(".deb"), "{err}");
        let not = dir.path().join("not.deb");
        fs::write(&not, b"hello").unwrap();
        let err = extract_member_of_deb(&not, "usr/src/x", &dir.path().join("o")).unwrap_err().to_string();
        assert!(err.contains("not.deb") && err.contains("not an ar archive"), "{err}");
        assert!(!dir.path().join("o").exists());
    }
}
