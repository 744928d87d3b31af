//! Lexer and recursive-descent parser for `$filter` expressions.
//!
//! Precedence, loosest first: `or`, `and`, `not`, comparison (`eq ne gt ge lt le in`), primary. `not` takes a whole
//! comparison (`not a eq 'x'` means `not (a eq 'x')`), which is how Graph's documentation writes it.

use chrono::{DateTime, FixedOffset};
use std::fmt;

/// A parsed `$filter` expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A constant.
    Literal(Literal),
    /// A property path such as `severity` or `fileHash/hashValue`; inside a lambda the first segment may be its variable.
    Path(Vec<String>),
    /// `not e`.
    Not(Box<Expr>),
    /// `a op b` (comparisons and `and`/`or`).
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `e in (a, b, …)`.
    In(Box<Expr>, Vec<Expr>),
    /// A built-in function call, e.g. `startswith(title, 'x')`.
    Call(Func, Vec<Expr>),
    /// `path/any(v: body)`, `path/all(v: body)` or `path/any()`.
    Lambda {
        /// The collection property the lambda ranges over.
        path: Vec<String>,
        /// `any` or `all`.
        kind: LambdaKind,
        /// The range variable (`v` in `any(v: …)`); `None` for `any()`.
        var: Option<String>,
        /// The condition; `None` for `any()` (is the collection non-empty).
        body: Option<Box<Expr>>,
    },
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A number with a fraction or an exponent.
    Float(f64),
    /// A quoted string (`''` unescaped).
    String(String),
    /// An unquoted date-time with an offset (`2026-12-01T00:00:00Z`).
    DateTime(DateTime<FixedOffset>),
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `and`.
    And,
    /// `or`.
    Or,
    /// `eq`.
    Eq,
    /// `ne`.
    Ne,
    /// `gt`.
    Gt,
    /// `ge`.
    Ge,
    /// `lt`.
    Lt,
    /// `le`.
    Le,
}

/// Which lambda operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LambdaKind {
    /// `any`: some element matches.
    Any,
    /// `all`: every element matches.
    All,
}

/// The built-in functions the evaluator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `tolower(s)`.
    ToLower,
    /// `toupper(s)`.
    ToUpper,
    /// `startswith(s, prefix)`.
    StartsWith,
    /// `endswith(s, suffix)`.
    EndsWith,
    /// `contains(s, part)`.
    Contains,
}

impl Func {
    fn from_name(name: &str) -> Option<(Func, usize)> {
        Some(match name {
            "tolower" => (Func::ToLower, 1),
            "toupper" => (Func::ToUpper, 1),
            "startswith" => (Func::StartsWith, 2),
            "endswith" => (Func::EndsWith, 2),
            "contains" => (Func::Contains, 2),
            _ => return None,
        })
    }
}

/// A syntax error: what was wrong and the character offset where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// What was wrong.
    pub message: String,
    /// The character offset where it was found.
    pub position: usize,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at position {}", self.message, self.position)
    }
}

impl std::error::Error for ParseError {}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    DateTime(DateTime<FixedOffset>),
    LParen,
    RParen,
    Comma,
    Colon,
    Slash,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s) => write!(f, "'{s}'"),
            Tok::Str(s) => write!(f, "string '{s}'"),
            Tok::Int(n) => write!(f, "number {n}"),
            Tok::Float(n) => write!(f, "number {n}"),
            Tok::DateTime(d) => write!(f, "date-time {}", d.to_rfc3339()),
            Tok::LParen => f.write_str("'('"),
            Tok::RParen => f.write_str("')'"),
            Tok::Comma => f.write_str("','"),
            Tok::Colon => f.write_str("':'"),
            Tok::Slash => f.write_str("'/'"),
        }
    }
}

fn err<T>(message: impl Into<String>, position: usize) -> Result<T, ParseError> {
    Err(ParseError {
        message: message.into(),
        position,
    })
}

