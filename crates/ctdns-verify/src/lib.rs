//! # ctdns-verify
//!
//! A rustls [`ServerCertVerifier`](rustls::client::danger::ServerCertVerifier) that refuses a
//! server whose certificate is not publicly logged in Certificate Transparency, and the CT
//! core it is built on. Any rustls client can use it; nothing here is async.
//!
//! [`tls::CtVerifier`] checks, before a single application byte is sent:
//! 1. the certificate chain to a trusted root (webpki);
//! 2. that an **IP SAN** equals the IP address dialed (and a DNS name, when configured);
//! 3. that a stapled OCSP response, when one verifies, does not say **revoked**;
//! 4. valid SCTs from at least two trusted CT logs of distinct operators (Chrome's or
//!    Apple's policy; embedded SCTs and SCTs stapled in OCSP);
//! 5. when configured, that the issuer is pinned, and that no certificate is denylisted.
//!
//! Modules: [`ct`] (SCT wire format, precertificate reconstruction, SCT signatures, OCSP
//! SCTs, log lists, CT policies), [`tls`] (the verifier, pins, roots, revocation),
//! [`provider`] (the crypto provider and hashes), and with the feature `testkit`, `pki`
//! (a real test PKI: CA, CT logs, leaves with SCTs, OCSP responses).
//!
//! Signatures are checked with the rustls [`CryptoProvider`](rustls::crypto::CryptoProvider)'s
//! algorithms: feature `ring` (default) or `aws-lc-rs`, or any provider given to
//! [`tls::CtVerifier::with_provider`].
//!
//! # A rustls client configuration with the verifier
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use ctdns_verify::ct::{checker::CtChecker, log_list::LogList, policy::CtPolicy};
//! use ctdns_verify::tls::{pins::SpkiPin, roots::webpki_roots, CtVerifier};
//!
//! let checker = CtChecker::new(Arc::new(LogList::bundled()?), CtPolicy::chrome());
//! let verifier = CtVerifier::new(Arc::new(webpki_roots()), checker)
//!     .with_pins(vec![SpkiPin::parse("i7WTqTvh0OioIruIfFR4kMPnBqrS2rdiVPl/s2uC/CY=")?]);
//! let provider = verifier.provider().clone();
//! let mut config = rustls::ClientConfig::builder_with_provider(provider)
//!     .with_safe_default_protocol_versions()?
//!     .dangerous()
//!     .with_custom_certificate_verifier(Arc::new(verifier))
//!     .with_no_client_auth();
//! // A resumed session skips the certificate verifier, and 0-RTT sends data before it
//! // runs: turn both off so every connection is verified.
//! config.resumption = rustls::client::Resumption::disabled();
//! config.enable_early_data = false;
//! # let _ = config;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// The rustls this crate is built against (0.23), so an app needs no second dependency (and
/// no version match) to build a `ClientConfig` around [`tls::CtVerifier`].
pub use rustls;

pub mod ct;
pub mod events;
#[cfg(feature = "testkit")]
pub mod pki;
pub mod provider;
pub mod timefmt;
pub mod tls;
