//! A pool of upstream transports with health tracking and failover, itself a [`Transport`].
//!
//! Each query gets one overall deadline (`query_timeout`). Upstreams are tried one after the
//! other, each attempt limited to `per_attempt_timeout` (and to what is left of the overall
//! deadline; the last candidate gets all that is left): healthy upstreams first, in configuration order, then those currently marked
//! down, soonest-to-recover first, so a query is never refused while time is left.
//!
//! An attempt fails over to the next upstream on anything that blames the upstream: connect
//! failure, TLS failure (which includes every certificate refusal by the verifier), timeout,
//! connection loss, or an unusable response. An upstream that lost the connection mid-query is
//! tried once more at the end of the line (its transport reconnects). A query that is itself
//! malformed is returned at once: no other upstream would accept it either. If every attempt
//! fails, the last error is returned (the front end answers SERVFAIL).
//!
//! Health: every failure counts a consecutive failure and marks the upstream down for
//! `backoff_initial * 2^(failures - 1)`, capped at `backoff_max`; a success clears both.
//! DNS answers are returned as they come, whatever their RCODE.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, warn};

use super::deadline::Deadline;
use super::{BoxFuture, Transport, UpstreamError};

/// Tuning of a [`Pool`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolOptions {
    /// Overall deadline of one query across all attempts.
    pub query_timeout: Duration,
    /// Limit of one attempt on one upstream.
    pub per_attempt_timeout: Duration,
    /// How long an upstream is marked down after its first consecutive failure.
    pub backoff_initial: Duration,
    /// Longest an upstream is marked down.
    pub backoff_max: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            query_timeout: Duration::from_secs(3),
            per_attempt_timeout: Duration::from_millis(1500),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
        }
    }
}

/// A snapshot of one upstream's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamHealth {
    /// The transport's name.
    pub name: String,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// How much longer the upstream is marked down; `None` if it is not.
    pub down_for: Option<Duration>,
    /// The text of the last failure since the last success.
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
struct Health {
    consecutive_failures: u32,
    down_until: Option<Instant>,
    last_error: Option<String>,
}

#[derive(Debug)]
struct Member {
    transport: Arc<dyn Transport>,
    health: Mutex<Health>,
}

impl Member {
    fn health(&self) -> MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Upstream transports behind one [`Transport`], with health tracking and failover.
#[derive(Debug)]
pub struct Pool {
    members: Vec<Member>,
    opts: PoolOptions,
}

impl Pool {
    /// A pool over `upstreams`, in order of preference.
    pub fn new(upstreams: Vec<Arc<dyn Transport>>, opts: PoolOptions) -> Self {
        Pool {
            members: upstreams
                .into_iter()
                .map(|transport| Member {
                    transport,
                    health: Mutex::new(Health::default()),
                })
                .collect(),
            opts,
        }
    }

    /// The health of every upstream, in configuration order.
    pub fn health(&self) -> Vec<UpstreamHealth> {
        let now = Instant::now();
        self.members
            .iter()
            .map(|m| {
                let h = m.health();
                UpstreamHealth {
                    name: m.transport.name().to_owned(),
                    consecutive_failures: h.consecutive_failures,
                    down_for: h
                        .down_until
                        .filter(|&until| until > now)
                        .map(|until| until - now),
                    last_error: h.last_error.clone(),
                }
            })
            .collect()
    }

    /// Indices of the members in the order to try them now.
    fn order(&self) -> Vec<usize> {
        let now = Instant::now();
        let mut keyed: Vec<(Option<Instant>, usize)> = self
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| (m.health().down_until.filter(|&until| until > now), i))
            .collect();
        // `None` (up) sorts before any `Some` (down); ties keep configuration order.
        keyed.sort();
        keyed.into_iter().map(|(_, i)| i).collect()
    }

    fn record_success(&self, member: &Member) {
        let mut h = member.health();
        if h.consecutive_failures > 0 {
            debug!(upstream = %member.transport.name(), "upstream healthy again");
        }
        *h = Health::default();
    }

    fn record_failure(&self, member: &Member, error: &UpstreamError) {
        let mut h = member.health();
        h.consecutive_failures = h.consecutive_failures.saturating_add(1);
        let down_for = backoff(
            self.opts.backoff_initial,
            self.opts.backoff_max,
            h.consecutive_failures,
        );
        h.down_until = Instant::now().checked_add(down_for);
        h.last_error = Some(error.to_string());
    }

