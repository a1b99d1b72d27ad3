//! The matrix spec (a TOML file) and its expansion into cells.
//!
//! ```toml
//! kernels  = ["6.1.*", "6.12.117-1~deb12u1", "6.1"]   # every published 6.1, one version, the installed 6.1
//! profiles = ["minimal"]
//! modes    = ["stock", "libos"]                        # or "libos+xlat": libos booted with --translate
//! stages   = ["pull", "analyze", "patch", "config"]    # stop after config (default: all but bench)
//! [resources]
//! cores = 2             # default: the machine's
//! memory_gib = 24       # default: the machine's
//! cell_memory_gib = 2   # what one cell may need (a kernel build with -j2 stays under it)
//! [boot]
//! timeout = 300
//! [bench]              # only read when `stages` ends with "bench"
//! iterations = 400000  # xc_bench's base count (bench's default)
//! ```
//!
//! A kernel is a Debian version (`6.1.176-1`), a series (`6.1`: the
//! installed linux-source-6.1), `X.Y.*` (every version apt publishes),
//! `X.Y.previous` (the published version before the newest), or a table
//! `{ dir = "path" }` / `{ tarball = "path" }` (relative to the spec). A
//! Debian version that apt does not publish is refused when the spec is
//! loaded.

use crate::pipeline::build::Mode;
use crate::pipeline::image::ProfileRef;
use crate::source::{DebianVersion, SourceSpec};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Errors of reading a spec or expanding it.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file could not be read.
    #[error("cannot read matrix spec {}: {source}", path.display())]
    Read {
        /// The spec.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown keys.
    #[error("matrix spec {}: {message}", path.display())]
    Parse {
        /// The spec.
        path: PathBuf,
        /// toml's message (with the line).
        message: String,
    },
    /// `--out` is inside the cache (or holds it): `cache clean` would
    /// delete results, and the results' cleanup would touch cache entries.
    #[error("--out {}: inside the cache {} (or holding it); put results elsewhere", out.display(), cache.display())]
    OutOverlapsCache {
        /// The results directory.
        out: PathBuf,
        /// The cache.
        cache: PathBuf,
    },
    /// The spec is well-formed but asks for something impossible.
    #[error("matrix spec {}: {message}", path.display())]
    Invalid {
        /// The spec.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// `X.Y.*` could not be expanded (apt-cache failed) or a version is malformed.
    #[error("matrix spec {}: kernel `{kernel}`: {source}", path.display())]
    Kernel {
        /// The spec.
        path: PathBuf,
        /// The entry.
        kernel: String,
        /// Why (boxed: a SourceError is large and this is returned once per run).
        #[source]
        source: Box<crate::source::SourceError>,
    },
    /// No cell has this id.
    #[error("matrix spec {}: no cell `{id}`; cells: {}", path.display(), known.join(", "))]
    NoSuchCell {
        /// The spec.
        path: PathBuf,
        /// Asked for.
        id: String,
        /// What exists.
        known: Vec<String>,
    },
}

/// The file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixSpec {
    /// Which kernels (see the module doc).
    pub kernels: Vec<KernelEntry>,
    /// kconfig profiles (names or .toml paths).
    #[serde(default = "default_profiles")]
    pub profiles: Vec<String>,
    /// Extra profile directory (relative to the spec file).
    #[serde(default)]
    pub profiles_dir: Option<PathBuf>,
    /// Modes.
    #[serde(default = "default_modes")]
    pub modes: Vec<CellMode>,
    /// The stages each cell runs, in pipeline order without gaps.
    #[serde(default = "default_stages")]
    pub stages: Vec<StageName>,
    /// What the run may use.
    #[serde(default)]
    pub resources: Resources,
    /// How boot cells run their VM.
    #[serde(default)]
    pub boot: BootSettings,
    /// How bench cells measure.
    #[serde(default)]
    pub bench: BenchCellSettings,
}

/// One `kernels` entry.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum KernelEntry {
    /// `6.1`, `6.1.*` or `6.1.176-1`.
    Name(String),
    /// `{ dir = "..." }`.
    Dir {
        /// A kernel source directory.
        dir: PathBuf,
    },
    /// `{ tarball = "..." }`.
    Tarball {
        /// A kernel tarball.
        tarball: PathBuf,
    },
}

/// A cell's mode: the image's [`Mode`] plus how its guest runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CellMode {
    /// The tree as it is.
    #[serde(rename = "stock")]
    Stock,
    /// Converted by the libos patch set.
    #[serde(rename = "libos")]
    Libos,
    /// libos, its guest programs rewritten by abom (`boot --translate`).
    #[serde(rename = "libos+xlat")]
    LibosXlat,
}

