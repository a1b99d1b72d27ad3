//! The patch engine: generated, anchored edits instead of stored diffs.
//!
//! A patch set (`patches/<set>/`, see [`spec`]) is planned against a tree
//! first: every group and edit is selected by kernel version, its content is
//! rendered with tera from [`facts::Facts`], and its anchor is looked up. Any
//! missing or ambiguous anchor stops everything before a single file is
//! written ([`Plan::problems`]). Applying a clean plan produces a patched
//! copy of the cached tree (hard links for untouched files, new files for
//! edited ones, so the cached original is never written) and the same
//! change as a quilt series of unified diffs.

pub mod apply;
pub mod dep3;
pub mod facts;
pub mod spec;

use crate::profile::{Series, VersionReq};
use serde::Serialize;
use spec::{Action, EditSpec, GroupFile, SeriesFile};
use std::collections::BTreeMap;
use std::path::Path;

/// Patch sets compiled into the binary, from `patches/`.
mod builtin {
    include!(concat!(env!("OUT_DIR"), "/patches.rs"));
}

/// Errors of the patch engine.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// No such patch set.
    #[error("no patch set named `{0}`")]
    UnknownSet(String),
    /// A set file is invalid.
    #[error("patches/{set}/{file}: {message}")]
    Invalid {
        /// Set.
        set: String,
        /// File.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// The plan has problems; nothing was written.
    #[error("patch set `{set}` cannot be applied to Linux {version}; nothing was written:\n{}", .problems.join("\n"))]
    NotApplicable {
        /// Set.
        set: String,
        /// Kernel version.
        version: String,
        /// One line per problem.
        problems: Vec<String>,
    },
}

/// A patch set's files: name -> text.
#[derive(Debug, Clone)]
pub struct PatchSet {
    /// Set name.
    pub name: String,
    /// series.toml parsed.
    pub series: SeriesFile,
    /// Groups in order, with their file stem.
    pub groups: Vec<(String, GroupFile)>,
}

impl PatchSet {
    /// Load a built-in set.
    pub fn builtin(name: &str) -> Result<PatchSet, PatchError> {
        let files: BTreeMap<&str, &str> =
            builtin::PATCH_FILES.iter().filter(|(s, _, _)| *s == name).map(|(_, f, t)| (*f, *t)).collect();
        if files.is_empty() {
            return Err(PatchError::UnknownSet(name.to_string()));
        }
        Self::from_files(name, &|f| files.get(f).map(|s| s.to_string()))
    }

    /// Load a set from a directory (`--patches-dir`).
    pub fn from_dir(dir: &Path) -> Result<PatchSet, PatchError> {
        let name = dir.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        Self::from_files(&name, &|f| std::fs::read_to_string(dir.join(f)).ok())
    }

    fn from_files(name: &str, read: &dyn Fn(&str) -> Option<String>) -> Result<PatchSet, PatchError> {
        let invalid = |file: &str, message: String| PatchError::Invalid { set: name.into(), file: file.into(), message };
        let text = read("series.toml").ok_or_else(|| invalid("series.toml", "missing".into()))?;
        let series: SeriesFile = toml::from_str(&text).map_err(|e| invalid("series.toml", e.to_string()))?;
        let mut groups = Vec::new();
        for g in &series.groups {
            let file = format!("{g}.toml");
            let text = read(&file).ok_or_else(|| invalid(&file, "listed in series.toml but missing".into()))?;
            let group: GroupFile = toml::from_str(&text).map_err(|e| invalid(&file, e.to_string()))?;
            for (i, e) in group.edits.iter().enumerate() {
                check_edit(e).map_err(|m| invalid(&file, format!("edit {}: {m}", i + 1)))?;
            }
            groups.push((g.clone(), group));
        }
        Ok(PatchSet { name: name.into(), series, groups })
    }

    /// Hash of the set's definition (for fingerprints of results built from it).
    pub fn definition_hash(&self) -> String {
        let mut text = format!("{:?}", self.series);
        for (n, g) in &self.groups {
            text.push_str(&format!("{n}{g:?}"));
        }
        build_farm::sha256_hex(text)
    }
}

