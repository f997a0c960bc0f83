//! One way to get a verified connection: TCP connect, then the TLS handshake, under a
//! deadline, with the verifier's refusal extracted as a typed error.
//!
//! DNS-over-TLS, DNS-over-HTTPS and `ctdns check` all dial through [`connect`], so they
//! judge a resolver's certificate by the same handshake: the certificate verifier in the
//! given [`rustls::ClientConfig`] runs **inside** [`TlsConnector::connect`], and the stream
//! is only returned once the handshake has finished, so a refused certificate means no
//! application byte was written. [`connector`] makes the connector every transport uses:
//! a copy of the configuration with session resumption and 0-RTT early data turned off (a
//! resumed session would skip the verifier; early data would send bytes before it ran).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::deadline::Deadline;
use super::UpstreamError;
use crate::tls::presented::RefusedCertificate;

/// The TLS parameters of an established session, as `ctdns check` reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The protocol version, e.g. `TLSv1_3`.
    pub version: String,
    /// The cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher_suite: String,
    /// The negotiated ALPN protocol, if any.
    pub alpn: Option<Vec<u8>>,
}

impl SessionInfo {
    /// The parameters of `stream`'s session.
    pub fn of(stream: &TlsStream<TcpStream>) -> Self {
        let session = stream.get_ref().1;
        SessionInfo {
            version: session
                .protocol_version()
                .map(|v| format!("{v:?}"))
                .unwrap_or_else(|| "-".into()),
            cipher_suite: session
                .negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite()))
                .unwrap_or_else(|| "-".into()),
            alpn: session.alpn_protocol().map(<[u8]>::to_vec),
        }
    }
}

/// The connector for one transport: a copy of `tls` with session resumption and early
/// data off, offering exactly `alpn` when given (DoH: `h2`), else what `tls` offers.
pub fn connector(tls: &rustls::ClientConfig, alpn: Option<&[&[u8]]>) -> TlsConnector {
    let mut config = tls.clone();
    config.resumption = rustls::client::Resumption::disabled();
    config.enable_early_data = false;
    if let Some(alpn) = alpn {
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    }
    TlsConnector::from(Arc::new(config))
}

/// Where and how to dial one upstream.
#[derive(Clone, Copy)]
pub struct Dial<'a> {
    /// The connector carrying the verifier (see [`connector`]).
    pub connector: &'a TlsConnector,
    /// The address dialed.
    pub addr: SocketAddr,
    /// The TLS server name: the dialed IP, or a DoH URL's host name (then the verifier
    /// checks the IP SAN against the dialed IP it was given).
    pub server_name: &'a ServerName<'static>,
    /// Limit on TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
}

/// TCP connect and TLS handshake within `dial.connect_timeout` and `deadline` (the query's
/// own), calling `on_tcp` on the connected socket before the handshake (for socket options
/// the caller keeps, e.g. DoT's quick-ack handle). `TCP_NODELAY` is set: DNS messages are
/// small and latency matters more than segment count.
///
/// Errors: [`UpstreamError::Connect`] (TCP), [`UpstreamError::Refused`] (the verifier
/// refused the certificate), [`UpstreamError::Tls`] (any other handshake failure),
/// [`UpstreamError::ConnectTimeout`] (the connect timeout passed first), or
/// [`UpstreamError::Timeout`] (the query's deadline passed first).
pub async fn connect<T>(
    dial: Dial<'_>,
    deadline: &Deadline,
    on_tcp: impl FnOnce(&TcpStream) -> T,
) -> Result<(TlsStream<TcpStream>, T), UpstreamError> {
    let addr = dial.addr;
    let limit = deadline.min_after(dial.connect_timeout);
    let tcp = match limit.run(TcpStream::connect(addr)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(source)) => {
            return Err(UpstreamError::Connect {
                addr,
                source: Arc::new(source),
            })
        }
        Err(_) => return Err(late(deadline, addr, false)),
    };
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(%addr, error = %e, "could not set TCP_NODELAY");
    }
    let extra = on_tcp(&tcp);
    // The certificate verifier runs inside this handshake; nothing is written before it
    // has finished.
    match limit
        .run(dial.connector.connect(dial.server_name.clone(), tcp))
        .await
    {
        Ok(Ok(stream)) => Ok((stream, extra)),
        Ok(Err(source)) => Err(handshake_error(addr, source)),
        Err(_) => Err(late(deadline, addr, true)),
    }
}

/// The error for a connection attempt that ran out of time: the query's own deadline, or
/// the connect timeout.
fn late(deadline: &Deadline, addr: SocketAddr, tcp_connected: bool) -> UpstreamError {
    if deadline.is_expired() {
        UpstreamError::Timeout
    } else {
        UpstreamError::ConnectTimeout {
            addr,
            tcp_connected,
        }
    }
}

