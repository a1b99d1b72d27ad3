//! The on-disk form of a patch set (`patches/<set>/`).
//!
//! ```text
//! patches/libos/series.toml      description, and the groups in order
//! patches/libos/0001-kconfig.toml one group: a description and its edits
//! ```
//! An edit names a file, an anchor (exact text, or a regex) that must match
//! exactly once in that file as it stands when the edit runs, an action, and
//! content rendered by tera (see [`super::facts`] for what templates see).

use serde::Deserialize;

/// `series.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesFile {
    /// What the whole set does.
    pub description: String,
    /// Group file stems, in application order.
    pub groups: Vec<String>,
}

/// One group file: the unit of one patch in the generated quilt series.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupFile {
    /// The patch's subject line.
    pub description: String,
    /// Longer explanation, copied into the patch header.
    #[serde(default)]
    pub why: String,
    /// Kernel series this group applies to (all when absent).
    pub kernel: Option<String>,
    /// The edits, in order.
    #[serde(default, rename = "edit")]
    pub edits: Vec<EditSpec>,
}

/// What an edit does at its anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Put the content just before the anchor.
    InsertBefore,
    /// Put the content just after the anchor.
    InsertAfter,
    /// Replace the anchor with the content.
    Replace,
    /// Create a new file with the content (no anchor).
    Create,
}

/// One edit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditSpec {
    /// Path relative to the tree root.
    pub file: String,
    /// Kernel series this edit applies to (all when absent).
    pub kernel: Option<String>,
    /// Exact text that must occur exactly once.
    pub anchor: Option<String>,
    /// Or: a regex (multi-line mode) that must match exactly once.
    pub regex: Option<String>,
    /// What to do there.
    pub action: Action,
    /// Tera template of the text to insert or create.
    #[serde(default)]
    pub content: String,
}
