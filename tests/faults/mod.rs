//! Faulty upstream resolvers for fault-injection tests, and the client-side trust the real
//! ctdns verifier is built from.
//!
//! The servers are the test kit's ([`ctdns::testkit::TestServer`]: DoT or DoH on
//! 127.0.0.1:0, [`Answers::Synthetic`](ctdns::testkit::Answers::Synthetic) answers, every
//! [`Fault`] switchable at any time); [`start`] starts one with the honest leaf of a
//! [`FaultPki`] and its rogue leaf for [`Fault::RogueCert`], and [`FaultyTransport`] builds the
//! ctdns client transport to it.
//!
//! [`FaultPki`] is the test PKI seen from both sides: the honest and the rogue leaf for
//! 127.0.0.1 (each CT-logged by two logs of distinct operators), and client configurations
//! around the real [`CtVerifier`] trusting both roots, enforcing the Chrome CT policy over
//! the PKI's log list, and pinning the honest intermediate, so only the pin refuses the rogue
//! certificate.

#![allow(dead_code)]

pub mod client;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use ctdns::ct::checker::CtChecker;
use ctdns::ct::log_list::LogList;
use ctdns::ct::policy::CtPolicy;
use ctdns::pki::{default_logs, IssuedLeaf, LeafIssuer, PkiOptions, SctSpec, TestPki};
use ctdns::testkit::ServerCert;
use ctdns::tls::pins::SpkiPin;
use ctdns::tls::{client_config, CtVerifier};
use ctdns::upstream::doh::{DohEndpoint, DohOptions, DohTransport};
use ctdns::upstream::dot::{DotOptions, DotTransport};
use ctdns::upstream::Transport;

// Each test binary uses a different part of these.
#[allow(unused_imports)]
pub use ctdns::testkit::answers::{BIG_ANSWER_RECORDS, MID_ANSWER_RECORDS};
#[allow(unused_imports)]
pub use ctdns::testkit::{big_ip, expected_ip, Counters, Fault, Protocol as Kind, RefusalLog};

/// The test kit's server, as the fault tests call it.
pub type FaultyServer = ctdns::testkit::TestServer;

/// 127.0.0.1, where every server listens and every leaf is issued for.
pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The correct (synthetic) response to `query`, or `None` if it is not a DNS query.
pub fn answer(query: &[u8]) -> Option<Vec<u8>> {
    ctdns::testkit::answers::synthetic(query)
}

/// The test PKI from both sides.
pub struct FaultPki {
    /// The generated PKI.
    pub pki: TestPki,
    /// Leaf for 127.0.0.1 from the honest intermediate, SCTs from Alpha and Beta.
    pub honest: IssuedLeaf,
    /// Leaf for 127.0.0.1 from the rogue intermediate, SCTs from Alpha and Beta.
    pub rogue: IssuedLeaf,
    log_list: Arc<LogList>,
    roots: Arc<Vec<rustls::pki_types::TrustAnchor<'static>>>,
    pins: Vec<SpkiPin>,
}

impl FaultPki {
    /// Generates the PKI and both leaves.
    pub fn generate() -> Self {
        let pki = TestPki::generate(&PkiOptions::default()).expect("test PKI");
        let ts = pki.now() - time::Duration::minutes(5);
        let leaf = |issuer: LeafIssuer| {
            let spec = pki
                .leaf_spec(LOCALHOST)
                .issued_by(issuer)
                .embed(SctSpec::at(default_logs::ALPHA, ts))
                .embed(SctSpec::at(default_logs::BETA, ts));
            pki.issue_leaf(&spec).expect("leaf")
        };
        let honest = leaf(LeafIssuer::Intermediate);
        let rogue = leaf(LeafIssuer::RogueIntermediate);
        let json = pki.log_list_json(pki.now()).expect("log list JSON");
        let log_list = Arc::new(LogList::from_json(json.as_bytes()).expect("log list parses"));
        // Both roots are trusted: only the issuer pin tells the rogue chain apart.
        let roots = ctdns::tls::roots::anchors_from_der(&pki.trust_anchors(), "test PKI")
            .expect("trust anchors");
        let pins = vec![SpkiPin::of_spki(pki.intermediate().spki_der())];
        FaultPki {
            pki,
            honest,
            rogue,
            log_list,
            roots: Arc::new(roots),
            pins,
        }
    }

