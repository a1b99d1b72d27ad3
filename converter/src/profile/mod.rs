//! Kconfig profiles: layered, version-aware option sets.
//!
//! A profile is a stack of TOML layers (`kconfig-profiles/*.toml`, see
//! [`schema`]). Resolving one for a kernel series walks its `inherits` chain,
//! keeps the `[[when]]` blocks that match, and produces one flat map of
//! option -> setting, each remembering the layer that asked for it (so an
//! option that does not survive `olddefconfig` can be blamed on a file).
//!
//! Two layers that set one option to different values are an error unless
//! the child lists the option in `overrides`: a silent last-writer-wins is
//! how a profile quietly loses a mitigation or a driver.

// ProfileError::Conflict carries both settings and layer names so the
// message can say exactly who disagrees; errors are rare, size is no concern.
#![allow(clippy::result_large_err)]

pub mod schema;
pub mod version_req;

use schema::{OptionBlock, ProfileFile};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
pub use version_req::{Series, VersionReq};

/// The profiles compiled into the binary, from `kconfig-profiles/`.
mod builtin {
    include!(concat!(env!("OUT_DIR"), "/profiles.rs"));
}

/// What a profile asks of one option.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Setting {
    /// `=y`
    Yes,
    /// `=m`
    Module,
    /// `is not set`
    No,
    /// An int, hex or string value, as written in the profile (unquoted).
    Value(String),
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Setting::Yes => f.write_str("y"),
            Setting::Module => f.write_str("m"),
            Setting::No => f.write_str("n"),
            Setting::Value(v) => f.write_str(v),
        }
    }
}

/// One option of a resolved profile and the layer that set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedOption {
    /// The requested setting.
    pub setting: Setting,
    /// The profile layer that asked for it.
    pub from: String,
}

/// A profile flattened for one kernel series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedProfile {
    /// The profile's name.
    pub name: String,
    /// The series it was resolved for.
    pub series: String,
    /// The make target the configuration starts from.
    pub base: String,
    /// Layers in resolution order (parents first).
    pub layers: Vec<String>,
    /// Option name (without `CONFIG_`) -> requested setting.
    pub options: BTreeMap<String, ResolvedOption>,
}

/// Errors while loading or resolving profiles.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// No profile of that name.
    #[error("no kconfig profile named `{name}`{hint}; available: {available}")]
    Unknown {
        /// The requested name.
        name: String,
        /// ", did you mean `x`?" or empty.
        hint: String,
        /// Comma-separated known names.
        available: String,
    },
    /// A profile file is not valid TOML or does not fit the schema.
    #[error("{origin}: {message}")]
    Invalid {
        /// The file.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// A layer inherits itself through some chain.
    #[error("profile inheritance cycle: {0}")]
    Cycle(String),
    /// Two layers disagree on an option.
    #[error("CONFIG_{option}: {first_layer} sets it to {first}, {second_layer} sets it to {second}{hint}")]
    Conflict {
        /// The option.
        option: String,
        /// Layer that set it first.
        first_layer: String,
        /// Its value there.
        first: Setting,
        /// Layer that set it again.
        second_layer: String,
        /// Its value there.
        second: Setting,
        /// How to resolve it.
        hint: String,
    },
    /// Reading a profile file or directory failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// The set of profiles a run can use, by name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// name -> (origin shown in errors, TOML text)
    entries: BTreeMap<String, (String, String)>,
}

impl Catalog {
    /// The profiles shipped inside the binary.
    pub fn builtin() -> Catalog {
        let mut c = Catalog::default();
        for (name, text) in builtin::PROFILES {
            c.entries.insert(name.to_string(), (format!("kconfig-profiles/{name}.toml"), text.to_string()));
        }
        c
    }

    /// Add (or replace) every `*.toml` of a directory.
    pub fn add_dir(&mut self, dir: &Path) -> Result<(), ProfileError> {
        let io = |source| ProfileError::Io { path: dir.to_path_buf(), source };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for p in paths {
            self.add_file(&p)?;
        }
        Ok(())
    }

