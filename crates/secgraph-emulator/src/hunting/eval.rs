//! Evaluates a parsed query over the seeded tables.

use super::parse::{Agg, BinOp, Expr, JoinKind, Let, Query, Stage, StrOp};
use super::value::{KTable, KType, KV};
use chrono::{DateTime, Datelike, Timelike, Utc};
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

/// Most rows a result may hold, as the service's limit.
pub const MAX_ROWS: usize = 100_000;

/// A semantic error (unknown table or column, type mismatch), reported as Kusto would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemanticError(pub String);

type R<T> = Result<T, SemanticError>;

fn err<T>(m: impl Into<String>) -> R<T> {
    Err(SemanticError(m.into()))
}

/// Where queries read from, and the clock and time window they run with.
pub struct Context<'a> {
    /// The tenant's tables by name.
    pub tables: &'a HashMap<String, KTable>,
    /// The time `now()` and `ago()` count from.
    pub now: DateTime<Utc>,
    /// Rows outside [from, to] (by `Timestamp`) are invisible, as the request's Timespan says.
    pub from: DateTime<Utc>,
    /// The window's end.
    pub to: DateTime<Utc>,
    /// Tables named by `let` statements (already limited to the time window).
    pub lets: HashMap<String, KTable>,
    /// Values named by `let` statements.
    pub scalars: HashMap<String, KV>,
    /// Table rows read so far (the quota's CPU model).
    pub scanned: &'a std::cell::Cell<u64>,
}

pub fn run(q: &Query, ctx: &Context) -> R<KTable> {
    if !q.lets.is_empty() {
        // Each `let` is evaluated once, in order, and may use the ones before it.
        let mut inner = Context {
            tables: ctx.tables,
            now: ctx.now,
            from: ctx.from,
            to: ctx.to,
            lets: ctx.lets.clone(),
            scalars: ctx.scalars.clone(),
            scanned: ctx.scanned,
        };
        for (name, value) in &q.lets {
            match value {
                Let::Tabular(sub) => {
                    let t = run(sub, &inner)?;
                    inner.lets.insert(name.clone(), t);
                }
                Let::Scalar(e) => {
                    let v = eval(e, &KTable::default(), &[], &inner)?;
                    inner.scalars.insert(name.clone(), v);
                }
            }
        }
        let body = Query { lets: vec![], ..q.clone() };
        return run(&body, &inner);
    }
    let source = ctx
        .lets
        .get(&q.table)
        .or_else(|| ctx.tables.iter().find(|(n, _)| n.eq_ignore_ascii_case(&q.table)).map(|(_, t)| t));
    let Some(src) = source else {
        return err(format!("Failed to resolve table or column expression named '{}'", q.table));
    };
    ctx.scanned.set(ctx.scanned.get() + src.rows.len() as u64);
    let ts = src.index("Timestamp");
    let mut t = KTable {
        columns: src.columns.clone(),
        rows: src
            .rows
            .iter()
            .filter(|r| match ts.map(|i| &r[i]) {
                Some(KV::Date(d)) => *d >= ctx.from && *d <= ctx.to,
                _ => true,
            })
            .cloned()
            .collect(),
    };
    for stage in &q.stages {
        t = apply(stage, t, ctx)?;
    }
    if t.rows.len() > MAX_ROWS {
        return err(format!(
            "Query result exceeds the limit of {MAX_ROWS} rows; narrow it with where, summarize or take"
        ));
    }
    Ok(t)
}

fn col_type(t: &KTable, e: &Expr, rows: &[Vec<KV>], values: &[KV]) -> KType {
    if let Expr::Col(c) = e
        && let Some(i) = t.index(c)
    {
        return t.columns[i].1;
    }
    let _ = rows;
    values.iter().find_map(KV::ktype).unwrap_or(KType::String)
}

