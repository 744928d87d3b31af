//! Named points of an export's progress where a test can stop the process, so crash tests land where they mean to
//! on any machine, however fast (no wall-clock delays).
//!
//! `SECGRAPH_EXPORT_CRASH_AT=POINT#N` aborts the process (no destructor, no flush: as `kill -9` would) the `N`th time
//! the process reaches `POINT`; `SECGRAPH_EXPORT_PAUSE_AT=POINT#N` writes `secgraph: paused at POINT#N` to stderr
//! and then waits forever (for a test to start a second writer, then kill this one). Unset — as always outside tests —
//! they cost one relaxed atomic load. The points:
//!
//! | point | where |
//! |---|---|
//! | `locked` | the lock is held, before recovery |
//! | `page` | a page has been read and its rows handed to the writers |
//! | `staged` | a data file is whole as `….parquet.pending` (uploaded, on an object store) |
//! | `committed` | the checkpoint naming the pending files has been written, before any rename |
//! | `renamed` | one pending file has been renamed to `.parquet` |

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A place in an export's run (see the module's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Point {
    Locked,
    Page,
    Staged,
    Committed,
    Renamed,
}

impl Point {
    const ALL: [Point; 5] = [Point::Locked, Point::Page, Point::Staged, Point::Committed, Point::Renamed];

    fn name(self) -> &'static str {
        match self {
            Point::Locked => "locked",
            Point::Page => "page",
            Point::Staged => "staged",
            Point::Committed => "committed",
            Point::Renamed => "renamed",
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Action {
    Abort,
    Pause,
}

struct Plan {
    action: Action,
    point: Point,
    nth: usize,
    seen: AtomicUsize,
}

fn plan() -> Option<&'static Plan> {
    static PLAN: OnceLock<Option<Plan>> = OnceLock::new();
    PLAN.get_or_init(|| {
        let (action, spec) = match (std::env::var("SECGRAPH_EXPORT_CRASH_AT"), std::env::var("SECGRAPH_EXPORT_PAUSE_AT")) {
            (Ok(s), _) => (Action::Abort, s),
            (_, Ok(s)) => (Action::Pause, s),
            _ => return None,
        };
        let (name, nth) = spec.split_once('#').unwrap_or((spec.as_str(), "1"));
        let point = Point::ALL.into_iter().find(|p| p.name() == name.trim())?;
        Some(Plan {
            action,
            point,
            nth: nth.trim().parse().ok()?,
            seen: AtomicUsize::new(0),
        })
    })
    .as_ref()
}

/// Marks that the run reached `point`; stops the process here when a test asked for it.
pub(crate) fn reached(point: Point) {
    let Some(plan) = plan() else { return };
    if plan.point != point || plan.seen.fetch_add(1, Ordering::SeqCst) + 1 != plan.nth {
        return;
    }
    match plan.action {
        Action::Abort => std::process::abort(),
        Action::Pause => {
            // Test-only: the one place the library writes to stderr, so a test knows the pause began.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "secgraph: paused at {}#{}", point.name(), plan.nth);
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
    }
}
