//! Stage 2: a verified `.config` for a tree and a resolved profile.
//!
//! tuxmake's recipe, with a proof at the end: start from the profile's base
//! (`make tinyconfig`), write every requested option into `.config`, run
//! `make olddefconfig`, then read the final `.config` back and check each
//! request. Kconfig silently drops what it cannot satisfy; we do not: an
//! option that did not survive is an error that says why, from the tree's
//! own Kconfig files.

use super::make::{Make, MakeError};
use super::patch::PatchedTree;
use super::Context;
use crate::host::HostError;
use crate::kconfig::{DotConfig, KconfigDb, KconfigError, Requested, SymbolKind};
use crate::profile::{ResolvedProfile, Setting};
use crate::source::KernelTree;
use build_farm::{Entry, EntryError, Fingerprint, Stage, Staging};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Bases a profile may start from: make targets of the kernel's kconfig.
pub const BASES: &[&str] = &["tinyconfig", "allnoconfig", "defconfig", "x86_64_defconfig", "kvm_guest.config"];

/// A requested option that `olddefconfig` did not keep.
#[derive(Debug, Clone, Serialize)]
pub struct LostOption {
    /// Option name without CONFIG_.
    pub option: String,
    /// What the profile asked.
    pub wanted: String,
    /// What the final .config has.
    pub got: String,
    /// Profile layer that asked.
    pub from: String,
    /// Why, from the Kconfig files.
    pub why: String,
}

/// Errors of the configure stage.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The profile names options the tree does not define.
    #[error("{} option(s) in profile `{profile}` do not exist in Linux {version}:\n{}", .unknown.len(), .unknown.iter().map(|u| format!("  CONFIG_{} (from {}){}", u.0, u.1, u.2.as_ref().map(|s| format!(": did you mean CONFIG_{s}?")).unwrap_or_default())).collect::<Vec<_>>().join("\n"))]
    UnknownOptions {
        /// Profile name.
        profile: String,
        /// Kernel version.
        version: String,
        /// (option, layer, suggestion)
        unknown: Vec<(String, String, Option<String>)>,
    },
    /// Options did not survive olddefconfig.
    #[error("{} requested option(s) did not survive olddefconfig for profile `{profile}` on Linux {version}:\n{}", .lost.len(), .lost.iter().map(|l| format!("  CONFIG_{} wanted {} (from {}), got {}: {}", l.option, l.wanted, l.from, l.got, l.why)).collect::<Vec<_>>().join("\n"))]
    OptionsLost {
        /// Profile name.
        profile: String,
        /// Kernel version.
        version: String,
        /// Every lost option.
        lost: Vec<LostOption>,
    },
    /// The profile's base is not one we know how to make.
    #[error("profile `{profile}` starts from unknown base `{base}`; known bases: {}", BASES.join(", "))]
    UnknownBase {
        /// Profile.
        profile: String,
        /// Its base.
        base: String,
    },
    /// The tree's Kconfig files could not be read.
    #[error("reading the Kconfig files of {tree}: {source}")]
    Kconfig {
        /// The tree.
        tree: PathBuf,
        /// Why.
        #[source]
        source: KconfigError,
    },
    /// `make <base>` or `make olddefconfig` failed.
    #[error(transparent)]
    Make(#[from] MakeError),
    /// The host lacks the toolchain.
    #[error(transparent)]
    Host(#[from] HostError),
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] build_farm::PathError),
    /// The cache entry could not be looked up, locked or published.
    #[error(transparent)]
    Cache(#[from] EntryError),
}


use build_farm::at as io_err;

/// The tree a configuration is for: a stock tree, or one converted by a
/// patch set (so "libos without patches" cannot be written down).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ConfiguredSource {
    /// The pulled tree as it is.
    Stock(KernelTree),
    /// The pulled tree converted by a patch set.
    Converted(Box<PatchedTree>),
}

impl ConfiguredSource {
    /// The tree that is configured and built.
    pub fn tree(&self) -> &KernelTree {
        match self {
            ConfiguredSource::Stock(t) => t,
            ConfiguredSource::Converted(p) => &p.tree,
        }
    }

    /// The patch stage's result, when converted.
    pub fn patched(&self) -> Option<&PatchedTree> {
        match self {
            ConfiguredSource::Stock(_) => None,
            ConfiguredSource::Converted(p) => Some(p),
        }
    }
}

/// The hand-off to the build stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfiguredTree {
    /// The tree that was configured, stock or converted.
    pub source: ConfiguredSource,
    /// The resolved profile.
    pub profile: ResolvedProfile,
    /// The cache key of this configuration.
    pub key: String,
    /// The cache entry directory.
    pub dir: PathBuf,
    /// Number of requested options verified in the final .config.
    pub verified: usize,
    /// Whether the entry was already cached.
    #[serde(skip)]
    pub cache_hit: bool,
}

