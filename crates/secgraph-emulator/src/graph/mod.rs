//! The Graph security endpoints: alerts_v2, incidents and legacy alerts, with OData query options and paging, and
//! advanced hunting (`hunting`).

mod hunting;
pub mod investigate;
pub mod rules;
pub use hunting::run_hunting_query;

use crate::odata::{self, Expr};
use crate::reply::{ErrorReply, authorize, bytes_response, json_response};
use crate::state::{AppState, RequestId};
use crate::tokens::AccessClaims;
use axum::{
    Extension,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, Uri},
    response::Response,
};
use base64::Engine;
use serde_json::{Value, json};
use std::sync::Arc;

/// The three collections served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    AlertsV2,
    Incidents,
    Legacy,
    SecureScores,
    ControlProfiles,
}

impl Collection {
    fn from_segment(s: &str) -> Option<Collection> {
        match s {
            "alerts_v2" => Some(Collection::AlertsV2),
            "incidents" => Some(Collection::Incidents),
            "alerts" => Some(Collection::Legacy),
            "secureScores" => Some(Collection::SecureScores),
            "secureScoreControlProfiles" => Some(Collection::ControlProfiles),
            _ => None,
        }
    }
    fn segment(self) -> &'static str {
        match self {
            Collection::AlertsV2 => "alerts_v2",
            Collection::Incidents => "incidents",
            Collection::Legacy => "alerts",
            Collection::SecureScores => "secureScores",
            Collection::ControlProfiles => "secureScoreControlProfiles",
        }
    }
    fn type_name(self) -> &'static str {
        match self {
            Collection::AlertsV2 => "microsoft.graph.security.alert",
            Collection::Incidents => "microsoft.graph.security.incident",
            Collection::Legacy => "microsoft.graph.alert",
            Collection::SecureScores => "microsoft.graph.secureScore",
            Collection::ControlProfiles => "microsoft.graph.secureScoreControlProfile",
        }
    }
    /// Roles any one of which grants read access.
    fn read_roles(self) -> &'static [&'static str] {
        match self {
            Collection::AlertsV2 => &["SecurityAlert.Read.All", "SecurityAlert.ReadWrite.All"],
            Collection::Incidents => &["SecurityIncident.Read.All", "SecurityIncident.ReadWrite.All"],
            Collection::Legacy | Collection::SecureScores | Collection::ControlProfiles => {
                &["SecurityEvents.Read.All", "SecurityEvents.ReadWrite.All"]
            }
        }
    }
    /// Roles any one of which grants write access.
    pub fn write_roles(self) -> &'static [&'static str] {
        match self {
            Collection::AlertsV2 => &["SecurityAlert.ReadWrite.All"],
            Collection::Incidents => &["SecurityIncident.ReadWrite.All"],
            _ => &["SecurityEvents.ReadWrite.All"],
        }
    }
    /// Properties `$filter` may name; `None` means any property of the resource.
    fn filterable(self) -> Option<&'static [&'static str]> {
        match self {
            Collection::AlertsV2 => Some(&[
                "assignedTo",
                "classification",
                "determination",
                "createdDateTime",
                "lastUpdateDateTime",
                "severity",
                "serviceSource",
                "status",
            ]),
            Collection::Incidents => Some(&[
                "assignedTo",
                "classification",
                "createdDateTime",
                "determination",
                "lastUpdateDateTime",
                "severity",
                "status",
            ]),
            Collection::Legacy | Collection::SecureScores | Collection::ControlProfiles => None,
        }
    }
    fn sortable(self) -> Option<&'static [&'static str]> {
        match self {
            Collection::AlertsV2 | Collection::Incidents => Some(&["createdDateTime", "lastUpdateDateTime"]),
            Collection::Legacy | Collection::SecureScores | Collection::ControlProfiles => None,
        }
    }
    /// The largest `$top` accepted, and the page size when none is given.
    fn top_limit(self, st: &AppState) -> (usize, usize) {
        let (max, default) = self.own_top_limit(st);
        match st.config.max_top {
            Some(m) => (max.min(m.max(1)), default.min(m.max(1))),
            None => (max, default),
        }
    }
    fn own_top_limit(self, st: &AppState) -> (usize, usize) {
        match self {
            Collection::AlertsV2 => (2000, st.config.page_size.unwrap_or(2000).min(2000)),
            Collection::Incidents => (50, st.config.page_size.unwrap_or(50).min(50)),
            Collection::Legacy => (1000, st.config.page_size.unwrap_or(1000).min(1000)),
            Collection::SecureScores | Collection::ControlProfiles => (1000, st.config.page_size.unwrap_or(100).min(1000)),
        }
    }
    fn items(self, ds: &crate::data::Dataset) -> &[crate::data::Item] {
        match self {
            Collection::AlertsV2 => &ds.alerts_v2,
            Collection::Incidents => &ds.incidents,
            Collection::Legacy => &ds.legacy_alerts,
            Collection::SecureScores => &ds.secure_scores,
            Collection::ControlProfiles => &ds.control_profiles,
        }
    }
}

