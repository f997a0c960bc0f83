//! One configurable in-process DNS-over-TLS / DNS-over-HTTPS server for tests, benchmarks and
//! `ctdns demo`.
//!
//! **Not a production server.** It listens on a loopback address (port 0 by default), speaks
//! DoT (RFC 7858 framing) or DoH (HTTP/2, RFC 8484 POST) over tokio-rustls, answers as its
//! [`Answers`] say, and misbehaves as the current [`Fault`] says; the fault can be switched
//! at any time with [`TestServer::set`]. Faults that act on a query are read when the query
//! arrives, so switching back to [`Fault::Honest`] heals live connections too; faults that
//! act on the handshake ([`Fault::FatalAlert`], [`Fault::StallHandshake`],
//! [`Fault::RogueCert`]) apply to connections accepted while they are set;
//! [`TestServer::drop_connections`] closes the established ones, so that the client has to
//! reconnect into the fault (a certificate that changes between connections).
//!
//! It counts what a test of a refusal needs ([`Counters`]): TCP connections, completed and
//! failed TLS handshakes, and every application (DNS) byte received after a handshake,
//! separately for connections that were offered the rogue chain, so a test can show that a
//! refused upstream never received a single DNS byte. Dropping a server stops it and every
//! connection it holds; [`TestServer::shutdown`] also waits for that.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use ctdns::testkit::{AnswerTable, Answers, Protocol, ServerCert, TestServer};
//!
//! let (_pki, leaf) = ctdns::pki::demo_pki("127.0.0.1".parse()?)?;
//! let mut answers = AnswerTable::new();
//! answers.insert("bank.example.", "192.0.2.80".parse()?)?;
//! let server = TestServer::builder(Protocol::Dot, ServerCert::from_leaf(&leaf))
//!     .answers(Answers::Table(answers))
//!     .start()
//!     .await?;
//! // ... point a DoT client at server.addr() ...
//! let stats = server.stats();
//! server.shutdown().await;
//! # let _ = stats; Ok(()) }
//! ```

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::{Answers, ServerError};
use crate::pki::IssuedLeaf;

/// How long the DoH server keeps a connection after sending GOAWAY for [`Fault::GoAway`].
const GOAWAY_LINGER: Duration = Duration::from_millis(100);

/// DNS-over-TLS answer knobs, fixed at start (the [`Fault`] can change at any time; these
/// apply while it is [`Fault::Honest`] or another fault that answers normally). The default
/// is a plain server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DotKnobs {
    /// Delay every answer by this much (answers are sent concurrently, so a later query can
    /// be answered first).
    pub delay: Duration,
    /// Hold answers until this many queries arrived on the connection, then send them in
    /// reverse order (0 or 1: no batching).
    pub reverse_batch: usize,
    /// Connections with an index (0-based, in accept order) below this close as soon as a
    /// query arrives, unanswered.
    pub close_first_connections: usize,
    /// Close a connection on which no query arrived for this long.
    pub idle_close: Option<Duration>,
    /// Before each answer, send three wrong responses ([`super::answers::decoys`]): an
    /// unknown ID, another name, another type.
    pub decoys: bool,
}

/// How a faulty server misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answers every query correctly.
    Honest,
    /// Reads a query, then closes the TCP connection (FIN, no close_notify), unanswered.
    Kill,
    /// Reads a query, then resets the TCP connection (SO_LINGER 0), unanswered.
    Reset,
    /// Reads a query, then sends TLS close_notify and closes, unanswered.
    CloseNotify,
    /// Answers the ClientHello with a fatal `handshake_failure` alert: no TLS session.
    FatalAlert,
    /// Accepts the TCP connection but never answers the ClientHello.
    StallHandshake,
    /// Completes the handshake and reads queries, but never answers.
    Stall,
    /// Answers with a message ID the client did not use (DoT: the ID xor 0x5A5A; DoH:
    /// 0x5A5A instead of 0).
    WrongId,
    /// DoT: a length prefix announcing the whole answer, half of it, then close. DoH: a
    /// `content-length` for the whole answer, half the body, then close.
    Truncated,
    /// DoT: a 65535-byte frame of garbage (connection kept open). DoH: a 65535-byte
    /// `application/dns-message` body of garbage.
    Oversized,
    /// DoH only: GOAWAY on a request, which stays unanswered; the connection is closed
    /// shortly after. (DoT answers honestly.)
    GoAway,
    /// DoH only: RST_STREAM (INTERNAL_ERROR) on every request. (DoT answers honestly.)
    RstStream,
    /// New connections get the rogue chain ([`Builder::rogue`]; the honest one when none was
    /// given), e.g. a valid chain from the test PKI's rogue CA that only an issuer pin refuses.
    RogueCert,
}

impl Fault {
    /// The faults that apply to DNS-over-TLS.
    pub const DOT: &'static [Fault] = &[
        Fault::Honest,
        Fault::Kill,
        Fault::Reset,
        Fault::CloseNotify,
        Fault::FatalAlert,
        Fault::StallHandshake,
        Fault::Stall,
        Fault::WrongId,
        Fault::Truncated,
        Fault::Oversized,
        Fault::RogueCert,
    ];

    /// The faults that apply to DNS-over-HTTPS.
    pub const DOH: &'static [Fault] = &[
        Fault::Honest,
        Fault::Kill,
        Fault::Reset,
        Fault::CloseNotify,
        Fault::FatalAlert,
        Fault::StallHandshake,
        Fault::Stall,
        Fault::WrongId,
        Fault::Truncated,
        Fault::Oversized,
        Fault::GoAway,
        Fault::RstStream,
        Fault::RogueCert,
    ];

    /// A short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Fault::Honest => "honest",
            Fault::Kill => "killed mid-stream",
            Fault::Reset => "TCP reset",
            Fault::CloseNotify => "TLS close_notify",
            Fault::FatalAlert => "TLS fatal alert",
            Fault::StallHandshake => "stalled handshake",
            Fault::Stall => "stalled",
            Fault::WrongId => "wrong ID",
            Fault::Truncated => "truncated frame",
            Fault::Oversized => "oversized garbage",
            Fault::GoAway => "HTTP/2 GOAWAY",
            Fault::RstStream => "HTTP/2 RST_STREAM",
            Fault::RogueCert => "rogue certificate",
        }
    }
}