/// Never trust a path: edits stay inside the tree.
fn check_edit(e: &EditSpec) -> Result<(), String> {
    let p = Path::new(&e.file);
    if e.file.is_empty() || p.is_absolute() || p.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
        return Err(format!("file `{}` must be a plain relative path inside the tree", e.file));
    }
    match (e.action, &e.anchor, &e.regex) {
        (Action::Create, None, None) => Ok(()),
        (Action::Create, _, _) => Err("`create` takes no anchor".into()),
        (_, Some(_), Some(_)) => Err("give `anchor` or `regex`, not both".into()),
        (_, None, None) => Err("needs an `anchor` or a `regex`".into()),
        (_, _, Some(r)) => regex::Regex::new(r).map(|_| ()).map_err(|e| format!("bad regex: {e}")),
        _ => Ok(()),
    }
}

/// Where an edit's anchor was found, or why not.
#[derive(Debug, Clone, Serialize)]
pub struct EditReport {
    /// Group file stem.
    pub group: String,
    /// 1-based edit number within the group.
    pub edit: usize,
    /// File it edits.
    pub file: String,
    /// Its action.
    pub action: Action,
    /// The anchor, shortened for display.
    pub anchor: String,
    /// 1-based line of the match when found.
    pub line: Option<usize>,
    /// The problem, when there is one.
    pub problem: Option<String>,
}

/// One group's result as a unified diff.
#[derive(Debug, Clone, Serialize)]
pub struct GroupPatch {
    /// File name in the series (`0001-kconfig.patch`).
    pub file_name: String,
    /// Subject.
    pub description: String,
    /// The group's longer explanation (`why`), trimmed.
    pub why: String,
    /// The patch text (header + diffs).
    pub text: String,
    /// Just the unified diffs, for headers in other formats ([`dep3`]).
    #[serde(skip)]
    pub diff: String,
}

/// A patch set planned against one tree.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Set name.
    pub set: String,
    /// Kernel version.
    pub version: String,
    /// Every selected edit, found or not.
    pub edits: Vec<EditReport>,
    /// Groups skipped for this version.
    pub skipped_groups: Vec<String>,
    /// New contents of every touched file (path -> text).
    #[serde(skip)]
    pub files: BTreeMap<String, String>,
    /// The quilt series.
    #[serde(skip)]
    pub patches: Vec<GroupPatch>,
}

impl Plan {
    /// Every problem, one line each (empty when the plan can be applied).
    pub fn problems(&self) -> Vec<String> {
        self.edits
            .iter()
            .filter_map(|e| e.problem.as_ref().map(|p| format!("  {} edit {} ({}): {p}", e.group, e.edit, e.file)))
            .collect()
    }

    /// Whether the tree can be converted.
    pub fn is_clean(&self) -> bool {
        self.edits.iter().all(|e| e.problem.is_none())
    }

    /// Hash of what the series does to the tree (every touched file's path
    /// and new content): the identity of the patched tree. Rewording a
    /// patch's description changes the series but not the kernel, and must
    /// not force a rebuild.
    pub fn content_hash(&self) -> String {
        let mut text = String::new();
        for (path, content) in &self.files {
            text.push_str(&format!("{path}\0{}\0{content}\0", content.len()));
        }
        build_farm::sha256_hex(text)
    }

    /// Hash of the rendered series text (recorded in manifests).
    pub fn series_hash(&self) -> String {
        build_farm::sha256_hex(self.patches.iter().map(|p| p.text.as_str()).collect::<Vec<_>>().join("\0"))
    }
}

fn applies(req: &Option<String>, series: Series) -> Result<bool, String> {
    match req {
        None => Ok(true),
        Some(r) => Ok(VersionReq::parse(r)?.matches(series)),
    }
}

fn short(s: &str) -> String {
    let one = s.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    let n = s.lines().count();
    if n > 1 {
        format!("{one} ... ({n} lines)")
    } else {
        one.to_string()
    }
}

