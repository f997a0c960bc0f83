//! DNS-over-TLS transport and pool against an in-process DoT server on loopback.
//!
//! The server is real TLS (tokio-rustls, certificates made with rcgen for IP 127.0.0.1) and
//! real DNS (hickory-proto parses queries and builds answers from a small table). It counts
//! every application byte it receives after the handshake and can delay, reorder, stall,
//! close mid-flight, close idle connections, and send decoy responses.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ctdns::upstream::dot::{DotOptions, DotTransport};
use ctdns::upstream::pool::{Pool, PoolOptions};
use ctdns::upstream::{Transport, UpstreamError};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::EdnsCode;
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

// ---------------------------------------------------------------------------------------
// Test PKI
// ---------------------------------------------------------------------------------------

/// A CA and a server certificate it issued for IP 127.0.0.1.
struct Pki {
    root: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key_pkcs8: Vec<u8>,
}

fn make_pki(ca_name: &str) -> Result<Pki, rcgen::Error> {
    make_pki_for(ca_name, &["127.0.0.1"])
}

/// A CA and a server certificate for `sans` (IP addresses or DNS names).
fn make_pki_for(ca_name: &str, sans: &[&str]) -> Result<Pki, rcgen::Error> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

    let leaf_key = KeyPair::generate()?;
    let mut leaf_params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "ctdns test resolver");
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = leaf_params.signed_by(&leaf_key, &ca)?;
    Ok(Pki {
        root: ca.der().clone(),
        chain: vec![leaf.der().clone(), ca.der().clone()],
        key_pkcs8: leaf_key.serialize_der(),
    })
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// What the real CT verifier module will replace: a root-store verifier, no resumption.
fn client_config(
    root: &CertificateDer<'static>,
) -> Result<Arc<rustls::ClientConfig>, Box<dyn std::error::Error>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone())?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

// ---------------------------------------------------------------------------------------
// Test DoT server
// ---------------------------------------------------------------------------------------

/// How the test server misbehaves.
#[derive(Clone, Default)]
struct Behavior {
    /// Delay every response by this much (responses are sent concurrently).
    delay: Duration,
    /// Hold responses until this many queries arrived on the connection, then send them in
    /// reverse order.
    reverse_batch: usize,
    /// Connections with an index below this close as soon as a query arrives, unanswered.
    close_first_connections: usize,
    /// Read queries but never answer.
    stall: bool,
    /// Close a connection on which no query arrived for this long.
    idle_close: Option<Duration>,
    /// Before each real answer, send a response with an unknown ID, one for another name
    /// and one for another type.
    decoys: bool,
}

#[derive(Default)]
struct Stats {
    /// TCP connections accepted.
    tcp_accepted: AtomicUsize,
    /// TLS handshakes completed.
    handshakes: AtomicUsize,
    /// TLS handshakes that failed.
    handshake_failures: AtomicUsize,
    /// Application bytes received after a completed handshake.
    app_bytes: AtomicUsize,
    /// Connections that ended (either side).
    closed: AtomicUsize,
    /// Decoy responses sent.
    decoys_sent: AtomicUsize,
    /// Every query message received, as sent on the wire (without the length prefix).
    queries: Mutex<Vec<Vec<u8>>>,
}

impl Stats {
    fn get(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::SeqCst)
    }

    fn queries(&self) -> Vec<Vec<u8>> {
        self.queries.lock().map(|q| q.clone()).unwrap_or_default()
    }
}

/// A DoT server on 127.0.0.1, port 0. Dropping it stops it and all its connections.
struct TestServer {
    addr: SocketAddr,
    stats: Arc<Stats>,
    task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The answer table: `q<i>.test.` → 192.0.2.<i>.
fn table_lookup(name: &Name) -> Option<Ipv4Addr> {
    let text = name.to_ascii().to_ascii_lowercase();
    let label = text.strip_suffix(".test.")?.strip_prefix('q')?;
    let i: u8 = label.parse().ok()?;
    Some(Ipv4Addr::new(192, 0, 2, i))
}

fn decoy_ip() -> Ipv4Addr {
    Ipv4Addr::new(198, 51, 100, 66)
}

async fn start_server(
    pki: &Pki,
    behavior: Behavior,
) -> Result<TestServer, Box<dyn std::error::Error>> {
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            pki.chain.clone(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key_pkcs8.clone())),
        )?;
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind((LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let stats = Arc::new(Stats::default());
    let task_stats = Arc::clone(&stats);
    let task = tokio::spawn(async move {
        // Dropped (aborting every connection task) when the accept task is aborted.
        let mut connections = JoinSet::new();
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let index = task_stats.tcp_accepted.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            let stats = Arc::clone(&task_stats);
            let behavior = behavior.clone();
            connections.spawn(async move {
                match acceptor.accept(tcp).await {
                    Ok(tls) => {
                        stats.handshakes.fetch_add(1, Ordering::SeqCst);
                        serve_connection(tls, index, &behavior, &stats).await;
                    }
                    Err(_) => {
                        stats.handshake_failures.fetch_add(1, Ordering::SeqCst);
                    }
                }
                stats.closed.fetch_add(1, Ordering::SeqCst);
            });
            // Reap finished connection tasks.
            while connections.try_join_next().is_some() {}
        }
    });
    Ok(TestServer { addr, stats, task })
}

