//! The fault matrix: every upstream fault, through the whole path.
//!
//! Real stub front end (UDP and TCP on 127.0.0.1:0) → [`Pool`] → DoT or DoH transport with
//! the real CT verifier (test PKI roots, its CT log list, the honest intermediate pinned) →
//! the test kit's in-process servers (set up by `tests/faults`). For each fault and transport, with two
//! upstreams (faulty first, honest second) and with the faulty one alone, the faulty server
//! first answers honestly (one query opens a verified connection to it), then the fault is
//! switched on: faults on a query strike that live connection; faults on the handshake
//! (fatal alert, stalled handshake, rogue certificate) come with the server closing its
//! connections, so the client meets them when it reconnects (the certificate changes
//! between connections). Then concurrent client
//! queries over UDP and TCP must each get a response, correct or SERVFAIL, within the stub's
//! query timeout (a correctness deadline, measured per query); the stub must keep answering
//! other clients meanwhile; once the fault is switched off it must answer correctly again
//! within 1 s (and with two upstreams, go back to the first). A rogue certificate must be
//! refused by the issuer pin before any application byte reaches the server.
//!
//! The matrix is printed (`cargo test --test fault_matrix -- --nocapture`) and written to
//! `target/tmp/fault-matrix-{dot,doh}.md`.

mod faults;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ctdns::stub::{self, CacheOptions, StubOptions};
use ctdns::upstream::pool::{Pool, PoolOptions};
use ctdns::upstream::{Transport, UpstreamError};
use faults::client::{ask, classify, query, udp_exchange, Outcome};
use faults::{ClientTimeouts, Counters, Fault, FaultPki, FaultyTransport, Kind, RefusalLog};
use hickory_proto::op::{Message, ResponseCode};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// The stub's query timeout: every client query is answered (or SERVFAILed) within it.
const STUB_TIMEOUT: Duration = Duration::from_millis(1200);
/// The pool's overall deadline (inside the stub's).
const POOL_TIMEOUT: Duration = Duration::from_millis(1000);
/// The pool's limit on one upstream attempt when another upstream is left to try.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(400);
/// Scheduling slack on top of the deadline (two cores shared with the test's own load).
const SLACK: Duration = Duration::from_millis(400);
/// How soon after the fault is switched off a query must be answered correctly again.
const RECOVERY: Duration = Duration::from_secs(1);
/// The pool's longest backoff: with two upstreams, the first is used again within it.
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Concurrent client queries per protocol per scenario.
const CLIENTS: usize = 8;
/// Scenarios run at once.
const PARALLEL: usize = 6;
/// How long a client waits before calling a query unanswered (well past the deadline, so
/// a late answer is measured as late rather than lost).
const CLIENT_WAIT: Duration = Duration::from_secs(4);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    /// Faulty first, honest second.
    Failover,
    /// The faulty upstream alone.
    Single,
}

impl Setup {
    fn label(self) -> &'static str {
        match self {
            Setup::Failover => "faulty+honest",
            Setup::Single => "faulty only",
        }
    }
}

/// What one scenario observed.
struct Row {
    kind: Kind,
    fault: Fault,
    setup: Setup,
    correct: usize,
    servfail: usize,
    bad: Vec<String>,
    max_latency: Duration,
    probe_latency: Duration,
    recovery: Option<Duration>,
    primary_back: Option<Duration>,
    notes: String,
    failures: Vec<String>,
}

/// The outcome a scenario must produce during the fault: all answers correct, or all
/// SERVFAIL.
fn expect_all_correct(kind: Kind, fault: Fault, setup: Setup) -> bool {
    match setup {
        Setup::Failover => true,
        // RFC 8484 §4.1: over DoH the response is bound to its HTTP stream and the DNS ID
        // carries nothing; the client restores its own ID whatever the server put there.
        Setup::Single => fault == Fault::Honest || (kind == Kind::Doh && fault == Fault::WrongId),
    }
}

/// A NOTIMP-bound message (opcode STATUS): answered by the stub itself, never upstream.
fn status_probe(id: u16) -> Vec<u8> {
    let mut msg = query(id, "probe.test.", None);
    if let Some(flags) = msg.get_mut(2) {
        *flags = (*flags & 0x87) | (2 << 3);
    }
    msg
}