fn apply(stage: &Stage, mut t: KTable, ctx: &Context) -> R<KTable> {
    Ok(match stage {
        Stage::Where(e) => {
            let mut keep = Vec::with_capacity(t.rows.len());
            for r in t.rows.iter() {
                if truthy(&eval(e, &t, r, ctx)?) {
                    keep.push(r.clone());
                }
            }
            t.rows = keep;
            t
        }
        Stage::ProjectAway { patterns, keep } => {
            // Names that match no column are let through, as msticpy's files list Log Analytics columns (TenantId,
            // TimeGenerated…) that advanced hunting does not have.
            let matches = |name: &str| patterns.iter().any(|p| glob(p, name));
            let kept: Vec<usize> = (0..t.columns.len()).filter(|i| matches(&t.columns[*i].0) == *keep).collect();
            KTable {
                columns: kept.iter().map(|i| t.columns[*i].clone()).collect(),
                rows: t.rows.iter().map(|r| kept.iter().map(|i| r[*i].clone()).collect()).collect(),
            }
        }
        Stage::ProjectRename(pairs) => {
            let mut out = t;
            for (new, old) in pairs {
                let i = out.index(old).ok_or_else(|| unknown_column(old))?;
                out.columns[i].0 = new.clone();
            }
            out
        }
        Stage::Project(items) | Stage::Extend(items) => {
            let extend = matches!(stage, Stage::Extend(_));
            let mut values: Vec<Vec<KV>> = Vec::with_capacity(items.len());
            for (_, e) in items {
                let mut col = Vec::with_capacity(t.rows.len());
                for r in &t.rows {
                    col.push(eval(e, &t, r, ctx)?);
                }
                values.push(col);
            }
            let types: Vec<KType> = items.iter().zip(&values).map(|((_, e), v)| col_type(&t, e, &t.rows, v)).collect();
            let mut out = if extend {
                t.clone()
            } else {
                KTable {
                    columns: vec![],
                    rows: vec![vec![]; t.rows.len()],
                }
            };
            for (k, (name, _)) in items.iter().enumerate() {
                match out.index(name) {
                    Some(i) if extend => {
                        out.columns[i].1 = types[k];
                        for (r, v) in out.rows.iter_mut().zip(&values[k]) {
                            r[i] = v.clone();
                        }
                    }
                    Some(_) => return err(format!("project: column '{name}' is named twice")),
                    None => {
                        out.columns.push((name.clone(), types[k]));
                        for (r, v) in out.rows.iter_mut().zip(&values[k]) {
                            r.push(v.clone());
                        }
                    }
                }
            }
            out
        }
        Stage::Take(n) => {
            t.rows.truncate(*n);
            t
        }
        Stage::Top { n, by, desc } => {
            sort(&mut t, &[(by.clone(), *desc)], ctx)?;
            t.rows.truncate(*n);
            t
        }
        Stage::Sort(keys) => {
            sort(&mut t, keys, ctx)?;
            t
        }
        Stage::Count => KTable {
            columns: vec![("Count".into(), KType::Long)],
            rows: vec![vec![KV::Long(t.rows.len() as i64)]],
        },
        Stage::MvExpand { name, expr, limit } => mv_expand(t, name, expr, *limit, ctx)?,
        Stage::Distinct(cols) => {
            let all: Vec<String> = t.columns.iter().map(|(c, _)| c.clone()).collect();
            let cols = if cols.is_empty() { &all } else { cols };
            let idx: Vec<usize> = cols.iter().map(|c| t.index(c).ok_or_else(|| unknown_column(c))).collect::<R<_>>()?;
            let mut seen = HashSet::new();
            let mut out = KTable {
                columns: idx.iter().map(|i| t.columns[*i].clone()).collect(),
                rows: vec![],
            };
            for r in &t.rows {
                let row: Vec<KV> = idx.iter().map(|i| r[*i].clone()).collect();
                if seen.insert(row.iter().map(KV::key).collect::<Vec<_>>().join("\u{1}")) {
                    out.rows.push(row);
                }
            }
            out
        }
        Stage::Summarize { aggs, by } => summarize(&t, aggs, by, ctx)?,
        Stage::Join { kind, right, on } => {
            let rt = run(right, ctx)?;
            join(t, rt, *kind, on)?
        }
    })
}

fn unknown_column(c: &str) -> SemanticError {
    SemanticError(format!("Failed to resolve scalar expression named '{c}'"))
}