type Writer = Arc<tokio::sync::Mutex<WriteHalf<TlsStream<TcpStream>>>>;

async fn write_frame(writer: &Writer, msg: &[u8]) {
    let Ok(len) = u16::try_from(msg.len()) else {
        return;
    };
    let mut w = writer.lock().await;
    let mut frame = len.to_be_bytes().to_vec();
    frame.extend_from_slice(msg);
    let _ = w.write_all(&frame).await;
    let _ = w.flush().await;
}

async fn serve_connection(
    tls: TlsStream<TcpStream>,
    index: usize,
    behavior: &Behavior,
    stats: &Stats,
) {
    let (mut reader, writer) = tokio::io::split(tls);
    let writer: Writer = Arc::new(tokio::sync::Mutex::new(writer));
    let mut delayed = JoinSet::new();
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        let read = async {
            let mut len = [0u8; 2];
            reader.read_exact(&mut len).await?;
            stats.app_bytes.fetch_add(2, Ordering::SeqCst);
            let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
            reader.read_exact(&mut msg).await?;
            stats.app_bytes.fetch_add(msg.len(), Ordering::SeqCst);
            Ok::<_, std::io::Error>(msg)
        };
        let query = match behavior.idle_close {
            Some(idle) => match tokio::time::timeout(idle, read).await {
                Ok(r) => r,
                Err(_) => return,
            },
            None => read.await,
        };
        let Ok(query) = query else { return };
        if let Ok(mut q) = stats.queries.lock() {
            q.push(query.clone());
        }
        if index < behavior.close_first_connections || behavior.stall {
            if behavior.stall {
                continue;
            }
            return;
        }
        let Some(response) = answer(&query) else {
            continue;
        };
        if behavior.decoys {
            for decoy in decoys(&query) {
                write_frame(&writer, &decoy).await;
                stats.decoys_sent.fetch_add(1, Ordering::SeqCst);
            }
        }
        if behavior.reverse_batch > 1 {
            held.push(response);
            if held.len() == behavior.reverse_batch {
                for r in held.drain(..).rev() {
                    write_frame(&writer, &r).await;
                }
            }
        } else if !behavior.delay.is_zero() {
            let writer = Arc::clone(&writer);
            let delay = behavior.delay;
            delayed.spawn(async move {
                tokio::time::sleep(delay).await;
                write_frame(&writer, &response).await;
            });
        } else {
            write_frame(&writer, &response).await;
        }
    }
}

/// The server's answer: A records from the table, NXDOMAIN otherwise; an OPT record when
/// the query had one (hickory-proto keeps the query's padding out of the response).
fn answer(query: &[u8]) -> Option<Vec<u8>> {
    let q = Message::from_vec(query).ok()?;
    let question = q.queries.first()?.clone();
    let mut r = Message::response(q.metadata.id, OpCode::Query);
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    r.metadata.recursion_available = true;
    r.add_query(question.clone());
    match (question.query_type(), table_lookup(question.name())) {
        (RecordType::A, Some(ip)) => {
            r.add_answer(Record::from_rdata(
                question.name().clone(),
                300,
                RData::A(A(ip)),
            ));
        }
        (_, Some(_)) => {}
        (_, None) => r.metadata.response_code = ResponseCode::NXDomain,
    }
    if q.edns.is_some() {
        r.set_edns(Edns::new());
    }
    r.to_vec().ok()
}

