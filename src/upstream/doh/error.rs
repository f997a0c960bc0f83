//! Why a DNS-over-HTTPS exchange failed, one variant per rule.

use std::fmt;

/// A DNS-over-HTTPS failure. Each variant names the rule or field that failed; the front
/// end turns every one of them into SERVFAIL and logs it. Cheap to clone: non-`Clone`
/// sources are behind `Arc`.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DohError {
    /// The configured endpoint cannot form an `https` request URI.
    #[error("endpoint: {0}")]
    Endpoint(#[from] EndpointError),
    /// The TLS handshake completed but the server did not select ALPN `h2`: the
    /// connection was dropped before any HTTP/2 or DNS byte was sent.
    #[error("server did not negotiate ALPN h2 (negotiated {})", AlpnDisplay(.negotiated))]
    AlpnNotH2 {
        /// The protocol the server selected, if any.
        negotiated: Option<Vec<u8>>,
    },
    /// The endpoint has a host name (sent as SNI) and the certificate that passed the
    /// verifier is not valid for the IP address actually dialed: the connection was dropped
    /// before any HTTP/2 or DNS byte was sent.
    #[error("certificate is not valid for the dialed address {ip}")]
    CertNotForDialedIp {
        /// The dialed IP address.
        ip: std::net::IpAddr,
    },
    /// The HTTP/2 connection preface or SETTINGS exchange failed.
    #[error("HTTP/2 handshake: {source}")]
    H2Handshake {
        /// The HTTP/2 error.
        source: std::sync::Arc<h2::Error>,
    },
    /// The server reset the request's stream (RST_STREAM) with a code other than
    /// REFUSED_STREAM.
    #[error("stream reset by server with HTTP/2 error code {code:#x}")]
    StreamReset {
        /// The HTTP/2 error code (RFC 9113 §7).
        code: u32,
    },
    /// The response status was not 200.
    #[error("HTTP status {status}, expected 200")]
    Status {
        /// The status code received.
        status: u16,
    },
    /// The response `content-type` was not `application/dns-message`.
    #[error("content-type {content_type:?}, expected application/dns-message")]
    ContentType {
        /// The content type received (lossily decoded), if any.
        content_type: Option<String>,
    },
    /// The response body is larger than the configured cap.
    #[error("response body exceeds {limit} bytes")]
    ResponseTooLarge {
        /// The configured cap, in bytes.
        limit: usize,
    },
    /// The response body does not parse as a DNS message.
    #[error("response is not a DNS message: {source}")]
    MalformedDns {
        /// The wire rule the header or question broke.
        source: crate::wire::WireError,
    },
    /// The response breaks a wire rule every transport checks ([`crate::wire`]), or the
    /// OPT record ctdns added to the query for padding could not be removed from it.
    #[error("response OPT record: {0}")]
    MalformedOpt(#[source] crate::wire::WireError),
    /// The response parses but is a query, not a response.
    #[error("DNS message in the response body has QR=0 (not a response)")]
    NotAResponse,
    /// The response's question section differs from the query's.
    #[error("response question does not match the query")]
    QuestionMismatch,
    /// Any other HTTP/2 failure on an established connection (protocol error,
    /// TLS error on the stream, malformed response head).
    #[error("HTTP/2 exchange: {source}")]
    Exchange {
        /// The underlying error (normally an `h2::Error`).
        source: std::sync::Arc<dyn std::error::Error + Send + Sync>,
    },
}

/// The endpoint's `authority` or `path` is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// `authority` is not a valid URI authority (`host[:port]`).
    #[error("invalid authority {authority:?}")]
    InvalidAuthority {
        /// The rejected value.
        authority: String,
    },
    /// `path` does not start with `/` or is not a valid URI path.
    #[error("invalid path {path:?}")]
    InvalidPath {
        /// The rejected value.
        path: String,
    },
}

/// Why a request failed because its connection went away. Such a request was not
/// answered by the server and may be retried on a fresh connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnectionGone {
    /// The connection was already closed when the request was handed to it.
    NotSent,
    /// The server sent GOAWAY and the request's stream was above its last stream ID.
    GoAway {
        /// The GOAWAY error code.
        code: u32,
    },
    /// The server reset the stream with REFUSED_STREAM (not processed).
    RefusedStream,
    /// The server stopped answering HTTP/2 keep-alive PINGs; the connection was closed.
    KeepAliveTimeout,
    /// The transport failed (reset, broken pipe, end of stream).
    Io(std::io::ErrorKind),
}

impl fmt::Display for ConnectionGone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionGone::NotSent => f.write_str("connection closed before the request was sent"),
            ConnectionGone::GoAway { code } => {
                write!(
                    f,
                    "server sent GOAWAY (code {code:#x}) before processing the request"
                )
            }
            ConnectionGone::RefusedStream => {
                f.write_str("server refused the stream (REFUSED_STREAM)")
            }
            ConnectionGone::KeepAliveTimeout => {
                f.write_str("server stopped answering HTTP/2 keep-alive pings")
            }
            ConnectionGone::Io(kind) => write!(f, "connection failed: {kind}"),
        }
    }
}

/// Prints a negotiated ALPN protocol readably.
struct AlpnDisplay<'a>(&'a Option<Vec<u8>>);

impl fmt::Display for AlpnDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("none"),
            Some(proto) => write!(f, "{:?}", String::from_utf8_lossy(proto)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpn_error_names_the_negotiated_protocol() {
        let none = DohError::AlpnNotH2 { negotiated: None }.to_string();
        assert!(none.contains("negotiated none"), "{none}");
        let h11 = DohError::AlpnNotH2 {
            negotiated: Some(b"http/1.1".to_vec()),
        }
        .to_string();
        assert!(h11.contains("\"http/1.1\""), "{h11}");
    }

    #[test]
    fn stream_reset_shows_code_in_hex() {
        assert_eq!(
            DohError::StreamReset { code: 2 }.to_string(),
            "stream reset by server with HTTP/2 error code 0x2"
        );
    }

    #[test]
    fn connection_gone_reasons_are_distinct() {
        let all = [
            ConnectionGone::NotSent,
            ConnectionGone::GoAway { code: 0 },
            ConnectionGone::RefusedStream,
            ConnectionGone::KeepAliveTimeout,
            ConnectionGone::Io(std::io::ErrorKind::ConnectionReset),
        ];
        let texts: std::collections::HashSet<String> = all.iter().map(|g| g.to_string()).collect();
        assert_eq!(texts.len(), all.len());
    }
}