/// What a server counts.
#[derive(Debug, Default)]
pub struct Counters {
    /// TCP connections accepted.
    pub tcp_accepted: AtomicUsize,
    /// TLS handshakes completed (either certificate).
    pub handshakes: AtomicUsize,
    /// TLS handshakes that failed (the client refused, or went away).
    pub handshake_failures: AtomicUsize,
    /// Application bytes received after a completed handshake (either certificate).
    pub app_bytes: AtomicU64,
    /// Connections on which the rogue certificate was offered.
    pub rogue_offered: AtomicUsize,
    /// TLS handshakes completed with the rogue certificate.
    pub rogue_handshakes: AtomicUsize,
    /// Application bytes received on connections that were offered the rogue certificate.
    pub rogue_app_bytes: AtomicU64,
    /// Fatal alerts sent instead of a ServerHello.
    pub alerts_sent: AtomicUsize,
    /// Connections whose ClientHello was left unanswered.
    pub handshakes_stalled: AtomicUsize,
    /// DNS queries read.
    pub queries: AtomicUsize,
    /// Correct answers sent.
    pub answered: AtomicUsize,
    /// Connections that ended (either side, handshake failures included).
    pub closed: AtomicUsize,
    /// Decoy responses sent ([`DotKnobs::decoys`]).
    pub decoys_sent: AtomicUsize,
    /// DoH: HTTP requests that reached the handler.
    pub requests: AtomicUsize,
    /// DoH: HTTP requests that reached the handler on the first connection.
    pub requests_on_first: AtomicUsize,
    /// DoH: POST requests.
    pub posts: AtomicUsize,
    /// DoH: GET requests.
    pub gets: AtomicUsize,
    /// DoH: queries with a message ID other than 0 (RFC 8484 §4.1 violations), answered 400.
    pub nonzero_ids: AtomicUsize,
    /// DoH: requests that carried no readable DNS query (path, method, media type, base64 or
    /// DNS), answered 400.
    pub malformed: AtomicUsize,
    /// Every query message received (DoT without the length prefix; DoH the POST body or the
    /// decoded GET parameter), in arrival order.
    query_log: Mutex<Vec<Vec<u8>>>,
}

impl Counters {
    /// A snapshot of the main counters.
    pub fn snapshot(&self) -> ServerStats {
        ServerStats {
            tcp_accepted: Self::get(&self.tcp_accepted),
            handshakes: Self::get(&self.handshakes),
            handshake_failures: Self::get(&self.handshake_failures),
            app_bytes: Self::bytes(&self.app_bytes),
            rogue_app_bytes: Self::bytes(&self.rogue_app_bytes),
            queries: Self::get(&self.queries),
            answered: Self::get(&self.answered),
        }
    }

    /// Every query message received so far, in arrival order.
    pub fn query_log(&self) -> Vec<Vec<u8>> {
        self.query_log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn record_query(&self, query: &[u8]) {
        self.queries.fetch_add(1, Ordering::SeqCst);
        self.query_log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(query.to_vec());
    }

    /// Reads a counter.
    pub fn get(c: &AtomicUsize) -> usize {
        c.load(Ordering::SeqCst)
    }

    /// Reads a byte counter.
    pub fn bytes(c: &AtomicU64) -> u64 {
        c.load(Ordering::SeqCst)
    }
}

/// The current fault, shared by a server and its connections.
#[derive(Debug)]
struct Control {
    fault: Mutex<Fault>,
    /// Bumped to close every established connection.
    kick: watch::Sender<u64>,
}

impl Control {
    fn get(&self) -> Fault {
        *self.fault.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap_or_else(PoisonError::into_inner) = fault;
    }

    /// Completes when [`TestServer::drop_connections`] is called.
    async fn kicked(mut kick: watch::Receiver<u64>) {
        let _ = kick.changed().await;
    }
}

/// Which protocol the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// DNS over TLS.
    Dot,
    /// DNS over HTTPS (HTTP/2).
    Doh,
}

impl Protocol {
    /// Short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Dot => "DoT",
            Protocol::Doh => "DoH",
        }
    }

    /// The faults that apply to this protocol.
    pub fn faults(self) -> &'static [Fault] {
        match self {
            Protocol::Dot => Fault::DOT,
            Protocol::Doh => Fault::DOH,
        }
    }
}

/// A certificate chain (leaf first), its private key, and an optional DER OCSP response to
/// staple to every handshake.
#[derive(Debug)]
pub struct ServerCert {
    /// The chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
    /// A DER OCSP response stapled to every handshake (none when empty).
    pub ocsp: Vec<u8>,
}

impl Clone for ServerCert {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            ocsp: self.ocsp.clone(),
        }
    }
}