fn sort(t: &mut KTable, keys: &[(Expr, bool)], ctx: &Context) -> R<()> {
    let mut keyed: Vec<(Vec<KV>, Vec<KV>)> = Vec::with_capacity(t.rows.len());
    for r in &t.rows {
        let k = keys.iter().map(|(e, _)| eval(e, t, r, ctx)).collect::<R<Vec<_>>>()?;
        keyed.push((k, r.clone()));
    }
    keyed.sort_by(|a, b| {
        for (i, (_, desc)) in keys.iter().enumerate() {
            // Nulls last in descending order and first in ascending, as Kusto does by default.
            let o = match (&a.0[i], &b.0[i]) {
                (KV::Null, KV::Null) => Ordering::Equal,
                (KV::Null, _) => Ordering::Less,
                (_, KV::Null) => Ordering::Greater,
                (x, y) => x.compare(y).unwrap_or(Ordering::Equal),
            };
            let o = if *desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
    t.rows = keyed.into_iter().map(|(_, r)| r).collect();
    Ok(())
}

fn summarize(t: &KTable, aggs: &[(String, Agg)], by: &[(String, Expr)], ctx: &Context) -> R<KTable> {
    let mut order: Vec<String> = Vec::new();
    let mut groups: HashMap<String, (Vec<KV>, Vec<usize>)> = HashMap::new();
    for (ri, r) in t.rows.iter().enumerate() {
        let keys = by.iter().map(|(_, e)| eval(e, t, r, ctx)).collect::<R<Vec<_>>>()?;
        let k = keys.iter().map(KV::key).collect::<Vec<_>>().join("\u{1}");
        let g = groups.entry(k.clone()).or_insert_with(|| {
            order.push(k);
            (keys, vec![])
        });
        g.1.push(ri);
    }
    if by.is_empty() && groups.is_empty() {
        groups.insert(String::new(), (vec![], vec![]));
        order.push(String::new());
    }
    let mut rows = Vec::new();
    for k in &order {
        let (keys, members) = &groups[k];
        let mut row = keys.clone();
        for (_, agg) in aggs {
            row.extend(aggregate(agg, t, by, members, ctx)?);
        }
        rows.push(row);
    }
    let mut out = KTable::default();
    let column_of = |i: usize| rows.iter().map(|r: &Vec<KV>| r[i].clone()).collect::<Vec<KV>>();
    for (i, (name, e)) in by.iter().enumerate() {
        out.columns.push((name.clone(), col_type(t, e, &t.rows, &column_of(i))));
    }
    for (name, agg) in aggs {
        let at = out.columns.len();
        match agg {
            Agg::ArgMax {
                by: e, cols, star, names, ..
            } => {
                let mut produced = vec![(name.clone(), col_type(t, e, &t.rows, &column_of(at)))];
                for c in arg_columns(t, by, name, cols, *star) {
                    let ty = t.index(&c).map(|i| t.columns[i].1).unwrap_or(KType::String);
                    produced.push((c, ty));
                }
                for (j, (n, ty)) in produced.into_iter().enumerate() {
                    let n = names.get(j).cloned().unwrap_or(n);
                    out.columns.push((unique_name(&out.columns, &n), ty));
                }
            }
            _ => {
                let vals = column_of(at);
                let ty = match agg {
                    Agg::Count | Agg::CountIf(_) | Agg::DCount(_) | Agg::DCountIf(..) => KType::Long,
                    Agg::MakeSet(..) | Agg::MakeList(..) => KType::Dynamic,
                    Agg::Avg(_) => KType::Real,
                    Agg::Min(e) | Agg::Max(e) | Agg::Sum(e) | Agg::SumIf(e, _) | Agg::Any(e) => col_type(t, e, &t.rows, &vals),
                    Agg::ArgMax { .. } => KType::Dynamic,
                };
                out.columns.push((name.clone(), ty));
            }
        }
    }
    out.rows = rows;
    Ok(out)
}

/// The columns `arg_max(by, cols…)` returns besides `by` itself: the named ones, or with `*` every column that is
/// not a group key nor the maximised column.
fn arg_columns(t: &KTable, by: &[(String, Expr)], name: &str, cols: &[String], star: bool) -> Vec<String> {
    if !star {
        return cols.to_vec();
    }
    t.columns
        .iter()
        .map(|(c, _)| c.clone())
        .filter(|c| c != name && !by.iter().any(|(b, _)| b == c))
        .collect()
}

fn unique_name(columns: &[(String, KType)], name: &str) -> String {
    let mut n = name.to_string();
    let mut k = 1;
    while columns.iter().any(|(c, _)| *c == n) {
        n = format!("{name}{k}");
        k += 1;
    }
    n
}

fn aggregate(agg: &Agg, t: &KTable, by: &[(String, Expr)], members: &[usize], ctx: &Context) -> R<Vec<KV>> {
    let vals = |e: &Expr| members.iter().map(|i| eval(e, t, &t.rows[*i], ctx)).collect::<R<Vec<KV>>>();
    let when = |e: &Expr, pred: &Expr| -> R<Vec<KV>> {
        let mut out = Vec::new();
        for i in members {
            if truthy(&eval(pred, t, &t.rows[*i], ctx)?) {
                out.push(eval(e, t, &t.rows[*i], ctx)?);
            }
        }
        Ok(out)
    };
    let distinct = |vs: Vec<KV>| vs.iter().filter(|v| **v != KV::Null).map(KV::key).collect::<HashSet<_>>().len() as i64;
    Ok(vec![match agg {
        Agg::Count => KV::Long(members.len() as i64),
        Agg::CountIf(e) => KV::Long(vals(e)?.iter().filter(|v| truthy(v)).count() as i64),
        Agg::DCount(e) => KV::Long(distinct(vals(e)?)),
        Agg::DCountIf(e, pred) => KV::Long(distinct(when(e, pred)?)),
        Agg::Min(e) | Agg::Max(e) => extreme(vals(e)?, matches!(agg, Agg::Min(_))).map(|(_, v)| v).unwrap_or(KV::Null),
        Agg::Sum(e) | Agg::Avg(e) => sum(&vals(e)?, matches!(agg, Agg::Avg(_)))?,
        Agg::SumIf(e, pred) => sum(&when(e, pred)?, false)?,
        Agg::Any(e) => vals(e)?.into_iter().find(|v| *v != KV::Null).unwrap_or(KV::Null),
        Agg::MakeSet(e, cap) | Agg::MakeList(e, cap) => {
            let set = matches!(agg, Agg::MakeSet(..));
            let mut seen = HashSet::new();
            let mut out = Vec::new();
            for v in vals(e)? {
                if out.len() < *cap && v != KV::Null && (!set || seen.insert(v.key())) {
                    out.push(v.to_json());
                }
            }
            KV::Dyn(serde_json::Value::Array(out))
        }
        Agg::ArgMax {
            by: e, cols, star, min, ..
        } => {
            let name = match e {
                Expr::Col(c) => c.as_str(),
                _ => "",
            };
            let names = arg_columns(t, by, name, cols, *star);
            let idx = names
                .iter()
                .map(|c| t.index(c).ok_or_else(|| unknown_column(c)))
                .collect::<R<Vec<_>>>()?;
            let best = extreme(vals(e)?, *min);
            let mut out = vec![best.as_ref().map(|(_, v)| v.clone()).unwrap_or(KV::Null)];
            for i in idx {
                out.push(best.as_ref().map(|(k, _)| t.rows[members[*k]][i].clone()).unwrap_or(KV::Null));
            }
            return Ok(out);
        }
    }])
}

/// The position and value of the smallest (`min`) or largest non-null value; the first one on ties.
fn extreme(vs: Vec<KV>, min: bool) -> Option<(usize, KV)> {
    let want = if min { Ordering::Less } else { Ordering::Greater };
    let mut best: Option<(usize, KV)> = None;
    for (i, v) in vs.into_iter().enumerate() {
        if v == KV::Null {
            continue;
        }
        if best.as_ref().is_none_or(|(_, b)| v.compare(b) == Some(want)) {
            best = Some((i, v));
        }
    }
    best
}

fn sum(vs: &[KV], avg: bool) -> R<KV> {
    let mut n = 0usize;
    let (mut li, mut f, mut real) = (0i64, 0f64, false);
    for v in vs {
        match v {
            KV::Long(x) => {
                li = li.saturating_add(*x);
                f += *x as f64;
            }
            KV::Real(x) => {
                f += x;
                real = true;
            }
            KV::Null => continue,
            other => return err(format!("sum()/avg() need numbers, found {}", other.text())),
        }
        n += 1;
    }
    Ok(match avg {
        true if n == 0 => KV::Null,
        true => KV::Real(f / n as f64),
        false if real => KV::Real(f),
        false => KV::Long(li),
    })
}

fn join(l: KTable, r: KTable, kind: JoinKind, on: &[(String, String)]) -> R<KTable> {
    let li: Vec<usize> = on
        .iter()
        .map(|(a, _)| l.index(a).ok_or_else(|| unknown_column(a)))
        .collect::<R<_>>()?;
    let ri: Vec<usize> = on
        .iter()
        .map(|(_, b)| r.index(b).ok_or_else(|| unknown_column(b)))
        .collect::<R<_>>()?;
    let key = |row: &Vec<KV>, idx: &[usize]| idx.iter().map(|i| row[*i].key()).collect::<Vec<_>>().join("\u{1}");
    let mut index: HashMap<String, Vec<usize>> = HashMap::new();
    for (n, row) in r.rows.iter().enumerate() {
        index.entry(key(row, &ri)).or_default().push(n);
    }
    // Semi and anti joins keep one side's columns and rows.
    match kind {
        JoinKind::LeftSemi | JoinKind::LeftAnti => {
            let want = kind == JoinKind::LeftSemi;
            let rows = l
                .rows
                .iter()
                .filter(|row| index.contains_key(&key(row, &li)) == want)
                .cloned()
                .collect();
            return Ok(KTable { columns: l.columns, rows });
        }
        JoinKind::RightSemi | JoinKind::RightAnti => {
            let left: HashSet<String> = l.rows.iter().map(|row| key(row, &li)).collect();
            let want = kind == JoinKind::RightSemi;
            let rows = r.rows.iter().filter(|row| left.contains(&key(row, &ri)) == want).cloned().collect();
            return Ok(KTable { columns: r.columns, rows });
        }
        _ => {}
    }
    let mut columns = l.columns.clone();
    for (name, ty) in &r.columns {
        columns.push((unique_name(&columns, name), *ty));
    }
    let mut rows = Vec::new();
    let mut seen_left = HashSet::new();
    let mut matched_right = vec![false; r.rows.len()];
    let keep_left = matches!(kind, JoinKind::LeftOuter | JoinKind::FullOuter);
    for lrow in &l.rows {
        let k = key(lrow, &li);
        if kind == JoinKind::InnerUnique && !seen_left.insert(k.clone()) {
            continue;
        }
        match index.get(&k) {
            Some(matches) => {
                for m in matches {
                    matched_right[*m] = true;
                    let mut row = lrow.clone();
                    row.extend(r.rows[*m].iter().cloned());
                    rows.push(row);
                }
            }
            None if keep_left => {
                let mut row = lrow.clone();
                row.extend(std::iter::repeat_n(KV::Null, r.columns.len()));
                rows.push(row);
            }
            None => {}
        }
    }
    if matches!(kind, JoinKind::RightOuter | JoinKind::FullOuter) {
        for (_, rrow) in r.rows.iter().enumerate().filter(|(m, _)| !matched_right[*m]) {
            let mut row = vec![KV::Null; l.columns.len()];
            row.extend(rrow.iter().cloned());
            rows.push(row);
        }
    }
    Ok(KTable { columns, rows })
}

fn mv_expand(t: KTable, name: &str, e: &Expr, limit: Option<usize>, ctx: &Context) -> R<KTable> {
    let mut out = KTable {
        columns: t.columns.clone(),
        rows: Vec::with_capacity(t.rows.len()),
    };
    let at = match out.index(name) {
        Some(i) => i,
        None => {
            out.columns.push((name.to_string(), KType::Dynamic));
            out.columns.len() - 1
        }
    };
    let mut types = HashSet::new();
    for r in &t.rows {
        let v = eval(e, &t, r, ctx)?;
        let items: Vec<KV> = match v {
            KV::Dyn(serde_json::Value::Array(a)) => a.into_iter().map(from_json).collect(),
            KV::Dyn(serde_json::Value::Object(o)) => o
                .into_iter()
                .map(|(k, v)| KV::Dyn(serde_json::Value::Object([(k, v)].into_iter().collect())))
                .collect(),
            other => vec![other],
        };
        for item in items.into_iter().take(limit.unwrap_or(usize::MAX)) {
            types.insert(item.ktype());
            let mut row = r.clone();
            if at == row.len() {
                row.push(item);
            } else {
                row[at] = item;
            }
            out.rows.push(row);
        }
    }
    // The expanded column is typed after its elements when they agree (strings stay strings).
    types.remove(&None);
    out.columns[at].1 = match (types.len(), types.into_iter().next().flatten()) {
        (1, Some(ty)) => ty,
        _ => KType::Dynamic,
    };
    Ok(out)
}

/// A JSON value as a cell: scalars become typed values, arrays and objects stay dynamic.
pub fn from_json(v: serde_json::Value) -> KV {
    match v {
        serde_json::Value::Null => KV::Null,
        serde_json::Value::Bool(b) => KV::Bool(b),
        serde_json::Value::Number(n) => n.as_i64().map(KV::Long).or_else(|| n.as_f64().map(KV::Real)).unwrap_or(KV::Null),
        serde_json::Value::String(s) => KV::Str(s),
        other => KV::Dyn(other),
    }
}

/// Whether `name` matches `pattern`, where `*` stands for any run of characters (case-sensitive, as column names
/// are).
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, rest)) => {
            let Some(tail) = name.strip_prefix(head) else { return false };
            (0..=tail.len())
                .filter(|i| tail.is_char_boundary(*i))
                .any(|i| glob(rest, &tail[i..]))
        }
    }
}

