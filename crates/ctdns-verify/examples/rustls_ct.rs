//! Any rustls client refusing certificates that fail the CT policy, with `ctdns-verify` as the
//! only dependency (`ctdns-verify = { version = "0.1", default-features = false,
//! features = ["aws-lc-rs"] }` for rustls's default provider, or the default `ring`).
//!
//! ```text
//! cargo run -p ctdns-verify --example rustls_ct -- HOST
//! ```
//!
//! Connects to HOST:443 (Mozilla's roots, the bundled log list, Chrome's policy) and prints
//! whether the server's certificate passed or which rule refused it. `ct_config` is the
//! snippet shown in the top-level README ("Use it in your app"); `tests/handshake.rs` runs it
//! against a real rustls server on loopback.

use std::io::Write;
use std::net::TcpStream;

use ctdns_verify::rustls::pki_types::ServerName;
use ctdns_verify::tls::{roots::webpki_roots, RefusedCertificate};

// README (b) begin
use ctdns_verify::ct::{checker::CtChecker, log_list::LogList, policy::CtPolicy};
use ctdns_verify::rustls::{client::Resumption, pki_types::TrustAnchor, ClientConfig, Error};
use {ctdns_verify::tls::CtVerifier, std::sync::Arc};
pub fn ct_config(roots: Vec<TrustAnchor<'static>>, logs: LogList) -> Result<ClientConfig, Error> {
    let checker = CtChecker::new(Arc::new(logs), CtPolicy::chrome());
    let verifier = CtVerifier::new(Arc::new(roots), checker).for_server_names(); // rule dns-name
    let mut config = ClientConfig::builder_with_provider(verifier.provider().clone())
        .with_safe_default_protocol_versions()?
        .dangerous() // only in name: the CT verifier replaces webpki's, checking chains too
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.resumption = Resumption::disabled(); // a resumed session would skip the verifier
    Ok(config)
}
// README (b) end

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(host) = std::env::args().nth(1) else {
        eprintln!("usage: rustls_ct HOST");
        std::process::exit(2);
    };
    let config = Arc::new(ct_config(webpki_roots(), LogList::bundled()?)?);
    let conn =
        ctdns_verify::rustls::ClientConnection::new(config, ServerName::try_from(host.clone())?)?;
    let mut tls =
        ctdns_verify::rustls::StreamOwned::new(conn, TcpStream::connect((host.as_str(), 443))?);
    match tls.write_all(b"HEAD / HTTP/1.0\r\n\r\n") {
        Ok(()) => println!("{host}: certificate passed every rule"),
        Err(e) => match e.get_ref().and_then(|e| e.downcast_ref::<Error>()) {
            Some(Error::InvalidCertificate(ctdns_verify::rustls::CertificateError::Other(
                other,
            ))) => match other.0.downcast_ref::<RefusedCertificate>() {
                Some(refused) => println!("{host}: refused, rule {}", refused.refusal.rule()),
                None => println!("{host}: refused: {other:?}"),
            },
            _ => println!("{host}: {e}"),
        },
    }
    Ok(())
}
