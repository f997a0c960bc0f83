//! One client message in, at most one response out: the path shared by UDP and TCP.
//! Malformed messages are answered or dropped at once; UDP responses to remote clients pass
//! the rate limit ([`super::ratelimit`]); clients outside `allow` get REFUSED; queries are
//! answered from the cache or the upstream, or get SERVFAIL within the query timeout. UDP
//! answers to remote clients are cut at [`MAX_REMOTE_UDP_PAYLOAD`] bytes.
//!
//! Serve stale (RFC 8767): when the cache holds only an expired entry for a query, a
//! [background refresh](super::refresh) asks the upstreams; the client gets its answer if it
//! comes within `stale_answer_client_timeout`, and otherwise (upstreams failed, refused,
//! timed out, or are slow) the stale entry with TTL [`STALE_TTL`]. After a failed refresh,
//! stale answers for that entry are sent at once for [`STALE_RECHECK`](super::cache::STALE_RECHECK)
//! while refreshes go on behind. Only answers that came over CT-verified connections are ever
//! cached, so stale ones carry the same provenance. Malformed and refused messages never get
//! stale answers (they never reach the cache). Prefetch: a fresh entry asked for in the last
//! tenth of its lifetime is refreshed in the background.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use ipnet::IpNet;

use super::answer::Answer;
use super::cache::{Cache, Lookup, STALE_TTL};
use super::error::Protocol;
use super::message::{
    classify, header_only_response, question_only_response, servfail, upstream_query, Classified,
    ClientQuery,
};
use super::metrics::Metrics;
use super::options::{is_local_client, CacheOptions, StubOptions, MAX_REMOTE_UDP_PAYLOAD};
use super::ratelimit::{RateLimiter, Verdict};
use super::refresh::{self, Failure, Refresher};
use crate::upstream::Transport;
use crate::wire::header;

/// Turns client messages into responses, through the cache and the upstream.
#[derive(Debug)]
pub struct QueryHandler {
    upstream: Arc<dyn Transport>,
    cache: Arc<Cache>,
    cache_options: CacheOptions,
    refresher: Refresher,
    stale_log: StaleLog,
    query_timeout: Duration,
    metrics: Arc<Metrics>,
    allow: Vec<IpNet>,
    rate_limit: Option<RateLimiter>,
    rate_limit_loopback: bool,
}

impl QueryHandler {
    /// A handler forwarding to `upstream` with the timeout and cache of `opts`, counting in
    /// `metrics`.
    pub fn new(upstream: Arc<dyn Transport>, opts: &StubOptions, metrics: Arc<Metrics>) -> Self {
        let cache = Arc::new(Cache::new(&opts.cache));
        Self {
            refresher: Refresher::new(
                Arc::clone(&upstream),
                Arc::clone(&cache),
                opts.cache.clone(),
                opts.query_timeout,
                Arc::clone(&metrics),
            ),
            stale_log: StaleLog::default(),
            upstream,
            cache,
            cache_options: opts.cache.clone(),
            query_timeout: opts.query_timeout,
            metrics,
            allow: opts.allow.clone(),
            rate_limit: opts
                .rate_limit
                .enabled
                .then(|| RateLimiter::new(&opts.rate_limit)),
            rate_limit_loopback: opts.rate_limit.loopback,
        }
    }

    /// Whether queries from `client` are served (it is inside one of the `allow` networks).
    pub fn allows(&self, client: IpAddr) -> bool {
        let client = client.to_canonical();
        self.allow.iter().any(|net| net.contains(&client))
    }

    /// The counters this handler updates.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The answer cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Background refreshes (prefetch, serve-stale) running now.
    pub fn refreshes_in_flight(&self) -> usize {
        self.refresher.in_flight()
    }

    /// [`QueryHandler::handle_from`] for a message from 127.0.0.1.
    pub async fn handle(&self, message: &[u8], proto: Protocol) -> Option<Vec<u8>> {
        self.handle_from(message, proto, IpAddr::V4(Ipv4Addr::LOCALHOST))
            .await
    }

    /// The response to one message from `client` received over `proto`, or `None` when the
    /// message is dropped (shorter than a header, a response over UDP, or over the rate
    /// limit). Never takes longer than the query timeout plus local work.
    pub async fn handle_from(
        &self,
        message: &[u8],
        proto: Protocol,
        client: IpAddr,
    ) -> Option<Vec<u8>> {
        let received = Instant::now();
        let mut out = Vec::new();
        match self.answer_now(message, proto, client, received, &mut out) {
            Now::Respond => Some(out),
            Now::Drop => None,
            Now::Later => self.finish_later(message, proto, client, received).await,
        }
    }

