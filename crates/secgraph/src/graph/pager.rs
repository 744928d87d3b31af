//! Paging: [`Pages`], a `Send + 'static` stream of [`Page`]s that follows `@odata.nextLink` (the shape of
//! azure_core's `Pager`), and [`Pages::into_sink`], which pushes them into a [`RowSink`] until it is done or the
//! sink says stop.
//!
//! Invariants: every row once (an item repeated under an id already delivered in the run is dropped and counted);
//! a next link to another origin, a repeated next link, or one past the page cap ends the stream with an error after
//! the page that carried it; nothing is fetched that the consumer did not ask for (the stream is lazy, and dropping
//! it stops the run) — except the pages [`Pages::prefetch`] fetches ahead when asked to.

use super::GraphClient;
use crate::error::{Error, Result};
use crate::output::RowSink;
use crate::row::Row;
use futures_util::stream::{self, Stream, StreamExt};
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::HashSet;
use std::hash::BuildHasher;
use std::pin::Pin;
use std::task::{Context, Poll};
use url::Url;

/// One page of results: its rows and the paging facts that came with it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Page {
    /// The collection's items (or the single entity a non-collection reply holds), repeated items removed, each
    /// as the JSON text the service sent.
    pub rows: Vec<Row>,
    /// `@odata.nextLink`, when there is more.
    pub next_link: Option<String>,
    /// `@odata.count`, when the query asked for it.
    pub count: Option<u64>,
    /// The page's position in its run, from 1.
    pub number: usize,
    /// Items of this page dropped because the run had already delivered an item with the same id.
    pub duplicates: usize,
    /// The columns a reply declared, as (name, type) in order: advanced hunting's `schema` (`DateTime`, `Int64`,
    /// `String`, `Dynamic`, …). Empty for OData collections.
    pub schema: Vec<(String, String)>,
}

impl Page {
    /// A page of these rows.
    pub fn of_rows(rows: Vec<Row>) -> Page {
        Page {
            rows,
            next_link: None,
            count: None,
            number: 1,
            duplicates: 0,
            schema: Vec::new(),
        }
    }

    /// Reads a reply: a collection (`value` list), a single entity (its `@odata.*` annotations dropped), or
    /// nothing. A `value` that is not a list is an error.
    ///
    /// ```
    /// let p = secgraph::graph::Page::from_reply(serde_json::json!({
    ///     "value": [{"id": "a"}], "@odata.nextLink": "https://graph.microsoft.com/v1.0/x?$skip=1"
    /// })).unwrap();
    /// assert_eq!((p.rows.len(), p.next_link.is_some()), (1, true));
    /// ```
    pub fn from_reply(reply: Value) -> std::result::Result<Page, String> {
        let count = reply.get("@odata.count").and_then(Value::as_u64);
        let next_link = reply.get("@odata.nextLink").and_then(Value::as_str).map(str::to_string);
        let rows = match reply {
            Value::Object(mut m) => match m.remove("value") {
                Some(Value::Array(rows)) => rows.iter().map(Row::from_value).collect(),
                Some(_) => return Err("'value' is not a list".into()),
                None => {
                    m.retain(|k, _| !k.starts_with("@odata."));
                    vec![Row::from_value(&Value::Object(m))]
                }
            },
            Value::Null => vec![],
            other => vec![Row::from_value(&other)],
        };
        Ok(Page {
            next_link,
            count,
            ..Page::of_rows(rows)
        })
    }

    /// Reads a reply from its bytes, keeping each item's text as it came (no tree is built for a collection's
    /// items). The same shapes as [`Page::from_reply`]; an empty body is an empty page.
    ///
    /// ```
    /// let p = secgraph::graph::Page::from_bytes(br#"{"value":[{"id":"a","n":1}],"@odata.count":1}"#).unwrap();
    /// assert_eq!((p.rows[0].json(), p.count), (r#"{"id":"a","n":1}"#, Some(1)));
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> std::result::Result<Page, String> {
        #[derive(serde::Deserialize)]
        struct Envelope<'a> {
            // The items are split in the same pass that reads the envelope: each one borrowed as its text.
            #[serde(borrow)]
            value: Option<Vec<&'a RawValue>>,
            #[serde(rename = "@odata.nextLink")]
            next_link: Option<String>,
            #[serde(rename = "@odata.count")]
            count: Option<u64>,
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Page::of_rows(vec![]));
        }
        // Valid UTF-8 checked once for the whole page, so the parser need not check each string again.
        let envelope = match std::str::from_utf8(bytes) {
            Ok(text) => serde_json::from_str::<Envelope<'_>>(text),
            Err(_) => serde_json::from_slice::<Envelope<'_>>(bytes),
        };
        match envelope {
            Ok(Envelope {
                value: Some(items),
                next_link,
                count,
            }) => Ok(Page {
                next_link,
                count,
                ..Page::of_rows(items.into_iter().map(|r| Row::from_raw(r.to_owned())).collect())
            }),
            // A single entity, `null`, or another shape: rare and small; read as a tree.
            _ => Page::from_reply(serde_json::from_slice(bytes).map_err(|e| e.to_string())?),
        }
    }
}