async fn scenario(pki: Arc<FaultPki>, kind: Kind, fault: Fault, setup: Setup, tag: usize) -> Row {
    let mut failures = Vec::new();
    let timeouts = ClientTimeouts {
        connect: ATTEMPT_TIMEOUT,
        query: POOL_TIMEOUT,
        stall: Duration::from_millis(300),
    };
    let faulty = faults::start(kind, &pki, Fault::Honest).await;
    let honest = match setup {
        Setup::Failover => Some(faults::start(kind, &pki, Fault::Honest).await),
        Setup::Single => None,
    };
    let refusals = Arc::new(RefusalLog::default());
    let faulty_transport = faulty.transport(&pki, Arc::clone(&refusals), timeouts);
    let mut transports: Vec<Arc<dyn Transport>> = vec![Arc::clone(&faulty_transport)];
    if let Some(h) = &honest {
        transports.push(h.transport(&pki, Arc::clone(&refusals), timeouts));
    }
    let pool = Arc::new(Pool::new(
        transports,
        PoolOptions {
            query_timeout: POOL_TIMEOUT,
            per_attempt_timeout: ATTEMPT_TIMEOUT,
            backoff_initial: Duration::from_millis(100),
            refusal_backoff_initial: Duration::from_millis(300),
            backoff_max: BACKOFF_MAX,
            ..PoolOptions::default()
        },
    ));
    let stub = stub::bind(StubOptions {
        listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
        query_timeout: STUB_TIMEOUT,
        cache: CacheOptions::disabled(),
        ..StubOptions::default()
    })
    .await
    .expect("stub binds on loopback")
    .start(Arc::clone(&pool) as Arc<dyn Transport>);
    let udp = stub.udp_addrs()[0];
    let tcp = stub.tcp_addrs()[0];

    // Warm-up: a verified connection to the (still honest) first upstream, then the fault.
    let warm_name = format!("w.s{tag}.test.");
    let (warm, _) = ask(udp, false, 0xAAAA, &warm_name, CLIENT_WAIT).await;
    if warm != Outcome::Correct || Counters::get(&faulty.counters().answered) != 1 {
        failures.push(format!("warm-up through the first upstream: {warm:?}"));
    }
    let warm_bytes = Counters::bytes(&faulty.counters().app_bytes);
    faulty.set(fault);
    if matches!(
        fault,
        Fault::FatalAlert | Fault::StallHandshake | Fault::RogueCert
    ) {
        faulty.drop_connections();
        // Let the close reach both ends before the burst: otherwise a burst racing the
        // close can still be answered on the old, verified connection.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Fault phase: concurrent clients over UDP and TCP, plus a probe the stub answers itself.
    let mut clients = JoinSet::new();
    for i in 0..2 * CLIENTS {
        let over_tcp = i % 2 == 1;
        let server = if over_tcp { tcp } else { udp };
        let name = format!("c{i}.s{tag}.test.");
        clients.spawn(async move { ask(server, over_tcp, i as u16 + 1, &name, CLIENT_WAIT).await });
    }
    let probe = tokio::spawn(async move {
        let (response, took) = udp_exchange(udp, &status_probe(0xBEEF), CLIENT_WAIT).await;
        let rcode = response
            .and_then(|r| Message::from_vec(&r).ok())
            .map(|m| (m.metadata.id, m.metadata.response_code));
        (rcode, took)
    });
    let (mut correct, mut servfail, mut bad) = (0, 0, Vec::new());
    let mut max_latency = Duration::ZERO;
    while let Some(joined) = clients.join_next().await {
        let (outcome, took) = joined.expect("client task");
        max_latency = max_latency.max(took);
        match outcome {
            Outcome::Correct => correct += 1,
            Outcome::ServFail => servfail += 1,
            other => bad.push(format!("{other:?}")),
        }
    }
    let (probe_rcode, probe_latency) = probe.await.expect("probe task");
    let total = 2 * CLIENTS;
    if !bad.is_empty() {
        failures.push(format!("responses neither correct nor SERVFAIL: {bad:?}"));
    }
    if max_latency > STUB_TIMEOUT + SLACK {
        failures.push(format!(
            "slowest response took {max_latency:?}, deadline {STUB_TIMEOUT:?} + {SLACK:?}"
        ));
    }
    if expect_all_correct(kind, fault, setup) {
        if correct != total {
            failures.push(format!(
                "expected {total} correct answers, got {correct}; slowest {max_latency:?}; pool health {:?}",
                pool.health()
            ));
        }
    } else if servfail != total {
        failures.push(format!(
            "expected {total} SERVFAIL, got {servfail}; pool health {:?}",
            pool.health()
        ));
    }
    if probe_rcode != Some((0xBEEF, ResponseCode::NotImp)) {
        failures.push(format!("status probe got {probe_rcode:?}, expected NOTIMP"));
    }
    if probe_latency >= STUB_TIMEOUT / 2 {
        failures.push(format!(
            "the stub took {probe_latency:?} to answer a query it answers itself"
        ));
    }

    // The fault was exercised, and only the rogue certificate was refused.
    let c = faulty.counters();
    let entries = refusals.entries();
    let mut notes = String::new();
    match fault {
        Fault::StallHandshake => {
            // Under load the pool may serve the whole burst from the honest upstream after
            // the old connection was dropped: ask the faulty one directly so the fault is
            // exercised at least once.
            if Counters::get(&c.handshakes_stalled) == 0 {
                let _ = faulty_transport.query(&query(8, "stall.test.", None)).await;
            }
            if Counters::get(&c.handshakes_stalled) == 0 {
                failures.push("no handshake was stalled".into());
            }
        }
        Fault::FatalAlert => {
            if Counters::get(&c.alerts_sent) == 0 {
                let _ = faulty_transport.query(&query(8, "alert.test.", None)).await;
            }
            if Counters::get(&c.alerts_sent) == 0 {
                failures.push("no alert was sent".into());
            }
        }
        Fault::RogueCert => {
            // What the operator reads: the upstream error names the rule. Asking the faulty
            // upstream directly also guarantees the rogue certificate is offered at least
            // once: under load the pool may have served the whole burst from the honest
            // upstream after the old connection was dropped.
            match faulty_transport.query(&query(9, "rogue.test.", None)).await {
                Err(e @ UpstreamError::Refused { .. })
                    if e.to_string().contains("rule issuer-pin") => {}
                other => failures.push(format!(
                    "a direct query to the rogue upstream should fail naming issuer-pin: {other:?}"
                )),
            }
            let entries = refusals.entries();
            let offered = Counters::get(&c.rogue_offered);
            let bytes = Counters::bytes(&c.rogue_app_bytes);
            if offered == 0 {
                failures.push("the rogue certificate was never offered".into());
            }
            // The honest connection before it did carry DNS: the counter works.
            if warm_bytes == 0 {
                failures.push("the honest warm-up connection counted no application bytes".into());
            }
            if bytes != 0 || Counters::get(&c.rogue_handshakes) != 0 {
                failures.push(format!(
                    "rogue connections completed {} handshakes and received {bytes} application bytes",
                    Counters::get(&c.rogue_handshakes)
                ));
            }
            if entries.is_empty() || entries.iter().any(|(_, rule, _)| *rule != "issuer-pin") {
                failures.push(format!("refusals should all name issuer-pin: {entries:?}"));
            }
            let _ = write!(
                notes,
                "honest conn first ({warm_bytes} app bytes), then refused {}× by issuer-pin: {offered} rogue conns, {bytes} app bytes",
                entries.len()
            );
        }
        _ => {
            if Counters::get(&c.queries) == 0 {
                failures.push("the faulty server never received a query".into());
            }
        }
    }
    if fault != Fault::RogueCert && !entries.is_empty() {
        failures.push(format!("unexpected certificate refusals: {entries:?}"));
    }

    // Switch the fault off: correct answers again within RECOVERY.
    faulty.set(Fault::Honest);
    let answered_before = Counters::get(&c.answered);
    let switched = Instant::now();
    let mut recovery = None;
    let mut n = 0u16;
    while switched.elapsed() <= RECOVERY {
        n += 1;
        let name = format!("r{n}.s{tag}.test.");
        let over_tcp = n.is_multiple_of(2);
        let server = if over_tcp { tcp } else { udp };
        let (outcome, _) = ask(server, over_tcp, 1000 + n, &name, CLIENT_WAIT).await;
        if outcome == Outcome::Correct {
            recovery = Some(switched.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    match recovery {
        Some(t) if t <= RECOVERY => {}
        other => failures.push(format!(
            "no correct answer within {RECOVERY:?} of the fault ending ({other:?})"
        )),
    }

    // With two upstreams, the first is used again once its backoff ends.
    let mut primary_back = None;
    if setup == Setup::Failover {
        let faulty_counters = Arc::clone(faulty.counters());
        let start = Instant::now();
        let mut m = 0u16;
        let back = eventually_async(
            BACKOFF_MAX + Duration::from_secs(1),
            || {
                m += 1;
                let name = format!("p{m}.s{tag}.test.");
                let id = 2000 + m;
                async move {
                    let (outcome, _) = ask(udp, false, id, &name, CLIENT_WAIT).await;
                    outcome == Outcome::Correct
                }
            },
            || Counters::get(&faulty_counters.answered) > answered_before,
        )
        .await;
        if back {
            primary_back = Some(start.elapsed());
        } else {
            failures.push("the pool never went back to the first upstream".into());
        }
    }

    stub.shutdown().await;
    drop(faulty);
    drop(honest);
    Row {
        kind,
        fault,
        setup,
        correct,
        servfail,
        bad,
        max_latency,
        probe_latency,
        recovery,
        primary_back,
        notes,
        failures,
    }
}

/// Runs `step` (a query that must succeed) every 50 ms until `done` holds or `within` passes.
async fn eventually_async<F, Fut>(
    within: Duration,
    mut step: F,
    mut done: impl FnMut() -> bool,
) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() <= within {
        let _ = step().await;
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| transport | fault | upstreams | {n} queries (UDP+TCP) | slowest | stub-local probe | correct again after | back on first | notes |",
        n = 2 * CLIENTS
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let outcome = match (r.correct, r.servfail, r.bad.len()) {
            (c, 0, 0) => format!("{c} correct"),
            (0, s, 0) => format!("{s} SERVFAIL"),
            (c, s, b) => format!("{c} correct, {s} SERVFAIL, {b} bad"),
        };
        let verdict = if r.failures.is_empty() {
            ""
        } else {
            " **FAILED**"
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {outcome}{verdict} | {} | {} | {} | {} | {} |",
            r.kind.label(),
            r.fault.label(),
            r.setup.label(),
            ms(r.max_latency),
            ms(r.probe_latency),
            r.recovery.map_or("never".into(), ms),
            r.primary_back.map_or("-".into(), ms),
            r.notes,
        );
    }
    out
}

async fn run_matrix(kind: Kind) {
    let pki = Arc::new(FaultPki::generate());
    let limit = Arc::new(Semaphore::new(PARALLEL));
    let mut scenarios = JoinSet::new();
    let mut tag = 0;
    for &fault in kind.faults() {
        for setup in [Setup::Failover, Setup::Single] {
            tag += 1;
            let (pki, limit) = (Arc::clone(&pki), Arc::clone(&limit));
            scenarios.spawn(async move {
                let _permit = limit.acquire_owned().await.expect("semaphore");
                scenario(pki, kind, fault, setup, tag).await
            });
        }
    }
    let mut rows = Vec::new();
    while let Some(row) = scenarios.join_next().await {
        rows.push(row.expect("scenario task"));
    }
    let order = |r: &Row| {
        let f = kind
            .faults()
            .iter()
            .position(|&f| f == r.fault)
            .unwrap_or(usize::MAX);
        (f, r.setup == Setup::Single)
    };
    rows.sort_by_key(order);
    let text = table(&rows);
    println!(
        "\nFault matrix ({}), stub query timeout {}:\n{text}",
        kind.label(),
        ms(STUB_TIMEOUT)
    );
    let file = format!(
        "{}/fault-matrix-{}.md",
        env!("CARGO_TARGET_TMPDIR"),
        kind.label().to_ascii_lowercase()
    );
    let header = format!(
        "# Fault matrix: {}\n\nStub query timeout {}, pool deadline {}, per-attempt {}, {} concurrent clients per scenario.\n\n",
        kind.label(),
        ms(STUB_TIMEOUT),
        ms(POOL_TIMEOUT),
        ms(ATTEMPT_TIMEOUT),
        2 * CLIENTS
    );
    std::fs::write(&file, header + &text).expect("write the matrix file");
    let failed: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            r.failures.iter().map(move |f| {
                format!(
                    "{} / {} / {}: {f}",
                    r.kind.label(),
                    r.fault.label(),
                    r.setup.label()
                )
            })
        })
        .collect();
    assert!(
        failed.is_empty(),
        "fault matrix failures:\n{}",
        failed.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_fault_matrix() {
    run_matrix(Kind::Dot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doh_fault_matrix() {
    run_matrix(Kind::Doh).await;
}

#[test]
fn classify_tells_correct_from_servfail_and_wrong() {
    let name = "x.test.";
    let q = query(7, name, None);
    let good = faults::answer(&q).expect("answer");
    assert_eq!(classify(7, name, &good), Outcome::Correct);
    assert!(matches!(classify(8, name, &good), Outcome::Wrong(_)));
    let mut m = Message::from_vec(&good).expect("decodes");
    m.answers.clear();
    m.metadata.response_code = ResponseCode::ServFail;
    assert_eq!(
        classify(7, name, &m.to_vec().expect("encodes")),
        Outcome::ServFail
    );
    assert!(matches!(classify(7, "y.test.", &good), Outcome::Wrong(_)));
}
