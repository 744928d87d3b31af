//! Named, parameterised queries in msticpy's YAML template format: loading, lookup and rendering.

pub mod docs;
pub mod template;
pub mod time_expr;

pub use template::{ParamType, Parameter, QueryStore, QueryTemplate, RenderedQuery};
