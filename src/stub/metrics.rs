//! Counters of what the stub server did, for tests and logging.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters, shared by every listener of one server. Read them with
/// [`Metrics::snapshot`].
#[derive(Debug, Default)]
pub struct Metrics {
    queries: AtomicU64,
    answered: AtomicU64,
    servfail: AtomicU64,
    formerr: AtomicU64,
    notimp: AtomicU64,
    dropped: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    truncated: AtomicU64,
    upstream_errors: AtomicU64,
    upstream_timeouts: AtomicU64,
    tcp_connections_refused: AtomicU64,
    refused: AtomicU64,
    rate_limited: AtomicU64,
    rate_limit_slips: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Messages received from clients (UDP datagrams and TCP frames), malformed ones included.
    pub queries: u64,
    /// Responses carrying the upstream's answer, fresh or from the cache, whatever its RCODE.
    pub answered: u64,
    /// SERVFAIL responses made by the stub (upstream failed, timed out or answered badly).
    pub servfail: u64,
    /// FORMERR responses made by the stub (malformed query), and BADVERS (EDNS version
    /// other than 0).
    pub formerr: u64,
    /// NOTIMP responses made by the stub (opcode other than QUERY, zone transfers).
    pub notimp: u64,
    /// Messages dropped without a response (shorter than a DNS header, or a response
    /// received over UDP).
    pub dropped: u64,
    /// Queries answered from the cache.
    pub cache_hits: u64,
    /// Queries sent to the upstream.
    pub cache_misses: u64,
    /// UDP responses sent truncated (TC bit) because they exceeded the client's size.
    pub truncated: u64,
    /// Upstream exchanges that failed or returned an unacceptable response.
    pub upstream_errors: u64,
    /// Upstream exchanges abandoned at the query timeout.
    pub upstream_timeouts: u64,
    /// TCP connections closed at once because the connection cap was reached.
    pub tcp_connections_refused: u64,
    /// Messages from clients outside `allow`, answered REFUSED (or dropped when they had no
    /// header to answer) without touching the cache or the upstream.
    pub refused: u64,
    /// UDP responses dropped by the rate limit.
    pub rate_limited: u64,
    /// UDP responses replaced by an empty truncated (TC=1) response by the rate limit.
    pub rate_limit_slips: u64,
}

macro_rules! incrementers {
    ($($name:ident => $field:ident),* $(,)?) => {
        $(
            pub(crate) fn $name(&self) {
                self.$field.fetch_add(1, Ordering::Relaxed);
            }
        )*
    };
}

impl Metrics {
    incrementers! {
        query => queries,
        answered => answered,
        servfail => servfail,
        formerr => formerr,
        notimp => notimp,
        dropped => dropped,
        cache_hit => cache_hits,
        cache_miss => cache_misses,
        truncated => truncated,
        upstream_error => upstream_errors,
        upstream_timeout => upstream_timeouts,
        tcp_refused => tcp_connections_refused,
        refused => refused,
        rate_limited => rate_limited,
        rate_limit_slip => rate_limit_slips,
    }

    /// The current values of every counter.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            queries: get(&self.queries),
            answered: get(&self.answered),
            servfail: get(&self.servfail),
            formerr: get(&self.formerr),
            notimp: get(&self.notimp),
            dropped: get(&self.dropped),
            cache_hits: get(&self.cache_hits),
            cache_misses: get(&self.cache_misses),
            truncated: get(&self.truncated),
            upstream_errors: get(&self.upstream_errors),
            upstream_timeouts: get(&self.upstream_timeouts),
            tcp_connections_refused: get(&self.tcp_connections_refused),
            refused: get(&self.refused),
            rate_limited: get(&self.rate_limited),
            rate_limit_slips: get(&self.rate_limit_slips),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_reflects_increments() {
        let m = Metrics::default();
        m.query();
        m.query();
        m.cache_hit();
        m.tcp_refused();
        let s = m.snapshot();
        assert_eq!(s.queries, 2);
        assert_eq!(s.cache_hits, 1);
        assert_eq!(s.tcp_connections_refused, 1);
        assert_eq!(s.servfail, 0);
    }
}