    /// The real verifier for one upstream: both roots, Chrome CT policy over the PKI's log
    /// list, the honest intermediate pinned, refusals reported to `refusals`.
    pub fn verifier(&self, label: &str, refusals: Arc<RefusalLog>) -> CtVerifier {
        let checker = CtChecker::new(Arc::clone(&self.log_list), CtPolicy::chrome());
        CtVerifier::new(Arc::clone(&self.roots), checker)
            .with_pins(self.pins.clone())
            .with_label(label)
            .with_observer(refusals)
    }

    /// A client configuration around [`FaultPki::verifier`].
    pub fn client_config(
        &self,
        label: &str,
        alpn: &[&[u8]],
        refusals: Arc<RefusalLog>,
    ) -> Arc<rustls::ClientConfig> {
        client_config(Arc::new(self.verifier(label, refusals)), alpn).expect("client config")
    }

    /// The honest leaf as a server certificate (no OCSP staple).
    pub fn honest_cert(&self) -> ServerCert {
        ServerCert::new(self.honest.chain.clone(), self.honest.key_der())
    }

    /// The rogue leaf as a server certificate (no OCSP staple).
    pub fn rogue_cert(&self) -> ServerCert {
        ServerCert::new(self.rogue.chain.clone(), self.rogue.key_der())
    }
}

/// Timeouts of the client transports built by [`FaultyServer::transport`].
#[derive(Debug, Clone, Copy)]
pub struct ClientTimeouts {
    /// TCP connect plus TLS handshake (plus HTTP/2 start for DoH).
    pub connect: Duration,
    /// One query, connect included.
    pub query: Duration,
    /// DoT: a query abandoned after this long with nothing received marks the connection
    /// stalled.
    pub stall: Duration,
}

/// Starts a `kind` server on 127.0.0.1:0 with `pki`'s honest leaf (its rogue leaf while
/// [`Fault::RogueCert`] is set), misbehaving as `fault` says.
pub async fn start(kind: Kind, pki: &FaultPki, fault: Fault) -> FaultyServer {
    FaultyServer::builder(kind, pki.honest_cert())
        .rogue(pki.rogue_cert())
        .fault(fault)
        .start()
        .await
        .expect("test server starts")
}

/// The ctdns client transport to a faulty server.
pub trait FaultyTransport {
    /// A ctdns transport to this server with the real CT verifier of `pki`.
    fn transport(
        &self,
        pki: &FaultPki,
        refusals: Arc<RefusalLog>,
        timeouts: ClientTimeouts,
    ) -> Arc<dyn Transport>;
}

impl FaultyTransport for FaultyServer {
    fn transport(
        &self,
        pki: &FaultPki,
        refusals: Arc<RefusalLog>,
        timeouts: ClientTimeouts,
    ) -> Arc<dyn Transport> {
        let addr = self.addr();
        match self.protocol() {
            Kind::Dot => {
                let label = format!("dot://{addr}");
                let tls = pki.client_config(&label, &[], refusals);
                Arc::new(DotTransport::new(
                    addr,
                    tls,
                    DotOptions {
                        connect_timeout: timeouts.connect,
                        query_timeout: timeouts.query,
                        stall_timeout: timeouts.stall,
                        ..DotOptions::default()
                    },
                ))
            }
            Kind::Doh => {
                let endpoint = DohEndpoint::ip(addr, "/dns-query");
                let label = format!("https://{addr}/dns-query");
                let tls = pki.client_config(&label, &[b"h2"], refusals);
                Arc::new(DohTransport::new(
                    endpoint,
                    tls,
                    DohOptions {
                        connect_timeout: timeouts.connect,
                        query_timeout: timeouts.query,
                        ..DohOptions::default()
                    },
                ))
            }
        }
    }
}

/// Waits (bounded) until `check` holds, polling every 10 ms; whether it did.
pub async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
