//! The flags that choose a kernel source, shared by pull, config and build.

use crate::source::SourceSpec;
use std::path::PathBuf;

/// Where the kernel tree comes from (default: Debian's linux-source-6.1).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Kernel source (one of)")]
pub struct SourceArgs {
    /// Debian's linux-source-X.Y tarball from /usr/src (installed with apt-get when missing).
    #[arg(long, value_name = "X.Y", conflicts_with_all = ["debian", "tarball", "dir", "git"])]
    pub kernel: Option<String>,
    /// One published version of Debian's linux-source-X.Y (e.g. 6.1.176-1,
    /// 6.12.107-1~deb12u1), fetched with `apt-get download` into the cache
    /// (see `pull --list-debian`).
    #[arg(long, value_name = "VERSION", conflicts_with_all = ["tarball", "dir", "git"])]
    pub debian: Option<String>,
    /// A kernel tarball (.tar, .tar.gz, .tar.xz); its top directory is stripped.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["dir", "git"])]
    pub tarball: Option<PathBuf>,
    /// Refuse the tarball (--tarball, or Debian's for --kernel) unless its sha256 is this.
    // A directory or a git commit has no file to check: refused, not ignored.
    #[arg(long, value_name = "HEX", conflicts_with_all = ["dir", "git"])]
    pub sha256: Option<String>,
    /// A kernel source directory (copied into the cache, never modified).
    #[arg(long, value_name = "PATH", conflicts_with = "git")]
    pub dir: Option<PathBuf>,
    /// A git repository holding a kernel tree...
    #[arg(long, value_name = "REPO", requires = "git_ref")]
    pub git: Option<PathBuf>,
    /// ...and the commit, tag or branch to take from it.
    // clap drops `requires` when another source flag is present, so the
    // conflicts are spelt out: `--dir D --ref R` must not pass silently.
    #[arg(long = "ref", value_name = "REF", requires = "git", conflicts_with_all = ["kernel", "debian", "tarball", "dir"])]
    pub git_ref: Option<String>,
}

/// The kernel series used when no source flag is given.
pub const DEFAULT_KERNEL: &str = "6.1";

impl SourceArgs {
    /// The source these flags name.
    pub fn spec(&self) -> SourceSpec {
        if let Some(t) = &self.tarball {
            return SourceSpec::Tarball { path: t.clone(), sha256: self.sha256.clone() };
        }
        if let Some(d) = &self.dir {
            return SourceSpec::Dir(d.clone());
        }
        if let (Some(repo), Some(rev)) = (&self.git, &self.git_ref) {
            return SourceSpec::Git { repo: repo.clone(), rev: rev.clone() };
        }
        if let Some(version) = &self.debian {
            return SourceSpec::DebianVersion { version: version.clone(), sha256: self.sha256.clone() };
        }
        SourceSpec::Debian { series: self.kernel.clone().unwrap_or_else(|| DEFAULT_KERNEL.to_string()), sha256: self.sha256.clone() }
    }
}

/// The flags that name `spec`, as they would be typed again (for reproducers).
pub fn source_flags(spec: &SourceSpec) -> Vec<String> {
    let p = |p: &PathBuf| p.display().to_string();
    match spec {
        SourceSpec::Debian { series, sha256 } => {
            let mut v = vec!["--kernel".into(), series.clone()];
            if let Some(s) = sha256 {
                v.extend(["--sha256".into(), s.clone()]);
            }
            v
        }
        SourceSpec::DebianVersion { version, sha256 } => {
            let mut v = vec!["--debian".into(), version.clone()];
            if let Some(s) = sha256 {
                v.extend(["--sha256".into(), s.clone()]);
            }
            v
        }
        SourceSpec::Tarball { path, sha256 } => {
            let mut v = vec!["--tarball".into(), p(path)];
            if let Some(s) = sha256 {
                v.extend(["--sha256".into(), s.clone()]);
            }
            v
        }
        SourceSpec::Dir(d) => vec!["--dir".into(), p(d)],
        SourceSpec::Git { repo, rev } => vec!["--git".into(), p(repo), "--ref".into(), rev.clone()],
    }
}