fn check_version(version: &str) -> Result<(), ErrorReply> {
    if version == "v1.0" || version == "beta" {
        Ok(())
    } else {
        Err(ErrorReply::bad(format!("Invalid version: {version}")))
    }
}

/// Counts a request against its app's and tenant's rate (`--requests-per-minute`), or refuses it as Graph does:
/// 429 `TooManyRequests` with `Retry-After`.
pub(crate) fn admit(st: &AppState, claims: &AccessClaims) -> Result<(), ErrorReply> {
    let Some(limit) = st.config.requests_per_minute else {
        return Ok(());
    };
    st.rate
        .admit(&claims.appid, &claims.tid, limit, std::time::Instant::now())
        .map_err(|wait| {
            ErrorReply::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                format!("Too many requests: this application may send {limit} requests a minute to this tenant's security data."),
            )
            .with_retry_after(wait.as_secs_f64().ceil().max(1.0) as u64)
        })
}

/// The OData system query options of one request, as sent.
#[derive(Debug, Default)]
struct Options {
    filter: Option<String>,
    top: Option<String>,
    skip: Option<String>,
    count: Option<String>,
    orderby: Option<String>,
    select: Option<String>,
    expand: Option<String>,
    skiptoken: Option<String>,
}

fn parse_options(uri: &Uri, version: &str) -> Result<Options, ErrorReply> {
    let mut o = Options::default();
    for (k, v) in url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        // beta accepts the options without the `$` prefix; v1.0 requires it.
        let key = if version == "beta" && !k.starts_with('$') {
            format!("${k}")
        } else {
            k.to_string()
        };
        let slot = match key.as_str() {
            "$filter" => &mut o.filter,
            "$top" => &mut o.top,
            "$skip" => &mut o.skip,
            "$count" => &mut o.count,
            "$orderby" => &mut o.orderby,
            "$select" => &mut o.select,
            "$expand" => &mut o.expand,
            "$skiptoken" => &mut o.skiptoken,
            "$search" | "$format" | "$apply" | "$compute" => {
                return Err(ErrorReply::bad(format!("Query option '{key}' is not supported by this resource.")));
            }
            k if k.starts_with('$') => {
                return Err(ErrorReply::bad(format!("The query parameter '{k}' is not supported.")));
            }
            _ => continue,
        };
        if slot.is_some() {
            return Err(ErrorReply::bad(format!(
                "Query option '{key}' was specified more than once, but it must be specified at most once."
            )));
        }
        *slot = Some(v.into_owned());
    }
    Ok(o)
}

fn parse_usize(name: &str, v: &str) -> Result<usize, ErrorReply> {
    v.trim().parse::<usize>().map_err(|_| {
        ErrorReply::bad(format!(
            "Invalid value '{v}' for query option '{name}': expected a non-negative integer."
        ))
    })
}

