//! Faulty upstream resolvers for fault-injection tests, and the client-side trust the real
//! ctdns verifier is built from.
//!
//! Two servers on 127.0.0.1, port 0: a DNS-over-TLS server (tokio-rustls, RFC 7858 framing)
//! and a DNS-over-HTTPS server (tokio-rustls + hyper HTTP/2, RFC 8484 POST). Both answer every
//! `A` query with [`expected_ip`] of the name (names starting with `big` get
//! [`BIG_ANSWER_RECORDS`] records, names starting with `mid` [`MID_ANSWER_RECORDS`]), and both misbehave as the current [`Fault`] says; the
//! fault can be switched at any time with `set`. Faults that act on a query are read when the
//! query arrives, so switching back to [`Fault::Honest`] heals live connections too; faults
//! that act on the handshake ([`Fault::FatalAlert`], [`Fault::StallHandshake`],
//! [`Fault::RogueCert`]) apply to connections accepted while they are set;
//! [`FaultyServer::drop_connections`] closes the established ones, so that the client has to
//! reconnect into the fault (a certificate that changes between connections).
//!
//! Each server counts TCP connections, completed TLS handshakes, and the application bytes
//! it received after a handshake, separately for connections that were offered the rogue
//! certificate. Dropping a server stops it and every connection it holds.
//!
//! [`FaultPki`] is the test PKI seen from both sides: the honest and the rogue leaf for
//! 127.0.0.1 (each CT-logged by two logs of distinct operators), and client configurations
//! around the real [`CtVerifier`] trusting both roots, enforcing the Chrome CT policy over
//! the PKI's log list, and pinning the honest intermediate, so only the pin refuses the rogue
//! certificate.

#![allow(dead_code)]

pub mod client;

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use ctdns::ct::checker::CtChecker;
use ctdns::ct::log_list::LogList;
use ctdns::ct::policy::CtPolicy;
use ctdns::pki::{default_logs, IssuedLeaf, LeafIssuer, PkiOptions, SctSpec, TestPki};
use ctdns::tls::pins::SpkiPin;
use ctdns::tls::verifier::{RefusalEvent, RefusalObserver};
use ctdns::tls::{client_config, CtVerifier};
use ctdns::upstream::doh::{DohEndpoint, DohOptions, DohTransport};
use ctdns::upstream::dot::{DotOptions, DotTransport};
use ctdns::upstream::Transport;
use hickory_proto::op::{Edns, Message, MessageType, OpCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// 127.0.0.1, where every server listens and every leaf is issued for.
pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// How many A records a `big*` name gets (16 bytes each with compression: ~4.8 kB).
pub const BIG_ANSWER_RECORDS: usize = 300;

/// How many A records a `mid*` name gets: an answer above the 1,232-byte UDP cap for remote
/// clients and below the stub's 4,096-byte UDP maximum.
pub const MID_ANSWER_RECORDS: usize = 100;

/// How long the DoH server keeps a connection after sending GOAWAY for [`Fault::GoAway`].
const GOAWAY_LINGER: Duration = Duration::from_millis(100);

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
    /// New connections get the rogue leaf: a valid chain from the PKI's rogue CA, CT-logged
    /// by two operators, that only the issuer pin refuses.
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
}

impl Counters {
    /// Reads a counter.
    pub fn get(c: &AtomicUsize) -> usize {
        c.load(Ordering::SeqCst)
    }

    /// Reads a byte counter.
    pub fn bytes(c: &AtomicU64) -> u64 {
        c.load(Ordering::SeqCst)
    }
}

/// Records every refusal the verifier reports: (verifier label, rule, message).
#[derive(Debug, Default)]
pub struct RefusalLog {
    entries: Mutex<Vec<(String, &'static str, String)>>,
}

impl RefusalLog {
    /// Everything recorded so far.
    pub fn entries(&self) -> Vec<(String, &'static str, String)> {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl RefusalObserver for RefusalLog {
    fn refused(&self, event: &RefusalEvent<'_>) {
        if let Some(refusal) = &event.decision.refusal {
            self.entries
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((event.label.to_owned(), refusal.rule(), refusal.to_string()));
        }
    }
}

/// The test PKI from both sides.
pub struct FaultPki {
    /// The generated PKI.
    pub pki: TestPki,
    /// Leaf for 127.0.0.1 from the honest intermediate, SCTs from Alpha and Beta.
    pub honest: IssuedLeaf,
    /// Leaf for 127.0.0.1 from the rogue intermediate, SCTs from Alpha and Beta.
    pub rogue: IssuedLeaf,
    log_list: Arc<LogList>,
    roots: Arc<Vec<rustls::pki_types::TrustAnchor<'static>>>,
    pins: Vec<SpkiPin>,
}

impl FaultPki {
    /// Generates the PKI and both leaves.
    pub fn generate() -> Self {
        let pki = TestPki::generate(&PkiOptions::default()).expect("test PKI");
        let ts = pki.now() - time::Duration::minutes(5);
        let leaf = |issuer: LeafIssuer| {
            let spec = pki
                .leaf_spec(LOCALHOST)
                .issued_by(issuer)
                .embed(SctSpec::at(default_logs::ALPHA, ts))
                .embed(SctSpec::at(default_logs::BETA, ts));
            pki.issue_leaf(&spec).expect("leaf")
        };
        let honest = leaf(LeafIssuer::Intermediate);
        let rogue = leaf(LeafIssuer::RogueIntermediate);
        let json = pki.log_list_json(pki.now()).expect("log list JSON");
        let log_list = Arc::new(LogList::from_json(json.as_bytes()).expect("log list parses"));
        // Both roots are trusted: only the issuer pin tells the rogue chain apart.
        let roots = ctdns::tls::roots::anchors_from_der(&pki.trust_anchors(), "test PKI")
            .expect("trust anchors");
        let pins = vec![SpkiPin::of_spki(pki.intermediate().spki_der())];
        FaultPki {
            pki,
            honest,
            rogue,
            log_list,
            roots: Arc::new(roots),
            pins,
        }
    }

