//! A parser for the documented KQL subset: `Table | op | op …` with where, project, extend, take/limit, top,
//! order/sort by, summarize, distinct, count and join; scalar expressions with comparison, string and logical
//! operators and a handful of functions. Anything else is a syntax error naming where it stopped.

use crate::value::KV;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum BinOp {
    Eq,
    Ne,
    EqCi,
    NeCi,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    Add,
    Sub,
    Mul,
    Div,
    /// String operators; `negated` for the `!` forms.
    Str {
        op: StrOp,
        negated: bool,
        /// The `_cs` forms: case-sensitive.
        cs: bool,
    },
    /// `matches regex`: the right side is a regular expression.
    Regex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrOp {
    Has,
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Lit(KV),
    Col(String),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    In {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
        ci: bool,
    },
    /// `has_any (…)` (`all`: `has_all`): whole-term matches against any (every) of the list.
    HasAny {
        expr: Box<Expr>,
        list: Vec<Expr>,
        all: bool,
    },
    Call(String, Vec<Expr>),
    /// `x[key]` / `x.key` on a dynamic value (a property name or an array position).
    Index(Box<Expr>, Box<Expr>),
    /// `x between (lo .. hi)`; `hi` may be a timespan added to a datetime `lo`.
    Between {
        expr: Box<Expr>,
        lo: Box<Expr>,
        hi: Box<Expr>,
        negated: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Agg {
    Count,
    CountIf(Expr),
    DCount(Expr),
    Min(Expr),
    Max(Expr),
    Sum(Expr),
    Avg(Expr),
    /// `make_set(x, max)` / `make_list(x, max)`: at most `max` values (the default as Kusto's, 1,048,576).
    MakeSet(Expr, usize),
    MakeList(Expr, usize),
    DCountIf(Expr, Expr),
    SumIf(Expr, Expr),
    /// `any()` / `take_any()`: a value from the group.
    Any(Expr),
    /// `arg_max(by, cols…)` (`min`: `arg_min`): the row where `by` is largest; `cols` empty means `*`. Produces
    /// one column for `by` and one per column; `names` are the tuple names given with `(a, b) = arg_max(…)`.
    ArgMax {
        by: Expr,
        cols: Vec<String>,
        star: bool,
        min: bool,
        names: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    Inner,
    InnerUnique,
    LeftOuter,
    RightOuter,
    FullOuter,
    LeftSemi,
    LeftAnti,
    RightSemi,
    RightAnti,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    Where(Expr),
    Project(Vec<(String, Expr)>),
    /// `project-away a, b*` (`keep`: `project-keep`): column names or `*` wildcards.
    ProjectAway {
        patterns: Vec<String>,
        keep: bool,
    },
    /// `project-rename New = Old, …`.
    ProjectRename(Vec<(String, String)>),
    Extend(Vec<(String, Expr)>),
    Take(usize),
    Top {
        n: usize,
        by: Expr,
        desc: bool,
    },
    Sort(Vec<(Expr, bool)>),
    Summarize {
        aggs: Vec<(String, Agg)>,
        by: Vec<(String, Expr)>,
    },
    /// `distinct a, b` (empty: `distinct *`).
    Distinct(Vec<String>),
    Count,
    /// `mv-expand Name = expr` (or a column): one row per element of a dynamic array.
    MvExpand {
        name: String,
        expr: Expr,
        limit: Option<usize>,
    },
    Join {
        kind: JoinKind,
        right: Box<Query>,
        on: Vec<(String, String)>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// `let` statements before the query, in order (only at the top level).
    pub lets: Vec<(String, Let)>,
    pub table: String,
    pub stages: Vec<Stage>,
}

/// What a `let` statement names: a value (`let since = ago(7d);`) or a table (`let t = T | where …;`).
#[derive(Debug, Clone, PartialEq)]
pub enum Let {
    Scalar(Expr),
    Tabular(Box<Query>),
}

/// A syntax error with its 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// What was wrong.
    pub message: String,
    /// The line (from 1).
    pub line: usize,
    /// The column (from 1).
    pub column: usize,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Syntax error: {} (line {}, position {})", self.message, self.line, self.column)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Long(i64),
    Real(f64),
    Span(Duration),
    Date(DateTime<Utc>),
    Op(&'static str),
    Pipe,
    Comma,
    LParen,
    RParen,
    Dot,
    Semi,
    LBracket,
    RBracket,
    /// `dynamic(…)` literal, already parsed.
    Dyn(serde_json::Value),
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("'{s}'"),
        Tok::Str(s) => format!("string \"{s}\""),
        Tok::Long(n) => format!("number {n}"),
        Tok::Real(n) => format!("number {n}"),
        Tok::Span(_) => "a timespan".into(),
        Tok::Date(_) => "a datetime".into(),
        Tok::Op(o) => format!("'{o}'"),
        Tok::Pipe => "'|'".into(),
        Tok::Comma => "','".into(),
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::Dot => "'.'".into(),
        Tok::Semi => "';'".into(),
        Tok::LBracket => "'['".into(),
        Tok::RBracket => "']'".into(),
        Tok::Dyn(_) => "a dynamic literal".into(),
    }
}

fn position(input: &str, offset: usize) -> (usize, usize) {
    let before = &input[..offset.min(input.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, column)
}

fn parse_datetime(raw: &str) -> Option<DateTime<Utc>> {
    let s = raw.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(n) = chrono::NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), f) {
            return Some(Utc.from_utc_datetime(&n));
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|n| Utc.from_utc_datetime(&n))
}

fn span(n: f64, unit: &str) -> Option<Duration> {
    let ms = match unit {
        "d" | "day" | "days" => 86_400_000.0,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600_000.0,
        "m" | "min" | "minute" | "minutes" => 60_000.0,
        "s" | "sec" | "second" | "seconds" => 1000.0,
        "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 1.0,
        "micro" | "micros" | "microsecond" | "microseconds" => 0.001,
        "tick" | "ticks" => 0.0001,
        _ => return None,
    };
    let v = n * ms;
    (v.is_finite() && v.abs() < 1e15).then(|| Duration::milliseconds(v as i64))
}

/// A lexing error: the message and the byte offset it is about.
type LexError = (String, usize);

fn lex(input: &str) -> Result<Vec<(Tok, usize)>, LexError> {
    let b = input.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let two = input.get(i..i + 2).unwrap_or("");
        let op2 = ["==", "!=", "=~", "!~", "<=", ">=", "<>", ".."]
            .iter()
            .find(|o| **o == two)
            .copied();
        if let Some(o) = op2 {
            out.push((Tok::Op(if o == "<>" { "!=" } else { o }), start));
            i += 2;
            continue;
        }
        let single = match c {
            b'|' => Some(Tok::Pipe),
            b',' => Some(Tok::Comma),
            b'(' => Some(Tok::LParen),
            b')' => Some(Tok::RParen),
            b';' => Some(Tok::Semi),
            b'[' => Some(Tok::LBracket),
            b']' => Some(Tok::RBracket),
            b'.' if !b.get(i + 1).is_some_and(u8::is_ascii_digit) => Some(Tok::Dot),
            b'<' => Some(Tok::Op("<")),
            b'>' => Some(Tok::Op(">")),
            b'=' => Some(Tok::Op("=")),
            b'+' => Some(Tok::Op("+")),
            b'-' => Some(Tok::Op("-")),
            b'*' => Some(Tok::Op("*")),
            b'/' => Some(Tok::Op("/")),
            _ => None,
        };
        if let Some(tok) = single {
            out.push((tok, i));
            i += 1;
            continue;
        }
        let (tok, end) = match c {
            b'!' => negated(input, i)?,
            // Verbatim strings: `@"…"` / `@'…'`, the quote doubled inside, backslashes literal.
            b'@' if matches!(b.get(i + 1), Some(b'"' | b'\'')) => verbatim(input, i)?,
            // Multi-line strings: ```…```, nothing escaped.
            b'`' if input[i..].starts_with("```") => {
                let rest = &input[i + 3..];
                let end = rest
                    .find("```")
                    .ok_or_else(|| ("unterminated ``` string literal".to_string(), start))?;
                (Tok::Str(rest[..end].to_string()), i + 3 + end + 3)
            }
            b'"' | b'\'' => quoted(input, i)?,
            b'0'..=b'9' | b'.' => number(input, i)?,
            c if c.is_ascii_alphabetic() || c == b'_' || c == b'$' => word(input, i)?,
            _ => {
                let ch = input[i..].chars().next().unwrap_or('?');
                return Err((format!("unexpected character '{ch}'"), i));
            }
        };
        out.push((tok, start));
        i = end;
    }
    Ok(out)
}

/// `!has`, `!contains`, `!in`, `!startswith`, `!endswith` at `i`: the token and the offset after it.
fn negated(input: &str, i: usize) -> Result<(Tok, usize), LexError> {
    let b = input.as_bytes();
    let mut j = i + 1;
    while j < b.len() && (b[j].is_ascii_alphabetic() || b[j] == b'~' || b[j] == b'_') {
        j += 1;
    }
    let word = &input[i + 1..j];
    if word.is_empty() {
        return Err(("unexpected '!'".into(), i));
    }
    Ok((Tok::Ident(format!("!{word}")), j))
}

/// A verbatim string (`@"…"`, `@'…'`) at `start`: the token and the offset after its closing quote.
fn verbatim(input: &str, start: usize) -> Result<(Tok, usize), LexError> {
    let q = input.as_bytes()[start + 1] as char;
    let mut s = String::new();
    let mut i = start + 2;
    loop {
        let Some(ch) = input.get(i..).and_then(|r| r.chars().next()) else {
            return Err(("unterminated verbatim string literal".into(), start));
        };
        if ch == q {
            if input[i + 1..].starts_with(q) {
                s.push(q);
                i += 2;
                continue;
            }
            break;
        }
        s.push(ch);
        i += ch.len_utf8();
    }
    Ok((Tok::Str(s), i + 1))
}

/// A quoted string with backslash escapes at `start`: the token and the offset after its closing quote.
fn quoted(input: &str, start: usize) -> Result<(Tok, usize), LexError> {
    let q = input.as_bytes()[start];
    let mut s = String::new();
    let mut i = start + 1;
    loop {
        let Some(ch) = input.get(i..).and_then(|r| r.chars().next()) else {
            return Err(("unterminated string literal".into(), start));
        };
        if ch as u32 == q as u32 {
            break;
        }
        if ch == '\\' {
            let Some(next) = input.get(i + 1..).and_then(|r| r.chars().next()) else {
                return Err(("unterminated string literal".into(), start));
            };
            s.push(match next {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                other => other,
            });
            i += 1 + next.len_utf8();
            continue;
        }
        s.push(ch);
        i += ch.len_utf8();
    }
    Ok((Tok::Str(s), i + 1))
}

/// A number or a timespan (`5m`, `1.5d`) at `i`: the token and the offset after it.
fn number(input: &str, i: usize) -> Result<(Tok, usize), LexError> {
    let b = input.as_bytes();
    let mut j = i;
    // Digits and one decimal point; `..` (a range, as in `between (1..5)`) ends the number.
    while j < b.len() && (b[j].is_ascii_digit() || (b[j] == b'.' && b.get(j + 1) != Some(&b'.'))) {
        j += 1;
    }
    let num = &input[i..j];
    let mut k = j;
    while k < b.len() && b[k].is_ascii_alphabetic() {
        k += 1;
    }
    let unit = &input[j..k];
    let tok = if !unit.is_empty() {
        let n: f64 = num.parse().map_err(|_| (format!("invalid number '{num}'"), i))?;
        Tok::Span(span(n, unit).ok_or_else(|| (format!("invalid timespan '{num}{unit}'"), i))?)
    } else if let Ok(n) = num.parse::<i64>() {
        Tok::Long(n)
    } else {
        Tok::Real(num.parse().map_err(|_| (format!("invalid number '{num}'"), i))?)
    };
    Ok((tok, k))
}

/// An identifier at `i` — or a `dynamic(…)`, `datetime(…)` or `timespan(…)` literal: the token and the offset after.
fn word(input: &str, i: usize) -> Result<(Tok, usize), LexError> {
    let b = input.as_bytes();
    let mut j = i;
    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'$') {
        j += 1;
    }
    // `in~`, `has_cs`-like suffixes
    if b.get(j) == Some(&b'~') {
        j += 1;
    }
    let word = &input[i..j];
    if word == "dynamic" && input[j..].trim_start().starts_with('(') {
        let open = j + input[j..].find('(').unwrap_or(0);
        let close = balanced(input, open).ok_or_else(|| ("unclosed dynamic(".to_string(), i))?;
        let raw = input[open + 1..close].trim();
        let value = if raw.is_empty() || raw == "null" {
            serde_json::Value::Null
        } else {
            serde_json::from_str(raw)
                .or_else(|_| serde_json::from_str(&raw.replace('\'', "\"")))
                .map_err(|_| (format!("invalid dynamic literal '{raw}'"), open + 1))?
        };
        return Ok((Tok::Dyn(value), close + 1));
    }
    if (word == "datetime" || word == "timespan") && input[j..].trim_start().starts_with('(') {
        let open = j + input[j..].find('(').unwrap_or(0);
        let close = input[open..]
            .find(')')
            .map(|p| open + p)
            .ok_or_else(|| (format!("unclosed {word}("), i))?;
        let raw = &input[open + 1..close];
        let tok = if word == "datetime" {
            Tok::Date(parse_datetime(raw).ok_or_else(|| (format!("invalid datetime literal '{raw}'"), open + 1))?)
        } else {
            let t = raw.trim();
            let digits = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
            let n: f64 = t[..digits].parse().map_err(|_| (format!("invalid timespan '{raw}'"), open + 1))?;
            Tok::Span(span(n, &t[digits..]).ok_or_else(|| (format!("invalid timespan '{raw}'"), open + 1))?)
        };
        return Ok((tok, close + 1));
    }
    Ok((Tok::Ident(word.to_string()), j))
}

/// The position of the `)` closing the `(` at `open`, skipping quoted strings.
fn balanced(input: &str, open: usize) -> Option<usize> {
    let b = input.as_bytes();
    let (mut depth, mut quote, mut i) = (0usize, None::<u8>, open);
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(_) if c == b'\\' => i += 1,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                b'"' | b'\'' => quote = Some(c),
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        return (c == b')').then_some(i);
                    }
                }
                _ => {}
            },
        }
        i += 1;
    }
    None
}

