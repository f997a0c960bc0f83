//! The one error type of the test PKI generator.

use std::path::PathBuf;

use crate::ct::signed_data::SignedDataError;
use crate::ct::SctSource;

/// Why the test PKI could not generate something. Each variant names the step that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// rcgen refused to build or sign a certificate; `what` names the certificate.
    #[error("test PKI: could not build the {what} certificate: {source}")]
    Certificate {
        /// Which certificate (e.g. "root CA", "leaf", "precertificate").
        what: &'static str,
        /// The rcgen error.
        source: rcgen::Error,
    },
    /// The crypto provider rejected a key; `what` names the key.
    #[error("test PKI: the {what} was rejected: {reason}")]
    KeyRejected {
        /// Which key (e.g. "RSA log key").
        what: &'static str,
        /// Why ring rejected it.
        reason: ring::error::KeyRejected,
    },
    /// The system random generator failed while making `what`.
    #[error("test PKI: random generation of the {what} failed")]
    Random {
        /// What was being generated (e.g. "ECDSA log key", "serial number").
        what: &'static str,
    },
    /// A signature could not be produced; `what` names the signed object.
    #[error("test PKI: signing the {what} failed")]
    Signing {
        /// What was being signed (e.g. "SCT", "OCSP response").
        what: &'static str,
    },
    /// A PEM blob compiled into the crate did not contain what it should.
    #[error("test PKI: embedded PEM `{what}` could not be decoded")]
    Pem {
        /// Which embedded PEM file.
        what: &'static str,
    },
    /// A certificate the generator just built did not parse back.
    #[error("test PKI: the generated {what} does not parse")]
    Parse {
        /// Which object (e.g. "leaf certificate").
        what: &'static str,
    },
    /// An SCT spec names a log the PKI does not have.
    #[error("test PKI: no log named `{0}`")]
    UnknownLog(String),
    /// A log with the same name or log id already exists.
    #[error("test PKI: a log named `{name}` or with the same key already exists")]
    DuplicateLog {
        /// The name of the log that was being added.
        name: String,
    },
    /// A failure knob was set on an SCT spec where it has no meaning.
    #[error("test PKI: SCT knob `{knob}` does not apply to {delivery:?} SCTs{detail}")]
    KnobNotApplicable {
        /// The knob (field of `SctSpec`).
        knob: &'static str,
        /// Where the SCT is delivered.
        delivery: SctSource,
        /// Extra context (may be empty).
        detail: &'static str,
    },
    /// A leaf index does not fit the 40-bit static-ct-api `leaf_index`.
    #[error("test PKI: leaf index {0} does not fit in 40 bits")]
    LeafIndexTooLarge(u64),
    /// The RFC 6962 signed data could not be built.
    #[error("test PKI: {0}")]
    SignedData(#[from] SignedDataError),
    /// An encoded SCT or SCT list exceeds its 16-bit length.
    #[error("test PKI: SCT list of {0} bytes exceeds the 2^16-1 byte limit")]
    SctListTooLong(usize),
    /// A timestamp could not be formatted as RFC 3339 / GeneralizedTime.
    #[error("test PKI: timestamp out of range for {what}")]
    Time {
        /// Which field.
        what: &'static str,
    },
    /// The log list could not be serialized.
    #[error("test PKI: log list serialization failed: {0}")]
    Json(#[from] serde_json::Error),
    /// A file could not be written.
    #[error("test PKI: writing {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl PkiError {
    pub(crate) fn cert(what: &'static str) -> impl FnOnce(rcgen::Error) -> Self {
        move |source| Self::Certificate { what, source }
    }

    pub(crate) fn key(what: &'static str) -> impl FnOnce(ring::error::KeyRejected) -> Self {
        move |reason| Self::KeyRejected { what, reason }
    }
}
