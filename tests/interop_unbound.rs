//! Interoperability with real software on loopback: a real `unbound` serves DoT and DoH with
//! a certificate from the test PKI (CT-logged by the PKI's logs), the built `ctdns serve`
//! forwards to it, and real clients (`dig`, `kdig`) ask ctdns. A rogue unbound (certificate
//! from the rogue CA, CT-logged too) must be refused by the issuer pin, with evidence.
//! `ctdns check` and the library `Client` are exercised against the same servers.
//!
//! These tests need unbound, dig and kdig: `scripts/test.sh` installs them. Without them the
//! tests fail (they never skip).

#[path = "common/ctdns.rs"]
mod child;
#[path = "common/unbound.rs"]
mod unbound;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use child::{query, run, udp_exchange, Ctdns};
use ctdns::pki::{default_logs, IssuedLeaf, LeafIssuer, SctSpec, TestPki, WrittenFiles};
use hickory_proto::rr::{RData, RecordType};
use unbound::Unbound;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const BIG_TXT_RECORDS: usize = 8;

fn require_tools() {
    assert!(
        unbound::unbound_binary().is_some(),
        "unbound is not installed: run scripts/test.sh (it installs unbound, dig and kdig) \
         instead of bare `cargo test`"
    );
    for tool in ["dig", "kdig"] {
        let found = Command::new(tool).arg("-v").output().is_ok();
        assert!(
            found,
            "`{tool}` is not installed: run scripts/test.sh (it installs unbound, dig and kdig)"
        );
    }
}

fn local_data() -> Vec<String> {
    let mut lines = vec![
        "www.example.test. 300 IN A 192.0.2.1".to_string(),
        "www.example.test. 300 IN AAAA 2001:db8::1".to_string(),
        "txt.example.test. 300 IN TXT hello-from-unbound".to_string(),
    ];
    for i in 0..BIG_TXT_RECORDS {
        lines.push(format!(
            "big.example.test. 300 IN TXT record{i}-{}",
            "x".repeat(200)
        ));
    }
    lines
}

/// A test PKI on disk and a real unbound serving `leaf` from it.
struct Fixture {
    // Fields drop in order: unbound stops before its directory is removed.
    unbound: Unbound,
    pki: TestPki,
    files: WrittenFiles,
    dir: tempfile::TempDir,
}

impl Fixture {
    /// The honest setup: the demo leaf for 127.0.0.1 (two embedded SCTs, honest CA).
    fn honest() -> Fixture {
        require_tools();
        let (pki, leaf) = ctdns::pki::demo_pki(LOOPBACK).expect("demo PKI");
        Self::serving(pki, &leaf)
    }

    /// The rogue setup: a leaf for 127.0.0.1 from the rogue CA, with valid SCTs from two
    /// operators — it passes every rule but the issuer pin.
    fn rogue() -> Fixture {
        require_tools();
        let (pki, _) = ctdns::pki::demo_pki(LOOPBACK).expect("demo PKI");
        let ts = pki.now() - time::Duration::minutes(1);
        let leaf = pki
            .issue_leaf(
                &pki.leaf_spec(LOOPBACK)
                    .issued_by(LeafIssuer::RogueIntermediate)
                    .embed(SctSpec::at(default_logs::ALPHA, ts))
                    .embed(SctSpec::at(default_logs::BETA, ts)),
            )
            .expect("rogue leaf");
        Self::serving(pki, &leaf)
    }