/// Three wrong responses to `query`: unknown ID, other name, other type. Each carries an A
/// record with [`decoy_ip`], so a client that accepted one would show it.
fn decoys(query: &[u8]) -> Vec<Vec<u8>> {
    let Ok(q) = Message::from_vec(query) else {
        return Vec::new();
    };
    let Some(question) = q.queries.first() else {
        return Vec::new();
    };
    let id = q.metadata.id;
    let other_name = Name::from_ascii("decoy.test.").ok();
    let variants = [
        (id ^ 0x5A5A, question.name().clone(), question.query_type()),
        (
            id,
            other_name.unwrap_or_else(Name::root),
            question.query_type(),
        ),
        (id, question.name().clone(), RecordType::AAAA),
    ];
    variants
        .into_iter()
        .filter_map(|(id, name, qtype)| {
            let mut r = Message::response(id, OpCode::Query);
            r.add_query(Query::query(name.clone(), qtype));
            r.add_answer(Record::from_rdata(name, 300, RData::A(A(decoy_ip()))));
            r.to_vec().ok()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Client helpers
// ---------------------------------------------------------------------------------------

fn query_msg(name: &str, id: u16, edns: bool) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name)?, RecordType::A));
    if edns {
        m.set_edns(Edns::new());
    }
    Ok(m.to_vec()?)
}

fn a_answers(response: &[u8]) -> Result<Vec<Ipv4Addr>, Box<dyn std::error::Error>> {
    let m = Message::from_vec(response)?;
    Ok(m.answers
        .iter()
        .filter_map(|r| match r.data {
            RData::A(A(ip)) => Some(ip),
            _ => None,
        })
        .collect())
}

fn dot(
    server: &TestServer,
    config: &Arc<rustls::ClientConfig>,
    opts: DotOptions,
) -> Arc<DotTransport> {
    Arc::new(DotTransport::new(server.addr, Arc::clone(config), opts))
}

fn quick_opts() -> DotOptions {
    DotOptions {
        connect_timeout: Duration::from_secs(2),
        query_timeout: Duration::from_secs(2),
        ..DotOptions::default()
    }
}

/// Wait (bounded) until `cond` holds.
async fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("ctdns=debug")
        .try_init();
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn answers_a_queries_with_original_ids() -> TestResult {
    init_tracing();
    let pki = make_pki("ctdns test CA")?;
    let server = start_server(&pki, Behavior::default()).await?;
    let t = dot(&server, &client_config(&pki.root)?, quick_opts());

    let response = t.query(&query_msg("q7.test.", 0xBEEF, false)?).await?;
    let m = Message::from_vec(&response)?;
    assert_eq!(m.metadata.id, 0xBEEF);
    assert_eq!(m.metadata.message_type, MessageType::Response);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(a_answers(&response)?, vec![Ipv4Addr::new(192, 0, 2, 7)]);
    // ctdns added an OPT record for padding, so it stripped the server's OPT from the answer.
    assert!(m.edns.is_none());

    let response = t.query(&query_msg("nowhere.test.", 3, false)?).await?;
    let m = Message::from_vec(&response)?;
    assert_eq!(m.metadata.id, 3);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);

    // A client that sent EDNS itself gets the server's OPT record back.
    let response = t.query(&query_msg("Q9.TEST.", 9, true)?).await?;
    let m = Message::from_vec(&response)?;
    assert!(m.edns.is_some());
    assert_eq!(a_answers(&response)?, vec![Ipv4Addr::new(192, 0, 2, 9)]);

    assert_eq!(Stats::get(&server.stats.tcp_accepted), 1);
    assert_eq!(server.stats.queries().len(), 3);
    Ok(())
}

/// `Transport::connect` opens the verified connection before any query and reports its
/// TLS parameters; the next query uses that connection (one handshake in all).
#[tokio::test]
async fn connect_ahead_of_the_first_query_is_reused_by_it() -> TestResult {
    init_tracing();
    let pki = make_pki("ctdns test CA")?;
    let server = start_server(&pki, Behavior::default()).await?;
    let t = dot(&server, &client_config(&pki.root)?, quick_opts());
    let session = t.connect().await?.ok_or("a DoT transport has a session")?;
    assert!(session.version.starts_with("TLSv1_"), "{session:?}");
    assert_ne!(session.cipher_suite, "-");
    assert!(wait_until(|| Stats::get(&server.stats.handshakes) == 1).await);
    assert!(server.stats.queries().is_empty(), "no DNS byte yet");
    let response = t.query(&query_msg("q7.test.", 7, false)?).await?;
    assert_eq!(a_answers(&response)?, vec![Ipv4Addr::new(192, 0, 2, 7)]);
    assert_eq!(Stats::get(&server.stats.tcp_accepted), 1);
    assert_eq!(t.dial_stats().dials, 1);
    Ok(())
}

