//! What a query returns, known without running it: the columns its last stages name, whether it aggregates, and
//! the source table whose columns pass through when no stage names them. Detection rules need it (Defender runs a
//! rule's query and requires `Timestamp`, `ReportId` and the impacted asset's column in its result).

use crate::parse::{Agg, Let, Query, Stage};

/// The columns a query returns, as far as its text tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// Columns the query names (projected, extended, grouped, aggregated), in order.
    pub columns: Vec<String>,
    /// The table whose own columns also pass through (no `project` or `summarize` after it), if any.
    pub all_of: Option<String>,
    /// Columns of `all_of` removed by `project-away` or renamed.
    pub removed: Vec<String>,
    /// Where the rows became groups (`summarize`, `distinct`, `count`): rows are no longer events.
    pub aggregated_by: Option<&'static str>,
}

impl Shape {
    /// Whether the result has the column: `Some(true)` or `Some(false)` when the text decides, `None` when it
    /// depends on the columns of `all_of` (a Defender table's own schema).
    pub fn has(&self, column: &str) -> Option<bool> {
        if self.columns.iter().any(|c| c.eq_ignore_ascii_case(column)) {
            return Some(true);
        }
        if self.all_of.is_some() && !self.removed.iter().any(|c| c.eq_ignore_ascii_case(column)) {
            return None;
        }
        Some(false)
    }

    fn open(table: &str) -> Shape {
        Shape {
            columns: Vec::new(),
            all_of: Some(table.to_string()),
            removed: Vec::new(),
            aggregated_by: None,
        }
    }

    fn known(columns: Vec<String>, aggregated_by: Option<&'static str>) -> Shape {
        Shape {
            columns,
            all_of: None,
            removed: Vec::new(),
            aggregated_by,
        }
    }

    fn add(&mut self, name: &str) {
        self.removed.retain(|c| !c.eq_ignore_ascii_case(name));
        if !self.columns.iter().any(|c| c.eq_ignore_ascii_case(name)) {
            self.columns.push(name.to_string());
        }
    }

    fn remove(&mut self, name: &str) {
        self.columns.retain(|c| !c.eq_ignore_ascii_case(name));
        if self.all_of.is_some() {
            self.removed.push(name.to_string());
        }
    }
}

/// The shape of a parsed query's result.
pub fn shape(query: &Query) -> Shape {
    shape_in(query, &query.lets)
}

fn shape_in(query: &Query, lets: &[(String, Let)]) -> Shape {
    let mut s = match lets.iter().rev().find(|(n, _)| *n == query.table) {
        Some((_, Let::Tabular(q))) => shape_in(q, lets),
        _ => Shape::open(&query.table),
    };
    for stage in &query.stages {
        apply(&mut s, stage, lets);
    }
    s
}

fn apply(s: &mut Shape, stage: &Stage, lets: &[(String, Let)]) {
    match stage {
        Stage::Where(_) | Stage::Take(_) | Stage::Top { .. } | Stage::Sort(_) => {}
        Stage::Project(cols) => *s = Shape::known(cols.iter().map(|(n, _)| n.clone()).collect(), s.aggregated_by),
        Stage::ProjectAway { patterns, keep } => {
            let matches = |c: &str| patterns.iter().any(|p| wildcard(p, c));
            if *keep {
                let kept: Vec<String> = s.columns.iter().filter(|c| matches(c)).cloned().collect();
                let named = patterns.iter().filter(|p| !p.contains('*')).cloned();
                let mut all = kept;
                for n in named {
                    if !all.iter().any(|c| c.eq_ignore_ascii_case(&n)) {
                        all.push(n);
                    }
                }
                *s = Shape::known(all, s.aggregated_by);
            } else {
                let gone: Vec<String> = s.columns.iter().filter(|c| matches(c)).cloned().collect();
                for c in gone {
                    s.remove(&c);
                }
                for p in patterns.iter().filter(|p| !p.contains('*')) {
                    s.remove(p);
                }
            }
        }
        Stage::ProjectRename(pairs) => {
            for (new, old) in pairs {
                s.remove(old);
                s.add(new);
            }
        }
        Stage::Extend(cols) => cols.iter().for_each(|(n, _)| s.add(n)),
        Stage::MvExpand { name, .. } => s.add(name),
        Stage::Summarize { aggs, by } => {
            let mut cols: Vec<String> = by.iter().map(|(n, _)| n.clone()).collect();
            for (name, agg) in aggs {
                match agg {
                    Agg::ArgMax { cols: picked, names, .. } if !names.is_empty() || !picked.is_empty() => {
                        cols.extend(names.iter().cloned());
                        cols.extend(picked.iter().filter(|c| !names.contains(c)).cloned());
                    }
                    _ => cols.push(name.clone()),
                }
            }
            *s = Shape::known(cols, Some("summarize"));
        }
        Stage::Distinct(cols) if cols.is_empty() => s.aggregated_by = Some("distinct"),
        Stage::Distinct(cols) => *s = Shape::known(cols.clone(), Some("distinct")),
        Stage::Count => *s = Shape::known(vec!["Count".into()], Some("count")),
        Stage::Join { right, .. } => {
            let r = shape_in(right, lets);
            for c in &r.columns {
                s.add(c);
            }
            if s.all_of.is_none() && r.all_of.is_some() {
                s.all_of = r.all_of.clone();
            }
            if s.aggregated_by.is_none() {
                s.aggregated_by = r.aggregated_by;
            }
        }
    }
}

