//! An in-process DNS-over-HTTPS test server on loopback: tokio-rustls + hyper HTTP/2,
//! serving `/dns-query` (POST and GET) from a small table of A records, with counters and
//! knobs for misbehaviour. Behaviour per query is chosen by the query name:
//!
//! | name               | answer                                                  |
//! |--------------------|---------------------------------------------------------|
//! | `a.test.`          | A 192.0.2.1                                             |
//! | `b.test.`          | A 192.0.2.2                                             |
//! | `qN.test.` N<256   | A 198.51.100.N                                          |
//! | `hold.test.`       | waits for [`DohServer::release`], then A 192.0.2.99     |
//! | `reset.test.`      | RST_STREAM (INTERNAL_ERROR)                             |
//! | `e500.test.`       | HTTP 500                                                |
//! | `ctype.test.`      | a correct answer labelled `text/plain`                  |
//! | `big.test.`        | 70 000-byte body with content-length                    |
//! | `bigstream.test.`  | 70 000-byte body streamed without content-length        |
//! | `wrongq.test.`     | an answer for a different question                      |
//! | anything else      | NXDOMAIN                                                |

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Barrier, Notify};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ServerBody = BoxBody<Bytes, Infallible>;

/// Size of the oversized bodies (larger than the client's 65 535-byte cap).
pub const BIG_BODY: usize = 70_000;

/// A test PKI: one root and leaves for 127.0.0.1.
pub struct TestPki {
    /// The root certificate, to put in the client's trust store.
    pub root: CertificateDer<'static>,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestPki {
    /// A fresh root CA.
    pub fn new(cn: &str) -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let root = params.self_signed(&key).unwrap();
        TestPki {
            root: root.der().clone(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A leaf for IP SAN 127.0.0.1 and its key.
    pub fn leaf(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        self.leaf_for(&["127.0.0.1".to_owned()])
    }

    /// A leaf for `sans` (IP addresses or DNS names) and its key.
    pub fn leaf_for(
        &self,
        sans: &[String],
    ) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let mut params = rcgen::CertificateParams::new(sans.to_vec()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "doh test server");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (vec![cert.der().clone(), self.root.clone()], key_der)
    }

    /// A client configuration trusting only this root, as the brief prescribes for tests:
    /// ring provider, resumption disabled, ALPN `h2`.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.root.clone()).unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.resumption = rustls::client::Resumption::disabled();
        config.alpn_protocols = vec![b"h2".to_vec()];
        Arc::new(config)
    }
}

/// What the server counts.
#[derive(Debug, Default)]
pub struct Counters {
    /// TLS handshakes completed.
    pub tls_accepted: AtomicUsize,
    /// TLS handshakes that failed.
    pub tls_failed: AtomicUsize,
    /// Connections fully finished (handshake failed, or served and closed).
    pub closed: AtomicUsize,
    /// HTTP requests that reached the handler.
    pub requests: AtomicUsize,
    /// HTTP requests that reached the handler on the first connection.
    pub requests_on_first: AtomicUsize,
    /// POST requests.
    pub posts: AtomicUsize,
    /// GET requests.
    pub gets: AtomicUsize,
    /// DNS queries seen with a message ID other than 0 (RFC 8484 §4.1 violations).
    pub nonzero_ids: AtomicUsize,
    /// Requests the server could not parse (bad media type, base64 or DNS).
    pub malformed: AtomicUsize,
    /// Application bytes read on any connection after its TLS handshake.
    pub bytes_after_handshake: AtomicU64,
    /// Every DNS query received (POST body or decoded GET parameter), in arrival order.
    pub received: std::sync::Mutex<Vec<Bytes>>,
}

impl Counters {
    /// Reads one counter.
    pub fn get(c: &AtomicUsize) -> usize {
        c.load(Ordering::SeqCst)
    }
}