/// Where the next page starts: an offset among the sorted hits (`$orderby`), or a cursor — the index in the
/// collection where the scan resumes — so a filtered page costs O(page), not O(collection), as Graph's own tokens
/// (opaque positions) do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    Offset(usize),
    Cursor(usize),
}

fn encode_token(p: Position) -> String {
    let raw = match p {
        Position::Offset(n) => format!("offset={n}"),
        Position::Cursor(n) => format!("cursor={n}"),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_token(t: &str) -> Option<Position> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t).ok()?;
    let s = std::str::from_utf8(&raw).ok()?;
    if let Some(n) = s.strip_prefix("offset=") {
        return n.parse().ok().map(Position::Offset);
    }
    s.strip_prefix("cursor=")?.parse().ok().map(Position::Cursor)
}

/// The value at a property path, for `$orderby` (missing is null).
fn sort_key(v: &Value, path: &[&str]) -> Value {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p).unwrap_or(&Value::Null);
    }
    cur.clone()
}

/// Compares two sort keys (null sorts first, as OData specifies).
fn sort_key_cmp(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => std::cmp::Ordering::Equal,
        (Value::Null, _) => std::cmp::Ordering::Less,
        (_, Value::Null) => std::cmp::Ordering::Greater,
        (Value::Number(x), Value::Number(y)) => x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(std::cmp::Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => std::cmp::Ordering::Equal,
    }
}

/// Time ranges a filter implies for `createdDateTime` and `lastUpdateDateTime`, read from its top-level `and`
/// terms that compare one of them with a date-time literal. Used only to narrow the positions to look at.
#[derive(Debug, Default, Clone, Copy)]
struct TimeBounds {
    created: Option<crate::data::TimeRange>,
    updated: Option<crate::data::TimeRange>,
}

impl TimeBounds {
    fn of(e: &Expr) -> TimeBounds {
        let mut b = TimeBounds::default();
        b.add(e);
        b
    }

    fn add(&mut self, e: &Expr) {
        use odata::{BinOp, Literal};
        let Expr::Binary(op, l, r) = e else { return };
        let (op, path, t) = match (op, &**l, &**r) {
            (BinOp::And, _, _) => {
                self.add(l);
                self.add(r);
                return;
            }
            (_, Expr::Path(p), Expr::Literal(Literal::DateTime(d))) => (*op, p, d),
            (_, Expr::Literal(Literal::DateTime(d)), Expr::Path(p)) => {
                let flipped = match op {
                    BinOp::Gt => BinOp::Lt,
                    BinOp::Ge => BinOp::Le,
                    BinOp::Lt => BinOp::Gt,
                    BinOp::Le => BinOp::Ge,
                    other => *other,
                };
                (flipped, p, d)
            }
            _ => return,
        };
        let slot = match path.as_slice() {
            [p] if p == "createdDateTime" => &mut self.created,
            [p] if p == "lastUpdateDateTime" => &mut self.updated,
            _ => return,
        };
        // Item times are whole ticks, so the literal's tick (rounded down) bounds them on either side.
        let t = crate::data::ticks(t.with_timezone(&chrono::Utc));
        let (lo, hi) = slot.get_or_insert((None, None));
        let raise = |lo: &mut Option<i64>| *lo = Some(lo.map_or(t, |x| x.max(t)));
        let lower = |hi: &mut Option<i64>| *hi = Some(hi.map_or(t, |x| x.min(t)));
        match op {
            BinOp::Ge | BinOp::Gt => raise(lo),
            BinOp::Le | BinOp::Lt => lower(hi),
            BinOp::Eq => {
                raise(lo);
                lower(hi);
            }
            _ => {}
        }
    }
}