fn truthy(v: &KV) -> bool {
    matches!(v, KV::Bool(true))
}

fn has_term(hay: &str, needle: &str) -> bool {
    has_term_cs(&hay.to_lowercase(), &needle.to_lowercase())
}

/// Whether `needle` occurs in `hay` as whole terms, case as given: where the needle begins (ends) with a letter or
/// digit, the text before (after) it must not continue the term; a needle bounded by punctuation (`@"\Temp\"`,
/// `" cl "`) matches wherever it occurs, as Kusto's term index does.
fn has_term_cs(h: &str, n: &str) -> bool {
    if n.is_empty() {
        return true;
    }
    let open = n.chars().next().is_some_and(char::is_alphanumeric);
    let close = n.chars().next_back().is_some_and(char::is_alphanumeric);
    let mut start = 0;
    while let Some(p) = h[start..].find(n) {
        let a = start + p;
        let b = a + n.len();
        let before_ok = !open || h[..a].chars().next_back().is_none_or(|c| !c.is_alphanumeric());
        let after_ok = !close || h[b..].chars().next().is_none_or(|c| !c.is_alphanumeric());
        if before_ok && after_ok {
            return true;
        }
        start = a + 1;
        while !h.is_char_boundary(start) {
            start += 1;
        }
    }
    false
}

