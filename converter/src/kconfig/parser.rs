//! Loading a Kconfig tree into symbols.
//!
//! Kconfig is parsed statement by statement. Blocks (`if`, `menu`, `choice`)
//! live on a frame stack that spans `source`d files, because the kernel
//! routinely wraps `source` lines in `if`/`menu`; every `config` inherits the
//! dependencies of all open frames at the point it is defined.

use super::error::KconfigError;
use super::expr::parse_tokens;
use super::lexer::{tokenize, LineReader, Tok, Token};
use super::model::{
    Choice, Cond, DefaultValue, Dep, DepOrigin, Location, Prompt, Range, Select, Symbol, SymbolKind,
};
use super::paths::{expand_vars, glob, is_glob};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What the parser produced.
pub(crate) struct Loaded {
    pub symbols: HashMap<String, Symbol>,
    pub choices: Vec<Choice>,
    pub warnings: Vec<String>,
}

/// Kinds of open blocks.
#[derive(Debug, Clone, Copy, PartialEq)]
enum FrameKind {
    If,
    Menu,
    Choice(usize),
}

impl FrameKind {
    fn keyword(self) -> &'static str {
        match self {
            FrameKind::If => "if",
            FrameKind::Menu => "menu",
            FrameKind::Choice(_) => "choice",
        }
    }
}

/// An open block and the dependencies it imposes on its children.
struct Frame {
    kind: FrameKind,
    location: Location,
    deps: Vec<Dep>,
    visible: Vec<Dep>,
}

/// The entry that attribute lines currently attach to.
#[derive(Debug, Clone, PartialEq)]
enum Current {
    None,
    Config { name: String, def: usize },
    Choice(usize),
    Menu,
    Comment,
}

/// Whether a reverse edge comes from `select` or `imply`.
#[derive(Clone, Copy)]
enum EdgeKind {
    Select,
    Imply,
}

/// One logical line being interpreted.
struct Stmt<'a> {
    file: &'a str,
    line: usize,
    text: &'a str,
    tokens: &'a [Token],
}

impl Stmt<'_> {
    fn location(&self) -> Location {
        Location {
            file: self.file.to_string(),
            line: self.line,
        }
    }

    fn error(&self, message: impl Into<String>) -> KconfigError {
        KconfigError::Syntax {
            file: self.file.to_string(),
            line: self.line,
            message: message.into(),
        }
    }

    fn keyword(&self) -> &str {
        self.tokens
            .first()
            .and_then(|t| t.kind.word())
            .unwrap_or("")
    }

    /// Exact source text of a token range.
    fn span(&self, toks: &[Token]) -> String {
        match (toks.first(), toks.last()) {
            (Some(a), Some(b)) => self.text[a.start..b.end].to_string(),
            _ => String::new(),
        }
    }

    /// Parse tokens as an expression, keeping the written text.
    fn cond(&self, toks: &[Token]) -> Result<Cond, KconfigError> {
        let expr = parse_tokens(toks).map_err(|m| self.error(m))?;
        Ok(Cond {
            text: self.span(toks),
            expr,
        })
    }

    /// Split `ARGS [if COND]` at the first top-level `if`.
    fn split_if<'t>(&self, toks: &'t [Token]) -> Result<(&'t [Token], Option<Cond>), KconfigError> {
        let mut depth = 0i32;
        for (i, t) in toks.iter().enumerate() {
            match &t.kind {
                Tok::LParen => depth += 1,
                Tok::RParen => depth -= 1,
                Tok::Word(w) if w == "if" && depth == 0 => {
                    return Ok((&toks[..i], Some(self.cond(&toks[i + 1..])?)));
                }
                _ => {}
            }
        }
        Ok((toks, None))
    }
}

/// Parser state shared across all files of the tree.
pub(crate) struct Loader<'a> {
    tree: &'a Path,
    vars: HashMap<String, String>,
    frames: Vec<Frame>,
    current: Current,
    symbols: HashMap<String, Symbol>,
    choices: Vec<Choice>,
    edges: Vec<(String, Select, EdgeKind)>,
    warnings: Vec<String>,
    include_stack: Vec<PathBuf>,
}

