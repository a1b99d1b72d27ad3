//! Stage 3: compile a bootable image and publish it with its manifest.
//!
//! The image directory's name and cache key are the hash of every input
//! (the configuration's key, which already covers source and profile, the
//! exact `.config`, the patch series, the toolchain and the make recipe), so a
//! second build of the same inputs is a directory lookup, and nobody bumps a
//! version number by hand.

use super::configure::ConfiguredTree;
use super::make::{Make, MakeError};
use super::{Context, Event};
use crate::host::{HostError, Toolchain};
use crate::source::date::{source_epoch, CivilDate};
use build_farm::{Entry, EntryError, Fingerprint, Stage, Staging};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Which kernel to build from a tree. A mode carries its own patch set and
/// profile layer: libos is the tree converted by the `libos` set and
/// configured with the `libos` layer on top of the profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The tree as it is.
    Stock,
    /// Converted by the `libos` patch set, with the `libos` profile layer.
    Libos,
}

impl Mode {
    /// The patch set that converts the tree, if any.
    pub fn patch_set(self) -> Option<&'static str> {
        match self {
            Mode::Stock => None,
            Mode::Libos => Some("libos"),
        }
    }

    /// The profile layer added on top of the requested profile, if any.
    pub fn profile_layer(self) -> Option<&'static str> {
        match self {
            Mode::Stock => None,
            Mode::Libos => Some("libos"),
        }
    }

    /// The CPL processes run at under a kernel of this mode.
    pub fn process_cpl(self) -> u8 {
        match self {
            Mode::Stock => 3,
            Mode::Libos => 0,
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Stock => "stock",
            Mode::Libos => "libos",
        })
    }
}

/// Errors of the build stage and of reading an image directory.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// `make bzImage` failed.
    #[error(transparent)]
    Make(#[from] MakeError),
    /// The host lacks the toolchain.
    #[error(transparent)]
    Host(#[from] HostError),
    /// A path is not an image directory.
    #[error("{path}: {reason} (is this a directory made by `xc-convert build`?)")]
    NotAnImage {
        /// The directory or its manifest.
        path: PathBuf,
        /// Why not.
        reason: String,
    },
    /// An artifact does not match the manifest.
    #[error("image {dir} is damaged: {file} {detail}; `xc-convert build` with the same flags rebuilds a damaged cache entry")]
    Damaged {
        /// The image directory.
        dir: PathBuf,
        /// The artifact.
        file: String,
        /// What differs.
        detail: String,
    },
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] build_farm::PathError),
    /// The cache entry could not be looked up, locked or published.
    #[error(transparent)]
    Cache(#[from] EntryError),
}


use build_farm::at as io_err;

/// One file of the published image directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Artifact {
    /// File name inside the directory.
    pub file: String,
    /// Size in bytes.
    pub size: u64,
    /// Hex sha256.
    pub sha256: String,
}

/// `manifest.json`: what went into an image (see docs/metadata.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Schema version of this file.
    pub schema: u32,
    /// Kernel version from the tree's Makefile.
    pub kernel_version: String,
    /// The kernel release (`uname -r`): the version and its `LOCALVERSION`.
    #[serde(default)]
    pub kernel_release: String,
    /// The source tree's date (its top Makefile's mtime), which the build
    /// embeds and a package stamps on its files.
    #[serde(default)]
    pub source_date_epoch: u64,
    /// Identity of the source input.
    pub source_hash: String,
    /// Where the source came from.
    pub source_origin: String,
    /// Profile name.
    pub profile: String,
    /// Profile layers, parents first.
    pub profile_layers: Vec<String>,
    /// The profile's base config target.
    pub base: String,
    /// Every requested option, as resolved (name -> y/m/n/value).
    pub options: BTreeMap<String, String>,
    /// stock or libos.
    pub mode: Mode,
    /// Patch files applied, in order (none for stock).
    pub patch_series: Vec<String>,
    /// Hash of the patch series text, when there is one.
    pub patch_series_hash: Option<String>,
    /// Hash of what the series does to the tree (the build's input).
    pub patch_content_hash: Option<String>,
    /// Compiler, linker, make and ccache versions.
    pub toolchain: Toolchain,
    /// The configuration stage's key.
    pub config_key: String,
    /// This build's key (the directory name ends with its first 16 digits).
    pub build_key: String,
    /// The inputs that make up the key.
    pub fingerprint: Fingerprint,
    /// Wall-clock seconds the compile took.
    pub build_seconds: f64,
    /// Size of bzImage in bytes.
    pub image_size: u64,
    /// Every file of the directory with its hash.
    pub artifacts: Vec<Artifact>,
    /// The one command line that reproduces this build.
    pub reproduce: String,
    /// Unix time the build finished.
    pub built_at: u64,
}