    fn serving(pki: TestPki, leaf: &IssuedLeaf) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let files =
            ctdns::pki::write_files(&dir.path().join("pki"), &pki, leaf).expect("PKI files");
        let ub_dir = dir.path().join("unbound");
        std::fs::create_dir_all(&ub_dir).expect("unbound dir");
        let data = local_data();
        let data: Vec<&str> = data.iter().map(String::as_str).collect();
        let unbound = Unbound::start(&ub_dir, &files.chain, &files.key, &data);
        Fixture {
            dir,
            pki,
            files,
            unbound,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Both roots (honest and rogue) in one PEM file: the case where only a pin helps.
    fn both_roots(&self) -> PathBuf {
        let path = self.path("both_roots.pem");
        let mut pem = std::fs::read_to_string(&self.files.ca).expect("ca.pem");
        pem.push_str(&std::fs::read_to_string(&self.files.rogue_ca).expect("rogue_ca.pem"));
        std::fs::write(&path, pem).expect("write both_roots.pem");
        path
    }

    fn honest_pin(&self) -> String {
        self.pki.root().spki_sha256_base64()
    }

    fn evidence_dir(&self) -> PathBuf {
        self.path("evidence")
    }

    /// A ctdns config: listen on a free loopback port, trust `roots`, the PKI's log list,
    /// evidence in the tempdir, and `upstream` (a TOML `[[upstream]]` body).
    fn config(&self, roots: &Path, upstream: &str) -> PathBuf {
        let text = format!(
            "listen = [\"127.0.0.1:0\"]\nquery_timeout_ms = 3000\n\n[tls]\nroots = {roots:?}\n\n\
             [ct]\nlog_list = {log_list:?}\n\n[evidence]\ndir = {evidence:?}\nmax_bytes = 100000\n\n[[upstream]]\n{upstream}",
            roots = roots.display().to_string(),
            log_list = self.files.log_list.display().to_string(),
            evidence = self.evidence_dir().display().to_string(),
        );
        let path = self.path("ctdns.toml");
        std::fs::write(&path, text).expect("write ctdns.toml");
        path
    }

    fn dot_upstream(&self, pins: &[String]) -> String {
        format!(
            "protocol = \"dot\"\nip = \"127.0.0.1\"\nport = {}\npins = {pins:?}\n",
            self.unbound.dot.port()
        )
    }

    fn doh_url(&self) -> String {
        format!("https://127.0.0.1:{}/dns-query", self.unbound.doh.port())
    }

    fn serve(&self, config: &Path) -> Ctdns {
        Ctdns::serve(
            &["--config", config.to_str().expect("utf-8 path")],
            &self.path("ctdns.log"),
        )
    }
}

fn dig(server: &Ctdns, args: &[&str]) -> String {
    let port = server.addr.port().to_string();
    let mut all = vec!["@127.0.0.1", "-p", &port, "+time=5", "+tries=1"];
    all.extend_from_slice(args);
    let (status, stdout, stderr) = run("dig", &all);
    assert!(status.success(), "dig {args:?}: {stdout}{stderr}");
    stdout
}

fn kdig(server: &Ctdns, args: &[&str]) -> String {
    let port = server.addr.port().to_string();
    let mut all = vec!["@127.0.0.1", "-p", &port, "+time=5", "+retry=0"];
    all.extend_from_slice(args);
    let (status, stdout, stderr) = run("kdig", &all);
    assert!(status.success(), "kdig {args:?}: {stdout}{stderr}");
    stdout
}

fn check(args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    let (status, stdout, stderr) = run(child::binary(), &all);
    (status.code(), stdout, stderr)
}

#[test]
fn dig_and_kdig_through_ctdns_to_unbound_over_dot() {
    let f = Fixture::honest();
    let config = f.config(&f.files.ca, &f.dot_upstream(&[f.honest_pin()]));
    let mut server = f.serve(&config);

    assert_eq!(
        dig(&server, &["www.example.test", "A", "+short"]).trim(),
        "192.0.2.1"
    );
    assert_eq!(
        dig(&server, &["www.example.test", "A", "+short", "+tcp"]).trim(),
        "192.0.2.1"
    );
    assert_eq!(
        dig(&server, &["www.example.test", "AAAA", "+short"]).trim(),
        "2001:db8::1"
    );
    assert_eq!(
        dig(&server, &["txt.example.test", "TXT", "+short"]).trim(),
        "\"hello-from-unbound\""
    );
    let nx = dig(&server, &["nothing.example.test", "A"]);
    assert!(nx.contains("status: NXDOMAIN"), "{nx}");
    assert_eq!(
        kdig(&server, &["www.example.test", "A", "+short"]).trim(),
        "192.0.2.1"
    );
    assert_eq!(
        kdig(&server, &["www.example.test", "AAAA", "+short", "+tcp"]).trim(),
        "2001:db8::1"
    );

    // A big RRset over UDP without EDNS(0) does not fit in 512 bytes: TC is set...
    let truncated = udp_exchange(
        server.addr,
        &query(0x7c7c, "big.example.test.", RecordType::TXT, false),
        Duration::from_secs(10),
    );
    assert!(truncated.metadata.truncation, "{truncated:?}");
    assert!(truncated.answers.len() < BIG_TXT_RECORDS);
    // ...and dig retries over TCP and gets all of it.
    let out = dig(&server, &["big.example.test", "TXT", "+noedns"]);
    assert!(out.contains("Truncated, retrying in TCP mode"), "{out}");
    let txt_lines = out
        .lines()
        .filter(|l| l.starts_with("big.example.test.") && l.contains("TXT"))
        .count();
    assert_eq!(txt_lines, BIG_TXT_RECORDS, "{out}");

    assert!(server.alive());
    // The startup report accepted the upstream and named what it presented.
    let log = server.wait_for_log("startup check: upstream accepted");
    let line = log
        .lines()
        .find(|l| l.contains("startup check: upstream accepted"))
        .unwrap_or_else(|| panic!("no startup line:\n{log}"));
    assert!(line.contains(&f.honest_pin()), "{line}");
    assert!(line.contains("not_after="), "{line}");
    assert!(line.contains("sct_logs="), "{line}");
    assert!(!line.contains("sct_logs=\"\""), "{line}");
    assert!(server.terminate().success());
    let log = server.log();
    assert!(
        !log.contains("refused certificate"),
        "the honest resolver was refused:\n{log}"
    );
}

#[test]
fn dig_through_ctdns_to_unbound_over_doh() {
    let f = Fixture::honest();
    let upstream = format!(
        "protocol = \"doh\"\nurl = \"{}\"\npins = [\"{}\"]\n",
        f.doh_url(),
        f.honest_pin()
    );
    let config = f.config(&f.files.ca, &upstream);
    let mut server = f.serve(&config);
    assert_eq!(
        dig(&server, &["www.example.test", "A", "+short"]).trim(),
        "192.0.2.1"
    );
    assert_eq!(
        kdig(&server, &["txt.example.test", "TXT", "+short", "+tcp"]).trim(),
        "\"hello-from-unbound\""
    );
    assert!(server.log().contains(&f.doh_url()));
    assert!(server.terminate().success());
}

#[test]
fn rogue_resolver_is_refused_by_the_pin_with_evidence() {
    let f = Fixture::rogue();
    let roots = f.both_roots();
    let config = f.config(&roots, &f.dot_upstream(&[f.honest_pin()]));
    // Someone else's file in the evidence directory, bigger than the cap: the cap must
    // neither count nor delete it.
    std::fs::create_dir(f.evidence_dir()).expect("create the evidence directory");
    let precious = f.evidence_dir().join("precious.db");
    std::fs::write(&precious, vec![7u8; 200_000]).expect("write precious.db");
    let mut server = f.serve(&config);

    let out = dig(&server, &["www.example.test", "A"]);
    assert!(out.contains("status: SERVFAIL"), "{out}");
    assert!(!out.contains("192.0.2.1"), "{out}");
    let out = dig(&server, &["www.example.test", "A", "+tcp"]);
    assert!(out.contains("status: SERVFAIL"), "{out}");

    // Evidence: the presented chain as PEM and a JSON record naming the rule. It is written
    // by a background thread (never in the handshake), so wait for it, with a deadline.
    let list = || -> Vec<PathBuf> {
        std::fs::read_dir(f.evidence_dir())
            .expect("the evidence directory exists")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| *p != precious)
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut entries = list();
    while !entries
        .iter()
        .any(|p| p.extension().is_some_and(|e| e == "json"))
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
        entries = list();
    }
    // Two queries (UDP, TCP) met the same refused chain: identical refusals within a minute
    // are saved once.
    assert_eq!(entries.len(), 2, "one PEM and one JSON: {entries:?}");
    assert_eq!(
        std::fs::read(&precious).map(|b| b.len()).ok(),
        Some(200_000),
        "precious.db survives the evidence cap"
    );
    let pem = entries
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "pem"))
        .unwrap_or_else(|| panic!("no evidence PEM in {entries:?}"));
    let json = entries
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap_or_else(|| panic!("no evidence JSON in {entries:?}"));
    let presented = std::fs::read_to_string(pem).unwrap();
    assert_eq!(presented.matches("BEGIN CERTIFICATE").count(), 2);
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
    assert_eq!(record["refusal"], "issuer-pin", "{record}");
    assert_eq!(
        record["upstream"],
        format!("dot://127.0.0.1:{}", f.unbound.dot.port())
    );
    assert_eq!(record["scts"].as_array().map(Vec::len), Some(2), "{record}");

    let log = server.log();
    let warn = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains("refused certificate: rule issuer-pin"))
        .unwrap_or_else(|| panic!("no WARN refusal line:\n{log}"));
    assert!(warn.contains("rule=\"issuer-pin\""), "{warn}");
    // Every refusal line names the presented leaf, its issuer and the chain's CA pins, and
    // says which pins line would accept it (the configured pin plus the rogue root's).
    let rogue_root = f.pki.rogue_root().spki_sha256_base64();
    let accept = format!("pins = [\"{}\", \"{rogue_root}\"]", f.honest_pin());
    for line in log.lines().filter(|l| l.contains("rule issuer-pin")) {
        assert!(line.contains("leaf `"), "{line}");
        assert!(line.contains("issued by `"), "{line}");
        assert!(line.contains(&rogue_root), "{line}");
        assert!(line.contains(&accept), "{line}");
    }
    // The startup report refused it too, with the evidence file it wrote.
    let log = server.wait_for_log("startup check: UPSTREAM REFUSED");
    let line = log
        .lines()
        .find(|l| l.contains("startup check: UPSTREAM REFUSED"))
        .unwrap_or_else(|| panic!("no startup refusal:\n{log}"));
    assert!(line.contains("rule=\"issuer-pin\""), "{line}");
    assert!(line.contains("leaf_subject="), "{line}");
    let evidence = line
        .split("evidence=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .map(|e| e.trim_matches('"').to_string())
        .unwrap_or_default();
    // Evidence is written in the background: wait for the named file.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !Path::new(&evidence).exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        evidence.ends_with(".json") && Path::new(&evidence).exists(),
        "{evidence}: {line}"
    );
    assert!(log.contains("NO UPSTREAM IS USABLE"), "{log}");
    assert!(log.contains("an operator may have changed CA"), "{log}");
    assert!(server.alive());
    assert!(server.terminate().success());

    // `ctdns check` agrees: refused with the pin (exit 1), accepted without it (the rogue
    // certificate is CT-logged and chains to a trusted root; only the pin tells).
    let port = f.unbound.dot.port().to_string();
    let roots = roots.to_str().unwrap();
    let log_list = f.files.log_list.to_str().unwrap();
    let pin = f.honest_pin();
    let common = [
        "127.0.0.1",
        "--port",
        &port,
        "--roots",
        roots,
        "--log-list",
        log_list,
    ];
    let mut with_pin = common.to_vec();
    with_pin.extend_from_slice(&["--pin", &pin, "--query", "www.example.test."]);
    let (code, stdout, stderr) = check(&with_pin);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("VERDICT: REFUSED (issuer-pin)"), "{stdout}");
    assert!(stdout.contains(&accept), "{stdout}");
    assert!(!stdout.contains("192.0.2.1"), "no query after a refusal");
    let (code, stdout, stderr) = check(&common);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("VERDICT: ACCEPTED"), "{stdout}");
}

