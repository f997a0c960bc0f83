//! The rustls crypto provider the verifier uses unless given another one.
//!
//! Everything that checks a signature (certificate chains, the TLS handshake signature, SCTs,
//! OCSP responses) goes through a [`CryptoProvider`]'s `signature_verification_algorithms`,
//! never a crypto library directly, so the crate works with either provider. The feature
//! `ring` (the default) selects rustls' ring provider, `aws-lc-rs` its aws-lc-rs provider;
//! with both, ring is the default. [`crate::tls::CtVerifier::with_provider`] takes any other.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

#[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
compile_error!("ctdns-verify needs a crypto provider: enable the feature `ring` or `aws-lc-rs`");

/// The provider selected by the crate features: ring with `ring`, else aws-lc-rs.
pub fn default_provider() -> Arc<CryptoProvider> {
    Arc::new(feature_provider())
}

#[cfg(feature = "ring")]
fn feature_provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

#[cfg(all(feature = "aws-lc-rs", not(feature = "ring")))]
fn feature_provider() -> CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

/// SHA-256 of `data` (pins, fingerprints, log IDs, memo keys).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_fips_180_vector() {
        let d = sha256(b"abc");
        assert_eq!(
            d[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "SHA-256(\"abc\") starts ba7816bf"
        );
        assert_eq!(d[28..], [0xf2, 0x00, 0x15, 0xad]);
    }

    #[test]
    fn the_default_provider_has_the_sct_algorithms() {
        use rustls::pki_types::alg_id;
        let p = default_provider();
        let ids: Vec<_> = p
            .signature_verification_algorithms
            .all
            .iter()
            .map(|a| a.signature_alg_id())
            .collect();
        assert!(ids.contains(&alg_id::ECDSA_SHA256));
        assert!(ids.contains(&alg_id::RSA_PKCS1_SHA256));
    }
}