impl ServerCert {
    /// `chain` and `key`, no staple.
    pub fn new(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Self {
        Self {
            chain,
            key,
            ocsp: Vec::new(),
        }
    }

    /// A leaf of the test PKI: its chain, key and stapled OCSP response, if any.
    pub fn from_leaf(leaf: &IssuedLeaf) -> Self {
        Self {
            chain: leaf.chain.clone(),
            key: leaf.key_der(),
            ocsp: leaf.ocsp_response.clone().unwrap_or_default(),
        }
    }

    /// The same chain and key with `ocsp` stapled (none when empty).
    pub fn with_ocsp(mut self, ocsp: Vec<u8>) -> Self {
        self.ocsp = ocsp;
        self
    }

    /// A rustls server configuration (the crypto provider selected by the crate features,
    /// [`crate::provider::default_provider`]; safe default versions) serving this
    /// chain with `alpn` protocols.
    pub fn server_config(&self, alpn: &[&[u8]]) -> Result<rustls::ServerConfig, ServerError> {
        let provider = crate::provider::default_provider();
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert_with_ocsp(
                self.chain.clone(),
                self.key.clone_key(),
                self.ocsp.clone(),
            )?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }

    fn acceptor(&self, alpn: &[&[u8]]) -> Result<TlsAcceptor, ServerError> {
        Ok(TlsAcceptor::from(Arc::new(self.server_config(alpn)?)))
    }
}

/// DNS-over-HTTPS knobs, fixed at start. "The first connection" is the one accepted first.
/// The default is a plain server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DohKnobs {
    /// Offer no ALPN at all (the handshake completes without `h2`; the server then only
    /// counts what the client sends).
    pub no_alpn: bool,
    /// Gracefully shut down (GOAWAY) the first connection after it has received this many
    /// requests.
    pub goaway_after: Option<usize>,
    /// Reset the first N requests (server-wide) with REFUSED_STREAM.
    pub refuse_first: usize,
    /// Drop the first connection (no GOAWAY, no response) when it receives its first request.
    pub kill_first_connection: bool,
    /// Stop reading and writing the first connection (socket left open) when it receives
    /// its first request.
    pub freeze_first_connection: bool,
    /// Delay before answering every query.
    pub answer_delay: Option<Duration>,
    /// Hold every answer until this many requests are being handled at once.
    pub barrier: Option<usize>,
    /// SETTINGS_MAX_CONCURRENT_STREAMS advertised on the first connection.
    pub first_max_streams: Option<u32>,
    /// Hold answers on the first connection until it has sent GOAWAY.
    pub hold_first_until_goaway: bool,
    /// Query names that trigger a behaviour (before the [`Fault`] is consulted):
    ///
    /// | name               | answer                                                  |
    /// |--------------------|---------------------------------------------------------|
    /// | `hold.test.`       | waits for [`TestServer::release`], then the answer      |
    /// | `reset.test.`      | RST_STREAM (INTERNAL_ERROR)                             |
    /// | `e500.test.`       | HTTP 500                                                |
    /// | `ctype.test.`      | the answer labelled `text/plain`                        |
    /// | `big.test.`        | a [`BIG_BODY`]-byte body with content-length            |
    /// | `bigstream.test.`  | a [`BIG_BODY`]-byte body streamed without content-length|
    /// | `wrongq.test.`     | the answer for `other.test.` instead                    |
    pub trigger_names: bool,
}

/// Size of the oversized bodies of [`DohKnobs::trigger_names`] (larger than a client's
/// 65,535-byte cap).
pub const BIG_BODY: usize = 70_000;

/// A snapshot of a server's [`Counters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// TCP connections accepted.
    pub tcp_accepted: usize,
    /// TLS handshakes completed (either chain).
    pub handshakes: usize,
    /// TLS handshakes that failed (e.g. the client refused the certificate and aborted).
    pub handshake_failures: usize,
    /// Application bytes (DNS messages, with DoT length prefixes or HTTP/2 framing)
    /// received after completed handshakes.
    pub app_bytes: u64,
    /// Application bytes received on connections that were offered the rogue chain.
    pub rogue_app_bytes: u64,
    /// Queries read.
    pub queries: usize,
    /// Responses sent for [`Fault::Honest`] (answers, NXDOMAIN and error responses alike).
    pub answered: usize,
}

/// Starts a [`TestServer`]: protocol and certificate first, the rest optional.
#[derive(Debug)]
pub struct Builder {
    protocol: Protocol,
    bind: SocketAddr,
    honest: ServerCert,
    rogue: Option<ServerCert>,
    fault: Fault,
    answers: Answers,
    knobs: DotKnobs,
    doh_knobs: DohKnobs,
}

impl Builder {
    /// DoH knobs (GOAWAY, REFUSED_STREAM, kill or freeze the first connection, delays,
    /// trigger names, ...).
    pub fn doh_knobs(mut self, knobs: DohKnobs) -> Self {
        self.doh_knobs = knobs;
        self
    }

    /// DoT answer knobs (delay, reverse order, early closes, idle close, decoys).
    pub fn dot_knobs(mut self, knobs: DotKnobs) -> Self {
        self.knobs = knobs;
        self
    }

    /// Listen on `addr` instead of 127.0.0.1:0 (port 0 picks a free port).
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// The chain offered while [`Fault::RogueCert`] is set.
    pub fn rogue(mut self, cert: ServerCert) -> Self {
        self.rogue = Some(cert);
        self
    }

    /// The behaviour at start ([`Fault::Honest`] unless set).
    pub fn fault(mut self, fault: Fault) -> Self {
        self.fault = fault;
        self
    }

    /// What the server answers ([`Answers::Synthetic`] unless set).
    pub fn answers(mut self, answers: Answers) -> Self {
        self.answers = answers;
        self
    }

