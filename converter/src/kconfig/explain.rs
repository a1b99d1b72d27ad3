//! Explaining why a requested option did not end up as requested.
//!
//! The checks mirror how kconfig computes a value: a symbol can only be
//! raised as far as its dependencies allow, a user value only sticks when a
//! prompt is visible, `select` forces a floor, choices allow one member,
//! and int/hex values must fall inside the active `range`.

use super::dotconfig::{unquote, DotConfig};
use super::expr::{parse_number, Leaf, Tristate, Values};
use super::model::{Dep, Select, Symbol, SymbolKind};
use super::KconfigDb;
use serde::Serialize;

/// What the user asked for an option.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Requested {
    Yes,
    Module,
    No,
    /// A value for int/hex/string options (quotes optional for strings).
    Value(String),
}

impl Requested {
    /// Interpret a `.config`-style value: y/m/n map to the tristate variants.
    pub fn from_value(value: &str) -> Requested {
        match value.trim() {
            "y" => Requested::Yes,
            "m" => Requested::Module,
            "n" => Requested::No,
            other => Requested::Value(other.to_string()),
        }
    }
}

/// The category of an explanation, for callers that act on it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Reason {
    /// The option ended up as requested.
    Satisfied,
    /// No Kconfig defines the name for this architecture.
    Undefined { suggestion: Option<String> },
    /// `m` requested for a bool option.
    NotModular,
    /// `m` requested while CONFIG_MODULES is off.
    ModulesDisabled,
    /// Some `depends on` (own or inherited) is not met.
    UnmetDependencies,
    /// No prompt at all: only `select` or a default can set it.
    NoPrompt { selectors: Vec<String> },
    /// It has a prompt, but the prompt's `if` or a menu's `visible if` is false.
    HiddenPrompt,
    /// Another member of its choice was chosen.
    ChoiceOther { chosen: Option<String> },
    /// Forced on by `select` from these symbols.
    Selected { by: Vec<String> },
    /// A non-optional choice must have a member set, and this is it.
    ChoiceRequired,
    /// Turned on by a default and it has no visible prompt to turn it off.
    DefaultNoPrompt { default: String },
    /// The requested value falls outside the active `range`.
    RangeRejected { low: String, high: String },
    /// Nothing in Kconfig explains it (e.g. overridden later in the fragment).
    Unexplained,
}

/// Why an option ended up as it did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The option name without `CONFIG_`.
    pub option: String,
    /// One human sentence naming file:line and the offending expression.
    pub summary: String,
    /// Symbols responsible, with their current values.
    pub unmet: Vec<(String, String)>,
    /// file:line most relevant to the explanation (usually the definition).
    pub location: Option<String>,
    pub reason: Reason,
}

/// Symbol values as kconfig sees them: `.config` values, else n for
/// bool/tristate, "" for int/hex/string, and its own name for undefined
/// symbols (kconfig treats those as constants).
struct DbValues<'a> {
    db: &'a KconfigDb,
    config: &'a DotConfig,
}

impl Values for DbValues<'_> {
    fn value(&self, name: &str) -> String {
        if let Some(v) = self.config.get(name) {
            return unquote(v);
        }
        match self.db.symbol(name).map(|s| s.kind) {
            Some(SymbolKind::Int | SymbolKind::Hex | SymbolKind::String) => String::new(),
            Some(_) => "n".to_string(),
            None => name.to_string(),
        }
    }
}

/// Everything the individual checks need.
struct Ctx<'a> {
    db: &'a KconfigDb,
    sym: &'a Symbol,
    values: DbValues<'a>,
    actual: Option<&'a str>,
}