/// The hand-off to the boot stage.
#[derive(Debug, Clone, Serialize)]
pub struct BuiltImage {
    /// The published directory.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// Whether it was already built.
    pub cache_hit: bool,
}

/// Everything the build stage needs.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The verified configuration (of a stock or a converted tree).
    pub configured: ConfiguredTree,
    /// The mode the configuration was made for.
    pub mode: Mode,
    /// make -j.
    pub jobs: usize,
    /// Command line recorded in the manifest.
    pub reproduce: String,
    /// Keep the object directory after a successful build.
    pub keep_objdir: bool,
    /// Hash every artifact of a cached image (not only its size) before trusting it.
    pub verify_hashes: bool,
}

/// Files copied from the object directory into the image directory.
const ARTIFACTS: &[(&str, &str)] = &[
    ("arch/x86/boot/bzImage", "bzImage"),
    ("vmlinux", "vmlinux"),
    ("System.map", "System.map"),
    (".config", "config"),
];

/// make variables that keep the build reproducible and identifiable: the
/// kernel embeds a user, a host, a build number and a date (in `uname -v`
/// and in the mtimes of its built-in initramfs, which Kbuild passes through
/// `date -d`, so the date must be one `date` can parse). All of them are
/// pinned, the date to the source tree's (see [`source_epoch`]), so one key
/// gives the same bytes on any machine and in any cache. Paths are pinned
/// by `Make` itself (they depend on where, not on what).
///
/// `LOCALVERSION` makes the kernel release (`uname -r`, and the name of a
/// package's files) say what kind of kernel this is: `6.1.192-xc-libos-minimal`
/// can never be mistaken for, or installed over, the host's own 6.1.192.
fn make_vars(source_epoch: u64, local_version: &str) -> Vec<String> {
    vec![
        format!("LOCALVERSION={local_version}"),
        "KBUILD_BUILD_USER=xc-convert".into(),
        "KBUILD_BUILD_HOST=xc-convert".into(),
        "KBUILD_BUILD_VERSION=1".into(),
        format!("KBUILD_BUILD_TIMESTAMP={}", utc_date(source_epoch)),
        format!("SOURCE_DATE_EPOCH={source_epoch}"),
    ]
}

/// The `LOCALVERSION` of a (mode, profile) build: `-xc-<mode>-<profile>`,
/// the profile name cut down to what a kernel release and a Debian package
/// name may hold (lower-case letters, digits, `.`, `+`, `-`).
pub fn local_version(mode: Mode, profile: &str) -> String {
    format!("-xc-{mode}-{}", release_safe(profile))
}

/// `name` as a kernel release and a Debian package name may hold it.
pub fn release_safe(name: &str) -> String {
    name.chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-') { c } else { '-' })
        .collect()
}

/// The make targets of an image.
const TARGETS: &[&str] = &["bzImage"];

/// `epoch` the way `date -u` prints it ("Tue Nov 14 22:13:20 UTC 2023").
fn utc_date(epoch: u64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let d = CivilDate::of_epoch(epoch);
    let secs = epoch % 86_400;
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} UTC {}",
        DAYS[d.weekday as usize],
        MONTHS[(d.month - 1) as usize],
        d.day,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60,
        d.year
    )
}

/// The build fingerprint: every input of the compile, derived from the
/// values the compile uses (the make variables and targets are the ones
/// passed to make, not a description of them).
pub fn fingerprint(req: &BuildRequest, dot_config: &[u8], toolchain: &Toolchain) -> Fingerprint {
    let patched = req.configured.source.patched();
    let pristine = patched.map(|p| &p.pristine).unwrap_or(req.configured.tree());
    super::fingerprint()
        .with_hash("config", &req.configured.key)
        .with("dot_config", dot_config)
        .with("mode", req.mode.to_string())
        .with("patches", patched.map(|p| p.content_hash.as_str()).unwrap_or(""))
        .with("toolchain", toolchain.identity())
        .with_json("make", &(make_vars(source_epoch(&pristine.root), &local_version(req.mode, &req.configured.profile.name)), TARGETS))
}