#[tokio::test]
async fn fifty_concurrent_queries_share_one_connection_and_get_their_own_answers() -> TestResult {
    init_tracing();
    let pki = make_pki("ctdns test CA")?;
    let server = start_server(
        &pki,
        Behavior {
            reverse_batch: 50,
            ..Behavior::default()
        },
    )
    .await?;
    let t = dot(
        &server,
        &client_config(&pki.root)?,
        DotOptions {
            max_in_flight: 64,
            query_timeout: Duration::from_secs(10),
            ..DotOptions::default()
        },
    );
    let mut tasks = JoinSet::new();
    for i in 0..50u16 {
        let t = Arc::clone(&t);
        tasks.spawn(async move {
            // Half the callers use the same ID: the transport must keep them apart.
            let id = if i % 2 == 0 { 0x0DD5 } else { 0x1000 + i };
            let query = query_msg(&format!("q{i}.test."), id, false).map_err(|e| e.to_string())?;
            let response = t.query(&query).await.map_err(|e| e.to_string())?;
            Ok::<_, String>((i, id, response))
        });
    }
    let mut seen = HashSet::new();
    while let Some(joined) = tasks.join_next().await {
        let (i, id, response) = joined??;
        let m = Message::from_vec(&response)?;
        assert_eq!(m.metadata.id, id, "query {i}: original ID restored");
        assert_eq!(
            a_answers(&response)?,
            vec![Ipv4Addr::new(192, 0, 2, u8::try_from(i)?)],
            "query {i} got its own answer"
        );
        assert!(seen.insert(i));
    }
    assert_eq!(seen.len(), 50);
    assert_eq!(Stats::get(&server.stats.tcp_accepted), 1, "one connection");
    let wire_ids: HashSet<u16> = server
        .stats
        .queries()
        .iter()
        .filter_map(|q| Message::from_vec(q).ok().map(|m| m.metadata.id))
        .collect();
    assert_eq!(
        wire_ids.len(),
        50,
        "every in-flight query had its own wire ID"
    );
    Ok(())
}

#[tokio::test]
async fn queries_are_padded_to_128_byte_blocks() -> TestResult {
    init_tracing();
    let pki = make_pki("ctdns test CA")?;
    let server = start_server(&pki, Behavior::default()).await?;
    let t = dot(&server, &client_config(&pki.root)?, quick_opts());
    let long = format!("{}q1.test.", "a-long-label-for-padding.".repeat(6));
    let names = ["q1.test.", "q200.test.", long.as_str()];
    for (n, name) in names.iter().enumerate() {
        for edns in [false, true] {
            t.query(&query_msg(name, u16::try_from(n)?, edns)?).await?;
        }
    }
    let queries = server.stats.queries();
    assert_eq!(queries.len(), 6);
    let mut lengths = HashSet::new();
    for q in &queries {
        assert_eq!(q.len() % 128, 0, "query of {} bytes", q.len());
        let m = Message::from_vec(q)?;
        let edns = m.edns.ok_or("padded query has an OPT record")?;
        assert!(edns.option(EdnsCode::Padding).is_some());
        lengths.insert(q.len());
    }
    // The long name needs a second block; the short ones fit the first.
    assert_eq!(lengths, HashSet::from([128, 256]));

    // With padding off, the query goes out as sent, apart from the message ID.
    let plain = dot(
        &server,
        &client_config(&pki.root)?,
        DotOptions {
            padding: false,
            ..quick_opts()
        },
    );
    let query = query_msg("q3.test.", 77, false)?;
    let response = plain.query(&query).await?;
    assert_eq!(a_answers(&response)?, vec![Ipv4Addr::new(192, 0, 2, 3)]);
    let sent = server.stats.queries().pop().ok_or("no query")?;
    assert_eq!(sent.len(), query.len());
    assert_eq!(sent[2..], query[2..]);
    Ok(())
}

