//! DNS-over-HTTPS (RFC 8484) over HTTP/2.
//!
//! One [`DohTransport`] keeps one HTTP/2 connection to its endpoint and multiplexes every
//! concurrent query on it as a separate stream. A connection is opened lazily: TCP, then
//! the TLS handshake (the configured verifier decides there; nothing else is written
//! before it completes), then a check that the server selected ALPN `h2`, and only then
//! the HTTP/2 preface. A connection that closes (GOAWAY, error, idle timeout) is replaced
//! on the next query.
//!
//! Each query is sent with message ID 0 (RFC 8484 §4.1), by POST (default) or GET
//! (`?dns=` unpadded base64url). The response must have status 200, content type
//! `application/dns-message`, a body within the size cap, and parse as a DNS response
//! repeating the query's question; the client's message ID is then restored.
//!
//! A query whose connection went away before the server processed it (GOAWAY above the
//! stream, REFUSED_STREAM, connection reset or lost) is retried once on a fresh
//! connection if its deadline allows. Every other failure is returned as a typed
//! [`UpstreamError`] so the pool can fail over.

mod classify;
mod connection;
mod error;
mod message;
mod request;

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rustls::pki_types::{DnsName, ServerName};

use self::classify::{classify, classify_send, Failure};
use self::connection::{Conn, Dialer, ALPN_H2};
pub(crate) use self::error::ConnectionGone;
pub use self::error::{DohError, EndpointError};
// Public only with the feature `fuzzing`, for the fuzz targets (`ctdns::fuzzing`).
#[cfg(feature = "fuzzing")]
pub use self::message::PreparedQuery;
#[cfg(not(feature = "fuzzing"))]
use self::message::PreparedQuery;
#[cfg(feature = "fuzzing")]
pub use self::request::check_head;
#[cfg(not(feature = "fuzzing"))]
use self::request::check_head;
use self::request::RequestTarget;
use super::connect::{self, SessionInfo};
use super::deadline::Deadline;
use super::dial::{DialCounters, LastFailure};
use super::{BoxFuture, DialStats, Transport, UpstreamError};

/// Floor on the keep-alive PING interval derived from the query timeout.
const MIN_KEEPALIVE: Duration = Duration::from_millis(100);
/// Ceiling on the keep-alive PING interval derived from the query timeout.
const MAX_KEEPALIVE: Duration = Duration::from_secs(300);
/// Floor on the idle timeout, so a fresh connection lives long enough to be used.
const MIN_IDLE: Duration = Duration::from_millis(100);

/// Where a DoH resolver is reached.
///
/// The IP the certificate's IP SAN is checked against is always `addr`'s: there is no way
/// to name another one. Without `host_name` the TLS server name is that IP; with it, the
/// server name (and SNI) is the host name, the verifier checks the certificate against it,
/// and the transport additionally checks, after the handshake and before any HTTP/2 byte,
/// that the certificate is valid for `addr`'s IP (so it holds whatever the verifier was
/// told).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DohEndpoint {
    /// The address actually dialed.
    pub addr: SocketAddr,
    /// The DNS host name of a name URL (`https://dns.example/...`), sent as SNI; `None` for
    /// an IP URL.
    pub host_name: Option<DnsName<'static>>,
    /// The HTTP `:authority` (`host[:port]`).
    pub authority: String,
    /// The request path, e.g. `/dns-query`; may carry a query string.
    pub path: String,
}

impl DohEndpoint {
    /// The endpoint of an IP URL `https://ADDR/PATH`: the certificate is verified against
    /// the IP address, which is also the authority.
    pub fn ip(addr: SocketAddr, path: impl Into<String>) -> Self {
        DohEndpoint {
            addr,
            host_name: None,
            authority: addr.to_string(),
            path: path.into(),
        }
    }

    /// The TLS server name: the host name when there is one, else `addr`'s IP address.
    pub fn server_name(&self) -> ServerName<'static> {
        match &self.host_name {
            Some(name) => ServerName::DnsName(name.clone()),
            None => ServerName::IpAddress(self.addr.ip().into()),
        }
    }

    /// Checks that `authority` and `path` can form a request URI.
    pub fn check(&self) -> Result<(), EndpointError> {
        RequestTarget::new(&self.authority, &self.path).map(|_| ())
    }
}

/// How queries are carried (RFC 8484 §4.1); in the configuration, an upstream's `method`
/// key (`"post"` or `"get"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DohMethod {
    /// `POST` with the message as an `application/dns-message` body.
    #[default]
    Post,
    /// `GET` with the message in the `dns` query parameter, unpadded base64url.
    Get,
}

