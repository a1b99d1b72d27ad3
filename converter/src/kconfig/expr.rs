//! Kconfig expressions: parsing, tristate evaluation and blame.
//!
//! Evaluation follows scripts/kconfig/expr.c: `&&` is min, `||` is max, `!`
//! is `2 - x` over n=0/m=1/y=2, comparisons yield n or y. `$(...)` macros are
//! expanded by the real kconfig at load time (usually toolchain probes); we
//! cannot run them, so they evaluate to y ("assumed satisfied") and are
//! reported as unknown when blamed.

use super::lexer::{tokenize, Tok, Token};
use std::fmt;

/// Tristate value, ordered n < m < y.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tristate {
    N,
    M,
    Y,
}

impl Tristate {
    /// Interpret a symbol's string value: only "y" and "m" are non-n.
    pub fn from_value(value: &str) -> Tristate {
        match value {
            "y" => Tristate::Y,
            "m" => Tristate::M,
            _ => Tristate::N,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Tristate::N => "n",
            Tristate::M => "m",
            Tristate::Y => "y",
        }
    }
}

/// `!x` in Kconfig logic: y and n swap, m stays m.
impl std::ops::Not for Tristate {
    type Output = Tristate;

    fn not(self) -> Tristate {
        match self {
            Tristate::N => Tristate::Y,
            Tristate::M => Tristate::M,
            Tristate::Y => Tristate::N,
        }
    }
}

impl fmt::Display for Tristate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Comparison operators (`<`, `>`, ... exist since kernel 4.x/6.x kconfig).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Neq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Neq => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            CmpOp::Eq => ord == Equal,
            CmpOp::Neq => ord != Equal,
            CmpOp::Lt => ord == Less,
            CmpOp::Le => ord != Greater,
            CmpOp::Gt => ord == Greater,
            CmpOp::Ge => ord != Less,
        }
    }
}

/// A parsed Kconfig expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A symbol reference such as `PCI`.
    Symbol(String),
    /// A constant: quoted string, unquoted number, or the literals y/m/n.
    Const(String),
    /// A `$(...)` macro we cannot expand.
    Macro(String),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Symbol(s) | Expr::Macro(s) => f.write_str(s),
            Expr::Const(c) if is_bare_constant(c) => f.write_str(c),
            Expr::Const(c) => f.write_str(&super::dotconfig::quote(c)),
            Expr::Not(e) if matches!(**e, Expr::And(..)) => write!(f, "!({e})"),
            Expr::Not(e) => write!(f, "!{}", Paren(e)),
            Expr::And(a, b) => write!(f, "{} && {}", Paren(a), Paren(b)),
            Expr::Or(a, b) => write!(f, "{a} || {b}"),
            Expr::Cmp(op, a, b) => write!(f, "{a}{}{b}", op.as_str()),
        }
    }
}

/// Display helper that parenthesises `||` under `&&` and `!`.
struct Paren<'a>(&'a Expr);

impl fmt::Display for Paren<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            e @ Expr::Or(..) => write!(f, "({e})"),
            e => write!(f, "{e}"),
        }
    }
}

/// y/m/n and numbers print without quotes.
fn is_bare_constant(c: &str) -> bool {
    // Only what the lexer reads back as one word: `"+9"` and `" 9"` are
    // numbers to `parse_number` but not words, so they keep their quotes.
    let one_word = !c.is_empty() && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-');
    one_word && (matches!(c, "y" | "m" | "n") || looks_numeric(c))
}

/// Decimal (optionally negative) or 0x-prefixed hex.
pub(crate) fn looks_numeric(s: &str) -> bool {
    parse_number(s).is_some()
}

/// Parse a Kconfig number: decimal (maybe negative) or hex with or without 0x.
pub(crate) fn parse_number(s: &str) -> Option<i128> {
    let s = s.trim();
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return i128::from_str_radix(hex, 16).ok();
    }
    s.parse::<i128>().ok()
}

/// Where symbol values come from during evaluation.
pub trait Values {
    /// String value of `name` as kconfig would see it (quotes removed).
    fn value(&self, name: &str) -> String;
}

/// A leaf of an expression that contributes to its current (unwanted) value.
#[derive(Debug, Clone, PartialEq)]
pub struct Leaf {
    /// The symbol name, or the leaf text for constants/macros.
    pub name: String,
    /// Its current value ("n", "y", "m", "123", "unknown", ...).
    pub value: String,
}

impl Expr {
    /// Parse expression text such as `A && (B || !C)`.
    pub fn parse(text: &str) -> Result<Expr, String> {
        let tokens = tokenize(text)?;
        parse_tokens(&tokens)
    }

