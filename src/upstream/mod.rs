//! Upstream resolvers: one [`Transport`] interface, implemented by DNS-over-TLS and
//! DNS-over-HTTPS, behind a pool with health tracking and failover.

pub mod doh;

use std::future::Future;
use std::pin::Pin;

pub mod deadline;
mod dial;
pub mod dot;
pub mod msgid;
pub mod padding;
pub mod pool;
pub mod swap;

use crate::wire;

/// A boxed, sendable future, so that [`Transport`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why an upstream exchange failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// TCP connect failed.
    #[error("connect to {addr}: {source}")]
    Connect {
        /// The upstream address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TLS handshake failed, including every certificate refusal by the verifier
    /// (shown by its rule, e.g. `rule issuer-pin: ...`).
    #[error("TLS handshake with {addr}: {}", tls_failure(.source))]
    Tls {
        /// The upstream address.
        addr: std::net::SocketAddr,
        /// The I/O error wrapping the rustls error.
        source: std::io::Error,
    },
    /// No answer within the deadline.
    #[error("timed out")]
    Timeout,
    /// The connection closed or failed while the query was outstanding.
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    /// The upstream answered something that is not an acceptable DNS response.
    #[error("bad response: {0}")]
    BadResponse(String),
    /// The query could not be sent (malformed or too large).
    #[error("bad query: {0}")]
    BadQuery(String),
    /// An HTTP-level failure (DoH).
    #[error("HTTP: {0}")]
    Http(String),
    /// TCP connect plus TLS handshake did not finish within the connect timeout.
    #[error("connect to {addr}: no TLS session within the connect timeout")]
    ConnectTimeout {
        /// The upstream address.
        addr: std::net::SocketAddr,
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
    /// The verifier's refusal, when this is a TLS handshake failure because the
    /// certificate was refused.
    pub fn refusal(&self) -> Option<&crate::tls::verifier::Refusal> {
        match self {
            UpstreamError::Tls { source, .. } => crate::tls::verifier::Refusal::find_in(source),
            _ => None,
        }
    }

    /// The refusal with what the server presented (leaf, issuer, CA pins), when the
    /// verifier refused the certificate.
    pub fn refused_certificate(&self) -> Option<&crate::tls::presented::RefusedCertificate> {
        match self {
            UpstreamError::Tls { source, .. } => {
                crate::tls::presented::RefusedCertificate::find_in(source)
            }
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

/// A handshake error as an operator should read it: a certificate refusal by the verifier
/// names its rule and reason (rustls itself renders custom certificate errors with `Debug`,
/// e.g. `Other(OtherError(IssuerNotPinned { chain: [SpkiPin([116, ...`), anything else is
/// shown as it is.
fn tls_failure(source: &std::io::Error) -> String {
    if let Some(refused) = crate::tls::presented::RefusedCertificate::find_in(source) {
        return format!("certificate refused: {refused}");
    }
    match crate::tls::verifier::Refusal::find_in(source) {
        Some(refusal) => format!("certificate refused: {refusal}"),
        None => source.to_string(),
    }
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::pins::SpkiPin;
    use crate::tls::verifier::Refusal;
    use std::sync::Arc;

    #[test]
    fn tls_error_names_the_refusal_rule() {
        let refusal = Refusal::IssuerNotPinned {
            chain: vec![SpkiPin([1; 32])],
            pins: vec![SpkiPin([2; 32])],
        };
        let rustls_error = rustls::Error::InvalidCertificate(rustls::CertificateError::Other(
            rustls::OtherError(Arc::new(refusal)),
        ));
        let error = UpstreamError::Tls {
            addr: "127.0.0.1:853".parse().unwrap(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, rustls_error),
        };
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
        assert!(UpstreamError::Timeout.refusal().is_none());
    }

    #[test]
    fn other_tls_errors_are_shown_as_they_are() {
        let error = UpstreamError::Tls {
            addr: "127.0.0.1:853".parse().unwrap(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "received fatal alert: HandshakeFailure",
            ),
        };
        assert_eq!(
            error.to_string(),
            "TLS handshake with 127.0.0.1:853: received fatal alert: HandshakeFailure"
        );
    }
}