impl CellMode {
    /// The image's mode.
    pub fn image_mode(self) -> Mode {
        match self {
            CellMode::Stock => Mode::Stock,
            CellMode::Libos | CellMode::LibosXlat => Mode::Libos,
        }
    }

    /// Whether the guest is translated.
    pub fn translate(self) -> bool {
        self == CellMode::LibosXlat
    }

    /// As written in a spec.
    pub fn name(self) -> &'static str {
        match self {
            CellMode::Stock => "stock",
            CellMode::Libos => "libos",
            CellMode::LibosXlat => "libos+xlat",
        }
    }
}

/// A stage of a cell, in pipeline order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageName {
    /// Get the tree.
    Pull,
    /// Plan the patch set (libos modes).
    Analyze,
    /// Apply it (libos modes).
    Patch,
    /// Configure.
    Config,
    /// Compile.
    Build,
    /// Boot with the behaviour suite.
    Boot,
    /// Measure ns per system call with xc_bench (the cell's image alone;
    /// the report divides libos by the stock cell of its kernel and profile).
    Bench,
}

impl StageName {
    /// Every stage in order.
    pub const ALL: [StageName; 7] =
        [StageName::Pull, StageName::Analyze, StageName::Patch, StageName::Config, StageName::Build, StageName::Boot, StageName::Bench];

    /// As written in a spec.
    pub fn name(self) -> &'static str {
        match self {
            StageName::Pull => "pull",
            StageName::Analyze => "analyze",
            StageName::Patch => "patch",
            StageName::Config => "config",
            StageName::Build => "build",
            StageName::Boot => "boot",
            StageName::Bench => "bench",
        }
    }
}

/// What the run may use.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// CPU cores [default: the machine's].
    pub cores: Option<usize>,
    /// Memory in GiB [default: the machine's].
    pub memory_gib: Option<u64>,
    /// Memory one cell may need, in GiB [default: 2].
    pub cell_memory_gib: Option<u64>,
    /// Cells at once [default: from cores and memory].
    pub parallel: Option<usize>,
}

/// How a boot cell runs its VM.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BootSettings {
    /// Seconds before the VM is killed.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    /// Guest memory in MiB.
    #[serde(default = "default_memory")]
    pub memory_mib: u32,
    /// `tcg` or `kvm`.
    #[serde(default = "default_accel")]
    pub accel: String,
}

impl BootSettings {
    /// The accelerator (`check` has refused anything but tcg and kvm).
    pub fn accel(&self) -> crate::qemu::Accel {
        if self.accel == "kvm" {
            crate::qemu::Accel::Kvm
        } else {
            crate::qemu::Accel::Tcg
        }
    }
}

impl Default for BootSettings {
    fn default() -> Self {
        Self { timeout: default_timeout(), memory_mib: default_memory(), accel: default_accel() }
    }
}

/// How a bench cell measures: the `[bench]` table. Accelerator, timeout
/// and memory are the `[boot]` table's.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BenchCellSettings {
    /// xc_bench's base iteration count [default: `bench`'s].
    #[serde(default = "default_iterations")]
    pub iterations: u64,
    /// `tsc_early_khz=` for every boot [default under TCG: the host's TSC,
    /// measured by each cell; under KVM: not pinned]; 0: do not pin.
    #[serde(default)]
    pub tsc_khz: Option<u64>,
}

impl Default for BenchCellSettings {
    fn default() -> Self {
        Self { iterations: default_iterations(), tsc_khz: None }
    }
}

fn default_iterations() -> u64 {
    crate::pipeline::bench::DEFAULT_ITERATIONS
}
fn default_timeout() -> u64 {
    300
}
fn default_memory() -> u32 {
    256
}
fn default_accel() -> String {
    "tcg".into()
}
fn default_profiles() -> Vec<String> {
    vec!["minimal".into()]
}
fn default_modes() -> Vec<CellMode> {
    vec![CellMode::Stock, CellMode::Libos]
}
fn default_stages() -> Vec<StageName> {
    StageName::ALL.iter().copied().filter(|s| *s != StageName::Bench).collect()
}

/// One cell: a kernel x profile x mode, and the stages it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellSpec {
    /// `<kernel>_<profile>_<mode>`, a file name.
    pub id: String,
    /// The kernel as the report shows it (`6.1.176-1`, `6.1`, `dir:fakelinux`).
    pub kernel: String,
    /// The source, as pull's flags (`--debian 6.1.176-1`).
    pub source_flags: Vec<String>,
    /// The profile.
    pub profile: String,
    /// The profile directory, absolute.
    pub profiles_dir: Option<PathBuf>,
    /// The mode.
    pub mode: CellMode,
    /// Stages run.
    pub stages: Vec<StageName>,
    /// Boot settings.
    pub boot: BootSettings,
    /// Bench settings (plans written before bench cells have none).
    #[serde(default)]
    pub bench: BenchCellSettings,
}

