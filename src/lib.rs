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
#![warn(missing_docs)]

pub mod cli;
pub mod client;
pub mod config;
pub mod ct;
#[cfg(feature = "testkit")]
pub mod demo;
pub mod events;
pub mod evidence;
pub mod metrics;
#[cfg(feature = "testkit")]
pub mod pki;
pub mod privileges;
pub mod runtime;
pub mod safe_file;
pub mod stub;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod tls;
pub mod upstream;
pub mod wire;
