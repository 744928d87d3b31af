//! Graph's request rate for the security collections, per app and tenant (`--requests-per-minute`): a token
//! bucket holding a minute's requests and refilled evenly, as the client's own budget is — so a client that keeps
//! its budget is never refused, and one that does not is answered 429 with the seconds until its next request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets by (app id, tenant id).
#[derive(Debug, Default)]
pub struct RequestRate {
    buckets: Mutex<HashMap<(String, String), (f64, Instant)>>,
}

impl RequestRate {
    /// Takes one request from `(app, tenant)`'s bucket of `per_minute`, or says how long until one is there.
    pub fn admit(&self, app: &str, tenant: &str, per_minute: u32, now: Instant) -> Result<(), Duration> {
        let per_minute = f64::from(per_minute.max(1));
        let mut all = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tokens, at) = all
            .entry((app.to_ascii_lowercase(), tenant.to_ascii_lowercase()))
            .or_insert((per_minute, now));
        let refill = now.saturating_duration_since(*at).as_secs_f64() * per_minute / 60.0;
        *tokens = (*tokens + refill).min(per_minute);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            return Ok(());
        }
        Err(Duration::from_secs_f64((1.0 - *tokens) * 60.0 / per_minute))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_of_requests_then_one_as_each_refills() {
        let r = RequestRate::default();
        let t0 = Instant::now();
        for _ in 0..150 {
            assert!(r.admit("app", "t", 150, t0).is_ok());
        }
        let wait = r.admit("app", "t", 150, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.4).abs() < 1e-6, "{wait:?}");
        assert!(r.admit("app", "other", 150, t0).is_ok(), "another tenant has its own bucket");
        assert!(r.admit("app", "t", 150, t0 + Duration::from_millis(400)).is_ok());
        assert!(r.admit("app", "t", 150, t0 + Duration::from_millis(400)).is_err());
    }
}
