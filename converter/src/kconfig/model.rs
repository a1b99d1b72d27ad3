//! The data model of a loaded Kconfig tree.

use super::expr::Expr;
use serde::Serialize;
use std::fmt;

/// A place in the tree: file relative to the tree root, 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Location {
    pub file: String,
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// An expression kept both parsed and as written in the file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cond {
    pub text: String,
    #[serde(skip)]
    pub expr: Expr,
}

/// Where a dependency comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DepOrigin {
    /// The symbol's own `depends on`.
    DependsOn,
    /// An enclosing `if EXPR ... endif`.
    If,
    /// An enclosing `menu` with `depends on`.
    Menu,
    /// An enclosing `choice` with `depends on`.
    Choice,
}

/// One dependency of one definition of a symbol.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dep {
    pub cond: Cond,
    /// Where the expression is written (the `depends on`, `if` or menu line).
    pub location: Location,
    /// True for dependencies inherited from an enclosing block.
    pub inherited: bool,
    pub origin: DepOrigin,
    /// Index into [`Symbol::defined_at`] of the definition this belongs to.
    pub definition: usize,
}

impl Dep {
    /// The expression as written in the file.
    pub fn text(&self) -> &str {
        &self.cond.text
    }
}

/// A `select`/`imply` edge. In `Symbol::selected_by` `symbol` is the selector;
/// in `Symbol::selects` it is the target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Select {
    pub symbol: String,
    /// The `if EXPR` suffix, when present.
    pub cond: Option<Cond>,
    /// Where the `select` line is.
    pub location: Location,
}

/// A prompt (from `bool "text"`, `prompt "text"`, ...) with its own `if`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prompt {
    pub text: String,
    pub cond: Option<Cond>,
    pub location: Location,
    pub definition: usize,
}

/// A `default`/`def_bool`/`def_tristate` value with its `if`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DefaultValue {
    pub value: Cond,
    pub cond: Option<Cond>,
    pub location: Location,
    pub definition: usize,
}

/// A `range LOW HIGH [if EXPR]` for int/hex symbols.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Range {
    pub low: String,
    pub high: String,
    pub cond: Option<Cond>,
    pub location: Location,
}

/// The declared type of a symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SymbolKind {
    Bool,
    Tristate,
    Int,
    Hex,
    String,
    /// No type line seen (only referenced attributes in every definition).
    Unknown,
}

impl SymbolKind {
    pub fn is_boolish(self) -> bool {
        matches!(self, SymbolKind::Bool | SymbolKind::Tristate)
    }
}

/// One config symbol, merged over all places that define it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Symbol {
    pub name: String,
    pub kind: SymbolKind,
    /// True when any definition has a prompt (its `if` may still hide it).
    pub has_prompt: bool,
    /// True for `menuconfig` definitions.
    pub menuconfig: bool,
    /// Own and inherited dependencies of every definition.
    pub depends: Vec<Dep>,
    /// `visible if` conditions of enclosing menus (affect prompts only).
    pub visible_if: Vec<Dep>,
    pub prompts: Vec<Prompt>,
    pub defaults: Vec<DefaultValue>,
    pub ranges: Vec<Range>,
    /// Symbols that `select` this one.
    pub selected_by: Vec<Select>,
    /// Symbols that `imply` this one.
    pub implied_by: Vec<Select>,
    /// Symbols this one selects.
    pub selects: Vec<Select>,
    /// Symbols this one implies.
    pub implies: Vec<Select>,
    /// Every `config`/`menuconfig` line for this name.
    pub defined_at: Vec<Location>,
    /// Index into [`super::KconfigDb::choices`] when it is a choice member.
    pub choice: Option<usize>,
    pub help: Option<String>,
    /// Marked `transitional` (kept only to migrate old configs).
    pub transitional: bool,
}

impl Symbol {
    pub(crate) fn new(name: &str) -> Symbol {
        Symbol {
            name: name.to_string(),
            kind: SymbolKind::Unknown,
            has_prompt: false,
            menuconfig: false,
            depends: Vec::new(),
            visible_if: Vec::new(),
            prompts: Vec::new(),
            defaults: Vec::new(),
            ranges: Vec::new(),
            selected_by: Vec::new(),
            implied_by: Vec::new(),
            selects: Vec::new(),
            implies: Vec::new(),
            defined_at: Vec::new(),
            choice: None,
            help: None,
            transitional: false,
        }
    }

    /// The dependencies of one definition.
    pub fn depends_of(&self, definition: usize) -> impl Iterator<Item = &Dep> {
        self.depends
            .iter()
            .filter(move |d| d.definition == definition)
    }
}

/// A `choice ... endchoice` block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    pub location: Location,
    pub prompt: Option<String>,
    pub kind: SymbolKind,
    pub optional: bool,
    pub defaults: Vec<DefaultValue>,
    /// Own and inherited dependencies of the choice itself.
    pub depends: Vec<Dep>,
    /// Member symbols in file order.
    pub members: Vec<String>,
}