/// Issue 11 item 12: the IP a certificate is checked against is the one dialed, derived from
/// the socket address (the constructor takes no server name any more). A server on
/// 127.0.0.1 presenting a certificate valid only for 127.0.0.2 is refused in the handshake
/// and receives no DNS byte; the same CA's certificate for 127.0.0.1 is accepted.
#[tokio::test]
async fn certificate_for_another_ip_is_refused_on_this_socket() -> TestResult {
    let other = make_pki_for("ctdns test CA", &["127.0.0.2"])?;
    let server = start_server(&other, Behavior::default()).await?;
    let t = dot(&server, &client_config(&other.root)?, quick_opts());
    assert_eq!(
        t.server_name(),
        &rustls::pki_types::ServerName::IpAddress(server.addr.ip().into())
    );
    match t.query(&query_msg("q1.test.", 1, false)?).await {
        Err(UpstreamError::Tls { addr, .. }) => assert_eq!(addr, server.addr),
        other => panic!("expected a TLS refusal, got {other:?}"),
    }
    assert_eq!(server.stats.app_bytes.load(Ordering::SeqCst), 0);

    let right = make_pki_for("ctdns test CA", &["127.0.0.1"])?;
    let server = start_server(&right, Behavior::default()).await?;
    let t = dot(&server, &client_config(&right.root)?, quick_opts());
    t.query(&query_msg("q1.test.", 1, false)?).await?;
    Ok(())
}

#[tokio::test]
async fn fails_over_when_first_upstream_refuses_connections() -> TestResult {
    init_tracing();
    let pki = make_pki("ctdns test CA")?;
    let config = client_config(&pki.root)?;
    let good = start_server(&pki, Behavior::default()).await?;
    // A port that was just free: connecting to it is refused.
    let refused_addr = TcpListener::bind((LOCALHOST, 0)).await?.local_addr()?;
    let refused: Arc<dyn Transport> = Arc::new(DotTransport::new(
        refused_addr,
        Arc::clone(&config),
        quick_opts(),
    ));
    match refused.query(&query_msg("q1.test.", 1, false)?).await {
        Err(UpstreamError::Connect { addr, .. }) => assert_eq!(addr, refused_addr),
        other => panic!("expected a connect error, got {other:?}"),
    }
    let pool = Pool::new(
        vec![refused, dot(&good, &config, quick_opts())],
        PoolOptions::default(),
    );
    let response = pool.query(&query_msg("q5.test.", 55, false)?).await?;
    assert_eq!(Message::from_vec(&response)?.metadata.id, 55);
    assert_eq!(a_answers(&response)?, vec![Ipv4Addr::new(192, 0, 2, 5)]);
    let health = pool.health();
    assert_eq!(health[0].consecutive_failures, 1);
    assert!(health[0].down_for.is_some());
    assert!(health[0]
        .last_error
        .as_deref()
        .unwrap_or("")
        .contains("connect to"));
    assert_eq!(health[1].consecutive_failures, 0);
    Ok(())
}

/// A client config trusting one CA, a server whose certificate comes from another CA (so
/// the client refuses it) and a server it trusts.
async fn rogue_and_good(
) -> Result<(Arc<rustls::ClientConfig>, TestServer, TestServer), Box<dyn std::error::Error>> {
    let trusted = make_pki("ctdns trusted CA")?;
    let untrusted = make_pki("ctdns untrusted CA")?;
    let config = client_config(&trusted.root)?;
    let rogue = start_server(&untrusted, Behavior::default()).await?;
    let good = start_server(&trusted, Behavior::default()).await?;
    Ok((config, rogue, good))
}

#[tokio::test]
async fn fails_over_when_certificate_is_refused_and_refused_server_gets_no_dns_bytes() -> TestResult
{
    init_tracing();
    let (config, rogue, good) = rogue_and_good().await?;

    // Directly: a TLS error naming the refusal.
    let direct = dot(&rogue, &config, quick_opts());
    match direct.query(&query_msg("q1.test.", 1, false)?).await {
        Err(UpstreamError::Tls { addr, source }) => {
            assert_eq!(addr, rogue.addr);
            assert!(source.to_string().contains("UnknownIssuer"), "{source}");
        }
        other => panic!("expected a TLS error, got {other:?}"),
    }

    // Through the pool: the next upstream answers.
    let pool = Pool::new(
        vec![
            dot(&rogue, &config, quick_opts()),
            dot(&good, &config, quick_opts()),
        ],
        PoolOptions::default(),
    );
    let response = pool.query(&query_msg("q2.test.", 22, false)?).await?;
    assert_eq!(a_answers(&response)?, vec![Ipv4Addr::new(192, 0, 2, 2)]);
    let health = pool.health();
    assert_eq!(health[0].consecutive_failures, 1);
    assert!(health[0]
        .last_error
        .as_deref()
        .unwrap_or("")
        .contains("TLS handshake"));

    // The refused server saw the connections and the failed handshakes, and not one byte of
    // DNS.
    assert!(wait_until(|| Stats::get(&rogue.stats.handshake_failures) == 2).await);
    assert_eq!(Stats::get(&rogue.stats.tcp_accepted), 2);
    assert_eq!(Stats::get(&rogue.stats.handshakes), 0);
    assert_eq!(Stats::get(&rogue.stats.app_bytes), 0);
    assert!(rogue.stats.queries().is_empty());
    assert_eq!(good.stats.queries().len(), 1);
    Ok(())
}

