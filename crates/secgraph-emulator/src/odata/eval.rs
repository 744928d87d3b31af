//! Evaluates a parsed `$filter` against one JSON item.
//!
//! Semantics follow OData v4: a missing property is `null`; comparisons with `null` are false except `eq null` /
//! `ne null`; a string property compared with a date-time literal is read as a date-time; string comparison is
//! ordinal (case-sensitive), so case-insensitive matching is written with `tolower()`.

use super::parse::{BinOp, Expr, Func, LambdaKind, Literal};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::cmp::Ordering;
use std::fmt;

/// A filter that parsed but cannot be applied (a type mismatch the real service also rejects).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError(pub String);

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EvalError {}

#[derive(Debug, Clone)]
enum V<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(std::borrow::Cow<'a, str>),
    Date(DateTime<Utc>),
    Json(&'a Value),
}

/// Whether `item` satisfies `expr`.
///
/// ```
/// use secgraph_emulator::odata::{matches, parse_filter};
/// let item = serde_json::json!({"severity": "high", "tags": ["a", "b"]});
/// let f = parse_filter("severity eq 'high' and tags/any(t: t eq 'b')").unwrap();
/// assert!(matches(&f, &item).unwrap());
/// ```
pub fn matches(expr: &Expr, item: &Value) -> Result<bool, EvalError> {
    let mut scope = Vec::new();
    truthy(&eval(expr, item, &mut scope)?)
}

type Scope<'a> = Vec<(&'a str, &'a Value)>;

fn truthy(v: &V<'_>) -> Result<bool, EvalError> {
    match v {
        V::Bool(b) => Ok(*b),
        V::Null => Ok(false),
        V::Json(Value::Bool(b)) => Ok(*b),
        other => Err(EvalError(format!(
            "the filter must be a boolean condition, found {}",
            type_name(other)
        ))),
    }
}

fn type_name(v: &V<'_>) -> &'static str {
    match v {
        V::Null => "null",
        V::Bool(_) => "a boolean",
        V::Num(_) => "a number",
        V::Str(_) => "a string",
        V::Date(_) => "a date-time",
        V::Json(Value::Array(_)) => "a collection",
        V::Json(_) => "a complex value",
    }
}

fn from_json(v: &Value) -> V<'_> {
    match v {
        Value::Null => V::Null,
        Value::Bool(b) => V::Bool(*b),
        Value::Number(n) => V::Num(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => V::Str(std::borrow::Cow::Borrowed(s)),
        other => V::Json(other),
    }
}

fn resolve<'a>(path: &[String], item: &'a Value, scope: &Scope<'a>) -> Option<&'a Value> {
    let (mut cur, rest) = match path.first() {
        Some(first) => match scope.iter().rev().find(|(name, _)| *name == first.as_str()) {
            Some((_, v)) => (*v, &path[1..]),
            None => (item, path),
        },
        None => return None,
    };
    for seg in rest {
        cur = cur.as_object()?.get(seg.as_str())?;
    }
    Some(cur)
}

fn eval<'a>(expr: &'a Expr, item: &'a Value, scope: &mut Scope<'a>) -> Result<V<'a>, EvalError> {
    Ok(match expr {
        Expr::Literal(l) => match l {
            Literal::Null => V::Null,
            Literal::Bool(b) => V::Bool(*b),
            Literal::Int(n) => V::Num(*n as f64),
            Literal::Float(f) => V::Num(*f),
            Literal::String(s) => V::Str(std::borrow::Cow::Borrowed(s)),
            Literal::DateTime(d) => V::Date(d.with_timezone(&Utc)),
        },
        Expr::Path(p) => resolve(p, item, scope).map(from_json).unwrap_or(V::Null),
        Expr::Not(e) => {
            let v = eval(e, item, scope)?;
            match v {
                V::Null => V::Null,
                other => V::Bool(!truthy(&other)?),
            }
        }
        Expr::Binary(BinOp::And, a, b) => {
            let l = eval(a, item, scope)?;
            if !truthy(&l)? {
                return Ok(V::Bool(false));
            }
            V::Bool(truthy(&eval(b, item, scope)?)?)
        }
        Expr::Binary(BinOp::Or, a, b) => {
            let l = eval(a, item, scope)?;
            if truthy(&l)? {
                return Ok(V::Bool(true));
            }
            V::Bool(truthy(&eval(b, item, scope)?)?)
        }
        Expr::Binary(op, a, b) => {
            let l = eval(a, item, scope)?;
            let r = eval(b, item, scope)?;
            V::Bool(compare(*op, &l, &r)?)
        }
        Expr::In(a, list) => {
            let l = eval(a, item, scope)?;
            let mut found = false;
            for e in list {
                let r = eval(e, item, scope)?;
                if compare(BinOp::Eq, &l, &r)? {
                    found = true;
                    break;
                }
            }
            V::Bool(found)
        }
        Expr::Call(func, args) => call(*func, args, item, scope)?,
        Expr::Lambda { path, kind, var, body } => {
            let coll = match resolve(path, item, scope) {
                None | Some(Value::Null) => return Ok(V::Bool(*kind == LambdaKind::All)),
                Some(Value::Array(a)) => a,
                Some(_) => {
                    return Err(EvalError(format!(
                        "'{}' is not a collection; any()/all() apply only to collections",
                        path.join("/")
                    )));
                }
            };
            let (Some(var), Some(body)) = (var, body) else {
                return Ok(V::Bool(!coll.is_empty()));
            };
            let mut result = *kind == LambdaKind::All;
            for el in coll {
                scope.push((var.as_str(), el));
                let r = eval(body, item, scope).and_then(|v| truthy(&v));
                scope.pop();
                let hit = r?;
                match kind {
                    LambdaKind::Any if hit => {
                        result = true;
                        break;
                    }
                    LambdaKind::All if !hit => {
                        result = false;
                        break;
                    }
                    _ => {}
                }
            }
            V::Bool(result)
        }
    })
}