    /// Bind and start serving. Must be called inside a Tokio runtime.
    pub async fn start(self) -> Result<TestServer, ServerError> {
        let alpn: &[&[u8]] = match self.protocol {
            Protocol::Doh if !self.doh_knobs.no_alpn => &[b"h2"],
            Protocol::Dot | Protocol::Doh => &[],
        };
        let doh = Arc::new(DohShared {
            barrier: self.doh_knobs.barrier.map(tokio::sync::Barrier::new),
            knobs: self.doh_knobs,
            release: Notify::new(),
            hold_arrived: Notify::new(),
            refused: AtomicUsize::new(0),
        });
        let honest = self.honest.acceptor(alpn)?;
        let rogue = match &self.rogue {
            Some(cert) => cert.acceptor(alpn)?,
            None => honest.clone(),
        };
        let acceptors = Acceptors { honest, rogue };
        let addr = self.bind;
        let (listener, bound) = super::bind(addr).await?;
        let counters = Arc::new(Counters::default());
        let control = Arc::new(Control {
            fault: Mutex::new(self.fault),
            kick: watch::Sender::new(0),
        });
        let template = ConnCtx {
            index: 0,
            acceptors,
            answers: Arc::new(self.answers),
            knobs: Arc::new(self.knobs),
            doh: Arc::clone(&doh),
            control: Arc::clone(&control),
            counters: Arc::clone(&counters),
        };
        let task = tokio::spawn(accept_loop(listener, self.protocol, template));
        Ok(TestServer {
            protocol: self.protocol,
            addr: bound,
            counters,
            control,
            doh,
            task: Some(task),
        })
    }
}

