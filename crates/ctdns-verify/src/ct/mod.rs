//! Certificate Transparency: SCT wire format, precertificate reconstruction, SCT
//! signatures, log lists and the CT policy.

pub mod cert;
pub mod checker;
pub mod der;
pub mod log_list;
pub mod memo;
pub mod ocsp;
pub mod policy;
pub mod sct;
pub mod signature;
pub mod signed_data;

pub use sct::{LogId, Sct};

/// SHA-256 of `data` (see [`crate::provider::sha256`]).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    crate::provider::sha256(data)
}

/// Where an SCT was delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SctSource {
    /// Embedded in the leaf certificate (X.509 extension 1.3.6.1.4.1.11129.2.4.2), signed
    /// over the precertificate.
    Embedded,
    /// In the stapled OCSP response (single-response extension 1.3.6.1.4.1.11129.2.4.5),
    /// signed over the whole leaf (`x509_entry`).
    Ocsp,
}
