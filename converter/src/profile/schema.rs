//! The on-disk form of a kconfig profile layer (`kconfig-profiles/*.toml`).
//!
//! ```toml
//! description = "what this profile is for"
//! inherits = ["minimal"]          # parent layers, resolved first
//! base = "tinyconfig"             # make target the config starts from
//! enable = ["PRINTK", "TTY"]      # =y
//! module = []                     # =m
//! disable = ["MODULES"]           # is not set
//! overrides = ["NR_CPUS"]         # options this layer means to change from a parent
//! [set]                           # int / hex / string values
//! NR_CPUS = 2
//! [[when]]                        # only for some kernel versions
//! kernel = ">=6.12"
//! enable = ["MITIGATION_PAGE_TABLE_ISOLATION"]
//! ```

use serde::Deserialize;
use std::collections::BTreeMap;

/// One TOML file: a layer of options, possibly inheriting other layers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    /// One line for `--help` and listings.
    #[serde(default)]
    pub description: String,
    /// Names of parent profiles.
    #[serde(default)]
    pub inherits: Vec<String>,
    /// The make target to start from (tinyconfig, allnoconfig, defconfig).
    pub base: Option<String>,
    /// Options this layer deliberately sets to a value different from a parent's.
    #[serde(default)]
    pub overrides: Vec<String>,
    /// Options for every kernel version.
    #[serde(flatten)]
    pub options: OptionBlock,
    /// Options for some kernel versions only.
    #[serde(default)]
    pub when: Vec<VersionBlock>,
}

/// Options to enable, build as modules, disable, or set to a value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionBlock {
    /// Options to set to y.
    #[serde(default)]
    pub enable: Vec<String>,
    /// Options to set to m.
    #[serde(default)]
    pub module: Vec<String>,
    /// Options to leave unset.
    #[serde(default)]
    pub disable: Vec<String>,
    /// Options with an int, hex or string value.
    #[serde(default)]
    pub set: BTreeMap<String, toml::Value>,
}

/// A block of options that applies when the kernel version matches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionBlock {
    /// A version requirement on the kernel series, e.g. ">=6.12", "<6.12", "6.1".
    pub kernel: String,
    /// The options.
    #[serde(flatten)]
    pub options: OptionBlock,
}