/// A running test server (DoT or DoH). Stopped on drop.
#[derive(Debug)]
pub struct TestServer {
    protocol: Protocol,
    addr: SocketAddr,
    counters: Arc<Counters>,
    control: Arc<Control>,
    doh: Arc<DohShared>,
    task: Option<JoinHandle<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl TestServer {
    /// A server speaking `protocol` with `cert`, on 127.0.0.1:0, honest, with
    /// [`Answers::Synthetic`] until the builder says otherwise.
    pub fn builder(protocol: Protocol, cert: ServerCert) -> Builder {
        Builder {
            protocol,
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            honest: cert,
            rogue: None,
            fault: Fault::Honest,
            answers: Answers::Synthetic,
            knobs: DotKnobs::default(),
            doh_knobs: DohKnobs::default(),
        }
    }

    /// The protocol.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The live counters (shared: clone the `Arc` to read them after the server is gone).
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ServerStats {
        self.counters.snapshot()
    }

    /// Switches the behaviour.
    pub fn set(&self, fault: Fault) {
        self.control.set(fault);
    }

    /// The current behaviour.
    pub fn fault(&self) -> Fault {
        self.control.get()
    }

    /// Closes every established connection (TCP FIN, no close_notify, no GOAWAY): the
    /// client has to reconnect, and meets whatever handshake fault is set by then.
    pub fn drop_connections(&self) {
        self.control.kick.send_modify(|generation| *generation += 1);
    }

    /// DoH with [`DohKnobs::trigger_names`]: lets one held (`hold.test.`) answer go.
    pub fn release(&self) {
        self.doh.release.notify_one();
    }

    /// DoH with [`DohKnobs::trigger_names`]: waits until a `hold.test.` request has reached
    /// the handler.
    pub async fn hold_arrived(&self) {
        self.doh.hold_arrived.notified().await;
    }

    /// Stop accepting, close every connection, and return when all tasks have ended.
    pub async fn shutdown(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

/// Accepts connections and serves each with a copy of `template` (its index set).
async fn accept_loop(listener: TcpListener, protocol: Protocol, template: ConnCtx) {
    let counters = Arc::clone(&template.counters);
    let control = Arc::clone(&template.control);
    // Dropped (aborting every connection) when this task is aborted.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else {
                    // Out of descriptors or similar: do not spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let index = counters.tcp_accepted.fetch_add(1, Ordering::SeqCst);
                let ctx = ConnCtx {
                    index,
                    ..template.clone()
                };
                let kicked = Control::kicked(control.kick.subscribe());
                let counters = Arc::clone(&counters);
                connections.spawn(async move {
                    // A kick drops the connection future, and with it the socket.
                    tokio::select! {
                        _ = kicked => {}
                        _ = async {
                            match protocol {
                                Protocol::Dot => dot_connection(tcp, ctx).await,
                                Protocol::Doh => doh_connection(tcp, ctx).await,
                            }
                        } => {}
                    }
                    counters.closed.fetch_add(1, Ordering::SeqCst);
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

#[derive(Clone)]
struct Acceptors {
    honest: TlsAcceptor,
    rogue: TlsAcceptor,
}

#[derive(Clone)]
struct ConnCtx {
    /// 0-based, in accept order.
    index: usize,
    acceptors: Acceptors,
    answers: Arc<Answers>,
    knobs: Arc<DotKnobs>,
    doh: Arc<DohShared>,
    control: Arc<Control>,
    counters: Arc<Counters>,
}

/// Answers a ClientHello with a plaintext fatal `handshake_failure` alert and closes.
async fn fatal_alert(mut tcp: TcpStream, counters: &Counters) {
    let mut hello = [0u8; 512];
    let _ = tokio::time::timeout(Duration::from_secs(2), tcp.read(&mut hello)).await;
    // TLSPlaintext { type: alert(21), version: 3,3, length: 2, level: fatal(2),
    // description: handshake_failure(40) }.
    let _ = tcp.write_all(&[21, 3, 3, 0, 2, 2, 40]).await;
    let _ = tcp.flush().await;
    counters.alerts_sent.fetch_add(1, Ordering::SeqCst);
    let _ = tcp.shutdown().await;
}

/// TCP accept → (fatal alert | TLS handshake with the honest or rogue certificate).
async fn handshake(tcp: TcpStream, ctx: &ConnCtx) -> Option<SharedIo> {
    let fault = ctx.control.get();
    if fault == Fault::FatalAlert {
        fatal_alert(tcp, &ctx.counters).await;
        return None;
    }
    if fault == Fault::StallHandshake {
        ctx.counters
            .handshakes_stalled
            .fetch_add(1, Ordering::SeqCst);
        // Hold the socket without reading (bounded, so no task outlives a test).
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(tcp);
        return None;
    }
    let rogue = fault == Fault::RogueCert;
    if rogue {
        ctx.counters.rogue_offered.fetch_add(1, Ordering::SeqCst);
    }
    let acceptor = if rogue {
        &ctx.acceptors.rogue
    } else {
        &ctx.acceptors.honest
    };
    match acceptor.accept(tcp).await {
        Ok(tls) => {
            ctx.counters.handshakes.fetch_add(1, Ordering::SeqCst);
            if rogue {
                ctx.counters.rogue_handshakes.fetch_add(1, Ordering::SeqCst);
            }
            Some(SharedIo {
                inner: Arc::new(Mutex::new(tls)),
                counters: Arc::clone(&ctx.counters),
                rogue,
            })
        }
        Err(_) => {
            ctx.counters
                .handshake_failures
                .fetch_add(1, Ordering::SeqCst);
            None
        }
    }
}

// ---------------------------------------------------------------------------------------
// DoT
// ---------------------------------------------------------------------------------------

async fn read_frame(io: &mut SharedIo) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    io.read_exact(&mut len).await.ok()?;
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    io.read_exact(&mut msg).await.ok()?;
    Some(msg)
}

/// Answers are written by the connection loop and by delayed-answer tasks: one frame at a
/// time.
type Writer = Arc<tokio::sync::Mutex<SharedIo>>;

async fn write_frame(writer: &Writer, prefix: u16, body: &[u8]) -> std::io::Result<()> {
    let mut frame = prefix.to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    let mut io = writer.lock().await;
    io.write_all(&frame).await?;
    io.flush().await
}

async fn write_answer(writer: &Writer, response: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(response.len()).unwrap_or(u16::MAX);
    write_frame(writer, len, response).await
}

async fn dot_connection(tcp: TcpStream, ctx: ConnCtx) {
    let Some(io) = handshake(tcp, &ctx).await else {
        return;
    };
    let mut reader = io.clone_handle();
    let writer: Writer = Arc::new(tokio::sync::Mutex::new(io));
    let knobs = &ctx.knobs;
    // Dropped (aborting delayed answers) when the connection ends.
    let mut delayed = JoinSet::new();
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        let read = read_frame(&mut reader);
        let query = match knobs.idle_close {
            Some(idle) => match tokio::time::timeout(idle, read).await {
                Ok(query) => query,
                Err(_) => return,
            },
            None => read.await,
        };
        let Some(query) = query else {
            return;
        };
        ctx.counters.record_query(&query);
        if ctx.index < knobs.close_first_connections {
            return;
        }
        let Some(mut response) = ctx.answers.respond(&query) else {
            continue;
        };
        let len = u16::try_from(response.len()).unwrap_or(u16::MAX);
        match ctx.control.get() {
            // Dropping the stream closes TCP without close_notify.
            Fault::Kill => return,
            Fault::Reset => {
                reader.reset();
                return;
            }
            Fault::CloseNotify => {
                let _ = writer.lock().await.shutdown().await;
                return;
            }
            Fault::Stall => {}
            Fault::WrongId => {
                if let Some(id) = response.get_mut(..2) {
                    id[0] ^= 0x5A;
                    id[1] ^= 0x5A;
                }
                if write_frame(&writer, len, &response).await.is_err() {
                    return;
                }
            }
            Fault::Truncated => {
                let half = response.get(..response.len() / 2).unwrap_or_default();
                let _ = write_frame(&writer, len, half).await;
                return;
            }
            Fault::Oversized => {
                if write_frame(&writer, u16::MAX, &[0xFF; 65_535])
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Fault::Honest
            | Fault::FatalAlert
            | Fault::StallHandshake
            | Fault::RogueCert
            | Fault::GoAway
            | Fault::RstStream => {
                if knobs.decoys {
                    for decoy in super::answers::decoys(&query) {
                        if write_answer(&writer, &decoy).await.is_err() {
                            return;
                        }
                        ctx.counters.decoys_sent.fetch_add(1, Ordering::SeqCst);
                    }
                }
                // Counted before the write: the client may read the answer before this
                // task runs again, and tests compare the count right after an answer.
                ctx.counters.answered.fetch_add(1, Ordering::SeqCst);
                if knobs.reverse_batch > 1 {
                    held.push(response);
                    if held.len() == knobs.reverse_batch {
                        for r in held.drain(..).rev() {
                            if write_answer(&writer, &r).await.is_err() {
                                return;
                            }
                        }
                    }
                } else if !knobs.delay.is_zero() {
                    let writer = Arc::clone(&writer);
                    let delay = knobs.delay;
                    delayed.spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ = write_answer(&writer, &response).await;
                    });
                } else if write_answer(&writer, &response).await.is_err() {
                    return;
                }
            }
        }
        while delayed.try_join_next().is_some() {}
    }
}

// ---------------------------------------------------------------------------------------
// DoH
// ---------------------------------------------------------------------------------------

type ServerBody = BoxBody<Bytes, Infallible>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

const DNS_MESSAGE: &str = "application/dns-message";

/// Server-wide DoH state.
#[derive(Debug)]
struct DohShared {
    knobs: DohKnobs,
    release: Notify,
    hold_arrived: Notify,
    barrier: Option<tokio::sync::Barrier>,
    /// Requests seen by the REFUSED_STREAM knob.
    refused: AtomicUsize,
}

/// What a request handler asks its connection to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnCommand {
    /// Drop the connection (TCP FIN, no close_notify, no GOAWAY).
    Kill,
    /// Drop the connection with a TCP reset.
    Reset,
    /// Send close_notify, then drop the connection.
    CloseNotify,
    /// GOAWAY, then drop the connection shortly after ([`Fault::GoAway`]).
    GoAway,
    /// GOAWAY, and let the open streams finish ([`DohKnobs::goaway_after`]).
    Graceful,
    /// Stop polling the connection, socket left open.
    Freeze,
}

struct RequestCtx {
    index: usize,
    /// Requests on this connection.
    requests: AtomicUsize,
    answers: Arc<Answers>,
    doh: Arc<DohShared>,
    control: Arc<Control>,
    counters: Arc<Counters>,
    commands: mpsc::UnboundedSender<ConnCommand>,
    /// Changes (errors) when the connection task ends.
    closed: watch::Receiver<()>,
    /// Set once this connection sent GOAWAY.
    goaway_sent: watch::Sender<bool>,
}

impl RequestCtx {
    /// Waits until the connection is gone (bounded, so no handler outlives a test).
    async fn until_closed(&self) {
        let mut closed = self.closed.clone();
        let _ = tokio::time::timeout(Duration::from_secs(30), closed.changed()).await;
    }

    fn command(&self, command: ConnCommand) {
        let _ = self.commands.send(command);
    }
}

async fn doh_connection(tcp: TcpStream, ctx: ConnCtx) {
    let Some(mut io) = handshake(tcp, &ctx).await else {
        return;
    };
    let is_h2 = io.lock().get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
    if !is_h2 {
        // Not HTTP/2: just count whatever the client sends until it goes away.
        let mut sink = Vec::new();
        let _ = io.read_to_end(&mut sink).await;
        return;
    }
    let shared = io.clone_handle();
    let (commands, mut command_rx) = mpsc::unbounded_channel();
    let (_closed_tx, closed) = watch::channel(());
    let request_ctx = Arc::new(RequestCtx {
        index: ctx.index,
        requests: AtomicUsize::new(0),
        answers: Arc::clone(&ctx.answers),
        doh: Arc::clone(&ctx.doh),
        control: Arc::clone(&ctx.control),
        counters: Arc::clone(&ctx.counters),
        commands,
        closed,
        goaway_sent: watch::Sender::new(false),
    });
    let goaway_sent = request_ctx.goaway_sent.clone();
    let service = service_fn(move |req| doh_request(req, Arc::clone(&request_ctx)));
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    if ctx.index == 0 {
        if let Some(max) = ctx.doh.knobs.first_max_streams {
            builder.max_concurrent_streams(max);
        }
    }
    let mut connection = Box::pin(builder.serve_connection(TokioIo::new(io), service));
    let mut goaway_close: Option<tokio::time::Instant> = None;
    let end = loop {
        tokio::select! {
            _ = connection.as_mut() => break None,
            Some(command) = command_rx.recv() => match command {
                ConnCommand::GoAway | ConnCommand::Graceful => {
                    if !*goaway_sent.borrow() {
                        connection.as_mut().graceful_shutdown();
                        goaway_sent.send_replace(true);
                    }
                    if command == ConnCommand::GoAway && goaway_close.is_none() {
                        goaway_close = Some(tokio::time::Instant::now() + GOAWAY_LINGER);
                    }
                }
                // Keep the socket open but never poll the connection again.
                ConnCommand::Freeze => std::future::pending::<()>().await,
                other => break Some(other),
            },
            _ = async {
                match goaway_close {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => break Some(ConnCommand::Kill),
        }
    };
    // Drop hyper's connection; `shared` is then the only handle on the TLS stream.
    drop(connection);
    match end {
        Some(ConnCommand::Reset) => shared.reset(),
        Some(ConnCommand::CloseNotify) => {
            let mut io = shared;
            let _ = io.shutdown().await;
        }
        _ => {}
    }
}

/// The DNS query of a POST body or a GET `dns` parameter on `/dns-query`.
async fn read_query(req: Request<Incoming>, counters: &Counters) -> Option<Vec<u8>> {
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
            Some(body.to_bytes().to_vec())
        }
        Method::GET => {
            counters.gets.fetch_add(1, Ordering::SeqCst);
            let query = req.uri().query()?;
            let b64 = query.split('&').find_map(|kv| kv.strip_prefix("dns="))?;
            URL_SAFE_NO_PAD.decode(b64).ok()
        }
        _ => None,
    }
}

/// What [`DohKnobs::trigger_names`] does for `name`, or `None` to answer normally.
async fn triggered(
    name: &str,
    query: &Message,
    wire: &[u8],
    ctx: &RequestCtx,
) -> Option<Result<Response<ServerBody>, BoxError>> {
    let full = |body: Bytes| BoxBody::new(Full::new(body));
    let answer = |wire: &[u8], ctype: &'static str| match ctx.answers.respond(wire) {
        Some(r) => Ok(typed_response(full(Bytes::from(r)), ctype)),
        None => Ok(status(StatusCode::BAD_REQUEST)),
    };
    Some(match name {
        "reset.test." => Err("reset requested".into()),
        "e500.test." => Ok(status(StatusCode::INTERNAL_SERVER_ERROR)),
        "ctype.test." => answer(wire, "text/plain"),
        "big.test." => Ok(dns_response(full(Bytes::from(vec![0u8; BIG_BODY])))),
        "bigstream.test." => Ok(dns_response(BoxBody::new(Chunked {
            remaining: BIG_BODY,
        }))),
        "wrongq.test." => {
            let mut other = query.clone();
            let other_name = Name::from_ascii("other.test.").unwrap_or_else(|_| Name::root());
            other.queries = vec![Query::query(other_name, RecordType::A)];
            match other.to_vec() {
                Ok(other) => answer(&other, DNS_MESSAGE),
                Err(_) => Ok(status(StatusCode::BAD_REQUEST)),
            }
        }
        "hold.test." => {
            ctx.doh.hold_arrived.notify_one();
            ctx.doh.release.notified().await;
            answer(wire, DNS_MESSAGE)
        }
        _ => return None,
    })
}

async fn doh_request(
    req: Request<Incoming>,
    ctx: Arc<RequestCtx>,
) -> Result<Response<ServerBody>, BoxError> {
    let counters = &ctx.counters;
    let knobs = &ctx.doh.knobs;
    counters.requests.fetch_add(1, Ordering::SeqCst);
    let on_conn = ctx.requests.fetch_add(1, Ordering::SeqCst) + 1;
    if ctx.index == 0 {
        counters.requests_on_first.fetch_add(1, Ordering::SeqCst);
        if knobs.goaway_after == Some(on_conn) {
            ctx.command(ConnCommand::Graceful);
        }
        if knobs.freeze_first_connection || knobs.kill_first_connection {
            ctx.command(if knobs.freeze_first_connection {
                ConnCommand::Freeze
            } else {
                ConnCommand::Kill
            });
            // Never answer: the connection is going down (or frozen).
            ctx.until_closed().await;
            return Err("connection closed by a knob".into());
        }
    }
    if ctx.doh.refused.fetch_add(1, Ordering::SeqCst) < knobs.refuse_first {
        return Err(Box::new(h2::Error::from(h2::Reason::REFUSED_STREAM)));
    }
    let Some(wire) = read_query(req, counters).await else {
        counters.malformed.fetch_add(1, Ordering::SeqCst);
        return Ok(status(StatusCode::BAD_REQUEST));
    };
    counters.record_query(&wire);
    let Ok(query) = Message::from_vec(&wire) else {
        counters.malformed.fetch_add(1, Ordering::SeqCst);
        return Ok(status(StatusCode::BAD_REQUEST));
    };
    if query.metadata.id != 0 {
        counters.nonzero_ids.fetch_add(1, Ordering::SeqCst);
        return Ok(status(StatusCode::BAD_REQUEST));
    }
    if ctx.index == 0 && knobs.hold_first_until_goaway {
        let mut sent = ctx.goaway_sent.subscribe();
        let _ = sent.wait_for(|sent| *sent).await;
    }
    if let Some(barrier) = &ctx.doh.barrier {
        barrier.wait().await;
    }
    if let Some(delay) = knobs.answer_delay {
        tokio::time::sleep(delay).await;
    }
    if knobs.trigger_names {
        let name = query
            .queries
            .first()
            .map(|q| q.name().to_ascii().to_ascii_lowercase())
            .unwrap_or_default();
        if let Some(result) = triggered(&name, &query, &wire, &ctx).await {
            return result;
        }
    }
    let Some(mut response) = ctx.answers.respond(&wire) else {
        return Ok(status(StatusCode::BAD_REQUEST));
    };
    match ctx.control.get() {
        Fault::Kill => ctx.command(ConnCommand::Kill),
        Fault::Reset => ctx.command(ConnCommand::Reset),
        Fault::CloseNotify => ctx.command(ConnCommand::CloseNotify),
        Fault::GoAway => ctx.command(ConnCommand::GoAway),
        Fault::Stall => {}
        Fault::RstStream => {
            return Err(Box::new(h2::Error::from(h2::Reason::INTERNAL_ERROR)));
        }
        Fault::WrongId => {
            if let Some(id) = response.get_mut(..2) {
                id.copy_from_slice(&[0x5A, 0x5A]);
            }
            return Ok(dns_response(BoxBody::new(Full::new(Bytes::from(response)))));
        }
        Fault::Truncated => {
            let full = response.len();
            let half = Bytes::from(response).slice(..full / 2);
            let body = TruncatedBody {
                first: Some(half),
                commands: ctx.commands.clone(),
            };
            let mut r = dns_response(BoxBody::new(body));
            r.headers_mut()
                .insert(http::header::CONTENT_LENGTH, full.into());
            return Ok(r);
        }
        Fault::Oversized => {
            let garbage = Bytes::from(vec![0xFF; 65_535]);
            return Ok(dns_response(BoxBody::new(Full::new(garbage))));
        }
        Fault::Honest | Fault::FatalAlert | Fault::StallHandshake | Fault::RogueCert => {
            counters.answered.fetch_add(1, Ordering::SeqCst);
            return Ok(dns_response(BoxBody::new(Full::new(Bytes::from(response)))));
        }
    }
    // Kill, Reset, CloseNotify, GoAway, Stall: never answer.
    ctx.until_closed().await;
    Err("connection closed by the fault".into())
}

fn typed_response(body: ServerBody, content_type: &'static str) -> Response<ServerBody> {
    let mut r = Response::new(body);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    r
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

fn dns_response(body: ServerBody) -> Response<ServerBody> {
    typed_response(body, DNS_MESSAGE)
}

fn status(code: StatusCode) -> Response<ServerBody> {
    let mut r = Response::new(BoxBody::new(Full::new(Bytes::new())));
    *r.status_mut() = code;
    r
}

/// Half a body, then the connection is killed (the rest never comes).
struct TruncatedBody {
    first: Option<Bytes>,
    commands: mpsc::UnboundedSender<ConnCommand>,
}

impl Body for TruncatedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        // The half is handed to hyper; kill the connection once it had a moment to send it.
        let commands = self.commands.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = commands.send(ConnCommand::Kill);
        });
        // Never woken: the connection (and this body) is dropped.
        Poll::Pending
    }
}

