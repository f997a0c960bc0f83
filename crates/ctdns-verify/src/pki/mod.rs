//! A test PKI generator: CA, intermediate, CT logs with real keys, leaves with IP SANs and
//! embedded SCTs, and a matching log list. For tests, benchmarks, demos and `ctdns pki`
//! (feature `testkit`; ctdns adds writing one to disk).
//!
//! Everything is real: certificates are signed by rcgen (ring), SCTs are RFC 6962 v1 SCTs
//! signed by the logs' ECDSA P-256 or RSA-2048 keys over the exact precertificate TBS (or the
//! whole leaf for OCSP-delivered SCTs), so any RFC 6962 verifier accepts them; failure knobs
//! on [`SctSpec`] produce SCTs that a correct verifier must reject.
//!
//! ```
//! use ctdns_verify::pki::{default_logs, PkiOptions, SctSpec, TestPki};
//!
//! let pki = TestPki::generate(&PkiOptions::default())?;
//! let ts = pki.now() - time::Duration::minutes(5);
//! let spec = pki
//!     .leaf_spec("192.0.2.53".parse().unwrap())
//!     .embed(SctSpec::at(default_logs::ALPHA, ts))
//!     .embed(SctSpec::at(default_logs::GAMMA, ts))
//!     .staple(SctSpec::at(default_logs::BETA, ts));
//! let leaf = pki.issue_leaf(&spec)?;
//! assert_eq!(leaf.chain.len(), 2);
//! assert!(leaf.ocsp_response.is_some());
//! let log_list = pki.log_list_json(pki.now())?;
//! # let _ = log_list;
//! # Ok::<(), ctdns_verify::pki::PkiError>(())
//! ```
//!
//! The RSA keys under `src/pki/*.pem` are fixed TEST-ONLY keys (ring cannot generate RSA
//! keys); `mimic1.pem` / `mimic2.pem` are the private keys Google published for its two
//! "mimic" logs. None of them is a secret.

mod ca;
mod error;
mod leaf;
mod log;
mod loglist;
mod ocsp;

pub use ca::{default_logs, CaCert, PkiOptions, TestCa, TestPki, OID_PRECERT_SIGNING_EKU};
pub use error::PkiError;
pub use leaf::{
    IssuedLeaf, LeafIssuer, LeafKeyType, LeafSpec, PrecertIssuance, SctSpec, OID_PRECERT_POISON,
    OID_SCT_LIST, RSA_TEST_LEAF_KEY_PEM,
};
pub use log::{
    leaf_index_extension, unix_ms, LogKeyAlgorithm, LogKind, LogState, LogStateKind,
    PreviousOperator, TestLog, MIMIC1_KEY_PEM, MIMIC2_KEY_PEM, RSA_TEST_LOG_KEY_PEM,
};
pub use ocsp::{
    build_ocsp_response, build_ocsp_response_with, OcspCertStatus, OcspSigner, OcspSpec,
    OID_OCSP_SCT_LIST,
};
