//! TLS verification: the rustls `ServerCertVerifier` that enforces chain, IP SAN, revocation
//! (stapled OCSP), CT policy, issuer pins and the denylist (the `ctdns-verify` crate's
//! [`ctdns_verify::tls`], re-exported), and the client configuration built around it.

pub mod config;

pub use ctdns_verify::tls::{lineage, pins, presented, revocation, roots, verifier};

pub use config::client_config;
pub use presented::{Presented, RefusedCertificate};
pub use verifier::{Audit, CtVerifier, Decision, Refusal, Rule, RuleOutcome, RuleResult};