/// Tunables of a [`DohTransport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DohOptions {
    /// POST (default) or GET.
    pub method: DohMethod,
    /// Bound on opening a connection: TCP, TLS handshake and HTTP/2 start.
    pub connect_timeout: Duration,
    /// Bound on a whole query, including connecting and the one retry. While queries
    /// are in flight the connection is also checked with HTTP/2 PINGs every quarter of
    /// this (a quarter more to answer); one that stops answering is closed and its
    /// queries retried on a fresh connection.
    pub query_timeout: Duration,
    /// Largest accepted response body, in bytes.
    pub max_response_size: usize,
    /// A connection with no query in flight for this long is closed (at least 100 ms).
    pub idle_timeout: Duration,
    /// Pad queries with EDNS(0) Padding to 128-byte blocks (RFC 8467), as DoT does.
    pub padding: bool,
}

impl Default for DohOptions {
    fn default() -> Self {
        DohOptions {
            method: DohMethod::Post,
            connect_timeout: Duration::from_secs(3),
            query_timeout: Duration::from_secs(5),
            max_response_size: usize::from(u16::MAX),
            idle_timeout: Duration::from_secs(30),
            padding: true,
        }
    }
}

/// A DNS-over-HTTPS upstream over one multiplexed HTTP/2 connection.
pub struct DohTransport {
    name: String,
    endpoint: DohEndpoint,
    target: Result<RequestTarget, EndpointError>,
    dialer: Dialer,
    opts: DohOptions,
    slot: tokio::sync::Mutex<Slot>,
    next_conn_id: AtomicU64,
    dials: DialCounters,
}

/// The shared connection, and the last failed attempt to open one.
#[derive(Default)]
struct Slot {
    conn: Option<Conn>,
    last_failure: LastFailure,
}