    /// Evaluate with tristate logic.
    pub fn eval(&self, values: &dyn Values) -> Tristate {
        match self {
            Expr::Symbol(s) => Tristate::from_value(&values.value(s)),
            Expr::Const(c) => Tristate::from_value(c),
            Expr::Macro(_) => Tristate::Y,
            Expr::Not(e) => !e.eval(values),
            Expr::And(a, b) => a.eval(values).min(b.eval(values)),
            Expr::Or(a, b) => a.eval(values).max(b.eval(values)),
            Expr::Cmp(op, a, b) => compare(*op, &a.operand(values), &b.operand(values)),
        }
    }

    /// String value of an atom used as a comparison operand.
    fn operand(&self, values: &dyn Values) -> String {
        match self {
            Expr::Symbol(s) => values.value(s),
            Expr::Const(c) | Expr::Macro(c) => c.clone(),
            other => other.eval(values).as_str().to_string(),
        }
    }

    /// Every symbol name referenced by the expression.
    pub fn symbols(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_symbols(&mut out);
        out
    }

    fn collect_symbols<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Expr::Symbol(s) => out.push(s),
            Expr::Const(_) | Expr::Macro(_) => {}
            Expr::Not(e) => e.collect_symbols(out),
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Cmp(_, a, b) => {
                a.collect_symbols(out);
                b.collect_symbols(out);
            }
        }
    }

    /// Leaves that keep this expression below `need` (e.g. for
    /// `X86_64 && !UML && PCI` with PCI unset and need=y: `PCI=n`).
    /// Empty when the expression already reaches `need`.
    pub fn blame(&self, need: Tristate, values: &dyn Values) -> Vec<Leaf> {
        let mut out = Vec::new();
        if self.eval(values) < need {
            self.blame_low(need, values, &mut out);
        }
        out.dedup();
        out
    }

    /// `self` evaluates below `need`: find why.
    fn blame_low(&self, need: Tristate, values: &dyn Values, out: &mut Vec<Leaf>) {
        match self {
            Expr::And(a, b) | Expr::Or(a, b) => {
                for child in [a, b] {
                    if child.eval(values) < need {
                        child.blame_low(need, values, out);
                    }
                }
            }
            // !e < need  <=>  e > not(need)
            Expr::Not(e) => e.blame_high(!need, values, out),
            leaf => leaf.push_leaf(values, out),
        }
    }

    /// `self` evaluates above `max`: find why.
    fn blame_high(&self, max: Tristate, values: &dyn Values, out: &mut Vec<Leaf>) {
        match self {
            Expr::And(a, b) | Expr::Or(a, b) => {
                for child in [a, b] {
                    if child.eval(values) > max {
                        child.blame_high(max, values, out);
                    }
                }
            }
            Expr::Not(e) => e.blame_low(!max, values, out),
            leaf => leaf.push_leaf(values, out),
        }
    }

    /// Record a leaf: symbols with their value, comparisons as their symbols.
    fn push_leaf(&self, values: &dyn Values, out: &mut Vec<Leaf>) {
        match self {
            Expr::Symbol(s) => out.push(Leaf {
                name: s.clone(),
                value: display_value(&values.value(s)),
            }),
            Expr::Macro(m) => out.push(Leaf {
                name: m.clone(),
                value: "unknown".into(),
            }),
            Expr::Cmp(..) if !self.symbols().is_empty() => {
                for s in self.symbols() {
                    out.push(Leaf {
                        name: s.to_string(),
                        value: display_value(&values.value(s)),
                    });
                }
            }
            other => out.push(Leaf {
                name: other.to_string(),
                value: other.eval(values).to_string(),
            }),
        }
    }
}

/// Show an empty value explicitly rather than as nothing.
fn display_value(v: &str) -> String {
    if v.is_empty() {
        "\"\"".to_string()
    } else {
        v.to_string()
    }
}

/// Compare two operand values: numerically when both are numbers, as strings
/// otherwise (expr.c's behaviour for the common cases).
fn compare(op: CmpOp, left: &str, right: &str) -> Tristate {
    let ord = match (parse_number(left), parse_number(right)) {
        (Some(l), Some(r)) => l.cmp(&r),
        _ => left.cmp(right),
    };
    if op.holds(ord) {
        Tristate::Y
    } else {
        Tristate::N
    }
}