fn eval(e: &Expr, t: &KTable, row: &[KV], ctx: &Context) -> R<KV> {
    Ok(match e {
        Expr::Lit(v) => v.clone(),
        Expr::Col(c) => match (t.index(c), ctx.scalars.get(c)) {
            (Some(i), _) => row[i].clone(),
            (None, Some(v)) => v.clone(),
            (None, None) => return Err(unknown_column(c)),
        },
        Expr::Not(x) => match eval(x, t, row, ctx)? {
            KV::Bool(b) => KV::Bool(!b),
            KV::Null => KV::Null,
            _ => return err("not() needs a boolean"),
        },
        Expr::Neg(x) => match eval(x, t, row, ctx)? {
            KV::Long(n) => KV::Long(-n),
            KV::Real(f) => KV::Real(-f),
            KV::Span(d) => KV::Span(-d),
            _ => return err("unary '-' needs a number or timespan"),
        },
        Expr::HasAny { expr, list, all } => {
            let v = eval(expr, t, row, ctx)?;
            let hay = match &v {
                KV::Null => String::new(),
                other => other.text(),
            };
            let terms = flatten(list, t, row, ctx)?;
            let hits = terms.iter().filter(|w| has_term(&hay, &w.text())).count();
            KV::Bool(if *all { hits == terms.len() } else { hits > 0 })
        }
        Expr::In { expr, list, negated, ci } => {
            let v = eval(expr, t, row, ctx)?;
            let mut found = false;
            for w in flatten(list, t, row, ctx)? {
                let eq = match (&v, &w, ci) {
                    (KV::Str(a), KV::Str(b), true) => a.eq_ignore_ascii_case(b),
                    (a, b, _) => a.compare(b) == Some(Ordering::Equal),
                };
                if eq {
                    found = true;
                    break;
                }
            }
            KV::Bool(found != *negated)
        }
        Expr::Bin(BinOp::And, a, b) => KV::Bool(truthy(&eval(a, t, row, ctx)?) && truthy(&eval(b, t, row, ctx)?)),
        Expr::Bin(BinOp::Or, a, b) => KV::Bool(truthy(&eval(a, t, row, ctx)?) || truthy(&eval(b, t, row, ctx)?)),
        Expr::Bin(op, a, b) => {
            let l = eval(a, t, row, ctx)?;
            let r = eval(b, t, row, ctx)?;
            binary(op, l, r)?
        }
        Expr::Call(f, args) => call(f, args, t, row, ctx)?,
        Expr::Index(base, key) => {
            let b = eval(base, t, row, ctx)?;
            let k = eval(key, t, row, ctx)?;
            let v = match &b {
                KV::Dyn(v) => Some(v),
                _ => None,
            };
            match (v, &k) {
                (Some(serde_json::Value::Object(o)), KV::Str(name)) => o.get(name).cloned().map(from_json).unwrap_or(KV::Null),
                (Some(serde_json::Value::Array(a)), KV::Long(n)) => {
                    let i = if *n < 0 { a.len() as i64 + n } else { *n };
                    usize::try_from(i)
                        .ok()
                        .and_then(|i| a.get(i))
                        .cloned()
                        .map(from_json)
                        .unwrap_or(KV::Null)
                }
                _ => KV::Null,
            }
        }
        Expr::Between { expr, lo, hi, negated } => {
            let v = eval(expr, t, row, ctx)?;
            let lo = eval(lo, t, row, ctx)?;
            let hi = match (&lo, eval(hi, t, row, ctx)?) {
                (KV::Date(d), KV::Span(s)) => KV::Date(*d + s),
                (_, hi) => hi,
            };
            if v == KV::Null {
                return Ok(KV::Bool(false));
            }
            let (Some(a), Some(b)) = (v.compare(&lo), v.compare(&hi)) else {
                return err(format!(
                    "between: cannot compare {} with {} and {}",
                    type_of(&v),
                    type_of(&lo),
                    type_of(&hi)
                ));
            };
            KV::Bool((a != Ordering::Less && b != Ordering::Greater) != *negated)
        }
    })
}