struct P<'a> {
    input: &'a str,
    toks: Vec<(Tok, usize)>,
    pos: usize,
    depth: usize,
}

type R<T> = Result<T, SyntaxError>;

/// The byte ranges of the main query's stages — the text after each top-level `|` of the statement after the last
/// top-level `;` (`let` statements come first), up to the next `|`, `;` or the end. Pipes inside parentheses
/// (a join's right side), strings and comments are not stage boundaries.
pub fn top_level_stages(input: &str) -> R<Vec<std::ops::Range<usize>>> {
    let toks = lex(input).map_err(|(m, at)| {
        let (line, column) = position(input, at);
        SyntaxError { message: m, line, column }
    })?;
    let mut depth = 0usize;
    let mut pipes: Vec<usize> = Vec::new();
    let mut end = input.len();
    for (tok, at) in &toks {
        match tok {
            Tok::LParen | Tok::LBracket => depth += 1,
            Tok::RParen | Tok::RBracket => depth = depth.saturating_sub(1),
            Tok::Semi if depth == 0 => {
                // A `;` ends a `let` (stages so far belonged to it) or the whole query (a trailing `;`).
                if toks.iter().any(|(t, o)| *o > *at && !matches!(t, Tok::Semi)) {
                    pipes.clear();
                } else {
                    end = end.min(*at);
                }
            }
            Tok::Pipe if depth == 0 => pipes.push(*at),
            _ => {}
        }
    }
    Ok(pipes
        .iter()
        .enumerate()
        .map(|(i, &at)| at + 1..pipes.get(i + 1).copied().unwrap_or(end))
        .collect())
}