/// Queries that wait while a connection attempt is refused share that refusal: a burst
/// costs the refusing upstream one handshake, not one per query, and fails over at once.
#[tokio::test]
async fn a_burst_waiting_on_a_refused_handshake_shares_it_instead_of_redialing() -> TestResult {
    init_tracing();
    let (config, rogue, good) = rogue_and_good().await?;

    // Directly: 20 concurrent queries, one TCP connection, 20 TLS errors naming the cause.
    let direct = dot(&rogue, &config, quick_opts());
    let mut tasks = JoinSet::new();
    for i in 0..20u16 {
        let t = Arc::clone(&direct);
        tasks.spawn(async move {
            let query = query_msg(&format!("b{i}.test."), i, false).map_err(|e| e.to_string())?;
            Ok::<_, String>(t.query(&query).await)
        });
    }
    let mut refused = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined?? {
            Err(UpstreamError::Tls { addr, source }) => {
                assert_eq!(addr, rogue.addr);
                assert!(source.to_string().contains("UnknownIssuer"), "{source}");
                refused += 1;
            }
            other => panic!("expected a TLS error, got {other:?}"),
        }
    }
    assert_eq!(refused, 20);
    assert!(wait_until(|| Stats::get(&rogue.stats.handshake_failures) == 1).await);
    assert_eq!(
        Stats::get(&rogue.stats.tcp_accepted),
        1,
        "one handshake for the burst"
    );

    // A query that arrives after the failure dials again: nothing is remembered longer.
    assert!(direct
        .query(&query_msg("later.test.", 99, false)?)
        .await
        .is_err());
    assert!(wait_until(|| Stats::get(&rogue.stats.tcp_accepted) == 2).await);

    // Through the pool: every query of a burst is answered by the honest upstream, and the
    // refused one saw one more connection, no DNS byte.
    let pool = Arc::new(Pool::new(
        vec![
            dot(&rogue, &config, quick_opts()),
            dot(&good, &config, quick_opts()),
        ],
        PoolOptions::default(),
    ));
    let mut tasks = JoinSet::new();
    for i in 0..20u16 {
        let p = Arc::clone(&pool);
        tasks.spawn(async move {
            let query = query_msg(&format!("q{i}.test."), i, false).map_err(|e| e.to_string())?;
            p.query(&query).await.map_err(|e| e.to_string())
        });
    }
    let mut answered = 0;
    while let Some(joined) = tasks.join_next().await {
        let response = joined??;
        assert_eq!(a_answers(&response)?.len(), 1);
        answered += 1;
    }
    assert_eq!(answered, 20);
    assert!(wait_until(|| Stats::get(&rogue.stats.handshake_failures) == 3).await);
    assert_eq!(Stats::get(&rogue.stats.tcp_accepted), 3);
    assert_eq!(Stats::get(&rogue.stats.app_bytes), 0);
    assert_eq!(good.stats.queries().len(), 20);
    Ok(())
}

#[tokio::test]
async fn stalled_upstream_times_out_within_the_deadline() -> TestResult {
    init_tracing();
    let pki = make_pki("ctdns test CA")?;
    let config = client_config(&pki.root)?;
    let stalled = start_server(
        &pki,
        Behavior {
            stall: true,
            ..Behavior::default()
        },
    )
    .await?;

    // The transport's own timeout.
    let t = dot(
        &stalled,
        &config,
        DotOptions {
            query_timeout: Duration::from_millis(300),
            ..DotOptions::default()
        },
    );
    let start = Instant::now();
    let result = t.query(&query_msg("q1.test.", 1, false)?).await;
    assert!(matches!(result, Err(UpstreamError::Timeout)), "{result:?}");
    assert!(start.elapsed() < Duration::from_millis(300) + Duration::from_secs(1));

    // The pool's overall deadline, shorter than the transport's.
    let pool = Pool::new(
        vec![dot(&stalled, &config, quick_opts())],
        PoolOptions {
            query_timeout: Duration::from_millis(400),
            per_attempt_timeout: Duration::from_secs(5),
            ..PoolOptions::default()
        },
    );
    let start = Instant::now();
    let result = pool.query(&query_msg("q2.test.", 2, false)?).await;
    assert!(matches!(result, Err(UpstreamError::Timeout)), "{result:?}");
    assert!(start.elapsed() < Duration::from_millis(400) + Duration::from_secs(1));
    // Both queries reached the server: it stalled, it did not fail to connect.
    assert_eq!(stalled.stats.queries().len(), 2);
    Ok(())
}