/// What a paging run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PageSummary {
    /// Pages received.
    pub pages: usize,
    /// Rows delivered to the sink.
    pub rows: usize,
    /// `@odata.count` from the first page, when the query asked for it.
    pub count: Option<u64>,
    /// Items the service sent again under an id already seen in this run, dropped.
    pub duplicates: usize,
}

/// A stream of pages that is `Send + 'static`: it can be driven from `tokio::spawn`, a web handler or a Python
/// binding. Get one from [`GraphClient::pages`] or [`crate::QueryProvider::pages`].
///
/// ```no_run
/// # async fn demo(provider: secgraph::QueryProvider) -> secgraph::Result<()> {
/// use futures_util::StreamExt;
/// let q = provider.render("Alerts.list", &[("start".into(), "-7d".into())])?;
/// let mut pages = provider.pages(&q)?;
/// let task = tokio::spawn(async move {
///     let mut n = 0;
///     while let Some(page) = pages.next().await {
///         n += page?.rows.len();
///     }
///     Ok::<_, secgraph::Error>(n)
/// });
/// println!("{} alerts", task.await.expect("task")?);
/// # Ok(()) }
/// ```
pub struct Pages {
    inner: Pin<Box<dyn Stream<Item = Result<Page>> + Send>>,
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pages").finish_non_exhaustive()
    }
}

impl Stream for Pages {
    type Item = Result<Page>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl Pages {
    /// Wraps any stream of pages.
    pub fn new(stream: impl Stream<Item = Result<Page>> + Send + 'static) -> Pages {
        Pages { inner: Box::pin(stream) }
    }

    /// A stream of one page (or one error): a hunting result, a single entity.
    pub fn single(page: Result<Page>) -> Pages {
        Pages::new(stream::once(async move { page }))
    }

    /// Stops after `max` rows in all: the page that reaches it is cut, and no further page is fetched.
    pub fn limit_rows(self, max: usize) -> Pages {
        Pages::new(stream::unfold((self, max), |(mut inner, left)| async move {
            if left == 0 {
                return None;
            }
            match inner.next().await? {
                Ok(mut p) => {
                    p.rows.truncate(left);
                    let left = left - p.rows.len();
                    Some((Ok(p), (inner, left)))
                }
                Err(e) => Some((Err(e), (inner, 0))),
            }
        }))
    }

    /// Keeps only the rows for which `keep` is true (each row is parsed for the test).
    pub fn filter_rows(self, keep: impl Fn(&Value) -> bool + Send + 'static) -> Pages {
        Pages::new(self.map(move |p| {
            p.map(|mut p| {
                p.rows.retain(|r| keep(&r.to_value()));
                p
            })
        }))
    }

    /// Fetches up to `ahead` pages ahead of the consumer on a background task (a bounded pipeline: the next page
    /// downloads while this one is decoded and written). Dropping the stream stops the task after the page in hand.
    /// Needs a Tokio runtime.
    pub fn prefetch(self, ahead: usize) -> Pages {
        let (tx, rx) = tokio::sync::mpsc::channel(ahead.max(1));
        let mut inner = self;
        tokio::spawn(async move {
            while let Some(item) = inner.next().await {
                let stop = item.is_err();
                if tx.send(item).await.is_err() || stop {
                    break;
                }
            }
        });
        Pages::new(stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }))
    }

    /// Pushes every page's rows into `sink` until the stream ends or the sink answers
    /// [`ControlFlow::Break`](std::ops::ControlFlow::Break), then calls [`RowSink::finish`]. An error ends the run (after the pages before it).
    ///
    /// When the run fails after rows were delivered, a warning says how many (the error itself is returned as is).
    pub async fn into_sink(self, sink: &mut dyn RowSink) -> Result<PageSummary> {
        let mut summary = PageSummary::default();
        let result = self.drive(sink, &mut summary).await;
        if result.is_err() && summary.rows > 0 {
            tracing::warn!(
                rows = summary.rows,
                pages = summary.pages,
                "the run failed after {} row(s) in {} page(s) had been delivered",
                summary.rows,
                summary.pages
            );
        }
        result.map(|()| summary)
    }

    async fn drive(mut self, sink: &mut dyn RowSink, summary: &mut PageSummary) -> Result<()> {
        while let Some(page) = self.next().await {
            let page = page?;
            summary.pages += 1;
            if summary.pages == 1 {
                summary.count = page.count;
                if !page.schema.is_empty() {
                    sink.columns(&page.schema);
                }
            }
            summary.duplicates += page.duplicates;
            summary.rows += page.rows.len();
            if sink.page(page.rows)?.is_break() {
                break;
            }
        }
        sink.finish()
    }
}

