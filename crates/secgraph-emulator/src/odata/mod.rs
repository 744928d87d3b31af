//! OData `$filter` support: a parser for the subset of OData v4 that Microsoft Graph's security endpoints accept,
//! and an evaluator over JSON items.
//!
//! The client library never uses this module; the emulator evaluates filters with it, and tests use it to check that
//! rendered queries are valid OData.

mod eval;
mod parse;

pub use eval::{EvalError, matches};
pub use parse::{BinOp, Expr, Func, LambdaKind, Literal, ParseError, parse_filter};

/// Calls `f` with every property path (first segment outside lambda variables) that `expr` reads from the item.
/// Used to enforce the per-endpoint list of filterable properties.
pub fn visit_root_properties(expr: &Expr, f: &mut dyn FnMut(&[String])) {
    fn walk(expr: &Expr, vars: &mut Vec<String>, f: &mut dyn FnMut(&[String])) {
        match expr {
            Expr::Literal(_) => {}
            Expr::Path(p) => {
                if !vars.iter().any(|v| Some(v) == p.first()) {
                    f(p);
                }
            }
            Expr::Not(e) => walk(e, vars, f),
            Expr::Binary(_, a, b) => {
                walk(a, vars, f);
                walk(b, vars, f);
            }
            Expr::In(a, list) => {
                walk(a, vars, f);
                for e in list {
                    walk(e, vars, f);
                }
            }
            Expr::Call(_, args) => {
                for a in args {
                    walk(a, vars, f);
                }
            }
            Expr::Lambda { path, var, body, .. } => {
                walk(&Expr::Path(path.clone()), vars, f);
                if let Some(body) = body {
                    vars.push(var.clone().unwrap_or_default());
                    walk(body, vars, f);
                    vars.pop();
                }
            }
        }
    }
    walk(expr, &mut Vec::new(), f);
}

#[cfg(test)]
mod tests;
