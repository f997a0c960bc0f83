//! Idle DoT connections (issue 14 item 5): ctdns asks for the server's idle timeout with the
//! RFC 7828 edns-tcp-keepalive option and opens a new connection for a query that comes
//! after it, instead of writing into a socket the server closed; a query lost on a
//! connection that had been idle is sent again at once on a new one, without counting as an
//! upstream failure.
//!
//! Against a real Debian unbound (certificate from the crate's test PKI, CT-logged) with a
//! short idle timeout, through the transport and pool `ctdns serve` assembles; and against
//! the test kit's DoT server for the silent-close retry. Needs unbound: `scripts/test.sh`
//! installs it.

#[path = "common/unbound.rs"]
mod unbound;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use ctdns::ct::log_list::LogList;
use ctdns::ct::policy::CtPolicy;
use ctdns::pki::{demo_pki, PkiOptions, TestPki};
use ctdns::runtime::{self, Trust};
use ctdns::testkit::server::DotKnobs;
use ctdns::testkit::{AnswerTable, Answers, Counters, Fault, Protocol, ServerCert, TestServer};
use ctdns::upstream::dot::{DotOptions, DotTransport};
use ctdns::upstream::keepalive::{self, KEEPALIVE_OPTION};
use ctdns::upstream::pool::{AttemptOutcome, Pool, PoolOptions};
use ctdns::upstream::{Transport, UpstreamError};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RData, RecordType};
use unbound::Unbound;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn trust(pki: &TestPki) -> Trust {
    let list = LogList::from_json(pki.log_list_json(pki.now()).unwrap().as_bytes()).unwrap();
    let roots = ctdns::tls::roots::anchors_from_der(&pki.trust_anchors(), "test").unwrap();
    Trust::from_parts(roots, list, CtPolicy::chrome())
}

/// A real unbound serving `www.example.test.` on DoT, with `extra` server settings; its
/// directory is removed after it stops (fields drop in order).
struct Fixture {
    unbound: Unbound,
    trust: Trust,
    _dir: tempfile::TempDir,
}

fn fixture(extra: &[&str]) -> Fixture {
    assert!(
        unbound::unbound_binary().is_some(),
        "unbound is not installed: run scripts/test.sh (it installs it)"
    );
    let (pki, leaf) = demo_pki(LOOPBACK).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = ctdns::pki::write_files(&dir.path().join("pki"), &pki, &leaf).unwrap();
    let ub_dir = dir.path().join("unbound");
    std::fs::create_dir_all(&ub_dir).unwrap();
    let unbound = Unbound::start_with(
        &ub_dir,
        &files.chain,
        &files.key,
        &["www.example.test. 300 IN A 192.0.2.1"],
        extra,
    );
    Fixture {
        unbound,
        trust: trust(&pki),
        _dir: dir,
    }
}

impl Fixture {
    /// The DoT transport `ctdns serve` would build for unbound, and a pool over it alone.
    fn pool(&self, opts: DotOptions) -> (Arc<DotTransport>, Pool) {
        let dot = runtime::dot_transport(
            self.unbound.dot,
            self.trust.verifier("unbound", Vec::new(), None),
            opts,
        )
        .unwrap();
        let pool = Pool::new(
            vec![Arc::clone(&dot) as Arc<dyn Transport>],
            PoolOptions::default(),
        );
        (dot, pool)
    }
}

