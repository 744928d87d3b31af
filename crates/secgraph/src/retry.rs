//! The one retry policy: which failed attempts are sent again, after how long, and when to stop.
//!
//! Every request that may be resent — Graph reads and writes, token requests, Key Vault reads — asks
//! [`RetryOptions::decide`] after a failed attempt, and does what it says; no other code decides to resend. The
//! options are a value (`ConnectOptions::retry`, the settings' `Retries` key, the CLI's `--retries`, Python's
//! `retries=`), so they can be configured, documented and table-tested.
//!
//! | request | sent again on | attempts (default) |
//! |---|---|---|
//! | read (Graph GET, Key Vault GET) | 429, 503, 504 (honouring `Retry-After`), a dropped connection, a body cut short or not whole JSON | `max_attempts` (5) |
//! | read | 500, 502 (transient, as Graph documents) | `server_error_attempts` (3) |
//! | write (PATCH, POST) | 429, 503, 504 — never a dropped connection: the server may have acted | `max_attempts` (5) |
//! | token request | 429, 500, 502, 503, 504, a dropped connection, a body cut short | `token_attempts` (4) |
//!
//! Never sent again: a request that timed out (a server that slow will not be faster next time, and the user waits
//! once), and a 429 whose `Retry-After` is longer than `max_wait` (advanced hunting's quota asks for the rest of a
//! 15-minute cycle): the error then carries the wait and the caller decides.

use std::time::Duration;

/// How failed requests are sent again. `Default` is the table in the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryOptions {
    /// Most attempts of a read or a write (the first included).
    pub max_attempts: u32,
    /// Most attempts of a read that fails with HTTP 500 or 502.
    pub server_error_attempts: u32,
    /// Most attempts of a token request.
    pub token_attempts: u32,
    /// Longest `Retry-After` slept through; a longer one stops (429) or is shortened to this (503, 504).
    pub max_wait: Duration,
    /// The first back-off delay; each later one doubles, up to `max_delay`.
    pub base_delay: Duration,
    /// The longest back-off delay.
    pub max_delay: Duration,
    /// Adds up to a quarter second at random to each back-off delay, so many clients do not retry in step.
    pub jitter: bool,
}

impl Default for RetryOptions {
    fn default() -> RetryOptions {
        RetryOptions {
            max_attempts: 5,
            server_error_attempts: 3,
            token_attempts: 4,
            max_wait: Duration::from_secs(60),
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(32),
            jitter: true,
        }
    }
}

impl RetryOptions {
    /// The defaults with `retries` resends at most (of any request: `retries + 1` attempts in all); `0` sends every
    /// request once.
    pub fn with_retries(retries: u32) -> RetryOptions {
        let d = RetryOptions::default();
        let attempts = retries.saturating_add(1);
        RetryOptions {
            max_attempts: attempts,
            server_error_attempts: d.server_error_attempts.min(attempts),
            token_attempts: attempts,
            ..d
        }
    }
}

/// What kind of request failed: it decides what may be resent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// Idempotent (GET): resent after a dropped connection or a bad body too.
    Read,
    /// Not idempotent (PATCH, POST of a change): resent only when the server said it did not act (429, 503, 504).
    Write,
    /// A token request to Entra ID.
    Token,
}

/// How an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The connection failed or dropped before a reply.
    Connection,
    /// The request timed out.
    Timeout,
    /// The reply's body was cut short.
    BodyCutShort,
    /// The reply's body was whole but not what was expected (not JSON).
    BodyUnreadable,
    /// The server answered with this HTTP status, and this `Retry-After` (as asked, not clamped) if any.
    Status(u16, Option<Duration>),
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send it again after this long.
    Retry(Duration),
    /// Give up: the attempt's error is the request's.
    Stop,
    /// Give up because the server asked to wait longer than `max_wait`: the error should carry the wait.
    WaitTooLong(Duration),
}

impl RetryOptions {
    /// The decision after attempt number `attempt` (1-based) failed with `outcome`; `server_errors` counts the
    /// attempts so far (this one included) that failed with 500 or 502.
    pub fn decide(&self, request: Request, attempt: u32, server_errors: u32, outcome: Outcome) -> Decision {
        let attempts = match request {
            Request::Token => self.token_attempts,
            _ => self.max_attempts,
        };
        if attempt >= attempts {
            return match outcome {
                Outcome::Status(429, Some(w)) if w > self.max_wait => Decision::WaitTooLong(w),
                _ => Decision::Stop,
            };
        }
        let resend = match (request, outcome) {
            (_, Outcome::Timeout) => false,
            (Request::Write, Outcome::Status(status, _)) => matches!(status, 429 | 503 | 504),
            (Request::Write, _) => false,
            (_, Outcome::Connection | Outcome::BodyCutShort) => true,
            (Request::Read, Outcome::BodyUnreadable) => true,
            (Request::Token, Outcome::BodyUnreadable) => false,
            (Request::Read, Outcome::Status(status, _)) => {
                matches!(status, 429 | 503 | 504) || (matches!(status, 500 | 502) && server_errors < self.server_error_attempts)
            }
            (Request::Token, Outcome::Status(status, _)) => matches!(status, 429 | 500 | 502 | 503 | 504),
        };
        if !resend {
            return Decision::Stop;
        }
        match outcome {
            Outcome::Status(429, Some(w)) if w > self.max_wait && request != Request::Token => Decision::WaitTooLong(w),
            Outcome::Status(_, Some(w)) => Decision::Retry(w.min(self.max_wait)),
            _ => Decision::Retry(self.backoff(attempt)),
        }
    }

