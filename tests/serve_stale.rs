//! Serve-stale (RFC 8767) and prefetch of the built `ctdns serve`, against a real Debian
//! `unbound` serving DoT on loopback with a certificate from the crate's test PKI. Short
//! local-data TTLs (1-4 s) keep the sleeps short. The outage is real: unbound is killed, or
//! stopped with SIGSTOP (a stalled upstream: TCP still accepts, nothing answers), and
//! counters are read from ctdns's own `/metrics` endpoint.
//!
//! Needs unbound: `scripts/test.sh` installs it. Without it the tests fail (they never skip).

#[path = "common/ctdns.rs"]
mod child;
#[allow(dead_code)] // `plain` and `doh` are not used here
#[path = "common/unbound.rs"]
mod unbound;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use child::{query, udp_exchange, Ctdns};
use ctdns::pki::WrittenFiles;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use unbound::Unbound;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const WAIT: Duration = Duration::from_secs(8);
/// ctdns's query timeout in these tests.
const QUERY_TIMEOUT_MS: u64 = 3_000;
/// `stale_answer_client_timeout_ms` in these tests.
const CLIENT_TIMEOUT_MS: u64 = 400;

const LOCAL_DATA: &[&str] = &[
    "warm.example.test. 300 IN A 192.0.2.10",
    "stale.example.test. 1 IN A 192.0.2.11",
    "prefetch.example.test. 4 IN A 192.0.2.12",
    "slow.example.test. 1 IN A 192.0.2.13",
    // An SOA for the static zone: NXDOMAIN answers carry it, so they are cacheable (RFC 2308)
    // for 1 s.
    "test. 1 IN SOA ns.test. host.test. 1 3600 600 86400 1",
];

/// A real unbound (DoT, test PKI) and a `ctdns serve` forwarding to it with its metrics
/// endpoint on a free port.
struct Fixture {
    // Fields drop in order: ctdns, then unbound, then the directory.
    ctdns: Ctdns,
    unbound: Option<Unbound>,
    metrics: SocketAddr,
    _files: WrittenFiles,
    dir: tempfile::TempDir,
}

impl Fixture {
    /// `cache` is the body of the `[cache]` section.
    fn start(cache: &str) -> Fixture {
        assert!(
            unbound::unbound_binary().is_some(),
            "unbound is not installed: run scripts/test.sh"
        );
        let (pki, leaf) = ctdns::pki::demo_pki(LOOPBACK).expect("demo PKI");
        let dir = tempfile::tempdir().expect("tempdir");
        let files =
            ctdns::pki::write_files(&dir.path().join("pki"), &pki, &leaf).expect("PKI files");
        let ub_dir = dir.path().join("unbound");
        std::fs::create_dir_all(&ub_dir).expect("unbound dir");
        let unbound = Unbound::start(&ub_dir, &files.chain, &files.key, LOCAL_DATA);
        let metrics = SocketAddr::from(([127, 0, 0, 1], unbound::free_port()));
        let config = format!(
            "listen = [\"127.0.0.1:0\"]\nquery_timeout_ms = {QUERY_TIMEOUT_MS}\n\n\
             [tls]\nroots = {roots:?}\n\n[ct]\nlog_list = {list:?}\n\n\
             [evidence]\ndir = {evidence:?}\n\n[cache]\n{cache}\n\n\
             [log]\nformat = \"json\"\nlevel = \"info\"\n\n[metrics]\nlisten = \"{metrics}\"\n\n\
             [[upstream]]\nprotocol = \"dot\"\nip = \"127.0.0.1\"\nport = {port}\npins = [{pin:?}]\n",
            roots = files.ca.display().to_string(),
            list = files.log_list.display().to_string(),
            evidence = dir.path().join("evidence").display().to_string(),
            port = unbound.dot.port(),
            pin = pki.root().spki_sha256_base64(),
        );
        let path = dir.path().join("ctdns.toml");
        std::fs::write(&path, config).expect("write ctdns.toml");
        let ctdns = Ctdns::serve(
            &["--config", path.to_str().expect("utf-8 path")],
            &dir.path().join("ctdns.log"),
        );
        let f = Fixture {
            ctdns,
            unbound: Some(unbound),
            metrics,
            _files: files,
            dir,
        };
        f.wait_for_metrics();
        // Open the DoT connection, so that later timings do not include the handshake.
        assert_eq!(f.ask("warm.example.test.").1, ["192.0.2.10"]);
        f
    }

