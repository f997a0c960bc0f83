//! Issue 15 item 4: a hickory-resolver `Resolver` whose DoT and DoH connections run the CT
//! verifier (`ctdns::client::hickory`), against a real unbound on loopback.
//!
//! hickory sends the configured TLS name (`dns.test`) as the server name, so the verifier
//! runs in name mode. An honest chain (test PKI, two SCTs, the pinned CA) answers over DoT
//! and DoH; a rogue chain (CT-logged, from the rogue CA that is also trusted) is refused by
//! the issuer pin, and unbound, which logs every query it receives (`log-queries`), logs
//! none: zero DNS bytes reached it.
//!
//! hickory reports a name server it could not connect to as `NoConnections`, without the
//! TLS error, so the typed refusal is taken where an app would take it: from a
//! `RefusalObserver` on the verifier (what ctdns's evidence store uses).
//!
//! Needs unbound (`scripts/test.sh` installs it); without it the tests fail, never skip.

#[path = "common/provider.rs"]
mod provider;
#[path = "common/unbound.rs"]
mod unbound;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ctdns::ct::{checker::CtChecker, log_list::LogList, policy::CtPolicy};
use ctdns::pki::{default_logs, IssuedLeaf, LeafIssuer, SctSpec, TestPki};
use ctdns::tls::verifier::{RefusalEvent, RefusalObserver};
use ctdns::tls::{pins::SpkiPin, CtVerifier};
use hickory_resolver::config::NameServerConfig;
use unbound::Unbound;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const TLS_NAME: &str = "dns.test";

/// A leaf for 127.0.0.1 and `dns.test`, with two SCTs, from `issuer`.
fn leaf(pki: &TestPki, issuer: LeafIssuer) -> IssuedLeaf {
    let ts = pki.now() - time::Duration::minutes(1);
    let mut spec = pki
        .leaf_spec(LOOPBACK)
        .issued_by(issuer)
        .embed(SctSpec::at(default_logs::ALPHA, ts))
        .embed(SctSpec::at(default_logs::BETA, ts));
    spec.dns_sans = vec![TLS_NAME.into()];
    pki.issue_leaf(&spec).expect("leaf")
}

