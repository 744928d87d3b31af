//! msticpy query template files and the store that holds them.
//!
//! A file has `metadata` (data environments, families), `defaults.parameters`, and `sources` (one entry a query,
//! with `description`, `args.query` and `parameters` merged over the defaults). Placeholders `{name}` are replaced
//! by rendered parameter values; `{{` and `}}` are literal braces.
//!
//! Escaping follows the query language: a value placed inside an OData string literal (`'…'`) has `'` doubled; inside
//! a KQL string literal (`"…"` or `'…'`) it is backslash-escaped. So a value can never change a query's structure. A
//! value outside quotes (such as `path`, `add_query_items`, or the KQL of `Hunting.run`) is inserted as written, by
//! design. Times render as `2024-05-01T00:00:00Z` in OData and `datetime(2024-05-01T00:00:00Z)` in KQL.
//!
//! Extensions over msticpy (msticpy ignores them; its own files load unchanged):
//! - a parameter's `format` applies only to a non-empty value, so an optional clause disappears when its parameter
//!   is empty;
//! - `{or:a,b,c}` / `{and:a,b,c}` join the formatted clauses of the non-empty parameters among `a, b, c` with
//!   `or`/`and` in parentheses, and fail naming them when all are empty;
//! - `args.language: kql` (or file `metadata.query_language: kql`) makes a query an advanced-hunting query, sent as a
//!   POST to `/security/runHuntingQuery` with a Timespan of `{start}/{end}` when it has those parameters;
//! - `metadata.table_columns` lists the columns a terminal table shows first.

pub mod docs;
mod model;
mod render;
mod store;
mod suggest;
#[cfg(test)]
mod tests;
pub mod time_expr;

pub use model::{Language, ParamType, Parameter, QueryTemplate, RenderedQuery, evidence_names};
pub use store::{BUILTIN_FILES, FileOutcome, QueryStore};
pub use time_expr::parse_time;