/// How long a time range a query's `$filter` covers (on `lastUpdateDateTime`, else `createdDateTime`; an open end
/// is now): `None` when it has no lower bound or names neither. The fault layer's `wide=` selector uses it to model
/// heavy queries.
pub(crate) fn filter_span(filter: &str) -> Option<chrono::Duration> {
    let parsed = odata::parse_filter(filter).ok()?;
    let b = TimeBounds::of(&parsed);
    match b.updated.or(b.created)? {
        (Some(lo), hi) => {
            let hi = hi.unwrap_or_else(|| crate::data::ticks(chrono::Utc::now()));
            Some(chrono::Duration::microseconds((hi - lo) / 10))
        }
        _ => None,
    }
}

pub async fn list(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Path((version, coll)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    list_inner(&st, &version, &coll, &headers, &uri).unwrap_or_else(|f| f.respond(&rid))
}

fn list_inner(st: &AppState, version: &str, coll: &str, headers: &HeaderMap, uri: &Uri) -> Result<Response, ErrorReply> {
    check_version(version)?;
    let Some(coll) = Collection::from_segment(coll) else {
        return Err(ErrorReply::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("Resource not found for the segment '{coll}'."),
        ));
    };
    let claims = authorize(st, headers, coll.read_roles())?;
    admit(st, &claims)?;
    let req = ListRequest::parse(st, coll, uri, version)?;
    if matches!(coll, Collection::AlertsV2 | Collection::Incidents) {
        crate::detections::run_due(st, &claims.tid);
    }
    let data = st.data(&claims.tid);
    let ds = data
        .dataset
        .read()
        .map_err(|_| ErrorReply::new(StatusCode::INTERNAL_SERVER_ERROR, "UnknownError", "dataset lock poisoned"))?;
    let selection = select_page(st, coll, &req, &ds)?;
    write_page(st, version, coll, uri, &req, &ds, selection)
}

/// A list request's options, checked as the service checks them.
struct ListRequest {
    filter: Option<Expr>,
    top: Option<usize>,
    skip: usize,
    position: Option<Position>,
    count: bool,
    expand_alerts: bool,
    select: Option<Vec<String>>,
    order: Option<(String, bool)>,
}

impl ListRequest {
    fn parse(st: &AppState, coll: Collection, uri: &Uri, version: &str) -> Result<ListRequest, ErrorReply> {
        let o = parse_options(uri, version)?;

        let filter: Option<Expr> = match &o.filter {
            None => None,
            Some(f) => {
                let expr = odata::parse_filter(f).map_err(|e| ErrorReply::bad(format!("Invalid filter clause: {e}.")))?;
                check_properties(&expr, coll, st)?;
                Some(expr)
            }
        };
        let (max_top, _) = coll.top_limit(st);
        let top = match &o.top {
            None => None,
            Some(t) => {
                let n = parse_usize("$top", t)?;
                if n > max_top {
                    let code = if coll == Collection::Incidents { "" } else { "BadRequest" };
                    return Err(ErrorReply::new(
                        StatusCode::BAD_REQUEST,
                        code,
                        format!(
                            "The query specified in the URI is not valid. The limit of '{max_top}' for Top query has been exceeded. The value from the incoming request is '{n}'."
                        ),
                    ));
                }
                Some(n)
            }
        };
        let skip = match &o.skip {
            None => 0,
            Some(s) => parse_usize("$skip", s)?,
        };
        let max_skip = match (coll, st.config.max_skip) {
            (Collection::Legacy, m) => Some(m.unwrap_or(500).min(500)),
            (_, m) => m,
        };
        if let Some(max) = max_skip
            && skip > max
        {
            return Err(ErrorReply::bad(format!(
                "The query specified in the URI is not valid. The limit of '{max}' for Skip query has been exceeded. The value from the incoming request is '{skip}'."
            )));
        }
        let position = match &o.skiptoken {
            None => None,
            Some(t) => Some(decode_token(t).ok_or_else(|| ErrorReply::bad("The $skiptoken is not valid."))?),
        };
        let count = match o.count.as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(v) => {
                return Err(ErrorReply::bad(format!("Invalid value '{v}' for $count: expected true or false.")));
            }
        };
        let expand_alerts = match o.expand.as_deref() {
            None => false,
            Some("alerts") if coll == Collection::Incidents => true,
            Some(e) => {
                return Err(ErrorReply::bad(format!(
                    "Parsing OData Select and Expand failed: Could not find a navigation property named '{e}' on type '{}'.",
                    coll.type_name()
                )));
            }
        };
        let select = parse_select(o.select.as_deref(), coll, st)?;
        let order = parse_orderby(o.orderby.as_deref(), coll)?;
        Ok(ListRequest {
            filter,
            top,
            skip,
            position,
            count,
            expand_alerts,
            select,
            order,
        })
    }
}

