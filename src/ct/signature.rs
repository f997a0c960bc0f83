//! SCT signature verification with the rustls crypto provider's own algorithms.
//!
//! No second crypto stack: the log's signature is checked by one of the
//! [`SignatureVerificationAlgorithm`]s rustls (ring) already uses for certificate
//! chains. The algorithm is chosen by matching the log key's `AlgorithmIdentifier`
//! against `public_key_alg_id()` and the SCT's `(hash, signature)` pair against
//! `signature_alg_id()`:
//!
//! | SCT hash | SCT signature | `signature_alg_id()` |
//! |---|---|---|
//! | 4 (SHA-256) | 3 (ECDSA) | `ecdsa-with-SHA256` |
//! | 4 (SHA-256) | 1 (RSA) | `sha256WithRSAEncryption` (PKCS#1 v1.5) |

use std::sync::OnceLock;

use rustls::pki_types::{alg_id, AlgorithmIdentifier, SignatureVerificationAlgorithm};

use crate::ct::der::{self, tag, Reader};
use crate::ct::sct::{Sct, HASH_SHA256, SIG_ECDSA, SIG_RSA};
use crate::ct::signed_data::{signed_data, SignedDataError, SignedEntry};

/// Why an SCT signature was not accepted. Each variant names the rule that failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SctSignatureError {
    /// The SCT's `HashAlgorithm` is not SHA-256 (RFC 6962 §2.1.4 allows only SHA-256).
    #[error("SCT signature: unsupported hash algorithm {0}")]
    UnsupportedHash(u8),
    /// The SCT's `SignatureAlgorithm` is neither ECDSA nor RSA.
    #[error("SCT signature: unsupported signature algorithm {0}")]
    UnsupportedSignatureAlgorithm(u8),
    /// The log key's type cannot produce the SCT's signature algorithm (e.g. an ECDSA
    /// SCT attributed to an RSA log key).
    #[error("SCT signature: the log key's algorithm does not match the SCT's")]
    KeyAlgorithmMismatch,
    /// The log key is not a well-formed DER `SubjectPublicKeyInfo`.
    #[error("SCT signature: malformed log public key")]
    MalformedLogKey,
    /// No available algorithm accepts the log key's type (e.g. a curve ring lacks).
    #[error("SCT signature: unsupported log public key algorithm")]
    UnsupportedLogKey,
    /// The signature does not verify over the reconstructed signed data.
    #[error("SCT signature: invalid signature")]
    InvalidSignature,
    /// The signed data could not be built.
    #[error("SCT signature: {0}")]
    SignedData(#[from] SignedDataError),
}

/// The signature verification algorithms of rustls' ring provider (the same list it
/// uses for certificate chains).
pub fn default_algorithms() -> &'static [&'static dyn SignatureVerificationAlgorithm] {
    static ALGS: OnceLock<&'static [&'static dyn SignatureVerificationAlgorithm]> = OnceLock::new();
    ALGS.get_or_init(|| {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .all
    })
}