    fn wait_for_metrics(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(self.metrics).is_err() {
            assert!(
                Instant::now() < deadline,
                "no metrics endpoint on {}:\n{}",
                self.metrics,
                self.ctdns.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn unbound(&self) -> &Unbound {
        self.unbound.as_ref().expect("unbound running")
    }

    /// Kills unbound (and waits for it): the upstream is gone.
    fn kill_unbound(&mut self) {
        drop(self.unbound.take());
    }

    fn signal_unbound(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.unbound().pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {sig}");
    }

    /// One UDP query for `name` A: the response, its A addresses and their TTLs.
    fn ask(&self, name: &str) -> (Message, Vec<String>, Vec<u32>) {
        let m = udp_exchange(self.ctdns.addr, &query(7, name, RecordType::A, true), WAIT);
        let addrs = m
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(a.0.to_string()),
                _ => None,
            })
            .collect();
        let ttls = m.answers.iter().map(|r| r.ttl).collect();
        (m, addrs, ttls)
    }

    /// The sum of the samples of metric `name` (with any labels) whose line contains
    /// `filter`.
    fn metric(&self, name: &str, filter: &str) -> f64 {
        scrape(self.metrics)
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains(filter))
            .filter_map(|l| {
                let (series, v) = l.rsplit_once(' ')?;
                let base = series.split('{').next()?;
                (base == name).then(|| v.trim().parse::<f64>().expect("a number"))
            })
            .sum()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("ctdns.log")
    }
}

/// `GET /metrics`, the body.
fn scrape(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).expect("connect to /metrics");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send request");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_string()
}

/// Polls `cond` every 20 ms for up to `within`.
fn eventually(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn upstream_killed_cached_names_get_stale_answers_with_ttl_30_not_servfail() {
    let mut f = Fixture::start(&format!(
        "stale_answer_client_timeout_ms = {CLIENT_TIMEOUT_MS}"
    ));
    let (m, addrs, ttls) = f.ask("stale.example.test.");
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addrs, ["192.0.2.11"]);
    assert_eq!(ttls, [1]);
    let nx = udp_exchange(
        f.ctdns.addr,
        &query(8, "nx.example.test.", RecordType::A, true),
        WAIT,
    );
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(nx.authorities.len(), 1, "NXDOMAIN carries the SOA");

    f.kill_unbound();
    // Past the 1 s TTL of both entries.
    std::thread::sleep(Duration::from_millis(1_500));

    let started = Instant::now();
    let (m, addrs, ttls) = f.ask("stale.example.test.");
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m:?}");
    assert_eq!(addrs, ["192.0.2.11"], "the stale answer");
    assert_eq!(ttls, [30], "RFC 8767 §4: stale TTL 30");
    assert!(
        started.elapsed() < Duration::from_millis(QUERY_TIMEOUT_MS),
        "answered before the query timeout: {:?}",
        started.elapsed()
    );
    let nx = udp_exchange(
        f.ctdns.addr,
        &query(9, "nx.example.test.", RecordType::A, true),
        WAIT,
    );
    assert_eq!(
        nx.metadata.response_code,
        ResponseCode::NXDomain,
        "stale NXDOMAIN"
    );
    assert_eq!(nx.authorities[0].ttl, 30);

    // Asked again: still stale (the refresh failed, so at once), still counted.
    let (m, addrs, ttls) = f.ask("stale.example.test.");
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        (addrs.as_slice(), ttls.as_slice()),
        (&["192.0.2.11".to_string()][..], &[30][..])
    );

    // A name never cached has nothing stale to give: SERVFAIL.
    let (m, _, _) = f.ask("never.example.test.");
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);

    assert_eq!(f.metric("ctdns_stale_answers_total", ""), 3.0);
    assert_eq!(
        f.metric("ctdns_queries_total", "rcode=\"SERVFAIL\""),
        1.0,
        "only the uncached name got SERVFAIL"
    );
    // One rate-limited WARN line for the three stale answers.
    let log = std::fs::read_to_string(f.log_path()).expect("ctdns log");
    let warns = log
        .lines()
        .filter(|l| l.contains("serving stale answers"))
        .count();
    assert_eq!(warns, 1, "{log}");
}

#[test]
fn with_serve_stale_off_the_same_outage_gives_servfail() {
    let mut f = Fixture::start("serve_stale_secs = 0");
    assert_eq!(f.ask("stale.example.test.").1, ["192.0.2.11"]);
    f.kill_unbound();
    std::thread::sleep(Duration::from_millis(1_500));
    let (m, addrs, _) = f.ask("stale.example.test.");
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(addrs.is_empty());
    assert_eq!(f.metric("ctdns_stale_answers_total", ""), 0.0);
}

