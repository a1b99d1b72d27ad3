//! Line-level lexing of Kconfig files.
//!
//! Kconfig is line oriented: every statement or attribute occupies one logical
//! line (physical lines joined by a trailing backslash), except help text,
//! which is an indented block that must be skipped verbatim because it may
//! contain anything, including keywords.

/// One token of a logical line; `start..end` is its byte span in that line,
/// so callers can recover an expression exactly as written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub kind: Tok,
    pub start: usize,
    pub end: usize,
}

/// Token kinds. `Word` covers keywords, symbol names and unquoted numbers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Word(String),
    /// Quoted string with escapes removed.
    Str(String),
    /// A `$(...)` macro call, text including the `$(` and `)`.
    Macro(String),
    LParen,
    RParen,
    Not,
    And,
    Or,
    Eq,
    Neq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Tok {
    /// The word, when this token is one.
    pub fn word(&self) -> Option<&str> {
        match self {
            Tok::Word(w) => Some(w),
            _ => None,
        }
    }
}

/// Characters allowed in Kconfig symbol names and unquoted constants
/// (the kernel lexer's `[A-Za-z0-9_-]`).
fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Split one logical line into tokens, dropping a trailing `#` comment.
pub(crate) fn tokenize(line: &str) -> Result<Vec<Token>, String> {
    let bytes: Vec<(usize, char)> = line.char_indices().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let (start, c) = bytes[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '#' {
            break;
        }
        let (kind, next) = lex_one(line, &bytes, i)?;
        let end = bytes.get(next).map_or(line.len(), |&(pos, _)| pos);
        tokens.push(Token { kind, start, end });
        i = next;
    }
    Ok(tokens)
}

/// Lex the token starting at char index `i`; returns it and the next index.
fn lex_one(line: &str, chars: &[(usize, char)], i: usize) -> Result<(Tok, usize), String> {
    let c = chars[i].1;
    let peek = chars.get(i + 1).map(|&(_, c)| c);
    let two = |t: Tok| Ok((t, i + 2));
    let one = |t: Tok| Ok((t, i + 1));
    match (c, peek) {
        ('&', Some('&')) => two(Tok::And),
        ('|', Some('|')) => two(Tok::Or),
        ('!', Some('=')) => two(Tok::Neq),
        ('<', Some('=')) => two(Tok::Le),
        ('>', Some('=')) => two(Tok::Ge),
        ('!', _) => one(Tok::Not),
        ('<', _) => one(Tok::Lt),
        ('>', _) => one(Tok::Gt),
        ('=', _) => one(Tok::Eq),
        ('(', _) => one(Tok::LParen),
        (')', _) => one(Tok::RParen),
        ('"' | '\'', _) => lex_string(chars, i),
        ('$', Some('(')) => lex_macro(line, chars, i),
        _ if is_word_char(c) => {
            let mut j = i;
            while j < chars.len() && is_word_char(chars[j].1) {
                j += 1;
            }
            let word: String = chars[i..j].iter().map(|&(_, c)| c).collect();
            Ok((Tok::Word(word), j))
        }
        _ => Err(format!("unexpected character `{c}`")),
    }
}

/// Lex a quoted string; backslash escapes the next character (as in zconf.l).
fn lex_string(chars: &[(usize, char)], i: usize) -> Result<(Tok, usize), String> {
    let quote = chars[i].1;
    let mut out = String::new();
    let mut j = i + 1;
    while j < chars.len() {
        let c = chars[j].1;
        if c == quote {
            return Ok((Tok::Str(out), j + 1));
        }
        if c == '\\' && j + 1 < chars.len() {
            j += 1;
        }
        out.push(chars[j].1);
        j += 1;
    }
    Err("unterminated string".to_string())
}

/// Lex a `$(...)` macro, honouring nested parentheses and quotes inside it.
fn lex_macro(line: &str, chars: &[(usize, char)], i: usize) -> Result<(Tok, usize), String> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    for (j, &(pos, c)) in chars.iter().enumerate().skip(i + 1) {
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => {
                depth -= 1;
                if depth == 0 {
                    let text = line[chars[i].0..pos + 1].to_string();
                    return Ok((Tok::Macro(text), j + 1));
                }
            }
            _ => {}
        }
    }
    Err("unterminated $( macro".to_string())
}