    /// Everything of [`QueryHandler::handle_from`] that needs no upstream, without waiting:
    /// counting, classifying, the rate limit, `allow`, error responses and cache hits (with
    /// prefetch). When it returns [`Now::Respond`] the response is in `out` (cleared first,
    /// so that a listener can reuse one buffer for every response) and the metrics are
    /// updated; on [`Now::Later`] the caller must call [`QueryHandler::finish_later`] with
    /// the same message, which resolves it through the upstream (a cache miss or a stale
    /// entry). `received` is when the message arrived.
    pub fn answer_now(
        &self,
        message: &[u8],
        proto: Protocol,
        client: IpAddr,
        received: Instant,
        out: &mut Vec<u8>,
    ) -> Now {
        out.clear();
        let now = match self.respond_now(message, proto, client, received, out) {
            Step::Respond => Now::Respond,
            Step::Drop => Now::Drop,
            Step::Resolve => return Now::Later,
        };
        let response = match now {
            Now::Respond => Some(&out[..]),
            _ => None,
        };
        self.metrics.responded(proto, response, received.elapsed());
        now
    }

    /// The rest of a message for which [`QueryHandler::answer_now`] returned [`Now::Later`]:
    /// the query is resolved through the upstream (or the cache, should the answer have
    /// arrived meanwhile) within the query timeout, and the metrics are updated.
    pub async fn finish_later(
        &self,
        message: &[u8],
        proto: Protocol,
        client: IpAddr,
        received: Instant,
    ) -> Option<Vec<u8>> {
        // `answer_now` counted the message and passed it through the rate limit and `allow`;
        // classifying the same bytes again gives the same query.
        let response = match classify(message, proto) {
            Classified::Query(q) => {
                let remote_udp = proto == Protocol::Udp && !is_local_client(client.to_canonical());
                Some(self.resolve(&q, proto, remote_udp).await)
            }
            Classified::Refuse { .. } | Classified::Drop(_) => None,
        };
        self.metrics
            .responded(proto, response.as_deref(), received.elapsed());
        response
    }

    /// [`QueryHandler::answer_now`] without the final metrics.
    fn respond_now(
        &self,
        message: &[u8],
        proto: Protocol,
        client: IpAddr,
        received: Instant,
        out: &mut Vec<u8>,
    ) -> Step {
        self.metrics.query();
        let client = client.to_canonical();
        let classified = classify(message, proto);
        if let Classified::Drop(reason) = classified {
            self.metrics.dropped();
            tracing::debug!(?reason, len = message.len(), "dropped client message");
            return Step::Drop;
        }
        let remote_udp = proto == Protocol::Udp && !is_local_client(client);
        if let Some(limiter) = &self.rate_limit {
            if proto == Protocol::Udp && (remote_udp || self.rate_limit_loopback) {
                match limiter.check(client, received) {
                    Verdict::Pass => {}
                    Verdict::Drop => {
                        self.metrics.rate_limited();
                        return Step::Drop;
                    }
                    Verdict::Slip => {
                        self.metrics.rate_limit_slip();
                        match &classified {
                            Classified::Query(q) => out.extend_from_slice(&question_only_response(
                                q,
                                ResponseCode::NoError,
                                true,
                            )),
                            // An error response is header-only already: send it with TC.
                            Classified::Refuse { response, .. } => {
                                out.extend_from_slice(response.get(..12).unwrap_or_default());
                                crate::wire::set_bits(out, header::FLAGS_HI, header::TC, true);
                            }
                            Classified::Drop(_) => return Step::Drop,
                        }
                        return Step::Respond;
                    }
                }
            }
        }
        if !self.allows(client) {
            self.metrics.refused();
            tracing::debug!(%client, %proto, "query from outside `allow` refused");
            match &classified {
                Classified::Query(q) => {
                    out.extend_from_slice(&question_only_response(q, ResponseCode::Refused, false))
                }
                _ => out.extend_from_slice(&refused_header(message)),
            }
            return Step::Respond;
        }
        match classified {
            Classified::Drop(_) => Step::Drop,
            Classified::Refuse { response, reason } => {
                if reason.response_code() == ResponseCode::NotImp {
                    self.metrics.notimp();
                } else {
                    self.metrics.formerr();
                }
                tracing::debug!(?reason, "refused client message");
                out.extend_from_slice(&response);
                Step::Respond
            }
            Classified::Query(q) => {
                if self.answer_hit(&q, proto, remote_udp, received, out) {
                    Step::Respond
                } else {
                    Step::Resolve
                }
            }
        }
    }

    /// The largest response for `q` over `proto`.
    fn limit(q: &ClientQuery<'_>, proto: Protocol, remote_udp: bool) -> usize {
        let limit = q.size_limit(proto);
        if remote_udp {
            limit.min(usize::from(MAX_REMOTE_UDP_PAYLOAD))
        } else {
            limit
        }
    }

    /// Answers `q` into `out` from a fresh cache entry (starting a prefetch when it is
    /// due); false when the cache holds no fresh entry for it.
    fn answer_hit(
        &self,
        q: &ClientQuery<'_>,
        proto: Protocol,
        remote_udp: bool,
        now: Instant,
        out: &mut Vec<u8>,
    ) -> bool {
        let Some((answer, age, prefetch)) = self.cache.get_fresh(q.key(), now) else {
            return false;
        };
        self.metrics.cache_hit();
        if prefetch
            && self.cache_options.prefetch
            && self.refresher.start(q.key(), upstream_query(q)).is_some()
        {
            self.metrics.prefetch();
            tracing::debug!(key = ?q.key(), "prefetching");
        }
        if answer.render_fresh_into(q, age, Self::limit(q, proto, remote_udp), out) {
            self.metrics.truncated();
        }
        self.metrics.answered();
        true
    }

