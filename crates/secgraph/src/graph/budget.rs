//! Graph's request budgets, kept on the client side: a token bucket per client (one tenant and app), shared by every
//! clone of the client — parallel slices of one query, concurrent queries — so that secgraph never sends more than
//! the service allows however much parallelism it is asked for.
//!
//! Graph's security APIs allow 150 requests a minute per app per tenant for alert and incident reads and updates;
//! advanced hunting allows about 45 calls a minute. Each bucket starts full (a burst of its whole minute) and refills
//! continuously.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Requests a minute for security collections (alerts_v2, incidents, legacy alerts, secure scores) and updates.
pub const SECURITY_PER_MINUTE: u32 = 150;
/// Calls a minute for advanced hunting (runHuntingQuery).
pub const HUNTING_PER_MINUTE: u32 = 45;

/// A token bucket: `capacity` tokens, refilled at `capacity` per minute.
#[derive(Debug)]
pub(crate) struct Bucket {
    capacity: f64,
    state: Mutex<(f64, Instant)>,
    /// Time requests spent waiting for a token, in milliseconds, across the clones of the client.
    waited_ms: AtomicU64,
    /// What the bucket is for, in messages ("alerts and incidents", "advanced hunting").
    what: &'static str,
}

impl Bucket {
    pub(crate) fn per_minute(n: u32, what: &'static str) -> Bucket {
        let capacity = f64::from(n.max(1));
        Bucket {
            capacity,
            state: Mutex::new((capacity, Instant::now())),
            waited_ms: AtomicU64::new(0),
            what,
        }
    }

    /// Time requests have waited for this budget so far.
    pub(crate) fn waited(&self) -> Duration {
        Duration::from_millis(self.waited_ms.load(Ordering::Relaxed))
    }

    /// How long to wait before a request may go; takes its token when the answer is zero.
    fn reserve(&self) -> Duration {
        // A poisoned lock means a panic elsewhere while holding it: the counter itself is still usable.
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let rate = self.capacity / 60.0;
        let tokens = (s.0 + now.duration_since(s.1).as_secs_f64() * rate).min(self.capacity);
        *s = (tokens, now);
        if tokens >= 1.0 {
            s.0 -= 1.0;
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - tokens) / rate)
        }
    }

    /// Waits for a token.
    pub(crate) async fn take(&self) {
        loop {
            let wait = self.reserve();
            if wait.is_zero() {
                return;
            }
            // A call that seems to hang says why: a wait over a second is logged at info (the CLI's -v; Python's
            // `secgraph` logger), and every wait is counted for the summary and the progress line.
            if wait >= Duration::from_secs(1) {
                tracing::info!(
                    wait_s = wait.as_secs_f64().round() as u64,
                    "waiting {:.0} s for the request budget ({}/min for {})",
                    wait.as_secs_f64(),
                    self.capacity,
                    self.what
                );
            } else {
                tracing::debug!(wait_ms = wait.as_millis() as u64, "request budget spent; waiting");
            }
            self.waited_ms.fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_of_the_minute_then_the_refill_rate() {
        let b = Bucket::per_minute(60, "test");
        let t = std::time::Instant::now();
        for _ in 0..60 {
            b.take().await;
        }
        assert!(t.elapsed() < Duration::from_millis(500));
        // The 61st must wait about a second (60 a minute).
        let wait = b.reserve();
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1), "{wait:?}");
    }
}
