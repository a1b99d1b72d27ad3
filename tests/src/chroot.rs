//! A Debian bookworm root made once by debootstrap (minbase), for
//! installing the packages `xc-convert package` makes with the real dpkg.
//! Each test gets its own copy.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

static MAKING: Mutex<()> = Mutex::new(());

/// The pristine root, made on first use beside the shared cache (a run of
/// debootstrap takes a minute or two; the directory is renamed into place
/// only when it finished).
fn pristine() -> PathBuf {
    let _g = MAKING.lock().unwrap_or_else(|e| e.into_inner());
    let base = crate::shared_cache().with_file_name("bookworm-root");
    if base.join("var/lib/dpkg/status").is_file() {
        return base;
    }
    let tmp = base.with_file_name(format!("bookworm-root.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let out = Command::new("debootstrap")
        .args(["--variant=minbase", "bookworm"])
        .arg(&tmp)
        .arg("http://deb.debian.org/debian")
        .output()
        .expect("run debootstrap (scripts/install-deps installs it)");
    assert!(out.status.success(), "debootstrap failed:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    std::fs::rename(&tmp, &base).unwrap();
    base
}

/// A fresh copy of the bookworm root in a temporary directory.
pub struct Root {
    _dir: tempfile::TempDir,
    /// The root directory.
    pub path: PathBuf,
}

impl Root {
    /// Copy the pristine root (made once).
    pub fn new() -> Root {
        let src = pristine();
        let dir = tempfile::tempdir_in(src.parent().unwrap()).unwrap();
        let path = dir.path().join("root");
        let st = Command::new("cp").arg("-a").arg(&src).arg(&path).status().unwrap();
        assert!(st.success(), "copy {}", src.display());
        Root { _dir: dir, path }
    }

    /// Run a command inside the root; its output, and whether it succeeded.
    pub fn run(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new("chroot").arg(&self.path).args(args).env("DEBIAN_FRONTEND", "noninteractive").output().unwrap();
        (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }

    /// Run and require success.
    pub fn ok(&self, args: &[&str]) -> String {
        let (ok, text) = self.run(args);
        assert!(ok, "chroot {}: {:?} failed:\n{text}", self.path.display(), args);
        text
    }

    /// Copy a file into the root's /tmp; its path inside the root.
    pub fn put(&self, file: &Path) -> String {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        std::fs::copy(file, self.path.join("tmp").join(&name)).unwrap();
        format!("/tmp/{name}")
    }

    /// A path inside the root, seen from the host.
    pub fn host_path(&self, inner: &str) -> PathBuf {
        self.path.join(inner.trim_start_matches('/'))
    }

    /// The files (not directories) dpkg lists for an installed package.
    pub fn files_of(&self, package: &str) -> Vec<String> {
        self.ok(&["dpkg", "-L", package]).lines().filter(|l| l.starts_with('/')).filter(|l| !self.host_path(l).is_dir()).map(str::to_string).collect()
    }
}

impl Default for Root {
    fn default() -> Self {
        Self::new()
    }
}
