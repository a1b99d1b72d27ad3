//! "Give me the image for (source, profile, mode), building whatever is
//! missing": the one entry point every command that needs a kernel image
//! calls. It chains pull -> (patch) -> configure -> build; each stage runs
//! only when its cache entry is missing.

// ProfileError carries the profile's origin and the available names; these
// errors are returned once per command, so their size does not matter.
#![allow(clippy::result_large_err)]

use super::build::{self, BuildError, BuildRequest, BuiltImage, Mode};
use super::configure::{self, ConfigError, ConfiguredSource, ConfiguredTree};
use super::patch::{self as patch_stage, PatchStageError};
use super::{pull, Context};
use crate::patch::{PatchError, PatchSet};
use crate::profile::{Catalog, ProfileError, Series};
use crate::source::{SourceError, SourceSpec};
use std::path::PathBuf;

/// Which profile: a name from the catalog (built-in plus an extra directory)
/// or a path to a .toml file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileRef {
    /// Profile name or path to a .toml file.
    pub name: String,
    /// Extra directory of profile files (taking precedence over built-in ones).
    pub dir: Option<PathBuf>,
}

impl ProfileRef {
    /// The catalog this profile is looked up in.
    pub fn catalog(&self) -> Result<Catalog, ProfileError> {
        let mut c = Catalog::builtin();
        if let Some(d) = &self.dir {
            c.add_dir(d)?;
        }
        Ok(c)
    }
}

/// Which image: everything that decides what gets built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// Where the kernel tree comes from.
    pub source: SourceSpec,
    /// The kconfig profile.
    pub profile: ProfileRef,
    /// Stock or converted.
    pub mode: Mode,
}

/// How to build, not what: never part of an image's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOptions {
    /// make -j.
    pub jobs: usize,
    /// Keep the object directory after a successful build.
    pub keep_objdir: bool,
    /// Hash every artifact of a cached image before trusting it.
    pub verify_hashes: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            jobs: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            keep_objdir: false,
            verify_hashes: false,
        }
    }
}

/// Errors of getting an image: whichever stage failed, with its own context.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The source could not be pulled.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The profile is unknown or invalid.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The mode's patch set is missing or invalid.
    #[error(transparent)]
    PatchSet(#[from] PatchError),
    /// The conversion does not apply.
    #[error(transparent)]
    Patch(#[from] PatchStageError),
    /// The configuration failed or lost options.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The compile failed.
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// Pull, patch (when the mode has a patch set) and configure, each only
/// when its result is missing.
pub fn configure(ctx: &Context, spec: &ImageSpec) -> Result<ConfiguredTree, ImageError> {
    let catalog = spec.profile.catalog()?;
    let (tree, _) = pull::run(ctx, &spec.source)?;
    let series = Series(tree.version.version, tree.version.patchlevel);
    let resolved = match spec.mode.profile_layer() {
        None => catalog.resolve(&spec.profile.name, series)?,
        Some(layer) => catalog.resolve_with_layer(&spec.profile.name, series, layer)?,
    };
    let source = match spec.mode.patch_set() {
        None => ConfiguredSource::Stock(tree),
        Some(set) => {
            let set = PatchSet::builtin(set)?;
            ConfiguredSource::Converted(Box::new(patch_stage::run(ctx, &tree, &set)?))
        }
    };
    Ok(configure::run(ctx, &source, &resolved)?)
}

/// The image for `spec`: from the cache, or built (with whatever stages
/// before the build are missing). `reproduce` is the command line recorded
/// in a new image's manifest.
pub fn ensure(ctx: &Context, spec: &ImageSpec, options: &BuildOptions, reproduce: &str) -> Result<BuiltImage, ImageError> {
    let configured = configure(ctx, spec)?;
    let req = BuildRequest {
        configured,
        mode: spec.mode,
        jobs: options.jobs,
        reproduce: reproduce.to_string(),
        keep_objdir: options.keep_objdir,
        verify_hashes: options.verify_hashes,
    };
    Ok(build::run(ctx, &req)?)
}
