//! The Prometheus endpoint and the JSON event stream of the built `ctdns serve`, against
//! in-process DoT servers on loopback with certificates from the crate's test PKI: an
//! honest upstream and a rogue one (CT-logged, but issued by the rogue CA, so refused by
//! the issuer pin). Scrapes `/metrics` before and after queries, checks the values moved,
//! runs Debian's `promtool check metrics` on the text (scripts/test.sh installs it), and
//! checks the `refusal`, `upstream_down` and `upstream_up` JSON lines.

#[path = "common/ctdns.rs"]
mod child;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use child::{query, udp_exchange, Ctdns};
use ctdns::pki::{default_logs, IssuedLeaf, LeafIssuer, SctSpec, TestPki, WrittenFiles};
use ctdns::testkit::{AnswerTable, Answers, Protocol, ServerCert, TestServer};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const NAME: &str = "www.example.test.";

struct Setup {
    rt: tokio::runtime::Runtime,
    pki: TestPki,
    honest: IssuedLeaf,
    rogue: IssuedLeaf,
    files: WrittenFiles,
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (pki, honest) = ctdns::pki::demo_pki(LOOPBACK).unwrap();
        let ts = pki.now() - time::Duration::minutes(1);
        let rogue = pki
            .issue_leaf(
                &pki.leaf_spec(LOOPBACK)
                    .issued_by(LeafIssuer::RogueIntermediate)
                    .embed(SctSpec::at(default_logs::ALPHA, ts))
                    .embed(SctSpec::at(default_logs::BETA, ts)),
            )
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let files = ctdns::pki::write_files(&dir.path().join("pki"), &pki, &honest).unwrap();
        Setup {
            rt,
            pki,
            honest,
            rogue,
            files,
            dir,
        }
    }

    fn server(&self, addr: SocketAddr, leaf: &IssuedLeaf) -> TestServer {
        let mut answers = AnswerTable::new();
        answers.insert(NAME, "192.0.2.1".parse().unwrap()).unwrap();
        let cert = ServerCert::new(leaf.chain.clone(), leaf.key_der());
        self.rt
            .block_on(
                TestServer::builder(Protocol::Dot, cert)
                    .bind(addr)
                    .answers(Answers::Table(answers))
                    .start(),
            )
            .unwrap()
    }

    fn stop(&self, server: TestServer) {
        self.rt.block_on(server.shutdown());
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A JSON-logging config trusting both roots, the PKI's log list, evidence kept, the
    /// metrics endpoint on a free port, and DoT upstreams on `ports` pinned to the honest
    /// root.
    fn config(&self, ports: &[u16], cache: bool) -> PathBuf {
        let both = self.path("both_roots.pem");
        let mut pem = std::fs::read_to_string(&self.files.ca).unwrap();
        pem.push_str(&std::fs::read_to_string(&self.files.rogue_ca).unwrap());
        std::fs::write(&both, pem).unwrap();
        let pin = self.pki.root().spki_sha256_base64();
        let mut text = format!(
            "listen = [\"127.0.0.1:0\"]\nquery_timeout_ms = 3000\n\n[tls]\nroots = {roots:?}\n\n\
             [ct]\nlog_list = {list:?}\n\n[evidence]\ndir = {evidence:?}\n\n[cache]\nenabled = {cache}\n\n\
             [log]\nformat = \"json\"\nlevel = \"info\"\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n",
            roots = both.display().to_string(),
            list = self.files.log_list.display().to_string(),
            evidence = self.path("evidence").display().to_string(),
        );
        for port in ports {
            text.push_str(&format!(
                "\n[[upstream]]\nprotocol = \"dot\"\nip = \"127.0.0.1\"\nport = {port}\npins = [{pin:?}]\n"
            ));
        }
        let path = self.path("ctdns.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn serve(&self, config: &Path) -> Ctdns {
        Ctdns::serve(
            &["--config", config.to_str().unwrap()],
            &self.path("ctdns.log"),
        )
    }
}

/// The JSON log lines so far.
fn json_lines(server: &Ctdns) -> Vec<serde_json::Value> {
    server
        .log()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line: {l:?}: {e}")))
        .collect()
}

fn events(server: &Ctdns, event: &str) -> Vec<serde_json::Value> {
    json_lines(server)
        .into_iter()
        .filter(|v| v["fields"]["event"] == event)
        .collect()
}

/// Wait for a JSON line whose message contains `needle`.
fn wait_for_message(server: &Ctdns, needle: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(v) = json_lines(server).into_iter().find(|v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(needle))
        }) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "no log line {needle:?}:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn metrics_addr(server: &Ctdns) -> SocketAddr {
    let line = wait_for_message(server, "metrics endpoint listening");
    line["fields"]["addr"].as_str().unwrap().parse().unwrap()
}

