//! Session resumption never skips the verifier.

use crate::handshakes::{serve, Swappable};
use crate::*;

/// Two connections with one client configuration to one server (speaking only
/// `versions`) whose certificate is swapped to a rogue (CT-logged, pinned-out) one in
/// between. Returns the results and how often the verifier ran.
async fn two_connections(
    w: &World,
    mut config: rustls::ClientConfig,
    counting: Arc<ObservedVerifier>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> (std::io::Result<()>, std::io::Result<()>, usize) {
    let honest = w.issue(&w.embedded(&[default_logs::ALPHA, default_logs::BETA]));
    let rogue = w.issue(
        &w.embedded(&[default_logs::ALPHA, default_logs::BETA])
            .issued_by(LeafIssuer::RogueIntermediate),
    );
    config
        .dangerous()
        .set_certificate_verifier(counting.clone());
    let config = Arc::new(config);
    let resolver = Swappable::new(&honest, &[]);
    let server = serve(resolver.clone(), 2, versions).await;
    let ip = ServerName::IpAddress(LOCALHOST.into());
    let first = ping(config.clone(), server.addr(), ip.clone()).await;
    resolver.set(&rogue, &[]);
    let second = ping(config, server.addr(), ip).await;
    let _ = server.finish().await;
    (first, second, counting.calls())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumption_never_skips_verification() {
    let w = &matrix().world;
    let pinned = Arc::new(
        w.verifier_trusting_rogue()
            .with_pins(vec![w.pin(CaCert::Intermediate)]),
    );
    let config = client_config(pinned.clone(), &[]).unwrap();
    // What client_config sets: no session store, no TLS 1.2 resumption, no 0-RTT.
    let resumption = format!("{:?}", config.resumption);
    assert!(
        resumption.contains("NoClientSessionStorage") && resumption.contains("Disabled"),
        "{resumption}"
    );
    assert!(!config.enable_early_data);

    for versions in [
        &[&rustls::version::TLS13][..],
        &[&rustls::version::TLS12][..],
    ] {
        // ctdns's configuration: the second connection is verified and refused.
        let counting = Arc::new(ObservedVerifier::new(pinned.clone()));
        let (first, second, calls) =
            two_connections(w, (*config).clone(), counting, versions).await;
        first.unwrap_or_else(|e| panic!("{versions:?}: first connection: {e}"));
        let err = second.expect_err("the rogue certificate must be refused");
        assert_eq!(
            Refusal::find_in(&err).map(Refusal::rule),
            Some("issuer-pin"),
            "{versions:?}: {err}"
        );
        assert_eq!(calls, 2, "{versions:?}: every handshake runs the verifier");

        // Control: the same test with resumption enabled does detect skipped
        // verification (the second connection resumes, the rogue certificate is never
        // seen), so the assertion above is meaningful.
        let mut resuming = (*config).clone();
        resuming.resumption = Resumption::default();
        let counting = Arc::new(ObservedVerifier::new(pinned.clone()));
        let (first, second, calls) = two_connections(w, resuming, counting, versions).await;
        first.unwrap();
        second.unwrap_or_else(|e| panic!("{versions:?}: resumed connection: {e}"));
        assert_eq!(
            calls, 1,
            "{versions:?}: a resumed handshake skips the verifier"
        );
    }
}