// ---------------------------------------------------------------------------------------
// Shared, counting TLS stream
// ---------------------------------------------------------------------------------------

/// A TLS stream shared between hyper (or the DoT loop) and the fault logic, counting the
/// plaintext bytes read.
struct SharedIo {
    inner: Arc<Mutex<TlsStream<TcpStream>>>,
    counters: Arc<Counters>,
    rogue: bool,
}

impl SharedIo {
    fn lock(&self) -> MutexGuard<'_, TlsStream<TcpStream>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn clone_handle(&self) -> SharedIo {
        SharedIo {
            inner: Arc::clone(&self.inner),
            counters: Arc::clone(&self.counters),
            rogue: self.rogue,
        }
    }

    /// Makes the close a TCP reset (SO_LINGER 0); the caller then drops the stream.
    fn reset(&self) {
        let _ = self.lock().get_ref().0.set_zero_linger();
    }
}

impl AsyncRead for SharedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = {
            let mut tls = self.lock();
            Pin::new(&mut *tls).poll_read(cx, buf)
        };
        if let Poll::Ready(Ok(())) = result {
            let n = (buf.filled().len() - before) as u64;
            self.counters.app_bytes.fetch_add(n, Ordering::SeqCst);
            if self.rogue {
                self.counters.rogue_app_bytes.fetch_add(n, Ordering::SeqCst);
            }
        }
        result
    }
}