/// `*` matches any run of characters, case-insensitively (as `project-away` patterns do).
fn wildcard(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.to_ascii_lowercase(), name.to_ascii_lowercase());
    let parts: Vec<&str> = p.split('*').collect();
    if parts.len() == 1 {
        return p == n;
    }
    let mut rest = n.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else { return false };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(at) = rest.find(part) else { return false };
            rest = &rest[at + part.len()..];
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{parse_query, top_level_stages};

    fn of(q: &str) -> Shape {
        shape(&parse_query(q).unwrap())
    }

    #[test]
    fn a_table_alone_passes_its_columns_through() {
        let s = of("DeviceProcessEvents | where FileName == 'x.exe' | take 10");
        assert_eq!(s.all_of.as_deref(), Some("DeviceProcessEvents"));
        assert_eq!(s.has("ReportId"), None);
        assert!(s.aggregated_by.is_none());
    }

    #[test]
    fn project_names_the_columns_and_extend_adds() {
        let s = of("DeviceProcessEvents | extend X = 1 | project Timestamp, DeviceName, Y = FileName | extend Z = 2");
        assert_eq!(s.columns, ["Timestamp", "DeviceName", "Y", "Z"]);
        assert_eq!(s.has("ReportId"), Some(false));
        assert_eq!(s.has("timestamp"), Some(true));
    }

    #[test]
    fn project_away_and_rename_remove_columns_of_the_table() {
        let s = of("DeviceLogonEvents | project-away Report* , DeviceName | project-rename Who = AccountName");
        assert_eq!(s.has("DeviceName"), Some(false));
        assert_eq!(s.has("AccountName"), Some(false));
        assert_eq!(s.has("Who"), Some(true));
        assert_eq!(s.has("Timestamp"), None);
    }

    #[test]
    fn aggregates_are_named() {
        assert_eq!(
            of("DeviceLogonEvents | summarize n = count() by DeviceName").aggregated_by,
            Some("summarize")
        );
        assert_eq!(of("DeviceLogonEvents | distinct DeviceName").aggregated_by, Some("distinct"));
        assert_eq!(of("DeviceLogonEvents | count").columns, ["Count"]);
    }

    #[test]
    fn lets_and_joins_carry_their_columns() {
        let s = of(
            "let T = DeviceFileEvents | project A = Timestamp, DeviceId; T | join kind=inner (DeviceInfo | project DeviceId, OSPlatform) on DeviceId",
        );
        assert_eq!(s.columns, ["A", "DeviceId", "OSPlatform"]);
        assert_eq!(s.all_of, None);
    }

    #[test]
    fn stages_are_found_outside_strings_parentheses_and_lets() {
        let q = "let x = T | where a == 'p|q'; DeviceEvents | join (T | project a) on a | project a, b // c|d\n| take 1";
        let stages: Vec<&str> = top_level_stages(q).unwrap().into_iter().map(|r| q[r].trim()).collect();
        assert_eq!(stages, ["join (T | project a) on a", "project a, b // c|d", "take 1"]);
        let trailing = "T | take 1;";
        assert_eq!(
            top_level_stages(trailing)
                .unwrap()
                .into_iter()
                .map(|r| &trailing[r])
                .collect::<Vec<_>>(),
            [" take 1"]
        );
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("Report*", "ReportId"));
        assert!(wildcard("*Id", "DeviceId"));
        assert!(wildcard("a*c*e", "abcde"));
        assert!(!wildcard("a*c", "abd"));
    }
}