/// Parses a query. A trailing `;` is allowed; `let` statements are not part of the subset.
pub fn parse_query(input: &str) -> R<Query> {
    let toks = lex(input).map_err(|(m, at)| {
        let (line, column) = position(input, at);
        SyntaxError { message: m, line, column }
    })?;
    let mut p = P {
        input,
        toks,
        pos: 0,
        depth: 0,
    };
    let mut lets = Vec::new();
    while p.eat_word("let") {
        let name = p.ident("a name after 'let'")?;
        p.expect(Tok::Op("="))?;
        // A table when the value is a pipeline (`T | …`, `(T | …)`) or a bare name followed by ';'; else a value.
        let tabular = match (p.toks.get(p.pos).map(|t| &t.0), p.toks.get(p.pos + 1).map(|t| &t.0)) {
            (Some(Tok::Ident(_)), Some(Tok::Pipe | Tok::Semi)) => true,
            (Some(Tok::LParen), Some(Tok::Ident(_))) => matches!(p.toks.get(p.pos + 2).map(|t| &t.0), Some(Tok::Pipe | Tok::RParen)),
            _ => false,
        };
        let value = if tabular {
            let parens = p.peek() == Some(&Tok::LParen);
            if parens {
                p.pos += 1;
            }
            let q = p.query()?;
            if parens {
                p.expect(Tok::RParen)?;
            }
            Let::Tabular(Box::new(q))
        } else {
            Let::Scalar(p.expr()?)
        };
        p.expect(Tok::Semi)?;
        lets.push((name, value));
    }
    let mut q = p.query()?;
    q.lets = lets;
    if p.peek() == Some(&Tok::Semi) {
        p.pos += 1;
    }
    if let Some(t) = p.peek().cloned() {
        return Err(p.err(format!("unexpected {} after the end of the query", describe(&t))));
    }
    Ok(q)
}

