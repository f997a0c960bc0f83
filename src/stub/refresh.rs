//! Background refreshes of cache entries: prefetch (an entry asked for in the last tenth of
//! its lifetime) and serve-stale (an expired entry whose question the upstreams are asked
//! again while the client is answered from it, RFC 8767).
//!
//! A refresh is an upstream exchange of its own, not tied to the client that started it: it
//! goes on when that client has been answered, and stores its answer in the cache (or marks
//! the entry's refresh as failed). At most one refresh per cache key runs at once, and at
//! most [`MAX_REFRESHES`] in all; a refresh that finds no free slot is not started (the next
//! query for the key tries again). Each refresh ends within the query timeout.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use super::answer::{Answer, AnswerError};
use super::cache::Cache;
use super::error::Protocol;
use super::message::{classify, CacheKey, Classified};
use super::metrics::Metrics;
use super::options::CacheOptions;
use crate::upstream::{Transport, UpstreamError};

/// Most background refreshes running at once.
pub const MAX_REFRESHES: usize = 64;

/// Why an upstream exchange gave no answer to serve.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// No answer within the query timeout.
    #[error("no upstream answer within the query timeout")]
    Timeout,
    /// The upstream pool failed (every upstream failed, was refused or timed out).
    #[error("upstream: {0}")]
    Upstream(UpstreamError),
    /// The upstream's response was not acceptable.
    #[error("unacceptable upstream answer: {0}")]
    Answer(AnswerError),
    /// The upstream answered SERVFAIL or REFUSED: for serve-stale this is a failure too
    /// (RFC 8767 §4).
    #[error("upstream answered {0}")]
    Rcode(ResponseCode),
    /// The query kept for the refresh did not parse again (a bug).
    #[error("refresh query does not parse")]
    RefreshQuery,
}

/// Whether a fresh answer with this RCODE replaces a stale one: anything but SERVFAIL and
/// REFUSED, which RFC 8767 §4 counts as the upstream failing.
pub(crate) fn usable(answer: &Answer) -> bool {
    !matches!(
        answer.response_code(),
        ResponseCode::ServFail | ResponseCode::Refused
    )
}

/// Asks `upstream` `query` (the stub's upstream query for `q`) within `timeout` and makes
/// the answer ready to serve.
pub(crate) async fn ask(
    upstream: &dyn Transport,
    query: &[u8],
    q: &super::message::ClientQuery<'_>,
    timeout: Duration,
    opts: &CacheOptions,
) -> Result<Answer, Failure> {
    let response = tokio::time::timeout(timeout, upstream.query(query))
        .await
        .map_err(|_| Failure::Timeout)?
        .map_err(Failure::Upstream)?;
    Answer::from_upstream(&response, q, opts).map_err(Failure::Answer)
}

/// Starts and tracks background refreshes.
#[derive(Debug)]
pub struct Refresher {
    upstream: Arc<dyn Transport>,
    cache: Arc<Cache>,
    cache_options: CacheOptions,
    query_timeout: Duration,
    metrics: Arc<Metrics>,
    slots: Arc<Semaphore>,
    in_flight: Arc<Mutex<HashSet<CacheKey>>>,
}

/// Removes a key from the in-flight set when its refresh ends, however it ends (also when
/// the runtime drops the task).
struct InFlight {
    set: Arc<Mutex<HashSet<CacheKey>>>,
    key: CacheKey,
    _permit: OwnedSemaphorePermit,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        lock(&self.set).remove(&self.key);
    }
}

fn lock(set: &Mutex<HashSet<CacheKey>>) -> MutexGuard<'_, HashSet<CacheKey>> {
    // Nothing under this lock can panic halfway; recover rather than propagate poisoning.
    set.lock().unwrap_or_else(|e| e.into_inner())
}

impl Refresher {
    /// A refresher asking `upstream`, storing in `cache`.
    pub fn new(
        upstream: Arc<dyn Transport>,
        cache: Arc<Cache>,
        cache_options: CacheOptions,
        query_timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            upstream,
            cache,
            cache_options,
            query_timeout,
            metrics,
            slots: Arc::new(Semaphore::new(MAX_REFRESHES)),
            in_flight: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    /// Refreshes running now.
    pub fn in_flight(&self) -> usize {
        lock(&self.in_flight).len()
    }

    /// Starts refreshing `key` by sending `query` (the stub's upstream query for it) on the
    /// current Tokio runtime. Returns where its outcome will be sent, or `None` when it was
    /// not started: a refresh of `key` is already running, or [`MAX_REFRESHES`] are.
    pub fn start(
        &self,
        key: &CacheKey,
        query: Vec<u8>,
    ) -> Option<oneshot::Receiver<Result<Arc<Answer>, Failure>>> {
        let guard = {
            let mut set = lock(&self.in_flight);
            if set.contains(key) {
                return None;
            }
            let permit = Arc::clone(&self.slots).try_acquire_owned().ok()?;
            set.insert(key.clone());
            InFlight {
                set: Arc::clone(&self.in_flight),
                key: key.clone(),
                _permit: permit,
            }
        };
        let (tx, rx) = oneshot::channel();
        let upstream = Arc::clone(&self.upstream);
        let cache = Arc::clone(&self.cache);
        let metrics = Arc::clone(&self.metrics);
        let opts = self.cache_options.clone();
        let timeout = self.query_timeout;
        tokio::spawn(async move {
            let outcome = refresh(upstream.as_ref(), &query, &guard.key, timeout, &opts).await;
            let now = Instant::now();
            match &outcome {
                Ok(answer) => {
                    cache.insert(guard.key.clone(), Arc::clone(answer), now);
                }
                Err(failure) => {
                    match failure {
                        Failure::Timeout => metrics.upstream_timeout(),
                        Failure::Rcode(_) => {}
                        _ => metrics.upstream_error(),
                    }
                    tracing::debug!(
                        upstream = upstream.name(),
                        %failure,
                        "background refresh failed"
                    );
                    cache.refresh_failed(&guard.key, now);
                }
            }
            drop(guard);
            // The client may have been answered already (stale, or prefetch): nobody waits.
            let _ = tx.send(outcome);
        });
        Some(rx)
    }
}

async fn refresh(
    upstream: &dyn Transport,
    query: &[u8],
    key: &CacheKey,
    timeout: Duration,
    opts: &CacheOptions,
) -> Result<Arc<Answer>, Failure> {
    // The upstream query is itself a well-formed query for the same key: parse it again to
    // check the response against it.
    let Classified::Query(q) = classify(query, Protocol::Tcp) else {
        return Err(Failure::RefreshQuery);
    };
    if q.key() != key {
        return Err(Failure::RefreshQuery);
    }
    let answer = ask(upstream, query, &q, timeout, opts).await?;
    if !usable(&answer) {
        return Err(Failure::Rcode(answer.response_code()));
    }
    Ok(Arc::new(answer))
}