impl AsyncWrite for SharedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut tls = self.lock();
        Pin::new(&mut *tls).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let mut tls = self.lock();
        Pin::new(&mut *tls).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let mut tls = self.lock();
        Pin::new(&mut *tls).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::answers::tests::query;
    use crate::testkit::AnswerTable;
    use hickory_proto::op::Message;
    use hickory_proto::rr::RecordType;
    use rustls::pki_types::ServerName;
    use tokio_rustls::TlsConnector;

    fn table() -> Answers {
        let mut t = AnswerTable::new();
        t.insert("bank.example.", "192.0.2.80".parse().unwrap())
            .unwrap();
        Answers::Table(t)
    }

    #[tokio::test]
    async fn serves_dot_and_counts_bytes_then_shuts_down() {
        let (pki, leaf) = crate::pki::demo_pki("127.0.0.1".parse().unwrap()).unwrap();
        let server = TestServer::builder(Protocol::Dot, ServerCert::from_leaf(&leaf))
            .answers(table())
            .start()
            .await
            .unwrap();
        let addr = server.addr();
        assert_ne!(addr.port(), 0);
        assert_eq!(server.protocol(), Protocol::Dot);

        let provider = crate::provider::default_provider();
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(pki.root_store(false).unwrap())
            .with_no_client_auth();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut tls = TlsConnector::from(Arc::new(client))
            .connect(ServerName::IpAddress(addr.ip().into()), tcp)
            .await
            .unwrap();
        let q = query("bank.example.", RecordType::A, 42);
        let mut frame = (q.len() as u16).to_be_bytes().to_vec();
        frame.extend_from_slice(&q);
        // A frame split across two writes is reassembled.
        let (first, second) = frame.split_at(3);
        tls.write_all(first).await.unwrap();
        tls.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        tls.write_all(second).await.unwrap();
        let mut len = [0u8; 2];
        tls.read_exact(&mut len).await.unwrap();
        let mut resp = vec![0u8; usize::from(u16::from_be_bytes(len))];
        tls.read_exact(&mut resp).await.unwrap();
        let r = Message::from_vec(&resp).unwrap();
        assert_eq!(r.metadata.id, 42);
        assert_eq!(r.answers.len(), 1);

        let stats = server.stats();
        assert_eq!(stats.tcp_accepted, 1);
        assert_eq!(stats.handshakes, 1);
        assert_eq!(stats.handshake_failures, 0);
        assert_eq!(stats.app_bytes, frame.len() as u64);
        assert_eq!(stats.rogue_app_bytes, 0);
        assert_eq!(stats.queries, 1);
        assert_eq!(stats.answered, 1);

        server.shutdown().await;
        // The connection was closed by the server: the next read sees EOF or an error.
        let mut buf = [0u8; 1];
        let closed = matches!(tls.read(&mut buf).await, Ok(0) | Err(_));
        assert!(closed);
        assert!(TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    async fn a_key_that_does_not_match_the_leaf_is_refused() {
        let (pki, leaf) = crate::pki::demo_pki("127.0.0.1".parse().unwrap()).unwrap();
        let other = pki
            .issue_leaf(&pki.leaf_spec("127.0.0.1".parse().unwrap()))
            .unwrap();
        let err = TestServer::builder(
            Protocol::Dot,
            ServerCert::new(leaf.chain.clone(), other.key_der()),
        )
        .start()
        .await
        .unwrap_err();
        assert!(matches!(err, ServerError::Tls(_)));
        // The rogue chain is checked too.
        let err = TestServer::builder(Protocol::Doh, ServerCert::from_leaf(&leaf))
            .rogue(ServerCert::new(other.chain.clone(), leaf.key_der()))
            .start()
            .await
            .unwrap_err();
        assert!(matches!(err, ServerError::Tls(_)));
    }
}