impl Ctx<'_> {
    fn name(&self) -> &str {
        &self.sym.name
    }

    fn value_of(&self, name: &str) -> String {
        let v = self.values.value(name);
        match self.db.contains(name) {
            true if v.is_empty() => "(unset)".to_string(),
            true => v,
            false => "n (undefined)".to_string(),
        }
    }

    fn actual_display(&self) -> String {
        self.actual
            .map_or("not set".to_string(), |v| format!("={v}"))
    }

    fn definition(&self, def: usize) -> String {
        self.sym
            .defined_at
            .get(def)
            .map_or_else(|| "?".to_string(), |l| l.to_string())
    }

    fn explanation(
        &self,
        summary: String,
        unmet: Vec<(String, String)>,
        reason: Reason,
    ) -> Explanation {
        Explanation {
            option: self.name().to_string(),
            summary,
            unmet,
            location: self.sym.defined_at.first().map(|l| l.to_string()),
            reason,
        }
    }

    /// Leaves of `dep` that keep it below `need`, with display values.
    fn dep_leaves(&self, dep: &Dep, need: Tristate) -> Vec<(String, String)> {
        let leaves = dep.cond.expr.blame(need, &self.values);
        leaves
            .into_iter()
            .map(|Leaf { name, value }| self.fix_leaf(name, value))
            .collect()
    }

    /// Undefined symbols evaluate to their own name (show them as n);
    /// unset int/hex/string symbols evaluate to "" (show "(unset)").
    fn fix_leaf(&self, name: String, value: String) -> (String, String) {
        match (self.db.contains(&name), value.as_str()) {
            (false, v) if v == name => (name, "n (undefined)".to_string()),
            (true, "\"\"") => (name, "(unset)".to_string()),
            _ => (name, value),
        }
    }

    /// Numeric value of a range bound: a literal, the symbol's `.config`
    /// value, or else its first active literal default (range bounds such as
    /// NR_CPUS_RANGE_END are promptless helpers often absent from fragments).
    fn number(&self, text: &str) -> Option<i128> {
        let kind = self.sym.kind;
        if let Some(n) =
            number_for(kind, text).or_else(|| number_for(kind, &self.values.value(text)))
        {
            return Some(n);
        }
        let helper = self.db.symbol(text)?;
        let sub = Ctx {
            db: self.db,
            sym: helper,
            values: DbValues {
                db: self.db,
                config: self.values.config,
            },
            actual: None,
        };
        active_default(&sub).and_then(|(value, _)| number_for(kind, &value))
    }

    fn dep_ok(&self, dep: &Dep, need: Tristate) -> bool {
        dep.cond.expr.eval(&self.values) >= need
    }

    /// Failing deps of each definition; empty inner vec = that definition is fine.
    fn failing_deps(&self, need: Tristate) -> Vec<Vec<&Dep>> {
        (0..self.sym.defined_at.len().max(1))
            .map(|def| {
                self.sym
                    .depends_of(def)
                    .filter(|d| !self.dep_ok(d, need))
                    .collect()
            })
            .collect()
    }

    /// True when some prompt of a definition with met deps is shown.
    fn prompt_visible(&self) -> bool {
        self.sym.prompts.iter().any(|p| {
            let def_ok = self
                .sym
                .depends_of(p.definition)
                .all(|d| self.dep_ok(d, Tristate::M));
            let cond_ok = p
                .cond
                .as_ref()
                .is_none_or(|c| c.expr.eval(&self.values) > Tristate::N);
            let menu_ok = self
                .sym
                .visible_if
                .iter()
                .filter(|v| v.definition == p.definition)
                .all(|v| self.dep_ok(v, Tristate::M));
            def_ok && cond_ok && menu_ok
        })
    }

    /// Selectors that currently force this symbol on.
    fn active_selectors(&self) -> Vec<&Select> {
        self.sym
            .selected_by
            .iter()
            .filter(|s| Tristate::from_value(&self.values.value(&s.symbol)) > Tristate::N)
            .filter(|s| {
                s.cond
                    .as_ref()
                    .is_none_or(|c| c.expr.eval(&self.values) > Tristate::N)
            })
            .collect()
    }
}

/// Entry point behind [`KconfigDb::explain`].
pub(crate) fn explain(
    db: &KconfigDb,
    name: &str,
    wanted: &Requested,
    config: &DotConfig,
) -> Explanation {
    let Some(sym) = db.symbol(name) else {
        return undefined(db, name);
    };
    let ctx = Ctx {
        db,
        sym,
        values: DbValues { db, config },
        actual: config.get(name),
    };
    let wanted = normalize(wanted, sym.kind);
    if satisfied(&wanted, ctx.actual, sym.kind) {
        let summary = format!("CONFIG_{name} is {} as requested", ctx.actual_display());
        return ctx.explanation(summary, Vec::new(), Reason::Satisfied);
    }
    match wanted {
        Requested::Yes => explain_missing(&ctx, Tristate::Y),
        Requested::Module => explain_missing(&ctx, Tristate::M),
        Requested::No => explain_forced(&ctx),
        Requested::Value(v) => explain_value(&ctx, &v),
    }
}

/// y/m/n given as `Value` for a bool/tristate mean the tristate request.
fn normalize(wanted: &Requested, kind: SymbolKind) -> Requested {
    match wanted {
        Requested::Value(v) if kind.is_boolish() || matches!(v.as_str(), "y" | "m" | "n") => {
            Requested::from_value(v)
        }
        other => other.clone(),
    }
}

