//! DNS-over-TLS transport and pool against an in-process DoT server on loopback.
//!
//! The server is real TLS (tokio-rustls, certificates made with rcgen for IP 127.0.0.1) and
//! real DNS (hickory-proto parses queries and builds answers from a small table). It counts
//! every application byte it receives after the handshake and can delay, reorder, stall,
//! close mid-flight, close idle connections, and send decoy responses.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ctdns::testkit::answers::DECOY_IP;
use ctdns::testkit::server::DotKnobs;
use ctdns::testkit::{AnswerTable, Answers, Counters, Fault, Protocol, ServerCert, TestServer};
use ctdns::upstream::dot::{DotOptions, DotTransport};
use ctdns::upstream::pool::{Pool, PoolOptions};
use ctdns::upstream::{Transport, UpstreamError};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::EdnsCode;
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, RecordType};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

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
    ctdns::provider::default_provider()
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
// Test DoT server: the test kit's, answering from the table below
// ---------------------------------------------------------------------------------------

/// The answer table: `q<i>.test.` → 192.0.2.<i> (other names get NXDOMAIN).
fn table() -> Result<AnswerTable, Box<dyn std::error::Error>> {
    let mut t = AnswerTable::new();
    for i in 0..=u8::MAX {
        t.insert(
            &format!("q{i}.test."),
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, i)),
        )?;
    }
    Ok(t)
}

async fn start_with(
    pki: &Pki,
    knobs: DotKnobs,
    fault: Fault,
) -> Result<TestServer, Box<dyn std::error::Error>> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key_pkcs8.clone()));
    let server = TestServer::builder(Protocol::Dot, ServerCert::new(pki.chain.clone(), key))
        .answers(Answers::Table(table()?))
        .dot_knobs(knobs)
        .fault(fault)
        .start()
        .await?;
    Ok(server)
}

/// A DoT server on 127.0.0.1, port 0, answering as `knobs` say.
async fn start_server(
    pki: &Pki,
    knobs: DotKnobs,
) -> Result<TestServer, Box<dyn std::error::Error>> {
    start_with(pki, knobs, Fault::Honest).await
}

/// A DoT server that reads queries but never answers.
async fn start_stalled(pki: &Pki) -> Result<TestServer, Box<dyn std::error::Error>> {
    start_with(pki, DotKnobs::default(), Fault::Stall).await
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
    Arc::new(DotTransport::new(server.addr(), Arc::clone(config), opts))
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
    let server = start_server(&pki, DotKnobs::default()).await?;
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

    assert_eq!(Counters::get(&server.counters().tcp_accepted), 1);
    assert_eq!(server.counters().query_log().len(), 3);
    Ok(())
}

/// `Transport::connect` opens the verified connection before any query and reports its
/// TLS parameters; the next query uses that connection (one handshake in all).
#[tokio::test]
async fn connect_ahead_of_the_first_query_is_reused_by_it() -> TestResult {
    init_tracing();
    let pki = make_pki("ctdns test CA")?;
    let server = start_server(&pki, DotKnobs::default()).await?;
    let t = dot(&server, &client_config(&pki.root)?, quick_opts());
    let session = t.connect().await?.ok_or("a DoT transport has a session")?;
    assert!(session.version.starts_with("TLSv1_"), "{session:?}");
    assert_ne!(session.cipher_suite, "-");
    assert!(wait_until(|| Counters::get(&server.counters().handshakes) == 1).await);
    assert!(server.counters().query_log().is_empty(), "no DNS byte yet");
    let response = t.query(&query_msg("q7.test.", 7, false)?).await?;
    assert_eq!(a_answers(&response)?, vec![Ipv4Addr::new(192, 0, 2, 7)]);
    assert_eq!(Counters::get(&server.counters().tcp_accepted), 1);
    assert_eq!(t.dial_stats().dials, 1);
    Ok(())
}