    async fn exchange(&self, query: &[u8]) -> Result<Vec<u8>, UpstreamError> {
        if self.members.is_empty() {
            return Err(UpstreamError::NoUpstreams);
        }
        let deadline = Deadline::after(self.opts.query_timeout);
        let mut queue: VecDeque<(usize, bool)> =
            self.order().into_iter().map(|i| (i, false)).collect();
        let mut last_error = None;
        while let Some((index, retried)) = queue.pop_front() {
            if deadline.is_expired() {
                break;
            }
            let Some(member) = self.members.get(index) else {
                continue;
            };
            let name = member.transport.name();
            // The last candidate gets all the time left.
            let attempt = if queue.is_empty() {
                deadline
            } else {
                deadline.min_after(self.opts.per_attempt_timeout)
            };
            let error = match attempt.run(member.transport.query(query)).await {
                Ok(Ok(response)) => {
                    self.record_success(member);
                    return Ok(response);
                }
                Ok(Err(e)) if !blames_upstream(&e) => return Err(e),
                Ok(Err(e)) => e,
                Err(_) => UpstreamError::Timeout,
            };
            self.record_failure(member, &error);
            match &error {
                UpstreamError::Tls { .. } => {
                    warn!(upstream = %name, error = %error, "upstream refused: TLS handshake failed; trying the next upstream");
                }
                _ => {
                    warn!(upstream = %name, error = %error, "upstream failed; trying the next upstream");
                }
            }
            if matches!(error, UpstreamError::ConnectionLost(_)) && !retried {
                queue.push_back((index, true));
            }
            last_error = Some(error);
        }
        let error = last_error.unwrap_or(UpstreamError::Timeout);
        warn!(error = %error, "all upstreams failed");
        Err(error)
    }
}

impl Transport for Pool {
    fn query<'a>(&'a self, query: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, UpstreamError>> {
        Box::pin(self.exchange(query))
    }

    fn name(&self) -> &str {
        "pool"
    }
}

/// Whether `error` says something about the upstream (so another one may do better), as
/// opposed to the query itself being unusable.
fn blames_upstream(error: &UpstreamError) -> bool {
    !matches!(
        error,
        UpstreamError::BadQuery(_) | UpstreamError::MalformedQuery(_) | UpstreamError::NoUpstreams
    )
}

