//! Trust anchors: webpki-roots (Mozilla's root program) by default, or a PEM file.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, TrustAnchor};

/// Why a roots file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RootsError {
    /// The file could not be read or holds no PEM certificate.
    #[error("roots file {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A certificate in the file is not usable as a trust anchor.
    #[error("roots file {path}: certificate #{index} is not a usable trust anchor: {error}")]
    Anchor {
        /// The file.
        path: String,
        /// Position of the certificate in the file.
        index: usize,
        /// The webpki error.
        error: webpki::Error,
    },
}

/// The webpki-roots trust anchors (Mozilla's CA program).
pub fn webpki_roots() -> Vec<TrustAnchor<'static>> {
    webpki_roots::TLS_SERVER_ROOTS.to_vec()
}

/// Trust anchors from DER certificates.
pub fn anchors_from_der(
    certs: &[CertificateDer<'_>],
    what: &str,
) -> Result<Vec<TrustAnchor<'static>>, RootsError> {
    certs
        .iter()
        .enumerate()
        .map(|(index, der)| {
            webpki::anchor_from_trusted_cert(der)
                .map(|a| a.to_owned())
                .map_err(|error| RootsError::Anchor {
                    path: what.to_string(),
                    index,
                    error,
                })
        })
        .collect()
}

/// Trust anchors from a PEM file of CA certificates.
pub fn from_pem_file(path: &Path) -> Result<Vec<TrustAnchor<'static>>, RootsError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| RootsError::File {
        path: name.clone(),
        reason: e.to_string(),
    })?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| RootsError::File {
            path: name.clone(),
            reason: format!("bad PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(RootsError::File {
            path: name,
            reason: "no CERTIFICATE block".into(),
        });
    }
    anchors_from_der(&certs, &name)
}