impl CellSpec {
    /// The source this cell pulls.
    pub fn source(&self) -> SourceSpec {
        source_from_flags(&self.source_flags)
    }

    /// The profile this cell configures.
    pub fn profile_ref(&self) -> ProfileRef {
        ProfileRef { name: self.profile.clone(), dir: self.profiles_dir.clone() }
    }

    /// Whether the cell runs `stage`.
    pub fn runs(&self, stage: StageName) -> bool {
        self.stages.contains(&stage)
    }

    /// The identity of this cell's result: what it asks for and the tool's
    /// version. A cell whose record has this key is fresh.
    pub fn key(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        build_farm::sha256_hex(format!("{}\n{json}", crate::pipeline::TOOL_VERSION).as_bytes())
    }
}

fn source_from_flags(flags: &[String]) -> SourceSpec {
    match flags {
        [k, v] if k == "--debian" => SourceSpec::DebianVersion { version: v.clone(), sha256: None },
        [k, v] if k == "--dir" => SourceSpec::Dir(v.into()),
        [k, v] if k == "--tarball" => SourceSpec::Tarball { path: v.into(), sha256: None },
        [k, v] if k == "--kernel" => SourceSpec::Debian { series: v.clone(), sha256: None },
        _ => SourceSpec::Debian { series: "6.1".into(), sha256: None },
    }
}

/// Read and check a spec file.
pub fn load(path: &Path) -> Result<MatrixSpec, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read { path: path.into(), source })?;
    let spec: MatrixSpec = toml::from_str(&text).map_err(|e| SpecError::Parse { path: path.into(), message: e.to_string() })?;
    check(&spec).map_err(|message| SpecError::Invalid { path: path.into(), message })?;
    Ok(spec)
}

fn check(spec: &MatrixSpec) -> Result<(), String> {
    if spec.kernels.is_empty() || spec.profiles.is_empty() || spec.modes.is_empty() || spec.stages.is_empty() {
        return Err("kernels, profiles, modes and stages must each name at least one".into());
    }
    if spec.bench.iterations == 0 {
        return Err("bench.iterations must be at least 1".into());
    }
    // Each stage needs the one before it: the stages are a prefix of the pipeline.
    let mut wanted = spec.stages.clone();
    wanted.sort();
    wanted.dedup();
    let last = wanted.last().map(|l| StageName::ALL.iter().position(|s| s == l).unwrap_or(0)).unwrap_or(0);
    let prefix = &StageName::ALL[..=last];
    if wanted != prefix {
        let missing: Vec<&str> = prefix.iter().filter(|s| !wanted.contains(s)).map(|s| s.name()).collect();
        return Err(format!("stages leave out {} which later stages need (list every stage from pull on)", missing.join(", ")));
    }
    if spec.boot.accel != "tcg" && spec.boot.accel != "kvm" {
        return Err(format!("boot.accel `{}`: use tcg or kvm", spec.boot.accel));
    }
    Ok(())
}