#[tokio::test]
async fn stalled_connection_is_replaced_but_a_merely_slow_one_is_kept() -> TestResult {
    init_tracing();
    let pki = make_pki("ctdns test CA")?;
    let config = client_config(&pki.root)?;
    let stalled = start_server(
        &pki,
        Behavior {
            stall: true,
            ..Behavior::default()
        },
    )
    .await?;
    let query_timeout = Duration::from_millis(300);

    // Abandoned after the stall timeout with nothing received: the connection is replaced.
    let t = dot(
        &stalled,
        &config,
        DotOptions {
            query_timeout,
            stall_timeout: Duration::from_millis(100),
            ..DotOptions::default()
        },
    );
    for i in 1..=2u8 {
        let result = t.query(&query_msg(&format!("q{i}.test."), 1, false)?).await;
        assert!(matches!(result, Err(UpstreamError::Timeout)), "{result:?}");
    }
    assert_eq!(Stats::get(&stalled.stats.tcp_accepted), 2);

    // Abandoned before the stall timeout: the connection stays.
    let t = dot(
        &stalled,
        &config,
        DotOptions {
            query_timeout,
            stall_timeout: Duration::from_secs(30),
            ..DotOptions::default()
        },
    );
    for i in 1..=2u8 {
        let result = t.query(&query_msg(&format!("q{i}.test."), 1, false)?).await;
        assert!(matches!(result, Err(UpstreamError::Timeout)), "{result:?}");
    }
    assert_eq!(Stats::get(&stalled.stats.tcp_accepted), 3);
    assert_eq!(stalled.stats.queries().len(), 4);
    Ok(())
}

#[tokio::test]
async fn slow_upstream_is_abandoned_for_the_next_within_the_deadline() -> TestResult {
    init_tracing();
    let pki = make_pki("ctdns test CA")?;
    let config = client_config(&pki.root)?;
    let slow = start_server(
        &pki,
        Behavior {
            delay: Duration::from_secs(5),
            ..Behavior::default()
        },
    )
    .await?;
    let good = start_server(&pki, Behavior::default()).await?;
    let pool = Pool::new(
        vec![
            dot(&slow, &config, quick_opts()),
            dot(&good, &config, quick_opts()),
        ],
        PoolOptions {
            query_timeout: Duration::from_secs(3),
            per_attempt_timeout: Duration::from_millis(300),
            ..PoolOptions::default()
        },
    );
    let response = pool.query(&query_msg("q4.test.", 4, false)?).await?;
    assert_eq!(a_answers(&response)?, vec![Ipv4Addr::new(192, 0, 2, 4)]);
    assert_eq!(slow.stats.queries().len(), 1);
    assert_eq!(pool.health()[0].last_error.as_deref(), Some("timed out"));
    Ok(())
}

#[tokio::test]
async fn connection_closed_mid_flight_is_retried_and_answered() -> TestResult {
    init_tracing();
    let pki = make_pki("ctdns test CA")?;
    let config = client_config(&pki.root)?;
    let closer = start_server(
        &pki,
        Behavior {
            close_first_connections: usize::MAX,
            ..Behavior::default()
        },
    )
    .await?;
    let good = start_server(&pki, Behavior::default()).await?;

    // Directly: the loss is reported as such.
    let direct = dot(&closer, &config, quick_opts());
    let result = direct.query(&query_msg("q1.test.", 1, false)?).await;
    assert!(
        matches!(result, Err(UpstreamError::ConnectionLost(_))),
        "{result:?}"
    );

    // Through the pool: retried on the next upstream.
    let pool = Pool::new(
        vec![
            dot(&closer, &config, quick_opts()),
            dot(&good, &config, quick_opts()),
        ],
        PoolOptions::default(),
    );
    let response = pool.query(&query_msg("q6.test.", 6, false)?).await?;
    assert_eq!(a_answers(&response)?, vec![Ipv4Addr::new(192, 0, 2, 6)]);
    assert!(
        closer.stats.queries().len() >= 2,
        "the closer did receive the queries"
    );

    // One upstream that drops only its first connection: the pool retries it, the transport
    // reconnects, and the query is answered.
    let flaky = start_server(
        &pki,
        Behavior {
            close_first_connections: 1,
            ..Behavior::default()
        },
    )
    .await?;
    let pool = Pool::new(
        vec![dot(&flaky, &config, quick_opts())],
        PoolOptions::default(),
    );
    let response = pool.query(&query_msg("q8.test.", 8, false)?).await?;
    assert_eq!(a_answers(&response)?, vec![Ipv4Addr::new(192, 0, 2, 8)]);
    assert_eq!(Stats::get(&flaky.stats.tcp_accepted), 2);
    assert_eq!(flaky.stats.queries().len(), 2);
    Ok(())
}