impl ConfiguredTree {
    /// The verified `.config`.
    pub fn dot_config(&self) -> PathBuf {
        self.dir.join("config")
    }

    /// The tree that was configured.
    pub fn tree(&self) -> &KernelTree {
        self.source.tree()
    }
}

/// What `configured.json` holds: the profile and verification, not paths
/// (on a hit the tree is the caller's and the directory the entry's, so a
/// moved cache stays valid).
#[derive(Debug, Serialize, Deserialize)]
struct ConfigRecord {
    profile: ResolvedProfile,
    key: String,
    verified: usize,
    /// The configured tree's identity, for readers of the cache.
    source_hash: String,
}

/// The configure fingerprint: the tree, the profile as resolved and the compiler
/// (Kconfig reads the compiler's version and capabilities).
pub fn fingerprint(tree: &KernelTree, profile: &ResolvedProfile, toolchain: &crate::host::Toolchain) -> Fingerprint {
    super::fingerprint()
        .with_hash("source", &tree.source_hash)
        .with_json("profile", &(&profile.base, &profile.options))
        .with("toolchain", toolchain.identity())
}

/// Configure `source` with `profile`, or return the cached result.
pub fn run(ctx: &Context, source: &ConfiguredSource, profile: &ResolvedProfile) -> Result<ConfiguredTree, ConfigError> {
    let tree = source.tree();
    let toolchain = crate::host::Toolchain::detect()?;
    let fp = fingerprint(tree, profile, &toolchain);
    let family = format!("{}-{}-", tree.version, profile.name);
    let entry = Entry::new(&ctx.layout, Stage::Configs, format!("{family}{}", fp.short_key()));
    let dir = entry.dir();
    let load = || -> Result<Option<ConfiguredTree>, ConfigError> {
        Ok(entry.read_record::<ConfigRecord>()?.map(|r| ConfiguredTree {
            source: source.clone(),
            profile: r.profile,
            key: r.key,
            dir: dir.clone(),
            verified: r.verified,
            cache_hit: true,
        }))
    };
    let (c, _) = build_farm::get_or_create(&entry, &ctx.on_wait(&entry), load, |staging| {
        ctx.explain_rebuild(Stage::Configs, &family, &fp);
        configure_into(ctx, staging, source, profile, &fp, &dir)
    })?;
    Ok(c)
}

fn configure_into(
    ctx: &Context,
    staging: Staging,
    source: &ConfiguredSource,
    profile: &ResolvedProfile,
    fp: &Fingerprint,
    dir: &Path,
) -> Result<ConfiguredTree, ConfigError> {
    let tree = source.tree();
    if !BASES.contains(&profile.base.as_str()) {
        return Err(ConfigError::UnknownBase { profile: profile.name.clone(), base: profile.base.clone() });
    }
    crate::host::require_packages(crate::host::KERNEL_BUILD_PACKAGES, "kernel configuration")?;
    ctx.status(format!("reading Kconfig of Linux {}", tree.version));
    let db = KconfigDb::load(&tree.root, "x86").map_err(|source| ConfigError::Kconfig { tree: tree.root.clone(), source })?;
    check_names(&db, tree, profile)?;

    let objdir = staging.path().join("obj");
    let log = staging.path().join("config.log");
    let make = Make::new(&tree.root, &objdir);
    ctx.status(format!("make {} (Linux {}, profile {})", profile.base, tree.version, profile.name));
    make.run(&[&profile.base], &log, &mut |_| {})?;
    let dot = objdir.join(".config");
    apply_options(&dot, &db, profile).map_err(io_err("write", &dot))?;
    make.run(&["olddefconfig"], &log, &mut |_| {})?;
    let final_config = DotConfig::parse(&std::fs::read_to_string(&dot).map_err(io_err("read", &dot))?);
    verify(&db, &final_config, tree, profile)?;

    let config = staging.path().join("config");
    std::fs::copy(&dot, &config).map_err(io_err("copy .config to", &config))?;
    std::fs::remove_dir_all(&objdir).map_err(io_err("remove", &objdir))?;
    let record = ConfigRecord { profile: profile.clone(), key: fp.key(), verified: profile.options.len(), source_hash: tree.source_hash.clone() };
    build_farm::write_json_atomic(&staging.path().join("fingerprint.json"), fp)?;
    build_farm::write_json_atomic(&staging.path().join(Stage::Configs.record_name()), &record)?;
    staging.publish()?;
    Ok(ConfiguredTree {
        source: source.clone(),
        profile: profile.clone(),
        key: fp.key(),
        dir: dir.to_path_buf(),
        verified: profile.options.len(),
        cache_hit: false,
    })
}

/// Every option the profile names must exist in this tree.
fn check_names(db: &KconfigDb, tree: &KernelTree, profile: &ResolvedProfile) -> Result<(), ConfigError> {
    let unknown: Vec<_> = profile
        .options
        .iter()
        .filter(|(name, _)| !db.contains(name))
        .map(|(name, o)| (name.clone(), o.from.clone(), db.suggest(name)))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::UnknownOptions { profile: profile.name.clone(), version: tree.version.to_string(), unknown })
    }
}

