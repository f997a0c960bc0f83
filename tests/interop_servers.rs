//! Interoperability with DNS servers written by others, on loopback: BIND 9 (`named`),
//! dnsdist and Knot Resolver (`kresd`) serve DoT and DoH with a certificate chain from the
//! test PKI (CT-logged by the PKI's logs), the built `ctdns serve` forwards to each, and real
//! clients (`dig` over UDP, `kdig` over TCP) ask ctdns. A rogue chain (from the rogue CA,
//! CT-logged too) must be refused by the issuer pin before any DNS query reaches the server:
//! the server's own statistics must count zero queries from ctdns.
//!
//! The matrix these tests establish is written up in `tests/INTEROP.md`.
//!
//! These tests need named, dnsdist, kresd, dig and kdig: `scripts/test.sh` installs them.
//! Without them the tests fail (they never skip).

#[path = "common/ctdns.rs"]
mod child;
#[path = "common/servers.rs"]
mod servers;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;

use child::{run, Ctdns};
use ctdns::pki::{default_logs, IssuedLeaf, LeafIssuer, SctSpec, TestPki, WrittenFiles};
use servers::{Kind, Records, Server};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The transport ctdns uses to reach the server.
#[derive(Clone, Copy, Debug)]
enum Proto {
    Dot,
    /// DoH with POST (ctdns's default method).
    DohPost,
    /// DoH with GET `?dns=`.
    DohGet,
}

fn require_clients() {
    for tool in ["dig", "kdig"] {
        let found = Command::new(tool).arg("-v").output().is_ok();
        assert!(
            found,
            "`{tool}` is not installed: run scripts/test.sh (it installs dig and kdig)"
        );
    }
}

/// A test PKI on disk and one server serving `leaf` from it.
struct Fixture {
    // Fields drop in order: the server stops before its directory is removed.
    server: Server,
    pki: TestPki,
    files: WrittenFiles,
    dir: tempfile::TempDir,
}

impl Fixture {
    /// The honest setup: the demo leaf for 127.0.0.1 (two embedded SCTs, honest CA).
    fn honest(kind: Kind) -> Fixture {
        require_clients();
        let (pki, leaf) = ctdns::pki::demo_pki(LOOPBACK).expect("demo PKI");
        Self::serving(kind, pki, &leaf)
    }

    /// The rogue setup: a leaf for 127.0.0.1 from the rogue CA, with valid SCTs from two
    /// operators — it passes every rule but the issuer pin.
    fn rogue(kind: Kind) -> Fixture {
        require_clients();
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
        Self::serving(kind, pki, &leaf)
    }

