//! Deadlines shared by the transports and the pool: one instant after which an exchange is
//! abandoned, however many steps (connect, handshake, waiting for a slot, waiting for the
//! answer, trying another upstream) it takes.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// The deadline passed before the work finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("deadline passed")]
pub struct Expired;

/// A point in time by which something must be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    /// The deadline `timeout` from now (saturating far in the future).
    pub fn after(timeout: Duration) -> Self {
        let now = Instant::now();
        Deadline {
            at: now.checked_add(timeout).unwrap_or_else(|| far_future(now)),
        }
    }

    /// The instant of the deadline.
    pub fn instant(&self) -> Instant {
        self.at
    }

    /// Time left (zero once passed).
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// Whether the deadline has passed.
    pub fn is_expired(&self) -> bool {
        Instant::now() >= self.at
    }

    /// The earlier of this deadline and `timeout` from now: a step's own limit within an
    /// overall deadline.
    pub fn min_after(self, timeout: Duration) -> Self {
        self.min(Deadline::after(timeout))
    }

    /// Run `work` until it finishes or the deadline passes (dropping `work` then).
    pub async fn run<F: Future>(&self, work: F) -> Result<F::Output, Expired> {
        tokio::time::timeout_at(self.at, work)
            .await
            .map_err(|_| Expired)
    }
}

/// Roughly thirty years from `now`, as tokio does for "never".
fn far_future(now: Instant) -> Instant {
    const THIRTY_YEARS: Duration = Duration::from_secs(86_400 * 365 * 30);
    now.checked_add(THIRTY_YEARS).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn run_finishes_or_expires() {
        let d = Deadline::after(Duration::from_millis(20));
        assert_eq!(d.run(async { 5 }).await, Ok(5));
        let never = d.run(std::future::pending::<()>()).await;
        assert_eq!(never, Err(Expired));
        assert!(d.is_expired());
        assert_eq!(d.remaining(), Duration::ZERO);
    }

    #[test]
    fn min_after_picks_the_earlier() {
        let overall = Deadline::after(Duration::from_secs(3));
        let step = overall.min_after(Duration::from_secs(1));
        assert!(step < overall);
        let step = overall.min_after(Duration::from_secs(10));
        assert_eq!(step, overall);
    }

    #[test]
    fn huge_timeouts_do_not_overflow() {
        let d = Deadline::after(Duration::MAX);
        assert!(!d.is_expired());
    }
}
