//! The verifier in a plain (blocking, no async runtime) rustls client, against a real rustls
//! server on loopback presenting a leaf of the test PKI: accepted with two SCTs of distinct
//! operators, refused — before any application byte — with one. Runs with whichever crypto
//! provider the crate features select (`ring` or `aws-lc-rs`).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;

use ctdns_verify::ct::checker::CtChecker;
use ctdns_verify::ct::log_list::LogList;
use ctdns_verify::ct::policy::CtPolicy;
use ctdns_verify::pki::{default_logs, IssuedLeaf, PkiOptions, SctSpec, TestPki};
use ctdns_verify::provider::default_provider;
use ctdns_verify::tls::roots::anchors_from_der;
use ctdns_verify::tls::{CtVerifier, RefusedCertificate};
use rustls::pki_types::{PrivateKeyDer, ServerName};

/// The README's "any rustls client" snippet (`examples/rustls_ct.rs`), run here against a real
/// server; its `main` (which dials the internet) is never called.
#[path = "../examples/rustls_ct.rs"]
#[allow(dead_code)]
mod readme;

const IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn leaf(pki: &TestPki, logs: &[&str]) -> IssuedLeaf {
    let ts = pki.now() - time::Duration::minutes(5);
    let mut spec = pki.leaf_spec(IP);
    for log in logs {
        spec = spec.embed(SctSpec::at(*log, ts));
    }
    pki.issue_leaf(&spec).unwrap()
}

fn verifier(pki: &TestPki) -> CtVerifier {
    let roots = anchors_from_der(&[pki.root().der().clone()], "test").unwrap();
    let list = LogList::from_json(pki.log_list_json(pki.now()).unwrap().as_bytes()).unwrap();
    CtVerifier::new(
        Arc::new(roots),
        CtChecker::new(Arc::new(list), CtPolicy::chrome()),
    )
}

/// Serve one TLS connection on 127.0.0.1 (port 0) with `leaf`, answering `ping` with `pong`;
/// then connect to it with `verifier`. Returns the client's result and joins the server.
fn exchange(leaf: &IssuedLeaf, verifier: CtVerifier) -> Result<Vec<u8>, std::io::Error> {
    let provider = verifier.provider().clone();
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    client.resumption = rustls::client::Resumption::disabled();
    exchange_with(leaf, client, ServerName::IpAddress(IP.into()))
}

/// As [`exchange`], with the client configuration `client` connecting to `name`.
fn exchange_with(
    leaf: &IssuedLeaf,
    client: rustls::ClientConfig,
    name: ServerName<'static>,
) -> Result<Vec<u8>, std::io::Error> {
    let provider = default_provider();
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            leaf.chain.clone(),
            PrivateKeyDer::Pkcs8(leaf.key.clone_key()),
        )
        .unwrap();
    let listener = TcpListener::bind((IP, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let conn = rustls::ServerConnection::new(Arc::new(server)).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let mut ping = [0u8; 4];
        // A refused client closes during the handshake: the server reads an alert.
        if tls.read_exact(&mut ping).is_ok() && &ping == b"ping" {
            tls.write_all(b"pong").unwrap();
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });

    let conn = rustls::ClientConnection::new(Arc::new(client), name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, TcpStream::connect(addr).unwrap());
    let result = tls.write_all(b"ping").and_then(|()| {
        let mut pong = [0u8; 4];
        tls.read_exact(&mut pong).map(|()| pong.to_vec())
    });
    drop(tls);
    server.join().unwrap();
    result
}

#[test]
fn two_operators_are_accepted_and_data_flows() {
    let pki = TestPki::generate(&PkiOptions::default()).unwrap();
    let leaf = leaf(&pki, &[default_logs::ALPHA, default_logs::BETA]);
    assert_eq!(exchange(&leaf, verifier(&pki)).unwrap(), b"pong");
}

/// The refused certificate behind a client's handshake error.
fn refusal(err: &std::io::Error) -> &RefusedCertificate {
    // The rustls error carries the verifier's refusal, which names the failed rule.
    let tls = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
        .unwrap_or_else(|| panic!("not a TLS error: {err}"));
    let rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) = tls else {
        panic!("not a refused certificate: {tls}");
    };
    other
        .0
        .downcast_ref::<RefusedCertificate>()
        .unwrap_or_else(|| panic!("not a CtVerifier refusal: {other:?}"))
}

#[test]
fn one_sct_is_refused_in_the_handshake() {
    let pki = TestPki::generate(&PkiOptions::default()).unwrap();
    let leaf = leaf(&pki, &[default_logs::ALPHA]);
    let err = exchange(&leaf, verifier(&pki)).unwrap_err();
    assert_eq!(refusal(&err).refusal.rule(), "ct-policy");
}

/// The README snippet's configuration, dialing 127.0.0.1 by the name `www.test`: a leaf
/// for that name with SCTs from two operators passes; without SCTs it is refused by the CT
/// policy, and a leaf for another name by the name rule — before any application byte.
#[test]
fn the_readme_snippet_accepts_ct_logged_and_refuses_ct_less_certificates() {
    let pki = TestPki::generate(&PkiOptions::default()).unwrap();
    let roots = anchors_from_der(&[pki.root().der().clone()], "test").unwrap();
    let list = LogList::from_json(pki.log_list_json(pki.now()).unwrap().as_bytes()).unwrap();
    let config = readme::ct_config(roots, list).unwrap();
    // The provider the crate features select: ring, or aws-lc-rs (rustls's default).
    let rng = if cfg!(feature = "ring") {
        "Ring"
    } else {
        "AwsLcRs"
    };
    assert_eq!(format!("{:?}", config.crypto_provider().secure_random), rng);
    let named = |name: &str, logs: &[&str]| {
        let ts = pki.now() - time::Duration::minutes(5);
        let mut spec = pki.leaf_spec(IP);
        spec.dns_sans = vec![name.into()];
        for log in logs {
            spec = spec.embed(SctSpec::at(*log, ts));
        }
        pki.issue_leaf(&spec).unwrap()
    };
    let www = || ServerName::try_from("www.test").unwrap();

    let honest = named("www.test", &[default_logs::ALPHA, default_logs::BETA]);
    assert_eq!(
        exchange_with(&honest, config.clone(), www()).unwrap(),
        b"pong"
    );
    let ct_less = named("www.test", &[]);
    let err = exchange_with(&ct_less, config.clone(), www()).unwrap_err();
    assert_eq!(refusal(&err).refusal.rule(), "ct-policy");
    let misnamed = named("other.test", &[default_logs::ALPHA, default_logs::BETA]);
    let err = exchange_with(&misnamed, config, www()).unwrap_err();
    assert_eq!(refusal(&err).refusal.rule(), "dns-name");
}

#[test]
fn an_explicit_provider_is_used_for_the_handshake() {
    let pki = TestPki::generate(&PkiOptions::default()).unwrap();
    let provider = default_provider();
    let v = verifier(&pki).with_provider(provider.clone());
    assert!(Arc::ptr_eq(v.provider(), &provider));
    let leaf = leaf(&pki, &[default_logs::ALPHA, default_logs::GAMMA]);
    assert_eq!(exchange(&leaf, v).unwrap(), b"pong");
}
