//! Counters of what the stub server did, for tests, logging and the Prometheus endpoint
//! ([`crate::metrics`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::error::Protocol;
use crate::metrics::histogram::{AtomicHistogram, HistogramSnapshot};

/// Slots of [`Metrics::responses`]: the 16 header RCODEs, then "no response sent".
pub const RESPONSE_SLOTS: usize = 17;
/// The slot of messages that got no response (dropped, rate-limited).
pub const NO_RESPONSE: usize = 16;

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
    stale_answers: AtomicU64,
    prefetches: AtomicU64,
    /// Per transport (UDP, TCP), per header RCODE of the response sent (slot
    /// [`NO_RESPONSE`]: none sent).
    responses: [[AtomicU64; RESPONSE_SLOTS]; 2],
    /// From a message received to its response ready to send (or dropped).
    duration: AtomicHistogram,
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
    /// Responses served from an expired cache entry (RFC 8767 serve-stale, TTL 30) because
    /// the upstreams failed, refused, timed out or were slower than
    /// `stale_answer_client_timeout`. Also counted in `answered`.
    pub stale_answers: u64,
    /// Background refreshes started for entries asked for in the last tenth of their
    /// lifetime.
    pub prefetches: u64,
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
        stale_answer => stale_answers,
        prefetch => prefetches,
    }

    /// Count the outcome of one client message received over `proto`: `response` is what
    /// is sent back (`None`: nothing), `elapsed` the time since it was received.
    pub(crate) fn responded(&self, proto: Protocol, response: Option<&[u8]>, elapsed: Duration) {
        let slot = response
            .map(|r| {
                r.get(3)
                    .map_or(NO_RESPONSE, |flags| usize::from(flags & 0x0F))
            })
            .unwrap_or(NO_RESPONSE);
        if let Some(counter) = self
            .responses
            .get(transport_index(proto))
            .and_then(|row| row.get(slot))
        {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        self.duration.observe(elapsed);
    }

    /// Messages received over `proto` by the RCODE of the response (index = RCODE, slot
    /// [`NO_RESPONSE`] = no response sent).
    pub fn responses(&self, proto: Protocol) -> [u64; RESPONSE_SLOTS] {
        let mut out = [0u64; RESPONSE_SLOTS];
        if let Some(row) = self.responses.get(transport_index(proto)) {
            for (o, c) in out.iter_mut().zip(row) {
                *o = c.load(Ordering::Relaxed);
            }
        }
        out
    }

    /// Time from receiving a client message to having its response (or dropping it).
    pub fn duration(&self) -> HistogramSnapshot {
        self.duration.snapshot()
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
            stale_answers: get(&self.stale_answers),
            prefetches: get(&self.prefetches),
        }
    }
}

fn transport_index(proto: Protocol) -> usize {
    match proto {
        Protocol::Udp => 0,
        Protocol::Tcp => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_counted_by_transport_and_rcode() {
        let m = Metrics::default();
        let mut servfail = vec![0u8; 12];
        servfail[3] = 0x82; // RA + SERVFAIL
        m.responded(Protocol::Udp, Some(&servfail), Duration::from_millis(2));
        m.responded(Protocol::Udp, None, Duration::from_micros(10));
        m.responded(Protocol::Tcp, Some(&[0u8; 12]), Duration::from_millis(1));
        let udp = m.responses(Protocol::Udp);
        assert_eq!(udp[2], 1);
        assert_eq!(udp[NO_RESPONSE], 1);
        assert_eq!(udp[0], 0);
        assert_eq!(m.responses(Protocol::Tcp)[0], 1);
        assert_eq!(m.duration().count, 3);
    }

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