fn satisfied(wanted: &Requested, actual: Option<&str>, kind: SymbolKind) -> bool {
    match (wanted, actual) {
        (Requested::Yes, Some("y")) | (Requested::Module, Some("m")) => true,
        (Requested::No, None | Some("n")) => true,
        (Requested::Value(v), Some(a)) => same_value(v, a, kind),
        _ => false,
    }
}

/// Compare values the way they would be written: hex case-insensitively,
/// numbers numerically, strings without quotes.
fn same_value(wanted: &str, actual: &str, kind: SymbolKind) -> bool {
    match kind {
        SymbolKind::Int | SymbolKind::Hex => {
            let parse = |s: &str| number_for(kind, s);
            matches!((parse(wanted), parse(actual)), (Some(a), Some(b)) if a == b)
        }
        _ => unquote(wanted) == unquote(actual),
    }
}

/// Parse a value as kconfig would for this kind (hex may lack `0x`).
fn number_for(kind: SymbolKind, s: &str) -> Option<i128> {
    let s = unquote(s.trim());
    match kind {
        SymbolKind::Hex => parse_number(&s).or_else(|| i128::from_str_radix(&s, 16).ok()),
        _ => parse_number(&s),
    }
}

fn undefined(db: &KconfigDb, name: &str) -> Explanation {
    let suggestion = db.suggest(name);
    let hint = suggestion
        .as_ref()
        .map_or(String::new(), |s| format!("; did you mean CONFIG_{s}?"));
    Explanation {
        option: name.to_string(),
        summary: format!(
            "CONFIG_{name} is not defined by any Kconfig file for SRCARCH={}{hint}",
            db.srcarch()
        ),
        unmet: Vec::new(),
        location: None,
        reason: Reason::Undefined { suggestion },
    }
}

/// y or m was requested but the option is lower.
fn explain_missing(ctx: &Ctx, need: Tristate) -> Explanation {
    if need == Tristate::M && ctx.sym.kind == SymbolKind::Bool {
        let summary = format!(
            "CONFIG_{} ({}) is bool, so it cannot be built as a module; it is {}",
            ctx.name(),
            ctx.definition(0),
            ctx.actual_display()
        );
        return ctx.explanation(summary, Vec::new(), Reason::NotModular);
    }
    if need == Tristate::M && ctx.db.contains("MODULES") && ctx.values.value("MODULES") != "y" {
        let summary = format!(
            "CONFIG_{} cannot be m because CONFIG_MODULES is not enabled",
            ctx.name()
        );
        return ctx.explanation(
            summary,
            vec![("MODULES".into(), ctx.value_of("MODULES"))],
            Reason::ModulesDisabled,
        );
    }
    // A bool whose dependencies are m can still be y (kconfig promotes it).
    let dep_need = if ctx.sym.kind == SymbolKind::Bool {
        Tristate::M
    } else {
        need
    };
    unmet_dependencies(ctx, dep_need)
        .or_else(|| hidden(ctx))
        .or_else(|| choice_other(ctx))
        .unwrap_or_else(|| unexplained(ctx))
}

/// Explain unmet `depends on`, when every definition has one.
fn unmet_dependencies(ctx: &Ctx, need: Tristate) -> Option<Explanation> {
    let failing = ctx.failing_deps(need);
    if failing.iter().any(|f| f.is_empty()) {
        return None;
    }
    let (def, deps) = failing.iter().enumerate().next()?;
    let mut unmet = Vec::new();
    let mut parts = Vec::new();
    for dep in deps {
        let leaves = ctx.dep_leaves(dep, need);
        parts.push(describe_dep(dep));
        unmet.extend(leaves);
    }
    dedup(&mut unmet);
    let limit = if need == Tristate::Y {
        " (y needs them all y)"
    } else {
        ""
    };
    let summary = format!(
        "CONFIG_{} ({}) {}; unmet{limit}: {}",
        ctx.name(),
        ctx.definition(def),
        parts.join("; and "),
        join_values(&unmet)
    );
    let mut explanation = ctx.explanation(summary, unmet, Reason::UnmetDependencies);
    explanation.location = Some(ctx.definition(def));
    Some(explanation)
}

/// Remove repeated entries, keeping first occurrences in order.
fn dedup(pairs: &mut Vec<(String, String)>) {
    let mut seen = std::collections::HashSet::new();
    pairs.retain(|p| seen.insert(p.clone()));
}

/// "depends on `X`" or "is inside `if X` (file:line)".
fn describe_dep(dep: &Dep) -> String {
    use super::model::DepOrigin::*;
    let text = &dep.cond.text;
    match dep.origin {
        DependsOn => format!("depends on `{text}` ({})", dep.location),
        If => format!("is inside `if {text}` ({})", dep.location),
        Menu => format!("is in a menu that depends on `{text}` ({})", dep.location),
        Choice => format!("is in a choice that depends on `{text}` ({})", dep.location),
    }
}