impl fmt::Debug for DohTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DohTransport")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl DohTransport {
    /// A transport to `target` using `tls` for every connection.
    ///
    /// `tls` carries the verifier. The transport uses a copy with ALPN set to exactly
    /// `h2`, session resumption disabled (a resumed session would skip certificate
    /// verification) and early data off. An invalid `authority` or `path` is reported
    /// by every query as [`DohError::Endpoint`]; use [`DohEndpoint::check`] to find it
    /// earlier.
    pub fn new(target: DohEndpoint, tls: Arc<rustls::ClientConfig>, opts: DohOptions) -> Self {
        let dialer = Dialer {
            addr: target.addr,
            server_name: target.server_name(),
            connector: connect::connector(&tls, Some(&[ALPN_H2])),
            idle_timeout: opts.idle_timeout.max(MIN_IDLE),
            keepalive: (opts.query_timeout / 4).clamp(MIN_KEEPALIVE, MAX_KEEPALIVE),
        };
        DohTransport {
            name: format!("https://{}{}", target.authority, target.path),
            target: RequestTarget::new(&target.authority, &target.path),
            endpoint: target,
            dialer,
            opts,
            slot: tokio::sync::Mutex::new(Slot::default()),
            next_conn_id: AtomicU64::new(1),
            dials: DialCounters::default(),
        }
    }

    /// The endpoint this transport dials.
    pub fn endpoint(&self) -> &DohEndpoint {
        &self.endpoint
    }

    async fn run(&self, query: &[u8]) -> Result<Vec<u8>, UpstreamError> {
        let target = self
            .target
            .as_ref()
            .map_err(|e| DohError::Endpoint(e.clone()))?;
        let prepared = PreparedQuery::with_padding(query, self.opts.padding)?;
        let deadline = Deadline::after(self.opts.query_timeout);
        deadline
            .run(self.run_with_retry(target, &prepared, &deadline))
            .await
            .unwrap_or(Err(UpstreamError::Timeout))
    }

    async fn run_with_retry(
        &self,
        target: &RequestTarget,
        prepared: &PreparedQuery,
        deadline: &Deadline,
    ) -> Result<Vec<u8>, UpstreamError> {
        let conn = self.connection(None, deadline).await?;
        let gone = match self.exchange(&conn, target, prepared).await {
            Ok(answer) => return Ok(answer),
            Err(Failure::Fatal(e)) => return Err(e.into()),
            Err(Failure::Gone(gone)) => gone,
        };
        if deadline.is_expired() {
            return Err(UpstreamError::ConnectionLost(gone.to_string()));
        }
        tracing::debug!(upstream = %self.name, conn = conn.id, reason = %gone,
            "retrying DoH query on a fresh connection");
        let fresh = self.connection(Some(conn.id), deadline).await?;
        match self.exchange(&fresh, target, prepared).await {
            Ok(answer) => Ok(answer),
            Err(Failure::Fatal(e)) => Err(e.into()),
            Err(Failure::Gone(again)) => {
                self.retire(fresh.id).await;
                Err(UpstreamError::ConnectionLost(format!(
                    "{again} (retry after: {gone})"
                )))
            }
        }
    }

    /// The shared connection, opened if there is none, it is closed, or it is `stale`.
    /// Concurrent callers wait for one connection attempt instead of each dialing, and
    /// share its error if it fails ([`super::dial`]).
    async fn connection(
        &self,
        stale: Option<u64>,
        deadline: &Deadline,
    ) -> Result<Conn, UpstreamError> {
        let waiting_since = tokio::time::Instant::now();
        let mut slot = self.slot.lock().await;
        if let Some(conn) = slot.conn.as_ref() {
            if !conn.is_closed() && Some(conn.id) != stale {
                return Ok(conn.clone());
            }
        }
        // Drop our handle on a dead or stale connection: in-flight streams keep it alive
        // until they finish, then it closes.
        slot.conn = None;
        // Boxed: opening a connection (TLS and HTTP/2 handshakes) is a large future that
        // would otherwise be inlined into, and copied with, every query's future.
        let dial = Box::pin(async {
            let id = self.next_conn_id.fetch_add(1, Ordering::Relaxed);
            self.dialer
                .dial(id, self.opts.connect_timeout, deadline)
                .await
        });
        let conn = slot
            .last_failure
            .dial(&self.name, &self.dials, waiting_since, dial)
            .await?;
        slot.conn = Some(conn.clone());
        Ok(conn)
    }

    /// Forgets connection `id` if it is still the shared one.
    async fn retire(&self, id: u64) {
        let mut slot = self.slot.lock().await;
        if slot.conn.as_ref().is_some_and(|c| c.id == id) {
            slot.conn = None;
        }
    }

    /// One request/response on `conn`.
    async fn exchange(
        &self,
        conn: &Conn,
        target: &RequestTarget,
        prepared: &PreparedQuery,
    ) -> Result<Vec<u8>, Failure> {
        let result = self.exchange_on(conn, target, prepared).await;
        match result {
            // The driver closed the connection over an unanswered PING: that is why the
            // stream failed, whatever transport error it saw.
            Err(Failure::Gone(_)) if conn.keepalive_expired() => {
                Err(Failure::Gone(ConnectionGone::KeepAliveTimeout))
            }
            other => other,
        }
    }

    async fn exchange_on(
        &self,
        conn: &Conn,
        target: &RequestTarget,
        prepared: &PreparedQuery,
    ) -> Result<Vec<u8>, Failure> {
        let limit = self.opts.max_response_size;
        let (request, body) = target
            .request(self.opts.method, prepared.wire())
            .map_err(Failure::Fatal)?;
        let (_in_flight, mut sender) = conn.begin();
        let (response, mut stream) = sender
            .send_request(request, body.is_none())
            .map_err(classify_send)?;
        if let Some(body) = body {
            // Queued whole (a query is far below any flow-control window), with END_STREAM.
            stream.send_data(body, true).map_err(classify)?;
        }
        let response = response.await.map_err(classify)?;
        check_head(&response, limit).map_err(Failure::Fatal)?;
        let declared = declared_length(&response);
        // Dropping the body early (too large, bad DNS) resets just this stream.
        let body = read_body(response.into_body(), limit, declared).await?;
        prepared.accept_response(&body).map_err(Failure::Fatal)
    }
}

/// The `content-length` of a response, if it has a readable one (already checked against
/// the size cap by [`check_head`]).
fn declared_length<B>(response: &http::Response<B>) -> Option<usize> {
    response
        .headers()
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Reads a response body of at most `limit` bytes, handing flow-control capacity back as
/// it arrives. A body in one DATA frame (the usual case) is returned without copying;
/// otherwise the frames are joined into one buffer sized from `declared` when known.
async fn read_body(
    mut body: h2::RecvStream,
    limit: usize,
    declared: Option<usize>,
) -> Result<Bytes, Failure> {
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    let mut total = 0usize;
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(classify)?;
        let _ = body.flow_control().release_capacity(chunk.len());
        total = total.saturating_add(chunk.len());
        if total > limit {
            return Err(Failure::Fatal(DohError::ResponseTooLarge { limit }));
        }
        match (&mut joined, first.take()) {
            (Some(buf), _) => buf.extend_from_slice(&chunk),
            (None, None) => first = Some(chunk),
            (None, Some(earlier)) => {
                let mut buf = BytesMut::with_capacity(declared.unwrap_or(0).max(total));
                buf.extend_from_slice(&earlier);
                buf.extend_from_slice(&chunk);
                joined = Some(buf);
            }
        }
    }
    Ok(match joined {
        Some(buf) => buf.freeze(),
        None => first.unwrap_or_default(),
    })
}