/// The items of one page, the total when `$count` asked for it, and where the next page starts.
struct Selection<'d> {
    window: Vec<&'d crate::data::Item>,
    total: Option<usize>,
    next: Option<Position>,
    page: usize,
}

/// Which items a request's page holds: the filter (and the ingestion lag) decide, the time index narrows where to
/// look, `$orderby` sorts every hit, collection order scans from the cursor.
fn select_page<'d>(st: &AppState, coll: Collection, req: &ListRequest, ds: &'d crate::data::Dataset) -> Result<Selection<'d>, ErrorReply> {
    let ListRequest {
        filter,
        top,
        skip,
        position,
        count,
        order,
        ..
    } = req;
    let (filter, top, skip, position, count, order) = (filter, *top, *skip, *position, *count, order);
    let items = coll.items(ds);
    let index = match coll {
        Collection::AlertsV2 => Some(&ds.alerts_index),
        Collection::Incidents => Some(&ds.incidents_index),
        _ => None,
    }
    .filter(|ix| ix.len() == items.len());
    let page = top.unwrap_or(coll.top_limit(st).1).max(1);
    let filterable = coll.filterable();
    // Ingestion lag: an item changed less than the lag ago (by the emulator's clock) is not visible yet.
    let visible_until = st
        .config
        .ingestion_lag
        .filter(|_| index.is_some())
        .map(|lag| crate::data::ticks(st.clock.now() - chrono::Duration::from_std(lag).unwrap_or_default()));
    let keep = |p: usize| -> Result<bool, ErrorReply> {
        let item = &items[p];
        if let (Some(limit), Some(ix)) = (visible_until, index)
            && ix.updated(p) > limit
        {
            return Ok(false);
        }
        let bad = |e| ErrorReply::bad(format!("Invalid filter clause: {e}."));
        match (&filter, filterable) {
            (None, _) => Ok(true),
            // Only a few top-level properties can be filtered on: read just those (a generated item answers from
            // its facts, a stored one from its bytes) rather than building the whole item.
            (Some(f), Some(props)) => odata::matches(f, &item.props(props)).map_err(bad),
            (Some(f), None) => item.with_value(|v| odata::matches(f, v)).map_err(bad),
        }
    };
    // The filter's time ranges narrow the positions to look at; the filter itself still decides.
    let bounds = match (&filter, index) {
        (Some(f), Some(_)) => TimeBounds::of(f),
        _ => TimeBounds::default(),
    };
    let candidates = |from: usize| -> Box<dyn Iterator<Item = usize> + '_> {
        let Some(ix) = index else {
            return Box::new(from..items.len());
        };
        let span = bounds.created.map(|r| ix.created_span(r)).unwrap_or(None);
        let created_ok = move |p: &usize| {
            bounds.created.is_none_or(|(lo, hi)| {
                let t = ix.created(*p);
                lo.is_none_or(|lo| t >= lo) && hi.is_none_or(|hi| t <= hi)
            })
        };
        match (bounds.updated, span) {
            (Some(r), _) => Box::new(ix.updated_positions(r, from).into_iter().filter(created_ok)),
            (None, Some((a, b))) => Box::new(a.max(from)..b),
            (None, None) => Box::new(from..items.len()),
        }
    };
    let (window, total, next): (Vec<&crate::data::Item>, Option<usize>, Option<Position>) = match &order {
        // Sorted: every hit is needed to sort; the token is an offset among them.
        Some((path, desc)) => {
            let mut hits: Vec<usize> = Vec::new();
            for p in candidates(0) {
                if keep(p)? {
                    hits.push(p);
                }
            }
            // Stable sorts: ties keep collection order, in either direction.
            let dir = |c: std::cmp::Ordering| if *desc { c.reverse() } else { c };
            match (index, path.as_str()) {
                // Times come from the index (null and missing sort first).
                (Some(ix), "createdDateTime") => hits.sort_by(|a, b| dir(ix.created(*a).cmp(&ix.created(*b)))),
                (Some(ix), "lastUpdateDateTime") => hits.sort_by(|a, b| dir(ix.updated(*a).cmp(&ix.updated(*b)))),
                _ => {
                    let segs: Vec<&str> = path.split('/').collect();
                    let mut keyed: Vec<(Value, usize)> = hits.iter().map(|p| (items[*p].with_value(|v| sort_key(v, &segs)), *p)).collect();
                    keyed.sort_by(|a, b| dir(sort_key_cmp(&a.0, &b.0)));
                    hits = keyed.into_iter().map(|(_, p)| p).collect();
                }
            }
            let start = match position {
                Some(Position::Offset(n)) => n,
                Some(Position::Cursor(_)) => return Err(ErrorReply::bad("The $skiptoken is not valid.")),
                None => skip,
            };
            let total = hits.len();
            let end = start.saturating_add(page).min(total);
            let window = if start < total {
                hits[start..end].iter().map(|p| &items[*p]).collect()
            } else {
                vec![]
            };
            (window, Some(total), (end < total).then_some(Position::Offset(end)))
        }
        // Collection order: scan from the cursor and stop once a page is full and one more hit is seen.
        None => {
            let (from, mut to_skip) = match position {
                Some(Position::Cursor(n)) | Some(Position::Offset(n)) if filter.is_none() => (n, 0),
                Some(Position::Cursor(n)) => (n, 0),
                Some(Position::Offset(_)) => return Err(ErrorReply::bad("The $skiptoken is not valid.")),
                None if filter.is_none() => (skip, 0),
                None => (0, skip),
            };
            let mut window = Vec::with_capacity(page.min(items.len()));
            let mut next = None;
            for i in candidates(from) {
                let item = &items[i];
                if keep(i)? {
                    if to_skip > 0 {
                        to_skip -= 1;
                    } else if window.len() == page {
                        next = Some(Position::Cursor(i));
                        break;
                    } else {
                        window.push(item);
                    }
                }
            }
            let total = if count {
                let mut n = 0;
                for p in candidates(0) {
                    n += usize::from(keep(p)?);
                }
                Some(n)
            } else {
                None
            };
            (window, total, next)
        }
    };

    Ok(Selection { window, total, next, page })
}

