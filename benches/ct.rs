//! Micro-benchmarks of the CT path: SCT signatures (ECDSA and RSA), log lookup in the bundled
//! list, the precertificate TBS splice, the CT policy decision, the whole `CtVerifier::verify`
//! (chain + IP SAN + CT), and full TLS 1.3 handshakes on loopback with the CT verifier and with
//! plain webpki for comparison.
//!
//! Everything is real: the test PKI signs certificates and SCTs with real keys, handshakes run
//! over loopback TCP. After criterion, `cargo bench --bench ct` times the CT check and the
//! handshake in its own loop and prints the share of the handshake spent in the CT check
//! (goal: below 10 %).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use ctdns::ct::cert::LeafCert;
use ctdns::ct::checker::CtChecker;
use ctdns::ct::log_list::LogList;
use ctdns::ct::policy::CtPolicy;
use ctdns::ct::signature::{default_algorithms, verify_sct_signature};
use ctdns::ct::signed_data::SignedEntry;
use ctdns::ct::{LogId, Sct};
use ctdns::pki::{default_logs, unix_ms, IssuedLeaf, PkiOptions, SctSpec, TestPki};
use ctdns::tls::{client_config, CtVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::pki_types::{ServerName, UnixTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The PKI, a leaf for 127.0.0.1 with three embedded SCTs (Alpha/ECDSA, Beta/ECDSA,
/// Gamma/RSA: three operators) and the log list naming the PKI's logs.
struct Fixture {
    pki: TestPki,
    leaf: IssuedLeaf,
    logs: Arc<LogList>,
}

impl Fixture {
    fn new() -> Self {
        let pki = TestPki::generate(&PkiOptions::default()).expect("test PKI");
        let ts = pki.now() - time::Duration::minutes(5);
        let spec = pki
            .leaf_spec(LOOPBACK)
            .embed(SctSpec::at(default_logs::ALPHA, ts))
            .embed(SctSpec::at(default_logs::BETA, ts))
            .embed(SctSpec::at(default_logs::GAMMA, ts));
        let leaf = pki.issue_leaf(&spec).expect("3-SCT leaf");
        let json = pki.log_list_json(pki.now()).expect("log list JSON");
        let logs = Arc::new(LogList::from_json(json.as_bytes()).expect("log list parses"));
        Self { pki, leaf, logs }
    }

    /// A checker with a fresh (empty) SCT signature memo: first contact.
    fn checker(&self) -> CtChecker {
        CtChecker::new(self.logs.clone(), CtPolicy::chrome())
    }

    /// A verifier with a fresh signature memo; pass `memo = false` for one without.
    fn verifier_with(&self, memo: bool) -> CtVerifier {
        let roots = ctdns::tls::roots::anchors_from_der(&[self.pki.root().der().clone()], "root")
            .expect("root anchor");
        let checker = if memo {
            self.checker()
        } else {
            self.checker().without_signature_memo()
        };
        CtVerifier::new(Arc::new(roots), checker)
    }

    fn verifier(&self) -> CtVerifier {
        self.verifier_with(true)
    }

    /// The embedded SCT signed by the log named `name`, and that log's SPKI.
    fn sct_of(&self, name: &str) -> (&Sct, &[u8]) {
        let log = self.pki.log(name).expect("log exists");
        let id = log.log_id();
        let sct = self
            .leaf
            .embedded_scts
            .iter()
            .find(|s| s.log_id == id)
            .expect("leaf carries the log's SCT");
        (sct, log.spki_der())
    }

    fn now_ms(&self) -> u64 {
        unix_ms(self.pki.now())
    }
}

fn quick(c: &mut Criterion) -> criterion::BenchmarkGroup<'_, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group("ct");
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g
}

fn bench_sct_signatures(c: &mut Criterion, fx: &Fixture) {
    let mut g = quick(c);
    let entry = SignedEntry::Precert {
        issuer_key_hash: fx.leaf.issuer_key_hash(),
        tbs: &fx.leaf.signed_tbs,
    };
    for (label, log) in [
        ("sct_verify/ecdsa_p256", default_logs::ALPHA),
        ("sct_verify/rsa_2048", default_logs::GAMMA),
    ] {
        let (sct, spki) = fx.sct_of(log);
        verify_sct_signature(sct, entry, spki, default_algorithms()).expect("valid SCT");
        g.bench_function(label, |b| {
            b.iter(|| verify_sct_signature(black_box(sct), entry, spki, default_algorithms()))
        });
    }
    g.finish();
}

fn bench_log_lookup(c: &mut Criterion) {
    let list = LogList::bundled().expect("bundled log list");
    let ids: Vec<LogId> = list.logs().iter().map(|l| l.id).collect();
    let Some(&present) = ids.get(ids.len() / 2) else {
        return;
    };
    let absent = LogId([0x5a; 32]);
    assert!(list.get(&present).is_some() && list.get(&absent).is_none());
    let mut g = quick(c);
    g.bench_function(format!("log_lookup/bundled_hit({} logs)", ids.len()), |b| {
        b.iter(|| list.get(black_box(&present)).is_some())
    });
    g.bench_function("log_lookup/bundled_miss", |b| {
        b.iter(|| list.get(black_box(&absent)).is_some())
    });
    g.finish();
}

fn bench_precert_splice(c: &mut Criterion, fx: &Fixture) {
    let der = fx.leaf.leaf().as_ref();
    let tbs = LeafCert::parse(der)
        .and_then(|l| l.precert_tbs())
        .expect("precert TBS");
    assert_eq!(
        tbs, fx.leaf.signed_tbs,
        "splice rebuilds what the logs signed"
    );
    let mut g = quick(c);
    g.bench_function("precert_tbs/parse+splice", |b| {
        b.iter(|| LeafCert::parse(black_box(der)).and_then(|l| l.precert_tbs()))
    });
    g.finish();
}

fn bench_policy(c: &mut Criterion, fx: &Fixture) {
    let checker = fx.checker();
    let der = fx.leaf.leaf().as_ref();
    let now = fx.now_ms();
    let leaf = LeafCert::parse(der).expect("leaf parses");
    let report = checker
        .check(&leaf, &fx.leaf.issuer_spki, &[], now)
        .expect("CT inputs readable");
    assert!(report.is_compliant(), "3-SCT leaf complies: {report:?}");
    let mut g = quick(c);
    // First contact: a checker with an empty memo each time (every signature verified,
    // plus the memo's key hashing).
    g.bench_function("ct_check/3_scts(first contact)", |b| {
        b.iter(|| {
            let fresh = fx.checker();
            let leaf = LeafCert::parse(black_box(der)).expect("leaf parses");
            fresh.check(&leaf, &fx.leaf.issuer_spki, &[], now)
        })
    });
    // Repeat connection: the same certificate again, signatures answered by the memo.
    g.bench_function("ct_check/3_scts(repeat, memo)", |b| {
        b.iter(|| {
            let leaf = LeafCert::parse(black_box(der)).expect("leaf parses");
            checker.check(&leaf, &fx.leaf.issuer_spki, &[], now)
        })
    });
    g.finish();
}

fn bench_verify(c: &mut Criterion, fx: &Fixture) {
    let verifier = fx.verifier();
    let now = UnixTime::since_unix_epoch(Duration::from_millis(fx.now_ms()));
    let decision = verifier.verify(
        fx.leaf.leaf(),
        fx.leaf.intermediates(),
        Some(LOOPBACK),
        None,
        &[],
        now,
    );
    assert!(decision.accepted(), "{:?}", decision.refusal);
    let mut g = quick(c);
    g.bench_function("ct_verifier/verify(chain+ip+ct)", |b| {
        b.iter(|| {
            verifier.verify(
                black_box(fx.leaf.leaf()),
                fx.leaf.intermediates(),
                Some(LOOPBACK),
                None,
                &[],
                now,
            )
        })
    });
    g.finish();
}

/// A TLS 1.3 server on 127.0.0.1:0 serving the fixture's leaf; each accepted connection
/// completes the handshake, writes one byte and closes.
struct Handshakes {
    rt: tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
    /// CT verifier with a signature memo (warm after the first handshake).
    ct: TlsConnector,
    /// CT verifier without a memo: every handshake pays first-contact CT cost.
    ct_no_memo: TlsConnector,
    webpki: TlsConnector,
    server: tokio::task::JoinHandle<()>,
}

impl Handshakes {
    fn new(fx: &Fixture) -> Self {
        // One thread: client and server share a core, so a handshake's time is its CPU cost
        // plus loopback latency, not a measure of parallelism.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let provider = ctdns::provider::default_provider();
        let server_cfg = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3")
            .with_no_client_auth()
            .with_single_cert(fx.leaf.chain.clone(), fx.leaf.key_der())
            .expect("server cert");
        let acceptor = TlsAcceptor::from(Arc::new(server_cfg));
        let listener = rt
            .block_on(TcpListener::bind((LOOPBACK, 0)))
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let server = rt.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let _ = tls.write_all(b"x").await;
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });

        let ct = TlsConnector::from(
            client_config(Arc::new(fx.verifier()), &[]).expect("CT client config"),
        );
        let ct_no_memo = TlsConnector::from(
            client_config(Arc::new(fx.verifier_with(false)), &[]).expect("CT client config"),
        );
        let roots = fx.pki.root_store(false).expect("root store");
        let plain = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .expect("webpki verifier");
        let mut webpki_cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(plain)
            .with_no_client_auth();
        webpki_cfg.resumption = Resumption::disabled();
        let webpki = TlsConnector::from(Arc::new(webpki_cfg));
        Self {
            rt,
            addr,
            ct,
            ct_no_memo,
            webpki,
            server,
        }
    }

    /// One fresh TCP connection and full handshake, until the server's first byte arrives.
    fn once(&self, connector: &TlsConnector) -> std::io::Result<()> {
        self.rt.block_on(async {
            let tcp = TcpStream::connect(self.addr).await?;
            tcp.set_nodelay(true)?;
            let mut tls = connector
                .connect(ServerName::IpAddress(LOOPBACK.into()), tcp)
                .await?;
            let mut byte = [0u8; 1];
            tls.read_exact(&mut byte).await?;
            Ok(())
        })
    }
}