/// How long to mark an upstream down after `failures` consecutive failures.
fn backoff(initial: Duration, max: Duration, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(31);
    initial.saturating_mul(1u32 << doublings).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::WireError;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A transport with scripted results that counts its calls.
    #[derive(Debug)]
    struct Scripted {
        name: String,
        calls: AtomicUsize,
        results: Mutex<VecDeque<Result<Vec<u8>, UpstreamError>>>,
        hang: bool,
        delay: Duration,
    }

    impl Scripted {
        fn new(name: &str, results: Vec<Result<Vec<u8>, UpstreamError>>) -> Arc<Self> {
            Arc::new(Scripted {
                name: name.into(),
                calls: AtomicUsize::new(0),
                results: Mutex::new(results.into()),
                hang: false,
                delay: Duration::ZERO,
            })
        }

        fn hanging(name: &str) -> Arc<Self> {
            Arc::new(Scripted {
                name: name.into(),
                calls: AtomicUsize::new(0),
                results: Mutex::new(VecDeque::new()),
                hang: true,
                delay: Duration::ZERO,
            })
        }

        fn slow(name: &str, delay: Duration, result: Vec<u8>) -> Arc<Self> {
            Arc::new(Scripted {
                name: name.into(),
                calls: AtomicUsize::new(0),
                results: Mutex::new(VecDeque::from([Ok(result)])),
                hang: false,
                delay,
            })
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    impl Transport for Scripted {
        fn query<'a>(&'a self, _: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, UpstreamError>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let next = self.results.lock().unwrap().pop_front();
            let hang = self.hang;
            let delay = self.delay;
            Box::pin(async move {
                if hang {
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(delay).await;
                next.unwrap_or(Err(UpstreamError::ConnectionLost("script ended".into())))
            })
        }

        fn name(&self) -> &str {
            &self.name
        }
    }

    fn lost() -> UpstreamError {
        UpstreamError::ConnectionLost("test".into())
    }

    fn pool(members: &[Arc<Scripted>], opts: PoolOptions) -> Pool {
        Pool::new(
            members
                .iter()
                .map(|m| Arc::clone(m) as Arc<dyn Transport>)
                .collect(),
            opts,
        )
    }

    #[tokio::test]
    async fn fails_over_and_marks_down() {
        let a = Scripted::new(
            "a",
            vec![Err(UpstreamError::Connect {
                addr: "127.0.0.1:1".parse().unwrap(),
                source: std::io::ErrorKind::ConnectionRefused.into(),
            })],
        );
        let b = Scripted::new("b", vec![Ok(vec![1]), Ok(vec![2])]);
        let p = pool(&[Arc::clone(&a), Arc::clone(&b)], PoolOptions::default());
        assert_eq!(p.query(b"q").await.unwrap(), vec![1]);
        let health = p.health();
        assert_eq!(health[0].consecutive_failures, 1);
        assert!(health[0].down_for.is_some());
        assert!(health[0].last_error.as_deref().unwrap().contains("refused"));
        assert_eq!(health[1].consecutive_failures, 0);
        // `a` is down: `b` is asked first and answers.
        assert_eq!(p.query(b"q").await.unwrap(), vec![2]);
        assert_eq!(a.calls(), 1);
        assert_eq!(b.calls(), 2);
    }

    #[tokio::test]
    async fn returns_last_error_when_all_fail() {
        let a = Scripted::new("a", vec![Err(UpstreamError::Timeout)]);
        let b = Scripted::new("b", vec![Err(UpstreamError::Http("503".into()))]);
        let p = pool(&[a, b], PoolOptions::default());
        let err = p.query(b"q").await.unwrap_err();
        assert!(
            matches!(err, UpstreamError::Http(ref s) if s == "503"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn malformed_query_is_not_retried() {
        let a = Scripted::new(
            "a",
            vec![Err(UpstreamError::MalformedQuery(
                WireError::QuestionCount(0),
            ))],
        );
        let b = Scripted::new("b", vec![Ok(vec![1])]);
        let p = pool(&[Arc::clone(&a), Arc::clone(&b)], PoolOptions::default());
        assert!(matches!(
            p.query(b"q").await,
            Err(UpstreamError::MalformedQuery(WireError::QuestionCount(0)))
        ));
        assert_eq!(b.calls(), 0);
        assert_eq!(p.health()[0].consecutive_failures, 0);
    }

    #[tokio::test]
    async fn connection_loss_retries_the_same_upstream_once() {
        let a = Scripted::new("a", vec![Err(lost()), Ok(vec![7])]);
        let p = pool(&[Arc::clone(&a)], PoolOptions::default());
        assert_eq!(p.query(b"q").await.unwrap(), vec![7]);
        assert_eq!(a.calls(), 2);
        let a = Scripted::new("a", vec![Err(lost()), Err(lost()), Ok(vec![7])]);
        let p = pool(&[Arc::clone(&a)], PoolOptions::default());
        assert!(matches!(
            p.query(b"q").await,
            Err(UpstreamError::ConnectionLost(_))
        ));
        assert_eq!(a.calls(), 2);
    }

    #[tokio::test]
    async fn hanging_upstream_times_out_per_attempt() {
        let a = Scripted::hanging("a");
        let b = Scripted::new("b", vec![Ok(vec![3])]);
        let opts = PoolOptions {
            per_attempt_timeout: Duration::from_millis(30),
            ..PoolOptions::default()
        };
        let p = pool(&[Arc::clone(&a), Arc::clone(&b)], opts);
        assert_eq!(p.query(b"q").await.unwrap(), vec![3]);
        let h = p.health();
        assert_eq!(h[0].last_error.as_deref(), Some("timed out"));
    }

    #[tokio::test]
    async fn last_candidate_gets_the_remaining_time() {
        let a = Scripted::slow("a", Duration::from_millis(100), vec![4]);
        let opts = PoolOptions {
            per_attempt_timeout: Duration::from_millis(10),
            query_timeout: Duration::from_secs(5),
            ..PoolOptions::default()
        };
        let p = pool(&[Arc::clone(&a)], opts);
        assert_eq!(p.query(b"q").await.unwrap(), vec![4]);
        assert_eq!(a.calls(), 1);
    }

    #[tokio::test]
    async fn empty_pool_says_so() {
        let p = Pool::new(Vec::new(), PoolOptions::default());
        assert!(matches!(
            p.query(b"q").await,
            Err(UpstreamError::NoUpstreams)
        ));
    }

    #[tokio::test]
    async fn success_resets_health() {
        let a = Scripted::new("a", vec![Err(UpstreamError::Timeout), Ok(vec![1])]);
        let b = Scripted::new("b", vec![Err(UpstreamError::Timeout)]);
        let p = pool(&[Arc::clone(&a), Arc::clone(&b)], PoolOptions::default());
        // a fails, b fails: both down, last error returned.
        assert!(p.query(b"q").await.is_err());
        // Both down: a recovers first (marked down earlier), so it is asked first.
        assert_eq!(p.query(b"q").await.unwrap(), vec![1]);
        let h = p.health();
        assert_eq!(h[0].consecutive_failures, 0);
        assert_eq!(h[0].down_for, None);
        assert_eq!(h[1].consecutive_failures, 1);
    }

    #[test]
    fn backoff_doubles_up_to_max() {
        let s = Duration::from_secs;
        assert_eq!(backoff(s(1), s(60), 1), s(1));
        assert_eq!(backoff(s(1), s(60), 2), s(2));
        assert_eq!(backoff(s(1), s(60), 4), s(8));
        assert_eq!(backoff(s(1), s(60), 7), s(60));
        assert_eq!(backoff(s(1), s(60), u32::MAX), s(60));
    }
}
