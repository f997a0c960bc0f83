//! The test PKI's chains and keys work in real rustls handshakes on loopback: a server
//! loads chain + key + stapled OCSP, a client trusting the test root connects to 127.0.0.1
//! by IP, receives the stapled response, and refuses what it must refuse.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use ctdns::ct::sct::parse_sct_list;
use ctdns::pki::{default_logs, IssuedLeaf, LeafIssuer, LeafKeyType, PkiOptions, SctSpec, TestPki};
use ctdns::testkit::ping::{ping, ObservedVerifier, PingServer};
use ctdns::testkit::ServerCert;
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::pki_types::ServerName;
use rustls::{CertificateError, RootCertStore};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    ctdns::provider::default_provider()
}

struct Outcome {
    result: Result<(), std::io::Error>,
    ocsp_seen: Option<Vec<u8>>,
}

/// Serve `leaf` (with its OCSP staple) on 127.0.0.1:0, connect with a client trusting
/// `roots` that dials `dial`, exchange a ping, and report what happened. The server task is
/// always awaited.
async fn handshake(leaf: &IssuedLeaf, roots: RootCertStore, dial: IpAddr) -> Outcome {
    let server_cfg = ServerCert::from_leaf(leaf)
        .server_config(&[])
        .expect("rustls loads the chain and key");
    let server = PingServer::start(LOOPBACK, Arc::new(server_cfg), 1)
        .await
        .unwrap();
    let recording = Arc::new(ObservedVerifier::new(
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .unwrap(),
    ));
    let mut client_cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(recording.clone())
        .with_no_client_auth();
    client_cfg.resumption = Resumption::disabled();
    let client = ping(
        Arc::new(client_cfg),
        server.addr(),
        ServerName::IpAddress(dial.into()),
    )
    .await;
    // On a client failure the server sees an alert or EOF; either way it finishes.
    let served = server.finish().await;
    assert_eq!(served.len(), 1);
    if client.is_ok() {
        // The server read exactly `ping` and answered.
        assert!(served[0].is_ok(), "server side completed: {served:?}");
    }
    Outcome {
        result: client,
        ocsp_seen: recording.last_ocsp(),
    }
}

fn rustls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

fn pki() -> TestPki {
    TestPki::generate(&PkiOptions::default()).unwrap()
}

fn honest_spec(pki: &TestPki, ip: IpAddr) -> ctdns::pki::LeafSpec {
    let ts = pki.now() - time::Duration::minutes(1);
    pki.leaf_spec(ip)
        .embed(SctSpec::at(default_logs::ALPHA, ts))
        .embed(SctSpec::at(default_logs::BETA, ts))
        .staple(SctSpec::at(default_logs::GAMMA, ts))
}

#[tokio::test]
async fn client_trusting_test_root_completes_handshake_and_sees_ocsp() {
    let pki = pki();
    for key_type in [
        LeafKeyType::EcdsaP256,
        LeafKeyType::EcdsaP384,
        LeafKeyType::Ed25519,
        LeafKeyType::Rsa2048,
    ] {
        let mut spec = honest_spec(&pki, LOOPBACK);
        spec.key_type = key_type;
        let leaf = pki.issue_leaf(&spec).unwrap();
        let out = handshake(&leaf, pki.root_store(false).unwrap(), LOOPBACK).await;
        out.result
            .unwrap_or_else(|e| panic!("{key_type:?}: handshake failed: {e}"));
        let seen = out.ocsp_seen.expect("verifier was called");
        assert_eq!(Some(&seen), leaf.ocsp_response.as_ref(), "{key_type:?}");
        // The stapled response carries the SCT list we asked for (found by its bytes).
        let scts = ctdns::ct::sct::encode_sct_list(
            leaf.ocsp_scts
                .iter()
                .map(|s| s.encode())
                .collect::<Vec<_>>()
                .iter()
                .map(Vec::as_slice),
        );
        assert!(seen.windows(scts.len()).any(|w| w == scts.as_slice()));
        assert_eq!(parse_sct_list(&scts).unwrap().scts, leaf.ocsp_scts);
    }
}

#[tokio::test]
async fn rogue_chain_is_valid_only_where_the_rogue_root_is_trusted() {
    let pki = pki();
    let leaf = pki
        .issue_leaf(&honest_spec(&pki, LOOPBACK).issued_by(LeafIssuer::RogueIntermediate))
        .unwrap();
    let out = handshake(&leaf, pki.root_store(false).unwrap(), LOOPBACK).await;
    let err = out
        .result
        .expect_err("rogue chain must not verify to the honest root");
    assert!(matches!(
        rustls_error(&err),
        Some(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer
        ))
    ));
    let out = handshake(&leaf, pki.root_store(true).unwrap(), LOOPBACK).await;
    out.result
        .expect("rogue chain verifies once its root is trusted");
}

#[tokio::test]
async fn leaf_for_another_ip_is_refused() {
    let pki = pki();
    let other: IpAddr = "192.0.2.1".parse().unwrap();
    let leaf = pki.issue_leaf(&honest_spec(&pki, other)).unwrap();
    let out = handshake(&leaf, pki.root_store(false).unwrap(), LOOPBACK).await;
    let err = out.result.expect_err("IP SAN mismatch must fail");
    assert!(matches!(
        rustls_error(&err),
        Some(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
        ))
    ));
}

#[tokio::test]
async fn ip_only_in_common_name_is_refused() {
    let pki = pki();
    let mut spec = honest_spec(&pki, LOOPBACK);
    spec.ip_sans.clear();
    spec.common_name = Some(LOOPBACK.to_string());
    let leaf = pki.issue_leaf(&spec).unwrap();
    let out = handshake(&leaf, pki.root_store(false).unwrap(), LOOPBACK).await;
    assert!(
        out.result.is_err(),
        "an IP in the CN alone is not an IP SAN"
    );
}