#[tokio::test]
async fn fifty_concurrent_queries_share_one_connection_and_get_their_own_answers() -> TestResult {
    init_tracing();
    let pki = make_pki("ctdns test CA")?;
    let server = start_server(
        &pki,
        DotKnobs {
            reverse_batch: 50,
            ..DotKnobs::default()
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
    assert_eq!(
        Counters::get(&server.counters().tcp_accepted),
        1,
        "one connection"
    );
    let wire_ids: HashSet<u16> = server
        .counters()
        .query_log()
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
    let server = start_server(&pki, DotKnobs::default()).await?;
    let t = dot(&server, &client_config(&pki.root)?, quick_opts());
    let long = format!("{}q1.test.", "a-long-label-for-padding.".repeat(6));
    let names = ["q1.test.", "q200.test.", long.as_str()];
    for (n, name) in names.iter().enumerate() {
        for edns in [false, true] {
            t.query(&query_msg(name, u16::try_from(n)?, edns)?).await?;
        }
    }
    let queries = server.counters().query_log();
    assert_eq!(queries.len(), 6);
    let mut lengths = HashSet::new();
    for q in &queries {
        assert_eq!(q.len() % 128, 0, "query of {} bytes", q.len());
        let m = Message::from_vec(q)?;
        let edns = m.edns.ok_or("padded query has an OPT record")?;
        assert!(edns.option(EdnsCode::Padding).is_some());
        // RFC 7828 §3.2.1: the empty edns-tcp-keepalive option asks for the idle timeout.
        assert!(edns.option(EdnsCode::Keepalive).is_some());
        lengths.insert(q.len());
    }
    // The long name needs a second block; the short ones fit the first.
    assert_eq!(lengths, HashSet::from([128, 256]));

    // With padding and keepalive off, the query goes out as sent, apart from the message ID.
    let plain = dot(
        &server,
        &client_config(&pki.root)?,
        DotOptions {
            padding: false,
            keepalive: false,
            ..quick_opts()
        },
    );
    let query = query_msg("q3.test.", 77, false)?;
    let response = plain.query(&query).await?;
    assert_eq!(a_answers(&response)?, vec![Ipv4Addr::new(192, 0, 2, 3)]);
    let sent = server.counters().query_log().pop().ok_or("no query")?;
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
    let server = start_server(&other, DotKnobs::default()).await?;
    let t = dot(&server, &client_config(&other.root)?, quick_opts());
    assert_eq!(
        t.server_name(),
        &rustls::pki_types::ServerName::IpAddress(server.addr().ip().into())
    );
    match t.query(&query_msg("q1.test.", 1, false)?).await {
        Err(UpstreamError::Tls { addr, .. }) => assert_eq!(addr, server.addr()),
        other => panic!("expected a TLS refusal, got {other:?}"),
    }
    assert_eq!(Counters::bytes(&server.counters().app_bytes), 0);

    let right = make_pki_for("ctdns test CA", &["127.0.0.1"])?;
    let server = start_server(&right, DotKnobs::default()).await?;
    let t = dot(&server, &client_config(&right.root)?, quick_opts());
    t.query(&query_msg("q1.test.", 1, false)?).await?;
    Ok(())
}

#[tokio::test]
async fn fails_over_when_first_upstream_refuses_connections() -> TestResult {
    init_tracing();
    let pki = make_pki("ctdns test CA")?;
    let config = client_config(&pki.root)?;
    let good = start_server(&pki, DotKnobs::default()).await?;
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
    let rogue = start_server(&untrusted, DotKnobs::default()).await?;
    let good = start_server(&trusted, DotKnobs::default()).await?;
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
            assert_eq!(addr, rogue.addr());
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
    assert!(wait_until(|| Counters::get(&rogue.counters().handshake_failures) == 2).await);
    assert_eq!(Counters::get(&rogue.counters().tcp_accepted), 2);
    assert_eq!(Counters::get(&rogue.counters().handshakes), 0);
    assert_eq!(Counters::bytes(&rogue.counters().app_bytes), 0);
    assert!(rogue.counters().query_log().is_empty());
    assert_eq!(good.counters().query_log().len(), 1);
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
                assert_eq!(addr, rogue.addr());
                assert!(source.to_string().contains("UnknownIssuer"), "{source}");
                refused += 1;
            }
            other => panic!("expected a TLS error, got {other:?}"),
        }
    }
    assert_eq!(refused, 20);
    assert!(wait_until(|| Counters::get(&rogue.counters().handshake_failures) == 1).await);
    assert_eq!(
        Counters::get(&rogue.counters().tcp_accepted),
        1,
        "one handshake for the burst"
    );

    // A query that arrives after the failure dials again: nothing is remembered longer.
    assert!(direct
        .query(&query_msg("later.test.", 99, false)?)
        .await
        .is_err());
    assert!(wait_until(|| Counters::get(&rogue.counters().tcp_accepted) == 2).await);

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
    assert!(wait_until(|| Counters::get(&rogue.counters().handshake_failures) == 3).await);
    assert_eq!(Counters::get(&rogue.counters().tcp_accepted), 3);
    assert_eq!(Counters::bytes(&rogue.counters().app_bytes), 0);
    assert_eq!(good.counters().query_log().len(), 20);
    Ok(())
}

#[tokio::test]
async fn stalled_upstream_times_out_within_the_deadline() -> TestResult {
    init_tracing();
    let pki = make_pki("ctdns test CA")?;
    let config = client_config(&pki.root)?;
    let stalled = start_stalled(&pki).await?;

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
    assert_eq!(stalled.counters().query_log().len(), 2);
    Ok(())
}