    /// Add one file; its name is the file stem. Returns that name.
    pub fn add_file(&mut self, path: &Path) -> Result<String, ProfileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ProfileError::Io { path: path.to_path_buf(), source })?;
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        self.entries.insert(name.clone(), (path.display().to_string(), text));
        Ok(name)
    }

    /// Add a profile from text (tests, generated layers).
    pub fn add_text(&mut self, name: &str, text: &str) {
        self.entries.insert(name.to_string(), (format!("<{name}>"), text.to_string()));
    }

    /// Known profile names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    /// The one-line description of a profile, if it parses.
    pub fn description(&self, name: &str) -> Option<String> {
        self.parse(name).ok().map(|f| f.description)
    }

    /// Resolve `name` (a profile name, or a path to a .toml file that is
    /// added first) for a kernel series.
    pub fn resolve(&self, name: &str, series: Series) -> Result<ResolvedProfile, ProfileError> {
        let mut catalog = self.clone();
        let name = if name.ends_with(".toml") { catalog.add_file(Path::new(name))? } else { name.to_string() };
        let mut stack = Vec::new();
        let layered = catalog.resolve_layer(&name, series, &mut stack)?;
        Ok(ResolvedProfile {
            name,
            series: series.to_string(),
            base: layered.base.map(|(b, _)| b).unwrap_or_else(|| "tinyconfig".to_string()),
            layers: layered.layers,
            options: layered.options,
        })
    }

    /// Resolve `name`, then apply the own options of the mode layer `layer`
    /// (e.g. `libos`) on top, honouring that layer's `overrides`. The mode
    /// layer's own `inherits` only matter when it is used as a profile by
    /// itself. Stock and converted images of one profile thus differ by
    /// exactly the options the conversion forces.
    pub fn resolve_with_layer(&self, name: &str, series: Series, layer: &str) -> Result<ResolvedProfile, ProfileError> {
        let mut r = self.resolve(name, series)?;
        if r.layers.iter().any(|l| l == layer) {
            return Ok(r);
        }
        let file = self.parse(layer)?;
        let own = self.own_settings(layer, &file, series)?;
        let mut l = Layered { base: None, layers: r.layers.clone(), options: r.options.clone() };
        l.apply_child(layer, &file, own)?;
        r.layers = l.layers;
        r.options = l.options;
        Ok(r)
    }

    fn parse(&self, name: &str) -> Result<ProfileFile, ProfileError> {
        let (origin, text) = self.entries.get(name).ok_or_else(|| self.unknown(name))?;
        parse_profile(origin, text)
    }

    fn origin(&self, name: &str) -> String {
        self.entries.get(name).map(|(o, _)| o.clone()).unwrap_or_else(|| name.to_string())
    }

    fn unknown(&self, name: &str) -> ProfileError {
        let best = self
            .entries
            .keys()
            .map(|k| (strsim::jaro_winkler(k, name), k))
            .filter(|(s, _)| *s > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        ProfileError::Unknown {
            name: name.to_string(),
            hint: best.map(|(_, k)| format!(", did you mean `{k}`?")).unwrap_or_default(),
            available: self.names().join(", "),
        }
    }

    fn resolve_layer(&self, name: &str, series: Series, stack: &mut Vec<String>) -> Result<Layered, ProfileError> {
        if stack.iter().any(|s| s == name) {
            stack.push(name.to_string());
            return Err(ProfileError::Cycle(stack.join(" -> ")));
        }
        let file = self.parse(name)?;
        stack.push(name.to_string());
        let mut inherited = Layered::default();
        for parent in &file.inherits {
            let p = self.resolve_layer(parent, series, stack)?;
            inherited.merge_sibling(p, &file)?;
        }
        stack.pop();
        let own = self.own_settings(name, &file, series)?;
        inherited.apply_child(name, &file, own)?;
        Ok(inherited)
    }

    /// The options one layer sets for `series`, rejecting a layer that sets
    /// one option twice with different values.
    fn own_settings(&self, name: &str, file: &ProfileFile, series: Series) -> Result<BTreeMap<String, Setting>, ProfileError> {
        let origin = self.origin(name);
        let mut own = BTreeMap::new();
        add_block(&mut own, &file.options, name)?;
        for block in &file.when {
            let req = VersionReq::parse(&block.kernel)
                .map_err(|message| ProfileError::Invalid { origin: origin.clone(), message })?;
            if req.matches(series) {
                add_block(&mut own, &block.options, &format!("{name} [when kernel {req}]"))?;
            }
        }
        for o in &file.overrides {
            if !own.contains_key(&normalize(o)) && !file.when.iter().any(|w| block_names(&w.options).any(|n| n == normalize(o))) {
                return Err(ProfileError::Invalid {
                    origin,
                    message: format!("`overrides` lists {o}, but this layer does not set it"),
                });
            }
        }
        Ok(own.into_iter().map(|(k, (s, _))| (k, s)).collect())
    }
}