/// Load the manifest of an image directory.
pub fn load_manifest(dir: &Path) -> Result<Manifest, BuildError> {
    let p = dir.join(Stage::Builds.record_name());
    let text = std::fs::read_to_string(&p).map_err(|e| BuildError::NotAnImage { path: p.clone(), reason: e.to_string() })?;
    serde_json::from_str(&text).map_err(|e| BuildError::NotAnImage { path: p.clone(), reason: format!("not a manifest: {e}") })
}

/// Load an image directory and check its artifacts against the manifest:
/// sizes always (cheap), hashes too when `hashes` is set.
pub fn load_verified(dir: &Path, hashes: bool) -> Result<Manifest, BuildError> {
    let manifest = load_manifest(dir)?;
    verify_artifacts(dir, &manifest, hashes)?;
    Ok(manifest)
}

/// Check every artifact of `manifest` in `dir`.
pub fn verify_artifacts(dir: &Path, manifest: &Manifest, hashes: bool) -> Result<(), BuildError> {
    for a in &manifest.artifacts {
        let p = dir.join(&a.file);
        let damaged = |detail: String| BuildError::Damaged { dir: dir.to_path_buf(), file: a.file.clone(), detail };
        let size = match std::fs::metadata(&p) {
            Ok(m) => m.len(),
            Err(e) => return Err(damaged(format!("cannot be read ({e})"))),
        };
        if size != a.size {
            return Err(damaged(format!("is {size} bytes, the manifest says {}", a.size)));
        }
        if hashes {
            let got = describe(&p, &a.file).map_err(|e| damaged(format!("cannot be read ({e})")))?;
            if got.sha256 != a.sha256 {
                return Err(damaged(format!("has sha256 {}, the manifest says {}", got.sha256, a.sha256)));
            }
        }
    }
    Ok(())
}

/// Build (or find) the image.
pub fn run(ctx: &Context, req: &BuildRequest) -> Result<BuiltImage, BuildError> {
    let toolchain = Toolchain::detect()?;
    let dot_path = req.configured.dot_config();
    let dot_config = std::fs::read(&dot_path).map_err(io_err("read", &dot_path))?;
    let fp = fingerprint(req, &dot_config, &toolchain);
    let c = &req.configured;
    let family = format!("{}-{}-{}-", c.tree().version, c.profile.name, req.mode);
    let name = format!("{family}{}", fp.short_key());
    let entry = Entry::new(&ctx.layout, Stage::Builds, name.clone());
    let dir = entry.dir();
    let load = || -> Result<Option<BuiltImage>, BuildError> {
        if !entry.record().is_file() {
            return Ok(None);
        }
        match load_verified(&dir, req.verify_hashes) {
            Ok(manifest) => Ok(Some(BuiltImage { dir: dir.clone(), manifest, cache_hit: true })),
            // A damaged entry is rebuilt (under the lock), never served.
            Err(e @ BuildError::Damaged { .. }) | Err(e @ BuildError::NotAnImage { .. }) => {
                ctx.status(format!("{e}: rebuilding"));
                Ok(None)
            }
            Err(e) => Err(e),
        }
    };
    let (image, _) = build_farm::get_or_create(&entry, &ctx.on_wait(&entry), load, |staging| {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io_err("remove damaged entry", &dir))?;
        }
        ctx.explain_rebuild(Stage::Builds, &family, &fp);
        compile_into(ctx, staging, req, &name, fp.clone(), toolchain.clone(), &dot_config)
    })?;
    Ok(image)
}