/// Expand a spec into its cells, in spec order (kernels, then profiles,
/// then modes). `published` lists a series' versions (apt-cache madison).
pub fn cells(
    spec: &MatrixSpec,
    spec_path: &Path,
    published: &dyn Fn(&str) -> Result<Vec<String>, crate::source::SourceError>,
) -> Result<Vec<CellSpec>, SpecError> {
    let base = spec_path.parent().map(Path::to_path_buf).unwrap_or_default();
    let absolute = |p: &Path| if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
    let mut kernels: Vec<(String, Vec<String>)> = Vec::new();
    for k in &spec.kernels {
        let kernel_err = |kernel: &str, source| SpecError::Kernel { path: spec_path.into(), kernel: kernel.into(), source: Box::new(source) };
        match k {
            KernelEntry::Name(n) if n.ends_with(".*") => {
                let series = n.trim_end_matches(".*");
                for v in published(series).map_err(|e| kernel_err(n, e))? {
                    kernels.push((v.clone(), vec!["--debian".into(), v]));
                }
            }
            KernelEntry::Name(n) if n.ends_with(".previous") => {
                // The published version before the newest: with the newest
                // installed (as scripts/install-deps does), "the one before
                // the installed one", without naming a version Debian drops.
                let series = n.trim_end_matches(".previous");
                let versions = published(series).map_err(|e| kernel_err(n, e))?;
                let Some(v) = versions.len().checked_sub(2).map(|i| versions[i].clone()) else {
                    return Err(SpecError::Invalid { path: spec_path.into(), message: format!("kernel `{n}`: fewer than two versions of linux-source-{series} are published ({})", versions.join(", ")) });
                };
                kernels.push((v.clone(), vec!["--debian".into(), v]));
            }
            KernelEntry::Name(n) if n.matches('.').count() == 1 && !n.contains('-') => {
                crate::source::debian_package_name(n).map_err(|e| kernel_err(n, e))?;
                kernels.push((n.clone(), vec!["--kernel".into(), n.clone()]));
            }
            KernelEntry::Name(n) => {
                let v = DebianVersion::parse(n).map_err(|e| kernel_err(n, e))?;
                // At load, not cell by cell: a version Debian does not (or no
                // longer) publish fails the whole spec here, naming it.
                let versions = published(&v.series).map_err(|e| kernel_err(n, e))?;
                if !versions.contains(n) {
                    return Err(kernel_err(n, crate::source::SourceError::UnpublishedVersion { package: v.package(), version: n.clone(), published: versions }));
                }
                kernels.push((n.clone(), vec!["--debian".into(), n.clone()]));
            }
            KernelEntry::Dir { dir } => {
                let label = format!("dir:{}", dir.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default());
                kernels.push((label, vec!["--dir".into(), absolute(dir).display().to_string()]));
            }
            KernelEntry::Tarball { tarball } => {
                let label = format!("tarball:{}", tarball.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default());
                kernels.push((label, vec!["--tarball".into(), absolute(tarball).display().to_string()]));
            }
        }
    }
    // Profile names are checked at load, not cell by cell (a `.toml` path
    // is read by the cell itself).
    let mut catalog = crate::profile::Catalog::builtin();
    if let Some(dir) = spec.profiles_dir.as_deref().map(absolute) {
        catalog.add_dir(&dir).map_err(|e| SpecError::Invalid { path: spec_path.into(), message: format!("profiles_dir: {e}") })?;
    }
    let known = catalog.names();
    if let Some(p) = spec.profiles.iter().find(|p| !p.ends_with(".toml") && !known.contains(p)) {
        return Err(SpecError::Invalid { path: spec_path.into(), message: format!("profile `{p}` is neither built in nor in profiles_dir (known: {})", known.join(", ")) });
    }
    let mut stages = spec.stages.clone();
    stages.sort();
    stages.dedup();
    let mut out: Vec<CellSpec> = Vec::new();
    for (kernel, source_flags) in &kernels {
        for profile in &spec.profiles {
            for mode in &spec.modes {
                let id = file_name(&format!("{kernel}_{profile}_{}", mode.name()));
                if out.iter().any(|c| c.id == id) {
                    return Err(SpecError::Invalid { path: spec_path.into(), message: format!("cell `{id}` appears twice (a kernel, profile or mode is listed twice)") });
                }
                out.push(CellSpec {
                    id,
                    kernel: kernel.clone(),
                    source_flags: source_flags.clone(),
                    profile: profile.clone(),
                    profiles_dir: spec.profiles_dir.as_deref().map(absolute),
                    mode: *mode,
                    stages: stages.clone(),
                    boot: spec.boot.clone(),
                    bench: spec.bench.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// `s` made safe as one file name: `/`, `:` and `+` become `-`.
fn file_name(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || "._~-".contains(c) { c } else { '-' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MatrixSpec, String> {
        let spec: MatrixSpec = toml::from_str(text).map_err(|e| e.to_string())?;
        check(&spec)?;
        Ok(spec)
    }

    #[test]
    fn a_series_glob_expands_to_every_published_version_and_defaults_fill_the_rest() {
        let spec = parse("kernels = [\"6.1.*\", \"6.12\", { dir = \"tree\" }]\n").unwrap();
        let published = |s: &str| Ok(if s == "6.1" { vec!["6.1.170-3".to_string(), "6.1.176-1".to_string()] } else { vec![] });
        let cells = cells(&spec, Path::new("/m/spec.toml"), &published).unwrap();
        let ids: Vec<&str> = cells.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "6.1.170-3_minimal_stock",
                "6.1.170-3_minimal_libos",
                "6.1.176-1_minimal_stock",
                "6.1.176-1_minimal_libos",
                "6.12_minimal_stock",
                "6.12_minimal_libos",
                "dir-tree_minimal_stock",
                "dir-tree_minimal_libos"
            ]
        );
        assert_eq!(cells[0].source(), SourceSpec::DebianVersion { version: "6.1.170-3".into(), sha256: None });
        assert_eq!(cells[4].source(), SourceSpec::Debian { series: "6.12".into(), sha256: None });
        assert_eq!(cells[6].source(), SourceSpec::Dir("/m/tree".into()));
        assert_eq!(cells[0].stages, default_stages());
        assert!(!cells[0].runs(StageName::Bench));
        assert_ne!(cells[0].key(), cells[1].key());
    }

    #[test]
    fn unknown_keys_and_gaps_in_stages_are_refused_and_bench_is_read() {
        assert!(parse("kernels = [\"6.1\"]\nkernel = 1\n").unwrap_err().contains("unknown field"));
        assert!(parse("kernels = [\"6.1\"]\n[resources]\ncpus = 2\n").unwrap_err().contains("unknown field"));
        assert!(parse("kernels = [\"6.1\"]\nmodes = [\"ring0\"]\n").is_err());
        let gap = parse("kernels = [\"6.1\"]\nstages = [\"pull\", \"config\"]\n").unwrap_err();
        assert!(gap.contains("analyze, patch"), "{gap}");
        let bench = parse("kernels = [\"6.1\"]\nstages = [\"pull\",\"analyze\",\"patch\",\"config\",\"build\",\"boot\",\"bench\"]\n[bench]\niterations = 5000\n").unwrap();
        assert_eq!((bench.bench.iterations, bench.bench.tsc_khz), (5000, None));
        assert!(parse("kernels = [\"6.1\"]\n[bench]\niters = 5\n").unwrap_err().contains("unknown field"));
        assert!(parse("kernels = [\"6.1\"]\n[bench]\niterations = 0\n").unwrap_err().contains("iterations"));
        // bench needs the boot stage before it
        assert!(parse("kernels = [\"6.1\"]\nstages = [\"pull\",\"analyze\",\"patch\",\"config\",\"build\",\"bench\"]\n").unwrap_err().contains("boot"));
        let ok = parse("kernels = [\"6.1\"]\nmodes = [\"libos+xlat\"]\nstages = [\"config\", \"pull\", \"patch\", \"analyze\"]\n").unwrap();
        assert_eq!(ok.modes, [CellMode::LibosXlat]);
    }

    #[test]
    fn every_shipped_matrix_is_a_valid_spec() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../matrices");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            if e.path().extension().is_some_and(|x| x == "toml") {
                load(&e.path()).unwrap_or_else(|err| panic!("{err}"));
                n += 1;
            }
        }
        assert!(n >= 4, "{n} specs in {}", dir.display());
    }

    #[test]
    fn previous_and_unpublished_versions_are_resolved_at_load() {
        let published = |s: &str| Ok(if s == "6.1" { vec!["6.1.170-3".to_string(), "6.1.176-1".to_string(), "6.1.192-3".to_string()] } else { vec![] });
        let spec = parse("kernels = [\"6.1\", \"6.1.previous\", \"6.1.170-3\"]\nmodes = [\"stock\"]\n").unwrap();
        let ids: Vec<String> = cells(&spec, Path::new("s.toml"), &published).unwrap().into_iter().map(|c| c.id).collect();
        assert_eq!(ids, ["6.1_minimal_stock", "6.1.176-1_minimal_stock", "6.1.170-3_minimal_stock"]);
        let gone = parse("kernels = [\"6.1.192-2\"]\n").unwrap();
        let err = cells(&gone, Path::new("s.toml"), &published).unwrap_err().to_string();
        assert!(err.contains("6.1.192-2") && err.contains("not published") && err.contains("6.1.192-3"), "{err}");
        let none = parse("kernels = [\"6.12.previous\"]\n").unwrap();
        assert!(cells(&none, Path::new("s.toml"), &published).unwrap_err().to_string().contains("fewer than two"));
    }

    #[test]
    fn an_unknown_profile_is_refused_at_load() {
        let spec = parse("kernels = [\"6.1\"]\nprofiles = [\"minimal\", \"minimla\"]\n").unwrap();
        let err = cells(&spec, Path::new("s.toml"), &|_| Ok(vec![])).unwrap_err().to_string();
        assert!(err.contains("`minimla`") && err.contains("container-smp"), "{err}");
    }

    #[test]
    fn a_malformed_version_is_refused_naming_it() {
        let spec = parse("kernels = [\"6.1.x y\"]\n").unwrap();
        let err = cells(&spec, Path::new("s.toml"), &|_| Ok(vec![])).unwrap_err().to_string();
        assert!(err.contains("`6.1.x y`"), "{err}");
    }
}