    async fn resolve(&self, q: &ClientQuery<'_>, proto: Protocol, remote_udp: bool) -> Vec<u8> {
        let limit = Self::limit(q, proto, remote_udp);
        let stale = match self.cache.lookup(q.key(), Instant::now()) {
            Lookup::Fresh {
                answer,
                age,
                prefetch,
            } => {
                self.metrics.cache_hit();
                if prefetch
                    && self.cache_options.prefetch
                    && self.refresher.start(q.key(), upstream_query(q)).is_some()
                {
                    self.metrics.prefetch();
                    tracing::debug!(key = ?q.key(), "prefetching");
                }
                return self.deliver(&answer, q, age, limit);
            }
            Lookup::Stale {
                answer,
                recently_failed,
                ..
            } => Some((answer, recently_failed)),
            Lookup::Miss => None,
        };
        self.metrics.cache_miss();
        if let Some((stale, recently_failed)) = stale {
            return self.resolve_stale(q, &stale, recently_failed, limit).await;
        }
        let query = upstream_query(q);
        match refresh::ask(
            self.upstream.as_ref(),
            &query,
            q,
            self.query_timeout,
            &self.cache_options,
        )
        .await
        {
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

    /// A query whose only cache entry is stale: refresh it in the background, wait for that
    /// up to `stale_answer_client_timeout` (not at all when its last refresh failed less
    /// than `STALE_RECHECK` ago, or when a refresh of it is running already), and answer
    /// with the fresh answer if it came, else with the stale one.
    async fn resolve_stale(
        &self,
        q: &ClientQuery<'_>,
        stale: &Answer,
        recently_failed: bool,
        limit: usize,
    ) -> Vec<u8> {
        let pending = self.refresher.start(q.key(), upstream_query(q));
        if let (Some(rx), false) = (pending, recently_failed) {
            let wait = self
                .cache_options
                .stale_answer_client_timeout
                .min(self.query_timeout);
            match tokio::time::timeout(wait, rx).await {
                Ok(Ok(Ok(fresh))) => return self.deliver(&fresh, q, 0, limit),
                Ok(Ok(Err(failure))) => {
                    tracing::debug!(upstream = self.upstream.name(), %failure, "refresh failed");
                }
                // Slower than the client timeout: the refresh goes on behind.
                Err(_) | Ok(Err(_)) => {}
            }
        }
        self.metrics.stale_answer();
        tracing::debug!(key = ?q.key(), "serving stale answer");
        self.stale_log.note(self.upstream.name());
        let rendered = stale.render_stale(q, STALE_TTL, limit);
        if rendered.truncated {
            self.metrics.truncated();
        }
        self.metrics.answered();
        rendered.bytes
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

/// What [`QueryHandler::answer_now`] did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Now {
    /// The response is ready in the buffer passed in: send it.
    Respond,
    /// No response is to be sent (dropped, rate-limited).
    Drop,
    /// The query needs the upstream: pass the message to [`QueryHandler::finish_later`].
    Later,
}

/// What [`QueryHandler::respond_now`] decided, before the metrics of the response.
enum Step {
    Respond,
    Drop,
    Resolve,
}

/// A header-only REFUSED for a message that is not a well-formed query: the message's ID,
/// opcode and RD (12 bytes, no longer than any message that has a header).
fn refused_header(message: &[u8]) -> Vec<u8> {
    let id = crate::wire::read_u16(message, header::ID).unwrap_or(0);
    let flags = message.get(header::FLAGS_HI).copied().unwrap_or(0);
    header_only_response(
        id,
        hickory_proto::op::OpCode::from_u8((flags >> 3) & 0x0F),
        flags & header::RD != 0,
        ResponseCode::Refused,
    )
}

/// How often, at most, serving stale answers is logged at WARN.
const STALE_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Rate-limits the WARN line about stale answers: one per [`STALE_LOG_INTERVAL`], with how
/// many were served since the previous one (each is also logged at DEBUG).
#[derive(Debug, Default)]
struct StaleLog {
    /// When the last line was logged, and the stale answers served since.
    state: Mutex<(Option<Instant>, u64)>,
}

impl StaleLog {
    fn note(&self, upstream: &str) {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.1 = state.1.saturating_add(1);
        if state
            .0
            .is_some_and(|last| now.saturating_duration_since(last) < STALE_LOG_INTERVAL)
        {
            return;
        }
        tracing::warn!(
            upstream,
            stale_answers = state.1,
            "upstreams failing or slow: serving stale answers from the cache (RFC 8767, TTL 30)"
        );
        *state = (Some(now), 0);
    }
}
