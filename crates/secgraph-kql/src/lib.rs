//! The KQL subset Defender's advanced hunting documents, as a parser (`parse`) and its values (`value`), and what
//! can be known about a query without running it (`shape`: the columns it returns).
//!
//! Two users: the `secgraph` library checks KQL before sending it (detection rules, hunting queries), and the
//! emulator's hunting engine evaluates the same syntax tree. Neither depends on the other.

pub mod parse;
pub mod shape;
pub mod value;

pub use parse::{Query, SyntaxError, parse_query};
