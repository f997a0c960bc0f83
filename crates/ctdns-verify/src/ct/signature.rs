//! SCT signature verification with the rustls crypto provider's own algorithms.
//!
//! No second crypto stack: the log's signature is checked by one of the
//! [`SignatureVerificationAlgorithm`]s rustls' provider already uses for certificate
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
use crate::ct::memo::{MemoKey, SignatureMemo};
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
    /// No available algorithm accepts the log key's type (e.g. a curve the provider lacks).
    #[error("SCT signature: unsupported log public key algorithm")]
    UnsupportedLogKey,
    /// The signature does not verify over the reconstructed signed data.
    #[error("SCT signature: invalid signature")]
    InvalidSignature,
    /// The signed data could not be built.
    #[error("SCT signature: {0}")]
    SignedData(#[from] SignedDataError),
}

/// The signature verification algorithms of the crate's default crypto provider
/// ([`crate::provider::default_provider`]: ring, or aws-lc-rs), the same list it uses for
/// certificate chains.
pub fn default_algorithms() -> &'static [&'static dyn SignatureVerificationAlgorithm] {
    static ALGS: OnceLock<&'static [&'static dyn SignatureVerificationAlgorithm]> = OnceLock::new();
    ALGS.get_or_init(|| {
        crate::provider::default_provider()
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
    verify_sct_signature_memo(sct, entry, log_spki, algs, None)
}

/// [`verify_sct_signature`], with the outcome of the final public-key operation looked up
/// in and stored to `memo` (see [`crate::ct::memo`] for what is and is not remembered).
/// Every other step (algorithm and key checks, rebuilding the signed data) runs each time,
/// and the result is the same as without a memo.
pub fn verify_sct_signature_memo(
    sct: &Sct,
    entry: SignedEntry<'_>,
    log_spki: &[u8],
    algs: &[&'static dyn SignatureVerificationAlgorithm],
    memo: Option<&SignatureMemo>,
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
    let candidates: Vec<&'static dyn SignatureVerificationAlgorithm> = for_key
        .filter(|a| a.signature_alg_id() == wanted)
        .copied()
        .collect();
    if candidates.is_empty() {
        return Err(SctSignatureError::KeyAlgorithmMismatch);
    }

    let message = signed_data(sct.timestamp, entry, &sct.extensions)?;
    let verify = || {
        candidates.iter().any(|a| {
            a.verify_signature(public_key, &message, &sct.signature)
                .is_ok()
        })
    };
    let valid = match memo {
        None => verify(),
        Some(memo) => {
            let key = MemoKey::new(log_spki, &message, &sct.signature, &wanted, &candidates);
            match memo.get(&key) {
                Some(valid) => valid,
                None => {
                    let valid = verify();
                    memo.insert(key, valid);
                    valid
                }
            }
        }
    };
    if valid {
        Ok(())
    } else {
        Err(SctSignatureError::InvalidSignature)
    }
}

/// Split a DER `SubjectPublicKeyInfo` into its `AlgorithmIdentifier` contents (the form
/// `public_key_alg_id()` uses) and the `subjectPublicKey` BIT STRING contents without
/// the unused-bits byte (the form `verify_signature` takes).
pub(crate) fn split_spki(spki: &[u8]) -> Result<(&[u8], &[u8]), SctSignatureError> {
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

    /// A leaf-sized entry, so that every byte position of realistic signed data is tried.
    fn big_leaf() -> Vec<u8> {
        let body: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        der::element(tag::SEQUENCE, &body)
    }

    #[test]
    fn memo_gives_the_same_results_and_remembers_both_outcomes() {
        let (key, spki) = p256_log();
        let leaf = big_leaf();
        let entry = SignedEntry::X509 { leaf: &leaf };
        let sct = signed_sct(&key, &spki, entry);
        let algs = default_algorithms();
        let memo = SignatureMemo::new(16);
        for round in 0..3 {
            assert_eq!(
                verify_sct_signature_memo(&sct, entry, &spki, algs, Some(&memo)),
                Ok(()),
                "round {round}"
            );
        }
        let mut bad = sct.clone();
        bad.timestamp += 1;
        for _ in 0..2 {
            assert_eq!(
                verify_sct_signature_memo(&bad, entry, &spki, algs, Some(&memo)),
                Err(SctSignatureError::InvalidSignature)
            );
        }
        let stats = memo.stats();
        assert_eq!((stats.hits, stats.misses, stats.entries), (3, 2, 2));
        // Checks before the signature (algorithms, key) do not touch the memo.
        let mut rsa = sct.clone();
        rsa.sig_alg = SIG_RSA;
        assert_eq!(
            verify_sct_signature_memo(&rsa, entry, &spki, algs, Some(&memo)),
            Err(SctSignatureError::KeyAlgorithmMismatch)
        );
        assert_eq!(memo.stats(), stats);
    }

    /// With a valid result remembered, changing any single byte of the signed input (the
    /// certificate bytes, the timestamp, the extensions, the entry type and issuer key
    /// hash), of the signature or of the log key misses the memo: the answer is computed
    /// afresh, and it is never the remembered "valid".
    #[test]
    fn changed_byte_anywhere_misses() {
        let (key, spki) = p256_log();
        let leaf = big_leaf();
        let entry = SignedEntry::X509 { leaf: &leaf };
        let sct = signed_sct(&key, &spki, entry);
        let algs = default_algorithms();
        let memo = SignatureMemo::new(DEFAULT_MEMO_TEST_CAPACITY);
        assert_eq!(
            verify_sct_signature_memo(&sct, entry, &spki, algs, Some(&memo)),
            Ok(())
        );
        let hits = memo.stats().hits;
        let mut tried = 0;
        let mut must_miss = |sct: &Sct, entry: SignedEntry<'_>, spki: &[u8], what: &str| {
            let result = verify_sct_signature_memo(sct, entry, spki, algs, Some(&memo));
            assert_ne!(result, Ok(()), "{what}");
            assert_eq!(memo.stats().hits, hits, "{what} hit the memo");
            tried += 1;
        };
        for i in 0..leaf.len() {
            let mut changed = leaf.clone();
            changed[i] ^= 0x01;
            must_miss(
                &sct,
                SignedEntry::X509 { leaf: &changed },
                &spki,
                &format!("leaf byte {i}"),
            );
        }
        for i in 0..sct.signature.len() {
            let mut changed = sct.clone();
            changed.signature[i] ^= 0x01;
            must_miss(&changed, entry, &spki, &format!("signature byte {i}"));
        }
        for i in 0..spki.len() {
            let mut changed = spki.clone();
            changed[i] ^= 0x01;
            must_miss(&sct, entry, &changed, &format!("log key byte {i}"));
        }
        for bit in 0..64 {
            let mut changed = sct.clone();
            changed.timestamp ^= 1 << bit;
            must_miss(&changed, entry, &spki, &format!("timestamp bit {bit}"));
        }
        for i in 0..sct.extensions.len() {
            let mut changed = sct.clone();
            changed.extensions[i] ^= 0x01;
            must_miss(&changed, entry, &spki, &format!("extension byte {i}"));
        }
        let precert = SignedEntry::Precert {
            issuer_key_hash: [0; 32],
            tbs: &leaf,
        };
        must_miss(&sct, precert, &spki, "entry type");
        for i in 0..32 {
            let mut issuer_key_hash = [0; 32];
            issuer_key_hash[i] = 1;
            must_miss(
                &sct,
                SignedEntry::Precert {
                    issuer_key_hash,
                    tbs: &leaf,
                },
                &spki,
                &format!("issuer key hash byte {i}"),
            );
        }
        assert!(tried > 400, "{tried} variants");
        // The original still hits.
        assert_eq!(
            verify_sct_signature_memo(&sct, entry, &spki, algs, Some(&memo)),
            Ok(())
        );
        assert_eq!(memo.stats().hits, hits + 1);
    }

    /// Large enough that no variant in `changed_byte_anywhere_misses` evicts the original.
    const DEFAULT_MEMO_TEST_CAPACITY: usize = 4096;

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
        // A DSA key (id-dsa, 1.2.840.10040.4.1): neither ring's nor aws-lc-rs' provider
        // takes it. (A P-521 key is provider-dependent: aws-lc-rs verifies P-521, ring not.)
        let dsa = [
            der::element(
                tag::SEQUENCE,
                &der::element(tag::OID, &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01]),
            ),
            der::element(tag::BIT_STRING, &[0, 4, 1, 2]),
        ]
        .concat();
        assert_eq!(
            verify_sct_signature(&sct, entry, &der::element(tag::SEQUENCE, &dsa), algs),
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