/// "A=n, B=m".
fn join_values(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Explain an invisible prompt: none at all, or hidden by its `if`.
fn hidden(ctx: &Ctx) -> Option<Explanation> {
    if ctx.prompt_visible() {
        return None;
    }
    let selectors: Vec<String> = ctx
        .sym
        .selected_by
        .iter()
        .map(|s| s.symbol.clone())
        .collect();
    let unmet: Vec<(String, String)> = selectors
        .iter()
        .map(|s| (s.clone(), ctx.value_of(s)))
        .collect();
    let via = describe_selectors(ctx, &ctx.sym.selected_by);
    if !ctx.sym.has_prompt {
        let summary = match via.is_empty() {
            true => format!(
                "CONFIG_{} ({}) has no prompt and nothing selects it; only its default can set it{}",
                ctx.name(),
                ctx.definition(0),
                active_default(ctx).map_or(String::new(), |(text, loc)| format!(" (`default {text}` at {loc})"))
            ),
            false => format!(
                "CONFIG_{} ({}) has no prompt; only set by `select` from {via}",
                ctx.name(),
                ctx.definition(0)
            ),
        };
        return Some(ctx.explanation(summary, unmet, Reason::NoPrompt { selectors }));
    }
    Some(hidden_prompt(ctx, &via))
}

/// The prompt exists but its `if` (or a menu's `visible if`) is false.
fn hidden_prompt(ctx: &Ctx, via: &str) -> Explanation {
    let mut unmet = Vec::new();
    let mut conds = Vec::new();
    for prompt in &ctx.sym.prompts {
        if let Some(cond) = &prompt.cond {
            let dep = Dep {
                cond: cond.clone(),
                location: prompt.location.clone(),
                inherited: false,
                origin: super::model::DepOrigin::DependsOn,
                definition: prompt.definition,
            };
            unmet.extend(ctx.dep_leaves(&dep, Tristate::M));
            conds.push(format!("`if {}` ({})", cond.text, prompt.location));
        }
    }
    for vis in &ctx.sym.visible_if {
        unmet.extend(ctx.dep_leaves(vis, Tristate::M));
        conds.push(format!(
            "menu `visible if {}` ({})",
            vis.cond.text, vis.location
        ));
    }
    let also = if via.is_empty() {
        String::new()
    } else {
        format!("; it can still be selected by {via}")
    };
    let summary = format!(
        "CONFIG_{} ({}) has a prompt, but it is hidden by {} ({}){also}",
        ctx.name(),
        ctx.definition(0),
        conds.join(" and "),
        join_values(&unmet)
    );
    ctx.explanation(summary, unmet, Reason::HiddenPrompt)
}

/// "A (file:line) [=n], B (file:line) [=y]".
fn describe_selectors(ctx: &Ctx, selects: &[Select]) -> String {
    selects
        .iter()
        .map(|s| {
            let cond = s
                .cond
                .as_ref()
                .map_or(String::new(), |c| format!(" if `{}`", c.text));
            format!(
                "{} ({}){cond} [={}]",
                s.symbol,
                s.location,
                ctx.value_of(&s.symbol)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Another member of the same choice was chosen.
fn choice_other(ctx: &Ctx) -> Option<Explanation> {
    let choice = ctx.db.choices().get(ctx.sym.choice?)?;
    let chosen = choice
        .members
        .iter()
        .find(|m| m.as_str() != ctx.name() && ctx.values.value(m) == "y")
        .cloned();
    let who = chosen
        .as_ref()
        .map_or("no other member".to_string(), |c| format!("CONFIG_{c}"));
    let summary = format!(
        "CONFIG_{} is a member of the choice at {}; only one member can be y and {who} was chosen",
        ctx.name(),
        choice.location
    );
    let unmet = chosen
        .iter()
        .map(|c| (c.clone(), "y".to_string()))
        .collect();
    Some(ctx.explanation(summary, unmet, Reason::ChoiceOther { chosen }))
}

fn unexplained(ctx: &Ctx) -> Explanation {
    let summary = format!(
        "CONFIG_{} ({}) has its dependencies met and a visible prompt, yet it is {}; \
         a later assignment may have overridden the request",
        ctx.name(),
        ctx.definition(0),
        ctx.actual_display()
    );
    ctx.explanation(summary, Vec::new(), Reason::Unexplained)
}

/// n was requested but the option is y or m.
fn explain_forced(ctx: &Ctx) -> Explanation {
    let active = ctx.active_selectors();
    if !active.is_empty() {
        let by: Vec<String> = active.iter().map(|s| s.symbol.clone()).collect();
        let unmet = by.iter().map(|s| (s.clone(), ctx.value_of(s))).collect();
        let list: Vec<String> = active
            .iter()
            .map(|s| {
                format!(
                    "{} (={}) at {}",
                    s.symbol,
                    ctx.value_of(&s.symbol),
                    s.location
                )
            })
            .collect();
        let summary = format!(
            "CONFIG_{} is {}: selected by {}",
            ctx.name(),
            ctx.actual_display(),
            list.join(", ")
        );
        return ctx.explanation(summary, unmet, Reason::Selected { by });
    }
    if let Some(explanation) = choice_required(ctx) {
        return explanation;
    }
    if !ctx.prompt_visible() {
        if let Some(default) = active_default(ctx) {
            let prompt = if ctx.sym.has_prompt {
                "a hidden prompt"
            } else {
                "no prompt"
            };
            let summary = format!(
                "CONFIG_{} is {}: default {} with {prompt} ({}), so it cannot be switched off",
                ctx.name(),
                ctx.actual_display(),
                default.0,
                default.1
            );
            return ctx.explanation(
                summary,
                Vec::new(),
                Reason::DefaultNoPrompt { default: default.0 },
            );
        }
    }
    unexplained(ctx)
}

/// The first default whose definition and condition are active: (text, file:line).
fn active_default(ctx: &Ctx) -> Option<(String, String)> {
    ctx.sym
        .defaults
        .iter()
        .filter(|d| {
            ctx.sym
                .depends_of(d.definition)
                .all(|dep| ctx.dep_ok(dep, Tristate::M))
        })
        .find(|d| {
            d.cond
                .as_ref()
                .is_none_or(|c| c.expr.eval(&ctx.values) > Tristate::N)
        })
        .map(|d| (d.value.text.clone(), d.location.to_string()))
}

/// A non-optional choice with this member set: it cannot be turned off alone.
fn choice_required(ctx: &Ctx) -> Option<Explanation> {
    let choice = ctx.db.choices().get(ctx.sym.choice?)?;
    if choice.optional || ctx.actual != Some("y") {
        return None;
    }
    let summary = format!(
        "CONFIG_{} is the chosen member of the choice at {}; a choice must have one member y, so pick another member instead",
        ctx.name(),
        choice.location
    );
    Some(ctx.explanation(summary, Vec::new(), Reason::ChoiceRequired))
}

/// A value was requested for an int/hex/string option.
fn explain_value(ctx: &Ctx, wanted: &str) -> Explanation {
    unmet_dependencies(ctx, Tristate::M)
        .or_else(|| value_without_prompt(ctx))
        .or_else(|| range_rejects(ctx, wanted))
        .unwrap_or_else(|| unexplained(ctx))
}

fn value_without_prompt(ctx: &Ctx) -> Option<Explanation> {
    if ctx.prompt_visible() {
        return None;
    }
    let default = active_default(ctx).map_or(String::new(), |(text, loc)| {
        format!("; its value comes from `default {text}` ({loc})")
    });
    let summary = format!(
        "CONFIG_{} ({}) has no visible prompt, so a value cannot be set{default}",
        ctx.name(),
        ctx.definition(0)
    );
    Some(ctx.explanation(
        summary,
        Vec::new(),
        Reason::NoPrompt {
            selectors: Vec::new(),
        },
    ))
}

/// The first active `range`, when the value falls outside it.
fn range_rejects(ctx: &Ctx, wanted: &str) -> Option<Explanation> {
    let kind = ctx.sym.kind;
    let range = ctx.sym.ranges.iter().find(|r| {
        r.cond
            .as_ref()
            .is_none_or(|c| c.expr.eval(&ctx.values) > Tristate::N)
    })?;
    let (low, high, value) = (
        ctx.number(&range.low)?,
        ctx.number(&range.high)?,
        number_for(kind, wanted)?,
    );
    if (low..=high).contains(&value) {
        return None;
    }
    let summary = format!(
        "CONFIG_{}={wanted} was rejected by `range {} {}` ({}); allowed {low}..={high}",
        ctx.name(),
        range.low,
        range.high,
        range.location
    );
    let mut explanation = ctx.explanation(
        summary,
        Vec::new(),
        Reason::RangeRejected {
            low: range.low.clone(),
            high: range.high.clone(),
        },
    );
    explanation.location = Some(range.location.to_string());
    Some(explanation)
}