/// Writes the page: Graph's envelope (context, count, next link as the service's mode says, then the items).
#[allow(clippy::too_many_arguments)]
fn write_page(
    st: &AppState,
    version: &str,
    coll: Collection,
    uri: &Uri,
    req: &ListRequest,
    ds: &crate::data::Dataset,
    selection: Selection<'_>,
) -> Result<Response, ErrorReply> {
    let Selection { window, total, next, page } = selection;
    let (count, expand_alerts, select, filter) = (req.count, req.expand_alerts, &req.select, &req.filter);
    // Written by hand so that plain pages serialise the stored items in place, without cloning them; the
    // envelope keeps Graph's order (context, count, next link, then value).
    let base = &st.base_url;
    let ctx_suffix = if expand_alerts { "(alerts())" } else { "" };
    let mut out: Vec<u8> = Vec::with_capacity(window.len() * 4096 + 512);
    let ser = |out: &mut Vec<u8>, v: &Value| {
        serde_json::to_writer(out, v).map_err(|e| ErrorReply::new(StatusCode::INTERNAL_SERVER_ERROR, "UnknownError", e.to_string()))
    };
    out.extend_from_slice(b"{\"@odata.context\":");
    ser(
        &mut out,
        &json!(format!("{base}/{version}/$metadata#security/{}{ctx_suffix}", coll.segment())),
    )?;
    if let (true, Some(total)) = (count, total) {
        out.extend_from_slice(format!(",\"@odata.count\":{total}").as_bytes());
    }
    let link = match st.config.next_links {
        crate::NextLinks::Always => true,
        crate::NextLinks::Never => false,
        crate::NextLinks::WhenFiltered => filter.is_some(),
    };
    if let Some(next) = next.filter(|_| link) {
        out.extend_from_slice(b",\"@odata.nextLink\":");
        ser(&mut out, &json!(next_link(st, version, coll, uri, page, next)))?;
    }
    out.extend_from_slice(b",\"value\":[");
    for (i, item) in window.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if select.is_none() && !expand_alerts {
            // Written from the item's facts, or copied from its stored bytes: no tree is built.
            item.write_json(&mut out);
            continue;
        }
        let mut v = item.with_value(|v| project(v, select.as_deref()));
        if expand_alerts && let Some(id) = item.id() {
            let alerts: Vec<Value> = ds.incident_alerts(&id).map(|a| a.with_value(Value::clone)).collect();
            if let Value::Object(m) = &mut v {
                m.insert("alerts".into(), Value::Array(alerts));
            }
        }
        ser(&mut out, &v)?;
    }
    out.extend_from_slice(b"]}");
    Ok(bytes_response(StatusCode::OK, out))
}