#[test]
fn check_command_against_unbound() {
    let f = Fixture::honest();
    let port = f.unbound.dot.port().to_string();
    let ca = f.files.ca.to_str().unwrap();
    let log_list = f.files.log_list.to_str().unwrap();
    let trust = ["--roots", ca, "--log-list", log_list];

    // DoT: chain, SANs, SCT table, verdict, then the answer to one query.
    let mut args = vec!["127.0.0.1", "--port", &port];
    args.extend_from_slice(&trust);
    args.extend_from_slice(&["--query", "www.example.test."]);
    let (code, stdout, stderr) = check(&args);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    eprintln!("SCRATCH\n{stdout}");
    for needle in [
        "Target: dot://127.0.0.1:",
        "SANs:    IP [\"127.0.0.1\"]",
        "SCTs:",
        "Alpha",
        "Beta",
        "CT policy: compliant",
        "VERDICT: ACCEPTED",
        "Query www.example.test. A: NOERROR",
        "192.0.2.1",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
    for log in ["Alpha", "Beta"] {
        let row = stdout
            .lines()
            .find(|l| l.trim_start().starts_with("embedded") && l.contains(log))
            .unwrap_or_else(|| panic!("no SCT row for {log}:\n{stdout}"));
        assert!(row.contains(" valid "), "{row}");
        assert!(row.trim_end().ends_with("yes"), "{row}");
    }

    // --json carries the same facts.
    let mut args = vec!["127.0.0.1", "--port", &port, "--json"];
    args.extend_from_slice(&trust);
    args.extend_from_slice(&["--query", "www.example.test.", "--type", "AAAA"]);
    let (code, stdout, stderr) = check(&args);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("JSON output");
    assert_eq!(json["accepted"], true);
    assert_eq!(json["scts"].as_array().map(Vec::len), Some(2));
    assert_eq!(json["chain"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        json["answer"]["answers"][0]
            .as_str()
            .map(|s| s.contains("2001:db8::1")),
        Some(true),
        "{json}"
    );

    // DoH: ALPN h2 and a query over HTTP/2 on the verified connection.
    let url = f.doh_url();
    let mut args = vec![url.as_str()];
    args.extend_from_slice(&trust);
    args.extend_from_slice(&["--query", "www.example.test."]);
    let (code, stdout, stderr) = check(&args);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    eprintln!("SCRATCH\n{stdout}");
    assert!(stdout.contains("ALPN h2"), "{stdout}");
    assert!(stdout.contains("VERDICT: ACCEPTED"), "{stdout}");
    assert!(stdout.contains("192.0.2.1"), "{stdout}");

    // A pin on the rogue CA refuses the honest resolver (exit 1).
    let rogue_pin = f.pki.rogue_root().spki_sha256_base64();
    let mut args = vec![url.as_str(), "--pin", &rogue_pin];
    args.extend_from_slice(&trust);
    let (code, stdout, _) = check(&args);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("VERDICT: REFUSED (issuer-pin)"), "{stdout}");

    // A URL with a host name: --ip is dialed, the name goes in SNI and must be in the
    // certificate, which has only the IP SAN: refused by the dns-name rule.
    let name_url = format!("https://localhost:{}/dns-query", f.unbound.doh.port());
    let mut args = vec![name_url.as_str(), "--ip", "127.0.0.1"];
    args.extend_from_slice(&trust);
    let (code, stdout, stderr) = check(&args);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("VERDICT: REFUSED (dns-name)"), "{stdout}");
    let (code, _, stderr) = check(&[name_url.as_str(), "--roots", ca]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--ip"), "{stderr}");

    // Connection failures and bad input exit 2 and say which.
    let plain_port = f.unbound.plain.port().to_string();
    let closed = unbound::free_port().to_string();
    let mut args = vec!["127.0.0.1", "--port", &closed];
    args.extend_from_slice(&trust);
    let (code, _, stderr) = check(&args);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("connection failure (TCP connect)"),
        "{stderr}"
    );
    // unbound's plain-DNS port does not speak TLS.
    let mut args = vec!["127.0.0.1", "--port", &plain_port, "--timeout", "1"];
    args.extend_from_slice(&trust);
    let (code, _, stderr) = check(&args);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("connection failure (TLS handshake)"),
        "{stderr}"
    );
    let (code, _, stderr) = check(&["resolver.example", "--roots", ca]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("bad input"), "{stderr}");
}

