//! Issue 15 item 3: reqwest over ctdns (`ctdns::client::reqwest`), loopback only.
//!
//! A real unbound serves DoT with a test-PKI chain (CT-logged, pinned CA) and local data
//! for `*.test`; `CtResolve` resolves through it (A and AAAA). An HTTPS server in the test
//! (tokio-rustls + hyper) presents a certificate for `www.test`: reqwest, resolving
//! `www.test` through `CtResolve` and verifying with the CT verifier in name mode, fetches
//! the page when the certificate carries two SCTs, and is refused — with the typed refusal
//! reachable from the reqwest error — when it carries none or names another host.
//!
//! Needs unbound (`scripts/test.sh` installs it); without it the tests fail, never skip.

#[path = "common/provider.rs"]
mod provider;
/// The README's reqwest snippet (`examples/reqwest_ct.rs`), run here on loopback; its
/// `main` is never called.
#[path = "../examples/reqwest_ct.rs"]
#[allow(dead_code)]
mod readme;
#[path = "common/unbound.rs"]
mod unbound;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ctdns::client::{name_mode_tls_config, reqwest::CtResolve, Client, ALPN_HTTPS};
use ctdns::ct::{checker::CtChecker, log_list::LogList, policy::CtPolicy};
use ctdns::pki::{default_logs, IssuedLeaf, SctSpec, TestPki, WrittenFiles};
use ctdns::tls::{pins::SpkiPin, CtVerifier, Refusal};
use unbound::Unbound;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const BODY: &str = "hello from www.test over CT-verified HTTPS\n";

struct Fixture {
    // Fields drop in order: unbound stops before its directory is removed.
    unbound: Unbound,
    pki: TestPki,
    files: WrittenFiles,
    _dir: tempfile::TempDir,
}

impl Fixture {
    /// The test PKI, and unbound serving its honest DoT leaf for 127.0.0.1 with `*.test`
    /// data: `www.test` is this machine (the HTTPS server), `dual.test` has A and AAAA.
    fn start() -> Fixture {
        assert!(
            unbound::unbound_binary().is_some(),
            "unbound is not installed: run scripts/test.sh (it installs it)"
        );
        let (pki, dot_leaf) = ctdns::pki::demo_pki(LOOPBACK).expect("demo PKI");
        let dir = tempfile::tempdir().expect("tempdir");
        let files =
            ctdns::pki::write_files(&dir.path().join("pki"), &pki, &dot_leaf).expect("files");
        let ub_dir = dir.path().join("unbound");
        std::fs::create_dir_all(&ub_dir).expect("unbound dir");
        let unbound = Unbound::start(
            &ub_dir,
            &files.chain,
            &files.key,
            &[
                "www.test. 300 IN A 127.0.0.1",
                "dual.test. 300 IN A 192.0.2.1",
                "dual.test. 300 IN AAAA 2001:db8::1",
            ],
        );
        Fixture {
            unbound,
            pki,
            files,
            _dir: dir,
        }
    }

    /// A ctdns configuration: the PKI's root and log list, unbound's DoT as the one
    /// upstream, pinned to `pin`.
    fn config(&self, pin: &str) -> ctdns::config::Config {
        let mut config = ctdns::config::Config::from_toml(&format!(
            "[tls]\nroots = {:?}\n[ct]\nlog_list = {:?}\n",
            self.files.ca.display().to_string(),
            self.files.log_list.display().to_string()
        ))
        .expect("config");
        config.upstreams = vec![ctdns::config::UpstreamConfig::Dot {
            ip: LOOPBACK,
            port: Some(self.unbound.dot.port()),
            name: None,
            pins: vec![SpkiPin::parse(pin).expect("pin")],
        }];
        config
    }

    /// A ctdns client over unbound's DoT, the upstream pinned to `pin`.
    fn client(&self, pin: &str) -> Client {
        Client::from_config(&self.config(pin)).expect("client")
    }

    fn honest_client(&self) -> Client {
        self.client(&self.pki.root().spki_sha256_base64())
    }

    /// The verifier an app builds for its HTTPS connections: the PKI's root and logs.
    fn verifier(&self) -> CtVerifier {
        let list = LogList::from_json(
            self.pki
                .log_list_json(self.pki.now())
                .expect("log list")
                .as_bytes(),
        )
        .expect("log list parses");
        let roots =
            ctdns::tls::roots::anchors_from_der(&[self.pki.root().der().clone()], "test root")
                .expect("roots");
        CtVerifier::new(
            Arc::new(roots),
            CtChecker::new(Arc::new(list), CtPolicy::chrome()),
        )
    }

    /// A leaf for 127.0.0.1 and `name`, with `scts` embedded.
    fn web_leaf(&self, name: &str, scts: &[&str]) -> IssuedLeaf {
        let ts = self.pki.now() - time::Duration::minutes(1);
        let mut spec = self.pki.leaf_spec(LOOPBACK);
        spec.dns_sans = vec![name.into()];
        for log in scts {
            spec = spec.embed(SctSpec::at(*log, ts));
        }
        self.pki.issue_leaf(&spec).expect("web leaf")
    }

    /// reqwest resolving through `CtResolve` over unbound and verifying HTTPS servers with
    /// the CT verifier in name mode: what `examples/reqwest_ct.rs` builds.
    fn http(&self) -> reqwest::Client {
        let tls = name_mode_tls_config(self.verifier(), ALPN_HTTPS).expect("TLS config");
        provider::assert_selected(tls.crypto_provider());
        reqwest::Client::builder()
            .dns_resolver(CtResolve::new(self.honest_client()))
            .tls_backend_preconfigured(tls)
            .no_proxy()
            .build()
            .expect("reqwest client")
    }
}

