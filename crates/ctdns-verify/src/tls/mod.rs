//! TLS verification: the rustls `ServerCertVerifier` that enforces chain, IP SAN, revocation
//! (stapled OCSP), CT policy, issuer pins and the denylist.

pub mod lineage;
pub mod pins;
pub mod presented;
pub mod revocation;
pub mod roots;
pub mod verifier;

pub use presented::{Presented, RefusedCertificate};
pub use verifier::{CtVerifier, Decision, Refusal};