#[test]
fn stale_log_list_is_announced_and_enforced_or_refused() {
    let f = Fixture::honest();
    let stale = f
        .pki
        .log_list_json(f.pki.now() - time::Duration::days(100))
        .expect("log list");
    std::fs::write(&f.files.log_list, stale).expect("write the stale list");

    // Default: warn loudly at startup, keep enforcing with the stale list.
    let config = f.config(&f.files.ca, &f.dot_upstream(&[f.honest_pin()]));
    let mut server = f.serve(&config);
    let log = server.log();
    let warn = log
        .lines()
        .find(|l| l.contains("CT log list: STALE"))
        .unwrap_or_else(|| panic!("no staleness warning:\n{log}"));
    assert!(warn.contains("WARN"), "{warn}");
    assert!(warn.contains("age_days=100"), "{warn}");
    assert_eq!(
        dig(&server, &["www.example.test", "A", "+short"]).trim(),
        "192.0.2.1"
    );
    assert!(server.terminate().success());
    drop(server);

    // ct.refuse_stale_list: every upstream is refused, clients get SERVFAIL.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[ct]\n", "[ct]\nrefuse_stale_list = true\n");
    std::fs::write(&config, text).unwrap();
    let mut server = f.serve(&config);
    let log = server.log();
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains("EVERY upstream will be refused")),
        "{log}"
    );
    let out = dig(&server, &["www.example.test", "A"]);
    assert!(out.contains("status: SERVFAIL"), "{out}");
    let log = server.log();
    assert!(log.contains("rule=\"log-list-stale\""), "{log}");
    assert!(server.terminate().success());
}