/// A failed TLS handshake with `addr` as an [`UpstreamError`]: [`UpstreamError::Refused`]
/// with the verifier's [`RefusedCertificate`] when it refused the certificate, else
/// [`UpstreamError::Tls`]. `source` is whatever the handshake failed with: tokio-rustls
/// gives an `io::Error` wrapping the `rustls::Error`; a QUIC handshake gives the
/// `rustls::Error` (or its own error type wrapping it) directly.
pub fn handshake_error<E>(addr: SocketAddr, source: E) -> UpstreamError
where
    E: std::error::Error + Send + Sync + 'static,
{
    if let Some(refused) = RefusedCertificate::find_in(&source) {
        return UpstreamError::Refused {
            upstream: addr,
            refusal: Arc::new(refused.clone()),
        };
    }
    // An `io::Error` (tokio-rustls) is kept as it is; anything else is wrapped in one.
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(source);
    let source = match boxed.downcast::<std::io::Error>() {
        Ok(io) => *io,
        Err(other) => std::io::Error::new(std::io::ErrorKind::InvalidData, other),
    };
    UpstreamError::Tls {
        addr,
        source: Arc::new(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::pins::SpkiPin;
    use crate::tls::presented::Presented;
    use crate::tls::verifier::Refusal;

    fn addr() -> SocketAddr {
        "127.0.0.1:853".parse().unwrap()
    }

    fn refused_rustls() -> rustls::Error {
        let refused = RefusedCertificate {
            refusal: Refusal::IssuerNotPinned {
                chain: vec![SpkiPin([1; 32])],
                pins: vec![SpkiPin([2; 32])],
            },
            presented: Presented::describe(b"x", &[], &[]),
        };
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
            Arc::new(refused),
        )))
    }

    #[test]
    fn a_refusal_inside_an_io_error_is_typed() {
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, refused_rustls());
        let error = handshake_error(addr(), io);
        let UpstreamError::Refused { upstream, refusal } = &error else {
            panic!("expected Refused, got {error:?}");
        };
        assert_eq!(*upstream, addr());
        assert_eq!(refusal.refusal.rule(), "issuer-pin");
        assert!(error
            .to_string()
            .starts_with("TLS handshake with 127.0.0.1:853: certificate refused: rule issuer-pin"));
    }

    #[test]
    fn a_refusal_from_a_bare_rustls_error_is_typed_too() {
        // What a QUIC handshake would hand over: no io::Error around it.
        let error = handshake_error(addr(), refused_rustls());
        assert_eq!(error.refusal().map(Refusal::rule), Some("issuer-pin"));
    }

    #[test]
    fn other_handshake_failures_keep_their_error() {
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let error = handshake_error(addr(), io);
        let UpstreamError::Tls { addr: a, source } = &error else {
            panic!("expected Tls, got {error:?}");
        };
        assert_eq!(*a, addr());
        assert_eq!(source.kind(), std::io::ErrorKind::InvalidData);
        assert!(source.to_string().contains("UnknownIssuer"), "{source}");
        let bare = handshake_error(addr(), rustls::Error::HandshakeNotComplete);
        assert!(matches!(bare, UpstreamError::Tls { .. }), "{bare:?}");
        assert!(bare.refusal().is_none());
    }

    #[tokio::test]
    async fn nothing_listening_is_a_connect_error_and_a_silent_peer_a_connect_timeout() {
        let config =
            rustls::ClientConfig::builder_with_provider(crate::provider::default_provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
        let tls = connector(&config, None);
        assert!(!tls.config().enable_early_data);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent = listener.local_addr().unwrap();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let name = ServerName::IpAddress(silent.ip().into());
        let dial = |addr| Dial {
            connector: &tls,
            addr,
            server_name: &name,
            connect_timeout: Duration::from_millis(200),
        };
        let long = Deadline::after(Duration::from_secs(10));
        let err = connect(dial(closed), &long, |_| ()).await.unwrap_err();
        assert!(
            matches!(err, UpstreamError::Connect { addr, .. } if addr == closed),
            "{err:?}"
        );
        // The listener accepts (backlog) and never answers the ClientHello.
        let err = connect(dial(silent), &long, |_| ()).await.unwrap_err();
        assert!(
            matches!(err, UpstreamError::ConnectTimeout { addr, tcp_connected: true } if addr == silent),
            "{err:?}"
        );
        // The query's own deadline first: a plain timeout.
        let short = Deadline::after(Duration::from_millis(50));
        let err = connect(dial(silent), &short, |_| ()).await.unwrap_err();
        assert!(matches!(err, UpstreamError::Timeout), "{err:?}");
        drop(listener);
    }
}
