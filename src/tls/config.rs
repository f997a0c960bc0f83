//! The rustls client configuration around a [`CtVerifier`].

use std::sync::Arc;

use rustls::client::Resumption;
use rustls::ClientConfig;

use crate::tls::verifier::CtVerifier;

/// ALPN for DNS-over-TLS (RFC 7858 registers `dot`).
pub const ALPN_DOT: &[u8] = b"dot";
/// ALPN for DNS-over-HTTPS over HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";

/// A client configuration whose every connection is verified by `verifier`:
/// session resumption is disabled (a resumed session would skip the certificate
/// verifier) and 0-RTT early data is off (it would send DNS bytes before verification).
pub fn client_config(
    verifier: Arc<CtVerifier>,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = verifier.provider().clone();
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.resumption = Resumption::disabled();
    config.enable_early_data = false;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}