/// The next page's absolute URL: the same query options, a page-sized `$top` and a `$skiptoken`.
fn next_link(st: &AppState, version: &str, coll: Collection, uri: &Uri, page: usize, position: Position) -> String {
    // Keys keep their `$`; values are percent-encoded (spaces as %20), as Graph writes its next links.
    const VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'\'')
        .remove(b'(')
        .remove(b')')
        .remove(b':')
        .remove(b',')
        .remove(b'/');
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, VALUE).to_string();
    let mut parts = Vec::new();
    for (k, v) in url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        let key = k.trim_start_matches('$');
        if matches!(key, "top" | "skip" | "skiptoken") {
            continue;
        }
        parts.push(format!("{}={}", enc(&k).replace("%24", "$"), enc(&v)));
    }
    parts.push(format!("$top={page}"));
    parts.push(format!("$skiptoken={}", encode_token(position)));
    let q = parts.join("&");
    format!("{}/{version}/security/{}?{q}", st.base_url, coll.segment())
}

fn known_properties(coll: Collection, st: &AppState) -> Vec<String> {
    let ds = st.home.dataset.read();
    match ds {
        Ok(ds) => coll
            .items(&ds)
            .first()
            .and_then(|i| i.as_object())
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default(),
        Err(_) => vec![],
    }
}

fn check_properties(expr: &Expr, coll: Collection, st: &AppState) -> Result<(), ErrorReply> {
    let allowed: Vec<String> = match coll.filterable() {
        Some(list) => list.iter().map(|s| s.to_string()).collect(),
        None => known_properties(coll, st),
    };
    let mut bad: Option<String> = None;
    odata::visit_root_properties(expr, &mut |p| {
        if bad.is_none()
            && let Some(first) = p.first()
            && !allowed.iter().any(|a| a == first)
        {
            bad = Some(first.clone());
        }
    });
    match bad {
        None => Ok(()),
        Some(p) if coll.filterable().is_some_and(|_| known_properties(coll, st).contains(&p)) => Err(ErrorReply::bad(format!(
            "Invalid filter clause: filtering on property '{p}' is not supported. Supported properties: {}.",
            allowed.join(", ")
        ))),
        Some(p) => Err(ErrorReply::bad(format!(
            "Invalid filter clause: Could not find a property named '{p}' on type '{}'.",
            coll.type_name()
        ))),
    }
}

