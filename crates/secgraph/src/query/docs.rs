//! docs/QUERIES.md, generated from the query files (a test keeps the committed copy current).

use super::{Language, QueryStore};
use std::fmt::Write;

/// The Markdown reference of every query in `store`.
pub fn markdown(store: &QueryStore) -> String {
    let mut out = String::from(
        "# Queries\n\nGenerated from the built-in query files (`crates/secgraph/src/query/builtin/`) by\n`cargo test -p secgraph --test queries` (set `UPDATE_DOCS=1` to rewrite it). Do not edit by hand.\n\n\
         Run one with `secgraph query NAME [--start T] [--end T] [-p name=value]…`; `secgraph queries show NAME` prints the\nsame details and the request for example values.\n",
    );
    let mut families: Vec<&str> = store.all().iter().map(|q| q.family.as_str()).collect();
    families.dedup();
    families.sort_unstable();
    families.dedup();
    for fam in families {
        let _ = write!(out, "\n## {fam}\n");
        for q in store.all().iter().filter(|q| q.family == fam) {
            let kind = match q.language {
                Language::OData => "OData GET",
                Language::Kql => "advanced hunting (KQL)",
                Language::AuditLog => "unified audit log search (asynchronous)",
            };
            let _ = write!(
                out,
                "\n### `{}`\n\n{}\n\n*{kind}*\n\n",
                q.full_name(),
                q.description.replace('\n', " ")
            );
            if !q.tags.is_empty() {
                let _ = write!(
                    out,
                    "Tags: {}\n\n",
                    q.tags.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ")
                );
            }
            let params: Vec<_> = q.parameters.iter().filter(|p| p.name != "path").collect();
            if !params.is_empty() {
                out.push_str("| parameter | type | default | aliases | description |\n|---|---|---|---|---|\n");
                for p in params {
                    let default = match &p.default {
                        None => "*required*".to_string(),
                        Some(serde_json::Value::String(s)) if s.is_empty() => "''".to_string(),
                        Some(v) => format!("`{}`", crate::output::cell_text(v)),
                    };
                    let _ = writeln!(
                        out,
                        "| `{}` | {} | {} | {} | {} |",
                        p.name,
                        p.kind.name(),
                        default,
                        p.aliases.join(", "),
                        match p.allowed.as_slice() {
                            [] => p.description.replace('|', "\\|"),
                            values => format!("{} — one of: {}", p.description.replace('|', "\\|"), values.join(", ")),
                        }
                    );
                }
                out.push('\n');
            }
            let _ = write!(out, "```\n{}\n```\n", q.query);
        }
    }
    out
}