impl Drop for Handshakes {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn bench_handshakes(c: &mut Criterion, hs: &Handshakes) {
    hs.once(&hs.ct).expect("CT handshake succeeds");
    hs.once(&hs.webpki).expect("webpki handshake succeeds");
    let mut g = c.benchmark_group("tls13_handshake");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g.bench_function("ct_verifier(first contact)", |b| {
        b.iter(|| hs.once(&hs.ct_no_memo))
    });
    g.bench_function("ct_verifier(repeat, memo)", |b| b.iter(|| hs.once(&hs.ct)));
    g.bench_function("webpki_verifier", |b| b.iter(|| hs.once(&hs.webpki)));
    g.finish();
}

fn benches(c: &mut Criterion) {
    let fx = Fixture::new();
    bench_sct_signatures(c, &fx);
    bench_log_lookup(c);
    bench_precert_splice(c, &fx);
    bench_policy(c, &fx);
    bench_verify(c, &fx);
    let hs = Handshakes::new(&fx);
    bench_handshakes(c, &hs);
}

criterion_group!(ct_benches, benches);

/// Median time per call of `f`, over `rounds` rounds of `per_round` calls.
fn median_per_call(rounds: usize, per_round: u32, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..per_round {
                f();
            }
            start.elapsed() / per_round
        })
        .collect();
    times.sort();
    times.get(rounds / 2).copied().unwrap_or_default()
}