impl<'a> Loader<'a> {
    pub fn new(tree: &'a Path, vars: HashMap<String, String>) -> Self {
        Loader {
            tree,
            vars,
            frames: Vec::new(),
            current: Current::None,
            symbols: HashMap::new(),
            choices: Vec::new(),
            edges: Vec::new(),
            warnings: Vec::new(),
            include_stack: Vec::new(),
        }
    }

    /// Parse from `<tree>/Kconfig` and resolve reverse edges.
    pub fn run(mut self) -> Result<Loaded, KconfigError> {
        let root = self.tree.join("Kconfig");
        self.load_file(&root)?;
        self.attach_edges();
        Ok(Loaded {
            symbols: self.symbols,
            choices: self.choices,
            warnings: self.warnings,
        })
    }

    /// Path relative to the tree root, for locations.
    fn relative(&self, path: &Path) -> String {
        path.strip_prefix(self.tree)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned()
    }

    /// Parse one file; blocks opened in it must be closed in it.
    fn load_file(&mut self, path: &Path) -> Result<(), KconfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| KconfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let rel = self.relative(path);
        let depth = self.frames.len();
        self.include_stack.push(path.to_path_buf());
        let mut reader = LineReader::new(&text);
        while let Some(line) = reader.next_line() {
            if is_variable_or_macro_line(&line.text) {
                self.record_variable(&line.text);
                continue;
            }
            let tokens = tokenize(&line.text).map_err(|message| KconfigError::Syntax {
                file: rel.clone(),
                line: line.number,
                message,
            })?;
            let stmt = Stmt {
                file: &rel,
                line: line.number,
                text: &line.text,
                tokens: &tokens,
            };
            if matches!(stmt.keyword(), "help" | "---help---") {
                let help = reader.take_help();
                self.set_help(help);
            } else if !tokens.is_empty() {
                self.statement(&stmt, depth)?;
            }
        }
        self.include_stack.pop();
        self.current = Current::None;
        self.check_closed(&rel, depth)
    }

    /// Report a block left open at the end of the file that opened it.
    fn check_closed(&self, rel: &str, depth: usize) -> Result<(), KconfigError> {
        match self.frames.get(depth) {
            None => Ok(()),
            Some(open) => Err(KconfigError::Syntax {
                file: rel.to_string(),
                line: open.location.line,
                message: format!("`{}` block is not closed in this file", open.kind.keyword()),
            }),
        }
    }

    /// Dispatch one statement; `depth` is the frame depth at file start.
    fn statement(&mut self, stmt: &Stmt, depth: usize) -> Result<(), KconfigError> {
        match stmt.keyword() {
            "config" => self.start_config(stmt, false),
            "menuconfig" => self.start_config(stmt, true),
            "choice" => self.start_choice(stmt),
            "menu" => self.start_menu(stmt),
            "if" => self.start_if(stmt),
            "endchoice" => self.end_block(stmt, depth, "choice"),
            "endmenu" => self.end_block(stmt, depth, "menu"),
            "endif" => self.end_block(stmt, depth, "if"),
            "comment" => {
                self.current = Current::Comment;
                Ok(())
            }
            "mainmenu" => {
                self.current = Current::None;
                Ok(())
            }
            "source" | "osource" | "rsource" | "orsource" => self.source(stmt),
            _ => self.attribute(stmt),
        }
    }

    /// Remember `NAME := value` / `NAME = value` for `source` path expansion.
    fn record_variable(&mut self, text: &str) {
        let Some((name, op, value)) = split_assignment(text) else {
            return;
        };
        let value = match op {
            ":=" => expand_vars(value, &self.vars).unwrap_or_else(|_| value.to_string()),
            _ => value.to_string(),
        };
        match op {
            "+=" => self
                .vars
                .entry(name.to_string())
                .or_default()
                .push_str(&format!(" {value}")),
            _ => {
                self.vars.insert(name.to_string(), value);
            }
        }
    }

    fn warn(&mut self, stmt: &Stmt, message: &str) {
        self.warnings
            .push(format!("{}: {message}", stmt.location()));
    }

    /// The symbol name following `config`, `select`, ...
    fn name_arg<'t>(&self, stmt: &'t Stmt) -> Result<&'t str, KconfigError> {
        stmt.tokens
            .get(1)
            .and_then(|t| t.kind.word())
            .ok_or_else(|| stmt.error(format!("`{}` needs a symbol name", stmt.keyword())))
    }

    /// Inherited copies of every open frame's dependencies.
    fn inherited(&self, definition: usize) -> (Vec<Dep>, Vec<Dep>) {
        let mark = |d: &Dep| Dep {
            inherited: true,
            definition,
            ..d.clone()
        };
        let deps = self
            .frames
            .iter()
            .flat_map(|f| f.deps.iter().map(mark))
            .collect();
        let visible = self
            .frames
            .iter()
            .flat_map(|f| f.visible.iter().map(mark))
            .collect();
        (deps, visible)
    }

    /// `config NAME` / `menuconfig NAME`: a new definition of NAME.
    fn start_config(&mut self, stmt: &Stmt, menuconfig: bool) -> Result<(), KconfigError> {
        let name = self.name_arg(stmt)?.to_string();
        let choice = self.frames.iter().rev().find_map(|f| match f.kind {
            FrameKind::Choice(idx) => Some(idx),
            _ => None,
        });
        let def = self.symbols.get(&name).map_or(0, |s| s.defined_at.len());
        let (deps, visible) = self.inherited(def);
        let sym = self
            .symbols
            .entry(name.clone())
            .or_insert_with(|| Symbol::new(&name));
        sym.defined_at.push(stmt.location());
        sym.depends.extend(deps);
        sym.visible_if.extend(visible);
        sym.menuconfig |= menuconfig;
        if let Some(idx) = choice {
            sym.choice = Some(idx);
            let members = &mut self.choices[idx].members;
            if !members.contains(&name) {
                members.push(name.clone());
            }
        }
        self.current = Current::Config { name, def };
        Ok(())
    }

    /// `choice`: opens a block whose members inherit its dependencies.
    fn start_choice(&mut self, stmt: &Stmt) -> Result<(), KconfigError> {
        let idx = self.choices.len();
        let (depends, _) = self.inherited(0);
        self.choices.push(Choice {
            location: stmt.location(),
            prompt: None,
            kind: SymbolKind::Unknown,
            optional: false,
            defaults: Vec::new(),
            depends,
            members: Vec::new(),
        });
        self.push_frame(stmt, FrameKind::Choice(idx), Vec::new());
        self.current = Current::Choice(idx);
        Ok(())
    }

    /// `menu "title"`: its `depends on` lines follow and apply to children.
    fn start_menu(&mut self, stmt: &Stmt) -> Result<(), KconfigError> {
        self.push_frame(stmt, FrameKind::Menu, Vec::new());
        self.current = Current::Menu;
        Ok(())
    }

    /// `if EXPR`: every entry up to `endif` depends on EXPR.
    fn start_if(&mut self, stmt: &Stmt) -> Result<(), KconfigError> {
        let cond = stmt.cond(&stmt.tokens[1..])?;
        let dep = Dep {
            cond,
            location: stmt.location(),
            inherited: true,
            origin: DepOrigin::If,
            definition: 0,
        };
        self.push_frame(stmt, FrameKind::If, vec![dep]);
        self.current = Current::None;
        Ok(())
    }

    fn push_frame(&mut self, stmt: &Stmt, kind: FrameKind, deps: Vec<Dep>) {
        self.frames.push(Frame {
            kind,
            location: stmt.location(),
            deps,
            visible: Vec::new(),
        });
    }

    /// `endif`/`endmenu`/`endchoice`: must close the innermost block of
    /// the same kind, opened in the same file.
    fn end_block(&mut self, stmt: &Stmt, depth: usize, keyword: &str) -> Result<(), KconfigError> {
        if self.frames.len() <= depth {
            return Err(stmt.error(format!("`{}` without matching `{keyword}`", stmt.keyword())));
        }
        let open = self
            .frames
            .pop()
            .ok_or_else(|| stmt.error("no open block"))?;
        if open.kind.keyword() != keyword {
            return Err(stmt.error(format!(
                "`{}` closes `{}` opened at {}",
                stmt.keyword(),
                open.kind.keyword(),
                open.location
            )));
        }
        self.current = Current::None;
        Ok(())
    }

    /// `source`/`osource`/`rsource`/`orsource PATH`.
    fn source(&mut self, stmt: &Stmt) -> Result<(), KconfigError> {
        self.current = Current::None;
        let raw = match stmt.tokens.get(1).map(|t| &t.kind) {
            Some(Tok::Str(s) | Tok::Word(s)) => s.clone(),
            _ => return Err(stmt.error("`source` needs a path")),
        };
        let path =
            expand_vars(&raw, &self.vars).map_err(|var| KconfigError::UnresolvedVariable {
                file: stmt.file.to_string(),
                line: stmt.line,
                var,
            })?;
        let keyword = stmt.keyword();
        let optional = keyword.starts_with('o');
        let base = match keyword.contains("rsource") {
            true => self
                .include_stack
                .last()
                .and_then(|p| p.parent())
                .unwrap_or(self.tree)
                .to_path_buf(),
            false => self.tree.to_path_buf(),
        };
        let files = resolve_source(&base, &path);
        if files.is_empty() && !optional {
            return Err(KconfigError::MissingSource {
                file: stmt.file.to_string(),
                line: stmt.line,
                path,
            });
        }
        for file in files {
            if self.include_stack.contains(&file) {
                return Err(KconfigError::SourceLoop {
                    file: stmt.file.to_string(),
                    line: stmt.line,
                    path,
                });
            }
            self.load_file(&file)?;
        }
        Ok(())
    }

    /// Attach help text to the current config symbol.
    fn set_help(&mut self, help: String) {
        if let Some(sym) = self.current_symbol() {
            sym.help = Some(match sym.help.take() {
                Some(old) if !old.is_empty() => format!("{old}\n\n{help}"),
                _ => help,
            });
        }
    }

    fn current_symbol(&mut self) -> Option<&mut Symbol> {
        match &self.current {
            Current::Config { name, .. } => self.symbols.get_mut(name),
            _ => None,
        }
    }

    /// Attribute lines inside an entry.
    fn attribute(&mut self, stmt: &Stmt) -> Result<(), KconfigError> {
        match stmt.keyword() {
            "bool" | "boolean" | "tristate" | "int" | "hex" | "string" => self.type_attr(stmt),
            "def_bool" | "def_tristate" => self.def_type_attr(stmt),
            "prompt" => self.prompt_attr(stmt, &stmt.tokens[1..]),
            "default" => self.default_attr(stmt, &stmt.tokens[1..]),
            "depends" => self.depends_attr(stmt),
            "select" => self.edge_attr(stmt, EdgeKind::Select),
            "imply" => self.edge_attr(stmt, EdgeKind::Imply),
            "range" => self.range_attr(stmt),
            "visible" => self.visible_attr(stmt),
            "optional" => {
                if let Current::Choice(idx) = self.current {
                    self.choices[idx].optional = true;
                }
                Ok(())
            }
            "transitional" => {
                if let Some(sym) = self.current_symbol() {
                    sym.transitional = true;
                }
                Ok(())
            }
            "option" | "modules" | "allnoconfig_y" | "defconfig_list" => Ok(()),
            other => {
                let message = format!("unknown keyword `{other}` ignored");
                self.warn(stmt, &message);
                Ok(())
            }
        }
    }

    fn set_kind(&mut self, kind: SymbolKind) {
        match self.current.clone() {
            Current::Config { name, .. } => {
                if let Some(sym) = self.symbols.get_mut(&name) {
                    if sym.kind == SymbolKind::Unknown {
                        sym.kind = kind;
                    }
                }
            }
            Current::Choice(idx) => self.choices[idx].kind = kind,
            _ => {}
        }
    }

    /// `bool ["prompt" [if COND]]` and friends.
    fn type_attr(&mut self, stmt: &Stmt) -> Result<(), KconfigError> {
        self.set_kind(kind_of(stmt.keyword()));
        match stmt.tokens.len() {
            1 => Ok(()),
            _ => self.prompt_attr(stmt, &stmt.tokens[1..]),
        }
    }

    /// `def_bool EXPR [if COND]`: a type plus a default.
    fn def_type_attr(&mut self, stmt: &Stmt) -> Result<(), KconfigError> {
        self.set_kind(kind_of(stmt.keyword()));
        self.default_attr(stmt, &stmt.tokens[1..])
    }

    /// `"text" [if COND]` after `prompt` or a type keyword.
    fn prompt_attr(&mut self, stmt: &Stmt, toks: &[Token]) -> Result<(), KconfigError> {
        let (args, cond) = stmt.split_if(toks)?;
        let text = match args {
            [Token {
                kind: Tok::Str(s), ..
            }] => s.clone(),
            _ => return Err(stmt.error("expected a quoted prompt")),
        };
        match self.current.clone() {
            Current::Config { name, def } => {
                if let Some(sym) = self.symbols.get_mut(&name) {
                    sym.has_prompt = true;
                    sym.prompts.push(Prompt {
                        text,
                        cond,
                        location: stmt.location(),
                        definition: def,
                    });
                }
            }
            Current::Choice(idx) => self.choices[idx].prompt = Some(text),
            _ => self.warn(stmt, "prompt outside a config or choice"),
        }
        Ok(())
    }

    /// `default EXPR [if COND]`.
    fn default_attr(&mut self, stmt: &Stmt, toks: &[Token]) -> Result<(), KconfigError> {
        let (args, cond) = stmt.split_if(toks)?;
        let value = stmt.cond(args)?;
        let location = stmt.location();
        match self.current.clone() {
            Current::Config { name, def } => {
                if let Some(sym) = self.symbols.get_mut(&name) {
                    sym.defaults.push(DefaultValue {
                        value,
                        cond,
                        location,
                        definition: def,
                    });
                }
            }
            Current::Choice(idx) => {
                self.choices[idx].defaults.push(DefaultValue {
                    value,
                    cond,
                    location,
                    definition: 0,
                });
            }
            _ => self.warn(stmt, "default outside a config or choice"),
        }
        Ok(())
    }

    /// `depends on EXPR`: own dependency of a config, or inherited one of a
    /// menu/choice's children.
    fn depends_attr(&mut self, stmt: &Stmt) -> Result<(), KconfigError> {
        let skip = match stmt.tokens.get(1).and_then(|t| t.kind.word()) {
            Some("on") => 2,
            _ => 1,
        };
        let cond = stmt.cond(&stmt.tokens[skip..])?;
        let location = stmt.location();
        match self.current.clone() {
            Current::Config { name, def } => {
                let dep = Dep {
                    cond,
                    location,
                    inherited: false,
                    origin: DepOrigin::DependsOn,
                    definition: def,
                };
                if let Some(sym) = self.symbols.get_mut(&name) {
                    sym.depends.push(dep);
                }
            }
            Current::Choice(idx) => {
                let dep = Dep {
                    cond,
                    location,
                    inherited: false,
                    origin: DepOrigin::Choice,
                    definition: 0,
                };
                self.choices[idx].depends.push(dep.clone());
                self.push_block_dep(FrameKind::Choice(idx), dep);
            }
            Current::Menu => {
                let dep = Dep {
                    cond,
                    location,
                    inherited: true,
                    origin: DepOrigin::Menu,
                    definition: 0,
                };
                self.push_block_dep(FrameKind::Menu, dep);
            }
            Current::Comment => {}
            Current::None => self.warn(stmt, "`depends on` outside an entry"),
        }
        Ok(())
    }

    fn push_block_dep(&mut self, kind: FrameKind, dep: Dep) {
        if let Some(frame) = self.frames.iter_mut().rev().find(|f| f.kind == kind) {
            frame.deps.push(Dep {
                inherited: true,
                ..dep
            });
        }
    }

    /// `visible if EXPR` on a menu: hides prompts of children.
    fn visible_attr(&mut self, stmt: &Stmt) -> Result<(), KconfigError> {
        let toks = match stmt.tokens.get(1).and_then(|t| t.kind.word()) {
            Some("if") => &stmt.tokens[2..],
            _ => return Err(stmt.error("expected `visible if EXPR`")),
        };
        let cond = stmt.cond(toks)?;
        let dep = Dep {
            cond,
            location: stmt.location(),
            inherited: true,
            origin: DepOrigin::Menu,
            definition: 0,
        };
        match (&self.current, self.frames.last_mut()) {
            (Current::Menu, Some(frame)) => frame.visible.push(dep),
            _ => self.warn(stmt, "`visible if` outside a menu"),
        }
        Ok(())
    }

    /// `select SYM [if COND]` / `imply SYM [if COND]`.
    fn edge_attr(&mut self, stmt: &Stmt, kind: EdgeKind) -> Result<(), KconfigError> {
        let target = self.name_arg(stmt)?.to_string();
        let (_, cond) = stmt.split_if(&stmt.tokens[2..])?;
        let location = stmt.location();
        let Current::Config { name, .. } = self.current.clone() else {
            self.warn(stmt, "select/imply outside a config");
            return Ok(());
        };
        let forward = Select {
            symbol: target.clone(),
            cond: cond.clone(),
            location: location.clone(),
        };
        if let Some(sym) = self.symbols.get_mut(&name) {
            match kind {
                EdgeKind::Select => sym.selects.push(forward),
                EdgeKind::Imply => sym.implies.push(forward),
            }
        }
        self.edges.push((
            target,
            Select {
                symbol: name,
                cond,
                location,
            },
            kind,
        ));
        Ok(())
    }

    /// `range LOW HIGH [if COND]`.
    fn range_attr(&mut self, stmt: &Stmt) -> Result<(), KconfigError> {
        let (args, cond) = stmt.split_if(&stmt.tokens[1..])?;
        let [low, high] = args else {
            return Err(stmt.error("`range` needs two bounds"));
        };
        let bound = |t: &Token| match &t.kind {
            Tok::Str(s) | Tok::Word(s) => Some(s.clone()),
            _ => None,
        };
        let (Some(low), Some(high)) = (bound(low), bound(high)) else {
            return Err(stmt.error("bad `range` bounds"));
        };
        let location = stmt.location();
        if let Some(sym) = self.current_symbol() {
            sym.ranges.push(Range {
                low,
                high,
                cond,
                location,
            });
        }
        Ok(())
    }

    /// Turn collected select/imply edges into reverse dependencies.
    fn attach_edges(&mut self) {
        for (target, edge, kind) in std::mem::take(&mut self.edges) {
            let Some(sym) = self.symbols.get_mut(&target) else {
                self.warnings.push(format!(
                    "{}: {} selects undefined symbol {target}",
                    edge.location, edge.symbol
                ));
                continue;
            };
            match kind {
                EdgeKind::Select => sym.selected_by.push(edge),
                EdgeKind::Imply => sym.implied_by.push(edge),
            }
        }
    }
}