/// Verify `sct`'s signature over `entry` (RFC 6962 §3.2) with the log key `log_spki`
/// (DER `SubjectPublicKeyInfo`), using one of `algs` (see [`default_algorithms`]).
///
/// This checks the signature only: that the log is trusted, that `sct.log_id` names
/// this key, and timestamp rules are the caller's policy.
pub fn verify_sct_signature(
    sct: &Sct,
    entry: SignedEntry<'_>,
    log_spki: &[u8],
    algs: &[&'static dyn SignatureVerificationAlgorithm],
) -> Result<(), SctSignatureError> {
    if sct.hash_alg != HASH_SHA256 {
        return Err(SctSignatureError::UnsupportedHash(sct.hash_alg));
    }
    let wanted: AlgorithmIdentifier = match sct.sig_alg {
        SIG_ECDSA => alg_id::ECDSA_SHA256,
        SIG_RSA => alg_id::RSA_PKCS1_SHA256,
        other => return Err(SctSignatureError::UnsupportedSignatureAlgorithm(other)),
    };
    let (key_alg, public_key) = split_spki(log_spki)?;

    let mut for_key = algs
        .iter()
        .filter(|a| a.public_key_alg_id().as_ref() == key_alg)
        .peekable();
    if for_key.peek().is_none() {
        return Err(SctSignatureError::UnsupportedLogKey);
    }
    let candidates: Vec<_> = for_key.filter(|a| a.signature_alg_id() == wanted).collect();
    if candidates.is_empty() {
        return Err(SctSignatureError::KeyAlgorithmMismatch);
    }

    let message = signed_data(sct.timestamp, entry, &sct.extensions)?;
    if candidates.iter().any(|a| {
        a.verify_signature(public_key, &message, &sct.signature)
            .is_ok()
    }) {
        Ok(())
    } else {
        Err(SctSignatureError::InvalidSignature)
    }
}

/// Split a DER `SubjectPublicKeyInfo` into its `AlgorithmIdentifier` contents (the form
/// `public_key_alg_id()` uses) and the `subjectPublicKey` BIT STRING contents without
/// the unused-bits byte (the form `verify_signature` takes).
fn split_spki(spki: &[u8]) -> Result<(&[u8], &[u8]), SctSignatureError> {
    let malformed = |_| SctSignatureError::MalformedLogKey;
    let outer = der::parse_single(spki, tag::SEQUENCE).map_err(malformed)?;
    let mut r = Reader::new(outer.value);
    let alg = r.read(tag::SEQUENCE).map_err(malformed)?;
    let bits = r.read(tag::BIT_STRING).map_err(malformed)?;
    r.finish().map_err(malformed)?;
    match bits.value.split_first() {
        Some((0, key)) if !key.is_empty() => Ok((alg.value, key)),
        _ => Err(SctSignatureError::MalformedLogKey),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ct::sct::LogId;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

    /// A fresh P-256 log: its key pair and DER SPKI.
    fn p256_log() -> (EcdsaKeyPair, Vec<u8>) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let mut bits = vec![0u8];
        bits.extend_from_slice(key.public_key().as_ref());
        let body = [
            der::element(tag::SEQUENCE, &alg_id::ECDSA_P256),
            der::element(tag::BIT_STRING, &bits),
        ]
        .concat();
        (key, der::element(tag::SEQUENCE, &body))
    }

    fn signed_sct(key: &EcdsaKeyPair, spki: &[u8], entry: SignedEntry<'_>) -> Sct {
        let mut sct = Sct {
            log_id: LogId::from_spki(spki),
            timestamp: 1_700_000_000_123,
            extensions: vec![0, 0, 5, 0, 0, 0, 0, 7],
            hash_alg: HASH_SHA256,
            sig_alg: SIG_ECDSA,
            signature: Vec::new(),
        };
        let msg = signed_data(sct.timestamp, entry, &sct.extensions).unwrap();
        sct.signature = key
            .sign(&SystemRandom::new(), &msg)
            .unwrap()
            .as_ref()
            .to_vec();
        sct
    }

    const LEAF: &[u8] = &[0x30, 0x03, 0x02, 0x01, 0x07];

    #[test]
    fn valid_signature_verifies_and_any_change_breaks_it() {
        let (key, spki) = p256_log();
        let entry = SignedEntry::X509 { leaf: LEAF };
        let sct = signed_sct(&key, &spki, entry);
        let algs = default_algorithms();
        assert_eq!(verify_sct_signature(&sct, entry, &spki, algs), Ok(()));

        let mut later = sct.clone();
        later.timestamp += 1;
        assert_eq!(
            verify_sct_signature(&later, entry, &spki, algs),
            Err(SctSignatureError::InvalidSignature)
        );
        let mut ext = sct.clone();
        ext.extensions.clear();
        assert_eq!(
            verify_sct_signature(&ext, entry, &spki, algs),
            Err(SctSignatureError::InvalidSignature)
        );
        let precert = SignedEntry::Precert {
            issuer_key_hash: [0; 32],
            tbs: LEAF,
        };
        assert_eq!(
            verify_sct_signature(&sct, precert, &spki, algs),
            Err(SctSignatureError::InvalidSignature)
        );
        let (_, other_spki) = p256_log();
        assert_eq!(
            verify_sct_signature(&sct, entry, &other_spki, algs),
            Err(SctSignatureError::InvalidSignature)
        );
    }

    #[test]
    fn algorithm_selection_errors() {
        let (key, spki) = p256_log();
        let entry = SignedEntry::X509 { leaf: LEAF };
        let sct = signed_sct(&key, &spki, entry);
        let algs = default_algorithms();

        let mut s = sct.clone();
        s.hash_alg = 5;
        assert_eq!(
            verify_sct_signature(&s, entry, &spki, algs),
            Err(SctSignatureError::UnsupportedHash(5))
        );
        let mut s = sct.clone();
        s.sig_alg = 2;
        assert_eq!(
            verify_sct_signature(&s, entry, &spki, algs),
            Err(SctSignatureError::UnsupportedSignatureAlgorithm(2))
        );
        let mut s = sct.clone();
        s.sig_alg = SIG_RSA;
        assert_eq!(
            verify_sct_signature(&s, entry, &spki, algs),
            Err(SctSignatureError::KeyAlgorithmMismatch)
        );
        assert_eq!(
            verify_sct_signature(&sct, entry, &spki, &[]),
            Err(SctSignatureError::UnsupportedLogKey)
        );
        // A P-521 key: no ring algorithm takes it.
        let p521 = [
            der::element(tag::SEQUENCE, &alg_id::ECDSA_P521),
            der::element(tag::BIT_STRING, &[0, 4, 1, 2]),
        ]
        .concat();
        assert_eq!(
            verify_sct_signature(&sct, entry, &der::element(tag::SEQUENCE, &p521), algs),
            Err(SctSignatureError::UnsupportedLogKey)
        );
    }

    #[test]
    fn malformed_log_keys() {
        let (key, spki) = p256_log();
        let entry = SignedEntry::X509 { leaf: LEAF };
        let sct = signed_sct(&key, &spki, entry);
        let algs = default_algorithms();
        let check = |k: &[u8]| verify_sct_signature(&sct, entry, k, algs);
        assert_eq!(check(&[]), Err(SctSignatureError::MalformedLogKey));
        assert_eq!(
            check(&spki[..spki.len() - 1]),
            Err(SctSignatureError::MalformedLogKey)
        );
        let mut trailing = spki.clone();
        trailing.push(0);
        assert_eq!(check(&trailing), Err(SctSignatureError::MalformedLogKey));
        // Unused bits in the BIT STRING.
        let pos = spki.len() - 66;
        assert_eq!(spki[pos], 0);
        let mut unused = spki.clone();
        unused[pos] = 1;
        assert_eq!(check(&unused), Err(SctSignatureError::MalformedLogKey));
        // The SPKI's contents instead of the SPKI.
        assert_eq!(check(&spki[2..]), Err(SctSignatureError::MalformedLogKey));
    }

    #[test]
    fn oversized_entry_is_a_signed_data_error() {
        let (key, spki) = p256_log();
        let sct = signed_sct(&key, &spki, SignedEntry::X509 { leaf: LEAF });
        let huge = vec![0u8; 0x100_0000];
        assert_eq!(
            verify_sct_signature(
                &sct,
                SignedEntry::X509 { leaf: &huge },
                &spki,
                default_algorithms()
            ),
            Err(SctSignatureError::SignedData(
                SignedDataError::EntryTooLong(0x100_0000)
            ))
        );
    }

    #[test]
    fn default_algorithms_cover_ct_log_keys() {
        let algs = default_algorithms();
        assert!(std::ptr::eq(algs, default_algorithms()));
        for (key, sig) in [
            (alg_id::ECDSA_P256, alg_id::ECDSA_SHA256),
            (alg_id::RSA_ENCRYPTION, alg_id::RSA_PKCS1_SHA256),
        ] {
            assert!(algs
                .iter()
                .any(|a| a.public_key_alg_id() == key && a.signature_alg_id() == sig));
        }
    }
}