/// The pager's state between pages.
struct Run {
    client: GraphClient,
    next: Option<Url>,
    /// An error found after the page that carried its cause (a bad next link): yielded on the next poll.
    pending: Option<Error>,
    links: HashSet<String>,
    /// 128-bit hashes of the ids delivered (two independently keyed SipHashes): 16 bytes per row however long
    /// the ids; a collision (odds ~n²/2¹²⁹) would drop one row.
    ids: HashSet<u128>,
    id_keys: (std::collections::hash_map::RandomState, std::collections::hash_map::RandomState),
    pages: usize,
    rows: usize,
    /// The page size the requests ask for (`$top`), so that a full page without a next link can be told from the
    /// last one; `None` when unknown (the service's default page size).
    top: Option<usize>,
    /// The request as first sent, which a continuation rewrites.
    first: Url,
    /// How the run reads on: next links, or (after a full page without one) a continuation of its own.
    mode: Mode,
    /// Whether any page of the run carried a next link.
    seen_links: bool,
    /// Items received so far, repeats included (positions in the service's order).
    received: usize,
    /// The next request only checks that a full last page was the end: a refusal ends the run quietly.
    probing: bool,
}

/// How a paging run continues.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// `@odata.nextLink`, as Graph documents.
    Links,
    /// By time boundary: ordered by `property` ascending, each request from the last value delivered, skipping the
    /// `at_last` items already delivered at that exact instant (ties neither lost nor repeated).
    Time {
        property: &'static str,
        last: Option<String>,
        at_last: usize,
    },
    /// By `$skip`, for a query with an order of its own: the next request skips this many.
    Skip(usize),
}

/// The time property a collection can be paged by (immutable, so the order cannot shift while paging).
fn time_property(url: &Url) -> Option<&'static str> {
    match crate::batches::schema::collection(url.path()) {
        Some("alerts_v2" | "incidents" | "alerts") => Some("createdDateTime"),
        _ => None,
    }
}

/// The query options of `url`, decoded: `[("$filter", "severity eq 'high'"), …]`.
fn options(url: &Url) -> Vec<(String, String)> {
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    url.query()
        .map(super::split_query)
        .unwrap_or_default()
        .into_iter()
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// `url` with options replaced (`None` removes one), encoded as the client encodes every request.
fn with_options(url: &Url, set: &[(&str, Option<String>)]) -> Url {
    let mut opts: Vec<(String, String)> = options(url)
        .into_iter()
        .filter(|(k, _)| !set.iter().any(|(s, _)| k.eq_ignore_ascii_case(s)))
        .collect();
    opts.extend(set.iter().filter_map(|(k, v)| v.clone().map(|v| (k.to_string(), v))));
    let mut out = url.clone();
    let q: Vec<String> = opts
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                percent_encoding::utf8_percent_encode(k, super::QUERY),
                percent_encoding::utf8_percent_encode(v, super::QUERY)
            )
        })
        .collect();
    out.set_query((!q.is_empty()).then(|| q.join("&")).as_deref());
    out
}