fn lex(input: &str) -> Result<Vec<(Tok, usize)>, ParseError> {
    let bytes = input.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'(' => out.push((Tok::LParen, i)),
            b')' => out.push((Tok::RParen, i)),
            b',' => out.push((Tok::Comma, i)),
            b':' => out.push((Tok::Colon, i)),
            b'/' => out.push((Tok::Slash, i)),
            b'\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(rest) = input.get(i..) else {
                        return err("unterminated string literal", start);
                    };
                    let Some(ch) = rest.chars().next() else {
                        return err("unterminated string literal", start);
                    };
                    if ch == '\'' {
                        if bytes.get(i + 1) == Some(&b'\'') {
                            s.push('\'');
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    s.push(ch);
                    i += ch.len_utf8();
                }
                out.push((Tok::Str(s), start));
            }
            b'"' => return err("string literals use single quotes ('...'), not double quotes", i),
            b'-' | b'0'..=b'9' => {
                let mut j = i + 1;
                while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || matches!(bytes[j], b':' | b'.' | b'-' | b'+')) {
                    j += 1;
                }
                let word = &input[i..j];
                if word == "-" {
                    return err("unexpected '-'", i);
                }
                let tok = if let Ok(n) = word.parse::<i64>() {
                    Tok::Int(n)
                } else if let Ok(d) = DateTime::parse_from_rfc3339(word) {
                    Tok::DateTime(d)
                } else if word.len() > 4 && word.as_bytes().get(4) == Some(&b'-') && word.contains('T') {
                    return err(
                        format!("invalid date-time literal '{word}' (expected e.g. 2024-01-31T00:00:00Z)"),
                        i,
                    );
                } else if let Ok(f) = word.parse::<f64>() {
                    if !f.is_finite() {
                        return err(format!("invalid number '{word}'"), i);
                    }
                    Tok::Float(f)
                } else {
                    return err(format!("invalid literal '{word}'"), i);
                };
                out.push((tok, start));
                i = j;
                continue;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b'@' || c == b'#' => {
                let mut j = i + 1;
                while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || matches!(bytes[j], b'_' | b'.' | b'@' | b'#')) {
                    j += 1;
                }
                out.push((Tok::Ident(input[i..j].to_string()), start));
                i = j;
                continue;
            }
            _ => {
                let ch = input[i..].chars().next().unwrap_or('?');
                return err(format!("unexpected character '{ch}'"), i);
            }
        }
        i += 1;
    }
    Ok(out)
}

const MAX_DEPTH: usize = 64;

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    end: usize,
    depth: usize,
    /// Range variables of the enclosing lambdas.
    vars: Vec<String>,
}

