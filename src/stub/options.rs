//! Settings of the local stub server and its cache.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

use super::error::StubError;

/// The largest UDP response the stub ever sends, whatever a client advertises in EDNS(0).
/// It is also the payload size the stub advertises in the OPT records it sends.
pub const MAX_UDP_PAYLOAD: u16 = 4096;

/// The UDP response size every DNS client accepts (RFC 1035 §4.2.1), used for clients
/// without EDNS(0) and as the floor for clients advertising less.
pub const MIN_UDP_PAYLOAD: u16 = 512;

/// The largest UDP response sent to a remote client (one other than 127.0.0.1 and ::1),
/// whatever its EDNS(0) size says: the DNS Flag Day 2020 value (RFC 9715), which avoids IP
/// fragmentation and bounds what a spoofed query can reflect. Larger answers are sent
/// truncated (TC=1) and the client retries over TCP.
pub const MAX_REMOTE_UDP_PAYLOAD: u16 = 1232;

/// Whether `client` is the local host for the stub's UDP response cap and rate limit:
/// exactly 127.0.0.1 or ::1 (after unmapping `::ffff:127.0.0.1`). Other loopback addresses
/// (127.0.0.2 …) count as remote, so that those two protections can be exercised on
/// loopback, and because a local resolver library talks from 127.0.0.1 or ::1.
pub fn is_local_client(client: IpAddr) -> bool {
    match client.to_canonical() {
        IpAddr::V4(v4) => v4 == Ipv4Addr::LOCALHOST,
        IpAddr::V6(v6) => v6 == Ipv6Addr::LOCALHOST,
    }
}

/// 127.0.0.0/8 (checked at compile time).
const LOOPBACK_V4: IpNet = IpNet::new_assert(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8);
/// ::1/128 (checked at compile time).
const LOOPBACK_V6: IpNet = IpNet::new_assert(IpAddr::V6(Ipv6Addr::LOCALHOST), 128);

/// The default `allow` list: the loopback networks 127.0.0.0/8 and ::1/128.
pub fn default_allow() -> Vec<IpNet> {
    vec![LOOPBACK_V4, LOOPBACK_V6]
}

/// Receive buffer requested for each UDP listening socket (SO_RCVBUF; the kernel caps it at
/// `net.core.rmem_max`). Bursts of queries queue in the kernel while the listener hands
/// earlier ones to their tasks; Linux's default (208 KiB, about 160 small datagrams on
/// loopback) overflows at a burst of a few hundred queries, and the kernel then drops them
/// without a trace (a soak at 70 % of peak QPS lost 0.03 % of its queries that way).
pub const UDP_RECV_BUFFER: usize = 4 << 20;

/// Settings of the local stub server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StubOptions {
    /// Addresses to listen on, each with UDP and TCP. Port 0 picks a free port (the same one
    /// for UDP and TCP). Default: `127.0.0.1:53` and `[::1]:53`.
    pub listen: Vec<SocketAddr>,
    /// Every well-formed query is answered (by the upstream or the cache) or gets SERVFAIL
    /// within this time. Default: 4 s, below the 5 s a glibc client waits per try.
    pub query_timeout: Duration,
    /// A TCP connection with no query outstanding and no complete query received for this
    /// long is closed (RFC 7766 §6.2.3). Default: 10 s.
    pub tcp_idle_timeout: Duration,
    /// At most this many TCP connections are served at once; connections beyond it are
    /// closed as soon as they are accepted. Default: 256.
    pub max_tcp_connections: usize,
    /// At most this many queries of one TCP connection are resolved at once; the connection
    /// is not read further until one of them is answered. Default: 32.
    pub max_in_flight_per_tcp_connection: usize,
    /// At most this many UDP queries (over all UDP sockets) are resolved at once; the
    /// sockets are not read further until one of them is answered. Default: 1024.
    pub max_udp_in_flight: usize,
    /// Client networks served. A query from any other address gets REFUSED (RCODE 5): the
    /// header and the question echoed, nothing else, so never larger than the query; it is
    /// neither forwarded nor answered from the cache. Default: [`default_allow`] (loopback).
    pub allow: Vec<IpNet>,
    /// Per-client rate limit of UDP responses.
    pub rate_limit: RateLimitOptions,
    /// The answer cache.
    pub cache: CacheOptions,
    /// Skip a listen address the host cannot have (an address family it lacks, such as
    /// `[::1]` on a host with IPv6 disabled) with a WARN instead of failing; binding still
    /// fails when no address can be bound, and for every other error. For the built-in
    /// listen addresses only: an address a user lists must work. Default: false.
    pub skip_unavailable_listen: bool,
}

