//! One client message in, at most one response out: the path shared by UDP and TCP.
//! Malformed messages are answered or dropped at once; queries are answered from the cache
//! or the upstream, or get SERVFAIL within the query timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;

use super::answer::Answer;
use super::cache::Cache;
use super::error::Protocol;
use super::message::{classify, servfail, upstream_query, Classified, ClientQuery};
use super::metrics::Metrics;
use super::options::{CacheOptions, StubOptions};
use crate::upstream::{Transport, UpstreamError};

/// Turns client messages into responses, through the cache and the upstream.
#[derive(Debug)]
pub struct QueryHandler {
    upstream: Arc<dyn Transport>,
    cache: Cache,
    cache_options: CacheOptions,
    query_timeout: Duration,
    metrics: Arc<Metrics>,
}

impl QueryHandler {
    /// A handler forwarding to `upstream` with the timeout and cache of `opts`, counting in
    /// `metrics`.
    pub fn new(upstream: Arc<dyn Transport>, opts: &StubOptions, metrics: Arc<Metrics>) -> Self {
        Self {
            upstream,
            cache: Cache::new(&opts.cache),
            cache_options: opts.cache.clone(),
            query_timeout: opts.query_timeout,
            metrics,
        }
    }

    /// The counters this handler updates.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The answer cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The response to one client message received over `proto`, or `None` when the message
    /// is dropped (shorter than a header, or a response over UDP). Never takes longer than
    /// the query timeout plus local work.
    pub async fn handle(&self, message: &[u8], proto: Protocol) -> Option<Vec<u8>> {
        self.metrics.query();
        match classify(message, proto) {
            Classified::Drop(reason) => {
                self.metrics.dropped();
                tracing::debug!(?reason, len = message.len(), "dropped client message");
                None
            }
            Classified::Refuse { response, reason } => {
                if reason.response_code() == ResponseCode::NotImp {
                    self.metrics.notimp();
                } else {
                    self.metrics.formerr();
                }
                tracing::debug!(?reason, "refused client message");
                Some(response)
            }
            Classified::Query(q) => Some(self.resolve(&q, proto).await),
        }
    }

    async fn resolve(&self, q: &ClientQuery<'_>, proto: Protocol) -> Vec<u8> {
        let limit = q.size_limit(proto);
        if let Some((answer, age)) = self.cache.get(q.key(), Instant::now()) {
            self.metrics.cache_hit();
            return self.deliver(&answer, q, age, limit);
        }
        self.metrics.cache_miss();
        match self.ask_upstream(q).await {
            Ok(answer) => {
                let answer = Arc::new(answer);
                self.cache
                    .insert(q.key().clone(), Arc::clone(&answer), Instant::now());
                self.deliver(&answer, q, 0, limit)
            }
            Err(Failure::Timeout) => {
                self.metrics.upstream_timeout();
                self.fail(q)
            }
            Err(failure) => {
                self.metrics.upstream_error();
                tracing::debug!(upstream = self.upstream.name(), %failure, "upstream failed");
                self.fail(q)
            }
        }
    }

    async fn ask_upstream(&self, q: &ClientQuery<'_>) -> Result<Answer, Failure> {
        let query = upstream_query(q);
        let response = tokio::time::timeout(self.query_timeout, self.upstream.query(&query))
            .await
            .map_err(|_| Failure::Timeout)?
            .map_err(Failure::Upstream)?;
        Answer::from_upstream(&response, q, &self.cache_options).map_err(Failure::Answer)
    }

    fn deliver(&self, answer: &Answer, q: &ClientQuery<'_>, age: u32, limit: usize) -> Vec<u8> {
        let rendered = answer.render(q, age, limit);
        if rendered.truncated {
            self.metrics.truncated();
        }
        self.metrics.answered();
        rendered.bytes
    }

    fn fail(&self, q: &ClientQuery<'_>) -> Vec<u8> {
        self.metrics.servfail();
        servfail(q)
    }
}

/// Why a query got SERVFAIL.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("no upstream answer within the query timeout")]
    Timeout,
    #[error("upstream: {0}")]
    Upstream(UpstreamError),
    #[error("unacceptable upstream answer: {0}")]
    Answer(super::answer::AnswerError),
}