/// The make of an image's tree in its object directory: what the build
/// runs, and what a package stage runs again in the same directory (same
/// variables and paths, so ccache serves every unit and the bytes match).
pub fn image_make(ctx: &Context, tree: &Path, objdir: &Path, epoch: u64, local_version: &str, toolchain: &Toolchain) -> Make {
    let mut make = Make::new(tree, objdir);
    make.vars = make_vars(epoch, local_version);
    if toolchain.ccache.is_some() {
        make.vars.push("CC=ccache gcc".into());
        make.env.push(("CCACHE_BASEDIR".into(), ctx.cache().display().to_string()));
        make.env.push(("CCACHE_NOHASHDIR".into(), "1".into()));
        // The prefix maps name this cache's tree and object directory, so
        // hashed they would make every other cache (and object directory) a
        // miss; every build maps both away, so the objects they give are the
        // same and the maps can stay out of the hash.
        make.env.push(("CCACHE_IGNOREOPTIONS".into(), "-ffile-prefix-map=*".into()));
    }
    make
}

/// The object directory of an image entry's build (stable per key).
pub fn objdir_of(ctx: &Context, entry_name: &str) -> PathBuf {
    ctx.layout.work_dir().join(entry_name)
}

fn compile_into(
    ctx: &Context,
    staging: Staging,
    req: &BuildRequest,
    name: &str,
    fp: Fingerprint,
    toolchain: Toolchain,
    dot_config: &[u8],
) -> Result<BuiltImage, BuildError> {
    let c = &req.configured;
    crate::host::require_packages(crate::host::KERNEL_BUILD_PACKAGES, "kernel build")?;
    // The object directory has a stable path per key: a failed build can be
    // inspected and resumed, and ccache sees the same relative paths.
    let work = ctx.layout.work_dir();
    let objdir = objdir_of(ctx, name);
    std::fs::create_dir_all(&objdir).map_err(io_err("create", &objdir))?;
    let objconfig = objdir.join(".config");
    std::fs::write(&objconfig, dot_config).map_err(io_err("write", &objconfig))?;
    let log = work.join(format!("{name}.log"));
    let _ = std::fs::remove_file(&log);
    if let Some(p) = c.source.patched() {
        ctx.detail(format!("patch series {} ({} patches) over {}", &p.series_hash[..16], p.patches.len(), p.pristine.origin));
    }
    let pristine = c.source.patched().map(|p| &p.pristine).unwrap_or(c.tree());
    let epoch = source_epoch(&pristine.root);
    let mut make = image_make(ctx, &c.tree().root, &objdir, epoch, &local_version(req.mode, &c.profile.name), &toolchain);
    make.jobs = req.jobs;
    let stats = ctx.layout.stats_dir().join(format!("{}-{}-{}.units", c.tree().version.series(), c.profile.name, req.mode));
    let expected: Option<u64> = std::fs::read_to_string(&stats).ok().and_then(|s| s.trim().parse().ok());
    ctx.status(format!("building {name} with -j{} (log: {})", make.jobs, log.display()));
    ctx.emit(Event::ProgressStart { what: "compiling".into(), len: expected });
    let mut units = 0u64;
    let started = Instant::now();
    let result = make.run(TARGETS, &log, &mut |line| {
        if is_unit_line(line) {
            units += 1;
            ctx.emit(Event::Progress { pos: units, message: line.trim().to_string() });
        }
    });
    ctx.emit(Event::ProgressEnd);
    result?;
    let build_seconds = started.elapsed().as_secs_f64();
    let _ = build_farm::write_atomic(&stats, units.to_string().as_bytes());

    let mut artifacts = Vec::new();
    for (from, to) in ARTIFACTS {
        let src = objdir.join(from);
        let dest = staging.path().join(to);
        std::fs::copy(&src, &dest).map_err(io_err("copy", &src))?;
        artifacts.push(describe(&dest, to).map_err(io_err("hash", &dest))?);
    }
    let log_copy = staging.path().join("build.log");
    std::fs::copy(&log, &log_copy).map_err(io_err("copy", &log))?;
    let patched = c.source.patched();
    if let Some(p) = patched {
        // The series travels with the image: what went in, byte for byte.
        let dest = staging.path().join("patches");
        std::fs::create_dir_all(&dest).map_err(io_err("create", &dest))?;
        p.copy_series_to(&dest).map_err(io_err("copy the patch series into", &dest))?;
    }
    // What Kbuild computed (a profile's CONFIG_LOCALVERSION, EXTRAVERSION and
    // all), not our own guess at it.
    let release_file = objdir.join("include/config/kernel.release");
    let kernel_release = std::fs::read_to_string(&release_file).map_err(io_err("read", &release_file))?.trim().to_string();
    let image_size = artifacts[0].size;
    let manifest = Manifest {
        schema: 1,
        kernel_version: c.tree().version.to_string(),
        kernel_release,
        source_date_epoch: epoch,
        source_hash: c.tree().source_hash.clone(),
        source_origin: c.tree().origin.clone(),
        profile: c.profile.name.clone(),
        profile_layers: c.profile.layers.clone(),
        base: c.profile.base.clone(),
        options: c.profile.options.iter().map(|(k, v)| (k.clone(), v.setting.to_string())).collect(),
        mode: req.mode,
        patch_series: patched.map(|p| p.patches.clone()).unwrap_or_default(),
        patch_series_hash: patched.map(|p| p.series_hash.clone()),
        patch_content_hash: patched.map(|p| p.content_hash.clone()),
        toolchain,
        config_key: c.key.clone(),
        build_key: fp.key(),
        fingerprint: fp.clone(),
        build_seconds,
        image_size,
        artifacts,
        reproduce: req.reproduce.clone(),
        built_at: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
    };
    // How to boot it under each VMM, with paths relative to the directory
    // (the same files, with installed paths, go into a package).
    let paths = crate::package::vmm::KernelPaths { dir: String::new(), bzimage: "bzImage".into() };
    for f in crate::package::vmm::files(&manifest, &paths) {
        build_farm::write_atomic_with_mode(&staging.path().join(f.name), f.text.as_bytes(), if f.executable { 0o755 } else { 0o644 })?;
    }
    build_farm::write_json_atomic(&staging.path().join("fingerprint.json"), &fp)?;
    build_farm::write_json_atomic(&staging.path().join(Stage::Builds.record_name()), &manifest)?;
    let dir = staging.publish()?;
    if !req.keep_objdir {
        let _ = std::fs::remove_dir_all(&objdir);
        let _ = std::fs::remove_file(&log);
    }
    Ok(BuiltImage { dir, manifest, cache_hit: false })
}