/// Settings of the UDP response rate limit (see [`super::ratelimit`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitOptions {
    /// Whether UDP responses are rate limited at all. Default: true.
    pub enabled: bool,
    /// Responses per second each client network gets once its burst is spent. Default: 20.
    pub responses_per_sec: u32,
    /// Responses a client network may get at once. Default: 40.
    pub burst: u32,
    /// Over the limit, every `slip`-th response is sent as an empty truncated response
    /// (TC=1) instead of being dropped; 0 drops them all. Default: 2.
    pub slip: u32,
    /// Limit 127.0.0.1 and ::1 too (default false: only remote clients are limited).
    pub loopback: bool,
    /// Most client networks tracked at once. Default: 10 000.
    pub max_clients: usize,
    /// Prefix length grouping IPv4 clients into one bucket. Default: 24.
    pub ipv4_prefix: u8,
    /// Prefix length grouping IPv6 clients into one bucket. Default: 56.
    pub ipv6_prefix: u8,
}

impl Default for RateLimitOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            responses_per_sec: 20,
            burst: 40,
            slip: 2,
            loopback: false,
            max_clients: 10_000,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
        }
    }
}

impl RateLimitOptions {
    /// Checks the rates, table size and prefix lengths.
    pub fn validate(&self) -> Result<(), StubError> {
        let invalid =
            |field: &'static str, rule: &'static str| Err(StubError::InvalidOption { field, rule });
        if !self.enabled {
            return Ok(());
        }
        if self.responses_per_sec == 0 {
            return invalid("rate_limit.responses_per_sec", "must be at least 1");
        }
        if self.burst == 0 {
            return invalid("rate_limit.burst", "must be at least 1");
        }
        if self.max_clients == 0 {
            return invalid("rate_limit.max_clients", "must be at least 1");
        }
        if self.ipv4_prefix > 32 {
            return invalid("rate_limit.ipv4_prefix", "must be at most 32");
        }
        if self.ipv6_prefix > 128 {
            return invalid("rate_limit.ipv6_prefix", "must be at most 128");
        }
        Ok(())
    }
}

impl Default for StubOptions {
    fn default() -> Self {
        Self {
            listen: vec![
                SocketAddr::from((Ipv4Addr::LOCALHOST, 53)),
                SocketAddr::from((Ipv6Addr::LOCALHOST, 53)),
            ],
            query_timeout: Duration::from_secs(4),
            tcp_idle_timeout: Duration::from_secs(10),
            max_tcp_connections: 256,
            max_in_flight_per_tcp_connection: 32,
            max_udp_in_flight: 1024,
            allow: default_allow(),
            rate_limit: RateLimitOptions::default(),
            cache: CacheOptions::default(),
            skip_unavailable_listen: false,
        }
    }
}