/// Server behaviour switches.
#[derive(Debug, Clone, Default)]
pub struct Knobs {
    /// Offer ALPN `h2` (otherwise no ALPN at all: the handshake completes without it).
    pub no_alpn: bool,
    /// Gracefully shut down (GOAWAY) the first connection after it has received this
    /// many requests.
    pub goaway_after: Option<usize>,
    /// Reset the first N requests (server-wide) with REFUSED_STREAM.
    pub refuse_first: usize,
    /// Drop the first connection (no GOAWAY, no response) when it receives its first
    /// request.
    pub kill_first_connection: bool,
    /// Stop reading and writing the first connection (socket left open) when it
    /// receives its first request.
    pub freeze_first_connection: bool,
    /// Delay before answering every query.
    pub answer_delay: Option<Duration>,
    /// Hold every answer until this many requests are being handled at once.
    pub barrier: Option<usize>,
    /// SETTINGS_MAX_CONCURRENT_STREAMS advertised on the first connection.
    pub first_max_streams: Option<u32>,
    /// Hold answers on the first connection until it has sent GOAWAY.
    pub hold_first_until_goaway: bool,
    /// The server certificate's SANs (default: IP 127.0.0.1).
    pub leaf_sans: Vec<String>,
}

struct Shared {
    counters: Arc<Counters>,
    knobs: Knobs,
    release: Arc<Notify>,
    hold_arrived: Arc<Notify>,
    barrier: Option<Barrier>,
    refused: AtomicUsize,
}

/// Per-connection state.
struct ConnState {
    index: usize,
    requests: AtomicUsize,
    goaway: Notify,
    goaway_sent: tokio::sync::watch::Sender<bool>,
    kill: Notify,
    freeze: Notify,
}