/// Parse one layer's TOML and check every `[set]` value (of every `[[when]]`
/// block too, whatever the kernel) can be written to `.config`: a value of
/// the wrong type would otherwise pass here and fail much later as an
/// option "lost" in olddefconfig.
pub fn parse_profile(origin: &str, text: &str) -> Result<ProfileFile, ProfileError> {
    let file: ProfileFile = toml::from_str(text).map_err(|e| ProfileError::Invalid { origin: origin.to_string(), message: e.to_string() })?;
    for block in std::iter::once(&file.options).chain(file.when.iter().map(|w| &w.options)) {
        // Names become `.config` lines: `"X=y\nCONFIG_Y"` must not inject one.
        let names = block.enable.iter().chain(&block.module).chain(&block.disable).chain(block.set.keys()).chain(&file.overrides);
        if let Some(bad) = names.map(|n| normalize(n)).find(|n| n.is_empty() || !n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')) {
            return Err(ProfileError::Invalid {
                origin: origin.to_string(),
                message: format!("{bad:?} is not a Kconfig option name (letters, digits and _ only)"),
            });
        }
        for (option, value) in &block.set {
            set_value_text(value).map_err(|why| ProfileError::Invalid {
                origin: origin.to_string(),
                message: format!("[set] {option}: {why}"),
            })?;
        }
    }
    Ok(file)
}

/// The `.config` text of a `[set]` value: strings, integers and booleans
/// (y/n) are Kconfig values; anything else is refused, with its TOML type.
fn set_value_text(value: &toml::Value) -> Result<String, String> {
    let wrong = |kind: &str| Err(format!("{kind} is not a Kconfig value (use an integer, a \"string\" or true/false)"));
    match value {
        toml::Value::String(s) if s.contains(['\n', '\r']) => Err("a string with a line break cannot be written to .config".into()),
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Boolean(true) => Ok("y".to_string()),
        toml::Value::Boolean(false) => Ok("n".to_string()),
        toml::Value::Float(_) => wrong("a float"),
        toml::Value::Array(_) => wrong("an array"),
        toml::Value::Table(_) => wrong("a table"),
        toml::Value::Datetime(_) => wrong("a date"),
    }
}

/// Strip an optional `CONFIG_` prefix: profiles may use either spelling.
pub fn normalize(option: &str) -> String {
    option.trim().strip_prefix("CONFIG_").unwrap_or(option.trim()).to_string()
}

fn block_names(block: &OptionBlock) -> impl Iterator<Item = String> + '_ {
    block
        .enable
        .iter()
        .chain(&block.module)
        .chain(&block.disable)
        .chain(block.set.keys())
        .map(|s| normalize(s))
}

