//! `ctdns serve` reloads on SIGHUP, keeping its PID and listeners: a real `unbound` serves DoT
//! and DoH on loopback with a certificate from the test PKI, the built `ctdns serve` forwards
//! to it, and the test rewrites the config file and sends `kill -HUP`.
//!
//! - Pins changed by a reload take effect for the next query, both ways: a pin that refused
//!   the upstream is fixed (answers), a pin that accepted it is broken (SERVFAIL, and the
//!   connection verified under the old pin is closed, not reused).
//! - A broken config (bad TOML, a bad pin, a missing log list file) keeps the running state
//!   and logs one ERROR naming the key or file.
//! - No query of a continuous stream is lost during 20 reloads.
//!
//! These tests need unbound (and `ss` from iproute2): `scripts/test.sh` installs them.
//! Without them the tests fail (they never skip).

#[path = "common/ctdns.rs"]
mod child;
#[path = "common/unbound.rs"]
#[allow(dead_code)]
mod unbound;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use child::{query, run, udp_exchange, Ctdns};
use ctdns::pki::{TestPki, WrittenFiles};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use unbound::Unbound;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const WAIT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug)]
enum Proto {
    Dot,
    Doh,
}

struct Fixture {
    unbound: Unbound,
    pki: TestPki,
    files: WrittenFiles,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        assert!(
            unbound::unbound_binary().is_some(),
            "unbound is not installed: run scripts/test.sh (it installs it)"
        );
        let (pki, leaf) = ctdns::pki::demo_pki(LOOPBACK).expect("demo PKI");
        let dir = tempfile::tempdir().expect("tempdir");
        let files =
            ctdns::pki::write_files(&dir.path().join("pki"), &pki, &leaf).expect("PKI files");
        let ub_dir = dir.path().join("unbound");
        std::fs::create_dir_all(&ub_dir).expect("unbound dir");
        let unbound = Unbound::start(
            &ub_dir,
            &files.chain,
            &files.key,
            &[
                "www.example.test. 300 IN A 192.0.2.1",
                "other.example.test. 300 IN A 192.0.2.2",
            ],
        );
        Fixture {
            unbound,
            pki,
            files,
            dir,
        }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("ctdns.toml")
    }

    fn honest_pin(&self) -> String {
        self.pki.root().spki_sha256_base64()
    }

    /// The rogue root's pin: a CA not in the served chain.
    fn wrong_pin(&self) -> String {
        self.pki.rogue_root().spki_sha256_base64()
    }

    fn upstream_port(&self, proto: Proto) -> u16 {
        match proto {
            Proto::Dot => self.unbound.dot.port(),
            Proto::Doh => self.unbound.doh.port(),
        }
    }

    /// A config body: the PKI's roots and log list (or `log_list`), one upstream with `pins`.
    fn config_text(&self, proto: Proto, pins: &[String], log_list: Option<&str>) -> String {
        let upstream = match proto {
            Proto::Dot => format!(
                "protocol = \"dot\"\nip = \"127.0.0.1\"\nport = {}\n",
                self.unbound.dot.port()
            ),
            Proto::Doh => format!(
                "protocol = \"doh\"\nurl = \"https://127.0.0.1:{}/dns-query\"\n",
                self.unbound.doh.port()
            ),
        };
        let log_list = log_list
            .map(str::to_string)
            .unwrap_or_else(|| self.files.log_list.display().to_string());
        format!(
            "listen = [\"127.0.0.1:0\"]\nquery_timeout_ms = 3000\n\n[tls]\nroots = {roots:?}\n\n\
             [ct]\nlog_list = {log_list:?}\n\n[[upstream]]\n{upstream}pins = {pins:?}\n",
            roots = self.files.ca.display().to_string(),
        )
    }

    fn write_config(&self, text: &str) {
        std::fs::write(self.config_path(), text).expect("write ctdns.toml");
    }

    fn serve(&self, extra: &[&str]) -> Ctdns {
        let config = self.config_path();
        let mut args = vec!["--config", config.to_str().expect("utf-8 path")];
        args.extend_from_slice(extra);
        Ctdns::serve(&args, &self.dir.path().join("ctdns.log"))
    }
}