fn parse_select(sel: Option<&str>, coll: Collection, st: &AppState) -> Result<Option<Vec<String>>, ErrorReply> {
    let Some(sel) = sel else { return Ok(None) };
    if coll != Collection::Legacy {
        return Err(ErrorReply::bad(format!(
            "Query option '$select' is not supported on '{}'.",
            coll.segment()
        )));
    }
    let known = known_properties(coll, st);
    let mut out = Vec::new();
    for p in sel.split(',').map(str::trim) {
        if !known.iter().any(|k| k == p) {
            return Err(ErrorReply::bad(format!(
                "Parsing OData Select and Expand failed: Could not find a property named '{p}' on type '{}'.",
                coll.type_name()
            )));
        }
        out.push(p.to_string());
    }
    Ok(Some(out))
}

fn parse_orderby(ob: Option<&str>, coll: Collection) -> Result<Option<(String, bool)>, ErrorReply> {
    let Some(ob) = ob else { return Ok(None) };
    let mut parts = ob.split_whitespace();
    let (Some(prop), dir, None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ErrorReply::bad(format!("Invalid $orderby '{ob}': expected 'property [asc|desc]'.")));
    };
    let desc = match dir {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(d) => {
            return Err(ErrorReply::bad(format!("Invalid $orderby direction '{d}': expected asc or desc.")));
        }
    };
    if let Some(allowed) = coll.sortable()
        && !allowed.contains(&prop)
    {
        return Err(ErrorReply::bad(format!(
            "Invalid $orderby: sorting by '{prop}' is not supported. Supported: {}.",
            allowed.join(", ")
        )));
    }
    Ok(Some((prop.to_string(), desc)))
}

fn project(item: &Value, select: Option<&[String]>) -> Value {
    match (select, item) {
        (Some(keys), Value::Object(m)) => {
            let mut out = serde_json::Map::new();
            for k in keys {
                if let Some(v) = m.get(k) {
                    out.insert(k.clone(), v.clone());
                }
            }
            Value::Object(out)
        }
        _ => item.clone(),
    }
}

pub async fn get_one(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Path((version, coll, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let r = (|| -> Result<Response, ErrorReply> {
        check_version(&version)?;
        let Some(c) = Collection::from_segment(&coll) else {
            return Err(ErrorReply::bad(format!("Resource not found for the segment '{coll}'.")));
        };
        let claims = authorize(&st, &headers, c.read_roles())?;
        admit(&st, &claims)?;
        let o = parse_options(&uri, &version)?;
        let select = parse_select(o.select.as_deref(), c, &st)?;
        if matches!(c, Collection::AlertsV2 | Collection::Incidents) {
            crate::detections::run_due(&st, &claims.tid);
        }
        let data = st.data(&claims.tid);
        let ds = data
            .dataset
            .read()
            .map_err(|_| ErrorReply::new(StatusCode::INTERNAL_SERVER_ERROR, "UnknownError", "dataset lock poisoned"))?;
        let Some(item) = c.items(&ds).iter().find(|v| v.id().as_deref() == Some(id.as_str())) else {
            return Err(ErrorReply::new(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("{} '{id}' was not found.", c.type_name()),
            ));
        };
        let mut v = item.with_value(|v| project(v, select.as_deref()));
        if o.expand.as_deref() == Some("alerts") && c == Collection::Incidents {
            let alerts: Vec<Value> = ds.incident_alerts(&id).map(|a| a.with_value(Value::clone)).collect();
            if let Value::Object(m) = &mut v {
                m.insert("alerts".into(), Value::Array(alerts));
            }
        }
        if let Value::Object(m) = &mut v {
            m.insert(
                "@odata.context".into(),
                json!(format!("{}/{version}/$metadata#security/{}/$entity", st.base_url, c.segment())),
            );
        }
        Ok(json_response(StatusCode::OK, &v))
    })();
    r.unwrap_or_else(|f| f.respond(&rid))
}
