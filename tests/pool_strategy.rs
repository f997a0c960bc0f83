//! Upstream selection strategies (`ordered`, `fastest`, `round_robin`) against two real DoT
//! servers on loopback (the test kit's), one answering at once and one after a delay.
//! Assertions are on per-server query counts, never on timings.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use ctdns::pki::PkiOptions;
use ctdns::testkit::server::DotKnobs;
use ctdns::testkit::{AnswerTable, Answers, Counters, Fault, Protocol, ServerCert, TestServer};
use ctdns::upstream::dot::{DotOptions, DotTransport};
use ctdns::upstream::pool::{Pool, PoolOptions, Strategy};
use ctdns::upstream::Transport;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// How much later the slow server answers.
const SLOW: Duration = Duration::from_millis(25);

struct Pair {
    slow: TestServer,
    fast: TestServer,
    pool: Pool,
}

fn table() -> AnswerTable {
    let mut t = AnswerTable::new();
    for n in 0..=u8::MAX {
        t.insert(
            &format!("q{n}.test."),
            IpAddr::V4(Ipv4Addr::new(198, 51, 100, n)),
        )
        .unwrap();
    }
    t
}

async fn server(pki: &ctdns::pki::TestPki, delay: Duration) -> TestServer {
    let leaf = pki.issue_leaf(&pki.leaf_spec(LOCALHOST)).unwrap();
    TestServer::builder(
        Protocol::Dot,
        ServerCert::new(leaf.chain.clone(), leaf.key_der()),
    )
    .answers(Answers::Table(table()))
    .dot_knobs(DotKnobs {
        delay,
        ..DotKnobs::default()
    })
    .start()
    .await
    .unwrap()
}

/// The slow server first in configuration order, then the fast one.
async fn pair(strategy: Strategy) -> Pair {
    let pki = ctdns::pki::TestPki::generate(&PkiOptions::default()).unwrap();
    let mut config =
        rustls::ClientConfig::builder_with_provider(ctdns::provider::default_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(pki.root_store(false).unwrap())
            .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    let config = Arc::new(config);
    let slow = server(&pki, SLOW).await;
    let fast = server(&pki, Duration::ZERO).await;
    let dot = |s: &TestServer| -> Arc<dyn Transport> {
        Arc::new(DotTransport::new(
            s.addr(),
            Arc::clone(&config),
            DotOptions::default(),
        ))
    };
    let pool = Pool::new(
        vec![dot(&slow), dot(&fast)],
        PoolOptions {
            strategy,
            ..PoolOptions::default()
        },
    );
    Pair { slow, fast, pool }
}

fn query(n: u8) -> Vec<u8> {
    let mut m = Message::new(u16::from(n) + 1, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(
        Name::from_ascii(format!("q{n}.test.")).unwrap(),
        RecordType::A,
    ));
    m.to_vec().unwrap()
}

impl Pair {
    /// `count` queries one after the other, each answered NOERROR; the queries each server
    /// received meanwhile (slow, fast).
    async fn run(&self, count: usize) -> (usize, usize) {
        let before = (self.slow_queries(), self.fast_queries());
        for i in 0..count {
            let n = u8::try_from(i % 256).unwrap();
            let answer = self.pool.query(&query(n)).await.unwrap();
            let m = Message::from_vec(&answer).unwrap();
            assert_eq!(m.metadata.response_code, ResponseCode::NoError);
            assert_eq!(m.metadata.id, u16::from(n) + 1);
        }
        (
            self.slow_queries() - before.0,
            self.fast_queries() - before.1,
        )
    }

    fn slow_queries(&self) -> usize {
        Counters::get(&self.slow.counters().queries)
    }

    fn fast_queries(&self) -> usize {
        Counters::get(&self.fast.counters().queries)
    }
}

#[tokio::test]
async fn ordered_sends_everything_to_the_first() {
    let p = pair(Strategy::Ordered).await;
    assert_eq!(p.pool.strategy(), Strategy::Ordered);
    let (slow, fast) = p.run(40).await;
    assert_eq!((slow, fast), (40, 0));
}

#[tokio::test]
async fn round_robin_splits_evenly() {
    let p = pair(Strategy::RoundRobin).await;
    let (slow, fast) = p.run(40).await;
    assert_eq!(slow + fast, 40);
    assert!(slow.abs_diff(fast) <= 2, "slow {slow}, fast {fast}");
}

#[tokio::test]
async fn fastest_prefers_the_fast_one_and_still_probes_the_slow_one() {
    let p = pair(Strategy::Fastest).await;
    // Warm-up: both get measured.
    let (slow, fast) = p.run(10).await;
    assert!(slow >= 1 && fast >= 1, "warm-up: slow {slow}, fast {fast}");
    let (slow, fast) = p.run(60).await;
    assert_eq!(slow + fast, 60);
    assert!(fast * 100 >= 60 * 80, "fast got {fast} of 60");
    assert!(slow >= 1, "the slow upstream was never probed");
    let stats = p.pool.stats();
    let estimate = |i: usize| stats[i].latency_estimate.unwrap();
    assert!(
        estimate(0) > estimate(1),
        "estimates: slow {:?}, fast {:?}",
        estimate(0),
        estimate(1)
    );
}

#[tokio::test]
async fn fastest_fails_over_when_the_fast_one_breaks() {
    let p = pair(Strategy::Fastest).await;
    p.run(10).await;
    // The fast server now closes every connection on the first query, unanswered.
    p.fast.set(Fault::Kill);
    let (slow, _) = p.run(10).await;
    assert!(
        slow >= 9,
        "slow answered {slow} of 10 after the fast one broke"
    );
    let health = p.pool.health();
    assert!(health[1].consecutive_failures >= 1, "{health:?}");
}