/// Symbol kind named by a type keyword.
fn kind_of(keyword: &str) -> SymbolKind {
    match keyword {
        "bool" | "boolean" | "def_bool" => SymbolKind::Bool,
        "tristate" | "def_tristate" => SymbolKind::Tristate,
        "int" => SymbolKind::Int,
        "hex" => SymbolKind::Hex,
        "string" => SymbolKind::String,
        _ => SymbolKind::Unknown,
    }
}

/// Files a source path names: a glob's matches or the single existing file.
fn resolve_source(base: &Path, path: &str) -> Vec<PathBuf> {
    if is_glob(path) {
        return glob(base, path);
    }
    let full = base.join(path);
    if full.is_file() {
        vec![full]
    } else {
        Vec::new()
    }
}

/// Lines that are macro-language, not menu statements: `NAME := value`,
/// `NAME = value`, `NAME += value`, or a bare `$(call,...)`.
fn is_variable_or_macro_line(text: &str) -> bool {
    text.trim_start().starts_with("$(") || split_assignment(text).is_some()
}

/// Split `NAME op value` where op is `:=`, `+=` or `=`.
fn split_assignment(text: &str) -> Option<(&str, &str, &str)> {
    let text = text.trim();
    let end = text.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))?;
    let (name, rest) = text.split_at(end);
    let rest = rest.trim_start();
    let op = [":=", "+=", "="]
        .into_iter()
        .find(|op| rest.starts_with(op))?;
    (!name.is_empty()).then(|| (name, op, rest[op.len()..].trim()))
}