#[tokio::test]
async fn stalled_connection_is_replaced_but_a_merely_slow_one_is_kept() -> TestResult {
    init_tracing();
    let pki = make_pki("ctdns test CA")?;
    let config = client_config(&pki.root)?;
    let stalled = start_stalled(&pki).await?;
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
    assert_eq!(Counters::get(&stalled.counters().tcp_accepted), 2);

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
    assert_eq!(Counters::get(&stalled.counters().tcp_accepted), 3);
    assert_eq!(stalled.counters().query_log().len(), 4);
    Ok(())
}

#[tokio::test]
async fn slow_upstream_is_abandoned_for_the_next_within_the_deadline() -> TestResult {
    init_tracing();
    let pki = make_pki("ctdns test CA")?;
    let config = client_config(&pki.root)?;
    let slow = start_server(
        &pki,
        DotKnobs {
            delay: Duration::from_secs(5),
            ..DotKnobs::default()
        },
    )
    .await?;
    let good = start_server(&pki, DotKnobs::default()).await?;
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
    assert_eq!(slow.counters().query_log().len(), 1);
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
        DotKnobs {
            close_first_connections: usize::MAX,
            ..DotKnobs::default()
        },
    )
    .await?;
    let good = start_server(&pki, DotKnobs::default()).await?;

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
        closer.counters().query_log().len() >= 2,
        "the closer did receive the queries"
    );

    // One upstream that drops only its first connection: the pool retries it, the transport
    // reconnects, and the query is answered.
    let flaky = start_server(
        &pki,
        DotKnobs {
            close_first_connections: 1,
            ..DotKnobs::default()
        },
    )
    .await?;
    let pool = Pool::new(
        vec![dot(&flaky, &config, quick_opts())],
        PoolOptions::default(),
    );
    let response = pool.query(&query_msg("q8.test.", 8, false)?).await?;
    assert_eq!(a_answers(&response)?, vec![Ipv4Addr::new(192, 0, 2, 8)]);
    assert_eq!(Counters::get(&flaky.counters().tcp_accepted), 2);
    assert_eq!(flaky.counters().query_log().len(), 2);
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
        DotKnobs {
            idle_close: Some(Duration::from_millis(100)),
            ..DotKnobs::default()
        },
    )
    .await?;
    let t = dot(&server, &config, quick_opts());
    let first = t.query(&query_msg("q1.test.", 1, false)?).await?;
    assert_eq!(a_answers(&first)?, vec![Ipv4Addr::new(192, 0, 2, 1)]);
    assert!(wait_until(|| Counters::get(&server.counters().closed) == 1).await);
    // Give the client's reader a moment to see the close.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = t.query(&query_msg("q2.test.", 2, false)?).await?;
    assert_eq!(a_answers(&second)?, vec![Ipv4Addr::new(192, 0, 2, 2)]);
    assert_eq!(Counters::get(&server.counters().tcp_accepted), 2);

    // The client closes idle connections itself.
    let server = start_server(&pki, DotKnobs::default()).await?;
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
        wait_until(|| Counters::get(&server.counters().closed) == 1).await,
        "client closed idle connection"
    );
    let again = t.query(&query_msg("q4.test.", 4, false)?).await?;
    assert_eq!(a_answers(&again)?, vec![Ipv4Addr::new(192, 0, 2, 4)]);
    assert_eq!(Counters::get(&server.counters().tcp_accepted), 2);
    Ok(())
}

#[tokio::test]
async fn wrong_id_and_wrong_question_responses_are_ignored() -> TestResult {
    init_tracing();
    let pki = make_pki("ctdns test CA")?;
    let server = start_server(
        &pki,
        DotKnobs {
            decoys: true,
            ..DotKnobs::default()
        },
    )
    .await?;
    let t = dot(&server, &client_config(&pki.root)?, quick_opts());
    for i in 1..=3u8 {
        let response = t
            .query(&query_msg(&format!("q{i}.test."), u16::from(i), false)?)
            .await?;
        let answers = a_answers(&response)?;
        assert!(!answers.contains(&DECOY_IP), "a decoy was accepted");
        assert_eq!(answers, vec![Ipv4Addr::new(192, 0, 2, i)]);
        let m = Message::from_vec(&response)?;
        assert_eq!(
            m.queries.first().map(|q| q.query_type()),
            Some(RecordType::A)
        );
    }
    assert_eq!(Counters::get(&server.counters().decoys_sent), 9);
    // The decoys did not cost the connection.
    assert_eq!(Counters::get(&server.counters().tcp_accepted), 1);
    Ok(())
}

#[tokio::test]
async fn malformed_queries_are_refused_before_connecting() -> TestResult {
    init_tracing();
    let pki = make_pki("ctdns test CA")?;
    let server = start_server(&pki, DotKnobs::default()).await?;
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
    assert_eq!(Counters::get(&server.counters().tcp_accepted), 0);
    Ok(())
}
