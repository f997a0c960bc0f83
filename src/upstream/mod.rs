//! Upstream resolvers: one [`Transport`] interface, implemented by DNS-over-TLS and
//! DNS-over-HTTPS, behind a pool with health tracking and failover.
//!
//! Every transport gets its verified connections from one place and prepares its queries
//! in one place:
//! - [`connect`]: TCP connect plus TLS handshake under a deadline, with session resumption
//!   and early data off. The verifier runs inside the handshake; a refusal comes back as
//!   [`UpstreamError::Refused`] carrying the verifier's typed
//!   [`RefusedCertificate`], any other handshake failure as [`UpstreamError::Tls`], a late
//!   one as [`UpstreamError::ConnectTimeout`]. `ctdns check` dials through the same code.
//! - [`query`]: checks an outgoing query (a well-formed DNS query with one question),
//!   pads it (EDNS(0) Padding to 128-byte blocks, RFC 8467), gives it the message ID the
//!   transport sends it under, and turns the upstream's response back into an answer to
//!   the client's query (original ID, question checked, padding OPT removed).
//! - `dial` (private): one failed connection attempt shared by the queries that waited for
//!   it, and the per-transport dial counters.
//!
//! # Adding a transport (e.g. DNS over QUIC, RFC 9250)
//! 1. One file, `upstream/doq.rs`, with a type implementing [`Transport`]: it prepares each
//!    query with [`query::Prepared`] (DoQ sends message ID 0, as DoH does) and opens its
//!    connections the way [`connect`] does for TCP: a QUIC handshake with a copy of the
//!    same `rustls::ClientConfig` (resumption and 0-RTT off), its handshake error mapped
//!    through [`connect::handshake_error`] so a refusal is the same
//!    [`UpstreamError::Refused`] (QUIC handshake errors are not `io::Error`s: pass the
//!    `rustls::Error` itself), and `dial::LastFailure` around the attempt.
//! 2. One match arm where transports are built from the configuration,
//!    [`crate::runtime::transport`] (plus the protocol name in the configuration).
//!
//! Nothing else changes: the pool, the stub, metrics and `ctdns check` only see
//! [`Transport`] and [`UpstreamError`].

pub mod doh;

use std::future::Future;
use std::pin::Pin;

pub mod connect;
pub mod deadline;
mod dial;
pub mod dot;
pub mod keepalive;
pub mod msgid;
pub mod padding;
pub mod pool;
pub mod query;
pub mod swap;

use std::sync::Arc;

use crate::tls::presented::RefusedCertificate;
use crate::wire;