/// Kbuild's quiet output names one unit per line: "  CC      kernel/fork.o".
fn is_unit_line(line: &str) -> bool {
    line.strip_prefix("  ")
        .and_then(|r| r.split_whitespace().next())
        .is_some_and(|w| w.len() >= 2 && w.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '-'))
}

/// Size and sha256 of a file, read in one pass.
pub(crate) fn describe(path: &Path, name: &str) -> std::io::Result<Artifact> {
    use sha2::{Digest, Sha256};
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let size = std::io::copy(&mut f, &mut h)?;
    Ok(Artifact { file: name.to_string(), size, sha256: hex::encode(h.finalize()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_dates_are_what_date_prints() {
        assert_eq!(utc_date(0), "Thu Jan  1 00:00:00 UTC 1970");
        assert_eq!(utc_date(1_700_000_000), "Tue Nov 14 22:13:20 UTC 2023");
        assert_eq!(utc_date(951_782_400), "Tue Feb 29 00:00:00 UTC 2000");
        let vars = make_vars(1_700_000_000, &local_version(Mode::Libos, "Container_SMP"));
        assert!(vars.contains(&"LOCALVERSION=-xc-libos-container-smp".to_string()), "{vars:?}");
        assert!(vars.contains(&"KBUILD_BUILD_TIMESTAMP=Tue Nov 14 22:13:20 UTC 2023".to_string()), "{vars:?}");
        assert!(vars.contains(&"SOURCE_DATE_EPOCH=1700000000".to_string()), "{vars:?}");
    }

    #[test]
    fn kbuild_unit_lines_are_counted_and_others_not() {
        assert!(is_unit_line("  CC      kernel/fork.o"));
        assert!(is_unit_line("  LD      vmlinux"));
        assert!(is_unit_line("  HOSTCC  scripts/basic/fixdep"));
        assert!(!is_unit_line("make[1]: Entering directory"));
        assert!(!is_unit_line("kernel/fork.c:12: warning: x"));
        assert!(!is_unit_line("  #"));
    }
}