/// Find the single match of an edit's anchor in `text`: Ok(byte range) or a problem.
fn locate(e: &EditSpec, text: &str) -> Result<(usize, usize), String> {
    let matches: Vec<(usize, usize)> = match (&e.anchor, &e.regex) {
        (Some(a), _) => text.match_indices(a.as_str()).map(|(i, m)| (i, i + m.len())).collect(),
        (_, Some(r)) => {
            let re = regex::RegexBuilder::new(r).multi_line(true).build().map_err(|e| e.to_string())?;
            re.find_iter(text).map(|m| (m.start(), m.end())).collect()
        }
        _ => return Err("no anchor".into()),
    };
    let line_of = |i: usize| text[..i].lines().count() + 1;
    match matches.len() {
        1 => Ok(matches[0]),
        0 => Err(format!("anchor not found: `{}`", short(e.anchor.as_ref().or(e.regex.as_ref()).map(String::as_str).unwrap_or("")))),
        n => Err(format!(
            "anchor `{}` is ambiguous: {n} matches, at lines {}",
            short(e.anchor.as_ref().or(e.regex.as_ref()).map(String::as_str).unwrap_or("")),
            matches.iter().map(|m| line_of(m.0).to_string()).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// Plan `set` against the tree at `root` (version `series`), reading files
/// through `read` (None when a file does not exist).
pub fn plan(set: &PatchSet, version: &str, series: Series, facts: &facts::Facts, read: &dyn Fn(&str) -> Option<String>) -> Plan {
    let ctx = facts.context();
    let mut current: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut plan = Plan { set: set.name.clone(), version: version.into(), edits: vec![], skipped_groups: vec![], files: BTreeMap::new(), patches: vec![] };
    let mut number = 0;
    for (gname, group) in &set.groups {
        match applies(&group.kernel, series) {
            Ok(true) => {}
            Ok(false) => {
                plan.skipped_groups.push(gname.clone());
                continue;
            }
            Err(m) => {
                plan.edits.push(EditReport { group: gname.clone(), edit: 0, file: String::new(), action: Action::Create, anchor: String::new(), line: None, problem: Some(m) });
                continue;
            }
        }
        let mut before: BTreeMap<String, Option<String>> = BTreeMap::new();
        for (i, e) in group.edits.iter().enumerate() {
            let mut report = EditReport {
                group: gname.clone(),
                edit: i + 1,
                file: e.file.clone(),
                action: e.action,
                anchor: short(e.anchor.as_ref().or(e.regex.as_ref()).map(String::as_str).unwrap_or("")),
                line: None,
                problem: None,
            };
            match applies(&e.kernel, series) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(m) => {
                    report.problem = Some(m);
                    plan.edits.push(report);
                    continue;
                }
            }
            let text = current.entry(e.file.clone()).or_insert_with(|| read(&e.file)).clone();
            before.entry(e.file.clone()).or_insert_with(|| text.clone());
            let content = match tera::Tera::one_off(&e.content, &ctx, false) {
                Ok(c) => c,
                Err(err) => {
                    let mut msg = err.to_string();
                    let mut src = std::error::Error::source(&err);
                    while let Some(s) = src {
                        msg.push_str(&format!(": {s}"));
                        src = s.source();
                    }
                    report.problem = Some(format!("template: {msg}"));
                    plan.edits.push(report);
                    continue;
                }
            };
            let result = match (e.action, text) {
                (Action::Create, None) => Ok(content),
                (Action::Create, Some(_)) => Err("file to create already exists".to_string()),
                (_, None) => Err("file does not exist in this tree".to_string()),
                (action, Some(t)) => locate(e, &t).map(|(s, end)| {
                    report.line = Some(t[..s].lines().count() + 1);
                    match action {
                        Action::InsertBefore => format!("{}{content}{}", &t[..s], &t[s..]),
                        Action::InsertAfter => format!("{}{content}{}", &t[..end], &t[end..]),
                        _ => format!("{}{content}{}", &t[..s], &t[end..]),
                    }
                }),
            };
            match result {
                Ok(new) => {
                    current.insert(e.file.clone(), Some(new));
                }
                Err(p) => report.problem = Some(p),
            }
            plan.edits.push(report);
        }
        if before.is_empty() {
            continue;
        }
        number += 1;
        let mut diff = String::new();
        for (file, old) in &before {
            let new = current.get(file).cloned().flatten().unwrap_or_default();
            diff.push_str(&apply::unified_diff(file, old.as_deref(), &new));
        }
        let text = format!("From: xc-convert\nSubject: [PATCH {number:02}] {}\n\n{}\n---\n{diff}", group.description, group.why.trim());
        plan.patches.push(GroupPatch {
            file_name: format!("{gname}.patch"),
            description: group.description.clone(),
            why: group.why.trim().to_string(),
            text,
            diff,
        });
    }
    plan.files = current.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect();
    plan
}

#[cfg(test)]
mod tests;