    /// The back-off delay after attempt `attempt` (1-based): `base_delay`, doubled each time, at most `max_delay`,
    /// plus jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doubled = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.max_delay);
        let jitter = if self.jitter {
            Duration::from_millis((uuid::Uuid::new_v4().as_u128() % 250) as u64)
        } else {
            Duration::ZERO
        };
        doubled + jitter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryOptions {
        RetryOptions {
            jitter: false,
            ..RetryOptions::default()
        }
    }

    #[test]
    fn the_decision_table() {
        use Decision::*;
        use Outcome::*;
        use Request::*;
        let s = Duration::from_secs;
        let p = policy();
        // (request, attempt, server errors so far, outcome) → decision
        type Case = (Request, u32, u32, Outcome);
        let table: &[(Case, Decision)] = &[
            ((Read, 1, 0, Status(429, None)), Retry(s(1))),
            ((Read, 2, 0, Status(429, None)), Retry(s(2))),
            ((Read, 1, 0, Status(429, Some(s(7)))), Retry(s(7))),
            ((Read, 1, 0, Status(429, Some(s(900)))), WaitTooLong(s(900))),
            ((Read, 1, 0, Status(503, Some(s(900)))), Retry(s(60))),
            ((Read, 4, 0, Status(503, None)), Retry(s(8))),
            ((Read, 5, 0, Status(503, None)), Stop),
            ((Read, 5, 0, Status(429, Some(s(900)))), WaitTooLong(s(900))),
            ((Read, 1, 1, Status(500, None)), Retry(s(1))),
            ((Read, 2, 2, Status(502, None)), Retry(s(2))),
            ((Read, 3, 3, Status(500, None)), Stop),
            ((Read, 1, 0, Status(404, None)), Stop),
            ((Read, 1, 0, Status(401, None)), Stop),
            ((Read, 1, 0, Connection), Retry(s(1))),
            ((Read, 1, 0, BodyCutShort), Retry(s(1))),
            ((Read, 1, 0, BodyUnreadable), Retry(s(1))),
            ((Read, 1, 0, Timeout), Stop),
            ((Write, 1, 0, Status(429, None)), Retry(s(1))),
            ((Write, 1, 0, Status(504, None)), Retry(s(1))),
            ((Write, 1, 1, Status(500, None)), Stop),
            ((Write, 1, 0, Connection), Stop),
            ((Write, 1, 0, BodyCutShort), Stop),
            ((Token, 1, 0, Status(500, None)), Retry(s(1))),
            ((Token, 3, 0, Status(429, Some(s(3)))), Retry(s(3))),
            ((Token, 4, 0, Status(429, None)), Stop),
            ((Token, 1, 0, Connection), Retry(s(1))),
            ((Token, 1, 0, Timeout), Stop),
            ((Token, 1, 0, Status(400, None)), Stop),
        ];
        for ((request, attempt, errors, outcome), want) in table {
            assert_eq!(
                p.decide(*request, *attempt, *errors, *outcome),
                *want,
                "{request:?} attempt {attempt} ({errors} server errors) {outcome:?}"
            );
        }
    }

    #[test]
    fn backoff_doubles_to_its_cap_and_jitter_stays_small() {
        let p = policy();
        let secs: Vec<u64> = (1..=8).map(|a| p.backoff(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 32, 32]);
        let j = RetryOptions::default().backoff(1);
        assert!(j >= Duration::from_secs(1) && j < Duration::from_millis(1250), "{j:?}");
    }

    #[test]
    fn no_retries_sends_once() {
        let p = RetryOptions::with_retries(0);
        assert_eq!(p.decide(Request::Read, 1, 0, Outcome::Status(503, None)), Decision::Stop);
        assert_eq!(p.decide(Request::Token, 1, 0, Outcome::Connection), Decision::Stop);
        let p = RetryOptions::with_retries(2);
        assert!(matches!(p.decide(Request::Read, 2, 0, Outcome::Connection), Decision::Retry(_)));
        assert_eq!(p.decide(Request::Read, 3, 0, Outcome::Connection), Decision::Stop);
    }
}
