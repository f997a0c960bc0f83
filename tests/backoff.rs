//! Dial backoff under sustained load (issue 16), through the whole path.
//!
//! Real stub front end (UDP on 127.0.0.1:0) → [`Pool`] → DoT / DoH transports with the real
//! CT verifier → the test kit's in-process servers (set up by `tests/faults`) presenting the rogue certificate (a
//! valid chain, CT-logged by two operators, that only the issuer pin refuses). A UDP client
//! sends 500 queries per second for 10 s; every query must be answered SERVFAIL within the
//! stub's deadline, while each refused upstream sees only a handful of TCP connections
//! (counted at the server): one per backoff interval, not one per query.
//!
//! Also: an upstream that turns honest is used again within the backoff cap, and when every
//! upstream fails the chain rule the "TLS is likely intercepted" warning is logged once.

mod faults;

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ctdns::stub::{self, CacheOptions, StubHandle, StubOptions};
use ctdns::upstream::pool::{Pool, PoolOptions, UpstreamHealth};
use ctdns::upstream::{Transport, UpstreamError};
use faults::client::{ask, classify, query, Outcome};
use faults::{
    ClientTimeouts, Counters, Fault, FaultPki, FaultyServer, FaultyTransport, Kind, RefusalLog,
};
use tokio::net::UdpSocket;

/// The stub's query timeout: every client query is answered within it (plus slack).
const STUB_TIMEOUT: Duration = Duration::from_millis(1500);
/// The pool's overall deadline (inside the stub's).
const POOL_TIMEOUT: Duration = Duration::from_millis(1200);
/// Scheduling slack on a machine shared with other builds.
const SLACK: Duration = Duration::from_millis(500);
/// Client load.
const QPS: u32 = 500;
const LOAD: Duration = Duration::from_secs(10);
/// With the default backoff (5 s after a refusal, doubling, ±20 %), 10 s hold at most 3
/// dials; allow a few more for scheduling.
const MAX_DIALS_PER_UPSTREAM: usize = 5;

fn timeouts() -> ClientTimeouts {
    ClientTimeouts {
        connect: Duration::from_millis(800),
        query: POOL_TIMEOUT,
        stall: Duration::from_millis(500),
    }
}

async fn start_stub(pool: Arc<Pool>) -> (StubHandle, SocketAddr) {
    let stub = stub::bind(StubOptions {
        listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
        query_timeout: STUB_TIMEOUT,
        cache: CacheOptions::disabled(),
        ..StubOptions::default()
    })
    .await
    .expect("stub binds on loopback")
    .start(pool as Arc<dyn Transport>);
    let udp = stub.udp_addrs()[0];
    (stub, udp)
}

/// What the load generator saw.
#[derive(Debug, Default)]
struct LoadReport {
    sent: usize,
    servfail: usize,
    other: Vec<String>,
    unanswered: usize,
    max_latency: Duration,
}

/// A query's outcome and latency, once answered.
type Answered = Option<(Outcome, Duration)>;

/// Sends `qps` distinct queries per second for `duration` from one UDP socket to `server`,
/// then waits for the last answers; classifies every answer.
async fn load(server: SocketAddr, qps: u32, duration: Duration, tag: &str) -> LoadReport {
    let sock = Arc::new(
        UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("client socket"),
    );
    let total = usize::try_from(u64::from(qps) * duration.as_secs()).expect("query count");
    assert!(total <= usize::from(u16::MAX), "one ID per query");
    let name = |i: usize| format!("l{i}.{tag}.test.");
    // Per query: when it was sent, and what came back when.
    let sent: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; total]));
    let got: Arc<Mutex<Vec<Answered>>> = Arc::new(Mutex::new(vec![None; total]));
    let receiver = {
        let (sock, sent, got) = (Arc::clone(&sock), Arc::clone(&sent), Arc::clone(&got));
        let tag = tag.to_owned();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, _)) = sock.recv_from(&mut buf).await else {
                    return;
                };
                let now = Instant::now();
                let Some(id) = buf
                    .get(..2)
                    .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
                else {
                    continue;
                };
                let at = sent
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(id)
                    .copied()
                    .flatten();
                let Some(at) = at else {
                    continue;
                };
                let id16 = u16::try_from(id).expect("ID fits");
                let outcome = classify(id16, &format!("l{id}.{tag}.test."), &buf[..n]);
                if let Some(slot) = got
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_mut(id)
                {
                    *slot = Some((outcome, now - at));
                }
            }
        })
    };
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / qps);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for i in 0..total {
        ticks.tick().await;
        let id = u16::try_from(i).expect("ID fits");
        let msg = query(id, &name(i), None);
        if let Some(slot) = sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(i)
        {
            *slot = Some(Instant::now());
        }
        sock.send_to(&msg, server).await.expect("send query");
    }
    // The last answers are due within the stub's deadline.
    let wait_until = Instant::now() + STUB_TIMEOUT + SLACK + Duration::from_secs(1);
    while Instant::now() < wait_until {
        if got
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .all(Option::is_some)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    receiver.abort();
    let mut report = LoadReport {
        sent: total,
        ..LoadReport::default()
    };
    for answer in got.lock().unwrap_or_else(PoisonError::into_inner).iter() {
        match answer {
            None => report.unanswered += 1,
            Some((outcome, took)) => {
                report.max_latency = report.max_latency.max(*took);
                match outcome {
                    Outcome::ServFail => report.servfail += 1,
                    other => report.other.push(format!("{other:?}")),
                }
            }
        }
    }
    report
}