/// Deepest `(`/`!` nesting accepted. Parsing, evaluating and dropping an
/// expression recurse on its depth, and a tree is as untrusted as any
/// archive: 30000 `(` overflowed the stack (a fuzz finding). The kernel's
/// own Kconfig nests a few levels.
const MAX_NESTING: usize = 64;
/// Longest expression accepted, in tokens (a chain of `&&` is as deep as it
/// is long). The kernel's longest `depends on` has about 40.
const MAX_TOKENS: usize = 1024;

/// Parse a whole token slice as one expression.
pub(crate) fn parse_tokens(tokens: &[Token]) -> Result<Expr, String> {
    if tokens.len() > MAX_TOKENS {
        return Err(format!("expression of {} tokens is longer than the {MAX_TOKENS} accepted", tokens.len()));
    }
    let mut p = ExprParser { tokens, pos: 0, depth: 0 };
    let expr = p.or()?;
    match tokens.get(p.pos) {
        None => Ok(expr),
        Some(t) => Err(format!("unexpected {:?} in expression", t.kind)),
    }
}

/// Recursive-descent parser: or := and ('||' and)*, and := not ('&&' not)*,
/// not := '!' not | '(' or ')' | atom [cmp atom].
struct ExprParser<'a> {
    tokens: &'a [Token],
    pos: usize,
    /// Current `(`/`!` nesting.
    depth: usize,
}

impl ExprParser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|t| &t.kind)
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if matches!(self.peek(), Some(Tok::Not | Tok::LParen)) {
            if self.depth == MAX_NESTING {
                return Err(format!("expression nested deeper than {MAX_NESTING} levels"));
            }
            self.depth += 1;
            let nested = self.nested();
            self.depth -= 1;
            return nested;
        }
        self.comparison()
    }

    /// `'!' not | '(' or ')'`, one level deeper.
    fn nested(&mut self) -> Result<Expr, String> {
        match self.peek() {
            Some(Tok::Not) => {
                self.pos += 1;
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            Some(Tok::LParen) => {
                self.pos += 1;
                let inner = self.or()?;
                if self.peek() != Some(&Tok::RParen) {
                    return Err("missing `)`".into());
                }
                self.pos += 1;
                Ok(inner)
            }
            _ => self.comparison(),
        }
    }

    fn comparison(&mut self) -> Result<Expr, String> {
        let left = self.atom()?;
        let op = match self.peek() {
            Some(Tok::Eq) => CmpOp::Eq,
            Some(Tok::Neq) => CmpOp::Neq,
            Some(Tok::Lt) => CmpOp::Lt,
            Some(Tok::Le) => CmpOp::Le,
            Some(Tok::Gt) => CmpOp::Gt,
            Some(Tok::Ge) => CmpOp::Ge,
            _ => return Ok(left),
        };
        self.pos += 1;
        let right = self.atom()?;
        Ok(Expr::Cmp(op, Box::new(left), Box::new(right)))
    }

    fn atom(&mut self) -> Result<Expr, String> {
        let tok = self.peek().cloned().ok_or("expression ends too early")?;
        self.pos += 1;
        match tok {
            Tok::Word(w) => Ok(word_atom(w)),
            Tok::Str(s) => Ok(Expr::Const(s)),
            Tok::Macro(m) => Ok(Expr::Macro(m)),
            other => Err(format!("unexpected {other:?} in expression")),
        }
    }
}

