//! Flag groups shared by several commands, each one flattened clap struct
//! with one set of defaults: which image (source + profile + mode), and how
//! to run a VM (accelerator, memory, timeout, CPUs). Each group turns into
//! the pipeline's typed request, and back into the flags that reproduce it.

use super::source_args::SourceArgs;
use crate::pipeline::build::Mode;
use crate::pipeline::image::{ImageSpec, ProfileRef};
use crate::qemu::Accel;
use std::path::PathBuf;
use std::time::Duration;

/// Which kconfig profile.
#[derive(Debug, Clone, clap::Args)]
pub struct ProfileArgs {
    /// Profile name (built in: see `config --list-profiles`) or path to a .toml file.
    #[arg(long, short, default_value = "minimal")]
    pub profile: String,
    /// Extra directory of profile .toml files (they take precedence over built-in ones).
    #[arg(long, value_name = "DIR")]
    pub profiles_dir: Option<PathBuf>,
}

impl ProfileArgs {
    /// The profile these flags name.
    pub fn profile_ref(&self) -> ProfileRef {
        ProfileRef { name: self.profile.clone(), dir: self.profiles_dir.clone() }
    }
}

/// Which image: source, profile and mode.
#[derive(Debug, Clone, clap::Args)]
pub struct ImageArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// stock: the tree as it is; libos: converted by the libos patch set
    /// (processes at CPL 0) and configured with the libos layer added.
    #[arg(long, value_enum, default_value_t = Mode::Stock)]
    pub mode: Mode,
}

impl ImageArgs {
    /// The image these flags name.
    pub fn spec(&self) -> ImageSpec {
        ImageSpec { source: self.source.spec(), profile: self.profile.profile_ref(), mode: self.mode }
    }
}

/// The flags that name `spec`, as they would be typed again. Derived from
/// the spec, so a reproducer can never drift from what the flags mean;
/// machine-local flags (-j, --cache, --json, --keep-objdir) are left out.
pub fn image_flags(spec: &ImageSpec) -> Vec<String> {
    let mut v = super::source_args::source_flags(&spec.source);
    v.extend(["--profile".to_string(), spec.profile.name.clone()]);
    if let Some(d) = &spec.profile.dir {
        v.extend(["--profiles-dir".to_string(), d.display().to_string()]);
    }
    v.extend(["--mode".to_string(), spec.mode.to_string()]);
    v
}

/// The shell command that rebuilds `spec`: the `reproduce` line of a manifest.
pub fn reproduce_line(command: &str, spec: &ImageSpec) -> String {
    let mut s = format!("xc-convert {command}");
    for w in image_flags(spec) {
        s.push(' ');
        s.push_str(&crate::shell::quote(&w));
    }
    s
}

/// How to run a VM.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Virtual machine")]
pub struct VmArgs {
    /// Accelerator: tcg works everywhere; kvm needs a KVM that runs ordinary guests.
    #[arg(long, value_enum, default_value_t = Accel::Tcg)]
    pub accel: Accel,
    /// Guest memory in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 256, value_parser = clap::value_parser!(u32).range(16..))]
    pub memory: u32,
    /// Kill a VM and fail after this many seconds.
    #[arg(long, value_name = "S", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// Virtual CPUs. More than one needs a kernel built with SMP and ACPI
    /// (the `smp` profile); the boot fails if the kernel brings up fewer.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub cpus: u32,
}

impl VmArgs {
    /// The timeout as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use crate::source::SourceSpec;
    use clap::Parser;

    fn parse_build(words: &[String]) -> ImageSpec {
        let mut argv = vec!["xc-convert".to_string(), "build".to_string()];
        argv.extend(words.iter().cloned());
        match Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}")).command {
            Command::Build(b) => b.image.spec(),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn the_reproduce_line_parses_back_into_the_same_spec() {
        let specs = [
            ImageSpec { source: SourceSpec::Debian { series: "6.12".into(), sha256: Some("cd".repeat(32)) }, profile: ProfileRef { name: "net".into(), dir: None }, mode: Mode::Libos },
            ImageSpec {
                source: SourceSpec::Tarball { path: "/tmp/a b/linux.tar.xz".into(), sha256: Some("ab".repeat(32)) },
                profile: ProfileRef { name: "my profile.toml".into(), dir: Some("/p's".into()) },
                mode: Mode::Stock,
            },
            ImageSpec { source: SourceSpec::DebianVersion { version: "6.12.107-1~deb12u1".into(), sha256: None }, profile: ProfileRef { name: "minimal".into(), dir: None }, mode: Mode::Stock },
            ImageSpec { source: SourceSpec::Dir("/src/linux".into()), profile: ProfileRef { name: "minimal".into(), dir: None }, mode: Mode::Stock },
            ImageSpec {
                source: SourceSpec::Git { repo: "/r".into(), rev: "v6.1 tag".into() },
                profile: ProfileRef { name: "smp".into(), dir: None },
                mode: Mode::Libos,
            },
        ];
        for spec in specs {
            let line = reproduce_line("build", &spec);
            let words = shlex::split(&line).expect("a shell line");
            assert_eq!(&words[..2], ["xc-convert", "build"]);
            assert_eq!(parse_build(&words[2..]), spec, "{line}");
        }
    }

    #[test]
    fn defaults_are_one_set() {
        let spec = parse_build(&[]);
        assert_eq!(spec.source, SourceSpec::Debian { series: super::super::source_args::DEFAULT_KERNEL.into(), sha256: None });
        assert_eq!((spec.profile.name.as_str(), spec.mode), ("minimal", Mode::Stock));
    }
}