fn option(url: &Url, name: &str) -> Option<String> {
    options(url).into_iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

impl Run {
    /// After a page with no next link: the request that reads on, when the page was full (the service stopped
    /// giving next links, as alerts_v2 has been seen to), or `None` at the true end.
    fn continuation(&mut self, page: &Page, received: usize) -> Option<Url> {
        let top = self.top?;
        if received < top {
            return None;
        }
        if self.mode == Mode::Links {
            self.mode = match (option(&self.first, "$orderby"), time_property(&self.first)) {
                // The service gave next links until now: a full last page is most likely the end (the total was a
                // multiple of the page size). One request past it, by `$skip`, makes sure; if the service refuses
                // that request, the run ends as the service said.
                _ if self.seen_links => {
                    self.probing = true;
                    Mode::Skip(self.received - received)
                }
                (None, Some(property)) => Mode::Time {
                    property,
                    last: None,
                    at_last: 0,
                },
                _ => Mode::Skip(0),
            };
            tracing::info!(
                page = page.number,
                rows = received,
                mode = ?self.mode,
                "a full page came without @odata.nextLink; reading on by the run's own continuation"
            );
        }
        let filter = option(&self.first, "$filter");
        match &mut self.mode {
            Mode::Links => None,
            Mode::Skip(skip) => {
                *skip += received;
                Some(with_options(
                    &self.first,
                    &[
                        ("$skip", Some(skip.to_string())),
                        ("$skiptoken", None),
                        ("$top", Some(top.to_string())),
                    ],
                ))
            }
            Mode::Time { property, last, at_last } => {
                // The first time round the page was not in order: the run starts over in order, from the beginning
                // (rows already delivered are dropped by id); after that, from the last instant delivered.
                let bound = last.clone();
                let mut q: Vec<(&str, Option<String>)> = vec![
                    ("$orderby", Some(format!("{property} asc"))),
                    ("$skiptoken", None),
                    ("$top", Some(top.to_string())),
                    (
                        "$filter",
                        match (&filter, &bound) {
                            (Some(f), Some(b)) => Some(format!("({f}) and {property} ge {b}")),
                            (None, Some(b)) => Some(format!("{property} ge {b}")),
                            (f, None) => f.clone(),
                        },
                    ),
                ];
                q.push(("$skip", (*at_last > 0).then(|| at_last.to_string())));
                Some(with_options(&self.first, &q))
            }
        }
    }

    /// In time-boundary mode, remembers where a page (in order) ended: its last time, and how many of the rows
    /// received (delivered or not) share that instant, counting on from the page before when the instant is the same.
    fn note_boundary(&mut self, raw_times: &[Option<String>]) {
        let Mode::Time { last, at_last, .. } = &mut self.mode else { return };
        let Some(Some(end)) = raw_times.last() else { return };
        let same = raw_times.iter().rev().take_while(|t| t.as_deref() == Some(end.as_str())).count();
        if last.as_deref() == Some(end.as_str()) {
            // Still at the same instant: the skip within it grows by the page.
            *at_last += same;
        } else {
            *last = Some(end.clone());
            *at_last = same;
        }
    }
    async fn fetch(&mut self, url: Url) -> Result<Page> {
        let mut page = self.client.send_parsed(reqwest::Method::GET, &url, None, Page::from_bytes).await?;
        self.pages += 1;
        page.number = self.pages;
        let received = page.rows.len();
        self.received += received;
        self.seen_links |= page.next_link.is_some();
        // A page asked for in time order: where it ended, before duplicates are dropped (positions count).
        let ordered = matches!(self.mode, Mode::Time { .. }) && option(&url, "$orderby").is_some();
        let times: Vec<Option<String>> = match &self.mode {
            Mode::Time { property, .. } if ordered => page
                .rows
                .iter()
                .map(|r| {
                    serde_json::from_str::<Value>(r.json())
                        .ok()
                        .and_then(|v| v.get(*property).and_then(Value::as_str).map(str::to_string))
                })
                .collect(),
            _ => Vec::new(),
        };
        if page.next_link.is_some() && self.top.is_none() {
            // The service's own page size, learnt from a page it says is not the last.
            self.top = Some(received);
        }
        // A collection item repeated under the same id (an offset page that drifted, a server fault) is dropped and
        // counted: every row once. Rows without an `id` (hunting results, custom shapes) are never deduplicated.
        let before = page.rows.len();
        let (ids, keys) = (&mut self.ids, &self.id_keys);
        page.rows.retain(|r| {
            r.id().is_none_or(|id| {
                let half = |k: &std::collections::hash_map::RandomState| k.hash_one(&id);
                ids.insert((u128::from(half(&keys.0)) << 64) | u128::from(half(&keys.1)))
            })
        });
        page.duplicates = before - page.rows.len();
        if page.duplicates > 0 {
            tracing::warn!(
                dropped = page.duplicates,
                page = page.number,
                "the service repeated items already received; dropped them"
            );
        }
        self.rows += page.rows.len();
        if let Some(link) = &page.next_link {
            match self.follow(link) {
                Ok(u) => self.next = Some(u),
                Err(e) => self.pending = Some(e),
            }
        } else {
            if ordered {
                self.note_boundary(&times);
            }
            if let Some(u) = self.continuation(&page, received) {
                match self.follow(u.as_str()) {
                    Ok(u) => self.next = Some(u),
                    Err(e) => self.pending = Some(e),
                }
            }
        }
        Ok(page)
    }

    /// Checks a next link before it is followed: on the Graph origin, not seen before, within the page cap.
    fn follow(&mut self, link: &str) -> Result<Url> {
        let u = Url::parse(link).map_err(|e| Error::Paging {
            message: format!("the service sent an invalid @odata.nextLink ({e})"),
        })?;
        if self.client.check_target(&u).is_err() {
            return Err(Error::Paging {
                message: format!(
                    "@odata.nextLink points at {}, not at the Graph host {}; not following it",
                    u.origin().ascii_serialization(),
                    self.client.root().origin().ascii_serialization()
                ),
            });
        }
        let cap = self.client.limits().max_pages;
        if self.pages >= cap {
            return Err(Error::Paging {
                message: format!(
                    "stopped at the page cap of {cap} pages with more to come; {} rows were delivered (raise the cap: PagingLimits::max_pages; or narrow the query)",
                    self.rows
                ),
            });
        }
        if !self.links.insert(link.to_string()) {
            return Err(Error::Paging {
                message: format!(
                    "the service repeated an @odata.nextLink after page {}; stopping instead of looping (rows so far: {})",
                    self.pages, self.rows
                ),
            });
        }
        Ok(u)
    }
}

impl GraphClient {
    /// The pages of a collection, from `url` through every `@odata.nextLink`. Lazy: each page is fetched when the
    /// stream is polled.
    pub fn pages(&self, url: Url) -> Pages {
        // The page size asked: a full page without a next link is then known not to be the last. Without `$top`,
        // a security collection's pages are at most its documented maximum; the first page with a next link
        // tells the service's own size.
        let top = option(&url, "$top")
            .and_then(|t| t.trim().parse::<usize>().ok())
            .or_else(|| time_property(&url).map(|_| super::page_maximum(url.path())));
        let run = Run {
            client: self.clone(),
            links: HashSet::from([url.to_string()]),
            first: url.clone(),
            next: Some(url),
            pending: None,
            ids: HashSet::new(),
            id_keys: Default::default(),
            pages: 0,
            rows: 0,
            top,
            mode: Mode::Links,
            seen_links: false,
            received: 0,
            probing: false,
        };
        Pages::new(stream::unfold(Some(run), |run| async move {
            let mut run = run?;
            if let Some(e) = run.pending.take() {
                return Some((Err(e), None));
            }
            let url = run.next.take()?;
            // This request only checks that the page before was the last (set by the page before).
            let probe = std::mem::take(&mut run.probing);
            match run.fetch(url).await {
                Ok(page) if probe && page.rows.is_empty() => None,
                Ok(page) => Some((Ok(page), Some(run))),
                Err(e) if probe && e.http_status() == Some(400) => {
                    tracing::warn!(error = %e, "could not check that the last full page was the end (the service refused the request past it); ending there");
                    None
                }
                Err(e) => Some((Err(e), None)),
            }
        }))
    }

    /// Follows `@odata.nextLink` from `url` until the last page, pushing each page's rows into `sink`. A reply
    /// without `value` (a single entity) is pushed as one row. A next link already followed, one past the page cap,
    /// or one that leaves the Graph host, stops the run with an error rather than looping or leaking the token.
    pub async fn page_through(&self, url: Url, sink: &mut dyn RowSink) -> Result<PageSummary> {
        self.pages(url).into_sink(sink).await
    }
}