fn add_block(own: &mut BTreeMap<String, (Setting, String)>, block: &OptionBlock, label: &str) -> Result<(), ProfileError> {
    let mut put = |opt: &str, setting: Setting| -> Result<(), ProfileError> {
        let opt = normalize(opt);
        if let Some((prev, prev_label)) = own.get(&opt) {
            if *prev != setting {
                return Err(ProfileError::Conflict {
                    option: opt,
                    first_layer: prev_label.clone(),
                    first: prev.clone(),
                    second_layer: label.to_string(),
                    second: setting,
                    hint: " (one layer must not ask for two values)".to_string(),
                });
            }
        }
        own.insert(opt, (setting, label.to_string()));
        Ok(())
    };
    for o in &block.enable {
        put(o, Setting::Yes)?;
    }
    for o in &block.module {
        put(o, Setting::Module)?;
    }
    for o in &block.disable {
        put(o, Setting::No)?;
    }
    for (o, v) in &block.set {
        // `parse_profile` refused every value without a text.
        let text = set_value_text(v).unwrap_or_default();
        let setting = match text.as_str() {
            "y" => Setting::Yes,
            "m" => Setting::Module,
            "n" => Setting::No,
            _ => Setting::Value(text),
        };
        put(o, setting)?;
    }
    Ok(())
}

/// Options accumulated from a chain of layers.
#[derive(Debug, Default)]
struct Layered {
    base: Option<(String, String)>,
    layers: Vec<String>,
    options: BTreeMap<String, ResolvedOption>,
}

impl Layered {
    /// Merge a parent into the set of parents of `child`. Parents that
    /// disagree are a conflict unless the child settles it in `overrides`.
    fn merge_sibling(&mut self, other: Layered, child: &ProfileFile) -> Result<(), ProfileError> {
        let settled = |opt: &str| child.overrides.iter().any(|o| normalize(o) == opt);
        for (opt, ro) in other.options {
            match self.options.get(&opt) {
                Some(mine) if mine.setting != ro.setting && !settled(&opt) => {
                    return Err(ProfileError::Conflict {
                        option: opt,
                        first_layer: mine.from.clone(),
                        first: mine.setting.clone(),
                        second_layer: ro.from,
                        second: ro.setting,
                        hint: " (both are inherited; set it in the child and list it in `overrides`)".to_string(),
                    })
                }
                _ => {
                    self.options.insert(opt, ro);
                }
            }
        }
        match (&self.base, other.base) {
            (Some((a, la)), Some((b, lb))) if *a != b && child.base.is_none() => {
                return Err(ProfileError::Invalid {
                    origin: lb.clone(),
                    message: format!("base `{b}` ({lb}) differs from base `{a}` ({la}); set `base` in the child"),
                })
            }
            (None, Some(b)) => self.base = Some(b),
            _ => {}
        }
        for l in other.layers {
            if !self.layers.contains(&l) {
                self.layers.push(l);
            }
        }
        Ok(())
    }

    /// Apply a child layer's own settings over its parents.
    fn apply_child(&mut self, name: &str, file: &ProfileFile, own: BTreeMap<String, Setting>) -> Result<(), ProfileError> {
        for (opt, setting) in own {
            if let Some(parent) = self.options.get(&opt) {
                let declared = file.overrides.iter().any(|o| normalize(o) == opt);
                if parent.setting != setting && !declared {
                    return Err(ProfileError::Conflict {
                        option: opt.clone(),
                        first_layer: parent.from.clone(),
                        first: parent.setting.clone(),
                        second_layer: name.to_string(),
                        second: setting,
                        hint: format!(" (if {name} means to change it, list {opt} in its `overrides`)"),
                    });
                }
            }
            self.options.insert(opt, ResolvedOption { setting, from: name.to_string() });
        }
        if let Some(b) = &file.base {
            self.base = Some((b.clone(), name.to_string()));
        }
        self.layers.push(name.to_string());
        Ok(())
    }
}

#[cfg(test)]
mod tests;
