//! Harness for end-to-end tests: run the real `xc-convert` binary (as
//! ripgrep's `TestCommand` does) against a shared cache, and parse its JSON.

pub mod chroot;
pub mod container;
pub mod images;
pub mod host_rootfs;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

/// Kernel builds on a 2-core machine only slow each other down: tests that
/// build or boot take this lock.
static HEAVY: Mutex<()> = Mutex::new(());

/// Serialize heavy tests (a poisoned lock from a failed test is still usable).
pub fn heavy() -> MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// The xc-convert binary: `$XC_CONVERT_BIN`, else target/{release,debug}/xc-convert.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("XC_CONVERT_BIN") {
        return PathBuf::from(p);
    }
    for profile in ["release", "debug"] {
        let p = workspace().join("target").join(profile).join("xc-convert");
        if p.is_file() {
            return p;
        }
    }
    panic!("xc-convert binary not found: run `cargo build --release` first or set XC_CONVERT_BIN");
}

/// The cache shared by end-to-end tests (kernel trees are big: unpack once).
pub fn shared_cache() -> PathBuf {
    std::env::var_os("XC_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target").join("xc-e2e-cache"))
}

/// The one profile the real-kernel tests build, on both series: every stage,
/// container, package, matrix, bench and selftest test shares its stock and
/// libos images, so the suite compiles four shared kernels (6.1 and 6.12,
/// stock and libos), each once (plus stock_pipeline's rebuild of the 6.1
/// stock key in a second cache, which ccache mostly serves). It is what
/// `wrap` needs (networking, virtio, ext4) on 2 CPUs with KASLR (threads of one process on different CPUs, the entry
/// table's pointers after relocation); tests boot it on one CPU unless they
/// look for races. (Seven kernels of three profiles took the cold suite past
/// an hour on 2 cores.)
pub const PROFILE: &str = "container-smp";

/// The shared image of `series` in `mode` (`stock` or `libos`): built in the
/// shared cache by whichever test asks first, a cache hit for the others.
pub fn shared_image(series: &str, mode: &str) -> PathBuf {
    let r = xc(&shared_cache(), &["build", "--kernel", series, "--profile", PROFILE, "--mode", mode]).expect_code(0);
    PathBuf::from(r.stdout.lines().last().expect("build prints the image directory"))
}

/// The result of one run of the binary.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// stdout parsed as JSON (panics with both streams when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }

    /// Panic with both streams unless the exit code is `code`.
    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(self.code, code, "exit code\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

/// Run `xc-convert --cache CACHE ARGS...`.
pub fn xc(cache: &Path, args: &[&str]) -> Run {
    let out: Output = Command::new(binary())
        .arg("--cache")
        .arg(cache)
        .args(args)
        .output()
        .expect("run xc-convert");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run `xc-convert --cache CACHE ARGS...` with extra environment variables.
pub fn xc_env(cache: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let out: Output = Command::new(binary()).arg("--cache").arg(cache).args(args).envs(env.iter().copied()).output().expect("run xc-convert");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The fake kernel tree of the fast tier (tests/fakelinux): Kbuild-shaped
/// make targets that take milliseconds.
pub fn fake_tree() -> PathBuf {
    workspace().join("tests").join("fakelinux")
}

/// The profiles written for the fake tree (tests/fake-profiles).
pub fn fake_profiles() -> PathBuf {
    workspace().join("tests").join("fake-profiles")
}

/// The arguments that name the fake tree with one of its profiles.
pub fn fake_image_args(tree: &Path, profile: &str) -> Vec<String> {
    vec![
        "--dir".into(),
        tree.display().to_string(),
        "--profiles-dir".into(),
        fake_profiles().display().to_string(),
        "--profile".into(),
        profile.into(),
    ]
}