/// The values of an `in`/`has_any` list, with dynamic arrays (`dynamic([…])`, a `let` list) spread out.
fn flatten(list: &[Expr], t: &KTable, row: &[KV], ctx: &Context) -> R<Vec<KV>> {
    let mut out = Vec::new();
    for item in list {
        match eval(item, t, row, ctx)? {
            KV::Dyn(serde_json::Value::Array(a)) => out.extend(a.into_iter().map(from_json)),
            other => out.push(other),
        }
    }
    Ok(out)
}

/// A compiled regular expression, kept per pattern for the query's lifetime (patterns are literals in practice).
fn regex(pattern: &str) -> R<regex::Regex> {
    thread_local! {
        static CACHE: std::cell::RefCell<HashMap<String, regex::Regex>> = Default::default();
    }
    CACHE.with(|c| {
        if let Some(r) = c.borrow().get(pattern) {
            return Ok(r.clone());
        }
        let r = regex::RegexBuilder::new(pattern)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| SemanticError(format!("invalid regular expression '{pattern}': {e}")))?;
        let mut m = c.borrow_mut();
        if m.len() > 256 {
            m.clear();
        }
        m.insert(pattern.to_string(), r.clone());
        Ok(r)
    })
}

fn binary(op: &BinOp, l: KV, r: KV) -> R<KV> {
    Ok(match op {
        BinOp::Str { op, negated, cs } => {
            if l == KV::Null {
                return Ok(KV::Bool(*negated));
            }
            let (mut h, mut n) = (l.text(), r.text());
            if !cs {
                h = h.to_lowercase();
                n = n.to_lowercase();
            }
            let hit = match op {
                StrOp::Has if *cs => has_term_cs(&h, &n),
                StrOp::Has => has_term(&h, &n),
                StrOp::Contains => h.contains(&n),
                StrOp::StartsWith => h.starts_with(&n),
                StrOp::EndsWith => h.ends_with(&n),
            };
            KV::Bool(hit != *negated)
        }
        BinOp::Regex => {
            if l == KV::Null {
                return Ok(KV::Bool(false));
            }
            KV::Bool(regex(&r.text())?.is_match(&l.text()))
        }
        BinOp::EqCi | BinOp::NeCi => {
            let eq = l.text().to_lowercase() == r.text().to_lowercase() && l != KV::Null;
            KV::Bool(eq == (*op == BinOp::EqCi))
        }
        BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            if l == KV::Null || r == KV::Null {
                return Ok(if *op == BinOp::Ne {
                    KV::Bool(l != r)
                } else {
                    KV::Bool(*op == BinOp::Eq && l == r)
                });
            }
            let Some(o) = l.compare(&r) else {
                return err(format!("cannot compare {} with {}", type_of(&l), type_of(&r)));
            };
            KV::Bool(match op {
                BinOp::Eq => o == Ordering::Equal,
                BinOp::Ne => o != Ordering::Equal,
                BinOp::Lt => o == Ordering::Less,
                BinOp::Le => o != Ordering::Greater,
                BinOp::Gt => o == Ordering::Greater,
                _ => o != Ordering::Less,
            })
        }
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => arith(op, l, r)?,
        BinOp::And | BinOp::Or => KV::Null,
    })
}

fn type_of(v: &KV) -> &'static str {
    v.ktype().map(KType::schema_name).unwrap_or("null")
}

fn arith(op: &BinOp, l: KV, r: KV) -> R<KV> {
    Ok(match (op, l, r) {
        (_, KV::Null, _) | (_, _, KV::Null) => KV::Null,
        (BinOp::Add, KV::Date(d), KV::Span(s)) | (BinOp::Add, KV::Span(s), KV::Date(d)) => KV::Date(d + s),
        (BinOp::Sub, KV::Date(d), KV::Span(s)) => KV::Date(d - s),
        (BinOp::Sub, KV::Date(a), KV::Date(b)) => KV::Span(a - b),
        (BinOp::Add, KV::Span(a), KV::Span(b)) => KV::Span(a + b),
        (BinOp::Sub, KV::Span(a), KV::Span(b)) => KV::Span(a - b),
        (BinOp::Mul, KV::Span(a), KV::Long(n)) => KV::Span(a * n as i32),
        (op, KV::Long(a), KV::Long(b)) => match op {
            BinOp::Add => KV::Long(a.wrapping_add(b)),
            BinOp::Sub => KV::Long(a.wrapping_sub(b)),
            BinOp::Mul => KV::Long(a.wrapping_mul(b)),
            _ if b == 0 => KV::Null,
            _ => KV::Long(a / b),
        },
        (op, a, b) => {
            let (Some(x), Some(y)) = (num(&a), num(&b)) else {
                return err(format!("arithmetic is not defined on {} and {}", type_of(&a), type_of(&b)));
            };
            KV::Real(match op {
                BinOp::Add => x + y,
                BinOp::Sub => x - y,
                BinOp::Mul => x * y,
                _ => x / y,
            })
        }
    })
}

fn num(v: &KV) -> Option<f64> {
    match v {
        KV::Long(n) => Some(*n as f64),
        KV::Real(f) => Some(*f),
        _ => None,
    }
}