    /// The real verifier for one upstream: both roots, Chrome CT policy over the PKI's log
    /// list, the honest intermediate pinned, refusals reported to `refusals`.
    pub fn verifier(&self, label: &str, refusals: Arc<RefusalLog>) -> CtVerifier {
        let checker = CtChecker::new(Arc::clone(&self.log_list), CtPolicy::chrome());
        CtVerifier::new(Arc::clone(&self.roots), checker)
            .with_pins(self.pins.clone())
            .with_label(label)
            .with_observer(refusals)
    }

    /// A client configuration around [`FaultPki::verifier`].
    pub fn client_config(
        &self,
        label: &str,
        alpn: &[&[u8]],
        refusals: Arc<RefusalLog>,
    ) -> Arc<rustls::ClientConfig> {
        client_config(Arc::new(self.verifier(label, refusals)), alpn).expect("client config")
    }

    fn acceptor(&self, rogue: bool, alpn: &[&[u8]]) -> TlsAcceptor {
        let leaf = if rogue { &self.rogue } else { &self.honest };
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(leaf.chain.clone(), leaf.key_der())
        .expect("server certificate");
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsAcceptor::from(Arc::new(config))
    }
}

/// The address a name resolves to: an FNV-1a hash of the lower-case name (without the
/// trailing dot) in 198.18.0.0/15.
pub fn expected_ip(name: &str) -> Ipv4Addr {
    let norm = name.trim_end_matches('.').to_ascii_lowercase();
    let mut h: u32 = 0x811c_9dc5;
    for b in norm.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let [_, b1, b2, b3] = h.to_be_bytes();
    Ipv4Addr::new(198, 18 + (b1 & 1), b2, b3)
}

/// The address of record `i` of a `big*` name.
pub fn big_ip(i: usize) -> Ipv4Addr {
    let [.., hi, lo] = (i as u32).to_be_bytes();
    Ipv4Addr::new(198, 19, hi, lo)
}

/// The correct response to `query`, or `None` if it is not a DNS query.
pub fn answer(query: &[u8]) -> Option<Vec<u8>> {
    let q = Message::from_vec(query).ok()?;
    if q.metadata.message_type != MessageType::Query {
        return None;
    }
    let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    r.metadata.recursion_available = true;
    r.add_queries(q.queries.clone());
    if q.edns.is_some() {
        let mut e = Edns::new();
        e.set_max_payload(4096);
        r.set_edns(e);
    }
    for question in &q.queries {
        if question.query_type() != RecordType::A {
            continue;
        }
        let name = question.name().to_ascii();
        let lower = name.to_ascii_lowercase();
        let many = if lower.starts_with("big") {
            Some(BIG_ANSWER_RECORDS)
        } else if lower.starts_with("mid") {
            Some(MID_ANSWER_RECORDS)
        } else {
            None
        };
        if let Some(records) = many {
            for i in 0..records {
                r.add_answer(Record::from_rdata(
                    question.name().clone(),
                    300,
                    RData::A(A(big_ip(i))),
                ));
            }
        } else {
            r.add_answer(Record::from_rdata(
                question.name().clone(),
                300,
                RData::A(A(expected_ip(&name))),
            ));
        }
    }
    r.to_vec().ok()
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

    /// Completes when [`FaultyServer::drop_connections`] is called.
    async fn kicked(mut kick: watch::Receiver<u64>) {
        let _ = kick.changed().await;
    }
}

/// Which protocol a faulty server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// DNS over TLS.
    Dot,
    /// DNS over HTTPS (HTTP/2).
    Doh,
}

impl Kind {
    /// Short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Dot => "DoT",
            Kind::Doh => "DoH",
        }
    }

    /// The faults that apply to this protocol.
    pub fn faults(self) -> &'static [Fault] {
        match self {
            Kind::Dot => Fault::DOT,
            Kind::Doh => Fault::DOH,
        }
    }
}

