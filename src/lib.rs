//! # ctdns
//!
//! A DNS-over-TLS / DNS-over-HTTPS stub resolver and library that refuses to talk to a
//! resolver whose certificate is not publicly logged in Certificate Transparency.
//!
//! Before a single DNS byte is sent on a connection, ctdns checks:
//! 1. the certificate chain to a trusted root;
//! 2. that an **IP SAN** equals the IP address it dialed;
//! 3. that a stapled OCSP response, when one verifies, does not say **revoked** (an
//!    unverifiable staple is ignored and reported, never a refusal);
//! 4. valid SCTs from at least two trusted CT logs of distinct operators (Chrome's policy
//!    by default: embedded SCTs, and SCTs stapled in OCSP);
//! 5. when configured, that the issuer is pinned, and that the certificate is not denylisted.
//!
//! The tree reads as the path a query takes:
//! [`stub`] (local listeners, cache) → [`upstream`] (pool, DoT/DoH transports) →
//! [`tls`] (the rustls verifier that decides every refusal) → [`ct`] (SCTs, log list, policy).
//! The verifier, the CT core and the test PKI live in the `ctdns-verify` crate (usable by any
//! rustls client on its own); ctdns re-exports them as [`ct`], [`tls`] and `pki`.
//!
//! # The verifier, for any rustls client
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use ctdns::ct::{checker::CtChecker, log_list::LogList, policy::CtPolicy};
//! use ctdns::tls::{client_config, pins::SpkiPin, roots::webpki_roots, CtVerifier};
//!
//! let checker = CtChecker::new(Arc::new(LogList::bundled()?), CtPolicy::chrome());
//! let verifier = CtVerifier::new(Arc::new(webpki_roots()), checker)
//!     .with_pins(vec![SpkiPin::parse("i7WTqTvh0OioIruIfFR4kMPnBqrS2rdiVPl/s2uC/CY=")?]);
//! // Resumption disabled and 0-RTT off, so every connection runs the verifier.
//! let tls = client_config(Arc::new(verifier), &[])?;
//! # let _ = tls;
//! # Ok(()) }
//! ```
//!
//! # The resolver client
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use ctdns::{client::Client, config::Config};
//! use hickory_proto::rr::RecordType;
//!
//! let client = Client::from_config(&Config::default())?;
//! let answer = client.query("example.com.", RecordType::A).await?;
//! # let _ = answer;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cli;
pub mod client;
pub mod config;
/// Certificate Transparency (re-exported from the `ctdns-verify` crate).
pub use ctdns_verify::ct;
#[cfg(feature = "testkit")]
pub mod demo;
pub mod events;
pub mod evidence;
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    //! Internals exported for the cargo-fuzz targets (`fuzz/`) only, with the feature
    //! `fuzzing`; not part of the stable API.

    pub use crate::upstream::doh::{check_head, PreparedQuery};

    /// Split one complete length-prefixed DNS-over-TLS frame off the front of `buf`, if
    /// there is one (what the DoT reader does with the bytes of a connection).
    pub fn take_frame(buf: &mut Vec<u8>) -> Option<Vec<u8>> {
        crate::upstream::dot::take_frame(buf)
    }
}
pub mod metrics;
#[cfg(feature = "testkit")]
pub mod pki;
pub mod provider {
    //! The crypto provider and hashes (re-exported from the `ctdns-verify` crate).
    //!
    //! The feature `ring` (the default) selects rustls's ring provider, `aws-lc-rs` rustls's
    //! default provider (aws-lc-rs); with both, ring. Every TLS connection, signature check
    //! and the DNS message-ID randomness use it.
    pub use ctdns_verify::provider::*;

    #[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
    compile_error!("ctdns needs a crypto provider: enable the feature `ring` or `aws-lc-rs`");
}
pub mod privileges;
pub mod runtime;
pub mod safe_file;
pub mod stub;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod tls;
pub mod upstream;
pub mod wire;