    fn serving(kind: Kind, pki: TestPki, leaf: &IssuedLeaf) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let files =
            ctdns::pki::write_files(&dir.path().join("pki"), &pki, leaf).expect("PKI files");
        let server_dir = dir.path().join(kind.name());
        std::fs::create_dir_all(&server_dir).expect("server dir");
        let server = Server::start(kind, &server_dir, &files.chain, &files.key);
        Fixture {
            server,
            pki,
            files,
            dir,
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

    fn evidence_dir(&self, proto: Proto) -> PathBuf {
        self.path(&format!("evidence-{proto:?}"))
    }

    fn doh_url(&self) -> String {
        format!("https://127.0.0.1:{}/dns-query", self.server.doh.port())
    }

    /// How ctdns names the upstream in logs and evidence.
    fn upstream_label(&self, proto: Proto) -> String {
        match proto {
            Proto::Dot => format!("dot://127.0.0.1:{}", self.server.dot.port()),
            Proto::DohPost | Proto::DohGet => self.doh_url(),
        }
    }

    /// Start `ctdns serve` on a free loopback port trusting `roots`, pinned to the honest
    /// root, with the server's `proto` listener as its only upstream.
    fn serve(&self, roots: &Path, proto: Proto) -> Ctdns {
        let upstream = match proto {
            Proto::Dot => format!(
                "protocol = \"dot\"\nip = \"127.0.0.1\"\nport = {}\n",
                self.server.dot.port()
            ),
            Proto::DohPost => format!("protocol = \"doh\"\nurl = \"{}\"\n", self.doh_url()),
            Proto::DohGet => format!(
                "protocol = \"doh\"\nurl = \"{}\"\nmethod = \"get\"\n",
                self.doh_url()
            ),
        };
        let text = format!(
            "listen = [\"127.0.0.1:0\"]\nquery_timeout_ms = 3000\n\n[tls]\nroots = {roots:?}\n\n\
             [ct]\nlog_list = {log_list:?}\n\n[evidence]\ndir = {evidence:?}\n\n[[upstream]]\n\
             {upstream}pins = [{pin:?}]\n",
            roots = roots.display().to_string(),
            log_list = self.files.log_list.display().to_string(),
            evidence = self.evidence_dir(proto).display().to_string(),
            pin = self.honest_pin(),
        );
        let config = self.path(&format!("ctdns-{proto:?}.toml"));
        std::fs::write(&config, text).expect("write the ctdns config");
        Ctdns::serve(
            &["--config", config.to_str().expect("utf-8 path")],
            &self.path(&format!("ctdns-{proto:?}.log")),
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
    let mut all = vec!["@127.0.0.1", "-p", &port, "+time=5", "+retry=0", "+tcp"];
    all.extend_from_slice(args);
    let (status, stdout, stderr) = run("kdig", &all);
    assert!(status.success(), "kdig {args:?}: {stdout}{stderr}");
    stdout
}

/// Honest chain: ctdns accepts the server's certificate and relays its answers to dig (UDP)
/// and kdig (TCP); the server's own statistics count the queries ctdns forwarded.
fn honest(kind: Kind, proto: Proto) {
    let f = Fixture::honest(kind);
    let before = f.server.queries_received();
    let mut ctdns = f.serve(&f.files.ca, proto);

    assert_eq!(
        dig(&ctdns, &["www.example.test", "A", "+short"]).trim(),
        Records::A
    );
    assert_eq!(
        kdig(&ctdns, &["www.example.test", "AAAA", "+short"]).trim(),
        Records::AAAA
    );
    // The TXT record names the server: the answer came from it, not from somewhere else.
    let txt = format!("\"{}\"", Records::txt(kind));
    assert_eq!(
        dig(&ctdns, &["txt.example.test", "TXT", "+short"]).trim(),
        txt
    );
    assert_eq!(
        kdig(&ctdns, &["txt.example.test", "TXT", "+short", "+norecurse"]).trim(),
        txt
    );
    let nx = dig(&ctdns, &["nothing.example.test", "A"]);
    assert!(nx.contains("status: NXDOMAIN"), "{nx}");
    let nx = kdig(&ctdns, &["nothing-else.example.test", "A"]);
    assert!(nx.contains("status: NXDOMAIN"), "{nx}");

    // dnsdist also counts DoH requests by HTTP method: ctdns used the configured one.
    if let Some((get, post)) = f.server.dnsdist_doh_methods() {
        let (want_get, want_post) = match proto {
            Proto::Dot => (false, false),
            Proto::DohPost => (false, true),
            Proto::DohGet => (true, false),
        };
        assert_eq!((get > 0, post > 0), (want_get, want_post), "{proto:?}");
    } else {
        assert_ne!(
            kind,
            Kind::Dnsdist,
            "dnsdist's DoH statistics are unreadable"
        );
    }

    let forwarded = f.server.queries_received() - before;
    // Five distinct questions (the second TXT may come from ctdns's cache).
    assert!(
        forwarded >= 5,
        "{} counted {forwarded} queries from ctdns; its log:\n{}",
        kind.name(),
        f.server.log()
    );

    assert!(ctdns.alive());
    assert!(ctdns.terminate().success());
    let log = ctdns.log();
    assert!(
        !log.contains("refused certificate"),
        "the honest {} was refused:\n{log}",
        kind.name()
    );
    assert!(log.contains(&f.upstream_label(proto)), "{log}");
}

/// Rogue chain (valid, CT-logged, chains to a trusted root, but not under the pinned CA):
/// ctdns answers SERVFAIL over UDP and TCP, saves evidence naming the issuer-pin rule, and the
/// server's own statistics show that not one DNS query reached it, over DoT nor DoH (POST
/// or GET). A control query sent straight to the server then counts 1: the counter counts.
fn rogue(kind: Kind) {
    let f = Fixture::rogue(kind);
    let roots = f.both_roots();
    assert_eq!(f.server.queries_received(), 0, "a fresh server");

    for proto in [Proto::Dot, Proto::DohPost, Proto::DohGet] {
        let mut ctdns = f.serve(&roots, proto);
        let out = dig(&ctdns, &["www.example.test", "A"]);
        assert!(out.contains("status: SERVFAIL"), "{proto:?}: {out}");
        assert!(!out.contains(Records::A), "{proto:?}: {out}");
        let out = kdig(&ctdns, &["txt.example.test", "TXT"]);
        assert!(out.contains("status: SERVFAIL"), "{proto:?}: {out}");
        assert!(!out.contains(&Records::txt(kind)), "{proto:?}: {out}");

        // Evidence names the rule and the upstream, with the chain the server presented.
        // It is written in the background (temporary name, then renamed): wait for the pair.
        let list = || -> Vec<PathBuf> {
            std::fs::read_dir(f.evidence_dir(proto))
                .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default()
        };
        let has = |entries: &[PathBuf], ext: &str| {
            entries
                .iter()
                .any(|p| p.extension().is_some_and(|e| e == ext))
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut entries = list();
        while !(has(&entries, "json") && has(&entries, "pem"))
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
            entries = list();
        }
        let json = entries
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == "json"))
            .unwrap_or_else(|| panic!("no evidence JSON in {entries:?}"));
        let record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
        assert_eq!(record["refusal"], "issuer-pin", "{record}");
        assert_eq!(record["upstream"], f.upstream_label(proto), "{record}");
        let pem = entries
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == "pem"))
            .unwrap_or_else(|| panic!("no evidence PEM in {entries:?}"));
        let presented = std::fs::read_to_string(pem).unwrap();
        let served = std::fs::read_to_string(&f.files.chain).unwrap();
        assert_eq!(
            presented.matches("BEGIN CERTIFICATE").count(),
            served.matches("BEGIN CERTIFICATE").count()
        );