/// Lines of the log that end a reload (success or failure).
fn reloads_done(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("configuration reloaded") || l.contains("reload failed"))
        .count()
}

/// Sends SIGHUP and waits until the reload is logged as done; returns the log lines it added.
fn reload(server: &Ctdns) -> String {
    let before = server.log();
    let done = reloads_done(&before);
    server.signal("HUP");
    let deadline = Instant::now() + WAIT;
    loop {
        let log = server.log();
        if reloads_done(&log) > done {
            return log.get(before.len()..).unwrap_or_default().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no reload logged within {WAIT:?} of SIGHUP; log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The metrics endpoint's address, from the `metrics endpoint listening addr=…` log line.
fn metrics_addr(server: &Ctdns) -> std::net::SocketAddr {
    let log = server.wait_for_log("metrics endpoint listening");
    let line = log
        .lines()
        .find(|l| l.contains("metrics endpoint listening"))
        .unwrap_or_else(|| panic!("no metrics line:\n{log}"));
    line.split("addr=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.trim_matches('"').parse().ok())
        .unwrap_or_else(|| panic!("no address in {line}"))
}

/// `GET /metrics` over plain HTTP/1.1; the body.
fn scrape(addr: std::net::SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the metrics endpoint");
    s.set_read_timeout(Some(WAIT)).expect("read timeout");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("send the request");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read the response");
    out
}

fn ask(server: &Ctdns, id: u16, name: &str) -> Message {
    udp_exchange(server.addr, &query(id, name, RecordType::A, true), WAIT)
}

fn a_records(m: &Message) -> Vec<Ipv4Addr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

/// Established TCP connections to `port` on 127.0.0.1 (ctdns's side of its upstream
/// connections), from `ss`.
fn connections_to(port: u16) -> usize {
    let filter = format!("( dport = :{port} )");
    let (status, stdout, stderr) = run("ss", &["-Htn", "state", "established", &filter]);
    assert!(status.success(), "ss: {stderr}");
    stdout.lines().filter(|l| !l.trim().is_empty()).count()
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_pin_fixed_by_reload_answers_the_next_query() {
    let f = Fixture::new();
    f.write_config(&f.config_text(Proto::Dot, &[f.wrong_pin()], None));
    let mut server = f.serve(&[]);
    let pid = server.pid();

    let refused = ask(&server, 1, "www.example.test.");
    assert_eq!(refused.metadata.response_code, ResponseCode::ServFail);
    assert!(
        server.log().contains("issuer-pin"),
        "the refusal names the pin rule; log:\n{}",
        server.log()
    );

    f.write_config(&f.config_text(Proto::Dot, &[f.honest_pin()], None));
    let added = reload(&server);
    assert!(added.contains("configuration reloaded"), "{added}");
    // The refused upstream was in dial backoff; the new pool starts fresh and dials at once.
    let answered = ask(&server, 2, "www.example.test.");
    assert_eq!(answered.metadata.response_code, ResponseCode::NoError);
    assert_eq!(a_records(&answered), vec![Ipv4Addr::new(192, 0, 2, 1)]);
    assert!(server.alive());
    assert_eq!(server.pid(), pid);
    assert!(server.terminate().success());
}

fn pin_removed_by_reload_stops_serving(proto: Proto) {
    let f = Fixture::new();
    f.write_config(&f.config_text(proto, &[f.honest_pin()], None));
    let mut server = f.serve(&[]);
    let pid = server.pid();
    let port = f.upstream_port(proto);

    let answered = ask(&server, 1, "www.example.test.");
    assert_eq!(answered.metadata.response_code, ResponseCode::NoError);
    assert_eq!(a_records(&answered), vec![Ipv4Addr::new(192, 0, 2, 1)]);
    // The pool's verified connection stays open (idle timeout 30 s).
    wait_for("a verified upstream connection open", || {
        connections_to(port) >= 1
    });

    f.write_config(&f.config_text(proto, &[f.wrong_pin()], None));
    let added = reload(&server);
    assert!(added.contains("configuration reloaded"), "{added}");
    // The connection verified under the old pin is closed with the old pool...
    wait_for("the old verified connection closed", || {
        connections_to(port) == 0
    });
    // ...and nothing is answered through the upstream any more: not the cached name (the
    // cache was emptied), not a new one.
    for (id, name) in [(2, "www.example.test."), (3, "other.example.test.")] {
        let m = ask(&server, id, name);
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::ServFail,
            "{proto:?} {name}: {m:?}"
        );
        assert!(a_records(&m).is_empty());
    }
    let log = server.log();
    let after_reload = &log[log.find("configuration reloaded").unwrap_or(0)..];
    assert!(
        after_reload.contains("issuer-pin"),
        "the new pool refused the upstream by its pin; log:\n{log}"
    );
    assert_eq!(server.pid(), pid);
    assert!(server.terminate().success());
}

#[test]
fn a_pin_removed_by_reload_stops_serving_at_once_dot() {
    pin_removed_by_reload_stops_serving(Proto::Dot);
}

#[test]
fn a_pin_removed_by_reload_stops_serving_at_once_doh() {
    pin_removed_by_reload_stops_serving(Proto::Doh);
}

#[test]
fn a_broken_config_keeps_serving_and_logs_one_error_naming_the_key_or_file() {
    let f = Fixture::new();
    // With the metrics endpoint: reload outcomes are counted there too.
    let good = f.config_text(Proto::Dot, &[f.honest_pin()], None)
        + "\n[metrics]\nlisten = \"127.0.0.1:0\"\n";
    f.write_config(&good);
    // No cache: every answer below comes from the upstream through the running pool.
    let mut server = f.serve(&["--no-cache"]);
    let metrics = metrics_addr(&server);
    let pid = server.pid();
    let missing_list = f.dir.path().join("no-such-list.json");
    let missing_list = missing_list.to_str().expect("utf-8 path");
    let cases = [
        ("bad TOML", "listen = [\n".to_string(), "TOML parse error"),
        (
            "bad pin",
            f.config_text(Proto::Dot, &["not-a-pin".to_string()], None),
            "upstream[0].pins[0]",
        ),
        (
            "missing log list",
            f.config_text(Proto::Dot, &[f.honest_pin()], Some(missing_list)),
            missing_list,
        ),
    ];
    for (i, (what, text, named)) in cases.iter().enumerate() {
        f.write_config(text);
        let added = reload(&server);
        let errors: Vec<&str> = added.lines().filter(|l| l.contains(" ERROR ")).collect();
        assert_eq!(errors.len(), 1, "{what}: one ERROR line; added:\n{added}");
        assert!(errors[0].contains("reload failed"), "{what}: {added}");
        assert!(
            added.contains(named),
            "{what}: names `{named}`; added:\n{added}"
        );
        assert!(!added.contains("configuration reloaded"), "{what}: {added}");
        let m = ask(&server, 10 + i as u16, "www.example.test.");
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{what}");
        assert_eq!(a_records(&m), vec![Ipv4Addr::new(192, 0, 2, 1)], "{what}");
    }
    // A good file again is taken.
    f.write_config(&good);
    assert!(reload(&server).contains("configuration reloaded"));
    let scraped = scrape(metrics);
    assert!(
        scraped.contains("ctdns_config_reloads_total{result=\"failure\"} 3"),
        "{scraped}"
    );
    assert!(
        scraped.contains("ctdns_config_reloads_total{result=\"success\"} 1"),
        "{scraped}"
    );
    assert_eq!(
        a_records(&ask(&server, 20, "other.example.test.")),
        vec![Ipv4Addr::new(192, 0, 2, 2)]
    );
    assert_eq!(server.pid(), pid);
    assert!(server.terminate().success());
}

#[test]
fn a_restart_only_key_is_named_and_kept() {
    let f = Fixture::new();
    f.write_config(&f.config_text(Proto::Dot, &[f.honest_pin()], None));
    let mut server = f.serve(&[]);
    let text = f
        .config_text(Proto::Dot, &[f.honest_pin()], None)
        .replace("listen = [\"127.0.0.1:0\"]", "listen = [\"127.0.0.1:9\"]");
    f.write_config(&text);
    let added = reload(&server);
    assert!(added.contains("configuration reloaded"), "{added}");
    let warn = added
        .lines()
        .find(|l| l.contains(" WARN ") && l.contains("`listen`"))
        .unwrap_or_else(|| panic!("a WARN naming `listen`; added:\n{added}"));
    assert!(warn.contains("restart"), "{warn}");
    // Still serving on the address it bound.
    let m = ask(&server, 1, "www.example.test.");
    assert_eq!(a_records(&m), vec![Ipv4Addr::new(192, 0, 2, 1)]);
    assert!(server.terminate().success());
}

#[test]
fn no_query_is_lost_during_twenty_reloads() {
    const RELOADS: usize = 20;
    const CLIENTS: usize = 2;
    let f = Fixture::new();
    // Two configs that both accept the upstream (the second adds a backup pin), alternated.
    let one = f.config_text(Proto::Dot, &[f.honest_pin()], None);
    let two = f.config_text(Proto::Dot, &[f.wrong_pin(), f.honest_pin()], None);
    f.write_config(&one);
    // No cache: every query crosses the swap point to the upstream.
    let mut server = f.serve(&["--no-cache"]);
    let pid = server.pid();
    let addr: SocketAddr = server.addr;

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut sent = 0u32;
                let mut id = (c as u16) << 12;
                while !stop.load(Ordering::SeqCst) {
                    id = id.wrapping_add(1);
                    let m = udp_exchange(
                        addr,
                        &query(id, "www.example.test.", RecordType::A, true),
                        WAIT,
                    );
                    assert_eq!(
                        m.metadata.response_code,
                        ResponseCode::NoError,
                        "client {c} query {sent} (id {id}): {m:?}"
                    );
                    assert_eq!(a_records(&m), vec![Ipv4Addr::new(192, 0, 2, 1)]);
                    sent += 1;
                }
                sent
            })
        })
        .collect();

    std::thread::sleep(Duration::from_millis(100));
    for i in 0..RELOADS {
        f.write_config(if i % 2 == 0 { &two } else { &one });
        let added = reload(&server);
        assert!(
            added.contains("configuration reloaded"),
            "reload {i}: {added}"
        );
        std::thread::sleep(Duration::from_millis(30));
    }
    stop.store(true, Ordering::SeqCst);
    let answered: Vec<u32> = clients
        .into_iter()
        .map(|t| {
            t.join()
                .expect("a client thread failed (a query was lost or not NOERROR)")
        })
        .collect();
    let total: u32 = answered.iter().sum();
    eprintln!(
        "{total} queries answered NOERROR across {RELOADS} reloads ({answered:?} per client)"
    );
    assert!(
        answered.iter().all(|&n| n >= RELOADS as u32),
        "each client kept querying throughout: {answered:?}"
    );
    let log = server.log();
    assert_eq!(
        log.matches("configuration reloaded").count(),
        RELOADS,
        "{log}"
    );
    assert!(!log.contains("reload failed"), "{log}");
    assert!(server.alive());
    assert_eq!(server.pid(), pid);
    assert!(server.terminate().success());
}