impl Transport for DohTransport {
    fn query<'a>(&'a self, query: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, UpstreamError>> {
        Box::pin(self.run(query))
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn dial_stats(&self) -> DialStats {
        self.dials.snapshot()
    }

    fn connect(&self) -> BoxFuture<'_, Result<Option<SessionInfo>, UpstreamError>> {
        Box::pin(async {
            let deadline = Deadline::after(self.opts.query_timeout);
            let conn = deadline
                .run(self.connection(None, &deadline))
                .await
                .unwrap_or(Err(UpstreamError::Timeout))?;
            Ok(Some(conn.session.clone()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    fn tls() -> Arc<rustls::ClientConfig> {
        let config =
            rustls::ClientConfig::builder_with_provider(crate::provider::default_provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
        Arc::new(config)
    }

    #[test]
    fn ip_endpoint_uses_ip_everywhere() {
        let addr = SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 8443);
        let ep = DohEndpoint::ip(addr, "/dns-query");
        assert_eq!(ep.authority, "[::1]:8443");
        assert_eq!(
            ep.server_name(),
            ServerName::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST).into())
        );
        assert!(ep.check().is_ok());
    }

    #[test]
    fn named_endpoint_sends_the_name_and_keeps_the_dialed_ip() {
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)), 443);
        let ep = DohEndpoint {
            host_name: Some(DnsName::try_from("dns.example").unwrap().to_owned()),
            authority: "dns.example".into(),
            ..DohEndpoint::ip(addr, "/dns-query")
        };
        assert_eq!(
            ep.server_name(),
            ServerName::DnsName(DnsName::try_from("dns.example").unwrap().to_owned())
        );
        // An IP literal is not a DNS name: an endpoint cannot carry a second IP.
        assert!(DnsName::try_from("198.51.100.1").is_err());
    }

    #[test]
    fn name_is_the_url() {
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 443);
        let t = DohTransport::new(
            DohEndpoint::ip(addr, "/dns-query"),
            tls(),
            DohOptions::default(),
        );
        assert_eq!(t.name(), "https://127.0.0.1:443/dns-query");
    }

    #[tokio::test]
    async fn invalid_endpoint_fails_every_query_without_dialing() {
        // Port 9 on loopback (discard) would refuse the connection; the error must be
        // the endpoint's, proving nothing was dialed.
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9);
        let mut ep = DohEndpoint::ip(addr, "/dns-query");
        ep.path = "no-slash".to_owned();
        assert!(ep.check().is_err());
        let t = DohTransport::new(ep, tls(), DohOptions::default());
        let q = [0u8, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let err = t.query(&q).await.unwrap_err();
        assert!(
            matches!(
                err,
                UpstreamError::Doh(DohError::Endpoint(EndpointError::InvalidPath { .. }))
            ),
            "{err:?}"
        );
    }

    #[test]
    fn query_future_does_not_carry_the_dial() {
        // Opening a connection is a future of several KiB (TLS and HTTP/2 state); inlined
        // into every query's future it was copied a few times per query (profiled: 65 % of
        // the DoH path's instructions were memcpy). The hot path must stay small.
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9);
        let t = DohTransport::new(
            DohEndpoint::ip(addr, "/dns-query"),
            tls(),
            DohOptions::default(),
        );
        let q = [0u8; 12];
        let run = std::mem::size_of_val(&t.run(&q));
        let deadline = Deadline::after(Duration::from_secs(1));
        let dial = std::mem::size_of_val(&t.dialer.dial(1, Duration::from_secs(1), &deadline));
        assert!(run < 4096, "query future is {run} bytes");
        assert!(
            run < dial,
            "query future ({run} B) holds the dial ({dial} B)"
        );
    }

    #[tokio::test]
    async fn bad_query_fails_without_dialing() {
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9);
        let t = DohTransport::new(
            DohEndpoint::ip(addr, "/dns-query"),
            tls(),
            DohOptions::default(),
        );
        let err = t.query(&[0u8; 5]).await.unwrap_err();
        assert!(matches!(err, UpstreamError::MalformedQuery(_)), "{err:?}");
    }
}