/// One HTTP/1.1 request; returns (status line, headers, body).
fn http_get(addr: SocketAddr, path: &str) -> (String, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (
        status.to_string(),
        headers.to_ascii_lowercase(),
        body.to_string(),
    )
}

fn scrape(addr: SocketAddr) -> String {
    let (status, headers, body) = http_get(addr, "/metrics");
    assert!(status.contains(" 200 "), "{status}");
    assert!(
        headers.contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{headers}"
    );
    body
}

/// The value of the sample `series` (name and labels exactly as exposed), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (scripts/test.sh installs Debian's prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn metrics_move_with_queries_and_refusals_and_promtool_accepts_them() {
    let setup = Setup::new();
    let rogue = setup.server("127.0.0.1:0".parse().unwrap(), &setup.rogue);
    let honest = setup.server("127.0.0.1:0".parse().unwrap(), &setup.honest);
    let (rogue_port, honest_port) = (rogue.addr().port(), honest.addr().port());
    let config = setup.config(&[rogue_port, honest_port], true);
    let mut ctdns = setup.serve(&config);
    let maddr = metrics_addr(&ctdns);

    let (status, _, _) = http_get(maddr, "/");
    assert!(status.contains(" 404 "), "{status}");
    let before = scrape(maddr);
    promtool_check(&before);
    let udp_ok = "ctdns_queries_total{transport=\"udp\",rcode=\"NOERROR\"}";
    assert_eq!(value(&before, udp_ok), Some(0.0), "{before}");
    assert_eq!(value(&before, "ctdns_cache_hits_total"), Some(0.0));
    assert_eq!(
        value(&before, "ctdns_config_reloads_total{result=\"success\"}"),
        Some(0.0)
    );

    for id in 1..=3u16 {
        let answer = udp_exchange(
            ctdns.addr,
            &query(id, NAME, RecordType::A, true),
            Duration::from_secs(8),
        );
        assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
        assert_eq!(answer.answers.len(), 1);
    }
    let after = scrape(maddr);
    promtool_check(&after);
    let rogue_label = format!("upstream=\"dot://127.0.0.1:{rogue_port}\"");
    let honest_label = format!("upstream=\"dot://127.0.0.1:{honest_port}\"");
    assert_eq!(value(&after, udp_ok), Some(3.0), "{after}");
    assert!(value(&after, "ctdns_query_duration_seconds_count").unwrap() >= 3.0);
    assert_eq!(
        value(&after, "ctdns_cache_hits_total"),
        Some(2.0),
        "{after}"
    );
    assert_eq!(value(&after, "ctdns_cache_misses_total"), Some(1.0));
    assert_eq!(value(&after, "ctdns_cache_entries"), Some(1.0));
    assert!(value(&after, "ctdns_cache_bytes").unwrap() > 0.0);
    assert_eq!(
        value(
            &after,
            &format!("ctdns_upstream_refusals_total{{{rogue_label},rule=\"issuer-pin\"}}")
        ),
        Some(1.0),
        "{after}"
    );
    assert_eq!(
        value(&after, &format!("ctdns_upstream_up{{{rogue_label}}}")),
        Some(0.0)
    );
    assert_eq!(
        value(&after, &format!("ctdns_upstream_up{{{honest_label}}}")),
        Some(1.0)
    );
    // The latency estimate of the honest upstream (it answered): positive, well under the
    // query timeout.
    let estimate = value(
        &after,
        &format!("ctdns_upstream_latency_estimate_seconds{{{honest_label}}}"),
    )
    .expect("a latency estimate for the upstream that answered");
    assert!(estimate > 0.0 && estimate < 5.0, "{estimate}");
    assert_eq!(
        value(
            &after,
            &format!("ctdns_upstream_queries_total{{{honest_label},outcome=\"ok\"}}")
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &after,
            &format!("ctdns_upstream_queries_total{{{rogue_label},outcome=\"refused\"}}")
        ),
        Some(1.0)
    );
    assert!(
        value(
            &after,
            &format!("ctdns_upstream_handshakes_total{{{rogue_label}}}")
        )
        .unwrap()
            >= 1.0
    );
    assert!(
        value(
            &after,
            &format!("ctdns_upstream_duration_seconds_count{{{honest_label}}}")
        )
        .unwrap()
            >= 1.0
    );
    assert!(after.contains("ctdns_build_info{version=\""), "{after}");
    let list_age = value(&after, "ctdns_log_list_age_seconds").unwrap();
    assert!((0.0..86_400.0).contains(&list_age), "{list_age}");

    // The JSON event stream: the refusal line with every documented field.
    let refusals: Vec<_> = events(&ctdns, "refusal")
        .into_iter()
        .filter(|v| v["fields"]["upstream"] == format!("dot://127.0.0.1:{rogue_port}"))
        .collect();
    assert!(!refusals.is_empty(), "{}", ctdns.log());
    let r = &refusals[0];
    assert_eq!(r["level"], "WARN");
    let f = &r["fields"];
    assert_eq!(f["rule"], "issuer-pin");
    let leaf_sha = ring::digest::digest(&ring::digest::SHA256, setup.rogue.chain[0].as_ref());
    let hex: String = leaf_sha
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(f["leaf_sha256"], hex);
    // The test PKI's leaves have an empty subject (IP SAN only): present, empty.
    assert_eq!(f["leaf_subject"], "", "{f}");
    assert!(
        f["issuer"].as_str().unwrap().contains("Rogue Intermediate"),
        "{f}"
    );
    let pins = f["chain_pins"].as_str().unwrap();
    assert!(!pins.is_empty() && pins != "none", "{pins}");
    assert!(f["reason"].as_str().unwrap().contains("pin"), "{f}");
    let evidence = PathBuf::from(f["evidence_file"].as_str().unwrap());
    assert!(evidence.starts_with(std::fs::canonicalize(setup.path("evidence")).unwrap()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !evidence.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(evidence.exists(), "{} not written", evidence.display());
    // The rogue upstream went down once (it never answered, so it never came up).
    let down: Vec<_> = events(&ctdns, "upstream_down")
        .into_iter()
        .filter(|v| v["fields"]["upstream"] == format!("dot://127.0.0.1:{rogue_port}"))
        .collect();
    assert_eq!(down.len(), 1, "{}", ctdns.log());
    assert_eq!(down[0]["fields"]["rule"], "issuer-pin");

    assert!(ctdns.terminate().success());
    setup.stop(rogue);
    setup.stop(honest);
}

#[test]
fn an_upstream_going_down_and_up_logs_one_event_each() {
    let setup = Setup::new();
    let honest = setup.server("127.0.0.1:0".parse().unwrap(), &setup.honest);
    let addr = honest.addr();
    let config = setup.config(&[addr.port()], false);
    let mut ctdns = setup.serve(&config);
    let ask = |id: u16| {
        udp_exchange(
            ctdns.addr,
            &query(id, NAME, RecordType::A, true),
            Duration::from_secs(8),
        )
        .metadata
        .response_code
    };
    assert_eq!(ask(1), ResponseCode::NoError);
    setup.stop(honest);
    for id in 2..=4 {
        assert_eq!(ask(id), ResponseCode::ServFail);
    }
    let label = format!("dot://{addr}");
    let mine = |event: &str| {
        events(&ctdns, event)
            .into_iter()
            .filter(|v| v["fields"]["upstream"] == label.as_str())
            .count()
    };
    assert_eq!(mine("upstream_down"), 1, "{}", ctdns.log());
    assert_eq!(mine("upstream_up"), 0);

    // Back on the same port: the first probe after the backoff succeeds.
    let honest = setup.server(addr, &setup.honest);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut id = 10;
    while ask(id) != ResponseCode::NoError {
        assert!(Instant::now() < deadline, "{}", ctdns.log());
        std::thread::sleep(Duration::from_millis(200));
        id += 1;
    }
    for more in 1..=3 {
        assert_eq!(ask(id + more), ResponseCode::NoError);
    }
    assert_eq!(mine("upstream_down"), 1, "{}", ctdns.log());
    assert_eq!(mine("upstream_up"), 1, "{}", ctdns.log());
    let up = events(&ctdns, "upstream_up");
    assert_eq!(up[0]["level"], "INFO");
    assert!(ctdns.terminate().success());
    setup.stop(honest);
}