fn call(f: &str, args: &[Expr], t: &KTable, row: &[KV], ctx: &Context) -> R<KV> {
    let a = args.iter().map(|e| eval(e, t, row, ctx)).collect::<R<Vec<_>>>()?;
    let empty = |v: &KV| matches!(v, KV::Null) || matches!(v, KV::Str(s) if s.is_empty());
    if let Some(v) = call_time(f, &a, ctx)? {
        return Ok(v);
    }
    if let Some(v) = call_dynamic(f, &a)? {
        return Ok(v);
    }
    Ok(match f {
        "tolower" => a[0].as_str().map(|s| KV::Str(s.to_lowercase())).unwrap_or(KV::Null),
        "toupper" => a[0].as_str().map(|s| KV::Str(s.to_uppercase())).unwrap_or(KV::Null),
        "isempty" => KV::Bool(empty(&a[0])),
        "isnotempty" => KV::Bool(!empty(&a[0])),
        "isnull" => KV::Bool(a[0] == KV::Null),
        "isnotnull" => KV::Bool(a[0] != KV::Null),
        "strlen" => KV::Long(a[0].text().chars().count() as i64),
        "tostring" => KV::Str(a[0].text()),
        "tolong" | "toint" => a[0].text().trim().parse::<i64>().map(KV::Long).unwrap_or(KV::Null),
        "iff" | "iif" => match &a[0] {
            KV::Bool(true) => a[1].clone(),
            _ => a[2].clone(),
        },
        "strcat" => KV::Str(a.iter().map(KV::text).collect()),
        "coalesce" => a.iter().find(|v| !empty(v)).cloned().unwrap_or(KV::Null),
        "substring" => {
            let text: Vec<char> = a[0].text().chars().collect();
            let start = match &a[1] {
                KV::Long(n) => (*n).clamp(0, text.len() as i64) as usize,
                _ => return err("substring() needs a whole-number start"),
            };
            let len = match a.get(2) {
                None => text.len() - start,
                Some(KV::Long(n)) => (*n).clamp(0, (text.len() - start) as i64) as usize,
                Some(_) => return err("substring() needs a whole-number length"),
            };
            KV::Str(text[start..start + len].iter().collect())
        }
        "toreal" | "todouble" => a[0].text().trim().parse::<f64>().map(KV::Real).unwrap_or(KV::Null),
        "tobool" => match a[0].text().trim().to_ascii_lowercase().as_str() {
            "true" | "1" => KV::Bool(true),
            "false" | "0" => KV::Bool(false),
            _ => KV::Null,
        },
        "indexof" => match a[0].text().find(a[1].text().as_str()) {
            Some(i) => KV::Long(a[0].text()[..i].chars().count() as i64),
            None => KV::Long(-1),
        },
        "replace_string" => KV::Str(a[0].text().replace(a[1].text().as_str(), &a[2].text())),
        "trim_start" | "trim_end" => KV::Str(if f == "trim_start" {
            a[0].text().trim_start().to_string()
        } else {
            a[0].text().trim_end().to_string()
        }),
        "reverse" => KV::Str(a[0].text().chars().rev().collect()),
        "ipv4_is_private" => match a[0].text().parse::<std::net::Ipv4Addr>() {
            Ok(ip) => KV::Bool(ip.is_private()),
            Err(_) => KV::Null,
        },
        "min_of" | "max_of" => extreme(a.clone(), f == "min_of").map(|(_, v)| v).unwrap_or(KV::Null),
        other => return err(format!("the function '{other}' is not supported")),
    })
}

/// Time functions (`now`, `ago`, `bin`, `startofday`, …); `None` for another name.
fn call_time(f: &str, a: &[KV], ctx: &Context) -> R<Option<KV>> {
    Ok(match f {
        "now" => Some(KV::Date(ctx.now)),
        "ago" => Some(match &a[0] {
            KV::Span(d) => KV::Date(ctx.now - *d),
            _ => return err("ago() needs a timespan, such as ago(7d)"),
        }),
        "bin" | "floor" => Some(match (&a[0], &a[1]) {
            (KV::Date(d), KV::Span(s)) if s.num_milliseconds() > 0 => {
                let ms = s.num_milliseconds();
                let v = d.timestamp_millis().div_euclid(ms) * ms;
                KV::Date(DateTime::<Utc>::from_timestamp_millis(v).unwrap_or(*d))
            }
            (KV::Long(n), KV::Long(b)) if *b > 0 => KV::Long(n.div_euclid(*b) * b),
            (KV::Real(x), KV::Real(b)) if *b > 0.0 => KV::Real((x / b).floor() * b),
            (KV::Real(x), KV::Long(b)) if *b > 0 => KV::Real((x / *b as f64).floor() * *b as f64),
            (KV::Null, _) => KV::Null,
            _ => return err("bin() needs a value and a positive bin size of a matching type, e.g. bin(Timestamp, 1h)"),
        }),
        "todatetime" => Some(match &a[0] {
            KV::Date(d) => KV::Date(*d),
            other => DateTime::parse_from_rfc3339(other.text().trim())
                .map(|d| KV::Date(d.with_timezone(&Utc)))
                .unwrap_or(KV::Null),
        }),
        "startofday" => Some(match &a[0] {
            KV::Date(d) => KV::Date(d.date_naive().and_hms_opt(0, 0, 0).map(|n| n.and_utc()).unwrap_or(*d)),
            _ => KV::Null,
        }),
        "dayofweek" => Some(match &a[0] {
            KV::Date(d) => KV::Span(chrono::Duration::days(d.weekday().num_days_from_sunday() as i64)),
            _ => KV::Null,
        }),
        "hourofday" => Some(match &a[0] {
            KV::Date(d) => KV::Long(d.hour() as i64),
            _ => KV::Null,
        }),
        "datetime_diff" => Some(match (&a[1], &a[2]) {
            (KV::Date(x), KV::Date(y)) => {
                let d = *x - *y;
                KV::Long(match a[0].text().to_ascii_lowercase().as_str() {
                    "day" => d.num_days(),
                    "hour" => d.num_hours(),
                    "minute" => d.num_minutes(),
                    "second" => d.num_seconds(),
                    "millisecond" => d.num_milliseconds(),
                    "week" => d.num_weeks(),
                    other => {
                        return err(format!(
                            "datetime_diff(): unsupported part '{other}' (week, day, hour, minute, second, millisecond)"
                        ));
                    }
                })
            }
            _ => KV::Null,
        }),
        _ => None,
    })
}