fn assert_all_servfail_in_time(report: &LoadReport) {
    assert_eq!(
        report.servfail, report.sent,
        "every query answered SERVFAIL: {report:?}"
    );
    assert!(
        report.max_latency <= STUB_TIMEOUT + SLACK,
        "slowest answer {:?} past the deadline {STUB_TIMEOUT:?} + {SLACK:?}",
        report.max_latency
    );
}

/// Checks one refused upstream after the load: few connections, all refused, none carried
/// DNS, and the pool's counters agree with the server's.
fn assert_few_dials(server: &FaultyServer, health: &UpstreamHealth, report: &LoadReport) {
    let accepted = Counters::get(&server.counters().tcp_accepted);
    eprintln!(
        "{}: {accepted} TCP connections for {} queries; pool: {} dials, {} refusals, {} skipped",
        health.name, report.sent, health.dials, health.refusals, health.skipped_by_backoff
    );
    assert!(
        (1..=MAX_DIALS_PER_UPSTREAM).contains(&accepted),
        "{}: {accepted} TCP connections in {LOAD:?} at {QPS} QPS",
        health.name
    );
    assert_eq!(
        u64::try_from(accepted).expect("count"),
        health.dials,
        "{}: the pool counts every dial the server saw",
        health.name
    );
    assert_eq!(health.refusals, health.dials, "{}", health.name);
    assert_eq!(health.refusal_rule, Some("issuer-pin"), "{}", health.name);
    assert!(health.dial_failures >= 1, "{health:?}");
    assert_eq!(Counters::bytes(&server.counters().rogue_app_bytes), 0);
    assert_eq!(Counters::get(&server.counters().rogue_handshakes), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_refused_upstream_is_dialed_a_handful_of_times_under_load() {
    let pki = FaultPki::generate();
    let rogue = faults::start(Kind::Dot, &pki, Fault::RogueCert).await;
    let refusals = Arc::new(RefusalLog::default());
    let pool = Arc::new(Pool::new(
        vec![rogue.transport(&pki, Arc::clone(&refusals), timeouts())],
        PoolOptions {
            query_timeout: POOL_TIMEOUT,
            per_attempt_timeout: POOL_TIMEOUT / 2,
            ..PoolOptions::default()
        },
    ));
    let (stub, udp) = start_stub(Arc::clone(&pool)).await;
    let report = load(udp, QPS, LOAD, "lone").await;
    let health = pool.health();
    stub.shutdown().await;
    assert_all_servfail_in_time(&report);
    assert_few_dials(&rogue, &health[0], &report);
    let skipped = usize::try_from(health[0].skipped_by_backoff).expect("count");
    assert!(
        skipped + MAX_DIALS_PER_UPSTREAM * 100 >= report.sent,
        "most queries skip the upstream: {health:?}"
    );
    assert!(refusals
        .entries()
        .iter()
        .all(|(_, rule, _)| *rule == "issuer-pin"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_upstream_refused_each_is_dialed_a_handful_of_times_under_load() {
    let pki = FaultPki::generate();
    let refusals = Arc::new(RefusalLog::default());
    let mut servers = Vec::new();
    for kind in [Kind::Dot, Kind::Dot, Kind::Doh, Kind::Doh] {
        servers.push(faults::start(kind, &pki, Fault::RogueCert).await);
    }
    let pool = Arc::new(Pool::new(
        servers
            .iter()
            .map(|s| s.transport(&pki, Arc::clone(&refusals), timeouts()))
            .collect(),
        PoolOptions {
            query_timeout: POOL_TIMEOUT,
            per_attempt_timeout: POOL_TIMEOUT / 4,
            ..PoolOptions::default()
        },
    ));
    let (stub, udp) = start_stub(Arc::clone(&pool)).await;
    let report = load(udp, QPS, LOAD, "all").await;
    let health = pool.health();
    stub.shutdown().await;
    assert_all_servfail_in_time(&report);
    for (server, h) in servers.iter().zip(&health) {
        assert_few_dials(server, h, &report);
    }
    // Queries that found every upstream backing off were answered without any dial.
    match pool.query(&query(1, "after.all.test.", None)).await {
        Err(UpstreamError::BackingOff { upstreams: 4, .. }) => {}
        other => panic!("expected BackingOff over 4 upstreams, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_turns_honest_is_used_again_within_the_backoff_cap() {
    const CAP: Duration = Duration::from_millis(600);
    let pki = FaultPki::generate();
    let server = faults::start(Kind::Dot, &pki, Fault::RogueCert).await;
    let refusals = Arc::new(RefusalLog::default());
    let pool = Arc::new(Pool::new(
        vec![server.transport(&pki, Arc::clone(&refusals), timeouts())],
        PoolOptions {
            query_timeout: POOL_TIMEOUT,
            per_attempt_timeout: POOL_TIMEOUT / 2,
            backoff_initial: Duration::from_millis(100),
            refusal_backoff_initial: Duration::from_millis(200),
            backoff_max: CAP,
            ..PoolOptions::default()
        },
    ));
    let (stub, udp) = start_stub(Arc::clone(&pool)).await;
    // 2 s of refusals at 100 QPS: backoff 200 ms, 400 ms, then 600 ms (the cap).
    let report = load(udp, 100, Duration::from_secs(2), "turn").await;
    assert_all_servfail_in_time(&report);
    let refused_dials = Counters::get(&server.counters().tcp_accepted);
    assert!(
        (2..=6).contains(&refused_dials),
        "{refused_dials} dials in 2 s with a 200 ms..600 ms backoff"
    );
    assert!(pool.health()[0].dial_failures >= 2);

    // The upstream turns honest (new connections get the honest certificate).
    server.set(Fault::Honest);
    let switched = Instant::now();
    let mut back = None;
    let mut n = 0u16;
    while switched.elapsed() < CAP + SLACK + Duration::from_secs(1) {
        n += 1;
        let (outcome, _) = ask(
            udp,
            false,
            n,
            &format!("b{n}.turn.test."),
            STUB_TIMEOUT + SLACK,
        )
        .await;
        if outcome == Outcome::Correct {
            back = Some(switched.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let health = pool.health();
    stub.shutdown().await;
    let back = back.expect("the upstream is used again once honest");
    eprintln!("used again {back:?} after turning honest (cap {CAP:?})");
    assert!(
        back <= CAP + SLACK,
        "used again after {back:?}, cap {CAP:?}"
    );
    assert_eq!(health[0].dial_failures, 0, "{health:?}");
    assert_eq!(health[0].backoff_for, None);
    assert!(Counters::get(&server.counters().answered) >= 1);
}

/// Captured log output (a `tracing` writer).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const INTERCEPTED: &str = "likely intercepting TLS";

/// Every upstream presents a chain from a CA the client does not trust (as a TLS-inspecting
/// proxy would): the warning is logged once over many queries and probes, not per query.
/// (Single-threaded runtime: the capturing subscriber is the thread's default.)
#[tokio::test]
async fn interception_is_warned_once_when_every_chain_is_refused() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let served = FaultPki::generate();
    let trusted = FaultPki::generate();
    let servers = [
        faults::start(Kind::Dot, &served, Fault::Honest).await,
        faults::start(Kind::Doh, &served, Fault::Honest).await,
    ];
    let refusals = Arc::new(RefusalLog::default());
    let pool = Pool::new(
        servers
            .iter()
            .map(|s| s.transport(&trusted, Arc::clone(&refusals), timeouts()))
            .collect(),
        PoolOptions {
            query_timeout: POOL_TIMEOUT,
            per_attempt_timeout: POOL_TIMEOUT / 2,
            backoff_initial: Duration::from_millis(50),
            refusal_backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_millis(100),
            ..PoolOptions::default()
        },
    );
    let started = Instant::now();
    let mut i = 0u16;
    while started.elapsed() < Duration::from_millis(700) {
        i += 1;
        assert!(pool.query(&query(i, "i.test.", None)).await.is_err());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let health = pool.health();
    for h in &health {
        assert_eq!(h.refusal_rule, Some("chain"), "{h:?}");
        assert!(h.dials >= 3, "probed several times: {h:?}");
    }
    let _ = std::io::stderr().flush();
    let text = captured.text();
    assert_eq!(
        text.matches(INTERCEPTED).count(),
        1,
        "one warning for {i} queries and {} dials:\n{text}",
        health.iter().map(|h| h.dials).sum::<u64>()
    );
    // It names the issuer the network presented.
    let line = text
        .lines()
        .find(|l| l.contains(INTERCEPTED))
        .unwrap_or_default();
    assert!(line.contains("issuer=\""), "{line}");
    assert!(!line.contains("issuer=\"-\""), "{line}");
}