/// Parses a `$filter` value.
///
/// ```
/// use secgraph_emulator::odata::{parse_filter, Expr};
/// let e = parse_filter("severity eq 'high' and not(status eq 'resolved')").unwrap();
/// assert!(matches!(e, Expr::Binary(..)));
/// assert!(parse_filter("severity eq").is_err());
/// ```
pub fn parse_filter(input: &str) -> Result<Expr, ParseError> {
    let toks = lex(input)?;
    if toks.is_empty() {
        return err("empty filter expression", 0);
    }
    let mut p = Parser {
        toks,
        pos: 0,
        end: input.len(),
        depth: 0,
        vars: Vec::new(),
    };
    let e = p.or_expr()?;
    if let Some((t, at)) = p.toks.get(p.pos) {
        return err(format!("unexpected {t} after a complete expression"), *at);
    }
    Ok(e)
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }
    fn at(&self) -> usize {
        self.toks.get(self.pos).map(|(_, p)| *p).unwrap_or(self.end)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|(t, _)| t.clone());
        self.pos += 1;
        t
    }
    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(s)) if s == kw)
    }
    fn expect(&mut self, want: Tok) -> Result<(), ParseError> {
        let at = self.at();
        match self.next() {
            Some(t) if t == want => Ok(()),
            Some(t) => err(format!("expected {want}, found {t}"), at),
            None => err(format!("expected {want}, found end of expression"), at),
        }
    }
    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err("expression nested too deeply", self.at());
        }
        Ok(())
    }

    fn or_expr(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let mut left = self.and_expr()?;
        while self.keyword("or") {
            self.pos += 1;
            let right = self.and_expr()?;
            left = Expr::Binary(BinOp::Or, Box::new(left), Box::new(right));
        }
        self.depth -= 1;
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.not_expr()?;
        while self.keyword("and") {
            self.pos += 1;
            let right = self.not_expr()?;
            left = Expr::Binary(BinOp::And, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not_expr(&mut self) -> Result<Expr, ParseError> {
        if self.keyword("not") {
            self.pos += 1;
            self.enter()?;
            let inner = self.not_expr()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, ParseError> {
        let left = self.primary()?;
        let op = match self.peek() {
            Some(Tok::Ident(s)) => match s.as_str() {
                "eq" => BinOp::Eq,
                "ne" => BinOp::Ne,
                "gt" => BinOp::Gt,
                "ge" => BinOp::Ge,
                "lt" => BinOp::Lt,
                "le" => BinOp::Le,
                "in" => {
                    self.pos += 1;
                    return self.in_list(left);
                }
                "and" | "or" => return Ok(left),
                other => {
                    let hint = if other == "neq" { " (OData spells it 'ne')" } else { "" };
                    return err(format!("unknown operator '{other}'{hint}"), self.at());
                }
            },
            _ => return Ok(left),
        };
        self.pos += 1;
        let right = self.primary()?;
        Ok(Expr::Binary(op, Box::new(left), Box::new(right)))
    }

    fn in_list(&mut self, left: Expr) -> Result<Expr, ParseError> {
        self.expect(Tok::LParen)?;
        let mut items = vec![self.primary()?];
        while self.peek() == Some(&Tok::Comma) {
            self.pos += 1;
            items.push(self.primary()?);
        }
        self.expect(Tok::RParen)?;
        Ok(Expr::In(Box::new(left), items))
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let at = self.at();
        match self.next() {
            None => err("expected a value, found end of expression", at),
            Some(Tok::LParen) => {
                let e = self.or_expr()?;
                self.expect(Tok::RParen)?;
                Ok(e)
            }
            Some(Tok::Str(s)) => Ok(Expr::Literal(Literal::String(s))),
            Some(Tok::Int(n)) => Ok(Expr::Literal(Literal::Int(n))),
            Some(Tok::Float(n)) => Ok(Expr::Literal(Literal::Float(n))),
            Some(Tok::DateTime(d)) => Ok(Expr::Literal(Literal::DateTime(d))),
            Some(Tok::Ident(name)) => match name.as_str() {
                "null" => Ok(Expr::Literal(Literal::Null)),
                "true" => Ok(Expr::Literal(Literal::Bool(true))),
                "false" => Ok(Expr::Literal(Literal::Bool(false))),
                "and" | "or" | "eq" | "ne" | "gt" | "ge" | "lt" | "le" | "in" => {
                    err(format!("expected a value, found operator '{name}'"), at)
                }
                "not" => {
                    self.pos -= 1;
                    self.not_expr()
                }
                _ if self.peek() == Some(&Tok::LParen) => self.call(name, at),
                _ => self.path(name),
            },
            Some(t) => err(format!("expected a value, found {t}"), at),
        }
    }

    fn call(&mut self, name: String, at: usize) -> Result<Expr, ParseError> {
        let Some((func, arity)) = Func::from_name(&name) else {
            return err(format!("unknown function '{name}'"), at);
        };
        self.expect(Tok::LParen)?;
        let mut args = Vec::new();
        if self.peek() != Some(&Tok::RParen) {
            args.push(self.or_expr()?);
            while self.peek() == Some(&Tok::Comma) {
                self.pos += 1;
                args.push(self.or_expr()?);
            }
        }
        self.expect(Tok::RParen)?;
        if args.len() != arity {
            return err(format!("function '{name}' takes {arity} argument(s), got {}", args.len()), at);
        }
        Ok(Expr::Call(func, args))
    }

    fn path(&mut self, first: String) -> Result<Expr, ParseError> {
        let mut segs = vec![first];
        while self.peek() == Some(&Tok::Slash) {
            self.pos += 1;
            let at = self.at();
            match self.next() {
                Some(Tok::Ident(s)) if (s == "any" || s == "all") && self.peek() == Some(&Tok::LParen) => {
                    let kind = if s == "any" { LambdaKind::Any } else { LambdaKind::All };
                    return self.lambda(segs, kind, at);
                }
                Some(Tok::Ident(s)) => segs.push(s),
                Some(t) => return err(format!("expected a property name after '/', found {t}"), at),
                None => return err("expected a property name after '/'", at),
            }
        }
        Ok(Expr::Path(segs))
    }

    fn lambda(&mut self, path: Vec<String>, kind: LambdaKind, at: usize) -> Result<Expr, ParseError> {
        self.expect(Tok::LParen)?;
        if self.peek() == Some(&Tok::RParen) {
            self.pos += 1;
            if kind == LambdaKind::All {
                return err("all() needs a range variable and a condition, e.g. all(x: x eq 'a')", at);
            }
            return Ok(Expr::Lambda {
                path,
                kind,
                var: None,
                body: None,
            });
        }
        let vat = self.at();
        let var = match self.next() {
            Some(Tok::Ident(v)) => v,
            _ => return err("expected a range variable, e.g. any(x: x/name eq 'a')", vat),
        };
        self.expect(Tok::Colon)?;
        self.enter()?;
        self.vars.push(var.clone());
        let body = self.or_expr();
        let checked = body.and_then(|b| check_lambda_var(&b, &self.vars, vat).map(|_| b));
        self.vars.pop();
        let body = checked?;
        self.depth -= 1;
        self.expect(Tok::RParen)?;
        Ok(Expr::Lambda {
            path,
            kind,
            var: Some(var),
            body: Some(Box::new(body)),
        })
    }
}

/// A lambda body must refer to the collection item through its range variable; a bare property in the body
/// is what msticpy's built-ins got wrong, and Graph rejects it.
fn check_lambda_var(body: &Expr, vars: &[String], at: usize) -> Result<(), ParseError> {
    let var = vars.last().map(String::as_str).unwrap_or_default();
    let mut stray = None;
    super::visit_root_properties(body, &mut |p| {
        if !p.first().is_some_and(|f| vars.contains(f)) && stray.is_none() {
            stray = Some(p.join("/"));
        }
    });
    if let Some(s) = stray {
        return err(
            format!("'{s}' inside the lambda must be reached through the range variable '{var}' (e.g. {var}/{s})"),
            at,
        );
    }
    Ok(())
}