impl StubOptions {
    /// Checks that the settings can be served: at least one listen address, non-zero
    /// timeouts and limits.
    pub fn validate(&self) -> Result<(), StubError> {
        let invalid =
            |field: &'static str, rule: &'static str| Err(StubError::InvalidOption { field, rule });
        if self.listen.is_empty() {
            return invalid("listen", "at least one address is needed");
        }
        if self.query_timeout.is_zero() {
            return invalid("query_timeout", "must be greater than zero");
        }
        if self.tcp_idle_timeout.is_zero() {
            return invalid("tcp_idle_timeout", "must be greater than zero");
        }
        if self.max_tcp_connections == 0 {
            return invalid("max_tcp_connections", "must be at least 1");
        }
        if self.max_in_flight_per_tcp_connection == 0 {
            return invalid("max_in_flight_per_tcp_connection", "must be at least 1");
        }
        if self.max_udp_in_flight == 0 {
            return invalid("max_udp_in_flight", "must be at least 1");
        }
        if self.allow.is_empty() {
            return invalid("allow", "at least one network is needed");
        }
        self.rate_limit.validate()?;
        self.cache.validate()
    }
}

/// The default byte budget of the answer cache: 32 MiB.
pub const DEFAULT_CACHE_BYTES: usize = 32 << 20;

/// Settings of the answer cache.
///
/// Positive answers live for the smallest TTL in the response (each RRset's TTLs are first
/// set to the RRset's minimum, RFC 2181 §5.2), clamped to `[min_ttl, max_ttl]`. Negative
/// answers (NXDOMAIN and NODATA) live for `min(SOA TTL, SOA MINIMUM, negative_max_ttl)` of
/// the SOA in the authority section (RFC 2308 §5) and are not cached without one. SERVFAIL
/// and every other error code is never cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheOptions {
    /// Whether answers are cached at all. Default: true.
    pub enabled: bool,
    /// Most entries held; when full, the entry closest to expiry is evicted. Default: 10 000.
    pub max_entries: usize,
    /// Most bytes held (each entry's answer, key and bookkeeping, see
    /// [`entry_cost`](super::cache::entry_cost)); entries closest to expiry are evicted to
    /// stay within it, and an answer larger than it is not cached. Default: 32 MiB.
    pub max_bytes: usize,
    /// Positive answers are kept (and their TTLs raised to) at least this long. Default: 0.
    pub min_ttl: Duration,
    /// No answer is kept (or served with a TTL) longer than this. Default: 1 day.
    pub max_ttl: Duration,
    /// No negative answer is kept longer than this. Default: 1 hour.
    pub negative_max_ttl: Duration,
    /// Serve stale (RFC 8767): an entry is kept this long past its expiry, and served with
    /// TTL [`STALE_TTL`](super::cache::STALE_TTL) when the upstreams fail, refuse or time out
    /// for its question. Zero turns serving stale off. Default: 1 day.
    pub serve_stale: Duration,
    /// When only a stale entry is left, the client waits this long for the upstream before
    /// it is answered from the stale entry; the refresh goes on in the background (RFC 8767
    /// §5, "client response timer"). Default: 1.8 s.
    pub stale_answer_client_timeout: Duration,
    /// Refresh an entry in the background when it is asked for in the last tenth of its
    /// lifetime (as Unbound's `prefetch`). Default: true.
    pub prefetch: bool,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            max_entries: 10_000,
            max_bytes: DEFAULT_CACHE_BYTES,
            min_ttl: Duration::ZERO,
            max_ttl: Duration::from_secs(86_400),
            negative_max_ttl: Duration::from_secs(3_600),
            serve_stale: Duration::from_secs(86_400),
            stale_answer_client_timeout: Duration::from_millis(1_800),
            prefetch: true,
        }
    }
}

impl CacheOptions {
    /// A cache that stores nothing.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }

    /// Checks that `min_ttl <= max_ttl` and that an enabled cache may hold an entry.
    pub fn validate(&self) -> Result<(), StubError> {
        if self.min_ttl > self.max_ttl {
            return Err(StubError::InvalidOption {
                field: "cache.min_ttl",
                rule: "must not exceed cache.max_ttl",
            });
        }
        if self.enabled && self.max_entries == 0 {
            return Err(StubError::InvalidOption {
                field: "cache.max_entries",
                rule: "must be at least 1 when the cache is enabled",
            });
        }
        if self.enabled && self.max_bytes == 0 {
            return Err(StubError::InvalidOption {
                field: "cache.max_bytes",
                rule: "must be at least 1 when the cache is enabled",
            });
        }
        Ok(())
    }