fn query(id: u16, edns: Option<Edns>) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(
        Name::from_ascii("www.example.test.").unwrap(),
        RecordType::A,
    ));
    if let Some(e) = edns {
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

fn assert_answered(answer: &[u8], id: u16) -> Message {
    let m = Message::from_vec(answer).unwrap();
    assert_eq!(m.metadata.id, id);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    let ips: Vec<_> = m
        .answers
        .iter()
        .filter_map(|r| match r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect();
    assert_eq!(ips, vec![Ipv4Addr::new(192, 0, 2, 1)]);
    m
}

/// Attempts the pool counted by outcome, for its only upstream.
fn outcomes(pool: &Pool) -> Vec<(AttemptOutcome, u64)> {
    pool.stats()[0]
        .outcomes
        .iter()
        .copied()
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// unbound announces a 1 s keepalive timeout (and closes idle connections after 1 s). After
/// 1.6 s of silence the next query is answered on the first attempt, on a new connection.
#[tokio::test]
async fn after_the_servers_keepalive_timeout_the_next_query_opens_a_new_connection() {
    let f = fixture(&[
        "edns-tcp-keepalive: yes",
        "edns-tcp-keepalive-timeout: 1000",
        "tcp-idle-timeout: 1000",
    ]);
    let (dot, pool) = f.pool(DotOptions::default());

    // A client query that asks for the keepalive timeout itself gets unbound's answer...
    let mut asking = Edns::new();
    asking
        .options_mut()
        .insert(EdnsOption::Unknown(KEEPALIVE_OPTION, Vec::new()));
    let answer = pool.query(&query(1, Some(asking))).await.unwrap();
    assert_answered(&answer, 1);
    assert_eq!(
        keepalive::server_timeout(&answer),
        Some(Duration::from_secs(1)),
        "unbound announces edns-tcp-keepalive-timeout over DoT"
    );
    // ...and one that did not ask never sees the option ctdns added.
    let m = assert_answered(&pool.query(&query(2, Some(Edns::new()))).await.unwrap(), 2);
    let opt = m.edns.expect("the client's OPT record stays");
    assert!(opt.option(EdnsCode::Keepalive).is_none(), "{opt:?}");
    let m = assert_answered(&pool.query(&query(3, None)).await.unwrap(), 3);
    assert!(m.edns.is_none(), "the OPT record ctdns added is stripped");
    assert_eq!(
        dot.dial_stats().dials,
        1,
        "one connection for the first queries"
    );

    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_answered(&pool.query(&query(4, None)).await.unwrap(), 4);
    assert_eq!(
        dot.dial_stats().dials,
        2,
        "a new connection after the pause"
    );
    assert_eq!(
        dot.idle_retries(),
        0,
        "no query was sent into a closed socket"
    );
    assert_eq!(outcomes(&pool), vec![(AttemptOutcome::Ok, 4)]);
    assert_eq!(pool.health()[0].consecutive_failures, 0);
}

/// ctdns closes before the server does: unbound keeps idle connections 3 s and says so;
/// ctdns counts a connection as expiring 0.75 s earlier (`keepalive_margin`). A query after
/// 2.5 s of silence, while unbound still holds the connection, goes on a new one; the same
/// transport with the keepalive option off reuses the old one.
#[tokio::test]
async fn the_connection_is_replaced_before_the_server_closes_it() {
    let f = fixture(&[
        "edns-tcp-keepalive: yes",
        "edns-tcp-keepalive-timeout: 3000",
        "tcp-idle-timeout: 3000",
    ]);
    assert_eq!(
        ctdns::upstream::dot::keepalive_margin(Duration::from_secs(3)),
        Duration::from_millis(750)
    );
    let (on, on_pool) = f.pool(DotOptions::default());
    let (off, off_pool) = f.pool(DotOptions {
        keepalive: false,
        ..DotOptions::default()
    });
    assert_answered(&on_pool.query(&query(1, None)).await.unwrap(), 1);
    assert_answered(&off_pool.query(&query(1, None)).await.unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_answered(&on_pool.query(&query(2, None)).await.unwrap(), 2);
    assert_answered(&off_pool.query(&query(2, None)).await.unwrap(), 2);
    assert_eq!(on.dial_stats().dials, 2, "replaced before unbound's 3 s");
    assert_eq!(
        off.dial_stats().dials,
        1,
        "without keepalive: still open, reused"
    );
    assert_eq!(on.idle_retries() + off.idle_retries(), 0);
    assert_eq!(outcomes(&on_pool), vec![(AttemptOutcome::Ok, 2)]);
}

/// With the keepalive option off on both sides, unbound closes idle connections after 1 s
/// without saying so in advance: still one attempt per query, no failure counted.
#[tokio::test]
async fn a_server_that_closes_silently_costs_no_failure() {
    let f = fixture(&["edns-tcp-keepalive: no", "tcp-idle-timeout: 1000"]);
    let (dot, pool) = f.pool(DotOptions {
        keepalive: false,
        ..DotOptions::default()
    });
    assert_answered(&pool.query(&query(1, None)).await.unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_answered(&pool.query(&query(2, None)).await.unwrap(), 2);
    assert_eq!(dot.dial_stats().dials, 2);
    assert_eq!(outcomes(&pool), vec![(AttemptOutcome::Ok, 2)]);
}

/// The test kit's DoT server answering `q1.test.`.
async fn testkit_server() -> (TestServer, Arc<rustls::ClientConfig>) {
    let pki = TestPki::generate(&PkiOptions::default()).unwrap();
    let leaf = pki.issue_leaf(&pki.leaf_spec(LOOPBACK)).unwrap();
    let mut table = AnswerTable::new();
    table.insert("q1.test.", LOOPBACK).unwrap();
    let server = TestServer::builder(
        Protocol::Dot,
        ServerCert::new(leaf.chain.clone(), leaf.key_der()),
    )
    .answers(Answers::Table(table))
    .dot_knobs(DotKnobs::default())
    .start()
    .await
    .unwrap();
    let mut config =
        rustls::ClientConfig::builder_with_provider(ctdns::provider::default_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(pki.root_store(false).unwrap())
            .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    (server, Arc::new(config))
}

fn testkit_dot(
    (server, config): &(TestServer, Arc<rustls::ClientConfig>),
    idle_retry_after: Duration,
) -> DotTransport {
    DotTransport::new(
        server.addr(),
        Arc::clone(config),
        DotOptions {
            idle_retry_after,
            ..DotOptions::default()
        },
    )
}

fn q1() -> Vec<u8> {
    let mut m = Message::new(9, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(
        Name::from_ascii("q1.test.").unwrap(),
        RecordType::A,
    ));
    m.to_vec().unwrap()
}

/// A query lost on a connection idle for longer than `idle_retry_after` is sent again at
/// once on a new connection, once; one lost on a connection in use is reported.
#[tokio::test(flavor = "current_thread")]
async fn a_query_lost_after_a_pause_is_sent_again_once_on_a_new_connection() {
    let kit = testkit_server().await;
    let dot = testkit_dot(&kit, Duration::from_millis(300));
    let server = &kit.0;
    dot.query(&q1()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    // From now on the server reads each query and closes the connection unanswered.
    server.set(Fault::Kill);
    let error = dot.query(&q1()).await.unwrap_err();
    assert!(matches!(error, UpstreamError::ConnectionLost(_)), "{error}");
    assert_eq!(dot.idle_retries(), 1);
    assert_eq!(Counters::get(&server.counters().tcp_accepted), 2);
    assert_eq!(Counters::get(&server.counters().queries), 3);

    // The same without the pause: no second try.
    let kit = testkit_server().await;
    let dot = testkit_dot(&kit, Duration::from_secs(60));
    let server = &kit.0;
    dot.query(&q1()).await.unwrap();
    server.set(Fault::Kill);
    assert!(dot.query(&q1()).await.is_err());
    assert_eq!(dot.idle_retries(), 0);
    assert_eq!(Counters::get(&server.counters().tcp_accepted), 1);
    assert_eq!(Counters::get(&server.counters().queries), 2);
}