/// Dynamic, JSON and URL functions (`parse_json`, `extractjson`, `pack`, `split`, `parse_url`, …); `None` for
/// another name.
fn call_dynamic(f: &str, a: &[KV]) -> R<Option<KV>> {
    Ok(match f {
        "parse_json" | "todynamic" => Some(match &a[0] {
            KV::Str(x) => serde_json::from_str(x).map(from_json).unwrap_or_else(|_| KV::Str(x.clone())),
            other => other.clone(),
        }),
        "extractjson" => Some({
            let doc = match &a[1] {
                KV::Dyn(v) => Some(v.clone()),
                KV::Str(x) => serde_json::from_str(x).ok(),
                _ => None,
            };
            let found = doc.and_then(|d| json_path(&d, &a[0].text()));
            match (found, a.get(2).map(KV::text).as_deref()) {
                (None, _) => KV::Null,
                (Some(serde_json::Value::String(x)), _) => KV::Str(x),
                (Some(v), Some("string")) => KV::Str(v.to_string()),
                (Some(v), _) => from_json(v),
            }
        }),
        "extract" => Some({
            let group = match &a[1] {
                KV::Long(n) if *n >= 0 => *n as usize,
                _ => return err("extract() needs a capture group number (0 for the whole match)"),
            };
            let text = a[2].text();
            match regex(&a[0].text())?.captures(&text).and_then(|c| c.get(group)) {
                Some(m) => KV::Str(m.as_str().to_string()),
                None if a[2] == KV::Null => KV::Null,
                None => KV::Str(String::new()),
            }
        }),
        "pack_array" => Some(KV::Dyn(serde_json::Value::Array(a.iter().map(KV::to_json).collect()))),
        "pack" | "bag_pack" => Some({
            if !a.len().is_multiple_of(2) {
                return err(format!("{f}() takes pairs of key and value"));
            }
            KV::Dyn(serde_json::Value::Object(
                a.chunks(2).map(|p| (p[0].text(), p[1].to_json())).collect(),
            ))
        }),
        "array_length" => Some(match &a[0] {
            KV::Dyn(serde_json::Value::Array(x)) => KV::Long(x.len() as i64),
            _ => KV::Null,
        }),
        "set_has_element" => Some(match &a[0] {
            KV::Dyn(serde_json::Value::Array(x)) => {
                KV::Bool(x.iter().any(|v| from_json(v.clone()).compare(&a[1]) == Some(Ordering::Equal)))
            }
            _ => KV::Null,
        }),
        "split" => Some({
            let parts: Vec<serde_json::Value> = if a[0] == KV::Null {
                vec![]
            } else {
                a[0].text()
                    .split(a[1].text().as_str())
                    .map(|p| serde_json::Value::String(p.to_string()))
                    .collect()
            };
            match a.get(2) {
                Some(KV::Long(n)) => usize::try_from(*n)
                    .ok()
                    .and_then(|i| parts.get(i).cloned())
                    .map(|v| KV::Dyn(serde_json::Value::Array(vec![v])))
                    .unwrap_or(KV::Dyn(serde_json::Value::Array(vec![]))),
                _ => KV::Dyn(serde_json::Value::Array(parts)),
            }
        }),
        "parse_url" => Some(KV::Dyn(parse_url(&a[0].text()))),
        "url_decode" => Some(KV::Str(
            percent_encoding::percent_decode_str(&a[0].text()).decode_utf8_lossy().into_owned(),
        )),
        "base64_decode_tostring" => Some({
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(a[0].text().trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .map(KV::Str)
                .unwrap_or(KV::Str(String::new()))
        }),
        _ => None,
    })
}

/// A JSONPath such as `$.a.b[0]` or `$['a']` into a document.
fn json_path(doc: &serde_json::Value, path: &str) -> Option<serde_json::Value> {
    let mut rest = path.trim().strip_prefix('$')?;
    let mut cur = doc;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            cur = cur.get(&r[..end])?;
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let key = r[..end].trim();
            cur = match key.trim_matches(['\'', '"']) {
                k if k.len() != key.len() => cur.get(k)?,
                k => cur.get(k.parse::<usize>().ok()?)?,
            };
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    Some(cur.clone())
}

/// parse_url(): the parts of a URL as Kusto names them.
fn parse_url(text: &str) -> serde_json::Value {
    let Ok(u) = url::Url::parse(text) else {
        return serde_json::json!({});
    };
    let params: serde_json::Map<String, serde_json::Value> = u
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
        .collect();
    serde_json::json!({
        "Scheme": u.scheme(),
        "Host": u.host_str().unwrap_or(""),
        "Port": u.port().map(|p| p.to_string()).unwrap_or_default(),
        "Path": u.path(),
        "Username": u.username(),
        "Password": u.password().unwrap_or(""),
        "Query Parameters": params,
        "Fragment": u.fragment().unwrap_or(""),
    })
}