    /// TTL bounds as whole seconds (DNS TTLs are seconds; RFC 2181 §8 caps them at 2^31 - 1).
    pub(crate) fn ttl_bounds(&self) -> (u32, u32, u32) {
        let secs = |d: Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX).min(MAX_TTL);
        (
            secs(self.min_ttl),
            secs(self.max_ttl),
            secs(self.negative_max_ttl),
        )
    }
}

/// The largest TTL value (RFC 2181 §8).
pub(crate) const MAX_TTL: u32 = 0x7FFF_FFFF;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_listen_on_both_loopbacks_port_53() {
        let o = StubOptions::default();
        assert_eq!(
            o.listen,
            vec![
                "127.0.0.1:53".parse::<SocketAddr>().unwrap(),
                "[::1]:53".parse::<SocketAddr>().unwrap()
            ]
        );
        assert!(o.cache.enabled);
        assert!(o.validate().is_ok());
    }

    #[test]
    fn zero_limits_are_rejected_naming_the_field() {
        let o = StubOptions {
            max_in_flight_per_tcp_connection: 0,
            ..StubOptions::default()
        };
        match o.validate() {
            Err(StubError::InvalidOption { field, .. }) => {
                assert_eq!(field, "max_in_flight_per_tcp_connection")
            }
            other => panic!("unexpected {other:?}"),
        }
        let o = StubOptions {
            listen: vec![],
            ..StubOptions::default()
        };
        assert!(matches!(
            o.validate(),
            Err(StubError::InvalidOption {
                field: "listen",
                ..
            })
        ));
    }

    #[test]
    fn local_clients_are_exactly_the_two_loopback_hosts() {
        for c in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            assert!(is_local_client(c.parse().unwrap()), "{c}");
        }
        for c in ["127.0.0.2", "127.1.2.3", "192.0.2.1", "::2", "fe80::1"] {
            assert!(!is_local_client(c.parse().unwrap()), "{c}");
        }
        let allow = default_allow();
        assert!(allow
            .iter()
            .any(|n| n.contains(&"127.9.9.9".parse::<IpAddr>().unwrap())));
        assert!(allow
            .iter()
            .any(|n| n.contains(&"::1".parse::<IpAddr>().unwrap())));
        assert!(!allow
            .iter()
            .any(|n| n.contains(&"10.0.0.1".parse::<IpAddr>().unwrap())));
    }

    #[test]
    fn empty_allow_and_zero_rates_are_rejected() {
        let o = StubOptions {
            allow: vec![],
            ..StubOptions::default()
        };
        assert!(matches!(
            o.validate(),
            Err(StubError::InvalidOption { field: "allow", .. })
        ));
        let o = StubOptions {
            rate_limit: RateLimitOptions {
                burst: 0,
                ..RateLimitOptions::default()
            },
            ..StubOptions::default()
        };
        assert!(matches!(
            o.validate(),
            Err(StubError::InvalidOption {
                field: "rate_limit.burst",
                ..
            })
        ));
    }

    #[test]
    fn min_ttl_above_max_ttl_is_rejected() {
        let c = CacheOptions {
            min_ttl: Duration::from_secs(10),
            max_ttl: Duration::from_secs(5),
            ..CacheOptions::default()
        };
        assert!(matches!(
            c.validate(),
            Err(StubError::InvalidOption {
                field: "cache.min_ttl",
                ..
            })
        ));
        assert!(CacheOptions::disabled().validate().is_ok());
    }

    #[test]
    fn ttl_bounds_saturate_at_rfc2181_max() {
        let c = CacheOptions {
            max_ttl: Duration::from_secs(u64::MAX),
            ..CacheOptions::default()
        };
        assert_eq!(c.ttl_bounds(), (0, MAX_TTL, 3600));
    }
}