/// A running DoH test server; stopped on drop.
pub struct DohServer {
    /// The loopback address it listens on.
    pub addr: SocketAddr,
    /// Its counters.
    pub counters: Arc<Counters>,
    release: Arc<Notify>,
    hold_arrived: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl DohServer {
    /// Starts a server on 127.0.0.1 port 0 with `pki`'s leaf certificate.
    pub async fn start(pki: &TestPki, knobs: Knobs) -> Self {
        let (chain, key) = if knobs.leaf_sans.is_empty() {
            pki.leaf()
        } else {
            pki.leaf_for(&knobs.leaf_sans)
        };
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        if !knobs.no_alpn {
            config.alpn_protocols = vec![b"h2".to_vec()];
        }
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let counters = Arc::new(Counters::default());
        let release = Arc::new(Notify::new());
        let hold_arrived = Arc::new(Notify::new());
        let shared = Arc::new(Shared {
            counters: Arc::clone(&counters),
            barrier: knobs.barrier.map(Barrier::new),
            knobs,
            release: Arc::clone(&release),
            hold_arrived: Arc::clone(&hold_arrived),
            refused: AtomicUsize::new(0),
        });
        let task = tokio::spawn(async move {
            // Dropping the JoinSet (when this task is aborted) aborts every connection.
            let mut connections = JoinSet::new();
            let mut index = 0;
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((tcp, _)) = accepted else { continue };
                        let conn = Arc::new(ConnState {
                            index,
                            requests: AtomicUsize::new(0),
                            goaway: Notify::new(),
                            goaway_sent: tokio::sync::watch::Sender::new(false),
                            kill: Notify::new(),
                            freeze: Notify::new(),
                        });
                        index += 1;
                        connections.spawn(serve_connection(
                            tcp,
                            acceptor.clone(),
                            Arc::clone(&shared),
                            conn,
                        ));
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        DohServer {
            addr,
            counters,
            release,
            hold_arrived,
            task,
        }
    }

    /// Lets one held (`hold.test.`) answer go.
    pub fn release(&self) {
        self.release.notify_one();
    }

    /// Waits until a `hold.test.` request has reached the handler.
    pub async fn hold_arrived(&self) {
        self.hold_arrived.notified().await;
    }

    /// Waits (bounded) until `closed` connections have finished.
    pub async fn wait_closed(&self, closed: usize) {
        for _ in 0..500 {
            if Counters::get(&self.counters.closed) >= closed {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "server saw {} closed connections, expected {closed}",
            Counters::get(&self.counters.closed)
        );
    }
}

impl Drop for DohServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_connection(
    tcp: TcpStream,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    conn: Arc<ConnState>,
) {
    let counters = Arc::clone(&shared.counters);
    let tls = match acceptor.accept(tcp).await {
        Ok(tls) => tls,
        Err(_) => {
            counters.tls_failed.fetch_add(1, Ordering::SeqCst);
            counters.closed.fetch_add(1, Ordering::SeqCst);
            return;
        }
    };
    counters.tls_accepted.fetch_add(1, Ordering::SeqCst);
    let is_h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
    let mut io = CountingIo {
        inner: tls,
        read: Arc::clone(&shared.counters),
    };
    if !is_h2 {
        // Not HTTP/2: just count whatever the client sends until it goes away.
        let mut sink = Vec::new();
        let _ = io.read_to_end(&mut sink).await;
        counters.closed.fetch_add(1, Ordering::SeqCst);
        return;
    }
    let service = {
        let shared = Arc::clone(&shared);
        let conn = Arc::clone(&conn);
        service_fn(move |req| handle(req, Arc::clone(&shared), Arc::clone(&conn)))
    };
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    if conn.index == 0 {
        if let Some(max) = shared.knobs.first_max_streams {
            builder.max_concurrent_streams(max);
        }
    }
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let mut shutting_down = false;
    loop {
        tokio::select! {
            _ = connection.as_mut() => break,
            _ = conn.goaway.notified(), if !shutting_down => {
                shutting_down = true;
                connection.as_mut().graceful_shutdown();
                conn.goaway_sent.send_replace(true);
            }
            _ = conn.kill.notified() => break,
            _ = conn.freeze.notified() => {
                // Keep the socket open but never poll the connection again.
                std::future::pending::<()>().await;
            }
        }
    }
    counters.closed.fetch_add(1, Ordering::SeqCst);
}

async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    conn: Arc<ConnState>,
) -> Result<Response<ServerBody>, BoxError> {
    let counters = &shared.counters;
    counters.requests.fetch_add(1, Ordering::SeqCst);
    let on_conn = conn.requests.fetch_add(1, Ordering::SeqCst) + 1;
    if conn.index == 0 {
        counters.requests_on_first.fetch_add(1, Ordering::SeqCst);
        if shared.knobs.goaway_after == Some(on_conn) {
            conn.goaway.notify_one();
        }
        if shared.knobs.freeze_first_connection {
            conn.freeze.notify_one();
            std::future::pending::<()>().await;
        }
        if shared.knobs.kill_first_connection {
            conn.kill.notify_one();
            // Never answer: the connection is going down.
            std::future::pending::<()>().await;
        }
    }
    if shared.refused.fetch_add(1, Ordering::SeqCst) < shared.knobs.refuse_first {
        return Err(Box::new(h2::Error::from(h2::Reason::REFUSED_STREAM)));
    }

    let Some(wire) = read_query(req, counters).await else {
        counters.malformed.fetch_add(1, Ordering::SeqCst);
        return Ok(status(StatusCode::BAD_REQUEST));
    };
    counters
        .received
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(wire.clone());
    let Ok(query) = Message::from_vec(&wire) else {
        counters.malformed.fetch_add(1, Ordering::SeqCst);
        return Ok(status(StatusCode::BAD_REQUEST));
    };
    if query.metadata.id != 0 {
        counters.nonzero_ids.fetch_add(1, Ordering::SeqCst);
        return Ok(status(StatusCode::BAD_REQUEST));
    }
    if conn.index == 0 && shared.knobs.hold_first_until_goaway {
        let mut sent = conn.goaway_sent.subscribe();
        let _ = sent.wait_for(|sent| *sent).await;
    }
    if let Some(barrier) = &shared.barrier {
        barrier.wait().await;
    }
    if let Some(delay) = shared.knobs.answer_delay {
        tokio::time::sleep(delay).await;
    }
    let name = query
        .queries
        .first()
        .map(|q| q.name.to_ascii().to_ascii_lowercase())
        .unwrap_or_default();
    match name.as_str() {
        "reset.test." => Err("reset requested".into()),
        "e500.test." => Ok(status(StatusCode::INTERNAL_SERVER_ERROR)),
        "ctype.test." => Ok(dns_response(answer(&query), "text/plain")),
        "big.test." => Ok(dns_response(Bytes::from(vec![0u8; BIG_BODY]), DNS_MESSAGE)),
        "bigstream.test." => Ok(Response::builder()
            .status(StatusCode::OK)
            .header(http::header::CONTENT_TYPE, DNS_MESSAGE)
            .body(BoxBody::new(Chunked {
                remaining: BIG_BODY,
            }))
            .unwrap()),
        "wrongq.test." => {
            let mut other = query.clone();
            other.queries = vec![Query::query(
                Name::from_str("other.test.").unwrap(),
                RecordType::A,
            )];
            Ok(dns_response(answer(&other), DNS_MESSAGE))
        }
        "hold.test." => {
            shared.hold_arrived.notify_one();
            shared.release.notified().await;
            Ok(dns_response(answer(&query), DNS_MESSAGE))
        }
        _ => Ok(dns_response(answer(&query), DNS_MESSAGE)),
    }
}

const DNS_MESSAGE: &str = "application/dns-message";

/// The DNS query of a POST body or a GET `dns` parameter.
async fn read_query(req: Request<Incoming>, counters: &Counters) -> Option<Bytes> {
    if req.uri().path() != "/dns-query" {
        return None;
    }
    match *req.method() {
        Method::POST => {
            counters.posts.fetch_add(1, Ordering::SeqCst);
            let ctype = req.headers().get(http::header::CONTENT_TYPE)?;
            if ctype.as_bytes() != DNS_MESSAGE.as_bytes() {
                return None;
            }
            let body = Limited::new(req.into_body(), 65_535).collect().await.ok()?;
            Some(body.to_bytes())
        }
        Method::GET => {
            counters.gets.fetch_add(1, Ordering::SeqCst);
            let query = req.uri().query()?;
            let b64 = query.split('&').find_map(|kv| kv.strip_prefix("dns="))?;
            URL_SAFE_NO_PAD.decode(b64).ok().map(Bytes::from)
        }
        _ => None,
    }
}

/// The table.
fn lookup(name: &str) -> Option<Ipv4Addr> {
    match name {
        "a.test." => Some(Ipv4Addr::new(192, 0, 2, 1)),
        "b.test." => Some(Ipv4Addr::new(192, 0, 2, 2)),
        "hold.test." => Some(Ipv4Addr::new(192, 0, 2, 99)),
        "ctype.test." => Some(Ipv4Addr::new(192, 0, 2, 3)),
        "wrongq.test." | "other.test." => Some(Ipv4Addr::new(192, 0, 2, 4)),
        _ => {
            let n = name.strip_prefix('q')?.strip_suffix(".test.")?;
            n.parse::<u8>().ok().map(|n| Ipv4Addr::new(198, 51, 100, n))
        }
    }
}

/// The address the table gives for `qN.test.`.
pub fn expected_q(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 51, 100, n))
}

fn answer(query: &Message) -> Bytes {
    let mut resp = Message::response(query.metadata.id, OpCode::Query);
    resp.metadata.recursion_desired = query.metadata.recursion_desired;
    resp.metadata.recursion_available = true;
    resp.add_queries(query.queries.clone());
    if let Some(q) = query.queries.first() {
        let key = q.name.to_ascii().to_ascii_lowercase();
        match lookup(&key) {
            Some(ip) if q.query_type == RecordType::A => {
                resp.add_answer(Record::from_rdata(q.name.clone(), 300, RData::A(ip.into())));
            }
            Some(_) => {}
            None => resp.metadata.response_code = ResponseCode::NXDomain,
        }
    }
    assert_eq!(resp.metadata.message_type, MessageType::Response);
    Bytes::from(resp.to_vec().unwrap())
}

fn dns_response(body: Bytes, content_type: &str) -> Response<ServerBody> {
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(BoxBody::new(Full::new(body)))
        .unwrap()
}

fn status(code: StatusCode) -> Response<ServerBody> {
    Response::builder()
        .status(code)
        .body(BoxBody::new(Full::new(Bytes::new())))
        .unwrap()
}

/// A body of zeros of unknown length, sent in 4 KiB frames.
struct Chunked {
    remaining: usize,
}

impl Body for Chunked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(4096);
        self.remaining -= n;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![0u8; n])))))
    }
}

/// Counts plaintext bytes read after the TLS handshake.
struct CountingIo<T> {
    inner: T,
    read: Arc<Counters>,
}

impl<T: AsyncRead + Unpin> AsyncRead for CountingIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            let n = (buf.filled().len() - before) as u64;
            self.read
                .bytes_after_handshake
                .fetch_add(n, Ordering::SeqCst);
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CountingIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