        assert!(ctdns.alive());
        assert!(ctdns.terminate().success());
        let log = ctdns.log();
        assert!(
            log.lines()
                .any(|l| l.contains("WARN") && l.contains("rule=\"issuer-pin\"")),
            "{proto:?}: no issuer-pin refusal in the log:\n{log}"
        );

        assert_eq!(
            f.server.queries_received(),
            0,
            "{} received DNS queries from ctdns over {proto:?} despite the refusal; its log:\n{}",
            kind.name(),
            f.server.log()
        );
    }

    // Control: one query straight to the server's plain port moves its counter to 1.
    let port = f.server.plain.port().to_string();
    let (status, stdout, stderr) = run(
        "dig",
        &[
            "@127.0.0.1",
            "-p",
            &port,
            "+time=5",
            "+tries=1",
            "+short",
            "www.example.test",
            "A",
        ],
    );
    assert!(status.success(), "{stdout}{stderr}");
    assert_eq!(stdout.trim(), Records::A);
    assert_eq!(f.server.queries_received(), 1, "{}", f.server.log());
}

#[test]
fn named_over_dot() {
    honest(Kind::Named, Proto::Dot);
}

#[test]
fn named_over_doh_post() {
    honest(Kind::Named, Proto::DohPost);
}

#[test]
fn named_over_doh_get() {
    honest(Kind::Named, Proto::DohGet);
}

#[test]
fn named_rogue_chain_refused_before_any_query() {
    rogue(Kind::Named);
}

#[test]
fn dnsdist_over_dot() {
    honest(Kind::Dnsdist, Proto::Dot);
}

#[test]
fn dnsdist_over_doh_post() {
    honest(Kind::Dnsdist, Proto::DohPost);
}

#[test]
fn dnsdist_over_doh_get() {
    honest(Kind::Dnsdist, Proto::DohGet);
}

#[test]
fn dnsdist_rogue_chain_refused_before_any_query() {
    rogue(Kind::Dnsdist);
}

#[test]
fn kresd_over_dot() {
    honest(Kind::Kresd, Proto::Dot);
}

#[test]
fn kresd_over_doh_post() {
    honest(Kind::Kresd, Proto::DohPost);
}

#[test]
fn kresd_over_doh_get() {
    honest(Kind::Kresd, Proto::DohGet);
}

#[test]
fn kresd_rogue_chain_refused_before_any_query() {
    rogue(Kind::Kresd);
}

/// The versions the matrix in tests/INTEROP.md was made with are the ones installed: a
/// different major.minor means the write-up needs a new run.
#[test]
fn installed_versions_match_the_write_up() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/INTEROP.md"))
        .expect("tests/INTEROP.md");
    for (kind, prefix) in [
        (Kind::Named, "BIND 9.18."),
        (Kind::Dnsdist, "dnsdist 1.7."),
        (Kind::Kresd, "Knot Resolver, version 5.6."),
    ] {
        let version = kind.version();
        assert!(
            version.starts_with(prefix),
            "{}: {version:?} is not {prefix}*",
            kind.name()
        );
        assert!(doc.contains(prefix), "INTEROP.md does not name {prefix}");
    }
}