#[test]
fn stalled_upstream_gets_the_stale_answer_after_the_client_timeout_and_is_refreshed_behind() {
    let f = Fixture::start(&format!(
        "stale_answer_client_timeout_ms = {CLIENT_TIMEOUT_MS}"
    ));
    let ok = |f: &Fixture| f.metric("ctdns_upstream_queries_total", "outcome=\"ok\"");
    assert_eq!(f.ask("slow.example.test.").2, [1]);
    let upstream_before = ok(&f);
    f.signal_unbound("-STOP");
    std::thread::sleep(Duration::from_millis(1_300));

    // Five clients at once: the first starts the refresh and waits the client timeout, the
    // others find that refresh running and get the stale answer at once; all get it before
    // the query timeout.
    let answers: Vec<_> = std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = (0..5)
            .map(|i| {
                s.spawn(move || {
                    std::thread::sleep(Duration::from_millis(30 * i));
                    let started = Instant::now();
                    let got = f.ask("slow.example.test.");
                    (got, started.elapsed())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .collect()
    });
    // Resume unbound before asserting, so that a failure leaves nothing stopped.
    f.signal_unbound("-CONT");
    for ((m, addrs, ttls), took) in &answers {
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(addrs, &["192.0.2.13"]);
        assert_eq!(ttls, &[30], "stale answer");
        assert!(
            *took < Duration::from_millis(QUERY_TIMEOUT_MS),
            "answered before the query timeout: {took:?}"
        );
    }
    let slowest = answers.iter().map(|(_, took)| *took).max().unwrap();
    assert!(
        slowest >= Duration::from_millis(CLIENT_TIMEOUT_MS - 20),
        "the first client waited the client timeout: {slowest:?}"
    );
    assert_eq!(f.metric("ctdns_stale_answers_total", ""), 5.0);

    // The refresh started by the first query was left running; unbound, resumed, answers it
    // and the cache holds the fresh answer again: the next query is a hit with the real TTL.
    let hits = f.metric("ctdns_cache_hits_total", "");
    eventually(
        Duration::from_secs(3),
        "the background refresh lands",
        || {
            let (_, addrs, ttls) = f.ask("slow.example.test.");
            addrs == ["192.0.2.13"] && ttls.iter().all(|&t| t <= 1)
        },
    );
    assert!(f.metric("ctdns_cache_hits_total", "") > hits);
    assert_eq!(
        ok(&f),
        upstream_before + 1.0,
        "one refresh upstream for the five clients"
    );
}

#[test]
fn a_name_asked_in_the_last_tenth_of_its_ttl_is_prefetched_and_never_misses() {
    let f = Fixture::start("");
    let ok = |f: &Fixture| f.metric("ctdns_upstream_queries_total", "outcome=\"ok\"");
    let (_, addrs, ttls) = f.ask("prefetch.example.test.");
    let answered = Instant::now();
    assert_eq!((addrs.len(), ttls.as_slice()), (1, &[4][..]));
    let misses = f.metric("ctdns_cache_misses_total", "");
    let upstream_before = ok(&f);

    // 60 % into the TTL: a plain hit, no prefetch.
    std::thread::sleep(Duration::from_millis(2_400));
    f.ask("prefetch.example.test.");
    assert_eq!(f.metric("ctdns_prefetch_total", ""), 0.0);

    // In the last 10 % (3.6-4 s): a hit, and a refresh is sent upstream.
    std::thread::sleep(Duration::from_millis(3_700).saturating_sub(answered.elapsed()));
    let (_, _, ttls) = f.ask("prefetch.example.test.");
    assert!(
        ttls.iter().all(|&t| t <= 1),
        "served from the old entry: {ttls:?}"
    );
    eventually(Duration::from_secs(2), "prefetch counted and sent", || {
        f.metric("ctdns_prefetch_total", "") == 1.0 && ok(&f) == upstream_before + 1.0
    });

    // Past the original expiry: still a hit, from the prefetched entry (fresh TTL), never a
    // miss and never stale.
    std::thread::sleep(Duration::from_millis(4_300).saturating_sub(answered.elapsed()));
    let (m, addrs, ttls) = f.ask("prefetch.example.test.");
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addrs, ["192.0.2.12"]);
    assert!(ttls.iter().all(|&t| (1..=4).contains(&t)), "{ttls:?}");
    assert_eq!(f.metric("ctdns_cache_misses_total", ""), misses, "no miss");
    assert_eq!(f.metric("ctdns_stale_answers_total", ""), 0.0);
    assert_eq!(
        ok(&f),
        upstream_before + 1.0,
        "exactly one refresh upstream"
    );
}