/// The share of a full CT-verified handshake spent in the CT check, timed in one loop, for
/// a first contact (no remembered SCT signature results: every signature verified) and for a
/// repeat connection to the same server (signatures answered by the memo; everything else,
/// including the policy, time checks, chain, pins and denylist, still runs).
fn ratio_report() {
    let fx = Fixture::new();
    let warm_checker = fx.checker();
    let warm_verifier = fx.verifier();
    let cold_verifier = fx.verifier_with(false);
    let now_ms = fx.now_ms();
    let now = UnixTime::since_unix_epoch(Duration::from_millis(now_ms));
    let der = fx.leaf.leaf().as_ref();
    let check = |checker: &CtChecker| {
        let leaf = LeafCert::parse(black_box(der)).expect("leaf parses");
        let report = checker.check(&leaf, &fx.leaf.issuer_spki, &[], now_ms);
        assert!(report.is_ok_and(|r| r.is_compliant()));
    };
    let verify = |verifier: &CtVerifier| {
        let d = verifier.verify(
            black_box(fx.leaf.leaf()),
            fx.leaf.intermediates(),
            Some(LOOPBACK),
            None,
            &[],
            now,
        );
        assert!(d.accepted());
    };
    let ct_first = median_per_call(15, 200, || check(&fx.checker()));
    let ct_repeat = median_per_call(15, 200, || check(&warm_checker));
    let verify_first = median_per_call(15, 200, || verify(&cold_verifier));
    let verify_repeat = median_per_call(15, 200, || verify(&warm_verifier));
    let hs = Handshakes::new(&fx);
    hs.once(&hs.ct).expect("CT handshake (warms the memo)");
    let hs_first = median_per_call(9, 50, || hs.once(&hs.ct_no_memo).expect("CT handshake"));
    let hs_repeat = median_per_call(9, 50, || hs.once(&hs.ct).expect("CT handshake"));
    let plain_hs = median_per_call(9, 50, || hs.once(&hs.webpki).expect("webpki handshake"));
    let pct = |part: Duration, whole: Duration| 100.0 * part.as_secs_f64() / whole.as_secs_f64();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let goal = |ratio: f64| if ratio < 10.0 { "met" } else { "NOT met" };
    println!();
    println!("== CT cost within a TLS 1.3 handshake (own timing loop, medians) ==");
    println!("                                            first contact    repeat (memo)");
    println!(
        "CT check (CtChecker::check, 3 SCTs)        {:9.1} µs     {:9.1} µs",
        us(ct_first),
        us(ct_repeat)
    );
    println!(
        "CtVerifier::verify (chain + IP SAN + CT)   {:9.1} µs     {:9.1} µs",
        us(verify_first),
        us(verify_repeat)
    );
    println!(
        "full handshake, CT verifier                {:9.1} µs     {:9.1} µs",
        us(hs_first),
        us(hs_repeat)
    );
    println!(
        "full handshake, plain webpki verifier      {:9.1} µs",
        us(plain_hs)
    );
    let first = pct(ct_first, hs_first);
    let repeat = pct(ct_repeat, hs_repeat);
    println!(
        "RATIO CT check / full handshake, first contact = {first:.1}% (goal < 10%: {})",
        goal(first)
    );
    println!(
        "RATIO CT check / full handshake, repeat connection (signature memo) = {repeat:.1}% (goal < 10%: {})",
        goal(repeat)
    );
    println!(
        "RATIO CtVerifier::verify / full handshake = {:.1}% first contact, {:.1}% repeat; \
         handshake CT-vs-webpki overhead = {:+.1}% first contact, {:+.1}% repeat",
        pct(verify_first, hs_first),
        pct(verify_repeat, hs_repeat),
        pct(hs_first.saturating_sub(plain_hs), plain_hs),
        pct(hs_repeat.saturating_sub(plain_hs), plain_hs)
    );
}

fn main() {
    ct_benches();
    Criterion::default().configure_from_args().final_summary();
    // Only under `cargo bench` (which passes --bench), not `cargo test --benches`.
    if std::env::args().any(|a| a == "--bench") {
        ratio_report();
    }
}