/// Timeouts of the client transports built by [`FaultyServer::transport`].
#[derive(Debug, Clone, Copy)]
pub struct ClientTimeouts {
    /// TCP connect plus TLS handshake (plus HTTP/2 start for DoH).
    pub connect: Duration,
    /// One query, connect included.
    pub query: Duration,
    /// DoT: a query abandoned after this long with nothing received marks the connection
    /// stalled.
    pub stall: Duration,
}

/// A running faulty server (DoT or DoH). Stopped on drop.
pub struct FaultyServer {
    /// The protocol.
    pub kind: Kind,
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it counted.
    pub counters: Arc<Counters>,
    control: Arc<Control>,
    task: JoinHandle<()>,
}

impl Drop for FaultyServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultyServer {
    /// Starts a `kind` server on 127.0.0.1:0 misbehaving as `fault` says.
    pub async fn start(kind: Kind, pki: &FaultPki, fault: Fault) -> Self {
        let alpn: &[&[u8]] = match kind {
            Kind::Dot => &[],
            Kind::Doh => &[b"h2"],
        };
        let acceptors = Acceptors {
            honest: pki.acceptor(false, alpn),
            rogue: pki.acceptor(true, alpn),
        };
        let listener = TcpListener::bind((LOCALHOST, 0)).await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let counters = Arc::new(Counters::default());
        let control = Arc::new(Control {
            fault: Mutex::new(fault),
            kick: watch::Sender::new(0),
        });
        let task = {
            let counters = Arc::clone(&counters);
            let control = Arc::clone(&control);
            tokio::spawn(async move {
                // Dropped (aborting every connection) when this task is aborted.
                let mut connections = JoinSet::new();
                loop {
                    tokio::select! {
                        accepted = listener.accept() => {
                            let Ok((tcp, _)) = accepted else { continue };
                            counters.tcp_accepted.fetch_add(1, Ordering::SeqCst);
                            let ctx = ConnCtx {
                                acceptors: acceptors.clone(),
                                control: Arc::clone(&control),
                                counters: Arc::clone(&counters),
                            };
                            let kicked = Control::kicked(control.kick.subscribe());
                            connections.spawn(async move {
                                // A kick drops the connection future, and with it the socket.
                                tokio::select! {
                                    _ = kicked => {}
                                    _ = async {
                                        match kind {
                                            Kind::Dot => dot_connection(tcp, ctx).await,
                                            Kind::Doh => doh_connection(tcp, ctx).await,
                                        }
                                    } => {}
                                }
                            });
                        }
                        Some(_) = connections.join_next(), if !connections.is_empty() => {}
                    }
                }
            })
        };
        FaultyServer {
            kind,
            addr,
            counters,
            control,
            task,
        }
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

    /// A ctdns transport to this server with the real CT verifier of `pki`.
    pub fn transport(
        &self,
        pki: &FaultPki,
        refusals: Arc<RefusalLog>,
        timeouts: ClientTimeouts,
    ) -> Arc<dyn Transport> {
        match self.kind {
            Kind::Dot => {
                let label = format!("dot://{}", self.addr);
                let tls = pki.client_config(&label, &[], refusals);
                Arc::new(DotTransport::new(
                    self.addr,
                    tls,
                    DotOptions {
                        connect_timeout: timeouts.connect,
                        query_timeout: timeouts.query,
                        stall_timeout: timeouts.stall,
                        ..DotOptions::default()
                    },
                ))
            }
            Kind::Doh => {
                let endpoint = DohEndpoint::ip(self.addr, "/dns-query");
                let label = format!("https://{}/dns-query", self.addr);
                let tls = pki.client_config(&label, &[b"h2"], refusals);
                Arc::new(DohTransport::new(
                    endpoint,
                    tls,
                    DohOptions {
                        connect_timeout: timeouts.connect,
                        query_timeout: timeouts.query,
                        ..DohOptions::default()
                    },
                ))
            }
        }
    }
}

#[derive(Clone)]
struct Acceptors {
    honest: TlsAcceptor,
    rogue: TlsAcceptor,
}

struct ConnCtx {
    acceptors: Acceptors,
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

async fn write_frame(io: &mut SharedIo, prefix: u16, body: &[u8]) -> std::io::Result<()> {
    let mut frame = prefix.to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    io.write_all(&frame).await?;
    io.flush().await
}

async fn dot_connection(tcp: TcpStream, ctx: ConnCtx) {
    let Some(mut io) = handshake(tcp, &ctx).await else {
        return;
    };
    loop {
        let Some(query) = read_frame(&mut io).await else {
            return;
        };
        ctx.counters.queries.fetch_add(1, Ordering::SeqCst);
        let Some(mut response) = answer(&query) else {
            continue;
        };
        let len = u16::try_from(response.len()).unwrap_or(u16::MAX);
        match ctx.control.get() {
            // Dropping the stream closes TCP without close_notify.
            Fault::Kill => return,
            Fault::Reset => {
                io.reset();
                return;
            }
            Fault::CloseNotify => {
                let _ = io.shutdown().await;
                return;
            }
            Fault::Stall => {}
            Fault::WrongId => {
                if let Some(id) = response.get_mut(..2) {
                    id[0] ^= 0x5A;
                    id[1] ^= 0x5A;
                }
                if write_frame(&mut io, len, &response).await.is_err() {
                    return;
                }
            }
            Fault::Truncated => {
                let half = response.get(..response.len() / 2).unwrap_or_default();
                let _ = write_frame(&mut io, len, half).await;
                return;
            }
            Fault::Oversized => {
                if write_frame(&mut io, u16::MAX, &[0xFF; 65_535])
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
                // Counted before the write: the client may read the answer before this
                // task runs again, and tests compare the count right after an answer.
                ctx.counters.answered.fetch_add(1, Ordering::SeqCst);
                if write_frame(&mut io, len, &response).await.is_err() {
                    return;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// DoH
// ---------------------------------------------------------------------------------------

type ServerBody = BoxBody<Bytes, Infallible>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a request handler asks its connection to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnCommand {
    Kill,
    Reset,
    CloseNotify,
    GoAway,
}

struct RequestCtx {
    control: Arc<Control>,
    counters: Arc<Counters>,
    commands: mpsc::UnboundedSender<ConnCommand>,
    /// Changes (errors) when the connection task ends.
    closed: watch::Receiver<()>,
}

impl RequestCtx {
    /// Waits until the connection is gone (bounded, so no handler outlives a test).
    async fn until_closed(&self) {
        let mut closed = self.closed.clone();
        let _ = tokio::time::timeout(Duration::from_secs(30), closed.changed()).await;
    }
}

async fn doh_connection(tcp: TcpStream, ctx: ConnCtx) {
    let Some(io) = handshake(tcp, &ctx).await else {
        return;
    };
    let shared = io.clone_handle();
    let (commands, mut command_rx) = mpsc::unbounded_channel();
    let (_closed_tx, closed) = watch::channel(());
    let request_ctx = Arc::new(RequestCtx {
        control: Arc::clone(&ctx.control),
        counters: Arc::clone(&ctx.counters),
        commands,
        closed,
    });
    let service = service_fn(move |req| doh_request(req, Arc::clone(&request_ctx)));
    let mut connection = Box::pin(
        hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(io), service),
    );
    let mut goaway_close: Option<tokio::time::Instant> = None;
    let end = loop {
        tokio::select! {
            _ = connection.as_mut() => break None,
            Some(command) = command_rx.recv() => match command {
                ConnCommand::GoAway => {
                    if goaway_close.is_none() {
                        connection.as_mut().graceful_shutdown();
                        goaway_close = Some(tokio::time::Instant::now() + GOAWAY_LINGER);
                    }
                }
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

async fn doh_request(
    req: Request<Incoming>,
    ctx: Arc<RequestCtx>,
) -> Result<Response<ServerBody>, BoxError> {
    let body = Limited::new(req.into_body(), 65_535)
        .collect()
        .await
        .map_err(|e| -> BoxError { format!("request body: {e}").into() })?
        .to_bytes();
    ctx.counters.queries.fetch_add(1, Ordering::SeqCst);
    let Some(mut response) = answer(&body) else {
        return Ok(status(StatusCode::BAD_REQUEST));
    };
    let command = |c: ConnCommand| {
        let _ = ctx.commands.send(c);
    };
    match ctx.control.get() {
        Fault::Kill => command(ConnCommand::Kill),
        Fault::Reset => command(ConnCommand::Reset),
        Fault::CloseNotify => command(ConnCommand::CloseNotify),
        Fault::GoAway => command(ConnCommand::GoAway),
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
            ctx.counters.answered.fetch_add(1, Ordering::SeqCst);
            return Ok(dns_response(BoxBody::new(Full::new(Bytes::from(response)))));
        }
    }
    // Kill, Reset, CloseNotify, GoAway, Stall: never answer.
    ctx.until_closed().await;
    Err("connection closed by the fault".into())
}

fn dns_response(body: ServerBody) -> Response<ServerBody> {
    let mut r = Response::new(body);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/dns-message"),
    );
    r
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

/// Waits (bounded) until `check` holds, polling every 10 ms; whether it did.
pub async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
