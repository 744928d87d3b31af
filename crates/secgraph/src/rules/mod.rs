//! Detection as code: Defender XDR custom detection rules (`/security/rules/detectionRules`) kept as YAML files,
//! checked locally, and planned / applied / pulled across tenants.
//!
//! - [`mod@file`]: the rule file format ([`Rule`]), loading a folder with every problem reported by file, line and
//!   field, and the local checks: required fields, allowed periods and severities, the KQL parses (`secgraph-kql`,
//!   the parser the emulator's hunting engine runs), and the query returns what a detection needs (`Timestamp`,
//!   `ReportId`, and the column each impacted asset names; no aggregation).
//! - [`graph`]: a rule as Graph's `detectionRule` and back. A rule is matched across tenants by its `key`, stored in
//!   the rule itself as the query's first line (`// secgraph-rule: key=… tags=…`), never by display name.
//! - [`plan`]: what would change in one tenant (create / update / delete / unchanged, with the fields that differ),
//!   carrying it out with a check for concurrent edits (`lastModifiedDateTime` read again before an update), and
//!   the same over many tenants.
//! - [`from_query`]: a hunting-library query turned into a rule file, or the reason it cannot be a detection.

pub mod file;
pub mod from_query;
pub mod graph;
pub mod plan;

pub use file::{Asset, Rule, RuleFile, load};
pub use plan::{Action, Applied, Change, FieldDiff, Outcome, RemoteRule, TenantResult};