/// Width of a line's leading whitespace, tabs advancing to the next multiple
/// of 8 (how the kernel's lexer measures help-text indentation).
pub(crate) fn indent_width(line: &str) -> usize {
    let mut width = 0;
    for c in line.chars() {
        match c {
            ' ' => width += 1,
            '\t' => width = (width & !7) + 8,
            _ => break,
        }
    }
    width
}

/// A logical line: text with continuations joined, and its first line number.
#[derive(Debug)]
pub(crate) struct LogicalLine {
    pub number: usize,
    pub text: String,
}

/// Iterates over the logical lines of one file's text.
pub(crate) struct LineReader<'a> {
    lines: Vec<&'a str>,
    pos: usize,
}

impl<'a> LineReader<'a> {
    pub fn new(text: &'a str) -> Self {
        LineReader {
            lines: text.lines().collect(),
            pos: 0,
        }
    }

    /// Next logical line, joining physical lines that end with `\`.
    pub fn next_line(&mut self) -> Option<LogicalLine> {
        let first = *self.lines.get(self.pos)?;
        let number = self.pos + 1;
        self.pos += 1;
        let mut text = String::new();
        let mut current = first;
        while let Some(stripped) = current.trim_end().strip_suffix('\\') {
            text.push_str(stripped);
            text.push(' ');
            match self.lines.get(self.pos) {
                Some(next) => {
                    current = next;
                    self.pos += 1;
                }
                None => return Some(LogicalLine { number, text }),
            }
        }
        text.push_str(current);
        Some(LogicalLine { number, text })
    }

    /// Consume a help block that follows a `help` line and return its text.
    ///
    /// The block ends at the first non-blank line that is less indented than
    /// the block's first line, or that starts at column 0 (zconf.l rules).
    pub fn take_help(&mut self) -> String {
        let mut first_indent: Option<usize> = None;
        let mut help = Vec::new();
        while let Some(line) = self.lines.get(self.pos) {
            if line.trim().is_empty() {
                help.push("");
                self.pos += 1;
                continue;
            }
            let indent = indent_width(line);
            let limit = *first_indent.get_or_insert(indent);
            if indent == 0 || indent < limit {
                break;
            }
            help.push(line.trim());
            self.pos += 1;
        }
        help.join("\n").trim().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(line: &str) -> Vec<Tok> {
        tokenize(line)
            .expect("lex")
            .into_iter()
            .map(|t| t.kind)
            .collect()
    }

    #[test]
    fn lexes_operators_strings_and_comments() {
        let toks = kinds(r#"default "a\"b" if A!=B && !(C<=0x10) # comment"#);
        assert_eq!(toks[1], Tok::Str("a\"b".into()));
        assert!(toks.contains(&Tok::Neq));
        assert!(toks.contains(&Tok::Le));
        assert_eq!(toks.last(), Some(&Tok::RParen));
    }

    #[test]
    fn lexes_macros_with_nested_parens() {
        let toks = kinds(r#"def_bool $(success,echo "(x)" | $(CC) -x c)"#);
        assert_eq!(toks.len(), 2);
        assert!(matches!(&toks[1], Tok::Macro(m) if m.ends_with("-x c)")));
    }

    #[test]
    fn joins_continuations_and_skips_help() {
        let text = "config A\n\tdepends on B && \\\n\t\tC\n\thelp\n\t  text\n\n\t  config FAKE\n\tbool\nconfig D\n";
        let mut r = LineReader::new(text);
        assert_eq!(r.next_line().map(|l| l.number), Some(1));
        let dep = r.next_line().expect("line");
        assert!(dep.text.contains("B &&") && dep.text.contains('C'));
        assert_eq!(
            r.next_line().map(|l| l.text.trim().to_string()),
            Some("help".into())
        );
        assert!(r.take_help().contains("config FAKE"));
        assert_eq!(
            r.next_line().map(|l| l.text.trim().to_string()),
            Some("bool".into())
        );
    }
}