/// The `.config` line for a setting, quoting strings as Kconfig does.
fn config_line(name: &str, setting: &Setting, kind: Option<&SymbolKind>) -> String {
    match setting {
        Setting::Yes => format!("CONFIG_{name}=y"),
        Setting::Module => format!("CONFIG_{name}=m"),
        Setting::No => format!("# CONFIG_{name} is not set"),
        Setting::Value(v) => match kind {
            Some(SymbolKind::String) => format!("CONFIG_{name}={}", crate::kconfig::quote(v)),
            _ => format!("CONFIG_{name}={v}"),
        },
    }
}

/// Replace (or append) each requested option's line in `.config`.
fn apply_options(dot: &Path, db: &KconfigDb, profile: &ResolvedProfile) -> std::io::Result<()> {
    let text = std::fs::read_to_string(dot)?;
    let owned = |line: &str| -> Option<String> {
        let l = line.trim();
        let name = l.strip_prefix("# CONFIG_").and_then(|r| r.strip_suffix(" is not set"))
            .or_else(|| l.strip_prefix("CONFIG_").and_then(|r| r.split('=').next()))?;
        profile.options.contains_key(name).then(|| name.to_string())
    };
    let mut out: Vec<String> = text.lines().filter(|l| owned(l).is_none()).map(str::to_string).collect();
    out.push("# --- xc-convert profile ---".into());
    for (name, o) in &profile.options {
        out.push(config_line(name, &o.setting, db.symbol(name).map(|s| &s.kind)));
    }
    std::fs::write(dot, out.join("\n") + "\n")
}

/// What the final .config holds for an option, as profile text ("n" when unset).
fn final_value(config: &DotConfig, name: &str) -> String {
    // Unescaped as Kconfig reads it, so `a\b` written as "a\\b" compares equal.
    config.get(name).map(crate::kconfig::unquote).unwrap_or_else(|| "n".to_string())
}

fn satisfied(setting: &Setting, got: &str) -> bool {
    match setting {
        Setting::Yes => got == "y",
        Setting::Module => got == "m",
        Setting::No => got == "n",
        Setting::Value(v) => {
            let norm = |s: &str| {
                let s = s.trim().to_ascii_lowercase();
                s.strip_prefix("0x").map(|h| u64::from_str_radix(h, 16).map(|n| n.to_string()).unwrap_or(s.clone())).unwrap_or(s)
            };
            norm(v) == norm(got)
        }
    }
}

fn requested(setting: &Setting) -> Requested {
    match setting {
        Setting::Yes => Requested::Yes,
        Setting::Module => Requested::Module,
        Setting::No => Requested::No,
        Setting::Value(v) => Requested::Value(v.clone()),
    }
}

/// Check every request against the final .config; explain each loss.
pub fn verify(db: &KconfigDb, config: &DotConfig, tree: &KernelTree, profile: &ResolvedProfile) -> Result<(), ConfigError> {
    let lost: Vec<LostOption> = profile
        .options
        .iter()
        .filter_map(|(name, o)| {
            let got = final_value(config, name);
            if satisfied(&o.setting, &got) {
                return None;
            }
            let why = db.explain(name, &requested(&o.setting), config).summary;
            Some(LostOption { option: name.clone(), wanted: o.setting.to_string(), got, from: o.from.clone(), why })
        })
        .collect();
    if lost.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::OptionsLost { profile: profile.name.clone(), version: tree.version.to_string(), lost })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_compare_like_kconfig() {
        assert!(satisfied(&Setting::Value("0x10".into()), "16"));
        assert!(satisfied(&Setting::Value("0X1f".into()), "0x1F"));
        assert!(satisfied(&Setting::No, "n"));
        assert!(!satisfied(&Setting::Yes, "m"));
        assert_eq!(config_line("A", &Setting::No, None), "# CONFIG_A is not set");
        assert_eq!(config_line("S", &Setting::Value("a\"b".into()), Some(&SymbolKind::String)), "CONFIG_S=\"a\\\"b\"");
    }

    #[test]
    fn string_values_with_backslashes_and_quotes_verify() {
        // `[set] CMDLINE = 'a\b'` was written as "a\\b" and then read back
        // as a\\b: "wanted a\b, got a\\b" although it was as requested.
        for v in [r"a\b", r#"say "hi""#, r#"\""#, r"trailing\"] {
            let line = config_line("CMDLINE", &Setting::Value(v.into()), Some(&SymbolKind::String));
            let got = final_value(&DotConfig::parse(&format!("{line}\n")), "CMDLINE");
            assert_eq!(got, v, "{line}");
            assert!(satisfied(&Setting::Value(v.into()), &got), "{line}");
        }
    }
}
