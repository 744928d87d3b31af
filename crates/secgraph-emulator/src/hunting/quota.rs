//! Advanced hunting's documented limits, per tenant: calls a minute, CPU per 15-minute cycle, and the size of one
//! result. A call over a quota is answered 429 with `Retry-After` and a message naming the quota, as the service does.
//!
//! CPU is modelled, not measured, so it is the same on every machine: a query costs 1 ms plus 1 ms per 1,000 table
//! rows it reads (each source table, `let` and join side counts).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The limits (defaults: the service's).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HuntingQuota {
    /// Calls a minute per tenant (the service: 45).
    pub calls_per_minute: u32,
    /// Modelled CPU milliseconds per tenant per 15 minutes (default 10 minutes of CPU).
    pub cpu_ms_per_cycle: u64,
    /// Largest result, in bytes of JSON (the service: 50 MB).
    pub max_result_bytes: usize,
}

impl Default for HuntingQuota {
    fn default() -> Self {
        HuntingQuota {
            calls_per_minute: 45,
            cpu_ms_per_cycle: 600_000,
            max_result_bytes: 50 * 1024 * 1024,
        }
    }
}

const MINUTE: Duration = Duration::from_secs(60);
const CYCLE: Duration = Duration::from_secs(15 * 60);

/// The modelled CPU cost of a query that read `rows` table rows.
pub fn cost_ms(rows: u64) -> u64 {
    1 + rows / 1000
}

#[derive(Debug, Default)]
struct Tenant {
    calls: VecDeque<Instant>,
    cpu: VecDeque<(Instant, u64)>,
}

/// Calls and CPU used, per tenant.
#[derive(Debug, Default)]
pub struct Usage(Mutex<HashMap<String, Tenant>>);

/// Why a call was refused: the wait and the message.
pub struct Refusal {
    /// How long to wait (`Retry-After`).
    pub retry_after: Duration,
    /// The service's message, naming the quota.
    pub message: String,
}

impl Usage {
    /// Counts a call for `tenant`, or refuses it when a quota is used up.
    pub fn admit(&self, tenant: &str, q: &HuntingQuota, now: Instant) -> Result<(), Refusal> {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let t = all.entry(tenant.to_string()).or_default();
        while t.calls.front().is_some_and(|c| now.duration_since(*c) >= MINUTE) {
            t.calls.pop_front();
        }
        while t.cpu.front().is_some_and(|(c, _)| now.duration_since(*c) >= CYCLE) {
            t.cpu.pop_front();
        }
        let used: u64 = t.cpu.iter().map(|(_, ms)| ms).sum();
        if used >= q.cpu_ms_per_cycle {
            // Wait until enough of the cycle's cost has aged out to go below the budget.
            let mut left = used;
            let mut until = now;
            for (at, ms) in &t.cpu {
                left -= ms;
                until = *at + CYCLE;
                if left < q.cpu_ms_per_cycle {
                    break;
                }
            }
            let wait = until.saturating_duration_since(now).max(Duration::from_secs(1));
            return Err(Refusal {
                retry_after: wait,
                message: format!(
                    "Advanced hunting's CPU quota for this tenant is used up for the current 15-minute cycle ({used} of {} ms). Retry after {} seconds, or make queries cheaper (narrow the Timespan, filter early).",
                    q.cpu_ms_per_cycle,
                    wait.as_secs()
                ),
            });
        }
        if t.calls.len() >= q.calls_per_minute as usize {
            let oldest = t.calls.front().copied().unwrap_or(now);
            let wait = (oldest + MINUTE).saturating_duration_since(now).max(Duration::from_secs(1));
            return Err(Refusal {
                retry_after: wait,
                message: format!(
                    "Too many requests: advanced hunting allows {} calls a minute per tenant. Retry after {} seconds.",
                    q.calls_per_minute,
                    wait.as_secs()
                ),
            });
        }
        t.calls.push_back(now);
        Ok(())
    }

    /// Charges a finished query's CPU to `tenant`.
    pub fn charge(&self, tenant: &str, ms: u64, now: Instant) {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.entry(tenant.to_string()).or_default().cpu.push_back((now, ms));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_a_minute_then_wait_for_the_oldest() {
        let q = HuntingQuota {
            calls_per_minute: 3,
            ..Default::default()
        };
        let u = Usage::default();
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(u.admit("a", &q, t0 + Duration::from_secs(i)).is_ok());
        }
        let r = u
            .admit("a", &q, t0 + Duration::from_secs(10))
            .expect_err("the fourth call is refused");
        assert_eq!(r.retry_after, Duration::from_secs(50));
        assert!(r.message.contains("3 calls a minute"), "{}", r.message);
        // Another tenant has its own quota; a minute later the first tenant may call again.
        assert!(u.admit("b", &q, t0 + Duration::from_secs(10)).is_ok());
        assert!(u.admit("a", &q, t0 + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn cpu_per_cycle() {
        let q = HuntingQuota {
            cpu_ms_per_cycle: 100,
            ..Default::default()
        };
        let u = Usage::default();
        let t0 = Instant::now();
        assert!(u.admit("a", &q, t0).is_ok());
        u.charge("a", 60, t0);
        assert!(u.admit("a", &q, t0 + Duration::from_secs(1)).is_ok());
        u.charge("a", 60, t0 + Duration::from_secs(120));
        let r = u.admit("a", &q, t0 + Duration::from_secs(200)).expect_err("over the CPU budget");
        // The first charge ages out at 15 minutes, which brings the cycle under the budget.
        assert_eq!(r.retry_after, Duration::from_secs(700));
        assert!(r.message.contains("CPU quota"), "{}", r.message);
        assert!(u.admit("a", &q, t0 + CYCLE).is_ok());
        assert_eq!(cost_ms(0), 1);
        assert_eq!(cost_ms(25_000), 26);
    }
}