impl P<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }
    fn err(&self, message: String) -> SyntaxError {
        let at = self.toks.get(self.pos).map(|(_, p)| *p).unwrap_or(self.input.len());
        let (line, column) = position(self.input, at);
        SyntaxError { message, line, column }
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.peek().cloned();
        self.pos += 1;
        t
    }
    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(w))
    }
    fn eat_word(&mut self, w: &str) -> bool {
        if self.is_word(w) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, t: Tok) -> R<()> {
        match self.peek() {
            Some(x) if *x == t => {
                self.pos += 1;
                Ok(())
            }
            Some(x) => Err(self.err(format!("expected {}, found {}", describe(&t), describe(&x.clone())))),
            None => Err(self.err(format!("expected {}, found the end of the query", describe(&t)))),
        }
    }
    fn ident(&mut self, what: &str) -> R<String> {
        match self.peek().cloned() {
            Some(Tok::Ident(s)) if !s.starts_with('!') => {
                self.pos += 1;
                Ok(s)
            }
            Some(t) => Err(self.err(format!("expected {what}, found {}", describe(&t)))),
            None => Err(self.err(format!("expected {what}, found the end of the query"))),
        }
    }
    fn count(&mut self, what: &str) -> R<usize> {
        match self.next() {
            Some(Tok::Long(n)) if n >= 0 => Ok(n as usize),
            _ => {
                self.pos -= 1;
                Err(self.err(format!("expected a non-negative number after {what}")))
            }
        }
    }

    /// Column names and `*` wildcards (`a`, `b*`, `*1`), comma-separated, as `project-away` takes them.
    fn column_patterns(&mut self) -> R<Vec<String>> {
        let mut out = Vec::new();
        loop {
            let mut pattern = String::new();
            while let Some(t) = self.peek().cloned() {
                match t {
                    Tok::Ident(w) => pattern.push_str(&w),
                    Tok::Op("*") => pattern.push('*'),
                    Tok::Long(n) if n >= 0 => pattern.push_str(&n.to_string()),
                    _ => break,
                }
                self.pos += 1;
            }
            if pattern.is_empty() {
                return Err(self.err("expected a column name or a wildcard such as Name*".into()));
            }
            out.push(pattern);
            if self.peek() != Some(&Tok::Comma) {
                return Ok(out);
            }
            self.pos += 1;
        }
    }

    fn query(&mut self) -> R<Query> {
        self.depth += 1;
        if self.depth > 16 {
            return Err(self.err("query nested too deeply".into()));
        }
        if self.is_word("let") {
            return Err(self.err("'let' statements are not supported by the emulator's KQL subset".into()));
        }
        let table = self.ident("a table name")?;
        let mut stages = Vec::new();
        while self.peek() == Some(&Tok::Pipe) {
            self.pos += 1;
            stages.push(self.stage()?);
        }
        self.depth -= 1;
        Ok(Query {
            lets: vec![],
            table,
            stages,
        })
    }

    fn stage(&mut self) -> R<Stage> {
        let op = self.ident("a tabular operator")?.to_ascii_lowercase();
        Ok(match op.as_str() {
            "where" | "filter" => Stage::Where(self.expr()?),
            "project" if self.peek() == Some(&Tok::Op("-")) => {
                self.pos += 1;
                let variant = self.ident("away, keep or rename after 'project-'")?.to_ascii_lowercase();
                match variant.as_str() {
                    "away" | "keep" => Stage::ProjectAway {
                        patterns: self.column_patterns()?,
                        keep: variant == "keep",
                    },
                    "rename" => {
                        let mut pairs = Vec::new();
                        loop {
                            let new = self.ident("a new column name")?;
                            self.expect(Tok::Op("="))?;
                            let old = self.ident("the column to rename")?;
                            pairs.push((new, old));
                            if self.peek() != Some(&Tok::Comma) {
                                break;
                            }
                            self.pos += 1;
                        }
                        Stage::ProjectRename(pairs)
                    }
                    other => {
                        self.pos -= 1;
                        return Err(self.err(format!(
                            "the operator 'project-{other}' is not supported by the emulator's KQL subset (supported: project-away, project-keep, project-rename)"
                        )));
                    }
                }
            }
            "project" => Stage::Project(self.assignments(false)?),
            "extend" => Stage::Extend(self.assignments(true)?),
            "take" | "limit" => Stage::Take(self.count(&op)?),
            "top" => {
                let n = self.count("top")?;
                if !self.eat_word("by") {
                    return Err(self.err("expected 'by' after top N".into()));
                }
                let by = self.expr()?;
                let desc = self.direction();
                self.nulls_clause();
                Stage::Top { n, by, desc }
            }
            "order" | "sort" => {
                if !self.eat_word("by") {
                    return Err(self.err(format!("expected 'by' after {op}")));
                }
                let mut keys = Vec::new();
                loop {
                    let e = self.expr()?;
                    let desc = self.direction();
                    self.nulls_clause();
                    keys.push((e, desc));
                    if self.peek() != Some(&Tok::Comma) {
                        break;
                    }
                    self.pos += 1;
                }
                Stage::Sort(keys)
            }
            "summarize" => self.summarize()?,
            "distinct" if self.peek() == Some(&Tok::Op("*")) => {
                self.pos += 1;
                Stage::Distinct(vec![])
            }
            "distinct" => {
                let mut cols = vec![self.ident("a column name")?];
                while self.peek() == Some(&Tok::Comma) {
                    self.pos += 1;
                    cols.push(self.ident("a column name")?);
                }
                Stage::Distinct(cols)
            }
            "count" => Stage::Count,
            "join" => self.join()?,
            "mv" | "mvexpand" if op == "mvexpand" || self.peek() == Some(&Tok::Op("-")) => {
                if op == "mv" {
                    self.pos += 1;
                    if !self.eat_word("expand") {
                        return Err(self.err("expected 'mv-expand'".into()));
                    }
                }
                let named = matches!(self.toks.get(self.pos + 1), Some((Tok::Op("="), _)));
                let (name, expr) = if named {
                    let n = self.ident("a column name")?;
                    self.pos += 1;
                    (n, self.expr()?)
                } else {
                    let e = self.expr()?;
                    match &e {
                        Expr::Col(c) => (c.clone(), e),
                        _ => return Err(self.err("mv-expand needs a column or 'Name = expression'".into())),
                    }
                };
                if self.eat_word("to") {
                    // `to typeof(T)`: the elements keep their own types here.
                    self.expr()?;
                }
                let limit = if self.eat_word("limit") { Some(self.count("limit")?) } else { None };
                Stage::MvExpand { name, expr, limit }
            }
            other => {
                self.pos -= 1;
                return Err(self.err(format!("the operator '{other}' is not supported by the emulator's KQL subset (supported: where, project, project-away, project-keep, project-rename, extend, take, limit, top, order by, sort by, summarize, distinct, count, join, mv-expand)")));
            }
        })
    }

    /// `asc` or `desc` (the default).
    fn direction(&mut self) -> bool {
        if self.eat_word("asc") {
            return false;
        }
        self.eat_word("desc");
        true
    }

    fn nulls_clause(&mut self) {
        if self.is_word("nulls") {
            self.pos += 1;
            let _ = self.eat_word("first") || self.eat_word("last");
        }
    }

    /// `name = expr` or a bare column (when `need_name` is false), comma-separated.
    fn assignments(&mut self, need_name: bool) -> R<Vec<(String, Expr)>> {
        let mut out = Vec::new();
        loop {
            let named = matches!(self.toks.get(self.pos + 1), Some((Tok::Op("="), _))) && matches!(self.peek(), Some(Tok::Ident(_)));
            if named {
                let name = self.ident("a column name")?;
                self.pos += 1;
                out.push((name, self.expr()?));
            } else if need_name {
                return Err(self.err("expected 'Name = expression'".into()));
            } else {
                let e = self.expr()?;
                let name = match &e {
                    Expr::Col(c) => c.clone(),
                    _ => format!("Column{}", out.len() + 1),
                };
                out.push((name, e));
            }
            if self.peek() != Some(&Tok::Comma) {
                return Ok(out);
            }
            self.pos += 1;
        }
    }

    /// One aggregation of a `summarize`: `Name = agg(…)`, `(A, B) = arg_max(…)` or `agg(…)`, with its column name.
    fn aggregation(&mut self) -> R<(String, Agg)> {
        const SUPPORTED: &str =
            "count, countif, dcount, dcountif, min, max, sum, sumif, avg, make_set, make_list, any, take_any, arg_max, arg_min";
        // `Name = agg(…)`, `(A, B) = arg_max(…)` or `agg(…)`.
        let mut names = Vec::new();
        if matches!(self.toks.get(self.pos + 1), Some((Tok::Op("="), _))) {
            names.push(self.ident("a column name")?);
            self.pos += 1;
        } else if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            names.push(self.ident("a column name")?);
            while self.peek() == Some(&Tok::Comma) {
                self.pos += 1;
                names.push(self.ident("a column name")?);
            }
            self.expect(Tok::RParen)?;
            self.expect(Tok::Op("="))?;
        }
        let fname = self.ident("an aggregation function")?.to_ascii_lowercase();
        self.expect(Tok::LParen)?;
        let mut args = Vec::new();
        let mut star = false;
        while self.peek() != Some(&Tok::RParen) {
            if self.peek() == Some(&Tok::Op("*")) {
                self.pos += 1;
                star = true;
            } else {
                args.push(self.expr()?);
            }
            if self.peek() != Some(&Tok::Comma) {
                break;
            }
            self.pos += 1;
        }
        self.expect(Tok::RParen)?;
        let arity = |n: usize, p: &P| {
            if args.len() == n && !star {
                Ok(())
            } else {
                Err(p.err(format!("{fname}() takes {n} argument(s), got {}", args.len() + star as usize)))
            }
        };
        let col_name = |prefix: &str| match args.first() {
            Some(Expr::Col(c)) => format!("{prefix}_{c}"),
            _ => prefix.to_string(),
        };
        let first = args.first().cloned();
        let second = args.get(1).cloned();
        let (default_name, agg) = match fname.as_str() {
            "count" => {
                arity(0, self)?;
                ("count_".to_string(), Agg::Count)
            }
            "countif" => (
                arity(1, self).map(|_| "countif_".to_string())?,
                Agg::CountIf(first.unwrap_or(Expr::Lit(KV::Null))),
            ),
            "dcount" | "min" | "max" | "sum" | "avg" | "make_set" | "makeset" | "make_list" | "makelist" | "any" | "take_any" => {
                // dcount's optional accuracy argument is accepted and ignored; make_set/make_list take a size cap.
                let two = matches!(fname.as_str(), "dcount" | "make_set" | "makeset" | "make_list" | "makelist");
                if !(args.len() == 1 || (two && args.len() == 2)) || star {
                    arity(1, self)?;
                }
                let cap = match args.get(1) {
                    Some(Expr::Lit(KV::Long(n))) if *n > 0 => *n as usize,
                    Some(_) if fname != "dcount" => {
                        return Err(self.err(format!("{fname}()'s size limit must be a positive number")));
                    }
                    _ => 1_048_576,
                };
                let e = first.unwrap_or(Expr::Lit(KV::Null));
                match fname.as_str() {
                    "dcount" => (col_name("dcount"), Agg::DCount(e)),
                    "min" => (col_name("min"), Agg::Min(e)),
                    "max" => (col_name("max"), Agg::Max(e)),
                    "sum" => (col_name("sum"), Agg::Sum(e)),
                    "avg" => (col_name("avg"), Agg::Avg(e)),
                    "make_set" | "makeset" => (col_name("set"), Agg::MakeSet(e, cap)),
                    "make_list" | "makelist" => (col_name("list"), Agg::MakeList(e, cap)),
                    _ => (col_name("any"), Agg::Any(e)),
                }
            }
            "dcountif" | "sumif" => {
                arity(2, self)?;
                let (e, pred) = (first.unwrap_or(Expr::Lit(KV::Null)), second.unwrap_or(Expr::Lit(KV::Null)));
                if fname == "dcountif" {
                    (col_name("dcountif"), Agg::DCountIf(e, pred))
                } else {
                    (col_name("sumif"), Agg::SumIf(e, pred))
                }
            }
            "arg_max" | "argmax" | "arg_min" | "argmin" => {
                let mut it = args.into_iter();
                let by = it
                    .next()
                    .ok_or_else(|| self.err(format!("{fname}() needs the expression to maximise")))?;
                let mut cols = Vec::new();
                for e in it {
                    match e {
                        Expr::Col(c) => cols.push(c),
                        _ => return Err(self.err(format!("{fname}() takes column names (or *) after its first argument"))),
                    }
                }
                let min = fname.contains("min");
                let prefix = if min { "min" } else { "max" };
                let name = match &by {
                    Expr::Col(c) => c.clone(),
                    _ => format!("{prefix}_"),
                };
                return Ok((
                    name,
                    Agg::ArgMax {
                        by,
                        cols,
                        star,
                        min,
                        names: std::mem::take(&mut names),
                    },
                ));
            }
            other => {
                self.pos -= 1;
                return Err(self.err(format!("the aggregation '{other}' is not supported ({SUPPORTED})")));
            }
        };
        if names.len() > 1 {
            return Err(self.err(format!("{fname}() gives one column; name it with 'Name = {fname}(…)'")));
        }
        Ok((names.pop().unwrap_or(default_name), agg))
    }

    fn summarize(&mut self) -> R<Stage> {
        let mut aggs = Vec::new();
        if !self.is_word("by") {
            loop {
                aggs.push(self.aggregation()?);
                if self.peek() != Some(&Tok::Comma) {
                    break;
                }
                self.pos += 1;
            }
        }
        let mut by = Vec::new();
        if self.eat_word("by") {
            for (name, e) in self.assignments(false)? {
                let name = match &e {
                    Expr::Call(f, args) if f == "bin" && !name.contains('=') => match args.first() {
                        Some(Expr::Col(c)) => c.clone(),
                        _ => name,
                    },
                    _ => name,
                };
                by.push((name, e));
            }
        }
        if aggs.is_empty() && by.is_empty() {
            return Err(self.err("summarize needs an aggregation or a 'by' clause".into()));
        }
        Ok(Stage::Summarize { aggs, by })
    }

    fn join(&mut self) -> R<Stage> {
        let mut kind = JoinKind::InnerUnique;
        if self.eat_word("kind") {
            self.expect(Tok::Op("="))?;
            let k = self.ident("a join kind")?.to_ascii_lowercase();
            kind = match k.as_str() {
                "inner" => JoinKind::Inner,
                "innerunique" => JoinKind::InnerUnique,
                "leftouter" => JoinKind::LeftOuter,
                "rightouter" => JoinKind::RightOuter,
                "fullouter" => JoinKind::FullOuter,
                "leftsemi" => JoinKind::LeftSemi,
                "leftanti" | "anti" | "leftantisemi" => JoinKind::LeftAnti,
                "rightsemi" => JoinKind::RightSemi,
                "rightanti" | "rightantisemi" => JoinKind::RightAnti,
                other => {
                    return Err(self.err(format!(
                        "join kind '{other}' is not supported (inner, innerunique, leftouter, rightouter, fullouter, leftsemi, leftanti, rightsemi, rightanti)"
                    )));
                }
            };
        }
        let right = if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let q = self.query()?;
            self.expect(Tok::RParen)?;
            q
        } else {
            Query {
                lets: vec![],
                table: self.ident("a table or (query)")?,
                stages: vec![],
            }
        };
        if !self.eat_word("on") {
            return Err(self.err("expected 'on' after the right side of join".into()));
        }
        let mut on = Vec::new();
        loop {
            if self.is_word("$left") {
                self.pos += 1;
                self.expect(Tok::Dot)?;
                let l = self.ident("a column name")?;
                self.expect(Tok::Op("=="))?;
                if !self.eat_word("$right") {
                    return Err(self.err("expected $right.Column".into()));
                }
                self.expect(Tok::Dot)?;
                let r = self.ident("a column name")?;
                on.push((l, r));
            } else {
                let c = self.ident("a key column")?;
                on.push((c.clone(), c));
            }
            if self.peek() != Some(&Tok::Comma) {
                break;
            }
            self.pos += 1;
        }
        Ok(Stage::Join {
            kind,
            right: Box::new(right),
            on,
        })
    }

    // Scalar expressions: or < and < not < comparison < additive < multiplicative < unary < primary.
    fn expr(&mut self) -> R<Expr> {
        self.depth += 1;
        if self.depth > 64 {
            return Err(self.err("expression nested too deeply".into()));
        }
        let mut l = self.and()?;
        while self.eat_word("or") {
            let r = self.and()?;
            l = Expr::Bin(BinOp::Or, Box::new(l), Box::new(r));
        }
        self.depth -= 1;
        Ok(l)
    }
    fn and(&mut self) -> R<Expr> {
        let mut l = self.cmp()?;
        while self.eat_word("and") {
            let r = self.cmp()?;
            l = Expr::Bin(BinOp::And, Box::new(l), Box::new(r));
        }
        Ok(l)
    }
    fn cmp(&mut self) -> R<Expr> {
        let l = self.add()?;
        let op = match self.peek().cloned() {
            Some(Tok::Op(o)) => match o {
                "==" => BinOp::Eq,
                "!=" => BinOp::Ne,
                "=~" => BinOp::EqCi,
                "!~" => BinOp::NeCi,
                "<" => BinOp::Lt,
                "<=" => BinOp::Le,
                ">" => BinOp::Gt,
                ">=" => BinOp::Ge,
                "=" => return Err(self.err("'=' is assignment; compare with '=='".into())),
                _ => return Ok(l),
            },
            Some(Tok::Ident(w)) => {
                let lw = w.to_ascii_lowercase();
                let (negated, base) = match lw.strip_prefix('!') {
                    Some(b) => (true, b.to_string()),
                    None => (false, lw.clone()),
                };
                let (word, cs) = match base.strip_suffix("_cs") {
                    Some(w) => (w, true),
                    None => (base.as_str(), false),
                };
                let sop = match word {
                    "has" => Some(StrOp::Has),
                    "contains" => Some(StrOp::Contains),
                    "startswith" => Some(StrOp::StartsWith),
                    "endswith" => Some(StrOp::EndsWith),
                    _ => None,
                };
                if let Some(op) = sop {
                    BinOp::Str { op, negated, cs }
                } else if base == "between" {
                    self.pos += 1;
                    self.expect(Tok::LParen)?;
                    let lo = self.expr()?;
                    self.expect(Tok::Op(".."))?;
                    let hi = self.expr()?;
                    self.expect(Tok::RParen)?;
                    return Ok(Expr::Between {
                        expr: Box::new(l),
                        lo: Box::new(lo),
                        hi: Box::new(hi),
                        negated,
                    });
                } else if base == "matches" && !negated {
                    self.pos += 1;
                    if !self.eat_word("regex") {
                        return Err(self.err("expected 'regex' after 'matches'".into()));
                    }
                    let r = self.add()?;
                    return Ok(Expr::Bin(BinOp::Regex, Box::new(l), Box::new(r)));
                } else if (base == "has_any" || base == "has_all") && !negated {
                    self.pos += 1;
                    let list = self.paren_list()?;
                    return Ok(Expr::HasAny {
                        expr: Box::new(l),
                        list,
                        all: base == "has_all",
                    });
                } else if base == "in" || base == "in~" {
                    self.pos += 1;
                    let list = self.paren_list()?;
                    return Ok(Expr::In {
                        expr: Box::new(l),
                        list,
                        negated,
                        ci: base == "in~",
                    });
                } else if negated {
                    return Err(self.err(format!("unknown operator '{w}'")));
                } else {
                    return Ok(l);
                }
            }
            _ => return Ok(l),
        };
        self.pos += 1;
        let r = self.add()?;
        Ok(Expr::Bin(op, Box::new(l), Box::new(r)))
    }
    /// `(expr, expr, …)`: the list of `in`, `has_any` and `has_all`.
    fn paren_list(&mut self) -> R<Vec<Expr>> {
        self.expect(Tok::LParen)?;
        let mut list = vec![self.expr()?];
        while self.peek() == Some(&Tok::Comma) {
            self.pos += 1;
            list.push(self.expr()?);
        }
        self.expect(Tok::RParen)?;
        Ok(list)
    }
    fn add(&mut self) -> R<Expr> {
        let mut l = self.mul()?;
        while let Some(Tok::Op(o @ ("+" | "-"))) = self.peek().cloned() {
            self.pos += 1;
            let r = self.mul()?;
            l = Expr::Bin(if o == "+" { BinOp::Add } else { BinOp::Sub }, Box::new(l), Box::new(r));
        }
        Ok(l)
    }
    fn mul(&mut self) -> R<Expr> {
        let mut l = self.unary()?;
        while let Some(Tok::Op(o @ ("*" | "/"))) = self.peek().cloned() {
            self.pos += 1;
            let r = self.unary()?;
            l = Expr::Bin(if o == "*" { BinOp::Mul } else { BinOp::Div }, Box::new(l), Box::new(r));
        }
        Ok(l)
    }
    fn unary(&mut self) -> R<Expr> {
        if self.peek() == Some(&Tok::Op("-")) {
            self.pos += 1;
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        self.primary()
    }
    /// A primary expression and any `[key]` / `.name` accessors after it.
    fn primary(&mut self) -> R<Expr> {
        let mut e = self.atom()?;
        loop {
            match self.peek() {
                Some(Tok::LBracket) => {
                    self.pos += 1;
                    let key = self.expr()?;
                    self.expect(Tok::RBracket)?;
                    e = Expr::Index(Box::new(e), Box::new(key));
                }
                Some(Tok::Dot) if matches!(self.toks.get(self.pos + 1), Some((Tok::Ident(_), _))) => {
                    self.pos += 1;
                    let name = self.ident("a property name")?;
                    e = Expr::Index(Box::new(e), Box::new(Expr::Lit(KV::Str(name))));
                }
                _ => return Ok(e),
            }
        }
    }
    fn atom(&mut self) -> R<Expr> {
        match self.next() {
            None => {
                self.pos -= 1;
                Err(self.err("expected an expression, found the end of the query".into()))
            }
            Some(Tok::Str(s)) => Ok(Expr::Lit(KV::Str(s))),
            Some(Tok::Long(n)) => Ok(Expr::Lit(KV::Long(n))),
            Some(Tok::Real(n)) => Ok(Expr::Lit(KV::Real(n))),
            Some(Tok::Span(d)) => Ok(Expr::Lit(KV::Span(d))),
            Some(Tok::Date(d)) => Ok(Expr::Lit(KV::Date(d))),
            Some(Tok::Dyn(v)) => Ok(Expr::Lit(KV::Dyn(v))),
            Some(Tok::LParen) => {
                let e = self.expr()?;
                self.expect(Tok::RParen)?;
                Ok(e)
            }
            Some(Tok::Ident(w)) => {
                let lw = w.to_ascii_lowercase();
                match lw.as_str() {
                    "true" => return Ok(Expr::Lit(KV::Bool(true))),
                    "false" => return Ok(Expr::Lit(KV::Bool(false))),
                    "not" if self.peek() == Some(&Tok::LParen) => {
                        self.pos += 1;
                        let e = self.expr()?;
                        self.expect(Tok::RParen)?;
                        return Ok(Expr::Not(Box::new(e)));
                    }
                    _ => {}
                }
                if lw == "typeof" && self.peek() == Some(&Tok::LParen) {
                    // `typeof(string)`: a type name, as extractjson() and mv-expand take.
                    self.pos += 1;
                    let ty = self.ident("a type name")?.to_ascii_lowercase();
                    self.expect(Tok::RParen)?;
                    return Ok(Expr::Lit(KV::Str(ty)));
                }
                if self.peek() == Some(&Tok::LParen) {
                    self.pos += 1;
                    let mut args = Vec::new();
                    if self.peek() != Some(&Tok::RParen) {
                        args.push(self.expr()?);
                        while self.peek() == Some(&Tok::Comma) {
                            self.pos += 1;
                            args.push(self.expr()?);
                        }
                    }
                    self.expect(Tok::RParen)?;
                    // (fewest, most) arguments.
                    let (least, most) = match lw.as_str() {
                        "ago"
                        | "tolower"
                        | "toupper"
                        | "isempty"
                        | "isnotempty"
                        | "isnull"
                        | "isnotnull"
                        | "strlen"
                        | "tostring"
                        | "tolong"
                        | "toint"
                        | "parse_json"
                        | "todynamic"
                        | "array_length"
                        | "parse_url"
                        | "url_decode"
                        | "toreal"
                        | "todouble"
                        | "tobool"
                        | "todatetime"
                        | "base64_decode_tostring"
                        | "startofday"
                        | "dayofweek"
                        | "hourofday"
                        | "ipv4_is_private"
                        | "trim_start"
                        | "trim_end"
                        | "reverse" => (1, 1),
                        "now" => (0, 0),
                        "bin" | "floor" | "indexof" | "set_has_element" => (2, 2),
                        "iff" | "iif" | "replace_string" | "datetime_diff" => (3, 3),
                        "substring" | "extractjson" | "split" => (2, 3),
                        "extract" => (3, 4),
                        "strcat" | "coalesce" | "pack_array" | "min_of" | "max_of" => (1, 64),
                        "pack" | "bag_pack" => (2, 64),
                        other => return Err(self.err(format!("the function '{other}' is not supported by the emulator's KQL subset"))),
                    };
                    if args.len() < least || args.len() > most {
                        let takes = if least == most {
                            least.to_string()
                        } else {
                            format!("{least} to {most}")
                        };
                        return Err(self.err(format!("{lw}() takes {takes} argument(s), got {}", args.len())));
                    }
                    return Ok(Expr::Call(lw, args));
                }
                if w.starts_with('!') {
                    self.pos -= 1;
                    return Err(self.err(format!("unexpected operator '{w}'")));
                }
                Ok(Expr::Col(w))
            }
            Some(t) => {
                self.pos -= 1;
                Err(self.err(format!("expected an expression, found {}", describe(&t))))
            }
        }
    }
}