/// Collects the rule and server name of every refusal.
#[derive(Debug, Default)]
struct Refusals(Mutex<Vec<(String, &'static str)>>);

impl RefusalObserver for Refusals {
    fn refused(&self, event: &RefusalEvent<'_>) {
        if let Some(refusal) = &event.decision.refusal {
            self.0
                .lock()
                .expect("lock")
                .push((event.server_name.clone(), refusal.rule()));
        }
    }
}

impl Refusals {
    fn seen(&self) -> Vec<(String, &'static str)> {
        self.0.lock().expect("lock").clone()
    }
}

struct Fixture {
    // Fields drop in order: unbound stops before its directory is removed.
    unbound: Unbound,
    pki: TestPki,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn start(issuer: LeafIssuer) -> Fixture {
        assert!(
            unbound::unbound_binary().is_some(),
            "unbound is not installed: run scripts/test.sh (it installs it)"
        );
        let pki = TestPki::generate(&ctdns::pki::PkiOptions::default()).expect("PKI");
        let leaf = leaf(&pki, issuer);
        let dir = tempfile::tempdir().expect("tempdir");
        let files =
            ctdns::pki::write_files(&dir.path().join("pki"), &pki, &leaf).expect("PKI files");
        let ub_dir = dir.path().join("unbound");
        std::fs::create_dir_all(&ub_dir).expect("unbound dir");
        let unbound = Unbound::start_with(
            &ub_dir,
            &files.chain,
            &files.key,
            &[
                "www.example.test. 300 IN A 192.0.2.1",
                "www.example.test. 300 IN AAAA 2001:db8::1",
            ],
            &["log-queries: yes"],
        );
        Fixture {
            unbound,
            pki,
            _dir: dir,
        }
    }

    /// The CT verifier an app would build: both roots trusted (so only the pin tells the
    /// honest CA from the rogue one), the honest root pinned, the PKI's logs.
    fn verifier(&self) -> CtVerifier {
        let list = LogList::from_json(
            self.pki
                .log_list_json(self.pki.now())
                .expect("log list")
                .as_bytes(),
        )
        .expect("log list parses");
        let roots = ctdns::tls::roots::anchors_from_der(
            &[
                self.pki.root().der().clone(),
                self.pki.rogue_root().der().clone(),
            ],
            "test roots",
        )
        .expect("roots");
        CtVerifier::new(
            Arc::new(roots),
            CtChecker::new(Arc::new(list), CtPolicy::chrome()),
        )
        .with_pins(vec![
            SpkiPin::parse(&self.pki.root().spki_sha256_base64()).expect("pin")
        ])
    }

    fn dot_server(&self) -> NameServerConfig {
        let mut ns = NameServerConfig::tls(LOOPBACK, TLS_NAME.into());
        ns.connections[0].port = self.unbound.dot.port();
        ns
    }

    fn doh_server(&self) -> NameServerConfig {
        let mut ns = NameServerConfig::https(LOOPBACK, TLS_NAME.into(), Some("/dns-query".into()));
        ns.connections[0].port = self.unbound.doh.port();
        ns
    }

    /// The queries unbound logged for `name` (log-queries lines name it).
    fn logged_queries(&self, name: &str) -> usize {
        self.unbound
            .log()
            .lines()
            .filter(|l| l.contains(name))
            .count()
    }
}

fn resolver(
    f: &Fixture,
    server: NameServerConfig,
    refusals: &Arc<Refusals>,
) -> hickory_resolver::TokioResolver {
    let verifier = f.verifier().with_observer(refusals.clone());
    // The resolver's TLS configuration is built from the verifier's provider.
    provider::assert_selected(verifier.provider());
    let mut builder = ctdns::client::hickory::builder(vec![server], verifier).expect("builder");
    builder.options_mut().timeout = Duration::from_secs(3);
    builder.options_mut().attempts = 1;
    builder.build().expect("resolver")
}

fn ips(lookup: &hickory_resolver::lookup_ip::LookupIp) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = lookup.iter().collect();
    ips.sort();
    ips
}

#[tokio::test]
async fn honest_chain_answers_over_dot_and_doh() {
    let f = Fixture::start(LeafIssuer::Intermediate);
    let expected: Vec<IpAddr> = vec![
        IpAddr::from([192, 0, 2, 1]),
        "2001:db8::1".parse().expect("ip"),
    ];
    let refusals = Arc::new(Refusals::default());
    for (protocol, server) in [("DoT", f.dot_server()), ("DoH", f.doh_server())] {
        let before = f.logged_queries("www.example.test.");
        let answer = resolver(&f, server, &refusals)
            .lookup_ip("www.example.test.")
            .await
            .unwrap_or_else(|e| panic!("{protocol}: {e}"));
        assert_eq!(ips(&answer), expected, "{protocol}");
        // The positive control for the zero-queries proof below: unbound logs what it gets.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while f.logged_queries("www.example.test.") <= before
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            f.logged_queries("www.example.test.") > before,
            "{protocol}: unbound logged no query:\n{}",
            f.unbound.log()
        );
    }
    assert_eq!(refusals.seen(), Vec::new());
}

#[tokio::test]
async fn rogue_chain_is_refused_and_unbound_receives_no_query() {
    let f = Fixture::start(LeafIssuer::RogueIntermediate);
    for (protocol, server) in [("DoT", f.dot_server()), ("DoH", f.doh_server())] {
        let refusals = Arc::new(Refusals::default());
        resolver(&f, server, &refusals)
            .lookup_ip("www.example.test.")
            .await
            .expect_err("the rogue chain must be refused");
        let seen = refusals.seen();
        assert!(!seen.is_empty(), "{protocol}: no refusal observed");
        assert!(
            seen.iter()
                .all(|(name, rule)| name == TLS_NAME && *rule == "issuer-pin"),
            "{protocol}: {seen:?}"
        );
    }
    // Let unbound flush its log, then: not one query was received.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = f.unbound.log();
    assert_eq!(
        f.logged_queries("www.example.test."),
        0,
        "unbound received a query from a refused connection:\n{log}"
    );
}

#[tokio::test]
async fn a_wrong_tls_name_is_refused_by_the_name_rule() {
    let f = Fixture::start(LeafIssuer::Intermediate);
    let mut ns = NameServerConfig::tls(LOOPBACK, "other.test".into());
    ns.connections[0].port = f.unbound.dot.port();
    let refusals = Arc::new(Refusals::default());
    resolver(&f, ns, &refusals)
        .lookup_ip("www.example.test.")
        .await
        .expect_err("a certificate not valid for the TLS name must be refused");
    let seen = refusals.seen();
    assert!(!seen.is_empty(), "no refusal observed");
    assert!(
        seen.iter()
            .all(|(name, rule)| name == "other.test" && *rule == "dns-name"),
        "{seen:?}"
    );
    // Refused in the handshake: unbound never saw the query.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        f.logged_queries("www.example.test."),
        0,
        "{}",
        f.unbound.log()
    );
}