/// Unquoted y/m/n and numbers are constants; anything else names a symbol.
pub(crate) fn word_atom(w: String) -> Expr {
    if matches!(w.as_str(), "y" | "m" | "n") || looks_numeric(&w) {
        Expr::Const(w)
    } else {
        Expr::Symbol(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Map(HashMap<&'static str, &'static str>);
    impl Values for Map {
        fn value(&self, name: &str) -> String {
            self.0.get(name).map_or("n", |v| v).to_string()
        }
    }

    fn vals(pairs: &[(&'static str, &'static str)]) -> Map {
        Map(pairs.iter().copied().collect())
    }

    fn eval(text: &str, v: &Map) -> Tristate {
        Expr::parse(text).expect("parse").eval(v)
    }

    #[test]
    fn deep_or_long_expressions_are_refused_not_a_stack_overflow() {
        let deep = format!("{}A{}", "(".repeat(500), ")".repeat(500));
        assert!(Expr::parse(&deep).unwrap_err().contains("nested deeper"));
        let nots = format!("{}A", "!".repeat(1000));
        assert!(Expr::parse(&nots).unwrap_err().contains("nested deeper"));
        let huge = format!("{}A{}", "(".repeat(30_000), ")".repeat(30_000));
        assert!(Expr::parse(&huge).unwrap_err().contains("tokens"));
        let long = vec!["A"; 2000].join(" && ");
        assert!(Expr::parse(&long).unwrap_err().contains("tokens"));
        let ok = format!("{}A{}", "(".repeat(60), ")".repeat(60));
        assert!(Expr::parse(&ok).is_ok());
    }

    #[test]
    fn precedence_and_parentheses() {
        let e = Expr::parse("A && (B || !C)").expect("parse");
        assert_eq!(e.to_string(), "A && (B || !C)");
        let e = Expr::parse("A || B && C").expect("parse");
        assert!(matches!(e, Expr::Or(..)));
        assert!(matches!(
            Expr::parse("!A && B").expect("parse"),
            Expr::And(..)
        ));
    }

    #[test]
    fn tristate_logic() {
        let v = vals(&[("A", "y"), ("M", "m")]);
        assert_eq!(eval("A && M", &v), Tristate::M);
        assert_eq!(eval("A || M", &v), Tristate::Y);
        assert_eq!(eval("!M", &v), Tristate::M);
        assert_eq!(eval("!ABSENT", &v), Tristate::Y);
        assert_eq!(eval("M && m", &v), Tristate::M);
        assert_eq!(eval("n || y", &v), Tristate::Y);
    }

    #[test]
    fn comparisons_and_constants() {
        let v = vals(&[
            ("A", "y"),
            ("B", "y"),
            ("N", "64"),
            ("S", "abc"),
            ("H", "0x1000"),
        ]);
        assert_eq!(eval("A = y", &v), Tristate::Y);
        assert_eq!(eval("A=B", &v), Tristate::Y);
        assert_eq!(eval("A != n", &v), Tristate::Y);
        assert_eq!(eval("ABSENT != n", &v), Tristate::N);
        assert_eq!(eval("N >= 32 && N < 128", &v), Tristate::Y);
        assert_eq!(eval("N > 100", &v), Tristate::N);
        assert_eq!(eval("N <= 64", &v), Tristate::Y);
        assert_eq!(eval("H > 0x800", &v), Tristate::Y);
        assert_eq!(eval(r#"S = "abc""#, &v), Tristate::Y);
        assert_eq!(eval(r#"S != "abc""#, &v), Tristate::N);
    }

    #[test]
    fn macros_are_unknown_and_assumed_true() {
        let v = vals(&[]);
        let e = Expr::parse("$(cc-option,-mfoo) && A").expect("parse");
        assert_eq!(e.eval(&v), Tristate::N);
        let leaves = e.blame(Tristate::Y, &v);
        assert_eq!(
            leaves,
            vec![Leaf {
                name: "A".into(),
                value: "n".into()
            }]
        );
        assert!(matches!(
            Expr::parse("$(success,true)").expect("parse"),
            Expr::Macro(_)
        ));
    }

    #[test]
    fn blame_finds_failing_leaves() {
        let v = vals(&[("X86_64", "y")]);
        let e = Expr::parse("X86_64 && !UML && PCI").expect("parse");
        let leaves = e.blame(Tristate::Y, &v);
        assert_eq!(
            leaves,
            vec![Leaf {
                name: "PCI".into(),
                value: "n".into()
            }]
        );

        let v = vals(&[("UML", "y"), ("PCI", "y")]);
        let leaves = e.blame(Tristate::Y, &v);
        let names: Vec<_> = leaves.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["X86_64", "UML"]);

        let v = vals(&[("A", "y"), ("B", "m")]);
        let leaves = Expr::parse("A && B").expect("parse").blame(Tristate::Y, &v);
        assert_eq!(
            leaves,
            vec![Leaf {
                name: "B".into(),
                value: "m".into()
            }]
        );
        assert!(Expr::parse("A && B")
            .expect("parse")
            .blame(Tristate::M, &v)
            .is_empty());

        // !(A || B) with A=y: A is to blame.
        let leaves = Expr::parse("!(A || C)")
            .expect("parse")
            .blame(Tristate::Y, &v);
        assert_eq!(
            leaves,
            vec![Leaf {
                name: "A".into(),
                value: "y".into()
            }]
        );

        let leaves = Expr::parse("NR > 100")
            .expect("parse")
            .blame(Tristate::Y, &vals(&[("NR", "8")]));
        assert_eq!(
            leaves,
            vec![Leaf {
                name: "NR".into(),
                value: "8".into()
            }]
        );
    }

    #[test]
    fn parse_errors() {
        assert!(Expr::parse("A &&").is_err());
        assert!(Expr::parse("(A").is_err());
        assert!(Expr::parse("A B").is_err());
        assert!(Expr::parse("\"unterminated").is_err());
        assert!(Expr::parse("").is_err());
    }
}