/// A tiny HTTPS server on 127.0.0.1 presenting `leaf`; counts the HTTP requests it serves.
/// Stopped (its task aborted) on drop.
struct HttpsServer {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpsServer {
    async fn start(leaf: &IssuedLeaf) -> HttpsServer {
        let provider = ctdns::provider::default_provider();
        provider::assert_selected(&provider);
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(leaf.chain.clone(), leaf.key_der())
            .expect("server cert");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind((LOOPBACK, 0))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |_req| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        async move {
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(
                                http_body_util::Full::new(bytes::Bytes::from_static(
                                    BODY.as_bytes(),
                                )),
                            ))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        HttpsServer {
            addr,
            requests,
            task,
        }
    }

    fn url(&self) -> String {
        format!("https://www.test:{}/", self.addr.port())
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn ct_resolve_answers_a_and_aaaa_through_unbound_dot() {
    let f = Fixture::start();
    let resolve = CtResolve::new(f.honest_client());
    let ips = resolve.lookup("dual.test").await.expect("dual.test");
    assert_eq!(
        ips,
        vec![
            IpAddr::from([192, 0, 2, 1]),
            "2001:db8::1".parse::<IpAddr>().expect("ip")
        ]
    );
    // Through the reqwest trait as reqwest calls it: port 0, for reqwest to fill in.
    let addrs: Vec<SocketAddr> =
        reqwest::dns::Resolve::resolve(&resolve, "www.test".parse().expect("name"))
            .await
            .expect("www.test")
            .collect();
    assert_eq!(addrs, vec![SocketAddr::from(([127, 0, 0, 1], 0))]);
    // A name unbound does not know: a typed NXDOMAIN, not an empty success.
    let err = resolve.lookup("missing.test").await.expect_err("NXDOMAIN");
    assert!(
        matches!(err, ctdns::client::reqwest::ResolveError::ResponseCode { rcode, .. }
            if rcode == hickory_proto::op::ResponseCode::NXDomain),
        "{err}"
    );
}

#[tokio::test]
async fn a_refused_dot_upstream_fails_resolution_with_the_typed_refusal() {
    let f = Fixture::start();
    // Pinned to the rogue CA: unbound's honest chain fails the pin.
    let resolve = CtResolve::new(f.client(&f.pki.rogue_root().spki_sha256_base64()));
    let err = resolve.lookup("www.test").await.expect_err("refused");
    assert_eq!(
        Refusal::find_in(&err).map(|r| r.rule()),
        Some("issuer-pin"),
        "{err}"
    );
}

#[tokio::test]
async fn reqwest_fetches_from_an_honest_server_and_refuses_ct_less_and_misnamed_ones() {
    let f = Fixture::start();
    let http = f.http();

    let honest =
        HttpsServer::start(&f.web_leaf("www.test", &[default_logs::ALPHA, default_logs::BETA]))
            .await;
    let response = http.get(honest.url()).send().await.expect("honest server");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), BODY);
    assert_eq!(honest.requests.load(Ordering::SeqCst), 1);

    let ct_less = HttpsServer::start(&f.web_leaf("www.test", &[])).await;
    let err = http
        .get(ct_less.url())
        .send()
        .await
        .expect_err("a certificate without SCTs must be refused");
    assert_eq!(
        Refusal::find_in(&err).map(|r| r.rule()),
        Some("ct-policy"),
        "{err:?}"
    );
    assert_eq!(
        ct_less.requests.load(Ordering::SeqCst),
        0,
        "no HTTP request"
    );

    let misnamed =
        HttpsServer::start(&f.web_leaf("other.test", &[default_logs::ALPHA, default_logs::BETA]))
            .await;
    let err = http
        .get(misnamed.url())
        .send()
        .await
        .expect_err("a certificate for another name must be refused");
    assert_eq!(
        Refusal::find_in(&err).map(|r| r.rule()),
        Some("dns-name"),
        "{err:?}"
    );
    assert_eq!(
        misnamed.requests.load(Ordering::SeqCst),
        0,
        "no HTTP request"
    );
}

/// The README snippet as an app writes it: one ctdns `Config` (here the test PKI's root and
/// log list, unbound's DoT upstream) and `ct_reqwest`. `www.test` resolves through unbound
/// over CT-verified DoT; the honest server's page is fetched, a CT-less one is refused by
/// the CT policy before any HTTP request.
#[tokio::test]
async fn the_readme_snippet_fetches_through_ct_verified_dot_and_refuses_ct_less_servers() {
    let f = Fixture::start();
    let http = readme::ct_reqwest(&f.config(&f.pki.root().spki_sha256_base64())).expect("client");

    let honest =
        HttpsServer::start(&f.web_leaf("www.test", &[default_logs::ALPHA, default_logs::BETA]))
            .await;
    let response = http.get(honest.url()).send().await.expect("honest server");
    assert_eq!(response.text().await.expect("body"), BODY);
    assert_eq!(honest.requests.load(Ordering::SeqCst), 1);

    let ct_less = HttpsServer::start(&f.web_leaf("www.test", &[])).await;
    let err = http
        .get(ct_less.url())
        .send()
        .await
        .expect_err("a certificate without SCTs must be refused");
    assert_eq!(
        Refusal::find_in(&err).map(|r| r.rule()),
        Some("ct-policy"),
        "{err:?}"
    );
    assert_eq!(ct_less.requests.load(Ordering::SeqCst), 0);

    // A name unbound does not have: resolution fails (NXDOMAIN), nothing is fetched.
    let missing = format!("https://missing.test:{}/", honest.addr.port());
    assert!(http.get(missing).send().await.is_err());
    assert_eq!(honest.requests.load(Ordering::SeqCst), 1);
}
