//! Evaluates a parsed query over the seeded tables.

use super::parse::{Agg, BinOp, Expr, JoinKind, Let, Query, Stage, StrOp};
use super::value::{KTable, KType, KV};
use chrono::{DateTime, Utc};
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
    pub tables: &'a HashMap<String, KTable>,
    pub now: DateTime<Utc>,
    /// Rows outside [from, to] (by `Timestamp`) are invisible, as the request's Timespan says.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Tables named by `let` statements (already limited to the time window).
    pub lets: HashMap<String, KTable>,
    /// Values named by `let` statements.
    pub scalars: HashMap<String, KV>,
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
        Stage::Distinct(cols) => {
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
    let mut out = KTable::default();
    let mut rows = Vec::new();
    for k in &order {
        let (keys, members) = &groups[k];
        let mut row = keys.clone();
        for (_, agg) in aggs {
            row.push(aggregate(agg, t, members, ctx)?);
        }
        rows.push(row);
    }
    for (i, (name, e)) in by.iter().enumerate() {
        let vals: Vec<KV> = rows.iter().map(|r| r[i].clone()).collect();
        out.columns.push((name.clone(), col_type(t, e, &t.rows, &vals)));
    }
    for (j, (name, agg)) in aggs.iter().enumerate() {
        let vals: Vec<KV> = rows.iter().map(|r| r[by.len() + j].clone()).collect();
        let ty = match agg {
            Agg::Count | Agg::CountIf(_) | Agg::DCount(_) => KType::Long,
            Agg::MakeSet(_) => KType::Dynamic,
            Agg::Avg(_) => KType::Real,
            Agg::Min(e) | Agg::Max(e) | Agg::Sum(e) => col_type(t, e, &t.rows, &vals),
        };
        out.columns.push((name.clone(), ty));
    }
    out.rows = rows;
    Ok(out)
}

fn aggregate(agg: &Agg, t: &KTable, members: &[usize], ctx: &Context) -> R<KV> {
    let vals = |e: &Expr| members.iter().map(|i| eval(e, t, &t.rows[*i], ctx)).collect::<R<Vec<KV>>>();
    Ok(match agg {
        Agg::Count => KV::Long(members.len() as i64),
        Agg::CountIf(e) => KV::Long(vals(e)?.iter().filter(|v| truthy(v)).count() as i64),
        Agg::DCount(e) => KV::Long(
            vals(e)?
                .iter()
                .filter(|v| **v != KV::Null)
                .map(KV::key)
                .collect::<HashSet<_>>()
                .len() as i64,
        ),
        Agg::Min(e) | Agg::Max(e) => {
            let want = if matches!(agg, Agg::Min(_)) {
                Ordering::Less
            } else {
                Ordering::Greater
            };
            let mut best = KV::Null;
            for v in vals(e)? {
                if v == KV::Null {
                    continue;
                }
                if best == KV::Null || v.compare(&best) == Some(want) {
                    best = v;
                }
            }
            best
        }
        Agg::Sum(e) | Agg::Avg(e) => {
            let vs = vals(e)?;
            let mut n = 0usize;
            let (mut li, mut f, mut real) = (0i64, 0f64, false);
            for v in &vs {
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
            match agg {
                Agg::Avg(_) if n == 0 => KV::Null,
                Agg::Avg(_) => KV::Real(f / n as f64),
                _ if real => KV::Real(f),
                _ => KV::Long(li),
            }
        }
        Agg::MakeSet(e) => {
            let mut seen = HashSet::new();
            let mut set = Vec::new();
            for v in vals(e)? {
                if v != KV::Null && seen.insert(v.key()) {
                    set.push(v.to_json());
                }
            }
            KV::Dyn(serde_json::Value::Array(set))
        }
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
    let mut columns = l.columns.clone();
    for (name, ty) in &r.columns {
        let mut n = name.clone();
        let mut k = 1;
        while columns.iter().any(|(c, _)| *c == n) {
            n = format!("{name}{k}");
            k += 1;
        }
        columns.push((n, *ty));
    }
    let mut rows = Vec::new();
    let mut seen_left = HashSet::new();
    for lrow in &l.rows {
        let k = key(lrow, &li);
        if kind == JoinKind::InnerUnique && !seen_left.insert(k.clone()) {
            continue;
        }
        match index.get(&k) {
            Some(matches) => {
                for m in matches {
                    let mut row = lrow.clone();
                    row.extend(r.rows[*m].iter().cloned());
                    rows.push(row);
                }
            }
            None if kind == JoinKind::LeftOuter => {
                let mut row = lrow.clone();
                row.extend(std::iter::repeat_n(KV::Null, r.columns.len()));
                rows.push(row);
            }
            None => {}
        }
    }
    Ok(KTable { columns, rows })
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
    let h = hay.to_lowercase();
    let n = needle.to_lowercase();
    if n.is_empty() {
        return true;
    }
    let mut start = 0;
    while let Some(p) = h[start..].find(&n) {
        let a = start + p;
        let b = a + n.len();
        let before_ok = h[..a].chars().next_back().is_none_or(|c| !c.is_alphanumeric());
        let after_ok = h[b..].chars().next().is_none_or(|c| !c.is_alphanumeric());
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
            let mut hits = 0;
            for item in list {
                let w = eval(item, t, row, ctx)?;
                if has_term(&hay, &w.text()) {
                    hits += 1;
                }
            }
            KV::Bool(if *all { hits == list.len() } else { hits > 0 })
        }
        Expr::In { expr, list, negated, ci } => {
            let v = eval(expr, t, row, ctx)?;
            let mut found = false;
            for item in list {
                let w = eval(item, t, row, ctx)?;
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
    })
}

fn binary(op: &BinOp, l: KV, r: KV) -> R<KV> {
    Ok(match op {
        BinOp::Str { op, negated } => {
            if l == KV::Null {
                return Ok(KV::Bool(*negated));
            }
            let (h, n) = (l.text(), r.text());
            let hit = match op {
                StrOp::Has => has_term(&h, &n),
                StrOp::Contains => h.to_lowercase().contains(&n.to_lowercase()),
                StrOp::StartsWith => h.to_lowercase().starts_with(&n.to_lowercase()),
                StrOp::EndsWith => h.to_lowercase().ends_with(&n.to_lowercase()),
            };
            KV::Bool(hit != *negated)
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
    Ok(match f {
        "now" => KV::Date(ctx.now),
        "ago" => match &a[0] {
            KV::Span(d) => KV::Date(ctx.now - *d),
            _ => return err("ago() needs a timespan, such as ago(7d)"),
        },
        "tolower" => a[0].as_str().map(|s| KV::Str(s.to_lowercase())).unwrap_or(KV::Null),
        "toupper" => a[0].as_str().map(|s| KV::Str(s.to_uppercase())).unwrap_or(KV::Null),
        "isempty" => KV::Bool(empty(&a[0])),
        "isnotempty" => KV::Bool(!empty(&a[0])),
        "isnull" => KV::Bool(a[0] == KV::Null),
        "isnotnull" => KV::Bool(a[0] != KV::Null),
        "strlen" => KV::Long(a[0].text().chars().count() as i64),
        "tostring" => KV::Str(a[0].text()),
        "tolong" | "toint" => a[0].text().trim().parse::<i64>().map(KV::Long).unwrap_or(KV::Null),
        "bin" => match (&a[0], &a[1]) {
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
        },
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
        other => return err(format!("the function '{other}' is not supported")),
    })
}