#[tokio::test]
async fn reconnects_after_an_idle_connection_was_closed() -> TestResult {
    init_tracing();
    let pki = make_pki("ctdns test CA")?;
    let config = client_config(&pki.root)?;

    // The server closes idle connections.
    let server = start_server(
        &pki,
        Behavior {
            idle_close: Some(Duration::from_millis(100)),
            ..Behavior::default()
        },
    )
    .await?;
    let t = dot(&server, &config, quick_opts());
    let first = t.query(&query_msg("q1.test.", 1, false)?).await?;
    assert_eq!(a_answers(&first)?, vec![Ipv4Addr::new(192, 0, 2, 1)]);
    assert!(wait_until(|| Stats::get(&server.stats.closed) == 1).await);
    // Give the client's reader a moment to see the close.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = t.query(&query_msg("q2.test.", 2, false)?).await?;
    assert_eq!(a_answers(&second)?, vec![Ipv4Addr::new(192, 0, 2, 2)]);
    assert_eq!(Stats::get(&server.stats.tcp_accepted), 2);

    // The client closes idle connections itself.
    let server = start_server(&pki, Behavior::default()).await?;
    let t = dot(
        &server,
        &config,
        DotOptions {
            idle_timeout: Duration::from_millis(100),
            ..quick_opts()
        },
    );
    t.query(&query_msg("q3.test.", 3, false)?).await?;
    assert!(
        wait_until(|| Stats::get(&server.stats.closed) == 1).await,
        "client closed idle connection"
    );
    let again = t.query(&query_msg("q4.test.", 4, false)?).await?;
    assert_eq!(a_answers(&again)?, vec![Ipv4Addr::new(192, 0, 2, 4)]);
    assert_eq!(Stats::get(&server.stats.tcp_accepted), 2);
    Ok(())
}

#[tokio::test]
async fn wrong_id_and_wrong_question_responses_are_ignored() -> TestResult {
    init_tracing();
    let pki = make_pki("ctdns test CA")?;
    let server = start_server(
        &pki,
        Behavior {
            decoys: true,
            ..Behavior::default()
        },
    )
    .await?;
    let t = dot(&server, &client_config(&pki.root)?, quick_opts());
    for i in 1..=3u8 {
        let response = t
            .query(&query_msg(&format!("q{i}.test."), u16::from(i), false)?)
            .await?;
        let answers = a_answers(&response)?;
        assert!(!answers.contains(&decoy_ip()), "a decoy was accepted");
        assert_eq!(answers, vec![Ipv4Addr::new(192, 0, 2, i)]);
        let m = Message::from_vec(&response)?;
        assert_eq!(
            m.queries.first().map(|q| q.query_type()),
            Some(RecordType::A)
        );
    }
    assert_eq!(Stats::get(&server.stats.decoys_sent), 9);
    // The decoys did not cost the connection.
    assert_eq!(Stats::get(&server.stats.tcp_accepted), 1);
    Ok(())
}

#[tokio::test]
async fn malformed_queries_are_refused_before_connecting() -> TestResult {
    init_tracing();
    let pki = make_pki("ctdns test CA")?;
    let server = start_server(&pki, Behavior::default()).await?;
    let t = dot(&server, &client_config(&pki.root)?, quick_opts());
    let mut no_question = query_msg("q1.test.", 1, false)?;
    no_question.truncate(12);
    no_question[5] = 0;
    let result = t.query(&no_question).await;
    assert!(
        matches!(result, Err(UpstreamError::MalformedQuery(_))),
        "{result:?}"
    );
    let result = t.query(&[0u8; 5]).await;
    assert!(
        matches!(result, Err(UpstreamError::MalformedQuery(_))),
        "{result:?}"
    );
    assert_eq!(Stats::get(&server.stats.tcp_accepted), 0);
    Ok(())
}