#[tokio::test]
async fn library_client_resolves_through_unbound() {
    let f = Fixture::honest();
    let base = ctdns::config::Config::from_toml(&format!(
        "[tls]\nroots = {:?}\n[ct]\nlog_list = {:?}\n",
        f.files.ca.display().to_string(),
        f.files.log_list.display().to_string()
    ))
    .expect("config");
    let pins = vec![ctdns::tls::pins::SpkiPin::parse(&f.honest_pin()).expect("pin")];
    let dot = ctdns::config::UpstreamConfig::Dot {
        ip: LOOPBACK,
        port: Some(f.unbound.dot.port()),
        name: None,
        pins: pins.clone(),
    };
    let doh = ctdns::config::UpstreamConfig::Doh {
        url: ctdns::config::DohUrl::parse(&f.doh_url()).expect("url"),
        ip: None,
        port: None,
        name: None,
        method: ctdns::config::DohMethod::Post,
        pins,
    };
    for upstream in [dot, doh] {
        let config = ctdns::config::Config {
            upstreams: vec![upstream],
            ..base.clone()
        };
        let client = ctdns::client::Client::from_config(&config).expect("client");
        let answer = client
            .query("www.example.test.", RecordType::A)
            .await
            .expect("an answer");
        let addrs: Vec<_> = answer
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect();
        assert_eq!(addrs, vec![Ipv4Addr::new(192, 0, 2, 1)]);
    }

    // The same client code refuses a pin on the rogue CA: no answer, a typed error.
    let config = ctdns::config::Config {
        upstreams: vec![ctdns::config::UpstreamConfig::Dot {
            ip: LOOPBACK,
            port: Some(f.unbound.dot.port()),
            name: None,
            pins: vec![
                ctdns::tls::pins::SpkiPin::parse(&f.pki.rogue_root().spki_sha256_base64())
                    .expect("pin"),
            ],
        }],
        ..base
    };
    let client = ctdns::client::Client::from_config(&config).expect("client");
    let err = client
        .query("www.example.test.", RecordType::A)
        .await
        .expect_err("refused");
    let refusal = ctdns::tls::verifier::Refusal::find_in(&err);
    assert_eq!(refusal.map(|r| r.rule()), Some("issuer-pin"), "{err}");
}