/// A boxed, sendable future, so that [`Transport`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why an upstream exchange failed. Cheap to clone (non-`Clone` sources are behind `Arc`),
/// so one failed connection attempt can be handed to every query that waited for it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// TCP connect failed.
    #[error("connect to {addr}: {source}")]
    Connect {
        /// The upstream address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        source: Arc<std::io::Error>,
    },
    /// The TLS handshake failed for a reason other than a refusal by ctdns's verifier
    /// (alert, protocol error, a plain rustls verifier's error, the peer went away).
    #[error("TLS handshake with {addr}: {source}")]
    Tls {
        /// The upstream address.
        addr: std::net::SocketAddr,
        /// The I/O error wrapping the rustls error.
        source: Arc<std::io::Error>,
    },
    /// The verifier refused the upstream's certificate during the TLS handshake: no DNS
    /// byte was sent. Shown by its rule and what was presented, e.g.
    /// `TLS handshake with 192.0.2.1:853: certificate refused: rule issuer-pin: ...`.
    #[error("TLS handshake with {upstream}: certificate refused: {refusal}")]
    Refused {
        /// The upstream address.
        upstream: std::net::SocketAddr,
        /// The verifier's typed refusal with what the server presented.
        #[source]
        refusal: Arc<RefusedCertificate>,
    },
    /// No answer within the deadline.
    #[error("timed out")]
    Timeout,
    /// The connection closed or failed while the query was outstanding.
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    /// TCP connect plus TLS handshake did not finish within the connect timeout.
    #[error("connect to {addr}: no TLS session within the connect timeout")]
    ConnectTimeout {
        /// The upstream address.
        addr: std::net::SocketAddr,
        /// Whether the TCP connection was made (so the handshake is what did not finish).
        tcp_connected: bool,
    },
    /// The query is not a DNS message that can be sent (see the wire rule that failed).
    #[error("malformed query: {0}")]
    MalformedQuery(#[source] wire::WireError),
    /// The upstream's response matched a query but is not a well-formed DNS message.
    #[error("malformed response: {0}")]
    MalformedResponse(#[source] wire::WireError),
    /// The pool has no upstream to ask.
    #[error("no upstream configured")]
    NoUpstreams,
    /// A DNS-over-HTTPS failure, typed by the rule that failed.
    #[error("DoH: {0}")]
    Doh(#[from] doh::DohError),
    /// Every upstream is backing off after failed connection attempts (certificate
    /// refusals, connect failures): the pool answered without dialing.
    #[error("every upstream ({upstreams}) is backing off after failed connection attempts; next attempt in {retry_in:?}")]
    BackingOff {
        /// How many upstreams were skipped.
        upstreams: usize,
        /// How long until the first of them may be dialed again.
        retry_in: std::time::Duration,
    },
}

impl UpstreamError {
    /// The verifier's refusal, when the certificate was refused.
    pub fn refusal(&self) -> Option<&crate::tls::verifier::Refusal> {
        self.refused_certificate().map(|r| &r.refusal)
    }

    /// The refusal with what the server presented (leaf, issuer, CA pins), when the
    /// verifier refused the certificate.
    pub fn refused_certificate(&self) -> Option<&RefusedCertificate> {
        match self {
            UpstreamError::Refused { refusal, .. } => Some(refusal),
            _ => None,
        }
    }
}

/// Connection attempts of one transport: what went on the wire, not what was shared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DialStats {
    /// TCP connects started (each followed by a TLS handshake if it succeeds).
    pub dials: u64,
    /// Dials that failed (connect, handshake, certificate refusal, connect timeout, ALPN).
    pub failures: u64,
    /// Failed dials whose certificate the verifier refused.
    pub refusals: u64,
}

/// One way of reaching one upstream resolver. Implementations own their connections and
/// must only send DNS bytes on connections whose certificate passed the verifier.
pub trait Transport: Send + Sync + std::fmt::Debug {
    /// Send one DNS query (wire format, any message ID) and return the response in wire
    /// format, with the query's original message ID restored.
    fn query<'a>(&'a self, query: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, UpstreamError>>;

    /// A short human-readable name, e.g. `dot://1.1.1.1:853`.
    fn name(&self) -> &str;

    /// The transport's connection attempts so far; all zero for a transport that does not
    /// count them.
    fn dial_stats(&self) -> DialStats {
        DialStats::default()
    }

    /// Opens the connection now, before any query (or reuses the live one), and returns
    /// its TLS parameters: what `ctdns check` reports. `Ok(None)` (the default) for a
    /// transport that has no connection of its own (the pool, test doubles).
    fn connect(&self) -> BoxFuture<'_, Result<Option<connect::SessionInfo>, UpstreamError>> {
        Box::pin(async { Ok(None) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::pins::SpkiPin;
    use crate::tls::presented::Presented;
    use crate::tls::verifier::Refusal;

    /// An issuer-pin refusal of a certificate for 127.0.0.1:853.
    pub(crate) fn pin_refusal() -> UpstreamError {
        UpstreamError::Refused {
            upstream: "127.0.0.1:853".parse().unwrap(),
            refusal: Arc::new(RefusedCertificate {
                refusal: Refusal::IssuerNotPinned {
                    chain: vec![SpkiPin([1; 32])],
                    pins: vec![SpkiPin([2; 32])],
                },
                presented: Presented::describe(b"not a certificate", &[], &[]),
            }),
        }
    }

    #[test]
    fn a_refusal_names_its_rule() {
        let error = pin_refusal();
        let text = error.to_string();
        assert!(
            text.starts_with(
                "TLS handshake with 127.0.0.1:853: certificate refused: rule issuer-pin: "
            ),
            "{text}"
        );
        assert!(text.contains(&SpkiPin([2; 32]).to_string()), "{text}");
        assert!(!text.contains("OtherError"), "{text}");
        assert_eq!(error.refusal().map(Refusal::rule), Some("issuer-pin"));
        // Wrapped in another error (the client's), the refusal is found through `source`.
        assert_eq!(
            Refusal::find_in(&error).map(Refusal::rule),
            Some("issuer-pin")
        );
        assert!(RefusedCertificate::find_in(&error).is_some());
        // A copy is the same refusal (shared, not rebuilt).
        let copy = error.clone();
        assert_eq!(copy.to_string(), text);
        assert!(UpstreamError::Timeout.refusal().is_none());
    }

    #[test]
    fn other_tls_errors_are_shown_as_they_are() {
        let error = UpstreamError::Tls {
            addr: "127.0.0.1:853".parse().unwrap(),
            source: Arc::new(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "received fatal alert: HandshakeFailure",
            )),
        };
        assert_eq!(
            error.to_string(),
            "TLS handshake with 127.0.0.1:853: received fatal alert: HandshakeFailure"
        );
        assert!(error.refusal().is_none());
        assert_eq!(error.clone().to_string(), error.to_string());
    }
}