fn as_str<'b>(v: &'b V<'_>, func: &str) -> Result<Option<&'b str>, EvalError> {
    match v {
        V::Null => Ok(None),
        V::Str(s) => Ok(Some(s)),
        other => Err(EvalError(format!("{func}() expects a string, found {}", type_name(other)))),
    }
}

fn call<'a>(func: Func, args: &'a [Expr], item: &'a Value, scope: &mut Scope<'a>) -> Result<V<'a>, EvalError> {
    let mut vals = Vec::with_capacity(args.len());
    for a in args {
        vals.push(eval(a, item, scope)?);
    }
    let name = format!("{func:?}").to_lowercase();
    Ok(match func {
        Func::ToLower | Func::ToUpper => match as_str(&vals[0], &name)? {
            None => V::Null,
            Some(s) => V::Str(std::borrow::Cow::Owned(if func == Func::ToLower {
                s.to_lowercase()
            } else {
                s.to_uppercase()
            })),
        },
        Func::StartsWith | Func::EndsWith | Func::Contains => {
            let (Some(h), Some(n)) = (as_str(&vals[0], &name)?, as_str(&vals[1], &name)?) else {
                return Ok(V::Bool(false));
            };
            V::Bool(match func {
                Func::StartsWith => h.starts_with(n),
                Func::EndsWith => h.ends_with(n),
                _ => h.contains(n),
            })
        }
    })
}

fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|d| d.with_timezone(&Utc))
}

fn compare(op: BinOp, l: &V<'_>, r: &V<'_>) -> Result<bool, EvalError> {
    let ord: Option<Ordering> = match (l, r) {
        (V::Null, V::Null) => Some(Ordering::Equal),
        (V::Null, _) | (_, V::Null) => None,
        (V::Date(a), V::Date(b)) => Some(a.cmp(b)),
        (V::Date(a), V::Str(s)) => parse_date(s).map(|b| a.cmp(&b)),
        (V::Str(s), V::Date(b)) => parse_date(s).map(|a| a.cmp(b)),
        (V::Num(a), V::Num(b)) => a.partial_cmp(b),
        (V::Str(a), V::Str(b)) => Some(a.as_ref().cmp(b.as_ref())),
        (V::Bool(a), V::Bool(b)) => Some(a.cmp(b)),
        (V::Json(_), _) | (_, V::Json(_)) => {
            return Err(EvalError(format!(
                "cannot compare {} with {}; use any()/all() for collections",
                type_name(l),
                type_name(r)
            )));
        }
        (a, b) => {
            return Err(EvalError(format!("cannot compare {} with {}", type_name(a), type_name(b))));
        }
    };
    Ok(match (op, ord) {
        (BinOp::Eq, o) => o == Some(Ordering::Equal),
        (BinOp::Ne, o) => o != Some(Ordering::Equal),
        (_, None) => false,
        (BinOp::Gt, Some(o)) => o == Ordering::Greater,
        (BinOp::Ge, Some(o)) => o != Ordering::Less,
        (BinOp::Lt, Some(o)) => o == Ordering::Less,
        (BinOp::Le, Some(o)) => o != Ordering::Greater,
        (BinOp::And | BinOp::Or, _) => false,
    })
}
